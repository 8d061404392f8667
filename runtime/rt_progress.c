/*
 * rt_progress.c - what a training run shows as it goes: the summary line,
 * each epoch's progress and values, the final loss, and the --log CSV.
 *
 * On a terminal an epoch's progress is a Keras-style bar redrawn in place
 * (at most every RT_DRAW_SECONDS, so that drawing costs nothing next to
 * the steps), which ends as that epoch's line.  Anywhere else there are no
 * control codes at all: a logged epoch prints one line when done, and an
 * epoch longer than RT_QUIET_SECONDS gets an interim line that often, so
 * a log file shows a slow run is alive.  --log FILE gets every epoch as a
 * CSV row, whatever is shown, with the values of the model's own
 * hyper-parameters as the last columns.
 */
#include "rt_internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

/* Off a terminal, a progress line at most this often within an epoch. */
#define RT_QUIET_SECONDS 30.0
/* On a terminal, the bar is redrawn at most this often. */
#define RT_DRAW_SECONDS 0.1
/* --log is flushed at most this often (and at the end) */
#define RT_LOG_FLUSH_SECONDS 0.1
#define RT_BAR_WIDTH 30

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

static int is_runtime_hyper(const char *name) { return strcmp(name, "lr") == 0 || rt_hyper_is_runtime(name); }

