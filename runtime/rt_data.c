/*
 * rt_data.c - data sets: loading files into per-tensor sample arrays.
 *
 * A data set is n samples of some of the model's inputs and targets, held
 * as one contiguous array per tensor (n * sample elements, f32 or i32), so
 * batching is a gather of rows whatever the file format was.  The loader is
 * chosen by file extension; CSV is the one written so far and the default
 * for unknown extensions (IDX, NPY and text loaders slot into `loaders`).
 *
 * CSV layout: for each input in order, its per-sample elements flattened
 * row-major (a [B, 2] input is 2 columns, a [B] input 1), then each target
 * the same way.  The first non-blank line is a header if any of its fields
 * is not a number.  Blank lines are skipped, fields may be padded with
 * spaces or wrapped in double quotes.  Every problem is reported as
 * FILE:LINE[:COL] with what was expected.
 */
#include "rt_internal.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The tensors a file feeds: inputs, then (labelled) targets. */
static int fed_tensor_count(const rt_model *m, int mode) {
    return m->n_inputs + (mode == RT_DATA_LABELLED ? m->n_targets : 0);
}

static const rt_tensor *fed_tensor(const rt_model *m, int i) {
    return i < m->n_inputs ? &m->inputs[i] : &m->targets[i - m->n_inputs];
}

/* Number of CSV columns the tensors of `mode` take. */
static int data_columns(const rt_model *m, int mode) {
    int64_t n = 0;
    for (int i = 0; i < fed_tensor_count(m, mode); i++)
        n += rt_layout_of(fed_tensor(m, i)).sample;
    return (int)n;
}

rt_dataset *rt_data_new(const rt_model *m, int mode, int64_t n) {
    rt_dataset *d = rt_xcalloc(1, sizeof *d);
    d->n = n;
    d->n_tensors = fed_tensor_count(m, mode);
    d->tensors = rt_xcalloc((size_t)d->n_tensors + 1, sizeof *d->tensors);
    d->layouts = rt_xcalloc((size_t)d->n_tensors + 1, sizeof *d->layouts);
    d->data = rt_xcalloc((size_t)d->n_tensors + 1, sizeof *d->data);
    for (int i = 0; i < d->n_tensors; i++) {
        d->tensors[i] = fed_tensor(m, i);
        d->layouts[i] = rt_layout_of(d->tensors[i]);
        d->data[i] = rt_xcalloc((size_t)(n * d->layouts[i].sample), 4);
    }
    return d;
}

void rt_data_free(rt_dataset *d) {
    if (!d)
        return;
    for (int i = 0; i < d->n_tensors; i++)
        free(d->data[i]);
    free(d->data);
    free(d->layouts);
    free(d->tensors);
    free(d->path);
    free(d);
}

/* Keeps only the first n samples (the arrays stay as they are). */
void rt_data_truncate(rt_dataset *d, int64_t n) {
    if (n < d->n)
        d->n = n;
}

/* Fills every f32 tensor with N(0, 1); i32 ones need real data. */
int rt_data_random(rt_dataset *d, rt_rng *r) {
    for (int i = 0; i < d->n_tensors; i++) {
        if (d->tensors[i]->dtype == RT_I32)
            return rt_error("\"%s\" is i32 and cannot be drawn at random: pass --data FILE", d->tensors[i]->name);
        float *x = d->data[i];
        for (int64_t k = 0; k < d->n * d->layouts[i].sample; k++)
            x[k] = (float)rt_rng_normal(r);
    }
    return 0;
}

/*
 * CSV
 */

typedef struct csv_state {
    const rt_model *m;
    rt_dataset *d;
    const char *path;
    int mode;
    int expect;        /* columns per line, once known; 0 before */
    int used;          /* columns that feed tensors (RT_DATA_INPUTS: inputs') */
    int lines;         /* non-blank lines seen: only the first can be a header */
    int *col_tensor;   /* column -> tensor of d */
    int64_t *col_elem; /* column -> element within a sample */
} csv_state;

/* One field of a line, trimmed of blanks and quotes. */
typedef struct field {
    const char *start;
    size_t len;
    int column; /* 1-based character column in the line */
} field;

