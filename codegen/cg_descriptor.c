/*
 * cg_descriptor.c - the C file that tells the runtime about the model.
 *
 * It defines `const rt_model mdl_model` (runtime/mdlrt.h): every tensor the
 * runtime touches with its arena offset, the entry points, the `train`
 * block with its learning-rate schedule, and a few numbers for `info`.
 * The file is plain C11 with designated initialisers, so it reads like the
 * struct it fills and compiles warning-free with any C compiler.
 *
 * Names come from the user's source and may hold anything, so every string
 * is written as an escaped literal: quotes and backslashes escaped, `?`
 * escaped (no trigraphs), anything outside printable ASCII as three-digit
 * octal (which, unlike \x, cannot swallow the next character).
 *
 * Persistent tensors have one offset shared by every entry; the writer takes
 * it from whichever entry has the node and checks that the others agree.
 * With the f64 entries (eval_step_f64, grad_step_f64) every tensor also has
 * its offset in their arena (offset_f64, grad_offset_f64), from the same
 * plan cg_plan_f64 gives the code; without them those are -1 and the
 * entries NULL.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cg_internal.h"

static void write_string(FILE *out, const char *s) {
    if (!s) {
        fputs("NULL", out);
        return;
    }
    fputc('"', out);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\' || *p == '?')
            fprintf(out, "\\%c", *p);
        else if (*p >= 0x20 && *p < 0x7f)
            fputc(*p, out);
        else
            fprintf(out, "\\%03o", *p);
    }
    fputc('"', out);
}

static void write_double(FILE *out, double v) {
    if (isnan(v))
        fputs("NAN", out);
    else if (isinf(v))
        fputs(v > 0 ? "INFINITY" : "-INFINITY", out);
    else
        fprintf(out, "%.17g", v);
}

/* The node's offset, the same in every entry that has it; -1 if none has. */
static int64_t node_offset(const mem_plan *plan, int id, int *conflict) {
    int64_t found = -1;
    for (int e = 0; e < ENTRY_COUNT; e++) {
        int64_t o = plan->offset[e] ? plan->offset[e][id] : -1;
        if (o < 0)
            continue;
        if (found >= 0 && o != found)
            *conflict = 1;
        found = o;
    }
    return found;
}

typedef struct writer {
    FILE *out;
    const ir_graph *g;
    const mem_plan *plan;
    const mem_plan *plan64; /* the f64 entries' plan, or NULL */
    int failed;
} writer;

static int64_t slot_in(writer *w, const mem_plan *plan, int id, const char *what, const char *name) {
    int conflict = 0;
    int64_t o = node_offset(plan, id, &conflict);
    if (o < 0 || conflict) {
        cg_error("%s '%s' has %s in the %smemory plan", what, name, o < 0 ? "no slot" : "different slots",
                 plan == w->plan64 ? "f64 " : "");
        w->failed = 1;
    }
    return o;
}

/* The slot of a tensor the runtime must find; an error if it has none. */
static int64_t slot_of(writer *w, int id, const char *what, const char *name) { return slot_in(w, w->plan, id, what, name); }

/* Its slot in the f64 arena; -1 without the f64 entries. */
static int64_t slot_f64(writer *w, int id, const char *what, const char *name) {
    return w->plan64 ? slot_in(w, w->plan64, id, what, name) : -1;
}

/* {.name = ..., .dtype = ..., ...}: an rt_tensor */
/* For an i32 input: the n such that the model uses its values as class
 * labels or row indices in [0, n) (one_hot's depth, the rows of a gather
 * table or of scatter_add's result), following reshapes and casts; the
 * smallest such n over every use, or 0 if none.  gradcheck draws such
 * inputs at random from [0, n). */
static int64_t index_range(const ir_graph *g, int input) {
    int64_t range = 0;
    unsigned char *reach = ir_xcalloc((size_t)g->n_nodes, 1);
    reach[input] = 1;
    for (int i = input + 1; i < g->n_nodes; i++) { /* ids are topological */
        const ir_node *n = &g->nodes[i];
        int64_t bound = 0;
        for (int k = 0; k < n->n_inputs; k++) {
            if (!reach[n->inputs[k]])
                continue;
            if (n->op == IR_RESHAPE || n->op == IR_CAST)
                reach[i] = 1;
            else if (n->op == IR_ONE_HOT)
                bound = n->shape.dims[n->shape.rank - 1];
            else if (n->op == IR_GATHER && k == 1)
                bound = g->nodes[n->inputs[0]].shape.dims[0];
            else if (n->op == IR_SCATTER_ADD && k == 1)
                bound = n->shape.dims[0];
        }
        if (bound > 0 && (range == 0 || bound < range))
            range = bound;
    }
    free(reach);
    return range;
}

