#!/bin/sh
# Golden tests of the compiler's dumps: for every X.mdl in DIR and every
# KIND (ast, ir, grad, plan, fused) for which X.KIND exists, `mdlc --emit=KIND
# X.mdl` must print exactly X.KIND.  With MDL_UPDATE_GOLDEN=1 the expected
# files are rewritten instead (review the diff before committing).
# usage: run_golden.sh MDLC DIR
mdlc=$1 dir=$2
pass=0 fail=0
for f in "$dir"/*.mdl; do
    found=0
    for kind in ast ir grad plan fused; do
        want="${f%.mdl}.$kind"
        [ -f "$want" ] || continue
        found=1
        got=$(cd "$dir" && "$mdlc" --emit=$kind "$(basename "$f")" 2>&1)
        if [ "${MDL_UPDATE_GOLDEN:-0}" = 1 ]; then
            printf '%s\n' "$got" > "$want"
            continue
        fi
        if [ "$got" = "$(cat "$want")" ]; then
            pass=$((pass + 1))
        else
            fail=$((fail + 1))
            echo "FAIL: --emit=$kind $f"
            printf '%s\n' "$got" | diff -u "$want" - | head -n 40
        fi
    done
    if [ "$found" = 0 ]; then
        fail=$((fail + 1))
        echo "FAIL: $f has no expected dump (create an empty X.ir, run with MDL_UPDATE_GOLDEN=1, review)"
    fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
