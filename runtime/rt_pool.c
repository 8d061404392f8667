/*
 * rt_pool.c - the worker threads behind the generated code's large matrix
 * products.
 *
 * Kernels call mdl_rt_sgemm (mdlrt.h) with the generated @mdl.sgemm and
 * its arguments, and mdl_rt_parallel_for with a function of their own
 * over a range of samples (the convolutions).  A product worth splitting is cut into pieces along N
 * (whole 16-column strips) or, when N is small, along M (whole 6-row
 * strips); each C element is still computed by one call, with the same
 * k order, so results are bit for bit those of one thread whatever the
 * thread count.  Pieces are taken from a shared counter by the calling
 * thread and the workers alike, so a worker whose CPU the host has taken
 * away delays nothing: the caller takes its pieces.  There are twice as
 * many pieces as threads for that reason.
 *
 * Workers spin for a while on the job generation after each job (training
 * calls products back to back; waking a sleeping thread costs ~100 us on
 * these VMs), then sleep on a condition variable.  The pool starts on the
 * first product worth splitting, with rt_threads - 1 workers; rt_threads
 * is 1 until rt_set_threads is called (the command line does, from
 * --threads or MDL_THREADS, default one per CPU).
 *
 * On a host whose CPUs are busy with other work, a worker is often not
 * running when a job comes: the caller takes most pieces itself, and the
 * worker's spinning only takes CPU time from it (W3 trained at 2 threads
 * at half its 1-thread speed while other processes kept both vCPUs busy).
 * So the caller watches the share of pieces the workers take: when over
 * PROBE_JOBS jobs it is under half of their share on an idle machine, the
 * next BACKOFF_JOBS jobs run on the caller alone (the workers go to sleep
 * after their spin), and then it tries again.  Results do not change:
 * the pieces are the same sums either way.
 */
#include "rt_internal.h"

#include <pthread.h>
#include <stdatomic.h>
#if defined(__x86_64__) || defined(__i386__)
#include <x86intrin.h>
#include <xmmintrin.h>
#define NOW() __rdtsc()
#define RELAX() _mm_pause()
#else
#include <time.h>
static unsigned long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (unsigned long long)t.tv_sec * 1000000000ull + (unsigned long long)t.tv_nsec;
}
#define NOW() now_ns()
#define RELAX() ((void)0)
#endif
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

/* Products smaller than this many multiply-adds run on the calling
 * thread: below it the split costs more than it gains. */
#define SPLIT_MIN_WORK (1 << 18)
#define MAX_THREADS 64
/* After a job a worker spins this long (TSC cycles, ~4 ms at 2.5 GHz)
 * before it sleeps: a training step's kernels between two products take
 * well under that, and a wake-up through the kernel costs ~100 us on these
 * VMs.  Counting `pause` instructions instead was too short here (20000
 * of them: the workers slept between products, and waking them took 11%
 * of the main thread's time). */
#define SPIN_CYCLES 10000000ull
#define STACK_BYTES (8u << 20) /* @mdl.sgemm puts up to ~0.5 MiB on the stack */
/* ~2 and ~30 training steps of W3 (134 products a step) */
#define PROBE_JOBS 256
#define BACKOFF_JOBS 4096

typedef struct gemm_args {
    rt_sgemm_fn fn;
    float *c;
    const float *a, *b;
    int64_t m, n, k, a_row, a_col, b_row, b_col, ldc, acc;
    int by_columns;
    int64_t step; /* columns or rows per piece */
} gemm_args;

static struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    atomic_int threads; /* wanted, including the caller */
    int started;  /* workers running */
    int create_failed; /* pthread_create failed once: do not retry on every call */
    atomic_int sleepers;
    /* The job's generation (high 32 bits) and its next unclaimed piece (low
     * 32): a claim is one compare-and-swap, so a thread still holding the
     * last job's ticket can never take a piece of the next job by mistake. */
    atomic_ullong ticket;
    void (*run)(void *ctx, int64_t piece); /* the job */
    void *ctx;
    atomic_llong pieces; /* read before a claim, so it may change under a reader (the claim then fails) */
    atomic_llong done;
} pool = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER, .threads = 1};

/* The workers' share of the pieces of the last jobs (the caller's alone:
 * only the thread that runs kernels dispatches jobs). */
static struct {
    int64_t jobs, pieces, by_workers;
    int64_t serial_left; /* jobs still to run on the caller alone */
} watch;

