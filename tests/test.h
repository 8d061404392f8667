/*
 * test.h - what every test program shares: a count of failures with the
 * ways to add to it, and one seeded random generator.
 *
 * fail() reports a failure in the program's own words; CHECK(cond) one at
 * file:line with the condition's text, CHECK_MSG(cond, fmt, ...) with a
 * message, CHECK_STR(got, want) with both strings.  All print to stderr
 * and count in `failures` (CHECK also counts `checks`, for a summary); a
 * test's main returns failures != 0.
 *
 * The random numbers are a 64-bit LCG (Knuth's MMIX constants) whose high
 * 53 bits make a double in [0, 1): cheap, the same on every platform, and
 * good enough for test inputs.  A program picks its seed by defining
 * TEST_SEED before including this file, so its inputs do not move when
 * another program's do.
 *
 * Header-only: every function is static and may go unused.
 */
#ifndef MDL_TEST_H
#define MDL_TEST_H

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define TEST_UNUSED __attribute__((unused))

static int failures TEST_UNUSED, checks TEST_UNUSED;

TEST_UNUSED static void fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "FAIL: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    failures++;
}

#define CHECK(cond)                                                                                                    \
    do {                                                                                                               \
        checks++;                                                                                                      \
        if (!(cond)) {                                                                                                 \
            fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #cond);                                   \
            failures++;                                                                                                \
        }                                                                                                              \
    } while (0)

#define CHECK_MSG(cond, ...)                                                                                           \
    do {                                                                                                               \
        checks++;                                                                                                      \
        if (!(cond)) {                                                                                                 \
            fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                                                            \
            fprintf(stderr, __VA_ARGS__);                                                                              \
            fprintf(stderr, "\n");                                                                                     \
            failures++;                                                                                                \
        }                                                                                                              \
    } while (0)

#define CHECK_STR(got, want)                                                                                           \
    do {                                                                                                               \
        const char *got_ = (got), *want_ = (want);                                                                     \
        checks++;                                                                                                      \
        if (strcmp(got_, want_) != 0) {                                                                                \
            fprintf(stderr, "%s:%d: got:\n%s\nwanted:\n%s\n", __FILE__, __LINE__, got_, want_);                        \
            failures++;                                                                                                \
        }                                                                                                              \
    } while (0)

#ifndef TEST_SEED
#define TEST_SEED 0x2545F4914F6CDD1Dull
#endif

static uint64_t test_rng_state TEST_UNUSED = TEST_SEED;

/* 53 random bits */
TEST_UNUSED static uint64_t test_random(void) {
    test_rng_state = test_rng_state * 6364136223846793005ull + 1442695040888963407ull;
    return test_rng_state >> 11;
}

/* uniform in [lo, hi) */
TEST_UNUSED static double test_uniform(double lo, double hi) {
    return lo + (hi - lo) * (double)test_random() / 9007199254740992.0;
}

/* uniform in 0 .. n-1 */
TEST_UNUSED static int64_t test_below(int64_t n) { return (int64_t)(test_random() % (uint64_t)n); }

#endif
