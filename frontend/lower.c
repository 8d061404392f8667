/*
 * lower.c - name resolution, inlining and type checking: AST -> graph IR.
 *
 * The model is evaluated symbolically, statement by statement.  Evaluating
 * an expression yields a `value`: a tensor (an IR node), a compile-time
 * integer or float, or the batch dimension itself (what a shape variable
 * such as B is bound to).  Arithmetic on compile-time numbers folds here;
 * anything touching a tensor appends IR nodes, whose shape rules check
 * broadcasting and dtypes as the graph is built.
 *
 * A call to a user or prelude function is inlined: its arguments are
 * checked against the signature (binding shape variables like B and I on
 * first use, comparing on later ones), then its body is evaluated in a new
 * frame.  Parameters declared in a function body are named after the
 * binding at the call site: in `h1 = relu(dense(x, 256))` dense's W becomes
 * "h1.W".  When one statement makes several such calls they are numbered
 * in source order: `logits = dense(relu(dense(h, 128)), 10)` gives
 * "logits.1.W" (the outer call) and "logits.2.W" (the inner one).  A name
 * that is no function of the user's or the prelude's is looked up among
 * the builtins (builtins.c); the train statement is read by train.c.
 *
 * Errors never stop the walk: a failed expression yields V_ERROR, which
 * every consumer passes on silently, so one run reports independent
 * mistakes without cascades.  An unknown name, function, parameter or
 * keyword argument gets a "did you mean" note when one of the names that
 * could stand there is clearly the closest (suggest.c).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lower_internal.h"

char *join_name(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    char *s = ir_xmalloc(la + lb + 2);
    memcpy(s, a, la);
    if (la && lb)
        s[la++] = '.';
    memcpy(s + la, b, lb + 1);
    return s;
}

/* -------------------------------------------------------------- reporting */

/* An error, followed by the chain of calls that inlined the code it is in
 * (so a mistake surfacing inside the prelude also points at the user's
 * line). */
static void call_chain(lower *l) {
    int shown = 0;
    for (frame *f = l->top; f && f->fn && shown < 8; f = f->caller, shown++)
        diag_note(f->call_loc, "in this call to '%s'", f->fn->name);
}

void error_at(lower *l, src_loc loc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    diag_verror("error", loc, fmt, ap);
    va_end(ap);
    call_chain(l);
}

void error_suggesting(lower *l, src_loc loc, const char *guess, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    diag_verror("error", loc, fmt, ap);
    va_end(ap);
    if (guess)
        diag_note_fixit(loc, guess, "did you mean '%s'?", guess);
    call_chain(l);
}

const char *closest_of(const char *typed, const char *const *known) {
    suggestion s;
    suggest_begin(&s, typed);
    for (int i = 0; known[i]; i++)
        suggest_offer(&s, known[i]);
    return suggest_best(&s);
}

value graph_error(lower *l, src_loc loc) {
    error_at(l, loc, "%s", l->g->error);
    return ERR;
}

const char *kind_name(value v) {
    switch (v.kind) {
    case V_TENSOR: return "a tensor";
    case V_INT: return "an integer";
    case V_FLOAT: return "a number";
    case V_BATCH: return "the batch dimension";
    case V_TUPLE: return "several values";
    default: return "an error";
    }
}

char *type_of(lower *l, value v, char *buf, size_t n) {
    if (v.kind == V_TENSOR)
        return ir_type_str(l->g->nodes[v.node].dtype, &l->g->nodes[v.node].shape, buf, n);
    snprintf(buf, n, "%s", kind_name(v));
    return buf;
}

/* ---------------------------------------------------------------- tuples */

value make_tuple(lower *l, const int *nodes, int n) {
    if (l->n_tuples == l->cap_tuples) {
        l->cap_tuples = l->cap_tuples ? 2 * l->cap_tuples : 8;
        l->tuples = ir_xrealloc(l->tuples, (size_t)l->cap_tuples * sizeof *l->tuples);
    }
    memcpy(l->tuples[l->n_tuples].items, nodes, (size_t)n * sizeof *nodes);
    return (value){V_TUPLE, l->n_tuples++, n, 0};
}

const int *tuple_items(lower *l, value v) { return l->tuples[v.node].items; }

/* ---------------------------------------------------------------- scopes */

static binding *find_var(frame *f, const char *name) {
    for (int i = f->n_vars - 1; i >= 0; i--)
        if (strcmp(f->vars[i].name, name) == 0)
            return &f->vars[i];
    return NULL;
}

static int bind(lower *l, frame *f, const char *name, value v, src_loc loc) {
    binding *old = find_var(f, name);
    if (old) {
        error_at(l, loc, "'%s' is already defined", name);
        diag_note(old->loc, "previous definition of '%s' is here", name);
        return -1;
    }
    if (f->n_vars == f->cap_vars) {
        f->cap_vars = f->cap_vars ? 2 * f->cap_vars : 16;
        f->vars = ir_xrealloc(f->vars, (size_t)f->cap_vars * sizeof *f->vars);
    }
    f->vars[f->n_vars++] = (binding){name, v, loc};
    return 0;
}

const ast_fn *find_fn(lower *l, const char *name) {
    for (int p = 0; p < 2; p++) {
        const ast_program *prog = l->progs[p];
        if (!prog)
            continue;
        for (int i = 0; i < prog->n_fns; i++)
            if (strcmp(prog->fns[i]->name, name) == 0)
                return prog->fns[i];
    }
    return NULL;
}

const char *closest_function(lower *l, const char *typed) {
    suggestion s;
    suggest_begin(&s, typed);
    for (int p = 0; p < 2; p++)
        for (int i = 0; l->progs[p] && i < l->progs[p]->n_fns; i++)
            suggest_offer(&s, l->progs[p]->fns[i]->name);
    for (int i = 0; builtin_name(i); i++)
        suggest_offer(&s, builtin_name(i));
    suggest_offer(&s, "scan");
    return suggest_best(&s);
}

/* The closest name an expression here could have meant: the frame's
 * bindings (inputs, hypers, states, parameters, earlier results, a
 * function's own parameters), the model's parameters at model level, and
 * the constants. */
static const char *closest_name(lower *l, const char *typed) {
    suggestion s;
    suggest_begin(&s, typed);
    for (int i = 0; i < l->top->n_vars; i++)
        suggest_offer(&s, l->top->vars[i].name);
    for (int i = 0; l->top->fn == NULL && i < l->g->n_params; i++)
        suggest_offer(&s, l->g->params[i].name);
    suggest_offer(&s, "true");
    suggest_offer(&s, "false");
    suggest_offer(&s, "pi");
    return suggest_best(&s);
}

/* ----------------------------------------------- parameter-declaring calls */

static int fn_declares(lower *l, const ast_fn *fn);

/* The function a call inlines: f for f(...), the cell for scan(cell, ...);
 * NULL for a builtin. */
static const ast_fn *inlined_fn(lower *l, const ast_expr *e) {
    if (e->kind != AST_CALL || !e->lhs || e->lhs->kind != AST_NAME)
        return NULL;
    const ast_fn *fn = find_fn(l, e->lhs->name);
    const ast_expr *cell = e->n_args > 0 ? e->args[0].value : NULL;
    if (!fn && strcmp(e->lhs->name, "scan") == 0 && cell && cell->kind == AST_NAME)
        fn = find_fn(l, cell->name);
    return fn;
}

static int expr_declares(lower *l, const ast_expr *e) {
    if (!e)
        return 0;
    const ast_fn *fn = inlined_fn(l, e);
    if (fn && fn_declares(l, fn))
        return 1;
    if (expr_declares(l, e->lhs) || expr_declares(l, e->rhs))
        return 1;
    for (int i = 0; i < e->n_args; i++)
        if (expr_declares(l, e->args[i].value))
            return 1;
    return 0;
}

