/*
 * eval.c - the reference interpreter (see eval.h for the semantics).
 *
 * Each op has an evaluator eval_<name>, gathered from ops.def into a table,
 * so an op without one does not compile; elementwise ops share one
 * evaluator and differ in a scalar function scalar_<name>, reached through
 * ir_eval_scalar, which simplify's constant folding calls too.  Indexing is
 * the textbook kind: walk the multi-index of one tensor with an odometer and
 * derive the position in the other through per-dimension strides, with
 * stride 0 where numpy broadcasting repeats an element.  Nothing here tries
 * to be fast; everything tries to be obviously right.
 */
#include "eval.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct eval_ctx {
    const ir_graph *g;
    int64_t batch;
    double **values;
    int64_t step; /* inside a scan: the step being run */
} eval_ctx;

static int64_t dim_at(const ir_shape *s, int d, int64_t batch) { return ir_is_batch_dim(s, d) ? batch : s->dims[d]; }

int64_t ir_numel_at(const ir_shape *s, int64_t batch) {
    int64_t n = 1;
    for (int d = 0; d < s->rank; d++)
        n *= dim_at(s, d, batch);
    return n;
}

/* strides[d] for each dim of `to`: where element idx of `to` finds its
 * element of `from`, which broadcasts to `to` (aligned right). */
static void broadcast_strides(const ir_shape *from, const ir_shape *to, int64_t batch, int64_t *strides) {
    int64_t step = 1;
    for (int d = to->rank - 1; d >= 0; d--) {
        int f = from->rank - to->rank + d;
        strides[d] = 0;
        if (f < 0)
            continue;
        if (!ir_dim_is_one(from, f))
            strides[d] = step;
        step *= dim_at(from, f, batch);
    }
}

/* Advances a multi-index over `s`; returns 0 after the last one. */
static int next_index(const ir_shape *s, int64_t batch, int64_t *idx) {
    for (int d = s->rank - 1; d >= 0; d--) {
        if (++idx[d] < dim_at(s, d, batch))
            return 1;
        idx[d] = 0;
    }
    return 0;
}

static int64_t offset_of(const int64_t *idx, const int64_t *strides, int rank) {
    int64_t off = 0;
    for (int d = 0; d < rank; d++)
        off += idx[d] * strides[d];
    return off;
}

static double *new_array(int64_t n) { return ir_xcalloc((size_t)(n > 0 ? n : 1), sizeof(double)); }

static const ir_node *input(const eval_ctx *c, int id, int k) { return &c->g->nodes[c->g->nodes[id].inputs[k]]; }

static const double *input_values(const eval_ctx *c, int id, int k) { return c->values[c->g->nodes[id].inputs[k]]; }

/* ------------------------------------------------------------ int32 math */

static double wrap_i32(int64_t v) { return (double)(int32_t)(uint32_t)(uint64_t)v; }

static double to_i32(double v) {
    if (isnan(v))
        return 0;
    if (v >= 2147483647.0)
        return 2147483647.0;
    if (v <= -2147483648.0)
        return -2147483648.0;
    return trunc(v);
}

/* ------------------------------------------------------ scalar functions
 * scalar_<name>(x, is_int): one element; x holds the operands, is_int says
 * the node is i32 (its operands then are too, except cast's and where's
 * condition). */

typedef double (*scalar_fn)(const double *x, int is_int);

static double scalar_neg(const double *x, int is_int) { return is_int ? wrap_i32(-(int64_t)x[0]) : -x[0]; }
static double scalar_exp(const double *x, int is_int) {
    (void)is_int;
    return exp(x[0]);
}
static double scalar_log(const double *x, int is_int) {
    (void)is_int;
    return log(x[0]);
}
static double scalar_sqrt(const double *x, int is_int) {
    (void)is_int;
    return sqrt(x[0]);
}
static double scalar_abs(const double *x, int is_int) { return is_int ? wrap_i32(llabs((int64_t)x[0])) : fabs(x[0]); }
static double scalar_sign(const double *x, int is_int) {
    (void)is_int;
    return (x[0] > 0) - (x[0] < 0);
}
static double scalar_tanh(const double *x, int is_int) {
    (void)is_int;
    return tanh(x[0]);
}
/* f(x) = 1 / (1 + exp(-x)) */
static double scalar_sigmoid(const double *x, int is_int) {
    (void)is_int;
    return 1 / (1 + exp(-x[0]));
}
static double scalar_relu(const double *x, int is_int) {
    (void)is_int;
    return x[0] > 0 ? x[0] : 0;
}
static double scalar_cast(const double *x, int is_int) { return is_int ? to_i32(x[0]) : x[0]; }
/* erf(x) = 2/sqrt(pi) * integral from 0 to x of exp(-t^2) dt */
static double scalar_erf(const double *x, int is_int) {
    (void)is_int;
    return erf(x[0]);
}
static double scalar_stop_gradient(const double *x, int is_int) {
    (void)is_int;
    return x[0];
}

