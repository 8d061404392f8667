/*
 * cg_random.c - dropout, the one op with randomness.
 *
 * The mask is never stored: element i of a dropout's mask is a hash of
 * (seed, step, i), ir_dropout_bits in ir/build.c, rebuilt here in LLVM IR
 * from the same uint32 operations, so the interpreter, the forward kernel
 * and the backward kernel (a dropout node with the same seed) agree bit
 * for bit.  The hash is a counter-based generator in the style of
 * splitmix: a Weyl sequence i * 0x9E3779B9 offset by a per-step key and
 * passed through MurmurHash3's finaliser.  Everything in the loop body is
 * 32-bit integer arithmetic and selects, so it vectorises; whether the
 * model is training is a load before the loop, and the select on it is
 * loop-invariant (LLVM unswitches it).
 */
#include "cg_internal.h"

static LLVMValueRef u32(cg_kernel *k, uint32_t v) { return LLVMConstInt(k->t.i32, v, 0); }

/* h ^= h >> 16; h *= 0x85ebca6b; h ^= h >> 13; h *= 0xc2b2ae35; h ^= h >> 16 */
static LLVMValueRef fmix32(cg_kernel *k, LLVMValueRef h) {
    h = LLVMBuildXor(k->b, h, LLVMBuildLShr(k->b, h, u32(k, 16), ""), "");
    h = LLVMBuildMul(k->b, h, u32(k, 0x85ebca6bu), "");
    h = LLVMBuildXor(k->b, h, LLVMBuildLShr(k->b, h, u32(k, 13), ""), "");
    h = LLVMBuildMul(k->b, h, u32(k, 0xc2b2ae35u), "");
    return LLVMBuildXor(k->b, h, LLVMBuildLShr(k->b, h, u32(k, 16), ""), "");
}

/* out[i] = training != 0 ? (bits(i) >= p 2^32 ? x[i] / (1 - p) : 0) : x[i]
 * with inputs x, training, step; p and the seed are attributes. */
int cg_kernel_dropout(cg_kernel *k) {
    const ir_node *n = k->node;
    LLVMValueRef zero = LLVMConstReal(k->t.real, 0);
    LLVMValueRef on = LLVMBuildFCmp(k->b, LLVMRealUNE, cg_load_input(k, 1, cg_i64(k, 0)), zero, "training");
    LLVMValueRef step = cg_convert(k, cg_load_input(k, 2, cg_i64(k, 0)), IR_F32, IR_I32);
    LLVMValueRef key = fmix32(k, LLVMBuildAdd(k->b, fmix32(k, u32(k, n->seed)), step, ""));
    LLVMValueRef threshold = u32(k, ir_dropout_threshold(n->value));
    LLVMValueRef scale = LLVMConstReal(k->t.real, 1 / (1 - n->value));
    cg_loop i = cg_loop_begin(k, cg_dims_product(k, &n->shape, 0, n->shape.rank), "i");
    LLVMValueRef counter = LLVMBuildMul(k->b, LLVMBuildTrunc(k->b, i.index, k->t.i32, ""), u32(k, 0x9E3779B9u), "");
    LLVMValueRef bits = fmix32(k, LLVMBuildAdd(k->b, key, counter, ""));
    LLVMValueRef keep = LLVMBuildICmp(k->b, LLVMIntUGE, bits, threshold, "keep");
    LLVMValueRef x = cg_load_input(k, 0, i.index);
    LLVMValueRef dropped = LLVMBuildSelect(k->b, keep, LLVMBuildFMul(k->b, x, scale, ""), zero, "");
    cg_store(k, LLVMBuildSelect(k->b, on, dropped, x, ""), k->out, i.index);
    cg_loop_end(k, &i);
    return 0;
}
