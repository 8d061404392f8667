/*
 * rt_internal.h - what the runtime's files share with each other.
 *
 * The runtime is a handful of files, one per job (command line, arena, RNG,
 * initialisers, data sets and their file formats, batching, set-up,
 * training and its progress display, checkpoints, evaluation, prediction,
 * gradient checking, info, bench, threads), all with the prefix rt_.  This header
 * declares every struct and cross-file function, grouped under a banner
 * per file, so reading it top to bottom is reading the runtime's table of
 * contents.
 *
 * Error convention: a function that can fail prints one line
 * `error: ...` through rt_error() at the place where it knows what went
 * wrong (file, line, tensor) and returns -1 or NULL; callers only pass the
 * failure up.  Only running out of memory exits directly.
 */
#ifndef RT_INTERNAL_H
#define RT_INTERNAL_H

#include "mdlrt.h"

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifndef MDLRT_VERSION
#define MDLRT_VERSION "0.0.0"
#endif

#define RT_PRINTF(a, b) __attribute__((format(printf, a, b)))

/* Exit statuses: a runtime failure, and a command line we do not accept.
 * (Training stopped by signal N after saving exits with 128 + N, as a
 * shell reports a command the signal killed.) */
enum { RT_EXIT_FAIL = 1, RT_EXIT_USAGE = 2 };

/*
 * rt_util.c
 */
extern char rt_last_error[512]; /* the last error line, for the unit tests */
extern int rt_quiet_errors;     /* set by tests: keep errors off stderr */
int rt_error(const char *fmt, ...) RT_PRINTF(1, 2);
void rt_note(const char *fmt, ...) RT_PRINTF(1, 2);
void *rt_xmalloc(size_t n);
void *rt_xcalloc(size_t count, size_t size);
void *rt_xrealloc(void *p, size_t n);
char *rt_xstrdup(const char *s);
int rt_read_file(const char *path, char **data, size_t *len);
double rt_now(void);
const char *rt_basename(const char *path);
void rt_format_count(double x, char *buf, size_t size);
void rt_format_bytes(int64_t bytes, char *buf, size_t size);

/* A growable string. */
typedef struct rt_buf {
    char *data;
    size_t len, cap;
} rt_buf;
void rt_buf_add(rt_buf *b, const void *p, size_t n);
void rt_buf_printf(rt_buf *b, const char *fmt, ...) RT_PRINTF(2, 3);

/*
 * rt_model.c: the descriptor
 */
/* How one sample of a tensor with a batch dimension sits in its slot: the
 * dims before the batch dim multiply to `outer`, those after to `inner`. */
typedef struct rt_layout {
    int has_batch;
    int64_t outer, inner, sample; /* sample = outer * inner elements */
} rt_layout;

int rt_model_check(const rt_model *m);
int64_t rt_elems(const rt_tensor *t, int64_t batch);
int64_t rt_bytes(const rt_tensor *t, int64_t batch);
rt_layout rt_layout_of(const rt_tensor *t);
const char *rt_dtype_name(int dtype);
void rt_shape_string(const rt_tensor *t, char *buf, size_t size);
int rt_sample_index(const rt_tensor *t, int64_t k, int64_t index[RT_MAX_RANK]);
void rt_column_name(const rt_tensor *t, int64_t k, char *buf, size_t size);
const rt_hyper *rt_find_hyper(const rt_model *m, const char *name);
int rt_hyper_index(const rt_model *m, const char *name);
void rt_write_hypers(const rt_model *m, char *arena, const float *values, double training, double step);
void rt_set_hyper(const rt_model *m, char *arena, const char *name, float value);
int rt_hyper_is_runtime(const char *name); /* training, step, scan_steps, position */
void rt_zero_state(const rt_model *m, char *arena);
/* Only the rows a step at `batch` uses: at batch b a tensor takes its
 * first rt_bytes(t, b) bytes whatever its batch axis. */
void rt_zero_state_rows(const rt_model *m, char *arena, int64_t batch);
float rt_scalar(const char *arena, const rt_tensor *t);

