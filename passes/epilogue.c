/*
 * epilogue.c - matmul epilogues: a product whose one user is an
 * elementwise group of its shape joins that group, and the group's kernel
 * applies the elementwise members to each element of C as the GEMM stores
 * it (codegen/cg_matmul.c).  `relu(x W + b)` is then one kernel that
 * writes its output once, and so is the ReLU backward `(g W^T) * (h > 0)`.
 *
 * It runs after fuse_elementwise and only extends fusion's groups: fusion
 * decides what is elementwise and grouped (its rules are unchanged), this
 * pass decides which product a group takes as its first stage.  A product
 * P joins the group of its user U (or makes one with U alone) when
 *   - P is an f32 MATMUL without leading dims (one product, not a batch
 *     of them),
 *   - P has exactly one use among the nodes live in any entry, is no
 *     entry's root, and runs where U runs (the same scan body or none),
 *   - U is elementwise of P's shape (interior to a group, one of its
 *     stored outputs, or its root), every member of its group is an
 *     f32 elementwise node (no reduction); the group's other outputs
 *     (fuse.c) are then stored by the epilogue at C's element, from the
 *     tile's values,
 *   - neither the group's root nor any of its outputs is the value of an
 *     ASSIGN: the memory plan may compute such a value in the slot it
 *     replaces, which the product's first K slice would overwrite before
 *     the epilogue reads it (or which the product may still read),
 *   - every input the elementwise members read is, at C(i, j), either an
 *     array of C's shape, a vector over C's columns (a bias), or a scalar
 *     (epilogue_input_kind),
 *   - and the group keeps at most FUSE_MAX_INPUTS inputs once P's two
 *     operands replace P.
 * The same argument as fusion's makes this safe to drop P from every
 * schedule: it has one use, so wherever the root runs, P would have too.
 */
#include <stdlib.h>
#include <string.h>

#include "passes.h"

/* ------------------------------------------------------------- queries */

int epilogue_product(const ir_graph *g, const fused_group *gr) {
    for (int m = 0; m < gr->n_members; m++)
        if (g->nodes[gr->members[m]].op == IR_MATMUL)
            return gr->members[m];
    return -1;
}

/* The dims of x left when leading literal 1s are dropped: *first is the
 * first kept dim. */
static int kept_rank(const ir_shape *x, int *first) {
    int d = 0;
    while (d < x->rank && ir_dim_is_one(x, d))
        d++;
    *first = d;
    return x->rank - d;
}

int epilogue_input_kind(const ir_graph *g, int product, int x) {
    const ir_node *p = &g->nodes[product];
    const ir_shape *c = &p->shape, *s = &g->nodes[x].shape;
    if (ir_shape_equal(s, c))
        return EPILOGUE_FULL;
    int first, rank = kept_rank(s, &first);
    if (rank == 0)
        return EPILOGUE_SCALAR;
    /* C is [lead.., M dims.., N dims..]: a row vector has C's N dims */
    ir_matmul_dims d = ir_matmul_split(p, g->nodes[p->inputs[0]].shape.rank, g->nodes[p->inputs[1]].shape.rank);
    if (rank != d.n_hi - d.n_lo)
        return -1;
    for (int i = 0; i < rank; i++) {
        int cd = c->rank - rank + i, sd = first + i;
        if (s->dims[sd] != c->dims[cd] || ir_is_batch_dim(s, sd) || ir_is_batch_dim(c, cd))
            return -1;
    }
    return EPILOGUE_ROW;
}

/* ------------------------------------------------------------- the pass */

typedef struct uses {
    unsigned char *live, *is_root, *assigned; /* assigned: the value of an ASSIGN */
    int *count, *user;                        /* uses among the live nodes; the last user */
} uses;

static void count_uses(const ir_graph *g, const entries *es, uses *u) {
    int n = g->n_nodes;
    u->live = entries_live_in_any(g, es);
    u->is_root = ir_xcalloc((size_t)n, 1);
    u->assigned = ir_xcalloc((size_t)n, 1);
    u->count = ir_xcalloc((size_t)n, sizeof *u->count);
    u->user = ir_xmalloc((size_t)n * sizeof *u->user);
    for (int k = 0; k < ENTRY_COUNT; k++)
        for (int r = 0; es->e[k].present && r < es->e[k].n_roots; r++)
            u->is_root[es->e[k].roots[r]] = 1;
    for (int i = 0; i < n; i++)
        u->user[i] = -1;
    for (int i = 0; i < n; i++) {
        const ir_node *node = &g->nodes[i];
        for (int k = 0; u->live[i] && k < node->n_inputs; k++) {
            u->count[node->inputs[k]]++;
            u->user[node->inputs[k]] = i;
        }
        if (u->live[i] && node->op == IR_SCAN_CARRY) { /* reads its next value every step */
            u->count[node->link]++;
            u->user[node->link] = i;
        }
        if (node->op == IR_ASSIGN)
            u->assigned[node->inputs[1]] = 1;
    }
}

