#!/usr/bin/env bash
# cli_test.sh - command-line tests of the runtime through fake_linear.
#
# usage: cli_test.sh CASE BINDIR WORKDIR
#
# Each case_* function is one ctest case; it runs in a fresh WORKDIR/CASE
# and exits non-zero with a FAIL line on the first broken expectation.
# Errors are checked the way a user meets them: exit status, exactly one
# `error: ...` line on stderr naming the file, and no crash (a status of
# 128 or more would be a signal; under ASan a report would add lines).
set -u

name=$1
bin=$2
work=$3/$name
fake=$bin/fake_linear
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1

fail() {
    echo "FAIL [$name]: $*" >&2
    for f in out.txt err.txt; do
        [ -f $f ] && { echo "--- $f"; cat $f; } >&2
    done
    exit 1
}

# run CMD...: sets rc, leaves stdout in out.txt and stderr in err.txt.
run() {
    "$@" >out.txt 2>err.txt
    rc=$?
}

expect_ok() {
    run "$@"
    [ $rc -eq 0 ] || fail "exit $rc from: $*"
}

# expect_error STATUS TEXT CMD...: fails with STATUS and one error line
# containing TEXT.
expect_error() {
    local status=$1 text=$2
    shift 2
    run "$@"
    [ $rc -eq "$status" ] || fail "expected exit $status, got $rc from: $*"
    [ "$(wc -l <err.txt)" -eq 1 ] || fail "expected one stderr line from: $*"
    grep -q '^error: ' err.txt || fail "stderr does not start with error:"
    grep -qF -- "$text" err.txt || fail "stderr lacks '$text' from: $*"
}

# lt A B: numeric A < B.
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 < b + 0) }'; }
near() { awk -v a="$1" -v b="$2" -v t="$3" \
    'BEGIN { d = a - b; if (d < 0) d = -d; exit !(d < t) }'; }

make_data() {
    "$bin/gen_linear" 1000 1 >train.csv
    "$bin/gen_linear" 200 2 >val.csv
}

train_and_save() {
    make_data
    expect_ok "$fake" train --data train.csv --save model.ckpt
}

case_help() {
    expect_ok "$fake" --help
    grep -q '^usage: fake_linear COMMAND' out.txt || fail "no usage line"
    for c in train eval predict gradcheck info; do
        expect_ok "$fake" $c --help
        grep -q "^usage: fake_linear $c" out.txt || fail "$c --help"
    done
    expect_ok "$fake" train -h
    grep -q -- '--batch N .*default 16, at most 64' out.txt ||
        fail "train help lacks the batch default"
    grep -q 'CSV columns, in order: x\[0\],x\[1\], y' out.txt ||
        fail "train help lacks the CSV columns"
    expect_ok "$fake" --version
    grep -q 'model linear, mdl runtime' out.txt || fail "--version"
}

case_usage_errors() {
    expect_error 2 "unknown option '--bogus'" "$fake" train --bogus
    expect_error 2 "unknown option '--input'" "$fake" train --input x
    expect_error 2 "unknown command 'fly'" "$fake" fly
    expect_error 2 "unknown option '--frob'" "$fake" --frob
    expect_error 2 "--epochs expects a positive integer, got 'abc'" \
        "$fake" train --epochs abc
    expect_error 2 "--epochs expects a positive integer, got '0'" \
        "$fake" train --epochs=0
    expect_error 2 "--lr expects a finite number >= 0" "$fake" train --lr nan
    expect_error 2 "missing value for '--data'" "$fake" train --data
    expect_error 2 "unexpected argument 'extra'" "$fake" info extra
    expect_error 2 "option takes no value" "$fake" train --quiet=1
    expect_error 2 "eval needs --load CKPT and --data FILE" "$fake" eval
    expect_error 2 "predict needs --load CKPT and --input FILE" \
        "$fake" predict --load x
    expect_error 1 "no training data: pass --data FILE" "$fake" train
    make_data
    expect_error 1 '--hyper: model linear has no hyper-parameter "beta"' \
        "$fake" train --data train.csv --hyper beta=1
    run "$fake"
    [ $rc -eq 2 ] || fail "no command should exit 2"
    grep -q usage err.txt || fail "no command should print usage on stderr"
}

