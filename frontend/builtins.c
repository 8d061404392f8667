/*
 * builtins.c - the functions built into the language: exp, sum, reshape,
 * one_hot, conv, dropout and the rest.
 *
 * A builtin gets its call's arguments already evaluated (a list argument,
 * such as a shape or several axes, is left for the builtin to read), checks
 * their number, keywords and kinds, and appends IR nodes; the node
 * builders' shape rules check the tensors.  Numbers fold where the result
 * is a number (float(2), max(1, 2)).  Layers with parameters (dense,
 * conv2d, ...) are not here: they are mdl functions in the prelude, built
 * on these.
 */
#include <string.h>

#include <stdlib.h>

#include "lower_internal.h"

/* ------------------------------------------------------ argument checks */

static value need_tensor(lower *l, const ast_expr *e, args *a, int i, const char *fn) {
    if (i < 0)
        return ERR;
    value v = a->v[i];
    if (is_number(v))
        return as_tensor(l, v, v.kind == V_INT ? IR_I32 : IR_F32);
    if (v.kind != V_TENSOR && v.kind != V_ERROR) {
        error_at(l, a->arg[i].value ? a->arg[i].value->loc : e->loc, "%s() expects a tensor, got %s", fn,
                 kind_name(v));
        return ERR;
    }
    return v;
}

/* The checks every builtin starts with: min to max positional arguments,
 * and no keywords but `keys` (NULL-terminated; NULL: none). */
static int check_call(lower *l, const ast_expr *e, args *a, int min, int max, const char *const *keys) {
    static const char *const none[] = {NULL};
    const char *fn = e->lhs->name;
    int n = n_positional(a);
    if (n < min || n > max) {
        if (min == max)
            error_at(l, e->loc, "%s() takes %d argument%s, got %d", fn, min, min == 1 ? "" : "s", n);
        else
            error_at(l, e->loc, "%s() takes %d to %d arguments, got %d", fn, min, max, n);
        return -1;
    }
    return check_keywords(l, a, fn, keys ? keys : none);
}

/* check_call, then the first argument as a tensor; ERR once reported. */
static value first_tensor(lower *l, const ast_expr *e, args *a, int min, int max, const char *const *keys) {
    return check_call(l, e, a, min, max, keys) ? ERR : need_tensor(l, e, a, 0, e->lhs->name);
}

/* --------------------------------------------------------- the builtins */

static value unary_builtin(lower *l, const ast_expr *e, args *a, ir_op op, int float_only) {
    value x = first_tensor(l, e, a, 1, 1, NULL);
    if (x.kind == V_ERROR)
        return ERR;
    if (float_only)
        x = cast_to(l, x, IR_F32, e->loc);
    int id = ir_add(l->g, op, x.node, -1, -1);
    return id < 0 ? graph_error(l, e->loc) : tensor(id);
}

#define UNARY_BUILTIN(fname, op, float_only)                                                       \
    static value b_##fname(lower *l, const ast_expr *e, args *a) {                                 \
        return unary_builtin(l, e, a, op, float_only);                                             \
    }
UNARY_BUILTIN(exp, IR_EXP, 1)
UNARY_BUILTIN(log, IR_LOG, 1)
UNARY_BUILTIN(sqrt, IR_SQRT, 1)
UNARY_BUILTIN(abs, IR_ABS, 0)
UNARY_BUILTIN(sign, IR_SIGN, 0)
UNARY_BUILTIN(tanh, IR_TANH, 1)
UNARY_BUILTIN(sigmoid, IR_SIGMOID, 1)
UNARY_BUILTIN(relu, IR_RELU, 0)
UNARY_BUILTIN(erf, IR_ERF, 1)
UNARY_BUILTIN(stop_gradient, IR_STOP_GRADIENT, 0)

/* float(x) and int(x): a number converts at compile time (int truncates),
 * a tensor by a cast. */
