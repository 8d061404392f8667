/*
 * cg_scan.c - recurrence: a scan's loop in the entry point.  (Being
 * written: until then a model with a scan is refused by the code
 * generator, though the interpreter runs it.)
 */
#include "cg_internal.h"

static int not_yet(cg_kernel *k) {
    (void)k;
    cg_error("scan: the code generator does not compile recurrences yet");
    return -1;
}

int cg_kernel_scan(cg_kernel *k) { return not_yet(k); }
int cg_kernel_scan_carry(cg_kernel *k) { return not_yet(k); }
int cg_kernel_scan_slice(cg_kernel *k) { return not_yet(k); }
int cg_kernel_scan_stack(cg_kernel *k) { return not_yet(k); }
int cg_kernel_scan_final(cg_kernel *k) { return not_yet(k); }
