/*
 * lower_internal.h - what the files of the lowering share.
 *
 * Lowering is split by job: lower.c walks the program (names, inlining,
 * expressions, parameters, model statements), builtins.c is the library of
 * built-in functions the walk calls, scan.c lowers the scan builtin (which
 * inlines its cell once, as a loop's body), and train.c reads the `train`
 * statement.  They share the walker's state, the `value` an expression
 * evaluates to, the evaluated arguments of a call, and the helpers below,
 * which lower.c defines.
 */
#ifndef MDL_LOWER_INTERNAL_H
#define MDL_LOWER_INTERNAL_H

#include "lower.h"

typedef enum { V_ERROR, V_TENSOR, V_INT, V_FLOAT, V_BATCH, V_TUPLE } value_kind;

/* V_TUPLE: the several results of a call, `node` indexing lower.tuples
 * and `i` their count.  Only a call's result and a function's last
 * expression may be a tuple; eval() refuses one anywhere else. */
typedef struct value {
    value_kind kind;
    int node;      /* V_TENSOR; V_TUPLE: index in lower.tuples */
    int64_t i;     /* V_INT; V_TUPLE: the number of items */
    double f;      /* V_FLOAT */
} value;

#define MAX_RESULTS 8 /* items of a tuple */
typedef struct tuple {
    int items[MAX_RESULTS]; /* tensor nodes */
} tuple;

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
    int n_tuples, cap_tuples;    /* every tuple made, freed at the end */
    tuple *tuples;
    int gen;                     /* lowering the generation entry (lower_generation) */
    int64_t gen_context;         /* there: the training window's length (dim 1 of the inputs) */
    int uses_positions;          /* positions() or kv_cache() was called: the model needs the
                                    generation entry even without a `state` */
    int n_caches;                /* kv_cache states made so far (their names) */
} lower;

/* The evaluated arguments of a call. */
typedef struct args {
    int n;
    const ast_arg *arg;      /* as written */
    value v[16];             /* evaluated positional + keyword, in written order */
} args;

static const value ERR = {V_ERROR, -1, 0, 0};

static inline value tensor(int node) {
    value v = {node < 0 ? V_ERROR : V_TENSOR, node, 0, 0};
    return v;
}
static inline value int_value(int64_t i) { return (value){V_INT, -1, i, 0}; }
static inline value float_value(double f) { return (value){V_FLOAT, -1, 0, f}; }
static inline int is_number(value v) { return v.kind == V_INT || v.kind == V_FLOAT; }
static inline double num(value v) { return v.kind == V_INT ? (double)v.i : v.f; }
static inline ir_dtype dtype_of(lower *l, value v) { return l->g->nodes[v.node].dtype; }
static inline const ir_shape *shape_of(lower *l, value v) { return &l->g->nodes[v.node].shape; }

/* ------------------------------------------------------------ lower.c */

void error_at(lower *l, src_loc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* error_at with a "did you mean 'guess'?" note (and its fix-it) before the
 * chain of calls; no note when guess is NULL. */
void error_suggesting(lower *l, src_loc loc, const char *guess, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The closest of `known` (NULL-terminated) to `typed`, or NULL. */
const char *closest_of(const char *typed, const char *const *known);
/* The closest function a call could have meant: user, prelude or builtin. */
const char *closest_function(lower *l, const char *typed);
value graph_error(lower *l, src_loc loc); /* reports the IR builder's g->error */
char *join_name(const char *a, const char *b); /* "a.b", or the one that is not empty */
const char *kind_name(value v);
value eval(lower *l, const ast_expr *e);
/* eval that also accepts several results: a call returning a tuple, or a
 * tuple (a, b) of tensors. */
value eval_results(lower *l, const ast_expr *e);
value make_tuple(lower *l, const int *nodes, int n);
const int *tuple_items(lower *l, value v);
char *type_of(lower *l, value v, char *buf, size_t n);
const ast_fn *find_fn(lower *l, const char *name);
/* Inlines fn with the evaluated arguments a (as written at e, whose
 * position and name the parameters it declares take). */
value inline_call(lower *l, const ast_expr *e, const ast_fn *fn, args *a);
value as_tensor(lower *l, value v, ir_dtype want);
value cast_to(lower *l, value v, ir_dtype to, src_loc loc);
void promote(lower *l, value *a, value *b, src_loc loc);
int eval_args(lower *l, const ast_expr *e, args *a);
int find_arg(const args *a, const char *name, int position);
int n_positional(const args *a);
int check_keywords(lower *l, const args *a, const char *fn, const char *const *allowed);

/* --------------------------------------------------------- builtins.c */

typedef value (*builtin_fn)(lower *l, const ast_expr *e, args *a);
builtin_fn find_builtin(const char *name); /* NULL: no builtin of that name */
const char *builtin_name(int i);           /* the i-th builtin's name, NULL past the last */
value lower_gather(lower *l, src_loc loc, value table, value idx); /* table[idx], a vector or [V, D] table */

/* ------------------------------------------------------------ index.c */

value lower_index(lower *l, const ast_expr *e); /* x[...] */

/* ------------------------------------------------------------- scan.c */

/* scan(cell, xs, init, ..., axis = 1, reverse = false) */
value lower_scan(lower *l, const ast_expr *e);

/* ------------------------------------------------------------ train.c */

void read_train(lower *l, const ast_stmt *st);
int64_t train_batch(const ast_program *user); /* the train statement's `batch = N`, or 0 */

#endif
