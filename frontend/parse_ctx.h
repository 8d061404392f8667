/*
 * parse_ctx.h - state shared by the scanner (lex.l) and the parser (parse.y).
 *
 * The scanner keeps the position of the next byte, the stack of brackets
 * that are open (newlines inside ( ) and [ ] are not statement ends, inside
 * { } they are), and a little memory about the last token so the parser can
 * phrase a syntax error in the user's words and recover from it.  Neither
 * file is useful without the other; nothing outside frontend/ includes this.
 */
#ifndef MDL_PARSE_CTX_H
#define MDL_PARSE_CTX_H

#include "ast.h"

/* One ( [ or { that has not been closed yet. */
typedef struct open_bracket {
    char ch;
    int line, col;
    int indent;          /* leading blanks of the line it is on */
} open_bracket;

/* A growing array kept in the arena (the parser's lists of nodes). */
typedef struct arg_list { int n, cap; ast_arg *items; int depth; } arg_list;
typedef struct expr_list { int n, cap; ast_expr **items; } expr_list;
typedef struct stmt_list { int n, cap; ast_stmt **items; int errors_before; } stmt_list;
typedef struct fparam_list { int n, cap; ast_fparam *items; } fparam_list;
typedef struct name_list { int n, cap; const char **names; src_loc *locs; } name_list;

typedef struct parse_ctx {
    const src_file *file;
    ast_arena *arena;
    ast_program *prog;
    int cap_fns, cap_stmts;

    /* scanner position: the next byte, and the start of the last match */
    size_t pos;
    int line, col;
    size_t tok_pos;
    int tok_line, tok_col;

    /* open brackets, innermost last (malloc'd, freed by parse_program) */
    open_bracket *open;
    int n_open, cap_open;

    int last_token;        /* kind of the last token returned, 0 at the start */
    int tok_unmatched;     /* the last token is a closer with no opener */
    open_bracket before;   /* innermost bracket before the last token */
    int has_before;
    /* The first newline swallowed by a bracket that is followed by a line
       indented no deeper than the bracket's own: if the statement turns
       out broken, it most likely broke there (a bracket never closed). */
    int suspect;
    int suspect_line, suspect_col;       /* the newline */
    size_t suspect_next_pos;             /* the start of the line after it */
    open_bracket suspect_bracket;        /* the innermost bracket then */
    size_t rewound_to;                   /* rewinds only ever go forward */
    open_bracket closed_brace;           /* the '{' the last token closed */
    int has_closed_brace;
    int recovering;        /* after a syntax error inside brackets */
    int pending_newline;   /* return a NEWLINE before scanning on */
    int eof_newline;       /* the NEWLINE made up at the end of the file was sent */
    int at_eof;            /* the last token is that NEWLINE or the end */
    int deep_reported;     /* "nested too deeply" said for this statement */
    /* The statement's first token when it is a name, and how many tokens
       the statement has so far: `parm w` (two names in a row, never valid)
       is most likely a misspelt keyword. */
    const char *first_word;
    int first_word_line, first_word_col;
    int stmt_tokens;
    /* caches that keep the look-aheads linear on pathological input */
    int indent_line, indent;               /* lex_line_indent */
    size_t blank_from, blank_to;           /* only blank lines between ... */
    int blank_indent;                      /* ... and the indent after */
} parse_ctx;

/* An expression under construction and the depth of its tree: deeper
 * trees are refused so the recursive phases after the parser (dump,
 * lowering) never run out of stack, however long the input. */
typedef struct expr_val { ast_expr *e; int depth; } expr_val;
typedef struct arg_val { ast_arg arg; int depth; } arg_val;
#define PARSE_MAX_EXPR_DEPTH 1000

/* Defined in lex.l; the parser drives the scanner only through these. */
int lex_begin(parse_ctx *c, void **scanner);
void lex_end(void *scanner);
/* Makes the scanner return a NEWLINE at the suspect newline and then scan
 * on from the line after it (see `suspect`). */
void lex_rewind_to_suspect(void *scanner, parse_ctx *c);
/* The indentation of a line, and of the first line after `pos` that holds
 * code (-1 at the end of the file). */
int lex_line_indent(parse_ctx *c, int line);
int lex_next_code_indent(parse_ctx *c, size_t pos);
/* The statement keyword closest to a name (`parm` -> "param"), or NULL. */
const char *lex_closest_keyword(const char *name);

/* Turns a bison location (first/last line and column, last inclusive)
 * into a src_loc; a construct over several lines is marked to the end of
 * its first line. */
src_loc parse_loc(const parse_ctx *c, int first_line, int first_col, int last_line, int last_col);

#endif
