/*
 * cg_scalar.c - one element of every elementwise op, as LLVM IR.
 *
 * Each cg_scalar_<name> takes its operands as LLVM values and returns the
 * result in the node's dtype; it emits no loads, stores or control flow,
 * so the loop vectoriser sees straight-line code and a fused kernel can
 * chain emitters by passing one's result to the next.  Floating point is
 * strict IEEE (no fast-math flags): results must match the reference
 * interpreter (ir/eval.c), whose header lists the semantics shared here,
 * e.g. that i32 division by zero gives 0 instead of trapping.
 *
 * In f32, exp, log, tanh and sigmoid (and erf's exp) are cg_vmath.c's
 * arithmetic, which the loop vectoriser widens.  Other math functions, and
 * all of them in the f64 variant, use LLVM intrinsics (llvm.exp, llvm.pow,
 * ...), which the backend lowers to libm calls (exp, powf) where the CPU
 * has no instruction; the generated object therefore links with -lm.
 *
 * Every emitter is generic in the float type: operands arrive as float, or
 * as double in the f64 variant, and constants are made in k->t.real, so
 * the f64 variant computes the same expressions in double.
 */
#include "cg_internal.h"

static int is_int(LLVMValueRef v) { return LLVMGetTypeKind(LLVMTypeOf(v)) == LLVMIntegerTypeKind; }

/* A constant of the f32 element type (double in the f64 variant). */
static LLVMValueRef f32(cg_kernel *k, double v) { return LLVMConstReal(k->t.real, v); }

static LLVMValueRef i32(cg_kernel *k, int64_t v) { return LLVMConstInt(k->t.i32, (unsigned long long)v, 1); }

static LLVMValueRef unary(cg_kernel *k, const char *intrinsic, LLVMValueRef x) {
    return cg_intrinsic(k, intrinsic, LLVMTypeOf(x), &x, 1);
}

static LLVMValueRef binary(cg_kernel *k, const char *intrinsic, LLVMValueRef a, LLVMValueRef b) {
    LLVMValueRef args[2] = {a, b};
    return cg_intrinsic(k, intrinsic, LLVMTypeOf(a), args, 2);
}

/* 1.0 or 0.0 from an i1 */
static LLVMValueRef to_f32(cg_kernel *k, LLVMValueRef flag) { return LLVMBuildUIToFP(k->b, flag, k->t.real, ""); }

/* -------------------------------------------------------------- unary */

static LLVMValueRef cg_scalar_neg(cg_kernel *k, const ir_node *n, LLVMValueRef *x) {
    (void)n;
    return is_int(x[0]) ? LLVMBuildNeg(k->b, x[0], "") : LLVMBuildFNeg(k->b, x[0], "");
}

static LLVMValueRef cg_scalar_exp(cg_kernel *k, const ir_node *n, LLVMValueRef *x) {
    (void)n;
    return k->f64 ? unary(k, "llvm.exp", x[0]) : cg_vmath_exp(k, x[0]);
}

static LLVMValueRef cg_scalar_log(cg_kernel *k, const ir_node *n, LLVMValueRef *x) {
    (void)n;
    return k->f64 ? unary(k, "llvm.log", x[0]) : cg_vmath_log(k, x[0]);
}

static LLVMValueRef cg_scalar_sqrt(cg_kernel *k, const ir_node *n, LLVMValueRef *x) {
    (void)n;
    return unary(k, "llvm.sqrt", x[0]);
}

static LLVMValueRef cg_scalar_abs(cg_kernel *k, const ir_node *n, LLVMValueRef *x) {
    (void)n;
    if (!is_int(x[0]))
        return unary(k, "llvm.fabs", x[0]);
    /* abs(INT_MIN) = INT_MIN rather than poison */
    LLVMValueRef args[2] = {x[0], LLVMConstInt(k->t.i1, 0, 0)};
    return cg_intrinsic(k, "llvm.abs", k->t.i32, args, 2);
}

/* (x > 0) - (x < 0): -1, 0 or 1, and 0 for NaN (ordered compares) */
static LLVMValueRef cg_scalar_sign(cg_kernel *k, const ir_node *n, LLVMValueRef *x) {
    (void)n;
    if (is_int(x[0])) {
        LLVMValueRef pos = LLVMBuildICmp(k->b, LLVMIntSGT, x[0], i32(k, 0), "");
        LLVMValueRef neg = LLVMBuildICmp(k->b, LLVMIntSLT, x[0], i32(k, 0), "");
        return LLVMBuildSub(k->b, LLVMBuildZExt(k->b, pos, k->t.i32, ""), LLVMBuildZExt(k->b, neg, k->t.i32, ""), "");
    }
    LLVMValueRef pos = LLVMBuildFCmp(k->b, LLVMRealOGT, x[0], f32(k, 0), "");
    LLVMValueRef neg = LLVMBuildFCmp(k->b, LLVMRealOLT, x[0], f32(k, 0), "");
    return LLVMBuildFSub(k->b, to_f32(k, pos), to_f32(k, neg), "");
}

