/*
 * ir.c - building, checking and printing the graph IR.
 *
 * Every node enters the graph through ir_append, which checks the inputs
 * and runs the op's shape rule.  The rules live here, one function per op
 * named shape_<name> and gathered into a table from ops.def, so an op
 * without a shape rule does not compile.  A rule either fills in the
 * node's dtype and shape or writes a message to g->error and fails; the
 * frontend turns that message into a located diagnostic.
 */
#include "ir.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

const ir_op_info ir_ops[IR_OP_COUNT] = {
#define OP(id, name, arity, class) [IR_##id] = {#name, arity, IR_##class},
#include "ops.def"
#undef OP
};

#define xrealloc ir_xrealloc
#define xstrdup ir_xstrdup

/* Grows an array held as (ptr, count, capacity) to fit one more element. */
#define GROW(ptr, n, cap)                                                                          \
    do {                                                                                           \
        if ((n) == (cap)) {                                                                        \
            (cap) = (cap) ? 2 * (cap) : 16;                                                        \
            (ptr) = xrealloc((ptr), (size_t)(cap) * sizeof *(ptr));                                \
        }                                                                                          \
    } while (0)

static int fail(ir_graph *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(ir_graph *g, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g->error, sizeof g->error, fmt, ap);
    va_end(ap);
    return -1;
}

ir_graph *ir_graph_new(const char *model_name, const char *source_path) {
    ir_graph *g = xrealloc(NULL, sizeof *g);
    memset(g, 0, sizeof *g);
    g->model_name = xstrdup(model_name ? model_name : "model");
    g->source_path = xstrdup(source_path ? source_path : "");
    g->loss = -1;
    g->optimizer = xstrdup("sgd");
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
    free(g->nodes);
    free(g->model_name);
    free(g->source_path);
    free(g->optimizer);
    free(g);
}

/* ----------------------------------------------------------------- shapes */

ir_shape ir_shape_scalar(void) {
    ir_shape s;
    memset(&s, 0, sizeof s);
    return s;
}

int ir_shape_equal(const ir_shape *a, const ir_shape *b) {
    if (a->rank != b->rank || a->batch_mask != b->batch_mask)
        return 0;
    for (int i = 0; i < a->rank; i++)
        if (a->dims[i] != b->dims[i])
            return 0;
    return 1;
}

int64_t ir_shape_numel(const ir_shape *s) {
    int64_t n = 1;
    for (int i = 0; i < s->rank; i++)
        n *= s->dims[i];
    return n;
}

#define is_batch ir_is_batch_dim
#define is_one ir_dim_is_one

/* numpy broadcasting: align right; equal dims match, a literal 1 stretches.
 * The batch dim only matches the batch dim (or a 1). */
int ir_broadcast_shapes(const ir_shape *a, const ir_shape *b, ir_shape *out) {
    ir_shape r = ir_shape_scalar();
    r.rank = a->rank > b->rank ? a->rank : b->rank;
    for (int i = 0; i < r.rank; i++) {
        int ia = a->rank - r.rank + i, ib = b->rank - r.rank + i;
        int has_a = ia >= 0, has_b = ib >= 0;
        if (has_a && (!has_b || is_one(b, ib))) {
            r.dims[i] = a->dims[ia];
            r.batch_mask |= (uint32_t)is_batch(a, ia) << i;
        } else if (has_b && (!has_a || is_one(a, ia))) {
            r.dims[i] = b->dims[ib];
            r.batch_mask |= (uint32_t)is_batch(b, ib) << i;
        } else if (a->dims[ia] == b->dims[ib] && is_batch(a, ia) == is_batch(b, ib)) {
            r.dims[i] = a->dims[ia];
            r.batch_mask |= (uint32_t)is_batch(a, ia) << i;
        } else {
            return -1;
        }
    }
    *out = r;
    return 0;
}

/* Can `from` be broadcast to exactly `to`? */
static int broadcasts_to(const ir_shape *from, const ir_shape *to) {
    ir_shape r;
    return from->rank <= to->rank && ir_broadcast_shapes(from, to, &r) == 0 &&
           ir_shape_equal(&r, to);
}

char *ir_shape_str(const ir_shape *s, char *buf, size_t size) {
    size_t n = 0;
    n += (size_t)snprintf(buf + n, size - n, "[");
    for (int i = 0; i < s->rank && n < size; i++) {
        const char *sep = i ? "," : "";
        if (is_batch(s, i))
            n += (size_t)snprintf(buf + n, size - n, "%sB", sep);
        else
            n += (size_t)snprintf(buf + n, size - n, "%s%lld", sep, (long long)s->dims[i]);
    }
    if (n < size)
        snprintf(buf + n, size - n, "]");
    return buf;
}

const char *ir_dtype_name(ir_dtype t) { return t == IR_I32 ? "i32" : "f32"; }

char *ir_type_str(ir_dtype t, const ir_shape *s, char *buf, size_t size) {
    char sh[128];
    snprintf(buf, size, "%s%s", ir_dtype_name(t), ir_shape_str(s, sh, sizeof sh));
    return buf;
}

/* ------------------------------------------------------------ shape rules
 * shape_<name>(g, n): n's inputs are valid; set n->dtype and n->shape.
 * Leaves and nodes whose shape is an attribute (const, broadcast, reshape,
 * sum_to) arrive with the shape already set and check it. */

static const ir_node *in(const ir_graph *g, const ir_node *n, int k) {
    return &g->nodes[n->inputs[k]];
}

