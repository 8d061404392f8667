/*
 * cg_loops.c - the small vocabulary every kernel is written in.
 *
 * Loops are emitted in the plainest form LLVM's loop passes recognise: an
 * i64 induction variable from 0 to a run-time extent, tested at the top
 * (batch >= 1 and static dims >= 1, but a top test costs nothing once
 * LLVM rotates the loop).  Index arithmetic is i64 and folded where one side
 * is a constant 0 or 1, so the IR of a static-shape kernel stays readable
 * before optimisation.  Loads and stores go through in-bounds GEPs on the
 * element type, which is what lets SCEV see unit strides and vectorise.
 */
#include <stdio.h>
#include <string.h>

#include <llvm-c/DebugInfo.h>

#include "cg_internal.h"

cg_loop cg_loop_begin(cg_kernel *k, LLVMValueRef extent, const char *name) {
    char label[32];
    cg_loop loop;
    LLVMBasicBlockRef before = LLVMGetInsertBlock(k->b);
    snprintf(label, sizeof label, "%s.loop", name);
    loop.header = LLVMAppendBasicBlockInContext(k->ctx, k->fn, label);
    snprintf(label, sizeof label, "%s.body", name);
    LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(k->ctx, k->fn, label);
    snprintf(label, sizeof label, "%s.end", name);
    loop.exit = LLVMCreateBasicBlockInContext(k->ctx, label);
    LLVMBuildBr(k->b, loop.header);

    LLVMPositionBuilderAtEnd(k->b, loop.header);
    loop.index = LLVMBuildPhi(k->b, k->t.i64, name);
    LLVMValueRef zero = cg_i64(k, 0);
    LLVMAddIncoming(loop.index, &zero, &before, 1);
    LLVMValueRef more = LLVMBuildICmp(k->b, LLVMIntULT, loop.index, extent, "");
    LLVMBuildCondBr(k->b, more, body, loop.exit);
    LLVMPositionBuilderAtEnd(k->b, body);
    return loop;
}

void cg_loop_end(cg_kernel *k, cg_loop *loop) {
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(k->b);
    LLVMValueRef next = LLVMBuildNUWAdd(k->b, loop->index, cg_i64(k, 1), "next");
    LLVMBuildBr(k->b, loop->header);
    LLVMAddIncoming(loop->index, &next, &latch, 1);
    LLVMAppendExistingBasicBlock(k->fn, loop->exit);
    LLVMPositionBuilderAtEnd(k->b, loop->exit);
}

/* Marks the loop whose back edge is `branch` with llvm.loop metadata that
 * turns off the vectoriser and the unroller. */
void cg_mark_as_written(cg_kernel *k, LLVMValueRef branch) {
    LLVMContextRef ctx = k->ctx;
    LLVMMetadataRef no_vectorize[2] = {LLVMMDStringInContext2(ctx, "llvm.loop.vectorize.enable", 26),
                                       LLVMValueAsMetadata(LLVMConstInt(k->t.i1, 0, 0))};
    LLVMMetadataRef no_unroll = LLVMMDStringInContext2(ctx, "llvm.loop.unroll.disable", 24);
    LLVMMetadataRef self = LLVMTemporaryMDNode(ctx, NULL, 0);
    LLVMMetadataRef items[3] = {self, LLVMMDNodeInContext2(ctx, no_vectorize, 2),
                                LLVMMDNodeInContext2(ctx, &no_unroll, 1)};
    LLVMMetadataRef id = LLVMMDNodeInContext2(ctx, items, 3);
    LLVMMetadataReplaceAllUsesWith(self, id); /* the loop id refers to itself */
    unsigned kind = LLVMGetMDKindIDInContext(ctx, "llvm.loop", 9);
    LLVMSetMetadata(branch, kind, LLVMMetadataAsValue(ctx, id));
}

/* Runs void body(ptr ctx, i64 begin, i64 end) over [0, n): through the
 * runtime's mdl_rt_parallel_for (its threads) when k->parallel, else as
 * one direct call body(ctx, 0, n). */
