#!/bin/sh
# mdlc's f64 entries end to end: a compiled model's gradcheck runs in
# float64 and passes (house_price, house_price_robust), and with
# --no-f64-check the same model is checked in float32.
# usage: gradcheck_f64.sh MDLC SOURCE_DIR WORK_DIR
set -e
mdlc=$1 src=$2 work=$3
mkdir -p "$work"
cd "$work"
fail() { echo "FAIL: $*"; cat out.txt; exit 1; }
for m in house_price house_price_robust; do
    "$mdlc" "$src/examples/$m.mdl" -o "$m"
    ./"$m" gradcheck >out.txt || fail "$m gradcheck"
    grep -q "^gradcheck $m (float64): " out.txt || fail "$m: no float64 header"
    grep -q '^f32 vs f64 gradients: max rel error ' out.txt || fail "$m: no f32 vs f64 line"
    grep -q '^gradcheck: PASS$' out.txt || fail "$m: no PASS"
done
"$mdlc" --no-f64-check "$src/examples/house_price.mdl" -o hp32
./hp32 gradcheck >out.txt || fail "float32 gradcheck"
grep -q '^gradcheck house_price (float32): ' out.txt || fail "no float32 header"
echo PASS
