/*
 * fuse.c - elementwise fusion: chains of elementwise nodes become one
 * kernel that computes the interior nodes in registers and stores only
 * the group's root.
 *
 * Groups grow from their roots towards the inputs, over the live nodes in
 * reverse id order (ids are topological, so a node's users are decided
 * before it).  An elementwise node (UNARY, BINARY, TERNARY) becomes
 * interior to the group of its user when
 *   - its uses among the nodes live in any entry are all in that group
 *     (the kernel computes each member once per element and keeps it in
 *     a register for every member that reads it; a value read by two
 *     groups stays a buffer, or becomes an output, below: nothing is ever
 *     computed twice),
 *   - each user is elementwise and has the same output shape (a node of
 *     another shape is a broadcast operand: a group input), and
 *   - it is no entry's root (a value the runtime reads needs its buffer),
 *   - it runs where its user runs (both in the same scan body, or both
 *     outside every loop),
 *   - and the group keeps at most FUSE_MAX_INPUTS inputs with buffers.
 * A node live in an entry is then live there only for users in its
 * group, so every entry that schedules an interior node schedules its
 * root too, and the other way round: taking interior nodes out of every
 * schedule leaves each root's kernel with all it needs.  CONST inputs have no buffer and
 * are folded into the kernel as before.
 *
 * A node used more than once joins a group as one of its outputs (stored
 * by the group's kernel besides the root, and computed in registers for
 * the members that read it) when
 *   - its users of its shape that are elementwise, outside every loop,
 *     are in one group (and there is at least one), or in several, the
 *     group being the first of them to run, which stores the value for
 *     the others -- unless a reduction would take that group (below):
 *     GELU's x / sqrt 2, erf and x / 2, which its gradient reads again,
 *     are then stored by the forward's one kernel,
 *   - every other user runs after that group's root (an ASSIGN runs last;
 *     a user in a group runs at its root; users inside a loop refuse),
 *   - every entry that computes the node computes the root too,
 *   - and the group keeps at most FUSE_MAX_OUTPUTS outputs and
 *     FUSE_MAX_INPUTS inputs.
 * Adam's update of one parameter is then one kernel: it reads the
 * gradient, m, v and the weight, and writes m, v and the weight (the
 * memory plan puts the new moments in place, see memplan.c).  Such an
 * output keeps its buffer and its place in the schedules, moved to just
 * before its root, so the memory plan gives it a buffer that is live when
 * the root's kernel writes it; it has no kernel of its own.
 *
 * A reduction (reduce_sum, reduce_max, sum_to) takes the group that
 * computes its input as its own when that input is used by nothing else,
 * is no entry's root, runs where the reduction runs, and the group stores
 * no outputs and reads only tensors of the reduced shape or single
 * elements (codegen/cg_reduce.c computes each element as it is read): the
 * cross entropy's one_hot * log_softmax, a sum of squares.  The group's
 * root is then the reduction.
 *
 * Not fused (yet): a producer into a matmul or movement op, a reduction
 * into its consumers (the softmax's sum into the division), a group with
 * a broadcast operand into a reduction.  A later group may compute cheap
 * values of an earlier one again instead of reading them where that reads
 * fewer arrays (recompute_cheap, below).  fuse_dump says for every edge
 * between two kernels why it was not fused.
 */
#include <stdlib.h>
#include <string.h>

#include "passes.h"

int fuse_is_elementwise(const ir_graph *g, int id) {
    ir_class c = ir_ops[g->nodes[id].op].cls;
    return c == IR_UNARY || c == IR_BINARY || c == IR_TERNARY;
}

/* A group's input list (distinct nodes with buffers). */
typedef struct in_list {
    int n;
    int id[FUSE_MAX_INPUTS];
} in_list;

/* l with `drop` removed and node id's buffered inputs added; -1 if that
 * would exceed FUSE_MAX_INPUTS. */
