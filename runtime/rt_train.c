/*
 * rt_train.c - `train`: the training loop.
 *
 * An epoch zeroes the recurrent state, shuffles the sample indices with
 * the seed's shuffle stream (unless --no-shuffle or the data is a text
 * file, whose order is the point: rt_text.c; with --windows it draws the
 * epoch's random windows from the windows stream instead, and zeroes the
 * state before every step; nor when one step takes every sample, whose
 * loss, a sum or mean over the batch, the order cannot change: the batch
 * is then the data in file order, one copy per tensor), walks them in
 * batches of
 * `batch` (the last one may be short: kernels take the actual batch size),
 * gathers each batch into the arena, sets the hyper-parameters ("lr" from
 * the schedule, "training" 1, "step" the run's step count, "scan_steps" 0)
 * and calls train_step.  The epoch's loss and metrics are the
 * batch values weighted by batch size, so a short last batch counts for
 * what it holds.  After every epoch the validation set (--val, or the
 * last --val-split of the data) is evaluated.  A non-finite loss stops
 * training at once, before anything is saved.
 *
 * Labelled text (a .tsv file, rt_labels.c) is ordinary samples once read:
 * shuffled, split by --val-split.  Its words and classes come from the
 * file, or from the checkpoint when fine-tuning (--load), so the ids stay
 * the ones the model learnt; they are saved with the parameters.
 *
 * Output: a summary line, then one line per logged epoch, and --log FILE
 * gets every epoch as a CSV row; how they look is rt_progress.c's.
 * `train --sweep` (rt_sweep.c) calls rt_train once per configuration.
 */
#include "rt_internal.h"

#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Data parallelism (rt_internal.h): set by rt_mpi.c where it is linked. */
rt_parallel *rt_parallel_ops __attribute__((weak));
rt_parallel *rt_par;

static int is_logged(const rt_train_run *r, int64_t epoch) {
    return epoch == 1 || epoch == r->epochs || epoch % r->log_every == 0;
}

/* Copies the persistent tensors (parameters, optimizer and recurrent
 * state) between the arena and `packed`, one after another there. */
static void copy_persistent(const rt_model *m, char *arena, char *packed, int to_arena) {
    size_t at = 0;
    for (int i = 0; i < m->n_params; i++) {
        const rt_tensor *t = &m->params[i].t;
        size_t bytes = (size_t)rt_bytes(t, m->max_batch);
        if (to_arena)
            memcpy(arena + t->offset, packed + at, bytes);
        else
            memcpy(packed + at, arena + t->offset, bytes);
        at += bytes;
    }
}

/* The persistent tensors at the start of an epoch (or, resumed, at step
 * `from` of it), for replay_to. */
static void keep_epoch_state(rt_train_run *r, int64_t from) {
    const rt_model *m = r->m;
    if (!r->epoch_state) {
        size_t bytes = 0;
        for (int i = 0; i < m->n_params; i++)
            bytes += (size_t)rt_bytes(&m->params[i].t, m->max_batch);
        r->epoch_state = rt_xmalloc(bytes + 1);
    }
    copy_persistent(m, r->arena, r->epoch_state, 0);
    r->epoch_step = r->step;
    r->epoch_from = from;
}

static int train_batch(rt_train_run *r, const int64_t *order, int in_order, int64_t at, int64_t b, int64_t epoch,
                       int64_t step_in_epoch);

/* After a non-finite loss at step `last` of the epoch: back to the
 * epoch's start and its steps again up to that one (the same batches,
 * hypers and results: a step depends on nothing else), this time with
 * every operation checked, which names the first to make a NaN or inf --
 * perhaps in an earlier step's gradient, whose update the loss of a later
 * step reads.  order, in_order: the epoch's (train_batch). */
