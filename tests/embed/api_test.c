/*
 * api_test.c - the embedded C API of mdlc -c, with three models linked
 * into one program (house_price, house_price_robust, tiny_classifier):
 * their runtimes are private, so they do not clash.
 *
 * Checks: errors (bad batch, NULL arrays, labels out of range, unknown and
 * runtime hyper-parameters, missing and damaged checkpoints) return -1
 * with a one-line message and change nothing; init(seed) is reproducible
 * and create() is init(the train block's seed); training after a save
 * and load continues with the same bits as without the stop (Adam's
 * state travels in the checkpoint); instances trained at once on two
 * threads get the bits of one after the other; i32 inputs train.
 *
 * usage: api_test WORK_DIR
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "house_price.h"
#include "house_price_robust.h"
#include "tiny_classifier.h"

static int failures;

#define CHECK(cond, ...)                                                                                               \
    do {                                                                                                               \
        if (!(cond)) {                                                                                                 \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                                                \
            printf(__VA_ARGS__);                                                                                       \
            printf("\n");                                                                                              \
            failures++;                                                                                                \
        }                                                                                                              \
    } while (0)

static char work[512];

static const char *path_in_work(const char *name) {
    static char buf[4][600];
    static int next;
    char *p = buf[next++ % 4];
    snprintf(p, sizeof buf[0], "%s/%s", work, name);
    return p;
}

/* price = 2 size - 3.4 age + 4.2 on a fixed grid: no data file needed */
#define ROWS 64
static float xs[ROWS * 2], prices[ROWS];

static void make_rows(void) {
    for (int i = 0; i < ROWS; i++) {
        xs[2 * i] = (float)(i % 8) / 4 - 1;
        xs[2 * i + 1] = (float)(i / 8) / 4 - 1;
        prices[i] = 2 * xs[2 * i] - 3.4f * xs[2 * i + 1] + 4.2f;
    }
}

static int contains(const char *s, const char *part) { return s && strstr(s, part) != NULL; }

static void test_errors(void) {
    house_price *m = house_price_create();
    CHECK(m, "create: %s", house_price_error(NULL));
    if (!m)
        return;
    CHECK(strcmp(house_price_error(m), "") == 0, "a new instance has the error '%s'", house_price_error(m));
    float before[4], after[4], loss = -1;
    CHECK(house_price_train_step(m, 8, xs, prices, &loss) == 0, "train_step: %s", house_price_error(m));
    CHECK(house_price_predict(m, 4, xs, before) == 0, "predict: %s", house_price_error(m));

    CHECK(house_price_train_step(m, 0, xs, prices, &loss) == -1, "batch 0 accepted");
    CHECK(contains(house_price_error(m), "batch 0 is outside 1..1000"), "batch 0: '%s'", house_price_error(m));
    CHECK(house_price_predict(m, HOUSE_PRICE_MAX_BATCH + 1, xs, after) == -1, "batch max + 1 accepted");
    CHECK(contains(house_price_error(m), "batch 1001"), "batch 1001: '%s'", house_price_error(m));
    CHECK(house_price_train_step(m, 4, NULL, prices, &loss) == -1, "NULL input accepted");
    CHECK(contains(house_price_error(m), "input \"x\" is NULL"), "NULL input: '%s'", house_price_error(m));
    CHECK(house_price_predict(m, 4, xs, NULL) == -1, "NULL output accepted");
    CHECK(contains(house_price_error(m), "output \"price_hat\" is NULL"), "NULL output: '%s'", house_price_error(m));
    CHECK(house_price_steps(m) == 1, "failed steps counted: %lld", (long long)house_price_steps(m));

    CHECK(house_price_set_hyper(m, "lrr", 0.1) == -1, "unknown hyper-parameter accepted");
    CHECK(contains(house_price_error(m), "no hyper-parameter \"lrr\" (it has: lr)"), "lrr: '%s'", house_price_error(m));
    double lr = 0;
    CHECK(house_price_set_hyper(m, "lr", 0.1) == 0 && house_price_get_hyper(m, "lr", &lr) == 0 && lr == (float)0.1,
          "lr set to 0.1 reads back %.17g", lr);
    CHECK(house_price_set_hyper(m, "lr", NAN) == -1 && contains(house_price_error(m), "not a finite number"),
          "lr = nan: '%s'", house_price_error(m));

    const char *missing = path_in_work("no-such.ckpt");
    CHECK(house_price_load(m, missing) == -1, "missing checkpoint loaded");
    CHECK(contains(house_price_error(m), missing), "missing checkpoint: '%s'", house_price_error(m));
    CHECK(strchr(house_price_error(m), '\n') == NULL, "the message is not one line: '%s'", house_price_error(m));

    /* a damaged copy: the last byte (a tensor's) flipped */
    const char *good = path_in_work("errors.ckpt"), *bad = path_in_work("damaged.ckpt");
    CHECK(house_price_save(m, good) == 0, "save: %s", house_price_error(m));
    FILE *f = fopen(good, "rb");
    static unsigned char bytes[1 << 16];
    size_t n = f ? fread(bytes, 1, sizeof bytes, f) : 0;
    if (f)
        fclose(f);
    CHECK(n > 16, "cannot read back %s", good);
    bytes[n - 1] ^= 0x10;
    f = fopen(bad, "wb");
    CHECK(f && fwrite(bytes, 1, n, f) == n, "cannot write %s", bad);
    if (f)
        fclose(f);
    CHECK(house_price_load(m, bad) == -1, "damaged checkpoint loaded");
    CHECK(contains(house_price_error(m), "does not match its checksum"), "damaged: '%s'", house_price_error(m));
    CHECK(house_price_predict(m, 4, xs, after) == 0 && memcmp(before, after, sizeof before) == 0,
          "a failed call changed the parameters");
    house_price_free(m);
    house_price_free(NULL); /* like free(NULL) */
}