static int list_absorb(const ir_graph *g, const in_list *l, int drop, int id, in_list *out) {
    out->n = 0;
    for (int i = 0; i < l->n; i++)
        if (l->id[i] != drop)
            out->id[out->n++] = l->id[i];
    const ir_node *n = &g->nodes[id];
    for (int k = 0; k < n->n_inputs; k++) {
        int x = n->inputs[k];
        if (g->nodes[x].op == IR_CONST || ids_have(out->id, out->n, x))
            continue;
        if (out->n == FUSE_MAX_INPUTS)
            return -1;
        out->id[out->n++] = x;
    }
    return 0;
}

/* What the group decisions read, over the nodes live in any entry. */
typedef struct uses_info {
    unsigned char *live;    /* live in some entry */
    unsigned char *is_root; /* some entry's root */
    int *uses;              /* uses among the live nodes */
    int *user;              /* the last live user, or -1 */
    int *first, *users;     /* the live users of node i (a user once per use):
                               users[first[i] .. first[i + 1]) */
} uses_info;

/* Calls f(x, user, ctx) for every use of a node x by a live node.  A
 * numel reads only its input's shape: no use (a mean's sum(x) / numel(x)
 * leaves x to the sum). */
static void for_each_use(const ir_graph *g, const unsigned char *live, void (*f)(int, int, void *), void *ctx) {
    for (int i = 0; i < g->n_nodes; i++) {
        if (g->nodes[i].op == IR_NUMEL)
            continue;
        for (int k = 0; live[i] && k < g->nodes[i].n_inputs; k++)
            f(g->nodes[i].inputs[k], i, ctx);
        /* a carry reads its next value at the end of every step */
        if (live[i] && g->nodes[i].op == IR_SCAN_CARRY)
            f(g->nodes[i].link, i, ctx);
    }
}

static void note_use(int x, int user, void *ctx) {
    uses_info *u = ctx;
    u->uses[x]++;
    u->user[x] = user;
}

static void list_use(int x, int user, void *ctx) {
    uses_info *u = ctx;
    u->users[u->first[x] + --u->uses[x]] = user;
}

static void count_uses(const ir_graph *g, const entries *es, uses_info *u) {
    int n = g->n_nodes;
    u->live = entries_live_in_any(g, es);
    u->is_root = ir_xcalloc((size_t)n, 1);
    u->uses = ir_xcalloc((size_t)n, sizeof *u->uses);
    u->user = ir_xmalloc((size_t)n * sizeof *u->user);
    for (int k = 0; k < ENTRY_COUNT; k++)
        for (int r = 0; es->e[k].present && r < es->e[k].n_roots; r++)
            u->is_root[es->e[k].roots[r]] = 1;
    for (int i = 0; i < n; i++)
        u->user[i] = -1;
    for_each_use(g, u->live, note_use, u);
    u->first = ir_xmalloc((size_t)(n + 1) * sizeof *u->first);
    u->first[0] = 0;
    for (int i = 0; i < n; i++)
        u->first[i + 1] = u->first[i] + u->uses[i];
    u->users = ir_xmalloc((size_t)(u->first[n] + 1) * sizeof *u->users);
    for_each_use(g, u->live, list_use, u); /* counts uses down to 0 ... */
    for (int i = 0; i < n; i++)            /* ... and back */
        u->uses[i] = u->first[i + 1] - u->first[i];
}

static void free_uses(uses_info *u) {
    free(u->live);
    free(u->is_root);
    free(u->uses);
    free(u->user);
    free(u->first);
    free(u->users);
}

/* Whether user may compute a value of node id's shape in its group:
 * elementwise, of that shape, in the same loop (or none). */
static int fusible_use(const ir_graph *g, int id, int user) {
    return fuse_is_elementwise(g, user) && g->nodes[id].region == g->nodes[user].region &&
           ir_shape_equal(&g->nodes[id].shape, &g->nodes[user].shape);
}

/* The group whose output node id may become (the rule at the head of the
 * file; with users in several groups, the first of them to run), or -1.  n_out[r]: the outputs group r has so far. */
