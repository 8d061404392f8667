/*
 * test_matmul.c - the matmul kernel against a double-precision reference.
 *
 * The kernel (codegen/cg_matmul.c) has a plain-loop path for small
 * products and a blocked path (6x16 register tiles, KC 256 / MC 144 /
 * NC 256 cache blocks, packing) for the rest, each in four transpose
 * variants, with M, N or K possibly the run-time batch dimension.  So the
 * sizes swept here sit on and around every edge of that blocking: 1, 5, 7,
 * 15, 17, 63, 65, 143, 145, 257 in each of M, N and K, then random triples
 * of them, under every transpose combination.
 *
 * Each suite is one graph holding many products, compiled by the JIT (the
 * object code mdlc would write) for two layouts of its buffers (apart with
 * a gap before each; or each ending on a page boundary followed by pages
 * that fault when touched, so that reading past the end of an operand
 * crashes the test), run, and checked:
 *   - each element against a double-precision product of the same f32
 *     inputs, to a bound that grows with K: |got - want| <= 2 (K + 1) u
 *     sum_k |a_ik b_kj| (u = 2^-24), the classic bound for any order of
 *     summation, far below what a lost or doubled term would give;
 *   - no byte of the arena outside the results changed (edge tiles must
 *     not write past a row or past the matrix).
 *
 *   test_matmul nn|tn|nt|tt   the static-shape sweep for one transpose pair
 *   test_matmul batch         M, N or K the batch dim, run at several batches;
 *                             CONST operands
 *   test_matmul targets       a few products for a baseline x86-64 (SSE2
 *                             only), for Haswell (AVX2, no AVX-512), and at -O0
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "codegen.h"
#include "eval.h"
#include "ir.h"
#include "passes.h"

#include "harness.h"

#define GAP 256
#define PATTERN 0xA5

/* ------------------------------------------------------------ products */

typedef struct product {
    int64_t m, n, k; /* at the largest batch for a batch dim */
    int flags;       /* IR_TRANSPOSE_* */
    char batch;      /* 0, or 'm', 'n', 'k': which size is the batch */
    int const_a, const_b;
    double value; /* of a CONST operand */
    int a, b, c;  /* node ids */
} product;

#define MAX_PRODUCTS 128

typedef struct suite {
    const char *name;
    int64_t max_batch;
    int n;
    product p[MAX_PRODUCTS];
} suite;

static void add(suite *s, int64_t m, int64_t n, int64_t k, int flags, char batch) {
    if (s->n == MAX_PRODUCTS) {
        fprintf(stderr, "test_matmul: too many products in %s\n", s->name);
        exit(2);
    }
    product *p = &s->p[s->n++];
    memset(p, 0, sizeof *p);
    p->m = m;
    p->n = n;
    p->k = k;
    p->flags = flags;
    p->batch = batch;
}

static int64_t size_at(const product *p, char which, int64_t batch) {
    int64_t v = which == 'm' ? p->m : which == 'n' ? p->n : p->k;
    return p->batch == which ? batch : v;
}

static int operand(ir_graph *g, const ir_shape *s, int is_const, double value) {
    if (is_const)
        return ir_const(g, IR_F32, s, value);
    char name[16];
    snprintf(name, sizeof name, "x%d", g->n_inputs);
    return ir_add_input(g, name, IR_F32, s, 0);
}

static ir_graph *build_graph(suite *s) {
    ir_graph *g = ir_graph_new("test_matmul", "test_matmul.mdl");
    g->max_batch = s->max_batch;
    for (int i = 0; i < s->n; i++) {
        product *p = &s->p[i];
        int ta = !!(p->flags & IR_TRANSPOSE_A), tb = !!(p->flags & IR_TRANSPOSE_B);
        int bm = p->batch == 'm', bn = p->batch == 'n', bk = p->batch == 'k';
        ir_shape sa = ta ? matrix(p->k, p->m, bk, bm) : matrix(p->m, p->k, bm, bk);
        ir_shape sb = tb ? matrix(p->n, p->k, bn, bk) : matrix(p->k, p->n, bk, bn);
        p->a = operand(g, &sa, p->const_a, p->value);
        p->b = operand(g, &sb, p->const_b, p->value);
        p->c = ir_matmul(g, p->a, p->b, p->flags);
        if (p->a < 0 || p->b < 0 || p->c < 0) {
            fprintf(stderr, "test_matmul: %s: building product %d: %s\n", s->name, i, g->error);
            exit(2);
        }
        char name[16];
        snprintf(name, sizeof name, "c%d", i);
        ir_add_output(g, name, p->c);
    }
    if (ir_verify(g) != 0) {
        fprintf(stderr, "test_matmul: %s: invalid graph: %s\n", s->name, g->error);
        exit(2);
    }
    return g;
}

