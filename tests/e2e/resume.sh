#!/bin/sh
# End to end: `train --resume` continues a run exactly.  The model
# (tests/e2e/resume/mlp.mdl) has dropout, whose masks come from the seed
# and the step count, a cosine schedule with warm-up over the whole run,
# Adam, and a shuffle per epoch: trained on 2000 Fashion-MNIST images for
# 3 epochs in one go, or stopped (--stop-after, or SIGTERM) and resumed,
# the final checkpoints must be the same file, byte for byte (weights,
# optimizer state, metadata), and the per-epoch log the same numbers.
# --load of the same stopped checkpoint (a new run from its weights) must
# not: that shows the comparison can fail.
# usage: resume.sh MDLC SOURCE_DIR WORK_DIR [DATA_DIR]
set -eu
mdlc=$1 src=$2 work=$3 data=${4:-/usr/share/datasets/fashion-mnist}
fail() { echo "FAIL: $*"; exit 1; }
if [ ! -f "$data/train-images-idx3-ubyte.gz" ]; then
    echo "SKIP: no Fashion-MNIST in $data (apt-get install dataset-fashion-mnist)"
    exit 77
fi
rm -rf "$work" && mkdir -p "$work" && cd "$work"
sh "$src/tests/e2e/idx_head.sh" "$data/train-images-idx3-ubyte.gz" 2000 images.idx
sh "$src/tests/e2e/idx_head.sh" "$data/train-labels-idx1-ubyte.gz" 2000 labels.idx
"$mdlc" "$src/tests/e2e/resume/mlp.mdl" -o mlp || fail "mdlc resume/mlp.mdl"
train() { ./mlp train --data images.idx,labels.idx --val-split 0.1 "$@"; }
# the log without its seconds column
numbers() { cut -d, -f1-7 "$1"; }

train --save full.ckpt --log full.csv > full.out || { cat full.out; fail "the uninterrupted run"; }
grep -q '^epoch 3/3 ' full.out || fail "the run did not train 3 epochs"

# stopped in the middle of epoch 2 (29 steps an epoch), resumed
train --save mid.ckpt --log mid.csv --stop-after 40 > mid1.out || fail "--stop-after 40"
grep -q '^stopped after step 40 (epoch 2, step 11 of 29); saved mid.ckpt' mid1.out || { cat mid1.out; fail "stop message"; }
grep -q '^epoch 2/3' mid1.out && fail "--stop-after 40 finished epoch 2"
train --resume mid.ckpt --save mid.ckpt --log mid.csv > mid2.out || { cat mid2.out; fail "--resume mid.ckpt"; }
grep -q '^epoch 1/3' mid2.out && fail "the resumed run trained epoch 1 again"
cmp full.ckpt mid.ckpt || fail "stopped at step 40 and resumed: the checkpoint differs from the run without a stop"
numbers full.csv > a.txt
numbers mid.csv > b.txt
cmp a.txt b.txt || fail "the resumed run's log differs: $(diff a.txt b.txt)"

# stopped at an epoch's end, then twice more
train --save three.ckpt --stop-after 29 > /dev/null || fail "--stop-after 29"
train --resume three.ckpt --save three.ckpt --stop-after 30 > /dev/null || fail "resume, --stop-after 30"
train --resume three.ckpt --save three.ckpt --stop-after 75 > /dev/null || fail "resume, --stop-after 75"
train --resume three.ckpt --save three.ckpt > /dev/null || fail "resume to the end"
cmp full.ckpt three.ckpt || fail "three stops and resumes: the checkpoint differs from the run without a stop"

# the control: a new run from the stopped weights is not the same run
train --save mid.ckpt --stop-after 40 > /dev/null
train --load mid.ckpt --epochs 2 --save loaded.ckpt > /dev/null || fail "--load"
cmp -s full.ckpt loaded.ckpt && fail "--load gave the same checkpoint as --resume: the test cannot tell them apart"

# a longer run: SIGTERM once it has logged two epochs; it saves and says
# how to go on, exit status 128 + 15; resumed, it ends as the run without
# the signal
train --epochs 300 --save long.ckpt > long.out || fail "300 epochs"
./mlp train --data images.idx,labels.idx --val-split 0.1 --epochs 300 --save sig.ckpt --log sig.csv \
    > sig1.out 2> sig1.err &
pid=$!
tries=0
until [ -f sig.csv ] && [ "$(wc -l < sig.csv)" -ge 3 ]; do
    tries=$((tries + 1))
    [ $tries -lt 600 ] || { kill $pid; fail "no epoch logged in 30 s"; }
    sleep 0.05
done
kill -TERM $pid
status=0
wait $pid || status=$?
if [ $status -eq 0 ]; then
    echo "note: the run finished before the signal came; the signal case is not checked"
else
    [ $status -eq 143 ] || { cat sig1.err; fail "exit status $status after SIGTERM, not 143"; }
    grep -q "^interrupted after step [0-9]* (epoch [0-9]*, step [0-9]* of 29); saved sig.ckpt: '[./]*mlp train --resume sig.ckpt' goes on from there" sig1.err ||
        { cat sig1.err; fail "the interrupted run's message"; }
    train --resume sig.ckpt --save sig.ckpt > sig2.out || { cat sig2.out; fail "resume after SIGTERM"; }
    cmp long.ckpt sig.ckpt || fail "stopped by SIGTERM and resumed: the checkpoint differs ($(cat sig1.err))"
    echo "SIGTERM: $(cat sig1.err)"
fi

# what cannot continue the run is refused, naming the checkpoint
expect() {
    want=$1
    shift
    if "$@" > err.out 2>&1; then fail "accepted: $*"; fi
    grep -q -- "$want" err.out || { cat err.out; fail "for '$*' expected: $want"; }
}
train --save done.ckpt --epochs 1 > /dev/null
expect "done.ckpt has finished 1 epoch: pass --epochs N with N > 1 to train on" train --resume done.ckpt
train --resume done.ckpt --epochs 2 --save done2.ckpt > done2.out 2>&1 || fail "--resume done.ckpt --epochs 2"
grep -q '^epoch 2/2' done2.out || fail "--epochs 2 after a finished epoch"
expect "mid.ckpt was trained with batch 64: resuming with --batch 32 would not continue its run" \
    train --resume mid.ckpt --batch 32
expect "mid.ckpt was trained with seed 7: resuming with --seed 8 would not continue its run" \
    train --resume mid.ckpt --seed 8
expect "mid.ckpt was trained on 1800 samples an epoch, images.idx,labels.idx gives 1600" \
    ./mlp train --data images.idx,labels.idx --val-split 0.2 --resume mid.ckpt
expect "mid.ckpt was trained without --no-shuffle: resume without it" train --resume mid.ckpt --no-shuffle
expect "mid.ckpt is at step 40 already: --stop-after 20 is behind it" train --resume mid.ckpt --stop-after 20
expect "error: --resume is for one run: it does not go with --load" train --resume mid.ckpt --load mid.ckpt
expect "missing.ckpt" train --resume missing.ckpt
echo "all resume checks passed"