static int shape_leaf(ir_graph *g, ir_node *n) {
    (void)g;
    (void)n;
    return 0;
}
#define shape_input shape_leaf
#define shape_param shape_leaf
#define shape_const shape_leaf
#define shape_hyper shape_leaf

static int shape_numel(ir_graph *g, ir_node *n) {
    n->dtype = IR_F32;
    n->shape = ir_shape_scalar();
    if (n->axes >> in(g, n, 0)->shape.rank)
        return fail(g, "numel over an axis the input does not have");
    return 0;
}

/* Elementwise math on floats: the result is f32. */
static int shape_float_unary(ir_graph *g, ir_node *n) {
    const ir_node *x = in(g, n, 0);
    if (x->dtype != IR_F32)
        return fail(g, "'%s' needs an f32 operand, got %s", ir_ops[n->op].name,
                    ir_dtype_name(x->dtype));
    n->dtype = IR_F32;
    n->shape = x->shape;
    return 0;
}
#define shape_exp shape_float_unary
#define shape_log shape_float_unary
#define shape_sqrt shape_float_unary
#define shape_tanh shape_float_unary
#define shape_sigmoid shape_float_unary
#define shape_erf shape_float_unary

/* Works on either dtype and keeps it. */
static int shape_same_unary(ir_graph *g, ir_node *n) {
    n->dtype = in(g, n, 0)->dtype;
    n->shape = in(g, n, 0)->shape;
    return 0;
}
#define shape_neg shape_same_unary
#define shape_abs shape_same_unary
#define shape_sign shape_same_unary
#define shape_relu shape_same_unary
#define shape_stop_gradient shape_same_unary

static int shape_cast(ir_graph *g, ir_node *n) {
    n->shape = in(g, n, 0)->shape; /* n->dtype is the target, set by the builder */
    return 0;
}

static int broadcast_inputs(ir_graph *g, ir_node *n, int first, int count, ir_shape *out) {
    *out = in(g, n, first)->shape;
    for (int k = first + 1; k < first + count; k++) {
        ir_shape r;
        if (ir_broadcast_shapes(out, &in(g, n, k)->shape, &r) != 0) {
            char a[128], b[128];
            return fail(g, "shapes %s and %s cannot be broadcast together",
                        ir_shape_str(out, a, sizeof a), ir_shape_str(&in(g, n, k)->shape, b, sizeof b));
        }
        *out = r;
    }
    return 0;
}

static int same_dtype(ir_graph *g, ir_node *n) {
    if (in(g, n, 0)->dtype != in(g, n, 1)->dtype)
        return fail(g, "'%s' of %s and %s: convert one side with float()", ir_ops[n->op].name,
                    ir_dtype_name(in(g, n, 0)->dtype), ir_dtype_name(in(g, n, 1)->dtype));
    return 0;
}

static int shape_arith(ir_graph *g, ir_node *n) {
    if (same_dtype(g, n))
        return -1;
    n->dtype = in(g, n, 0)->dtype;
    return broadcast_inputs(g, n, 0, 2, &n->shape);
}
#define shape_add shape_arith
#define shape_sub shape_arith
#define shape_mul shape_arith
#define shape_div shape_arith
#define shape_min shape_arith
#define shape_max shape_arith

static int shape_pow(ir_graph *g, ir_node *n) {
    if (in(g, n, 0)->dtype != IR_F32 || in(g, n, 1)->dtype != IR_F32)
        return fail(g, "'^' needs f32 operands");
    n->dtype = IR_F32;
    return broadcast_inputs(g, n, 0, 2, &n->shape);
}

static int shape_compare(ir_graph *g, ir_node *n) {
    if (same_dtype(g, n))
        return -1;
    n->dtype = IR_F32;
    return broadcast_inputs(g, n, 0, 2, &n->shape);
}
#define shape_lt shape_compare
#define shape_le shape_compare
#define shape_gt shape_compare
#define shape_ge shape_compare
#define shape_eq shape_compare
#define shape_ne shape_compare

static int shape_where(ir_graph *g, ir_node *n) {
    if (in(g, n, 1)->dtype != in(g, n, 2)->dtype)
        return fail(g, "where(): both branches must have one dtype, got %s and %s",
                    ir_dtype_name(in(g, n, 1)->dtype), ir_dtype_name(in(g, n, 2)->dtype));
    n->dtype = in(g, n, 1)->dtype;
    return broadcast_inputs(g, n, 0, 3, &n->shape);
}

static int shape_reduce(ir_graph *g, ir_node *n) {
    const ir_node *x = in(g, n, 0);
    if (n->axes >> x->shape.rank)
        return fail(g, "reduction axis out of range for a tensor of rank %d", x->shape.rank);
    ir_shape r = ir_shape_scalar();
    for (int i = 0; i < x->shape.rank; i++) {
        int reduced = (n->axes >> i) & 1;
        if (reduced && !n->keepdims)
            continue;
        r.dims[r.rank] = reduced ? 1 : x->shape.dims[i];
        r.batch_mask |= (uint32_t)(!reduced && is_batch(&x->shape, i)) << r.rank;
        r.rank++;
    }
    n->dtype = x->dtype;
    n->shape = r;
    return 0;
}
#define shape_reduce_sum shape_reduce
#define shape_reduce_max shape_reduce

