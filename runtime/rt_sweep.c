/*
 * rt_sweep.c - `train --sweep NAME=X,Y,...`: one training run per
 * combination of hyper-parameter values, and a table that ranks them.
 *
 * Each --sweep is an axis; the runs are every combination, the last axis
 * changing fastest (as itertools.product counts).  A run is rt_train with
 * the options given plus --hyper NAME=X for each axis, so it starts from
 * the same initial weights (the same seed, or the same --load) and walks
 * the data in the same order as every other run; only the swept values
 * differ.  Run "lam=1e-4,lr=3e-3" (the values as written) saves
 * DIR/lam=1e-4,lr=3e-3/model.ckpt and its --log CSV log.csv beside it,
 * which is why --save, --log and --log-steps do not go with --sweep.
 *
 * The runs are ranked by one of their final values (--select: loss,
 * val_loss, a metric or val_METRIC; val_loss by default).  Which way is
 * better comes from the name -- loss- and error-like lower, accuracy-like
 * higher -- or from a `min:` or `max:` in front of it.  The table goes to
 * stdout and to DIR/summary.csv, best first; a run that failed (diverged)
 * is listed last, and the sweep goes on without it.  A run whose set-up
 * fails (a missing file) stops the sweep, since every other run would
 * fail the same way.
 */
#include "rt_internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* One --sweep: a hyper and its values, each also as written. */
typedef struct axis {
    char name[64];
    int n;
    char **words;
    double *values;
} axis;

/* The value runs are ranked by: loss, val_loss, metrics[j] or
 * val_metrics[j]. */
typedef struct selection {
    const char *name;
    int val, metric; /* metric -1: the loss */
    int higher;      /* higher is better */
} selection;

typedef struct run {
    int index;   /* in the order they ran */
    int *choice; /* the value of each axis */
    char *name, *dir;
    int ok;
    rt_train_result res;
} run;

typedef struct sweep {
    const rt_model *m;
    const rt_opts *o;
    const char *root;
    int n_axes;
    axis axes[RT_MAX_SWEEPS];
    selection sel;
    int n_runs;
    run *runs;
} sweep;

/*
 * Reading the options
 */

static char *copy_range(const char *from, const char *to) {
    char *s = rt_xmalloc((size_t)(to - from) + 1);
    memcpy(s, from, (size_t)(to - from));
    s[to - from] = '\0';
    return s;
}

/* "lam=1e-5,1e-4" (rt_cli.c checked the syntax) into an axis. */
static void split_axis(const char *text, axis *a) {
    const char *eq = strchr(text, '=');
    snprintf(a->name, sizeof a->name, "%.*s", (int)(eq - text), text);
    a->n = 1;
    for (const char *p = eq + 1; *p; p++)
        a->n += *p == ',';
    a->words = rt_xcalloc((size_t)a->n, sizeof *a->words);
    a->values = rt_xcalloc((size_t)a->n, sizeof *a->values);
    const char *p = eq + 1;
    for (int i = 0; i < a->n; i++) {
        const char *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        a->words[i] = copy_range(p, end);
        a->values[i] = strtod(a->words[i], NULL);
        p = *end ? end + 1 : end;
    }
}

static int given_elsewhere(const rt_opts *o, const char *name) {
    for (int i = 0; i < o->n_hyper_sets; i++)
        if (strcmp(o->hyper_sets[i].name, name) == 0)
            return 1;
    return o->has_lr && strcmp(name, "lr") == 0;
}

/* Each axis names a hyper of the model that nothing else sets, once, with
 * distinct values. */
static int check_axis(const sweep *s, int k) {
    const axis *a = &s->axes[k];
    if (!rt_find_hyper(s->m, a->name)) {
        char names[512];
        rt_list_hypers(s->m, 0, names, sizeof names);
        return rt_error("--sweep: no hyper-parameter '%s'; the model has: %s", a->name, names);
    }
    if (rt_hyper_is_runtime(a->name))
        return rt_error("--sweep: \"%s\" is set by the runtime before every step", a->name);
    if (given_elsewhere(s->o, a->name))
        return rt_error("--sweep %s: it is also set by %s; pass one", a->name,
                        strcmp(a->name, "lr") == 0 && s->o->has_lr ? "--lr" : "--hyper");
    for (int j = 0; j < k; j++)
        if (strcmp(s->axes[j].name, a->name) == 0)
            return rt_error("--sweep %s is given twice: list all its values in one --sweep %s=X,Y,...", a->name,
                            a->name);
    for (int i = 0; i < a->n; i++)
        for (int j = 0; j < i; j++)
            if (a->values[i] == a->values[j])
                return rt_error("--sweep %s: the value %s is there twice (as %s)", a->name, a->words[i],
                                a->words[j]);
    return 0;
}

