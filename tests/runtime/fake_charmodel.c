/*
 * fake_charmodel.c - by hand, what mdlc would generate for a character-level
 * bigram model with a recurrent state, so that the runtime's text features
 * (a .txt file as streams, the vocabulary in the checkpoint, state resets,
 * "scan_steps", `generate`) can be tested without the compiler:
 *
 *     model char_bigram
 *     input  text: i32[B, 8]          # token ids, index_range 16
 *     target next: i32[B, 8]
 *     state  seen: f32[B, 1]          # positions seen since the last reset
 *     param  W: f32[16, 16] = zeros   # logits of the next token, per token
 *     logits = W[text]                # [B, 8, 16]
 *     loss   sparse_cross_entropy(logits, next)
 *     output probs = softmax(logits)
 *     train  sgd(lr = 20), batch = 4, epochs = 3
 *
 * with hyper-parameters lr, training, step and scan_steps.  The state is
 * the recurrence in miniature: every predict_step, eval_step and
 * train_step adds the number of positions it ran (8, or scan_steps when
 * that is positive; only those positions get outputs) to each row of
 * `seen`; grad_step leaves it.  With FAKE_STATE_TRACE set in the
 * environment, each call appends "KIND seen[0]" (the value before the
 * call) to that file, so a test can see where the runtime reset it.  A
 * broken promise (training or scan_steps wrong for the entry) makes the
 * loss or the probabilities NaN.
 */
#include "mdlrt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BATCH 8
#define T 8
#define V 16

/* Arena layout, in bytes. */
enum {
    OFF_W = 0,                                /* f32[16, 16] */
    OFF_GRAD_W = OFF_W + V * V * 4,           /* f32[16, 16] */
    OFF_LR = OFF_GRAD_W + V * V * 4,          /* f32 */
    OFF_TRAINING = OFF_LR + 4,                /* f32 */
    OFF_STEP = OFF_TRAINING + 4,              /* f32 */
    OFF_SCAN = OFF_STEP + 4,                  /* f32 */
    OFF_LOSS = OFF_SCAN + 4,                  /* f32 */
    OFF_SEEN = OFF_LOSS + 12,                 /* f32[B, 1] */
    OFF_TEXT = OFF_SEEN + MAX_BATCH * 4,      /* i32[B, 8] */
    OFF_NEXT = OFF_TEXT + MAX_BATCH * T * 4,  /* i32[B, 8] */
    OFF_PROBS = OFF_NEXT + MAX_BATCH * T * 4, /* f32[B, 8, 16] */
    ARENA_BYTES = OFF_PROBS + MAX_BATCH * T * V * 4,
};

#define F32(arena, off) ((float *)((arena) + (off)))
#define I32(arena, off) ((int32_t *)((arena) + (off)))

static void trace(const char *kind, const char *a) {
    static FILE *f;
    static int opened;
    if (!opened) {
        opened = 1;
        const char *path = getenv("FAKE_STATE_TRACE");
        f = path ? fopen(path, "w") : NULL;
    }
    if (f) {
        fprintf(f, "%s %.0f\n", kind, F32(a, OFF_SEEN)[0]);
        fflush(f);
    }
}

/* The positions a call runs: all T, or the first scan_steps. */
static int positions(const char *a) {
    float scan = *F32(a, OFF_SCAN);
    return scan > 0 && scan < T ? (int)scan : T;
}

/* probs[b, t, :] = softmax(W[text[b, t], :]); -1 on a bad token id. */
static int forward(char *a, int64_t batch, int n) {
    const float *w = F32(a, OFF_W);
    for (int64_t b = 0; b < batch; b++)
        for (int t = 0; t < n; t++) {
            int32_t x = I32(a, OFF_TEXT)[b * T + t];
            if (x < 0 || x >= V)
                return -1;
            const float *row = w + x * V;
            float *p = F32(a, OFF_PROBS) + (b * T + t) * V;
            double largest = -INFINITY, sum = 0;
            for (int j = 0; j < V; j++)
                largest = fmax(largest, row[j]);
            for (int j = 0; j < V; j++)
                sum += exp(row[j] - largest);
            for (int j = 0; j < V; j++)
                p[j] = (float)(exp(row[j] - largest) / sum);
        }
    return 0;
}

static void advance_state(char *a, int64_t batch, int n) {
    for (int64_t b = 0; b < batch; b++)
        F32(a, OFF_SEEN)[b] += (float)n;
}

