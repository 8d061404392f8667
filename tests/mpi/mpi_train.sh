#!/bin/sh
# Data-parallel training over Open MPI (mdlc --mpi, runtime/rt_mpi.c) on
# the Fashion-MNIST MLP example, against one process:
#   - the executables without --mpi depend on libc, libm (and pthreads)
#     only; those with it on libmpi too;
#   - mpirun -np 2 and -np 4 with the per-rank batch 64 / 32 train to the
#     weights of one process with batch 128 and the same order, within a
#     float tolerance (not bit for bit: see docs/mpi.md), with Adam (the
#     example) and with SGD (whose update, unlike Adam's, scales with the
#     gradient, so a wrong weighting of the ranks' shares shows);
#   - so do 3 ranks, whose shares of the last batch differ;
#   - the gradient buckets do not change the sums (bit for bit at 2 ranks);
#   - without mpirun an --mpi executable is the one process, bit for bit;
#   - each rank draws its own dropout masks;
#     train --sweep is refused on every rank;
#   - the progress line gives the global batch; the epoch's and the
#     validation's numbers are those of the whole data set;
#   - a rank that fails, dies or stops answering ends the job with an
#     error instead of a hang.
# Skipped (exit 77) without mpirun or without dataset-fashion-mnist.
# usage: mpi_train.sh MDLC CKPT_DIFF SOURCE_DIR WORK_DIR [DATA_DIR]
set -eu
mdlc=$1 ckpt_diff=$2 src=$3 work=$4 data=${5:-/usr/share/datasets/fashion-mnist}
. "$src/tests/mpi/mpi_lib.sh"
need_mpirun
need_fashion "$data"
rm -rf "$work" && mkdir -p "$work" && cd "$work"

# 1026 training images: with a global batch of 128 the last batch holds
# 2, so at 4 ranks two of them have no sample in it.
sh "$src/tests/e2e/idx_head.sh" "$data/train-images-idx3-ubyte.gz" 1026 img.idx
sh "$src/tests/e2e/idx_head.sh" "$data/train-labels-idx1-ubyte.gz" 1026 lab.idx
sh "$src/tests/e2e/idx_head.sh" "$data/t10k-images-idx3-ubyte.gz" 301 val-img.idx
sh "$src/tests/e2e/idx_head.sh" "$data/t10k-labels-idx1-ubyte.gz" 301 val-lab.idx
train="--data img.idx,lab.idx --val val-img.idx,val-lab.idx --epochs 1 --seed 11"

sed 's/^train .*/train  sgd(lr = 0.05), batch = 64, epochs = 1/' "$src/examples/fashion_mlp.mdl" > sgd_mlp.mdl
grep -q 'sgd(lr' sgd_mlp.mdl || fail "could not edit the train line"
for model in "$src/examples/fashion_mlp.mdl" sgd_mlp.mdl; do
    name=$(basename "$model" .mdl)
    "$mdlc" "$model" --max-batch 128 -o "$name" || fail "mdlc $name"
    "$mdlc" --mpi "$model" --max-batch 128 -o "$name-mpi" || fail "mdlc --mpi $name"
done

# What the executables need at run time.
readelf -d fashion_mlp | awk '/NEEDED/ { print $NF }' | tr -d '[]' > needed.txt
readelf -d fashion_mlp-mpi | awk '/NEEDED/ { print $NF }' | tr -d '[]' > needed-mpi.txt
# (and, in the sanitizer build, the sanitizers' runtimes)
grep -vqE '^(libc|libm|libpthread|ld-linux[-a-z0-9_]*|libasan|libubsan)\.so' needed.txt &&
    fail "an executable without --mpi needs $(tr '\n' ' ' < needed.txt)"
grep -q '^libmpi\.so' needed-mpi.txt || fail "mdlc --mpi did not link libmpi: $(tr '\n' ' ' < needed-mpi.txt)"

# The epoch line's loss, acc, val_loss and val_acc, the final line's loss and acc.
numbers() {
    awk '$1 == "epoch" || $1 == "final" { for (i = 2; i < NF; i++) if ($i ~ /^(val_)?(loss|acc)$/) print $(i + 1) }' "$1"
}
close() { # the numbers of two runs agree to 1e-4 of their size
    paste -d' ' "$1" "$2" | awk '{ for (i = 1; i <= NF / 2; i++) { a = $i; b = $(i + NF / 2); d = a - b
        if (d < 0) d = -d; s = b < 0 ? -b : b; if (d > 1e-4 * s + 1e-6) exit 1 } }'
}

