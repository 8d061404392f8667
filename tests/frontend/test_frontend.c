/*
 * test_frontend.c - unit tests of the frontend's plumbing: source files and
 * their line index, the arena, the diagnostics printer (carets, tabs,
 * clipping, the error limit), the fields of the tree the parser builds
 * (positions included), and the parser's robustness on generated inputs
 * (random token soup, random bytes, deep nesting, a large file).
 *
 * The golden files in parse/ and errors/ cover the grammar itself; this
 * file covers what text comparisons cannot see.  Each check prints the
 * line it failed on; the exit status is the number of failures.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ast.h"

#define TEST_SEED 88172645463325252ull
#include "../test.h"

/* ------------------------------------------------------------- capturing */

static FILE *capture;
static char captured[1 << 16];

static void capture_begin(void) {
    capture = tmpfile();
    diag_set_stream(capture);
    diag_reset();
}

/* Stops capturing and returns what was written (truncated to the buffer). */
static const char *capture_end(void) {
    fflush(capture);
    rewind(capture);
    size_t n = fread(captured, 1, sizeof captured - 1, capture);
    captured[n] = 0;
    fclose(capture);
    capture = NULL;
    diag_set_stream(NULL);
    return captured;
}

/* Parses text and returns the dump (or, with locs, the dump with positions). */
static char dumped[1 << 16];

static const char *dump_of(const char *text, int locs, int *errors) {
    src_file *f = src_from_string("t.mdl", text);
    ast_arena *a = ast_arena_new();
    capture_begin();
    ast_program *p = parse_program(f, a);
    capture_end();
    if (errors)
        *errors = diag_error_count();
    FILE *out = tmpfile();
    if (locs)
        ast_dump_locs(p, out);
    else
        ast_dump(p, out);
    rewind(out);
    size_t n = fread(dumped, 1, sizeof dumped - 1, out);
    dumped[n] = 0;
    fclose(out);
    ast_arena_free(a);
    src_free(f);
    diag_reset();
    return dumped;
}

/* ---------------------------------------------------------------- sources */

static void test_sources(void) {
    src_file *f = src_from_string("a.mdl", "ab\ncd\n");
    CHECK(f->n_lines == 2 && f->line_start[0] == 0 && f->line_start[1] == 3);
    CHECK(f->len == 6 && strcmp(f->path, "a.mdl") == 0);
    src_free(f);

    f = src_from_string("a.mdl", "ab\ncd");
    CHECK(f->n_lines == 2 && f->line_start[1] == 3);
    src_free(f);

    f = src_from_string("a.mdl", "");
    CHECK(f->n_lines == 1 && f->len == 0 && f->text[0] == 0);
    src_free(f);

    f = src_from_string("a.mdl", "\n\n\n");
    CHECK(f->n_lines == 3 && f->line_start[2] == 2);
    src_free(f);

    f = src_from_bytes("b.mdl", "x\0y\nz", 5);
    CHECK(f->len == 5 && f->n_lines == 2 && f->text[1] == 0 && f->text[5] == 0);
    src_free(f);

    errno = 0;
    CHECK(src_open("/nonexistent/file.mdl") == NULL && errno == ENOENT);
    errno = 0;
    CHECK(src_open("/") == NULL && errno != 0);
    src_free(NULL);
}

/* ------------------------------------------------------------------ arena */

static void test_arena(void) {
    ast_arena *a = ast_arena_new();
    char *prev = NULL;
    for (int i = 0; i < 100000; i++) {
        char *p = ast_alloc(a, (size_t)(i % 37) + 1);
        CHECK(((uintptr_t)p % _Alignof(max_align_t)) == 0);
        CHECK(p[0] == 0);
        memset(p, 0xAB, (size_t)(i % 37) + 1);
        CHECK(p != prev);
        prev = p;
    }
    unsigned char *big = ast_alloc(a, 1 << 20);
    int zero = 1;
    for (int i = 0; i < 1 << 20; i++)
        zero &= big[i] == 0;
    CHECK(zero);
    char *small = ast_alloc(a, 8); /* still served after a big block */
    CHECK(small && small[0] == 0);
    char *s = ast_strdup(a, "hello world", 5);
    CHECK(strcmp(s, "hello") == 0);
    ast_arena_free(a);
    ast_arena_free(NULL);
}

