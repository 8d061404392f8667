/*
 * rt_gradcheck.c - `gradcheck`: the compiled gradients against finite
 * differences of the compiled loss.
 *
 * One batch (the first rows of --data, or N(0, 1) inputs and targets) is
 * fixed.  grad_step gives the analytic gradient of every trainable
 * parameter; then for each checked element w we evaluate the loss at
 * w + h and w - h with eval_step and take the central difference.
 *
 * In float64 (the model has eval_step_f64 and grad_step_f64, mdlrt.h; mdlc
 * builds them unless --no-f64-check), as torch.autograd.gradcheck does:
 * the parameters (rounded to f32, as training has them), the batch and the
 * hyper-parameters are copied into the f64 arena; grad_step_f64 gives the
 * analytic gradient and eval_step_f64 the loss for a plain central
 * difference (L(w+h) - L(w-h)) / 2h with h = eps * max(1, |w|), eps 1e-6
 * by default.  In double the rounding of the loss costs about 1e-15 / h
 * ~ 1e-9 and the truncation h^2 ~ 1e-12, so the check can be tight:
 *
 *     error = |analytic - numeric| / max(|analytic|, |numeric|, 1e-2)
 *
 * at most 1e-6 (--tol): a relative error of 1e-6, or an absolute one of
 * 1e-8 for gradients under 1e-2.  The step is far too small to cross the
 * kinks of relu and max at random, but a model can sit exactly on one: a
 * zero-initialised bias under zero padding makes the pre-activation of
 * every all-zero window exactly 0, where relu has no derivative.  There
 * the analytic gradient is a one-sided derivative (relu'(0) = 0), so an
 * element whose central difference disagrees is also compared with the
 * one-sided differences (L(w+h) - L(w)) / h and (L(w) - L(w-h)) / h,
 * whose truncation error is O(h) (allowed 1e3 tol): an element that
 * matches one of them passes and is counted as "at a kink" (its errors
 * shown are the one-sided difference's, the relative one divided by
 * 1e3).  A wrong
 * gradient matches neither.  Where neither matches (a second kink within
 * h of the point, met at initialisation where many pre-activations sit
 * at exactly 0) the element is tried again at h / 10, and the better of
 * the two counts.
 *
 * The f32 kernels are checked too: the gradients of the f32 grad_step at
 * the same point must agree with the f64 analytic ones to
 *
 *     |g32 - g64| / max(|g32|, |g64|, 1e-2 max |g64 of that parameter|)
 *
 * at most 1e-3 (every element; f32 rounding is about 1e-6 of the largest
 * terms).  Both maxima are printed, and either above its tolerance fails
 * the check: a gradient rule wrong in both variants fails the first, a
 * bug in an f32 kernel alone the second.
 *
 * In float32 (a model without f64 entries), the check as it always was:
 * the step is relative, h = eps * max(1, |w|), the
 * quotient uses the step actually taken after rounding w +- h to f32, and
 * the arithmetic is done in double.  Each element's error is
 *
 *     |analytic - numeric| / max(|analytic|, |numeric|, 1e-2)
 *
 * a relative error that turns into an absolute one (scaled by 100) for
 * gradients under 1e-2, where f32 cancellation in the loss would make a
 * pure relative error meaningless.  A NaN anywhere counts as infinitely
 * wrong.  Parameters over --max-elems elements are checked on a seeded
 * random sample.  Every perturbed value is restored bit for bit.
 *
 * An element whose difference at h does not agree is tried again at h / 4
 * and 4h, and the best of the three counts: a wrong gradient is wrong at
 * every step, while the f32 rounding of a loss such as a cross-entropy of
 * 2.5 (worst at small steps) and the kinks of relu (worst at large ones)
 * each spoil only some, which at one fixed step made correct models fail.
 *
 * grad_step and eval_step must compute the same function, so both run
 * with the same hyper-parameters: "training" 0 (dropout off) and "step" 0
 * unless --hyper sets them (--hyper training=1 checks the training-mode
 * gradients of a model whose dropout masks depend only on "step").
 */
