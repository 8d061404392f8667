#!/bin/sh
# Golden test of --emit=dot: `mdlc --emit=dot CASE.mdl` must print exactly
# CASE.dot (MDL_UPDATE_GOLDEN=1 rewrites it; review the diff, and look at
# the picture: dot -Tpng CASE.dot -o /tmp/x.png).  The text also has to
# hold each part's fill colour and a fused kernel, so a change that drops
# one fails even when the golden file is regenerated without care.
# usage: run_golden.sh MDLC CASE.mdl
mdlc=$1 case=$2
dir=$(dirname "$case") base=$(basename "$case") want="${case%.mdl}.dot"
got=$(cd "$dir" && "$mdlc" --emit=dot "$base" 2>&1) || { echo "FAIL: mdlc failed"; printf '%s\n' "$got"; exit 1; }
# the legend holds one node of each fill: the graph itself must hold more
status=0
while IFS='|' read -r min part; do
    n=$(printf '%s\n' "$got" | grep -c -F "$part")
    if [ "$n" -lt "$min" ]; then
        echo "FAIL: '$part' is on $n lines of the dot of $case, expected at least $min"
        status=1
    fi
done <<'PARTS'
2|fillcolor="#cfe2ff"
2|fillcolor="#ffd6c9"
2|fillcolor="#cdeccb"
1|subgraph cluster_kernel
1|peripheries=2
1|subgraph cluster_legend
PARTS
[ "$status" -eq 0 ] || exit 1
if [ -n "$MDL_UPDATE_GOLDEN" ]; then
    printf '%s\n' "$got" >"$want"
    echo "updated $want"
    exit 0
fi
if printf '%s\n' "$got" | diff -u "$want" -; then
    echo "dot of $base matches"
    exit 0
fi
echo "FAIL: --emit=dot $case differs from $want"
exit 1
