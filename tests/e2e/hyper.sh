#!/bin/sh
# End to end: a run-time hyper-parameter on the house-price data.
#
# (a) tests/e2e/hyper/ridge.mdl declares `hyper lam = 0.5` for its L2
# penalty; trained with --hyper lam=0.01 it must end with the very same
# weights, bit for bit, as ridge_const.mdl, which has 0.01 compiled in.
# Bit for bit holds because the two graphs are the same but for one leaf
# (a HYPER node where the other has a CONST): `0.01 * sum(w * w)` leaves
# the simplifier nothing to fold, so every kernel does the same operations
# in the same order on the same f32 values.  (A constant that folds with
# another, as in `0.01 / 2 * ...`, would round once where the hyper rounds
# twice; then only agreement within float tolerance could be asked.)
# (b) a two-by-two sweep makes four runs, each with its checkpoint and
# log, and a summary table whose order is that of the runs' own logs.
# usage: hyper.sh MDLC SOURCE_DIR WORK_DIR
set -eu
mdlc=$1 src=$2 work=$3
fail() { echo "FAIL: $*"; exit 1; }
rm -rf "$work" && mkdir -p "$work" && cd "$work"
data=$src/examples/data/house.csv

"$mdlc" "$src/tests/e2e/hyper/ridge.mdl" -o ridge || fail "mdlc ridge.mdl"
"$mdlc" "$src/tests/e2e/hyper/ridge_const.mdl" -o ridge_const || fail "mdlc ridge_const.mdl"

./ridge info > info.log
grep -q '^  lam  *0.5$' info.log || fail "info does not list hyper lam with its default 0.5"

# (a) --hyper against the constant: the last 12 bytes of a checkpoint are
# w (2 floats) and b; the headers differ (model name, mdl.hypers).
./ridge train --data "$data" --hyper lam=0.01 --save hyper.ckpt --log hyper.csv > hyper.log || fail "train --hyper"
./ridge_const train --data "$data" --save const.ckpt > const.log || fail "train ridge_const"
./ridge train --data "$data" --save default.ckpt > default.log || fail "train with the default lam"
tail -c 12 hyper.ckpt > hyper.bin
tail -c 12 const.ckpt > const.bin
tail -c 12 default.ckpt > default.bin
cmp -s hyper.bin const.bin || fail "--hyper lam=0.01 and the constant 0.01 trained different weights:
$(grep -A2 '^final' hyper.log) vs $(grep -A2 '^final' const.log)"
cmp -s hyper.bin default.bin && fail "--hyper lam=0.01 trained the same weights as the default lam=0.5"
printf 'size,age\n1,0\n0,1\n0,0\n0.3,-1.7\n' > rows.csv
./ridge predict --load hyper.ckpt --input rows.csv > hyper_pred.csv
./ridge_const predict --load const.ckpt --input rows.csv > const_pred.csv
cmp -s hyper_pred.csv const_pred.csv || fail "predictions differ"
grep -qaF '"mdl.hypers":"{\"lam\":0.01,\"lr\":0.03}"' hyper.ckpt || fail "the checkpoint does not record lam 0.01"
# the source by base name and a hash of its text, not by path
hash=$(grep -aoE '"source":"ridge.mdl","source_hash":"fnv1a64:[0-9a-f]{16}"' hyper.ckpt) ||
    fail "the checkpoint does not name ridge.mdl by base name and hash"
grep -qaF "$hash" default.ckpt || fail "one source, two hashes"
grep -qa '"source":"ridge_const.mdl","source_hash":"fnv1a64:' const.ckpt || fail "ridge_const.mdl's hash"
grep -qaF "${hash#*source_hash}" const.ckpt && fail "two sources, one hash"
[ "$(head -1 hyper.csv)" = "epoch,step,loss,mae,lr,seconds,lam" ] || fail "log header: $(head -1 hyper.csv)"
[ "$(tail -1 hyper.csv | cut -d, -f7)" = 0.01 ] || fail "the log's lam column"
# eval takes --hyper: the penalty is part of the loss it prints
l1=$(./ridge eval --load hyper.ckpt --data "$data" --hyper lam=0.01 | awk '$1 == "loss" { print $2 }')
l0=$(./ridge eval --load hyper.ckpt --data "$data" --hyper lam=0 | awk '$1 == "loss" { print $2 }')
awk -v a="$l0" -v b="$l1" 'BEGIN { exit !(a != "" && b != "" && a + 0.1 < b + 0) }' ||
    fail "eval --hyper lam=0 (loss $l0) is not well below lam=0.01 ($l1)"
./ridge gradcheck --hyper lam=2 > gradcheck.log || { cat gradcheck.log; fail "gradcheck --hyper lam=2"; }

# (b) a 2 x 2 sweep
./ridge train --data "$data" --val-split 0.2 --epochs 100 --sweep lam=0,0.01 --sweep lr=0.01,0.03 --runs runs \
    > sweep.log || { cat sweep.log; fail "sweep"; }
cat sweep.log | sed -n '/^sweep:/,$p'
[ "$(ls runs | grep -c '^lam=')" -eq 4 ] || fail "not four run directories: $(ls runs)"
for lam in 0 0.01; do
    for lr in 0.01 0.03; do
        run=runs/lam=$lam,lr=$lr
        [ -s "$run/model.ckpt" ] || fail "no $run/model.ckpt"
        [ -s "$run/log.csv" ] || fail "no $run/log.csv"
        grep -qaF "\"mdl.hypers\":\"{\\\"lam\\\":$lam,\\\"lr\\\":$lr}\"" "$run/model.ckpt" ||
            fail "$run/model.ckpt does not record lam $lam, lr $lr"
        # epoch,step,loss,mae,val_loss,val_mae,lr,seconds,lam
        [ "$(tail -1 "$run/log.csv" | cut -d, -f9)" = "$lam" ] || fail "$run/log.csv's lam column"
    done
done
[ "$(head -1 runs/summary.csv)" = "rank,lam,lr,loss,mae,val_loss,val_mae,run" ] ||
    fail "summary header: $(head -1 runs/summary.csv)"
[ "$(grep -c '' runs/summary.csv)" -eq 5 ] || fail "summary.csv does not have four runs"
# The ranking by val_loss (lower first), rebuilt from each run's own log
# (column 5 of its last row), must be the summary's order.
for d in runs/lam=*; do
    printf '%s %s\n' "$(tail -1 "$d/log.csv" | cut -d, -f5)" "${d#runs/}"
done | sort -g -k1,1 | awk '{ print $2 }' > order_logs.txt
tail -n +2 runs/summary.csv | sed 's/.*,"\(.*\)"$/\1/' > order_summary.txt
cmp -s order_logs.txt order_summary.txt || fail "summary order differs from the logs':
$(paste order_logs.txt order_summary.txt)"
# and the runs really differ
[ "$(for d in runs/lam=*; do tail -c 12 "$d/model.ckpt" | od -An -tx1; done | sort -u | wc -l)" -eq 4 ] ||
    fail "two runs of the sweep ended with the same weights"
echo "hyper: all checks passed"