static void write_tensor(writer *w, const char *name, int id, const char *what) {
    const ir_node *n = &w->g->nodes[id];
    int64_t offset = slot_of(w, id, what, name);
    /* generate_step has no f64 variant */
    int64_t offset_f64 = strncmp(what, "generation", 10) == 0 ? -1 : slot_f64(w, id, what, name);
    fputs("{.name = ", w->out);
    write_string(w->out, name);
    fprintf(w->out, ", .dtype = %s, .rank = %d, .dims = {", n->dtype == IR_I32 ? "RT_I32" : "RT_F32", n->shape.rank);
    for (int d = 0; d < n->shape.rank; d++)
        fprintf(w->out, "%s%" PRId64, d ? ", " : "", n->shape.dims[d]);
    if (n->shape.rank == 0)
        fputs("0", w->out); /* ISO C has no empty initialiser */
    fprintf(w->out, "}, .batch_mask = 0x%" PRIx32 "u, .offset = %" PRId64 ", .offset_f64 = %" PRId64,
            n->shape.batch_mask, offset, offset_f64);
    if (n->op == IR_INPUT && n->dtype == IR_I32)
        fprintf(w->out, ", .index_range = %" PRId64, index_range(w->g, id));
    fputs("}", w->out);
}

static const char *init_name(ir_init init) {
    static const char *const names[] = {
        [IR_INIT_NONE] = "RT_INIT_NONE",
        [IR_INIT_ZEROS] = "RT_INIT_ZEROS",
        [IR_INIT_ONES] = "RT_INIT_ONES",
        [IR_INIT_CONSTANT] = "RT_INIT_CONSTANT",
        [IR_INIT_UNIFORM] = "RT_INIT_UNIFORM",
        [IR_INIT_NORMAL] = "RT_INIT_NORMAL",
        [IR_INIT_GLOROT_UNIFORM] = "RT_INIT_GLOROT_UNIFORM",
        [IR_INIT_HE_NORMAL] = "RT_INIT_HE_NORMAL",
    };
    return (unsigned)init < sizeof names / sizeof *names ? names[init] : "RT_INIT_NONE";
}

static void write_params(writer *w) {
    if (w->g->n_params == 0)
        return;
    fputs("static const rt_param params[] = {\n", w->out);
    for (int i = 0; i < w->g->n_params; i++) {
        const ir_param *p = &w->g->params[i];
        int conflict = 0;
        int64_t grad = p->grad >= 0 ? node_offset(w->plan, p->grad, &conflict) : -1;
        int64_t grad64 = p->grad >= 0 && w->plan64 ? node_offset(w->plan64, p->grad, &conflict) : -1;
        fputs("    {.t = ", w->out);
        write_tensor(w, p->name, p->node, "parameter");
        fprintf(w->out, ",\n     .init = %s, .init_a = ", init_name(p->init));
        write_double(w->out, p->init_a);
        fputs(", .init_b = ", w->out);
        write_double(w->out, p->init_b);
        fprintf(w->out,
                ", .fan_in = %" PRId64 ", .fan_out = %" PRId64 ", .trainable = %d, .grad_offset = %" PRId64
                ", .grad_offset_f64 = %" PRId64 "%s},\n",
                p->fan_in, p->fan_out, p->trainable, grad, grad64,
                p->state == IR_STATE_CACHE ? ", .state = 2" : p->state ? ", .state = 1" : "");
        if (conflict) {
            cg_error("the gradient of '%s' has different slots in the memory plan", p->name);
            w->failed = 1;
        }
    }
    fputs("};\n\n", w->out);
}

/* inputs (is_target 0) or targets (is_target 1); returns how many. */
static int write_inputs(writer *w, int is_target, const char *array) {
    int count = 0;
    for (int i = 0; i < w->g->n_inputs; i++)
        count += w->g->inputs[i].is_target == is_target;
    if (count == 0)
        return 0;
    fprintf(w->out, "static const rt_tensor %s[] = {\n", array);
    for (int i = 0; i < w->g->n_inputs; i++) {
        if (w->g->inputs[i].is_target != is_target)
            continue;
        fputs("    ", w->out);
        write_tensor(w, w->g->inputs[i].name, w->g->inputs[i].node, is_target ? "target" : "input");
        fputs(",\n", w->out);
    }
    fputs("};\n\n", w->out);
    return count;
}

/* The inputs of generate_step (their time axis of length 1). */
static void write_gen_inputs(writer *w) {
    fputs("static const rt_tensor gen_inputs[] = {\n", w->out);
    for (int i = 0; i < w->g->n_gen_inputs; i++) {
        fputs("    ", w->out);
        write_tensor(w, w->g->gen_inputs[i].name, w->g->gen_inputs[i].node, "generation input");
        fputs(",\n", w->out);
    }
    fputs("};\n\n", w->out);
}

