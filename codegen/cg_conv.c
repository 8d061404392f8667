/*
 * cg_conv.c - NCHW convolution and its two adjoints.
 *
 * With x[n,c,h,w], wt[o,c,u,v] and y[n,o,i,j], tap (u, v) of output (i, j)
 * reads input row h = i s + u - p and column w = j s + v - p (s the
 * stride, p the padding; outside the image x is 0).  The three kernels are
 * the same sum ordered three ways, each with an innermost loop over the
 * output column j, which is unit-stride in y and (for stride 1) in x:
 *
 *   conv2d          y[n,o,i,:] += wt[o,c,u,v] * x[n,c,h, j s + v - p]
 *                   for n, o, i, then c, u, v: a row of y stays in cache
 *                   while every tap is added into it;
 *   grad_input      dx[n,c,h, j s + v - p] += wt[o,c,u,v] * dy[n,o,i,:]
 *                   the transposed convolution as a scatter, in the same
 *                   order, so dx[n] (C H W floats) stays in cache;
 *   grad_weight     dw[o,c,u,v] = sum over n, i, j of dy[n,o,i,j] x[n,c,h,w]
 *                   one dot product per weight, kept as OW partial sums
 *                   (one per column j) so the j loop is elementwise: the
 *                   work is that of the forward pass, O C KH KW N OH OW
 *                   multiply-adds, with no serial chain of adds.  (A
 *                   single accumulator made LLVM unroll the short j loop
 *                   and vectorise the i loop around it with gathers,
 *                   30 times slower.)
 *
 * Padding is handled by loop bounds, not by tests in the body: the taps u
 * that fall inside the image for row i, and the columns j that do for tap
 * v, are computed before each loop.
 *
 * Those loops are the f64 variant's kernels and the fallback for tiny
 * convolutions; in f32 the three are otherwise matrix products on unrolled
 * patches, run by @mdl.sgemm (the GEMM path below), 2-3x faster on the
 * Fashion-MNIST CNN.
 */
#include "cg_internal.h"

typedef struct conv {
    LLVMValueRef batch;
    int64_t ch, h, w, outs, kh, kw, oh, ow, s, p;
} conv;

static const ir_shape *input_shape(cg_kernel *k, int i) { return &k->g->nodes[k->node->inputs[i]].shape; }

static conv conv_of(cg_kernel *k, const ir_shape *x, const ir_shape *wt, const ir_shape *y) {
    conv cv = {cg_dim(k, x, 0), x->dims[1], x->dims[2], x->dims[3],      wt->dims[0],     wt->dims[2],
               wt->dims[3],     y->dims[2], y->dims[3], k->node->stride, k->node->padding};
    return cv;
}

static LLVMValueRef smax(cg_kernel *k, LLVMValueRef a, LLVMValueRef b) {
    LLVMValueRef args[2] = {a, b};
    return cg_intrinsic(k, "llvm.smax", k->t.i64, args, 2);
}

static LLVMValueRef smin(cg_kernel *k, LLVMValueRef a, LLVMValueRef b) {
    LLVMValueRef args[2] = {a, b};
    return cg_intrinsic(k, "llvm.smin", k->t.i64, args, 2);
}

/* ceil(max(a, 0) / s) */
static LLVMValueRef ceil_div(cg_kernel *k, LLVMValueRef a, int64_t s) {
    LLVMValueRef num = LLVMBuildAdd(k->b, smax(k, a, cg_i64(k, 0)), cg_i64(k, s - 1), "");
    return LLVMBuildSDiv(k->b, num, cg_i64(k, s), "");
}

/* A half-open range of loop indices, run as lo + t for t < count. */
typedef struct span {
    LLVMValueRef lo, count;
} span;

/* The t in [0, limit) with t s + off inside [0, n). */
static span inside(cg_kernel *k, LLVMValueRef off, int64_t n, int64_t limit, int64_t s) {
    span r;
    r.lo = ceil_div(k, LLVMBuildNeg(k->b, off, ""), s);
    LLVMValueRef hi = smin(k, cg_i64(k, limit), ceil_div(k, LLVMBuildSub(k->b, cg_i64(k, n), off, ""), s));
    r.count = smax(k, LLVMBuildSub(k->b, hi, r.lo, ""), cg_i64(k, 0));
    return r;
}

