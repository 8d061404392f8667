/*
 * rt_train.c - the training loop, evaluation, and the set-up they share.
 *
 * An epoch shuffles the sample indices with the seed's shuffle stream,
 * walks them in batches of `batch` (the last one may be short: kernels take
 * the actual batch size), gathers each batch into the arena, sets the
 * hyper-parameters and calls train_step.  The epoch's loss and metrics are
 * the batch values weighted by batch size, so a short last batch counts for
 * what it holds.  A non-finite loss stops training at once, before anything
 * is saved.
 *
 * Output: a summary line, then one line per logged epoch with no control
 * codes, so a log file or a pipe reads cleanly.  Only when stdout is a
 * terminal is the current epoch's progress redrawn in place with \r.
 */
#include "rt_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Everything one training run needs. */
typedef struct train_run {
    const rt_model *m;
    const rt_opts *o;
    char *arena;
    rt_dataset *data, *val;
    int64_t batch, epochs, log_every;
    uint64_t seed;
    float *hypers; /* one value per rt_hyper */
    int tty, quiet;
    double loss, *metrics;
    double val_loss, *val_metrics;
} train_run;

/*
 * Set-up shared by the commands
 */

/* A zeroed arena with parameters from the seed, then from load_path. */
char *rt_setup(const rt_model *m, uint64_t seed, const char *load_path) {
    char *arena = rt_arena_new(m);
    if (!arena)
        return NULL;
    if (rt_init_params(m, arena, seed) || (load_path && rt_ckpt_load(m, arena, load_path))) {
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

uint64_t rt_resolve_seed(const rt_model *m, const rt_opts *o) { return o->has_seed ? o->seed : m->seed; }

/* Loss and metrics over all of d, weighted by batch size.  Samples are
 * gathered before every call: kernels may reuse data slots as scratch. */
static int evaluate(const rt_model *m, char *arena, const rt_dataset *d, int64_t batch, double *loss, double *metrics) {
    if (!m->eval_step)
        return rt_error("model %s has no eval step", m->name);
    int64_t *order = rt_identity_order(d->n);
    *loss = 0;
    for (int j = 0; j < m->n_metrics; j++)
        metrics[j] = 0;
    for (int64_t start = 0; start < d->n; start += batch) {
        int64_t b = d->n - start < batch ? d->n - start : batch;
        rt_gather(arena, d, order + start, b);
        m->eval_step(arena, b);
        if (m->has_loss)
            *loss += (double)b * rt_scalar(arena, &m->loss);
        for (int j = 0; j < m->n_metrics; j++)
            metrics[j] += (double)b * rt_scalar(arena, &m->metrics[j]);
    }
    *loss /= (double)d->n;
    for (int j = 0; j < m->n_metrics; j++)
        metrics[j] /= (double)d->n;
    free(order);
    return 0;
}

/*
 * Hyper-parameters
 */

static int override_hyper(const rt_model *m, float *values, const char *name, double value, const char *option) {
    const rt_hyper *h = rt_find_hyper(m, name);
    if (!h)
        return rt_error("%s: model %s has no hyper-parameter \"%s\"", option, m->name, name);
    values[h - m->hypers] = (float)value;
    return 0;
}

/* The descriptor's values, overridden by --lr and --hyper. */
static int resolve_hypers(train_run *r) {
    const rt_model *m = r->m;
    r->hypers = rt_xcalloc((size_t)m->n_hypers + 1, sizeof *r->hypers);
    for (int i = 0; i < m->n_hypers; i++)
        r->hypers[i] = (float)m->hypers[i].value;
    if (r->o->has_lr && override_hyper(m, r->hypers, "lr", r->o->lr, "--lr"))
        return -1;
    for (int i = 0; i < r->o->n_hyper_sets; i++)
        if (override_hyper(m, r->hypers, r->o->hyper_sets[i].name, r->o->hyper_sets[i].value, "--hyper"))
            return -1;
    return 0;
}

static void set_hypers(const train_run *r) {
    for (int i = 0; i < r->m->n_hypers; i++)
        memcpy(r->arena + r->m->hypers[i].offset, &r->hypers[i], 4);
}

/*
 * Output
 */

static void print_summary(const train_run *r) {
    const rt_model *m = r->m;
    printf("train %s: %lld samples (%s)", m->name, (long long)r->data->n, r->data->path);
    if (r->val)
        printf(", validation %lld (%s)", (long long)r->val->n, r->val->path);
    printf(", batch %lld, %lld epochs, %s", (long long)r->batch, (long long)r->epochs,
           m->optimizer ? m->optimizer : "?");
    for (int i = 0; i < m->n_hypers; i++)
        printf(", %s %g", m->hypers[i].name, r->hypers[i]);
    printf(", seed %llu\n", (unsigned long long)r->seed);
}

static void print_values(const rt_model *m, const char *prefix, double loss, const double *metrics) {
    if (m->has_loss)
        printf("  %sloss %.6g", prefix, loss);
    for (int j = 0; j < m->n_metrics; j++)
        printf("  %s%s %.6g", prefix, m->metrics[j].name, metrics[j]);
}

static void print_epoch(const train_run *r, int64_t epoch, double seconds) {
    char rate[32];
    rt_format_count(seconds > 0 ? (double)r->data->n / seconds : 0, rate, sizeof rate);
    int width = snprintf(NULL, 0, "%lld", (long long)r->epochs);
    printf("epoch %*lld/%lld", width, (long long)epoch, (long long)r->epochs);
    print_values(r->m, "", r->loss, r->metrics);
    if (r->val)
        print_values(r->m, "val_", r->val_loss, r->val_metrics);
    if (seconds < 1)
        printf("  %.3gms  %s samples/s\n", seconds * 1e3, rate);
    else
        printf("  %.2fs  %s samples/s\n", seconds, rate);
}

/* The in-place progress line, only ever drawn on a terminal. */
static void draw_progress(const train_run *r, int64_t epoch, int64_t seen, double loss_sum) {
    printf("\repoch %lld/%lld  %lld/%lld samples  loss %.6g\033[K", (long long)epoch, (long long)r->epochs,
           (long long)seen, (long long)r->data->n, loss_sum / (double)seen);
    fflush(stdout);
}

/* w = [2.0001, -3.3999], nested for higher ranks; b = 4.2. */
static void print_nested(const rt_tensor *t, const char *data, int dim, int64_t *at) {
    if (dim == t->rank) {
        if (t->dtype == RT_I32) {
            int32_t v;
            memcpy(&v, data + 4 * (*at)++, 4);
            printf("%d", v);
        } else {
            float v;
            memcpy(&v, data + 4 * (*at)++, 4);
            printf("%.6g", v);
        }
        return;
    }
    printf("[");
    for (int64_t i = 0; i < t->dims[dim]; i++) {
        printf("%s", i ? ", " : "");
        print_nested(t, data, dim + 1, at);
    }
    printf("]");
}

static void print_small_params(const rt_model *m, const char *arena) {
    for (int i = 0; i < m->n_params; i++) {
        const rt_tensor *t = &m->params[i].t;
        if (!m->params[i].trainable || rt_elems(t, 1) > 16)
            continue;
        int64_t at = 0;
        printf("  %s = ", t->name);
        print_nested(t, arena + t->offset, 0, &at);
        printf("\n");
    }
}

/*
 * The loop
 */

static int is_logged(const train_run *r, int64_t epoch) {
    return epoch == 1 || epoch == r->epochs || epoch % r->log_every == 0;
}

/* One train_step on samples order[0..b); -1 on a non-finite loss. */
static int train_batch(train_run *r, const int64_t *order, int64_t b, int64_t epoch, int64_t step) {
    const rt_model *m = r->m;
    rt_gather(r->arena, r->data, order, b);
    set_hypers(r);
    m->train_step(r->arena, b);
    double loss = m->has_loss ? rt_scalar(r->arena, &m->loss) : 0;
    if (!isfinite(loss))
        return rt_error("loss is %g at epoch %lld, step %lld: training diverged (try a smaller --lr); stopping%s%s%s",
                        loss, (long long)epoch, (long long)step, r->o->save ? ", " : "", r->o->save ? r->o->save : "",
                        r->o->save ? " not written" : "");
    r->loss += (double)b * loss;
    for (int j = 0; j < m->n_metrics; j++)
        r->metrics[j] += (double)b * rt_scalar(r->arena, &m->metrics[j]);
    return 0;
}

static int run_epoch(train_run *r, int64_t epoch, rt_rng *shuffle, int64_t *order) {
    int64_t n = r->data->n;
    double start = rt_now();
    r->loss = 0;
    memset(r->metrics, 0, (size_t)r->m->n_metrics * sizeof *r->metrics);
    rt_rng_shuffle(shuffle, order, n);
    double last_draw = rt_now();
    int drawn = 0;
    for (int64_t at = 0, step = 1; at < n; at += r->batch, step++) {
        int64_t b = n - at < r->batch ? n - at : r->batch;
        if (train_batch(r, order + at, b, epoch, step)) {
            if (drawn)
                printf("\n");
            return -1;
        }
        if (r->tty && rt_now() - last_draw > 0.1) {
            draw_progress(r, epoch, at + b, r->loss);
            last_draw = rt_now();
            drawn = 1;
        }
    }
    double seconds = rt_now() - start;
    r->loss /= (double)n;
    for (int j = 0; j < r->m->n_metrics; j++)
        r->metrics[j] /= (double)n;
    if (drawn)
        printf("\r\033[K");
    if (r->quiet || !is_logged(r, epoch))
        return 0;
    if (r->val && evaluate(r->m, r->arena, r->val, r->m->max_batch, &r->val_loss, r->val_metrics))
        return -1;
    print_epoch(r, epoch, seconds);
    return 0;
}

static int train_loop(train_run *r) {
    rt_rng shuffle;
    rt_rng_seed(&shuffle, r->seed, RT_STREAM_SHUFFLE);
    int64_t *order = rt_identity_order(r->data->n);
    int rc = 0;
    for (int64_t epoch = 1; epoch <= r->epochs && rc == 0; epoch++)
        rc = run_epoch(r, epoch, &shuffle, order);
    free(order);
    return rc;
}

/* The loss of the final parameters on the whole training set. */
static int finish(train_run *r) {
    const rt_model *m = r->m;
    /* At max batch, like `eval`, so that both print the same numbers. */
    if (evaluate(m, r->arena, r->data, m->max_batch, &r->loss, r->metrics))
        return -1;
    if (!isfinite(r->loss))
        return rt_error("the final loss is %g: training diverged (try a smaller --lr)%s%s", r->loss,
                        r->o->save ? "; not saving " : "", r->o->save ? r->o->save : "");
    if (!r->quiet) {
        printf("final");
        print_values(m, "", r->loss, r->metrics);
        printf("  (on the training data)\n");
        print_small_params(m, r->arena);
    }
    if (r->o->save) {
        if (rt_ckpt_save(m, r->arena, r->o->save))
            return -1;
        if (!r->quiet)
            printf("saved %s\n", r->o->save);
    }
    return 0;
}

static int check_trainable(const rt_model *m, const rt_opts *o) {
    if (!m->train_step || !m->has_loss)
        return rt_error("model %s has no loss, so it cannot be trained", m->name);
    if (!o->data)
        return rt_error("no training data: pass --data FILE");
    return 0;
}

static int prepare(train_run *r) {
    const rt_model *m = r->m;
    const rt_opts *o = r->o;
    int64_t fallback = m->batch > 0 ? m->batch : m->max_batch < 32 ? m->max_batch : 32;
    if (check_trainable(m, o) || rt_resolve_batch(m, o->batch, fallback, &r->batch) || resolve_hypers(r))
        return -1;
    r->epochs = o->epochs ? o->epochs : m->epochs > 0 ? m->epochs : 1;
    r->log_every = o->log_every ? o->log_every : r->epochs / 10 > 1 ? r->epochs / 10 : 1;
    r->seed = rt_resolve_seed(m, o);
    r->quiet = o->quiet;
    r->tty = !o->quiet && isatty(STDOUT_FILENO);
    r->data = rt_data_load(m, o->data, RT_DATA_LABELLED);
    if (!r->data)
        return -1;
    if (o->val && !(r->val = rt_data_load(m, o->val, RT_DATA_LABELLED)))
        return -1;
    r->arena = rt_setup(m, r->seed, o->load);
    return r->arena ? 0 : -1;
}

int rt_cmd_train(const rt_model *m, const rt_opts *o) {
    train_run r;
    memset(&r, 0, sizeof r);
    r.m = m;
    r.o = o;
    r.metrics = rt_xcalloc((size_t)m->n_metrics + 1, sizeof *r.metrics);
    r.val_metrics = rt_xcalloc((size_t)m->n_metrics + 1, sizeof *r.metrics);
    int rc = prepare(&r);
    if (rc == 0 && !r.quiet)
        print_summary(&r);
    if (rc == 0)
        rc = train_loop(&r);
    if (rc == 0)
        rc = finish(&r);
    rt_arena_free(r.arena);
    rt_data_free(r.data);
    rt_data_free(r.val);
    free(r.hypers);
    free(r.metrics);
    free(r.val_metrics);
    return rc ? RT_EXIT_FAIL : 0;
}

/*
 * eval
 */

int rt_cmd_eval(const rt_model *m, const rt_opts *o) {
    if (!o->load || !o->data) {
        fprintf(stderr, "error: eval needs --load CKPT and --data FILE (see '%s eval --help')\n", o->prog);
        return RT_EXIT_USAGE;
    }
    int64_t batch;
    if (rt_resolve_batch(m, o->batch, m->max_batch, &batch))
        return RT_EXIT_FAIL;
    rt_dataset *d = rt_data_load(m, o->data, RT_DATA_LABELLED);
    char *arena = d ? rt_setup(m, m->seed, o->load) : NULL;
    double loss, *metrics = rt_xcalloc((size_t)m->n_metrics + 1, sizeof *metrics);
    int rc = arena ? evaluate(m, arena, d, batch, &loss, metrics) : -1;
    if (rc == 0) {
        if (m->has_loss)
            printf("loss %.6g\n", loss);
        for (int j = 0; j < m->n_metrics; j++)
            printf("%s %.6g\n", m->metrics[j].name, metrics[j]);
    }
    free(metrics);
    rt_arena_free(arena);
    rt_data_free(d);
    return rc ? RT_EXIT_FAIL : 0;
}
