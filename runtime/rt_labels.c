/*
 * rt_labels.c - labelled text: a file of `label<TAB>text` lines as the
 * data of a text classifier.
 *
 * A model with exactly one input, i32 [B, L] (word ids), and one target,
 * i32 [B] (a class index), takes a file whose name ends in `.tsv` (or
 * `.tsv.gz`) as labelled messages, one a line: the label, one tab, the
 * text.  Blank lines are skipped and a carriage return before the newline
 * is dropped.  The first line is a header, and skipped, when its text is
 * the word `text` (as in `intent<TAB>text`).  A line without a tab, with
 * more than one, with an empty label or with no words is an error naming
 * FILE:LINE.
 *
 * Words: every maximal run of ASCII letters and digits is a word, read in
 * lower case; anything else (spaces, punctuation, apostrophes, bytes above
 * 127) separates words, so "Where's order #48213?!" is `where s order
 * 48213`.  Ids: 0 is padding, 1 an unknown word, and 2, 3, ... the
 * training file's words by descending frequency, ties in byte order.  So a
 * model whose embedding table (the input's index_range) has fewer rows
 * than the vocabulary needs keeps the most frequent words and reads the
 * rarest as unknown.  A text's ids fill its row from position 0, padding
 * follows up to L, and a text of more than L words keeps its first L (the
 * summary counts them).
 *
 * Classes: the lines of `classes.txt`, or else of `intents.txt`, in the
 * training file's folder (class k is the k-th name, from 0; blank lines
 * are skipped), so the indices are the ones the data set documents;
 * without either file, the training file's distinct labels in byte order.
 * A label that is not a class is an error naming FILE:LINE.
 *
 * Training saves the words and the classes in the checkpoint (rt_ckpt.c:
 * "mdl.words", the words in id order separated by spaces, and
 * "mdl.classes", the names separated by newlines), and everything after
 * it -- validation, eval, predict, fine-tuning -- reads text through them:
 * a word the training file did not have is unknown, a label that is not
 * one of the classes an error.
 */
#include "rt_internal.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int has_suffix(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* One i32 [B, L] input and one i32 [B] target. */
int rt_labels_model(const rt_model *m) {
    if (m->n_inputs != 1 || m->n_targets != 1)
        return 0;
    const rt_tensor *x = &m->inputs[0], *y = &m->targets[0];
    return x->dtype == RT_I32 && x->rank == 2 && x->batch_mask == 1 && y->dtype == RT_I32 && y->rank == 1 &&
           y->batch_mask == 1;
}

/* files names one .tsv (or .tsv.gz) file and the model takes labelled text. */
int rt_labels_applies(const rt_model *m, const char *files) {
    return files && !strchr(files, ',') && (has_suffix(files, ".tsv") || has_suffix(files, ".tsv.gz")) &&
           rt_labels_model(m);
}

/*
 * Words
 */

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c; }

