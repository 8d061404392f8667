/*
 * build.c - adding nodes and table entries to a graph.
 *
 * Every node enters the graph through ir_append, which checks the inputs
 * and runs the op's shape rule (shape.c); the builders below only fill in a
 * prototype node's op, inputs and attributes (and the shape, for ops whose
 * shape is an attribute) and hand it over.  The table builders add a leaf
 * node and its row in g->params, g->inputs or g->hypers together.  The
 * dropout mask's random bits are here too, beside the op they serve; the
 * interpreter and the code generator both compute them from this definition.
 */
#include "ir.h"
#include "ir_internal.h"

#include <math.h>
#include <string.h>

/* Grows an array held as (ptr, count, capacity) to fit one more element. */
#define GROW(ptr, n, cap)                                                                          \
    do {                                                                                           \
        if ((n) == (cap)) {                                                                        \
            (cap) = (cap) ? 2 * (cap) : 16;                                                        \
            (ptr) = ir_xrealloc((ptr), (size_t)(cap) * sizeof *(ptr));                             \
        }                                                                                          \
    } while (0)

int ir_append(ir_graph *g, const ir_node *proto) {
    ir_node n = *proto;
    if ((int)n.op < 0 || n.op >= IR_OP_COUNT)
        return ir_fail(g, "bad op %d", (int)n.op);
    n.n_inputs = ir_ops[n.op].arity;
    for (int k = 0; k < n.n_inputs; k++)
        if (n.inputs[k] < 0 || n.inputs[k] >= g->n_nodes)
            return ir_fail(g, "%s: input %d is not a node (%d)", ir_ops[n.op].name, k, n.inputs[k]);
    for (int k = n.n_inputs; k < 3; k++)
        n.inputs[k] = -1;
    for (int k = 0; k < n.n_inputs && g->input_hook; k++)
        if ((n.inputs[k] = g->input_hook(g, n.inputs[k], g->input_hook_ctx)) < 0)
            return -1;
    /* A node goes into the scan body being built (a copy of a body node
     * keeps its body); leaves are not computed anywhere, so they have none. */
    if (!n.region)
        n.region = g->cur_region;
    if (!n.line) {
        n.line = g->cur_line;
        n.col = g->cur_col;
        n.backward = g->cur_backward;
    }
    if (n.op == IR_INPUT || n.op == IR_PARAM || n.op == IR_CONST || n.op == IR_HYPER)
        n.region = 0;
    if (ir_infer_shape(g, &n) != 0)
        return -1;
    GROW(g->nodes, g->n_nodes, g->cap_nodes);
    g->nodes[g->n_nodes] = n;
    return g->n_nodes++;
}

static ir_node proto_of(ir_op op, int a, int b, int c) {
    ir_node n;
    memset(&n, 0, sizeof n);
    n.op = op;
    n.inputs[0] = a;
    n.inputs[1] = b;
    n.inputs[2] = c;
    return n;
}

int ir_add(ir_graph *g, ir_op op, int a, int b, int c) {
    ir_class cls = ir_ops[op].cls;
    if (cls != IR_UNARY && cls != IR_BINARY && cls != IR_TERNARY)
        return ir_fail(g, "ir_add: %s is not elementwise", ir_ops[op].name);
    ir_node n = proto_of(op, a, b, c);
    return ir_append(g, &n);
}

int ir_const(ir_graph *g, ir_dtype dtype, const ir_shape *shape, double value) {
    ir_node n = proto_of(IR_CONST, -1, -1, -1);
    n.dtype = dtype;
    n.shape = *shape;
    n.value = dtype == IR_I32 ? trunc(value) : (double)(float)value;
    return ir_append(g, &n);
}

int ir_scalar(ir_graph *g, double value) {
    ir_shape s = ir_shape_scalar();
    return ir_const(g, IR_F32, &s, value);
}

int ir_cast(ir_graph *g, int x, ir_dtype to) {
    ir_node n = proto_of(IR_CAST, x, -1, -1);
    n.dtype = to;
    return ir_append(g, &n);
}

int ir_reduce(ir_graph *g, ir_op op, int x, uint32_t axes, int keepdims) {
    ir_node n = proto_of(op, x, -1, -1);
    n.axes = axes;
    n.keepdims = keepdims;
    return ir_append(g, &n);
}

int ir_numel(ir_graph *g, int x, uint32_t axes) {
    ir_node n = proto_of(IR_NUMEL, x, -1, -1);
    n.axes = axes;
    return ir_append(g, &n);
}