/*
 * rt_sched.c: learning-rate schedules
 */
enum { RT_SCHED_CONSTANT, RT_SCHED_STEP, RT_SCHED_EXPONENTIAL, RT_SCHED_COSINE };
#define RT_SCHED_MAX_ARGS 8

typedef struct rt_schedule {
    int kind;
    const char *name;
    double step_size, gamma, min_lr, warmup; /* defaults filled in */
} rt_schedule;

int rt_schedule_resolve(const rt_model *m, rt_schedule *s);
void rt_schedule_describe(const rt_model *m, char *buf, size_t size);
double rt_schedule_lr(const rt_schedule *s, double base, int64_t step, int64_t steps_per_epoch, int64_t total_steps);

/*
 * rt_arena.c
 */
char *rt_arena_new(const rt_model *m);
void rt_arena_free(char *arena);

/*
 * rt_rng.c: xoshiro256** seeded through splitmix64
 */
typedef struct rt_rng {
    uint64_t s[4];
    int has_spare; /* Box-Muller makes normals in pairs */
    double spare;
} rt_rng;

/* Independent streams from one seed, so that (say) a model with more
 * parameters still shuffles its data in the same order. */
enum { RT_STREAM_INIT = 1, RT_STREAM_SHUFFLE, RT_STREAM_GRADCHECK, RT_STREAM_SAMPLE, RT_STREAM_WINDOWS };

void rt_rng_seed(rt_rng *r, uint64_t seed, uint64_t stream);
uint64_t rt_rng_next(rt_rng *r);
double rt_rng_uniform(rt_rng *r);
double rt_rng_normal(rt_rng *r);
uint64_t rt_rng_below(rt_rng *r, uint64_t n);
void rt_rng_shuffle(rt_rng *r, int64_t *a, int64_t n);

/*
 * rt_init.c
 */
int rt_init_params(const rt_model *m, char *arena, uint64_t seed);
void rt_init_describe(const rt_param *p, char *buf, size_t size);

/*
 * rt_json.c: a strict JSON parser (RFC 8259) for checkpoint headers
 */
typedef enum {
    RT_JSON_NULL,
    RT_JSON_BOOL,
    RT_JSON_NUMBER,
    RT_JSON_STRING,
    RT_JSON_ARRAY,
    RT_JSON_OBJECT,
} rt_json_type;

typedef struct rt_json rt_json;
struct rt_json {
    rt_json_type type;
    int boolean;
    double number;
    char *text;  /* STRING: the decoded UTF-8; NUMBER: the literal */
    size_t len;  /* of text */
    int n;       /* ARRAY and OBJECT: number of items */
    char **keys; /* OBJECT: the member names, in file order */
    rt_json **items;
};

rt_json *rt_json_parse(const char *text, size_t len, size_t *err_pos, char *err, size_t err_size);
void rt_json_free(rt_json *j);
const rt_json *rt_json_get(const rt_json *object, const char *key);
int rt_json_u64(const rt_json *j, uint64_t *out);

/*
 * rt_data.c: data sets
 */
/* How a data set stores one tensor's elements: as the tensor's dtype (f32
 * or i32, 4 bytes each), or as the unsigned bytes of a u8 file (IDX images
 * and labels, NPY u1), converted to the dtype as each batch is gathered
 * (rt_batch.c), so that such a data set costs its file's size in memory
 * and the conversion runs over one batch at a time, while it is in cache. */
enum { RT_STORE_DTYPE = 0, RT_STORE_U8 = 1 };

/* n samples of some of the model's inputs and targets: for each tensor one
 * contiguous array of n * sample elements, stored as stores[i] says. */
typedef struct rt_dataset {
    char *path; /* the file list it came from, for messages */
    int64_t n;
    int n_tensors;
    const rt_tensor **tensors;
    rt_layout *layouts;
    void **data;
    int *stores; /* RT_STORE_* of each tensor */
    /* A text file's token ids, which random windows are drawn from
     * (rt_text.c); NULL for other data. */
    int32_t *text;
    int64_t text_n;
    /* Its batches are unrelated windows of a text (--windows): the
     * recurrent state is zeroed before every step, not carried on. */
    int independent;
} rt_dataset;

