#!/bin/sh
# End to end: the recommender examples on a small synthetic rating set
# (examples/make_ratings.c): both train, matrix factorisation's test RMSE
# is clearly under the bias-only baseline (and no model's is under the
# noise floor by much), `recommend` lists N unrated items best first, an
# unknown user is an error; then the ratings reader itself on small files:
# MovieLens u.data and ratings.csv (with its header), the ids a checkpoint
# keeps, and errors naming FILE:LINE.
# usage: recommender.sh MDLC MAKE_RATINGS SOURCE_DIR WORK_DIR
set -eu
mdlc=$1 make_ratings=$2 src=$3 work=$4
fail() { echo "FAIL: $*"; exit 1; }
rm -rf "$work" && mkdir -p "$work" && cd "$work"

"$make_ratings" -u 400 -i 600 -n 30000 . > stats.log || fail "make_ratings"
cat stats.log
[ "$(wc -l < ratings.train.data)" -eq 27000 ] && [ "$(wc -l < ratings.test.data)" -eq 3000 ] ||
    fail "expected 27000 + 3000 ratings"
stat() { awk -v k="$1" '$1 == k { print $2 }' ratings.stats.txt; }
floor=$(stat test_rmse_noise_floor) mean=$(stat test_rmse_global_mean) bias=$(stat test_rmse_bias_baseline)
[ -n "$floor" ] && [ -n "$bias" ] && [ -n "$mean" ] || fail "ratings.stats.txt lacks an RMSE"
awk -v f="$floor" -v b="$bias" -v m="$mean" 'BEGIN { exit !(f < b && b < m) }' ||
    fail "expected noise floor < bias baseline < global mean: $floor $bias $mean"
# every test user and item is in the training set
awk -F'\t' 'NR == FNR { u[$1] = 1; i[$2] = 1; next } !($1 in u) || !($2 in i) { bad = 1 } END { exit bad }' \
    ratings.train.data ratings.test.data || fail "a test user or item is not in the training set"
# the same bytes again
mkdir again && "$make_ratings" -u 400 -i 600 -n 30000 again > /dev/null &&
    cmp ratings.train.data again/ratings.train.data || fail "make_ratings is not reproducible"

# test_rmse NAME BOUND: train examples/NAME.mdl, eval on the test set, RMSE < BOUND
test_rmse() {
    "$mdlc" "$src/examples/$1.mdl" -o "$1" || fail "mdlc $1"
    ./"$1" train --data ratings.train.data --save "$1.ckpt" > "$1.train.log" || { cat "$1.train.log"; fail "train $1"; }
    grep -q '^ratings: 400 users and 600 items' "$1.train.log" || fail "$1: train does not count users and items"
    ./"$1" eval --load "$1.ckpt" --data ratings.test.data > "$1.eval.log" || fail "eval $1"
    rmse=$(awk '$1 == "mse" { print sqrt($2) }' "$1.eval.log")
    echo "$1: test RMSE $rmse (bound $2; bias baseline $bias, noise floor $floor)"
    [ -n "$rmse" ] || fail "$1: eval printed no mse"
    awk -v r="$rmse" -v b="$2" -v f="$floor" 'BEGIN { exit !(r < b && r > f - 0.05) }' ||
        fail "$1: test RMSE $rmse not in ($floor - 0.05, $2)"
}
test_rmse recommender "$(awk -v b="$bias" 'BEGIN { print b - 0.15 }')"
test_rmse recommender_ncf "$(awk -v b="$bias" 'BEGIN { print b - 0.05 }')"

./recommender gradcheck > gradcheck.log || { cat gradcheck.log; fail "gradcheck recommender"; }
grep -q PASS gradcheck.log || fail "gradcheck did not say PASS"

