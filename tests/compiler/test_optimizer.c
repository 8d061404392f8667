/*
 * test_optimizer.c - the optimizer update mdlc lowers into the graph,
 * against an independent implementation of torch.optim's formulas.
 *
 * For each `train` setting below, a small model (a linear layer and an
 * MSE loss, plus a scalar parameter so rank-0 tensors are covered) is
 * parsed, lowered, differentiated and given its optimizer update exactly as
 * mdlc does.  The reference interpreter then runs STEPS training steps: it
 * evaluates the gradients and the ASSIGNed new values, and the new values
 * are written back into the parameter and state slots, as the runtime does.
 * In parallel, reference() applies the textbook update (written here from
 * PyTorch's documentation, sharing no code with passes/optimizer.c) to the
 * gradients the interpreter computed, and the two parameter trajectories
 * must agree to 1e-6 (relative above 1): the graph's constants (betas,
 * eps, 1 - beta) are f32 values, the reference's are doubles, which alone
 * makes ~1e-7 of difference; a wrong formula is off by orders more.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ast.h"
#include "eval.h"
#include "ir.h"
#include "lower.h"
#include "passes.h"

#define TEST_SEED 7
#include "../test.h"

extern const char mdl_prelude_source[];

#define BATCH 4
#define STEPS 5
#define MAXP 16

static const char *const model_text =
    "model opt\n"
    "input x: f32[B, 3]\n"
    "target y: f32[B]\n"
    "param w: f32[3] = normal(0, 1)\n"
    "param b: f32[] = constant(0.3)\n"
    "loss mse(x @ w + b, y) + 0.1 * sum(abs(w))\n"
    "train %s, batch = 4\n";

static const char *const settings[] = {
    "sgd(lr = 0.1)",
    "sgd(lr = 0.1, weight_decay = 0.01)",
    "sgd(lr = 0.05, momentum = 0.9)",
    "sgd(lr = 0.05, momentum = 0.9, nesterov = 1)",
    "momentum(lr = 0.05)",
    "adam(lr = 0.01)",
    "adam(lr = 0.01, beta1 = 0.8, beta2 = 0.99, eps = 1e-6, weight_decay = 0.1)",
    "adamw(lr = 0.01)",
    "adamw(lr = 0.01, weight_decay = 0.5)",
    "rmsprop(lr = 0.01)",
    "rmsprop(lr = 0.01, alpha = 0.9, momentum = 0.5)",
    "rmsprop(lr = 0.01, centered = 1, weight_decay = 0.1)",
    "sgd(lr = 0.1, clip_norm = 0.05)",
    "adam(lr = 0.01, clip_norm = 0.01)",
};

/* The optimizer's settings as parsed back from the graph. */
static double setting(const ir_graph *g, const char *name, double fallback) {
    for (int i = 0; i < g->n_opt_args; i++)
        if (strcmp(g->opt_arg_names[i], name) == 0)
            return g->opt_arg_values[i];
    return fallback;
}

/* One parameter's reference state. */
typedef struct ref {
    int64_t n;
    double *w, *buf, *m, *v, *gavg;
} ref;

/* torch.optim's update of every parameter from its gradient g[p], step t
 * (1-based). */