#include "rt_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define RT_GRADCHECK_FLOOR 1e-2

/* float64: default eps and tol, the one-sided allowance, and the f32
 * comparison's tolerance and floor (relative to the parameter's largest
 * gradient). */
#define RT_F64_EPS 1e-6
#define RT_F64_TOL 1e-6
#define RT_F64_ONE_SIDED 1e3
#define RT_F32_VS_F64_TOL 1e-3
#define RT_F32_VS_F64_FLOOR 1e-2

/* The step sizes tried, relative to h, best first. */
static const double step_scales[] = {1, 0.25, 4};
#define RT_GRADCHECK_STEPS (int)(sizeof step_scales / sizeof step_scales[0])

typedef struct gradcheck {
    const rt_model *m;
    char *arena;
    rt_dataset *data;
    int64_t *order;
    double eps, tol;
    int64_t max_elems;
    rt_rng rng;
    float *hypers;
    double training, step; /* the values of hypers "training" and "step" */
    float **grads;         /* analytic, per parameter (trainable f32 only) */
    char *arena64;         /* the f64 arena; NULL: the check is in f32 */
    double **grads64;      /* analytic from grad_step_f64, per parameter */
} gradcheck;

/* The worst element of one parameter. */
typedef struct result {
    int64_t checked, worst;
    double max_abs, max_rel, analytic, numeric;
    int64_t kinks;        /* f64: elements that matched a one-sided difference */
    double f32_rel;       /* f64: the worst f32 vs f64 error */
    int64_t f32_worst;
} result;

static double loss_at(gradcheck *g) {
    rt_gather(g->arena, g->data, g->order, g->data->n);
    rt_write_hypers(g->m, g->arena, g->hypers, g->training, g->step);
    rt_zero_state(g->m, g->arena); /* eval_step carries it on: every call starts afresh */
    g->m->eval_step(g->arena, g->data->n);
    return rt_scalar(g->arena, &g->m->loss);
}

static int is_checked(const rt_param *p) { return p->trainable && p->t.dtype == RT_F32; }

/* A copy of a gradient slot: later kernel calls may reuse the gradient
 * slots as scratch. */
static void *copy_gradient(const char *arena, int64_t offset, size_t bytes) {
    return memcpy(rt_xmalloc(bytes), arena + offset, bytes);
}

/* Runs grad_step once and keeps its gradients. */
static double analytic_gradients(gradcheck *g) {
    const rt_model *m = g->m;
    rt_gather(g->arena, g->data, g->order, g->data->n);
    rt_write_hypers(m, g->arena, g->hypers, g->training, g->step);
    rt_zero_state(m, g->arena);
    m->grad_step(g->arena, g->data->n);
    double loss = rt_scalar(g->arena, &m->loss);
    g->grads = rt_xcalloc((size_t)m->n_params + 1, sizeof *g->grads);
    for (int i = 0; i < m->n_params; i++) {
        const rt_param *p = &m->params[i];
        if (is_checked(p))
            g->grads[i] = copy_gradient(g->arena, p->grad_offset, (size_t)rt_bytes(&p->t, 1));
    }
    return loss;
}

/* Indices to check: all of them, or a seeded sample without replacement
 * (a partial Fisher-Yates). */
static int64_t *pick_elements(gradcheck *g, int64_t n, int64_t *count) {
    int64_t *index = rt_identity_order(n);
    *count = n <= g->max_elems ? n : g->max_elems;
    if (*count < n)
        for (int64_t i = 0; i < *count; i++) {
            int64_t j = i + (int64_t)rt_rng_below(&g->rng, (uint64_t)(n - i));
            int64_t t = index[i];
            index[i] = index[j];
            index[j] = t;
        }
    return index;
}

/* The loss with element k of parameter p set to w; restores nothing. */
static double loss_with(gradcheck *g, float *slot, double w, float *taken) {
    *slot = *taken = (float)w;
    return loss_at(g);
}