static unsigned generation_of(unsigned long long ticket) { return (unsigned)(ticket >> 32); }

static void gemm_piece(void *ctx, int64_t p) {
    const gemm_args *g = ctx;
    int64_t from = p * g->step;
    if (g->by_columns) {
        int64_t n = g->n - from < g->step ? g->n - from : g->step;
        g->fn(g->c + from, g->a, g->b + from * g->b_col, g->m, n, g->k, g->a_row, g->a_col, g->b_row, g->b_col,
              g->ldc, g->acc);
    } else {
        int64_t m = g->m - from < g->step ? g->m - from : g->step;
        g->fn(g->c + from * g->ldc, g->a + from * g->a_row, g->b, m, g->n, g->k, g->a_row, g->a_col, g->b_row,
              g->b_col, g->ldc, g->acc);
    }
}

/* Takes pieces of job `gen` until none is left (or another job began);
 * returns how many it took. */
static int64_t take_pieces(unsigned gen) {
    for (int64_t taken = 0;;) {
        unsigned long long t = atomic_load(&pool.ticket);
        if (generation_of(t) != gen || (long long)(t & 0xffffffffu) >= atomic_load(&pool.pieces))
            return taken;
        if (!atomic_compare_exchange_weak(&pool.ticket, &t, t + 1))
            continue;
        pool.run(pool.ctx, (int64_t)(t & 0xffffffffu));
        atomic_fetch_add(&pool.done, 1);
        taken++;
    }
}

void rt_flush_denormals(void) {
#if defined(__x86_64__) || defined(__i386__)
    _mm_setcsr(_mm_getcsr() | 0x8040); /* FTZ (bit 15) | DAZ (bit 6) */
#endif
}

static void *worker(void *arg) {
    int index = (int)(intptr_t)arg; /* 0 .. started-1 */
    rt_flush_denormals();
    unsigned seen = generation_of(atomic_load(&pool.ticket));
    for (;;) {
        unsigned long long until = NOW() + SPIN_CYCLES;
        while (generation_of(atomic_load(&pool.ticket)) == seen && NOW() < until)
            RELAX();
        if (generation_of(atomic_load(&pool.ticket)) == seen) {
            pthread_mutex_lock(&pool.lock);
            atomic_fetch_add(&pool.sleepers, 1);
            while (generation_of(atomic_load(&pool.ticket)) == seen)
                pthread_cond_wait(&pool.wake, &pool.lock);
            atomic_fetch_sub(&pool.sleepers, 1);
            pthread_mutex_unlock(&pool.lock);
        }
        seen = generation_of(atomic_load(&pool.ticket));
        if (index < atomic_load(&pool.threads) - 1) /* fewer threads wanted since it started */
            take_pieces(seen);
    }
    return NULL;
}

/* Starts workers up to threads - 1; returns how many run.  Only the
 * thread that runs kernels calls it, so the check before the lock sees
 * its own writes: once the workers run, a call costs no lock. */
static int start_workers(void) {
    if (pool.started >= atomic_load(&pool.threads) - 1 || pool.create_failed)
        return pool.started;
    pthread_mutex_lock(&pool.lock);
    while (pool.started < atomic_load(&pool.threads) - 1) {
        pthread_attr_t attr;
        pthread_t t;
        pthread_attr_init(&attr);
        pthread_attr_setstacksize(&attr, STACK_BYTES);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&t, &attr, worker, (void *)(intptr_t)pool.started);
        pthread_attr_destroy(&attr);
        if (rc != 0) {
            pool.create_failed = 1;
            break; /* fewer workers: the caller takes more pieces */
        }
        pool.started++;
    }
    int started = pool.started;
    pthread_mutex_unlock(&pool.lock);
    return started;
}

void rt_set_threads(int n) { atomic_store(&pool.threads, n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : n); }

int rt_default_threads(void) {
    const char *env = getenv("MDL_THREADS");
    if (env && *env) {
        char *end;
        long n = strtol(env, &end, 10);
        if (!*end && n >= 1)
            return n > MAX_THREADS ? MAX_THREADS : (int)n;
        rt_note("MDL_THREADS=\"%.40s\" is not a positive number of threads; using one per CPU", env);
    }
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    return cpus < 1 ? 1 : cpus > 8 ? 8 : (int)cpus;
}