/* Does calling fn create parameters (itself or through its callees)? */
static int fn_declares(lower *l, const ast_fn *fn) {
    int slot = -1;
    for (int i = 0; i < l->n_memo; i++)
        if (l->memo_fn[i] == fn)
            slot = i;
    if (slot >= 0)
        return l->memo_val[slot] == 2;
    if (l->n_memo == 256)
        return 1;
    slot = l->n_memo++;
    l->memo_fn[slot] = fn;
    l->memo_val[slot] = 3; /* a recursive path answers "no"; recursion is reported at the call */
    int yes = 0;
    for (int i = 0; i < fn->n_body && !yes; i++)
        yes = fn->body[i]->kind == ST_PARAM || expr_declares(l, fn->body[i]->value);
    for (int i = 0; i < fn->n_params && !yes; i++)
        yes = expr_declares(l, fn->params[i].default_value);
    l->memo_val[slot] = yes ? 2 : 1;
    return yes;
}

/* Collects the declaring calls of a statement's expression in source
 * (pre-)order, which fixes their numbering before evaluation starts. */
static void collect_decl_calls(lower *l, frame *f, const ast_expr *e) {
    if (!e)
        return;
    const ast_fn *fn = inlined_fn(l, e);
    if (fn && fn_declares(l, fn) && f->n_decl_calls < 32)
        f->decl_calls[f->n_decl_calls++] = e;
    collect_decl_calls(l, f, e->lhs);
    collect_decl_calls(l, f, e->rhs);
    for (int i = 0; i < e->n_args; i++)
        collect_decl_calls(l, f, e->args[i].value);
}

static void begin_statement(lower *l, frame *f, const char *name, const ast_expr *e) {
    f->stmt_name = name;
    f->n_decl_calls = 0;
    collect_decl_calls(l, f, e);
}

/* The prefix for the parameters a call declares. */
static char *call_prefix(frame *f, const ast_expr *call) {
    char *base = join_name(f->prefix, f->stmt_name ? f->stmt_name : "");
    if (f->n_decl_calls <= 1)
        return base;
    int k = 0;
    while (k < f->n_decl_calls && f->decl_calls[k] != call)
        k++;
    char num[24];
    snprintf(num, sizeof num, "%d", k + 1);
    char *full = join_name(base, num);
    free(base);
    return full;
}

/* ------------------------------------------------------- tensor helpers */

/* A number used where a tensor is needed: a scalar constant. */
value as_tensor(lower *l, value v, ir_dtype want) {
    if (v.kind == V_TENSOR || v.kind == V_ERROR)
        return v;
    ir_shape s = ir_shape_scalar();
    double x = v.kind == V_INT ? (double)v.i : v.f;
    if (v.kind == V_BATCH)
        x = (double)l->batch_size;
    return tensor(ir_const(l->g, want, &s, x));
}

value cast_to(lower *l, value v, ir_dtype to, src_loc loc) {
    if (v.kind != V_TENSOR || dtype_of(l, v) == to)
        return v;
    int id = ir_cast(l->g, v.node, to);
    return id < 0 ? graph_error(l, loc) : tensor(id);
}

/* Brings two operands to one dtype: i32 meets f32 (or a float literal) as
 * f32, the way numpy and PyTorch promote. */
void promote(lower *l, value *a, value *b, src_loc loc) {
    int a_t = a->kind == V_TENSOR, b_t = b->kind == V_TENSOR;
    ir_dtype ta = a_t ? dtype_of(l, *a) : (a->kind == V_FLOAT ? IR_F32 : IR_I32);
    ir_dtype tb = b_t ? dtype_of(l, *b) : (b->kind == V_FLOAT ? IR_F32 : IR_I32);
    ir_dtype t = (ta == IR_F32 || tb == IR_F32) ? IR_F32 : IR_I32;
    /* a float tensor with an int literal stays f32; an int tensor with an
     * int literal stays i32 */
    if (a_t)
        *a = cast_to(l, *a, t, loc);
    else
        *a = as_tensor(l, *a, t);
    if (b_t)
        *b = cast_to(l, *b, t, loc);
    else
        *b = as_tensor(l, *b, t);
}

/* ------------------------------------------------------------ expressions */

/* An integer constant expression whose value leaves the 64 bits of an
 * int (the checks use the builtins, so the compiler itself does no
 * undefined arithmetic). */
static value int_overflow(lower *l, src_loc loc, const char *what) {
    error_at(l, loc, "integer overflow: the %s of these constants does not fit in 64 bits", what);
    return ERR;
}

static value fold_binary(lower *l, int op, value a, value b, src_loc loc) {
    int ints = a.kind == V_INT && b.kind == V_INT;
    double x = num(a), y = num(b);
    int64_t r;
    switch (op) {
    case OP_ADD:
        if (!ints)
            return float_value(x + y);
        return __builtin_add_overflow(a.i, b.i, &r) ? int_overflow(l, loc, "sum") : int_value(r);
    case OP_SUB:
        if (!ints)
            return float_value(x - y);
        return __builtin_sub_overflow(a.i, b.i, &r) ? int_overflow(l, loc, "difference") : int_value(r);
    case OP_MUL:
        if (!ints)
            return float_value(x * y);
        return __builtin_mul_overflow(a.i, b.i, &r) ? int_overflow(l, loc, "product") : int_value(r);
    case OP_DIV:
        if (ints && b.i != 0 && !(b.i == -1 && a.i == INT64_MIN) && a.i % b.i == 0)
            return int_value(a.i / b.i);
        return float_value(x / y);
    case OP_POW: return float_value(pow(x, y));
    case OP_LT: return int_value(x < y);
    case OP_LE: return int_value(x <= y);
    case OP_GT: return int_value(x > y);
    case OP_GE: return int_value(x >= y);
    case OP_EQ: return int_value(x == y);
    case OP_NE: return int_value(x != y);
    default: error_at(l, loc, "'@' needs tensors"); return ERR;
    }
}

/* The shape rule's reason for refusing a @ b, passed on.  It names the
 * shapes it saw ("'@' of [1,3] and [3,4]: ..."), which differ from the
 * user's where a vector was made a matrix, so those are put back. */
static value matmul_failed(lower *l, const ir_shape *sa, const ir_shape *sb, src_loc loc) {
    const char *prefix = "'@' of ", *reason = strstr(l->g->error, ": ");
    if (strncmp(l->g->error, prefix, strlen(prefix)) != 0 || !reason)
        return graph_error(l, loc);
    char x[128], y[128];
    error_at(l, loc, "'@' of %s and %s: %s", ir_shape_str(sa, x, sizeof x), ir_shape_str(sb, y, sizeof y), reason + 2);
    return ERR;
}

/* table[ids] @ w as (table @ w)[ids] when the table has fewer rows than
 * the lookup gives: an embedding followed by a product (an LSTM's input
 * projection) costs a product over the vocabulary, not over every
 * position, and so do its gradients.  In the generation entry, where one
 * position is looked up per call, a product of two parameters is worth it
 * too: it is cached, computed once per set of weights by prepare_step
 * (ir_add_gen_cached).  -1 where it does not apply. */
static int lookup_of_product(lower *l, value a, value b) {
    ir_graph *g = l->g;
    const ir_node *n = &g->nodes[a.node];
    if (n->op != IR_GATHER || g->nodes[b.node].shape.rank != 2)
        return -1;
    const ir_shape *table = &g->nodes[n->inputs[0]].shape;
    int64_t looked_up = ir_shape_numel(&n->shape) / table->dims[table->rank - 1];
    int cached = l->gen && g->nodes[n->inputs[0]].op == IR_PARAM && g->nodes[b.node].op == IR_PARAM;
    if (table->rank != 2 || (table->dims[0] >= looked_up && !cached))
        return -1;
    int ids = n->inputs[1]; /* n dies when ir_matmul grows the node array */
    int product = ir_matmul(g, n->inputs[0], b.node, 0);
    if (product >= 0 && cached)
        ir_add_gen_cached(g, product);
    return product < 0 ? -1 : ir_gather(g, product, ids);
}

/* x, or what x transposes where x only swaps its last two dims (then
 * `flag` is set in *flags): a batched product reads that side in place,
 * as stored, instead of through a copy. */