/* Where buffers go; the same offsets in every entry.
 *   LAYOUT_APART: 64-byte aligned, GAP bytes of PATTERN before each;
 *   LAYOUT_GUARDED: each ends on a page boundary followed by GUARD bytes
 *     that are not readable, so a read past the end of an operand (a mask
 *     or a clamp gone wrong at an edge) faults.  Such a buffer is only
 *     4-byte aligned, which the kernel must accept too. */
typedef enum { LAYOUT_APART, LAYOUT_GUARDED } layout;
#define PAGE 4096
#define GUARD (64 * 1024)

static int has_buffer(const ir_graph *g, int id) { return g->nodes[id].op == IR_INPUT || g->nodes[id].op == IR_MATMUL; }

static void make_plan(const ir_graph *g, layout how, mem_plan *plan) {
    memset(plan, 0, sizeof *plan);
    plan->n_nodes = g->n_nodes;
    int64_t at = 0;
    for (int e = 0; e < ENTRY_COUNT; e++)
        plan->offset[e] = malloc(sizeof(int64_t) * (size_t)g->n_nodes);
    for (int i = 0; i < g->n_nodes; i++) {
        int64_t offset = -1, bytes = ir_shape_numel(&g->nodes[i].shape) * 4;
        if (has_buffer(g, i) && how == LAYOUT_APART) {
            offset = at + GAP;
            at = offset + (bytes + 63) / 64 * 64;
        } else if (has_buffer(g, i)) {
            int64_t end = (at + GAP + bytes + PAGE - 1) / PAGE * PAGE;
            offset = end - bytes;
            at = end + GUARD;
        }
        for (int e = 0; e < ENTRY_COUNT; e++)
            plan->offset[e][i] = offset;
    }
    plan->persistent_bytes = at;
    plan->arena_bytes = at + GAP;
}

/* The arena for a plan, filled with PATTERN; in a guarded layout the
 * GUARD bytes after each buffer cannot be read or written.  guard[i] says
 * whether byte i is one of them. */
static char *new_arena(const ir_graph *g, const mem_plan *plan, layout how, unsigned char **guard) {
    size_t size = (size_t)(plan->arena_bytes + PAGE - 1) / PAGE * PAGE;
    char *arena = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (arena == MAP_FAILED) {
        perror("test_matmul: mmap");
        exit(2);
    }
    memset(arena, PATTERN, size);
    *guard = calloc(size, 1);
    for (int i = 0; i < g->n_nodes && how == LAYOUT_GUARDED; i++)
        if (has_buffer(g, i)) {
            int64_t end = plan->offset[ENTRY_PREDICT][i] + ir_shape_numel(&g->nodes[i].shape) * 4;
            memset(*guard + end, 1, GUARD);
            if (mprotect(arena + end, GUARD, PROT_NONE) != 0) {
                perror("test_matmul: mprotect");
                exit(2);
            }
        }
    return arena;
}

static void free_arena(char *arena, const mem_plan *plan, unsigned char *guard) {
    munmap(arena, (size_t)(plan->arena_bytes + PAGE - 1) / PAGE * PAGE);
    free(guard);
}

/* --------------------------------------------------------------- checks */

static float *at(char *arena, const mem_plan *plan, int node) {
    return (float *)(arena + plan->offset[ENTRY_PREDICT][node]);
}

static void fill(const product *p, char *arena, const mem_plan *plan, int64_t batch) {
    int64_t m = size_at(p, 'm', batch), n = size_at(p, 'n', batch), k = size_at(p, 'k', batch);
    if (!p->const_a)
        for (int64_t i = 0; i < m * k; i++)
            at(arena, plan, p->a)[i] = (float)test_uniform(-1, 1);
    if (!p->const_b)
        for (int64_t i = 0; i < k * n; i++)
            at(arena, plan, p->b)[i] = (float)test_uniform(-1, 1);
}

