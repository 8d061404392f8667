/*
 * ast.h - the syntax tree of a .mdl file, source positions and diagnostics.
 *
 * The parser (parse.y + lex.l) builds this tree; lower.c walks it to build
 * the graph IR.  Every node keeps the position it came from so any later
 * phase can report `file:line:col: error: ...` with the source line and a
 * caret.  All nodes of one parse live in one ast_arena and are freed
 * together, which is what makes "no leak on any input" easy to keep even
 * when bison discards half-built trees during error recovery.
 */
#ifndef MDL_AST_H
#define MDL_AST_H

#include <stdarg.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------- sources */

typedef struct src_file {
    char *path;        /* as given on the command line, or "<prelude>" */
    char *text;        /* whole contents, NUL-terminated */
    size_t len;
    int n_lines;
    size_t *line_start; /* byte offset of each line, n_lines entries */
} src_file;

/* Reads a whole file; NULL with errno set on failure. */
src_file *src_open(const char *path);
src_file *src_from_string(const char *path, const char *text);
src_file *src_from_bytes(const char *path, const char *bytes, size_t len); /* may hold NULs */
void src_free(src_file *f);

typedef struct src_loc {
    const src_file *file;
    int line, col;     /* 1-based; col counts bytes */
    int len;           /* length of the token or construct on its first line, >= 1 */
} src_loc;

/* ------------------------------------------------------------ diagnostics */

/* Every error is "path:line:col: error: message", then the source line and a
 * caret (with ~ under the rest of the construct), like clang.  Errors are
 * counted; a phase keeps going where it can so one run reports several. */
