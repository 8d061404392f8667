/*
 * codegen.h - from a planned graph to native code, through the LLVM C API.
 *
 * cg_compile builds one LLVM module holding one function per entry point
 * (void name(ptr arena, i64 batch)) that runs the entry's schedule, each
 * scheduled node lowered to a loop nest over its buffers in the arena.  The
 * module is optimised with LLVM's pass pipeline for the host CPU and written
 * as an object file.  cg_write_descriptor writes the C file that defines
 * `mdl_model` (runtime/mdlrt.h) for the same graph and plan.
 *
 * Names: cg_.  Only codegen/ includes LLVM headers.
 */
#ifndef MDL_CODEGEN_H
#define MDL_CODEGEN_H

#include <stdio.h>

#include "ir.h"
#include "passes.h"

typedef struct cg_options {
    int opt_level;        /* 0..3 */
    const char *cpu;      /* NULL: the host's */
    const char *features; /* NULL: the host's */
    FILE *emit_llvm;      /* if set: the optimised module as text */
    FILE *emit_asm;       /* if set: the assembly */
    const char *obj_path; /* if set: write the object file here */
} cg_options;

/* Returns 0, or -1 after printing "mdlc: error: ..." to stderr. */
int cg_compile(const ir_graph *g, const entries *es, const mem_plan *plan, const cg_options *opt);

/* The descriptor C file; returns 0 or -1 (with a message on stderr). */
int cg_write_descriptor(const ir_graph *g, const entries *es, const mem_plan *plan, FILE *out);

/* ------------------------------------------------------------------ JIT
 * The same code as cg_compile (same module, pipeline and target machine),
 * linked into the calling process by LLVM's ORC JIT, for tests and for
 * checks that run the kernels without building an executable.  The process
 * must link libm (the kernels call expf, tanhf, ...).  opt->obj_path and
 * opt->emit_asm are ignored; opt->emit_llvm is honoured. */
typedef struct cg_jit cg_jit;
typedef void (*cg_entry_fn)(char *arena, int64_t batch); /* = rt_kernel */

/* NULL after printing "mdlc: error: ...". */
cg_jit *cg_jit_create(const ir_graph *g, const entries *es, const mem_plan *plan, const cg_options *opt);
/* The entry point, or NULL where es had none. */
cg_entry_fn cg_jit_entry(const cg_jit *jit, entry_kind which);
/* Frees the code too: entry pointers die with it. */
void cg_jit_free(cg_jit *jit);

#endif