static int output_group(const ir_graph *g, const uses_info *u, const entries *es, const int *root_of,
                        const int *n_out, int id) {
    if (g->nodes[id].region)
        return -1;
    int r = -1, spread = 0;
    for (int j = u->first[id]; j < u->first[id + 1]; j++) {
        int x = u->users[j];
        if (ir_in_loop(g, x))
            return -1;
        if (!fusible_use(g, id, x))
            continue;
        spread |= r >= 0 && root_of[x] != r;
        if (r < 0 || root_of[x] < r)
            r = root_of[x];
    }
    if (r < 0 || n_out[r] == FUSE_MAX_OUTPUTS)
        return -1;
    /* Users in several groups: the first group to run stores the value
     * for the later ones, unless a reduction would take that group (a
     * group with outputs is not taken, and the reduction's fusion saves
     * more than this one). */
    if (spread && u->uses[r] == 1 && u->user[r] >= 0) {
        ir_op op = g->nodes[u->user[r]].op;
        if (op == IR_REDUCE_SUM || op == IR_REDUCE_MAX || op == IR_SUM_TO)
            return -1;
    }
    for (int j = u->first[id]; j < u->first[id + 1]; j++) {
        int x = u->users[j];
        int runs_at = fuse_is_elementwise(g, x) ? root_of[x] : x;
        if (runs_at != r && g->nodes[x].op != IR_ASSIGN && runs_at <= r)
            return -1;
    }
    for (int k = 0; k < ENTRY_COUNT; k++)
        if (es->e[k].present && es->e[k].live[id] && !es->e[k].live[r])
            return -1;
    return r;
}

/* The group in which node id may be interior (computed in registers for
 * its users, not stored): one whose members are all its uses, each
 * fusible, and no entry's root; -1 if none.  GELU's x, read by x / 2 and
 * by x / sqrt 2 in one kernel, is then never written. */
static int interior_group(const ir_graph *g, const uses_info *u, const int *root_of, int id) {
    if (u->is_root[id] || u->uses[id] == 0)
        return -1;
    int r = -1;
    for (int j = u->first[id]; j < u->first[id + 1]; j++) {
        int x = u->users[j];
        if (!fusible_use(g, id, x) || root_of[x] < 0 || (r >= 0 && root_of[x] != r))
            return -1;
        r = root_of[x];
    }
    return r;
}

/* Decides every live elementwise node's group, users first: root_of[id]
 * is the root of id's group, size[root] its member count, ins[root] its
 * inputs; es->fused_into is set for interior nodes, es->output_of for
 * outputs. */
static void grow_groups(const ir_graph *g, const uses_info *u, entries *es, int *root_of, int *size, in_list *ins,
                        int *n_out) {
    for (int id = g->n_nodes - 1; id >= 0; id--) {
        if (!u->live[id] || !fuse_is_elementwise(g, id))
            continue;
        int root = id, stored = 0, r = interior_group(g, u, root_of, id);
        in_list grown;
        if (r >= 0) {
            if (list_absorb(g, &ins[r], id, id, &grown) == 0) {
                ins[r] = grown;
                root = r;
            }
        } else if (u->uses[id] > 0) {
            int r = output_group(g, u, es, root_of, n_out, id);
            if (r >= 0 && list_absorb(g, &ins[r], id, id, &grown) == 0) {
                ins[r] = grown;
                root = r;
                stored = 1;
                n_out[r]++;
            }
        }
        root_of[id] = root;
        size[root]++;
        if (root == id) {
            in_list empty = {0};
            list_absorb(g, &empty, -1, id, &ins[id]); /* fits: 3 inputs at most */
        } else if (stored) {
            es->output_of[id] = root;
        } else {
            es->fused_into[id] = root;
        }
    }
}

/* The reductions that take the group of their input (the head of the
 * file): the group's root becomes the reduction. */
