/*
 * rt_svg.c - the drawing primitives of `plot`: an SVG document written
 * into an rt_buf, and axes with readable ticks.
 *
 * The picture is plain SVG 1.1 that any browser or renderer accepts:
 * lines, polylines, circles and text, with coordinates in pixels rounded
 * to a tenth (finer is invisible and only bloats the file).  Text comes
 * from file and column names, so it is escaped for XML, with control
 * characters and bytes that are not UTF-8 replaced, since either would
 * make the whole document unreadable.
 *
 * An axis maps data values to [0, 1].  Its ticks step by 1, 2 or 5 times
 * a power of ten, about five of them, so a label never reads 0.1428; a
 * log axis ticks at powers of ten (and at 2 and 5 within a single
 * decade).
 */
#include "rt_internal.h"

#include <math.h>
#include <string.h>

/*
 * The document
 */

void rt_svg_begin(rt_buf *b, int width, int height) {
    rt_buf_printf(b,
                  "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                  "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%d\" height=\"%d\" "
                  "viewBox=\"0 0 %d %d\" font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\">\n"
                  "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"white\"/>\n",
                  width, height, width, height, width, height);
}

void rt_svg_end(rt_buf *b) { rt_buf_printf(b, "</svg>\n"); }

/* The length of the UTF-8 sequence at s (at most `left` bytes), 0 if it
 * is not one. */