static double scalar_add(const double *x, int is_int) {
    return is_int ? wrap_i32((int64_t)x[0] + (int64_t)x[1]) : x[0] + x[1];
}

static double scalar_sub(const double *x, int is_int) {
    return is_int ? wrap_i32((int64_t)x[0] - (int64_t)x[1]) : x[0] - x[1];
}

static double scalar_mul(const double *x, int is_int) {
    return is_int ? wrap_i32((int64_t)x[0] * (int64_t)x[1]) : x[0] * x[1];
}

/* i32: truncating, and total: x / 0 = 0 (x86 would trap), INT_MIN / -1 wraps. */
static double scalar_div(const double *x, int is_int) {
    if (!is_int)
        return x[0] / x[1];
    int64_t a = (int64_t)x[0], b = (int64_t)x[1];
    return b == 0 ? 0 : wrap_i32(a / b);
}

static double scalar_pow(const double *x, int is_int) {
    (void)is_int;
    return pow(x[0], x[1]);
}
static double scalar_min(const double *x, int is_int) {
    (void)is_int;
    return fmin(x[0], x[1]);
}
static double scalar_max(const double *x, int is_int) {
    (void)is_int;
    return fmax(x[0], x[1]);
}
static double scalar_lt(const double *x, int is_int) {
    (void)is_int;
    return x[0] < x[1];
}
static double scalar_le(const double *x, int is_int) {
    (void)is_int;
    return x[0] <= x[1];
}
static double scalar_gt(const double *x, int is_int) {
    (void)is_int;
    return x[0] > x[1];
}
static double scalar_ge(const double *x, int is_int) {
    (void)is_int;
    return x[0] >= x[1];
}
static double scalar_eq(const double *x, int is_int) {
    (void)is_int;
    return x[0] == x[1];
}
static double scalar_ne(const double *x, int is_int) {
    (void)is_int;
    return x[0] != x[1];
}
static double scalar_where(const double *x, int is_int) {
    (void)is_int;
    return x[0] != 0 ? x[1] : x[2];
}

#define SCALAR_LEAF(name) NULL
#define SCALAR_UNARY(name) scalar_##name
#define SCALAR_BINARY(name) scalar_##name
#define SCALAR_TERNARY(name) scalar_##name
#define SCALAR_REDUCE(name) NULL
#define SCALAR_MOVE(name) NULL
#define SCALAR_CONTRACT(name) NULL
#define SCALAR_SINK(name) NULL
#define SCALAR_INDEX(name) NULL
#define SCALAR_WINDOW(name) NULL
#define SCALAR_RANDOM(name) NULL
#define SCALAR_LOOP(name) NULL
static const scalar_fn scalars[IR_OP_COUNT] = {
#define OP(id, name, arity, class) [IR_##id] = SCALAR_##class(name),
#include "ops.def"
#undef OP
};

double ir_eval_scalar(ir_op op, ir_dtype dtype, const double *x) { return scalars[op](x, dtype == IR_I32); }

/* ------------------------------------------------------------ evaluators
 * eval_<name>(c, id, out): fill `out` (the node's elements at c->batch). */

typedef int (*eval_fn)(const eval_ctx *c, int id, double *out);

static int eval_elementwise(const eval_ctx *c, int id, double *out) {
    const ir_node *n = &c->g->nodes[id];
    int64_t strides[3][IR_MAX_RANK], idx[IR_MAX_RANK] = {0};
    for (int k = 0; k < n->n_inputs; k++)
        broadcast_strides(&input(c, id, k)->shape, &n->shape, c->batch, strides[k]);
    int64_t count = ir_numel_at(&n->shape, c->batch);
    for (int64_t i = 0; i < count; i++, next_index(&n->shape, c->batch, idx)) {
        double x[3];
        for (int k = 0; k < n->n_inputs; k++)
            x[k] = input_values(c, id, k)[offset_of(idx, strides[k], n->shape.rank)];
        out[i] = ir_eval_scalar(n->op, n->dtype, x);
    }
    return 0;
}

static int eval_leaf(const eval_ctx *c, int id, double *out) {
    (void)out;
    fprintf(stderr, "ir_eval: %%%d %s has no value\n", id, ir_ops[c->g->nodes[id].op].name);
    return -1;
}
#define eval_input eval_leaf
#define eval_param eval_leaf
#define eval_hyper eval_leaf

