/*
 * test_autodiff.c - every op's derivative rule against finite differences.
 *
 * For each op in ops.def there is a builder below, case_<name>, that makes a
 * small graph in which the op sits between trainable parameters and a
 * scalar loss (loss = sum(op(...) * R), R a random probe so every output
 * element gets a different upstream gradient).  Inputs carry a batch
 * dimension wherever the op allows, so broadcasting against the batch and
 * the undoing of it (sum_to) are exercised too.  The graph is
 * differentiated by the real pass and evaluated with the double-precision
 * reference interpreter at a batch below the compiled maximum; every
 * gradient element is compared with a central difference, which in double
 * is accurate to ~1e-9, so the tolerance can be tight.
 *
 * The case table is built from ops.def: an op without a case does not
 * compile.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval.h"
#include "ir.h"
#include "passes.h"

#define TEST_SEED 12345
#include "../gradcheck.h"
#include "../test.h"

#define MAX_BATCH 4
#define BATCH 3

static ir_shape shape(int rank, int64_t d0, int64_t d1, int64_t d2, int batch_first) {
    ir_shape s = ir_shape_scalar();
    s.rank = rank;
    s.dims[0] = d0, s.dims[1] = d1, s.dims[2] = d2;
    if (batch_first)
        s.dims[0] = MAX_BATCH, s.batch_mask = 1;
    return s;
}

/* Value ranges for the leaves a case creates, so each op is tested where
 * it is smooth (log of positives, distinct values for max, ...). */
typedef struct range {
    double lo, hi;
} range;

typedef struct tcase {
    ir_graph *g;
    range leaf_range[64]; /* by node id of INPUT / PARAM */
    uint64_t zero_grad;   /* bit p: param p reaches the loss only through stop_gradient, so its
                             gradient must be exactly 0 (finite differences would see the path) */
} tcase;

static int param(tcase *t, const char *name, ir_shape s, double lo, double hi) {
    int id = ir_add_param(t->g, name, IR_F32, &s, 1, IR_INIT_NONE, 0, 0, 0, 0);
    t->leaf_range[id] = (range){lo, hi};
    return id;
}

static int input(tcase *t, const char *name, ir_shape s, double lo, double hi) {
    int id = ir_add_input(t->g, name, IR_F32, &s, 0);
    t->leaf_range[id] = (range){lo, hi};
    return id;
}

/* i32 values: integers in [lo, hi) */
static int input_i32(tcase *t, const char *name, ir_shape s, double lo, double hi) {
    int id = ir_add_input(t->g, name, IR_I32, &s, 0);
    t->leaf_range[id] = (range){lo, hi};
    return id;
}

/* a [B,3] tensor that depends on a trainable [3] parameter: x + p */
static int batch_of(tcase *t, double lo, double hi) {
    int x = input(t, "x", shape(2, 0, 3, 0, 1), lo, hi);
    int p = param(t, "p", shape(1, 3, 0, 0, 0), 0, 0.25);
    return ir_add(t->g, IR_ADD, x, p, -1);
}

static int unary(tcase *t, ir_op op, double lo, double hi) { return ir_add(t->g, op, batch_of(t, lo, hi), -1, -1); }

static int binary(tcase *t, ir_op op, double lo, double hi, double blo, double bhi) {
    int a = batch_of(t, lo, hi);
    int b = param(t, "q", shape(1, 3, 0, 0, 0), blo, bhi);
    return ir_add(t->g, op, a, b, -1);
}

#define CASE(name) static int case_##name(tcase *t)

/* sum(x * R), R a random probe of x's shape: a scalar that depends on
 * every element of x differently, to add a second use of an op to a case */
static int weigh(tcase *t, int x) {
    ir_shape s = t->g->nodes[x].shape;
    int r = input(t, "W", s, -1, 1);
    return ir_reduce(t->g, IR_REDUCE_SUM, ir_add(t->g, IR_MUL, x, r, -1), (1u << s.rank) - 1, 0);
}

