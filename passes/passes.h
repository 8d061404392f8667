/*
 * passes.h - graph-to-graph transforms and the static memory plan.
 *
 * The driver runs them as one straight list (run_passes in driver/mdlc.c):
 *   ad_differentiate  gradient nodes for every trainable parameter
 *   opt_lower         the optimizer update as ordinary nodes + ASSIGNs
 *   simplify          constant folding, algebraic identities, CSE
 *   entries_build     the four entry points and what each computes (DCE)
 *   fuse_elementwise  elementwise chains become one kernel each (fuse.c)
 *   mp_plan_build     where every buffer lives in the one arena
 * Those that can fail on the user's model return 0 on success or -1 with a
 * message in g->error.  None reports running out of memory: the passes
 * allocate with ir_xmalloc and friends (ir/alloc.c), which exit.
 */
#ifndef MDL_PASSES_H
#define MDL_PASSES_H

#include "ir.h"

/* autodiff.c: reverse mode from g->loss; sets g->params[i].grad. */
int ad_differentiate(ir_graph *g);

/* optimizer.c: appends the update of g->optimizer (sgd, momentum, adam,
 * adamw, rmsprop), creating optimizer state params and the "lr" hyper;
 * fills g->updates. */
int opt_lower(ir_graph *g);

/* simplify.c: folds and deduplicates in place (rewrites uses, never
 * removes nodes).  Returns the number of rewrites. */
int simplify(ir_graph *g);

/* ------------------------------------------------------------ entry points */

/* generate_step: the one-step copy of predict of a model with state (see
 * ir_graph.gen_outputs), absent otherwise; prepare_step computes what it
 * reads from the weights alone (ir_graph.gen_cached), run once before. */
typedef enum {
    ENTRY_PREDICT, ENTRY_EVAL, ENTRY_GRAD, ENTRY_TRAIN, ENTRY_GENERATE, ENTRY_PREPARE, ENTRY_COUNT
} entry_kind;

typedef struct entry {
    const char *name;       /* "predict_step", ... (the symbol in the object) */
    int present;            /* 0: the model has no such entry (no loss -> no train) */
    int n_roots;
    int *roots;             /* nodes whose values the entry delivers */
    unsigned char *live;    /* n_nodes flags: nodes this entry computes or reads */
    int n_sched;
    int *sched;             /* live nodes that need code, in execution order;
                               ASSIGNs come last */
} entry;

/* A fused group (fuse.c): elementwise nodes of one output shape computed
 * by one kernel that stores the root and the group's outputs.  members are
 * in id order (which is topological) and end with the root; inputs are the
 * nodes outside the group that members read through a buffer (never a
 * CONST); outputs are members that something outside the group reads too
 * (Adam's new moments, read by the weight's update in the group and by
 * their ASSIGNs), stored by the kernel besides the root, in id order. */
#define FUSE_MAX_INPUTS 12
#define FUSE_MAX_OUTPUTS 4

/* Whether id is among ids[0 .. n) (the passes' short lists of nodes). */
static inline int ids_have(const int *ids, int n, int id) {
    for (int i = 0; i < n; i++)
        if (ids[i] == id)
            return 1;
    return 0;
}
typedef struct fused_group {
    int root;
    int n_members;
    int *members;
    int n_inputs;
    int inputs[FUSE_MAX_INPUTS];
    int n_outputs;
    int outputs[FUSE_MAX_OUTPUTS];
} fused_group;

typedef struct entries {
    entry e[ENTRY_COUNT];
    /* Set by fuse_elementwise, NULL/0 before (no fusion: one kernel per
     * scheduled node).  fused_into[id]: the root of the group node id is
     * interior to (it then has no kernel, no buffer, and is in no
     * schedule), or -1.  group_at[id]: the index in groups of the group
     * whose root is id, or -1.  output_of[id]: the root of the group that
     * stores node id as one of its outputs, or -1; such a node keeps its
     * buffer and its place in the schedules, moved to just before the
     * root, but has no kernel of its own (the root's writes it). */
    int *fused_into;
    int *group_at;
    int *output_of;
    int n_groups;
    fused_group *groups;
} entries;

/* The nodes a scheduled node's kernel reads: a group root's group inputs,
 * or else the node's own inputs.  Returns how many are written to out
 * (room for FUSE_MAX_INPUTS; a node has at most 3 inputs). */
