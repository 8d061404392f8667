/*
 * rt_mpi.c - data-parallel training over Open MPI (mdlc --mpi).
 *
 * Only the executables of mdlc --mpi link this file (libmdlrt_mpi.a) and
 * libmpi; it fills in the training loop's hooks (rt_parallel in
 * rt_internal.h) and the two calls the generated train_step makes
 * (codegen/cg_module.c).  Started without mpirun, such an executable is
 * the ordinary one process.
 *
 * Under `mpirun -np N`, every rank loads the same data and draws the same
 * shuffled order from the same seed; the training loop walks global
 * batches of batch x N samples, and rank r computes the forward and
 * backward pass on its slice [at + b r / N, at + b (r+1) / N) of each
 * global batch of b samples.  The loss being a mean over the batch, the
 * gradient of the global batch is the sum over ranks of each rank's
 * gradient weighted by its share of the samples, b_r / b: each rank
 * scales its gradients by that weight as it packs them, and MPI sums the
 * packs.  Every rank then applies the same summed gradients to the same
 * weights, so the replicas stay equal without ever sending weights.
 *
 * The gradients travel in buckets.  train_step calls mdl_rt_grad_ready
 * after the kernel that writes a gradient, in the backward pass's order
 * (the last layer's first): the gradient is packed into the open bucket,
 * and a bucket that has reached the bucket size ($MDL_MPI_BUCKET_KB,
 * default 64) starts its MPI_Iallreduce at once, while the backward
 * pass goes on with the earlier layers.  Before the first kernel that
 * reads a gradient (its optimizer update) train_step calls
 * mdl_rt_grad_wait, which starts the gradient's bucket if it is still
 * open, waits for it and copies the sum back.  Every rank runs the same
 * code, so the buckets and the order of the collective calls are the same
 * on all of them, as MPI requires.  Nonblocking collectives advance only
 * inside MPI calls, so each ready call also tests the buckets in flight.
 *
 * Failures: the communicator returns errors (MPI_ERRORS_RETURN) instead of
 * aborting inside MPI, and a wait gives up after $MDL_MPI_TIMEOUT seconds
 * (default 300) instead of hanging on a rank that stopped answering;
 * either error, or a failure of the command on any rank, ends the whole
 * job with MPI_Abort and a message naming the rank.  A rank that dies
 * outright is mpirun's to notice: it then ends the others.
 */
#include "rt_internal.h"

#include <limits.h>
#include <mpi.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct mpi_bucket {
    int64_t start, count; /* in floats, in the pack */
    MPI_Request request;
    int issued, done;
} mpi_bucket;

static struct {
    int active;
    MPI_Comm comm;
    double timeout;
    int64_t bucket_floats;
    /* the step */
    float weight; /* this rank's share of the global batch */
    float *pack;  /* the gradients of a step, one after another */
    int64_t capacity, used;
    int64_t *slot;  /* per gradient k: where it is in the pack, or -1 */
    int *bucket_of; /* per gradient k */
    int n_grads;
    mpi_bucket *buckets;
    int n_buckets, open; /* open: the bucket being filled, or -1 */
    /* statistics for the summary line */
    int64_t steps, buckets_total;
    double waited;
} mp;

static rt_parallel ops;

static double number_from_env(const char *name, double fallback) {
    const char *v = getenv(name);
    char *end;
    double x = v ? strtod(v, &end) : 0;
    return v && *v && !*end && x > 0 ? x : fallback;
}

/* Ends the whole job after an error on this rank (code: an MPI error,
 * whose text follows the message, or MPI_SUCCESS). */
static void stop_all(int code, const char *fmt, ...) RT_PRINTF(2, 3) __attribute__((noreturn));
static void stop_all(int code, const char *fmt, ...) {
    fflush(stdout);
    fprintf(stderr, "error: rank %d of %d: ", ops.rank, ops.ranks);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    char message[MPI_MAX_ERROR_STRING] = "";
    int length = 0;
    if (code != MPI_SUCCESS && MPI_Error_string(code, message, &length) == MPI_SUCCESS)
        fprintf(stderr, ": %s", message);
    fprintf(stderr, "; stopping all ranks\n");
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, RT_EXIT_FAIL);
    exit(RT_EXIT_FAIL);
}