static int eval_const(const eval_ctx *c, int id, double *out) {
    const ir_node *n = &c->g->nodes[id];
    int64_t count = ir_numel_at(&n->shape, c->batch);
    for (int64_t i = 0; i < count; i++)
        out[i] = n->value;
    return 0;
}

/* The number of elements of x over `axes`, batch dims counting `batch`. */
static int eval_numel(const eval_ctx *c, int id, double *out) {
    const ir_node *n = &c->g->nodes[id];
    const ir_shape *x = &input(c, id, 0)->shape;
    double count = 1;
    for (int d = 0; d < x->rank; d++)
        if ((n->axes >> d) & 1)
            count *= (double)dim_at(x, d, c->batch);
    out[0] = count;
    return 0;
}

/* Reductions: kept[d] says input dim d survives; the output is row-major
 * over the kept dims in order (keepdims or not, sum_to's leading or size-1
 * dims add no elements). */
static int reduce(const eval_ctx *c, int id, const int *kept, int is_max, double *out) {
    const ir_node *n = &c->g->nodes[id];
    const ir_shape *x = &input(c, id, 0)->shape;
    const double *in = input_values(c, id, 0);
    int64_t strides[IR_MAX_RANK], idx[IR_MAX_RANK] = {0}, step = 1;
    for (int d = x->rank - 1; d >= 0; d--) {
        strides[d] = kept[d] ? step : 0;
        step *= kept[d] ? dim_at(x, d, c->batch) : 1;
    }
    int64_t n_out = ir_numel_at(&n->shape, c->batch), count = ir_numel_at(x, c->batch);
    for (int64_t o = 0; o < n_out; o++)
        out[o] = is_max ? -INFINITY : 0;
    for (int64_t i = 0; i < count; i++, next_index(x, c->batch, idx)) {
        double *acc = &out[offset_of(idx, strides, x->rank)];
        *acc = !is_max ? *acc + in[i] : isnan(*acc) || isnan(in[i]) ? NAN : fmax(*acc, in[i]); /* NaN propagates */
    }
    if (n->dtype == IR_I32)
        for (int64_t o = 0; o < n_out; o++)
            out[o] = is_max ? out[o] : wrap_i32((int64_t)out[o]);
    return 0;
}

static int reduce_axes(const eval_ctx *c, int id, int is_max, double *out) {
    int kept[IR_MAX_RANK];
    const ir_shape *x = &input(c, id, 0)->shape;
    for (int d = 0; d < x->rank; d++)
        kept[d] = !((c->g->nodes[id].axes >> d) & 1);
    return reduce(c, id, kept, is_max, out);
}

static int eval_reduce_sum(const eval_ctx *c, int id, double *out) { return reduce_axes(c, id, 0, out); }
static int eval_reduce_max(const eval_ctx *c, int id, double *out) { return reduce_axes(c, id, 1, out); }

/* The output, aligned right, keeps the dims it has and that are not a literal 1. */
static int eval_sum_to(const eval_ctx *c, int id, double *out) {
    int kept[IR_MAX_RANK];
    const ir_shape *x = &input(c, id, 0)->shape, *to = &c->g->nodes[id].shape;
    for (int d = 0; d < x->rank; d++) {
        int t = to->rank - x->rank + d;
        kept[d] = t >= 0 && !ir_dim_is_one(to, t);
    }
    return reduce(c, id, kept, 0, out);
}

/* A tensor seen as [outer, n, inner] around dim `axis`, at c->batch. */
static void split_at(const eval_ctx *c, const ir_shape *s, int axis, int64_t *outer, int64_t *n, int64_t *inner) {
    *outer = *inner = 1;
    for (int d = 0; d < axis; d++)
        *outer *= dim_at(s, d, c->batch);
    *n = dim_at(s, axis, c->batch);
    for (int d = axis + 1; d < s->rank; d++)
        *inner *= dim_at(s, d, c->batch);
}

/* element i's index along the axis: (i / inner) mod dims[axis] */
static int eval_iota(const eval_ctx *c, int id, double *out) {
    const ir_node *n = &c->g->nodes[id];
    int64_t outer, steps, inner;
    split_at(c, &n->shape, n->axis, &outer, &steps, &inner);
    for (int64_t i = 0; i < outer * steps * inner; i++)
        out[i] = (double)(i / inner % steps);
    return 0;
}

/* The index of the first maximum along `axis`; NaN never compares
 * greater, so it is skipped, and an all-NaN line gives 0. */
static int eval_argmax(const eval_ctx *c, int id, double *out) {
    const double *x = input_values(c, id, 0);
    int64_t outer, n, inner;
    split_at(c, &input(c, id, 0)->shape, c->g->nodes[id].axis, &outer, &n, &inner);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t i = 0; i < inner; i++) {
            const double *line = x + o * n * inner + i;
            double best = -INFINITY;
            int64_t at = 0;
            for (int64_t a = 0; a < n; a++)
                if (line[a * inner] > best) {
                    best = line[a * inner];
                    at = a;
                }
            out[o * inner + i] = (double)at;
        }
    return 0;
}

