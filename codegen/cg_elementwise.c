/*
 * cg_elementwise.c - loop nests over an output shape with numpy broadcasting.
 *
 * An elementwise kernel walks its output in row-major order; each input is
 * addressed through per-dimension strides, 0 where the input is missing or
 * a literal 1 (numpy broadcasting, inputs aligned right).  Before emitting
 * loops the nest is collapsed: output dims of literal size 1 are dropped,
 * and adjacent dims that every input either has or repeats in the same way
 * are merged into one, so `a + b` on equal shapes is a single loop over all
 * elements and `x[B,N] + bias[N]` is two.  The innermost loop is then
 * contiguous in the output and unit-stride or invariant in every input,
 * which is what LLVM's loop vectoriser wants.
 *
 * The same nest copies with broadcasting (BROADCAST, a CONST source);
 * RESHAPE and ASSIGN, whose source has the same elements in the same order,
 * are a memmove (large ones, with threads, a memcpy split over them).
 *
 * Threads: building for the runtime (cg_kernel.parallel), a nest over at
 * least SPLIT_MIN_ELEMENTS elements (at the largest batch) moves into a
 * function of its own, <kernel>.rows(ptr ctx, i64 begin, i64 end), that
 * runs the outermost loop's iterations [begin, end); the kernel hands it
 * to mdl_rt_parallel_for with its buffers in ctx.  Every element is
 * computed exactly as before, only possibly on another thread.
 */
#include <stdlib.h>

#include "cg_internal.h"

/* Bit i: input i has its own elements along output dim d (it neither lacks
 * the dim nor stretches a 1 over it). */
static unsigned presence(const ir_shape *out, const ir_shape **in, int n_in, int d) {
    unsigned bits = 0;
    for (int i = 0; i < n_in; i++) {
        if (!in[i])
            continue;
        int f = in[i]->rank - out->rank + d;
        if (f >= 0 && !ir_dim_is_one(in[i], f))
            bits |= 1u << i;
    }
    return bits;
}

/* Appends the loop over output dims [first, last], which share one presence
 * pattern (dims of literal size 1 in between change nothing).  Stream 0 is
 * the output, stream 1 + i input i. */
static void add_loop(cg_kernel *k, cg_nest *nest, const ir_shape *out, const ir_shape **in, int n_in, int first,
                     int last) {
    int l = nest->depth++;
    nest->extent[l] = cg_dims_product(k, out, first, last + 1);
    nest->stride[0][l] = cg_dims_product(k, out, last + 1, out->rank);
    unsigned bits = presence(out, in, n_in, last);
    for (int i = 0; i < n_in; i++) {
        int f = in[i] ? in[i]->rank - out->rank + last : -1;
        nest->stride[1 + i][l] = (bits >> i) & 1 ? cg_dims_product(k, in[i], f + 1, in[i]->rank) : cg_i64(k, 0);
    }
}

/* in[i] is the shape of input i, or NULL for one the body does not index. */
static void build_nest(cg_kernel *k, cg_nest *nest, const ir_shape *out, const ir_shape **in, int n_in) {
    int first = -1, prev = -1;
    nest->depth = 0;
    nest->n_streams = 1 + n_in;
    for (int d = 0; d < out->rank; d++) {
        if (ir_dim_is_one(out, d))
            continue;
        if (first >= 0 && presence(out, in, n_in, d) != presence(out, in, n_in, first)) {
            add_loop(k, nest, out, in, n_in, first, prev);
            first = -1;
        }
        if (first < 0)
            first = d;
        prev = d;
    }
    if (first >= 0)
        add_loop(k, nest, out, in, n_in, first, prev);
}

enum { SPLIT_MIN_ELEMENTS = 1 << 16 };

/* The loop nest over `out`; with threads, outlined (above).  extra[] are
 * more pointers the body uses (a fused group's inputs): while the outlined
 * function is written they hold its copies, loaded from ctx. */
