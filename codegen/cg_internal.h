/*
 * cg_internal.h - what the files of codegen/ share, and nothing outside it.
 *
 * Every scheduled node becomes one internal LLVM function, its kernel:
 *     void @n<id>.<op>(ptr out, ptr in..., i64 batch)
 * or, for the root of a fused group of elementwise nodes (passes/fuse.c),
 *     void @n<id>.fused(ptr out, ptr group input..., i64 batch)
 * taking a pointer to its output buffer, one pointer per input that has a
 * buffer (a CONST input has none: its value is folded into the code), and the
 * run-time batch size.  An entry point is then a straight list of calls that
 * pass arena + offset for each buffer.  One kernel serves every entry that
 * schedules the node, so the module holds each loop nest once.
 *
 * A kernel is written by a per-op emitter (cg_kernel_<name>) into a
 * cg_kernel context, with the loop and index helpers of cg_loops.c.
 * Elementwise ops share one kernel emitter and differ only in their scalar
 * emitter (cg_scalar_<name>), which maps LLVM values to an LLVM value so
 * that a fused kernel chains several of them in one loop body.
 * Both tables are built from ops.def: an op without its emitter does not
 * compile.
 */
#ifndef MDL_CG_INTERNAL_H
#define MDL_CG_INTERNAL_H

#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>

#include "codegen.h"

/* LLVM types used everywhere, made once per module.  `real` is the type of
 * an IR_F32 element in this module: float, or double in the f64 variant
 * (see cg_module.c); kernels use it, or cg_type(k, IR_F32), for every
 * tensor element and float constant.  f32 and f64 are always float and
 * double (for an accumulator that is wider on purpose). */
typedef struct cg_types {
    LLVMTypeRef f32, f64, i1, i32, i64, ptr, void_;
    LLVMTypeRef real;
} cg_types;

/* The state of the kernel being written. */
typedef struct cg_kernel {
    LLVMContextRef ctx;
    LLVMModuleRef mod;
    LLVMBuilderRef b;
    cg_types t;
    int f64;                       /* the f64 variant: t.real is double */
    int parallel;                  /* matrix products through mdl_rt_sgemm */
    int avx512;                    /* the GEMM micro-tile may use 16-wide vectors */
    LLVMValueRef fn;
    LLVMBasicBlockRef entry_block; /* where allocas go */
    LLVMValueRef batch;            /* i64: the run-time batch size */
    const ir_graph *g;
    const ir_node *node;
    LLVMValueRef out;   /* the buffer the kernel writes */
    LLVMValueRef in[3]; /* per input: its buffer, or NULL (CONST, unread) */
} cg_kernel;

/* ------------------------------------------------------------ cg_module.c */

/* Builds the whole module (kernels and entry points) in `ctx`.  Flags:
 * CG_BUILD_PARALLEL, large matrix products call the runtime's
 * mdl_rt_sgemm, which may split them over threads (cg_options.parallel);
 * CG_BUILD_AVX512, the GEMM uses 16-wide vectors; CG_BUILD_DIST, train_step
 * calls mdl_rt_grad_ready/wait (cg_options.distributed); CG_BUILD_F64, see below.  Returns NULL
 * after printing an error.  With CG_BUILD_F64 it builds the f64 variant:
 * every f32 tensor a double, kernels named n<id>.<op>[.<variant>].f64 and
 * entries <name>_f64, for the entries present in es, laid out by `plan`
 * (one from cg_plan_f64). */
LLVMModuleRef cg_build_module(LLVMContextRef ctx, const ir_graph *g, const entries *es, const mem_plan *plan,
                              unsigned flags);
enum { CG_BUILD_F64 = 1, CG_BUILD_PARALLEL = 2, CG_BUILD_AVX512 = 4, CG_BUILD_DIST = 8 };
/* The flags for the target machine's vector width and opt->parallel. */
unsigned cg_build_flags(LLVMTargetMachineRef tm, const cg_options *opt);

/* The entries and plan of the f64 variant: eval and grad only (a shallow
 * copy of es: it shares es's arrays, free only the plan), every f32 element
 * 8 bytes. */
void cg_plan_f64(const ir_graph *g, const entries *es, entries *es64, mem_plan *plan64);

/* Prints "mdlc: error: ..." to stderr. */
void cg_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The node whose buffer a kernel writes: the node itself, or for ASSIGN the
 * PARAM it assigns. */
int cg_output_node(const ir_graph *g, int id);

