/*
 * test_epilogue.c - matmul epilogues (passes/epilogue.c, the epilogue
 * kernels of codegen/cg_matmul.c) against the reference interpreter and
 * against the same graph without them.
 *
 *   test_epilogue products  products followed by bias, activations, a
 *                           scalar, a ReLU mask, on both GEMM tiles (N a
 *                           multiple of 32 and large, or not), K over one cache
 *                           block, B untransposed and transposed, M the
 *                           batch (so blocked or plain loops by the batch),
 *                           a small product, products of a few rows split
 *                           over threads by columns; and cases the pass must
 *                           refuse.  Checks which groups took a product,
 *                           then runs predict at several batches: against
 *                           ir_eval, against the unfused kernels (float
 *                           tolerance), and on 1 and 3 threads (identical).
 *   test_epilogue training  an MLP trained with Adam: every entry, and the
 *                           f64 eval and grad entries (gradcheck's), with
 *                           the epilogues against ir_eval.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen.h"
#include "eval.h"
#include "ir.h"
#include "passes.h"

#define MAX_BATCH 40
#define TEST_SEED 0x9E3779B97F4A7C15ull

#include "harness.h"

void rt_set_threads(int n); /* runtime/rt_pool.c */

static int in(ir_graph *g, const char *spec) {
    char name[32];
    ir_shape s = S(spec);
    snprintf(name, sizeof name, "x%d", g->n_inputs);
    return ir_add_input(g, name, IR_F32, &s, 0);
}

static int cf(ir_graph *g, double v) {
    ir_shape s = ir_shape_scalar();
    return ir_const(g, IR_F32, &s, v);
}

static void out(ir_graph *g, int id) {
    char name[32];
    if (id < 0) {
        fail("building the graph: %s", g->error);
        return;
    }
    snprintf(name, sizeof name, "y%d", g->n_outputs);
    ir_add_output(g, name, id);
}

/* ------------------------------------------------------------ the graph */

typedef struct expect {
    int root, joins; /* the root of an epilogue group, or the user that must not take its product */
} expect;

static expect expected[16];
static int n_expected;

static void want(int root, int joins) { expected[n_expected++] = (expect){root, joins}; }

static int stored_roots[2]; /* epilogue groups that store outputs besides C */

static ir_graph *products_graph(void) {
    ir_graph *g = ir_graph_new("epilogues", "epilogues.mdl");
    g->max_batch = MAX_BATCH;
    n_expected = 0;
    int x = in(g, "B,300"), w = in(g, "300,96"), bias = in(g, "96");
    int w2 = in(g, "300,70"), bias2 = in(g, "70"), s = in(g, "");
    int h = in(g, "B,96"), wt = in(g, "96,300"), col = in(g, "B,1");
    int xs = in(g, "B,5"), ws = in(g, "5,8"), bs = in(g, "8");
    int xw = in(g, "B,1040"), ww = in(g, "1040,416"), wwt = in(g, "416,1040"), bw = in(g, "416");
    int xg = in(g, "B,512"), u = in(g, "512,512"), ut = in(g, "512,512"), bu = in(g, "512");

    /* the wide tile (N a multiple of 32, 17M multiply-adds at batch 40):
     * relu(x W + b) over five K slices, the same product alone (the
     * module's @mdl.sgemm.wide), and with B stored [N, K] */
    int y = op1(g, IR_RELU, op2(g, IR_ADD, ir_matmul(g, xw, ww, 0), bw));
    out(g, y);
    want(y, 1);
    out(g, ir_matmul(g, xw, ww, 0));
    y = op2(g, IR_MUL, ir_matmul(g, xw, wwt, IR_TRANSPOSE_B), op2(g, IR_GT, bw, cf(g, 0)));
    out(g, y);
    want(y, 1);
    /* relu(x W + b): two K slices */
    y = op1(g, IR_RELU, op2(g, IR_ADD, ir_matmul(g, x, w, 0), bias));
    out(g, y);
    want(y, 1);
    /* tanh(x W2 + b2) * s: the narrow tile (N = 70), a scalar */
    y = op2(g, IR_MUL, op1(g, IR_TANH, op2(g, IR_ADD, ir_matmul(g, x, w2, 0), bias2)), s);
    out(g, y);
    want(y, 1);
    /* (x W) * (h > 0): ReLU's backward mask, an input of C's shape */
    y = op2(g, IR_MUL, ir_matmul(g, x, w, 0), op2(g, IR_GT, h, cf(g, 0)));
    out(g, y);
    want(y, 1);
    /* sigmoid(x Wt^T + b): B stored [N, K] */
    y = op1(g, IR_SIGMOID, op2(g, IR_ADD, ir_matmul(g, x, wt, IR_TRANSPOSE_B), bias));
    out(g, y);
    want(y, 1);
    /* a product alone with its user: a group of two */
    y = op2(g, IR_SUB, ir_matmul(g, xs, ws, 0), bs);
    out(g, y);
    want(y, 1);
    /* a few rows (batch 1..3): the plain loops, split over the threads by
     * columns (B [512, 512] and its transpose: 256K multiply-adds a row) */
    y = op1(g, IR_TANH, op2(g, IR_ADD, ir_matmul(g, xg, u, 0), bu));
    out(g, y);
    want(y, 1);
    out(g, ir_matmul(g, xg, ut, IR_TRANSPOSE_B));
    /* stored outputs: x W + b and its sigmoid are results of their own
     * and read by the root; the epilogue stores both beside C (the wide
     * tile, then the narrow one) */
    for (int wide = 1; wide >= 0; wide--) {
        int t = op2(g, IR_ADD, ir_matmul(g, wide ? xw : x, wide ? ww : w, 0), wide ? bw : bias);
        int e = op1(g, IR_SIGMOID, t);
        out(g, t);
        out(g, e);
        y = op2(g, IR_ADD, op2(g, IR_MUL, e, cf(g, 2)), t);
        out(g, y);
        want(y, 1);
        stored_roots[wide] = y;
    }
    /* refused: a column vector [B, 1] (not a bias over N) */
    y = op2(g, IR_ADD, ir_matmul(g, x, w, 0), col);
    out(g, y);
    want(y, 0);
    /* refused: a product used twice */
    int p = ir_matmul(g, x, w2, 0);
    y = op2(g, IR_ADD, p, bias2);
    out(g, y);
    want(y, 0);
    out(g, op2(g, IR_MUL, p, cf(g, 2)));
    /* refused: a product that is an output itself */
    p = ir_matmul(g, xs, ws, 0);
    out(g, p);
    y = op1(g, IR_RELU, p);
    out(g, y);
    want(y, 0);
    return g;
}

