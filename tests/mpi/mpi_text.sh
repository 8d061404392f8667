#!/bin/sh
# Text models on MPI ranks (mdlc --mpi): the char LSTM, whose 32 streams
# carry their recurrent state from step to step (rank r takes streams
# [16 r, 16 r + 16) of every step, and validates on the same streams of
# the validation text), and the char GPT, whose random windows of a step
# are drawn alike on every rank and shared out.  On 2 ranks with batch 16
# each, one epoch ends at one process's weights with batch 32 within float
# tolerance (1e-3 of each tensor's largest value: backpropagation through
# 64 steps and attention leave up to ~1e-4), and the printed epoch and
# final numbers (the whole text's) are the same; a stop and --resume in
# the middle of an epoch keep every stream's state.  The text: the ASCII of
# this tree's docs, 60 000 characters (96 distinct at most, as the models
# take).  Skipped (exit 77) without mpirun.
# usage: mpi_text.sh MDLC CKPT_DIFF SOURCE_DIR WORK_DIR
set -eu
mdlc=$1 ckpt_diff=$2 src=$3 work=$4
. "$src/tests/mpi/mpi_lib.sh"
need_mpirun
rm -rf "$work" && mkdir -p "$work" && cd "$work"
cat "$src"/docs/*.md | tr -cd '\n -~' | head -c 60000 > corpus.txt
head -c 8000 corpus.txt > val.txt
[ "$(wc -c < corpus.txt)" -gt 20000 ] || fail "too little text in docs/"
numbers() { awk '$1 == "epoch" || $1 == "final" { for (i = 2; i < NF; i++) if ($i ~ /loss$/) print $(i + 1) }' "$1"; }
for model in char_lstm tiny_gpt; do
    "$mdlc" "$src/examples/$model.mdl" -o $model || fail "mdlc $model"
    "$mdlc" --mpi "$src/examples/$model.mdl" -o $model-mpi || fail "mdlc --mpi $model"
    ./$model train --data corpus.txt --val val.txt --batch 32 --save one.ckpt > one.log ||
        { cat one.log; fail "$model, one process"; }
    mpi -np 2 ./$model-mpi train --data corpus.txt --val val.txt --batch 16 --save two.ckpt > two.log 2>&1 ||
        { cat two.log; fail "$model on 2 ranks"; }
    grep -q "batch 32 (16 per rank x 2 ranks)" two.log || { cat two.log; fail "$model: not 16 per rank"; }
    "$ckpt_diff" one.ckpt two.ckpt 1e-3 > diff-$model.txt ||
        { cat diff-$model.txt; fail "$model: 2 ranks and one process trained different weights"; }
    numbers one.log > one.num
    numbers two.log > two.num
    [ "$(wc -l < one.num)" -eq 3 ] || { cat one.log; fail "$model: no loss, val_loss and final loss"; }
    cmp -s one.num two.num || fail "$model: loss, val_loss, final loss $(cat two.num) on 2 ranks, $(cat one.num) in one"
done

# The LSTM stopped in the middle of its epoch (step 10 of 29) on 2 ranks:
# rank 0 saves every stream's state, gathered from the ranks, and the
# partial sums.  Resumed on 2 ranks, each takes its streams' rows back:
# the run ends where the uninterrupted one does, byte for byte; resumed in
# one process, within the tolerance above of one process's run.
mpi -np 2 ./char_lstm-mpi train --data corpus.txt --batch 16 --save full2.ckpt > full2.log 2>&1 ||
    { cat full2.log; fail "char_lstm, 2 ranks"; }
./char_lstm train --data corpus.txt --batch 32 --save full1.ckpt > full1.log || { cat full1.log; fail "one process"; }
for to in 2 1; do
    mpi -np 2 ./char_lstm-mpi train --data corpus.txt --batch 16 --save mid$to.ckpt --stop-after 10 > stop$to.log 2>&1 ||
        { cat stop$to.log; fail "char_lstm, 2 ranks, --stop-after 10"; }
    if [ $to = 2 ]; then
        mpi -np 2 ./char_lstm-mpi train --resume mid2.ckpt --data corpus.txt --save mid2.ckpt > resume2.log 2>&1 ||
            { cat resume2.log; fail "char_lstm: resumed on 2 ranks"; }
    else
        ./char_lstm train --resume mid1.ckpt --data corpus.txt --save mid1.ckpt > resume1.log ||
            { cat resume1.log; fail "char_lstm: resumed in one process"; }
    fi
done
cmp full2.ckpt mid2.ckpt || fail "char_lstm stopped and resumed on 2 ranks: the checkpoint differs"
"$ckpt_diff" full1.ckpt mid1.ckpt 1e-3 > diff-resume1.txt ||
    { cat diff-resume1.txt; fail "char_lstm stopped on 2 ranks, resumed in one: not one process's run"; }
echo "ok"
