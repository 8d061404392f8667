/*
 * test_unit.c - unit tests of the runtime's internals: the JSON parser,
 * the RNG, the CSV, IDX and NPY loaders and file lists, learning-rate
 * schedules, batching layouts, checkpoint loading, and labelled text (the
 * tokeniser, word ids, classes, its errors and its checkpoint metadata).
 *
 * It links libmdlrt.a with its own main() and its own small descriptor (a
 * classifier with an i32 target and optimizer state), so none of this
 * depends on fake_linear.  The checkpoint, IDX and NPY tests also feed the
 * loaders every truncation and thousands of random corruptions of a valid
 * file: under the sanitizer build that is a small fuzz test, and a loader
 * must reject or accept each one without a crash.
 */
#include "rt_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../test.h"

/* The error line must mention `what`. */
#define CHECK_ERROR(expr, what)                                                                                        \
    do {                                                                                                               \
        rt_last_error[0] = '\0';                                                                                       \
        CHECK((expr) != 0);                                                                                            \
        if (!strstr(rt_last_error, what))                                                                              \
            fprintf(stderr, "  got error: %s\n  wanted: %s\n", rt_last_error, what);                                   \
        CHECK(strstr(rt_last_error, what) != NULL);                                                                    \
    } while (0)

/*
 * A classifier: x f32[B, 3], label i32[B], W f32[3, 2], b f32[2], Adam-ish
 * state m.W f32[3, 2] and t i32[].
 */
enum { MAXB = 4 };

static const rt_param test_params[] = {
    {.t = {"W", RT_F32, 2, {3, 2}, 0, 0},
     .init = RT_INIT_GLOROT_UNIFORM,
     .fan_in = 3,
     .fan_out = 2,
     .trainable = 1,
     .grad_offset = 200},
    {.t = {"b", RT_F32, 1, {2}, 0, 24}, .init = RT_INIT_CONSTANT, .init_a = 0.5, .trainable = 1, .grad_offset = 224},
    {.t = {"m.W", RT_F32, 2, {3, 2}, 0, 32}, .grad_offset = -1},
    {.t = {"t", RT_I32, 0, {0}, 0, 56}, .grad_offset = -1},
};
static const rt_tensor test_inputs[] = {{"x", RT_F32, 2, {MAXB, 3}, 1, 64, -1, 0}};
static const rt_tensor test_targets[] = {{"label", RT_I32, 1, {MAXB}, 1, 112, -1, 0}};

static const rt_model test_model = {
    .name = "classifier",
    .source = "test.mdl",
    .arena_bytes = 256,
    .max_batch = MAXB,
    .n_params = 4,
    .params = test_params,
    .n_inputs = 1,
    .inputs = test_inputs,
    .n_targets = 1,
    .targets = test_targets,
    .seed = 7,
};

/*
 * JSON
 */

static int parses(const char *text) {
    char err[128];
    rt_json *j = rt_json_parse(text, strlen(text), NULL, err, sizeof err);
    rt_json_free(j);
    return j != NULL;
}