/* out[j, k] = labels[j] == k, for k in [0, n) */
static int eval_one_hot(const eval_ctx *c, int id, double *out) {
    const ir_shape *s = &c->g->nodes[id].shape;
    const double *labels = input_values(c, id, 0);
    int64_t n = s->dims[s->rank - 1], rows = ir_numel_at(s, c->batch) / n;
    for (int64_t j = 0; j < rows; j++)
        for (int64_t k = 0; k < n; k++)
            out[j * n + k] = labels[j] == (double)k;
    return 0;
}

/* Copies input k into `out` of shape `to`, broadcasting. */
static void copy_broadcast(const eval_ctx *c, int id, int k, const ir_shape *to, double *out) {
    int64_t strides[IR_MAX_RANK], idx[IR_MAX_RANK] = {0};
    broadcast_strides(&input(c, id, k)->shape, to, c->batch, strides);
    const double *in = input_values(c, id, k);
    int64_t count = ir_numel_at(to, c->batch);
    for (int64_t i = 0; i < count; i++, next_index(to, c->batch, idx))
        out[i] = in[offset_of(idx, strides, to->rank)];
}

static int eval_broadcast(const eval_ctx *c, int id, double *out) {
    copy_broadcast(c, id, 0, &c->g->nodes[id].shape, out);
    return 0;
}

static int eval_reshape(const eval_ctx *c, int id, double *out) {
    int64_t count = ir_numel_at(&c->g->nodes[id].shape, c->batch);
    memcpy(out, input_values(c, id, 0), (size_t)count * sizeof *out);
    return 0;
}

/* Row-major strides of a shape at c->batch. */
static void row_major(const eval_ctx *c, const ir_shape *s, int64_t *strides) {
    int64_t step = 1;
    for (int d = s->rank - 1; d >= 0; d--) {
        strides[d] = step;
        step *= dim_at(s, d, c->batch);
    }
}

/* out[i_0, .., i_r] = x[j] with j_perm[d] = i_d */
static int eval_transpose(const eval_ctx *c, int id, double *out) {
    const ir_node *n = &c->g->nodes[id];
    int64_t in_strides[IR_MAX_RANK], strides[IR_MAX_RANK], idx[IR_MAX_RANK] = {0};
    row_major(c, &input(c, id, 0)->shape, in_strides);
    for (int d = 0; d < n->shape.rank; d++)
        strides[d] = in_strides[n->perm[d]];
    const double *x = input_values(c, id, 0);
    int64_t count = ir_numel_at(&n->shape, c->batch);
    for (int64_t i = 0; i < count; i++, next_index(&n->shape, c->batch, idx))
        out[i] = x[offset_of(idx, strides, n->shape.rank)];
    return 0;
}

/* Copies rows: for each o < outer, `len` elements from src + o * src_row
 * to dst + o * dst_row. */
static void copy_rows(double *dst, int64_t dst_row, const double *src, int64_t src_row, int64_t outer, int64_t len) {
    for (int64_t o = 0; o < outer; o++)
        memcpy(dst + o * dst_row, src + o * src_row, (size_t)len * sizeof *dst);
}

/* out[o, a, i] = x[o, start + a, i] */
static int eval_slice(const eval_ctx *c, int id, double *out) {
    const ir_node *n = &c->g->nodes[id];
    int64_t outer, len, inner;
    split_at(c, &n->shape, n->axis, &outer, &len, &inner);
    int64_t from = input(c, id, 0)->shape.dims[n->axis];
    copy_rows(out, len * inner, input_values(c, id, 0) + n->start * inner, from * inner, outer, len * inner);
    return 0;
}

/* out[o, a, i] = x[o, a - start, i] where that exists, else 0 */
static int eval_pad(const eval_ctx *c, int id, double *out) {
    const ir_node *n = &c->g->nodes[id];
    int64_t outer, total, inner;
    split_at(c, &n->shape, n->axis, &outer, &total, &inner);
    int64_t len = input(c, id, 0)->shape.dims[n->axis];
    copy_rows(out + n->start * inner, total * inner, input_values(c, id, 0), len * inner, outer, len * inner);
    return 0; /* the rest stays 0 from new_array */
}

