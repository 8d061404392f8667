/*
 * run_lang.c - value tests written in mdl.  Each tests/lang/NAME.mdl is a
 * small model that carries its inputs and the expected values of its
 * results in comment lines:
 *
 *   # batch 2                       the batch it runs at (its max batch)
 *   # input x = [[1, 2], [3, 4]]    an input, target or parameter, row-major
 *   # expect y = [2, 4, 6, 8]       an output, a metric or the loss
 *   # tolerance 1e-6                |got - want| <= T max(1, |want|);
 *                                   1e-5 if not given
 *   # interpreter-only              skip the JIT (for what the code
 *                                   generator does not compile yet)
 *   # random-parameters             parameters without an '# input' line
 *                                   get fixed pseudo-random values in
 *                                   [-0.5, 0.5)
 *   # generate y                    the generation entry, run one position
 *                                   at a time, gives output y of the whole
 *                                   window at each position (below)
 *
 * Brackets and commas in a list are for the reader; only the count of
 * numbers must match the tensor's elements at the batch.  Expected values
 * are worked out by hand (or with a calculator), never copied from mdlc.
 *
 * The model is compiled as mdlc compiles it (prelude, lowering, autodiff
 * and the optimizer when it has a loss, simplify, entry points, fusion,
 * memory plan) and its eval_step runs under the JIT (codegen/cg_jit.c) in
 * f32.  Independently, the graph straight from lowering runs through the
 * reference interpreter (ir/eval.c) in double.  Every expectation is
 * checked against both, and every output and metric of the two must agree;
 * a failure names the file:line of the expectation.
 *
 * usage: run_lang FILE.mdl...
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ast.h"
#include "codegen.h"
#include "eval.h"
#include "ir.h"
#include "lower.h"
#include "passes.h"

#include "../codegen/harness.h"

extern const char mdl_prelude_source[];

/* ------------------------------------------------------- the comments */

#define MAX_LISTS 32

typedef struct value_list {
    int line;
    char name[64];
    double *v;
    int64_t n;
} value_list;

typedef struct spec {
    const char *path;
    int64_t batch;
    double tolerance;
    int interpreter_only;
    char generate[64];
    int random_parameters;
    value_list inputs[MAX_LISTS], expects[MAX_LISTS];
    int n_inputs, n_expects;
} spec;

/* "NAME = [1, 2.5, -3e-2]" -> list; the numbers in any nesting */
static int parse_list(const char *text, int line, value_list *out) {
    int used = 0;
    if (sscanf(text, " %63[A-Za-z0-9_.] = %n", out->name, &used) != 1 || !used)
        return -1;
    out->line = line;
    out->n = 0;
    out->v = NULL;
    for (const char *p = text + used; *p;) {
        if (*p == '[' || *p == ']' || *p == ',' || isspace((unsigned char)*p)) {
            p++;
            continue;
        }
        char *end;
        double x = strtod(p, &end);
        if (end == p)
            return -1;
        out->v = realloc(out->v, (size_t)(out->n + 1) * sizeof *out->v);
        out->v[out->n++] = x;
        p = end;
    }
    return 0;
}

/* One "# ..." line; 0, or -1 for a directive that does not parse. */
static int parse_comment(spec *s, const char *text, int line) {
    if (sscanf(text, "# batch %lld", (long long *)&s->batch) == 1)
        return 0;
    if (sscanf(text, "# tolerance %lf", &s->tolerance) == 1)
        return 0;
    if (!strncmp(text, "# interpreter-only", 18)) {
        s->interpreter_only = 1;
        return 0;
    }
    if (sscanf(text, "# generate %63s", s->generate) == 1)
        return 0;
    if (!strncmp(text, "# random-parameters", 19)) {
        s->random_parameters = 1;
        return 0;
    }
    if (!strncmp(text, "# input ", 8) && s->n_inputs < MAX_LISTS)
        return parse_list(text + 8, line, &s->inputs[s->n_inputs++]);
    if (!strncmp(text, "# expect ", 9) && s->n_expects < MAX_LISTS)
        return parse_list(text + 9, line, &s->expects[s->n_expects++]);
    return 0; /* prose */
}

