/*
 * cg_matmul.c - C[M,N] = A[M,K] @ B[K,N], either side possibly transposed
 * (IR_TRANSPOSE_A: A stored [K,M]; IR_TRANSPOSE_B: B stored [N,K]), f32;
 * a batched product is one of them per index of its leading dims (see
 * emit_batched at the end).
 *
 * Two ways, chosen per node at compile time where the shapes decide it and
 * at run time where the batch dimension does (M, N or K may be the batch;
 * see blocked_pays):
 *
 * Small products (tiny, or thin enough that a 6x16 tile would be mostly
 * padding, or a few rows of moderate width with B untransposed) run plain
 * loops that LLVM vectorises, the innermost loop unit-stride:
 *   B as stored is [K,N]: i-k-j, row i of C accumulates a(i,k) * row k of B;
 *   B as stored is [N,K]: i-j-k, dot products whose accumulator carries
 *     reassoc so the vectoriser keeps partial sums, as any BLAS does.
 *
 * Everything else calls @mdl.sgemm, one function per module emitted on
 * first use (the module does not grow with the number of matmul nodes),
 * which takes A and B by strides, so one body serves every transpose pair,
 * C by its row stride, and can add into C instead of overwriting it (the
 * convolutions, cg_conv.c, call it on blocks of their own).
 * It is the classic blocked GEMM written directly as vector IR:
 *
 *   for jc in N by NC:                 B panel of NC columns
 *     for pc in K by KC:               K slice; the first one overwrites C
 *       pack B[pc.., jc..] -> Bp       kc x 16 strips, zero-padded
 *       for ic in M by MC:
 *         pack A[ic.., pc..] -> Ap     kc x 6 strips, when it pays (below);
 *                                      otherwise A is read where it is
 *         for each 16-column strip of Bp, for each 6-row strip of A:
 *           6x16 micro-tile
 *
 * The micro-tile keeps C's 6x16 block in 12 <8 x float> accumulators (12
 * ymm registers with AVX2) and per k step does 2 vector loads from the B
 * strip, 6 broadcasts from A and 12 llvm.fmuladd.v8f32; the k loop stays a
 * loop (not unrolled), so the IR is small.  B stored [N,K] is packed 8x8
 * blocks at a time, transposed in registers.  Edges: A rows past M are
 * clamped to the last valid row (their results are discarded), B columns
 * past N are packed as zeros (masked loads: nothing past the matrix is
 * read), and a tile that is not a full 6x16 works in a small stack tile
 * copied in and out by scalar loops.  So any M, N, K >= 1 works, and only
 * <8 x float> vectors are used: without AVX2 LLVM splits them into SSE
 * halves.  Every loop of @mdl.sgemm carries metadata that keeps LLVM's
 * vectoriser and unroller off it: they would only add compile time.
 *
 * On a target with AVX-512 (cg_build_flags) the tile was 12x16 instead:
 * one <16 x float> per row, still 12 accumulators, 12 broadcasts and 12
 * FMAs of twice the width per k step, A packed in 12-row strips.  Each C
 * element is the same sum in the same order either way, so results do not
 * change; measured with bench/gemm.c on this machine's Xeon, 256^3 went
 * from 35-59 to 75 GFLOPS (OpenBLAS's AVX-512 kernel: 94) and the MLP's
 * shapes to 0.9-1.0x OpenBLAS; W2 trains 1.15x faster.  Later the tile
 * grew to 16x16 (16 accumulators, 16 broadcasts and 1 load for 16 FMAs;
 * the 32 zmm registers have room): products of 32 or 64 rows -- the char
 * LSTM's h U at batch 32, attention's [64, 64] @ [64, 32] -- then take 2
 * or 4 full strips instead of 3 or 6 with the last one partly wasted
 * (Zen 4: [32, 512] @ [128, 512] 67-101 -> 114 GFLOPS, attention's
 * products 0.89-0.91x -> 1.02-1.04x OpenBLAS, the MLP's at batch 64
 * 1.04 -> 1.16x), the large ones unchanged.
 * A product whose N is a multiple of 32 (and at least 64) uses a second
 * function, @mdl.sgemm.wide, with a 12x32 tile: 24 of the 32 zmm
 * registers accumulate, and a k step is 2 loads from B and 12 broadcasts
 * for 24 FMAs instead of 13 loads for 12 (an Intel core has two load
 * ports for its two FMA units; on Zen 4, which does one 512-bit FMA a
 * cycle, both tiles are FMA-bound and measure the same).  Narrow products
 * keep 16 columns (padding 10 columns to 32 cost 1.7x).
 *
 * Epilogues (passes/epilogue.c): a fused group that starts with a product
 * calls @mdl.sgemm[.wide].epilogue, the same body, whose micro-tile calls
 * the group's epilogue function on each tile as its last K slice is
 * stored, while the tile is in L1 (bias, activation, a ReLU mask: the
 * output is written once).  Its last argument carries the address of a
 * context (the whole C, the epilogue function, the group's input
 * pointers) instead of the accumulate flag (see epilogue_context), so the
 * runtime splits it like any other product.  One epilogue function per
 * distinct epilogue (@"mdl.epilogue[P|add(m0,x0r)|relu(m1)]", see
 * epilogue_name): a call per tile costs nothing measurable, and a copy of
 * the sgemm body per group cost ~50 ms of compile time each.  A product
 * on the small path gets the epilogue as a second loop over its (small)
 * output in the same kernel.
 *
 * Scratch: the packed buffers live on the stack of @mdl.sgemm (the kernel
 * must not call malloc, and the memory plan knows nothing of them), one
 * alloca sized to the problem, at most
 *   Bp  KC x NC  = 256 x 256 floats = 256 KiB
 *   Ap  MC x KC  = 144 x 256 floats = 144 KiB  (only when A is packed)
 * plus a 16x32 edge tile: about 400 KiB for large products, a few KiB
 * for small ones.  Callers need that much stack (the main thread has 8 MiB; worker
 * threads must be created with enough).  The function is noinline (its
 * frame never lands in a caller's) and probes its stack page by page
 * ("probe-stack"), so a thread whose stack is too small faults on its guard
 * page instead of writing past it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cg_internal.h"

/* Register block and cache blocks.  MC is a multiple of MR and NC of NR, so
 * the strips of a full block fill the buffers exactly. */
enum { MR_MAX = 16, NR_MAX = 32, NR = 16 };

/* The blocked path needs M >= SMALL_M (fewer rows waste most of a 6-row
 * tile), N >= SMALL_N, K >= SMALL_K and at least SMALL_WORK multiply-adds;
 * and with B untransposed, not ROW_LOOP_MIN_N <= N <= ROW_LOOP_MAX_N with
 * B (K x N) at most ROW_LOOP_MAX_B floats and at most ROW_LOOP_MAX_M rows:
 * there the i-k-j loop holds a row of C (at most 8 vectors) in registers
 * across k, reads B from L1, and is as fast as the tile without any
 * packing.  With more rows the tile wins (its 12 accumulators hide the FMA
 * latency that a row of 2-4 vectors cannot): [64,64] @ [64,32], attention's
 * p v, 96 against 74 GFLOPS on AVX-512; 16 rows, 91 against 65 the other
 * way.  Measured with bench/gemm.c (bench/README.md). */
enum { SMALL_M = 4, SMALL_N = 8, SMALL_K = 4, SMALL_WORK = 8192 };
enum { ROW_LOOP_MIN_N = 24, ROW_LOOP_MAX_N = 64, ROW_LOOP_MAX_B = 8192, ROW_LOOP_MAX_M = 32 };

/* A is packed when N > PACK_A_MIN_N (with fewer 16-column strips each
 * element is read too few times to pay for the copy) and it is stored
 * transposed or its rows are at least PACK_A_MIN_ROW floats (4 KiB) apart. */
enum { PACK_A_MIN_N = 2 * NR, PACK_A_MIN_ROW = 1024 };

/* B stored [K, N] is read where it is, not packed, by products of at most
 * B_IN_PLACE_MAX_M rows (its full strips; a strip past N's end is still
 * packed, zero-padded): each strip then serves at most a few row strips,
 * too few to pay for copying it -- the char LSTM's h U, [32, 128] @
 * [128, 512], packs U at each of its 64 steps otherwise. */
enum { B_IN_PLACE_MAX_M = 96 };

typedef struct matmul {
    LLVMValueRef m, n, k;
    int ta, tb;
} matmul;

/* ---------------------------------------------------------- IR helpers */

static LLVMValueRef gep(cg_kernel *k, LLVMValueRef base, LLVMValueRef index) {
    return LLVMBuildInBoundsGEP2(k->b, k->t.f32, base, &index, 1, "");
}

static LLVMValueRef load_aligned(cg_kernel *k, LLVMTypeRef t, LLVMValueRef p, unsigned align) {
    LLVMValueRef v = LLVMBuildLoad2(k->b, t, p, "");
    LLVMSetAlignment(v, align);
    return v;
}

static void store_aligned(cg_kernel *k, LLVMValueRef v, LLVMValueRef p, unsigned align) {
    LLVMSetAlignment(LLVMBuildStore(k->b, v, p), align);
}

static LLVMValueRef ult(cg_kernel *k, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildICmp(k->b, LLVMIntULT, a, b, "");
}

static LLVMValueRef umin(cg_kernel *k, LLVMValueRef a, LLVMValueRef b) {
    return LLVMBuildSelect(k->b, ult(k, a, b), a, b, "");
}

static LLVMValueRef sub(cg_kernel *k, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildNSWSub(k->b, a, b, ""); }

/* ceil(a / d) for a >= 1 */
static LLVMValueRef blocks(cg_kernel *k, LLVMValueRef a, int64_t d) {
    return LLVMBuildUDiv(k->b, cg_add(k, a, cg_i64(k, d - 1)), cg_i64(k, d), "");
}

static LLVMBasicBlockRef new_block(cg_kernel *k, const char *name) {
    return LLVMAppendBasicBlockInContext(k->ctx, k->fn, name);
}