/* The taps u in [0, kh) whose row i s + u - p is inside [0, h). */
static span taps(cg_kernel *k, const conv *cv, LLVMValueRef i) {
    LLVMValueRef top = LLVMBuildSub(k->b, cg_i64(k, cv->p), cg_mul(k, i, cg_i64(k, cv->s)), "");
    span r;
    r.lo = smax(k, top, cg_i64(k, 0));
    LLVMValueRef hi = smin(k, LLVMBuildAdd(k->b, top, cg_i64(k, cv->h), ""), cg_i64(k, cv->kh));
    r.count = smax(k, LLVMBuildSub(k->b, hi, r.lo, ""), cg_i64(k, 0));
    return r;
}

/* ((a * n1 + b) * n2 + c) * n3 + d, the row-major index of a 4-D element */
static LLVMValueRef at4(cg_kernel *k, LLVMValueRef a, int64_t n1, LLVMValueRef b, int64_t n2, LLVMValueRef c,
                        int64_t n3, LLVMValueRef d) {
    LLVMValueRef r = cg_add(k, cg_mul(k, a, cg_i64(k, n1)), b);
    r = cg_add(k, cg_mul(k, r, cg_i64(k, n2)), c);
    return cg_add(k, cg_mul(k, r, cg_i64(k, n3)), d);
}

/* ------------------------------------------------------- the GEMM path */

/*
 * In f32, and where the sizes make it pay, each kernel is a few calls of
 * @mdl.sgemm (cg_matmul.c) instead: per sample n and per chunk of whole
 * output rows i0 .. i0+rows, the chunk's input patches are unrolled into a
 * matrix on the stack (im2col),
 *     col[q][r ow + j] = x[n, c, (i0 + r) s + u - p, j s + v - p]
 * for q = (c kh + u) kw + v (zero outside the image), and then
 *     conv2d        y[n][:, chunk] = W col           W as [O, C KH KW]
 *     grad_weight   dW += dy[n][:, chunk] col^T
 *     grad_input    col = W^T dy[n][:, chunk], then each element of col
 *                   added back to the input pixel it came from (col2im).
 * A chunk holds about CHUNK_FLOATS floats (128 KiB, in L2 beside sgemm's
 * packed panels); a single output row wider than MAX_ROW_FLOATS keeps the
 * loops below, as do the f64 variant and convolutions too small to fill a
 * tile.
 *
 * The work over samples is its own function (<kernel>.samples, with its
 * own im2col buffer on its own stack), which the kernel hands to the
 * runtime's mdl_rt_parallel_for when building for the runtime's threads
 * (cg_kernel.parallel), or calls once itself (the JIT).  grad_weight sums
 * fixed groups of samples into partial sums on the kernel's stack and adds
 * them up in group order, so its result does not depend on the threads.
 */
enum { CHUNK_FLOATS = 32768, MAX_ROW_FLOATS = 131072 };

typedef enum { CONV_FORWARD, CONV_GRAD_WEIGHT, CONV_GRAD_INPUT } conv_kind;

static int64_t patch_size(const conv *cv) { return cv->ch * cv->kh * cv->kw; }

/* Whether the kernel takes the GEMM path; `a` and `b` the inputs it reads
 * as matrices (a CONST input has no buffer). */
static int gemm_pays(cg_kernel *k, const conv *cv, int a, int b) {
    int64_t ckk = patch_size(cv);
    return !k->f64 && k->in[a] && k->in[b] && cv->outs >= 4 && ckk >= 4 && cv->oh * cv->ow >= 8 &&
           ckk * cv->ow <= MAX_ROW_FLOATS;
}

static LLVMValueRef at_f32(cg_kernel *k, LLVMValueRef base, LLVMValueRef index) {
    return LLVMBuildInBoundsGEP2(k->b, k->t.f32, base, &index, 1, "");
}

