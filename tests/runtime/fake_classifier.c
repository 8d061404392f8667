/*
 * fake_classifier.c - by hand, what mdlc would generate for a softmax
 * classifier of tiny images, so that the runtime's classifier features
 * (IDX/NPY inputs, i32 labels, accuracy and the confusion matrix, the
 * hyper-parameters "training" and "step", learning-rate schedules) can be
 * tested without the compiler:
 *
 *     model classifier
 *     input  image: f32[B, 2, 2]          # raw pixels 0..255
 *     target label: i32[B]                # 0..3
 *     param  W: f32[4, 4] = zeros
 *     param  b: f32[4] = zeros
 *     logits = reshape(image, [B, 4]) / 255 @ W + b
 *     loss   sparse_cross_entropy(logits, label)
 *     metric acc = accuracy(logits, label)
 *     output probs = softmax(logits)
 *     train  sgd(lr = 2), batch = 8, epochs = 6, schedule = SCHEDULE
 *
 * with hyper-parameters lr, training and step.  The kernels check what the
 * runtime promises (mdlrt.h): train_step runs with training = 1 and step
 * equal to the number of train_steps before it, eval_step and
 * predict_step with training = 0; a broken promise makes the loss (or the
 * probabilities) NaN, which the runtime reports.  With FAKE_LR_TRACE set
 * in the environment, train_step appends "step lr" to that file.
 *
 * The schedule is chosen at build time: FAKE_SCHEDULE_{STEP, COSINE,
 * EXPONENTIAL, WARMUP}, or none.
 */
#include "mdlrt.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_BATCH 32
#define K 4

/* Arena layout, in bytes. */
enum {
    OFF_W = 0,                              /* f32[4, 4] */
    OFF_B = 64,                             /* f32[4] */
    OFF_GRAD_W = 80,                        /* f32[4, 4] */
    OFF_GRAD_B = 144,                       /* f32[4] */
    OFF_LR = 160,                           /* f32 */
    OFF_TRAINING = 164,                     /* f32 */
    OFF_STEP = 168,                         /* f32 */
    OFF_LOSS = 172,                         /* f32 */
    OFF_ACC = 176,                          /* f32 */
    OFF_IMAGE = 192,                        /* f32[B, 2, 2] */
    OFF_LABEL = OFF_IMAGE + MAX_BATCH * 16, /* i32[B] */
    OFF_PROBS = OFF_LABEL + MAX_BATCH * 4,  /* f32[B, 4] */
    ARENA_BYTES = OFF_PROBS + MAX_BATCH * 16,
};

#define F32(arena, off) ((float *)((arena) + (off)))
#define I32(arena, off) ((int32_t *)((arena) + (off)))

static float x_of(const char *a, int64_t i, int k) { return F32(a, OFF_IMAGE)[4 * i + k] / 255.0f; }

/* probs = softmax(x @ W + b) */
static void forward(char *a, int64_t batch) {
    const float *w = F32(a, OFF_W), *b = F32(a, OFF_B);
    for (int64_t i = 0; i < batch; i++) {
        double logits[K], largest = -INFINITY, sum = 0;
        for (int j = 0; j < K; j++) {
            logits[j] = b[j];
            for (int k = 0; k < 4; k++)
                logits[j] += (double)x_of(a, i, k) * w[k * K + j];
            largest = fmax(largest, logits[j]);
        }
        for (int j = 0; j < K; j++)
            sum += exp(logits[j] - largest);
        for (int j = 0; j < K; j++)
            F32(a, OFF_PROBS)[i * K + j] = (float)(exp(logits[j] - largest) / sum);
    }
}

static void loss_and_metric(char *a, int64_t batch) {
    double loss = 0, correct = 0;
    for (int64_t i = 0; i < batch; i++) {
        int32_t label = I32(a, OFF_LABEL)[i];
        const float *p = F32(a, OFF_PROBS) + i * K;
        if (label < 0 || label >= K) {
            loss = NAN;
            continue;
        }
        int best = 0;
        for (int j = 1; j < K; j++)
            if (p[j] > p[best])
                best = j;
        loss -= log(fmax(p[label], 1e-30));
        correct += best == label;
    }
    *F32(a, OFF_LOSS) = (float)(loss / (double)batch);
    *F32(a, OFF_ACC) = (float)(correct / (double)batch);
}

static void gradients(char *a, int64_t batch) {
    float *gw = F32(a, OFF_GRAD_W), *gb = F32(a, OFF_GRAD_B);
    memset(gw, 0, 16 * 4);
    memset(gb, 0, 4 * 4);
    for (int64_t i = 0; i < batch; i++)
        for (int j = 0; j < K; j++) {
            int32_t label = I32(a, OFF_LABEL)[i];
            double d = (F32(a, OFF_PROBS)[i * K + j] - (j == label)) / (double)batch;
            gb[j] += (float)d;
            for (int k = 0; k < 4; k++)
                gw[k * K + j] += (float)(d * x_of(a, i, k));
        }
}

