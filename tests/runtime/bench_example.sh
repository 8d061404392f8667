#!/usr/bin/env bash
# bench_example.sh - `bench` on an executable mdlc builds from a shipped
# example (examples/house_price.mdl: max batch and train batch 1000), with
# a tiny iteration count: the format, exactly --iters calls a case,
# positive numbers, p50 <= p99, samples/s = batch / mean; and compiled
# with a smaller max batch.
#
# usage: bench_example.sh MDLC SOURCE_DIR WORKDIR
set -u
mdlc=$1 src=$2 work=$3/bench_example
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
fail() {
    echo "FAIL [bench_example]: $*" >&2
    [ -f out.txt ] && cat out.txt >&2
    exit 1
}
"$mdlc" "$src/examples/house_price.mdl" -o house >compile.txt 2>&1 || fail "mdlc: $(cat compile.txt)"
./house bench --iters 30 --threads 1 >out.txt 2>err.txt || fail "bench exit $?: $(cat err.txt)"
[ -s err.txt ] && fail "bench wrote to stderr: $(cat err.txt)"
grep -q '^bench house_price: synthetic inputs, 1 thread, 30 calls a case after 6 warm-up calls$' out.txt ||
    fail "header"
grep -q '^case  *batch  *calls  *p50_us  *p99_us  *mean_us  *samples/s$' out.txt || fail "columns"
[ "$(wc -l <out.txt)" -eq 5 ] || fail "want a header, the columns and 3 cases"
awk 'NR == 3 { ok = $1 == "predict" && $2 == 1 }
     NR == 4 { ok = ok && $1 == "predict" && $2 == 1000 }
     NR == 5 { ok = ok && $1 == "train" && $2 == 1000 }
     NR >= 3 {
        if ($3 != 30 || !($4 > 0 && $4 <= $5 && $6 > 0 && $7 > 0)) { print "bad line: " $0; exit 1 }
        lo = $2 / ($6 + 0.0005) * 1e6; hi = $6 > 0.0005 ? $2 / ($6 - 0.0005) * 1e6 : 1e30
        if ($7 < lo - 1 || $7 > hi + 1) { print "samples/s not batch / mean: " $0; exit 1 }
     }
     END { if (!ok) { print "cases or batches"; exit 1 } }' out.txt >check.txt || fail "$(cat check.txt)"
# compiled for a max batch below the train statement's 1000: the train
# case runs at the max batch
"$mdlc" "$src/examples/house_price.mdl" --max-batch 100 -o house100 >compile.txt 2>&1 || fail "mdlc --max-batch"
./house100 bench --iters 3 >out.txt 2>&1 || fail "bench at max batch 100"
grep -q '^predict  *100  *3 ' out.txt && grep -q '^train  *100  *3 ' out.txt || fail "max batch 100 cases"
echo "ok bench_example"