/* im2col of a chunk (back = 0: col = patches of input x_in), or col2im
 * (back = 1: the kernel's output += col at the same places).  col rows are
 * `cols` floats apart. */
static void patches(cg_kernel *k, const conv *cv, int back, int x_in, LLVMValueRef n, LLVMValueRef i0,
                    LLVMValueRef rows, LLVMValueRef cols, LLVMValueRef col) {
    LLVMBuilderRef b = k->b;
    if (!back && cv->p > 0) {
        cg_loop z = cg_loop_begin(k, cg_mul(k, cg_i64(k, patch_size(cv)), cols), "col.zero");
        cg_store(k, LLVMConstReal(k->t.f32, 0), col, z.index);
        cg_loop_end(k, &z);
    }
    cg_loop c = cg_loop_begin(k, cg_i64(k, cv->ch), "c");
    cg_loop u = cg_loop_begin(k, cg_i64(k, cv->kh), "u");
    cg_loop v = cg_loop_begin(k, cg_i64(k, cv->kw), "v");
    LLVMValueRef q = at4(k, cg_i64(k, 0), 1, c.index, cv->kh, u.index, cv->kw, v.index);
    LLVMValueRef off = LLVMBuildSub(b, v.index, cg_i64(k, cv->p), "");
    span js = inside(k, off, cv->w, cv->ow, cv->s);
    cg_loop r = cg_loop_begin(k, rows, "r");
    LLVMValueRef h = LLVMBuildSub(b, cg_add(k, cg_mul(k, cg_add(k, i0, r.index), cg_i64(k, cv->s)), u.index),
                                  cg_i64(k, cv->p), "");
    LLVMBasicBlockRef skip = NULL;
    if (cv->p > 0) { /* rows above or below the image stay zero */
        LLVMBasicBlockRef copy = LLVMAppendBasicBlockInContext(k->ctx, k->fn, "patch.row");
        skip = LLVMAppendBasicBlockInContext(k->ctx, k->fn, "patch.row.end");
        LLVMBuildCondBr(b, LLVMBuildICmp(b, LLVMIntULT, h, cg_i64(k, cv->h), ""), copy, skip);
        LLVMPositionBuilderAtEnd(b, copy);
    }
    LLVMValueRef col_row = cg_add(k, cg_mul(k, q, cols), cg_mul(k, r.index, cg_i64(k, cv->ow)));
    LLVMValueRef x_row = at4(k, n, cv->ch, c.index, cv->h, h, cv->w, off);
    cg_loop tj = cg_loop_begin(k, js.count, "j");
    LLVMValueRef j = cg_add(k, js.lo, tj.index);
    LLVMValueRef col_at = cg_add(k, col_row, j);
    LLVMValueRef x_at = cg_add(k, x_row, cg_mul(k, j, cg_i64(k, cv->s)));
    if (back) {
        LLVMValueRef sum = LLVMBuildFAdd(b, cg_load(k, k->t.f32, k->out, x_at), cg_load(k, k->t.f32, col, col_at), "");
        cg_store(k, sum, k->out, x_at);
    } else {
        cg_store(k, cg_load_input(k, x_in, x_at), col, col_at);
    }
    cg_loop_end(k, &tj);
    if (skip) {
        LLVMBuildBr(b, skip);
        LLVMPositionBuilderAtEnd(b, skip);
    }
    cg_loop_end(k, &r);
    cg_loop_end(k, &v);
    cg_loop_end(k, &u);
    cg_loop_end(k, &c);
}

static void sgemm(cg_kernel *k, LLVMValueRef c, LLVMValueRef a, LLVMValueRef bm, LLVMValueRef m, LLVMValueRef n,
                  LLVMValueRef kk, int64_t a_row, int64_t a_col, LLVMValueRef b_row, LLVMValueRef b_col,
                  LLVMValueRef ldc, int accumulate) {
    LLVMValueRef args[CG_SGEMM_ARGS] = {c,           a,    bm,   m,    n, kk, cg_i64(k, a_row), cg_i64(k, a_col),
                                        b_row,       b_col, ldc, cg_i64(k, accumulate)};
    cg_call_sgemm(k, args);
}