static LLVMValueRef cg_scalar_tanh(cg_kernel *k, const ir_node *n, LLVMValueRef *x) {
    (void)n;
    return k->f64 ? unary(k, "llvm.tanh", x[0]) : cg_vmath_tanh(k, x[0]);
}

/* f(x) = 1 / (1 + exp(-x)); in double exp(-x) overflows to inf for
 * x < -709, giving 0 (f32: cg_vmath_sigmoid) */
static LLVMValueRef cg_scalar_sigmoid(cg_kernel *k, const ir_node *n, LLVMValueRef *x) {
    (void)n;
    if (!k->f64)
        return cg_vmath_sigmoid(k, x[0]);
    LLVMValueRef e = unary(k, "llvm.exp", LLVMBuildFNeg(k->b, x[0], ""));
    return LLVMBuildFDiv(k->b, f32(k, 1), LLVMBuildFAdd(k->b, f32(k, 1), e, ""), "");
}

/* x > 0 ? x : 0, which is exactly x86's maxps(x, 0) (NaN -> 0) */
static LLVMValueRef cg_scalar_relu(cg_kernel *k, const ir_node *n, LLVMValueRef *x) {
    (void)n;
    if (is_int(x[0]))
        return binary(k, "llvm.smax", x[0], i32(k, 0));
    LLVMValueRef pos = LLVMBuildFCmp(k->b, LLVMRealOGT, x[0], f32(k, 0), "");
    return LLVMBuildSelect(k->b, pos, x[0], f32(k, 0), "");
}

static LLVMValueRef cg_scalar_cast(cg_kernel *k, const ir_node *n, LLVMValueRef *x) {
    return cg_convert(k, x[0], is_int(x[0]) ? IR_I32 : IR_F32, n->dtype);
}

/* The identity: only autodiff treats it differently. */
static LLVMValueRef cg_scalar_stop_gradient(cg_kernel *k, const ir_node *n, LLVMValueRef *x) {
    (void)k, (void)n;
    return x[0];
}

/* p(t) = c[0] + t (c[1] + t (c[2] + ...)), by Horner's rule */
static LLVMValueRef horner(cg_kernel *k, LLVMValueRef t, const double *c, int n) {
    LLVMValueRef p = f32(k, c[n - 1]);
    for (int i = n - 2; i >= 0; i--)
        p = LLVMBuildFAdd(k->b, LLVMBuildFMul(k->b, p, t, ""), f32(k, c[i]), "");
    return p;
}

/* p(t) = c[0] + c[1] t + ... + c[n-1] t^(n-1), by Estrin's scheme: pairs
 * c[2i] + c[2i+1] t, then pairs of those with t^2, t^4, ..., so the
 * dependency chain is about log2 n multiply-adds deep instead of Horner's
 * n.  erfc's fit in erf: W5's GELU epilogue 5.4% -> 4.4% of a training
 * step.  The Taylor part keeps Horner: Estrin put erf at 4 ulps near 0.45
 * (its terms alternate in sign), over test_vmath's bound of 3. */
static LLVMValueRef polynomial(cg_kernel *k, LLVMValueRef t, const double *c, int n) {
    LLVMValueRef term[16], power = t;
    int m = 0;
    for (int i = 0; i < n; i += 2)
        term[m++] = i + 1 < n ? cg_fmuladd(k, k->t.f32, f32(k, c[i + 1]), t, f32(k, c[i])) : f32(k, c[i]);
    while (m > 1) {
        power = LLVMBuildFMul(k->b, power, power, "");
        for (int i = 0; i < m; i += 2)
            term[i / 2] = i + 1 < m ? cg_fmuladd(k, k->t.f32, term[i + 1], power, term[i]) : term[i];
        m = (m + 1) / 2;
    }
    return term[0];
}

/* The f64 variant calls libm's erf (double, within 1 ulp): the fit below is
 * only as good as f32, and gradcheck in double needs erf to agree with its
 * derivative 2/sqrt(pi) exp(-x^2) far beyond that. */
