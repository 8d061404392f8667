/*
 * rt_bench.c - `bench`: how fast the compiled steps run, without data
 * files, as TFLite's benchmark_model or TensorRT's trtexec do it.
 *
 * Three cases: predict_step at batch 1 (the latency of one answer),
 * predict_step at the max batch (throughput) and train_step at the
 * training batch, or the max batch if that is smaller (--batch sets both
 * of the last two); at max batch 1 the second is left out.  Inputs and targets
 * are synthetic, drawn once from the seed in the model's shapes: f32 from
 * N(0, 1), i32 labels and indices uniformly from their range, other i32
 * tensors 0.  Parameters come from the initialisers, or --load.
 *
 * Each case first runs warm-up calls (a fifth of the case's calls or
 * time: caches, page faults, the thread pool's workers), then times every
 * call on its own with the monotonic clock.  Before each call the batch
 * is gathered into the arena and the hyper-parameters are written, as
 * training does (a kernel may reuse its input slots as scratch), outside
 * the timed part.  Reported per case: the calls timed, the median and
 * 99th percentile latency (nearest rank), the mean, and samples per
 * second (batch / mean).  Train steps change the weights as they go;
 * nothing is saved.
 */
#include "rt_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Without --iters: time per case, and the fewest calls timed. */
#define BENCH_DEFAULT_SECONDS 1.0
#define BENCH_MIN_CALLS 10

typedef struct bench_case {
    const char *name;
    rt_kernel kernel;
    int64_t batch;
    double training; /* the "training" hyper-parameter */
} bench_case;

typedef struct bench {
    const rt_model *m;
    const rt_opts *o;
    char *arena;
    rt_dataset *data; /* max batch synthetic samples of inputs and targets */
    float *hypers;
    double step; /* train_steps run, for the "step" hyper-parameter */
} bench;

/* What one case measured, in seconds. */
typedef struct bench_result {
    int64_t calls;
    double p50, p99, mean;
} bench_result;

/* Synthetic samples: f32 N(0, 1), i32 uniform in [0, index_range) or 0. */
static void fill_synthetic(rt_dataset *d, uint64_t seed) {
    rt_rng r;
    rt_rng_seed(&r, seed, RT_STREAM_GRADCHECK);
    for (int i = 0; i < d->n_tensors; i++) {
        const rt_tensor *t = d->tensors[i];
        int64_t count = d->n * d->layouts[i].sample;
        for (int64_t k = 0; k < count; k++) {
            if (t->dtype == RT_F32)
                ((float *)d->data[i])[k] = (float)rt_rng_normal(&r);
            else
                ((int32_t *)d->data[i])[k] =
                    t->index_range > 0 ? (int32_t)rt_rng_below(&r, (uint64_t)t->index_range) : 0;
        }
    }
}

