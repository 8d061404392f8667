#!/bin/sh
# Checks the intent data set before anyone trains on it: train.tsv and
# test.tsv must each start with the header "intent<TAB>text", hold one
# message per line with exactly one tab, use printable ASCII only, and end in
# a newline; every intent must be one of intents.txt, each intent must have
# at least MIN_TRAIN training and MIN_TEST test messages, and no message may
# occur twice in either split or across the two. Duplicates are found after
# the example's own tokenisation (lower-case; runs of letters and digits are
# words, anything else separates them), so "Refund pls!" and "refund  pls"
# count as the same message: the model could not tell them apart, and a test
# message that equals a training message would flatter the test accuracy.
# Prints the counts per intent and split; exits 1 on any failure.
#
# Usage: sh check.sh [DIR]   (DIR defaults to the folder of this script)

MIN_TRAIN=45
MIN_TEST=15

dir=${1:-$(dirname "$0")}
names=$dir/intents.txt
fail=0

for f in "$names" "$dir/train.tsv" "$dir/test.tsv"; do
	if [ ! -s "$f" ]; then
		echo "check: $f is missing or empty" >&2
		exit 1
	fi
	# A file that ends in a newline has as many lines as newlines, so its
	# last byte counts as one line by itself.
	if [ "$(tail -c 1 "$f" | wc -l)" -ne 1 ]; then
		echo "check: $f does not end in a newline" >&2
		fail=1
	fi
done

LC_ALL=C awk -F '\t' -v min_train="$MIN_TRAIN" -v min_test="$MIN_TEST" '
	FILENAME == ARGV[1] {
		if ($0 !~ /^[a-z][a-z_]*$/) {
			printf "check: %s:%d: bad intent name \"%s\"\n", FILENAME, FNR, $0
			bad = 1
		} else if ($0 in known) {
			printf "check: %s:%d: intent %s listed twice\n", FILENAME, FNR, $0
			bad = 1
		}
		known[$0] = 1
		order[++nintent] = $0
		next
	}
	FNR == 1 && bad && !split_name {
		stop = 1	# a broken intents.txt makes every line below wrong
		exit 1
	}
	FNR == 1 {
		split_name = FILENAME
		sub(/^.*\//, "", split_name)
		sub(/\.tsv$/, "", split_name)
		if ($0 != "intent\ttext") {
			printf "check: %s:1: header is not \"intent<TAB>text\"\n", FILENAME
			bad = 1
		}
		next
	}
	{
		where = FILENAME ":" FNR
		if (NF != 2) {
			printf "check: %s: %d tabs, want exactly 1\n", where, NF - 1
			bad = 1
			next
		}
		if ($0 ~ /[^ -~\t]/) {
			printf "check: %s: character outside printable ASCII\n", where
			bad = 1
		}
		if (!($1 in known)) {
			printf "check: %s: intent \"%s\" not in intents.txt\n", where, $1
			bad = 1
			next
		}
		key = tolower($2)
		gsub(/[^a-z0-9]+/, " ", key)
		gsub(/^ +| +$/, "", key)
		if (key == "") {
			printf "check: %s: message has no words\n", where
			bad = 1
			next
		}
		if (key in seen) {
			printf "check: %s: same message as %s\n", where, seen[key]
			bad = 1
		} else
			seen[key] = where
		count[$1, split_name]++
		total[split_name]++
	}
	END {
		if (stop)
			exit 1
		printf "%-22s %6s %6s\n", "intent", "train", "test"
		for (i = 1; i <= nintent; i++) {
			n = order[i]
			tr = count[n, "train"] + 0
			te = count[n, "test"] + 0
			flag = ""
			if (tr < min_train || te < min_test) {
				flag = "  below minimum"
				bad = 1
			}
			printf "%-22s %6d %6d%s\n", n, tr, te, flag
		}
		printf "%-22s %6d %6d\n", "total", total["train"], total["test"]
		exit bad
	}
' "$names" "$dir/train.tsv" "$dir/test.tsv" || fail=1

if [ "$fail" -ne 0 ]; then
	echo "check: FAILED" >&2
	exit 1
fi
echo "check: ok"
