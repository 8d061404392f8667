/*
 * autodiff.c - reverse-mode differentiation as a graph transform.
 *
 * Starting from the loss with an adjoint of 1, nodes are visited in
 * reverse order (the node array is a topological order, so this visits
 * every user before what it uses).  Each op's rule, grad_<name> below,
 * appends ordinary IR nodes computing the adjoints of its inputs; they are
 * then simplified, planned and compiled exactly like the forward pass.
 *
 * acc() is where broadcasting is undone: an adjoint whose shape is wider
 * than the input it belongs to (x + b with b: [U] and x: [B, U]) is summed
 * down with sum_to, so no rule has to think about broadcasting.
 *
 * Only nodes on a path from a trainable parameter to the loss get
 * adjoints (`wants`), which keeps the backward graph minimal.  The rule
 * table is built from ops.def: an op without grad_<name> does not compile.
 */
#include <stdlib.h>
#include <string.h>

#include "passes.h"

typedef struct ad {
    ir_graph *g;
    int *adj;             /* adjoint node of each forward node, or -1 */
    unsigned char *wants; /* node depends on a trainable parameter */
    int failed;
    int n0;               /* the forward graph's node count */
    /* While the body of scan `body` is differentiated (grad_scan): the
     * step's adjoint of each value from outside the body that the body
     * reads (captured weights...), or -1, and those values in order. */
    int body, backward;
    int *capture_adj;
    int *captures, n_captures;
    /* ... and the contributions a_t^T g_t of a weight in a product, kept
     * apart so that one product over all steps sums them (step_products) */
    struct step_product {
        int x, a, g;
    } *products;
    int n_products, cap_products;
} ad;

static ir_node node(const ad *c, int id) { return c->g->nodes[id]; }

static int check(ad *c, int id) {
    if (id < 0)
        c->failed = 1;
    return id;
}

/* Small builders that keep rules readable; -1 propagates. */
static int add(ad *c, int a, int b) { return a < 0 || b < 0 ? -1 : check(c, ir_add(c->g, IR_ADD, a, b, -1)); }
static int sub(ad *c, int a, int b) { return a < 0 || b < 0 ? -1 : check(c, ir_add(c->g, IR_SUB, a, b, -1)); }
static int mul(ad *c, int a, int b) { return a < 0 || b < 0 ? -1 : check(c, ir_add(c->g, IR_MUL, a, b, -1)); }
static int dvd(ad *c, int a, int b) { return a < 0 || b < 0 ? -1 : check(c, ir_add(c->g, IR_DIV, a, b, -1)); }
static int neg(ad *c, int a) { return a < 0 ? -1 : check(c, ir_add(c->g, IR_NEG, a, -1, -1)); }
static int op1(ad *c, ir_op op, int a) { return a < 0 ? -1 : check(c, ir_add(c->g, op, a, -1, -1)); }
static int cmp(ad *c, ir_op op, int a, int b) { return check(c, ir_add(c->g, op, a, b, -1)); }
static int scalar(ad *c, double v) { return check(c, ir_scalar(c->g, v)); }
static int matmul(ad *c, int a, int b, int flags, int lead) {
    return check(c, ir_matmul_batched(c->g, a, b, flags, lead));
}

/* Inside a backward body, a weight's step adjoint a_t^T g_t (a matmul's
 * rule for its right operand) is recorded rather than summed at every
 * step: after the loop, a^T g over the stacked a's and g's is one product
 * that sums over the steps and the batch at once, [T,B,K]^T @ [T,B,N]. */
static int is_step_product(ad *c, int x, int grad) {
    ir_node n = node(c, grad);
    if (n.op != IR_MATMUL || n.flags != IR_TRANSPOSE_A || n.region != c->backward)
        return 0;
    ir_node a = node(c, n.inputs[0]), g = node(c, n.inputs[1]);
    if (a.region != c->backward || g.region != c->backward || a.shape.rank != 2 || g.shape.rank != 2)
        return 0;
    if (c->n_products == c->cap_products) {
        c->cap_products = c->cap_products ? 2 * c->cap_products : 8;
        c->products = ir_xrealloc(c->products, (size_t)c->cap_products * sizeof *c->products);
    }
    c->products[c->n_products++] = (struct step_product){x, n.inputs[0], n.inputs[1]};
    return 1;
}