/* The mean cross-entropy over batch x T positions. */
static void loss(char *a, int64_t batch) {
    double sum = 0;
    for (int64_t i = 0; i < batch * T; i++) {
        int32_t y = I32(a, OFF_NEXT)[i];
        if (y < 0 || y >= V) {
            *F32(a, OFF_LOSS) = NAN;
            return;
        }
        sum -= log(fmax(F32(a, OFF_PROBS)[i * V + y], 1e-30));
    }
    *F32(a, OFF_LOSS) = (float)(sum / (double)(batch * T));
}

static void gradients(char *a, int64_t batch) {
    float *g = F32(a, OFF_GRAD_W);
    memset(g, 0, V * V * 4);
    for (int64_t i = 0; i < batch * T; i++) {
        int32_t x = I32(a, OFF_TEXT)[i], y = I32(a, OFF_NEXT)[i];
        for (int j = 0; j < V; j++)
            g[x * V + j] += (float)((F32(a, OFF_PROBS)[i * V + j] - (j == y)) / (double)(batch * T));
    }
}

/* eval and train run the whole sequence with "training" as promised. */
static int broken(const char *a, float training) { return *F32(a, OFF_SCAN) != 0 || *F32(a, OFF_TRAINING) != training; }

static void predict_step(char *a, int64_t batch) {
    trace("predict", a);
    int n = positions(a);
    if (forward(a, batch, n) || *F32(a, OFF_TRAINING) != 0)
        for (int64_t i = 0; i < batch * T * V; i++)
            F32(a, OFF_PROBS)[i] = NAN;
    advance_state(a, batch, n);
}

static void eval_step(char *a, int64_t batch) {
    trace("eval", a);
    if (forward(a, batch, T) == 0)
        loss(a, batch);
    if (broken(a, 0))
        *F32(a, OFF_LOSS) = NAN;
    advance_state(a, batch, T);
}

static void grad_step(char *a, int64_t batch) {
    if (forward(a, batch, T) == 0)
        loss(a, batch);
    gradients(a, batch);
}

static void train_step(char *a, int64_t batch) {
    trace("train", a);
    if (forward(a, batch, T)) {
        *F32(a, OFF_LOSS) = NAN;
        return;
    }
    loss(a, batch);
    gradients(a, batch);
    float lr = *F32(a, OFF_LR);
    for (int i = 0; i < V * V; i++)
        F32(a, OFF_W)[i] -= lr * F32(a, OFF_GRAD_W)[i];
    if (broken(a, 1))
        *F32(a, OFF_LOSS) = NAN;
    advance_state(a, batch, T);
}

static const rt_param params[] = {
    {.t = {"W", RT_F32, 2, {V, V}, 0, OFF_W}, .init = RT_INIT_ZEROS, .trainable = 1, .grad_offset = OFF_GRAD_W},
    {.t = {"seen", RT_F32, 2, {MAX_BATCH, 1}, 1, OFF_SEEN}, .init = RT_INIT_NONE, .grad_offset = -1, .state = 1},
};

static const rt_tensor inputs[] = {{"text", RT_I32, 2, {MAX_BATCH, T}, 1, OFF_TEXT, -1, V}};
static const rt_tensor targets[] = {{"next", RT_I32, 2, {MAX_BATCH, T}, 1, OFF_NEXT, -1, V}};
static const rt_tensor outputs[] = {{"probs", RT_F32, 3, {MAX_BATCH, T, V}, 1, OFF_PROBS, -1, 0}};
static const rt_hyper hypers[] = {{"lr", 20, OFF_LR, -1},
                                  {"training", 0, OFF_TRAINING, -1},
                                  {"step", 0, OFF_STEP, -1},
                                  {"scan_steps", 0, OFF_SCAN, -1}};

const rt_model mdl_model = {
    .name = "char_bigram",
    .source = "tests/runtime/fake_charmodel.c",
    .arena_bytes = ARENA_BYTES,
    .max_batch = MAX_BATCH,
    .n_params = 2,
    .params = params,
    .n_inputs = 1,
    .inputs = inputs,
    .n_targets = 1,
    .targets = targets,
    .n_outputs = 1,
    .outputs = outputs,
    .has_loss = 1,
    .loss = {"loss", RT_F32, 0, {0}, 0, OFF_LOSS, -1, 0},
    .n_hypers = 4,
    .hypers = hypers,
    .predict_step = predict_step,
    .eval_step = eval_step,
    .grad_step = grad_step,
    .train_step = train_step,
    .optimizer = "sgd",
    .batch = 4,
    .epochs = 3,
    .seed = 1,
    .flops_per_train_step = 1000 * MAX_BATCH,
    .flops_per_predict_step = 500 * MAX_BATCH,
};