static void replay_to(rt_train_run *r, const int64_t *order, int in_order, int64_t epoch, int64_t last) {
    const rt_model *m = r->m;
    if (!r->epoch_state || m->n_checks == 0)
        return;
    copy_persistent(m, r->arena, r->epoch_state, 1);
    r->step = r->epoch_step;
    r->replaying = 1;
    rt_opts checked = *r->o;
    const rt_opts *own = r->o;
    checked.check_numerics = 1;
    r->o = &checked;
    int64_t n = r->data->n, step = r->epoch_from + 1;
    int found = 0;
    for (int64_t at = r->epoch_from * r->batch; at < n && step <= last && !found; at += r->batch, step++)
        found = train_batch(r, order, in_order, at, n - at < r->batch ? n - at : r->batch, epoch, step) != 0;
    if (!found)
        rt_note("run again with every operation checked, the epoch's steps up to that one made no NaN or inf");
    r->o = own;
    r->replaying = 0;
}

/* One train_step on samples order[0..b), which are samples at..at+b
 * when in_order; -1 on a non-finite loss. */
static int train_batch(rt_train_run *r, const int64_t *order, int in_order, int64_t at, int64_t b, int64_t epoch,
                       int64_t step_in_epoch) {
    const rt_model *m = r->m;
    int64_t counted = rt_par ? rt_par->shard(&at, &b) : b; /* this rank's part of the global batch */
    if (r->data->independent)
        rt_zero_state(m, r->arena);
    if (in_order) {
        /* The input slots are the arena's own (no kernel writes them):
         * a batch already there is not copied again -- the whole data
         * set, as one step of every epoch takes it. */
        if (r->held_b != b || r->held_at != at)
            rt_gather_range(r->arena, r->data, at, b);
        r->held_at = at;
        r->held_b = b;
    } else {
        r->held_b = 0;
        rt_gather(r->arena, r->data, order + at, b);
        int64_t next = r->data->n - at - b < r->batch ? r->data->n - at - b : r->batch;
        rt_prefetch(r->data, order + at + b, next);
    }
    if (r->lr_index >= 0) {
        r->lr = rt_schedule_lr(&r->sched, r->base_lr, r->step, r->steps_per_epoch, r->total_steps);
        r->hypers[r->lr_index] = (float)r->lr;
    }
    /* "step" seeds dropout's masks by row of the batch: each rank its own */
    rt_write_hypers(m, r->arena, r->hypers, 1,
                    rt_par ? (double)(r->step * rt_par->ranks + rt_par->rank) : (double)r->step);
    if (r->o->check_numerics)
        rt_numerics_start(m);
    m->train_step(r->arena, b);
    r->step++;
    if (r->o->check_numerics) {
        rt_numerics_stop();
        char when[96];
        snprintf(when, sizeof when, "at epoch %lld, step %lld", (long long)epoch, (long long)step_in_epoch);
        if (rt_numerics_report(when))
            return -1;
    }
    if (r->replaying)
        return 0;
    double loss = m->has_loss ? rt_scalar(r->arena, &m->loss) : 0;
    if (!isfinite(loss)) {
        rt_error("loss is %g at epoch %lld, step %lld: training diverged (try a smaller --lr); stopping%s%s%s", loss,
                 (long long)epoch, (long long)step_in_epoch, r->o->save ? ", " : "", r->o->save ? r->o->save : "",
                 r->o->save ? " not written" : "");
        if (!r->o->check_numerics && !rt_par)
            replay_to(r, order, in_order, epoch, step_in_epoch);
        return -1;
    }
    if (r->step_log && rt_step_log_write(r, epoch, loss))
        return -1;
    r->seen += counted;
    r->loss += (double)counted * loss;
    for (int j = 0; j < m->n_metrics; j++)
        r->metrics[j] += (double)counted * rt_scalar(r->arena, &m->metrics[j]);
    return 0;
}

/* SIGINT or SIGTERM while training: the step under way finishes, then
 * the run stops and saves where it stands (a second signal kills). */
static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig) { interrupted = sig; }

/* Whether to stop after the step just taken: r->stop says why. */
static int stop_now(rt_train_run *r) {
    if (interrupted)
        r->stop = 2;
    else if (r->o->stop_after && r->step >= r->o->stop_after)
        r->stop = 1;
    if (rt_par) /* every rank stops after the same step */
        r->stop = rt_par->agree(r->stop);
    return r->stop;
}