/* leaves: the gradient reaches a parameter through them directly */
CASE(input) { return ir_add(t->g, IR_MUL, input(t, "x", shape(2, 0, 3, 0, 1), -1, 1), param(t, "p", shape(1, 3, 0, 0, 0), -1, 1), -1); }
CASE(param) { return param(t, "p", shape(2, 2, 3, 0, 0), -1, 1); }
CASE(const) {
    ir_shape s = shape(1, 3, 0, 0, 0);
    return ir_add(t->g, IR_MUL, param(t, "p", s, -1, 1), ir_const(t->g, IR_F32, &s, 1.5), -1);
}
CASE(hyper) { return ir_add(t->g, IR_MUL, param(t, "p", shape(1, 3, 0, 0, 0), -1, 1), ir_add_hyper(t->g, "lr", 0.5), -1); }
CASE(iota) { /* p * iota: dp is the positions themselves */
    ir_shape s = shape(2, 2, 3, 0, 0);
    return ir_add(t->g, IR_MUL, param(t, "p", s, -1, 1), ir_iota(t->g, IR_F32, &s, 1), -1);
}
CASE(numel) {
    int u = batch_of(t, -1, 1);
    return ir_add(t->g, IR_MUL, u, ir_numel(t->g, u, 1), -1);
}
CASE(neg) { return unary(t, IR_NEG, -1, 1); }
CASE(exp) { return unary(t, IR_EXP, -1, 1); }
CASE(log) { return unary(t, IR_LOG, 0.5, 2); }
CASE(sqrt) { return unary(t, IR_SQRT, 0.5, 2); }
CASE(abs) { return unary(t, IR_ABS, 0.3, 1); } /* away from the kink */
CASE(tanh) { return unary(t, IR_TANH, -1.5, 1.5); }
CASE(sigmoid) { return unary(t, IR_SIGMOID, -3, 3); }
CASE(relu) { return ir_add(t->g, IR_MUL, unary(t, IR_RELU, 0.3, 1), unary(t, IR_RELU, -1, -0.6), -1); }
/* sign has a zero derivative: u * sign(u) = |u| */
CASE(sign) {
    int u = batch_of(t, 0.3, 1);
    return ir_add(t->g, IR_MUL, u, ir_add(t->g, IR_SIGN, u, -1, -1), -1);
}
/* cast: through i32 and back carries no gradient; add u so there is one */
CASE(cast) {
    int u = batch_of(t, 0.3, 0.6);
    int back = ir_cast(t->g, ir_cast(t->g, u, IR_I32), IR_F32);
    return ir_add(t->g, IR_ADD, u, back, -1);
}
CASE(erf) { return unary(t, IR_ERF, -1.5, 1.5); }
/* y = u * stop_gradient(q * q): u's gradient is checked as usual, q's must be 0 */
CASE(stop_gradient) {
    int u = batch_of(t, -1, 1);
    int q = param(t, "q", shape(1, 3, 0, 0, 0), -1, 1);
    t->zero_grad |= 1u << t->g->nodes[q].index;
    return ir_add(t->g, IR_MUL, u, ir_add(t->g, IR_STOP_GRADIENT, ir_add(t->g, IR_MUL, q, q, -1), -1, -1), -1);
}
CASE(add) { return binary(t, IR_ADD, -1, 1, -1, 1); }
CASE(sub) { return binary(t, IR_SUB, -1, 1, -1, 1); }
CASE(mul) { return binary(t, IR_MUL, -1, 1, -1, 1); }
CASE(div) { return binary(t, IR_DIV, -1, 1, 0.5, 1.5); }
CASE(pow) { return binary(t, IR_POW, 0.5, 1.5, 0.5, 2.5); }
CASE(min) { return binary(t, IR_MIN, -1, 0, 0.6, 1); }
CASE(max) { return ir_add(t->g, IR_ADD, binary(t, IR_MAX, -1, 0, 0.6, 1), binary(t, IR_MAX, 0.9, 1.2, -1, 0.4), -1); }
/* comparisons are piecewise constant: used as a mask */
static int compare(tcase *t, ir_op op) {
    int u = batch_of(t, -1, 1);
    int mask = ir_add(t->g, op, u, ir_scalar(t->g, 0.1), -1);
    return ir_add(t->g, IR_MUL, u, mask, -1);
}
CASE(lt) { return compare(t, IR_LT); }
CASE(le) { return compare(t, IR_LE); }
CASE(gt) { return compare(t, IR_GT); }
CASE(ge) { return compare(t, IR_GE); }
CASE(eq) { return compare(t, IR_EQ); }
CASE(ne) { return compare(t, IR_NE); }
CASE(where) {
    int u = batch_of(t, -1, 1);
    int c = ir_add(t->g, IR_GT, u, ir_scalar(t->g, 0.1), -1);
    int b = ir_add(t->g, IR_MUL, u, param(t, "q", shape(1, 3, 0, 0, 0), 1, 2), -1);
    return ir_add(t->g, IR_WHERE, c, param(t, "r", shape(1, 3, 0, 0, 0), -1, 1), b);
}
CASE(reduce_sum) {
    int u = batch_of(t, -1, 1);
    int a = ir_reduce(t->g, IR_REDUCE_SUM, u, 2, 0);                      /* [B] */
    int b = ir_reduce(t->g, IR_REDUCE_SUM, u, 1, 1);                      /* [1,3] */
    int ab = ir_add(t->g, IR_MUL, ir_reshape(t->g, a, &(ir_shape){2, {MAX_BATCH, 1}, 1}), b, -1); /* [B,3] */
    return ir_add(t->g, IR_ADD, ab, ir_reduce(t->g, IR_REDUCE_SUM, u, 3, 0), -1);
}
CASE(reduce_max) {
    int u = batch_of(t, -1, 1);
    int a = ir_reduce(t->g, IR_REDUCE_MAX, u, 2, 1); /* [B,1] */
    int b = ir_reduce(t->g, IR_REDUCE_MAX, u, 1, 0); /* [3] */
    return ir_add(t->g, IR_ADD, a, b, -1);
}
CASE(sum_to) {
    int u = batch_of(t, -1, 1);
    ir_shape s = shape(2, 1, 3, 0, 0);
    return ir_add(t->g, IR_MUL, ir_sum_to(t->g, u, &s), param(t, "q", shape(1, 3, 0, 0, 0), -1, 1), -1);
}
/* argmax is piecewise constant: its result (along the last axis and along
 * the batch) scales u, whose gradient passes */
