/*
 * make_ratings.c - writes a synthetic movie-rating data set for the
 * recommender examples, in MovieLens's u.data format, with the numbers a
 * model should be measured against.
 *
 * usage: make_ratings [-u USERS] [-i ITEMS] [-n RATINGS] [-k RANK] [-s SEED] [DIR]
 *
 * The defaults (1000 users, 1700 items, 100,000 ratings, rank 8, seed 1)
 * are about the size of MovieLens 100k.  Each rating is
 *
 *     r = clip(round(mu + b_u + b_i + p_u . q_i + noise), 1, 5)
 *
 * with hidden factors p_u, q_i of RANK elements, user and item biases, a
 * global mean mu = 3.6 and noise of sd 0.5.  Users and items are drawn
 * with a skewed popularity (index floor(n x^1.5) for uniform x, so the
 * most popular item is rated some 700 times and the least some 40),
 * through a fixed random permutation of the ids; a (user, item) pair is
 * rated at most once.  A tenth of the ratings, in random order, go to the
 * test set, but never a user's or an item's last one, so that every test
 * user and item is in the training set.
 *
 * DIR (default .) gets ratings.train.data and ratings.test.data (tab
 * separated `user item rating timestamp`, ids from 1, as u.data), and
 * ratings.stats.txt, also printed, with three test RMSEs: the noise floor
 * (the true noiseless score, which no model beats on average), the global
 * mean of the training ratings, and a bias-only baseline mu + b_u + b_i
 * fitted on the training set (regularised alternating least squares, a
 * few sweeps).
 *
 * The same bytes on every machine: an integer PRNG (splitmix64), normals
 * as the sum of 12 uniforms less 6 (Irwin-Hall: mean 0, variance 1, no
 * libm function whose last bit may differ between libraries), only +, -,
 * *, / and sqrt, which IEEE 754 rounds exactly, compiled without FMA
 * contraction (-ffp-contract=off, see examples/CMakeLists.txt), and
 * integers in the data files.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MU 3.6
#define USER_BIAS_SD 0.3
#define ITEM_BIAS_SD 0.5
#define FACTOR_SD 0.53 /* p_u . q_i then has an sd of sqrt(8) 0.53^2 = 0.8 */
#define NOISE_SD 0.5
#define BIAS_LAMBDA 10.0 /* the baseline's regularisation, per bias */

static uint64_t state;

static uint64_t next_u64(void) {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* uniform in [0, 1) */
static double uniform(void) { return (double)(next_u64() >> 11) / 9007199254740992.0; }

/* about N(0, 1): Irwin-Hall of 12 */
static double normal(void) {
    double s = 0;
    for (int i = 0; i < 12; i++)
        s += uniform();
    return s - 6.0;
}

static long below(long n) { return (long)(next_u64() % (uint64_t)n); }

/* index in [0, n), skewed to the low end: floor(n x^1.5) */
static long skewed(long n) {
    double x = uniform();
    return (long)((double)n * x * sqrt(x));
}

static void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size);
    if (!p) {
        fprintf(stderr, "make_ratings: out of memory\n");
        exit(1);
    }
    return p;
}

/* A random permutation of 0..n-1 (Fisher-Yates). */
static long *permutation(long n) {
    long *p = xcalloc((size_t)n, sizeof *p);
    for (long i = 0; i < n; i++)
        p[i] = i;
    for (long i = n - 1; i > 0; i--) {
        long j = below(i + 1), t = p[i];
        p[i] = p[j];
        p[j] = t;
    }
    return p;
}

typedef struct rating {
    long user, item;
    int value, test;
    double truth; /* the noiseless score */
} rating;

typedef struct set {
    long users, items, n, rank, tests;
    double *p, *q, *bu, *bi; /* the hidden model */
    rating *r;
} set;

