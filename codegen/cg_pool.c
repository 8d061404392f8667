/*
 * cg_pool.c - max and average pooling over NCHW images, and their adjoints.
 *
 * The image's N and C merge into one loop over planes; a window of
 * size x size every `stride` (no padding) covers rows i s .. i s + size - 1
 * and columns j s .. j s + size - 1 of a plane.
 *
 * The forward ops keep a row of outputs and sweep the taps (u, v) of the
 * window around an innermost loop over the output column j, so the loop
 * that vectorises runs along the row (stride s in x, 1 in y):
 *   max_pool2d   y[j] = x[tap 0]; then y[j] = x[tap] > y[j] ? x[tap] : y[j]
 *                for the taps in row-major order: the first maximum wins,
 *                and NaN only when it is the first element (as in eval.c);
 *   avg_pool2d   y[j] = (sum of the taps) / size^2.
 * max_pool2d_grad and max_pool2d_pick need the position of each window's
 * maximum, found by the same scan one window at a time; avg_pool2d_grad
 * spreads dy / size^2 back over each window.
 *
 * Windows up to 4x4 are scanned in straight-line code instead (the value
 * and position of the maximum in registers).  With a stride above 1 those
 * loops stay scalar: the vectoriser would read every tap with a gather,
 * 2.5x slower than scalar code on the CNN's 2x2 pools.
 */
#include "cg_internal.h"

typedef struct pool {
    LLVMValueRef planes;
    int64_t h, w, oh, ow, size, s;
} pool;

static const ir_shape *input_shape(cg_kernel *k, int i) { return &k->g->nodes[k->node->inputs[i]].shape; }

static pool pool_of(cg_kernel *k, const ir_shape *x, const ir_shape *y) {
    pool p = {cg_mul(k, cg_dim(k, x, 0), cg_i64(k, x->dims[1])),
              x->dims[2],
              x->dims[3],
              y->dims[2],
              y->dims[3],
              k->node->size,
              k->node->stride};
    return p;
}

static LLVMValueRef f32(cg_kernel *k, double v) { return LLVMConstReal(k->t.real, v); }

/* Element (row i s + u, column j s + v) of plane q, given `first` = the
 * window's top-left element of output row i and column 0. */
static LLVMValueRef tap(cg_kernel *k, const pool *p, LLVMValueRef first, LLVMValueRef u, LLVMValueRef v,
                        LLVMValueRef j) {
    LLVMValueRef col = cg_add(k, cg_mul(k, j, cg_i64(k, p->s)), v);
    return cg_add(k, first, cg_add(k, cg_mul(k, u, cg_i64(k, p->w)), col));
}

/* A plane-and-row nest: calls body(first, y_row) for every plane q and
 * output row i, where first is x's index of (q, i s, 0) and y_row y's of
 * (q, i, 0). */
typedef void (*row_body)(cg_kernel *k, const pool *p, LLVMValueRef first, LLVMValueRef y_row);

static void for_rows(cg_kernel *k, const pool *p, row_body body) {
    cg_loop q = cg_loop_begin(k, p->planes, "q");
    cg_loop i = cg_loop_begin(k, cg_i64(k, p->oh), "i");
    LLVMValueRef row = cg_add(k, cg_mul(k, q.index, cg_i64(k, p->h)), cg_mul(k, i.index, cg_i64(k, p->s)));
    LLVMValueRef first = cg_mul(k, row, cg_i64(k, p->w));
    LLVMValueRef y_row = cg_mul(k, cg_add(k, cg_mul(k, q.index, cg_i64(k, p->oh)), i.index), cg_i64(k, p->ow));
    body(k, p, first, y_row);
    cg_loop_end(k, &i);
    cg_loop_end(k, &q);
}

/* A pooling kernel from image x to image y, one row at a time; with
 * `adds` (the adjoints, which add into their output) out = 0 first. */
