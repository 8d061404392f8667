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
    if (status == 0 && s->n_expects == 0) {
        fail("%s: no '# expect' line", path);
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
    mp_plan_build(g, es, plan);
    return 0;
}

/* ------------------------------------------------------- leaves and results */

/* The value list of leaf `id` (an input, target or parameter), or NULL. */
static const value_list *leaf_list(const spec *s, const ir_graph *g, int id) {
    const ir_node *n = &g->nodes[id];
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