/* Samples [begin, end) (grad_weight: added into dw, which must hold the
 * sum so far; the others write the kernel's output), in the function being
 * written. */
static void emit_samples(cg_kernel *k, const conv *cv, conv_kind kind, LLVMValueRef begin, LLVMValueRef end,
                         LLVMValueRef dw) {
    int64_t ckk = patch_size(cv), ohw = cv->oh * cv->ow;
    int64_t per_chunk = CHUNK_FLOATS / (ckk * cv->ow);
    per_chunk = per_chunk < 1 ? 1 : per_chunk > cv->oh ? cv->oh : per_chunk;
    LLVMValueRef col = cg_alloca(k, LLVMArrayType2(k->t.f32, (uint64_t)(ckk * per_chunk * cv->ow)), "col");
    LLVMSetAlignment(col, 64);
    /* The stack is probed page by page, as in @mdl.sgemm. */
    LLVMAddAttributeAtIndex(k->fn, LLVMAttributeFunctionIndex,
                            LLVMCreateStringAttribute(k->ctx, "probe-stack", 11, "inline-asm", 10));
    cg_loop s = cg_loop_begin(k, LLVMBuildSub(k->b, end, begin, ""), "n");
    LLVMValueRef n = cg_add(k, begin, s.index);
    cg_loop t = cg_loop_begin(k, cg_i64(k, (cv->oh + per_chunk - 1) / per_chunk), "chunk");
    LLVMValueRef i0 = cg_mul(k, t.index, cg_i64(k, per_chunk));
    LLVMValueRef rows = smin(k, cg_i64(k, per_chunk), LLVMBuildSub(k->b, cg_i64(k, cv->oh), i0, ""));
    LLVMValueRef cols = cg_mul(k, rows, cg_i64(k, cv->ow));
    /* y[n][:, chunk] (or dy): O rows of `cols`, ohw apart */
    LLVMValueRef y_at = cg_add(k, cg_mul(k, n, cg_i64(k, cv->outs * ohw)), cg_mul(k, i0, cg_i64(k, cv->ow)));
    LLVMValueRef one = cg_i64(k, 1), outs = cg_i64(k, cv->outs), q = cg_i64(k, ckk);
    switch (kind) {
    case CONV_FORWARD: /* inputs x, W */
        patches(k, cv, 0, 0, n, i0, rows, cols, col);
        sgemm(k, at_f32(k, k->out, y_at), k->in[1], col, outs, cols, q, ckk, 1, cols, one, cg_i64(k, ohw), 0);
        break;
    case CONV_GRAD_WEIGHT: /* inputs x, dy */
        patches(k, cv, 0, 0, n, i0, rows, cols, col);
        sgemm(k, dw, at_f32(k, k->in[1], y_at), col, outs, q, cols, ohw, 1, one, cols, q, 1);
        break;
    case CONV_GRAD_INPUT: /* inputs dy, W */
        sgemm(k, col, k->in[1], at_f32(k, k->in[0], y_at), q, cols, outs, 1, ckk, cg_i64(k, ohw), one, cols, 0);
        patches(k, cv, 1, -1, n, i0, rows, cols, col);
        break;
    }
    cg_loop_end(k, &t);
    cg_loop_end(k, &s);
}

/* grad_weight sums over the batch in GROUPS partial sums, group g taking
 * samples [g B / GROUPS, (g + 1) B / GROUPS), added up in group order at
 * the end: the groups can run on different threads and the result is the
 * same on any number of them.  Weights too large for GROUPS copies on the
 * stack (MAX_PARTIAL_FLOATS) take one group. */
enum { GROUPS = 8, MAX_PARTIAL_FLOATS = 262144 };

static int64_t groups_of(const conv *cv) {
    return cv->outs * patch_size(cv) * GROUPS <= MAX_PARTIAL_FLOATS ? GROUPS : 1;
}

