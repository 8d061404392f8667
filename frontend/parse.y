/*
 * parse.y - the grammar of .mdl files.
 *
 * A reentrant LALR(1) parser with locations (bison, `api.pure full`).
 * Every rule builds AST nodes in the arena (ast.h), so a subtree that error
 * recovery throws away needs no destructor.  A node keeps its position: a
 * name or literal its token, an operator node its operator, anything else
 * the whole construct (clipped to its first line), a statement its keyword
 * (an assignment its name, an expression statement the expression).
 *
 * Statements end at NEWLINE.  After a syntax error the parser skips to the
 * end of the line (`error NEWLINE`) or, inside a function body, to the end
 * of the line or the closing '}', and goes on, so one run reports every
 * broken line.  A bracket left open would hide all later newlines: the
 * scanner notes the first newline inside brackets that is followed by a
 * line indented no deeper than the bracket's own, and when the statement
 * then fails, yyreport_syntax_error says "expected ')' before newline"
 * there and rewinds the scanner to the line after it, which is parsed as
 * a statement of its own.
 *
 * Messages are written by yyreport_syntax_error from the tokens the parser
 * could have accepted (exact, thanks to LAC) and name what was found as the
 * user wrote it: "expected expression before newline", "expected ')'
 * before identifier 'y'" with a note at the '(', "unexpected end of file".
 */
%define api.pure full
%define api.prefix {mdl_yy}
%define parse.error custom
%define parse.lac full
%locations
%expect 0
%lex-param {void *scanner}
%parse-param {void *scanner} {parse_ctx *pc}

%code requires {
#include "parse_ctx.h"
}

%code {
#include <limits.h>
#include <string.h>

int mdl_yylex(MDL_YYSTYPE *yylval, MDL_YYLTYPE *yylloc, void *scanner);
static void yyerror(MDL_YYLTYPE *loc, void *scanner, parse_ctx *pc, const char *msg);

#define LOC(l) parse_loc(pc, (l).first_line, (l).first_column, (l).last_line, (l).last_column)

static void *grow(parse_ctx *pc, void *items, int n, int *cap, size_t size);
#define PUSH(list, item)                                                                           \
    do {                                                                                           \
        if ((list)->n == (list)->cap)                                                              \
            (list)->items = grow(pc, (list)->items, (list)->n, &(list)->cap, sizeof *(list)->items); \
        (list)->items[(list)->n++] = (item);                                                       \
    } while (0)

static expr_val leaf(parse_ctx *pc, ast_expr_kind kind, src_loc loc);
static expr_val binary(parse_ctx *pc, int op, src_loc loc, expr_val a, expr_val b);
static expr_val unary(parse_ctx *pc, int op, src_loc loc, expr_val a);
static expr_val with_args(parse_ctx *pc, ast_expr_kind kind, src_loc loc, expr_val *lhs, arg_list *args);
static arg_val index_item(parse_ctx *pc, ast_expr_kind kind, src_loc loc, expr_val *lo, expr_val *hi);
static expr_val member(parse_ctx *pc, src_loc loc, expr_val lhs, const char *name);
static void push_name(parse_ctx *pc, name_list *list, const char *name, src_loc loc);
static ast_stmt *destructure(parse_ctx *pc, name_list *names, ast_expr *value);
static arg_list *new_args(parse_ctx *pc);
static void push_arg(parse_ctx *pc, arg_list *list, arg_val a);
static ast_stmt *stmt(parse_ctx *pc, ast_stmt_kind kind, src_loc loc, const char *name, src_loc name_loc);
static ast_type *type(parse_ctx *pc, ast_type_kind kind, src_loc loc, expr_list *dims);
static ast_stmt *body_stmt(parse_ctx *pc, ast_stmt *s);
static ast_fn *make_fn(parse_ctx *pc, const char *name, src_loc loc, fparam_list *params, stmt_list *body,
                       src_loc close);
static void add_stmt(parse_ctx *pc, ast_stmt *s);
static void add_fn(parse_ctx *pc, ast_fn *fn);
}

%union {
    const char *name;
    int64_t int_value;
    double float_value;
    int op;
    expr_val ex;
    arg_val arg;
    ast_stmt *stmt;
    ast_type *type;
    ast_fn *fn;
    ast_fparam fparam;
    arg_list *args;
    expr_list *exprs;
    stmt_list *stmts;
    fparam_list *fparams;
    name_list *names;
}