static int untransposed(const ir_graph *g, int x, int flag, int *flags) {
    const ir_node *n = &g->nodes[x];
    int r = n->shape.rank;
    if (n->op != IR_TRANSPOSE || n->perm[r - 2] != r - 1 || n->perm[r - 1] != r - 2)
        return x;
    for (int d = 0; d < r - 2; d++)
        if (n->perm[d] != d)
            return x;
    *flags |= flag;
    return n->inputs[0];
}

/* a [S.., M, K] @ b [S.., K, N]: one product per index of the leading dims
 * S, which must be the same (the shape rule says so). */
static value batched_matmul(lower *l, value a, value b, src_loc loc) {
    ir_graph *g = l->g;
    ir_shape sa = *shape_of(l, a), sb = *shape_of(l, b);
    if (sa.rank != sb.rank) {
        char x[128], y[128];
        error_at(l, loc, "'@' of %s and %s: a batched product needs operands of the same rank",
                 ir_shape_str(&sa, x, sizeof x), ir_shape_str(&sb, y, sizeof y));
        return ERR;
    }
    int flags = 0;
    int x = untransposed(g, a.node, IR_TRANSPOSE_A, &flags), y = untransposed(g, b.node, IR_TRANSPOSE_B, &flags);
    int id = ir_matmul_batched(g, x, y, flags, sa.rank - 2);
    return id < 0 ? matmul_failed(l, &sa, &sb, loc) : tensor(id);
}

/* a @ b with numpy's treatment of vectors: a vector on the right is a
 * column, on the left a row, and the added dimension is dropped again.
 * Two operands of rank 3 or more make a batched product; a matrix on the
 * right, one product over all the left operand's leading dims. */
static value matmul(lower *l, value a, value b, src_loc loc) {
    ir_graph *g = l->g;
    ir_shape sa = *shape_of(l, a), sb = *shape_of(l, b);
    if (sa.rank >= 3 && sb.rank >= 3)
        return batched_matmul(l, a, b, loc);
    if (a.kind == V_TENSOR && b.kind == V_TENSOR) {
        int looked_up = lookup_of_product(l, a, b);
        if (looked_up >= 0)
            return tensor(looked_up);
    }
    int vec_a = sa.rank == 1, vec_b = sb.rank == 1;
    if (vec_a) {
        ir_shape s = ir_shape_scalar();
        s.rank = 2, s.dims[0] = 1, s.dims[1] = sa.dims[0], s.batch_mask = sa.batch_mask << 1;
        a = tensor(ir_reshape(g, a.node, &s));
    }
    if (vec_b) {
        ir_shape s = ir_shape_scalar();
        s.rank = 2, s.dims[0] = sb.dims[0], s.dims[1] = 1, s.batch_mask = sb.batch_mask;
        b = tensor(ir_reshape(g, b.node, &s));
    }
    if (a.kind == V_ERROR || b.kind == V_ERROR)
        return graph_error(l, loc);
    int id = ir_matmul(g, a.node, b.node, 0);
    if (id < 0)
        return matmul_failed(l, &sa, &sb, loc);
    if (!vec_a && !vec_b)
        return tensor(id);
    ir_shape out = g->nodes[id].shape, r = ir_shape_scalar();
    for (int i = 0; i < 2; i++) {
        if ((i == 0 && vec_a) || (i == 1 && vec_b))
            continue;
        r.dims[r.rank] = out.dims[i];
        r.batch_mask |= ((out.batch_mask >> i) & 1) << r.rank;
        r.rank++;
    }
    return tensor(ir_reshape(g, id, &r));
}

static value binary(lower *l, int op, value a, value b, src_loc loc) {
    if (a.kind == V_ERROR || b.kind == V_ERROR)
        return ERR;
    if (a.kind == V_BATCH || b.kind == V_BATCH) {
        error_at(l, loc, "the batch dimension cannot be used in arithmetic");
        return ERR;
    }
    if (is_number(a) && is_number(b))
        return fold_binary(l, op, a, b, loc);
    if (op == OP_MATMUL) {
        if (a.kind != V_TENSOR || b.kind != V_TENSOR) {
            error_at(l, loc, "'@' needs two tensors");
            return ERR;
        }
        promote(l, &a, &b, loc);
        return matmul(l, a, b, loc);
    }
    ir_op irop;
    switch (op) {
    case OP_ADD: irop = IR_ADD; break;
    case OP_SUB: irop = IR_SUB; break;
    case OP_MUL: irop = IR_MUL; break;
    case OP_DIV: irop = IR_DIV; break;
    case OP_POW: irop = IR_POW; break;
    case OP_LT: irop = IR_LT; break;
    case OP_LE: irop = IR_LE; break;
    case OP_GT: irop = IR_GT; break;
    case OP_GE: irop = IR_GE; break;
    case OP_EQ: irop = IR_EQ; break;
    default: irop = IR_NE; break;
    }
    promote(l, &a, &b, loc);
    if (irop == IR_POW || irop == IR_DIV) { /* true division and pow work on floats */
        a = cast_to(l, a, IR_F32, loc);
        b = cast_to(l, b, IR_F32, loc);
    }
    if (a.kind == V_ERROR || b.kind == V_ERROR)
        return ERR;
    int id = ir_add(l->g, irop, a.node, b.node, -1);
    if (id < 0) {
        char x[160], y[160];
        error_at(l, loc, "operands of '%s' have incompatible shapes %s and %s", ir_ops[irop].name,
                 type_of(l, a, x, sizeof x), type_of(l, b, y, sizeof y));
        return ERR;
    }
    return tensor(id);
}

/* "h1.W" from the expression h1.W; NULL if it is not a dotted name. */
static char *dotted_name(const ast_expr *e) {
    if (e->kind == AST_NAME)
        return ir_xstrdup(e->name);
    if (e->kind != AST_MEMBER || !e->lhs)
        return NULL;
    char *base = dotted_name(e->lhs);
    if (!base)
        return NULL;
    char *s = join_name(base, e->name);
    free(base);
    return s;
}

/* h1.V: the parameter of h1 closest to V (h1.W, h1.b); when the owner
 * has none, the closest full name (hl.W for h1.W).  Without one clear
 * guess the owner's parameters are listed.  Names are shown as written
 * here, without the prefix of the function this is in. */
static void no_such_parameter(lower *l, const ast_expr *e, const char *full) {
    const ir_graph *g = l->g;
    size_t owner = strlen(full) - strlen(e->name);
    size_t prefix = strlen(l->top->prefix) + (l->top->prefix[0] != 0);
    suggestion s;
    int n_owned = 0;
    suggest_begin(&s, e->name);
    for (int i = 0; i < g->n_params; i++)
        if (strncmp(g->params[i].name, full, owner) == 0 && !strchr(g->params[i].name + owner, '.')) {
            suggest_offer(&s, g->params[i].name + owner);
            n_owned++;
        }
    const char *guess = suggest_best(&s);
    if (guess) {
        guess -= owner;
    } else if (n_owned == 0) {
        suggest_begin(&s, full);
        for (int i = 0; i < g->n_params; i++)
            if (strncmp(g->params[i].name, full, prefix) == 0)
                suggest_offer(&s, g->params[i].name);
        guess = suggest_best(&s);
    }
    error_suggesting(l, e->loc, guess ? guess + prefix : NULL, "no parameter named '%s'", full + prefix);
    if (guess || n_owned == 0)
        return;
    char list[256] = "";
    size_t used = 0;
    for (int i = 0, shown = 0; i < g->n_params && shown <= 6 && used < sizeof list; i++) {
        if (strncmp(g->params[i].name, full, owner) != 0 || strchr(g->params[i].name + owner, '.'))
            continue;
        const char *item = shown == 6 ? "..." : g->params[i].name + prefix;
        used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", shown ? ", " : "", item);
        shown++;
    }
    diag_note(e->loc, "the parameters of '%.*s' are %s", (int)(owner - prefix - 1), full + prefix, list);
}

static value eval_member(lower *l, const ast_expr *e) {
    char *rel = dotted_name(e);
    if (!rel) {
        error_at(l, e->loc, "'.' applies to names: write binding.param, e.g. h1.W");
        return ERR;
    }
    char *full = join_name(l->top->prefix, rel);
    int p = ir_find_param(l->g, full);
    value v = ERR;
    if (p >= 0) {
        v = tensor(l->g->params[p].node);
    } else {
        no_such_parameter(l, e, full);
    }
    free(rel);
    free(full);
    return v;
}

