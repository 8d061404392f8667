/*
 * rt_sched.c - learning-rate schedules.
 *
 * The `train` block may name a schedule with settings (mdlrt.h); the
 * training loop sets hyper-parameter "lr" before every train_step to
 *
 *     constant     lr
 *     step         lr * gamma^floor(e / step_size)      step_size 1, gamma 0.1
 *     exponential  lr * gamma^e                          gamma 0.9
 *     cosine       min_lr + (lr - min_lr) (1 + cos(pi s / S)) / 2   min_lr 0
 *
 * times min(1, (s + 1) / warmup) when warmup > 0 (a linear ramp from
 * lr / warmup over the first `warmup` steps; any schedule takes it).  Here
 * lr is the base rate (the model's, or --lr), s the 0-based step of the
 * run, e = floor(s / steps_per_epoch) its 0-based epoch, S the run's total
 * number of steps; step_size is in epochs.  Defaults follow the names.
 */
#include "rt_internal.h"

#include <math.h>
#include <string.h>

static const struct {
    const char *name;
    int kind;
    const char *settings[4];
} schedules[] = {
    {"constant", RT_SCHED_CONSTANT, {"warmup", NULL}},
    {"step", RT_SCHED_STEP, {"step_size", "gamma", "warmup", NULL}},
    {"exponential", RT_SCHED_EXPONENTIAL, {"gamma", "warmup", NULL}},
    {"cosine", RT_SCHED_COSINE, {"min_lr", "warmup", NULL}},
};

#define N_SCHEDULES (int)(sizeof schedules / sizeof schedules[0])

static int known_setting(int k, const char *name) {
    for (int i = 0; schedules[k].settings[i]; i++)
        if (strcmp(schedules[k].settings[i], name) == 0)
            return 1;
    return 0;
}

/* The descriptor's schedule, checked, with defaults filled in. */
int rt_schedule_resolve(const rt_model *m, rt_schedule *s) {
    memset(s, 0, sizeof *s);
    s->kind = RT_SCHED_CONSTANT;
    s->name = "constant";
    s->step_size = 1;
    s->gamma = m->schedule && strcmp(m->schedule, "exponential") == 0 ? 0.9 : 0.1;
    if (!m->schedule) {
        if (m->n_sched_args != 0)
            return rt_error("model descriptor: schedule settings without a schedule");
        return 0;
    }
    int k = -1;
    for (int i = 0; i < N_SCHEDULES; i++)
        if (strcmp(schedules[i].name, m->schedule) == 0)
            k = i;
    if (k < 0)
        return rt_error("model descriptor: unknown learning-rate schedule \"%s\" (known: constant, step, "
                        "exponential, cosine)",
                        m->schedule);
    s->kind = schedules[k].kind;
    s->name = schedules[k].name;
    if (m->n_sched_args < 0 || m->n_sched_args > RT_SCHED_MAX_ARGS ||
        (m->n_sched_args > 0 && (!m->sched_arg_names || !m->sched_arg_values)))
        return rt_error("model descriptor: bad schedule settings");
    for (int i = 0; i < m->n_sched_args; i++) {
        const char *name = m->sched_arg_names[i];
        double v = m->sched_arg_values[i];
        if (!name || !known_setting(k, name))
            return rt_error("model descriptor: schedule %s has no setting \"%s\"", s->name, name ? name : "?");
        if (!isfinite(v) || v < 0 || (strcmp(name, "step_size") == 0 && v <= 0))
            return rt_error("model descriptor: schedule %s: %s = %g is not %s", s->name, name, v,
                            strcmp(name, "step_size") == 0 ? "a number > 0" : "a finite number >= 0");
        if (strcmp(name, "step_size") == 0)
            s->step_size = v;
        else if (strcmp(name, "gamma") == 0)
            s->gamma = v;
        else if (strcmp(name, "min_lr") == 0)
            s->min_lr = v;
        else
            s->warmup = v;
    }
    return 0;
}

/* "cosine(min_lr=1e-05, warmup=100)": the schedule as the model gave it. */
void rt_schedule_describe(const rt_model *m, char *buf, size_t size) {
    size_t used = (size_t)snprintf(buf, size, "%s(", m->schedule ? m->schedule : "constant");
    for (int i = 0; i < m->n_sched_args && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%s=%g", i ? ", " : "", m->sched_arg_names[i],
                                 m->sched_arg_values[i]);
    if (used < size)
        snprintf(buf + used, size - used, ")");
}

double rt_schedule_lr(const rt_schedule *s, double base, int64_t step, int64_t steps_per_epoch, int64_t total_steps) {
    double epoch = (double)(step / (steps_per_epoch > 0 ? steps_per_epoch : 1));
    double lr = base;
    switch (s->kind) {
    case RT_SCHED_STEP: lr = base * pow(s->gamma, floor(epoch / s->step_size)); break;
    case RT_SCHED_EXPONENTIAL: lr = base * pow(s->gamma, epoch); break;
    case RT_SCHED_COSINE: {
        double t = total_steps > 0 ? (double)step / (double)total_steps : 0;
        lr = s->min_lr + (base - s->min_lr) * (1 + cos(M_PI * (t < 1 ? t : 1))) / 2;
        break;
    }
    default: break;
    }
    if (s->warmup > 0 && (double)(step + 1) < s->warmup)
        lr *= (double)(step + 1) / s->warmup;
    return lr;
}
