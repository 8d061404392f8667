/*
 * cg_vmath.c - exp, log, tanh and sigmoid of one float, as plain arithmetic.
 *
 * LLVM lowers llvm.exp, llvm.log and llvm.tanh to calls of libm's expf,
 * logf and tanhf, one element at a time, and the loop vectoriser cannot
 * widen a call: a kernel that used one ran scalar.  The functions here
 * build each result from multiplies and adds (llvm.fmuladd), compares,
 * selects, bitcasts and integer ops only, with no branch and no call, so
 * the vectoriser widens them with the rest of the loop body (8 lanes with
 * AVX2, 16 with AVX-512).  The designs are the classic ones (Cephes
 * expf/logf/tanhf, by S. Moshier): reduce the argument to a short
 * interval, evaluate a polynomial there, and handle the power of two
 * through the float's exponent bits.  Integers come from bit patterns,
 * never from fptosi, which is poison on NaN.
 *
 * Accuracy, measured by tests/codegen/test_vmath.c against libm in double
 * rounded to float, over every float: see the table in docs/design.md.
 * Denormals are computed as such (exp and sigmoid give denormal results,
 * log reads denormal inputs); under the runtime's FTZ/DAZ they flush to 0
 * like any other arithmetic, and log of a denormal is then log 0 = -inf.
 *
 * Only the f32 code uses them (values are scalar float; k->t.f32): the
 * f64 variant keeps libm, whose double results gradcheck relies on.
 */
#include <math.h>

#include "cg_internal.h"

static LLVMValueRef real(cg_kernel *k, double v) { return LLVMConstReal(k->t.f32, v); }
static LLVMValueRef int32(cg_kernel *k, int64_t v) { return LLVMConstInt(k->t.i32, (unsigned long long)v, 1); }

static LLVMValueRef bits_of(cg_kernel *k, LLVMValueRef x) { return LLVMBuildBitCast(k->b, x, k->t.i32, ""); }
static LLVMValueRef float_of(cg_kernel *k, LLVMValueRef i) { return LLVMBuildBitCast(k->b, i, k->t.f32, ""); }

static LLVMValueRef fmuladd(cg_kernel *k, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c) {
    return cg_fmuladd(k, k->t.f32, a, b, c);
}

static LLVMValueRef fcmp(cg_kernel *k, LLVMRealPredicate p, LLVMValueRef a, double b) {
    return LLVMBuildFCmp(k->b, p, a, real(k, b), "");
}

/* c[0] + t (c[1] + t (c[2] + ...)), by Horner's rule */
static LLVMValueRef polynomial(cg_kernel *k, LLVMValueRef t, const double *c, int n) {
    LLVMValueRef p = real(k, c[n - 1]);
    for (int i = n - 2; i >= 0; i--)
        p = fmuladd(k, p, t, real(k, c[i]));
    return p;
}

/* 2^n for an i32 n in [-126, 127], built as its exponent field */
static LLVMValueRef power_of_two(cg_kernel *k, LLVMValueRef n) {
    return float_of(k, LLVMBuildShl(k->b, LLVMBuildAdd(k->b, n, int32(k, 127), ""), int32(k, 23), ""));
}

/* ln 2 = LN2_HIGH + LN2_LOW (Cody and Waite): LN2_HIGH has 9 significant
 * bits, so n LN2_HIGH is exact for the |n| <= 150 met here. */
#define LN2_HIGH 0.693359375
#define LN2_LOW -2.12194440e-4
#define LOG2_E 1.44269504088896341
/* Added to a float of magnitude below 2^22, 1.5 2^23 leaves it rounded to
 * an integer n in the low mantissa bits: bits(sum) = bits(1.5 2^23) + n. */
#define ROUNDING_MAGIC 12582912.0
#define ROUNDING_MAGIC_BITS 0x4B400000