static value eval_name(lower *l, const ast_expr *e) {
    binding *b = find_var(l->top, e->name);
    if (b)
        return b->v;
    if (l->top->fn == NULL) {
        int p = ir_find_param(l->g, e->name);
        if (p >= 0)
            return tensor(l->g->params[p].node);
    }
    if (strcmp(e->name, "true") == 0)
        return int_value(1);
    if (strcmp(e->name, "false") == 0)
        return int_value(0);
    if (strcmp(e->name, "pi") == 0)
        return float_value(3.14159265358979323846);
    if (find_fn(l, e->name))
        error_at(l, e->loc, "'%s' is a function; call it with ( )", e->name);
    else
        error_suggesting(l, e->loc, closest_name(l, e->name), "use of undeclared name '%s'", e->name);
    return ERR;
}

static value call(lower *l, const ast_expr *e);
static value eval_expr(lower *l, const ast_expr *e);

/* The nodes an expression makes carry its place in the user's file; in
 * a prelude function's body they keep the place of the user's call. */
value eval(lower *l, const ast_expr *e) {
    if (!e)
        return ERR;
    int line = l->g->cur_line, col = l->g->cur_col;
    if (e->loc.file && e->loc.line > 0 && strcmp(e->loc.file->path, "<prelude>") != 0) {
        l->g->cur_line = e->loc.line;
        l->g->cur_col = e->loc.col;
    }
    value v = eval_expr(l, e);
    l->g->cur_line = line;
    l->g->cur_col = col;
    return v;
}

static value eval_expr(lower *l, const ast_expr *e) {
    switch (e->kind) {
    case AST_INT: return int_value(e->int_value);
    case AST_FLOAT: return float_value(e->float_value);
    case AST_NAME: return eval_name(l, e);
    case AST_MEMBER: return eval_member(l, e);
    case AST_UNARY: {
        value v = eval(l, e->lhs);
        if (e->op == '+' || v.kind == V_ERROR)
            return v;
        if (v.kind == V_INT && v.i == INT64_MIN)
            return int_overflow(l, e->loc, "negation");
        if (v.kind == V_INT)
            return int_value(-v.i);
        if (v.kind == V_FLOAT)
            return float_value(-v.f);
        if (v.kind == V_BATCH) {
            error_at(l, e->loc, "the batch dimension cannot be negated");
            return ERR;
        }
        int id = ir_add(l->g, IR_NEG, v.node, -1, -1);
        return id < 0 ? graph_error(l, e->loc) : tensor(id);
    }
    case AST_BINARY: {
        value a = eval(l, e->lhs);
        value b = eval(l, e->rhs);
        return binary(l, e->op, a, b, e->loc);
    }
    case AST_CALL: {
        value v = call(l, e);
        if (v.kind != V_TUPLE)
            return v;
        error_at(l, e->loc, "'%s' returns %d values; bind them with names: a, b = %s(...)", e->lhs->name, (int)v.i,
                 e->lhs->name);
        return ERR;
    }
    case AST_TUPLE:
        error_at(l, e->loc, "a tuple (a, b) can only be a function's result");
        return ERR;
    case AST_INDEX:
        return lower_index(l, e);
    case AST_SLICE:
    case AST_ELLIPSIS:
        error_at(l, e->loc, "'%s' is only allowed inside an index, x[...]", e->kind == AST_SLICE ? ":" : "...");
        return ERR;
    case AST_LIST:
        error_at(l, e->loc, "a list [...] is only allowed as a shape or an axis argument");
        return ERR;
    }
    return ERR;
}

value eval_results(lower *l, const ast_expr *e) {
    if (!e || (e->kind != AST_CALL && e->kind != AST_TUPLE))
        return eval(l, e);
    if (e->kind == AST_CALL)
        return call(l, e);
    if (e->n_args > MAX_RESULTS) {
        error_at(l, e->loc, "a tuple holds at most %d values, got %d", MAX_RESULTS, e->n_args);
        return ERR;
    }
    int nodes[MAX_RESULTS], bad = 0;
    for (int i = 0; i < e->n_args; i++) {
        value v = eval(l, e->args[i].value);
        if (v.kind != V_TENSOR && v.kind != V_ERROR)
            error_at(l, e->args[i].value->loc, "a tuple holds tensors; this is %s", kind_name(v));
        bad |= v.kind != V_TENSOR;
        nodes[i] = v.node;
    }
    return bad ? ERR : make_tuple(l, nodes, e->n_args);
}

/* ------------------------------------------------------------ arguments */

int eval_args(lower *l, const ast_expr *e, args *a) {
    a->n = e->n_args;
    a->arg = e->args;
    if (a->n > 16) {
        error_at(l, e->loc, "too many arguments (at most 16)");
        return -1;
    }
    int ok = 0;
    for (int i = 0; i < a->n; i++) {
        if (e->args[i].value && e->args[i].value->kind == AST_LIST) {
            a->v[i] = ERR; /* read by the builtin that accepts a list */
            continue;
        }
        a->v[i] = eval(l, e->args[i].value);
        if (a->v[i].kind == V_ERROR)
            ok = -1;
    }
    return ok;
}

/* The argument for the formal `name` at `position`: a keyword with that
 * name, else the positional one.  -1 if absent. */
int find_arg(const args *a, const char *name, int position) {
    for (int i = 0; i < a->n; i++)
        if (a->arg[i].name && strcmp(a->arg[i].name, name) == 0)
            return i;
    int k = 0;
    for (int i = 0; i < a->n; i++)
        if (!a->arg[i].name && k++ == position)
            return i;
    return -1;
}

int n_positional(const args *a) {
    int k = 0;
    for (int i = 0; i < a->n; i++)
        k += a->arg[i].name == NULL;
    return k;
}

/* Reports keywords that are not in `allowed` (a NULL-terminated list). */
int check_keywords(lower *l, const args *a, const char *fn, const char *const *allowed) {
    int bad = 0;
    for (int i = 0; i < a->n; i++) {
        if (!a->arg[i].name)
            continue;
        int ok = 0;
        for (int k = 0; allowed[k]; k++)
            ok |= strcmp(allowed[k], a->arg[i].name) == 0;
        if (!ok) {
            error_suggesting(l, a->arg[i].name_loc, closest_of(a->arg[i].name, allowed),
                             "%s() has no argument named '%s'", fn, a->arg[i].name);
            bad = 1;
        }
    }
    return bad ? -1 : 0;
}

/* ----------------------------------------------------- calls of functions */

static int in_progress(lower *l, const ast_fn *fn) {
    for (frame *f = l->top; f; f = f->caller)
        if (f->fn == fn)
            return 1;
    return 0;
}

static void free_frame(frame *f) {
    free(f->vars);
    free(f->prefix);
}

static value eval_dim(lower *l, const ast_expr *d) { return eval(l, d); }

/* Checks a tensor argument against `x: f32[B, I]`, binding shape variables
 * that are still free in the callee's frame. */
