/*
 * scan.c - the scan builtin: a recurrence over one axis of a sequence.
 *
 *     hs, cs, hT, cT = scan(lstm_cell, xs, h0, c0, axis = 1, reverse = false)
 *
 * calls cell(x_t, carry1, carry2, ...) for every step t along `axis` of xs,
 * each call's results becoming the carries of the next.  The cell is not
 * inlined once per step: it is inlined once, as the body of an IR scan
 * (ir/scan.c), whose carries and slice of xs are its arguments.  So the
 * parameters it declares are created once and read at every step, named
 * after the calling statement like any call's.  The result is a tuple: the
 * carries after every step stacked along `axis` ([B, T, H] for a [B, H]
 * carry), then the carries after the last step.
 *
 * The first argument names a function rather than being a value, so scan
 * reads its own arguments instead of taking them evaluated (see call() in
 * lower.c).
 */
#include <string.h>

#include "lower_internal.h"

/* The scan's arguments: the cell, xs and the initial carries, read. */
typedef struct scan_call {
    const ast_fn *cell;
    value xs;
    int n_carries;
    value init[MAX_RESULTS / 2];
    ast_expr *written[1 + MAX_RESULTS / 2]; /* xs and the inits, as written */
    int axis, reverse;
} scan_call;

static const char *const scan_keys[] = {"axis", "reverse", NULL};

/* The function written in mdl closest to a misspelt cell's name. */
static const char *closest_cell(lower *l, const char *typed) {
    suggestion s;
    suggest_begin(&s, typed);
    for (int p = 0; p < 2; p++)
        for (int i = 0; l->progs[p] && i < l->progs[p]->n_fns; i++)
            suggest_offer(&s, l->progs[p]->fns[i]->name);
    return suggest_best(&s);
}

/* The cell's name: a function written in mdl (user or prelude). */
static const ast_fn *read_cell(lower *l, const ast_expr *e) {
    const ast_expr *name = e->n_args > 0 && !e->args[0].name ? e->args[0].value : NULL;
    if (!name || name->kind != AST_NAME) {
        error_at(l, name ? name->loc : e->loc, "scan() needs the name of a function first: scan(cell, xs, h0)");
        return NULL;
    }
    const ast_fn *fn = find_fn(l, name->name);
    if (!fn && find_builtin(name->name))
        error_at(l, name->loc, "'%s' is a builtin; the cell of a scan must be a function written with fn",
                 name->name);
    else if (!fn)
        error_suggesting(l, name->loc, closest_cell(l, name->name), "unknown function '%s'", name->name);
    return fn;
}

/* An integer keyword argument, `fallback` when absent; -1 once reported. */
static int int_keyword(lower *l, const ast_expr *e, const char *key, int64_t fallback, int64_t *out) {
    *out = fallback;
    for (int i = 0; i < e->n_args; i++) {
        if (!e->args[i].name || strcmp(e->args[i].name, key) != 0)
            continue;
        value v = eval(l, e->args[i].value);
        if (v.kind != V_INT) {
            if (v.kind != V_ERROR)
                error_at(l, e->args[i].value->loc, "scan()'s %s must be an integer, got %s", key, kind_name(v));
            return -1;
        }
        *out = v.i;
    }
    return 0;
}

/* The axis the scan runs over: xs's, not the batch. */
static int read_axis(lower *l, const ast_expr *e, scan_call *sc) {
    int64_t axis, reverse;
    if (int_keyword(l, e, "axis", 1, &axis) || int_keyword(l, e, "reverse", 0, &reverse))
        return -1;
    const ir_shape *s = shape_of(l, sc->xs);
    char ty[160];
    if (axis < 0)
        axis += s->rank;
    if (axis < 0 || axis >= s->rank) {
        error_at(l, e->loc, "scan() over axis %lld of %s, which has no such axis", (long long)axis,
                 type_of(l, sc->xs, ty, sizeof ty));
        return -1;
    }
    if (ir_is_batch_dim(s, (int)axis)) {
        error_at(l, e->loc, "scan() cannot run over the batch dimension (axis %lld of %s)", (long long)axis,
                 type_of(l, sc->xs, ty, sizeof ty));
        return -1;
    }
    sc->axis = (int)axis;
    sc->reverse = reverse != 0;
    return 0;
}