/* What files must hold: inputs and targets, or inputs only (targets may
 * be there too, and are then dropped). */
enum { RT_DATA_LABELLED, RT_DATA_INPUTS };

/* The tensors files feed, in matching order: inputs, then targets. */
int rt_fed_tensor_count(const rt_model *m, int mode);
const rt_tensor *rt_fed_tensor(const rt_model *m, int i);
rt_dataset *rt_data_new(const rt_model *m, int mode, int64_t n);
rt_dataset *rt_data_alloc(const rt_tensor *const *tensors, int n_tensors, int64_t n);
int rt_data_random(rt_dataset *d, rt_rng *r);
void rt_data_truncate(rt_dataset *d, int64_t n);
rt_dataset *rt_data_split(rt_dataset *d, double fraction);
void rt_data_free(rt_dataset *d);
int rt_data_find(const rt_dataset *d, const rt_tensor *t);
void rt_data_store_u8(rt_dataset *d, int tensor, void *bytes);
size_t rt_data_elem_bytes(const rt_dataset *d, int tensor);
int64_t rt_data_int(const rt_dataset *d, int tensor, int64_t k);

/*
 * rt_datafiles.c: loading a data set from files
 */
/* `files` is a comma-separated list matched to the inputs, then the
 * targets, in declaration order (see rt_datafiles.c). */
rt_dataset *rt_data_load(const rt_model *m, const char *files, int mode);

/*
 * rt_text.c: a text file as the data of a character-level model
 */
/* The byte values a text holds, in increasing order: a token's id is its
 * position.  n = 0: no vocabulary (not a text model). */
typedef struct rt_lexicon rt_lexicon;
typedef struct rt_vocab {
    int n;
    unsigned char bytes[256];
    /* Labelled text's words and class names (rt_labels.c), owned: free
     * with rt_lexicon_free(); NULL for other models. */
    rt_lexicon *lexicon;
} rt_vocab;

/* Reads a whole file (gzipped or not, "-" for stdin); rt_datafiles.c's. */
int rt_read_data_file(const char *path, char **data, size_t *len);
int rt_text_model(const rt_model *m);
int rt_text_windowed(const rt_model *m, int asked); /* --windows, or no `state` */
int rt_text_applies(const rt_model *m, const char *files);
int64_t rt_text_vocab_limit(const rt_model *m);
int rt_vocab_id(const rt_vocab *v, int byte);
void rt_vocab_char(int byte, char *buf, size_t size);
rt_dataset *rt_text_load(const rt_model *m, const char *path, int64_t batch, int windows, rt_vocab *vocab,
                         int64_t *chars);
rt_dataset *rt_text_windows(const rt_dataset *text, int64_t batch);
void rt_text_draw(rt_dataset *windows, const rt_dataset *text, rt_rng *r);
int rt_text_remap(rt_dataset *d, const rt_vocab *from, const rt_vocab *to, const char *to_name);

/*
 * rt_ratings.c: (user, item, rating) files as the data of a recommender
 */
/* How a file's ids are used: trained on (an id the checkpoint lacks is an
 * error), or evaluated (its ratings are skipped). */
enum { RT_RATINGS_TRAIN, RT_RATINGS_EVAL };
int rt_ratings_model(const rt_model *m);
int rt_ratings_applies(const rt_model *m, const char *files);
rt_dataset *rt_ratings_load(const rt_model *m, const char *path, int use);
void rt_ratings_summary(void);
void rt_ratings_forget(void);

/*
 * rt_numerics.c: the first operation of a train step to make a NaN or inf
 */
