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

source "$(dirname "$0")/cli_lib.sh"
fake=$bin/fake_linear

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

# lt A B: numeric A < B.  near A B T: |A - B| < T.  A must be a number:
# a value missing from the output ("" + 0 is 0) would otherwise pass.
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a ~ /^[-+]?[0-9.]+([eE][-+]?[0-9]+)?$/ && a + 0 < b + 0) }'; }
near() { awk -v a="$1" -v b="$2" -v t="$3" \
    'BEGIN { d = a - b; if (d < 0) d = -d; exit !(a ~ /^[-+]?[0-9.]+([eE][-+]?[0-9]+)?$/ && d < t) }'; }

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
    expect_error 1 "--hyper: no hyper-parameter 'beta'; the model has: lr" \
        "$fake" train --data train.csv --hyper beta=1
    run "$fake"
    [ $rc -eq 2 ] || fail "no command should exit 2"
    grep -q usage err.txt || fail "no command should print usage on stderr"
    expect_error 2 "--threads expects a positive integer, got '0'" "$fake" train --threads 0
    # a bad MDL_THREADS is said, and the run goes on with one thread per CPU
    MDL_THREADS=abc expect_ok "$fake" info
    grep -q 'note: MDL_THREADS="abc" is not a positive number of threads' err.txt ||
        fail "no note about a bad MDL_THREADS"
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
    grep -q '^epoch 10/10  loss [0-9.e+-]*  mae [0-9.e+-]*  lr 0.05  [0-9.e+-]*m\?s  .* samples/s$' \
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
    # --no-shuffle: file order every epoch, whatever the seed (the fake's
    # initialisers are zeros), and a different file order differs.
    expect_ok "$fake" train --data train.csv --save d.ckpt --seed 5 --no-shuffle
    expect_ok "$fake" train --data train.csv --save e.ckpt --seed 6 --no-shuffle
    same_tensors d.ckpt e.ckpt || fail "--no-shuffle still depends on the seed"
    cmp -s a.ckpt d.ckpt && fail "--no-shuffle gave the shuffled result"
    { head -n 1 train.csv; tail -n +2 train.csv | tac; } >reversed.csv
    expect_ok "$fake" train --data reversed.csv --save f.ckpt --seed 5 --no-shuffle
    cmp -s d.ckpt f.ckpt && fail "--no-shuffle ignores the file order"
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

