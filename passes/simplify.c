/*
 * simplify.c - constant folding, algebraic identities and CSE.
 *
 * One forward sweep.  Each node first has its inputs redirected to their
 * replacements, then is folded (all inputs constant -> a CONST, computed
 * with the interpreter's scalar arithmetic, ir_eval_scalar), reduced by
 * an identity (x * 1 -> x, x + 0 -> x, reshape to the same shape -> x,
 * x ^ 2 -> x * x, stop_gradient(x) -> x: it runs after autodiff, ...), or found equal to an earlier node (same op,
 * attributes and inputs).  A node that changes is rewritten in place, which
 * keeps the array a topological order; a node that disappears is mapped to
 * its replacement and left for dead-code elimination.  Identities only
 * fire when the result has exactly the node's type, so broadcasting is
 * never lost.  x * 0 is not folded: it is NaN when x is.  A carry's link
 * follows its replacement like any input (see loop_results for what a
 * scan keeps).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "eval.h"
#include "passes.h"

static int is_const(const ir_graph *g, int id, double v) {
    return g->nodes[id].op == IR_CONST && g->nodes[id].value == v;
}

static int same_type(const ir_graph *g, int a, int b) {
    return g->nodes[a].dtype == g->nodes[b].dtype && ir_shape_equal(&g->nodes[a].shape, &g->nodes[b].shape);
}

/* Does constant folding compute op at compile time?  The elementwise ops
 * do, with the interpreter's arithmetic (ir_eval_scalar), except tanh,
 * sigmoid, relu, erf and stop_gradient, which folding has never covered:
 * folding them now would change the code generated for models that apply
 * them to constants.  A broadcast of a constant is that constant. */
static int folds(ir_op op) {
    switch (op) {
    case IR_TANH:
    case IR_SIGMOID:
    case IR_RELU:
    case IR_ERF:
    case IR_STOP_GRADIENT:
        return 0;
    case IR_BROADCAST:
        return 1;
    default: {
        ir_class cls = ir_ops[op].cls;
        return cls == IR_UNARY || cls == IR_BINARY || cls == IR_TERNARY;
    }
    }
}

/* Rewrites node i in place to a constant of its own type. */
static void make_const(ir_node *n, double v) {
    n->op = IR_CONST;
    n->n_inputs = 0;
    n->inputs[0] = n->inputs[1] = n->inputs[2] = -1;
    n->value = n->dtype == IR_I32 ? trunc(v) : (double)(float)v;
}

static int try_fold(ir_graph *g, int i) {
    ir_node *n = &g->nodes[i];
    if (!folds(n->op))
        return 0;
    double x[3];
    for (int k = 0; k < n->n_inputs; k++) {
        if (g->nodes[n->inputs[k]].op != IR_CONST)
            return 0;
        x[k] = g->nodes[n->inputs[k]].value;
    }
    double v = n->op == IR_BROADCAST ? x[0] : ir_eval_scalar(n->op, n->dtype, x);
    if (isnan(v)) /* so no NaN constant enters the IR */
        return 0;
    make_const(n, v);
    return 1;
}

/* x op e -> x for binary node i whose right operand is the constant e
 * (and e op x -> x too when op commutes), if x has i's exact type.
 * Returns the replacement, or i. */
static int drop_neutral(const ir_graph *g, int i, double e, int commutes) {
    int a = g->nodes[i].inputs[0], b = g->nodes[i].inputs[1];
    if (is_const(g, b, e) && same_type(g, a, i))
        return a;
    if (commutes && is_const(g, a, e) && same_type(g, b, i))
        return b;
    return i;
}

/* Returns the node i can be replaced by, or i. May rewrite i in place. */
static int identity(ir_graph *g, int i) {
    ir_node *n = &g->nodes[i];
    int a = n->inputs[0], b = n->inputs[1];
    switch (n->op) {
    case IR_ADD: return drop_neutral(g, i, 0, 1);
    case IR_SUB: return drop_neutral(g, i, 0, 0);
    case IR_MUL: return drop_neutral(g, i, 1, 1);
    case IR_DIV: return drop_neutral(g, i, 1, 0);
    case IR_POW:
        if (is_const(g, b, 1) && same_type(g, a, i))
            return a;
        if (is_const(g, b, 2) && same_type(g, a, i)) {
            n->op = IR_MUL;
            n->inputs[1] = a;
        }
        break;
    case IR_NEG:
        if (g->nodes[a].op == IR_NEG)
            return g->nodes[a].inputs[0];
        break;
    case IR_STOP_GRADIENT: /* simplify runs after autodiff: it has done its work, and as a copy it
                            * would keep a KV cache's update from happening in place */
        return a;
    case IR_RESHAPE:
        if (g->nodes[a].op == IR_RESHAPE) /* reshape of a reshape: one reshape */
            n->inputs[0] = a = g->nodes[a].inputs[0];
        /* fall through */
    case IR_BROADCAST:
    case IR_SUM_TO:
    case IR_CAST:
        if (same_type(g, a, i))
            return a;
        break;
    default:
        break;
    }
    return i;
}