static value conversion(lower *l, const ast_expr *e, args *a, ir_dtype to) {
    const char *fn = e->lhs->name;
    if (check_call(l, e, a, 1, 1, NULL))
        return ERR;
    if (is_number(a->v[0]) && to == IR_I32) {
        double x = num(a->v[0]);
        if (!(x >= -9223372036854775808.0 && x < 9223372036854775808.0)) { /* NaN too */
            error_at(l, e->loc, "%s(%g): the value does not fit in a 64-bit int", fn, x);
            return ERR;
        }
        return int_value((int64_t)x);
    }
    if (is_number(a->v[0]))
        return float_value(num(a->v[0]));
    value x = need_tensor(l, e, a, 0, fn);
    return x.kind == V_ERROR ? ERR : cast_to(l, x, to, e->loc);
}
static value b_float(lower *l, const ast_expr *e, args *a) { return conversion(l, e, a, IR_F32); }
static value b_int(lower *l, const ast_expr *e, args *a) { return conversion(l, e, a, IR_I32); }

static value b_where(lower *l, const ast_expr *e, args *a) {
    if (check_call(l, e, a, 3, 3, NULL))
        return ERR;
    value c = need_tensor(l, e, a, 0, "where");
    value x = a->v[1], y = a->v[2];
    if (c.kind == V_ERROR || x.kind == V_ERROR || y.kind == V_ERROR)
        return ERR;
    if (x.kind == V_BATCH || y.kind == V_BATCH) {
        error_at(l, e->loc, "where(): the batch dimension is not a value");
        return ERR;
    }
    promote(l, &x, &y, e->loc);
    if (x.kind == V_ERROR || y.kind == V_ERROR)
        return ERR;
    int id = ir_add(l->g, IR_WHERE, c.node, x.node, y.node);
    return id < 0 ? graph_error(l, e->loc) : tensor(id);
}

/* Reads an `axis=` argument (an int, a negative int, or a list of them)
 * into a bit mask over a tensor of the given rank.  No axis: all. */
static int read_axes(lower *l, const args *a, int i, int rank, uint32_t *axes) {
    if (i < 0) {
        *axes = rank ? (uint32_t)((1u << rank) - 1) : 0;
        return 0;
    }
    const ast_expr *e = a->arg[i].value;
    const ast_expr *items[IR_MAX_RANK];
    int n = 0;
    if (e->kind == AST_LIST) {
        for (int k = 0; k < e->n_args && n < IR_MAX_RANK; k++)
            items[n++] = e->args[k].value;
    } else {
        items[n++] = e;
    }
    *axes = 0;
    for (int k = 0; k < n; k++) {
        value v = eval(l, items[k]);
        if (v.kind == V_ERROR)
            return -1;
        if (v.kind != V_INT || v.i < -rank || v.i >= rank) {
            error_at(l, items[k]->loc, "axis must be an integer in [%d, %d] for a tensor of rank %d", -rank,
                     rank - 1, rank);
            return -1;
        }
        *axes |= 1u << (v.i < 0 ? v.i + rank : v.i);
    }
    return 0;
}

static int read_flag(lower *l, const args *a, const char *name, int *flag) {
    int i = find_arg(a, name, 99);
    *flag = 0;
    if (i < 0)
        return 0;
    if (a->v[i].kind != V_INT) {
        error_at(l, a->arg[i].value->loc, "'%s' must be true or false", name);
        return -1;
    }
    *flag = a->v[i].i != 0;
    return 0;
}

/* sum, mean, max and min over axes.  mean divides by the element count,
 * which is only known at run time when the batch dim is reduced.  sum and
 * mean also take the axis positionally, sum(x, 1), as numpy does; max and
 * min cannot (max(x, y) is the elementwise maximum). */