for name in fashion_mlp sgd_mlp; do
    ./$name train $train --batch 128 --save one-$name.ckpt > one-$name.log || { cat one-$name.log; fail "$name train"; }
    numbers one-$name.log > one-$name.num
    [ "$(wc -w < one-$name.num)" -eq 6 ] || { cat one-$name.log; fail "no final or validation numbers in $name's log"; }
    for np in 2 4; do
        per=$((128 / np))
        mpi -np $np ./$name-mpi train $train --batch $per --save $np-$name.ckpt > $np-$name.log 2> $np-$name.err ||
            { cat $np-$name.log $np-$name.err; fail "$name on $np ranks"; }
        grep -q "batch 128 ($per per rank x $np ranks)" $np-$name.log ||
            { cat $np-$name.log; fail "the progress line does not give the global batch at $np ranks"; }
        # 1e-4 of each tensor's largest value: the runs here differ by
        # up to ~1e-5 (docs/mpi.md); a rank's share lost or weighted
        # wrongly moves SGD's weights by ~1e-2 of that.
        "$ckpt_diff" one-$name.ckpt $np-$name.ckpt 1e-4 > diff-$np-$name.txt ||
            { cat diff-$np-$name.txt; fail "$name: $np ranks and one process trained different weights"; }
        numbers $np-$name.log > $np-$name.num
        close one-$name.num $np-$name.num ||
            fail "$name: loss, accuracy, val_loss at $np ranks $(cat $np-$name.num), one process $(cat one-$name.num)"
    done
done
"$ckpt_diff" one-sgd_mlp.ckpt 2-sgd_mlp.ckpt 0 > /dev/null &&
    echo "note: 2 ranks matched one process bit for bit this time"

# 3 ranks: uneven shares of a short last batch (923 samples after
# --val-split 0.1 in steps of 126: the last 41 split 13, 14, 14), each
# weighted by its share of it.
split="--data img.idx,lab.idx --val-split 0.1 --epochs 1 --seed 3"
./sgd_mlp train $split --batch 126 --save one-split.ckpt > one-split.log || { cat one-split.log; fail "--val-split"; }
mpi -np 3 ./sgd_mlp-mpi train $split --batch 42 --save 3-split.ckpt > 3-split.log 2>&1 ||
    { cat 3-split.log; fail "3 ranks"; }
"$ckpt_diff" one-split.ckpt 3-split.ckpt 1e-4 > diff-3-split.txt ||
    { cat diff-3-split.txt; fail "3 ranks with uneven shares and one process trained different weights"; }

# Buckets: by default (64 KiB) the MLP's gradients go in 2 (the last two
# layers' 137 KB while the first layer's gradient is computed, then its
# 803 KB), with 1 KiB in 4, with 4 MiB in 1; the sums are the same (at 2
# ranks, a + b in any order).
for kb in 1 64 4096; do
    MDL_MPI_BUCKET_KB=$kb MDL_MPI_STATS=1 mpi -x MDL_MPI_BUCKET_KB -x MDL_MPI_STATS -np 2 ./sgd_mlp-mpi train $train \
        --batch 64 --save bucket$kb.ckpt > bucket$kb.log 2>&1 || { cat bucket$kb.log; fail "$kb KiB buckets"; }
    "$ckpt_diff" 2-sgd_mlp.ckpt bucket$kb.ckpt 0 > diff-bucket$kb.txt ||
        { cat diff-bucket$kb.txt; fail "$kb KiB buckets changed the sums"; }
done
for expect in 1:4.00 64:2.00 4096:1.00; do
    kb=${expect%:*} n=${expect#*:}
    awk -v n=$n '$1 == "mpi:" && $4 == n { found = 1 } END { exit !found }' bucket$kb.log ||
        { cat bucket$kb.log; fail "$kb KiB buckets: expected $n allreduce calls a step"; }
done

# Started without mpirun, an --mpi executable is the one process.
./fashion_mlp-mpi train $train --batch 128 --save alone.ckpt > alone.log || { cat alone.log; fail "--mpi, no mpirun"; }
cmp one-fashion_mlp.ckpt alone.ckpt || fail "an --mpi executable without mpirun trained otherwise than one process"
# What does not run on ranks is refused on all of them, without an abort.
mpi -np 2 ./fashion_mlp-mpi train --data img.idx,lab.idx --sweep lr=0.1,0.01 > sweep.log 2>&1 && fail "--sweep: exit 0"
[ "$(grep -c 'error: train --sweep does not run under mpirun' sweep.log)" -eq 2 ] || { cat sweep.log; fail "--sweep"; }
grep -q MPI_ABORT sweep.log && { cat sweep.log; fail "--sweep: MPI_Abort"; }

# Dropout: each rank draws its own masks.  Two ranks of one sample each,
# the same sample, one step of SGD: were rank 1's masks rank 0's (both
# index their batch from row 0), the step would be one process's on that
# sample alone, and so would the weights.
cat > drop.mdl <<'MDL'
model droptest
input  x: f32[B, 32]
target y: f32[B]
param  w: f32[32] = ones
pred = dropout(x, 0.5) @ w
loss   mse(pred, y)
train  sgd(lr = 0.01), batch = 1, epochs = 1
MDL
awk 'BEGIN { for (i = 0; i < 32; i++) printf "x%d,", i; print "y"
             for (r = 0; r < 2; r++) { for (i = 0; i < 32; i++) printf "1,"; print "0" } }' > drop2.csv
