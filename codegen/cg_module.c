/*
 * cg_module.c - the module: one kernel per scheduled node, one function per
 * entry point calling them in schedule order.
 *
 * A kernel takes its buffers as pointer arguments, so one kernel can serve
 * every entry even though the memory plan puts temporaries at different
 * offsets in each.  What can differ between entries is how the buffers
 * overlap, and that decides the kernel's signature (its "variant"):
 *   - an input at exactly the output's offset (the plan computing in place)
 *     is not passed at all: the kernel reads it through the output pointer,
 *     so LLVM sees one base and the same index and still vectorises;
 *   - an input disjoint from the output is marked noalias, and so is the
 *     output when no input partly overlaps it, which spares the vectoriser
 *     its run-time overlap checks;
 *   - anything else (partial overlap) is passed as a plain pointer.
 * Overlap is judged on each buffer's extent at max batch, which contains
 * its extent at any smaller batch.  A fused group with outputs besides its
 * root (passes/fuse.c) has a kernel with several output pointers; each
 * input is judged against each of them (an input at an output's offset is
 * read through that output's pointer), and an output is noalias when no
 * input partly overlaps it and no other output overlaps it at all.
 *
 * The f64 variant (cg_build_module with f64 set) is the same code with
 * every f32 tensor a double (t.real), i32 unchanged: eval_step_f64 and
 * grad_step_f64 for gradcheck, which needs a loss accurate enough for
 * finite differences with steps far below the kinks of relu and max.  It
 * is a separate module over a separate plan (cg_plan_f64), so the f32 code
 * cannot change; its kernels and entries carry a .f64 / _f64 suffix, and
 * MATMUL, whose f32 kernel is hand-vectorised, has a plain loop kernel
 * of its own (cg_matmul_f64.c).
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cg_internal.h"

/* The most inputs a kernel takes: a fused group's (a node has at most 3);
 * the most outputs: a fused group's root and its outputs. */
#define CG_MAX_KERNEL_INPUTS FUSE_MAX_INPUTS
#define CG_MAX_KERNEL_OUTPUTS (1 + FUSE_MAX_OUTPUTS)
_Static_assert(CG_MAX_KERNEL_INPUTS >= 3, "a kernel takes at least a node's 3 inputs");

/* How the buffers of a kernel's call lie against each other in one entry:
 * per input CG_DISJOINT (from every output), CG_OVERLAP (partly, with
 * some output) or CG_SAME + j (exactly at output j's offset); per output
 * whether it is noalias.  Zeroed before it is filled, so two compare with
 * memcmp. */
enum { CG_DISJOINT, CG_OVERLAP, CG_SAME };
typedef struct cg_signature {
    unsigned char in[CG_MAX_KERNEL_INPUTS];
    unsigned char out_noalias[CG_MAX_KERNEL_OUTPUTS];
} cg_signature;

typedef struct cg_variants {
    int count;
    cg_signature signature[ENTRY_COUNT];
    LLVMValueRef fn[ENTRY_COUNT];
} cg_variants;

typedef struct cg_module {
    LLVMContextRef ctx;
    LLVMModuleRef mod;
    cg_types t;
    int f64; /* the f64 variant */
    int parallel, avx512;
    int dist; /* CG_BUILD_DIST */
    const ir_graph *g;
    const entries *es;
    const mem_plan *plan;
    cg_variants *kernels;  /* per node */
    LLVMValueRef *pointer; /* per node: arena + offset, in the entry being written */
    LLVMBuilderRef top;    /* inside a scan's loop: makes pointers at the top of the entry block */
} cg_module;

void cg_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "mdlc: error: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
}

int cg_output_node(const ir_graph *g, int id) { return g->nodes[id].op == IR_ASSIGN ? g->nodes[id].inputs[0] : id; }

int cg_reads_input(const ir_graph *g, int id, int i) {
    const ir_node *n = &g->nodes[id];
    if (g->nodes[n->inputs[i]].op == IR_CONST || n->op == IR_NUMEL)
        return 0;
    return n->op != IR_ASSIGN || i == 1;
}

/* ---------------------------------------------------------- the op table */

/* Leaves are values already in the arena (or folded into their users); a
 * scheduled one has nothing to compute. */
static int cg_kernel_nothing(cg_kernel *k) {
    (void)k;
    return 0;
}
#define cg_kernel_input cg_kernel_nothing
#define cg_kernel_param cg_kernel_nothing
#define cg_kernel_hyper cg_kernel_nothing

/* A CONST normally has no buffer; should the plan give it one, fill it. */
static int cg_kernel_const(cg_kernel *k) {
    const ir_shape *s = &k->node->shape;
    LLVMValueRef v = k->node->dtype == IR_I32 ? LLVMConstInt(k->t.i32, (unsigned long long)(int64_t)k->node->value, 1)
                                              : LLVMConstReal(k->t.real, k->node->value);
    cg_loop i = cg_loop_begin(k, cg_dims_product(k, s, 0, s->rank), "i");
    cg_store(k, v, k->out, i.index);
    cg_loop_end(k, &i);
    return 0;
}

