/*
 * test_fuse.c - elementwise fusion (passes/fuse.c, the fused kernels of
 * codegen/cg_elementwise.c) against the reference interpreter.
 *
 *   test_fuse chains    a graph of long elementwise chains with shared
 *                       subexpressions, broadcast operands (also ones that
 *                       are elementwise nodes of a smaller shape), i32
 *                       arithmetic, casts both ways, comparisons, where, a
 *                       root that is also used, and a sum of more inputs
 *                       than one group may take; checks the grouping rule
 *                       on it, then runs every entry through the real
 *                       pipeline (entries, fusion, memory plan, JIT) in f32
 *                       and in the f64 variant against ir_eval.
 *   test_fuse pipeline  an MLP trained with Adam (whose update is the long
 *                       chain fusion is for): all four entries, and the f64
 *                       eval and grad entries, fused, against ir_eval.
 *   test_fuse unfused   fused code against unfused code (fuse_none): a
 *                       softmax cross-entropy classifier and the MLP, with
 *                       Adam, momentum and RMSprop; every entry's results
 *                       agree within float tolerance, and each optimizer
 *                       updates a parameter with its state in one kernel
 *                       (a group with outputs).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen.h"
#include "eval.h"
#include "ir.h"
#include "passes.h"

#define MAX_BATCH 8
#define BATCH 5
#define TEST_SEED 0x9E3779B97F4A7C15ull

#include "harness.h"

static int input_t(ir_graph *g, ir_dtype t, const char *spec) {
    char name[32];
    ir_shape s = S(spec);
    snprintf(name, sizeof name, "x%d", g->n_inputs);
    return ir_add_input(g, name, t, &s, 0);
}

static int cf(ir_graph *g, double v) {
    ir_shape s = ir_shape_scalar();
    return ir_const(g, IR_F32, &s, v);
}
static int ci(ir_graph *g, double v) {
    ir_shape s = ir_shape_scalar();
    return ir_const(g, IR_I32, &s, v);
}

static void output(ir_graph *g, int id) {
    char name[32];
    if (id < 0) {
        fail("building the graph: %s", g->error);
        return;
    }
    snprintf(name, sizeof name, "y%d", g->n_outputs);
    ir_add_output(g, name, id);
}

/* ------------------------------------------------------------ the arena */

static int close_enough(double got, double want, ir_dtype t, double tol) {
    if (t == IR_I32)
        return got == want;
    if (isnan(want) || isnan(got))
        return isnan(want) && isnan(got);
    return fabs(got - want) <= tol * (1 + fabs(want));
}

/* Random leaves: f32 in [-2, 2] (Adam's second moments >= 0), i32 in [-6, 6]. */
static double **leaf_values(const ir_graph *g) {
    double **v = calloc((size_t)g->n_nodes, sizeof *v);
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *n = &g->nodes[i];
        if (n->op != IR_INPUT && n->op != IR_PARAM && n->op != IR_HYPER)
            continue;
        int64_t count = ir_numel_at(&n->shape, BATCH);
        v[i] = malloc(sizeof(double) * (size_t)(count ? count : 1));
        for (int64_t j = 0; j < count; j++)
            v[i][j] = n->op == IR_HYPER    ? g->hypers[n->index].value
                      : n->dtype == IR_I32 ? floor(test_uniform(-6, 7))
                                           : test_uniform(-2, 2);
    }
    for (int p = 0; p < g->n_params; p++)
        if (!g->params[p].trainable)
            for (int64_t j = 0; j < ir_numel_at(&g->nodes[g->params[p].node].shape, BATCH); j++)
                v[g->params[p].node][j] = fabs(v[g->params[p].node][j]);
    return v;
}

