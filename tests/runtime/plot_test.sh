#!/usr/bin/env bash
# plot_test.sh - `plot`: training curves from --log and --log-steps CSVs
# as SVG, through fake_classifier (loss, acc, val_ ones) and its cosine
# schedule twin (a varying lr).
#
# usage: plot_test.sh CASE BINDIR WORKDIR
#
# Each case_* function is one ctest case, run in a fresh WORKDIR/CASE; it
# exits non-zero with a FAIL line on the first broken expectation.  The
# pictures are checked by a real renderer, rsvg-convert (Debian's
# librsvg2-bin): a case that needs it exits 77, a skip, without it.
set -u

source "$(dirname "$0")/cli_lib.sh"
cls=$bin/fake_classifier

# expect_error STATUS TEXT CMD...: fails with STATUS and one error line
# containing TEXT, and writes no picture.
expect_error() {
    local status=$1 text=$2
    shift 2
    rm -f out.svg
    run "$@"
    [ $rc -eq "$status" ] || fail "expected exit $status, got $rc from: $*"
    [ "$(wc -l <err.txt)" -eq 1 ] || fail "expected one stderr line from: $*"
    grep -q '^error: ' err.txt || fail "stderr does not start with error:"
    grep -qF -- "$text" err.txt || fail "stderr lacks '$text' from: $*"
    [ ! -e out.svg ] || fail "a picture was written despite the error: $*"
}

need_renderer() {
    command -v rsvg-convert >/dev/null || { echo "rsvg-convert not found (apt-get install librsvg2-bin): skipped"; exit 77; }
}

# render SVG: the renderer must accept it and draw a picture of its size.
render() {
    rsvg-convert -o "$1.png" "$1" 2>render.err || { cat render.err >&2; fail "rsvg-convert rejects $1"; }
    [ -s "$1.png" ] || fail "rsvg-convert drew nothing for $1"
    local want=$(sed -n 's/.*<svg [^>]* width="\([0-9]*\)" height="\([0-9]*\)".*/\1x\2/p' "$1")
    local got=$(od -An -tu1 -j16 -N8 "$1.png" | awk '{ print $3 * 256 + $4 "x" $7 * 256 + $8 }')
    [ "$got" = "$want" ] || fail "$1 renders as $got, its svg says $want"
}

make_images() {
    "$bin/gen_images" 400 1 tr && "$bin/gen_images" 100 2 te || fail "gen_images"
}

# train_log FILE SEED [ARGS...]: a 6-epoch run of the classifier with
# validation, logged to FILE.
train_log() {
    local file=$1 seed=$2
    shift 2
    mkdir -p "$(dirname "$file")"
    expect_ok "$cls" train --data tr.csv --val te.csv --epochs 6 --seed "$seed" --log "$file" --quiet "$@"
}

