/*
 * cg_reduce.c - reductions (reduce_sum, reduce_max, sum_to) and numel.
 *
 * All three reductions are one scheme: a flag per input dim says whether it
 * is kept (it survives in the output) or reduced, and the output is
 * row-major over the kept dims in order, whatever keepdims or sum_to's
 * leading and size-1 dims look like.  Literal size-1 dims are dropped and
 * adjacent dims of the same kind merged, leaving alternating groups.
 *
 * The loops are ordered for the memory access, not for the math:
 *   - when the innermost group is reduced, each output element gets one
 *     accumulator, and the reduced groups run inside the kept ones, so the
 *     input streams contiguously into a register;
 *   - when the innermost group is kept (a column sum, the bias gradient
 *     sum_to([B,N] -> [N])), a tile of up to CG_TILE accumulators covers
 *     that group and the reduced groups run around a contiguous loop over
 *     the tile, so every load is unit-stride.
 * With the runtime's threads a reduction of at least SPLIT_MIN_ELEMENTS is
 * outlined and split: over its outermost group when that is kept (each
 * thread owns whole output rows: softmax's max and sum, layer norm's mean
 * and variance), else over chunks of SPLIT_COLUMNS of the innermost group
 * when that is kept (the bias gradient: each thread owns some columns and
 * reads its part of every row).  Either way each output element is still
 * one thread's sum in the same order, so results do not change.
 * Sums of f32 accumulate in f64 and are rounded once at the end: a long
 * reduction (a loss over a large batch) then loses nothing to the
 * summation order, and the f64 adds carry the reassoc flag so the
 * vectoriser may split them into partial sums.  Max accumulates in the
 * element type (it is exact), i32 sums wrap like the rest of i32 math.
 *
 * A reduction may be the root of a fused group (passes/fuse.c): its input
 * is then not read from a buffer but computed, element by element as the
 * loops reach it, from the group's inputs, which have the reduced
 * tensor's shape (read at the same index) or one element (read at 0):
 * the cross-entropy's one_hot * log_softmax, a sum of squares.
 */
#include "cg_internal.h"

#define CG_TILE 256

enum { SPLIT_MIN_ELEMENTS = 1 << 16, SPLIT_COLUMNS = 64 };

typedef struct reduction {
    int n_groups;
    LLVMValueRef extent[IR_MAX_RANK];
    LLVMValueRef in_stride[IR_MAX_RANK];
    LLVMValueRef out_stride[IR_MAX_RANK];
    int reduced[IR_MAX_RANK];
    /* the accumulator */
    int is_max;
    ir_dtype dtype;
    LLVMTypeRef acc_type;
    LLVMValueRef acc_init;
    /* the part written: element offsets of the first output and input
     * element, and the innermost kept group's columns [lo, hi) */
    LLVMValueRef base[2];
    LLVMValueRef lo, hi;
    /* a group root: its input computed from the group's inputs, else NULL */
    const entries *es;
    const fused_group *gr;
    LLVMValueRef *gin; /* the group inputs' buffers */
} reduction;

/* Element `index` of the reduced tensor. */
static LLVMValueRef load_source(cg_kernel *k, const reduction *r, LLVMValueRef index) {
    if (!r->gr)
        return cg_load_input(k, 0, index);
    LLVMValueRef ext[FUSE_MAX_INPUTS];
    for (int i = 0; i < r->gr->n_inputs; i++) {
        const ir_node *x = &k->g->nodes[r->gr->inputs[i]];
        ext[i] = cg_load(k, cg_type(k, x->dtype), r->gin[i], ir_shape_numel(&x->shape) == 1 ? cg_i64(k, 0) : index);
    }
    return cg_group_values(k, r->gr, ext, NULL, NULL);
}

/* The product of the kept dims of x after dim `last`. */
static LLVMValueRef kept_product(cg_kernel *k, const ir_shape *x, const int *kept, int last) {
    LLVMValueRef p = cg_i64(k, 1);
    for (int d = last + 1; d < x->rank; d++)
        if (kept[d])
            p = cg_mul(k, p, cg_dim(k, x, d));
    return p;
}

static void add_group(cg_kernel *k, reduction *r, const ir_shape *x, const int *kept, int first, int last) {
    int g = r->n_groups++;
    r->extent[g] = cg_dims_product(k, x, first, last + 1);
    r->in_stride[g] = cg_dims_product(k, x, last + 1, x->rank);
    r->out_stride[g] = kept[first] ? kept_product(k, x, kept, last) : cg_i64(k, 0);
    r->reduced[g] = !kept[first];
}