/* Runs entry e (f32, or the f64 variant) on the leaves and checks its roots. */
static void run_entry(const ir_graph *g, const entries *es, const cg_jit *jit, const mem_plan *plan, entry_kind e,
                      int f64, double *const *want) {
    const entry *en = &es->e[e];
    cg_entry_fn fn = f64 ? cg_jit_entry_f64(jit, e) : cg_jit_entry(jit, e);
    char label[64];
    snprintf(label, sizeof label, "%s%s", en->name, f64 ? "_f64" : "");
    if (!fn) {
        fail("%s: missing", label);
        return;
    }
    int bytes = f64 ? 8 : 4;
    double tol = f64 ? 1e-12 : 1e-4;
    char *arena = aligned_alloc(64, (size_t)(plan->arena_bytes + 63) / 64 * 64);
    memset(arena, 0xA5, (size_t)plan->arena_bytes);
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *n = &g->nodes[i];
        if ((n->op == IR_INPUT || n->op == IR_PARAM || n->op == IR_HYPER) && want[i] && plan->offset[e][i] >= 0)
            for (int64_t j = 0; j < ir_numel_at(&n->shape, BATCH); j++)
                arena_put(arena, plan->offset[e][i], bytes, n->dtype, j, want[i][j]);
    }
    fn(arena, BATCH);
    for (int r = 0; r < en->n_roots; r++) {
        int id = en->roots[r];
        int slot = g->nodes[id].op == IR_ASSIGN ? g->nodes[id].inputs[0] : id;
        ir_dtype t = g->nodes[slot].dtype;
        int bad = 0;
        for (int64_t j = 0; j < ir_numel_at(&g->nodes[id].shape, BATCH) && bad < 3; j++) {
            double got = arena_get(arena, plan->offset[e][slot], bytes, t, j);
            if (!close_enough(got, want[id][j], t, tol)) {
                fail("%s: %%%d %s element %lld: got %.17g, want %.17g", label, id, ir_ops[g->nodes[id].op].name,
                     (long long)j, got, want[id][j]);
                bad++;
            }
        }
    }
    free(arena);
}

/* Whether the group of root has id among its members. */
static int member_of(const entries *es, int root, int id) {
    if (root < 0 || es->group_at[root] < 0)
        return 0;
    const fused_group *gr = &es->groups[es->group_at[root]];
    return ids_have(gr->members, gr->n_members, id);
}

static int kernel_of(const entries *es, int id) {
    return es->fused_into[id] >= 0 ? es->fused_into[id] : es->output_of[id] >= 0 ? es->output_of[id] : id;
}

/* Every member of a group but the root: its uses among live nodes all in
 * kernels that compute it (its group, or one that computes it again), the
 * root's shape (or the shape a reduction root reduces), no entry's root;
 * every member a group computes again reads only consts, earlier members
 * and the group's inputs. */
