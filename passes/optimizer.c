/*
 * optimizer.c - the parameter update, lowered into the graph.
 *
 * The update is built from ordinary nodes so that one training step
 * (forward, backward, update) is one compiled function, fused and planned
 * as a whole.  Optimizer state (momentum buffers, Adam's moments and step
 * count) are non-trainable params: they live in the arena, are saved in
 * checkpoints and are written back with ASSIGN, like the parameters.  The
 * learning rate is a hyper slot the runtime writes before each step, so
 * `--lr` and schedules need no recompilation.
 *
 * The formulas follow PyTorch's torch.optim (weight decay added to the
 * gradient, except AdamW's decoupled decay; Adam's bias correction with eps
 * added after the square root of the corrected second moment; RMSprop's
 * eps outside the square root), so runs can be compared number for number.
 * clip_norm scales all gradients together when their global L2 norm
 * exceeds it, as torch.nn.utils.clip_grad_norm_ does before the step.
 * Which rule each optimizer updates with, and the defaults of its
 * settings, come from ir/optimizers.def, the table the frontend checks
 * the train statement against.
 */
#include <string.h>

#include "passes.h"

typedef struct opt {
    ir_graph *g;
    int failed;
    int lr;
} opt;

static int ok(opt *o, int id) {
    if (id < 0)
        o->failed = 1;
    return id;
}
static int bin(opt *o, ir_op op, int a, int b) {
    return a < 0 || b < 0 ? -1 : ok(o, ir_add(o->g, op, a, b, -1));
}
static int k(opt *o, double v) { return ok(o, ir_scalar(o->g, v)); }

typedef enum { RULE_SGD, RULE_ADAM, RULE_RMSPROP } update_rule;

static const struct optimizer {
    const char *name;
    update_rule rule;
    int decoupled_decay;
} optimizers[] = {
#define OPTIMIZER(name, rule, decoupled_decay) {#name, RULE_##rule, decoupled_decay},
#include "optimizers.def"
};

static const struct opt_setting {
    const char *optimizer, *key;
    double fallback;
} settings[] = {
#define OPT_SETTING(optimizer, key, fallback) {#optimizer, #key, fallback},
#include "optimizers.def"
};

/* The model's value of setting `name`, else the optimizer's default
 * (ir/optimizers.def; 0 for a setting the optimizer does not take). */
static double arg(const ir_graph *g, const char *name) {
    for (int i = 0; i < g->n_opt_args; i++)
        if (strcmp(g->opt_arg_names[i], name) == 0)
            return g->opt_arg_values[i];
    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++)
        if (strcmp(settings[i].optimizer, g->optimizer) == 0 && strcmp(settings[i].key, name) == 0)
            return settings[i].fallback;
    return 0;
}

/* A zero-initialised state tensor shaped like param p, named opt.<what>.<p>. */
static int state_like(opt *o, int p, const char *what) {
    ir_graph *g = o->g;
    char name[512];
    snprintf(name, sizeof name, "opt.%s.%s", what, g->params[p].name);
    ir_shape s = g->nodes[g->params[p].node].shape;
    return ok(o, ir_add_param(g, name, IR_F32, &s, 0, IR_INIT_NONE, 0, 0, 0, 0));
}

static void update(opt *o, int slot, int value) {
    if (slot < 0 || value < 0) {
        o->failed = 1;
        return;
    }
    int id = ok(o, ir_assign(o->g, slot, value));
    if (id < 0)
        return;
    ir_graph *g = o->g;
    if (g->n_updates == g->cap_updates) {
        g->cap_updates = g->cap_updates ? 2 * g->cap_updates : 16;
        g->updates = ir_xrealloc(g->updates, (size_t)g->cap_updates * sizeof *g->updates);
    }
    g->updates[g->n_updates++] = id;
}