# column FILE NAME: the values of column NAME, one a line.
column() { awk -F, -v name="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == name) c = i; next } { print $c }' "$1"; }

case_one() {
    need_renderer
    make_images
    train_log run.csv 1
    expect_ok "$cls" plot run.csv -o out.svg
    render out.svg
    [ ! -s err.txt ] || fail "notes for a single plain run"
    # a panel per quantity, each with training and validation
    grep -q '>loss (solid), val_loss (dashed)<' out.svg || fail "no loss panel"
    grep -q '>acc (solid), val_acc (dashed)<' out.svg || fail "no acc panel"
    [ "$(grep -c '<polyline' out.svg)" -eq 4 ] || fail "expected 4 curves"
    # 6 points each, marked: 12 filled (training) and 12 hollow (validation)
    [ "$(grep -c '<circle .*fill="white"' out.svg)" -eq 12 ] || fail "validation markers"
    [ "$(grep -c '<circle ' out.svg)" -eq 24 ] || fail "markers"
    grep -q '>epoch<' out.svg || fail "no x axis label"
    # the table: final and best, best = min for loss, max for acc
    grep -q '^1 run, best final val_loss first' out.txt || fail "table heading"
    set -- $(sed -n 2p out.txt)
    [ "$*" = "run epochs loss best val_loss best acc best val_acc best" ] || fail "table columns: $*"
    set -- $(sed -n 3p out.txt)
    [ "$2" = 6 ] || fail "last epoch $2"
    [ "$3" = "$(column run.csv loss | tail -1 | awk '{ printf "%.6g", $1 }')" ] || fail "final loss $3"
    [ "$4" = "$(column run.csv loss | sort -g | head -1 | awk '{ printf "%.6g", $1 }')" ] || fail "best loss $4"
    [ "$9" = "$(column run.csv val_acc | tail -1 | awk '{ printf "%.6g", $1 }')" ] || fail "final val_acc $9"
    [ "${10}" = "$(column run.csv val_acc | sort -g | tail -1 | awk '{ printf "%.6g", $1 }')" ] ||
        fail "best val_acc ${10}"
    # --metric picks panels, --title the title
    expect_ok "$cls" plot run.csv --metric=acc --metric lr -o out.svg --title 'lr & acc <test>'
    render out.svg
    grep -q '>lr & acc' out.svg && fail "title not escaped"
    grep -q '>lr &amp; acc &lt;test&gt;<' out.svg || fail "no escaped title"
    grep -q '>loss (solid)' out.svg && fail "--metric acc drew the loss"
    grep -q '>acc (solid), val_acc (dashed)<' out.svg || fail "--metric acc"
    grep -q '>lr<' out.svg || fail "--metric lr"
    return 0
}

case_two() {
    need_renderer
    make_images
    # a sweep's layout: the files share a name, so the runs take their
    # directories' names, which XML must get escaped
    train_log 'sweep/lr=2 & <b>/log.csv' 1 --lr 2
    train_log sweep/lr_0.5/log.csv 2 --lr 0.5
    expect_ok "$cls" plot sweep/*/log.csv -o out.svg
    render out.svg
    grep -q '>lr=2 &amp; &lt;b&gt;<' out.svg || fail "legend lacks the first run"
    grep -q '>lr_0.5<' out.svg || fail "legend lacks the second run"
    grep -q '>2 runs<' out.svg || fail "default title"
    grep -q '>training<' out.svg && grep -q '>validation<' out.svg || fail "legend lacks the line styles"
    # one colour per run, both styles each
    [ "$(grep '<polyline' out.svg | grep -c 'stroke="#1f77b4"')" -eq 4 ] || fail "run 1's curves"
    [ "$(grep '<polyline' out.svg | grep -c 'stroke="#ff7f0e"')" -eq 4 ] || fail "run 2's curves"
    [ "$(grep '<polyline' out.svg | grep -c 'stroke-dasharray')" -eq 4 ] || fail "dashed validation"
    # the table is sorted by the final val_loss
    grep -q '^2 runs, best final val_loss first' out.txt || fail "sort rule"
    local first=$(column 'sweep/lr=2 & <b>/log.csv' val_loss | tail -1)
    local second=$(column sweep/lr_0.5/log.csv val_loss | tail -1)
    local want="lr_0.5 lr=2"
    awk -v a="$first" -v b="$second" 'BEGIN { exit !(a < b) }' && want="lr=2 lr_0.5"
    [ "$(sed -n '3,4p' out.txt | awk '{ printf "%s%s", (NR > 1 ? " " : ""), $1 }')" = "$want" ] ||
        fail "table not sorted by final val_loss ($first, $second)"
    # --sort: higher is better for accuracies, so the order turns round
    expect_ok "$cls" plot sweep/*/log.csv -o out.svg --sort val_acc
    grep -q '^2 runs, best final val_acc first' out.txt || fail "--sort val_acc heading"
    local acc1=$(column 'sweep/lr=2 & <b>/log.csv' val_acc | tail -1)
    local acc2=$(column sweep/lr_0.5/log.csv val_acc | tail -1)
    want="lr=2 lr_0.5"
    awk -v a="$acc1" -v b="$acc2" 'BEGIN { exit !(a < b) }' && want="lr_0.5 lr=2"
    [ "$(sed -n '3,4p' out.txt | awk '{ printf "%s%s", (NR > 1 ? " " : ""), $1 }')" = "$want" ] ||
        fail "table not sorted by final val_acc, highest first ($acc1, $acc2)"
    # two sweeps with the same run names: their directories tell them apart
    mkdir -p other/lr_0.5 && cp sweep/lr_0.5/log.csv other/lr_0.5/log.csv
    expect_ok "$cls" plot sweep/lr_0.5/log.csv other/lr_0.5/log.csv -o out.svg
    grep -q '>sweep/lr_0.5<' out.svg && grep -q '>other/lr_0.5<' out.svg || fail "two sweeps' runs not told apart"
    # distinct file names name the runs themselves, without .csv
    cp sweep/lr_0.5/log.csv b.csv
    cp 'sweep/lr=2 & <b>/log.csv' a.csv
    expect_ok "$cls" plot a.csv b.csv -o out.svg
    grep -q '>a<' out.svg && grep -q '>b<' out.svg || fail "runs not named after their files"
}

# Runs whose columns differ: the shared ones are drawn, with a note.
case_columns_differ() {
    need_renderer
    make_images
    train_log val.csv 1
    expect_ok "$cls" train --data tr.csv --epochs 4 --log plain.csv --quiet
    expect_ok "$cls" plot val.csv plain.csv -o out.svg
    render out.svg
    grep -q "^note: the runs' columns differ: plotting only the ones all share (left out: val_loss, val_acc)$" err.txt ||
        fail "no note on the columns left out"
    grep -q 'val_loss' out.svg && fail "drew a column one run lacks"
    grep -q '>loss<' out.svg || fail "no loss panel"
    grep -q '^2 runs, best final loss first' out.txt || fail "sort falls back to loss"
    expect_error 1 "--metric val_acc: plain.csv has no column val_acc" "$cls" plot val.csv plain.csv -o out.svg \
        --metric val_acc
}

# A --log-steps file: x is the step; a long one is thinned to the pixels.
case_steps() {
    need_renderer
    make_images
    expect_ok "$bin/fake_classifier_cosine" train --data tr.csv --epochs 4 --log-steps steps.csv --quiet
    expect_ok "$cls" plot steps.csv -o out.svg --metric loss --metric lr --log-y
    render out.svg
    grep -q '>step<' out.svg || fail "x axis is not the step"
    grep -q '>loss (log scale)<' out.svg || fail "no log-scale label"
    [ "$(grep -c '<polyline' out.svg)" -eq 2 ] || fail "expected the loss and the lr curves"
    grep -q '^run  *steps  *loss  *best  *lr  *best' out.txt || fail "table columns"
    # 200000 steps: at most two points per pixel column of the 692 drawn
    awk 'BEGIN { print "step,epoch,loss,lr,seconds"; for (s = 1; s <= 200000; s++)
        printf "%d,%d,%.6g,0.1,%d\n", s, int(s / 1000) + 1, 1 / sqrt(s) + 0.01 * sin(s), s / 100 }' >long.csv
    expect_ok "$cls" plot long.csv -o out.svg
    render out.svg
    local points=$(grep -o 'points="[^"]*"' out.svg | tr ' ' '\n' | grep -c ,)
    [ "$points" -gt 700 ] && [ "$points" -le 1400 ] || fail "$points points for 200000 steps"
    [ "$(wc -c <out.svg)" -lt 40000 ] || fail "the picture of a long log is $(wc -c <out.svg) bytes"
    # epoch and step logs do not share an x axis
    train_log epochs.csv 1
    expect_error 1 "epochs.csv is a log per epoch and steps.csv one per step" "$cls" plot epochs.csv steps.csv -o out.svg
}

