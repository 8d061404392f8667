#!/bin/sh
# The quick-start job: compile the house-price model and train it on the
# shipped data.  Run from the repository root after building into build/.
set -eu
MDLC=${MDLC:-build/mdlc}
OUT=${OUT:-build/examples}
mkdir -p "$OUT"
echo "+ $MDLC examples/house_price.mdl -o $OUT/house"
"$MDLC" examples/house_price.mdl -o "$OUT/house"
echo "+ $OUT/house train --data examples/data/house.csv --save $OUT/house.ckpt"
"$OUT/house" train --data examples/data/house.csv --save "$OUT/house.ckpt"
echo "+ $OUT/house eval --load $OUT/house.ckpt --data examples/data/house.csv"
"$OUT/house" eval --load "$OUT/house.ckpt" --data examples/data/house.csv