static LLVMValueRef splat(cg_kernel *k, LLVMTypeRef vector, LLVMValueRef x) {
    LLVMValueRef v = LLVMBuildInsertElement(k->b, LLVMGetPoison(vector), x, LLVMConstInt(k->t.i32, 0, 0), "");
    LLVMValueRef zeros = LLVMConstNull(LLVMVectorType(k->t.i32, LLVMGetVectorSize(vector)));
    return LLVMBuildShuffleVector(k->b, v, LLVMGetPoison(vector), zeros, "");
}

/* shufflevector of two <8 x float> by a constant mask */
static LLVMValueRef shuffle(cg_kernel *k, LLVMValueRef a, LLVMValueRef b, const int *mask) {
    LLVMValueRef m[8];
    for (int i = 0; i < 8; i++)
        m[i] = LLVMConstInt(k->t.i32, (unsigned long long)mask[i], 0);
    return LLVMBuildShuffleVector(k->b, a, b, LLVMConstVector(m, 8), "");
}

/* <first, first+1, ..., first+n-1> < limit, as <n x i1> (n <= 16) */
static LLVMValueRef lanes_below_n(cg_kernel *k, unsigned n, int first, LLVMValueRef limit) {
    LLVMValueRef lane[16];
    for (unsigned i = 0; i < n; i++)
        lane[i] = cg_i64(k, first + (int)i);
    LLVMTypeRef vi64 = LLVMVectorType(k->t.i64, n);
    return LLVMBuildICmp(k->b, LLVMIntULT, LLVMConstVector(lane, n), splat(k, vi64, limit), "");
}

static LLVMValueRef lanes_below(cg_kernel *k, int first, LLVMValueRef limit) {
    return lanes_below_n(k, 8, first, limit);
}

/* llvm.masked.load.v8f32: the lanes where mask is set, 0 elsewhere (the
 * others are not read, so the load may run past the end of a row). */
static LLVMValueRef masked_load(cg_kernel *k, LLVMTypeRef v8, LLVMValueRef p, LLVMValueRef mask) {
    const char *name = "llvm.masked.load";
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    LLVMTypeRef overloads[2] = {v8, k->t.ptr};
    LLVMValueRef fn = LLVMGetIntrinsicDeclaration(k->mod, id, overloads, 2);
    LLVMTypeRef fn_type = LLVMIntrinsicGetType(k->ctx, id, overloads, 2);
    LLVMValueRef args[4] = {p, LLVMConstInt(k->t.i32, 4, 0), mask, LLVMConstNull(v8)};
    return LLVMBuildCall2(k->b, fn_type, fn, args, 4, "");
}

/* llvm.masked.store.v8f32: the lanes where mask is set. */
static void masked_store(cg_kernel *k, LLVMValueRef v, LLVMValueRef p, LLVMValueRef mask) {
    const char *name = "llvm.masked.store";
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    LLVMTypeRef overloads[2] = {LLVMTypeOf(v), k->t.ptr};
    LLVMValueRef fn = LLVMGetIntrinsicDeclaration(k->mod, id, overloads, 2);
    LLVMTypeRef fn_type = LLVMIntrinsicGetType(k->ctx, id, overloads, 2);
    LLVMValueRef args[4] = {v, p, LLVMConstInt(k->t.i32, 4, 0), mask};
    LLVMBuildCall2(k->b, fn_type, fn, args, 4, "");
}

static void add_attribute(cg_kernel *k, LLVMValueRef fn, const char *name) {
    unsigned kind = LLVMGetEnumAttributeKindForName(name, strlen(name));
    if (kind)
        LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(k->ctx, kind, 0));
}

/* cg_loop_end, and the loop is left as written: no vectorising, no
 * unrolling.  Every loop of the sgemm function is either vector code
 * already or too short to gain, and LLVM's versions of them (runtime
 * checks, epilogues) would only cost compile time and code size. */
static void loop_end(cg_kernel *k, cg_loop *loop) { cg_loop_end_as_written(k, loop); }

/* ------------------------------------------------------- the small path */

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

static int is_constant(LLVMValueRef i1, int value) {
    return LLVMIsAConstantInt(i1) && LLVMConstIntGetZExtValue(i1) == (unsigned long long)value;
}

/* Columns [j0, j0 + nj) of C; the two loops below. */
static void emit_ikj(cg_kernel *k, const matmul *mm, LLVMValueRef j0, LLVMValueRef nj) {
    LLVMValueRef zero = LLVMConstReal(k->t.f32, 0);
    cg_loop i = cg_loop_begin(k, mm->m, "i");
    LLVMValueRef row = cg_add(k, cg_mul(k, i.index, mm->n), j0);
    cg_loop j = cg_loop_begin(k, nj, "j");
    cg_store(k, zero, k->out, cg_add(k, row, j.index));
    cg_loop_end(k, &j);

    cg_loop kk = cg_loop_begin(k, mm->k, "k");
    LLVMValueRef a = load_a(k, mm, i.index, kk.index);
    j = cg_loop_begin(k, nj, "j");
    LLVMValueRef c_index = cg_add(k, row, j.index);
    LLVMValueRef c = cg_load(k, k->t.f32, k->out, c_index);
    LLVMValueRef b = load_b(k, mm, kk.index, cg_add(k, j0, j.index));
    cg_store(k, cg_fmuladd(k, k->t.f32, a, b, c), k->out, c_index);
    cg_loop_end(k, &j);
    cg_loop_end(k, &kk);
    cg_loop_end(k, &i);
}

static void emit_ijk(cg_kernel *k, const matmul *mm, LLVMValueRef j0, LLVMValueRef nj) {
    LLVMValueRef acc = cg_alloca(k, k->t.f32, "acc");
    cg_loop i = cg_loop_begin(k, mm->m, "i");
    cg_loop j = cg_loop_begin(k, nj, "j");
    LLVMValueRef col = cg_add(k, j0, j.index);
    LLVMBuildStore(k->b, LLVMConstReal(k->t.f32, 0), acc);
    cg_loop kk = cg_loop_begin(k, mm->k, "k");
    LLVMValueRef product = LLVMBuildFMul(k->b, load_a(k, mm, i.index, kk.index), load_b(k, mm, kk.index, col), "");
    LLVMValueRef sum = LLVMBuildFAdd(k->b, LLVMBuildLoad2(k->b, k->t.f32, acc, ""), product, "");
    LLVMSetFastMathFlags(product, LLVMFastMathAllowContract);
    LLVMSetFastMathFlags(sum, LLVMFastMathAllowReassoc | LLVMFastMathAllowContract);
    LLVMBuildStore(k->b, sum, acc);
    cg_loop_end(k, &kk);
    cg_store(k, LLVMBuildLoad2(k->b, k->t.f32, acc, ""), k->out, cg_add(k, cg_mul(k, i.index, mm->n), col));
    cg_loop_end(k, &j);
    cg_loop_end(k, &i);
}

static void emit_columns(cg_kernel *k, const matmul *mm, LLVMValueRef j0, LLVMValueRef nj) {
    if (mm->tb)
        emit_ijk(k, mm, j0, nj);
    else
        emit_ikj(k, mm, j0, nj);
}

/* A product of a few rows (batch 1: a GEMV) streams all of B for little
 * arithmetic: with the runtime's threads and at least SPLIT_MIN_WORK
 * multiply-adds, its columns are split over them in whole blocks of
 * SPLIT_COLUMNS (a cache line of C each), outlined as <kernel>.columns.
 * Each C element is the same loop over k wherever its column falls, so the
 * result does not depend on the thread count; the decision depends on the
 * sizes only, so 1 and 2 threads run the same code.
 * The threshold is the runtime's for splitting a GEMM: on the shared
 * 2-vCPU VM (bench_gemm --threads 2, bench/w3.sh sample) splitting h U of
 * the char LSTM ([1,128]@[128,512], 2.4 us: B streams from L2 at ~30
 * bytes a cycle) made it 0.7-1.0x as fast, and W3's sampling 0.75-0.9x;
 * W2's [1,784]@[784,256] 0.84-1.09x.  Dispatch and join cost about what
 * half of such a product saves, and nothing when the second vCPU is busy
 * elsewhere.  [1,2048]@[2048,1024] gained 1.56x. */
enum { SPLIT_MIN_WORK = 1 << 18, SPLIT_COLUMNS = 16, SPLIT_MIN_N = 4 * SPLIT_COLUMNS, FEW_COLUMNS = 4 };

static matmul sizes_of(cg_kernel *k, const ir_matmul_dims *d);

static void emit_split_columns(cg_kernel *k, const matmul *mm, const ir_matmul_dims *d) {
    LLVMValueRef pieces = blocks(k, mm->n, SPLIT_COLUMNS);
    cg_outline o;
    cg_outline_begin(k, &o, "columns", NULL, 0);
    matmul inner = sizes_of(k, d); /* from the outlined function's batch */
    LLVMValueRef j0 = cg_mul(k, o.begin, cg_i64(k, SPLIT_COLUMNS));
    LLVMValueRef j1 = umin(k, cg_mul(k, o.end, cg_i64(k, SPLIT_COLUMNS)), inner.n);
    emit_columns(k, &inner, j0, sub(k, j1, j0));
    cg_outline_end(k, &o, pieces);
}

/* The plain loops: split over threads where that pays (above), decided at
 * run time where the batch is one of the sizes. */
static void emit_small(cg_kernel *k, const matmul *mm, const ir_matmul_dims *d, int64_t max_work, int64_t max_n) {
    /* A product of a few columns, as a linear model's weight gradient
     * x^T g ([2, B] @ [B]), is a sum over k: the ikj loop would add each
     * term to C in memory, one dependent add after the other, while the
     * ijk loop's sum is reassociable, which the vectoriser splits into
     * partial sums over vector lanes. */
    if (max_n < FEW_COLUMNS) {
        emit_ijk(k, mm, cg_i64(k, 0), mm->n);
        return;
    }
    if (!k->parallel || max_work < SPLIT_MIN_WORK || max_n < SPLIT_MIN_N) {
        emit_columns(k, mm, cg_i64(k, 0), mm->n);
        return;
    }
    LLVMValueRef work = cg_mul(k, cg_mul(k, mm->m, mm->n), mm->k);
    LLVMValueRef split = LLVMBuildAnd(k->b, LLVMBuildICmp(k->b, LLVMIntUGE, work, cg_i64(k, SPLIT_MIN_WORK), ""),
                                      LLVMBuildICmp(k->b, LLVMIntUGE, mm->n, cg_i64(k, SPLIT_MIN_N), ""), "split");
    if (is_constant(split, 1)) {
        emit_split_columns(k, mm, d);
        return;
    }
    LLVMBasicBlockRef yes = new_block(k, "split"), no = new_block(k, "whole"), end = new_block(k, "small.end");
    LLVMBuildCondBr(k->b, split, yes, no);
    LLVMPositionBuilderAtEnd(k->b, yes);
    emit_split_columns(k, mm, d);
    LLVMBuildBr(k->b, end);
    LLVMPositionBuilderAtEnd(k->b, no);
    emit_columns(k, mm, cg_i64(k, 0), mm->n);
    LLVMBuildBr(k->b, end);
    LLVMPositionBuilderAtEnd(k->b, end);
}