static void call_parallel_for(cg_kernel *k, LLVMValueRef body, LLVMValueRef ctx, LLVMValueRef n, LLVMValueRef work,
                              int64_t min_work) {
    LLVMValueRef args3[3] = {ctx, cg_i64(k, 0), n};
    if (!k->parallel) {
        LLVMBuildCall2(k->b, LLVMGlobalGetValueType(body), body, args3, 3, "");
        return;
    }
    LLVMBasicBlockRef end = NULL;
    if (work) { /* small at run time: here, without the pool's dispatch */
        LLVMBasicBlockRef here = LLVMAppendBasicBlockInContext(k->ctx, k->fn, "split.no");
        LLVMBasicBlockRef pool = LLVMAppendBasicBlockInContext(k->ctx, k->fn, "split.yes");
        end = LLVMAppendBasicBlockInContext(k->ctx, k->fn, "split.end");
        LLVMBuildCondBr(k->b, LLVMBuildICmp(k->b, LLVMIntSLT, work, cg_i64(k, min_work), ""), here, pool);
        LLVMPositionBuilderAtEnd(k->b, here);
        LLVMBuildCall2(k->b, LLVMGlobalGetValueType(body), body, args3, 3, "");
        LLVMBuildBr(k->b, end);
        LLVMPositionBuilderAtEnd(k->b, pool);
    }
    LLVMValueRef rt = LLVMGetNamedFunction(k->mod, "mdl_rt_parallel_for");
    if (!rt) {
        LLVMTypeRef params[3] = {k->t.ptr, k->t.ptr, k->t.i64};
        rt = LLVMAddFunction(k->mod, "mdl_rt_parallel_for", LLVMFunctionType(k->t.void_, params, 3, 0));
    }
    LLVMValueRef args[3] = {body, ctx, n};
    LLVMBuildCall2(k->b, LLVMGlobalGetValueType(rt), rt, args, 3, "");
    if (end) {
        LLVMBuildBr(k->b, end);
        LLVMPositionBuilderAtEnd(k->b, end);
    }
}

/* ctx slots: the kernel's output, its inputs, its batch, then extra[] */
enum { SLOT_OUT = 0, SLOT_IN = 1, SLOT_BATCH = 4, SLOT_EXTRA = 5 };
enum { MAX_SLOTS = CG_OUTLINE_MAX_SLOTS };

/* Whether v is a parameter of fn marked noalias (cg_module.c's
 * declare_kernel marks the buffers no other one overlaps). */
static int is_noalias_param(LLVMValueRef fn, LLVMValueRef v) {
    unsigned kind = LLVMGetEnumAttributeKindForName("noalias", 7);
    for (unsigned i = 0; i < LLVMCountParams(fn); i++)
        if (LLVMGetParam(fn, i) == v)
            return LLVMGetEnumAttributeAtIndex(fn, i + 1, kind) != NULL;
    return 0;
}

/* A distinct metadata node {self, rest...} (an alias domain or scope). */
static LLVMMetadataRef self_node(cg_kernel *k, LLVMMetadataRef *rest, int n_rest) {
    LLVMMetadataRef items[3], self = LLVMTemporaryMDNode(k->ctx, NULL, 0);
    items[0] = self;
    for (int i = 0; i < n_rest; i++)
        items[1 + i] = rest[i];
    LLVMMetadataRef node = LLVMMDNodeInContext2(k->ctx, items, (size_t)(1 + n_rest));
    LLVMMetadataReplaceAllUsesWith(self, node);
    return node;
}

/* The pointer a load or store goes through, back through its GEPs. */
static LLVMValueRef access_base(LLVMValueRef inst) {
    LLVMValueRef p = NULL;
    if (LLVMIsALoadInst(inst))
        p = LLVMGetOperand(inst, 0);
    else if (LLVMIsAStoreInst(inst))
        p = LLVMGetOperand(inst, 1);
    while (p && LLVMIsAGetElementPtrInst(p))
        p = LLVMGetOperand(p, 0);
    return p;
}

/* The outlined function reads its buffers from ctx: pointers LLVM knows
 * nothing of, where the kernel's were noalias parameters.  Without that a
 * row of C accumulated across k stays in memory (a load and a store per
 * step: attention's batched products ran at a fifth of their speed) and
 * vector loops get overlap checks.  So each noalias buffer gets an alias
 * scope, and every load and store based on one of the shipped buffers, the
 * ctx or an alloca says which scope it is in and which it is not, as the
 * inliner does for a noalias argument.  Accesses through anything else
 * keep no marks (LLVM then assumes they may alias). */