static int check_tensor_arg(lower *l, frame *callee, const ast_fparam *p, value v, src_loc loc) {
    const ast_type *t = p->type;
    char got[160];
    type_of(l, v, got, sizeof got);
    if (v.kind != V_TENSOR) {
        error_at(l, loc, "argument '%s' must be a tensor (%s), got %s", p->name, t->kind == TY_I32 ? "i32" : "f32",
                 kind_name(v));
        return -1;
    }
    ir_dtype want = t->kind == TY_I32 ? IR_I32 : IR_F32;
    const ir_shape *s = shape_of(l, v);
    if (dtype_of(l, v) != want) {
        error_at(l, loc, "argument '%s' must be %s, got %s", p->name, ir_dtype_name(want), got);
        diag_note(t->loc, "'%s' is declared here", p->name);
        return -1;
    }
    if (!t->has_shape)
        return 0;
    if (t->rank != s->rank) {
        error_at(l, loc, "argument '%s' must have rank %d, got %s", p->name, t->rank, got);
        diag_note(t->loc, "'%s' is declared here", p->name);
        return -1;
    }
    frame *saved = l->top;
    l->top = callee;
    int ok = 0;
    for (int i = 0; i < t->rank && !ok; i++) {
        const ast_expr *d = t->dims[i];
        int dim_is_batch = (s->batch_mask >> i) & 1;
        value actual = dim_is_batch ? (value){V_BATCH, -1, 0, 0} : int_value(s->dims[i]);
        if (d->kind == AST_NAME && !find_var(callee, d->name)) {
            bind(l, callee, d->name, actual, d->loc);
            continue;
        }
        value want_dim = eval_dim(l, d);
        int same = want_dim.kind == actual.kind && (actual.kind == V_BATCH || want_dim.i == actual.i);
        if (want_dim.kind == V_ERROR) {
            ok = -1;
        } else if (!same) {
            l->top = saved;
            char wanted[256] = "";
            size_t n = 0;
            for (int k = 0; k < t->rank; k++) {
                value w = k == i ? want_dim : ERR;
                const char *sep = k ? ", " : "";
                if (t->dims[k]->kind == AST_NAME)
                    n += (size_t)snprintf(wanted + n, sizeof wanted - n, "%s%s", sep, t->dims[k]->name);
                else if (w.kind == V_INT)
                    n += (size_t)snprintf(wanted + n, sizeof wanted - n, "%s%lld", sep, (long long)w.i);
                else
                    n += (size_t)snprintf(wanted + n, sizeof wanted - n, "%s?", sep);
                if (n >= sizeof wanted)
                    break;
            }
            if (want_dim.kind == V_INT)
                error_at(l, loc, "shape mismatch for argument '%s': expected %s[%s] with dimension %d = %lld, got %s",
                         p->name, ir_dtype_name(want), wanted, i, (long long)want_dim.i, got);
            else
                error_at(l, loc, "shape mismatch for argument '%s': expected %s[%s] with dimension %d = the batch, got %s",
                         p->name, ir_dtype_name(want), wanted, i, got);
            diag_note(t->loc, "'%s' is declared here", p->name);
            ok = -1;
        }
    }
    l->top = saved;
    return ok;
}

static int bind_param(lower *l, frame *callee, const ast_fparam *p, value v, src_loc loc) {
    if (v.kind == V_ERROR)
        return -1;
    if (p->type) {
        switch (p->type->kind) {
        case TY_F32:
        case TY_I32:
            if (check_tensor_arg(l, callee, p, v, loc))
                return -1;
            break;
        case TY_INT:
            if (v.kind != V_INT) {
                error_at(l, loc, "argument '%s' must be an integer, got %s", p->name, kind_name(v));
                return -1;
            }
            break;
        case TY_FLOAT:
            if (!is_number(v)) {
                error_at(l, loc, "argument '%s' must be a number, got %s", p->name, kind_name(v));
                return -1;
            }
            v = float_value(num(v));
            break;
        default:
            break;
        }
    }
    return bind(l, callee, p->name, v, p->loc);
}

static void add_param_decl(lower *l, frame *f, const ast_stmt *st);

static const char *closest_parameter(const ast_fn *fn, const char *typed) {
    suggestion s;
    suggest_begin(&s, typed);
    for (int i = 0; i < fn->n_params; i++)
        suggest_offer(&s, fn->params[i].name);
    return suggest_best(&s);
}

static value eval_statement_value(lower *l, frame *f, const ast_stmt *st, int results);
static void assign(lower *l, frame *f, const ast_stmt *st);

value inline_call(lower *l, const ast_expr *e, const ast_fn *fn, args *a) {
    if (in_progress(l, fn)) {
        error_at(l, e->loc, "recursive call to '%s' (functions are inlined; recursion is not allowed)", fn->name);
        return ERR;
    }
    if (l->depth > 64) {
        error_at(l, e->loc, "calls nested too deeply");
        return ERR;
    }
    /* match arguments to formals */
    int used[16] = {0}, bad = 0;
    frame callee = {0};
    callee.caller = l->top;
    callee.fn = fn;
    callee.call_loc = e->loc;
    callee.prefix = call_prefix(l->top, e);
    value actual[64];
    int which[64];
    if (fn->n_params > 64) {
        free_frame(&callee);
        error_at(l, e->loc, "too many parameters");
        return ERR;
    }
    for (int i = 0; i < fn->n_params; i++) {
        which[i] = find_arg(a, fn->params[i].name, i);
        if (which[i] >= 0 && a->arg[which[i]].name == NULL && i >= n_positional(a))
            which[i] = -1;
        if (which[i] >= 0) {
            used[which[i]] = 1;
            actual[i] = a->v[which[i]];
        } else if (!fn->params[i].default_value) {
            error_at(l, e->loc, "missing argument '%s' in call to '%s'", fn->params[i].name, fn->name);
            diag_note(fn->loc, "'%s' is defined here", fn->name);
            bad = 1;
        }
    }
    for (int i = 0; i < a->n; i++)
        if (!used[i]) {
            src_loc at = a->arg[i].name ? a->arg[i].name_loc : a->arg[i].value->loc;
            if (a->arg[i].name)
                error_suggesting(l, at, closest_parameter(fn, a->arg[i].name), "'%s' has no parameter named '%s'",
                                 fn->name, a->arg[i].name);
            else
                error_at(l, at, "too many arguments in call to '%s' (it takes %d)", fn->name, fn->n_params);
            bad = 1;
        }
    for (int i = 0; i < a->n; i++)
        if (a->arg[i].value && a->arg[i].value->kind == AST_LIST) {
            error_at(l, a->arg[i].value->loc, "a list cannot be passed to a function");
            bad = 1;
        }
    value result = ERR;
    l->depth++;
    if (!bad) {
        frame *caller = l->top;
        for (int i = 0; i < fn->n_params && !bad; i++) {
            value v;
            src_loc at;
            if (which[i] >= 0) {
                v = actual[i];
                at = a->arg[which[i]].value->loc;
            } else { /* defaults see the earlier parameters */
                l->top = &callee;
                v = eval(l, fn->params[i].default_value);
                l->top = caller;
                at = fn->params[i].default_value->loc;
            }
            bad = bind_param(l, &callee, &fn->params[i], v, at) != 0;
        }
        if (!bad) {
            l->top = &callee;
            for (int i = 0; i < fn->n_body; i++) {
                const ast_stmt *st = fn->body[i];
                if (st->kind == ST_PARAM) {
                    add_param_decl(l, &callee, st);
                } else if (st->kind == ST_ASSIGN) {
                    assign(l, &callee, st);
                } else if (st->kind == ST_EXPR) {
                    value v = eval_statement_value(l, &callee, st, 1);
                    if (i == fn->n_body - 1)
                        result = v;
                } else {
                    error_at(l, st->loc, "this statement is only allowed at model level");
                }
            }
            l->top = caller;
        }
    }
    l->depth--;
    free_frame(&callee);
    return result;
}

static value call(lower *l, const ast_expr *e) {
    if (!e->lhs || e->lhs->kind != AST_NAME) {
        error_at(l, e->loc, "only named functions can be called");
        return ERR;
    }
    const char *name = e->lhs->name;
    if (strcmp(name, "scan") == 0 && !find_fn(l, name))
        return lower_scan(l, e); /* its first argument names a function */
    args a;
    if (eval_args(l, e, &a) != 0)
        return ERR;
    const ast_fn *fn = find_fn(l, name);
    if (fn)
        return inline_call(l, e, fn, &a);
    builtin_fn builtin = find_builtin(name);
    if (builtin)
        return builtin(l, e, &a);
    error_suggesting(l, e->lhs->loc, closest_function(l, name), "unknown function '%s'", name);
    return ERR;
}

/* -------------------------------------------------------------- parameters */

