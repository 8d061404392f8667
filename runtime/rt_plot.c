/*
 * rt_plot.c - `plot`: the training curves of one or more runs as an SVG
 * picture, and a table of their final and best values.
 *
 *     prog plot a.csv [b.csv ...] -o curves.svg [--metric NAME ...] [--title T] [--log-y]
 *
 * The inputs are what `train --log` writes (epoch,step,loss,metrics...,
 * val_ ones,lr,seconds: a row per epoch) or `train --log-steps`
 * (step,epoch,loss,lr,seconds: a row per step); the first header field
 * says which, and so what the x axis counts.  All files must be of one
 * kind.  Each quantity (the loss, each metric) gets a panel, the panels
 * stacked vertically; in it each run has one colour, solid for its
 * training column and dashed for its `val_` column.  Only the columns all
 * runs share are drawn, with a note naming what was left out.
 *
 * The command needs no model, and its arguments (file names, a repeated
 * --metric) are not the option table's kind, so it parses them itself;
 * rt_cli.c hands it the words after `plot`.  The drawing primitives and
 * the axes are rt_svg.c's.
 */
#include "rt_internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The picture's layout, in pixels. */
#define PLOT_WIDTH 800
#define PLOT_LEFT 84 /* room for the y tick labels and the y label */
#define PLOT_RIGHT 24
#define PLOT_AREA_HEIGHT 230
#define PANEL_HEIGHT (PLOT_AREA_HEIGHT + 84) /* the panel's title above, x ticks and label below */
#define LEGEND_ROW 20
/* A series of at most this many points also marks each point. */
#define PLOT_MARKED_POINTS 40

static const char *const palette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                                      "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"};
#define N_COLOURS (int)(sizeof palette / sizeof palette[0])

typedef struct plot_args {
    const char *output, *title, *sort;
    int n_files, n_metrics, log_y;
    const char **files, **metrics;
} plot_args;

/* One log file. */
typedef struct plot_run {
    const char *path;
    const char *label; /* its name in the legend and the table */
    int n_columns, n_rows, cap_rows;
    char **names;
    double *cells; /* n_rows x n_columns, row-major; NAN for an empty field */
} plot_run;

/* A quantity and the columns drawn for it (either may be NULL). */
typedef struct plot_panel {
    const char *name, *train, *val;
} plot_panel;

/*
 * The command line
 */

static void print_help(const char *prog) {
    printf("usage: %s plot LOG.csv [LOG.csv ...] -o FILE.svg [options]\n"
           "Draw the training curves of one or more runs as an SVG picture, and print their final and best "
           "values.\n\n"
           "options:\n"
           "  %-18s %s\n  %-18s %s\n  %-18s %s\n  %-18s %s\n  %-18s %s\n  %-18s %s\n\n",
           prog, "-o, --output FILE", "the SVG file to write (required)", "--metric NAME",
           "draw only this quantity (loss, a metric, lr; repeatable; default: the loss and every metric)",
           "--title TEXT", "the picture's title (default: the file, or the number of runs)", "--log-y",
           "a log-scale y axis (values <= 0 are left out)", "--sort COLUMN",
           "order the table by this column's final value, best first (default: val_loss, else loss)", "-h, --help",
           "show this help");
    printf("Each LOG is a CSV written by 'train --log' (a row per epoch) or 'train --log-steps' (a row per step); "
           "all must be of one kind.  Each quantity gets a panel, each run a colour: solid lines are training, "
           "dashed validation (the val_ columns).  Runs are named after their files, or after the files' "
           "directories when the files all have one name (DIR/run/log.csv).\n");
}

static int plot_usage_error(const char *prog, const char *what, const char *arg) {
    fflush(stdout);
    fprintf(stderr, "error: %s%s%s%s (see '%s plot --help')\n", what, arg ? " '" : "", arg ? arg : "", arg ? "'" : "",
            prog);
    return RT_EXIT_USAGE;
}

/* For `--name VALUE` and `--name=VALUE`: the value, or NULL if argv[*i]
 * is not the option `name`.  *missing is set when the value is absent. */
