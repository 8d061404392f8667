/*
 * dump.c - the graph's printed forms.
 *
 * ir_dump is the textual IR of --emit=ir and of the golden tests: one node
 * a line with its op, inputs, attributes and type, then the results.  Its
 * output is compared byte for byte, so any change here is a change of every
 * golden file.  ir_dump_dot draws the same nodes for Graphviz (--emit=dot).
 */
#include "ir.h"
#include "ir_internal.h"

/* "2,0,1" */
char *ir_perm_str(const int *perm, int rank, char *buf, size_t size) {
    size_t used = 0;
    buf[0] = 0;
    for (int d = 0; d < rank && used < size; d++)
        used += (size_t)snprintf(buf + used, size - used, "%s%d", d ? "," : "", perm[d]);
    return buf;
}

static void dump_attrs(const ir_graph *g, const ir_node *n, FILE *out) {
    switch (n->op) {
    case IR_INPUT:
        if (n->flags) /* of the generation entry */
            fprintf(out, " %s generate", g->gen_inputs[n->index].name);
        else
            fprintf(out, " %s%s", g->inputs[n->index].name, g->inputs[n->index].is_target ? " target" : "");
        break;
    case IR_PARAM:
        fprintf(out, " %s%s", g->params[n->index].name,
                g->params[n->index].trainable                       ? ""
                : g->params[n->index].state == IR_STATE_CACHE ? " cache"
                                                              : " state");
        break;
    case IR_HYPER:
        fprintf(out, " %s", g->hypers[n->index].name);
        break;
    case IR_CONST:
        fprintf(out, " %.9g", n->value);
        break;
    case IR_REDUCE_SUM:
    case IR_REDUCE_MAX:
    case IR_NUMEL:
        fprintf(out, " axes=");
        for (int i = 0, first = 1; i < IR_MAX_RANK; i++)
            if ((n->axes >> i) & 1) {
                fprintf(out, "%s%d", first ? "" : ",", i);
                first = 0;
            }
        if (n->keepdims)
            fprintf(out, " keepdims");
        break;
    case IR_ARGMAX:
    case IR_CONCAT:
    case IR_IOTA:
    case IR_SCAN_SLICE:
    case IR_SCAN_STACK:
        fprintf(out, " axis=%d", n->axis);
        break;
    case IR_SCAN:
        fprintf(out, " steps=%lld%s", (long long)n->stop, n->flags ? " reverse" : "");
        break;
    case IR_SCAN_CARRY:
        fprintf(out, " next=%%%d", n->link);
        break;
    case IR_SLICE:
        fprintf(out, " axis=%d start=%lld stop=%lld", n->axis, (long long)n->start, (long long)n->stop);
        break;
    case IR_PAD:
        fprintf(out, " axis=%d start=%lld", n->axis, (long long)n->start);
        break;
    case IR_CONV2D:
    case IR_CONV2D_GRAD_INPUT:
    case IR_CONV2D_GRAD_WEIGHT:
        fprintf(out, " stride=%d padding=%d", n->stride, n->padding);
        break;
    case IR_MAX_POOL2D:
    case IR_MAX_POOL2D_GRAD:
    case IR_MAX_POOL2D_PICK:
    case IR_AVG_POOL2D:
    case IR_AVG_POOL2D_GRAD:
        fprintf(out, " size=%d stride=%d", n->size, n->stride);
        break;
    case IR_DROPOUT:
        fprintf(out, " p=%.9g seed=%u", n->value, (unsigned)n->seed);
        break;
    case IR_TRANSPOSE: {
        char p[64];
        fprintf(out, " perm=%s", ir_perm_str(n->perm, g->nodes[n->inputs[0]].shape.rank, p, sizeof p));
        break;
    }
    case IR_MATMUL:
        if (n->lead_dims) /* one product per index of the leading dims */
            fprintf(out, " batched=%d", n->lead_dims);
        if (n->flags & IR_TRANSPOSE_A)
            fprintf(out, " ta");
        if (n->flags & IR_TRANSPOSE_B)
            fprintf(out, " tb");
        break;
    default:
        break;
    }
}

/* One node a line:  %7 = add %3, %6 : f32[B,1] */
void ir_dump(const ir_graph *g, const unsigned char *live, FILE *out) {
    fprintf(out, "model %s  # max batch %lld\n", g->model_name, (long long)g->max_batch);
    for (int i = 0; i < g->n_nodes; i++) {
        if (live && !live[i])
            continue;
        const ir_node *n = &g->nodes[i];
        char ty[160];
        /* a scan's body nodes are indented and name their scan */
        fprintf(out, "%s%%%d = %s", n->region ? "    " : "  ", i, ir_ops[n->op].name);
        for (int k = 0; k < n->n_inputs; k++)
            fprintf(out, "%s%%%d", k ? ", " : " ", n->inputs[k]);
        dump_attrs(g, n, out);
        if (n->region)
            fprintf(out, " in %%%d", n->region);
        fprintf(out, " : %s\n", ir_type_str(n->dtype, &n->shape, ty, sizeof ty));
    }
    if (g->loss >= 0)
        fprintf(out, "  loss %%%d\n", g->loss);
    for (int i = 0; i < g->n_metrics; i++)
        fprintf(out, "  metric %s %%%d\n", g->metrics[i].name, g->metrics[i].node);
    for (int i = 0; i < g->n_outputs; i++)
        fprintf(out, "  output %s %%%d\n", g->outputs[i].name, g->outputs[i].node);
    for (int i = 0; i < g->n_gen_outputs; i++)
        fprintf(out, "  generate output %s %%%d\n", g->gen_outputs[i].name, g->gen_outputs[i].node);
    for (int i = 0; i < g->n_params; i++)
        if (g->params[i].grad >= 0)
            fprintf(out, "  grad %s %%%d\n", g->params[i].name, g->params[i].grad);
}

void ir_dump_dot(const ir_graph *g, const unsigned char *live, FILE *out) {
    fprintf(out, "digraph \"%s\" {\n  rankdir=TB;\n  node [fontname=\"monospace\", fontsize=10];\n",
            g->model_name);
    for (int i = 0; i < g->n_nodes; i++) {
        if (live && !live[i])
            continue;
        const ir_node *n = &g->nodes[i];
        char ty[160];
        const char *shape = ir_ops[n->op].cls == IR_LEAF ? "box" : "ellipse";
        fprintf(out, "  n%d [shape=%s, label=\"%%%d %s", i, shape, i, ir_ops[n->op].name);
        if (n->op == IR_PARAM)
            fprintf(out, " %s", g->params[n->index].name);
        else if (n->op == IR_INPUT)
            fprintf(out, " %s", n->flags ? g->gen_inputs[n->index].name : g->inputs[n->index].name);
        else if (n->op == IR_CONST)
            fprintf(out, " %.6g", n->value);
        fprintf(out, "\\n%s\"];\n", ir_type_str(n->dtype, &n->shape, ty, sizeof ty));
        for (int k = 0; k < n->n_inputs; k++)
            fprintf(out, "  n%d -> n%d;\n", n->inputs[k], i);
    }
    if (g->loss >= 0 && (!live || live[g->loss]))
        fprintf(out, "  loss [shape=plaintext]; n%d -> loss;\n", g->loss);
    fprintf(out, "}\n");
}
