/*
 * scan.c - recurrence in the IR: a loop over a static number of steps with
 * carried state, kept as a loop.
 *
 * A scan does not own a graph of its own.  Its body is the set of nodes
 * whose `region` is the scan's node id; they sit in the one node array like
 * any other, so shape inference, simplification, autodiff, fusion and the
 * memory plan see ordinary nodes and ordinary edges.  What makes them a
 * loop is only where they run: not at their place in the schedule but
 * inside the scan, once per step (see passes/entries.c and
 * codegen/cg_scan.c).  The body reaches the rest of the graph through
 * four kinds of node:
 *
 *   scan_carry(init)   a body argument: init at the first step, afterwards
 *                      the value of its `link` (a body node) at the step
 *                      before.  The link is an attribute, not an input,
 *                      because it closes a cycle.
 *   scan_slice(xs)     a body argument: xs at the current step along `axis`
 *   scan_stack(y, s)   a result: y of every step, stacked along `axis`
 *   scan_final(c, s)   a result: carry c after the last step
 *
 * Anything else a body node reads from outside (a weight, a constant, a
 * value computed before the loop) is simply read at every step.  The scan
 * node itself comes before its body, so a body node's id is larger than
 * its scan's; whatever the body reads from outside that has to be computed
 * (not a leaf) must come before the scan too, which ir_verify checks.
 */
#include "ir.h"
#include "ir_internal.h"

#include <string.h>

static ir_node proto(ir_op op, int a, int b) {
    ir_node n;
    memset(&n, 0, sizeof n);
    n.op = op;
    n.inputs[0] = a;
    n.inputs[1] = b;
    n.inputs[2] = -1;
    n.link = -1;
    return n;
}

static int is_scan(const ir_graph *g, int id) { return id > 0 && id < g->n_nodes && g->nodes[id].op == IR_SCAN; }

int ir_scan_begin(ir_graph *g, int64_t steps, int reverse) {
    if (g->cur_region)
        return ir_fail(g, "a scan inside the body of another scan is not supported");
    if (steps < 1)
        return ir_fail(g, "a scan needs at least one step, got %lld", (long long)steps);
    int hyper = ir_get_hyper(g, "scan_steps", 0);
    if (hyper < 0)
        return -1;
    ir_node n = proto(IR_SCAN, hyper, -1);
    n.stop = steps;
    n.flags = !!reverse;
    int id = ir_append(g, &n);
    if (id >= 0)
        g->cur_region = id;
    return id;
}

void ir_scan_end(ir_graph *g, int scan) {
    (void)scan;
    g->cur_region = 0;
}

int ir_scan_carry(ir_graph *g, int scan, int init) {
    if (g->cur_region != scan || !is_scan(g, scan))
        return ir_fail(g, "scan_carry outside the body of its scan");
    ir_node n = proto(IR_SCAN_CARRY, init, -1);
    return ir_append(g, &n);
}

int ir_scan_slice(ir_graph *g, int scan, int xs, int axis) {
    if (g->cur_region != scan || !is_scan(g, scan))
        return ir_fail(g, "scan_slice outside the body of its scan");
    if (xs < 0 || xs >= g->n_nodes)
        return ir_fail(g, "scan_slice: input is not a node");
    int rank = g->nodes[xs].shape.rank;
    ir_node n = proto(IR_SCAN_SLICE, xs, -1);
    n.axis = axis < 0 ? axis + rank : axis;
    return ir_append(g, &n);
}

int ir_scan_set_next(ir_graph *g, int carry, int next) {
    if (carry < 0 || carry >= g->n_nodes || g->nodes[carry].op != IR_SCAN_CARRY)
        return ir_fail(g, "scan_set_next: not a carry");
    if (next < 0 || next >= g->n_nodes)
        return ir_fail(g, "scan_set_next: not a node");
    const ir_node *c = &g->nodes[carry], *x = &g->nodes[next];
    if (x->region != c->region && x->region != 0)
        return ir_fail(g, "the next value of a carry must be computed in the scan's body or before it");
    if (x->dtype != c->dtype || !ir_shape_equal(&x->shape, &c->shape)) {
        char a[64], b[64];
        return ir_fail(g, "a carry of type %s cannot take a value of type %s at the next step",
                       ir_type_str(c->dtype, &c->shape, a, sizeof a), ir_type_str(x->dtype, &x->shape, b, sizeof b));
    }
    g->nodes[carry].link = next;
    return carry;
}

int ir_scan_stack(ir_graph *g, int scan, int y, int axis) {
    if (!is_scan(g, scan))
        return ir_fail(g, "scan_stack: not a scan");
    if (y < 0 || y >= g->n_nodes)
        return ir_fail(g, "scan_stack: input is not a node");
    int rank = g->nodes[y].shape.rank + 1;
    ir_node n = proto(IR_SCAN_STACK, y, scan);
    n.axis = axis < 0 ? axis + rank : axis;
    return ir_append(g, &n);
}