/* Two instances from the same seed predict the same bits; create() is
 * init(seed of the train block), 7 for house_price_robust. */
static void test_init(void) {
    house_price_robust *a = house_price_robust_create(), *b = house_price_robust_create();
    float pa[8], pb[8];
    CHECK(a && b, "create: %s", house_price_robust_error(NULL));
    if (!a || !b)
        goto done;
    CHECK(house_price_robust_predict(a, 8, xs, pa) == 0 && house_price_robust_init(b, 7) == 0 &&
              house_price_robust_predict(b, 8, xs, pb) == 0 && memcmp(pa, pb, sizeof pa) == 0,
          "create() differs from init(7)");
    CHECK(house_price_robust_init(b, 8) == 0 && house_price_robust_predict(b, 8, xs, pb) == 0 &&
              memcmp(pa, pb, sizeof pa) != 0,
          "init(8) gives the weights of seed 7");
done:
    house_price_robust_free(a);
    house_price_robust_free(b);
}

/* 20 Adam steps, save, load into a fresh instance, 10 more steps on each:
 * the same losses and predictions, bit for bit. */
static void test_resume(void) {
    house_price_robust *a = house_price_robust_create(), *b = house_price_robust_create();
    if (!a || !b) {
        CHECK(0, "create: %s", house_price_robust_error(NULL));
        goto done;
    }
    float first = 0, loss = 0, metrics[HOUSE_PRICE_ROBUST_N_METRICS];
    for (int s = 0; s < 20; s++) {
        CHECK(house_price_robust_train_step(a, 16, xs + 2 * (16 * s % ROWS), prices + 16 * s % ROWS, &loss) == 0,
              "train_step: %s", house_price_robust_error(a));
        if (s == 0)
            first = loss;
    }
    CHECK(loss < first, "the robust loss did not fall: %g -> %g", first, loss);
    const char *ckpt = path_in_work("robust.ckpt");
    CHECK(house_price_robust_save(a, ckpt) == 0, "save: %s", house_price_robust_error(a));
    CHECK(house_price_robust_load(b, ckpt) == 0, "load: %s", house_price_robust_error(b));
    CHECK(house_price_robust_steps(b) == 0, "load leaves the step count at %lld",
          (long long)house_price_robust_steps(b));
    for (int s = 20; s < 30; s++) {
        float la, lb;
        int at = 16 * s % ROWS;
        CHECK(house_price_robust_train_step(a, 16, xs + 2 * at, prices + at, &la) == 0 &&
                  house_price_robust_train_step(b, 16, xs + 2 * at, prices + at, &lb) == 0,
              "train_step: %s %s", house_price_robust_error(a), house_price_robust_error(b));
        CHECK(memcmp(&la, &lb, sizeof la) == 0, "step %d after reload: loss %.9g, uninterrupted %.9g", s, lb, la);
    }
    float pa[ROWS], pb[ROWS], la, lb;
    CHECK(house_price_robust_predict(a, ROWS, xs, pa) == 0 && house_price_robust_predict(b, ROWS, xs, pb) == 0 &&
              memcmp(pa, pb, sizeof pa) == 0,
          "predictions after resuming differ");
    CHECK(house_price_robust_evaluate(a, ROWS, xs, prices, &la, metrics) == 0 &&
              house_price_robust_evaluate(b, ROWS, xs, prices, &lb, NULL) == 0 && la == lb,
          "evaluate after resuming: %.9g vs %.9g", la, lb);
    /* the metric mse is the mean squared error of the predictions */
    double mse = 0;
    for (int i = 0; i < ROWS; i++)
        mse += ((double)pa[i] - prices[i]) * ((double)pa[i] - prices[i]) / ROWS;
    CHECK(fabs(mse - metrics[HOUSE_PRICE_ROBUST_METRIC_MSE]) <= 1e-5 * (1 + mse), "metric mse %.9g, from predict %.9g",
          metrics[HOUSE_PRICE_ROBUST_METRIC_MSE], mse);
done:
    house_price_robust_free(a);
    house_price_robust_free(b);
}