/* The derivative of the loss in element k of parameter p by the
 * fourth-order central difference
 *     (8 (L(w+h) - L(w-h)) - (L(w+2h) - L(w-2h))) / 12h,
 * whose truncation error is O(h^4), so h can be large enough for the f32
 * rounding of the loss (divided by h) to stay small.  Each difference
 * uses the step actually taken after rounding w +- h to f32. */
static double numeric_gradient(gradcheck *g, const rt_param *p, int64_t k, double scale) {
    float *slot = (float *)(g->arena + p->t.offset) + k;
    float w0 = *slot, a, b, c, d;
    double h = scale * g->eps * fmax(1.0, fabs((double)w0));
    double l1 = loss_with(g, slot, w0 + h, &a) - loss_with(g, slot, w0 - h, &b);
    double l2 = loss_with(g, slot, w0 + 2 * h, &c) - loss_with(g, slot, w0 - 2 * h, &d);
    *slot = w0;
    double d1 = l1 / ((double)a - b), d2 = l2 / ((double)c - d);
    return (4 * d1 - d2) / 3;
}

static result check_param(gradcheck *g, int i) {
    const rt_param *p = &g->m->params[i];
    result r;
    memset(&r, 0, sizeof r);
    int64_t *index = pick_elements(g, rt_elems(&p->t, 1), &r.checked);
    for (int64_t c = 0; c < r.checked; c++) {
        int64_t k = index[c];
        double analytic = g->grads[i][k], numeric = 0, abs_err = INFINITY, rel = INFINITY;
        for (int s = 0; s < RT_GRADCHECK_STEPS; s++) {
            double n = numeric_gradient(g, p, k, step_scales[s]);
            double e = fabs(analytic - n);
            double q = e / fmax(fmax(fabs(analytic), fabs(n)), RT_GRADCHECK_FLOOR);
            if (!isfinite(q))
                e = q = INFINITY;
            if (s == 0 || q < rel)
                numeric = n, abs_err = e, rel = q;
            if (rel <= g->tol / 4)
                break; /* good enough: the other steps cannot fail it */
        }
        if (c == 0 || rel > r.max_rel)
            r.worst = k, r.max_rel = rel, r.analytic = analytic, r.numeric = numeric;
        r.max_abs = fmax(r.max_abs, abs_err);
    }
    free(index);
    return r;
}

/* ------------------------------------------------------------- float64 */

static double *slot64(char *arena, int64_t offset) { return (double *)(void *)(arena + offset); }

static char *arena64_new(const rt_model *m) {
    size_t size = ((size_t)m->arena_bytes_f64 + 63) / 64 * 64;
    char *arena = aligned_alloc(64, size ? size : 64);
    if (!arena) {
        rt_error("cannot allocate the model's %lld-byte f64 arena", (long long)m->arena_bytes_f64);
        return NULL;
    }
    memset(arena, 0, size ? size : 64);
    return arena;
}

/* n elements of an f32 (to double) or i32 (as is) tensor between arenas */
static void widen(char *to, const char *from, int dtype, int64_t n) {
    if (dtype == RT_I32) {
        memcpy(to, from, (size_t)n * 4);
        return;
    }
    for (int64_t i = 0; i < n; i++) {
        float v;
        memcpy(&v, from + 4 * i, 4);
        slot64(to, 8 * i)[0] = v;
    }
}

/* The batch and the hypers, through the f32 arena, before every call: as
 * with the f32 entries, a kernel may have reused their slots. */
static void load_batch64(gradcheck *g) {
    const rt_model *m = g->m;
    rt_gather(g->arena, g->data, g->order, g->data->n);
    for (int t = 0; t < g->data->n_tensors; t++) {
        const rt_tensor *x = g->data->tensors[t];
        widen(g->arena64 + x->offset_f64, g->arena + x->offset, x->dtype, rt_elems(x, g->data->n));
    }
    rt_write_hypers(m, g->arena, g->hypers, g->training, g->step);
    for (int i = 0; i < m->n_hypers; i++) {
        float v;
        memcpy(&v, g->arena + m->hypers[i].offset, sizeof v);
        *slot64(g->arena64, m->hypers[i].offset_f64) = v;
    }
    for (int i = 0; i < m->n_params; i++) /* the state, zero: as loss_at */
        if (m->params[i].state && m->params[i].t.offset_f64 >= 0)
            memset(g->arena64 + m->params[i].t.offset_f64, 0, (size_t)rt_elems(&m->params[i].t, m->max_batch) * 8);
}