%token <name> IDENT "identifier"
%token <int_value> INT "integer"
%token <float_value> FLOAT "number"
%token NEWLINE "newline"
%token KW_FN "'fn'" KW_MODEL "'model'" KW_INPUT "'input'" KW_TARGET "'target'"
%token KW_PARAM "'param'" KW_LOSS "'loss'" KW_METRIC "'metric'" KW_OUTPUT "'output'"
%token KW_TRAIN "'train'" KW_STATE "'state'" KW_UPDATE "'update'" KW_HYPER "'hyper'" KW_F32 "'f32'" KW_I32 "'i32'" KW_INT "'int'" KW_FLOAT "'float'"
%token LE "'<='" GE "'>='" EQ "'=='" NE "'!='" ELLIPSIS "'...'"

%type <ex> expr comparison sum product unary power postfix primary init_opt
%type <op> compare_op
%type <stmt> stmt body_item
%type <fn> fn_def
%type <type> type
%type <arg> arg index_arg
%type <args> args args_opt args_trail train_args tuple_items index_args
%type <names> names
%type <exprs> dims dims_opt shape_opt
%type <stmts> body body_lines
%type <fparam> fparam
%type <fparams> fparams fparams_opt

%%

/* program := (fn_def | stmt)*   one per line; blank lines anywhere */
program:
      %empty
    | program line
    ;

line:
      NEWLINE
    | stmt NEWLINE                  { add_stmt(pc, $1); }
    | fn_def NEWLINE                { if ($1) add_fn(pc, $1); }
    | error NEWLINE                 { yyerrok; pc->deep_reported = 0; }
    | KW_FN error NEWLINE           { yyerrok; } /* a header without '{' */
    ;

/* fn_def := 'fn' IDENT '(' [fparam (',' fparam)* [',']] ')' '{' body '}'
 * A broken header still has its body checked when its '{' is on the same
 * line. */
fn_def:
      KW_FN IDENT '(' fparams_opt ')' '{' body '}' {
          $$ = make_fn(pc, $2, LOC(@2), $4, $7, LOC(@8));
      }
    | KW_FN error '{' body '}'      { $$ = NULL; }
    ;

fparams_opt:
      %empty                        { $$ = NULL; }
    | fparams
    | fparams ','
    ;

fparams:
      fparam                        { $$ = ast_alloc(pc->arena, sizeof *$$); PUSH($$, $1); }
    | fparams ',' fparam            { $$ = $1; PUSH($$, $3); }
    ;

/* fparam := IDENT [':' type] ['=' expr] */
fparam:
      IDENT                         { $$ = (ast_fparam){$1, LOC(@1), NULL, NULL}; }
    | IDENT ':' type                { $$ = (ast_fparam){$1, LOC(@1), $3, NULL}; }
    | IDENT '=' expr                { $$ = (ast_fparam){$1, LOC(@1), NULL, $3.e}; }
    | IDENT ':' type '=' expr       { $$ = (ast_fparam){$1, LOC(@1), $3, $5.e}; }
    ;

/* body := (body_item? NEWLINE)* body_item?   -- the last item may sit
 * right before the '}' */
body:
      body_lines
    | body_lines body_item          { $$ = $1; if ($2) PUSH($$, $2); }
    ;

body_lines:
      %empty {
          $$ = ast_alloc(pc->arena, sizeof *$$);
          $$->errors_before = diag_error_count();
      }
    | body_lines NEWLINE
    | body_lines body_item NEWLINE  { $$ = $1; if ($2) PUSH($$, $2); }
    ;

/* body_item := stmt (an assignment, a param or an expression) | error */
body_item:
      stmt                          { $$ = body_stmt(pc, $1); }
    | error                         { $$ = NULL; pc->deep_reported = 0; }
    ;

/* stmt := IDENT '=' expr | IDENT (',' IDENT)+ '=' expr
 *       | 'param' IDENT ':' type ['=' expr] | expr
 *       | 'model' IDENT | 'input' IDENT ':' type | 'target' IDENT ':' type
 *       | 'loss' expr | 'metric' IDENT '=' expr | 'output' IDENT ['=' expr]
 *       | 'train' expr (',' IDENT '=' expr)*
 *       | 'state' IDENT ':' type ['=' expr] | 'update' IDENT '=' expr
 *       | 'hyper' IDENT [':' type] '=' expr */
