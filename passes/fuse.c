/*
 * fuse.c - elementwise fusion: chains of elementwise nodes become one
 * kernel that computes the interior nodes in registers and stores only
 * the group's root.
 *
 * Groups grow from their roots towards the inputs, over the live nodes in
 * reverse id order (ids are topological, so a node's users are decided
 * before it).  An elementwise node (UNARY, BINARY, TERNARY) becomes
 * interior to the group of its user when
 *   - it has exactly one use among the nodes live in any entry (a value
 *     used twice, even twice by the same node, stays a buffer: nothing is
 *     ever computed twice),
 *   - that user is elementwise and has the same output shape (a node of
 *     another shape is a broadcast operand: a group input), and
 *   - it is no entry's root (a value the runtime reads needs its buffer),
 *   - it runs where its user runs (both in the same scan body, or both
 *     outside every loop),
 *   - and the group keeps at most FUSE_MAX_INPUTS inputs with buffers.
 * A node live in an entry is then live there only for its one user, so
 * every entry that schedules an interior node schedules its root too, and
 * the other way round: taking interior nodes out of every schedule leaves
 * each root's kernel with all it needs.  CONST inputs have no buffer and
 * are folded into the kernel as before.
 *
 * Not fused (yet): a producer into a reduction, matmul or movement op
 * (SUM_TO of a product, the softmax's exp into its sum), and values used
 * more than once (recomputing a cheap one in each user would remove more
 * buffers).
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

static int list_find(const in_list *l, int id) {
    for (int i = 0; i < l->n; i++)
        if (l->id[i] == id)
            return i;
    return -1;
}

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
        if (g->nodes[x].op == IR_CONST || list_find(out, x) >= 0)
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
} uses_info;

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
    for (int i = 0; i < n; i++) {
        for (int k = 0; u->live[i] && k < g->nodes[i].n_inputs; k++) {
            u->uses[g->nodes[i].inputs[k]]++;
            u->user[g->nodes[i].inputs[k]] = i;
        }
        /* a carry reads its next value at the end of every step */
        if (u->live[i] && g->nodes[i].op == IR_SCAN_CARRY) {
            u->uses[g->nodes[i].link]++;
            u->user[g->nodes[i].link] = i;
        }
    }
}

static void free_uses(uses_info *u) {
    free(u->live);
    free(u->is_root);
    free(u->uses);
    free(u->user);
}

/* Decides every live elementwise node's group, users first: root_of[id]
 * is the root of id's group, size[root] its member count, ins[root] its
 * inputs; es->fused_into is set for interior nodes. */
static void grow_groups(const ir_graph *g, const uses_info *u, entries *es, int *root_of, int *size, in_list *ins) {
    for (int id = g->n_nodes - 1; id >= 0; id--) {
        if (!u->live[id] || !fuse_is_elementwise(g, id))
            continue;
        int user = u->user[id], root = id;
        if (!u->is_root[id] && u->uses[id] == 1 && fuse_is_elementwise(g, user) &&
            g->nodes[id].region == g->nodes[user].region &&
            ir_shape_equal(&g->nodes[id].shape, &g->nodes[user].shape)) {
            in_list grown;
            int r = root_of[user];
            if (list_absorb(g, &ins[r], id, id, &grown) == 0) {
                ins[r] = grown;
                root = r;
            }
        }
        root_of[id] = root;
        size[root]++;
        if (root == id) {
            in_list empty = {0};
            list_absorb(g, &empty, -1, id, &ins[id]); /* fits: 3 inputs at most */
        } else {
            es->fused_into[id] = root;
        }
    }
}

/* es->groups from the decisions: one per root of two or more members,
 * members in id order with the root last. */
static void make_groups(const ir_graph *g, const int *root_of, const int *size, const in_list *ins, entries *es) {
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
        int r = es->fused_into[i] >= 0 ? es->fused_into[i] : (es->group_at[i] >= 0 ? i : -1);
        if (r < 0)
            continue;
        fused_group *gr = &es->groups[es->group_at[r]];
        gr->members[gr->n_members++] = i;
    }
}

static void drop_interior_nodes(entries *es) {
    for (int k = 0; k < ENTRY_COUNT; k++) {
        entry *e = &es->e[k];
        int w = 0;
        for (int s = 0; s < e->n_sched; s++)
            if (es->fused_into[e->sched[s]] < 0)
                e->sched[w++] = e->sched[s];
        e->n_sched = w;
    }
}

void fuse_elementwise(const ir_graph *g, entries *es) {
    int n = g->n_nodes;
    uses_info u;
    count_uses(g, es, &u);
    int *root_of = ir_xmalloc((size_t)n * sizeof *root_of);
    int *size = ir_xcalloc((size_t)n, sizeof *size);
    in_list *ins = ir_xmalloc((size_t)n * sizeof *ins);
    es->fused_into = ir_xmalloc((size_t)n * sizeof *es->fused_into);
    es->group_at = ir_xmalloc((size_t)n * sizeof *es->group_at);
    for (int i = 0; i < n; i++)
        root_of[i] = es->fused_into[i] = es->group_at[i] = -1;
    grow_groups(g, &u, es, root_of, size, ins);
    make_groups(g, root_of, size, ins, es);
    drop_interior_nodes(es);
    free_uses(&u);
    free(root_of);
    free(size);
    free(ins);
}

void fuse_dump(const ir_graph *g, const entries *es, FILE *out) {
    int fused = 0;
    for (int i = 0; i < es->n_groups; i++)
        fused += es->groups[i].n_members;
    fprintf(out, "%d fused groups of %d nodes\n", es->n_groups, fused);
    for (int i = 0; i < es->n_groups; i++) {
        const fused_group *gr = &es->groups[i];
        fprintf(out, "%%%d = fused{", gr->root);
        for (int m = 0; m < gr->n_members; m++)
            fprintf(out, "%s%%%d %s", m ? ", " : "", gr->members[m], ir_ops[g->nodes[gr->members[m]].op].name);
        fprintf(out, "} (");
        for (int k = 0; k < gr->n_inputs; k++)
            fprintf(out, "%s%%%d", k ? ", " : "", gr->inputs[k]);
        fprintf(out, ")\n");
    }
    for (int k = 0; k < ENTRY_COUNT; k++)
        if (es->e[k].present)
            fprintf(out, "%s: %d kernels\n", es->e[k].name, es->e[k].n_sched);
}