CASE(argmax) {
    int u = batch_of(t, -1, 1);                               /* [B,3] */
    int rows = ir_cast(t->g, ir_argmax(t->g, u, -1), IR_F32); /* [B] */
    int cols = ir_cast(t->g, ir_argmax(t->g, u, 0), IR_F32);  /* [3] */
    ir_shape col = shape(2, 0, 1, 0, 1);
    int scaled = ir_add(t->g, IR_MUL, u, ir_reshape(t->g, rows, &col), -1);
    return ir_add(t->g, IR_MUL, scaled, cols, -1);
}
/* one_hot of i32 labels (some outside [0, 4): zero rows) selects a weight */
CASE(one_hot) {
    int labels = input_i32(t, "labels", shape(2, 0, 5, 0, 1), -1, 5); /* [B,5] */
    int oh = ir_one_hot(t->g, labels, 4);                             /* [B,5,4] */
    return ir_add(t->g, IR_MUL, oh, ir_add(t->g, IR_EXP, param(t, "p", shape(1, 4, 0, 0, 0), -1, 1), -1, -1), -1);
}
/* the default swap of [B,3], plus a 3-D permutation of a [2,3,5] param */
CASE(transpose) {
    int u = ir_transpose(t->g, batch_of(t, -1, 1), NULL); /* [3,B] */
    static const int perm[] = {1, 2, 0};
    int v = ir_transpose(t->g, param(t, "q", shape(3, 2, 3, 5, 0), -1, 1), perm); /* [3,5,2] */
    return ir_add(t->g, IR_ADD, u, weigh(t, v), -1);
}
/* the middle of the last axis of [B,3], and of the middle axis of [2,5,3] */
CASE(slice) {
    int u = ir_slice(t->g, batch_of(t, -1, 1), -1, 1, 3);                        /* [B,2] */
    int v = ir_slice(t->g, param(t, "q", shape(3, 2, 5, 3, 0), -1, 1), 1, 1, 4); /* [2,3,3] */
    return ir_add(t->g, IR_ADD, u, weigh(t, v), -1);
}
CASE(pad) {
    ir_shape s = shape(2, 0, 7, 0, 1), s2 = shape(3, 4, 3, 3, 0);
    int u = ir_pad(t->g, batch_of(t, -1, 1), 1, 2, &s);                          /* [B,7] */
    int v = ir_pad(t->g, param(t, "q", shape(3, 2, 3, 3, 0), -1, 1), 0, 1, &s2); /* [4,3,3] */
    return ir_add(t->g, IR_ADD, u, weigh(t, v), -1);
}
/* [B,3] ++ [B,2] along the last axis, [2,3] ++ [3,3] along the first */
CASE(concat) {
    int u = batch_of(t, -1, 1);
    int w = ir_add(t->g, IR_MUL, input(t, "y", shape(2, 0, 2, 0, 1), -1, 1), param(t, "q", shape(1, 2, 0, 0, 0), -1, 1),
                   -1);
    int a = param(t, "r", shape(2, 2, 3, 0, 0), -1, 1), b = param(t, "s", shape(2, 3, 3, 0, 0), -1, 1);
    return ir_add(t->g, IR_ADD, ir_concat(t->g, u, w, -1), weigh(t, ir_concat(t->g, a, b, 0)), -1);
}
/* rows of a [5,3] table picked by i32 indices [B,4], some outside [0, 5) */
CASE(gather) {
    int idx = input_i32(t, "idx", shape(2, 0, 4, 0, 1), -1, 6);
    return ir_gather(t->g, param(t, "T", shape(2, 5, 3, 0, 0), -1, 1), idx); /* [B,4,3] */
}
/* [B,3] rows added into 4 rows (collisions and dropped indices) */
CASE(scatter_add) {
    int idx = input_i32(t, "idx", shape(1, 0, 0, 0, 1), -1, 5);
    return ir_scatter_add(t->g, batch_of(t, -1, 1), idx, 4); /* [4,3] */
}
/* An NCHW image [B,c,h,w] that depends on trainable parameters, one per
 * column and one per element of an image: img * col + P. */
