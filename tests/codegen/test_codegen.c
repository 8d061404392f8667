/*
 * test_codegen.c - the generated code against the reference interpreter.
 *
 * For every op in ops.def there is a case, case_<name>, that builds a small
 * graph using the op in several ways (broadcasting, a batch dimension in
 * various places, CONST operands, both dtypes where the op allows) and
 * marks the results as outputs.  The harness gives the leaves random
 * values, runs the interpreter (ir/eval.c) in double precision, then
 * JIT-compiles the graph (cg_jit, the very object code mdlc would write)
 * under four memory plans and runs it at a batch below the compiled
 * maximum:
 *   -O0 and -O2 with every buffer apart (and a 64-byte gap before each),
 *   -O2 with a result computed in place over its operand (the kernel
 *       variant that reads through the output pointer),
 *   -O2 with a result partly overlapping its operand (no noalias).
 * Every result must match the interpreter (exactly for i32, to a relative
 * tolerance for f32), and no byte of the arena outside the elements the
 * run should write may change.  The case table is built from ops.def, so
 * an op without a case does not compile.
 *
 * Two more tests run the real pipeline (autodiff, optimizer, simplify,
 * entries, memory plan) on a small MLP: all four entries under the JIT,
 * then the object file from cg_compile with the descriptor from
 * cg_write_descriptor, linked into a little program by the system C
 * compiler, which checks the names survived escaping and prints results.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codegen.h"
#include "eval.h"
#include "ir.h"
#include "passes.h"

/* runtime/rt_pool.c, linked in for the runs built for threads */
void rt_set_threads(int n);

#define MAX_BATCH 8
#define BATCH 5
#define GAP 64
#define PATTERN 0xA5

#include "harness.h"

/* ----------------------------------------------------------- leaf values */

typedef enum {
    VALUES_ANY,      /* uniform in [-2, 2] */
    VALUES_POSITIVE, /* uniform in [0.1, 3] (log, sqrt, pow) */
    VALUES_FEW,      /* a few values, so ties and equalities occur */
    VALUES_SPECIAL,  /* also NaN, infinities, -0, and i32 extremes */
} values_kind;

static values_kind values = VALUES_ANY;
static double tolerance = 1e-5;

static double pick(const double *choices, int n) {
    int i = (int)test_uniform(0, n);
    return choices[i < n ? i : n - 1];
}

static double f32_value(void) {
    static const double few[] = {-2, -1, -0.5, 0, 0.5, 1, 2};
    static const double special[] = {NAN, INFINITY, -INFINITY, -0.0, 3e9, -3e9, 1e-40, 2.5, -2.5};
    switch (values) {
    case VALUES_POSITIVE: return (float)test_uniform(0.1, 3);
    case VALUES_FEW: return pick(few, 7);
    case VALUES_SPECIAL: return test_uniform(0, 1) < 0.4 ? (float)pick(special, 9) : pick(few, 7);
    default: return (float)test_uniform(-2, 2);
    }
}

static double i32_value(void) {
    static const double special[] = {-2147483648.0, 2147483647.0, -1, 0, 1, 65536};
    if (values == VALUES_SPECIAL && test_uniform(0, 1) < 0.4)
        return pick(special, 6);
    return floor(test_uniform(-6, 7));
}

/* --------------------------------------------------------- graph helpers */

static ir_graph *new_graph(void) {
    ir_graph *g = ir_graph_new("test", "test.mdl");
    g->max_batch = MAX_BATCH;
    return g;
}

static int input_t(ir_graph *g, ir_dtype t, const char *spec) {
    char name[32];
    ir_shape s = S(spec);
    snprintf(name, sizeof name, "x%d", g->n_inputs);
    int id = ir_add_input(g, name, t, &s, 0);
    if (id < 0)
        fail("input %s: %s", spec, g->error);
    return id;
}

static int input(ir_graph *g, const char *spec) { return input_t(g, IR_F32, spec); }
static int input_i32(ir_graph *g, const char *spec) { return input_t(g, IR_I32, spec); }

static int param(ir_graph *g, ir_dtype t, const char *spec) {
    char name[32];
    ir_shape s = S(spec);
    snprintf(name, sizeof name, "p%d", g->n_params);
    return ir_add_param(g, name, t, &s, 1, IR_INIT_ZEROS, 0, 0, 0, 0);
}

static void output(ir_graph *g, int id) {
    if (id < 0) {
        fail("building a case: %s", g->error);
        return;
    }
    char name[32];
    snprintf(name, sizeof name, "y%d", g->n_outputs);
    ir_add_output(g, name, id);
}

/* ------------------------------------------------------- entries & plans */

static int is_root(const ir_graph *g, int id) {
    for (int i = 0; i < g->n_outputs; i++)
        if (g->outputs[i].node == id)
            return 1;
    return g->nodes[id].op == IR_ASSIGN;
}

/* One entry (predict_step) computing every output and assign. */
static void hand_entries(ir_graph *g, entries *es) {
    memset(es, 0, sizeof *es);
    entry *e = &es->e[ENTRY_PREDICT];
    e->name = "predict_step";
    e->present = 1;
    e->roots = malloc(sizeof(int) * (size_t)g->n_nodes);
    e->live = calloc((size_t)g->n_nodes, 1);
    e->sched = malloc(sizeof(int) * (size_t)g->n_nodes);
    for (int i = 0; i < g->n_nodes; i++)
        if (is_root(g, i))
            e->roots[e->n_roots++] = i;
    ir_mark_live(g, e->roots, e->n_roots, e->live);
    entries_schedule(g, e);
}

static int64_t bytes_at(const ir_graph *g, int id, int64_t batch) {
    return ir_numel_at(&g->nodes[id].shape, batch) * 4;
}

typedef enum { PLAN_APART, PLAN_IN_PLACE, PLAN_OVERLAP } plan_kind;

/* A result that may sit on its operand: elementwise (or reshape) over an
 * operand of its shape, used nowhere else and not itself moved onto
 * another buffer (an overlap of an overlap would reach a third one). */
static int can_share(const ir_graph *g, const entry *e, int id, const int *uses, const unsigned char *shared) {
    const ir_node *n = &g->nodes[id];
    ir_class c = ir_ops[n->op].cls;
    if (c != IR_UNARY && c != IR_BINARY && c != IR_TERNARY && n->op != IR_RESHAPE)
        return 0;
    int x = n->inputs[0];
    return e->live[x] && !shared[x] && g->nodes[x].op != IR_CONST && uses[x] == 1 && !is_root(g, x) &&
           ir_shape_numel(&g->nodes[x].shape) == ir_shape_numel(&n->shape) &&
           g->nodes[x].shape.batch_mask == n->shape.batch_mask;
}

static void hand_plan(const ir_graph *g, const entries *es, plan_kind kind, mem_plan *plan) {
    const entry *e = &es->e[ENTRY_PREDICT];
    int *uses = malloc(sizeof(int) * (size_t)g->n_nodes);
    unsigned char *shared = calloc((size_t)g->n_nodes, 1);
    ir_count_uses(g, e->live, uses);
    memset(plan, 0, sizeof *plan);
    plan->n_nodes = g->n_nodes;
    for (int k = 0; k < ENTRY_COUNT; k++) {
        plan->offset[k] = malloc(sizeof(int64_t) * (size_t)g->n_nodes);
        for (int i = 0; i < g->n_nodes; i++)
            plan->offset[k][i] = -1;
    }
    int64_t at = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        ir_op op = g->nodes[i].op;
        if (!e->live[i] || op == IR_CONST || op == IR_ASSIGN)
            continue;
        if (kind != PLAN_APART && can_share(g, e, i, uses, shared)) {
            int64_t x = plan->offset[ENTRY_PREDICT][g->nodes[i].inputs[0]];
            shared[i] = 1;
            plan->offset[ENTRY_PREDICT][i] = kind == PLAN_IN_PLACE ? x : x - GAP;
            continue;
        }
        at += GAP;
        plan->offset[ENTRY_PREDICT][i] = at;
        at += (bytes_at(g, i, MAX_BATCH) + 63) / 64 * 64;
    }
    plan->persistent_bytes = at;
    plan->arena_bytes = at + GAP;
    free(uses);
    free(shared);
}

static void free_entries(entries *es) {
    for (int k = 0; k < ENTRY_COUNT; k++) {
        free(es->e[k].roots);
        free(es->e[k].live);
        free(es->e[k].sched);
    }
}