static void hidden_model(set *s) {
    s->p = xcalloc((size_t)(s->users * s->rank), sizeof *s->p);
    s->q = xcalloc((size_t)(s->items * s->rank), sizeof *s->q);
    s->bu = xcalloc((size_t)s->users, sizeof *s->bu);
    s->bi = xcalloc((size_t)s->items, sizeof *s->bi);
    for (long i = 0; i < s->users * s->rank; i++)
        s->p[i] = FACTOR_SD * normal();
    for (long i = 0; i < s->items * s->rank; i++)
        s->q[i] = FACTOR_SD * normal();
    for (long i = 0; i < s->users; i++)
        s->bu[i] = USER_BIAS_SD * normal();
    for (long i = 0; i < s->items; i++)
        s->bi[i] = ITEM_BIAS_SD * normal();
}

static double score(const set *s, long u, long i) {
    double dot = 0;
    for (long k = 0; k < s->rank; k++)
        dot += s->p[u * s->rank + k] * s->q[i * s->rank + k];
    return MU + s->bu[u] + s->bi[i] + dot;
}

/* Draws the n distinct (user, item) pairs and their ratings. */
static void draw_ratings(set *s) {
    long *user_id = permutation(s->users), *item_id = permutation(s->items);
    unsigned char *taken = xcalloc((size_t)(s->users * s->items), 1);
    s->r = xcalloc((size_t)s->n, sizeof *s->r);
    for (long k = 0; k < s->n;) {
        long u = user_id[skewed(s->users)], i = item_id[skewed(s->items)];
        if (taken[u * s->items + i])
            continue;
        taken[u * s->items + i] = 1;
        double truth = score(s, u, i), r = round(truth + NOISE_SD * normal());
        s->r[k++] = (rating){u, i, (int)(r < 1 ? 1 : r > 5 ? 5 : r), 0, truth};
    }
    free(taken);
    free(user_id);
    free(item_id);
}

/* A tenth to the test set, never a user's or item's last rating. */
static void split(set *s) {
    long *left_u = xcalloc((size_t)s->users, sizeof *left_u), *left_i = xcalloc((size_t)s->items, sizeof *left_i);
    for (long k = 0; k < s->n; k++) {
        left_u[s->r[k].user]++;
        left_i[s->r[k].item]++;
    }
    long *order = permutation(s->n);
    for (long j = 0; j < s->n && s->tests < s->n / 10; j++) {
        rating *r = &s->r[order[j]];
        if (left_u[r->user] > 1 && left_i[r->item] > 1) {
            r->test = 1;
            left_u[r->user]--;
            left_i[r->item]--;
            s->tests++;
        }
    }
    free(order);
    free(left_u);
    free(left_i);
}

static int write_data(const set *s, const char *dir, const char *name, int test) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        return -1;
    }
    for (long k = 0; k < s->n; k++)
        if (s->r[k].test == test)
            fprintf(f, "%ld\t%ld\t%d\t%ld\n", s->r[k].user + 1, s->r[k].item + 1, s->r[k].value, 874724710 + 37 * k);
    if (fclose(f)) {
        perror(path);
        return -1;
    }
    return 0;
}

/* The bias-only baseline on the training set: mu, then user and item
 * biases by alternating regularised least squares. */
static double *fit_biases(const set *s, double *mu) {
    double *b = xcalloc((size_t)(s->users + s->items), sizeof *b), *sum = xcalloc((size_t)(s->users + s->items), 8);
    long *count = xcalloc((size_t)(s->users + s->items), sizeof *count), train = 0;
    *mu = 0;
    for (long k = 0; k < s->n; k++)
        if (!s->r[k].test) {
            *mu += s->r[k].value;
            train++;
            count[s->r[k].user]++;
            count[s->users + s->r[k].item]++;
        }
    *mu /= (double)train;
    for (int sweep = 0; sweep < 10; sweep++)
        for (int side = 0; side < 2; side++) { /* users, then items */
            memset(sum, 0, (size_t)(s->users + s->items) * sizeof *sum);
            for (long k = 0; k < s->n; k++) {
                const rating *r = &s->r[k];
                long u = r->user, i = s->users + r->item;
                if (!r->test)
                    sum[side ? i : u] += r->value - *mu - b[side ? u : i];
            }
            long from = side ? s->users : 0, to = side ? s->users + s->items : s->users;
            for (long j = from; j < to; j++)
                b[j] = sum[j] / (BIAS_LAMBDA + (double)count[j]);
        }
    free(sum);
    free(count);
    return b;
}

