/*
 * rt_predict.c - `predict`: run the model on inputs and write its outputs.
 *
 * The input file holds the input columns (target columns may follow and
 * are ignored), so the files a model was evaluated on can be fed back as
 * they are.  The result is CSV with one row per input sample: a header
 * naming each output element (`y` for a [B] output, `probs_0`..`probs_9`
 * for [B, 10], `y_1_2` for element [1][2] of a sample; names that pandas,
 * R and spreadsheets take as they are) and the values at full precision
 * (%.9g round-trips an f32).  Hyper-parameter "training" is 0.
 *
 * Messages: a model that takes labelled text (rt_labels.c), given a
 * checkpoint with its words and classes, reads messages instead: one a
 * line from standard input (with a prompt for each when that is a
 * terminal), from --input FILE (a .tsv file's texts, any other file's
 * lines) or the one --text gives.  It answers each with a line: the
 * likeliest class's name and its probability, tab-separated, or with
 * --top N the N likeliest, best first, on the same line.  The
 * probabilities are the first f32 [B, K] output's values if they sum to 1,
 * their softmax otherwise (logits).  A message without words is an error
 * naming its line (at a terminal, a note, and the next line is read).
 */
#include "rt_internal.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int check_outputs(const rt_model *m) {
    if (!m->predict_step || m->n_outputs == 0)
        return rt_error("model %s has no outputs to predict", m->name);
    for (int i = 0; i < m->n_outputs; i++)
        if (!rt_layout_of(&m->outputs[i]).has_batch)
            return rt_error("output \"%s\" has no batch dimension, so it has no per-sample value to write",
                            m->outputs[i].name);
    return 0;
}

/* The header of element k of one sample of t: `y`, `y_2` or `y_1_0`. */
static void header_name(const rt_tensor *t, int64_t k, FILE *f) {
    int64_t index[RT_MAX_RANK];
    int n = rt_sample_index(t, k, index);
    fputs(t->name, f);
    for (int i = 0; i < n; i++)
        fprintf(f, "_%lld", (long long)index[i]);
}

static void write_header(const rt_model *m, FILE *f) {
    for (int i = 0; i < m->n_outputs; i++) {
        const rt_tensor *t = &m->outputs[i];
        for (int64_t k = 0; k < rt_layout_of(t).sample; k++) {
            if (i || k)
                fputc(',', f);
            header_name(t, k, f);
        }
    }
    fputc('\n', f);
}

/* Row i of the batch just computed. */
static void write_row(const rt_model *m, const char *arena, int64_t batch, int64_t i, void *sample, FILE *f) {
    for (int o = 0; o < m->n_outputs; o++) {
        const rt_tensor *t = &m->outputs[o];
        int64_t n = rt_layout_of(t).sample;
        rt_read_sample(arena, t, batch, i, sample);
        for (int64_t k = 0; k < n; k++) {
            const char *sep = o || k ? "," : "";
            if (t->dtype == RT_I32)
                fprintf(f, "%s%d", sep, ((int32_t *)sample)[k]);
            else
                fprintf(f, "%s%.9g", sep, ((float *)sample)[k]);
        }
    }
    fputc('\n', f);
}

static void predict_all(const rt_model *m, char *arena, const rt_dataset *d, int64_t batch, FILE *f) {
    int64_t largest = 1;
    for (int o = 0; o < m->n_outputs; o++)
        if (rt_layout_of(&m->outputs[o]).sample > largest)
            largest = rt_layout_of(&m->outputs[o]).sample;
    void *sample = rt_xmalloc((size_t)largest * 4);
    write_header(m, f);
    rt_zero_state(m, arena); /* a checkpoint holds the state training left */
    for (int64_t start = 0; start < d->n; start += batch) {
        int64_t b = d->n - start < batch ? d->n - start : batch;
        rt_gather_range(arena, d, start, b);
        rt_write_hypers(m, arena, NULL, 0, 0);
        m->predict_step(arena, b);
        for (int64_t i = 0; i < b; i++)
            write_row(m, arena, b, i, sample, f);
    }
    free(sample);
}

/* Closes (a file) or flushes (stdout) f, written to path; rc if all went
 * well, else -1 with the error. */
static int finish_output(FILE *f, const char *path, int rc) {
    int failed = ferror(f);
    if (path)
        failed |= fclose(f) != 0;
    else
        failed |= fflush(f) != 0;
    if (failed)
        return rt_error("cannot write %s: %s", path ? path : "standard output", strerror(errno));
    return rc;
}

static int predict_to(const rt_model *m, char *arena, const rt_dataset *d, int64_t batch, const char *path) {
    FILE *f = path ? fopen(path, "w") : stdout;
    if (!f)
        return rt_error("cannot open %s for writing: %s", path, strerror(errno));
    predict_all(m, arena, d, batch, f);
    return finish_output(f, path, 0);
}

