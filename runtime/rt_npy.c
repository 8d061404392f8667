/*
 * rt_npy.c - NPY files, numpy's np.save format.
 *
 *     \x93NUMPY MAJOR MINOR   magic and version (1.0, 2.0 or 3.0)
 *     header length            u16 (version 1) or u32 (2 and 3), little-endian
 *     header                   a Python dict literal, e.g.
 *                              {'descr': '<f4', 'fortran_order': False, 'shape': (60000, 28, 28), }
 *     data                     the elements, in C order unless fortran_order
 *
 * descr: a byte order (< little, > big, | not applicable, = native), a
 * kind (f float, i signed, u unsigned, b bool) and a size in bytes: f4,
 * f8, i1-i8, u1-u8, b1.  The first dimension is the number of samples and
 * the rest must hold as many elements as the tensor takes per sample.
 * Fortran order, object arrays and structured dtypes are refused with a
 * line saying how to re-save the array.
 */
#include "rt_internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#define NPY_MAX_RANK 32

typedef struct npy_header {
    char descr[32];
    int fortran, has_descr, has_fortran, has_shape;
    int rank;
    int64_t dims[NPY_MAX_RANK];
} npy_header;

/* A cursor over the header text. */
typedef struct cursor {
    const char *p, *end;
} cursor;

static void skip_space(cursor *c) {
    while (c->p < c->end && isspace((unsigned char)*c->p))
        c->p++;
}

static int accept(cursor *c, char ch) {
    skip_space(c);
    if (c->p < c->end && *c->p == ch) {
        c->p++;
        return 1;
    }
    return 0;
}

/* 'text' or "text" into out. */
static int parse_string(cursor *c, char *out, size_t size) {
    skip_space(c);
    if (c->p >= c->end || (*c->p != '\'' && *c->p != '"'))
        return -1;
    char quote = *c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != quote) {
        if (n + 1 >= size)
            return -1;
        out[n++] = *c->p++;
    }
    if (c->p >= c->end)
        return -1;
    c->p++;
    out[n] = '\0';
    return 0;
}

static int parse_word(cursor *c, const char *word) {
    skip_space(c);
    size_t n = strlen(word);
    if ((size_t)(c->end - c->p) < n || strncmp(c->p, word, n) != 0)
        return -1;
    c->p += n;
    return 0;
}

/* (60000, 28, 28) or (60000,) or () */
static int parse_shape(cursor *c, npy_header *h) {
    if (!accept(c, '('))
        return -1;
    h->rank = 0;
    while (!accept(c, ')')) {
        skip_space(c);
        if (c->p >= c->end || !isdigit((unsigned char)*c->p) || h->rank == NPY_MAX_RANK)
            return -1;
        int64_t v = 0;
        while (c->p < c->end && isdigit((unsigned char)*c->p)) {
            if (v > ((int64_t)1 << 40))
                return -1;
            v = v * 10 + (*c->p++ - '0');
        }
        while (c->p < c->end && (*c->p == 'L' || *c->p == 'l')) /* Python 2 longs */
            c->p++;
        h->dims[h->rank++] = v;
        if (!accept(c, ',')) {
            if (!accept(c, ')'))
                return -1;
            break;
        }
    }
    return 0;
}

static int parse_value(cursor *c, npy_header *h, const char *key) {
    if (strcmp(key, "descr") == 0) {
        h->has_descr = 1;
        return parse_string(c, h->descr, sizeof h->descr);
    }
    if (strcmp(key, "fortran_order") == 0) {
        h->has_fortran = 1;
        if (parse_word(c, "True") == 0)
            return h->fortran = 1, 0;
        return parse_word(c, "False");
    }
    if (strcmp(key, "shape") == 0) {
        h->has_shape = 1;
        return parse_shape(c, h);
    }
    return -1;
}

/* The dict: exactly the keys descr, fortran_order and shape. */
static int parse_header(const char *text, size_t len, npy_header *h, char *key) {
    cursor c = {text, text + len};
    memset(h, 0, sizeof *h);
    key[0] = '\0';
    if (!accept(&c, '{'))
        return -1;
    while (!accept(&c, '}')) {
        if (parse_string(&c, key, 32) || !accept(&c, ':') || parse_value(&c, h, key))
            return -1;
        if (!accept(&c, ',')) {
            if (!accept(&c, '}'))
                return -1;
            break;
        }
    }
    key[0] = '\0';
    skip_space(&c);
    return c.p == c.end && h->has_descr && h->has_fortran && h->has_shape ? 0 : -1;
}