void rt_progress_summary(const rt_train_run *r) {
    const rt_model *m = r->m;
    printf("train %s: %lld samples (%s)", m->name, (long long)r->data->n, r->data->path);
    if (r->val)
        printf(", validation %lld (%s)", (long long)r->val->n, r->val->path);
    printf(", batch %lld", (long long)r->batch);
    if (rt_par) /* the global batch */
        printf(" (%lld per rank x %d ranks)", (long long)(r->batch / rt_par->ranks), rt_par->ranks);
    printf(", %lld epochs, %s", (long long)r->epochs, m->optimizer ? m->optimizer : "?");
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
    if (r->whole)
        printf("text: %lld characters, %d distinct, random windows: %lld steps of %lld windows of %lld per epoch\n",
               (long long)r->text_chars, r->vocab.n, (long long)r->steps_per_epoch, (long long)r->batch,
               (long long)m->inputs[0].dims[1]);
    else if (r->text)
        printf("text: %lld characters, %d distinct, %lld streams of %lld, %lld steps of %lld per epoch\n",
               (long long)r->text_chars, r->vocab.n, (long long)r->batch, (long long)(r->text_chars / r->batch),
               (long long)r->steps_per_epoch, (long long)m->inputs[0].dims[1]);
    else if (rt_ratings_applies(m, r->o->data))
        rt_ratings_summary();
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
static void print_epoch(const rt_train_run *r, int64_t epoch, double seconds) {
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
static void draw_bar(const rt_train_run *r, int64_t epoch, int logged, int64_t done, double elapsed, int final) {
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
static void print_interim(const rt_train_run *r, int64_t epoch, int64_t done, double elapsed) {
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
 * What the training loop calls
 */

/* Before an epoch's first step; `start` is when the epoch began. */
void rt_progress_epoch_begin(rt_train_run *r, int64_t epoch, int logged, double start) {
    r->epoch_start = start;
    r->last_shown = start;
    r->drawn = 0;
    if (r->tty && logged) {
        printf("Epoch %lld/%lld\n", (long long)epoch, (long long)r->epochs);
        fflush(stdout);
    }
}

/* After step `done` of the epoch; `more`: steps follow in this epoch. */
void rt_progress_step(rt_train_run *r, int64_t epoch, int logged, int64_t done, int more) {
    double now = rt_now();
    if (r->tty && (now - r->last_shown > RT_DRAW_SECONDS || done == 1)) {
        draw_bar(r, epoch, logged, done, now - r->epoch_start, 0);
        r->last_shown = now;
        r->drawn = 1;
    } else if (!r->tty && !r->quiet && now - r->last_shown > RT_QUIET_SECONDS && more) {
        print_interim(r, epoch, done, now - r->epoch_start);
        r->last_shown = now;
    }
}

/* A step failed (its error is out): end the line the bar left open. */
void rt_progress_abort(const rt_train_run *r) {
    if (r->drawn)
        printf("\n");
}

/* The epoch is done and its values are in r. */
void rt_progress_epoch_end(const rt_train_run *r, int64_t epoch, int logged, double seconds) {
    if (r->tty)
        draw_bar(r, epoch, logged, r->steps_per_epoch, seconds, 1);
    else if (!r->quiet && logged)
        print_epoch(r, epoch, seconds);
}

/* The final values (in r->loss and r->metrics) and the small parameters. */
void rt_progress_final(const rt_train_run *r) {
    const rt_model *m = r->m;
    printf("final");
    printf("  loss %.6g", r->loss);
    for (int j = 0; j < m->n_metrics; j++)
        printf("  %s %.6g", m->metrics[j].name, r->metrics[j]);
    printf("  (on the training data)\n");
    print_small_params(m, r->arena);
}

/*
 * The metrics log: one CSV row per epoch
 */

/* Whether a model's hyper would repeat a column the log has already. */
static int log_has_column(const rt_train_run *r, const char *name) {
    static const char *const fixed[] = {"epoch", "step", "loss", "val_loss", "lr", "seconds"};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if (strcmp(fixed[i], name) == 0)
            return 1;
    for (int j = 0; j < r->m->n_metrics; j++) {
        const char *metric = r->m->metrics[j].name;
        if (strcmp(metric, name) == 0 || (r->val && strncmp(name, "val_", 4) == 0 && strcmp(metric, name + 4) == 0))
            return 1;
    }
    return 0;
}

/* A resumed run adds its rows to a log that has the run's first ones. */
static FILE *open_log(const rt_train_run *r, const char *path, int *appending) {
    struct stat st;
    *appending = r->resume && stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0;
    FILE *f = fopen(path, *appending ? "a" : "w");
    if (!f)
        rt_error("cannot open %s for writing: %s", path, strerror(errno));
    return f;
}

/* The header: epoch, step, loss, the metrics, their val_ twins, lr,
 * seconds, then one column per hyper-parameter of the model's own (lr has
 * its column already), constant down the file, so that the logs of a
 * sweep's runs can be concatenated and told apart; a hyper named like
 * another column is written hyper.NAME. */
int rt_log_open(rt_train_run *r) {
    const rt_model *m = r->m;
    int appending;
    if (!(r->log = open_log(r, r->o->log, &appending)))
        return -1;
    if (appending)
        return 0;
    fprintf(r->log, "epoch,step,loss");
    for (int j = 0; j < m->n_metrics; j++)
        fprintf(r->log, ",%s", m->metrics[j].name);
    if (r->val) {
        fprintf(r->log, ",val_loss");
        for (int j = 0; j < m->n_metrics; j++)
            fprintf(r->log, ",val_%s", m->metrics[j].name);
    }
    fprintf(r->log, ",lr,seconds");
    for (int i = 0; i < m->n_hypers; i++)
        if (!is_runtime_hyper(m->hypers[i].name))
            fprintf(r->log, ",%s%s", log_has_column(r, m->hypers[i].name) ? "hyper." : "", m->hypers[i].name);
    fprintf(r->log, "\n");
    return 0;
}

int rt_log_write(rt_train_run *r, int64_t epoch) {
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
    fprintf(f, ",%.6g", rt_now() - r->start);
    for (int i = 0; i < m->n_hypers; i++)
        if (!is_runtime_hyper(m->hypers[i].name)) {
            char value[32];
            rt_format_f32(r->hypers[i], value, sizeof value);
            fprintf(f, ",%s", value);
        }
    fprintf(f, "\n");
    /* Flushed for whoever follows the file, but not at every epoch of a
     * model whose epoch is a step of a few microseconds (W1: the write
     * took a third of the time); closing flushes the rest. */
    double now = rt_now();
    if (now - r->log_flushed >= RT_LOG_FLUSH_SECONDS || epoch == r->epochs) {
        r->log_flushed = now;
        if (fflush(f) != 0)
            return rt_error("cannot write %s: %s", r->o->log, strerror(errno));
    }
    if (ferror(f))
        return rt_error("cannot write %s: %s", r->o->log, strerror(errno));
    return 0;
}

static int close_log(FILE *f, const char *path, int rc) {
    if (!f)
        return rc;
    int failed = ferror(f);
    failed |= fclose(f) != 0;
    if (failed && rc == 0)
        return rt_error("cannot write %s: %s", path, strerror(errno));
    return rc;
}

int rt_log_close(rt_train_run *r, int rc) {
    rc = close_log(r->log, r->o->log, rc);
    return close_log(r->step_log, r->o->log_steps, rc);
}

int rt_step_log_open(rt_train_run *r) {
    int appending;
    if (!(r->step_log = open_log(r, r->o->log_steps, &appending)))
        return -1;
    if (!appending)
        fprintf(r->step_log, "step,epoch,loss,lr,seconds\n");
    return 0;
}

int rt_step_log_write(rt_train_run *r, int64_t epoch, double loss) {
    fprintf(r->step_log, "%lld,%lld,%.9g,%.9g,%.6f\n", (long long)r->step, (long long)epoch, loss, r->lr,
            rt_now() - r->start);
    if (ferror(r->step_log))
        return rt_error("cannot write %s: %s", r->o->log_steps, strerror(errno));
    return 0;
}