static int is_blank(char c) { return c == ' ' || c == '\t'; }

/* Splits [line, end) at commas; returns the number of fields found (it may
 * exceed max, only the first max are stored). */
static int split_fields(const char *line, const char *end, field *out, int max) {
    int n = 0;
    const char *s = line;
    for (;;) {
        const char *e = s;
        while (e < end && *e != ',')
            e++;
        const char *a = s, *b = e;
        while (a < b && is_blank(*a))
            a++;
        while (b > a && is_blank(b[-1]))
            b--;
        if (b - a >= 2 && *a == '"' && b[-1] == '"')
            a++, b--;
        if (n < max)
            out[n] = (field){a, (size_t)(b - a), (int)(a - line) + 1};
        n++;
        if (e == end)
            return n;
        s = e + 1;
    }
}

/* Parses a whole field as a finite double; 0 on success. */
static int parse_number(const field *f, double *v) {
    char text[128];
    if (f->len == 0 || f->len >= sizeof text)
        return -1;
    memcpy(text, f->start, f->len);
    text[f->len] = '\0';
    char *end;
    errno = 0;
    *v = strtod(text, &end);
    if (end != text + f->len || !isfinite(*v))
        return -1;
    if (errno == ERANGE && fabs(*v) > 1) /* overflow; underflow is fine */
        return -1;
    return 0;
}

static int is_header(const field *fields, int n) {
    double v;
    for (int i = 0; i < n; i++)
        if (parse_number(&fields[i], &v))
            return 1;
    return 0;
}

/* The field as it can be shown: at most 40 bytes, odd bytes as \xNN. */
static void printable(const field *f, char *out, size_t size) {
    size_t used = 0;
    for (size_t i = 0; i < f->len && i < 40 && used + 8 < size; i++) {
        unsigned char c = (unsigned char)f->start[i];
        if (c >= 0x20 && c < 0x7f && c != '"')
            out[used++] = (char)c;
        else
            used += (size_t)snprintf(out + used, size - used, "\\x%02x", c);
    }
    snprintf(out + used, size - used, "%s", f->len > 40 ? "..." : "");
}

static int bad_field(csv_state *s, int64_t line, const field *f, int col, const char *why) {
    char name[128], text[200];
    rt_column_name(s->d->tensors[s->col_tensor[col]], s->col_elem[col], name, sizeof name);
    printable(f, text, sizeof text);
    return rt_error("%s:%lld:%d: %s\"%s\"%s (column %d, %s)", s->path, (long long)line, f->column,
                    why ? "" : "cannot parse ", text, why ? why : " as a number", col + 1, name);
}

/* Stores field f as element `col` of sample `row`. */
static int store_field(csv_state *s, int64_t line, int64_t row, const field *f, int col) {
    int t = s->col_tensor[col];
    int64_t at = row * s->d->layouts[t].sample + s->col_elem[col];
    double v;
    if (parse_number(f, &v))
        return bad_field(s, line, f, col, NULL);
    if (s->d->tensors[t]->dtype == RT_I32) {
        if (v != floor(v) || v < INT32_MIN || v > INT32_MAX)
            return bad_field(s, line, f, col, " is not an integer, and the tensor is i32");
        ((int32_t *)s->d->data[t])[at] = (int32_t)v;
    } else {
        if (fabs(v) > FLT_MAX)
            return bad_field(s, line, f, col, " is out of range for f32");
        ((float *)s->d->data[t])[at] = (float)v;
    }
    return 0;
}

static int column_count_error(csv_state *s, int64_t line, int found) {
    int all = data_columns(s->m, RT_DATA_LABELLED);
    if (s->expect == 0 && all != s->used)
        return rt_error("%s:%lld: expected %d or %d columns, found %d", s->path, (long long)line, s->used, all, found);
    return rt_error("%s:%lld: expected %d columns, found %d", s->path, (long long)line, s->expect ? s->expect : s->used,
                    found);
}

/* In RT_DATA_INPUTS mode the first line decides whether targets are
 * present; afterwards every line must match it. */