/* ------------------------------------------------------------ the arena */

static char *new_arena(int64_t bytes) {
    size_t size = (size_t)(bytes + 255) / 64 * 64;
    char *arena = aligned_alloc(64, size);
    memset(arena, PATTERN, size);
    return arena;
}

/* n elements of a tensor, f32 elements `bytes` wide (4, or 8 in the f64
 * variant) */
static void store(char *arena, int64_t offset, int bytes, ir_dtype t, const double *v, int64_t n) {
    for (int64_t i = 0; i < n; i++)
        arena_put(arena, offset, bytes, t, i, v[i]);
}

static int close_enough(double got, double want, ir_dtype t, double tol) {
    if (t == IR_I32)
        return got == want;
    if (isnan(want) || isnan(got))
        return isnan(want) && isnan(got);
    if (isinf(want) || fabs(want) > 3.4e38)
        return got == (float)want;
    return fabs(got - want) <= tol * (1 + fabs(want));
}

/* Compares the value of root `id` in the arena with the interpreter's. */
static void check_root(const ir_graph *g, const char *label, const char *arena, const int64_t *offset, int id,
                       double *const *want, int64_t batch, double tol) {
    int slot = g->nodes[id].op == IR_ASSIGN ? g->nodes[id].inputs[0] : id;
    ir_dtype t = g->nodes[slot].dtype;
    int64_t n = ir_numel_at(&g->nodes[id].shape, batch);
    int bad = 0;
    for (int64_t i = 0; i < n && bad < 3; i++) {
        double got = arena_get(arena, offset[slot], 4, t, i);
        if (!close_enough(got, want[id][i], t, tol)) {
            fail("%s: %%%d %s element %lld: got %.9g, want %.9g", label, id, ir_ops[g->nodes[id].op].name, (long long)i,
                 got, want[id][i]);
            bad++;
        }
    }
}

/* No byte outside [offset, offset + bytes at `batch`) of some buffer may change. */
static void check_untouched(const ir_graph *g, const char *label, const char *arena, const mem_plan *plan, entry_kind e,
                            int64_t batch) {
    int64_t size = plan->arena_bytes + 128;
    unsigned char *written = calloc((size_t)size, 1);
    for (int i = 0; i < g->n_nodes; i++)
        if (plan->offset[e][i] >= 0)
            memset(written + plan->offset[e][i], 1, (size_t)bytes_at(g, i, batch));
    for (int64_t b = 0; b < size; b++)
        if (!written[b] && (unsigned char)arena[b] != PATTERN) {
            fail("%s: byte %lld of the arena changed outside every result", label, (long long)b);
            break;
        }
    free(written);
}

/* ------------------------------------------------------------- the harness */

/* Random values for every live leaf the caller supplies. */
static double **leaf_values(const ir_graph *g, const unsigned char *live, int64_t batch) {
    double **v = calloc((size_t)g->n_nodes, sizeof *v);
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *n = &g->nodes[i];
        if ((live && !live[i]) || (n->op != IR_INPUT && n->op != IR_PARAM && n->op != IR_HYPER))
            continue;
        int64_t count = ir_numel_at(&n->shape, batch);
        v[i] = malloc(sizeof(double) * (size_t)(count ? count : 1));
        for (int64_t j = 0; j < count; j++)
            v[i][j] = n->op == IR_HYPER ? g->hypers[n->index].value : n->dtype == IR_I32 ? i32_value() : f32_value();
    }
    return v;
}

static void free_values(const ir_graph *g, const unsigned char *live, double **v) {
    ir_eval_release(g, live, v);
    for (int i = 0; i < g->n_nodes; i++)
        free(v[i]);
    free(v);
}

static void write_leaves(const ir_graph *g, char *arena, const int64_t *offset, double *const *v, int64_t batch) {
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *n = &g->nodes[i];
        if ((n->op == IR_INPUT || n->op == IR_PARAM || n->op == IR_HYPER) && v[i] && offset[i] >= 0)
            store(arena, offset[i], 4, n->dtype, v[i], ir_numel_at(&n->shape, batch));
    }
}

/* Cases that set this run once more built for the runtime's threads
 * (cg_options.parallel: mdl_rt_sgemm, mdl_rt_parallel_for from the
 * runtime linked into this test, on 3 threads). */
static int also_parallel;

static void run_plan(ir_graph *g, const char *name, const entries *es, plan_kind kind, int opt_level,
                     double *const *want, int parallel) {
    static const char *const kinds[] = {"apart", "in place", "overlapping"};
    char label[96];
    snprintf(label, sizeof label, "%s (-O%d, %s%s)", name, opt_level, kinds[kind], parallel ? ", threads" : "");
    mem_plan plan;
    hand_plan(g, es, kind, &plan);
    cg_options opt = {.opt_level = opt_level, .parallel = parallel};
    rt_set_threads(parallel ? 3 : 1);
    cg_jit *jit = cg_jit_create(g, es, &plan, &opt);
    if (!jit) {
        fail("%s: cg_jit_create failed", label);
        mp_plan_free(&plan);
        return;
    }
    char *arena = new_arena(plan.arena_bytes);
    const int64_t *offset = plan.offset[ENTRY_PREDICT];
    write_leaves(g, arena, offset, want, BATCH);
    cg_jit_entry(jit, ENTRY_PREDICT)(arena, BATCH);
    const entry *e = &es->e[ENTRY_PREDICT];
    for (int r = 0; r < e->n_roots; r++)
        check_root(g, label, arena, offset, e->roots[r], want, BATCH, tolerance);
    check_untouched(g, label, arena, &plan, ENTRY_PREDICT, BATCH);
    free(arena);
    cg_jit_free(jit);
    mp_plan_free(&plan);
}

/* Runs a case's graph under every plan and compares with the interpreter. */
static void run_case(ir_graph *g, const char *name) {
    if (ir_verify(g) != 0) {
        fail("%s: the case graph is invalid: %s", name, g->error);
        ir_graph_free(g);
        return;
    }
    entries es;
    hand_entries(g, &es);
    const unsigned char *live = es.e[ENTRY_PREDICT].live;
    double **want = leaf_values(g, live, BATCH);
    if (ir_eval(g, live, BATCH, want) != 0) {
        fail("%s: ir_eval failed", name);
    } else {
#ifdef CODEGEN_F64_RUN /* test_codegen_f64.c: the f64 variant instead */
        CODEGEN_F64_RUN(g, name, &es, want);
        (void)run_plan;
#else
        run_plan(g, name, &es, PLAN_APART, 0, want, 0);
        run_plan(g, name, &es, PLAN_APART, 2, want, 0);
        run_plan(g, name, &es, PLAN_IN_PLACE, 2, want, 0);
        run_plan(g, name, &es, PLAN_OVERLAP, 2, want, 0);
        if (also_parallel) {
            run_plan(g, name, &es, PLAN_APART, 2, want, 1);
            run_plan(g, name, &es, PLAN_IN_PLACE, 2, want, 1);
        }
#endif
    }
    free_values(g, live, want);
    free_entries(&es);
    ir_graph_free(g);
    values = VALUES_ANY;
    tolerance = 1e-5;
    also_parallel = 0;
}

/* ------------------------------------------------------------ the cases
 * case_<name>: builds the graph for op <name>; run_case does the rest. */

/* f32 shapes an elementwise op meets: odd lengths for vector remainders,
 * the batch dim inner and outer, a scalar, literal 1s. */
static const char *const unary_shapes[] = {"B,37", "3,B,1,5", "", "1,B,1"};

static ir_graph *unary_case(ir_op op, int with_i32) {
    ir_graph *g = new_graph();
    for (size_t i = 0; i < sizeof unary_shapes / sizeof *unary_shapes; i++)
        output(g, op1(g, op, input(g, unary_shapes[i])));
    if (with_i32) {
        output(g, op1(g, op, input_i32(g, "B,19")));
        output(g, op1(g, op, input_i32(g, "")));
    }
    return g;
}

static void case_neg(void) {
    values = VALUES_SPECIAL;
    run_case(unary_case(IR_NEG, 1), "neg");
}

static void case_exp(void) { run_case(unary_case(IR_EXP, 0), "exp"); }

static void case_log(void) {
    values = VALUES_POSITIVE;
    run_case(unary_case(IR_LOG, 0), "log");
}

static void case_sqrt(void) {
    values = VALUES_POSITIVE;
    run_case(unary_case(IR_SQRT, 0), "sqrt");
}