/* What train_step checks under `train --check-numerics` (cg_module.c): one
 * entry per kernel of its schedule with an f32 result, in schedule order:
 * the node scheduled, the node it writes, and the nodes it reads through a
 * buffer.  The code and the descriptor's table agree on the order. */
typedef struct cg_check {
    int node, out;
    int n_in;
    int in[FUSE_MAX_INPUTS];
} cg_check;
int cg_numerics_checks(const ir_graph *g, const entries *es, const mem_plan *plan, cg_check **out);

/* Whether a kernel reads input `i` of node `id` through a pointer. */
int cg_reads_input(const ir_graph *g, int id, int i);

/* ------------------------------------------------------------ cg_target.c */

/* A target machine for opt's cpu/features (the host's by default), PIC.
 * Returns NULL after printing an error. */
LLVMTargetMachineRef cg_target_machine(const cg_options *opt);

/* Builds, verifies and optimises the module for `tm` (with opt->f64_entries,
 * the f64 variant too, linked into it); NULL after an error. */
LLVMModuleRef cg_build_optimised(LLVMContextRef ctx, LLVMTargetMachineRef tm, const ir_graph *g, const entries *es,
                                 const mem_plan *plan, const cg_options *opt);

/* The steps of that, each 0 or -1 after printing an error: the module's
 * target triple and data layout; the verifier; an LLVM pass pipeline
 * (new-PM text); default<O0..3>; the f64 variant's own cheaper pipeline
 * and optnone; the object file; the module as text. */
void cg_set_target(LLVMModuleRef mod, LLVMTargetMachineRef tm);
int cg_verify(LLVMModuleRef mod);
int cg_run_pipeline(LLVMModuleRef mod, LLVMTargetMachineRef tm, const char *pipeline);
int cg_merge_duplicates(LLVMModuleRef mod, LLVMTargetMachineRef tm); /* mergefunc: identical kernels once */
int cg_optimise(LLVMModuleRef mod, LLVMTargetMachineRef tm, int opt_level);
int cg_optimise_f64(LLVMModuleRef mod, LLVMTargetMachineRef tm, int opt_level);
int cg_emit_object(LLVMModuleRef mod, LLVMTargetMachineRef tm, const char *path);
int cg_emit_text(LLVMModuleRef mod, FILE *out);
/* The module as an object or assembly (type) in memory; NULL after
 * "cannot generate <what>: ...". */
LLVMMemoryBufferRef cg_emit_to_memory(LLVMModuleRef mod, LLVMTargetMachineRef tm, LLVMCodeGenFileType type,
                                      const char *what);

/* ------------------------------------------------------------- cg_loops.c */

/* cg_scan.c: the copies of a scan's loop (see emit_scan in cg_module.c).
 * k needs ctx, mod, b, t, f64, fn and batch only. */
void cg_copy_tensor(cg_kernel *k, const ir_node *n, LLVMValueRef dst, LLVMValueRef src);
void cg_fill_tensor(cg_kernel *k, const ir_node *n, LLVMValueRef dst, double value);
void cg_copy_step(cg_kernel *k, const ir_shape *s, int axis, ir_dtype t, LLVMValueRef seq, LLVMValueRef step,
                  LLVMValueRef index, int into_sequence);
LLVMValueRef cg_scan_steps(cg_kernel *k, const ir_node *scan, LLVMValueRef hyper);

typedef struct cg_loop {
    LLVMBasicBlockRef header, exit;
    LLVMValueRef index; /* i64, 0 .. extent-1 */
} cg_loop;

/* for (index = 0; index < extent; index++) { ...code emitted until cg_loop_end... } */
cg_loop cg_loop_begin(cg_kernel *k, LLVMValueRef extent, const char *name);
void cg_loop_end(cg_kernel *k, cg_loop *loop);
/* The same, and LLVM leaves the loop as written: no vectorising or
 * unrolling (for loops that are vector code already, or that the
 * vectoriser would only turn into gathers). */
void cg_loop_end_as_written(cg_kernel *k, cg_loop *loop);
/* Marks the loop whose back edge is `branch` so. */
void cg_mark_as_written(cg_kernel *k, LLVMValueRef branch);

