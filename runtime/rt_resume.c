/*
 * rt_resume.c - where a training run stands, kept in its checkpoint so
 * that `train --resume CKPT` continues it exactly.
 *
 * A step's result depends on the persistent tensors (parameters,
 * optimizer state, recurrent state: the checkpoint's tensors), the batch
 * it takes, and the hyper-parameters it is given: the run's own, the
 * learning rate the schedule derives from the base rate, the step count
 * (which seeds dropout masks) and `training`.  The batch is fixed by the
 * seed, the epoch and the step within it: the shuffle (or window) stream
 * is drawn once per epoch from the seed, so replaying the draws of the
 * epochs already done puts it, and the order it permutes, where they were.
 * So "mdl.run" (a JSON object in a metadata string, as "mdl.hypers") holds
 *
 *   seed        the seed of the shuffle/window streams and initialisers
 *   epochs      the run's number of epochs (the schedule spans them)
 *   epochs_done whole epochs finished
 *   steps_done  steps of the next epoch already taken (0: at its start)
 *   step        train steps in all (the `step` hyper, the schedule's)
 *   batch, samples, shuffle, windows
 *               what the order depends on: resuming on other data or with
 *               another batch would not continue the same run
 *   base_lr     the base learning rate as a double (mdl.hypers has f32s;
 *               the schedule computes in double from the base)
 *   seen, loss, metrics
 *               the epoch's sums so far, so that its mean is the same
 *
 * with integers written as JSON integers (exact up to 2^64) and doubles
 * with 17 significant digits (exact).  "mdl.hypers" gives the values of
 * the run's hyper-parameters.
 */
#include "rt_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void put_double(rt_buf *b, const char *key, double v) { rt_buf_printf(b, ",\"%s\":%.17g", key, v); }

char *rt_run_state_json(const rt_train_run *r, int64_t epochs_done, int64_t steps_done) {
    rt_buf b = {0};
    rt_buf_printf(&b, "{\"seed\":%llu,\"epochs\":%lld,\"epochs_done\":%lld,\"steps_done\":%lld,\"step\":%lld",
                  (unsigned long long)r->seed, (long long)r->epochs, (long long)epochs_done, (long long)steps_done,
                  (long long)r->step);
    rt_buf_printf(&b, ",\"batch\":%lld,\"samples\":%lld,\"shuffle\":%s,\"windows\":%s", (long long)r->batch,
                  (long long)r->data->n, r->o->no_shuffle ? "false" : "true", r->whole ? "true" : "false");
    if (r->lr_index >= 0)
        put_double(&b, "base_lr", r->base_lr);
    int partial = steps_done > 0;
    rt_buf_printf(&b, ",\"seen\":%lld", (long long)(partial ? r->seen : 0));
    put_double(&b, "loss", partial ? r->loss : 0);
    rt_buf_printf(&b, ",\"metrics\":[");
    for (int j = 0; j < r->m->n_metrics; j++)
        rt_buf_printf(&b, "%s%.17g", j ? "," : "", partial ? r->metrics[j] : 0);
    rt_buf_printf(&b, "]}");
    return b.data;
}

typedef struct reader {
    const char *path;
    const rt_json *run;
    int rc;
} reader;

static const rt_json *member(reader *rd, const char *key, rt_json_type type) {
    const rt_json *j = rt_json_get(rd->run, key);
    if (!j || j->type != type) {
        const char *what = type == RT_JSON_NUMBER ? "number" : type == RT_JSON_BOOL ? "true or false" : "list";
        if (rd->rc == 0)
            rt_error("%s: \"mdl.run\" has no %s \"%s\"", rd->path, what, key);
        rd->rc = -1;
        return NULL;
    }
    return j;
}

static int64_t count(reader *rd, const char *key) {
    uint64_t v = 0;
    const rt_json *j = member(rd, key, RT_JSON_NUMBER);
    if (j && (rt_json_u64(j, &v) || v > (uint64_t)INT64_MAX)) {
        if (rd->rc == 0)
            rt_error("%s: \"mdl.run\": \"%s\" is not a count: %s", rd->path, key, j->text);
        rd->rc = -1;
    }
    return (int64_t)v;
}

static double real(reader *rd, const rt_json *j, const char *key) {
    char *end;
    double v = j ? strtod(j->text, &end) : 0;
    if (j && (*end || !isfinite(v))) {
        if (rd->rc == 0)
            rt_error("%s: \"mdl.run\": \"%s\" is not a finite number: %s", rd->path, key, j->text);
        rd->rc = -1;
    }
    return v;
}

/* The JSON object in metadata string `text` (named key), or NULL after
 * an error. */
static rt_json *object_in(const char *path, const char *key, const rt_json *text) {
    char msg[128];
    size_t at = 0;
    rt_json *j = rt_json_parse(text->text, text->len, &at, msg, sizeof msg);
    if (!j || j->type != RT_JSON_OBJECT) {
        rt_json_free(j);
        rt_error("%s: \"%s\" is not a JSON object", path, key);
        return NULL;
    }
    return j;
}