case_info() {
    expect_ok "$fake" info
    for want in 'model linear (compiled from tests/runtime/fake_linear.c)' \
        'w  *f32  *\[2\]  *2  *8  normal(0, 0.01)' \
        'b  *f32  *\[\]  *1  *4  zeros' 'opt.step  *i32' \
        'x  *f32\[B, 2\]' 'y  *f32\[B\]' 'pred  *f32\[B\]' \
        'total parameters: 3' 'arena: 1088 bytes' 'max batch: 64' \
        'train 896, predict 256' 'train: sgd, batch 16, epochs 10, lr 0.05'; do
        grep -q -- "$want" out.txt || fail "info lacks '$want'"
    done
    train_and_save
    expect_ok "$fake" info --load model.ckpt
    grep -q 'checkpoint model.ckpt: loads' out.txt || fail "info --load"
}

case_train() {
    make_data
    expect_ok "$fake" train --data train.csv --epochs 10
    grep -q '^train linear: 1000 samples (train.csv), batch 16, 10 epochs, sgd, lr 0.05, seed 42$' \
        out.txt || fail "summary line"
    [ "$(grep -c '^epoch ' out.txt)" -eq 10 ] || fail "10 epoch lines"
    grep -q '^epoch 10/10  loss [0-9.e+-]*  mae [0-9.e+-]*  [0-9.e+-]*m\?s  .* samples/s$' \
        out.txt || fail "epoch line format"
    loss=$(awk '/^final/ { print $3 }' out.txt)
    lt "$loss" 1e-3 || fail "final loss $loss is not below 1e-3"
    w=$(sed -n 's/^  w = \[\(.*\), \(.*\)\]$/\1 \2/p' out.txt)
    set -- $w
    near "$1" 2 0.01 && near "$2" -3.4 0.01 || fail "w = $w, not (2, -3.4)"
    b=$(sed -n 's/^  b = //p' out.txt)
    near "$b" 4.2 0.01 || fail "b = $b, not 4.2"
    grep -q 'opt.step' out.txt && fail "optimizer state printed as a param"
    true
}

case_save_eval() {
    train_and_save
    grep -q '^saved model.ckpt$' out.txt || fail "no saved line"
    train_loss=$(awk '/^final/ { print $3 }' out.txt)
    train_mae=$(awk '/^final/ { print $5 }' out.txt)
    expect_ok "$fake" eval --load model.ckpt --data train.csv
    [ "$(cat out.txt)" = "loss $train_loss
mae $train_mae" ] || fail "eval differs from training's final loss $train_loss"
    # The batch size does not change a mean loss (beyond rounding).
    expect_ok "$fake" eval --load model.ckpt --data train.csv --batch 7
    near "$(awk '/^loss/ { print $2 }' out.txt)" "$train_loss" 1e-7 ||
        fail "eval at batch 7 differs"
    # Training on from a checkpoint keeps the fit.
    expect_ok "$fake" train --data train.csv --load model.ckpt --epochs 1 \
        --save model2.ckpt
    lt "$(awk '/^final/ { print $3 }' out.txt)" 1e-3 || fail "resumed loss"
}

case_predict() {
    train_and_save
    expect_ok "$fake" predict --load model.ckpt --input val.csv
    [ "$(head -1 out.txt)" = pred ] || fail "predict header"
    [ "$(wc -l <out.txt)" -eq 201 ] || fail "predict should write 201 lines"
    # Predictions match the targets (column 3 of val.csv) to the noise.
    paste -d, val.csv out.txt | awk -F, 'NR > 1 { d = $3 - $4;
        if (d < 0) d = -d; if (d > 0.1) bad++ } END { exit bad > 0 }' ||
        fail "predictions far from targets"
    # Input columns only, from stdin, to a file.
    cut -d, -f1,2 val.csv | "$fake" predict --load model.ckpt --input - \
        --output pred.csv --batch 5 >out.txt 2>err.txt || fail "stdin predict"
    [ ! -s out.txt ] || fail "--output should leave stdout empty"
    [ "$(wc -l <pred.csv)" -eq 201 ] || fail "pred.csv rows"
    expect_ok "$fake" predict --load model.ckpt --input val.csv
    cmp -s out.txt pred.csv || fail "batch size changed predictions"
    expect_error 1 "cannot open /nonexistent/p.csv for writing" \
        "$fake" predict --load model.ckpt --input val.csv \
        --output /nonexistent/p.csv
}

