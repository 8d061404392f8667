/*
 * cg_jit.c - the entry points of a graph, compiled into this process.
 *
 * For tests (and later the gradient checker of the compiler itself): the
 * module is built and optimised exactly as cg_compile does and emitted as
 * an object file in memory by the same target machine, and ORC's LLJIT
 * links that object into the process.  So what a test runs is the very
 * machine code mdlc would write to disk, not a second code path.  Symbols
 * the object needs from outside (expf, tanhf, memmove) resolve against the
 * process, which must therefore link libm.
 */
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <stdlib.h>

#include "cg_internal.h"

struct cg_jit {
    LLVMOrcLLJITRef lljit;
    cg_entry_fn fn[ENTRY_COUNT];
    cg_entry_fn fn_f64[ENTRY_COUNT]; /* eval and grad, with opt->f64_entries */
    int has_f64;
    mem_plan plan_f64;
};

static int report(LLVMErrorRef err, const char *what) {
    if (!err)
        return 0;
    char *message = LLVMGetErrorMessage(err);
    cg_error("%s: %s", what, message);
    LLVMDisposeErrorMessage(message);
    return -1;
}

/* The optimised module as an object file in memory; NULL after an error. */
static LLVMMemoryBufferRef compile_to_memory(const ir_graph *g, const entries *es, const mem_plan *plan,
                                             const cg_options *opt) {
    LLVMTargetMachineRef tm = cg_target_machine(opt);
    if (!tm)
        return NULL;
    LLVMContextRef ctx = LLVMContextCreate();
    LLVMModuleRef mod = cg_build_optimised(ctx, tm, g, es, plan, opt);
    LLVMMemoryBufferRef object = NULL;
    int rc = mod ? 0 : -1;
    if (rc == 0 && opt->emit_llvm)
        rc = cg_emit_text(mod, opt->emit_llvm);
    if (rc == 0)
        object = cg_emit_to_memory(mod, tm, LLVMObjectFile, "code");
    if (mod)
        LLVMDisposeModule(mod);
    LLVMContextDispose(ctx);
    LLVMDisposeTargetMachine(tm);
    return object;
}

/* An LLJIT that resolves undefined symbols in this process. */
static LLVMOrcLLJITRef make_lljit(void) {
    LLVMOrcLLJITRef lljit;
    if (report(LLVMOrcCreateLLJIT(&lljit, LLVMOrcCreateLLJITBuilder()), "cannot start the JIT"))
        return NULL;
    LLVMOrcDefinitionGeneratorRef process;
    LLVMErrorRef err =
        LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(&process, LLVMOrcLLJITGetGlobalPrefix(lljit), NULL, NULL);
    if (report(err, "cannot search this process for symbols")) {
        LLVMOrcDisposeLLJIT(lljit);
        return NULL;
    }
    LLVMOrcJITDylibAddGenerator(LLVMOrcLLJITGetMainJITDylib(lljit), process);
    return lljit;
}

static int look_up(cg_jit *jit, const char *name, cg_entry_fn *fn) {
    LLVMOrcExecutorAddress address;
    if (report(LLVMOrcLLJITLookup(jit->lljit, &address, name), name))
        return -1;
    *fn = (cg_entry_fn)(uintptr_t)address;
    return 0;
}

static int look_up_entries(cg_jit *jit, const entries *es) {
    for (int e = 0; e < ENTRY_COUNT; e++) {
        if (!es->e[e].present)
            continue;
        if (look_up(jit, es->e[e].name, &jit->fn[e]))
            return -1;
        if (jit->has_f64 && (e == ENTRY_EVAL || e == ENTRY_GRAD)) {
            char name[64];
            snprintf(name, sizeof name, "%s_f64", es->e[e].name);
            if (look_up(jit, name, &jit->fn_f64[e]))
                return -1;
        }
    }
    return 0;
}

cg_jit *cg_jit_create(const ir_graph *g, const entries *es, const mem_plan *plan, const cg_options *opt) {
    LLVMMemoryBufferRef object = compile_to_memory(g, es, plan, opt);
    if (!object)
        return NULL;
    cg_jit *jit = ir_xcalloc(1, sizeof *jit);
    if (opt->f64_entries) {
        entries es64;
        cg_plan_f64(g, es, &es64, &jit->plan_f64);
        jit->has_f64 = 1;
    }
    jit->lljit = make_lljit();
    if (!jit->lljit) {
        LLVMDisposeMemoryBuffer(object);
        mp_plan_free(&jit->plan_f64);
        free(jit);
        return NULL;
    }
    LLVMOrcJITDylibRef main_dylib = LLVMOrcLLJITGetMainJITDylib(jit->lljit);
    /* AddObjectFile owns the buffer from here on, even when it fails. */
    if (report(LLVMOrcLLJITAddObjectFile(jit->lljit, main_dylib, object), "cannot load the object") ||
        look_up_entries(jit, es)) {
        cg_jit_free(jit);
        return NULL;
    }
    return jit;
}

cg_entry_fn cg_jit_entry(const cg_jit *jit, entry_kind which) {
    return which >= 0 && which < ENTRY_COUNT ? jit->fn[which] : NULL;
}

cg_entry_fn cg_jit_entry_f64(const cg_jit *jit, entry_kind which) {
    return which >= 0 && which < ENTRY_COUNT ? jit->fn_f64[which] : NULL;
}

const mem_plan *cg_jit_plan_f64(const cg_jit *jit) { return jit->has_f64 ? &jit->plan_f64 : NULL; }

void cg_jit_free(cg_jit *jit) {
    if (!jit)
        return;
    report(LLVMOrcDisposeLLJIT(jit->lljit), "cannot shut down the JIT");
    mp_plan_free(&jit->plan_f64);
    free(jit);
}
