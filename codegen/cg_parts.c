/*
 * cg_parts.c - compiling the module in parallel, as several object files.
 *
 * Almost all of mdlc's time is LLVM optimising and compiling the kernels,
 * one function each and all noinline, so they can be compiled apart.  The
 * module (and the f64 variant's) is built once, every internal function
 * made external with hidden visibility (the executable still exports
 * nothing), and written as bitcode.  The functions are dealt into parts by
 * their size in instructions, largest first to the lightest part.  Each
 * part is a job: a thread parses the bitcode into a context of its own,
 * marks the functions of other parts available_externally and drops their
 * bodies (elim-avail-extern) so they are only declared, optimises what is
 * left with the usual pipeline and writes an object.  The linker joins the
 * objects.  Each function is optimised and compiled exactly as in one
 * module, since no pass looks across functions that are all noinline and
 * external; only the set of objects differs with the number of jobs.
 *
 * Jobs run largest first on up to `jobs` threads, each with its own
 * LLVMContext and target machine (LLVM is thread-safe across contexts).
 * An f64 instruction costs about half an f32 one (its pipeline is O1 and
 * its backend optnone), which is how the parts are sized.
 */
#include <llvm-c/BitReader.h>
#include <llvm-c/BitWriter.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cg_internal.h"

enum { MAX_PARTS = CG_MAX_OBJECTS, MIN_PART = 250 };

typedef struct job {
    const cg_options *opt;
    LLVMMemoryBufferRef bitcode; /* the whole module, shared read-only */
    const int *part_of;          /* per function in module order; -1: a declaration */
    int n_functions, part, f64;
    double cost;
    char path[4096];
    int rc;
} job;

typedef struct pool {
    job *jobs;
    int n_jobs, next;
    pthread_mutex_t lock;
} pool;

static int64_t instructions(LLVMValueRef fn) {
    int64_t n = 0;
    for (LLVMBasicBlockRef b = LLVMGetFirstBasicBlock(fn); b; b = LLVMGetNextBasicBlock(b))
        for (LLVMValueRef i = LLVMGetFirstInstruction(b); i; i = LLVMGetNextInstruction(i))
            n++;
    return n;
}

/* Makes every defined function linkable from the other parts and deals
 * them into at most *n_parts parts, at least MIN_PART instructions each:
 * part_of[i] for function i in module order (-1 for declarations), the
 * parts' sizes times `weight` added to cost[], *n_parts the parts used. */
static int *deal(LLVMModuleRef mod, int *n_parts, double weight, double *cost, int *n_functions) {
    int n = 0;
    for (LLVMValueRef fn = LLVMGetFirstFunction(mod); fn; fn = LLVMGetNextFunction(fn))
        n++;
    int *part_of = ir_xmalloc(sizeof *part_of * (size_t)n);
    int64_t *size = ir_xmalloc(sizeof *size * (size_t)n);
    int *order = ir_xmalloc(sizeof *order * (size_t)n);
    int i = 0, defined = 0;
    int64_t total = 0;
    for (LLVMValueRef fn = LLVMGetFirstFunction(mod); fn; fn = LLVMGetNextFunction(fn), i++) {
        part_of[i] = -1;
        size[i] = LLVMIsDeclaration(fn) ? 0 : instructions(fn);
        total += size[i];
        if (LLVMIsDeclaration(fn))
            continue;
        order[defined++] = i;
        if (LLVMGetLinkage(fn) == LLVMInternalLinkage || LLVMGetLinkage(fn) == LLVMPrivateLinkage) {
            LLVMSetLinkage(fn, LLVMExternalLinkage);
            LLVMSetVisibility(fn, LLVMHiddenVisibility);
        }
    }
    /* largest first (insertion sort: a few hundred functions) */
    for (int a = 1; a < defined; a++)
        for (int b = a; b > 0 && size[order[b]] > size[order[b - 1]]; b--) {
            int t = order[b];
            order[b] = order[b - 1];
            order[b - 1] = t;
        }
    if (total / MIN_PART < *n_parts)
        *n_parts = total / MIN_PART > 1 ? (int)(total / MIN_PART) : 1;
    for (int a = 0; a < defined; a++) {
        int lightest = 0;
        for (int p = 1; p < *n_parts; p++)
            if (cost[p] < cost[lightest])
                lightest = p;
        part_of[order[a]] = lightest;
        cost[lightest] += weight * (double)size[order[a]];
    }
    free(size);
    free(order);
    *n_functions = n;
    return part_of;
}

static int run_job(job *j) {
    LLVMTargetMachineRef tm = cg_target_machine(j->opt);
    if (!tm)
        return -1;
    LLVMContextRef ctx = LLVMContextCreate();
    LLVMModuleRef mod = NULL;
    int rc = 0;
    if (LLVMParseBitcodeInContext2(ctx, j->bitcode, &mod)) {
        cg_error("internal: cannot read back the module's bitcode");
        rc = -1;
    }
    int i = 0;
    for (LLVMValueRef fn = rc ? NULL : LLVMGetFirstFunction(mod); fn; fn = LLVMGetNextFunction(fn), i++) {
        if (i >= j->n_functions || (j->part_of[i] < 0) != !!LLVMIsDeclaration(fn)) {
            cg_error("internal: the module's functions changed in bitcode");
            rc = -1;
            break;
        }
        if (j->part_of[i] >= 0 && j->part_of[i] != j->part)
            LLVMSetLinkage(fn, LLVMAvailableExternallyLinkage);
    }
    if (rc == 0)
        rc = cg_run_pipeline(mod, tm, "elim-avail-extern");
    if (rc == 0)
        rc = j->f64 ? cg_optimise_f64(mod, tm, j->opt->opt_level) : cg_optimise(mod, tm, j->opt->opt_level);
    if (rc == 0)
        rc = cg_emit_object(mod, tm, j->path);
    if (mod)
        LLVMDisposeModule(mod);
    LLVMContextDispose(ctx);
    LLVMDisposeTargetMachine(tm);
    return rc;
}