static int is_word_char(int c) {
    c = lower(c);
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* The next word of text[0..len) at or after *at: its start in *start and
 * its length, 0 when there are no more; *at moves past it. */
size_t rt_labels_next_word(const char *text, size_t len, size_t *at, size_t *start) {
    size_t i = *at;
    while (i < len && !is_word_char((unsigned char)text[i]))
        i++;
    *start = i;
    while (i < len && is_word_char((unsigned char)text[i]))
        i++;
    *at = i;
    return i - *start;
}

static int64_t count_words(const char *text, size_t len) {
    size_t at = 0, start;
    int64_t n = 0;
    while (rt_labels_next_word(text, len, &at, &start))
        n++;
    return n;
}

/* The word s[0..n), read in lower case, against the lower-case word w. */
static int compare_word(const char *s, size_t n, const char *w) {
    for (size_t i = 0; i < n; i++) {
        int a = lower((unsigned char)s[i]), b = (unsigned char)w[i];
        if (a != b)
            return a - b; /* also where w ends first: b is 0 */
    }
    return w[n] ? -1 : 0;
}

static char *lower_copy(const char *s, size_t n) {
    char *w = rt_xmalloc(n + 1);
    for (size_t i = 0; i < n; i++)
        w[i] = (char)lower((unsigned char)s[i]);
    w[n] = '\0';
    return w;
}

/*
 * The lexicon: words and class names
 */

struct rt_spelling {
    const char *word;
    int32_t id;
};

static int compare_spelling(const void *a, const void *b) {
    return strcmp(((const rt_spelling *)a)->word, ((const rt_spelling *)b)->word);
}

/* Sorts the words for lookup; a word listed twice is an error. */
static int index_words(rt_lexicon *x, const char *source) {
    x->by_spelling = rt_xcalloc((size_t)x->n_words + 1, sizeof *x->by_spelling);
    for (int i = 0; i < x->n_words; i++)
        x->by_spelling[i] = (rt_spelling){x->words[i], RT_WORD_FIRST + i};
    qsort(x->by_spelling, (size_t)x->n_words, sizeof *x->by_spelling, compare_spelling);
    for (int i = 1; i < x->n_words; i++)
        if (strcmp(x->by_spelling[i - 1].word, x->by_spelling[i].word) == 0)
            return rt_error("%s: the word \"%.40s\" is listed twice", source, x->by_spelling[i].word);
    return 0;
}

/* The id of the word s[0..n), RT_WORD_UNKNOWN if it is not a known one. */
int32_t rt_lexicon_word_id(const rt_lexicon *x, const char *s, size_t n) {
    int lo = 0, hi = x->n_words;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2, c = compare_word(s, n, x->by_spelling[mid].word);
        if (c == 0)
            return x->by_spelling[mid].id;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return RT_WORD_UNKNOWN;
}

/* The index of class name s[0..n), or -1. */
static int class_index(const rt_lexicon *x, const char *s, size_t n) {
    for (int k = 0; k < x->n_classes; k++)
        if (strlen(x->classes[k]) == n && memcmp(x->classes[k], s, n) == 0)
            return k;
    return -1;
}

static void add_class(rt_lexicon *x, const char *s, size_t n) {
    x->classes = rt_xrealloc(x->classes, ((size_t)x->n_classes + 1) * sizeof *x->classes);
    char *name = rt_xmalloc(n + 1);
    memcpy(name, s, n);
    name[n] = '\0';
    x->classes[x->n_classes++] = name;
}

void rt_lexicon_free(rt_lexicon *x) {
    if (!x)
        return;
    for (int i = 0; i < x->n_words; i++)
        free(x->words[i]);
    for (int k = 0; k < x->n_classes; k++)
        free(x->classes[k]);
    free(x->words);
    free(x->classes);
    free(x->by_spelling);
    free(x->classes_from);
    free(x);
}

/* items joined by sep, for the checkpoint. */
char *rt_lexicon_join(char *const *items, int n, char sep) {
    rt_buf b = {0};
    for (int i = 0; i < n; i++) {
        if (i)
            rt_buf_add(&b, &sep, 1);
        rt_buf_add(&b, items[i], strlen(items[i]));
    }
    rt_buf_add(&b, "", 1);
    return b.data;
}

static int is_lower_case(const char *s, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)s[i]) != s[i])
            return 0;
    return 1;
}

/* The words of a checkpoint's "mdl.words": lower-case words separated by
 * single spaces. */
static int parse_words(rt_lexicon *x, const char *source, const char *s, size_t len) {
    for (size_t i = 0; i < len;) {
        size_t at = i, start, n = rt_labels_next_word(s, len, &at, &start);
        if (n == 0 || start != i || (at < len && s[at] != ' ') || at + 1 == len || !is_lower_case(s + start, n))
            return rt_error("%s: \"mdl.words\" is not a list of lower-case words separated by single spaces (at "
                            "byte %zu)",
                            source, i);
        x->words = rt_xrealloc(x->words, ((size_t)x->n_words + 1) * sizeof *x->words);
        x->words[x->n_words++] = lower_copy(s + start, n);
        i = at + 1;
    }
    return 0;
}

/* Class names, one a line; blank lines skipped, a name given twice or
 * holding a tab an error. */
static int parse_classes(rt_lexicon *x, const char *source, const char *s, size_t len) {
    int line = 0;
    for (size_t i = 0; i < len;) {
        const char *end = memchr(s + i, '\n', len - i);
        size_t n = end ? (size_t)(end - (s + i)) : len - i, from = i;
        i += n + 1;
        line++;
        while (n > 0 && (s[from + n - 1] == '\r' || s[from + n - 1] == ' '))
            n--;
        while (n > 0 && s[from] == ' ')
            from++, n--;
        if (n == 0)
            continue;
        if (memchr(s + from, '\t', n) || memchr(s + from, '\0', n))
            return rt_error("%s:%d: a class name holds a tab or a NUL byte", source, line);
        if (class_index(x, s + from, n) >= 0)
            return rt_error("%s:%d: class \"%.*s\" is listed twice", source, line, (int)(n < 60 ? n : 60), s + from);
        add_class(x, s + from, n);
    }
    if (x->n_classes == 0)
        return rt_error("%s: no class names", source);
    return 0;
}