int cg_kernel_numel(cg_kernel *k);
int cg_kernel_reduce_sum(cg_kernel *k);
int cg_kernel_reduce_max(cg_kernel *k);
int cg_kernel_sum_to(cg_kernel *k);
int cg_kernel_broadcast(cg_kernel *k);
int cg_kernel_reshape(cg_kernel *k);
int cg_kernel_matmul(cg_kernel *k);
int cg_kernel_assign(cg_kernel *k);
int cg_kernel_argmax(cg_kernel *k);
int cg_kernel_one_hot(cg_kernel *k);
int cg_kernel_gather(cg_kernel *k);
int cg_kernel_scatter_add(cg_kernel *k);
int cg_kernel_transpose(cg_kernel *k);
int cg_kernel_slice(cg_kernel *k);
int cg_kernel_pad(cg_kernel *k);
int cg_kernel_concat(cg_kernel *k);
int cg_kernel_iota(cg_kernel *k);
int cg_kernel_conv2d(cg_kernel *k);
int cg_kernel_conv2d_grad_input(cg_kernel *k);
int cg_kernel_conv2d_grad_weight(cg_kernel *k);
int cg_kernel_max_pool2d(cg_kernel *k);
int cg_kernel_max_pool2d_grad(cg_kernel *k);
int cg_kernel_max_pool2d_pick(cg_kernel *k);
int cg_kernel_avg_pool2d(cg_kernel *k);
int cg_kernel_avg_pool2d_grad(cg_kernel *k);
int cg_kernel_dropout(cg_kernel *k);
int cg_kernel_scan(cg_kernel *k);
int cg_kernel_scan_carry(cg_kernel *k);
int cg_kernel_scan_slice(cg_kernel *k);
int cg_kernel_scan_stack(cg_kernel *k);
int cg_kernel_scan_final(cg_kernel *k);

#define CG_KERNEL_LEAF(name) cg_kernel_##name
#define CG_KERNEL_UNARY(name) cg_kernel_elementwise
#define CG_KERNEL_BINARY(name) cg_kernel_elementwise
#define CG_KERNEL_TERNARY(name) cg_kernel_elementwise
#define CG_KERNEL_REDUCE(name) cg_kernel_##name
#define CG_KERNEL_MOVE(name) cg_kernel_##name
#define CG_KERNEL_CONTRACT(name) cg_kernel_##name
#define CG_KERNEL_SINK(name) cg_kernel_##name
#define CG_KERNEL_INDEX(name) cg_kernel_##name
#define CG_KERNEL_WINDOW(name) cg_kernel_##name
#define CG_KERNEL_RANDOM(name) cg_kernel_##name
#define CG_KERNEL_LOOP(name) cg_kernel_##name
const cg_kernel_fn cg_kernels[IR_OP_COUNT] = {
#define OP(id, name, arity, class) [IR_##id] = CG_KERNEL_##class(name),
#include "ops.def"
#undef OP
};

/* ------------------------------------------------------------ aliasing */

static int64_t buffer_bytes(const cg_module *m, int id) {
    const ir_node *n = &m->g->nodes[id];
    return ir_shape_numel(&n->shape) * (n->dtype == IR_F32 && m->f64 ? 8 : 4);
}

/* The fused group whose root is node id, or NULL. */
static const fused_group *group_of(const cg_module *m, int id) {
    return m->es->group_at && m->es->group_at[id] >= 0 ? &m->es->groups[m->es->group_at[id]] : NULL;
}

/* The buffers of node id's kernel: the nodes it writes (out[0] the node,
 * or the PARAM an ASSIGN writes) and, per input, the node it reads through
 * a pointer or -1 (a CONST, or an input not read).  For the root of a
 * fused group, the group's root, its outputs and its inputs. */
typedef struct cg_operands {
    int n_out, n_in;
    int out[CG_MAX_KERNEL_OUTPUTS];
    int in[CG_MAX_KERNEL_INPUTS];
} cg_operands;

static cg_operands operands_of(const cg_module *m, int id) {
    const ir_node *n = &m->g->nodes[id];
    const fused_group *gr = group_of(m, id);
    cg_operands o;
    if (gr) {
        o.out[0] = gr->root;
        o.n_out = 1 + gr->n_outputs;
        for (int j = 0; j < gr->n_outputs; j++)
            o.out[1 + j] = gr->outputs[j];
        o.n_in = gr->n_inputs;
        for (int i = 0; i < gr->n_inputs; i++)
            o.in[i] = gr->inputs[i];
        return o;
    }
    o.out[0] = cg_output_node(m->g, id);
    o.n_out = 1;
    o.n_in = n->n_inputs;
    for (int i = 0; i < n->n_inputs; i++)
        o.in[i] = cg_reads_input(m->g, id, i) ? n->inputs[i] : -1;
    return o;
}