static void check_product(const char *label, const product *p, char *arena, const mem_plan *plan, int64_t batch) {
    int64_t m = size_at(p, 'm', batch), n = size_at(p, 'n', batch), k = size_at(p, 'k', batch);
    int ta = !!(p->flags & IR_TRANSPOSE_A), tb = !!(p->flags & IR_TRANSPOSE_B);
    const float *a = p->const_a ? NULL : at(arena, plan, p->a);
    const float *b = p->const_b ? NULL : at(arena, plan, p->b);
    const float *c = at(arena, plan, p->c);
    int bad = 0;
    for (int64_t i = 0; i < m && bad < 3; i++)
        for (int64_t j = 0; j < n && bad < 3; j++) {
            double sum = 0, bound = 0;
            for (int64_t kk = 0; kk < k; kk++) {
                double x = a ? a[ta ? kk * m + i : i * k + kk] : p->value;
                double y = b ? b[tb ? j * k + kk : kk * n + j] : p->value;
                sum += x * y;
                bound += fabs(x * y);
            }
            double tolerance = 2.0 * (double)(k + 1) * ldexp(1, -24) * bound + 1e-30;
            double got = c[i * n + j];
            if (!(fabs(got - sum) <= tolerance)) {
                fprintf(stderr, "FAIL: %s: %lldx%lldx%lld%s%s (batch %lld) C[%lld,%lld] = %.9g, want %.9g\n", label,
                        (long long)m, (long long)n, (long long)k, ta ? " tA" : "", tb ? " tB" : "", (long long)batch,
                        (long long)i, (long long)j, got, sum);
                bad++;
                failures++;
            }
        }
}

/* No byte outside the inputs and the results at this batch may change. */
static void check_untouched(const char *label, const suite *s, const ir_graph *g, const char *arena,
                            const mem_plan *plan, const unsigned char *guard, int64_t batch) {
    unsigned char *used = calloc((size_t)plan->arena_bytes, 1);
    for (int i = 0; i < g->n_nodes; i++)
        if (plan->offset[ENTRY_PREDICT][i] >= 0)
            memset(used + plan->offset[ENTRY_PREDICT][i], 1, (size_t)ir_numel_at(&g->nodes[i].shape, batch) * 4);
    for (int64_t i = 0; i < plan->arena_bytes; i++)
        if (!used[i] && !guard[i] && (unsigned char)arena[i] != PATTERN) {
            fprintf(stderr, "FAIL: %s: %s (batch %lld): byte %lld of the arena changed outside every result\n", label,
                    s->name, (long long)batch, (long long)i);
            failures++;
            break;
        }
    free(used);
}

/* Compiles the suite for `opt` in layout `how` and runs it at each batch. */
static void run_layout(suite *s, ir_graph *g, const entries *es, layout how, const cg_options *opt, const char *label,
                       const int64_t *batches, int n_batches) {
    mem_plan plan;
    make_plan(g, how, &plan);
    cg_jit *jit = cg_jit_create(g, es, &plan, opt);
    if (!jit) {
        fprintf(stderr, "FAIL: %s: %s: cg_jit_create failed\n", label, s->name);
        failures++;
        mp_plan_free(&plan);
        return;
    }
    unsigned char *guard;
    char *arena = new_arena(g, &plan, how, &guard);
    for (int r = 0; r < n_batches; r++) {
        int64_t batch = batches[r];
        for (int64_t i = 0; i < plan.arena_bytes; i++)
            if (!guard[i])
                arena[i] = (char)PATTERN;
        for (int i = 0; i < s->n; i++)
            fill(&s->p[i], arena, &plan, batch);
        cg_jit_entry(jit, ENTRY_PREDICT)(arena, batch);
        for (int i = 0; i < s->n; i++)
            check_product(label, &s->p[i], arena, &plan, batch);
        check_untouched(label, s, g, arena, &plan, guard, batch);
    }
    free_arena(arena, &plan, guard);
    cg_jit_free(jit);
    mp_plan_free(&plan);
}

static void run_suite(suite *s, const cg_options *opt, const char *label, const int64_t *batches, int n_batches) {
    ir_graph *g = build_graph(s);
    entries es;
    if (entries_build(g, &es) != 0) {
        fprintf(stderr, "test_matmul: %s: entries: %s\n", s->name, g->error);
        exit(2);
    }
    run_layout(s, g, &es, LAYOUT_APART, opt, label, batches, n_batches);
    run_layout(s, g, &es, LAYOUT_GUARDED, opt, label, batches, n_batches);
    entries_free(&es);
    ir_graph_free(g);
}

/* ---------------------------------------------------------------- suites */

static const int64_t sizes[] = {1, 5, 7, 15, 17, 63, 65, 143, 145, 257};
#define N_SIZES (int)(sizeof sizes / sizeof *sizes)

