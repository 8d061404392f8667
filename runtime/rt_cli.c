/*
 * rt_cli.c - the executable's command line: `prog COMMAND [options]`.
 *
 * Options are one table: each row names an option, the commands that take
 * it, the kind of value and where it goes in rt_opts.  Parsing, the
 * per-command --help and the errors all read that table, so adding an
 * option is adding a row.  Options accept `--name VALUE` and `--name=VALUE`.
 * A command line we cannot accept is one line `error: ...` and exit status
 * 2; the commands themselves return 0 or 1.
 */
#include "rt_internal.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

enum {
    CMD_TRAIN = 1, CMD_EVAL = 2, CMD_PREDICT = 4, CMD_GRADCHECK = 8, CMD_INFO = 16, CMD_GENERATE = 32,
    CMD_RECOMMEND = 64, CMD_BENCH = 128
};

/* OPT_NATURAL: an int64_t >= 0; OPT_PROBABILITY: a double in (0, 1]. */
enum {
    OPT_STRING,
    OPT_COUNT,
    OPT_NATURAL,
    OPT_SEED,
    OPT_REAL_NONNEG,
    OPT_REAL_POS,
    OPT_FRACTION,
    OPT_PROBABILITY,
    OPT_FLAG,
    OPT_HYPER,
    OPT_SWEEP
};

#define FIELD(f) offsetof(rt_opts, f)
#define NONE ((size_t)-1)

typedef struct option {
    const char *name, *arg; /* arg NULL: a flag */
    int kind;
    size_t field, has_field;
    int commands;
    const char *help;
} option;

