#!/bin/sh
# mdlc -j: the code split over several objects compiled on threads
# (codegen/cg_parts.c) trains exactly like the code compiled on one, for a
# model with matmuls, fused groups and the f64 gradcheck entries; bad -j
# values and a failing C compiler are clean errors.
# usage: run_jobs.sh MDLC SOURCE_DIR
set -u
mdlc=$1 src=$2
fail() { echo "FAIL: $*"; exit 1; }
data=$src/examples/data/house.csv
for j in 1 3; do
    "$mdlc" -j$j -v "$src/examples/house_price_robust.mdl" -o robust$j 2> err$j.txt || fail "-j$j: $(cat err$j.txt)"
    ./robust$j train --data "$data" --epochs 3 --save robust$j.ckpt --quiet || fail "-j$j: train"
    ./robust$j gradcheck --data "$data" > grad$j.txt || fail "-j$j: gradcheck"
done
grep -q '^mdlc: 2 objects on 1 threads$' err1.txt || fail "-j1 did not make one f32 and one f64 object: $(grep objects err1.txt)"
n=$(sed -n 's/^mdlc: \([0-9]*\) objects on 3 threads$/\1/p' err3.txt)
[ "${n:-0}" -gt 2 ] || fail "-j3 did not split the code: $(grep objects err3.txt)"
cmp -s robust1.ckpt robust3.ckpt || fail "-j1 and -j3 train differently"
cmp -s grad1.txt grad3.txt || fail "-j1 and -j3 gradcheck differently"
for bad in -j0 -jx -j65; do
    if "$mdlc" $bad "$src/examples/house_price.mdl" -o bad 2> err.txt; then fail "$bad accepted"; fi
    grep -q -- "-j needs a number of threads from 1 to 64" err.txt || fail "no clear error for $bad: $(cat err.txt)"
done
# The descriptor is compiled by cc while LLVM works: a C compiler that
# fails is a clean error, no executable is written, no temporary is left.
rm -rf tmp && mkdir tmp
if CC=false TMPDIR=$PWD/tmp "$mdlc" "$src/examples/house_price.mdl" -o nocc 2> err.txt; then fail "CC=false accepted"; fi
grep -q "the C compiler 'false' failed on the model's descriptor" err.txt || fail "no clear error for CC=false: $(cat err.txt)"
[ ! -e nocc ] || fail "an executable was written with CC=false"
[ -z "$(ls tmp)" ] || fail "CC=false left $(ls tmp) in TMPDIR"
echo "jobs: all checks passed"
