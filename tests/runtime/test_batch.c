/*
 * test_batch.c - batch assembly (rt_batch.c): rt_gather and
 * rt_gather_range against a reference written out element by element, for
 * every way a data set stores a tensor (its dtype, or the bytes of a u8
 * file converted on the way) and for a batch dimension that leads or does
 * not ([T, B, K]); a validation split of u8 data stays u8.
 */
#include "rt_internal.h"

#include <stdlib.h>
#include <string.h>

#define TEST_SEED 13
#include "../test.h"

enum { MAXB = 8, N = 11 };

/* x f32[B, 5] (batch leading), seq f32[2, B, 3] (batch inside), label
 * i32[B], id i32[B, 2]; arena offsets far enough apart. */
static const rt_tensor x_tensor = {"x", RT_F32, 2, {MAXB, 5}, 1, 0, 0, 0};
static const rt_tensor seq_tensor = {"seq", RT_F32, 3, {2, MAXB, 3}, 2, 1024, 0, 0};
static const rt_tensor label_tensor = {"label", RT_I32, 1, {MAXB}, 1, 2048, 0, 10};
static const rt_tensor ids_tensor = {"id", RT_I32, 2, {MAXB, 2}, 1, 3072, 0, 0};
static const rt_tensor *const tensors[] = {&x_tensor, &seq_tensor, &label_tensor, &ids_tensor};

/* The value element k of sample s of tensor t holds: small integers, so
 * that u8 storage holds them too. */
static int value_of(int t, int64_t s, int64_t k) { return (int)((t * 37 + s * 13 + k * 7) % 251); }

static rt_dataset *make(int u8) {
    rt_dataset *d = rt_data_alloc(tensors, 4, N);
    for (int t = 0; t < 4; t++) {
        int64_t sample = d->layouts[t].sample;
        if (u8 & (1 << t))
            rt_data_store_u8(d, t, NULL);
        for (int64_t s = 0; s < N; s++)
            for (int64_t k = 0; k < sample; k++) {
                int v = value_of(t, s, k);
                if (d->stores[t] == RT_STORE_U8)
                    ((unsigned char *)d->data[t])[s * sample + k] = (unsigned char)v;
                else if (tensors[t]->dtype == RT_F32)
                    ((float *)d->data[t])[s * sample + k] = (float)v;
                else
                    ((int32_t *)d->data[t])[s * sample + k] = v;
            }
    }
    return d;
}

/* The arena must hold samples index[0..b) laid out [outer, b, inner]. */
static void check_batch(const char *arena, const rt_dataset *d, const int64_t *index, int64_t b, const char *what) {
    for (int t = 0; t < 4; t++) {
        rt_layout l = d->layouts[t];
        const char *slot = arena + tensors[t]->offset;
        for (int64_t i = 0; i < b; i++)
            for (int64_t o = 0; o < l.outer; o++)
                for (int64_t k = 0; k < l.inner; k++) {
                    int64_t at = (o * b + i) * l.inner + k;
                    double got = tensors[t]->dtype == RT_F32 ? ((const float *)slot)[at] : ((const int32_t *)slot)[at];
                    int want = value_of(t, index[i], o * l.inner + k);
                    checks++;
                    if (got != want) {
                        fail("%s: tensor %s sample %lld element %lld: %g, want %d", what, tensors[t]->name,
                             (long long)i, (long long)(o * l.inner + k), got, want);
                        return;
                    }
                }
    }
}

static void test_stores(int u8) {
    rt_dataset *d = make(u8);
    char *arena = calloc(1, 4096);
    char what[64];
    /* a shuffled batch, with a run of consecutive samples inside */
    int64_t shuffled[MAXB] = {7, 3, 4, 5, 0, 10, 9, 1};
    for (int64_t b = 1; b <= MAXB; b++) {
        snprintf(what, sizeof what, "gather u8=%d b=%lld", u8, (long long)b);
        memset(arena, 0xff, 4096);
        rt_gather(arena, d, shuffled, b);
        check_batch(arena, d, shuffled, b, what);
    }
    /* in order from every start, up to the last sample */
    for (int64_t first = 0; first < N; first++)
        for (int64_t b = 1; b <= MAXB && first + b <= N; b++) {
            int64_t index[MAXB];
            for (int64_t i = 0; i < b; i++)
                index[i] = first + i;
            snprintf(what, sizeof what, "range u8=%d first=%lld b=%lld", u8, (long long)first, (long long)b);
            memset(arena, 0xff, 4096);
            rt_gather_range(arena, d, first, b);
            check_batch(arena, d, index, b, what);
        }
    free(arena);
    rt_data_free(d);
}

static void test_split(void) {
    rt_dataset *d = make(1 | 4);
    d->path = rt_xstrdup("test");
    rt_dataset *v = rt_data_split(d, 0.3);
    CHECK(v && d->n == 7 && v->n == 4);
    if (v) {
        CHECK(v->stores[0] == RT_STORE_U8 && v->stores[1] == RT_STORE_DTYPE && v->stores[2] == RT_STORE_U8);
        CHECK(rt_data_int(v, 2, 0) == value_of(2, 7, 0) && rt_data_int(v, 2, 3) == value_of(2, 10, 0));
        CHECK(((unsigned char *)v->data[0])[5] == value_of(0, 8, 0));
        CHECK(((float *)v->data[1])[6 * 3 + 2] == value_of(1, 10, 2));
        CHECK(rt_data_int(v, 3, 2 * 2 + 1) == value_of(3, 9, 1));
    }
    rt_data_free(v);
    rt_data_free(d);
}

int main(void) {
    for (int u8 = 0; u8 < 16; u8++)
        test_stores(u8);
    test_split();
    printf("%d checks, %d failures\n", checks, failures);
    return failures != 0;
}
