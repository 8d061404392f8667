/*
 * eval.h - a reference interpreter for the graph IR, in double precision.
 *
 * It is the oracle the generated code is tested against and what the
 * finite-difference gradient checks of autodiff run on: slow, plain, and
 * written from the op semantics in ops.def without sharing code with
 * codegen.  Every tensor is a dense row-major array of doubles at the
 * given batch size; i32 tensors hold integral doubles and their arithmetic
 * wraps like two's-complement int32.
 *
 * Semantics the compiled code shares (codegen/ implements the same rules):
 *   i32 division truncates; x / 0 = 0 and INT_MIN / -1 = INT_MIN
 *   cast f32 -> i32 truncates toward zero, saturates, NaN -> 0
 *   min, max, reduce_max ignore a NaN operand (IEEE minNum / maxNum)
 *   relu(x) = x > 0 ? x : 0; sign(x) is -1, 0 or 1 (0 for NaN)
 *   comparisons give 1.0 or 0.0 (NaN compares unequal to everything)
 *   where(c, a, b) = c != 0 ? a : b
 *   assign's value is the slot's new content (input 1); the slot itself is
 *   left alone, so the caller decides when the update takes effect
 */
#ifndef MDL_IR_EVAL_H
#define MDL_IR_EVAL_H

#include "ir.h"

/* Elements of a tensor of shape `s` when the batch dimension is `batch`. */
int64_t ir_numel_at(const ir_shape *s, int64_t batch);

/* One element of an elementwise op (class UNARY, BINARY or TERNARY): x
 * holds its operands, as many as its arity, and dtype is the node's, which
 * says whether the arithmetic is i32 (wrapping, as above) or floating point
 * (in double).  The interpreter computes every element with it and
 * simplify folds constants with it, so the two cannot disagree. */
double ir_eval_scalar(ir_op op, ir_dtype dtype, const double *x);

/* Computes every live node (all nodes if live is NULL) in id order.
 * values has g->n_nodes slots.  The caller fills the slot of every live
 * INPUT, PARAM and HYPER with an array of ir_numel_at(shape, batch) doubles
 * that it owns; ir_eval stores a fresh array in the slot of every other live
 * node, to be freed with ir_eval_release (also after a failure).  Returns
 * 0, or -1 after printing why to stderr (a leaf without a value). */
int ir_eval(const ir_graph *g, const unsigned char *live, int64_t batch, double **values);

/* Frees the arrays ir_eval allocated (same g and live) and clears their slots. */
void ir_eval_release(const ir_graph *g, const unsigned char *live, double **values);

#endif
