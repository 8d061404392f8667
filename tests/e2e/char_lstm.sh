#!/bin/sh
# End to end: the char LSTM example (W3) trains on a 200 KB slice of the
# fortunes corpus (2 epochs of 97 steps), its loss falls below a bound, and
# `generate` streams text that depends only on the seed, refusing a prime
# outside the vocabulary.  Skipped (exit 77) without Debian's fortunes.
# usage: char_lstm.sh MDLC SOURCE_DIR WORK_DIR
set -eu
mdlc=$1 src=$2 work=$3
fail() { echo "FAIL: $*"; exit 1; }
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
# the mean loss of the first 10 steps and of the last 40
awk -F, 'NR > 1 { loss[$1] = $3; n = $1 }
    END { for (i = 1; i <= 10; i++) a += loss[i]; for (i = n - 39; i <= n; i++) b += loss[i]
          printf "first 10 steps %.3f, last 40 steps %.3f (%d steps)\n", a / 10, b / 40, n
          exit !(n == 194 && a / 10 > 4.0 && b / 40 < 2.75) }' steps.csv ||
    fail "the loss did not fall from above 4.0 to below 2.75 in 194 steps"
./char_lstm generate --load char_lstm.ckpt --prime "The " --length 200 --temperature 0.8 --top-k 20 \
    --seed 1 > a.txt || fail "generate"
./char_lstm generate --load char_lstm.ckpt --prime "The " --length 200 --temperature 0.8 --top-k 20 \
    --seed 1 > b.txt || fail "generate again"
./char_lstm generate --load char_lstm.ckpt --prime "The " --length 200 --temperature 0.8 --top-k 20 \
    --seed 2 > c.txt || fail "generate, seed 2"
cat a.txt
cmp -s a.txt b.txt || fail "the same seed gave different text"
cmp -s a.txt c.txt && fail "seeds 1 and 2 gave the same text"
[ "$(head -c 4 a.txt)" = "The " ] || fail "the text does not start with the prime"
[ "$(wc -c < a.txt)" -eq 205 ] || fail "expected the prime, 200 characters and a newline"
if ./char_lstm generate --load char_lstm.ckpt --prime "caf$(printf '\303\251')" > bad.txt 2> bad.err; then
    fail "a prime outside the vocabulary was accepted"
fi
cat bad.err
grep -q "not in the model's vocabulary" bad.err || fail "no clear error for a prime outside the vocabulary"
echo "char_lstm: all checks passed"
