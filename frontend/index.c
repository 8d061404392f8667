/*
 * index.c - lowering x[...]: numpy-style basic indexing, and lookup.
 *
 * Each item of the index picks from one dim of x, left to right:
 *   i        the element at i (negative counts from the end); the dim goes
 *   lo:hi    elements [lo, hi), either bound optional, negative from the
 *            end, clamped to the dim as Python does; the dim stays
 *   :        the whole dim
 *   ...      as many whole dims as the items leave unnamed (at most one)
 * Bounds are compile-time integers, so x[...] is slices (one per cut dim)
 * and one reshape that drops the dims an integer picked; their gradients
 * are the usual ones.  The batch dim can only be taken whole.
 *
 * One item that is a tensor of integers is a lookup instead: E[ids] is
 * gather(E, ids), the rows of a table (or entries of a vector) at ids.
 */
#include "lower_internal.h"

/* One item as a compile-time integer; -1 after reporting. */
static int index_int(lower *l, const ast_expr *e, int64_t *out) {
    value v = eval(l, e);
    if (v.kind == V_INT) {
        *out = v.i;
        return 0;
    }
    if (v.kind != V_ERROR)
        error_at(l, e->loc, "an index or slice bound must be an integer known at compile time, got %s", kind_name(v));
    return -1;
}

/* lo:hi on a dim of n elements -> [*start, *stop); -1 after reporting. */
static int read_slice(lower *l, const ast_expr *item, int64_t n, int64_t *start, int64_t *stop) {
    *start = 0;
    *stop = n;
    if ((item->lhs && index_int(l, item->lhs, start)) || (item->rhs && index_int(l, item->rhs, stop)))
        return -1;
    if (*start < 0)
        *start += n;
    if (*stop < 0)
        *stop += n;
    *start = *start < 0 ? 0 : *start > n ? n : *start;
    *stop = *stop < 0 ? 0 : *stop > n ? n : *stop;
    if (*start >= *stop) {
        error_at(l, item->loc, "this slice selects nothing from a dimension of %lld", (long long)n);
        return -1;
    }
    return 0;
}

/* The dim each item names: items before an ellipsis from the left, after
 * it from the right; -1 after reporting. */
static int assign_dims(lower *l, const ast_expr *e, int rank, int *dim_of) {
    int ellipsis = -1;
    for (int k = 0; k < e->n_args; k++) {
        if (e->args[k].name) {
            error_at(l, e->args[k].name_loc, "an index takes no keyword arguments");
            return -1;
        }
        if (e->args[k].value->kind == AST_ELLIPSIS) {
            if (ellipsis >= 0) {
                error_at(l, e->args[k].value->loc, "an index has at most one '...'");
                return -1;
            }
            ellipsis = k;
        }
    }
    int named = e->n_args - (ellipsis >= 0);
    if (named > rank) {
        error_at(l, e->loc, "%d indices for a tensor of rank %d", named, rank);
        return -1;
    }
    for (int k = 0; k < e->n_args; k++)
        dim_of[k] = ellipsis < 0 || k < ellipsis ? k : k == ellipsis ? -1 : rank - (e->n_args - k);
    return 0;
}

/* x[i, lo:hi, ...] on the tensor x. */
static value basic_index(lower *l, const ast_expr *e, value x) {
    ir_shape s = *shape_of(l, x), out = ir_shape_scalar();
    int dim_of[IR_MAX_RANK + 1], dropped[IR_MAX_RANK] = {0};
    if (e->n_args > IR_MAX_RANK + 1) {
        error_at(l, e->loc, "%d indices for a tensor of rank %d", e->n_args, s.rank);
        return ERR;
    }
    if (assign_dims(l, e, s.rank, dim_of))
        return ERR;
    int node = x.node;
    for (int k = 0; k < e->n_args; k++) {
        const ast_expr *item = e->args[k].value;
        int d = dim_of[k];
        if (d < 0 || (item->kind == AST_SLICE && !item->lhs && !item->rhs))
            continue; /* ... or a whole dim */
        if (ir_is_batch_dim(&s, d)) {
            error_at(l, item->loc, "the batch dimension can only be taken whole (':')");
            return ERR;
        }
        int64_t start, stop;
        if (item->kind == AST_SLICE) {
            if (read_slice(l, item, s.dims[d], &start, &stop))
                return ERR;
        } else {
            if (index_int(l, item, &start))
                return ERR;
            if (start < -s.dims[d] || start >= s.dims[d]) {
                error_at(l, item->loc, "index %lld is out of range for a dimension of %lld", (long long)start,
                         (long long)s.dims[d]);
                return ERR;
            }
            start += start < 0 ? s.dims[d] : 0;
            stop = start + 1;
            dropped[d] = 1;
        }
        if (start > 0 || stop < s.dims[d])
            node = ir_slice(l->g, node, d, start, stop);
        if (node < 0)
            return graph_error(l, e->loc);
    }
    const ir_shape *cut = &l->g->nodes[node].shape;
    for (int d = 0; d < cut->rank; d++)
        if (!dropped[d]) {
            out.batch_mask |= (uint32_t)ir_is_batch_dim(cut, d) << out.rank;
            out.dims[out.rank++] = cut->dims[d];
        }
    if (out.rank == cut->rank)
        return tensor(node);
    int id = ir_reshape(l->g, node, &out);
    return id < 0 ? graph_error(l, e->loc) : tensor(id);
}

value lower_index(lower *l, const ast_expr *e) {
    value x = eval(l, e->lhs);
    if (x.kind == V_ERROR)
        return ERR;
    if (x.kind != V_TENSOR) {
        error_at(l, e->lhs->loc, "only a tensor can be indexed, got %s", kind_name(x));
        return ERR;
    }
    const ast_expr *first = e->args[0].value;
    if (e->n_args == 1 && first->kind != AST_SLICE && first->kind != AST_ELLIPSIS && !e->args[0].name) {
        value i = eval(l, first);
        if (i.kind == V_TENSOR) /* a lookup: E[ids] */
            return lower_gather(l, e->loc, x, i);
        if (i.kind == V_ERROR)
            return ERR;
    }
    return basic_index(l, e, x);
}
