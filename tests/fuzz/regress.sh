#!/bin/sh
# What the fuzzers found, run on every build: mdlc on each file of
# tests/fuzz/seeds/compile-regress must end with 0 or 1 (an error about the
# input), never a crash or a sanitizer report.
# usage: regress.sh MDLC SOURCE_DIR
mdlc=$1 src=$2
status=0
for f in "$src"/tests/fuzz/seeds/compile-regress/*; do
    "$mdlc" "$f" --emit=fused > /dev/null 2> err.txt
    rc=$?
    if [ $rc -gt 1 ] || grep -q "Sanitizer" err.txt; then
        echo "FAIL: mdlc exit $rc on $f"
        cat err.txt
        status=1
    fi
done
rm -f err.txt
exit $status
