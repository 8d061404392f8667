/*
 * rt_gradcheck.c - `gradcheck`: the compiled gradients against finite
 * differences of the compiled loss.
 *
 * One batch (the first rows of --data, or N(0, 1) inputs and targets) is
 * fixed.  grad_step gives the analytic gradient of every trainable
 * parameter; then for each checked element w we evaluate the loss at
 * w + h and w - h with eval_step and take the central difference.  The
 * kernels work in f32, so the step is relative, h = eps * max(1, |w|), the
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
} gradcheck;

/* The worst element of one parameter. */
typedef struct result {
    int64_t checked, worst;
    double max_abs, max_rel, analytic, numeric;
} result;

static double loss_at(gradcheck *g) {
    rt_gather(g->arena, g->data, g->order, g->data->n);
    rt_write_hypers(g->m, g->arena, g->hypers, g->training, g->step);
    g->m->eval_step(g->arena, g->data->n);
    return rt_scalar(g->arena, &g->m->loss);
}

static int is_checked(const rt_param *p) { return p->trainable && p->t.dtype == RT_F32; }

/* Runs grad_step once and keeps its gradients: later kernel calls may
 * reuse the gradient slots as scratch. */
static double analytic_gradients(gradcheck *g) {
    const rt_model *m = g->m;
    rt_gather(g->arena, g->data, g->order, g->data->n);
    rt_write_hypers(m, g->arena, g->hypers, g->training, g->step);
    m->grad_step(g->arena, g->data->n);
    double loss = rt_scalar(g->arena, &m->loss);
    g->grads = rt_xcalloc((size_t)m->n_params + 1, sizeof *g->grads);
    for (int i = 0; i < m->n_params; i++) {
        const rt_param *p = &m->params[i];
        if (!is_checked(p))
            continue;
        size_t bytes = (size_t)rt_bytes(&p->t, 1);
        g->grads[i] = rt_xmalloc(bytes);
        memcpy(g->grads[i], g->arena + p->grad_offset, bytes);
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
    result r = {0, 0, 0, 0, 0, 0};
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

static void print_result(const gradcheck *g, const rt_param *p, const result *r) {
    char checked[48];
    snprintf(checked, sizeof checked, "%lld/%lld", (long long)r->checked, (long long)rt_elems(&p->t, 1));
    printf("  %-16s %-15s %12.3g %12.3g", p->t.name, checked, r->max_abs, r->max_rel);
    if (r->max_rel > g->tol) {
        char name[160];
        rt_column_name(&p->t, r->worst, name, sizeof name);
        printf("   worst %s: analytic %.6g, numeric %.6g", name, r->analytic, r->numeric);
    }
    printf("\n");
}

static double check_all(gradcheck *g) {
    double worst = 0;
    printf("  %-16s %-15s %12s %12s\n", "parameter", "checked", "max abs err", "max rel err");
    for (int i = 0; i < g->m->n_params; i++) {
        const rt_param *p = &g->m->params[i];
        if (!p->trainable)
            continue;
        if (!is_checked(p)) {
            printf("  %-16s skipped: i32 has no gradient\n", p->t.name);
            continue;
        }
        result r = check_param(g, i);
        print_result(g, p, &r);
        worst = fmax(worst, r.max_rel);
    }
    return worst;
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
    g->eps = o->has_eps ? o->eps : 4e-3;
    g->tol = o->has_tol ? o->tol : 1e-2;
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
    g->arena = rt_setup(m, seed, o->load);
    return g->arena ? 0 : -1;
}

static int run(gradcheck *g, const rt_opts *o) {
    double loss = analytic_gradients(g);
    printf("gradcheck %s: batch %lld (%s), loss %.6g, eps %g, tol %g\n", g->m->name, (long long)g->data->n,
           o->data ? o->data : "random inputs", loss, g->eps, g->tol);
    printf("error = |analytic - numeric| / max(|analytic|, |numeric|, %g)\n", RT_GRADCHECK_FLOOR);
    double worst = check_all(g);
    int pass = worst <= g->tol;
    printf("max rel error %.3g (tol %g)\ngradcheck: %s\n", worst, g->tol, pass ? "PASS" : "FAIL");
    return pass ? 0 : RT_EXIT_FAIL;
}

int rt_cmd_gradcheck(const rt_model *m, const rt_opts *o) {
    gradcheck g;
    memset(&g, 0, sizeof g);
    g.m = m;
    int rc = prepare(&g, o) ? RT_EXIT_FAIL : run(&g, o);
    if (g.grads)
        for (int i = 0; i < m->n_params; i++)
            free(g.grads[i]);
    free(g.grads);
    free(g.hypers);
    free(g.order);
    rt_data_free(g.data);
    rt_arena_free(g.arena);
    return rc;
}