/* The kernel: the samples of the batch (grad_weight: the groups, into
 * partial sums on its stack) outlined as <kernel>.samples, for the
 * runtime's threads (cg_outline_begin); then grad_weight's partial sums
 * added up in group order. */
static void emit_gemm(cg_kernel *k, const conv *cv, conv_kind kind) {
    int64_t size = cv->outs * patch_size(cv), groups = groups_of(cv);
    LLVMValueRef partial = LLVMConstNull(k->t.ptr);
    if (kind == CONV_GRAD_WEIGHT) {
        partial = cg_alloca(k, LLVMArrayType2(k->t.f32, (uint64_t)(groups * size)), "partial");
        LLVMSetAlignment(partial, 64);
        LLVMAddAttributeAtIndex(k->fn, LLVMAttributeFunctionIndex,
                                LLVMCreateStringAttribute(k->ctx, "probe-stack", 11, "inline-asm", 10));
    }
    if (kind == CONV_GRAD_INPUT) /* col2im adds into it */
        cg_zero_output(k);
    LLVMValueRef kernel_batch = cv->batch;
    cg_outline o;
    cg_outline_begin(k, &o, "samples", &partial, 1);
    conv inner = *cv; /* a batch dimension's size: the outlined function's copy */
    if (inner.batch == o.saved.batch)
        inner.batch = k->batch;
    if (kind == CONV_GRAD_WEIGHT) {
        cg_loop g = cg_loop_begin(k, LLVMBuildSub(k->b, o.end, o.begin, ""), "group");
        LLVMValueRef gi = cg_add(k, o.begin, g.index);
        LLVMValueRef dw = at_f32(k, partial, cg_mul(k, gi, cg_i64(k, size)));
        cg_loop z = cg_loop_begin(k, cg_i64(k, size), "zero");
        cg_store(k, LLVMConstReal(k->t.f32, 0), dw, z.index);
        cg_loop_end(k, &z);
        LLVMValueRef lo = LLVMBuildUDiv(k->b, cg_mul(k, gi, inner.batch), cg_i64(k, groups), "");
        LLVMValueRef hi =
            LLVMBuildUDiv(k->b, cg_mul(k, cg_add(k, gi, cg_i64(k, 1)), inner.batch), cg_i64(k, groups), "");
        emit_samples(k, &inner, kind, lo, hi, dw);
        cg_loop_end(k, &g);
    } else {
        emit_samples(k, &inner, kind, o.begin, o.end, NULL);
    }
    cg_outline_end(k, &o, kind == CONV_GRAD_WEIGHT ? cg_i64(k, groups) : kernel_batch);
    if (kind == CONV_GRAD_WEIGHT) { /* dw = partial[0] + partial[1] + ..., in that order */
        cg_loop i = cg_loop_begin(k, cg_i64(k, size), "sum");
        LLVMValueRef sum = cg_load(k, k->t.f32, partial, i.index);
        for (int64_t g = 1; g < groups; g++)
            sum = LLVMBuildFAdd(k->b, sum, cg_load(k, k->t.f32, partial, cg_add(k, i.index, cg_i64(k, g * size))), "");
        cg_store(k, sum, k->out, i.index);
        cg_loop_end(k, &i);
    }
}

/* ------------------------------------------------- conv2d and grad_input */

/* Which buffer holds x, y and the weights in emit_rows: the input of that
 * index, or -1 for the kernel's output (which it adds into). */
typedef struct rows {
    int x_in, y_in, w_in;
} rows;

static LLVMValueRef load(cg_kernel *k, int in, LLVMValueRef index) {
    return in < 0 ? cg_load(k, k->t.real, k->out, index) : cg_load_input(k, in, index);
}

/* For n, o, i, c, taps u, v: over the valid columns j,
 *   forward:  y[.., j] += wt * x[.., j s + v - p]
 *   input:    x[.., j s + v - p] += wt * y[.., j] */
