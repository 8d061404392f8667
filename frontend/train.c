/*
 * train.c - the `train` statement: the optimizer and its settings, the
 * learning-rate schedule, and batch, epochs and seed.
 *
 * Nothing here builds nodes: the statement's choices are written into the
 * graph's train fields (g->optimizer and its settings, g->schedule, ...),
 * which the optimizer pass and the runtime read.  The optimizers and the
 * settings each takes are the table in ir/optimizers.def; the schedules
 * the runtime applies (runtime/rt_sched.c).  Every setting is a
 * non-negative number.
 */
#include <stdlib.h>
#include <string.h>

#include "lower_internal.h"

/* The optimizers and their settings: ir/optimizers.def, which the
 * optimizer pass reads too. */
static const char *const optimizer_names[] = {
#define OPTIMIZER(name, rule, decoupled_decay) #name,
#include "optimizers.def"
};

static const struct {
    const char *optimizer, *key;
} optimizer_settings[] = {
#define OPT_SETTING(optimizer, key, fallback) {#optimizer, #key},
#include "optimizers.def"
};

/* The settings `optimizer` takes, as a NULL-terminated list in keys
 * (room for 16); 0 if there is no optimizer of that name. */
static int optimizer_keys(const char *optimizer, const char **keys) {
    int known = 0, n = 0;
    for (size_t i = 0; i < sizeof optimizer_names / sizeof optimizer_names[0]; i++)
        known |= strcmp(optimizer_names[i], optimizer) == 0;
    for (size_t i = 0; i < sizeof optimizer_settings / sizeof optimizer_settings[0] && n < 15; i++)
        if (strcmp(optimizer_settings[i].optimizer, optimizer) == 0)
            keys[n++] = optimizer_settings[i].key;
    keys[n] = NULL;
    return known;
}

/* Appends ", name" (or "name" to an empty buf): the "known: ..." lists. */
static void append_name(char *buf, size_t size, const char *name) {
    size_t n = strlen(buf);
    snprintf(buf + n, size - n, "%s%s", n ? ", " : "", name);
}

/* The learning-rate schedules the runtime applies, and their settings. */
static const struct {
    const char *name;
    const char *const keys[4];
} schedules[] = {
    {"constant", {"warmup", NULL}},
    {"step", {"step_size", "gamma", "warmup", NULL}},
    {"exponential", {"gamma", "warmup", NULL}},
    {"cosine", {"min_lr", "warmup", NULL}},
};

/* Reads name = number settings of a call into names/values (at most 8). */
static int read_settings(lower *l, const ast_expr *call, const char *what, const char *const *keys, const char *first,
                         char **names, double *values, int *n) {
    args a;
    if (eval_args(l, call, &a) || check_keywords(l, &a, what, keys))
        return -1;
    for (int i = 0; i < a.n; i++) {
        const char *key = a.arg[i].name ? a.arg[i].name : (i == 0 ? first : NULL);
        if (!key) {
            error_at(l, a.arg[i].value->loc, "write %s settings as name = value", what);
            return -1;
        }
        if (!is_number(a.v[i])) {
            error_at(l, a.arg[i].value->loc, "'%s' must be a number", key);
            return -1;
        }
        if (num(a.v[i]) < 0) {
            error_at(l, a.arg[i].value->loc, "'%s' must not be negative", key);
            return -1;
        }
        if (*n < 8) {
            names[*n] = ir_xstrdup(key);
            values[(*n)++] = num(a.v[i]);
        }
    }
    return 0;
}

/* schedule = cosine(min_lr = 1e-5, warmup = 100) */
static void read_schedule(lower *l, const ast_expr *e) {
    ir_graph *g = l->g;
    const ast_expr *callee = e->kind == AST_CALL ? e->lhs : e;
    int k = -1;
    if (callee && callee->kind == AST_NAME)
        for (size_t i = 0; i < sizeof schedules / sizeof schedules[0]; i++)
            if (strcmp(schedules[i].name, callee->name) == 0)
                k = (int)i;
    if (k < 0) {
        char known[128] = "";
        const char *names[sizeof schedules / sizeof schedules[0] + 1] = {0};
        for (size_t i = 0; i < sizeof schedules / sizeof schedules[0]; i++) {
            append_name(known, sizeof known, schedules[i].name);
            names[i] = schedules[i].name;
        }
        const char *guess = callee && callee->kind == AST_NAME ? closest_of(callee->name, names) : NULL;
        error_suggesting(l, callee ? callee->loc : e->loc, guess, "unknown learning-rate schedule (known: %s)", known);
        return;
    }
    if (g->schedule) {
        error_at(l, e->loc, "the schedule is given twice");
        return;
    }
    g->schedule = ir_xstrdup(callee->name);
    if (e->kind == AST_CALL)
        read_settings(l, e, callee->name, schedules[k].keys, NULL, g->sched_arg_names, g->sched_arg_values,
                      &g->n_sched_args);
}

