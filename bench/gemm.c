/*
 * gemm.c - GFLOPS of the generated matmul kernel, beside OpenBLAS.
 *
 * Each case is a one-node graph (C = A @ B, possibly transposed, possibly
 * with M, N or K the run-time batch dimension) compiled by the real code
 * generator under the JIT at -O2 (cg_jit: the same object code mdlc would
 * write), run on random data.  When libopenblas.so.0 can be loaded
 * (Debian: libopenblas-dev or libopenblas0) cblas_sgemm runs the same
 * product in the same process, alternating with ours sample by sample so
 * both see the same machine, and the ratio OpenBLAS time / ours is
 * printed (above 1: ours is faster).  The library is opened with dlopen:
 * nothing in the build depends on it.  Both run on one thread.
 *
 *   bench_gemm [options]                 square 64..1024, MLP shapes, tiny
 *                                        ones, attention's batched products
 *   bench_gemm [options] square|model|tiny|attention
 *   bench_gemm [options] M N K [ta tb [S]]
 *                                        one product; "B64" for M makes it
 *                                        the batch dim (at batch 64); S > 0:
 *                                        S products [S, M, K] @ [S, K, N],
 *                                        S the batch dim (OpenBLAS: S calls)
 * options:
 *   --cpu NAME        compile for that CPU (e.g. znver3, haswell) instead of
 *                     the host; it must be able to run here
 *   --blas-core NAME  OpenBLAS's kernel (OPENBLAS_CORETYPE, e.g. Haswell for
 *                     its AVX2 one); by default it picks its own
 *   --ir FILE         write the optimised LLVM IR of every case to FILE
 *   --threads N       build for the runtime's threads (mdl_rt_sgemm, the
 *                     column split of products of a few rows) and run ours
 *                     on N threads; "x1" is then our time on 1 thread (same
 *                     code) over our time on N (above 1: the threads pay).
 *                     OpenBLAS stays on 1 thread.
 *
 * Each figure is the median of 7 samples of at least ~20 ms each; "err" is
 * the largest |C - reference| / sqrt(K) over a few rows, against a double
 * product.
 */
#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codegen.h"
#include "ir.h"
#include "passes.h"

/* the tests' random numbers and [rows, cols] shapes */
#define TEST_SEED 0x9E3779B97F4A7C15ull
#include "../tests/codegen/harness.h"

#define SAMPLES 7
#define SAMPLE_SECONDS 0.02

/* ------------------------------------------------------------- OpenBLAS */

enum { ROW_MAJOR = 101, NO_TRANS = 111, TRANS = 112 };
typedef void (*sgemm_fn)(int order, int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                         const float *b, int ldb, float beta, float *c, int ldc);
static sgemm_fn cblas_sgemm;
static const char *blas_core = "?";

/* core: NULL to let OpenBLAS pick its own kernel for this CPU (the
 * environment's OPENBLAS_CORETYPE is ignored), or a name such as "Haswell"
 * (its AVX2 kernel: the fair peer of 8-wide code on an AVX-512 machine). */
static void open_blas(const char *core) {
    unsetenv("OPENBLAS_CORETYPE");
    unsetenv("OPENBLAS_L2_SIZE");
    if (core)
        setenv("OPENBLAS_CORETYPE", core, 1);
    setenv("OPENBLAS_NUM_THREADS", "1", 1);
    void *lib = dlopen("libopenblas.so.0", RTLD_NOW | RTLD_LOCAL);
    if (!lib)
        lib = dlopen("libopenblas.so", RTLD_NOW | RTLD_LOCAL);
    if (!lib)
        return;
    cblas_sgemm = (sgemm_fn)dlsym(lib, "cblas_sgemm");
    void (*set_threads)(int) = (void (*)(int))dlsym(lib, "openblas_set_num_threads");
    if (set_threads)
        set_threads(1);
    char *(*core_name)(void) = (char *(*)(void))dlsym(lib, "openblas_get_corename");
    if (core_name)
        blas_core = core_name();
}

/* ---------------------------------------------------------------- cases */

