/*
 * rt_ratings.c - a file of (user, item, rating) triples as the data of a
 * recommender.
 *
 * A model with exactly two inputs, both i32 [B] (a user and an item, in
 * that order), and one f32 [B] target (the rating) takes a single file
 * named *.data or *.tsv (tab separated, MovieLens's u.data: `user item
 * rating [timestamp]`) or *.csv (comma separated, MovieLens's
 * ratings.csv: `userId,movieId,rating,timestamp`), gzipped or not.  A
 * first line whose fields are not numbers is a header and is skipped;
 * every other line has the same number of fields (at least 3), integer ids
 * and a finite rating, or it is an error naming FILE:LINE.  Further
 * columns (the timestamp) are ignored.
 *
 * Raw ids can be anything up to 2^63 and sparse (MovieLens 25M's movie ids
 * run to 209171); an embedding table wants 0..n-1.  So the first training
 * file read defines the ids: each raw user and item id gets the next dense
 * index in order of first appearance, and the data set holds the dense
 * indices, an ordinary data set that train, eval, --val, --val-split,
 * --log and shuffling use unchanged.  Every other file (--val, `eval`'s
 * data, a fine-tuning run's data) is read through those ids.  An id that
 * is not among them is an error naming FILE:LINE in a file trained on (a
 * table row the model never learnt cannot be trained from a checkpoint
 * either: its size is fixed), and is skipped, with a note counting the
 * skipped ratings, in a file evaluated on (cold-start users and items are
 * common in a held-out set and have no score to give).
 *
 * The ids, and for `recommend` the items each user rated in training, go
 * into the checkpoint's metadata (rt_ckpt.c asks us) as three strings:
 * "mdl.users" and "mdl.items", the raw ids in index order separated by
 * spaces, and "mdl.rated", each user's rated item indices in increasing
 * order written as gaps (the first index, then the differences),
 * space separated, users separated by commas.  They are the process's
 * one set of ids, like its one arena: set by the first training file or
 * checkpoint that holds them and never replaced, so that loading a
 * checkpoint to fine-tune keeps the ratings the run added.
 *
 * The model's tables must have at least as many rows as there are ids.
 * Where the compiler knows the table an input indexes (rt_tensor's
 * index_range) we check; training prints the counts either way.
 */
#include "rt_internal.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Raw ids to dense indices: open addressing on a power-of-two table. */
typedef struct id_map {
    int64_t *raw; /* raw[index] */
    int32_t n, cap;
    int32_t *slots; /* index + 1; 0: empty */
    int64_t n_slots;
} id_map;

static struct {
    int set;
    id_map users, items;
    /* (user, item) index pairs rated in training, in reading order */
    int32_t *rated_user, *rated_item;
    int64_t n_rated, cap_rated;
} ids;

static uint64_t hash_id(int64_t raw) {
    uint64_t z = (uint64_t)raw * 0x9E3779B97F4A7C15ull;
    return z ^ (z >> 29);
}

static int64_t *find_slot(const id_map *map, int64_t raw, int32_t **slot) {
    for (uint64_t h = hash_id(raw);; h++) {
        *slot = &map->slots[h & (uint64_t)(map->n_slots - 1)];
        if (**slot == 0 || map->raw[**slot - 1] == raw)
            return **slot ? &map->raw[**slot - 1] : NULL;
    }
}

/* The index of raw, or -1. */
static int32_t map_find(const id_map *map, int64_t raw) {
    int32_t *slot;
    if (map->n_slots == 0)
        return -1;
    return find_slot(map, raw, &slot) ? *slot - 1 : -1;
}

static void map_rehash(id_map *map) {
    map->n_slots = map->n_slots ? map->n_slots * 2 : 1024;
    free(map->slots);
    map->slots = rt_xcalloc((size_t)map->n_slots, sizeof *map->slots);
    for (int32_t i = 0; i < map->n; i++) {
        int32_t *slot;
        find_slot(map, map->raw[i], &slot);
        *slot = i + 1;
    }
}