static void free_uses(uses *u) {
    free(u->live);
    free(u->is_root);
    free(u->assigned);
    free(u->count);
    free(u->user);
}

static int is_f32_elementwise(const ir_graph *g, int id) {
    return fuse_is_elementwise(g, id) && g->nodes[id].dtype == IR_F32;
}

/* The group P would join: its members (root last) and inputs, without P
 * yet.  U alone when U is in no group. */
typedef struct plan {
    int root, n_members, n_inputs;
    const int *members;
    int inputs[FUSE_MAX_INPUTS + 2];
} plan;

/* Whether P can join U's group (see the top); fills pl. */
static int can_join(const ir_graph *g, const entries *es, const uses *u, int p, plan *pl) {
    const ir_node *pn = &g->nodes[p];
    if (pn->op != IR_MATMUL || pn->dtype != IR_F32 || pn->lead_dims > 0 || !u->live[p] || u->is_root[p] ||
        u->count[p] != 1)
        return 0;
    int user = u->user[p];
    if (user < 0 || !is_f32_elementwise(g, user) || g->nodes[user].region != pn->region ||
        !ir_shape_equal(&g->nodes[user].shape, &pn->shape))
        return 0;
    pl->root = es->fused_into[user] >= 0                   ? es->fused_into[user]
               : es->output_of && es->output_of[user] >= 0 ? es->output_of[user]
                                                           : user;
    int at = es->group_at[pl->root];
    pl->n_inputs = 0;
    if (at >= 0) {
        const fused_group *gr = &es->groups[at];
        for (int o = 0; o < gr->n_outputs; o++)
            if (u->assigned[gr->outputs[o]])
                return 0; /* the memory plan may compute it in the slot it replaces */
        pl->members = gr->members;
        pl->n_members = gr->n_members;
        for (int i = 0; i < gr->n_inputs; i++)
            if (gr->inputs[i] != p)
                pl->inputs[pl->n_inputs++] = gr->inputs[i];
    } else {
        pl->members = &pl->root;
        pl->n_members = 1;
        for (int q = 0; q < g->nodes[user].n_inputs; q++) {
            int x = g->nodes[user].inputs[q];
            if (x != p && g->nodes[x].op != IR_CONST && !ids_have(pl->inputs, pl->n_inputs, x))
                pl->inputs[pl->n_inputs++] = x;
        }
    }
    if (u->assigned[pl->root])
        return 0;
    for (int m = 0; m < pl->n_members; m++)
        if (!is_f32_elementwise(g, pl->members[m]))
            return 0;
    for (int i = 0; i < pl->n_inputs; i++)
        if (epilogue_input_kind(g, p, pl->inputs[i]) < 0)
            return 0;
    for (int q = 0; q < 2; q++) {
        int x = pn->inputs[q];
        if (g->nodes[x].op != IR_CONST && !ids_have(pl->inputs, pl->n_inputs, x))
            pl->inputs[pl->n_inputs++] = x;
    }
    return pl->n_inputs <= FUSE_MAX_INPUTS;
}

/* P joins the group of pl (made if U was alone), in id order. */
static void join(const ir_graph *g, entries *es, int p, const plan *pl) {
    int at = es->group_at[pl->root];
    if (at < 0) {
        at = es->n_groups++;
        es->groups = ir_xrealloc(es->groups, (size_t)es->n_groups * sizeof *es->groups);
        memset(&es->groups[at], 0, sizeof es->groups[at]);
        es->groups[at].root = pl->root;
        es->group_at[pl->root] = at;
    }
    fused_group *gr = &es->groups[at];
    int *members = ir_xmalloc((size_t)(pl->n_members + 1) * sizeof *members);
    int n = 0;
    for (int m = 0; m < pl->n_members; m++) {
        if (n == m && pl->members[m] > p)
            members[n++] = p;
        members[n++] = pl->members[m];
    }
    if (n == pl->n_members)
        members[n++] = p;
    free(gr->members);
    gr->members = members;
    gr->n_members = n;
    gr->n_inputs = pl->n_inputs;
    memcpy(gr->inputs, pl->inputs, (size_t)pl->n_inputs * sizeof(int));
    es->fused_into[p] = pl->root;
    (void)g;
}

static void drop_from_schedules(entries *es, int id) {
    for (int k = 0; k < ENTRY_COUNT; k++) {
        entry *e = &es->e[k];
        int w = 0;
        for (int s = 0; s < e->n_sched; s++)
            if (e->sched[s] != id)
                e->sched[w++] = e->sched[s];
        e->n_sched = w;
    }
}

void epilogue_fuse(const ir_graph *g, entries *es) {
    uses u;
    count_uses(g, es, &u);
    for (int p = 0; p < g->n_nodes; p++) {
        plan pl;
        if (!can_join(g, es, &u, p, &pl))
            continue;
        join(g, es, p, &pl);
        drop_from_schedules(es, p);
    }
    free_uses(&u);
}