static int utf8_length(const unsigned char *s, size_t left) {
    int n = s[0] >= 0xf0 && s[0] <= 0xf4 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 && s[0] < 0xe0 ? 2 : 0;
    if (n == 0 || (size_t)n > left)
        return 0;
    for (int i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    return n;
}

/* `text` as XML character data or an attribute value. */
void rt_svg_escape(rt_buf *b, const char *text) {
    const unsigned char *s = (const unsigned char *)text;
    size_t len = strlen(text);
    for (size_t i = 0; i < len;) {
        const char *entity = s[i] == '&'    ? "&amp;"
                             : s[i] == '<'  ? "&lt;"
                             : s[i] == '>'  ? "&gt;"
                             : s[i] == '"'  ? "&quot;"
                             : s[i] == '\'' ? "&apos;"
                                            : NULL;
        if (entity) {
            rt_buf_add(b, entity, strlen(entity));
            i++;
        } else if (s[i] < 0x20 || s[i] == 0x7f) {
            rt_buf_add(b, "?", 1); /* not allowed in XML 1.0, even escaped */
            i++;
        } else if (s[i] < 0x80) {
            rt_buf_add(b, s + i, 1);
            i++;
        } else {
            int n = utf8_length(s + i, len - i);
            rt_buf_add(b, n ? (const char *)s + i : "?", n ? (size_t)n : 1);
            i += n ? (size_t)n : 1;
        }
    }
}

/* anchor: "start", "middle" or "end"; rotate: degrees about (x, y). */
void rt_svg_text(rt_buf *b, double x, double y, const char *anchor, int size, double rotate, const char *text) {
    rt_buf_printf(b, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"%d\" text-anchor=\"%s\"", x, y, size, anchor);
    if (rotate != 0)
        rt_buf_printf(b, " transform=\"rotate(%g %.1f %.1f)\"", rotate, x, y);
    rt_buf_printf(b, ">");
    rt_svg_escape(b, text);
    rt_buf_printf(b, "</text>\n");
}

static void stroke(rt_buf *b, const char *colour, double width, int dashed) {
    rt_buf_printf(b, " fill=\"none\" stroke=\"%s\" stroke-width=\"%g\"", colour, width);
    if (dashed)
        rt_buf_printf(b, " stroke-dasharray=\"6 4\"");
}

void rt_svg_line(rt_buf *b, double x1, double y1, double x2, double y2, const char *colour, double width, int dashed) {
    rt_buf_printf(b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"", x1, y1, x2, y2);
    stroke(b, colour, width, dashed);
    rt_buf_printf(b, "/>\n");
}

/* n points (x0, y0, x1, y1, ...). */
void rt_svg_polyline(rt_buf *b, const double *xy, int n, const char *colour, double width, int dashed) {
    rt_buf_printf(b, "<polyline points=\"");
    for (int i = 0; i < n; i++)
        rt_buf_printf(b, "%s%.1f,%.1f", i ? " " : "", xy[2 * i], xy[2 * i + 1]);
    rt_buf_printf(b, "\"");
    stroke(b, colour, width, dashed);
    rt_buf_printf(b, " stroke-linejoin=\"round\"/>\n");
}

void rt_svg_circle(rt_buf *b, double x, double y, double r, const char *colour, int filled) {
    rt_buf_printf(b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"%g\" fill=\"%s\" stroke=\"%s\"/>\n", x, y, r,
                  filled ? colour : "white", colour);
}

void rt_svg_rect(rt_buf *b, double x, double y, double w, double h, const char *stroke_colour) {
    rt_buf_printf(b, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"%s\"/>\n", x, y,
                  w, h, stroke_colour);
}

/*
 * Axes
 */

/* The nearest of 1, 2, 5 (times a power of ten) to `raw` (Heckbert's
 * "nice numbers"): a range asking for five ticks gets four to ten. */
static double nice_step(double raw) {
    double magnitude = pow(10, floor(log10(raw)));
    double f = raw / magnitude;
    return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * magnitude;
}

static void add_tick(rt_axis *a, double v) {
    if (a->n_ticks < RT_AXIS_MAX_TICKS)
        a->ticks[a->n_ticks++] = v;
}

static void fit_linear(rt_axis *a, double min, double max, int snap, int integer) {
    if (max - min < 1e-12 * fmax(fabs(min), fabs(max)) || max == min) {
        double pad = min == 0 ? 1 : fabs(min) * 0.1;
        min -= pad, max += pad;
    }
    a->step = nice_step((max - min) / 5);
    if (integer && a->step < 1)
        a->step = 1;
    a->lo = snap ? floor(min / a->step + 1e-9) * a->step : min;
    a->hi = snap ? ceil(max / a->step - 1e-9) * a->step : max;
    for (double k = ceil(a->lo / a->step - 1e-9); k * a->step <= a->hi + a->step * 1e-9; k++)
        add_tick(a, k * a->step == 0 ? 0 : k * a->step); /* no -0 */
}

static void fit_log(rt_axis *a, double min, double max) {
    double first = floor(log10(min) + 1e-9), last = ceil(log10(max) - 1e-9);
    if (last <= first)
        last = first + 1;
    a->lo = pow(10, first);
    a->hi = pow(10, last);
    int every = (int)ceil((last - first) / 8); /* at most about eight decades labelled */
    for (double e = first; e <= last; e += every) {
        add_tick(a, pow(10, e));
        if (last - first == 1 && e < last) {
            add_tick(a, 2 * pow(10, e));
            add_tick(a, 5 * pow(10, e));
        }
    }
}

/* Fits an axis to the values in [min, max].  snap: widen it to whole
 * ticks; integer: ticks on integers only (epochs, steps); log: a log
 * scale, for which min must be > 0. */
void rt_axis_fit(rt_axis *a, double min, double max, int snap, int integer, int log_scale) {
    memset(a, 0, sizeof *a);
    a->log = log_scale;
    if (log_scale)
        fit_log(a, min, max);
    else
        fit_linear(a, min, max, snap, integer);
}

/* Where v falls on the axis: 0 at lo, 1 at hi. */
double rt_axis_position(const rt_axis *a, double v) {
    if (a->log)
        return (log10(v) - log10(a->lo)) / (log10(a->hi) - log10(a->lo));
    return (v - a->lo) / (a->hi - a->lo);
}

/* A tick's label: as many decimals as the step needs, exponents only for
 * the very large and the very small. */
void rt_axis_label(const rt_axis *a, double v, char *buf, size_t size) {
    if (a->log) {
        double e = round(log10(v));
        if (fabs(e) <= 4)
            snprintf(buf, size, "%g", v);
        else
            snprintf(buf, size, "%.3ge%d", v / pow(10, e), (int)e);
        return;
    }
    double big = fmax(fabs(a->lo), fabs(a->hi));
    if (big >= 1e6 || a->step < 1e-4) {
        snprintf(buf, size, "%.3g", v);
        return;
    }
    int decimals = a->step >= 1 ? 0 : (int)ceil(-log10(a->step) - 1e-9);
    snprintf(buf, size, "%.*f", decimals, v);
}
