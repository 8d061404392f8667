/*
 * ir.h - the graph IR shared by every stage after the frontend.
 *
 * A graph is a flat array of SSA nodes {op, dtype, shape, inputs, attrs}.
 * A node's inputs always have smaller ids than the node, so the array order
 * is a valid schedule and a pass that appends nodes keeps it one.  Passes
 * never delete nodes in place: they rewrite uses and let dead-code
 * elimination (which is per entry point) drop what nothing needs.
 *
 * Shapes are static except for one symbolic batch dimension: a dim whose bit
 * is set in batch_mask has the size passed at run time, at most the compiled
 * maximum, which is what dims[] holds for it.
 *
 * Besides the nodes, a graph carries the model's tables: parameters (and
 * optimizer state), inputs and targets, hyper-parameters, and the results
 * the entry points deliver (loss, metrics, outputs, gradients, updates).
 *
 * Names: ir_ for the IR itself.  Graph memory is owned by the graph.
 */
#ifndef MDL_IR_H
#define MDL_IR_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define IR_MAX_RANK 6

typedef enum {
#define OP(id, name, arity, class) IR_##id,
#include "ops.def"
#undef OP
    IR_OP_COUNT
} ir_op;

typedef enum {
    IR_LEAF, IR_UNARY, IR_BINARY, IR_TERNARY, IR_REDUCE, IR_MOVE, IR_CONTRACT, IR_SINK,
    IR_INDEX, IR_WINDOW, IR_RANDOM, IR_LOOP,
} ir_class;

typedef struct ir_op_info {
    const char *name;
    int arity;
    ir_class cls;
} ir_op_info;

extern const ir_op_info ir_ops[IR_OP_COUNT];

typedef enum { IR_F32 = 0, IR_I32 = 1 } ir_dtype;

typedef struct ir_shape {
    int rank;
    int64_t dims[IR_MAX_RANK]; /* a batch dim holds the compiled maximum */
    uint32_t batch_mask;       /* bit i: dims[i] is the batch dimension */
} ir_shape;

/* MATMUL flags */
#define IR_TRANSPOSE_A 1
#define IR_TRANSPOSE_B 2

typedef struct ir_node {
    ir_op op;
    ir_dtype dtype;
    ir_shape shape;
    int n_inputs;
    int inputs[3];
    /* attributes (which ones an op uses is documented in ops.def) */
    double value;     /* CONST */
    uint32_t axes;    /* REDUCE_SUM, REDUCE_MAX, NUMEL: bit i = reduce dim i */
    int keepdims;     /* REDUCE_SUM, REDUCE_MAX */
    int flags;        /* MATMUL: IR_TRANSPOSE_* */
    int lead_dims;    /* MATMUL: how many leading dims both operands share, one
                         product per index of them (0: a single product) */
    int index;        /* INPUT: slot in g->inputs; PARAM: in g->params; HYPER: in g->hypers */
    int axis;              /* ARGMAX, SLICE, PAD, CONCAT: the dim they work along */
    int64_t start;         /* SLICE: first element taken; PAD: where the input lands */
    int64_t stop;          /* SLICE: one past the last element taken */
    int perm[IR_MAX_RANK]; /* TRANSPOSE: output dim d is input dim perm[d] */
    int size;              /* pooling: the window is size x size */
    int stride;            /* conv2d and pooling: the window's step */
    int padding;           /* conv2d: zeros added on each side of H and W */
    uint32_t seed;         /* DROPOUT: which mask (one per dropout in the model) */
    int region;            /* the SCAN whose body this node is in, or 0: the top level */
    int link;              /* SCAN_CARRY: the body node it takes at the next step (-1: unset) */
    int line, col;         /* where in the .mdl file it comes from (0: nowhere in particular): the
                              user's expression; a gradient node, the expression it differentiates */
    int backward;          /* made by autodiff (part of a gradient) */
} ir_node;

/* Parameters and optimizer state: the persistent tensors. */
typedef enum {
    IR_INIT_NONE = 0, IR_INIT_ZEROS, IR_INIT_ONES, IR_INIT_CONSTANT, IR_INIT_UNIFORM,
    IR_INIT_NORMAL, IR_INIT_GLOROT_UNIFORM, IR_INIT_HE_NORMAL,
} ir_init; /* same values as rt_init in runtime/mdlrt.h */