static int reduction_takes(const ir_graph *g, const uses_info *u, const entries *es, const int *root_of,
                           const in_list *ins, int r) {
    const ir_node *rn = &g->nodes[r];
    if (rn->op != IR_REDUCE_SUM && rn->op != IR_REDUCE_MAX && rn->op != IR_SUM_TO)
        return 0;
    int x = rn->inputs[0];
    const ir_shape *xs = &g->nodes[x].shape;
    if (!fuse_is_elementwise(g, x) || u->uses[x] != 1 || u->is_root[x] || root_of[x] != x ||
        g->nodes[x].region != rn->region)
        return 0;
    for (int i = 0; i < ins[x].n; i++) {
        const ir_shape *s = &g->nodes[ins[x].id[i]].shape;
        if (!ir_shape_equal(s, xs) && (ir_shape_numel(s) != 1 || s->batch_mask))
            return 0;
    }
    for (int i = 0; i < x; i++)
        if (es->output_of[i] == x)
            return 0;
    return 1;
}

static void grow_reductions(const ir_graph *g, const uses_info *u, entries *es, int *root_of, int *size,
                            in_list *ins) {
    for (int r = 0; r < g->n_nodes; r++) {
        if (!u->live[r] || !reduction_takes(g, u, es, root_of, ins, r))
            continue;
        int x = g->nodes[r].inputs[0];
        for (int i = 0; i <= x; i++)
            if (root_of[i] == x)
                root_of[i] = es->fused_into[i] = r;
        root_of[r] = r;
        size[r] = size[x] + 1;
        size[x] = 0;
        ins[r] = ins[x];
    }
}

/* ------------------------------------------------------- recomputation */

/* A later group that reads values another group stores may compute them
 * again from fewer of that group's values instead (the head of the file):
 * GELU's gradient reads x / 2, x / sqrt 2 and 1 + erf(x / sqrt 2), which
 * the forward kernel stored for it; with the first two computed again
 * from x (erf is not cheap, see cheap()), the forward kernel stores two
 * arrays instead of three and the gradient's kernel reads three instead
 * of four. */
enum { RECOMPUTE_MAX = 16 };

typedef struct recompute {
    int n, cap;
    int *node, *root; /* node[i] is computed again by the group of root[i] */
} recompute;

/* The values a later group r2 would compute again, read from the group r1
 * (a cone over r1's members) and the members of r1 it would read instead
 * (the leaves). */
typedef struct cone {
    int n, n_leaves;
    int id[RECOMPUTE_MAX], leaf[RECOMPUTE_MAX];
} cone;

static int elementwise_outside_loops(const ir_graph *g, int id) {
    return fuse_is_elementwise(g, id) && !ir_in_loop(g, id);
}

/* Whether computing op again costs less than storing and loading its
 * value: arithmetic, comparisons, selections; not the functions of
 * codegen/cg_vmath.c and libm (erf alone is a few nanoseconds a value,
 * measured: GELU's gradient with erf computed again was slower than with
 * it read). */
static int cheap(ir_op op) {
    switch (op) {
    case IR_EXP:
    case IR_LOG:
    case IR_SQRT:
    case IR_TANH:
    case IR_SIGMOID:
    case IR_ERF:
    case IR_POW:
        return 0;
    default: return 1;
    }
}

/* Adds y, a member of r1, to c with what it needs: its single-use
 * inputs in r1 and the values r2 reads from r1 (in wanted[]) join the
 * cone; other members of r1 become leaves; anything else refuses. */
static int cone_add(const ir_graph *g, const uses_info *u, const int *root_of, int r1, const int *wanted,
                    int n_wanted, cone *c, int y) {
    if (ids_have(c->id, c->n, y))
        return 1;
    if (c->n == RECOMPUTE_MAX || !cheap(g->nodes[y].op))
        return 0;
    c->id[c->n++] = y;
    const ir_node *n = &g->nodes[y];
    for (int q = 0; q < n->n_inputs; q++) {
        int z = n->inputs[q];
        if (g->nodes[z].op == IR_CONST)
            continue;
        if (root_of[z] != r1 || !elementwise_outside_loops(g, z) ||
            !ir_shape_equal(&g->nodes[z].shape, &n->shape))
            return 0;
        if (ids_have(wanted, n_wanted, z) || u->uses[z] == 1) {
            if (!cone_add(g, u, root_of, r1, wanted, n_wanted, c, z))
                return 0;
        } else if (!ids_have(c->leaf, c->n_leaves, z)) {
            if (c->n_leaves == RECOMPUTE_MAX)
                return 0;
            c->leaf[c->n_leaves++] = z;
        }
    }
    return 1;
}