static void *worker(void *arg) {
    pool *p = arg;
    for (;;) {
        pthread_mutex_lock(&p->lock);
        int i = p->next < p->n_jobs ? p->next++ : -1;
        pthread_mutex_unlock(&p->lock);
        if (i < 0)
            return NULL;
        p->jobs[i].rc = run_job(&p->jobs[i]);
    }
}

void cg_part_path(const char *base, int i, char *out, size_t size) {
    if (i == 0)
        snprintf(out, size, "%s", base);
    else
        snprintf(out, size, "%s.%d.o", base, i);
}

/* The module built, verified and written as bitcode, or NULL. */
static LLVMMemoryBufferRef bitcode_of(LLVMModuleRef mod, LLVMTargetMachineRef tm) {
    cg_set_target(mod, tm);
    if (cg_verify(mod))
        return NULL;
    LLVMMemoryBufferRef buf = LLVMWriteBitcodeToMemoryBuffer(mod);
    if (!buf)
        cg_error("internal: cannot write the module as bitcode");
    return buf;
}

int cg_compile_parts(const ir_graph *g, const entries *es, const mem_plan *plan, const cg_options *opt, int jobs,
                     int *n_objects) {
    *n_objects = 0;
    jobs = jobs < 1 ? 1 : jobs > MAX_PARTS / 6 ? MAX_PARTS / 6 : jobs; /* 4 f32 parts and 2 f64 parts per thread */
    LLVMTargetMachineRef tm = cg_target_machine(opt);
    if (!tm)
        return -1;
    LLVMContextRef ctx = LLVMContextCreate();
    LLVMMemoryBufferRef code[2] = {NULL, NULL};
    int *part_of[2] = {NULL, NULL}, n_functions[2] = {0, 0};
    double cost[MAX_PARTS] = {0};
    int rc = -1, n_parts[2] = {0, 0};

    /* f32 in up to 2 parts per thread, f64 in up to 1: parts of about
     * equal cost, and a few more of them than threads so that the last
     * job to start is a short one. */
    LLVMModuleRef mod = cg_build_module(ctx, g, es, plan, cg_build_flags(tm, opt));
    if (mod && (cg_verify(mod) || cg_merge_duplicates(mod, tm))) {
        LLVMDisposeModule(mod);
        mod = NULL;
    }
    if (mod) {
        n_parts[0] = jobs == 1 ? 1 : 4 * jobs;
        part_of[0] = deal(mod, &n_parts[0], 1.0, cost, &n_functions[0]);
        code[0] = bitcode_of(mod, tm);
        LLVMDisposeModule(mod);
    }
    if (code[0] && opt->f64_entries) {
        entries es64;
        mem_plan plan64;
        cg_plan_f64(g, es, &es64, &plan64);
        LLVMModuleRef mod64 = cg_build_module(ctx, g, &es64, &plan64, CG_BUILD_F64);
        mp_plan_free(&plan64);
        if (mod64 && (cg_verify(mod64) || cg_merge_duplicates(mod64, tm))) {
            LLVMDisposeModule(mod64);
            mod64 = NULL;
        }
        if (mod64) {
            n_parts[1] = jobs == 1 ? 1 : 2 * jobs;
            part_of[1] = deal(mod64, &n_parts[1], 0.5, cost + n_parts[0], &n_functions[1]);
            code[1] = bitcode_of(mod64, tm);
            LLVMDisposeModule(mod64);
        }
    }
    if (code[0] && (code[1] || !opt->f64_entries)) {
        job js[MAX_PARTS];
        int n = 0;
        for (int v = 0; v < 2; v++)
            for (int p = 0; p < n_parts[v]; p++) {
                job *j = &js[n];
                memset(j, 0, sizeof *j);
                j->opt = opt;
                j->bitcode = code[v];
                j->part_of = part_of[v];
                j->n_functions = n_functions[v];
                j->part = p;
                j->f64 = v;
                j->cost = cost[n];
                cg_part_path(opt->obj_path, n, j->path, sizeof j->path);
                n++;
            }
        /* largest first */
        for (int a = 1; a < n; a++)
            for (int b = a; b > 0 && js[b].cost > js[b - 1].cost; b--) {
                job t = js[b];
                js[b] = js[b - 1];
                js[b - 1] = t;
            }
        pool p = {js, n, 0, PTHREAD_MUTEX_INITIALIZER};
        pthread_t threads[MAX_PARTS];
        int started = 0;
        for (int t = 1; t < jobs && t < n; t++) {
            pthread_attr_t attr;
            pthread_attr_init(&attr);
            pthread_attr_setstacksize(&attr, 16 << 20); /* LLVM recurses deeply */
            if (pthread_create(&threads[started], &attr, worker, &p) == 0)
                started++;
            pthread_attr_destroy(&attr);
        }
        worker(&p);
        for (int t = 0; t < started; t++)
            pthread_join(threads[t], NULL);
        rc = 0;
        for (int i = 0; i < n; i++)
            rc |= js[i].rc;
        *n_objects = n;
    }
    for (int v = 0; v < 2; v++) {
        if (code[v])
            LLVMDisposeMemoryBuffer(code[v]);
        free(part_of[v]);
    }
    LLVMContextDispose(ctx);
    LLVMDisposeTargetMachine(tm);
    return rc ? -1 : 0;
}
