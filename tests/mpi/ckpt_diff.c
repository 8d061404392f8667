/*
 * ckpt_diff.c - compares the f32 tensors of two checkpoints of the same
 * model (safetensors: an 8-byte header size, a JSON header, the data),
 * tensor by tensor, for the data-parallel tests.
 *
 * usage: ckpt_diff A B [TOLERANCE]
 *
 * Prints each tensor's largest difference |a - b| relative to the
 * tensor's largest magnitude, max |b| (so an element near zero in a
 * tensor of large ones counts for what it moves the tensor, not for its
 * own ratio), and exits 1 when one exceeds TOLERANCE (default 0: bit for
 * bit), 2 when the files do not hold the same tensors.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *read_all(const char *path, long *size) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "ckpt_diff: cannot open %s\n", path);
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    *size = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *data = malloc((size_t)*size + 1);
    if (!data || fread(data, 1, (size_t)*size, f) != (size_t)*size) {
        fprintf(stderr, "ckpt_diff: cannot read %s\n", path);
        free(data);
        data = NULL;
    }
    fclose(f);
    return data;
}

static uint64_t header_size(const char *file) {
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--)
        n = n << 8 | (unsigned char)file[i];
    return n;
}

/* Walks the tensors of A's header: "NAME":{"dtype":"F32",...,"data_offsets":[FROM,TO]}. */
static int compare(const char *a, const char *b, long size, double tolerance) {
    uint64_t n = header_size(a);
    if (n != header_size(b) || 8 + n > (uint64_t)size) {
        fprintf(stderr, "ckpt_diff: the headers differ in size: not the same model\n");
        return 2;
    }
    char *header = strndup(a + 8, (size_t)n);
    const float *x = (const float *)(a + 8 + n), *y = (const float *)(b + 8 + n);
    int rc = 0, tensors = 0;
    for (char *at = strstr(header, "\"dtype\":\"F32\""); at; at = strstr(at + 1, "\"dtype\":\"F32\"")) {
        char *open = at, *offsets = strstr(at, "\"data_offsets\":[");
        while (open > header && *open != '{')
            open--;
        char *quote_end = open - 2, *quote_start = quote_end; /* "NAME":{ */
        while (quote_start > header && quote_start[-1] != '"')
            quote_start--;
        long from, to;
        if (!offsets || sscanf(offsets, "\"data_offsets\":[%ld,%ld]", &from, &to) != 2 || to > size) {
            fprintf(stderr, "ckpt_diff: cannot read the header\n");
            free(header);
            return 2;
        }
        double largest = 0, diff = 0;
        for (long i = from / 4; i < to / 4; i++) {
            largest = fmax(largest, fabs(y[i]));
            diff = fmax(diff, fabs((double)x[i] - (double)y[i]));
        }
        double relative = largest > 0 ? diff / largest : diff;
        printf("%-24.*s %8ld floats  max |a-b| %.3g  relative to max |b| %.3g%s\n", (int)(quote_end - quote_start),
               quote_start, (to - from) / 4, diff, relative, relative > tolerance ? "  <- over the tolerance" : "");
        rc |= relative > tolerance;
        tensors++;
    }
    free(header);
    return tensors ? rc : 2;
}

int main(int argc, char **argv) {
    if (argc < 3 || argc > 4) {
        fprintf(stderr, "usage: ckpt_diff A B [TOLERANCE]\n");
        return 2;
    }
    long size_a, size_b;
    char *a = read_all(argv[1], &size_a), *b = read_all(argv[2], &size_b);
    int rc = 2;
    if (a && b && size_a == size_b)
        rc = compare(a, b, size_a, argc == 4 ? atof(argv[3]) : 0);
    else if (a && b)
        fprintf(stderr, "ckpt_diff: %s and %s differ in size: not the same model\n", argv[1], argv[2]);
    free(a);
    free(b);
    return rc;
}