/* Whether train_step's kernel for node id is one --check-numerics checks. */
static int is_checked(const cg_module *m, int id) {
    const ir_node *n = &m->g->nodes[id];
    if (n->op == IR_ASSIGN || n->op == IR_SCAN || ir_in_loop(m->g, id))
        return 0;
    if (m->es->output_of && m->es->output_of[id] >= 0)
        return 0; /* written by its group's kernel, checked as its root */
    cg_operands o = operands_of(m, id);
    return m->g->nodes[o.out[0]].dtype == IR_F32 && m->plan->offset[ENTRY_TRAIN][o.out[0]] >= 0;
}

int cg_numerics_checks(const ir_graph *g, const entries *es, const mem_plan *plan, cg_check **out) {
    const entry *en = &es->e[ENTRY_TRAIN];
    *out = NULL;
    if (!en->present)
        return 0;
    cg_module m;
    memset(&m, 0, sizeof m);
    m.g = g;
    m.es = es;
    m.plan = plan;
    cg_check *c = ir_xcalloc((size_t)en->n_sched + 1, sizeof *c);
    int n = 0;
    for (int s = 0; s < en->n_sched; s++) {
        int id = en->sched[s];
        if (!is_checked(&m, id))
            continue;
        cg_operands o = operands_of(&m, id);
        c[n].node = id;
        c[n].out = o.out[0]; /* a group's root; its other outputs are not checked */
        c[n].n_in = 0;
        for (int i = 0; i < o.n_in; i++)
            if (o.in[i] >= 0)
                c[n].in[c[n].n_in++] = o.in[i];
        n++;
    }
    *out = c;
    return n;
}

/* After a checked kernel of train_step:
 *     if (mdl_rt_numerics) mdl_rt_check(arena, batch, index)
 * (runtime/mdlrt.h); a load and a branch when the checks are off. */
static void emit_check(cg_module *m, LLVMBuilderRef b, LLVMValueRef *params, int index) {
    LLVMModuleRef mod = m->mod;
    LLVMValueRef flag = LLVMGetNamedGlobal(mod, "mdl_rt_numerics");
    if (!flag) {
        flag = LLVMAddGlobal(mod, m->t.i32, "mdl_rt_numerics");
        LLVMSetLinkage(flag, LLVMExternalLinkage);
    }
    LLVMTypeRef args[3] = {m->t.ptr, m->t.i64, m->t.i32};
    LLVMTypeRef fn_type = LLVMFunctionType(m->t.void_, args, 3, 0);
    LLVMValueRef fn = LLVMGetNamedFunction(mod, "mdl_rt_check");
    if (!fn)
        fn = LLVMAddFunction(mod, "mdl_rt_check", fn_type);
    LLVMValueRef on = LLVMBuildICmp(b, LLVMIntNE, LLVMBuildLoad2(b, m->t.i32, flag, "checking"),
                                    LLVMConstInt(m->t.i32, 0, 0), "");
    LLVMValueRef here = LLVMGetBasicBlockParent(LLVMGetInsertBlock(b));
    LLVMBasicBlockRef check = LLVMAppendBasicBlockInContext(m->ctx, here, "check");
    LLVMBasicBlockRef next = LLVMAppendBasicBlockInContext(m->ctx, here, "checked");
    LLVMBuildCondBr(b, on, check, next);
    LLVMPositionBuilderAtEnd(b, check);
    LLVMValueRef call_args[3] = {params[0], params[1], LLVMConstInt(m->t.i32, (unsigned long long)index, 0)};
    LLVMBuildCall2(b, fn_type, fn, call_args, 3, "");
    LLVMBuildBr(b, next);
    LLVMPositionBuilderAtEnd(b, next);
}

static int overlap(const cg_module *m, entry_kind e, int a, int b) {
    int64_t x = m->plan->offset[e][a], y = m->plan->offset[e][b];
    return x < y + buffer_bytes(m, b) && y < x + buffer_bytes(m, a);
}

/* How the buffers of o lie against each other in entry e (cg_signature). */
static cg_signature signature(const cg_module *m, entry_kind e, const cg_operands *o) {
    cg_signature sig;
    memset(&sig, 0, sizeof sig);
    for (int j = 0; j < o->n_out; j++) {
        sig.out_noalias[j] = 1;
        for (int l = 0; l < o->n_out; l++)
            if (l != j && overlap(m, e, o->out[j], o->out[l]))
                sig.out_noalias[j] = 0;
    }
    for (int i = 0; i < o->n_in; i++) {
        if (o->in[i] < 0)
            continue;
        for (int j = 0; j < o->n_out && sig.in[i] < CG_SAME; j++) {
            if (m->plan->offset[e][o->in[i]] == m->plan->offset[e][o->out[j]]) {
                sig.in[i] = (unsigned char)(CG_SAME + j);
            } else if (overlap(m, e, o->in[i], o->out[j])) {
                sig.in[i] = CG_OVERLAP;
                sig.out_noalias[j] = 0;
            }
        }
    }
    return sig;
}

/* --------------------------------------------------------------- kernels */

static void add_attribute(cg_module *m, LLVMValueRef fn, unsigned index, const char *name) {
    unsigned kind = LLVMGetEnumAttributeKindForName(name, strlen(name));
    LLVMAddAttributeAtIndex(fn, index, LLVMCreateEnumAttribute(m->ctx, kind, 0));
}