static void check(int code, const char *what) {
    if (code != MPI_SUCCESS)
        stop_all(code, "%s failed", what);
}

/* Waits for a request of a collective (`what`), testing (and yielding
 * the CPU: ranks may share cores) until it is done or the timeout has
 * passed.  Every collective here goes through it: a blocking call would
 * wait for a rank that stopped answering for ever. */
static void wait_request(MPI_Request *request, const char *what) {
    double start = rt_now();
    for (long spins = 0;; spins++) {
        int flag = 0;
        check(MPI_Test(request, &flag, MPI_STATUS_IGNORE), what);
        if (flag)
            return;
        if (spins % 64 == 63 && rt_now() - start > mp.timeout)
            stop_all(MPI_SUCCESS,
                     "no %s from the other ranks for %g s (did one die or hang? $MDL_MPI_TIMEOUT sets the limit)", what,
                     mp.timeout);
        sched_yield();
    }
}

/* MPI_Allreduce in place, through wait_request. */
static void allreduce(void *values, int n, MPI_Datatype type, MPI_Op op, const char *what) {
    MPI_Request request;
    check(MPI_Iallreduce(MPI_IN_PLACE, values, n, type, op, mp.comm, &request), what);
    wait_request(&request, what);
}

static void wait_bucket(mpi_bucket *b) {
    if (b->done)
        return;
    double start = rt_now();
    wait_request(&b->request, "gradient sums");
    b->done = 1;
    mp.waited += rt_now() - start;
}

static void issue(int i) {
    mpi_bucket *b = &mp.buckets[i];
    if (b->count > INT_MAX)
        stop_all(MPI_SUCCESS, "a gradient bucket of %lld floats is more than MPI counts", (long long)b->count);
    check(MPI_Iallreduce(MPI_IN_PLACE, mp.pack + b->start, (int)b->count, MPI_FLOAT, MPI_SUM, mp.comm, &b->request),
          "MPI_Iallreduce of a gradient bucket");
    b->issued = 1;
    mp.buckets_total++;
    if (mp.open == i)
        mp.open = -1;
}

/* Moves the buckets in flight on (see the top of the file). */
static void progress(void) {
    for (int i = 0; i < mp.n_buckets; i++)
        if (mp.buckets[i].issued && !mp.buckets[i].done) {
            int flag = 0;
            check(MPI_Test(&mp.buckets[i].request, &flag, MPI_STATUS_IGNORE), "MPI_Test on a gradient allreduce");
            mp.buckets[i].done = flag;
            if (!flag)
                return; /* the later ones wait behind it */
        }
}

/* Before a step: the previous step's buckets are all done (one whose
 * gradients no kernel read was never waited for), the pack is empty. */
static void begin_step(void) {
    for (int i = 0; i < mp.n_buckets; i++) {
        if (!mp.buckets[i].issued)
            issue(i);
        wait_bucket(&mp.buckets[i]);
    }
    mp.n_buckets = 0;
    mp.open = -1;
    mp.used = 0;
    for (int k = 0; k < mp.n_grads; k++)
        mp.slot[k] = -1;
    mp.steps++;
}

static void grow_grads(int k) {
    if (k < mp.n_grads)
        return;
    int n = k + 1;
    mp.slot = rt_xrealloc(mp.slot, (size_t)n * sizeof *mp.slot);
    mp.bucket_of = rt_xrealloc(mp.bucket_of, (size_t)n * sizeof *mp.bucket_of);
    for (int j = mp.n_grads; j < n; j++)
        mp.slot[j] = -1;
    mp.n_grads = n;
    /* at most one bucket per gradient */
    mp.buckets = rt_xrealloc(mp.buckets, (size_t)n * sizeof *mp.buckets);
}