/* Outlining a kernel's work over a range, for the runtime's threads:
 *
 *   cg_outline_begin(k, &o, "rows", extra, n_extra);
 *   ... emit the work for [o.begin, o.end) with k as usual ...
 *   cg_outline_end(k, &o, n);
 *
 * begin stores the kernel's buffers (k->out, k->in[]), its batch and
 * extra[] (more pointers the work uses) in a ctx array on the kernel's
 * stack, adds void <kernel>.<suffix>(ptr ctx, i64 begin, i64 end) and
 * points k at it: k->out, k->in[], k->batch and extra[] become its copies
 * loaded from ctx (a buffer shipped twice is loaded once), allocas go to
 * its entry, and k->parallel is 0 there.  end closes the function (its
 * accesses through the kernel's noalias buffers marked with alias scopes,
 * see cg_loops.c), puts k
 * and extra[] back, and runs it over [0, n): through the runtime's
 * mdl_rt_parallel_for when k->parallel, else by one direct call. */
#define CG_OUTLINE_MAX_EXTRA (FUSE_MAX_INPUTS + FUSE_MAX_OUTPUTS)
#define CG_OUTLINE_MAX_SLOTS (5 + CG_OUTLINE_MAX_EXTRA) /* out, 3 inputs, batch, extra[] */
typedef struct cg_outline {
    cg_kernel saved;
    LLVMValueRef fn, ctx, begin, end;
    LLVMValueRef *extra;
    int n_extra;
    LLVMValueRef saved_extra[CG_OUTLINE_MAX_EXTRA];
    LLVMValueRef loaded[CG_OUTLINE_MAX_SLOTS], noalias[CG_OUTLINE_MAX_SLOTS];
    int n_loaded, n_noalias;
    /* Set by the caller (a value of the kernel, not of the outlined
     * function): the work at run time; below min_work the outlined
     * function runs on the calling thread (a split is decided on the
     * largest batch, but the batch may be 1). */
    LLVMValueRef work;
    int64_t min_work;
} cg_outline;
void cg_outline_begin(cg_kernel *k, cg_outline *o, const char *suffix, LLVMValueRef *extra, int n_extra);
void cg_outline_end(cg_kernel *k, cg_outline *o, LLVMValueRef n);

/* A loop nest that advances several element indices ("streams": the
 * output and each input) at once:
 *     index[s] = base[s] + sum over loops l of i_l * stride[s][l]
 * with loop 0 outermost.  body runs in the innermost loop. */
#define CG_MAX_STREAMS (1 + FUSE_MAX_INPUTS) /* a fused group's output and inputs */
typedef struct cg_nest {
    int depth, n_streams;
    LLVMValueRef extent[IR_MAX_RANK];
    LLVMValueRef stride[CG_MAX_STREAMS][IR_MAX_RANK];
} cg_nest;
typedef void (*cg_nest_body)(cg_kernel *k, LLVMValueRef *index, void *ctx);
void cg_emit_nest(cg_kernel *k, const cg_nest *nest, const LLVMValueRef *base, cg_nest_body body, void *ctx);

LLVMValueRef cg_i64(cg_kernel *k, int64_t v);
LLVMValueRef cg_mul(cg_kernel *k, LLVMValueRef a, LLVMValueRef b); /* i64, folds 0 and 1 */
LLVMValueRef cg_add(cg_kernel *k, LLVMValueRef a, LLVMValueRef b); /* i64, folds 0 */

/* The run-time size of dim `d` of a shape: `batch` or the constant. */
LLVMValueRef cg_dim(cg_kernel *k, const ir_shape *s, int d);
/* The product of dims [from, to) of a shape, at run time. */
LLVMValueRef cg_dims_product(cg_kernel *k, const ir_shape *s, int from, int to);
/* Sets every element of the node's f32 output to 0 (before kernels that
 * add into it). */
void cg_zero_output(cg_kernel *k);

LLVMTypeRef cg_type(cg_kernel *k, ir_dtype t);
/* An alloca in the kernel's entry block (so mem2reg/SROA can promote it). */
LLVMValueRef cg_alloca(cg_kernel *k, LLVMTypeRef t, const char *name);

/* Element `index` of input `i` of the node, in the input's own dtype: a load,
 * or the CONST value. */
LLVMValueRef cg_load_input(cg_kernel *k, int i, LLVMValueRef index);
LLVMValueRef cg_load(cg_kernel *k, LLVMTypeRef t, LLVMValueRef base, LLVMValueRef index);
void cg_store(cg_kernel *k, LLVMValueRef value, LLVMValueRef base, LLVMValueRef index);
/* Converts between f32 (t.real) and i32 (saturating, toward zero, NaN -> 0). */
LLVMValueRef cg_convert(cg_kernel *k, LLVMValueRef v, ir_dtype from, ir_dtype to);