/* One call of the case's kernel, its set-up untimed; its seconds. */
static double timed_call(bench *b, const bench_case *c) {
    rt_gather_range(b->arena, b->data, 0, c->batch);
    rt_write_hypers(b->m, b->arena, b->hypers, c->training, b->step);
    double start = rt_now();
    c->kernel(b->arena, c->batch);
    double seconds = rt_now() - start;
    if (c->training > 0)
        b->step++;
    return seconds;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The nearest-rank percentile p (0 < p <= 1) of sorted[0..n). */
static double percentile(const double *sorted, int64_t n, double p) {
    int64_t rank = (int64_t)ceil(p * (double)n);
    return sorted[rank < 1 ? 0 : rank > n ? n - 1 : rank - 1];
}

static bench_result run_case(bench *b, const bench_case *c) {
    const rt_opts *o = b->o;
    double budget = o->has_seconds ? o->seconds : BENCH_DEFAULT_SECONDS;
    /* warm-up: a fifth of the calls or of the time, at least one call */
    int64_t warm = o->iters ? (o->iters + 4) / 5 : 1;
    double warm_until = rt_now() + budget / 5;
    for (int64_t i = 0; i < warm || (!o->iters && rt_now() < warm_until); i++)
        timed_call(b, c);
    int64_t cap = o->iters ? o->iters : 1024, n = 0;
    double *times = rt_xmalloc((size_t)cap * sizeof *times), total = 0;
    double until = rt_now() + budget;
    while (o->iters ? n < o->iters : n < BENCH_MIN_CALLS || rt_now() < until) {
        if (n == cap) {
            cap *= 2;
            times = rt_xrealloc(times, (size_t)cap * sizeof *times);
        }
        times[n] = timed_call(b, c);
        total += times[n++];
    }
    qsort(times, (size_t)n, sizeof *times, by_value);
    bench_result r = {n, percentile(times, n, 0.5), percentile(times, n, 0.99), total / (double)n};
    free(times);
    return r;
}

static void print_header(const bench *b, int64_t threads) {
    const rt_opts *o = b->o;
    printf("bench %s: synthetic inputs, %lld thread%s, ", b->m->name, (long long)threads, threads == 1 ? "" : "s");
    if (o->iters)
        printf("%lld calls a case after %lld warm-up calls\n", (long long)o->iters, (long long)(o->iters + 4) / 5);
    else
        printf("%g s a case after %g s of warm-up\n", o->has_seconds ? o->seconds : BENCH_DEFAULT_SECONDS,
               (o->has_seconds ? o->seconds : BENCH_DEFAULT_SECONDS) / 5);
    printf("%-8s %6s %9s %12s %12s %12s %12s\n", "case", "batch", "calls", "p50_us", "p99_us", "mean_us", "samples/s");
}

static void print_result(const bench_case *c, const bench_result *r) {
    printf("%-8s %6lld %9lld %12.3f %12.3f %12.3f %12.0f\n", c->name, (long long)c->batch, (long long)r->calls,
           r->p50 * 1e6, r->p99 * 1e6, r->mean * 1e6, r->mean > 0 ? (double)c->batch / r->mean : 0.0);
}

/* The cases this model has: predict at 1 and at `large`, train at
 * `train_batch`; returns how many. */
static int list_cases(const rt_model *m, int64_t large, int64_t train_batch, bench_case *cases) {
    int n = 0;
    if (m->predict_step) {
        cases[n++] = (bench_case){"predict", m->predict_step, 1, 0};
        if (large > 1)
            cases[n++] = (bench_case){"predict", m->predict_step, large, 0};
    }
    if (m->train_step && m->has_loss)
        cases[n++] = (bench_case){"train", m->train_step, train_batch, 1};
    return n;
}

int rt_cmd_bench(const rt_model *m, const rt_opts *o) {
    /* the train block's batch, or the max batch if it was compiled smaller */
    int64_t large, train_batch = rt_train_batch(m) < m->max_batch ? rt_train_batch(m) : m->max_batch;
    if (rt_resolve_batch(m, o->batch, m->max_batch, &large) || rt_resolve_batch(m, o->batch, train_batch, &train_batch))
        return RT_EXIT_FAIL;
    bench b = {m, o, NULL, NULL, NULL, 0};
    bench_case cases[3];
    int n_cases = list_cases(m, large, train_batch, cases);
    if (n_cases == 0) {
        rt_error("model %s has neither a predict step nor a train step to time", m->name);
        return RT_EXIT_FAIL;
    }
    uint64_t seed = rt_resolve_seed(m, o);
    b.arena = rt_setup(m, seed, o->load, NULL);
    b.hypers = b.arena ? rt_resolve_hypers(m, o, 0) : NULL;
    int rc = b.hypers ? 0 : -1;
    if (rc == 0) {
        b.data = rt_data_new(m, m->train_step ? RT_DATA_LABELLED : RT_DATA_INPUTS, m->max_batch);
        fill_synthetic(b.data, seed);
        print_header(&b, o->threads ? o->threads : rt_default_threads());
        for (int i = 0; i < n_cases; i++) {
            rt_zero_state(m, b.arena);
            bench_result r = run_case(&b, &cases[i]);
            print_result(&cases[i], &r);
            fflush(stdout);
        }
    }
    rt_data_free(b.data);
    free(b.hypers);
    rt_arena_free(b.arena);
    return rc ? RT_EXIT_FAIL : 0;
}