static void test_json_valid(void) {
    const char *ok[] = {
        "{}",
        "[]",
        "0",
        "-0",
        "1.5e-3",
        "-12E+2",
        "true",
        "false",
        "null",
        "\"a\\\"b\\\\c\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\"",
        " { \"a\" : [1, 2, {\"b\": null}] , \"c\":\"\xc3\xa9\" } \n",
        "\"\xf0\x9f\x98\x80\"",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        CHECK(parses(ok[i]));
}

static void test_json_invalid(void) {
    const char *bad[] = {
        "",
        " ",
        "{",
        "}",
        "[1,]",
        "{\"a\":1,}",
        "{\"a\" 1}",
        "{a:1}",
        "01",
        "1.",
        ".5",
        "1e",
        "+1",
        "-",
        "tru",
        "nul",
        "\"abc",
        "\"\\x\"",
        "\"\\u12\"",
        "\"\\ud800\"",
        "\"\\udc00\"",
        "\"\\u0000\"",
        "\"a\tb\"",
        "\"\xc3\"",
        "\"\xc0\xaf\"",
        "\"\xed\xa0\x80\"",
        "{} {}",
        "[1] x",
        "NaN",
        "Infinity",
        "'a'",
        "[1 2]",
        "{\"a\":}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        if (parses(bad[i]))
            fprintf(stderr, "  accepted: %s\n", bad[i]);
        CHECK(!parses(bad[i]));
    }
}

static void test_json_depth_and_values(void) {
    char deep[300];
    memset(deep, '[', 200);
    memset(deep + 200, ']', 1);
    deep[201] = '\0';
    CHECK(!parses(deep)); /* 200 levels: refused, not a stack overflow */
    char err[128];
    size_t at = 0;
    CHECK(!rt_json_parse("{\"a\":1 x}", 9, &at, err, sizeof err));
    CHECK(at == 7);
    const char *text = "{\"n\":[0, 18446744073709551615, 18446744073709551616, 1.0, -1], \"s\":\"\\u00e9\"}";
    rt_json *j = rt_json_parse(text, strlen(text), NULL, err, sizeof err);
    CHECK(j && j->type == RT_JSON_OBJECT && j->n == 2);
    if (!j)
        return;
    const rt_json *n = rt_json_get(j, "n");
    uint64_t v = 1;
    CHECK(rt_json_u64(n->items[0], &v) == 0 && v == 0);
    CHECK(rt_json_u64(n->items[1], &v) == 0 && v == UINT64_MAX);
    CHECK(rt_json_u64(n->items[2], &v) != 0);
    CHECK(rt_json_u64(n->items[3], &v) != 0);
    CHECK(rt_json_u64(n->items[4], &v) != 0);
    CHECK(strcmp(rt_json_get(j, "s")->text, "\xc3\xa9") == 0);
    CHECK(rt_json_get(j, "missing") == NULL);
    rt_json_free(j);
}

/*
 * RNG
 */

static void test_rng(void) {
    rt_rng a, b, c;
    rt_rng_seed(&a, 42, RT_STREAM_INIT);
    rt_rng_seed(&b, 42, RT_STREAM_INIT);
    rt_rng_seed(&c, 42, RT_STREAM_SHUFFLE);
    int same = 1, differ = 0;
    for (int i = 0; i < 1000; i++) {
        uint64_t x = rt_rng_next(&a);
        same &= x == rt_rng_next(&b);
        differ |= x != rt_rng_next(&c);
    }
    CHECK(same);
    CHECK(differ);
    /* Pinned output: a change here changes every seeded run. */
    rt_rng_seed(&a, 42, RT_STREAM_INIT);
    uint64_t first = rt_rng_next(&a);
    if (first != 0x180247f2e3635182ULL)
        fprintf(stderr, "  first value %#llx\n", (unsigned long long)first);
    CHECK(first == 0x180247f2e3635182ULL);

    double sum = 0, sum2 = 0, lo = 1, hi = 0;
    int n = 200000;
    for (int i = 0; i < n; i++) {
        double u = rt_rng_uniform(&a), z = rt_rng_normal(&a);
        lo = fmin(lo, u);
        hi = fmax(hi, u);
        sum += z;
        sum2 += z * z;
    }
    CHECK(lo >= 0 && hi < 1);
    CHECK(fabs(sum / n) < 0.01);
    CHECK(fabs(sum2 / n - 1) < 0.02);

    int64_t perm[100], seen[100] = {0};
    for (int i = 0; i < 100; i++)
        perm[i] = i;
    rt_rng_shuffle(&a, perm, 100);
    int is_perm = 1, moved = 0;
    for (int i = 0; i < 100; i++) {
        is_perm &= perm[i] >= 0 && perm[i] < 100 && !seen[perm[i]]++;
        moved += perm[i] != i;
    }
    CHECK(is_perm && moved > 50);
    CHECK(rt_rng_below(&a, 1) == 0);
}

static void test_init(void) {
    char *a1 = rt_arena_new(&test_model), *a2 = rt_arena_new(&test_model);
    CHECK(((uintptr_t)a1 & 63) == 0);
    CHECK(rt_init_params(&test_model, a1, 3) == 0);
    CHECK(rt_init_params(&test_model, a2, 3) == 0);
    CHECK(memcmp(a1, a2, 256) == 0);
    float *W = (float *)a1, *b = (float *)(a1 + 24);
    double limit = sqrt(6.0 / 5.0);
    int in_range = 1;
    for (int i = 0; i < 6; i++)
        in_range &= fabs(W[i]) <= limit && W[i] != 0;
    CHECK(in_range);
    CHECK(b[0] == 0.5f && b[1] == 0.5f);
    CHECK(rt_init_params(&test_model, a2, 4) == 0);
    CHECK(memcmp(a1, a2, 24) != 0);
    rt_arena_free(a1);
    rt_arena_free(a2);
}

/*
 * CSV
 */

static char tmpdir[64];

static const char *write_tmp(const char *name, const char *text) {
    static char path[128];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

static void test_csv_good(void) {
    const char *p = write_tmp("good.csv", "a, b ,c,label\r\n1,2,3,0\r\n\n 4.5 ,\"-5\",6e1, 2.0 \r\n");
    rt_dataset *d = rt_data_load(&test_model, p, RT_DATA_LABELLED);
    CHECK(d && d->n == 2 && d->n_tensors == 2);
    if (!d)
        return;
    float *x = d->data[0];
    int32_t *label = d->data[1];
    CHECK(x[0] == 1 && x[2] == 3 && x[3] == 4.5f && x[4] == -5 && x[5] == 60);
    CHECK(label[0] == 0 && label[1] == 2);
    rt_data_free(d);

    /* Inputs only, with or without the target column. */
    p = write_tmp("inputs.csv", "1,2,3\n4,5,6\n7,8,9\n");
    d = rt_data_load(&test_model, p, RT_DATA_INPUTS);
    CHECK(d && d->n == 3 && d->n_tensors == 1 && ((float *)d->data[0])[8] == 9);
    rt_data_free(d);
    p = write_tmp("inputs4.csv", "1,2,3,1\n4,5,6,1\n");
    d = rt_data_load(&test_model, p, RT_DATA_INPUTS);
    CHECK(d && d->n == 2 && d->n_tensors == 1);
    rt_data_free(d);
}

static void expect_csv_error(const char *text, int mode, const char *what) {
    const char *p = write_tmp("bad.csv", text);
    rt_dataset *d = NULL;
    CHECK_ERROR(!(d = rt_data_load(&test_model, p, mode)), what);
    rt_data_free(d);
}

static void test_csv_bad(void) {
    expect_csv_error("1,2,3,0\n1,2,3\n", RT_DATA_LABELLED, "bad.csv:2: expected 4 columns, found 3");
    expect_csv_error("1,2,3,0\n1,2,x,0\n", RT_DATA_LABELLED,
                     "bad.csv:2:5: cannot parse \"x\" as a number (column 3, x[2])");
    expect_csv_error("a,b,c,d\n1,2,3,0\nh,i,j,k\n", RT_DATA_LABELLED, "bad.csv:3:1: cannot parse \"h\"");
    expect_csv_error("1,2,3,0.5\n", RT_DATA_LABELLED, "bad.csv:1:7: \"0.5\" is not an integer");
    expect_csv_error("1,2,3,1e10\n", RT_DATA_LABELLED, "is not an integer");
    expect_csv_error("1,2,1e39,1\n", RT_DATA_LABELLED, "out of range for f32");
    expect_csv_error("1,2,3,1\n1,2,,1\n", RT_DATA_LABELLED, "bad.csv:2:5: cannot parse \"\"");
    expect_csv_error("", RT_DATA_LABELLED, "bad.csv: empty file");
    expect_csv_error("\n  \n", RT_DATA_LABELLED, "bad.csv: empty file");
    expect_csv_error("a,b,c,d\n", RT_DATA_LABELLED, "no data rows");
    expect_csv_error("1,2\n", RT_DATA_INPUTS, "expected 3 or 4 columns, found 2");
    expect_csv_error("1,2,3\n1,2,3,4\n", RT_DATA_INPUTS, "bad.csv:2: expected 3 columns, found 4");
    rt_dataset *d;
    CHECK_ERROR(!(d = rt_data_load(&test_model, "/nonexistent/x.csv", RT_DATA_LABELLED)),
                "cannot open /nonexistent/x.csv: No such file or directory");
}

/*
 * IDX and NPY
 */

static void write_bytes(const char *name, const void *data, size_t len) {
    char path[128];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "wb");
    fwrite(data, 1, len, f);
    fclose(f);
}

/* x: 2 samples of [3] u8 (IDX), labels: 2 u8 (IDX). */
static const unsigned char idx_x[] = {0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 250, 251, 255};
static const unsigned char idx_label[] = {0, 0, 8, 1, 0, 0, 0, 2, 1, 0};

static void test_idx(void) {
    const rt_tensor *x = &test_inputs[0], *label = &test_targets[0];
    rt_dataset *d = rt_idx_parse("x.idx", idx_x, sizeof idx_x, x);
    CHECK(d && d->n == 2 && d->n_tensors == 1);
    if (d) { /* u8 stays bytes, converted as batches are gathered */
        CHECK(d->stores[0] == RT_STORE_U8);
        CHECK(rt_data_int(d, 0, 0) == 1 && rt_data_int(d, 0, 2) == 3 && rt_data_int(d, 0, 3) == 250 &&
              rt_data_int(d, 0, 5) == 255);
    }
    rt_data_free(d);
    d = rt_idx_parse("l.idx", idx_label, sizeof idx_label, label);
    CHECK(d && d->n == 2 && rt_data_int(d, 0, 0) == 1 && rt_data_int(d, 0, 1) == 0);
    rt_data_free(d);
    /* i16 big-endian -300, 7 as labels; f64 2.5 as x values. */
    static const unsigned char i16[] = {0, 0, 0x0b, 1, 0, 0, 0, 2, 0xfe, 0xd4, 0, 7};
    d = rt_idx_parse("i16.idx", i16, sizeof i16, label);
    CHECK(d && ((int32_t *)d->data[0])[0] == -300 && ((int32_t *)d->data[0])[1] == 7);
    rt_data_free(d);
    static const unsigned char f64[] = {0, 0, 0x0e, 2, 0, 0, 0, 1, 0, 0, 0, 3, 0x40, 4, 0, 0, 0, 0, 0, 0,
                                        0xc0, 0,  0, 0, 0, 0, 0, 0, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0};
    d = rt_idx_parse("f64.idx", f64, sizeof f64, x);
    CHECK(d && ((float *)d->data[0])[0] == 2.5f && ((float *)d->data[0])[1] == -2 && ((float *)d->data[0])[2] == 1);
    rt_data_free(d);

    CHECK_ERROR(!(d = rt_idx_parse("x.idx", idx_x, sizeof idx_x, label)), "each sample is 3 (3 values), but");
    CHECK_ERROR(!(d = rt_idx_parse("l.idx", idx_label, sizeof idx_label, x)), "each sample is a single value");
    CHECK_ERROR(!(d = rt_idx_parse("x.idx", idx_x, sizeof idx_x - 1, x)), "the file has 5");
    unsigned char copy[sizeof idx_x + 1];
    memcpy(copy, idx_x, sizeof idx_x);
    copy[sizeof idx_x] = 9;
    CHECK_ERROR(!(d = rt_idx_parse("x.idx", copy, sizeof copy, x)), "1 bytes after the 2 x 3 u8 data");
    copy[2] = 0x0a;
    CHECK_ERROR(!(d = rt_idx_parse("x.idx", copy, sizeof idx_x, x)), "not an IDX file: magic 00 00 0a 02");
    /* A huge dimension is refused before anything is allocated. */
    static const unsigned char huge[] = {0, 0, 8, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 3};
    CHECK_ERROR(!(d = rt_idx_parse("h.idx", huge, sizeof huge, x)), "too large");
    /* Every truncation is refused. */
    int refused = 1;
    for (size_t len = 0; len < sizeof idx_x; len++) {
        d = rt_idx_parse("x.idx", idx_x, len, x);
        refused &= d == NULL;
        rt_data_free(d);
    }
    CHECK(refused);
}

/* A version 1.0 NPY file of `descr` and `shape` holding `data`. */
static size_t make_npy(unsigned char *out, const char *descr, const char *shape, const void *data, size_t n) {
    char dict[128];
    snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape);
    size_t len = strlen(dict) + 1;
    while ((10 + len) % 64)
        len++;
    memcpy(out, "\x93NUMPY\x01\x00", 8);
    out[8] = (unsigned char)len;
    out[9] = (unsigned char)(len >> 8);
    memset(out + 10, ' ', len);
    memcpy(out + 10, dict, strlen(dict));
    out[10 + len - 1] = '\n';
    memcpy(out + 10 + len, data, n);
    return 10 + len + n;
}