static const option options[] = {
    {"--data", "FILES", OPT_STRING, FIELD(data), NONE, CMD_TRAIN, "training data (see Data files below)"},
    {"--data", "FILES", OPT_STRING, FIELD(data), NONE, CMD_EVAL, "data to evaluate on (required)"},
    {"--data", "FILES", OPT_STRING, FIELD(data), NONE, CMD_GRADCHECK,
     "take the batch from the first samples of FILES (default: random inputs)"},
    {"--val", "FILES", OPT_STRING, FIELD(val), NONE, CMD_TRAIN, "validation data, evaluated after every epoch"},
    {"--val-split", "X", OPT_FRACTION, FIELD(val_split), FIELD(has_val_split), CMD_TRAIN,
     "hold out the last fraction X (0 < X < 1) of --data for validation instead"},
    {"--input", "FILES", OPT_STRING, FIELD(input), NONE, CMD_PREDICT,
     "inputs to predict for, '-' for stdin (required, but for a model trained on a .tsv file: messages)"},
    {"--text", "MESSAGE", OPT_STRING, FIELD(text), NONE, CMD_PREDICT,
     "a model trained on a .tsv file: classify this message (default: one a line from --input or stdin)"},
    {"--top", "N", OPT_COUNT, FIELD(top), NONE, CMD_PREDICT,
     "a model trained on a .tsv file: the N likeliest classes with their probabilities (default 1)"},
    {"--output", "FILE", OPT_STRING, FIELD(output), NONE, CMD_PREDICT, "where to write the CSV (default: stdout)"},
    {"--load", "CKPT", OPT_STRING, FIELD(load), NONE, CMD_TRAIN | CMD_GRADCHECK,
     "start from this checkpoint instead of the initialisers"},
    {"--load", "CKPT", OPT_STRING, FIELD(load), NONE, CMD_EVAL | CMD_PREDICT, "the checkpoint to use (required)"},
    {"--load", "CKPT", OPT_STRING, FIELD(load), NONE, CMD_GENERATE,
     "the checkpoint to use, saved by training on a .txt file (required)"},
    {"--prime", "TEXT", OPT_STRING, FIELD(prime), NONE, CMD_GENERATE,
     "the text to start from, fed one character at a time (required)"},
    {"--length", "N", OPT_COUNT, FIELD(length), FIELD(has_length), CMD_GENERATE,
     "characters to generate after the prime (default 500)"},
    {"--temperature", "X", OPT_REAL_NONNEG, FIELD(temperature), FIELD(has_temperature), CMD_GENERATE,
     "divide the logits by X before sampling; 0 takes the likeliest character (default 1)"},
    {"--top-k", "N", OPT_NATURAL, FIELD(top_k), NONE, CMD_GENERATE,
     "sample from the N likeliest characters only; 0: all (default 0)"},
    {"--top-p", "X", OPT_PROBABILITY, FIELD(top_p), FIELD(has_top_p), CMD_GENERATE,
     "then from the fewest likeliest whose probability reaches X (0 < X <= 1; default 1: all)"},
    {"--seed", "N", OPT_SEED, FIELD(seed), FIELD(has_seed), CMD_GENERATE,
     "random seed for sampling: the same seed gives the same text"},
    {"--load", "CKPT", OPT_STRING, FIELD(load), NONE, CMD_INFO, "also check this checkpoint against the model"},
    {"--load", "CKPT", OPT_STRING, FIELD(load), NONE, CMD_RECOMMEND,
     "the checkpoint to use, saved by training on a ratings file (required)"},
    {"--user", "ID", OPT_NATURAL, FIELD(user), FIELD(has_user), CMD_RECOMMEND,
     "the user's id as in the ratings file (required)"},
    {"--top", "N", OPT_COUNT, FIELD(top), NONE, CMD_RECOMMEND, "how many items to list (default 10)"},
    {"--save", "CKPT", OPT_STRING, FIELD(save), NONE, CMD_TRAIN,
     "save the trained parameters, optimizer state and where the run stands (safetensors) here"},
    {"--resume", "CKPT", OPT_STRING, FIELD(resume), NONE, CMD_TRAIN,
     "continue the run saved in CKPT exactly where it stopped (its seed, batch, hypers, step; --epochs: in all)"},
    {"--stop-after", "STEPS", OPT_COUNT, FIELD(stop_after), NONE, CMD_TRAIN,
     "stop after STEPS train steps in all and save (to resume later; the schedule still spans --epochs)"},
    {"--epochs", "N", OPT_COUNT, FIELD(epochs), NONE, CMD_TRAIN, "passes over the data"},
    {"--batch", "N", OPT_COUNT, FIELD(batch), NONE, CMD_TRAIN | CMD_EVAL | CMD_PREDICT | CMD_GRADCHECK | CMD_RECOMMEND,
     "samples per step"},
    {"--batch", "N", OPT_COUNT, FIELD(batch), NONE, CMD_BENCH,
     "batch of the large predict case (default: the max batch) and of the train steps (default: the model's)"},
    {"--iters", "N", OPT_COUNT, FIELD(iters), NONE, CMD_BENCH,
     "time exactly N calls a case, after N/5 warm-up calls (default: as many as --seconds allows)"},
    {"--seconds", "X", OPT_REAL_POS, FIELD(seconds), FIELD(has_seconds), CMD_BENCH,
     "time calls for X seconds a case, after X/5 s of warm-up (default 1)"},
    {"--load", "CKPT", OPT_STRING, FIELD(load), NONE, CMD_BENCH, "the weights to run (default: the initialisers)"},
    {"--seed", "N", OPT_SEED, FIELD(seed), FIELD(has_seed), CMD_BENCH,
     "random seed for the initial weights and the synthetic inputs"},
    {"--lr", "X", OPT_REAL_NONNEG, FIELD(lr), FIELD(has_lr), CMD_TRAIN,
     "base learning rate (the schedule, if any, starts from it)"},
    {"--hyper", "NAME=X", OPT_HYPER, 0, NONE, CMD_TRAIN | CMD_EVAL | CMD_GENERATE | CMD_BENCH,
     "set a hyper-parameter of the model (repeatable; 'info' lists them)"},
    {"--hyper", "NAME=X", OPT_HYPER, 0, NONE, CMD_GRADCHECK,
     "set a hyper-parameter (repeatable); training=1 checks training mode"},
    {"--sweep", "NAME=X,Y,...", OPT_SWEEP, 0, NONE, CMD_TRAIN,
     "train once per value, from the same initial weights and seed (repeatable: every combination)"},
    {"--select", "[min:|max:]NAME", OPT_STRING, FIELD(select), NONE, CMD_TRAIN,
     "with --sweep: rank the runs by this final value (default val_loss; loss-like lower, accuracy-like higher)"},
    {"--runs", "DIR", OPT_STRING, FIELD(runs), NONE, CMD_TRAIN,
     "with --sweep: each run's checkpoint and log go to DIR/NAME=X,.../, the table to DIR/summary.csv "
     "(default sweep)"},
    {"--seed", "N", OPT_SEED, FIELD(seed), FIELD(has_seed), CMD_TRAIN | CMD_GRADCHECK,
     "random seed for initialisation and shuffling"},
    {"--log", "FILE", OPT_STRING, FIELD(log), NONE, CMD_TRAIN,
     "write a CSV row per epoch: epoch, step, loss, metrics, val_ ones, lr, seconds"},
    {"--log-steps", "FILE", OPT_STRING, FIELD(log_steps), NONE, CMD_TRAIN,
     "write a CSV row per train step: step, epoch, loss, lr, seconds (curves within an epoch)"},
    {"--log-every", "N", OPT_COUNT, FIELD(log_every), NONE, CMD_TRAIN,
     "print every N epochs (default: about 10 lines, plus first and last)"},
    {"--no-shuffle", NULL, OPT_FLAG, FIELD(no_shuffle), NONE, CMD_TRAIN,
     "take the samples in file order every epoch (to replay another framework's run)"},
    {"--check-numerics", NULL, OPT_FLAG, FIELD(check_numerics), NONE, CMD_TRAIN,
     "check every operation's result: the first NaN or inf stops training, named by its place in the .mdl file"},
    {"--windows", NULL, OPT_FLAG, FIELD(windows), NONE, CMD_TRAIN,
     "text: each step takes B random windows from anywhere in the text, not the next piece of B streams"},
    {"--windows", NULL, OPT_FLAG, FIELD(windows), NONE, CMD_EVAL,
     "text: for a model trained with --windows (consecutive windows, state zeroed before each step)"},
    {"--quiet", NULL, OPT_FLAG, FIELD(quiet), NONE, CMD_TRAIN, "print nothing but errors"},
    {"--threads", "N", OPT_COUNT, FIELD(threads), NONE,
     CMD_TRAIN | CMD_EVAL | CMD_PREDICT | CMD_GRADCHECK | CMD_GENERATE | CMD_RECOMMEND | CMD_BENCH,
     "threads for large matrix products (default: $MDL_THREADS, else one per CPU; results do not depend on it)"},
    {"--eps", "X", OPT_REAL_POS, FIELD(eps), FIELD(has_eps), CMD_GRADCHECK,
     "finite-difference step, relative: h = X * max(1, |w|) (default 1e-6 in float64, 4e-3 in float32)"},
    {"--tol", "X", OPT_REAL_POS, FIELD(tol), FIELD(has_tol), CMD_GRADCHECK,
     "largest relative error that passes (default 1e-6 in float64, 1e-2 in float32)"},
    {"--max-elems", "N", OPT_COUNT, FIELD(max_elems), NONE, CMD_GRADCHECK,
     "check at most N elements per parameter, sampled (default 64)"},
};