static value reduction(lower *l, const ast_expr *e, args *a, const char *fn) {
    static const char *const keys[] = {"axis", "keepdims", NULL};
    int positional_axis = strcmp(fn, "sum") == 0 || strcmp(fn, "mean") == 0 ? 1 : 99;
    if (check_call(l, e, a, 1, positional_axis == 1 ? 2 : 1, keys))
        return ERR;
    if (n_positional(a) == 2 && find_arg(a, "axis", 99) >= 0) {
        error_at(l, a->arg[find_arg(a, "axis", 99)].name_loc, "%s() got the axis twice (positionally and as axis=)",
                 fn);
        return ERR;
    }
    value x = need_tensor(l, e, a, 0, fn);
    if (x.kind == V_ERROR)
        return ERR;
    const ir_shape s = *shape_of(l, x);
    uint32_t axes;
    int keep;
    if (read_axes(l, a, find_arg(a, "axis", positional_axis), s.rank, &axes) ||
        read_flag(l, a, "keepdims", &keep))
        return ERR;
    ir_graph *g = l->g;
    int is_min = strcmp(fn, "min") == 0, is_max = strcmp(fn, "max") == 0;
    if (is_min)
        x = tensor(ir_add(g, IR_NEG, x.node, -1, -1));
    int id = ir_reduce(g, (is_max || is_min) ? IR_REDUCE_MAX : IR_REDUCE_SUM, x.node, axes, keep);
    if (id < 0)
        return graph_error(l, e->loc);
    if (is_min)
        id = ir_add(g, IR_NEG, id, -1, -1);
    if (strcmp(fn, "mean") == 0) {
        int v = cast_to(l, tensor(id), IR_F32, e->loc).node;
        int count;
        if (s.batch_mask & axes) {
            count = ir_numel(g, x.node, axes);
        } else {
            int64_t c = 1;
            for (int i = 0; i < s.rank; i++)
                c *= (axes >> i) & 1 ? s.dims[i] : 1;
            count = ir_scalar(g, (double)c);
        }
        id = ir_add(g, IR_DIV, v, count, -1);
    }
    return id < 0 ? graph_error(l, e->loc) : tensor(id);
}

static value b_sum(lower *l, const ast_expr *e, args *a) { return reduction(l, e, a, "sum"); }
static value b_mean(lower *l, const ast_expr *e, args *a) { return reduction(l, e, a, "mean"); }

/* max(x[, axis]) reduces; max(a, b) is elementwise.  Same for min. */
static value min_max(lower *l, const ast_expr *e, args *a, int is_max) {
    const char *fn = is_max ? "max" : "min";
    if (n_positional(a) == 1)
        return reduction(l, e, a, fn);
    if (check_call(l, e, a, 1, 2, NULL))
        return ERR;
    value x = a->v[0], y = a->v[1];
    if (x.kind == V_ERROR || y.kind == V_ERROR)
        return ERR;
    if (is_number(x) && is_number(y))
        return (is_max ? num(x) >= num(y) : num(x) <= num(y)) ? x : y;
    promote(l, &x, &y, e->loc);
    if (x.kind == V_ERROR || y.kind == V_ERROR)
        return ERR;
    int id = ir_add(l->g, is_max ? IR_MAX : IR_MIN, x.node, y.node, -1);
    return id < 0 ? graph_error(l, e->loc) : tensor(id);
}
static value b_max(lower *l, const ast_expr *e, args *a) { return min_max(l, e, a, 1); }
static value b_min(lower *l, const ast_expr *e, args *a) { return min_max(l, e, a, 0); }

/* reshape(x, [B, 4, -1]): one entry may be -1 (inferred); the batch name
 * keeps the batch dimension. */
static value b_reshape(lower *l, const ast_expr *e, args *a) {
    value x = first_tensor(l, e, a, 2, 2, NULL);
    if (x.kind == V_ERROR)
        return ERR;
    const ast_expr *list = a->arg[1].value;
    if (list->kind != AST_LIST || list->n_args > IR_MAX_RANK) {
        error_at(l, list->loc, "reshape() takes the new shape as a list, e.g. [B, 4]");
        return ERR;
    }
    ir_shape s = ir_shape_scalar(), from = *shape_of(l, x);
    int infer = -1;
    int64_t known = 1, total = 1;
    for (int i = 0; i < from.rank; i++)
        total *= (from.batch_mask >> i) & 1 ? 1 : from.dims[i];
    s.rank = list->n_args;
    for (int i = 0; i < s.rank; i++) {
        value d = eval(l, list->args[i].value);
        if (d.kind == V_BATCH) {
            s.dims[i] = l->batch_size;
            s.batch_mask |= 1u << i;
        } else if (d.kind == V_INT && d.i == -1 && infer < 0) {
            infer = i;
        } else if (d.kind == V_INT && d.i > 0) {
            s.dims[i] = d.i;
            known *= d.i;
        } else {
            if (d.kind != V_ERROR)
                error_at(l, list->args[i].value->loc, "a dimension must be a positive integer, -1 or the batch");
            return ERR;
        }
    }
    if (infer >= 0) {
        if (known == 0 || total % known) {
            error_at(l, list->loc, "cannot infer the -1 dimension");
            return ERR;
        }
        s.dims[infer] = total / known;
    }
    int id = ir_reshape(l->g, x.node, &s);
    return id < 0 ? graph_error(l, e->loc) : tensor(id);
}