static int pool_kernel(cg_kernel *k, const ir_shape *x, const ir_shape *y, int adds, row_body body) {
    pool p = pool_of(k, x, y);
    if (adds)
        cg_zero_output(k);
    for_rows(k, &p, body);
    return 0;
}

/* ------------------------------------------------------------ forward ops */

/* Windows of at most UNROLL_TAPS elements (2x2, 3x3, 4x4) are scanned in
 * straight-line code, the running maximum (and its position) in
 * registers; larger ones by loops over the taps. */
enum { UNROLL_TAPS = 16 };

static int unrolled(const pool *p) { return p->size * p->size <= UNROLL_TAPS; }

/* The first maximum of the window of output column j, and (if at) x's
 * index of it: taps in row-major order, a later one wins only if greater. */
static LLVMValueRef window_max(cg_kernel *k, const pool *p, LLVMValueRef first, LLVMValueRef j, LLVMValueRef *at) {
    LLVMValueRef best = NULL, where = NULL;
    for (int64_t u = 0; u < p->size; u++)
        for (int64_t v = 0; v < p->size; v++) {
            LLVMValueRef e = tap(k, p, first, cg_i64(k, u), cg_i64(k, v), j);
            LLVMValueRef x = cg_load_input(k, 0, e);
            if (!best) {
                best = x, where = e;
                continue;
            }
            LLVMValueRef greater = LLVMBuildFCmp(k->b, LLVMRealOGT, x, best, "");
            best = LLVMBuildSelect(k->b, greater, x, best, "");
            if (at) {
                /* Which tap wins is data: as a branch it would be
                 * mispredicted half the time.  !unpredictable makes it a
                 * cmov. */
                where = LLVMBuildSelect(k->b, greater, e, where, "");
                LLVMSetMetadata(where, LLVMGetMDKindIDInContext(k->ctx, "unpredictable", 13),
                                LLVMMetadataAsValue(k->ctx, LLVMMDNodeInContext2(k->ctx, NULL, 0)));
            }
        }
    if (at)
        *at = where;
    return best;
}

/* y[j] = combine(y[j], x[tap]) for every tap (u, v) of every window j of
 * the row, the taps outermost so that the loop over j vectorises. */
typedef LLVMValueRef (*tap_fold)(cg_kernel *k, LLVMValueRef y, LLVMValueRef x);

static void fold_taps(cg_kernel *k, const pool *p, LLVMValueRef first, LLVMValueRef y_row, tap_fold combine) {
    cg_loop u = cg_loop_begin(k, cg_i64(k, p->size), "u");
    cg_loop v = cg_loop_begin(k, cg_i64(k, p->size), "v");
    cg_loop j = cg_loop_begin(k, cg_i64(k, p->ow), "j");
    LLVMValueRef at = cg_add(k, y_row, j.index);
    LLVMValueRef x = cg_load_input(k, 0, tap(k, p, first, u.index, v.index, j.index));
    cg_store(k, combine(k, cg_load(k, k->t.real, k->out, at), x), k->out, at);
    cg_loop_end(k, &j);
    cg_loop_end(k, &v);
    cg_loop_end(k, &u);
}

/* x if greater, else y: the first maximum wins */
static LLVMValueRef keep_max(cg_kernel *k, LLVMValueRef y, LLVMValueRef x) {
    LLVMValueRef greater = LLVMBuildFCmp(k->b, LLVMRealOGT, x, y, "");
    return LLVMBuildSelect(k->b, greater, x, y, "");
}

static LLVMValueRef add(cg_kernel *k, LLVMValueRef y, LLVMValueRef x) { return LLVMBuildFAdd(k->b, y, x, ""); }

