/*
 * ast.c - source files, the node arena and the --emit=ast dump.
 *
 * A source file is read whole (it may hold any bytes, NULs included) and
 * indexed by line so a diagnostic can echo its line.  The arena hands out
 * zeroed blocks from large chunks and frees them all at once; the parser
 * allocates every node, string and list from it, so discarding a
 * half-built tree during error recovery leaks nothing.  The dump prints
 * the tree as indented statements over S-expressions; it is stable, so
 * golden tests compare it as text.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ast.h"
#include "ir.h" /* ir_x*: out of memory ends the compiler */

/* ---------------------------------------------------------------- sources */

/* A line starts at offset 0 and after every '\n' but a final one. */
static void index_lines(src_file *f) {
    int n = 1;
    for (size_t i = 0; i + 1 < f->len; i++)
        n += f->text[i] == '\n';
    f->line_start = ir_xcalloc((size_t)n, sizeof *f->line_start);
    f->n_lines = 0;
    f->line_start[f->n_lines++] = 0;
    for (size_t i = 0; i + 1 < f->len; i++)
        if (f->text[i] == '\n')
            f->line_start[f->n_lines++] = i + 1;
}

/* Takes ownership of text, which holds len bytes and a NUL after them. */
static src_file *make_file(const char *path, char *text, size_t len) {
    src_file *f = ir_xcalloc(1, sizeof *f);
    size_t n = strlen(path);
    f->path = ir_xcalloc(n + 1, 1);
    memcpy(f->path, path, n);
    f->text = text;
    f->len = len;
    index_lines(f);
    return f;
}

src_file *src_open(const char *path) {
    FILE *in = fopen(path, "rb");
    if (!in)
        return NULL;
    size_t cap = 4096, len = 0, got;
    char *text = ir_xcalloc(cap + 1, 1);
    while ((got = fread(text + len, 1, cap - len, in)) > 0) {
        len += got;
        if (len < cap)
            continue;
        text = ir_xrealloc(text, 2 * cap + 1);
        cap *= 2;
    }
    if (ferror(in)) { /* a directory, say: keep fread's errno */
        int err = errno ? errno : EIO;
        free(text);
        fclose(in);
        errno = err;
        return NULL;
    }
    fclose(in);
    text[len] = 0;
    return make_file(path, text, len);
}

src_file *src_from_bytes(const char *path, const char *bytes, size_t len) {
    char *copy = ir_xcalloc(len + 1, 1);
    if (len)
        memcpy(copy, bytes, len);
    return make_file(path, copy, len);
}

src_file *src_from_string(const char *path, const char *text) {
    return src_from_bytes(path, text, strlen(text));
}

void src_free(src_file *f) {
    if (!f)
        return;
    free(f->path);
    free(f->text);
    free(f->line_start);
    free(f);
}

/* ------------------------------------------------------------------ arena */

enum { CHUNK_SIZE = 64 * 1024 };

typedef struct chunk {
    struct chunk *next;
    size_t used, size;
    max_align_t data[];
} chunk;

struct ast_arena {
    chunk *head; /* the chunk being filled, then the full ones */
};

ast_arena *ast_arena_new(void) { return ir_xcalloc(1, sizeof(ast_arena)); }

