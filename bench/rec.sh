#!/bin/sh
# The recommender (examples/recommender.mdl, matrix factorisation with
# biases), mdl beside PyTorch in one run, at THREADS threads (default 1):
#
#     sh bench/rec.sh [THREADS] [EPOCHS]
#
# from the repository root after building into build/.  Both train EPOCHS
# (default 12) epochs on make_ratings's default set (90,000 training
# ratings), batch 256, Adam, and print training samples/s over epochs 2 on
# (the first is warm-up: page faults, first touches) and the ratio.
# PyTorch runs only where /usr/bin/python3 imports torch.  This machine is
# shared: run it a few times and read the ratios, not one number.
set -eu
THREADS=${1:-1}
EPOCHS=${2:-12}
OUT=${OUT:-build/bench-rec}
mkdir -p "$OUT"
[ -s "$OUT/ratings.train.data" ] || build/examples/make_ratings "$OUT" > /dev/null
build/mdlc examples/recommender.mdl -o "$OUT/recommender"

echo "== mdl ($THREADS threads)"
"$OUT/recommender" train --data "$OUT/ratings.train.data" --epochs "$EPOCHS" --threads "$THREADS" --quiet \
    --log "$OUT/epochs.csv"
# --log's columns: epoch, step, loss, mse, lr, seconds (since training began)
awk -F, -v n="$(wc -l < "$OUT/ratings.train.data")" 'NR == 2 { t1 = $6 } NR > 2 { t = $6; k++; loss = $3 }
    END { printf "rec mdl train_samples_per_s %.0f last_epoch_loss %.4f\n", n * k / (t - t1), loss }' "$OUT/epochs.csv" |
    tee "$OUT/mdl.txt"

if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
    echo "== PyTorch ($THREADS threads)"
    OMP_WAIT_POLICY=PASSIVE TORCH_THREADS=$THREADS /usr/bin/python3 bench/peer_torch_rec.py \
        "$OUT/ratings.train.data" "$EPOCHS" | grep '^rec' | tee "$OUT/torch.txt"
    awk '{ v[$2] = $4 } END { printf "ratio mdl/PyTorch: train %.1fx\n", v["mdl"] / v["torch"] }' \
        "$OUT/mdl.txt" "$OUT/torch.txt"
fi
