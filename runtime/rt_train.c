/*
 * rt_train.c - the training loop, and the set-up the commands share.
 *
 * An epoch shuffles the sample indices with the seed's shuffle stream
 * (unless --no-shuffle), walks them in batches of `batch` (the last one may
 * be short: kernels take the actual batch size), gathers each batch into
 * the arena, sets the hyper-parameters ("lr" from the schedule, "training"
 * 1, "step" the run's step count) and calls train_step.  The epoch's loss and metrics are the
 * batch values weighted by batch size, so a short last batch counts for
 * what it holds.  After every epoch the validation set (--val, or the
 * last --val-split of the data) is evaluated.  A non-finite loss stops
 * training at once, before anything is saved.
 *
 * Output: a summary line, then one line per logged epoch.  On a terminal
 * the epoch's progress is a Keras-style bar redrawn in place, which ends
 * as that line; anywhere else there are no control codes at all, and an
 * epoch longer than RT_QUIET_SECONDS gets an interim line that often.
 * --log FILE writes every epoch as a CSV row.
 */
#include "rt_internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

/* Off a terminal, a progress line at most this often within an epoch. */
#define RT_QUIET_SECONDS 30.0
/* On a terminal, the bar is redrawn at most this often. */
#define RT_DRAW_SECONDS 0.1
#define RT_BAR_WIDTH 30