static void write_results(writer *w, const ir_result *results, int n, const char *array, const char *what) {
    if (n == 0)
        return;
    fprintf(w->out, "static const rt_tensor %s[] = {\n", array);
    for (int i = 0; i < n; i++) {
        fputs("    ", w->out);
        write_tensor(w, results[i].name, results[i].node, what);
        fputs(",\n", w->out);
    }
    fputs("};\n\n", w->out);
}

static void write_hypers(writer *w) {
    if (w->g->n_hypers == 0)
        return;
    fputs("static const rt_hyper hypers[] = {\n", w->out);
    for (int i = 0; i < w->g->n_hypers; i++) {
        const ir_hyper *h = &w->g->hypers[i];
        fputs("    {.name = ", w->out);
        write_string(w->out, h->name);
        fputs(", .value = ", w->out);
        write_double(w->out, h->value);
        fprintf(w->out, ", .offset = %" PRId64, slot_of(w, h->node, "hyper-parameter", h->name));
        fprintf(w->out, ", .offset_f64 = %" PRId64 "},\n", slot_f64(w, h->node, "hyper-parameter", h->name));
    }
    fputs("};\n\n", w->out);
}

/* The schedule's settings, as two parallel arrays. */
static void write_schedule(writer *w) {
    const ir_graph *g = w->g;
    if (!g->schedule || g->n_sched_args <= 0)
        return;
    int n = g->n_sched_args < 8 ? g->n_sched_args : 8;
    fputs("static const char *const sched_arg_names[] = {", w->out);
    for (int i = 0; i < n; i++) {
        fputs(i ? ", " : "", w->out);
        write_string(w->out, g->sched_arg_names[i]);
    }
    fputs("};\nstatic const double sched_arg_values[] = {", w->out);
    for (int i = 0; i < n; i++) {
        fputs(i ? ", " : "", w->out);
        write_double(w->out, g->sched_arg_values[i]);
    }
    fputs("};\n\n", w->out);
}

static int64_t entry_flops(const ir_graph *g, const entry *en) {
    int64_t flops = 0;
    if (!en->present)
        return 0;
    for (int s = 0; s < en->n_sched; s++)
        flops += ir_node_flops(g, en->sched[s]);
    return flops;
}

/* .n_<field> = n, .<field> = array (or NULL) */
/* A tensor as it lies in train_step's arena, for a numerics check. */
static void write_train_tensor(writer *w, int id) {
    const ir_graph *g = w->g;
    const ir_node *n = &g->nodes[id];
    char name[96];
    if (n->op == IR_PARAM)
        snprintf(name, sizeof name, "%s", g->params[n->index].name);
    else if (n->op == IR_INPUT)
        snprintf(name, sizeof name, "%s", g->inputs[n->index].name);
    else if (n->op == IR_HYPER)
        snprintf(name, sizeof name, "%s", g->hypers[n->index].name);
    else
        snprintf(name, sizeof name, "%%%d %s", id, ir_ops[n->op].name);
    fputs("{.name = ", w->out);
    write_string(w->out, name);
    fprintf(w->out, ", .dtype = %s, .rank = %d, .dims = {", n->dtype == IR_I32 ? "RT_I32" : "RT_F32", n->shape.rank);
    for (int d = 0; d < n->shape.rank; d++)
        fprintf(w->out, "%s%" PRId64, d ? ", " : "", n->shape.dims[d]);
    fprintf(w->out, "%s}, .batch_mask = 0x%" PRIx32 "u, .offset = %" PRId64 ", .offset_f64 = -1}",
            n->shape.rank ? "" : "0", n->shape.batch_mask, w->plan->offset[ENTRY_TRAIN][id]);
}

/* Line `line` (1-based) of text, without its newline, into buf. */
static void source_line(const char *text, int line, char *buf, size_t size) {
    buf[0] = 0;
    if (line <= 0)
        return;
    for (int l = 1; text && *text && l < line; text++)
        l += *text == '\n';
    if (!text || !*text)
        return;
    size_t n = strcspn(text, "\n");
    if (n >= size)
        n = size - 1;
    memcpy(buf, text, n);
    buf[n] = 0;
}

/* train_step's checks (cg_numerics_checks): where each result comes from
 * and the buffers to look at, for `train --check-numerics`. */