int ir_scan_final(ir_graph *g, int scan, int carry) {
    ir_node n = proto(IR_SCAN_FINAL, carry, scan);
    return ir_append(g, &n);
}

int ir_in_loop(const ir_graph *g, int id) {
    const ir_node *n = &g->nodes[id];
    return n->region != 0 || n->op == IR_SCAN_STACK || n->op == IR_SCAN_FINAL;
}

int ir_loop_of(const ir_graph *g, int id) {
    const ir_node *n = &g->nodes[id];
    if (n->op == IR_SCAN_STACK || n->op == IR_SCAN_FINAL)
        return n->inputs[1];
    return n->region;
}

/* ------------------------------------------------------------ shape rules */

int shape_scan(ir_graph *g, ir_node *n) {
    const ir_node *steps = &g->nodes[n->inputs[0]];
    if (steps->dtype != IR_F32 || steps->shape.rank != 0)
        return ir_fail(g, "scan: the step count must be an f32 scalar");
    if (n->stop < 1)
        return ir_fail(g, "scan: needs at least one step");
    if (n->region)
        return ir_fail(g, "a scan inside the body of another scan is not supported");
    n->dtype = IR_F32;
    n->shape = ir_shape_scalar();
    return 0;
}

int shape_scan_carry(ir_graph *g, ir_node *n) {
    if (!is_scan(g, n->region))
        return ir_fail(g, "scan_carry outside the body of a scan");
    const ir_node *init = &g->nodes[n->inputs[0]];
    n->dtype = init->dtype;
    n->shape = init->shape;
    return 0;
}

int shape_scan_slice(ir_graph *g, ir_node *n) {
    if (!is_scan(g, n->region))
        return ir_fail(g, "scan_slice outside the body of a scan");
    const ir_node *xs = &g->nodes[n->inputs[0]];
    int64_t steps = g->nodes[n->region].stop;
    char a[64];
    if (n->axis < 0 || n->axis >= xs->shape.rank)
        return ir_fail(g, "a scan over axis %d of %s, which has no such axis", n->axis,
                       ir_type_str(xs->dtype, &xs->shape, a, sizeof a));
    if (ir_is_batch_dim(&xs->shape, n->axis))
        return ir_fail(g, "a scan cannot run over the batch dimension");
    if (xs->shape.dims[n->axis] != steps)
        return ir_fail(g, "a scan of %lld steps over axis %d of %s, which has %lld elements", (long long)steps,
                       n->axis, ir_type_str(xs->dtype, &xs->shape, a, sizeof a),
                       (long long)xs->shape.dims[n->axis]);
    ir_shape s = ir_shape_scalar();
    for (int d = 0; d < xs->shape.rank; d++) {
        if (d == n->axis)
            continue;
        s.batch_mask |= (uint32_t)ir_is_batch_dim(&xs->shape, d) << s.rank;
        s.dims[s.rank++] = xs->shape.dims[d];
    }
    n->dtype = xs->dtype;
    n->shape = s;
    return 0;
}

int shape_scan_stack(ir_graph *g, ir_node *n) {
    const ir_node *y = &g->nodes[n->inputs[0]];
    int scan = n->inputs[1];
    if (!is_scan(g, scan) || n->region)
        return ir_fail(g, "scan_stack: input 1 must be a scan, and the stack outside it");
    if (y->region != scan)
        return ir_fail(g, "scan_stack: the stacked value must be computed in the scan's body");
    if (n->axis < 0 || n->axis > y->shape.rank || y->shape.rank + 1 > IR_MAX_RANK)
        return ir_fail(g, "scan_stack: no axis %d in a result of rank %d", n->axis, y->shape.rank + 1);
    ir_shape s = ir_shape_scalar();
    for (int d = 0, k = 0; d <= y->shape.rank; d++) {
        if (d == n->axis) {
            s.dims[s.rank++] = g->nodes[scan].stop;
            continue;
        }
        s.batch_mask |= (uint32_t)ir_is_batch_dim(&y->shape, k) << s.rank;
        s.dims[s.rank++] = y->shape.dims[k++];
    }
    n->dtype = y->dtype;
    n->shape = s;
    return 0;
}

int shape_scan_final(ir_graph *g, ir_node *n) {
    const ir_node *c = &g->nodes[n->inputs[0]];
    int scan = n->inputs[1];
    if (!is_scan(g, scan) || n->region)
        return ir_fail(g, "scan_final: input 1 must be a scan, and the final outside it");
    if (c->op != IR_SCAN_CARRY || c->region != scan)
        return ir_fail(g, "scan_final: input 0 must be a carry of the scan");
    n->dtype = c->dtype;
    n->shape = c->shape;
    return 0;
}
