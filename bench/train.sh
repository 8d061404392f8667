#!/bin/sh
# Training and inference speed side by side with the peer (PyTorch on CPU),
# in one run, as ratios:
#   W1 (house-price regression): us per full-batch step, from train --log
#      (the whole loop: data, hyper-parameters, the log) and from
#      `./model bench` (the train step alone, median);
#   W2 (the Fashion-MNIST MLP), W4 (the CNN): training samples/s over one
#      epoch of N images (W4: N / 4); batch-1 predict latency (median, us)
#      and batch-256 predict samples/s from `./model bench` (executables
#      compiled with --max-batch 256), against bench/peer_torch.py infer.
# The sides alternate, REPEAT times each, and the medians are compared,
# so all see the same (noisy, shared) machine.
# Every side uses THREADS threads (default 1): mdl through MDL_THREADS,
# PyTorch torch.set_num_threads (with OMP_WAIT_POLICY=PASSIVE, see
# shared/FACTS.md).
# BEFORE_RUNTIME=DIR (a directory holding mdlrt.h and libmdlrt.a of
# another runtime, e.g. an earlier commit's) adds a column: W1 and W2
# training with executables from the same compiler linked against it, in
# the same alternation, and the ratio after/before.
#   sh bench/train.sh [N_IMAGES [REPEAT [THREADS]]]   (from the repository root,
#   after building into build/; needs python3-torch and dataset-fashion-mnist)
set -eu
n=${1:-20000} repeat=${2:-3} threads=${3:-1}
export MDL_THREADS=$threads TORCH_THREADS=$threads OMP_WAIT_POLICY=PASSIVE
unset OPENBLAS_CORETYPE OPENBLAS_L2_SIZE
MDLC=${MDLC:-build/mdlc}
D=${DATA:-/usr/share/datasets/fashion-mnist}
PY=${PYTHON:-/usr/bin/python3}
S=${BENCH_SECONDS:-0.5} # per latency case, each side
before=${BEFORE_RUNTIME:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$MDLC" examples/house_price.mdl -o "$work/house"
"$MDLC" examples/fashion_mlp.mdl -o "$work/fmlp"
"$MDLC" examples/fashion_cnn.mdl -o "$work/fcnn"
"$MDLC" examples/fashion_mlp.mdl --max-batch 256 -o "$work/fmlp256"
"$MDLC" examples/fashion_cnn.mdl --max-batch 256 -o "$work/fcnn256"
if [ -n "$before" ]; then
    MDL_RUNTIME_DIR=$before "$MDLC" examples/house_price.mdl -o "$work/house.before"
    MDL_RUNTIME_DIR=$before "$MDLC" examples/fashion_mlp.mdl -o "$work/fmlp.before"
fi
n4=$((n / 4))
sh tests/e2e/idx_head.sh "$D/train-images-idx3-ubyte.gz" "$n" "$work/img.idx"
sh tests/e2e/idx_head.sh "$D/train-labels-idx1-ubyte.gz" "$n" "$work/lab.idx"
sh tests/e2e/idx_head.sh "$D/train-images-idx3-ubyte.gz" "$n4" "$work/img4.idx"
sh tests/e2e/idx_head.sh "$D/train-labels-idx1-ubyte.gz" "$n4" "$work/lab4.idx"

median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
for f in w1 w1b w1bench w2 w2b w4 l2 r2 l4 r4; do
    : > "$work/$f.mdl"
    : > "$work/$f.torch"
done

# w1 BINARY OUT: us per step from the train command's own --log timing
# (total seconds / steps; W1 has one step per epoch).
w1() {
    "$1" train --data examples/data/house.csv --log "$work/w1.csv" > /dev/null
    awk -F, 'END { print $NF / $2 * 1e6 }' "$work/w1.csv" >> "$2"
}
# w2 BINARY OUT: samples per second over one epoch of the first n images.
w2() {
    "$1" train --data "$work/img.idx,$work/lab.idx" --epochs 1 --log "$work/w2.csv" > /dev/null
    awk -F, -v n="$n" 'END { print n / $NF }' "$work/w2.csv" >> "$2"
}
# infer BINARY NAME: batch-1 p50 and batch-256 samples/s from ./model bench.
infer() {
    "$1" bench --batch 256 --seconds "$S" > "$work/bench.txt"
    awk '$1 == "predict" && $2 == 1 { print $4 }' "$work/bench.txt" >> "$work/l$2.mdl"
    awk '$1 == "predict" && $2 == 256 { print $7 }' "$work/bench.txt" >> "$work/r$2.mdl"
}
infer_torch() {
    "$PY" bench/peer_torch.py infer "w$1" "$S" > "$work/peer.txt"
    awk '{ print $3 }' "$work/peer.txt" >> "$work/l$1.torch"
    awk '{ print $7 }' "$work/peer.txt" >> "$work/r$1.torch"
}

i=0
while [ "$i" -lt "$repeat" ]; do
    w1 "$work/house" "$work/w1.mdl"
    [ -z "$before" ] || w1 "$work/house.before" "$work/w1b.mdl"
    "$work/house" bench --iters 2000 | awk '$1 == "train" { print $4 }' >> "$work/w1bench.mdl"
    "$PY" bench/peer_torch.py w1 examples/data/house.csv | awk '{ print $3 }' >> "$work/w1.torch"
    w2 "$work/fmlp" "$work/w2.mdl"
    [ -z "$before" ] || w2 "$work/fmlp.before" "$work/w2b.mdl"
    "$PY" bench/peer_torch.py w2 "$work/img.idx" "$work/lab.idx" "$n" | awk '{ print $3 }' >> "$work/w2.torch"
    "$work/fcnn" train --data "$work/img4.idx,$work/lab4.idx" --epochs 1 --log "$work/w4.csv" > /dev/null
    awk -F, -v n="$n4" 'END { print n / $NF }' "$work/w4.csv" >> "$work/w4.mdl"
    "$PY" bench/peer_torch.py w4 "$work/img4.idx" "$work/lab4.idx" "$n4" | awk '{ print $3 }' >> "$work/w4.torch"
    infer "$work/fmlp256" 2
    infer_torch 2
    infer "$work/fcnn256" 4
    infer_torch 4
    i=$((i + 1))
done

# row LABEL FORMAT MDL TORCH LOWER_IS_BETTER [BEFORE]
row() {
    ratio=$(if [ "$5" = 1 ]; then echo "$4 / $3"; else echo "$3 / $4"; fi | bc -l)
    if [ -n "$before" ]; then
        if [ -n "${6:-}" ]; then
            gain=$(if [ "$5" = 1 ]; then echo "$6 / $3"; else echo "$3 / $6"; fi | bc -l)
            printf "%-38s $2 $2 %7.2fx $2 %7.2fx\n" "$1" "$6" "$3" "$gain" "$4" "$ratio"
        else
            printf "%-38s %12s $2 %8s $2 %7.2fx\n" "$1" - "$3" - "$4" "$ratio"
        fi
    else
        printf "%-38s $2 $2 %7.2fx\n" "$1" "$3" "$4" "$ratio"
    fi
}
m() { median < "$work/$1.mdl"; }
t() { median < "$work/$1.torch"; }
if [ -n "$before" ]; then
    printf '%-38s %12s %12s %8s %12s %8s\n' "workload ($threads thread(s) each)" "mdl before" mdl gain pytorch ratio
else
    printf '%-38s %12s %12s %8s\n' "workload ($threads thread(s) each)" mdl pytorch ratio
fi
row "W1 us/step, train loop (lower better)" %12.2f "$(m w1)" "$(t w1)" 1 "$([ -z "$before" ] || m w1b)"
row "W1 us/step, bench train p50" %12.2f "$(m w1bench)" "$(t w1)" 1
row "W2 train samples/s ($n images)" %12.0f "$(m w2)" "$(t w2)" 0 "$([ -z "$before" ] || m w2b)"
row "W4 train samples/s ($n4 images)" %12.0f "$(m w4)" "$(t w4)" 0
row "W2 batch-1 latency us, p50" %12.2f "$(m l2)" "$(t l2)" 1
row "W2 batch-256 predict samples/s" %12.0f "$(m r2)" "$(t r2)" 0
row "W4 batch-1 latency us, p50" %12.2f "$(m l4)" "$(t l4)" 1
row "W4 batch-256 predict samples/s" %12.0f "$(m r4)" "$(t r4)" 0