static int write_checks(writer *w, const entries *es) {
    cg_check *c;
    int n = cg_numerics_checks(w->g, es, w->plan, &c);
    if (n == 0) {
        free(c);
        return 0;
    }
    const char *text = w->g->source_text; /* NULL: the checks name only the place */
    fputs("static const rt_check checks[] = {\n", w->out);
    for (int i = 0; i < n; i++) {
        const fused_group *gr = es->group_at && es->group_at[c[i].node] >= 0 ? &es->groups[es->group_at[c[i].node]]
                                                                             : NULL;
        const ir_node *root = &w->g->nodes[c[i].node];
        int line = root->line, col = root->col;
        for (int k = 0; gr && !line && k < gr->n_members; k++) { /* the first member with a place */
            line = w->g->nodes[gr->members[k]].line;
            col = w->g->nodes[gr->members[k]].col;
        }
        char src[256];
        source_line(text, line, src, sizeof src);
        fputs("    {.op = ", w->out);
        write_string(w->out, ir_ops[root->op].name);
        fprintf(w->out, ", .fused = %d, .line = %d, .col = %d, .backward = %d, .text = ", gr ? gr->n_members : 1, line,
                col, root->backward);
        write_string(w->out, src);
        if (gr) { /* what else the kernel computes, and from where */
            char members[512];
            size_t used = 0;
            members[0] = 0;
            for (int k = 0; k < gr->n_members && used < sizeof members; k++) {
                const ir_node *mn = &w->g->nodes[gr->members[k]];
                used += (size_t)snprintf(members + used, sizeof members - used, "%s%s", k ? ", " : "",
                                         ir_ops[mn->op].name);
                if (mn->line > 0 && used < sizeof members)
                    used += (size_t)snprintf(members + used, sizeof members - used, " (%d:%d)", mn->line, mn->col);
            }
            fputs(", .members = ", w->out);
            write_string(w->out, members);
        }
        fputs(",\n     .out = ", w->out);
        write_train_tensor(w, c[i].out);
        int n_in = c[i].n_in < 12 ? c[i].n_in : 12; /* RT_CHECK_MAX_IN */
        fprintf(w->out, ",\n     .n_in = %d, .in = {", n_in);
        for (int k = 0; k < n_in; k++) {
            fputs(k ? ",\n        " : "", w->out);
            write_train_tensor(w, c[i].in[k]);
        }
        fputs(n_in ? "}},\n" : "{0}}},\n", w->out);
    }
    fputs("};\n\n", w->out);
    free(c);
    return n;
}

static void write_table_field(FILE *out, const char *field, int n, const char *array) {
    fprintf(out, "    .n_%s = %d,\n    .%s = %s,\n", field, n, field, n ? array : "NULL");
}

static void write_model(writer *w, const entries *es, int n_inputs, int n_targets, int n_checks) {
    static const char *const fields[ENTRY_COUNT] = {"predict_step", "eval_step", "grad_step", "train_step",
                                                    "generate_step", "prepare_step"};
    const ir_graph *g = w->g;
    FILE *out = w->out;
    fputs("const rt_model mdl_model = {\n    .name = ", out);
    write_string(out, g->model_name);
    fputs(",\n    .source = ", out);
    write_string(out, g->source_path);
    if (g->source_hash)
        fprintf(out, ",\n    .source_hash = \"fnv1a64:%016" PRIx64 "\"", g->source_hash);
    fprintf(out, ",\n    .arena_bytes = %" PRId64 ",\n    .max_batch = %" PRId64 ",\n", w->plan->arena_bytes,
            g->max_batch);
    write_table_field(out, "params", g->n_params, "params");
    write_table_field(out, "inputs", n_inputs, "inputs");
    write_table_field(out, "targets", n_targets, "targets");
    write_table_field(out, "outputs", g->n_outputs, "outputs");
    write_table_field(out, "metrics", g->n_metrics, "metrics");
    fprintf(out, "    .has_loss = %d,\n", g->loss >= 0);
    if (g->loss >= 0) {
        fputs("    .loss = ", out);
        write_tensor(w, "loss", g->loss, "the loss");
        fputs(",\n", out);
    }
    write_table_field(out, "hypers", g->n_hypers, "hypers");
    write_table_field(out, "checks", n_checks, "checks");
    for (int e = 0; e < ENTRY_GENERATE; e++)
        fprintf(out, "    .%s = %s,\n", fields[e], es->e[e].present ? es->e[e].name : "NULL");
    if (es->e[ENTRY_GENERATE].present) { /* only a model with state has it */
        fprintf(out, "    .generate_step = generate_step,\n");
        if (es->e[ENTRY_PREPARE].present)
            fprintf(out, "    .prepare_step = prepare_step,\n");
        write_table_field(out, "gen_inputs", g->n_gen_inputs, "gen_inputs");
        write_table_field(out, "gen_outputs", g->n_gen_outputs, "gen_outputs");
    }
    for (int e = ENTRY_EVAL; e <= ENTRY_GRAD; e++)
        fprintf(out, "    .%s_f64 = %s%s,\n", fields[e], w->plan64 && es->e[e].present ? es->e[e].name : "NULL",
                w->plan64 && es->e[e].present ? "_f64" : "");
    fprintf(out, "    .arena_bytes_f64 = %" PRId64 ",\n", w->plan64 ? w->plan64->arena_bytes : 0);
    fputs("    .optimizer = ", out);
    write_string(out, g->optimizer);
    fprintf(out, ",\n    .batch = %" PRId64 ",\n    .epochs = %" PRId64 ",\n    .seed = %" PRIu64 "u,\n", g->batch,
            g->epochs, g->seed);
    fputs("    .schedule = ", out);
    write_string(out, g->schedule);
    int n_sched = g->schedule && g->n_sched_args > 0 ? (g->n_sched_args < 8 ? g->n_sched_args : 8) : 0;
    fprintf(out, ",\n    .n_sched_args = %d,\n", n_sched);
    fprintf(out, "    .sched_arg_names = %s,\n    .sched_arg_values = %s,\n", n_sched ? "sched_arg_names" : "NULL",
            n_sched ? "sched_arg_values" : "NULL");
    fprintf(out, "    .flops_per_train_step = %" PRId64 ",\n    .flops_per_predict_step = %" PRId64 ",\n",
            entry_flops(g, &es->e[ENTRY_TRAIN]), entry_flops(g, &es->e[ENTRY_PREDICT]));
    fprintf(out, "    .scratch_bytes = %" PRId64 ",\n};\n", w->plan->scratch_bytes);
}

