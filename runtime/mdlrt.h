/*
 * mdlrt.h - the contract between code that mdlc generates and the runtime.
 *
 * mdlc compiles a model into kernels (an object file) plus a small C file
 * that defines one constant `mdl_model` of type rt_model: the table of every
 * tensor the runtime has to know about (parameters, optimizer state, inputs,
 * targets, outputs, metrics, the loss, gradients, hyper-parameters), where
 * each one lives in a single arena, and the entry points.  The runtime
 * (libmdlrt.a) supplies main(), reads that table and does everything else:
 * data loading, batching, the training loop, checkpoints, prediction,
 * gradient checking.  It never sees LLVM or the compiler.
 *
 * Memory: the executable allocates one arena of `arena_bytes` bytes, aligned
 * to 64 bytes and zero-filled.  Every tensor is at a fixed byte offset in it.
 * Tensors are dense, row-major (C order).  A dimension may be the batch
 * dimension: it is compiled with an upper bound (`max_batch`) and its actual
 * size is passed to each kernel call; the layout of a tensor with a batch
 * dimension uses the actual batch size, i.e. a [B, 3] input with batch 10
 * occupies the first 30 elements of its slot.
 *
 * Kernels: every entry point has the signature
 *     void kernel(char *arena, int64_t batch);
 * with 1 <= batch <= max_batch.
 *   predict_step: reads inputs, writes outputs.
 *   eval_step:    reads inputs and targets, writes loss, metrics, outputs.
 *   grad_step:    like eval_step, and also writes the gradient of the loss
 *                 with respect to every trainable parameter into its
 *                 grad_offset slot.  Parameters are not changed.
 *   train_step:   like eval_step, then applies one optimizer update to the
 *                 parameters and the optimizer state (in place).  Reads the
 *                 hyper-parameter slots (e.g. "lr") that the runtime sets
 *                 before each call.
 * predict_step, eval_step and train_step also overwrite every `state` slot
 * (rt_param.state) with the state after the step (an LSTM's new h and c),
 * so that the next call carries on from there; grad_step leaves them.  The
 * runtime zeroes the state at the start of every training epoch, before
 * an evaluation and before `generate`.
 * The loss and metrics written are the values for that batch (a mean over
 * the batch when the model's loss is a mean).
 *
 * Hyper-parameters: the runtime writes every hyper-parameter slot before
 * every kernel call.  Three names mean something to it:
 *   "lr"        the learning rate: the base value (the descriptor's, or
 *               --lr) through the `train` block's schedule, per step;
 *   "training"  1.0 before train_step and grad_step, 0.0 before eval_step
 *               and predict_step (gradcheck uses one value for both: 0
 *               unless --hyper training=1), for dropout and the like;
 *   "step"      the number of train_steps done before this one in the run,
 *               as a float (0 for the first), e.g. to seed dropout masks;
 *   "scan_steps" how many steps of each recurrence to run: 0 (what train,
 *               eval and predict always write) means its whole compiled
 *               length, N > 0 only the first N (`generate` writes 1 to
 *               advance one character per predict_step).
 * Each is set only if the model has a hyper-parameter of that name.
 *
 * The f64 entries: eval_step_f64 and grad_step_f64 compute exactly what
 * eval_step and grad_step do with every f32 tensor a double (8 bytes; i32
 * tensors stay i32), in an arena of their own of `arena_bytes_f64` bytes
 * (64-byte aligned, zero-filled) where every tensor is at its `offset_f64`
 * (gradients at `grad_offset_f64`, hyper-parameters at their `offset_f64`,
 * written as doubles).  They exist for `gradcheck`, which checks in double
 * so that finite differences are not drowned by f32 rounding.  They may be
 * NULL (mdlc --no-f64-check, or an older or hand-written descriptor); the
 * offsets are then meaningless.
 */
#ifndef MDLRT_H
#define MDLRT_H

#include <stdint.h>

#define RT_MAX_RANK 6

enum rt_dtype { RT_F32 = 0, RT_I32 = 1 };

/* One tensor slot in the arena. */
typedef struct rt_tensor {
    const char *name;
    int dtype;                    /* enum rt_dtype; both are 4 bytes */
    int rank;                     /* 0 for a scalar */
    int64_t dims[RT_MAX_RANK];    /* a batch dimension holds max_batch */
    uint32_t batch_mask;          /* bit i set: dims[i] is the batch dim */
    int64_t offset;               /* byte offset in the arena */
    int64_t offset_f64;           /* in the f64 arena (see above) */
    int64_t index_range;          /* an i32 input the model uses as class
                                     labels or indices in [0, index_range)
                                     (one_hot, gather); 0: not known */
} rt_tensor;

enum rt_init {
    RT_INIT_NONE = 0,      /* optimizer state etc.: zero */
    RT_INIT_ZEROS,
    RT_INIT_ONES,
    RT_INIT_CONSTANT,      /* a = value */
    RT_INIT_UNIFORM,       /* U(a, b) */
    RT_INIT_NORMAL,        /* N(mean a, std b) */
    RT_INIT_GLOROT_UNIFORM,/* U(-l, l), l = sqrt(6 / (fan_in + fan_out)) */
    RT_INIT_HE_NORMAL,     /* N(0, sqrt(2 / fan_in)) */
};

/* A persistent tensor: a parameter, a piece of optimizer state or a
 * recurrent state.  These are what checkpoints hold, in this order, under
 * these names (a state with a batch dimension at max_batch). */