static int image_of(tcase *t, int64_t c, int64_t h, int64_t w) {
    ir_shape s = ir_shape_scalar();
    s.rank = 4;
    s.dims[0] = MAX_BATCH, s.dims[1] = c, s.dims[2] = h, s.dims[3] = w;
    s.batch_mask = 1;
    int x = input(t, "img", s, -1, 1);
    int scaled = ir_add(t->g, IR_MUL, x, param(t, "col", shape(1, w, 0, 0, 0), 0.5, 1.5), -1);
    return ir_add(t->g, IR_ADD, scaled, param(t, "P", shape(3, c, h, w, 0), -1, 1), -1);
}

static ir_shape shape4(int64_t d0, int64_t d1, int64_t d2, int64_t d3, int batch) {
    ir_shape s = ir_shape_scalar();
    s.rank = 4;
    s.dims[0] = batch ? MAX_BATCH : d0, s.dims[1] = d1, s.dims[2] = d2, s.dims[3] = d3;
    s.batch_mask = (uint32_t)batch;
    return s;
}

/* stride 2 with padding 1 on a [B,2,5,4] image (the last row and column
 * never reached), plus stride 1 without padding, weighed in */
CASE(conv2d) {
    int x = image_of(t, 2, 5, 4);
    int w = param(t, "K", shape4(3, 2, 3, 2, 0), -1, 1);
    int y = ir_conv2d(t->g, x, w, 2, 1); /* [B,3,3,3] */
    int w2 = param(t, "L", shape4(1, 2, 2, 3, 0), -1, 1);
    return ir_add(t->g, IR_ADD, y, weigh(t, ir_conv2d(t->g, x, w2, 1, 0)), -1);
}
/* the adjoint in x: dy [B,3,3,3] and w both trainable */
CASE(conv2d_grad_input) {
    int dy = image_of(t, 3, 3, 3);
    int w = param(t, "K", shape4(3, 2, 3, 2, 0), -1, 1);
    ir_shape xs = shape4(0, 2, 5, 4, 1);
    return ir_conv2d_grad_input(t->g, dy, w, 2, 1, &xs);
}
/* the adjoint in w: x [B,2,5,4] and dy [B,3,3,3] both trainable */
CASE(conv2d_grad_weight) {
    int x = image_of(t, 2, 5, 4);
    ir_shape ys = shape4(0, 3, 3, 3, 1);
    int dy = ir_add(t->g, IR_MUL, input(t, "dy", ys, -1, 1), param(t, "q", shape(1, 3, 0, 0, 0), 0.5, 1.5), -1);
    ir_shape ws = shape4(3, 2, 3, 2, 0);
    return ir_conv2d_grad_weight(t->g, x, dy, 2, 1, &ws);
}
/* 2x2 windows every 2 on 5x5 (the last row and column dropped), and
 * overlapping 3x3 windows every 1, weighed in */
CASE(max_pool2d) {
    int x = image_of(t, 2, 5, 5);
    int y = ir_max_pool2d(t->g, x, 2, 2); /* [B,2,2,2] */
    return ir_add(t->g, IR_ADD, y, weigh(t, ir_max_pool2d(t->g, x, 3, 1)), -1);
}
/* the routing of dy (trainable) by a fixed image's maxima, windows overlapping */
CASE(max_pool2d_grad) {
    int x = input(t, "x", shape4(0, 2, 5, 5, 1), -1, 1);
    int dy = image_of(t, 2, 3, 3);
    return ir_max_pool2d_grad(t->g, x, dy, 3, 1);
}
CASE(max_pool2d_pick) {
    int x = input(t, "x", shape4(0, 2, 5, 5, 1), -1, 1);
    int v = image_of(t, 2, 5, 5);
    return ir_max_pool2d_pick(t->g, x, v, 2, 2);
}
CASE(avg_pool2d) {
    int x = image_of(t, 2, 5, 5);
    int y = ir_avg_pool2d(t->g, x, 2, 2);
    return ir_add(t->g, IR_ADD, y, weigh(t, ir_avg_pool2d(t->g, x, 3, 1)), -1);
}
CASE(avg_pool2d_grad) {
    ir_shape xs = shape4(0, 2, 5, 5, 1);
    return ir_avg_pool2d_grad(t->g, image_of(t, 2, 3, 3), 3, 1, &xs);
}
/* training (hyper "training" = 1) at a fixed step; two dropouts with
 * their own masks, one on the batch, one on a parameter */
