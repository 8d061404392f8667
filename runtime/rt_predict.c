/*
 * rt_predict.c - `predict`: run the model on inputs and write its outputs.
 *
 * The input file holds the input columns (target columns may follow and
 * are ignored), so the files a model was evaluated on can be fed back as
 * they are.  The result is CSV with one row per input sample: a header
 * naming each output element (`y` for a [B] output, `probs_0`..`probs_9`
 * for [B, 10], `y_1_2` for element [1][2] of a sample; names that pandas,
 * R and spreadsheets take as they are) and the values at full precision
 * (%.9g round-trips an f32).  Hyper-parameter "training" is 0.
 */
#include "rt_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int check_outputs(const rt_model *m) {
    if (!m->predict_step || m->n_outputs == 0)
        return rt_error("model %s has no outputs to predict", m->name);
    for (int i = 0; i < m->n_outputs; i++)
        if (!rt_layout_of(&m->outputs[i]).has_batch)
            return rt_error("output \"%s\" has no batch dimension, so it has no per-sample value to write",
                            m->outputs[i].name);
    return 0;
}

/* The header of element k of one sample of t: `y`, `y_2` or `y_1_0`. */
static void header_name(const rt_tensor *t, int64_t k, FILE *f) {
    int64_t index[RT_MAX_RANK];
    int n = rt_sample_index(t, k, index);
    fputs(t->name, f);
    for (int i = 0; i < n; i++)
        fprintf(f, "_%lld", (long long)index[i]);
}

static void write_header(const rt_model *m, FILE *f) {
    for (int i = 0; i < m->n_outputs; i++) {
        const rt_tensor *t = &m->outputs[i];
        for (int64_t k = 0; k < rt_layout_of(t).sample; k++) {
            if (i || k)
                fputc(',', f);
            header_name(t, k, f);
        }
    }
    fputc('\n', f);
}

/* Row i of the batch just computed. */
static void write_row(const rt_model *m, const char *arena, int64_t batch, int64_t i, void *sample, FILE *f) {
    for (int o = 0; o < m->n_outputs; o++) {
        const rt_tensor *t = &m->outputs[o];
        int64_t n = rt_layout_of(t).sample;
        rt_read_sample(arena, t, batch, i, sample);
        for (int64_t k = 0; k < n; k++) {
            const char *sep = o || k ? "," : "";
            if (t->dtype == RT_I32)
                fprintf(f, "%s%d", sep, ((int32_t *)sample)[k]);
            else
                fprintf(f, "%s%.9g", sep, ((float *)sample)[k]);
        }
    }
    fputc('\n', f);
}

static void predict_all(const rt_model *m, char *arena, const rt_dataset *d, int64_t batch, FILE *f) {
    int64_t largest = 1;
    for (int o = 0; o < m->n_outputs; o++)
        if (rt_layout_of(&m->outputs[o]).sample > largest)
            largest = rt_layout_of(&m->outputs[o]).sample;
    void *sample = rt_xmalloc((size_t)largest * 4);
    int64_t *order = rt_identity_order(d->n);
    write_header(m, f);
    rt_zero_state(m, arena); /* a checkpoint holds the state training left */
    for (int64_t start = 0; start < d->n; start += batch) {
        int64_t b = d->n - start < batch ? d->n - start : batch;
        rt_gather(arena, d, order + start, b);
        rt_write_hypers(m, arena, NULL, 0, 0);
        m->predict_step(arena, b);
        for (int64_t i = 0; i < b; i++)
            write_row(m, arena, b, i, sample, f);
    }
    free(order);
    free(sample);
}

static int predict_to(const rt_model *m, char *arena, const rt_dataset *d, int64_t batch, const char *path) {
    FILE *f = path ? fopen(path, "w") : stdout;
    if (!f)
        return rt_error("cannot open %s for writing: %s", path, strerror(errno));
    predict_all(m, arena, d, batch, f);
    int failed = ferror(f);
    if (path)
        failed |= fclose(f) != 0;
    else
        failed |= fflush(f) != 0;
    if (failed)
        return rt_error("cannot write %s: %s", path ? path : "standard output", strerror(errno));
    return 0;
}

int rt_cmd_predict(const rt_model *m, const rt_opts *o) {
    if (!o->load || !o->input) {
        fprintf(stderr, "error: predict needs --load CKPT and --input FILE (see '%s predict --help')\n", o->prog);
        return RT_EXIT_USAGE;
    }
    int64_t batch;
    if (check_outputs(m) || rt_resolve_batch(m, o->batch, m->max_batch, &batch))
        return RT_EXIT_FAIL;
    rt_dataset *d = rt_data_load(m, o->input, RT_DATA_INPUTS);
    char *arena = d ? rt_setup(m, m->seed, o->load, NULL) : NULL;
    int rc = arena ? predict_to(m, arena, d, batch, o->output) : -1;
    rt_arena_free(arena);
    rt_data_free(d);
    return rc ? RT_EXIT_FAIL : 0;
}