/* exp x = 2^n e^r, n = round(x log2 e), r = x - n ln 2 in [-ln2/2, ln2/2]:
 *   e^r = 1 + r + r^2 P(r), P of degree 5 (Cephes expf);
 *   2^n = 2^(n/2) 2^(n - n/2): two factors that are normal floats for every
 *   n met, so the last multiply alone rounds a denormal result or
 *   overflows to inf.
 * x is clamped to [-104, 89] first (exp rounds to 0 below, to inf above);
 * NaN passes the ordered compares and stays NaN. */
LLVMValueRef cg_vmath_exp(cg_kernel *k, LLVMValueRef x) {
    static const double p[] = {5.0000001201E-1, 1.6666665459E-1, 4.1665795894E-2,
                               8.3334519073E-3, 1.3981999507E-3, 1.9875691500E-4};
    x = LLVMBuildSelect(k->b, fcmp(k, LLVMRealOLT, x, -104), real(k, -104), x, "");
    x = LLVMBuildSelect(k->b, fcmp(k, LLVMRealOGT, x, 89), real(k, 89), x, "");
    LLVMValueRef t = fmuladd(k, x, real(k, LOG2_E), real(k, ROUNDING_MAGIC));
    LLVMValueRef n = LLVMBuildSub(k->b, bits_of(k, t), int32(k, ROUNDING_MAGIC_BITS), "");
    LLVMValueRef nf = LLVMBuildFSub(k->b, t, real(k, ROUNDING_MAGIC), "");
    LLVMValueRef r = fmuladd(k, nf, real(k, -LN2_HIGH), x);
    r = fmuladd(k, nf, real(k, -LN2_LOW), r);
    LLVMValueRef r2 = LLVMBuildFMul(k->b, r, r, "");
    LLVMValueRef er = LLVMBuildFAdd(k->b, fmuladd(k, polynomial(k, r, p, 6), r2, r), real(k, 1), "");
    LLVMValueRef half = LLVMBuildAShr(k->b, n, int32(k, 1), "");
    LLVMValueRef scaled = LLVMBuildFMul(k->b, er, power_of_two(k, half), "");
    return LLVMBuildFMul(k->b, scaled, power_of_two(k, LLVMBuildSub(k->b, n, half, "")), "");
}

/* log x = e ln 2 + log(1 + f), x = 2^e m, m in [sqrt(1/2), sqrt(2)),
 * f = m - 1 (exact):
 *   log(1 + f) = f - f^2/2 + f^3 P(f), P of degree 8 (Cephes logf);
 *   e and m by subtracting the bits of sqrt(1/2) (as musl's logf does).
 * A denormal x is scaled by 2^23 first.  log 0 = -inf, log x<0 = NaN,
 * log inf = inf, NaN stays NaN: selects at the end. */
LLVMValueRef cg_vmath_log(cg_kernel *k, LLVMValueRef x) {
    static const double p[] = {3.3333331174E-1,  -2.4999993993E-1, 2.0000714765E-1,
                               -1.6668057665E-1, 1.4249322787E-1,  -1.2420140846E-1,
                               1.1676998740E-1,  -1.1514610310E-1, 7.0376836292E-2};
    const int64_t sqrt_half_bits = 0x3F3504F3;
    LLVMValueRef denormal = fcmp(k, LLVMRealOLT, x, 0x1p-126);
    LLVMValueRef xs = LLVMBuildSelect(k->b, denormal, LLVMBuildFMul(k->b, x, real(k, 0x1p23), ""), x, "");
    LLVMValueRef offset = LLVMBuildSub(k->b, bits_of(k, xs), int32(k, sqrt_half_bits), "");
    LLVMValueRef e = LLVMBuildAShr(k->b, offset, int32(k, 23), "");
    e = LLVMBuildSub(k->b, e, LLVMBuildSelect(k->b, denormal, int32(k, 23), int32(k, 0), ""), "");
    LLVMValueRef mantissa = LLVMBuildAdd(k->b, LLVMBuildAnd(k->b, offset, int32(k, 0x7FFFFF), ""),
                                         int32(k, sqrt_half_bits), "");
    LLVMValueRef f = LLVMBuildFSub(k->b, float_of(k, mantissa), real(k, 1), "");
    LLVMValueRef ef = LLVMBuildSIToFP(k->b, e, k->t.f32, "");
    LLVMValueRef f2 = LLVMBuildFMul(k->b, f, f, "");
    LLVMValueRef y = LLVMBuildFMul(k->b, LLVMBuildFMul(k->b, polynomial(k, f, p, 9), f, ""), f2, "");
    y = fmuladd(k, ef, real(k, LN2_LOW), y);
    y = fmuladd(k, f2, real(k, -0.5), y);
    LLVMValueRef result = fmuladd(k, ef, real(k, LN2_HIGH), LLVMBuildFAdd(k->b, f, y, ""));
    result = LLVMBuildSelect(k->b, fcmp(k, LLVMRealOEQ, x, INFINITY), real(k, INFINITY), result, "");
    result = LLVMBuildSelect(k->b, fcmp(k, LLVMRealOEQ, x, 0), real(k, -INFINITY), result, "");
    return LLVMBuildSelect(k->b, fcmp(k, LLVMRealULT, x, 0), real(k, NAN), result, "");
}

