/*
 * test_codegen_f64.c - the f64 variant of every kernel against the
 * reference interpreter.
 *
 * mdlc also builds eval_step_f64 and grad_step_f64 (codegen/cg_module.c):
 * the same graph with every f32 tensor a double, for gradcheck.  This test
 * reuses every case of test_codegen.c (compiled in here, with
 * CODEGEN_F64_RUN replacing its four f32 runs): each case graph's entry
 * becomes eval_step, is JIT-compiled with cg_options.f64_entries at -O0
 * and -O2, and eval_step_f64 runs on the interpreter's leaf values (the
 * same f32-representable numbers, as doubles) in the arena laid out by
 * the f64 plan.  In double the kernels and the interpreter (ir/eval.c, also
 * double) compute the same expressions, so they must agree to 1e-12
 * relative (differences come only from summation order and fused
 * multiply-adds), i32 results exactly; and no byte of the f64 arena outside
 * the results may change.
 */
#include "ir.h"
#include "passes.h"

static void run_f64(ir_graph *g, const char *name, const void *es_predict, double *const *want);
#define CODEGEN_F64_RUN(g, name, es, want) run_f64(g, name, es, want)

#include "../codegen/test_codegen.c"

#define F64_TOLERANCE 1e-12

static int close64(double got, double want, ir_dtype t) {
    if (t == IR_I32)
        return got == want;
    if (isnan(want) || isnan(got))
        return isnan(want) && isnan(got);
    if (isinf(want))
        return got == want;
    return fabs(got - want) <= F64_TOLERANCE * (1 + fabs(want));
}

static int64_t bytes64(const ir_graph *g, int id, int64_t batch) {
    return ir_numel_at(&g->nodes[id].shape, batch) * (g->nodes[id].dtype == IR_I32 ? 4 : 8);
}

static void run_f64_at(ir_graph *g, const char *name, const entries *es, int opt_level, double *const *want) {
    char label[96];
    snprintf(label, sizeof label, "%s (f64, -O%d)", name, opt_level);
    mem_plan plan;
    mp_plan_build(g, es, &plan);
    cg_options opt = {.opt_level = opt_level, .f64_entries = 1};
    cg_jit *jit = cg_jit_create(g, es, &plan, &opt);
    mp_plan_free(&plan);
    if (!jit) {
        fail("%s: cg_jit_create failed", label);
        return;
    }
    const mem_plan *p64 = cg_jit_plan_f64(jit);
    cg_entry_fn fn = cg_jit_entry_f64(jit, ENTRY_EVAL);
    if (!p64 || !fn || cg_jit_entry_f64(jit, ENTRY_PREDICT)) {
        fail("%s: no eval_step_f64 (or an f64 predict_step)", label);
        cg_jit_free(jit);
        return;
    }
    const int64_t *offset = p64->offset[ENTRY_EVAL];
    char *arena = new_arena(p64->arena_bytes);
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *n = &g->nodes[i];
        if ((n->op == IR_INPUT || n->op == IR_PARAM || n->op == IR_HYPER) && want[i] && offset[i] >= 0)
            store(arena, offset[i], 8, n->dtype, want[i], ir_numel_at(&n->shape, BATCH));
    }
    fn(arena, BATCH);
    const entry *e = &es->e[ENTRY_EVAL];
    for (int r = 0; r < e->n_roots; r++) {
        int id = e->roots[r];
        int slot = g->nodes[id].op == IR_ASSIGN ? g->nodes[id].inputs[0] : id;
        ir_dtype t = g->nodes[slot].dtype;
        int64_t n = ir_numel_at(&g->nodes[id].shape, BATCH);
        int bad = 0;
        for (int64_t i = 0; i < n && bad < 3; i++) {
            double got = arena_get(arena, offset[slot], 8, t, i);
            if (!close64(got, want[id][i], t)) {
                fail("%s: %%%d %s element %lld: got %.17g, want %.17g", label, id, ir_ops[g->nodes[id].op].name,
                     (long long)i, got, want[id][i]);
                bad++;
            }
        }
    }
    /* nothing outside the buffers may change */
    int64_t size = p64->arena_bytes + 128;
    unsigned char *written = calloc((size_t)size, 1);
    for (int i = 0; i < g->n_nodes; i++)
        if (offset[i] >= 0)
            memset(written + offset[i], 1, (size_t)bytes64(g, i, BATCH));
    for (int64_t b = 0; b < size; b++)
        if (!written[b] && (unsigned char)arena[b] != PATTERN) {
            fail("%s: byte %lld of the f64 arena changed outside every result", label, (long long)b);
            break;
        }
    free(written);
    free(arena);
    cg_jit_free(jit);
}

/* The case's one entry, moved from predict_step to eval_step: the f64
 * variant has only eval and grad. */
static void run_f64(ir_graph *g, const char *name, const void *es_predict, double *const *want) {
    entries es = *(const entries *)es_predict;
    es.e[ENTRY_EVAL] = es.e[ENTRY_PREDICT];
    es.e[ENTRY_EVAL].name = "eval_step";
    memset(&es.e[ENTRY_PREDICT], 0, sizeof es.e[ENTRY_PREDICT]);
    run_f64_at(g, name, &es, 0, want);
    run_f64_at(g, name, &es, 2, want);
}