static const char *option_value(int argc, char **argv, int *i, const char *name, int *missing) {
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0 || (a[n] != '\0' && a[n] != '='))
        return NULL;
    if (a[n] == '=')
        return a + n + 1;
    if (*i + 1 >= argc) {
        *missing = 1;
        return NULL;
    }
    return argv[++*i];
}

/* Returns -1 to go on, else an exit status (0 after --help). */
static int parse_args(const char *prog, int argc, char **argv, plot_args *p) {
    p->files = rt_xcalloc((size_t)argc, sizeof *p->files);
    p->metrics = rt_xcalloc((size_t)argc, sizeof *p->metrics);
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v;
        int missing = 0;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            print_help(prog);
            return 0;
        }
        if ((v = option_value(argc, argv, &i, "-o", &missing)) ||
            (v = option_value(argc, argv, &i, "--output", &missing)))
            p->output = v;
        else if ((v = option_value(argc, argv, &i, "--metric", &missing)))
            p->metrics[p->n_metrics++] = v;
        else if ((v = option_value(argc, argv, &i, "--title", &missing)))
            p->title = v;
        else if ((v = option_value(argc, argv, &i, "--sort", &missing)))
            p->sort = v;
        else if (strcmp(a, "--log-y") == 0)
            p->log_y = 1;
        else if (missing)
            return plot_usage_error(prog, "missing value for", a);
        else if (a[0] == '-' && a[1] != '\0')
            return plot_usage_error(prog, "unknown option", a);
        else
            p->files[p->n_files++] = argv[i];
        if (v && !v[0])
            return plot_usage_error(prog, "empty value for", a);
    }
    if (p->n_files == 0)
        return plot_usage_error(prog, "plot needs at least one log file (written by train --log)", NULL);
    if (!p->output)
        return plot_usage_error(prog, "plot needs -o FILE.svg", NULL);
    return -1;
}

/*
 * Reading a log
 */

/* Splits the line [s, end) at commas into fields trimmed of blanks, each
 * NUL-terminated in place (over its comma); returns how many fields the
 * line has, of which at most max are stored. */
static int split_line(char *s, char *end, char **fields, int max) {
    int n = 0;
    for (;;) {
        char *e = s;
        while (e < end && *e != ',')
            e++;
        char *a = s, *b = e;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t' || b[-1] == '\r'))
            b--;
        *b = '\0';
        if (n < max)
            fields[n] = a;
        n++;
        if (e >= end)
            return n;
        s = e + 1;
    }
}

static int count_fields(const char *s, const char *end) {
    int n = 1;
    for (; s < end; s++)
        n += *s == ',';
    return n;
}

static int is_number(const char *s, double *v) {
    char *end;
    *v = strtod(s, &end);
    return end != s && *end == '\0';
}

static int read_header(plot_run *r, char *line, char *end) {
    int n = count_fields(line, end);
    r->names = rt_xcalloc((size_t)n, sizeof *r->names);
    r->n_columns = split_line(line, end, r->names, n);
    for (int j = 0; j < n; j++)
        r->names[j] = rt_xstrdup(r->names[j]); /* the file's text is freed once read */
    double v;
    for (int j = 0; j < n; j++)
        if (!r->names[j][0])
            return rt_error("%s:1: column %d of the header has no name", r->path, j + 1);
    if (n < 2 || is_number(r->names[0], &v))
        return rt_error("%s:1: no header: expected a CSV written by train --log (epoch,step,loss,...) or "
                        "--log-steps (step,epoch,loss,...)",
                        r->path);
    if (strcmp(r->names[0], "epoch") != 0 && strcmp(r->names[0], "step") != 0)
        return rt_error("%s:1: the first column is '%s': expected 'epoch' (a train --log CSV) or 'step' "
                        "(--log-steps)",
                        r->path, r->names[0]);
    for (int j = 1; j < n; j++)
        for (int k = 0; k < j; k++)
            if (strcmp(r->names[j], r->names[k]) == 0)
                return rt_error("%s:1: column '%s' appears twice", r->path, r->names[j]);
    return 0;
}

/* One data row: every field a number or empty (the lr of a model
 * without one). */