/* w <- w - lr * (g [+ momentum buffer]) */
static void sgd(opt *o, int p, int w, int grad) {
    double mu = arg(o->g, "momentum");
    int nesterov = arg(o->g, "nesterov") != 0;
    int step = grad;
    if (mu != 0) {
        /* buf <- mu buf + g;  step = nesterov ? g + mu buf : buf */
        int buf = state_like(o, p, "momentum");
        int nb = bin(o, IR_ADD, bin(o, IR_MUL, k(o, mu), buf), grad);
        update(o, buf, nb);
        step = nesterov ? bin(o, IR_ADD, grad, bin(o, IR_MUL, k(o, mu), nb)) : nb;
    }
    update(o, w, bin(o, IR_SUB, w, bin(o, IR_MUL, o->lr, step)));
}

/* m <- b1 m + (1-b1) g;  v <- b2 v + (1-b2) g^2;
 * w <- wv - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps), where wv is
 * w, or AdamW's decayed w (1 - lr wd).  Computed in the form of section 2
 * of the Adam paper (Kingma and Ba), the bias corrections folded into two
 * scalars, c = sqrt(1 - b2^t):
 *     w <- wv - (lr c / (1 - b1^t)) m / (sqrt(v) + eps c)
 * which is the same number up to rounding with one square root and one
 * division per element.  The update of a large weight is bound by the
 * divider (square roots and divisions share it): the form above took
 * three divisions and a root, torch.optim.Adam's two and a root. */
static void adam(opt *o, int p, int w, int wv, int grad, int t) {
    double b1 = arg(o->g, "beta1"), b2 = arg(o->g, "beta2"), eps = arg(o->g, "eps");
    int m = state_like(o, p, "m"), v = state_like(o, p, "v");
    int nm = bin(o, IR_ADD, bin(o, IR_MUL, k(o, b1), m), bin(o, IR_MUL, k(o, 1 - b1), grad));
    int nv = bin(o, IR_ADD, bin(o, IR_MUL, k(o, b2), v),
                 bin(o, IR_MUL, k(o, 1 - b2), bin(o, IR_MUL, grad, grad)));
    int bc1 = bin(o, IR_SUB, k(o, 1), bin(o, IR_POW, k(o, b1), t));
    int bc2 = bin(o, IR_SUB, k(o, 1), bin(o, IR_POW, k(o, b2), t));
    int c = ok(o, bc2 < 0 ? -1 : ir_add(o->g, IR_SQRT, bc2, -1, -1));
    int step_size = bin(o, IR_DIV, bin(o, IR_MUL, o->lr, c), bc1);
    int root_v = ok(o, nv < 0 ? -1 : ir_add(o->g, IR_SQRT, nv, -1, -1));
    int denom = bin(o, IR_ADD, root_v, bin(o, IR_MUL, k(o, eps), c));
    update(o, m, nm);
    update(o, v, nv);
    update(o, w, bin(o, IR_SUB, wv, bin(o, IR_DIV, bin(o, IR_MUL, step_size, nm), denom)));
}

/* v <- alpha v + (1-alpha) g^2;  avg = sqrt(v [- mean_g^2]) + eps;
 * w <- w - lr g / avg, or through a momentum buffer: buf <- mu buf + g / avg. */
static void rmsprop(opt *o, int p, int w, int grad) {
    double alpha = arg(o->g, "alpha"), eps = arg(o->g, "eps"), mu = arg(o->g, "momentum");
    int centered = arg(o->g, "centered") != 0;
    int v = state_like(o, p, "v");
    int nv = bin(o, IR_ADD, bin(o, IR_MUL, k(o, alpha), v), bin(o, IR_MUL, k(o, 1 - alpha), bin(o, IR_MUL, grad, grad)));
    update(o, v, nv);
    int var = nv;
    if (centered) {
        int ga = state_like(o, p, "g");
        int nga = bin(o, IR_ADD, bin(o, IR_MUL, k(o, alpha), ga), bin(o, IR_MUL, k(o, 1 - alpha), grad));
        update(o, ga, nga);
        var = bin(o, IR_SUB, nv, bin(o, IR_MUL, nga, nga));
    }
    int avg = bin(o, IR_ADD, ok(o, var < 0 ? -1 : ir_add(o->g, IR_SQRT, var, -1, -1)), k(o, eps));
    int step = bin(o, IR_DIV, grad, avg);
    if (mu != 0) {
        int buf = state_like(o, p, "momentum");
        step = bin(o, IR_ADD, bin(o, IR_MUL, k(o, mu), buf), step);
        update(o, buf, step);
    }
    update(o, w, bin(o, IR_SUB, w, bin(o, IR_MUL, o->lr, step)));
}

