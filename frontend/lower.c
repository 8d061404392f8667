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
 * "logits.1.W" (the outer call) and "logits.2.W" (the inner one).
 *
 * Errors never stop the walk: a failed expression yields V_ERROR, which
 * every consumer passes on silently, so one run reports independent
 * mistakes without cascades.
 */
#include "lower.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef enum { V_ERROR, V_TENSOR, V_INT, V_FLOAT, V_BATCH } value_kind;

typedef struct value {
    value_kind kind;
    int node;      /* V_TENSOR */
    int64_t i;     /* V_INT */
    double f;      /* V_FLOAT */
} value;

typedef struct binding {
    const char *name;
    value v;
    src_loc loc;
} binding;

typedef struct frame {
    struct frame *caller;
    const ast_fn *fn;       /* NULL at model level */
    src_loc call_loc;
    char *prefix;           /* parameter name prefix, "" at model level */
    int n_vars, cap_vars;
    binding *vars;
    /* naming of parameter-declaring calls in the current statement */
    const char *stmt_name;
    int n_decl_calls;
    const ast_expr *decl_calls[32];
} frame;

typedef struct lower {
    ir_graph *g;
    const ast_program *progs[2]; /* user, prelude */
    frame *top;
    int depth;
    const char *batch_name;      /* the symbol inputs use for the batch dim */
    int64_t batch_size;          /* max batch */
    int have_train;
    /* memo for fn_declares: 0 unknown, 1 no, 2 yes, 3 in progress */
    int n_memo;
    const ast_fn *memo_fn[256];
    int memo_val[256];
} lower;

static const value ERR = {V_ERROR, -1, 0, 0};

static value tensor(int node) {
    value v = {node < 0 ? V_ERROR : V_TENSOR, node, 0, 0};
    return v;
}
static value int_value(int64_t i) { return (value){V_INT, -1, i, 0}; }
static value float_value(double f) { return (value){V_FLOAT, -1, 0, f}; }