/* The index of raw, given the next one if it is new. */
static int32_t map_add(id_map *map, int64_t raw) {
    int32_t found = map_find(map, raw);
    if (found >= 0)
        return found;
    if (map->n == map->cap) {
        map->cap = map->cap ? map->cap * 2 : 256;
        map->raw = rt_xrealloc(map->raw, (size_t)map->cap * sizeof *map->raw);
    }
    map->raw[map->n++] = raw;
    if ((int64_t)map->n * 2 > map->n_slots)
        map_rehash(map);
    else {
        int32_t *slot;
        find_slot(map, raw, &slot);
        *slot = map->n;
    }
    return map->n - 1;
}

static void add_rated(int32_t user, int32_t item) {
    if (ids.n_rated == ids.cap_rated) {
        ids.cap_rated = ids.cap_rated ? ids.cap_rated * 2 : 4096;
        ids.rated_user = rt_xrealloc(ids.rated_user, (size_t)ids.cap_rated * sizeof *ids.rated_user);
        ids.rated_item = rt_xrealloc(ids.rated_item, (size_t)ids.cap_rated * sizeof *ids.rated_item);
    }
    ids.rated_user[ids.n_rated] = user;
    ids.rated_item[ids.n_rated++] = item;
}

/*
 * Which models and files
 */

static int is_vector(const rt_tensor *t, int dtype) { return t->dtype == dtype && t->rank == 1 && t->batch_mask == 1; }

int rt_ratings_model(const rt_model *m) {
    return m->n_inputs == 2 && m->n_targets == 1 && is_vector(&m->inputs[0], RT_I32) &&
           is_vector(&m->inputs[1], RT_I32) && is_vector(&m->targets[0], RT_F32);
}

static int has_suffix(const char *s, size_t n, const char *suffix) {
    size_t k = strlen(suffix);
    return n >= k && strncasecmp(s + n - k, suffix, k) == 0;
}

/* ',' for *.csv, '\t' for *.data and *.tsv (either with .gz), 0 else. */
static char separator(const char *path) {
    size_t n = strlen(path);
    if (has_suffix(path, n, ".gz"))
        n -= 3;
    if (has_suffix(path, n, ".csv"))
        return ',';
    return has_suffix(path, n, ".data") || has_suffix(path, n, ".tsv") ? '\t' : 0;
}

int rt_ratings_applies(const rt_model *m, const char *files) {
    return files && !strchr(files, ',') && separator(files) && rt_ratings_model(m);
}

/*
 * Reading a file
 */

typedef struct reader {
    const char *path;
    char sep;
    int64_t line;
    int fields;   /* of the first data line */
    int use;      /* RT_RATINGS_TRAIN or RT_RATINGS_EVAL */
    int defining; /* this file defines the ids */
    int64_t skipped, first_skipped;
    int32_t *user, *item;
    float *rating;
    int64_t n, cap;
} reader;

/* Splits line [s, e) at r->sep into at most `max` fields; their count. */
static int split_fields(const reader *r, const char *s, const char *e, const char **begin, const char **end, int max) {
    int n = 0;
    for (;;) {
        const char *f = memchr(s, r->sep, (size_t)(e - s));
        if (n < max) {
            begin[n] = s;
            end[n] = f ? f : e;
        }
        n++;
        if (!f)
            return n;
        s = f + 1;
    }
}

/* Field [s, e) as a C string in buf[64]; -1 if empty, too long or
 * starting with a space (which strtoll and strtod would skip). */
static int field_string(const char *s, const char *e, char buf[64]) {
    if (e - s <= 0 || e - s >= 64 || isspace((unsigned char)*s))
        return -1;
    memcpy(buf, s, (size_t)(e - s));
    buf[e - s] = '\0';
    return 0;
}

static int parse_id(const char *s, const char *e, int64_t *v) {
    char buf[64], *end;
    if (field_string(s, e, buf))
        return -1;
    errno = 0;
    *v = strtoll(buf, &end, 10);
    return *end || errno ? -1 : 0;
}