void rt_numerics_start(const rt_model *m); /* checks on, nothing found yet */
void rt_numerics_stop(void);
int rt_numerics_found(void);
int rt_numerics_report(const char *when); /* prints it, 1; 0 if none */
int rt_ratings_known(void);
int32_t rt_ratings_user(int64_t raw); /* its index, or -1 */
int32_t rt_ratings_item_count(void);
int64_t rt_ratings_item_raw(int32_t index);
unsigned char *rt_ratings_rated(int32_t user);
void rt_ratings_write_metadata(rt_buf *h);
int rt_ratings_read_metadata(const char *ckpt, const rt_json *metadata);

/*
 * rt_labels.c: a file of LABEL<TAB>TEXT lines as the data of a text
 * classifier
 */
/* Word ids: padding, a word not in the vocabulary, the first word. */
enum { RT_WORD_PAD = 0, RT_WORD_UNKNOWN = 1, RT_WORD_FIRST = 2 };

/* A word and its id, in the lexicon's lookup order. */
typedef struct rt_spelling rt_spelling;
struct rt_lexicon {
    int n_words, n_classes;
    char **words;             /* the word of id RT_WORD_FIRST + i, lower case */
    char **classes;           /* the name of class k */
    char *classes_from;       /* the file they came from, for messages */
    rt_spelling *by_spelling; /* the words in byte order, for lookup */
};

/* What reading a file found. */
typedef struct rt_labels_info {
    int64_t messages;
    int64_t words, unknown; /* words read (up to L a text), of them unknown */
    int64_t truncated;      /* texts of more than L words */
    int64_t dropped;        /* training: words the table had no room for */
} rt_labels_info;

int rt_labels_model(const rt_model *m);
int rt_labels_applies(const rt_model *m, const char *files);
size_t rt_labels_next_word(const char *text, size_t len, size_t *at, size_t *start);
int32_t rt_lexicon_word_id(const rt_lexicon *x, const char *s, size_t n);
int64_t rt_labels_encode(const rt_lexicon *x, const char *text, size_t len, int32_t *ids, int64_t length,
                         int64_t *unknown);
rt_lexicon *rt_lexicon_parse(const char *source, const char *words, size_t words_len, const char *classes,
                             size_t classes_len);
char *rt_lexicon_join(char *const *items, int n, char sep);
void rt_lexicon_free(rt_lexicon *x);
rt_dataset *rt_labels_load(const rt_model *m, const char *path, int mode, rt_lexicon **lexicon, rt_labels_info *info);
void rt_labels_describe_training(const rt_model *m, const rt_lexicon *x, const rt_labels_info *info);
void rt_labels_describe_data(const rt_model *m, const rt_labels_info *info);

/*
 * rt_array.c: the elements of array files (IDX, NPY)
 */
/* Element types of binary files.  Values are checked as they are
 * converted to the tensor's dtype: finite, and integral and in range for
 * an i32 tensor. */
enum { RT_ELEM_UINT, RT_ELEM_INT, RT_ELEM_FLOAT, RT_ELEM_BOOL };
typedef struct rt_elem_type {
    int kind, size, big_endian;
    const char *name; /* "u8", "f32", ... for messages */
} rt_elem_type;
/* The dataset of one tensor t from an array file's data (IDX, NPY) after
 * its header: `have` bytes of `total` elements of `type` in shape dims
 * (dims[0] the samples); checks the sample shape and that the size is
 * exactly right, each with a one-line error naming path.  take: NULL, or
 * the malloc'd buffer that holds the whole file (data is its tail), which
 * u8 elements then keep as their storage instead of a copy, so that a
 * data set costs its file's size at its peak too; *take is then NULL (the
 * data set owns it), else the caller still does. */
rt_dataset *rt_data_from_array(const char *path, const unsigned char *data, size_t have, rt_elem_type type,
                               const int64_t *dims, int rank, int64_t total, const rt_tensor *t, char **take);

/*
 * rt_csv.c, rt_idx.c, rt_npy.c: the formats
 */
/* One file of a list and the tensors it may feed: tensors[0..n) are the
 * next ones in declaration order; a CSV covers the first k of them for
 * some k >= min_cover (from its column count), of which only the first
 * `keep` are stored. */