static char *join_name(const char *a, const char *b) {
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
static void error_at(lower *l, src_loc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void error_at(lower *l, src_loc loc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    diag_verror("error", loc, fmt, ap);
    va_end(ap);
    int shown = 0;
    for (frame *f = l->top; f && f->fn && shown < 8; f = f->caller, shown++)
        diag_note(f->call_loc, "in this call to '%s'", f->fn->name);
}

static value ir_failed(lower *l, src_loc loc) {
    error_at(l, loc, "%s", l->g->error);
    return ERR;
}

static const char *kind_name(value v) {
    switch (v.kind) {
    case V_TENSOR: return "a tensor";
    case V_INT: return "an integer";
    case V_FLOAT: return "a number";
    case V_BATCH: return "the batch dimension";
    default: return "an error";
    }
}

static char *type_of(lower *l, value v, char *buf, size_t n) {
    if (v.kind == V_TENSOR)
        return ir_type_str(l->g->nodes[v.node].dtype, &l->g->nodes[v.node].shape, buf, n);
    snprintf(buf, n, "%s", kind_name(v));
    return buf;
}

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

static const ast_fn *find_fn(lower *l, const char *name) {
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

/* ----------------------------------------------- parameter-declaring calls */

static int fn_declares(lower *l, const ast_fn *fn);

static int expr_declares(lower *l, const ast_expr *e) {
    if (!e)
        return 0;
    if (e->kind == AST_CALL && e->lhs && e->lhs->kind == AST_NAME) {
        const ast_fn *fn = find_fn(l, e->lhs->name);
        if (fn && fn_declares(l, fn))
            return 1;
    }
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
    if (e->kind == AST_CALL && e->lhs && e->lhs->kind == AST_NAME) {
        const ast_fn *fn = find_fn(l, e->lhs->name);
        if (fn && fn_declares(l, fn) && f->n_decl_calls < 32)
            f->decl_calls[f->n_decl_calls++] = e;
    }
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

static ir_dtype dtype_of(lower *l, value v) { return l->g->nodes[v.node].dtype; }
static const ir_shape *shape_of(lower *l, value v) { return &l->g->nodes[v.node].shape; }

/* A number used where a tensor is needed: a scalar constant. */
static value as_tensor(lower *l, value v, ir_dtype want) {
    if (v.kind == V_TENSOR || v.kind == V_ERROR)
        return v;
    ir_shape s = ir_shape_scalar();
    double x = v.kind == V_INT ? (double)v.i : v.f;
    if (v.kind == V_BATCH)
        x = (double)l->batch_size;
    return tensor(ir_const(l->g, want, &s, x));
}

static value cast_to(lower *l, value v, ir_dtype to, src_loc loc) {
    if (v.kind != V_TENSOR || dtype_of(l, v) == to)
        return v;
    int id = ir_cast(l->g, v.node, to);
    return id < 0 ? ir_failed(l, loc) : tensor(id);
}

/* Brings two operands to one dtype: i32 meets f32 (or a float literal) as
 * f32, the way numpy and PyTorch promote. */
static void promote(lower *l, value *a, value *b, src_loc loc) {
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

static int is_number(value v) { return v.kind == V_INT || v.kind == V_FLOAT; }
static double num(value v) { return v.kind == V_INT ? (double)v.i : v.f; }

/* ------------------------------------------------------------ expressions */

static value eval(lower *l, const ast_expr *e);

static value fold_binary(lower *l, int op, value a, value b, src_loc loc) {
    int ints = a.kind == V_INT && b.kind == V_INT;
    double x = num(a), y = num(b);
    switch (op) {
    case OP_ADD: return ints ? int_value(a.i + b.i) : float_value(x + y);
    case OP_SUB: return ints ? int_value(a.i - b.i) : float_value(x - y);
    case OP_MUL: return ints ? int_value(a.i * b.i) : float_value(x * y);
    case OP_DIV:
        if (ints && b.i != 0 && a.i % b.i == 0)
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
        return ir_failed(l, loc);
    char x[128], y[128];
    error_at(l, loc, "'@' of %s and %s: %s", ir_shape_str(sa, x, sizeof x), ir_shape_str(sb, y, sizeof y), reason + 2);
    return ERR;
}

/* a @ b with numpy's treatment of vectors: a vector on the right is a
 * column, on the left a row, and the added dimension is dropped again. */
static value matmul(lower *l, value a, value b, src_loc loc) {
    ir_graph *g = l->g;
    ir_shape sa = *shape_of(l, a), sb = *shape_of(l, b);
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
        return ir_failed(l, loc);
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
        error_at(l, e->loc, "no parameter named '%s'", full);
        size_t n = strlen(full) - strlen(e->name);
        for (int i = 0, shown = 0; i < l->g->n_params && shown < 6; i++)
            if (strncmp(l->g->params[i].name, full, n) == 0 && l->g->params[i].trainable) {
                diag_note(e->loc, "did you mean '%s'?", l->g->params[i].name);
                shown++;
            }
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
        error_at(l, e->loc, "use of undeclared name '%s'", e->name);
    return ERR;
}

static value call(lower *l, const ast_expr *e);

static value eval(lower *l, const ast_expr *e) {
    if (!e)
        return ERR;
    switch (e->kind) {
    case AST_INT: return int_value(e->int_value);
    case AST_FLOAT: return float_value(e->float_value);
    case AST_NAME: return eval_name(l, e);
    case AST_MEMBER: return eval_member(l, e);
    case AST_UNARY: {
        value v = eval(l, e->lhs);
        if (e->op == '+' || v.kind == V_ERROR)
            return v;
        if (v.kind == V_INT)
            return int_value(-v.i);
        if (v.kind == V_FLOAT)
            return float_value(-v.f);
        if (v.kind == V_BATCH) {
            error_at(l, e->loc, "the batch dimension cannot be negated");
            return ERR;
        }
        int id = ir_add(l->g, IR_NEG, v.node, -1, -1);
        return id < 0 ? ir_failed(l, e->loc) : tensor(id);
    }
    case AST_BINARY: {
        value a = eval(l, e->lhs);
        value b = eval(l, e->rhs);
        return binary(l, e->op, a, b, e->loc);
    }
    case AST_CALL: return call(l, e);
    case AST_INDEX:
        error_at(l, e->loc, "indexing (x[...]) is not supported yet");
        return ERR;
    case AST_LIST:
        error_at(l, e->loc, "a list [...] is only allowed as a shape or an axis argument");
        return ERR;
    }
    return ERR;
}

/* ------------------------------------------------------------ arguments */

typedef struct args {
    int n;
    const ast_arg *arg;      /* as written */
    value v[16];             /* evaluated positional + keyword, in written order */
} args;

static int eval_args(lower *l, const ast_expr *e, args *a) {
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
static int find_arg(const args *a, const char *name, int position) {
    for (int i = 0; i < a->n; i++)
        if (a->arg[i].name && strcmp(a->arg[i].name, name) == 0)
            return i;
    int k = 0;
    for (int i = 0; i < a->n; i++)
        if (!a->arg[i].name && k++ == position)
            return i;
    return -1;
}

static int n_positional(const args *a) {
    int k = 0;
    for (int i = 0; i < a->n; i++)
        k += a->arg[i].name == NULL;
    return k;
}

/* Reports keywords that are not in `allowed` (a NULL-terminated list). */
static int check_keywords(lower *l, const args *a, const char *fn, const char *const *allowed) {
    int bad = 0;
    for (int i = 0; i < a->n; i++) {
        if (!a->arg[i].name)
            continue;
        int ok = 0;
        for (int k = 0; allowed[k]; k++)
            ok |= strcmp(allowed[k], a->arg[i].name) == 0;
        if (!ok) {
            error_at(l, a->arg[i].name_loc, "%s() has no argument named '%s'", fn, a->arg[i].name);
            bad = 1;
        }
    }
    return bad ? -1 : 0;
}

/* ---------------------------------------------------------------- builtins */

typedef value (*builtin_fn)(lower *l, const ast_expr *e, args *a);

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

static int arity_check(lower *l, const ast_expr *e, args *a, const char *fn, int min, int max) {
    int n = n_positional(a);
    if (n < min || n > max) {
        if (min == max)
            error_at(l, e->loc, "%s() takes %d argument%s, got %d", fn, min, min == 1 ? "" : "s", n);
        else
            error_at(l, e->loc, "%s() takes %d to %d arguments, got %d", fn, min, max, n);
        return -1;
    }
    return 0;
}

static value unary_builtin(lower *l, const ast_expr *e, args *a, ir_op op, int float_only) {
    const char *fn = e->lhs->name;
    static const char *const none[] = {NULL};
    if (arity_check(l, e, a, fn, 1, 1) || check_keywords(l, a, fn, none))
        return ERR;
    value x = need_tensor(l, e, a, 0, fn);
    if (x.kind == V_ERROR)
        return ERR;
    if (float_only)
        x = cast_to(l, x, IR_F32, e->loc);
    int id = ir_add(l->g, op, x.node, -1, -1);
    return id < 0 ? ir_failed(l, e->loc) : tensor(id);
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
    static const char *const none[] = {NULL};
    if (arity_check(l, e, a, fn, 1, 1) || check_keywords(l, a, fn, none))
        return ERR;
    if (is_number(a->v[0]))
        return to == IR_F32 ? float_value(num(a->v[0])) : int_value((int64_t)num(a->v[0]));
    value x = need_tensor(l, e, a, 0, fn);
    return x.kind == V_ERROR ? ERR : cast_to(l, x, to, e->loc);
}
static value b_float(lower *l, const ast_expr *e, args *a) { return conversion(l, e, a, IR_F32); }
static value b_int(lower *l, const ast_expr *e, args *a) { return conversion(l, e, a, IR_I32); }

static value b_where(lower *l, const ast_expr *e, args *a) {
    static const char *const none[] = {NULL};
    if (arity_check(l, e, a, "where", 3, 3) || check_keywords(l, a, "where", none))
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
    return id < 0 ? ir_failed(l, e->loc) : tensor(id);
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
    if (arity_check(l, e, a, fn, 1, positional_axis == 1 ? 2 : 1) || check_keywords(l, a, fn, keys))
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
        return ir_failed(l, e->loc);
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
    return id < 0 ? ir_failed(l, e->loc) : tensor(id);
}

static value b_sum(lower *l, const ast_expr *e, args *a) { return reduction(l, e, a, "sum"); }
static value b_mean(lower *l, const ast_expr *e, args *a) { return reduction(l, e, a, "mean"); }

/* max(x[, axis]) reduces; max(a, b) is elementwise.  Same for min. */
static value min_max(lower *l, const ast_expr *e, args *a, int is_max) {
    const char *fn = is_max ? "max" : "min";
    if (n_positional(a) == 1)
        return reduction(l, e, a, fn);
    static const char *const none[] = {NULL};
    if (arity_check(l, e, a, fn, 1, 2) || check_keywords(l, a, fn, none))
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
    return id < 0 ? ir_failed(l, e->loc) : tensor(id);
}
static value b_max(lower *l, const ast_expr *e, args *a) { return min_max(l, e, a, 1); }
static value b_min(lower *l, const ast_expr *e, args *a) { return min_max(l, e, a, 0); }

/* reshape(x, [B, 4, -1]): one entry may be -1 (inferred); the batch name
 * keeps the batch dimension. */
static value b_reshape(lower *l, const ast_expr *e, args *a) {
    static const char *const none[] = {NULL};
    if (arity_check(l, e, a, "reshape", 2, 2) || check_keywords(l, a, "reshape", none))
        return ERR;
    value x = need_tensor(l, e, a, 0, "reshape");
    const ast_expr *list = a->arg[1].value;
    if (x.kind == V_ERROR)
        return ERR;
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
    return id < 0 ? ir_failed(l, e->loc) : tensor(id);
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

static value node_or_error(lower *l, const ast_expr *e, int id) { return id < 0 ? ir_failed(l, e->loc) : tensor(id); }

/* one_hot(labels, n): f32 [.., n] from integer labels [..]; f32 labels are
 * truncated.  A label outside [0, n) gives a row of zeros. */
static value b_one_hot(lower *l, const ast_expr *e, args *a) {
    static const char *const keys[] = {"n", NULL};
    if (arity_check(l, e, a, "one_hot", 1, 2) || check_keywords(l, a, "one_hot", keys))
        return ERR;
    value labels = need_tensor(l, e, a, 0, "one_hot");
    int64_t n = 0;
    if (labels.kind == V_ERROR || int_arg(l, e, a, "one_hot", "n", 1, 1, 1, INT32_MAX, &n))
        return ERR;
    labels = cast_to(l, labels, IR_I32, e->loc);
    return labels.kind == V_ERROR ? ERR : node_or_error(l, e, ir_one_hot(l->g, labels.node, n));
}

/* argmax(x, axis = -1): i32 index of the first maximum, the axis dropped. */
static value b_argmax(lower *l, const ast_expr *e, args *a) {
    static const char *const keys[] = {"axis", NULL};
    if (arity_check(l, e, a, "argmax", 1, 2) || check_keywords(l, a, "argmax", keys))
        return ERR;
    value x = need_tensor(l, e, a, 0, "argmax");
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
    static const char *const none[] = {NULL};
    if (arity_check(l, e, a, "transpose", 1, 2) || check_keywords(l, a, "transpose", none))
        return ERR;
    value x = need_tensor(l, e, a, 0, "transpose");
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
    if (arity_check(l, e, a, "slice", 1, 4) || check_keywords(l, a, "slice", keys))
        return ERR;
    value x = need_tensor(l, e, a, 0, "slice");
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
    if (arity_check(l, e, a, "concat", 1, 2) || check_keywords(l, a, "concat", keys))
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
 * table (an embedding lookup); an index outside [0, V) gives zeros. */
static value b_gather(lower *l, const ast_expr *e, args *a) {
    static const char *const none[] = {NULL};
    if (arity_check(l, e, a, "gather", 2, 2) || check_keywords(l, a, "gather", none))
        return ERR;
    value table = need_tensor(l, e, a, 0, "gather"), idx = need_tensor(l, e, a, 1, "gather");
    if (table.kind == V_ERROR || idx.kind == V_ERROR)
        return ERR;
    idx = cast_to(l, idx, IR_I32, e->loc);
    return idx.kind == V_ERROR ? ERR : node_or_error(l, e, ir_gather(l->g, table.node, idx.node));
}

/* conv(x, w, stride = 1, padding = 0): x [N, C, H, W], w [O, C, KH, KW]
 * -> [N, O, OH, OW], cross-correlation as in PyTorch's F.conv2d.  The
 * name is conv, not conv2d: the prelude's conv2d is the layer that
 * declares the weights and calls this. */
static value b_conv2d(lower *l, const ast_expr *e, args *a) {
    static const char *const keys[] = {"stride", "padding", NULL};
    if (arity_check(l, e, a, "conv", 2, 4) || check_keywords(l, a, "conv", keys))
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
    static const char *const none[] = {NULL};
    if (arity_check(l, e, a, "flatten", 1, 1) || check_keywords(l, a, "flatten", none))
        return ERR;
    value x = need_tensor(l, e, a, 0, "flatten");
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
    if (arity_check(l, e, a, fn, 1, 3) || check_keywords(l, a, fn, keys))
        return ERR;
    value x = need_tensor(l, e, a, 0, fn);
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
    if (arity_check(l, e, a, "dropout", 1, 2) || check_keywords(l, a, "dropout", keys))
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
};

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
static value eval_statement_value(lower *l, frame *f, const ast_stmt *st);

static value inline_call(lower *l, const ast_expr *e, const ast_fn *fn, args *a) {
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
                error_at(l, at, "'%s' has no parameter named '%s'", fn->name, a->arg[i].name);
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
                    /* a failed value is bound too, so later uses stay silent */
                    bind(l, &callee, st->name, eval_statement_value(l, &callee, st), st->name_loc);
                } else if (st->kind == ST_EXPR) {
                    value v = eval_statement_value(l, &callee, st);
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
    args a;
    if (eval_args(l, e, &a) != 0)
        return ERR;
    const ast_fn *fn = find_fn(l, name);
    if (fn)
        return inline_call(l, e, fn, &a);
    for (size_t i = 0; i < sizeof builtins / sizeof builtins[0]; i++)
        if (strcmp(builtins[i].name, name) == 0)
            return builtins[i].fn(l, e, &a);
    error_at(l, e->lhs->loc, "unknown function '%s'", name);
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
    error_at(l, callee->loc, "unknown initialiser '%s'", callee->name);
    return -1;
}

static void add_param_decl(lower *l, frame *f, const ast_stmt *st) {
    ir_shape s;
    ir_init init;
    double a, b;
    if (shape_from_type(l, st->type, &s, 0) || read_init(l, st->value, &init, &a, &b))
        return;
    char *name = join_name(f->prefix, st->name);
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

static value eval_statement_value(lower *l, frame *f, const ast_stmt *st) {
    const char *name = st->kind == ST_LOSS ? "loss" : st->kind == ST_EXPR ? NULL : st->name;
    begin_statement(l, f, name, st->value);
    value v = eval(l, st->value);
    f->stmt_name = NULL;
    f->n_decl_calls = 0;
    return v;
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

/* The optimizers and their settings: ir/optimizers.def, which the
 * optimizer pass reads too. */
static const char *const optimizer_names[] = {
#define OPTIMIZER(name, rule, decoupled_decay) #name,
#include "optimizers.def"
};

static const struct {
    const char *optimizer, *key;
} optimizer_settings[] = {
#define OPT_SETTING(optimizer, key, fallback) {#optimizer, #key},
#include "optimizers.def"
};

/* The settings `optimizer` takes, as a NULL-terminated list in keys
 * (room for 16); 0 if there is no optimizer of that name. */
static int optimizer_keys(const char *optimizer, const char **keys) {
    int known = 0, n = 0;
    for (size_t i = 0; i < sizeof optimizer_names / sizeof optimizer_names[0]; i++)
        known |= strcmp(optimizer_names[i], optimizer) == 0;
    for (size_t i = 0; i < sizeof optimizer_settings / sizeof optimizer_settings[0] && n < 15; i++)
        if (strcmp(optimizer_settings[i].optimizer, optimizer) == 0)
            keys[n++] = optimizer_settings[i].key;
    keys[n] = NULL;
    return known;
}

/* Appends ", name" (or "name" to an empty buf): the "known: ..." lists. */
static void append_name(char *buf, size_t size, const char *name) {
    size_t n = strlen(buf);
    snprintf(buf + n, size - n, "%s%s", n ? ", " : "", name);
}

/* The learning-rate schedules the runtime applies, and their settings. */
static const struct {
    const char *name;
    const char *const keys[4];
} schedules[] = {
    {"constant", {"warmup", NULL}},
    {"step", {"step_size", "gamma", "warmup", NULL}},
    {"exponential", {"gamma", "warmup", NULL}},
    {"cosine", {"min_lr", "warmup", NULL}},
};

/* Reads name = number settings of a call into names/values (at most 8). */
static int read_settings(lower *l, const ast_expr *call, const char *what, const char *const *keys, const char *first,
                         char **names, double *values, int *n) {
    args a;
    if (eval_args(l, call, &a) || check_keywords(l, &a, what, keys))
        return -1;
    for (int i = 0; i < a.n; i++) {
        const char *key = a.arg[i].name ? a.arg[i].name : (i == 0 ? first : NULL);
        if (!key) {
            error_at(l, a.arg[i].value->loc, "write %s settings as name = value", what);
            return -1;
        }
        if (!is_number(a.v[i])) {
            error_at(l, a.arg[i].value->loc, "'%s' must be a number", key);
            return -1;
        }
        if (num(a.v[i]) < 0) {
            error_at(l, a.arg[i].value->loc, "'%s' must not be negative", key);
            return -1;
        }
        if (*n < 8) {
            names[*n] = ir_xstrdup(key);
            values[(*n)++] = num(a.v[i]);
        }
    }
    return 0;
}

/* schedule = cosine(min_lr = 1e-5, warmup = 100) */
static void read_schedule(lower *l, const ast_expr *e) {
    ir_graph *g = l->g;
    const ast_expr *callee = e->kind == AST_CALL ? e->lhs : e;
    int k = -1;
    if (callee && callee->kind == AST_NAME)
        for (size_t i = 0; i < sizeof schedules / sizeof schedules[0]; i++)
            if (strcmp(schedules[i].name, callee->name) == 0)
                k = (int)i;
    if (k < 0) {
        char known[128] = "";
        for (size_t i = 0; i < sizeof schedules / sizeof schedules[0]; i++)
            append_name(known, sizeof known, schedules[i].name);
        error_at(l, callee ? callee->loc : e->loc, "unknown learning-rate schedule (known: %s)", known);
        return;
    }
    if (g->schedule) {
        error_at(l, e->loc, "the schedule is given twice");
        return;
    }
    g->schedule = ir_xstrdup(callee->name);
    if (e->kind == AST_CALL)
        read_settings(l, e, callee->name, schedules[k].keys, NULL, g->sched_arg_names, g->sched_arg_values,
                      &g->n_sched_args);
}

static void read_train(lower *l, const ast_stmt *st) {
    ir_graph *g = l->g;
    if (l->have_train++) {
        error_at(l, st->loc, "only one train statement is allowed");
        return;
    }
    const ast_expr *opt = st->value;
    const ast_expr *callee = opt && opt->kind == AST_CALL ? opt->lhs : opt;
    if (!callee || callee->kind != AST_NAME) {
        error_at(l, opt ? opt->loc : st->loc, "expected an optimizer: sgd(lr = ...), momentum(...) or adam(...)");
        return;
    }
    const char *name = callee->name;
    const char *keys[16];
    if (!optimizer_keys(name, keys)) {
        char known[128] = "";
        for (size_t i = 0; i < sizeof optimizer_names / sizeof optimizer_names[0]; i++)
            append_name(known, sizeof known, optimizer_names[i]);
        error_at(l, callee->loc, "unknown optimizer '%s' (known: %s)", name, known);
        return;
    }
    free(g->optimizer);
    g->optimizer = ir_xstrdup(name);
    if (opt->kind == AST_CALL &&
        read_settings(l, opt, name, keys, "lr", g->opt_arg_names, g->opt_arg_values, &g->n_opt_args))
        return;
    for (int i = 0; i < st->n_args; i++) {
        const ast_arg *arg = &st->args[i];
        if (arg->name && strcmp(arg->name, "schedule") == 0) {
            read_schedule(l, arg->value);
            continue;
        }
        value v = eval(l, arg->value);
        if (v.kind == V_ERROR)
            continue;
        int64_t *slot = NULL;
        if (arg->name && strcmp(arg->name, "batch") == 0)
            slot = &g->batch;
        else if (arg->name && strcmp(arg->name, "epochs") == 0)
            slot = &g->epochs;
        if (arg->name && strcmp(arg->name, "seed") == 0) {
            if (v.kind != V_INT || v.i < 0)
                error_at(l, arg->value->loc, "seed must be a non-negative integer");
            else
                g->seed = (uint64_t)v.i;
        } else if (!slot) {
            error_at(l, arg->name ? arg->name_loc : arg->value->loc,
                     "unknown train setting '%s' (known: batch, epochs, seed, schedule)", arg->name ? arg->name : "?");
        } else if (v.kind != V_INT || v.i <= 0) {
            error_at(l, arg->value->loc, "'%s' must be a positive integer", arg->name);
        } else {
            *slot = v.i;
        }
    }
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
    case ST_ASSIGN: {
        value v = eval_statement_value(l, f, st);
        bind(l, f, st->name, v, st->name_loc);
        break;
    }
    case ST_LOSS: {
        if (g->loss >= 0) {
            error_at(l, st->loc, "only one loss statement is allowed; add the terms: loss a + b");
            break;
        }
        value v = scalar_f32(l, eval_statement_value(l, f, st), st->value->loc, "loss");
        if (v.kind == V_TENSOR)
            g->loss = v.node;
        break;
    }
    case ST_METRIC: {
        value v = scalar_f32(l, eval_statement_value(l, f, st), st->value->loc, "metric");
        if (v.kind == V_TENSOR)
            ir_add_metric(g, st->name, v.node);
        break;
    }
    case ST_OUTPUT: {
        value v;
        if (st->value) {
            v = eval_statement_value(l, f, st);
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

    /* The batch bound must be known before any shape is built: the train
     * statement's `batch = N` (read fully, with its errors, later). */
    l.batch_size = opt && opt->max_batch > 0 ? opt->max_batch : 0;
    for (int i = 0; i < user->n_stmts && !l.batch_size; i++) {
        const ast_stmt *st = user->stmts[i];
        for (int k = 0; st->kind == ST_TRAIN && k < st->n_args; k++)
            if (st->args[k].name && strcmp(st->args[k].name, "batch") == 0 && st->args[k].value->kind == AST_INT &&
                st->args[k].value->int_value > 0 && st->args[k].value->int_value <= (1 << 24))
                l.batch_size = st->args[k].value->int_value;
    }
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
    l.g->max_batch = l.batch_size;
    free_frame(&model);
    if (diag_error_count() != errors_before) {
        ir_graph_free(l.g);
        return NULL;
    }
    return l.g;
}
