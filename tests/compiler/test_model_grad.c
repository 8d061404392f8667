/*
 * test_model_grad.c - whole models, including every prelude loss,
 * regularizer and layer, differentiated by mdlc's passes and checked
 * against finite differences in double precision.
 *
 * Each model is parsed with the prelude, lowered and differentiated exactly
 * as mdlc does; the reference interpreter then evaluates the loss and the
 * gradients at random inputs (at a batch below the compiled maximum) and
 * every parameter element's gradient is compared with a central
 * difference.  Models come from the snippets below and from the .mdl files
 * named on the command line (the shipped examples).
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

#define TEST_SEED 99
#include "../gradcheck.h"
#include "../test.h"

extern const char mdl_prelude_source[];

#define BATCH 3

static const char *const snippets[][2] = {
    {"mse", "input x: f32[B, 3]\ntarget y: f32[B, 3]\nparam w: f32[3] = normal(0, 1)\nloss mse(x * w, y)\n"},
    {"mae", "input x: f32[B, 3]\ntarget y: f32[B, 3]\nparam w: f32[3] = normal(0, 1)\nloss mae(x * w, y)\n"},
    {"huber", "input x: f32[B, 4]\ntarget y: f32[B, 4]\nparam w: f32[4] = normal(0, 1)\n"
              "loss huber(3 * x * w, y, delta = 0.7)\n"},
    {"l1", "input x: f32[B, 2]\nparam w: f32[2, 3] = normal(0, 1)\nloss mean(x @ w) + l1(w)\n"},
    {"l2", "input x: f32[B, 2]\nparam w: f32[2, 3] = normal(0, 1)\nloss mean(x @ w) + l2(w)\n"},
    {"elastic_net", "input x: f32[B, 2]\nparam w: f32[2, 3] = normal(0, 1)\n"
                    "loss mean(x @ w) + elastic_net(w, ratio = 0.3)\n"},
    {"dense", "input x: f32[B, 4]\ntarget y: f32[B, 2]\nh = tanh(dense(x, 5))\n"
              "loss mse(dense(h, 2), y)\n"},
    {"mean_over_batch", "input x: f32[B, 3]\nparam s: f32[3] = normal(0, 1)\n"
                        "loss mean(sum((x * s) ^ 2, axis = 1)) + mean(max(x * s, axis = 0))\n"},
    {"logsumexp", "input x: f32[B, 4]\nparam w: f32[4] = normal(0, 1)\n"
                  "loss mean(logsumexp(3 * x * w)) + sum(logsumexp(x * w, axis = 0))\n"},
    {"softmax", "input x: f32[B, 4]\ntarget y: f32[B, 4]\nparam w: f32[4] = normal(0, 1)\n"
                "loss sum(softmax(x * w) * y) + sum(softmax(x * w, axis = 0) * y)\n"},
    {"cross_entropy", "input x: f32[B, 4]\ntarget y: f32[B, 3]\nloss cross_entropy(dense(x, 3), y)\n"},
    {"binary_ce", "input x: f32[B, 4]\ntarget y: f32[B, 2]\nloss binary_cross_entropy(4 * dense(x, 2), y)\n"},
    {"activations", "input x: f32[B, 3]\nparam w: f32[3] = normal(0, 2)\nz = x * w + 0.1\n"
                    "loss mean(softplus(z) + leaky_relu(z, slope = 0.2) + elu(z) + silu(z) + clip(z, -0.5, 0.5) + gelu(z))\n"},
    {"sparse_ce", "input x: f32[B, 5]\ntarget y: i32[B]\nh = relu(dense(x, 6))\nlogits = dense(h, 4)\n"
                  "loss sparse_cross_entropy(logits, y) + 0.1 * label_smoothing_cross_entropy(logits, y)\n"
                  "metric acc = accuracy(logits, y)\n"},
    {"focal", "input x: f32[B, 5]\ntarget y: i32[B]\nloss focal_loss(dense(x, 3), y, gamma = 2.0)\n"},
    {"cnn", "input x: f32[B, 1, 7, 7]\ntarget y: i32[B]\nc = max_pool(relu(conv2d(x, 3, 3)), 2)\n"
            "c2 = avg_pool(tanh(conv2d(c, 2, 2, padding = 1)), 2)\n"
            "loss sparse_cross_entropy(dense(flatten(c2), 3), y)\n"},
    {"embedding", "input ids: i32[B, 3]\ntarget y: f32[B, 3, 2]\nloss mse(embedding(ids, 4, 2), y)\n"},
    {"sigmoid_bce", "input x: f32[B, 3]\ntarget y: f32[B]\nparam w: f32[3] = normal(0, 1)\n"
                    "p = sigmoid(x @ w)\nloss mean(-(y * log(p) + (1 - y) * log(1 - p)))\n"},
};

static int check_graph(const char *name, ir_graph *g) {
    if (ad_differentiate(g) != 0 || ir_verify(g) != 0) {
        printf("FAIL %-16s autodiff: %s\n", name, g->error);
        return 1;
    }
    double **v = calloc((size_t)g->n_nodes, sizeof *v);
    for (int i = 0; i < g->n_nodes; i++) {
        const ir_node *n = &g->nodes[i];
        if (n->op != IR_INPUT && n->op != IR_PARAM && n->op != IR_HYPER)
            continue;
        int64_t count = ir_numel_at(&n->shape, BATCH);
        v[i] = malloc((size_t)count * sizeof **v);
        for (int64_t j = 0; j < count; j++)
            v[i][j] = n->dtype == IR_I32 ? (double)(int)test_uniform(0, 3) : test_uniform(-1, 1);
        if (n->op == IR_INPUT && g->inputs[n->index].is_target && n->dtype == IR_F32)
            for (int64_t j = 0; j < count; j++) /* targets in (0, 1) suit every loss above */
                v[i][j] = test_uniform(0.05, 0.95);
    }
    unsigned char *live = calloc((size_t)g->n_nodes, 1), *fwd = calloc((size_t)g->n_nodes, 1);
    int *roots = malloc((size_t)(g->n_params + 1) * sizeof *roots), n_roots = 0;
    roots[n_roots++] = g->loss;
    for (int p = 0; p < g->n_params; p++)
        if (g->params[p].grad >= 0)
            roots[n_roots++] = g->params[p].grad;
    ir_mark_live(g, roots, n_roots, live);
    ir_mark_live(g, &g->loss, 1, fwd);
    int failures = 0, checked = 0;
    double worst = 0;
    for (int p = 0; p < g->n_params && !failures; p++) {
        if (!g->params[p].trainable)
            continue;
        int w = g->params[p].node;
        int64_t count = ir_numel_at(&g->nodes[w].shape, BATCH);
        if (ir_eval(g, live, BATCH, v) != 0) {
            failures++;
            break;
        }
        double *analytic = malloc((size_t)count * sizeof *analytic);
        memcpy(analytic, v[g->params[p].grad], (size_t)count * sizeof *analytic);
        ir_eval_release(g, live, v);
        failures += gradcheck_param(name, g, fwd, BATCH, v, p, analytic, &checked, &worst);
        free(analytic);
    }
    if (!failures && checked == 0) { /* nothing compared is no pass */
        printf("FAIL %-16s no gradient element was checked\n", name);
        failures++;
    }
    if (!failures)
        printf("ok   %-16s %4d gradient elements of %d parameters, max error %.2g\n", name, checked, g->n_params,
               worst);
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == IR_INPUT || g->nodes[i].op == IR_PARAM || g->nodes[i].op == IR_HYPER)
            free(v[i]);
    free(v);
    free(live);
    free(fwd);
    free(roots);
    return failures != 0;
}