# An empty lr column (a model without one), a diverged nan loss, and values
# a log axis cannot show.
case_gaps() {
    need_renderer
    printf 'epoch,step,loss,acc,lr,seconds\n1,10,2.5,0,,1\n2,20,nan,0.5,,2\n3,30,1.5,0.7,,3\n4,40,inf,0.8,,4\n' >gaps.csv
    expect_ok "$cls" plot gaps.csv -o out.svg --metric loss --metric acc --metric lr --log-y
    render out.svg
    grep -q '^note: --log-y leaves out 1 values <= 0 of acc$' err.txt || fail "no note on the value left out"
    grep -q '>no values to draw<' out.svg || fail "an empty lr panel should say so"
    # the loss has no two drawable points in a row: markers, no line
    grep -q 'stroke="#1f77b4"' out.svg || fail "nothing drawn"
    [ "$(grep -c '<polyline' out.svg)" -eq 1 ] || fail "only acc's 0.5, 0.7, 0.8 make a line"
    set -- $(grep '^gaps ' out.txt)
    [ "$3 $4 $5 $6 $7 $8" = "inf 1.5 0.8 0.8 - -" ] || fail "final and best with gaps: $*"
}

case_errors() {
    make_images
    train_log good.csv 1
    expect_error 2 "plot needs -o FILE.svg" "$cls" plot good.csv
    expect_error 2 "plot needs at least one log file" "$cls" plot -o out.svg
    expect_error 2 "missing value for '-o'" "$cls" plot good.csv -o
    expect_error 2 "unknown option '--bogus'" "$cls" plot good.csv -o out.svg --bogus
    expect_error 2 "empty value for '--metric='" "$cls" plot good.csv -o out.svg --metric=
    expect_error 1 "cannot open missing.csv: No such file or directory" "$cls" plot good.csv missing.csv -o out.svg
    : >empty.csv
    expect_error 1 "empty.csv: empty: expected a CSV written by train --log" "$cls" plot empty.csv -o out.svg
    head -1 good.csv >header.csv
    expect_error 1 "header.csv: a header and no rows" "$cls" plot header.csv -o out.svg
    tail -n +2 good.csv >noheader.csv
    expect_error 1 "noheader.csv:1: no header: expected a CSV written by train --log" "$cls" plot noheader.csv -o out.svg
    printf 'loss,acc\n1,2\n' >other.csv
    expect_error 1 "other.csv:1: the first column is 'loss': expected 'epoch'" "$cls" plot other.csv -o out.svg
    printf 'epoch,loss,loss\n1,2,3\n' >twice.csv
    expect_error 1 "twice.csv:1: column 'loss' appears twice" "$cls" plot twice.csv -o out.svg
    # a ragged row, after a blank line: the line number counts it
    { head -3 good.csv; echo; echo "3,150,0.5,0.9"; } >ragged.csv
    expect_error 1 "ragged.csv:5: 4 fields, but the header has 8" "$cls" plot good.csv ragged.csv -o out.svg
    sed '3s/^\([^,]*\),\([^,]*\),[^,]*,/\1,\2,abc,/' good.csv >word.csv
    expect_error 1 "word.csv:3: column loss: 'abc' is not a number" "$cls" plot word.csv -o out.svg
    expect_error 1 "--metric mae: good.csv has no column mae" "$cls" plot good.csv -o out.svg --metric mae
    expect_error 1 "--metric epoch: that is the x axis" "$cls" plot good.csv -o out.svg --metric epoch
    expect_error 1 "cannot open nodir/out.svg for writing: No such file or directory" \
        "$cls" plot good.csv -o nodir/out.svg
}

case_help() {
    expect_ok "$cls" --help
    grep -q '^  plot  *draw the curves of train --log CSVs as an SVG picture$' out.txt || fail "plot not in the usage"
    expect_ok "$cls" plot --help
    grep -q '^usage: fake_classifier plot LOG.csv \[LOG.csv ...\] -o FILE.svg' out.txt || fail "plot --help"
    grep -q -- '--log-y' out.txt || fail "plot --help lacks --log-y"
}

"case_$name"
