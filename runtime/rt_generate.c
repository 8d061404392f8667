/*
 * rt_generate.c - `generate`: sampling text from a character-level model.
 *
 * The checkpoint must carry the vocabulary of the text it was trained on
 * ("mdl.vocab", rt_ckpt.c).  With the recurrent state zeroed, batch 1 and
 * hyper-parameter "scan_steps" at 1 (the recurrence advances one position
 * per predict_step, carrying its state in the `state` slots; generate_step,
 * where mdlc made one, is that model with a time axis of one), we feed the
 * prime one character at a time at position [0, 0] of the input, then
 * sample the next character from the model's first output at [0, 0, :],
 * print it at once and feed it back, --length times.
 *
 * Sampling: the output is taken as probabilities when its values at the
 * position look like a distribution (all in [0, 1], summing to 1 within
 * 1e-3), and as logits otherwise; ids past the vocabulary (an embedding
 * table larger than the text needed) are never drawn.  Logits are divided by the temperature (0: the argmax),
 * only the top-k are kept (0: all), then the fewest likeliest whose
 * probability reaches top-p; what is left is renormalised and drawn from
 * with the runtime's RNG, so the same seed gives the same text.
 */
#include "rt_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct sampler {
    double temperature, top_p;
    int64_t top_k;
    rt_rng rng;
    int n;          /* candidates: the vocabulary's size */
    int64_t width;  /* values per position in the output, >= n */
    double *logits; /* n */
    int *order;     /* n: candidate ids, likeliest first */
} sampler;

static int is_distribution(const float *v, int64_t n) {
    double s0 = 0, s1 = 0, s2 = 0, s3 = 0; /* four chains of adds, not one */
    int inside = 1;
    int64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        inside &= (v[i] >= 0) & (v[i] <= 1) & (v[i + 1] >= 0) & (v[i + 1] <= 1) & (v[i + 2] >= 0) &
                  (v[i + 2] <= 1) & (v[i + 3] >= 0) & (v[i + 3] <= 1);
        s0 += v[i], s1 += v[i + 1], s2 += v[i + 2], s3 += v[i + 3];
    }
    for (; i < n; i++) {
        inside &= (v[i] >= 0) & (v[i] <= 1);
        s0 += v[i];
    }
    return inside && fabs(s0 + s1 + s2 + s3 - 1) < 1e-3;
}

/* A draw from the weights v[0..n), not normalised: the first id whose
 * running sum passes u times their total, walking blocks of BLOCK ids by
 * their sums first (one chain of dependent subtractions per block, not
 * per id). */
enum { BLOCK = 8, MAX_BLOCKS = 64 };

static int draw_from(rt_rng *rng, const float *v, int n) {
    double sum[MAX_BLOCKS], total = 0;
    int blocks = (n + BLOCK - 1) / BLOCK;
    for (int b = 0; b < blocks; b++) {
        double t = 0;
        for (int i = b * BLOCK; i < n && i < (b + 1) * BLOCK; i++)
            t += v[i];
        sum[b] = t;
        total += t;
    }
    double u = rt_rng_uniform(rng) * total;
    int b = 0;
    for (; b < blocks - 1 && u >= sum[b]; b++)
        u -= sum[b];
    int end = (b + 1) * BLOCK < n ? (b + 1) * BLOCK : n;
    for (int i = b * BLOCK; i < end; i++) {
        u -= v[i];
        if (u < 0)
            return i;
    }
    for (int i = end - 1; i > 0; i--) /* rounding ran past the block: the last id that can be drawn */
        if (v[i] > 0)
            return i;
    return 0;
}

/* order[0..k): the k candidates of highest score, highest first, ties by
 * id, by insertion into a short sorted list (k is small, or this runs only
 * when top-p needs the whole order). */
static void select_top(sampler *s, int k) {
    int m = 0;
    for (int i = 0; i < s->n; i++) {
        if (m == k && !(s->logits[i] > s->logits[s->order[k - 1]]))
            continue;
        int j = m < k ? m++ : k - 1;
        for (; j > 0 && s->logits[i] > s->logits[s->order[j - 1]]; j--)
            s->order[j] = s->order[j - 1];
        s->order[j] = i;
    }
}

/* The next token id from the output values v[0..width): ids from n on
 * have no character and are never drawn.  A candidate's weight is its
 * probability to the power 1/temperature (exp(logit / temperature) for
 * logits), over the top-k, then over the fewest of those, likeliest first,
 * whose probability reaches top-p; without top-k and top-p nothing is
 * sorted and the draw walks the ids in order. */
