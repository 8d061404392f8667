/*
 * mdlc.c - the compiler driver.
 *
 * Reads a .mdl file, runs the pipeline as one straight list of stages
 * (parse and lower in main, then run_passes: autodiff, optimizer,
 * simplify, entry points, fusion, memory plan, code generation) and links
 * the objects with the runtime into one executable through the system C
 * compiler.  --emit stops after a stage and prints what it made
 * (dump_stage), which is how every stage is tested.
 *
 * -c makes a library instead (build_library): the kernels, the descriptor
 * with the generated C API (codegen.h: cg_write_embed_api) and what they
 * need of libmdlrt.a, linked into one relocatable object whose only
 * global symbols are the API's, and the API's header beside it
 * (docs/embedding.md).
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

/* Open MPI's libraries for --mpi, '|'-separated (driver/CMakeLists.txt);
 * empty when mdl was configured without them. */
#ifndef MDL_MPI_LIBRARIES
#define MDL_MPI_LIBRARIES ""
#endif

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
    int library;     /* -c: model.o and model.h */
    int jobs;        /* 0: one per online CPU */
    int mpi;         /* --mpi: data-parallel training over Open MPI */
    const char *cpu; /* NULL: the host's CPU and features */
} options;

static void usage(FILE *out) {
    fprintf(out,
            "usage: mdlc FILE.mdl [-c] [-o OUTPUT] [-O0|-O1|-O2|-O3] [--emit=KIND] [--max-batch N] [--mpi]\n"
            "\n"
            "Compiles a model to a standalone executable that trains, evaluates and predicts\n"
            "(run it with --help to see how).\n"
            "\n"
            "options:\n"
            "  -o FILE          output path (default: the input's name without .mdl;\n"
            "                   with --emit, standard output)\n"
            "  -c               a C library instead: FILE.o and FILE.h (FILE from -o, or\n"
            "                   the input's name), the model's C API; link the object\n"
            "                   with -lm -lpthread (see docs/embedding.md)\n"
            "  -O0 .. -O3       LLVM optimisation level (default -O2)\n"
            "  --emit=KIND      stop early and print: ast, ir (forward graph), grad (the\n"
            "                   whole training graph after autodiff, optimizer and\n"
            "                   simplification), plan (memory plan), dot (Graphviz of the\n"
            "                   training graph), fused (elementwise fusion groups),\n"
            "                   llvm, asm, obj (object file)\n"
            "  --max-batch N    largest batch the executable accepts (default: the\n"
            "                   train statement's batch)\n"
            "  -j N             compile on N threads (default: one per CPU)\n"
            "  --mpi            link with Open MPI for data-parallel training: started\n"
            "                   by mpirun -np N, `train` runs on N ranks, each on its\n"
            "                   shard of every batch, the gradients summed over the\n"
            "                   ranks (see docs/mpi.md)\n"
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
        } else if (strcmp(a, "-c") == 0) {
            o->library = 1;
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
        } else if (strcmp(a, "--mpi") == 0) {
            o->mpi = 1;
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
    if (o->library && o->emit != EMIT_EXE) {
        diag_plain("-c makes a library; it does not go with --emit");
        return -1;
    }
    if (o->library && o->mpi) {
        diag_plain("--mpi makes an executable that mpirun starts; it does not go with -c");
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

/* The files between the code generator and the executable, in a
 * temporary directory in $TMPDIR, as cc does. */
typedef struct temp_files {
    char dir[PATH_MAX / 2];
    char obj[PATH_MAX / 2 + 32];      /* the first object; the others are named after it */
    char desc[PATH_MAX / 2 + 32];     /* the descriptor's C file */
    char desc_obj[PATH_MAX / 2 + 32]; /* and its object */
    char objs[CG_MAX_OBJECTS][PATH_MAX / 2 + 32];
    int n_objs;
    /* -c: the header the descriptor includes, the relocatable link and
     * the symbols it keeps */
    char header[PATH_MAX / 2 + 32], linked[PATH_MAX / 2 + 32], keep[PATH_MAX / 2 + 32];
} temp_files;

#define API_HEADER "model_api.h" /* -c: in the temporary directory */

static int make_temp_files(temp_files *t) {
    const char *tmp = getenv("TMPDIR");
    snprintf(t->dir, sizeof t->dir, "%s/mdlc-XXXXXX", tmp && *tmp && strlen(tmp) < sizeof t->dir - 16 ? tmp : "/tmp");
    if (!mkdtemp(t->dir)) {
        diag_plain("cannot create a temporary directory: %s", strerror(errno));
        return -1;
    }
    snprintf(t->obj, sizeof t->obj, "%s/model.o", t->dir);
    snprintf(t->desc, sizeof t->desc, "%s/model_desc.c", t->dir);
    snprintf(t->desc_obj, sizeof t->desc_obj, "%s/model_desc.o", t->dir);
    snprintf(t->header, sizeof t->header, "%s/" API_HEADER, t->dir);
    snprintf(t->linked, sizeof t->linked, "%s/model_linked.o", t->dir);
    snprintf(t->keep, sizeof t->keep, "%s/model_api.syms", t->dir);
    t->n_objs = 0;
    return 0;
}

static void remove_temp_files(const options *o, const temp_files *t) {
    if (o->keep_temps) {
        if (o->verbose)
            fprintf(stderr, "mdlc: kept %s\n", t->dir);
        return;
    }
    unlink(t->obj);
    for (int i = 1; i < t->n_objs; i++)
        unlink(t->objs[i]);
    unlink(t->desc);
    unlink(t->desc_obj);
    unlink(t->header);
    unlink(t->linked);
    unlink(t->keep);
    rmdir(t->dir);
}

/* The descriptor's C file; with -c also the API's definitions, which
 * include the header t->header. */
static int write_descriptor(const options *o, const ir_graph *g, const entries *es, const mem_plan *plan,
                            int f64_entries, const temp_files *t) {
    const char *path = t->desc;
    FILE *f = fopen(path, "w");
    int ok = f && cg_write_descriptor(g, es, plan, f64_entries, f) == 0;
    if (ok && o->library) {
        char prefix[64];
        cg_embed_prefix(g, prefix, sizeof prefix);
        ok = cg_write_embed_api(g, prefix, API_HEADER, f) == 0;
    }
    if (f && fclose(f) != 0)
        ok = 0;
    if (!ok)
        diag_plain("cannot write %s", path);
    return ok ? 0 : -1;
}

/* Starts `cc -c` on the descriptor C file, which needs the runtime's
 * header; it runs while LLVM compiles the kernels.  The pid, or -1 after
 * an error message. */
static pid_t start_descriptor(const options *o, const temp_files *t) {
    char inc[PATH_MAX], lib[PATH_MAX], incflag[PATH_MAX + 3];
    if (find_runtime(inc, lib, sizeof inc) != 0) {
        diag_plain("cannot find the runtime library libmdlrt.a (set MDL_RUNTIME_DIR)");
        return -1;
    }
    snprintf(incflag, sizeof incflag, "-I%s", inc);
    char *argv[] = {(char *)c_compiler(), "-O1", "-w", incflag, "-c", "-o", (char *)t->desc_obj, (char *)t->desc, NULL};
    pid_t pid = spawn(argv, o->verbose);
    if (pid < 0)
        diag_plain("cannot start %s: %s", argv[0], strerror(errno));
    return pid;
}

/* --mpi: the runtime's MPI part, libmdlrt_mpi.a beside libmdlrt.a (lib). */
static int mpi_runtime(const char *lib, char *out, size_t size) {
    struct stat st;
    const char *slash = strrchr(lib, '/');
    snprintf(out, size, "%.*s/libmdlrt_mpi.a", slash ? (int)(slash - lib) : 1, slash ? lib : ".");
    if (MDL_MPI_LIBRARIES[0] && stat(out, &st) == 0)
        return 0;
    diag_plain("--mpi: this mdlc was built without Open MPI (apt-get install libopenmpi-dev, then configure "
               "and build mdl again): no %s",
               out);
    return -1;
}

/* Links the kernels' objects, the descriptor's object and the runtime
 * (with --mpi, its MPI part and Open MPI's library too). */
static int link_executable(const options *o, temp_files *t, const char *out) {
    char inc[PATH_MAX], lib[PATH_MAX];
    if (find_runtime(inc, lib, sizeof inc) != 0) {
        diag_plain("cannot find the runtime library libmdlrt.a (set MDL_RUNTIME_DIR)");
        return -1;
    }
    const char *cc = c_compiler();
    char *argv[24 + CG_MAX_OBJECTS];
    int n = 0;
    argv[n++] = (char *)cc;
    argv[n++] = "-O1";
    argv[n++] = "-w";
#ifdef MDL_EXTRA_LINK_FLAGS
    argv[n++] = MDL_EXTRA_LINK_FLAGS;
#endif
    argv[n++] = "-o";
    argv[n++] = (char *)out;
    for (int i = 0; i < t->n_objs; i++)
        argv[n++] = t->objs[i];
    argv[n++] = t->desc_obj;
    char mpi_lib[PATH_MAX + 16], mpi_libs[] = MDL_MPI_LIBRARIES;
    if (o->mpi) { /* all of it: it defines the runtime's rt_parallel_ops */
        if (mpi_runtime(lib, mpi_lib, sizeof mpi_lib))
            return -1;
        argv[n++] = "-Wl,--whole-archive";
        argv[n++] = mpi_lib;
        argv[n++] = "-Wl,--no-whole-archive";
    }
    argv[n++] = lib;
    for (char *next, *at = mpi_libs; o->mpi && *at && n < 20 + CG_MAX_OBJECTS; at = next) {
        next = strchr(at, '|');
        next = next ? (*next = 0, next + 1) : at + strlen(at);
        argv[n++] = at;
    }
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

/* The code generator's options from the command line's. */
static cg_options codegen_options(const options *o) {
    cg_options co = {0};
    co.opt_level = o->opt_level;
    co.cpu = o->cpu;
    co.features = o->cpu ? "" : NULL; /* a named CPU brings its own features */
    co.f64_entries = !o->no_f64;
    co.parallel = 1; /* the executable links the runtime, which has mdl_rt_sgemm */
    co.distributed = o->mpi;
    if (o->library)
        co.f64_entries = 0; /* gradcheck's, which the library has not */
    return co;
}

/* The executable's code as objects (codegen.h: cg_compile_parts), on -j
 * threads or one per online CPU; their paths in t->objs. */
static int compile_objects(const options *o, const ir_graph *g, const entries *es, const mem_plan *plan,
                           const cg_options *co, temp_files *t) {
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    int jobs = o->jobs ? o->jobs : cpus < 1 ? 1 : cpus > 8 ? 8 : (int)cpus;
    int rc = cg_compile_parts(g, es, plan, co, jobs, &t->n_objs);
    for (int i = 0; i < t->n_objs; i++)
        cg_part_path(co->obj_path, i, t->objs[i], sizeof t->objs[i]);
    if (o->verbose && rc == 0)
        fprintf(stderr, "mdlc: %d objects on %d threads\n", t->n_objs, jobs);
    return rc;
}

/* The default output: the input's base name without .mdl. */
static char *default_output(const char *input) {
    const char *base = strrchr(input, '/');
    base = base ? base + 1 : input;
    char *out = ir_xstrdup(base);
    size_t n = strlen(out);
    if (n > 4 && strcmp(out + n - 4, ".mdl") == 0)
        out[n - 4] = 0;
    else {
        char *with = ir_xmalloc(n + 5);
        snprintf(with, n + 5, "%s.out", out);
        free(out);
        out = with;
    }
    return out;
}

/* The descriptor goes to cc first, which compiles it while LLVM compiles
 * the kernels; their objects are then in t. */
static int compile_all(const options *o, const ir_graph *g, const entries *es, const mem_plan *plan,
                       temp_files *t) {
    cg_options co = codegen_options(o);
    co.obj_path = t->obj;
    if (write_descriptor(o, g, es, plan, co.f64_entries, t) != 0)
        return -1;
    pid_t desc_cc = start_descriptor(o, t);
    if (desc_cc < 0)
        return -1;
    if (compile_objects(o, g, es, plan, &co, t) != 0) {
        wait_child(desc_cc); /* reap it */
        return -1;
    }
    stage(o, "codegen");
    int rc = wait_child(desc_cc);
    if (rc != 0) {
        diag_plain("the C compiler '%s' failed on the model's descriptor (exit %d; set CC to another)", c_compiler(),
                   rc);
        return -1;
    }
    return 0;
}

/* Then one link with the runtime. */
static int compile_and_link(const options *o, const ir_graph *g, const entries *es, const mem_plan *plan,
                            temp_files *t) {
    if (compile_all(o, g, es, plan, t) != 0)
        return -1;
    char *out = o->output ? ir_xstrdup(o->output) : default_output(o->input);
    int status = link_executable(o, t, out);
    stage(o, "link");
    free(out);
    return status;
}

/* The executable, built in a temporary directory removed afterwards
 * (unless --keep-temps). */
static int build_executable(const options *o, const ir_graph *g, const entries *es, const mem_plan *plan) {
    temp_files t;
    if (make_temp_files(&t) != 0)
        return -1;
    int status = compile_and_link(o, g, es, plan, &t);
    remove_temp_files(o, &t);
    return status;
}

/* -c: the path of model.o and model.h without the extension: -o's (less
 * a final .o) or the input's name without .mdl. */
static char *library_base(const options *o) {
    char *base = o->output ? ir_xstrdup(o->output) : default_output(o->input);
    size_t n = strlen(base);
    if (n > 2 && strcmp(base + n - 2, ".o") == 0)
        base[n - 2] = 0;
    return base;
}

/* The API's header (cg_write_embed_header) at path. */
static int write_header(const ir_graph *g, const char *prefix, const char *path) {
    FILE *f = fopen(path, "w");
    int ok = f && cg_write_embed_header(g, prefix, f) == 0;
    if (f && fclose(f) != 0)
        ok = 0;
    if (!ok)
        diag_plain("cannot write %s: %s", path, strerror(errno));
    return ok ? 0 : -1;
}

static int write_symbols(const char *prefix, const char *path) {
    FILE *f = fopen(path, "w");
    int ok = f && cg_write_embed_symbols(prefix, f) == 0;
    if (f && fclose(f) != 0)
        ok = 0;
    if (!ok)
        diag_plain("cannot write %s: %s", path, strerror(errno));
    return ok ? 0 : -1;
}

/* One relocatable object of the kernels, the descriptor with the API and
 * the members of libmdlrt.a they reach (not rt_main.o: nothing calls
 * main), then every global symbol but the API's made local, so that the
 * runtime's names (and zlib's inside it) meet neither the program's nor
 * those of another model's object. */
static int link_library(const options *o, const temp_files *t, const char *out) {
    char inc[PATH_MAX], lib[PATH_MAX];
    if (find_runtime(inc, lib, sizeof inc) != 0) {
        diag_plain("cannot find the runtime library libmdlrt.a (set MDL_RUNTIME_DIR)");
        return -1;
    }
    const char *cc = c_compiler();
    char *argv[16 + CG_MAX_OBJECTS];
    int n = 0;
    argv[n++] = (char *)cc;
    argv[n++] = "-r";
    argv[n++] = "-nostdlib";
    argv[n++] = "-o";
    argv[n++] = (char *)t->linked;
    for (int i = 0; i < t->n_objs; i++)
        argv[n++] = (char *)t->objs[i];
    argv[n++] = (char *)t->desc_obj;
    argv[n++] = lib;
    argv[n] = NULL;
    int rc = run(argv, o->verbose);
    if (rc != 0) {
        diag_plain("linking the library object with %s -r failed (exit %d)", cc, rc);
        return -1;
    }
    const char *objcopy = getenv("OBJCOPY");
    objcopy = objcopy && *objcopy ? objcopy : "objcopy";
    char keep[PATH_MAX];
    snprintf(keep, sizeof keep, "--keep-global-symbols=%s", t->keep);
    char *copy[] = {(char *)objcopy, keep, (char *)t->linked, (char *)out, NULL};
    rc = run(copy, o->verbose);
    if (rc != 0) {
        diag_plain("hiding the runtime's symbols in '%s' with %s failed (exit %d; set OBJCOPY to binutils' objcopy)",
                   out, objcopy, rc);
        return -1;
    }
    return 0;
}

static int compile_library(const options *o, const ir_graph *g, const entries *es, const mem_plan *plan,
                           temp_files *t) {
    char prefix[64];
    cg_embed_prefix(g, prefix, sizeof prefix);
    char *base = library_base(o);
    size_t n = strlen(base) + 3;
    char *obj = ir_xmalloc(n), *header = ir_xmalloc(n);
    snprintf(obj, n, "%s.o", base);
    snprintf(header, n, "%s.h", base);
    int status = write_header(g, prefix, t->header) == 0 && write_symbols(prefix, t->keep) == 0 &&
                         compile_all(o, g, es, plan, t) == 0 && link_library(o, t, obj) == 0 &&
                         write_header(g, prefix, header) == 0
                     ? 0
                     : -1;
    stage(o, "link");
    free(obj);
    free(header);
    free(base);
    return status;
}

/* -c: model.o and model.h, built in a temporary directory as the
 * executable is. */
static int build_library(const options *o, const ir_graph *g, const entries *es, const mem_plan *plan) {
    temp_files t;
    if (make_temp_files(&t) != 0)
        return -1;
    int status = compile_library(o, g, es, plan, &t);
    remove_temp_files(o, &t);
    return status;
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

/* --emit=llvm, asm or obj: what the code generator made, and stop. */
static int emit_code(const options *o, const ir_graph *g, const entries *es, const mem_plan *plan) {
    cg_options co = codegen_options(o);
    FILE *f = NULL;
    if (o->emit == EMIT_OBJ)
        co.obj_path = o->output ? o->output : "model.o";
    else if (!(f = open_emit(o)))
        return -1;
    else if (o->emit == EMIT_LLVM)
        co.emit_llvm = f;
    else
        co.emit_asm = f;
    int status = cg_compile(g, es, plan, &co);
    if (status == 0)
        stage(o, "codegen");
    close_emit(f);
    return status;
}

/* --emit for a graph stage: print what the stage made, and stop.  es and
 * plan are NULL before the stage that makes them. */
static int dump_stage(const options *o, const ir_graph *g, const entries *es, const mem_plan *plan) {
    FILE *f = open_emit(o);
    if (!f)
        return -1;
    if (o->emit == EMIT_GRAD || o->emit == EMIT_DOT) {
        /* the training graph without what no entry computes or reads */
        unsigned char *live = entries_live_in_any(g, es);
        if (o->emit == EMIT_GRAD)
            ir_dump(g, live, f);
        else
            ir_dump_dot(g, live, es->fused_into, f); /* after fusion: its kernels are drawn */
        free(live);
    } else if (o->emit == EMIT_IR) {
        ir_dump(g, NULL, f);
    } else if (o->emit == EMIT_FUSED) {
        fuse_dump(g, es, f);
    } else {
        mp_plan_dump(g, es, plan, f);
    }
    close_emit(f);
    return 0;
}

static int verified(ir_graph *g, const char *which) {
    if (ir_verify(g) == 0)
        return 1;
    diag_plain("internal error: invalid %s graph: %s", which, g->error);
    return 0;
}

/* An error in the user's model that a pass found. */
static int model_error(const options *o, const ir_graph *g) {
    diag_plain("%s: %s", o->input, g->error);
    return -1;
}

/* Each round exposes the next (a fold feeds an identity feeds CSE); a
 * handful reach the fixpoint on every model we have seen. */
static void simplify_fully(ir_graph *g) {
    for (int round = 0; round < 16 && simplify(g) > 0; round++)
        ;
}

/* The whole pass order, from a lowered graph to the requested artefact;
 * each --emit kind stops after the stage it names. */
static int run_passes(const options *o, ir_graph *g, entries *es, mem_plan *plan) {
    if (!verified(g, "forward"))
        return -1;
    if (o->emit == EMIT_IR)
        return dump_stage(o, g, NULL, NULL);
    if (g->loss >= 0 && (ad_differentiate(g) != 0 || opt_lower(g) != 0))
        return model_error(o, g);
    stage(o, "autodiff");
    simplify_fully(g);
    stage(o, "simplify");
    if (entries_build(g, es) != 0)
        return model_error(o, g);
    if (!verified(g, "training"))
        return -1;
    if (o->emit == EMIT_GRAD)
        return dump_stage(o, g, es, NULL);
    /* after entries (fusion needs every entry's live nodes and roots) and
     * before the plan (interior nodes of a group get no buffer) */
    fuse_elementwise(g, es);
    epilogue_fuse(g, es);
    stage(o, "fuse");
    if (o->emit == EMIT_FUSED || o->emit == EMIT_DOT)
        return dump_stage(o, g, es, NULL);
    mp_plan_build(g, es, plan);
    stage(o, "plan");
    if (o->emit == EMIT_PLAN)
        return dump_stage(o, g, es, plan);
    if (o->emit == EMIT_EXE)
        return o->library ? build_library(o, g, es, plan) : build_executable(o, g, es, plan);
    return emit_code(o, g, es, plan);
}

/* The back half: the passes, with what they made freed however they end. */
static int compile_graph(const options *o, ir_graph *g) {
    entries es = {0};
    mem_plan plan = {0};
    int status = run_passes(o, g, &es, &plan);
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