static void emit_broadcast_nest(cg_kernel *k, const ir_shape *out, const ir_shape **in, int n_in, cg_nest_body body,
                                void *ctx, LLVMValueRef *extra, int n_extra) {
    cg_nest nest;
    LLVMValueRef base[CG_MAX_STREAMS];
    build_nest(k, &nest, out, in, n_in);
    for (int s = 0; s < nest.n_streams; s++)
        base[s] = cg_i64(k, 0);
    if (!k->parallel || nest.depth == 0 || ir_shape_numel(out) < SPLIT_MIN_ELEMENTS) {
        cg_emit_nest(k, &nest, base, body, ctx);
        return;
    }
    LLVMValueRef work = nest.extent[0];
    for (int d = 1; d < nest.depth; d++)
        work = cg_mul(k, work, nest.extent[d]);
    cg_outline o;
    cg_outline_begin(k, &o, "rows", extra, n_extra);
    o.work = work, o.min_work = SPLIT_MIN_ELEMENTS;
    cg_nest rows;
    build_nest(k, &rows, out, in, n_in); /* with this function's batch */
    for (int s = 0; s < rows.n_streams; s++)
        base[s] = cg_mul(k, o.begin, rows.stride[s][0]);
    rows.extent[0] = LLVMBuildSub(k->b, o.end, o.begin, "");
    cg_emit_nest(k, &rows, base, body, ctx);
    cg_outline_end(k, &o, nest.extent[0]);
}

/* ---------------------------------------------------------- elementwise */

static void elementwise_body(cg_kernel *k, LLVMValueRef *index, void *ctx) {
    LLVMValueRef x[3];
    (void)ctx;
    for (int i = 0; i < k->node->n_inputs; i++)
        x[i] = cg_load_input(k, i, index[1 + i]);
    cg_store(k, cg_scalars[k->node->op](k, k->node, x), k->out, index[0]);
}

/* where(c, x, y) written over y itself: only the elements where c holds
 * change, so the others are neither loaded nor stored.  Where c is the
 * same along the innermost loop (a KV cache's position picks whole rows),
 * it is tested once per row and a false row costs nothing. */
typedef struct where_ctx {
    const cg_nest *inner; /* the innermost loop, when c is the same along it */
} where_ctx;

static void where_store_body(cg_kernel *k, LLVMValueRef *index, void *ctx) {
    (void)ctx;
    cg_store(k, cg_load_input(k, 1, index[2]), k->out, index[0]);
}

static void where_in_place_body(cg_kernel *k, LLVMValueRef *index, void *ctx) {
    const where_ctx *w = ctx;
    LLVMValueRef c = cg_load_input(k, 0, index[1]);
    c = LLVMGetTypeKind(LLVMTypeOf(c)) == LLVMIntegerTypeKind
            ? LLVMBuildICmp(k->b, LLVMIntNE, c, LLVMConstInt(LLVMTypeOf(c), 0, 0), "")
            : LLVMBuildFCmp(k->b, LLVMRealUNE, c, LLVMConstReal(LLVMTypeOf(c), 0), "");
    LLVMBasicBlockRef store = LLVMAppendBasicBlockInContext(k->ctx, k->fn, "where.store");
    LLVMBasicBlockRef next = LLVMAppendBasicBlockInContext(k->ctx, k->fn, "where.next");
    LLVMBuildCondBr(k->b, c, store, next);
    LLVMPositionBuilderAtEnd(k->b, store);
    if (w->inner)
        cg_emit_nest(k, w->inner, index, where_store_body, NULL);
    else
        where_store_body(k, index, NULL);
    LLVMBuildBr(k->b, next);
    LLVMPositionBuilderAtEnd(k->b, next);
}

static void emit_where_in_place(cg_kernel *k, const ir_shape **in) {
    cg_nest nest, inner;
    LLVMValueRef base[CG_MAX_STREAMS];
    build_nest(k, &nest, &k->node->shape, in, 2);
    for (int s = 0; s < nest.n_streams; s++)
        base[s] = cg_i64(k, 0);
    where_ctx w = {NULL};
    int last = nest.depth - 1;
    if (last >= 0 && LLVMIsAConstantInt(nest.stride[1][last]) && LLVMConstIntGetSExtValue(nest.stride[1][last]) == 0) {
        inner.depth = 1, inner.n_streams = nest.n_streams;
        inner.extent[0] = nest.extent[last];
        for (int s = 0; s < nest.n_streams; s++)
            inner.stride[s][0] = nest.stride[s][last];
        nest.depth--;
        w.inner = &inner;
    }
    cg_emit_nest(k, &nest, base, where_in_place_body, &w);
}