static int read_spec(const char *path, spec *s) {
    memset(s, 0, sizeof *s);
    s->path = path;
    s->batch = 1;
    s->tolerance = 1e-5;
    FILE *f = fopen(path, "r");
    if (!f) {
        fail("cannot open %s", path);
        return -1;
    }
    char text[4096];
    int status = 0;
    for (int line = 1; fgets(text, sizeof text, f); line++)
        if (text[0] == '#' && parse_comment(s, text, line) != 0) {
            fail("%s:%d: cannot read this line: %s", path, line, text);
            status = -1;
        }
    fclose(f);
    if (status == 0 && s->n_expects == 0 && !s->generate[0]) {
        fail("%s: no '# expect' or '# generate' line", path);
        status = -1;
    }
    return status;
}

static void free_spec(spec *s) {
    for (int i = 0; i < s->n_inputs; i++)
        free(s->inputs[i].v);
    for (int i = 0; i < s->n_expects; i++)
        free(s->expects[i].v);
}

static const value_list *find_list(const value_list *lists, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (!strcmp(lists[i].name, name))
            return &lists[i];
    return NULL;
}

/* ------------------------------------------------------------ compiling */

static ir_graph *lower_file(const spec *s) {
    src_file *prelude_file = src_from_string("<prelude>", mdl_prelude_source);
    src_file *file = src_open(s->path);
    ast_arena *arena = ast_arena_new();
    const ast_program *prelude = parse_program(prelude_file, arena);
    ast_program *prog = file ? parse_program(file, arena) : NULL;
    lower_options lo = {s->batch};
    ir_graph *g = prog && !diag_error_count() ? lower_program(prog, prelude, &lo) : NULL;
    if (!g)
        fail("%s does not compile", s->path);
    diag_reset();
    ast_arena_free(arena);
    src_free(file);
    src_free(prelude_file);
    return g;
}

/* The passes of driver/mdlc.c's compile_graph, in its order. */
static int compile_like_mdlc(ir_graph *g, entries *es, mem_plan *plan) {
    if (g->loss >= 0 && (ad_differentiate(g) != 0 || opt_lower(g) != 0)) {
        fail("autodiff/optimizer: %s", g->error);
        return -1;
    }
    for (int round = 0; round < 16 && simplify(g) > 0; round++)
        ;
    if (entries_build(g, es) != 0) {
        fail("entries: %s", g->error);
        return -1;
    }
    fuse_elementwise(g, es);
    epilogue_fuse(g, es);
    mp_plan_build(g, es, plan);
    return 0;
}

/* ------------------------------------------------------- leaves and results */

/* The value list of leaf `id` (an input, target or parameter), or NULL. */
static const value_list *leaf_list(const spec *s, const ir_graph *g, int id) {
    const ir_node *n = &g->nodes[id];
    if (n->op == IR_INPUT && n->flags)
        return NULL;
    if (n->op == IR_INPUT)
        return find_list(s->inputs, s->n_inputs, g->inputs[n->index].name);
    if (n->op == IR_PARAM)
        return find_list(s->inputs, s->n_inputs, g->params[n->index].name);
    return NULL;
}

/* The node of the result called `name` (an output, a metric, "loss"), or -1. */
static int result_node(const ir_graph *g, const char *name) {
    for (int i = 0; i < g->n_outputs; i++)
        if (!strcmp(g->outputs[i].name, name))
            return g->outputs[i].node;
    for (int i = 0; i < g->n_metrics; i++)
        if (!strcmp(g->metrics[i].name, name))
            return g->metrics[i].node;
    return !strcmp(name, "loss") ? g->loss : -1;
}

/* Leaf `id`'s values into `out` (n of them); -1 when the file has none. */
static int leaf_values(const spec *s, const ir_graph *g, int id, double *out, int64_t n) {
    const ir_node *node = &g->nodes[id];
    if (node->op == IR_HYPER) {
        out[0] = g->hypers[node->index].value;
        return 0;
    }
    const value_list *l = leaf_list(s, g, id);
    /* the generation entry's inputs (set per position) and states start at zero */
    if ((node->op == IR_INPUT && node->flags) || (node->op == IR_PARAM && g->params[node->index].state && !l)) {
        memset(out, 0, (size_t)n * sizeof *out);
        return 0;
    }
    if (node->op == IR_PARAM && !l && s->random_parameters) {
        uint32_t x = 2463534242u + (uint32_t)node->index * 7919u;
        for (int64_t i = 0; i < n; i++) { /* xorshift32, exact in f32 */
            x ^= x << 13, x ^= x >> 17, x ^= x << 5;
            out[i] = (double)(x >> 8) / (1 << 24) - 0.5;
        }
        return 0;
    }
    if (!l || l->n != n) {
        fail("%s: '# input' for %s %s: %lld values, want %lld", s->path, ir_ops[node->op].name,
             node->op == IR_INPUT ? g->inputs[node->index].name : g->params[node->index].name,
             (long long)(l ? l->n : 0), (long long)n);
        return -1;
    }
    memcpy(out, l->v, (size_t)n * sizeof *out);
    return 0;
}