static void reference(const ir_graph *g, ref *r, int n, double **grads, int t) {
    const char *opt = g->optimizer;
    int adamw = strcmp(opt, "adamw") == 0, adam = adamw || strcmp(opt, "adam") == 0;
    int rms = strcmp(opt, "rmsprop") == 0;
    double lr = setting(g, "lr", adam ? 1e-3 : 1e-2);
    double wd = setting(g, "weight_decay", adamw ? 1e-2 : 0);
    double clip = setting(g, "clip_norm", 0), scale = 1;
    if (clip > 0) { /* clip_grad_norm_: one factor from the norm of all gradients */
        double sq = 0;
        for (int p = 0; p < n; p++)
            for (int64_t i = 0; i < r[p].n; i++)
                sq += grads[p][i] * grads[p][i];
        scale = fmin(1.0, clip / (sqrt(sq) + 1e-6));
    }
    for (int p = 0; p < n; p++)
        for (int64_t i = 0; i < r[p].n; i++) {
            double w = r[p].w[i], d = grads[p][i] * scale;
            if (adamw) {
                w *= 1 - lr * wd;
            } else {
                d += wd * w;
            }
            if (adam) {
                double b1 = setting(g, "beta1", 0.9), b2 = setting(g, "beta2", 0.999), eps = setting(g, "eps", 1e-8);
                r[p].m[i] = b1 * r[p].m[i] + (1 - b1) * d;
                r[p].v[i] = b2 * r[p].v[i] + (1 - b2) * d * d;
                double mhat = r[p].m[i] / (1 - pow(b1, t)), vhat = r[p].v[i] / (1 - pow(b2, t));
                w -= lr * mhat / (sqrt(vhat) + eps);
            } else if (rms) {
                double alpha = setting(g, "alpha", 0.99), eps = setting(g, "eps", 1e-8);
                double mu = setting(g, "momentum", 0);
                r[p].v[i] = alpha * r[p].v[i] + (1 - alpha) * d * d;
                double var = r[p].v[i];
                if (setting(g, "centered", 0) != 0) {
                    r[p].gavg[i] = alpha * r[p].gavg[i] + (1 - alpha) * d;
                    var -= r[p].gavg[i] * r[p].gavg[i];
                }
                double step = d / (sqrt(var) + eps);
                if (mu > 0) {
                    r[p].buf[i] = mu * r[p].buf[i] + step;
                    step = r[p].buf[i];
                }
                w -= lr * step;
            } else {
                double mu = setting(g, "momentum", strcmp(opt, "momentum") == 0 ? 0.9 : 0);
                if (mu != 0) {
                    r[p].buf[i] = t == 1 ? d : mu * r[p].buf[i] + d;
                    d = setting(g, "nesterov", 0) != 0 ? d + mu * r[p].buf[i] : r[p].buf[i];
                }
                w -= lr * d;
            }
            r[p].w[i] = w;
        }
}