/* A kernel function void @n<id>.<what>[.<variant>][.f64](ptr out..., ptr
 * in..., i64 batch), internal, nounwind and noinline, with its parameters
 * bound in k: k->out (out[0]), k->batch, out[j] for each output and in[i]
 * for each input of o that it reads (a CG_SAME + j input is out[j];
 * NULL where it reads none).  A CG_DISJOINT input is noalias, and so is
 * an output as sig says. */
static LLVMValueRef declare_kernel(cg_module *m, cg_kernel *k, int id, const char *what, const cg_operands *o,
                                   const cg_signature *sig, int variant, LLVMValueRef *in, LLVMValueRef *out) {
    LLVMTypeRef params[CG_MAX_KERNEL_OUTPUTS + CG_MAX_KERNEL_INPUTS + 1];
    int n_params = 0, position[CG_MAX_KERNEL_INPUTS];
    for (int j = 0; j < o->n_out; j++)
        params[n_params++] = m->t.ptr;
    for (int i = 0; i < o->n_in; i++) {
        position[i] = -1;
        if (o->in[i] >= 0 && sig->in[i] < CG_SAME) {
            position[i] = n_params;
            params[n_params++] = m->t.ptr;
        }
    }
    params[n_params++] = m->t.i64;

    char name[64];
    const char *suffix = m->f64 ? ".f64" : "";
    if (variant)
        snprintf(name, sizeof name, "n%d.%s.%d%s", id, what, variant, suffix);
    else
        snprintf(name, sizeof name, "n%d.%s%s", id, what, suffix);
    LLVMValueRef fn = LLVMAddFunction(m->mod, name, LLVMFunctionType(m->t.void_, params, (unsigned)n_params, 0));
    LLVMSetLinkage(fn, LLVMInternalLinkage);
    add_attribute(m, fn, LLVMAttributeFunctionIndex, "nounwind");
    /* One copy of each loop nest, however many entries call it.  Inlined
     * into all four entries, the kernels made LLVM optimise and emit each
     * loop up to four times: house_price_robust took 1.3 s at -O2, 0.69 s
     * with this, for one call per kernel at run time. */
    add_attribute(m, fn, LLVMAttributeFunctionIndex, "noinline");

    for (int j = 0; j < o->n_out; j++) {
        char pname[16];
        out[j] = LLVMGetParam(fn, (unsigned)j);
        snprintf(pname, sizeof pname, j ? "out%d" : "out", j);
        LLVMSetValueName2(out[j], pname, strlen(pname));
        if (sig->out_noalias[j])
            add_attribute(m, fn, (unsigned)j + 1, "noalias");
    }
    k->out = out[0];
    for (int i = 0; i < o->n_in; i++) {
        in[i] = NULL;
        if (o->in[i] < 0)
            continue;
        if (sig->in[i] >= CG_SAME) {
            in[i] = out[sig->in[i] - CG_SAME];
            continue;
        }
        in[i] = LLVMGetParam(fn, (unsigned)position[i]);
        char pname[16];
        snprintf(pname, sizeof pname, "in%d", i);
        LLVMSetValueName2(in[i], pname, strlen(pname));
        if (sig->in[i] == CG_DISJOINT)
            add_attribute(m, fn, (unsigned)position[i] + 1, "noalias");
    }
    k->batch = LLVMGetParam(fn, (unsigned)n_params - 1);
    LLVMSetValueName2(k->batch, "batch", 5);
    return fn;
}

/* A kernel context for node `node` of the module's graph. */
static void kernel_init(cg_module *m, cg_kernel *k, int node) {
    memset(k, 0, sizeof *k);
    k->ctx = m->ctx;
    k->mod = m->mod;
    k->t = m->t;
    k->f64 = m->f64;
    k->parallel = m->parallel;
    k->avx512 = m->avx512;
    k->g = m->g;
    k->node = &m->g->nodes[node];
}

/* Opens the kernel's entry block for its emitter. */
static void kernel_begin(cg_module *m, cg_kernel *k) {
    k->entry_block = LLVMAppendBasicBlockInContext(m->ctx, k->fn, "entry");
    k->b = LLVMCreateBuilderInContext(m->ctx);
    LLVMPositionBuilderAtEnd(k->b, k->entry_block);
}

/* Closes the kernel after its emitter returned rc: k->fn, or NULL when the
 * emitter failed (rc != 0, reported already). */
static LLVMValueRef kernel_end(cg_kernel *k, int rc) {
    if (rc == 0)
        LLVMBuildRetVoid(k->b);
    LLVMDisposeBuilder(k->b);
    return rc == 0 ? k->fn : NULL;
}

/* Writes the kernel of node `id` for signature `sig`; NULL after an error. */
static LLVMValueRef emit_kernel(cg_module *m, int id, const cg_operands *o, const cg_signature *sig, int variant) {
    cg_kernel k;
    LLVMValueRef out[CG_MAX_KERNEL_OUTPUTS];
    kernel_init(m, &k, id);
    k.fn = declare_kernel(m, &k, id, ir_ops[k.node->op].name, o, sig, variant, k.in, out);
    kernel_begin(m, &k);
    cg_kernel_fn emit = cg_kernels[k.node->op];
    if (m->f64 && k.node->op == IR_MATMUL)
        emit = cg_kernel_matmul_f64;
    return kernel_end(&k, emit(&k));
}

