/*
 * entries.c - the four entry points and what each one computes.
 *
 * One graph holds the forward pass, the gradients and the update; each
 * entry point is the part of it its results depend on (dead-code
 * elimination happens here, per entry).  Nodes run in array order, which
 * is topological, except that ASSIGNs run last: every read of a parameter
 * or of optimizer state must see the value from before the step.
 *
 * A result that folded to a CONST has no storage of its own; it is
 * materialised with a broadcast so the runtime finds its value in the
 * arena like any other result.
 */
#include <stdlib.h>
#include <string.h>

#include "passes.h"

static int materialise(ir_graph *g, int id) {
    if (id < 0 || g->nodes[id].op != IR_CONST)
        return id;
    ir_shape s = g->nodes[id].shape;
    /* A broadcast to the same shape would be folded away again, so this
     * runs after simplify and nothing simplifies afterwards. */
    int b = ir_broadcast(g, id, &s);
    return b < 0 ? id : b;
}

static void add_root(entry *e, int id) {
    if (id >= 0)
        e->roots[e->n_roots++] = id;
}

static int needs_code(const ir_graph *g, const entry *e, int i) {
    ir_op op = g->nodes[i].op;
    return e->live[i] && op != IR_INPUT && op != IR_PARAM && op != IR_HYPER && op != IR_CONST;
}

/* A scan's loop as a block of the schedule: its stacks and finals first
 * (they take their buffers before the loop writes them), then its body
 * nodes in id order, then the scan itself, which runs them. */
static void schedule_loop(const ir_graph *g, entry *e, int scan) {
    for (int i = scan + 1; i < g->n_nodes; i++)
        if (needs_code(g, e, i) && !g->nodes[i].region && ir_loop_of(g, i) == scan)
            e->sched[e->n_sched++] = i;
    for (int i = scan + 1; i < g->n_nodes; i++)
        if (needs_code(g, e, i) && g->nodes[i].region == scan)
            e->sched[e->n_sched++] = i;
    e->sched[e->n_sched++] = scan;
}

void entries_schedule(const ir_graph *g, entry *e) {
    e->n_sched = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < g->n_nodes; i++) {
            if (!needs_code(g, e, i) || ir_in_loop(g, i) || (g->nodes[i].op == IR_ASSIGN) != pass)
                continue;
            if (g->nodes[i].op == IR_SCAN)
                schedule_loop(g, e, i);
            else
                e->sched[e->n_sched++] = i;
        }
}

static int is_cached(const ir_graph *g, int id) {
    for (int i = 0; i < g->n_gen_cached; i++)
        if (g->gen_cached[i] == id)
            return 1;
    return 0;
}

/* generate_step's nodes: what its roots need, but a cached value (made by
 * prepare_step) is read from its slot, so what only it needs is not. */
static void mark_live_but_cached(const ir_graph *g, entry *e) {
    unsigned char *cut = ir_xcalloc((size_t)g->n_nodes, 1);
    for (int i = 0; i < g->n_gen_cached; i++)
        cut[g->gen_cached[i]] = 1;
    for (int r = 0; r < e->n_roots; r++)
        e->live[e->roots[r]] = 1;
    for (int again = 1; again;) { /* as ir_mark_live, stopping at the cut */
        again = 0;
        for (int i = g->n_nodes - 1; i >= 0; i--) {
            const ir_node *n = &g->nodes[i];
            if (!e->live[i] || cut[i])
                continue;
            for (int k = 0; k < n->n_inputs; k++)
                e->live[n->inputs[k]] = 1;
            if (n->region)
                e->live[n->region] = 1;
            if (n->op == IR_SCAN_CARRY && n->link >= 0 && !e->live[n->link])
                again = e->live[n->link] = 1;
        }
    }
    free(cut);
}

static void unschedule_cached(const ir_graph *g, entry *e) {
    int w = 0;
    for (int s = 0; s < e->n_sched; s++)
        if (!is_cached(g, e->sched[s]))
            e->sched[w++] = e->sched[s];
    e->n_sched = w;
}

