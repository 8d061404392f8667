#!/bin/sh
# End to end on real images: the Fashion-MNIST MLP and CNN examples,
# trained on a slice of Debian's dataset-fashion-mnist (read as the IDX
# files the package ships, after cutting them short), evaluated on a slice
# of the test set, plus gradcheck of both models.  The full-data accuracy
# runs are examples/fashion.sh, not ctest.
# usage: fashion.sh MDLC SOURCE_DIR WORK_DIR [DATA_DIR]
set -eu
mdlc=$1 src=$2 work=$3 data=${4:-/usr/share/datasets/fashion-mnist}
fail() { echo "FAIL: $*"; exit 1; }
if [ ! -f "$data/train-images-idx3-ubyte.gz" ]; then
    echo "SKIP: no Fashion-MNIST in $data (apt-get install dataset-fashion-mnist)"
    exit 77
fi
rm -rf "$work" && mkdir -p "$work" && cd "$work"
head=$src/tests/e2e/idx_head.sh
sh "$head" "$data/train-images-idx3-ubyte.gz" 6000 train-images.idx
sh "$head" "$data/train-labels-idx1-ubyte.gz" 6000 train-labels.idx
sh "$head" "$data/t10k-images-idx3-ubyte.gz" 1000 test-images.idx
sh "$head" "$data/t10k-labels-idx1-ubyte.gz" 1000 test-labels.idx
train=train-images.idx,train-labels.idx
test=test-images.idx,test-labels.idx

acc_of() { awk '$1 == "acc" { print $2 }' "$1"; }

# MLP: 3 epochs on 6000 images must reach 75% on 1000 test images (the
# full run reaches ~85% after one epoch on all 60000).
"$mdlc" "$src/examples/fashion_mlp.mdl" -o mlp || fail "mdlc fashion_mlp"
./mlp gradcheck --data "$train" --max-elems 24 > gradcheck.log || { cat gradcheck.log; fail "mlp gradcheck"; }
./mlp train --data "$train" --val "$test" --epochs 3 --save mlp.ckpt > train.log || { cat train.log; fail "mlp train"; }
cat train.log
./mlp eval --load mlp.ckpt --data "$test" > eval.log || fail "mlp eval"
cat eval.log
acc=$(acc_of eval.log)
awk -v a="$acc" 'BEGIN { exit !(a >= 0.75) }' || fail "MLP test accuracy $acc < 0.75"
./mlp predict --load mlp.ckpt --input test-images.idx > probs.csv || fail "mlp predict"
# The matrix products split over threads (runtime/rt_pool.c) give the same
# result bit for bit whatever the thread count.
for t in 1 3; do
    ./mlp train --data "$train" --epochs 1 --threads $t --save threads$t.ckpt > /dev/null || fail "train --threads $t"
done
MDL_THREADS=2 ./mlp train --data "$train" --epochs 1 --save threads2.ckpt > /dev/null || fail "MDL_THREADS=2 train"
cmp -s threads1.ckpt threads3.ckpt || fail "--threads 1 and --threads 3 train differently"
cmp -s threads1.ckpt threads2.ckpt || fail "MDL_THREADS=2 trains differently"
[ "$(wc -l < probs.csv)" -eq 1001 ] || fail "predict wrote $(wc -l < probs.csv) lines, expected 1001"

# A user's own loss and a penalty on one layer, by editing the file: the
# generated gradients must pass gradcheck, and it must still train.
sed 's/^loss .*/loss   focal_loss(logits, label, gamma = 2.0) + 1e-4 * l2(h1.W)/' \
    "$src/examples/fashion_mlp.mdl" > focal.mdl
grep -q focal_loss focal.mdl || fail "could not edit the loss line"
"$mdlc" focal.mdl -o focal || fail "mdlc focal"
./focal gradcheck --data "$train" --max-elems 24 > fgrad.log || { cat fgrad.log; fail "focal gradcheck"; }
# Without data, as examples/README.md says to run it: random images, and
# labels drawn from [0, 10) because the model feeds them to one_hot.
./focal gradcheck --max-elems 24 > frand.log 2>&1 || { cat frand.log; fail "focal gradcheck on random inputs"; }
./focal train --data "$train" --epochs 1 --save focal.ckpt > ftrain.log || fail "focal train"
./focal eval --load focal.ckpt --data "$test" > feval.log || fail "focal eval"
acc=$(acc_of feval.log)
awk -v a="$acc" 'BEGIN { exit !(a >= 0.65) }' || fail "focal-loss MLP test accuracy $acc < 0.65"

# CNN: one epoch on 2000 images must clearly learn (>= 55% on the test slice).
sh "$head" "$data/train-images-idx3-ubyte.gz" 2000 small-images.idx
sh "$head" "$data/train-labels-idx1-ubyte.gz" 2000 small-labels.idx
"$mdlc" "$src/examples/fashion_cnn.mdl" -o cnn || fail "mdlc fashion_cnn"
./cnn gradcheck --data small-images.idx,small-labels.idx --max-elems 16 > cgrad.log || { cat cgrad.log; fail "cnn gradcheck"; }
grep -q float64 cgrad.log || fail "cnn gradcheck did not run in float64"
./cnn train --data small-images.idx,small-labels.idx --epochs 1 --save cnn.ckpt > ctrain.log || { cat ctrain.log; fail "cnn train"; }
./cnn gradcheck --load cnn.ckpt --data small-images.idx,small-labels.idx --max-elems 16 > cgrad2.log ||
    { cat cgrad2.log; fail "cnn gradcheck at the trained point"; }
cat ctrain.log
./cnn eval --load cnn.ckpt --data "$test" > ceval.log || fail "cnn eval"
cat ceval.log
acc=$(acc_of ceval.log)
awk -v a="$acc" 'BEGIN { exit !(a >= 0.55) }' || fail "CNN test accuracy $acc < 0.55"
# Convolutions split the batch over threads (grad_weight in fixed groups):
# the same result on 1 and 3 threads.
sh "$head" "$data/train-images-idx3-ubyte.gz" 500 tiny-images.idx
sh "$head" "$data/train-labels-idx1-ubyte.gz" 500 tiny-labels.idx
for t in 1 3; do
    ./cnn train --data tiny-images.idx,tiny-labels.idx --epochs 1 --threads $t --save cnn$t.ckpt > /dev/null ||
        fail "cnn train --threads $t"
done
cmp -s cnn1.ckpt cnn3.ckpt || fail "the CNN trains differently on 1 and 3 threads"
echo "fashion: all checks passed"
