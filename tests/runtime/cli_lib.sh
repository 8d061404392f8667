# cli_lib.sh - what the runtime's shell tests (cli_test.sh, text_test.sh)
# share, sourced with their arguments CASE BINDIR WORKDIR: the case's fresh
# working directory, and fail / run / expect_ok.
name=$1
bin=$2
work=$3/$name
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

# same_tensors A B: two checkpoints hold the same tensors, byte for byte
# (their headers may differ: a run's seed and source are in the metadata).
ckpt_tensors() {
    n=$(head -c 8 "$1" | od -An -tu8 | tr -d ' ')
    tail -c +$((n + 9)) "$1"
}
same_tensors() {
    ckpt_tensors "$1" >"$1.tensors" && ckpt_tensors "$2" >"$2.tensors" && cmp -s "$1.tensors" "$2.tensors"
}
