/*
 * dump.c - the graph's printed forms.
 *
 * ir_dump is the textual IR of --emit=ir and of the golden tests: one node
 * a line with its op, inputs, attributes and type, then the results.  Its
 * output is compared byte for byte, so any change here is a change of every
 * golden file.  ir_dump_dot draws the same nodes for Graphviz (--emit=dot),
 * coloured by forward, gradient and optimizer parts, with fused kernels as
 * clusters.
 */
#include <stdlib.h>
#include <string.h>

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

/* ------------------------------------------------------------------ dot
 *
 * The picture colours each node by the part of the training step it
 * belongs to, found from what depends on it: forward (what the loss,
 * metrics, outputs and state updates need), gradient (what the gradients
 * need beyond that) and optimizer (what the parameter updates need beyond
 * both).  Leaves are boxes: inputs, parameters, optimizer state, hypers
 * and constants each in their own fill.  Nodes that one fused kernel
 * computes sit in a cluster with a purple border named after its root, and
 * a scan's body in a dashed cluster; a legend explains the colours.  The
 * text is deterministic (node order), so it can be a golden file. */

typedef enum { DOT_FORWARD, DOT_GRADIENT, DOT_OPTIMIZER } dot_part;

#define DOT_FILL_FORWARD "#cfe2ff"   /* light blue */
#define DOT_FILL_GRADIENT "#ffd6c9"  /* light red */
#define DOT_FILL_OPTIMIZER "#cdeccb" /* light green */
#define DOT_FILL_INPUT "#e0e0e0"     /* grey */
#define DOT_FILL_WEIGHT "#ffe8a3"    /* yellow */
#define DOT_FILL_MOMENT "#eaf5e9"    /* pale green: the optimizer's own state */
#define DOT_FILL_STATE "#e8dcf5"     /* lilac: a `state` */
#define DOT_FILL_OTHER "#f7f7f7"     /* hyper, const, numel */
#define DOT_KERNEL_BORDER "#7b3fa0"  /* purple */

static const char *const dot_part_fill[] = {DOT_FILL_FORWARD, DOT_FILL_GRADIENT, DOT_FILL_OPTIMIZER};
#define DOT_FONT "fontname=\"Helvetica\""

/* part[i] for every node: marked from the loss's side first, so a node
 * both sides need counts as forward. */
static unsigned char *dot_parts_of(const ir_graph *g) {
    int n = g->n_nodes;
    unsigned char *part = ir_xcalloc((size_t)n + 1, 1);
    unsigned char *seen = ir_xcalloc((size_t)n + 1, 1);
    int cap = 1 + g->n_metrics + g->n_outputs + g->n_gen_outputs + g->n_state_updates + g->n_gen_updates + g->n_params +
              g->n_updates;
    int *roots = ir_xmalloc((size_t)cap * sizeof *roots), k = 0;
    roots[k++] = g->loss;
    for (int i = 0; i < g->n_metrics; i++)
        roots[k++] = g->metrics[i].node;
    for (int i = 0; i < g->n_outputs; i++)
        roots[k++] = g->outputs[i].node;
    for (int i = 0; i < g->n_gen_outputs; i++)
        roots[k++] = g->gen_outputs[i].node;
    for (int i = 0; i < g->n_state_updates; i++)
        roots[k++] = g->state_updates[i];
    for (int i = 0; i < g->n_gen_updates; i++)
        roots[k++] = g->gen_updates[i];
    ir_mark_live(g, roots, k, seen);
    unsigned char *before = ir_xmalloc((size_t)n + 1);
    memcpy(before, seen, (size_t)n);
    k = 0;
    for (int i = 0; i < g->n_params; i++)
        roots[k++] = g->params[i].grad;
    ir_mark_live(g, roots, k, seen);
    for (int i = 0; i < n; i++)
        if (seen[i] && !before[i])
            part[i] = DOT_GRADIENT;
    memcpy(before, seen, (size_t)n);
    ir_mark_live(g, g->updates, g->n_updates, seen);
    for (int i = 0; i < n; i++)
        if (seen[i] && !before[i])
            part[i] = DOT_OPTIMIZER;
    free(before);
    free(roots);
    free(seen);
    return part;
}

/* A leaf's fill and what it is. */
static const char *dot_leaf_fill(const ir_graph *g, const ir_node *n) {
    switch (n->op) {
    case IR_INPUT: return DOT_FILL_INPUT;
    case IR_PARAM:
        if (g->params[n->index].trainable)
            return DOT_FILL_WEIGHT;
        return g->params[n->index].state ? DOT_FILL_STATE : DOT_FILL_MOMENT;
    default: return DOT_FILL_OTHER;
    }
}

static void dot_node(const ir_graph *g, int i, const unsigned char *part, const char *indent, FILE *out) {
    const ir_node *n = &g->nodes[i];
    char ty[160];
    int leaf = ir_ops[n->op].cls == IR_LEAF;
    fprintf(out, "%sn%d [shape=%s, fillcolor=\"%s\"%s, label=\"%%%d %s", indent, i, leaf ? "box" : "ellipse",
            leaf ? dot_leaf_fill(g, n) : dot_part_fill[part[i]], i == g->loss ? ", peripheries=2" : "", i,
            ir_ops[n->op].name);
    if (n->op == IR_PARAM)
        fprintf(out, " %s", g->params[n->index].name);
    else if (n->op == IR_INPUT)
        fprintf(out, " %s", n->flags ? g->gen_inputs[n->index].name : g->inputs[n->index].name);
    else if (n->op == IR_HYPER)
        fprintf(out, " %s", g->hypers[n->index].name);
    else if (n->op == IR_CONST)
        fprintf(out, " %.6g", n->value);
    fprintf(out, "\\n%s\"];\n", ir_type_str(n->dtype, &n->shape, ty, sizeof ty));
}