/* void @n<root>.fused(ptr out..., ptr in..., i64 batch): the kernel of a
 * fused group, with the same aliasing rules over the group's buffers. */
static LLVMValueRef emit_group_kernel(cg_module *m, const fused_group *gr, const cg_operands *o,
                                      const cg_signature *sig, int variant) {
    cg_kernel k;
    kernel_init(m, &k, gr->root);
    LLVMValueRef in[FUSE_MAX_INPUTS], out[CG_MAX_KERNEL_OUTPUTS];
    k.fn = declare_kernel(m, &k, gr->root, "fused", o, sig, variant, in, out);
    kernel_begin(m, &k);
    if (epilogue_product(m->g, gr) >= 0) /* passes/epilogue.c */
        return kernel_end(&k, cg_kernel_matmul_epilogue(&k, m->es, gr, in, out + 1));
    return kernel_end(&k, cg_kernel_fused(&k, m->es, gr, in, out + 1));
}

/* The kernel of node `id` (with operands o) for signature sig, emitted on
 * first use. */
static LLVMValueRef kernel_for(cg_module *m, int id, const cg_operands *o, const cg_signature *sig) {
    cg_variants *v = &m->kernels[id];
    for (int i = 0; i < v->count; i++)
        if (memcmp(&v->signature[i], sig, sizeof *sig) == 0)
            return v->fn[i];
    const fused_group *gr = group_of(m, id);
    LLVMValueRef fn = gr ? emit_group_kernel(m, gr, o, sig, v->count) : emit_kernel(m, id, o, sig, v->count);
    if (fn) {
        v->signature[v->count] = *sig;
        v->fn[v->count++] = fn;
    }
    return fn;
}

/* ----------------------------------------------------------- entry points */

static int check_buffer(const cg_module *m, entry_kind e, int id, const char *entry_name) {
    if (m->plan->offset[e][id] >= 0)
        return 0;
    cg_error("%s: node %%%d (%s) has no buffer in the memory plan", entry_name, id, ir_ops[m->g->nodes[id].op].name);
    return -1;
}

/* %n<id> = arena + offset of node id, made once per entry.  Inside a
 * scan's loop it is made at the top of the entry block instead, so that
 * code after the loop may use it too. */
static LLVMValueRef arena_pointer(cg_module *m, LLVMBuilderRef b, LLVMValueRef arena, entry_kind e, int id) {
    if (!m->pointer[id]) {
        char name[24];
        LLVMValueRef offset = LLVMConstInt(m->t.i64, (unsigned long long)m->plan->offset[e][id], 0);
        snprintf(name, sizeof name, "n%d", id);
        if (m->top) {
            LLVMBasicBlockRef entry = LLVMGetEntryBasicBlock(LLVMGetBasicBlockParent(LLVMGetInsertBlock(b)));
            LLVMValueRef first = LLVMGetFirstInstruction(entry);
            if (first)
                LLVMPositionBuilderBefore(m->top, first);
            else
                LLVMPositionBuilderAtEnd(m->top, entry);
            b = m->top;
        }
        m->pointer[id] = LLVMBuildInBoundsGEP2(b, LLVMInt8TypeInContext(m->ctx), arena, &offset, 1, name);
    }
    return m->pointer[id];
}

/* call void @kernel(arena + offset(out), arena + offset(in)..., batch) */
static int emit_call(cg_module *m, LLVMBuilderRef b, const entry *en, entry_kind e, int id, LLVMValueRef *params) {
    cg_operands o = operands_of(m, id);
    for (int j = 0; j < o.n_out; j++)
        if (check_buffer(m, e, o.out[j], en->name))
            return -1;
    for (int i = 0; i < o.n_in; i++)
        if (o.in[i] >= 0 && check_buffer(m, e, o.in[i], en->name))
            return -1;
    cg_signature sig = signature(m, e, &o);
    LLVMValueRef fn = kernel_for(m, id, &o, &sig);
    if (!fn)
        return -1;
    LLVMValueRef args[CG_MAX_KERNEL_OUTPUTS + CG_MAX_KERNEL_INPUTS + 1];
    int n_args = 0;
    for (int j = 0; j < o.n_out; j++)
        args[n_args++] = arena_pointer(m, b, params[0], e, o.out[j]);
    for (int i = 0; i < o.n_in; i++)
        if (o.in[i] >= 0 && sig.in[i] < CG_SAME)
            args[n_args++] = arena_pointer(m, b, params[0], e, o.in[i]);
    args[n_args++] = params[1];
    LLVMBuildCall2(b, LLVMGlobalGetValueType(fn), fn, args, (unsigned)n_args, "");
    return 0;
}

/* ------------------------------------------------------------ recurrence */