/* adam(lr = 1e-3): the optimizer and its settings. */
static void read_optimizer(lower *l, const ast_stmt *st) {
    ir_graph *g = l->g;
    const ast_expr *opt = st->value;
    const ast_expr *callee = opt && opt->kind == AST_CALL ? opt->lhs : opt;
    if (!callee || callee->kind != AST_NAME) {
        error_at(l, opt ? opt->loc : st->loc, "expected an optimizer: sgd(lr = ...), momentum(...) or adam(...)");
        return;
    }
    const char *name = callee->name;
    const char *keys[16];
    if (!optimizer_keys(name, keys)) {
        char known[128] = "";
        for (size_t i = 0; i < sizeof optimizer_names / sizeof optimizer_names[0]; i++)
            append_name(known, sizeof known, optimizer_names[i]);
        const char *names[sizeof optimizer_names / sizeof optimizer_names[0] + 1] = {0};
        memcpy(names, optimizer_names, sizeof optimizer_names);
        error_suggesting(l, callee->loc, closest_of(name, names), "unknown optimizer '%s' (known: %s)", name, known);
        return;
    }
    free(g->optimizer);
    g->optimizer = ir_xstrdup(name);
    if (opt->kind == AST_CALL)
        read_settings(l, opt, name, keys, "lr", g->opt_arg_names, g->opt_arg_values, &g->n_opt_args);
}

/* The optimizer, then batch, epochs, seed and schedule; a mistake in one
 * does not hide those in the others. */
void read_train(lower *l, const ast_stmt *st) {
    ir_graph *g = l->g;
    if (l->have_train++) {
        error_at(l, st->loc, "only one train statement is allowed");
        return;
    }
    read_optimizer(l, st);
    for (int i = 0; i < st->n_args; i++) {
        const ast_arg *arg = &st->args[i];
        if (arg->name && strcmp(arg->name, "schedule") == 0) {
            read_schedule(l, arg->value);
            continue;
        }
        value v = eval(l, arg->value);
        if (v.kind == V_ERROR)
            continue;
        int64_t *slot = NULL;
        if (arg->name && strcmp(arg->name, "batch") == 0)
            slot = &g->batch;
        else if (arg->name && strcmp(arg->name, "epochs") == 0)
            slot = &g->epochs;
        if (arg->name && strcmp(arg->name, "seed") == 0) {
            if (v.kind != V_INT || v.i < 0)
                error_at(l, arg->value->loc, "seed must be a non-negative integer");
            else
                g->seed = (uint64_t)v.i;
        } else if (!slot) {
            static const char *const settings[] = {"batch", "epochs", "seed", "schedule", NULL};
            error_suggesting(
                l, arg->name ? arg->name_loc : arg->value->loc, arg->name ? closest_of(arg->name, settings) : NULL,
                "unknown train setting '%s' (known: batch, epochs, seed, schedule)", arg->name ? arg->name : "?");
        } else if (v.kind != V_INT || v.i <= 0) {
            error_at(l, arg->value->loc, "'%s' must be a positive integer", arg->name);
        } else {
            *slot = v.i;
        }
    }
}

/* The batch bound must be known before any shape is built, so lower.c asks
 * for the train statement's `batch = N` first (a literal in (0, 2^24]);
 * read_train reads it again later, with its errors. */
int64_t train_batch(const ast_program *user) {
    int64_t batch = 0;
    for (int i = 0; i < user->n_stmts && !batch; i++) {
        const ast_stmt *st = user->stmts[i];
        for (int k = 0; st->kind == ST_TRAIN && k < st->n_args; k++)
            if (st->args[k].name && strcmp(st->args[k].name, "batch") == 0 && st->args[k].value->kind == AST_INT &&
                st->args[k].value->int_value > 0 && st->args[k].value->int_value <= (1 << 24))
                batch = st->args[k].value->int_value;
    }
    return batch;
}