/* out[o, a, i] = a < m ? x[o, a, i] : y[o, a - m, i] */
static int eval_concat(const eval_ctx *c, int id, double *out) {
    const ir_node *n = &c->g->nodes[id];
    int64_t outer, total, inner;
    split_at(c, &n->shape, n->axis, &outer, &total, &inner);
    int64_t m = input(c, id, 0)->shape.dims[n->axis], k = total - m;
    copy_rows(out, total * inner, input_values(c, id, 0), m * inner, outer, m * inner);
    copy_rows(out + m * inner, total * inner, input_values(c, id, 1), k * inner, outer, k * inner);
    return 0;
}

/* out[j, :] = table[indices[j], :], zeros for an index outside [0, V) */
static int eval_gather(const eval_ctx *c, int id, double *out) {
    const ir_shape *t = &input(c, id, 0)->shape;
    const double *table = input_values(c, id, 0), *idx = input_values(c, id, 1);
    int64_t v = t->dims[0], d = t->dims[1], rows = ir_numel_at(&input(c, id, 1)->shape, c->batch);
    for (int64_t j = 0; j < rows; j++)
        if (idx[j] >= 0 && idx[j] < (double)v)
            memcpy(out + j * d, table + (int64_t)idx[j] * d, (size_t)d * sizeof *out);
    return 0;
}

/* out[indices[j], :] += src[j, :], skipping an index outside [0, V) */
static int eval_scatter_add(const eval_ctx *c, int id, double *out) {
    const ir_shape *s = &c->g->nodes[id].shape;
    const double *src = input_values(c, id, 0), *idx = input_values(c, id, 1);
    int64_t v = s->dims[0], d = s->dims[1], rows = ir_numel_at(&input(c, id, 1)->shape, c->batch);
    for (int64_t j = 0; j < rows; j++)
        for (int64_t k = 0; k < d && idx[j] >= 0 && idx[j] < (double)v; k++)
            out[(int64_t)idx[j] * d + k] += src[j * d + k];
    return 0;
}

/* --------------------------------------------------------- window ops
 * Straight from the definitions: every (output position, kernel tap) pair
 * is visited once, in the same order for the forward op and its adjoints. */

enum { CONV_FORWARD, CONV_INPUT, CONV_WEIGHT };

/* The three convolution ops: with y[n,o,i,j] and x[n,c,h,w] where
 * h = i s + u - p, w = j s + v - p is inside the image,
 *   forward  y[n,o,i,j] += x[n,c,h,w] wt[o,c,u,v]
 *   input    x[n,c,h,w] += y[n,o,i,j] wt[o,c,u,v]   (out = x, inputs y, wt)
 *   weight   wt[o,c,u,v] += y[n,o,i,j] x[n,c,h,w]   (out = wt, inputs x, y) */
static int conv(const eval_ctx *c, int id, int mode, double *out) {
    const ir_node *n = &c->g->nodes[id];
    const ir_shape *xs = mode == CONV_INPUT ? &n->shape : &input(c, id, 0)->shape;
    const ir_shape *ws = mode == CONV_WEIGHT ? &n->shape : &input(c, id, 1)->shape;
    const ir_shape *ys = mode == CONV_FORWARD ? &n->shape : &input(c, id, mode == CONV_INPUT ? 0 : 1)->shape;
    double *x = mode == CONV_INPUT ? out : (double *)input_values(c, id, 0);
    double *wt = mode == CONV_WEIGHT ? out : (double *)input_values(c, id, 1);
    double *y = mode == CONV_FORWARD ? out : (double *)input_values(c, id, mode == CONV_INPUT ? 0 : 1);
    int64_t batch = dim_at(xs, 0, c->batch), ch = xs->dims[1], h = xs->dims[2], w = xs->dims[3];
    int64_t o_n = ws->dims[0], kh = ws->dims[2], kw = ws->dims[3], oh = ys->dims[2], ow = ys->dims[3];
    int64_t s = n->stride, p = n->padding;
    for (int64_t b = 0; b < batch; b++)
        for (int64_t o = 0; o < o_n; o++)
            for (int64_t i = 0; i < oh; i++)
                for (int64_t j = 0; j < ow; j++)
                    for (int64_t k = 0; k < ch; k++)
                        for (int64_t u = 0; u < kh; u++)
                            for (int64_t v = 0; v < kw; v++) {
                                int64_t r = i * s + u - p, q = j * s + v - p;
                                if (r < 0 || r >= h || q < 0 || q >= w)
                                    continue;
                                double *xe = &x[((b * ch + k) * h + r) * w + q];
                                double *we = &wt[((o * ch + k) * kh + u) * kw + v];
                                double *ye = &y[((b * o_n + o) * oh + i) * ow + j];
                                if (mode == CONV_FORWARD)
                                    *ye += *xe * *we;
                                else if (mode == CONV_INPUT)
                                    *xe += *ye * *we;
                                else
                                    *we += *ye * *xe;
                            }
    return 0;
}