static void check_groups(const ir_graph *g, const entries *es) {
    unsigned char *live = calloc((size_t)g->n_nodes, 1);
    int *uses = calloc((size_t)g->n_nodes, sizeof *uses);
    for (int k = 0; k < ENTRY_COUNT; k++)
        for (int i = 0; es->e[k].present && i < g->n_nodes; i++)
            live[i] |= es->e[k].live[i];
    ir_count_uses(g, live, uses);
    for (int u = 0; u < g->n_nodes; u++) /* a numel reads only a shape */
        for (int q = 0; live[u] && g->nodes[u].op == IR_NUMEL && q < g->nodes[u].n_inputs; q++)
            uses[g->nodes[u].inputs[q]]--;
    for (int i = 0; i < g->n_nodes; i++) {
        int r = es->fused_into[i];
        if (r < 0)
            continue;
        if (uses[i] < 1)
            fail("%%%d is interior to %%%d but has no use", i, r);
        /* a group whose root is a reduction computes the reduced tensor */
        int like = fuse_is_elementwise(g, r) ? r : g->nodes[r].inputs[0];
        if (!ir_shape_equal(&g->nodes[i].shape, &g->nodes[like].shape))
            fail("%%%d is interior to %%%d but has another shape", i, r);
        for (int u = 0; u < g->n_nodes; u++)
            for (int q = 0; live[u] && q < g->nodes[u].n_inputs; q++)
                if (g->nodes[u].inputs[q] == i && u != r && es->fused_into[u] != r && es->output_of[u] != r &&
                    g->nodes[u].op != IR_NUMEL && !member_of(es, kernel_of(es, u), i))
                    fail("%%%d is interior to %%%d but used by %%%d outside the group", i, r, u);
        for (int k = 0; k < ENTRY_COUNT; k++) {
            for (int x = 0; es->e[k].present && x < es->e[k].n_roots; x++)
                if (es->e[k].roots[x] == i)
                    fail("%%%d is interior to %%%d but a root of %s", i, r, es->e[k].name);
            for (int s = 0; es->e[k].present && s < es->e[k].n_sched; s++)
                if (es->e[k].sched[s] == i)
                    fail("%%%d is interior to %%%d but scheduled in %s", i, r, es->e[k].name);
        }
    }
    for (int i = 0; i < es->n_groups; i++) {
        const fused_group *gr = &es->groups[i];
        for (int m = 0; m < gr->n_members; m++) {
            const ir_node *n = &g->nodes[gr->members[m]];
            if (kernel_of(es, gr->members[m]) == gr->root)
                continue;
            for (int q = 0; q < n->n_inputs; q++) {
                int x = n->inputs[q], found = g->nodes[x].op == IR_CONST;
                for (int p = 0; p < m; p++)
                    found |= gr->members[p] == x;
                for (int p = 0; p < gr->n_inputs; p++)
                    found |= gr->inputs[p] == x;
                if (!found)
                    fail("%%%d computes %%%d again without its input %%%d", gr->root, gr->members[m], x);
            }
        }
    }
    for (int i = 0; i < es->n_groups; i++)
        if (es->groups[i].n_inputs > FUSE_MAX_INPUTS || es->groups[i].n_members < 2)
            fail("group %%%d: %d inputs, %d members", es->groups[i].root, es->groups[i].n_inputs,
                 es->groups[i].n_members);
    free(live);
    free(uses);
}

/* entries, fusion, plan, JIT; every present entry and its f64 variant. */
static void run_graph(ir_graph *g, const char *name, void (*check)(const ir_graph *, const entries *)) {
    entries es;
    mem_plan plan;
    memset(&plan, 0, sizeof plan);
    if (ir_verify(g) != 0 || entries_build(g, &es) != 0) {
        fail("%s: passes: %s", name, g->error);
        entries_free(&es);
        return;
    }
    fuse_elementwise(g, &es);
    mp_plan_build(g, &es, &plan);
    check_groups(g, &es);
    if (check)
        check(g, &es);
    if (es.n_groups == 0)
        fail("%s: nothing was fused", name);
    double **want = leaf_values(g);
    if (ir_eval(g, NULL, BATCH, want) != 0) {
        fail("%s: ir_eval failed", name);
    } else {
        for (int level = 0; level <= 2; level += 2) {
            cg_options opt = {.opt_level = level, .f64_entries = 1};
            cg_jit *jit = cg_jit_create(g, &es, &plan, &opt);
            if (!jit) {
                fail("%s: no code at -O%d", name, level);
                continue;
            }
            for (int e = 0; e < ENTRY_COUNT; e++) {
                if (!es.e[e].present)
                    continue;
                run_entry(g, &es, jit, &plan, (entry_kind)e, 0, want);
                if (e == ENTRY_EVAL || e == ENTRY_GRAD)
                    run_entry(g, &es, jit, cg_jit_plan_f64(jit), (entry_kind)e, 1, want);
            }
            cg_jit_free(jit);
        }
    }
    ir_eval_release(g, NULL, want);
    for (int i = 0; i < g->n_nodes; i++)
        free(want[i]);
    free(want);
    mp_plan_free(&plan);
    entries_free(&es);
}

/* ------------------------------------------------------------ the chains */

static struct {
    int shared, used_twice, root_used, small_bias, interior, wide_sum, two_groups, base, again[2], read, again_root;
} chain_ids;

