/*
 * rt_csv.c - CSV data files.
 *
 * Layout: for each tensor the file feeds, in order, its per-sample
 * elements flattened row-major (a [B, 2] input is 2 columns, a [B] input
 * 1).  A file feeds the next tensors of the list it is in (rt_datafiles.c); how
 * many is decided by the first line's column count, which must cover at
 * least `min_cover` of them exactly.  Columns of tensors past `keep` (a
 * predict input's targets) are counted but not parsed.
 *
 * A file named `.tsv` (or `.tsv.gz`) is the same with tabs between the
 * fields instead of commas.
 *
 * The first non-blank line is a header if any of its fields is not a
 * number.  Blank lines are skipped, fields may be padded with spaces or
 * wrapped in double quotes.  Every problem is reported as FILE:LINE[:COL]
 * with what was expected.
 */
#include "rt_internal.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct csv_state {
    const rt_feed *f;
    rt_dataset *d;
    int64_t *prefix;   /* prefix[u]: the columns of tensors[0..u) */
    int expect;        /* columns per line, once known; 0 before */
    int covered;       /* tensors the file feeds, once known */
    int used;          /* columns that are parsed and stored */
    int lines;         /* non-blank lines seen: only the first can be a header */
    char sep;          /* ',' or, in a .tsv file, '\t' */
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

/* Splits [line, end) at sep; returns the number of fields found (it may
 * exceed max, only the first max are stored). */
static int split_fields(const char *line, const char *end, char sep, field *out, int max) {
    int n = 0;
    const char *s = line;
    for (;;) {
        const char *e = s;
        while (e < end && *e != sep)
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
    return rt_error("%s:%lld:%d: %s\"%s\"%s (column %d, %s)", s->f->path, (long long)line, f->column,
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

/* "3", "3 or 4", "3, 4 or 5": the column counts a first line may have. */
static void allowed_counts(const csv_state *s, char *buf, size_t size) {
    size_t used = 0;
    buf[0] = '\0';
    for (int u = s->f->min_cover; u <= s->f->n && used < size; u++) {
        const char *sep = u == s->f->min_cover ? "" : u == s->f->n ? " or " : ", ";
        used += (size_t)snprintf(buf + used, size - used, "%s%lld", sep, (long long)s->prefix[u]);
    }
}

/* The first line decides how many tensors the file feeds; afterwards
 * every line must have as many columns. */
static int check_count(csv_state *s, int64_t line, int found) {
    if (s->expect) {
        if (found == s->expect)
            return 0;
        return rt_error("%s:%lld: expected %d columns, found %d", s->f->path, (long long)line, s->expect, found);
    }
    for (int u = s->f->min_cover; u <= s->f->n; u++)
        if (s->prefix[u] == found) {
            int stored = u < s->f->keep ? u : s->f->keep;
            s->expect = found;
            s->covered = u;
            s->used = (int)s->prefix[stored];
            return 0;
        }
    char counts[128];
    allowed_counts(s, counts, sizeof counts);
    return rt_error("%s:%lld: expected %s columns, found %d", s->f->path, (long long)line, counts, found);
}

static int parse_line(csv_state *s, const char *line, const char *end, int64_t line_no, field *fields) {
    int max = s->expect ? s->expect : (int)s->prefix[s->f->n];
    int n = split_fields(line, end, s->sep, fields, max);
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
    int64_t columns = s->prefix[s->d->n_tensors];
    s->col_tensor = rt_xcalloc((size_t)columns + 1, sizeof *s->col_tensor);
    s->col_elem = rt_xcalloc((size_t)columns + 1, sizeof *s->col_elem);
    int64_t c = 0;
    for (int t = 0; t < s->d->n_tensors; t++)
        for (int64_t k = 0; k < s->d->layouts[t].sample; k++, c++) {
            s->col_tensor[c] = t;
            s->col_elem[c] = k;
        }
}

static int parse_text(csv_state *s, const char *text, size_t len) {
    field *fields = rt_xcalloc((size_t)s->prefix[s->f->n] + 1, sizeof *fields);
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
        rc = rt_error("%s: %s", s->f->path, s->lines ? "no data rows (only a header)" : "empty file (no rows)");
    return rc;
}

rt_dataset *rt_csv_parse(const rt_feed *f, const char *text, size_t len, int *covered) {
    csv_state s;
    memset(&s, 0, sizeof s);
    s.f = f;
    size_t name = strlen(f->path);
    if (name > 3 && strcmp(f->path + name - 3, ".gz") == 0)
        name -= 3;
    s.sep = name > 4 && strncmp(f->path + name - 4, ".tsv", 4) == 0 ? '\t' : ',';
    s.prefix = rt_xcalloc((size_t)f->n + 1, sizeof *s.prefix);
    for (int u = 0; u < f->n; u++)
        s.prefix[u + 1] = s.prefix[u] + rt_layout_of(f->tensors[u]).sample;
    s.d = rt_data_alloc(f->tensors, f->keep < f->n ? f->keep : f->n, count_lines(text, len));
    s.d->n = 0;
    map_columns(&s);
    int rc = parse_text(&s, text, len);
    free(s.prefix);
    free(s.col_tensor);
    free(s.col_elem);
    if (rc) {
        rt_data_free(s.d);
        return NULL;
    }
    /* Tensors the file turned out not to feed. */
    for (int t = s.covered; t < s.d->n_tensors; t++)
        free(s.d->data[t]);
    if (s.covered < s.d->n_tensors)
        s.d->n_tensors = s.covered;
    *covered = s.covered;
    return s.d;
}