static void mark_scopes(cg_kernel *k, const cg_outline *o) {
    if (!o->n_noalias)
        return;
    size_t len;
    const char *fname = LLVMGetValueName2(k->fn, &len);
    LLVMMetadataRef name = LLVMMDStringInContext2(k->ctx, fname, len);
    LLVMMetadataRef domain = self_node(k, &name, 1), scope[MAX_SLOTS];
    for (int s = 0; s < o->n_noalias; s++) {
        LLVMMetadataRef rest[2] = {domain, name};
        scope[s] = self_node(k, rest, 2);
    }
    unsigned scope_kind = LLVMGetMDKindIDInContext(k->ctx, "alias.scope", 11);
    unsigned noalias_kind = LLVMGetMDKindIDInContext(k->ctx, "noalias", 7);
    LLVMValueRef ctx = LLVMGetParam(k->fn, 0);
    for (LLVMBasicBlockRef bb = LLVMGetFirstBasicBlock(k->fn); bb; bb = LLVMGetNextBasicBlock(bb))
        for (LLVMValueRef inst = LLVMGetFirstInstruction(bb); inst; inst = LLVMGetNextInstruction(inst)) {
            LLVMValueRef base = access_base(inst);
            if (!base)
                continue;
            int known = base == ctx || LLVMIsAAllocaInst(base), own = -1;
            for (int i = 0; i < o->n_loaded; i++)
                known |= base == o->loaded[i];
            for (int s = 0; s < o->n_noalias; s++)
                if (base == o->noalias[s])
                    own = s;
            if (!known)
                continue;
            LLVMMetadataRef others[MAX_SLOTS];
            int n_others = 0;
            for (int s = 0; s < o->n_noalias; s++)
                if (s != own)
                    others[n_others++] = scope[s];
            if (own >= 0)
                LLVMSetMetadata(inst, scope_kind,
                                LLVMMetadataAsValue(k->ctx, LLVMMDNodeInContext2(k->ctx, &scope[own], 1)));
            if (n_others)
                LLVMSetMetadata(inst, noalias_kind,
                                LLVMMetadataAsValue(k->ctx, LLVMMDNodeInContext2(k->ctx, others, (size_t)n_others)));
        }
}

void cg_outline_begin(cg_kernel *k, cg_outline *o, const char *suffix, LLVMValueRef *extra, int n_extra) {
    LLVMValueRef values[MAX_SLOTS];
    int n_ship = SLOT_EXTRA + n_extra;
    values[SLOT_OUT] = k->out;
    for (int i = 0; i < 3; i++)
        values[SLOT_IN + i] = k->in[i] ? k->in[i] : LLVMConstNull(k->t.ptr);
    values[SLOT_BATCH] = k->batch;
    for (int j = 0; j < n_extra; j++)
        values[SLOT_EXTRA + j] = extra[j];
    o->ctx = cg_alloca(k, LLVMArrayType2(k->t.ptr, (uint64_t)n_ship), "ctx");
    for (int i = 0; i < n_ship; i++) { /* the batch, an i64, in a pointer-sized slot */
        LLVMValueRef at = cg_i64(k, i);
        LLVMBuildStore(k->b, values[i], LLVMBuildInBoundsGEP2(k->b, k->t.ptr, o->ctx, &at, 1, ""));
    }

    size_t len;
    const char *kname = LLVMGetValueName2(k->fn, &len);
    char name[256];
    snprintf(name, sizeof name, "%.*s.%s", (int)(len < 200 ? len : 200), kname, suffix);
    LLVMTypeRef params[3] = {k->t.ptr, k->t.i64, k->t.i64};
    o->fn = LLVMAddFunction(k->mod, name, LLVMFunctionType(k->t.void_, params, 3, 0));
    LLVMSetLinkage(o->fn, LLVMInternalLinkage);
    o->saved = *k;
    o->extra = extra;
    o->n_extra = n_extra;
    for (int j = 0; j < n_extra; j++)
        o->saved_extra[j] = extra[j];

    o->work = NULL;
    o->min_work = 0;
    k->fn = o->fn;
    k->entry_block = LLVMAppendBasicBlockInContext(k->ctx, o->fn, "entry");
    k->b = LLVMCreateBuilderInContext(k->ctx);
    LLVMPositionBuilderAtEnd(k->b, k->entry_block);
    k->parallel = 0; /* on a thread of the pool already: no nested splits */
    LLVMValueRef c = LLVMGetParam(o->fn, 0);
    o->begin = LLVMGetParam(o->fn, 1);
    o->end = LLVMGetParam(o->fn, 2);
    LLVMValueRef loaded[MAX_SLOTS];
    for (int i = 0; i < n_ship; i++) {
        /* A buffer shipped twice (an input read in place through the
         * output pointer) is loaded once: the same SSA pointer lets LLVM
         * see the same element, as in the kernel, instead of an overlap
         * that sends a vectorised loop to its scalar fallback. */
        loaded[i] = NULL;
        for (int j = 0; j < i && !loaded[i]; j++)
            if (values[j] == values[i] && i != SLOT_BATCH && j != SLOT_BATCH)
                loaded[i] = loaded[j];
        if (loaded[i])
            continue;
        LLVMValueRef at = cg_i64(k, i);
        LLVMTypeRef t = i == SLOT_BATCH ? k->t.i64 : k->t.ptr;
        loaded[i] = LLVMBuildLoad2(k->b, t, LLVMBuildInBoundsGEP2(k->b, k->t.ptr, c, &at, 1, ""), "");
    }
    o->n_noalias = 0;
    for (int i = 0; i < n_ship; i++) {
        int first = 1;
        for (int j = 0; j < i; j++)
            first &= loaded[j] != loaded[i];
        if (first && i != SLOT_BATCH && is_noalias_param(o->saved.fn, values[i]))
            o->noalias[o->n_noalias++] = loaded[i];
    }
    o->n_loaded = n_ship;
    for (int i = 0; i < n_ship; i++)
        o->loaded[i] = loaded[i];
    k->out = loaded[SLOT_OUT];
    for (int i = 0; i < 3; i++)
        k->in[i] = o->saved.in[i] ? loaded[SLOT_IN + i] : NULL;
    k->batch = loaded[SLOT_BATCH];
    for (int j = 0; j < n_extra; j++)
        extra[j] = loaded[SLOT_EXTRA + j];
}

