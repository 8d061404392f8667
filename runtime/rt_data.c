/*
 * rt_data.c - the data set: n samples of some of the model's inputs and
 * targets, in memory.
 *
 * A data set holds one contiguous array per tensor (n * sample elements,
 * f32 or i32, or the bytes of a u8 file, converted as batches are
 * gathered), so batching (rt_batch.c) is a gather of rows and a
 * validation split is a copy of the last ones.
 * Which files fill it, and how, is rt_datafiles.c's; gradcheck fills one
 * with random values instead.
 */
#include "rt_internal.h"

#include <stdlib.h>
#include <string.h>

/* The tensors files feed, in matching order: inputs, then targets. */
int rt_fed_tensor_count(const rt_model *m, int mode) {
    return m->n_inputs + (mode == RT_DATA_LABELLED ? m->n_targets : 0);
}

const rt_tensor *rt_fed_tensor(const rt_model *m, int i) {
    return i < m->n_inputs ? &m->inputs[i] : &m->targets[i - m->n_inputs];
}

rt_dataset *rt_data_alloc(const rt_tensor *const *tensors, int n_tensors, int64_t n) {
    rt_dataset *d = rt_xcalloc(1, sizeof *d);
    d->n = n;
    d->n_tensors = n_tensors;
    d->tensors = rt_xcalloc((size_t)n_tensors + 1, sizeof *d->tensors);
    d->layouts = rt_xcalloc((size_t)n_tensors + 1, sizeof *d->layouts);
    d->data = rt_xcalloc((size_t)n_tensors + 1, sizeof *d->data);
    d->stores = rt_xcalloc((size_t)n_tensors + 1, sizeof *d->stores);
    for (int i = 0; i < n_tensors; i++) {
        d->tensors[i] = tensors[i];
        d->layouts[i] = rt_layout_of(tensors[i]);
        d->data[i] = rt_xcalloc((size_t)(n * d->layouts[i].sample), 4);
    }
    return d;
}

rt_dataset *rt_data_new(const rt_model *m, int mode, int64_t n) {
    int count = rt_fed_tensor_count(m, mode);
    const rt_tensor **tensors = rt_xcalloc((size_t)count + 1, sizeof *tensors);
    for (int i = 0; i < count; i++)
        tensors[i] = rt_fed_tensor(m, i);
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
    free(d->stores);
    free(d->tensors);
    free(d->path);
    free(d->text);
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
    for (int i = 0; i < d->n_tensors; i++) {
        if (d->stores[i] == RT_STORE_U8)
            rt_data_store_u8(v, i, NULL);
        size_t size = rt_data_elem_bytes(d, i);
        memcpy(v->data[i], (char *)d->data[i] + (size_t)(keep * d->layouts[i].sample) * size,
               (size_t)(v->n * d->layouts[i].sample) * size);
    }
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

/* Makes tensor i of d (allocated by rt_data_alloc, not yet filled) hold
 * its elements as unsigned bytes: in `bytes` (malloc'd, n * sample of
 * them; d owns it now), or in a new array if bytes is NULL. */
void rt_data_store_u8(rt_dataset *d, int i, void *bytes) {
    free(d->data[i]);
    d->data[i] = bytes ? bytes : rt_xmalloc((size_t)(d->n * d->layouts[i].sample) + 1);
    d->stores[i] = RT_STORE_U8;
}

size_t rt_data_elem_bytes(const rt_dataset *d, int i) { return d->stores[i] == RT_STORE_U8 ? 1 : 4; }

/* Element k (of all n * sample) of an i32 tensor i, as stored. */
int64_t rt_data_int(const rt_dataset *d, int i, int64_t k) {
    if (d->stores[i] == RT_STORE_U8)
        return ((const unsigned char *)d->data[i])[k];
    return ((const int32_t *)d->data[i])[k];
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