/* The argument for `name`, given as a keyword or at `position`; -1 if
 * absent, -2 after reporting that it was given both ways. */
static int pick_arg(lower *l, const args *a, const char *fn, const char *name, int position) {
    int k = find_arg(a, name, 99), p = -1;
    for (int i = 0, n = 0; i < a->n && p < 0; i++)
        if (!a->arg[i].name && n++ == position)
            p = i;
    if (k >= 0 && p >= 0) {
        error_at(l, a->arg[k].name_loc, "%s() got '%s' twice (positionally and as %s=)", fn, name, name);
        return -2;
    }
    return k >= 0 ? k : p;
}

/* An integer argument in [lo, hi]; *out keeps its default when the
 * argument is absent and not `required`. */
static int int_arg(lower *l, const ast_expr *e, const args *a, const char *fn, const char *name, int position,
                   int required, int64_t lo, int64_t hi, int64_t *out) {
    int i = pick_arg(l, a, fn, name, position);
    if (i == -2)
        return -1;
    if (i < 0) {
        if (required)
            error_at(l, e->loc, "%s() needs the argument '%s'", fn, name);
        return required ? -1 : 0;
    }
    const ast_expr *arg = a->arg[i].value;
    value v = arg->kind == AST_LIST ? ERR : a->v[i];
    if (v.kind == V_ERROR && arg->kind != AST_LIST)
        return -1;
    if (v.kind != V_INT || v.i < lo || v.i > hi) {
        if (hi >= INT32_MAX)
            error_at(l, arg->loc, "%s(): '%s' must be an integer of at least %lld", fn, name, (long long)lo);
        else
            error_at(l, arg->loc, "%s(): '%s' must be an integer in [%lld, %lld]", fn, name, (long long)lo,
                     (long long)hi);
        return -1;
    }
    *out = v.i;
    return 0;
}

static value node_or_error(lower *l, const ast_expr *e, int id) { return id < 0 ? graph_error(l, e->loc) : tensor(id); }

/* one_hot(labels, n): f32 [.., n] from integer labels [..]; f32 labels are
 * truncated.  A label outside [0, n) gives a row of zeros. */
static value b_one_hot(lower *l, const ast_expr *e, args *a) {
    static const char *const keys[] = {"n", NULL};
    value labels = first_tensor(l, e, a, 1, 2, keys);
    int64_t n = 0;
    if (labels.kind == V_ERROR || int_arg(l, e, a, "one_hot", "n", 1, 1, 1, INT32_MAX, &n))
        return ERR;
    labels = cast_to(l, labels, IR_I32, e->loc);
    return labels.kind == V_ERROR ? ERR : node_or_error(l, e, ir_one_hot(l->g, labels.node, n));
}

/* argmax(x, axis = -1): i32 index of the first maximum, the axis dropped. */
static value b_argmax(lower *l, const ast_expr *e, args *a) {
    static const char *const keys[] = {"axis", NULL};
    value x = first_tensor(l, e, a, 1, 2, keys);
    if (x.kind == V_ERROR)
        return ERR;
    int rank = shape_of(l, x)->rank;
    int64_t axis = -1;
    if (rank == 0) {
        error_at(l, e->loc, "argmax() needs a tensor of rank 1 or more");
        return ERR;
    }
    if (int_arg(l, e, a, "argmax", "axis", 1, 0, -rank, rank - 1, &axis))
        return ERR;
    return node_or_error(l, e, ir_argmax(l->g, x.node, (int)axis));
}

/* transpose(x) swaps the last two axes; transpose(x, [2, 0, 1]) puts input
 * axis perm[d] at position d (negative axes count from the end). */