static int same_node(const ir_node *a, const ir_node *b) {
    if (a->op != b->op || a->dtype != b->dtype || !ir_shape_equal(&a->shape, &b->shape))
        return 0;
    for (int k = 0; k < a->n_inputs; k++)
        if (a->inputs[k] != b->inputs[k])
            return 0;
    return ir_same_attrs(a, b);
}

static uint64_t hash_node(const ir_node *n) {
    uint64_t h = (uint64_t)n->op * 0x9E3779B97F4A7C15ull ^ (uint64_t)n->dtype;
    for (int k = 0; k < n->n_inputs; k++)
        h = (h ^ (uint64_t)(n->inputs[k] + 1)) * 0x100000001B3ull;
    for (int d = 0; d < n->shape.rank; d++)
        h = (h ^ (uint64_t)n->shape.dims[d]) * 0x100000001B3ull;
    uint64_t bits;
    memcpy(&bits, &n->value, sizeof bits);
    h ^= bits + n->axes + ((uint64_t)n->flags << 8) + ((uint64_t)n->index << 16);
    return h * 0xFF51AFD7ED558CCDull;
}

static int resolve(int *repl, int x) {
    while (repl[x] != x)
        x = repl[x] = repl[repl[x]];
    return x;
}

/* Points *id at its replacement; 1 if that moved it. */
static int follow(int *repl, int *id) {
    int to = resolve(repl, *id);
    int moved = to != *id;
    *id = to;
    return moved;
}

/* The values a scan's loop reads out of its body (what a stack stacks, a
 * carry's next value) stay as they are: replaced by a constant or by a
 * value from outside the body, there would be nothing for the loop to
 * copy.  Scans and carries are never merged either: two carries with the
 * same start are different state. */
static unsigned char *loop_results(const ir_graph *g) {
    unsigned char *result = ir_xcalloc((size_t)g->n_nodes, 1);
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *n = &g->nodes[i];
        if (n->op == IR_SCAN_STACK)
            result[n->inputs[0]] = 1;
        if (n->op == IR_SCAN_CARRY && n->link >= 0)
            result[n->link] = 1;
    }
    return result;
}

int simplify(ir_graph *g) {
    int n = g->n_nodes, changes = 0;
    int *repl = ir_xmalloc((size_t)n * sizeof *repl);
    size_t cap = 1;
    while (cap < 2 * (size_t)n)
        cap <<= 1;
    int *table = ir_xmalloc(cap * sizeof *table);
    for (size_t i = 0; i < cap; i++)
        table[i] = -1;
    unsigned char *loop_result = loop_results(g);
    for (int i = 0; i < n; i++) {
        repl[i] = i;
        ir_node *node = &g->nodes[i];
        for (int k = 0; k < node->n_inputs; k++) {
            int to = resolve(repl, node->inputs[k]);
            changes += to != node->inputs[k];
            node->inputs[k] = to;
        }
        if (node->op == IR_ASSIGN || node->op == IR_PARAM || node->op == IR_INPUT || node->op == IR_HYPER ||
            node->op == IR_SCAN || node->op == IR_SCAN_CARRY || loop_result[i])
            continue;
        changes += try_fold(g, i);
        /* A replaced node is not itself a change: only its users being
         * redirected is (counted above, on the next node or root), so a
         * dead duplicate left behind does not keep the fixpoint loop going. */
        ir_node before = *node;
        int r = identity(g, i);
        if (r != i) {
            repl[i] = resolve(repl, r);
            continue;
        }
        changes += memcmp(&before, node, sizeof before) != 0;
        size_t h = hash_node(&g->nodes[i]) & (cap - 1);
        while (table[h] >= 0 && !same_node(&g->nodes[table[h]], &g->nodes[i]))
            h = (h + 1) & (cap - 1);
        if (table[h] >= 0) {
            repl[i] = table[h];
        } else {
            table[h] = i;
        }
    }
    /* Everything that names nodes follows the replacements. */
    if (g->loss >= 0)
        changes += follow(repl, &g->loss);
    for (int i = 0; i < g->n_metrics; i++)
        changes += follow(repl, &g->metrics[i].node);
    for (int i = 0; i < g->n_outputs; i++)
        changes += follow(repl, &g->outputs[i].node);
    for (int i = 0; i < g->n_gen_outputs; i++)
        changes += follow(repl, &g->gen_outputs[i].node);
    for (int i = 0; i < g->n_gen_cached; i++)
        changes += follow(repl, &g->gen_cached[i]);
    for (int i = 0; i < g->n_params; i++)
        if (g->params[i].grad >= 0)
            changes += follow(repl, &g->params[i].grad);
    for (int i = 0; i < n; i++)
        if (g->nodes[i].op == IR_SCAN_CARRY)
            changes += follow(repl, &g->nodes[i].link);
    free(repl);
    free(table);
    free(loop_result);
    return changes;
}