/* Loss- and error-like names are better lower, accuracy-like higher;
 * -1 if the name does not say. */
static int higher_is_better(const char *name) {
    static const char *const lower[] = {"loss", "err", "mse", "mae", "rmse", "nll", "perplexity", "ppl", "bpc"};
    static const char *const higher[] = {"acc", "auc", "f1", "precision", "recall", "r2"};
    for (size_t i = 0; i < sizeof lower / sizeof lower[0]; i++)
        if (strstr(name, lower[i]))
            return 0;
    for (size_t i = 0; i < sizeof higher / sizeof higher[0]; i++)
        if (strstr(name, higher[i]))
            return 1;
    return -1;
}

/* --select [min:|max:]NAME: which final value, and which way is better. */
static int read_selection(sweep *s) {
    const rt_model *m = s->m;
    selection *sel = &s->sel;
    const char *text = s->o->select ? s->o->select : "val_loss";
    int direction = -1;
    if (strncmp(text, "min:", 4) == 0 || strncmp(text, "max:", 4) == 0) {
        direction = text[1] == 'a';
        text += 4;
    }
    sel->name = text;
    sel->val = strncmp(text, "val_", 4) == 0;
    const char *base = sel->val ? text + 4 : text;
    sel->metric = -2;
    if (strcmp(base, "loss") == 0 && m->has_loss)
        sel->metric = -1;
    for (int j = 0; j < m->n_metrics; j++)
        if (strcmp(base, m->metrics[j].name) == 0)
            sel->metric = j;
    if (sel->metric == -2) {
        rt_buf known = {0};
        rt_buf_printf(&known, "loss, val_loss");
        for (int j = 0; j < m->n_metrics; j++)
            rt_buf_printf(&known, ", %s, val_%s", m->metrics[j].name, m->metrics[j].name);
        int rc = rt_error("--select %s: the runs have no such value (they have %s)", text, known.data);
        free(known.data);
        return rc;
    }
    if (sel->val && !s->o->val && !s->o->has_val_split)
        return rt_error("--select %s needs validation data: pass --val FILES or --val-split X (or --select loss)",
                        text);
    sel->higher = direction >= 0 ? direction : higher_is_better(base);
    if (sel->higher < 0)
        return rt_error("--select %s: cannot tell whether lower or higher is better; write --select min:%s or "
                        "--select max:%s",
                        text, text, text);
    return 0;
}

static int check_options(const rt_opts *o) {
    const char *bad = o->save ? "--save" : o->log ? "--log" : o->log_steps ? "--log-steps" : NULL;
    if (!bad)
        return 0;
    fprintf(stderr,
            "error: %s does not go with --sweep: each run saves DIR/RUN/model.ckpt and DIR/RUN/log.csv (DIR: "
            "--runs, default sweep; see '%s train --help')\n",
            bad, o->prog);
    return RT_EXIT_USAGE;
}

/*
 * The runs
 */

/* mkdir -p for one more level: path's parent exists or was made. */
static int make_dir(const char *path) {
    if (mkdir(path, 0777) == 0 || errno == EEXIST) {
        struct stat st;
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
            return 0;
        return rt_error("cannot make directory %s: a file of that name is in the way", path);
    }
    return rt_error("cannot make directory %s: %s", path, strerror(errno));
}

static char *path_join(const char *dir, const char *name) {
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = rt_xmalloc(n);
    snprintf(p, n, "%s/%s", dir, name);
    return p;
}

/* Every combination, the last axis fastest; run k's name is
 * "lam=1e-4,lr=3e-3". */
static void plan_runs(sweep *s) {
    s->n_runs = 1;
    for (int k = 0; k < s->n_axes; k++)
        s->n_runs *= s->axes[k].n;
    s->runs = rt_xcalloc((size_t)s->n_runs, sizeof *s->runs);
    for (int r = 0; r < s->n_runs; r++) {
        run *u = &s->runs[r];
        u->index = r;
        u->choice = rt_xcalloc((size_t)s->n_axes, sizeof *u->choice);
        rt_buf name = {0};
        for (int k = s->n_axes - 1, rest = r; k >= 0; k--) {
            u->choice[k] = rest % s->axes[k].n;
            rest /= s->axes[k].n;
        }
        for (int k = 0; k < s->n_axes; k++)
            rt_buf_printf(&name, "%s%s=%s", k ? "," : "", s->axes[k].name, s->axes[k].words[u->choice[k]]);
        u->name = name.data;
        u->dir = path_join(s->root, u->name);
        u->res.metrics = rt_xcalloc((size_t)s->m->n_metrics + 1, sizeof *u->res.metrics);
        u->res.val_metrics = rt_xcalloc((size_t)s->m->n_metrics + 1, sizeof *u->res.val_metrics);
    }
}