static value b_transpose(lower *l, const ast_expr *e, args *a) {
    value x = first_tensor(l, e, a, 1, 2, NULL);
    if (x.kind == V_ERROR)
        return ERR;
    if (a->n == 1)
        return node_or_error(l, e, ir_transpose(l->g, x.node, NULL));
    const ast_expr *list = a->arg[1].value;
    int rank = shape_of(l, x)->rank, perm[IR_MAX_RANK];
    if (list->kind != AST_LIST || list->n_args != rank) {
        error_at(l, list->loc, "transpose() takes the new order of the %d axes as a list, e.g. [1, 0]", rank);
        return ERR;
    }
    for (int i = 0; i < rank; i++) {
        value d = eval(l, list->args[i].value);
        if (d.kind == V_ERROR)
            return ERR;
        if (d.kind != V_INT || d.i < -rank || d.i >= rank) {
            error_at(l, list->args[i].value->loc, "an axis must be an integer in [%d, %d]", -rank, rank - 1);
            return ERR;
        }
        perm[i] = (int)d.i;
    }
    return node_or_error(l, e, ir_transpose(l->g, x.node, perm));
}

/* slice(x, axis, start, stop): elements [start, stop) along axis; negative
 * start and stop count from the end, as in Python. */
static value b_slice(lower *l, const ast_expr *e, args *a) {
    static const char *const keys[] = {"axis", "start", "stop", NULL};
    value x = first_tensor(l, e, a, 1, 4, keys);
    if (x.kind == V_ERROR)
        return ERR;
    const ir_shape *s = shape_of(l, x);
    int64_t axis = 0, start = 0, stop = 0;
    if (s->rank == 0) {
        error_at(l, e->loc, "slice() needs a tensor of rank 1 or more");
        return ERR;
    }
    if (int_arg(l, e, a, "slice", "axis", 1, 1, -s->rank, s->rank - 1, &axis))
        return ERR;
    int64_t n = s->dims[axis < 0 ? axis + s->rank : axis];
    if (int_arg(l, e, a, "slice", "start", 2, 1, -n, n, &start) ||
        int_arg(l, e, a, "slice", "stop", 3, 1, -n, n, &stop))
        return ERR;
    start += start < 0 ? n : 0;
    stop += stop < 0 ? n : 0;
    return node_or_error(l, e, ir_slice(l->g, x.node, (int)axis, start, stop));
}

/* concat([a, b, ...], axis): joined along axis (not the batch); an i32
 * tensor joined with f32 ones becomes f32. */
static value b_concat(lower *l, const ast_expr *e, args *a) {
    static const char *const keys[] = {"axis", NULL};
    if (check_call(l, e, a, 1, 2, keys))
        return ERR;
    const ast_expr *list = a->arg[0].value;
    if (list->kind != AST_LIST || list->n_args < 1) {
        error_at(l, list->loc, "concat() takes the tensors as a list, e.g. concat([a, b], 1)");
        return ERR;
    }
    value acc = ERR;
    int64_t axis = 0;
    for (int i = 0; i < list->n_args; i++) {
        value v = eval(l, list->args[i].value);
        if (v.kind == V_ERROR)
            return ERR;
        if (v.kind != V_TENSOR) {
            error_at(l, list->args[i].value->loc, "concat() joins tensors, got %s", kind_name(v));
            return ERR;
        }
        if (i == 0) {
            int rank = shape_of(l, v)->rank;
            if (int_arg(l, e, a, "concat", "axis", 1, 1, -rank, rank - 1, &axis))
                return ERR;
            acc = v;
            continue;
        }
        promote(l, &acc, &v, e->loc);
        if (acc.kind == V_ERROR || v.kind == V_ERROR)
            return ERR;
        acc = node_or_error(l, e, ir_concat(l->g, acc.node, v.node, (int)axis));
        if (acc.kind == V_ERROR)
            return ERR;
    }
    return acc;
}

/* gather(table [V, D], indices [..]) -> [.., D]: row indices[j] of the
 * table (an embedding lookup); an index outside [0, V) gives zeros.  A
 * vector table [V] (a bias per id) gives [..]: it is gathered as [V, 1]. */
