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
awk -F, 'NR > 1 { loss[$1] = $3; n = $1 }
    END { for (i = 1; i <= 10; i++) a += loss[i]; for (i = n - 39; i <= n; i++) b += loss[i]
          printf "first 10 steps %.3f, last 40 steps %.3f (%d steps)\n", a / 10, b / 40, n
          exit !(n == 194 && a / 10 > 3.5 && b / 40 < 2.7) }' steps.csv ||
    fail "the loss did not fall from above 3.5 to below 2.7 in 194 steps"
# the checkpoint holds the parameters and Adam's state, not generate's caches
size=$(wc -c < tiny_gpt.ckpt)
[ "$size" -lt 5300000 ] || fail "the checkpoint ($size bytes) holds more than parameters and optimizer state"
for seed in 1 1 2; do
    ./tiny_gpt generate --load tiny_gpt.ckpt --prime "The " --length 300 --temperature 0.8 --top-k 20 \
        --seed $seed > "seed$seed.$$.txt" 2> gen.err || { cat gen.err; fail "generate --seed $seed"; }
    [ -f "first$seed.txt" ] || mv "seed$seed.$$.txt" "first$seed.txt"
done
cat first1.txt
cmp -s first1.txt "seed1.$$.txt" || fail "the same seed gave different text"
cmp -s first1.txt first2.txt && fail "seeds 1 and 2 gave the same text"
[ "$(head -c 4 first1.txt)" = "The " ] || fail "the text does not start with the prime"
[ "$(wc -c < first1.txt)" -eq 305 ] || fail "expected the prime, 300 characters and a newline"
echo "tiny_gpt: all checks passed"
