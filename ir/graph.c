/*
 * graph.c - the graph itself: its op table, its lifetime, and the
 * questions passes ask of a whole graph.
 *
 * A graph owns its node array and its tables (params, inputs, hypers,
 * results), so freeing it frees every name in them.  Besides that this file
 * answers questions about a finished graph: is it well formed (ir_verify
 * re-runs every shape rule), which nodes do some roots need, how often is
 * each node used, how much arithmetic does a node do.  Errors of the whole
 * IR are reported through ir_fail, which fills g->error.
 */
#include "ir.h"
#include "ir_internal.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

const ir_op_info ir_ops[IR_OP_COUNT] = {
#define OP(id, name, arity, class) [IR_##id] = {#name, arity, IR_##class},
#include "ops.def"
#undef OP
};

int ir_fail(ir_graph *g, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->error, sizeof g->error, fmt, ap);
    va_end(ap);
    return -1;
}

uint64_t ir_hash_bytes(const void *data, size_t n) {
    const unsigned char *p = data;
    uint64_t h = 14695981039346656037ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return h ? h : 1;
}

ir_graph *ir_graph_new(const char *model_name, const char *source_path) {
    ir_graph *g = ir_xrealloc(NULL, sizeof *g);
    memset(g, 0, sizeof *g);
    g->model_name = ir_xstrdup(model_name ? model_name : "model");
    g->source_path = ir_xstrdup(source_path ? source_path : "");
    g->loss = -1;
    g->optimizer = ir_xstrdup("sgd");
    g->batch = 32;
    g->epochs = 1;
    g->max_batch = 0;
    return g;
}

void ir_graph_free(ir_graph *g) {
    if (!g)
        return;
    for (int i = 0; i < g->n_params; i++)
        free(g->params[i].name);
    for (int i = 0; i < g->n_inputs; i++)
        free(g->inputs[i].name);
    for (int i = 0; i < g->n_hypers; i++)
        free(g->hypers[i].name);
    for (int i = 0; i < g->n_metrics; i++)
        free(g->metrics[i].name);
    for (int i = 0; i < g->n_outputs; i++)
        free(g->outputs[i].name);
    for (int i = 0; i < g->n_opt_args; i++)
        free(g->opt_arg_names[i]);
    for (int i = 0; i < g->n_sched_args; i++)
        free(g->sched_arg_names[i]);
    free(g->schedule);
    free(g->params);
    free(g->inputs);
    free(g->hypers);
    free(g->metrics);
    free(g->outputs);
    free(g->updates);
    free(g->state_updates);
    for (int i = 0; i < g->n_gen_inputs; i++)
        free(g->gen_inputs[i].name);
    for (int i = 0; i < g->n_gen_outputs; i++)
        free(g->gen_outputs[i].name);
    free(g->gen_inputs);
    free(g->gen_outputs);
    free(g->gen_updates);
    free(g->gen_cached);
    free(g->nodes);
    free(g->model_name);
    free(g->source_path);
    free(g->source_text);
    free(g->optimizer);
    free(g);
}

/* Compares doubles by their bits, as CSE's hash does, so the two agree:
 * 0.0 and -0.0 differ (1 / x tells them apart) and a NaN equals itself. */
static int same_bits(double a, double b) { return memcmp(&a, &b, sizeof a) == 0; }

int ir_same_attrs(const ir_node *a, const ir_node *b) {
    if (!same_bits(a->value, b->value) || a->axes != b->axes || a->keepdims != b->keepdims || a->flags != b->flags ||
        a->index != b->index || a->axis != b->axis || a->start != b->start || a->stop != b->stop ||
        a->size != b->size || a->stride != b->stride || a->padding != b->padding || a->seed != b->seed ||
        a->region != b->region || a->link != b->link || a->lead_dims != b->lead_dims)
        return 0;
    return memcmp(a->perm, b->perm, sizeof a->perm) == 0;
}

/* ------------------------------------------------------------- inspection */

static int is_leaf(const ir_node *n) {
    return n->op == IR_INPUT || n->op == IR_PARAM || n->op == IR_CONST || n->op == IR_HYPER;
}

/* A body node reads its own body or the top level; what it reads from the
 * top level is a leaf, or computed before its scan runs: a node before
 * the scan, or a result of an earlier scan.  A carry's link is a node of
 * its body (or of the top level) of the carry's type. */
static int verify_loop_edges(ir_graph *g, int i) {
    const ir_node *n = &g->nodes[i];
    if (n->op == IR_SCAN_CARRY) {
        int l = n->link;
        if (l < 0 || l >= g->n_nodes || (g->nodes[l].region != n->region && g->nodes[l].region != 0))
            return ir_fail(g, "%%%d scan_carry: its next value %%%d is not a node of its scan", i, l);
        if (g->nodes[l].dtype != n->dtype || !ir_shape_equal(&g->nodes[l].shape, &n->shape))
            return ir_fail(g, "%%%d scan_carry: its next value %%%d has another type", i, l);
    }
    if (!n->region)
        return 0;
    if (n->region >= i || g->nodes[n->region].op != IR_SCAN)
        return ir_fail(g, "%%%d %s: its region %%%d is not a scan before it", i, ir_ops[n->op].name, n->region);
    for (int k = 0; k < n->n_inputs; k++) {
        const ir_node *x = &g->nodes[n->inputs[k]];
        if (x->region == n->region || is_leaf(x))
            continue;
        if (x->region)
            return ir_fail(g, "%%%d %s: reads %%%d of another scan's body", i, ir_ops[n->op].name, n->inputs[k]);
        int ready = ir_in_loop(g, n->inputs[k]) ? ir_loop_of(g, n->inputs[k]) : n->inputs[k];
        if (ready >= n->region)
            return ir_fail(g, "%%%d %s: reads %%%d, which is not computed before its scan %%%d", i,
                           ir_ops[n->op].name, n->inputs[k], n->region);
    }
    return 0;
}