value lower_gather(lower *l, src_loc loc, value table, value idx) {
    idx = cast_to(l, idx, IR_I32, loc);
    if (table.kind == V_ERROR || idx.kind == V_ERROR)
        return ERR;
    ir_shape vector = *shape_of(l, table), column = vector, out = *shape_of(l, idx);
    int id;
    if (vector.rank != 1 || vector.batch_mask) {
        id = ir_gather(l->g, table.node, idx.node);
    } else {
        column.rank = 2;
        column.dims[1] = 1;
        int rows = ir_gather(l->g, ir_reshape(l->g, table.node, &column), idx.node);
        id = rows < 0 ? -1 : ir_reshape(l->g, rows, &out);
    }
    return id < 0 ? graph_error(l, loc) : tensor(id);
}

static value b_gather(lower *l, const ast_expr *e, args *a) {
    if (check_call(l, e, a, 2, 2, NULL))
        return ERR;
    value table = need_tensor(l, e, a, 0, "gather"), idx = need_tensor(l, e, a, 1, "gather");
    return table.kind == V_ERROR || idx.kind == V_ERROR ? ERR : lower_gather(l, e->loc, table, idx);
}

/* conv(x, w, stride = 1, padding = 0): x [N, C, H, W], w [O, C, KH, KW]
 * -> [N, O, OH, OW], cross-correlation as in PyTorch's F.conv2d.  The
 * name is conv, not conv2d: the prelude's conv2d is the layer that
 * declares the weights and calls this. */
static value b_conv2d(lower *l, const ast_expr *e, args *a) {
    static const char *const keys[] = {"stride", "padding", NULL};
    if (check_call(l, e, a, 2, 4, keys))
        return ERR;
    value x = need_tensor(l, e, a, 0, "conv"), w = need_tensor(l, e, a, 1, "conv");
    int64_t stride = 1, padding = 0;
    if (x.kind == V_ERROR || w.kind == V_ERROR || int_arg(l, e, a, "conv", "stride", 2, 0, 1, INT32_MAX, &stride) ||
        int_arg(l, e, a, "conv", "padding", 3, 0, 0, INT32_MAX, &padding))
        return ERR;
    x = cast_to(l, x, IR_F32, e->loc);
    w = cast_to(l, w, IR_F32, e->loc);
    if (x.kind == V_ERROR || w.kind == V_ERROR)
        return ERR;
    return node_or_error(l, e, ir_conv2d(l->g, x.node, w.node, (int)stride, (int)padding));
}

/* flatten(x): [N, d1, d2, ...] -> [N, d1 * d2 * ...], the first (batch)
 * dimension kept. */
static value b_flatten(lower *l, const ast_expr *e, args *a) {
    value x = first_tensor(l, e, a, 1, 1, NULL);
    if (x.kind == V_ERROR)
        return ERR;
    const ir_shape *in = shape_of(l, x);
    if (in->rank < 1 || (in->batch_mask & ~1u)) {
        error_at(l, e->loc, "flatten() needs a tensor whose only batch dimension is the first, got rank %d",
                 in->rank);
        return ERR;
    }
    ir_shape s = ir_shape_scalar();
    s.rank = 2;
    s.dims[0] = in->dims[0];
    s.dims[1] = 1;
    s.batch_mask = in->batch_mask;
    for (int i = 1; i < in->rank; i++)
        s.dims[1] *= in->dims[i];
    return node_or_error(l, e, ir_reshape(l->g, x.node, &s));
}

/* max_pool2d(x, size, stride = size) and avg_pool2d: over size x size
 * windows of x [N, C, H, W], no padding (leftover rows and columns are
 * dropped, as PyTorch's default). */
static value pooling(lower *l, const ast_expr *e, args *a, const char *fn, int is_max) {
    static const char *const keys[] = {"size", "stride", NULL};
    value x = first_tensor(l, e, a, 1, 3, keys);
    int64_t size = 0, stride = 0;
    if (x.kind == V_ERROR || int_arg(l, e, a, fn, "size", 1, 1, 1, INT32_MAX, &size))
        return ERR;
    stride = size;
    if (int_arg(l, e, a, fn, "stride", 2, 0, 1, INT32_MAX, &stride))
        return ERR;
    x = cast_to(l, x, IR_F32, e->loc);
    if (x.kind == V_ERROR)
        return ERR;
    int id = is_max ? ir_max_pool2d(l->g, x.node, (int)size, (int)stride)
                    : ir_avg_pool2d(l->g, x.node, (int)size, (int)stride);
    return node_or_error(l, e, id);
}

