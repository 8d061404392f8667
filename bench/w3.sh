#!/bin/sh
# W3, the char LSTM, beside PyTorch: see bench/textgen.sh.
#
#   sh bench/w3.sh [THREADS]          train one epoch and sample (textgen.sh w3)
#   sh bench/w3.sh sample [REPEAT]    sampling only, in seconds: chars/s of
#                                     `generate` (batch 1, one LSTM step a
#                                     character) at 1 and 2 threads beside
#                                     PyTorch's sampling loop at 1 and 2
#
# Sampling speed does not depend on the weights, so `sample` trains on the
# first 64 KB of the corpus only (for a checkpoint) and times PyTorch's
# sample() of bench/peer_torch_w3.py on an untrained model.  mdl's rate is
# that of 11000 characters less that of 1000 (start-up and loading
# cancel); the sides alternate REPEAT times (default 3) and the medians are
# printed with the ratios.  Generated text must be identical at 1 and 2
# threads; the script says so.
set -eu
[ "${1:-}" = sample ] || exec sh "$(dirname "$0")/textgen.sh" w3 "$@"
REPEAT=${2:-3}
OUT=${OUT:-build/bench-w3}
PY=${PYTHON:-/usr/bin/python3}
mkdir -p "$OUT"
[ -s "$OUT/corpus.txt" ] || sh examples/make_corpus.sh "$OUT/corpus.txt"
head -c 65536 "$OUT/corpus.txt" > "$OUT/head.txt"
build/mdlc examples/char_lstm.mdl -o "$OUT/char_lstm"
"$OUT/char_lstm" train --data "$OUT/head.txt" --epochs 1 --threads 1 --quiet --save "$OUT/sample.ckpt" > /dev/null

seconds() { # LENGTH THREADS: seconds of one generate run
    start=$(date +%s.%N)
    "$OUT/char_lstm" generate --load "$OUT/sample.ckpt" --prime "
" --length "$1" --temperature 1.0 --seed 1 --threads "$2" > "$OUT/sample.$2.txt"
    echo "$start $(date +%s.%N)" | awk '{ print $2 - $1 }'
}
median() { sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
: > "$OUT/mdl.1" ; : > "$OUT/mdl.2" ; : > "$OUT/torch.1" ; : > "$OUT/torch.2"
i=0
while [ "$i" -lt "$REPEAT" ]; do
    for t in 1 2; do
        short=$(seconds 1000 "$t")
        long=$(seconds 11000 "$t")
        echo "$short $long" | awk '{ print 10000 / ($2 - $1) }' >> "$OUT/mdl.$t"
        if "$PY" -c 'import torch' 2> /dev/null; then
            (cd bench && OMP_WAIT_POLICY=PASSIVE TORCH_THREADS=$t "$PY" -c "
import sys, torch, peer_torch_w3 as p
torch.manual_seed(1)
rows, vocab = p.streams(sys.argv[1])
print(p.sample(p.CharLSTM(), vocab, 2000, torch.Generator().manual_seed(1))[1])" "../$OUT/corpus.txt") >> "$OUT/torch.$t"
        fi
    done
    i=$((i + 1))
done
cmp -s "$OUT/sample.1.txt" "$OUT/sample.2.txt" && echo "text identical at 1 and 2 threads" ||
    echo "TEXT DIFFERS at 1 and 2 threads"
for t in 1 2; do
    m=$(median < "$OUT/mdl.$t")
    p=$(median < "$OUT/torch.$t")
    [ -n "$p" ] || p=0
    echo "$t $m $p" | awk '{ printf "W3 sampling chars/s, %d thread(s): mdl %.0f, PyTorch %.0f, ratio %s\n",
        $1, $2, $3, ($3 > 0 ? sprintf("%.1fx", $2 / $3) : "-") }'
done
