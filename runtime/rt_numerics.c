/*
 * rt_numerics.c - which operation first made a NaN or an infinity.
 *
 * train_step, as mdlc builds it for an executable, calls mdl_rt_check
 * after each of its kernels while mdl_rt_numerics is set: a load and a
 * branch per kernel otherwise.  The first kernel whose result holds a
 * non-finite value is kept, with the range of each buffer it read (taken
 * at once: later kernels may reuse those buffers), and rt_numerics_report
 * says where it comes from in the .mdl file, clang-style:
 *
 *     model.mdl:12:16: error: log made 3 of 64 values non-finite (-inf at [5, 0])
 *        12 |     loss = mean(-log(p))
 *           |                 ^
 *     note: it read p (%41 softmax) f32[B, 1]: min 0, max 0.97, all finite
 */
#include "rt_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

int mdl_rt_numerics;

typedef struct range {
    double min, max;
    int64_t nan, pos_inf, neg_inf, n, zeros;
    int64_t first_bad; /* index of the first non-finite value, or -1 */
} range;

static struct {
    const rt_model *m;
    int found; /* 0, or 1 + the index of the first failing check */
    range out;
    range in[RT_CHECK_MAX_IN];
    double at_bad[RT_CHECK_MAX_IN]; /* an input of the result's size: its value where the result went bad */
    int in_place[RT_CHECK_MAX_IN]; /* the input shares the result's buffer */
    int64_t batch;
} state;

static range range_of(const char *arena, const rt_tensor *t, int64_t batch) {
    range r = {INFINITY, -INFINITY, 0, 0, 0, 0, 0, -1};
    r.n = rt_elems(t, batch);
    const char *p = arena + t->offset;
    for (int64_t i = 0; i < r.n; i++) {
        double v;
        if (t->dtype == RT_I32) {
            int32_t x;
            memcpy(&x, p + 4 * i, 4);
            v = x;
        } else {
            float x;
            memcpy(&x, p + 4 * i, 4);
            v = x;
        }
        if (isfinite(v)) {
            r.zeros += v == 0;
            r.min = v < r.min ? v : r.min;
            r.max = v > r.max ? v : r.max;
            continue;
        }
        if (r.first_bad < 0)
            r.first_bad = i;
        if (isnan(v))
            r.nan++;
        else if (v > 0)
            r.pos_inf++;
        else
            r.neg_inf++;
    }
    return r;
}

static int64_t bad(const range *r) { return r->nan + r->pos_inf + r->neg_inf; }

void mdl_rt_check(char *arena, int64_t batch, int32_t index) {
    const rt_model *m = state.m;
    if (state.found || !m || index < 0 || index >= m->n_checks)
        return;
    const rt_check *c = &m->checks[index];
    range out = range_of(arena, &c->out, batch);
    if (!bad(&out))
        return;
    state.found = 1 + index;
    state.out = out;
    state.batch = batch;
    for (int k = 0; k < c->n_in; k++) {
        state.in_place[k] = c->in[k].offset == c->out.offset;
        if (state.in_place[k])
            continue;
        state.in[k] = range_of(arena, &c->in[k], batch);
        if (state.in[k].n == out.n) {
            const char *p = arena + c->in[k].offset + 4 * out.first_bad;
            if (c->in[k].dtype == RT_I32) {
                int32_t x;
                memcpy(&x, p, 4);
                state.at_bad[k] = x;
            } else {
                float x;
                memcpy(&x, p, 4);
                state.at_bad[k] = x;
            }
        }
    }
}

void rt_numerics_start(const rt_model *m) {
    state.m = m;
    state.found = 0;
    mdl_rt_numerics = m->n_checks > 0;
}

void rt_numerics_stop(void) { mdl_rt_numerics = 0; }

int rt_numerics_found(void) { return state.found != 0; }