static int read_row(plot_run *r, char *line, char *end, int line_no, char **fields) {
    int n = split_line(line, end, fields, r->n_columns);
    if (n != r->n_columns)
        return rt_error("%s:%d: %d fields, but the header has %d", r->path, line_no, n, r->n_columns);
    if (r->n_rows == r->cap_rows) {
        r->cap_rows = r->cap_rows ? 2 * r->cap_rows : 64;
        r->cells = rt_xrealloc(r->cells, (size_t)r->cap_rows * (size_t)n * sizeof *r->cells);
    }
    double *row = r->cells + (size_t)r->n_rows * (size_t)n;
    for (int j = 0; j < n; j++) {
        if (!fields[j][0] && j > 0)
            row[j] = NAN;
        else if (!is_number(fields[j], &row[j]))
            return rt_error("%s:%d: column %s: '%s' is not a number", r->path, line_no, r->names[j], fields[j]);
    }
    r->n_rows++;
    return 0;
}

static int parse_log(plot_run *r, char *text, size_t len) {
    char *end = text + len, **fields = NULL;
    int line_no = 0, rc = 0, header = 0;
    for (char *line = text; line < end && rc == 0;) {
        char *nl = memchr(line, '\n', (size_t)(end - line));
        char *stop = nl ? nl : end;
        line_no++;
        char *s = line;
        while (s < stop && (*s == ' ' || *s == '\t' || *s == '\r'))
            s++;
        if (s == stop) {
            /* blank */
        } else if (!header) {
            rc = read_header(r, line, stop);
            header = 1;
            fields = rt_xcalloc((size_t)r->n_columns, sizeof *fields);
        } else {
            rc = read_row(r, line, stop, line_no, fields);
        }
        line = stop + 1;
    }
    free(fields);
    if (rc == 0 && !header)
        return rt_error("%s: empty: expected a CSV written by train --log", r->path);
    if (rc == 0 && r->n_rows == 0)
        return rt_error("%s: a header and no rows: nothing to plot", r->path);
    return rc;
}

static int read_log(plot_run *r, const char *path) {
    memset(r, 0, sizeof *r);
    r->path = path;
    char *text;
    size_t len;
    if (rt_read_file(path, &text, &len))
        return -1;
    int rc = parse_log(r, text, len);
    free(text);
    return rc;
}

static int column_of(const plot_run *r, const char *name) {
    for (int j = 0; j < r->n_columns; j++)
        if (strcmp(r->names[j], name) == 0)
            return j;
    return -1;
}

static double cell(const plot_run *r, int row, int column) {
    return r->cells[(size_t)row * (size_t)r->n_columns + (size_t)column];
}

/*
 * Naming the runs: the shortest end of their paths that tells them apart,
 * without ".csv", and without the file name when all runs share it (a
 * sweep's DIR/<run>/log.csv is named <run>; two sweeps' runs
 * sweep_a/lam=0 and sweep_b/lam=0).
 */

/* The last `parts` components of path, before its last `skip` ones. */
static char *path_end(const char *path, int parts, int skip) {
    char *s = rt_xstrdup(path);
    size_t n = strlen(s);
    if (n > 4 && strcmp(s + n - 4, ".csv") == 0)
        s[n - 4] = '\0';
    char *end = s + strlen(s);
    for (int k = 0; k < skip && end > s; k++) {
        while (end > s && end[-1] != '/')
            end--;
        while (end > s && end[-1] == '/')
            end--;
    }
    *end = '\0';
    char *start = end;
    for (int k = 0; k < parts && start > s; k++) {
        if (k > 0)
            start--; /* over the slash */
        while (start > s && start[-1] != '/')
            start--;
    }
    char *label = rt_xstrdup(*start ? start : ".");
    free(s);
    return label;
}

static int labels_unique(const plot_run *runs, int n) {
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++)
            if (strcmp(runs[i].label, runs[j].label) == 0)
                return 0;
    return 1;
}

static void name_runs(plot_run *runs, int n) {
    int same = n > 1;
    for (int i = 1; i < n; i++)
        same &= strcmp(rt_basename(runs[i].path), rt_basename(runs[0].path)) == 0;
    for (int parts = 1; parts <= 8; parts++) {
        for (int i = 0; i < n; i++) {
            free((char *)runs[i].label);
            runs[i].label = path_end(runs[i].path, parts, same);
        }
        if (labels_unique(runs, n))
            return;
    }
}

