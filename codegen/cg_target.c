/*
 * cg_target.c - from a built module to optimised native code.
 *
 * The target is the host unless cg_options names a CPU and features (the
 * executable runs where it is compiled, so it may use every instruction the
 * host has: AVX2 and FMA on the machines we target).  Code is
 * position-independent so the object links into a PIE.  Optimisation is
 * LLVM's standard new-pass-manager pipeline, default<O0..O3>, run for the
 * same target machine that emits the code, so the vectoriser's cost model
 * knows the vector width.
 *
 * Every LLVM object made here is disposed here, on error paths too.
 */
#include <llvm-c/Analysis.h>
#include <llvm-c/Target.h>
#include <llvm-c/Transforms/PassBuilder.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cg_internal.h"

static int init_native(void) {
    static int done, failed;
    if (!done) {
        failed = LLVMInitializeNativeTarget() || LLVMInitializeNativeAsmPrinter();
        done = 1;
    }
    if (failed)
        cg_error("LLVM has no support for the host target");
    return failed ? -1 : 0;
}

static LLVMCodeGenOptLevel codegen_level(int opt_level) {
    switch (opt_level) {
    case 0: return LLVMCodeGenLevelNone;
    case 1: return LLVMCodeGenLevelLess;
    case 3: return LLVMCodeGenLevelAggressive;
    default: return LLVMCodeGenLevelDefault;
    }
}

static LLVMTargetMachineRef make_machine(const cg_options *opt, const char *triple) {
    LLVMTargetRef target;
    char *message = NULL;
    if (LLVMGetTargetFromTriple(triple, &target, &message)) {
        cg_error("no LLVM target for %s: %s", triple, message);
        LLVMDisposeMessage(message);
        return NULL;
    }
    char *host_cpu = opt->cpu ? NULL : LLVMGetHostCPUName();
    char *host_features = opt->features ? NULL : LLVMGetHostCPUFeatures();
    LLVMTargetMachineRef tm = LLVMCreateTargetMachine(
        target, triple, opt->cpu ? opt->cpu : host_cpu, opt->features ? opt->features : host_features,
        codegen_level(opt->opt_level), LLVMRelocPIC, LLVMCodeModelDefault);
    LLVMDisposeMessage(host_cpu);
    LLVMDisposeMessage(host_features);
    if (!tm)
        cg_error("cannot create an LLVM target machine for %s", triple);
    return tm;
}

LLVMTargetMachineRef cg_target_machine(const cg_options *opt) {
    if (init_native())
        return NULL;
    char *triple = LLVMGetDefaultTargetTriple();
    LLVMTargetMachineRef tm = make_machine(opt, triple);
    LLVMDisposeMessage(triple);
    return tm;
}

static int verify(LLVMModuleRef mod) {
    char *message = NULL;
    if (LLVMVerifyModule(mod, LLVMReturnStatusAction, &message)) {
        cg_error("internal: generated LLVM IR is invalid: %s", message);
        LLVMDisposeMessage(message);
        return -1;
    }
    LLVMDisposeMessage(message);
    return 0;
}

static int optimise(LLVMModuleRef mod, LLVMTargetMachineRef tm, int opt_level) {
    char pipeline[32];
    snprintf(pipeline, sizeof pipeline, "default<O%d>", opt_level < 0 ? 0 : opt_level > 3 ? 3 : opt_level);
    LLVMPassBuilderOptionsRef options = LLVMCreatePassBuilderOptions();
    LLVMErrorRef err = LLVMRunPasses(mod, pipeline, tm, options);
    LLVMDisposePassBuilderOptions(options);
    if (err) {
        char *message = LLVMGetErrorMessage(err);
        cg_error("LLVM optimisation failed: %s", message);
        LLVMDisposeErrorMessage(message);
        return -1;
    }
    return 0;
}

LLVMModuleRef cg_build_optimised(LLVMContextRef ctx, LLVMTargetMachineRef tm, const ir_graph *g, const entries *es,
                                 const mem_plan *plan, int opt_level) {
    LLVMModuleRef mod = cg_build_module(ctx, g, es, plan);
    if (!mod)
        return NULL;
    char *triple = LLVMGetTargetMachineTriple(tm);
    LLVMTargetDataRef layout = LLVMCreateTargetDataLayout(tm);
    LLVMSetTarget(mod, triple);
    LLVMSetModuleDataLayout(mod, layout);
    LLVMDisposeTargetData(layout);
    LLVMDisposeMessage(triple);
    if (verify(mod) || optimise(mod, tm, opt_level)) {
        LLVMDisposeModule(mod);
        return NULL;
    }
    return mod;
}

static int emit_text(LLVMModuleRef mod, FILE *out) {
    char *text = LLVMPrintModuleToString(mod);
    int rc = fputs(text, out) < 0 ? -1 : 0;
    LLVMDisposeMessage(text);
    if (rc)
        cg_error("cannot write the LLVM IR");
    return rc;
}

static int emit_assembly(LLVMModuleRef mod, LLVMTargetMachineRef tm, FILE *out) {
    LLVMMemoryBufferRef buffer;
    char *message = NULL;
    if (LLVMTargetMachineEmitToMemoryBuffer(tm, mod, LLVMAssemblyFile, &message, &buffer)) {
        cg_error("cannot generate assembly: %s", message);
        LLVMDisposeMessage(message);
        return -1;
    }
    size_t size = LLVMGetBufferSize(buffer);
    int rc = fwrite(LLVMGetBufferStart(buffer), 1, size, out) == size ? 0 : -1;
    LLVMDisposeMemoryBuffer(buffer);
    if (rc)
        cg_error("cannot write the assembly");
    return rc;
}

static int emit_object(LLVMModuleRef mod, LLVMTargetMachineRef tm, const char *path) {
    char *message = NULL;
    char *file = strdup(path); /* the C API takes a non-const name */
    if (!file) {
        cg_error("out of memory");
        return -1;
    }
    int failed = LLVMTargetMachineEmitToFile(tm, mod, file, LLVMObjectFile, &message);
    free(file);
    if (failed) {
        cg_error("cannot write %s: %s", path, message);
        LLVMDisposeMessage(message);
        return -1;
    }
    return 0;
}

int cg_compile(const ir_graph *g, const entries *es, const mem_plan *plan, const cg_options *opt) {
    LLVMTargetMachineRef tm = cg_target_machine(opt);
    if (!tm)
        return -1;
    LLVMContextRef ctx = LLVMContextCreate();
    LLVMModuleRef mod = cg_build_optimised(ctx, tm, g, es, plan, opt->opt_level);
    int rc = mod ? 0 : -1;
    if (rc == 0 && opt->emit_llvm)
        rc = emit_text(mod, opt->emit_llvm);
    /* The object first: code generation may rewrite the module's IR as it
     * goes, and the object is what gets linked. */
    if (rc == 0 && opt->obj_path)
        rc = emit_object(mod, tm, opt->obj_path);
    if (rc == 0 && opt->emit_asm)
        rc = emit_assembly(mod, tm, opt->emit_asm);
    if (mod)
        LLVMDisposeModule(mod);
    LLVMContextDispose(ctx);
    LLVMDisposeTargetMachine(tm);
    return rc;
}
