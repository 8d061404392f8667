#!/bin/sh
# End to end: the variant with a loss (log-cosh) and a penalty (elastic net
# on one layer) written in the model file.  It must train, and the
# gradients mdlc derived must agree with finite differences.
# usage: robust.sh MDLC SOURCE_DIR WORK_DIR
set -eu
mdlc=$1 src=$2 work=$3
fail() { echo "FAIL: $*"; exit 1; }
rm -rf "$work" && mkdir -p "$work" && cd "$work"
data=$src/examples/data/house.csv
"$mdlc" "$src/examples/house_price_robust.mdl" -o robust || fail "mdlc failed"
./robust gradcheck --data "$data" > gradcheck.log || { cat gradcheck.log; fail "gradcheck"; }
cat gradcheck.log
./robust train --data "$data" --save robust.ckpt > train.log || fail "train"
cat train.log
./robust eval --load robust.ckpt --data "$data" > eval.log || fail "eval"
cat eval.log
mse=$(awk '$1 == "mse" { print $2 }' eval.log)
[ -n "$mse" ] || fail "eval printed no mse line"
awk -v l="$mse" 'BEGIN { exit !(l <= 0.005) }' || fail "MSE after training $mse > 0.005"
# gradcheck again at the trained point, loaded from the checkpoint
./robust gradcheck --load robust.ckpt --data "$data" > gradcheck2.log || { cat gradcheck2.log; fail "gradcheck at trained point"; }
echo "robust: all checks passed"
