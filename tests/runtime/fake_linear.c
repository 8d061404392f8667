/*
 * fake_linear.c - by hand, what mdlc would generate for linear regression,
 * so the runtime can be tested before the compiler exists.
 *
 *     model linear
 *     input  x: f32[B, 2]
 *     target y: f32[B]
 *     param  w: f32[2] = normal(0, 0.01)
 *     param  b: f32[]  = zeros
 *     output pred = x @ w + b
 *     loss   mean((pred - y)^2)
 *     metric mae = mean(abs(pred - y))
 *     train  sgd(lr = 0.05), batch = 16, epochs = 10
 *
 * plus an i32 optimizer-state scalar `opt.step` (a step counter), so that
 * checkpoints carry both dtypes and a checkpoint without optimizer state
 * can be tested.  Built with FAKE_BAD_GRADIENT, dL/db is off by a factor
 * of 2, which gradcheck must catch.
 *
 * Like mdlc's output it also has the f64 entries eval_step_f64 and
 * grad_step_f64 (the same model in double, in an arena of their own) that
 * gradcheck runs: FAKE_BAD_GRADIENT spoils dL/db in both, as a compiler bug
 * in a shared gradient rule would; FAKE_BAD_F32_GRADIENT only in the f32
 * grad_step (a bug in an f32 kernel); FAKE_NO_F64 leaves the f64 entries
 * out, as mdlc --no-f64-check does.
 *
 * Like kernels from a memory planner that reuses slots, grad_step and
 * train_step scribble over the input slot when done and eval_step over the
 * gradient slots: the runtime must gather before every call and copy
 * gradients out at once.
 */
#include "mdlrt.h"

#include <math.h>
#include <string.h>

#define MAX_BATCH 64

/* Arena layout, in bytes. */
enum {
    OFF_W = 0,                         /* f32[2] */
    OFF_B = 8,                         /* f32 */
    OFF_STEP = 12,                     /* i32 */
    OFF_GRAD_W = 16,                   /* f32[2] */
    OFF_GRAD_B = 24,                   /* f32 */
    OFF_LR = 28,                       /* f32 */
    OFF_LOSS = 32,                     /* f32 */
    OFF_MAE = 36,                      /* f32 */
    OFF_X = 64,                        /* f32[B, 2] */
    OFF_Y = OFF_X + MAX_BATCH * 2 * 4, /* f32[B] */
    OFF_PRED = OFF_Y + MAX_BATCH * 4,  /* f32[B] */
    ARENA_BYTES = OFF_PRED + MAX_BATCH * 4,
};

#define F32(arena, off) ((float *)((arena) + (off)))
#define F64(arena, off) ((double *)((arena) + (off)))

/* The f64 arena: the same tensors as doubles (the i32 step is not in it). */
enum {
    OFF64_W = 0,                             /* f64[2] */
    OFF64_B = 16,                            /* f64 */
    OFF64_GRAD_W = 24,                       /* f64[2] */
    OFF64_GRAD_B = 40,                       /* f64 */
    OFF64_LR = 48,                           /* f64 */
    OFF64_LOSS = 56,                         /* f64 */
    OFF64_MAE = 64,                          /* f64 */
    OFF64_X = 128,                           /* f64[B, 2] */
    OFF64_Y = OFF64_X + MAX_BATCH * 2 * 8,   /* f64[B] */
    OFF64_PRED = OFF64_Y + MAX_BATCH * 8,    /* f64[B] */
    ARENA64_BYTES = OFF64_PRED + MAX_BATCH * 8,
};

/* pred = x @ w + b;  x: [B, 2], w: [2] -> [B] */
static void forward(char *a, int64_t batch) {
    const float *x = F32(a, OFF_X), *w = F32(a, OFF_W);
    float *pred = F32(a, OFF_PRED);
    for (int64_t i = 0; i < batch; i++)
        pred[i] = x[2 * i] * w[0] + x[2 * i + 1] * w[1] + *F32(a, OFF_B);
}

