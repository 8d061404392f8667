/*
 * memplan.c - the static memory plan: one arena, every offset known at
 * compile time.
 *
 * Persistent slots come first and are shared by all entry points:
 * parameters and optimizer state, inputs and targets, hypers, and every
 * value an entry delivers (loss, metrics, outputs, gradients).  After them
 * the scratch region holds temporaries, planned per entry by liveness: a
 * buffer is taken when its node runs and given back after its last user
 * has run (not before, so no kernel ever writes over an operand it is
 * still reading).  A fused group's kernel reads the group's inputs, so they
 * live until the group's root runs; interior nodes are in no schedule and
 * get no buffer.  Placement is first fit in offset order.  The arena is
 * the persistent part plus the largest scratch need of any entry.
 *
 * Updates in place: for ASSIGN(P, S) (the optimizer's new value S of a
 * parameter or state P), S is computed straight into P's slot, and the
 * ASSIGN becomes a no-op, when that cannot change what anything reads:
 * no kernel after S's reads P, S's own kernel reads P only at the element
 * it writes (an elementwise node or fused group, of P's shape), and S is
 * a scratch value of P's type and size assigned to nothing else.  Adam's
 * m, v and the weights are then updated where they live instead of being
 * computed elsewhere and copied back.  An output of a fused group (S is
 * computed by the kernel of the group's root, fuse.c) may read P there:
 * that kernel reads every input at the element it writes, and P has S's
 * shape.
 */
#include <stdlib.h>
#include <string.h>

#include "passes.h"

#define ALIGN 64

/* f32_bytes: the size of an f32 element, 4, or 8 for the plan of the f64
 * entries (codegen/cg_module.c), where every f32 tensor is a double; i32
 * elements are 4 bytes in both. */
static int64_t node_bytes(const ir_graph *g, int id, int f32_bytes) {
    int64_t b = ir_shape_numel(&g->nodes[id].shape) * (g->nodes[id].dtype == IR_I32 ? 4 : f32_bytes);
    return (b + ALIGN - 1) / ALIGN * ALIGN;
}

static int needs_storage(const ir_graph *g, int id) {
    ir_op op = g->nodes[id].op;
    return op != IR_CONST && op != IR_ASSIGN && op != IR_SCAN;
}

typedef struct block {
    int64_t offset, size;
    int free_after; /* schedule position of the last use */
} block;

static int by_offset(const void *a, const void *b) {
    int64_t x = ((const block *)a)->offset, y = ((const block *)b)->offset;
    return (x > y) - (x < y);
}

/* First fit among the live blocks (kept sorted by offset). */
static int64_t place(block *live, int n_live, int64_t size) {
    int64_t at = 0;
    for (int i = 0; i < n_live; i++) {
        if (live[i].offset - at >= size)
            return at;
        if (live[i].offset + live[i].size > at)
            at = live[i].offset + live[i].size;
    }
    return at;
}

/* Whether id's kernel reads every input at the element it writes (with
 * broadcasting): an elementwise node or the root of a group of them (a
 * group whose root is a reduction is not). */
static int is_elementwise(const ir_graph *g, const entries *es, int id) {
    (void)es;
    return fuse_is_elementwise(g, id);
}

static int kernel_reads(const ir_graph *g, const entries *es, int id, int x) {
    int in[FUSE_MAX_INPUTS];
    int n_in = entries_kernel_inputs(g, es, id, in);
    for (int k = 0; k < n_in; k++)
        if (in[k] == x)
            return 1;
    return 0;
}

/* alias[S] = P for the ASSIGN(P, S) of e that update in place (above),
 * -1 elsewhere; pos[] is each node's place in e's schedule, or -1. */
