#!/bin/sh
# The text-generation workloads of bench/../shared/bench/WORKLOADS.md, mdl
# beside PyTorch in one run, at THREADS threads (default 1):
#
#     sh bench/textgen.sh w3 [THREADS]      the char LSTM (examples/char_lstm.mdl)
#     sh bench/textgen.sh w5 [THREADS]      the char GPT (examples/tiny_gpt.mdl)
#
# (bench/w3.sh and bench/w5.sh are these), from the repository root after
# building into build/.  Both train one epoch on the fortunes corpus
# (examples/make_corpus.sh) -- W3 truncated BPTT over 32 streams, W5 random
# windows -- and print train tokens (characters) per second after the
# warm-up steps (10 for W3, 5 for W5), the mean loss of each 40-step run
# over the next 200 steps, the epoch's mean loss and sampling tokens/s
# (batch 1, temperature 1: one step per token for mdl -- W5 through its KV
# cache -- and for PyTorch's LSTM; a forward pass over the last 64 tokens
# per token for PyTorch's GPT), then the ratios.  PyTorch runs only where
# /usr/bin/python3 imports torch (Debian: python3-torch).
set -eu
W=${1:?usage: textgen.sh w3|w5 [THREADS]}
THREADS=${2:-1}
case $W in
w3) model=char_lstm warm=10 ;;
w5) model=tiny_gpt warm=5 ;;
*) echo "textgen.sh: unknown workload '$W' (w3 or w5)" >&2; exit 2 ;;
esac
OUT=${OUT:-build/bench-$W}
mkdir -p "$OUT"
[ -s "$OUT/corpus.txt" ] || sh examples/make_corpus.sh "$OUT/corpus.txt"
build/mdlc "examples/$model.mdl" -o "$OUT/$model"

echo "== mdl $W ($THREADS threads)"
"$OUT/$model" train --data "$OUT/corpus.txt" --epochs 1 --threads "$THREADS" --quiet \
    --log-steps "$OUT/steps.csv" --save "$OUT/$model.ckpt"
awk -F, -v w=$warm 'NR > 1 { loss[$1] = $3; t[$1] = $5; n = $1 }
    END {
        printf "mdl train_tokens_per_s %.0f\n", (n - w) * 32 * 64 / (t[n] - t[w])
        printf "mdl loss steps %d-%d by 40:", w + 1, w + 200
        for (s = w + 1; s <= w + 200; s += 40) { m = 0; for (i = s; i < s + 40; i++) m += loss[i]; printf " %.3f", m / 40 }
        m = 0; for (i = 1; i <= n; i++) m += loss[i]
        printf "\nmdl epoch1_mean_loss %.3f over %d steps\n", m / n, n
    }' "$OUT/steps.csv" | tee "$OUT/mdl.txt"
# sampling: the time of 1000 + SAMPLE tokens less that of 1000 (start-up and
# loading cancel; at ~4 us a token 10000 tokens took 40 ms, too short to time)
SAMPLE=${SAMPLE:-100000}
sample() {
    start=$(date +%s.%N)
    "$OUT/$model" generate --load "$OUT/$model.ckpt" --prime "
" --length "$1" --temperature 1.0 --seed 1 --threads "$THREADS" > /dev/null
    echo "$start $(date +%s.%N)" | awk '{ print $2 - $1 }'
}
short=$(sample 1000)
long=$(sample $((1000 + SAMPLE)))
echo "$short $long" | awk -v n="$SAMPLE" '{ printf "mdl sample_tokens_per_s %.0f\n", n / ($2 - $1) }' | tee -a "$OUT/mdl.txt"

if /usr/bin/python3 -c 'import torch' 2>/dev/null; then
    echo "== PyTorch $W ($THREADS threads)"
    OMP_WAIT_POLICY=PASSIVE TORCH_THREADS=$THREADS /usr/bin/python3 "bench/peer_torch_$W.py" "$OUT/corpus.txt" |
        grep "^$W" | sed "s/^$W/torch/; s/_chars_per_s/_tokens_per_s/g" | tee "$OUT/torch.txt"
    awk '{ for (i = 2; i < NF; i++) { if ($i == "train_tokens_per_s") v[$1 "t"] = $(i + 1)
                                      if ($i == "sample_tokens_per_s") v[$1 "s"] = $(i + 1) } }
        END { printf "ratio mdl/PyTorch: train %.2fx, sampling %.2fx\n", v["mdlt"] / v["torcht"], v["mdls"] / v["torchs"] }' \
        "$OUT/mdl.txt" "$OUT/torch.txt"
fi