typedef struct gemm_case {
    int64_t m, n, k;
    int ta, tb;
    int batch_dim; /* -1, or which of 'm', 'n', 'k' is the run-time batch dim */
    int64_t s;     /* > 0: that many products, a batched one over the batch dim */
} gemm_case;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

void rt_set_threads(int n); /* runtime/rt_pool.c */

static FILE *llvm_dump;        /* --ir FILE: the optimised LLVM IR of every case */
static int threads = 0;        /* --threads N: built for the pool, run on N */
static const char *target_cpu; /* --cpu NAME: compile for that CPU, not the host */

typedef struct compiled {
    ir_graph *g;
    entries es;
    mem_plan plan;
    cg_jit *jit;
    cg_entry_fn fn;
    char *arena;
    float *a, *b, *c; /* inside the arena */
} compiled;

static int64_t products(const gemm_case *c) { return c->s ? c->s : 1; }

static int64_t batch_of(const gemm_case *c) {
    return c->s ? c->s : c->batch_dim == 'm' ? c->m : c->batch_dim == 'n' ? c->n : c->batch_dim == 'k' ? c->k : 1;
}

/* [S, rows, cols] from [rows, cols], S the batch dim */
static void stacked(ir_shape *s, int64_t count) {
    s->rank = 3;
    s->dims[2] = s->dims[1];
    s->dims[1] = s->dims[0];
    s->dims[0] = count;
    s->batch_mask = 1;
}

static int compile_case(const gemm_case *c, compiled *out) {
    memset(out, 0, sizeof *out);
    ir_graph *g = ir_graph_new("gemm", "gemm.mdl");
    int bm = c->batch_dim == 'm', bn = c->batch_dim == 'n', bk = c->batch_dim == 'k';
    g->max_batch = batch_of(c);
    ir_shape sa = c->ta ? matrix(c->k, c->m, bk, bm) : matrix(c->m, c->k, bm, bk);
    ir_shape sb = c->tb ? matrix(c->n, c->k, bn, bk) : matrix(c->k, c->n, bk, bn);
    if (c->s) {
        stacked(&sa, c->s);
        stacked(&sb, c->s);
    }
    int a = ir_add_input(g, "a", IR_F32, &sa, 0);
    int b = ir_add_input(g, "b", IR_F32, &sb, 0);
    int y = ir_matmul_batched(g, a, b, (c->ta ? IR_TRANSPOSE_A : 0) | (c->tb ? IR_TRANSPOSE_B : 0), c->s ? 1 : 0);
    if (y < 0) {
        fprintf(stderr, "bench_gemm: %s\n", g->error);
        return -1;
    }
    ir_add_output(g, "c", y);
    out->g = g;
    if (entries_build(g, &out->es)) {
        fprintf(stderr, "bench_gemm: %s\n", g->error);
        return -1;
    }
    mp_plan_build(g, &out->es, &out->plan);
    cg_options opt = {.opt_level = 2,
                      .emit_llvm = llvm_dump,
                      .cpu = target_cpu,
                      .features = target_cpu ? "" : NULL,
                      .parallel = threads > 0};
    out->jit = cg_jit_create(g, &out->es, &out->plan, &opt);
    if (!out->jit)
        return -1;
    out->fn = cg_jit_entry(out->jit, ENTRY_PREDICT);
    out->arena = aligned_alloc(64, (size_t)(out->plan.arena_bytes + 63) / 64 * 64);
    const int64_t *offset = out->plan.offset[ENTRY_PREDICT];
    out->a = (float *)(out->arena + offset[a]);
    out->b = (float *)(out->arena + offset[b]);
    out->c = (float *)(out->arena + offset[y]);
    for (int64_t i = 0; i < products(c) * c->m * c->k; i++)
        out->a[i] = (float)test_uniform(-1, 1);
    for (int64_t i = 0; i < products(c) * c->k * c->n; i++)
        out->b[i] = (float)test_uniform(-1, 1);
    return 0;
}