/* The root of the fused kernel that computes node i, or -1: interior
 * nodes name it in fused_into, and a root is the root of its own group
 * when some node is interior to it. */
static int *dot_kernels(const ir_graph *g, const unsigned char *live, const int *fused_into) {
    int *kernel = ir_xmalloc(((size_t)g->n_nodes + 1) * sizeof *kernel);
    for (int i = 0; i < g->n_nodes; i++)
        kernel[i] = -1;
    for (int i = 0; fused_into && i < g->n_nodes; i++)
        if (fused_into[i] >= 0 && (!live || live[i])) {
            kernel[i] = fused_into[i];
            kernel[fused_into[i]] = fused_into[i];
        }
    return kernel;
}

/* The nodes of one region (0: the top level, else a scan's body), each
 * fused kernel among them as a cluster of its own. */
static void dot_region(const ir_graph *g, const unsigned char *live, const unsigned char *part, const int *kernel,
                       int region, const char *indent, FILE *out) {
    char inner[32];
    snprintf(inner, sizeof inner, "%s  ", indent);
    for (int i = 0; i < g->n_nodes; i++) {
        if ((live && !live[i]) || g->nodes[i].region != region)
            continue;
        if (kernel[i] < 0) {
            dot_node(g, i, part, indent, out);
        } else if (kernel[i] == i) {
            int members = 0;
            for (int m = 0; m <= i; m++)
                members += kernel[m] == i;
            fprintf(out, "%ssubgraph cluster_kernel%d {\n", indent, i);
            fprintf(out, "%slabel=\"kernel %%%d (%d ops)\"; color=\"%s\"; penwidth=2; style=rounded;\n", inner, i,
                    members, DOT_KERNEL_BORDER);
            for (int m = 0; m <= i; m++)
                if (kernel[m] == i)
                    dot_node(g, m, part, inner, out);
            fprintf(out, "%s}\n", indent);
        }
        if (g->nodes[i].op == IR_SCAN) {
            fprintf(out, "%ssubgraph cluster_scan%d {\n", indent, i);
            fprintf(out, "%slabel=\"scan %%%d body (%lld steps)\"; style=dashed; color=\"#606060\";\n", inner, i,
                    (long long)g->nodes[i].stop);
            dot_region(g, live, part, kernel, i, inner, out);
            fprintf(out, "%s}\n", indent);
        }
    }
}

static void dot_legend(FILE *out) {
    fprintf(out, "  subgraph cluster_legend {\n    label=\"legend\"; color=\"#a0a0a0\"; " DOT_FONT ";\n");
    static const struct {
        const char *name, *shape, *fill, *label;
    } keys[] = {
        {"input", "box", DOT_FILL_INPUT, "input / target"},
        {"weight", "box", DOT_FILL_WEIGHT, "parameter"},
        {"moment", "box", DOT_FILL_MOMENT, "optimizer state"},
        {"state", "box", DOT_FILL_STATE, "state"},
        {"other", "box", DOT_FILL_OTHER, "hyper / constant"},
        {"forward", "ellipse", DOT_FILL_FORWARD, "forward"},
        {"gradient", "ellipse", DOT_FILL_GRADIENT, "gradient"},
        {"update", "ellipse", DOT_FILL_OPTIMIZER, "optimizer update"},
    };
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
        fprintf(out, "    legend_%s [shape=%s, fillcolor=\"%s\", label=\"%s\"];\n", keys[k].name, keys[k].shape,
                keys[k].fill, keys[k].label);
    fprintf(out,
            "    subgraph cluster_legend_kernel {\n      label=\"fused kernel\"; color=\"%s\"; penwidth=2; "
            "style=rounded;\n      legend_kernel [shape=ellipse, fillcolor=\"#ffffff\", label=\"ops in one "
            "loop\"];\n    }\n",
            DOT_KERNEL_BORDER);
    fprintf(out, "    legend_input -> legend_weight -> legend_moment -> legend_state -> "
                 "legend_other -> legend_forward -> legend_gradient -> "
                 "legend_update -> legend_kernel [style=invis];\n  }\n");
}

void ir_dump_dot(const ir_graph *g, const unsigned char *live, const int *fused_into, FILE *out) {
    fprintf(out, "digraph \"%s\" {\n  rankdir=TB;\n  newrank=true;\n", g->model_name);
    fprintf(out, "  graph [" DOT_FONT ", fontsize=12];\n");
    fprintf(out, "  node [fontname=\"monospace\", fontsize=10, style=filled];\n  edge [color=\"#505050\"];\n");
    unsigned char *part = dot_parts_of(g);
    int *kernel = dot_kernels(g, live, fused_into);
    dot_region(g, live, part, kernel, 0, "  ", out);
    for (int i = 0; i < g->n_nodes; i++) {
        if (live && !live[i])
            continue;
        const ir_node *n = &g->nodes[i];
        for (int k = 0; k < n->n_inputs; k++)
            fprintf(out, "  n%d -> n%d;\n", n->inputs[k], i);
    }
    if (g->loss >= 0 && (!live || live[g->loss]))
        fprintf(out, "  loss [shape=plaintext, style=\"\"]; n%d -> loss;\n", g->loss);
    dot_legend(out);
    fprintf(out, "}\n");
    free(kernel);
    free(part);
}