static void poison(char *a) { *F32(a, OFF_LOSS) = NAN; }

static void predict_step(char *a, int64_t batch) {
    forward(a, batch);
    if (*F32(a, OFF_TRAINING) != 0)
        for (int64_t i = 0; i < batch * K; i++)
            F32(a, OFF_PROBS)[i] = NAN;
}

static void eval_step(char *a, int64_t batch) {
    forward(a, batch);
    loss_and_metric(a, batch);
    if (*F32(a, OFF_TRAINING) != 0)
        poison(a);
}

static void grad_step(char *a, int64_t batch) {
    forward(a, batch);
    loss_and_metric(a, batch);
    gradients(a, batch);
}

static void trace_lr(float step, float lr) {
    static FILE *trace;
    static int opened;
    if (!opened) {
        opened = 1;
        const char *path = getenv("FAKE_LR_TRACE");
        trace = path ? fopen(path, "w") : NULL;
    }
    if (trace) {
        fprintf(trace, "%.0f %.9g\n", step, lr);
        fflush(trace);
    }
}

static void train_step(char *a, int64_t batch) {
    static int64_t calls;
    forward(a, batch);
    loss_and_metric(a, batch);
    gradients(a, batch);
    float lr = *F32(a, OFF_LR), step = *F32(a, OFF_STEP);
    trace_lr(step, lr);
    for (int i = 0; i < 16; i++)
        F32(a, OFF_W)[i] -= lr * F32(a, OFF_GRAD_W)[i];
    for (int j = 0; j < K; j++)
        F32(a, OFF_B)[j] -= lr * F32(a, OFF_GRAD_B)[j];
    if (*F32(a, OFF_TRAINING) != 1 || step != (float)calls)
        poison(a);
    calls++;
}

static const rt_param params[] = {
    {.t = {"W", RT_F32, 2, {4, K}, 0, OFF_W}, .init = RT_INIT_ZEROS, .trainable = 1, .grad_offset = OFF_GRAD_W},
    {.t = {"b", RT_F32, 1, {K}, 0, OFF_B}, .init = RT_INIT_ZEROS, .trainable = 1, .grad_offset = OFF_GRAD_B},
};

static const rt_tensor inputs[] = {{"image", RT_F32, 3, {MAX_BATCH, 2, 2}, 1, OFF_IMAGE, -1, 0}};
static const rt_tensor targets[] = {{"label", RT_I32, 1, {MAX_BATCH}, 1, OFF_LABEL, -1, 0}};
static const rt_tensor outputs[] = {{"probs", RT_F32, 2, {MAX_BATCH, K}, 1, OFF_PROBS, -1, 0}};
static const rt_tensor metrics[] = {{"acc", RT_F32, 0, {0}, 0, OFF_ACC, -1, 0}};
static const rt_hyper hypers[] = {{"lr", 2, OFF_LR, -1}, {"training", 0, OFF_TRAINING, -1}, {"step", 0, OFF_STEP, -1}};

#if defined(FAKE_SCHEDULE_STEP)
#define SCHEDULE "step"
static const char *const sched_names[] = {"step_size", "gamma"};
static const double sched_values[] = {2, 0.5};
#elif defined(FAKE_SCHEDULE_COSINE)
#define SCHEDULE "cosine"
static const char *const sched_names[] = {"min_lr", "warmup"};
static const double sched_values[] = {0.1, 5};
#elif defined(FAKE_SCHEDULE_EXPONENTIAL)
#define SCHEDULE "exponential"
static const char *const sched_names[] = {"gamma"};
static const double sched_values[] = {0.8};
#elif defined(FAKE_SCHEDULE_WARMUP)
#define SCHEDULE "constant"
static const char *const sched_names[] = {"warmup"};
static const double sched_values[] = {10};
#endif

const rt_model mdl_model = {
    .name = "classifier",
    .source = "tests/runtime/fake_classifier.c",
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
    .n_metrics = 1,
    .metrics = metrics,
    .has_loss = 1,
    .loss = {"loss", RT_F32, 0, {0}, 0, OFF_LOSS, -1, 0},
    .n_hypers = 3,
    .hypers = hypers,
    .predict_step = predict_step,
    .eval_step = eval_step,
    .grad_step = grad_step,
    .train_step = train_step,
    .optimizer = "sgd",
    .batch = 8,
    .epochs = 6,
    .seed = 1,
#ifdef SCHEDULE
    .schedule = SCHEDULE,
    .n_sched_args = (int)(sizeof sched_values / sizeof sched_values[0]),
    .sched_arg_names = sched_names,
    .sched_arg_values = sched_values,
#endif
    .flops_per_train_step = 100 * MAX_BATCH,
    .flops_per_predict_step = 50 * MAX_BATCH,
};