/* A cg_kernel for cg_scan.c's copies, written into the entry point. */
static cg_kernel loop_writer(cg_module *m, LLVMBuilderRef b, LLVMValueRef *params) {
    cg_kernel k;
    memset(&k, 0, sizeof k);
    k.ctx = m->ctx, k.mod = m->mod, k.b = b, k.t = m->t, k.f64 = m->f64;
    k.fn = LLVMGetBasicBlockParent(LLVMGetInsertBlock(b));
    k.batch = params[1];
    return k;
}

/* The carries of a scan take their next values: each from a buffer of its
 * body (a carry whose next value is another carry would need a copy of its
 * own, which no model has needed: refused). */
static int update_carries(cg_module *m, cg_kernel *k, const entry *en, entry_kind e, int from, int to,
                          LLVMValueRef *params) {
    const ir_graph *g = m->g;
    for (int j = from; j < to; j++) {
        const ir_node *n = &g->nodes[en->sched[j]];
        if (n->op != IR_SCAN_CARRY || n->link == en->sched[j])
            continue;
        const ir_node *next = &g->nodes[n->link];
        LLVMValueRef dst = arena_pointer(m, k->b, params[0], e, en->sched[j]);
        if (next->op == IR_SCAN_CARRY) {
            cg_error("scan: carry %%%d takes the value of carry %%%d directly", en->sched[j], n->link);
            return -1;
        }
        if (next->op == IR_CONST)
            cg_fill_tensor(k, n, dst, next->value);
        else
            cg_copy_tensor(k, n, dst, arena_pointer(m, k->b, params[0], e, n->link));
    }
    return 0;
}

/* The start of the block of the scan at schedule position at (its
 * stacks, finals and body nodes, see entries_schedule): [from, at). */
static int scan_block_start(const cg_module *m, const entry *en, int at) {
    int from = at;
    while (from > 0 && ir_loop_of(m->g, en->sched[from - 1]) == en->sched[at])
        from--;
    return from;
}

/* The loop of the scan at schedule position `at`, whose block (its
 * stacks, finals and body nodes, see entries_schedule) precedes it. */
static int emit_scan(cg_module *m, LLVMBuilderRef b, const entry *en, entry_kind e, int at, LLVMValueRef *params) {
    const ir_graph *g = m->g;
    int scan = en->sched[at], from = scan_block_start(m, en, at);
    m->top = LLVMCreateBuilderInContext(m->ctx);
    cg_kernel k = loop_writer(m, b, params);
    LLVMValueRef arena = params[0];
    int rc = 0;
    for (int j = from; j < at; j++) { /* carries start from their inits */
        const ir_node *n = &g->nodes[en->sched[j]];
        if (n->op != IR_SCAN_CARRY)
            continue;
        const ir_node *init = &g->nodes[n->inputs[0]];
        LLVMValueRef dst = arena_pointer(m, b, arena, e, en->sched[j]);
        if (init->op == IR_CONST)
            cg_fill_tensor(&k, n, dst, init->value);
        else
            cg_copy_tensor(&k, n, dst, arena_pointer(m, b, arena, e, n->inputs[0]));
    }
    const ir_node *sn = &g->nodes[scan];
    LLVMValueRef steps = cg_scan_steps(&k, sn, arena_pointer(m, b, arena, e, sn->inputs[0]));
    cg_loop step = cg_loop_begin(&k, steps, "step");
    LLVMValueRef t = sn->flags ? LLVMBuildSub(b, cg_i64(&k, sn->stop - 1), step.index, "t") : step.index;
    for (int j = from; j < at && rc == 0; j++) {
        int id = en->sched[j];
        const ir_node *n = &g->nodes[id];
        if (n->op == IR_SCAN_SLICE)
            cg_copy_step(&k, &g->nodes[n->inputs[0]].shape, n->axis, n->dtype,
                         arena_pointer(m, b, arena, e, n->inputs[0]), arena_pointer(m, b, arena, e, id), t, 0);
        else if (n->region == scan && n->op != IR_SCAN_CARRY)
            rc = emit_call(m, b, en, e, id, params);
    }
    for (int j = from; j < at && rc == 0; j++) { /* the stacks take this step's values */
        const ir_node *n = &g->nodes[en->sched[j]];
        if (n->op == IR_SCAN_STACK)
            cg_copy_step(&k, &n->shape, n->axis, n->dtype, arena_pointer(m, b, arena, e, en->sched[j]),
                         arena_pointer(m, b, arena, e, n->inputs[0]), t, 1);
    }
    if (rc == 0)
        rc = update_carries(m, &k, en, e, from, at, params);
    cg_loop_end(&k, &step);
    for (int j = from; j < at && rc == 0; j++) { /* the finals take the carries */
        const ir_node *n = &g->nodes[en->sched[j]];
        if (n->op == IR_SCAN_FINAL)
            cg_copy_tensor(&k, n, arena_pointer(m, b, arena, e, en->sched[j]),
                           arena_pointer(m, b, arena, e, n->inputs[0]));
    }
    LLVMDisposeBuilder(m->top);
    m->top = NULL;
    return rc;
}