static int shape_from_type(lower *l, const ast_type *t, ir_shape *s, int allow_batch) {
    *s = ir_shape_scalar();
    if (!t->has_shape) {
        error_at(l, t->loc, "a shape is needed here, e.g. f32[3, 4] or f32[] for a scalar");
        return -1;
    }
    if (t->rank > IR_MAX_RANK) {
        error_at(l, t->loc, "at most %d dimensions are supported", IR_MAX_RANK);
        return -1;
    }
    s->rank = t->rank;
    for (int i = 0; i < t->rank; i++) {
        value d = eval(l, t->dims[i]);
        if (d.kind == V_BATCH && allow_batch) {
            s->dims[i] = l->batch_size;
            s->batch_mask |= 1u << i;
        } else if (d.kind == V_BATCH) {
            error_at(l, t->dims[i]->loc, "a parameter's shape cannot depend on the batch dimension");
            return -1;
        } else if (d.kind == V_INT && d.i > 0 && d.i <= (1LL << 31)) {
            s->dims[i] = d.i;
        } else {
            if (d.kind != V_ERROR)
                error_at(l, t->dims[i]->loc, "a dimension must be a positive integer, got %s", kind_name(d));
            return -1;
        }
    }
    return 0;
}

static const struct init_name {
    const char *name;
    ir_init init;
    int n_args;
} init_names[] = {
    {"zeros", IR_INIT_ZEROS, 0},   {"ones", IR_INIT_ONES, 0},         {"constant", IR_INIT_CONSTANT, 1},
    {"uniform", IR_INIT_UNIFORM, 2}, {"normal", IR_INIT_NORMAL, 2},   {"glorot_uniform", IR_INIT_GLOROT_UNIFORM, 0},
    {"he_normal", IR_INIT_HE_NORMAL, 0},
};

/* `= zeros`, `= 0.5`, `= constant(0.5)`, `= uniform(-0.1, 0.1)`,
 * `= normal(0, 0.01)` or `= normal(std = 0.01)`. */
static int read_init(lower *l, const ast_expr *e, ir_init *init, double *a, double *b) {
    *init = IR_INIT_GLOROT_UNIFORM;
    *a = *b = 0;
    if (!e)
        return 0;
    if (e->kind == AST_INT || e->kind == AST_FLOAT || e->kind == AST_UNARY) {
        value v = eval(l, e);
        if (!is_number(v)) {
            error_at(l, e->loc, "an initial value must be a number");
            return -1;
        }
        *init = IR_INIT_CONSTANT;
        *a = num(v);
        return 0;
    }
    const ast_expr *callee = e->kind == AST_CALL ? e->lhs : e;
    if (!callee || callee->kind != AST_NAME) {
        error_at(l, e->loc, "expected an initialiser: zeros, ones, constant(v), uniform(lo, hi), normal(mean, std), "
                            "glorot_uniform or he_normal");
        return -1;
    }
    for (size_t i = 0; i < sizeof init_names / sizeof init_names[0]; i++) {
        if (strcmp(init_names[i].name, callee->name) != 0)
            continue;
        *init = init_names[i].init;
        double vals[2] = {0, 1.0}; /* normal's mean 0 and std 1 */
        if (init_names[i].init == IR_INIT_UNIFORM)
            vals[0] = -0.05, vals[1] = 0.05;
        if (e->kind == AST_CALL) {
            static const char *const keys_normal[] = {"mean", "std", NULL};
            static const char *const keys_uniform[] = {"low", "high", NULL};
            static const char *const keys_const[] = {"value", NULL};
            static const char *const none[] = {NULL};
            const char *const *keys = init_names[i].init == IR_INIT_NORMAL    ? keys_normal
                                      : init_names[i].init == IR_INIT_UNIFORM ? keys_uniform
                                      : init_names[i].init == IR_INIT_CONSTANT ? keys_const
                                                                              : none;
            args a2;
            if (eval_args(l, e, &a2) || check_keywords(l, &a2, callee->name, keys))
                return -1;
            if (n_positional(&a2) > init_names[i].n_args) {
                error_at(l, e->loc, "%s() takes at most %d arguments", callee->name, init_names[i].n_args);
                return -1;
            }
            for (int k = 0; k < init_names[i].n_args; k++) {
                int at = find_arg(&a2, keys[k], k);
                if (at < 0)
                    continue;
                if (!is_number(a2.v[at])) {
                    error_at(l, a2.arg[at].value->loc, "expected a number");
                    return -1;
                }
                vals[k] = num(a2.v[at]);
            }
            if (init_names[i].init == IR_INIT_CONSTANT && find_arg(&a2, "value", 0) < 0) {
                error_at(l, e->loc, "constant() needs a value");
                return -1;
            }
        }
        *a = vals[0];
        *b = vals[1];
        return 0;
    }
    const char *known[sizeof init_names / sizeof init_names[0] + 1] = {0};
    for (size_t i = 0; i < sizeof init_names / sizeof init_names[0]; i++)
        known[i] = init_names[i].name;
    error_suggesting(l, callee->loc, closest_of(callee->name, known), "unknown initialiser '%s'", callee->name);
    return -1;
}

static void add_param_decl(lower *l, frame *f, const ast_stmt *st) {
    ir_shape s;
    ir_init init;
    double a, b;
    if (shape_from_type(l, st->type, &s, 0) || read_init(l, st->value, &init, &a, &b)) {
        bind(l, f, st->name, ERR, st->name_loc); /* its uses fail silently, not as undeclared */
        return;
    }
    char *name = join_name(f->prefix, st->name);
    if (l->gen) { /* the generation entry shares the model's parameters */
        int p = ir_find_param(l->g, name);
        if (p < 0)
            error_at(l, st->name_loc, "no parameter '%s' in the model", name);
        else if (f->fn)
            bind(l, f, st->name, tensor(l->g->params[p].node), st->name_loc);
        free(name);
        return;
    }
    int64_t fan_in = s.rank >= 1 ? s.dims[0] : 1, fan_out = s.rank >= 2 ? s.dims[1] : fan_in;
    for (int i = 2; i < s.rank; i++)
        fan_in *= s.dims[i], fan_out *= s.dims[i];
    if (ir_find_param(l->g, name) >= 0) {
        error_at(l, st->name_loc, "a parameter named '%s' already exists", name);
    } else {
        ir_dtype dt = st->type->kind == TY_I32 ? IR_I32 : IR_F32;
        if (dt != IR_F32)
            error_at(l, st->type->loc, "parameters must be f32");
        else if (ir_add_param(l->g, name, dt, &s, 1, init, a, b, fan_in, fan_out) < 0)
            error_at(l, st->loc, "%s", l->g->error);
        else if (f->fn) /* visible by its short name inside the function */
            bind(l, f, st->name, tensor(l->g->params[l->g->n_params - 1].node), st->name_loc);
    }
    free(name);
}

/* A statement's value; `results`: several values (a tuple) are allowed. */
static value eval_statement_value(lower *l, frame *f, const ast_stmt *st, int results) {
    const char *name = st->kind == ST_LOSS ? "loss" : st->kind == ST_EXPR ? NULL : st->name;
    begin_statement(l, f, name, st->value);
    value v = results ? eval_results(l, st->value) : eval(l, st->value);
    f->stmt_name = NULL;
    f->n_decl_calls = 0;
    return v;
}

/* name = value, or a, b = value (a call returning that many values).  A
 * failed value is bound too, so later uses stay silent. */
static void assign(lower *l, frame *f, const ast_stmt *st) {
    if (st->n_names < 2) {
        bind(l, f, st->name, eval_statement_value(l, f, st, 0), st->name_loc);
        return;
    }
    value v = eval_statement_value(l, f, st, 1);
    int got = v.kind == V_TUPLE ? (int)v.i : 1;
    if (v.kind != V_ERROR && got != st->n_names) {
        error_at(l, st->value->loc, "%d names on the left but %d value%s on the right", st->n_names, got,
                 got == 1 ? "" : "s");
        v = ERR;
    }
    for (int i = 0; i < st->n_names; i++)
        bind(l, f, st->names[i], v.kind == V_TUPLE ? tensor(tuple_items(l, v)[i]) : ERR, st->names_loc[i]);
}

/* ------------------------------------------------------------- model level */