/* ------------------------------------------------------------ epilogues
 * A fused group that starts with a product (passes/epilogue.c) applies its
 * elementwise members to each element of C as the product stores it: the
 * group's root is computed from C(i, j) and the group's other inputs at
 * (i, j), read in one of three ways (the pass admits no other). */
typedef struct epilogue {
    const entries *es;
    const fused_group *gr;
    int product; /* the MATMUL member */
    int n_ext;   /* group inputs the elementwise members read */
    int ext[FUSE_MAX_INPUTS];
    int kind[FUSE_MAX_INPUTS]; /* EPILOGUE_FULL, _ROW, _SCALAR (passes.h) */
    int n_out;                 /* the group's stored outputs (gr->outputs), of C's shape: */
} epilogue;                    /* their pointers follow the inputs' in ext[] and the context */

/* Pointers an epilogue takes: its inputs', then its outputs'. */
enum { EPILOGUE_MAX_POINTERS = FUSE_MAX_INPUTS + FUSE_MAX_OUTPUTS };

/* Which stored output of the group member id is, or -1. */
static int output_index(const fused_group *gr, int id) {
    for (int o = 0; o < gr->n_outputs; o++)
        if (gr->outputs[o] == id)
            return o;
    return -1;
}

/* The value of the group's root for C(i, j) = product, the epilogue's
 * inputs at ext[] (pointers), N the product's columns; the group's other
 * outputs are stored at (i, j) of theirs, ext[n_ext + o]. */
static LLVMValueRef epilogue_value(cg_kernel *k, const epilogue *ep, const LLVMValueRef *ext, LLVMValueRef product,
                                   LLVMValueRef i, LLVMValueRef j, LLVMValueRef n) {
    const fused_group *gr = ep->gr;
    LLVMValueRef in[FUSE_MAX_INPUTS], val[64];
    if (gr->n_members > 64)
        abort(); /* the pass admits no larger group */
    for (int e = 0; e < ep->n_ext; e++) {
        LLVMValueRef at = ep->kind[e] == EPILOGUE_FULL  ? cg_add(k, cg_mul(k, i, n), j)
                          : ep->kind[e] == EPILOGUE_ROW ? j
                                                        : cg_i64(k, 0);
        in[e] = cg_load(k, cg_type(k, k->g->nodes[ep->ext[e]].dtype), ext[e], at);
    }
    for (int m = 0; m < gr->n_members; m++) {
        const ir_node *node = &k->g->nodes[gr->members[m]];
        if (gr->members[m] == ep->product) {
            val[m] = product;
            continue;
        }
        LLVMValueRef x[3];
        for (int q = 0; q < node->n_inputs; q++) {
            int id = node->inputs[q];
            const ir_node *xn = &k->g->nodes[id];
            x[q] = NULL;
            if (xn->op == IR_CONST)
                x[q] = xn->dtype == IR_I32 ? LLVMConstInt(k->t.i32, (unsigned long long)(int64_t)xn->value, 1)
                                           : LLVMConstReal(k->t.real, xn->value);
            for (int p = 0; p < m && !x[q]; p++)
                if (gr->members[p] == id)
                    x[q] = val[p];
            for (int e = 0; e < ep->n_ext && !x[q]; e++)
                if (ep->ext[e] == id)
                    x[q] = in[e];
            if (!x[q])
                abort(); /* the group is inconsistent: a bug in epilogue.c */
        }
        val[m] = cg_scalars[node->op](k, node, x);
        int o = output_index(gr, gr->members[m]);
        if (o >= 0)
            cg_store(k, val[m], ext[ep->n_ext + o], cg_add(k, cg_mul(k, i, n), j));
    }
    return val[gr->n_members - 1];
}

/* for i < m, j < n: out[i n + j] = the epilogue of out[i n + j] (the
 * product, computed by loops or in the f64 variant). */
static void epilogue_pass(cg_kernel *k, const epilogue *ep, const LLVMValueRef *ext, LLVMValueRef m, LLVMValueRef n) {
    cg_loop i = cg_loop_begin(k, m, "epilogue.i");
    cg_loop j = cg_loop_begin(k, n, "epilogue.j");
    LLVMValueRef at = cg_add(k, cg_mul(k, i.index, n), j.index);
    LLVMValueRef c = cg_load(k, k->t.real, k->out, at);
    cg_store(k, epilogue_value(k, ep, ext, c, i.index, j.index, n), k->out, at);
    cg_loop_end(k, &j);
    cg_loop_end(k, &i);
}

/* ------------------------------------------------------ the blocked path */

/* The sgemm function being written:
 *   void @mdl.sgemm(ptr C, ptr A, ptr B, i64 M, i64 N, i64 K,
 *                   i64 a_row, i64 a_col, i64 b_row, i64 b_col)
 * with the logical A(i, k) at A[i * a_row + k * a_col] and B(k, j) at
 * B[k * b_row + j * b_col]: one function serves every transpose pair. */
typedef struct gemm {
    cg_kernel k; /* its builder, function and entry block */
    LLVMTypeRef v8;
    /* The micro-tile: mr rows of NR columns, each row `per_row` vectors
     * of `lanes` floats (vec): 6 x 2 x 8 with AVX2 (12 accumulators),
     * 16 x 1 x 16 with AVX-512 (16), 12 x 2 x 16 for wide products (24). */
    int mr, cols, lanes, per_row;
    int kc, mc, nc; /* the cache blocks */
    LLVMTypeRef vec;
    LLVMValueRef c, a, b, m, n, kk;
    LLVMValueRef a_row, a_col, b_row, b_col;
    LLVMValueRef ldc, accumulate; /* C's row stride; i64 1: C += A B */
    LLVMValueRef bp, ap, tile;    /* the stack buffers */
    LLVMValueRef b_in_place;      /* i1: full strips of B are read where they are (see B_IN_PLACE_MAX_M) */
    /* With an epilogue: what it applies, the piece's first row and column
     * in the whole product, and the pointers of its inputs (see
     * epilogue_context). */
    int epilogue;
    LLVMValueRef ctx, apply, row0, col0;
} gemm;

/* B stored [K, N] (b_col = 1): two masked vector loads per k. */
static void pack_b_rows(gemm *G, LLVMValueRef strip, LLVMValueRef src, LLVMValueRef kc, LLVMValueRef nr) {
    cg_kernel *k = &G->k;
    LLVMValueRef mask[NR_MAX / 8];
    for (int h = 0; h < G->cols / 8; h++)
        mask[h] = lanes_below(k, 8 * h, nr);
    cg_loop r = cg_loop_begin(k, kc, "pack_b.k");
    LLVMValueRef from = gep(k, src, cg_mul(k, r.index, G->b_row));
    LLVMValueRef to = gep(k, strip, cg_mul(k, r.index, cg_i64(k, G->cols)));
    for (int h = 0; h < G->cols / 8; h++)
        store_aligned(k, masked_load(k, G->v8, gep(k, from, cg_i64(k, 8 * h)), mask[h]), gep(k, to, cg_i64(k, 8 * h)),
                      32);
    loop_end(k, &r);
}

/* out[i][j] = in[j][i] for 8 vectors of 8: unpack pairs, then pairs of
 * pairs, then 128-bit halves (what unpcklps/shufps/vperm2f128 do). */
static void transpose8(cg_kernel *k, const LLVMValueRef *in, LLVMValueRef *out) {
    static const int unpack[2][8] = {{0, 8, 1, 9, 4, 12, 5, 13}, {2, 10, 3, 11, 6, 14, 7, 15}};
    static const int pairs[2][8] = {{0, 1, 8, 9, 4, 5, 12, 13}, {2, 3, 10, 11, 6, 7, 14, 15}};
    static const int halves[2][8] = {{0, 1, 2, 3, 8, 9, 10, 11}, {4, 5, 6, 7, 12, 13, 14, 15}};
    LLVMValueRef t[8], u[8];
    for (int i = 0; i < 8; i++) /* t[2p + h] = unpack h of rows 2p, 2p+1 */
        t[i] = shuffle(k, in[i & ~1], in[i | 1], unpack[i & 1]);
    for (int i = 0; i < 8; i++) { /* u[4q + 2a + h]: pairs h of t[4q + a], t[4q + a + 2] */
        int q = i / 4, a = (i / 2) & 1, h = i & 1;
        u[i] = shuffle(k, t[4 * q + a], t[4 * q + a + 2], pairs[h]);
    }
    for (int i = 0; i < 8; i++) /* out[i]: half i/4 of u[i % 4], u[i % 4 + 4] */
        out[i] = shuffle(k, u[i % 4], u[i % 4 + 4], halves[i / 4]);
}

/* B stored [N, K] (b_row = 1): column j of the strip is a contiguous run of
 * B.  A full strip goes 8 k steps at a time, 8x8 blocks transposed in
 * registers; the steps left over and a strip past N's end go one element
 * at a time, columns past nr repeating the last one and then zeroed. */