/* '<f4' and friends; -1 for anything else. */
static int parse_descr(const char *descr, rt_elem_type *type) {
    const uint32_t probe = 1;
    int host_big = *(const unsigned char *)&probe != 1;
    char order = descr[0], kind = descr[1];
    if (!order || !kind || !strchr("<>|=", order) || !isdigit((unsigned char)descr[2]) || descr[3])
        return -1;
    int size = descr[2] - '0';
    type->big_endian = order == '>' || (order == '=' && host_big);
    type->name = descr + 1;
    switch (kind) {
    case 'f': type->kind = RT_ELEM_FLOAT; return size == 4 || size == 8 ? (type->size = size, 0) : -1;
    case 'i': type->kind = RT_ELEM_INT; break;
    case 'u': type->kind = RT_ELEM_UINT; break;
    case 'b': type->kind = RT_ELEM_BOOL; return size == 1 ? (type->size = 1, 0) : -1;
    default: return -1;
    }
    type->size = size;
    return size == 1 || size == 2 || size == 4 || size == 8 ? 0 : -1;
}

static rt_dataset *parse(const char *path, const unsigned char *buf, size_t len, const rt_tensor *t, char **take) {
    if (len < 10 || memcmp(buf, "\x93NUMPY", 6) != 0) {
        rt_error("%s: not an NPY file: %s", path,
                 len < 10 ? "too short for the magic \\x93NUMPY and a version" : "it does not start with \\x93NUMPY");
        return NULL;
    }
    int major = buf[6], minor = buf[7];
    if (major < 1 || major > 3) {
        rt_error("%s: NPY version %d.%d is not supported (1.0, 2.0 and 3.0 are)", path, major, minor);
        return NULL;
    }
    size_t start = major == 1 ? 10 : 12;
    if (len < start) {
        rt_error("%s: truncated: %zu bytes, shorter than the NPY %d.%d preamble", path, len, major, minor);
        return NULL;
    }
    size_t hlen = major == 1 ? (size_t)buf[8] | (size_t)buf[9] << 8
                             : (size_t)buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
    if (hlen > len - start) {
        rt_error("%s: truncated: the header is %zu bytes, the file has %zu after the preamble", path, hlen,
                 len - start);
        return NULL;
    }
    npy_header h;
    char key[32];
    if (parse_header((const char *)buf + start, hlen, &h, key)) {
        if (key[0])
            rt_error("%s: cannot read the NPY header's \"%s\" (expected 'descr', 'fortran_order' and 'shape')", path,
                     key);
        else
            rt_error("%s: malformed NPY header (expected a dict of 'descr', 'fortran_order' and 'shape')", path);
        return NULL;
    }
    rt_elem_type type;
    if (parse_descr(h.descr, &type)) {
        rt_error("%s: NPY dtype '%s' is not supported (float32/64, int8-64, uint8-64 and bool are: "
                 "save with arr.astype(np.float32))",
                 path, h.descr);
        return NULL;
    }
    if (h.fortran) {
        rt_error("%s: the array is in Fortran order: save np.ascontiguousarray(arr) instead", path);
        return NULL;
    }
    if (h.rank == 0) {
        rt_error("%s: a 0-dimensional array holds no samples (the first dimension is the sample)", path);
        return NULL;
    }
    int64_t total = 1;
    for (int i = 0; i < h.rank; i++) {
        if (h.dims[i] > 0 && total > ((int64_t)1 << 40) / h.dims[i]) {
            rt_error("%s: the shape in its header is too large", path);
            return NULL;
        }
        total *= h.dims[i];
    }
    size_t header = start + hlen;
    return rt_data_from_array(path, buf + header, len - header, type, h.dims, h.rank, total, t, take);
}

rt_dataset *rt_npy_parse(const char *path, const unsigned char *buf, size_t len, const rt_tensor *t) {
    return parse(path, buf, len, t, NULL);
}

rt_dataset *rt_npy_read(const char *path, char **take, size_t len, const rt_tensor *t) {
    return parse(path, (const unsigned char *)*take, len, t, take);
}
