/*
 * rt_lib.c - a compiled model as a library: the generic side of the C
 * API that `mdlc -c` generates (rt_lib.h; the user's manual is
 * docs/embedding.md).
 *
 * An instance is what one `train` run holds: the arena (parameters,
 * optimizer state, data slots), the hyper-parameter values and the count
 * of train steps done.  A step does what rt_train.c's train_batch does for
 * one batch: copy the caller's arrays into their slots, write the
 * hyper-parameters ("training" 1, "step" the count), call train_step and
 * read the loss.  The caller's arrays have the declared shape at the
 * call's batch, which is exactly how a slot is laid out at that batch
 * (mdlrt.h), so each is one memcpy in and out.  The learning rate is the
 * "lr" value as set (the train block's schedule is the executable's
 * loop's business, not a step's); checkpoints are rt_ckpt.c's, so files
 * pass between the library and the executable's --save and --load.
 *
 * The runtime reports errors through one global line (rt_util.c's
 * rt_last_error) and prints them; here they are kept quiet and copied into
 * the instance, under a lock, so that instances on different threads keep
 * their own messages.  The thread pool (rt_pool.c) assumes a single
 * dispatching thread, so with more than one thread the kernel calls of
 * all instances of this object take turns; with one thread (the default)
 * they run side by side.  Each kernel call runs with denormals flushed to
 * zero as in the executable, and gives the caller's floating-point mode
 * back afterwards.
 */
#include "rt_lib.h"
#include "rt_internal.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <xmmintrin.h>
#endif

struct rt_lib {
    const rt_model *m;
    char *arena;
    float *hypers; /* one per rt_hyper, as the executable keeps them */
    int64_t steps; /* train steps done: hyper-parameter "step" */
    char error[512];
};

/* Guards rt_last_error (and the rest of the runtime's globals that
 * checkpoints touch) while a call reads it. */
static pthread_mutex_t runtime_lock = PTHREAD_MUTEX_INITIALIZER;
/* Taken around kernel calls when the pool has workers (see above). */
static pthread_mutex_t kernel_lock = PTHREAD_MUTEX_INITIALIZER;
static atomic_int lib_threads = 1;
static char create_error[512];

static int fail(rt_lib *lib, const char *fmt, ...) RT_PRINTF(2, 3);
static int fail(rt_lib *lib, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(lib->error, sizeof lib->error, fmt, ap);
    va_end(ap);
    return -1;
}

/* Around a runtime call that reports through rt_error: quiet, under the
 * lock; end_runtime copies its message to `error` when rc is nonzero. */
static void begin_runtime(void) {
    pthread_mutex_lock(&runtime_lock);
    rt_quiet_errors = 1;
    rt_last_error[0] = '\0';
}

static int end_runtime(char *error, size_t size, int rc) {
    if (rc)
        snprintf(error, size, "%s", rt_last_error[0] ? rt_last_error : "failed");
    pthread_mutex_unlock(&runtime_lock);
    return rc ? -1 : 0;
}

static int new_arena(const rt_model *m, char **arena) {
    *arena = rt_arena_new(m);
    return *arena ? 0 : -1;
}

rt_lib *rt_lib_create(const rt_model *m) {
    char *arena = NULL;
    begin_runtime();
    if (end_runtime(create_error, sizeof create_error, rt_model_check(m) || new_arena(m, &arena)))
        return NULL;
    rt_lib *lib = calloc(1, sizeof *lib);
    float *hypers = calloc((size_t)m->n_hypers + 1, sizeof *hypers);
    if (!lib || !hypers) {
        free(lib);
        free(hypers);
        rt_arena_free(arena);
        pthread_mutex_lock(&runtime_lock);
        snprintf(create_error, sizeof create_error, "out of memory creating model %s", m->name);
        pthread_mutex_unlock(&runtime_lock);
        return NULL;
    }
    lib->m = m;
    lib->arena = arena;
    lib->hypers = hypers;
    for (int i = 0; i < m->n_hypers; i++)
        hypers[i] = (float)m->hypers[i].value;
    if (rt_lib_init(lib, m->seed)) {
        pthread_mutex_lock(&runtime_lock);
        snprintf(create_error, sizeof create_error, "%s", lib->error);
        pthread_mutex_unlock(&runtime_lock);
        rt_lib_free(lib);
        return NULL;
    }
    return lib;
}