/* ------------------------------------------------------------ diagnostics */

static void test_diag(void) {
    src_file *f = src_from_string("d.mdl", "x = a + b\n\ty =\tfoo(1)\nshort\n\xc3\xa9t\xc3\xa9 = 1\n");

    capture_begin();
    diag_error((src_loc){f, 1, 7, 1}, "bad %s", "plus");
    CHECK_STR(capture_end(), "d.mdl:1:7: error: bad plus\nx = a + b\n      ^\n");

    /* tabs are copied so the caret lines up; ~ under the rest */
    capture_begin();
    diag_error((src_loc){f, 2, 6, 3}, "tabbed");
    CHECK_STR(capture_end(), "d.mdl:2:6: error: tabbed\n\ty =\tfoo(1)\n\t   \t^~~\n");

    /* the marker stops at the end of the line; a column past it is clamped */
    capture_begin();
    diag_error((src_loc){f, 3, 4, 10}, "clipped");
    diag_error((src_loc){f, 3, 40, 1}, "past the end");
    CHECK_STR(capture_end(), "d.mdl:3:4: error: clipped\nshort\n   ^~\n"
                             "d.mdl:3:40: error: past the end\nshort\n     ^\n");

    /* a UTF-8 character is one column on screen */
    capture_begin();
    diag_note((src_loc){f, 4, 7, 1}, "after accents");
    CHECK_STR(capture_end(), "d.mdl:4:7: note: after accents\n\xc3\xa9t\xc3\xa9 = 1\n    ^\n");
    CHECK(diag_error_count() == 0); /* notes do not count */

    capture_begin();
    diag_plain("no position %d", 42);
    diag_error((src_loc){0}, "no file");
    CHECK_STR(capture_end(), "mdlc: error: no position 42\nmdlc: error: no file\n");
    CHECK(diag_error_count() == 2);

    /* the limit: 3 printed, one line saying so, the rest and their notes dropped */
    diag_set_limit(3);
    capture_begin();
    for (int i = 0; i < 6; i++) {
        diag_error((src_loc){0}, "e%d", i);
        diag_note((src_loc){0}, "n%d", i);
    }
    CHECK(diag_limit_reached());
    CHECK_STR(capture_end(), "mdlc: error: e0\nmdlc: note: n0\nmdlc: error: e1\nmdlc: note: n1\n"
                             "mdlc: error: e2\nmdlc: note: n2\nmdlc: error: too many errors, stopping\n");
    CHECK(diag_error_count() == 6);
    diag_reset();
    CHECK(diag_error_count() == 0 && !diag_limit_reached());
    diag_set_limit(20);

    /* a very long line is shown as a window around the caret */
    char line[1000];
    memset(line, 'a', sizeof line - 1);
    line[sizeof line - 1] = 0;
    src_file *g = src_from_string("long.mdl", line);
    capture_begin();
    diag_error((src_loc){g, 1, 500, 3}, "long");
    const char *out = capture_end();
    const char *second = strchr(out, '\n') + 1;
    CHECK(strncmp(second, "...aaa", 6) == 0);
    CHECK(strlen(second) < 400);
    src_free(g);
    src_free(f);
    diag_reset();
}

/* A fix-it line sits under the caret, tabs copied. */
static void test_fixit(void) {
    src_file *f = src_from_string("s.mdl", "\ty = sofmax(x)\n");
    capture_begin();
    diag_note_fixit((src_loc){f, 1, 6, 6}, "softmax", "did you mean '%s'?", "softmax");
    CHECK_STR(capture_end(),
              "s.mdl:1:6: note: did you mean 'softmax'?\n\ty = sofmax(x)\n\t    ^~~~~~\n\t    softmax\n");
    CHECK(diag_error_count() == 0);
    src_free(f);
}

static const char *best_of(const char *typed, const char *const *known) {
    static suggestion s;
    suggest_begin(&s, typed);
    for (int i = 0; known[i]; i++)
        suggest_offer(&s, known[i]);
    return suggest_best(&s);
}