stmt:
      IDENT '=' expr                { $$ = stmt(pc, ST_ASSIGN, LOC(@1), $1, LOC(@1)); $$->value = $3.e; }
    | names '=' expr                { $$ = destructure(pc, $1, $3.e); }
    | KW_STATE IDENT ':' type init_opt {
          $$ = stmt(pc, ST_STATE, LOC(@1), $2, LOC(@2));
          $$->type = $4;
          $$->value = $5.e;
      }
    | KW_UPDATE IDENT '=' expr      { $$ = stmt(pc, ST_UPDATE, LOC(@1), $2, LOC(@2)); $$->value = $4.e; }
    | KW_HYPER IDENT '=' expr       { $$ = stmt(pc, ST_HYPER, LOC(@1), $2, LOC(@2)); $$->value = $4.e; }
    | KW_HYPER IDENT ':' type '=' expr {
          $$ = stmt(pc, ST_HYPER, LOC(@1), $2, LOC(@2));
          $$->type = $4;
          $$->value = $6.e;
      }
    | KW_PARAM IDENT ':' type init_opt {
          $$ = stmt(pc, ST_PARAM, LOC(@1), $2, LOC(@2));
          $$->type = $4;
          $$->value = $5.e;
      }
    | expr                          { $$ = stmt(pc, ST_EXPR, LOC(@1), NULL, LOC(@1)); $$->value = $1.e; }
    | KW_MODEL IDENT                { $$ = stmt(pc, ST_MODEL, LOC(@1), $2, LOC(@2)); }
    | KW_INPUT IDENT ':' type       { $$ = stmt(pc, ST_INPUT, LOC(@1), $2, LOC(@2)); $$->type = $4; }
    | KW_TARGET IDENT ':' type      { $$ = stmt(pc, ST_TARGET, LOC(@1), $2, LOC(@2)); $$->type = $4; }
    | KW_LOSS expr                  { $$ = stmt(pc, ST_LOSS, LOC(@1), NULL, LOC(@1)); $$->value = $2.e; }
    | KW_METRIC IDENT '=' expr      { $$ = stmt(pc, ST_METRIC, LOC(@1), $2, LOC(@2)); $$->value = $4.e; }
    | KW_OUTPUT IDENT               { $$ = stmt(pc, ST_OUTPUT, LOC(@1), $2, LOC(@2)); }
    | KW_OUTPUT IDENT '=' expr      { $$ = stmt(pc, ST_OUTPUT, LOC(@1), $2, LOC(@2)); $$->value = $4.e; }
    | KW_TRAIN expr train_args {
          $$ = stmt(pc, ST_TRAIN, LOC(@1), NULL, LOC(@1));
          $$->value = $2.e;
          $$->n_args = $3 ? $3->n : 0;
          $$->args = $3 ? $3->items : NULL;
      }
    ;

/* names := IDENT ',' IDENT (',' IDENT)*   -- the left side of a, b = f(x) */
names:
      IDENT ',' IDENT {
          $$ = ast_alloc(pc->arena, sizeof *$$);
          push_name(pc, $$, $1, LOC(@1));
          push_name(pc, $$, $3, LOC(@3));
      }
    | names ',' IDENT               { $$ = $1; push_name(pc, $$, $3, LOC(@3)); }
    ;

init_opt:
      %empty                        { $$ = (expr_val){NULL, 0}; }
    | '=' expr                      { $$ = $2; }
    ;

train_args:
      %empty                        { $$ = NULL; }
    | train_args ',' IDENT '=' expr {
          $$ = $1 ? $1 : new_args(pc);
          push_arg(pc, $$, (arg_val){{$3, LOC(@3), $5.e}, $5.depth});
      }
    ;

/* type := ('f32' | 'i32') ['[' [expr (',' expr)* [',']] ']'] | 'int' | 'float' */
type:
      KW_F32 shape_opt              { $$ = type(pc, TY_F32, LOC(@$), $2); }
    | KW_I32 shape_opt              { $$ = type(pc, TY_I32, LOC(@$), $2); }
    | KW_INT                        { $$ = type(pc, TY_INT, LOC(@1), NULL); }
    | KW_FLOAT                      { $$ = type(pc, TY_FLOAT, LOC(@1), NULL); }
    ;

shape_opt:
      %empty                        { $$ = NULL; }
    | '[' dims_opt ']'              { $$ = $2; }
    ;

dims_opt:
      %empty                        { $$ = ast_alloc(pc->arena, sizeof *$$); }
    | dims
    | dims ','
    ;

dims:
      expr                          { $$ = ast_alloc(pc->arena, sizeof *$$); PUSH($$, $1.e); }
    | dims ',' expr                 { $$ = $1; PUSH($$, $3.e); }
    ;

/* expr := sum | sum compare_op sum   -- comparisons do not chain */
expr:
      sum
    | comparison
    ;

comparison:
      sum compare_op sum            { $$ = binary(pc, $2, LOC(@2), $1, $3); }
    | comparison compare_op sum {
          diag_error(LOC(@2), "comparison operators cannot be chained; use parentheses");
          $$ = binary(pc, $2, LOC(@2), $1, $3);
      }
    ;

compare_op:
      '<'                           { $$ = OP_LT; }
    | '>'                           { $$ = OP_GT; }
    | LE                            { $$ = OP_LE; }
    | GE                            { $$ = OP_GE; }
    | EQ                            { $$ = OP_EQ; }
    | NE                            { $$ = OP_NE; }
    ;