/*
 * Which columns are drawn
 */

/* The columns that are not a quantity of the model: the x axes and the
 * bookkeeping. */
static int is_bookkeeping(const char *name) {
    return strcmp(name, "epoch") == 0 || strcmp(name, "step") == 0 || strcmp(name, "lr") == 0 ||
           strcmp(name, "seconds") == 0;
}

/* train --log writes the model's hyper-parameters after "seconds": the
 * run's settings, the same in every row, not curves. */
static int is_setting(const plot_run *r, const char *name) {
    int seconds = column_of(r, "seconds"), at = column_of(r, name);
    return seconds >= 0 && at > seconds;
}

static int shared_by_all(const plot_run *runs, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (column_of(&runs[i], name) < 0)
            return 0;
    return 1;
}

/* Notes the columns some runs have and others lack. */
static void note_unshared(const plot_run *runs, int n) {
    rt_buf b = {0};
    for (int i = 0; i < n; i++)
        for (int j = 0; j < runs[i].n_columns; j++) {
            const char *name = runs[i].names[j];
            int earlier = 0;
            for (int k = 0; k < i && !earlier; k++)
                earlier = column_of(&runs[k], name) >= 0;
            if (!earlier && !shared_by_all(runs, n, name))
                rt_buf_printf(&b, "%s%s", b.len ? ", " : "", name);
        }
    if (b.len)
        rt_note("the runs' columns differ: plotting only the ones all share (left out: %s)", b.data);
    free(b.data);
}

static const char *val_name(const char *name, char *buf, size_t size) {
    snprintf(buf, size, "val_%s", name);
    return buf;
}

/* The panel of quantity `name` (loss, a metric, or any shared column):
 * its training column and its val_ one, as far as all runs have them.
 * Asked for by its val_ name, the val_ column must be there. */
static int make_panel(const plot_run *runs, int n, const char *name, plot_panel *p) {
    char val[256];
    int is_val = strncmp(name, "val_", 4) == 0 && name[4];
    const char *base = is_val ? name + 4 : name;
    val_name(base, val, sizeof val);
    int has_train = shared_by_all(runs, n, base), has_val = !is_bookkeeping(base) && shared_by_all(runs, n, val);
    if (is_val ? !has_val : !has_train && !has_val)
        return -1;
    p->name = base;
    p->train = has_train ? runs[0].names[column_of(&runs[0], base)] : NULL;
    p->val = has_val ? runs[0].names[column_of(&runs[0], val)] : NULL;
    return 0;
}

/* Default: the loss and every metric, each with its val_ column. */
static int default_panels(const plot_run *runs, int n, plot_panel *panels) {
    int count = 0;
    const plot_run *r = &runs[0];
    for (int j = 1; j < r->n_columns; j++) {
        const char *name = r->names[j];
        if (is_bookkeeping(name) || is_setting(r, name) || !shared_by_all(runs, n, name))
            continue;
        if (strncmp(name, "val_", 4) == 0 && shared_by_all(runs, n, name + 4))
            continue; /* drawn in its quantity's panel */
        make_panel(runs, n, name, &panels[count++]);
    }
    return count;
}

static int chosen_panels(const plot_run *runs, int n, const plot_args *a, plot_panel *panels) {
    for (int k = 0; k < a->n_metrics; k++) {
        const char *name = a->metrics[k];
        if (strcmp(name, runs[0].names[0]) == 0)
            return rt_error("--metric %s: that is the x axis", name);
        if (make_panel(runs, n, name, &panels[k]) == 0)
            continue;
        for (int i = 0; i < n; i++)
            if (column_of(&runs[i], name) < 0)
                return rt_error("--metric %s: %s has no column %s", name, runs[i].path, name);
    }
    return a->n_metrics;
}

/*
 * Drawing
 */

/* The range of a panel's values over all runs (positive ones only on a
 * log axis); returns how many values there are, and counts in *left_out
 * those a log axis cannot show. */