/* The factor every gradient is multiplied by under clip_norm = c:
 * min(1, c / (||g|| + 1e-6)), ||g|| over all trainable parameters. */
static int clip_factor(opt *o, double c) {
    ir_graph *g = o->g;
    int total = -1;
    for (int p = 0; p < g->n_params; p++) {
        if (!g->params[p].trainable || g->params[p].grad < 0)
            continue;
        int gr = g->params[p].grad, rank = g->nodes[gr].shape.rank;
        int sq = bin(o, IR_MUL, gr, gr);
        if (rank > 0 && sq >= 0)
            sq = ok(o, ir_reduce(g, IR_REDUCE_SUM, sq, (1u << rank) - 1, 0));
        total = total < 0 ? sq : bin(o, IR_ADD, total, sq);
    }
    if (total < 0)
        return k(o, 1);
    int norm = ok(o, ir_add(g, IR_SQRT, total, -1, -1));
    return bin(o, IR_MIN, k(o, 1), bin(o, IR_DIV, k(o, c), bin(o, IR_ADD, norm, k(o, 1e-6))));
}

int opt_lower(ir_graph *g) {
    opt o = {g, 0, -1};
    const struct optimizer *which = NULL;
    for (size_t i = 0; i < sizeof optimizers / sizeof optimizers[0]; i++)
        if (strcmp(optimizers[i].name, g->optimizer) == 0)
            which = &optimizers[i];
    if (!which) { /* the frontend accepts only the table's names */
        snprintf(g->error, sizeof g->error, "unknown optimizer '%s'", g->optimizer);
        return -1;
    }
    int is_adam = which->rule == RULE_ADAM, decoupled = which->decoupled_decay;
    o.lr = ok(&o, ir_add_hyper(g, "lr", arg(g, "lr")));
    double wd = arg(g, "weight_decay");
    double clip = arg(g, "clip_norm");
    int scale = clip > 0 ? clip_factor(&o, clip) : -1;
    int t = -1;
    if (is_adam) { /* the step count t, shared by every parameter */
        ir_shape s = ir_shape_scalar();
        int steps = ok(&o, ir_add_param(g, "opt.step", IR_F32, &s, 0, IR_INIT_NONE, 0, 0, 0, 0));
        t = bin(&o, IR_ADD, steps, k(&o, 1));
        update(&o, steps, t);
    }
    int n_params = g->n_params; /* state added below is not updated itself */
    for (int p = 0; p < n_params && !o.failed; p++) {
        if (!g->params[p].trainable)
            continue;
        int w = g->params[p].node, grad = g->params[p].grad;
        if (scale >= 0)
            grad = bin(&o, IR_MUL, grad, scale);
        if (wd != 0 && !decoupled)
            grad = bin(&o, IR_ADD, grad, bin(&o, IR_MUL, k(&o, wd), w));
        int wv = w;
        if (wd != 0 && decoupled) /* decoupled: w (1 - lr wd), then the Adam step */
            wv = bin(&o, IR_MUL, w, bin(&o, IR_SUB, k(&o, 1), bin(&o, IR_MUL, o.lr, k(&o, wd))));
        if (is_adam)
            adam(&o, p, w, wv, grad, t);
        else if (which->rule == RULE_RMSPROP)
            rmsprop(&o, p, w, grad);
        else
            sgd(&o, p, w, grad);
    }
    if (o.failed && !g->error[0])
        snprintf(g->error, sizeof g->error, "building the optimizer update failed");
    return o.failed ? -1 : 0;
}