static void test_npy(void) {
    const rt_tensor *x = &test_inputs[0], *label = &test_targets[0];
    unsigned char buf[512];
    const float xs[] = {1.5f, -2, 3, 4, 5, 6};
    size_t n = make_npy(buf, "<f4", "(2, 3)", xs, sizeof xs);
    rt_dataset *d = rt_npy_parse("x.npy", buf, n, x);
    CHECK(d && d->n == 2 && ((float *)d->data[0])[0] == 1.5f && ((float *)d->data[0])[5] == 6);
    rt_data_free(d);
    /* The same as (2, 3, 1): the per-sample count is what matters. */
    n = make_npy(buf, "<f4", "(2, 3, 1)", xs, sizeof xs);
    d = rt_npy_parse("x.npy", buf, n, x);
    CHECK(d && d->n == 2);
    rt_data_free(d);
    const int64_t labels[] = {3, -1};
    n = make_npy(buf, "<i8", "(2,)", labels, sizeof labels);
    d = rt_npy_parse("l.npy", buf, n, label);
    CHECK(d && ((int32_t *)d->data[0])[0] == 3 && ((int32_t *)d->data[0])[1] == -1);
    rt_data_free(d);
    const unsigned char big[] = {0, 0, 0, 5, 0xff, 0xff, 0xff, 0xfe};
    n = make_npy(buf, ">i4", "(2,)", big, sizeof big);
    d = rt_npy_parse("b.npy", buf, n, label);
    CHECK(d && ((int32_t *)d->data[0])[0] == 5 && ((int32_t *)d->data[0])[1] == -2);
    rt_data_free(d);
    const unsigned char flags[] = {1, 0};
    n = make_npy(buf, "|b1", "(2,)", flags, sizeof flags);
    d = rt_npy_parse("b.npy", buf, n, label);
    CHECK(d && ((int32_t *)d->data[0])[0] == 1 && ((int32_t *)d->data[0])[1] == 0);
    rt_data_free(d);

    const int64_t too_big[] = {(int64_t)1 << 40, 0};
    n = make_npy(buf, "<i8", "(2,)", too_big, sizeof too_big);
    CHECK_ERROR(!(d = rt_npy_parse("l.npy", buf, n, label)), "is not an integer in i32's range");
    const double inf[] = {1, 1e300, 3, 4, 5, 6};
    n = make_npy(buf, "<f8", "(2, 3)", inf, sizeof inf);
    CHECK_ERROR(!(d = rt_npy_parse("x.npy", buf, n, x)), "value 1e+300 of sample 0 (x[1]) is out of range for f32");
    n = make_npy(buf, "<f4", "()", xs, 4);
    CHECK_ERROR(!(d = rt_npy_parse("x.npy", buf, n, x)), "0-dimensional");
    n = make_npy(buf, "<f2", "(2, 3)", xs, 12);
    CHECK_ERROR(!(d = rt_npy_parse("x.npy", buf, n, x)), "NPY dtype '<f2' is not supported");
    n = make_npy(buf, "<f4", "(2, 3)", xs, sizeof xs);
    int refused = 1;
    for (size_t len = 0; len < n; len++) {
        d = rt_npy_parse("x.npy", buf, len, x);
        refused &= d == NULL;
        rt_data_free(d);
    }
    CHECK(refused);
    /* Random corruptions of the header: reject or accept, never crash. */
    rt_rng r;
    rt_rng_seed(&r, 3, 99);
    unsigned char copy[512];
    for (int trial = 0; trial < 3000; trial++) {
        memcpy(copy, buf, n);
        for (int k = 0; k < 3; k++)
            copy[rt_rng_below(&r, n - sizeof xs)] = (unsigned char)" {}(),:'<>|fiub0123456789xTrueFalse"[rt_rng_below(&r, 35)];
        rt_data_free(rt_npy_parse("x.npy", copy, n, x));
    }
}