/* Calls the overloaded intrinsic `name` specialised at type `t`. */
LLVMValueRef cg_intrinsic(cg_kernel *k, const char *name, LLVMTypeRef t, LLVMValueRef *args, int n_args);
/* The same, when the overload takes a return type and an argument type (fptosi.sat). */
LLVMValueRef cg_intrinsic2(cg_kernel *k, const char *name, LLVMTypeRef ret, LLVMTypeRef arg, LLVMValueRef v);
/* a * b + c in type t (a float type or a vector of one), fused where the
 * target has the instruction. */
LLVMValueRef cg_fmuladd(cg_kernel *k, LLVMTypeRef t, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c);

/* --------------------------------------------------------- cg_scalar.c */

/* One element of elementwise op `n`: x[i] is operand i in its own dtype
 * (the shape rules make the operands of arithmetic agree, and only cast
 * changes dtype); the result is in the node's dtype. */
typedef LLVMValueRef (*cg_scalar_fn)(cg_kernel *k, const ir_node *n, LLVMValueRef *x);
extern const cg_scalar_fn cg_scalars[IR_OP_COUNT];

/* ---------------------------------------------------------- cg_vmath.c */

/* exp, log, tanh and sigmoid of a float (k->t.f32, not the f64 variant's
 * double) as branch-free arithmetic without calls, which the loop
 * vectoriser widens; accuracy and special values in cg_vmath.c. */
LLVMValueRef cg_vmath_exp(cg_kernel *k, LLVMValueRef x);
LLVMValueRef cg_vmath_log(cg_kernel *k, LLVMValueRef x);
LLVMValueRef cg_vmath_tanh(cg_kernel *k, LLVMValueRef x);
LLVMValueRef cg_vmath_sigmoid(cg_kernel *k, LLVMValueRef x);

/* ------------------------------------------------------ per-op kernels */

typedef int (*cg_kernel_fn)(cg_kernel *k); /* 0, or -1 after cg_error */
extern const cg_kernel_fn cg_kernels[IR_OP_COUNT];

/* cg_elementwise.c: out[i] = f(in...[broadcast(i)]) over the node's shape. */
int cg_kernel_elementwise(cg_kernel *k);

/* cg_elementwise.c: the kernel of a fused group (passes.h): one nest over
 * the root's shape that loads in[i] (the buffer of group input i, with
 * broadcasting), computes every member with cg_scalars, and stores the
 * root into k->out and group output j into out[j].  k->node is the root. */
int cg_kernel_fused(cg_kernel *k, const entries *es, const fused_group *gr, const LLVMValueRef *in,
                    const LLVMValueRef *out);
/* The elementwise members of gr computed from ext[] (the element of each
 * group input), outputs stored into out[j] at out_index; the value of the
 * last elementwise member. */
LLVMValueRef cg_group_values(cg_kernel *k, const fused_group *gr, const LLVMValueRef *ext,
                             LLVMValueRef *out, LLVMValueRef out_index);
/* cg_reduce.c: the kernel of a group whose root is a reduction (fuse.c):
 * the reduction of its input, each element computed from the group's
 * inputs in[] (of the reduced tensor's shape, or single elements) as it
 * is read. */
int cg_kernel_reduce_group(cg_kernel *k, const entries *es, const fused_group *gr, const LLVMValueRef *in);

/* cg_matmul.c: a call of @mdl.sgemm (emitted into the module on first
 * use), f32 C[M,N] (+)= A[M,K] B[K,N] with
 *   args = {c, a, b, m, n, k, a_row, a_col, b_row, b_col, ldc, accumulate}:
 * A(i, k) at a[i a_row + k a_col], B(k, j) at b[k b_row + j b_col], C(i, j)
 * at c[i ldc + j]; accumulate (i64) 0 overwrites C, 1 adds into it.  Needs
 * up to ~400 KiB of stack. */
#define CG_SGEMM_ARGS 12
void cg_call_sgemm(cg_kernel *k, LLVMValueRef *args);

/* cg_matmul.c: the kernel of a fused group that starts with a product
 * (passes/epilogue.c): the product, its elementwise members applied to
 * each element as it is stored; in[] as for cg_kernel_fused. */
int cg_kernel_matmul_epilogue(cg_kernel *k, const entries *es, const fused_group *gr, const LLVMValueRef *in,
                              const LLVMValueRef *out);

/* cg_matmul_f64.c: MATMUL in the f64 variant (cg_matmul.c's kernel is f32
 * vector code). */
int cg_kernel_matmul_f64(cg_kernel *k);

#endif