static int sample(sampler *s, const float *v) {
    int probs = is_distribution(v, s->width), best = 0;
    for (int i = 1; i < s->n; i++)
        best = v[i] > v[best] ? i : best;
    if (s->temperature == 0 || !isfinite(v[best]) || (probs && !(v[best] > 0)))
        return best;
    if (probs && s->temperature == 1 && (s->top_k <= 0 || s->top_k >= s->n) && s->top_p >= 1) {
        /* the probabilities as they are: no copy, no division */
        if (s->n <= BLOCK * MAX_BLOCKS)
            return draw_from(&s->rng, v, s->n);
    }
    for (int i = 0; i < s->n; i++) /* scores in the order of the logits */
        s->logits[i] = v[i];
    int keep = s->top_k > 0 && s->top_k < s->n ? (int)s->top_k : s->n;
    if (keep < s->n || s->top_p < 1) {
        select_top(s, keep);
    } else {
        for (int i = 0; i < s->n; i++)
            s->order[i] = i;
    }
    double sum = 0, top = v[best];
    for (int i = 0; i < keep; i++) {
        double *w = &s->logits[s->order[i]];
        if (probs)
            *w = s->temperature == 1 ? *w / top : pow(*w / top, 1 / s->temperature);
        else
            *w = exp((*w - top) / s->temperature);
        sum += *w;
    }
    double reached = 0, total = sum;
    for (int i = 0; i < keep && s->top_p < 1; i++) { /* order is sorted here */
        reached += s->logits[s->order[i]] / sum;
        if (reached >= s->top_p) {
            keep = i + 1;
            total = 0;
            for (int j = 0; j < keep; j++)
                total += s->logits[s->order[j]];
            break;
        }
    }
    double u = rt_rng_uniform(&s->rng) * total;
    for (int i = 0; i < keep - 1; i++) {
        u -= s->logits[s->order[i]];
        if (u < 0)
            return s->order[i];
    }
    return s->order[keep - 1];
}

/* The entry that advances one character: generate_step where mdlc made
 * one (the model with its time axis of length 1), else predict_step with
 * its recurrences cut to one step (scan_steps = 1), whose layers after the
 * recurrence still run over the whole window.
 *
 * A model with positions (an attention's kv_cache) learnt windows of
 * `context` tokens: generate_step reads its place in the window from the
 * hyper "position" and appends to caches of that length.  When the window
 * is full it slides: the state (the caches) is zeroed and the last half of
 * the window is fed again from position 0, so a token costs two steps on
 * average, not a rerun of the whole window. */
typedef struct stepper {
    rt_kernel step;
    const float *hypers;  /* the model's values with --hyper's */
    const rt_hyper *position; /* its slot, where the model has one */
    const rt_tensor *in, *out;
    int cut_steps;
    int64_t context, pos; /* context 0: no positions */
    int *window;          /* the ids at positions 0 .. pos - 1 */
} stepper;

static stepper stepper_of(const rt_model *m) {
    stepper st = {m->predict_step, NULL, NULL, &m->inputs[0], &m->outputs[0], 1, 0, 0, NULL};
    if (m->generate_step && m->n_gen_inputs >= 1 && m->n_gen_outputs >= 1) {
        st = (stepper){m->generate_step, NULL, NULL, &m->gen_inputs[0], &m->gen_outputs[0], 0, 0, 0, NULL};
        st.position = rt_find_hyper(m, "position");
        if (st.position && m->inputs[0].rank >= 2)
            st.context = m->inputs[0].dims[1];
    }
    return st;
}

/* The hyper-parameter slots, written once: no kernel writes them, so
 * a step sets only its position. */
static void write_hypers(const rt_model *m, const stepper *st, char *arena) {
    rt_write_hypers(m, arena, st->hypers, 0, 0);
    if (st->cut_steps)
        rt_set_hyper(m, arena, "scan_steps", 1);
}

static void step_at(const stepper *st, char *arena, int id, int64_t pos) {
    int32_t token = id;
    if (st->context) {
        float at = (float)pos;
        memcpy(arena + st->position->offset, &at, sizeof at);
    }
    memcpy(arena + st->in->offset, &token, sizeof token);
    st->step(arena, 1);
}

/* One character in: the state advances and the output is the
 * distribution of the next one. */
static void feed(const rt_model *m, stepper *st, char *arena, int id) {
    if (st->context && st->pos == st->context) {
        int64_t keep = st->context / 2;
        memmove(st->window, st->window + st->context - keep, (size_t)keep * sizeof *st->window);
        rt_zero_state_rows(m, arena, 1); /* the GPT's caches: 128 KiB, not the max batch's 4 MiB */
        for (st->pos = 0; st->pos < keep; st->pos++)
            step_at(st, arena, st->window[st->pos], st->pos);
    }
    if (st->context)
        st->window[st->pos] = id;
    step_at(st, arena, id, st->pos++);
}

