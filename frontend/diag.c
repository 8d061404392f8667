/*
 * diag.c - clang-style diagnostics.
 *
 *   model.mdl:5:7: error: operands of 'add' have incompatible shapes ...
 *   y = x + v
 *         ^
 *
 * The marker line copies the tabs of the source line and skips the
 * continuation bytes of UTF-8 characters, so the caret lines up whatever
 * the tab width; the ~ run under the rest of the construct stops at the end
 * of the line.  A note may carry a fix-it, the text that would replace the
 * construct, printed on a third line under the caret (the "did you mean"
 * notes, whose candidates suggest.c picks).  Control bytes in the echoed line are shown as blanks so a
 * stray NUL or escape cannot garble the terminal.  Errors are counted;
 * after a limit one line says so and the rest (with their notes) are
 * dropped, and diag_limit_reached tells a phase to stop.  Nothing here
 * knows about the parser, so every phase reports the same way.
 */
#include <string.h>

#include "ast.h"

static int error_count;
static int error_limit = 20;
static int dropping;       /* the last error was over the limit: drop its notes too */
static FILE *diag_out;

static FILE *out(void) { return diag_out ? diag_out : stderr; }

void diag_set_stream(FILE *f) { diag_out = f; }
int diag_error_count(void) { return error_count; }
void diag_set_limit(int max_errors) { error_limit = max_errors; }
int diag_limit_reached(void) { return error_limit > 0 && error_count > error_limit; }

static int quiet;

int diag_quiet_begin(void) {
    quiet = 1;
    return error_count;
}

int diag_quiet_end(int begun) {
    int errors = error_count - begun;
    quiet = 0;
    error_count = begun;
    dropping = 0;
    return errors;
}

void diag_reset(void) {
    error_count = 0;
    dropping = 0;
}

static int is_utf8_continuation(unsigned char c) { return c >= 0x80 && c < 0xC0; }

enum { MAX_SHOWN = 160 }; /* a longer line is shown as a window around the caret */

/* Blanks that bring the next column under byte `col` of the line (tabs
 * copied, one blank a UTF-8 character). */
static void pad_to(FILE *o, const char *start, int from, int col) {
    for (int i = from; i < col - 1; i++) {
        unsigned char c = (unsigned char)start[i];
        if (!is_utf8_continuation(c))
            fputc(c == '\t' ? '\t' : ' ', o);
    }
}

/* Prints the source line of loc and a ^~~~ marker under it, and under
 * that the fix-it's text when there is one. */
static void show_line(FILE *o, src_loc loc, const char *fixit) {
    const src_file *f = loc.file;
    if (!f || loc.line < 1 || loc.line > f->n_lines)
        return;
    const char *start = f->text + f->line_start[loc.line - 1];
    const char *end = start;
    while (end < f->text + f->len && *end != '\n')
        end++;
    int len = (int)(end - start);
    if (len > 0 && start[len - 1] == '\r')
        len--;
    int col = loc.col < 1 ? 1 : loc.col > len + 1 ? len + 1 : loc.col;

    /* a byte order mark takes no room on screen: leave it out */
    int bom = loc.line == 1 && len >= 3 && memcmp(start, "\xEF\xBB\xBF", 3) == 0 && col > 3 ? 3 : 0;
    int from = bom, to = len;
    if (len - bom > MAX_SHOWN) {
        from = col - 1 - MAX_SHOWN / 2;
        from = from < bom ? bom : from > len - MAX_SHOWN ? len - MAX_SHOWN : from;
        while (from > bom && is_utf8_continuation((unsigned char)start[from]))
            from--;
        to = from + MAX_SHOWN;
        while (to < len && is_utf8_continuation((unsigned char)start[to]))
            to++;
    }
    int cut = from > bom;
    fputs(cut ? "..." : "", o);
    for (int i = from; i < to; i++) {
        unsigned char c = (unsigned char)start[i];
        fputc(c == '\t' || (c >= ' ' && c != 0x7F) ? c : ' ', o);
    }
    fputs(to < len ? "...\n" : "\n", o);

    fputs(cut ? "   " : "", o);
    pad_to(o, start, from, col);
    fputc('^', o);
    int stop = col - 1 + (loc.len > 1 ? loc.len : 1);
    for (int i = col; i < stop && i < to; i++)
        if (!is_utf8_continuation((unsigned char)start[i]))
            fputc('~', o);
    fputc('\n', o);
    if (fixit) {
        fputs(cut ? "   " : "", o);
        pad_to(o, start, from, col);
        fprintf(o, "%s\n", fixit);
    }
}

static void report(const char *kind, src_loc loc, const char *fixit, const char *fmt, va_list ap) {
    FILE *o = out();
    if (quiet) {
        error_count += strcmp(kind, "error") == 0;
        return;
    }
    if (strcmp(kind, "error") == 0) {
        error_count++;
        dropping = error_limit > 0 && error_count > error_limit;
        if (dropping) {
            if (error_count == error_limit + 1)
                fprintf(o, "mdlc: error: too many errors, stopping\n");
            return;
        }
    } else if (dropping) {
        return;
    }
    if (loc.file)
        fprintf(o, "%s:%d:%d: %s: ", loc.file->path, loc.line, loc.col, kind);
    else
        fprintf(o, "mdlc: %s: ", kind);
    vfprintf(o, fmt, ap);
    fputc('\n', o);
    show_line(o, loc, fixit);
}

void diag_verror(const char *kind, src_loc loc, const char *fmt, va_list ap) { report(kind, loc, NULL, fmt, ap); }

void diag_note_fixit(src_loc loc, const char *replacement, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    report("note", loc, replacement, fmt, ap);
    va_end(ap);
}

void diag_error(src_loc loc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    diag_verror("error", loc, fmt, ap);
    va_end(ap);
}

void diag_note(src_loc loc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    diag_verror("note", loc, fmt, ap);
    va_end(ap);
}

void diag_warning(src_loc loc, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    diag_verror("warning", loc, fmt, ap);
    va_end(ap);
}

void diag_plain(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    diag_verror("error", (src_loc){0}, fmt, ap);
    va_end(ap);
}
