# Shared checks of the text-generation end-to-end tests (char_lstm.sh,
# tiny_gpt.sh); sourced, with fail() defined by the caller.

# loss_falls CSV STEPS FIRST LAST: the --log-steps CSV has STEPS steps, the
# mean loss of the first 10 is above FIRST and that of the last 40 below LAST.
loss_falls() {
    awk -F, -v steps="$2" -v first="$3" -v last="$4" 'NR > 1 { loss[$1] = $3; n = $1 }
        END { for (i = 1; i <= 10; i++) a += loss[i]; for (i = n - 39; i <= n; i++) b += loss[i]
              printf "first 10 steps %.3f, last 40 steps %.3f (%d steps)\n", a / 10, b / 40, n
              exit !(n == steps && a / 10 > first && b / 40 < last) }' "$1" ||
        fail "the loss did not fall from above $3 to below $4 in $2 steps"
}

# generates_by_seed EXE CKPT LENGTH: `generate` from the prime "The " gives
# the same text for the same seed, another for another seed, starting with
# the prime and LENGTH characters long (plus the newline).
generates_by_seed() {
    for seed in 1 1 2; do
        "$1" generate --load "$2" --prime "The " --length "$3" --temperature 0.8 --top-k 20 --seed $seed \
            > "seed$seed.txt.new" 2> generate.err || { cat generate.err; fail "generate --seed $seed"; }
        if [ -f "seed$seed.txt" ]; then
            cmp -s "seed$seed.txt" "seed$seed.txt.new" || fail "the same seed gave different text"
        else
            mv "seed$seed.txt.new" "seed$seed.txt"
        fi
    done
    cat seed1.txt
    cmp -s seed1.txt seed2.txt && fail "seeds 1 and 2 gave the same text"
    [ "$(head -c 4 seed1.txt)" = "The " ] || fail "the text does not start with the prime"
    [ "$(wc -c < seed1.txt)" -eq $(($3 + 5)) ] || fail "expected the prime, $3 characters and a newline"
}
