#!/bin/sh
# Replays a PyTorch run of the W2 recipe in mdl: PyTorch's initial weights
# (as a safetensors checkpoint) and its batch order (as an IDX file of every
# epoch's permutation, one after the other), so the two runs differ only in
# floating-point rounding.  Prints both test accuracies and the largest
# weight difference per parameter.
#   sh bench/replay.sh [SEED [N_IMAGES [EPOCHS]]]   (from the repository root,
#   after building into build/; needs python3-torch and dataset-fashion-mnist)
# N_IMAGES is rounded down to a multiple of 64, so every batch is full on
# both sides.
set -eu
seed=${1:-0} n=${2:-59968} epochs=${3:-1}
n=$((n / 64 * 64))
MDLC=${MDLC:-build/mdlc}
D=${DATA:-/usr/share/datasets/fashion-mnist}
PY=${PYTHON:-/usr/bin/python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
"$MDLC" examples/fashion_mlp.mdl -o "$work/fmlp"
"$PY" bench/replay_torch.py "$D" "$work" "$seed" "$n" "$epochs"
"$work/fmlp" train --data "$work/x.idx,$work/y.idx" --load "$work/init.safetensors" --no-shuffle --epochs 1 \
    --val "$D/t10k-images-idx3-ubyte.gz,$D/t10k-labels-idx1-ubyte.gz" --save "$work/mdl.safetensors" --log "$work/log.csv" \
    --quiet
awk -F, -v s="$seed" -v n="$n" -v e="$epochs" 'NR == 2 { printf "mdl   seed %s n %s test_acc after %s epochs %.4f\n", s, n, e, $6 }' "$work/log.csv"
"$PY" bench/replay_torch.py compare "$work"