static void pack_b_columns(gemm *G, LLVMValueRef strip, LLVMValueRef src, LLVMValueRef kc, LLVMValueRef nr) {
    cg_kernel *k = &G->k;
    LLVMBuilderRef b = k->b;
    LLVMValueRef by_blocks = LLVMBuildAnd(b, LLVMBuildICmp(b, LLVMIntEQ, nr, cg_i64(k, G->cols), ""),
                                          LLVMBuildICmp(b, LLVMIntEQ, G->b_row, cg_i64(k, 1), ""), "");
    LLVMValueRef k_blocks = LLVMBuildSelect(b, by_blocks, LLVMBuildLShr(b, kc, cg_i64(k, 3), ""), cg_i64(k, 0), "");
    cg_loop kb = cg_loop_begin(k, k_blocks, "pack_b.k8");
    LLVMValueRef k0 = cg_mul(k, kb.index, cg_i64(k, 8));
    for (int h = 0; h < G->cols / 8; h++) {
        LLVMValueRef v[8], w[8];
        for (int r = 0; r < 8; r++)
            v[r] = load_aligned(k, G->v8, gep(k, src, cg_add(k, cg_mul(k, cg_i64(k, 8 * h + r), G->b_col), k0)), 4);
        transpose8(k, v, w);
        for (int i = 0; i < 8; i++)
            store_aligned(
                k, w[i],
                gep(k, strip, cg_add(k, cg_mul(k, cg_add(k, k0, cg_i64(k, i)), cg_i64(k, G->cols)), cg_i64(k, 8 * h))),
                32);
    }
    loop_end(k, &kb);

    LLVMValueRef k_done = cg_mul(k, k_blocks, cg_i64(k, 8));
    cg_loop j = cg_loop_begin(k, cg_i64(k, G->cols), "pack_b.j");
    LLVMValueRef valid = ult(k, j.index, nr);
    LLVMValueRef col = LLVMBuildSelect(b, valid, j.index, sub(k, nr, cg_i64(k, 1)), "");
    LLVMValueRef from = gep(k, src, cg_mul(k, col, G->b_col));
    cg_loop r = cg_loop_begin(k, sub(k, kc, k_done), "pack_b.k");
    LLVMValueRef kk = cg_add(k, r.index, k_done);
    LLVMValueRef x = cg_load(k, k->t.f32, from, cg_mul(k, kk, G->b_row));
    x = LLVMBuildSelect(b, valid, x, LLVMConstReal(k->t.f32, 0), "");
    cg_store(k, x, strip, cg_add(k, cg_mul(k, kk, cg_i64(k, G->cols)), j.index));
    loop_end(k, &r);
    loop_end(k, &j);
}

/* Packs B[pc .. pc+kc, jc .. jc+nc] into Bp as ceil(nc/16) strips, strip q
 * holding kc rows of its 16 columns (zero past nc) at Bp + q*16*kc. */
static void pack_b(gemm *G, LLVMValueRef pc, LLVMValueRef kc, LLVMValueRef jc, LLVMValueRef nc) {
    cg_kernel *k = &G->k;
    cg_loop q = cg_loop_begin(k, blocks(k, nc, G->cols), "pack_b.strip");
    LLVMValueRef j0 = cg_mul(k, q.index, cg_i64(k, G->cols));
    LLVMValueRef nr = umin(k, cg_i64(k, G->cols), sub(k, nc, j0));
    LLVMValueRef strip = gep(k, G->bp, cg_mul(k, j0, kc));
    /* (pc, jc + j0) */
    LLVMValueRef src = gep(k, G->b, cg_add(k, cg_mul(k, pc, G->b_row), cg_mul(k, cg_add(k, jc, j0), G->b_col)));
    LLVMBasicBlockRef rows = new_block(k, "pack_b.rows"), columns = new_block(k, "pack_b.columns");
    LLVMBasicBlockRef packed = new_block(k, "pack_b.end"), pack = new_block(k, "pack_b.strip.pack");
    LLVMValueRef skip =
        LLVMBuildAnd(k->b, G->b_in_place, LLVMBuildICmp(k->b, LLVMIntEQ, nr, cg_i64(k, G->cols), ""), "");
    LLVMBuildCondBr(k->b, skip, packed, pack);
    LLVMPositionBuilderAtEnd(k->b, pack);
    LLVMBuildCondBr(k->b, LLVMBuildICmp(k->b, LLVMIntEQ, G->b_col, cg_i64(k, 1), ""), rows, columns);
    LLVMPositionBuilderAtEnd(k->b, rows);
    pack_b_rows(G, strip, src, kc, nr);
    LLVMBuildBr(k->b, packed);
    LLVMPositionBuilderAtEnd(k->b, columns);
    pack_b_columns(G, strip, src, kc, nr);
    LLVMBuildBr(k->b, packed);
    LLVMPositionBuilderAtEnd(k->b, packed);
    loop_end(k, &q);
}

/* The 6 row pointers of a strip of A whose first row is `first` (row r of
 * the strip = first + r * row_stride), rows past mr clamped to the last. */
static void strip_rows(gemm *G, LLVMValueRef first, LLVMValueRef row_stride, LLVMValueRef mr, LLVMValueRef *rows) {
    cg_kernel *k = &G->k;
    LLVMValueRef last = sub(k, mr, cg_i64(k, 1));
    for (int r = 0; r < G->mr; r++) {
        LLVMValueRef i = r == 0 ? cg_i64(k, 0) : umin(k, cg_i64(k, r), last);
        rows[r] = gep(k, first, cg_mul(k, i, row_stride));
    }
}

/* Packs A[ic .. ic+mc, pc .. pc+kc] into Ap as ceil(mc/6) strips, strip p
 * holding kc steps of its 6 rows at Ap + p*6*kc.  Stored transposed
 * (a_row = 1), the 6 values of a step are contiguous in A too: one masked
 * load and store each.  Otherwise they come from 6 rows, one by one, rows
 * past mc repeating the last.  (The micro-tile never reads rows past mc.) */
static void pack_a(gemm *G, LLVMValueRef ic, LLVMValueRef mc, LLVMValueRef pc, LLVMValueRef kc) {
    cg_kernel *k = &G->k;
    LLVMBuilderRef b = k->b;
    const int MR = G->mr;
    cg_loop p = cg_loop_begin(k, blocks(k, mc, MR), "pack_a.strip");
    LLVMValueRef i0 = cg_mul(k, p.index, cg_i64(k, MR));
    LLVMValueRef mr = umin(k, cg_i64(k, MR), sub(k, mc, i0));
    LLVMValueRef first = gep(k, G->a, cg_add(k, cg_mul(k, cg_add(k, ic, i0), G->a_row), cg_mul(k, pc, G->a_col)));
    LLVMValueRef strip = gep(k, G->ap, cg_mul(k, i0, kc));
    LLVMBasicBlockRef columns = new_block(k, "pack_a.columns"), rows = new_block(k, "pack_a.rows");
    LLVMBasicBlockRef packed = new_block(k, "pack_a.strip.end");
    LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntEQ, G->a_row, cg_i64(k, 1), ""), columns, rows);

    LLVMPositionBuilderAtEnd(b, columns);
    LLVMValueRef valid = lanes_below_n(k, (unsigned)G->lanes, 0, mr);
    LLVMValueRef six = lanes_below_n(k, (unsigned)G->lanes, 0, cg_i64(k, MR));
    cg_loop r = cg_loop_begin(k, kc, "pack_a.k");
    LLVMValueRef v = masked_load(k, G->vec, gep(k, first, cg_mul(k, r.index, G->a_col)), valid);
    masked_store(k, v, gep(k, strip, cg_mul(k, r.index, cg_i64(k, MR))), six);
    loop_end(k, &r);
    LLVMBuildBr(b, packed);

    LLVMPositionBuilderAtEnd(b, rows);
    LLVMValueRef row[MR_MAX];
    strip_rows(G, first, G->a_row, mr, row);
    r = cg_loop_begin(k, kc, "pack_a.k");
    LLVMValueRef to = gep(k, strip, cg_mul(k, r.index, cg_i64(k, MR)));
    LLVMValueRef at = cg_mul(k, r.index, G->a_col);
    for (int i = 0; i < MR; i++)
        cg_store(k, cg_load(k, k->t.f32, row[i], at), to, cg_i64(k, i));
    loop_end(k, &r);
    LLVMBuildBr(b, packed);
    LLVMPositionBuilderAtEnd(b, packed);
    loop_end(k, &p);
}

/* for (r < rows) for (j < cols) to[r * to_stride + j] = from[r * from_stride + j] */
static void copy_block(gemm *G, LLVMValueRef to, LLVMValueRef to_stride, LLVMValueRef from, LLVMValueRef from_stride,
                       LLVMValueRef rows, LLVMValueRef cols) {
    cg_kernel *k = &G->k;
    cg_loop r = cg_loop_begin(k, rows, "copy.r");
    LLVMValueRef t = gep(k, to, cg_mul(k, r.index, to_stride));
    LLVMValueRef f = gep(k, from, cg_mul(k, r.index, from_stride));
    cg_loop j = cg_loop_begin(k, cols, "copy.j");
    cg_store(k, cg_load(k, k->t.f32, f, j.index), t, j.index);
    loop_end(k, &j);
    loop_end(k, &r);
}

/* void (ptr ctx, ptr c, i64 ldc, i64 mr, i64 nr, i64 i0, i64 j0): an
 * epilogue function (epilogue_function) */
static LLVMTypeRef epilogue_type(cg_kernel *k) {
    LLVMTypeRef params[7] = {k->t.ptr, k->t.ptr, k->t.i64, k->t.i64, k->t.i64, k->t.i64, k->t.i64};
    return LLVMFunctionType(k->t.void_, params, 7, 0);
}

/* After the last K slice, the epilogue over the tile's mr x nr elements of
 * C at c (rows ldc apart): rows i_at.. and columns j_at.. of this call's C,
 * so row0 + i_at.. and col0 + j_at.. of the whole product, while the tile
 * is in L1.  A call of the group's epilogue function (epilogue_function),
 * so that one sgemm body serves every epilogue. */
static void tile_epilogue(gemm *G, LLVMValueRef c, LLVMValueRef mr, LLVMValueRef nr, LLVMValueRef last,
                          LLVMValueRef i_at, LLVMValueRef j_at) {
    cg_kernel *k = &G->k;
    LLVMBasicBlockRef apply = new_block(k, "epilogue"), end = new_block(k, "epilogue.end");
    LLVMBuildCondBr(k->b, last, apply, end);
    LLVMPositionBuilderAtEnd(k->b, apply);
    LLVMValueRef args[7] = {G->ctx, c, G->ldc, mr, nr, cg_add(k, G->row0, i_at), cg_add(k, G->col0, j_at)};
    LLVMBuildCall2(k->b, epilogue_type(k), G->apply, args, 7, "");
    LLVMBuildBr(k->b, end);
    LLVMPositionBuilderAtEnd(k->b, end);
}