static void case_abs(void) {
    values = VALUES_SPECIAL;
    run_case(unary_case(IR_ABS, 1), "abs");
}

static void case_sign(void) {
    values = VALUES_SPECIAL;
    run_case(unary_case(IR_SIGN, 1), "sign");
}

static void case_tanh(void) { run_case(unary_case(IR_TANH, 0), "tanh"); }
static void case_sigmoid(void) { run_case(unary_case(IR_SIGMOID, 0), "sigmoid"); }

static void case_relu(void) {
    values = VALUES_SPECIAL;
    run_case(unary_case(IR_RELU, 1), "relu");
}

/* The polynomial erf against libm's in double: ~1e-7 over ordinary values,
 * then infinities, NaN, -0 and denormals. */
static void case_erf(void) {
    tolerance = 2.5e-7;
    run_case(unary_case(IR_ERF, 0), "erf");
    values = VALUES_SPECIAL;
    tolerance = 2.5e-7;
    run_case(unary_case(IR_ERF, 0), "erf");
}

static void case_stop_gradient(void) {
    values = VALUES_SPECIAL;
    run_case(unary_case(IR_STOP_GRADIENT, 1), "stop_gradient");
}

/* f32 -> i32 (truncating, saturating, NaN -> 0), i32 -> f32, and identities */
static void case_cast(void) {
    ir_graph *g = new_graph();
    values = VALUES_SPECIAL;
    output(g, ir_cast(g, input(g, "B,21"), IR_I32));
    output(g, ir_cast(g, input(g, "3,B"), IR_I32));
    output(g, ir_cast(g, input_i32(g, "B,13"), IR_F32));
    output(g, ir_cast(g, input(g, "B,4"), IR_F32));
    output(g, ir_cast(g, input_i32(g, "4"), IR_I32));
    run_case(g, "cast");
}

/* shape pairs for binary ops: equal, trailing broadcast, both sides
 * stretching, scalar against batch, batch in the middle */
static const char *const binary_shapes[][2] = {
    {"B,37", "B,37"}, {"B,3,4", "4"}, {"B,1,4", "3,1"}, {"", "B,6"}, {"B,1", "1,9"}, {"2,B,3", "B,1"}, {"5", ""},
};

static ir_graph *binary_case(ir_op op, int with_i32) {
    ir_graph *g = new_graph();
    for (size_t i = 0; i < sizeof binary_shapes / sizeof *binary_shapes; i++)
        output(g, op2(g, op, input(g, binary_shapes[i][0]), input(g, binary_shapes[i][1])));
    /* CONST operands are folded into the code */
    ir_shape row = S("1,4");
    output(g, op2(g, op, input(g, "B,4"), ir_scalar(g, 1.5)));
    output(g, op2(g, op, ir_const(g, IR_F32, &row, -0.5), input(g, "B,3,1")));
    if (with_i32) {
        output(g, op2(g, op, input_i32(g, "B,23"), input_i32(g, "B,23")));
        output(g, op2(g, op, input_i32(g, "B,3"), input_i32(g, "3")));
        ir_shape scalar = S("");
        output(g, op2(g, op, input_i32(g, "B,5"), ir_const(g, IR_I32, &scalar, 3)));
    }
    return g;
}

static void case_add(void) {
    values = VALUES_SPECIAL; /* i32 wraps */
    ir_graph *g = binary_case(IR_ADD, 1);
    /* big enough (>= 64K elements) that the threads build splits the
     * outer loop, broadcasting a row over it */
    output(g, op2(g, IR_ADD, input(g, "B,150,100"), input(g, "100")));
    also_parallel = 1;
    run_case(g, "add");
}

static void case_sub(void) {
    values = VALUES_SPECIAL;
    run_case(binary_case(IR_SUB, 1), "sub");
}

static void case_mul(void) {
    values = VALUES_SPECIAL;
    run_case(binary_case(IR_MUL, 1), "mul");
}

/* i32 division by 0 and INT_MIN / -1 are defined (see eval.h) */
static void case_div(void) {
    values = VALUES_SPECIAL;
    run_case(binary_case(IR_DIV, 1), "div");
}

static void case_pow(void) {
    values = VALUES_POSITIVE;
    run_case(binary_case(IR_POW, 0), "pow");
}

static void case_min(void) {
    values = VALUES_SPECIAL;
    run_case(binary_case(IR_MIN, 1), "min");
}

static void case_max(void) {
    values = VALUES_SPECIAL;
    run_case(binary_case(IR_MAX, 1), "max");
}

static void comparison_case(ir_op op, const char *name) {
    values = VALUES_SPECIAL;
    run_case(binary_case(op, 1), name);
}

static void case_lt(void) { comparison_case(IR_LT, "lt"); }
static void case_le(void) { comparison_case(IR_LE, "le"); }
static void case_gt(void) { comparison_case(IR_GT, "gt"); }
static void case_ge(void) { comparison_case(IR_GE, "ge"); }
static void case_eq(void) { comparison_case(IR_EQ, "eq"); }
static void case_ne(void) { comparison_case(IR_NE, "ne"); }

static void case_where(void) {
    ir_graph *g = new_graph();
    ir_shape scalar = S("");
    values = VALUES_SPECIAL;
    output(g, ir_add(g, IR_WHERE, input(g, "B,1"), input(g, "B,4"), input(g, "4")));
    output(g, ir_add(g, IR_WHERE, input(g, "B,33"), input(g, "B,33"), input(g, "B,33")));
    output(g, ir_add(g, IR_WHERE, input_i32(g, "B,3"), input_i32(g, "3"), input_i32(g, "B,1")));
    output(g, ir_add(g, IR_WHERE, input_i32(g, "3,B"), input(g, "B"), ir_const(g, IR_F32, &scalar, 7)));
    run_case(g, "where");
}

/* ------------------------------------------------------------- reductions */

static void case_reduce_sum(void) {
    ir_graph *g = new_graph();
    for (uint32_t axes = 0; axes < 8; axes++)
        output(g, ir_reduce(g, IR_REDUCE_SUM, input(g, "B,3,4"), axes, (int)(axes & 1)));
    output(g, ir_reduce(g, IR_REDUCE_SUM, input(g, "B,300"), 2, 0));     /* long rows, inner reduced */
    output(g, ir_reduce(g, IR_REDUCE_SUM, input(g, "B,300"), 1, 1));     /* inner kept, two tiles */
    output(g, ir_reduce(g, IR_REDUCE_SUM, input(g, "40,B"), 1, 0));      /* inner kept, run-time tiles */
    output(g, ir_reduce(g, IR_REDUCE_SUM, input(g, "2,B,1,3,5"), 5, 0)); /* alternating groups */
    output(g, ir_reduce(g, IR_REDUCE_SUM, input(g, "2,B,1,3,5"), 10, 1));
    output(g, ir_reduce(g, IR_REDUCE_SUM, input(g, ""), 0, 0));
    output(g, ir_reduce(g, IR_REDUCE_SUM, input_i32(g, "B,7"), 1, 0));
    output(g, ir_reduce(g, IR_REDUCE_SUM, input_i32(g, "B,7"), 2, 0));
    /* >= 64K elements: the threads build splits the outermost group */
    output(g, ir_reduce(g, IR_REDUCE_SUM, input(g, "B,64,4,65"), 8, 1)); /* inner reduced */
    output(g, ir_reduce(g, IR_REDUCE_SUM, input(g, "B,64,300"), 2, 0));  /* inner kept */
    also_parallel = 1;
    run_case(g, "reduce_sum");
}

/* NaN anywhere makes the max NaN (IEEE maximum, as PyTorch's max), over
 * rows short and long enough for the vector loop, and infinities win */
static void case_reduce_max_special(void) {
    ir_graph *g = new_graph();
    values = VALUES_SPECIAL;
    for (uint32_t axes = 0; axes < 8; axes++)
        output(g, ir_reduce(g, IR_REDUCE_MAX, input(g, "B,3,4"), axes, 1));
    output(g, ir_reduce(g, IR_REDUCE_MAX, input(g, "B,37"), 2, 1));
    run_case(g, "reduce_max_special");
}