static void free_compiled(compiled *x) {
    if (x->jit)
        cg_jit_free(x->jit);
    if (x->g) {
        entries_free(&x->es);
        mp_plan_free(&x->plan);
        ir_graph_free(x->g);
    }
    free(x->arena);
}

static void run_mdl(const gemm_case *c, compiled *x, long reps) {
    for (long r = 0; r < reps; r++)
        x->fn(x->arena, batch_of(c));
}

static void run_blas(const gemm_case *c, compiled *x, float *cb, long reps) {
    int lda = (int)(c->ta ? c->m : c->k), ldb = (int)(c->tb ? c->k : c->n);
    for (long r = 0; r < reps; r++)
        for (int64_t p = 0; p < products(c); p++)
            cblas_sgemm(ROW_MAJOR, c->ta ? TRANS : NO_TRANS, c->tb ? TRANS : NO_TRANS, (int)c->m, (int)c->n, (int)c->k,
                        1, x->a + p * c->m * c->k, lda, x->b + p * c->k * c->n, ldb, 0, cb + p * c->m * c->n,
                        (int)c->n);
}

static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The largest |mdl - reference| / sqrt(K) over a few rows of C (of the
 * first and the last product), against a double-precision product (the
 * inputs are uniform in [-1, 1]). */
static double check(const gemm_case *c, const compiled *x) {
    double worst = 0;
    int64_t step = c->m > 16 ? c->m / 7 : 1;
    for (int64_t p = 0; p<products(c); p += products(c)> 1 ? products(c) - 1 : 1) {
        const float *a = x->a + p * c->m * c->k, *b = x->b + p * c->k * c->n, *y = x->c + p * c->m * c->n;
        for (int64_t i = 0; i < c->m; i += step)
            for (int64_t j = 0; j < c->n; j++) {
                double sum = 0;
                for (int64_t kk = 0; kk < c->k; kk++) {
                    double av = c->ta ? a[kk * c->m + i] : a[i * c->k + kk];
                    double bv = c->tb ? b[j * c->k + kk] : b[kk * c->n + j];
                    sum += av * bv;
                }
                double err = fabs(y[i * c->n + j] - sum) / sqrt((double)c->k);
                if (!(err <= worst))
                    worst = err;
            }
    }
    return worst;
}

static void bench_case(const gemm_case *c) {
    compiled x;
    char label[64], count[24] = "";
    /* [S x] M N K, a B after the dim that is the batch, then the transposes */
    if (c->s)
        snprintf(count, sizeof count, "%lldx ", (long long)c->s);
    snprintf(label, sizeof label, "%s%lld%s %lld%s %lld%s%s%s", count, (long long)c->m, c->batch_dim == 'm' ? "B" : "",
             (long long)c->n, c->batch_dim == 'n' ? "B" : "", (long long)c->k, c->batch_dim == 'k' ? "B" : "",
             c->ta ? " tA" : "", c->tb ? " tB" : "");
    if (compile_case(c, &x)) {
        free_compiled(&x);
        return;
    }
    double flops = 2.0 * (double)(products(c) * c->m * c->n * c->k);
    float *cb = cblas_sgemm ? malloc(sizeof(float) * (size_t)(products(c) * c->m * c->n)) : NULL;
    /* calibrate: reps per sample of ~SAMPLE_SECONDS */
    run_mdl(c, &x, 1);
    double err = check(c, &x);
    long reps = 1;
    for (;;) {
        double t0 = now();
        run_mdl(c, &x, reps);
        double t = now() - t0;
        if (t > SAMPLE_SECONDS / 4 || reps > (1L << 26))
            break;
        reps *= 2;
    }
    {
        double t0 = now();
        run_mdl(c, &x, reps);
        double t = now() - t0;
        reps = (long)(reps * SAMPLE_SECONDS / (t > 0 ? t : 1e-9)) + 1;
    }
    if (cb)
        run_blas(c, &x, cb, 1);
    double ours[SAMPLES], theirs[SAMPLES], single[SAMPLES];
    for (int s = 0; s < SAMPLES; s++) {
        double t0;
        if (threads) { /* the same code on one thread */
            rt_set_threads(1);
            t0 = now();
            run_mdl(c, &x, reps);
            single[s] = (now() - t0) / (double)reps;
            rt_set_threads(threads);
        }
        t0 = now();
        run_mdl(c, &x, reps);
        ours[s] = (now() - t0) / (double)reps;
        if (cb) {
            t0 = now();
            run_blas(c, &x, cb, reps);
            theirs[s] = (now() - t0) / (double)reps;
        }
    }
    qsort(ours, SAMPLES, sizeof *ours, compare_doubles);
    double t_ours = ours[SAMPLES / 2];
    printf("%-22s %10.2f us %7.1f GFLOPS", label, t_ours * 1e6, flops / t_ours * 1e-9);
    if (cb) {
        qsort(theirs, SAMPLES, sizeof *theirs, compare_doubles);
        double t_theirs = theirs[SAMPLES / 2];
        printf("   openblas %10.2f us %7.1f GFLOPS   ratio %.2f", t_theirs * 1e6, flops / t_theirs * 1e-9,
               t_theirs / t_ours);
    }
    if (threads) {
        qsort(single, SAMPLES, sizeof *single, compare_doubles);
        printf("   x1 %.2f", single[SAMPLES / 2] / t_ours);
    }
    printf("   err %.1e%s\n", err, err > 1e-5 ? "  WRONG" : "");
    free(cb);
    free_compiled(&x);
}

