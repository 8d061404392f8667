/*
 * shape.c - shapes, and the rule that gives each op its result type.
 *
 * The first part is arithmetic on ir_shape (equality, element counts,
 * numpy broadcasting with the batch dimension, the "f32[B,2]" spelling).
 * The second is the shape rules: one function per op named shape_<name>
 * and gathered into a table from ops.def, so an op without a shape rule
 * does not compile.  A rule either fills in the node's dtype and shape or
 * writes a message to g->error and fails; the frontend turns that message
 * into a located diagnostic.  ir_append runs the rule on every new node and
 * ir_verify runs it again on a finished graph, both through ir_infer_shape.
 */
#include "ir.h"
#include "ir_internal.h"

#include <string.h>

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

/* numpy broadcasting: align right; equal dims match, a literal 1 stretches.
 * The batch dim only matches the batch dim (or a 1). */
int ir_broadcast_shapes(const ir_shape *a, const ir_shape *b, ir_shape *out) {
    ir_shape r = ir_shape_scalar();
    r.rank = a->rank > b->rank ? a->rank : b->rank;
    for (int i = 0; i < r.rank; i++) {
        int ia = a->rank - r.rank + i, ib = b->rank - r.rank + i;
        int has_a = ia >= 0, has_b = ib >= 0;
        if (has_a && (!has_b || ir_dim_is_one(b, ib))) {
            r.dims[i] = a->dims[ia];
            r.batch_mask |= (uint32_t)ir_is_batch_dim(a, ia) << i;
        } else if (has_b && (!has_a || ir_dim_is_one(a, ia))) {
            r.dims[i] = b->dims[ib];
            r.batch_mask |= (uint32_t)ir_is_batch_dim(b, ib) << i;
        } else if (a->dims[ia] == b->dims[ib] && ir_is_batch_dim(a, ia) == ir_is_batch_dim(b, ib)) {
            r.dims[i] = a->dims[ia];
            r.batch_mask |= (uint32_t)ir_is_batch_dim(a, ia) << i;
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
        if (ir_is_batch_dim(s, i))
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

/* The builder sets dtype and shape; the axis must be one of its dims. */
static int shape_iota(ir_graph *g, ir_node *n) {
    if (n->axis < 0 || n->axis >= n->shape.rank)
        return ir_fail(g, "iota: axis %d of a rank-%d tensor", n->axis, n->shape.rank);
    if (n->dtype != IR_F32 && n->dtype != IR_I32)
        return ir_fail(g, "iota: f32 or i32 only");
    return 0;
}

static int shape_numel(ir_graph *g, ir_node *n) {
    n->dtype = IR_F32;
    n->shape = ir_shape_scalar();
    if (n->axes >> in(g, n, 0)->shape.rank)
        return ir_fail(g, "numel over an axis the input does not have");
    return 0;
}

/* Elementwise math on floats: the result is f32. */
static int shape_float_unary(ir_graph *g, ir_node *n) {
    const ir_node *x = in(g, n, 0);
    if (x->dtype != IR_F32)
        return ir_fail(g, "'%s' needs an f32 operand, got %s", ir_ops[n->op].name,
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
            return ir_fail(g, "shapes %s and %s cannot be broadcast together",
                           ir_shape_str(out, a, sizeof a), ir_shape_str(&in(g, n, k)->shape, b, sizeof b));
        }
        *out = r;
    }
    return 0;
}

static int same_dtype(ir_graph *g, ir_node *n) {
    if (in(g, n, 0)->dtype != in(g, n, 1)->dtype)
        return ir_fail(g, "'%s' of %s and %s: convert one side with float()", ir_ops[n->op].name,
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
        return ir_fail(g, "'^' needs f32 operands");
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
        return ir_fail(g, "where(): both branches must have one dtype, got %s and %s",
                       ir_dtype_name(in(g, n, 1)->dtype), ir_dtype_name(in(g, n, 2)->dtype));
    n->dtype = in(g, n, 1)->dtype;
    return broadcast_inputs(g, n, 0, 3, &n->shape);
}

static int shape_reduce(ir_graph *g, ir_node *n) {
    const ir_node *x = in(g, n, 0);
    if (n->axes >> x->shape.rank)
        return ir_fail(g, "reduction axis out of range for a tensor of rank %d", x->shape.rank);
    ir_shape r = ir_shape_scalar();
    for (int i = 0; i < x->shape.rank; i++) {
        int reduced = (n->axes >> i) & 1;
        if (reduced && !n->keepdims)
            continue;
        r.dims[r.rank] = reduced ? 1 : x->shape.dims[i];
        r.batch_mask |= (uint32_t)(!reduced && ir_is_batch_dim(&x->shape, i)) << r.rank;
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
        return ir_fail(g, "sum_to: target shape does not broadcast to the input");
    return 0;
}

/* x[.., a, ..] -> i32[.., ..]: `axis` (normalised by the builder) is dropped. */
static int shape_argmax(ir_graph *g, ir_node *n) {
    const ir_shape *x = &in(g, n, 0)->shape;
    if (n->axis < 0 || n->axis >= x->rank)
        return ir_fail(g, "argmax: axis %d is out of range for a tensor of rank %d", n->axis, x->rank);
    ir_shape r = ir_shape_scalar();
    for (int i = 0; i < x->rank; i++) {
        if (i == n->axis)
            continue;
        r.dims[r.rank] = x->dims[i];
        r.batch_mask |= (uint32_t)ir_is_batch_dim(x, i) << r.rank;
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
        return ir_fail(g, "cannot broadcast %s to %s", ir_shape_str(&in(g, n, 0)->shape, a, sizeof a),
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
        a *= ir_is_batch_dim(from, i) ? 1 : from->dims[i];
    for (int i = 0; i < n->shape.rank; i++)
        b *= ir_is_batch_dim(&n->shape, i) ? 1 : n->shape.dims[i];
    if (a != b || __builtin_popcount(from->batch_mask) != __builtin_popcount(n->shape.batch_mask)) {
        char x[128], y[128];
        return ir_fail(g, "cannot reshape %s to %s: element counts differ", ir_shape_str(from, x, sizeof x),
                       ir_shape_str(&n->shape, y, sizeof y));
    }
    return 0;
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
            return ir_fail(g, "transpose: [%s] is not a permutation of the %d axes of the input",
                           ir_perm_str(n->perm, d < x->rank ? x->rank : IR_MAX_RANK, p, sizeof p), x->rank);
        if (d < x->rank)
            seen |= 1u << axis;
    }
    ir_shape r = ir_shape_scalar();
    r.rank = x->rank;
    for (int d = 0; d < x->rank; d++) {
        r.dims[d] = x->dims[n->perm[d]];
        r.batch_mask |= (uint32_t)ir_is_batch_dim(x, n->perm[d]) << d;
    }
    n->dtype = in(g, n, 0)->dtype;
    n->shape = r;
    return 0;
}

/* Checks that `axis` of s exists and is not the batch dim. */
static int static_axis(ir_graph *g, const ir_node *n, const ir_shape *s) {
    if (n->axis < 0 || n->axis >= s->rank)
        return ir_fail(g, "%s: axis %d is out of range for a tensor of rank %d", ir_ops[n->op].name, n->axis, s->rank);
    if (ir_is_batch_dim(s, n->axis))
        return ir_fail(g, "%s: cannot work along the batch dimension (axis %d)", ir_ops[n->op].name, n->axis);
    return 0;
}

/* x[.., n, ..] -> [.., stop - start, ..] */
static int shape_slice(ir_graph *g, ir_node *n) {
    const ir_shape *x = &in(g, n, 0)->shape;
    if (static_axis(g, n, x))
        return -1;
    if (n->start < 0 || n->start >= n->stop || n->stop > x->dims[n->axis])
        return ir_fail(g, "slice: [%lld, %lld) is not a non-empty range within the %lld elements of axis %d",
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
        return ir_fail(g, "pad: %s placed at %lld along axis %d does not fit in %s", ir_shape_str(x, a, sizeof a),
                       (long long)n->start, n->axis, ir_shape_str(&n->shape, b, sizeof b));
    return 0;
}

/* a[.., m, ..], b[.., k, ..] -> [.., m + k, ..] */
static int shape_concat(ir_graph *g, ir_node *n) {
    const ir_shape *a = &in(g, n, 0)->shape, *b = &in(g, n, 1)->shape;
    char x[128], y[128];
    if (in(g, n, 0)->dtype != in(g, n, 1)->dtype)
        return ir_fail(g, "concat: both tensors must have one dtype, got %s and %s", ir_dtype_name(in(g, n, 0)->dtype),
                       ir_dtype_name(in(g, n, 1)->dtype));
    if (static_axis(g, n, a))
        return -1;
    ir_shape r = *a;
    r.dims[n->axis] = b->rank == a->rank ? b->dims[n->axis] : 0;
    if (!ir_shape_equal(&r, b))
        return ir_fail(g, "concat: %s and %s differ in more than axis %d", ir_shape_str(a, x, sizeof x),
                       ir_shape_str(b, y, sizeof y), n->axis);
    r.dims[n->axis] = a->dims[n->axis] + b->dims[n->axis];
    n->dtype = in(g, n, 0)->dtype;
    n->shape = r;
    return 0;
}

/* [M,K] @ [K,N] -> [M,N]; a transposed side is stored as [K,M] / [N,K].
 * Unbatched, M (K of a transposed a) and K of b take every leading dim;
 * batched, each of M, K and N is one of the last two dims. */
ir_matmul_dims ir_matmul_split(const ir_node *n, int a_rank, int b_rank) {
    ir_matmul_dims d;
    int ta = !!(n->flags & IR_TRANSPOSE_A), tb = !!(n->flags & IR_TRANSPOSE_B);
    int a0 = n->lead_dims ? a_rank - 2 : 0, b0 = n->lead_dims ? b_rank - 2 : 0;
    d.lead = n->lead_dims;
    if (ta)
        d.k_lo = a0, d.k_hi = a_rank - 1, d.m_lo = a_rank - 1, d.m_hi = a_rank;
    else
        d.m_lo = a0, d.m_hi = a_rank - 1, d.k_lo = a_rank - 1, d.k_hi = a_rank;
    if (tb)
        d.n_lo = b0, d.n_hi = b_rank - 1, d.bk_lo = b_rank - 1, d.bk_hi = b_rank;
    else
        d.bk_lo = b0, d.bk_hi = b_rank - 1, d.n_lo = b_rank - 1, d.n_hi = b_rank;
    return d;
}

/* Do dims [alo, ahi) of a equal dims [blo, bhi) of b (batch marks too)? */
static int same_dims(const ir_shape *a, int alo, int ahi, const ir_shape *b, int blo, int bhi) {
    if (ahi - alo != bhi - blo)
        return 0;
    for (int i = 0; i < ahi - alo; i++)
        if (a->dims[alo + i] != b->dims[blo + i] || ir_is_batch_dim(a, alo + i) != ir_is_batch_dim(b, blo + i))
            return 0;
    return 1;
}

/* Appends dims [lo, hi) of s to r. */
static void append_dims(ir_shape *r, const ir_shape *s, int lo, int hi) {
    for (int i = lo; i < hi; i++) {
        r->batch_mask |= (uint32_t)ir_is_batch_dim(s, i) << r->rank;
        r->dims[r->rank++] = s->dims[i];
    }
}

/* The batched product's own conditions: both operands [S.., x, y] with
 * the same S (the unbatched product's are below). */
static int batched_fits(ir_graph *g, const ir_node *n, const ir_shape *a, const ir_shape *b) {
    char x[128], y[128];
    int lead = n->lead_dims;
    if (a->rank != lead + 2 || b->rank != lead + 2)
        return ir_fail(g, "'@' of %s and %s: a batched product over %d leading dims needs operands of rank %d",
                       ir_shape_str(a, x, sizeof x), ir_shape_str(b, y, sizeof y), lead, lead + 2);
    if (!same_dims(a, 0, lead, b, 0, lead))
        return ir_fail(g, "'@' of %s and %s: the leading (batch) dimensions differ", ir_shape_str(a, x, sizeof x),
                       ir_shape_str(b, y, sizeof y));
    return 0;
}

/* see ir_matmul and ir_matmul_batched in ir.h */
static int shape_matmul(ir_graph *g, ir_node *n) {
    const ir_shape *a = &in(g, n, 0)->shape, *b = &in(g, n, 1)->shape;
    char x[128], y[128];
    if (in(g, n, 0)->dtype != IR_F32 || in(g, n, 1)->dtype != IR_F32)
        return ir_fail(g, "'@' needs f32 operands");
    if (a->rank < 2 || b->rank < 2)
        return ir_fail(g, "'@' of %s and %s: the operands must have at least two dims",
                       ir_shape_str(a, x, sizeof x), ir_shape_str(b, y, sizeof y));
    if (n->lead_dims && batched_fits(g, n, a, b))
        return -1;
    ir_matmul_dims d = ir_matmul_split(n, a->rank, b->rank);
    if (!n->lead_dims && b->rank > 2 && !(n->flags & IR_TRANSPOSE_A))
        return ir_fail(g, "'@' of %s and %s: the right operand must be a matrix (rank 2)",
                       ir_shape_str(a, x, sizeof x), ir_shape_str(b, y, sizeof y));
    if (!same_dims(a, d.k_lo, d.k_hi, b, d.bk_lo, d.bk_hi))
        return ir_fail(g, "'@' of %s and %s: inner dimensions differ", ir_shape_str(a, x, sizeof x),
                       ir_shape_str(b, y, sizeof y));
    ir_shape r = ir_shape_scalar();
    append_dims(&r, a, 0, d.lead);
    append_dims(&r, a, d.m_lo, d.m_hi);
    append_dims(&r, b, d.n_lo, d.n_hi);
    n->dtype = IR_F32;
    n->shape = r;
    return 0;
}

/* Is `s` `prefix` with one more dim at the end? */
static int extends(const ir_shape *s, const ir_shape *prefix) {
    if (s->rank != prefix->rank + 1)
        return 0;
    for (int i = 0; i < prefix->rank; i++)
        if (s->dims[i] != prefix->dims[i] || ir_is_batch_dim(s, i) != ir_is_batch_dim(prefix, i))
            return 0;
    return !ir_is_batch_dim(s, prefix->rank);
}

/* labels i32[..] -> f32[.., n]; the builder sets the shape. */
static int shape_one_hot(ir_graph *g, ir_node *n) {
    const ir_node *labels = in(g, n, 0);
    char a[128];
    if (labels->dtype != IR_I32)
        return ir_fail(g, "one_hot: the labels must be i32, got %s", ir_dtype_name(labels->dtype));
    if (labels->shape.rank >= IR_MAX_RANK)
        return ir_fail(g, "one_hot: labels of rank %d leave no room for the class axis (at most rank %d)",
                       labels->shape.rank, IR_MAX_RANK);
    if (!extends(&n->shape, &labels->shape) || n->shape.dims[labels->shape.rank] < 1)
        return ir_fail(g, "one_hot: the result must be the labels' shape %s plus a class count of at least 1",
                       ir_shape_str(&labels->shape, a, sizeof a));
    n->dtype = IR_F32;
    return 0;
}

/* table [V, D], indices i32[..] -> [.., D] */
static int shape_gather(ir_graph *g, ir_node *n) {
    const ir_node *table = in(g, n, 0), *idx = in(g, n, 1);
    char a[128];
    if (table->shape.rank != 2 || table->shape.batch_mask)
        return ir_fail(g, "gather: the table must be a matrix [V, D] without the batch dimension, got %s",
                       ir_shape_str(&table->shape, a, sizeof a));
    if (idx->dtype != IR_I32)
        return ir_fail(g, "gather: the indices must be i32, got %s", ir_dtype_name(idx->dtype));
    if (idx->shape.rank >= IR_MAX_RANK)
        return ir_fail(g, "gather: indices of rank %d leave no room for the row (at most rank %d)", idx->shape.rank,
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
        return ir_fail(g, "scatter_add: needs f32 values and i32 indices, got %s and %s", ir_dtype_name(src->dtype),
                       ir_dtype_name(idx->dtype));
    if (!extends(&src->shape, &idx->shape))
        return ir_fail(g, "scatter_add: the values %s must be the indices' shape %s plus one row dimension",
                       ir_shape_str(&src->shape, a, sizeof a), ir_shape_str(&idx->shape, b, sizeof b));
    if (n->shape.rank != 2 || n->shape.batch_mask || n->shape.dims[0] < 1 ||
        n->shape.dims[1] != src->shape.dims[src->shape.rank - 1])
        return ir_fail(g, "scatter_add: the result must be [V, %lld] with V >= 1, got %s",
                       (long long)src->shape.dims[src->shape.rank - 1], ir_shape_str(&n->shape, a, sizeof a));
    n->dtype = IR_F32;
    return 0;
}

/* ---------------------------------------------------------- window ops */

/* An f32 NCHW image: rank 4, only N may be the batch dim. */
static int check_image(ir_graph *g, const ir_node *n, const ir_node *x, const char *what) {
    char a[128];
    if (x->dtype != IR_F32 || x->shape.rank != 4 || (x->shape.batch_mask & ~1u))
        return ir_fail(g, "%s: %s must be f32[N, C, H, W] with only N the batch, got %s", ir_ops[n->op].name, what,
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
        return ir_fail(g, "%s: the stride must be >= 1 and the padding >= 0, got %d and %d", ir_ops[n->op].name,
                       n->stride, n->padding);
    if (w->rank != 4 || w->batch_mask || w->dims[1] != x->shape.dims[1])
        return ir_fail(g, "%s: the weights must be [O, C, KH, KW] with C = %lld channels of the input, got %s",
                       ir_ops[n->op].name, (long long)x->shape.dims[1], ir_shape_str(w, a, sizeof a));
    *out = x->shape;
    out->dims[1] = w->dims[0];
    out->dims[2] = window_count(x->shape.dims[2], w->dims[2], n->stride, n->padding);
    out->dims[3] = window_count(x->shape.dims[3], w->dims[3], n->stride, n->padding);
    if (out->dims[2] < 1 || out->dims[3] < 1)
        return ir_fail(g, "%s: a %lldx%lld kernel does not fit in the input %s padded by %d", ir_ops[n->op].name,
                       (long long)w->dims[2], (long long)w->dims[3], ir_shape_str(&x->shape, b, sizeof b), n->padding);
    return 0;
}

/* The shape pooling x gives, into *out. */
static int pool_shape(ir_graph *g, const ir_node *n, const ir_node *x, ir_shape *out) {
    char a[128];
    if (check_image(g, n, x, "the input"))
        return -1;
    if (n->size < 1 || n->stride < 1)
        return ir_fail(g, "%s: the window size and stride must be >= 1, got %d and %d", ir_ops[n->op].name, n->size,
                       n->stride);
    *out = x->shape;
    out->dims[2] = window_count(x->shape.dims[2], n->size, n->stride, 0);
    out->dims[3] = window_count(x->shape.dims[3], n->size, n->stride, 0);
    if (out->dims[2] < 1 || out->dims[3] < 1)
        return ir_fail(g, "%s: a %dx%d window does not fit in the input %s", ir_ops[n->op].name, n->size, n->size,
                       ir_shape_str(&x->shape, a, sizeof a));
    return 0;
}

/* Input k must have the shape `want` (what the op's forward produces). */
static int expect_shape(ir_graph *g, const ir_node *n, int k, const ir_shape *want, const char *what) {
    const ir_node *x = in(g, n, k);
    char a[128], b[128];
    if (x->dtype != IR_F32 || !ir_shape_equal(&x->shape, want))
        return ir_fail(g, "%s: %s must be f32%s, got %s", ir_ops[n->op].name, what, ir_shape_str(want, a, sizeof a),
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
        return ir_fail(g, "conv2d: the weights must be f32");
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
        return ir_fail(g, "conv2d_grad_input: the weights must be f32");
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
        return ir_fail(g, "dropout: needs an f32 tensor, got %s", ir_dtype_name(x->dtype));
    if (!(n->value >= 0 && n->value < 1))
        return ir_fail(g, "dropout: the probability must be in [0, 1), got %g", n->value);
    if (training->dtype != IR_F32 || training->shape.rank || step->dtype != IR_F32 || step->shape.rank)
        return ir_fail(g, "dropout: 'training' and 'step' must be f32 scalars");
    n->dtype = IR_F32;
    n->shape = x->shape;
    return 0;
}

static int shape_assign(ir_graph *g, ir_node *n) {
    const ir_node *slot = in(g, n, 0), *v = in(g, n, 1);
    if (slot->op != IR_PARAM)
        return ir_fail(g, "assign: the target must be a param");
    if (!ir_shape_equal(&slot->shape, &v->shape) || slot->dtype != v->dtype)
        return ir_fail(g, "assign: value type differs from the slot's");
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

int ir_infer_shape(ir_graph *g, ir_node *n) { return shape_rules[n->op](g, n); }