typedef struct ir_param {
    char *name;
    int node;          /* its PARAM node */
    int trainable;
    ir_init init;
    double init_a, init_b;
    int64_t fan_in, fan_out;
    int grad;          /* node computing dLoss/dparam, or -1 (set by autodiff) */
    int state;         /* 0, or a state: not trainable, may have a batch dim, keeps its
                          value between steps; IR_STATE_DECLARED (a `state` declaration)
                          or IR_STATE_CACHE (kv_cache's, written only by the generation
                          entry and not saved in checkpoints) */
} ir_param;

enum { IR_STATE_DECLARED = 1, IR_STATE_CACHE = 2 }; /* same values as rt_param.state */

typedef struct ir_input {
    char *name;
    int node;          /* its INPUT node */
    int is_target;
} ir_input;

typedef struct ir_hyper {
    char *name;
    double value;
    int node;
} ir_hyper;

typedef struct ir_result {
    char *name;
    int node;
} ir_result;

typedef struct ir_graph {
    char *model_name;
    char *source_path;
    uint64_t source_hash; /* FNV-1a (64-bit) of the source text; 0: unknown */
    char *source_text;    /* that text (owned), for diagnostics after the source file is gone; may be NULL */
    int n_nodes, cap_nodes;
    ir_node *nodes;

    int n_params, cap_params;
    ir_param *params;
    int n_inputs, cap_inputs;   /* inputs and targets, in declaration order */
    ir_input *inputs;
    int n_hypers, cap_hypers;
    ir_hyper *hypers;
    int n_metrics, cap_metrics;
    ir_result *metrics;
    int n_outputs, cap_outputs;
    ir_result *outputs;
    int loss;                   /* scalar node, or -1 */
    int n_updates, cap_updates;
    int *updates;               /* ASSIGN nodes of the optimizer step */
    /* The one-step generation entry of a model with state (generate_step):
     * the model lowered a second time with each input's time axis (dim 1)
     * of length 1, sharing the parameters, states and hypers.  Its INPUT
     * nodes have flags 1 and index into gen_inputs; gen_updates are its
     * state updates.  Empty for a model without state. */
    int n_gen_inputs, cap_gen_inputs;
    ir_input *gen_inputs;
    int n_gen_outputs, cap_gen_outputs;
    ir_result *gen_outputs;
    int n_gen_updates, cap_gen_updates;
    int *gen_updates;
    /* values of parameters alone that generate_step reads but does not
     * compute: prepare_step computes them once per set of weights */
    int n_gen_cached, cap_gen_cached;
    int *gen_cached;
    int n_state_updates, cap_state_updates;
    int *state_updates;         /* ASSIGN nodes of `update` statements: run after
                                   each predict, eval and train step, not grad */

    int64_t max_batch;
    /* the `train` block */
    char *optimizer;            /* a name of ir/optimizers.def */
    int n_opt_args;
    char *opt_arg_names[8];
    double opt_arg_values[8];
    int64_t batch, epochs;
    uint64_t seed;
    /* the learning-rate schedule of the `train` block: the runtime sets
     * hyper "lr" before every step from the base lr and these.  NULL means
     * constant.  Names and arguments are documented in docs/language.md. */
    char *schedule;             /* "step", "exponential", "cosine", ... */
    int n_sched_args;
    char *sched_arg_names[8];
    double sched_arg_values[8];

    int cur_region;             /* the scan body new nodes go into (ir_scan_begin), 0: top level */
    int cur_line, cur_col;      /* the source location new nodes get (ir_node.line) */
    int cur_backward;           /* new nodes are autodiff's (ir_node.backward) */
    /* When set, ir_append passes every input of a new node through it and
     * reads what it returns instead (-1: fail): autodiff uses it to make a
     * backward body read the stash of a forward body's value. */
    int (*input_hook)(struct ir_graph *g, int id, void *ctx);
    void *input_hook_ctx;

    char error[512];            /* why the last ir_add* returned -1 */
} ir_graph;

ir_graph *ir_graph_new(const char *model_name, const char *source_path);
void ir_graph_free(ir_graph *g);

/* ------------------------------------------------------------- building
 * Each returns the new node's id, or -1 with g->error set (e.g. a shape
 * mismatch); the caller reports it with a source position. */