static ir_graph *chains_graph(void) {
    ir_graph *g = ir_graph_new("chains", "chains.mdl");
    g->max_batch = MAX_BATCH;
    int x = input_t(g, IR_F32, "B,37"), y = input_t(g, IR_F32, "B,37");
    int bias = input_t(g, IR_F32, "37"), s = input_t(g, IR_F32, "");
    int k = input_t(g, IR_I32, "B,37");
    int z4 = input_t(g, IR_F32, "3,B,1,5"), w4 = input_t(g, IR_F32, "5");

    /* a long chain with a broadcast operand and a node used twice by one user */
    int small = op2(g, IR_MUL, bias, cf(g, 2)); /* [37]: a broadcast operand, its own kernel */
    int a = op2(g, IR_MUL, x, small);
    int b = op2(g, IR_ADD, a, y);
    int c = op1(g, IR_TANH, b);
    int d = op2(g, IR_MUL, c, c); /* c used twice: a boundary */
    int e = op1(g, IR_EXP, op1(g, IR_NEG, op1(g, IR_ABS, d)));
    int cmp = op2(g, IR_GT, x, y);
    int w = ir_add(g, IR_WHERE, cmp, e, op1(g, IR_SQRT, op1(g, IR_ABS, y)));
    int kf = ir_cast(g, k, IR_F32);
    int kk = op2(g, IR_MUL, op2(g, IR_MUL, kf, cf(g, 0.5)), s);
    int lt = op2(g, IR_LT, k, op2(g, IR_ADD, k, ci(g, 1)));
    int z = op2(g, IR_MUL, op2(g, IR_ADD, w, kk), lt);
    for (int i = 0; i < 12; i++) /* a long chain of one input */
        z = op2(g, i % 2 ? IR_SUB : IR_MUL, z, cf(g, 0.75 + 0.01 * i));
    output(g, z);

    /* i32: arithmetic, casts both ways, an i32 comparison */
    int k3 = op2(g, IR_MUL, op2(g, IR_ADD, k, ci(g, 3)), k);
    int k4 = ir_cast(g, op2(g, IR_MUL, op1(g, IR_TANH, x), cf(g, 10)), IR_I32);
    int k5 = op2(g, IR_SUB, k3, k4);
    int k6 = op2(g, IR_DIV, k5, op2(g, IR_SUB, k, ci(g, 2)));
    output(g, op2(g, IR_ADD, k6, ir_cast(g, op2(g, IR_EQ, k, ci(g, 0)), IR_I32)));

    /* a shared subexpression: used by two nodes of one group, so computed
     * once in a register */
    int sh = op1(g, IR_SIGMOID, x);
    int u1 = op2(g, IR_ADD, sh, cf(g, 1));
    int u2 = op2(g, IR_MUL, sh, y);
    output(g, op2(g, IR_MUL, u1, u2));

    /* one used by two groups: stored (by the first), never computed twice */
    int sh2 = op1(g, IR_SIGMOID, y);
    output(g, op2(g, IR_ADD, sh2, cf(g, 1)));
    output(g, op2(g, IR_MUL, sh2, x));

    /* GELU's pattern: three values of one group read by a later one (one
     * that also reads a product, as the gradient reads dy W^T), which
     * computes the two cheap ones again from the one they derive from and
     * reads the erf */
    int t = op2(g, IR_MUL, x, y);
    int half = op2(g, IR_MUL, t, cf(g, 0.5)), scaled = op2(g, IR_MUL, t, cf(g, 0.7071));
    int one_erf = op2(g, IR_ADD, op1(g, IR_ERF, scaled), cf(g, 1));
    int first = op2(g, IR_MUL, half, one_erf);
    output(g, first);
    int dy = ir_matmul(g, y, input_t(g, IR_F32, "37,37"), 0);
    int later = op2(g, IR_MUL, op2(g, IR_ADD, op2(g, IR_MUL, half, y), scaled), op2(g, IR_MUL, one_erf, dy));
    output(g, later);

    /* a root that is also used */
    int r = op2(g, IR_SUB, x, y);
    output(g, r);
    output(g, op1(g, IR_RELU, op2(g, IR_MUL, r, cf(g, 3))));

    /* batch in the middle, broadcast over both sides */
    output(g, op1(g, IR_SIGMOID, op2(g, IR_MAX, op2(g, IR_MUL, z4, w4), op1(g, IR_NEG, z4))));

    /* more inputs than one group may read */
    int acc = input_t(g, IR_F32, "B,37");
    for (int i = 0; i < FUSE_MAX_INPUTS + 4; i++)
        acc = op2(g, IR_ADD, acc, op2(g, IR_MUL, input_t(g, IR_F32, i % 3 ? "B,37" : "37"), cf(g, 1 + i)));
    output(g, acc);

    chain_ids.shared = sh;
    chain_ids.used_twice = c;
    chain_ids.root_used = r;
    chain_ids.small_bias = small;
    chain_ids.interior = a;
    chain_ids.wide_sum = acc;
    chain_ids.two_groups = sh2;
    chain_ids.base = t;
    chain_ids.again[0] = half;
    chain_ids.again[1] = scaled;
    chain_ids.read = one_erf;
    chain_ids.again_root = later;
    return g;
}