/* Each size in each of M, N and K (the others moderate, so both the small
 * and the blocked path run), whole blocks and tiles, then random triples. */
static void static_sweep(suite *s, int flags) {
    for (int i = 0; i < N_SIZES; i++) {
        add(s, sizes[i], 80, 65, flags, 0);
        add(s, 17, sizes[i], 63, flags, 0);
        add(s, 65, 17, sizes[i], flags, 0);
    }
    add(s, 6, 16, 256, flags, 0);    /* one full tile, one K slice */
    add(s, 144, 256, 256, flags, 0); /* one full block */
    add(s, 145, 257, 257, flags, 0); /* one past each block */
    add(s, 1, 1, 1, flags, 0);
    add(s, 13, 40, 1030, flags, 0); /* rows of A 4 KiB apart: A is packed */
    add(s, 70, 71, 129, flags, 0);  /* a 7-column edge strip */
    for (int i = 0; i < 16; i++)
        add(s, sizes[test_below(N_SIZES)], sizes[test_below(N_SIZES)], sizes[test_below(N_SIZES)], flags, 0);
}

static void batch_sweep(suite *s) {
    const int T_A = IR_TRANSPOSE_A, T_B = IR_TRANSPOSE_B;
    s->max_batch = 300;
    /* M is the batch: activations times weights */
    add(s, 300, 33, 65, 0, 'm');
    add(s, 300, 40, 17, T_A, 'm');
    add(s, 300, 20, 63, T_B, 'm');
    add(s, 300, 17, 17, T_A | T_B, 'm');
    /* K is the batch: weight gradients */
    add(s, 33, 65, 300, T_A, 'k');
    add(s, 17, 20, 300, 0, 'k');
    add(s, 9, 40, 300, T_B, 'k');
    /* N is the batch */
    add(s, 40, 300, 63, T_B, 'n');
    add(s, 20, 300, 17, 0, 'n');
    add(s, 145, 300, 7, T_A, 'n');
    /* a CONST operand has no buffer: its value is folded into the code */
    add(s, 300, 17, 20, 0, 'm');
    s->p[s->n - 1].const_b = 1;
    s->p[s->n - 1].value = 0.5;
    add(s, 9, 300, 20, 0, 'n');
    s->p[s->n - 1].const_a = 1;
    s->p[s->n - 1].value = -1.25;
}

static void target_sweep(suite *s) {
    for (int flags = 0; flags < 4; flags++) {
        add(s, 65, 17, 63, flags, 0);
        add(s, 145, 40, 257, flags, 0);
        add(s, 7, 257, 15, flags, 0);
    }
    add(s, 300, 33, 65, 0, 'm');
    add(s, 33, 65, 300, IR_TRANSPOSE_A, 'k');
    s->max_batch = 300;
}

int main(int argc, char **argv) {
    static const char *const pairs[4] = {"nn", "tn", "nt", "tt"};
    const char *which = argc > 1 ? argv[1] : "";
    suite *s = calloc(1, sizeof *s);
    s->name = which;
    s->max_batch = 1;
    cg_options host = {.opt_level = 2};
    int known = 0;
    for (int flags = 0; flags < 4; flags++)
        if (!strcmp(which, pairs[flags])) {
            static const int64_t one[] = {1};
            static_sweep(s, flags);
            run_suite(s, &host, "-O2", one, 1);
            known = 1;
        }
    if (!strcmp(which, "batch")) {
        static const int64_t batches[] = {300, 1, 4, 7, 145, 257};
        batch_sweep(s);
        run_suite(s, &host, "-O2", batches, 6);
        known = 1;
    }
    if (!strcmp(which, "targets")) {
        static const int64_t batches[] = {300, 5};
        cg_options baseline = {.opt_level = 2, .cpu = "x86-64", .features = ""};
        cg_options haswell = {.opt_level = 2, .cpu = "haswell", .features = ""};
        cg_options o0 = {.opt_level = 0};
        target_sweep(s);
        run_suite(s, &baseline, "x86-64 -O2", batches, 2);
        run_suite(s, &haswell, "haswell -O2", batches, 2);
        run_suite(s, &o0, "-O0", batches, 2);
        known = 1;
    }
    free(s);
    if (!known) {
        fprintf(stderr, "usage: test_matmul nn|tn|nt|tt|batch|targets\n");
        return 2;
    }
    if (failures)
        fprintf(stderr, "%d failures\n", failures);
    return failures ? 1 : 0;
}