void mdl_rt_grad_ready(int32_t k, float *grad, int64_t count) {
    if (!mp.active)
        return;
    grow_grads(k);
    if (mp.slot[k] >= 0 || mp.used + count > mp.capacity)
        stop_all(MPI_SUCCESS, "internal: gradient %d handed over twice, or too large for the pack", (int)k);
    if (mp.open < 0) {
        mpi_bucket *b = &mp.buckets[mp.n_buckets];
        memset(b, 0, sizeof *b);
        b->start = mp.used;
        mp.open = mp.n_buckets++;
    }
    float *to = mp.pack + mp.used;
    if (mp.weight == 0) /* a rank with no samples in this batch (not w * g: g may be anything) */
        memset(to, 0, (size_t)count * sizeof *to);
    else if (mp.weight == 1)
        memcpy(to, grad, (size_t)count * sizeof *to);
    else
        for (int64_t i = 0; i < count; i++)
            to[i] = mp.weight * grad[i];
    mp.slot[k] = mp.used;
    mp.bucket_of[k] = mp.open;
    mp.used += count;
    mpi_bucket *b = &mp.buckets[mp.open];
    b->count += count;
    if (b->count >= mp.bucket_floats)
        issue(mp.open);
    progress();
}

void mdl_rt_grad_wait(int32_t k, float *grad, int64_t count) {
    if (!mp.active)
        return;
    if (k >= mp.n_grads || mp.slot[k] < 0)
        stop_all(MPI_SUCCESS, "internal: gradient %d waited for before it was ready", (int)k);
    mpi_bucket *b = &mp.buckets[mp.bucket_of[k]];
    if (!b->issued)
        issue(mp.bucket_of[k]);
    wait_bucket(b);
    memcpy(grad, mp.pack + mp.slot[k], (size_t)count * sizeof *grad);
}

/* ------------------------------------------------------- the loop's hooks */

static int64_t shard(int64_t *at, int64_t *b) {
    int64_t global = *b, from = *at + global * ops.rank / ops.ranks, to = *at + global * (ops.rank + 1) / ops.ranks;
    begin_step();
    if (to == from) { /* fewer samples than ranks: compute on one, count none */
        *b = 1;
        mp.weight = 0;
        return 0;
    }
    *at = from;
    *b = to - from;
    mp.weight = (float)((double)*b / (double)global);
    return *b;
}

static int sum(double *values, int n) {
    allreduce(values, n, MPI_DOUBLE, MPI_SUM, "sums of the loss and metrics");
    return 0;
}

/* The CRC-32 of the parameters and optimizer state (not the recurrent
 * state, which is each rank's own batch's). */
static uint64_t weights_hash(const rt_model *m, const char *arena) {
    uint32_t h = 0;
    for (int i = 0; i < m->n_params; i++) {
        const rt_param *p = &m->params[i];
        if (!p->state)
            h = rt_crc32(h, arena + p->t.offset, (size_t)rt_bytes(&p->t, m->max_batch));
    }
    return h;
}

/* The replicas must hold the same weights after every epoch: they apply
 * the same sums to the same values, unless MPI's sums differed by rank. */
static int check_replicas(const rt_train_run *r) {
    uint64_t h = weights_hash(r->m, r->arena), v[2] = {h, ~h}; /* max(~h) = ~min(h) */
    allreduce(v, 2, MPI_UINT64_T, MPI_MAX, "hashes of the weights");
    if (v[0] != h || ~v[1] != h)
        return rt_error("rank %d: the ranks' weights differ after an epoch (the gradient sums were not the same "
                        "on every rank)",
                        ops.rank);
    return 0;
}

static int reduce(rt_train_run *r, int epoch_end) {
    int n = r->m->n_metrics;
    double *v = rt_xcalloc((size_t)n + 2, sizeof *v);
    v[0] = r->loss;
    v[1] = (double)r->seen;
    memcpy(v + 2, r->metrics, (size_t)n * sizeof *v);
    sum(v, n + 2);
    r->loss = v[0];
    r->seen = (int64_t)v[1];
    memcpy(r->metrics, v + 2, (size_t)n * sizeof *v);
    free(v);
    if (!epoch_end)
        return 0;
    if (r->seen != r->data->n)
        return rt_error("the ranks trained on %lld samples of %lld in an epoch: did they read the same data?",
                        (long long)r->seen, (long long)r->data->n);
    return check_replicas(r);
}