#define CHECK_GUESS(typed, want)                                                                                       \
    do {                                                                                                               \
        const char *guess_ = best_of(typed, names);                                                                    \
        CHECK_STR(guess_ ? guess_ : "(none)", want);                                                                   \
    } while (0)

static void test_suggest(void) {
    /* one edit each: delete, insert, substitute, swap neighbours */
    CHECK(suggest_distance("softmax", "sofmax", 5) == 1);
    CHECK(suggest_distance("sofmax", "softmax", 5) == 1);
    CHECK(suggest_distance("softmax", "softmix", 5) == 1);
    CHECK(suggest_distance("softmax", "sotfmax", 5) == 1);
    CHECK(suggest_distance("kitten", "sitting", 5) == 3);
    CHECK(suggest_distance("ca", "abc", 5) == 3); /* optimal string alignment, not full Damerau */
    CHECK(suggest_distance("", "abc", 5) == 3);
    CHECK(suggest_distance("abc", "abc", 0) == 0);
    CHECK(suggest_distance("kitten", "sitting", 1) > 1); /* gives up past the limit */
    CHECK(suggest_distance("a", "abcdefgh", 3) > 3);

    static const char *const names[] = {"softmax", "log_softmax",    "relu", "mean", "sum",
                                        "dense",   "dense_relu",     "W",    "x",    "lr",
                                        "lam",     "glorot_uniform", NULL};
    CHECK_GUESS("sofmax", "softmax");
    CHECK_GUESS("log_sofmax", "log_softmax");
    CHECK_GUESS("rleu", "relu");
    CHECK_GUESS("dens", "dense");
    CHECK_GUESS("glorot_unifrom", "glorot_uniform");
    CHECK_GUESS("w", "W");      /* case alone always qualifies */
    CHECK_GUESS("z", "(none)"); /* one letter: everything is one edit away */
    CHECK_GUESS("frobnicate", "(none)");
    CHECK_GUESS("men", "mean");        /* three letters: one edit */
    CHECK_GUESS("rl", "(none)");       /* lr is a swap away, but two letters allow no edit */
    CHECK_GUESS("su", "(none)");       /* two letters: no edits allowed */
    CHECK_GUESS("sfotmxa", "softmax"); /* two swaps: two edits, allowed on seven letters */
    CHECK_GUESS("sfotmxi", "(none)");  /* three edits on a name of seven: too far */
    CHECK_GUESS("softmax", "(none)");  /* the name itself is no suggestion */
    /* a tie between two equally close names gives none */
    static const char *const tied[] = {"lam", "lab", NULL};
    CHECK_STR(best_of("la", tied) ? "some" : "(none)", "(none)");
    CHECK_STR(best_of("lax", tied) ? "some" : "(none)", "(none)");
    static const char *const twice[] = {"relu", "relu", NULL}; /* the same name twice is no tie */
    CHECK_STR(best_of("rel", twice), "relu");
}

/* ------------------------------------------------------------------- tree */

