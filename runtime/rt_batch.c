/*
 * rt_batch.c - moving samples between a data set and the arena's slots.
 *
 * A slot with a batch dimension is laid out for the actual batch size b
 * (mdlrt.h): a [T, B, H] tensor at batch b is a dense [T, b, H] array at the
 * slot's offset.  So sample i of a batch is `outer` runs of `inner`
 * contiguous elements; for the usual leading batch dimension (outer = 1)
 * that is one memcpy per sample.  Shuffling happens on an index array, and
 * the gather follows it, so the data set itself is never reordered.
 */
#include "rt_internal.h"

#include <string.h>

/* Copies samples index[0..batch) of every tensor of d into the arena. */
void rt_gather(char *arena, const rt_dataset *d, const int64_t *index, int64_t batch) {
    for (int t = 0; t < d->n_tensors; t++) {
        rt_layout l = d->layouts[t];
        char *slot = arena + d->tensors[t]->offset;
        const char *data = d->data[t];
        size_t run = (size_t)l.inner * 4;
        for (int64_t i = 0; i < batch; i++) {
            const char *src = data + (size_t)(index[i] * l.sample) * 4;
            for (int64_t o = 0; o < l.outer; o++)
                memcpy(slot + (size_t)((o * batch + i) * l.inner) * 4, src + (size_t)o * run, run);
        }
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