static int shaped(ir_graph *g, ir_op op, int x, const ir_shape *shape) {
    ir_node n = proto_of(op, x, -1, -1);
    n.shape = *shape;
    return ir_append(g, &n);
}

int ir_sum_to(ir_graph *g, int x, const ir_shape *shape) { return shaped(g, IR_SUM_TO, x, shape); }
int ir_broadcast(ir_graph *g, int x, const ir_shape *shape) { return shaped(g, IR_BROADCAST, x, shape); }
int ir_reshape(ir_graph *g, int x, const ir_shape *shape) { return shaped(g, IR_RESHAPE, x, shape); }

int ir_iota(ir_graph *g, ir_dtype dtype, const ir_shape *shape, int axis) {
    ir_node n = proto_of(IR_IOTA, -1, -1, -1);
    n.dtype = dtype;
    n.shape = *shape;
    n.axis = axis;
    return ir_append(g, &n);
}

int ir_matmul(ir_graph *g, int a, int b, int flags) { return ir_matmul_batched(g, a, b, flags, 0); }

int ir_matmul_batched(ir_graph *g, int a, int b, int flags, int lead) {
    ir_node n = proto_of(IR_MATMUL, a, b, -1);
    n.flags = flags;
    n.lead_dims = lead;
    return ir_append(g, &n);
}

/* An axis counted from the end when negative; out-of-range axes are left
 * for the shape rule to report. */
static int normal_axis(ir_graph *g, int x, int axis) {
    int rank = x >= 0 && x < g->n_nodes ? g->nodes[x].shape.rank : 0;
    return axis < 0 && axis >= -rank ? axis + rank : axis;
}

int ir_one_hot(ir_graph *g, int labels, int64_t n) {
    ir_node node = proto_of(IR_ONE_HOT, labels, -1, -1);
    if (labels < 0 || labels >= g->n_nodes)
        return ir_fail(g, "one_hot: the labels are not a node (%d)", labels);
    node.shape = g->nodes[labels].shape;
    if (node.shape.rank < IR_MAX_RANK)
        node.shape.dims[node.shape.rank++] = n;
    return ir_append(g, &node);
}

int ir_argmax(ir_graph *g, int x, int axis) {
    ir_node n = proto_of(IR_ARGMAX, x, -1, -1);
    n.axis = normal_axis(g, x, axis);
    return ir_append(g, &n);
}

int ir_gather(ir_graph *g, int table, int indices) {
    ir_node n = proto_of(IR_GATHER, table, indices, -1);
    return ir_append(g, &n);
}

int ir_scatter_add(ir_graph *g, int src, int indices, int64_t rows) {
    ir_node n = proto_of(IR_SCATTER_ADD, src, indices, -1);
    if (src < 0 || src >= g->n_nodes || g->nodes[src].shape.rank < 1)
        return ir_fail(g, "scatter_add: the values must be a node of rank >= 1");
    n.shape.rank = 2;
    n.shape.dims[0] = rows;
    n.shape.dims[1] = g->nodes[src].shape.dims[g->nodes[src].shape.rank - 1];
    return ir_append(g, &n);
}

int ir_transpose(ir_graph *g, int x, const int *perm) {
    ir_node n = proto_of(IR_TRANSPOSE, x, -1, -1);
    int rank = x >= 0 && x < g->n_nodes ? g->nodes[x].shape.rank : 0;
    if (!perm && rank < 2)
        return ir_fail(g, "transpose: swapping the last two axes needs rank 2 or more, got rank %d", rank);
    for (int d = 0; d < rank; d++)
        n.perm[d] = perm ? normal_axis(g, x, perm[d]) : d;
    if (!perm) {
        n.perm[rank - 2] = rank - 1;
        n.perm[rank - 1] = rank - 2;
    }
    return ir_append(g, &n);
}

int ir_slice(ir_graph *g, int x, int axis, int64_t start, int64_t stop) {
    ir_node n = proto_of(IR_SLICE, x, -1, -1);
    n.axis = normal_axis(g, x, axis);
    n.start = start;
    n.stop = stop;
    return ir_append(g, &n);
}

int ir_pad(ir_graph *g, int x, int axis, int64_t start, const ir_shape *shape) {
    ir_node n = proto_of(IR_PAD, x, -1, -1);
    n.axis = normal_axis(g, x, axis);
    n.start = start;
    n.shape = *shape;
    return ir_append(g, &n);
}

int ir_concat(ir_graph *g, int a, int b, int axis) {
    ir_node n = proto_of(IR_CONCAT, a, b, -1);
    n.axis = normal_axis(g, a, axis);
    return ir_append(g, &n);
}

