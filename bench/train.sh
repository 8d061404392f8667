#!/bin/sh
# Training speed side by side with the peer (PyTorch on CPU), in one run,
# as ratios: W1 (house-price regression, us per step), W2 (the
# Fashion-MNIST MLP) and W4 (the CNN), samples per second over one epoch of
# N images (W4: N / 4).
# The two sides alternate, REPEAT times each, and the medians are compared,
# so both see the same (noisy, shared) machine.
# Both sides use THREADS threads (default 1): mdl --threads, PyTorch
# torch.set_num_threads (with OMP_WAIT_POLICY=PASSIVE, see shared/FACTS.md).
#   sh bench/train.sh [N_IMAGES [REPEAT [THREADS]]]   (from the repository root,
#   after building into build/; needs python3-torch and dataset-fashion-mnist)
set -eu
n=${1:-20000} repeat=${2:-3} threads=${3:-1}
export MDL_THREADS=$threads TORCH_THREADS=$threads OMP_WAIT_POLICY=PASSIVE
MDLC=${MDLC:-build/mdlc}
D=${DATA:-/usr/share/datasets/fashion-mnist}
PY=${PYTHON:-/usr/bin/python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$MDLC" examples/house_price.mdl -o "$work/house"
"$MDLC" examples/fashion_mlp.mdl -o "$work/fmlp"
"$MDLC" examples/fashion_cnn.mdl -o "$work/fcnn"
n4=$((n / 4))
sh tests/e2e/idx_head.sh "$D/train-images-idx3-ubyte.gz" "$n" "$work/img.idx"
sh tests/e2e/idx_head.sh "$D/train-labels-idx1-ubyte.gz" "$n" "$work/lab.idx"

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
: > "$work/w1.mdl" ; : > "$work/w1.torch" ; : > "$work/w2.mdl" ; : > "$work/w2.torch"
: > "$work/w4.mdl" ; : > "$work/w4.torch"
sh tests/e2e/idx_head.sh "$D/train-images-idx3-ubyte.gz" "$n4" "$work/img4.idx"
sh tests/e2e/idx_head.sh "$D/train-labels-idx1-ubyte.gz" "$n4" "$work/lab4.idx"
i=0
while [ "$i" -lt "$repeat" ]; do
    # mdl: the train command's own timing (total seconds / steps), W1 has 1 step per epoch
    "$work/house" train --data examples/data/house.csv --log "$work/w1.csv" > /dev/null
    awk -F, 'END { print $NF / $2 * 1e6 }' "$work/w1.csv" >> "$work/w1.mdl"
    "$PY" bench/peer_torch.py w1 examples/data/house.csv | awk '{ print $3 }' >> "$work/w1.torch"
    "$work/fmlp" train --data "$work/img.idx,$work/lab.idx" --epochs 1 --log "$work/w2.csv" > /dev/null
    awk -F, -v n="$n" 'END { print n / $NF }' "$work/w2.csv" >> "$work/w2.mdl"
    "$PY" bench/peer_torch.py w2 "$work/img.idx" "$work/lab.idx" "$n" | awk '{ print $3 }' >> "$work/w2.torch"
    "$work/fcnn" train --data "$work/img4.idx,$work/lab4.idx" --epochs 1 --log "$work/w4.csv" > /dev/null
    awk -F, -v n="$n4" 'END { print n / $NF }' "$work/w4.csv" >> "$work/w4.mdl"
    "$PY" bench/peer_torch.py w4 "$work/img4.idx" "$work/lab4.idx" "$n4" | awk '{ print $3 }' >> "$work/w4.torch"
    i=$((i + 1))
done
m1=$(median < "$work/w1.mdl") t1=$(median < "$work/w1.torch")
m2=$(median < "$work/w2.mdl") t2=$(median < "$work/w2.torch")
m4=$(median < "$work/w4.mdl") t4=$(median < "$work/w4.torch")
printf '%-34s %12s %12s %8s\n' "workload ($threads thread(s) each)" mdl pytorch ratio
printf '%-34s %12.1f %12.1f %7.1fx\n' "W1 us/step (lower is better)" "$m1" "$t1" "$(echo "$t1 / $m1" | bc -l)"
printf '%-34s %12.0f %12.0f %7.2fx\n' "W2 train samples/s ($n images)" "$m2" "$t2" "$(echo "$m2 / $t2" | bc -l)"
printf '%-34s %12.0f %12.0f %7.2fx\n' "W4 train samples/s ($n4 images)" "$m4" "$t4" "$(echo "$m4 / $t4" | bc -l)"
