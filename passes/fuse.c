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

int fuse_elementwise(const ir_graph *g, entries *es) {
    int n = g->n_nodes;
    unsigned char *live = calloc((size_t)(n ? n : 1), 1);
    unsigned char *is_root = calloc((size_t)(n ? n : 1), 1);
    int *uses = malloc((size_t)(n ? n : 1) * sizeof *uses);
    int *user = malloc((size_t)(n ? n : 1) * sizeof *user);
    int *root_of = malloc((size_t)(n ? n : 1) * sizeof *root_of);
    int *size = calloc((size_t)(n ? n : 1), sizeof *size);
    in_list *ins = malloc((size_t)(n ? n : 1) * sizeof *ins);
    es->fused_into = malloc((size_t)(n ? n : 1) * sizeof *es->fused_into);
    es->group_at = malloc((size_t)(n ? n : 1) * sizeof *es->group_at);
    int rc = -1;
    if (!live || !is_root || !uses || !user || !root_of || !size || !ins || !es->fused_into || !es->group_at)
        goto done;
    for (int k = 0; k < ENTRY_COUNT; k++) {
        const entry *e = &es->e[k];
        if (!e->present)
            continue;
        for (int i = 0; i < n; i++)
            live[i] |= e->live[i];
        for (int r = 0; r < e->n_roots; r++)
            is_root[e->roots[r]] = 1;
    }
    for (int i = 0; i < n; i++) {
        uses[i] = 0;
        user[i] = root_of[i] = es->fused_into[i] = es->group_at[i] = -1;
    }
    for (int i = 0; i < n; i++)
        for (int k = 0; live[i] && k < g->nodes[i].n_inputs; k++) {
            uses[g->nodes[i].inputs[k]]++;
            user[g->nodes[i].inputs[k]] = i;
        }

    for (int id = n - 1; id >= 0; id--) {
        if (!live[id] || !fuse_is_elementwise(g, id))
            continue;
        int u = user[id], root = id;
        if (!is_root[id] && uses[id] == 1 && fuse_is_elementwise(g, u) &&
            ir_shape_equal(&g->nodes[id].shape, &g->nodes[u].shape)) {
            in_list grown;
            int r = root_of[u];
            if (list_absorb(g, &ins[r], id, id, &grown) == 0) {
                ins[r] = grown;
                root = r;
            }
        }
        root_of[id] = root;
        size[root]++;
        if (root == id) {
            in_list empty = {0};
            if (list_absorb(g, &empty, -1, id, &ins[id]) != 0)
                goto done; /* cannot happen: 3 inputs at most */
        } else {
            es->fused_into[id] = root;
        }
    }

    int n_groups = 0;
    for (int i = 0; i < n; i++)
        n_groups += root_of[i] == i && size[i] > 1;
    es->groups = calloc((size_t)(n_groups ? n_groups : 1), sizeof *es->groups);
    if (!es->groups)
        goto done;
    for (int i = 0; i < n; i++) {
        if (root_of[i] != i || size[i] < 2)
            continue;
        fused_group *gr = &es->groups[es->n_groups];
        gr->root = i;
        gr->members = malloc((size_t)size[i] * sizeof *gr->members);
        if (!gr->members)
            goto done;
        es->group_at[i] = es->n_groups++;
        gr->n_inputs = ins[i].n;
        memcpy(gr->inputs, ins[i].id, (size_t)ins[i].n * sizeof(int));
    }
    /* members in id order, the root last */
    for (int i = 0; i < n; i++) {
        int r = es->fused_into[i] >= 0 ? es->fused_into[i] : (es->group_at[i] >= 0 ? i : -1);
        if (r < 0)
            continue;
        fused_group *gr = &es->groups[es->group_at[r]];
        gr->members[gr->n_members++] = i;
    }
    for (int k = 0; k < ENTRY_COUNT; k++) {
        entry *e = &es->e[k];
        int w = 0;
        for (int s = 0; s < e->n_sched; s++)
            if (es->fused_into[e->sched[s]] < 0)
                e->sched[w++] = e->sched[s];
        e->n_sched = w;
    }
    rc = 0;
done:
    free(live);
    free(is_root);
    free(uses);
    free(user);
    free(root_of);
    free(size);
    free(ins);
    return rc;
}

int entries_kernel_inputs(const ir_graph *g, const entries *es, int id, int *out) {
    if (es->group_at && es->group_at[id] >= 0) {
        const fused_group *gr = &es->groups[es->group_at[id]];
        memcpy(out, gr->inputs, (size_t)gr->n_inputs * sizeof *out);
        return gr->n_inputs;
    }
    const ir_node *nd = &g->nodes[id];
    memcpy(out, nd->inputs, (size_t)nd->n_inputs * sizeof *out);
    return nd->n_inputs;
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
