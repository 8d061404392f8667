/*
 * rt_data.c - data sets: loading lists of files into per-tensor sample
 * arrays.
 *
 * A data set is n samples of some of the model's inputs and targets, held
 * as one contiguous array per tensor (n * sample elements, f32 or i32), so
 * batching is a gather of rows whatever the files were.
 *
 * --data, --val and --input take a comma-separated list of files, matched
 * in order to the model's inputs and then its targets, in declaration
 * order.  An IDX or NPY file feeds one tensor; a CSV file feeds as many of
 * the next tensors as its columns cover, so a single CSV can hold them all
 * (as it always could).  Every file must hold the same number of samples.
 * For `predict` (RT_DATA_INPUTS) the list must cover the inputs; files or
 * columns for the targets may follow and are dropped.
 *
 * Each file is read whole through zlib, so any of them may be gzipped
 * (whatever its name: zlib looks at the content).  The format comes from
 * the name without `.gz`: `.npy` is NPY, `.idx*` or `*ubyte` is IDX,
 * `.csv` is CSV; any other name is recognised by its first bytes (NPY's
 * magic, IDX's two zero bytes) and read as CSV otherwise.
 */
#include "rt_internal.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#ifdef MDL_HAVE_ZLIB
#include <zlib.h>
#endif

/* The tensors files feed, in matching order: inputs, then targets. */
static int fed_tensor_count(const rt_model *m, int mode) {
    return m->n_inputs + (mode == RT_DATA_LABELLED ? m->n_targets : 0);
}

static const rt_tensor *fed_tensor(const rt_model *m, int i) {
    return i < m->n_inputs ? &m->inputs[i] : &m->targets[i - m->n_inputs];
}

rt_dataset *rt_data_alloc(const rt_tensor *const *tensors, int n_tensors, int64_t n) {
    rt_dataset *d = rt_xcalloc(1, sizeof *d);
    d->n = n;
    d->n_tensors = n_tensors;
    d->tensors = rt_xcalloc((size_t)n_tensors + 1, sizeof *d->tensors);
    d->layouts = rt_xcalloc((size_t)n_tensors + 1, sizeof *d->layouts);
    d->data = rt_xcalloc((size_t)n_tensors + 1, sizeof *d->data);
    for (int i = 0; i < n_tensors; i++) {
        d->tensors[i] = tensors[i];
        d->layouts[i] = rt_layout_of(tensors[i]);
        d->data[i] = rt_xcalloc((size_t)(n * d->layouts[i].sample), 4);
    }
    return d;
}

