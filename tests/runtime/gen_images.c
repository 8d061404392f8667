/*
 * gen_images.c - writes test data for fake_classifier: N tiny 2x2 "images"
 * of u8 pixels whose class (0..3) is the index of the pixel that is
 * usually the brightest (120..255 there, 0..149 elsewhere, so a few
 * samples are ambiguous), in every format the runtime reads.
 *
 * usage: gen_images N SEED PREFIX
 *
 * writes PREFIX-images.idx    IDX u8 [N, 2, 2]
 *        PREFIX-labels.idx    IDX u8 [N]
 *        PREFIX-images.npy    NPY |u1 (N, 2, 2), version 1.0
 *        PREFIX-images-f4.npy NPY <f4 (N, 4), version 2.0
 *        PREFIX-labels.npy    NPY <i8 (N,), version 1.0
 *        PREFIX-labels-i4.npy NPY <i4 (N,), version 1.0
 *        PREFIX.csv           image[0][0],image[0][1],image[1][0],image[1][1],label
 *
 * Its own small generator (splitmix64) keeps the data independent of the
 * runtime's RNG.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t state;

static uint64_t next(void) {
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static FILE *create(const char *prefix, const char *suffix) {
    char path[1024];
    snprintf(path, sizeof path, "%s%s", prefix, suffix);
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(1);
    }
    return f;
}

static void be32(FILE *f, uint32_t v) {
    unsigned char b[4] = {(unsigned char)(v >> 24), (unsigned char)(v >> 16), (unsigned char)(v >> 8),
                          (unsigned char)v};
    fwrite(b, 1, 4, f);
}

static void le(FILE *f, uint64_t v, int size) {
    for (int i = 0; i < size; i++)
        fputc((int)(v >> (8 * i)) & 0xff, f);
}

/* The NPY preamble and header, padded with spaces and a newline so the
 * data starts at a multiple of 64 bytes, as numpy writes it. */
static void npy_header(FILE *f, int major, const char *descr, const char *shape) {
    char dict[256];
    snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, shape);
    size_t pre = major == 1 ? 10 : 12, len = strlen(dict) + 1;
    while ((pre + len) % 64)
        len++;
    fwrite("\x93NUMPY", 1, 6, f);
    fputc(major, f);
    fputc(0, f);
    le(f, len, major == 1 ? 2 : 4);
    fputs(dict, f);
    for (size_t i = strlen(dict) + 1; i < len; i++)
        fputc(' ', f);
    fputc('\n', f);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: gen_images N SEED PREFIX\n");
        return 2;
    }
    long n = strtol(argv[1], NULL, 10);
    state = strtoull(argv[2], NULL, 10);
    const char *prefix = argv[3];
    unsigned char *pixels = malloc((size_t)n * 4 + 1), *labels = malloc((size_t)n + 1);
    for (long i = 0; i < n; i++) {
        int c = (int)(next() % 4);
        labels[i] = (unsigned char)c;
        for (int k = 0; k < 4; k++)
            pixels[4 * i + k] = (unsigned char)(k == c ? 120 + next() % 136 : next() % 150);
    }
    char shape[64];

    FILE *f = create(prefix, "-images.idx");
    fwrite("\0\0\x08\x03", 1, 4, f);
    be32(f, (uint32_t)n), be32(f, 2), be32(f, 2);
    fwrite(pixels, 1, (size_t)n * 4, f);
    fclose(f);
    f = create(prefix, "-labels.idx");
    fwrite("\0\0\x08\x01", 1, 4, f);
    be32(f, (uint32_t)n);
    fwrite(labels, 1, (size_t)n, f);
    fclose(f);

    f = create(prefix, "-images.npy");
    snprintf(shape, sizeof shape, "(%ld, 2, 2)", n);
    npy_header(f, 1, "|u1", shape);
    fwrite(pixels, 1, (size_t)n * 4, f);
    fclose(f);
    f = create(prefix, "-images-f4.npy");
    snprintf(shape, sizeof shape, "(%ld, 4)", n);
    npy_header(f, 2, "<f4", shape);
    for (long i = 0; i < 4 * n; i++) {
        float v = pixels[i];
        uint32_t bits;
        memcpy(&bits, &v, 4);
        le(f, bits, 4);
    }
    fclose(f);
    f = create(prefix, "-labels.npy");
    snprintf(shape, sizeof shape, "(%ld,)", n);
    npy_header(f, 1, "<i8", shape);
    for (long i = 0; i < n; i++)
        le(f, labels[i], 8);
    fclose(f);
    f = create(prefix, "-labels-i4.npy");
    npy_header(f, 1, "<i4", shape);
    for (long i = 0; i < n; i++)
        le(f, labels[i], 4);
    fclose(f);

    f = create(prefix, ".csv");
    fprintf(f, "p0,p1,p2,p3,label\n");
    for (long i = 0; i < n; i++)
        fprintf(f, "%d,%d,%d,%d,%d\n", pixels[4 * i], pixels[4 * i + 1], pixels[4 * i + 2], pixels[4 * i + 3],
                labels[i]);
    fclose(f);
    free(pixels);
    free(labels);
    return 0;
}