/* sum := product (('+' | '-') product)* */
sum:
      product
    | sum '+' product               { $$ = binary(pc, OP_ADD, LOC(@2), $1, $3); }
    | sum '-' product               { $$ = binary(pc, OP_SUB, LOC(@2), $1, $3); }
    ;

/* product := unary (('*' | '/' | '@') unary)* */
product:
      unary
    | product '*' unary             { $$ = binary(pc, OP_MUL, LOC(@2), $1, $3); }
    | product '/' unary             { $$ = binary(pc, OP_DIV, LOC(@2), $1, $3); }
    | product '@' unary             { $$ = binary(pc, OP_MATMUL, LOC(@2), $1, $3); }
    ;

/* unary := ('-' | '+') unary | power   -- looser than '^': -x^2 = -(x^2) */
unary:
      power
    | '-' unary                     { $$ = unary(pc, '-', LOC(@$), $2); }
    | '+' unary                     { $$ = unary(pc, '+', LOC(@$), $2); }
    ;

/* power := postfix ['^' unary]   -- right-associative; 2^-1 is allowed */
power:
      postfix
    | postfix '^' unary             { $$ = binary(pc, OP_POW, LOC(@2), $1, $3); }
    ;

/* postfix := primary | postfix '(' [args] ')' | postfix '.' IDENT
 *          | postfix '[' index_arg (',' index_arg)* [','] ']' */
postfix:
      primary
    | postfix '(' args_opt ')'      { $$ = with_args(pc, AST_CALL, LOC(@$), &$1, $3); }
    | postfix '.' IDENT             { $$ = member(pc, LOC(@$), $1, $3); }
    | postfix '[' index_args ']'    { $$ = with_args(pc, AST_INDEX, LOC(@$), &$1, $3); }
    | postfix '[' index_args ',' ']' { $$ = with_args(pc, AST_INDEX, LOC(@$), &$1, $3); }
    ;

index_args:
      index_arg                     { $$ = new_args(pc); push_arg(pc, $$, $1); }
    | index_args ',' index_arg      { $$ = $1; push_arg(pc, $$, $3); }
    ;

/* index_arg := expr | [expr] ':' [expr] | '...' */
index_arg:
      expr                          { $$ = (arg_val){{NULL, $1.e->loc, $1.e}, $1.depth}; }
    | ELLIPSIS                      { $$ = index_item(pc, AST_ELLIPSIS, LOC(@$), NULL, NULL); }
    | ':'                           { $$ = index_item(pc, AST_SLICE, LOC(@$), NULL, NULL); }
    | expr ':'                      { $$ = index_item(pc, AST_SLICE, LOC(@$), &$1, NULL); }
    | ':' expr                      { $$ = index_item(pc, AST_SLICE, LOC(@$), NULL, &$2); }
    | expr ':' expr                 { $$ = index_item(pc, AST_SLICE, LOC(@$), &$1, &$3); }
    ;

/* primary := INT | FLOAT | IDENT | '(' expr ')' | '(' expr (',' expr)+ [','] ')'
 *          | '[' [args] ']' */
primary:
      INT                           { $$ = leaf(pc, AST_INT, LOC(@1)); $$.e->int_value = $1; }
    | FLOAT                         { $$ = leaf(pc, AST_FLOAT, LOC(@1)); $$.e->float_value = $1; }
    | IDENT                         { $$ = leaf(pc, AST_NAME, LOC(@1)); $$.e->name = $1; }
    | '(' expr ')'                  { $$ = $2; }
    | '(' tuple_items ')'           { $$ = with_args(pc, AST_TUPLE, LOC(@$), NULL, $2); }
    | '(' tuple_items ',' ')'       { $$ = with_args(pc, AST_TUPLE, LOC(@$), NULL, $2); }
    | '[' args_opt ']'              { $$ = with_args(pc, AST_LIST, LOC(@$), NULL, $2); }
    ;

/* tuple_items := expr ',' expr (',' expr)* */
tuple_items:
      expr ',' expr {
          $$ = new_args(pc);
          push_arg(pc, $$, (arg_val){{NULL, $1.e->loc, $1.e}, $1.depth});
          push_arg(pc, $$, (arg_val){{NULL, $3.e->loc, $3.e}, $3.depth});
      }
    | tuple_items ',' expr          { $$ = $1; push_arg(pc, $$, (arg_val){{NULL, $3.e->loc, $3.e}, $3.depth}); }
    ;

/* args := arg (',' arg)* [','] */
args_opt:
      %empty                        { $$ = NULL; }
    | args_trail
    ;

args_trail:
      args
    | args ','
    ;