static void case_reduce_max(void) {
    ir_graph *g = new_graph();
    for (uint32_t axes = 0; axes < 8; axes++)
        output(g, ir_reduce(g, IR_REDUCE_MAX, input(g, "B,3,4"), axes, (int)(axes >> 1 & 1)));
    output(g, ir_reduce(g, IR_REDUCE_MAX, input(g, "B,300"), 1, 0));
    output(g, ir_reduce(g, IR_REDUCE_MAX, input(g, "B,300"), 2, 0));
    output(g, ir_reduce(g, IR_REDUCE_MAX, input_i32(g, "B,7"), 1, 1));
    output(g, ir_reduce(g, IR_REDUCE_MAX, input_i32(g, "B,7"), 3, 0));
    output(g, ir_reduce(g, IR_REDUCE_MAX, input(g, "B,256,65"), 4, 1)); /* split over threads */
    also_parallel = 1;
    run_case(g, "reduce_max");
    case_reduce_max_special();
}

/* ties (few values) and NaN (skipped), along every axis including the batch */
static void case_argmax(void) {
    ir_graph *g = new_graph();
    values = VALUES_SPECIAL;
    output(g, ir_argmax(g, input(g, "B,37"), -1));
    for (int axis = 0; axis < 3; axis++)
        output(g, ir_argmax(g, input(g, "3,B,5"), axis));
    output(g, ir_argmax(g, input(g, "B,4"), 0));
    output(g, ir_argmax(g, input(g, "7"), 0));
    output(g, ir_argmax(g, input_i32(g, "B,7"), 1));
    output(g, ir_argmax(g, input_i32(g, "B,300"), -1));
    run_case(g, "argmax");
}

static void case_sum_to(void) {
    static const char *const targets[] = {"4", "3,1", "1,4", "", "B,1,4", "B,3,4", "1,3,1", "B,1,1"};
    ir_graph *g = new_graph();
    for (size_t i = 0; i < sizeof targets / sizeof *targets; i++) {
        ir_shape to = S(targets[i]);
        output(g, ir_sum_to(g, input(g, "B,3,4"), &to));
    }
    ir_shape row = S("300"), i32_to = S("5");
    output(g, ir_sum_to(g, input(g, "B,300"), &row));
    output(g, ir_sum_to(g, input_i32(g, "B,5"), &i32_to));
    /* split over threads by chunks of columns: 300 is no multiple of a
     * chunk, and a thread's columns may span more than one tile */
    ir_shape wide = S("300"), heads = S("4,33");
    output(g, ir_sum_to(g, input(g, "B,64,300"), &wide));
    output(g, ir_sum_to(g, input(g, "B,64,4,33"), &heads));
    also_parallel = 1;
    run_case(g, "sum_to");
}

static void case_numel(void) {
    ir_graph *g = new_graph();
    for (uint32_t axes = 0; axes < 8; axes++)
        output(g, ir_numel(g, input(g, "3,B,4"), axes));
    run_case(g, "numel");
}

/* ---------------------------------------------------------- data movement */

static void case_broadcast(void) {
    static const char *const pairs[][2] = {
        {"4", "B,3,4"}, {"3,1", "B,3,5"}, {"", "B,2"}, {"B,1", "B,6"}, {"B,3", "2,B,3"}, {"1,1", "2,7"},
    };
    ir_graph *g = new_graph();
    for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++) {
        ir_shape to = S(pairs[i][1]);
        output(g, ir_broadcast(g, input(g, pairs[i][0]), &to));
    }
    ir_shape to = S("B,3"), scalar = S("");
    output(g, ir_broadcast(g, ir_const(g, IR_F32, &scalar, 2.5), &to));
    output(g, ir_broadcast(g, input_i32(g, "3"), &to));
    run_case(g, "broadcast");
}

static void case_reshape(void) {
    static const char *const pairs[][2] = {{"B,3,4", "B,12"}, {"B,12", "3,B,4"}, {"2,6", "3,4"}, {"B", "B,1"}};
    ir_graph *g = new_graph();
    for (size_t i = 0; i < sizeof pairs / sizeof *pairs; i++) {
        ir_shape to = S(pairs[i][1]);
        output(g, ir_reshape(g, input(g, pairs[i][0]), &to));
    }
    ir_shape to = S("6");
    output(g, ir_reshape(g, input_i32(g, "2,3"), &to));
    /* a reshape of a computed value, so the in-place plans apply */
    ir_shape flat = S("B,20");
    output(g, ir_reshape(g, op1(g, IR_NEG, input(g, "B,4,5")), &flat));
    /* >= 64K elements, no multiple of the threads' pieces: a split copy */
    ir_shape heads = S("B,64,4,33");
    output(g, ir_reshape(g, input(g, "B,64,132"), &heads));
    also_parallel = 1;
    run_case(g, "reshape");
}

/* -------------------------------------------------------------- indexing */

/* labels in [-6, 7) and i32 extremes: many outside [0, n), which give zero rows */
static void case_one_hot(void) {
    ir_graph *g = new_graph();
    values = VALUES_SPECIAL;
    output(g, ir_one_hot(g, input_i32(g, "B"), 10));
    output(g, ir_one_hot(g, input_i32(g, "3,B"), 4));
    output(g, ir_one_hot(g, input_i32(g, ""), 5));
    output(g, ir_one_hot(g, input_i32(g, "B,2"), 1));
    run_case(g, "one_hot");
}

/* rows of [7,5] / [3,33] tables, many indices outside [0, V): zero rows */
static void case_gather(void) {
    ir_graph *g = new_graph();
    ir_shape t = S("4,3");
    values = VALUES_SPECIAL;
    output(g, ir_gather(g, input(g, "7,5"), input_i32(g, "B")));
    output(g, ir_gather(g, input(g, "3,33"), input_i32(g, "B,3")));
    output(g, ir_gather(g, input_i32(g, "6,2"), input_i32(g, "2,B")));
    output(g, ir_gather(g, input(g, "2,4"), input_i32(g, "")));
    output(g, ir_gather(g, ir_const(g, IR_F32, &t, 1.5), input_i32(g, "B")));
    run_case(g, "gather");
}

/* collisions (few distinct indices) and dropped ones; sums in f32 */
static void case_scatter_add(void) {
    ir_graph *g = new_graph();
    tolerance = 1e-5;
    output(g, ir_scatter_add(g, input(g, "B,5"), input_i32(g, "B"), 7));
    output(g, ir_scatter_add(g, input(g, "3,B,37"), input_i32(g, "3,B"), 4));
    output(g, ir_scatter_add(g, input(g, "1"), input_i32(g, ""), 2));
    run_case(g, "scatter_add");
}

/* ------------------------------------------------------------ window ops */

/* (image, weights, stride, padding): 1x1 and 3x3 kernels, non-square
 * images and kernels, strides that do not divide evenly, padding wider
 * than the kernel's reach, one channel, long rows for the vectoriser, a
 * static N.  Both of cg_conv.c's ways: the loops (fewer than 4 outputs
 * channels) and the GEMM path (the rest), the latter with padding, stride
 * 2, rows entirely in the padding, and an image whose output rows come in
 * several chunks (64 x 3 x 3 x 40 floats a row: a row a chunk). */
static const struct conv_case {
    const char *x, *w;
    int stride, padding;
} conv_cases[] = {
    {"B,1,28,28", "4,1,3,3", 1, 0},   {"B,3,9,37", "4,3,3,5", 1, 1}, {"B,2,7,6", "3,2,2,3", 2, 1},
    {"B,2,8,8", "2,2,3,3", 3, 2},     {"B,5,4,4", "6,5,1,1", 1, 0},  {"2,3,5,6", "2,3,5,6", 1, 0},
    {"B,1,3,3", "1,1,3,3", 2, 3},     {"B,4,11,13", "5,4,4,4", 2, 2}, {"B,4,5,5", "4,4,3,3", 1, 3},
    {"B,64,3,40", "4,64,3,3", 1, 1},
};

static void case_conv2d(void) {
    ir_graph *g = new_graph();
    tolerance = 1e-4;
    for (size_t i = 0; i < sizeof conv_cases / sizeof *conv_cases; i++) {
        const struct conv_case *c = &conv_cases[i];
        output(g, ir_conv2d(g, input(g, c->x), input(g, c->w), c->stride, c->padding));
    }
    also_parallel = 1;
    run_case(g, "conv2d");
}