/* tanh x = sign(x) tanh a, a = |x|:
 *   a < 0.625: a + a^3 P(a^2), P of degree 4 (Cephes tanhf), where the
 *              other form would cancel;
 *   otherwise: 1 - 2 / (exp(2a) + 1), which rounds to 1 from a = 9.01 on
 *              and is 1 at inf (exp(2a) = inf).
 * The sign goes on last (copysign), so tanh(-0) = -0; NaN stays NaN. */
LLVMValueRef cg_vmath_tanh(cg_kernel *k, LLVMValueRef x) {
    static const double p[] = {-3.33332819422E-1, 1.33314422036E-1, -5.37397155531E-2, 2.06390887954E-2,
                               -5.70498872745E-3};
    LLVMValueRef a = cg_intrinsic(k, "llvm.fabs", k->t.f32, &x, 1);
    LLVMValueRef a2 = LLVMBuildFMul(k->b, a, a, "");
    LLVMValueRef small = fmuladd(k, LLVMBuildFMul(k->b, polynomial(k, a2, p, 5), a2, ""), a, a);
    LLVMValueRef e = cg_vmath_exp(k, LLVMBuildFAdd(k->b, a, a, ""));
    LLVMValueRef q = LLVMBuildFDiv(k->b, real(k, 2), LLVMBuildFAdd(k->b, e, real(k, 1), ""), "");
    LLVMValueRef large = LLVMBuildFSub(k->b, real(k, 1), q, "");
    LLVMValueRef result = LLVMBuildSelect(k->b, fcmp(k, LLVMRealOLT, a, 0.625), small, large, "");
    LLVMValueRef args[2] = {result, x};
    return cg_intrinsic(k, "llvm.copysign", k->t.f32, args, 2);
}

/* sigmoid x = 1 / (1 + exp(-x)), from e = exp(-|x|) in (0, 1]:
 *   x >= 0: 1 / (1 + e);
 *   x < 0:  e / (1 + e), which keeps tiny results (down to denormals)
 *           accurate instead of 1 / (1 + inf) = 0 from x < -88.7.
 * One division either way, so one rounding after exp's.
 * sigmoid(+inf) = 1, sigmoid(-inf) = 0, sigmoid(0) = 0.5; NaN stays NaN. */
LLVMValueRef cg_vmath_sigmoid(cg_kernel *k, LLVMValueRef x) {
    LLVMValueRef a = cg_intrinsic(k, "llvm.fabs", k->t.f32, &x, 1);
    LLVMValueRef e = cg_vmath_exp(k, LLVMBuildFNeg(k->b, a, ""));
    LLVMValueRef numerator = LLVMBuildSelect(k->b, fcmp(k, LLVMRealOLT, x, 0), e, real(k, 1), "");
    return LLVMBuildFDiv(k->b, numerator, LLVMBuildFAdd(k->b, e, real(k, 1), ""), "");
}