int ir_add(ir_graph *g, ir_op op, int a, int b, int c);            /* elementwise, by arity */
int ir_const(ir_graph *g, ir_dtype dtype, const ir_shape *shape, double value);
int ir_scalar(ir_graph *g, double value);                           /* f32 scalar const */
int ir_cast(ir_graph *g, int x, ir_dtype to);
int ir_reduce(ir_graph *g, ir_op op, int x, uint32_t axes, int keepdims);
int ir_numel(ir_graph *g, int x, uint32_t axes);
int ir_sum_to(ir_graph *g, int x, const ir_shape *shape);
int ir_broadcast(ir_graph *g, int x, const ir_shape *shape);
int ir_reshape(ir_graph *g, int x, const ir_shape *shape);
/* f32 or i32 of `shape` whose elements are their index along `axis`. */
int ir_iota(ir_graph *g, ir_dtype dtype, const ir_shape *shape, int axis);
/* a @ b as a product of matrices [M,K] @ [K,N] -> [M,N] of row-major
 * storage: a's leading dims are M (K when transposed: a stored [K, M]
 * with K its leading dims flattened), b is [K,N] ([N,K] when transposed)
 * with K its leading dims.  So [B,T,H] @ [H,V] -> [B,T,V] (a dense layer
 * over every step), and its adjoint in the weight, [B,T,H]^T @ [B,T,V] ->
 * [H,V], sums over B and T.  A transposed b must be a matrix. */
int ir_matmul(ir_graph *g, int a, int b, int flags);
/* The batched product: a [S.., M, K] @ b [S.., K, N] -> [S.., M, N], one
 * product per index of the `lead` leading dims S (lead >= 1), which both
 * operands share; a transposed side has its last two dims swapped
 * ([S.., K, M] / [S.., N, K]), and M, K and N are one dim each.  The
 * attention of a transformer: q [B,H,T,D] @ k [B,H,T,D]^T -> [B,H,T,T]. */
int ir_matmul_batched(ir_graph *g, int a, int b, int flags, int lead);
/* Which dims of a MATMUL's operands make S, M, K (of a) and N (of b):
 * half-open ranges [lo, hi) of dim indices.  S is dims [0, lead) of a, b
 * and the result alike. */
typedef struct ir_matmul_dims {
    int lead;                   /* S */
    int m_lo, m_hi, k_lo, k_hi; /* of a */
    int n_lo, n_hi;             /* of b */
    int bk_lo, bk_hi;           /* of b: its K */
} ir_matmul_dims;
ir_matmul_dims ir_matmul_split(const ir_node *n, int a_rank, int b_rank);
int ir_assign(ir_graph *g, int slot, int value);

/* Indexing: one_hot(labels i32[..], n) -> f32[.., n]; argmax over `axis`
 * (negative counts from the end) -> i32 without that axis; gather(table
 * [V,D], indices i32[..]) -> [.., D]; scatter_add(src [.., D], indices,
 * rows) -> [rows, D], its adjoint. */
int ir_one_hot(ir_graph *g, int labels, int64_t n);
int ir_argmax(ir_graph *g, int x, int axis);
int ir_gather(ir_graph *g, int table, int indices);
int ir_scatter_add(ir_graph *g, int src, int indices, int64_t rows);

/* Data movement.  transpose: output dim d is input dim perm[d]; perm NULL
 * swaps the last two axes.  slice keeps [start, stop) of `axis`; pad is
 * its adjoint: zeros of `shape` with x at `start` along `axis`.  concat
 * joins two tensors along `axis`.  A negative axis counts from the end. */
int ir_transpose(ir_graph *g, int x, const int *perm);
int ir_slice(ir_graph *g, int x, int axis, int64_t start, int64_t stop);
int ir_pad(ir_graph *g, int x, int axis, int64_t start, const ir_shape *shape);
int ir_concat(ir_graph *g, int a, int b, int axis);

/* NCHW convolution (cross-correlation, as PyTorch) and pooling.  The
 * _grad ops are the adjoints of the forward ops, given the shape of what
 * they produce (x's or w's, which the output shape does not determine when
 * the stride does not divide evenly); max_pool2d_pick reads v at the
 * position of each window's maximum of x, the adjoint of max_pool2d_grad. */
