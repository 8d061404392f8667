/*
 * rt_batch.c - moving samples between a data set and the arena's slots.
 *
 * A slot with a batch dimension is laid out for the actual batch size b
 * (mdlrt.h): a [T, B, H] tensor at batch b is a dense [T, b, H] array at the
 * slot's offset.  So sample i of a batch is `outer` runs of `inner`
 * contiguous elements; for the usual leading batch dimension (outer = 1)
 * that is one run per sample, and a batch of consecutive samples taken
 * in file order (rt_gather_range: evaluation, prediction, training
 * without shuffling) is a single run per tensor.  A sample of one element
 * (a label, a column of a CSV) is a plain load, not a call.  u8 data (RT_STORE_U8) is converted to the slot's
 * dtype on the way, in loops the compiler vectorises.  Shuffling happens on
 * an index array, and the gather follows it, so the data set itself is
 * never reordered.
 *
 * Shuffled rows of a data set larger than the cache are cache misses:
 * with the W2 MLP (64 random 784-byte images a step) the gather was 3% of
 * the process, nearly all of it waiting on the first load of each row.
 * Prefetching the next batch's rows before the step runs, and rows a few
 * samples ahead within a gather, brings that to about 2%.  Assembling
 * the next batch on another thread would save at most that 2%, and the
 * other threads are busy with the step's products, so it is not done.
 */
#include "rt_internal.h"

#include <string.h>

/* count elements from src, stored as `store`, to dst in `dtype`. */
static void copy_elems(void *restrict dst, const void *restrict src, int store, int dtype, int64_t count) {
    if (store == RT_STORE_DTYPE) {
        memcpy(dst, src, (size_t)count * 4);
        return;
    }
    const unsigned char *s = src;
    if (dtype == RT_F32) {
        float *o = dst;
        for (int64_t k = 0; k < count; k++)
            o[k] = (float)s[k];
    } else {
        int32_t *o = dst;
        for (int64_t k = 0; k < count; k++)
            o[k] = s[k];
    }
}

/* One element, for samples of one element (a label, a CSV column):
 * cheaper than a call to copy a run of one. */
static inline void copy_one(void *dst, const void *src, int store, int dtype) {
    if (store == RT_STORE_DTYPE)
        memcpy(dst, src, 4);
    else if (dtype == RT_F32)
        *(float *)dst = *(const unsigned char *)src;
    else
        *(int32_t *)dst = *(const unsigned char *)src;
}

/* Within a shuffled batch, each sample's lines are fetched this many
 * samples ahead, so that several cache misses are in flight at once
 * rather than one after the other (the first batch of an epoch, and rows
 * the step evicted since rt_prefetch). */
#define PREFETCH_AHEAD 8

/* A sample's first 4 KB: enough for the prefetcher to follow the rest. */
static void prefetch_sample(const char *src, size_t bytes) {
    for (size_t at = 0; at < bytes && at < 4096; at += 64)
        __builtin_prefetch(src + at);
}

/* Starts fetching samples index[0..count) of d's larger tensors into the
 * cache, without waiting: training calls it for the next batch before it
 * runs a step, so the rows arrive while the step computes. */
void rt_prefetch(const rt_dataset *d, const int64_t *index, int64_t count) {
    for (int t = 0; t < d->n_tensors; t++) {
        size_t bytes = (size_t)d->layouts[t].sample * rt_data_elem_bytes(d, t);
        if (bytes < 64)
            continue;
        for (int64_t i = 0; i < count; i++)
            prefetch_sample((const char *)d->data[t] + (size_t)index[i] * bytes, bytes);
    }
}

/* Copies samples index[0..batch) of every tensor of d into the arena. */
void rt_gather(char *arena, const rt_dataset *d, const int64_t *index, int64_t batch) {
    for (int t = 0; t < d->n_tensors; t++) {
        rt_layout l = d->layouts[t];
        char *slot = arena + d->tensors[t]->offset;
        const char *data = d->data[t];
        int store = d->stores[t], dtype = d->tensors[t]->dtype;
        size_t size = rt_data_elem_bytes(d, t), bytes = (size_t)l.sample * size;
        for (int64_t i = 0; i < batch; i++) {
            if (bytes >= 64 && i + PREFETCH_AHEAD < batch)
                prefetch_sample(data + (size_t)index[i + PREFETCH_AHEAD] * bytes, bytes);
            const char *src = data + (size_t)(index[i] * l.sample) * size;
            for (int64_t o = 0; o < l.outer; o++) {
                char *dst = slot + (size_t)((o * batch + i) * l.inner) * 4;
                if (l.inner == 1)
                    copy_one(dst, src + (size_t)o * size, store, dtype);
                else
                    copy_elems(dst, src + (size_t)(o * l.inner) * size, store, dtype, l.inner);
            }
        }
    }
}

/* Copies samples first..first+batch of every tensor of d, in order, into
 * the arena: with the batch dimension leading, one run per tensor. */
void rt_gather_range(char *arena, const rt_dataset *d, int64_t first, int64_t batch) {
    for (int t = 0; t < d->n_tensors; t++) {
        rt_layout l = d->layouts[t];
        char *slot = arena + d->tensors[t]->offset;
        int store = d->stores[t], dtype = d->tensors[t]->dtype;
        size_t size = rt_data_elem_bytes(d, t);
        const char *data = (const char *)d->data[t] + (size_t)(first * l.sample) * size;
        if (l.outer == 1) {
            copy_elems(slot, data, store, dtype, batch * l.inner);
            continue;
        }
        for (int64_t i = 0; i < batch; i++)
            for (int64_t o = 0; o < l.outer; o++)
                copy_elems(slot + (size_t)((o * batch + i) * l.inner) * 4,
                           data + (size_t)((i * l.sample) + o * l.inner) * size, store, dtype, l.inner);
    }
}

/* Copies sample i of tensor t (in a batch of `batch`) to dst. */
void rt_read_sample(const char *arena, const rt_tensor *t, int64_t batch, int64_t i, void *dst) {
    rt_layout l = rt_layout_of(t);
    const char *slot = arena + t->offset;
    size_t run = (size_t)l.inner * 4;
    for (int64_t o = 0; o < l.outer; o++)
        memcpy((char *)dst + (size_t)o * run, slot + (size_t)((o * batch + i) * l.inner) * 4, run);
}

int64_t *rt_identity_order(int64_t n) {
    int64_t *order = rt_xmalloc((size_t)(n > 0 ? n : 1) * sizeof *order);
    for (int64_t i = 0; i < n; i++)
        order[i] = i;
    return order;
}
