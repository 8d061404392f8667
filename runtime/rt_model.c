/*
 * rt_model.c - reading the descriptor that mdlc generates.
 *
 * The descriptor is trusted to come from the compiler, but a compiler has
 * bugs and a runtime that writes outside its arena is hard to debug, so
 * rt_model_check() verifies every slot against the arena once at start-up,
 * and, where the model has the f64 entries, every slot gradcheck uses
 * against the f64 arena.
 * The rest of the file answers questions about tensors: how many elements
 * at a given batch size, where one sample lives in a batched slot, how to
 * print a shape, what to call the k-th CSV column of a tensor.
 */
#include "rt_internal.h"

#include <string.h>

/* Bigger than any tensor we could allocate, small enough not to overflow. */
#define RT_MAX_ELEMS ((int64_t)1 << 40)

static int batch_dims(const rt_tensor *t) {
    int n = 0;
    for (int i = 0; i < t->rank; i++)
        n += (t->batch_mask >> i) & 1;
    return n;
}

int64_t rt_elems(const rt_tensor *t, int64_t batch) {
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++)
        n *= ((t->batch_mask >> i) & 1) ? batch : t->dims[i];
    return n;
}

int64_t rt_bytes(const rt_tensor *t, int64_t batch) { return 4 * rt_elems(t, batch); }

/* [T, B, H] -> outer T, inner H: sample i of a batch of b lives at
 * elements (o * b + i) * inner + k for o < outer, k < inner. */
rt_layout rt_layout_of(const rt_tensor *t) {
    rt_layout l = {0, 1, 1, 1};
    for (int i = 0; i < t->rank; i++) {
        if ((t->batch_mask >> i) & 1)
            l.has_batch = 1;
        else if (l.has_batch)
            l.inner *= t->dims[i];
        else
            l.outer *= t->dims[i];
    }
    if (!l.has_batch) {
        l.inner *= l.outer;
        l.outer = 1;
    }
    l.sample = l.outer * l.inner;
    return l;
}

const char *rt_dtype_name(int dtype) { return dtype == RT_I32 ? "i32" : "f32"; }

/* "[B, 2]"; a scalar is "[]". */
void rt_shape_string(const rt_tensor *t, char *buf, size_t size) {
    size_t used = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < t->rank && used < size; i++) {
        const char *sep = i ? ", " : "";
        if ((t->batch_mask >> i) & 1)
            used += (size_t)snprintf(buf + used, size - used, "%sB", sep);
        else
            used += (size_t)snprintf(buf + used, size - used, "%s%lld", sep, (long long)t->dims[i]);
    }
    if (used < size)
        snprintf(buf + used, size - used, "]");
}

/* Element k of one sample of t as an index per non-batch dimension,
 * outermost first (row-major); returns how many there are. */
int rt_sample_index(const rt_tensor *t, int64_t k, int64_t index[RT_MAX_RANK]) {
    int n = 0;
    for (int i = 0; i < t->rank; i++)
        n += !((t->batch_mask >> i) & 1);
    for (int i = t->rank - 1, j = n; i >= 0; i--) {
        if ((t->batch_mask >> i) & 1)
            continue;
        index[--j] = k % t->dims[i];
        k /= t->dims[i];
    }
    return n;
}

/* The name of element k of one sample: `y`, `y[2]` or `y[1][0]`. */
void rt_column_name(const rt_tensor *t, int64_t k, char *buf, size_t size) {
    int64_t index[RT_MAX_RANK];
    int n = rt_sample_index(t, k, index);
    size_t used = (size_t)snprintf(buf, size, "%s", t->name);
    for (int i = 0; i < n && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "[%lld]", (long long)index[i]);
}

const rt_hyper *rt_find_hyper(const rt_model *m, const char *name) {
    for (int i = 0; i < m->n_hypers; i++)
        if (strcmp(m->hypers[i].name, name) == 0)
            return &m->hypers[i];
    return NULL;
}

int rt_hyper_index(const rt_model *m, const char *name) {
    const rt_hyper *h = rt_find_hyper(m, name);
    return h ? (int)(h - m->hypers) : -1;
}

/* The hyper-parameters the runtime writes itself before every step, which
 * no option may set: dropout's "training" and "step", the recurrences'
 * "scan_steps" and generation's "position". */
int rt_hyper_is_runtime(const char *name) {
    return strcmp(name, "training") == 0 || strcmp(name, "step") == 0 || strcmp(name, "scan_steps") == 0 ||
           strcmp(name, "position") == 0;
}