/* the adjoints take dy of the forward output's shape */
static void case_conv2d_grad_input(void) {
    ir_graph *g = new_graph();
    tolerance = 1e-4;
    for (size_t i = 0; i < sizeof conv_cases / sizeof *conv_cases; i++) {
        const struct conv_case *c = &conv_cases[i];
        ir_shape xs = S(c->x);
        int y = ir_conv2d(g, input(g, c->x), input(g, c->w), c->stride, c->padding); /* for its shape */
        ir_shape ys = g->nodes[y].shape;
        int dy = ir_add_input(g, "dy", IR_F32, &ys, 0);
        output(g, ir_conv2d_grad_input(g, dy, input(g, c->w), c->stride, c->padding, &xs));
    }
    also_parallel = 1;
    run_case(g, "conv2d_grad_input");
}

static void case_conv2d_grad_weight(void) {
    ir_graph *g = new_graph();
    tolerance = 1e-4;
    for (size_t i = 0; i < sizeof conv_cases / sizeof *conv_cases; i++) {
        const struct conv_case *c = &conv_cases[i];
        ir_shape ws = S(c->w);
        int y = ir_conv2d(g, input(g, c->x), input(g, c->w), c->stride, c->padding);
        ir_shape ys = g->nodes[y].shape;
        int dy = ir_add_input(g, "dy", IR_F32, &ys, 0);
        output(g, ir_conv2d_grad_weight(g, input(g, c->x), dy, c->stride, c->padding, &ws));
    }
    also_parallel = 1;
    run_case(g, "conv2d_grad_weight");
}

/* (image, size, stride): non-overlapping, overlapping, leftover rows and
 * columns, a window the size of the image; windows up to 4x4 are scanned
 * unrolled by cg_pool.c, the 5x5 one by loops */
static const struct pool_case {
    const char *x;
    int size, stride;
} pool_cases[] = {
    {"B,3,26,26", 2, 2}, {"B,2,11,11", 2, 2}, {"B,2,7,9", 3, 1},   {"B,1,8,5", 3, 2},
    {"2,2,4,4", 4, 4},   {"B,1,37,3", 1, 1},  {"B,2,11,12", 5, 3},
};

/* Ties (few values) everywhere, whose first-maximum rule eval.c shares;
 * NaN and infinities where nothing is added up (in f32 a sum of 3e9 and
 * -3e9 loses what the interpreter's double keeps). */
static void pool_case(ir_op op, const char *name) {
    ir_graph *g = new_graph();
    values = op == IR_MAX_POOL2D || op == IR_MAX_POOL2D_PICK ? VALUES_SPECIAL : VALUES_FEW;
    for (size_t i = 0; i < sizeof pool_cases / sizeof *pool_cases; i++) {
        const struct pool_case *c = &pool_cases[i];
        int x = input(g, c->x);
        int y = op == IR_AVG_POOL2D ? ir_avg_pool2d(g, x, c->size, c->stride) : ir_max_pool2d(g, x, c->size, c->stride);
        ir_shape xs = S(c->x), ys = g->nodes[y].shape;
        if (op == IR_MAX_POOL2D || op == IR_AVG_POOL2D)
            output(g, y);
        else if (op == IR_MAX_POOL2D_GRAD)
            output(g, ir_max_pool2d_grad(g, x, ir_add_input(g, "dy", IR_F32, &ys, 0), c->size, c->stride));
        else if (op == IR_MAX_POOL2D_PICK)
            output(g, ir_max_pool2d_pick(g, x, input(g, c->x), c->size, c->stride));
        else
            output(g, ir_avg_pool2d_grad(g, ir_add_input(g, "dy", IR_F32, &ys, 0), c->size, c->stride, &xs));
    }
    run_case(g, name);
}

static void case_max_pool2d(void) { pool_case(IR_MAX_POOL2D, "max_pool2d"); }
static void case_max_pool2d_grad(void) { pool_case(IR_MAX_POOL2D_GRAD, "max_pool2d_grad"); }
static void case_max_pool2d_pick(void) { pool_case(IR_MAX_POOL2D_PICK, "max_pool2d_pick"); }
static void case_avg_pool2d(void) { pool_case(IR_AVG_POOL2D, "avg_pool2d"); }
static void case_avg_pool2d_grad(void) { pool_case(IR_AVG_POOL2D_GRAD, "avg_pool2d_grad"); }

/* ----------------------------------------------------------------- dropout */

static ir_graph *dropout_graph(double training, double step) {
    ir_graph *g = new_graph();
    ir_shape s = S("B,3");
    output(g, ir_dropout(g, input(g, "B,37"), 0.5));
    output(g, ir_dropout(g, input(g, "3,B,1,5"), 0.1));
    output(g, ir_dropout(g, input(g, "B,300"), 0.9));
    output(g, ir_dropout(g, input(g, "B,4"), 0));
    output(g, ir_dropout(g, ir_const(g, IR_F32, &s, 2.5), 0.25));
    g->hypers[g->nodes[ir_get_hyper(g, "training", 0)].index].value = training;
    g->hypers[g->nodes[ir_get_hyper(g, "step", 0)].index].value = step;
    return g;
}

/* The share of elements dropout keeps, per the interpreter (which the
 * kernels match bit for bit): close to 1 - p for every step, and the
 * masks of two steps or two seeds differ. */
static void check_dropout_rate(double p) {
    ir_graph *g = new_graph();
    ir_shape s = S("100,100");
    int a = ir_dropout(g, ir_const(g, IR_F32, &s, 1), p), b = ir_dropout(g, ir_const(g, IR_F32, &s, 1), p);
    g->hypers[g->nodes[ir_get_hyper(g, "training", 0)].index].value = 1;
    double **v = calloc((size_t)g->n_nodes, sizeof *v);
    double training = 1, step = 0;
    v[ir_get_hyper(g, "training", 0)] = &training;
    v[ir_get_hyper(g, "step", 0)] = &step;
    for (int k = 0; k < 3 && ir_eval(g, NULL, 1, v) == 0; k++, step += 1000) {
        double kept = 0, same = 0;
        double *first = malloc(sizeof(double) * 10000);
        memcpy(first, v[a], sizeof(double) * 10000);
        for (int i = 0; i < 10000; i++) {
            kept += v[a][i] != 0;
            same += (v[a][i] != 0) == (v[b][i] != 0);
        }
        if (fabs(kept / 10000 - (1 - p)) > 0.02 || (p > 0 && same == 10000))
            fail("dropout p=%g step %g: kept %g of 10000, %g agree with a second mask", p, step, kept, same);
        ir_eval_release(g, NULL, v);
        step += 1;
        ir_eval(g, NULL, 1, v);
        int moved = 0;
        for (int i = 0; i < 10000; i++)
            moved += (v[a][i] != 0) != (first[i] != 0);
        if (p > 0 && moved == 0)
            fail("dropout p=%g: the mask did not change with the step", p);
        ir_eval_release(g, NULL, v);
        free(first);
    }
    free(v);
    ir_graph_free(g);
}

/* while training (odd sizes, p = 0, a CONST input) and not: the identity */
static void case_dropout(void) {
    run_case(dropout_graph(1, 12345), "dropout");
    run_case(dropout_graph(1, 3e9), "dropout"); /* the step saturates as an i32 */
    run_case(dropout_graph(0, 5), "dropout");
    check_dropout_rate(0.5);
    check_dropout_rate(0.1);
    check_dropout_rate(0);
}

/* -------------------------------------------------------------- movement */

static int perm_of(const char *spec, int *perm) {
    int n = 0;
    for (const char *p = spec; *p; p++)
        if (*p >= '0' && *p <= '9')
            perm[n++] = *p - '0';
    return n;
}

static void case_transpose(void) {
    static const char *const cases[][2] = {
        {"B,5", "1,0"},
        {"3,B,1,5", "3,1,0,2"},
        {"2,3,4,B", "3,0,1,2"},
        {"2,3,4,5", "0,3,1,2"},
        {"2,3,4,5", "2,3,0,1"},
        {"B,7,1", "2,0,1"},
        {"6", "0"},
        {"B,3,4", "0,1,2"},
        {"B,4,6,5", "0,1,3,2"}, /* attention's k^T */
        {"B,6,4,5", "0,2,1,3"}, /* [B,T,H,D] -> [B,H,T,D] */
    };
    ir_graph *g = new_graph();
    int perm[IR_MAX_RANK];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        perm_of(cases[i][1], perm);
        output(g, ir_transpose(g, input(g, cases[i][0]), perm));
    }
    output(g, ir_transpose(g, input(g, "B,3,33"), NULL));
    output(g, ir_transpose(g, input_i32(g, "5,B"), NULL));
    /* >= 64K elements: the threads build splits the first loop */
    perm_of("0,2,1,3", perm);
    output(g, ir_transpose(g, input(g, "B,64,4,33"), perm));
    also_parallel = 1;
    run_case(g, "transpose");
}

