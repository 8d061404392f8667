/*
 * mdlc.c - the compiler driver.
 *
 * Reads a .mdl file, runs the pipeline as one straight list of stages
 * (parse, lower, autodiff, optimizer, simplify, entry points, memory plan,
 * code generation) and links the object with the runtime into one
 * executable through the system C compiler.  --emit stops after a stage
 * and prints what it made, which is how every stage is tested.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ast.h"
#include "codegen.h"
#include "ir.h"
#include "lower.h"
#include "passes.h"

#ifndef MDL_VERSION
#define MDL_VERSION "0.0.0"
#endif

extern const char mdl_prelude_source[];

typedef enum { EMIT_EXE, EMIT_AST, EMIT_IR, EMIT_GRAD, EMIT_PLAN, EMIT_DOT, EMIT_LLVM, EMIT_ASM, EMIT_OBJ,
               EMIT_FUSED } emit_kind;

typedef struct options {
    const char *input;
    const char *output;
    emit_kind emit;
    int opt_level;
    int64_t max_batch;
    int verbose;
    int keep_temps;
    int time_stages;
    int no_f64;
    int jobs;        /* 0: one per online CPU */
    const char *cpu; /* NULL: the host's CPU and features */
} options;

static void usage(FILE *out) {
    fprintf(out,
            "usage: mdlc FILE.mdl [-o OUTPUT] [-O0|-O1|-O2|-O3] [--emit=KIND] [--max-batch N]\n"
            "\n"
            "Compiles a model to a standalone executable that trains, evaluates and predicts\n"
            "(run it with --help to see how).\n"
            "\n"
            "options:\n"
            "  -o FILE          output path (default: the input's name without .mdl;\n"
            "                   with --emit, standard output)\n"
            "  -O0 .. -O3       LLVM optimisation level (default -O2)\n"
            "  --emit=KIND      stop early and print: ast, ir (forward graph), grad (the\n"
            "                   whole training graph after autodiff, optimizer and\n"
            "                   simplification), plan (memory plan), dot (Graphviz of the\n"
            "                   training graph), fused (elementwise fusion groups),\n"
            "                   llvm, asm, obj (object file)\n"
            "  --max-batch N    largest batch the executable accepts (default: the\n"
            "                   train statement's batch)\n"
            "  -j N             compile on N threads (default: one per CPU)\n"
            "  -v               print each stage and how long it took\n"
            "  --keep-temps     keep the object and descriptor files (printed with -v)\n"
            "  --cpu=NAME       the CPU to generate code for: native (default: this\n"
            "                   machine's CPU and features, like -march=native), generic\n"
            "                   (any x86-64), or an LLVM CPU name (x86-64-v3, znver3,\n"
            "                   skylake-avx512, ...); the executable needs that CPU\n"
            "  --no-f64-check   leave out the float64 copies of eval_step and grad_step\n"
            "                   that `gradcheck` runs (it then checks in float32)\n"
            "  --version, --help\n");
}