void diag_error(src_loc loc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void diag_note(src_loc loc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A warning: printed like an error but not counted. */
void diag_warning(src_loc loc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void diag_verror(const char *kind, src_loc loc, const char *fmt, va_list ap);
/* An error with no position (a missing file, a bad option). */
void diag_plain(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int diag_error_count(void);
/* Diagnostics between these are counted but not printed, and the count is
 * put back at the end, which returns how many errors there were: for a
 * try whose failure is not the user's (the generation entry). */
int diag_quiet_begin(void);
int diag_quiet_end(int begun);
void diag_reset(void);
/* Where diagnostics go (default: stderr; the fuzzer silences them). */
void diag_set_stream(FILE *f);
/* Stop printing after this many errors (default 20). */
void diag_set_limit(int max_errors);
/* True once more errors than the limit were reported: a phase should stop. */
int diag_limit_reached(void);
/* A note with a fix-it: after the source line and its caret, a line with
 * `replacement` under the construct at loc, as clang shows one:
 *   model.mdl:4:5: note: did you mean 'softmax'?
 *   y = sofmax(x)
 *       ^~~~~~
 *       softmax */
void diag_note_fixit(src_loc loc, const char *replacement, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ------------------------------------------------------- did you mean (suggest.c) */

/* The known name closest to a misspelt one: begin with what was typed,
 * offer every name it could have meant, then suggest_best is the one
 * clearly closest, or NULL when none is close or two are equally close. */
typedef struct suggestion {
    const char *typed;
    const char *best;
    int distance;
    int tied;
} suggestion;
void suggest_begin(suggestion *s, const char *typed);
void suggest_offer(suggestion *s, const char *candidate);
const char *suggest_best(const suggestion *s);
/* Optimal-string-alignment edit distance of a and b, or a number larger
 * than limit once it is certain to exceed it. */
int suggest_distance(const char *a, const char *b, int limit);

/* ------------------------------------------------------------------ arena */

typedef struct ast_arena ast_arena;
ast_arena *ast_arena_new(void);
void ast_arena_free(ast_arena *a);
void *ast_alloc(ast_arena *a, size_t size);      /* zeroed */
char *ast_strdup(ast_arena *a, const char *s, size_t len);

/* ------------------------------------------------------------------- tree */

typedef enum {
    /* expressions */
    AST_INT,        /* int_value */
    AST_FLOAT,      /* float_value */
    AST_NAME,       /* name */
    AST_BINARY,     /* op, lhs, rhs */
    AST_UNARY,      /* op ('-' or '+'), lhs */
    AST_CALL,       /* lhs = callee expression (usually AST_NAME), args */
    AST_MEMBER,     /* lhs.name  (h1.W) */
    AST_INDEX,      /* lhs[args] (E[tokens]) */
    AST_LIST,       /* [args]    (a shape: [B, 1]) */
    AST_TUPLE,      /* (args)    ((h, c): several results of a function) */
    AST_SLICE,      /* lhs:rhs inside x[...], either may be NULL (x[:, 1:3]) */
    AST_ELLIPSIS,   /* ... inside x[...]: every dim not named */
} ast_expr_kind;

typedef enum {
    OP_ADD = '+', OP_SUB = '-', OP_MUL = '*', OP_DIV = '/', OP_POW = '^',
    OP_MATMUL = '@', OP_LT = '<', OP_GT = '>',
    OP_LE = 256, OP_GE, OP_EQ, OP_NE,
} ast_op;

typedef struct ast_expr ast_expr;

/* One argument of a call, index or list: `expr` or `name = expr`. */
typedef struct ast_arg {
    const char *name;  /* keyword, or NULL when positional */
    src_loc name_loc;
    ast_expr *value;
} ast_arg;

struct ast_expr {
    ast_expr_kind kind;
    src_loc loc;       /* the whole expression; for AST_BINARY the operator */
    int op;            /* ast_op for BINARY/UNARY */
    int64_t int_value;
    double float_value;
    const char *name;  /* NAME, MEMBER */
    ast_expr *lhs, *rhs;
    int n_args;
    ast_arg *args;
};

typedef enum { TY_ANY = 0, TY_F32, TY_I32, TY_INT, TY_FLOAT } ast_type_kind;

/* `f32[B, I]`, `i32[B]`, `f32[]` (scalar), `f32` (tensor of any shape),
 * `int`, `float`.  Dims are expressions: names bind or refer to shape
 * variables, integers are fixed, arithmetic on them is allowed. */
typedef struct ast_type {
    ast_type_kind kind;
    src_loc loc;
    int has_shape;     /* 1 when a [...] was written */
    int rank;
    ast_expr **dims;
} ast_type;

typedef enum {
    ST_ASSIGN,   /* name = value, or names[0], names[1], ... = value */
    ST_PARAM,    /* param name: type [= value]   (value = initialiser) */
    ST_EXPR,     /* value                        (a function's result) */
    ST_INPUT,    /* input name: type */
    ST_TARGET,   /* target name: type */
    ST_LOSS,     /* loss value */
    ST_METRIC,   /* metric name = value */
    ST_OUTPUT,   /* output name [= value]        (value NULL: output the binding `name`) */
    ST_TRAIN,    /* train value, kwargs...       (value = optimizer call, e.g. adam(lr = 1e-3)) */
    ST_MODEL,    /* model name */
    ST_STATE,    /* state name: type [= value]   (value = initialiser) */
    ST_UPDATE,   /* update name = value */
    ST_HYPER,    /* hyper name [: type] = value  (value = the default, a number) */
} ast_stmt_kind;

typedef struct ast_stmt {
    ast_stmt_kind kind;
    src_loc loc;       /* the keyword, or the name for ST_ASSIGN */
    const char *name;
    src_loc name_loc;
    ast_type *type;    /* ST_PARAM, ST_INPUT, ST_TARGET, ST_STATE; ST_HYPER: NULL if not written */
    ast_expr *value;
    int n_args;        /* ST_TRAIN: batch = 64, epochs = 5, ... */
    ast_arg *args;
    int n_names;       /* ST_ASSIGN of a tuple (a, b = f(x)): >= 2, else 0 */
    const char **names;  /* names[0] == name */
    src_loc *names_loc;
} ast_stmt;

typedef struct ast_fparam {
    const char *name;
    src_loc loc;
    ast_type *type;    /* NULL when not annotated */
    ast_expr *default_value; /* NULL when required */
} ast_fparam;

typedef struct ast_fn {
    const char *name;
    src_loc loc;       /* the name */
    int n_params;
    ast_fparam *params;
    int n_body;
    ast_stmt **body;   /* the last one is ST_EXPR: the result */
} ast_fn;

typedef struct ast_program {
    const src_file *file;
    int n_fns;
    ast_fn **fns;      /* in source order */
    int n_stmts;
    ast_stmt **stmts;  /* model-level statements in source order, incl. ST_MODEL */
} ast_program;

/* Parses one file.  Returns the program (possibly partial) and reports
 * syntax errors through diag_error; check diag_error_count().  Never NULL
 * except on out-of-memory.  Everything is allocated in `arena`. */
ast_program *parse_program(const src_file *file, ast_arena *arena);

/* --emit=ast: a stable, indented dump used by golden tests. */
void ast_dump(const ast_program *prog, FILE *out);
/* The same with every node's position appended as @line:col+len. */
void ast_dump_locs(const ast_program *prog, FILE *out);

#endif
