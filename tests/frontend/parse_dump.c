/*
 * parse_dump.c - parses one .mdl file and prints its syntax tree.
 *
 *   parse_dump [--locs] [--limit N] FILE
 *
 * The tree (ast_dump, or ast_dump_locs with --locs) goes to stdout, even
 * when there were errors, so the golden tests also pin down what error
 * recovery keeps; diagnostics go to stderr.  Exit status: 0 clean, 1 syntax
 * errors, 2 bad usage or unreadable file.  This is the frontend's own test
 * driver; mdlc --emit=ast prints the same tree.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "ast.h"

int main(int argc, char **argv) {
    int locs = 0;
    const char *path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--locs") == 0)
            locs = 1;
        else if (strcmp(argv[i], "--limit") == 0 && i + 1 < argc)
            diag_set_limit(atoi(argv[++i]));
        else if (!path)
            path = argv[i];
        else
            path = NULL, i = argc;
    }
    if (!path) {
        fprintf(stderr, "usage: parse_dump [--locs] [--limit N] FILE\n");
        return 2;
    }
    src_file *file = src_open(path);
    if (!file) {
        diag_plain("cannot open '%s': %s", path, strerror(errno));
        return 2;
    }
    ast_arena *arena = ast_arena_new();
    ast_program *prog = parse_program(file, arena);
    if (locs)
        ast_dump_locs(prog, stdout);
    else
        ast_dump(prog, stdout);
    int errors = diag_error_count();
    ast_arena_free(arena);
    src_free(file);
    return errors ? 1 : 0;
}