static ir_node window(ir_op op, int a, int b, int stride, int padding, int size) {
    ir_node n = proto_of(op, a, b, -1);
    n.stride = stride;
    n.padding = padding;
    n.size = size;
    return n;
}

int ir_conv2d(ir_graph *g, int x, int w, int stride, int padding) {
    ir_node n = window(IR_CONV2D, x, w, stride, padding, 0);
    return ir_append(g, &n);
}

int ir_conv2d_grad_input(ir_graph *g, int dy, int w, int stride, int padding, const ir_shape *x_shape) {
    ir_node n = window(IR_CONV2D_GRAD_INPUT, dy, w, stride, padding, 0);
    n.shape = *x_shape;
    return ir_append(g, &n);
}

int ir_conv2d_grad_weight(ir_graph *g, int x, int dy, int stride, int padding, const ir_shape *w_shape) {
    ir_node n = window(IR_CONV2D_GRAD_WEIGHT, x, dy, stride, padding, 0);
    n.shape = *w_shape;
    return ir_append(g, &n);
}

int ir_max_pool2d(ir_graph *g, int x, int size, int stride) {
    ir_node n = window(IR_MAX_POOL2D, x, -1, stride, 0, size);
    return ir_append(g, &n);
}

int ir_max_pool2d_grad(ir_graph *g, int x, int dy, int size, int stride) {
    ir_node n = window(IR_MAX_POOL2D_GRAD, x, dy, stride, 0, size);
    return ir_append(g, &n);
}

int ir_max_pool2d_pick(ir_graph *g, int x, int v, int size, int stride) {
    ir_node n = window(IR_MAX_POOL2D_PICK, x, v, stride, 0, size);
    return ir_append(g, &n);
}

int ir_avg_pool2d(ir_graph *g, int x, int size, int stride) {
    ir_node n = window(IR_AVG_POOL2D, x, -1, stride, 0, size);
    return ir_append(g, &n);
}

int ir_avg_pool2d_grad(ir_graph *g, int dy, int size, int stride, const ir_shape *x_shape) {
    ir_node n = window(IR_AVG_POOL2D_GRAD, dy, -1, stride, 0, size);
    n.shape = *x_shape;
    return ir_append(g, &n);
}

/* MurmurHash3's 32-bit finaliser: a bijection that mixes every input bit
 * into every output bit. */
static uint32_t fmix32(uint32_t h) {
    h ^= h >> 16;
    h *= 0x85ebca6bu;
    h ^= h >> 13;
    h *= 0xc2b2ae35u;
    h ^= h >> 16;
    return h;
}

uint32_t ir_dropout_bits(uint32_t seed, uint32_t step, uint64_t i) {
    uint32_t key = fmix32(fmix32(seed) + step);
    return fmix32(key + (uint32_t)i * 0x9E3779B9u);
}

uint32_t ir_dropout_threshold(double p) {
    double t = floor(p * 4294967296.0);
    return t <= 0 ? 0 : t >= 4294967295.0 ? 0xFFFFFFFFu : (uint32_t)t;
}

int ir_dropout_seeded(ir_graph *g, int x, double p, uint32_t seed) {
    int training = ir_get_hyper(g, "training", 0), step = training < 0 ? -1 : ir_get_hyper(g, "step", 0);
    if (step < 0)
        return -1;
    ir_node n = proto_of(IR_DROPOUT, x, training, step);
    n.value = p;
    n.seed = seed;
    return ir_append(g, &n);
}

int ir_dropout(ir_graph *g, int x, double p) {
    /* the id the node gets, unless ir_dropout_seeded first adds the hypers */
    int hypers = (ir_get_hyper(g, "training", 0) >= 0) + (ir_get_hyper(g, "step", 0) >= 0);
    return hypers == 2 ? ir_dropout_seeded(g, x, p, (uint32_t)g->n_nodes) : -1;
}

int ir_assign(ir_graph *g, int slot, int value) {
    ir_node n = proto_of(IR_ASSIGN, slot, value, -1);
    return ir_append(g, &n);
}

static int leaf(ir_graph *g, ir_op op, ir_dtype dtype, const ir_shape *shape, int index) {
    ir_node n = proto_of(op, -1, -1, -1);
    n.dtype = dtype;
    n.shape = *shape;
    n.index = index;
    return ir_append(g, &n);
}

int ir_add_input(ir_graph *g, const char *name, ir_dtype dtype, const ir_shape *shape, int is_target) {
    int id = leaf(g, IR_INPUT, dtype, shape, g->n_inputs);
    if (id < 0)
        return -1;
    GROW(g->inputs, g->n_inputs, g->cap_inputs);
    g->inputs[g->n_inputs++] = (ir_input){ir_xstrdup(name), id, is_target};
    return id;
}