static void recompute_add(recompute *rc, int node, int root) {
    if (rc->n == rc->cap) {
        rc->cap = rc->cap ? 2 * rc->cap : 16;
        rc->node = ir_xrealloc(rc->node, (size_t)rc->cap * sizeof *rc->node);
        rc->root = ir_xrealloc(rc->root, (size_t)rc->cap * sizeof *rc->root);
    }
    rc->node[rc->n] = node;
    rc->root[rc->n++] = root;
}

static int recomputed_in(const recompute *rc, int node, int root) {
    for (int i = 0; i < rc->n; i++)
        if (rc->node[i] == node && rc->root[i] == root)
            return 1;
    return 0;
}

/* Group r2 computes again what it reads from group r1 where that takes
 * fewer arrays than it reads now (and r1 can store the leaves). */
static void recompute_from(const ir_graph *g, const uses_info *u, entries *es, const int *root_of, int *size,
                           in_list *ins, int *n_out, recompute *rc, int r2, int r1) {
    int wanted[FUSE_MAX_INPUTS], n_wanted = 0;
    for (int i = 0; i < ins[r2].n; i++) {
        int x = ins[r2].id[i];
        if (es->output_of[x] == r1 && elementwise_outside_loops(g, x) &&
            ir_shape_equal(&g->nodes[x].shape, &g->nodes[r2].shape))
            wanted[n_wanted++] = x;
    }
    cone c = {0};
    int taken[FUSE_MAX_INPUTS], n_taken = 0;
    for (int i = 0; i < n_wanted; i++) {
        cone before = c;
        if (cone_add(g, u, root_of, r1, wanted, n_wanted, &c, wanted[i]))
            taken[n_taken++] = wanted[i];
        else
            c = before;
    }
    for (int i = 0; i < c.n; i++) /* a value wanted but not taken is read, not computed */
        if (ids_have(wanted, n_wanted, c.id[i]) && !ids_have(taken, n_taken, c.id[i]))
            return;
    in_list next = {0};
    for (int i = 0; i < ins[r2].n; i++)
        if (!ids_have(taken, n_taken, ins[r2].id[i]))
            next.id[next.n++] = ins[r2].id[i];
    int promoted = 0;
    for (int i = 0; i < c.n_leaves; i++) {
        promoted += es->fused_into[c.leaf[i]] == r1;
        if (!ids_have(next.id, next.n, c.leaf[i])) {
            if (next.n == FUSE_MAX_INPUTS)
                return;
            next.id[next.n++] = c.leaf[i];
        }
    }
    if (next.n >= ins[r2].n || n_out[r1] + promoted > FUSE_MAX_OUTPUTS)
        return;
    ins[r2] = next;
    for (int i = 0; i < c.n_leaves; i++)
        if (es->fused_into[c.leaf[i]] == r1) { /* r1 now stores it */
            es->fused_into[c.leaf[i]] = -1;
            es->output_of[c.leaf[i]] = r1;
            n_out[r1]++;
        }
    for (int i = 0; i < c.n; i++)
        recompute_add(rc, c.id[i], r2);
    size[r2] += c.n;
}

/* Every elementwise group computes again what pays (recompute_from); then
 * a value that every kernel reading it computes itself is no longer
 * stored. */
