#!/usr/bin/env bash
# text_test.sh - the runtime's text features through fake_charmodel (a
# bigram model with a recurrent state, T = 8, 16 token ids): a .txt file
# as B streams or random windows, the vocabulary in the checkpoint, state
# resets, and `generate`.
#
# usage: text_test.sh CASE BINDIR WORKDIR
#
# Each case_* function is one ctest case, run in a fresh WORKDIR/CASE; it
# exits non-zero with a FAIL line on the first broken expectation.
set -u

source "$(dirname "$0")/cli_lib.sh"
fake=$bin/fake_charmodel

# expect_error TEXT CMD...: exit 1 and one error line containing TEXT.
expect_error() {
    local text=$1
    shift
    run "$@"
    [ $rc -eq 1 ] || fail "expected exit 1, got $rc from: $*"
    [ "$(wc -l <err.txt)" -eq 1 ] || fail "expected one stderr line from: $*"
    grep -q '^error: ' err.txt || fail "stderr does not start with error:"
    grep -qF -- "$text" err.txt || fail "stderr lacks '$text' from: $*"
}

lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 < b + 0) }'; }

# 200 lines of 23 bytes: 4600 bytes, 11 distinct characters.
make_text() {
    for i in $(seq 200); do echo "the cat sat on the mat"; done >cat.txt
}

# Sets $final, the final loss in out.txt, and checks that it is below 0.7
# and below the first epoch's in log.csv.
check_loss_fell() {
    final=$(awk '$1 == "final" { print $3 }' out.txt)
    lt "$final" 0.7 || fail "final loss $final is not below 0.7"
    first=$(awk -F, 'NR == 2 { print $3 }' log.csv)
    lt "$final" "$first" || fail "loss did not fall: $first -> $final"
}

train_cat() {
    make_text
    expect_ok "$fake" train --data cat.txt --lr 5 --save m.ckpt "$@"
}

case_train() {
    train_cat --log log.csv
    # 4 streams of 1150: (1150 - 1) / 8 = 143 steps.
    grep -q '^text: 4600 characters, 11 distinct, 4 streams of 1150, 143 steps of 8 per epoch$' out.txt ||
        fail "wrong stream summary"
    check_loss_fell
    # 3 streams of 1533: 191 steps.
    expect_ok "$fake" train --data cat.txt --batch 3 --epochs 1
    grep -q '3 streams of 1533, 191 steps of 8 per epoch' out.txt || fail "wrong steps for batch 3"
    # Gzipped text reads the same.
    gzip -c cat.txt >cat.txt.gz
    expect_ok "$fake" train --data cat.txt.gz --epochs 1
    grep -q '143 steps of 8 per epoch' out.txt || fail ".txt.gz not read as text"
    # Training is deterministic (no shuffling, nothing random).
    expect_ok "$fake" train --data cat.txt --lr 5 --save m2.ckpt
    cmp -s m.ckpt m2.ckpt || fail "two runs saved different checkpoints"
}

# Every call's "seen" must be 0 (a reset) or the last call's plus 8; each
# epoch's train run and each evaluation starts at 0.
case_state_resets() {
    make_text
    FAKE_STATE_TRACE=trace.txt expect_ok "$fake" train --data cat.txt --epochs 2 --val cat.txt
    awk '$2 != 0 && $2 != last + 8 { exit 1 } { last = $2 }' trace.txt || fail "state carried wrongly"
    [ "$(grep -c '^train 0$' trace.txt)" -eq 2 ] || fail "state not zeroed at each epoch's start"
    # two validations and the final evaluation
    [ "$(grep -c '^eval 0$' trace.txt)" -eq 3 ] || fail "state not zeroed before each evaluation"
    [ "$(wc -l <trace.txt)" -eq $((143 * 5)) ] || fail "expected 5 runs of 143 steps"
    # The checkpoint holds the state, [8, 1]; generate starts from zero
    # anyway and advances one position per call (scan_steps 1).
    expect_ok "$fake" train --data cat.txt --epochs 1 --save m.ckpt
    grep -q '"seen":{"dtype":"F32","shape":\[8,1\]' m.ckpt || fail "state not saved at max batch"
    FAKE_STATE_TRACE=gen.txt expect_ok "$fake" generate --load m.ckpt --prime "th" --length 3
    [ "$(tr '\n' ' ' <gen.txt)" = "predict 0 predict 1 predict 2 predict 3 " ] || fail "generate's state: $(cat gen.txt)"
}