static void test_tree(void) {
    src_file *f = src_from_string("t.mdl", "fn g(a: f32[B, 2], k = 3) {\n  a * k\n}\n"
                                           "y = -g(x, k = 2)[0].W ^ 2\n"
                                           "train sgd(lr = 0.1), batch = 8\n"
                                           "output y\n");
    ast_arena *a = ast_arena_new();
    capture_begin();
    ast_program *p = parse_program(f, a);
    CHECK_STR(capture_end(), "");
    CHECK(p && p->file == f && p->n_fns == 1 && p->n_stmts == 3);

    ast_fn *fn = p->fns[0];
    CHECK(strcmp(fn->name, "g") == 0 && fn->loc.line == 1 && fn->loc.col == 4 && fn->loc.len == 1);
    CHECK(fn->n_params == 2 && fn->n_body == 1 && fn->body[0]->kind == ST_EXPR);
    CHECK(fn->params[0].type && fn->params[0].type->kind == TY_F32 && fn->params[0].type->has_shape);
    CHECK(fn->params[0].type->rank == 2 && fn->params[0].type->dims[1]->int_value == 2);
    CHECK(fn->params[0].type->loc.col == 9 && fn->params[0].type->loc.len == 9);
    CHECK(fn->params[1].type == NULL && fn->params[1].default_value->int_value == 3);
    ast_expr *body = fn->body[0]->value;
    CHECK(body->kind == AST_BINARY && body->op == OP_MUL && body->loc.col == 5 && body->loc.len == 1);

    ast_stmt *s = p->stmts[0];
    CHECK(s->kind == ST_ASSIGN && strcmp(s->name, "y") == 0 && s->loc.line == 4 && s->loc.col == 1);
    ast_expr *e = s->value; /* -(((g(x, k=2))[0]).W ^ 2) */
    CHECK(e->kind == AST_UNARY && e->op == '-' && e->loc.col == 5 && e->loc.len == 21);
    ast_expr *pow = e->lhs;
    CHECK(pow->kind == AST_BINARY && pow->op == OP_POW && pow->loc.col == 23);
    ast_expr *member = pow->lhs;
    CHECK(member->kind == AST_MEMBER && strcmp(member->name, "W") == 0 && member->loc.col == 6);
    CHECK(member->loc.len == 16);
    ast_expr *index = member->lhs;
    CHECK(index->kind == AST_INDEX && index->n_args == 1 && index->args[0].value->int_value == 0);
    ast_expr *call = index->lhs;
    CHECK(call->kind == AST_CALL && call->lhs->kind == AST_NAME && call->n_args == 2);
    CHECK(call->loc.col == 6 && call->loc.len == 11);
    CHECK(call->args[0].name == NULL && strcmp(call->args[1].name, "k") == 0);
    CHECK(call->args[1].name_loc.col == 11 && call->args[1].value->loc.col == 15);

    s = p->stmts[1];
    CHECK(s->kind == ST_TRAIN && s->value->kind == AST_CALL && s->n_args == 1);
    CHECK(strcmp(s->args[0].name, "batch") == 0 && s->args[0].value->int_value == 8);
    CHECK(s->value->args[0].value->kind == AST_FLOAT && s->value->args[0].value->float_value == 0.1);

    s = p->stmts[2];
    CHECK(s->kind == ST_OUTPUT && s->value == NULL && s->name_loc.col == 8);
    ast_arena_free(a);
    src_free(f);
}

/* ---------------------------------------------------------- dump details */

static void test_dump(void) {
    int errors;
    CHECK_STR(dump_of("x = 0.1 + 1.0 + 1e300 + 2.5e-5 + 123\n", 0, &errors),
              "assign x = (+ (+ (+ (+ 0.1 1.0) 1e+300) 2.5e-05) 123)\n");
    CHECK(errors == 0);
    CHECK_STR(dump_of("x = 9223372036854775807\n", 0, &errors), "assign x = 9223372036854775807\n");
    CHECK_STR(dump_of("a = f(\n  b,\n  c)\n", 1, &errors),
              "assign@1:1+1 a = (call@1:5+2 f@1:5+1 b@2:3+1 c@3:3+1)\n");
    /* partial trees survive errors */
    CHECK_STR(dump_of("a = 1\nb = )\nc = 3", 0, &errors), "assign a = 1\nassign c = 3\n");
    CHECK(errors == 1);
}

/* ---------------------------------------------------- robustness checks */

/* Walks whatever tree came back (a dump nobody reads), then frees it all. */
static void dump_and_free(const ast_program *p, ast_arena *a, src_file *f) {
    FILE *sink = fopen("/dev/null", "w");
    ast_dump(p, sink);
    fclose(sink);
    ast_arena_free(a);
    src_free(f);
    diag_reset();
}

static void parse_quietly(const char *bytes, size_t len) {
    src_file *f = src_from_bytes("r.mdl", bytes, len);
    ast_arena *a = ast_arena_new();
    ast_program *p = parse_program(f, a);
    CHECK(p != NULL);
    dump_and_free(p, a, f);
}

/* Random sequences of real tokens reach much deeper into the grammar than
 * random bytes do. */