void rt_lib_free(rt_lib *lib) {
    if (!lib)
        return;
    rt_arena_free(lib->arena);
    free(lib->hypers);
    free(lib);
}

const char *rt_lib_error(const rt_lib *lib) { return lib ? lib->error : create_error; }

int rt_lib_init(rt_lib *lib, uint64_t seed) {
    memset(lib->arena, 0, (size_t)lib->m->arena_bytes);
    lib->steps = 0;
    begin_runtime();
    return end_runtime(lib->error, sizeof lib->error, rt_init_params(lib->m, lib->arena, seed));
}

int rt_lib_load(rt_lib *lib, const char *path) {
    if (!path)
        return fail(lib, "load: the path is NULL");
    begin_runtime();
    if (end_runtime(lib->error, sizeof lib->error, rt_ckpt_load(lib->m, lib->arena, path)))
        return -1;
    rt_zero_state(lib->m, lib->arena);
    lib->steps = 0;
    return 0;
}

int rt_lib_save(rt_lib *lib, const char *path) {
    if (!path)
        return fail(lib, "save: the path is NULL");
    rt_ckpt_meta meta = {NULL, lib->hypers, NULL};
    begin_runtime();
    return end_runtime(lib->error, sizeof lib->error, rt_ckpt_save_meta(lib->m, lib->arena, &meta, path));
}

/* A class label or row index out of range would make a kernel read
 * outside its table, so i32 tensors with a known range are checked. */
static int check_indices(rt_lib *lib, const rt_tensor *t, const char *what, const int32_t *v, int64_t n) {
    if (t->dtype != RT_I32 || t->index_range <= 0)
        return 0;
    for (int64_t k = 0; k < n; k++)
        if (v[k] < 0 || v[k] >= t->index_range)
            return fail(lib, "%s \"%s\": element %lld is %d, outside [0, %lld)", what, t->name, (long long)k, (int)v[k],
                        (long long)t->index_range);
    return 0;
}

/* Copies the caller's arrays into their slots. */
static int put(rt_lib *lib, const rt_tensor *ts, int n, const void *const *data, const char *what, int64_t batch) {
    for (int i = 0; i < n; i++) {
        const rt_tensor *t = &ts[i];
        if (!data || !data[i])
            return fail(lib, "%s \"%s\" is NULL", what, t->name);
        int64_t elems = rt_elems(t, batch);
        if (check_indices(lib, t, what, data[i], elems))
            return -1;
        memcpy(lib->arena + t->offset, data[i], (size_t)elems * 4);
    }
    return 0;
}

static int check_batch(rt_lib *lib, int64_t batch) {
    if (batch < 1 || batch > lib->m->max_batch)
        return fail(lib, "batch %lld is outside 1..%lld (model %s was compiled with max batch %lld; recompile with "
                         "mdlc --max-batch N for more)",
                    (long long)batch, (long long)lib->m->max_batch, lib->m->name, (long long)lib->m->max_batch);
    return 0;
}

static void run_kernel(rt_lib *lib, rt_kernel kernel, int64_t batch, double training) {
    rt_write_hypers(lib->m, lib->arena, lib->hypers, training, (double)lib->steps);
#if defined(__x86_64__) || defined(__i386__)
    unsigned csr = _mm_getcsr();
    _mm_setcsr(csr | 0x8040); /* FTZ | DAZ, as rt_flush_denormals */
#endif
    int locked = atomic_load(&lib_threads) > 1;
    if (locked)
        pthread_mutex_lock(&kernel_lock);
    kernel(lib->arena, batch);
    if (locked)
        pthread_mutex_unlock(&kernel_lock);
#if defined(__x86_64__) || defined(__i386__)
    _mm_setcsr(csr);
#endif
}

static int needs_loss(rt_lib *lib, rt_kernel kernel) {
    if (!kernel || !lib->m->has_loss)
        return fail(lib, "model %s has no loss, so it cannot be trained or evaluated", lib->m->name);
    return 0;
}

