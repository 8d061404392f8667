/*
 * alloc.c - the compiler's allocation functions.  Running out of memory in
 * a compiler is not something to recover from: every stage calls these,
 * which report it once and exit, so no stage carries NULL checks.
 */
#include "ir.h"

#include <stdlib.h>
#include <string.h>

static void *checked(void *p) {
    if (!p) {
        fprintf(stderr, "mdlc: error: out of memory\n");
        exit(70);
    }
    return p;
}

void *ir_xmalloc(size_t size) { return checked(malloc(size ? size : 1)); }

void *ir_xcalloc(size_t count, size_t size) { return checked(calloc(count ? count : 1, size ? size : 1)); }

void *ir_xrealloc(void *p, size_t size) { return checked(realloc(p, size ? size : 1)); }

char *ir_xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    return memcpy(ir_xmalloc(n), s, n);
}
