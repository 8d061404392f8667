/*
 * fuzz_compile.c - libFuzzer target for everything before code generation.
 *
 * Any byte string is a model: it is parsed with the prelude, lowered to the
 * IR, verified, differentiated, given its optimizer update, simplified, and
 * its entry points and memory plan are built, exactly as mdlc does up to
 * LLVM.  A pass that fails must fail with a message, never crash, hang or
 * leak; the sanitizers and libFuzzer's timeout check that.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ast.h"
#include "ir.h"
#include "lower.h"
#include "passes.h"

extern const char mdl_prelude_source[];

static FILE *devnull;
static ast_arena *prelude_arena;
static src_file *prelude_file;
static const ast_program *prelude;

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    devnull = fopen("/dev/null", "w");
    diag_set_stream(devnull);
    prelude_arena = ast_arena_new();
    prelude_file = src_from_string("<prelude>", mdl_prelude_source);
    prelude = parse_program(prelude_file, prelude_arena); /* kept for the whole run */
    return 0;
}

static void passes(ir_graph *g) {
    if (ir_verify(g) != 0)
        return;
    if (g->loss >= 0 && (ad_differentiate(g) != 0 || opt_lower(g) != 0 || ir_verify(g) != 0))
        return;
    for (int round = 0; round < 16 && simplify(g) > 0; round++)
        ;
    if (ir_verify(g) != 0)
        return;
    entries es;
    if (entries_build(g, &es) == 0) {
        mem_plan plan;
        mp_plan_build(g, &es, &plan);
        mp_plan_dump(g, &es, &plan, devnull);
        mp_plan_free(&plan);
    }
    entries_free(&es);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    src_file *file = src_from_bytes("fuzz.mdl", (const char *)data, size);
    ast_arena *arena = ast_arena_new();
    ast_program *prog = parse_program(file, arena);
    if (prog && diag_error_count() == 0) {
        lower_options lo = {8};
        ir_graph *g = lower_program(prog, prelude, &lo);
        if (g) {
            ir_dump(g, NULL, devnull);
            passes(g);
            ir_graph_free(g);
        }
    }
    ast_arena_free(arena);
    src_free(file);
    diag_reset();
    return 0;
}
