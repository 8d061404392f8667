#!/bin/sh
# mdlc --cpu: generic code uses no AVX registers, a named CPU compiles,
# and an unknown name is a clean error (LLVM itself would abort).
# usage: run_cpu.sh MDLC SOURCE_DIR
set -u
mdlc=$1 src=$2
fail() { echo "FAIL: $*"; exit 1; }
asm=$("$mdlc" --cpu=generic --emit=asm "$src/examples/fashion_mlp.mdl") || fail "--cpu=generic"
echo "$asm" | grep -q '%[yz]mm' && fail "--cpu=generic code uses AVX registers"
"$mdlc" --cpu=x86-64-v3 --emit=asm "$src/examples/fashion_mlp.mdl" | grep -q '%ymm' || fail "--cpu=x86-64-v3 has no AVX2 code"
if "$mdlc" --cpu=bogus --emit=ir "$src/examples/house_price.mdl" > /dev/null 2> err.txt; then fail "--cpu=bogus accepted"; fi
grep -q "unknown --cpu 'bogus'" err.txt || fail "no clear error for --cpu=bogus: $(cat err.txt)"
echo "cpu: all checks passed"
