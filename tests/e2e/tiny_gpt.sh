#!/bin/sh
# End to end: the char GPT example (W5) trains on a 200 KB slice of the
# fortunes corpus (2 epochs of 97 steps of random windows), its loss falls
# below a bound, and `generate` (one position per token through the KV
# cache, sliding past the 64-character window) gives text that depends
# only on the seed.  Skipped (exit 77) without Debian's fortunes.
# usage: tiny_gpt.sh MDLC SOURCE_DIR WORK_DIR
set -eu
mdlc=$1 src=$2 work=$3
fail() { echo "FAIL: $*"; exit 1; }
. "$src/tests/e2e/textgen_lib.sh"
[ -d /usr/share/games/fortunes ] || { echo "skipped: the fortunes package is not installed"; exit 77; }
rm -rf "$work" && mkdir -p "$work" && cd "$work"
sh "$src/examples/make_corpus.sh" corpus.txt
head -c 200000 corpus.txt > slice.txt
"$mdlc" "$src/examples/tiny_gpt.mdl" -o tiny_gpt || fail "mdlc"
./tiny_gpt info > info.txt
# positions and kv_cache give a model without `state` the one-position entry
grep -q '^entry points: predict eval grad train generate$' info.txt || fail "no generate entry point"
grep -q '^total parameters: 429664 ' info.txt || fail "W5 has 429,664 parameters"
./tiny_gpt train --data slice.txt --epochs 2 --save tiny_gpt.ckpt --log-steps steps.csv > train.log ||
    { cat train.log; fail "train"; }
cat train.log
grep -q 'random windows: 97 steps of 32 windows of 64 per epoch' train.log || fail "expected 97 steps of random windows"
loss_falls steps.csv 194 3.5 2.7
# the checkpoint holds the parameters and Adam's state, not generate's caches
size=$(wc -c < tiny_gpt.ckpt)
[ "$size" -lt 5300000 ] || fail "the checkpoint ($size bytes) holds more than parameters and optimizer state"
generates_by_seed ./tiny_gpt tiny_gpt.ckpt 300
# train --resume continues the run exactly: the state carried from step
# to step (or the random windows), Adam, the step count (tests/e2e/resume.sh
# has the rest)
head -c 30000 corpus.txt > small.txt
./tiny_gpt train --data small.txt --epochs 2 --save whole.ckpt > /dev/null || fail "train small.txt"
./tiny_gpt train --data small.txt --epochs 2 --save part.ckpt --stop-after 17 > /dev/null || fail "--stop-after 17"
./tiny_gpt train --data small.txt --resume part.ckpt --save part.ckpt > resume.log || { cat resume.log; fail "--resume"; }
cmp whole.ckpt part.ckpt || fail "stopped after step 17 and resumed: the checkpoint differs from the run without a stop"
echo "tiny_gpt: all checks passed"