static void build_one(ir_graph *g, entry *e, entry_kind kind) {
    static const char *const names[ENTRY_COUNT] = {"predict_step", "eval_step", "grad_step", "train_step",
                                                   "generate_step", "prepare_step"};
    e->name = names[kind];
    e->present = kind == ENTRY_PREDICT ? g->n_outputs > 0 : g->loss >= 0;
    if (kind == ENTRY_EVAL && g->n_outputs + g->n_metrics > 0)
        e->present = 1;
    if (kind == ENTRY_GENERATE)
        e->present = g->n_gen_outputs > 0;
    if (kind == ENTRY_PREPARE)
        e->present = g->n_gen_outputs > 0 && g->n_gen_cached > 0;
    e->roots = ir_xmalloc((size_t)(g->n_params + g->n_metrics + g->n_outputs + g->n_updates + g->n_state_updates +
                                   g->n_gen_outputs + g->n_gen_updates + g->n_gen_cached + 1) *
                          sizeof(int));
    e->live = ir_xcalloc((size_t)g->n_nodes, 1);
    e->sched = ir_xmalloc((size_t)g->n_nodes * sizeof(int));
    if (!e->present)
        return;
    if (kind == ENTRY_PREPARE) {
        for (int i = 0; i < g->n_gen_cached; i++)
            add_root(e, g->gen_cached[i]);
        ir_mark_live(g, e->roots, e->n_roots, e->live);
        entries_schedule(g, e);
        return;
    }
    if (kind == ENTRY_GENERATE) { /* its outputs and its own state updates */
        for (int i = 0; i < g->n_gen_outputs; i++)
            add_root(e, g->gen_outputs[i].node);
        for (int i = 0; i < g->n_gen_updates; i++)
            add_root(e, g->gen_updates[i]);
        mark_live_but_cached(g, e);
        entries_schedule(g, e);
        unschedule_cached(g, e);
        return;
    }
    if (kind != ENTRY_PREDICT) {
        add_root(e, g->loss);
        for (int i = 0; i < g->n_metrics; i++)
            add_root(e, g->metrics[i].node);
    }
    if (kind == ENTRY_PREDICT || kind == ENTRY_EVAL)
        for (int i = 0; i < g->n_outputs; i++)
            add_root(e, g->outputs[i].node);
    if (kind == ENTRY_GRAD)
        for (int i = 0; i < g->n_params; i++)
            add_root(e, g->params[i].grad);
    if (kind == ENTRY_TRAIN)
        for (int i = 0; i < g->n_updates; i++)
            add_root(e, g->updates[i]);
    /* a `state` moves on in every step but grad's (gradcheck keeps it still) */
    if (kind != ENTRY_GRAD)
        for (int i = 0; i < g->n_state_updates; i++)
            add_root(e, g->state_updates[i]);
    ir_mark_live(g, e->roots, e->n_roots, e->live);
    entries_schedule(g, e);
}

int entries_build(ir_graph *g, entries *out) {
    memset(out, 0, sizeof *out);
    if (g->loss >= 0)
        g->loss = materialise(g, g->loss);
    for (int i = 0; i < g->n_metrics; i++)
        g->metrics[i].node = materialise(g, g->metrics[i].node);
    for (int i = 0; i < g->n_outputs; i++)
        g->outputs[i].node = materialise(g, g->outputs[i].node);
    for (int i = 0; i < g->n_gen_outputs; i++)
        g->gen_outputs[i].node = materialise(g, g->gen_outputs[i].node);
    for (int i = 0; i < g->n_params; i++)
        g->params[i].grad = materialise(g, g->params[i].grad);
    for (int k = 0; k < ENTRY_COUNT; k++)
        build_one(g, &out->e[k], (entry_kind)k);
    /* predict must not need targets */
    entry *p = &out->e[ENTRY_PREDICT];
    for (int i = 0; p->present && i < g->n_inputs; i++)
        if (g->inputs[i].is_target && p->live[g->inputs[i].node]) {
            snprintf(g->error, sizeof g->error, "an output depends on the target '%s'; outputs must be computable "
                     "from the inputs alone", g->inputs[i].name);
            return -1;
        }
    return 0;
}

unsigned char *entries_live_in_any(const ir_graph *g, const entries *es) {
    unsigned char *any = ir_xcalloc((size_t)g->n_nodes, 1);
    for (int k = 0; k < ENTRY_COUNT; k++)
        for (int i = 0; es->e[k].present && i < g->n_nodes; i++)
            any[i] |= es->e[k].live[i];
    return any;
}

int entries_kernel_inputs(const ir_graph *g, const entries *es, int id, int *out) {
    if (es->group_at && es->group_at[id] >= 0) {
        const fused_group *gr = &es->groups[es->group_at[id]];
        memcpy(out, gr->inputs, (size_t)gr->n_inputs * sizeof *out);
        return gr->n_inputs;
    }
    const ir_node *nd = &g->nodes[id];
    memcpy(out, nd->inputs, (size_t)nd->n_inputs * sizeof *out);
    return nd->n_inputs;
}

void entries_free(entries *es) {
    for (int k = 0; k < ENTRY_COUNT; k++) {
        free(es->e[k].roots);
        free(es->e[k].live);
        free(es->e[k].sched);
    }
    for (int i = 0; i < es->n_groups; i++)
        free(es->groups[i].members);
    free(es->groups);
    free(es->fused_into);
    free(es->group_at);
    free(es->output_of);
    memset(es, 0, sizeof *es);
}