static LLVMValueRef libm_erf(cg_kernel *k, LLVMValueRef x) {
    LLVMTypeRef type = LLVMFunctionType(k->t.f64, &k->t.f64, 1, 0);
    LLVMValueRef fn = LLVMGetNamedFunction(k->mod, "erf");
    if (!fn) {
        fn = LLVMAddFunction(k->mod, "erf", type);
        unsigned kind = LLVMGetEnumAttributeKindForName("nounwind", 8);
        LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(k->ctx, kind, 0));
    }
    return LLVMBuildCall2(k->b, type, fn, &x, 1, "");
}

/* erf x = 2/sqrt(pi) * integral_0^x exp(-t^2) dt, in two pieces chosen
 * without a branch (so the loop still vectorises):
 *   |x| < 0.75: the Taylor series 2/sqrt(pi) sum_n (-1)^n x^(2n+1) / (n! (2n+1))
 *               to n = 9, whose first omitted term is below 1e-9;
 *   otherwise:  1 - erfc |x| with the sign of x, erfc from the Chebyshev fit
 *               erfc z = t exp(-z^2 + P(t)), t = 1 / (1 + z/2), P of degree 9
 *               (Press et al., Numerical Recipes 6.2), relative error below
 *               1.2e-7, so erf (> 0.7 there) is off by less than 5e-8.
 * Measured in f32 against double erf on a 1e-5 grid over [-6, 6]: relative
 * error below 1.8e-7, absolute below 1.3e-7 (about 2 ulp; 3 ulps at worst
 * over every float, tests/codegen/test_vmath.c).  It needs only
 * exp (cg_vmath_exp), and gives erf(+-inf) = +-1, NaN for NaN. */
static LLVMValueRef cg_scalar_erf(cg_kernel *k, const ir_node *n, LLVMValueRef *x) {
    static const double taylor[] = {1.1283791670955126,     -0.37612638903183754,   0.11283791670955126,
                                    -0.026866170645131252,  0.005223977625442188,   -0.0008548327023450852,
                                    0.00012055332981789664, -1.492565035840625e-05, 1.6462114365889246e-06,
                                    -1.6365844691234924e-07};
    static const double fit[] = {-1.26551223, 1.00002368,  0.37409196, 0.09678418,  -0.18628806,
                                 0.27886807,  -1.13520398, 1.48851587, -0.82215223, 0.17087277};
    (void)n;
    if (k->f64)
        return libm_erf(k, x[0]);
    LLVMValueRef z = unary(k, "llvm.fabs", x[0]), z2 = LLVMBuildFMul(k->b, x[0], x[0], "");
    LLVMValueRef small = LLVMBuildFMul(k->b, x[0], horner(k, z2, taylor, 10), "");
    LLVMValueRef t =
        LLVMBuildFDiv(k->b, f32(k, 1), LLVMBuildFAdd(k->b, f32(k, 1), LLVMBuildFMul(k->b, z, f32(k, 0.5), ""), ""), "");
    LLVMValueRef e = cg_vmath_exp(k, LLVMBuildFSub(k->b, polynomial(k, t, fit, 10), z2, ""));
    LLVMValueRef large =
        binary(k, "llvm.copysign", LLVMBuildFSub(k->b, f32(k, 1), LLVMBuildFMul(k->b, t, e, ""), ""), x[0]);
    LLVMValueRef near_zero = LLVMBuildFCmp(k->b, LLVMRealOLT, z, f32(k, 0.75), "");
    return LLVMBuildSelect(k->b, near_zero, small, large, "");
}

/* ------------------------------------------------------------- binary */

static LLVMValueRef cg_scalar_add(cg_kernel *k, const ir_node *n, LLVMValueRef *x) {
    (void)n;
    return is_int(x[0]) ? LLVMBuildAdd(k->b, x[0], x[1], "") : LLVMBuildFAdd(k->b, x[0], x[1], "");
}

static LLVMValueRef cg_scalar_sub(cg_kernel *k, const ir_node *n, LLVMValueRef *x) {
    (void)n;
    return is_int(x[0]) ? LLVMBuildSub(k->b, x[0], x[1], "") : LLVMBuildFSub(k->b, x[0], x[1], "");
}

static LLVMValueRef cg_scalar_mul(cg_kernel *k, const ir_node *n, LLVMValueRef *x) {
    (void)n;
    return is_int(x[0]) ? LLVMBuildMul(k->b, x[0], x[1], "") : LLVMBuildFMul(k->b, x[0], x[1], "");
}

/* i32: a / 0 = 0 and INT_MIN / -1 = INT_MIN (= -a, wrapping) instead of
 * the trap and the undefined behaviour of sdiv. */