args:
      arg                           { $$ = new_args(pc); push_arg(pc, $$, $1); }
    | args ',' arg                  { $$ = $1; push_arg(pc, $$, $3); }
    ;

/* arg := expr | IDENT '=' expr */
arg:
      expr                          { $$ = (arg_val){{NULL, $1.e->loc, $1.e}, $1.depth}; }
    | IDENT '=' expr                { $$ = (arg_val){{$1, LOC(@1), $3.e}, $3.depth}; }
    ;

%%

src_loc parse_loc(const parse_ctx *c, int first_line, int first_col, int last_line, int last_col) {
    src_loc s = {c->file, first_line, first_col, 1};
    if (last_line == first_line) {
        if (last_col >= first_col)
            s.len = last_col - first_col + 1;
    } else if (first_line >= 1 && first_line <= c->file->n_lines) {
        /* to the end of the first line */
        const src_file *f = c->file;
        size_t end = first_line < f->n_lines ? f->line_start[first_line] - 1 : f->len;
        size_t at = f->line_start[first_line - 1] + (size_t)(first_col - 1);
        s.len = end > at ? (int)(end - at) : 1;
    }
    return s;
}

/* ------------------------------------------------------------ node building */

static void *grow(parse_ctx *pc, void *items, int n, int *cap, size_t size) {
    int new_cap = *cap ? 2 * *cap : 4;
    void *grown = ast_alloc(pc->arena, (size_t)new_cap * size);
    if (n)
        memcpy(grown, items, (size_t)n * size);
    *cap = new_cap;
    return grown;
}

/* Every expression node passes here.  A tree deeper than the limit is cut
 * off (and reported once per statement), so later recursive phases have a
 * bounded depth. */
static expr_val checked(parse_ctx *pc, ast_expr *e, int depth) {
    if (depth <= PARSE_MAX_EXPR_DEPTH)
        return (expr_val){e, depth};
    if (!pc->deep_reported)
        diag_error(e->loc, "expression nested too deeply (more than %d levels)", PARSE_MAX_EXPR_DEPTH);
    pc->deep_reported = 1;
    ast_expr *cut = ast_alloc(pc->arena, sizeof *cut);
    cut->kind = AST_INT;
    cut->loc = e->loc;
    return (expr_val){cut, 1};
}

static int max_int(int a, int b) { return a > b ? a : b; }

static expr_val leaf(parse_ctx *pc, ast_expr_kind kind, src_loc loc) {
    ast_expr *e = ast_alloc(pc->arena, sizeof *e);
    e->kind = kind;
    e->loc = loc;
    return (expr_val){e, 1};
}

static expr_val binary(parse_ctx *pc, int op, src_loc loc, expr_val a, expr_val b) {
    expr_val v = leaf(pc, AST_BINARY, loc);
    v.e->op = op;
    v.e->lhs = a.e;
    v.e->rhs = b.e;
    return checked(pc, v.e, 1 + max_int(a.depth, b.depth));
}

static expr_val unary(parse_ctx *pc, int op, src_loc loc, expr_val a) {
    expr_val v = leaf(pc, AST_UNARY, loc);
    v.e->op = op;
    v.e->lhs = a.e;
    return checked(pc, v.e, 1 + a.depth);
}

/* f(args), x[args], [args] and (a, b): lhs is NULL for a list or tuple. */
/* A slice lo:hi (either may be missing) or an ellipsis, as an index's
 * positional argument. */
static arg_val index_item(parse_ctx *pc, ast_expr_kind kind, src_loc loc, expr_val *lo, expr_val *hi) {
    expr_val v = leaf(pc, kind, loc);
    v.e->lhs = lo ? lo->e : NULL;
    v.e->rhs = hi ? hi->e : NULL;
    v = checked(pc, v.e, 1 + max_int(lo ? lo->depth : 0, hi ? hi->depth : 0));
    return (arg_val){{NULL, loc, v.e}, v.depth};
}

static expr_val with_args(parse_ctx *pc, ast_expr_kind kind, src_loc loc, expr_val *lhs, arg_list *args) {
    expr_val v = leaf(pc, kind, loc);
    v.e->lhs = lhs ? lhs->e : NULL;
    v.e->n_args = args ? args->n : 0;
    v.e->args = args ? args->items : NULL;
    int depth = max_int(lhs ? lhs->depth : 0, args ? args->depth : 0);
    return checked(pc, v.e, 1 + depth);
}

static expr_val member(parse_ctx *pc, src_loc loc, expr_val lhs, const char *name) {
    expr_val v = leaf(pc, AST_MEMBER, loc);
    v.e->lhs = lhs.e;
    v.e->name = name;
    return checked(pc, v.e, 1 + lhs.depth);
}