int cg_write_descriptor(const ir_graph *g, const entries *es, const mem_plan *plan, int f64_entries, FILE *out) {
    writer w = {out, g, plan, NULL, 0};
    entries es64;
    mem_plan plan64;
    if (f64_entries) {
        cg_plan_f64(g, es, &es64, &plan64);
        w.plan64 = &plan64;
    }
    fputs("/* Generated by mdlc: the model's tensors and entry points for the runtime (mdlrt.h). */\n", out);
    fputs("#include <math.h>\n#include <stddef.h>\n\n#include \"mdlrt.h\"\n\n", out);
    for (int e = 0; e < ENTRY_COUNT; e++)
        if (es->e[e].present) {
            fprintf(out, "void %s(char *arena, int64_t batch);\n", es->e[e].name);
            if (f64_entries && (e == ENTRY_EVAL || e == ENTRY_GRAD))
                fprintf(out, "void %s_f64(char *arena, int64_t batch);\n", es->e[e].name);
        }
    fputs("\n", out);
    write_params(&w);
    int n_inputs = write_inputs(&w, 0, "inputs");
    int n_targets = write_inputs(&w, 1, "targets");
    write_results(&w, g->outputs, g->n_outputs, "outputs", "output");
    write_results(&w, g->metrics, g->n_metrics, "metrics", "metric");
    if (es->e[ENTRY_GENERATE].present) {
        write_gen_inputs(&w);
        write_results(&w, g->gen_outputs, g->n_gen_outputs, "gen_outputs", "generation output");
    }
    write_hypers(&w);
    write_schedule(&w);
    int n_checks = write_checks(&w, es);
    write_model(&w, es, n_inputs, n_targets, n_checks);
    if (!w.failed && (fflush(out) != 0 || ferror(out))) {
        cg_error("cannot write the model descriptor");
        w.failed = 1;
    }
    if (w.plan64)
        mp_plan_free(&plan64);
    return w.failed ? -1 : 0;
}

/* ------------------------------------------------------------------
 * mdlc -c: the model's C API (runtime/rt_lib.h, docs/embedding.md).
 *
 * The header declares PREFIX_create, PREFIX_train_step, ... with one
 * typed pointer per input, target and output, named after them; the C
 * part (appended to the descriptor) defines each as a call of the generic
 * rt_lib_ function with those pointers gathered into arrays.  PREFIX is
 * the model's name as a C identifier, so two models can share a program.
 */

/* The API's functions, without the prefix: the symbols the object keeps. */
static const char *const embed_functions[] = {
    "create", "free",       "error",      "init",      "load",        "save",        "train_step", "evaluate",
    "predict", "set_hyper", "get_hyper", "steps", "set_steps", "reset_state", "set_threads", NULL};

/* Writes s as a C identifier: [A-Za-z0-9_], not starting with a digit;
 * upper-cased for a macro. */
static void identifier(const char *s, int upper, char *buf, size_t size) {
    size_t n = 0;
    if (!s || !*s || (*s >= '0' && *s <= '9'))
        buf[n++] = upper ? 'M' : 'm';
    for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p && n + 1 < size; p++) {
        int c = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ? *p : '_';
        buf[n++] = (char)(upper && c >= 'a' && c <= 'z' ? c - 'a' + 'A' : c);
    }
    buf[n] = '\0';
}

