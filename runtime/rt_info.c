/*
 * rt_info.c - `info`: what the compiled model is, read from its descriptor.
 *
 * Parameters with their shapes, sizes and initialisers, optimizer state,
 * the data tensors (batch dimensions shown as B), memory (arena and the
 * reused scratch part), FLOPs per step, the hyper-parameters with their
 * defaults and the `train` block's.
 * With --load it also loads the checkpoint, which checks every tensor in
 * it against the model, and reports the result.
 */
#include "rt_internal.h"

#include <string.h>

/* What a persistent tensor is: a parameter, optimizer state, or model
 * state (a `state` declaration, carried from step to step). */
enum { KIND_OPTIMIZER = 0, KIND_PARAMETER = 1, KIND_STATE = 2, KIND_CACHE = 3 };
static int kind_of(const rt_param *p) {
    return p->state == 2 ? KIND_CACHE : p->state ? KIND_STATE : p->trainable ? KIND_PARAMETER : KIND_OPTIMIZER;
}

static void print_param_table(const rt_model *m, int kind) {
    int any = 0;
    for (int i = 0; i < m->n_params; i++) {
        const rt_param *p = &m->params[i];
        if (kind_of(p) != kind)
            continue;
        if (!any++)
            printf("  %-20s %-5s %-16s %10s %10s  %s\n", "name", "dtype", "shape", "elements", "bytes", "init");
        char shape[128], init[64];
        rt_shape_string(&p->t, shape, sizeof shape);
        rt_init_describe(p, init, sizeof init);
        printf("  %-20s %-5s %-16s %10lld %10lld  %s\n", p->t.name, rt_dtype_name(p->t.dtype), shape,
               (long long)rt_elems(&p->t, 1), (long long)rt_bytes(&p->t, 1), init);
    }
    if (!any)
        printf("  (none)\n");
}

static void print_tensors(const char *title, const rt_tensor *t, int n) {
    printf("%s:", title);
    if (n == 0)
        printf(" (none)");
    printf("\n");
    for (int i = 0; i < n; i++) {
        char shape[128];
        rt_shape_string(&t[i], shape, sizeof shape);
        printf("  %-20s %s%s\n", t[i].name, rt_dtype_name(t[i].dtype), shape);
    }
}

static int64_t count_params(const rt_model *m, int kind, int64_t *bytes) {
    int64_t n = 0;
    *bytes = 0;
    for (int i = 0; i < m->n_params; i++)
        if (kind_of(&m->params[i]) == kind) {
            n += rt_elems(&m->params[i].t, 1);
            *bytes += rt_bytes(&m->params[i].t, 1);
        }
    return n;
}

static void print_sizes(const rt_model *m) {
    int64_t bytes, state_bytes;
    int64_t n = count_params(m, KIND_PARAMETER, &bytes);
    int64_t state = count_params(m, KIND_OPTIMIZER, &state_bytes);
    char b1[32], b2[32], arena[32], scratch[32], train[32], predict[32];
    rt_format_bytes(bytes, b1, sizeof b1);
    rt_format_bytes(state_bytes, b2, sizeof b2);
    rt_format_bytes(m->arena_bytes, arena, sizeof arena);
    rt_format_bytes(m->scratch_bytes, scratch, sizeof scratch);
    rt_format_count((double)m->flops_per_train_step, train, sizeof train);
    rt_format_count((double)m->flops_per_predict_step, predict, sizeof predict);
    printf("\ntotal parameters: %lld (%s); optimizer state: %lld (%s)\n", (long long)n, b1, (long long)state, b2);
    printf("arena: %lld bytes (%s), of which scratch %lld (%s)\n", (long long)m->arena_bytes, arena,
           (long long)m->scratch_bytes, scratch);
    printf("max batch: %lld\n", (long long)m->max_batch);
    printf("FLOPs per step at batch %lld: train %s, predict %s\n", (long long)m->max_batch, train, predict);
}

static void print_train_block(const rt_model *m) {
    printf("train: %s", m->optimizer ? m->optimizer : "(none)");
    printf(", batch %lld, epochs %lld", (long long)m->batch, (long long)m->epochs);
    const rt_hyper *lr = rt_find_hyper(m, "lr");
    if (lr)
        printf(", lr %g", lr->value);
    if (m->schedule) {
        char sched[256];
        rt_schedule_describe(m, sched, sizeof sched);
        printf(", schedule %s", sched);
    }
    printf(", seed %llu\n", (unsigned long long)m->seed);
    printf("entry points:%s%s%s%s%s\n", m->predict_step ? " predict" : "", m->eval_step ? " eval" : "",
           m->grad_step ? " grad" : "", m->train_step ? " train" : "", m->generate_step ? " generate" : "");
}

/* The model's own hypers with their defaults, then the runtime's. */
static void print_hypers(const rt_model *m) {
    printf("hyper-parameters (set with --hyper NAME=X, swept with --sweep NAME=X,Y,...):\n");
    int own = 0, runtime = 0;
    for (int i = 0; i < m->n_hypers; i++) {
        const char *name = m->hypers[i].name;
        if (rt_hyper_is_runtime(name)) {
            runtime++;
            continue;
        }
        if (!own++)
            printf("  %-20s %s\n", "name", "default");
        printf("  %-20s %g%s\n", name, m->hypers[i].value,
               strcmp(name, "lr") == 0 ? "  (the optimizer's learning rate; also --lr)" : "");
    }
    if (!own)
        printf("  (none)\n");
    for (int i = 0, k = 0; i < m->n_hypers; i++)
        if (rt_hyper_is_runtime(m->hypers[i].name))
            printf("%s%s", k++ ? ", " : "  set by the runtime before every step: ", m->hypers[i].name);
    if (runtime)
        printf("\n");
}

static int check_checkpoint(const rt_model *m, const char *path) {
    char *arena = rt_setup(m, m->seed, path, NULL);
    if (!arena)
        return -1;
    printf("\ncheckpoint %s: loads, every tensor matches the model\n", path);
    rt_arena_free(arena);
    return 0;
}

int rt_cmd_info(const rt_model *m, const rt_opts *o) {
    printf("model %s (compiled from %s)\n\nparameters:\n", m->name, m->source ? m->source : "?");
    print_param_table(m, KIND_PARAMETER);
    printf("optimizer state:\n");
    print_param_table(m, KIND_OPTIMIZER);
    int64_t state_bytes;
    if (count_params(m, KIND_STATE, &state_bytes) > 0) {
        printf("state (carried from step to step, zeroed at each epoch, eval and generate):\n");
        print_param_table(m, KIND_STATE);
    }
    if (count_params(m, KIND_CACHE, &state_bytes) > 0) {
        printf("generate's caches (keys and values so far, zeroed at its start, not saved):\n");
        print_param_table(m, KIND_CACHE);
    }
    print_tensors("inputs", m->inputs, m->n_inputs);
    print_tensors("targets", m->targets, m->n_targets);
    print_tensors("outputs", m->outputs, m->n_outputs);
    print_tensors("metrics", m->metrics, m->n_metrics);
    if (m->has_loss)
        print_tensors("loss", &m->loss, 1);
    print_hypers(m);
    print_sizes(m);
    print_train_block(m);
    if (o->load && check_checkpoint(m, o->load))
        return RT_EXIT_FAIL;
    return 0;
}