/*
 * Messages
 */

typedef struct answerer {
    const rt_model *m;
    char *arena;
    rt_lexicon *x;
    const rt_tensor *out; /* f32 [B, K] */
    int64_t k, top, batch;
    float *scores;
    int64_t *order;
    FILE *f;
} answerer;

/* The first f32 [B, K] output with K >= 2. */
static const rt_tensor *class_output(const rt_model *m) {
    for (int i = 0; i < m->n_outputs; i++) {
        const rt_tensor *t = &m->outputs[i];
        if (t->dtype == RT_F32 && t->rank == 2 && t->batch_mask == 1 && t->dims[1] >= 2)
            return t;
    }
    return NULL;
}

/* Probabilities as they are; anything else (logits) through softmax. */
static void to_probabilities(float *v, int64_t k) {
    double sum = 0, z = 0;
    int negative = 0;
    float largest = v[0];
    for (int64_t j = 0; j < k; j++) {
        sum += v[j];
        negative |= v[j] < 0;
        largest = v[j] > largest ? v[j] : largest;
    }
    if (!negative && fabs(sum - 1) < 1e-3)
        return;
    for (int64_t j = 0; j < k; j++)
        z += v[j] = expf(v[j] - largest);
    for (int64_t j = 0; j < k; j++)
        v[j] = (float)(v[j] / z);
}

/* "order_status<TAB>0.934", the N likeliest on one line. */
static void answer_row(answerer *a, int64_t batch, int64_t i) {
    float *p = a->scores;
    rt_read_sample(a->arena, a->out, batch, i, p);
    to_probabilities(p, a->k);
    for (int64_t j = 0; j < a->k; j++)
        a->order[j] = j;
    for (int64_t t = 0; t < a->top; t++) {
        int64_t best = t;
        for (int64_t j = t + 1; j < a->k; j++)
            if (p[a->order[j]] > p[a->order[best]])
                best = j;
        int64_t c = a->order[best];
        a->order[best] = a->order[t];
        a->order[t] = c;
        if (t)
            fputc('\t', a->f);
        if (c < a->x->n_classes)
            fputs(a->x->classes[c], a->f);
        else
            fprintf(a->f, "class_%lld", (long long)c);
        fprintf(a->f, "\t%.4f", p[c]);
    }
    fputc('\n', a->f);
}

static void answer_all(answerer *a, const rt_dataset *d) {
    rt_zero_state(a->m, a->arena);
    for (int64_t start = 0; start < d->n; start += a->batch) {
        int64_t b = d->n - start < a->batch ? d->n - start : a->batch;
        rt_gather_range(a->arena, d, start, b);
        rt_write_hypers(a->m, a->arena, NULL, 0, 0);
        a->m->predict_step(a->arena, b);
        for (int64_t i = 0; i < b; i++)
            answer_row(a, b, i);
    }
}

/* The messages of `name`, one a line of data[0..len); a line without
 * words is an error naming NAME:LINE. */
static rt_dataset *read_messages(const answerer *a, const char *name, const char *data, size_t len) {
    int64_t n = 0, length = a->m->inputs[0].dims[1];
    for (size_t i = 0; i < len; i++)
        n += data[i] == '\n' || i + 1 == len;
    if (n == 0) {
        rt_error("%s: no messages", name);
        return NULL;
    }
    const rt_tensor *words = &a->m->inputs[0];
    rt_dataset *d = rt_data_alloc(&words, 1, n);
    for (int64_t line = 0; line < n; line++) {
        const char *end = memchr(data, '\n', len);
        size_t size = end ? (size_t)(end - data) : len;
        if (rt_labels_encode(a->x, data, size, (int32_t *)d->data[0] + line * length, length, NULL) == 0) {
            rt_error("%s:%lld: %s", name, (long long)line + 1,
                     size == 0 || (size == 1 && data[0] == '\r') ? "empty message" : "the message has no words");
            rt_data_free(d);
            return NULL;
        }
        data += size + (end != NULL);
        len -= size + (end != NULL);
    }
    return d;
}

/* A prompt on standard error, an answer per line. */
static int converse(answerer *a) {
    const rt_tensor *words = &a->m->inputs[0];
    rt_dataset *d = rt_data_alloc(&words, 1, 1);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    fprintf(stderr, "Type a message and press Enter (Ctrl-D to end).\n");
    for (;;) {
        fprintf(stderr, "> ");
        fflush(stderr);
        if ((n = getline(&line, &cap, stdin)) < 0)
            break;
        if (rt_labels_encode(a->x, line, (size_t)n, d->data[0], a->m->inputs[0].dims[1], NULL) == 0) {
            rt_note("that message has no words (letters or digits)");
            continue;
        }
        answer_all(a, d);
        fflush(a->f);
    }
    fputc('\n', stderr);
    free(line);
    rt_data_free(d);
    return 0;
}