static void case_slice(void) {
    ir_graph *g = new_graph();
    output(g, ir_slice(g, input(g, "B,37"), 1, 3, 36));
    output(g, ir_slice(g, input(g, "B,37"), 1, 0, 37));
    output(g, ir_slice(g, input(g, "5,B,3"), 0, 4, 5));
    output(g, ir_slice(g, input(g, "2,B,7,3"), 2, 2, 5));
    output(g, ir_slice(g, input_i32(g, "B,6"), -1, 1, 2));
    output(g, ir_slice(g, op1(g, IR_NEG, input(g, "4,9")), -2, 1, 3));
    output(g, ir_slice(g, input(g, "B,64,385"), 2, 128, 257)); /* split over threads */
    also_parallel = 1;
    run_case(g, "slice");
}

static void case_pad(void) {
    ir_graph *g = new_graph();
    ir_shape a = S("B,40"), b = S("7,B,3"), c = S("2,B,9,3"), d = S("B,6"), e = S("3");
    output(g, ir_pad(g, input(g, "B,37"), 1, 2, &a));
    output(g, ir_pad(g, input(g, "5,B,3"), 0, 0, &b));
    output(g, ir_pad(g, input(g, "2,B,7,3"), 2, 2, &c));
    output(g, ir_pad(g, input_i32(g, "B,1"), 1, 5, &d));
    output(g, ir_pad(g, ir_const(g, IR_F32, &(ir_shape){1, {1}, 0}, 2.5), 0, 1, &e));
    ir_shape f = S("B,64,385"), h = S("B,64,385");
    output(g, ir_pad(g, input(g, "B,64,129"), 2, 128, &f)); /* zeros on both sides, split over threads */
    output(g, ir_pad(g, input(g, "B,64,128"), 2, 257, &h)); /* nothing after the run */
    /* i32: a zero left unwritten reads as the arena's pattern, which as an
     * f32 is within the tolerance of 0 */
    output(g, ir_pad(g, input_i32(g, "B,64,129"), 2, 128, &f));
    also_parallel = 1;
    run_case(g, "pad");
}

static void case_concat(void) {
    ir_graph *g = new_graph();
    output(g, ir_concat(g, input(g, "B,37"), input(g, "B,3"), 1));
    output(g, ir_concat(g, input(g, "5,B,3"), input(g, "2,B,3"), 0));
    output(g, ir_concat(g, input(g, "2,B,7,3"), input(g, "2,B,7,1"), -1));
    output(g, ir_concat(g, input_i32(g, "B,2"), input_i32(g, "B,5"), 1));
    ir_shape s = S("B,3");
    output(g, ir_concat(g, ir_const(g, IR_F32, &s, -1), input(g, "B,4"), 1));
    output(g, ir_concat(g, input(g, "B,64,129"), input(g, "B,64,128"), 2)); /* split over threads */
    also_parallel = 1;
    run_case(g, "concat");
}

static void case_iota(void) {
    ir_graph *g = new_graph();
    ir_shape a = S("7,1"), b = S("B,3,5"), c = S("37");
    output(g, ir_iota(g, IR_F32, &a, 0));
    output(g, ir_iota(g, IR_F32, &b, 1));
    output(g, ir_iota(g, IR_I32, &b, 0)); /* along the run-time batch */
    output(g, op2(g, IR_LE, ir_iota(g, IR_F32, &c, 0), input(g, "37")));
    run_case(g, "iota");
}

/* -------------------------------------------------------------- matmul */

static void case_matmul(void) {
    ir_graph *g = new_graph();
    tolerance = 1e-4;
    output(g, ir_matmul(g, input(g, "B,5"), input(g, "5,7"), 0));              /* M = batch */
    output(g, ir_matmul(g, input(g, "B,5"), input(g, "B,7"), IR_TRANSPOSE_A)); /* K = batch */
    output(g, ir_matmul(g, input(g, "B,5"), input(g, "7,5"), IR_TRANSPOSE_B)); /* dot products */
    output(g, ir_matmul(g, input(g, "6,B"), input(g, "7,6"), IR_TRANSPOSE_A | IR_TRANSPOSE_B));
    output(g, ir_matmul(g, input(g, "3,B"), input(g, "B,33"), 0)); /* K = batch */
    output(g, ir_matmul(g, input(g, "B,33"), input(g, "33,40"), 0));
    output(g, ir_matmul(g, input(g, "9,33"), input(g, "B,33"), IR_TRANSPOSE_B)); /* N = batch */
    output(g, ir_matmul(g, input(g, "1,1"), input(g, "1,1"), 0));
    output(g, ir_matmul(g, input(g, "B,300"), input(g, "300,200"), 0)); /* split over threads */
    output(g, ir_matmul(g, input(g, "B,6,40"), input(g, "40,24"), 0));     /* M = B*6: a dense layer per step */
    output(g, ir_matmul(g, input(g, "B,6,40"), input(g, "24,40"), IR_TRANSPOSE_B));
    output(g, ir_matmul(g, input(g, "B,6,40"), input(g, "B,6,24"), IR_TRANSPOSE_A)); /* K = B*6 */
    also_parallel = 1;
    run_case(g, "matmul");
}

/* Batched products [S.., M, K] @ [S.., K, N]: a GPT's attention, q k^T and
 * p v with their adjoints' transposes (S = [B, 4], split over threads), the
 * batch in the middle of S, a CONST side, products too small for a tile,
 * and products large enough for sgemm's own split. */
static void case_matmul_batched(void) {
    ir_graph *g = new_graph();
    const int T_A = IR_TRANSPOSE_A, T_B = IR_TRANSPOSE_B;
    tolerance = 1e-4;
    output(g, ir_matmul_batched(g, input(g, "B,4,64,32"), input(g, "B,4,64,32"), T_B, 2)); /* q k^T */
    output(g, ir_matmul_batched(g, input(g, "B,4,64,64"), input(g, "B,4,64,32"), 0, 2));   /* p v */
    output(g, ir_matmul_batched(g, input(g, "B,4,64,64"), input(g, "B,4,64,32"), T_A, 2)); /* p^T dy */
    output(g, ir_matmul_batched(g, input(g, "B,4,64,32"), input(g, "B,4,64,32"), T_A, 2)); /* dy^T q */
    output(g, ir_matmul_batched(g, input(g, "3,B,5,7"), input(g, "3,B,4,5"), T_A | T_B, 2));
    output(g, ir_matmul_batched(g, input(g, "B,1,9"), input(g, "B,9,3"), 0, 1)); /* M = 1 */
    ir_shape c = S("2,3,4");
    output(g, ir_matmul_batched(g, ir_const(g, IR_F32, &c, 0.5), input(g, "2,4,5"), 0, 1));
    output(g, ir_matmul_batched(g, input(g, "2,5,4"), ir_const(g, IR_F32, &c, -2), T_B, 1));
    output(g, ir_matmul_batched(g, input(g, "2,200,300"), input(g, "2,300,90"), 0, 1));
    also_parallel = 1;
    run_case(g, "matmul_batched");
}

/* ------------------------------------------------------------------ leaves */

static void case_input(void) {
    ir_graph *g = new_graph();
    output(g, op2(g, IR_ADD, input(g, "B,3"), input(g, "3")));
    output(g, op2(g, IR_MUL, input_i32(g, "B"), input_i32(g, "B")));
    run_case(g, "input");
}

static void case_param(void) {
    ir_graph *g = new_graph();
    output(g, op2(g, IR_MUL, input(g, "B,3"), param(g, IR_F32, "3")));
    output(g, op2(g, IR_SUB, param(g, IR_I32, "2,2"), param(g, IR_I32, "")));
    run_case(g, "param");
}

static void case_const(void) {
    ir_graph *g = new_graph();
    ir_shape col = S("3,1"), bshape = S("B,2");
    output(g, op2(g, IR_SUB, ir_scalar(g, 0.25), input(g, "B,3")));
    output(g, op2(g, IR_ADD, ir_const(g, IR_F32, &col, -3), input(g, "B,1,4")));
    output(g, ir_broadcast(g, ir_const(g, IR_F32, &bshape, 9), &bshape));
    run_case(g, "const");
}