static void emit_rows(cg_kernel *k, const conv *cv, const rows *r) {
    int forward = r->y_in < 0;
    cg_loop n = cg_loop_begin(k, cv->batch, "n");
    cg_loop o = cg_loop_begin(k, cg_i64(k, cv->outs), "o");
    cg_loop i = cg_loop_begin(k, cg_i64(k, cv->oh), "i");
    LLVMValueRef y_row = at4(k, n.index, cv->outs, o.index, cv->oh, i.index, cv->ow, cg_i64(k, 0));
    if (forward) {
        cg_loop j = cg_loop_begin(k, cg_i64(k, cv->ow), "j");
        cg_store(k, LLVMConstReal(k->t.real, 0), k->out, cg_add(k, y_row, j.index));
        cg_loop_end(k, &j);
    }
    cg_loop c = cg_loop_begin(k, cg_i64(k, cv->ch), "c");
    span us = taps(k, cv, i.index);
    cg_loop tu = cg_loop_begin(k, us.count, "u");
    LLVMValueRef u = cg_add(k, us.lo, tu.index);
    LLVMValueRef h = LLVMBuildSub(k->b, cg_add(k, cg_mul(k, i.index, cg_i64(k, cv->s)), u), cg_i64(k, cv->p), "");
    LLVMValueRef x_row = at4(k, n.index, cv->ch, c.index, cv->h, h, cv->w, cg_i64(k, 0));
    LLVMValueRef w_row = at4(k, o.index, cv->ch, c.index, cv->kh, u, cv->kw, cg_i64(k, 0));
    cg_loop v = cg_loop_begin(k, cg_i64(k, cv->kw), "v");
    LLVMValueRef wt = cg_load_input(k, r->w_in, cg_add(k, w_row, v.index));
    LLVMValueRef off = LLVMBuildSub(k->b, v.index, cg_i64(k, cv->p), "");
    span js = inside(k, off, cv->w, cv->ow, cv->s);
    cg_loop tj = cg_loop_begin(k, js.count, "j");
    LLVMValueRef j = cg_add(k, js.lo, tj.index);
    LLVMValueRef y_at = cg_add(k, y_row, j);
    LLVMValueRef x_at = cg_add(k, x_row, cg_add(k, cg_mul(k, j, cg_i64(k, cv->s)), off));
    if (forward)
        cg_store(k, cg_fmuladd(k, k->t.real, wt, load(k, r->x_in, x_at), load(k, -1, y_at)), k->out, y_at);
    else
        cg_store(k, cg_fmuladd(k, k->t.real, wt, load(k, r->y_in, y_at), load(k, -1, x_at)), k->out, x_at);
    cg_loop_end(k, &tj);
    cg_loop_end(k, &v);
    cg_loop_end(k, &tu);
    cg_loop_end(k, &c);
    cg_loop_end(k, &i);
    cg_loop_end(k, &o);
    cg_loop_end(k, &n);
}

/* y = conv2d(x, wt): inputs x, wt */
int cg_kernel_conv2d(cg_kernel *k) {
    conv cv = conv_of(k, input_shape(k, 0), input_shape(k, 1), &k->node->shape);
    if (gemm_pays(k, &cv, 0, 1)) {
        emit_gemm(k, &cv, CONV_FORWARD);
        return 0;
    }
    rows r = {0, -1, 1};
    emit_rows(k, &cv, &r);
    return 0;
}

/* dx = conv2d_grad_input(dy, wt): inputs dy, wt */
int cg_kernel_conv2d_grad_input(cg_kernel *k) {
    conv cv = conv_of(k, &k->node->shape, input_shape(k, 1), input_shape(k, 0));
    if (gemm_pays(k, &cv, 0, 1)) {
        emit_gemm(k, &cv, CONV_GRAD_INPUT);
        return 0;
    }
    rows r = {-1, 0, 1};
    cg_zero_output(k);
    emit_rows(k, &cv, &r);
    return 0;
}

/* ------------------------------------------------------------- grad_weight */