static int check(const char *setting_text, const ast_program *prelude, ast_arena *arena) {
    char text[1024];
    snprintf(text, sizeof text, model_text, setting_text);
    src_file *f = src_from_string(setting_text, text);
    ast_program *prog = parse_program(f, arena);
    lower_options lo = {BATCH};
    ir_graph *g = diag_error_count() ? NULL : lower_program(prog, prelude, &lo);
    if (!g || ad_differentiate(g) || opt_lower(g) || ir_verify(g)) {
        printf("FAIL %s: does not compile%s%s\n", setting_text, g ? ": " : "", g ? g->error : "");
        diag_reset();
        if (g)
            ir_graph_free(g);
        src_free(f);
        return 1;
    }
    /* Leaves: random inputs, the params' initial values, zero state, hypers. */
    double **v = calloc((size_t)g->n_nodes, sizeof *v);
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *nd = &g->nodes[i];
        if (nd->op != IR_INPUT && nd->op != IR_PARAM && nd->op != IR_HYPER)
            continue;
        int64_t count = ir_numel_at(&nd->shape, BATCH);
        v[i] = calloc((size_t)count, sizeof **v);
        if (nd->op == IR_HYPER)
            v[i][0] = g->hypers[nd->index].value;
        else if (nd->op == IR_INPUT || g->params[nd->index].trainable)
            for (int64_t j = 0; j < count; j++)
                v[i][j] = test_uniform(-1, 1);
    }
    ref r[MAXP];
    double *grads[MAXP];
    int np = 0, trainable[MAXP];
    for (int p = 0; p < g->n_params && np < MAXP; p++) {
        if (!g->params[p].trainable)
            continue;
        int node = g->params[p].node;
        ref *x = &r[np];
        x->n = ir_numel_at(&g->nodes[node].shape, BATCH);
        x->w = malloc((size_t)x->n * sizeof(double));
        memcpy(x->w, v[node], (size_t)x->n * sizeof(double));
        x->buf = calloc((size_t)x->n, sizeof(double));
        x->m = calloc((size_t)x->n, sizeof(double));
        x->v = calloc((size_t)x->n, sizeof(double));
        x->gavg = calloc((size_t)x->n, sizeof(double));
        trainable[np++] = p;
    }
    /* Live: the gradients and every update. */
    int n_roots = g->n_updates + np;
    int *roots = malloc((size_t)n_roots * sizeof *roots);
    for (int i = 0; i < g->n_updates; i++)
        roots[i] = g->updates[i];
    for (int k = 0; k < np; k++)
        roots[g->n_updates + k] = g->params[trainable[k]].grad;
    unsigned char *live = calloc((size_t)g->n_nodes, 1);
    ir_mark_live(g, roots, n_roots, live);

    int failed = 0;
    double worst = 0;
    for (int t = 1; t <= STEPS && !failed; t++) {
        if (ir_eval(g, live, BATCH, v) != 0) {
            failed = 1;
            break;
        }
        for (int k = 0; k < np; k++) {
            grads[k] = malloc((size_t)r[k].n * sizeof(double));
            memcpy(grads[k], v[g->params[trainable[k]].grad], (size_t)r[k].n * sizeof(double));
        }
        /* The step's new values, copied out before the slots change. */
        double *next[256];
        int n_up = g->n_updates < 256 ? g->n_updates : 256;
        for (int i = 0; i < n_up; i++) {
            const ir_node *a = &g->nodes[g->updates[i]];
            int64_t count = ir_numel_at(&a->shape, BATCH);
            next[i] = malloc((size_t)count * sizeof(double));
            memcpy(next[i], v[a->inputs[1]], (size_t)count * sizeof(double));
        }
        ir_eval_release(g, live, v);
        for (int i = 0; i < n_up; i++) {
            const ir_node *a = &g->nodes[g->updates[i]];
            memcpy(v[a->inputs[0]], next[i], (size_t)ir_numel_at(&a->shape, BATCH) * sizeof(double));
            free(next[i]);
        }
        reference(g, r, np, grads, t);
        for (int k = 0; k < np; k++) {
            const double *got = v[g->params[trainable[k]].node];
            for (int64_t j = 0; j < r[k].n; j++) {
                double err = fabs(got[j] - r[k].w[j]) / fmax(1.0, fabs(r[k].w[j]));
                worst = fmax(worst, err);
                if (!(err < 1e-6) && !failed) {
                    printf("FAIL %s: step %d, %s[%lld] = %.12g, torch.optim formula gives %.12g\n", setting_text, t,
                           g->params[trainable[k]].name, (long long)j, got[j], r[k].w[j]);
                    failed = 1;
                }
            }
            free(grads[k]);
        }
    }
    if (!failed)
        printf("ok   %-70s %d steps, max difference %.2g\n", setting_text, STEPS, worst);
    for (int k = 0; k < np; k++) {
        free(r[k].w);
        free(r[k].buf);
        free(r[k].m);
        free(r[k].v);
        free(r[k].gavg);
    }
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == IR_INPUT || g->nodes[i].op == IR_PARAM || g->nodes[i].op == IR_HYPER)
            free(v[i]);
    free(v);
    free(live);
    free(roots);
    ir_graph_free(g);
    src_free(f);
    return failed;
}

int main(void) {
    ast_arena *arena = ast_arena_new();
    src_file *prelude_file = src_from_string("<prelude>", mdl_prelude_source);
    const ast_program *prelude = parse_program(prelude_file, arena);
    int failed = 0, total = 0;
    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++, total++)
        failed += check(settings[i], prelude, arena);
    src_free(prelude_file);
    ast_arena_free(arena);
    printf("%d passed, %d failed\n", total - failed, failed);
    return failed != 0;
}
