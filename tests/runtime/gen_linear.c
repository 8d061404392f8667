/*
 * gen_linear.c - writes the test data set for fake_linear as CSV:
 * y = 2 x0 - 3.4 x1 + 4.2 + N(0, 0.01^2), x ~ N(0, 1).
 *
 * usage: gen_linear N SEED [--no-header]
 *
 * Its own small generator (splitmix64 + Box-Muller) keeps the data
 * independent of the runtime's RNG under test.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t state;

static double uniform(void) {
    uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return ((double)(z >> 11) + 0.5) * 0x1.0p-53; /* (0, 1) */
}

static double normal(void) { return sqrt(-2 * log(uniform())) * cos(2 * M_PI * uniform()); }

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: gen_linear N SEED [--no-header]\n");
        return 2;
    }
    long n = strtol(argv[1], NULL, 10);
    state = strtoull(argv[2], NULL, 10);
    if (argc < 4 || strcmp(argv[3], "--no-header") != 0)
        printf("x0,x1,y\n");
    for (long i = 0; i < n; i++) {
        double x0 = normal(), x1 = normal();
        double y = 2 * x0 - 3.4 * x1 + 4.2 + 0.01 * normal();
        printf("%.6f,%.6f,%.6f\n", x0, x1, y);
    }
    return 0;
}
