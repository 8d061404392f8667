#!/bin/sh
# Runs mdlc on every broken model in a directory and checks that the first
# error it reports is the one the file's first line announces:
#   # expect: LINE:COL: error: MESSAGE
# (the file's own path is left out so the corpus is portable; a message
# naming the file without a position says ERRFILE for it).  Every file
# must also make mdlc exit with status 1 and must not crash it.
# usage: run_errors.sh MDLC DIR
mdlc=$1 dir=$2
pass=0 fail=0
for f in "$dir"/*.mdl; do
    expect=$(head -n 1 "$f" | sed -n 's/^# expect: //p')
    out=$("$mdlc" --emit=grad "$f" 2>&1 >/dev/null)
    rc=$?
    got=$(printf '%s\n' "$out" | grep -m 1 'error:' | sed "s|^$f:||; s|$f|ERRFILE|g")
    # a file without its '# expect:' line must not pass on an empty match
    if [ -n "$expect" ] && [ "$rc" -eq 1 ] && [ "$got" = "$expect" ]; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1))
        echo "FAIL: $f (exit $rc)"
        echo "  expected: $expect"
        echo "  got:      $got"
    fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ] && [ "$pass" -gt 0 ]
