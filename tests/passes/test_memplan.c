/*
 * test_memplan.c - the memory plan's updates in place (passes/memplan.c).
 *
 * ASSIGN(P, S) computes S straight into P's slot only when nothing that
 * runs after S reads P's old value, and S's own kernel reads P only at the
 * element it writes.  Each case builds a small training graph by hand and
 * checks which updates the plan put in place, and that every other
 * buffer of the entry stays clear of the slots updated in place.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "passes.h"

#include "../test.h"

static ir_shape vec(int64_t n) {
    ir_shape s;
    memset(&s, 0, sizeof s);
    s.rank = 1;
    s.dims[0] = n;
    return s;
}

static int param(ir_graph *g, const char *name, int64_t n) {
    ir_shape s = vec(n);
    int i = ir_add_param(g, name, IR_F32, &s, 1, IR_INIT_ZEROS, 0, 0, 0, 0);
    return g->params[i].node;
}

static void add_update(ir_graph *g, int slot, int value) {
    if (g->n_updates == g->cap_updates) {
        g->cap_updates = g->cap_updates ? 2 * g->cap_updates : 8;
        g->updates = realloc(g->updates, (size_t)g->cap_updates * sizeof *g->updates);
    }
    g->updates[g->n_updates++] = ir_assign(g, slot, value);
}

/* Plans g's entries (without fusion) and returns the train entry's
 * offsets; *plan must be freed. */
static const int64_t *plan_train(ir_graph *g, entries *es, mem_plan *plan) {
    if (entries_build(g, es) != 0) {
        printf("FAIL: planning: %s\n", g->error);
        exit(1);
    }
    mp_plan_build(g, es, plan);
    return plan->offset[ENTRY_TRAIN];
}

static int in_place(const int64_t *off, int slot, int value) { return off[slot] == off[value]; }

/* No scheduled buffer other than `value` overlaps the slot of `slot`. */
static void check_clear(const ir_graph *g, const entries *es, const int64_t *off, int slot, int value) {
    const entry *e = &es->e[ENTRY_TRAIN];
    int64_t lo = off[slot], hi = lo + ir_shape_numel(&g->nodes[slot].shape) * 4;
    for (int s = 0; s < e->n_sched; s++) {
        int id = e->sched[s];
        if (id == value || off[id] < 0 || g->nodes[id].op == IR_ASSIGN)
            continue;
        int64_t a = off[id], b = a + ir_shape_numel(&g->nodes[id].shape) * 4;
        CHECK_MSG(b <= lo || a >= hi, "%%%d [%lld, %lld) overlaps the slot of %%%d", id, (long long)a, (long long)b,
                  slot);
    }
}

/* w <- w - 0.1 * w, elementwise and reading w only at the element it
 * writes: in place. */
static void case_sgd_like(void) {
    ir_graph *g = ir_graph_new("t", "t.mdl");
    int w = param(g, "w", 16);
    g->loss = ir_reduce(g, IR_REDUCE_SUM, ir_add(g, IR_MUL, w, w, -1), 1, 0);
    int s = ir_add(g, IR_SUB, w, ir_add(g, IR_MUL, w, ir_scalar(g, 0.1), -1), -1);
    add_update(g, w, s);
    entries es;
    mem_plan plan;
    const int64_t *off = plan_train(g, &es, &plan);
    CHECK_MSG(in_place(off, w, s), "w's update is not in place");
    check_clear(g, &es, off, w, s);
    mp_plan_free(&plan);
    entries_free(&es);
    ir_graph_free(g);
}

/* The new a is computed first, then b's update reads the old a: a's
 * update must not be in place (b's may). */
static void case_old_value_read_later(void) {
    ir_graph *g = ir_graph_new("t", "t.mdl");
    int a = param(g, "a", 8), b = param(g, "b", 8);
    g->loss = ir_reduce(g, IR_REDUCE_SUM, ir_add(g, IR_MUL, a, b, -1), 1, 0);
    int new_a = ir_add(g, IR_MUL, a, ir_scalar(g, 0.5), -1);
    int new_b = ir_add(g, IR_ADD, b, a, -1);
    add_update(g, a, new_a);
    add_update(g, b, new_b);
    entries es;
    mem_plan plan;
    const int64_t *off = plan_train(g, &es, &plan);
    CHECK_MSG(!in_place(off, a, new_a), "a updated in place though b's update reads the old a");
    CHECK_MSG(in_place(off, b, new_b), "b's update is not in place");
    check_clear(g, &es, off, b, new_b);
    mp_plan_free(&plan);
    entries_free(&es);
    ir_graph_free(g);
}

/* Which kernel reads w decides: a broadcast of a reduction of w reads only
 * the reduction (w's old value is read before it runs), so it may write
 * into w's slot; a matmul of w by itself reads other elements of w than it
 * writes, so it may not. */
static void case_not_elementwise(void) {
    ir_graph *g = ir_graph_new("t", "t.mdl");
    int w = param(g, "w", 8);
    g->loss = ir_reduce(g, IR_REDUCE_SUM, w, 1, 0);
    ir_shape s8 = vec(8);
    int total = ir_reduce(g, IR_REDUCE_SUM, w, 1, 1);
    int spread = ir_broadcast(g, total, &s8); /* every element reads all of w */
    add_update(g, w, spread);
    entries es;
    mem_plan plan;
    const int64_t *off = plan_train(g, &es, &plan);
    CHECK_MSG(in_place(off, w, spread), "a broadcast of a reduction of w should update w in place");
    mp_plan_free(&plan);
    entries_free(&es);
    ir_graph_free(g);

    g = ir_graph_new("t", "t.mdl");
    ir_shape s44;
    memset(&s44, 0, sizeof s44);
    s44.rank = 2;
    s44.dims[0] = s44.dims[1] = 4;
    int i = ir_add_param(g, "m", IR_F32, &s44, 1, IR_INIT_ZEROS, 0, 0, 0, 0);
    int m = g->params[i].node;
    g->loss = ir_reduce(g, IR_REDUCE_SUM, m, 3, 0);
    int sq = ir_matmul(g, m, m, 0);
    add_update(g, m, sq);
    off = plan_train(g, &es, &plan);
    CHECK_MSG(!in_place(off, m, sq), "m @ m computed into m's slot");
    mp_plan_free(&plan);
    entries_free(&es);
    ir_graph_free(g);
}

int main(void) {
    case_sgd_like();
    case_old_value_read_later();
    case_not_elementwise();
    if (failures) {
        printf("%d failure(s)\n", failures);
        return 1;
    }
    printf("memplan: all cases passed\n");
    return 0;
}
