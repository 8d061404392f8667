#!/bin/bash
# A process killed with SIGKILL while it saves a checkpoint never damages
# the checkpoint already at that path: 50 kills at random moments of a
# loop of saves (ckpt_kill.c, 4 MiB per save, through rt_ckpt_save), each
# followed by a load that must succeed with every value of one generation
# (never an older one than before the kill).
# It prints how many kills landed inside a save (a temporary file was
# left behind), and fails if fewer than 5 did: then it tested little.
# usage: ckpt_kill.sh CKPT_KILL WORK_DIR
set -u
prog=$1 work=$2
rm -rf "$work" && mkdir -p "$work" && cd "$work" || exit 1
fail() { echo "FAIL: $*"; exit 1; }

# a first checkpoint
"$prog" save m.ckpt > first.txt &
pid=$!
for _ in $(seq 1200); do grep -q saved first.txt 2>/dev/null && break; sleep 0.05; done
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
rm -f m.ckpt.tmp.*
"$prog" check m.ckpt > /dev/null || fail "the first checkpoint does not load"

RANDOM=7
inside=0 last=$("$prog" check m.ckpt)
for i in $(seq 50); do
    # once the first save is done (start-up is slow under the sanitizers
    # on a busy machine), then a random moment of the saves that follow
    "$prog" save m.ckpt > out.txt &
    pid=$!
    for _ in $(seq 1200); do grep -q saved out.txt 2>/dev/null && break; sleep 0.01; done
    sleep "0.0$(( RANDOM % 60 + 10 ))"
    kill -9 $pid 2>/dev/null
    wait $pid 2>/dev/null
    if ls m.ckpt.tmp.* > /dev/null 2>&1; then
        inside=$((inside + 1))
        rm -f m.ckpt.tmp.*
    fi
    gen=$("$prog" check m.ckpt 2> err.txt) || fail "kill $i: the checkpoint no longer loads: $(cat err.txt)"
    [ "$gen" -ge "$last" ] || fail "kill $i: the checkpoint went back from generation $last to $gen"
    last=$gen
done
echo "50 kills, $inside inside a save; every checkpoint loaded (the last one of generation $last)"
[ "$inside" -ge 5 ] || fail "only $inside of 50 kills landed inside a save"