static void in_place_updates(const ir_graph *g, const entries *es, const entry *e, const unsigned char *persistent,
                             int f32_bytes, const int *pos, int *alias) {
    for (int s = 0; s < e->n_sched; s++) {
        const ir_node *a = &g->nodes[e->sched[s]];
        if (a->op != IR_ASSIGN)
            continue;
        int p = a->inputs[0], src = a->inputs[1];
        const ir_node *sn = &g->nodes[src];
        if (pos[src] < 0 || persistent[src] || !needs_storage(g, src) || alias[src] >= 0 || ir_in_loop(g, src) ||
            sn->dtype != g->nodes[p].dtype || node_bytes(g, src, f32_bytes) != node_bytes(g, p, f32_bytes) ||
            !ir_shape_equal(&sn->shape, &g->nodes[p].shape))
            continue;
        if (kernel_reads(g, es, src, p) && !is_elementwise(g, es, src))
            continue;
        int safe = 1, computed_by = es->output_of ? es->output_of[src] : -1;
        for (int t = pos[src] + 1; t < e->n_sched && safe; t++)
            if (t != s && e->sched[t] != computed_by && kernel_reads(g, es, e->sched[t], p))
                safe = 0;
        if (safe)
            alias[src] = p;
    }
}

/* A scan runs its body once per step, so what the body writes and reads
 * must outlive the whole loop: every body node, stack and final of a scan,
 * and everything their kernels read (captured values, initial carries,
 * sequences), keeps its buffer at least until the scan's own position,
 * after every node of the block (entries_schedule puts them before it). */
static void keep_through_loops(const ir_graph *g, const entries *es, const entry *e, const int *pos, int *last) {
    for (int s = 0; s < e->n_sched; s++) {
        int id = e->sched[s];
        if (!ir_in_loop(g, id))
            continue;
        int end = pos[ir_loop_of(g, id)];
        int in[FUSE_MAX_INPUTS];
        int n_in = entries_kernel_inputs(g, es, id, in);
        for (int k = 0; k < n_in; k++)
            if (last[in[k]] < end)
                last[in[k]] = end;
        if (last[id] < end)
            last[id] = end;
    }
}

static void plan_entry(const ir_graph *g, const entries *es, const entry *e, const unsigned char *persistent,
                       int64_t base, int f32_bytes, int64_t *offset, int64_t *peak) {
    int n = g->n_nodes;
    int *last = ir_xmalloc((size_t)n * sizeof *last);
    int *pos = ir_xmalloc((size_t)n * sizeof *pos);
    int *alias = ir_xmalloc((size_t)n * sizeof *alias);
    block *live = ir_xmalloc((size_t)(e->n_sched + 1) * sizeof *live);
    for (int i = 0; i < n; i++)
        last[i] = pos[i] = alias[i] = -1;
    for (int s = 0; s < e->n_sched; s++)
        pos[e->sched[s]] = s;
    in_place_updates(g, es, e, persistent, f32_bytes, pos, alias);
    for (int s = 0; s < e->n_sched; s++) {
        /* a fused group's kernel reads the group's inputs */
        int in[FUSE_MAX_INPUTS];
        int n_in = entries_kernel_inputs(g, es, e->sched[s], in);
        for (int k = 0; k < n_in; k++)
            last[in[k]] = s;
    }
    keep_through_loops(g, es, e, pos, last);
    for (int s = 0; es->output_of && s < e->n_sched; s++) /* written by its group's root */
        if (es->output_of[e->sched[s]] >= 0 && last[e->sched[s]] < pos[es->output_of[e->sched[s]]])
            last[e->sched[s]] = pos[es->output_of[e->sched[s]]];
    int n_live = 0;
    *peak = 0;
    for (int s = 0; s < e->n_sched; s++) {
        int id = e->sched[s];
        if (alias[id] >= 0) {
            offset[id] = offset[alias[id]];
        } else if (needs_storage(g, id) && !persistent[id]) {
            int64_t size = node_bytes(g, id, f32_bytes);
            int64_t at = place(live, n_live, size);
            offset[id] = base + at;
            live[n_live++] = (block){at, size, last[id] < s ? s : last[id]};
            qsort(live, (size_t)n_live, sizeof *live, by_offset);
            if (at + size > *peak)
                *peak = at + size;
        }
        /* release what is no longer needed after this node */
        int w = 0;
        for (int b = 0; b < n_live; b++)
            if (live[b].free_after > s)
                live[w++] = live[b];
        n_live = w;
    }
    free(last);
    free(pos);
    free(alias);
    free(live);
}

