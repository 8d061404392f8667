#!/bin/sh
# End to end: models compiled by mdlc check their own gradients (float64
# against finite differences, and float32 against float64) with the
# executable's `gradcheck` command.  ctest runs it on
#   tests/e2e/rnn: a two-layer LSTM with state carried between steps
#     (backpropagation through time) and a reversed GRU of a user's own;
#   tests/e2e/attention: the prelude's layer_norm, gelu and self_attention
#     (batched products, causal softmax), and a whole transformer block.
# usage: model_gradcheck.sh MDLC SOURCE_DIR WORK_DIR MODEL.mdl...
set -eu
mdlc=$1 src=$2 work=$3
shift 3
fail() { echo "FAIL: $*"; exit 1; }
rm -rf "$work" && mkdir -p "$work" && cd "$work"
for file in "$@"; do
    model=$(basename "$file" .mdl)
    "$mdlc" "$src/$file" -o "$model" || fail "mdlc $model"
    ./"$model" gradcheck > "$model.gradcheck" || { cat "$model.gradcheck"; fail "$model gradcheck"; }
    grep -q '^gradcheck: PASS' "$model.gradcheck" || fail "$model gradcheck printed no PASS"
    tail -n 3 "$model.gradcheck"
done
echo "model_gradcheck: all checks passed"