case_determinism() {
    make_data
    expect_ok "$fake" train --data train.csv --save a.ckpt --seed 5
    sed 's/  [0-9.e+-]*m\?s  .*samples\/s$//' out.txt >a.txt
    expect_ok "$fake" train --data train.csv --save b.ckpt --seed 5
    sed 's/  [0-9.e+-]*m\?s  .*samples\/s$//' out.txt >b.txt
    expect_ok "$fake" train --data train.csv --save c.ckpt --seed 6
    cmp -s a.ckpt b.ckpt || fail "same seed, different checkpoints"
    sed -i 's/saved b.ckpt/saved a.ckpt/' b.txt
    cmp -s a.txt b.txt || fail "same seed, different output"
    cmp -s a.ckpt c.ckpt && fail "different seeds, same checkpoint"
    true
}

case_gradcheck() {
    expect_ok "$fake" gradcheck
    grep -q '^gradcheck: PASS$' out.txt || fail "random-input gradcheck"
    grep -q '^  w  *2/2 ' out.txt || fail "w row"
    grep -q '^  b  *1/1 ' out.txt || fail "b row"
    make_data
    expect_ok "$fake" gradcheck --data train.csv --batch 32 --max-elems 1
    grep -q '^  w  *1/2 ' out.txt || fail "--max-elems 1 should sample 1 of 2"
    grep -q '^gradcheck: PASS$' out.txt || fail "data gradcheck"
    expect_ok "$fake" train --data train.csv --epochs 2 --save m.ckpt
    expect_ok "$fake" gradcheck --load m.ckpt --data train.csv
    grep -q '^gradcheck: PASS$' out.txt || fail "gradcheck at the optimum"
}

case_gradcheck_bad() {
    run "$bin/fake_linear_badgrad" gradcheck
    [ $rc -eq 1 ] || fail "a wrong gradient should exit 1, got $rc"
    grep -q '^gradcheck: FAIL$' out.txt || fail "no FAIL line"
    grep -q '^  b .*worst b: analytic' out.txt || fail "b not named"
    grep -q '^  w .*worst' out.txt && fail "w wrongly blamed"
    true
}

case_bad_csv() {
    printf 'x0,x1,y\n1,2,3\n4,5\n' >ragged.csv
    expect_error 1 "ragged.csv:3: expected 3 columns, found 2" \
        "$fake" train --data ragged.csv
    printf '1,2,3\n4,abc,6\n' >word.csv
    expect_error 1 'word.csv:2:3: cannot parse "abc" as a number (column 2, x[1])' \
        "$fake" train --data word.csv
    : >empty.csv
    expect_error 1 "empty.csv: empty file" "$fake" train --data empty.csv
    printf 'x0,x1,y\n' >header.csv
    expect_error 1 "header.csv: no data rows" "$fake" eval --load x \
        --data header.csv
    head -c 3000 /dev/zero | tr '\0' '\377' >binary.csv
    expect_error 1 'binary.csv:1: expected 3 columns, found 1' \
        "$fake" train --data binary.csv
    printf '1,2,3\n\377\001,1,2\n' >binary2.csv
    expect_error 1 'binary2.csv:2:1: cannot parse "\xff\x01" as a number' \
        "$fake" train --data binary2.csv
    printf '1,2,3\n' >ok.csv
    printf '1\n' >short.csv
    expect_error 1 "short.csv:1: expected 3 columns, found 1" \
        "$fake" train --data ok.csv --val short.csv --epochs 1
}

