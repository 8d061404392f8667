/*
 * rt_ckpt.c - checkpoints in the safetensors format.
 *
 * File layout (https://github.com/huggingface/safetensors): an unsigned
 * 64-bit little-endian header length N, N bytes of JSON, then the tensor
 * bytes.  The JSON maps each tensor name to {"dtype", "shape",
 * "data_offsets": [begin, end]} with offsets relative to the byte buffer
 * after the header, plus "__metadata__" (string values only).  We write
 * every rt_param, trainable, optimizer state and recurrent state (at
 * max_batch rows where it has a batch dimension), in descriptor order,
 * little-endian, and pad the header with spaces to a multiple of 8 bytes.
 * A model trained on a text file also gets its vocabulary in the metadata
 * as "mdl.vocab": a string of the byte values in order (a token's id is its
 * position), each written as the code point of the same number, so bytes
 * 0x80-0xff are U+0080-U+00FF and the header stays valid UTF-8.
 * A checkpoint saved by training records the hyper-parameter values it
 * was trained with as "mdl.hypers": a JSON object encoded as a string
 * (metadata values must be strings), {"lam":0.001,"lr":0.03}, each value
 * the shortest decimal that reads back as its f32; the runtime's own hypers
 * (training, step, ...) are left out.  `train --resume` takes them back;
 * loading otherwise ignores them.  Such a checkpoint also says where the
 * run stood, for `train --resume`, as "mdl.run" (rt_resume.c).
 * A recommender's user and item ids are there too (rt_ratings.c's
 * "mdl.users", "mdl.items", "mdl.rated").
 * One trained on labelled text (rt_labels.c) gets "mdl.words", its words
 * in id order separated by spaces, and "mdl.classes", its class names
 * separated by newlines.
 *
 * Every tensor's bytes (as stored: little-endian) have their CRC-32 in
 * the metadata as "mdl.crc32.NAME" (8 hex digits), and the other metadata
 * entries theirs as "mdl.crc32": the CRC-32 of each key and value, in file
 * order, each followed by a NUL byte.  Loading checks them all before it
 * touches a parameter, and a mismatch names the tensor (or the metadata).
 * A file without any "mdl.crc32" entries (written by another program, or
 * by an mdl before them) loads unchecked.  "source" is the base name of
 * the .mdl file and "source_hash" a hash of its text (never a path).
 *
 * Saving never loses an existing checkpoint: we write a temporary file in
 * the same directory, fsync it, read it back and compare, and only then
 * rename() it over the target, which is atomic on POSIX file systems.
 *
 * Loading treats the file as hostile: every length and offset is checked
 * against the file before use, the whole file is validated before a single
 * parameter is touched, and every problem is one line naming the file and
 * what is wrong.  A trainable parameter missing from the file is an error;
 * missing optimizer state is allowed: it keeps its initial value, which is
 * zero (RT_INIT_NONE), and a note says so: one note when the file has no
 * optimizer state at all (weights from elsewhere), one per tensor otherwise.
 */
#include "rt_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef MDL_HAVE_ZLIB
#include <zlib.h>
#endif

/* The reference implementation refuses headers above 100 MB too. */
#define RT_MAX_HEADER ((uint64_t)100 << 20)

/* Swaps 4-byte words in place on a big-endian host; a no-op elsewhere.
 * Applying it twice restores the host order, so it serves both ways. */
static void to_little_endian(void *data, size_t n_words) {
    const uint32_t probe = 1;
    if (*(const unsigned char *)&probe == 1)
        return;
    unsigned char *p = data;
    for (size_t i = 0; i < n_words; i++, p += 4) {
        unsigned char t0 = p[0], t1 = p[1];
        p[0] = p[3];
        p[1] = p[2];
        p[2] = t1;
        p[3] = t0;
    }
}

