/*
 * lower.h - from the syntax tree to the graph IR.
 */
#ifndef MDL_LOWER_H
#define MDL_LOWER_H

#include "ast.h"
#include "ir.h"

typedef struct lower_options {
    int64_t max_batch; /* 0: the train block's batch */
} lower_options;

/* Builds the forward graph of the model in `user`, with the functions of
 * `prelude` (may be NULL) visible after the user's own.  Function calls are
 * inlined; shapes and dtypes are checked as nodes are built.  Returns NULL
 * when any error was reported (through diag_error). */
ir_graph *lower_program(const ast_program *user, const ast_program *prelude, const lower_options *opt);

#endif