/* Whether the group whose root is `root` (if any) took a product. */
static int has_product(const ir_graph *g, const entries *es, int root) {
    int at = es->group_at[root];
    return at >= 0 && epilogue_product(g, &es->groups[at]) >= 0;
}

static void check_grouping(const ir_graph *g, const entries *es) {
    for (int i = 0; i < n_expected; i++)
        if (has_product(g, es, expected[i].root) != expected[i].joins)
            fail("%%%d: %s", expected[i].root, expected[i].joins ? "took no product" : "took a product it must not");
    for (int i = 0; i < 2; i++)
        if (es->group_at[stored_roots[i]] < 0 || es->groups[es->group_at[stored_roots[i]]].n_outputs != 2)
            fail("%%%d: its epilogue group does not store x W + b and the sigmoid", stored_roots[i]);
    for (int i = 0; i < g->n_nodes; i++) /* an interior product is in no schedule */
        for (int k = 0; k < ENTRY_COUNT; k++)
            for (int s = 0; es->fused_into[i] >= 0 && s < es->e[k].n_sched; s++)
                if (es->e[k].sched[s] == i)
                    fail("interior %%%d is scheduled in %s", i, es->e[k].name);
}

/* ------------------------------------------------------------- running */

typedef struct compiled {
    entries es;
    mem_plan plan;
    cg_jit *jit;
} compiled;

static int compile(ir_graph *g, int epilogues, int parallel, compiled *c) {
    memset(c, 0, sizeof *c);
    if (entries_build(g, &c->es) != 0) {
        fail("entries: %s", g->error);
        return -1;
    }
    fuse_elementwise(g, &c->es);
    if (epilogues)
        epilogue_fuse(g, &c->es);
    mp_plan_build(g, &c->es, &c->plan);
    cg_options opt = {.opt_level = 2, .parallel = parallel, .f64_entries = 1};
    c->jit = cg_jit_create(g, &c->es, &c->plan, &opt);
    if (!c->jit) {
        fail("no code (epilogues %d, threads %d)", epilogues, parallel);
        return -1;
    }
    return 0;
}

static void release(compiled *c) {
    if (c->jit)
        cg_jit_free(c->jit);
    mp_plan_free(&c->plan);
    entries_free(&c->es);
}

