/*
 * test_svg.c - unit tests of rt_svg.c: the ticks and labels `plot` puts on
 * its axes, and the escaping that keeps file and column names from
 * breaking the SVG's XML.
 */
#include "rt_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../test.h"

/* The axis's tick labels, joined by spaces. */
static void labels(const rt_axis *a, char *buf, size_t size) {
    buf[0] = '\0';
    for (int k = 0; k < a->n_ticks; k++) {
        char one[64];
        rt_axis_label(a, a->ticks[k], one, sizeof one);
        snprintf(buf + strlen(buf), size - strlen(buf), "%s%s", k ? " " : "", one);
    }
}

static void check_axis(double min, double max, int snap, int integer, int log_scale, const char *want, double lo,
                       double hi) {
    rt_axis a;
    char got[512];
    rt_axis_fit(&a, min, max, snap, integer, log_scale);
    labels(&a, got, sizeof got);
    CHECK_MSG(strcmp(got, want) == 0, "axis [%g, %g]: ticks '%s', wanted '%s'", min, max, got, want);
    CHECK_MSG(fabs(a.lo - lo) <= 1e-12 * fmax(1, fabs(lo)) && fabs(a.hi - hi) <= 1e-12 * fmax(1, fabs(hi)),
              "axis [%g, %g]: range [%g, %g], wanted [%g, %g]", min, max, a.lo, a.hi, lo, hi);
    /* the ends of the range map to 0 and 1, and every tick lies between */
    CHECK(fabs(rt_axis_position(&a, a.lo)) < 1e-12 && fabs(rt_axis_position(&a, a.hi) - 1) < 1e-12);
    for (int k = 0; k < a.n_ticks; k++)
        CHECK(rt_axis_position(&a, a.ticks[k]) > -1e-9 && rt_axis_position(&a, a.ticks[k]) < 1 + 1e-9);
}

static void test_axes(void) {
    /* a loss from 0.76 down to 0.16: steps of 0.1, widened to whole ticks */
    check_axis(0.16, 0.76, 1, 0, 0, "0.1 0.2 0.3 0.4 0.5 0.6 0.7 0.8", 0.1, 0.8);
    /* accuracies: 0.05 needs two decimals */
    check_axis(0.74, 0.97, 1, 0, 0, "0.70 0.75 0.80 0.85 0.90 0.95 1.00", 0.7, 1.0);
    /* epochs 1..12 on an unsnapped integer axis */
    check_axis(1, 12, 0, 1, 0, "2 4 6 8 10 12", 1, 12);
    /* 3 epochs: never a tick at 1.5 */
    check_axis(1, 3, 0, 1, 0, "1 2 3", 1, 3);
    /* steps 1..30000 */
    check_axis(1, 30000, 0, 1, 0, "5000 10000 15000 20000 25000 30000", 1, 30000);
    /* a flat line is padded to a range around it */
    check_axis(2, 2, 1, 0, 0, "1.8 1.9 2.0 2.1 2.2", 1.8, 2.2);
    check_axis(0, 0, 1, 0, 0, "-1.0 -0.5 0.0 0.5 1.0", -1, 1);
    /* crossing zero: no "-0.0" */
    check_axis(-0.3, 0.2, 1, 0, 0, "-0.3 -0.2 -0.1 0.0 0.1 0.2", -0.3, 0.2);
    /* very small and very large values switch to exponents */
    check_axis(2e-6, 9e-6, 1, 0, 0, "2e-06 3e-06 4e-06 5e-06 6e-06 7e-06 8e-06 9e-06", 2e-6, 9e-6);
    check_axis(1e7, 4e7, 1, 0, 0, "1e+07 1.5e+07 2e+07 2.5e+07 3e+07 3.5e+07 4e+07", 1e7, 4e7);
    /* log scale: whole decades; within one decade also 2 and 5 */
    check_axis(9.4e-5, 32, 0, 0, 1, "1e-5 0.0001 0.001 0.01 0.1 1 10 100", 1e-5, 100);
    check_axis(0.16, 0.76, 0, 0, 1, "0.1 0.2 0.5 1", 0.1, 1);
    /* many decades: at most about eight labelled */
    check_axis(1e-9, 1e9, 0, 0, 1, "1e-9 1e-6 0.001 1 1000 1e6 1e9", 1e-9, 1e9);
}

static void check_escape(const char *text, const char *want) {
    rt_buf b = {0};
    rt_svg_escape(&b, text);
    CHECK_STR(b.data ? b.data : "", want);
    free(b.data);
}

static void test_escape(void) {
    check_escape("lr_0.1", "lr_0.1");
    check_escape("a&b <c> \"d\" 'e'", "a&amp;b &lt;c&gt; &quot;d&quot; &apos;e&apos;");
    /* control characters are not allowed in XML 1.0 even as references */
    check_escape("tab\there\x01\x7f", "tab?here??");
    /* UTF-8 stays; bytes that are not UTF-8 become '?' */
    check_escape("caf\xc3\xa9 \xe2\x86\x92 \xf0\x9f\x93\x88", "caf\xc3\xa9 \xe2\x86\x92 \xf0\x9f\x93\x88");
    check_escape("latin1 caf\xe9!", "latin1 caf?!");
    check_escape("cut \xe2\x86", "cut ??");
    check_escape("\xc0\xaf overlong", "?? overlong");
}

int main(void) {
    test_axes();
    test_escape();
    printf("%d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}