static void check_chains(const ir_graph *g, const entries *es) {
    (void)g;
    if (es->fused_into[chain_ids.shared] < 0)
        fail("the sigmoid %%%d shared in one group was not fused", chain_ids.shared);
    if (es->fused_into[chain_ids.used_twice] < 0)
        fail("tanh %%%d (used twice by one node) was not fused", chain_ids.used_twice);
    if (es->fused_into[chain_ids.two_groups] >= 0)
        fail("the sigmoid %%%d read by two groups was fused into %%%d", chain_ids.two_groups,
             es->fused_into[chain_ids.two_groups]);
    if (es->output_of[chain_ids.base] < 0)
        fail("x * y %%%d, which a later group computes from, is not stored", chain_ids.base);
    for (int i = 0; i < 2; i++) {
        int v = chain_ids.again[i];
        if (es->output_of[v] >= 0 || !member_of(es, chain_ids.again_root, v))
            fail("%%%d is %s, not computed again by %%%d", v, es->output_of[v] >= 0 ? "stored" : "read",
                 chain_ids.again_root);
    }
    if (es->output_of[chain_ids.read] < 0 || member_of(es, chain_ids.again_root, chain_ids.read))
        fail("1 + erf %%%d is computed again, not stored and read", chain_ids.read);
    if (es->fused_into[chain_ids.root_used] >= 0)
        fail("the output %%%d was fused", chain_ids.root_used);
    if (es->fused_into[chain_ids.small_bias] >= 0)
        fail("the [37] operand %%%d was fused into a [B,37] group", chain_ids.small_bias);
    if (es->fused_into[chain_ids.interior] < 0)
        fail("x * small %%%d was not fused", chain_ids.interior);
    if (es->group_at[chain_ids.wide_sum] < 0)
        fail("the wide sum %%%d is not a group root", chain_ids.wide_sum);
}

static void test_chains(void) {
    ir_graph *g = chains_graph();
    run_graph(g, "chains", check_chains);
    ir_graph_free(g);
}

/* ------------------------------------------------------------ the MLP */

static void test_pipeline(void) {
    ir_graph *g = mlp("mlp", "x", "h", IR_TANH);
    if (ad_differentiate(g) || opt_lower(g)) {
        fail("pipeline: %s", g->error);
    } else {
        for (int round = 0; round < 16 && simplify(g) > 0; round++)
            ;
        run_graph(g, "pipeline", NULL);
    }
    ir_graph_free(g);
}

/* ------------------------------------------------------- fused vs unfused */

