#!/bin/sh
# End to end: which operation made the first NaN or inf.
#
# (a) logsize.mdl takes the log of size^2, and one row of the data has size
# 0: the loss becomes -inf at the step whose batch holds it.  Plain `train`
# stops there, replays the epoch with every operation checked and names
# line 14's log, with the 0 it read; `--check-numerics` names it at once.
# (b) sqrtw.mdl's forward pass is finite, but the gradient of sqrt(w * w)
# at w = 0 is 0/0: the loss goes NaN one step later, and the replay finds
# the gradient of line 13, in the first step.
# (c) on clean data --check-numerics changes nothing: the same weights,
# bit for bit, as training without it.
# usage: numerics.sh MDLC SOURCE_DIR WORK_DIR
set -eu
mdlc=$1 src=$2 work=$3
fail() { echo "FAIL: $*"; exit 1; }
rm -rf "$work" && mkdir -p "$work" && cd "$work"
cp "$src/tests/e2e/numerics/logsize.mdl" "$src/tests/e2e/numerics/sqrtw.mdl" .
"$mdlc" logsize.mdl -o logsize || fail "mdlc logsize.mdl"
"$mdlc" sqrtw.mdl -o sqrtw || fail "mdlc sqrtw.mdl"
# row 450 of the data (line 452 of the file) gets size 0
awk -F, 'NR == 452 { $1 = "0" } { print }' OFS=, "$src/examples/data/house.csv" > zero.csv

expect_fail() { # expect_fail LOG COMMAND...: exit 1 and a message in LOG
    log=$1
    shift
    if "$@" > /dev/null 2> "$log"; then fail "$* succeeded"; fi
}
has() { grep -qF -- "$2" "$1" || { cat "$1"; fail "no '$2' in $1"; }; }

# (a)
expect_fail a.err ./logsize train --data zero.csv --seed 3
has a.err "error: loss is -inf at epoch 1, step"
has a.err "logsize.mdl:14:11: error: reduce_sum (fused with other operations) made 1 of 1 values non-finite (the first, -inf, at [])"
has a.err "   14 | penalty = mean(log(x[:, 0] * x[:, 0]))"
has a.err "      |           ^"
has a.err "note: the kernel computes mul (14:28), log (14:16), reduce_sum (14:11)"
grep -q "note: it read .* f32\[B\]: min .*, 1 zero, all finite" a.err || { cat a.err; fail "the 0 read"; }
expect_fail a2.err ./logsize train --data zero.csv --seed 3 --check-numerics
grep -v '^error: loss is' a.err > a_located.err
cmp -s a_located.err a2.err || { diff a_located.err a2.err; fail "--check-numerics and the replay disagree"; }

# (b)
expect_fail b.err ./sqrtw train --data "$src/examples/data/house.csv"
has b.err "error: loss is"
has b.err "at epoch 1, step 2: training diverged"
has b.err "sqrtw.mdl:13:17: error: add (in the gradient, fused with other operations) made 2 of 2 values non-finite (the first, NaN, at [0]) at epoch 1, step 1"
has b.err "note: the kernel computes mul (13:10), div (13:10), mul (13:17), add (13:17), add (13:17)"
has b.err "   13 | l1 = sum(sqrt(w * w))"

# (c)
./logsize train --data "$src/examples/data/house.csv" --save plain.ckpt --quiet || fail "train on clean data"
./logsize train --data "$src/examples/data/house.csv" --save checked.ckpt --quiet --check-numerics ||
    fail "train --check-numerics on clean data"
tail -c 12 plain.ckpt > plain.bin
tail -c 12 checked.ckpt > checked.bin
cmp -s plain.bin checked.bin || fail "--check-numerics changed the trained weights"
echo "numerics: the log, the gradient's NaN and clean data all as expected"