static int check_source(const char *name, src_file *file, const ast_program *prelude, ast_arena *arena) {
    ast_program *prog = parse_program(file, arena);
    if (diag_error_count()) {
        printf("FAIL %-16s does not parse\n", name);
        diag_reset();
        return 1;
    }
    lower_options lo = {4};
    ir_graph *g = lower_program(prog, prelude, &lo);
    if (!g) {
        printf("FAIL %-16s does not lower\n", name);
        diag_reset();
        return 1;
    }
    int failed = check_graph(name, g);
    ir_graph_free(g);
    return failed;
}

int main(int argc, char **argv) {
    ast_arena *arena = ast_arena_new();
    src_file *prelude_file = src_from_string("<prelude>", mdl_prelude_source);
    const ast_program *prelude = parse_program(prelude_file, arena);
    int failed = 0, total = 0;
    for (size_t i = 0; i < sizeof snippets / sizeof snippets[0]; i++, total++) {
        src_file *f = src_from_string(snippets[i][0], snippets[i][1]);
        failed += check_source(snippets[i][0], f, prelude, arena);
        src_free(f);
    }
    for (int i = 1; i < argc; i++, total++) {
        src_file *f = src_open(argv[i]);
        if (!f) {
            printf("FAIL cannot open %s\n", argv[i]);
            failed++;
            continue;
        }
        const char *base = strrchr(argv[i], '/');
        failed += check_source(base ? base + 1 : argv[i], f, prelude, arena);
        src_free(f);
    }
    src_free(prelude_file);
    ast_arena_free(arena);
    printf("%d passed, %d failed\n", total - failed, failed);
    return failed != 0;
}
