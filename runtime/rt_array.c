/*
 * rt_array.c - the half of the array formats (IDX, NPY) that they share:
 * the elements after the header, into a data set of one tensor.
 *
 * A file of dims[0] samples of dims[1..rank) feeds a tensor whose sample
 * has as many elements (the shape may differ: [N, 28, 28] feeds f32[B, 784]
 * as well as f32[B, 28, 28]), and must hold exactly the bytes its header
 * promises.  Each element, of whatever width, signedness and byte order,
 * is converted to the tensor's dtype through a double, and checked:
 * finite, in range for f32, and integral and in range for an i32 tensor
 * (labels and indices); u8 elements, exact in either dtype, are kept as
 * bytes (RT_STORE_U8, rt_internal.h).
 */
#include "rt_internal.h"

#include <stdint.h>

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* "60000 x 28 x 28" */
static void dims_string(const int64_t *dims, int rank, char *buf, size_t size) {
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < rank && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%lld", i ? " x " : "", (long long)dims[i]);
}

/* A file holding dims[0] samples of dims[1..rank) each must match t's
 * per-sample element count (the shape itself may differ: [N, 28, 28]
 * feeds f32[B, 784] as well as f32[B, 28, 28]). */
static int check_sample(const char *path, const int64_t *dims, int rank, const rt_tensor *t) {
    int64_t per = 1;
    for (int i = 1; i < rank; i++) {
        if (dims[i] > 0 && per > INT64_MAX / dims[i])
            return rt_error("%s: its dimensions multiply past 2^63 (not a real array file, or damaged)", path);
        per *= dims[i];
    }
    int64_t want = rt_layout_of(t).sample;
    if (dims[0] < 1)
        return rt_error("%s: holds no samples (its first dimension is 0)", path);
    if (per == want)
        return 0;
    char have[160], shape[128];
    if (rank > 1) {
        dims_string(dims + 1, rank - 1, shape, sizeof shape);
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

/* The element at p as a double (exact for every integer up to 2^53). */
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

/* Keeps the u8 elements at src (the tail of *take, if given) as they are. */
static void keep_bytes(const unsigned char *src, rt_dataset *d, int tensor, char **take) {
    size_t count = (size_t)(d->n * d->layouts[tensor].sample);
    if (take && *take) {
        char *file = *take;
        *take = NULL;
        memmove(file, src, count);
        rt_data_store_u8(d, tensor, rt_xrealloc(file, count + 1));
    } else {
        rt_data_store_u8(d, tensor, NULL);
        memcpy(d->data[tensor], src, count);
    }
}

/* Converts d->n samples of tensor `tensor` from src, elements of `type`. */
static int convert(const char *path, const unsigned char *src, rt_elem_type type, rt_dataset *d, int tensor,
                   char **take) {
    const rt_tensor *t = d->tensors[tensor];
    int64_t count = d->n * d->layouts[tensor].sample;
    if (type.kind == RT_ELEM_UINT && type.size == 1) {
        /* Images and labels, the common case: every byte is exact in f32
         * and i32, so the bytes are kept as they are and converted as
         * batches are gathered (rt_batch.c). */
        keep_bytes(src, d, tensor, take);
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

/* The data set of t from `have` bytes of data holding `total` elements of
 * `type` in shape dims. */
rt_dataset *rt_data_from_array(const char *path, const unsigned char *data, size_t have, rt_elem_type type,
                               const int64_t *dims, int rank, int64_t total, const rt_tensor *t, char **take) {
    if (check_sample(path, dims, rank, t))
        return NULL;
    char shape[256];
    dims_string(dims, rank, shape, sizeof shape);
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
    if (convert(path, data, type, d, 0, take)) {
        rt_data_free(d);
        return NULL;
    }
    return d;
}