/* Runs the steps of one epoch from step from + 1, showing progress; 0,
 * -1, or the number of steps taken when told to stop before the end. */
static int64_t epoch_steps(rt_train_run *r, int64_t epoch, int logged, const int64_t *order, int in_order,
                           int64_t from) {
    int64_t n = r->data->n;
    for (int64_t at = from * r->batch, step = from + 1; at < n; at += r->batch, step++) {
        int64_t b = n - at < r->batch ? n - at : r->batch;
        if (train_batch(r, order, in_order, at, b, epoch, step)) {
            rt_progress_abort(r);
            return -1;
        }
        rt_progress_step(r, epoch, logged, step, at + b < n);
        if (at + b < n && stop_now(r)) {
            rt_progress_abort(r);
            return step;
        }
    }
    return 0;
}

/* At max batch, like `eval`, so that both print the same numbers; text at
 * the training batch, the number of streams its data set is laid out for
 * (and with --windows as `eval --windows` does). */
static int64_t eval_batch(const rt_train_run *r) { return r->text ? r->batch : r->m->max_batch; }

/* Loss and metrics over d (under mpirun, shared by the ranks). */
static int evaluate(rt_train_run *r, const rt_dataset *d, double *loss, double *metrics) {
    r->held_b = 0; /* evaluation writes the input slots */
    if (rt_par)
        return rt_par->evaluate(r->m, r->arena, d, eval_batch(r), r->hypers, (double)r->step, loss, metrics);
    return rt_evaluate(r->m, r->arena, d, eval_batch(r), r->hypers, (double)r->step, loss, metrics, NULL);
}

/* The epoch's order of the samples in `order`, or with --windows its
 * windows in r->data, drawn from rng; 1 when the samples are shuffled. */
static int draw_order(rt_train_run *r, rt_rng *rng, int64_t *order) {
    int shuffled = !r->whole && !r->o->no_shuffle && !r->text && r->batch < r->data->n;
    if (r->whole)
        rt_text_draw(r->data, r->whole, rng);
    else if (shuffled)
        rt_rng_shuffle(rng, order, r->data->n);
    return shuffled;
}

/* rng: the shuffle stream, or with --windows the windows stream.  from:
 * the steps of the epoch already taken (resumed: r->resume has the sums of
 * their losses and metrics; the recurrent state is the checkpoint's).
 * 0, -1, or the steps taken when told to stop before the epoch's end. */
static int64_t run_epoch(rt_train_run *r, int64_t epoch, rt_rng *rng, int64_t *order, int64_t from) {
    int64_t n = r->data->n;
    int logged = is_logged(r, epoch);
    double start = rt_now();
    int sums = from && !(rt_par && rt_par->rank); /* under mpirun the sums over the ranks: rank 0's */
    r->seen = sums ? r->resume->seen : 0;
    r->loss = sums ? r->resume->loss : 0;
    for (int j = 0; j < r->m->n_metrics; j++)
        r->metrics[j] = sums ? r->resume->metrics[j] : 0;
    if (from == 0)
        rt_zero_state(r->m, r->arena);
    int shuffled = draw_order(r, rng, order);
    if (r->whole) /* new windows */
        r->held_b = 0;
    if (!r->o->check_numerics)
        keep_epoch_state(r, from);
    rt_progress_epoch_begin(r, epoch, logged, start);
    int64_t stopped = epoch_steps(r, epoch, logged, order, !shuffled, from);
    if (stopped)
        return stopped;
    if (rt_par && rt_par->reduce(r, 1))
        return -1;
    double seconds = rt_now() - start;
    r->loss /= (double)n;
    for (int j = 0; j < r->m->n_metrics; j++)
        r->metrics[j] /= (double)n;
    if (r->val && evaluate(r, r->val, &r->val_loss, r->val_metrics))
        return -1;
    if (r->log && rt_log_write(r, epoch))
        return -1;
    rt_progress_epoch_end(r, epoch, logged, seconds);
    return 0;
}