/* Files listed with commas, each format feeding the next tensors. */
static void test_file_lists(void) {
    char list[512], x_idx[160], l_idx[160], x_csv[160], all_csv[160];
    write_bytes("x.idx", idx_x, sizeof idx_x);
    write_bytes("l.idx", idx_label, sizeof idx_label);
    snprintf(x_idx, sizeof x_idx, "%s/x.idx", tmpdir);
    snprintf(l_idx, sizeof l_idx, "%s/l.idx", tmpdir);
    snprintf(x_csv, sizeof x_csv, "%s", write_tmp("x.csv", "a,b,c\n1,2,3\n250,251,255\n"));
    snprintf(all_csv, sizeof all_csv, "%s", write_tmp("all.csv", "1,2,3,1\n250,251,255,0\n"));
    snprintf(list, sizeof list, "%s,%s", x_idx, l_idx);
    rt_dataset *d = rt_data_load(&test_model, list, RT_DATA_LABELLED);
    CHECK(d && d->n == 2 && d->n_tensors == 2 && d->tensors[1] == &test_targets[0]);
    CHECK(d && strcmp(d->path, list) == 0);
    rt_data_free(d);
    snprintf(list, sizeof list, "%s,%s", x_csv, l_idx);
    d = rt_data_load(&test_model, list, RT_DATA_LABELLED);
    CHECK(d && d->n == 2 && ((float *)d->data[0])[4] == 251 && rt_data_int(d, 1, 0) == 1);
    rt_data_free(d);
    /* predict: targets dropped, or absent. */
    snprintf(list, sizeof list, "%s,%s", x_idx, l_idx);
    d = rt_data_load(&test_model, list, RT_DATA_INPUTS);
    CHECK(d && d->n_tensors == 1);
    rt_data_free(d);
    d = rt_data_load(&test_model, all_csv, RT_DATA_INPUTS);
    CHECK(d && d->n_tensors == 1 && d->n == 2);
    rt_data_free(d);
    CHECK_ERROR(!(d = rt_data_load(&test_model, x_idx, RT_DATA_LABELLED)), "no file for target \"label\"");
    snprintf(list, sizeof list, "%s,%s", all_csv, l_idx);
    CHECK_ERROR(!(d = rt_data_load(&test_model, list, RT_DATA_LABELLED)), "l.idx: one file too many");
    CHECK_ERROR(!(d = rt_data_load(&test_model, ",", RT_DATA_LABELLED)), "empty file name");
    snprintf(list, sizeof list, "%s,%s", x_idx, x_idx);
    CHECK_ERROR(!(d = rt_data_load(&test_model, list, RT_DATA_LABELLED)), "x.idx: each sample is 3 (3 values)");

    /* --val-split: the last fraction, copied out. */
    d = rt_data_load(&test_model, write_tmp("five.csv", "1,1,1,0\n2,2,2,1\n3,3,3,0\n4,4,4,1\n5,5,5,0\n"),
                     RT_DATA_LABELLED);
    rt_dataset *v = d ? rt_data_split(d, 0.4) : NULL;
    CHECK(v && d->n == 3 && v->n == 2 && ((float *)v->data[0])[0] == 4 && ((int32_t *)v->data[1])[1] == 0);
    CHECK(v && strstr(v->path, "the last 40% of"));
    rt_data_free(v);
    CHECK_ERROR(!(v = rt_data_split(d, 0.9)), "leaves nothing to train on");
    rt_data_free(d);
}

/*
 * Learning-rate schedules
 */

static rt_model with_schedule(const char *name, int n, const char *const *names, const double *values) {
    rt_model m = test_model;
    m.schedule = name;
    m.n_sched_args = n;
    m.sched_arg_names = names;
    m.sched_arg_values = values;
    return m;
}

static int near(double a, double b) { return fabs(a - b) <= 1e-12 * fmax(1, fabs(b)); }