void ast_arena_free(ast_arena *a) {
    if (!a)
        return;
    for (chunk *c = a->head, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    free(a);
}

static chunk *new_chunk(size_t size) {
    if (size > SIZE_MAX - sizeof(chunk)) {
        fprintf(stderr, "mdlc: error: out of memory\n");
        exit(70);
    }
    chunk *c = ir_xcalloc(1, sizeof(chunk) + size);
    c->size = size;
    return c;
}

void *ast_alloc(ast_arena *a, size_t size) {
    size_t align = _Alignof(max_align_t);
    if (size > SIZE_MAX - align)
        size = SIZE_MAX; /* new_chunk refuses it */
    else
        size = (size + align - 1) / align * align;
    chunk *c = a->head;
    if (c && c->size - c->used >= size) {
        void *p = (char *)c->data + c->used;
        c->used += size;
        return p; /* chunks come zeroed from calloc and are never reused */
    }
    if (size > CHUNK_SIZE / 4) {
        /* a big block gets a chunk of its own, behind the one being filled */
        chunk *big = new_chunk(size);
        big->used = size;
        big->next = c ? c->next : NULL;
        if (c)
            c->next = big;
        else
            a->head = big;
        return big->data;
    }
    c = new_chunk(CHUNK_SIZE);
    c->next = a->head;
    a->head = c;
    c->used = size;
    return c->data;
}

char *ast_strdup(ast_arena *a, const char *s, size_t len) {
    char *d = ast_alloc(a, len + 1);
    memcpy(d, s, len);
    d[len] = 0;
    return d;
}

/* ------------------------------------------------------------------- dump */

typedef struct dumper {
    FILE *out;
    int locs; /* append @line:col+len to every node */
} dumper;

static void dump_loc(const dumper *d, src_loc loc) {
    if (d->locs)
        fprintf(d->out, "@%d:%d+%d", loc.line, loc.col, loc.len);
}

static const char *op_text(int op) {
    switch (op) {
    case OP_ADD: return "+";
    case OP_SUB: return "-";
    case OP_MUL: return "*";
    case OP_DIV: return "/";
    case OP_POW: return "^";
    case OP_MATMUL: return "@";
    case OP_LT: return "<";
    case OP_GT: return ">";
    case OP_LE: return "<=";
    case OP_GE: return ">=";
    case OP_EQ: return "==";
    case OP_NE: return "!=";
    default: return "?";
    }
}

/* The shortest text that reads back as the same double, always with a
 * '.' or an exponent so it cannot be taken for an integer: 1.0, 0.001,
 * 1e+20. */
static void dump_float(FILE *out, double v) {
    char buf[40];
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    if (!strpbrk(buf, ".eEn")) /* n: inf, nan */
        strcat(buf, ".0");
    fputs(buf, out);
}

static void dump_expr(const dumper *d, const ast_expr *e);

static void dump_args(const dumper *d, int n, const ast_arg *args, const char *first_sep) {
    for (int i = 0; i < n; i++) {
        fputs(i == 0 ? first_sep : " ", d->out);
        if (args[i].name) {
            fputs(args[i].name, d->out);
            dump_loc(d, args[i].name_loc);
            fputc('=', d->out);
        }
        dump_expr(d, args[i].value);
    }
}

/* S-expressions: (+ a b), (- x), (call f a k=v), (. h1 W), (index E t), [a b],
 * (tuple a b) */
static void dump_expr(const dumper *d, const ast_expr *e) {
    FILE *out = d->out;
    if (!e) {
        fputs("<null>", out);
        return;
    }
    switch (e->kind) {
    case AST_INT: fprintf(out, "%lld", (long long)e->int_value); break;
    case AST_FLOAT: dump_float(out, e->float_value); break;
    case AST_NAME: fputs(e->name, out); break;
    case AST_BINARY:
    case AST_UNARY: fprintf(out, "(%s", op_text(e->op)); break;
    case AST_CALL: fputs("(call", out); break;
    case AST_MEMBER: fputs("(.", out); break;
    case AST_INDEX: fputs("(index", out); break;
    case AST_LIST: fputc('[', out); break;
    case AST_TUPLE: fputs("(tuple", out); break;
    case AST_SLICE: fputs("(:", out); break;
    case AST_ELLIPSIS: fputs("...", out); break;
    }
    dump_loc(d, e->loc);
    switch (e->kind) {
    case AST_INT:
    case AST_FLOAT:
    case AST_NAME:
    case AST_ELLIPSIS: return;
    case AST_SLICE:
        fputc(' ', out);
        dump_expr(d, e->lhs);
        fputc(' ', out);
        dump_expr(d, e->rhs);
        break;
    case AST_BINARY:
        fputc(' ', out);
        dump_expr(d, e->lhs);
        fputc(' ', out);
        dump_expr(d, e->rhs);
        break;
    case AST_UNARY:
        fputc(' ', out);
        dump_expr(d, e->lhs);
        break;
    case AST_CALL:
    case AST_INDEX:
        fputc(' ', out);
        dump_expr(d, e->lhs);
        dump_args(d, e->n_args, e->args, " ");
        break;
    case AST_MEMBER:
        fputc(' ', out);
        dump_expr(d, e->lhs);
        fprintf(out, " %s", e->name);
        break;
    case AST_LIST:
        dump_args(d, e->n_args, e->args, "");
        fputc(']', out);
        return;
    case AST_TUPLE:
        dump_args(d, e->n_args, e->args, " ");
        break;
    }
    fputc(')', out);
}

static void dump_type(const dumper *d, const ast_type *t) {
    static const char *const names[] = {"any", "f32", "i32", "int", "float"};
    fputs(t->kind <= TY_FLOAT ? names[t->kind] : "?", d->out);
    if (t->has_shape) {
        fputc('[', d->out);
        for (int i = 0; i < t->rank; i++) {
            if (i)
                fputs(", ", d->out);
            dump_expr(d, t->dims[i]);
        }
        fputc(']', d->out);
    }
    dump_loc(d, t->loc);
}

static const char *stmt_word(ast_stmt_kind kind) {
    static const char *const words[] = {"assign", "param", "expr",  "input", "target", "loss",
                                        "metric", "output", "train", "model", "state",  "update", "hyper"};
    return kind <= ST_HYPER ? words[kind] : "?";
}

/* One line: the statement's word, its name, its type, its value, its
 * train settings. */
static void dump_stmt(const dumper *d, const ast_stmt *s, const char *indent) {
    FILE *out = d->out;
    fprintf(out, "%s%s", indent, stmt_word(s->kind));
    dump_loc(d, s->loc);
    if (s->name) {
        fprintf(out, " %s", s->name);
        if (s->kind != ST_ASSIGN)
            dump_loc(d, s->name_loc);
    }
    for (int i = 1; i < s->n_names; i++) { /* a, b = ... */
        fprintf(out, ", %s", s->names[i]);
        dump_loc(d, s->names_loc[i]);
    }
    if (s->type) {
        fputs(": ", out);
        dump_type(d, s->type);
    }
    if (s->value) {
        fputs(s->name ? " = " : " ", out);
        dump_expr(d, s->value);
    }
    dump_args(d, s->n_args, s->args, " ");
    fputc('\n', out);
}

static void dump_fn(const dumper *d, const ast_fn *fn) {
    FILE *out = d->out;
    fprintf(out, "fn %s", fn->name);
    dump_loc(d, fn->loc);
    fputc('(', out);
    for (int k = 0; k < fn->n_params; k++) {
        const ast_fparam *p = &fn->params[k];
        fprintf(out, "%s%s", k ? ", " : "", p->name);
        dump_loc(d, p->loc);
        if (p->type) {
            fputs(": ", out);
            dump_type(d, p->type);
        }
        if (p->default_value) {
            fputs(" = ", out);
            dump_expr(d, p->default_value);
        }
    }
    fputs(")\n", out);
    for (int k = 0; k < fn->n_body; k++)
        dump_stmt(d, fn->body[k], "  ");
}

static void dump_program(const dumper *d, const ast_program *prog) {
    for (int i = 0; i < prog->n_fns; i++)
        dump_fn(d, prog->fns[i]);
    for (int i = 0; i < prog->n_stmts; i++)
        dump_stmt(d, prog->stmts[i], "");
}

void ast_dump(const ast_program *prog, FILE *out) { dump_program(&(dumper){out, 0}, prog); }

void ast_dump_locs(const ast_program *prog, FILE *out) { dump_program(&(dumper){out, 1}, prog); }
