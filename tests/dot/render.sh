#!/bin/sh
# Renders a model's --emit=dot with Graphviz and checks the result is a PNG
# of real content: the 8-byte signature, an IHDR chunk first whose width
# and height are at least MIN pixels, an IEND chunk last, and a size of at
# least 20 kB.  Exits 77 (ctest's skip) when Graphviz's `dot` is missing.
# usage: render.sh MDLC MODEL.mdl MIN
mdlc=$1 model=$2 min=$3
if ! command -v dot >/dev/null 2>&1; then
    echo "SKIP: Graphviz 'dot' is not installed (apt-get install graphviz)"
    exit 77
fi
tmp=${TMPDIR:-/tmp}/mdl-dot-$$
trap 'rm -f "$tmp".dot "$tmp".png' EXIT
"$mdlc" --emit=dot -o "$tmp".dot "$model" || { echo "FAIL: mdlc --emit=dot $model"; exit 1; }
dot -Tpng "$tmp".dot -o "$tmp".png || { echo "FAIL: dot could not render the graph of $model"; exit 1; }

bytes() { od -An -tu1 -j "$2" -N "$3" "$1" | tr -s ' \n' '  ' | sed 's/^ //; s/ $//'; }
be32() { set -- $(bytes "$1" "$2" 4); echo $(( ($1 << 24) | ($2 << 16) | ($3 << 8) | $4 )); }
size=$(wc -c <"$tmp".png)
status=0
[ "$(bytes "$tmp".png 0 8)" = "137 80 78 71 13 10 26 10" ] || { echo "FAIL: no PNG signature"; status=1; }
[ "$(bytes "$tmp".png 12 4)" = "73 72 68 82" ] || { echo "FAIL: the first chunk is not IHDR"; status=1; }
[ "$(bytes "$tmp".png $((size - 8)) 4)" = "73 69 78 68" ] || { echo "FAIL: the last chunk is not IEND"; status=1; }
width=$(be32 "$tmp".png 16) height=$(be32 "$tmp".png 20)
[ "$width" -ge "$min" ] && [ "$height" -ge "$min" ] || { echo "FAIL: image of ${width}x${height}"; status=1; }
[ "$size" -ge 20000 ] || { echo "FAIL: only $size bytes"; status=1; }
[ "$status" -eq 0 ] && echo "rendered $model: ${width}x${height} PNG, $size bytes"
exit $status
