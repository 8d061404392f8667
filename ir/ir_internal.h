/*
 * ir_internal.h - what the files of ir/ share with each other and with
 * nobody else: error reporting, the shape rules, and the spelling of a
 * permutation (which both a shape rule's message and the dump print).
 */
#ifndef MDL_IR_INTERNAL_H
#define MDL_IR_INTERNAL_H

#include "ir.h"

/* Writes the message to g->error and returns -1, for `return ir_fail(...)`. */
int ir_fail(ir_graph *g, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Runs n's shape rule (shape.c): n's inputs are valid nodes of g; sets
 * n->dtype and n->shape, or returns -1 with g->error set. */
int ir_infer_shape(ir_graph *g, ir_node *n);

/* "2,0,1": the first `rank` entries of perm, into buf; returns buf. */
char *ir_perm_str(const int *perm, int rank, char *buf, size_t size);

/* The shape rules of the recurrence ops (scan.c). */
int shape_scan(ir_graph *g, ir_node *n);
int shape_scan_carry(ir_graph *g, ir_node *n);
int shape_scan_slice(ir_graph *g, ir_node *n);
int shape_scan_stack(ir_graph *g, ir_node *n);
int shape_scan_final(ir_graph *g, ir_node *n);

#endif