void cg_embed_prefix(const ir_graph *g, char *buf, size_t size) { identifier(g->model_name, 0, buf, size); }

/* The API's tensors in argument order (inputs, targets, outputs), each
 * with an argument name that is a C identifier, unique without regard to
 * case (it also names a macro) and clear of the C keywords and the API's
 * own argument names. */
#define EMBED_NAME 64
typedef struct embed_arg {
    const char *name; /* as declared */
    int node;
    char c[EMBED_NAME], upper[EMBED_NAME];
} embed_arg;

typedef struct embed {
    FILE *out;
    const ir_graph *g;
    const char *prefix;
    char upper[EMBED_NAME];
    int n_inputs, n_targets, n_outputs;
    embed_arg *args; /* n_inputs + n_targets + n_outputs */
} embed;

static int reserved(const char *s) {
    static const char *const words[] = {
        "auto",     "break",  "case",     "char",    "const",   "continue", "default", "do",     "double",
        "else",     "enum",   "extern",   "float",   "for",     "goto",     "if",      "inline", "int",
        "long",     "register", "restrict", "return", "short",   "signed",   "sizeof",  "static", "struct",
        "switch",   "typedef", "union",   "unsigned", "void",   "volatile", "while",   "bool",   "true",
        "false",    "model",  "batch",    "loss",    "metrics", "int32_t",  "int64_t", "NULL",   NULL};
    for (int i = 0; words[i]; i++)
        if (strcmp(s, words[i]) == 0)
            return 1;
    return 0;
}

static void add_arg(embed *e, int k, const char *name, int node) {
    embed_arg *a = &e->args[k];
    a->name = name;
    a->node = node;
    identifier(name, 0, a->c, sizeof a->c - 8);
    for (int n = 1;; n++) {
        int clash = reserved(a->c);
        identifier(a->c, 1, a->upper, sizeof a->upper);
        for (int j = 0; j < k && !clash; j++)
            clash = strcmp(e->args[j].upper, a->upper) == 0;
        if (!clash)
            return;
        char base[EMBED_NAME];
        identifier(name, 0, base, sizeof base - 8);
        snprintf(a->c, sizeof a->c, "%.48s_%d", base, n % 100000);
    }
}

static void embed_begin(embed *e, const ir_graph *g, const char *prefix, FILE *out) {
    memset(e, 0, sizeof *e);
    e->out = out;
    e->g = g;
    e->prefix = prefix;
    identifier(prefix, 1, e->upper, sizeof e->upper);
    e->args = ir_xcalloc((size_t)g->n_inputs + (size_t)g->n_outputs + 1, sizeof *e->args);
    int k = 0;
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < g->n_inputs; i++)
            if (g->inputs[i].is_target == pass) {
                add_arg(e, k++, g->inputs[i].name, g->inputs[i].node);
                *(pass ? &e->n_targets : &e->n_inputs) += 1;
            }
    for (int i = 0; i < g->n_outputs; i++)
        add_arg(e, k++, g->outputs[i].name, g->outputs[i].node);
    e->n_outputs = g->n_outputs;
}

static void embed_end(embed *e) { free(e->args); }

/* ", const float *x, const int32_t *label" for args [from, from + n) */
static void write_args(embed *e, int from, int n, int is_const) {
    for (int k = from; k < from + n; k++) {
        const ir_node *node = &e->g->nodes[e->args[k].node];
        fprintf(e->out, ", %s%s *%s", is_const ? "const " : "", node->dtype == IR_I32 ? "int32_t" : "float",
                e->args[k].c);
    }
}

