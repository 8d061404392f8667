/*
 * fuzz_parse.c - libFuzzer target for the scanner and the parser.
 *
 * Any byte string is a source file: it is parsed, the tree dumped (so the
 * dump walks whatever error recovery left), and everything freed.  The
 * sanitizers catch what goes wrong; diagnostics go to /dev/null.  The
 * property under test is the frontend's promise: no crash, no hang, no
 * leak, whatever the input.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ast.h"

static FILE *devnull;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    devnull = fopen("/dev/null", "w");
    diag_set_stream(devnull);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    src_file *file = src_from_bytes("fuzz.mdl", (const char *)data, size);
    ast_arena *arena = ast_arena_new();
    ast_program *prog = parse_program(file, arena);
    if (prog && devnull) {
        ast_dump(prog, devnull);
        ast_dump_locs(prog, devnull);
    }
    ast_arena_free(arena);
    src_free(file);
    diag_reset();
    return 0;
}
