/*
 * rt_text.c - a text file as the data of a character-level model.
 *
 * A model with exactly one input and one target, both i32 [B, T] with the
 * same T (token ids, and the token that follows each), takes a file whose
 * name ends in `.txt` (or `.txt.gz`) as a stream of bytes.  Its vocabulary
 * is the sorted set of byte values it holds, and a byte's id is its rank
 * there; a validation file, `eval`'s data and a fine-tuning run map their
 * bytes through the training vocabulary (the checkpoint's) instead, and a
 * byte outside it is an error.
 *
 * Truncated back-propagation through time: the n tokens are cut into B
 * contiguous streams of L = n / B tokens (the last n mod B are dropped), and
 * step s of an epoch gives row b the window stream_b[s*T, s*T + T) with its
 * targets one token later, so that the recurrent state a step leaves in
 * row b is where row b's next window begins.  An epoch is (L - 1) / T full
 * steps.  We lay these windows out as an ordinary data set in step-major
 * order (sample s*B + b), so the training loop walks it unshuffled in
 * batches of exactly B and everything else (progress, --log, eval) works
 * unchanged.  The batch must therefore be the same wherever the data set is
 * used; rt_train.c and rt_eval.c see to that.
 *
 * Random windows (--windows, and the default for a model without a
 * `state`, such as a small GPT, which carries nothing from one step to the
 * next): each step draws B start positions s,
 * uniform over [0, n - T - 1], from the seed's windows stream, and row b
 * gets ids[s, s + T) with targets ids[s + 1, s + T + 1).  An epoch is
 * n / (B * T) steps (at least 1), so it still covers about n characters.
 * rt_text_windows() makes an epoch's data set and rt_text_draw() refills
 * it at the start of every epoch from the token ids, which a text data set
 * keeps.  The windows are unrelated, so the data set is `independent`:
 * the state is zeroed before every step.  Evaluating such a model (its
 * validation, final loss and `eval --windows`) walks the text's
 * consecutive windows instead -- one stream, layout_streams with B = 1 --
 * which is deterministic, predicts every character (but the last few)
 * once, and does not depend on the seed; it is independent too.
 */
#include "rt_internal.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static int has_suffix(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* One i32 input and one i32 target, both [B, T] with the same T. */
int rt_text_model(const rt_model *m) {
    if (m->n_inputs != 1 || m->n_targets != 1)
        return 0;
    const rt_tensor *x = &m->inputs[0], *y = &m->targets[0];
    return x->dtype == RT_I32 && y->dtype == RT_I32 && x->rank == 2 && y->rank == 2 && x->batch_mask == 1 &&
           y->batch_mask == 1 && x->dims[1] == y->dims[1];
}

/* Random windows, not streams: asked for, or the model has no `state`
 * (rt_param.state 1) that streams would carry from window to window. */
int rt_text_windowed(const rt_model *m, int asked) {
    for (int i = 0; i < m->n_params && !asked; i++)
        if (m->params[i].state == 1)
            return 0;
    return 1;
}

/* files names one .txt (or .txt.gz) file and the model takes text. */
int rt_text_applies(const rt_model *m, const char *files) {
    return files && !strchr(files, ',') && (has_suffix(files, ".txt") || has_suffix(files, ".txt.gz")) &&
           rt_text_model(m);
}

/* How many token ids the model can take: what the input indexes (its
 * embedding table), else what the target does; 0: not known. */
int64_t rt_text_vocab_limit(const rt_model *m) {
    return m->inputs[0].index_range > 0 ? m->inputs[0].index_range : m->targets[0].index_range;
}

/* The id of a byte value, or -1 if it is not in the vocabulary. */
int rt_vocab_id(const rt_vocab *v, int byte) {
    for (int i = 0; i < v->n; i++)
        if (v->bytes[i] == byte)
            return i;
    return -1;
}

/* 'a' for a printable byte, \xNN otherwise: for messages. */
void rt_vocab_char(int byte, char *buf, size_t size) {
    if (isprint(byte) && byte < 0x80)
        snprintf(buf, size, "'%c'", byte);
    else
        snprintf(buf, size, "\\x%02x", byte);
}

static void build_vocab(const unsigned char *text, size_t len, rt_vocab *v) {
    int present[256] = {0};
    for (size_t i = 0; i < len; i++)
        present[text[i]] = 1;
    v->n = 0;
    for (int c = 0; c < 256; c++)
        if (present[c])
            v->bytes[v->n++] = (unsigned char)c;
}

/* The ids of text's bytes through v; -1 (naming the byte) if one is not
 * in it. */
static int32_t *map_text(const char *path, const unsigned char *text, size_t len, const rt_vocab *v) {
    int id_of[256];
    for (int c = 0; c < 256; c++)
        id_of[c] = rt_vocab_id(v, c);
    int32_t *ids = rt_xmalloc((len ? len : 1) * sizeof *ids);
    for (size_t i = 0; i < len; i++) {
        ids[i] = id_of[text[i]];
        if (ids[i] < 0) {
            char ch[8];
            rt_vocab_char(text[i], ch, sizeof ch);
            rt_error("%s: byte %s at offset %zu is not in the training vocabulary (%d characters)", path, ch, i, v->n);
            free(ids);
            return NULL;
        }
    }
    return ids;
}

static int check_vocab_size(const rt_model *m, const char *path, const rt_vocab *v) {
    int64_t limit = rt_text_vocab_limit(m);
    if (limit > 0 && v->n > limit)
        return rt_error("%s has %d distinct characters, but model %s takes at most %lld token ids (input \"%s\")", path,
                        v->n, m->name, (long long)limit, m->inputs[0].name);
    return 0;
}

