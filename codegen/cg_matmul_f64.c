/*
 * cg_matmul_f64.c - C[M,N] = A[M,K] @ B[K,N] in the f64 variant, either side
 * possibly transposed.
 *
 * cg_matmul.c is explicit 8-wide f32 vector code; the f64 entries exist to
 * check gradients (gradcheck), where what matters is that the kernel is
 * right and simple, so this is one plain loop nest: for each C(i, j) a dot
 * product over k accumulated in double, in order, without reassociation
 * (so the result is the exact sequential sum the reference interpreter
 * computes, up to fused multiply-adds).  Index arithmetic covers all four
 * transpose combinations through strides; a batched product is an outer
 * loop over the index p of its leading dims, the p-th matrices p M K,
 * p K N and p M N elements in.
 */
#include "cg_internal.h"

int cg_kernel_matmul_f64(cg_kernel *k) {
    const ir_shape *a = &k->g->nodes[k->node->inputs[0]].shape, *b = &k->g->nodes[k->node->inputs[1]].shape;
    if (k->node->dtype != IR_F32) {
        cg_error("matmul: only f32 products are supported");
        return -1;
    }
    int ta = !!(k->node->flags & IR_TRANSPOSE_A), tb = !!(k->node->flags & IR_TRANSPOSE_B);
    ir_matmul_dims d = ir_matmul_split(k->node, a->rank, b->rank);
    LLVMValueRef m = cg_dims_product(k, a, d.m_lo, d.m_hi), n = cg_dims_product(k, b, d.n_lo, d.n_hi);
    LLVMValueRef kd = cg_dims_product(k, a, d.k_lo, d.k_hi);
    /* A(i, kk) at i * a_i + kk * a_k; B(kk, j) at kk * b_k + j * b_j */
    LLVMValueRef a_i = ta ? cg_i64(k, 1) : kd, a_k = ta ? m : cg_i64(k, 1);
    LLVMValueRef b_k = tb ? cg_i64(k, 1) : n, b_j = tb ? kd : cg_i64(k, 1);
    LLVMValueRef acc = cg_alloca(k, k->t.real, "acc");

    cg_loop p = cg_loop_begin(k, cg_dims_product(k, a, 0, d.lead), "p");
    LLVMValueRef a0 = cg_mul(k, p.index, cg_mul(k, m, kd)), b0 = cg_mul(k, p.index, cg_mul(k, kd, n));
    LLVMValueRef c0 = cg_mul(k, p.index, cg_mul(k, m, n));
    cg_loop i = cg_loop_begin(k, m, "i");
    cg_loop j = cg_loop_begin(k, n, "j");
    LLVMBuildStore(k->b, LLVMConstReal(k->t.real, 0), acc);
    cg_loop kk = cg_loop_begin(k, kd, "k");
    LLVMValueRef x = cg_load_input(k, 0, cg_add(k, a0, cg_add(k, cg_mul(k, i.index, a_i), cg_mul(k, kk.index, a_k))));
    LLVMValueRef y = cg_load_input(k, 1, cg_add(k, b0, cg_add(k, cg_mul(k, kk.index, b_k), cg_mul(k, j.index, b_j))));
    LLVMValueRef sum = LLVMBuildLoad2(k->b, k->t.real, acc, "");
    LLVMBuildStore(k->b, cg_fmuladd(k, k->t.real, x, y, sum), acc);
    cg_loop_end(k, &kk);
    LLVMValueRef at = cg_add(k, c0, cg_add(k, cg_mul(k, i.index, n), j.index));
    cg_store(k, LLVMBuildLoad2(k->b, k->t.real, acc, ""), k->out, at);
    cg_loop_end(k, &j);
    cg_loop_end(k, &i);
    cg_loop_end(k, &p);
    return 0;
}