/* Parameters are never written by eval or grad: copied once. */
static void load_params64(gradcheck *g) {
    const rt_model *m = g->m;
    for (int i = 0; i < m->n_params; i++) {
        const rt_param *p = &m->params[i];
        if (p->t.offset_f64 >= 0)
            widen(g->arena64 + p->t.offset_f64, g->arena + p->t.offset, p->t.dtype, rt_elems(&p->t, 1));
    }
}

static double loss64(gradcheck *g) {
    load_batch64(g);
    g->m->eval_step_f64(g->arena64, g->data->n);
    return *slot64(g->arena64, g->m->loss.offset_f64);
}

static double analytic_gradients64(gradcheck *g) {
    const rt_model *m = g->m;
    load_params64(g);
    load_batch64(g);
    m->grad_step_f64(g->arena64, g->data->n);
    double loss = *slot64(g->arena64, m->loss.offset_f64);
    g->grads64 = rt_xcalloc((size_t)m->n_params + 1, sizeof *g->grads64);
    for (int i = 0; i < m->n_params; i++) {
        const rt_param *p = &m->params[i];
        if (is_checked(p))
            g->grads64[i] = copy_gradient(g->arena64, p->grad_offset_f64, (size_t)rt_elems(&p->t, 1) * sizeof(double));
    }
    return loss;
}

static double rel_error(double a, double n, double floor) {
    double q = fabs(a - n) / fmax(fmax(fabs(a), fabs(n)), floor);
    return isfinite(q) ? q : INFINITY;
}

/* The f32 grad_step against the f64 analytic gradient, every element. */
static void compare_f32(const gradcheck *g, int i, result *r) {
    const rt_param *p = &g->m->params[i];
    int64_t n = rt_elems(&p->t, 1);
    double biggest = 0;
    for (int64_t k = 0; k < n; k++)
        biggest = fmax(biggest, fabs(g->grads64[i][k]));
    double floor = fmax(RT_F32_VS_F64_FLOOR * biggest, 1e-30);
    r->f32_rel = 0;
    r->f32_worst = 0;
    for (int64_t k = 0; k < n; k++) {
        double q = rel_error(g->grads[i][k], g->grads64[i][k], floor);
        if (k == 0 || q > r->f32_rel)
            r->f32_rel = q, r->f32_worst = k;
    }
}

/* Element k's error at step h: the central difference, or where that
 * disagrees, a one-sided one (*kink set) if that agrees. */
static double error_at(gradcheck *g, const rt_param *p, int64_t k, double base, double h, double *numeric,
                       int *kink) {
    double *slot = slot64(g->arena64, p->t.offset_f64) + k, w0 = *slot;
    *slot = w0 + h;
    double up = loss64(g), hp = *slot - w0;
    *slot = w0 - h;
    double down = loss64(g), hm = w0 - *slot;
    *slot = w0;
    double analytic = g->grads64[p - g->m->params][k];
    *numeric = (up - down) / (hp + hm);
    *kink = 0;
    double rel = rel_error(analytic, *numeric, RT_GRADCHECK_FLOOR);
    if (rel > g->tol) {
        double right = (up - base) / hp, left = (base - down) / hm;
        double qr = rel_error(analytic, right, RT_GRADCHECK_FLOOR), ql = rel_error(analytic, left, RT_GRADCHECK_FLOOR);
        double q = fmin(qr, ql);
        if (q <= RT_F64_ONE_SIDED * g->tol) {
            /* reported as the one-sided difference that matched, its
             * error scaled to the central difference's tolerance */
            *kink = 1;
            *numeric = qr <= ql ? right : left;
            rel = q / RT_F64_ONE_SIDED;
        }
    }
    return rel;
}