/* The roots of entry e run on `leaves` (f32), one array per root. */
static double **entry_results(const ir_graph *g, const entries *es, const mem_plan *plan, const cg_jit *jit,
                              entry_kind e, double *const *leaves) {
    const entry *en = &es->e[e];
    cg_entry_fn fn = cg_jit_entry(jit, e);
    char *arena = aligned_alloc(64, (size_t)(plan->arena_bytes + 63) / 64 * 64);
    memset(arena, 0xA5, (size_t)plan->arena_bytes);
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *n = &g->nodes[i];
        if ((n->op == IR_INPUT || n->op == IR_PARAM || n->op == IR_HYPER) && leaves[i] && plan->offset[e][i] >= 0)
            for (int64_t j = 0; j < ir_numel_at(&n->shape, BATCH); j++)
                arena_put(arena, plan->offset[e][i], 4, n->dtype, j, leaves[i][j]);
    }
    fn(arena, BATCH);
    double **out = calloc((size_t)en->n_roots, sizeof *out);
    for (int r = 0; r < en->n_roots; r++) {
        int id = en->roots[r], slot = g->nodes[id].op == IR_ASSIGN ? g->nodes[id].inputs[0] : id;
        int64_t count = ir_numel_at(&g->nodes[id].shape, BATCH);
        out[r] = malloc(sizeof(double) * (size_t)(count ? count : 1));
        for (int64_t j = 0; j < count; j++)
            out[r][j] = arena_get(arena, plan->offset[e][slot], 4, g->nodes[slot].dtype, j);
    }
    free(arena);
    return out;
}

/* Compiles g with fusion (fused = 1) or without, into es/plan/jit. */
static cg_jit *compile(ir_graph *g, entries *es, mem_plan *plan, int fused) {
    memset(plan, 0, sizeof *plan);
    if (entries_build(g, es) != 0) {
        fail("%s: entries: %s", g->model_name, g->error);
        return NULL;
    }
    if (fused)
        fuse_elementwise(g, es);
    else
        fuse_none(g, es);
    mp_plan_build(g, es, plan);
    cg_options opt = {.opt_level = 2};
    cg_jit *jit = cg_jit_create(g, es, plan, &opt);
    if (!jit)
        fail("%s: no code (%s)", g->model_name, fused ? "fused" : "unfused");
    return jit;
}

/* Every entry of g, fused against unfused; returns the groups with outputs. */
static int compare_fused(ir_graph *g) {
    entries es[2];
    mem_plan plan[2];
    cg_jit *jit[2];
    int with_outputs = 0;
    for (int f = 0; f < 2; f++)
        jit[f] = compile(g, &es[f], &plan[f], f);
    double **leaves = leaf_values(g);
    for (int e = 0; jit[0] && jit[1] && e < ENTRY_COUNT; e++) {
        if (!es[0].e[e].present)
            continue;
        double **got[2];
        for (int f = 0; f < 2; f++)
            got[f] = entry_results(g, &es[f], &plan[f], jit[f], (entry_kind)e, leaves);
        const entry *en = &es[0].e[e];
        for (int r = 0; r < en->n_roots; r++) {
            int id = en->roots[r], bad = 0;
            for (int64_t j = 0; j < ir_numel_at(&g->nodes[id].shape, BATCH) && bad < 3; j++)
                if (!close_enough(got[1][r][j], got[0][r][j], g->nodes[id].dtype, 1e-5)) {
                    fail("%s %s: %%%d element %lld: fused %.9g, unfused %.9g", g->model_name, en->name, id,
                         (long long)j, got[1][r][j], got[0][r][j]);
                    bad++;
                }
        }
        for (int f = 0; f < 2; f++) {
            for (int r = 0; r < en->n_roots; r++)
                free(got[f][r]);
            free(got[f]);
        }
    }
    if (es[0].e[ENTRY_TRAIN].present && es[1].e[ENTRY_TRAIN].n_sched >= es[0].e[ENTRY_TRAIN].n_sched)
        fail("%s: fusion left %d of %d train kernels", g->model_name, es[1].e[ENTRY_TRAIN].n_sched,
             es[0].e[ENTRY_TRAIN].n_sched);
    for (int i = 0; i < es[1].n_groups; i++)
        with_outputs += es[1].groups[i].n_outputs > 0;
    for (int i = 0; i < g->n_nodes; i++)
        free(leaves[i]);
    free(leaves);
    for (int f = 0; f < 2; f++) {
        if (jit[f])
            cg_jit_free(jit[f]);
        mp_plan_free(&plan[f]);
        entries_free(&es[f]);
    }
    return with_outputs;
}