/* The signature of API function `fn` (an embed_functions entry). */
static void write_signature(embed *e, const char *fn) {
    FILE *out = e->out;
    const char *p = e->prefix;
    int targets = e->n_inputs, outputs = e->n_inputs + e->n_targets;
    if (strcmp(fn, "create") == 0)
        fprintf(out, "%s *%s_create(void)", p, p);
    else if (strcmp(fn, "free") == 0)
        fprintf(out, "void %s_free(%s *model)", p, p);
    else if (strcmp(fn, "error") == 0)
        fprintf(out, "const char *%s_error(const %s *model)", p, p);
    else if (strcmp(fn, "init") == 0)
        fprintf(out, "int %s_init(%s *model, uint64_t seed)", p, p);
    else if (strcmp(fn, "load") == 0 || strcmp(fn, "save") == 0)
        fprintf(out, "int %s_%s(%s *model, const char *path)", p, fn, p);
    else if (strcmp(fn, "train_step") == 0 || strcmp(fn, "evaluate") == 0) {
        fprintf(out, "int %s_%s(%s *model, int64_t batch", p, fn, p);
        write_args(e, 0, e->n_inputs, 1);
        write_args(e, targets, e->n_targets, 1);
        fprintf(out, "%s)", fn[0] == 't' ? ", float *loss" : ", float *loss, float *metrics");
    } else if (strcmp(fn, "predict") == 0) {
        fprintf(out, "int %s_predict(%s *model, int64_t batch", p, p);
        write_args(e, 0, e->n_inputs, 1);
        write_args(e, outputs, e->n_outputs, 0);
        fputs(")", out);
    } else if (strcmp(fn, "set_hyper") == 0)
        fprintf(out, "int %s_set_hyper(%s *model, const char *name, double value)", p, p);
    else if (strcmp(fn, "get_hyper") == 0)
        fprintf(out, "int %s_get_hyper(%s *model, const char *name, double *value)", p, p);
    else if (strcmp(fn, "steps") == 0)
        fprintf(out, "int64_t %s_steps(const %s *model)", p, p);
    else if (strcmp(fn, "set_steps") == 0)
        fprintf(out, "void %s_set_steps(%s *model, int64_t steps)", p, p);
    else if (strcmp(fn, "reset_state") == 0)
        fprintf(out, "void %s_reset_state(%s *model)", p, p);
    else
        fprintf(out, "int %s_set_threads(int threads)", p);
}

/* "f32[B, 2]" */
static void write_shape(FILE *out, const ir_node *n) {
    fprintf(out, "%s[", n->dtype == IR_I32 ? "i32" : "f32");
    for (int d = 0; d < n->shape.rank; d++) {
        fputs(d ? ", " : "", out);
        if (ir_is_batch_dim(&n->shape, d))
            fputs("B", out);
        else
            fprintf(out, "%" PRId64, n->shape.dims[d]);
    }
    fputs("]", out);
}

/* Its elements at batch 1: an array holds batch times as many (or
 * exactly these without a batch dimension). */
static int64_t unit_elements(const ir_node *n) {
    int64_t e = 1;
    for (int d = 0; d < n->shape.rank; d++)
        e *= ir_is_batch_dim(&n->shape, d) ? 1 : n->shape.dims[d];
    return e;
}

static void write_tensor_macros(embed *e) {
    static const char *const kinds[] = {"input", "target", "output"};
    for (int k = 0; k < e->n_inputs + e->n_targets + e->n_outputs; k++) {
        const embed_arg *a = &e->args[k];
        const ir_node *n = &e->g->nodes[a->node];
        int kind = k < e->n_inputs ? 0 : k < e->n_inputs + e->n_targets ? 1 : 2;
        fprintf(e->out, "/* %s ", kinds[kind]);
        write_shape(e->out, n);
        fprintf(e->out, " \"%s\" (argument %s)%s */\n", a->name, a->c,
                n->shape.batch_mask ? "" : ": no batch dimension, the same size at any batch");
        fprintf(e->out, "#define %s_%s_ELEMS %" PRId64 "\n", e->upper, a->upper, unit_elements(n));
    }
}

static void write_metric_macros(embed *e) {
    const ir_graph *g = e->g;
    fprintf(e->out, "\n/* evaluate's metrics, in this order */\n#define %s_N_METRICS %d\n", e->upper, g->n_metrics);
    for (int i = 0; i < g->n_metrics; i++) {
        char name[EMBED_NAME];
        identifier(g->metrics[i].name, 1, name, sizeof name);
        fprintf(e->out, "#define %s_METRIC_%s %d\n", e->upper, name, i);
    }
}

static void write_hyper_comment(embed *e) {
    const ir_graph *g = e->g;
    fputs("\n/* Hyper-parameters (set_hyper, get_hyper) and their values in the .mdl file:", e->out);
    int any = 0;
    for (int i = 0; i < g->n_hypers; i++) {
        const char *name = g->hypers[i].name;
        if (strcmp(name, "training") == 0 || strcmp(name, "step") == 0 || strcmp(name, "scan_steps") == 0 ||
            strcmp(name, "position") == 0)
            continue;
        /* a name is an identifier of the language: no comment end in it */
        fprintf(e->out, "%s %s = %.9g", any ? "," : "", name, g->hypers[i].value);
        any = 1;
    }
    fprintf(e->out, "%s */\n", any ? "" : " none");
}