static void test_schedules(void) {
    rt_schedule s;
    rt_model m = with_schedule(NULL, 0, NULL, NULL);
    CHECK(rt_schedule_resolve(&m, &s) == 0 && s.kind == RT_SCHED_CONSTANT);
    CHECK(near(rt_schedule_lr(&s, 0.1, 12345, 10, 100), 0.1));

    /* step(step_size = 2, gamma = 0.5), 10 steps per epoch */
    static const char *const step_names[] = {"step_size", "gamma"};
    static const double step_values[] = {2, 0.5};
    m = with_schedule("step", 2, step_names, step_values);
    CHECK(rt_schedule_resolve(&m, &s) == 0);
    CHECK(near(rt_schedule_lr(&s, 1, 0, 10, 100), 1));
    CHECK(near(rt_schedule_lr(&s, 1, 19, 10, 100), 1));
    CHECK(near(rt_schedule_lr(&s, 1, 20, 10, 100), 0.5));
    CHECK(near(rt_schedule_lr(&s, 1, 45, 10, 100), 0.25));
    /* defaults: step_size 1, gamma 0.1 */
    m = with_schedule("step", 0, NULL, NULL);
    CHECK(rt_schedule_resolve(&m, &s) == 0 && near(rt_schedule_lr(&s, 1, 25, 10, 100), 0.01));

    static const char *const exp_names[] = {"gamma"};
    static const double exp_values[] = {0.9};
    m = with_schedule("exponential", 1, exp_names, exp_values);
    CHECK(rt_schedule_resolve(&m, &s) == 0);
    CHECK(near(rt_schedule_lr(&s, 2, 9, 10, 100), 2));
    CHECK(near(rt_schedule_lr(&s, 2, 30, 10, 100), 2 * 0.9 * 0.9 * 0.9));

    /* cosine(min_lr = 0.1, warmup = 4) over 100 steps */
    static const char *const cos_names[] = {"min_lr", "warmup"};
    static const double cos_values[] = {0.1, 4};
    m = with_schedule("cosine", 2, cos_names, cos_values);
    CHECK(rt_schedule_resolve(&m, &s) == 0);
    double full0 = 0.1 + 0.9 * (1 + cos(0)) / 2;
    CHECK(near(rt_schedule_lr(&s, 1, 0, 10, 100), full0 * 0.25));
    CHECK(near(rt_schedule_lr(&s, 1, 2, 10, 100), (0.1 + 0.9 * (1 + cos(M_PI * 0.02)) / 2) * 0.75));
    CHECK(near(rt_schedule_lr(&s, 1, 50, 10, 100), 0.55));
    CHECK(near(rt_schedule_lr(&s, 1, 100, 10, 100), 0.1));
    char buf[128];
    rt_schedule_describe(&m, buf, sizeof buf);
    CHECK(strcmp(buf, "cosine(min_lr=0.1, warmup=4)") == 0);

    /* warmup alone: lr (s + 1) / warmup for the first steps */
    static const char *const warm_names[] = {"warmup"};
    static const double warm_values[] = {10};
    m = with_schedule("constant", 1, warm_names, warm_values);
    CHECK(rt_schedule_resolve(&m, &s) == 0);
    CHECK(near(rt_schedule_lr(&s, 0.5, 0, 10, 100), 0.05));
    CHECK(near(rt_schedule_lr(&s, 0.5, 4, 10, 100), 0.25));
    CHECK(near(rt_schedule_lr(&s, 0.5, 9, 10, 100), 0.5));
    CHECK(near(rt_schedule_lr(&s, 0.5, 50, 10, 100), 0.5));

    m = with_schedule("linear", 0, NULL, NULL);
    CHECK_ERROR(rt_schedule_resolve(&m, &s), "unknown learning-rate schedule \"linear\"");
    m = with_schedule("cosine", 1, exp_names, exp_values);
    CHECK_ERROR(rt_schedule_resolve(&m, &s), "schedule cosine has no setting \"gamma\"");
    static const double zero[] = {0, 0.5};
    m = with_schedule("step", 2, step_names, zero);
    CHECK_ERROR(rt_model_check(&m), "step_size = 0 is not a number > 0");
    static const double negative[] = {-1};
    m = with_schedule("exponential", 1, exp_names, negative);
    CHECK_ERROR(rt_model_check(&m), "gamma = -1 is not a finite number >= 0");
}

/*
 * Layouts
 */

static void test_layout(void) {
    /* s: f32[2, B, 3] -- the batch dimension in the middle. */
    static const rt_tensor s = {"s", RT_F32, 3, {2, MAXB, 3}, 2, 0, -1, 0};
    rt_layout l = rt_layout_of(&s);
    CHECK(l.has_batch && l.outer == 2 && l.inner == 3 && l.sample == 6);
    char buf[64];
    rt_shape_string(&s, buf, sizeof buf);
    CHECK(strcmp(buf, "[2, B, 3]") == 0);
    rt_column_name(&s, 4, buf, sizeof buf);
    CHECK(strcmp(buf, "s[1][1]") == 0);
    rt_column_name(&test_targets[0], 0, buf, sizeof buf);
    CHECK(strcmp(buf, "label") == 0);

    rt_dataset d = {0};
    const rt_tensor *tensors[] = {&s};
    float samples[3 * 6], arena[2 * 2 * 3], back[6];
    for (int i = 0; i < 18; i++)
        samples[i] = (float)i;
    void *data[] = {samples};
    int stores[] = {RT_STORE_DTYPE};
    d.n = 3, d.n_tensors = 1, d.tensors = tensors, d.layouts = &l, d.data = data, d.stores = stores;
    int64_t index[] = {2, 0};
    rt_gather((char *)arena, &d, index, 2);
    /* arena = [t][i][k]: t=0: sample 2 [12,13,14], sample 0 [0,1,2]; t=1:
     * sample 2 [15,16,17], sample 0 [3,4,5]. */
    CHECK(arena[0] == 12 && arena[3] == 0 && arena[6] == 15 && arena[9] == 3);
    rt_read_sample((char *)arena, &s, 2, 0, back);
    CHECK(back[0] == 12 && back[3] == 15 && back[5] == 17);
}

/*
 * Checkpoints
 */

static void fill(char *arena) {
    for (int i = 0; i < 14; i++) {
        float v = (float)i * 0.25f - 1;
        memcpy(arena + 4 * i, &v, 4);
    }
    int32_t t = 77;
    memcpy(arena + 56, &t, 4);
}

static void test_ckpt_roundtrip(rt_buf *image) {
    char *a = rt_arena_new(&test_model), *b = rt_arena_new(&test_model);
    fill(a);
    rt_ckpt_serialize(&test_model, a, image);
    uint64_t header = 0;
    memcpy(&header, image->data, 8);
    CHECK(header % 8 == 0 && image->len == 8 + header + 60);
    CHECK(rt_ckpt_load_buffer(&test_model, b, "x", (unsigned char *)image->data, image->len) == 0);
    CHECK(memcmp(a, b, 60) == 0);

    char path[128];
    snprintf(path, sizeof path, "%s/c.ckpt", tmpdir);
    memset(b, 0, 60);
    CHECK(rt_ckpt_save(&test_model, a, path) == 0);
    CHECK(rt_ckpt_load(&test_model, b, path) == 0);
    CHECK(memcmp(a, b, 60) == 0);
    rt_arena_free(a);
    rt_arena_free(b);
}

/* Builds a checkpoint from a header text and `data_len` bytes of data. */
static int load_crafted(const char *header, size_t data_len, char *arena) {
    size_t n = strlen(header);
    unsigned char *buf = rt_xcalloc(8 + n + data_len, 1);
    for (int i = 0; i < 8; i++)
        buf[i] = (unsigned char)((uint64_t)n >> (8 * i));
    memcpy(buf + 8, header, n);
    int rc = rt_ckpt_load_buffer(&test_model, arena, "c.ckpt", buf, 8 + n + data_len);
    free(buf);
    return rc;
}