typedef struct rt_feed {
    const char *path;
    const rt_tensor *const *tensors;
    int n, min_cover, keep;
} rt_feed;

/* Each parses a whole file already in memory (decompressed), reporting
 * errors as PATH: ... */
rt_dataset *rt_csv_parse(const rt_feed *f, const char *text, size_t len, int *covered);
rt_dataset *rt_idx_parse(const char *path, const unsigned char *buf, size_t len, const rt_tensor *t);
rt_dataset *rt_npy_parse(const char *path, const unsigned char *buf, size_t len, const rt_tensor *t);
/* The same, given the file's malloc'd buffer to take (rt_data_from_array). */
rt_dataset *rt_idx_read(const char *path, char **take, size_t len, const rt_tensor *t);
rt_dataset *rt_npy_read(const char *path, char **take, size_t len, const rt_tensor *t);

/*
 * rt_batch.c
 */
void rt_gather(char *arena, const rt_dataset *d, const int64_t *index, int64_t batch);
void rt_gather_range(char *arena, const rt_dataset *d, int64_t first, int64_t batch);
void rt_prefetch(const rt_dataset *d, const int64_t *index, int64_t count);
void rt_read_sample(const char *arena, const rt_tensor *t, int64_t batch, int64_t i, void *dst);
int64_t *rt_identity_order(int64_t n);

/*
 * rt_cli.c: the command line
 */
#define RT_MAX_SWEEPS 8

typedef struct rt_hyper_set {
    char name[64];
    double value;
} rt_hyper_set;

typedef struct rt_opts {
    const char *prog;
    const char *data, *val, *load, *save, *input, *output, *log, *log_steps;
    const char *resume;  /* train --resume CKPT */
    int64_t stop_after;  /* train --stop-after STEPS; 0: not given */
    int64_t epochs, batch, log_every, max_elems; /* 0: not given */
    double lr, eps, tol, val_split;
    int has_lr, has_eps, has_tol, has_seed, has_val_split, quiet, no_shuffle, windows;
    int check_numerics;
    int64_t threads; /* 0: not given */
    /* predict, for a model that takes labelled text; recommend */
    const char *text;
    int64_t top; /* how many answers (predict: classes; recommend: items) */
    /* generate */
    const char *prime;
    int64_t length, top_k;
    double temperature, top_p;
    int has_length, has_temperature, has_top_p;
    /* recommend */
    int64_t user;
    int has_user;
    uint64_t seed;
    int n_hyper_sets;
    rt_hyper_set hyper_sets[16];
    /* train --sweep NAME=X,Y,... (as written; rt_sweep.c reads them) */
    int n_sweeps;
    const char *sweeps[RT_MAX_SWEEPS];
    const char *select, *runs; /* --select [min:|max:]NAME, --runs DIR */
    /* bench */
    int64_t iters; /* 0: not given */
    double seconds;
    int has_seconds;
} rt_opts;

int rt_main(const rt_model *m, int argc, char **argv);

/* rt_pool.c: how many threads large matrix products use (1 until set);
 * the default is MDL_THREADS, else one per CPU (at most 8). */
void rt_set_threads(int n);
int rt_default_threads(void);
/* Sets this thread's floating-point unit to flush denormal results to zero
 * and to read denormal operands as zero (x86 MXCSR FTZ and DAZ), as ML
 * frameworks do: Adam's first moment of a weight whose input is always
 * zero decays by 0.9 a step into the denormal range within an epoch, and
 * arithmetic on denormals is some 100 times slower.  rt_main calls it for
 * the main thread, the pool for each worker. */
void rt_flush_denormals(void);

/*
 * rt_setup.c: the set-up the commands share
 */