typedef struct command {
    const char *name;
    int bit;
    int (*run)(const rt_model *, const rt_opts *);
    const char *summary;
} command;

static const command commands[] = {
    {"train", CMD_TRAIN, rt_cmd_train, "train the model on a data file"},
    {"eval", CMD_EVAL, rt_cmd_eval, "print the loss and metrics of a checkpoint on a data file"},
    {"predict", CMD_PREDICT, rt_cmd_predict, "write the model's outputs for each input row as CSV"},
    {"generate", CMD_GENERATE, rt_cmd_generate, "sample text from a checkpoint trained on a .txt file"},
    {"recommend", CMD_RECOMMEND, rt_cmd_recommend, "list the items a recommender scores best for a user"},
    {"gradcheck", CMD_GRADCHECK, rt_cmd_gradcheck, "compare the compiled gradients with finite differences"},
    {"info", CMD_INFO, rt_cmd_info, "describe the model: parameters, shapes, memory, FLOPs"},
    {"bench", CMD_BENCH, rt_cmd_bench, "time predict and train steps on synthetic inputs: latency and throughput"},
    /* no run: plot needs no model and parses its own arguments (rt_plot.c) */
    {"plot", 0, NULL, "draw the curves of train --log CSVs as an SVG picture"},
};

#define N_COMMANDS (int)(sizeof commands / sizeof commands[0])
#define N_OPTIONS (int)(sizeof options / sizeof options[0])