/* Counts a job of `pieces` of which the caller took `mine`, on `threads`
 * threads; at the end of a probe, backs off if the workers took less
 * than half their share, (threads - 1) / threads. */
static void watch_job(int64_t pieces, int64_t mine, int threads) {
    watch.pieces += pieces;
    watch.by_workers += pieces - mine;
    if (++watch.jobs < PROBE_JOBS)
        return;
    if (2 * threads * watch.by_workers < (threads - 1) * watch.pieces)
        watch.serial_left = BACKOFF_JOBS;
    watch.jobs = watch.pieces = watch.by_workers = 0;
}

/* Runs run(ctx, p) for p < pieces on the pool (`threads` threads with
 * the caller) and the calling thread; returns when all are done. */
static void run_job(void (*run)(void *, int64_t), void *ctx, int64_t pieces, int threads) {
    pool.run = run;
    pool.ctx = ctx;
    atomic_store(&pool.pieces, pieces);
    /* Everything a worker reads is written before the new ticket is
     * published (sequentially consistent atomics order it). */
    atomic_store(&pool.done, 0);
    unsigned gen = generation_of(atomic_load(&pool.ticket)) + 1;
    atomic_store(&pool.ticket, (unsigned long long)gen << 32);
    if (atomic_load(&pool.sleepers) > 0) {
        /* under the lock: a worker between its check and its wait would
         * otherwise miss the broadcast */
        pthread_mutex_lock(&pool.lock);
        pthread_cond_broadcast(&pool.wake);
        pthread_mutex_unlock(&pool.lock);
    }
    int64_t mine = take_pieces(gen);
    while (atomic_load(&pool.done) < pieces)
        RELAX();
    watch_job(pieces, mine, threads);
}

/* The threads to use now (starting the workers), or 1 (also while the
 * workers are backed off). */
static int threads_now(void) {
    int threads = atomic_load(&pool.threads);
    if (threads <= 1)
        return 1;
    if (watch.serial_left > 0) {
        watch.serial_left--;
        return 1;
    }
    if (start_workers() == 0)
        return 1;
    return pool.started + 1 < threads ? pool.started + 1 : threads;
}

void mdl_rt_sgemm(rt_sgemm_fn fn, float *c, const float *a, const float *b, int64_t m, int64_t n, int64_t k,
                  int64_t a_row, int64_t a_col, int64_t b_row, int64_t b_col, int64_t ldc, int64_t acc) {
    int threads = m * n * k < SPLIT_MIN_WORK || (n < 32 && m < 12) ? 1 : threads_now();
    if (threads == 1) {
        fn(c, a, b, m, n, k, a_row, a_col, b_row, b_col, ldc, acc);
        return;
    }
    gemm_args g;
    /* Along N in whole 16-column strips if there are enough of them,
     * else along M in 6-row strips. */
    int64_t strips_n = (n + 15) / 16, strips_m = (m + 5) / 6;
    int64_t want = 2 * threads;
    g.by_columns = strips_n >= want || strips_n >= strips_m;
    int64_t strips = g.by_columns ? strips_n : strips_m, unit = g.by_columns ? 16 : 6;
    int64_t per = (strips + want - 1) / want;
    g.step = per * unit;
    g.fn = fn;
    g.c = c;
    g.a = a;
    g.b = b;
    g.m = m, g.n = n, g.k = k;
    g.a_row = a_row, g.a_col = a_col, g.b_row = b_row, g.b_col = b_col, g.ldc = ldc, g.acc = acc;
    int64_t total = g.by_columns ? n : m;
    run_job(gemm_piece, &g, (total + g.step - 1) / g.step, threads);
}

typedef struct range_args {
    rt_range_fn body;
    void *ctx;
    int64_t n, pieces;
} range_args;

static void range_piece(void *ctx, int64_t p) {
    const range_args *r = ctx;
    r->body(r->ctx, p * r->n / r->pieces, (p + 1) * r->n / r->pieces);
}

void mdl_rt_parallel_for(rt_range_fn body, void *ctx, int64_t n) {
    if (n <= 0)
        return;
    int threads = n == 1 ? 1 : threads_now();
    if (threads == 1) {
        body(ctx, 0, n);
        return;
    }
    range_args r = {body, ctx, n, n < 2 * threads ? n : 2 * threads};
    run_job(range_piece, &r, r.pieces, threads);
}