static int is_leaf(const ir_node *n) { return n->op == IR_INPUT || n->op == IR_PARAM || n->op == IR_HYPER; }

/* Every '# input' names a leaf: a misspelt name would be ignored. */
static int check_input_names(const spec *s, const ir_graph *g) {
    int status = 0;
    for (int k = 0; k < s->n_inputs; k++) {
        int found = 0;
        for (int i = 0; i < g->n_nodes && !found; i++)
            found = leaf_list(s, g, i) == &s->inputs[k];
        if (!found) {
            fail("%s:%d: no input, target or parameter is called %s", s->path, s->inputs[k].line, s->inputs[k].name);
            status = -1;
        }
    }
    return status;
}

/* ----------------------------------------------------- the interpreter */

/* Every node of the lowered graph in double; NULL on failure. */
static double **interpret(const spec *s, const ir_graph *g) {
    double **v = calloc((size_t)g->n_nodes, sizeof *v);
    int status = 0;
    for (int i = 0; i < g->n_nodes && status == 0; i++)
        if (is_leaf(&g->nodes[i])) {
            int64_t n = ir_numel_at(&g->nodes[i].shape, s->batch);
            v[i] = malloc((size_t)n * sizeof **v);
            status = leaf_values(s, g, i, v[i], n);
        }
    if (status == 0 && ir_eval(g, NULL, s->batch, v) != 0) {
        fail("%s: the interpreter failed", s->path);
        status = -1;
    }
    if (status == 0)
        return v;
    ir_eval_release(g, NULL, v);
    for (int i = 0; i < g->n_nodes; i++)
        free(v[i]);
    free(v);
    return NULL;
}

static void free_interpreted(const ir_graph *g, double **v) {
    ir_eval_release(g, NULL, v);
    for (int i = 0; i < g->n_nodes; i++)
        if (is_leaf(&g->nodes[i]))
            free(v[i]);
    free(v);
}

/* --------------------------------------------------------------- the JIT */

/* eval_step's arena with the leaves written, or NULL. */
static char *fill_arena(const spec *s, const ir_graph *g, const mem_plan *plan) {
    char *arena = calloc(1, (size_t)plan->arena_bytes + 64);
    const int64_t *offset = plan->offset[ENTRY_EVAL];
    for (int i = 0; i < g->n_nodes; i++) {
        if (!is_leaf(&g->nodes[i]) || offset[i] < 0)
            continue;
        int64_t n = ir_numel_at(&g->nodes[i].shape, s->batch);
        double *v = malloc((size_t)n * sizeof *v);
        int status = leaf_values(s, g, i, v, n);
        for (int64_t j = 0; j < n && status == 0; j++)
            arena_put(arena, offset[i], 4, g->nodes[i].dtype, j, v[j]);
        free(v);
        if (status != 0) {
            free(arena);
            return NULL;
        }
    }
    return arena;
}

/* Runs eval_step; the arena (results at plan->offset[ENTRY_EVAL]) or NULL. */
static char *run_jit(const spec *s, const ir_graph *g, const entries *es, const mem_plan *plan) {
    cg_options opt = {.opt_level = 2};
    cg_jit *jit = es->e[ENTRY_EVAL].present ? cg_jit_create(g, es, plan, &opt) : NULL;
    char *arena = jit ? fill_arena(s, g, plan) : NULL;
    if (arena)
        cg_jit_entry(jit, ENTRY_EVAL)(arena, s->batch);
    else
        fail("%s: no eval_step to run", s->path);
    cg_jit_free(jit);
    return arena;
}

