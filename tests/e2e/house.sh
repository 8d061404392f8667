#!/bin/sh
# End to end: compile examples/house_price.mdl, check the executable stands
# alone, train it on the shipped data and check what it learned: MSE at the
# noise floor and the weights of the generating formula (read back through
# `predict` on unit rows, so this does not depend on how train prints).
# usage: house.sh MDLC SOURCE_DIR WORK_DIR
set -eu
mdlc=$1 src=$2 work=$3
fail() { echo "FAIL: $*"; exit 1; }
near() { awk -v a="$1" -v b="$2" -v t="$3" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= t) }'; }
rm -rf "$work" && mkdir -p "$work" && cd "$work"
data=$src/examples/data/house.csv

"$mdlc" "$src/examples/house_price.mdl" -o house || fail "mdlc failed"

# Only libc, libm and pthreads (plus the sanitizer runtimes in that build).
libs=$(ldd ./house | awk '{ print $1 }')
echo "$libs" | grep -qi llvm && fail "the executable links LLVM: $libs"
if ! echo "$libs" | grep -q libasan; then
    extra=$(echo "$libs" | grep -v -E '^(linux-vdso\.so|/lib64/ld-linux|libc\.so|libm\.so|libpthread\.so)' || true)
    [ -z "$extra" ] || fail "unexpected shared libraries: $extra"
fi

for cmd in train eval predict gradcheck info; do
    ./house $cmd --help > /dev/null || fail "$cmd --help"
done

./house train --data "$data" --save house.ckpt > train.log || fail "train"
cat train.log
[ -s house.ckpt ] || fail "no checkpoint"
# What train prints at the end ("  w = [W0, W1]" and "  b = B"), each
# within 0.01 of the generating formula (the noise's sd is 0.01 and there
# are 1000 rows, so a trained value is off by about 3e-4).
tw0=$(awk '$1 == "w" && $2 == "=" { gsub(/[][,]/, " "); print $3 }' train.log)
tw1=$(awk '$1 == "w" && $2 == "=" { gsub(/[][,]/, " "); print $4 }' train.log)
tb=$(awk '$1 == "b" && $2 == "=" { print $3 }' train.log)
[ -n "$tw0" ] && [ -n "$tw1" ] && [ -n "$tb" ] || fail "train printed no w = [..] and b = .. lines"
near "$tw0" 2 0.01 && near "$tw1" -3.4 0.01 && near "$tb" 4.2 0.01 ||
    fail "train's weights off: w = ($tw0, $tw1), b = $tb"

./house eval --load house.ckpt --data "$data" > eval.log || fail "eval"
cat eval.log
mse=$(awk '$1 == "loss" { print $2 }' eval.log)
# (awk compares an empty value as a string, "" <= "1.0e-4": check it is there)
[ -n "$mse" ] || fail "eval printed no loss line"
awk -v l="$mse" 'BEGIN { exit !(l <= 1.0e-4) }' || fail "final MSE $mse > 1e-4"

printf 'size,age\n1,0\n0,1\n0,0\n' > rows.csv
./house predict --load house.ckpt --input rows.csv > pred.csv || fail "predict"
[ "$(wc -l < pred.csv)" -eq 4 ] || fail "predict wrote $(wc -l < pred.csv) lines, expected 4"
b=$(sed -n 4p pred.csv)
w0=$(awk -v y="$(sed -n 2p pred.csv)" -v b="$b" 'BEGIN { print y - b }')
w1=$(awk -v y="$(sed -n 3p pred.csv)" -v b="$b" 'BEGIN { print y - b }')
echo "learned w = ($w0, $w1), b = $b"
near "$w0" 2 0.01 && near "$w1" -3.4 0.01 && near "$b" 4.2 0.01 || fail "weights off: w = ($w0, $w1), b = $b"

./house gradcheck > gradcheck.log || { cat gradcheck.log; fail "gradcheck"; }
grep -q PASS gradcheck.log || fail "gradcheck did not say PASS"
./house info > info.log || fail "info"
# the parameter table's rows: name, dtype, shape, elements
awk '$1 == "w" && $2 == "f32" && $3 == "[2]" && $4 == 2 { found = 1 } END { exit !found }' info.log ||
    fail "info lists no parameter w f32 [2]"
awk '$1 == "b" && $2 == "f32" && $3 == "[]" && $4 == 1 { found = 1 } END { exit !found }' info.log ||
    fail "info lists no parameter b f32 []"

# A ragged row is an error naming the file and line, and not a crash.
printf 'size,age,price\n1,2,3\n4,5\n' > ragged.csv
if ./house train --data ragged.csv --epochs 1 2> ragged.err; then fail "ragged CSV accepted"; fi
grep -q 'ragged.csv:3' ragged.err || fail "ragged CSV error does not name ragged.csv:3: $(cat ragged.err)"
echo "house: all checks passed"