/* Adds `grad` to the adjoint of `x`, summing away broadcast dimensions.
 * Inside a scan's backward body, a value from outside the body collects
 * the step's contribution apart (differentiate_scan sums it over the steps). */
static void acc(ad *c, int x, int grad) {
    if (grad < 0 || !c->wants[x] || node(c, x).dtype != IR_F32)
        return;
    ir_shape xs = node(c, x).shape, gs = node(c, grad).shape;
    if (!ir_shape_equal(&gs, &xs))
        grad = check(c, ir_sum_to(c->g, grad, &xs));
    if (grad < 0)
        return;
    int *slot = &c->adj[x];
    if (c->body && node(c, x).region != c->body) {
        if (is_step_product(c, x, grad))
            return;
        slot = &c->capture_adj[x];
        if (*slot < 0)
            c->captures[c->n_captures++] = x;
    }
    *slot = *slot < 0 ? grad : add(c, *slot, grad);
}

#define X(k) (n.inputs[k])
#define RULE(name) static void grad_##name(ad *c, int y, ir_node n, int g)

/* Leaves and ops whose derivative is zero almost everywhere. */
#define NO_GRAD(name)                                                                              \
    RULE(name) {                                                                                   \
        (void)c, (void)y, (void)n, (void)g;                                                        \
    }
NO_GRAD(input)
NO_GRAD(param)
NO_GRAD(const)
NO_GRAD(hyper)
NO_GRAD(iota)   /* no inputs */
NO_GRAD(numel)  /* an element count */
NO_GRAD(sign)   /* piecewise constant */
NO_GRAD(cast)   /* only f32 -> f32 could carry one, and that is never built */
NO_GRAD(lt)
NO_GRAD(le)
NO_GRAD(gt)
NO_GRAD(ge)
NO_GRAD(eq)
NO_GRAD(ne)
NO_GRAD(assign) /* an effect, never on the path to the loss */
NO_GRAD(stop_gradient) /* by definition */
NO_GRAD(argmax)        /* an i32 index */
NO_GRAD(one_hot)       /* of i32 labels */
/* recurrence: differentiate_scan differentiates a scan as a whole (below) */
NO_GRAD(scan)
NO_GRAD(scan_carry)
NO_GRAD(scan_slice)
NO_GRAD(scan_stack)
NO_GRAD(scan_final)

/* y = -x:        dx = -g */
RULE(neg) { (void)y; acc(c, X(0), neg(c, g)); }
/* y = exp x:     dx = g y */
RULE(exp) { acc(c, X(0), mul(c, g, y)); }
/* y = log x:     dx = g / x */
RULE(log) { (void)y; acc(c, X(0), dvd(c, g, X(0))); }
/* y = sqrt x:    dx = g / (2 y) */
RULE(sqrt) { acc(c, X(0), dvd(c, mul(c, g, scalar(c, 0.5)), y)); }
/* y = |x|:       dx = g sign(x) */
RULE(abs) { (void)y; acc(c, X(0), mul(c, g, check(c, ir_add(c->g, IR_SIGN, X(0), -1, -1)))); }
/* y = tanh x:    dx = g (1 - y^2) */
RULE(tanh) { acc(c, X(0), mul(c, g, sub(c, scalar(c, 1), mul(c, y, y)))); }
/* y = 1/(1+e^-x): dx = g y (1 - y) */
RULE(sigmoid) { acc(c, X(0), mul(c, g, mul(c, y, sub(c, scalar(c, 1), y)))); }
/* y = erf x:    dx = g 2/sqrt(pi) exp(-x^2) */
RULE(erf) {
    (void)y;
    int e = op1(c, IR_EXP, neg(c, mul(c, X(0), X(0))));
    acc(c, X(0), mul(c, g, mul(c, e, scalar(c, 1.1283791670955126))));
}
/* y = max(x, 0): dx = g [y > 0], the same mask as [x > 0]; reading y
 * leaves x with one use, so fusion can compute it inside relu's kernel
 * (a bias add and its relu become one kernel). */