typedef struct rt_param {
    rt_tensor t;             /* only a state may have a batch dimension */
    int init;                /* enum rt_init */
    double init_a, init_b;
    int64_t fan_in, fan_out; /* for glorot / he */
    int trainable;           /* 1: a parameter; 0: optimizer state */
    int64_t grad_offset;     /* trainable: where grad_step writes dL/dparam
                                (same shape and dtype); -1 otherwise */
    int64_t grad_offset_f64; /* the same in the f64 arena */
    int state;               /* 1: a `state` declaration: not trainable, not
                                optimizer state, written by the steps (see
                                above), zeroed by the runtime; 2: the same,
                                but a cache of generate_step (an attention's
                                keys and values so far), not checkpointed */
} rt_param;

/* A scalar f32 the runtime writes before each train_step. */
typedef struct rt_hyper {
    const char *name;        /* "lr" */
    double value;            /* the value the .mdl file gave */
    int64_t offset;
    int64_t offset_f64;      /* in the f64 arena: a double */
} rt_hyper;

typedef void (*rt_kernel)(char *arena, int64_t batch);

/* One kernel of train_step as `train --check-numerics` sees it: the
 * operation (the root's, for a group of `fused` elementwise operations),
 * where in the .mdl file it comes from (line 0: nowhere in particular; a
 * gradient comes from the expression it differentiates) with that line's
 * text, its result and the buffers it reads, at their train_step offsets. */
#define RT_CHECK_MAX_IN 12
typedef struct rt_check {
    const char *op;
    int fused;
    int line, col;
    int backward;             /* part of a gradient (of the expression at line:col) */
    const char *members;      /* a fused group's operations, with their places: "mul (3:9), log (3:5)" */
    const char *text;
    rt_tensor out;
    int n_in;
    rt_tensor in[RT_CHECK_MAX_IN];
} rt_check;

typedef struct rt_model {
    const char *name;         /* the model's name in the .mdl file */
    const char *source;       /* path of the .mdl file it was compiled from */
    const char *source_hash;  /* "fnv1a64:" and 16 hex digits of its text; may be NULL */
    int64_t arena_bytes;
    int64_t max_batch;

    int n_params;             /* parameters and optimizer state */
    const rt_param *params;
    int n_inputs;             /* `input` declarations, in order */
    const rt_tensor *inputs;
    int n_targets;            /* `target` declarations, in order */
    const rt_tensor *targets;
    int n_outputs;            /* `output` declarations, in order */
    const rt_tensor *outputs;
    int n_metrics;            /* `metric` declarations: f32 scalars */
    const rt_tensor *metrics;
    int has_loss;
    rt_tensor loss;           /* f32 scalar */
    int n_hypers;
    const rt_hyper *hypers;
    int n_checks;             /* train_step's kernels, in order (rt_check) */
    const rt_check *checks;

    /* Entry points; NULL where the model has none (no loss -> no train). */
    rt_kernel predict_step, eval_step, grad_step, train_step;
    /* A model with state: predict over one position of the time axis, for
     * `generate` (its own inputs and outputs, the time axis of length 1;
     * the params, states and hypers are the model's).  NULL otherwise. */
    rt_kernel generate_step;
    rt_kernel prepare_step; /* NULL, or run once before generate_step after
                               the weights change: it computes what
                               generate_step reads from them alone */
    int n_gen_inputs;
    const rt_tensor *gen_inputs;
    int n_gen_outputs;
    const rt_tensor *gen_outputs;

    /* The `train` block (command-line options override it). */
    const char *optimizer;    /* "sgd", "momentum", "adam", "adamw", "rmsprop" */
    int64_t batch;
    int64_t epochs;
    uint64_t seed;
    /* The learning-rate schedule: NULL (constant), "constant", "step",
     * "exponential" or "cosine", with named settings (step_size, gamma,
     * min_lr, warmup); see the runtime's README for the formulas. */
    const char *schedule;
    int n_sched_args;
    const char *const *sched_arg_names;
    const double *sched_arg_values;

    /* For `info`. */
    int64_t flops_per_train_step; /* at batch = max_batch */
    int64_t flops_per_predict_step;
    int64_t scratch_bytes;        /* the part of the arena that is reused */

    /* The f64 entries and their arena (see above); NULL and 0 without. */
    rt_kernel eval_step_f64, grad_step_f64;
    int64_t arena_bytes_f64;
} rt_model;

/* Defined by the code mdlc generates. */
extern const rt_model mdl_model;

/* train_step calls mdl_rt_check(arena, batch, i) after its i-th checked
 * kernel (rt_model.checks) while mdl_rt_numerics is nonzero (rt_numerics.c). */
extern int mdl_rt_numerics;
void mdl_rt_check(char *arena, int64_t batch, int32_t index);

/* Called by the generated code for a large matrix product: runs fn (the
 * generated GEMM, C (+)= A B with the strides documented in
 * codegen/cg_internal.h) on pieces of C, split over the runtime's threads
 * (rt_pool.c); the result is the same bit for bit as fn on one thread. */
typedef void (*rt_sgemm_fn)(float *c, const float *a, const float *b, int64_t m, int64_t n, int64_t k,
                            int64_t a_row, int64_t a_col, int64_t b_row, int64_t b_col, int64_t ldc,
                            int64_t accumulate);
void mdl_rt_sgemm(rt_sgemm_fn fn, float *c, const float *a, const float *b, int64_t m, int64_t n, int64_t k,
                  int64_t a_row, int64_t a_col, int64_t b_row, int64_t b_col, int64_t ldc, int64_t accumulate);

/* Called by the generated code: body(ctx, begin, end) over pieces of
 * [0, n) that cover it, on the runtime's threads; the pieces are disjoint
 * and the caller's body must give the same result however [0, n) is cut.
 * body must not call back into mdl_rt_*. */
typedef void (*rt_range_fn)(void *ctx, int64_t begin, int64_t end);
void mdl_rt_parallel_for(rt_range_fn body, void *ctx, int64_t n);

#endif