/* ------------------------------------------------------------ comparing */

static int close_to(double got, double want, double tolerance) {
    if (isnan(want))
        return isnan(got);
    return fabs(got - want) <= tolerance * fmax(1.0, fabs(want));
}

/* The JIT and the interpreter agree on every output and metric. */
static void compare_jit(const spec *s, const ir_graph *lowered, double *const *v, const ir_graph *g,
                        const mem_plan *plan, const char *arena) {
    for (int k = 0; k < g->n_outputs + g->n_metrics; k++) {
        const ir_result *r = k < g->n_outputs ? &g->outputs[k] : &g->metrics[k - g->n_outputs];
        int id = result_node(lowered, r->name), node = r->node;
        int64_t n = ir_numel_at(&g->nodes[node].shape, s->batch);
        for (int64_t j = 0; j < n; j++) {
            double jit = arena_get(arena, plan->offset[ENTRY_EVAL][node], 4, g->nodes[node].dtype, j);
            if (!close_to(jit, v[id][j], s->tolerance)) {
                fail("%s: %s[%lld]: JIT %.9g, interpreter %.9g", s->path, r->name, (long long)j, jit, v[id][j]);
                break;
            }
        }
    }
}

/* Each '# expect' against the interpreter and the JIT (when arena is not
 * NULL). */
static void compare_expectations(const spec *s, const ir_graph *lowered, double *const *v, const ir_graph *g,
                                 const mem_plan *plan, const char *arena) {
    for (int e = 0; e < s->n_expects; e++) {
        const value_list *want = &s->expects[e];
        int id = result_node(lowered, want->name), node = result_node(g, want->name);
        int64_t n = id >= 0 ? ir_numel_at(&lowered->nodes[id].shape, s->batch) : 0;
        if (id < 0 || node < 0) {
            fail("%s:%d: no output, metric or loss is called %s", s->path, want->line, want->name);
            continue;
        }
        if (n != want->n) {
            fail("%s:%d: %s has %lld values, the expectation %lld", s->path, want->line, want->name, (long long)n,
                 (long long)want->n);
            continue;
        }
        for (int64_t j = 0; j < n; j++) {
            double interp = v[id][j],
                   jit = arena ? arena_get(arena, plan->offset[ENTRY_EVAL][node], 4, g->nodes[node].dtype, j) : interp;
            if (!close_to(interp, want->v[j], s->tolerance) || !close_to(jit, want->v[j], s->tolerance)) {
                fail("%s:%d: %s[%lld] = %.9g (JIT %.9g), expected %.9g", s->path, want->line, want->name, (long long)j,
                     interp, jit, want->v[j]);
                break;
            }
        }
    }
}

/* ------------------------------------------------- the generation entry
 * "# generate y": the generation entry (generate_step) fed the model's
 * input one position t at a time, with hyper "position" = t and its state
 * (kv_cache's caches, an LSTM's h and c) carried from step to step, must
 * give at each position what the whole window gives there: y[:, t] of the
 * interpreted window.  It runs in the interpreter and under the JIT. */

typedef struct gen_check {
    const spec *s;
    const ir_graph *g;
    int window_out, gen_out;    /* y of the window [B, T, ..] and of one step [B, 1, ..] */
    int64_t steps, row, inner;  /* T; elements of one batch row of y; of one position */
} gen_check;

static int hyper_named(const ir_graph *g, const char *name) {
    for (int i = 0; i < g->n_hypers; i++)
        if (!strcmp(g->hypers[i].name, name))
            return g->hypers[i].node;
    return -1;
}

static int input_named(const ir_graph *g, const char *name) {
    for (int i = 0; i < g->n_inputs; i++)
        if (!strcmp(g->inputs[i].name, name))
            return g->inputs[i].node;
    return -1;
}

static int gen_output_named(const ir_graph *g, const char *name) {
    for (int i = 0; i < g->n_gen_outputs; i++)
        if (!strcmp(g->gen_outputs[i].name, name))
            return g->gen_outputs[i].node;
    return -1;
}

/* Elements of shape s after dim d, at the batch. */
static int64_t inner_of(const ir_shape *s, int d, int64_t batch) {
    int64_t n = 1;
    for (int i = d + 1; i < s->rank; i++)
        n *= ir_is_batch_dim(s, i) ? batch : s->dims[i];
    return n;
}