/* The recurrent state of text streams (rt_internal.h: state_rows). */
static int state_rows(rt_train_run *r, int gather) {
    const rt_model *m = r->m;
    if (!r->text || r->whole)
        return 0;
    int64_t mine = r->batch / ops.ranks;
    if (r->batch > m->max_batch) /* the same on every rank */
        return rt_error("the state of %lld streams does not fit a model compiled for batch %lld: compile with "
                        "mdlc --max-batch %lld to train it on %d ranks",
                        (long long)r->batch, (long long)m->max_batch, (long long)r->batch, ops.ranks);
    for (int i = 0; i < m->n_params; i++) {
        const rt_param *p = &m->params[i];
        rt_layout l = rt_layout_of(&p->t);
        if (p->state != 1 || !l.has_batch || l.outer != 1)
            continue; /* only [B, ...] states, rows contiguous */
        char *rows = r->arena + p->t.offset;
        size_t row = (size_t)l.sample * 4, size = (size_t)mine * row; /* f32 or i32 */
        if (!gather) {
            memmove(rows, rows + (size_t)ops.rank * size, size);
            continue;
        }
        MPI_Request request;
        check(MPI_Igather(ops.rank ? rows : MPI_IN_PLACE, (int)size, MPI_BYTE, rows, (int)size, MPI_BYTE, 0, mp.comm,
                          &request),
              "MPI_Igather of the streams' state");
        wait_request(&request, "streams' state");
    }
    return 0;
}

static int agree(int stop) {
    allreduce(&stop, 1, MPI_INT, MPI_MAX, "word on whether to stop");
    return stop;
}

/* Samples [from, to) of d, sharing its arrays (free only the view's
 * array of pointers: view.data). */
static rt_dataset view_of(const rt_dataset *d, int64_t from, int64_t to) {
    rt_dataset view = *d;
    view.data = rt_xcalloc((size_t)d->n_tensors + 1, sizeof *view.data);
    for (int i = 0; i < d->n_tensors; i++)
        view.data[i] = (char *)d->data[i] + (size_t)(from * d->layouts[i].sample) * rt_data_elem_bytes(d, i);
    view.n = to - from;
    return view;
}

/* A text file's streams (rt_text.c): sample s B + b is stream b's window
 * at step s, and the recurrent state row b leaves is where its next window
 * begins.  This rank's streams are [mine r, mine (r+1)) of every step,
 * mine = B / N (the global batch B is a multiple of N), copied out into a
 * data set of mine streams. */
static rt_dataset *own_streams(const rt_dataset *d, int64_t streams, int64_t mine) {
    int64_t steps = d->n / streams, first = mine * ops.rank;
    rt_dataset *own = rt_data_alloc(d->tensors, d->n_tensors, steps * mine);
    for (int i = 0; i < d->n_tensors; i++) {
        size_t row = (size_t)d->layouts[i].sample * rt_data_elem_bytes(d, i);
        for (int64_t s = 0; s < steps; s++)
            memcpy((char *)own->data[i] + (size_t)(s * mine) * row,
                   (const char *)d->data[i] + (size_t)(s * streams + first) * row, (size_t)mine * row);
    }
    own->path = rt_xstrdup(d->path);
    return own;
}

/* rt_evaluate on this rank's share of d: a contiguous 1/N of its samples,
 * or of a text file's streams 1/N of the streams; batch is the global
 * one for text (rt_train.c's eval_batch), each rank's 1/N of it. */
static int evaluate(const rt_model *m, char *arena, const rt_dataset *d, int64_t batch, const float *hypers,
                    double step, double *loss, double *metrics) {
    int n = m->n_metrics, rc = 0;
    double *v = rt_xcalloc((size_t)n + 2, sizeof *v);
    int64_t count = 0;
    if (d->text && !d->independent) {
        rt_dataset *own = own_streams(d, batch, batch / ops.ranks);
        count = own->n;
        rc = rt_evaluate(m, arena, own, batch / ops.ranks, hypers, step, &v[0], v + 2, NULL);
        rt_data_free(own);
    } else {
        int64_t from = d->n * ops.rank / ops.ranks, to = d->n * (ops.rank + 1) / ops.ranks;
        count = to - from;
        if (count > 0) {
            rt_dataset view = view_of(d, from, to);
            rc = rt_evaluate(m, arena, &view, d->text ? batch / ops.ranks : batch, hypers, step, &v[0], v + 2, NULL);
            free(view.data);
        }
    }
    v[0] *= (double)count;
    for (int j = 0; j < n; j++)
        v[2 + j] *= (double)count;
    v[1] = rc ? 1 : 0; /* every rank learns of a failure, and all return it */
    sum(v, n + 2);
    *loss = v[0] / (double)d->n;
    for (int j = 0; j < n; j++)
        metrics[j] = v[2 + j] / (double)d->n;
    rc = v[1] > 0 ? -1 : 0;
    free(v);
    return rc;
}