CASE(dropout) {
    int u = ir_dropout(t->g, batch_of(t, -1, 1), 0.5); /* [B,3] */
    int v = ir_dropout(t->g, param(t, "q", shape(2, 4, 5, 0, 0), -1, 1), 0.3);
    t->g->hypers[t->g->nodes[ir_get_hyper(t->g, "training", 0)].index].value = 1;
    t->g->hypers[t->g->nodes[ir_get_hyper(t->g, "step", 0)].index].value = 7;
    return ir_add(t->g, IR_ADD, u, weigh(t, v), -1);
}
CASE(broadcast) {
    ir_shape s = shape(3, 2, 2, 3, 0);
    return ir_broadcast(t->g, param(t, "p", shape(2, 2, 1, 0, 0), -1, 1), &s);
}
CASE(reshape) {
    int u = batch_of(t, -1, 1);
    ir_shape s = shape(3, 0, 3, 1, 1);
    ir_shape flat = shape(1, 6, 0, 0, 0);
    int r = ir_reshape(t->g, param(t, "q", shape(2, 2, 3, 0, 0), -1, 1), &flat);
    return ir_add(t->g, IR_ADD, ir_reshape(t->g, u, &s), ir_reduce(t->g, IR_REDUCE_SUM, r, 1, 0), -1);
}
/* [B,2,r,c]: an input plus a [2,r,c] parameter, so both carry gradients */
static int stack_of(tcase *t, const char *x, const char *p, int64_t r, int64_t c) {
    ir_shape xs = shape4(0, 2, r, c, 1);
    return ir_add(t->g, IR_ADD, input(t, x, xs, -1, 1), param(t, p, shape(3, 2, r, c, 0), -0.5, 0.5), -1);
}

/* Batched products over [B,2], every transpose pair, chained as
 * attention's are (s = q k^T, o = s q), weighed into a scalar. */
static int batched_products(tcase *t) {
    const int T_A = IR_TRANSPOSE_A, T_B = IR_TRANSPOSE_B;
    int q = stack_of(t, "bq", "Pq", 3, 4), k = stack_of(t, "bk", "Pk", 3, 4), r = stack_of(t, "br", "Pr", 5, 3);
    int s = ir_matmul_batched(t->g, q, k, T_B, 2);          /* [B,2,3,3] */
    int o = ir_matmul_batched(t->g, s, q, 0, 2);            /* [B,2,3,4] */
    int u = ir_matmul_batched(t->g, q, o, T_A, 2);          /* [B,2,4,4] */
    int v = ir_matmul_batched(t->g, s, r, T_A | T_B, 2);    /* [B,2,3,5] */
    return ir_add(t->g, IR_ADD, weigh(t, u), weigh(t, v), -1);
}

/* All four transpose combinations, with the batch as M, N and K, and the
 * batched products. */
CASE(matmul) {
    int x = batch_of(t, -1, 1);                                                   /* [B,3] */
    int m1 = ir_matmul(t->g, x, param(t, "W", shape(2, 3, 4, 0, 0), -1, 1), 0);   /* [B,4] */
    int m2 = ir_matmul(t->g, m1, param(t, "V", shape(2, 5, 4, 0, 0), -1, 1), IR_TRANSPOSE_B); /* [B,5] */
    /* the same over [B,2,3]: a product per step, summed over B and the steps when transposed */
    int x3 = ir_add(t->g, IR_ADD, input(t, "x3", shape(3, 0, 2, 3, 1), -1, 1), param(t, "p3", shape(1, 3, 0, 0, 0), 0, 0.25), -1);
    int m4 = ir_matmul(t->g, x3, param(t, "W3", shape(2, 3, 4, 0, 0), -1, 1), 0);                  /* [B,2,4] */
    int m5 = ir_matmul(t->g, m4, param(t, "V3", shape(2, 5, 4, 0, 0), -1, 1), IR_TRANSPOSE_B);    /* [B,2,5] */
    int m3 = ir_add(t->g, IR_ADD, ir_matmul(t->g, x, m2, IR_TRANSPOSE_A), ir_matmul(t->g, x3, m5, IR_TRANSPOSE_A), -1); /* [3,5] */
    int m6 = ir_matmul(t->g, param(t, "U", shape(2, 5, 2, 0, 0), -1, 1), m3, IR_TRANSPOSE_A | IR_TRANSPOSE_B); /* [2,3] */
    return ir_add(t->g, IR_ADD, m6, batched_products(t), -1);
}
/* assign is an effect, not differentiated: build one beside the loss and
 * check the gradient of the rest is unaffected */
CASE(assign) {
    int p = param(t, "p", shape(1, 3, 0, 0, 0), -1, 1);
    ir_assign(t->g, p, ir_add(t->g, IR_MUL, p, ir_scalar(t->g, 2), -1));
    return ir_add(t->g, IR_MUL, p, p, -1);
}