/* Saves the parameters, the optimizer and recurrent state, and where the
 * run stands (rt_resume.c) to --save. */
static int save_run(rt_train_run *r, int64_t epochs_done, int64_t steps_done) {
    char *run = rt_run_state_json(r, epochs_done, steps_done);
    float now = r->lr_index >= 0 ? r->hypers[r->lr_index] : 0;
    if (r->lr_index >= 0) /* the base rate, not the schedule's last, for the record */
        r->hypers[r->lr_index] = (float)r->base_lr;
    rt_ckpt_meta meta = {&r->vocab, r->hypers, run};
    int rc = rt_ckpt_save_meta(r->m, r->arena, &meta, r->o->save);
    if (r->lr_index >= 0)
        r->hypers[r->lr_index] = now;
    free(run);
    return rc;
}

/* Told to stop with epochs_done whole epochs and steps_done steps of the
 * next taken: saves where the run stands.  1, or -1 when the save fails. */
static int stop_run(rt_train_run *r, int64_t epochs_done, int64_t steps_done) {
    const rt_opts *o = r->o;
    char where[128];
    snprintf(where, sizeof where, "after step %lld (epoch %lld, step %lld of %lld)", (long long)r->step,
             (long long)(steps_done ? epochs_done + 1 : epochs_done),
             (long long)(steps_done ? steps_done : r->steps_per_epoch), (long long)r->steps_per_epoch);
    const char *why = r->stop == 2 ? "interrupted" : "stopped";
    if (rt_par && ((steps_done && rt_par->reduce(r, 0)) || rt_par->state_rows(r, 1) || rt_par->rank))
        return 1; /* the sums so far, the streams' state: rank 0 saves them */
    if (!o->save) {
        fprintf(stderr, "%s %s; nothing saved (pass --save CKPT to keep the run, and --resume CKPT to go on)\n", why,
                where);
        return 1;
    }
    if (save_run(r, epochs_done, steps_done))
        return -1;
    if (r->stop == 2)
        fprintf(stderr, "interrupted %s; saved %s: '%s train --resume %s' goes on from there\n", where, o->save,
                o->prog, o->save);
    else if (!r->quiet)
        printf("stopped %s; saved %s (train --resume %s goes on from there)\n", where, o->save, o->save);
    return 1;
}

/* -1 on failure; 0 when every epoch ran; 1 when told to stop (r->stop
 * says why) and the run is saved. */