/* x[B,6] -> dense(4) = logits; loss = mean over the batch of the cross
 * entropy of softmax(logits) with one-hot labels; output softmax. */
static ir_graph *classifier(void) {
    ir_graph *g = ir_graph_new("classifier", "classifier.mdl");
    g->max_batch = MAX_BATCH;
    ir_shape xs = S("B,6"), ls = S("B"), ws = S("6,4"), bs = S("4");
    int x = ir_add_input(g, "x", IR_F32, &xs, 0), labels = ir_add_input(g, "label", IR_I32, &ls, 1);
    int w = ir_add_param(g, "W", IR_F32, &ws, 1, IR_INIT_GLOROT_UNIFORM, 0, 0, 6, 4);
    int b = ir_add_param(g, "b", IR_F32, &bs, 1, IR_INIT_ZEROS, 0, 0, 0, 0);
    int z = op2(g, IR_ADD, ir_matmul(g, x, w, 0), b);
    int shifted = op2(g, IR_SUB, z, ir_reduce(g, IR_REDUCE_MAX, z, 2, 1));
    int e = op1(g, IR_EXP, shifted), total = ir_reduce(g, IR_REDUCE_SUM, e, 2, 1);
    int logp = op2(g, IR_SUB, shifted, op1(g, IR_LOG, total));
    int nll = op1(g, IR_NEG, ir_reduce(g, IR_REDUCE_SUM, op2(g, IR_MUL, ir_one_hot(g, labels, 4), logp), 2, 0));
    g->loss = op2(g, IR_DIV, ir_reduce(g, IR_REDUCE_SUM, nll, 1, 0), ir_numel(g, nll, 1));
    ir_add_output(g, "probs", op2(g, IR_DIV, e, total));
    return g;
}

static void test_unfused(void) {
    static const char *const optimizers[] = {"adam", "momentum", "rmsprop"};
    for (int o = 0; o < 3; o++)
        for (int model = 0; model < 2; model++) {
            ir_graph *g = model ? mlp("mlp", "x", "h", o == 1 ? IR_SIGMOID : IR_TANH) : classifier();
            free(g->optimizer);
            g->optimizer = strdup(optimizers[o]);
            if (ad_differentiate(g) || opt_lower(g)) {
                fail("%s %s: %s", g->model_name, optimizers[o], g->error);
            } else {
                for (int round = 0; round < 16 && simplify(g) > 0; round++)
                    ;
                int groups = compare_fused(g);
                if (groups < g->n_params / 3) /* one per trainable parameter */
                    fail("%s %s: %d groups with outputs for %d parameters and their state", g->model_name,
                         optimizers[o], groups, g->n_params);
            }
            ir_graph_free(g);
        }
}

int main(int argc, char **argv) {
    const char *only = argc > 1 ? argv[1] : NULL;
    int ran = 0;
    if (!only || strcmp(only, "chains") == 0)
        test_chains(), ran++;
    if (!only || strcmp(only, "pipeline") == 0)
        test_pipeline(), ran++;
    if (!only || strcmp(only, "unfused") == 0)
        test_unfused(), ran++;
    if (!ran) {
        fprintf(stderr, "unknown test '%s'\n", only);
        return 2;
    }
    if (failures)
        fprintf(stderr, "%d failures\n", failures);
    return failures ? 1 : 0;
}
