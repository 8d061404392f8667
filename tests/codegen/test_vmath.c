/*
 * test_vmath.c - the accuracy of the generated exp, log, tanh, sigmoid and
 * erf (codegen/cg_vmath.c, and cg_scalar.c's erf on top of its exp).
 *
 * One graph applies each function to one input vector; the JIT compiles it
 * as mdlc would (-O2, the host's CPU) and runs it over float bit patterns:
 *   test_vmath sweep     every 4099th of the 2^32 patterns (~1M values)
 *                        plus the special values (ctest, label fast);
 *   test_vmath full      all 2^32 patterns (minutes: run by hand);
 *   test_vmath specials  only the special values;
 * a second argument names the CPU to compile for instead of the host
 * (e.g. x86-64: SSE2, no FMA, so llvm.fmuladd is a multiply and an add).
 * The reference is libm in double rounded to float, and the error of a
 * result is its distance in ulps from that float (adjacent floats are 1
 * apart; +0 and -0 are the same point).  Each function must stay within
 * its bound; at a special input whose correct result is 0, +-1, 0.5, +-inf
 * or NaN, the result must be exactly that (the sign of a zero included,
 * any NaN will do).
 * The special values run once more with the FPU flushing denormals
 * (FTZ/DAZ, as the runtime sets it), where denormal results become 0 and
 * log reads a denormal input as 0.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <xmmintrin.h>
#endif

#include "codegen.h"
#include "ir.h"
#include "passes.h"

#define MAX_BATCH 1
#include "harness.h"

#define CHUNK (1 << 20)

static int64_t n_values; /* inputs measured */

static double sigmoid(double x) { return 1 / (1 + exp(-x)); }

typedef struct function {
    const char *name;
    ir_op op;
    double (*reference)(double);
    int64_t bound;  /* ulps */
    int64_t max;    /* the largest error seen, */
    float max_at;   /* at this input */
    int64_t output; /* the result's byte offset in the arena */
} function;

static function functions[] = {
    {"exp", IR_EXP, exp, 1, 0, 0, 0},
    {"log", IR_LOG, log, 1, 0, 0, 0},
    {"tanh", IR_TANH, tanh, 2, 0, 0, 0},
    {"sigmoid", IR_SIGMOID, sigmoid, 2, 0, 0, 0},
    {"erf", IR_ERF, erf, 3, 0, 0, 0},
};
#define N_FUNCTIONS (int)(sizeof functions / sizeof *functions)