int cg_kernel_elementwise(cg_kernel *k) {
    const ir_shape *in[3];
    for (int i = 0; i < k->node->n_inputs; i++)
        in[i] = k->in[i] ? &k->g->nodes[k->node->inputs[i]].shape : NULL;
    /* A KV cache's update, where(position == iota, row, cache), which the
     * memory plan computes in place of the cache: the run-time check finds
     * the output in the buffer of the value it keeps, and then only the
     * new row is written (a GPT's generation step: 4 x 32 KiB per token
     * not copied). */
    if (k->node->op == IR_WHERE && in[0] && in[1] && in[2] && k->in[0] && k->in[1] && k->in[2] &&
        ir_shape_equal(in[2], &k->node->shape)) {
        LLVMBasicBlockRef same = LLVMAppendBasicBlockInContext(k->ctx, k->fn, "where.in_place");
        LLVMBasicBlockRef other = LLVMAppendBasicBlockInContext(k->ctx, k->fn, "where.copy");
        LLVMBasicBlockRef end = LLVMAppendBasicBlockInContext(k->ctx, k->fn, "where.end");
        LLVMBuildCondBr(k->b, LLVMBuildICmp(k->b, LLVMIntEQ, k->out, k->in[2], ""), same, other);
        LLVMPositionBuilderAtEnd(k->b, same);
        emit_where_in_place(k, in);
        LLVMBuildBr(k->b, end);
        LLVMPositionBuilderAtEnd(k->b, other);
        emit_broadcast_nest(k, &k->node->shape, in, 3, elementwise_body, NULL, NULL, 0);
        LLVMBuildBr(k->b, end);
        LLVMPositionBuilderAtEnd(k->b, end);
        return 0;
    }
    emit_broadcast_nest(k, &k->node->shape, in, k->node->n_inputs, elementwise_body, NULL, NULL, 0);
    return 0;
}

/* ------------------------------------------------------------ fused groups */

typedef struct fused_ctx {
    const entries *es;
    const fused_group *gr;
    LLVMValueRef *in;  /* the inputs' buffers */
    LLVMValueRef *out; /* the outputs' buffers (besides the root's) */
} fused_ctx;

/* Computes the elementwise members of gr from ext[] (each group input's
 * element), storing each output j into out[j] at out_index; returns the
 * value of the last elementwise member (the root, or the input of a
 * reduction root). */
LLVMValueRef cg_group_values(cg_kernel *k, const fused_group *gr, const LLVMValueRef *ext,
                             LLVMValueRef *out, LLVMValueRef out_index) {
    LLVMValueRef *val = ir_xmalloc((size_t)gr->n_members * sizeof *val), last = NULL;
    for (int m = 0; m < gr->n_members; m++) {
        if (!fuse_is_elementwise(k->g, gr->members[m]))
            break;
        const ir_node *n = &k->g->nodes[gr->members[m]];
        LLVMValueRef x[3];
        for (int q = 0; q < n->n_inputs; q++) {
            int id = n->inputs[q];
            const ir_node *xn = &k->g->nodes[id];
            x[q] = NULL;
            if (xn->op == IR_CONST) {
                x[q] = xn->dtype == IR_I32 ? LLVMConstInt(k->t.i32, (unsigned long long)(int64_t)xn->value, 1)
                                           : LLVMConstReal(k->t.real, xn->value);
            } else { /* an earlier member (its own or one computed again), else an input */
                for (int j = 0; j < m && !x[q]; j++)
                    if (gr->members[j] == id)
                        x[q] = val[j];
                for (int j = 0; j < gr->n_inputs && !x[q]; j++)
                    if (gr->inputs[j] == id)
                        x[q] = ext[j];
            }
            if (!x[q])
                abort(); /* the group is inconsistent: a bug in fuse.c */
        }
        last = val[m] = cg_scalars[n->op](k, n, x);
        for (int j = 0; j < gr->n_outputs; j++)
            if (gr->outputs[j] == gr->members[m])
                cg_store(k, val[m], out[j], out_index);
    }
    free(val);
    return last;
}

static void fused_body(cg_kernel *k, LLVMValueRef *index, void *ctx) {
    const fused_ctx *f = ctx;
    const fused_group *gr = f->gr;
    LLVMValueRef ext[FUSE_MAX_INPUTS];
    for (int i = 0; i < gr->n_inputs; i++)
        ext[i] = cg_load(k, cg_type(k, k->g->nodes[gr->inputs[i]].dtype), f->in[i], index[1 + i]);
    cg_store(k, cg_group_values(k, gr, ext, f->out, index[0]), k->out, index[0]);
}

int cg_kernel_fused(cg_kernel *k, const entries *es, const fused_group *gr, const LLVMValueRef *in,
                    const LLVMValueRef *out) {
    if (!fuse_is_elementwise(k->g, gr->root))
        return cg_kernel_reduce_group(k, es, gr, in);
    const ir_shape *shapes[FUSE_MAX_INPUTS];
    for (int i = 0; i < gr->n_inputs; i++)
        shapes[i] = &k->g->nodes[gr->inputs[i]].shape;
    /* the inputs' buffers, then the outputs': while the outlined function
     * is written they hold its copies */
    LLVMValueRef buffers[FUSE_MAX_INPUTS + FUSE_MAX_OUTPUTS];
    for (int i = 0; i < gr->n_inputs; i++)
        buffers[i] = in[i];
    for (int j = 0; j < gr->n_outputs; j++)
        buffers[gr->n_inputs + j] = out[j];
    fused_ctx f = {es, gr, buffers, buffers + gr->n_inputs};
    emit_broadcast_nest(k, &k->g->nodes[gr->root].shape, shapes, gr->n_inputs, fused_body, &f, buffers,
                        gr->n_inputs + gr->n_outputs);
    return 0;
}