/* dw = conv2d_grad_weight(x, dy): inputs x, dy.  Each weight is a dot
 * product over n, the rows i and the columns j its tap sees inside the
 * image.  It accumulates in one partial sum per output column j (an array
 * of OW floats, registers once LLVM unrolls a short row): the j loop is
 * then elementwise, with independent chains instead of one serial sum,
 * and the columns are added up at the end, in order. */
int cg_kernel_conv2d_grad_weight(cg_kernel *k) {
    conv cv = conv_of(k, input_shape(k, 0), &k->node->shape, input_shape(k, 1));
    if (gemm_pays(k, &cv, 0, 1)) {
        emit_gemm(k, &cv, CONV_GRAD_WEIGHT);
        return 0;
    }
    LLVMValueRef acc = cg_alloca(k, LLVMArrayType2(k->t.real, (uint64_t)cv.ow), "acc");
    LLVMValueRef total = cg_alloca(k, k->t.real, "total");
    cg_loop o = cg_loop_begin(k, cg_i64(k, cv.outs), "o");
    cg_loop c = cg_loop_begin(k, cg_i64(k, cv.ch), "c");
    cg_loop u = cg_loop_begin(k, cg_i64(k, cv.kh), "u");
    cg_loop v = cg_loop_begin(k, cg_i64(k, cv.kw), "v");
    LLVMValueRef row_off = LLVMBuildSub(k->b, u.index, cg_i64(k, cv.p), "");
    LLVMValueRef col_off = LLVMBuildSub(k->b, v.index, cg_i64(k, cv.p), "");
    span is = inside(k, row_off, cv.h, cv.oh, cv.s), js = inside(k, col_off, cv.w, cv.ow, cv.s);
    cg_loop z = cg_loop_begin(k, cg_i64(k, cv.ow), "z");
    cg_store(k, LLVMConstReal(k->t.real, 0), acc, z.index);
    cg_loop_end(k, &z);

    cg_loop n = cg_loop_begin(k, cv.batch, "n");
    cg_loop ti = cg_loop_begin(k, is.count, "i");
    LLVMValueRef i = cg_add(k, is.lo, ti.index);
    LLVMValueRef h = cg_add(k, cg_mul(k, i, cg_i64(k, cv.s)), row_off);
    LLVMValueRef y_row = at4(k, n.index, cv.outs, o.index, cv.oh, i, cv.ow, cg_i64(k, 0));
    LLVMValueRef x_row = at4(k, n.index, cv.ch, c.index, cv.h, h, cv.w, col_off);
    cg_loop tj = cg_loop_begin(k, js.count, "j");
    LLVMValueRef j = cg_add(k, js.lo, tj.index);
    LLVMValueRef dy = cg_load_input(k, 1, cg_add(k, y_row, j));
    LLVMValueRef x = cg_load_input(k, 0, cg_add(k, x_row, cg_mul(k, j, cg_i64(k, cv.s))));
    cg_store(k, cg_fmuladd(k, k->t.real, dy, x, cg_load(k, k->t.real, acc, j)), acc, j);
    cg_loop_end(k, &tj);
    cg_loop_end(k, &ti);
    cg_loop_end(k, &n);

    LLVMBuildStore(k->b, LLVMConstReal(k->t.real, 0), total);
    z = cg_loop_begin(k, cg_i64(k, cv.ow), "z");
    LLVMValueRef sum =
        LLVMBuildFAdd(k->b, LLVMBuildLoad2(k->b, k->t.real, total, ""), cg_load(k, k->t.real, acc, z.index), "");
    LLVMBuildStore(k->b, sum, total);
    cg_loop_end(k, &z);
    LLVMValueRef w_at = at4(k, o.index, cv.ch, c.index, cv.kh, u.index, cv.kw, v.index);
    cg_store(k, LLVMBuildLoad2(k->b, k->t.real, total, ""), k->out, w_at);
    cg_loop_end(k, &v);
    cg_loop_end(k, &u);
    cg_loop_end(k, &c);
    cg_loop_end(k, &o);
    return 0;
}
