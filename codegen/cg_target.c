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
 * The f64 variant (cg_options.f64_entries) is built as a second module,
 * optimised on its own with a cheaper pipeline (F64_PIPELINE) and linked
 * into the optimised f32 module, so the f32 code is exactly what it would
 * be without it and the extra compile time stays small: those kernels run
 * only in gradcheck, on a batch of a few samples.
 *
 * Every LLVM object made here is disposed here, on error paths too.
 */
#include <llvm-c/Analysis.h>
#include <llvm-c/Linker.h>
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

/* AVX-512F: in the target machine's features (the host's, or those given),
 * or implied by a named CPU that has it. */
static int has_avx512(LLVMTargetMachineRef tm) {
    char *features = LLVMGetTargetMachineFeatureString(tm);
    char *cpu = LLVMGetTargetMachineCPU(tm);
    int yes = strstr(features, "+avx512f") != NULL;
    static const char *const cpus[] = {"skylake-avx512", "cascadelake",    "cooperlake", "icelake-server",
                                       "icelake-client", "sapphirerapids", "tigerlake",  "znver4",
                                       "x86-64-v4",      NULL};
    for (int i = 0; cpus[i] && !strstr(features, "-avx512f"); i++)
        yes |= strcmp(cpu, cpus[i]) == 0;
    LLVMDisposeMessage(features);
    LLVMDisposeMessage(cpu);
    return yes;
}

unsigned cg_build_flags(LLVMTargetMachineRef tm, const cg_options *opt) {
    return (opt->parallel ? CG_BUILD_PARALLEL : 0u) | (has_avx512(tm) ? CG_BUILD_AVX512 : 0u) |
           (opt->distributed ? CG_BUILD_DIST : 0u);
}

int cg_verify(LLVMModuleRef mod) {
    char *message = NULL;
    if (LLVMVerifyModule(mod, LLVMReturnStatusAction, &message)) {
        cg_error("internal: generated LLVM IR is invalid: %s", message);
        LLVMDisposeMessage(message);
        return -1;
    }
    LLVMDisposeMessage(message);
    return 0;
}

/* The f64 kernels: O1, which promotes and simplifies the loops but neither
 * vectorises nor unrolls them, then optnone, which makes the backend
 * compile them as at -O0 (fast instruction selection and register
 * allocation).  Measured on fashion_cnn at -O2 (CPU seconds of mdlc
 * --emit=obj): 1.68 without the f64 entries, 2.73 with them at O1, 2.31
 * with O1 + optnone; gradcheck at batch 8 ran 1.3 s and 1.8 s.  A lighter
 * IR pipeline (sroa, instcombine, licm, indvars) saved 0.3 s more but made
 * gradcheck 3x slower. */
#define F64_PIPELINE "default<O1>"

int cg_run_pipeline(LLVMModuleRef mod, LLVMTargetMachineRef tm, const char *pipeline) {
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

/* The same layer used twice, or a piece of the forward pass copied into
 * another entry, is built as functions identical but for their names:
 * LLVM's mergefunc keeps one of each before anything is optimised, so
 * each is optimised and compiled once.  The code that runs is the same
 * (a call goes to an identical body), so results do not change; the
 * small GPT compiles in two thirds of the time. */
int cg_merge_duplicates(LLVMModuleRef mod, LLVMTargetMachineRef tm) {
    cg_set_target(mod, tm);
    return cg_run_pipeline(mod, tm, "mergefunc");
}

int cg_optimise(LLVMModuleRef mod, LLVMTargetMachineRef tm, int opt_level) {
    char pipeline[32];
    snprintf(pipeline, sizeof pipeline, "default<O%d>", opt_level < 0 ? 0 : opt_level > 3 ? 3 : opt_level);
    return cg_run_pipeline(mod, tm, pipeline);
}

void cg_set_target(LLVMModuleRef mod, LLVMTargetMachineRef tm) {
    char *triple = LLVMGetTargetMachineTriple(tm);
    LLVMTargetDataRef layout = LLVMCreateTargetDataLayout(tm);
    LLVMSetTarget(mod, triple);
    LLVMSetModuleDataLayout(mod, layout);
    LLVMDisposeTargetData(layout);
    LLVMDisposeMessage(triple);
}

int cg_optimise_f64(LLVMModuleRef mod, LLVMTargetMachineRef tm, int opt_level) {
    if (opt_level > 0 ? cg_run_pipeline(mod, tm, F64_PIPELINE) : cg_optimise(mod, tm, 0))
        return -1;
    /* No pass runs on them after this (a module it is linked into is not
     * optimised again), so optnone affects only the backend. */
    LLVMContextRef ctx = LLVMGetModuleContext(mod);
    for (LLVMValueRef fn = LLVMGetFirstFunction(mod); fn && opt_level > 0; fn = LLVMGetNextFunction(fn)) {
        if (LLVMIsDeclaration(fn))
            continue;
        static const char *const names[2] = {"optnone", "noinline"};
        for (int i = 0; i < 2; i++) {
            unsigned kind = LLVMGetEnumAttributeKindForName(names[i], strlen(names[i]));
            LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(ctx, kind, 0));
        }
    }
    return 0;
}

