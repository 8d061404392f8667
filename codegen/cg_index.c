/*
 * cg_index.c - ops addressed through indices: argmax, one_hot, gather and
 * scatter_add.
 *
 * Each sees its tensors as a few flat loops around one axis: [outer, n,
 * inner] for argmax, [rows, n] for one_hot, and rows of D contiguous
 * elements for gather and scatter_add, so the innermost loop is the
 * contiguous one wherever the op allows.  An index outside its range
 * selects nothing (a zero row for one_hot and gather, a dropped row for
 * scatter_add): the kernels never read or write out of bounds, whatever
 * the data, and the reference interpreter does the same.
 */
#include "cg_internal.h"

static const ir_shape *input_shape(cg_kernel *k, int i) { return &k->g->nodes[k->node->inputs[i]].shape; }

/* ------------------------------------------------------------------ argmax */

/* out[o, i] = the first a with x[o, a, i] > every earlier x[o, ., i];
 * ordered compares skip NaN, and a line of NaN (or of -inf) gives 0. */
int cg_kernel_argmax(cg_kernel *k) {
    const ir_shape *x = input_shape(k, 0);
    ir_dtype t = k->g->nodes[k->node->inputs[0]].dtype;
    int axis = k->node->axis;
    LLVMValueRef outer = cg_dims_product(k, x, 0, axis), n = cg_dim(k, x, axis);
    LLVMValueRef inner = cg_dims_product(k, x, axis + 1, x->rank);
    LLVMValueRef lowest = t == IR_I32 ? LLVMConstInt(k->t.i32, (unsigned long long)INT32_MIN, 1)
                                      : LLVMConstReal(k->t.real, -__builtin_inf());
    LLVMValueRef best = cg_alloca(k, cg_type(k, t), "best"), at = cg_alloca(k, k->t.i64, "at");

    cg_loop o = cg_loop_begin(k, outer, "o");
    cg_loop i = cg_loop_begin(k, inner, "i");
    LLVMBuildStore(k->b, lowest, best);
    LLVMBuildStore(k->b, cg_i64(k, 0), at);
    LLVMValueRef line = cg_add(k, cg_mul(k, cg_mul(k, o.index, n), inner), i.index);
    cg_loop a = cg_loop_begin(k, n, "a");
    LLVMValueRef v = cg_load_input(k, 0, cg_add(k, line, cg_mul(k, a.index, inner)));
    LLVMValueRef b = LLVMBuildLoad2(k->b, cg_type(k, t), best, "");
    LLVMValueRef greater =
        t == IR_I32 ? LLVMBuildICmp(k->b, LLVMIntSGT, v, b, "") : LLVMBuildFCmp(k->b, LLVMRealOGT, v, b, "");
    LLVMBuildStore(k->b, LLVMBuildSelect(k->b, greater, v, b, ""), best);
    LLVMValueRef prev = LLVMBuildLoad2(k->b, k->t.i64, at, "");
    LLVMBuildStore(k->b, LLVMBuildSelect(k->b, greater, a.index, prev, ""), at);
    cg_loop_end(k, &a);
    LLVMValueRef result = LLVMBuildTrunc(k->b, LLVMBuildLoad2(k->b, k->t.i64, at, ""), k->t.i32, "");
    cg_store(k, result, k->out, cg_add(k, cg_mul(k, o.index, inner), i.index));
    cg_loop_end(k, &i);
    cg_loop_end(k, &o);
    return 0;
}

/* ----------------------------------------------------------------- one_hot */

/* out[j, c] = labels[j] == c ? 1 : 0, c in [0, n): the inner loop is a
 * compare and a select per element, which vectorises. */
int cg_kernel_one_hot(cg_kernel *k) {
    const ir_shape *s = &k->node->shape;
    LLVMValueRef rows = cg_dims_product(k, s, 0, s->rank - 1), n = cg_dim(k, s, s->rank - 1);
    LLVMValueRef one = LLVMConstReal(k->t.real, 1), zero = LLVMConstReal(k->t.real, 0);
    cg_loop j = cg_loop_begin(k, rows, "j");
    LLVMValueRef label = LLVMBuildSExt(k->b, cg_load_input(k, 0, j.index), k->t.i64, "label");
    LLVMValueRef row = cg_mul(k, j.index, n);
    cg_loop c = cg_loop_begin(k, n, "c");
    LLVMValueRef hit = LLVMBuildICmp(k->b, LLVMIntEQ, label, c.index, "");
    cg_store(k, LLVMBuildSelect(k->b, hit, one, zero, ""), k->out, cg_add(k, row, c.index));
    cg_loop_end(k, &c);
    cg_loop_end(k, &j);
    return 0;
}