/* The prime's ids; -1 naming the first character not in the vocabulary. */
static int prime_ids(const char *prime, const rt_vocab *v, int *ids) {
    for (size_t i = 0; prime[i]; i++) {
        ids[i] = rt_vocab_id(v, (unsigned char)prime[i]);
        if (ids[i] < 0) {
            char ch[8];
            rt_vocab_char((unsigned char)prime[i], ch, sizeof ch);
            return rt_error("--prime: character %s at position %zu is not in the model's vocabulary (%d characters)",
                            ch, i, v->n);
        }
    }
    return 0;
}

static int check_model(const rt_model *m, const rt_opts *o, const rt_vocab *v) {
    if (!rt_text_model(m) || !m->predict_step || m->n_outputs < 1)
        return rt_error("model %s does not take text (one i32 input [B, T], one i32 target [B, T], an output)",
                        m->name);
    if (v->n == 0)
        return rt_error("%s has no vocabulary (\"mdl.vocab\"): generate needs a checkpoint saved by training on a .txt "
                        "file",
                        o->load);
    const rt_tensor *out = stepper_of(m).out;
    if (out->rank < 1 || out->dtype != RT_F32 || out->dims[out->rank - 1] < v->n)
        return rt_error("output \"%s\" has fewer than the vocabulary's %d values per position", out->name, v->n);
    return 0;
}

static void run(const rt_model *m, char *arena, const float *hypers, sampler *s, const rt_vocab *v, const int *ids,
                size_t n_prime, int64_t length) {
    stepper st = stepper_of(m);
    st.hypers = hypers;
    st.window = st.context ? rt_xmalloc((size_t)st.context * sizeof *st.window) : NULL;
    write_hypers(m, &st, arena);
    /* on a terminal each character shows as it is made; into a pipe or a
     * file stdio's buffer saves a write per character */
    int stream = isatty(STDOUT_FILENO);
    for (size_t i = 0; i < n_prime; i++)
        putchar(v->bytes[ids[i]]);
    fflush(stdout);
    for (size_t i = 0; i < n_prime; i++)
        feed(m, &st, arena, ids[i]);
    const float *out = (const float *)(arena + st.out->offset);
    for (int64_t k = 0; k < length; k++) {
        int id = sample(s, out);
        putchar(v->bytes[id]);
        if (stream)
            fflush(stdout);
        if (k + 1 < length)
            feed(m, &st, arena, id);
    }
    putchar('\n');
    free(st.window);
}

int rt_cmd_generate(const rt_model *m, const rt_opts *o) {
    if (!o->load || !o->prime) {
        fprintf(stderr, "error: generate needs --load CKPT and --prime TEXT (see '%s generate --help')\n", o->prog);
        return RT_EXIT_USAGE;
    }
    rt_vocab v;
    char *arena = rt_setup(m, m->seed, o->load, &v);
    size_t n_prime = strlen(o->prime);
    int *ids = rt_xmalloc((n_prime + 1) * sizeof *ids);
    int rc = arena && check_model(m, o, &v) == 0 && prime_ids(o->prime, &v, ids) == 0 ? 0 : -1;
    float *hypers = rc == 0 ? rt_resolve_hypers(m, o, 0) : NULL;
    rc = hypers ? rc : -1;
    if (rc == 0) {
        sampler s;
        s.temperature = o->has_temperature ? o->temperature : 1;
        s.top_p = o->has_top_p ? o->top_p : 1;
        s.top_k = o->top_k;
        s.n = v.n;
        const rt_tensor *out = stepper_of(m).out;
        s.width = out->dims[out->rank - 1];
        s.logits = rt_xmalloc((size_t)v.n * sizeof *s.logits);
        s.order = rt_xmalloc((size_t)v.n * sizeof *s.order);
        rt_rng_seed(&s.rng, rt_resolve_seed(m, o), RT_STREAM_SAMPLE);
        rt_zero_state(m, arena);
        rt_write_hypers(m, arena, hypers, 0, 0);
        if (m->generate_step && m->prepare_step)
            m->prepare_step(arena, 1);
        run(m, arena, hypers, &s, &v, ids, n_prime, o->has_length ? o->length : 500);
        free(s.logits);
        free(s.order);
    }
    free(hypers);
    free(ids);
    rt_lexicon_free(v.lexicon); /* a labelled-text checkpoint's, unused */
    rt_arena_free(arena);
    return rc ? RT_EXIT_FAIL : 0;
}