/* A recurrence with two carried states, read through all its results:
 *   h_t = tanh(x_t W + h_{t-1} U),  c_t = c_{t-1} sigmoid(h_t) + h_t
 * over T = 3 steps of xs = x * s (so the sequence has a gradient, through
 * s), from h_0 = p0 and c_0 = q0 broadcast over the batch; `reverse` runs
 * the steps from the last.  The result is the stacked h's plus the final
 * h and c (broadcast over the steps), so every kind of result carries an
 * adjoint back through the loop. */
static int recurrence(tcase *t, int reverse) {
    ir_graph *g = t->g;
    ir_shape xs_shape = shape(3, 0, 3, 2, 1), hs = shape(2, 0, 3, 0, 1);
    int xs = ir_add(g, IR_MUL, input(t, "xs", xs_shape, -1, 1), param(t, "s", shape(1, 2, 0, 0, 0), 0.5, 1.5), -1);
    int h0 = ir_broadcast(g, param(t, "p0", shape(1, 3, 0, 0, 0), -0.5, 0.5), &hs);
    int c0 = ir_broadcast(g, param(t, "q0", shape(1, 3, 0, 0, 0), -0.5, 0.5), &hs);
    int W = param(t, "W", shape(2, 2, 3, 0, 0), -0.8, 0.8), U = param(t, "U", shape(2, 3, 3, 0, 0), -0.8, 0.8);
    int scan = ir_scan_begin(g, 3, reverse);
    int h = ir_scan_carry(g, scan, h0), c = ir_scan_carry(g, scan, c0);
    int x = ir_scan_slice(g, scan, xs, 1);
    int h2 = ir_add(g, IR_TANH, ir_add(g, IR_ADD, ir_matmul(g, x, W, 0), ir_matmul(g, h, U, 0), -1), -1, -1);
    int c2 = ir_add(g, IR_ADD, ir_add(g, IR_MUL, c, ir_add(g, IR_SIGMOID, h2, -1, -1), -1), h2, -1);
    ir_scan_set_next(g, h, h2);
    ir_scan_set_next(g, c, c2);
    ir_scan_end(g, scan);
    int stacked = ir_scan_stack(g, scan, h2, 1);
    ir_shape one = shape(3, 0, 1, 3, 1);
    int hT = ir_reshape(g, ir_scan_final(g, scan, h), &one), cT = ir_reshape(g, ir_scan_final(g, scan, c), &one);
    return ir_add(g, IR_ADD, stacked, ir_add(g, IR_MUL, hT, cT, -1), -1);
}
CASE(scan) { return recurrence(t, 0); }
CASE(scan_carry) { return recurrence(t, 1); }
CASE(scan_slice) { return recurrence(t, 0); }
CASE(scan_stack) { return recurrence(t, 1); }
CASE(scan_final) { return recurrence(t, 0); }

typedef int (*case_fn)(tcase *);
static const struct {
    const char *name;
    case_fn build;
} cases[IR_OP_COUNT] = {
#define OP(id, name, arity, class) [IR_##id] = {#name, case_##name},
#include "ops.def"
#undef OP
};