static int shape_sum_to(ir_graph *g, ir_node *n) {
    n->dtype = in(g, n, 0)->dtype;
    if (!broadcasts_to(&n->shape, &in(g, n, 0)->shape))
        return fail(g, "sum_to: target shape does not broadcast to the input");
    return 0;
}

/* x[.., a, ..] -> i32[.., ..]: `axis` (normalised by the builder) is dropped. */
static int shape_argmax(ir_graph *g, ir_node *n) {
    const ir_shape *x = &in(g, n, 0)->shape;
    if (n->axis < 0 || n->axis >= x->rank)
        return fail(g, "argmax: axis %d is out of range for a tensor of rank %d", n->axis, x->rank);
    ir_shape r = ir_shape_scalar();
    for (int i = 0; i < x->rank; i++) {
        if (i == n->axis)
            continue;
        r.dims[r.rank] = x->dims[i];
        r.batch_mask |= (uint32_t)is_batch(x, i) << r.rank;
        r.rank++;
    }
    n->dtype = IR_I32;
    n->shape = r;
    return 0;
}

static int shape_broadcast(ir_graph *g, ir_node *n) {
    n->dtype = in(g, n, 0)->dtype;
    if (!broadcasts_to(&in(g, n, 0)->shape, &n->shape)) {
        char a[128], b[128];
        return fail(g, "cannot broadcast %s to %s", ir_shape_str(&in(g, n, 0)->shape, a, sizeof a),
                    ir_shape_str(&n->shape, b, sizeof b));
    }
    return 0;
}

static int shape_reshape(ir_graph *g, ir_node *n) {
    const ir_shape *from = &in(g, n, 0)->shape;
    n->dtype = in(g, n, 0)->dtype;
    /* Element counts must agree for every batch size: same number of batch
     * dims and the same static product. */
    int64_t a = 1, b = 1;
    for (int i = 0; i < from->rank; i++)
        a *= is_batch(from, i) ? 1 : from->dims[i];
    for (int i = 0; i < n->shape.rank; i++)
        b *= is_batch(&n->shape, i) ? 1 : n->shape.dims[i];
    if (a != b || __builtin_popcount(from->batch_mask) != __builtin_popcount(n->shape.batch_mask)) {
        char x[128], y[128];
        return fail(g, "cannot reshape %s to %s: element counts differ", ir_shape_str(from, x, sizeof x),
                    ir_shape_str(&n->shape, y, sizeof y));
    }
    return 0;
}

/* "2,0,1" */
static char *perm_str(const int *perm, int rank, char *buf, size_t size) {
    size_t used = 0;
    buf[0] = 0;
    for (int d = 0; d < rank && used < size; d++)
        used += (size_t)snprintf(buf + used, size - used, "%s%d", d ? "," : "", perm[d]);
    return buf;
}

/* output dim d = input dim perm[d]; entries past the rank are 0 */
static int shape_transpose(ir_graph *g, ir_node *n) {
    const ir_shape *x = &in(g, n, 0)->shape;
    unsigned seen = 0;
    char p[64];
    for (int d = 0; d < IR_MAX_RANK; d++) {
        int axis = n->perm[d];
        int bad = d < x->rank ? axis < 0 || axis >= x->rank || ((seen >> axis) & 1) : axis != 0;
        if (bad)
            return fail(g, "transpose: [%s] is not a permutation of the %d axes of the input",
                        perm_str(n->perm, d < x->rank ? x->rank : IR_MAX_RANK, p, sizeof p), x->rank);
        if (d < x->rank)
            seen |= 1u << axis;
    }
    ir_shape r = ir_shape_scalar();
    r.rank = x->rank;
    for (int d = 0; d < x->rank; d++) {
        r.dims[d] = x->dims[n->perm[d]];
        r.batch_mask |= (uint32_t)is_batch(x, n->perm[d]) << d;
    }
    n->dtype = in(g, n, 0)->dtype;
    n->shape = r;
    return 0;
}

/* Checks that `axis` of s exists and is not the batch dim. */
static int static_axis(ir_graph *g, const ir_node *n, const ir_shape *s) {
    if (n->axis < 0 || n->axis >= s->rank)
        return fail(g, "%s: axis %d is out of range for a tensor of rank %d", ir_ops[n->op].name, n->axis, s->rank);
    if (is_batch(s, n->axis))
        return fail(g, "%s: cannot work along the batch dimension (axis %d)", ir_ops[n->op].name, n->axis);
    return 0;
}

/* x[.., n, ..] -> [.., stop - start, ..] */
static int shape_slice(ir_graph *g, ir_node *n) {
    const ir_shape *x = &in(g, n, 0)->shape;
    if (static_axis(g, n, x))
        return -1;
    if (n->start < 0 || n->start >= n->stop || n->stop > x->dims[n->axis])
        return fail(g, "slice: [%lld, %lld) is not a non-empty range within the %lld elements of axis %d",
                    (long long)n->start, (long long)n->stop, (long long)x->dims[n->axis], n->axis);
    n->dtype = in(g, n, 0)->dtype;
    n->shape = *x;
    n->shape.dims[n->axis] = n->stop - n->start;
    return 0;
}