static void push_name(parse_ctx *pc, name_list *list, const char *name, src_loc loc) {
    if (list->n == list->cap) {
        int cap = list->cap;
        list->names = grow(pc, list->names, list->n, &cap, sizeof *list->names);
        list->locs = grow(pc, list->locs, list->n, &list->cap, sizeof *list->locs);
    }
    list->names[list->n] = name;
    list->locs[list->n++] = loc;
}

/* a, b, c = value: an assignment named after its first name. */
static ast_stmt *destructure(parse_ctx *pc, name_list *names, ast_expr *value) {
    ast_stmt *s = stmt(pc, ST_ASSIGN, names->locs[0], names->names[0], names->locs[0]);
    s->value = value;
    s->n_names = names->n;
    s->names = names->names;
    s->names_loc = names->locs;
    return s;
}

static arg_list *new_args(parse_ctx *pc) { return ast_alloc(pc->arena, sizeof(arg_list)); }

static void push_arg(parse_ctx *pc, arg_list *list, arg_val a) {
    PUSH(list, a.arg);
    list->depth = max_int(list->depth, a.depth);
}

static ast_stmt *stmt(parse_ctx *pc, ast_stmt_kind kind, src_loc loc, const char *name, src_loc name_loc) {
    ast_stmt *s = ast_alloc(pc->arena, sizeof *s);
    s->kind = kind;
    s->loc = loc;
    s->name = name;
    s->name_loc = name_loc;
    return s;
}

static ast_type *type(parse_ctx *pc, ast_type_kind kind, src_loc loc, expr_list *dims) {
    ast_type *t = ast_alloc(pc->arena, sizeof *t);
    t->kind = kind;
    t->loc = loc;
    t->has_shape = dims != NULL;
    t->rank = dims ? dims->n : 0;
    t->dims = dims ? dims->items : NULL;
    return t;
}

static const char *statement_keyword(ast_stmt_kind kind) {
    switch (kind) {
    case ST_INPUT: return "input";
    case ST_TARGET: return "target";
    case ST_LOSS: return "loss";
    case ST_METRIC: return "metric";
    case ST_OUTPUT: return "output";
    case ST_TRAIN: return "train";
    case ST_MODEL: return "model";
    case ST_STATE: return "state";
    case ST_UPDATE: return "update";
    case ST_HYPER: return "hyper";
    default: return "?";
    }
}

/* A function body holds assignments, params and its result expression. */
static ast_stmt *body_stmt(parse_ctx *pc, ast_stmt *s) {
    pc->deep_reported = 0;
    if (s->kind == ST_ASSIGN || s->kind == ST_PARAM || s->kind == ST_EXPR)
        return s;
    diag_error(s->loc, "'%s' is not allowed inside a function (only assignments, 'param' and the result)",
               statement_keyword(s->kind));
    return NULL;
}

/* fn NAME(params) { body }: the body must end with its result. */
static ast_fn *make_fn(parse_ctx *pc, const char *name, src_loc loc, fparam_list *params, stmt_list *body,
                       src_loc close) {
    ast_fn *fn = ast_alloc(pc->arena, sizeof *fn);
    fn->name = name;
    fn->loc = loc;
    fn->n_params = params ? params->n : 0;
    fn->params = params ? params->items : NULL;
    fn->n_body = body->n;
    fn->body = body->items;
    int clean = diag_error_count() == body->errors_before;
    if (clean && (body->n == 0 || body->items[body->n - 1]->kind != ST_EXPR))
        diag_error(body->n ? body->items[body->n - 1]->loc : close, "function '%s' must end with an expression",
                   name);
    return fn;
}

static void add_stmt(parse_ctx *pc, ast_stmt *s) {
    ast_program *p = pc->prog;
    if (p->n_stmts == pc->cap_stmts)
        p->stmts = grow(pc, p->stmts, p->n_stmts, &pc->cap_stmts, sizeof *p->stmts);
    p->stmts[p->n_stmts++] = s;
    pc->deep_reported = 0;
}

static void add_fn(parse_ctx *pc, ast_fn *fn) {
    ast_program *p = pc->prog;
    if (p->n_fns == pc->cap_fns)
        p->fns = grow(pc, p->fns, p->n_fns, &pc->cap_fns, sizeof *p->fns);
    p->fns[p->n_fns++] = fn;
}

/* --------------------------------------------------------- syntax errors */

/* The grammar symbol of a one-character token such as ')'. */
static yysymbol_kind_t char_symbol(int c) { return YYTRANSLATE(c); }

static int is_closer(yysymbol_kind_t k) {
    return k == char_symbol(')') || k == char_symbol(']') || k == char_symbol('}');
}