RULE(relu) { acc(c, X(0), mul(c, g, cmp(c, IR_GT, y, scalar(c, 0)))); }

/* y = a + b */
RULE(add) { (void)y; acc(c, X(0), g); acc(c, X(1), g); }
/* y = a - b */
RULE(sub) { (void)y; acc(c, X(0), g); acc(c, X(1), neg(c, g)); }
/* y = a b:       da = g b, db = g a */
RULE(mul) {
    (void)y;
    if (c->wants[X(0)])
        acc(c, X(0), mul(c, g, X(1)));
    if (c->wants[X(1)])
        acc(c, X(1), mul(c, g, X(0)));
}
/* y = a / b:     da = g / b, db = -g y / b */
RULE(div) {
    if (c->wants[X(0)])
        acc(c, X(0), dvd(c, g, X(1)));
    if (c->wants[X(1)])
        acc(c, X(1), neg(c, dvd(c, mul(c, g, y), X(1))));
}
/* y = a^b:       da = g b a^(b-1), db = g y log a */
RULE(pow) {
    if (c->wants[X(0)]) {
        int bm1 = sub(c, X(1), scalar(c, 1));
        int p = bm1 < 0 ? -1 : check(c, ir_add(c->g, IR_POW, X(0), bm1, -1));
        acc(c, X(0), mul(c, g, mul(c, X(1), p)));
    }
    if (c->wants[X(1)]) {
        int la = check(c, ir_add(c->g, IR_LOG, X(0), -1, -1));
        acc(c, X(1), mul(c, g, mul(c, y, la)));
    }
}
/* y = min(a, b): the gradient goes to the smaller side (to a on ties) */
RULE(min) {
    (void)y;
    acc(c, X(0), mul(c, g, cmp(c, IR_LE, X(0), X(1))));
    acc(c, X(1), mul(c, g, cmp(c, IR_GT, X(0), X(1))));
}
/* y = max(a, b): to the larger side (to a on ties) */
RULE(max) {
    (void)y;
    acc(c, X(0), mul(c, g, cmp(c, IR_GE, X(0), X(1))));
    acc(c, X(1), mul(c, g, cmp(c, IR_LT, X(0), X(1))));
}
/* y = where(k, a, b): da = where(k, g, 0), db = where(k, 0, g) */
RULE(where) {
    (void)y;
    int zero = scalar(c, 0);
    if (c->wants[X(1)])
        acc(c, X(1), check(c, ir_add(c->g, IR_WHERE, X(0), g, zero)));
    if (c->wants[X(2)])
        acc(c, X(2), check(c, ir_add(c->g, IR_WHERE, X(0), zero, g)));
}

/* The adjoint of a reduction, reshaped to keep the reduced dims as 1. */
static int keepdims_grad(ad *c, const ir_node *n, int g) {
    if (n->keepdims || n->op == IR_SUM_TO)
        return g;
    ir_shape xs = node(c, n->inputs[0]).shape, k = ir_shape_scalar();
    k.rank = xs.rank;
    for (int i = 0; i < xs.rank; i++) {
        int reduced = (n->axes >> i) & 1;
        k.dims[i] = reduced ? 1 : xs.dims[i];
        k.batch_mask |= reduced ? 0 : (xs.batch_mask & (1u << i));
    }
    return check(c, ir_reshape(c->g, g, &k));
}