/* x[.., k, ..] -> the builder's shape [.., m, ..], m >= start + k */
static int shape_pad(ir_graph *g, ir_node *n) {
    const ir_shape *x = &in(g, n, 0)->shape;
    char a[128], b[128];
    n->dtype = in(g, n, 0)->dtype;
    if (static_axis(g, n, x))
        return -1;
    ir_shape want = *x;
    want.dims[n->axis] = n->shape.rank == x->rank ? n->shape.dims[n->axis] : 0;
    if (!ir_shape_equal(&want, &n->shape) || n->start < 0 || n->start + x->dims[n->axis] > want.dims[n->axis])
        return fail(g, "pad: %s placed at %lld along axis %d does not fit in %s", ir_shape_str(x, a, sizeof a),
                    (long long)n->start, n->axis, ir_shape_str(&n->shape, b, sizeof b));
    return 0;
}

/* a[.., m, ..], b[.., k, ..] -> [.., m + k, ..] */
static int shape_concat(ir_graph *g, ir_node *n) {
    const ir_shape *a = &in(g, n, 0)->shape, *b = &in(g, n, 1)->shape;
    char x[128], y[128];
    if (in(g, n, 0)->dtype != in(g, n, 1)->dtype)
        return fail(g, "concat: both tensors must have one dtype, got %s and %s", ir_dtype_name(in(g, n, 0)->dtype),
                    ir_dtype_name(in(g, n, 1)->dtype));
    if (static_axis(g, n, a))
        return -1;
    ir_shape r = *a;
    r.dims[n->axis] = b->rank == a->rank ? b->dims[n->axis] : 0;
    if (!ir_shape_equal(&r, b))
        return fail(g, "concat: %s and %s differ in more than axis %d", ir_shape_str(a, x, sizeof x),
                    ir_shape_str(b, y, sizeof y), n->axis);
    r.dims[n->axis] = a->dims[n->axis] + b->dims[n->axis];
    n->dtype = in(g, n, 0)->dtype;
    n->shape = r;
    return 0;
}

/* [M,K] @ [K,N] -> [M,N]; a transposed side is stored as [K,M] / [N,K]. */
static int shape_matmul(ir_graph *g, ir_node *n) {
    const ir_shape *a = &in(g, n, 0)->shape, *b = &in(g, n, 1)->shape;
    char x[128], y[128];
    if (in(g, n, 0)->dtype != IR_F32 || in(g, n, 1)->dtype != IR_F32)
        return fail(g, "'@' needs f32 operands");
    if (a->rank != 2 || b->rank != 2)
        return fail(g, "'@' of %s and %s: only matrices (rank 2) are supported",
                    ir_shape_str(a, x, sizeof x), ir_shape_str(b, y, sizeof y));
    int ta = !!(n->flags & IR_TRANSPOSE_A), tb = !!(n->flags & IR_TRANSPOSE_B);
    int am = ta, ak = !ta, bk = tb, bn = !tb;
    if (a->dims[ak] != b->dims[bk] || is_batch(a, ak) != is_batch(b, bk))
        return fail(g, "'@' of %s and %s: inner dimensions differ", ir_shape_str(a, x, sizeof x),
                    ir_shape_str(b, y, sizeof y));
    ir_shape r = ir_shape_scalar();
    r.rank = 2;
    r.dims[0] = a->dims[am];
    r.dims[1] = b->dims[bn];
    r.batch_mask = (uint32_t)is_batch(a, am) | (uint32_t)is_batch(b, bn) << 1;
    n->dtype = IR_F32;
    n->shape = r;
    return 0;
}

/* Is `s` `prefix` with one more dim at the end? */
static int extends(const ir_shape *s, const ir_shape *prefix) {
    if (s->rank != prefix->rank + 1)
        return 0;
    for (int i = 0; i < prefix->rank; i++)
        if (s->dims[i] != prefix->dims[i] || is_batch(s, i) != is_batch(prefix, i))
            return 0;
    return !is_batch(s, prefix->rank);
}

/* labels i32[..] -> f32[.., n]; the builder sets the shape. */
static int shape_one_hot(ir_graph *g, ir_node *n) {
    const ir_node *labels = in(g, n, 0);
    char a[128];
    if (labels->dtype != IR_I32)
        return fail(g, "one_hot: the labels must be i32, got %s", ir_dtype_name(labels->dtype));
    if (labels->shape.rank >= IR_MAX_RANK)
        return fail(g, "one_hot: labels of rank %d leave no room for the class axis (at most rank %d)",
                    labels->shape.rank, IR_MAX_RANK);
    if (!extends(&n->shape, &labels->shape) || n->shape.dims[labels->shape.rank] < 1)
        return fail(g, "one_hot: the result must be the labels' shape %s plus a class count of at least 1",
                    ir_shape_str(&labels->shape, a, sizeof a));
    n->dtype = IR_F32;
    return 0;
}

/* table [V, D], indices i32[..] -> [.., D] */
static int shape_gather(ir_graph *g, ir_node *n) {
    const ir_node *table = in(g, n, 0), *idx = in(g, n, 1);
    char a[128];
    if (table->shape.rank != 2 || table->shape.batch_mask)
        return fail(g, "gather: the table must be a matrix [V, D] without the batch dimension, got %s",
                    ir_shape_str(&table->shape, a, sizeof a));
    if (idx->dtype != IR_I32)
        return fail(g, "gather: the indices must be i32, got %s", ir_dtype_name(idx->dtype));
    if (idx->shape.rank >= IR_MAX_RANK)
        return fail(g, "gather: indices of rank %d leave no room for the row (at most rank %d)", idx->shape.rank,
                    IR_MAX_RANK);
    n->dtype = table->dtype;
    n->shape = idx->shape;
    n->shape.dims[n->shape.rank++] = table->shape.dims[1];
    return 0;
}