/* The messages of --text, --input or standard input; NULL after an error. */
static rt_dataset *load_messages(answerer *a, const rt_opts *o) {
    if (o->text) { /* one message, whatever it holds */
        const rt_tensor *words = &a->m->inputs[0];
        rt_dataset *d = rt_data_alloc(&words, 1, 1);
        if (rt_labels_encode(a->x, o->text, strlen(o->text), d->data[0], words->dims[1], NULL) > 0)
            return d;
        rt_error("--text: the message has no words (letters or digits)");
        rt_data_free(d);
        return NULL;
    }
    if (o->input && rt_labels_applies(a->m, o->input))
        return rt_labels_load(a->m, o->input, RT_DATA_INPUTS, &a->x, NULL);
    const char *path = o->input ? o->input : "-";
    char *data;
    size_t len;
    if (rt_read_data_file(path, &data, &len))
        return NULL;
    rt_dataset *d = read_messages(a, strcmp(path, "-") == 0 ? "standard input" : path, data, len);
    free(data);
    return d;
}

static int answer_messages(answerer *a, const rt_opts *o) {
    if (!o->text && (!o->input || strcmp(o->input, "-") == 0) && isatty(STDIN_FILENO))
        return converse(a);
    rt_dataset *d = load_messages(a, o);
    if (!d)
        return -1;
    answer_all(a, d);
    rt_data_free(d);
    return 0;
}

static int predict_messages(const rt_model *m, const rt_opts *o, char *arena, rt_lexicon *x, int64_t batch) {
    answerer a = {m, arena, x, class_output(m), 0, 0, batch, NULL, NULL, NULL};
    if (!a.out)
        return rt_error("model %s has no f32 [B, K] output to read class probabilities from", m->name);
    a.k = a.out->dims[1];
    a.top = o->top ? (o->top < a.k ? o->top : a.k) : 1;
    a.f = o->output ? fopen(o->output, "w") : stdout;
    if (!a.f)
        return rt_error("cannot open %s for writing: %s", o->output, strerror(errno));
    a.scores = rt_xmalloc((size_t)a.k * sizeof *a.scores);
    a.order = rt_xmalloc((size_t)a.k * sizeof *a.order);
    int rc = answer_messages(&a, o);
    free(a.scores);
    free(a.order);
    return finish_output(a.f, o->output, rc);
}

/*
 * The command
 */

/* A model that takes labelled text: messages with a checkpoint that has
 * words and classes, otherwise files as for any model. */
static int predict_labels(const rt_model *m, const rt_opts *o, int64_t batch) {
    rt_vocab v;
    char *arena = rt_setup(m, m->seed, o->load, &v);
    int rc = -1;
    if (arena && v.lexicon)
        rc = predict_messages(m, o, arena, v.lexicon, batch);
    else if (arena && (!o->input || o->text || o->top || rt_labels_applies(m, o->input)))
        rt_error("%s has no words and classes (\"mdl.words\"): reading messages needs a checkpoint saved by "
                 "training on a .tsv file",
                 o->load);
    else if (arena) {
        rt_dataset *d = rt_data_load(m, o->input, RT_DATA_INPUTS);
        rc = d ? predict_to(m, arena, d, batch, o->output) : -1;
        rt_data_free(d);
    }
    rt_lexicon_free(v.lexicon);
    rt_arena_free(arena);
    return rc ? RT_EXIT_FAIL : 0;
}

int rt_cmd_predict(const rt_model *m, const rt_opts *o) {
    int labels = rt_labels_model(m);
    if (!o->load || (!o->input && !labels)) {
        fprintf(stderr, "error: predict needs --load CKPT and --input FILE (see '%s predict --help')\n", o->prog);
        return RT_EXIT_USAGE;
    }
    if (o->text && o->input) {
        fprintf(stderr, "error: --text and --input both give messages: pass one (see '%s predict --help')\n", o->prog);
        return RT_EXIT_USAGE;
    }
    int64_t batch;
    if (check_outputs(m) || rt_resolve_batch(m, o->batch, m->max_batch, &batch))
        return RT_EXIT_FAIL;
    if (labels)
        return predict_labels(m, o, batch);
    if (o->text || o->top) {
        rt_error("--text and --top apply to a model that takes labelled text (i32 [B, L] words, i32 [B] classes)");
        return RT_EXIT_FAIL;
    }
    rt_dataset *d = rt_data_load(m, o->input, RT_DATA_INPUTS);
    char *arena = d ? rt_setup(m, m->seed, o->load, NULL) : NULL;
    int rc = arena ? predict_to(m, arena, d, batch, o->output) : -1;
    rt_arena_free(arena);
    rt_data_free(d);
    return rc ? RT_EXIT_FAIL : 0;
}
