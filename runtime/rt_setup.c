/*
 * rt_setup.c - the set-up that train, eval, predict, gradcheck and info
 * share: the arena with its parameters, and the batch size, seed and
 * hyper-parameter values a run uses.
 *
 * Each value comes from the command line where it was given and from the
 * model's descriptor (what the .mdl file declared) otherwise.  The batch
 * is checked against the max batch the model was compiled for, since the
 * arena's slots are laid out for at most that many samples.
 */
#include "rt_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A zeroed arena with parameters from the seed, then from load_path;
 * vocab (may be NULL) gets the checkpoint's vocabulary (n = 0 without)
 * and lexicon (NULL without; the caller frees it). */
char *rt_setup(const rt_model *m, uint64_t seed, const char *load_path, rt_vocab *vocab) {
    if (vocab) {
        vocab->n = 0;
        vocab->lexicon = NULL;
    }
    char *arena = rt_arena_new(m);
    if (!arena)
        return NULL;
    if (rt_init_params(m, arena, seed) || (load_path && rt_ckpt_load_vocab(m, arena, load_path, vocab))) {
        rt_arena_free(arena);
        return NULL;
    }
    return arena;
}

int rt_resolve_batch(const rt_model *m, int64_t requested, int64_t fallback, int64_t *batch) {
    int64_t b = requested ? requested : fallback;
    if (b > m->max_batch) {
        if (requested)
            return rt_error("--batch %lld is too large: this model was compiled with max batch %lld (recompile with "
                            "mdlc --max-batch %lld)",
                            (long long)b, (long long)m->max_batch, (long long)b);
        return rt_error(
            "the model's batch %lld is larger than its max batch %lld: pass --batch or recompile with mdlc --max-batch",
            (long long)b, (long long)m->max_batch);
    }
    *batch = b;
    return 0;
}

/* The batch training uses without --batch (text is eval'd in it too). */
int64_t rt_train_batch(const rt_model *m) { return m->batch > 0 ? m->batch : m->max_batch < 32 ? m->max_batch : 32; }

uint64_t rt_resolve_seed(const rt_model *m, const rt_opts *o) { return o->has_seed ? o->seed : m->seed; }

/* The shortest decimal that reads back as the same f32: 0.1, not
 * 0.100000001 (what %.9g writes), for logs and checkpoints. */
void rt_format_f32(float v, char *buf, size_t size) {
    for (int digits = 6; digits <= 9; digits++) {
        snprintf(buf, size, "%.*g", digits, v);
        if ((float)strtod(buf, NULL) == v)
            return;
    }
}

/* "lr, lam" or "(none)": the names `--hyper` may set, for messages. */
void rt_list_hypers(const rt_model *m, int runtime_set, char *buf, size_t size) {
    size_t n = 0;
    buf[0] = '\0';
    for (int i = 0; i < m->n_hypers && n < size; i++)
        if (runtime_set || !rt_hyper_is_runtime(m->hypers[i].name))
            n += (size_t)snprintf(buf + n, size - n, "%s%s", n ? ", " : "", m->hypers[i].name);
    if (n == 0)
        snprintf(buf, size, "(none)");
}

static int override_hyper(const rt_model *m, float *values, const char *name, double value, const char *option,
                          int runtime_set) {
    const rt_hyper *h = rt_find_hyper(m, name);
    if (!h) {
        char names[512];
        rt_list_hypers(m, runtime_set, names, sizeof names);
        return rt_error("%s: no hyper-parameter '%s'; the model has: %s", option, name, names);
    }
    if (!runtime_set && rt_hyper_is_runtime(name))
        return rt_error("%s: \"%s\" is set by the runtime before every step", option, name);
    values[h - m->hypers] = (float)value;
    return 0;
}

/* The descriptor's values, overridden by --lr and --hyper (which may set
 * "training" and "step" only where runtime_set says so); NULL after an
 * error. */
float *rt_resolve_hypers(const rt_model *m, const rt_opts *o, int runtime_set) {
    float *values = rt_xcalloc((size_t)m->n_hypers + 1, sizeof *values);
    for (int i = 0; i < m->n_hypers; i++)
        values[i] = (float)m->hypers[i].value;
    int rc = o->has_lr ? override_hyper(m, values, "lr", o->lr, "--lr", 0) : 0;
    for (int i = 0; i < o->n_hyper_sets && rc == 0; i++)
        rc = override_hyper(m, values, o->hyper_sets[i].name, o->hyper_sets[i].value, "--hyper", runtime_set);
    if (rc) {
        free(values);
        return NULL;
    }
    return values;
}