/* y = sum x over axes: dx = broadcast(g) */
RULE(reduce_sum) {
    (void)y;
    ir_shape xs = node(c, X(0)).shape;
    int k = keepdims_grad(c, &n, g);
    acc(c, X(0), k < 0 ? -1 : check(c, ir_broadcast(c->g, k, &xs)));
}
/* y = max x over axes: dx = g where x attains the max */
RULE(reduce_max) {
    ir_shape xs = node(c, X(0)).shape;
    int gk = keepdims_grad(c, &n, g), yk = keepdims_grad(c, &n, y);
    if (gk < 0 || yk < 0)
        return;
    int mask = cmp(c, IR_EQ, X(0), check(c, ir_broadcast(c->g, yk, &xs)));
    acc(c, X(0), mul(c, mask, check(c, ir_broadcast(c->g, gk, &xs))));
}
/* y = sum_to(x): dx = broadcast(g) */
RULE(sum_to) {
    (void)y;
    ir_shape xs = node(c, X(0)).shape;
    acc(c, X(0), check(c, ir_broadcast(c->g, g, &xs)));
}
/* y = broadcast(x): dx = sum_to(g), done by acc */
RULE(broadcast) { (void)y; acc(c, X(0), g); }
/* y = reshape(x): dx = reshape(g) back */
RULE(reshape) {
    (void)y;
    ir_shape xs = node(c, X(0)).shape;
    acc(c, X(0), check(c, ir_reshape(c->g, g, &xs)));
}

/* y = transpose(x, perm), y[i] = x[j] with j[perm[d]] = i[d]:
 *                dx = transpose(g, inverse perm) */
RULE(transpose) {
    (void)y;
    int inverse[IR_MAX_RANK];
    for (int d = 0; d < n.shape.rank; d++)
        inverse[n.perm[d]] = d;
    acc(c, X(0), check(c, ir_transpose(c->g, g, inverse)));
}
/* y = x[.., start:stop, ..]: dx = g placed at start in zeros of x's shape */
RULE(slice) {
    (void)y;
    ir_shape xs = node(c, X(0)).shape;
    acc(c, X(0), check(c, ir_pad(c->g, g, n.axis, n.start, &xs)));
}
/* y = pad(x) at start: dx = g[.., start:start + len, ..] */
RULE(pad) {
    (void)y;
    int64_t len = node(c, X(0)).shape.dims[n.axis];
    acc(c, X(0), check(c, ir_slice(c->g, g, n.axis, n.start, n.start + len)));
}
/* y = concat(a, b) along axis, a with m elements there:
 *                da = g[.., :m, ..], db = g[.., m:, ..] */
RULE(concat) {
    (void)y;
    int64_t m = node(c, X(0)).shape.dims[n.axis], total = n.shape.dims[n.axis];
    if (c->wants[X(0)])
        acc(c, X(0), check(c, ir_slice(c->g, g, n.axis, 0, m)));
    if (c->wants[X(1)])
        acc(c, X(1), check(c, ir_slice(c->g, g, n.axis, m, total)));
}
/* y[j] = table[idx[j]]: dtable = scatter_add(g, idx), the sum of g's rows
 * over the j that read each table row */
RULE(gather) {
    (void)y;
    acc(c, X(0), check(c, ir_scatter_add(c->g, g, X(1), node(c, X(0)).shape.dims[0])));
}
/* y[idx[j]] += src[j]: dsrc[j] = g[idx[j]] (0 where idx[j] was dropped) */
RULE(scatter_add) {
    (void)y;
    acc(c, X(0), check(c, ir_gather(c->g, g, X(1))));
}

/* The convolution ops are bilinear, and each one's partial derivatives
 * are the other two (see ops.def for the index form).  With G the adjoint:
 *   y = conv2d(x, w):                dx = conv2d_grad_input(G, w),  dw = conv2d_grad_weight(x, G)
 *   dx = conv2d_grad_input(dy, w):   ddy = conv2d(G, w),            dw = conv2d_grad_weight(G, dy)
 *   dw = conv2d_grad_weight(x, dy):  dx = conv2d_grad_input(dy, G), ddy = conv2d(x, G)
 * (grad_input and grad_weight given the shape of x and w). */
