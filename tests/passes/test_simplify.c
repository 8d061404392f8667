/*
 * test_simplify.c - what CSE in passes/simplify.c may and may not merge.
 *
 * Constants compare by their bits, as the hash does (ir_same_attrs):
 * x / 0.0 and x / -0.0 are +inf and -inf and must stay two nodes, while
 * two x / 0.0 are one; a NaN constant equals its copy.  Inside a scan's
 * body, the two carries of a recurrence that start from the same value are
 * different state and are never merged, nor is a scan with another scan.
 */
#include <math.h>
#include <stdio.h>

#include "passes.h"

#include "../test.h"

static ir_shape vec(int64_t n) {
    ir_shape s = ir_shape_scalar();
    s.rank = 1;
    s.dims[0] = n;
    return s;
}

static void constants_by_bits(void) {
    ir_graph *g = ir_graph_new("cse", "test");
    ir_shape s = vec(3);
    int x = ir_add_input(g, "x", IR_F32, &s, 0);
    int pz = ir_const(g, IR_F32, &s, 0.0), nz = ir_const(g, IR_F32, &s, -0.0);
    ir_add_output(g, "a", ir_add(g, IR_DIV, x, pz, -1));
    ir_add_output(g, "b", ir_add(g, IR_DIV, x, nz, -1));
    ir_add_output(g, "c", ir_add(g, IR_DIV, x, ir_const(g, IR_F32, &s, 0.0), -1));
    CHECK(!ir_same_attrs(&g->nodes[pz], &g->nodes[nz]));
    int nan1 = ir_const(g, IR_F32, &s, NAN), nan2 = ir_const(g, IR_F32, &s, NAN);
    CHECK(ir_same_attrs(&g->nodes[nan1], &g->nodes[nan2]));
    simplify(g);
    CHECK_MSG(g->outputs[0].node != g->outputs[1].node, "x / 0.0 and x / -0.0 were merged");
    CHECK_MSG(g->outputs[0].node == g->outputs[2].node, "two x / 0.0 were not merged");
    ir_graph_free(g);
}

static void carries_stay_apart(void) {
    ir_graph *g = ir_graph_new("cse", "test");
    ir_shape s = vec(3), seq = vec(3);
    seq.rank = 2, seq.dims[0] = 4, seq.dims[1] = 3;
    int xs = ir_add_input(g, "xs", IR_F32, &seq, 0), h0 = ir_add_input(g, "h0", IR_F32, &s, 0);
    int results[2];
    for (int k = 0; k < 2; k++) { /* the same scan twice: h + x and h * x */
        int scan = ir_scan_begin(g, 4, 0);
        int h = ir_scan_carry(g, scan, h0), x = ir_scan_slice(g, scan, xs, 0);
        ir_scan_set_next(g, h, ir_add(g, k ? IR_MUL : IR_ADD, h, x, -1));
        ir_scan_end(g, scan);
        results[k] = ir_scan_final(g, scan, h);
        ir_add_output(g, k ? "product" : "sum", results[k]);
    }
    simplify(g);
    CHECK(ir_verify(g) == 0);
    CHECK_MSG(g->outputs[0].node != g->outputs[1].node, "two scans were merged");
    int scans = 0, carries = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        scans += g->nodes[i].op == IR_SCAN;
        carries += g->nodes[i].op == IR_SCAN_CARRY && g->nodes[i].link >= 0;
    }
    CHECK(scans == 2 && carries == 2);
    ir_graph_free(g);
}

int main(void) {
    constants_by_bits();
    carries_stay_apart();
    printf("%d checks, %d failed\n", checks, failures);
    return failures != 0;
}
