/*
 * harness.h - what the code generator's tests share (test_codegen.c, its
 * f64 twin, test_fuse.c, test_matmul.c, tests/lang/run_lang.c and
 * bench/gemm.c) beyond tests/test.h: shapes written as "B,3,4" or built
 * as matrices, elements of tensors in a test arena, and the
 * MLP that the pipeline tests compile.  Header-only; the includer defines
 * MAX_BATCH (for S() and the MLP; and TEST_SEED, if not test.h's) first
 * and includes <stdlib.h> and ir.h.
 */
#ifndef MDL_TEST_HARNESS_H
#define MDL_TEST_HARNESS_H

#include "../test.h"

#ifdef MAX_BATCH
/* "B,3,4" -> [MAX_BATCH (batch), 3, 4]; "" -> scalar */
TEST_UNUSED static ir_shape S(const char *spec) {
    ir_shape s = ir_shape_scalar();
    for (const char *p = spec; *p;) {
        if (*p == 'B') {
            s.batch_mask |= 1u << s.rank;
            s.dims[s.rank++] = MAX_BATCH;
            p++;
        } else {
            char *end;
            s.dims[s.rank++] = strtoll(p, &end, 10);
            p = end;
        }
        if (*p == ',')
            p++;
    }
    return s;
}
#endif

/* Element i of a tensor at `offset`: i32 (4 bytes), or a float of `bytes`
 * 4 (f32) or 8 (the f64 variant, where every f32 tensor is a double). */
TEST_UNUSED static void arena_put(char *arena, int64_t offset, int bytes, ir_dtype t, int64_t i, double v) {
    if (t == IR_I32) {
        int32_t x = (int32_t)v;
        memcpy(arena + offset + 4 * i, &x, 4);
    } else if (bytes == 8) {
        memcpy(arena + offset + 8 * i, &v, 8);
    } else {
        float x = (float)v;
        memcpy(arena + offset + 4 * i, &x, 4);
    }
}

TEST_UNUSED static double arena_get(const char *arena, int64_t offset, int bytes, ir_dtype t, int64_t i) {
    if (t == IR_I32) {
        int32_t x;
        memcpy(&x, arena + offset + 4 * i, 4);
        return x;
    }
    if (bytes == 8) {
        double x;
        memcpy(&x, arena + offset + 8 * i, 8);
        return x;
    }
    float x;
    memcpy(&x, arena + offset + 4 * i, 4);
    return x;
}

/* [rows, cols], either of them the batch */
TEST_UNUSED static ir_shape matrix(int64_t rows, int64_t cols, int batch_rows, int batch_cols) {
    ir_shape s = ir_shape_scalar();
    s.rank = 2;
    s.dims[0] = rows;
    s.dims[1] = cols;
    s.batch_mask = (uint32_t)batch_rows | (uint32_t)batch_cols << 1;
    return s;
}

TEST_UNUSED static int op1(ir_graph *g, ir_op op, int a) { return ir_add(g, op, a, -1, -1); }
TEST_UNUSED static int op2(ir_graph *g, ir_op op, int a, int b) { return ir_add(g, op, a, b, -1); }

#ifdef MAX_BATCH
/* x[B,4] -> dense(5) -> activation -> dense(3) = logits;
 * loss = mean((logits - t)^2), trained by Adam: the real pipeline's
 * input (test_codegen.c's pipeline and aot, test_fuse.c's pipeline) */
TEST_UNUSED static ir_graph *mlp(const char *model_name, const char *input_name, const char *param_prefix,
                                 ir_op activation) {
    ir_graph *g = ir_graph_new(model_name, "odd \"path\"\\x.mdl");
    char name[64];
    g->max_batch = MAX_BATCH;
    free(g->optimizer);
    g->optimizer = strdup("adam");
    ir_shape xs = S("B,4"), ts = S("B,3"), w1s = S("4,5"), b1s = S("5"), w2s = S("5,3"), b2s = S("3");
    int x = ir_add_input(g, input_name, IR_F32, &xs, 0);
    int t = ir_add_input(g, "target", IR_F32, &ts, 1);
    snprintf(name, sizeof name, "%s.W1", param_prefix);
    int w1 = ir_add_param(g, name, IR_F32, &w1s, 1, IR_INIT_GLOROT_UNIFORM, 0, 0, 4, 5);
    snprintf(name, sizeof name, "%s.b1", param_prefix);
    int b1 = ir_add_param(g, name, IR_F32, &b1s, 1, IR_INIT_CONSTANT, 0.125, 0, 0, 0);
    int w2 = ir_add_param(g, "W2", IR_F32, &w2s, 1, IR_INIT_NORMAL, 0, 0.5, 5, 3);
    int b2 = ir_add_param(g, "b2", IR_F32, &b2s, 1, IR_INIT_ZEROS, 0, 0, 0, 0);
    int h = op1(g, activation, op2(g, IR_ADD, ir_matmul(g, x, w1, 0), b1));
    int logits = op2(g, IR_ADD, ir_matmul(g, h, w2, 0), b2);
    int d = op2(g, IR_SUB, logits, t);
    int sq = op2(g, IR_MUL, d, d);
    g->loss = op2(g, IR_DIV, ir_reduce(g, IR_REDUCE_SUM, sq, 3, 0), ir_numel(g, sq, 3));
    ir_add_output(g, "logits", logits);
    ir_add_metric(g, "max_err", ir_reduce(g, IR_REDUCE_MAX, op1(g, IR_ABS, d), 3, 0));
    return g;
}
#endif

#endif