void mp_plan_build(const ir_graph *g, const entries *es, mem_plan *plan) { mp_plan_build_sized(g, es, 4, plan); }

void mp_plan_build_sized(const ir_graph *g, const entries *es, int f32_bytes, mem_plan *plan) {
    int n = g->n_nodes;
    memset(plan, 0, sizeof *plan);
    plan->n_nodes = n;
    unsigned char *persistent = ir_xcalloc((size_t)n, 1);
    int64_t *shared = ir_xmalloc((size_t)n * sizeof *shared);
    for (int i = 0; i < n; i++) {
        ir_op op = g->nodes[i].op;
        persistent[i] = op == IR_PARAM || op == IR_INPUT || op == IR_HYPER;
        shared[i] = -1;
    }
    for (int k = 0; k < ENTRY_COUNT; k++)
        for (int r = 0; es->e[k].present && r < es->e[k].n_roots; r++)
            if (needs_storage(g, es->e[k].roots[r]))
                persistent[es->e[k].roots[r]] = 1;
    int64_t at = 0;
    for (int i = 0; i < n; i++)
        if (persistent[i]) {
            shared[i] = at;
            at += node_bytes(g, i, f32_bytes);
        }
    plan->persistent_bytes = at;
    for (int k = 0; k < ENTRY_COUNT; k++) {
        int64_t *off = plan->offset[k] = ir_xmalloc((size_t)n * sizeof *off);
        memcpy(off, shared, (size_t)n * sizeof *off);
        int64_t peak = 0;
        if (es->e[k].present)
            plan_entry(g, es, &es->e[k], persistent, at, f32_bytes, off, &peak);
        if (peak > plan->scratch_bytes)
            plan->scratch_bytes = peak;
    }
    plan->arena_bytes = plan->persistent_bytes + plan->scratch_bytes;
    if (plan->arena_bytes == 0)
        plan->arena_bytes = ALIGN;
    free(persistent);
    free(shared);
}

void mp_plan_free(mem_plan *plan) {
    for (int k = 0; k < ENTRY_COUNT; k++)
        free(plan->offset[k]);
    memset(plan, 0, sizeof *plan);
}

void mp_plan_dump(const ir_graph *g, const entries *es, const mem_plan *plan, FILE *out) {
    fprintf(out, "arena %lld bytes: persistent %lld, scratch %lld\n", (long long)plan->arena_bytes,
            (long long)plan->persistent_bytes, (long long)plan->scratch_bytes);
    for (int k = 0; k < ENTRY_COUNT; k++) {
        const entry *e = &es->e[k];
        if (!e->present)
            continue;
        fprintf(out, "%s: %d kernels\n", e->name, e->n_sched);
        for (int s = 0; s < e->n_sched; s++) {
            int id = e->sched[s];
            int grp = es->group_at ? es->group_at[id] : -1;
            if (plan->offset[k][id] < 0)
                continue;
            if (grp >= 0)
                fprintf(out, "  %%%d fused(%d) @%lld +%lld", id, es->groups[grp].n_members,
                        (long long)plan->offset[k][id], (long long)node_bytes(g, id, 4));
            else if (es->output_of && es->output_of[id] >= 0)
                fprintf(out, "  %%%d %s, stored by %%%d, @%lld +%lld", id, ir_ops[g->nodes[id].op].name,
                        es->output_of[id], (long long)plan->offset[k][id], (long long)node_bytes(g, id, 4));
            else
                fprintf(out, "  %%%d %s @%lld +%lld", id, ir_ops[g->nodes[id].op].name,
                        (long long)plan->offset[k][id], (long long)node_bytes(g, id, 4));
            for (int t = s + 1; t < e->n_sched; t++) {
                const ir_node *a = &g->nodes[e->sched[t]];
                if (a->op == IR_ASSIGN && a->inputs[1] == id && plan->offset[k][a->inputs[0]] == plan->offset[k][id])
                    fprintf(out, " (updates %%%d in place)", a->inputs[0]);
            }
            fprintf(out, "\n");
        }
    }
}
