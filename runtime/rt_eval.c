/*
 * rt_eval.c - evaluation: the loss and metrics over a whole data set, and
 * the `eval` command.
 *
 * rt_evaluate() zeroes the recurrent state (before every batch if the
 * data set's batches are independent windows), walks the data in order in
 * batches, calling eval_step with hyper-parameter "training" at 0, and
 * weights each batch's loss and metrics by its size, so a short last batch
 * counts for what it holds.  Training uses it for validation and for the
 * final loss.  `eval` reads a text file (rt_text.c) through the
 * checkpoint's vocabulary, as streams for the training batch (with
 * --windows, as its consecutive windows), and a ratings file through the
 * checkpoint's user and item ids (rt_ratings.c).
 *
 * Labelled text (a .tsv file, rt_labels.c) is read through the
 * checkpoint's words and classes, and `eval` says how many of its words
 * were unknown.
 *
 * For a classifier -- an f32 [B, K] output with K >= 2 and an i32 [B]
 * target -- it can also count the argmax of that output against the
 * labels: `eval` prints the accuracy and the K x K confusion matrix (rows
 * the true class, columns the predicted one), its rows named after the
 * classes when the checkpoint has their names.
 */
#include "rt_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* The largest K the confusion matrix is printed for. */
#define RT_CONFUSION_MAX_PRINT 40

/* The first f32 [B, K] output (K >= 2) and the first i32 [B] target;
 * 0 if the model has both, -1 if not. */
int rt_confusion_init(const rt_model *m, rt_confusion *c) {
    memset(c, 0, sizeof *c);
    for (int i = 0; i < m->n_outputs && !c->output; i++) {
        const rt_tensor *t = &m->outputs[i];
        if (t->dtype == RT_F32 && t->rank == 2 && t->batch_mask == 1 && t->dims[1] >= 2)
            c->output = t;
    }
    for (int i = 0; i < m->n_targets && !c->target; i++) {
        const rt_tensor *t = &m->targets[i];
        if (t->dtype == RT_I32 && t->rank == 1 && t->batch_mask == 1)
            c->target = t;
    }
    if (!c->output || !c->target)
        return -1;
    c->k = c->output->dims[1];
    c->counts = rt_xcalloc((size_t)(c->k * c->k), sizeof *c->counts);
    return 0;
}

/* The first largest element; NaNs never win (all NaN: 0). */
static int64_t argmax(const float *v, int64_t k) {
    int64_t best = 0;
    for (int64_t j = 1; j < k; j++)
        if (v[j] > v[best] || (isnan(v[best]) && !isnan(v[j])))
            best = j;
    return best;
}

static void count_batch(rt_confusion *c, const char *arena, const rt_dataset *d, int64_t start, int64_t b,
                        float *scores) {
    int labels = rt_data_find(d, c->target);
    for (int64_t i = 0; i < b; i++) {
        rt_read_sample(arena, c->output, b, i, scores);
        int64_t label = rt_data_int(d, labels, start + i), predicted = argmax(scores, c->k);
        c->total++;
        if (label < 0 || label >= c->k) {
            c->outside++;
            continue;
        }
        c->counts[label * c->k + predicted]++;
        c->correct += label == predicted;
    }
}

/* Loss and metrics over all of d, weighted by batch size.  Samples are
 * gathered and hyper-parameters written before every call: kernels may
 * reuse data slots as scratch. */
int rt_evaluate(const rt_model *m, char *arena, const rt_dataset *d, int64_t batch, const float *hypers, double step,
                double *loss, double *metrics, rt_confusion *c) {
    if (!m->eval_step)
        return rt_error("model %s has no eval step", m->name);
    if (c && (!c->output || rt_data_find(d, c->target) < 0))
        c = NULL;
    rt_zero_state(m, arena);
    float *scores = c ? rt_xmalloc((size_t)c->k * sizeof *scores) : NULL;
    *loss = 0;
    for (int j = 0; j < m->n_metrics; j++)
        metrics[j] = 0;
    for (int64_t start = 0; start < d->n; start += batch) {
        int64_t b = d->n - start < batch ? d->n - start : batch;
        if (d->independent)
            rt_zero_state(m, arena);
        rt_gather_range(arena, d, start, b);
        rt_write_hypers(m, arena, hypers, 0, step);
        m->eval_step(arena, b);
        if (m->has_loss)
            *loss += (double)b * rt_scalar(arena, &m->loss);
        for (int j = 0; j < m->n_metrics; j++)
            metrics[j] += (double)b * rt_scalar(arena, &m->metrics[j]);
        if (c)
            count_batch(c, arena, d, start, b, scores);
    }
    *loss /= (double)d->n;
    for (int j = 0; j < m->n_metrics; j++)
        metrics[j] /= (double)d->n;
    free(scores);
    return 0;
}

/*
 * eval
 */

/* The class names of rows and columns: "0 order_status". */
static void print_named_rows(const rt_confusion *c, const rt_lexicon *x, int count_w, int label_w) {
    int name_w = 0;
    for (int k = 0; k < x->n_classes && k < c->k; k++)
        if ((int)strlen(x->classes[k]) > name_w)
            name_w = (int)strlen(x->classes[k]);
    printf("%*s", label_w + name_w + 1, "");
    for (int64_t j = 0; j < c->k; j++)
        printf(" %*lld", count_w, (long long)j);
    printf("\n");
    for (int64_t i = 0; i < c->k; i++) {
        printf("%*lld %-*s", label_w, (long long)i, name_w, i < x->n_classes ? x->classes[i] : "");
        for (int64_t j = 0; j < c->k; j++)
            printf(" %*lld", count_w, (long long)c->counts[i * c->k + j]);
        printf("\n");
    }
}