/* Tokens that can start an expression. */
static int starts_expr(yysymbol_kind_t k) {
    return k == YYSYMBOL_INT || k == YYSYMBOL_FLOAT || k == YYSYMBOL_IDENT || k == char_symbol('(') ||
           k == char_symbol('[') || k == char_symbol('-') || k == char_symbol('+');
}

static int starts_type(yysymbol_kind_t k) {
    return k == YYSYMBOL_KW_F32 || k == YYSYMBOL_KW_I32 || k == YYSYMBOL_KW_INT || k == YYSYMBOL_KW_FLOAT;
}

/* Operators and postfix brackets: always possible after an expression,
 * never worth listing in "expected ...". */
static int continues_expr(yysymbol_kind_t k) {
    static const char ops[] = "+-*/@^<>.([";
    const char *name = yysymbol_name(k);
    if (k == YYSYMBOL_LE || k == YYSYMBOL_GE || k == YYSYMBOL_EQ || k == YYSYMBOL_NE)
        return 1;
    return name[0] == '\'' && name[1] && name[2] == '\'' && strchr(ops, name[1]);
}

/* How an expected token is named: 'identifier', ')', 'newline'. */
static const char *expected_name(yysymbol_kind_t k, char *buf, size_t size) {
    const char *name = yysymbol_name(k);
    size_t n = strlen(name);
    if (k == YYSYMBOL_YYEOF)
        return "end of file";
    if (n >= 2 && name[0] == '"' && name[n - 1] == '"') { /* a "'fn'" alias */
        snprintf(buf, size, "%.*s", (int)(n - 2), name + 1);
        return buf;
    }
    return name;
}

/* The lookahead as the user wrote it: "identifier 'x'", "')'", "newline". */
static void describe_found(const parse_ctx *pc, yysymbol_kind_t k, const MDL_YYLTYPE *l, char *buf, size_t size) {
    if (k == YYSYMBOL_YYEOF || (k == YYSYMBOL_NEWLINE && pc->at_eof)) {
        snprintf(buf, size, "end of file");
        return;
    }
    if (k == YYSYMBOL_NEWLINE) {
        snprintf(buf, size, "newline");
        return;
    }
    const src_file *f = pc->file;
    const char *text = "";
    int len = 0;
    if (l->first_line >= 1 && l->first_line <= f->n_lines && l->last_line == l->first_line) {
        size_t at = f->line_start[l->first_line - 1] + (size_t)(l->first_column - 1);
        len = l->last_column - l->first_column + 1;
        if (at + (size_t)len <= f->len)
            text = f->text + at;
        else
            len = 0;
    }
    const char *what = k == YYSYMBOL_IDENT                       ? "identifier "
                       : k == YYSYMBOL_INT || k == YYSYMBOL_FLOAT ? "number "
                       : k >= YYSYMBOL_KW_FN && k <= YYSYMBOL_KW_FLOAT ? "keyword "
                                                                        : "";
    if (len > 40)
        snprintf(buf, size, "%s'%.37s...'", what, text);
    else
        snprintf(buf, size, "%s'%.*s'", what, len, text);
}

static int contains(const yysymbol_kind_t *set, int n, yysymbol_kind_t k) {
    for (int i = 0; i < n; i++)
        if (set[i] == k)
            return 1;
    return 0;
}

static char closer_char(char open) { return open == '(' ? ')' : open == '[' ? ']' : '}'; }

static yysymbol_kind_t closer_symbol(char open) {
    return char_symbol(closer_char(open));
}


/* "expected A, B or C" for up to three interesting tokens, else 0. */
static int list_expected(const yysymbol_kind_t *exp, int n, char *buf, size_t size) {
    yysymbol_kind_t keep[3];
    int k = 0;
    for (int i = 0; i < n; i++) {
        if (continues_expr(exp[i]) || (exp[i] == char_symbol('=') && n > 1))
            continue;
        if (k == 3)
            return 0;
        keep[k++] = exp[i];
    }
    if (k == 0)
        return 0;
    int len = snprintf(buf, size, "expected ");
    for (int i = 0; i < k; i++) {
        char name[32];
        const char *sep = i == 0 ? "" : i == k - 1 ? " or " : ", ";
        len += snprintf(buf + len, size - (size_t)len, "%s%s", sep, expected_name(keep[i], name, sizeof name));
    }
    return 1;
}

/* `parm w: ...`, `los mse(p, y)`: a statement that starts with two names
 * in a row, the first close to a keyword, gets a note suggesting it. */
static void misspelt_keyword(const parse_ctx *pc, yysymbol_kind_t tok) {
    if (tok != YYSYMBOL_IDENT || pc->stmt_tokens != 2 || !pc->first_word)
        return;
    const char *keyword = lex_closest_keyword(pc->first_word);
    int len = (int)strlen(pc->first_word);
    if (keyword)
        diag_note_fixit(parse_loc(pc, pc->first_word_line, pc->first_word_col, pc->first_word_line,
                                  pc->first_word_col + len - 1),
                        keyword, "did you mean '%s'?", keyword);
}