int cg_write_embed_header(const ir_graph *g, const char *prefix, FILE *out) {
    embed e;
    embed_begin(&e, g, prefix, out);
    fprintf(out,
            "/*\n * Model %s as a C library: the header of mdlc -c (docs/embedding.md).\n"
            " *\n * Link the object mdlc wrote beside it with -lm -lpthread.  Every\n"
            " * function returning int returns 0, or -1 with %s_error(model) the\n"
            " * one-line reason.  An input, target or output is a dense row-major\n"
            " * array of its declared shape with the batch dimension B the call's\n"
            " * batch, 1 <= batch <= %s_MAX_BATCH: batch * <NAME>_ELEMS values.\n */\n",
            g->model_name, prefix, e.upper);
    fprintf(out, "#ifndef %s_MDL_H\n#define %s_MDL_H\n\n#include <stdint.h>\n\n", e.upper, e.upper);
    fputs("#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n", out);
    fprintf(out, "#define %s_MAX_BATCH %" PRId64 "\n\n", e.upper, g->max_batch);
    write_tensor_macros(&e);
    write_metric_macros(&e);
    write_hyper_comment(&e);
    fprintf(out, "\ntypedef struct %s %s;\n\n", prefix, prefix);
    for (int i = 0; embed_functions[i]; i++) {
        write_signature(&e, embed_functions[i]);
        fputs(";\n", out);
    }
    fputs("\n#ifdef __cplusplus\n}\n#endif\n\n#endif\n", out);
    embed_end(&e);
    return fflush(out) != 0 || ferror(out) ? -1 : 0;
}

/* "const void *inputs[] = {x, y};" (NULL for none: C has no empty array) */
static void write_pointer_array(embed *e, const char *type, const char *array, int from, int n) {
    fprintf(e->out, "    %s%s[] = {", type, array);
    for (int k = from; k < from + n; k++)
        fprintf(e->out, "%s%s", k > from ? ", " : "", e->args[k].c);
    fprintf(e->out, "%s};\n", n ? "" : "NULL");
}

static void write_body(embed *e, const char *fn) {
    FILE *out = e->out;
    int targets = e->n_inputs, outputs = e->n_inputs + e->n_targets;
    if (strcmp(fn, "train_step") == 0 || strcmp(fn, "evaluate") == 0) {
        write_pointer_array(e, "const void *", "inputs", 0, e->n_inputs);
        write_pointer_array(e, "const void *", "targets", targets, e->n_targets);
        fprintf(out, "    return rt_lib_%s((rt_lib *)model, batch, inputs, targets, loss%s);\n", fn,
                fn[0] == 'e' ? ", metrics" : "");
    } else if (strcmp(fn, "predict") == 0) {
        write_pointer_array(e, "const void *", "inputs", 0, e->n_inputs);
        write_pointer_array(e, "void *", "outputs", outputs, e->n_outputs);
        fputs("    return rt_lib_predict((rt_lib *)model, batch, inputs, outputs);\n", out);
    } else if (strcmp(fn, "create") == 0)
        fprintf(out, "    return (%s *)rt_lib_create(&mdl_model);\n", e->prefix);
    else if (strcmp(fn, "free") == 0 || strcmp(fn, "reset_state") == 0)
        fprintf(out, "    rt_lib_%s((rt_lib *)model);\n", fn);
    else if (strcmp(fn, "error") == 0 || strcmp(fn, "steps") == 0)
        fprintf(out, "    return rt_lib_%s((const rt_lib *)model);\n", fn);
    else if (strcmp(fn, "init") == 0)
        fputs("    return rt_lib_init((rt_lib *)model, seed);\n", out);
    else if (strcmp(fn, "load") == 0 || strcmp(fn, "save") == 0)
        fprintf(out, "    return rt_lib_%s((rt_lib *)model, path);\n", fn);
    else if (strcmp(fn, "set_hyper") == 0 || strcmp(fn, "get_hyper") == 0)
        fprintf(out, "    return rt_lib_%s((rt_lib *)model, name, value);\n", fn);
    else if (strcmp(fn, "set_steps") == 0)
        fputs("    rt_lib_set_steps((rt_lib *)model, steps);\n", out);
    else
        fputs("    return rt_lib_set_threads(threads);\n", out);
}

int cg_write_embed_api(const ir_graph *g, const char *prefix, const char *header, FILE *out) {
    embed e;
    embed_begin(&e, g, prefix, out);
    fprintf(out, "\n/* The C API of mdlc -c (runtime/rt_lib.h): wrappers with the model's types. */\n");
    fprintf(out, "#include \"rt_lib.h\"\n#include \"%s\"\n\n", header);
    for (int i = 0; embed_functions[i]; i++) {
        write_signature(&e, embed_functions[i]);
        fputs(" {\n", out);
        write_body(&e, embed_functions[i]);
        fputs("}\n\n", out);
    }
    embed_end(&e);
    return fflush(out) != 0 || ferror(out) ? -1 : 0;
}

int cg_write_embed_symbols(const char *prefix, FILE *out) {
    for (int i = 0; embed_functions[i]; i++)
        fprintf(out, "%s_%s\n", prefix, embed_functions[i]);
    return fflush(out) != 0 || ferror(out) ? -1 : 0;
}
