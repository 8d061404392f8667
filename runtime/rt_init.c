/*
 * rt_init.c - giving parameters their starting values.
 *
 * Parameters are initialised one after another in descriptor order from a
 * single RNG stream of the seed, so the same seed and the same model give
 * bit-identical starting values.  Optimizer state (RT_INIT_NONE) is left at
 * the arena's zero.  The glorot and he rules take fan_in and fan_out from
 * the descriptor, which mdlc fills in from the layer that declared them;
 * where it gave none we fall back to the Keras convention on the shape.
 */
#include "rt_internal.h"

#include <math.h>
#include <string.h>

/* Keras: [in, out] for dense, [kh, kw, in, out] for conv; a vector or
 * scalar counts its own length both ways. */
static void fans(const rt_param *p, double *fan_in, double *fan_out) {
    const rt_tensor *t = &p->t;
    double in = t->rank > 0 ? (double)t->dims[0] : 1;
    double out = in;
    if (t->rank >= 2) {
        double receptive = 1;
        for (int i = 0; i < t->rank - 2; i++)
            receptive *= (double)t->dims[i];
        in = receptive * (double)t->dims[t->rank - 2];
        out = receptive * (double)t->dims[t->rank - 1];
    }
    *fan_in = p->fan_in > 0 ? (double)p->fan_in : in;
    *fan_out = p->fan_out > 0 ? (double)p->fan_out : out;
}

/* One value of parameter p's distribution. */
static double draw(const rt_param *p, rt_rng *r) {
    double fan_in, fan_out, limit;
    switch (p->init) {
    case RT_INIT_ONES: return 1;
    case RT_INIT_CONSTANT: return p->init_a;
    case RT_INIT_UNIFORM: return p->init_a + (p->init_b - p->init_a) * rt_rng_uniform(r);
    case RT_INIT_NORMAL: return p->init_a + p->init_b * rt_rng_normal(r);
    case RT_INIT_GLOROT_UNIFORM:
        fans(p, &fan_in, &fan_out);
        limit = sqrt(6.0 / (fan_in + fan_out));
        return limit * (2 * rt_rng_uniform(r) - 1);
    case RT_INIT_HE_NORMAL: fans(p, &fan_in, &fan_out); return sqrt(2.0 / fan_in) * rt_rng_normal(r);
    default: return 0;
    }
}

static int is_random(int init) {
    return init == RT_INIT_UNIFORM || init == RT_INIT_NORMAL || init == RT_INIT_GLOROT_UNIFORM ||
           init == RT_INIT_HE_NORMAL;
}

static int init_param(const rt_param *p, char *arena, rt_rng *r) {
    if (p->init < RT_INIT_NONE || p->init > RT_INIT_HE_NORMAL)
        return rt_error("model descriptor: parameter \"%s\" has unknown initialiser %d", p->t.name, p->init);
    if (p->t.dtype == RT_I32 && is_random(p->init))
        return rt_error("model descriptor: i32 parameter \"%s\" cannot have a random initialiser", p->t.name);
    int64_t n = rt_elems(&p->t, 1);
    char *slot = arena + p->t.offset;
    for (int64_t i = 0; i < n; i++) {
        double v = draw(p, r);
        if (p->t.dtype == RT_I32) {
            if (!(v >= INT32_MIN && v <= INT32_MAX))
                return rt_error("model descriptor: i32 parameter \"%s\" starts at %g, which is not an i32", p->t.name,
                                v);
            int32_t k = (int32_t)v;
            memcpy(slot + 4 * i, &k, 4);
        } else {
            float f = (float)v;
            memcpy(slot + 4 * i, &f, 4);
        }
    }
    return 0;
}

int rt_init_params(const rt_model *m, char *arena, uint64_t seed) {
    rt_rng r;
    rt_rng_seed(&r, seed, RT_STREAM_INIT);
    for (int i = 0; i < m->n_params; i++)
        if (init_param(&m->params[i], arena, &r))
            return -1;
    return 0;
}

/* "normal(0, 0.01)", "glorot_uniform", ... for `info`. */
void rt_init_describe(const rt_param *p, char *buf, size_t size) {
    switch (p->init) {
    case RT_INIT_NONE: snprintf(buf, size, "-"); break;
    case RT_INIT_ZEROS: snprintf(buf, size, "zeros"); break;
    case RT_INIT_ONES: snprintf(buf, size, "ones"); break;
    case RT_INIT_CONSTANT: snprintf(buf, size, "constant(%g)", p->init_a); break;
    case RT_INIT_UNIFORM: snprintf(buf, size, "uniform(%g, %g)", p->init_a, p->init_b); break;
    case RT_INIT_NORMAL: snprintf(buf, size, "normal(%g, %g)", p->init_a, p->init_b); break;
    case RT_INIT_GLOROT_UNIFORM: snprintf(buf, size, "glorot_uniform"); break;
    case RT_INIT_HE_NORMAL: snprintf(buf, size, "he_normal"); break;
    default: snprintf(buf, size, "?%d", p->init);
    }
}