case_vocab_checkpoint() {
    train_cat
    grep -qF '"mdl.vocab":"\u000a acehmnost"' m.ckpt || fail "vocabulary not in the checkpoint"
    final=$(awk '$1 == "final" { print $3 }' out.txt)
    expect_ok "$fake" eval --load m.ckpt --data cat.txt
    [ "$(cat out.txt)" = "loss $final" ] || fail "eval gives $(cat out.txt), train said $final"
    # Bytes a JSON string must escape, and bytes above 0x7f.
    for i in $(seq 50); do printf 'a"b\\c\td\377\001e\n'; done >odd.txt
    expect_ok "$fake" train --data odd.txt --save odd.ckpt --epochs 1
    grep -qF '"mdl.vocab":"\u0001\u0009\u000a\"\\abcde\u00ff"' odd.ckpt || fail "escaped vocabulary wrong"
    expect_ok "$fake" generate --load odd.ckpt --prime "$(printf '\377"\\')" --length 5 --temperature 0
    expect_ok "$fake" eval --load odd.ckpt --data odd.txt
    # Fine-tuning on a text with fewer characters keeps the checkpoint's
    # ids and vocabulary.
    for i in $(seq 100); do echo "the cat"; done >few.txt
    expect_ok "$fake" train --data few.txt --load m.ckpt --save m2.ckpt --epochs 1
    grep -qF '"mdl.vocab":"\u000a acehmnost"' m2.ckpt || fail "fine-tuning changed the vocabulary"
    # A checkpoint from CSV data has no vocabulary.
    awk 'BEGIN { for (i = 0; i < 8; i++) print "0,1,2,3,4,5,6,7,1,2,3,4,5,6,7,0" }' >ids.csv
    expect_ok "$fake" train --data ids.csv --save csv.ckpt --epochs 1
    expect_error 'csv.ckpt has no vocabulary ("mdl.vocab")' "$fake" generate --load csv.ckpt --prime t
}

case_generate() {
    train_cat
    expect_ok "$fake" generate --load m.ckpt --prime "the " --length 200 --seed 1 --temperature 0.8 --top-k 5 \
        --top-p 0.95
    cp out.txt a.txt
    expect_ok "$fake" generate --load m.ckpt --prime "the " --length 200 --seed 1 --temperature 0.8 --top-k 5 \
        --top-p 0.95
    cmp -s out.txt a.txt || fail "the same seed gave different text"
    expect_ok "$fake" generate --load m.ckpt --prime "the " --length 200 --seed 2 --temperature 0.8 --top-k 5 \
        --top-p 0.95
    cmp -s out.txt a.txt && fail "seeds 1 and 2 gave the same text"
    [ "$(head -c 4 a.txt)" = "the " ] || fail "the prime is not printed first"
    [ "$(wc -c <a.txt)" -eq 205 ] || fail "expected prime + 200 characters + newline"
    # Only characters of the text; a bigram model of it never puts two
    # spaces together.
    tr -d 'the casonm\n' <a.txt | grep -q . && fail "characters outside the vocabulary"
    grep -q '  ' a.txt && fail "an impossible bigram was sampled"
    # Temperature 0 is the argmax whatever the seed: after 't' comes ' '
    # (3 of 5), after ' ' comes 't' (2 of 5).
    expect_ok "$fake" generate --load m.ckpt --prime "t" --length 6 --temperature 0 --seed 7
    [ "$(cat out.txt)" = "t t t t" ] || fail "argmax text: $(cat out.txt)"
}

case_bad_prime() {
    train_cat
    expect_error "--prime: character 'X' at position 2 is not in the model's vocabulary" \
        "$fake" generate --load m.ckpt --prime thX
    expect_error '--prime: character \x01 at position 0' "$fake" generate --load m.ckpt --prime "$(printf '\001')"
    run "$fake" generate --load m.ckpt --prime ""
    [ $rc -eq 2 ] || fail "an empty prime: exit $rc"
    run "$fake" generate --prime the
    [ $rc -eq 2 ] || fail "no --load: exit $rc"
    run "$fake" generate --load m.ckpt --prime t --top-p 0
    [ $rc -eq 2 ] || fail "--top-p 0: exit $rc"
}