/* The CRC-32 of ISO 3309 / zlib, continued from crc (0 to start). */
uint32_t rt_crc32(uint32_t crc, const void *data, size_t n) {
#ifdef MDL_HAVE_ZLIB
    const unsigned char *p = data;
    while (n > 0) { /* zlib counts in uInt */
        uInt chunk = n > (1u << 30) ? 1u << 30 : (uInt)n;
        crc = (uint32_t)crc32(crc, p, chunk);
        p += chunk;
        n -= chunk;
    }
    return crc;
#else
    /* bitwise: only a runtime built without zlib comes here */
    const unsigned char *p = data;
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int b = 0; b < 8; b++)
            crc = crc >> 1 ^ (0xedb88320u & -(crc & 1));
    }
    return ~crc;
#endif
}

#define CRC_KEY "mdl.crc32"

/* Metadata entries other than the checksums, as "mdl.crc32" covers them. */
static uint32_t metadata_crc(const rt_json *metadata) {
    uint32_t crc = 0;
    for (int i = 0; i < metadata->n; i++) {
        if (strncmp(metadata->keys[i], CRC_KEY, strlen(CRC_KEY)) == 0)
            continue;
        crc = rt_crc32(crc, metadata->keys[i], strlen(metadata->keys[i]) + 1);
        crc = rt_crc32(crc, metadata->items[i]->text, metadata->items[i]->len);
        crc = rt_crc32(crc, "", 1);
    }
    return crc;
}

/*
 * Writing
 */

static const char *st_dtype(int dtype) { return dtype == RT_I32 ? "I32" : "F32"; }

static void put_u64_le(rt_buf *b, uint64_t v) {
    unsigned char bytes[8];
    for (int i = 0; i < 8; i++)
        bytes[i] = (unsigned char)(v >> (8 * i));
    rt_buf_add(b, bytes, 8);
}

/* Appends s as a JSON string literal. */
static void put_json_string(rt_buf *b, const char *s) {
    rt_buf_add(b, "\"", 1);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            rt_buf_printf(b, "\\%c", c);
        else if (c < 0x20)
            rt_buf_printf(b, "\\u%04x", c);
        else
            rt_buf_add(b, s, 1);
    }
    rt_buf_add(b, "\"", 1);
}