static int eval_conv2d(const eval_ctx *c, int id, double *out) { return conv(c, id, CONV_FORWARD, out); }
static int eval_conv2d_grad_input(const eval_ctx *c, int id, double *out) { return conv(c, id, CONV_INPUT, out); }
static int eval_conv2d_grad_weight(const eval_ctx *c, int id, double *out) { return conv(c, id, CONV_WEIGHT, out); }

enum { POOL_MAX, POOL_MAX_GRAD, POOL_MAX_PICK, POOL_AVG, POOL_AVG_GRAD };

/* Pooling over the windows of an image x[nc, h, w] (n and c merged) into
 * y[nc, i, j].  The max ops find each window's first maximum in row-major
 * order (a later element must be strictly greater, so NaN never wins
 * unless it comes first); then
 *   max       y = x[at]           max_grad  dx[at] += dy
 *   max_pick  y = v[at]           avg       y = sum / size^2
 *   avg_grad  dx[window] += dy / size^2 */
static int pool(const eval_ctx *c, int id, int mode, double *out) {
    const ir_node *n = &c->g->nodes[id];
    int image_is_out = mode == POOL_MAX_GRAD || mode == POOL_AVG_GRAD;
    const ir_shape *xs = image_is_out ? &n->shape : &input(c, id, 0)->shape;
    const ir_shape *ys = image_is_out ? &input(c, id, n->n_inputs - 1)->shape : &n->shape;
    const double *x = mode == POOL_AVG_GRAD ? NULL : input_values(c, id, 0);
    const double *dy = image_is_out ? input_values(c, id, n->n_inputs - 1) : NULL;
    int64_t planes = dim_at(xs, 0, c->batch) * xs->dims[1], h = xs->dims[2], w = xs->dims[3];
    int64_t oh = ys->dims[2], ow = ys->dims[3], k = n->size, s = n->stride;
    double area = (double)(k * k);
    for (int64_t q = 0; q < planes; q++)
        for (int64_t i = 0; i < oh; i++)
            for (int64_t j = 0; j < ow; j++) {
                int64_t first = (q * h + i * s) * w + j * s, at = first, y = (q * oh + i) * ow + j;
                double sum = 0;
                for (int64_t u = 0; u < k; u++)
                    for (int64_t v = 0; v < k; v++) {
                        int64_t e = first + u * w + v;
                        if (mode == POOL_AVG)
                            sum += x[e];
                        else if (mode == POOL_AVG_GRAD)
                            out[e] += dy[y] / area;
                        else if (x[e] > x[at])
                            at = e;
                    }
                if (mode == POOL_MAX)
                    out[y] = x[at];
                else if (mode == POOL_MAX_GRAD)
                    out[at] += dy[y];
                else if (mode == POOL_MAX_PICK)
                    out[y] = input_values(c, id, 1)[at];
                else if (mode == POOL_AVG)
                    out[y] = sum / area;
            }
    return 0;
}

static int eval_max_pool2d(const eval_ctx *c, int id, double *out) { return pool(c, id, POOL_MAX, out); }
static int eval_max_pool2d_grad(const eval_ctx *c, int id, double *out) { return pool(c, id, POOL_MAX_GRAD, out); }
static int eval_max_pool2d_pick(const eval_ctx *c, int id, double *out) { return pool(c, id, POOL_MAX_PICK, out); }
static int eval_avg_pool2d(const eval_ctx *c, int id, double *out) { return pool(c, id, POOL_AVG, out); }
static int eval_avg_pool2d_grad(const eval_ctx *c, int id, double *out) { return pool(c, id, POOL_AVG_GRAD, out); }

/* training != 0 ? x * keep / (1 - p) : x, keep from ir_dropout_bits */
static int eval_dropout(const eval_ctx *c, int id, double *out) {
    const ir_node *n = &c->g->nodes[id];
    const double *x = input_values(c, id, 0);
    int training = input_values(c, id, 1)[0] != 0;
    uint32_t step = (uint32_t)(int32_t)to_i32(input_values(c, id, 2)[0]);
    uint32_t threshold = ir_dropout_threshold(n->value);
    double scale = 1 / (1 - n->value);
    int64_t count = ir_numel_at(&n->shape, c->batch);
    for (int64_t i = 0; i < count; i++)
        out[i] = !training ? x[i] : ir_dropout_bits(n->seed, step, (uint64_t)i) >= threshold ? x[i] * scale : 0;
    return 0;
}

/* [M,K] @ [K,N] -> [M,N]; a transposed operand is stored as [K,M] / [N,K];
 * M, K and N may each be several dims (ir_matmul_split).  A batched
 * product does that once per index of the leading dims, the matrices of
 * each lying one after another. */