static int parse_args(int argc, char **argv, options *o) {
    memset(o, 0, sizeof *o);
    o->opt_level = 2;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(stdout);
            exit(0);
        } else if (strcmp(a, "--version") == 0) {
            printf("mdlc %s\n", MDL_VERSION);
            exit(0);
        } else if (strcmp(a, "-o") == 0 && i + 1 < argc) {
            o->output = argv[++i];
        } else if (strncmp(a, "-O", 2) == 0 && a[2] >= '0' && a[2] <= '3' && !a[3]) {
            o->opt_level = a[2] - '0';
        } else if (strncmp(a, "--emit=", 7) == 0) {
            static const char *const kinds[] = {"exe", "ast", "ir",   "grad", "plan",
                                                "dot", "llvm", "asm", "obj",  "fused"};
            int found = 0;
            for (int k = 0; k < 10; k++)
                if (strcmp(a + 7, kinds[k]) == 0)
                    o->emit = (emit_kind)k, found = 1;
            if (!found) {
                diag_plain("unknown --emit kind '%s' (ast, ir, grad, plan, fused, dot, llvm, asm, obj)", a + 7);
                return -1;
            }
        } else if (strcmp(a, "--max-batch") == 0 && i + 1 < argc) {
            char *end;
            long long v = strtoll(argv[++i], &end, 10);
            if (*end || v <= 0 || v > (1 << 24)) {
                diag_plain("--max-batch needs a positive integer, got '%s'", argv[i]);
                return -1;
            }
            o->max_batch = v;
        } else if (strncmp(a, "-j", 2) == 0) {
            const char *v = a[2] ? a + 2 : i + 1 < argc ? argv[++i] : "";
            char *end;
            long n = strtol(v, &end, 10);
            if (!*v || *end || n < 1 || n > 64) {
                diag_plain("-j needs a number of threads from 1 to 64, got '%s'", v);
                return -1;
            }
            o->jobs = (int)n;
        } else if (strcmp(a, "-v") == 0) {
            o->verbose = 1;
        } else if (strcmp(a, "--no-f64-check") == 0) {
            o->no_f64 = 1;
        } else if (strncmp(a, "--cpu=", 6) == 0) {
            if (!a[6]) {
                diag_plain("--cpu needs a name: native, generic, x86-64-v3, znver3, ...");
                return -1;
            }
            /* LLVM aborts on a CPU name it does not know, so only these */
            static const char *const cpus[] = {
                "native", "generic", "x86-64", "x86-64-v2", "x86-64-v3", "x86-64-v4", "haswell", "broadwell",
                "skylake", "skylake-avx512", "cascadelake", "icelake-server", "sapphirerapids", "znver1",
                "znver2", "znver3", "znver4", NULL};
            int known = 0;
            for (int k = 0; cpus[k]; k++)
                known |= strcmp(cpus[k], a + 6) == 0;
            if (!known) {
                diag_plain("unknown --cpu '%s' (known: native, generic, x86-64, x86-64-v2..v4, haswell, broadwell, "
                           "skylake, skylake-avx512, cascadelake, icelake-server, sapphirerapids, znver1..4)",
                           a + 6);
                return -1;
            }
            o->cpu = strcmp(a + 6, "native") == 0 ? NULL : strcmp(a + 6, "generic") == 0 ? "x86-64" : a + 6;
        } else if (strcmp(a, "--keep-temps") == 0) {
            o->keep_temps = 1;
        } else if (a[0] == '-' && a[1]) {
            diag_plain("unknown option '%s' (see mdlc --help)", a);
            return -1;
        } else if (o->input) {
            diag_plain("more than one input file ('%s' and '%s')", o->input, a);
            return -1;
        } else {
            o->input = a;
        }
    }
    if (!o->input) {
        diag_plain("no input file (usage: mdlc FILE.mdl -o OUTPUT)");
        return -1;
    }
    return 0;
}

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static double stage_start;
static void stage(const options *o, const char *name) {
    double t = now();
    if (o->verbose && stage_start > 0)
        fprintf(stderr, "mdlc: %-10s %7.1f ms\n", name, 1e3 * (t - stage_start));
    stage_start = t;
}

/* Where the runtime's header and library are: $MDL_RUNTIME_DIR, the
 * build tree mdlc was built in, or ../lib/mdl beside an installed mdlc. */
static int find_runtime(char *inc, char *lib, size_t size) {
    const char *env = getenv("MDL_RUNTIME_DIR");
    struct stat st;
    if (env && *env) {
        snprintf(inc, size, "%.3000s", env);
        snprintf(lib, size, "%.3000s/libmdlrt.a", env);
        return stat(lib, &st) == 0 ? 0 : -1;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = 0;
        char *slash = strrchr(self, '/');
        if (slash)
            *slash = 0;
        snprintf(inc, size, "%.3000s/../lib/mdl", self);
        snprintf(lib, size, "%.3000s/../lib/mdl/libmdlrt.a", self);
        if (stat(lib, &st) == 0)
            return 0;
    }
#ifdef MDL_RUNTIME_INCLUDE
    snprintf(inc, size, "%s", MDL_RUNTIME_INCLUDE);
    snprintf(lib, size, "%s", MDL_RUNTIME_LIBRARY);
    if (stat(lib, &st) == 0)
        return 0;
#endif
    return -1;
}

