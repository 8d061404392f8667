#!/bin/sh
# Runs one frontend test case through parse_dump.
#
#   run.sh golden      PARSE_DUMP CASE.mdl   compare with CASE.expected
#   run.sh first-error PARSE_DUMP CASE.mdl   compare with the '# expect:' line
#   run.sh diagnostics MDLC CASE.mdl         compare mdlc's diagnostics with CASE.expected
#
# golden: CASE.expected holds the tree (stdout), a '--- stderr' line, the
# diagnostics, and '--- exit N'.  Cases whose name ends in _locs are dumped
# with positions.  With MDL_UPDATE_GOLDEN=1 the expected file is rewritten.
#
# first-error: line 1 of the case is '# expect: LINE:COL: error: MESSAGE',
# the first error reported (the path left out so the corpus is portable);
# an optional '# expect-errors: N' on line 2 also checks how many errors
# there are.  The exit status must be 1.
#
# diagnostics: `mdlc --emit=ir CASE.mdl` (parsing and lowering: name
# resolution, inlining, shape checks); CASE.expected holds everything it
# writes to stderr, then '--- exit N'.  MDL_UPDATE_GOLDEN=1 rewrites it.
#
# parse_dump runs in the case's directory on the bare file name, so paths in
# messages do not depend on where the tree is checked out.
mode=$1 tool=$2 case=$3
dir=$(dirname "$case") base=$(basename "$case") name=$(basename "$case" .mdl)
tmp=${TMPDIR:-/tmp}/mdl-fe-$$
trap 'rm -f "$tmp".out "$tmp".err' EXIT
flags=
case $name in *_locs) flags=--locs ;; esac
[ "$mode" = diagnostics ] && flags=--emit=ir
(cd "$dir" && "$tool" $flags "$base" >"$tmp".out 2>"$tmp".err)
rc=$?
if [ "$rc" -gt 2 ]; then
    echo "FAIL: $case: $(basename "$tool") crashed (status $rc)"
    cat "$tmp".err
    exit 1
fi

if [ "$mode" = golden ] || [ "$mode" = diagnostics ]; then
    expected="$dir/$name.expected"
    if [ "$mode" = golden ]; then
        actual=$( cat "$tmp".out; echo '--- stderr'; cat "$tmp".err; echo "--- exit $rc" )
    else
        actual=$( cat "$tmp".err; echo "--- exit $rc" )
    fi
    if [ -n "$MDL_UPDATE_GOLDEN" ]; then
        printf '%s\n' "$actual" >"$expected"
        echo "updated $expected"
        exit 0
    fi
    if [ ! -f "$expected" ]; then
        echo "FAIL: $expected is missing (run with MDL_UPDATE_GOLDEN=1)"
        printf '%s\n' "$actual"
        exit 1
    fi
    if printf '%s\n' "$actual" | diff -u "$expected" - ; then
        exit 0
    fi
    echo "FAIL: $case"
    exit 1
fi

expect=$(head -n 1 "$case" | sed -n 's/^# expect: //p')
count=$(sed -n '2s/^# expect-errors: //p' "$case")
got=$(grep -a -m 1 ': error: ' "$tmp".err | sed "s|^$base:||")
n=$(grep -a -c "^$base:[0-9]*:[0-9]*: error: " "$tmp".err)
status=0
if [ -z "$expect" ]; then
    echo "FAIL: $case: no '# expect:' line"; status=1
fi
if [ "$rc" -ne 1 ]; then
    echo "FAIL: $case: exit status $rc, expected 1"; status=1
fi
if [ "$got" != "$expect" ]; then
    echo "FAIL: $case"; echo "  expected: $expect"; echo "  got:      $got"; status=1
fi
if [ -n "$count" ] && [ "$n" -ne "$count" ]; then
    echo "FAIL: $case: $n errors, expected $count"; status=1
fi
if [ "$status" -ne 0 ]; then
    echo "--- stderr:"; cat "$tmp".err
fi
exit $status