static void max_row(cg_kernel *k, const pool *p, LLVMValueRef first, LLVMValueRef y_row) {
    if (unrolled(p)) {
        cg_loop j = cg_loop_begin(k, cg_i64(k, p->ow), "j");
        cg_store(k, window_max(k, p, first, j.index, NULL), k->out, cg_add(k, y_row, j.index));
        if (p->s > 1)
            cg_loop_end_as_written(k, &j);
        else
            cg_loop_end(k, &j);
        return;
    }
    cg_loop j = cg_loop_begin(k, cg_i64(k, p->ow), "j");
    LLVMValueRef zero = cg_i64(k, 0);
    cg_store(k, cg_load_input(k, 0, tap(k, p, first, zero, zero, j.index)), k->out, cg_add(k, y_row, j.index));
    cg_loop_end(k, &j);
    fold_taps(k, p, first, y_row, keep_max);
}

int cg_kernel_max_pool2d(cg_kernel *k) { return pool_kernel(k, input_shape(k, 0), &k->node->shape, 0, max_row); }

static void avg_row(cg_kernel *k, const pool *p, LLVMValueRef first, LLVMValueRef y_row) {
    cg_loop j = cg_loop_begin(k, cg_i64(k, p->ow), "j");
    cg_store(k, f32(k, 0), k->out, cg_add(k, y_row, j.index));
    cg_loop_end(k, &j);
    fold_taps(k, p, first, y_row, add);
    j = cg_loop_begin(k, cg_i64(k, p->ow), "j");
    LLVMValueRef at = cg_add(k, y_row, j.index);
    LLVMValueRef area = f32(k, (double)(p->size * p->size));
    cg_store(k, LLVMBuildFDiv(k->b, cg_load(k, k->t.real, k->out, at), area, ""), k->out, at);
    cg_loop_end(k, &j);
}

int cg_kernel_avg_pool2d(cg_kernel *k) { return pool_kernel(k, input_shape(k, 0), &k->node->shape, 0, avg_row); }

/* ---------------------------------------------- the maximum's position */

/* x's index of the first maximum of the window of output column j. */
static LLVMValueRef window_argmax(cg_kernel *k, const pool *p, LLVMValueRef first, LLVMValueRef j) {
    if (unrolled(p)) {
        LLVMValueRef at;
        window_max(k, p, first, j, &at);
        return at;
    }
    LLVMValueRef best = cg_alloca(k, k->t.real, "best"), at = cg_alloca(k, k->t.i64, "at");
    LLVMValueRef zero = cg_i64(k, 0), start = tap(k, p, first, zero, zero, j);
    LLVMBuildStore(k->b, cg_load_input(k, 0, start), best);
    LLVMBuildStore(k->b, start, at);
    cg_loop u = cg_loop_begin(k, cg_i64(k, p->size), "u");
    cg_loop v = cg_loop_begin(k, cg_i64(k, p->size), "v");
    LLVMValueRef e = tap(k, p, first, u.index, v.index, j);
    LLVMValueRef x = cg_load_input(k, 0, e), b = LLVMBuildLoad2(k->b, k->t.real, best, "");
    LLVMValueRef greater = LLVMBuildFCmp(k->b, LLVMRealOGT, x, b, "");
    LLVMBuildStore(k->b, LLVMBuildSelect(k->b, greater, x, b, ""), best);
    LLVMBuildStore(k->b, LLVMBuildSelect(k->b, greater, e, LLVMBuildLoad2(k->b, k->t.i64, at, ""), ""), at);
    cg_loop_end(k, &v);
    cg_loop_end(k, &u);
    return LLVMBuildLoad2(k->b, k->t.i64, at, "");
}

/* Windows that do not overlap (stride = size) own their taps: each tap
 * of dx is dy[j] at the maximum's position and 0 elsewhere, stored
 * straight, instead of dx[argmax] += dy[j] whose load waits on the
 * argmax and on the previous window's store (the CNN's pool gradients
 * were 12% of its step). */
static int owns_taps(const pool *p) { return unrolled(p) && p->s == p->size; }

/* Only the rows and columns that no window covers need dx zeroed first. */
static int covers_all(const pool *p) { return p->oh * p->s == p->h && p->ow * p->s == p->w; }