static int parse_rating(const char *s, const char *e, double *v) {
    char buf[64], *end;
    if (field_string(s, e, buf))
        return -1;
    *v = strtod(buf, &end);
    return *end ? -1 : 0;
}

static void add_triple(reader *r, int32_t user, int32_t item, double rating) {
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 4096;
        r->user = rt_xrealloc(r->user, (size_t)r->cap * sizeof *r->user);
        r->item = rt_xrealloc(r->item, (size_t)r->cap * sizeof *r->item);
        r->rating = rt_xrealloc(r->rating, (size_t)r->cap * sizeof *r->rating);
    }
    r->user[r->n] = user;
    r->item[r->n] = item;
    r->rating[r->n++] = (float)rating;
}

/* The dense index of a raw id: a new one in the defining file, else an
 * error (training) or -1 (evaluation: the rating is skipped). */
static int32_t dense_id(reader *r, id_map *map, int64_t raw, const char *what, int32_t *index) {
    *index = r->defining ? map_add(map, raw) : map_find(map, raw);
    if (*index >= 0 || r->use == RT_RATINGS_EVAL)
        return 0;
    return rt_error("%s:%lld: %s id %lld is not among the %d %ss of the checkpoint (a model cannot learn a new %s "
                    "by fine-tuning: its table has a row per id seen in the first training run)",
                    r->path, (long long)r->line, what, (long long)raw, map->n, what, what);
}

static int data_line(reader *r, const char **b, const char **e) {
    int64_t user, item;
    double rating;
    if (parse_id(b[0], e[0], &user))
        return rt_error("%s:%lld: user id \"%.*s\" is not an integer", r->path, (long long)r->line,
                        (int)(e[0] - b[0] < 40 ? e[0] - b[0] : 40), b[0]);
    if (parse_id(b[1], e[1], &item))
        return rt_error("%s:%lld: item id \"%.*s\" is not an integer", r->path, (long long)r->line,
                        (int)(e[1] - b[1] < 40 ? e[1] - b[1] : 40), b[1]);
    if (parse_rating(b[2], e[2], &rating) || !isfinite(rating))
        return rt_error("%s:%lld: rating \"%.*s\" is not a finite number", r->path, (long long)r->line,
                        (int)(e[2] - b[2] < 40 ? e[2] - b[2] : 40), b[2]);
    int32_t u, i;
    if (dense_id(r, &ids.users, user, "user", &u) || dense_id(r, &ids.items, item, "item", &i))
        return -1;
    if (u < 0 || i < 0) {
        if (r->skipped++ == 0)
            r->first_skipped = r->line;
        return 0;
    }
    add_triple(r, u, i, rating);
    if (r->use == RT_RATINGS_TRAIN)
        add_rated(u, i);
    return 0;
}

/* Line [s, e), without its newline. */
static int read_line(reader *r, const char *s, const char *e) {
    if (e > s && e[-1] == '\r')
        e--;
    if (e == s)
        return 0; /* blank lines, as at the end of a file */
    const char *b[3], *f[3];
    int n = split_fields(r, s, e, b, f, 3);
    int64_t x;
    double y;
    if (r->line == 1 && n >= 3 &&
        (parse_id(b[0], f[0], &x) || parse_id(b[1], f[1], &x) || parse_rating(b[2], f[2], &y)))
        return 0; /* a header */
    if (r->fields == 0 && n < 3)
        return rt_error("%s:%lld: %d field%s, but a ratings file has at least 3 (user, item, rating), separated by %s",
                        r->path, (long long)r->line, n, n == 1 ? "" : "s", r->sep == ',' ? "commas" : "tabs");
    if (r->fields == 0)
        r->fields = n;
    if (n != r->fields)
        return rt_error("%s:%lld: %d fields, but the first line of ratings has %d", r->path, (long long)r->line, n,
                        r->fields);
    return data_line(r, b, f);
}