char *rt_setup(const rt_model *m, uint64_t seed, const char *load_path, rt_vocab *vocab);
int rt_resolve_batch(const rt_model *m, int64_t requested, int64_t fallback, int64_t *batch);
int64_t rt_train_batch(const rt_model *m);
uint64_t rt_resolve_seed(const rt_model *m, const rt_opts *o);
float *rt_resolve_hypers(const rt_model *m, const rt_opts *o, int runtime_set);
void rt_list_hypers(const rt_model *m, int runtime_set, char *buf, size_t size);
void rt_format_f32(float v, char *buf, size_t size);

/*
 * rt_train.c
 */
/* Where a saved run stood ("mdl.run", rt_resume.c): what `train
 * --resume` continues from.  hypers (has_hyper[i]: the checkpoint gives
 * it) and metrics are one per rt_hyper and metric. */
typedef struct rt_run_state {
    uint64_t seed;
    int64_t epochs, epochs_done, steps_done, step, batch, samples;
    int shuffle, windows, has_base_lr;
    double base_lr;
    int64_t seen;
    double loss, *metrics;
    float *hypers;
    char *has_hyper;
} rt_run_state;

/* Everything one training run needs. */
typedef struct rt_train_run {
    const rt_model *m;
    const rt_opts *o;
    char *arena;
    /* data: what the epochs walk (streams, or with --windows this
     * epoch's random windows); whole: with --windows, the training text
     * itself, which the windows are drawn from and the final loss is
     * taken over. */
    rt_dataset *data, *val, *whole;
    int64_t batch, epochs, log_every;
    uint64_t seed;
    float *hypers; /* one value per rt_hyper */
    /* A text file (rt_text.c): its vocabulary and size in characters.
     * Labelled text (rt_labels.c): vocab.lexicon and what was read. */
    int text, labels;
    rt_vocab vocab;
    int64_t text_chars;
    rt_labels_info labels_info;
    int lr_index;  /* of hyper "lr", or -1 */
    double base_lr, lr;
    rt_schedule sched;
    const rt_run_state *resume; /* --resume: where to start, or NULL */
    /* 0; 1 after --stop-after's step; 2 after SIGINT or SIGTERM: stop
     * after this step, saving where the run stands */
    int stop;
    int64_t epoch_from;     /* step of the epoch when the snapshot below was taken */
    int64_t held_at, held_b; /* the input slots hold samples held_at.. of r->data in order (held_b 0: unknown) */
    int64_t epoch_step;     /* step when the epoch began */
    char *epoch_state;      /* the persistent tensors then, to replay the epoch to a non-finite loss */
    int replaying;          /* quiet steps up to it, then one with the numerics checked */
    int64_t step, steps_per_epoch, total_steps; /* step: train_steps done */
    int tty, quiet;
    FILE *log, *step_log; /* --log, --log-steps */
    double start; /* when the first epoch began */
    /* The current epoch: sums weighted by batch size over `seen` samples,
     * then the means. */
    int64_t seen;
    double loss, *metrics;
    double val_loss, *val_metrics;
    /* rt_progress.c's: when the epoch began and was last shown, and
     * whether a bar is on the screen. */
    double epoch_start, last_shown;
    double log_flushed; /* when --log was last flushed */
    int drawn;
} rt_train_run;

/* The final values of a run (metrics and val_metrics: n_metrics each,
 * the caller's); started: the set-up worked and epochs ran. */
typedef struct rt_train_result {
    int started;
    double loss, *metrics, val_loss, *val_metrics;
} rt_train_result;

int rt_train(const rt_model *m, const rt_opts *o, rt_train_result *res);
int rt_cmd_train(const rt_model *m, const rt_opts *o);

/*
 * rt_resume.c: "mdl.run", where a training run stands
 */
char *rt_run_state_json(const rt_train_run *r, int64_t epochs_done, int64_t steps_done);
int rt_run_state_read(const rt_model *m, const char *path, rt_run_state *s);
void rt_run_state_free(rt_run_state *s);