static void max_grad_row_owned(cg_kernel *k, const pool *p, LLVMValueRef first, LLVMValueRef y_row) {
    cg_loop j = cg_loop_begin(k, cg_i64(k, p->ow), "j");
    LLVMValueRef at;
    window_max(k, p, first, j.index, &at);
    LLVMValueRef dy = cg_load_input(k, 1, cg_add(k, y_row, j.index));
    for (int64_t u = 0; u < p->size; u++)
        for (int64_t v = 0; v < p->size; v++) {
            LLVMValueRef e = tap(k, p, first, cg_i64(k, u), cg_i64(k, v), j.index);
            LLVMValueRef mine = LLVMBuildICmp(k->b, LLVMIntEQ, e, at, "");
            cg_store(k, LLVMBuildSelect(k->b, mine, dy, f32(k, 0), ""), k->out, e);
        }
    cg_loop_end_as_written(k, &j);
}

/* dx[argmax] += dy[j] */
static void max_grad_row(cg_kernel *k, const pool *p, LLVMValueRef first, LLVMValueRef y_row) {
    cg_loop j = cg_loop_begin(k, cg_i64(k, p->ow), "j");
    LLVMValueRef at = window_argmax(k, p, first, j.index);
    LLVMValueRef sum =
        LLVMBuildFAdd(k->b, cg_load(k, k->t.real, k->out, at), cg_load_input(k, 1, cg_add(k, y_row, j.index)), "");
    cg_store(k, sum, k->out, at);
    cg_loop_end_as_written(k, &j);
}

int cg_kernel_max_pool2d_grad(cg_kernel *k) {
    pool p = pool_of(k, input_shape(k, 0), input_shape(k, 1));
    if (!owns_taps(&p))
        return pool_kernel(k, input_shape(k, 0), input_shape(k, 1), 1, max_grad_row);
    return pool_kernel(k, input_shape(k, 0), input_shape(k, 1), !covers_all(&p), max_grad_row_owned);
}

/* y[j] = v[argmax] */
static void max_pick_row(cg_kernel *k, const pool *p, LLVMValueRef first, LLVMValueRef y_row) {
    cg_loop j = cg_loop_begin(k, cg_i64(k, p->ow), "j");
    LLVMValueRef at = window_argmax(k, p, first, j.index);
    cg_store(k, cg_load_input(k, 1, at), k->out, cg_add(k, y_row, j.index));
    cg_loop_end(k, &j);
}

int cg_kernel_max_pool2d_pick(cg_kernel *k) {
    return pool_kernel(k, input_shape(k, 0), &k->node->shape, 0, max_pick_row);
}

/* ------------------------------------------------------- avg_pool2d_grad */

/* dx[tap] += dy[j] / size^2 over every tap of every window of the row */
static void avg_grad_row(cg_kernel *k, const pool *p, LLVMValueRef first, LLVMValueRef y_row) {
    LLVMValueRef area = f32(k, (double)(p->size * p->size));
    cg_loop u = cg_loop_begin(k, cg_i64(k, p->size), "u");
    cg_loop v = cg_loop_begin(k, cg_i64(k, p->size), "v");
    cg_loop j = cg_loop_begin(k, cg_i64(k, p->ow), "j");
    LLVMValueRef at = tap(k, p, first, u.index, v.index, j.index);
    LLVMValueRef share = LLVMBuildFDiv(k->b, cg_load_input(k, 0, cg_add(k, y_row, j.index)), area, "");
    cg_store(k, LLVMBuildFAdd(k->b, cg_load(k, k->t.real, k->out, at), share, ""), k->out, at);
    cg_loop_end(k, &j);
    cg_loop_end(k, &v);
    cg_loop_end(k, &u);
}

int cg_kernel_avg_pool2d_grad(cg_kernel *k) {
    return pool_kernel(k, &k->node->shape, input_shape(k, 0), 1, avg_grad_row);
}