/* Position t of the window's input into a one-position input of the
 * generation entry (both [B, T, ..] / [B, 1, ..]). */
static void input_at(const gen_check *c, const double *window, int64_t window_steps, int64_t inner, int64_t t,
                     double *out) {
    for (int64_t b = 0; b < c->s->batch; b++)
        memcpy(out + b * inner, window + (b * window_steps + t) * inner, (size_t)inner * sizeof *out);
}

static int compare_position(const gen_check *c, const double *window, int64_t t, const double *got, const char *how) {
    for (int64_t b = 0; b < c->s->batch; b++)
        for (int64_t j = 0; j < c->inner; j++) {
            double want = window[b * c->row + t * c->inner + j], have = got[b * c->inner + j];
            if (!close_to(have, want, c->s->tolerance)) {
                fail("%s: generate %s (%s) at batch row %lld, position %lld, element %lld: %.9g, the window gives %.9g",
                     c->s->path, c->s->generate, how, (long long)b, (long long)t, (long long)j, have, want);
                return -1;
            }
        }
    return 0;
}

/* The interpreter: the window's values v, then the steps in double. */
static void generate_interpreted(const gen_check *c, double *const *v) {
    const ir_graph *g = c->g;
    int position = hyper_named(g, "position");
    int *roots = calloc((size_t)g->n_gen_outputs + g->n_gen_updates + 1, sizeof *roots), n = 0;
    for (int i = 0; i < g->n_gen_outputs; i++)
        roots[n++] = g->gen_outputs[i].node;
    for (int i = 0; i < g->n_gen_updates; i++)
        roots[n++] = g->gen_updates[i];
    unsigned char *live = calloc((size_t)g->n_nodes, 1);
    ir_mark_live(g, roots, n, live);
    double **w = calloc((size_t)g->n_nodes, sizeof *w);
    for (int i = 0; i < g->n_nodes; i++)
        if (is_leaf(&g->nodes[i])) {
            int64_t count = ir_numel_at(&g->nodes[i].shape, c->s->batch);
            w[i] = malloc((size_t)count * sizeof **w);
            leaf_values(c->s, g, i, w[i], count);
        }
    for (int64_t t = 0; t < c->steps; t++) {
        for (int i = 0; i < g->n_gen_inputs; i++) {
            int win = input_named(g, g->gen_inputs[i].name);
            const ir_shape *ws = &g->nodes[win].shape;
            input_at(c, v[win], ws->dims[1], inner_of(ws, 1, c->s->batch), t, w[g->gen_inputs[i].node]);
        }
        if (position >= 0)
            w[position][0] = (double)t;
        int failed = ir_eval(g, live, c->s->batch, w) != 0 ||
                     compare_position(c, v[c->window_out], t, w[c->gen_out], "interpreter") != 0;
        for (int i = 0; i < g->n_gen_updates && !failed; i++) {
            const ir_node *u = &g->nodes[g->gen_updates[i]];
            memcpy(w[u->inputs[0]], w[u->inputs[1]],
                   (size_t)ir_numel_at(&g->nodes[u->inputs[0]].shape, c->s->batch) * sizeof **w);
        }
        ir_eval_release(g, live, w);
        if (failed)
            break;
    }
    for (int i = 0; i < g->n_nodes; i++)
        if (is_leaf(&g->nodes[i]))
            free(w[i]);
    free(w);
    free(live);
    free(roots);
}

/* The JIT: prepare_step once, then generate_step per position in f32,
 * against the interpreted window. */