static void test_token_soup(void) {
    static const char *const tokens[] = {
        "fn", "model", "input", "target", "param", "loss", "metric", "output", "train", "f32",
        "i32", "int", "float", "x", "y", "W", "1", "2.5", "1e-3", ".5", "(", ")", "[", "]", "{",
        "}", "+", "-", "*", "/", "@", "^", "<", "<=", "==", "!=", ">", ">=", "=", ",", ".", ":",
        "\n", "\n", "\n", " ", "  ", "\t", "#c\n", "$", "\x80", "99999999999999999999", "1e999",
    };
    int n_tokens = (int)(sizeof tokens / sizeof tokens[0]);
    FILE *devnull = fopen("/dev/null", "w");
    diag_set_stream(devnull);
    char buf[4096];
    for (int round = 0; round < 3000; round++) {
        size_t len = 0;
        int count = (int)test_below(120);
        for (int i = 0; i < count; i++) {
            const char *t = tokens[test_below(n_tokens)];
            size_t n = strlen(t);
            if (len + n + 1 >= sizeof buf)
                break;
            memcpy(buf + len, t, n);
            len += n;
            if (test_below(3) == 0)
                buf[len++] = ' ';
        }
        parse_quietly(buf, len);
    }
    for (int round = 0; round < 1000; round++) {
        size_t len = (size_t)test_below(300);
        for (size_t i = 0; i < len; i++)
            buf[i] = (char)test_below(256);
        parse_quietly(buf, len);
    }
    diag_set_stream(NULL);
    fclose(devnull);
}

/* Deep nesting is an error, never a stack overflow, in the parser or in
 * the recursive dump after it. */
static void test_deep(void) {
    static const char *const shapes[][3] = {
        {"x = ", "(", "1"}, {"x = ", "[", "1"}, {"x = ", "-", "1"}, {"x = 1", "^1", ""},
        {"x = 1", "+1", ""}, {"x = f", "(1)", ""}, {"x = a", ".b", ""}, {"fn f(x) { ", "(", "x"},
    };
    size_t size = 200000;
    char *buf = malloc(size);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        size_t len = 0, n = strlen(shapes[s][1]);
        memcpy(buf, shapes[s][0], strlen(shapes[s][0]));
        len += strlen(shapes[s][0]);
        while (len + n + 16 < size) {
            memcpy(buf + len, shapes[s][1], n);
            len += n;
        }
        memcpy(buf + len, shapes[s][2], strlen(shapes[s][2]));
        len += strlen(shapes[s][2]);
        buf[len++] = '\n';
        src_file *f = src_from_bytes("deep.mdl", buf, len);
        ast_arena *a = ast_arena_new();
        capture_begin();
        ast_program *p = parse_program(f, a);
        const char *out = capture_end();
        CHECK(strstr(out, "nested too deeply") != NULL);
        dump_and_free(p, a, f);
    }
    free(buf);
}

/* Parses about `size` bytes of valid statements; returns the CPU seconds. */
static double time_parse(size_t size) {
    size_t len = 0;
    char *buf = malloc(size + 100);
    int lines = 0;
    while (len < size) {
        len += (size_t)snprintf(buf + len, size + 100 - len,
                                "v%d = relu(x @ W%d + b) * 0.5 - f(a, k = [1, 2])\n", lines, lines);
        lines++;
    }
    src_file *f = src_from_bytes("large.mdl", buf, len);
    ast_arena *a = ast_arena_new();
    clock_t start = clock();
    capture_begin();
    ast_program *p = parse_program(f, a);
    capture_end();
    double seconds = (double)(clock() - start) / CLOCKS_PER_SEC;
    CHECK(diag_error_count() == 0 && p->n_stmts == lines);
    ast_arena_free(a);
    src_free(f);
    free(buf);
    diag_reset();
    return seconds;
}

/* A large valid file parses in linear time (checked as a ratio, so a slow
 * machine or valgrind does not fail it). */
static void test_large(void) {
    double small = time_parse(1 << 20), large = time_parse(4 << 20);
    CHECK(large < 8 * (small > 0.01 ? small : 0.01));
}

int main(void) {
    test_sources();
    test_arena();
    test_diag();
    test_fixit();
    test_suggest();
    test_tree();
    test_dump();
    test_token_soup();
    test_deep();
    test_large();
    if (failures)
        fprintf(stderr, "%d check%s failed\n", failures, failures == 1 ? "" : "s");
    else
        printf("all frontend unit tests passed\n");
    return failures ? 1 : 0;
}