static int value_range(const plot_run *runs, int n, const plot_panel *p, int log_y, double *min, double *max,
                       int *left_out) {
    int count = 0;
    *min = INFINITY, *max = -INFINITY;
    for (int i = 0; i < n; i++)
        for (int s = 0; s < 2; s++) {
            const char *name = s ? p->val : p->train;
            int c = name ? column_of(&runs[i], name) : -1;
            for (int row = 0; c >= 0 && row < runs[i].n_rows; row++) {
                double v = cell(&runs[i], row, c);
                if (!isfinite(v))
                    continue;
                if (log_y && v <= 0) {
                    (*left_out)++;
                    continue;
                }
                *min = fmin(*min, v), *max = fmax(*max, v);
                count++;
            }
        }
    return count;
}

static void x_range(const plot_run *runs, int n, double *min, double *max) {
    *min = INFINITY, *max = -INFINITY;
    for (int i = 0; i < n; i++)
        for (int row = 0; row < runs[i].n_rows; row++) {
            double v = cell(&runs[i], row, 0);
            if (isfinite(v))
                *min = fmin(*min, v), *max = fmax(*max, v);
        }
    if (!isfinite(*min))
        *min = 0, *max = 1;
}

/* Where a panel's plot area is on the page. */
typedef struct plot_area {
    double left, top, width, height;
    rt_axis x, y;
} plot_area;

static double page_x(const plot_area *a, double v) { return a->left + rt_axis_position(&a->x, v) * a->width; }
static double page_y(const plot_area *a, double v) { return a->top + (1 - rt_axis_position(&a->y, v)) * a->height; }

/* The points of one stretch of drawable values, on the page.  thin: a
 * long series (a --log-steps file) keeps only the lowest and highest
 * point of each pixel column: the same picture, a far smaller file. */
typedef struct stretch {
    double *xy;
    int n, thin, column; /* column: the pixel column being gathered; -1: none */
    double x, low, high;
} stretch;

static void flush_column(stretch *s) {
    if (s->column < 0)
        return;
    s->xy[2 * s->n] = s->x, s->xy[2 * s->n + 1] = s->low, s->n++;
    if (s->high != s->low)
        s->xy[2 * s->n] = s->x, s->xy[2 * s->n + 1] = s->high, s->n++;
    s->column = -1;
}

static void add_point(stretch *s, double x, double y) {
    if (!s->thin) {
        s->xy[2 * s->n] = x, s->xy[2 * s->n + 1] = y, s->n++;
        return;
    }
    if ((int)x == s->column) {
        s->low = fmin(s->low, y), s->high = fmax(s->high, y);
        return;
    }
    flush_column(s);
    s->column = (int)x, s->x = x, s->low = s->high = y;
}

static void end_stretch(rt_buf *b, stretch *s, const char *colour, int dashed) {
    flush_column(s);
    if (s->n > 1)
        rt_svg_polyline(b, s->xy, s->n, colour, 2, dashed);
    s->n = 0;
}

static int drawable(double x, double y, int log_y) { return isfinite(x) && isfinite(y) && (!log_y || y > 0); }

/* A run's column: a polyline per stretch of drawable values, and a
 * marker on each point when there are few. */
static void draw_series(rt_buf *b, const plot_area *a, const plot_run *r, int column, const char *colour, int dashed,
                        int log_y) {
    stretch s = {rt_xmalloc((size_t)r->n_rows * 2 * sizeof *s.xy), 0, r->n_rows > 2 * (int)a->width, -1, 0, 0, 0};
    int points = 0;
    for (int row = 0; row < r->n_rows; row++) {
        double x = cell(r, row, 0), y = cell(r, row, column);
        if (drawable(x, y, log_y)) {
            add_point(&s, page_x(a, x), page_y(a, y));
            points++;
        } else {
            end_stretch(b, &s, colour, dashed);
        }
    }
    end_stretch(b, &s, colour, dashed);
    for (int row = 0; row < r->n_rows && points <= PLOT_MARKED_POINTS; row++) {
        double x = cell(r, row, 0), y = cell(r, row, column);
        if (drawable(x, y, log_y))
            rt_svg_circle(b, page_x(a, x), page_y(a, y), 2.5, colour, !dashed);
    }
    free(s.xy);
}