/* "[5, 0]": the index of flat element k of t in a batch of `batch`. */
static void index_string(const rt_tensor *t, int64_t batch, int64_t k, char *buf, size_t size) {
    int64_t dims[RT_MAX_RANK], idx[RT_MAX_RANK];
    for (int d = 0; d < t->rank; d++)
        dims[d] = (t->batch_mask >> d) & 1 ? batch : t->dims[d];
    for (int d = t->rank - 1; d >= 0; d--) {
        idx[d] = dims[d] ? k % dims[d] : 0;
        k = dims[d] ? k / dims[d] : 0;
    }
    size_t used = (size_t)snprintf(buf, size, "[");
    for (int d = 0; d < t->rank && used < size; d++)
        used += (size_t)snprintf(buf + used, size - used, "%s%lld", d ? ", " : "", (long long)idx[d]);
    if (used < size)
        snprintf(buf + used, size - used, "]");
}

static void describe(const range *r, char *buf, size_t size) {
    size_t used = 0;
    if (r->min <= r->max)
        used = (size_t)snprintf(buf, size, "min %.6g, max %.6g", r->min, r->max);
    else
        used = (size_t)snprintf(buf, size, "no finite value");
    if (r->zeros && r->zeros < r->n && used < size) /* what log, div, sqrt' trip on */
        used += (size_t)snprintf(buf + used, size - used, ", %lld zero%s", (long long)r->zeros, r->zeros == 1 ? "" : "s");
    if (!bad(r)) {
        snprintf(buf + used, size - used, ", all finite");
        return;
    }
    if (r->nan && used < size)
        used += (size_t)snprintf(buf + used, size - used, ", %lld NaN", (long long)r->nan);
    if (r->pos_inf && used < size)
        used += (size_t)snprintf(buf + used, size - used, ", %lld +inf", (long long)r->pos_inf);
    if (r->neg_inf && used < size)
        snprintf(buf + used, size - used, ", %lld -inf", (long long)r->neg_inf);
}

/* Prints what was found, as an error at its place in the .mdl file, with
 * `when` ("at epoch 1, step 5") after it; 0 if nothing was. */
int rt_numerics_report(const char *when) {
    if (!state.found)
        return 0;
    const rt_model *m = state.m;
    const rt_check *c = &m->checks[state.found - 1];
    const range *o = &state.out;
    char where[512], at[128], what[64];
    if (c->line > 0)
        snprintf(where, sizeof where, "%s:%d:%d: ", m->source ? m->source : "?", c->line, c->col);
    else
        snprintf(where, sizeof where, "%s: ", m->source ? m->source : "?");
    index_string(&c->out, state.batch, o->first_bad, at, sizeof at);
    snprintf(what, sizeof what, "%s", o->nan ? "NaN" : o->pos_inf ? "+inf" : "-inf");
    fflush(stdout);
    const char *how = c->backward ? (c->fused > 1 ? " (in the gradient, fused with other operations)"
                                                   : " (in the gradient)")
                      : c->fused > 1 ? " (fused with other operations)"
                                     : "";
    fprintf(stderr, "%serror: %s%s made %lld of %lld values non-finite (the first, %s, at %s) %s\n", where, c->op, how,
            (long long)bad(o), (long long)o->n, what, at, when);
    if (c->line > 0 && c->text && *c->text) {
        fprintf(stderr, "%5d | %s\n      | ", c->line, c->text);
        for (int i = 1; i < c->col; i++)
            fputc(c->text[i - 1] == '\t' ? '\t' : ' ', stderr);
        fputs("^\n", stderr);
    }
    if (c->fused > 1 && c->members)
        fprintf(stderr, "note: the kernel computes %s\n", c->members);
    for (int k = 0; k < c->n_in; k++) {
        char shape[96], desc[160];
        rt_shape_string(&c->in[k], shape, sizeof shape);
        if (state.in_place[k])
            snprintf(desc, sizeof desc, "overwritten in place by the result");
        else
            describe(&state.in[k], desc, sizeof desc);
        char there[192] = "";
        if (!state.in_place[k] && state.in[k].n == o->n) {
            double v = state.at_bad[k];
            if (isnan(v))
                snprintf(there, sizeof there, "; NaN at %s", at);
            else
                snprintf(there, sizeof there, "; %.9g at %s", v, at);
        }
        fprintf(stderr, "note: it read %s %s%s: %s%s\n", c->in[k].name, rt_dtype_name(c->in[k].dtype), shape, desc,
                there);
    }
    return 1;
}
