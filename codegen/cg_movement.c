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
 * both sides and vectorises.  pad writes its zeros in the same pass, only
 * around each copied run.  Elements are moved through cg_load_input,
 * which also serves a CONST source.
 *
 * With the runtime's threads, a move of at least SPLIT_MIN_ELEMENTS is
 * outlined and its outermost loop (transpose's first loop, the others'
 * outer index) split over them (split_rows): a training step of a
 * transformer moves tens of megabytes through these (attention's heads
 * split and merged, the q/k/v slices and their adjoints), which would
 * otherwise run on one thread while the others wait.
 */
#include "cg_internal.h"

static const ir_shape *input_shape(cg_kernel *k, int i) { return &k->g->nodes[k->node->inputs[i]].shape; }

enum { SPLIT_MIN_ELEMENTS = 1 << 16 };

/* Writes the rows [begin, end) of the move; every size it needs it
 * computes from k (in the outlined function, from that function's batch). */
typedef void (*rows_fn)(cg_kernel *k, LLVMValueRef begin, LLVMValueRef end);

/* fn over rows [0, rows(k)): outlined and split over the runtime's threads
 * when the output is large enough. */
static void split_rows(cg_kernel *k, LLVMValueRef (*rows)(cg_kernel *k), rows_fn fn) {
    if (!k->parallel || ir_shape_numel(&k->node->shape) < SPLIT_MIN_ELEMENTS) {
        fn(k, cg_i64(k, 0), rows(k));
        return;
    }
    LLVMValueRef n = rows(k);
    LLVMValueRef work = cg_dims_product(k, &k->node->shape, 0, k->node->shape.rank);
    cg_outline o;
    cg_outline_begin(k, &o, "rows", NULL, 0);
    o.work = work, o.min_work = SPLIT_MIN_ELEMENTS;
    fn(k, o.begin, o.end);
    cg_outline_end(k, &o, n);
}

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

static void build_transpose(cg_kernel *k, cg_nest *nest) {
    const ir_shape *out = &k->node->shape;
    const int *perm = k->node->perm;
    int first = -1, prev = -1;
    nest->depth = 0;
    nest->n_streams = 2;
    for (int d = 0; d < out->rank; d++) {
        if (ir_dim_is_one(out, d))
            continue;
        if (first >= 0 && perm[d] != perm[prev] + 1) {
            add_group(k, nest, first, prev);
            first = -1;
        }
        if (first < 0)
            first = d;
        prev = d;
    }
    if (first >= 0)
        add_group(k, nest, first, prev);
}

static LLVMValueRef transpose_rows(cg_kernel *k) {
    cg_nest nest;
    build_transpose(k, &nest);
    return nest.depth ? nest.extent[0] : cg_i64(k, 1);
}

static void transpose_part(cg_kernel *k, LLVMValueRef begin, LLVMValueRef end) {
    cg_nest nest;
    build_transpose(k, &nest);
    LLVMValueRef base[2] = {cg_i64(k, 0), cg_i64(k, 0)};
    if (nest.depth) {
        for (int s = 0; s < 2; s++)
            base[s] = cg_mul(k, begin, nest.stride[s][0]);
        nest.extent[0] = LLVMBuildSub(k->b, end, begin, "");
    }
    cg_emit_nest(k, &nest, base, copy_element, NULL);
}