/*
 * rt_mpi.c (libmdlrt_mpi.a, linked only by mdlc --mpi): data parallelism.
 * rt_parallel_ops is NULL in every other executable (a weak definition in
 * rt_train.c); rt_par is it while a `train` started by mpirun runs, else
 * NULL.  The training loop then walks global batches of batch x ranks
 * samples, each rank computing its shard of each (shard), and the
 * generated train_step sums the gradients over the ranks
 * (mdl_rt_grad_ready/wait, codegen/cg_module.c).
 */
typedef struct rt_parallel {
    int rank, ranks;
    /* Under mpirun: starts MPI; *own is this rank's options (only rank 0
     * prints, saves and logs); 1.  Not under mpirun: 0.  -1 after an
     * error that every rank has (what cannot run on ranks; MPI ended). */
    int (*start)(const rt_model *m, const rt_opts *o, rt_opts *own);
    /* After the command (exit status rc): a failure stops every rank. */
    int (*end)(int rc);
    /* Narrows samples [*at, *at + *b) of a global batch to this rank's
     * part (never empty: a rank with none takes one that counts 0) and
     * sets its weight in the gradient sum; returns how many it counts. */
    int64_t (*shard)(int64_t *at, int64_t *b);
    /* The epoch's sums (loss, metrics, seen) over the ranks, at its end
     * (epoch_end: checked against the data and the replicas' weights
     * compared) or where a run stops; 0 or -1. */
    int (*reduce)(rt_train_run *r, int epoch_end);
    /* The largest of the ranks' values of a stop (train_run.stop). */
    int (*agree)(int stop);
    /* A text file's streams (rank r's are rows [B r/N, B (r+1)/N) of the
     * recurrent state, in its rows [0, B/N)): gather, every rank's rows
     * into rank 0's state before a save; else, after a checkpoint is
     * loaded, this rank's rows to the top.  0 or -1; nothing for other
     * data. */
    int (*state_rows)(rt_train_run *r, int gather);
    /* rt_evaluate over d, each rank on its share, the sums reduced. */
    int (*evaluate)(const rt_model *m, char *arena, const rt_dataset *d, int64_t batch, const float *hypers,
                    double step, double *loss, double *metrics);
} rt_parallel;
extern rt_parallel *rt_parallel_ops;
extern rt_parallel *rt_par;
/* The calls of train_step (mdlc --mpi): k numbers the gradients. */
void mdl_rt_grad_ready(int32_t k, float *grad, int64_t count);
void mdl_rt_grad_wait(int32_t k, float *grad, int64_t count);

/*
 * rt_sweep.c: train --sweep, one run per combination of values
 */
int rt_cmd_sweep(const rt_model *m, const rt_opts *o);

/*
 * rt_progress.c: what training shows as it goes, and the --log CSV
 */
void rt_progress_summary(const rt_train_run *r);
void rt_progress_epoch_begin(rt_train_run *r, int64_t epoch, int logged, double start);
void rt_progress_step(rt_train_run *r, int64_t epoch, int logged, int64_t done, int more);
void rt_progress_abort(const rt_train_run *r);
void rt_progress_epoch_end(const rt_train_run *r, int64_t epoch, int logged, double seconds);
void rt_progress_final(const rt_train_run *r);
int rt_log_open(rt_train_run *r);
int rt_log_write(rt_train_run *r, int64_t epoch);
int rt_log_close(rt_train_run *r, int rc);
/* --log-steps: a row per train step (step, epoch, loss, lr) */
int rt_step_log_open(rt_train_run *r);
int rt_step_log_write(rt_train_run *r, int64_t epoch, double loss);

/*
 * rt_eval.c
 */
/* Accuracy and confusion matrix of a classifier: the argmax of an f32
 * [B, K] output (K >= 2) against an i32 [B] target. */
typedef struct rt_confusion {
    const rt_tensor *output, *target;
    int64_t k;
    int64_t *counts; /* k * k: [true][predicted] */
    int64_t total, correct, outside; /* outside: labels not in 0..k-1 */
} rt_confusion;

int rt_confusion_init(const rt_model *m, rt_confusion *c);
int rt_evaluate(const rt_model *m, char *arena, const rt_dataset *d, int64_t batch, const float *hypers, double step,
                double *loss, double *metrics, rt_confusion *c);