static LLVMValueRef int_div(cg_kernel *k, LLVMValueRef a, LLVMValueRef b) {
    LLVMValueRef by_zero = LLVMBuildICmp(k->b, LLVMIntEQ, b, i32(k, 0), "");
    LLVMValueRef by_minus_one = LLVMBuildICmp(k->b, LLVMIntEQ, b, i32(k, -1), "");
    LLVMValueRef unsafe = LLVMBuildOr(k->b, by_zero, by_minus_one, "");
    LLVMValueRef q = LLVMBuildSDiv(k->b, a, LLVMBuildSelect(k->b, unsafe, i32(k, 1), b, ""), "");
    q = LLVMBuildSelect(k->b, by_minus_one, LLVMBuildNeg(k->b, a, ""), q, "");
    return LLVMBuildSelect(k->b, by_zero, i32(k, 0), q, "");
}

static LLVMValueRef cg_scalar_div(cg_kernel *k, const ir_node *n, LLVMValueRef *x) {
    (void)n;
    return is_int(x[0]) ? int_div(k, x[0], x[1]) : LLVMBuildFDiv(k->b, x[0], x[1], "");
}

static LLVMValueRef cg_scalar_pow(cg_kernel *k, const ir_node *n, LLVMValueRef *x) {
    (void)n;
    return binary(k, "llvm.pow", x[0], x[1]);
}

static LLVMValueRef cg_scalar_min(cg_kernel *k, const ir_node *n, LLVMValueRef *x) {
    (void)n;
    return binary(k, is_int(x[0]) ? "llvm.smin" : "llvm.minnum", x[0], x[1]);
}

static LLVMValueRef cg_scalar_max(cg_kernel *k, const ir_node *n, LLVMValueRef *x) {
    (void)n;
    return binary(k, is_int(x[0]) ? "llvm.smax" : "llvm.maxnum", x[0], x[1]);
}

/* 1.0 where x[0] <op> x[1], else 0.0.  Ordered predicates are false on
 * NaN; `ne` is unordered, true on NaN, as in C. */
static LLVMValueRef compare(cg_kernel *k, LLVMValueRef *x, LLVMIntPredicate ip, LLVMRealPredicate fp) {
    if (is_int(x[0]))
        return to_f32(k, LLVMBuildICmp(k->b, ip, x[0], x[1], ""));
    return to_f32(k, LLVMBuildFCmp(k->b, fp, x[0], x[1], ""));
}

/* One emitter per comparison op, differing only in the predicates. */
#define CG_COMPARISON(name, int_predicate, real_predicate)                                                             \
    static LLVMValueRef cg_scalar_##name(cg_kernel *k, const ir_node *n, LLVMValueRef *x) {                            \
        (void)n;                                                                                                       \
        return compare(k, x, int_predicate, real_predicate);                                                           \
    }
CG_COMPARISON(lt, LLVMIntSLT, LLVMRealOLT)
CG_COMPARISON(le, LLVMIntSLE, LLVMRealOLE)
CG_COMPARISON(gt, LLVMIntSGT, LLVMRealOGT)
CG_COMPARISON(ge, LLVMIntSGE, LLVMRealOGE)
CG_COMPARISON(eq, LLVMIntEQ, LLVMRealOEQ)
CG_COMPARISON(ne, LLVMIntNE, LLVMRealUNE)
#undef CG_COMPARISON

/* ------------------------------------------------------------ ternary */

/* c != 0 ? a : b, the condition in its own dtype (NaN counts as true) */
static LLVMValueRef cg_scalar_where(cg_kernel *k, const ir_node *n, LLVMValueRef *x) {
    (void)n;
    LLVMValueRef c = is_int(x[0]) ? LLVMBuildICmp(k->b, LLVMIntNE, x[0], i32(k, 0), "")
                                  : LLVMBuildFCmp(k->b, LLVMRealUNE, x[0], f32(k, 0), "");
    return LLVMBuildSelect(k->b, c, x[1], x[2], "");
}

#define CG_SCALAR_LEAF(name) NULL
#define CG_SCALAR_UNARY(name) cg_scalar_##name
#define CG_SCALAR_BINARY(name) cg_scalar_##name
#define CG_SCALAR_TERNARY(name) cg_scalar_##name
#define CG_SCALAR_REDUCE(name) NULL
#define CG_SCALAR_MOVE(name) NULL
#define CG_SCALAR_CONTRACT(name) NULL
#define CG_SCALAR_SINK(name) NULL
#define CG_SCALAR_INDEX(name) NULL
#define CG_SCALAR_WINDOW(name) NULL
#define CG_SCALAR_RANDOM(name) NULL
#define CG_SCALAR_LOOP(name) NULL
const cg_scalar_fn cg_scalars[IR_OP_COUNT] = {
#define OP(id, name, arity, class) [IR_##id] = CG_SCALAR_##class(name),
#include "ops.def"
#undef OP
};