static void build_groups(cg_kernel *k, reduction *r, const ir_shape *x, const int *kept) {
    int first = -1, prev = -1;
    r->n_groups = 0;
    for (int d = 0; d < x->rank; d++) {
        if (ir_dim_is_one(x, d))
            continue;
        if (first >= 0 && kept[d] != kept[first]) {
            add_group(k, r, x, kept, first, prev);
            first = -1;
        }
        if (first < 0)
            first = d;
        prev = d;
    }
    if (first >= 0)
        add_group(k, r, x, kept, first, prev);
}

static void init_accumulator(cg_kernel *k, reduction *r) {
    r->dtype = k->node->dtype;
    if (r->dtype == IR_I32) {
        r->acc_type = k->t.i32;
        r->acc_init = LLVMConstInt(k->t.i32, r->is_max ? (unsigned long long)INT32_MIN : 0, 1);
    } else if (r->is_max) {
        r->acc_type = k->t.real;
        r->acc_init = LLVMConstReal(k->t.real, -__builtin_inf());
    } else {
        r->acc_type = k->t.f64;
        r->acc_init = LLVMConstReal(k->t.f64, 0);
    }
}

static LLVMValueRef combine(cg_kernel *k, const reduction *r, LLVMValueRef acc, LLVMValueRef x) {
    LLVMValueRef args[2] = {acc, x};
    if (r->dtype == IR_I32)
        return r->is_max ? cg_intrinsic(k, "llvm.smax", k->t.i32, args, 2) : LLVMBuildAdd(k->b, acc, x, "");
    if (r->is_max) /* IEEE maximum: a NaN anywhere makes the max NaN, as in PyTorch, and
                    * unlike maxnum's the loop vectoriser splits it into vector lanes */
        return cg_intrinsic(k, "llvm.maximum", k->t.real, args, 2);
    if (k->t.real != k->t.f64)
        x = LLVMBuildFPExt(k->b, x, k->t.f64, "");
    LLVMValueRef sum = LLVMBuildFAdd(k->b, acc, x, "");
    LLVMSetFastMathFlags(sum, LLVMFastMathAllowReassoc);
    return sum;
}

static LLVMValueRef finish(cg_kernel *k, const reduction *r, LLVMValueRef acc) {
    return r->acc_type == k->t.f64 && k->t.real != k->t.f64 ? LLVMBuildFPTrunc(k->b, acc, k->t.real, "") : acc;
}

/* A nest over the groups of one kind ([from, to) only); streams: 0 = out, 1 = in. */
static void group_nest(const reduction *r, int reduced, int from, int to, cg_nest *nest) {
    nest->depth = 0;
    nest->n_streams = 2;
    for (int g = from; g < to; g++) {
        if (r->reduced[g] != reduced)
            continue;
        nest->extent[nest->depth] = r->extent[g];
        nest->stride[0][nest->depth] = r->out_stride[g];
        nest->stride[1][nest->depth] = r->in_stride[g];
        nest->depth++;
    }
}

/* ---------------------------------------- innermost group reduced: a register */

typedef struct scalar_ctx {
    const reduction *r;
    LLVMValueRef acc; /* alloca */
} scalar_ctx;

static void accumulate_one(cg_kernel *k, LLVMValueRef *index, void *ctx) {
    scalar_ctx *c = ctx;
    LLVMValueRef acc = LLVMBuildLoad2(k->b, c->r->acc_type, c->acc, "");
    LLVMBuildStore(k->b, combine(k, c->r, acc, load_source(k, c->r, index[1])), c->acc);
}

static void reduce_to_scalar(cg_kernel *k, LLVMValueRef *index, void *ctx) {
    scalar_ctx *c = ctx;
    cg_nest inner;
    group_nest(c->r, 1, 0, c->r->n_groups, &inner);
    LLVMBuildStore(k->b, c->r->acc_init, c->acc);
    cg_emit_nest(k, &inner, index, accumulate_one, c);
    cg_store(k, finish(k, c->r, LLVMBuildLoad2(k->b, c->r->acc_type, c->acc, "")), k->out, index[0]);
}

static void emit_inner_reduced(cg_kernel *k, const reduction *r) {
    scalar_ctx c = {r, cg_alloca(k, r->acc_type, "acc")};
    cg_nest outer;
    LLVMValueRef base[2] = {r->base[0], r->base[1]};
    group_nest(r, 0, 0, r->n_groups, &outer);
    cg_emit_nest(k, &outer, base, reduce_to_scalar, &c);
}

/* ------------------------------------------ innermost group kept: a tile */