case_missing_file() {
    expect_error 1 "cannot open nope.csv: No such file or directory" \
        "$fake" train --data nope.csv
    make_data
    expect_error 1 "cannot open nope.ckpt: No such file or directory" \
        "$fake" eval --load nope.ckpt --data train.csv
    expect_error 1 "cannot open nope.csv: No such file or directory" \
        "$fake" predict --load x --input nope.csv
}

case_big_batch() {
    make_data
    expect_error 1 "this model was compiled with max batch 64 (recompile with mdlc --max-batch 65)" \
        "$fake" train --data train.csv --batch 65
    expect_error 1 "compiled with max batch 64" \
        "$fake" gradcheck --batch 1000
    expect_ok "$fake" train --data train.csv --batch 64 --epochs 1
}

case_bad_checkpoints() {
    train_and_save
    size=$(wc -c <model.ckpt)
    head -c $((size - 1)) model.ckpt >short.ckpt
    head -c 4 model.ckpt >tiny.ckpt
    head -c 100 model.ckpt >cut.ckpt
    sed 's/"shape":\[2\]/"shape":[3]/' model.ckpt >shape.ckpt
    sed 's/"dtype":"F32"/"dtype":"F16"/' model.ckpt >dtype.ckpt
    sed 's/"w":{/"v":{/' model.ckpt >name.ckpt
    printf 'this is not a checkpoint at all\n' >garbage.ckpt
    : >empty.ckpt
    mkdir dir.ckpt
    cp model.ckpt extra.ckpt && printf 'xxxx' >>extra.ckpt
    cmp -s model.ckpt shape.ckpt && fail "sed did not change the shape"
    expect_error 1 "short.ckpt: tensor \"opt.step\": data_offsets [12, 16] run past the end" \
        "$fake" eval --load short.ckpt --data train.csv
    expect_error 1 "tiny.ckpt: truncated: 4 bytes" \
        "$fake" eval --load tiny.ckpt --data train.csv
    expect_error 1 "cut.ckpt: header length 256 runs past the end of the file" \
        "$fake" predict --load cut.ckpt --input train.csv
    expect_error 1 'shape.ckpt: tensor "w": shape [3] does not match the model'"'"'s [2]' \
        "$fake" eval --load shape.ckpt --data train.csv
    expect_error 1 'dtype.ckpt: tensor "w": dtype F16 is not supported' \
        "$fake" eval --load dtype.ckpt --data train.csv
    expect_error 1 'name.ckpt: unknown tensor "v"' \
        "$fake" gradcheck --load name.ckpt
    expect_error 1 "garbage.ckpt: header length" \
        "$fake" info --load garbage.ckpt
    expect_error 1 "empty.ckpt: truncated: 0 bytes" \
        "$fake" train --data train.csv --load empty.ckpt
    expect_error 1 "cannot load dir.ckpt: not a regular file" \
        "$fake" eval --load dir.ckpt --data train.csv
    expect_error 1 "extra.ckpt: the tensors cover 16 bytes but the file holds 20" \
        "$fake" eval --load extra.ckpt --data train.csv
}