/* dropout(x, p): while training, each element is zeroed with probability
 * p and the rest scaled by 1 / (1 - p); otherwise x.  Each call has its
 * own mask, drawn again every step. */
static value b_dropout(lower *l, const ast_expr *e, args *a) {
    static const char *const keys[] = {"p", NULL};
    if (check_call(l, e, a, 1, 2, keys))
        return ERR;
    value x = need_tensor(l, e, a, 0, "dropout");
    int i = pick_arg(l, a, "dropout", "p", 1);
    if (x.kind == V_ERROR || i == -2)
        return ERR;
    if (i < 0) {
        error_at(l, e->loc, "dropout() needs the argument 'p'");
        return ERR;
    }
    value p = a->arg[i].value->kind == AST_LIST ? ERR : a->v[i];
    if (!is_number(p) || num(p) < 0 || num(p) >= 1) {
        if (p.kind != V_ERROR || a->arg[i].value->kind == AST_LIST)
            error_at(l, a->arg[i].value->loc, "dropout(): 'p' must be a number in [0, 1)");
        return ERR;
    }
    x = cast_to(l, x, IR_F32, e->loc);
    return x.kind == V_ERROR ? ERR : node_or_error(l, e, ir_dropout(l->g, x.node, num(p)));
}

static value b_max_pool2d(lower *l, const ast_expr *e, args *a) { return pooling(l, e, a, "max_pool2d", 1); }
static value b_avg_pool2d(lower *l, const ast_expr *e, args *a) { return pooling(l, e, a, "avg_pool2d", 0); }

/* ------------------------------------------------- positions in a sequence
 * Where training and generation differ.  Training sees whole windows;
 * the generation entry (lower_generation) sees one position at a time,
 * whose place in the window the runtime writes to the hyper "position"
 * before each step.  These builtins give a model the same text in both:
 * a window's positions become that one position, and an attention's keys
 * and values become a cache of every position so far (a model state of
 * the generation entry that only generate_step writes). */

/* arange(n): i32 [n] = 0, 1, ..., n - 1. */
static value b_arange(lower *l, const ast_expr *e, args *a) {
    int64_t n = 0;
    if (check_call(l, e, a, 1, 1, NULL) || int_arg(l, e, a, "arange", "n", 0, 1, 1, INT32_MAX, &n))
        return ERR;
    ir_shape s = ir_shape_scalar();
    s.rank = 1;
    s.dims[0] = n;
    return node_or_error(l, e, ir_iota(l->g, IR_I32, &s, 0));
}

/* The axis argument of positions() and kv_cache(): not the batch. */
static int sequence_axis(lower *l, const ast_expr *e, const args *a, value x, int64_t fallback, int64_t *axis) {
    const char *fn = e->lhs->name;
    const ir_shape *s = shape_of(l, x);
    *axis = fallback;
    if (int_arg(l, e, a, fn, "axis", 1, 0, -s->rank, s->rank - 1, axis))
        return -1;
    if (*axis < 0)
        *axis += s->rank;
    if (*axis >= s->rank || ir_is_batch_dim(s, (int)*axis)) {
        error_at(l, e->loc, "%s(): axis %lld of a rank-%d tensor is %s", fn, (long long)*axis, s->rank,
                 *axis >= s->rank ? "missing" : "the batch");
        return -1;
    }
    return 0;
}

/* The generation entry's current position, an f32 scalar. */
static int current_position(lower *l) { return ir_get_hyper(l->g, "position", 0); }

/* positions(x, axis = 1): i32 [n], the position in the text of each of
 * x's n entries along axis: 0 .. n - 1 in training; in generation the
 * position being generated. */
