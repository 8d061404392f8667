#!/bin/sh
# The full Fashion-MNIST runs (not part of ctest): the MLP for 5 epochs
# and the CNN for 1, on all 60000 training images, evaluated on the 10000
# test images after every epoch.  Run from the repository root after
# building into build/; needs `apt-get install dataset-fashion-mnist`.
#   bash examples/fashion.sh [mlp|cnn|both]
set -eu
MDLC=${MDLC:-build/mdlc}
OUT=${OUT:-build/examples}
DATA=${DATA:-/usr/share/datasets/fashion-mnist}
which=${1:-both}
train=$DATA/train-images-idx3-ubyte.gz,$DATA/train-labels-idx1-ubyte.gz
test=$DATA/t10k-images-idx3-ubyte.gz,$DATA/t10k-labels-idx1-ubyte.gz
mkdir -p "$OUT"
run() {
    name=$1 epochs=$2
    echo "+ $MDLC examples/$name.mdl -o $OUT/$name"
    "$MDLC" "examples/$name.mdl" -o "$OUT/$name"
    echo "+ $OUT/$name train --data $train --val $test --epochs $epochs --save $OUT/$name.ckpt --log $OUT/$name.log.csv"
    "$OUT/$name" train --data "$train" --val "$test" --epochs "$epochs" --save "$OUT/$name.ckpt" --log "$OUT/$name.log.csv"
    echo "+ $OUT/$name eval --load $OUT/$name.ckpt --data $test"
    "$OUT/$name" eval --load "$OUT/$name.ckpt" --data "$test"
}
case $which in
mlp) run fashion_mlp 5 ;;
cnn) run fashion_cnn 1 ;;
both) run fashion_mlp 5 && run fashion_cnn 1 ;;
*) echo "usage: $0 [mlp|cnn|both]" >&2; exit 2 ;;
esac
