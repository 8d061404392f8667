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
    int parallel;         /* large matrix products call mdl_rt_sgemm of the
                             runtime (mdlrt.h), which splits them over its
                             threads; 0: they call the generated GEMM
                             directly (the JIT: no runtime there) */
    int f64_entries;      /* also eval_step_f64 and grad_step_f64: the same
                             graph with every f32 tensor a double, in their
                             own arena (for gradcheck, runtime/mdlrt.h) */
    int distributed;      /* mdlc --mpi: train_step hands each parameter's
                             gradient to the runtime to be summed over the
                             ranks (runtime/rt_mpi.c) before its update */
} cg_options;

/* Returns 0, or -1 after printing "mdlc: error: ..." to stderr. */
int cg_compile(const ir_graph *g, const entries *es, const mem_plan *plan, const cg_options *opt);

/* The same as object files, compiled on up to `jobs` threads (cg_parts.c):
 * *n_objects objects, named by cg_part_path(opt->obj_path, i, ...) for
 * i < *n_objects (the first is obj_path itself), linked together.  Uses
 * opt->obj_path, opt_level, cpu, features and f64_entries.  0, or -1 after
 * printing an error (objects already written are left for the caller). */
#define CG_MAX_OBJECTS 48
int cg_compile_parts(const ir_graph *g, const entries *es, const mem_plan *plan, const cg_options *opt, int jobs,
                     int *n_objects);
void cg_part_path(const char *base, int i, char *out, size_t size);

/* The descriptor C file; returns 0 or -1 (with a message on stderr).
 * f64_entries: the object has the f64 entries (cg_options.f64_entries), and
 * the descriptor gives them and their arena offsets. */
int cg_write_descriptor(const ir_graph *g, const entries *es, const mem_plan *plan, int f64_entries, FILE *out);

/* ------------------------------------------------------------------
 * mdlc -c: the model as a C library (runtime/rt_lib.h, docs/embedding.md).
 * prefix: the model's name as a C identifier, which starts every name of
 * its API.  The header declares the API; cg_write_embed_api (appended to
 * the descriptor's C file, which must reach the header as `header`)
 * defines it; cg_write_embed_symbols lists the functions, one a line, for
 * objcopy --keep-global-symbols.  Each returns 0, or -1 if out failed. */
void cg_embed_prefix(const ir_graph *g, char *buf, size_t size);
int cg_write_embed_header(const ir_graph *g, const char *prefix, FILE *out);
int cg_write_embed_api(const ir_graph *g, const char *prefix, const char *header, FILE *out);
int cg_write_embed_symbols(const char *prefix, FILE *out);

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
/* The f64 variant of ENTRY_EVAL or ENTRY_GRAD (opt->f64_entries), or NULL;
 * its arena is laid out by the plan of cg_jit_plan_f64. */
cg_entry_fn cg_jit_entry_f64(const cg_jit *jit, entry_kind which);
/* The memory plan of the f64 entries, or NULL without them. */
const mem_plan *cg_jit_plan_f64(const cg_jit *jit);
/* Frees the code too: entry pointers die with it. */
void cg_jit_free(cg_jit *jit);

#endif