/* The micro-tile: C[6x16 at c, rows ldc apart] (= if first, else +=) the
 * product of an A strip (rows[r][kk * a_step]) and a B strip
 * (b_strip[kk * b_step + j]: packed, b_step 16, or B itself) over kc
 * steps.  Only mr x nr of the tile is C. */
static void micro_tile(gemm *G, LLVMValueRef *rows, LLVMValueRef a_step, LLVMValueRef b_strip, LLVMValueRef b_step,
                       LLVMValueRef kc, LLVMValueRef c, LLVMValueRef mr, LLVMValueRef nr, LLVMValueRef first,
                       LLVMValueRef last, LLVMValueRef i_at, LLVMValueRef j_at) {
    cg_kernel *k = &G->k;
    LLVMBuilderRef b = k->b;
    const int MR = G->mr, H = G->per_row, L = G->lanes;
    LLVMValueRef full = LLVMBuildAnd(b, LLVMBuildICmp(b, LLVMIntEQ, mr, cg_i64(k, MR), ""),
                                     LLVMBuildICmp(b, LLVMIntEQ, nr, cg_i64(k, G->cols), ""), "full");

    /* An edge tile works in G->tile (rows 16 apart), copied from C first
     * unless this is the first K slice. */
    LLVMBasicBlockRef copy_in = new_block(k, "tile.copy_in"), ready = new_block(k, "tile.ready");
    LLVMValueRef need_copy = LLVMBuildAnd(b, LLVMBuildNot(b, full, ""), LLVMBuildNot(b, first, ""), "");
    LLVMBuildCondBr(b, need_copy, copy_in, ready);
    LLVMPositionBuilderAtEnd(b, copy_in);
    copy_block(G, G->tile, cg_i64(k, G->cols), c, G->ldc, mr, nr);
    LLVMBuildBr(b, ready);
    LLVMPositionBuilderAtEnd(b, ready);
    LLVMValueRef cp = LLVMBuildSelect(b, full, c, G->tile, "cp");
    LLVMValueRef ldc = LLVMBuildSelect(b, full, G->ldc, cg_i64(k, G->cols), "ldc");
    LLVMValueRef c_row[MR_MAX];
    for (int r = 0; r < MR; r++)
        c_row[r] = gep(k, cp, cg_mul(k, cg_i64(k, r), ldc));

    /* accumulators start at 0 (first slice) or at C */
    LLVMBasicBlockRef from_zero = LLVMGetInsertBlock(b);
    LLVMBasicBlockRef load_c = new_block(k, "tile.load_c"), header = new_block(k, "tile.k");
    LLVMBasicBlockRef body = new_block(k, "tile.k.body"), done = new_block(k, "tile.k.end");
    LLVMBuildCondBr(b, first, header, load_c);
    LLVMPositionBuilderAtEnd(b, load_c);
    LLVMValueRef start[MR_MAX * 4];
    for (int r = 0; r < MR; r++)
        for (int h = 0; h < H; h++)
            start[H * r + h] = load_aligned(k, G->vec, gep(k, c_row[r], cg_i64(k, L * h)), 4);
    LLVMBuildBr(b, header);

    LLVMPositionBuilderAtEnd(b, header);
    LLVMValueRef kk = LLVMBuildPhi(b, k->t.i64, "kk"), acc[MR_MAX * 4];
    LLVMValueRef zero_i = cg_i64(k, 0), zero_v = LLVMConstNull(G->vec);
    LLVMBasicBlockRef in_blocks[2] = {from_zero, load_c};
    LLVMValueRef in_k[2] = {zero_i, zero_i};
    LLVMAddIncoming(kk, in_k, in_blocks, 2);
    for (int i = 0; i < H * MR; i++) {
        acc[i] = LLVMBuildPhi(b, G->vec, "acc");
        LLVMValueRef in_v[2] = {zero_v, start[i]};
        LLVMAddIncoming(acc[i], in_v, in_blocks, 2);
    }
    LLVMBuildCondBr(b, ult(k, kk, kc), body, done);

    LLVMPositionBuilderAtEnd(b, body);
    LLVMValueRef b_row = gep(k, b_strip, cg_mul(k, kk, b_step));
    LLVMValueRef bv[4];
    for (int h = 0; h < H; h++)
        bv[h] = load_aligned(k, G->vec, gep(k, b_row, cg_i64(k, L * h)), 4);
    LLVMValueRef at = cg_mul(k, kk, a_step), next[MR_MAX * 4];
    for (int r = 0; r < MR; r++) {
        LLVMValueRef av = splat(k, G->vec, cg_load(k, k->t.f32, rows[r], at));
        for (int h = 0; h < H; h++)
            next[H * r + h] = cg_fmuladd(k, G->vec, av, bv[h], acc[H * r + h]);
    }
    LLVMValueRef k_next = LLVMBuildNUWAdd(b, kk, cg_i64(k, 1), "");
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(b);
    cg_mark_as_written(k, LLVMBuildBr(b, header));
    LLVMAddIncoming(kk, &k_next, &latch, 1);
    for (int i = 0; i < H * MR; i++)
        LLVMAddIncoming(acc[i], &next[i], &latch, 1);

    LLVMPositionBuilderAtEnd(b, done);
    for (int r = 0; r < MR; r++)
        for (int h = 0; h < H; h++)
            store_aligned(k, acc[H * r + h], gep(k, c_row[r], cg_i64(k, L * h)), 4);
    LLVMBasicBlockRef copy_out = new_block(k, "tile.copy_out"), end = new_block(k, "tile.end");
    LLVMBuildCondBr(b, full, end, copy_out);
    LLVMPositionBuilderAtEnd(b, copy_out);
    copy_block(G, c, G->ldc, G->tile, cg_i64(k, G->cols), mr, nr);
    LLVMBuildBr(b, end);
    LLVMPositionBuilderAtEnd(b, end);
    if (G->epilogue)
        tile_epilogue(G, c, mr, nr, last, i_at, j_at);
}

/* Bp and Ap: one stack block sized to the problem, at most KC x NC + MC x KC
 * floats, so a small product probes only the few pages it uses. */
static void stack_buffers(gemm *G, LLVMValueRef pack_a_wanted) {
    cg_kernel *k = &G->k;
    LLVMValueRef kc = umin(k, G->kk, cg_i64(k, G->kc));
    LLVMValueRef b_floats =
        cg_mul(k, kc, umin(k, cg_mul(k, blocks(k, G->n, G->cols), cg_i64(k, G->cols)), cg_i64(k, G->nc)));
    LLVMValueRef a_floats =
        cg_mul(k, kc, umin(k, cg_mul(k, blocks(k, G->m, G->mr), cg_i64(k, G->mr)), cg_i64(k, G->mc)));
    a_floats = LLVMBuildSelect(k->b, pack_a_wanted, a_floats, cg_i64(k, 0), "");
    G->bp = LLVMBuildArrayAlloca(k->b, k->t.f32, cg_add(k, b_floats, a_floats), "bp");
    LLVMSetAlignment(G->bp, 64);
    G->ap = gep(k, G->bp, b_floats); /* b_floats is a multiple of 16: Ap stays 64-byte aligned */
    G->tile = cg_alloca(k, LLVMArrayType2(k->t.f32, MR_MAX * NR_MAX), "tile");
    LLVMSetAlignment(G->tile, 64);
}