static int run_case(int op) {
    tcase t = {0};
    t.g = ir_graph_new(cases[op].name, "test");
    ir_graph *g = t.g;
    g->max_batch = MAX_BATCH;
    int y = cases[op].build(&t);
    if (y < 0) {
        printf("FAIL %-10s building: %s\n", cases[op].name, g->error);
        ir_graph_free(g);
        return 1;
    }
    /* loss = sum(y * R) with a random probe R of y's shape */
    ir_shape ys = g->nodes[y].shape;
    int probe = input(&t, "R", ys, -1, 1);
    int prod = ir_add(g, IR_MUL, y, probe, -1);
    g->loss = ir_reduce(g, IR_REDUCE_SUM, prod, (1u << ys.rank) - 1, 0);
    int n_forward = g->n_nodes;
    if (ad_differentiate(g) != 0 || ir_verify(g) != 0) {
        printf("FAIL %-10s autodiff: %s\n", cases[op].name, g->error);
        ir_graph_free(g);
        return 1;
    }
    double **v = calloc((size_t)g->n_nodes, sizeof *v);
    for (int i = 0; i < n_forward; i++) {
        ir_op k = g->nodes[i].op;
        if (k != IR_INPUT && k != IR_PARAM && k != IR_HYPER)
            continue;
        int64_t n = ir_numel_at(&g->nodes[i].shape, BATCH);
        v[i] = malloc((size_t)n * sizeof **v);
        range r = t.leaf_range[i];
        for (int64_t j = 0; j < n; j++) {
            if (k == IR_HYPER)
                v[i][j] = g->hypers[g->nodes[i].index].value;
            else
                v[i][j] = g->nodes[i].dtype == IR_I32 ? floor(test_uniform(r.lo, r.hi)) : test_uniform(r.lo, r.hi);
        }
    }
    /* evaluate every gradient once */
    int roots[64], n_roots = 0;
    roots[n_roots++] = g->loss;
    for (int p = 0; p < g->n_params; p++)
        roots[n_roots++] = g->params[p].grad;
    unsigned char *live = calloc((size_t)g->n_nodes, 1);
    unsigned char *fwd = calloc((size_t)g->n_nodes, 1);
    ir_mark_live(g, roots, n_roots, live);
    ir_mark_live(g, &g->loss, 1, fwd);
    int failures = 0, checked = 0;
    double worst = 0;
    if (ir_eval(g, live, BATCH, v) != 0) {
        printf("FAIL %-10s evaluation\n", cases[op].name);
        failures++;
    }
    for (int p = 0; p < g->n_params && !failures; p++) {
        int w = g->params[p].node;
        int64_t n = ir_numel_at(&g->nodes[w].shape, BATCH);
        double *analytic = malloc((size_t)n * sizeof *analytic);
        memcpy(analytic, v[g->params[p].grad], (size_t)n * sizeof *analytic);
        ir_eval_release(g, live, v);
        for (int64_t j = 0; j < n && ((t.zero_grad >> p) & 1); j++) {
            checked++;
            if (analytic[j] != 0) {
                printf("FAIL %-10s d loss / d %s[%lld]: autodiff %.10g, want 0 (stop_gradient)\n", cases[op].name,
                       g->params[p].name, (long long)j, analytic[j]);
                failures++;
            }
        }
        if (!((t.zero_grad >> p) & 1))
            failures += gradcheck_param(cases[op].name, g, fwd, BATCH, v, p, analytic, &checked, &worst);
        free(analytic);
        if (ir_eval(g, live, BATCH, v) != 0)
            failures++;
    }
    ir_eval_release(g, live, v);
    if (!failures && checked == 0) { /* nothing compared is no pass */
        printf("FAIL %-10s no gradient element was checked\n", cases[op].name);
        failures++;
    }
    if (!failures)
        printf("ok   %-10s %3d gradient elements, max error %.2g\n", cases[op].name, checked, worst);
    for (int i = 0; i < n_forward; i++)
        if (g->nodes[i].op == IR_INPUT || g->nodes[i].op == IR_PARAM || g->nodes[i].op == IR_HYPER)
            free(v[i]);
    free(v);
    free(live);
    free(fwd);
    ir_graph_free(g);
    return failures != 0;
}

/* ------------------------------------------- a scan against its unrolling
 * The recurrence of `recurrence` above written twice: as a scan (a loop in
 * the IR, differentiated as a reverse scan) and unrolled by hand into T
 * copies of the step.  Same leaves in the same order, same values: the
 * loss and every parameter's gradient must agree to rounding. */
static int step_of(ir_graph *g, int xs, int t, int *h, int *c, int W, int U) {
    ir_shape row = shape(2, 0, 2, 0, 1);
    int x = ir_reshape(g, ir_slice(g, xs, 1, t, t + 1), &row);
    int h2 = ir_add(g, IR_TANH, ir_add(g, IR_ADD, ir_matmul(g, x, W, 0), ir_matmul(g, *h, U, 0), -1), -1, -1);
    *c = ir_add(g, IR_ADD, ir_add(g, IR_MUL, *c, ir_add(g, IR_SIGMOID, h2, -1, -1), -1), h2, -1);
    return *h = h2;
}

static int leaf_in(ir_graph *g, const char *name, ir_shape s) { return ir_add_input(g, name, IR_F32, &s, 0); }
static int leaf_param(ir_graph *g, const char *name, ir_shape s) {
    return ir_add_param(g, name, IR_F32, &s, 1, IR_INIT_NONE, 0, 0, 0, 0);
}