static int conv_dx(ad *c, const ir_node *n, int dy, int w, int like) {
    ir_shape xs = node(c, like).shape;
    return dy < 0 || w < 0 ? -1 : check(c, ir_conv2d_grad_input(c->g, dy, w, n->stride, n->padding, &xs));
}
static int conv_dw(ad *c, const ir_node *n, int x, int dy, int like) {
    ir_shape ws = node(c, like).shape;
    return x < 0 || dy < 0 ? -1 : check(c, ir_conv2d_grad_weight(c->g, x, dy, n->stride, n->padding, &ws));
}
static int conv_y(ad *c, const ir_node *n, int x, int w) {
    return check(c, ir_conv2d(c->g, x, w, n->stride, n->padding));
}

RULE(conv2d) {
    (void)y;
    if (c->wants[X(0)])
        acc(c, X(0), conv_dx(c, &n, g, X(1), X(0)));
    if (c->wants[X(1)])
        acc(c, X(1), conv_dw(c, &n, X(0), g, X(1)));
}
RULE(conv2d_grad_input) {
    (void)y;
    if (c->wants[X(0)])
        acc(c, X(0), conv_y(c, &n, g, X(1)));
    if (c->wants[X(1)])
        acc(c, X(1), conv_dw(c, &n, g, X(0), X(1)));
}
RULE(conv2d_grad_weight) {
    (void)y;
    if (c->wants[X(0)])
        acc(c, X(0), conv_dx(c, &n, X(1), g, X(0)));
    if (c->wants[X(1)])
        acc(c, X(1), conv_y(c, &n, X(0), g));
}

/* Max pooling routes each window's value from its first maximum, which is
 * piecewise constant in x (no gradient to x through the choice):
 *   y = max_pool2d(x):             dx = max_pool2d_grad(x, G)
 *   dx = max_pool2d_grad(x, dy):   ddy = max_pool2d_pick(x, G)
 *   y = max_pool2d_pick(x, v):     dv = max_pool2d_grad(x, G) */
RULE(max_pool2d) {
    (void)y;
    acc(c, X(0), check(c, ir_max_pool2d_grad(c->g, X(0), g, n.size, n.stride)));
}
RULE(max_pool2d_grad) {
    (void)y;
    acc(c, X(1), check(c, ir_max_pool2d_pick(c->g, X(0), g, n.size, n.stride)));
}
RULE(max_pool2d_pick) {
    (void)y;
    acc(c, X(1), check(c, ir_max_pool2d_grad(c->g, X(0), g, n.size, n.stride)));
}
/* Average pooling is linear: y = avg_pool2d(x): dx = avg_pool2d_grad(G),
 * and dx = avg_pool2d_grad(dy): ddy = avg_pool2d(G). */
RULE(avg_pool2d) {
    (void)y;
    ir_shape xs = node(c, X(0)).shape;
    acc(c, X(0), check(c, ir_avg_pool2d_grad(c->g, g, n.size, n.stride, &xs)));
}
RULE(avg_pool2d_grad) {
    (void)y;
    acc(c, X(0), check(c, ir_avg_pool2d(c->g, g, n.size, n.stride)));
}

/* y = dropout(x) = x m / (1 - p) (training) or x: linear in x, so
 * dx = dropout(g) with the same seed and step: the same mask, recomputed
 * from the hash rather than stored. */
RULE(dropout) {
    (void)y;
    acc(c, X(0), check(c, ir_dropout_seeded(c->g, g, n.value, n.seed)));
}

/* C = op(A) op(B), op = transpose or not.  With dC = g:
 *   plain  C = A B:     dA = g B^T       dB = A^T g
 *   C = A B^T:          dA = g B         dB = g^T A
 *   C = A^T B:          dA = B g^T       dB = A g
 *   C = A^T B^T:        dA = B^T g^T     dB = g^T A^T
 * A batched product's adjoints are the same batched products: each index
 * of the leading dims is a product of its own. */