static void draw_axes(rt_buf *b, const plot_area *a, const char *x_name, const char *y_name) {
    char label[64];
    for (int k = 0; k < a->y.n_ticks; k++) {
        double py = page_y(a, a->y.ticks[k]);
        rt_svg_line(b, a->left, py, a->left + a->width, py, "#e4e4e4", 1, 0);
        rt_svg_line(b, a->left - 5, py, a->left, py, "#444", 1, 0);
        rt_axis_label(&a->y, a->y.ticks[k], label, sizeof label);
        rt_svg_text(b, a->left - 8, py + 4, "end", 11, 0, label);
    }
    for (int k = 0; k < a->x.n_ticks; k++) {
        double px = page_x(a, a->x.ticks[k]);
        double bottom = a->top + a->height;
        rt_svg_line(b, px, a->top, px, bottom, "#e4e4e4", 1, 0);
        rt_svg_line(b, px, bottom, px, bottom + 5, "#444", 1, 0);
        rt_axis_label(&a->x, a->x.ticks[k], label, sizeof label);
        rt_svg_text(b, px, bottom + 18, "middle", 11, 0, label);
    }
    rt_svg_rect(b, a->left, a->top, a->width, a->height, "#444");
    rt_svg_text(b, a->left + a->width / 2, a->top + a->height + 38, "middle", 12, 0, x_name);
    rt_svg_text(b, a->left - 62, a->top + a->height / 2, "middle", 12, -90, y_name);
}

static void draw_panel(rt_buf *b, const plot_run *runs, int n, const plot_panel *p, const rt_axis *x, double top,
                       int log_y) {
    plot_area a = {.left = PLOT_LEFT,
                   .top = top + 28,
                   .width = PLOT_WIDTH - PLOT_LEFT - PLOT_RIGHT,
                   .height = PLOT_AREA_HEIGHT,
                   .x = *x};
    double min, max;
    int left_out = 0;
    int count = value_range(runs, n, p, log_y, &min, &max, &left_out);
    if (left_out)
        rt_note("--log-y leaves out %d values <= 0 of %s", left_out, p->name);
    rt_axis_fit(&a.y, count ? min : 1, count ? max : 1, 1, 0, log_y);
    char title[600], y_name[300];
    snprintf(title, sizeof title, "%s%s%s%s", p->train ? p->train : "", p->train && p->val ? " (solid), " : "",
             p->val ? p->val : "", p->train && p->val ? " (dashed)" : "");
    snprintf(y_name, sizeof y_name, "%s%s", p->name, log_y ? " (log scale)" : "");
    rt_svg_text(b, a.left, top + 18, "start", 14, 0, title);
    draw_axes(b, &a, runs[0].names[0], y_name);
    for (int i = 0; i < n; i++) {
        const char *colour = palette[i % N_COLOURS];
        if (p->train)
            draw_series(b, &a, &runs[i], column_of(&runs[i], p->train), colour, 0, log_y);
        if (p->val)
            draw_series(b, &a, &runs[i], column_of(&runs[i], p->val), colour, 1, log_y);
    }
    if (!count)
        rt_svg_text(b, a.left + a.width / 2, a.top + a.height / 2, "middle", 13, 0, "no values to draw");
}

/* A legend entry is a line of the run's colour (or of the line style)
 * and a name; about 7 px a character at 12 px. */
static double legend_width(const char *name) { return 30 + 7.0 * (double)strlen(name) + 18; }

/* The legend's entries from y down, flowed left to right and wrapped at
 * the right margin; returns the y below it.  measure: only compute that. */
static double draw_legend(rt_buf *b, const plot_run *runs, int n, int any_val, double y, int measure) {
    double x = PLOT_LEFT;
    int entries = n + (any_val ? 2 : 0);
    for (int e = 0; e < entries; e++) {
        const char *name = e < n ? runs[e].label : e == n ? "training" : "validation";
        double w = legend_width(name);
        if (x > PLOT_LEFT && x + w > PLOT_WIDTH - PLOT_RIGHT)
            x = PLOT_LEFT, y += LEGEND_ROW;
        if (!measure) {
            rt_svg_line(b, x, y - 4, x + 24, y - 4, e < n ? palette[e % N_COLOURS] : "#333", 2.5, e == n + 1);
            rt_svg_text(b, x + 30, y, "start", 12, 0, name);
        }
        x += w;
    }
    return y + LEGEND_ROW;
}