/* ------------------------------------------------ data parallelism (--mpi)
 *
 * Under mdlc --mpi, train_step hands each parameter's gradient G to the
 * runtime (runtime/rt_mpi.c) to be summed over the ranks: the kernel that
 * writes G is followed by
 *     mdl_rt_grad_ready(k, arena + offset(G), count)
 * which packs it into the current bucket and starts the bucket's
 * allreduce once it is full, and the first kernel that reads G (its
 * optimizer update) is preceded by
 *     mdl_rt_grad_wait(k, arena + offset(G), count)
 * which waits for that bucket and puts the sum back in G.  In between the
 * backward pass goes on, so the last layers' gradients travel while the
 * first layers' are computed.  k numbers the gradients in g->params order. */
typedef struct cg_dist {
    int n;
    int *node, *param; /* per k: the gradient's node and its parameter */
    char *state;       /* per k: 0, 1 handed over (ready), 2 waited for */
} cg_dist;

static void dist_init(const cg_module *m, cg_dist *d) {
    const ir_graph *g = m->g;
    d->n = 0;
    d->node = ir_xcalloc((size_t)g->n_params + 1, sizeof *d->node);
    d->param = ir_xcalloc((size_t)g->n_params + 1, sizeof *d->param);
    d->state = ir_xcalloc((size_t)g->n_params + 1, 1);
    for (int i = 0; i < g->n_params; i++) {
        int grad = g->params[i].grad;
        if (!g->params[i].trainable || grad < 0 || g->nodes[grad].op == IR_CONST) /* a constant: no data */
            continue;
        d->node[d->n] = grad;
        d->param[d->n++] = i;
    }
}

static void dist_free(cg_dist *d) {
    free(d->node);
    free(d->param);
    free(d->state);
}

/* Whether the item at schedule position s (a kernel, or a scan's loop)
 * reads node x, or (writes set) writes it. */
static int item_touches(const cg_module *m, const entry *en, int s, int x, int writes) {
    int id = en->sched[s];
    if (m->g->nodes[id].op == IR_SCAN) {
        for (int j = scan_block_start(m, en, s); j < s; j++) {
            const ir_node *n = &m->g->nodes[en->sched[j]];
            if (writes && en->sched[j] == x)
                return 1;
            for (int i = 0; i < n->n_inputs && !writes; i++)
                if (n->inputs[i] == x)
                    return 1;
        }
        return 0;
    }
    cg_operands o = operands_of(m, id);
    for (int j = 0; writes && j < o.n_out; j++)
        if (o.out[j] == x)
            return 1;
    for (int i = 0; !writes && i < o.n_in; i++)
        if (o.in[i] == x)
            return 1;
    return 0;
}

/* call void @name(i32 k, ptr arena + offset(G), i64 count) */
static void dist_call(cg_module *m, LLVMBuilderRef b, LLVMValueRef arena, entry_kind e, const char *name, int k,
                      int node) {
    LLVMTypeRef args[3] = {m->t.i32, m->t.ptr, m->t.i64};
    LLVMTypeRef fn_type = LLVMFunctionType(m->t.void_, args, 3, 0);
    LLVMValueRef fn = LLVMGetNamedFunction(m->mod, name);
    if (!fn) {
        fn = LLVMAddFunction(m->mod, name, fn_type);
        add_attribute(m, fn, LLVMAttributeFunctionIndex, "nounwind");
    }
    LLVMValueRef values[3] = {LLVMConstInt(m->t.i32, (unsigned long long)k, 0), arena_pointer(m, b, arena, e, node),
                              LLVMConstInt(m->t.i64, (unsigned long long)ir_shape_numel(&m->g->nodes[node].shape), 0)};
    LLVMBuildCall2(b, fn_type, fn, values, 3, "");
}

/* Around the item at s: before it (writes 0), a wait for each gradient
 * it is the first to read; after it (writes 1), a ready for each it wrote. */
static void dist_hooks(cg_module *m, cg_dist *d, LLVMBuilderRef b, LLVMValueRef arena, const entry *en, entry_kind e,
                       int s, int writes) {
    char from = writes ? 0 : 1;
    for (int k = 0; k < d->n; k++)
        if (d->state[k] == from && item_touches(m, en, s, d->node[k], writes)) {
            dist_call(m, b, arena, e, writes ? "mdl_rt_grad_ready" : "mdl_rt_grad_wait", k, d->node[k]);
            d->state[k] = (char)(from + 1);
        }
}

/* Every gradient must have had a buffer of its own to be summed. */
static int dist_check(const cg_module *m, const cg_dist *d) {
    for (int k = 0; k < d->n; k++)
        if (d->state[k] == 0) {
            cg_error("--mpi: the gradient of parameter %s is computed inside a fused kernel, with no buffer of its "
                     "own to sum over the ranks",
                     m->g->params[d->param[k]].name);
            return -1;
        }
    return 0;
}