RULE(matmul) {
    (void)y;
    int a = X(0), b = X(1), ta = n.flags & IR_TRANSPOSE_A, tb = n.flags & IR_TRANSPOSE_B, s = n.lead_dims;
    const int T_A = IR_TRANSPOSE_A, T_B = IR_TRANSPOSE_B;
    if (c->wants[a]) {
        int da = !ta && !tb ? matmul(c, g, b, T_B, s)
                 : !ta      ? matmul(c, g, b, 0, s)
                 : !tb      ? matmul(c, b, g, T_B, s)
                            : matmul(c, b, g, T_A | T_B, s);
        acc(c, a, da);
    }
    if (c->wants[b]) {
        int db = !ta && !tb ? matmul(c, a, g, T_A, s)
                 : !ta      ? matmul(c, g, a, T_A, s)
                 : !tb      ? matmul(c, a, g, 0, s)
                            : matmul(c, g, a, T_A | T_B, s);
        acc(c, b, db);
    }
}

typedef void (*grad_rule)(ad *, int, ir_node, int);
static const grad_rule grad_rules[IR_OP_COUNT] = {
#define OP(id, name, arity, class) [IR_##id] = grad_##name,
#include "ops.def"
#undef OP
};

/* ------------------------------------------------------------ recurrence
 * The derivative of a scan is a scan over the same steps in the other
 * direction, whose body is the vector-Jacobian product of the forward body
 * (the same rules as everywhere, applied to the body's nodes):
 *   - each carry c of the forward scan gets a backward carry dc: starting
 *     from the adjoint of c's final value, at each step it seeds the
 *     adjoint of c's next value, and takes the adjoint of c itself (the
 *     value the step read) for the step before;
 *   - a stack's adjoint is sliced step by step and seeds its value;
 *   - a slice's adjoint is stacked back into the adjoint of its sequence;
 *   - a value from outside the body (a weight) gets one contribution per
 *     step, summed in a backward carry that starts at zero.
 * Forward body values that the backward body reads are not recomputed:
 * the forward scan stacks them (its stash) and the backward scan slices
 * them at the same step; a slice of a sequence just slices it again. */

typedef struct stash {
    ad *c;
    int forward, backward; /* the scans */
    int *read_as;          /* per forward node: what the backward body reads, or -1 */
} stash;

static int stash_read(ir_graph *g, int id, void *ctx) {
    stash *st = ctx;
    const ir_node *v = &g->nodes[id];
    if (v->region != st->forward || g->cur_region != st->backward)
        return id;
    if (st->read_as[id] >= 0)
        return st->read_as[id];
    g->input_hook = NULL;
    int got;
    if (v->op == IR_SCAN_SLICE) {
        got = ir_scan_slice(g, st->backward, v->inputs[0], v->axis);
    } else {
        /* [B, T, ...] like the sequences, so that a weight's step product
         * with it stacks its other factor as the sequence's adjoint is */
        int axis = v->shape.rank >= 1 ? 1 : 0;
        g->cur_region = 0;
        int stacked = ir_scan_stack(g, st->forward, id, axis);
        g->cur_region = st->backward;
        got = stacked < 0 ? -1 : ir_scan_slice(g, st->backward, stacked, axis);
    }
    g->input_hook = stash_read;
    return st->read_as[id] = got;
}

static int zeros(ad *c, int like) {
    ir_shape s = node(c, like).shape;
    return check(c, ir_const(c->g, IR_F32, &s, 0));
}

/* The sum of the adjoints of the finals of carry k (-1: none). */
static int final_seed(ad *c, int scan, int k) {
    int seed = -1;
    for (int i = scan + 1; i < c->n0; i++) {
        ir_node n = node(c, i);
        if (n.op == IR_SCAN_FINAL && n.inputs[1] == scan && n.inputs[0] == k && c->adj[i] >= 0)
            seed = seed < 0 ? c->adj[i] : add(c, seed, c->adj[i]);
    }
    return seed;
}

/* The weights' adjoints recorded by is_step_product, each one product of
 * the stacked a's and g's of backward scan b.  An a that is a slice of a
 * sequence (the stash, or an input) is that sequence, and g is stacked
 * along the same axis so that the two agree on their leading dims. */