/* "mdl.hypers": the run's values of the model's own hypers. */
static int read_hypers(const rt_model *m, const char *path, const rt_json *metadata, rt_run_state *s) {
    s->hypers = rt_xcalloc((size_t)m->n_hypers + 1, sizeof *s->hypers);
    s->has_hyper = rt_xcalloc((size_t)m->n_hypers + 1, sizeof *s->has_hyper);
    const rt_json *text = rt_json_get(metadata, "mdl.hypers");
    if (!text)
        return 0;
    rt_json *h = object_in(path, "mdl.hypers", text);
    if (!h)
        return -1;
    int rc = 0;
    for (int i = 0; i < m->n_hypers && rc == 0; i++) {
        const rt_json *v = rt_json_get(h, m->hypers[i].name);
        if (!v)
            continue;
        char *end;
        double x = v->type == RT_JSON_NUMBER ? strtod(v->text, &end) : NAN;
        if (!isfinite(x))
            rc = rt_error("%s: \"mdl.hypers\": \"%s\" is not a number", path, m->hypers[i].name);
        s->hypers[i] = (float)x;
        s->has_hyper[i] = 1;
    }
    rt_json_free(h);
    return rc;
}

static int parse_run(const rt_model *m, const char *path, const rt_json *text, rt_run_state *s) {
    rt_json *run = object_in(path, "mdl.run", text);
    if (!run)
        return -1;
    reader rd = {path, run, 0};
    uint64_t seed = 0;
    const rt_json *j = member(&rd, "seed", RT_JSON_NUMBER);
    if (j && rt_json_u64(j, &seed) && rd.rc == 0)
        rd.rc = rt_error("%s: \"mdl.run\": \"seed\" is not a 64-bit count: %s", path, j->text);
    s->seed = seed;
    s->epochs = count(&rd, "epochs");
    s->epochs_done = count(&rd, "epochs_done");
    s->steps_done = count(&rd, "steps_done");
    s->step = count(&rd, "step");
    s->batch = count(&rd, "batch");
    s->samples = count(&rd, "samples");
    const rt_json *sh = member(&rd, "shuffle", RT_JSON_BOOL), *wi = member(&rd, "windows", RT_JSON_BOOL);
    s->shuffle = sh && sh->boolean;
    s->windows = wi && wi->boolean;
    const rt_json *lr = rt_json_get(run, "base_lr");
    s->has_base_lr = lr != NULL;
    s->base_lr = real(&rd, lr, "base_lr");
    s->seen = count(&rd, "seen");
    s->loss = real(&rd, member(&rd, "loss", RT_JSON_NUMBER), "loss");
    const rt_json *metrics = member(&rd, "metrics", RT_JSON_ARRAY);
    s->metrics = rt_xcalloc((size_t)m->n_metrics + 1, sizeof *s->metrics);
    if (metrics && metrics->n != m->n_metrics && rd.rc == 0)
        rd.rc = rt_error("%s: \"mdl.run\" has %d metric sums, model %s has %d metrics", path, metrics->n, m->name,
                         m->n_metrics);
    for (int i = 0; rd.rc == 0 && metrics && i < metrics->n; i++)
        s->metrics[i] = real(&rd, metrics->items[i]->type == RT_JSON_NUMBER ? metrics->items[i] : NULL, "metrics");
    if (rd.rc == 0 && (s->epochs == 0 || s->epochs_done > s->epochs || s->batch == 0 ||
                       (s->epochs_done == s->epochs && s->steps_done > 0)))
        rd.rc = rt_error("%s: \"mdl.run\" does not describe a run (epoch %lld of %lld, batch %lld)", path,
                         (long long)s->epochs_done, (long long)s->epochs, (long long)s->batch);
    rt_json_free(run);
    return rd.rc;
}

int rt_run_state_read(const rt_model *m, const char *path, rt_run_state *s) {
    memset(s, 0, sizeof *s);
    rt_json *header;
    if (rt_ckpt_read_header(m, path, &header))
        return -1;
    const rt_json *metadata = rt_json_get(header, "__metadata__");
    const rt_json *run = metadata ? rt_json_get(metadata, "mdl.run") : NULL;
    int rc;
    if (!run)
        rc = rt_error("%s has no record of a training run (\"mdl.run\"), so it cannot be resumed: it was not saved by "
                      "`train --save`, or by an older mdl (--load starts a new run from its weights)",
                      path);
    else
        rc = parse_run(m, path, run, s) || read_hypers(m, path, metadata, s) ? -1 : 0;
    rt_json_free(header);
    if (rc)
        rt_run_state_free(s);
    return rc;
}

void rt_run_state_free(rt_run_state *s) {
    free(s->metrics);
    free(s->hypers);
    free(s->has_hyper);
    memset(s, 0, sizeof *s);
}