void cg_outline_end(cg_kernel *k, cg_outline *o, LLVMValueRef n) {
    LLVMBuildRetVoid(k->b);
    mark_scopes(k, o);
    LLVMDisposeBuilder(k->b);
    *k = o->saved;
    for (int j = 0; j < o->n_extra; j++)
        o->extra[j] = o->saved_extra[j];
    call_parallel_for(k, o->fn, o->ctx, n, o->work, o->min_work);
}

void cg_loop_end_as_written(cg_kernel *k, cg_loop *loop) {
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(k->b);
    cg_loop_end(k, loop);
    cg_mark_as_written(k, LLVMGetBasicBlockTerminator(latch));
}

static void emit_level(cg_kernel *k, const cg_nest *nest, int level, const LLVMValueRef *index, cg_nest_body body,
                       void *ctx) {
    if (level == nest->depth) {
        LLVMValueRef copy[CG_MAX_STREAMS];
        for (int s = 0; s < nest->n_streams; s++)
            copy[s] = index[s];
        body(k, copy, ctx);
        return;
    }
    char name[16];
    snprintf(name, sizeof name, "i%d", level);
    cg_loop loop = cg_loop_begin(k, nest->extent[level], name);
    LLVMValueRef inner[CG_MAX_STREAMS];
    for (int s = 0; s < nest->n_streams; s++)
        inner[s] = cg_add(k, index[s], cg_mul(k, loop.index, nest->stride[s][level]));
    emit_level(k, nest, level + 1, inner, body, ctx);
    cg_loop_end(k, &loop);
}

void cg_emit_nest(cg_kernel *k, const cg_nest *nest, const LLVMValueRef *base, cg_nest_body body, void *ctx) {
    emit_level(k, nest, 0, base, body, ctx);
}

LLVMValueRef cg_i64(cg_kernel *k, int64_t v) { return LLVMConstInt(k->t.i64, (unsigned long long)v, 1); }

static int is_const_int(LLVMValueRef v, int64_t want) {
    return LLVMIsAConstantInt(v) && LLVMConstIntGetSExtValue(v) == want;
}

LLVMValueRef cg_mul(cg_kernel *k, LLVMValueRef a, LLVMValueRef b) {
    if (is_const_int(a, 0) || is_const_int(b, 1))
        return a;
    if (is_const_int(b, 0) || is_const_int(a, 1))
        return b;
    /* Offsets are below the arena size, so nothing here wraps. */
    return LLVMBuildNSWMul(k->b, a, b, "");
}

LLVMValueRef cg_add(cg_kernel *k, LLVMValueRef a, LLVMValueRef b) {
    if (is_const_int(a, 0))
        return b;
    if (is_const_int(b, 0))
        return a;
    return LLVMBuildNSWAdd(k->b, a, b, "");
}

LLVMValueRef cg_dim(cg_kernel *k, const ir_shape *s, int d) {
    if (ir_is_batch_dim(s, d))
        return k->batch;
    return cg_i64(k, s->dims[d]);
}

