#!/bin/sh
# The embedded library (mdlc -c, docs/embedding.md): compile models to
# objects and headers, check that only their API is global, build
# examples/embed/house_embed.c and tests/embed/api_test.c against them
# with -lm -lpthread alone, run them, and check that the example's
# checkpoint is the executable's: `eval --load` reads it, and the
# executable trained on the same batches predicts the same bits from its own.
# usage: embed.sh MDLC SOURCE_DIR WORK_DIR CC [FLAGS...]
set -eu
mdlc=$1 src=$2 work=$3 cc=$4
shift 4
fail() { echo "FAIL: $*"; exit 1; }
rm -rf "$work" && mkdir -p "$work" && cd "$work"
data=$src/examples/data/house.csv

"$mdlc" -c "$src/examples/house_price.mdl" || fail "mdlc -c house_price.mdl"
[ -s house_price.o ] && [ -s house_price.h ] || fail "mdlc -c wrote no house_price.o and house_price.h"
"$mdlc" -c "$src/examples/house_price_robust.mdl" -o house_price_robust.o || fail "mdlc -c -o X.o"
[ -s house_price_robust.o ] && [ -s house_price_robust.h ] || fail "-o house_price_robust.o: no .o and .h"
mkdir -p sub
"$mdlc" -c "$src/tests/embed/tiny_classifier.mdl" -o sub/tiny_classifier || fail "mdlc -c -o DIR/NAME"
[ -s sub/tiny_classifier.o ] && [ -s sub/tiny_classifier.h ] || fail "-o sub/tiny_classifier: no .o and .h"

# Only the API is global: the runtime's rt_* and zlib's names are local.
for m in house_price house_price_robust sub/tiny_classifier; do
    prefix=${m#sub/}
    others=$(nm -g --defined-only "$m.o" | awk '{ print $3 }' | grep -v "^${prefix}_" || true)
    [ -z "$others" ] || fail "$m.o has global symbols besides ${prefix}_*: $others"
    [ "$(nm -g --defined-only "$m.o" | wc -l)" -eq 15 ] || fail "$m.o does not define the 15 API functions"
    nm -u "$m.o" | grep -E ' (rt_|mdl_|main$|crc32|inflate)' && fail "$m.o needs runtime symbols from outside"
done

"$cc" "$@" -I. "$src/examples/embed/house_embed.c" house_price.o -lm -lpthread -o house_embed ||
    fail "the example does not build with -lm -lpthread"
"$cc" "$@" -I. -Isub "$src/tests/embed/api_test.c" house_price.o house_price_robust.o sub/tiny_classifier.o \
    -lm -lpthread -o api_test || fail "three models do not link into one program"

libs=$(ldd ./house_embed | awk '{ print $1 }')
if ! echo "$libs" | grep -q libasan; then
    extra=$(echo "$libs" | grep -v -E '^(linux-vdso\.so|/lib64/ld-linux|libc\.so|libm\.so|libpthread\.so)' || true)
    [ -z "$extra" ] || fail "unexpected shared libraries: $extra"
fi

./house_embed "$data" lib.ckpt 3 100 > embed.log || { cat embed.log; fail "house_embed"; }
cat embed.log
grep -q '^reloaded predictions: bit-identical$' embed.log || fail "reloaded predictions not bit-identical"
first=$(awk '$1 == "steps" { print $4 }' embed.log)
last=$(awk '$1 == "steps" { print $6 }' embed.log)
[ -n "$first" ] && [ -n "$last" ] || fail "no 'steps N, loss A -> B' line"
awk -v a="$first" -v b="$last" 'BEGIN { exit !(b < a / 100) }' || fail "loss fell only from $first to $last"
libloss=$(awk '$1 == "evaluate" { sub(/,/, "", $6); print $6 }' embed.log)

"$mdlc" "$src/examples/house_price.mdl" -o house || fail "mdlc house_price.mdl"
./house eval --load lib.ckpt --data "$data" > eval.log || { cat eval.log; fail "the executable cannot load lib.ckpt"; }
cat eval.log
# the library keeps no record of a run (it has no epochs), so its
# checkpoint starts runs (--load) but does not continue one (--resume)
if ./house train --data "$data" --resume lib.ckpt > resume.log 2>&1; then fail "--resume lib.ckpt accepted"; fi
grep -q 'lib.ckpt has no record of a training run ("mdl.run"), so it cannot be resumed' resume.log ||
    { cat resume.log; fail "--resume of the library's checkpoint: no clear error"; }
exeloss=$(awk '$1 == "loss" { print $2 }' eval.log)
[ -n "$exeloss" ] && [ -n "$libloss" ] || fail "no loss from eval ($exeloss) or the example ($libloss)"
awk -v a="$exeloss" -v b="$libloss" 'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d <= 1e-5 * b) }' ||
    fail "eval's loss $exeloss, the library's $libloss"

# The executable on the same batches (file order, 100 rows, lr 0.05, 3
# epochs) ends with the same parameters: its predictions are the library's.
./house train --data "$data" --no-shuffle --epochs 3 --batch 100 --lr 0.05 --save exe.ckpt > train.log ||
    fail "train"
printf 'size,age\n1,0\n0,1\n0,0\n0.3,-1.7\n' > rows.csv
./house predict --load lib.ckpt --input rows.csv > lib.pred || fail "predict --load lib.ckpt"
./house predict --load exe.ckpt --input rows.csv > exe.pred || fail "predict --load exe.ckpt"
cmp lib.pred exe.pred || fail "the library's training and the executable's differ: $(paste lib.pred exe.pred)"

./api_test "$work" || fail "api_test"

# A model without a loss: predict works, train_step is a one-line error.
printf 'model noloss\ninput x: f32[B, 3]\nparam w: f32[3, 2] = ones\noutput y = x @ w\n' > noloss.mdl
"$mdlc" -c noloss.mdl || fail "mdlc -c noloss.mdl"
cat > noloss_main.c <<'END'
#include <stdio.h>
#include "noloss.h"
int main(void) {
    noloss *m = noloss_create();
    float x[6] = {1, 2, 3, 0, 0, 1}, y[4];
    if (!m || noloss_predict(m, 2, x, y) || y[0] != 6 || y[1] != 6 || y[2] != 1 || y[3] != 1)
        return 1;
    int rc = noloss_train_step(m, 1, x, NULL);
    printf("%d %s\n", rc, noloss_error(m));
    noloss_free(m);
    return 0;
}
END
"$cc" "$@" -I. noloss_main.c noloss.o -lm -lpthread -o noloss_main || fail "noloss does not build"
./noloss_main > noloss.log || fail "noloss predicted wrong values"
grep -q '^-1 model noloss has no loss, so it cannot be trained or evaluated$' noloss.log ||
    fail "noloss train_step: $(cat noloss.log)"

# -c goes with no --emit.
if "$mdlc" -c --emit=ir "$src/examples/house_price.mdl" 2> emit.err; then fail "-c --emit=ir accepted"; fi
grep -q 'does not go with --emit' emit.err || fail "-c --emit: $(cat emit.err)"
echo "embed: all checks passed"
