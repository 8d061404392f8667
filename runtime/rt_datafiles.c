/*
 * rt_datafiles.c - loading a data set from a list of files.
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
 * magic, IDX's two zero bytes) and read as CSV otherwise.  The formats
 * themselves are rt_csv.c's, rt_idx.c's and rt_npy.c's.  A `.tsv` file
 * for a model that takes labelled text is rt_labels.c's, read through its
 * own words (train, eval and predict read it through a checkpoint's
 * instead, and do not come here).
 */
#include "rt_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#ifdef MDL_HAVE_ZLIB
#include <zlib.h>
#endif

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

int rt_read_data_file(const char *path, char **data, size_t *len) {
    int is_stdin = strcmp(path, "-") == 0;
    int fd = is_stdin ? dup(STDIN_FILENO) : -1;
    gzFile f = is_stdin ? (fd >= 0 ? gzdopen(fd, "rb") : NULL) : gzopen(path, "rb");
    if (!f) {
        if (fd >= 0)
            close(fd);
        return rt_error("cannot open %s: %s", path, errno ? strerror(errno) : "out of memory");
    }
    gzbuffer(f, 1 << 17);
    /* straight into the buffer, which doubles as it fills */
    rt_buf b = {0};
    int got;
    errno = 0;
    do {
        if (b.cap - b.len < (1 << 20)) {
            b.cap = b.cap ? 2 * b.cap : 1 << 20;
            b.data = rt_xrealloc(b.data, b.cap);
        }
        size_t room = b.cap - b.len < (1u << 30) ? b.cap - b.len : 1u << 30;
        got = gzread(f, b.data + b.len, (unsigned)room);
        if (got > 0)
            b.len += (size_t)got;
    } while (got > 0);
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
int rt_read_data_file(const char *path, char **data, size_t *len) {
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
    d->stores = rt_xrealloc(d->stores, ((size_t)n + 1) * sizeof *d->stores);
    for (int i = 0; i < part->n_tensors; i++) {
        d->tensors[d->n_tensors + i] = part->tensors[i];
        d->layouts[d->n_tensors + i] = part->layouts[i];
        d->data[d->n_tensors + i] = part->data[i];
        d->stores[d->n_tensors + i] = part->stores[i];
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
    if (rt_read_data_file(path, &text, &len))
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
        /* u8 arrays keep text as their storage (then NULL) */
        part = format == FMT_IDX ? rt_idx_read(path, &text, len, t) : rt_npy_read(path, &text, len, t);
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
    if (rt_labels_applies(m, files)) {
        rt_lexicon *own = NULL;
        rt_dataset *d = rt_labels_load(m, files, mode, &own, NULL);
        rt_lexicon_free(own);
        return d;
    }
    int n_paths;
    char **paths = split_list(files, &n_paths);
    if (!paths)
        return NULL;
    list_state s = {m, files, mode, NULL, 0, 0, 0, 0, NULL, NULL};
    s.n_all = m->n_inputs + m->n_targets;
    s.all = rt_xcalloc((size_t)s.n_all + 1, sizeof *s.all);
    for (int i = 0; i < s.n_all; i++)
        s.all[i] = rt_fed_tensor(m, i);
    s.required = s.keep = rt_fed_tensor_count(m, mode);
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