static void emit_gemm_body(gemm *G) {
    cg_kernel *k = &G->k;
    LLVMBuilderRef b = k->b;
    const int MR = G->mr;
    LLVMValueRef one = cg_i64(k, 1);
    /* Packing A pays when each strip is used often enough (N > 32) and A is
     * stored transposed (a strip's steps are M apart: a cache line and
     * maybe a page each) or its rows are 4 KiB or more apart. */
    LLVMValueRef scattered = LLVMBuildOr(b, LLVMBuildICmp(b, LLVMIntEQ, G->a_row, one, ""),
                                         LLVMBuildICmp(b, LLVMIntUGE, G->a_row, cg_i64(k, PACK_A_MIN_ROW), ""), "");
    LLVMValueRef pack_a_wanted =
        LLVMBuildAnd(b, LLVMBuildICmp(b, LLVMIntUGT, G->n, cg_i64(k, PACK_A_MIN_N), ""), scattered, "pack_a");
    stack_buffers(G, pack_a_wanted);
    G->b_in_place = LLVMBuildAnd(b, LLVMBuildICmp(b, LLVMIntEQ, G->b_col, one, ""),
                                 LLVMBuildICmp(b, LLVMIntULE, G->m, cg_i64(k, B_IN_PLACE_MAX_M), ""), "b_in_place");

    cg_loop jb = cg_loop_begin(k, blocks(k, G->n, G->nc), "jc");
    LLVMValueRef jc = cg_mul(k, jb.index, cg_i64(k, G->nc));
    LLVMValueRef nc = umin(k, cg_i64(k, G->nc), sub(k, G->n, jc));
    cg_loop kb = cg_loop_begin(k, blocks(k, G->kk, G->kc), "pc");
    LLVMValueRef pc = cg_mul(k, kb.index, cg_i64(k, G->kc));
    LLVMValueRef kc = umin(k, cg_i64(k, G->kc), sub(k, G->kk, pc));
    /* The first K slice overwrites C, unless the caller accumulates. */
    LLVMValueRef first = LLVMBuildAnd(b, LLVMBuildICmp(b, LLVMIntEQ, kb.index, cg_i64(k, 0), ""),
                                      LLVMBuildICmp(b, LLVMIntEQ, G->accumulate, cg_i64(k, 0), ""), "first");
    LLVMValueRef last = LLVMBuildICmp(b, LLVMIntEQ, cg_add(k, pc, kc), G->kk, "last");
    pack_b(G, pc, kc, jc, nc);

    cg_loop ib = cg_loop_begin(k, blocks(k, G->m, G->mc), "ic");
    LLVMValueRef ic = cg_mul(k, ib.index, cg_i64(k, G->mc));
    LLVMValueRef mc = umin(k, cg_i64(k, G->mc), sub(k, G->m, ic));
    LLVMBasicBlockRef packing = new_block(k, "pack_a"), packed = new_block(k, "pack_a.end");
    LLVMBuildCondBr(b, pack_a_wanted, packing, packed);
    LLVMPositionBuilderAtEnd(b, packing);
    pack_a(G, ic, mc, pc, kc);
    LLVMBuildBr(b, packed);
    LLVMPositionBuilderAtEnd(b, packed);
    /* Where strip p of A starts and how its rows and k steps are laid out:
     * packed, Ap + p*6*kc with rows 1 and steps 6 apart; else in place. */
    LLVMValueRef a_block = gep(k, G->a, cg_add(k, cg_mul(k, ic, G->a_row), cg_mul(k, pc, G->a_col)));
    LLVMValueRef a_base = LLVMBuildSelect(b, pack_a_wanted, G->ap, a_block, "");
    LLVMValueRef row_stride = LLVMBuildSelect(b, pack_a_wanted, one, G->a_row, "");
    LLVMValueRef step = LLVMBuildSelect(b, pack_a_wanted, cg_i64(k, MR), G->a_col, "");
    LLVMValueRef strip_stride = cg_mul(k, row_stride, LLVMBuildSelect(b, pack_a_wanted, kc, cg_i64(k, 1), ""));

    cg_loop q = cg_loop_begin(k, blocks(k, nc, G->cols), "jr");
    LLVMValueRef j0 = cg_mul(k, q.index, cg_i64(k, G->cols));
    LLVMValueRef nr = umin(k, cg_i64(k, G->cols), sub(k, nc, j0));
    /* a full strip of B read in place (B_IN_PLACE_MAX_M) or its packed copy */
    LLVMValueRef in_place = LLVMBuildAnd(b, G->b_in_place, LLVMBuildICmp(b, LLVMIntEQ, nr, cg_i64(k, G->cols), ""), "");
    LLVMValueRef b_strip =
        LLVMBuildSelect(b, in_place, gep(k, G->b, cg_add(k, cg_mul(k, pc, G->b_row), cg_add(k, jc, j0))),
                        gep(k, G->bp, cg_mul(k, j0, kc)), "b_strip");
    LLVMValueRef b_step = LLVMBuildSelect(b, in_place, G->b_row, cg_i64(k, G->cols), "b_step");
    cg_loop p = cg_loop_begin(k, blocks(k, mc, MR), "ir");
    LLVMValueRef i0 = cg_mul(k, p.index, cg_i64(k, MR));
    LLVMValueRef mr = umin(k, cg_i64(k, MR), sub(k, mc, i0));
    LLVMValueRef rows[MR_MAX];
    strip_rows(G, gep(k, a_base, cg_mul(k, i0, strip_stride)), row_stride, mr, rows);
    LLVMValueRef c = gep(k, G->c, cg_add(k, cg_mul(k, cg_add(k, ic, i0), G->ldc), cg_add(k, jc, j0)));
    micro_tile(G, rows, step, b_strip, b_step, kc, c, mr, nr, first, last, cg_add(k, ic, i0), cg_add(k, jc, j0));
    loop_end(k, &p);
    loop_end(k, &q);
    loop_end(k, &ib);
    loop_end(k, &kb);
    loop_end(k, &jb);
    LLVMBuildRetVoid(b);
}

/* The tile and cache blocks: 6x16 in ymm registers (AVX2: 12 of its 16
 * hold accumulators); with AVX-512, 16x16 or, for wide products, 12x32 in
 * zmm registers (24 of its 32 hold accumulators: per k step 2 loads from
 * B and 12 broadcasts feed 24 FMAs, where 16x16 needs 17 loads for 16
 * FMAs, more than the two load ports of an Intel core keep up with).
 * MC (144) is a multiple of both 12 and 16. */
static void choose_tile(gemm *G, int avx512, int wide) {
    G->lanes = avx512 ? 16 : 8;
    G->mr = avx512 ? (wide ? 12 : 16) : 6;
    G->cols = avx512 && wide ? 32 : 16;
    G->kc = 256, G->mc = 144, G->nc = 256;
    G->per_row = G->cols / G->lanes;
}

/* With an epilogue the last argument, `accumulate` for the others, is the
 * address of the kernel's context: {C of the whole product, the group's
 * epilogue function, the epilogue's inputs...} (see call_gemm).  The
 * runtime passes it through unchanged to every piece (rt_pool.c), and
 * from where a piece's C lies in the whole one follow the piece's first
 * row and column. */
enum { CTX_WHOLE_C, CTX_APPLY, CTX_INPUTS };

static LLVMValueRef ctx_slot(cg_kernel *k, LLVMValueRef ctx, int slot) {
    LLVMValueRef at = cg_i64(k, slot);
    return LLVMBuildInBoundsGEP2(k->b, k->t.ptr, ctx, &at, 1, "");
}

static void epilogue_context(gemm *G) {
    cg_kernel *k = &G->k;
    LLVMBuilderRef b = k->b;
    G->ctx = LLVMBuildIntToPtr(b, G->accumulate, k->t.ptr, "ctx");
    G->accumulate = cg_i64(k, 0);
    LLVMValueRef whole = LLVMBuildLoad2(b, k->t.ptr, ctx_slot(k, G->ctx, CTX_WHOLE_C), "whole_c");
    G->apply = LLVMBuildLoad2(b, k->t.ptr, ctx_slot(k, G->ctx, CTX_APPLY), "apply");
    LLVMValueRef bytes =
        LLVMBuildSub(b, LLVMBuildPtrToInt(b, G->c, k->t.i64, ""), LLVMBuildPtrToInt(b, whole, k->t.i64, ""), "");
    LLVMValueRef offset = LLVMBuildExactSDiv(b, bytes, cg_i64(k, 4), "");
    G->row0 = LLVMBuildUDiv(b, offset, G->ldc, "row0");
    G->col0 = LLVMBuildURem(b, offset, G->ldc, "col0");
}

/* appends to name[*at], keeping it NUL-terminated; 0 once it is full */
static int append(char *name, size_t size, size_t *at, const char *fmt, double v) {
    int n = snprintf(name + *at, size - *at, fmt, v);
    if (n < 0 || (size_t)n >= size - *at)
        return 0;
    *at += (size_t)n;
    return 1;
}

/* The name of an epilogue function, which says all its code depends on,
 * so that groups that compute the same (dense layers with the same
 * activation) share one:
 *   mdl.epilogue[P|add(m0,x0r)|relu(m1)]
 * P the product, m<i> member i, x<e><f|r|s> epilogue input e read whole,
 * as a row vector or as a scalar (i32 ones: X), c<v> a constant.  0 when
 * it does not fit (the kernel then gets one of its own). */
static int epilogue_name(cg_kernel *k, const epilogue *ep, char *name, size_t size) {
    const fused_group *gr = ep->gr;
    size_t at = 0;
    int ok = append(name, size, &at, "mdl.epilogue[", 0);
    for (int m = 0; ok && m < gr->n_members; m++) {
        const ir_node *n = &k->g->nodes[gr->members[m]];
        ok = append(name, size, &at, m ? "|" : "", 0);
        if (gr->members[m] == ep->product) {
            ok = ok && append(name, size, &at, "P", 0);
            continue;
        }
        ok = ok && append(name, size, &at, ir_ops[n->op].name, 0);
        for (int q = 0; ok && q < n->n_inputs; q++) {
            const ir_node *x = &k->g->nodes[n->inputs[q]];
            ok = append(name, size, &at, q ? "," : "(", 0);
            int found = 0;
            for (int p = 0; ok && !found && p < m; p++)
                if (gr->members[p] == n->inputs[q])
                    found = 1, ok = append(name, size, &at, "m%.0f", p);
            for (int e = 0; ok && !found && e < ep->n_ext; e++)
                if (ep->ext[e] == n->inputs[q]) {
                    found = 1;
                    ok = append(name, size, &at, x->dtype == IR_I32 ? "X%.0f" : "x%.0f", e) &&
                         append(name, size, &at,
                                ep->kind[e] == EPILOGUE_FULL  ? "f"
                                : ep->kind[e] == EPILOGUE_ROW ? "r"
                                                              : "s",
                                0);
                }
            if (ok && !found)
                ok = x->op == IR_CONST && append(name, size, &at, x->dtype == IR_I32 ? "i%.0f" : "c%.9g", x->value);
        }
        ok = ok && append(name, size, &at, ")", 0);
        if (ok && output_index(gr, gr->members[m]) >= 0)
            ok = append(name, size, &at, "=o%.0f", output_index(gr, gr->members[m]));
    }
    return ok && append(name, size, &at, "]", 0);
}

/* The sgemm function: @mdl.sgemm (6x16 or 16x16) or @mdl.sgemm.wide
 * (12x32), each emitted into the module on first use, or, with an
 * epilogue, one of the kernel's own, @<kernel>.sgemm. */
static LLVMValueRef gemm_function(cg_kernel *k, int wide, int epilogue) {
    char name[64];
    wide = wide && k->avx512;
    snprintf(name, sizeof name, "mdl.sgemm%s%s", wide ? ".wide" : "", epilogue ? ".epilogue" : "");
    LLVMValueRef fn = LLVMGetNamedFunction(k->mod, name);
    if (fn)
        return fn;
    LLVMTypeRef params[CG_SGEMM_ARGS] = {k->t.ptr, k->t.ptr, k->t.ptr};
    for (int i = 3; i < CG_SGEMM_ARGS; i++)
        params[i] = k->t.i64;
    fn = LLVMAddFunction(k->mod, name, LLVMFunctionType(k->t.void_, params, CG_SGEMM_ARGS, 0));
    LLVMSetLinkage(fn, LLVMInternalLinkage);
    add_attribute(k, fn, "nounwind");
    add_attribute(k, fn, "noinline");
    LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex,
                            LLVMCreateStringAttribute(k->ctx, "probe-stack", 11, "inline-asm", 10));

    gemm G;
    memset(&G, 0, sizeof G);
    G.k = *k;
    G.k.fn = fn;
    G.k.entry_block = LLVMAppendBasicBlockInContext(k->ctx, fn, "entry");
    G.k.b = LLVMCreateBuilderInContext(k->ctx);
    LLVMPositionBuilderAtEnd(G.k.b, G.k.entry_block);
    G.v8 = LLVMVectorType(k->t.f32, 8);
    choose_tile(&G, k->avx512, wide);
    G.vec = LLVMVectorType(k->t.f32, (unsigned)G.lanes);
    static const char *const names[CG_SGEMM_ARGS] = {"c",     "a",     "b",     "m",     "n",   "k",
                                                     "a_row", "a_col", "b_row", "b_col", "ldc", "accumulate"};
    LLVMValueRef *slot[CG_SGEMM_ARGS] = {&G.c,     &G.a,     &G.b,     &G.m,     &G.n,   &G.kk,
                                         &G.a_row, &G.a_col, &G.b_row, &G.b_col, &G.ldc, &G.accumulate};
    for (unsigned i = 0; i < CG_SGEMM_ARGS; i++) {
        *slot[i] = LLVMGetParam(fn, i);
        LLVMSetValueName2(*slot[i], names[i], strlen(names[i]));
    }
    G.epilogue = epilogue;
    if (epilogue)
        epilogue_context(&G);
    emit_gemm_body(&G);
    LLVMDisposeBuilder(G.k.b);
    return fn;
}