/* The batch dimension: the first symbolic name in input/target shapes. */
static int declare_input(lower *l, const ast_stmt *st, int is_target) {
    const ast_type *t = st->type;
    if (t->kind != TY_F32 && t->kind != TY_I32) {
        error_at(l, t->loc, "an %s must be a tensor type such as f32[B, 3]", is_target ? "target" : "input");
        return -1;
    }
    if (!t->has_shape || t->rank == 0 || t->dims[0]->kind != AST_NAME) {
        error_at(l, t->loc, "an %s's first dimension must be the batch, e.g. f32[B, 3]",
                 is_target ? "target" : "input");
        return -1;
    }
    const char *bname = t->dims[0]->name;
    if (!l->batch_name) {
        l->batch_name = bname;
        bind(l, l->top, bname, (value){V_BATCH, -1, 0, 0}, t->dims[0]->loc);
    } else if (strcmp(l->batch_name, bname) != 0) {
        error_at(l, t->dims[0]->loc, "the batch dimension is called '%s' elsewhere; use one name", l->batch_name);
        return -1;
    }
    ir_shape s;
    if (shape_from_type(l, t, &s, 1))
        return -1;
    if (s.batch_mask != 1) {
        error_at(l, t->loc, "only the first dimension may be the batch");
        return -1;
    }
    int id = ir_add_input(l->g, st->name, t->kind == TY_I32 ? IR_I32 : IR_F32, &s, is_target);
    if (id < 0)
        return -1;
    return bind(l, l->top, st->name, tensor(id), st->name_loc);
}


static int needs_batch_first(lower *l, value v, src_loc loc, const char *what, const char *name) {
    if (v.kind != V_TENSOR)
        return -1;
    const ir_shape *s = shape_of(l, v);
    if (s->rank == 0 || s->batch_mask != 1) {
        char ty[160];
        error_at(l, loc, "%s '%s' must have the batch as its first (and only symbolic) dimension, got %s", what, name,
                 type_of(l, v, ty, sizeof ty));
        return -1;
    }
    return 0;
}

static value scalar_f32(lower *l, value v, src_loc loc, const char *what) {
    if (v.kind == V_ERROR)
        return v;
    if (is_number(v))
        return as_tensor(l, v, IR_F32);
    if (v.kind != V_TENSOR || shape_of(l, v)->rank != 0) {
        char ty[160];
        error_at(l, loc, "the %s must be a scalar, got %s; reduce it with mean() or sum()", what,
                 type_of(l, v, ty, sizeof ty));
        return ERR;
    }
    return cast_to(l, v, IR_F32, loc);
}

/* state NAME: TYPE [= INIT]: a non-trainable tensor kept from one step to
 * the next; its first dimension may be the batch. */
static void declare_state(lower *l, const ast_stmt *st) {
    ir_shape s;
    ir_init init = IR_INIT_ZEROS;
    double a = 0, b = 0;
    if (shape_from_type(l, st->type, &s, 1) || (st->value && read_init(l, st->value, &init, &a, &b)))
        return;
    if (st->type->kind != TY_F32) {
        error_at(l, st->type->loc, "a state must be f32");
    } else if (s.batch_mask > 1) {
        error_at(l, st->type->loc, "only the first dimension of a state may be the batch");
    } else if (ir_find_param(l->g, st->name) >= 0) {
        error_at(l, st->name_loc, "a parameter or state named '%s' already exists", st->name);
    } else if (ir_add_state(l->g, st->name, IR_F32, &s, init, a, b) < 0) {
        graph_error(l, st->loc);
    }
}

/* The state update of `slot`, or -1. */
static int state_update_of(const ir_graph *g, int slot) {
    for (int i = 0; i < g->n_state_updates; i++)
        if (g->nodes[g->state_updates[i]].inputs[0] == slot)
            return g->state_updates[i];
    return -1;
}

/* update NAME = EXPR: after each step the state takes the value, which no
 * gradient flows through. */
static void update_state(lower *l, const ast_stmt *st) {
    ir_graph *g = l->g;
    value v = eval_statement_value(l, l->top, st, 0);
    int p = ir_find_param(g, st->name);
    if (p < 0 || !g->params[p].state) {
        error_at(l, st->name_loc, "'%s' is not a state; only a `state` declaration can be updated", st->name);
        return;
    }
    int slot = g->params[p].node;
    if (!l->gen && state_update_of(g, slot) >= 0) {
        error_at(l, st->name_loc, "state '%s' is already updated; one update per state", st->name);
        return;
    }
    if (v.kind == V_ERROR)
        return;
    char want[160], got[160];
    type_of(l, tensor(slot), want, sizeof want);
    type_of(l, v, got, sizeof got);
    if (v.kind != V_TENSOR || strcmp(want, got) != 0) {
        error_at(l, st->value->loc, "state '%s' is %s but the update gives %s", st->name, want, got);
        return;
    }
    int id = ir_add(g, IR_STOP_GRADIENT, v.node, -1, -1);
    if (id < 0 || (l->gen ? ir_add_gen_update(g, slot, id) : ir_add_state_update(g, slot, id)) < 0)
        graph_error(l, st->loc);
}

/* A state nobody updates keeps its initial value: allowed, but most likely
 * a forgotten `update`. */
static void warn_stale_states(lower *l, const ast_program *user) {
    for (int i = 0; i < user->n_stmts; i++) {
        const ast_stmt *st = user->stmts[i];
        int p = st->kind == ST_STATE ? ir_find_param(l->g, st->name) : -1;
        if (p >= 0 && state_update_of(l->g, l->g->params[p].node) < 0)
            diag_warning(st->name_loc, "state '%s' is never updated; it keeps its initial value (add: update %s = ...)",
                         st->name, st->name);
    }
}

/* The names of hypers something else makes: the runtime's own, and the
 * optimizer's settings (only lr is a hyper today, but a setting that
 * becomes one must not change what a model means).  A model's hyper of
 * one of these names would be ambiguous on the command line. */
static const char *const runtime_hypers[] = {"training", "step", "scan_steps", "position"};
static const char *const optimizer_settings[] = {
#define OPT_SETTING(optimizer, key, fallback) #key,
#include "optimizers.def"
};

static int listed(const char *const *names, size_t n, const char *name) {
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0)
            return 1;
    return 0;
}

/* What owns a hyper's name already, or NULL. */
static const char *hyper_owner(const char *name) {
    if (listed(runtime_hypers, sizeof runtime_hypers / sizeof *runtime_hypers, name))
        return "a hyper-parameter the runtime sets";
    if (listed(optimizer_settings, sizeof optimizer_settings / sizeof *optimizer_settings, name))
        return "a setting of the optimizer";
    return NULL;
}

/* hyper NAME [: f32] = NUMBER: an f32 scalar the runtime writes before
 * every step (--hyper NAME=X), the number its default.  It is a HYPER
 * leaf, so no gradient flows into it and no pass folds it. */
static void declare_hyper(lower *l, const ast_stmt *st) {
    const ast_type *t = st->type;
    value v = eval(l, st->value);
    const char *owner = hyper_owner(st->name);
    if (owner) {
        error_at(l, st->name_loc, "'%s' is %s; choose another name", st->name, owner);
        return;
    }
    if (t && !(t->kind == TY_FLOAT || (t->kind == TY_F32 && t->rank == 0))) {
        error_at(l, t->loc, "a hyper-parameter is an f32 scalar: write hyper %s = NUMBER or hyper %s: f32 = NUMBER",
                 st->name, st->name);
        return;
    }
    if (v.kind == V_ERROR)
        return;
    char ty[160];
    if (!is_number(v)) {
        error_at(l, st->value->loc, "a hyper-parameter's default must be a number, got %s",
                 type_of(l, v, ty, sizeof ty));
        return;
    }
    if (!isfinite(num(v))) {
        error_at(l, st->value->loc, "a hyper-parameter's default must be finite, got %g", num(v));
        return;
    }
    if (find_var(l->top, st->name)) { /* before the node: bind says where the other one is */
        bind(l, l->top, st->name, ERR, st->name_loc);
        return;
    }
    if (ir_find_param(l->g, st->name) >= 0) {
        error_at(l, st->name_loc, "a parameter or state named '%s' already exists", st->name);
        return;
    }
    int id = ir_add_hyper(l->g, st->name, num(v));
    if (id < 0)
        graph_error(l, st->loc);
    else
        bind(l, l->top, st->name, tensor(id), st->name_loc);
}