static void print_usage(const rt_model *m, const char *prog, FILE *f) {
    fprintf(f, "usage: %s COMMAND [options]\n\n", prog);
    fprintf(f, "Model %s, compiled by mdlc from %s.\n\ncommands:\n", m->name, m->source ? m->source : "?");
    for (int i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nRun '%s COMMAND --help' for a command's options; '%s --version' for the version.\n", prog, prog);
}

/* "x[0],x[1]" or "image[0]..image[783]": one tensor's CSV columns. */
static void describe_columns(const rt_tensor *t, FILE *f) {
    int64_t n = rt_layout_of(t).sample;
    char first[128], last[128];
    rt_column_name(t, 0, first, sizeof first);
    rt_column_name(t, n - 1, last, sizeof last);
    if (n <= 4)
        for (int64_t k = 0; k < n; k++) {
            rt_column_name(t, k, first, sizeof first);
            fprintf(f, "%s%s", k ? "," : "", first);
        }
    else
        fprintf(f, "%s..%s", first, last);
}

/* "image f32[B, 28, 28], label i32[B]" */
static void list_tensors(const rt_model *m, int with_targets, FILE *f) {
    char shape[128];
    for (int i = 0; i < m->n_inputs + (with_targets ? m->n_targets : 0); i++) {
        const rt_tensor *t = i < m->n_inputs ? &m->inputs[i] : &m->targets[i - m->n_inputs];
        rt_shape_string(t, shape, sizeof shape);
        fprintf(f, "%s%s %s%s", i ? ", " : "", t->name, rt_dtype_name(t->dtype), shape);
    }
}

static void print_columns(const rt_model *m, int with_targets, FILE *f) {
    fprintf(f, "\nData files: one file, or a comma-separated list matched in order to ");
    list_tensors(m, with_targets, f);
    fprintf(f,
            "%s.\nIDX (MNIST) and NPY files feed one tensor each (the same number of values per sample; u8 "
            "pixels stay 0..255), a CSV file as many as its columns cover; any of them may be gzipped.\n",
            with_targets ? "" : " (files or columns for the targets may follow; ignored)");
    fprintf(f, "CSV columns, in order: ");
    for (int i = 0; i < m->n_inputs; i++) {
        fprintf(f, "%s", i ? ", " : "");
        describe_columns(&m->inputs[i], f);
    }
    for (int i = 0; with_targets && i < m->n_targets; i++) {
        fprintf(f, ", ");
        describe_columns(&m->targets[i], f);
    }
    fprintf(f, "%s; a header line is optional.\n", with_targets ? "" : " (target columns may follow; ignored)");
    if (rt_labels_model(m))
        fprintf(f,
                "A file named *.tsv (or *.tsv.gz) is labelled text: LABEL<TAB>TEXT lines (a first line whose TEXT is "
                "`text` is a header); each text's words (runs of letters and digits, lower-cased) become ids, 0 "
                "padding, 1 unknown, 2.. the training file's words by frequency, and a text keeps its first %lld; the "
                "classes are the lines of classes.txt or intents.txt beside the training file, else its sorted "
                "labels.  Both are saved in the checkpoint%s.\n",
                (long long)m->inputs[0].dims[1],
                with_targets ? "" : "; with one, predict reads messages, one a line, from --input, --text or stdin");
    if (with_targets && rt_text_model(m))
        fprintf(f,
                "A file named *.txt (or *.txt.gz) is text: each byte is a token, its id the byte's rank among the "
                "distinct bytes of the training file (saved in the checkpoint); the text is cut into B contiguous "
                "streams and each step takes the next %lld tokens of every stream, in order, never shuffled.  "
                "With --windows each step instead takes B windows of %lld tokens at random places (from the "
                "seed), an epoch is N / (B * %lld) steps, and the state is zeroed before every step.\n",
                (long long)m->inputs[0].dims[1], (long long)m->inputs[0].dims[1], (long long)m->inputs[0].dims[1]);
    if (with_targets && rt_ratings_model(m))
        fprintf(f, "A file named *.data or *.tsv (tab separated, as MovieLens u.data) or *.csv (as MovieLens "
                   "ratings.csv) holds ratings, `user item rating [more]` with a header line skipped; training "
                   "numbers the raw ids 0..n-1 in order of first appearance and saves them in the checkpoint, "
                   "and other files are read through them.\n");
}

/* The model's own default for an option, if it has one worth showing. */
static void print_default(const rt_model *m, const command *c, const option *o, FILE *f) {
    const rt_hyper *lr = rt_find_hyper(m, "lr");
    if (strcmp(o->name, "--epochs") == 0 && m->epochs > 0)
        fprintf(f, " (default %lld)", (long long)m->epochs);
    else if (strcmp(o->name, "--batch") == 0 && c->bit == CMD_BENCH)
        fprintf(f, " (at most %lld)", (long long)m->max_batch);
    else if (strcmp(o->name, "--batch") == 0)
        fprintf(f, " (default %lld, at most %lld)",
                (long long)(c->bit == CMD_TRAIN && m->batch > 0 ? m->batch
                            : c->bit == CMD_GRADCHECK           ? (m->max_batch < 8 ? m->max_batch : 8)
                                                                : m->max_batch),
                (long long)m->max_batch);
    else if (strcmp(o->name, "--lr") == 0 && lr) {
        fprintf(f, " (default %g", lr->value);
        if (m->schedule) {
            char sched[256];
            rt_schedule_describe(m, sched, sizeof sched);
            fprintf(f, ", schedule %s", sched);
        }
        fprintf(f, ")");
    } else if (strcmp(o->name, "--seed") == 0)
        fprintf(f, " (default %llu)", (unsigned long long)m->seed);
}

static void print_command_help(const rt_model *m, const char *prog, const command *c) {
    printf("usage: %s %s [options]\n%c%s.\n\noptions:\n", prog, c->name, toupper((unsigned char)c->summary[0]),
           c->summary + 1);
    for (int i = 0; i < N_OPTIONS; i++) {
        const option *o = &options[i];
        if (!(o->commands & c->bit))
            continue;
        char left[64];
        snprintf(left, sizeof left, "%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
        printf("  %-18s %s", left, o->help);
        print_default(m, c, o, stdout);
        printf("\n");
    }
    printf("  %-18s %s\n", "-h, --help", "show this help");
    if (c->bit & (CMD_TRAIN | CMD_EVAL | CMD_GRADCHECK))
        print_columns(m, 1, stdout);
    else if (c->bit == CMD_PREDICT)
        print_columns(m, 0, stdout);
    else if (c->bit == CMD_BENCH)
        printf("\nCases: predict at batch 1 (latency), predict at the large batch (throughput), train steps; each on "
               "synthetic inputs in the model's shapes (f32 from N(0, 1), i32 labels and indices uniform in their "
               "range), after warm-up.  Each call is timed on its own: p50 and p99 are the median and 99th "
               "percentile latency in microseconds, samples/s is batch / mean.  No data file is read and nothing is "
               "saved.\n");
    else if (c->bit == CMD_GENERATE)
        printf("\nThe recurrent state starts at zero; the prime is fed one character at a time, then each sampled "
               "character is printed as soon as it is made and fed back in.  The output's values at the position "
               "are read as probabilities if they sum to 1, as logits otherwise.\n");
}

static int usage_error(const char *prog, const char *cmd, const char *what, const char *arg) {
    fflush(stdout);
    fprintf(stderr, "error: %s '%s' (see '%s%s%s --help')\n", what, arg, prog, cmd ? " " : "", cmd ? cmd : "");
    return RT_EXIT_USAGE;
}

static int parse_hyper(rt_opts *o, const char *text) {
    const char *eq = strchr(text, '=');
    rt_hyper_set *set = &o->hyper_sets[o->n_hyper_sets];
    if (!eq || eq == text || (size_t)(eq - text) >= sizeof set->name || o->n_hyper_sets == 16)
        return -1;
    char *end;
    set->value = strtod(eq + 1, &end);
    if (end == eq + 1 || *end || !isfinite(set->value))
        return -1;
    memcpy(set->name, text, (size_t)(eq - text));
    set->name[eq - text] = '\0';
    o->n_hyper_sets++;
    return 0;
}

/* NAME=X,Y,...: a name and a list of finite numbers; rt_sweep.c checks
 * the name against the model. */
static int parse_sweep(rt_opts *o, const char *text) {
    const char *eq = strchr(text, '=');
    if (!eq || eq == text || o->n_sweeps == RT_MAX_SWEEPS)
        return -1;
    for (const char *p = eq + 1;; p++) {
        char *end;
        double v = strtod(p, &end);
        if (end == p || !isfinite(v) || (*end != ',' && *end != '\0'))
            return -1;
        p = end;
        if (!*p)
            break;
    }
    o->sweeps[o->n_sweeps++] = text;
    return 0;
}

/* Stores `text` as option o's value; -1 if it is not a valid one. */
static int store_value(rt_opts *opts, const option *o, const char *text) {
    char *base = (char *)opts, *end;
    errno = 0;
    if (o->kind == OPT_STRING) {
        *(const char **)(base + o->field) = text;
        return text[0] ? 0 : -1;
    }
    if (o->kind == OPT_HYPER)
        return parse_hyper(opts, text);
    if (o->kind == OPT_SWEEP)
        return parse_sweep(opts, text);
    if (o->has_field != NONE)
        *(int *)(base + o->has_field) = 1;
    if (o->kind == OPT_COUNT || o->kind == OPT_NATURAL) {
        long long v = strtoll(text, &end, 10);
        *(int64_t *)(base + o->field) = v;
        return end == text || *end || errno || v < (o->kind == OPT_COUNT ? 1 : 0) ? -1 : 0;
    }
    if (o->kind == OPT_SEED) {
        unsigned long long v = strtoull(text, &end, 10);
        *(uint64_t *)(base + o->field) = v;
        return end == text || *end || errno || text[0] == '-' ? -1 : 0;
    }
    double v = strtod(text, &end);
    *(double *)(base + o->field) = v;
    if (end == text || *end || !isfinite(v))
        return -1;
    if (o->kind == OPT_FRACTION)
        return v > 0 && v < 1 ? 0 : -1;
    if (o->kind == OPT_PROBABILITY)
        return v > 0 && v <= 1 ? 0 : -1;
    return (o->kind == OPT_REAL_POS ? v > 0 : v >= 0) ? 0 : -1;
}

static const char *expected_value(int kind) {
    switch (kind) {
    case OPT_COUNT: return "a positive integer";
    case OPT_NATURAL: return "a non-negative integer";
    case OPT_SEED: return "a non-negative integer";
    case OPT_REAL_NONNEG: return "a finite number >= 0";
    case OPT_REAL_POS: return "a finite number > 0";
    case OPT_FRACTION: return "a number between 0 and 1 (exclusive)";
    case OPT_PROBABILITY: return "a number > 0 and <= 1";
    case OPT_HYPER: return "NAME=NUMBER";
    case OPT_SWEEP: return "NAME=NUMBER,NUMBER,... (and at most 8 --sweep options)";
    default: return "a non-empty value";
    }
}

static const option *find_option(const char *name, size_t len, int bit) {
    for (int i = 0; i < N_OPTIONS; i++)
        if ((options[i].commands & bit) && strlen(options[i].name) == len && strncmp(options[i].name, name, len) == 0)
            return &options[i];
    return NULL;
}

/* Parses argv[first..] for command c; returns -1 to go on, else an exit
 * status (0 after --help). */
static int parse_options(const rt_model *m, const command *c, int argc, char **argv, int first, rt_opts *o) {
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            print_command_help(m, o->prog, c);
            return 0;
        }
        if (a[0] != '-')
            return usage_error(o->prog, c->name, "unexpected argument", a);
        const char *eq = strchr(a, '=');
        const option *opt = find_option(a, eq ? (size_t)(eq - a) : strlen(a), c->bit);
        if (!opt)
            return usage_error(o->prog, c->name, "unknown option", a);
        const char *value = eq ? eq + 1 : NULL;
        if (!opt->arg) {
            if (value)
                return usage_error(o->prog, c->name, "option takes no value", a);
            *(int *)((char *)o + opt->field) = 1;
            continue;
        }
        if (!value && i + 1 >= argc)
            return usage_error(o->prog, c->name, "missing value for", a);
        if (!value)
            value = argv[++i];
        if (store_value(o, opt, value)) {
            fprintf(stderr, "error: %s expects %s, got '%s'\n", opt->name, expected_value(opt->kind), value);
            return RT_EXIT_USAGE;
        }
    }
    return -1;
}