int ir_add_gen_input(ir_graph *g, const char *name, ir_dtype dtype, const ir_shape *shape) {
    int id = leaf(g, IR_INPUT, dtype, shape, g->n_gen_inputs);
    if (id < 0)
        return -1;
    g->nodes[id].flags = 1;
    GROW(g->gen_inputs, g->n_gen_inputs, g->cap_gen_inputs);
    g->gen_inputs[g->n_gen_inputs++] = (ir_input){ir_xstrdup(name), id, 0};
    return id;
}

void ir_add_gen_output(ir_graph *g, const char *name, int node) {
    GROW(g->gen_outputs, g->n_gen_outputs, g->cap_gen_outputs);
    g->gen_outputs[g->n_gen_outputs++] = (ir_result){ir_xstrdup(name), node};
}

int ir_add_gen_update(ir_graph *g, int slot, int value) {
    int id = ir_assign(g, slot, value);
    if (id < 0)
        return -1;
    GROW(g->gen_updates, g->n_gen_updates, g->cap_gen_updates);
    g->gen_updates[g->n_gen_updates++] = id;
    return id;
}

void ir_add_gen_cached(ir_graph *g, int node) {
    GROW(g->gen_cached, g->n_gen_cached, g->cap_gen_cached);
    g->gen_cached[g->n_gen_cached++] = node;
}

int ir_add_param(ir_graph *g, const char *name, ir_dtype dtype, const ir_shape *shape, int trainable,
                 ir_init init, double a, double b, int64_t fan_in, int64_t fan_out) {
    if (shape->batch_mask)
        return ir_fail(g, "a parameter's shape cannot use the batch dimension");
    int id = leaf(g, IR_PARAM, dtype, shape, g->n_params);
    if (id < 0)
        return -1;
    GROW(g->params, g->n_params, g->cap_params);
    g->params[g->n_params++] = (ir_param){ir_xstrdup(name), id, trainable, init, a, b, fan_in, fan_out, -1, 0};
    return id;
}

int ir_add_state(ir_graph *g, const char *name, ir_dtype dtype, const ir_shape *shape, ir_init init, double a,
                 double b) {
    int id = leaf(g, IR_PARAM, dtype, shape, g->n_params);
    if (id < 0)
        return -1;
    GROW(g->params, g->n_params, g->cap_params);
    g->params[g->n_params++] = (ir_param){ir_xstrdup(name), id, 0, init, a, b, 1, 1, -1, 1};
    return id;
}

int ir_add_state_update(ir_graph *g, int slot, int value) {
    if (slot < 0 || slot >= g->n_nodes || g->nodes[slot].op != IR_PARAM || !g->params[g->nodes[slot].index].state)
        return ir_fail(g, "a state update must assign a state");
    int id = ir_assign(g, slot, value);
    if (id < 0)
        return -1;
    GROW(g->state_updates, g->n_state_updates, g->cap_state_updates);
    g->state_updates[g->n_state_updates++] = id;
    return id;
}

int ir_add_hyper(ir_graph *g, const char *name, double value) {
    ir_shape s = ir_shape_scalar();
    int id = leaf(g, IR_HYPER, IR_F32, &s, g->n_hypers);
    if (id < 0)
        return -1;
    GROW(g->hypers, g->n_hypers, g->cap_hypers);
    g->hypers[g->n_hypers++] = (ir_hyper){ir_xstrdup(name), value, id};
    return id;
}

int ir_get_hyper(ir_graph *g, const char *name, double value) {
    for (int i = 0; i < g->n_hypers; i++)
        if (strcmp(g->hypers[i].name, name) == 0)
            return g->hypers[i].node;
    return ir_add_hyper(g, name, value);
}

int ir_find_param(const ir_graph *g, const char *name) {
    for (int i = 0; i < g->n_params; i++)
        if (strcmp(g->params[i].name, name) == 0)
            return i;
    return -1;
}

void ir_add_metric(ir_graph *g, const char *name, int node) {
    GROW(g->metrics, g->n_metrics, g->cap_metrics);
    g->metrics[g->n_metrics++] = (ir_result){ir_xstrdup(name), node};
}

void ir_add_output(ir_graph *g, const char *name, int node) {
    GROW(g->outputs, g->n_outputs, g->cap_outputs);
    g->outputs[g->n_outputs++] = (ir_result){ir_xstrdup(name), node};
}
