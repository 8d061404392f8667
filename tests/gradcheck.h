/*
 * gradcheck.h - a parameter's gradient from autodiff against central
 * differences of the loss, both in the reference interpreter (double):
 * what test_autodiff.c (one op at a time) and test_model_grad.c (whole
 * models) check.  Header-only; the includer includes eval.h and <math.h>.
 */
#ifndef MDL_TEST_GRADCHECK_H
#define MDL_TEST_GRADCHECK_H

/* The loss at the values in v (fwd: the loss's live nodes); NAN if the
 * interpreter fails. */
static double loss_at(const ir_graph *g, const unsigned char *fwd, int64_t batch, double **v) {
    if (ir_eval(g, fwd, batch, v) != 0)
        return NAN;
    double loss = v[g->loss][0];
    ir_eval_release(g, fwd, v);
    return loss;
}

/* Each element j of parameter p: analytic[j] against (loss(w + h) -
 * loss(w - h)) / 2h, h = 1e-6, within 1e-6 of max(1, |numeric|).  Prints
 * each mismatch under `label`; adds to *checked and *worst; returns the
 * number of mismatches. */
static int gradcheck_param(const char *label, const ir_graph *g, const unsigned char *fwd, int64_t batch, double **v,
                           int p, const double *analytic, int *checked, double *worst) {
    int w = g->params[p].node, mismatches = 0;
    int64_t count = ir_numel_at(&g->nodes[w].shape, batch);
    for (int64_t j = 0; j < count; j++) {
        const double h = 1e-6;
        double keep = v[w][j];
        v[w][j] = keep + h;
        double up = loss_at(g, fwd, batch, v);
        v[w][j] = keep - h;
        double down = loss_at(g, fwd, batch, v);
        v[w][j] = keep;
        double numeric = (up - down) / (2 * h);
        double err = fabs(analytic[j] - numeric) / fmax(1.0, fabs(numeric));
        *worst = fmax(*worst, err);
        (*checked)++;
        if (!(err < 1e-6)) {
            printf("FAIL %-16s d loss / d %s[%lld]: autodiff %.10g, finite difference %.10g\n", label,
                   g->params[p].name, (long long)j, analytic[j], numeric);
            mismatches++;
        }
    }
    return mismatches;
}

#endif