/* src f32[.., D], indices i32[..] -> f32[V, D]; the builder sets the shape. */
static int shape_scatter_add(ir_graph *g, ir_node *n) {
    const ir_node *src = in(g, n, 0), *idx = in(g, n, 1);
    char a[128], b[128];
    if (src->dtype != IR_F32 || idx->dtype != IR_I32)
        return fail(g, "scatter_add: needs f32 values and i32 indices, got %s and %s", ir_dtype_name(src->dtype),
                    ir_dtype_name(idx->dtype));
    if (!extends(&src->shape, &idx->shape))
        return fail(g, "scatter_add: the values %s must be the indices' shape %s plus one row dimension",
                    ir_shape_str(&src->shape, a, sizeof a), ir_shape_str(&idx->shape, b, sizeof b));
    if (n->shape.rank != 2 || n->shape.batch_mask || n->shape.dims[0] < 1 ||
        n->shape.dims[1] != src->shape.dims[src->shape.rank - 1])
        return fail(g, "scatter_add: the result must be [V, %lld] with V >= 1, got %s",
                    (long long)src->shape.dims[src->shape.rank - 1], ir_shape_str(&n->shape, a, sizeof a));
    n->dtype = IR_F32;
    return 0;
}

/* ---------------------------------------------------------- window ops */

/* An f32 NCHW image: rank 4, only N may be the batch dim. */
static int check_image(ir_graph *g, const ir_node *n, const ir_node *x, const char *what) {
    char a[128];
    if (x->dtype != IR_F32 || x->shape.rank != 4 || (x->shape.batch_mask & ~1u))
        return fail(g, "%s: %s must be f32[N, C, H, W] with only N the batch, got %s", ir_ops[n->op].name, what,
                    ir_type_str(x->dtype, &x->shape, a, sizeof a));
    return 0;
}

/* Outputs of a window of k sweeping n elements (padded by `pad` on each
 * side) every `stride`; 0 when the window does not fit once. */
static int64_t window_count(int64_t n, int64_t k, int stride, int pad) {
    return n + 2 * (int64_t)pad < k ? 0 : (n + 2 * (int64_t)pad - k) / stride + 1;
}

/* The shape conv2d gives for an image x and weights w, into *out. */
static int conv_shape(ir_graph *g, const ir_node *n, const ir_node *x, const ir_shape *w, ir_shape *out) {
    char a[128], b[128];
    if (check_image(g, n, x, "the input"))
        return -1;
    if (n->stride < 1 || n->padding < 0)
        return fail(g, "%s: the stride must be >= 1 and the padding >= 0, got %d and %d", ir_ops[n->op].name,
                    n->stride, n->padding);
    if (w->rank != 4 || w->batch_mask || w->dims[1] != x->shape.dims[1])
        return fail(g, "%s: the weights must be [O, C, KH, KW] with C = %lld channels of the input, got %s",
                    ir_ops[n->op].name, (long long)x->shape.dims[1], ir_shape_str(w, a, sizeof a));
    *out = x->shape;
    out->dims[1] = w->dims[0];
    out->dims[2] = window_count(x->shape.dims[2], w->dims[2], n->stride, n->padding);
    out->dims[3] = window_count(x->shape.dims[3], w->dims[3], n->stride, n->padding);
    if (out->dims[2] < 1 || out->dims[3] < 1)
        return fail(g, "%s: a %lldx%lld kernel does not fit in the input %s padded by %d", ir_ops[n->op].name,
                    (long long)w->dims[2], (long long)w->dims[3], ir_shape_str(&x->shape, b, sizeof b), n->padding);
    return 0;
}

/* The shape pooling x gives, into *out. */
static int pool_shape(ir_graph *g, const ir_node *n, const ir_node *x, ir_shape *out) {
    char a[128];
    if (check_image(g, n, x, "the input"))
        return -1;
    if (n->size < 1 || n->stride < 1)
        return fail(g, "%s: the window size and stride must be >= 1, got %d and %d", ir_ops[n->op].name, n->size,
                    n->stride);
    *out = x->shape;
    out->dims[2] = window_count(x->shape.dims[2], n->size, n->stride, 0);
    out->dims[3] = window_count(x->shape.dims[3], n->size, n->stride, 0);
    if (out->dims[2] < 1 || out->dims[3] < 1)
        return fail(g, "%s: a %dx%d window does not fit in the input %s", ir_ops[n->op].name, n->size, n->size,
                    ir_shape_str(&x->shape, a, sizeof a));
    return 0;
}

/* Input k must have the shape `want` (what the op's forward produces). */
static int expect_shape(ir_graph *g, const ir_node *n, int k, const ir_shape *want, const char *what) {
    const ir_node *x = in(g, n, k);
    char a[128], b[128];
    if (x->dtype != IR_F32 || !ir_shape_equal(&x->shape, want))
        return fail(g, "%s: %s must be f32%s, got %s", ir_ops[n->op].name, what, ir_shape_str(want, a, sizeof a),
                    ir_type_str(x->dtype, &x->shape, b, sizeof b));
    return 0;
}

/* A node standing for the image the builder's shape describes. */
static ir_node image_of(const ir_node *n) {
    ir_node x = *n;
    x.dtype = IR_F32;
    return x;
}