static void model_statement(lower *l, const ast_stmt *st) {
    frame *f = l->top;
    ir_graph *g = l->g;
    switch (st->kind) {
    case ST_MODEL:
        free(g->model_name);
        g->model_name = ir_xstrdup(st->name);
        break;
    case ST_INPUT:
    case ST_TARGET:
        declare_input(l, st, st->kind == ST_TARGET);
        break;
    case ST_PARAM:
        add_param_decl(l, f, st);
        break;
    case ST_ASSIGN:
        assign(l, f, st);
        break;
    case ST_STATE:
        declare_state(l, st);
        break;
    case ST_UPDATE:
        update_state(l, st);
        break;
    case ST_HYPER:
        declare_hyper(l, st);
        break;
    case ST_LOSS: {
        if (g->loss >= 0) {
            error_at(l, st->loc, "only one loss statement is allowed; add the terms: loss a + b");
            break;
        }
        value v = scalar_f32(l, eval_statement_value(l, f, st, 0), st->value->loc, "loss");
        if (v.kind == V_TENSOR)
            g->loss = v.node;
        break;
    }
    case ST_METRIC: {
        value v = scalar_f32(l, eval_statement_value(l, f, st, 0), st->value->loc, "metric");
        if (v.kind == V_TENSOR)
            ir_add_metric(g, st->name, v.node);
        break;
    }
    case ST_OUTPUT: {
        value v;
        if (st->value) {
            v = eval_statement_value(l, f, st, 0);
        } else {
            ast_expr name_expr = {.kind = AST_NAME, .loc = st->name_loc, .name = st->name};
            v = eval_name(l, &name_expr);
        }
        src_loc at = st->value ? st->value->loc : st->name_loc;
        if (is_number(v) || v.kind == V_BATCH)
            error_at(l, at, "output '%s' must be a tensor", st->name);
        else if (needs_batch_first(l, v, at, "output", st->name) == 0)
            ir_add_output(g, st->name, v.node);
        break;
    }
    case ST_TRAIN:
        read_train(l, st);
        break;
    case ST_EXPR:
        error_at(l, st->loc, "an expression alone does nothing here; bind it (name = ...) or use loss/metric/output");
        break;
    }
}

/* ------------------------------------------------------ generation entry
 * A model with state (a recurrent one) gets a second copy of its forward
 * computation for `generate`: every input with its time axis (dim 1) of
 * length 1, so each call advances the recurrence one step and the layers
 * around it see one position, not the whole window.  It shares the
 * model's parameters, states and hypers and runs its own state updates;
 * targets, loss, metrics and training are not part of it.  A model whose
 * dim 1 is not a time axis fails to lower this way, quietly: it then has
 * no generation entry, and `generate` runs predict one step at a time. */

static void declare_gen_input(lower *l, const ast_stmt *st) {
    ir_shape s;
    if (shape_from_type(l, st->type, &s, 1))
        return;
    if (s.rank >= 2) {
        if (!l->gen_context)
            l->gen_context = s.dims[1];
        s.dims[1] = 1;
    }
    int id = ir_add_gen_input(l->g, st->name, st->type->kind == TY_I32 ? IR_I32 : IR_F32, &s);
    if (id < 0)
        graph_error(l, st->loc);
    else
        bind(l, l->top, st->name, tensor(id), st->name_loc);
}

static void generation_statement(lower *l, const ast_stmt *st) {
    switch (st->kind) {
    case ST_INPUT:
        declare_gen_input(l, st);
        break;
    case ST_PARAM:
        add_param_decl(l, l->top, st);
        break;
    case ST_ASSIGN:
        assign(l, l->top, st);
        break;
    case ST_UPDATE:
        update_state(l, st);
        break;
    case ST_HYPER: /* the model's hyper, shared */
        bind(l, l->top, st->name, tensor(ir_get_hyper(l->g, st->name, 0)), st->name_loc);
        break;
    case ST_OUTPUT: {
        value v = st->value ? eval_statement_value(l, l->top, st, 0) : ERR;
        if (v.kind == V_TENSOR)
            ir_add_gen_output(l->g, st->name, v.node);
        else
            error_at(l, st->name_loc, "output '%s' in the generation entry", st->name);
        break;
    }
    default: /* model, target, state, loss, metric, train */
        break;
    }
}

static int has_state(const ir_graph *g) {
    for (int i = 0; i < g->n_params; i++)
        if (g->params[i].state)
            return 1;
    return 0;
}

static void lower_generation(lower *l, const ast_program *user) {
    ir_graph *g = l->g;
    frame gen = {0}, *model = l->top;
    gen.prefix = ir_xstrdup("");
    l->top = &gen;
    l->gen = 1;
    bind(l, &gen, l->batch_name, (value){V_BATCH, -1, 0, 0}, user->stmts[0]->loc);
    int begun = diag_quiet_begin();
    for (int i = 0; i < user->n_stmts; i++)
        generation_statement(l, user->stmts[i]);
    if (diag_quiet_end(begun) > 0 || g->n_gen_outputs == 0) {
        /* not a model with a time axis: no generation entry (its nodes are dead) */
        for (int i = 0; i < g->n_gen_outputs; i++)
            free(g->gen_outputs[i].name);
        g->n_gen_outputs = g->n_gen_updates = g->n_gen_cached = 0;
    }
    l->gen = 0;
    l->top = model;
    free_frame(&gen);
}

ir_graph *lower_program(const ast_program *user, const ast_program *prelude, const lower_options *opt) {
    int errors_before = diag_error_count();
    lower l = {0};
    frame model = {0};
    model.prefix = ir_xstrdup("");
    l.top = &model;
    l.progs[0] = user;
    l.progs[1] = prelude;

    /* A name's model is the model statement's, else the file's base name. */
    const char *base = strrchr(user->file->path, '/');
    base = base ? base + 1 : user->file->path;
    char stem[128];
    snprintf(stem, sizeof stem, "%s", base);
    char *dot = strrchr(stem, '.');
    if (dot && dot != stem)
        *dot = 0;
    l.g = ir_graph_new(stem, user->file->path);
    l.g->source_hash = ir_hash_bytes(user->file->text, user->file->len);
    l.g->source_text = ir_xstrdup(user->file->text);

    /* The batch bound must be known before any shape is built: the train
     * statement's `batch = N` (read fully, with its errors, later). */
    l.batch_size = opt && opt->max_batch > 0 ? opt->max_batch : train_batch(user);
    if (!l.batch_size)
        l.batch_size = 32;
    l.g->max_batch = l.batch_size;
    for (int i = 0; i < user->n_fns; i++)
        for (int j = 0; j < i; j++)
            if (strcmp(user->fns[i]->name, user->fns[j]->name) == 0) {
                error_at(&l, user->fns[i]->loc, "function '%s' is defined twice", user->fns[i]->name);
                diag_note(user->fns[j]->loc, "first defined here");
            }
    for (int i = 0; i < user->n_stmts; i++)
        model_statement(&l, user->stmts[i]);
    int has_loss_stmt = 0; /* a loss that failed to lower was reported already */
    for (int i = 0; i < user->n_stmts; i++)
        has_loss_stmt |= user->stmts[i]->kind == ST_LOSS;
    if (l.g->loss < 0 && l.have_train && !has_loss_stmt)
        for (int i = 0; i < user->n_stmts; i++)
            if (user->stmts[i]->kind == ST_TRAIN)
                error_at(&l, user->stmts[i]->loc, "a train statement needs a loss");
    if (diag_error_count() == errors_before) /* a failed update is no forgotten one */
        warn_stale_states(&l, user);
    if (diag_error_count() == errors_before && l.batch_name && (has_state(l.g) || l.uses_positions))
        lower_generation(&l, user);
    l.g->max_batch = l.batch_size;
    free_frame(&model);
    free(l.tuples);
    if (diag_error_count() != errors_before) {
        ir_graph_free(l.g);
        return NULL;
    }
    return l.g;
}
