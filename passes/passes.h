/*
 * passes.h - graph-to-graph transforms and the static memory plan.
 *
 * The driver runs them as one straight list (driver/mdlc.c):
 *   ad_differentiate  gradient nodes for every trainable parameter
 *   opt_lower         the optimizer update as ordinary nodes + ASSIGNs
 *   simplify          constant folding, algebraic identities, CSE
 *   entries_build     the four entry points and what each computes (DCE)
 *   mp_plan_build     where every buffer lives in the one arena
 * Each returns 0 on success or -1 with a message in g->error.
 */
#ifndef MDL_PASSES_H
#define MDL_PASSES_H

#include "ir.h"

/* autodiff.c: reverse mode from g->loss; sets g->params[i].grad. */
int ad_differentiate(ir_graph *g);

/* optimizer.c: appends the update of g->optimizer (sgd, momentum, adam),
 * creating optimizer state params and the "lr" hyper; fills g->updates. */
int opt_lower(ir_graph *g);

/* simplify.c: folds and deduplicates in place (rewrites uses, never
 * removes nodes).  Returns the number of rewrites. */
int simplify(ir_graph *g);

/* ------------------------------------------------------------ entry points */

typedef enum { ENTRY_PREDICT, ENTRY_EVAL, ENTRY_GRAD, ENTRY_TRAIN, ENTRY_COUNT } entry_kind;

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

typedef struct entries {
    entry e[ENTRY_COUNT];
} entries;

/* entries.c: roots of each entry point and their schedules:
 *   predict: outputs; eval: loss, metrics, outputs;
 *   grad: loss, metrics, parameter gradients; train: loss, metrics, updates. */
int entries_build(ir_graph *g, entries *out);
void entries_free(entries *es);

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

int mp_plan_build(const ir_graph *g, const entries *es, mem_plan *plan);
/* The same with f32 elements of f32_bytes bytes (4 above; 8 plans the f64
 * variants of the entries, which compute every f32 tensor in double). */
int mp_plan_build_sized(const ir_graph *g, const entries *es, int f32_bytes, mem_plan *plan);
void mp_plan_free(mem_plan *plan);
void mp_plan_dump(const ir_graph *g, const entries *es, const mem_plan *plan, FILE *out);

#endif