typedef struct tile_ctx {
    const reduction *r;
    LLVMValueRef tile;  /* alloca [CG_TILE x acc] */
    LLVMValueRef start; /* first element of the innermost group in this tile */
    LLVMValueRef count; /* elements in this tile */
} tile_ctx;

static void accumulate_tile(cg_kernel *k, LLVMValueRef *index, void *ctx) {
    tile_ctx *c = ctx;
    cg_loop j = cg_loop_begin(k, c->count, "j");
    LLVMValueRef acc = cg_load(k, c->r->acc_type, c->tile, j.index);
    LLVMValueRef x = load_source(k, c->r, cg_add(k, index[1], j.index));
    cg_store(k, combine(k, c->r, acc, x), c->tile, j.index);
    cg_loop_end(k, &j);
}

/* One tile of output elements at index[0] + start .. + count. */
static void reduce_tile(cg_kernel *k, tile_ctx *c, LLVMValueRef *index) {
    cg_loop j = cg_loop_begin(k, c->count, "j");
    cg_store(k, c->r->acc_init, c->tile, j.index);
    cg_loop_end(k, &j);

    cg_nest inner;
    LLVMValueRef base[2] = {index[0], cg_add(k, index[1], c->start)};
    group_nest(c->r, 1, 0, c->r->n_groups, &inner);
    cg_emit_nest(k, &inner, base, accumulate_tile, c);

    j = cg_loop_begin(k, c->count, "j");
    LLVMValueRef acc = cg_load(k, c->r->acc_type, c->tile, j.index);
    cg_store(k, finish(k, c->r, acc), k->out, cg_add(k, index[0], cg_add(k, c->start, j.index)));
    cg_loop_end(k, &j);
}

/* The tiles of the innermost group's columns [r->lo, r->hi). */
static void reduce_tiles(cg_kernel *k, LLVMValueRef *index, void *ctx) {
    tile_ctx *c = ctx;
    const reduction *r = c->r;
    LLVMValueRef n = LLVMBuildSub(k->b, r->hi, r->lo, "");
    if (LLVMIsAConstantInt(n) && LLVMConstIntGetSExtValue(n) <= CG_TILE) {
        c->start = r->lo;
        c->count = n;
        reduce_tile(k, c, index);
        return;
    }
    LLVMValueRef tiles = LLVMBuildUDiv(k->b, LLVMBuildAdd(k->b, n, cg_i64(k, CG_TILE - 1), ""), cg_i64(k, CG_TILE), "");
    cg_loop t = cg_loop_begin(k, tiles, "t");
    LLVMValueRef start = cg_mul(k, t.index, cg_i64(k, CG_TILE));
    c->start = cg_add(k, r->lo, start);
    LLVMValueRef left = LLVMBuildSub(k->b, n, start, "");
    LLVMValueRef full = LLVMBuildICmp(k->b, LLVMIntUGT, left, cg_i64(k, CG_TILE), "");
    c->count = LLVMBuildSelect(k->b, full, cg_i64(k, CG_TILE), left, "");
    reduce_tile(k, c, index);
    cg_loop_end(k, &t);
}

static void emit_inner_kept(cg_kernel *k, const reduction *r) {
    tile_ctx c = {r, cg_alloca(k, LLVMArrayType2(r->acc_type, CG_TILE), "tile"), NULL, NULL};
    cg_nest outer;
    LLVMValueRef base[2] = {r->base[0], r->base[1]};
    group_nest(r, 0, 0, r->n_groups - 1, &outer);
    cg_emit_nest(k, &outer, base, reduce_tiles, &c);
}

/* ----------------------------------------------------------------- kernels */

/* The reduction of the node's input over the dims not kept, all of it. */
static void setup(cg_kernel *k, reduction *r, const int *kept, int is_max) {
    r->is_max = is_max;
    init_accumulator(k, r);
    build_groups(k, r, &k->g->nodes[k->node->inputs[0]].shape, kept);
    r->base[0] = r->base[1] = cg_i64(k, 0);
    r->lo = cg_i64(k, 0);
    r->hi = r->n_groups > 0 ? r->extent[r->n_groups - 1] : cg_i64(k, 1);
}

static void emit_groups(cg_kernel *k, const reduction *r) {
    if (r->n_groups > 0 && !r->reduced[r->n_groups - 1])
        emit_inner_kept(k, r);
    else
        emit_inner_reduced(k, r);
}

/* How the reduction splits over threads: by its outermost group's rows,
 * by chunks of its innermost group's columns, or not at all. */
typedef enum { WHOLE, BY_ROWS, BY_COLUMNS } split_kind;