/* ---------------------------------------------------- gather, scatter_add */

/* Row index j of the i32 input `i` as i64, and whether it is in [0, rows):
 * one unsigned compare, since a negative index is a huge unsigned one. */
static LLVMValueRef load_row(cg_kernel *k, int i, LLVMValueRef j, int64_t rows, LLVMValueRef *in_range) {
    LLVMValueRef row = LLVMBuildSExt(k->b, cg_load_input(k, i, j), k->t.i64, "row");
    *in_range = LLVMBuildICmp(k->b, LLVMIntULT, row, cg_i64(k, rows), "in_range");
    return row;
}

/* out[j, :] = table[idx[j], :], or zeros.  An index out of range reads
 * row 0 (which exists) and the select throws the value away, so the inner
 * loop has no branch. */
int cg_kernel_gather(cg_kernel *k) {
    const ir_shape *t = input_shape(k, 0);
    int64_t d = t->dims[1];
    LLVMValueRef zero = k->node->dtype == IR_I32 ? LLVMConstInt(k->t.i32, 0, 0) : LLVMConstReal(k->t.real, 0);
    LLVMValueRef in_range;
    cg_loop j = cg_loop_begin(k, cg_dims_product(k, input_shape(k, 1), 0, input_shape(k, 1)->rank), "j");
    LLVMValueRef row = load_row(k, 1, j.index, t->dims[0], &in_range);
    LLVMValueRef from = cg_mul(k, LLVMBuildSelect(k->b, in_range, row, cg_i64(k, 0), ""), cg_i64(k, d));
    LLVMValueRef to = cg_mul(k, j.index, cg_i64(k, d));
    cg_loop c = cg_loop_begin(k, cg_i64(k, d), "c");
    LLVMValueRef v = cg_load_input(k, 0, cg_add(k, from, c.index));
    cg_store(k, LLVMBuildSelect(k->b, in_range, v, zero, ""), k->out, cg_add(k, to, c.index));
    cg_loop_end(k, &c);
    cg_loop_end(k, &j);
    return 0;
}

/* out = 0; out[idx[j], :] += src[j, :] for the j whose index is in range.
 * The rows are added in order of j, so the sum is deterministic. */
int cg_kernel_scatter_add(cg_kernel *k) {
    const ir_shape *s = &k->node->shape;
    int64_t d = s->dims[1];
    LLVMValueRef in_range;
    cg_loop i = cg_loop_begin(k, cg_i64(k, s->dims[0] * d), "i");
    cg_store(k, LLVMConstReal(k->t.real, 0), k->out, i.index);
    cg_loop_end(k, &i);

    cg_loop j = cg_loop_begin(k, cg_dims_product(k, input_shape(k, 1), 0, input_shape(k, 1)->rank), "j");
    LLVMValueRef row = load_row(k, 1, j.index, s->dims[0], &in_range);
    LLVMBasicBlockRef add = LLVMAppendBasicBlockInContext(k->ctx, k->fn, "add");
    LLVMBasicBlockRef next = LLVMCreateBasicBlockInContext(k->ctx, "next");
    LLVMBuildCondBr(k->b, in_range, add, next);
    LLVMPositionBuilderAtEnd(k->b, add);
    LLVMValueRef to = cg_mul(k, row, cg_i64(k, d)), from = cg_mul(k, j.index, cg_i64(k, d));
    cg_loop c = cg_loop_begin(k, cg_i64(k, d), "c");
    LLVMValueRef at = cg_add(k, to, c.index);
    LLVMValueRef sum =
        LLVMBuildFAdd(k->b, cg_load(k, k->t.real, k->out, at), cg_load_input(k, 0, cg_add(k, from, c.index)), "");
    cg_store(k, sum, k->out, at);
    cg_loop_end(k, &c);
    LLVMBuildBr(k->b, next);
    LLVMAppendExistingBasicBlock(k->fn, next);
    LLVMPositionBuilderAtEnd(k->b, next);
    cg_loop_end(k, &j);
    return 0;
}