static int emit_entry(cg_module *m, const entry *en, entry_kind e) {
    LLVMTypeRef params[2] = {m->t.ptr, m->t.i64};
    char name[64];
    snprintf(name, sizeof name, "%s%s", en->name, m->f64 ? "_f64" : "");
    LLVMValueRef fn = LLVMAddFunction(m->mod, name, LLVMFunctionType(m->t.void_, params, 2, 0));
    add_attribute(m, fn, LLVMAttributeFunctionIndex, "nounwind");
    LLVMValueRef args[2] = {LLVMGetParam(fn, 0), LLVMGetParam(fn, 1)};
    LLVMSetValueName2(args[0], "arena", 5);
    LLVMSetValueName2(args[1], "batch", 5);
    LLVMBuilderRef b = LLVMCreateBuilderInContext(m->ctx);
    LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(m->ctx, fn, "entry"));
    memset(m->pointer, 0, sizeof *m->pointer * (size_t)m->g->n_nodes);
    /* the executable's train_step checks its results on demand; the JIT
     * (no runtime) and the f64 entries do not */
    int checks = e == ENTRY_TRAIN && m->parallel && !m->f64, n_checked = 0;
    int dist = e == ENTRY_TRAIN && m->dist && !m->f64;
    cg_dist d = {0};
    if (dist)
        dist_init(m, &d);
    int rc = 0;
    for (int s = 0; s < en->n_sched && rc == 0; s++) {
        const ir_node *n = &m->g->nodes[en->sched[s]];
        /* an update the plan made in place: nothing to copy */
        if (n->op == IR_ASSIGN && m->plan->offset[e][n->inputs[0]] == m->plan->offset[e][n->inputs[1]])
            continue;
        if (ir_in_loop(m->g, en->sched[s]))
            continue; /* written by its scan's loop */
        if (m->es->output_of && m->es->output_of[en->sched[s]] >= 0)
            continue; /* written by its group's kernel */
        if (dist)
            dist_hooks(m, &d, b, args[0], en, e, s, 0);
        if (n->op == IR_SCAN)
            rc = emit_scan(m, b, en, e, s, args);
        else
            rc = emit_call(m, b, en, e, en->sched[s], args);
        if (rc == 0 && checks && is_checked(m, en->sched[s]))
            emit_check(m, b, args, n_checked++);
        if (rc == 0 && dist)
            dist_hooks(m, &d, b, args[0], en, e, s, 1);
    }
    if (dist) {
        if (rc == 0)
            rc = dist_check(m, &d);
        dist_free(&d);
    }
    LLVMBuildRetVoid(b);
    LLVMDisposeBuilder(b);
    return rc;
}

static cg_types make_types(LLVMContextRef ctx, int f64) {
    cg_types t;
    t.f32 = LLVMFloatTypeInContext(ctx);
    t.f64 = LLVMDoubleTypeInContext(ctx);
    t.i1 = LLVMInt1TypeInContext(ctx);
    t.i32 = LLVMInt32TypeInContext(ctx);
    t.i64 = LLVMInt64TypeInContext(ctx);
    t.ptr = LLVMPointerTypeInContext(ctx, 0);
    t.void_ = LLVMVoidTypeInContext(ctx);
    t.real = f64 ? t.f64 : t.f32;
    return t;
}

void cg_plan_f64(const ir_graph *g, const entries *es, entries *es64, mem_plan *plan64) {
    *es64 = *es;
    es64->e[ENTRY_PREDICT].present = 0;
    es64->e[ENTRY_TRAIN].present = 0;
    es64->e[ENTRY_GENERATE].present = 0;
    es64->e[ENTRY_PREPARE].present = 0;
    mp_plan_build_sized(g, es64, 8, plan64);
}

LLVMModuleRef cg_build_module(LLVMContextRef ctx, const ir_graph *g, const entries *es, const mem_plan *plan,
                              unsigned flags) {
    cg_module m;
    m.ctx = ctx;
    m.mod = LLVMModuleCreateWithNameInContext(g->model_name ? g->model_name : "mdl", ctx);
    m.t = make_types(ctx, !!(flags & CG_BUILD_F64));
    m.f64 = !!(flags & CG_BUILD_F64);
    m.parallel = !!(flags & CG_BUILD_PARALLEL);
    m.avx512 = !!(flags & CG_BUILD_AVX512);
    m.dist = !!(flags & CG_BUILD_DIST);
    m.g = g;
    m.es = es;
    m.plan = plan;
    m.kernels = ir_xcalloc((size_t)g->n_nodes, sizeof *m.kernels);
    m.pointer = ir_xcalloc((size_t)g->n_nodes, sizeof *m.pointer);
    m.top = NULL;
    if (g->source_path)
        LLVMSetSourceFileName(m.mod, g->source_path, strlen(g->source_path));
    int rc = 0;
    if (plan->n_nodes != g->n_nodes) {
        cg_error("the memory plan covers %d nodes, the graph has %d", plan->n_nodes, g->n_nodes);
        rc = -1;
    }
    for (int e = 0; e < ENTRY_COUNT && rc == 0; e++)
        if (es->e[e].present)
            rc = emit_entry(&m, &es->e[e], (entry_kind)e);
    free(m.kernels);
    free(m.pointer);
    if (rc) {
        LLVMDisposeModule(m.mod);
        return NULL;
    }
    return m.mod;
}