/* Random leaves in [-1, 1] at batch `batch` (second moments made >= 0). */
static double **leaves(const ir_graph *g, int64_t batch) {
    double **v = calloc((size_t)g->n_nodes, sizeof *v);
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *n = &g->nodes[i];
        if (n->op != IR_INPUT && n->op != IR_PARAM && n->op != IR_HYPER)
            continue;
        int64_t count = ir_numel_at(&n->shape, batch);
        v[i] = malloc(sizeof(double) * (size_t)(count ? count : 1));
        for (int64_t j = 0; j < count; j++)
            v[i][j] = n->op == IR_HYPER ? g->hypers[n->index].value : test_uniform(-1, 1);
    }
    for (int p = 0; p < g->n_params; p++)
        if (!g->params[p].trainable)
            for (int64_t j = 0; j < ir_numel_at(&g->nodes[g->params[p].node].shape, batch); j++)
                v[g->params[p].node][j] = fabs(v[g->params[p].node][j]);
    return v;
}

/* The interpreter's value array: the leaves' values, the others for
 * ir_eval to fill.  Apart from leaf[], which run() writes into the arena:
 * a result there would be in place before the kernel that must write it
 * runs. */
static double **reference(const ir_graph *g, double *const *leaf) {
    double **v = calloc((size_t)g->n_nodes, sizeof *v);
    memcpy(v, leaf, (size_t)g->n_nodes * sizeof *v);
    return v;
}

static void free_leaves(const ir_graph *g, double **v) {
    for (int i = 0; i < g->n_nodes; i++)
        free(v[i]);
    free(v);
}

/* Runs entry e (f32 or its f64 variant) on the leaves; returns the arena
 * (the caller frees it) and the plan that lays it out. */
static char *run(const ir_graph *g, const compiled *c, entry_kind e, int f64, double *const *leaf, int64_t batch,
                 const mem_plan **plan) {
    *plan = f64 ? cg_jit_plan_f64(c->jit) : &c->plan;
    cg_entry_fn fn = f64 ? cg_jit_entry_f64(c->jit, e) : cg_jit_entry(c->jit, e);
    if (!fn || !*plan) {
        fail("%s%s: missing", c->es.e[e].name, f64 ? "_f64" : "");
        return NULL;
    }
    int bytes = f64 ? 8 : 4;
    char *arena = aligned_alloc(64, (size_t)((*plan)->arena_bytes + 63) / 64 * 64);
    memset(arena, 0xA5, (size_t)(*plan)->arena_bytes);
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *n = &g->nodes[i];
        if (leaf[i] && (*plan)->offset[e][i] >= 0)
            for (int64_t j = 0; j < ir_numel_at(&n->shape, batch); j++)
                arena_put(arena, (*plan)->offset[e][i], bytes, n->dtype, j, leaf[i][j]);
    }
    fn(arena, batch);
    return arena;
}

/* Element j of root r of entry e in an arena. */
static double root_value(const ir_graph *g, const mem_plan *plan, const char *arena, entry_kind e, int f64, int r,
                         int64_t j) {
    int slot = g->nodes[r].op == IR_ASSIGN ? g->nodes[r].inputs[0] : r;
    return arena_get(arena, plan->offset[e][slot], f64 ? 8 : 4, g->nodes[slot].dtype, j);
}

/* Every root of entry e against the interpreter's values (tolerance tol,
 * relative to 1 + |want|). */
static void check_entry(const ir_graph *g, const compiled *c, entry_kind e, int f64, double *const *leaf,
                        double *const *want, int64_t batch, double tol) {
    const mem_plan *plan;
    char *arena = run(g, c, e, f64, leaf, batch, &plan);
    if (!arena)
        return;
    const entry *en = &c->es.e[e];
    for (int i = 0; i < en->n_roots; i++) {
        int r = en->roots[i], bad = 0;
        for (int64_t j = 0; j < ir_numel_at(&g->nodes[r].shape, batch) && bad < 3; j++) {
            double got = root_value(g, plan, arena, e, f64, r, j);
            if (!(fabs(got - want[r][j]) <= tol * (1 + fabs(want[r][j])))) {
                fail("%s%s at batch %lld: %%%d element %lld: got %.9g, want %.9g", en->name, f64 ? "_f64" : "",
                     (long long)batch, r, (long long)j, got, want[r][j]);
                bad++;
            }
        }
    }
    free(arena);
}

/* ------------------------------------------------------------ the suites */

