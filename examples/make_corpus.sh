#!/bin/sh
# make_corpus.sh OUT - the text corpus of workload W3 (and W5), as
# /work/shared/bench/WORKLOADS.md defines it: the first 1,000,000 bytes of
# the fortune files of Debian's `fortunes` package.
#
# Every regular file in /usr/share/games/fortunes/ whose name has no '.'
# (the .dat indexes and .u8 copies have one), except ascii-art, in sorted
# order, concatenated; then a character followed by a backspace (the old
# overstrike way of underlining or bolding) is dropped with it, a line that
# is exactly `%` (the separator between fortunes) becomes an empty line, a
# tab becomes a space, and only newlines and printable ASCII are kept.
# The result has 96 distinct characters: newline and 0x20-0x7e.
#
# Needs `apt-get install fortunes`.  POSIX sh, sed, tr, head, od.
set -eu

if [ $# -ne 1 ]; then
    echo "usage: $0 OUT" >&2
    exit 2
fi
out=$1
dir=/usr/share/games/fortunes
size=1000000
LC_ALL=C
export LC_ALL

if [ ! -d "$dir" ]; then
    echo "error: $dir not found: apt-get install fortunes" >&2
    exit 1
fi

backspace=$(printf '\010')
tab=$(printf '\011')
tmp="$out.tmp.$$"
trap 'rm -f "$tmp"' EXIT

# The file names, sorted (ls sorts in the C locale we set).
ls "$dir" | while IFS= read -r name; do
    case $name in
    *.* | ascii-art) continue ;;
    esac
    [ -f "$dir/$name" ] && [ ! -L "$dir/$name" ] && cat "$dir/$name"
done |
    sed -e "s/.$backspace//g" -e 's/^%$//' |
    tr "$tab" ' ' |
    tr -cd '\n -~' |
    head -c "$size" >"$tmp"

bytes=$(wc -c <"$tmp" | tr -d ' ')
distinct=$(od -An -v -tu1 "$tmp" | tr -s ' ' '\n' | sed '/^$/d' | sort -u | wc -l | tr -d ' ')
echo "$out: $bytes bytes, $distinct distinct characters"
if [ "$bytes" -ne "$size" ]; then
    echo "error: expected $size bytes: is the fortunes package complete?" >&2
    exit 1
fi
mv "$tmp" "$out"
trap - EXIT
