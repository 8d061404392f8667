/*
 * rt_recommend.c - `recommend`: the items a recommender scores highest
 * for one user, among those the user has not rated.
 *
 * The checkpoint must come from training on a ratings file (rt_ratings.c),
 * which saved the raw user and item ids and the items each user rated.
 * We fill the model's two inputs with (user, item) for every item in
 * batches, run predict_step and read the first output (an f32 [B] score),
 * then print the --top best of the items the user did not rate in
 * training as CSV, `item,score`, best first, raw item ids; equal scores
 * in index order.  A user who was not in the training file has no row in
 * the model's tables, so there is nothing to score: that is an error
 * (exit status 1) naming the user, rather than a silent fallback.
 */
#include "rt_internal.h"

#include <stdlib.h>
#include <string.h>

typedef struct scored {
    float score;
    int32_t item;
} scored;

static int check_model(const rt_model *m) {
    if (!rt_ratings_model(m))
        return rt_error("model %s is not a recommender: recommend needs two i32 [B] inputs (user, item) and one f32 "
                        "[B] target (rating)",
                        m->name);
    const rt_tensor *y = m->n_outputs > 0 ? &m->outputs[0] : NULL;
    if (!m->predict_step || !y || y->dtype != RT_F32 || y->rank != 1 || y->batch_mask != 1)
        return rt_error("model %s needs an f32 [B] output (the score) first among its outputs", m->name);
    return 0;
}

/* The scores of items [0, n) for user u, batch by batch. */
static void score_items(const rt_model *m, char *arena, int32_t u, int32_t n, int64_t batch, float *scores) {
    int32_t *user = (int32_t *)(arena + m->inputs[0].offset), *item = (int32_t *)(arena + m->inputs[1].offset);
    const float *out = (const float *)(arena + m->outputs[0].offset);
    for (int32_t start = 0; start < n; start += (int32_t)batch) {
        int64_t b = n - start < batch ? n - start : batch;
        for (int64_t i = 0; i < b; i++) {
            user[i] = u;
            item[i] = start + (int32_t)i;
        }
        rt_write_hypers(m, arena, NULL, 0, 0);
        m->predict_step(arena, b);
        memcpy(scores + start, out, (size_t)b * sizeof *scores);
    }
}

static int best_first(const void *a, const void *b) {
    const scored *x = a, *y = b;
    if (x->score != y->score)
        return x->score > y->score ? -1 : 1;
    return x->item < y->item ? -1 : x->item > y->item;
}

static void print_top(int32_t u, const float *scores, int64_t top) {
    int32_t n = rt_ratings_item_count(), k = 0;
    unsigned char *rated = rt_ratings_rated(u);
    scored *list = rt_xmalloc((size_t)n * sizeof *list + 1);
    for (int32_t i = 0; i < n; i++)
        if (!rated[i])
            list[k++] = (scored){scores[i], i};
    qsort(list, (size_t)k, sizeof *list, best_first);
    printf("item,score\n");
    for (int32_t i = 0; i < k && i < top; i++)
        printf("%lld,%.6g\n", (long long)rt_ratings_item_raw(list[i].item), list[i].score);
    free(list);
    free(rated);
}

int rt_cmd_recommend(const rt_model *m, const rt_opts *o) {
    if (!o->load || !o->has_user) {
        fprintf(stderr, "error: recommend needs --load CKPT and --user ID (see '%s recommend --help')\n", o->prog);
        return RT_EXIT_USAGE;
    }
    int64_t batch;
    if (check_model(m) || rt_resolve_batch(m, o->batch, m->max_batch, &batch))
        return RT_EXIT_FAIL;
    char *arena = rt_setup(m, m->seed, o->load, NULL);
    if (!arena)
        return RT_EXIT_FAIL;
    int rc = 0;
    int32_t u = rt_ratings_user(o->user);
    if (!rt_ratings_known())
        rc = rt_error("%s has no user and item ids: it was not saved by training on a ratings file", o->load);
    else if (u < 0)
        rc = rt_error("user %lld is not in %s: the model has no factors for a user who was not in its training "
                      "file",
                      (long long)o->user, o->load);
    else {
        float *scores = rt_xmalloc((size_t)rt_ratings_item_count() * sizeof *scores + 1);
        rt_zero_state(m, arena);
        score_items(m, arena, u, rt_ratings_item_count(), batch, scores);
        print_top(u, scores, o->top ? o->top : 10);
        free(scores);
    }
    rt_arena_free(arena);
    return rc ? RT_EXIT_FAIL : 0;
}