static split_kind split_of(cg_kernel *k, const reduction *r) {
    if (!k->parallel || r->n_groups < 2 || ir_shape_numel(&k->g->nodes[k->node->inputs[0]].shape) < SPLIT_MIN_ELEMENTS)
        return WHOLE;
    if (!r->reduced[0])
        return BY_ROWS;
    return r->reduced[r->n_groups - 1] ? WHOLE : BY_COLUMNS;
}

/* gr: the group the reduction is the root of, or NULL (then es, gin too). */
static int emit_reduction(cg_kernel *k, const int *kept, int is_max, const entries *es, const fused_group *gr,
                          LLVMValueRef *gin) {
    reduction r;
    setup(k, &r, kept, is_max);
    r.es = es, r.gr = gr, r.gin = gin;
    split_kind how = split_of(k, &r);
    if (how == WHOLE) {
        emit_groups(k, &r);
        return 0;
    }
    LLVMValueRef n = how == BY_ROWS ? r.extent[0] : LLVMBuildUDiv(k->b, cg_add(k, r.hi, cg_i64(k, SPLIT_COLUMNS - 1)),
                                                                  cg_i64(k, SPLIT_COLUMNS), "");
    const ir_shape *in = &k->g->nodes[k->node->inputs[0]].shape;
    LLVMValueRef work = cg_dims_product(k, in, 0, in->rank);
    cg_outline o;
    cg_outline_begin(k, &o, "rows", gin, gr ? gr->n_inputs : 0);
    o.work = work, o.min_work = SPLIT_MIN_ELEMENTS;
    setup(k, &r, kept, is_max); /* with this function's batch */
    r.es = es, r.gr = gr, r.gin = gin;
    if (how == BY_ROWS) {
        r.base[0] = cg_mul(k, o.begin, r.out_stride[0]);
        r.base[1] = cg_mul(k, o.begin, r.in_stride[0]);
        r.extent[0] = LLVMBuildSub(k->b, o.end, o.begin, "");
    } else {
        LLVMValueRef hi = cg_mul(k, o.end, cg_i64(k, SPLIT_COLUMNS));
        r.lo = cg_mul(k, o.begin, cg_i64(k, SPLIT_COLUMNS));
        r.hi = LLVMBuildSelect(k->b, LLVMBuildICmp(k->b, LLVMIntULT, hi, r.hi, ""), hi, r.hi, "");
    }
    emit_groups(k, &r);
    cg_outline_end(k, &o, n);
    return 0;
}

/* Which input dims the node's reduction keeps: those not in `axes`, or
 * for sum_to those where the output, aligned right, has a dim that is not
 * a literal 1. */
static void kept_dims(cg_kernel *k, int *kept) {
    const ir_shape *x = &k->g->nodes[k->node->inputs[0]].shape, *to = &k->node->shape;
    for (int d = 0; d < IR_MAX_RANK; d++) {
        int t = to->rank - x->rank + d;
        kept[d] = k->node->op == IR_SUM_TO ? t >= 0 && !ir_dim_is_one(to, t) : !((k->node->axes >> d) & 1);
    }
}

static int reduce_node(cg_kernel *k, const entries *es, const fused_group *gr, LLVMValueRef *gin) {
    int kept[IR_MAX_RANK];
    kept_dims(k, kept);
    return emit_reduction(k, kept, k->node->op == IR_REDUCE_MAX, es, gr, gin);
}

int cg_kernel_reduce_sum(cg_kernel *k) { return reduce_node(k, NULL, NULL, NULL); }

int cg_kernel_reduce_max(cg_kernel *k) { return reduce_node(k, NULL, NULL, NULL); }

int cg_kernel_sum_to(cg_kernel *k) { return reduce_node(k, NULL, NULL, NULL); }

int cg_kernel_reduce_group(cg_kernel *k, const entries *es, const fused_group *gr, const LLVMValueRef *in) {
    LLVMValueRef gin[FUSE_MAX_INPUTS];
    for (int i = 0; i < gr->n_inputs; i++)
        gin[i] = in[i];
    return reduce_node(k, es, gr, gin);
}

/* f32 scalar: the number of elements of x over `axes`, a batch dim counting
 * the run-time batch. */
int cg_kernel_numel(cg_kernel *k) {
    const ir_shape *x = &k->g->nodes[k->node->inputs[0]].shape;
    LLVMValueRef count = cg_i64(k, 1);
    for (int d = 0; d < x->rank; d++)
        if ((k->node->axes >> d) & 1)
            count = cg_mul(k, count, cg_dim(k, x, d));
    cg_store(k, LLVMBuildSIToFP(k->b, count, k->t.real, ""), k->out, cg_i64(k, 0));
    return 0;
}
