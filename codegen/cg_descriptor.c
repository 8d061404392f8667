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

/* The source file's text, or NULL (then the checks name only the place). */
static char *read_source(const char *path) {
    FILE *f = path && *path ? fopen(path, "rb") : NULL;
    if (!f)
        return NULL;
    size_t cap = 4096, len = 0;
    char *text = ir_xmalloc(cap);
    for (size_t got; (got = fread(text + len, 1, cap - len - 1, f)) > 0;) {
        len += got;
        if (cap - len < 2)
            text = ir_xrealloc(text, cap *= 2);
    }
    fclose(f);
    text[len] = 0;
    return text;
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
    char *text = read_source(w->g->source_path);
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
    free(text);
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
