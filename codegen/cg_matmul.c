/*
 * cg_matmul.c - C[M,N] = A[M,K] @ B[K,N], either side possibly transposed.
 *
 * This is the simple, replaceable version: plain loops that LLVM
 * vectorises, chosen so the innermost loop is unit-stride.
 *   B as stored is [K,N]: i-k-j.  Row i of C accumulates a(i,k) * row k of
 *     B; the j loop is contiguous in C and B and vectorises without
 *     reassociation (each lane is a different C element).
 *   B as stored is [N,K] (transpose_b): i-j-k.  C(i,j) is a dot product of
 *     row i of A with row j of B, contiguous in k (when A is not also
 *     transposed); its f32 accumulator carries reassoc so the vectoriser
 *     can keep partial sums, as any BLAS does.
 * A register-blocked, packed micro-kernel replaces both later; the
 * kernel's interface (out, a, b, batch) stays.
 */
#include "cg_internal.h"

typedef struct matmul {
    LLVMValueRef m, n, k;
    int ta, tb;
} matmul;

/* Element (i, kk) of the logical A[M,K]. */
static LLVMValueRef load_a(cg_kernel *k, const matmul *mm, LLVMValueRef i, LLVMValueRef kk) {
    LLVMValueRef index = mm->ta ? cg_add(k, cg_mul(k, kk, mm->m), i) : cg_add(k, cg_mul(k, i, mm->k), kk);
    return cg_load_input(k, 0, index);
}

/* Element (kk, j) of the logical B[K,N]. */
static LLVMValueRef load_b(cg_kernel *k, const matmul *mm, LLVMValueRef kk, LLVMValueRef j) {
    LLVMValueRef index = mm->tb ? cg_add(k, cg_mul(k, j, mm->k), kk) : cg_add(k, cg_mul(k, kk, mm->n), j);
    return cg_load_input(k, 1, index);
}

static LLVMValueRef fmuladd(cg_kernel *k, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c) {
    LLVMValueRef args[3] = {a, b, c};
    return cg_intrinsic(k, "llvm.fmuladd", k->t.f32, args, 3);
}

static void emit_ikj(cg_kernel *k, const matmul *mm) {
    LLVMValueRef zero = LLVMConstReal(k->t.f32, 0);
    cg_loop i = cg_loop_begin(k, mm->m, "i");
    LLVMValueRef row = cg_mul(k, i.index, mm->n);
    cg_loop j = cg_loop_begin(k, mm->n, "j");
    cg_store(k, zero, k->out, cg_add(k, row, j.index));
    cg_loop_end(k, &j);

    cg_loop kk = cg_loop_begin(k, mm->k, "k");
    LLVMValueRef a = load_a(k, mm, i.index, kk.index);
    j = cg_loop_begin(k, mm->n, "j");
    LLVMValueRef c_index = cg_add(k, row, j.index);
    LLVMValueRef c = cg_load(k, k->t.f32, k->out, c_index);
    cg_store(k, fmuladd(k, a, load_b(k, mm, kk.index, j.index), c), k->out, c_index);
    cg_loop_end(k, &j);
    cg_loop_end(k, &kk);
    cg_loop_end(k, &i);
}

static void emit_ijk(cg_kernel *k, const matmul *mm) {
    LLVMValueRef acc = cg_alloca(k, k->t.f32, "acc");
    cg_loop i = cg_loop_begin(k, mm->m, "i");
    cg_loop j = cg_loop_begin(k, mm->n, "j");
    LLVMBuildStore(k->b, LLVMConstReal(k->t.f32, 0), acc);
    cg_loop kk = cg_loop_begin(k, mm->k, "k");
    LLVMValueRef product = LLVMBuildFMul(k->b, load_a(k, mm, i.index, kk.index), load_b(k, mm, kk.index, j.index), "");
    LLVMValueRef sum = LLVMBuildFAdd(k->b, LLVMBuildLoad2(k->b, k->t.f32, acc, ""), product, "");
    LLVMSetFastMathFlags(product, LLVMFastMathAllowContract);
    LLVMSetFastMathFlags(sum, LLVMFastMathAllowReassoc | LLVMFastMathAllowContract);
    LLVMBuildStore(k->b, sum, acc);
    cg_loop_end(k, &kk);
    cg_store(k, LLVMBuildLoad2(k->b, k->t.f32, acc, ""), k->out, cg_add(k, cg_mul(k, i.index, mm->n), j.index));
    cg_loop_end(k, &j);
    cg_loop_end(k, &i);
}

int cg_kernel_matmul(cg_kernel *k) {
    const ir_shape *a = &k->g->nodes[k->node->inputs[0]].shape;
    matmul mm;
    mm.ta = !!(k->node->flags & IR_TRANSPOSE_A);
    mm.tb = !!(k->node->flags & IR_TRANSPOSE_B);
    mm.m = cg_dim(k, &k->node->shape, 0);
    mm.n = cg_dim(k, &k->node->shape, 1);
    mm.k = cg_dim(k, a, mm.ta ? 0 : 1);
    if (k->node->dtype != IR_F32 || a->rank != 2) {
        cg_error("matmul: only f32 matrices are supported");
        return -1;
    }
    if (mm.tb)
        emit_ijk(k, &mm);
    else
        emit_ikj(k, &mm);
    return 0;
}