/* Writes every hyper-parameter slot: values[i] (the descriptor's values
 * when values is NULL), except that "training" and "step", where the model
 * has them, get the values given here, and "scan_steps" gets 0 (the whole
 * recurrence; only `generate` asks for less, after this). */
void rt_write_hypers(const rt_model *m, char *arena, const float *values, double training, double step) {
    for (int i = 0; i < m->n_hypers; i++) {
        const char *name = m->hypers[i].name;
        float v = values ? values[i] : (float)m->hypers[i].value;
        if (strcmp(name, "training") == 0)
            v = (float)training;
        else if (strcmp(name, "step") == 0)
            v = (float)step;
        else if (strcmp(name, "scan_steps") == 0)
            v = 0;
        memcpy(arena + m->hypers[i].offset, &v, sizeof v);
    }
}

/* Sets one hyper-parameter slot, if the model has it. */
void rt_set_hyper(const rt_model *m, char *arena, const char *name, float value) {
    const rt_hyper *h = rt_find_hyper(m, name);
    if (h)
        memcpy(arena + h->offset, &value, sizeof value);
}

/* Zeroes every `state` slot, all max_batch rows of it: the recurrences
 * start afresh (a new epoch, an evaluation, `generate`). */
void rt_zero_state_rows(const rt_model *m, char *arena, int64_t batch) {
    for (int i = 0; i < m->n_params; i++)
        if (m->params[i].state)
            memset(arena + m->params[i].t.offset, 0, (size_t)rt_bytes(&m->params[i].t, batch));
}

void rt_zero_state(const rt_model *m, char *arena) { rt_zero_state_rows(m, arena, m->max_batch); }

float rt_scalar(const char *arena, const rt_tensor *t) {
    float v;
    memcpy(&v, arena + t->offset, sizeof v);
    return v;
}

static int check_slot(const rt_model *m, const char *what, int64_t offset, int64_t bytes, const char *name) {
    if (offset < 0 || offset % 4 != 0 || bytes < 0 || offset > m->arena_bytes - bytes)
        return rt_error("model descriptor: %s \"%s\" at byte %lld (%lld bytes) lies outside the %lld-byte arena", what,
                        name, (long long)offset, (long long)bytes, (long long)m->arena_bytes);
    return 0;
}

static int check_tensor(const rt_model *m, const char *what, const rt_tensor *t, int min_batch, int max_batch) {
    if (!t->name || !t->name[0])
        return rt_error("model descriptor: a %s has no name", what);
    if ((t->dtype != RT_F32 && t->dtype != RT_I32) || t->rank < 0 || t->rank > RT_MAX_RANK ||
        (t->batch_mask >> t->rank) != 0)
        return rt_error("model descriptor: %s \"%s\" has a bad dtype, rank or batch mask", what, t->name);
    int64_t n = 1;
    for (int i = 0; i < t->rank; i++) {
        if (t->dims[i] < 1 || t->dims[i] > RT_MAX_ELEMS / n)
            return rt_error("model descriptor: %s \"%s\" has dimension %d of size %lld", what, t->name, i,
                            (long long)t->dims[i]);
        n *= t->dims[i];
    }
    int nb = batch_dims(t);
    if (nb < min_batch || nb > max_batch)
        return rt_error("model descriptor: %s \"%s\" has %d batch dimensions", what, t->name, nb);
    return check_slot(m, what, t->offset, rt_bytes(t, m->max_batch), t->name);
}

static int check_scalar(const rt_model *m, const char *what, const rt_tensor *t) {
    if (check_tensor(m, what, t, 0, 0))
        return -1;
    if (t->rank != 0 || t->dtype != RT_F32)
        return rt_error("model descriptor: %s \"%s\" is not an f32 scalar", what, t->name);
    return 0;
}

static int check_params(const rt_model *m) {
    for (int i = 0; i < m->n_params; i++) {
        const rt_param *p = &m->params[i];
        if (check_tensor(m, "parameter", &p->t, 0, p->state ? 1 : 0))
            return -1;
        if (p->state && p->trainable)
            return rt_error("model descriptor: state \"%s\" is marked trainable", p->t.name);
        if (strcmp(p->t.name, "__metadata__") == 0)
            return rt_error("model descriptor: a parameter is named __metadata__");
        for (int j = 0; j < i; j++)
            if (strcmp(m->params[j].t.name, p->t.name) == 0)
                return rt_error("model descriptor: two parameters are named \"%s\"", p->t.name);
        if (p->trainable && m->grad_step && check_slot(m, "gradient of", p->grad_offset, rt_bytes(&p->t, 1), p->t.name))
            return -1;
    }
    return 0;
}