static void draw_picture(rt_buf *b, const plot_run *runs, int n, const plot_panel *panels, int n_panels,
                         const plot_args *args) {
    int any_val = 0;
    for (int k = 0; k < n_panels; k++)
        any_val |= panels[k].val != NULL;
    char title[512];
    if (args->title)
        snprintf(title, sizeof title, "%s", args->title);
    else if (n == 1)
        snprintf(title, sizeof title, "%s", runs[0].path);
    else
        snprintf(title, sizeof title, "%d runs", n);
    double legend_top = 56, panels_top = draw_legend(b, runs, n, any_val, legend_top, 1) + 4;
    rt_svg_begin(b, PLOT_WIDTH, (int)panels_top + n_panels * PANEL_HEIGHT);
    rt_svg_text(b, PLOT_WIDTH / 2.0, 30, "middle", 18, 0, title);
    draw_legend(b, runs, n, any_val, legend_top, 0);
    double min, max;
    x_range(runs, n, &min, &max);
    rt_axis x;
    rt_axis_fit(&x, min, max, 0, 1, 0);
    for (int k = 0; k < n_panels; k++)
        draw_panel(b, runs, n, &panels[k], &x, panels_top + k * PANEL_HEIGHT, args->log_y);
    rt_svg_end(b);
}

static int write_picture(const char *path, const rt_buf *b) {
    FILE *f = fopen(path, "w");
    if (!f)
        return rt_error("cannot open %s for writing: %s", path, strerror(errno));
    int failed = fwrite(b->data, 1, b->len, f) != b->len;
    failed |= fclose(f) != 0;
    if (failed)
        return rt_error("cannot write %s: %s", path, strerror(errno));
    return 0;
}

/*
 * The table: per run, the final and best value of each drawn column,
 * sorted by the final val_loss (else loss).
 */

/* Higher is better for these names; lower for everything else (losses,
 * errors, mae, perplexity). */
static int higher_is_better(const char *name) {
    static const char *const words[] = {"acc", "precision", "recall", "f1", "auc", "r2", "iou"};
    for (size_t k = 0; k < sizeof words / sizeof words[0]; k++)
        if (strstr(name, words[k]))
            return 1;
    return 0;
}

static double final_value(const plot_run *r, int c) { return c < 0 ? NAN : cell(r, r->n_rows - 1, c); }

/* Of a quantity only: the best lr or time means nothing. */
static double best_value(const plot_run *r, int c) {
    double best = NAN;
    if (is_bookkeeping(r->names[c]))
        return NAN;
    int higher = higher_is_better(r->names[c]);
    for (int row = 0; row < r->n_rows; row++) {
        double v = cell(r, row, c);
        if (isfinite(v) && (isnan(best) || (higher ? v > best : v < best)))
            best = v;
    }
    return best;
}

static const char *sort_column; /* what compare_runs compares: qsort passes no context */

static int compare_runs(const void *pa, const void *pb) {
    const plot_run *a = *(const plot_run *const *)pa, *b = *(const plot_run *const *)pb;
    double x = final_value(a, column_of(a, sort_column)), y = final_value(b, column_of(b, sort_column));
    if (isnan(x) != isnan(y))
        return isnan(x) - isnan(y); /* runs without a value last */
    if (!isnan(x) && x != y)
        return higher_is_better(sort_column) ? (x < y) - (x > y) : (x > y) - (x < y);
    return (a > b) - (a < b); /* ties in file order */
}

static void print_value(double v, int width) {
    if (isnan(v))
        printf("  %*s", width, "-");
    else
        printf("  %*.6g", width, v);
}