static void recompute_cheap(const ir_graph *g, const uses_info *u, entries *es, const int *root_of, int *size,
                            in_list *ins, int *n_out, recompute *rc) {
    for (int r2 = 0; r2 < g->n_nodes; r2++) {
        if (!u->live[r2] || root_of[r2] != r2 || !elementwise_outside_loops(g, r2))
            continue;
        for (int i = 0; i < ins[r2].n; i++) {
            int r1 = es->output_of[ins[r2].id[i]];
            if (r1 >= 0 && r1 != r2 && fuse_is_elementwise(g, r1))
                recompute_from(g, u, es, root_of, size, ins, n_out, rc, r2, r1);
        }
    }
    for (int i = 0; i < rc->n; i++) {
        int x = rc->node[i], r1 = es->output_of[x], stored = u->is_root[x];
        if (r1 < 0)
            continue;
        for (int j = u->first[x]; !stored && j < u->first[x + 1]; j++) {
            int y = u->users[j];
            stored = !fuse_is_elementwise(g, y) || (root_of[y] != r1 && !recomputed_in(rc, x, root_of[y]));
        }
        for (int j = 0; !stored && j < rc->n; j++) /* a copy of a user computed elsewhere */
            stored = ids_have(g->nodes[rc->node[j]].inputs, g->nodes[rc->node[j]].n_inputs, x) &&
                     !recomputed_in(rc, x, rc->root[j]);
        if (!stored) {
            es->output_of[x] = -1;
            es->fused_into[x] = r1;
            n_out[r1]--;
        }
    }
}

/* es->groups from the decisions: one per root of two or more members,
 * members in id order with the root last. */
static void make_groups(const ir_graph *g, const int *root_of, const int *size, const in_list *ins,
                        const recompute *rc, entries *es) {
    int n = g->n_nodes, n_groups = 0;
    for (int i = 0; i < n; i++)
        n_groups += root_of[i] == i && size[i] > 1;
    es->groups = ir_xcalloc((size_t)n_groups, sizeof *es->groups);
    for (int i = 0; i < n; i++) {
        if (root_of[i] != i || size[i] < 2)
            continue;
        fused_group *gr = &es->groups[es->n_groups];
        gr->root = i;
        gr->members = ir_xmalloc((size_t)size[i] * sizeof *gr->members);
        es->group_at[i] = es->n_groups++;
        gr->n_inputs = ins[i].n;
        memcpy(gr->inputs, ins[i].id, (size_t)ins[i].n * sizeof(int));
    }
    for (int i = 0; i < n; i++) {
        int r = es->fused_into[i] >= 0  ? es->fused_into[i]
                : es->output_of[i] >= 0 ? es->output_of[i]
                : es->group_at[i] >= 0  ? i
                                        : -1;
        for (int j = 0; j < rc->n; j++)
            if (rc->node[j] == i) {
                fused_group *again = &es->groups[es->group_at[rc->root[j]]];
                again->members[again->n_members++] = i;
            }
        if (r < 0)
            continue;
        fused_group *gr = &es->groups[es->group_at[r]];
        gr->members[gr->n_members++] = i;
        if (es->output_of[i] >= 0)
            gr->outputs[gr->n_outputs++] = i;
    }
}

/* Interior nodes leave the schedules; a group's outputs move to just
 * before its root. */
static void reschedule(entries *es) {
    for (int k = 0; k < ENTRY_COUNT; k++) {
        entry *e = &es->e[k];
        int w = 0;
        for (int s = 0; s < e->n_sched; s++) {
            int id = e->sched[s];
            if (es->fused_into[id] >= 0 || es->output_of[id] >= 0)
                continue;
            const fused_group *gr = es->group_at[id] >= 0 ? &es->groups[es->group_at[id]] : NULL;
            for (int o = 0; gr && o < gr->n_outputs; o++)
                if (e->live[gr->outputs[o]])
                    e->sched[w++] = gr->outputs[o];
            e->sched[w++] = id;
        }
        e->n_sched = w;
    }
}

static void no_groups(const ir_graph *g, entries *es) {
    int n = g->n_nodes;
    es->fused_into = ir_xmalloc((size_t)n * sizeof *es->fused_into);
    es->group_at = ir_xmalloc((size_t)n * sizeof *es->group_at);
    es->output_of = ir_xmalloc((size_t)n * sizeof *es->output_of);
    for (int i = 0; i < n; i++)
        es->fused_into[i] = es->group_at[i] = es->output_of[i] = -1;
}

void fuse_none(const ir_graph *g, entries *es) { no_groups(g, es); }