LLVMValueRef cg_dims_product(cg_kernel *k, const ir_shape *s, int from, int to) {
    LLVMValueRef p = cg_i64(k, 1);
    int64_t fixed = 1;
    for (int d = from; d < to; d++) {
        if (ir_is_batch_dim(s, d))
            p = cg_mul(k, p, k->batch);
        else
            fixed *= s->dims[d];
    }
    return cg_mul(k, p, cg_i64(k, fixed));
}

/* IR_F32 is float, or double in the f64 variant (t.real). */
void cg_zero_output(cg_kernel *k) {
    const ir_shape *s = &k->node->shape;
    cg_loop i = cg_loop_begin(k, cg_dims_product(k, s, 0, s->rank), "zero");
    cg_store(k, LLVMConstReal(k->t.real, 0), k->out, i.index);
    cg_loop_end(k, &i);
}

LLVMTypeRef cg_type(cg_kernel *k, ir_dtype t) { return t == IR_I32 ? k->t.i32 : k->t.real; }

LLVMValueRef cg_alloca(cg_kernel *k, LLVMTypeRef t, const char *name) {
    LLVMBuilderRef at = LLVMCreateBuilderInContext(k->ctx);
    LLVMValueRef first = LLVMGetFirstInstruction(k->entry_block);
    if (first)
        LLVMPositionBuilderBefore(at, first);
    else
        LLVMPositionBuilderAtEnd(at, k->entry_block);
    LLVMValueRef slot = LLVMBuildAlloca(at, t, name);
    LLVMDisposeBuilder(at);
    return slot;
}

LLVMValueRef cg_load(cg_kernel *k, LLVMTypeRef t, LLVMValueRef base, LLVMValueRef index) {
    LLVMValueRef p = LLVMBuildInBoundsGEP2(k->b, t, base, &index, 1, "");
    return LLVMBuildLoad2(k->b, t, p, "");
}

void cg_store(cg_kernel *k, LLVMValueRef value, LLVMValueRef base, LLVMValueRef index) {
    LLVMValueRef p = LLVMBuildInBoundsGEP2(k->b, LLVMTypeOf(value), base, &index, 1, "");
    LLVMBuildStore(k->b, value, p);
}

LLVMValueRef cg_load_input(cg_kernel *k, int i, LLVMValueRef index) {
    const ir_node *x = &k->g->nodes[k->node->inputs[i]];
    if (x->op == IR_CONST) {
        if (x->dtype == IR_I32)
            return LLVMConstInt(k->t.i32, (unsigned long long)(int64_t)x->value, 1);
        return LLVMConstReal(k->t.real, x->value);
    }
    return cg_load(k, cg_type(k, x->dtype), k->in[i], index);
}

LLVMValueRef cg_convert(cg_kernel *k, LLVMValueRef v, ir_dtype from, ir_dtype to) {
    if (from == to)
        return v;
    if (to == IR_F32)
        return LLVMBuildSIToFP(k->b, v, k->t.real, "");
    /* fptosi is poison out of range; the saturating form is defined everywhere. */
    return cg_intrinsic2(k, "llvm.fptosi.sat", k->t.i32, k->t.real, v);
}

static LLVMValueRef call_intrinsic(cg_kernel *k, const char *name, LLVMTypeRef *overloads, int n_overloads,
                                   LLVMValueRef *args, int n_args) {
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    LLVMValueRef fn = LLVMGetIntrinsicDeclaration(k->mod, id, overloads, (size_t)n_overloads);
    LLVMTypeRef fn_type = LLVMIntrinsicGetType(k->ctx, id, overloads, (size_t)n_overloads);
    return LLVMBuildCall2(k->b, fn_type, fn, args, (unsigned)n_args, "");
}

LLVMValueRef cg_intrinsic(cg_kernel *k, const char *name, LLVMTypeRef t, LLVMValueRef *args, int n_args) {
    return call_intrinsic(k, name, &t, 1, args, n_args);
}

LLVMValueRef cg_intrinsic2(cg_kernel *k, const char *name, LLVMTypeRef ret, LLVMTypeRef arg, LLVMValueRef v) {
    LLVMTypeRef overloads[2] = {ret, arg};
    return call_intrinsic(k, name, overloads, 2, &v, 1);
}

LLVMValueRef cg_fmuladd(cg_kernel *k, LLVMTypeRef t, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c) {
    LLVMValueRef args[3] = {a, b, c};
    return cg_intrinsic(k, "llvm.fmuladd", t, args, 3);
}