/* out[i] = x[j] with j[perm[d]] = i[d] */
int cg_kernel_transpose(cg_kernel *k) {
    split_rows(k, transpose_rows, transpose_part);
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

/* For begin <= o < end: out[o * out_row + out_at + j] = input src[o *
 * src_row + src_at + j], j < len. */
static void copy_runs(cg_kernel *k, int src, LLVMValueRef begin, LLVMValueRef end, LLVMValueRef len,
                      LLVMValueRef out_row, LLVMValueRef out_at, LLVMValueRef src_row, LLVMValueRef src_at) {
    cg_loop i = cg_loop_begin(k, LLVMBuildSub(k->b, end, begin, ""), "o");
    LLVMValueRef o = cg_add(k, begin, i.index);
    LLVMValueRef to = cg_add(k, cg_mul(k, o, out_row), out_at);
    LLVMValueRef from = cg_add(k, cg_mul(k, o, src_row), src_at);
    cg_loop j = cg_loop_begin(k, len, "j");
    cg_store(k, cg_load_input(k, src, cg_add(k, from, j.index)), k->out, cg_add(k, to, j.index));
    cg_loop_end(k, &j);
    cg_loop_end(k, &i);
}

/* The outer extent of the output around the node's axis. */
static LLVMValueRef outer_rows(cg_kernel *k) { return cg_dims_product(k, &k->node->shape, 0, k->node->axis); }

/* out[o, a, i] = x[o, start + a, i]: one run of (stop - start) * inner. */
static void slice_part(cg_kernel *k, LLVMValueRef begin, LLVMValueRef end) {
    around x = split_at(k, input_shape(k, 0), k->node->axis);
    LLVMValueRef len = cg_mul(k, cg_i64(k, k->node->stop - k->node->start), x.inner);
    copy_runs(k, 0, begin, end, len, len, cg_i64(k, 0), cg_mul(k, x.n, x.inner),
              cg_mul(k, cg_i64(k, k->node->start), x.inner));
}

int cg_kernel_slice(cg_kernel *k) {
    split_rows(k, outer_rows, slice_part);
    return 0;
}

/* out[o, j] = 0 for begin <= o < end, j in [from, to) */
static void zero_runs(cg_kernel *k, LLVMValueRef begin, LLVMValueRef end, LLVMValueRef row, LLVMValueRef from,
                      LLVMValueRef to) {
    LLVMValueRef zero = k->node->dtype == IR_I32 ? LLVMConstInt(k->t.i32, 0, 0) : LLVMConstReal(k->t.real, 0);
    cg_loop i = cg_loop_begin(k, LLVMBuildSub(k->b, end, begin, ""), "o");
    LLVMValueRef at = cg_add(k, cg_mul(k, cg_add(k, begin, i.index), row), from);
    cg_loop j = cg_loop_begin(k, LLVMBuildSub(k->b, to, from, ""), "j");
    cg_store(k, zero, k->out, cg_add(k, at, j.index));
    cg_loop_end(k, &j);
    cg_loop_end(k, &i);
}

/* out[o, a, i] = x[o, a - start, i] inside x's run, 0 before and after. */
static void pad_part(cg_kernel *k, LLVMValueRef begin, LLVMValueRef end) {
    around y = split_at(k, &k->node->shape, k->node->axis), x = split_at(k, input_shape(k, 0), k->node->axis);
    LLVMValueRef row = cg_mul(k, y.n, y.inner), len = cg_mul(k, x.n, x.inner);
    LLVMValueRef at = cg_mul(k, cg_i64(k, k->node->start), y.inner), after = cg_add(k, at, len);
    if (k->node->start > 0)
        zero_runs(k, begin, end, row, cg_i64(k, 0), at);
    copy_runs(k, 0, begin, end, len, row, at, len, cg_i64(k, 0));
    zero_runs(k, begin, end, row, after, row);
}

int cg_kernel_pad(cg_kernel *k) {
    split_rows(k, outer_rows, pad_part);
    return 0;
}

/* Each output row is a's row followed by b's. */
static void concat_part(cg_kernel *k, LLVMValueRef begin, LLVMValueRef end) {
    around y = split_at(k, &k->node->shape, k->node->axis);
    around a = split_at(k, input_shape(k, 0), k->node->axis), b = split_at(k, input_shape(k, 1), k->node->axis);
    LLVMValueRef row = cg_mul(k, y.n, y.inner), a_len = cg_mul(k, a.n, a.inner), b_len = cg_mul(k, b.n, b.inner);
    copy_runs(k, 0, begin, end, a_len, row, cg_i64(k, 0), a_len, cg_i64(k, 0));
    copy_runs(k, 1, begin, end, b_len, row, a_len, b_len, cg_i64(k, 0));
}

int cg_kernel_concat(cg_kernel *k) {
    split_rows(k, outer_rows, concat_part);
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