static int eval_matmul(const eval_ctx *c, int id, double *out) {
    const ir_node *n = &c->g->nodes[id];
    const ir_shape *as = &input(c, id, 0)->shape, *bs = &input(c, id, 1)->shape;
    int ta = !!(n->flags & IR_TRANSPOSE_A), tb = !!(n->flags & IR_TRANSPOSE_B);
    ir_matmul_dims d = ir_matmul_split(n, as->rank, bs->rank);
    int64_t s = 1, m = 1, nn = 1, kk = 1;
    for (int i = 0; i < d.lead; i++)
        s *= dim_at(as, i, c->batch);
    for (int i = d.m_lo; i < d.m_hi; i++)
        m *= dim_at(as, i, c->batch);
    for (int i = d.k_lo; i < d.k_hi; i++)
        kk *= dim_at(as, i, c->batch);
    for (int i = d.n_lo; i < d.n_hi; i++)
        nn *= dim_at(bs, i, c->batch);
    for (int64_t p = 0; p < s; p++) {
        const double *a = input_values(c, id, 0) + p * m * kk, *b = input_values(c, id, 1) + p * kk * nn;
        double *y = out + p * m * nn;
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < nn; j++) {
                double acc = 0;
                for (int64_t k = 0; k < kk; k++)
                    acc += a[ta ? k * m + i : i * kk + k] * b[tb ? j * kk + k : k * nn + j];
                y[i * nn + j] = acc;
            }
    }
    return 0;
}

static int eval_assign(const eval_ctx *c, int id, double *out) {
    copy_broadcast(c, id, 1, &input(c, id, 0)->shape, out);
    return 0;
}

/* ------------------------------------------------------------ recurrence
 * The loop itself runs in ir_eval (run_scan below); these evaluate the
 * scan's nodes within a step.  c->step is the step being run. */

/* a carry: its current value, kept in its slot by run_scan */
static int eval_scan_carry(const eval_ctx *c, int id, double *out) {
    (void)c, (void)id, (void)out;
    return 0;
}

/* xs at step t along axis */
static int eval_scan_slice(const eval_ctx *c, int id, double *out) {
    const ir_node *n = &c->g->nodes[id];
    int64_t outer, steps, inner;
    split_at(c, &input(c, id, 0)->shape, n->axis, &outer, &steps, &inner);
    copy_rows(out, inner, input_values(c, id, 0) + c->step * inner, steps * inner, outer, inner);
    return 0;
}

/* y at step t into the stack: run_scan calls it after each step */
static int eval_scan_stack(const eval_ctx *c, int id, double *out) {
    const ir_node *n = &c->g->nodes[id];
    int64_t outer, steps, inner;
    split_at(c, &n->shape, n->axis, &outer, &steps, &inner);
    copy_rows(out + c->step * inner, steps * inner, input_values(c, id, 0), inner, outer, inner);
    return 0;
}

/* the carry after the last step: run_scan calls it after the loop */
static int eval_scan_final(const eval_ctx *c, int id, double *out) {
    const ir_node *n = &c->g->nodes[id];
    memcpy(out, input_values(c, id, 0), (size_t)ir_numel_at(&n->shape, c->batch) * sizeof *out);
    return 0;
}

static int eval_scan(const eval_ctx *c, int id, double *out) {
    (void)c, (void)id, (void)out;
    return 0; /* run_scan does the work */
}

#define EVAL_LEAF(name) eval_##name
#define EVAL_UNARY(name) eval_elementwise
#define EVAL_BINARY(name) eval_elementwise
#define EVAL_TERNARY(name) eval_elementwise
#define EVAL_REDUCE(name) eval_##name
#define EVAL_MOVE(name) eval_##name
#define EVAL_CONTRACT(name) eval_##name
#define EVAL_SINK(name) eval_##name
#define EVAL_INDEX(name) eval_##name
#define EVAL_WINDOW(name) eval_##name
#define EVAL_RANDOM(name) eval_##name
#define EVAL_LOOP(name) eval_##name
static const eval_fn evaluators[IR_OP_COUNT] = {
#define OP(id, name, arity, class) [IR_##id] = EVAL_##class(name),
#include "ops.def"
#undef OP
};

/* --------------------------------------------------------------- driver */

/* Leaves whose values the caller supplies. */
static int is_supplied(ir_op op) { return op == IR_INPUT || op == IR_PARAM || op == IR_HYPER; }

static int is_live(const unsigned char *live, int id) { return !live || live[id]; }

/* How many steps scan s runs: its hyper steps, 0 meaning all of them. */
static int64_t steps_run(const eval_ctx *c, int s) {
    const ir_node *n = &c->g->nodes[s];
    double want = input_values(c, s, 0)[0];
    return want >= 1 && want < (double)n->stop ? (int64_t)want : n->stop;
}