static int check_list(const rt_model *m, const char *what, int n, const rt_tensor *t, int min_batch) {
    for (int i = 0; i < n; i++)
        if (check_tensor(m, what, &t[i], min_batch, 1))
            return -1;
    return 0;
}

/* The f64 arena (mdlrt.h): f32 tensors are 8-byte doubles there. */
static int64_t bytes_f64(const rt_tensor *t, int64_t batch) {
    return rt_elems(t, batch) * (t->dtype == RT_F32 ? 8 : 4);
}

static int check_slot_f64(const rt_model *m, const char *what, int64_t offset, int64_t bytes, const char *name) {
    if (offset < 0 || offset % 8 != 0 || bytes < 0 || offset > m->arena_bytes_f64 - bytes)
        return rt_error("model descriptor: %s \"%s\" at byte %lld (%lld bytes) lies outside the %lld-byte f64 arena",
                        what, name, (long long)offset, (long long)bytes, (long long)m->arena_bytes_f64);
    return 0;
}

static int check_list_f64(const rt_model *m, const char *what, int n, const rt_tensor *t) {
    for (int i = 0; i < n; i++)
        if (check_slot_f64(m, what, t[i].offset_f64, bytes_f64(&t[i], m->max_batch), t[i].name))
            return -1;
    return 0;
}

/* After the f32 checks, which vouch for names, dtypes and shapes. */
static int check_f64(const rt_model *m) {
    if (!m->eval_step_f64 && !m->grad_step_f64)
        return 0;
    if (!m->eval_step_f64 || !m->grad_step_f64 || !m->eval_step || !m->grad_step || !m->has_loss ||
        m->arena_bytes_f64 <= 0)
        return rt_error("model descriptor: eval_step_f64 and grad_step_f64 come together, with eval_step, "
                        "grad_step, a loss and an f64 arena");
    for (int i = 0; i < m->n_params; i++) {
        /* optimizer state may have no f64 slot (-1): gradcheck copies only
         * what has one */
        const rt_param *p = &m->params[i];
        if ((p->trainable || p->t.offset_f64 != -1) &&
            check_slot_f64(m, "parameter", p->t.offset_f64, bytes_f64(&p->t, 1), p->t.name))
            return -1;
        if (p->trainable && check_slot_f64(m, "gradient of", p->grad_offset_f64, bytes_f64(&p->t, 1), p->t.name))
            return -1;
    }
    if (check_list_f64(m, "input", m->n_inputs, m->inputs) || check_list_f64(m, "target", m->n_targets, m->targets) ||
        check_slot_f64(m, "loss", m->loss.offset_f64, 8, "loss"))
        return -1;
    for (int i = 0; i < m->n_hypers; i++)
        if (check_slot_f64(m, "hyper-parameter", m->hypers[i].offset_f64, 8, m->hypers[i].name))
            return -1;
    return 0;
}

int rt_model_check(const rt_model *m) {
    if (!m->name || m->max_batch < 1 || m->arena_bytes < 0 || m->n_params < 0 || m->n_inputs < 0 || m->n_targets < 0 ||
        m->n_outputs < 0 || m->n_metrics < 0 || m->n_hypers < 0)
        return rt_error("model descriptor: bad name, counts, max batch or arena size");
    if (check_params(m) || check_list(m, "input", m->n_inputs, m->inputs, 1) ||
        check_list(m, "target", m->n_targets, m->targets, 1) || check_list(m, "output", m->n_outputs, m->outputs, 0))
        return -1;
    for (int i = 0; i < m->n_metrics; i++)
        if (check_scalar(m, "metric", &m->metrics[i]))
            return -1;
    if (m->has_loss && check_scalar(m, "loss", &m->loss))
        return -1;
    for (int i = 0; i < m->n_hypers; i++) {
        if (!m->hypers[i].name)
            return rt_error("model descriptor: a hyper-parameter has no name");
        if (check_slot(m, "hyper-parameter", m->hypers[i].offset, 4, m->hypers[i].name))
            return -1;
    }
    if (check_f64(m))
        return -1;
    rt_schedule s;
    return rt_schedule_resolve(m, &s);
}