#define W_OK_ "\"W\":{\"dtype\":\"F32\",\"shape\":[3,2],\"data_offsets\":[0,24]}"
#define B_OK_ "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[24,32]}"

static void test_ckpt_crafted(void) {
    char *a = rt_arena_new(&test_model);
    CHECK(load_crafted("{" W_OK_ "," B_OK_ "}", 32, a) == 0); /* no state */
    CHECK(load_crafted("{" B_OK_ "," W_OK_ ",\"__metadata__\":{}}", 32, a) == 0);
    CHECK_ERROR(load_crafted("{" W_OK_ "}", 24, a), "c.ckpt: parameter \"b\" is missing");
    CHECK_ERROR(load_crafted("{" W_OK_ "," B_OK_ ",\"zz\":{}}", 32, a), "unknown tensor \"zz\"");
    CHECK_ERROR(load_crafted("{" W_OK_ "," B_OK_ "," B_OK_ "}", 32, a), "appears twice");
    CHECK_ERROR(load_crafted("{" W_OK_ ",\"b\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[24,32]}}", 32, a),
                "dtype F64 is not supported");
    CHECK_ERROR(load_crafted("{" W_OK_ ",\"b\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[24,32]}}", 32, a),
                "dtype I32 does not match the model's F32");
    CHECK_ERROR(load_crafted("{" W_OK_ ",\"b\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[24,36]}}", 36, a),
                "shape [3] does not match the model's [2]");
    CHECK_ERROR(load_crafted("{" W_OK_ ",\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[20,28]}}", 32, a),
                "overlap");
    CHECK_ERROR(load_crafted("{" W_OK_ ",\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[24,40]}}", 40, a),
                "hold 16 bytes, its shape needs 8");
    CHECK_ERROR(load_crafted("{" W_OK_ ",\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[24,32]}}", 28, a),
                "run past the end of the data");
    CHECK_ERROR(load_crafted("{" W_OK_ "," B_OK_ "}", 40, a), "cover 32 bytes but the file holds 40");
    CHECK_ERROR(
        load_crafted("{" W_OK_ ",\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[24,32],\"x\":1}}", 32, a),
        "unexpected field \"x\"");
    CHECK_ERROR(load_crafted("{" W_OK_ ",\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[32,24]}}", 32, a),
                "data_offsets");
    CHECK_ERROR(load_crafted("{" W_OK_ "," B_OK_ ",\"__metadata__\":{\"a\":1}}", 32, a), "is not a string");
    CHECK_ERROR(load_crafted("[]", 0, a), "not a JSON object");
    CHECK_ERROR(load_crafted("{\"W\":", 0, a), "c.ckpt: malformed JSON header at byte 13: unexpected end");
    CHECK_ERROR(rt_ckpt_load_buffer(&test_model, a, "c.ckpt", (const unsigned char *)"abc", 3), "truncated: 3 bytes");
    CHECK_ERROR(rt_ckpt_load_buffer(&test_model, a, "c.ckpt", (const unsigned char *)"garbage!garbage", 15),
                "header length");
    rt_arena_free(a);
}

/* Every truncation, every flipped bit and many random corruptions are
 * refused, without a crash and with the arena untouched. */
static void test_ckpt_fuzz(const rt_buf *image) {
    char *a = rt_arena_new(&test_model), *before = rt_xmalloc(256);
    memset(a, 0x5a, 256);
    memcpy(before, a, 256);
    int untouched = 1;
    for (size_t len = 0; len < image->len; len++) {
        CHECK(rt_ckpt_load_buffer(&test_model, a, "t", (unsigned char *)image->data, len) != 0);
        untouched &= memcmp(a, before, 256) == 0;
    }
    CHECK(untouched);
    rt_rng r;
    rt_rng_seed(&r, 1, 99);
    unsigned char *copy = rt_xmalloc(image->len);
    int accepted = 0;
    for (int trial = 0; trial < 5000; trial++) {
        memcpy(copy, image->data, image->len);
        int flips = 1 + (int)rt_rng_below(&r, 4);
        for (int k = 0; k < flips; k++)
            copy[rt_rng_below(&r, image->len)] ^= (unsigned char)(1 + rt_rng_below(&r, 255));
        accepted += rt_ckpt_load_buffer(&test_model, a, "t", copy, image->len) == 0;
    }
    CHECK(accepted == 0); /* the checksums catch what the structure does not */
    /* every single flipped bit, header or data, is refused; in the data
     * the error names the tensor it hit */
    uint64_t header = 0;
    memcpy(&header, image->data, 8);
    int refused = 0, named = 0, in_data = 0;
    for (size_t bit = 0; bit < 8 * image->len; bit++) {
        memcpy(copy, image->data, image->len);
        copy[bit / 8] ^= (unsigned char)(1u << bit % 8);
        int rc = rt_ckpt_load_buffer(&test_model, a, "t", copy, image->len);
        refused += rc != 0;
        untouched &= memcmp(a, before, 256) == 0;
        if (bit / 8 >= 8 + header) {
            in_data++;
            named += rc != 0 && strstr(rt_last_error, "damaged: tensor \"") != NULL;
        }
    }
    CHECK(refused == (int)(8 * image->len));
    CHECK(in_data == 8 * 60 && named == in_data);
    CHECK(untouched);
    free(copy);
    free(before);
    rt_arena_free(a);
}

static void test_checkpoints(void) {
    rt_buf image = {0};
    test_ckpt_roundtrip(&image);
    test_ckpt_crafted();
    test_ckpt_fuzz(&image);
    free(image.data);
}

/*
 * Labelled text: words [B, 5] into a table of 8 rows (6 words), 3 classes
 */

static const rt_param labels_params[] = {
    {.t = {"E", RT_F32, 2, {8, 2}, 0, 0}, .init = RT_INIT_CONSTANT, .trainable = 1, .grad_offset = 64},
};
static const rt_tensor labels_inputs[] = {{"words", RT_I32, 2, {MAXB, 5}, 1, 128, -1, 8}};
static const rt_tensor labels_targets[] = {{"intent", RT_I32, 1, {MAXB}, 1, 208, -1, 3}};

static const rt_model labels_model = {
    .name = "labels",
    .source = "labels.mdl",
    .arena_bytes = 256,
    .max_batch = MAXB,
    .n_params = 1,
    .params = labels_params,
    .n_inputs = 1,
    .inputs = labels_inputs,
    .n_targets = 1,
    .targets = labels_targets,
    .seed = 7,
};