/* The lexicon a checkpoint saved; NULL after an error naming source. */
rt_lexicon *rt_lexicon_parse(const char *source, const char *words, size_t words_len, const char *classes,
                             size_t classes_len) {
    rt_lexicon *x = rt_xcalloc(1, sizeof *x);
    x->classes_from = rt_xstrdup(source);
    if (parse_words(x, source, words, words_len) || index_words(x, source) ||
        parse_classes(x, source, classes, classes_len)) {
        rt_lexicon_free(x);
        return NULL;
    }
    return x;
}

/* The ids of text's first `length` words (padding after them) through x;
 * the number of words it has, and (if not NULL) *unknown += how many of
 * the first `length` are not in x. */
int64_t rt_labels_encode(const rt_lexicon *x, const char *text, size_t len, int32_t *ids, int64_t length,
                         int64_t *unknown) {
    size_t at = 0, start, n;
    int64_t count = 0;
    while ((n = rt_labels_next_word(text, len, &at, &start)) > 0) {
        if (count < length) {
            ids[count] = rt_lexicon_word_id(x, text + start, n);
            if (unknown)
                *unknown += ids[count] == RT_WORD_UNKNOWN;
        }
        count++;
    }
    for (int64_t i = count; i < length; i++)
        ids[i] = RT_WORD_PAD;
    return count;
}

/*
 * Reading a file of labelled lines
 */

typedef struct tsv_line {
    const char *label, *text;
    size_t label_len, text_len;
    int64_t line;
} tsv_line;

typedef struct tsv {
    const char *path;
    char *data;
    tsv_line *lines;
    int64_t n;
} tsv;