void fuse_elementwise(const ir_graph *g, entries *es) {
    int n = g->n_nodes;
    uses_info u;
    count_uses(g, es, &u);
    int *root_of = ir_xmalloc((size_t)n * sizeof *root_of);
    int *size = ir_xcalloc((size_t)n, sizeof *size);
    in_list *ins = ir_xmalloc((size_t)n * sizeof *ins);
    no_groups(g, es);
    for (int i = 0; i < n; i++)
        root_of[i] = -1;
    int *n_out = ir_xcalloc((size_t)n, sizeof *n_out);
    recompute rc = {0};
    grow_groups(g, &u, es, root_of, size, ins, n_out);
    grow_reductions(g, &u, es, root_of, size, ins);
    recompute_cheap(g, &u, es, root_of, size, ins, n_out, &rc);
    make_groups(g, root_of, size, ins, &rc, es);
    free(n_out);
    free(rc.node);
    free(rc.root);
    reschedule(es);
    free_uses(&u);
    free(root_of);
    free(size);
    free(ins);
}

/* ------------------------------------------------------------ the dump */

static const char *class_noun(ir_class c) {
    switch (c) {
    case IR_REDUCE: return "a reduction";
    case IR_MOVE: return "data movement";
    case IR_CONTRACT: return "a matmul";
    case IR_SINK: return "an assign";
    case IR_INDEX: return "an indexing op";
    case IR_WINDOW: return "a window op";
    case IR_RANDOM: return "a random op";
    case IR_LOOP: return "a loop node";
    default: return "a leaf";
    }
}

/* The root of the group whose kernel computes node id, or id itself. */
static int kernel_of(const entries *es, int id) {
    return es->fused_into[id] >= 0 ? es->fused_into[id] : es->output_of[id] >= 0 ? es->output_of[id] : id;
}

/* Whether the group of root computes node id again (recompute_cheap). */
static int computed_again_by(const entries *es, int id, int root) {
    if (es->group_at[root] < 0 || kernel_of(es, id) == root)
        return 0;
    const fused_group *gr = &es->groups[es->group_at[root]];
    return ids_have(gr->members, gr->n_members, id);
}

/* Why node x, used more than once or an entry's result, is not an output
 * of the group its elementwise users are in (output_group's rules, read
 * back from the groups made). */
static const char *output_refusal(const ir_graph *g, const entries *es, const uses_info *u, int x) {
    int r = -1;
    for (int j = u->first[x]; j < u->first[x + 1]; j++) {
        int y = u->users[j];
        if (ir_in_loop(g, y) || g->nodes[x].region)
            return "a user is in a loop";
        if (!fusible_use(g, x, y))
            continue;
        if (r >= 0 && kernel_of(es, y) != r)
            return "multi-use value would be recomputed";
        r = kernel_of(es, y);
    }
    if (r < 0)
        return u->uses[x] > 1 ? "multi-use value would be recomputed" : "value is an entry's result";
    if (es->group_at[r] >= 0 && es->groups[es->group_at[r]].n_outputs == FUSE_MAX_OUTPUTS)
        return "the group stores as many outputs as it may";
    for (int j = u->first[x]; j < u->first[x + 1]; j++) {
        int y = u->users[j], runs_at = kernel_of(es, y);
        if (runs_at != r && g->nodes[y].op != IR_ASSIGN && runs_at <= r)
            return "a user outside the group runs before it";
    }
    for (int k = 0; k < ENTRY_COUNT; k++)
        if (es->e[k].present && es->e[k].live[x] && !es->e[k].live[r])
            return "an entry needs the value without the group";
    return NULL;
}

/* Why the edge x -> y (y reads x) crosses from one kernel to another:
 * the first rule of the head of the file that it breaks. */