/* The vocabulary as a JSON string: one code point per byte value. */
static void put_vocab(rt_buf *b, const rt_vocab *v) {
    rt_buf_add(b, "\"", 1);
    for (int i = 0; i < v->n; i++) {
        unsigned char c = v->bytes[i];
        if (c == '"' || c == '\\')
            rt_buf_printf(b, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            rt_buf_printf(b, "\\u%04x", c);
        else
            rt_buf_add(b, &c, 1);
    }
    rt_buf_add(b, "\"", 1);
}

/* Labelled text's words and class names. */
static void put_lexicon(rt_buf *b, const rt_lexicon *x) {
    char *words = rt_lexicon_join(x->words, x->n_words, ' ');
    char *classes = rt_lexicon_join(x->classes, x->n_classes, '\n');
    rt_buf_printf(b, ",\"mdl.words\":");
    put_json_string(b, words);
    rt_buf_printf(b, ",\"mdl.classes\":");
    put_json_string(b, classes);
    free(words);
    free(classes);
}

/* generate_step's caches are rebuilt from the prime: not saved */
static int saved(const rt_param *p) { return p->state != 2; }

/* "mdl.hypers": the model's own hypers as a JSON object, in a string. */
static void put_hypers(rt_buf *b, const rt_model *m, const float *values) {
    rt_buf json = {0};
    rt_buf_printf(&json, "{");
    for (int i = 0, k = 0; i < m->n_hypers; i++)
        if (!rt_hyper_is_runtime(m->hypers[i].name)) {
            rt_buf_printf(&json, "%s", k++ ? "," : "");
            put_json_string(&json, m->hypers[i].name);
            char value[32];
            rt_format_f32(values[i], value, sizeof value);
            rt_buf_printf(&json, ":%s", value);
        }
    rt_buf_printf(&json, "}");
    rt_buf_printf(b, ",\"mdl.hypers\":");
    put_json_string(b, json.data);
    free(json.data);
}

/* The base name of a path (the source's directory stays private). */
static const char *base_name(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* Closes the metadata object begun at h->data + begin with its checksum. */
static void put_metadata_crc(rt_buf *h, size_t begin) {
    rt_buf copy = {0};
    rt_buf_add(&copy, h->data + begin, h->len - begin);
    rt_buf_add(&copy, "}", 1);
    char msg[128];
    size_t at = 0;
    rt_json *metadata = rt_json_parse(copy.data, copy.len, &at, msg, sizeof msg);
    if (!metadata) { /* we wrote it: a bug, never the user's input */
        fprintf(stderr, "internal error: a checkpoint's own metadata does not parse at byte %zu: %s\n", at, msg);
        abort();
    }
    rt_buf_printf(h, ",\"" CRC_KEY "\":\"%08x\"}", metadata_crc(metadata));
    rt_json_free(metadata);
    free(copy.data);
}

/* data: the tensors as stored, in order, for their checksums. */
static void write_header(const rt_model *m, const rt_ckpt_meta *meta, const rt_buf *data, rt_buf *h) {
    rt_buf_printf(h, "{\"__metadata__\":");
    size_t metadata_begin = h->len;
    rt_buf_printf(h, "{\"format\":\"mdl\",\"model\":");
    put_json_string(h, m->name);
    rt_buf_printf(h, ",\"source\":");
    put_json_string(h, m->source ? base_name(m->source) : "");
    if (m->source_hash) {
        rt_buf_printf(h, ",\"source_hash\":");
        put_json_string(h, m->source_hash);
    }
    if (meta && meta->vocab && meta->vocab->n > 0) {
        rt_buf_printf(h, ",\"mdl.vocab\":");
        put_vocab(h, meta->vocab);
    }
    if (meta && meta->hypers)
        put_hypers(h, m, meta->hypers);
    if (meta && meta->run) {
        rt_buf_printf(h, ",\"mdl.run\":");
        put_json_string(h, meta->run);
    }
    rt_ratings_write_metadata(h);
    if (meta && meta->vocab && meta->vocab->lexicon)
        put_lexicon(h, meta->vocab->lexicon);
    uint64_t offset = 0;
    for (int i = 0; i < m->n_params; i++) {
        const rt_tensor *t = &m->params[i].t;
        if (!saved(&m->params[i]))
            continue;
        uint64_t bytes = (uint64_t)rt_bytes(t, m->max_batch);
        rt_buf_printf(h, ",");
        rt_buf key = {0};
        rt_buf_printf(&key, CRC_KEY ".%s", t->name);
        put_json_string(h, key.data);
        free(key.data);
        rt_buf_printf(h, ":\"%08x\"", rt_crc32(0, data->data + offset, (size_t)bytes));
        offset += bytes;
    }
    put_metadata_crc(h, metadata_begin);
    offset = 0;
    for (int i = 0; i < m->n_params; i++) {
        const rt_tensor *t = &m->params[i].t;
        if (!saved(&m->params[i]))
            continue;
        rt_buf_printf(h, ",");
        put_json_string(h, t->name);
        rt_buf_printf(h, ":{\"dtype\":\"%s\",\"shape\":[", st_dtype(t->dtype));
        for (int d = 0; d < t->rank; d++)
            rt_buf_printf(h, "%s%lld", d ? "," : "", (long long)t->dims[d]);
        uint64_t bytes = (uint64_t)rt_bytes(t, m->max_batch);
        rt_buf_printf(h, "],\"data_offsets\":[%llu,%llu]}", (unsigned long long)offset,
                      (unsigned long long)(offset + bytes));
        offset += bytes;
    }
    rt_buf_printf(h, "}");
    while (h->len % 8 != 0)
        rt_buf_add(h, " ", 1);
}

/* The complete file image; meta may be NULL. */
void rt_ckpt_serialize_meta(const rt_model *m, const char *arena, const rt_ckpt_meta *meta, rt_buf *out) {
    rt_buf data = {0};
    for (int i = 0; i < m->n_params; i++) {
        const rt_tensor *t = &m->params[i].t;
        if (!saved(&m->params[i]))
            continue;
        size_t at = data.len, bytes = (size_t)rt_bytes(t, m->max_batch);
        rt_buf_add(&data, arena + t->offset, bytes);
        to_little_endian(data.data + at, bytes / 4);
    }
    rt_buf header = {0};
    write_header(m, meta, &data, &header);
    put_u64_le(out, header.len);
    rt_buf_add(out, header.data, header.len);
    rt_buf_add(out, data.data, data.len);
    free(header.data);
    free(data.data);
}

void rt_ckpt_serialize(const rt_model *m, const char *arena, rt_buf *out) {
    rt_ckpt_serialize_meta(m, arena, NULL, out);
}

static int write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* Writes the image to a fresh temporary file and checks it on disk. */
static int write_temporary(const char *path, const char *tmp, int fd, const rt_buf *image) {
    mode_t mask = umask(0); /* mkstemp makes 0600; give the usual mode */
    umask(mask);
    if (fchmod(fd, 0666 & ~mask) || write_all(fd, image->data, image->len) || fsync(fd)) {
        int e = errno;
        close(fd);
        return rt_error("cannot save %s: writing %s: %s", path, tmp, strerror(e));
    }
    if (close(fd))
        return rt_error("cannot save %s: closing %s: %s", path, tmp, strerror(errno));
    char *back;
    size_t len;
    if (rt_read_file(tmp, &back, &len))
        return -1;
    int same = len == image->len && memcmp(back, image->data, len) == 0;
    free(back);
    if (!same)
        return rt_error("cannot save %s: %s did not read back as written", path, tmp);
    return 0;
}

/* Makes the rename durable; failure here loses nothing, so it is quiet. */
static void sync_directory(const char *path) {
    char *dir = rt_xstrdup(path);
    char *slash = strrchr(dir, '/');
    if (slash)
        slash[slash == dir ? 1 : 0] = '\0';
    int fd = open(slash ? dir : ".", O_RDONLY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(dir);
}

int rt_ckpt_save_meta(const rt_model *m, const char *arena, const rt_ckpt_meta *meta, const char *path) {
    rt_buf image = {0};
    rt_ckpt_serialize_meta(m, arena, meta, &image);
    size_t n = strlen(path);
    char *tmp = rt_xmalloc(n + 16);
    snprintf(tmp, n + 16, "%s.tmp.XXXXXX", path);
    int rc = -1;
    int fd = mkstemp(tmp);
    if (fd < 0)
        rt_error("cannot save %s: cannot create a temporary file next to it: %s", path, strerror(errno));
    else if (write_temporary(path, tmp, fd, &image) == 0) {
        if (rename(tmp, path) == 0)
            rc = 0;
        else
            rt_error("cannot save %s: renaming %s over it: %s", path, tmp, strerror(errno));
    }
    if (fd >= 0 && rc != 0)
        unlink(tmp);
    if (rc == 0)
        sync_directory(path);
    free(tmp);
    free(image.data);
    return rc;
}

int rt_ckpt_save(const rt_model *m, const char *arena, const char *path) {
    return rt_ckpt_save_meta(m, arena, NULL, path);
}

/*
 * Reading
 */

/* What the header says about one parameter. */
typedef struct entry {
    int found;
    uint64_t begin, end;
} entry;

typedef struct loader {
    const rt_model *m;
    const char *name; /* the file, for messages */
    uint64_t data_len;
    entry *entries; /* one per rt_param */
    int seen_metadata;
    rt_vocab vocab; /* from "mdl.vocab" (n = 0 without), "mdl.words" and
                       "mdl.classes" (lexicon NULL without) */
} loader;

static void json_shape_string(const rt_json *shape, char *buf, size_t size) {
    size_t used = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < shape->n && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%s", i ? ", " : "",
                                 shape->items[i]->type == RT_JSON_NUMBER ? shape->items[i]->text : "?");
    if (used < size)
        snprintf(buf + used, size - used, "]");
}

static int check_dtype(loader *l, const rt_tensor *t, const rt_json *dtype) {
    if (!dtype || dtype->type != RT_JSON_STRING)
        return rt_error("%s: tensor \"%s\": \"dtype\" is missing or not a string", l->name, t->name);
    if (strcmp(dtype->text, "F32") != 0 && strcmp(dtype->text, "I32") != 0)
        return rt_error("%s: tensor \"%s\": dtype %.20s is not supported (expected %s)", l->name, t->name, dtype->text,
                        st_dtype(t->dtype));
    if (strcmp(dtype->text, st_dtype(t->dtype)) != 0)
        return rt_error("%s: tensor \"%s\": dtype %s does not match the model's %s", l->name, t->name, dtype->text,
                        st_dtype(t->dtype));
    return 0;
}

static int check_shape(loader *l, const rt_tensor *t, const rt_json *shape) {
    if (!shape || shape->type != RT_JSON_ARRAY)
        return rt_error("%s: tensor \"%s\": \"shape\" is missing or not an array", l->name, t->name);
    int same = shape->n == t->rank;
    for (int i = 0; i < shape->n; i++) {
        uint64_t d;
        if (rt_json_u64(shape->items[i], &d))
            return rt_error("%s: tensor \"%s\": shape has an entry that is not a non-negative integer", l->name,
                            t->name);
        same = same && d == (uint64_t)t->dims[i];
    }
    if (!same) {
        char got[128], want[128];
        json_shape_string(shape, got, sizeof got);
        rt_shape_string(t, want, sizeof want);
        return rt_error("%s: tensor \"%s\": shape %s does not match the model's %s", l->name, t->name, got, want);
    }
    return 0;
}

static int check_offsets(loader *l, const rt_tensor *t, const rt_json *offs, entry *e) {
    if (!offs || offs->type != RT_JSON_ARRAY || offs->n != 2 || rt_json_u64(offs->items[0], &e->begin) ||
        rt_json_u64(offs->items[1], &e->end) || e->begin > e->end)
        return rt_error("%s: tensor \"%s\": \"data_offsets\" must be [begin, end] with 0 <= begin <= end", l->name,
                        t->name);
    if (e->end > l->data_len)
        return rt_error(
            "%s: tensor \"%s\": data_offsets [%llu, %llu] run past the end of the data (%llu bytes; truncated file?)",
            l->name, t->name, (unsigned long long)e->begin, (unsigned long long)e->end,
            (unsigned long long)l->data_len);
    uint64_t want = (uint64_t)rt_bytes(t, l->m->max_batch);
    if (e->end - e->begin != want)
        return rt_error("%s: tensor \"%s\": data_offsets [%llu, %llu] hold %llu bytes, its shape needs %llu", l->name,
                        t->name, (unsigned long long)e->begin, (unsigned long long)e->end,
                        (unsigned long long)(e->end - e->begin), (unsigned long long)want);
    return 0;
}

/* {"dtype": ..., "shape": [...], "data_offsets": [b, e]} and no more. */
static int check_entry(loader *l, const rt_param *p, const rt_json *j, entry *e) {
    static const char *fields[] = {"dtype", "shape", "data_offsets"};
    const rt_tensor *t = &p->t;
    if (j->type != RT_JSON_OBJECT)
        return rt_error("%s: tensor \"%s\": expected an object", l->name, t->name);
    for (int i = 0; i < j->n; i++) {
        int known = 0;
        for (int f = 0; f < 3; f++)
            known |= strcmp(j->keys[i], fields[f]) == 0;
        if (!known || rt_json_get(j, j->keys[i]) != j->items[i])
            return rt_error("%s: tensor \"%s\": %s field \"%.40s\"", l->name, t->name,
                            known ? "repeated" : "unexpected", j->keys[i]);
    }
    return check_dtype(l, t, rt_json_get(j, "dtype")) || check_shape(l, t, rt_json_get(j, "shape")) ||
                   check_offsets(l, t, rt_json_get(j, "data_offsets"), e)
               ? -1
               : 0;
}

/* "mdl.vocab": code points U+0000-U+00FF in increasing order, one per
 * byte value; the parser has decoded them to UTF-8. */
static int read_vocab(loader *l, const rt_json *j) {
    const unsigned char *s = (const unsigned char *)j->text;
    int n = 0, last = -1;
    for (size_t i = 0; i < j->len; i++) {
        int c = s[i];
        if (c >= 0x80 && (c & 0xfe) == 0xc2 && i + 1 < j->len && (s[i + 1] & 0xc0) == 0x80)
            c = (c & 0x1f) << 6 | (s[++i] & 0x3f);
        else if (c >= 0x80)
            c = 256;
        if (c > 255 || c <= last || n == 256)
            return rt_error("%s: \"mdl.vocab\" is not an increasing list of byte values (U+0000 to U+00FF)", l->name);
        l->vocab.bytes[n++] = (unsigned char)c;
        last = c;
    }
    l->vocab.n = n;
    return 0;
}

/* "mdl.words" and "mdl.classes": both or neither. */
static int read_lexicon(loader *l, const rt_json *metadata) {
    const rt_json *words = rt_json_get(metadata, "mdl.words"), *classes = rt_json_get(metadata, "mdl.classes");
    if (!words && !classes)
        return 0;
    if (!words || !classes)
        return rt_error("%s: \"%s\" without \"%s\"", l->name, words ? "mdl.words" : "mdl.classes",
                        words ? "mdl.classes" : "mdl.words");
    l->vocab.lexicon = rt_lexicon_parse(l->name, words->text, words->len, classes->text, classes->len);
    return l->vocab.lexicon ? 0 : -1;
}

static int check_metadata_checksum(loader *l, const rt_json *metadata);

static int check_metadata(loader *l, const rt_json *j) {
    if (l->seen_metadata++)
        return rt_error("%s: \"__metadata__\" appears twice", l->name);
    if (j->type != RT_JSON_OBJECT)
        return rt_error("%s: \"__metadata__\" is not an object", l->name);
    for (int i = 0; i < j->n; i++)
        if (j->items[i]->type != RT_JSON_STRING)
            return rt_error("%s: \"__metadata__\" value \"%.40s\" is not a string", l->name, j->keys[i]);
    if (check_metadata_checksum(l, j))
        return -1;
    const rt_json *model = rt_json_get(j, "model");
    if (model && strcmp(model->text, l->m->name) != 0)
        rt_note("%s was saved by model \"%.60s\"; loading it into \"%s\"", l->name, model->text, l->m->name);
    const rt_json *vocab = rt_json_get(j, "mdl.vocab");
    if ((vocab && read_vocab(l, vocab)) || read_lexicon(l, j))
        return -1;
    return rt_ratings_read_metadata(l->name, j);
}

static int find_param(const rt_model *m, const char *name) {
    for (int i = 0; i < m->n_params; i++)
        if (strcmp(m->params[i].t.name, name) == 0)
            return i;
    return -1;
}

static int check_member(loader *l, const char *key, const rt_json *value) {
    if (strcmp(key, "__metadata__") == 0)
        return check_metadata(l, value);
    int i = find_param(l->m, key);
    if (i < 0)
        return rt_error("%s: unknown tensor \"%.60s\" (model %s has no such parameter)", l->name, key, l->m->name);
    if (l->entries[i].found)
        return rt_error("%s: tensor \"%s\" appears twice", l->name, key);
    l->entries[i].found = 1;
    return check_entry(l, &l->m->params[i], value, &l->entries[i]);
}

static int compare_begin(const void *a, const void *b) {
    const entry *x = *(entry *const *)a, *y = *(entry *const *)b;
    return x->begin < y->begin ? -1 : x->begin > y->begin;
}

/* The tensors must tile the data buffer exactly: no overlap, no gap. */
static int check_coverage(loader *l) {
    entry **sorted = rt_xcalloc((size_t)l->m->n_params + 1, sizeof *sorted);
    int n = 0;
    for (int i = 0; i < l->m->n_params; i++)
        if (l->entries[i].found)
            sorted[n++] = &l->entries[i];
    qsort(sorted, (size_t)n, sizeof *sorted, compare_begin);
    uint64_t covered = 0;
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        if (i > 0 && sorted[i]->begin < sorted[i - 1]->end)
            rc = rt_error("%s: two tensors overlap at data offset %llu", l->name, (unsigned long long)sorted[i]->begin);
        covered += sorted[i]->end - sorted[i]->begin;
    }
    free(sorted);
    if (rc == 0 && covered != l->data_len)
        rc = rt_error("%s: the tensors cover %llu bytes but the file holds %llu after the header (wrong file size)",
                      l->name, (unsigned long long)covered, (unsigned long long)l->data_len);
    return rc;
}

/* Reads 8 hex digits. */
static int parse_crc(const rt_json *j, uint32_t *out) {
    if (j->len != 8)
        return -1;
    uint32_t v = 0;
    for (int i = 0; i < 8; i++) {
        char c = j->text[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0)
            return -1;
        v = v << 4 | (uint32_t)d;
    }
    *out = v;
    return 0;
}

/* Whether the file has checksums (it was written by an mdl that makes them). */
static int has_checksums(const rt_json *metadata) {
    for (int i = 0; metadata && i < metadata->n; i++)
        if (strncmp(metadata->keys[i], CRC_KEY, strlen(CRC_KEY)) == 0)
            return 1;
    return 0;
}

/* The metadata's own checksum, before anything in it is believed. */
static int check_metadata_checksum(loader *l, const rt_json *metadata) {
    if (!has_checksums(metadata))
        return 0;
    const rt_json *own = rt_json_get(metadata, CRC_KEY);
    uint32_t want;
    if (!own || parse_crc(own, &want))
        return rt_error("%s: damaged: the metadata's checksum \"" CRC_KEY "\" is %s", l->name,
                        own ? "malformed" : "missing");
    if (metadata_crc(metadata) != want)
        return rt_error("%s: damaged: the metadata does not match its checksum", l->name);
    return 0;
}

/* Every tensor's checksum, when the file has them. */
static int check_checksums(loader *l, const rt_json *header, const unsigned char *data) {
    const rt_json *metadata = rt_json_get(header, "__metadata__");
    if (!has_checksums(metadata))
        return 0;
    uint32_t want;
    rt_buf key = {0};
    int rc = 0;
    for (int i = 0; rc == 0 && i < l->m->n_params; i++) {
        const entry *e = &l->entries[i];
        if (!e->found)
            continue;
        const char *name = l->m->params[i].t.name;
        key.len = 0;
        rt_buf_printf(&key, CRC_KEY ".%s", name);
        const rt_json *j = rt_json_get(metadata, key.data);
        if (!j || parse_crc(j, &want))
            rc = rt_error("%s: damaged: the checksum of tensor \"%s\" is %s", l->name, name, j ? "malformed" : "missing");
        else if (rt_crc32(0, data + e->begin, (size_t)(e->end - e->begin)) != want)
            rc = rt_error("%s: damaged: tensor \"%s\" does not match its checksum", l->name, name);
    }
    free(key.data);
    return rc;
}

static int check_missing(loader *l) {
    for (int i = 0; i < l->m->n_params; i++)
        if (!l->entries[i].found && l->m->params[i].trainable)
            return rt_error("%s: parameter \"%s\" is missing", l->name, l->m->params[i].t.name);
    return 0;
}

static int parse_header(loader *l, const unsigned char *buf, size_t len, rt_json **out) {
    if (len < 8)
        return rt_error("%s: truncated: %zu bytes, but a safetensors file starts with an 8-byte header length", l->name,
                        len);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | buf[i];
    if (n > RT_MAX_HEADER || n > len - 8)
        return rt_error("%s: header length %llu %s (not a safetensors checkpoint, or truncated)", l->name,
                        (unsigned long long)n,
                        n > RT_MAX_HEADER ? "is over the 100 MB limit" : "runs past the end of the file");
    char msg[128];
    size_t at = 0;
    *out = rt_json_parse((const char *)buf + 8, (size_t)n, &at, msg, sizeof msg);
    if (!*out)
        return rt_error("%s: malformed JSON header at byte %zu: %s", l->name, at + 8, msg);
    if ((*out)->type != RT_JSON_OBJECT)
        return rt_error("%s: the header is not a JSON object", l->name);
    l->data_len = len - 8 - n;
    return 0;
}

/* A missing recurrent state (rt_param.state) is quietly zero: the runtime
 * zeroes it before use anyway. */
static void copy_tensors(loader *l, char *arena, const unsigned char *data) {
    int state = 0, missing = 0;
    for (int i = 0; i < l->m->n_params; i++)
        if (!l->m->params[i].trainable && !l->m->params[i].state) {
            state++;
            missing += !l->entries[i].found;
        }
    if (missing && missing == state)
        rt_note("%s has no optimizer state; the optimizer starts afresh", l->name);
    for (int i = 0; i < l->m->n_params; i++) {
        const rt_param *p = &l->m->params[i];
        if (!l->entries[i].found) {
            if (missing != state && !p->state)
                rt_note("%s has no \"%s\"; it keeps its initial value", l->name, p->t.name);
            continue;
        }
        size_t bytes = (size_t)rt_bytes(&p->t, l->m->max_batch);
        memcpy(arena + p->t.offset, data + l->entries[i].begin, bytes);
        to_little_endian(arena + p->t.offset, bytes / 4);
    }
}

/* vocab (may be NULL) gets the checkpoint's vocabulary, n = 0 without. */
static int load_image(const rt_model *m, char *arena, const char *name, const unsigned char *buf, size_t len,
                      rt_vocab *vocab) {
    loader l;
    memset(&l, 0, sizeof l);
    l.m = m;
    l.name = name;
    l.entries = rt_xcalloc((size_t)m->n_params + 1, sizeof *l.entries);
    rt_json *header = NULL;
    int rc = parse_header(&l, buf, len, &header);
    for (int i = 0; rc == 0 && i < header->n; i++)
        rc = check_member(&l, header->keys[i], header->items[i]);
    if (rc == 0)
        rc = check_missing(&l) || check_coverage(&l) || check_checksums(&l, header, buf + (len - l.data_len)) ? -1 : 0;
    if (rc == 0)
        copy_tensors(&l, arena, buf + (len - l.data_len));
    if (rc == 0 && vocab)
        *vocab = l.vocab;
    else
        rt_lexicon_free(l.vocab.lexicon);
    rt_json_free(header);
    free(l.entries);
    return rc;
}

int rt_ckpt_load_buffer(const rt_model *m, char *arena, const char *name, const unsigned char *buf, size_t len) {
    return load_image(m, arena, name, buf, len, NULL);
}

int rt_ckpt_load_vocab(const rt_model *m, char *arena, const char *path, rt_vocab *vocab) {
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode))
        return rt_error("cannot load %s: not a regular file", path);
    char *buf;
    size_t len;
    if (rt_read_file(path, &buf, &len))
        return -1;
    int rc = load_image(m, arena, path, (unsigned char *)buf, len, vocab);
    free(buf);
    return rc;
}