static void print_table(const plot_run *runs, int n, const plot_panel *panels, int n_panels, const char *sort) {
    const char **columns = rt_xcalloc(2 * (size_t)n_panels, sizeof *columns);
    int n_columns = 0;
    for (int k = 0; k < n_panels; k++) {
        if (panels[k].train)
            columns[n_columns++] = panels[k].train;
        if (panels[k].val)
            columns[n_columns++] = panels[k].val;
    }
    sort_column = sort                                ? sort
                  : shared_by_all(runs, n, "val_loss") ? "val_loss"
                  : shared_by_all(runs, n, "loss")     ? "loss"
                                                       : NULL;
    const plot_run **order = rt_xcalloc((size_t)n, sizeof *order);
    for (int i = 0; i < n; i++)
        order[i] = &runs[i];
    if (sort_column)
        qsort(order, (size_t)n, sizeof *order, compare_runs);
    printf("%d run%s%s%s%s: each column's final value, then its best (the lowest; the highest for names with acc, "
           "precision, recall, f1, auc, r2 or iou)\n",
           n, n == 1 ? "" : "s", sort_column ? ", best final " : "", sort_column ? sort_column : "",
           sort_column ? " first" : "");
    int label_width = 3;
    for (int i = 0; i < n; i++)
        label_width = (int)fmax(label_width, (double)strlen(runs[i].label));
    printf("%-*s  %6ss", label_width, "run", runs[0].names[0]);
    for (int c = 0; c < n_columns; c++)
        printf("  %*s  %*s", (int)fmax(11, (double)strlen(columns[c])), columns[c], 11, "best");
    printf("\n");
    for (int i = 0; i < n; i++) {
        const plot_run *r = order[i];
        printf("%-*s", label_width, r->label);
        print_value(final_value(r, 0), 7);
        for (int c = 0; c < n_columns; c++) {
            int j = column_of(r, columns[c]);
            print_value(final_value(r, j), (int)fmax(11, (double)strlen(columns[c])));
            print_value(best_value(r, j), 11);
        }
        printf("\n");
    }
    free(order);
    free(columns);
}

/*
 * The command
 */

static int plot_runs(plot_run *runs, int n, const plot_args *a) {
    for (int i = 1; i < n; i++)
        if (strcmp(runs[i].names[0], runs[0].names[0]) != 0)
            return rt_error("%s is a log per %s and %s one per %s: plot logs of one kind together", runs[0].path,
                            runs[0].names[0], runs[i].path, runs[i].names[0]);
    name_runs(runs, n);
    int max_panels = a->n_metrics + runs[0].n_columns;
    plot_panel *panels = rt_xcalloc((size_t)max_panels, sizeof *panels);
    int n_panels = a->n_metrics ? chosen_panels(runs, n, a, panels) : default_panels(runs, n, panels);
    int rc = n_panels < 0 ? -1 : 0; /* chosen_panels said why */
    if (n_panels == 0)
        rc = rt_error("%s: no column to plot that all runs share", runs[0].path);
    else if (a->sort && !shared_by_all(runs, n, a->sort))
        rc = rt_error("--sort %s: not a column of every run", a->sort);
    rt_buf b = {0};
    if (rc == 0) {
        note_unshared(runs, n);
        draw_picture(&b, runs, n, panels, n_panels, a);
        rc = write_picture(a->output, &b);
    }
    if (rc == 0)
        print_table(runs, n, panels, n_panels, a->sort);
    free(b.data);
    free(panels);
    return rc;
}

int rt_cmd_plot(const char *prog, int argc, char **argv) {
    plot_args a = {0};
    int rc = parse_args(prog, argc, argv, &a);
    plot_run *runs = rt_xcalloc((size_t)a.n_files + 1, sizeof *runs);
    int n_read = 0;
    if (rc < 0) {
        rc = 0;
        while (n_read < a.n_files && rc == 0)
            rc = read_log(&runs[n_read], a.files[n_read]), n_read++;
        rc = rc == 0 && plot_runs(runs, a.n_files, &a) == 0 ? 0 : RT_EXIT_FAIL;
    }
    for (int i = 0; i < n_read; i++) {
        for (int j = 0; j < runs[i].n_columns; j++)
            free(runs[i].names[j]);
        free(runs[i].names);
        free(runs[i].cells);
        free((char *)runs[i].label);
    }
    free(runs);
    free(a.files);
    free(a.metrics);
    return rc;
}