/* Trains run r through the ordinary training path; -1 only when its
 * set-up failed (which would fail every run). */
static int train_one(sweep *s, int r) {
    run *u = &s->runs[r];
    rt_opts o = *s->o;
    o.n_sweeps = 0;
    if (o.n_hyper_sets + s->n_axes > (int)(sizeof o.hyper_sets / sizeof o.hyper_sets[0]))
        return rt_error("--sweep and --hyper set more than %d hyper-parameters together",
                        (int)(sizeof o.hyper_sets / sizeof o.hyper_sets[0]));
    for (int k = 0; k < s->n_axes; k++) {
        rt_hyper_set *h = &o.hyper_sets[o.n_hyper_sets++];
        snprintf(h->name, sizeof h->name, "%s", s->axes[k].name);
        h->value = s->axes[k].values[u->choice[k]];
    }
    char *save = path_join(u->dir, "model.ckpt"), *log = path_join(u->dir, "log.csv");
    o.save = save;
    o.log = log;
    if (!o.quiet) {
        printf("\nsweep run %d/%d: %s -> %s/\n", r + 1, s->n_runs, u->name, u->dir);
        fflush(stdout);
    }
    int rc = make_dir(u->dir);
    if (rc == 0) {
        int trained = rt_train(s->m, &o, &u->res);
        u->ok = trained == 0;
        rc = trained > 0 ? -1 : u->ok || u->res.started ? 0 : -1; /* > 0: interrupted, no more runs */
    }
    free(save);
    free(log);
    return rc;
}

/*
 * The table
 */

static double selected(const sweep *s, const run *u) {
    const selection *sel = &s->sel;
    if (sel->metric < 0)
        return sel->val ? u->res.val_loss : u->res.loss;
    return sel->val ? u->res.val_metrics[sel->metric] : u->res.metrics[sel->metric];
}

static const sweep *sorting; /* qsort has no context argument */

/* Best first; failed runs last; ties in run order. */
static int compare_runs(const void *pa, const void *pb) {
    const run *a = pa, *b = pb;
    if (a->ok != b->ok)
        return a->ok ? -1 : 1;
    if (a->ok) {
        double x = selected(sorting, a), y = selected(sorting, b);
        if (x != y)
            return (sorting->sel.higher ? x > y : x < y) ? -1 : 1;
    }
    return a->index - b->index;
}

/* The columns after the hypers: loss, metrics, then their val_ twins. */
static int n_values(const sweep *s) { return (1 + s->m->n_metrics) * (s->o->val || s->o->has_val_split ? 2 : 1); }

static void value_name(const sweep *s, int i, char *buf, size_t size) {
    int per = 1 + s->m->n_metrics, j = i % per - 1;
    snprintf(buf, size, "%s%s", i >= per ? "val_" : "", j < 0 ? "loss" : s->m->metrics[j].name);
}

static double value_of(const sweep *s, const run *u, int i) {
    int per = 1 + s->m->n_metrics, j = i % per - 1;
    if (i >= per)
        return j < 0 ? u->res.val_loss : u->res.val_metrics[j];
    return j < 0 ? u->res.loss : u->res.metrics[j];
}

/* One row of cells: rank, the hypers as written, the values (to `digits`
 * significant digits), the run. */
static char **row_cells(const sweep *s, const run *u, int rank, int digits) {
    int n = 1 + s->n_axes + n_values(s) + 1;
    char **cells = rt_xcalloc((size_t)n, sizeof *cells), buf[64];
    snprintf(buf, sizeof buf, u->ok ? "%d" : "-", rank);
    cells[0] = rt_xstrdup(buf);
    for (int k = 0; k < s->n_axes; k++)
        cells[1 + k] = rt_xstrdup(s->axes[k].words[u->choice[k]]);
    for (int i = 0; i < n_values(s); i++) {
        snprintf(buf, sizeof buf, u->ok ? "%.*g" : "failed", digits, value_of(s, u, i));
        cells[1 + s->n_axes + i] = rt_xstrdup(buf);
    }
    cells[n - 1] = rt_xstrdup(u->name);
    return cells;
}

static char **header_cells(const sweep *s) {
    int n = 1 + s->n_axes + n_values(s) + 1;
    char **cells = rt_xcalloc((size_t)n, sizeof *cells), buf[128];
    cells[0] = rt_xstrdup("rank");
    for (int k = 0; k < s->n_axes; k++)
        cells[1 + k] = rt_xstrdup(s->axes[k].name);
    for (int i = 0; i < n_values(s); i++) {
        value_name(s, i, buf, sizeof buf);
        cells[1 + s->n_axes + i] = rt_xstrdup(buf);
    }
    cells[n - 1] = rt_xstrdup("run");
    return cells;
}