static int read_text(reader *r, const char *text, size_t len) {
    const char *s = text, *end = text + len;
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        const char *e = nl ? nl : end;
        r->line++;
        if (read_line(r, s, e))
            return -1;
        s = e + 1;
    }
    if (r->n == 0)
        return rt_error("%s has no ratings%s", r->path, r->skipped ? " of known users and items" : "");
    if (r->skipped)
        rt_note("%s: %lld rating%s skipped: user or item not seen in training (the first at line %lld)", r->path,
                (long long)r->skipped, r->skipped == 1 ? "" : "s", (long long)r->first_skipped);
    return 0;
}

/* The tables' sizes, where the compiler told us what each input indexes. */
static int check_tables(const rt_model *m, const char *path) {
    const id_map *maps[2] = {&ids.users, &ids.items};
    for (int k = 0; k < 2; k++) {
        int64_t rows = m->inputs[k].index_range;
        if (rows > 0 && maps[k]->n > rows)
            return rt_error("%s has %d distinct %ss, but model %s's table for input \"%s\" has %lld rows: make it at "
                            "least %d",
                            path, maps[k]->n, k ? "item" : "user", m->name, m->inputs[k].name, (long long)rows,
                            maps[k]->n);
    }
    return 0;
}

static rt_dataset *to_dataset(const rt_model *m, reader *r) {
    const rt_tensor *tensors[3] = {&m->inputs[0], &m->inputs[1], &m->targets[0]};
    rt_dataset *d = rt_data_alloc(tensors, 3, r->n);
    memcpy(d->data[0], r->user, (size_t)r->n * sizeof *r->user);
    memcpy(d->data[1], r->item, (size_t)r->n * sizeof *r->item);
    memcpy(d->data[2], r->rating, (size_t)r->n * sizeof *r->rating);
    d->path = rt_xstrdup(r->path);
    return d;
}

rt_dataset *rt_ratings_load(const rt_model *m, const char *path, int use) {
    if (!ids.set && use == RT_RATINGS_EVAL) {
        rt_error("%s: the checkpoint has no user and item ids: it was not trained on a ratings file", path);
        return NULL;
    }
    reader r = {path, separator(path), 0, 0, use, !ids.set, 0, 0, NULL, NULL, NULL, 0, 0};
    char *text;
    size_t len;
    if (rt_read_data_file(path, &text, &len))
        return NULL;
    ids.set = 1;
    int rc = read_text(&r, text, len);
    free(text);
    if (rc == 0 && r.defining)
        rc = check_tables(m, path);
    rt_dataset *d = rc == 0 ? to_dataset(m, &r) : NULL;
    free(r.user);
    free(r.item);
    free(r.rating);
    return d;
}

/* Forgets the ids, as at the start of a process (for the fuzzer, which
 * reads many training files in one). */
void rt_ratings_forget(void) {
    free(ids.users.raw);
    free(ids.users.slots);
    free(ids.items.raw);
    free(ids.items.slots);
    free(ids.rated_user);
    free(ids.rated_item);
    memset(&ids, 0, sizeof ids);
}

void rt_ratings_summary(void) {
    printf("ratings: %d users and %d items (the tables need at least that many rows), %lld ratings in training\n",
           ids.users.n, ids.items.n, (long long)ids.n_rated);
}

/*
 * What recommend asks
 */

int32_t rt_ratings_user(int64_t raw) { return map_find(&ids.users, raw); }
int32_t rt_ratings_item_count(void) { return ids.items.n; }
int64_t rt_ratings_item_raw(int32_t index) { return ids.items.raw[index]; }
int rt_ratings_known(void) { return ids.set && ids.users.n > 0; }

/* A mask of the items user rated in training (n_items bytes). */
unsigned char *rt_ratings_rated(int32_t user) {
    unsigned char *mask = rt_xcalloc((size_t)ids.items.n + 1, 1);
    for (int64_t k = 0; k < ids.n_rated; k++)
        if (ids.rated_user[k] == user)
            mask[ids.rated_item[k]] = 1;
    return mask;
}

/*
 * Checkpoint metadata
 */

