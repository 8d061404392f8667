#!/bin/sh
# End to end: compile examples/intents.mdl (a bag of embeddings) and
# examples/intents_gru.mdl (a masked GRU), train both on the shipped
# customer-service intents and check what they learned and how the
# executable answers: test accuracy above a bound, a confusion matrix with
# the intents' names, `predict` reading messages from stdin (--top, --text,
# a .tsv file, an empty message), fine-tuning through the checkpoint's
# words, and file:line errors for a bad line.
# usage: intents.sh MDLC SOURCE_DIR WORK_DIR
set -eu
mdlc=$1 src=$2 work=$3
fail() { echo "FAIL: $*"; exit 1; }
rm -rf "$work" && mkdir -p "$work" && cd "$work"
data=$src/examples/data/intents
names=$data/intents.txt

# Both models reach 0.79 on the test split at their seed (1); naive Bayes
# gets 0.77.  The bound leaves room for another CPU's rounding.
BOUND=0.70

# eval MODEL CKPT: prints the test accuracy, checks the matrix.
check_eval() {
    ./$1 eval --load $2 --data "$data/test.tsv" >$1.eval || fail "$1 eval"
    cat $1.eval
    grep -q '^labelled text: 270 messages, 232 of 2153 words unknown, 0 texts truncated to 24 words$' $1.eval ||
        fail "$1: the data line"
    acc=$(awk '$1 == "acc" { print $2 }' $1.eval)
    [ -n "$acc" ] || fail "$1: eval printed no acc line"
    awk -v a="$acc" -v b=$BOUND 'BEGIN { exit !(a >= b) }' || fail "$1: test accuracy $acc < $BOUND"
    # 15 rows named after the intents, in intents.txt order, 18 messages each
    sed -n '/^confusion/,$p' $1.eval | awk 'NR > 2 { print $2 }' >rows.txt
    cmp -s rows.txt "$names" || fail "$1: matrix rows are not the intents in order"
    sed -n '/^confusion/,$p' $1.eval | awk 'NR > 2 { n = 0; for (i = 3; i <= NF; i++) n += $i; if (n != 18) bad = 1 }
        END { exit bad }' || fail "$1: a matrix row does not hold 18 messages"
}

"$mdlc" "$src/examples/intents.mdl" -o intents || fail "mdlc intents.mdl"
"$mdlc" "$src/examples/intents_gru.mdl" -o intents_gru || fail "mdlc intents_gru.mdl"

./intents train --data "$data/train.tsv" --save bag.ckpt >bag.log || fail "train intents"
head -2 bag.log
grep -q "^labelled text: 750 messages, 1133 words in the vocabulary (ids 2..1134; 0 padding, 1 unknown), 15 classes (from .*intents.txt), 0 texts truncated to 24 words$" bag.log ||
    fail "the training data line"
check_eval intents bag.ckpt

./intents_gru train --data "$data/train.tsv" --save gru.ckpt >gru.log || fail "train intents_gru"
check_eval intents_gru gru.ckpt

# predict: a message a line from stdin, the intent and its probability.
echo "where is my parcel" | ./intents predict --load bag.ckpt >answer.txt || fail "predict from stdin"
cat answer.txt
awk -F '\t' 'NF == 2 && $1 == "order_status" && $2 > 0.5 && $2 <= 1' answer.txt | grep -q . ||
    fail "'where is my parcel' is not order_status: $(cat answer.txt)"
printf 'hello there\ni want my money back\nthank you so much!\n' | ./intents_gru predict --load gru.ckpt >answers.txt ||
    fail "predict three messages"
[ "$(cut -f1 answers.txt | tr '\n' ' ')" = "greeting refund thanks " ] || fail "answers: $(cat answers.txt)"
# --top 3: three known intents, likeliest first, on one line
./intents predict --load bag.ckpt --text "can I return these shoes for a refund" --top 3 >top.txt || fail "--top 3"
cat top.txt
awk -F '\t' 'NF == 6 && $2 >= $4 && $4 >= $6 && $2 + $4 + $6 <= 1.0001' top.txt | grep -q . || fail "--top 3 line"
for i in 1 3 5; do
    grep -qx "$(cut -f$i top.txt)" "$names" || fail "'$(cut -f$i top.txt)' is not an intent"
done
# a .tsv file: its texts, one answer a message
./intents predict --load bag.ckpt --input "$data/test.tsv" >all.txt || fail "predict a .tsv file"
[ "$(wc -l <all.txt)" -eq 270 ] || fail "270 answers expected"
# an empty message is an error naming its line; nothing is answered
if printf 'hello\n\nbye\n' | ./intents predict --load bag.ckpt >empty.txt 2>empty.err; then
    fail "an empty message was accepted"
fi
grep -q '^error: standard input:2: empty message$' empty.err || fail "empty message error: $(cat empty.err)"
[ ! -s empty.txt ] || fail "answers before the error"
if ./intents predict --load bag.ckpt --text '?!' 2>text.err; then fail "--text without words accepted"; fi
grep -q 'no words' text.err || fail "--text error: $(cat text.err)"

# At a terminal: a prompt per line, an answer at once, a note (not an
# error) for a message without words.  Needs script(1) for the terminal.
if script -qc true /dev/null >/dev/null 2>&1; then
    printf 'hello\n?!\nwhere is my parcel\n' | script -qc "./intents predict --load bag.ckpt" /dev/null |
        tr -d '\r' >tty.txt || fail "predict at a terminal"
    [ "$(grep -c '^> ' tty.txt)" -eq 4 ] || fail "expected 4 prompts: $(cat tty.txt)"
    grep -q '^> greeting	' tty.txt && grep -q '^> note: that message has no words' tty.txt &&
        grep -q '^> order_status	' tty.txt || fail "answers at a terminal: $(cat tty.txt)"
fi

# Fine-tuning keeps the checkpoint's words, even for a file with others.
# the checkpoint header's "mdl.words" member (words hold no commas)
words() { head -c 100000 "$1" | tr ',' '\n' | grep -a '"mdl.words"'; }
printf 'intent\ttext\nrefund\tzebra quagga refund\n' >other.tsv
./intents train --load bag.ckpt --data other.tsv --epochs 1 --save tuned.ckpt --quiet || fail "fine-tune"
[ "$(words bag.ckpt)" = "$(words tuned.ckpt)" ] || fail "fine-tuning changed the words"

# A line without a tab is an error naming the file and line.
printf 'intent\ttext\nrefund\tmoney back\nrefund money back\n' >bad.tsv
if ./intents train --data bad.tsv --epochs 1 2>bad.err; then fail "a line without a tab accepted"; fi
grep -q 'bad.tsv:3: no tab' bad.err || fail "tab error: $(cat bad.err)"
printf 'intent\ttext\nrefund\tmoney back\nrefnd\tmy money\n' >unknown.tsv
if ./intents eval --load bag.ckpt --data unknown.tsv 2>unknown.err; then fail "an unknown intent accepted"; fi
grep -q 'unknown.tsv:3: label "refnd" is not one of the 15 classes of bag.ckpt' unknown.err ||
    fail "unknown label error: $(cat unknown.err)"
echo "intents: all checks passed"