static int shape_conv2d(ir_graph *g, ir_node *n) {
    ir_shape r;
    if (in(g, n, 1)->dtype != IR_F32)
        return fail(g, "conv2d: the weights must be f32");
    if (conv_shape(g, n, in(g, n, 0), &in(g, n, 1)->shape, &r))
        return -1;
    n->dtype = IR_F32;
    n->shape = r;
    return 0;
}

/* dy, w -> dx of the builder's shape, whose conv2d with w has dy's shape */
static int shape_conv2d_grad_input(ir_graph *g, ir_node *n) {
    ir_node x = image_of(n);
    ir_shape y;
    if (in(g, n, 1)->dtype != IR_F32)
        return fail(g, "conv2d_grad_input: the weights must be f32");
    if (conv_shape(g, n, &x, &in(g, n, 1)->shape, &y) || expect_shape(g, n, 0, &y, "the output gradient"))
        return -1;
    n->dtype = IR_F32;
    return 0;
}

/* x, dy -> dw of the builder's shape, whose conv2d of x has dy's shape */
static int shape_conv2d_grad_weight(ir_graph *g, ir_node *n) {
    ir_shape y;
    if (conv_shape(g, n, in(g, n, 0), &n->shape, &y) || expect_shape(g, n, 1, &y, "the output gradient"))
        return -1;
    n->dtype = IR_F32;
    return 0;
}

static int shape_pool(ir_graph *g, ir_node *n) {
    ir_shape r;
    if (pool_shape(g, n, in(g, n, 0), &r))
        return -1;
    n->dtype = IR_F32;
    n->shape = r;
    return 0;
}
#define shape_max_pool2d shape_pool
#define shape_avg_pool2d shape_pool

/* x, dy (pooled) -> x's shape */
static int shape_max_pool2d_grad(ir_graph *g, ir_node *n) {
    ir_shape y;
    if (pool_shape(g, n, in(g, n, 0), &y) || expect_shape(g, n, 1, &y, "the output gradient"))
        return -1;
    n->dtype = IR_F32;
    n->shape = in(g, n, 0)->shape;
    return 0;
}

/* x, v (x's shape) -> pooled */
static int shape_max_pool2d_pick(ir_graph *g, ir_node *n) {
    if (expect_shape(g, n, 1, &in(g, n, 0)->shape, "the values") || shape_pool(g, n))
        return -1;
    return 0;
}

/* dy -> the builder's shape, which pools to dy's */
static int shape_avg_pool2d_grad(ir_graph *g, ir_node *n) {
    ir_node x = image_of(n);
    ir_shape y;
    if (pool_shape(g, n, &x, &y) || expect_shape(g, n, 0, &y, "the output gradient"))
        return -1;
    n->dtype = IR_F32;
    return 0;
}

/* x, training, step -> x's shape; p = value in [0, 1) */
static int shape_dropout(ir_graph *g, ir_node *n) {
    const ir_node *x = in(g, n, 0), *training = in(g, n, 1), *step = in(g, n, 2);
    if (x->dtype != IR_F32)
        return fail(g, "dropout: needs an f32 tensor, got %s", ir_dtype_name(x->dtype));
    if (!(n->value >= 0 && n->value < 1))
        return fail(g, "dropout: the probability must be in [0, 1), got %g", n->value);
    if (training->dtype != IR_F32 || training->shape.rank || step->dtype != IR_F32 || step->shape.rank)
        return fail(g, "dropout: 'training' and 'step' must be f32 scalars");
    n->dtype = IR_F32;
    n->shape = x->shape;
    return 0;
}

static int shape_assign(ir_graph *g, ir_node *n) {
    const ir_node *slot = in(g, n, 0), *v = in(g, n, 1);
    if (slot->op != IR_PARAM)
        return fail(g, "assign: the target must be a param");
    if (!ir_shape_equal(&slot->shape, &v->shape) || slot->dtype != v->dtype)
        return fail(g, "assign: value type differs from the slot's");
    n->dtype = slot->dtype;
    n->shape = slot->shape;
    return 0;
}

typedef int (*shape_fn)(ir_graph *, ir_node *);
static const shape_fn shape_rules[IR_OP_COUNT] = {
#define OP(id, name, arity, class) [IR_##id] = shape_##name,
#include "ops.def"
#undef OP
};

/* ---------------------------------------------------------------- building */

int ir_append(ir_graph *g, const ir_node *proto) {
    ir_node n = *proto;
    if ((int)n.op < 0 || n.op >= IR_OP_COUNT)
        return fail(g, "bad op %d", (int)n.op);
    n.n_inputs = ir_ops[n.op].arity;
    for (int k = 0; k < n.n_inputs; k++)
        if (n.inputs[k] < 0 || n.inputs[k] >= g->n_nodes)
            return fail(g, "%s: input %d is not a node (%d)", ir_ops[n.op].name, k, n.inputs[k]);
    for (int k = n.n_inputs; k < 3; k++)
        n.inputs[k] = -1;
    if (shape_rules[n.op](g, &n) != 0)
        return -1;
    GROW(g->nodes, g->n_nodes, g->cap_nodes);
    g->nodes[g->n_nodes] = n;
    return g->n_nodes++;
}