# recommend: 7 items (and the CSV header), best first, none rated by the user in training
./recommender recommend --load recommender.ckpt --user 17 --top 7 > top.csv || fail "recommend"
cat top.csv
[ "$(sed -n 1p top.csv)" = "item,score" ] || fail "recommend: no item,score header"
[ "$(wc -l < top.csv)" -eq 8 ] || fail "recommend --top 7 printed $(($(wc -l < top.csv) - 1)) items"
sed 1d top.csv | awk -F, 'NR > 1 && $2 > last { exit 1 } { last = $2 }' || fail "recommend: not best first"
sed 1d top.csv | awk -F'[,\t]' 'NR == FNR { if ($1 == 17) rated[$2] = 1; next } $1 in rated { exit 1 }' \
    ratings.train.data - || fail "recommend lists an item user 17 rated"
[ "$(./recommender recommend --load recommender.ckpt --user 17 | wc -l)" -eq 11 ] || fail "--top does not default to 10"
if ./recommender recommend --load recommender.ckpt --user 100000 2> unknown.err; then fail "unknown user accepted"; fi
grep -q 'user 100000 is not in recommender.ckpt' unknown.err || fail "unknown user: $(cat unknown.err)"

# The readers.  u.data: tab separated, sparse raw ids, a timestamp.
printf '100\t7\t5\t881250949\n200\t7\t1\t881250950\n100\t9\t4\t881250951\n300\t9\t2\t881250952\n' > u.data
./recommender train --data u.data --epochs 3 --save small.ckpt > small.log || { cat small.log; fail "u.data"; }
grep -q '^ratings: 3 users and 2 items.* 4 ratings' small.log || fail "u.data: $(cat small.log)"
# the checkpoint keeps the raw ids in order of first appearance, and each user's rated items
grep -aq '"mdl.users":"100 200 300","mdl.items":"7 9","mdl.rated":"0 1,0,1"' small.ckpt ||
    fail "small.ckpt's ids: $(head -c 400 small.ckpt)"
./recommender recommend --load small.ckpt --user 200 > rec200.csv || fail "recommend on small.ckpt"
[ "$(cat rec200.csv)" = "$(printf 'item,score\n9,')$(sed -n 2p rec200.csv | cut -d, -f2)" ] ||
    fail "user 200 rated item 7 only: $(cat rec200.csv)"
# ratings.csv: a header, fractional ratings; eval through small.ckpt's ids, unknown ones skipped
printf 'userId,movieId,rating,timestamp\n300,7,3.5,964982703\n100,9,4.0,964981247\n400,9,1,964982224\n' > ratings.csv
./recommender eval --load small.ckpt --data ratings.csv > csv.log 2> csv.err || fail "eval ratings.csv: $(cat csv.err)"
grep -q 'ratings.csv: 1 rating skipped.*line 4' csv.err || fail "eval does not note the unknown user: $(cat csv.err)"
./recommender train --data ratings.csv --epochs 1 > /dev/null || fail "train ratings.csv"
# fine-tuning keeps the checkpoint's ids: an unknown one is an error naming the line
if ./recommender train --load small.ckpt --data ratings.csv --epochs 1 2> ft.err; then fail "new user fine-tuned"; fi
grep -q 'ratings.csv:4: user id 400 is not among the 3 users' ft.err || fail "fine-tuning: $(cat ft.err)"
# errors name FILE:LINE
expect_error() { # FILE CONTENT MESSAGE
    printf "$2" > "$1"
    if ./recommender train --data "$1" --epochs 1 2> err.txt; then fail "$1 accepted"; fi
    grep -q "$3" err.txt || fail "$1: expected '$3', got: $(cat err.txt)"
}
expect_error ragged.data '1\t2\t3\t4\n1\t3\t4\n' 'ragged.data:2: 3 fields, but the first line of ratings has 4'
expect_error ragged.csv 'userId,movieId,rating\n1,2,3\n4,5\n' 'ragged.csv:3: 2 fields'
expect_error word.csv '1,2,3\n1,x,4\n' 'word.csv:2: item id "x" is not an integer'
expect_error inf.data '1\t2\tinf\n' 'inf.data:1: rating "inf" is not a finite number'
expect_error empty.csv 'userId,movieId,rating\n' 'empty.csv has no ratings'
echo "recommender: all checks passed"