static void step_products(ad *c, int b) {
    for (int j = 0; j < c->n_products && !c->failed; j++) {
        struct step_product p = c->products[j];
        ir_node a = node(c, p.a);
        int axis = a.op == IR_SCAN_SLICE ? a.axis : a.shape.rank >= 1 ? 1 : 0;
        int as = a.op == IR_SCAN_SLICE ? a.inputs[0] : check(c, ir_scan_stack(c->g, b, p.a, axis));
        int gs = check(c, ir_scan_stack(c->g, b, p.g, axis));
        if (as >= 0 && gs >= 0)
            acc(c, p.x, matmul(c, as, gs, IR_TRANSPOSE_A, 0));
    }
    c->n_products = 0;
}

static void differentiate_scan(ad *c, int s) {
    ir_graph *g = c->g;
    int n0 = c->n0;
    int *dcarry = ir_xmalloc((size_t)n0 * sizeof *dcarry);
    stash st = {c, s, 0, ir_xmalloc((size_t)n0 * sizeof *st.read_as)};
    for (int i = 0; i < n0; i++)
        dcarry[i] = st.read_as[i] = -1;
    int b = st.backward = check(c, ir_scan_begin(g, node(c, s).stop, !node(c, s).flags));
    if (b < 0)
        goto done;
    g->input_hook = stash_read;
    g->input_hook_ctx = &st;
    c->body = s;
    c->backward = b;
    /* the backward body's arguments and the seeds of the forward results */
    for (int k = s + 1; k < n0; k++) {
        if (node(c, k).region != s || node(c, k).op != IR_SCAN_CARRY || !c->wants[k])
            continue;
        int seed = final_seed(c, s, k);
        dcarry[k] = check(c, ir_scan_carry(g, b, seed >= 0 ? seed : zeros(c, k)));
        acc(c, node(c, k).link, dcarry[k]);
    }
    for (int i = s + 1; i < n0; i++) {
        ir_node n = node(c, i);
        if (n.op == IR_SCAN_STACK && n.inputs[1] == s && c->adj[i] >= 0)
            acc(c, n.inputs[0], check(c, ir_scan_slice(g, b, c->adj[i], n.axis)));
    }
    /* the step's vector-Jacobian product, users before what they use */
    for (int i = n0 - 1; i > s && !c->failed; i--) {
        ir_node n = node(c, i);
        if (n.region == s && c->adj[i] >= 0 && c->wants[i] && n.op != IR_SCAN_CARRY && n.op != IR_SCAN_SLICE)
            grad_rules[n.op](c, i, n, c->adj[i]);
    }
    /* what the step before receives; sums of captured values' adjoints */
    for (int k = s + 1; k < n0; k++)
        if (dcarry[k] >= 0)
            check(c, ir_scan_set_next(g, dcarry[k], c->adj[k] >= 0 ? c->adj[k] : zeros(c, k)));
    int n_captures = c->n_captures;
    int *sums = ir_xmalloc(((size_t)n_captures + 1) * sizeof *sums);
    for (int j = 0; j < n_captures && !c->failed; j++) {
        int x = c->captures[j];
        sums[j] = check(c, ir_scan_carry(g, b, zeros(c, x)));
        check(c, ir_scan_set_next(g, sums[j], add(c, sums[j], c->capture_adj[x])));
    }
    g->input_hook = NULL;
    ir_scan_end(g, b);
    c->body = 0;
    /* the backward scan's results are the adjoints outside */
    for (int j = 0; j < n_captures && !c->failed; j++) {
        acc(c, c->captures[j], check(c, ir_scan_final(g, b, sums[j])));
        c->capture_adj[c->captures[j]] = -1;
    }
    c->n_captures = 0;
    free(sums);
    step_products(c, b);
    for (int k = s + 1; k < n0 && !c->failed; k++)
        if (dcarry[k] >= 0)
            acc(c, node(c, k).inputs[0], check(c, ir_scan_final(g, b, dcarry[k])));
    for (int i = s + 1; i < n0 && !c->failed; i++) {
        ir_node n = node(c, i);
        if (n.region == s && n.op == IR_SCAN_SLICE && c->adj[i] >= 0)
            acc(c, n.inputs[0], check(c, ir_scan_stack(g, b, c->adj[i], n.axis)));
    }
done:
    g->input_hook = NULL;
    g->cur_region = 0;
    c->body = c->backward = 0;
    c->n_products = 0;
    free(dcarry);
    free(st.read_as);
}