/* ------------------------------------------------------------- the kernel */

/* a && b on i1, folded where either is a constant (the builder folds only
 * where both are), so a decision the shapes settle emits no code. */
static LLVMValueRef both(cg_kernel *k, LLVMValueRef a, LLVMValueRef b) {
    if (is_constant(a, 0) || is_constant(b, 1))
        return a;
    if (is_constant(b, 0) || is_constant(a, 1))
        return b;
    return LLVMBuildAnd(k->b, a, b, "");
}

static LLVMValueRef at_least(cg_kernel *k, LLVMValueRef x, int64_t v) {
    return LLVMBuildICmp(k->b, LLVMIntUGE, x, cg_i64(k, v), "");
}

/* Whether the product is big enough for a tile at all: an i1, constant
 * where the sizes are.  Grows with each size. */
static LLVMValueRef big_enough(cg_kernel *k, LLVMValueRef m, LLVMValueRef n, LLVMValueRef kk) {
    LLVMValueRef ok = both(k, both(k, at_least(k, m, SMALL_M), at_least(k, n, SMALL_N)), at_least(k, kk, SMALL_K));
    if (is_constant(ok, 0))
        return ok;
    return both(k, ok, at_least(k, cg_mul(k, cg_mul(k, m, n), kk), SMALL_WORK));
}

/* Whether the blocked path pays: big enough, and not the row loop's case
 * (see ROW_LOOP_*). */
static LLVMValueRef blocked_pays(cg_kernel *k, const matmul *mm) {
    LLVMValueRef pays = big_enough(k, mm->m, mm->n, mm->k);
    if (mm->tb || is_constant(pays, 0))
        return pays;
    LLVMValueRef row_loop =
        both(k, at_least(k, mm->n, ROW_LOOP_MIN_N), LLVMBuildNot(k->b, at_least(k, mm->n, ROW_LOOP_MAX_N + 1), ""));
    row_loop = both(k, row_loop, LLVMBuildNot(k->b, at_least(k, mm->m, ROW_LOOP_MAX_M + 1), ""));
    row_loop = both(k, row_loop, LLVMBuildNot(k->b, at_least(k, cg_mul(k, mm->n, mm->k), ROW_LOOP_MAX_B + 1), ""));
    return both(k, pays, LLVMBuildNot(k->b, row_loop, ""));
}

/* The group's epilogue over one tile (see tile_epilogue):
 *   void @mdl.epilogue[...](ptr ctx, ptr c, i64 ldc, i64 mr, i64 nr, i64 i0, i64 j0)
 * c[r ldc + j] = the epilogue of C(i0 + r, j0 + j) for r < mr, j < nr, its
 * inputs' pointers at ctx[CTX_INPUTS..]; the column loop is left to LLVM's
 * vectoriser (the epilogue's ops are scalar emitters, cg_scalar.c).  One
 * per distinct epilogue in the module (epilogue_name). */
static LLVMValueRef epilogue_function(cg_kernel *k, const epilogue *ep) {
    char name[512];
    if (!epilogue_name(k, ep, name, sizeof name)) {
        size_t length;
        snprintf(name, sizeof name, "%s.epilogue", LLVMGetValueName2(k->fn, &length));
    }
    LLVMValueRef fn = LLVMGetNamedFunction(k->mod, name);
    if (fn)
        return fn;
    fn = LLVMAddFunction(k->mod, name, epilogue_type(k));
    LLVMSetLinkage(fn, LLVMInternalLinkage);
    add_attribute(k, fn, "nounwind");
    cg_kernel e = *k;
    e.fn = fn;
    e.entry_block = LLVMAppendBasicBlockInContext(k->ctx, fn, "entry");
    e.b = LLVMCreateBuilderInContext(k->ctx);
    LLVMPositionBuilderAtEnd(e.b, e.entry_block);
    LLVMValueRef ctx = LLVMGetParam(fn, 0), c = LLVMGetParam(fn, 1), ldc = LLVMGetParam(fn, 2);
    LLVMValueRef ext[EPILOGUE_MAX_POINTERS];
    for (int i = 0; i < ep->n_ext + ep->n_out; i++)
        ext[i] = LLVMBuildLoad2(e.b, k->t.ptr, ctx_slot(&e, ctx, CTX_INPUTS + i), "ext");
    cg_loop r = cg_loop_begin(&e, LLVMGetParam(fn, 3), "r");
    LLVMValueRef row = gep(&e, c, cg_mul(&e, r.index, ldc));
    LLVMValueRef i = cg_add(&e, LLVMGetParam(fn, 5), r.index);
    cg_loop j = cg_loop_begin(&e, LLVMGetParam(fn, 4), "j");
    LLVMValueRef x = cg_load(&e, k->t.f32, row, j.index);
    LLVMValueRef col = cg_add(&e, LLVMGetParam(fn, 6), j.index);
    cg_store(&e, epilogue_value(&e, ep, ext, x, i, col, ldc), row, j.index);
    cg_loop_end(&e, &j);
    cg_loop_end(&e, &r);
    LLVMBuildRetVoid(e.b);
    LLVMDisposeBuilder(e.b);
    return fn;
}

/* fn(args), or through the runtime's threads (mdl_rt_sgemm) */
static void call_sgemm_function(cg_kernel *k, LLVMValueRef fn, LLVMValueRef *args) {
    if (!k->parallel) {
        LLVMBuildCall2(k->b, LLVMGlobalGetValueType(fn), fn, args, CG_SGEMM_ARGS, "");
        return;
    }
    /* void mdl_rt_sgemm(ptr fn, <the same arguments>) (runtime/rt_pool.c) */
    LLVMValueRef rt = LLVMGetNamedFunction(k->mod, "mdl_rt_sgemm");
    if (!rt) {
        LLVMTypeRef params[CG_SGEMM_ARGS + 1] = {k->t.ptr, k->t.ptr, k->t.ptr, k->t.ptr};
        for (int i = 4; i < CG_SGEMM_ARGS + 1; i++)
            params[i] = k->t.i64;
        rt = LLVMAddFunction(k->mod, "mdl_rt_sgemm", LLVMFunctionType(k->t.void_, params, CG_SGEMM_ARGS + 1, 0));
        add_attribute(k, rt, "nounwind");
    }
    LLVMValueRef all[CG_SGEMM_ARGS + 1] = {fn};
    for (int i = 0; i < CG_SGEMM_ARGS; i++)
        all[i + 1] = args[i];
    LLVMBuildCall2(k->b, LLVMGlobalGetValueType(rt), rt, all, CG_SGEMM_ARGS + 1, "");
}

void cg_call_sgemm(cg_kernel *k, LLVMValueRef *args) { call_sgemm_function(k, gemm_function(k, 0, 0), args); }

/* The wide tile (12x32) where it fills its columns, N a multiple of 32
 * (so the runtime's pieces, whole 16-column strips, two per thread, stay
 * whole tiles too where N has enough of them), and for large products
 * only (sizes at the largest batch).  A narrow product keeps the 16-column
 * tile: 128 x 10 x 64 took 4.8 us in 32 columns, 2.8 in 16.  The MLP's
 * products at batch 64 (64 x 256 x 784, 784 x 256 x 64, ...) measured
 * 2-20% under main in 32 columns on Zen 4 in alternating runs (noisy:
 * their edge tiles, 64 = 5 x 12 + 4 rows, copy twice as many columns); at
 * 256^3 and up the two tiles were level there. */
enum { WIDE_MIN_N = 64, WIDE_MIN_WORK = 1 << 24 };

static int wide_pays(int64_t max_m, int64_t max_n, int64_t max_k) {
    return max_n >= WIDE_MIN_N && max_n % 32 == 0 && max_m * max_n * max_k >= WIDE_MIN_WORK;
}

static void call_gemm(cg_kernel *k, const matmul *mm, int wide, const epilogue *ep, const LLVMValueRef *ext) {
    LLVMValueRef one = cg_i64(k, 1), last = cg_i64(k, 0);
    if (ep) { /* the context (see epilogue_context) */
        LLVMValueRef ctx =
            cg_alloca(k, LLVMArrayType2(k->t.ptr, (unsigned)(CTX_INPUTS + ep->n_ext + ep->n_out)), "epilogue");
        LLVMBuildStore(k->b, k->out, ctx_slot(k, ctx, CTX_WHOLE_C));
        LLVMBuildStore(k->b, epilogue_function(k, ep), ctx_slot(k, ctx, CTX_APPLY));
        for (int e = 0; e < ep->n_ext + ep->n_out; e++)
            LLVMBuildStore(k->b, ext[e], ctx_slot(k, ctx, CTX_INPUTS + e));
        last = LLVMBuildPtrToInt(k->b, ctx, k->t.i64, "");
    }
    LLVMValueRef args[CG_SGEMM_ARGS] = {k->out, k->in[0], k->in[1], mm->m, mm->n, mm->k,
                                        /* A(i, k) at a[i * a_row + k * a_col], B(k, j) at b[k * b_row + j * b_col] */
                                        mm->ta ? one : mm->k, mm->ta ? mm->m : one, mm->tb ? one : mm->n,
                                        mm->tb ? mm->k : one, mm->n, last};
    call_sgemm_function(k, gemm_function(k, wide, ep != NULL), args);
}