static void trim(const char **s, size_t *n) {
    while (*n > 0 && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\r'))
        (*n)--;
    while (*n > 0 && **s == ' ')
        (*s)++, (*n)--;
}

/* Splits line `number` (s[0..n), without its newline) at its tab into
 * *l; 1 for a blank line or the header, 0 for a message, -1 on an error. */
static int split_line(const char *path, int64_t number, const char *s, size_t n, tsv_line *l) {
    trim(&s, &n);
    if (n == 0)
        return 1;
    const char *tab = memchr(s, '\t', n);
    if (!tab)
        return rt_error("%s:%lld: no tab: a line is LABEL<TAB>TEXT", path, (long long)number);
    *l = (tsv_line){s, tab + 1, (size_t)(tab - s), n - (size_t)(tab + 1 - s), number};
    if (memchr(l->text, '\t', l->text_len))
        return rt_error("%s:%lld: more than one tab: a line is LABEL<TAB>TEXT, with no tab in the text", path,
                        (long long)number);
    trim(&l->label, &l->label_len);
    trim(&l->text, &l->text_len);
    if (number == 1 && l->text_len == 4 && strncasecmp(l->text, "text", 4) == 0)
        return 1;
    if (l->label_len == 0)
        return rt_error("%s:%lld: empty label before the tab", path, (long long)number);
    if (count_words(l->text, l->text_len) == 0)
        return rt_error("%s:%lld: the text has no words (letters or digits)", path, (long long)number);
    return 0;
}

static int split_lines(tsv *t, size_t len) {
    size_t lines = 1;
    for (size_t i = 0; i < len; i++)
        lines += t->data[i] == '\n';
    t->lines = rt_xcalloc(lines, sizeof *t->lines);
    int64_t number = 0;
    for (size_t i = 0; i < len;) {
        const char *s = t->data + i, *end = memchr(s, '\n', len - i);
        size_t n = end ? (size_t)(end - s) : len - i;
        i += n + 1;
        int rc = split_line(t->path, ++number, s, n, &t->lines[t->n]);
        if (rc < 0)
            return -1;
        t->n += rc == 0;
    }
    if (t->n == 0)
        return rt_error("%s: no labelled lines (LABEL<TAB>TEXT)", t->path);
    return 0;
}

static int read_tsv(const char *path, tsv *t) {
    size_t len;
    memset(t, 0, sizeof *t);
    t->path = path;
    if (rt_read_data_file(path, &t->data, &len))
        return -1;
    if (memchr(t->data, '\0', len))
        return rt_error("%s: holds a NUL byte: not a text file", path);
    return split_lines(t, len);
}

static void free_tsv(tsv *t) {
    free(t->data);
    free(t->lines);
}

/*
 * Building the lexicon from the training file
 */

typedef struct word_count {
    const char *s;
    size_t n;
    int64_t count;
} word_count;

static int compare_span(const void *a, const void *b) {
    const word_count *x = a, *y = b;
    size_t n = x->n < y->n ? x->n : y->n;
    for (size_t i = 0; i < n; i++) {
        int c = lower((unsigned char)x->s[i]) - lower((unsigned char)y->s[i]);
        if (c)
            return c;
    }
    return (x->n > y->n) - (x->n < y->n);
}

/* Descending count, then byte order. */
static int compare_count(const void *a, const void *b) {
    const word_count *x = a, *y = b;
    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    return compare_span(a, b);
}

/* The distinct words of t's texts with their counts, most frequent first;
 * their number in *n. */
static word_count *count_all(const tsv *t, int64_t *n) {
    int64_t total = 0, k = 0;
    for (int64_t i = 0; i < t->n; i++)
        total += count_words(t->lines[i].text, t->lines[i].text_len);
    word_count *w = rt_xcalloc((size_t)total + 1, sizeof *w);
    for (int64_t i = 0; i < t->n; i++) {
        size_t at = 0, start, len;
        while ((len = rt_labels_next_word(t->lines[i].text, t->lines[i].text_len, &at, &start)) > 0)
            w[k++] = (word_count){t->lines[i].text + start, len, 1};
    }
    qsort(w, (size_t)total, sizeof *w, compare_span);
    int64_t distinct = 0;
    for (int64_t i = 0; i < total; i++) {
        if (distinct > 0 && compare_span(&w[distinct - 1], &w[i]) == 0)
            w[distinct - 1].count++;
        else
            w[distinct++] = w[i];
    }
    qsort(w, (size_t)distinct, sizeof *w, compare_count);
    *n = distinct;
    return w;
}

/* The words a table of `rows` ids (0: no limit) has room for. */
static int build_words(rt_lexicon *x, const tsv *t, int64_t rows, rt_labels_info *info) {
    int64_t distinct;
    word_count *w = count_all(t, &distinct);
    int64_t keep = rows > 0 && distinct > rows - RT_WORD_FIRST ? rows - RT_WORD_FIRST : distinct;
    if (keep < 0)
        keep = 0;
    x->words = rt_xcalloc((size_t)keep + 1, sizeof *x->words);
    for (int64_t i = 0; i < keep; i++)
        x->words[x->n_words++] = lower_copy(w[i].s, w[i].n);
    free(w);
    if (info)
        info->dropped = distinct - keep;
    return index_words(x, t->path);
}

/* classes.txt or intents.txt next to path, if there is one. */
static char *class_file(const char *path) {
    static const char *names[] = {"classes.txt", "intents.txt"};
    const char *slash = strrchr(path, '/');
    size_t dir = slash ? (size_t)(slash + 1 - path) : 0;
    for (int i = 0; i < 2; i++) {
        char *p = rt_xmalloc(dir + strlen(names[i]) + 1);
        memcpy(p, path, dir);
        strcpy(p + dir, names[i]);
        FILE *f = fopen(p, "r");
        if (f) {
            fclose(f);
            return p;
        }
        free(p);
    }
    return NULL;
}

static int compare_line_label(const void *a, const void *b) {
    const tsv_line *x = *(tsv_line *const *)a, *y = *(tsv_line *const *)b;
    size_t n = x->label_len < y->label_len ? x->label_len : y->label_len;
    int c = memcmp(x->label, y->label, n);
    return c ? c : (x->label_len > y->label_len) - (x->label_len < y->label_len);
}

/* The training file's distinct labels, in byte order. */
static void labels_as_classes(rt_lexicon *x, const tsv *t) {
    tsv_line **sorted = rt_xcalloc((size_t)t->n, sizeof *sorted);
    for (int64_t i = 0; i < t->n; i++)
        sorted[i] = &t->lines[i];
    qsort(sorted, (size_t)t->n, sizeof *sorted, compare_line_label);
    for (int64_t i = 0; i < t->n; i++)
        if (i == 0 || compare_line_label(&sorted[i - 1], &sorted[i]) != 0)
            add_class(x, sorted[i]->label, sorted[i]->label_len);
    free(sorted);
    x->classes_from = rt_xstrdup(t->path);
}

static int build_classes(rt_lexicon *x, const tsv *t) {
    char *file = class_file(t->path);
    if (!file) {
        labels_as_classes(x, t);
        return 0;
    }
    x->classes_from = file;
    char *data;
    size_t len;
    if (rt_read_file(file, &data, &len))
        return -1;
    int rc = parse_classes(x, file, data, len);
    free(data);
    return rc;
}

static rt_lexicon *build_lexicon(const rt_model *m, const tsv *t, rt_labels_info *info) {
    rt_lexicon *x = rt_xcalloc(1, sizeof *x);
    if (build_words(x, t, m->inputs[0].index_range, info) || build_classes(x, t)) {
        rt_lexicon_free(x);
        return NULL;
    }
    return x;
}

/*
 * The data set
 */

static int check_sizes(const rt_model *m, const rt_lexicon *x) {
    int64_t rows = m->inputs[0].index_range, labels = m->targets[0].index_range;
    if (rows > 0 && rows <= RT_WORD_FIRST)
        return rt_error("input \"%s\" indexes a table of %lld rows: too few for padding (0), unknown (1) and words",
                        m->inputs[0].name, (long long)rows);
    if (labels > 0 && x->n_classes > labels)
        return rt_error("%s has %d classes, but model %s takes labels 0..%lld (target \"%s\")", x->classes_from,
                        x->n_classes, m->name, (long long)(labels - 1), m->targets[0].name);
    return 0;
}

static int fill(const rt_model *m, const tsv *t, const rt_lexicon *x, rt_dataset *d, rt_labels_info *info) {
    int64_t length = m->inputs[0].dims[1];
    for (int64_t i = 0; i < t->n; i++) {
        const tsv_line *l = &t->lines[i];
        int32_t *ids = (int32_t *)d->data[0] + i * length;
        int64_t n = rt_labels_encode(x, l->text, l->text_len, ids, length, info ? &info->unknown : NULL);
        if (info) {
            info->words += n < length ? n : length;
            info->truncated += n > length;
        }
        if (d->n_tensors < 2)
            continue;
        int k = class_index(x, l->label, l->label_len);
        if (k < 0)
            return rt_error("%s:%lld: label \"%.*s\" is not one of the %d classes of %s", t->path, (long long)l->line,
                            (int)(l->label_len < 60 ? l->label_len : 60), l->label, x->n_classes, x->classes_from);
        ((int32_t *)d->data[1])[i] = k;
    }
    return 0;
}

/* The data set of a .tsv file for a model that rt_labels_model() accepts:
 * its word ids and, in mode RT_DATA_LABELLED, its class indices.  With
 * *lexicon NULL the file's own words and classes make a new lexicon,
 * stored in *lexicon (training); otherwise the file is read through it.
 * info (may be NULL) gets the counts. */
rt_dataset *rt_labels_load(const rt_model *m, const char *path, int mode, rt_lexicon **lexicon, rt_labels_info *info) {
    if (info)
        memset(info, 0, sizeof *info);
    tsv t;
    if (read_tsv(path, &t) || (!*lexicon && !(*lexicon = build_lexicon(m, &t, info))) || check_sizes(m, *lexicon)) {
        free_tsv(&t);
        return NULL;
    }
    const rt_tensor *tensors[2] = {&m->inputs[0], &m->targets[0]};
    rt_dataset *d = rt_data_alloc(tensors, mode == RT_DATA_LABELLED ? 2 : 1, t.n);
    if (info)
        info->messages = t.n;
    int rc = fill(m, &t, *lexicon, d, info);
    free_tsv(&t);
    if (rc) {
        rt_data_free(d);
        return NULL;
    }
    d->path = rt_xstrdup(path);
    return d;
}

/* The line train prints under its summary. */
void rt_labels_describe_training(const rt_model *m, const rt_lexicon *x, const rt_labels_info *info) {
    printf("labelled text: %lld messages, %d words in the vocabulary (ids %d..%d; 0 padding, 1 unknown)",
           (long long)info->messages, x->n_words, RT_WORD_FIRST, RT_WORD_FIRST + x->n_words - 1);
    if (info->dropped)
        printf(" and %lld rarer ones read as unknown (the table has %lld rows)", (long long)info->dropped,
               (long long)m->inputs[0].index_range);
    printf(", %d classes (from %s), %lld texts truncated to %lld words\n", x->n_classes, x->classes_from,
           (long long)info->truncated, (long long)m->inputs[0].dims[1]);
}

/* The line eval prints before its results. */
void rt_labels_describe_data(const rt_model *m, const rt_labels_info *info) {
    printf("labelled text: %lld messages, %lld of %lld words unknown, %lld texts truncated to %lld words\n",
           (long long)info->messages, (long long)info->unknown, (long long)info->words, (long long)info->truncated,
           (long long)m->inputs[0].dims[1]);
}