/* Whether any result of scan s has an adjoint. */
static int scan_has_seed(const ad *c, int s) {
    for (int i = s + 1; i < c->n0; i++) {
        ir_node n = node(c, i);
        if ((n.op == IR_SCAN_STACK || n.op == IR_SCAN_FINAL) && n.inputs[1] == s && c->adj[i] >= 0)
            return 1;
    }
    return 0;
}

/* wants[i]: node i depends on a trainable parameter.  A carry also
 * depends on its next value, which comes after it: repeat until stable. */
static void mark_wants(ad *c) {
    ir_graph *g = c->g;
    for (int changed = 1; changed;) {
        changed = 0;
        for (int i = 0; i < c->n0; i++) {
            ir_node n = g->nodes[i];
            unsigned char w = n.op == IR_PARAM && g->params[n.index].trainable;
            for (int k = 0; k < n.n_inputs && n.dtype == IR_F32; k++)
                w |= c->wants[n.inputs[k]];
            if (n.op == IR_SCAN_CARRY && n.link >= 0 && n.dtype == IR_F32)
                w |= c->wants[n.link];
            if (n.region && w && !c->wants[n.region])
                c->wants[n.region] = changed = 1;
            if (w && !c->wants[i])
                c->wants[i] = changed = 1;
        }
    }
}

int ad_differentiate(ir_graph *g) {
    if (g->loss < 0) {
        snprintf(g->error, sizeof g->error, "the model has no loss to differentiate");
        return -1;
    }
    int n0 = g->n_nodes;
    ad c = {.g = g,
            .adj = ir_xmalloc((size_t)n0 * sizeof(int)),
            .wants = ir_xcalloc((size_t)n0, 1),
            .n0 = n0,
            .capture_adj = ir_xmalloc((size_t)n0 * sizeof(int)),
            .captures = ir_xmalloc((size_t)n0 * sizeof(int))};
    for (int i = 0; i < n0; i++)
        c.adj[i] = c.capture_adj[i] = -1;
    mark_wants(&c);
    g->cur_backward = 1;
    c.adj[g->loss] = scalar(&c, 1.0);
    for (int i = g->loss; i >= 0 && !c.failed; i--) {
        ir_node n = g->nodes[i];
        if (ir_in_loop(g, i))
            continue; /* a scan differentiates its body and results */
        if (n.op == IR_SCAN && c.wants[i] && scan_has_seed(&c, i))
            differentiate_scan(&c, i);
        if (c.adj[i] < 0 || !c.wants[i])
            continue;
        g->cur_line = n.line; /* its gradient comes from the same place */
        g->cur_col = n.col;
        grad_rules[n.op](&c, i, n, c.adj[i]);
    }
    g->cur_line = g->cur_col = g->cur_backward = 0;
    for (int p = 0; p < g->n_params && !c.failed; p++) {
        ir_param *prm = &g->params[p];
        if (!prm->trainable)
            continue;
        int gr = prm->node < n0 ? c.adj[prm->node] : -1;
        if (gr < 0) { /* does not affect the loss: a zero gradient */
            ir_shape s = g->nodes[prm->node].shape;
            gr = check(&c, ir_broadcast(g, scalar(&c, 0), &s));
        }
        g->params[p].grad = gr;
    }
    free(c.adj);
    free(c.wants);
    free(c.capture_adj);
    free(c.captures);
    free(c.products);
    return c.failed ? -1 : 0;
}