int rt_lib_train_step(rt_lib *lib, int64_t batch, const void *const *inputs, const void *const *targets, float *loss) {
    const rt_model *m = lib->m;
    if (needs_loss(lib, m->train_step) || check_batch(lib, batch) || put(lib, m->inputs, m->n_inputs, inputs, "input", batch) ||
        put(lib, m->targets, m->n_targets, targets, "target", batch))
        return -1;
    run_kernel(lib, m->train_step, batch, 1);
    lib->steps++;
    float value = rt_scalar(lib->arena, &m->loss);
    if (loss)
        *loss = value;
    if (!isfinite(value))
        return fail(lib, "loss is %g at step %lld: training diverged (try a smaller lr)", (double)value,
                    (long long)lib->steps);
    return 0;
}

int rt_lib_evaluate(rt_lib *lib, int64_t batch, const void *const *inputs, const void *const *targets, float *loss,
                    float *metrics) {
    const rt_model *m = lib->m;
    if (needs_loss(lib, m->eval_step) || check_batch(lib, batch) || put(lib, m->inputs, m->n_inputs, inputs, "input", batch) ||
        put(lib, m->targets, m->n_targets, targets, "target", batch))
        return -1;
    run_kernel(lib, m->eval_step, batch, 0);
    if (loss)
        *loss = rt_scalar(lib->arena, &m->loss);
    for (int j = 0; metrics && j < m->n_metrics; j++)
        metrics[j] = rt_scalar(lib->arena, &m->metrics[j]);
    return 0;
}

int rt_lib_predict(rt_lib *lib, int64_t batch, const void *const *inputs, void *const *outputs) {
    const rt_model *m = lib->m;
    if (!m->predict_step)
        return fail(lib, "model %s has no outputs to predict", m->name);
    if (check_batch(lib, batch) || put(lib, m->inputs, m->n_inputs, inputs, "input", batch))
        return -1;
    for (int o = 0; o < m->n_outputs; o++)
        if (!outputs || !outputs[o])
            return fail(lib, "output \"%s\" is NULL", m->outputs[o].name);
    run_kernel(lib, m->predict_step, batch, 0);
    for (int o = 0; o < m->n_outputs; o++)
        memcpy(outputs[o], lib->arena + m->outputs[o].offset, (size_t)rt_bytes(&m->outputs[o], batch));
    return 0;
}

/* The hyper-parameter's index, or -1 after an error naming those there are. */
static int hyper_index(rt_lib *lib, const char *name, const char *what) {
    int i = name ? rt_hyper_index(lib->m, name) : -1;
    if (i >= 0)
        return i;
    char names[384];
    rt_list_hypers(lib->m, 1, names, sizeof names);
    return fail(lib, "%s: model %s has no hyper-parameter \"%.64s\" (it has: %s)", what, lib->m->name,
                name ? name : "(null)", names);
}

int rt_lib_set_hyper(rt_lib *lib, const char *name, double value) {
    int i = hyper_index(lib, name, "set_hyper");
    if (i < 0)
        return -1;
    if (rt_hyper_is_runtime(name))
        return fail(lib, "set_hyper: \"%s\" is set by the runtime before every step", name);
    if (!isfinite(value))
        return fail(lib, "set_hyper: %s = %g is not a finite number", name, value);
    lib->hypers[i] = (float)value;
    return 0;
}

int rt_lib_get_hyper(rt_lib *lib, const char *name, double *value) {
    int i = hyper_index(lib, name, "get_hyper");
    if (i < 0)
        return -1;
    if (value)
        *value = lib->hypers[i];
    return 0;
}

int64_t rt_lib_steps(const rt_lib *lib) { return lib->steps; }

void rt_lib_set_steps(rt_lib *lib, int64_t steps) { lib->steps = steps < 0 ? 0 : steps; }

void rt_lib_reset_state(rt_lib *lib) { rt_zero_state(lib->m, lib->arena); }

int rt_lib_set_threads(int n) {
    if (n <= 0) {
        pthread_mutex_lock(&runtime_lock);
        rt_quiet_errors = 1; /* a bad MDL_THREADS is a note */
        n = rt_default_threads();
        pthread_mutex_unlock(&runtime_lock);
    }
    if (n > 64)
        n = 64; /* rt_pool.c's limit */
    /* no kernel of another instance is running a job while it changes */
    pthread_mutex_lock(&kernel_lock);
    rt_set_threads(n);
    atomic_store(&lib_threads, n);
    pthread_mutex_unlock(&kernel_lock);
    return n;
}