static void edge_reason(const ir_graph *g, const entries *es, const uses_info *u, int x, int y, char *buf,
                        size_t size) {
    const ir_node *xn = &g->nodes[x], *yn = &g->nodes[y];
    if (!fuse_is_elementwise(g, x))
        snprintf(buf, size, "producer is %s", class_noun(ir_ops[xn->op].cls));
    else if (yn->op == IR_REDUCE_SUM || yn->op == IR_REDUCE_MAX || yn->op == IR_SUM_TO)
        snprintf(buf, size, "%s", u->uses[x] > 1      ? "multi-use value would be recomputed"
                                  : u->is_root[x]       ? "value is an entry's result"
                                  : xn->region != yn->region ? "different loop"
                                  : es->group_at[x] >= 0 && es->groups[es->group_at[x]].n_outputs
                                      ? "its group stores outputs"
                                      : "its group reads a broadcast operand");
    else if (!fuse_is_elementwise(g, y))
        snprintf(buf, size, "consumer is %s", class_noun(ir_ops[yn->op].cls));
    else if (xn->region != yn->region)
        snprintf(buf, size, "different loop");
    else if (!ir_shape_equal(&xn->shape, &yn->shape))
        snprintf(buf, size, "different iteration space");
    else if (es->output_of[x] >= 0)
        snprintf(buf, size, "value is stored by %%%d's kernel and used after it", es->output_of[x]);
    else if ((u->uses[x] > 1 || u->is_root[x]) && output_refusal(g, es, u, x))
        snprintf(buf, size, "%s", output_refusal(g, es, u, x));
    else
        snprintf(buf, size, "the group would read more than %d buffers", FUSE_MAX_INPUTS);
}

/* Every edge between two kernels, one a line:
 *   %21 reduce_max -> %22 sub: producer is a reduction */
static void dump_unfused_edges(const ir_graph *g, const entries *es, FILE *out) {
    uses_info u;
    count_uses(g, es, &u);
    fprintf(out, "not fused:\n");
    for (int y = 0; y < g->n_nodes; y++) {
        const ir_node *yn = &g->nodes[y];
        if (!u.live[y])
            continue;
        for (int q = 0; q < yn->n_inputs; q++) {
            int x = yn->inputs[q], seen = 0;
            ir_op op = g->nodes[x].op;
            for (int p = 0; p < q; p++)
                seen |= yn->inputs[p] == x;
            if (seen || op == IR_INPUT || op == IR_PARAM || op == IR_CONST || op == IR_HYPER || yn->op == IR_NUMEL ||
                kernel_of(es, x) == kernel_of(es, y) || computed_again_by(es, x, kernel_of(es, y)))
                continue;
            char why[96];
            edge_reason(g, es, &u, x, y, why, sizeof why);
            fprintf(out, "  %%%d %s -> %%%d %s: %s\n", x, ir_ops[op].name, y, ir_ops[yn->op].name, why);
        }
    }
    free_uses(&u);
}

void fuse_dump(const ir_graph *g, const entries *es, FILE *out) {
    int fused = 0;
    for (int i = 0; i < es->n_groups; i++)
        fused += es->groups[i].n_members;
    fprintf(out, "%d fused groups of %d nodes\n", es->n_groups, fused);
    for (int i = 0; i < es->n_groups; i++) {
        const fused_group *gr = &es->groups[i];
        fprintf(out, "%%%d = fused{", gr->root);
        for (int m = 0; m < gr->n_members; m++) {
            int id = gr->members[m];
            fprintf(out, "%s%%%d %s%s", m ? ", " : "", id, ir_ops[g->nodes[id].op].name,
                    kernel_of(es, id) != gr->root ? " again"
                    : es->output_of[id] >= 0     ? " stored"
                                                 : "");
        }
        fprintf(out, "} (");
        for (int k = 0; k < gr->n_inputs; k++)
            fprintf(out, "%s%%%d", k ? ", " : "", gr->inputs[k]);
        fprintf(out, ")\n");
    }
    for (int k = 0; k < ENTRY_COUNT; k++) {
        int kernels = 0;
        for (int j = 0; es->e[k].present && j < es->e[k].n_sched; j++)
            kernels += es->output_of[es->e[k].sched[j]] < 0;
        if (es->e[k].present)
            fprintf(out, "%s: %d kernels\n", es->e[k].name, kernels);
    }
    dump_unfused_edges(g, es, out);
}
