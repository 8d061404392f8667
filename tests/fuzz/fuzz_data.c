/*
 * fuzz_data.c - libFuzzer targets for the runtime's readers: every file a
 * user hands an executable goes through one of them.  One source, one
 * target per format (FUZZ_FORMAT, set by tests/fuzz/CMakeLists.txt):
 *
 *   FUZZ_CSV      rt_csv_parse      CSV (and, by name, TSV) rows into tensors
 *   FUZZ_IDX      rt_idx_parse      MNIST's IDX arrays
 *   FUZZ_NPY      rt_npy_parse      numpy .npy arrays
 *   FUZZ_TEXT     rt_text_load      a .txt file as a character model's data
 *   FUZZ_LABELS   rt_labels_load    labelled text (class<TAB>message .tsv)
 *   FUZZ_RATINGS  rt_ratings_load   MovieLens u.data / ratings.csv
 *   FUZZ_CKPT     rt_ckpt_load_buffer  safetensors checkpoints
 *
 * A reader must refuse bad input with an error, never crash, read out of
 * bounds or leak; the sanitizers catch the rest.  Readers that take a path
 * get the input through a file in $TMPDIR (one per process).
 */
#include "rt_internal.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { MAXB = 8, T = 16 };

/* Every reader's model: x f32[B, 3] and label i32[B] for the arrays and
 * CSV; a char model i32[B, T] -> i32[B, T]; labelled text i32[B, T] ->
 * i32[B]; a recommender i32[B], i32[B] -> f32[B]. */
static const rt_param params[] = {
    {.t = {"W", RT_F32, 2, {3, 2}, 0, 0, -1, 0}, .init = RT_INIT_ZEROS, .trainable = 1, .grad_offset = -1},
    {.t = {"b", RT_F32, 1, {2}, 0, 24, -1, 0}, .init = RT_INIT_ZEROS, .trainable = 1, .grad_offset = -1},
    {.t = {"m.W", RT_F32, 2, {3, 2}, 0, 32, -1, 0}, .grad_offset = -1},
    {.t = {"t", RT_I32, 0, {0}, 0, 56, -1, 0}, .grad_offset = -1},
};
static const rt_tensor dense_inputs[] = {{"x", RT_F32, 2, {MAXB, 3}, 1, 64, -1, 0}};
static const rt_tensor dense_targets[] = {{"label", RT_I32, 1, {MAXB}, 1, 160, -1, 0}};
static const rt_tensor text_inputs[] = {{"x", RT_I32, 2, {MAXB, T}, 1, 256, -1, 0}};
static const rt_tensor text_targets[] = {{"y", RT_I32, 2, {MAXB, T}, 1, 768, -1, 0}};
static const rt_tensor label_targets[] = {{"intent", RT_I32, 1, {MAXB}, 1, 768, -1, 0}};
static const rt_tensor rating_inputs[] = {{"user", RT_I32, 1, {MAXB}, 1, 256, -1, 0},
                                          {"item", RT_I32, 1, {MAXB}, 1, 288, -1, 0}};
static const rt_tensor rating_targets[] = {{"rating", RT_F32, 1, {MAXB}, 1, 320, -1, 0}};

#define MODEL(inputs_, n_inputs_, targets_)                                                                            \
    {                                                                                                                  \
        .name = "fuzz", .source = "fuzz.mdl", .arena_bytes = 2048, .max_batch = MAXB, .n_params = 4,                   \
        .params = params, .n_inputs = n_inputs_, .inputs = inputs_, .n_targets = 1, .targets = targets_, .seed = 1     \
    }

/* each target uses one or two of these */
#define UNUSED __attribute__((unused))
static const rt_model dense UNUSED = MODEL(dense_inputs, 1, dense_targets);
static const rt_model text UNUSED = MODEL(text_inputs, 1, text_targets);
static const rt_model labelled UNUSED = MODEL(text_inputs, 1, label_targets);
static const rt_model ratings UNUSED = MODEL(rating_inputs, 2, rating_targets);

/* The input as a file named NAME in a directory of this process's own. */
UNUSED static const char *as_file(const uint8_t *data, size_t size, const char *name) {
    static char dir[256], path[300];
    if (!dir[0]) {
        const char *tmp = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/mdl-fuzz-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(dir))
            abort();
    }
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f))
        abort();
    return path;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    rt_quiet_errors = 1;
    rt_dataset *d = NULL;
#if defined(FUZZ_CSV)
    const rt_tensor *tensors[] = {&dense_inputs[0], &dense_targets[0]};
    rt_feed f = {"f.csv", tensors, 2, 1, 2};
    int covered = 0;
    d = rt_csv_parse(&f, (const char *)data, size, &covered);
#elif defined(FUZZ_IDX)
    d = rt_idx_parse("f.idx", data, size, &dense_inputs[0]);
#elif defined(FUZZ_NPY)
    d = rt_npy_parse("f.npy", data, size, &dense_inputs[0]);
#elif defined(FUZZ_TEXT)
    rt_vocab vocab;
    memset(&vocab, 0, sizeof vocab);
    int64_t chars = 0;
    /* the first byte picks streams or windows, as train does */
    int windows = size > 0 && (data[0] & 1);
    d = rt_text_load(&text, as_file(data, size, "f.txt"), 2, windows, &vocab, &chars);
#elif defined(FUZZ_LABELS)
    rt_lexicon *lexicon = NULL;
    d = rt_labels_load(&labelled, as_file(data, size, "f.tsv"), RT_DATA_LABELLED, &lexicon, NULL);
    rt_lexicon_free(lexicon);
#elif defined(FUZZ_RATINGS)
    /* the first byte picks the format */
    const char *name = size > 0 && (data[0] & 1) ? "ratings.csv" : "u.data";
    d = rt_ratings_load(&ratings, as_file(data, size, name), RT_RATINGS_TRAIN);
    rt_ratings_forget();
#elif defined(FUZZ_CKPT)
    char *arena = rt_arena_new(&dense);
    rt_ckpt_load_buffer(&dense, arena, "f.ckpt", data, size);
    rt_arena_free(arena);
    rt_ratings_forget(); /* a checkpoint may carry a recommender's ids */
#else
#error "define one FUZZ_ format"
#endif
    rt_data_free(d);
    return 0;
}