/* loss = mean((pred - y)^2), mae = mean(|pred - y|) */
static void loss_and_metric(char *a, int64_t batch) {
    const float *pred = F32(a, OFF_PRED), *y = F32(a, OFF_Y);
    double squares = 0, absolutes = 0;
    for (int64_t i = 0; i < batch; i++) {
        double r = (double)pred[i] - y[i];
        squares += r * r;
        absolutes += fabs(r);
    }
    *F32(a, OFF_LOSS) = (float)(squares / (double)batch);
    *F32(a, OFF_MAE) = (float)(absolutes / (double)batch);
}

static void scribble(char *a, int64_t off, int64_t bytes) { memset(a + off, 0xff, (size_t)bytes); /* NaNs as f32 */ }

static void predict_step(char *a, int64_t batch) { forward(a, batch); }

static void eval_only(char *a, int64_t batch) {
    forward(a, batch);
    loss_and_metric(a, batch);
}

static void eval_step(char *a, int64_t batch) {
    eval_only(a, batch);
    scribble(a, OFF_GRAD_W, 12);
}

/* dL/dw_j = 2/B sum_i (pred_i - y_i) x_ij,  dL/db = 2/B sum_i (pred_i - y_i) */
static void gradients(char *a, int64_t batch) {
    const float *x = F32(a, OFF_X), *y = F32(a, OFF_Y);
    const float *pred = F32(a, OFF_PRED);
    double gw0 = 0, gw1 = 0, gb = 0;
    for (int64_t i = 0; i < batch; i++) {
        double r = (double)pred[i] - y[i];
        gw0 += r * x[2 * i];
        gw1 += r * x[2 * i + 1];
        gb += r;
    }
#if defined(FAKE_BAD_GRADIENT) || defined(FAKE_BAD_F32_GRADIENT)
    double scale_b = 1.0 / (double)batch;
#else
    double scale_b = 2.0 / (double)batch;
#endif
    F32(a, OFF_GRAD_W)[0] = (float)(2 * gw0 / (double)batch);
    F32(a, OFF_GRAD_W)[1] = (float)(2 * gw1 / (double)batch);
    *F32(a, OFF_GRAD_B) = (float)(scale_b * gb);
}

static void grad_step(char *a, int64_t batch) {
    eval_only(a, batch);
    gradients(a, batch);
    scribble(a, OFF_X, batch * 2 * 4);
}

static void train_step(char *a, int64_t batch) {
    eval_only(a, batch);
    gradients(a, batch);
    float lr = *F32(a, OFF_LR);
    F32(a, OFF_W)[0] -= lr * F32(a, OFF_GRAD_W)[0];
    F32(a, OFF_W)[1] -= lr * F32(a, OFF_GRAD_W)[1];
    *F32(a, OFF_B) -= lr * *F32(a, OFF_GRAD_B);
    int32_t step;
    memcpy(&step, a + OFF_STEP, 4);
    step++;
    memcpy(a + OFF_STEP, &step, 4);
    scribble(a, OFF_X, batch * 2 * 4);
}

#ifndef FAKE_NO_F64
/* The f64 entries: forward, loss, metric and gradients in double. */
static void eval_f64(char *a, int64_t batch) {
    const double *x = F64(a, OFF64_X), *w = F64(a, OFF64_W), *y = F64(a, OFF64_Y);
    double *pred = F64(a, OFF64_PRED), squares = 0, absolutes = 0;
    for (int64_t i = 0; i < batch; i++) {
        pred[i] = x[2 * i] * w[0] + x[2 * i + 1] * w[1] + *F64(a, OFF64_B);
        double r = pred[i] - y[i];
        squares += r * r;
        absolutes += fabs(r);
    }
    *F64(a, OFF64_LOSS) = squares / (double)batch;
    *F64(a, OFF64_MAE) = absolutes / (double)batch;
}