static ir_graph *rnn_graph(int unrolled, int reverse) {
    ir_graph *g = ir_graph_new("rnn", "test");
    g->max_batch = MAX_BATCH;
    ir_shape xs_shape = shape(3, 0, 3, 2, 1), hs = shape(2, 0, 3, 0, 1), one = shape(3, 0, 1, 3, 1);
    int xs = ir_add(g, IR_MUL, leaf_in(g, "xs", xs_shape), leaf_param(g, "s", shape(1, 2, 0, 0, 0)), -1);
    int h = ir_broadcast(g, leaf_param(g, "p0", shape(1, 3, 0, 0, 0)), &hs);
    int c = ir_broadcast(g, leaf_param(g, "q0", shape(1, 3, 0, 0, 0)), &hs);
    int W = leaf_param(g, "W", shape(2, 2, 3, 0, 0)), U = leaf_param(g, "U", shape(2, 3, 3, 0, 0));
    int stacked, hT, cT;
    if (unrolled) {
        int piece[3];
        for (int k = 0; k < 3; k++) {
            int step = reverse ? 2 - k : k;
            piece[step] = ir_reshape(g, step_of(g, xs, step, &h, &c, W, U), &one);
        }
        stacked = ir_concat(g, ir_concat(g, piece[0], piece[1], 1), piece[2], 1);
        hT = h, cT = c;
    } else {
        int scan = ir_scan_begin(g, 3, reverse);
        int hc = ir_scan_carry(g, scan, h), cc = ir_scan_carry(g, scan, c);
        int xt = ir_scan_slice(g, scan, xs, 1);
        int h2 = ir_add(g, IR_TANH, ir_add(g, IR_ADD, ir_matmul(g, xt, W, 0), ir_matmul(g, hc, U, 0), -1), -1, -1);
        int c2 = ir_add(g, IR_ADD, ir_add(g, IR_MUL, cc, ir_add(g, IR_SIGMOID, h2, -1, -1), -1), h2, -1);
        ir_scan_set_next(g, hc, h2);
        ir_scan_set_next(g, cc, c2);
        ir_scan_end(g, scan);
        stacked = ir_scan_stack(g, scan, h2, 1);
        hT = ir_scan_final(g, scan, hc), cT = ir_scan_final(g, scan, cc);
    }
    int y = ir_add(g, IR_ADD, stacked, ir_reshape(g, ir_add(g, IR_MUL, hT, cT, -1), &one), -1);
    int probe = leaf_in(g, "R", g->nodes[y].shape);
    g->loss = ir_reduce(g, IR_REDUCE_SUM, ir_add(g, IR_MUL, y, probe, -1), 7, 0);
    if (ad_differentiate(g) != 0 || ir_verify(g) != 0) {
        printf("FAIL scan vs unrolled: %s\n", g->error);
        ir_graph_free(g);
        return NULL;
    }
    return g;
}

/* The loss and gradients of g for leaf values drawn from a fixed seed, in
 * the order of g's input and param tables; out[0] the loss. */
static int gradients_of(ir_graph *g, double *out) {
    double **v = calloc((size_t)g->n_nodes, sizeof *v);
    test_rng_state = 777;
    for (int i = 0; i < g->n_inputs + g->n_params; i++) {
        int id = i < g->n_inputs ? g->inputs[i].node : g->params[i - g->n_inputs].node;
        int64_t n = ir_numel_at(&g->nodes[id].shape, BATCH);
        v[id] = malloc((size_t)n * sizeof **v);
        for (int64_t j = 0; j < n; j++)
            v[id][j] = test_uniform(-0.8, 0.8);
    }
    for (int i = 0; i < g->n_hypers; i++) { /* scan_steps: 0, all steps */
        v[g->hypers[i].node] = malloc(sizeof **v);
        v[g->hypers[i].node][0] = g->hypers[i].value;
    }
    int roots[16], n_roots = 0, count = 0;
    roots[n_roots++] = g->loss;
    for (int p = 0; p < g->n_params; p++)
        roots[n_roots++] = g->params[p].grad;
    unsigned char *live = calloc((size_t)g->n_nodes, 1);
    ir_mark_live(g, roots, n_roots, live);
    if (ir_eval(g, live, BATCH, v) == 0)
        for (int r = 0; r < n_roots; r++)
            for (int64_t j = 0; j < ir_numel_at(&g->nodes[roots[r]].shape, BATCH); j++)
                out[count++] = v[roots[r]][j];
    ir_eval_release(g, live, v);
    for (int i = 0; i < g->n_nodes; i++)
        free(v[i]);
    free(v);
    free(live);
    return count;
}

static int scan_equals_unrolled(int reverse) {
    ir_graph *a = rnn_graph(0, reverse), *b = rnn_graph(1, reverse);
    double ga[256], gb[256];
    int na = a ? gradients_of(a, ga) : 0, nb = b ? gradients_of(b, gb) : -1, failed = na != nb || na == 0;
    double worst = 0;
    for (int i = 0; i < na && !failed; i++) {
        double err = fabs(ga[i] - gb[i]) / fmax(1, fabs(gb[i]));
        worst = fmax(worst, err);
        failed |= err > 1e-12;
    }
    printf("%s scan %s= unrolled: loss and %d gradient elements, max error %.2g\n", failed ? "FAIL" : "ok  ",
           reverse ? "(reverse) " : "", na - 1, worst);
    ir_graph_free(a);
    ir_graph_free(b);
    return failed;
}

int main(void) {
    int failed = 0;
    for (int op = 0; op < IR_OP_COUNT; op++)
        failed += run_case(op);
    printf("%d passed, %d failed\n", IR_OP_COUNT - failed, failed);
    failed += scan_equals_unrolled(0) + scan_equals_unrolled(1);
    return failed != 0;
}
