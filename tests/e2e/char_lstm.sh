#!/bin/sh
# End to end: the char LSTM example (W3) trains on a 200 KB slice of the
# fortunes corpus (2 epochs of 97 steps), its loss falls below a bound, and
# `generate` streams text that depends only on the seed, refusing a prime
# outside the vocabulary.  Skipped (exit 77) without Debian's fortunes.
# usage: char_lstm.sh MDLC SOURCE_DIR WORK_DIR
set -eu
mdlc=$1 src=$2 work=$3
fail() { echo "FAIL: $*"; exit 1; }
. "$src/tests/e2e/textgen_lib.sh"
[ -d /usr/share/games/fortunes ] || { echo "skipped: the fortunes package is not installed"; exit 77; }
rm -rf "$work" && mkdir -p "$work" && cd "$work"
sh "$src/examples/make_corpus.sh" corpus.txt
head -c 200000 corpus.txt > slice.txt
"$mdlc" "$src/examples/char_lstm.mdl" -o char_lstm || fail "mdlc"
# a model with state gets the one-step entry that generate runs
./char_lstm info | grep -q '^entry points: predict eval grad train generate$' || fail "no generate entry point"
./char_lstm train --data slice.txt --epochs 2 --save char_lstm.ckpt --log-steps steps.csv > train.log ||
    { cat train.log; fail "train"; }
cat train.log
grep -q '97 steps of 64 per epoch' train.log || fail "expected 97 steps per epoch"
loss_falls steps.csv 194 4.0 2.75
generates_by_seed ./char_lstm char_lstm.ckpt 200
if ./char_lstm generate --load char_lstm.ckpt --prime "caf$(printf '\303\251')" > bad.txt 2> bad.err; then
    fail "a prime outside the vocabulary was accepted"
fi
cat bad.err
grep -q "not in the model's vocabulary" bad.err || fail "no clear error for a prime outside the vocabulary"
# train --resume continues the run exactly: the state carried from step
# to step (or the random windows), Adam, the step count (tests/e2e/resume.sh
# has the rest)
head -c 30000 corpus.txt > small.txt
./char_lstm train --data small.txt --epochs 2 --save whole.ckpt > /dev/null || fail "train small.txt"
./char_lstm train --data small.txt --epochs 2 --save part.ckpt --stop-after 17 > /dev/null || fail "--stop-after 17"
./char_lstm train --data small.txt --resume part.ckpt --save part.ckpt > resume.log || { cat resume.log; fail "--resume"; }
cmp whole.ckpt part.ckpt || fail "stopped after step 17 and resumed: the checkpoint differs from the run without a stop"
echo "char_lstm: all checks passed"