/* The product of dims [lo, hi) of s at the largest batch. */
static int64_t max_product(const ir_shape *s, int lo, int hi) {
    int64_t p = 1;
    for (int i = lo; i < hi; i++)
        p *= s->dims[i];
    return p;
}

/* M, N and K of one product of the node, at the kernel's batch. */
static matmul sizes_of(cg_kernel *k, const ir_matmul_dims *d) {
    const ir_shape *a = &k->g->nodes[k->node->inputs[0]].shape, *b = &k->g->nodes[k->node->inputs[1]].shape;
    matmul mm;
    mm.ta = !!(k->node->flags & IR_TRANSPOSE_A);
    mm.tb = !!(k->node->flags & IR_TRANSPOSE_B);
    mm.m = cg_dims_product(k, a, d->m_lo, d->m_hi);
    mm.n = cg_dims_product(k, b, d->n_lo, d->n_hi);
    mm.k = cg_dims_product(k, a, d->k_lo, d->k_hi);
    return mm;
}

/* The loops, then the epilogue (if any) as a pass over the product: it
 * is small (or of a CONST operand), so it is still in L1. */
static void small_product(cg_kernel *k, const matmul *mm, const ir_matmul_dims *d, const epilogue *ep,
                          const LLVMValueRef *ext) {
    const ir_shape *a = &k->g->nodes[k->node->inputs[0]].shape, *b = &k->g->nodes[k->node->inputs[1]].shape;
    int64_t max_n = max_product(b, d->n_lo, d->n_hi);
    emit_small(k, mm, d, max_product(a, d->m_lo, d->m_hi) * max_n * max_product(a, d->k_lo, d->k_hi), max_n);
    if (ep)
        epilogue_pass(k, ep, ext, mm->m, mm->n);
}

/* One product, k->out = k->in[0] @ k->in[1], and its epilogue ep (NULL:
 * none) whose inputs are ext[]. */
static void emit_product(cg_kernel *k, const matmul *mm, const ir_matmul_dims *d, const epilogue *ep,
                         const LLVMValueRef *ext) {
    const ir_shape *a = &k->g->nodes[k->node->inputs[0]].shape, *b = &k->g->nodes[k->node->inputs[1]].shape;
    /* A CONST operand has no buffer (its value is folded into the code):
     * only the loops read it.  A product too small even at the largest
     * batch (dims[] holds it) gets no call and no sgemm function. */
    int64_t max_m = max_product(a, d->m_lo, d->m_hi), max_n = max_product(b, d->n_lo, d->n_hi);
    int64_t max_k = max_product(a, d->k_lo, d->k_hi);
    LLVMValueRef largest = big_enough(k, cg_i64(k, max_m), cg_i64(k, max_n), cg_i64(k, max_k));
    if (!k->in[0] || !k->in[1] || is_constant(largest, 0)) {
        small_product(k, mm, d, ep, ext);
        return;
    }
    LLVMValueRef pays = blocked_pays(k, mm);
    if (is_constant(pays, 0)) {
        small_product(k, mm, d, ep, ext);
        return;
    }
    if (is_constant(pays, 1)) {
        call_gemm(k, mm, wide_pays(max_m, max_n, max_k), ep, ext);
        return;
    }
    LLVMBasicBlockRef big = LLVMAppendBasicBlockInContext(k->ctx, k->fn, "blocked");
    LLVMBasicBlockRef small = LLVMAppendBasicBlockInContext(k->ctx, k->fn, "small");
    LLVMBasicBlockRef end = LLVMAppendBasicBlockInContext(k->ctx, k->fn, "end");
    LLVMBuildCondBr(k->b, pays, big, small);
    LLVMPositionBuilderAtEnd(k->b, big);
    call_gemm(k, mm, wide_pays(max_m, max_n, max_k), ep, ext);
    LLVMBuildBr(k->b, end);
    LLVMPositionBuilderAtEnd(k->b, small);
    small_product(k, mm, d, ep, ext);
    LLVMBuildBr(k->b, end);
    LLVMPositionBuilderAtEnd(k->b, end);
}

/* ------------------------------------------------------ batched products
 * A [S.., M, K] @ B [S.., K, N] is one product per index p of the leading
 * dims S, its matrices at p M K, p K N and p M N: a loop over p around
 * emit_product, which chooses between the loops and sgemm as for any
 * product of that size.  With the runtime's threads, when there are enough
 * products and they are small enough that mdl_rt_sgemm would not split
 * them itself (attention's [B,H] products of [T,D] @ [D,T]), the loop is
 * outlined as <kernel>.products and its range split over the threads,
 * each taking whole products. */
enum { BATCH_SPLIT_MIN_COUNT = 8, BATCH_SPLIT_MIN_WORK = 1 << 18 };

/* Products [begin, end) of the node, in the function being written. */
static void emit_products(cg_kernel *k, const ir_matmul_dims *d, LLVMValueRef begin, LLVMValueRef end) {
    matmul mm = sizes_of(k, d);
    cg_loop p = cg_loop_begin(k, LLVMBuildSub(k->b, end, begin, ""), "p");
    LLVMValueRef at = cg_add(k, begin, p.index);
    cg_kernel one = *k; /* the same function and builder, the p-th matrices */
    one.out = gep(k, k->out, cg_mul(k, at, cg_mul(k, mm.m, mm.n)));
    if (k->in[0])
        one.in[0] = gep(k, k->in[0], cg_mul(k, at, cg_mul(k, mm.m, mm.k)));
    if (k->in[1])
        one.in[1] = gep(k, k->in[1], cg_mul(k, at, cg_mul(k, mm.k, mm.n)));
    emit_product(&one, &mm, d, NULL, NULL);
    cg_loop_end(k, &p);
}

static void emit_batched(cg_kernel *k, const ir_matmul_dims *d) {
    const ir_shape *a = &k->g->nodes[k->node->inputs[0]].shape, *b = &k->g->nodes[k->node->inputs[1]].shape;
    int64_t count = max_product(a, 0, d->lead);
    int64_t each =
        max_product(a, d->m_lo, d->m_hi) * max_product(a, d->k_lo, d->k_hi) * max_product(b, d->n_lo, d->n_hi);
    LLVMValueRef products = cg_dims_product(k, a, 0, d->lead);
    if (!k->parallel || count < BATCH_SPLIT_MIN_COUNT || count * each < BATCH_SPLIT_MIN_WORK ||
        each >= BATCH_SPLIT_MIN_WORK) {
        emit_products(k, d, cg_i64(k, 0), products);
        return;
    }
    LLVMValueRef work = cg_mul(k, products, cg_i64(k, each));
    cg_outline o;
    cg_outline_begin(k, &o, "products", NULL, 0);
    o.work = work, o.min_work = BATCH_SPLIT_MIN_WORK;
    emit_products(k, d, o.begin, o.end);
    cg_outline_end(k, &o, products);
}

int cg_kernel_matmul(cg_kernel *k) {
    const ir_shape *a = &k->g->nodes[k->node->inputs[0]].shape, *b = &k->g->nodes[k->node->inputs[1]].shape;
    if (k->node->dtype != IR_F32) {
        cg_error("matmul: only f32 products are supported");
        return -1;
    }
    /* M, K, N may each span several dims (a dense layer over [B, T, H]) */
    ir_matmul_dims d = ir_matmul_split(k->node, a->rank, b->rank);
    if (d.lead) {
        emit_batched(k, &d);
        return 0;
    }
    matmul mm = sizes_of(k, &d);
    emit_product(k, &mm, &d, NULL, NULL);
    return 0;
}

/* The buffer of node id among the group's inputs, or NULL (a CONST). */
static LLVMValueRef group_buffer(const fused_group *gr, const LLVMValueRef *in, int id) {
    for (int i = 0; i < gr->n_inputs; i++)
        if (gr->inputs[i] == id)
            return in[i];
    return NULL;
}

/* Whether a member other than the product reads node id. */
static int members_read(const cg_kernel *k, const fused_group *gr, int product, int id) {
    for (int m = 0; m < gr->n_members; m++) {
        const ir_node *n = &k->g->nodes[gr->members[m]];
        for (int q = 0; gr->members[m] != product && q < n->n_inputs; q++)
            if (n->inputs[q] == id)
                return 1;
    }
    return 0;
}

int cg_kernel_matmul_epilogue(cg_kernel *k, const entries *es, const fused_group *gr, const LLVMValueRef *in,
                              const LLVMValueRef *out) {
    epilogue ep = {.es = es, .gr = gr, .product = -1};
    for (int m = 0; m < gr->n_members && ep.product < 0; m++)
        if (k->g->nodes[gr->members[m]].op == IR_MATMUL)
            ep.product = gr->members[m];
    cg_kernel product = *k;
    product.node = &k->g->nodes[ep.product];
    LLVMValueRef ext[EPILOGUE_MAX_POINTERS];
    for (int i = 0; i < gr->n_inputs; i++) {
        if (!members_read(k, gr, ep.product, gr->inputs[i]))
            continue;
        int kind = epilogue_input_kind(k->g, ep.product, gr->inputs[i]);
        if (kind < 0 || in[i] == k->out) {
            cg_error("internal: the epilogue of %%%d cannot read %%%d", gr->root, gr->inputs[i]);
            return -1;
        }
        ep.ext[ep.n_ext] = gr->inputs[i];
        ep.kind[ep.n_ext] = kind;
        ext[ep.n_ext++] = in[i];
    }
    for (int o = 0; o < gr->n_outputs; o++)
        ext[ep.n_ext + ep.n_out++] = out[o];
    for (int q = 0; q < 2; q++)
        product.in[q] = group_buffer(gr, in, product.node->inputs[q]);
    product.in[2] = NULL;
    const ir_shape *a = &k->g->nodes[product.node->inputs[0]].shape;
    const ir_shape *b = &k->g->nodes[product.node->inputs[1]].shape;
    ir_matmul_dims d = ir_matmul_split(product.node, a->rank, b->rank);
    matmul mm = sizes_of(&product, &d);
    if (k->f64) {
        if (cg_kernel_matmul_f64(&product))
            return -1;
        epilogue_pass(&product, &ep, ext, mm.m, mm.n);
        return 0;
    }
    emit_product(&product, &mm, &d, &ep, ext);
    return 0;
}