int rt_cmd_eval(const rt_model *m, const rt_opts *o);

/*
 * rt_ckpt.c: safetensors checkpoints
 */
int rt_ckpt_save(const rt_model *m, const char *arena, const char *path);
int rt_ckpt_load(const rt_model *m, char *arena, const char *path);
int rt_ckpt_load_buffer(const rt_model *m, char *arena, const char *name, const unsigned char *buf, size_t len);
void rt_ckpt_serialize(const rt_model *m, const char *arena, rt_buf *out);
/* What a training run saves beside the tensors: a text model's
 * vocabulary ("mdl.vocab", when vocab->n > 0) and the hyper-parameter
 * values it trained with ("mdl.hypers", one per rt_hyper); either may be
 * NULL.  Loading reads the vocabulary into *vocab (n = 0 when the file has
 * none). */
typedef struct rt_ckpt_meta {
    const rt_vocab *vocab;
    const float *hypers;
    const char *run; /* "mdl.run" (rt_resume.c), or NULL */
} rt_ckpt_meta;
int rt_ckpt_save_meta(const rt_model *m, const char *arena, const rt_ckpt_meta *meta, const char *path);
int rt_ckpt_load_vocab(const rt_model *m, char *arena, const char *path, rt_vocab *vocab);
void rt_ckpt_serialize_meta(const rt_model *m, const char *arena, const rt_ckpt_meta *meta, rt_buf *out);
int rt_ckpt_load_metadata(const rt_model *m, const char *path);
int rt_ckpt_read_header(const rt_model *m, const char *path, rt_json **header);
/* The CRC-32 of ISO 3309 / zlib, continued from crc (0 to start). */
uint32_t rt_crc32(uint32_t crc, const void *data, size_t n);

/*
 * rt_predict.c, rt_gradcheck.c, rt_info.c
 */
int rt_cmd_predict(const rt_model *m, const rt_opts *o);
int rt_cmd_generate(const rt_model *m, const rt_opts *o);
int rt_cmd_gradcheck(const rt_model *m, const rt_opts *o);
int rt_cmd_info(const rt_model *m, const rt_opts *o);
int rt_cmd_recommend(const rt_model *m, const rt_opts *o); /* rt_recommend.c */
int rt_cmd_bench(const rt_model *m, const rt_opts *o);     /* rt_bench.c */

/*
 * rt_plot.c: `plot`, which reads --log CSVs, not the model, and parses
 * its own arguments (the words after `plot`)
 */
int rt_cmd_plot(const char *prog, int argc, char **argv);

/*
 * rt_svg.c: SVG drawing into an rt_buf, and axes with 1-2-5 ticks
 */
void rt_svg_begin(rt_buf *b, int width, int height);
void rt_svg_end(rt_buf *b);
void rt_svg_escape(rt_buf *b, const char *text);
void rt_svg_text(rt_buf *b, double x, double y, const char *anchor, int size, double rotate, const char *text);
void rt_svg_line(rt_buf *b, double x1, double y1, double x2, double y2, const char *colour, double width,
                 int dashed);
void rt_svg_polyline(rt_buf *b, const double *xy, int n, const char *colour, double width, int dashed);
void rt_svg_circle(rt_buf *b, double x, double y, double r, const char *colour, int filled);
void rt_svg_rect(rt_buf *b, double x, double y, double w, double h, const char *stroke_colour);

#define RT_AXIS_MAX_TICKS 32
typedef struct rt_axis {
    double lo, hi, step; /* step: between linear ticks */
    int log;
    int n_ticks;
    double ticks[RT_AXIS_MAX_TICKS];
} rt_axis;
void rt_axis_fit(rt_axis *a, double min, double max, int snap, int integer, int log_scale);
double rt_axis_position(const rt_axis *a, double v);
void rt_axis_label(const rt_axis *a, double v, char *buf, size_t size);

#endif