/* Starts argv[0] with argv; its pid, or -1. */
static pid_t spawn(char *const argv[], int verbose) {
    if (verbose) {
        fprintf(stderr, "mdlc:");
        for (int i = 0; argv[i]; i++)
            fprintf(stderr, " %s", argv[i]);
        fprintf(stderr, "\n");
    }
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        execvp(argv[0], argv);
        fprintf(stderr, "mdlc: error: cannot run '%s': %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    return pid;
}

/* The exit status of a spawned child, or -1. */
static int wait_child(pid_t pid) {
    int status;
    if (pid < 0 || waitpid(pid, &status, 0) < 0)
        return -1;
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static int run(char *const argv[], int verbose) { return wait_child(spawn(argv, verbose)); }

static const char *c_compiler(void) {
    const char *cc = getenv("CC");
    return cc && *cc ? cc : "cc";
}

/* Starts `cc -c` on the descriptor C file, which needs the runtime's
 * header; it runs while LLVM compiles the kernels.  The pid, or -1 after
 * an error message. */
static pid_t start_descriptor(const options *o, const char *desc, const char *desc_obj) {
    char inc[PATH_MAX], lib[PATH_MAX], incflag[PATH_MAX + 3];
    if (find_runtime(inc, lib, sizeof inc) != 0) {
        diag_plain("cannot find the runtime library libmdlrt.a (set MDL_RUNTIME_DIR)");
        return -1;
    }
    snprintf(incflag, sizeof incflag, "-I%s", inc);
    char *argv[] = {(char *)c_compiler(), "-O1", "-w", incflag, "-c", "-o", (char *)desc_obj, (char *)desc, NULL};
    pid_t pid = spawn(argv, o->verbose);
    if (pid < 0)
        diag_plain("cannot start %s: %s", argv[0], strerror(errno));
    return pid;
}

/* Links the kernels' objects, the descriptor's object and the runtime. */
static int link_executable(const options *o, char *const *objs, int n_objs, const char *desc_obj, const char *out) {
    char inc[PATH_MAX], lib[PATH_MAX];
    if (find_runtime(inc, lib, sizeof inc) != 0) {
        diag_plain("cannot find the runtime library libmdlrt.a (set MDL_RUNTIME_DIR)");
        return -1;
    }
    const char *cc = c_compiler();
    char *argv[16 + CG_MAX_OBJECTS];
    int n = 0;
    argv[n++] = (char *)cc;
    argv[n++] = "-O1";
    argv[n++] = "-w";
#ifdef MDL_EXTRA_LINK_FLAGS
    argv[n++] = MDL_EXTRA_LINK_FLAGS;
#endif
    argv[n++] = "-o";
    argv[n++] = (char *)out;
    for (int i = 0; i < n_objs; i++)
        argv[n++] = objs[i];
    argv[n++] = (char *)desc_obj;
    argv[n++] = lib;
    argv[n++] = "-lm";
    argv[n++] = "-lpthread";
    argv[n] = NULL;
    int rc = run(argv, o->verbose);
    if (rc != 0) {
        diag_plain("linking '%s' with %s failed (exit %d)", out, cc, rc);
        return -1;
    }
    return 0;
}

/* The executable's code as objects (codegen.h: cg_compile_parts), on -j
 * threads or one per online CPU; their paths in objs[0 .. *n). */
static int compile_objects(const options *o, const ir_graph *g, const entries *es, const mem_plan *plan,
                           const cg_options *co, char (*objs)[PATH_MAX / 2 + 32], int *n) {
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int jobs = o->jobs ? o->jobs : cpus < 1 ? 1 : cpus > 8 ? 8 : (int)cpus;
    int rc = cg_compile_parts(g, es, plan, co, jobs, n);
    for (int i = 0; i < *n; i++)
        cg_part_path(co->obj_path, i, objs[i], sizeof objs[i]);
    if (o->verbose && rc == 0)
        fprintf(stderr, "mdlc: %d objects on %d threads\n", *n, jobs);
    return rc;
}

/* The default output: the input's base name without .mdl. */
static char *default_output(const char *input) {
    const char *base = strrchr(input, '/');
    base = base ? base + 1 : input;
    char *out = strdup(base);
    size_t n = strlen(out);
    if (n > 4 && strcmp(out + n - 4, ".mdl") == 0)
        out[n - 4] = 0;
    else {
        char *with = malloc(n + 5);
        snprintf(with, n + 5, "%s.out", out);
        free(out);
        out = with;
    }
    return out;
}

static FILE *open_emit(const options *o) {
    if (!o->output || strcmp(o->output, "-") == 0)
        return stdout;
    FILE *f = fopen(o->output, "w");
    if (!f)
        diag_plain("cannot write '%s': %s", o->output, strerror(errno));
    return f;
}

static void close_emit(FILE *f) {
    if (f && f != stdout)
        fclose(f);
}

/* The back half: from a lowered graph to the requested artefact. */
static int compile_graph(const options *o, ir_graph *g) {
    if (ir_verify(g) != 0) {
        diag_plain("internal error: invalid forward graph: %s", g->error);
        return -1;
    }
    if (o->emit == EMIT_IR) {
        FILE *f = open_emit(o);
        if (!f)
            return -1;
        ir_dump(g, NULL, f);
        close_emit(f);
        return 0;
    }
    if (g->loss >= 0) {
        if (ad_differentiate(g) != 0 || opt_lower(g) != 0) {
            diag_plain("%s: %s", o->input, g->error);
            return -1;
        }
        stage(o, "autodiff");
    }
    /* Each round exposes the next (a fold feeds an identity feeds CSE);
     * a handful reach the fixpoint on every model we have seen. */
    for (int round = 0; round < 16 && simplify(g) > 0; round++)
        ;
    stage(o, "simplify");
    entries es;
    if (entries_build(g, &es) != 0) {
        diag_plain("%s: %s", o->input, g->error);
        entries_free(&es);
        return -1;
    }
    if (ir_verify(g) != 0) {
        diag_plain("internal error: invalid training graph: %s", g->error);
        entries_free(&es);
        return -1;
    }
    int status = 0;
    unsigned char *any = calloc((size_t)g->n_nodes, 1);
    for (int k = 0; k < ENTRY_COUNT; k++)
        for (int i = 0; es.e[k].present && i < g->n_nodes; i++)
            any[i] |= es.e[k].live[i];
    if (o->emit == EMIT_GRAD || o->emit == EMIT_DOT) {
        FILE *f = open_emit(o);
        if (!f)
            status = -1;
        else if (o->emit == EMIT_GRAD)
            ir_dump(g, any, f);
        else
            ir_dump_dot(g, any, f);
        close_emit(f);
        free(any);
        entries_free(&es);
        return status;
    }
    free(any);
    /* After entries (fusion needs every entry's live nodes and roots) and
     * before the plan (interior nodes of a group get no buffer). */
    if (fuse_elementwise(g, &es) != 0) {
        diag_plain("out of memory while fusing");
        entries_free(&es);
        return -1;
    }
    stage(o, "fuse");
    if (o->emit == EMIT_FUSED) {
        FILE *f = open_emit(o);
        if (f)
            fuse_dump(g, &es, f);
        close_emit(f);
        entries_free(&es);
        return f ? 0 : -1;
    }
    mem_plan plan;
    if (mp_plan_build(g, &es, &plan) != 0) {
        diag_plain("out of memory while planning");
        entries_free(&es);
        return -1;
    }
    stage(o, "plan");
    if (o->emit == EMIT_PLAN) {
        FILE *f = open_emit(o);
        if (f)
            mp_plan_dump(g, &es, &plan, f);
        close_emit(f);
        status = f ? 0 : -1;
    } else {
        status = -1;
        /* in $TMPDIR, as cc does */
        const char *tmp = getenv("TMPDIR");
        char dir[PATH_MAX / 2];
        snprintf(dir, sizeof dir, "%s/mdlc-XXXXXX", tmp && *tmp && strlen(tmp) < sizeof dir - 16 ? tmp : "/tmp");
        char obj[PATH_MAX / 2 + 32], desc[PATH_MAX / 2 + 32], desc_obj[PATH_MAX / 2 + 32];
        char objs[CG_MAX_OBJECTS][PATH_MAX / 2 + 32];
        char *obj_list[CG_MAX_OBJECTS];
        int n_objs = 0;
        if (!mkdtemp(dir)) {
            diag_plain("cannot create a temporary directory: %s", strerror(errno));
        } else {
            snprintf(obj, sizeof obj, "%s/model.o", dir);
            snprintf(desc, sizeof desc, "%s/model_desc.c", dir);
            snprintf(desc_obj, sizeof desc_obj, "%s/model_desc.o", dir);
            cg_options co = {0};
            co.opt_level = o->opt_level;
            co.cpu = o->cpu;
            co.features = o->cpu ? "" : NULL; /* a named CPU brings its own features */
            co.f64_entries = !o->no_f64;
            co.parallel = 1; /* the executable links the runtime, which has mdl_rt_sgemm */
            FILE *emit = NULL;
            if (o->emit == EMIT_LLVM || o->emit == EMIT_ASM) {
                emit = open_emit(o);
                if (o->emit == EMIT_LLVM)
                    co.emit_llvm = emit;
                else
                    co.emit_asm = emit;
            } else {
                co.obj_path = o->emit == EMIT_OBJ ? (o->output ? o->output : "model.o") : obj;
            }
            /* The descriptor first: the C compiler works on it while LLVM
             * compiles the kernels. */
            pid_t desc_cc = -1;
            if (o->emit == EMIT_EXE) {
                FILE *df = fopen(desc, "w");
                int ok = df && cg_write_descriptor(g, &es, &plan, co.f64_entries, df) == 0;
                if (df && fclose(df) != 0)
                    ok = 0;
                if (!ok)
                    diag_plain("cannot write %s", desc);
                desc_cc = ok ? start_descriptor(o, desc, desc_obj) : -1;
            }
            if ((o->emit == EMIT_LLVM || o->emit == EMIT_ASM) && !emit) {
                status = -1;
            } else if (o->emit == EMIT_EXE && desc_cc < 0) {
                status = -1;
            } else if (o->emit == EMIT_EXE ? compile_objects(o, g, &es, &plan, &co, objs, &n_objs) == 0
                                           : cg_compile(g, &es, &plan, &co) == 0) {
                stage(o, "codegen");
                status = 0;
                if (o->emit == EMIT_EXE) {
                    int rc = wait_child(desc_cc);
                    desc_cc = -1;
                    if (rc != 0) {
                        diag_plain("the C compiler '%s' failed on the model's descriptor (exit %d; set CC to another)",
                                   c_compiler(), rc);
                        status = -1;
                    }
                    char *out = o->output ? strdup(o->output) : default_output(o->input);
                    for (int i = 0; i < n_objs; i++)
                        obj_list[i] = objs[i];
                    if (status == 0)
                        status = link_executable(o, obj_list, n_objs, desc_obj, out);
                    stage(o, "link");
                    free(out);
                }
            }
            if (desc_cc >= 0)
                wait_child(desc_cc); /* codegen failed: reap it */
            close_emit(emit);
            if (o->keep_temps) {
                if (o->verbose)
                    fprintf(stderr, "mdlc: kept %s\n", dir);
            } else {
                unlink(obj);
                for (int i = 1; i < n_objs; i++)
                    unlink(objs[i]);
                unlink(desc);
                unlink(desc_obj);
                rmdir(dir);
            }
        }
    }
    mp_plan_free(&plan);
    entries_free(&es);
    return status;
}

int main(int argc, char **argv) {
    options o;
    if (parse_args(argc, argv, &o) != 0)
        return 2;
    stage_start = now();
    src_file *file = src_open(o.input);
    if (!file) {
        diag_plain("cannot open '%s': %s", o.input, strerror(errno));
        return 1;
    }
    src_file *prelude_file = src_from_string("<prelude>", mdl_prelude_source);
    ast_arena *arena = ast_arena_new();
    int status = 1;
    ast_program *prelude = parse_program(prelude_file, arena);
    if (diag_error_count()) {
        diag_plain("internal error: the prelude does not parse");
        goto done;
    }
    ast_program *prog = parse_program(file, arena);
    stage(&o, "parse");
    if (diag_error_count())
        goto done;
    if (o.emit == EMIT_AST) {
        FILE *f = open_emit(&o);
        if (f) {
            ast_dump(prog, f);
            close_emit(f);
            status = 0;
        }
        goto done;
    }
    lower_options lo = {o.max_batch};
    ir_graph *g = lower_program(prog, prelude, &lo);
    stage(&o, "lower");
    if (g) {
        status = compile_graph(&o, g) == 0 ? 0 : 1;
        ir_graph_free(g);
    }
done:
    ast_arena_free(arena);
    src_free(prelude_file);
    src_free(file);
    if (status && diag_error_count() > 0)
        fprintf(stderr, "%d error%s generated.\n", diag_error_count(), diag_error_count() == 1 ? "" : "s");
    return status;
}