/* 50 steps of house_price on one instance; its final prediction. */
typedef struct job {
    house_price *m;
    float pred[ROWS];
    int rc;
} job;

static void *train_job(void *arg) {
    job *j = arg;
    j->rc = 0;
    for (int s = 0; s < 50 && j->rc == 0; s++)
        j->rc = house_price_train_step(j->m, 16, xs + 2 * (16 * s % ROWS), prices + 16 * s % ROWS, NULL);
    if (j->rc == 0)
        j->rc = house_price_predict(j->m, ROWS, xs, j->pred);
    return NULL;
}

static void test_threads(void) {
    job alone = {house_price_create(), {0}, 0}, jobs[2] = {{house_price_create(), {0}, 0}, {house_price_create(), {0}, 0}};
    CHECK(alone.m && jobs[0].m && jobs[1].m, "create: %s", house_price_error(NULL));
    if (alone.m && jobs[0].m && jobs[1].m) {
        train_job(&alone);
        pthread_t t[2];
        for (int i = 0; i < 2; i++)
            pthread_create(&t[i], NULL, train_job, &jobs[i]);
        for (int i = 0; i < 2; i++)
            pthread_join(t[i], NULL);
        for (int i = 0; i < 2; i++)
            CHECK(alone.rc == 0 && jobs[i].rc == 0 && memcmp(alone.pred, jobs[i].pred, sizeof alone.pred) == 0,
                  "an instance trained on thread %d differs from one trained alone", i);
    }
    CHECK(house_price_set_threads(2) == 2, "set_threads(2)");
    CHECK(house_price_set_threads(1) == 1, "set_threads(1)");
    house_price_free(alone.m);
    house_price_free(jobs[0].m);
    house_price_free(jobs[1].m);
}

/* i32 inputs and targets: the label is whether word 7 is among the ids. */
static void test_classifier(void) {
    enum { B = TINY_CLASSIFIER_MAX_BATCH };
    tiny_classifier *m = tiny_classifier_create();
    CHECK(m, "create: %s", tiny_classifier_error(NULL));
    if (!m)
        return;
    int32_t ids[B * TINY_CLASSIFIER_IDS_ELEMS], labels[B];
    for (int i = 0; i < B; i++) {
        for (int k = 0; k < 4; k++)
            ids[4 * i + k] = (i * 3 + k * 5) % 7; /* 0..6 */
        labels[i] = i % 2;
        if (labels[i])
            ids[4 * i + i % 4] = 7;
    }
    float first = 0, loss = 0, acc[TINY_CLASSIFIER_N_METRICS], probs[B * TINY_CLASSIFIER_PROBS_ELEMS];
    for (int s = 0; s < 40; s++) {
        CHECK(tiny_classifier_train_step(m, B, ids, labels, &loss) == 0, "train_step: %s", tiny_classifier_error(m));
        if (s == 0)
            first = loss;
    }
    CHECK(loss < 0.5f * first, "the classifier's loss fell from %g only to %g", first, loss);
    CHECK(tiny_classifier_evaluate(m, B, ids, labels, NULL, acc) == 0 && acc[TINY_CLASSIFIER_METRIC_ACC] == 1.0f,
          "accuracy %g after training", acc[0]);
    CHECK(tiny_classifier_predict(m, B, ids, probs) == 0, "predict: %s", tiny_classifier_error(m));
    for (int i = 0; i < B; i++)
        CHECK(fabsf(probs[2 * i] + probs[2 * i + 1] - 1) < 1e-6f && (probs[2 * i + 1] > 0.5f) == labels[i],
              "row %d: probabilities %g %g for label %d", i, probs[2 * i], probs[2 * i + 1], labels[i]);
    ids[5] = 10;
    CHECK(tiny_classifier_predict(m, B, ids, probs) == -1, "word id 10 accepted by an embedding of 10 rows");
    CHECK(contains(tiny_classifier_error(m), "input \"ids\": element 5 is 10, outside [0, 10)"), "id 10: '%s'",
          tiny_classifier_error(m));
    ids[5] = 1;
    labels[3] = 2;
    CHECK(tiny_classifier_train_step(m, B, ids, labels, NULL) == -1, "label 2 accepted by a 2-class model");
    CHECK(contains(tiny_classifier_error(m), "target \"label\": element 3 is 2, outside [0, 2)"), "label 2: '%s'",
          tiny_classifier_error(m));
    tiny_classifier_free(m);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s WORK_DIR\n", argv[0]);
        return 2;
    }
    snprintf(work, sizeof work, "%s", argv[1]);
    make_rows();
    test_errors();
    test_init();
    test_resume();
    test_threads();
    test_classifier();
    if (failures) {
        printf("%d check%s failed\n", failures, failures == 1 ? "" : "s");
        return 1;
    }
    printf("api_test: all checks passed\n");
    return 0;
}