/* The words of text, space-separated, as the tokeniser reads them. */
static void words_of(const char *text, char *out, size_t size) {
    size_t at = 0, start, n, used = 0;
    out[0] = '\0';
    while ((n = rt_labels_next_word(text, strlen(text), &at, &start)) > 0 && used + n + 2 < size) {
        used += (size_t)snprintf(out + used, size - used, "%s%.*s", used ? " " : "", (int)n, text + start);
    }
}

static void test_tokeniser(void) {
    char w[128];
    words_of("Where's order #48213?!", w, sizeof w);
    CHECK_STR(w, "Where s order 48213");
    words_of("  refund\tpls!!  ", w, sizeof w);
    CHECK_STR(w, "refund pls");
    words_of("caf\xc3\xa9 na\xc3\xafve x_y", w, sizeof w); /* bytes above 127 separate */
    CHECK_STR(w, "caf na ve x y");
    words_of("?!", w, sizeof w);
    CHECK_STR(w, "");
}

static int32_t ids_at(const rt_dataset *d, int64_t row, int k) { return ((int32_t *)d->data[0])[row * 5 + k]; }

static int row_is(const rt_dataset *d, int64_t row, const int32_t want[5]) {
    for (int k = 0; k < 5; k++)
        if (ids_at(d, row, k) != want[k])
            return 0;
    return 1;
}

static const char labels_tsv[] = "intent\ttext\n"
                                 "b\tThe cat, the CAT!\r\n"
                                 "a\tdog's dinner\n"
                                 "\n"
                                 "c\tone two three four five six seven\n"
                                 "a \t the end\n";

/* Words by descending count, ties alphabetical; the table keeps 6. */
static rt_lexicon *test_labels_training(void) {
    const char *p = write_tmp("l.tsv", labels_tsv);
    rt_lexicon *x = NULL;
    rt_labels_info info;
    rt_dataset *d = rt_labels_load(&labels_model, p, RT_DATA_LABELLED, &x, &info);
    CHECK(d && x && d->n == 4 && d->n_tensors == 2);
    if (!d || !x)
        return x;
    CHECK(x->n_words == 6 && strcmp(x->words[0], "the") == 0 && strcmp(x->words[1], "cat") == 0 &&
          strcmp(x->words[2], "dinner") == 0 && strcmp(x->words[5], "five") == 0);
    CHECK(x->n_classes == 3 && strcmp(x->classes[0], "a") == 0 && strcmp(x->classes[2], "c") == 0);
    CHECK(info.messages == 4 && info.truncated == 1 && info.dropped == 7 && info.words == 14 && info.unknown == 5);
    static const int32_t r0[5] = {2, 3, 2, 3, 0}, r1[5] = {5, 1, 4, 0, 0}, r2[5] = {1, 1, 1, 1, 7},
                         r3[5] = {2, 6, 0, 0, 0};
    CHECK(row_is(d, 0, r0) && row_is(d, 1, r1) && row_is(d, 2, r2) && row_is(d, 3, r3));
    int32_t *label = d->data[1];
    CHECK(label[0] == 1 && label[1] == 0 && label[2] == 2 && label[3] == 0);
    rt_data_free(d);

    int32_t ids[5];
    int64_t unknown = 0;
    CHECK(rt_labels_encode(x, "CAT the zebra", 13, ids, 5, &unknown) == 3);
    CHECK(ids[0] == 3 && ids[1] == 2 && ids[2] == 1 && ids[3] == 0 && unknown == 1);
    return x;
}

/* classes.txt beside the file sets the order; a label outside it is an
 * error. */
static void test_labels_class_file(void) {
    write_tmp("classes.txt", "c\n\nb\r\na\n");
    const char *p = write_tmp("l.tsv", labels_tsv);
    rt_lexicon *x = NULL;
    rt_dataset *d = rt_labels_load(&labels_model, p, RT_DATA_LABELLED, &x, NULL);
    CHECK(d && x && x->n_classes == 3 && strcmp(x->classes[0], "c") == 0);
    int32_t *label = d ? d->data[1] : NULL;
    CHECK(label && label[0] == 1 && label[1] == 2 && label[2] == 0 && label[3] == 2);
    rt_data_free(d);
    rt_lexicon_free(x);
    x = NULL;
    p = write_tmp("l.tsv", "a\tx\nd\ty\n");
    CHECK_ERROR(!(d = rt_labels_load(&labels_model, p, RT_DATA_LABELLED, &x, NULL)),
                "l.tsv:2: label \"d\" is not one of the 3 classes of");
    rt_lexicon_free(x);
    x = NULL;
    write_tmp("classes.txt", "a\nb\na\n");
    p = write_tmp("l.tsv", "a\tx\n"); /* write_tmp's path is static */
    CHECK_ERROR(!(d = rt_labels_load(&labels_model, p, RT_DATA_LABELLED, &x, NULL)),
                "classes.txt:3: class \"a\" is listed twice");
    rt_lexicon_free(x);
    char path[128];
    snprintf(path, sizeof path, "%s/classes.txt", tmpdir);
    unlink(path);
}

static void expect_labels_error(const rt_lexicon *given, const char *text, const char *what) {
    const char *p = write_tmp("e.tsv", text);
    rt_lexicon *x = (rt_lexicon *)given;
    rt_dataset *d = NULL;
    CHECK_ERROR(!(d = rt_labels_load(&labels_model, p, RT_DATA_LABELLED, &x, NULL)), what);
    if (!given)
        rt_lexicon_free(x);
    rt_data_free(d);
}

static void test_labels_errors(const rt_lexicon *x) {
    expect_labels_error(NULL, "a\tx\nb no tab\n", "e.tsv:2: no tab: a line is LABEL<TAB>TEXT");
    expect_labels_error(NULL, "a\tx\tb\n", "e.tsv:1: more than one tab");
    expect_labels_error(NULL, "a\tx\n\ty\n", "e.tsv:2: empty label");
    expect_labels_error(NULL, "a\tx\nb\t?!\n", "e.tsv:2: the text has no words");
    expect_labels_error(NULL, "", "e.tsv: no labelled lines");
    expect_labels_error(NULL, "intent\ttext\n\n", "e.tsv: no labelled lines");
    expect_labels_error(x, "a\tthe cat\nd\tthe dog\n", "e.tsv:2: label \"d\" is not one of the 3 classes of");
}