rt_dataset *rt_data_new(const rt_model *m, int mode, int64_t n) {
    int count = fed_tensor_count(m, mode);
    const rt_tensor **tensors = rt_xcalloc((size_t)count + 1, sizeof *tensors);
    for (int i = 0; i < count; i++)
        tensors[i] = fed_tensor(m, i);
    rt_dataset *d = rt_data_alloc(tensors, count, n);
    free(tensors);
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

/* Moves the last `fraction` of d's samples (Keras's validation_split:
 * d keeps the first floor(n * (1 - fraction))) into a new data set. */
rt_dataset *rt_data_split(rt_dataset *d, double fraction) {
    int64_t keep = (int64_t)((double)d->n * (1 - fraction));
    if (keep < 1 || keep >= d->n) {
        rt_error("--val-split %g of the %lld samples in %s leaves %s", fraction, (long long)d->n, d->path,
                 keep < 1 ? "nothing to train on" : "no validation samples");
        return NULL;
    }
    rt_dataset *v = rt_data_alloc(d->tensors, d->n_tensors, d->n - keep);
    for (int i = 0; i < d->n_tensors; i++)
        memcpy(v->data[i], (char *)d->data[i] + (size_t)(keep * d->layouts[i].sample) * 4,
               (size_t)(v->n * d->layouts[i].sample) * 4);
    rt_data_truncate(d, keep);
    size_t size = strlen(d->path) + 64;
    v->path = rt_xmalloc(size);
    snprintf(v->path, size, "the last %g%% of %s", 100 * fraction, d->path);
    return v;
}

/* The index of t among d's tensors, or -1. */
int rt_data_find(const rt_dataset *d, const rt_tensor *t) {
    for (int i = 0; i < d->n_tensors; i++)
        if (d->tensors[i] == t)
            return i;
    return -1;
}

/* Fills every f32 tensor with N(0, 1) and every i32 one the model uses as
 * labels or indices uniformly from [0, index_range); other i32 tensors
 * need real data. */
int rt_data_random(rt_dataset *d, rt_rng *r) {
    for (int i = 0; i < d->n_tensors; i++) {
        const rt_tensor *t = d->tensors[i];
        int64_t count = d->n * d->layouts[i].sample;
        if (t->dtype == RT_I32 && t->index_range <= 0)
            return rt_error("\"%s\" is i32 and not used as class labels or indices, so it cannot be drawn at "
                            "random: pass --data FILE",
                            t->name);
        if (t->dtype == RT_I32) {
            int32_t *v = d->data[i];
            for (int64_t k = 0; k < count; k++)
                v[k] = (int32_t)rt_rng_below(r, (uint64_t)t->index_range);
            continue;
        }
        float *x = d->data[i];
        for (int64_t k = 0; k < count; k++)
            x[k] = (float)rt_rng_normal(r);
    }
    return 0;
}

/*
 * Binary elements
 */

/* "60000 x 28 x 28" */
void rt_dims_string(const int64_t *dims, int rank, char *buf, size_t size) {
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < rank && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%lld", i ? " x " : "", (long long)dims[i]);
}

/* A file holding dims[0] samples of dims[1..rank) each must match t's
 * per-sample element count (the shape itself may differ: [N, 28, 28]
 * feeds f32[B, 784] as well as f32[B, 28, 28]). */
int rt_data_check_sample(const char *path, const int64_t *dims, int rank, const rt_tensor *t) {
    int64_t per = 1;
    for (int i = 1; i < rank; i++)
        per *= dims[i];
    int64_t want = rt_layout_of(t).sample;
    if (dims[0] < 1)
        return rt_error("%s: holds no samples (its first dimension is 0)", path);
    if (per == want)
        return 0;
    char have[160], shape[128];
    if (rank > 1) {
        rt_dims_string(dims + 1, rank - 1, shape, sizeof shape);
        snprintf(have, sizeof have, "%s (%lld values)", shape, (long long)per);
    } else {
        snprintf(have, sizeof have, "a single value");
    }
    rt_shape_string(t, shape, sizeof shape);
    return rt_error("%s: each sample is %s, but \"%s\" %s%s takes %lld per sample", path, have, t->name,
                    rt_dtype_name(t->dtype), shape, (long long)want);
}

static uint64_t read_uint(const unsigned char *p, int size, int big_endian) {
    uint64_t v = 0;
    for (int i = 0; i < size; i++)
        v |= (uint64_t)p[big_endian ? size - 1 - i : i] << (8 * i);
    return v;
}

/* Element k of src as a double (exact for every integer up to 2^53). */
static double read_elem(const unsigned char *p, rt_elem_type type) {
    uint64_t bits = read_uint(p, type.size, type.big_endian);
    switch (type.kind) {
    case RT_ELEM_BOOL: return bits != 0;
    case RT_ELEM_UINT: return (double)bits;
    case RT_ELEM_INT: {
        int shift = 64 - 8 * type.size;
        return (double)((int64_t)(bits << shift) >> shift);
    }
    default:
        if (type.size == 4) {
            uint32_t b32 = (uint32_t)bits;
            float f;
            memcpy(&f, &b32, 4);
            return f;
        } else {
            double f;
            memcpy(&f, &bits, 8);
            return f;
        }
    }
}

static int bad_value(const char *path, const rt_dataset *d, int tensor, int64_t k, double v, const char *why) {
    const rt_tensor *t = d->tensors[tensor];
    int64_t sample = d->layouts[tensor].sample;
    char name[160];
    rt_column_name(t, k % sample, name, sizeof name);
    return rt_error("%s: value %.9g of sample %lld (%s) %s", path, v, (long long)(k / sample), name, why);
}

/* Converts d->n samples of tensor `tensor` from src, elements of `type`. */
rt_dataset *rt_data_from_array(const char *path, const unsigned char *data, size_t have, rt_elem_type type,
                               const int64_t *dims, int rank, int64_t total, const rt_tensor *t) {
    if (rt_data_check_sample(path, dims, rank, t))
        return NULL;
    char shape[256];
    rt_dims_string(dims, rank, shape, sizeof shape);
    size_t want = (size_t)total * (size_t)type.size;
    if (have < want) {
        rt_error("%s: truncated: the header says %s %s (%zu bytes of data), the file has %zu", path, shape, type.name,
                 want, have);
        return NULL;
    }
    if (have > want) {
        rt_error("%s: %zu bytes after the %s %s data its header describes", path, have - want, shape, type.name);
        return NULL;
    }
    rt_dataset *d = rt_data_alloc(&t, 1, dims[0]);
    if (rt_data_convert(path, data, type, d, 0)) {
        rt_data_free(d);
        return NULL;
    }
    return d;
}

int rt_data_convert(const char *path, const unsigned char *src, rt_elem_type type, rt_dataset *d, int tensor) {
    const rt_tensor *t = d->tensors[tensor];
    int64_t count = d->n * d->layouts[tensor].sample;
    if (type.kind == RT_ELEM_UINT && type.size == 1) { /* images and labels: the common case, fast */
        if (t->dtype == RT_I32)
            for (int64_t k = 0; k < count; k++)
                ((int32_t *)d->data[tensor])[k] = src[k];
        else
            for (int64_t k = 0; k < count; k++)
                ((float *)d->data[tensor])[k] = src[k];
        return 0;
    }
    for (int64_t k = 0; k < count; k++) {
        double v = read_elem(src + (size_t)k * (size_t)type.size, type);
        if (!isfinite(v))
            return bad_value(path, d, tensor, k, v, "is not a finite number");
        if (t->dtype == RT_I32) {
            if (v != floor(v) || v < INT32_MIN || v > INT32_MAX) {
                char why[128];
                snprintf(why, sizeof why, "is not an integer in i32's range, and \"%s\" is i32", t->name);
                return bad_value(path, d, tensor, k, v, why);
            }
            ((int32_t *)d->data[tensor])[k] = (int32_t)v;
        } else {
            if (fabs(v) > FLT_MAX)
                return bad_value(path, d, tensor, k, v, "is out of range for f32");
            ((float *)d->data[tensor])[k] = (float)v;
        }
    }
    return 0;
}

/*
 * Reading a whole file, gzipped or not
 */

#ifdef MDL_HAVE_ZLIB
/* zlib's messages start with the path; ours already name it. */
static const char *zlib_message(gzFile f, const char *path, int *err) {
    const char *msg = gzerror(f, err);
    size_t n = strlen(path);
    if (strncmp(msg, path, n) == 0 && strncmp(msg + n, ": ", 2) == 0)
        msg += n + 2;
    return msg;
}

static int read_data_file(const char *path, char **data, size_t *len) {
    int is_stdin = strcmp(path, "-") == 0;
    int fd = is_stdin ? dup(STDIN_FILENO) : -1;
    gzFile f = is_stdin ? (fd >= 0 ? gzdopen(fd, "rb") : NULL) : gzopen(path, "rb");
    if (!f) {
        if (fd >= 0)
            close(fd);
        return rt_error("cannot open %s: %s", path, errno ? strerror(errno) : "out of memory");
    }
    gzbuffer(f, 1 << 17);
    rt_buf b = {0};
    char *chunk = rt_xmalloc(1 << 20);
    int got;
    errno = 0;
    while ((got = gzread(f, chunk, 1 << 20)) > 0)
        rt_buf_add(&b, chunk, (size_t)got);
    free(chunk);
    int err, saved_errno = errno;
    const char *msg = zlib_message(f, path, &err);
    int rc = 0;
    if (err == Z_ERRNO)
        rc = rt_error("cannot read %s: %s", path, strerror(saved_errno));
    else if (err == Z_BUF_ERROR)
        rc = rt_error("%s: truncated gzip data (%s)", path, msg);
    else if (err != Z_OK)
        rc = rt_error("%s: corrupt gzip data (%s)", path, msg);
    gzclose_r(f);
    if (rc) {
        free(b.data);
        return -1;
    }
    rt_buf_add(&b, "", 1);
    *data = b.data;
    *len = b.len - 1;
    return 0;
}
#else
static int read_data_file(const char *path, char **data, size_t *len) {
    if (rt_read_file(path, data, len))
        return -1;
    if (*len >= 2 && (unsigned char)(*data)[0] == 0x1f && (unsigned char)(*data)[1] == 0x8b) {
        free(*data);
        return rt_error("%s is gzipped, but this runtime was built without zlib: gunzip it first", path);
    }
    return 0;
}
#endif

/*
 * Formats
 */

enum { FMT_CSV, FMT_IDX, FMT_NPY };

static int has_suffix(const char *s, size_t n, const char *suffix) {
    size_t k = strlen(suffix);
    return n >= k && strncasecmp(s + n - k, suffix, k) == 0;
}

/* By name (without .gz), else by content. */
static int detect_format(const char *path, const unsigned char *buf, size_t len) {
    size_t n = strlen(path);
    if (has_suffix(path, n, ".gz"))
        n -= 3;
    if (has_suffix(path, n, ".npy"))
        return FMT_NPY;
    if (has_suffix(path, n, "ubyte") || has_suffix(path, n, ".idx"))
        return FMT_IDX;
    for (char c = '1'; c <= '9'; c++) {
        char ext[] = {'.', 'i', 'd', 'x', c, '\0'};
        if (has_suffix(path, n, ext))
            return FMT_IDX;
    }
    if (has_suffix(path, n, ".csv"))
        return FMT_CSV;
    if (len >= 6 && memcmp(buf, "\x93NUMPY", 6) == 0)
        return FMT_NPY;
    if (len >= 4 && buf[0] == 0 && buf[1] == 0) /* no text starts with two NULs */
        return FMT_IDX;
    return FMT_CSV;
}

/*
 * File lists
 */

/* Splits "a,b,c" into paths; an empty name is an error. */
static char **split_list(const char *files, int *count) {
    int n = 1;
    for (const char *p = files; *p; p++)
        n += *p == ',';
    char **paths = rt_xcalloc((size_t)n + 1, sizeof *paths);
    const char *s = files;
    for (int i = 0; i < n; i++) {
        const char *e = strchr(s, ',');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (len == 0) {
            rt_error("empty file name in the list \"%s\" (files are separated by commas)", files);
            for (int j = 0; j < i; j++)
                free(paths[j]);
            free(paths);
            return NULL;
        }
        paths[i] = rt_xmalloc(len + 1);
        memcpy(paths[i], s, len);
        paths[i][len] = '\0';
        s = e ? e + 1 : s + len;
    }
    *count = n;
    return paths;
}

/* Appends part's tensors to d (taking its arrays); frees part. */
static void absorb(rt_dataset *d, rt_dataset *part) {
    int n = d->n_tensors + part->n_tensors;
    d->tensors = rt_xrealloc(d->tensors, ((size_t)n + 1) * sizeof *d->tensors);
    d->layouts = rt_xrealloc(d->layouts, ((size_t)n + 1) * sizeof *d->layouts);
    d->data = rt_xrealloc(d->data, ((size_t)n + 1) * sizeof *d->data);
    for (int i = 0; i < part->n_tensors; i++) {
        d->tensors[d->n_tensors + i] = part->tensors[i];
        d->layouts[d->n_tensors + i] = part->layouts[i];
        d->data[d->n_tensors + i] = part->data[i];
    }
    d->n_tensors = n;
    part->n_tensors = 0;
    rt_data_free(part);
}

/* Drops tensors from index `from` on (a predict input's targets). */
static void drop_from(rt_dataset *d, int from) {
    for (int i = from; i < d->n_tensors; i++)
        free(d->data[i]);
    if (from < d->n_tensors)
        d->n_tensors = from;
}

typedef struct list_state {
    const rt_model *m;
    const char *files;
    int mode;
    const rt_tensor **all; /* inputs, then targets */
    int n_all, required, keep;
    int at;            /* the next tensor to feed */
    rt_dataset *d;     /* what is loaded so far */
    const char *first; /* the file that set d->n */
} list_state;

/* The names of all the tensors, for messages: "image, label". */
static void tensor_names(const list_state *s, char *buf, size_t size) {
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < s->n_all && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%s", i ? ", " : "", s->all[i]->name);
}

static int load_one(list_state *s, const char *path, int last) {
    if (s->at >= s->n_all) {
        char names[256];
        tensor_names(s, names, sizeof names);
        return rt_error("%s: one file too many: the files before it already feed every input and target (%s)", path,
                        names);
    }
    char *text = NULL;
    size_t len = 0;
    if (read_data_file(path, &text, &len))
        return -1;
    const unsigned char *buf = (const unsigned char *)text;
    int format = detect_format(path, buf, len), covered = 1;
    rt_dataset *part;
    if (format == FMT_CSV) {
        int min_cover = last && s->required - s->at > 1 ? s->required - s->at : 1;
        rt_feed f = {path, s->all + s->at, s->n_all - s->at, min_cover, s->keep > s->at ? s->keep - s->at : 0};
        part = rt_csv_parse(&f, text, len, &covered);
    } else {
        const rt_tensor *t = s->all[s->at];
        part = format == FMT_IDX ? rt_idx_parse(path, buf, len, t) : rt_npy_parse(path, buf, len, t);
        if (part && s->at >= s->keep)
            drop_from(part, 0);
    }
    free(text);
    if (!part)
        return -1;
    if (!s->first) {
        s->d->n = part->n;
        s->first = path;
    } else if (part->n != s->d->n) {
        int64_t n = part->n;
        rt_data_free(part);
        return rt_error("%s: %lld samples, but %s has %lld", path, (long long)n, s->first, (long long)s->d->n);
    }
    absorb(s->d, part);
    s->at += covered;
    return 0;
}

rt_dataset *rt_data_load(const rt_model *m, const char *files, int mode) {
    int n_paths;
    char **paths = split_list(files, &n_paths);
    if (!paths)
        return NULL;
    list_state s = {m, files, mode, NULL, 0, 0, 0, 0, NULL, NULL};
    s.n_all = m->n_inputs + m->n_targets;
    s.all = rt_xcalloc((size_t)s.n_all + 1, sizeof *s.all);
    for (int i = 0; i < s.n_all; i++)
        s.all[i] = fed_tensor(m, i);
    s.required = s.keep = fed_tensor_count(m, mode);
    s.d = rt_data_alloc(NULL, 0, 0);
    int rc = 0;
    for (int i = 0; i < n_paths && rc == 0; i++)
        rc = load_one(&s, paths[i], i == n_paths - 1);
    if (rc == 0 && s.at < s.required) {
        const rt_tensor *t = s.all[s.at];
        char names[256];
        tensor_names(&s, names, sizeof names);
        rc = rt_error("%s: no file for %s \"%s\": list one file per input and target, comma-separated, in "
                      "declaration order (%s)",
                      paths[n_paths - 1], s.at < m->n_inputs ? "input" : "target", t->name, names);
    }
    for (int i = 0; i < n_paths; i++)
        free(paths[i]);
    free(paths);
    free(s.all);
    if (rc) {
        rt_data_free(s.d);
        return NULL;
    }
    s.d->path = rt_xstrdup(files);
    return s.d;
}