/* B contiguous streams, step-major (see the top of the file). */
static rt_dataset *layout_streams(const rt_model *m, const char *path, const int32_t *ids, int64_t n, int64_t batch) {
    int64_t t = m->inputs[0].dims[1], stream = n / batch, steps = (stream - 1) / t;
    if (steps < 1) {
        rt_error("%s: %lld characters make %lld streams of %lld, too short for one step of %lld (need at least %lld "
                 "characters)",
                 path, (long long)n, (long long)batch, (long long)stream, (long long)t, (long long)(batch * (t + 1)));
        return NULL;
    }
    const rt_tensor *tensors[2] = {&m->inputs[0], &m->targets[0]};
    rt_dataset *d = rt_data_alloc(tensors, 2, steps * batch);
    int32_t *x = d->data[0], *y = d->data[1];
    for (int64_t s = 0; s < steps; s++)
        for (int64_t b = 0; b < batch; b++) {
            const int32_t *from = ids + b * stream + s * t;
            int64_t row = (s * batch + b) * t;
            memcpy(x + row, from, (size_t)t * sizeof *x);
            memcpy(y + row, from + 1, (size_t)t * sizeof *y);
        }
    return d;
}

/* --windows: the text's consecutive windows, for evaluation (see the top
 * of the file). */
static rt_dataset *layout_consecutive(const rt_model *m, const char *path, const int32_t *ids, int64_t n) {
    int64_t t = m->inputs[0].dims[1];
    if (n < t + 1) {
        rt_error("%s: %lld characters are too short for one window of %lld and its targets (--windows needs at "
                 "least %lld characters)",
                 path, (long long)n, (long long)t, (long long)(t + 1));
        return NULL;
    }
    rt_dataset *d = layout_streams(m, path, ids, n, 1);
    d->independent = 1;
    return d;
}

/* An epoch of random windows drawn from text (a data set rt_text_load
 * made with `windows` set), for batch B; rt_text_draw() fills it. */
rt_dataset *rt_text_windows(const rt_dataset *text, int64_t batch) {
    int64_t t = text->layouts[0].sample, steps = text->text_n / (batch * t);
    rt_dataset *d = rt_data_alloc(text->tensors, text->n_tensors, (steps > 1 ? steps : 1) * batch);
    d->independent = 1;
    d->path = rt_xstrdup(text->path);
    return d;
}

/* Draws every window of `windows` afresh from text's token ids, in step
 * and row order. */
void rt_text_draw(rt_dataset *windows, const rt_dataset *text, rt_rng *r) {
    int64_t t = windows->layouts[0].sample;
    int32_t *x = windows->data[0], *y = windows->data[1];
    for (int64_t i = 0; i < windows->n; i++) {
        const int32_t *from = text->text + rt_rng_below(r, (uint64_t)(text->text_n - t));
        memcpy(x + i * t, from, (size_t)t * sizeof *x);
        memcpy(y + i * t, from + 1, (size_t)t * sizeof *y);
    }
}

/* The data set of a text file for a model that rt_text_model() accepts:
 * B streams, or with `windows` the consecutive windows.  It keeps the
 * token ids (d->text).  vocab->n == 0: the file's own vocabulary, stored
 * in *vocab; otherwise the file is read through *vocab.  *chars (if not
 * NULL) gets its size. */
rt_dataset *rt_text_load(const rt_model *m, const char *path, int64_t batch, int windows, rt_vocab *vocab,
                         int64_t *chars) {
    char *text;
    size_t len;
    if (rt_read_data_file(path, &text, &len))
        return NULL;
    const unsigned char *bytes = (const unsigned char *)text;
    if (vocab->n == 0)
        build_vocab(bytes, len, vocab);
    int32_t *ids = NULL;
    if (len == 0)
        rt_error("%s is empty", path);
    else if (check_vocab_size(m, path, vocab) == 0)
        ids = map_text(path, bytes, len, vocab);
    free(text);
    rt_dataset *d = NULL;
    if (ids)
        d = windows ? layout_consecutive(m, path, ids, (int64_t)len)
                    : layout_streams(m, path, ids, (int64_t)len, batch);
    if (chars)
        *chars = (int64_t)len;
    if (!d) {
        free(ids);
        return NULL;
    }
    d->text = ids;
    d->text_n = (int64_t)len;
    d->path = rt_xstrdup(path);
    return d;
}

/* Rewrites d's ids from vocabulary `from` to `to` (a checkpoint's, named
 * to_name): fine-tuning keeps the ids the model was trained with. */
int rt_text_remap(rt_dataset *d, const rt_vocab *from, const rt_vocab *to, const char *to_name) {
    int id_of[256];
    for (int i = 0; i < from->n; i++) {
        id_of[i] = rt_vocab_id(to, from->bytes[i]);
        if (id_of[i] < 0) {
            char ch[8];
            rt_vocab_char(from->bytes[i], ch, sizeof ch);
            return rt_error("%s: byte %s is not in the vocabulary of %s (%d characters)", d->path, ch, to_name, to->n);
        }
    }
    for (int k = 0; k < d->n_tensors; k++) {
        int32_t *ids = d->data[k];
        for (int64_t i = 0; i < d->n * d->layouts[k].sample; i++)
            ids[i] = id_of[ids[i]];
    }
    for (int64_t i = 0; i < d->text_n; i++)
        d->text[i] = id_of[d->text[i]];
    return 0;
}