/* Everything one training run needs. */
typedef struct train_run {
    const rt_model *m;
    const rt_opts *o;
    char *arena;
    rt_dataset *data, *val;
    int64_t batch, epochs, log_every;
    uint64_t seed;
    float *hypers; /* one value per rt_hyper */
    int lr_index;  /* of hyper "lr", or -1 */
    double base_lr, lr;
    rt_schedule sched;
    int64_t step, steps_per_epoch, total_steps; /* step: train_steps done */
    int tty, quiet;
    FILE *log;
    double start; /* when the first epoch began */
    /* The current epoch: sums weighted by batch size over `seen` samples,
     * then the means. */
    int64_t seen;
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

static int override_hyper(const rt_model *m, float *values, const char *name, double value, const char *option,
                          int runtime_set) {
    const rt_hyper *h = rt_find_hyper(m, name);
    if (!h)
        return rt_error("%s: model %s has no hyper-parameter \"%s\"", option, m->name, name);
    if (!runtime_set && (strcmp(name, "training") == 0 || strcmp(name, "step") == 0))
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

/*
 * Formatting
 */

/* "250us", "850ms", "12s", "3:05", "1:02:03" */
static void format_duration(double seconds, char *buf, size_t size) {
    if (seconds < 1e-3) {
        snprintf(buf, size, "%.0fus", seconds * 1e6);
        return;
    }
    if (seconds < 1) {
        snprintf(buf, size, "%.0fms", seconds * 1e3);
        return;
    }
    long s = (long)(seconds + 0.5);
    if (s < 60)
        snprintf(buf, size, "%lds", s);
    else if (s < 3600)
        snprintf(buf, size, "%ld:%02ld", s / 60, s % 60);
    else
        snprintf(buf, size, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
}

static int is_runtime_hyper(const char *name) {
    return strcmp(name, "lr") == 0 || strcmp(name, "training") == 0 || strcmp(name, "step") == 0;
}

static void print_summary(const train_run *r) {
    const rt_model *m = r->m;
    printf("train %s: %lld samples (%s)", m->name, (long long)r->data->n, r->data->path);
    if (r->val)
        printf(", validation %lld (%s)", (long long)r->val->n, r->val->path);
    printf(", batch %lld, %lld epochs, %s", (long long)r->batch, (long long)r->epochs,
           m->optimizer ? m->optimizer : "?");
    if (r->lr_index >= 0)
        printf(", lr %g", r->base_lr);
    if (m->schedule) {
        char sched[256];
        rt_schedule_describe(m, sched, sizeof sched);
        printf(", schedule %s", sched);
    }
    for (int i = 0; i < m->n_hypers; i++)
        if (!is_runtime_hyper(m->hypers[i].name))
            printf(", %s %g", m->hypers[i].name, r->hypers[i]);
    printf(", seed %llu\n", (unsigned long long)r->seed);
}

/* "  loss 0.1  mae 0.2" or, Keras style, " - loss: 0.1 - mae: 0.2" */
static void add_values(rt_buf *b, const rt_model *m, int keras, const char *prefix, double loss,
                       const double *metrics) {
    for (int j = m->has_loss ? -1 : 0; j < m->n_metrics; j++) {
        const char *name = j < 0 ? "loss" : m->metrics[j].name;
        double v = j < 0 ? loss : metrics[j];
        /* Keras's fixed 4 decimals keep a redrawn line from jittering. */
        if (!keras)
            rt_buf_printf(b, "  %s%s %.6g", prefix, name, v);
        else if (fabs(v) >= 1e-3 && fabs(v) < 1e5)
            rt_buf_printf(b, " - %s%s: %.4f", prefix, name, v);
        else
            rt_buf_printf(b, " - %s%s: %.4g", prefix, name, v);
    }
}

/* The logged line of an epoch, off a terminal. */
static void print_epoch(const train_run *r, int64_t epoch, double seconds) {
    char rate[32];
    rt_format_count(seconds > 0 ? (double)r->data->n / seconds : 0, rate, sizeof rate);
    int width = snprintf(NULL, 0, "%lld", (long long)r->epochs);
    rt_buf b = {0};
    rt_buf_printf(&b, "epoch %*lld/%lld", width, (long long)epoch, (long long)r->epochs);
    add_values(&b, r->m, 0, "", r->loss, r->metrics);
    if (r->val)
        add_values(&b, r->m, 0, "val_", r->val_loss, r->val_metrics);
    if (r->lr_index >= 0)
        rt_buf_printf(&b, "  lr %.6g", r->lr);
    if (seconds < 1)
        rt_buf_printf(&b, "  %.3gms  %s samples/s\n", seconds * 1e3, rate);
    else
        rt_buf_printf(&b, "  %.2fs  %s samples/s\n", seconds, rate);
    fputs(b.data, stdout);
    free(b.data);
}

static int terminal_width(void) {
    struct winsize ws;
    if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col >= 20)
        return ws.ws_col;
    return 80;
}

/* The Keras-style line on a terminal:
 *   312/938 [=========>....................] - ETA: 12s - loss: 0.51 - lr: 0.001 - 21.0k samples/s
 * and when the epoch is done
 *   938/938 [==============================] - 4s 4ms/step - loss: 0.4 - val_loss: 0.45 - lr: 0.001 - ...
 * An epoch that is not logged draws "Epoch e/E " in front and is erased
 * when done. */
static void draw_bar(const train_run *r, int64_t epoch, int logged, int64_t done, double elapsed, int final) {
    if (final && !logged) {
        printf("\r\033[K");
        fflush(stdout);
        return;
    }
    int64_t steps = r->steps_per_epoch;
    double mean = r->seen ? 1.0 / (double)r->seen : 0;
    rt_buf b = {0};
    if (!logged)
        rt_buf_printf(&b, "Epoch %lld/%lld ", (long long)epoch, (long long)r->epochs);
    int digits = snprintf(NULL, 0, "%lld", (long long)steps);
    rt_buf_printf(&b, "%*lld/%lld [", digits, (long long)done, (long long)steps);
    int filled = (int)(done * RT_BAR_WIDTH / (steps > 0 ? steps : 1));
    for (int i = 0; i < RT_BAR_WIDTH; i++)
        rt_buf_add(&b, i < filled - 1 || (i == filled - 1 && done == steps) ? "=" : i == filled - 1 ? ">" : ".", 1);
    char t[32], per_step[32];
    if (final) {
        format_duration(elapsed, t, sizeof t);
        format_duration(done ? elapsed / (double)done : 0, per_step, sizeof per_step);
        rt_buf_printf(&b, "] - %s %s/step", t, per_step);
    } else {
        format_duration(done ? elapsed / (double)done * (double)(steps - done) : 0, t, sizeof t);
        rt_buf_printf(&b, "] - ETA: %s", t);
    }
    double *metrics = rt_xcalloc((size_t)r->m->n_metrics + 1, sizeof *metrics);
    for (int j = 0; j < r->m->n_metrics; j++)
        metrics[j] = final ? r->metrics[j] : r->metrics[j] * mean;
    add_values(&b, r->m, 1, "", final ? r->loss : r->loss * mean, metrics);
    free(metrics);
    if (final && r->val)
        add_values(&b, r->m, 1, "val_", r->val_loss, r->val_metrics);
    if (r->lr_index >= 0)
        rt_buf_printf(&b, " - lr: %.4g", r->lr);
    char rate[32];
    rt_format_count(elapsed > 0 ? (double)r->seen / elapsed : 0, rate, sizeof rate);
    rt_buf_printf(&b, " - %s samples/s", rate);
    /* A line redrawn in place must not wrap; the final one may. */
    int width = terminal_width() - 1;
    if (!final && b.len > (size_t)width)
        b.data[width] = '\0';
    printf("\r%s\033[K%s", b.data, final ? "\n" : "");
    fflush(stdout);
    free(b.data);
}

/* Off a terminal, in a long epoch: an interim line. */
static void print_interim(const train_run *r, int64_t epoch, int64_t done, double elapsed) {
    char eta[32];
    format_duration(elapsed / (double)done * (double)(r->steps_per_epoch - done), eta, sizeof eta);
    rt_buf b = {0};
    rt_buf_printf(&b, "  epoch %lld/%lld  step %lld/%lld", (long long)epoch, (long long)r->epochs, (long long)done,
                  (long long)r->steps_per_epoch);
    double mean = 1.0 / (double)r->seen;
    if (r->m->has_loss)
        rt_buf_printf(&b, "  loss %.6g", r->loss * mean);
    for (int j = 0; j < r->m->n_metrics; j++)
        rt_buf_printf(&b, "  %s %.6g", r->m->metrics[j].name, r->metrics[j] * mean);
    if (r->lr_index >= 0)
        rt_buf_printf(&b, "  lr %.6g", r->lr);
    rt_buf_printf(&b, "  ETA %s\n", eta);
    fputs(b.data, stdout);
    fflush(stdout);
    free(b.data);
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
 * The metrics log: one CSV row per epoch
 */

static int open_log(train_run *r) {
    const rt_model *m = r->m;
    r->log = fopen(r->o->log, "w");
    if (!r->log)
        return rt_error("cannot open %s for writing: %s", r->o->log, strerror(errno));
    fprintf(r->log, "epoch,step,loss");
    for (int j = 0; j < m->n_metrics; j++)
        fprintf(r->log, ",%s", m->metrics[j].name);
    if (r->val) {
        fprintf(r->log, ",val_loss");
        for (int j = 0; j < m->n_metrics; j++)
            fprintf(r->log, ",val_%s", m->metrics[j].name);
    }
    fprintf(r->log, ",lr,seconds\n");
    return 0;
}

static int write_log(train_run *r, int64_t epoch) {
    const rt_model *m = r->m;
    FILE *f = r->log;
    fprintf(f, "%lld,%lld,%.9g", (long long)epoch, (long long)r->step, r->loss);
    for (int j = 0; j < m->n_metrics; j++)
        fprintf(f, ",%.9g", r->metrics[j]);
    if (r->val) {
        fprintf(f, ",%.9g", r->val_loss);
        for (int j = 0; j < m->n_metrics; j++)
            fprintf(f, ",%.9g", r->val_metrics[j]);
    }
    if (r->lr_index >= 0)
        fprintf(f, ",%.9g", r->lr);
    else
        fprintf(f, ",");
    fprintf(f, ",%.6g\n", rt_now() - r->start);
    if (fflush(f) != 0 || ferror(f))
        return rt_error("cannot write %s: %s", r->o->log, strerror(errno));
    return 0;
}

/*
 * The loop
 */

static int is_logged(const train_run *r, int64_t epoch) {
    return epoch == 1 || epoch == r->epochs || epoch % r->log_every == 0;
}

/* One train_step on samples order[0..b); -1 on a non-finite loss. */
static int train_batch(train_run *r, const int64_t *order, int64_t b, int64_t epoch, int64_t step_in_epoch) {
    const rt_model *m = r->m;
    rt_gather(r->arena, r->data, order, b);
    if (r->lr_index >= 0) {
        r->lr = rt_schedule_lr(&r->sched, r->base_lr, r->step, r->steps_per_epoch, r->total_steps);
        r->hypers[r->lr_index] = (float)r->lr;
    }
    rt_write_hypers(m, r->arena, r->hypers, 1, (double)r->step);
    m->train_step(r->arena, b);
    r->step++;
    double loss = m->has_loss ? rt_scalar(r->arena, &m->loss) : 0;
    if (!isfinite(loss))
        return rt_error("loss is %g at epoch %lld, step %lld: training diverged (try a smaller --lr); stopping%s%s%s",
                        loss, (long long)epoch, (long long)step_in_epoch, r->o->save ? ", " : "",
                        r->o->save ? r->o->save : "", r->o->save ? " not written" : "");
    r->seen += b;
    r->loss += (double)b * loss;
    for (int j = 0; j < m->n_metrics; j++)
        r->metrics[j] += (double)b * rt_scalar(r->arena, &m->metrics[j]);
    return 0;
}

/* Runs the steps of one epoch, showing progress; 0 or -1. */
static int epoch_steps(train_run *r, int64_t epoch, int logged, const int64_t *order, double start) {
    int64_t n = r->data->n;
    double last_shown = start;
    int drawn = 0;
    for (int64_t at = 0, step = 1; at < n; at += r->batch, step++) {
        int64_t b = n - at < r->batch ? n - at : r->batch;
        if (train_batch(r, order + at, b, epoch, step)) {
            if (drawn)
                printf("\n");
            return -1;
        }
        double now = rt_now();
        if (r->tty && (now - last_shown > RT_DRAW_SECONDS || step == 1)) {
            draw_bar(r, epoch, logged, step, now - start, 0);
            last_shown = now;
            drawn = 1;
        } else if (!r->tty && !r->quiet && now - last_shown > RT_QUIET_SECONDS && at + b < n) {
            print_interim(r, epoch, step, now - start);
            last_shown = now;
        }
    }
    return 0;
}

static int run_epoch(train_run *r, int64_t epoch, rt_rng *shuffle, int64_t *order) {
    int64_t n = r->data->n;
    int logged = is_logged(r, epoch);
    double start = rt_now();
    r->seen = 0;
    r->loss = 0;
    memset(r->metrics, 0, (size_t)r->m->n_metrics * sizeof *r->metrics);
    if (!r->o->no_shuffle)
        rt_rng_shuffle(shuffle, order, n);
    if (r->tty && logged) {
        printf("Epoch %lld/%lld\n", (long long)epoch, (long long)r->epochs);
        fflush(stdout);
    }
    if (epoch_steps(r, epoch, logged, order, start))
        return -1;
    double seconds = rt_now() - start;
    r->loss /= (double)n;
    for (int j = 0; j < r->m->n_metrics; j++)
        r->metrics[j] /= (double)n;
    if (r->val && rt_evaluate(r->m, r->arena, r->val, r->m->max_batch, r->hypers, (double)r->step, &r->val_loss,
                              r->val_metrics, NULL))
        return -1;
    if (r->log && write_log(r, epoch))
        return -1;
    if (r->tty)
        draw_bar(r, epoch, logged, r->steps_per_epoch, seconds, 1);
    else if (!r->quiet && logged)
        print_epoch(r, epoch, seconds);
    return 0;
}

static int train_loop(train_run *r) {
    rt_rng shuffle;
    rt_rng_seed(&shuffle, r->seed, RT_STREAM_SHUFFLE);
    int64_t *order = rt_identity_order(r->data->n);
    int rc = 0;
    r->start = rt_now();
    for (int64_t epoch = 1; epoch <= r->epochs && rc == 0; epoch++)
        rc = run_epoch(r, epoch, &shuffle, order);
    free(order);
    return rc;
}

/* The loss of the final parameters on the whole training set. */
static int finish(train_run *r) {
    const rt_model *m = r->m;
    /* At max batch, like `eval`, so that both print the same numbers. */
    if (rt_evaluate(m, r->arena, r->data, m->max_batch, r->hypers, (double)r->step, &r->loss, r->metrics, NULL))
        return -1;
    if (!isfinite(r->loss))
        return rt_error("the final loss is %g: training diverged (try a smaller --lr)%s%s", r->loss,
                        r->o->save ? "; not saving " : "", r->o->save ? r->o->save : "");
    if (!r->quiet) {
        printf("final");
        printf("  loss %.6g", r->loss);
        for (int j = 0; j < m->n_metrics; j++)
            printf("  %s %.6g", m->metrics[j].name, r->metrics[j]);
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

/* The learning rate: the base value, and what the schedule needs. */
static int prepare_lr(train_run *r) {
    const rt_model *m = r->m;
    if (rt_schedule_resolve(m, &r->sched))
        return -1;
    r->lr_index = rt_hyper_index(m, "lr");
    if (r->lr_index < 0 && m->schedule)
        return rt_error("model %s has a learning-rate schedule but no hyper-parameter \"lr\"", m->name);
    if (r->lr_index >= 0) {
        /* In double, as given: the slot gets each step's value in f32. */
        r->base_lr = m->hypers[r->lr_index].value;
        if (r->o->has_lr)
            r->base_lr = r->o->lr;
        for (int i = 0; i < r->o->n_hyper_sets; i++)
            if (strcmp(r->o->hyper_sets[i].name, "lr") == 0)
                r->base_lr = r->o->hyper_sets[i].value;
        r->lr = r->base_lr;
    }
    r->steps_per_epoch = (r->data->n + r->batch - 1) / r->batch;
    r->total_steps = r->steps_per_epoch * r->epochs;
    return 0;
}

static int load_data(train_run *r) {
    const rt_opts *o = r->o;
    r->data = rt_data_load(r->m, o->data, RT_DATA_LABELLED);
    if (!r->data)
        return -1;
    if (o->val)
        r->val = rt_data_load(r->m, o->val, RT_DATA_LABELLED);
    else if (o->has_val_split)
        r->val = rt_data_split(r->data, o->val_split);
    return (o->val || o->has_val_split) && !r->val ? -1 : 0;
}

static int prepare(train_run *r) {
    const rt_model *m = r->m;
    const rt_opts *o = r->o;
    int64_t fallback = m->batch > 0 ? m->batch : m->max_batch < 32 ? m->max_batch : 32;
    if (check_trainable(m, o) || rt_resolve_batch(m, o->batch, fallback, &r->batch))
        return -1;
    if (!(r->hypers = rt_resolve_hypers(m, o, 0)))
        return -1;
    r->epochs = o->epochs ? o->epochs : m->epochs > 0 ? m->epochs : 1;
    r->log_every = o->log_every ? o->log_every : r->epochs / 10 > 1 ? r->epochs / 10 : 1;
    r->seed = rt_resolve_seed(m, o);
    r->quiet = o->quiet;
    r->tty = !o->quiet && isatty(STDOUT_FILENO);
    if (load_data(r) || prepare_lr(r))
        return -1;
    if (o->log && open_log(r))
        return -1;
    r->arena = rt_setup(m, r->seed, o->load);
    return r->arena ? 0 : -1;
}

static int close_log(train_run *r, int rc) {
    if (!r->log)
        return rc;
    int failed = ferror(r->log);
    failed |= fclose(r->log) != 0;
    if (failed && rc == 0)
        return rt_error("cannot write %s: %s", r->o->log, strerror(errno));
    return rc;
}

int rt_cmd_train(const rt_model *m, const rt_opts *o) {
    if (o->val && o->has_val_split) {
        fprintf(stderr, "error: --val and --val-split both give validation data: pass one (see '%s train --help')\n",
                o->prog);
        return RT_EXIT_USAGE;
    }
    train_run r;
    memset(&r, 0, sizeof r);
    r.m = m;
    r.o = o;
    r.lr_index = -1;
    r.metrics = rt_xcalloc((size_t)m->n_metrics + 1, sizeof *r.metrics);
    r.val_metrics = rt_xcalloc((size_t)m->n_metrics + 1, sizeof *r.metrics);
    int rc = prepare(&r);
    if (rc == 0 && !r.quiet)
        print_summary(&r);
    if (rc == 0)
        rc = train_loop(&r);
    if (rc == 0)
        rc = finish(&r);
    rc = close_log(&r, rc);
    rt_arena_free(r.arena);
    rt_data_free(r.data);
    rt_data_free(r.val);
    free(r.hypers);
    free(r.metrics);
    free(r.val_metrics);
    return rc ? RT_EXIT_FAIL : 0;
}