typedef struct rmse {
    double floor, mean, bias;
} rmse;

static rmse test_rmse(const set *s) {
    double mu, *b = fit_biases(s, &mu), e[3] = {0, 0, 0};
    long tests = 0;
    for (long k = 0; k < s->n; k++) {
        const rating *r = &s->r[k];
        if (!r->test)
            continue;
        double d[3] = {r->truth - r->value, mu - r->value, mu + b[r->user] + b[s->users + r->item] - r->value};
        for (int j = 0; j < 3; j++)
            e[j] += d[j] * d[j];
        tests++;
    }
    free(b);
    return (rmse){sqrt(e[0] / (double)tests), sqrt(e[1] / (double)tests), sqrt(e[2] / (double)tests)};
}

static void write_stats(FILE *f, const set *s, uint64_t seed, rmse e) {
    fprintf(f, "# make_ratings -u %ld -i %ld -n %ld -k %ld -s %" PRIu64 ": %ld training and %ld test ratings\n",
            s->users, s->items, s->n, s->rank, seed, s->n - s->tests, s->tests);
    fprintf(f, "test_rmse_noise_floor %.4f\n", e.floor);
    fprintf(f, "test_rmse_global_mean %.4f\n", e.mean);
    fprintf(f, "test_rmse_bias_baseline %.4f\n", e.bias);
}

static int usage(void) {
    fprintf(stderr, "usage: make_ratings [-u USERS] [-i ITEMS] [-n RATINGS] [-k RANK] [-s SEED] [DIR]\n");
    return 2;
}

/* Writes the two data files and the statistics; 0 on success. */
static int write_outputs(const set *s, const char *dir, uint64_t seed) {
    if (write_data(s, dir, "ratings.train.data", 0) || write_data(s, dir, "ratings.test.data", 1))
        return 1;
    rmse e = test_rmse(s);
    char path[4096];
    snprintf(path, sizeof path, "%s/ratings.stats.txt", dir);
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        return 1;
    }
    write_stats(f, s, seed, e);
    write_stats(stdout, s, seed, e);
    return fclose(f) ? 1 : 0;
}

int main(int argc, char **argv) {
    set s = {1000, 1700, 100000, 8, 0, NULL, NULL, NULL, NULL, NULL};
    uint64_t seed = 1;
    const char *dir = ".";
    for (int a = 1; a < argc; a++) {
        char *end = NULL;
        if (argv[a][0] != '-') {
            dir = argv[a];
            continue;
        }
        if (a + 1 >= argc || strlen(argv[a]) != 2)
            return usage();
        long v = strtol(argv[++a], &end, 10);
        if (*end || v <= 0)
            return usage();
        switch (argv[a - 1][1]) {
        case 'u': s.users = v; break;
        case 'i': s.items = v; break;
        case 'n': s.n = v; break;
        case 'k': s.rank = v; break;
        case 's': seed = (uint64_t)v; break;
        default: return usage();
        }
    }
    if (s.n > s.users * s.items / 4) {
        fprintf(stderr,
                "make_ratings: %ld ratings are too many for %ld users and %ld items (at most a quarter of "
                "the pairs)\n",
                s.n, s.users, s.items);
        return 2;
    }
    state = seed;
    hidden_model(&s);
    draw_ratings(&s);
    split(&s);
    int rc = write_outputs(&s, dir, seed);
    free(s.p);
    free(s.q);
    free(s.bu);
    free(s.bi);
    free(s.r);
    return rc;
}