static void free_rows(char ***rows, int n_rows, int n) {
    for (int r = 0; r < n_rows; r++) {
        for (int c = 0; c < n; c++)
            free(rows[r][c]);
        free(rows[r]);
    }
    free(rows);
}

/* The header and a row per run, values to `digits` digits. */
static char ***table_rows(const sweep *s, int digits) {
    char ***rows = rt_xcalloc((size_t)s->n_runs + 1, sizeof *rows);
    rows[0] = header_cells(s);
    for (int r = 0; r < s->n_runs; r++)
        rows[r + 1] = row_cells(s, &s->runs[r], r + 1, digits);
    return rows;
}

/* Aligned columns, numbers to the right and the run's name to the left. */
static void print_table(char ***rows, int n_rows, int n) {
    int *width = rt_xcalloc((size_t)n, sizeof *width);
    for (int r = 0; r < n_rows; r++)
        for (int c = 0; c < n; c++)
            if ((int)strlen(rows[r][c]) > width[c])
                width[c] = (int)strlen(rows[r][c]);
    for (int r = 0; r < n_rows; r++) {
        for (int c = 0; c < n - 1; c++)
            printf("%s%*s", c ? "  " : "", width[c], rows[r][c]);
        printf("  %s\n", rows[r][n - 1]);
    }
    free(width);
}

/* The same as CSV, the run's name quoted, since it holds commas. */
static int write_csv(const char *path, char ***rows, int n_rows, int n) {
    FILE *f = fopen(path, "w");
    if (!f)
        return rt_error("cannot open %s for writing: %s", path, strerror(errno));
    for (int r = 0; r < n_rows; r++) {
        for (int c = 0; c < n - 1; c++)
            fprintf(f, "%s%s", c ? "," : "", rows[r][c]);
        fprintf(f, r ? ",\"%s\"\n" : ",%s\n", rows[r][n - 1]);
    }
    int failed = ferror(f);
    failed |= fclose(f) != 0;
    return failed ? rt_error("cannot write %s: %s", path, strerror(errno)) : 0;
}

/* Ranks the runs, prints the table (%.6g) and writes summary.csv (%.9g,
 * as the logs have them). */
static int write_summary(sweep *s) {
    sorting = s;
    qsort(s->runs, (size_t)s->n_runs, sizeof *s->runs, compare_runs);
    int n = 1 + s->n_axes + n_values(s) + 1;
    char *path = path_join(s->root, "summary.csv");
    char ***shown = table_rows(s, 6), ***saved = table_rows(s, 9);
    printf("\nsweep: %d runs ranked by %s (%s is better), best first; written to %s\n", s->n_runs, s->sel.name,
           s->sel.higher ? "higher" : "lower", path);
    print_table(shown, s->n_runs + 1, n);
    int rc = write_csv(path, saved, s->n_runs + 1, n);
    free_rows(shown, s->n_runs + 1, n);
    free_rows(saved, s->n_runs + 1, n);
    free(path);
    return rc;
}

static void free_sweep(sweep *s) {
    for (int k = 0; k < s->n_axes; k++) {
        for (int i = 0; i < s->axes[k].n; i++)
            free(s->axes[k].words[i]);
        free(s->axes[k].words);
        free(s->axes[k].values);
    }
    for (int r = 0; r < s->n_runs; r++) {
        free(s->runs[r].choice);
        free(s->runs[r].name);
        free(s->runs[r].dir);
        free(s->runs[r].res.metrics);
        free(s->runs[r].res.val_metrics);
    }
    free(s->runs);
}

static int prepare_sweep(sweep *s) {
    for (int k = 0; k < s->o->n_sweeps; k++) {
        split_axis(s->o->sweeps[k], &s->axes[k]);
        s->n_axes++;
        if (check_axis(s, k))
            return -1;
    }
    if (read_selection(s) || make_dir(s->root))
        return -1;
    plan_runs(s);
    return 0;
}

int rt_cmd_sweep(const rt_model *m, const rt_opts *o) {
    int rc = check_options(o);
    if (rc)
        return rc;
    sweep s;
    memset(&s, 0, sizeof s);
    s.m = m;
    s.o = o;
    s.root = o->runs ? o->runs : "sweep";
    rc = prepare_sweep(&s);
    for (int r = 0; r < s.n_runs && rc == 0; r++)
        rc = train_one(&s, r);
    int any = 0;
    for (int r = 0; r < s.n_runs; r++)
        any |= s.runs[r].ok;
    if (rc == 0 && !any)
        rc = rt_error("--sweep: every run failed");
    if (rc == 0)
        rc = write_summary(&s);
    free_sweep(&s);
    return rc ? RT_EXIT_FAIL : 0;
}