# The f64 check: the header says so and both numbers are reported.
case_gradcheck_f64() {
    expect_ok "$fake" gradcheck
    grep -q '^gradcheck linear (float64): .*eps 1e-06, tol 1e-06$' out.txt || fail "float64 header"
    grep -q '^f64 vs finite differences: max rel error ' out.txt || fail "f64 line"
    grep -q '^f32 vs f64 gradients: max rel error ' out.txt || fail "f32 vs f64 line"
    # the bad model: both its variants wrong, so the f64 check fails on b
    run "$bin/fake_linear_badgrad" gradcheck
    [ $rc -eq 1 ] || fail "a gradient wrong in both variants should exit 1, got $rc"
    grep -q '^  b .*worst b: analytic' out.txt || fail "b not named (f64)"
    # only the f32 gradient wrong: f64 passes, f32 vs f64 fails
    run "$bin/fake_linear_badf32" gradcheck
    [ $rc -eq 1 ] || fail "a wrong f32 gradient should exit 1, got $rc"
    grep -q '^gradcheck: FAIL$' out.txt || fail "no FAIL line (f32)"
    grep -q '^  b .*worst f32 b: ' out.txt || fail "b not named (f32 vs f64)"
    grep -q '^  w .*worst' out.txt && fail "w wrongly blamed (f32 vs f64)"
    # without f64 entries: the float32 check, which still catches nothing
    # wrong in a right model
    run "$bin/fake_linear_nof64" gradcheck
    [ $rc -eq 0 ] || fail "the f32 fallback should pass, got $rc"
    grep -q '^gradcheck linear (float32): .*eps 0.004, tol 0.01$' out.txt || fail "float32 header"
    grep -q 'f32 vs f64' out.txt && fail "f32 vs f64 without f64 entries"
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

# A .tsv file is CSV with tabs: the same data trains and evaluates the
# same, a header included; its errors count the tab-separated columns.
case_tsv() {
    train_and_save
    expect_ok "$fake" eval --load model.ckpt --data train.csv
    cp out.txt want.txt
    tr ',' '\t' <train.csv >train.tsv
    expect_ok "$fake" eval --load model.ckpt --data train.tsv
    cmp -s out.txt want.txt || fail "the .tsv file evaluates differently"
    gzip -k train.tsv
    expect_ok "$fake" eval --load model.ckpt --data train.tsv.gz
    cmp -s out.txt want.txt || fail "the .tsv.gz file evaluates differently"
    printf '1\t2\t3\n4,5,6\n' >mixed.tsv
    expect_error 1 "mixed.tsv:2: expected 3 columns, found 1" "$fake" train --data mixed.tsv
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
    hlen=$(od -An -tu8 -N8 model.ckpt | tr -d ' ')
    expect_error 1 "cut.ckpt: header length $hlen runs past the end of the file" \
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

# The corruption matrix: the checkpoint cut at every sixteenth of its
# length, and one bit flipped in each tensor and in the metadata; each is
# refused with one error line, a flipped tensor by name.
case_damaged_checkpoints() {
    train_and_save
    size=$(wc -c <model.ckpt)
    for k in $(seq 1 15); do
        head -c $((size * k / 16)) model.ckpt >cut$k.ckpt
        expect_error 1 "cut$k.ckpt: " "$fake" eval --load cut$k.ckpt --data train.csv
    done
    hlen=$(od -An -tu8 -N8 model.ckpt | tr -d ' ')
    flip() { # flip FILE OFFSET: xor the byte at OFFSET with 0x10
        local byte
        byte=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
        printf "$(printf '\\%03o' $((byte ^ 16)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
    }
    # w is bytes 0-7 of the data, b 8-11, the optimizer's step 12-15
    for t in w:4 b:9 opt.step:14; do
        cp model.ckpt flip.ckpt
        flip flip.ckpt $((8 + hlen + ${t#*:}))
        expect_error 1 "flip.ckpt: damaged: tensor \"${t%%:*}\" does not match its checksum" \
            "$fake" eval --load flip.ckpt --data train.csv
    done
    # the model's name in the metadata: "linear" -> "|inear"
    at=$(grep -boa '"model":"linear"' model.ckpt | cut -d: -f1)
    cp model.ckpt flip.ckpt
    flip flip.ckpt $((at + 9))
    expect_error 1 "flip.ckpt: damaged: the metadata does not match its checksum" \
        "$fake" eval --load flip.ckpt --data train.csv
    # no path in the metadata, the source's base name (e2e_hyper checks
    # the hash of its text that mdlc adds)
    grep -qa '"source":"fake_linear.c"' model.ckpt || fail "source is not the base name"
    grep -qa '"source":"[^"]*/' model.ckpt && fail "a path in the metadata"
    true
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
    grep -q 'note: nostate.ckpt has no optimizer state; the optimizer starts afresh' \
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

# The classifier's data: tr-* (400 samples) and te-* (100) in every format
# (see gen_images.c).
cls=$bin/fake_classifier
make_images() {
    "$bin/gen_images" 400 1 tr && "$bin/gen_images" 100 2 te || fail "gen_images"
}

# u32 big-endian, for crafting IDX headers.
be32() { printf "$(printf '\\%03o' $(($1 >> 24 & 255)) $(($1 >> 16 & 255)) $(($1 >> 8 & 255)) $(($1 & 255)))"; }

case_idx() {
    make_images
    expect_ok "$cls" train --data tr-images.idx,tr-labels.idx --epochs 3 --save c.ckpt
    grep -q '^train classifier: 400 samples (tr-images.idx,tr-labels.idx), batch 8, 3 epochs' out.txt ||
        fail "summary"
    acc=$(awk '/^final/ { print $5 }' out.txt)
    lt 0.8 "$acc" || fail "training accuracy $acc"
    expect_ok "$cls" eval --load c.ckpt --data te-images.idx,te-labels.idx
    cp out.txt idx_eval.txt
    grep -q '^loss [0-9.e+-]*$' out.txt && grep -q '^acc [0-9.e+-]*$' out.txt || fail "eval lines"
    # The same images as [N, 4]: same per-sample count is enough.
    { printf '\0\0\010\002'; be32 100; be32 4; tail -c 400 te-images.idx; } >flat.idx
    expect_ok "$cls" eval --load c.ckpt --data flat.idx,te-labels.idx
    cmp -s out.txt idx_eval.txt || fail "[N, 4] images evaluate differently"
    # and as CSV.
    expect_ok "$cls" eval --load c.ckpt --data te.csv
    cmp -s out.txt idx_eval.txt || fail "CSV evaluates differently from IDX"
    # A name IDX is not recognised by: found by its content.
    cp te-images.idx images.bin && cp te-labels.idx labels.dat
    expect_ok "$cls" eval --load c.ckpt --data images.bin,labels.dat
    cmp -s out.txt idx_eval.txt || fail "IDX by content"
}

case_npy() {
    make_images
    expect_ok "$cls" train --data tr-images.npy,tr-labels.npy --epochs 3 --save n.ckpt
    expect_ok "$cls" train --data tr-images.idx,tr-labels.idx --epochs 3 --save i.ckpt
    cmp -s n.ckpt i.ckpt || fail "NPY and IDX of the same data train differently"
    expect_ok "$cls" eval --load n.ckpt --data te-images.idx,te-labels.idx
    cp out.txt want.txt
    for pair in te-images.npy,te-labels.npy te-images-f4.npy,te-labels-i4.npy \
        te-images-f4.npy,te-labels.idx; do
        expect_ok "$cls" eval --load n.ckpt --data $pair
        cmp -s out.txt want.txt || fail "$pair evaluates differently"
    done
}

case_gzip() {
    make_images
    expect_ok "$cls" train --data tr-images.idx,tr-labels.idx --epochs 2 --save c.ckpt
    expect_ok "$cls" eval --load c.ckpt --data te-images.idx,te-labels.idx
    cp out.txt want.txt
    gzip -k te-images.idx te-labels.idx te-images.npy te.csv
    for files in te-images.idx.gz,te-labels.idx.gz te-images.npy.gz,te-labels.idx te.csv.gz; do
        expect_ok "$cls" eval --load c.ckpt --data $files
        cmp -s out.txt want.txt || fail "$files evaluates differently"
    done
    # gzipped whatever the name says
    cp te-images.idx.gz zipped.idx
    expect_ok "$cls" eval --load c.ckpt --data zipped.idx,te-labels.idx
    cmp -s out.txt want.txt || fail "gzip content under a plain name"
    size=$(wc -c <te-images.idx.gz)
    head -c $((size - 10)) te-images.idx.gz >cut.idx.gz
    expect_error 1 "cut.idx.gz: truncated gzip data (unexpected end of file)" \
        "$cls" eval --load c.ckpt --data cut.idx.gz,te-labels.idx
    cp te-images.idx.gz bad.idx.gz
    printf '\125\125\125\125' | dd of=bad.idx.gz bs=1 seek=$((size - 8)) conv=notrunc 2>/dev/null
    expect_error 1 "bad.idx.gz: corrupt gzip data (incorrect data check)" \
        "$cls" eval --load c.ckpt --data bad.idx.gz,te-labels.idx
}

case_bad_idx() {
    make_images
    train() { "$cls" train --epochs 1 --data "$@"; }
    cp te-images.idx magic.idx
    printf '\001' | dd of=magic.idx bs=1 seek=1 conv=notrunc 2>/dev/null
    expect_error 1 "magic.idx: not an IDX file: magic 00 01 08 03" train magic.idx,te-labels.idx
    cp te-images.idx type.idx
    printf '\007' | dd of=type.idx bs=1 seek=2 conv=notrunc 2>/dev/null
    expect_error 1 "type.idx: not an IDX file: magic 00 00 07 03" train type.idx,te-labels.idx
    head -c 300 te-images.idx >short.idx
    expect_error 1 "short.idx: truncated: the header says 100 x 2 x 2 u8 (400 bytes of data), the file has 284" \
        train short.idx,te-labels.idx
    head -c 10 te-images.idx >header.idx
    expect_error 1 "header.idx: truncated: 10 bytes, shorter than the 16-byte header of a rank-3 IDX file" \
        train header.idx,te-labels.idx
    cp te-images.idx long.idx && printf 'xy' >>long.idx
    expect_error 1 "long.idx: 2 bytes after the 100 x 2 x 2 u8 data its header describes" \
        train long.idx,te-labels.idx
    expect_error 1 "tr-labels.idx: 400 samples, but te-images.idx has 100" \
        train te-images.idx,tr-labels.idx
    expect_error 1 'te-labels.idx: each sample is a single value, but "image" f32[B, 2, 2] takes 4 per sample' \
        train te-labels.idx,te-labels.idx
    expect_error 1 'te-images.idx: each sample is 2 x 2 (4 values), but "label" i32[B] takes 1 per sample' \
        train te-images.idx,te-images.idx
    { printf '\0\0\010\001'; be32 0; } >empty.idx
    expect_error 1 "empty.idx: holds no samples" train empty.idx,te-labels.idx
    : >nothing.idx
    expect_error 1 "nothing.idx: truncated: 0 bytes" train nothing.idx,te-labels.idx
    { printf '\0\0\015\001'; be32 2; printf '\077\200\0\0\177\300\0\0'; } >nan.idx
    { printf '\0\0\010\003'; be32 2; be32 2; be32 2; head -c 8 /dev/zero; } >two.idx
    expect_error 1 "nan.idx: value nan of sample 1 (label) is not a finite number" train two.idx,nan.idx
    { printf '\0\0\015\001'; be32 2; printf '\077\300\0\0\077\200\0\0'; } >half.idx
    expect_error 1 'half.idx: value 1.5 of sample 0 (label) is not an integer in i32'"'"'s range, and "label" is i32' \
        train two.idx,half.idx
    expect_error 1 'te-images.idx: no file for target "label": list one file per input and target' \
        train te-images.idx
    expect_error 1 "te.csv: one file too many" train te-images.idx,te-labels.idx,te.csv
    expect_error 1 'empty file name in the list "te-images.idx,,te-labels.idx"' \
        train te-images.idx,,te-labels.idx
    expect_error 1 "cannot open nope.idx: No such file or directory" train te-images.idx,nope.idx
    mkdir dir.idx
    expect_error 1 "cannot read dir.idx: Is a directory" train te-images.idx,dir.idx
}

case_bad_npy() {
    make_images
    train() { "$cls" train --epochs 1 --data "$@"; }
    cp te-images.npy magic.npy
    printf 'X' | dd of=magic.npy bs=1 seek=1 conv=notrunc 2>/dev/null
    expect_error 1 "magic.npy: not an NPY file: it does not start with \\x93NUMPY" train magic.npy,te-labels.idx
    cp te-images.npy version.npy
    printf '\011' | dd of=version.npy bs=1 seek=6 conv=notrunc 2>/dev/null
    expect_error 1 "version.npy: NPY version 9.0 is not supported" train version.npy,te-labels.idx
    head -c 500 te-images.npy >short.npy
    expect_error 1 "short.npy: truncated: the header says 100 x 2 x 2 u1 (400 bytes of data), the file has 372" \
        train short.npy,te-labels.idx
    head -c 40 te-images.npy >header.npy
    expect_error 1 "header.npy: truncated: the header is 118 bytes" train header.npy,te-labels.idx
    sed '1s/False/True /' te-images.npy >fortran.npy
    expect_error 1 "fortran.npy: the array is in Fortran order" train fortran.npy,te-labels.idx
    sed '1s/|u1/<c8/' te-images.npy >complex.npy
    expect_error 1 "complex.npy: NPY dtype '<c8' is not supported" train complex.npy,te-labels.idx
    sed '1s/descr/dexcr/' te-images.npy >key.npy
    expect_error 1 "key.npy: cannot read the NPY header's \"dexcr\"" train key.npy,te-labels.idx
    sed '1s/(100, 2, 2)/(100, 2, 2]/' te-images.npy >shape.npy
    expect_error 1 "shape.npy: cannot read the NPY header's \"shape\"" train shape.npy,te-labels.idx
    sed '1s/{/[/' te-images.npy >dict.npy
    expect_error 1 "dict.npy: malformed NPY header" train dict.npy,te-labels.idx
    expect_error 1 "tr-labels.npy: 400 samples, but te-images.npy has 100" train te-images.npy,tr-labels.npy
    sed '1s/(100, 2, 2)/(100, 4, 1)/' te-images.npy >shape41.npy
    expect_ok "$cls" train --epochs 1 --data shape41.npy,te-labels.npy
    sed '1s/(100, 2, 2)/(100, 2, 1)/' te-images.npy >shape21.npy
    expect_error 1 'shape21.npy: each sample is 2 x 1 (2 values), but "image" f32[B, 2, 2] takes 4' \
        train shape21.npy,te-labels.npy
}

case_file_lists() {
    make_images
    # Images as CSV columns, labels as IDX: a CSV feeds what its columns cover.
    cut -d, -f1-4 tr.csv >tr-images.csv
    expect_ok "$cls" train --data tr-images.csv,tr-labels.idx --epochs 2 --save a.ckpt
    expect_ok "$cls" train --data tr-images.idx,tr-labels.idx --epochs 2 --save b.ckpt
    cmp -s a.ckpt b.ckpt || fail "CSV+IDX and IDX+IDX train differently"
    expect_ok "$cls" train --data tr.csv --epochs 2 --save c.ckpt
    cmp -s a.ckpt c.ckpt || fail "one CSV and IDX+IDX train differently"
    cut -d, -f5 tr.csv >tr-labels.csv
    expect_ok "$cls" train --data tr-images.idx,tr-labels.csv --epochs 2 --save d.ckpt
    cmp -s a.ckpt d.ckpt || fail "IDX+CSV trains differently"
    expect_error 1 "tr-images.csv:1: expected 1 columns, found 4" \
        "$cls" train --data tr-images.idx,tr-images.csv
    expect_error 1 "tr-labels.csv:1: expected 4 or 5 columns, found 1" \
        "$cls" train --data tr-labels.csv,tr-labels.idx
    expect_error 1 "tr-images.csv:1: expected 5 columns, found 4" "$cls" train --data tr-images.csv
    # predict: the inputs, with or without the targets after them.
    expect_ok "$cls" predict --load a.ckpt --input te-images.idx
    cp out.txt want.txt
    for input in te-images.idx,te-labels.idx te-images.npy te.csv te-images-f4.npy,te-labels.csv; do
        [ -f te-labels.csv ] || cut -d, -f5 te.csv >te-labels.csv
        expect_ok "$cls" predict --load a.ckpt --input $input
        cmp -s out.txt want.txt || fail "predict --input $input differs"
    done
    cut -d, -f1-4 te.csv | "$cls" predict --load a.ckpt --input - >out.txt 2>err.txt || fail "stdin"
    cmp -s out.txt want.txt || fail "predict from stdin differs"
    expect_error 1 "te.csv: one file too many" "$cls" predict --load a.ckpt --input te.csv,te.csv
}

case_val_split() {
    make_images
    expect_ok "$cls" train --data tr-images.idx,tr-labels.idx --val-split 0.25 --epochs 2 --save s.ckpt
    grep -q '^train classifier: 300 samples (tr-images.idx,tr-labels.idx), validation 100 (the last 25% of tr-images.idx,tr-labels.idx)' \
        out.txt || fail "summary with --val-split"
    grep -q '^epoch 2/2  loss .*  acc .*  val_loss .*  val_acc .*  lr 2  ' out.txt || fail "val columns"
    val_loss=$(awk '/^epoch 2\/2/ { print $8 }' out.txt)
    # The held-out part is the last 100 samples: evaluate them directly.
    tail -n 100 tr.csv >last100.csv
    head -n 301 tr.csv >first300.csv
    expect_ok "$cls" eval --load s.ckpt --data last100.csv
    [ "$(awk '/^loss/ { print $2 }' out.txt)" = "$val_loss" ] || fail "val_loss $val_loss is not the last 100's"
    expect_ok "$cls" train --data first300.csv --val last100.csv --epochs 2 --save v.ckpt
    cmp -s s.ckpt v.ckpt || fail "--val-split 0.25 differs from --val with the same split"
    # --seed makes a run repeatable, shuffle included; another seed differs.
    for run in a b c; do
        seed=3 && [ $run = c ] && seed=4
        expect_ok "$cls" train --data tr-images.npy,tr-labels.npy --val-split 0.2 --epochs 3 --seed $seed \
            --save $run.ckpt --log $run.csv
        cut -d, -f1-7 $run.csv >$run.values
    done
    cmp -s a.ckpt b.ckpt && cmp -s a.values b.values || fail "--seed 3 twice differs"
    cmp -s a.ckpt c.ckpt && fail "--seed 3 and 4 give the same checkpoint"
    expect_error 2 "--val and --val-split both give validation data" \
        "$cls" train --data tr.csv --val te.csv --val-split 0.1
    expect_error 2 "--val-split expects a number between 0 and 1 (exclusive), got '1'" \
        "$cls" train --data tr.csv --val-split 1
    expect_error 1 "--val-split 0.999 of the 400 samples in tr.csv leaves nothing to train on" \
        "$cls" train --data tr.csv --val-split 0.999
    expect_ok "$cls" train --data tr.csv --val-split 0.001 --epochs 1
    grep -q 'validation 1 (the last 0.1% of tr.csv)' out.txt || fail "one validation sample"
}

case_metrics_log() {
    make_images
    expect_ok "$cls" train --data tr-images.idx,tr-labels.idx --val te.csv --epochs 4 --log log.csv
    [ "$(head -1 log.csv)" = "epoch,step,loss,acc,val_loss,val_acc,lr,seconds" ] || fail "log header"
    [ "$(wc -l <log.csv)" -eq 5 ] || fail "log rows"
    awk -F, 'NR > 1 && (NF != 8 || $1 != NR - 1 || $2 != 50 * (NR - 1) || $7 != 2) { exit 1 }' log.csv ||
        fail "log columns"
    # The log holds what the epoch lines print.
    for e in 1 2 3 4; do
        line=$(grep "^epoch $e/4" out.txt)
        row=$(sed -n "$((e + 1))p" log.csv)
        set -- $line
        near "$(echo "$row" | cut -d, -f3)" "$4" 1e-5 || fail "epoch $e loss"
        near "$(echo "$row" | cut -d, -f6)" "${10}" 1e-5 || fail "epoch $e val_acc"
    done
    awk -F, 'NR > 2 && $8 < prev { exit 1 } { prev = $8 }' log.csv || fail "seconds go backwards"
    # Without validation: no val_ columns.
    expect_ok "$cls" train --data tr.csv --epochs 1 --log plain.csv --quiet
    [ "$(head -1 plain.csv)" = "epoch,step,loss,acc,lr,seconds" ] || fail "plain log header"
    expect_error 1 "cannot open nodir/log.csv for writing: No such file or directory" \
        "$cls" train --data tr.csv --log nodir/log.csv
    [ ! -s out.txt ] || fail "training started despite the unwritable log"
}

# check_lr PROGRAM AWK_FORMULA [ARGS...]: every step's lr, as the kernel
# saw it, against the formula of s (step), e (epoch); 50 steps per epoch.
check_lr() {
    local prog=$1 formula=$2
    shift 2
    FAKE_LR_TRACE=trace.txt "$bin/$prog" train --data tr.csv --epochs 4 --log log.csv "$@" \
        >out.txt 2>err.txt || fail "$prog $*"
    [ "$(wc -l <trace.txt)" -eq 200 ] || fail "$prog: $(wc -l <trace.txt) steps traced"
    awk -v S=200 "{ s = \$1; e = int(s / 50); want = $formula; got = \$2;
        d = got - want; if (d < 0) d = -d; if (d > 1e-6 * (want > 1e-3 ? want : 1e-3) || s != NR - 1) {
            print \"step \" s \": lr \" got \", expected \" want; bad = 1 } } END { exit bad }" trace.txt ||
        fail "$prog $*: lr differs from $formula"
    # The log and the epoch line print the lr of each epoch's last step.
    last=$(sed -n 200p trace.txt | cut -d' ' -f2)
    logged=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "lr") c = i } END { print $c }' log.csv)
    near "$logged" "$last" 1e-6 || fail "$prog: log lr $logged, last step's $last"
    grep -q "^epoch 4/4 .*  lr $(awk -v x="$logged" 'BEGIN { printf "%.6g", x }')  " out.txt ||
        fail "$prog: epoch line lr"
}

case_schedules() {
    make_images
    check_lr fake_classifier "2"
    check_lr fake_classifier "0.5" --lr 0.5
    check_lr fake_classifier_step "2 * 0.5 ^ int(e / 2)"
    check_lr fake_classifier_step "0.4 * 0.5 ^ int(e / 2)" --lr 0.4
    check_lr fake_classifier_step "0.3 * 0.5 ^ int(e / 2)" --hyper lr=0.3
    check_lr fake_classifier_exponential "2 * 0.8 ^ e"
    check_lr fake_classifier_cosine \
        "(0.1 + 1.9 * (1 + cos(3.141592653589793 * s / S)) / 2) * (s + 1 < 5 ? (s + 1) / 5 : 1)"
    check_lr fake_classifier_warmup "2 * (s + 1 < 10 ? (s + 1) / 10 : 1)"
    grep -q 'lr 2, schedule constant(warmup=10), seed 1$' out.txt || fail "schedule in the summary"
    expect_ok "$bin/fake_classifier_cosine" info
    grep -q '^train: sgd, batch 8, epochs 6, lr 2, schedule cosine(min_lr=0.1, warmup=5), seed 1$' \
        out.txt || fail "schedule in info"
    expect_ok "$bin/fake_classifier_step" train --help
    grep -q -- '--lr X .*(default 2, schedule step(step_size=2, gamma=0.5))' out.txt || fail "schedule in help"
}

case_hypers() {
    make_images
    # The fake's kernels check "training" and "step" (NaN otherwise).
    expect_ok "$cls" train --data tr.csv --val te.csv --epochs 2 --save h.ckpt
    expect_ok "$cls" train --data tr.csv --load h.ckpt --epochs 1
    expect_ok "$cls" eval --load h.ckpt --data te.csv
    grep -q nan out.txt && fail "eval ran in training mode"
    expect_ok "$cls" predict --load h.ckpt --input te.csv
    grep -q nan out.txt && fail "predict ran in training mode"
    expect_ok "$cls" gradcheck --data tr.csv --load h.ckpt
    grep -q '^gradcheck: PASS$' out.txt || fail "classifier gradcheck"
    # --hyper training=1 reaches both kernels: the fake's eval_step refuses
    # training mode, so the numeric gradient is NaN.
    run "$cls" gradcheck --data tr.csv --hyper training=1
    [ $rc -eq 1 ] && grep -q 'numeric nan' out.txt || fail "gradcheck --hyper training=1"
    expect_error 1 '--hyper: "training" is set by the runtime before every step' \
        "$cls" train --data tr.csv --hyper training=1
    expect_error 1 '--hyper: "step" is set by the runtime' "$cls" train --data tr.csv --hyper step=3
    expect_error 1 "--hyper: no hyper-parameter 'dropout'; the model has: lr, training, step" \
        "$cls" gradcheck --data tr.csv --hyper dropout=0.5
    grep -q -e ', training' -e ', step' <("$cls" train --data tr.csv --epochs 1) &&
        fail "runtime-set hyper-parameters listed in the summary"
    true
}

# --hyper on train and eval, info's list, and the values a checkpoint and
# a log record.
case_hyper_options() {
    make_data
    expect_ok "$fake" info
    grep -q '^hyper-parameters (set with --hyper NAME=X' out.txt || fail "info has no hyper-parameters section"
    grep -q "^  lr  *0.05  (the optimizer's learning rate; also --lr)$" out.txt || fail "info does not list lr"
    expect_ok "$fake" train --data train.csv --val val.csv --epochs 2 --hyper lr=0.02 --save m.ckpt --log log.csv
    grep -qaF '"mdl.hypers":"{\"lr\":0.02}"' m.ckpt || fail "the checkpoint does not record lr 0.02"
    # fake_linear's only hyper is lr, which has its own column already
    [ "$(head -1 log.csv)" = "epoch,step,loss,mae,val_loss,val_mae,lr,seconds" ] || fail "log header"
    expect_ok "$fake" eval --load m.ckpt --data val.csv --hyper lr=1
    expect_error 1 "--hyper: no hyper-parameter 'lamb'; the model has: lr" \
        "$fake" eval --load m.ckpt --data val.csv --hyper lamb=1
    expect_error 2 "--hyper expects NAME=NUMBER, got 'lr'" "$fake" eval --load m.ckpt --data val.csv --hyper lr
    expect_error 2 "--hyper expects NAME=NUMBER, got 'lr=fast'" "$fake" train --data train.csv --hyper lr=fast
    expect_error 2 "unknown option '--hyper'" "$fake" predict --load m.ckpt --input val.csv --hyper lr=1
}

# train --sweep: what it refuses, before any run starts.
case_sweep_errors() {
    make_data
    local t=(--data train.csv --val val.csv --epochs 1)
    expect_error 1 "--sweep: no hyper-parameter 'lamb'; the model has: lr" "$fake" train "${t[@]}" --sweep lamb=1,2
    expect_error 2 "--sweep expects NAME=NUMBER,NUMBER,..." "$fake" train "${t[@]}" --sweep lr
    expect_error 2 "got 'lr=0.1,,0.2'" "$fake" train "${t[@]}" --sweep lr=0.1,,0.2
    expect_error 2 "got 'lr=0.1,fast'" "$fake" train "${t[@]}" --sweep lr=0.1,fast
    expect_error 2 "got '=0.1'" "$fake" train "${t[@]}" --sweep =0.1
    expect_error 1 "--sweep lr: the value 1e-1 is there twice (as 0.1)" "$fake" train "${t[@]}" --sweep lr=0.1,1e-1
    expect_error 1 "--sweep lr is given twice" "$fake" train "${t[@]}" --sweep lr=0.1 --sweep lr=0.2
    expect_error 1 "--sweep lr: it is also set by --lr; pass one" "$fake" train "${t[@]}" --sweep lr=0.1 --lr 0.2
    expect_error 1 "--sweep lr: it is also set by --hyper" "$fake" train "${t[@]}" --sweep lr=0.1 --hyper lr=0.2
    expect_error 2 "--save does not go with --sweep: each run saves DIR/RUN/model.ckpt" \
        "$fake" train "${t[@]}" --sweep lr=0.1 --save m.ckpt
    expect_error 2 "--log does not go with --sweep" "$fake" train "${t[@]}" --sweep lr=0.1 --log l.csv
    expect_error 2 "--log-steps does not go with --sweep" "$fake" train "${t[@]}" --sweep lr=0.1 --log-steps l.csv
    expect_error 1 "--select val_loss needs validation data: pass --val FILES or --val-split X (or --select loss)" \
        "$fake" train --data train.csv --sweep lr=0.1
    expect_error 1 "--select acc: the runs have no such value (they have loss, val_loss, mae, val_mae)" \
        "$fake" train "${t[@]}" --sweep lr=0.1 --select acc
    : >afile
    expect_error 1 "cannot make directory afile: a file of that name is in the way" \
        "$fake" train "${t[@]}" --sweep lr=0.1 --runs afile
    # a set-up that fails would fail every run: the sweep stops at the first
    expect_error 1 "cannot open nothere.csv" "$fake" train --data nothere.csv --val val.csv --sweep lr=0.1,0.2 --runs r
    [ "$(grep -c '^sweep run' out.txt)" -eq 1 ] || fail "the sweep went on after a failed set-up"
    [ -e r/summary.csv ] && fail "a sweep whose data is missing wrote a summary"
    true
}

# train --sweep on fake_linear: a run per value in its own directory, a
# table ranked by --select, a run that diverges listed last.
case_sweep() {
    make_data
    expect_ok "$fake" train --data train.csv --val val.csv --epochs 3 --sweep lr=0.01,0.05,1e6 --select min:val_mae
    for v in 0.01 0.05; do
        [ -s "sweep/lr=$v/model.ckpt" ] && [ -s "sweep/lr=$v/log.csv" ] || fail "run lr=$v saved nothing"
        grep -qaF "\"mdl.hypers\":\"{\\\"lr\\\":$v}\"" "sweep/lr=$v/model.ckpt" || fail "run lr=$v's checkpoint"
    done
    [ -e sweep/lr=1e6/model.ckpt ] && fail "the diverged run saved a checkpoint"
    grep -q '^sweep: 3 runs ranked by val_mae (lower is better), best first; written to sweep/summary.csv$' out.txt ||
        fail "no table heading"
    grep -q 'training diverged' err.txt || fail "the diverged run's error"
    [ "$(sed -n 1p sweep/summary.csv)" = "rank,lr,loss,mae,val_loss,val_mae,run" ] || fail "summary header"
    [ "$(sed -n 4p sweep/summary.csv)" = '-,1e6,failed,failed,failed,failed,"lr=1e6"' ] || fail "failed run not last"
    # the order follows each run's own log: its last row's val_mae
    local a b
    a=$(tail -1 sweep/lr=0.01/log.csv | cut -d, -f6)
    b=$(tail -1 sweep/lr=0.05/log.csv | cut -d, -f6)
    local first=0.05
    lt "$a" "$b" && first=0.01
    [ "$(sed -n 2p sweep/summary.csv | cut -d, -f2)" = "$first" ] || fail "best run is not lr=$first ($a vs $b)"
    # --quiet leaves the table only
    expect_ok "$fake" train --data train.csv --val val.csv --epochs 1 --sweep lr=0.01,0.05 --runs q --quiet
    [ "$(grep -c '' out.txt)" -eq 5 ] || fail "--quiet sweep printed more than the table"
}

case_confusion() {
    make_images
    expect_ok "$cls" train --data tr-images.idx,tr-labels.idx --epochs 2 --save c.ckpt
    expect_ok "$cls" eval --load c.ckpt --data te-images.idx,te-labels.idx
    acc=$(awk '$1 == "acc" { print $2 }' out.txt)
    grep -q "^accuracy $acc ([0-9]* of 100: argmax of probs against label)$" out.txt ||
        fail "accuracy line does not match acc $acc"
    grep -q '^confusion matrix (rows: true label, columns: predicted):$' out.txt || fail "matrix title"
    grep -q '^     0   1   2   3$' out.txt || fail "matrix header"
    # The rows add up to the samples of each class; the diagonal to the hits.
    sed -n '/^confusion/,$p' out.txt | awk 'NR > 2 { for (i = 2; i <= NF; i++) { n += $i; if (i - 2 == NR - 3) d += $i } }
        END { print n, d }' >sums.txt
    read total diagonal <sums.txt
    [ "$total" -eq 100 ] || fail "matrix holds $total samples"
    grep -q "^accuracy .* ($diagonal of 100" out.txt || fail "diagonal $diagonal"
    for c in 0 1 2 3; do
        want=$(awk -F, -v c=$c 'NR > 1 && $5 == c' te.csv | wc -l)
        got=$(awk -v c=$c '$1 == c ":" { n = 0; for (i = 2; i <= NF; i++) n += $i; print n }' out.txt)
        [ "$got" -eq "$want" ] || fail "row $c holds $got, class $c has $want"
    done
    # Labels outside 0..3 are left out and counted.
    { printf '\0\0\010\001'; be32 100; tail -c 100 te-labels.idx | head -c 99; printf '\011'; } >odd.idx
    expect_ok "$cls" eval --load c.ckpt --data te-images.idx,odd.idx
    grep -q '^accuracy [0-9.e+-]* ([0-9]* of 99: ' out.txt || fail "accuracy over 99"
    grep -q '^(1 samples with a label outside 0..3 are left out)$' out.txt || fail "outside note"
    # A regression model gets no matrix.
    make_data
    expect_ok "$fake" train --data train.csv --epochs 1 --save l.ckpt --quiet
    expect_ok "$fake" eval --load l.ckpt --data val.csv
    grep -q -e accuracy -e confusion out.txt && fail "matrix for a regression"
    true
}

case_predict_probs() {
    make_images
    expect_ok "$cls" train --data tr.csv --epochs 2 --save p.ckpt --quiet
    expect_ok "$cls" predict --load p.ckpt --input te-images.idx
    [ "$(head -1 out.txt)" = "probs_0,probs_1,probs_2,probs_3" ] || fail "header $(head -1 out.txt)"
    [ "$(wc -l <out.txt)" -eq 101 ] || fail "rows"
    awk -F, 'NR > 1 { s = $1 + $2 + $3 + $4; if (NF != 4 || s < 0.9999 || s > 1.0001) exit 1 }' out.txt ||
        fail "rows are not probabilities"
}

case_tty_progress() {
    make_images
    if ! script -qc true /dev/null >/dev/null 2>&1; then
        echo "SKIP: no script(1) to run train on a terminal"
        exit 77 # ctest's SKIP_RETURN_CODE: reported as skipped, not passed
    fi
    script -qc "'$cls' train --data tr.csv --val te.csv --epochs 3" /dev/null >tty.txt 2>&1 ||
        fail "train on a terminal"
    tr '\r' '\n' <tty.txt | sed 's/\x1b\[K//g' >lines.txt
    for e in 1 2 3; do
        grep -q "^Epoch $e/3$" lines.txt || fail "no Epoch $e/3 line"
    done
    grep -q '^50/50 \[==============================\] - [0-9.]*[mu]*s [0-9.]*[mu]*s/step - loss: [0-9.e+-]* - acc: [0-9.e+-]* - val_loss: [0-9.e+-]* - val_acc: [0-9.e+-]* - lr: 2 - .* samples/s$' \
        lines.txt || fail "final bar line"
    grep -q '^ 1/50 \[\.*\] - ETA: ' lines.txt || fail "first progress line"
    grep -q $'\033\\[K' tty.txt || fail "no erase-line on a terminal"
    # Epochs that are not logged are drawn and erased.
    script -qc "'$cls' train --data tr.csv --epochs 20 --log-every 10" /dev/null >tty2.txt 2>&1 || fail "train 20"
    [ "$(tr '\r' '\n' <tty2.txt | sed 's/\x1b\[K//g' | grep -c '^Epoch [0-9]*/20$')" -eq 3 ] ||
        fail "logged epochs on a terminal"
    # Off a terminal: no control codes, one line per epoch.
    "$cls" train --data tr.csv --val te.csv --epochs 3 >pipe.txt 2>&1 || fail "piped"
    grep -q $'[\r\033]' pipe.txt && fail "control codes off a terminal"
    [ "$(grep -c '^epoch [0-9]/3  loss .* val_acc .*  lr 2  ' pipe.txt)" -eq 3 ] || fail "piped epoch lines"
}

# IDX pixels and labels stay u8 in memory and are converted as each batch
# is gathered: training on them must match training on the same numbers
# read from CSV as f32, bit for bit, shuffled and with the whole data set
# in one step (which takes the samples in file order, not shuffled).
case_u8_training() {
    make_images
    expect_ok "$cls" train --data tr-images.idx,tr-labels.idx --epochs 2 --save idx.ckpt
    expect_ok "$cls" train --data tr.csv --epochs 2 --save csv.ckpt
    cmp -s idx.ckpt csv.ckpt || fail "IDX (u8) and CSV (f32) train differently"
    # whole-batch steps: the seed no longer orders anything, IDX = CSV
    { printf '\0\0\010\003'; be32 32; be32 2; be32 2; head -c $((16 + 32 * 4)) tr-images.idx | tail -c 128; } >i32.idx
    { printf '\0\0\010\001'; be32 32; head -c $((8 + 32)) tr-labels.idx | tail -c 32; } >l32.idx
    head -n 33 tr.csv >tr32.csv
    expect_ok "$cls" train --data i32.idx,l32.idx --batch 32 --epochs 3 --save a.ckpt --seed 1
    expect_ok "$cls" train --data tr32.csv --batch 32 --epochs 3 --save b.ckpt --seed 2
    same_tensors a.ckpt b.ckpt || fail "whole-batch training depends on the seed or the file type"
}

# bench: synthetic inputs, a line per case with positive, consistent
# numbers; exactly --iters calls; --seconds; errors.
check_bench_lines() { # MODEL_NAME LARGE_BATCH TRAIN_BATCH CALLS (0: at least 10)
    grep -q "^bench $1: synthetic inputs, [0-9]* threads\?, " out.txt || fail "bench header"
    grep -q '^case  *batch  *calls  *p50_us  *p99_us  *mean_us  *samples/s$' out.txt || fail "bench columns"
    [ "$(grep -c '^\(predict\|train\) ' out.txt)" -eq 3 ] || fail "bench: want 3 cases"
    grep -q "^predict  *1 " out.txt && grep -q "^predict  *$2 " out.txt && grep -q "^train  *$3 " out.txt ||
        fail "bench case batches"
    awk -v calls="$4" '/^(predict|train) / {
            n++
            if (!(calls ? $3 == calls : $3 >= 10)) { print "calls " $3; exit 1 }
            if (!($4 > 0 && $4 <= $5 && $6 > 0 && $7 > 0)) { print "not positive or p50 > p99: " $0; exit 1 }
            # samples/s = batch / mean, up to the printed rounding of mean
            lo = $2 / ($6 + 0.0005) * 1e6; hi = $6 > 0.0005 ? $2 / ($6 - 0.0005) * 1e6 : 1e30
            if ($7 < lo - 1 || $7 > hi + 1) { print "samples/s " $7 " not batch/mean " lo ".." hi; exit 1 }
        }
        END { exit n != 3 }' out.txt >check.txt || fail "bench numbers: $(cat check.txt)"
}

case_bench() {
    expect_ok "$fake" bench --iters 25 --threads 1
    check_bench_lines linear 64 16 25
    grep -q '^bench linear: synthetic inputs, 1 thread, 25 calls a case after 5 warm-up calls$' out.txt ||
        fail "bench header with --iters"
    expect_ok "$fake" bench --batch 40 --seconds 0.02 --threads 2
    check_bench_lines linear 40 40 0
    grep -q ', 2 threads, 0.02 s a case after 0.004 s of warm-up$' out.txt || fail "bench header with --seconds"
    # an i32 target without a known range is zeros; the classifier's
    # kernels check the hyper-parameters they are given (NaN otherwise)
    expect_ok "$cls" bench --iters 3
    check_bench_lines classifier 32 8 3
    expect_ok "$fake" bench --help
    grep -q '^usage: fake_linear bench' out.txt && grep -q -- '--iters N' out.txt &&
        grep -q -- '--seconds X' out.txt || fail "bench --help"
    expect_error 1 "--batch 65 is too large" "$fake" bench --batch 65
    expect_error 2 "--iters expects a positive integer" "$fake" bench --iters 0
    expect_error 2 "--seconds expects a finite number > 0" "$fake" bench --seconds -1
    expect_error 2 "unknown option '--data'" "$fake" bench --data x.csv
    expect_error 1 "cannot open nothere.ckpt" "$fake" bench --load nothere.ckpt
}

type "case_$name" >/dev/null 2>&1 || { echo "no case $name" >&2; exit 2; }
"case_$name"
echo "ok $name"
