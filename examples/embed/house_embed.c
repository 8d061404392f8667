/*
 * house_embed.c - examples/house_price.mdl inside a C program.
 *
 * Build (from the repository root, after building mdlc into build/):
 *   build/mdlc -c examples/house_price.mdl -o house_price
 *   cc -I. examples/embed/house_embed.c house_price.o -lm -lpthread -o house_embed
 *   ./house_embed examples/data/house.csv house.ckpt
 *
 * It reads the CSV (size,age,price), trains the model for a few epochs in
 * batches of 100 rows in file order, printing the loss, saves a
 * checkpoint, loads it into a second instance, predicts the first rows
 * with both and checks the predictions are the same bits.  The checkpoint
 * is the executable's format: `./house_price eval --load house.ckpt
 * --data examples/data/house.csv` reads it.
 *
 * usage: house_embed DATA.csv CHECKPOINT [EPOCHS [BATCH]]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "house_price.h"

#define MAX_ROWS 100000

typedef struct rows {
    int n;
    float *x;     /* n x HOUSE_PRICE_X_ELEMS: size, age */
    float *price; /* n */
} rows;

/* The rows of a size,age,price CSV with a header line; 0 or -1. */
static int read_rows(const char *path, rows *r) {
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        return -1;
    }
    char line[256];
    r->n = 0;
    r->x = malloc(MAX_ROWS * HOUSE_PRICE_X_ELEMS * sizeof *r->x);
    r->price = malloc(MAX_ROWS * sizeof *r->price);
    int rc = r->x && r->price && fgets(line, sizeof line, f) ? 0 : -1; /* the header */
    for (int at = 2; rc == 0 && r->n < MAX_ROWS && fgets(line, sizeof line, f); at++) {
        /* strtod then float, as the executable's CSV reader does */
        char *p = line, *end;
        double v[3];
        for (int k = 0; k < 3 && rc == 0; k++, p = end + 1) {
            v[k] = strtod(p, &end);
            if (end == p || (k < 2 && *end != ',')) {
                fprintf(stderr, "%s:%d: expected three numbers size,age,price\n", path, at);
                rc = -1;
            }
        }
        r->x[2 * r->n] = (float)v[0];
        r->x[2 * r->n + 1] = (float)v[1];
        r->price[r->n++] = (float)v[2];
    }
    fclose(f);
    return rc;
}

/* Prints the model's failure and gives 1, for `return fail(...)` in main. */
static int fail(house_price *model, const char *what) {
    fprintf(stderr, "house_embed: %s: %s\n", what, house_price_error(model));
    return 1;
}

/* Epochs over the rows in order, in batches of `batch`; the first and
 * last step's loss in *first and *last. */
static int train(house_price *model, const rows *r, int epochs, int batch, float *first, float *last) {
    for (int epoch = 1; epoch <= epochs; epoch++) {
        for (int at = 0; at < r->n; at += batch) {
            int b = r->n - at < batch ? r->n - at : batch;
            float loss;
            if (house_price_train_step(model, b, r->x + 2 * at, r->price + at, &loss))
                return -1;
            if (house_price_steps(model) == 1)
                *first = loss;
            *last = loss;
        }
        printf("epoch %d: last batch loss %.9g\n", epoch, *last);
    }
    return 0;
}

static int run(const rows *r, const char *ckpt, int epochs, int batch, house_price *a, house_price *b) {
    float first = 0, last = 0, loss, metrics[HOUSE_PRICE_N_METRICS];
    if (house_price_set_hyper(a, "lr", 0.05))
        return fail(a, "set_hyper");
    if (train(a, r, epochs, batch, &first, &last))
        return fail(a, "train_step");
    printf("steps %lld, loss %.9g -> %.9g\n", (long long)house_price_steps(a), first, last);
    int n = r->n < HOUSE_PRICE_MAX_BATCH ? r->n : HOUSE_PRICE_MAX_BATCH;
    if (house_price_evaluate(a, n, r->x, r->price, &loss, metrics))
        return fail(a, "evaluate");
    printf("evaluate on %d rows: loss %.9g, mae %.9g\n", n, loss, metrics[HOUSE_PRICE_METRIC_MAE]);
    if (house_price_save(a, ckpt))
        return fail(a, "save");
    printf("saved %s\n", ckpt);

    if (house_price_load(b, ckpt))
        return fail(b, "load");
    enum { SHOWN = 5 };
    float from_a[SHOWN], from_b[SHOWN];
    if (house_price_predict(a, SHOWN, r->x, from_a))
        return fail(a, "predict");
    if (house_price_predict(b, SHOWN, r->x, from_b))
        return fail(b, "predict");
    for (int i = 0; i < SHOWN; i++)
        printf("row %d: size %9.6f age %9.6f price %9.6f predicted %.9g, reloaded %.9g\n", i + 1, r->x[2 * i],
               r->x[2 * i + 1], r->price[i], from_a[i], from_b[i]);
    if (memcmp(from_a, from_b, sizeof from_a) != 0) {
        fprintf(stderr, "house_embed: the reloaded model predicts other bits\n");
        return 1;
    }
    printf("reloaded predictions: bit-identical\n");
    if (!(last < first)) {
        fprintf(stderr, "house_embed: the loss did not fall\n");
        return 1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 3 || argc > 5) {
        fprintf(stderr, "usage: %s DATA.csv CHECKPOINT [EPOCHS [BATCH]]\n", argv[0]);
        return 2;
    }
    int epochs = argc > 3 ? atoi(argv[3]) : 3, batch = argc > 4 ? atoi(argv[4]) : 100;
    if (epochs < 1 || batch < 1 || batch > HOUSE_PRICE_MAX_BATCH) {
        fprintf(stderr, "%s: EPOCHS >= 1 and 1 <= BATCH <= %d\n", argv[0], HOUSE_PRICE_MAX_BATCH);
        return 2;
    }
    rows r;
    if (read_rows(argv[1], &r)) {
        free(r.x);
        free(r.price);
        return 1;
    }
    house_price *a = house_price_create(), *b = house_price_create();
    int rc = a && b ? run(&r, argv[2], epochs, batch, a, b) : fail(NULL, "create");
    house_price_free(a);
    house_price_free(b);
    free(r.x);
    free(r.price);
    return rc;
}