int entries_kernel_inputs(const ir_graph *g, const entries *es, int id, int *out);

/* entries.c: roots of each entry point and their schedules:
 *   predict: outputs; eval: loss, metrics, outputs;
 *   grad: loss, metrics, parameter gradients; train: loss, metrics, updates.
 * Fails (-1, g->error) when predict would need a target. */
int entries_build(ir_graph *g, entries *out);
void entries_free(entries *es);
/* Fills e->sched (room for n_nodes) from e->live: the live nodes that need
 * code, in id order, ASSIGNs last. */
void entries_schedule(const ir_graph *g, entry *e);
/* n_nodes flags, freed by the caller: the nodes live in any entry (what
 * --emit=grad prints and what fusion counts uses among). */
unsigned char *entries_live_in_any(const ir_graph *g, const entries *es);

/* fuse.c: groups maximal chains of elementwise nodes (UNARY, BINARY,
 * TERNARY) with one output shape; CONST inputs are folded in.  A node is
 * interior to its user's group when it has exactly one use among the live
 * nodes of all entries, that user is elementwise with the same shape, it
 * is no entry's root, and the group keeps at most FUSE_MAX_INPUTS inputs.
 * Interior nodes leave every schedule.  A node used more than once joins
 * as an output of the group that its elementwise users of its shape are
 * all in, when every other user runs after that group's root (fuse.c has
 * the exact rule).  Call once, after entries_build. */
void fuse_elementwise(const ir_graph *g, entries *es);
/* The same with fusion off (no groups: one kernel per node); the arrays
 * are set, so the code generator runs unchanged.  For tests that compare
 * fused code against unfused code. */
void fuse_none(const ir_graph *g, entries *es);
/* Whether node id is elementwise (UNARY, BINARY, TERNARY): what fusion
 * groups. */
int fuse_is_elementwise(const ir_graph *g, int id);
/* The groups of two or more nodes, one a line:
 *   %25 = fused{%20 mul, %24 mul, %25 add} (%3, %7, %19)
 * (an output the group stores besides its root is marked "stored"), then
 * every edge between two kernels that was not fused, with the reason. */
void fuse_dump(const ir_graph *g, const entries *es, FILE *out);

/* epilogue.c: after fuse_elementwise, a MATMUL whose one user is an f32
 * elementwise group of its shape joins that group as its first stage (the
 * kernel then applies the group to each element of the product as it is
 * stored); rules in epilogue.c.  Interior products leave every schedule. */
void epilogue_fuse(const ir_graph *g, entries *es);
/* The product of a group made by epilogue_fuse, or -1 (an elementwise group). */
int epilogue_product(const ir_graph *g, const fused_group *gr);
/* How the epilogue of `product` reads node x at C(i, j): x[i N + j] (x has
 * C's shape), x[j] (C's column dims only: a bias), x[0] (one element); -1
 * for none of them. */
enum { EPILOGUE_FULL, EPILOGUE_ROW, EPILOGUE_SCALAR };
int epilogue_input_kind(const ir_graph *g, int product, int x);

/* ------------------------------------------------------------ memory plan */

/* Every node that needs storage gets a byte offset into the one arena.
 * Persistent slots (params, optimizer state, inputs, hypers, and the values
 * an entry delivers: loss, metrics, outputs, gradients) have one offset
 * shared by all entries and come first.  Temporaries live after them in the
 * scratch region and are reused by liveness within each entry; the scratch
 * region is as big as the largest entry needs.  CONST nodes have no storage
 * (code generation uses their value).  Sizes are at max batch, rounded up to
 * 64 bytes. */
typedef struct mem_plan {
    int n_nodes;
    int64_t *offset[ENTRY_COUNT]; /* [entry][node] byte offset, or -1 */
    int64_t persistent_bytes;
    int64_t scratch_bytes;
    int64_t arena_bytes;          /* persistent + scratch */
} mem_plan;

void mp_plan_build(const ir_graph *g, const entries *es, mem_plan *plan);
/* The same with f32 elements of f32_bytes bytes (4 above; 8 plans the f64
 * variants of the entries, which compute every f32 tensor in double). */
void mp_plan_build_sized(const ir_graph *g, const entries *es, int f32_bytes, mem_plan *plan);
void mp_plan_free(mem_plan *plan);
void mp_plan_dump(const ir_graph *g, const entries *es, const mem_plan *plan, FILE *out);

#endif