int ir_conv2d(ir_graph *g, int x, int w, int stride, int padding);
int ir_conv2d_grad_input(ir_graph *g, int dy, int w, int stride, int padding, const ir_shape *x_shape);
int ir_conv2d_grad_weight(ir_graph *g, int x, int dy, int stride, int padding, const ir_shape *w_shape);
int ir_max_pool2d(ir_graph *g, int x, int size, int stride);
int ir_max_pool2d_grad(ir_graph *g, int x, int dy, int size, int stride);
int ir_max_pool2d_pick(ir_graph *g, int x, int v, int size, int stride);
int ir_avg_pool2d(ir_graph *g, int x, int size, int stride);
int ir_avg_pool2d_grad(ir_graph *g, int dy, int size, int stride, const ir_shape *x_shape);

/* dropout(x, p), 0 <= p < 1: reads the hypers "training" (1 while the
 * runtime trains, else 0) and "step" (the train step, as f32), made with
 * default 0 on first use.  ir_dropout gives each call its own seed (its
 * node id); ir_dropout_seeded repeats a mask, as its gradient must. */
int ir_dropout(ir_graph *g, int x, double p);
int ir_dropout_seeded(ir_graph *g, int x, double p, uint32_t seed);

/* The random bits behind element i of a dropout's mask, shared by the
 * interpreter and the generated code (which computes the same in LLVM
 * IR): a counter-based hash, so the mask needs no state and no buffer.
 *   key = fmix32(fmix32(seed) + step), bits = fmix32(key + i * 0x9E3779B9)
 * with fmix32 MurmurHash3's finaliser, all in uint32 arithmetic; step is
 * the hyper's value truncated to i32 (saturating) and i the row-major
 * element index (its low 32 bits). */
uint32_t ir_dropout_bits(uint32_t seed, uint32_t step, uint64_t i);
uint32_t ir_dropout_threshold(double p); /* p * 2^32, saturated */

/* Recurrence (ir/scan.c).  Building a scan:
 *     s = ir_scan_begin(g, T, reverse)      nodes appended from now on are its body
 *     h = ir_scan_carry(g, s, h0)           the body's arguments
 *     x = ir_scan_slice(g, s, xs, axis)
 *     ... body nodes computing h2 from h and x ...
 *     ir_scan_set_next(g, h, h2)
 *     ir_scan_end(g, s)                     back to the top level
 *     hs = ir_scan_stack(g, s, h2, axis)    its results
 *     hT = ir_scan_final(g, s, h)
 * The scan reads the hyper "scan_steps" (made with default 0) for how many
 * steps to run.  Scans do not nest. */
int ir_scan_begin(ir_graph *g, int64_t steps, int reverse);
int ir_scan_carry(ir_graph *g, int scan, int init);
int ir_scan_slice(ir_graph *g, int scan, int xs, int axis);
int ir_scan_set_next(ir_graph *g, int carry, int next);
void ir_scan_end(ir_graph *g, int scan);
int ir_scan_stack(ir_graph *g, int scan, int y, int axis);
int ir_scan_final(ir_graph *g, int scan, int carry);
/* Whether node id is executed by a scan's loop rather than at its place
 * in the schedule: a body node, or a stack or final of a scan. */
int ir_in_loop(const ir_graph *g, int id);
/* The scan whose loop computes node id (its region, or for a stack or
 * final the scan it reads), or 0. */
int ir_loop_of(const ir_graph *g, int id);

int ir_add_input(ir_graph *g, const char *name, ir_dtype dtype, const ir_shape *shape, int is_target);
/* An input of the generation entry (see gen_inputs), its output, and a
 * state update that entry runs. */
int ir_add_gen_input(ir_graph *g, const char *name, ir_dtype dtype, const ir_shape *shape);
void ir_add_gen_output(ir_graph *g, const char *name, int node);
int ir_add_gen_update(ir_graph *g, int slot, int value);
void ir_add_gen_cached(ir_graph *g, int node);
int ir_add_param(ir_graph *g, const char *name, ir_dtype dtype, const ir_shape *shape, int trainable,
                 ir_init init, double a, double b, int64_t fan_in, int64_t fan_out);
/* A `state`: a non-trainable PARAM whose shape may use the batch
 * dimension, zeroed or initialised like a parameter. */
