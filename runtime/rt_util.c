/*
 * rt_util.c - the small things every other file leans on: error lines,
 * allocation that cannot return NULL, reading a whole file, a clock, number
 * formatting and a growable string.
 *
 * Every failure the user can cause is reported as exactly one line
 * `error: ...` on stderr; rt_error() returns -1 so that the reporting site
 * can write `return rt_error(...)`.  Running out of memory is the one
 * failure we do not pass up: there is nothing sensible left to do.
 */
#include "rt_internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

char rt_last_error[512];
int rt_quiet_errors;

static FILE *error_stream(void) { return rt_quiet_errors ? NULL : stderr; }

int rt_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(rt_last_error, sizeof rt_last_error, fmt, ap);
    va_end(ap);
    FILE *f = error_stream();
    if (f) {
        fflush(stdout); /* keep the error after the progress it follows */
        fprintf(f, "error: %s\n", rt_last_error);
    }
    return -1;
}

void rt_note(const char *fmt, ...) {
    FILE *f = error_stream();
    if (!f)
        return;
    va_list ap;
    va_start(ap, fmt);
    fflush(stdout);
    fputs("note: ", f);
    vfprintf(f, fmt, ap);
    fputc('\n', f);
    va_end(ap);
}

static void out_of_memory(size_t n) {
    fprintf(stderr, "error: out of memory (allocating %zu bytes)\n", n);
    exit(RT_EXIT_FAIL);
}

void *rt_xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p)
        out_of_memory(n);
    return p;
}

void *rt_xcalloc(size_t count, size_t size) {
    void *p = calloc(count ? count : 1, size ? size : 1);
    if (!p)
        out_of_memory(count * size);
    return p;
}

void *rt_xrealloc(void *p, size_t n) {
    p = realloc(p, n ? n : 1);
    if (!p)
        out_of_memory(n);
    return p;
}

char *rt_xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    return memcpy(rt_xmalloc(n), s, n);
}

/* Reads all of `path` ("-" is stdin) into a NUL-terminated buffer. */
int rt_read_file(const char *path, char **data, size_t *len) {
    int is_stdin = strcmp(path, "-") == 0;
    FILE *f = is_stdin ? stdin : fopen(path, "rb");
    if (!f)
        return rt_error("cannot open %s: %s", path, strerror(errno));
    rt_buf b = {0};
    char chunk[65536];
    size_t got;
    while ((got = fread(chunk, 1, sizeof chunk, f)) > 0)
        rt_buf_add(&b, chunk, got);
    int failed = ferror(f);
    int saved_errno = errno;
    if (!is_stdin)
        fclose(f);
    if (failed) {
        free(b.data);
        return rt_error("cannot read %s: %s", path, strerror(saved_errno));
    }
    rt_buf_add(&b, "", 1);
    *data = b.data;
    *len = b.len - 1;
    return 0;
}

double rt_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

const char *rt_basename(const char *path) {
    const char *slash = strrchr(path, '/');
    return slash ? slash + 1 : path;
}

/* 1234567 -> "1.23M": for FLOPs and samples per second. */
void rt_format_count(double x, char *buf, size_t size) {
    static const char *suffix[] = {"", "k", "M", "G", "T", "P"};
    int i = 0;
    while (x >= 1000 && i < 5) {
        x /= 1000;
        i++;
    }
    if (i == 0)
        snprintf(buf, size, "%.0f", x);
    else
        snprintf(buf, size, "%.3g%s", x, suffix[i]);
}

void rt_format_bytes(int64_t bytes, char *buf, size_t size) {
    if (bytes < 1024)
        snprintf(buf, size, "%lld B", (long long)bytes);
    else if (bytes < 1024 * 1024)
        snprintf(buf, size, "%.1f KiB", bytes / 1024.0);
    else
        snprintf(buf, size, "%.1f MiB", bytes / (1024.0 * 1024.0));
}

void rt_buf_add(rt_buf *b, const void *p, size_t n) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        b->data = rt_xrealloc(b->data, cap);
        b->cap = cap;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void rt_buf_printf(rt_buf *b, const char *fmt, ...) {
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0)
        return;
    if ((size_t)n < sizeof small) {
        rt_buf_add(b, small, (size_t)n);
        return;
    }
    char *big = rt_xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    rt_buf_add(b, big, (size_t)n);
    free(big);
}