/* ----------------------------------------------------------------- copies */

/* ctx: the index of the input to copy */
static void copy_body(cg_kernel *k, LLVMValueRef *index, void *ctx) {
    int src = *(int *)ctx;
    cg_store(k, cg_load_input(k, src, index[1 + src]), k->out, index[0]);
}

/* out (of `shape`) = input src, broadcast */
static int emit_copy(cg_kernel *k, int src, const ir_shape *shape) {
    const ir_shape *in[3] = {NULL, NULL, NULL};
    if (k->in[src])
        in[src] = &k->g->nodes[k->node->inputs[src]].shape;
    emit_broadcast_nest(k, shape, in, k->node->n_inputs, copy_body, &src, NULL, 0);
    return 0;
}

enum { COPY_CHUNK = 1 << 14 }; /* elements per piece of a split copy */

/* Elements [begin * COPY_CHUNK, min(end * COPY_CHUNK, n)) of a flat copy. */
static void copy_chunks(cg_kernel *k, int src, const ir_shape *shape, LLVMValueRef begin, LLVMValueRef end) {
    int64_t size = k->node->dtype == IR_F32 && k->f64 ? 8 : 4;
    LLVMValueRef n = cg_dims_product(k, shape, 0, shape->rank);
    LLVMValueRef from = cg_mul(k, begin, cg_i64(k, COPY_CHUNK)), to = cg_mul(k, end, cg_i64(k, COPY_CHUNK));
    to = LLVMBuildSelect(k->b, LLVMBuildICmp(k->b, LLVMIntULT, to, n, ""), to, n, "");
    LLVMValueRef at = cg_mul(k, from, cg_i64(k, size));
    LLVMValueRef out = LLVMBuildInBoundsGEP2(k->b, LLVMInt8TypeInContext(k->ctx), k->out, &at, 1, "");
    LLVMValueRef in = LLVMBuildInBoundsGEP2(k->b, LLVMInt8TypeInContext(k->ctx), k->in[src], &at, 1, "");
    LLVMBuildMemCpy(k->b, out, 4, in, 4, cg_mul(k, LLVMBuildSub(k->b, to, from, ""), cg_i64(k, size)));
}

/* The same elements in the same order.  The memory plan puts the result
 * either where its source is (nothing to do) or in a buffer of its own
 * (its source is live while it runs): a memmove, or with threads and
 * SPLIT_MIN_ELEMENTS or more, pieces of a memcpy split over them. */
static int emit_flat_copy(cg_kernel *k, int src, const ir_shape *shape) {
    if (!k->in[src])
        return emit_copy(k, src, shape);
    if (k->in[src] == k->out)
        return 0;
    int64_t size = k->node->dtype == IR_F32 && k->f64 ? 8 : 4;
    LLVMValueRef n = cg_dims_product(k, shape, 0, shape->rank);
    if (!k->parallel || ir_shape_numel(shape) < SPLIT_MIN_ELEMENTS) {
        LLVMBuildMemMove(k->b, k->out, 4, k->in[src], 4, cg_mul(k, n, cg_i64(k, size)));
        return 0;
    }
    LLVMValueRef pieces = LLVMBuildUDiv(k->b, cg_add(k, n, cg_i64(k, COPY_CHUNK - 1)), cg_i64(k, COPY_CHUNK), "");
    cg_outline o;
    cg_outline_begin(k, &o, "rows", NULL, 0);
    o.work = n, o.min_work = SPLIT_MIN_ELEMENTS;
    copy_chunks(k, src, shape, o.begin, o.end);
    cg_outline_end(k, &o, pieces);
    return 0;
}

int cg_kernel_broadcast(cg_kernel *k) { return emit_copy(k, 0, &k->node->shape); }

int cg_kernel_reshape(cg_kernel *k) { return emit_flat_copy(k, 0, &k->node->shape); }

/* slot(input 0) := input 1; k->out is the slot's buffer (same shape). */
int cg_kernel_assign(cg_kernel *k) { return emit_flat_copy(k, 1, &k->node->shape); }