/* The f64 variant, optimised, linked into mod (which it then belongs to). */
static int add_f64_variant(LLVMContextRef ctx, LLVMTargetMachineRef tm, LLVMModuleRef mod, const ir_graph *g,
                           const entries *es, int opt_level) {
    entries es64;
    mem_plan plan64;
    cg_plan_f64(g, es, &es64, &plan64);
    LLVMModuleRef mod64 = cg_build_module(ctx, g, &es64, &plan64, CG_BUILD_F64);
    mp_plan_free(&plan64);
    if (!mod64)
        return -1;
    cg_set_target(mod64, tm);
    if (cg_verify(mod64) || cg_merge_duplicates(mod64, tm) || cg_optimise_f64(mod64, tm, opt_level)) {
        LLVMDisposeModule(mod64);
        return -1;
    }
    /* LLVMLinkModules2 takes mod64 whether it succeeds or not. */
    if (LLVMLinkModules2(mod, mod64)) {
        cg_error("internal: cannot link the f64 entries into the module");
        return -1;
    }
    return 0;
}

LLVMModuleRef cg_build_optimised(LLVMContextRef ctx, LLVMTargetMachineRef tm, const ir_graph *g, const entries *es,
                                 const mem_plan *plan, const cg_options *opt) {
    LLVMModuleRef mod = cg_build_module(ctx, g, es, plan, cg_build_flags(tm, opt));
    if (!mod)
        return NULL;
    cg_set_target(mod, tm);
    if (cg_verify(mod) || cg_merge_duplicates(mod, tm) || cg_optimise(mod, tm, opt->opt_level) ||
        (opt->f64_entries && add_f64_variant(ctx, tm, mod, g, es, opt->opt_level))) {
        LLVMDisposeModule(mod);
        return NULL;
    }
    return mod;
}

int cg_emit_text(LLVMModuleRef mod, FILE *out) {
    char *text = LLVMPrintModuleToString(mod);
    int rc = fputs(text, out) < 0 ? -1 : 0;
    LLVMDisposeMessage(text);
    if (rc)
        cg_error("cannot write the LLVM IR");
    return rc;
}

LLVMMemoryBufferRef cg_emit_to_memory(LLVMModuleRef mod, LLVMTargetMachineRef tm, LLVMCodeGenFileType type,
                                      const char *what) {
    LLVMMemoryBufferRef buffer;
    char *message = NULL;
    if (LLVMTargetMachineEmitToMemoryBuffer(tm, mod, type, &message, &buffer)) {
        cg_error("cannot generate %s: %s", what, message);
        LLVMDisposeMessage(message);
        return NULL;
    }
    return buffer;
}

static int emit_assembly(LLVMModuleRef mod, LLVMTargetMachineRef tm, FILE *out) {
    LLVMMemoryBufferRef buffer = cg_emit_to_memory(mod, tm, LLVMAssemblyFile, "assembly");
    if (!buffer)
        return -1;
    size_t size = LLVMGetBufferSize(buffer);
    int rc = fwrite(LLVMGetBufferStart(buffer), 1, size, out) == size ? 0 : -1;
    LLVMDisposeMemoryBuffer(buffer);
    if (rc)
        cg_error("cannot write the assembly");
    return rc;
}

int cg_emit_object(LLVMModuleRef mod, LLVMTargetMachineRef tm, const char *path) {
    char *message = NULL;
    char *file = ir_xstrdup(path); /* the C API takes a non-const name */
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
    LLVMModuleRef mod = cg_build_optimised(ctx, tm, g, es, plan, opt);
    int rc = mod ? 0 : -1;
    if (rc == 0 && opt->emit_llvm)
        rc = cg_emit_text(mod, opt->emit_llvm);
    /* The object first: code generation may rewrite the module's IR as it
     * goes, and the object is what gets linked. */
    if (rc == 0 && opt->obj_path)
        rc = cg_emit_object(mod, tm, opt->obj_path);
    if (rc == 0 && opt->emit_asm)
        rc = emit_assembly(mod, tm, opt->emit_asm);
    if (mod)
        LLVMDisposeModule(mod);
    LLVMContextDispose(ctx);
    LLVMDisposeTargetMachine(tm);
    return rc;
}
