#!/bin/sh
# Writes the first N records of a (gzipped) IDX file as a plain IDX file
# with its count patched to N: a small, real slice of Fashion-MNIST for
# tests that must stay fast.
# usage: idx_head.sh FILE.gz N OUT
set -eu
in=$1 n=$2 out=$3
dims=$(gzip -dc "$in" | head -c 4 | od -An -tu1 | awk '{ print $4 }')
header=$((4 + 4 * dims))
record=1
i=1
while [ "$i" -lt "$dims" ]; do
    d=$(gzip -dc "$in" | head -c $((8 + 4 * i)) | tail -c 4 | od -An -tu1 | awk '{ print $1 * 16777216 + $2 * 65536 + $3 * 256 + $4 }')
    record=$((record * d))
    i=$((i + 1))
done
gzip -dc "$in" | head -c $((header + n * record)) > "$out"
printf "$(printf '\\%03o\\%03o\\%03o\\%03o' $((n >> 24 & 255)) $((n >> 16 & 255)) $((n >> 8 & 255)) $((n & 255)))" |
    dd of="$out" bs=1 seek=4 conv=notrunc 2> /dev/null
