/*
 * cg_scan.c - recurrence: the data movement of a scan's loop.
 *
 * A scan has no kernel of its own.  Its loop is written into the entry
 * point (cg_module.c, emit_scan): before it the carries take their initial
 * values; each step copies the step's slice of every sequence into its
 * slice buffer, calls the kernels of the body like any others, copies the
 * step's values into the stacks and the next values into the carries;
 * after it the finals take the carries.  The body's kernels run on fixed
 * buffers, so only the copies know which step it is.  This file writes
 * those copies, as loops of llvm.memcpy over rows (a slice along an axis is
 * `outer` rows of `inner` contiguous elements), and the step count.
 */
#include "cg_internal.h"

/* Bytes of one element of a tensor of type t in this module. */
static int64_t element_bytes(const cg_kernel *k, ir_dtype t) { return t == IR_I32 || !k->f64 ? 4 : 8; }

static void memcpy_bytes(cg_kernel *k, LLVMValueRef dst, LLVMValueRef src, LLVMValueRef bytes) {
    LLVMTypeRef over[3] = {k->t.ptr, k->t.ptr, k->t.i64};
    LLVMValueRef args[4] = {dst, src, bytes, LLVMConstInt(k->t.i1, 0, 0)};
    unsigned id = LLVMLookupIntrinsicID("llvm.memcpy", 11);
    LLVMValueRef fn = LLVMGetIntrinsicDeclaration(k->mod, id, over, 3);
    LLVMBuildCall2(k->b, LLVMIntrinsicGetType(k->ctx, id, over, 3), fn, args, 4, "");
}

static LLVMValueRef byte_offset(cg_kernel *k, LLVMValueRef base, LLVMValueRef bytes) {
    LLVMTypeRef i8 = LLVMInt8TypeInContext(k->ctx);
    return LLVMBuildInBoundsGEP2(k->b, i8, base, &bytes, 1, "");
}

void cg_copy_tensor(cg_kernel *k, const ir_node *n, LLVMValueRef dst, LLVMValueRef src) {
    LLVMValueRef count = cg_dims_product(k, &n->shape, 0, n->shape.rank);
    memcpy_bytes(k, dst, src, cg_mul(k, count, cg_i64(k, element_bytes(k, n->dtype))));
}

void cg_fill_tensor(cg_kernel *k, const ir_node *n, LLVMValueRef dst, double value) {
    LLVMTypeRef t = cg_type(k, n->dtype);
    LLVMValueRef v = n->dtype == IR_I32 ? LLVMConstInt(t, (unsigned long long)(long long)value, 1) : LLVMConstReal(t, value);
    cg_loop i = cg_loop_begin(k, cg_dims_product(k, &n->shape, 0, n->shape.rank), "fill");
    cg_store(k, v, dst, i.index);
    cg_loop_end(k, &i);
}

/* One step of a sequence: the `outer` rows of `inner` elements at step t
 * of seq (shape `s`, steps along `axis`) from or into the packed buffer
 * `step`: into_sequence 0 reads the slice, 1 writes the stack. */
void cg_copy_step(cg_kernel *k, const ir_shape *s, int axis, ir_dtype t, LLVMValueRef seq, LLVMValueRef step,
                  LLVMValueRef index, int into_sequence) {
    LLVMValueRef size = cg_i64(k, element_bytes(k, t));
    LLVMValueRef outer = cg_dims_product(k, s, 0, axis);
    LLVMValueRef row = cg_mul(k, cg_dims_product(k, s, axis + 1, s->rank), size);
    LLVMValueRef seq_row = cg_mul(k, row, cg_i64(k, s->dims[axis]));
    LLVMValueRef at = byte_offset(k, seq, cg_mul(k, row, index));
    cg_loop o = cg_loop_begin(k, outer, "rows");
    LLVMValueRef in_seq = byte_offset(k, at, cg_mul(k, o.index, seq_row));
    LLVMValueRef in_step = byte_offset(k, step, cg_mul(k, o.index, row));
    if (into_sequence)
        memcpy_bytes(k, in_seq, in_step, row);
    else
        memcpy_bytes(k, in_step, in_seq, row);
    cg_loop_end(k, &o);
}

/* steps = hyper >= 1 && hyper < T ? (i64)hyper : T, the hyper an f32
 * (a double in the f64 variant) */
LLVMValueRef cg_scan_steps(cg_kernel *k, const ir_node *scan, LLVMValueRef hyper) {
    LLVMValueRef want = LLVMBuildLoad2(k->b, k->t.real, hyper, "scan_steps");
    LLVMValueRef all = cg_i64(k, scan->stop);
    LLVMValueRef some = LLVMBuildAnd(k->b, LLVMBuildFCmp(k->b, LLVMRealOGE, want, LLVMConstReal(k->t.real, 1), ""),
                                     LLVMBuildFCmp(k->b, LLVMRealOLT, want, LLVMConstReal(k->t.real, (double)scan->stop), ""), "");
    LLVMValueRef n = LLVMBuildFPToSI(k->b, want, k->t.i64, "");
    return LLVMBuildSelect(k->b, some, n, all, "steps");
}

/* The scan ops have no kernels: emit_scan moves their data. */
static int no_kernel(cg_kernel *k) {
    cg_error("%s: has no kernel of its own (written by its scan's loop)", ir_ops[k->node->op].name);
    return -1;
}
int cg_kernel_scan(cg_kernel *k) { return no_kernel(k); }
int cg_kernel_scan_carry(cg_kernel *k) { return no_kernel(k); }
int cg_kernel_scan_slice(cg_kernel *k) { return no_kernel(k); }
int cg_kernel_scan_stack(cg_kernel *k) { return no_kernel(k); }
int cg_kernel_scan_final(cg_kernel *k) { return no_kernel(k); }