/* Runs scan s: its live body nodes in id order at every step, then its
 * stacks take the step's values and its carries their next ones; after
 * the loop its finals take the carries.  Results are allocated up front
 * (a stack's steps not run stay zero). */
static int run_scan(eval_ctx *c, const unsigned char *live, int s) {
    const ir_graph *g = c->g;
    for (int id = s + 1; id < g->n_nodes; id++)
        if (is_live(live, id) && ir_loop_of(g, id) == s && !c->values[id])
            c->values[id] = new_array(ir_numel_at(&g->nodes[id].shape, c->batch));
    for (int id = s + 1; id < g->n_nodes; id++)
        if (is_live(live, id) && g->nodes[id].region == s && g->nodes[id].op == IR_SCAN_CARRY)
            memcpy(c->values[id], input_values(c, id, 0),
                   (size_t)ir_numel_at(&g->nodes[id].shape, c->batch) * sizeof(double));
    /* the live carries, and room for their next values, made once */
    int n_carries = 0, *carry = ir_xcalloc((size_t)g->n_nodes, sizeof *carry);
    for (int id = s + 1; id < g->n_nodes; id++)
        if (is_live(live, id) && g->nodes[id].region == s && g->nodes[id].op == IR_SCAN_CARRY)
            carry[n_carries++] = id;
    size_t *bytes = ir_xcalloc((size_t)n_carries + 1, sizeof *bytes);
    double **next = ir_xcalloc((size_t)n_carries + 1, sizeof *next);
    for (int j = 0; j < n_carries; j++) {
        bytes[j] = (size_t)ir_numel_at(&g->nodes[carry[j]].shape, c->batch) * sizeof(double);
        next[j] = ir_xmalloc(bytes[j]);
    }
    int64_t n = steps_run(c, s), total = g->nodes[s].stop;
    int rc = 0;
    for (int64_t k = 0; k < n && rc == 0; k++) {
        c->step = g->nodes[s].flags ? total - 1 - k : k;
        for (int id = s + 1; id < g->n_nodes && rc == 0; id++)
            if (is_live(live, id) && g->nodes[id].region == s)
                rc = evaluators[g->nodes[id].op](c, id, c->values[id]);
        for (int id = s + 1; id < g->n_nodes; id++)
            if (is_live(live, id) && g->nodes[id].op == IR_SCAN_STACK && g->nodes[id].inputs[1] == s)
                eval_scan_stack(c, id, c->values[id]);
        /* every next value is read before any carry changes */
        for (int j = 0; j < n_carries; j++)
            memcpy(next[j], c->values[g->nodes[carry[j]].link], bytes[j]);
        for (int j = 0; j < n_carries; j++)
            memcpy(c->values[carry[j]], next[j], bytes[j]);
    }
    for (int j = 0; j < n_carries; j++)
        free(next[j]);
    free(next);
    free(carry);
    free(bytes);
    for (int id = s + 1; id < g->n_nodes && rc == 0; id++)
        if (is_live(live, id) && g->nodes[id].op == IR_SCAN_FINAL && g->nodes[id].inputs[1] == s)
            eval_scan_final(c, id, c->values[id]);
    return rc;
}

int ir_eval(const ir_graph *g, const unsigned char *live, int64_t batch, double **values) {
    eval_ctx c = {g, batch, values, 0};
    /* constants first: a scan's body may read one made after the scan */
    for (int id = 0; id < g->n_nodes; id++)
        if (is_live(live, id) && g->nodes[id].op == IR_CONST) {
            values[id] = new_array(ir_numel_at(&g->nodes[id].shape, batch));
            eval_const(&c, id, values[id]);
        }
    for (int id = 0; id < g->n_nodes; id++) {
        const ir_node *n = &g->nodes[id];
        if (!is_live(live, id) || ir_in_loop(g, id) || n->op == IR_CONST)
            continue; /* a scan computes its body and results */
        if (is_supplied(n->op)) {
            if (!values[id])
                return evaluators[n->op](&c, id, NULL);
            continue;
        }
        values[id] = new_array(ir_numel_at(&n->shape, batch));
        if (evaluators[n->op](&c, id, values[id]) != 0)
            return -1;
        if (n->op == IR_SCAN && run_scan(&c, live, id) != 0)
            return -1;
    }
    return 0;
}

void ir_eval_release(const ir_graph *g, const unsigned char *live, double **values) {
    for (int id = 0; id < g->n_nodes; id++) {
        if ((live && !live[id]) || is_supplied(g->nodes[id].op))
            continue;
        free(values[id]);
        values[id] = NULL;
    }
}