/* x: the checkpoint's class names, or NULL. */
static void print_confusion(const rt_confusion *c, const rt_lexicon *x) {
    int64_t counted = c->total - c->outside;
    printf("accuracy %.6g (%lld of %lld: argmax of %s against %s)\n",
           counted ? (double)c->correct / (double)counted : 0.0, (long long)c->correct, (long long)counted,
           c->output->name, c->target->name);
    if (c->outside)
        printf("(%lld samples with a %s outside 0..%lld are left out)\n", (long long)c->outside, c->target->name,
               (long long)(c->k - 1));
    if (c->k > RT_CONFUSION_MAX_PRINT) {
        printf("confusion matrix: not printed for %lld classes (at most %d)\n", (long long)c->k,
               RT_CONFUSION_MAX_PRINT);
        return;
    }
    int64_t largest = c->k - 1;
    for (int64_t i = 0; i < c->k * c->k; i++)
        if (c->counts[i] > largest)
            largest = c->counts[i];
    int w = snprintf(NULL, 0, "%lld", (long long)largest) + 1;
    int label_w = snprintf(NULL, 0, "%lld", (long long)(c->k - 1));
    printf("confusion matrix (rows: true %s, columns: predicted):\n", c->target->name);
    if (x) {
        print_named_rows(c, x, w, label_w);
        return;
    }
    printf("%*s", label_w + 1, "");
    for (int64_t j = 0; j < c->k; j++)
        printf(" %*lld", w, (long long)j);
    printf("\n");
    for (int64_t i = 0; i < c->k; i++) {
        printf("%*lld:", label_w, (long long)i);
        for (int64_t j = 0; j < c->k; j++)
            printf(" %*lld", w, (long long)c->counts[i * c->k + j]);
        printf("\n");
    }
}

/* A .tsv file through the checkpoint's words and classes. */
static rt_dataset *load_labels(const rt_model *m, const rt_opts *o, rt_vocab *vocab) {
    if (!vocab->lexicon) {
        rt_error("%s has no words and classes (\"mdl.words\"): eval on a .tsv file needs a checkpoint saved by "
                 "training on one",
                 o->load);
        return NULL;
    }
    rt_labels_info info;
    rt_dataset *d = rt_labels_load(m, o->data, RT_DATA_LABELLED, &vocab->lexicon, &info);
    if (d)
        rt_labels_describe_data(m, &info);
    return d;
}

int rt_cmd_eval(const rt_model *m, const rt_opts *o) {
    if (!o->load || !o->data) {
        fprintf(stderr, "error: eval needs --load CKPT and --data FILE (see '%s eval --help')\n", o->prog);
        return RT_EXIT_USAGE;
    }
    int64_t batch;
    int text = rt_text_applies(m, o->data);
    if (o->windows && !text) {
        rt_error("--windows applies to a text file (a .txt file for a model that takes text)");
        return RT_EXIT_FAIL;
    }
    if (rt_resolve_batch(m, o->batch, text ? rt_train_batch(m) : m->max_batch, &batch))
        return RT_EXIT_FAIL;
    rt_dataset *d = NULL;
    char *arena = NULL;
    rt_vocab vocab = {0};
    if (text) { /* the checkpoint first: its vocabulary reads the text */
        arena = rt_setup(m, m->seed, o->load, &vocab);
        d = arena ? rt_text_load(m, o->data, batch, rt_text_windowed(m, o->windows), &vocab, NULL) : NULL;
    } else if (rt_ratings_applies(m, o->data)) { /* the same: its ids */
        arena = rt_setup(m, m->seed, o->load, NULL);
        d = arena ? rt_ratings_load(m, o->data, RT_RATINGS_EVAL) : NULL;
    } else if (rt_labels_applies(m, o->data)) {
        arena = rt_setup(m, m->seed, o->load, &vocab);
        d = arena ? load_labels(m, o, &vocab) : NULL;
    } else {
        d = rt_data_load(m, o->data, RT_DATA_LABELLED);
        arena = d ? rt_setup(m, m->seed, o->load, NULL) : NULL;
    }
    float *hypers = arena && d ? rt_resolve_hypers(m, o, 0) : NULL;
    double loss, *metrics = rt_xcalloc((size_t)m->n_metrics + 1, sizeof *metrics);
    rt_confusion c;
    int classifier = rt_confusion_init(m, &c) == 0;
    int rc = hypers ? rt_evaluate(m, arena, d, batch, hypers, 0, &loss, metrics, classifier ? &c : NULL) : -1;
    if (rc == 0) {
        if (m->has_loss)
            printf("loss %.6g\n", loss);
        for (int j = 0; j < m->n_metrics; j++)
            printf("%s %.6g\n", m->metrics[j].name, metrics[j]);
        if (classifier)
            print_confusion(&c, vocab.lexicon);
    }
    rt_lexicon_free(vocab.lexicon);
    free(c.counts);
    free(metrics);
    free(hypers);
    rt_arena_free(arena);
    rt_data_free(d);
    return rc ? RT_EXIT_FAIL : 0;
}
