/*
 * cg_movement.c - data movement that reorders or cuts elements: transpose,
 * slice, pad and concat.
 *
 * transpose walks its output in row-major order and reads the input
 * through permuted strides.  Output dims of literal size 1 are dropped and
 * neighbours that stay neighbours in the input (perm[d + 1] = perm[d] + 1)
 * are merged, so moving a block of trailing axes together is one
 * contiguous inner loop on both sides.
 *
 * iota writes each element's index along its axis (positions, masks).
 *
 * slice, pad and concat work along one axis; around it a tensor is
 * [outer, n, inner], and every one of them copies, for each outer index,
 * one contiguous run of elements (n * inner of them, or the part of it the
 * op keeps) from one row to another, so the inner loop is unit-stride on
 * both sides and vectorises.  Elements are moved through cg_load_input,
 * which also serves a CONST source.
 */
#include "cg_internal.h"

static const ir_shape *input_shape(cg_kernel *k, int i) { return &k->g->nodes[k->node->inputs[i]].shape; }

/* --------------------------------------------------------------- transpose */

static void copy_element(cg_kernel *k, LLVMValueRef *index, void *ctx) {
    (void)ctx;
    cg_store(k, cg_load_input(k, 0, index[1]), k->out, index[0]);
}

/* Appends the loop over output dims [first, last] (merged); stream 0 is
 * the output, stream 1 the input. */
static void add_group(cg_kernel *k, cg_nest *nest, int first, int last) {
    const ir_shape *out = &k->node->shape, *x = input_shape(k, 0);
    int l = nest->depth++;
    nest->extent[l] = cg_dims_product(k, out, first, last + 1);
    nest->stride[0][l] = cg_dims_product(k, out, last + 1, out->rank);
    nest->stride[1][l] = cg_dims_product(k, x, k->node->perm[last] + 1, x->rank);
}

/* out[i] = x[j] with j[perm[d]] = i[d] */
int cg_kernel_transpose(cg_kernel *k) {
    const ir_shape *out = &k->node->shape;
    const int *perm = k->node->perm;
    cg_nest nest;
    int first = -1, prev = -1;
    nest.depth = 0;
    nest.n_streams = 2;
    for (int d = 0; d < out->rank; d++) {
        if (ir_dim_is_one(out, d))
            continue;
        if (first >= 0 && perm[d] != perm[prev] + 1) {
            add_group(k, &nest, first, prev);
            first = -1;
        }
        if (first < 0)
            first = d;
        prev = d;
    }
    if (first >= 0)
        add_group(k, &nest, first, prev);
    LLVMValueRef zero[2] = {cg_i64(k, 0), cg_i64(k, 0)};
    cg_emit_nest(k, &nest, zero, copy_element, NULL);
    return 0;
}

/* ------------------------------------------------------ slice, pad, concat */

/* A tensor of shape s around `axis`: [outer, n, inner] at run time. */
typedef struct around {
    LLVMValueRef outer, n, inner;
} around;

static around split_at(cg_kernel *k, const ir_shape *s, int axis) {
    around a = {cg_dims_product(k, s, 0, axis), cg_dim(k, s, axis), cg_dims_product(k, s, axis + 1, s->rank)};
    return a;
}

/* For o < outer: out[o * out_row + out_at + j] = input src[o * src_row +
 * src_at + j], j < len. */
static void copy_runs(cg_kernel *k, int src, LLVMValueRef outer, LLVMValueRef len, LLVMValueRef out_row,
                      LLVMValueRef out_at, LLVMValueRef src_row, LLVMValueRef src_at) {
    cg_loop o = cg_loop_begin(k, outer, "o");
    LLVMValueRef to = cg_add(k, cg_mul(k, o.index, out_row), out_at);
    LLVMValueRef from = cg_add(k, cg_mul(k, o.index, src_row), src_at);
    cg_loop j = cg_loop_begin(k, len, "j");
    cg_store(k, cg_load_input(k, src, cg_add(k, from, j.index)), k->out, cg_add(k, to, j.index));
    cg_loop_end(k, &j);
    cg_loop_end(k, &o);
}

/* out[o, a, i] = x[o, start + a, i]: one run of (stop - start) * inner. */
int cg_kernel_slice(cg_kernel *k) {
    around x = split_at(k, input_shape(k, 0), k->node->axis);
    LLVMValueRef len = cg_mul(k, cg_i64(k, k->node->stop - k->node->start), x.inner);
    copy_runs(k, 0, x.outer, len, len, cg_i64(k, 0), cg_mul(k, x.n, x.inner),
              cg_mul(k, cg_i64(k, k->node->start), x.inner));
    return 0;
}

/* out = 0, then out[o, start + a, i] = x[o, a, i]. */
int cg_kernel_pad(cg_kernel *k) {
    const ir_shape *s = &k->node->shape;
    around y = split_at(k, s, k->node->axis), x = split_at(k, input_shape(k, 0), k->node->axis);
    LLVMValueRef zero = k->node->dtype == IR_I32 ? LLVMConstInt(k->t.i32, 0, 0) : LLVMConstReal(k->t.real, 0);
    cg_loop i = cg_loop_begin(k, cg_dims_product(k, s, 0, s->rank), "i");
    cg_store(k, zero, k->out, i.index);
    cg_loop_end(k, &i);
    LLVMValueRef len = cg_mul(k, x.n, x.inner);
    copy_runs(k, 0, x.outer, len, cg_mul(k, y.n, y.inner), cg_mul(k, cg_i64(k, k->node->start), y.inner), len,
              cg_i64(k, 0));
    return 0;
}

/* Each output row is a's row followed by b's. */
int cg_kernel_concat(cg_kernel *k) {
    around y = split_at(k, &k->node->shape, k->node->axis);
    around a = split_at(k, input_shape(k, 0), k->node->axis), b = split_at(k, input_shape(k, 1), k->node->axis);
    LLVMValueRef row = cg_mul(k, y.n, y.inner), a_len = cg_mul(k, a.n, a.inner), b_len = cg_mul(k, b.n, b.inner);
    copy_runs(k, 0, y.outer, a_len, row, cg_i64(k, 0), a_len, cg_i64(k, 0));
    copy_runs(k, 1, y.outer, b_len, row, a_len, b_len, cg_i64(k, 0));
    return 0;
}

/* out[o, a, i] = a, as f32 or i32: three nested loops, no division. */
int cg_kernel_iota(cg_kernel *k) {
    around y = split_at(k, &k->node->shape, k->node->axis);
    cg_loop o = cg_loop_begin(k, y.outer, "o");
    cg_loop a = cg_loop_begin(k, y.n, "a");
    LLVMValueRef v = k->node->dtype == IR_I32 ? LLVMBuildTrunc(k->b, a.index, k->t.i32, "")
                                              : LLVMBuildSIToFP(k->b, a.index, k->t.real, "");
    LLVMValueRef row = cg_mul(k, cg_add(k, cg_mul(k, o.index, y.n), a.index), y.inner);
    cg_loop i = cg_loop_begin(k, y.inner, "i");
    cg_store(k, v, k->out, cg_add(k, row, i.index));
    cg_loop_end(k, &i);
    cg_loop_end(k, &a);
    cg_loop_end(k, &o);
    return 0;
}