static void eval_step_f64(char *a, int64_t batch) {
    eval_f64(a, batch);
    scribble(a, OFF64_GRAD_W, 24);
}

static void grad_step_f64(char *a, int64_t batch) {
    eval_f64(a, batch);
    const double *x = F64(a, OFF64_X), *y = F64(a, OFF64_Y), *pred = F64(a, OFF64_PRED);
    double gw0 = 0, gw1 = 0, gb = 0;
    for (int64_t i = 0; i < batch; i++) {
        double r = pred[i] - y[i];
        gw0 += r * x[2 * i];
        gw1 += r * x[2 * i + 1];
        gb += r;
    }
#ifdef FAKE_BAD_GRADIENT
    double scale_b = 1.0 / (double)batch;
#else
    double scale_b = 2.0 / (double)batch;
#endif
    F64(a, OFF64_GRAD_W)[0] = 2 * gw0 / (double)batch;
    F64(a, OFF64_GRAD_W)[1] = 2 * gw1 / (double)batch;
    *F64(a, OFF64_GRAD_B) = scale_b * gb;
    scribble(a, OFF64_X, batch * 2 * 8);
}
#endif

static const rt_param params[] = {
    {.t = {"w", RT_F32, 1, {2}, 0, OFF_W, OFF64_W, 0},
     .init = RT_INIT_NORMAL,
     .init_a = 0,
     .init_b = 0.01,
     .fan_in = 2,
     .fan_out = 1,
     .trainable = 1,
     .grad_offset = OFF_GRAD_W,
     .grad_offset_f64 = OFF64_GRAD_W},
    {.t = {"b", RT_F32, 0, {0}, 0, OFF_B, OFF64_B, 0},
     .init = RT_INIT_ZEROS,
     .trainable = 1,
     .grad_offset = OFF_GRAD_B,
     .grad_offset_f64 = OFF64_GRAD_B},
    {.t = {"opt.step", RT_I32, 0, {0}, 0, OFF_STEP, -1, 0},
     .init = RT_INIT_NONE,
     .trainable = 0,
     .grad_offset = -1,
     .grad_offset_f64 = -1},
};

static const rt_tensor inputs[] = {{"x", RT_F32, 2, {MAX_BATCH, 2}, 1, OFF_X, OFF64_X, 0}};
static const rt_tensor targets[] = {{"y", RT_F32, 1, {MAX_BATCH}, 1, OFF_Y, OFF64_Y, 0}};
static const rt_tensor outputs[] = {{"pred", RT_F32, 1, {MAX_BATCH}, 1, OFF_PRED, OFF64_PRED, 0}};
static const rt_tensor metrics[] = {{"mae", RT_F32, 0, {0}, 0, OFF_MAE, OFF64_MAE, 0}};
static const rt_hyper hypers[] = {{"lr", 0.05, OFF_LR, OFF64_LR}};

const rt_model mdl_model = {
    .name = "linear",
    .source = "tests/runtime/fake_linear.c",
    .arena_bytes = ARENA_BYTES,
    .max_batch = MAX_BATCH,
    .n_params = 3,
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
    .loss = {"loss", RT_F32, 0, {0}, 0, OFF_LOSS, OFF64_LOSS, 0},
    .n_hypers = 1,
    .hypers = hypers,
    .predict_step = predict_step,
    .eval_step = eval_step,
    .grad_step = grad_step,
    .train_step = train_step,
    .optimizer = "sgd",
    .batch = 16,
    .epochs = 10,
    .seed = 42,
    .flops_per_train_step = 14 * MAX_BATCH,
    .flops_per_predict_step = 4 * MAX_BATCH,
    .scratch_bytes = 0,
#ifndef FAKE_NO_F64
    .eval_step_f64 = eval_step_f64,
    .grad_step_f64 = grad_step_f64,
    .arena_bytes_f64 = ARENA64_BYTES,
#endif
};