static float float_of(uint32_t bits) {
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

/* Floats in order as integers: adjacent floats differ by 1, +-0 are 0. */
static int64_t ordinal(float f) {
    int32_t i;
    memcpy(&i, &f, 4);
    return i < 0 ? -(int64_t)(i & 0x7FFFFFFF) : i;
}

/* The distance from got to want in ulps; NaN is 0 from NaN, far from all else. */
static int64_t ulps(float got, float want) {
    if (isnan(got) || isnan(want))
        return isnan(got) && isnan(want) ? 0 : INT64_MAX;
    return llabs(ordinal(got) - ordinal(want));
}

/* Whether want is a value the function must hit exactly. */
static int is_exact(float want) {
    return isnan(want) || isinf(want) || want == 0 || fabsf(want) == 1 || want == 0.5f;
}

/* ------------------------------------------------------------ the kernels */

typedef struct kernels {
    ir_graph *g;
    entries es;
    mem_plan plan;
    cg_jit *jit;
    char *arena;
    int64_t input;
} kernels;

static void compile(kernels *k, const char *cpu) {
    ir_graph *g = k->g = ir_graph_new("vmath", "test_vmath.c");
    g->max_batch = MAX_BATCH;
    ir_shape s = ir_shape_scalar();
    s.rank = 1;
    s.dims[0] = CHUNK;
    int x = ir_add_input(g, "x", IR_F32, &s, 0);
    for (int f = 0; f < N_FUNCTIONS; f++)
        ir_add_output(g, functions[f].name, op1(g, functions[f].op, x));
    cg_options opt = {.opt_level = 2, .cpu = cpu, .features = cpu ? "" : NULL};
    int built = ir_verify(g) == 0 && entries_build(g, &k->es) == 0;
    if (built)
        mp_plan_build(g, &k->es, &k->plan);
    if (!built || !(k->jit = cg_jit_create(g, &k->es, &k->plan, &opt))) {
        fprintf(stderr, "test_vmath: cannot build the kernels: %s\n", g->error);
        exit(2);
    }
    k->arena = aligned_alloc(64, (size_t)(k->plan.arena_bytes + 63) / 64 * 64);
    k->input = k->plan.offset[ENTRY_PREDICT][x];
    for (int f = 0; f < N_FUNCTIONS; f++)
        functions[f].output = k->plan.offset[ENTRY_PREDICT][g->outputs[f].node];
}

static void release(kernels *k) {
    free(k->arena);
    cg_jit_free(k->jit);
    mp_plan_free(&k->plan);
    entries_free(&k->es);
    ir_graph_free(k->g);
}

/* Runs every function over x[0..n) (n <= CHUNK). */
static void run(kernels *k, const float *x, int64_t n) {
    memcpy(k->arena + k->input, x, sizeof(float) * (size_t)n);
    memset(k->arena + k->input + 4 * n, 0, sizeof(float) * (size_t)(CHUNK - n));
    cg_jit_entry(k->jit, ENTRY_PREDICT)(k->arena, 1);
}

static float result(const kernels *k, const function *f, int64_t i) {
    float y;
    memcpy(&y, k->arena + f->output + 4 * i, 4);
    return y;
}

/* ------------------------------------------------------------ the checks */

/* Measures the errors of every function over x[0..n); with `exact`, a
 * result that must be exact and is not fails at once. */
static void measure(kernels *k, const float *x, int64_t n, int exact) {
    run(k, x, n);
    n_values += n;
    for (int fi = 0; fi < N_FUNCTIONS; fi++) {
        function *f = &functions[fi];
        for (int64_t i = 0; i < n; i++) {
            float got = result(k, f, i), want = (float)f->reference(x[i]);
            int64_t e = ulps(got, want);
            int sign_differs = !isnan(want) && signbit(got) != signbit(want);
            if (exact && is_exact(want) && (e != 0 || sign_differs))
                fail("%s(%a) = %a, want exactly %a", f->name, x[i], got, want);
            if (e > f->max) {
                f->max = e;
                f->max_at = x[i];
            }
        }
    }
}

static const float specials[] = {
    0.0f, -0.0f, INFINITY, -INFINITY, NAN, -NAN, 0x1p-149f, -0x1p-149f, 0x1.fffffcp-127f, FLT_MIN, -FLT_MIN,
    FLT_MAX, -FLT_MAX, 1, -1, 0.5f, 2, 0x1.6a09e6p-1f, 0x1.6a09e8p-1f, 0x1.6a09e6p0f, 0x1.6a09e8p0f,
    /* exp's overflow and underflow edges, and beyond */
    88.72f, 88.7228317f, 88.7228394f, 88.72284f, 89, 100, -87.3f, -87.3365479f, -87.34f, -103.97f, -103.972076f,
    -103.98f, -104, -150, -88.72f, -89, -100, -88.7228394f,
    /* tanh near 0, at its two pieces' seam, and where it saturates */
    1e-3f, -1e-3f, 1e-10f, -1e-20f, 0x1p-126f, 0.6249999f, 0.625f, -0.625f, 9, 9.1f, -9.1f, 20, -20,
};
#define N_SPECIALS (int)(sizeof specials / sizeof *specials)

/* Every stride-th bit pattern (all 2^32 when stride is 1). */
static void sweep(kernels *k, uint32_t stride) {
    float *x = malloc(sizeof(float) * CHUNK);
    int64_t n = 0;
    for (uint64_t bits = 0; bits < (1ull << 32); bits += stride) {
        x[n++] = float_of((uint32_t)bits);
        if (n == CHUNK) {
            measure(k, x, n, 0);
            n = 0;
        }
    }
    measure(k, x, n, 0);
    free(x);
}

/* The special values with the FPU flushing denormals, as the runtime
 * runs: denormal results are 0, a denormal input to log is 0. */
static void flushed(kernels *k) {
#if defined(__x86_64__)
    static const float x[] = {0x1p-149f, -100, -90};
    unsigned saved = _mm_getcsr();
    _mm_setcsr(saved | 0x8040); /* FTZ | DAZ */
    run(k, x, 3);
    _mm_setcsr(saved);
    CHECK(result(k, &functions[1], 0) == -INFINITY); /* log */
    CHECK(result(k, &functions[0], 1) == 0);         /* exp(-100) */
    CHECK(result(k, &functions[3], 2) == 0);         /* sigmoid(-90) */
#else
    (void)k;
#endif
}

static void report(void) {
    printf("%lld inputs\n", (long long)n_values);
    printf("%-8s %8s %8s  %s\n", "function", "max ulp", "bound", "at");
    for (int i = 0; i < N_FUNCTIONS; i++) {
        const function *f = &functions[i];
        printf("%-8s %8lld %8lld  %a (%.9g)\n", f->name, (long long)f->max, (long long)f->bound, f->max_at,
               f->max_at);
        CHECK_MSG(f->max <= f->bound, "%s: %lld ulps at %a, above its bound of %lld", f->name, (long long)f->max,
                  f->max_at, (long long)f->bound);
    }
}

int main(int argc, char **argv) {
    const char *what = argc > 1 ? argv[1] : "sweep";
    if (strcmp(what, "sweep") != 0 && strcmp(what, "full") != 0 && strcmp(what, "specials") != 0) {
        fprintf(stderr, "usage: test_vmath [sweep|full|specials [CPU]]\n");
        return 2;
    }
    kernels k;
    compile(&k, argc > 2 ? argv[2] : NULL);
    measure(&k, specials, N_SPECIALS, 1);
    if (strcmp(what, "specials") != 0)
        sweep(&k, strcmp(what, "full") == 0 ? 1 : 4099);
    flushed(&k);
    report();
    release(&k);
    return failures != 0;
}