int ir_add_state(ir_graph *g, const char *name, ir_dtype dtype, const ir_shape *shape, ir_init init, double a,
                 double b);
/* slot := value after each predict, eval and train step (an `update`
 * statement): an ASSIGN recorded in g->state_updates.  Returns its id. */
int ir_add_state_update(ir_graph *g, int slot, int value);
int ir_add_hyper(ir_graph *g, const char *name, double value);
/* The HYPER node called `name`, added with `value` if there is none. */
int ir_get_hyper(ir_graph *g, const char *name, double value);
int ir_find_param(const ir_graph *g, const char *name); /* index or -1 */
void ir_add_metric(ir_graph *g, const char *name, int node);
void ir_add_output(ir_graph *g, const char *name, int node);

/* Appends a raw node after checking its inputs and inferring its shape;
 * the general form behind every builder above. */
int ir_append(ir_graph *g, const ir_node *proto);

/* Do two nodes carry the same attributes (everything but op, type and
 * inputs)?  What CSE must compare before merging them.  `value` compares
 * by its bits, as CSE hashes it: 0.0 and -0.0 differ, a NaN equals itself. */
int ir_same_attrs(const ir_node *a, const ir_node *b);

/* ----------------------------------------------------------------- shapes */

static inline int ir_is_batch_dim(const ir_shape *s, int d) { return (s->batch_mask >> d) & 1; }
/* Is dim d the literal size 1 (not a batch dim that might be 1 too)?  The
 * dims that broadcasting stretches. */
static inline int ir_dim_is_one(const ir_shape *s, int d) { return s->dims[d] == 1 && !ir_is_batch_dim(s, d); }

ir_shape ir_shape_scalar(void);
int ir_shape_equal(const ir_shape *a, const ir_shape *b);
int64_t ir_shape_numel(const ir_shape *s);       /* at max batch */
int ir_broadcast_shapes(const ir_shape *a, const ir_shape *b, ir_shape *out);
/* "f32[B,2]" into buf; returns buf. */
char *ir_shape_str(const ir_shape *s, char *buf, size_t size);
char *ir_type_str(ir_dtype t, const ir_shape *s, char *buf, size_t size);
const char *ir_dtype_name(ir_dtype t);

/* ----------------------------------------------------------------- memory
 * The compiler's one policy for running out of memory (frontend, IR,
 * passes and code generator alike): print "mdlc: error: out of memory" and
 * exit with status 70, as clang does.  Callers never check for NULL.  The
 * runtime, which depends on none of this, has its own rt_x* functions. */
void *ir_xmalloc(size_t size);
void *ir_xcalloc(size_t count, size_t size);
void *ir_xrealloc(void *p, size_t size);
char *ir_xstrdup(const char *s);
/* FNV-1a, 64-bit: a fingerprint of a text (never 0). */
uint64_t ir_hash_bytes(const void *data, size_t n);

/* ------------------------------------------------------------ inspection */

/* Checks every invariant (inputs precede users, arities, shapes agree with
 * the op's rule).  Returns 0, or -1 with g->error describing the first
 * violation. */
int ir_verify(ir_graph *g);

/* The textual form (--emit=ir): stable, one node per line. `live` may be
 * NULL (print all) or a per-node flag array (print only those). */
void ir_dump(const ir_graph *g, const unsigned char *live, FILE *out);
/* The Graphviz form (--emit=dot): forward, gradient and optimizer nodes in
 * three fills, with a legend.  fused_into may be NULL, or the fusion pass's
 * map (node -> the root of the kernel it is interior to, or -1): each fused
 * kernel is then drawn as a cluster. */
void ir_dump_dot(const ir_graph *g, const unsigned char *live, const int *fused_into, FILE *out);

/* Marks in live[] (n_nodes entries, zeroed by the caller) every node that
 * `roots` depend on. */
void ir_mark_live(const ir_graph *g, const int *roots, int n_roots, unsigned char *live);

/* Number of uses of each node among live nodes, into uses[n_nodes]. */
void ir_count_uses(const ir_graph *g, const unsigned char *live, int *uses);

/* Floating-point operations a node performs at max batch (for `info`). */
int64_t ir_node_flops(const ir_graph *g, int id);

#endif