/* The words and classes survive a checkpoint; broken ones are refused. */
static void test_labels_checkpoint(rt_lexicon *x) {
    char path[128];
    snprintf(path, sizeof path, "%s/lc.ckpt", tmpdir);
    char *a = rt_arena_new(&labels_model);
    rt_vocab v = {0}, back = {0};
    v.lexicon = x;
    rt_ckpt_meta meta = {&v, NULL, NULL};
    CHECK(rt_ckpt_save_meta(&labels_model, a, &meta, path) == 0);
    CHECK(rt_ckpt_load_vocab(&labels_model, a, path, &back) == 0 && back.lexicon);
    if (back.lexicon) {
        CHECK(back.lexicon->n_words == x->n_words && back.lexicon->n_classes == x->n_classes);
        for (int i = 0; i < x->n_words && i < back.lexicon->n_words; i++)
            CHECK_STR(back.lexicon->words[i], x->words[i]);
        CHECK(rt_lexicon_word_id(back.lexicon, "Dog", 3) == 5);
        rt_lexicon_free(back.lexicon);
    }
    static const char *bad[][2] = {
        {"\"mdl.words\":\"a B\",\"mdl.classes\":\"x\"", "is not a list of lower-case words"},
        {"\"mdl.words\":\"a  b\",\"mdl.classes\":\"x\"", "is not a list of lower-case words"},
        {"\"mdl.words\":\"a b a\",\"mdl.classes\":\"x\"", "the word \"a\" is listed twice"},
        {"\"mdl.words\":\"a b\"", "\"mdl.words\" without \"mdl.classes\""},
        {"\"mdl.words\":\"a\",\"mdl.classes\":\"\"", "no class names"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char header[256];
        snprintf(header, sizeof header,
                 "{\"__metadata__\":{%s},\"E\":{\"dtype\":\"F32\",\"shape\":[8,2],\"data_offsets\":[0,64]}}",
                 bad[i][0]);
        size_t n = strlen(header);
        unsigned char buf[512] = {0};
        buf[0] = (unsigned char)n;
        memcpy(buf + 8, header, n);
        CHECK_ERROR(rt_ckpt_load_buffer(&labels_model, a, "c.ckpt", buf, 8 + n + 64), bad[i][1]);
    }
    rt_arena_free(a);
}

static void test_labels(void) {
    test_tokeniser();
    rt_lexicon *x = test_labels_training();
    test_labels_class_file();
    if (x) {
        test_labels_errors(x);
        test_labels_checkpoint(x);
    }
    rt_lexicon_free(x);
}

static void test_descriptor_check(void) {
    rt_model m = test_model;
    CHECK(rt_model_check(&m) == 0);
    m.arena_bytes = 100;
    CHECK_ERROR(rt_model_check(&m), "lies outside");
    m = test_model;
    m.max_batch = 0;
    CHECK(rt_model_check(&m) != 0);
}

static void cleanup(void) {
    const char *names[] = {"good.csv", "inputs.csv", "inputs4.csv", "bad.csv", "c.ckpt", "x.idx",  "l.idx",
                           "x.csv",    "all.csv",    "five.csv",    "l.tsv",   "e.tsv",  "lc.ckpt"};
    char path[128];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", tmpdir, names[i]);
        unlink(path);
    }
    rmdir(tmpdir);
}

/*
 * "mdl.run": where a training run stands (rt_resume.c)
 */

/* Saves a checkpoint of test_model with `run` as "mdl.run" and reads its
 * run state back: 0 or -1 (the error in rt_last_error). */
static int read_run(const char *run, rt_run_state *s) {
    char path[128];
    snprintf(path, sizeof path, "%s/run.ckpt", tmpdir);
    char *a = rt_arena_new(&test_model);
    float hypers[1] = {0};
    rt_ckpt_meta meta = {NULL, hypers, run};
    CHECK(rt_ckpt_save_meta(&test_model, a, &meta, path) == 0);
    rt_arena_free(a);
    rt_last_error[0] = '\0';
    return rt_run_state_read(&test_model, path, s);
}

static void test_run_state(void) {
    rt_run_state s;
    const char *good = "{\"seed\":18446744073709551615,\"epochs\":3,\"epochs_done\":1,\"steps_done\":11,"
                       "\"step\":40,\"batch\":64,\"samples\":1800,\"shuffle\":true,\"windows\":false,"
                       "\"base_lr\":0.0020000000000000000416,\"seen\":704,\"loss\":1.2345678901234567,\"metrics\":[]}";
    CHECK(read_run(good, &s) == 0);
    CHECK(s.seed == UINT64_MAX && s.epochs == 3 && s.epochs_done == 1 && s.steps_done == 11 && s.step == 40);
    CHECK(s.batch == 64 && s.samples == 1800 && s.shuffle == 1 && s.windows == 0 && s.seen == 704);
    CHECK(s.has_base_lr && s.base_lr == 0.002 && s.loss == 1.2345678901234567);
    rt_run_state_free(&s);
    CHECK_ERROR(read_run("[1]", &s), "\"mdl.run\" is not a JSON object");
    CHECK_ERROR(read_run("{\"seed\":1}", &s), "\"mdl.run\" has no number \"epochs\"");
    CHECK_ERROR(read_run("{\"seed\":-1}", &s), "\"seed\" is not a 64-bit count: -1");
    char bad[512];
    snprintf(bad, sizeof bad, "%s", good);
    memcpy(strstr(bad, "true"), "1   ", 4);
    CHECK_ERROR(read_run(bad, &s), "\"mdl.run\" has no true or false \"shuffle\"");
    snprintf(bad, sizeof bad, "%s", good);
    memcpy(strstr(bad, "\"epochs_done\":1"), "\"epochs_done\":4", 15);
    CHECK_ERROR(read_run(bad, &s), "\"mdl.run\" does not describe a run (epoch 4 of 3, batch 64)");
    snprintf(bad, sizeof bad, "%.*s[1]}", (int)(strstr(good, "[]") - good), good);
    CHECK_ERROR(read_run(bad, &s), "\"mdl.run\" has 1 metric sums, model classifier has 0 metrics");
    CHECK_ERROR(read_run(NULL, &s), "has no record of a training run (\"mdl.run\"), so it cannot be resumed");
}

int main(void) {
    rt_quiet_errors = 1; /* errors are checked through rt_last_error */
    snprintf(tmpdir, sizeof tmpdir, "rt_unit_test.XXXXXX");
    if (!mkdtemp(tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    test_json_valid();
    test_json_invalid();
    test_json_depth_and_values();
    test_rng();
    test_init();
    test_csv_good();
    test_csv_bad();
    test_idx();
    test_npy();
    test_file_lists();
    test_schedules();
    test_layout();
    test_checkpoints();
    test_labels();
    test_descriptor_check();
    test_run_state();
    cleanup();
    printf("%d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}