case_bad_files() {
    make_text
    expect_error "cannot open nope.txt" "$fake" train --data nope.txt
    printf 'abcdefghijklmnopq\n' >wide.txt
    expect_error "wide.txt has 18 distinct characters, but model char_bigram takes at most 16" \
        "$fake" train --data wide.txt
    printf 'the cat sat\n' >short.txt
    expect_error "short.txt: 12 characters make 4 streams of 3, too short for one step of 8" \
        "$fake" train --data short.txt
    : >empty.txt
    expect_error "empty.txt is empty" "$fake" train --data empty.txt
    { cat cat.txt; echo "the dog"; } >val.txt
    expect_error "val.txt: byte 'd' at offset 4604 is not in the training vocabulary" \
        "$fake" train --data cat.txt --val val.txt
    expect_error "--val-split does not apply to a text file" "$fake" train --data cat.txt --val-split 0.1
    expect_ok "$fake" train --data cat.txt --save m.ckpt --epochs 1
    expect_error "val.txt: byte 'd' at offset 4604" "$fake" eval --load m.ckpt --data val.txt
}

# --windows: B random windows a step from the seed's own stream, n / (B * T)
# steps an epoch, the state zeroed before every step; evaluation walks
# the consecutive windows.
case_windows() {
    train_cat --windows --log log.csv
    # 4600 / (4 * 8) = 143 steps.
    grep -q '^text: 4600 characters, 11 distinct, random windows: 143 steps of 4 windows of 8 per epoch$' out.txt ||
        fail "wrong windows summary"
    check_loss_fell
    expect_ok "$fake" eval --load m.ckpt --data cat.txt --windows
    [ "$(cat out.txt)" = "loss $final" ] || fail "eval --windows gives $(cat out.txt), train said $final"
    # 4600 / (3 * 8) = 191; 4600 / (8 * 8) = 71.
    expect_ok "$fake" train --data cat.txt --windows --batch 3 --epochs 1
    grep -q 'random windows: 191 steps of 3 windows of 8 per epoch' out.txt || fail "wrong steps for batch 3"
    FAKE_STATE_TRACE=trace.txt expect_ok "$fake" train --data cat.txt --windows --batch 8 --epochs 2 --val cat.txt
    [ "$(grep -c '^train ' trace.txt)" -eq $((71 * 2)) ] || fail "expected 2 epochs of 71 train steps"
    # Every step of training and evaluation starts from a zero state.
    grep -qv ' 0$' trace.txt && fail "state carried between windows"
    # The same seed draws the same windows; another seed other ones.
    expect_ok "$fake" train --data cat.txt --lr 5 --windows --save m2.ckpt
    cmp -s m.ckpt m2.ckpt || fail "two runs with one seed saved different checkpoints"
    expect_ok "$fake" train --data cat.txt --lr 5 --windows --save m3.ckpt --seed 2
    cmp -s m.ckpt m3.ckpt && fail "seeds 1 and 2 saved the same checkpoint"
    # A text too short for 4 windows of 8 still makes a step of 1.
    printf 'the cat sat\n' >short.txt
    expect_ok "$fake" train --data short.txt --windows --epochs 1
    grep -q 'random windows: 1 steps of 4 windows of 8 per epoch' out.txt || fail "a short text: no step"
}

case_windows_errors() {
    make_text
    printf 'the cat\n' >short.txt
    expect_error "short.txt: 8 characters are too short for one window of 8 and its targets (--windows needs at least 9" \
        "$fake" train --data short.txt --windows
    expect_error "short.txt: 8 characters are too short for one window of 8" \
        "$fake" train --data cat.txt --windows --val short.txt
    expect_ok "$fake" train --data cat.txt --save m.ckpt --epochs 1 --windows
    expect_error "short.txt: 8 characters are too short" "$fake" eval --load m.ckpt --data short.txt --windows
    awk 'BEGIN { for (i = 0; i < 8; i++) print "0,1,2,3,4,5,6,7,1,2,3,4,5,6,7,0" }' >ids.csv
    expect_error "--windows applies to a text file" "$fake" train --data ids.csv --windows
    expect_error "--windows applies to a text file" "$fake" eval --load m.ckpt --data ids.csv --windows
}

case_help() {
    expect_ok "$fake" --help
    grep -q 'generate' out.txt || fail "generate not listed"
    expect_ok "$fake" train --help
    grep -q 'A file named \*.txt' out.txt || fail "train --help does not describe text files"
    grep -q -- '^  --windows ' out.txt || fail "train --help lacks --windows"
    grep -q 'With --windows each step' out.txt || fail "train --help does not describe --windows"
    expect_ok "$fake" eval --help
    grep -q -- '^  --windows ' out.txt || fail "eval --help lacks --windows"
    expect_ok "$fake" generate --help
    for o in --load --prime --length --temperature --top-k --top-p --seed; do
        grep -q -- "^  $o " out.txt || fail "generate --help lacks $o"
    done
}

"case_$name"