static result check_param64(gradcheck *g, int i) {
    const rt_param *p = &g->m->params[i];
    result r;
    memset(&r, 0, sizeof r);
    double base = loss64(g);
    double *slot = slot64(g->arena64, p->t.offset_f64);
    int64_t *index = pick_elements(g, rt_elems(&p->t, 1), &r.checked);
    for (int64_t c = 0; c < r.checked; c++) {
        int64_t k = index[c];
        double h = g->eps * fmax(1.0, fabs(slot[k])), numeric, n2;
        int kink, k2;
        double rel = error_at(g, p, k, base, h, &numeric, &kink);
        /* a second kink within h: try h / 10 */
        if (rel > g->tol) {
            double q = error_at(g, p, k, base, h / 10, &n2, &k2);
            if (q < rel)
                rel = q, numeric = n2, kink = k2;
        }
        r.kinks += kink;
        double analytic = g->grads64[i][k];
        if (c == 0 || rel > r.max_rel)
            r.worst = k, r.max_rel = rel, r.analytic = analytic, r.numeric = numeric;
        double e = fabs(analytic - numeric);
        r.max_abs = fmax(r.max_abs, isfinite(e) ? e : INFINITY);
    }
    free(index);
    compare_f32(g, i, &r);
    return r;
}

/* ---------------------------------------------------------------- report */

static void print_result(const gradcheck *g, const rt_param *p, const result *r) {
    char checked[48];
    snprintf(checked, sizeof checked, "%lld/%lld", (long long)r->checked, (long long)rt_elems(&p->t, 1));
    printf("  %-16s %-15s %12.3g %12.3g", p->t.name, checked, r->max_abs, r->max_rel);
    if (g->arena64)
        printf(" %12.3g", r->f32_rel);
    if (r->max_rel > g->tol) {
        char name[160];
        rt_column_name(&p->t, r->worst, name, sizeof name);
        printf("   worst %s: analytic %.6g, numeric %.6g", name, r->analytic, r->numeric);
    }
    if (g->arena64 && r->f32_rel > RT_F32_VS_F64_TOL) {
        char name[160];
        rt_column_name(&p->t, r->f32_worst, name, sizeof name);
        printf("   worst f32 %s: %.6g, f64 %.9g", name, (double)g->grads[p - g->m->params][r->f32_worst],
               g->grads64[p - g->m->params][r->f32_worst]);
    }
    if (r->kinks)
        printf("   (%lld at a kink)", (long long)r->kinks);
    printf("\n");
}

/* The worst error of each kind: [0] analytic vs numeric, [1] f32 vs f64. */
static void check_all(gradcheck *g, double worst[2]) {
    worst[0] = worst[1] = 0;
    printf("  %-16s %-15s %12s %12s", "parameter", "checked", "max abs err", "max rel err");
    printf(g->arena64 ? " %12s\n" : "\n", "f32 vs f64");
    for (int i = 0; i < g->m->n_params; i++) {
        const rt_param *p = &g->m->params[i];
        if (!p->trainable)
            continue;
        if (!is_checked(p)) {
            printf("  %-16s skipped: i32 has no gradient\n", p->t.name);
            continue;
        }
        result r = g->arena64 ? check_param64(g, i) : check_param(g, i);
        print_result(g, p, &r);
        worst[0] = fmax(worst[0], r.max_rel);
        worst[1] = fmax(worst[1], r.f32_rel);
    }
}

/* The batch: the first rows of --data, or random inputs and targets. */
static int make_batch(gradcheck *g, const rt_opts *o, int64_t batch) {
    if (o->data) {
        g->data = rt_data_load(g->m, o->data, RT_DATA_LABELLED);
        if (!g->data)
            return -1;
        rt_data_truncate(g->data, batch);
    } else {
        g->data = rt_data_new(g->m, RT_DATA_LABELLED, batch);
        if (rt_data_random(g->data, &g->rng))
            return -1;
    }
    g->order = rt_identity_order(g->data->n);
    return 0;
}