static int yyreport_syntax_error(const yypcontext_t *ctx, void *scanner, parse_ctx *pc) {
    if (diag_limit_reached())
        return 0;
    yysymbol_kind_t tok = yypcontext_token(ctx);
    MDL_YYLTYPE l = *yypcontext_location(ctx);
    yysymbol_kind_t exp[YYNTOKENS];
    int n = yypcontext_expected_tokens(ctx, exp, YYNTOKENS);
    if (n < 0)
        n = 0;
    char found[96], msg[256];
    describe_found(pc, tok, &l, found, sizeof found);
    src_loc at = LOC(l);
    int in_brackets = pc->n_open > 0 && pc->open[pc->n_open - 1].ch != '{';
    /* the '}' just scanned closed brackets left open in its body */
    int brackets_cut = tok == char_symbol('}') && pc->has_closed_brace;
    if (pc->suspect && (in_brackets || brackets_cut) && pc->suspect_next_pos > pc->rewound_to &&
        pc->suspect_next_pos <= pc->pos) {
        /* A bracket never closed: say so where its line ended.  Inside
           brackets, parse the line after it as a statement of its own; at
           a '}' the body simply ends there. */
        open_bracket b = pc->suspect_bracket;
        diag_error(parse_loc(pc, pc->suspect_line, pc->suspect_col, pc->suspect_line, pc->suspect_col),
                   "expected '%c' before newline", closer_char(b.ch));
        diag_note(parse_loc(pc, b.line, b.col, b.line, b.col), "to match this '%c'", b.ch);
        if (in_brackets)
            lex_rewind_to_suspect(scanner, pc);
        pc->suspect = 0;
        return 0;
    }
    if (in_brackets)
        pc->recovering = 1; /* let a newline end the statement (lex.l) */

    int others = 0; /* neither starting an expression (or an index's ':' or '...') nor closing a bracket */
    for (int i = 0; i < n; i++)
        others += !starts_expr(exp[i]) && !is_closer(exp[i]) && exp[i] != char_symbol(':') &&
                  exp[i] != YYSYMBOL_ELLIPSIS;
    int types = 0;
    for (int i = 0; i < n; i++)
        types += starts_type(exp[i]);
    const open_bracket *b = pc->has_before ? &pc->before : NULL;

    /* INT is expected exactly where an expression may start */
    if (contains(exp, n, YYSYMBOL_INT) && others == 0) {
        diag_error(at, "expected expression before %s", found);
    } else if (n > 0 && types == n) {
        diag_error(at, "expected a type (f32, i32, int or float) before %s", found);
    } else if (b && contains(exp, n, closer_symbol(b->ch)) && (b->ch != '{' || tok == YYSYMBOL_YYEOF)) {
        diag_error(at, "expected '%c' before %s", closer_char(b->ch), found);
        diag_note(parse_loc(pc, b->line, b->col, b->line, b->col), "to match this '%c'", b->ch);
    } else if (is_closer(tok) && pc->tok_unmatched) {
        diag_error(at, "unmatched %s", found);
    } else if (list_expected(exp, n, msg, sizeof msg)) {
        diag_error(at, "%s before %s", msg, found);
    } else {
        diag_error(at, "unexpected %s", found);
    }
    misspelt_keyword(pc, tok);
    return 0;
}

/* Bison's own errors: its stack ran out (deeply nested input). */
static void yyerror(MDL_YYLTYPE *loc, void *scanner, parse_ctx *pc, const char *msg) {
    (void)scanner;
    if (strcmp(msg, "memory exhausted") == 0)
        diag_error(LOC(*loc), "expression nested too deeply");
    else
        diag_error(LOC(*loc), "%s", msg);
}

ast_program *parse_program(const src_file *file, ast_arena *arena) {
    ast_program *prog = ast_alloc(arena, sizeof *prog);
    prog->file = file;
    parse_ctx pc = {0};
    pc.file = file;
    pc.arena = arena;
    pc.prog = prog;
    pc.line = 1;
    pc.col = 1;
    if (file->len > (size_t)INT_MAX / 2) {
        diag_error((src_loc){file, 1, 1, 1}, "file too large (%zu bytes)", file->len);
        return prog;
    }
    void *scanner;
    if (lex_begin(&pc, &scanner) != 0) {
        diag_error((src_loc){file, 1, 1, 1}, "out of memory");
        return prog;
    }
    mdl_yyparse(scanner, &pc);
    lex_end(scanner);
    free(pc.open);
    return prog;
}
