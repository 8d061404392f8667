/*
 * rt_lib.h - the runtime's side of an embedded model (mdlc -c).
 *
 * `mdlc -c model.mdl` writes model.o and model.h.  The object holds the
 * kernels, the descriptor (mdl_model, mdlrt.h), the functions declared in
 * model.h and the part of libmdlrt.a they need, with every symbol but
 * model.h's made local.  The functions of model.h, which take and return
 * the model's own types (`house_price *`, one `const float *` per input),
 * are thin wrappers that mdlc generates (codegen/cg_descriptor.c) around
 * the generic functions below, which take the descriptor and arrays of
 * pointers in declaration order.  docs/embedding.md is the user's manual.
 *
 * Every function that can fail returns 0 or -1; the instance's one-line
 * message is then rt_lib_error().  Nothing is printed.
 */
#ifndef RT_LIB_H
#define RT_LIB_H

#include "mdlrt.h"

#include <stdint.h>

typedef struct rt_lib rt_lib;

/* An instance: a zero-filled arena with the parameters initialised from
 * the train block's seed, as `train` starts.  NULL when out of memory
 * (the reason: rt_lib_error(NULL)). */
rt_lib *rt_lib_create(const rt_model *m);
void rt_lib_free(rt_lib *lib);
/* The last failure's message ("" if none); with NULL, that of the last
 * rt_lib_create that failed. */
const char *rt_lib_error(const rt_lib *lib);

/* Parameters afresh from seed, optimizer and recurrent state zero, the
 * step count 0. */
int rt_lib_init(rt_lib *lib, uint64_t seed);
/* Checkpoints, the executable's format (rt_ckpt.c): a load checks the
 * whole file first and changes nothing when it fails; it zeroes the
 * recurrent state and the step count. */
int rt_lib_load(rt_lib *lib, const char *path);
int rt_lib_save(rt_lib *lib, const char *path);

/* inputs[i] and targets[i] point at the i-th input and target, each a
 * dense array of the declared shape with the batch dimension `batch`
 * (1 <= batch <= max_batch), f32 or i32 as declared.  train_step applies
 * one optimizer update and counts a step; loss (may be NULL) gets the
 * batch's loss.  evaluate writes no parameter; metrics (may be NULL) gets
 * n_metrics values. */
int rt_lib_train_step(rt_lib *lib, int64_t batch, const void *const *inputs, const void *const *targets, float *loss);
int rt_lib_evaluate(rt_lib *lib, int64_t batch, const void *const *inputs, const void *const *targets, float *loss,
                    float *metrics);
/* outputs[i] gets the i-th output at the same batch. */
int rt_lib_predict(rt_lib *lib, int64_t batch, const void *const *inputs, void *const *outputs);

/* Hyper-parameters by name; "training", "step", "scan_steps" and
 * "position" are the runtime's and cannot be set. */
int rt_lib_set_hyper(rt_lib *lib, const char *name, double value);
int rt_lib_get_hyper(rt_lib *lib, const char *name, double *value);

int64_t rt_lib_steps(const rt_lib *lib);
void rt_lib_set_steps(rt_lib *lib, int64_t steps);
void rt_lib_reset_state(rt_lib *lib);

/* Threads for large matrix products, for every instance of this model
 * object: n >= 1, or 0 for the executable's default (MDL_THREADS, else
 * one per CPU up to 8).  Returns the number now used. */
int rt_lib_set_threads(int n);

#endif