case_save_failure() {
    train_and_save
    cp model.ckpt before.ckpt
    # A file-size limit makes every write of the new checkpoint fail.  It
    # applies to regular files only, so the output goes through pipes.
    (ulimit -f 0 && exec "$fake" train --data train.csv --epochs 1 --lr 0.2 \
        --save model.ckpt) 2>&1 >/dev/null | cat >err.txt
    [ "${PIPESTATUS[0]}" -eq 1 ] || fail "save under ulimit -f 0 should fail"
    [ "$(wc -l <err.txt)" -eq 1 ] || fail "one error line expected"
    grep -q '^error: cannot save model.ckpt: writing model.ckpt.tmp.*File too large' \
        err.txt || fail "save error message"
    cmp -s model.ckpt before.ckpt || fail "failed save changed the checkpoint"
    ls | grep -q '\.tmp\.' && fail "temporary file left behind"
    expect_error 1 "cannot save nodir/m.ckpt: cannot create a temporary file" \
        "$fake" train --data train.csv --epochs 1 --save nodir/m.ckpt
    # Saving over a directory fails at the rename; the directory survives.
    mkdir taken.ckpt
    expect_error 1 "cannot save taken.ckpt: renaming" \
        "$fake" train --data train.csv --epochs 1 --save taken.ckpt
    [ -d taken.ckpt ] || fail "directory replaced"
    ls | grep -q '\.tmp\.' && fail "temporary file left behind"
    true
}

case_diverge() {
    train_and_save
    cp model.ckpt before.ckpt
    expect_error 1 "at epoch 1, step" \
        "$fake" train --data train.csv --lr 50 --save model.ckpt
    grep -q "model.ckpt not written" err.txt || fail "should say not written"
    cmp -s model.ckpt before.ckpt || fail "diverged run changed the checkpoint"
}

case_no_control_codes() {
    make_data
    "$fake" train --data train.csv --val val.csv --epochs 30 >out.txt 2>err.txt |
        cat || fail "train"
    "$fake" train --data train.csv --epochs 3 2>&1 | cat >piped.txt
    if grep -q $'[\r\033]' out.txt err.txt piped.txt; then
        fail "control codes in piped output"
    fi
    [ "$(grep -c '^epoch' piped.txt)" -eq 3 ] || fail "epoch lines"
}

case_optimizer_state() {
    train_and_save
    # Craft a checkpoint with w and b but no opt.step, from model.ckpt's data.
    header='{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[],"data_offsets":[8,12]}}'
    n=${#header}
    {
        printf "$(printf '\\%03o' $((n & 255)) $((n >> 8 & 255)))"
        printf '\0\0\0\0\0\0'
        printf '%s' "$header"
        tail -c 16 model.ckpt | head -c 12
    } >nostate.ckpt
    expect_ok "$fake" eval --load nostate.ckpt --data train.csv
    grep -q 'note: nostate.ckpt has no "opt.step"; it keeps its initial value' \
        err.txt || fail "no note about the missing state"
    grep -q '^loss 0\.0001' out.txt || fail "crafted checkpoint loss"
    header='{"b":{"dtype":"F32","shape":[],"data_offsets":[0,4]}}'
    n=${#header}
    {
        printf "$(printf '\\%03o' $n)"
        printf '\0\0\0\0\0\0\0'
        printf '%s' "$header"
        printf '\0\0\0\0'
    } >now.ckpt
    expect_error 1 'now.ckpt: parameter "w" is missing' \
        "$fake" eval --load now.ckpt --data train.csv
}

case_val_and_log() {
    make_data
    expect_ok "$fake" train --data train.csv --val val.csv --epochs 10 \
        --log-every 3
    [ "$(grep '^epoch' out.txt | awk '{ print $2 }' | tr '\n' ' ')" = \
        "1/10 3/10 6/10 9/10 10/10 " ] || fail "--log-every 3 epochs"
    grep -q '^epoch  9/10  loss .* mae .* val_loss .* val_mae ' out.txt ||
        fail "val columns"
    grep -q 'validation 200 (val.csv)' out.txt || fail "val in summary"
    expect_ok "$fake" train --data train.csv --epochs 2 --quiet --save q.ckpt
    [ ! -s out.txt ] || fail "--quiet printed something"
    [ -f q.ckpt ] || fail "--quiet did not save"
    expect_ok "$fake" train --data train.csv --epochs 1 --lr 0.01 \
        --hyper lr=0.02
    grep -q 'lr 0.02' out.txt || fail "--hyper overrides the learning rate"
}

type "case_$name" >/dev/null 2>&1 || { echo "no case $name" >&2; exit 2; }
"case_$name"
echo "ok $name"
