#!/bin/sh
# W5 (bench/../shared/bench/WORKLOADS.md): the char GPT, mdl beside PyTorch
# in one run, at THREADS threads (default 1):
#
#     sh bench/w5.sh [THREADS]
#
# from the repository root after building into build/.  Both train one
# epoch of random windows of the fortunes corpus (examples/make_corpus.sh)
# and print train tokens/s (steps 6 on), the mean loss of each 40-step run
# over steps 6-205, the epoch's mean loss and sampling tokens/s (batch 1,
# temperature 1: mdl with its KV cache, PyTorch with a forward pass over the
# last 64 tokens per token), then the ratios.  PyTorch runs only where
# /usr/bin/python3 imports torch (Debian: python3-torch).
set -eu
THREADS=${1:-1}
OUT=${OUT:-build/bench-w5}
mkdir -p "$OUT"
[ -s "$OUT/corpus.txt" ] || sh examples/make_corpus.sh "$OUT/corpus.txt"
build/mdlc examples/tiny_gpt.mdl -o "$OUT/tiny_gpt"

echo "== mdl ($THREADS threads)"
"$OUT/tiny_gpt" train --data "$OUT/corpus.txt" --epochs 1 --threads "$THREADS" --quiet \
    --log-steps "$OUT/steps.csv" --save "$OUT/tiny_gpt.ckpt"
awk -F, 'NR > 1 { loss[$1] = $3; t[$1] = $5; n = $1 }
    END {
        printf "mdl train_tokens_per_s %.0f\n", (n - 5) * 32 * 64 / (t[n] - t[5])
        printf "mdl loss steps 6-205 by 40:"
        for (s = 6; s <= 205; s += 40) { m = 0; for (i = s; i < s + 40; i++) m += loss[i]; printf " %.3f", m / 40 }
        m = 0; for (i = 1; i <= n; i++) m += loss[i]
        printf "\nmdl epoch1_mean_loss %.3f over %d steps\n", m / n, n
    }' "$OUT/steps.csv" | tee "$OUT/mdl.txt"
# sampling: the time of 11000 tokens less that of 1000 (start-up and loading cancel)
sample() {
    start=$(date +%s.%N)
    "$OUT/tiny_gpt" generate --load "$OUT/tiny_gpt.ckpt" --prime "
" --length "$1" --temperature 1.0 --seed 1 --threads "$THREADS" > /dev/null
    echo "$start $(date +%s.%N)" | awk '{ print $2 - $1 }'
}
short=$(sample 1000)
long=$(sample 11000)
echo "$short $long" | awk '{ printf "mdl sample_tokens_per_s %.0f\n", 10000 / ($2 - $1) }' | tee -a "$OUT/mdl.txt"

if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
    echo "== PyTorch ($THREADS threads)"
    OMP_WAIT_POLICY=PASSIVE TORCH_THREADS=$THREADS /usr/bin/python3 bench/peer_torch_w5.py "$OUT/corpus.txt" |
        grep '^w5' | sed 's/^w5/torch/' | tee "$OUT/torch.txt"
    awk '{ for (i = 2; i < NF; i++) { if ($i == "train_tokens_per_s") v[$1 "t"] = $(i + 1)
                                      if ($i == "sample_tokens_per_s") v[$1 "s"] = $(i + 1) } }
        END { printf "ratio mdl/PyTorch: train %.2fx, sampling %.2fx\n", v["mdlt"] / v["torcht"], v["mdls"] / v["torchs"] }' \
        "$OUT/mdl.txt" "$OUT/torch.txt"
fi