int ir_same_attrs(const ir_node *a, const ir_node *b) {
    if (a->value != b->value || a->axes != b->axes || a->keepdims != b->keepdims || a->flags != b->flags ||
        a->index != b->index || a->axis != b->axis || a->start != b->start || a->stop != b->stop ||
        a->size != b->size || a->stride != b->stride || a->padding != b->padding || a->seed != b->seed)
        return 0;
    return memcmp(a->perm, b->perm, sizeof a->perm) == 0;
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
        return fail(g, "ir_add: %s is not elementwise", ir_ops[op].name);
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

int ir_matmul(ir_graph *g, int a, int b, int flags) {
    ir_node n = proto_of(IR_MATMUL, a, b, -1);
    n.flags = flags;
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
        return fail(g, "one_hot: the labels are not a node (%d)", labels);
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
        return fail(g, "scatter_add: the values must be a node of rank >= 1");
    n.shape.rank = 2;
    n.shape.dims[0] = rows;
    n.shape.dims[1] = g->nodes[src].shape.dims[g->nodes[src].shape.rank - 1];
    return ir_append(g, &n);
}

int ir_transpose(ir_graph *g, int x, const int *perm) {
    ir_node n = proto_of(IR_TRANSPOSE, x, -1, -1);
    int rank = x >= 0 && x < g->n_nodes ? g->nodes[x].shape.rank : 0;
    if (!perm && rank < 2)
        return fail(g, "transpose: swapping the last two axes needs rank 2 or more, got rank %d", rank);
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
    g->inputs[g->n_inputs++] = (ir_input){xstrdup(name), id, is_target};
    return id;
}

int ir_add_param(ir_graph *g, const char *name, ir_dtype dtype, const ir_shape *shape, int trainable,
                 ir_init init, double a, double b, int64_t fan_in, int64_t fan_out) {
    if (shape->batch_mask)
        return fail(g, "a parameter's shape cannot use the batch dimension");
    int id = leaf(g, IR_PARAM, dtype, shape, g->n_params);
    if (id < 0)
        return -1;
    GROW(g->params, g->n_params, g->cap_params);
    g->params[g->n_params++] = (ir_param){xstrdup(name), id, trainable, init, a, b, fan_in, fan_out, -1};
    return id;
}

int ir_add_hyper(ir_graph *g, const char *name, double value) {
    ir_shape s = ir_shape_scalar();
    int id = leaf(g, IR_HYPER, IR_F32, &s, g->n_hypers);
    if (id < 0)
        return -1;
    GROW(g->hypers, g->n_hypers, g->cap_hypers);
    g->hypers[g->n_hypers++] = (ir_hyper){xstrdup(name), value, id};
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
    g->metrics[g->n_metrics++] = (ir_result){xstrdup(name), node};
}

void ir_add_output(ir_graph *g, const char *name, int node) {
    GROW(g->outputs, g->n_outputs, g->cap_outputs);
    g->outputs[g->n_outputs++] = (ir_result){xstrdup(name), node};
}

/* ------------------------------------------------------------- inspection */

int ir_verify(ir_graph *g) {
    for (int i = 0; i < g->n_nodes; i++) {
        ir_node n = g->nodes[i];
        if (n.n_inputs != ir_ops[n.op].arity)
            return fail(g, "%%%d %s: %d inputs, expected %d", i, ir_ops[n.op].name, n.n_inputs,
                        ir_ops[n.op].arity);
        for (int k = 0; k < n.n_inputs; k++)
            if (n.inputs[k] < 0 || n.inputs[k] >= i)
                return fail(g, "%%%d %s: input %d (%%%d) does not precede it", i, ir_ops[n.op].name, k,
                            n.inputs[k]);
        ir_node check = n;
        if (shape_rules[n.op](g, &check) != 0) {
            char msg[sizeof g->error - 32];
            snprintf(msg, sizeof msg, "%.400s", g->error);
            return fail(g, "%%%d %s: %s", i, ir_ops[n.op].name, msg);
        }
        if (check.dtype != n.dtype || !ir_shape_equal(&check.shape, &n.shape))
            return fail(g, "%%%d %s: stored type differs from its shape rule", i, ir_ops[n.op].name);
    }
    for (int i = 0; i < g->n_params; i++)
        if (g->nodes[g->params[i].node].op != IR_PARAM)
            return fail(g, "param %s: node %%%d is not a param", g->params[i].name, g->params[i].node);
    if (g->loss >= 0 && (g->nodes[g->loss].shape.rank != 0 || g->nodes[g->loss].dtype != IR_F32))
        return fail(g, "the loss must be an f32 scalar");
    return 0;
}

static void dump_attrs(const ir_graph *g, const ir_node *n, FILE *out) {
    switch (n->op) {
    case IR_INPUT:
        fprintf(out, " %s%s", g->inputs[n->index].name, g->inputs[n->index].is_target ? " target" : "");
        break;
    case IR_PARAM:
        fprintf(out, " %s%s", g->params[n->index].name, g->params[n->index].trainable ? "" : " state");
        break;
    case IR_HYPER:
        fprintf(out, " %s", g->hypers[n->index].name);
        break;
    case IR_CONST:
        fprintf(out, " %.9g", n->value);
        break;
    case IR_REDUCE_SUM:
    case IR_REDUCE_MAX:
    case IR_NUMEL:
        fprintf(out, " axes=");
        for (int i = 0, first = 1; i < IR_MAX_RANK; i++)
            if ((n->axes >> i) & 1) {
                fprintf(out, "%s%d", first ? "" : ",", i);
                first = 0;
            }
        if (n->keepdims)
            fprintf(out, " keepdims");
        break;
    case IR_ARGMAX:
    case IR_CONCAT:
        fprintf(out, " axis=%d", n->axis);
        break;
    case IR_SLICE:
        fprintf(out, " axis=%d start=%lld stop=%lld", n->axis, (long long)n->start, (long long)n->stop);
        break;
    case IR_PAD:
        fprintf(out, " axis=%d start=%lld", n->axis, (long long)n->start);
        break;
    case IR_CONV2D:
    case IR_CONV2D_GRAD_INPUT:
    case IR_CONV2D_GRAD_WEIGHT:
        fprintf(out, " stride=%d padding=%d", n->stride, n->padding);
        break;
    case IR_MAX_POOL2D:
    case IR_MAX_POOL2D_GRAD:
    case IR_MAX_POOL2D_PICK:
    case IR_AVG_POOL2D:
    case IR_AVG_POOL2D_GRAD:
        fprintf(out, " size=%d stride=%d", n->size, n->stride);
        break;
    case IR_DROPOUT:
        fprintf(out, " p=%.9g seed=%u", n->value, (unsigned)n->seed);
        break;
    case IR_TRANSPOSE: {
        char p[64];
        fprintf(out, " perm=%s", perm_str(n->perm, g->nodes[n->inputs[0]].shape.rank, p, sizeof p));
        break;
    }
    case IR_MATMUL:
        if (n->flags & IR_TRANSPOSE_A)
            fprintf(out, " ta");
        if (n->flags & IR_TRANSPOSE_B)
            fprintf(out, " tb");
        break;
    default:
        break;
    }
}

/* One node a line:  %7 = add %3, %6 : f32[B,1] */
void ir_dump(const ir_graph *g, const unsigned char *live, FILE *out) {
    fprintf(out, "model %s  # max batch %lld\n", g->model_name, (long long)g->max_batch);
    for (int i = 0; i < g->n_nodes; i++) {
        if (live && !live[i])
            continue;
        const ir_node *n = &g->nodes[i];
        char ty[160];
        fprintf(out, "  %%%d = %s", i, ir_ops[n->op].name);
        for (int k = 0; k < n->n_inputs; k++)
            fprintf(out, "%s%%%d", k ? ", " : " ", n->inputs[k]);
        dump_attrs(g, n, out);
        fprintf(out, " : %s\n", ir_type_str(n->dtype, &n->shape, ty, sizeof ty));
    }
    if (g->loss >= 0)
        fprintf(out, "  loss %%%d\n", g->loss);
    for (int i = 0; i < g->n_metrics; i++)
        fprintf(out, "  metric %s %%%d\n", g->metrics[i].name, g->metrics[i].node);
    for (int i = 0; i < g->n_outputs; i++)
        fprintf(out, "  output %s %%%d\n", g->outputs[i].name, g->outputs[i].node);
    for (int i = 0; i < g->n_params; i++)
        if (g->params[i].grad >= 0)
            fprintf(out, "  grad %s %%%d\n", g->params[i].name, g->params[i].grad);
}

void ir_dump_dot(const ir_graph *g, const unsigned char *live, FILE *out) {
    fprintf(out, "digraph \"%s\" {\n  rankdir=TB;\n  node [fontname=\"monospace\", fontsize=10];\n",
            g->model_name);
    for (int i = 0; i < g->n_nodes; i++) {
        if (live && !live[i])
            continue;
        const ir_node *n = &g->nodes[i];
        char ty[160];
        const char *shape = ir_ops[n->op].cls == IR_LEAF ? "box" : "ellipse";
        fprintf(out, "  n%d [shape=%s, label=\"%%%d %s", i, shape, i, ir_ops[n->op].name);
        if (n->op == IR_PARAM)
            fprintf(out, " %s", g->params[n->index].name);
        else if (n->op == IR_INPUT)
            fprintf(out, " %s", g->inputs[n->index].name);
        else if (n->op == IR_CONST)
            fprintf(out, " %.6g", n->value);
        fprintf(out, "\\n%s\"];\n", ir_type_str(n->dtype, &n->shape, ty, sizeof ty));
        for (int k = 0; k < n->n_inputs; k++)
            fprintf(out, "  n%d -> n%d;\n", n->inputs[k], i);
    }
    if (g->loss >= 0 && (!live || live[g->loss]))
        fprintf(out, "  loss [shape=plaintext]; n%d -> loss;\n", g->loss);
    fprintf(out, "}\n");
}

void ir_mark_live(const ir_graph *g, const int *roots, int n_roots, unsigned char *live) {
    for (int r = 0; r < n_roots; r++)
        if (roots[r] >= 0)
            live[roots[r]] = 1;
    /* Inputs precede users, so one backward sweep reaches every dependency. */
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        if (!live[i])
            continue;
        for (int k = 0; k < g->nodes[i].n_inputs; k++)
            live[g->nodes[i].inputs[k]] = 1;
    }
}

void ir_count_uses(const ir_graph *g, const unsigned char *live, int *uses) {
    memset(uses, 0, (size_t)g->n_nodes * sizeof *uses);
    for (int i = 0; i < g->n_nodes; i++) {
        if (live && !live[i])
            continue;
        for (int k = 0; k < g->nodes[i].n_inputs; k++)
            uses[g->nodes[i].inputs[k]]++;
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
        int64_t k = a->dims[(n->flags & IR_TRANSPOSE_A) ? 0 : 1];
        return 2 * ir_shape_numel(&n->shape) * k;
    }
    default:
        return ir_shape_numel(&n->shape);
    }
}