static void products(void) {
    ir_graph *g = products_graph();
    compiled plain, fused, threads;
    if (compile(g, 0, 0, &plain) == 0 && compile(g, 1, 0, &fused) == 0 && compile(g, 1, 1, &threads) == 0) {
        check_grouping(g, &fused.es);
        static const int64_t batches[] = {40, 13, 3, 1};
        for (size_t b = 0; b < sizeof batches / sizeof *batches; b++) {
            int64_t batch = batches[b];
            double **leaf = leaves(g, batch), **want = reference(g, leaf);
            if (ir_eval(g, NULL, batch, want) != 0) {
                fail("ir_eval failed");
            } else {
                /* sums of up to 1040 terms of about 1/3 in f32: a few 1e-5
                 * off the double reference; a lost term would be ~0.3 */
                check_entry(g, &fused, ENTRY_PREDICT, 0, leaf, want, batch, 1e-4);
                rt_set_threads(3);
                check_entry(g, &threads, ENTRY_PREDICT, 0, leaf, want, batch, 1e-4);
                /* fused against unfused; 1 against 3 threads, bit for bit */
                const mem_plan *p0, *p1, *p3;
                rt_set_threads(1);
                char *a0 = run(g, &plain, ENTRY_PREDICT, 0, leaf, batch, &p0);
                char *a1 = run(g, &fused, ENTRY_PREDICT, 0, leaf, batch, &p1);
                char *a1t = run(g, &threads, ENTRY_PREDICT, 0, leaf, batch, &p3);
                rt_set_threads(3);
                char *a3 = run(g, &threads, ENTRY_PREDICT, 0, leaf, batch, &p3);
                const entry *en = &fused.es.e[ENTRY_PREDICT];
                for (int i = 0; a0 && a1 && a1t && a3 && i < en->n_roots; i++) {
                    int r = en->roots[i];
                    for (int64_t j = 0; j < ir_numel_at(&g->nodes[r].shape, batch); j++) {
                        double u = root_value(g, p0, a0, ENTRY_PREDICT, 0, r, j);
                        double f = root_value(g, p1, a1, ENTRY_PREDICT, 0, r, j);
                        double t1 = root_value(g, p3, a1t, ENTRY_PREDICT, 0, r, j);
                        double t3 = root_value(g, p3, a3, ENTRY_PREDICT, 0, r, j);
                        if (!(fabs(u - f) <= 1e-5 * (1 + fabs(u)))) {
                            fail("batch %lld: %%%d element %lld: fused %.9g, unfused %.9g", (long long)batch, r,
                                 (long long)j, f, u);
                            break;
                        }
                        if (memcmp(&t1, &t3, sizeof t1) != 0) {
                            fail("batch %lld: %%%d element %lld: %.9g on 1 thread, %.9g on 3", (long long)batch, r,
                                 (long long)j, t1, t3);
                            break;
                        }
                    }
                }
                rt_set_threads(1);
                free(a0);
                free(a1);
                free(a1t);
                free(a3);
            }
            ir_eval_release(g, NULL, want);
            free(want);
            free_leaves(g, leaf);
        }
    }
    release(&plain);
    release(&fused);
    release(&threads);
    ir_graph_free(g);
}

/* The harness's MLP (dense, activation, dense, squared error, Adam): its
 * products are small (the plain loops; the blocked path is products'),
 * and the f64 variant's epilogues are what gradcheck runs. */
static void training(ir_op activation) {
    ir_graph *g = mlp("mlp", "x", "h", activation);
    compiled c;
    if (compile(g, 1, 0, &c) == 0) {
        int took = 0;
        for (int i = 0; i < c.es.n_groups; i++)
            took += epilogue_product(g, &c.es.groups[i]) >= 0;
        if (took < 2) /* forward dense + activation, backward mask or scale */
            fail("%s: %d groups took a product", ir_ops[activation].name, took);
        int64_t batch = 7;
        double **leaf = leaves(g, batch), **want = reference(g, leaf);
        if (ir_eval(g, NULL, batch, want) != 0) {
            fail("ir_eval failed");
        } else {
            for (int e = 0; e < ENTRY_COUNT; e++) {
                if (!c.es.e[e].present)
                    continue;
                check_entry(g, &c, (entry_kind)e, 0, leaf, want, batch, 1e-4);
                if (e == ENTRY_EVAL || e == ENTRY_GRAD)
                    check_entry(g, &c, (entry_kind)e, 1, leaf, want, batch, 1e-12);
            }
        }
        ir_eval_release(g, NULL, want);
        free(want);
        free_leaves(g, leaf);
    }
    release(&c);
    ir_graph_free(g);
}

int main(int argc, char **argv) {
    const char *which = argc > 1 ? argv[1] : "";
    if (!strcmp(which, "products")) {
        products();
    } else if (!strcmp(which, "training")) {
        training(IR_RELU);
        training(IR_TANH);
        training(IR_SIGMOID);
    } else {
        fprintf(stderr, "usage: test_epilogue products|training\n");
        return 2;
    }
    printf("%s: %d failures\n", which, failures);
    return failures != 0;
}
