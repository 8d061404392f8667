/*
 * harness.h - what the code generator's tests share (test_codegen.c, its
 * f64 twin, test_fuse.c) beyond tests/test.h: shapes written as "B,3,4",
 * and elements of tensors in a test arena.  Header-only; the includer
 * defines MAX_BATCH (and TEST_SEED, if not test.h's) first and includes
 * <stdlib.h> and ir.h.
 */
#ifndef MDL_TEST_HARNESS_H
#define MDL_TEST_HARNESS_H

#include "../test.h"

/* "B,3,4" -> [MAX_BATCH (batch), 3, 4]; "" -> scalar */
static ir_shape S(const char *spec) {
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

/* Element i of a tensor at `offset`: i32 (4 bytes), or a float of `bytes`
 * 4 (f32) or 8 (the f64 variant, where every f32 tensor is a double). */
static void arena_put(char *arena, int64_t offset, int bytes, ir_dtype t, int64_t i, double v) {
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

static double arena_get(const char *arena, int64_t offset, int bytes, ir_dtype t, int64_t i) {
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

#endif