static void put_raw_ids(rt_buf *h, const char *key, const id_map *map) {
    rt_buf_printf(h, ",\"%s\":\"", key);
    for (int32_t i = 0; i < map->n; i++)
        rt_buf_printf(h, "%s%lld", i ? " " : "", (long long)map->raw[i]);
    rt_buf_add(h, "\"", 1);
}

static int compare_pair(const void *a, const void *b) {
    const int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Each user's distinct rated items, increasing, as gaps. */
static void put_rated(rt_buf *h) {
    int64_t *pairs = rt_xmalloc((size_t)(ids.n_rated + 1) * sizeof *pairs);
    for (int64_t k = 0; k < ids.n_rated; k++)
        pairs[k] = (int64_t)ids.rated_user[k] << 32 | ids.rated_item[k];
    qsort(pairs, (size_t)ids.n_rated, sizeof *pairs, compare_pair);
    rt_buf_printf(h, ",\"mdl.rated\":\"");
    int64_t k = 0;
    for (int32_t u = 0; u < ids.users.n; u++) {
        int32_t last = -1;
        if (u)
            rt_buf_add(h, ",", 1);
        for (; k < ids.n_rated && pairs[k] >> 32 == u; k++) {
            int32_t item = (int32_t)(pairs[k] & 0xffffffff);
            if (item != last)
                rt_buf_printf(h, "%s%d", last < 0 ? "" : " ", last < 0 ? item : item - last);
            last = item;
        }
    }
    rt_buf_add(h, "\"", 1);
    free(pairs);
}

void rt_ratings_write_metadata(rt_buf *h) {
    if (!rt_ratings_known())
        return;
    put_raw_ids(h, "mdl.users", &ids.users);
    put_raw_ids(h, "mdl.items", &ids.items);
    put_rated(h);
}

/* Space-separated integers; -1 on anything else or a repeated id. */
static int read_raw_ids(const char *s, id_map *map) {
    while (*s) {
        char *end;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (end == s || errno || (*end && *end != ' ') || isspace((unsigned char)*s))
            return -1;
        int32_t before = map->n;
        if (map_add(map, v) != before)
            return -1;
        s = *end ? end + 1 : end;
    }
    return map->n > 0 ? 0 : -1;
}

static int read_rated(const char *s) {
    int32_t user = 0, item = -1;
    while (*s) {
        if (*s == ',') {
            if (++user >= ids.users.n)
                return -1;
            item = -1;
            s++;
            continue;
        }
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v < (item < 0 ? 0 : 1) || v >= ids.items.n || (item >= 0 && item + v >= ids.items.n) ||
            !isdigit((unsigned char)*s))
            return -1;
        item = item < 0 ? (int32_t)v : item + (int32_t)v;
        add_rated(user, item);
        s = *end == ' ' && end[1] && end[1] != ',' ? end + 1 : end;
    }
    return user == ids.users.n - 1 ? 0 : -1;
}

/* Reads the ids from a checkpoint's "__metadata__" (already checked to
 * hold strings) unless the process has them; nothing if it has none. */
int rt_ratings_read_metadata(const char *ckpt, const rt_json *metadata) {
    const rt_json *users = rt_json_get(metadata, "mdl.users"), *items = rt_json_get(metadata, "mdl.items"),
                  *rated = rt_json_get(metadata, "mdl.rated");
    if (ids.set || (!users && !items && !rated))
        return 0;
    if (!users || !items || !rated)
        return rt_error("%s: the metadata has some of \"mdl.users\", \"mdl.items\", \"mdl.rated\" but not all", ckpt);
    ids.set = 1;
    if (read_raw_ids(users->text, &ids.users))
        return rt_error("%s: \"mdl.users\" is not a list of distinct integer ids separated by spaces", ckpt);
    if (read_raw_ids(items->text, &ids.items))
        return rt_error("%s: \"mdl.items\" is not a list of distinct integer ids separated by spaces", ckpt);
    if (read_rated(rated->text))
        return rt_error("%s: \"mdl.rated\" is not a list of item index gaps for each of the %d users", ckpt,
                        ids.users.n);
    return 0;
}