static int train_loop(rt_train_run *r) {
    rt_rng rng;
    rt_rng_seed(&rng, r->seed, r->whole ? RT_STREAM_WINDOWS : RT_STREAM_SHUFFLE);
    int64_t *order = rt_identity_order(r->data->n);
    int64_t first = 1, from = 0;
    if (r->resume) { /* the draws of the epochs done, to the order they left */
        for (int64_t e = 1; e <= r->resume->epochs_done; e++)
            draw_order(r, &rng, order);
        first = r->resume->epochs_done + 1;
        from = r->resume->steps_done;
    }
    struct sigaction on, old_int, old_term;
    memset(&on, 0, sizeof on);
    on.sa_handler = on_interrupt;
    on.sa_flags = SA_RESETHAND;
    sigemptyset(&on.sa_mask);
    interrupted = 0;
    /* not where the signal was ignored (nohup, a background job of sh) */
    sigaction(SIGINT, &on, &old_int);
    sigaction(SIGTERM, &on, &old_term);
    if (old_int.sa_handler == SIG_IGN)
        sigaction(SIGINT, &old_int, NULL);
    if (old_term.sa_handler == SIG_IGN)
        sigaction(SIGTERM, &old_term, NULL);
    int rc = 0;
    r->start = rt_now();
    for (int64_t epoch = first; epoch <= r->epochs && rc == 0; epoch++, from = 0) {
        int64_t stopped = run_epoch(r, epoch, &rng, order, from);
        if (stopped < 0)
            rc = -1;
        else if (stopped > 0)
            rc = stop_run(r, epoch - 1, stopped);
        else if (epoch < r->epochs && stop_now(r))
            rc = stop_run(r, epoch, 0);
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    free(order);
    return rc;
}

/* The loss of the final parameters on the whole training set (with
 * --windows the text's consecutive windows, not the last epoch's). */
static int finish(rt_train_run *r) {
    const rt_dataset *all = r->whole ? r->whole : r->data;
    if (evaluate(r, all, &r->loss, r->metrics))
        return -1;
    if (!isfinite(r->loss))
        return rt_error("the final loss is %g: training diverged (try a smaller --lr)%s%s", r->loss,
                        r->o->save ? "; not saving " : "", r->o->save ? r->o->save : "");
    if (!r->quiet)
        rt_progress_final(r);
    if (rt_par && rt_par->state_rows(r, 1)) /* text streams: their state, to rank 0 */
        return -1;
    if (r->o->save) {
        if (save_run(r, r->epochs, 0))
            return -1;
        if (!r->quiet)
            printf("saved %s\n", r->o->save);
    }
    return 0;
}

static int check_trainable(const rt_model *m, const rt_opts *o) {
    if (!m->train_step || !m->has_loss)
        return rt_error("model %s has no loss, so it cannot be trained", m->name);
    if (!o->data)
        return rt_error("no training data: pass --data FILE");
    return 0;
}

/* The learning rate: the base value, and what the schedule needs. */
static int prepare_lr(rt_train_run *r) {
    const rt_model *m = r->m;
    if (rt_schedule_resolve(m, &r->sched))
        return -1;
    r->lr_index = rt_hyper_index(m, "lr");
    if (r->lr_index < 0 && m->schedule)
        return rt_error("model %s has a learning-rate schedule but no hyper-parameter \"lr\"", m->name);
    if (r->lr_index >= 0) {
        /* In double, as given: the slot gets each step's value in f32. */
        r->base_lr = m->hypers[r->lr_index].value;
        if (r->o->has_lr)
            r->base_lr = r->o->lr;
        for (int i = 0; i < r->o->n_hyper_sets; i++)
            if (strcmp(r->o->hyper_sets[i].name, "lr") == 0)
                r->base_lr = r->o->hyper_sets[i].value;
        r->lr = r->base_lr;
    }
    r->steps_per_epoch = (r->data->n + r->batch - 1) / r->batch;
    r->total_steps = r->steps_per_epoch * r->epochs;
    return 0;
}

/* The text source: --val must be text too, and --val-split would cut the
 * streams at a place no step ends.  --windows: the text is r->whole, and
 * r->data an epoch of windows drawn from it. */
static int load_text(rt_train_run *r) {
    const rt_opts *o = r->o;
    r->text = 1;
    if (o->has_val_split)
        return rt_error("--val-split does not apply to a text file: pass --val FILE.txt");
    if (o->val && !rt_text_applies(r->m, o->val))
        return rt_error("--val %s: a model trained on a text file validates on one (a .txt file)", o->val);
    int windows = rt_text_windowed(r->m, o->windows);
    rt_dataset *text = rt_text_load(r->m, o->data, r->batch, windows, &r->vocab, &r->text_chars);
    if (!text)
        return -1;
    if (windows) {
        r->whole = text;
        r->data = rt_text_windows(text, r->batch);
    } else
        r->data = text;
    if (o->val && !(r->val = rt_text_load(r->m, o->val, r->batch, windows, &r->vocab, NULL)))
        return -1;
    return 0;
}

/* Fine-tuning from a checkpoint with a vocabulary keeps its ids. */
static int adopt_vocab(rt_train_run *r, const rt_vocab *loaded) {
    if (!r->text || loaded->n == 0)
        return 0;
    /* --windows: r->data is drawn from r->whole at each epoch's start */
    if (rt_text_remap(r->whole ? r->whole : r->data, &r->vocab, loaded, r->o->load) ||
        (r->val && rt_text_remap(r->val, &r->vocab, loaded, r->o->load)))
        return -1;
    r->vocab = *loaded;
    r->vocab.lexicon = NULL; /* a text model has none to keep */
    return 0;
}

/* A ratings file (rt_ratings.c): fine-tuning reads it through the ids of
 * the checkpoint, which are therefore read first; --val through those of
 * the training file. */
static int load_ratings(rt_train_run *r) {
    const rt_opts *o = r->o;
    if (o->load && rt_ckpt_load_metadata(r->m, o->load))
        return -1;
    if (!(r->data = rt_ratings_load(r->m, o->data, RT_RATINGS_TRAIN)))
        return -1;
    if (o->val && !rt_ratings_applies(r->m, o->val))
        return rt_error("--val %s: a model trained on a ratings file validates on one (.data, .tsv or .csv)", o->val);
    if (o->val)
        r->val = rt_ratings_load(r->m, o->val, RT_RATINGS_EVAL);
    else if (o->has_val_split)
        r->val = rt_data_split(r->data, o->val_split);
    return (o->val || o->has_val_split) && !r->val ? -1 : 0;
}

/* Labelled text, through the checkpoint's words and classes if it has
 * them (taken from *loaded), else through the training file's own. */
static int load_labels(rt_train_run *r, rt_vocab *loaded) {
    const rt_opts *o = r->o;
    r->labels = 1;
    if (o->val && !rt_labels_applies(r->m, o->val))
        return rt_error("--val %s: a model trained on a .tsv file validates on one", o->val);
    r->vocab.lexicon = loaded->lexicon;
    loaded->lexicon = NULL;
    r->data = rt_labels_load(r->m, o->data, RT_DATA_LABELLED, &r->vocab.lexicon, &r->labels_info);
    if (!r->data)
        return -1;
    if (o->val)
        r->val = rt_labels_load(r->m, o->val, RT_DATA_LABELLED, &r->vocab.lexicon, NULL);
    else if (o->has_val_split)
        r->val = rt_data_split(r->data, o->val_split);
    return (o->val || o->has_val_split) && !r->val ? -1 : 0;
}

static int load_data(rt_train_run *r, rt_vocab *loaded) {
    const rt_opts *o = r->o;
    if (rt_labels_applies(r->m, o->data))
        return load_labels(r, loaded);
    if (rt_text_applies(r->m, o->data))
        return load_text(r);
    if (rt_ratings_applies(r->m, o->data))
        return load_ratings(r);
    if (o->windows)
        return rt_error("--windows applies to a text file (a .txt file for a model that takes text)");
    r->data = rt_data_load(r->m, o->data, RT_DATA_LABELLED);
    if (!r->data)
        return -1;
    if (o->val)
        r->val = rt_data_load(r->m, o->val, RT_DATA_LABELLED);
    else if (o->has_val_split)
        r->val = rt_data_split(r->data, o->val_split);
    return (o->val || o->has_val_split) && !r->val ? -1 : 0;
}

/* Whether --lr or --hyper sets hyper `name`. */
static int set_by_options(const rt_opts *o, const char *name) {
    if (o->has_lr && strcmp(name, "lr") == 0)
        return 1;
    for (int i = 0; i < o->n_hyper_sets; i++)
        if (strcmp(o->hyper_sets[i].name, name) == 0)
            return 1;
    return 0;
}

/* --resume, before the data: the run's seed, batch, epochs and hypers,
 * unless the command line sets them (the seed and batch it may only
 * repeat: another would not continue the same run). */
static int resume_settings(rt_train_run *r) {
    const rt_run_state *s = r->resume;
    const rt_opts *o = r->o;
    if (o->has_seed && o->seed != s->seed)
        return rt_error("%s was trained with seed %llu: resuming with --seed %llu would not continue its run", o->load,
                        (unsigned long long)s->seed, (unsigned long long)o->seed);
    if (o->batch && o->batch * (rt_par ? rt_par->ranks : 1) != s->batch)
        return rt_error("%s was trained with batch %lld: resuming with --batch %lld would not continue its run",
                        o->load, (long long)s->batch, (long long)o->batch);
    r->seed = s->seed;
    r->epochs = o->epochs ? o->epochs : s->epochs;
    if (s->epochs_done >= r->epochs)
        return rt_error("%s has finished %lld epoch%s: pass --epochs N with N > %lld to train on", o->load,
                        (long long)s->epochs_done, s->epochs_done == 1 ? "" : "s", (long long)s->epochs_done);
    if (o->stop_after && o->stop_after <= s->step)
        return rt_error("%s is at step %lld already: --stop-after %lld is behind it", o->load, (long long)s->step,
                        (long long)o->stop_after);
    for (int i = 0; i < r->m->n_hypers; i++)
        if (s->has_hyper[i] && !set_by_options(o, r->m->hypers[i].name))
            r->hypers[i] = s->hypers[i];
    return 0;
}

/* --resume, after the data: it must be laid out as the run's was. */
static int resume_position(rt_train_run *r) {
    const rt_run_state *s = r->resume;
    const rt_opts *o = r->o;
    if (r->data->n != s->samples)
        return rt_error("%s was trained on %lld %s an epoch, %s gives %lld: resume on the same data", o->load,
                        (long long)s->samples, r->text ? "streams or windows" : "samples", o->data,
                        (long long)r->data->n);
    if ((r->whole != NULL) != s->windows)
        return rt_error("%s was trained %s --windows: resume %s it", o->load, s->windows ? "with" : "without",
                        s->windows ? "with" : "without");
    if ((o->no_shuffle == 0) != (s->shuffle != 0))
        return rt_error("%s was trained %s --no-shuffle: resume %s it", o->load, s->shuffle ? "without" : "with",
                        s->shuffle ? "without" : "with");
    if (s->has_base_lr && r->lr_index >= 0 && !set_by_options(o, "lr"))
        r->base_lr = r->lr = s->base_lr;
    if (r->epochs != s->epochs && r->m->schedule && !r->quiet)
        rt_note("the learning-rate schedule now spans %lld epochs, not the %lld %s was trained for",
                (long long)r->epochs, (long long)s->epochs, o->load);
    r->step = s->step;
    return 0;
}

static int prepare(rt_train_run *r) {
    const rt_model *m = r->m;
    const rt_opts *o = r->o;
    int64_t ranks = rt_par ? rt_par->ranks : 1; /* the batch is per rank, the checkpoint's global */
    if (r->resume && r->resume->batch % ranks)
        return rt_error("%s was trained with batch %lld, which %lld ranks do not share evenly", o->load,
                        (long long)r->resume->batch, (long long)ranks);
    if (check_trainable(m, o) ||
        rt_resolve_batch(m, o->batch, r->resume ? r->resume->batch / ranks : rt_train_batch(m), &r->batch))
        return -1;
    r->batch *= ranks; /* the global batch: the steps are those of one process with it */
    if (!(r->hypers = rt_resolve_hypers(m, o, 0)))
        return -1;
    r->epochs = o->epochs ? o->epochs : m->epochs > 0 ? m->epochs : 1;
    r->seed = rt_resolve_seed(m, o);
    if (r->resume && resume_settings(r))
        return -1;
    r->log_every = o->log_every ? o->log_every : r->epochs / 10 > 1 ? r->epochs / 10 : 1;
    r->quiet = o->quiet;
    r->tty = !o->quiet && isatty(STDOUT_FILENO) && !rt_par; /* mpirun gives ranks a pty, terminal or not */
    /* The checkpoint first: labelled text is read through its words. */
    rt_vocab loaded;
    r->arena = rt_setup(m, r->seed, o->load, &loaded);
    int rc = r->arena && load_data(r, &loaded) == 0 && prepare_lr(r) == 0 ? 0 : -1;
    if (rc == 0 && r->resume && resume_position(r))
        rc = -1;
    if (rc == 0 && rt_par && rt_par->state_rows(r, 0)) /* a checkpoint's streams: this rank's */
        rc = -1;
    if (rc == 0 && o->log && rt_log_open(r))
        rc = -1;
    if (rc == 0 && o->log_steps && rt_step_log_open(r))
        rc = rt_log_close(r, -1);
    if (rc == 0)
        rc = adopt_vocab(r, &loaded);
    rt_lexicon_free(loaded.lexicon); /* unless load_labels took it */
    return rc;
}

static void keep_result(const rt_train_run *r, rt_train_result *res) {
    res->loss = r->loss;
    res->val_loss = r->val_loss;
    memcpy(res->metrics, r->metrics, (size_t)r->m->n_metrics * sizeof *res->metrics);
    memcpy(res->val_metrics, r->val_metrics, (size_t)r->m->n_metrics * sizeof *res->val_metrics);
}

/* One training run with options o; res (may be NULL) gets the final
 * values, and res->started says whether the set-up (data, checkpoint,
 * log files) worked, so that a sweep tells a diverged run from a command
 * that cannot work at all.  0, -1, or 128 + N when signal N stopped it
 * (saved where it stood, with --save). */
int rt_train(const rt_model *m, const rt_opts *o, rt_train_result *res) {
    rt_train_run r;
    memset(&r, 0, sizeof r);
    r.m = m;
    r.o = o;
    /* --resume CKPT: the checkpoint is loaded as --load's is */
    rt_opts resumed;
    rt_run_state state;
    if (o->resume) {
        if (res)
            res->started = 0;
        if (rt_run_state_read(m, o->resume, &state))
            return -1;
        resumed = *o;
        resumed.load = o->resume;
        r.o = &resumed;
        r.resume = &state;
    }
    r.lr_index = -1;
    r.metrics = rt_xcalloc((size_t)m->n_metrics + 1, sizeof *r.metrics);
    r.val_metrics = rt_xcalloc((size_t)m->n_metrics + 1, sizeof *r.metrics);
    int rc = prepare(&r);
    if (res)
        res->started = rc == 0;
    if (rc == 0 && !r.quiet)
        rt_progress_summary(&r);
    if (rc == 0 && !r.quiet && r.labels)
        rt_labels_describe_training(m, r.vocab.lexicon, &r.labels_info);
    if (rc == 0)
        rc = train_loop(&r);
    if (rc == 0)
        rc = finish(&r);
    else if (rc == 1) /* stopped, saved: 0 for --stop-after, 128 + N for signal N */
        rc = r.stop == 2 ? 128 + interrupted : 0;
    rc = rt_log_close(&r, rc);
    if (rc == 0 && res)
        keep_result(&r, res);
    if (r.resume)
        rt_run_state_free(&state);
    rt_arena_free(r.arena);
    rt_data_free(r.data);
    rt_data_free(r.val);
    rt_data_free(r.whole);
    rt_lexicon_free(r.vocab.lexicon);
    free(r.hypers);
    free(r.epoch_state);
    free(r.metrics);
    free(r.val_metrics);
    return rc;
}

int rt_cmd_train(const rt_model *m, const rt_opts *o) {
    if (o->val && o->has_val_split) {
        fprintf(stderr, "error: --val and --val-split both give validation data: pass one (see '%s train --help')\n",
                o->prog);
        return RT_EXIT_USAGE;
    }
    if ((o->resume && o->load) || ((o->resume || o->stop_after) && o->n_sweeps)) {
        fprintf(stderr, "error: %s is for one run: it does not go with %s (see '%s train --help')\n",
                o->resume ? "--resume" : "--stop-after", o->resume && o->load ? "--load" : "--sweep", o->prog);
        return RT_EXIT_USAGE;
    }
    rt_opts own; /* under mpirun: this rank's (it refuses --sweep) */
    int distributed = rt_parallel_ops ? rt_parallel_ops->start(m, o, &own) : 0;
    if (distributed < 0)
        return RT_EXIT_FAIL;
    if (o->n_sweeps)
        return rt_cmd_sweep(m, o);
    rt_par = distributed ? rt_parallel_ops : NULL;
    int rc = rt_train(m, distributed ? &own : o, NULL);
    rc = rc > 0 ? rc : rc ? RT_EXIT_FAIL : 0;
    return rt_par ? rt_par->end(rc) : rc;
}