static int read_scan_call(lower *l, const ast_expr *e, scan_call *sc) {
    args a = {e->n_args, e->args, {{0}}};
    if (check_keywords(l, &a, "scan", scan_keys))
        return -1;
    sc->cell = read_cell(l, e);
    int n = n_positional(&a);
    if (n < 3 || n - 2 > MAX_RESULTS / 2) {
        error_at(l, e->loc, "scan() takes a cell, a sequence and 1 to %d initial carries, got %d arguments",
                 MAX_RESULTS / 2, n);
        return -1;
    }
    int bad = !sc->cell;
    sc->n_carries = n - 2;
    for (int k = 1; k < n; k++) {
        ast_expr *x = e->args[find_arg(&a, "", k)].value;
        value v = eval(l, x);
        if (v.kind != V_TENSOR && v.kind != V_ERROR)
            error_at(l, x->loc, "scan() expects a tensor here, got %s", kind_name(v));
        bad |= v.kind != V_TENSOR;
        sc->written[k - 1] = x;
        if (k == 1)
            sc->xs = v;
        else
            sc->init[k - 2] = v;
    }
    return bad || read_axis(l, e, sc) ? -1 : 0;
}

/* The cell's results, one per carry and of its carry's type, into next[]. */
static int check_results(lower *l, const ast_expr *e, const scan_call *sc, const int *carry, value r, int *next) {
    const ast_fn *fn = sc->cell;
    int got = r.kind == V_TUPLE ? (int)r.i : 1;
    if (r.kind == V_ERROR)
        return -1;
    if (r.kind != V_TUPLE && r.kind != V_TENSOR) {
        error_at(l, e->loc, "the cell '%s' of a scan must return tensors, got %s", fn->name, kind_name(r));
        return -1;
    }
    if (got != sc->n_carries) {
        error_at(l, e->loc, "the cell '%s' returns %d value%s but the scan has %d carr%s", fn->name, got,
                 got == 1 ? "" : "s", sc->n_carries, sc->n_carries == 1 ? "y" : "ies");
        return -1;
    }
    for (int i = 0; i < got; i++) {
        next[i] = r.kind == V_TUPLE ? tuple_items(l, r)[i] : r.node;
        char want[160], have[160];
        type_of(l, tensor(carry[i]), want, sizeof want);
        type_of(l, tensor(next[i]), have, sizeof have);
        if (strcmp(want, have) != 0) {
            const char *name = i + 1 < fn->n_params ? fn->params[i + 1].name : "?";
            error_at(l, e->loc, "the cell '%s' returns %s for carry '%s', which is %s", fn->name, have, name, want);
            return -1;
        }
    }
    return 0;
}

/* The body: carries and the slice of xs as the cell's arguments, its
 * results linked back to the carries.  Fills carry[] and next[]. */
static int lower_body(lower *l, const ast_expr *e, const scan_call *sc, int scan, int *carry, int *next) {
    ir_graph *g = l->g;
    ast_arg cell_args[1 + MAX_RESULTS / 2];
    args a = {1 + sc->n_carries, cell_args, {{0}}};
    int x = ir_scan_slice(g, scan, sc->xs.node, sc->axis);
    a.v[0] = tensor(x);
    for (int i = 0; i < sc->n_carries; i++) {
        carry[i] = ir_scan_carry(g, scan, sc->init[i].node);
        a.v[1 + i] = tensor(carry[i]);
        if (carry[i] < 0)
            x = -1;
    }
    for (int i = 0; i <= sc->n_carries; i++)
        cell_args[i] = (ast_arg){NULL, sc->written[i]->loc, sc->written[i]};
    if (x < 0) {
        graph_error(l, e->loc);
        return -1;
    }
    value r = inline_call(l, e, sc->cell, &a);
    if (check_results(l, e, sc, carry, r, next))
        return -1;
    for (int i = 0; i < sc->n_carries; i++)
        if (ir_scan_set_next(g, carry[i], next[i]) < 0) {
            graph_error(l, e->loc);
            return -1;
        }
    return 0;
}

value lower_scan(lower *l, const ast_expr *e) {
    scan_call sc = {0};
    if (read_scan_call(l, e, &sc))
        return ERR;
    ir_graph *g = l->g;
    int64_t steps = shape_of(l, sc.xs)->dims[sc.axis];
    int scan = ir_scan_begin(g, steps, sc.reverse);
    if (scan < 0)
        return graph_error(l, e->loc); /* a scan in a scan's cell, for one */
    int carry[MAX_RESULTS / 2], next[MAX_RESULTS / 2];
    int failed = lower_body(l, e, &sc, scan, carry, next);
    ir_scan_end(g, scan);
    if (failed)
        return ERR;
    int results[MAX_RESULTS];
    for (int i = 0; i < sc.n_carries; i++) {
        results[i] = ir_scan_stack(g, scan, next[i], sc.axis);
        results[sc.n_carries + i] = ir_scan_final(g, scan, carry[i]);
        if (results[i] < 0 || results[sc.n_carries + i] < 0)
            return graph_error(l, e->loc);
    }
    return make_tuple(l, results, 2 * sc.n_carries);
}
