/*
 * test_pool.c - mdl_rt_sgemm (runtime/rt_pool.c): split over 1 to 4
 * threads, a matrix product must write exactly what one call writes, bit
 * for bit, and nothing outside C; products worth splitting must actually
 * be split; and the pool must survive many jobs back to back, with pauses
 * that let the workers fall asleep in between.  mdl_rt_parallel_for must
 * cover [0, n) exactly once with disjoint ranges, and every thread that
 * runs a piece must flush denormals to zero (rt_flush_denormals).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rt_internal.h"
#define TEST_SEED 88172645463325252ull
#include "../test.h"

#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#define FLUSHING() ((_mm_getcsr() & 0x8040) == 0x8040)
#else
#define FLUSHING() 1 /* rt_flush_denormals is x86 only */
#endif

static atomic_int calls;

/* C (+)= A B in plain loops, k innermost and in order: the same sum for
 * an element however C is cut into pieces. */
static void ref_gemm(float *c, const float *a, const float *b, int64_t m, int64_t n, int64_t k, int64_t a_row,
                     int64_t a_col, int64_t b_row, int64_t b_col, int64_t ldc, int64_t acc) {
    atomic_fetch_add(&calls, 1);
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            float s = acc ? c[i * ldc + j] : 0.0f;
            for (int64_t p = 0; p < k; p++)
                s += a[i * a_row + p * a_col] * b[p * b_row + j * b_col];
            c[i * ldc + j] = s;
        }
}

static float value(void) { return (float)test_below(2001) / 1000.0f - 1.0f; }

static atomic_int hits[300];
static atomic_int ranges, denormals_kept;
static pthread_t main_thread;

static void mark(void *ctx, int64_t begin, int64_t end) {
    (void)ctx;
    atomic_fetch_add(&ranges, 1);
    /* the workers were started from this test's main thread, which keeps
     * denormals (until the end): they must flush them all the same */
    if (!pthread_equal(pthread_self(), main_thread) && !FLUSHING())
        atomic_fetch_add(&denormals_kept, 1);
    for (int64_t i = begin; i < end; i++)
        atomic_fetch_add(&hits[i], 1);
}

static int check_parallel_for(void) {
    int failures = 0, split = 0;
    for (int iter = 0; iter < 300; iter++) {
        rt_set_threads(1 + iter % 4);
        int64_t n = iter % 300;
        for (int i = 0; i < 300; i++)
            atomic_store(&hits[i], 0);
        atomic_store(&ranges, 0);
        mdl_rt_parallel_for(mark, NULL, n);
        for (int64_t i = 0; i < 300; i++)
            if (atomic_load(&hits[i]) != (i < n)) {
                printf("FAIL: parallel_for over %lld on %d threads ran %lld %d times\n", (long long)n,
                       1 + iter % 4, (long long)i, atomic_load(&hits[i]));
                failures++;
                break;
            }
        split += atomic_load(&ranges) > 1;
    }
    if (split == 0) {
        printf("FAIL: parallel_for never split a range\n");
        failures++;
    }
    if (atomic_load(&denormals_kept)) {
        printf("FAIL: %d pieces ran on a thread that keeps denormals\n", atomic_load(&denormals_kept));
        failures++;
    }
    rt_flush_denormals();
#if defined(__x86_64__) || defined(__i386__)
    volatile float tiny = 1e-30f;
    if (tiny * 1e-10f != 0.0f) {
        printf("FAIL: the main thread keeps denormal results after rt_flush_denormals\n");
        failures++;
    }
#endif
    return failures;
}

int main(void) {
    main_thread = pthread_self();
    int failures = check_parallel_for(), split = 0;
    for (int iter = 0; iter < 400 && failures < 5; iter++) {
        int threads = 1 + iter % 4;
        rt_set_threads(threads);
        int64_t m = 1 + test_below(iter % 3 == 0 ? 8 : 140), n = 1 + test_below(iter % 5 == 0 ? 20 : 200),
                k = 1 + test_below(80);
        int ta = (int)test_below(2), tb = (int)test_below(2), acc = (int)test_below(2);
        int64_t ldc = n + test_below(3);
        float *a = malloc(sizeof(float) * (size_t)(m * k)), *b = malloc(sizeof(float) * (size_t)(k * n));
        float *c1 = malloc(sizeof(float) * (size_t)(m * ldc)), *c2 = malloc(sizeof(float) * (size_t)(m * ldc));
        for (int64_t i = 0; i < m * k; i++)
            a[i] = value();
        for (int64_t i = 0; i < k * n; i++)
            b[i] = value();
        for (int64_t i = 0; i < m * ldc; i++)
            c1[i] = c2[i] = (i % ldc) < n ? value() : 12345.0f; /* the gap past n must stay */
        int64_t a_row = ta ? 1 : k, a_col = ta ? m : 1, b_row = tb ? 1 : n, b_col = tb ? k : 1;
        ref_gemm(c1, a, b, m, n, k, a_row, a_col, b_row, b_col, ldc, acc);
        atomic_store(&calls, 0);
        mdl_rt_sgemm(ref_gemm, c2, a, b, m, n, k, a_row, a_col, b_row, b_col, ldc, acc);
        int pieces = atomic_load(&calls);
        if (memcmp(c1, c2, sizeof(float) * (size_t)(m * ldc)) != 0) {
            printf("FAIL: %lld x %lld x %lld (ta %d tb %d acc %d ldc %lld) on %d threads differs from one call\n",
                   (long long)m, (long long)n, (long long)k, ta, tb, acc, (long long)ldc, threads);
            failures++;
        }
        if (threads > 1 && m * n * k >= (1 << 18) && (n >= 32 || m >= 12))
            split += pieces > 1;
        if (threads == 1 && pieces != 1) {
            printf("FAIL: one thread, but the product was cut into %d pieces\n", pieces);
            failures++;
        }
        free(a), free(b), free(c1), free(c2);
        if (iter % 97 == 0) { /* let the workers go to sleep, then wake them */
            struct timespec pause = {0, 20 * 1000 * 1000};
            nanosleep(&pause, NULL);
        }
    }
    if (split == 0) {
        printf("FAIL: no product large enough was split over threads\n");
        failures++;
    }
    if (failures)
        return 1;
    printf("pool: 400 products on 1-4 threads equal one call bit for bit (%d split); parallel_for covers every "
           "range once\n",
           split);
    return 0;
}