static void case_hyper(void) {
    ir_graph *g = new_graph();
    int lr = ir_add_hyper(g, "lr", 0.1);
    output(g, op2(g, IR_MUL, lr, input(g, "B,6")));
    run_case(g, "hyper");
}

static void case_assign(void) {
    ir_graph *g = new_graph();
    ir_shape s = S("3,4");
    int p = param(g, IR_F32, "3,4"), q = param(g, IR_I32, "5"), r = param(g, IR_F32, "3,4");
    int updated = op2(g, IR_SUB, p, op2(g, IR_MUL, ir_scalar(g, 0.5), input(g, "3,4")));
    ir_assign(g, p, updated); /* reads p, then overwrites it */
    ir_assign(g, q, op2(g, IR_ADD, q, input_i32(g, "5")));
    ir_assign(g, r, ir_const(g, IR_F32, &s, 0.75)); /* a CONST value */
    run_case(g, "assign");
}

/* A recurrence with two carries (h_t = tanh(x_t W + h U), c_t = c
 * sigmoid(h_t) + h_t) over 5 steps, with its stacked h's and both finals
 * as outputs; the scan_steps hyper at 0 runs all steps.  `reverse` runs
 * them from the last, `axis` is where the steps lie in xs and the stack. */
static void recurrence(const char *name, int reverse, int axis) {
    ir_graph *g = new_graph();
    int xs = input(g, axis == 1 ? "B,5,3" : "5,B,3");
    ir_shape hs = S("B,4");
    int h0 = ir_broadcast(g, param(g, IR_F32, "4"), &hs), c0 = input(g, "B,4");
    int W = param(g, IR_F32, "3,4"), U = param(g, IR_F32, "4,4");
    int scan = ir_scan_begin(g, 5, reverse);
    int h = ir_scan_carry(g, scan, h0), c = ir_scan_carry(g, scan, c0);
    int x = ir_scan_slice(g, scan, xs, axis);
    int h2 = op1(g, IR_TANH, op2(g, IR_ADD, ir_matmul(g, x, W, 0), ir_matmul(g, h, U, 0)));
    int c2 = op2(g, IR_ADD, op2(g, IR_MUL, c, op1(g, IR_SIGMOID, h2)), h2);
    ir_scan_set_next(g, h, h2);
    ir_scan_set_next(g, c, c2);
    ir_scan_end(g, scan);
    output(g, ir_scan_stack(g, scan, h2, axis));
    output(g, ir_scan_final(g, scan, h));
    output(g, ir_scan_final(g, scan, c));
    run_case(g, name);
}
static void case_scan(void) { recurrence("scan", 0, 1); }
static void case_scan_carry(void) { recurrence("scan_carry reverse", 1, 1); }
static void case_scan_slice(void) { recurrence("scan_slice axis 0", 0, 0); }
static void case_scan_stack(void) { recurrence("scan_stack reverse axis 0", 1, 0); }
static void case_scan_final(void) { recurrence("scan_final", 0, 1); }

typedef void (*case_fn)(void);
static const case_fn cases[IR_OP_COUNT] = {
#define OP(id, name, arity, class) [IR_##id] = case_##name,
#include "ops.def"
#undef OP
};

/* ----------------------------------------------- the real pipeline: an MLP */


static int run_passes(ir_graph *g, entries *es, mem_plan *plan) {
    if (ad_differentiate(g) || opt_lower(g)) {
        fail("passes: %s", g->error);
        return -1;
    }
    simplify(g);
    if (entries_build(g, es)) {
        fail("entries: %s", g->error);
        return -1;
    }
    mp_plan_build(g, es, plan);
    return 0;
}

/* A recurrent model trained with Adam: two carries over 5 steps, a loss
 * on the stacked h's and on both finals, so the train and grad entries run
 * the forward scan with its stash and the backward scan. */
static ir_graph *recurrent_model(void) {
    ir_graph *g = new_graph();
    free(g->optimizer);
    g->optimizer = strdup("adam");
    ir_shape xs_shape = S("B,5,3"), ts_shape = S("B,5,4"), hs = S("B,4"), w = S("3,4"), u = S("4,4"), p = S("4");
    int xs = ir_add_input(g, "xs", IR_F32, &xs_shape, 0), target = ir_add_input(g, "t", IR_F32, &ts_shape, 1);
    int W = ir_add_param(g, "W", IR_F32, &w, 1, IR_INIT_GLOROT_UNIFORM, 0, 0, 3, 4);
    int U = ir_add_param(g, "U", IR_F32, &u, 1, IR_INIT_GLOROT_UNIFORM, 0, 0, 4, 4);
    int h0 = ir_broadcast(g, ir_add_param(g, "h0", IR_F32, &p, 1, IR_INIT_CONSTANT, 0.1, 0, 0, 0), &hs);
    int scan = ir_scan_begin(g, 5, 0);
    int h = ir_scan_carry(g, scan, h0), c = ir_scan_carry(g, scan, ir_const(g, IR_F32, &hs, 0));
    int x = ir_scan_slice(g, scan, xs, 1);
    int h2 = op1(g, IR_TANH, op2(g, IR_ADD, ir_matmul(g, x, W, 0), ir_matmul(g, h, U, 0)));
    int c2 = op2(g, IR_ADD, op2(g, IR_MUL, c, op1(g, IR_SIGMOID, h2)), h2);
    ir_scan_set_next(g, h, h2);
    ir_scan_set_next(g, c, c2);
    ir_scan_end(g, scan);
    int stacked = ir_scan_stack(g, scan, h2, 1);
    int d = op2(g, IR_SUB, stacked, target);
    int fin = op2(g, IR_MUL, ir_scan_final(g, scan, h), ir_scan_final(g, scan, c));
    g->loss = op2(g, IR_ADD, ir_reduce(g, IR_REDUCE_SUM, op2(g, IR_MUL, d, d), 7, 0), ir_reduce(g, IR_REDUCE_SUM, fin, 3, 0));
    ir_add_output(g, "hs", stacked);
    return g;
}

/* All four entries of a model, JIT-compiled against the interpreter. */
static void test_pipeline_of(ir_graph *g) {
    entries es;
    mem_plan plan;
    memset(&es, 0, sizeof es);
    memset(&plan, 0, sizeof plan);
    if (run_passes(g, &es, &plan) == 0) {
        double **want = leaf_values(g, NULL, BATCH);
        /* Adam's second moment must not start negative (sqrt) */
        for (int p = 0; p < g->n_params; p++)
            if (!g->params[p].trainable)
                want[g->params[p].node][0] = fabs(want[g->params[p].node][0]);
        cg_options opt = {.opt_level = 2};
        cg_jit *jit = ir_eval(g, NULL, BATCH, want) == 0 ? cg_jit_create(g, &es, &plan, &opt) : NULL;
        for (int e = 0; jit && e < ENTRY_COUNT; e++) {
            char label[64];
            snprintf(label, sizeof label, "pipeline %s", es.e[e].name);
            if ((e == ENTRY_GENERATE || e == ENTRY_PREPARE) && !es.e[e].present)
                continue; /* only models with state have them */
            if (!es.e[e].present || !cg_jit_entry(jit, (entry_kind)e)) {
                fail("%s: missing", label);
                continue;
            }
            char *arena = new_arena(plan.arena_bytes);
            write_leaves(g, arena, plan.offset[e], want, BATCH);
            cg_jit_entry(jit, (entry_kind)e)(arena, BATCH);
            for (int r = 0; r < es.e[e].n_roots; r++)
                check_root(g, label, arena, plan.offset[e], es.e[e].roots[r], want, BATCH, 1e-4);
            free(arena);
        }
        if (!jit)
            fail("pipeline: no code");
        cg_jit_free(jit);
        free_values(g, NULL, want);
    }
    entries_free(&es);
    mp_plan_free(&plan);
    ir_graph_free(g);
}

static void test_pipeline(void) {
    test_pipeline_of(mlp("mlp", "x", "h", IR_RELU));
    test_pipeline_of(recurrent_model());
}

/* ----------------------------------- the object file and the descriptor */

static int run(const char *command) {
    int rc = system(command);
    if (rc != 0)
        fail("`%s` exited with %d", command, rc);
    return rc;
}

/* The value the little program stores in element j of the t-th tensor. */
static double probe(int t, int64_t j) { return (float)sin(0.37 * (double)j + 1.3 * t); }

