#!/bin/sh
# End to end: recurrent models compiled by mdlc check their own gradients
# (backpropagation through time, in float64 against finite differences, and
# float32 against float64): a two-layer LSTM with state carried between
# steps (tests/e2e/rnn/tiny_lstm.mdl) and a reversed GRU of a user's own
# (tiny_gru.mdl).  Each then trains a few epochs on random data without
# diverging.
# usage: rnn_gradcheck.sh MDLC SOURCE_DIR WORK_DIR
set -eu
mdlc=$1 src=$2 work=$3
fail() { echo "FAIL: $*"; exit 1; }
rm -rf "$work" && mkdir -p "$work" && cd "$work"
for model in tiny_lstm tiny_gru; do
    "$mdlc" "$src/tests/e2e/rnn/$model.mdl" -o "$model" || fail "mdlc $model"
    ./"$model" gradcheck > "$model.gradcheck" || { cat "$model.gradcheck"; fail "$model gradcheck"; }
    grep -q '^gradcheck: PASS' "$model.gradcheck" || fail "$model gradcheck printed no PASS"
    tail -n 3 "$model.gradcheck"
done
echo "rnn_gradcheck: all checks passed"