/* ----------------------------------------------------------------- main */

/* clang-format off */
static const gemm_case model_cases[] = {
    /* W2, the MLP 784-256-128-10 at batch 64: forward, then backward */
    {64, 256, 784, 0, 0, 'm', 0},  /* h1 = x W1 */
    {64, 128, 256, 0, 0, 'm', 0},  /* h2 = h1 W2 */
    {64, 10, 128, 0, 0, 'm', 0},   /* logits = h2 W3 */
    {784, 256, 64, 1, 0, 'k', 0},  /* dW1 = x^T g */
    {256, 128, 64, 1, 0, 'k', 0},  /* dW2 */
    {128, 10, 64, 1, 0, 'k', 0},   /* dW3 */
    {64, 128, 10, 0, 1, 'm', 0},   /* dh2 = g W3^T */
    {64, 256, 128, 0, 1, 'm', 0},  /* dh1 */
    {64, 784, 256, 0, 1, 'm', 0},  /* dx = g W1^T */
    {256, 256, 784, 0, 0, 'm', 0}, /* batch-256 inference */
    {1, 256, 784, 0, 0, 'm', 0},   /* batch-1 latency */
    {1, 128, 256, 0, 0, 'm', 0},
    {1, 10, 128, 0, 0, 'm', 0},
};

static const gemm_case tiny_cases[] = {
    {1000, 1, 2, 0, 0, 'm', 0},  /* W1: [1000,2]@[2,1] */
    {2, 1, 1000, 1, 0, 'k', 0},  /* its weight gradient */
    {1000, 2, 1, 0, 1, 'm', 0},  /* its input gradient */
    {100, 8, 2, 0, 0, 'm', 0},   /* house_price: [B,2]@[2,8] */
    {100, 1, 8, 0, 0, 'm', 0},
    {8, 1, 100, 1, 0, 'k', 0},
    {2, 8, 100, 1, 0, 'k', 0},
    {100, 8, 1, 0, 1, 'm', 0},
    {16, 16, 16, 0, 0, -1, 0},
    {32, 32, 32, 0, 0, -1, 0},
    {16, 64, 64, 0, 0, -1, 0},   /* few rows: the plain loop */
    {64, 64, 64, 0, 0, -1, 0},
};

/* a GPT's attention at batch 32 with 4 heads: T = 64, D = 32 */
static const gemm_case attention_cases[] = {
    {64, 64, 32, 0, 1, -1, 128},  /* scores q k^T, k read in place; dp = g v^T */
    {64, 64, 32, 0, 0, -1, 128},  /* the scores with k^T a copy */
    {64, 32, 64, 0, 0, -1, 128},  /* p v; dq = g k */
    {64, 32, 64, 1, 0, -1, 128},  /* dv = p^T g; dk = g^T q */
};
/* clang-format on */