static int check_count(csv_state *s, int64_t line, int found) {
    if (s->expect)
        return found == s->expect ? 0 : column_count_error(s, line, found);
    int all = data_columns(s->m, RT_DATA_LABELLED);
    if (found != s->used && !(s->mode == RT_DATA_INPUTS && found == all))
        return column_count_error(s, line, found);
    s->expect = found;
    return 0;
}

static int parse_line(csv_state *s, const char *line, const char *end, int64_t line_no, field *fields) {
    int max = s->expect ? s->expect : data_columns(s->m, RT_DATA_LABELLED);
    if (max < s->used)
        max = s->used;
    int n = split_fields(line, end, fields, max);
    if (check_count(s, line_no, n))
        return -1;
    if (s->lines++ == 0 && is_header(fields, n))
        return 0;
    for (int c = 0; c < s->used; c++)
        if (store_field(s, line_no, s->d->n, &fields[c], c))
            return -1;
    s->d->n++;
    return 0;
}

static int64_t count_lines(const char *text, size_t len) {
    int64_t n = 1;
    for (size_t i = 0; i < len; i++)
        n += text[i] == '\n';
    return n;
}

static void map_columns(csv_state *s) {
    s->col_tensor = rt_xcalloc((size_t)s->used + 1, sizeof *s->col_tensor);
    s->col_elem = rt_xcalloc((size_t)s->used + 1, sizeof *s->col_elem);
    int c = 0;
    for (int t = 0; t < s->d->n_tensors; t++)
        for (int64_t k = 0; k < s->d->layouts[t].sample; k++, c++) {
            s->col_tensor[c] = t;
            s->col_elem[c] = k;
        }
}

static int parse_csv(csv_state *s, const char *text, size_t len) {
    int max = data_columns(s->m, RT_DATA_LABELLED) + 1;
    field *fields = rt_xcalloc((size_t)max, sizeof *fields);
    const char *p = text, *stop = text + len;
    int64_t line_no = 0;
    int rc = 0;
    while (p < stop && rc == 0) {
        const char *nl = memchr(p, '\n', (size_t)(stop - p));
        const char *end = nl ? nl : stop;
        line_no++;
        const char *e = end;
        while (e > p && (e[-1] == '\r' || is_blank(e[-1])))
            e--;
        const char *b = p;
        while (b < e && is_blank(*b))
            b++;
        if (b < e)
            rc = parse_line(s, p, e, line_no, fields);
        p = end + 1;
    }
    free(fields);
    if (rc == 0 && s->d->n == 0)
        rc = rt_error("%s: %s", s->path, s->lines ? "no data rows (only a header)" : "empty file (no rows)");
    return rc;
}

static rt_dataset *load_csv(const rt_model *m, const char *path, int mode) {
    char *text;
    size_t len;
    if (rt_read_file(path, &text, &len))
        return NULL;
    csv_state s = {m, NULL, path, mode, 0, 0, 0, NULL, NULL};
    s.used = data_columns(m, mode);
    s.d = rt_data_new(m, mode, count_lines(text, len));
    s.d->n = 0;
    map_columns(&s);
    int rc = parse_csv(&s, text, len);
    free(text);
    free(s.col_tensor);
    free(s.col_elem);
    if (rc) {
        rt_data_free(s.d);
        return NULL;
    }
    return s.d;
}

/*
 * Dispatch
 */

typedef rt_dataset *(*loader_fn)(const rt_model *, const char *, int);

static const struct {
    const char *extension;
    loader_fn load;
} loaders[] = {
    {".csv", load_csv},
};

static int has_suffix(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcasecmp(s + n - k, suffix) == 0;
}

rt_dataset *rt_data_load(const rt_model *m, const char *path, int mode) {
    loader_fn load = load_csv; /* unknown extensions are read as CSV */
    for (size_t i = 0; i < sizeof loaders / sizeof loaders[0]; i++)
        if (has_suffix(path, loaders[i].extension))
            load = loaders[i].load;
    rt_dataset *d = load(m, path, mode);
    if (d)
        d->path = rt_xstrdup(path);
    return d;
}