/* The header of the checkpoint at path, its metadata checked (checksum,
 * vocabulary; a recommender's ids are taken: rt_ratings.c) but no tensor
 * read: *header is the whole parsed header, to free with rt_json_free. */
int rt_ckpt_read_header(const rt_model *m, const char *path, rt_json **header) {
    loader l;
    memset(&l, 0, sizeof l);
    l.m = m;
    l.name = path;
    char *buf;
    size_t len;
    *header = NULL;
    if (rt_read_file(path, &buf, &len))
        return -1;
    int rc = parse_header(&l, (unsigned char *)buf, len, header);
    const rt_json *metadata = rc == 0 ? rt_json_get(*header, "__metadata__") : NULL;
    if (metadata)
        rc = check_metadata(&l, metadata);
    rt_lexicon_free(l.vocab.lexicon);
    free(buf);
    if (rc) {
        rt_json_free(*header);
        *header = NULL;
    }
    return rc;
}

/* Only the metadata (a recommender's ids, rt_ratings.c), for a run that
 * must read its data through them before the parameters are loaded. */
int rt_ckpt_load_metadata(const rt_model *m, const char *path) {
    rt_json *header;
    int rc = rt_ckpt_read_header(m, path, &header);
    rt_json_free(header);
    return rc;
}

int rt_ckpt_load(const rt_model *m, char *arena, const char *path) { return rt_ckpt_load_vocab(m, arena, path, NULL); }