static void run_list(const gemm_case *cases, size_t n) {
    for (size_t i = 0; i < n; i++)
        bench_case(&cases[i]);
}

int main(int argc, char **argv) {
    const char *core = NULL;
    while (argc > 2 && !strncmp(argv[1], "--", 2)) {
        if (!strcmp(argv[1], "--ir")) {
            llvm_dump = fopen(argv[2], "w");
            if (!llvm_dump) {
                perror(argv[2]);
                return 1;
            }
        } else if (!strcmp(argv[1], "--cpu")) {
            target_cpu = argv[2];
        } else if (!strcmp(argv[1], "--threads")) {
            threads = atoi(argv[2]);
            if (threads < 1) {
                fprintf(stderr, "bench_gemm: --threads needs a positive count\n");
                return 2;
            }
            rt_set_threads(threads);
        } else if (!strcmp(argv[1], "--blas-core")) {
            core = argv[2];
        } else {
            break;
        }
        argc -= 2;
        argv += 2;
    }
    const char *usage = "usage: bench_gemm [--cpu NAME] [--blas-core NAME] [--ir FILE] [--threads N] "
                        "[square|model|tiny|attention | M N K [ta tb [S]]]\n";
    if (argc > 1 && argc < 4 && strcmp(argv[1], "square") && strcmp(argv[1], "model") && strcmp(argv[1], "tiny") &&
        strcmp(argv[1], "attention")) {
        fputs(usage, stderr);
        return 2;
    }
    open_blas(core);
    if (threads)
        printf("# bench_gemm: the generated matmul (-O2, JIT, built for threads, run on %d)\n", threads);
    else
        printf("# bench_gemm: the generated matmul (-O2, JIT, 1 thread)\n");
    if (cblas_sgemm)
        printf("# beside OpenBLAS cblas_sgemm, 1 thread, its %s kernel; ratio = OpenBLAS time / ours\n", blas_core);
    else
        printf("# OpenBLAS not found (libopenblas.so.0): install libopenblas-dev to compare\n");
    const char *which = argc > 1 ? argv[1] : "all";
    if (argc >= 4) {
        gemm_case c = {0, 0, 0, 0, 0, -1, 0};
        if (argv[1][0] == 'B') {
            c.batch_dim = 'm';
            c.m = atoll(argv[1] + 1);
        } else {
            c.m = atoll(argv[1]);
        }
        c.n = atoll(argv[2]);
        c.k = atoll(argv[3]);
        c.ta = argc > 4 && atoi(argv[4]);
        c.tb = argc > 5 && atoi(argv[5]);
        c.s = argc > 6 ? atoll(argv[6]) : 0;
        if (c.m < 1 || c.n < 1 || c.k < 1 || c.s < 0 || (c.s && c.batch_dim >= 0)) {
            fputs(usage, stderr);
            return 2;
        }
        bench_case(&c);
        return 0;
    }
    if (!strcmp(which, "all") || !strcmp(which, "square")) {
        printf("## square\n");
        for (int64_t n = 64; n <= 1024; n *= 2) {
            gemm_case c = {n, n, n, 0, 0, -1, 0};
            bench_case(&c);
        }
    }
    if (!strcmp(which, "all") || !strcmp(which, "model")) {
        printf("## MLP 784-256-128-10 shapes (M or K = batch)\n");
        run_list(model_cases, sizeof model_cases / sizeof *model_cases);
    }
    if (!strcmp(which, "all") || !strcmp(which, "tiny")) {
        printf("## tiny\n");
        run_list(tiny_cases, sizeof tiny_cases / sizeof *tiny_cases);
    }
    if (!strcmp(which, "all") || !strcmp(which, "attention")) {
        printf("## attention's batched products (S x M N K, S = batch 32 x 4 heads)\n");
        run_list(attention_cases, sizeof attention_cases / sizeof *attention_cases);
    }
    return 0;
}