int ir_verify(ir_graph *g) {
    for (int i = 0; i < g->n_nodes; i++) {
        ir_node n = g->nodes[i];
        if (n.n_inputs != ir_ops[n.op].arity)
            return ir_fail(g, "%%%d %s: %d inputs, expected %d", i, ir_ops[n.op].name, n.n_inputs,
                           ir_ops[n.op].arity);
        for (int k = 0; k < n.n_inputs; k++)
            if (n.inputs[k] < 0 || n.inputs[k] >= i)
                return ir_fail(g, "%%%d %s: input %d (%%%d) does not precede it", i, ir_ops[n.op].name, k,
                               n.inputs[k]);
        ir_node check = n;
        if (ir_infer_shape(g, &check) != 0) {
            char msg[sizeof g->error - 32];
            snprintf(msg, sizeof msg, "%.400s", g->error);
            return ir_fail(g, "%%%d %s: %s", i, ir_ops[n.op].name, msg);
        }
        if (check.dtype != n.dtype || !ir_shape_equal(&check.shape, &n.shape))
            return ir_fail(g, "%%%d %s: stored type differs from its shape rule", i, ir_ops[n.op].name);
        if (verify_loop_edges(g, i) != 0)
            return -1;
    }
    for (int i = 0; i < g->n_params; i++)
        if (g->nodes[g->params[i].node].op != IR_PARAM)
            return ir_fail(g, "param %s: node %%%d is not a param", g->params[i].name, g->params[i].node);
    if (g->loss >= 0 && (g->nodes[g->loss].shape.rank != 0 || g->nodes[g->loss].dtype != IR_F32))
        return ir_fail(g, "the loss must be an f32 scalar");
    return 0;
}

void ir_mark_live(const ir_graph *g, const int *roots, int n_roots, unsigned char *live) {
    for (int r = 0; r < n_roots; r++)
        if (roots[r] >= 0)
            live[roots[r]] = 1;
    /* Inputs precede users, so one backward sweep reaches every dependency,
     * except a carry's link (its value at the next step), which follows the
     * carry: sweep again while a sweep marks a link. */
    for (int again = 1; again;) {
        again = 0;
        for (int i = g->n_nodes - 1; i >= 0; i--) {
            const ir_node *n = &g->nodes[i];
            if (!live[i])
                continue;
            for (int k = 0; k < n->n_inputs; k++)
                live[n->inputs[k]] = 1;
            if (n->region)
                live[n->region] = 1;
            if (n->op == IR_SCAN_CARRY && n->link >= 0 && !live[n->link])
                again = live[n->link] = 1;
        }
    }
}

void ir_count_uses(const ir_graph *g, const unsigned char *live, int *uses) {
    memset(uses, 0, (size_t)g->n_nodes * sizeof *uses);
    for (int i = 0; i < g->n_nodes; i++) {
        if (live && !live[i])
            continue;
        for (int k = 0; k < g->nodes[i].n_inputs; k++)
            uses[g->nodes[i].inputs[k]]++;
        if (g->nodes[i].op == IR_SCAN_CARRY && g->nodes[i].link >= 0)
            uses[g->nodes[i].link]++; /* read at the end of each step */
    }
}

/* A convolution op does 2 C KH KW flops per element of its [N,O,OH,OW]
 * side; a pooling op size^2 per element of the pooled side. */
static int64_t window_flops(const ir_graph *g, const ir_node *n) {
    const ir_shape *a = &g->nodes[n->inputs[0]].shape;
    switch (n->op) {
    case IR_CONV2D:
        return 2 * ir_shape_numel(&n->shape) * ir_shape_numel(&g->nodes[n->inputs[1]].shape) / n->shape.dims[1];
    case IR_CONV2D_GRAD_INPUT:
        return 2 * ir_shape_numel(a) * ir_shape_numel(&g->nodes[n->inputs[1]].shape) / a->dims[1];
    case IR_CONV2D_GRAD_WEIGHT:
        return 2 * ir_shape_numel(&g->nodes[n->inputs[1]].shape) * ir_shape_numel(&n->shape) / n->shape.dims[0];
    case IR_MAX_POOL2D:
    case IR_AVG_POOL2D:
    case IR_MAX_POOL2D_PICK:
        return ir_shape_numel(&n->shape) * n->size * n->size;
    default: /* the _grad ops: the pooled side is an input */
        return ir_shape_numel(&g->nodes[n->inputs[n->n_inputs - 1]].shape) * n->size * n->size;
    }
}

int64_t ir_node_flops(const ir_graph *g, int id) {
    const ir_node *n = &g->nodes[id];
    switch (ir_ops[n->op].cls) {
    case IR_LEAF:
    case IR_SINK:
    case IR_MOVE:
        return 0;
    case IR_WINDOW:
        return window_flops(g, n);
    case IR_INDEX: /* one add per element scattered */
        return n->op == IR_SCATTER_ADD ? ir_shape_numel(&g->nodes[n->inputs[0]].shape) : 0;
    case IR_REDUCE:
        return ir_shape_numel(&g->nodes[n->inputs[0]].shape);
    case IR_CONTRACT: {
        const ir_shape *a = &g->nodes[n->inputs[0]].shape;
        ir_matmul_dims d = ir_matmul_split(n, a->rank, g->nodes[n->inputs[1]].shape.rank);
        int64_t k = 1;
        for (int i = d.k_lo; i < d.k_hi; i++)
            k *= a->dims[i];
        return 2 * ir_shape_numel(&n->shape) * k;
    }
    default:
        return ir_shape_numel(&n->shape);
    }
}