head -2 drop2.csv > drop1.csv
"$mdlc" drop.mdl -o drop && "$mdlc" --mpi drop.mdl -o drop-mpi || fail "mdlc drop.mdl"
./drop train --data drop1.csv --no-shuffle > drop1.log || { cat drop1.log; fail "dropout, one process"; }
mpi -np 2 ./drop-mpi train --data drop2.csv --no-shuffle > drop2.log 2>&1 || { cat drop2.log; fail "dropout, 2 ranks"; }
# (the final loss, on the one sample: the same weights give the same)
grep '^final ' drop1.log > w1.txt && grep '^final ' drop2.log > w2.txt || fail "no final loss"
cmp -s w1.txt w2.txt && fail "dropout: rank 1 drew rank 0's masks"

# A rank that fails: its error, and the others stop (no hang).
mpi -np 2 sh -c 'if [ "$OMPI_COMM_WORLD_RANK" = 1 ]; then d=missing.idx; else d=img.idx; fi
    exec ./fashion_mlp-mpi train --data "$d",lab.idx --epochs 3' > fail.log 2>&1 && fail "a failing rank: mpirun exit 0"
grep -q "missing.idx" fail.log || { cat fail.log; fail "the failing rank's error is not shown"; }
grep -q "rank 1 of 2 failed: stopping all ranks" fail.log || { cat fail.log; fail "no 'stopping all ranks'"; }

# A rank that dies (SIGKILL after 1 s, in the middle of 100 epochs).
start=$(date +%s)
mpi -np 2 sh -c 'if [ "$OMPI_COMM_WORLD_RANK" = 1 ]; then pre="timeout -s KILL 1"; else pre=; fi
    exec $pre ./fashion_mlp-mpi train --data img.idx,lab.idx --epochs 100' > died.log 2>&1 && fail "a dead rank: exit 0"
[ $(($(date +%s) - start)) -lt 120 ] || fail "a dead rank: the others took $(($(date +%s) - start)) s to stop"
grep -qi "signal 9\|killed" died.log || { cat died.log; fail "a dead rank: mpirun did not say so"; }

# A rank that stops answering: rank 1's model, a child of its shell (so
# that mpirun does not see it stop), is stopped with SIGSTOP once rank 0
# has logged 20 steps; rank 0 gives up after MDL_MPI_TIMEOUT seconds, in
# whichever collective it was waiting, with an error that says so.
rm -f steps.csv rank1.pid
MDL_MPI_TIMEOUT=3 mpi -x MDL_MPI_TIMEOUT -np 2 sh -c 'if [ "$OMPI_COMM_WORLD_RANK" = 1 ]; then
        ./fashion_mlp-mpi train --data img.idx,lab.idx --epochs 100 & pid=$!
        echo $pid > rank1.pid
        until [ -f steps.csv ] && [ "$(wc -l < steps.csv)" -ge 20 ]; do sleep 0.1; done
        kill -STOP $pid
        wait $pid
    else exec ./fashion_mlp-mpi train --data img.idx,lab.idx --epochs 100 --log-steps steps.csv; fi' \
    > stopped.log 2>&1 && stopped=0 || stopped=$?
[ -f rank1.pid ] && kill -9 "$(cat rank1.pid)" 2> /dev/null || true
[ $stopped -ne 0 ] || fail "a stopped rank: exit 0"
[ $stopped -ne 124 ] || { cat stopped.log; fail "a stopped rank: mpirun still ran after 300 s"; }
grep -q "rank 0 of 2: no .* from the other ranks for 3 s" stopped.log ||
    { cat stopped.log; fail "a stopped rank: no timeout error"; }
echo "ok"