/* A program that fills every param, input and target with probe values,
 * runs predict_step and eval_step and prints the names and the results. */
static const char driver_source[] =
    "#include <math.h>\n#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n#include \"mdlrt.h\"\n"
    "static void fill(char *arena, const rt_tensor *t, int k, int64_t batch) {\n"
    "    int64_t n = 1;\n"
    "    for (int d = 0; d < t->rank; d++) n *= (t->batch_mask >> d) & 1 ? batch : t->dims[d];\n"
    "    for (int64_t j = 0; j < n; j++) { float v = (float)sin(0.37 * (double)j + 1.3 * k);\n"
    "        memcpy(arena + t->offset + 4 * j, &v, 4); }\n}\n"
    "static void show(const char *arena, const rt_tensor *t, int64_t batch) {\n"
    "    int64_t n = 1;\n"
    "    for (int d = 0; d < t->rank; d++) n *= (t->batch_mask >> d) & 1 ? batch : t->dims[d];\n"
    "    for (int64_t j = 0; j < n; j++) { float v; memcpy(&v, arena + t->offset + 4 * j, 4);\n"
    "        printf(\"%.9g\\n\", v); }\n}\n"
    "int main(int argc, char **argv) {\n"
    "    int64_t batch = atoi(argv[1]);\n"
    "    char *arena = aligned_alloc(64, (size_t)(mdl_model.arena_bytes + 63) / 64 * 64);\n"
    "    int k = 0;\n"
    "    (void)argc;\n"
    "    memset(arena, 0, (size_t)mdl_model.arena_bytes);\n"
    "    printf(\"%s|%s|%s\\n\", mdl_model.name, mdl_model.params[0].t.name, mdl_model.inputs[0].name);\n"
    "    for (int i = 0; i < mdl_model.n_params; i++) fill(arena, &mdl_model.params[i].t, k++, batch);\n"
    "    for (int i = 0; i < mdl_model.n_inputs; i++) fill(arena, &mdl_model.inputs[i], k++, batch);\n"
    "    for (int i = 0; i < mdl_model.n_targets; i++) fill(arena, &mdl_model.targets[i], k++, batch);\n"
    "    mdl_model.predict_step(arena, batch);\n"
    "    show(arena, &mdl_model.outputs[0], batch);\n"
    "    mdl_model.eval_step(arena, batch);\n"
    "    show(arena, &mdl_model.loss, batch);\n"
    "    printf(\"%d %d\\n\", mdl_model.train_step != NULL, mdl_model.n_hypers);\n"
    "    free(arena);\n    return 0;\n}\n";

static int write_file(const char *path, const char *text) {
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
        fail("cannot write %s", path);
        return -1;
    }
    return 0;
}

/* The interpreter's view of what the program should print. */
static void expected_values(ir_graph *g, double ***want_out) {
    double **want = calloc((size_t)g->n_nodes, sizeof *want);
    int k = 0;
    for (int pass = 0; pass < 3; pass++)
        for (int i = 0; i < (pass == 0 ? g->n_params : g->n_inputs); i++) {
            int id = pass == 0 ? g->params[i].node : g->inputs[i].node;
            if (pass > 0 && g->inputs[i].is_target != (pass == 2))
                continue;
            int64_t n = ir_numel_at(&g->nodes[id].shape, BATCH);
            want[id] = malloc(sizeof(double) * (size_t)n);
            for (int64_t j = 0; j < n; j++)
                want[id][j] = probe(k, j);
            k++;
        }
    for (int i = 0; i < g->n_hypers; i++) {
        want[g->hypers[i].node] = malloc(sizeof(double));
        want[g->hypers[i].node][0] = g->hypers[i].value;
    }
    if (ir_eval(g, NULL, BATCH, want) != 0)
        fail("aot: ir_eval failed");
    *want_out = want;
}

static void check_program_output(ir_graph *g, const char *path, const char *names) {
    double **want;
    expected_values(g, &want);
    FILE *f = fopen(path, "r");
    char line[512];
    if (!f || !fgets(line, sizeof line, f) || strcmp(line, names) != 0)
        fail("aot: names came back as %s", f ? line : "(nothing)");
    int logits = g->outputs[0].node;
    int64_t n = ir_numel_at(&g->nodes[logits].shape, BATCH);
    for (int64_t j = 0; j <= n && f; j++) {
        double got = NAN, expect = j < n ? want[logits][j] : want[g->loss][0];
        if (fscanf(f, "%lf", &got) != 1 || !close_enough(got, expect, IR_F32, 1e-4)) {
            fail("aot: value %lld: got %g, want %g", (long long)j, got, expect);
            break;
        }
    }
    int has_train = 0, n_hypers = 0;
    if (!f || fscanf(f, "%d %d", &has_train, &n_hypers) != 2 || !has_train || n_hypers != g->n_hypers)
        fail("aot: entry points or hypers wrong (%d, %d)", has_train, n_hypers);
    if (f)
        fclose(f);
    free_values(g, NULL, want);
}

static void test_object_and_descriptor(void) {
    /* names a user could write: quotes, backslashes, trigraph-like ??=, UTF-8 */
    const char *model_name = "we\"ird\\model?\?=", *input_name = "x\t\"1\"", *prefix = "h\303\251";
    char dir[] = "/tmp/mdl_cg_XXXXXX", path[256], command[1024];
    if (!mkdtemp(dir)) {
        fail("mkdtemp");
        return;
    }
    ir_graph *g = mlp(model_name, input_name, prefix, IR_RELU);
    entries es;
    mem_plan plan;
    memset(&es, 0, sizeof es);
    memset(&plan, 0, sizeof plan);
    if (run_passes(g, &es, &plan) == 0) {
        snprintf(path, sizeof path, "%s/model.o", dir);
        FILE *ll = tmpfile(), *as = tmpfile();
        cg_options opt = {.opt_level = 2, .obj_path = path, .emit_llvm = ll, .emit_asm = as};
        if (cg_compile(g, &es, &plan, &opt) != 0)
            fail("aot: cg_compile failed");
        if (ftell(ll) < 100 || ftell(as) < 100)
            fail("aot: --emit=llvm / --emit=asm wrote almost nothing");
        fclose(ll);
        fclose(as);
        snprintf(path, sizeof path, "%s/model_desc.c", dir);
        FILE *desc = fopen(path, "w");
        if (cg_write_descriptor(g, &es, &plan, 0, desc) != 0)
            fail("aot: cg_write_descriptor failed");
        fclose(desc);
        snprintf(path, sizeof path, "%s/main.c", dir);
        write_file(path, driver_source);
        snprintf(command, sizeof command,
                 "cd %s && %s -std=c11 -pedantic -Wall -Wextra -Werror -I%s -c model_desc.c && "
                 "%s -std=c11 -I%s main.c model_desc.o model.o -lm -o model && ./model %d > out.txt",
                 dir, MDL_CC, MDL_RUNTIME_DIR, MDL_CC, MDL_RUNTIME_DIR, BATCH);
        if (run(command) == 0) {
            char names[256];
            snprintf(names, sizeof names, "%s|%s.W1|%s\n", model_name, prefix, input_name);
            snprintf(path, sizeof path, "%s/out.txt", dir);
            check_program_output(g, path, names);
        }
    }
    entries_free(&es);
    mp_plan_free(&plan);
    ir_graph_free(g);
    snprintf(command, sizeof command, "rm -rf %s", dir);
    if (system(command) != 0)
        fprintf(stderr, "note: could not remove %s\n", dir);
}

/* Runs one test, or all without an argument: `test_codegen add`. */
static int run_test(const char *only, const char *name, void (*test)(void)) {
    if (only && strcmp(only, name) != 0)
        return 0;
    int before = failures;
    test();
    printf("%-12s %s\n", name, failures == before ? "ok" : "FAILED");
    return 1;
}

int main(int argc, char **argv) {
    const char *only = argc > 1 ? argv[1] : NULL;
    int ran = 0;
    for (int op = 0; op < IR_OP_COUNT; op++)
        ran += run_test(only, ir_ops[op].name, cases[op]);
    ran += run_test(only, "matmul_batched", case_matmul_batched);
    ran += run_test(only, "pipeline", test_pipeline);
    ran += run_test(only, "aot", test_object_and_descriptor);
    if (!ran)
        fail("no test is called %s", only);
    if (failures)
        fprintf(stderr, "%d failure(s)\n", failures);
    return failures ? 1 : 0;
}