static int prepare(gradcheck *g, const rt_opts *o) {
    const rt_model *m = g->m;
    if (!m->grad_step || !m->eval_step || !m->has_loss)
        return rt_error("model %s has no loss, so there is no gradient to check", m->name);
    int64_t batch;
    if (rt_resolve_batch(m, o->batch, m->max_batch < 8 ? m->max_batch : 8, &batch))
        return -1;
    int f64 = m->eval_step_f64 && m->grad_step_f64;
    g->eps = o->has_eps ? o->eps : f64 ? RT_F64_EPS : 4e-3;
    g->tol = o->has_tol ? o->tol : f64 ? RT_F64_TOL : 1e-2;
    g->max_elems = o->max_elems ? o->max_elems : 64;
    if (!(g->hypers = rt_resolve_hypers(m, o, 1)))
        return -1;
    int training = rt_hyper_index(m, "training"), step = rt_hyper_index(m, "step");
    for (int i = 0; i < o->n_hyper_sets; i++) {
        if (training >= 0 && strcmp(o->hyper_sets[i].name, "training") == 0)
            g->training = g->hypers[training];
        if (step >= 0 && strcmp(o->hyper_sets[i].name, "step") == 0)
            g->step = g->hypers[step];
    }
    uint64_t seed = rt_resolve_seed(m, o);
    rt_rng_seed(&g->rng, seed, RT_STREAM_GRADCHECK);
    if (make_batch(g, o, batch))
        return -1;
    g->arena = rt_setup(m, seed, o->load, NULL);
    if (!g->arena)
        return -1;
    if (f64 && !(g->arena64 = arena64_new(m)))
        return -1;
    return 0;
}

static int run(gradcheck *g, const rt_opts *o) {
    double loss = analytic_gradients(g);
    if (g->arena64)
        loss = analytic_gradients64(g);
    printf("gradcheck %s (%s): batch %lld (%s), loss %.9g, eps %g, tol %g\n", g->m->name,
           g->arena64 ? "float64" : "float32", (long long)g->data->n, o->data ? o->data : "random inputs", loss,
           g->eps, g->tol);
    printf("error = |analytic - numeric| / max(|analytic|, |numeric|, %g)\n", RT_GRADCHECK_FLOOR);
    if (g->arena64)
        printf("f32 vs f64 = |f32 - f64| / max(|f32|, |f64|, %g max |f64| of the parameter)\n",
               RT_F32_VS_F64_FLOOR);
    double worst[2];
    check_all(g, worst);
    int pass = worst[0] <= g->tol;
    if (g->arena64) {
        pass = pass && worst[1] <= RT_F32_VS_F64_TOL;
        printf("f64 vs finite differences: max rel error %.3g (tol %g)\n", worst[0], g->tol);
        printf("f32 vs f64 gradients: max rel error %.3g (tol %g)\n", worst[1], RT_F32_VS_F64_TOL);
    } else {
        printf("max rel error %.3g (tol %g)\n", worst[0], g->tol);
    }
    printf("gradcheck: %s\n", pass ? "PASS" : "FAIL");
    return pass ? 0 : RT_EXIT_FAIL;
}

int rt_cmd_gradcheck(const rt_model *m, const rt_opts *o) {
    gradcheck g;
    memset(&g, 0, sizeof g);
    g.m = m;
    int rc = prepare(&g, o) ? RT_EXIT_FAIL : run(&g, o);
    for (int i = 0; i < m->n_params; i++) {
        if (g.grads)
            free(g.grads[i]);
        if (g.grads64)
            free(g.grads64[i]);
    }
    free(g.grads);
    free(g.grads64);
    free(g.arena64);
    free(g.hypers);
    free(g.order);
    rt_data_free(g.data);
    rt_arena_free(g.arena);
    return rc;
}