/* Open MPI's mpirun (and PMIx launchers) say so in the environment. */
static int under_mpirun(void) { return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK"); }

/* What does not run on ranks (every rank finds the same). */
static int check_supported(const rt_opts *o) {
    if (o->n_sweeps)
        return rt_error("train --sweep does not run under mpirun: sweep in one process");
    if (o->check_numerics)
        return rt_error("--check-numerics does not run under mpirun: check in one process");
    return 0;
}

static int64_t gradient_capacity(const rt_model *m) {
    int64_t floats = 0; /* every persistent tensor: more than the gradients */
    for (int i = 0; i < m->n_params; i++)
        floats += rt_elems(&m->params[i].t, m->max_batch);
    return floats;
}

static int start(const rt_model *m, const rt_opts *o, rt_opts *own) {
    if (!under_mpirun())
        return 0;
    int provided = 0;
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "error: MPI_Init_thread failed: cannot train on MPI ranks\n");
        return -1;
    }
    MPI_Comm_dup(MPI_COMM_WORLD, &mp.comm);
    MPI_Comm_set_errhandler(mp.comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(mp.comm, &ops.rank);
    MPI_Comm_size(mp.comm, &ops.ranks);
    if (check_supported(o)) { /* on every rank alike: no need to abort */
        MPI_Comm_free(&mp.comm);
        MPI_Finalize();
        return -1;
    }
    mp.active = 1;
    mp.timeout = number_from_env("MDL_MPI_TIMEOUT", 300);
    mp.bucket_floats = (int64_t)(number_from_env("MDL_MPI_BUCKET_KB", 64) * 1024 / sizeof(float));
    mp.capacity = gradient_capacity(m);
    mp.pack = rt_xmalloc((size_t)mp.capacity * sizeof *mp.pack + 1);
    mp.open = -1;
    *own = *o;
    if (ops.rank != 0) { /* rank 0 alone prints, saves and logs */
        own->quiet = 1;
        own->save = NULL;
        own->log = NULL;
        own->log_steps = NULL;
    }
    /* The ranks on this machine share its CPUs. */
    const char *local = getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
    if (!o->threads && !getenv("MDL_THREADS") && local && atoi(local) > 1) {
        int each = rt_default_threads() / atoi(local);
        rt_set_threads(each < 1 ? 1 : each);
    }
    if (!own->quiet)
        printf("data parallel: %d ranks (Open MPI), each on its share of every batch, gradients summed in buckets "
               "of %lld KiB\n",
               ops.ranks, (long long)(mp.bucket_floats * (int64_t)sizeof(float) / 1024));
    return 1;
}

static int end(int rc) {
    if (!mp.active)
        return rc;
    if (rc != 0 && rc < 128) { /* 128 + N: every rank stopped after signal N (and rank 0 saved) */
        fprintf(stderr, "error: rank %d of %d failed: stopping all ranks\n", ops.rank, ops.ranks);
        fflush(stdout);
        fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, rc);
    }
    for (int i = 0; i < mp.n_buckets; i++)
        if (mp.buckets[i].issued)
            wait_bucket(&mp.buckets[i]);
    if (ops.rank == 0 && mp.steps > 0 && getenv("MDL_MPI_STATS"))
        printf("mpi: %lld steps, %.2f buckets a step, waited %.3f ms a step for the gradient sums\n",
               (long long)mp.steps, (double)mp.buckets_total / (double)mp.steps, 1e3 * mp.waited / (double)mp.steps);
    fflush(stdout);
    MPI_Comm_free(&mp.comm);
    MPI_Finalize();
    mp.active = 0;
    free(mp.pack);
    free(mp.slot);
    free(mp.bucket_of);
    free(mp.buckets);
    return rc;
}

static rt_parallel ops = {0, 1, start, end, shard, reduce, agree, state_rows, evaluate};
rt_parallel *rt_parallel_ops = &ops;