static void generate_compiled(const gen_check *c, double *const *v, const ir_graph *g, const entries *es,
                              const mem_plan *plan) {
    cg_options opt = {.opt_level = 2};
    cg_jit *jit = cg_jit_create(g, es, plan, &opt);
    char *arena = jit ? calloc(1, (size_t)plan->arena_bytes + 64) : NULL;
    const int64_t *offset = plan->offset[ENTRY_GENERATE];
    for (int i = 0; arena && i < g->n_nodes; i++) {
        if (g->nodes[i].op != IR_PARAM || offset[i] < 0)
            continue;
        int64_t n = ir_numel_at(&g->nodes[i].shape, c->s->batch);
        double *x = malloc((size_t)n * sizeof *x);
        leaf_values(c->s, g, i, x, n);
        for (int64_t j = 0; j < n; j++)
            arena_put(arena, offset[i], 4, g->nodes[i].dtype, j, x[j]);
        free(x);
    }
    if (arena && es->e[ENTRY_PREPARE].present)
        cg_jit_entry(jit, ENTRY_PREPARE)(arena, c->s->batch);
    int position = hyper_named(g, "position");
    double *got = malloc((size_t)(c->s->batch * c->inner) * sizeof *got), *in = NULL;
    int out = gen_output_named(g, c->s->generate);
    for (int64_t t = 0; arena && t < c->steps; t++) {
        for (int i = 0; i < g->n_gen_inputs; i++) {
            int win = input_named(c->g, g->gen_inputs[i].name), node = g->gen_inputs[i].node;
            const ir_shape *ws = &c->g->nodes[win].shape;
            int64_t inner = inner_of(ws, 1, c->s->batch);
            in = realloc(in, (size_t)(c->s->batch * inner) * sizeof *in);
            input_at(c, v[win], ws->dims[1], inner, t, in);
            for (int64_t j = 0; j < c->s->batch * inner; j++)
                arena_put(arena, offset[node], 4, g->nodes[node].dtype, j, in[j]);
        }
        if (position >= 0 && offset[position] >= 0)
            arena_put(arena, offset[position], 4, IR_F32, 0, (double)t);
        cg_jit_entry(jit, ENTRY_GENERATE)(arena, c->s->batch);
        for (int64_t j = 0; j < c->s->batch * c->inner; j++)
            got[j] = arena_get(arena, offset[out], 4, IR_F32, j);
        if (compare_position(c, v[c->window_out], t, got, "JIT") != 0)
            break;
    }
    free(in);
    free(got);
    free(arena);
    cg_jit_free(jit);
}

static void check_generation(const spec *s, const ir_graph *lowered, double *const *v, const ir_graph *g,
                             const entries *es, const mem_plan *plan) {
    gen_check c = {s, lowered, result_node(lowered, s->generate), gen_output_named(lowered, s->generate), 0, 0, 0};
    if (c.window_out < 0 || c.gen_out < 0) {
        fail("%s: generate %s: %s", s->path, s->generate,
             c.window_out < 0 ? "no such output" : "the model has no generation entry with that output");
        return;
    }
    const ir_shape *ys = &lowered->nodes[c.window_out].shape;
    c.steps = ys->dims[1];
    c.inner = inner_of(ys, 1, s->batch);
    c.row = c.steps * c.inner;
    generate_interpreted(&c, v);
    if (g && es->e[ENTRY_GENERATE].present)
        generate_compiled(&c, v, g, es, plan);
}

/* ------------------------------------------------------------------ main */

static void run_file(const char *path) {
    spec s;
    if (read_spec(path, &s) != 0) {
        free_spec(&s);
        return;
    }
    ir_graph *lowered = lower_file(&s), *g = lower_file(&s);
    entries es;
    mem_plan plan;
    memset(&es, 0, sizeof es);
    memset(&plan, 0, sizeof plan);
    double **v = lowered && check_input_names(&s, lowered) == 0 ? interpret(&s, lowered) : NULL;
    char *arena = NULL;
    if (v && s.interpreter_only)
        compare_expectations(&s, lowered, v, lowered, &plan, NULL);
    else if (v && g && compile_like_mdlc(g, &es, &plan) == 0)
        arena = run_jit(&s, g, &es, &plan);
    if (arena) {
        compare_expectations(&s, lowered, v, g, &plan, arena);
        compare_jit(&s, lowered, v, g, &plan, arena);
    }
    if (v && s.generate[0])
        check_generation(&s, lowered, v, arena ? g : NULL, &es, &plan);
    free(arena);
    if (v)
        free_interpreted(lowered, v);
    entries_free(&es);
    mp_plan_free(&plan);
    if (lowered)
        ir_graph_free(lowered);
    if (g)
        ir_graph_free(g);
    free_spec(&s);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: run_lang FILE.mdl...\n");
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        int before = failures;
        run_file(argv[i]);
        printf("%s %s\n", failures == before ? "ok  " : "FAIL", argv[i]);
    }
    return failures != 0;
}