static value b_positions(lower *l, const ast_expr *e, args *a) {
    static const char *const keys[] = {"axis", NULL};
    value x = first_tensor(l, e, a, 1, 2, keys);
    int64_t axis;
    if (x.kind == V_ERROR || sequence_axis(l, e, a, x, 1, &axis))
        return ERR;
    ir_shape s = ir_shape_scalar();
    s.rank = 1;
    s.dims[0] = shape_of(l, x)->dims[axis];
    l->uses_positions = 1;
    if (!l->gen)
        return node_or_error(l, e, ir_iota(l->g, IR_I32, &s, 0));
    int pos = ir_cast(l->g, current_position(l), IR_I32);
    return node_or_error(l, e, pos < 0 ? -1 : ir_broadcast(l->g, pos, &s));
}

/* kv_cache(x, axis = 2): x in training.  In generation, where x holds one
 * position along axis, a state of x's shape with the window's length
 * there, whose row at the current position becomes x; that state after
 * the write is the value.  Rows past the position are stale or zero: an
 * attention masks them (positions() of its queries against arange() of
 * its keys). */
static value b_kv_cache(lower *l, const ast_expr *e, args *a) {
    static const char *const keys[] = {"axis", NULL};
    value x = first_tensor(l, e, a, 1, 2, keys);
    int64_t axis;
    if (x.kind == V_ERROR || sequence_axis(l, e, a, x, 2, &axis))
        return ERR;
    x = cast_to(l, x, IR_F32, e->loc);
    l->uses_positions = 1;
    if (x.kind == V_ERROR || !l->gen)
        return x;
    ir_graph *g = l->g;
    ir_shape cache = *shape_of(l, x), row = ir_shape_scalar();
    cache.dims[axis] = l->gen_context;
    row.rank = cache.rank;
    for (int d = 0; d < row.rank; d++)
        row.dims[d] = d == axis ? l->gen_context : 1;
    char name[64];
    snprintf(name, sizeof name, "kv_cache%d", ++l->n_caches);
    char *full = join_name(l->top->prefix, name);
    int slot = ir_add_state(g, full, IR_F32, &cache, IR_INIT_ZEROS, 0, 0);
    free(full);
    if (slot < 0)
        return graph_error(l, e->loc);
    g->params[g->nodes[slot].index].state = IR_STATE_CACHE;
    int here = ir_add(g, IR_EQ, ir_iota(g, IR_F32, &row, (int)axis), current_position(l), -1);
    int next = here < 0 ? -1 : ir_add(g, IR_WHERE, here, x.node, slot);
    int kept = next < 0 ? -1 : ir_add(g, IR_STOP_GRADIENT, next, -1, -1);
    if (kept < 0 || ir_add_gen_update(g, slot, kept) < 0)
        return graph_error(l, e->loc);
    return tensor(next);
}

/* -------------------------------------------------------------- the table */

static const struct builtin {
    const char *name;
    builtin_fn fn;
} builtins[] = {
    {"exp", b_exp},
    {"log", b_log},
    {"sqrt", b_sqrt},
    {"abs", b_abs},
    {"sign", b_sign},
    {"tanh", b_tanh},
    {"sigmoid", b_sigmoid},
    {"relu", b_relu},
    {"where", b_where},
    {"sum", b_sum},
    {"mean", b_mean},
    {"max", b_max},
    {"min", b_min},
    {"float", b_float},
    {"int", b_int},
    {"reshape", b_reshape},
    {"erf", b_erf},
    {"stop_gradient", b_stop_gradient},
    {"one_hot", b_one_hot},
    {"argmax", b_argmax},
    {"transpose", b_transpose},
    {"slice", b_slice},
    {"concat", b_concat},
    {"gather", b_gather},
    {"conv", b_conv2d},
    {"flatten", b_flatten},
    {"max_pool2d", b_max_pool2d},
    {"avg_pool2d", b_avg_pool2d},
    {"dropout", b_dropout},
    {"arange", b_arange},
    {"positions", b_positions},
    {"kv_cache", b_kv_cache},
};

builtin_fn find_builtin(const char *name) {
    for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++)
        if (strcmp(builtins[i].name, name) == 0)
            return builtins[i].fn;
    return NULL;
}

const char *builtin_name(int i) {
    return i >= 0 && (size_t)i < sizeof builtins / sizeof builtins[0] ? builtins[i].name : NULL;
}