static int run_command(const rt_model *m, const command *c, int argc, char **argv, const char *prog) {
    rt_opts o;
    memset(&o, 0, sizeof o);
    o.prog = prog;
    if (rt_model_check(m))
        return RT_EXIT_FAIL;
    int rc = parse_options(m, c, argc, argv, 2, &o);
    if (rc >= 0)
        return rc;
    rt_set_threads(o.threads ? (int)o.threads : rt_default_threads());
    rc = c->run(m, &o);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        rt_error("cannot write to standard output");
        return RT_EXIT_FAIL;
    }
    return rc;
}

int rt_main(const rt_model *m, int argc, char **argv) {
    const char *prog = argc > 0 ? rt_basename(argv[0]) : "model";
    /* A file-size limit should fail a write with EFBIG, which we report and
     * recover from (see rt_ckpt_save), not kill the process. */
    signal(SIGXFSZ, SIG_IGN);
    rt_flush_denormals();
    if (argc < 2) {
        print_usage(m, prog, stderr);
        return RT_EXIT_USAGE;
    }
    const char *a = argv[1];
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
        print_usage(m, prog, stdout);
        return 0;
    }
    if (strcmp(a, "--version") == 0) {
        printf("%s: model %s, mdl runtime %s\n", prog, m->name, MDLRT_VERSION);
        return 0;
    }
    for (int i = 0; i < N_COMMANDS; i++)
        if (strcmp(a, commands[i].name) == 0)
            return commands[i].run ? run_command(m, &commands[i], argc, argv, prog)
                                   : rt_cmd_plot(prog, argc - 2, argv + 2);
    return usage_error(prog, NULL, a[0] == '-' ? "unknown option" : "unknown command", a);
}
