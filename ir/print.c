/* print.c — the textual IR behind --emit-ir.
 *
 * One line per node: `%id name = op(src, ...) (B,300) [attrs] @storage`,
 * then the memory plan. Tests compare this text, so it is stable: no
 * pointers, only ids and names.
 */
#include "ir.h"

static const char *storage_name[] = {
    [ST_ARENA] = "arena", [ST_ALIAS] = "alias", [ST_INPUT] = "input", [ST_TARGET] = "target",
    [ST_WEIGHT] = "weight", [ST_GRAD] = "grad", [ST_SCALAR] = "scalar", [ST_NONE] = "none",
};

static void print_attrs(FILE *out, const Node *n)
{
    switch (n->op) {
    case OP_INPUT:
    case OP_TARGET:
        fprintf(out, " slot=%d%s", n->slot, n->int32 ? " int32" : "");
        break;
    case OP_WEIGHT:
        fprintf(out, " %s/%s%s", n->w->layer, n->w->name, n->w->trainable ? "" : " frozen");
        break;
    case OP_MATMUL:
        if (n->trans_a || n->trans_b)
            fprintf(out, " trans=%s%s", n->trans_a ? "a" : "", n->trans_b ? "b" : "");
        if (n->sgd_step)
            fprintf(out, " sgd-step");
        break;
    case OP_ACTIVATION:
    case OP_ACTIVATION_GRAD:
    case OP_BIAS_ACTIVATION:
    case OP_ADD_ACTIVATION:
    case OP_SCALE_SHIFT:
        fprintf(out, " %s", act_info[n->attr].name);
        if (n->alpha != 0.0f)
            fprintf(out, " alpha=%g", (double)n->alpha);
        break;
    case OP_DROPOUT_MASK:
        fprintf(out, " rate=%g", (double)n->alpha);
        break;
    case OP_LOSS:
    case OP_LOSS_GRAD:
        fprintf(out, " %s%s weight=%g slot=%d", loss_info[n->attr].name,
                n->from_logits ? " from_logits" : "", (double)n->weight, n->slot);
        break;
    case OP_PENALTY:
    case OP_PENALTY_GRAD:
        fprintf(out, " l1=%g l2=%g", n->src[0]->w->l1, n->src[0]->w->l2);
        break;
    case OP_METRIC:
        fprintf(out, " %s slot=%d", metric_info[n->attr].name, n->slot);
        break;
    case OP_UPDATE:
        fprintf(out, " %s", optimizer_info[n->attr].name);
        break;
    case OP_CONV:
    case OP_CONV_GRAD_INPUT:
    case OP_CONV_GRAD_KERNEL:
    case OP_POOL:
    case OP_POOL_GRAD:
        if (n->op == OP_POOL || n->op == OP_POOL_GRAD)
            fprintf(out, " %s%s", n->attr ? "avg" : "max", n->relu_grad ? " relu'" : "");
        fprintf(out, " window=%dx%d stride=%dx%d dilation=%dx%d pad=%d,%d out=%dx%d", n->conv.kh, n->conv.kw,
                n->conv.sh, n->conv.sw, n->conv.dh, n->conv.dw, n->conv.pt, n->conv.pl, n->conv.oh, n->conv.ow);
        if (n->workspace)
            fprintf(out, " workspace=%zu", n->workspace);
        break;
    case OP_RNN:
    case OP_RNN_OUTPUT:
    case OP_RNN_GRAD:
        fprintf(out, " %s units=%d%s%s%s%s", n->rnn.kind == 0 ? "simple_rnn" : n->rnn.kind == 1 ? "lstm" : "gru",
                n->rnn.units, n->op == OP_RNN ? "" : n->rnn.which == 1 ? " sequences" : n->rnn.which == 2 ? " last_c" : " last_h",
                n->rnn.go_backwards ? " backwards" : "", n->rnn.kind == 2 && n->rnn.reset_after ? " reset_after" : "",
                n->rnn.has_state ? " initial_state" : "");
        if (n->workspace)
            fprintf(out, " workspace=%zu", n->workspace);
        break;
    case OP_RNN_STATE_GRAD:
        fprintf(out, " d%s0", n->attr ? "c" : "h");
        break;
    case OP_CONCAT:
    case OP_SLICE:
        fprintf(out, " axis=%d", n->axis);
        if (n->op == OP_SLICE)
            fprintf(out, " start=%lld", (long long)n->start);
        break;
    case OP_SCALE:
        fprintf(out, " alpha=%g", (double)n->alpha);
        break;
    case OP_MAXIMUM_GRAD:
        fprintf(out, " %s", n->attr ? "b" : "a");
        break;
    case OP_BN_STATS:
    case OP_BN_APPLY:
    case OP_BN_GRAD_INPUT:
    case OP_BN_GRAD_GAMMA:
    case OP_BN_GRAD:
    case OP_BN_MOVING:
    case OP_BN_INFER:
    case OP_BN_INFER_GRAD:
    case OP_BN_FOLD:
        if (n->op != OP_BN_APPLY && n->op != OP_BN_GRAD_INPUT && n->op != OP_BN_GRAD_GAMMA && n->op != OP_BN_GRAD)
            fprintf(out, " eps=%g", (double)n->eps);  /* the others read the statistics BN_STATS made with it */
        if (n->op == OP_BN_FOLD && n->has_bias)
            fprintf(out, " bias");
        if (n->op == OP_BN_MOVING)
            fprintf(out, " momentum=%g", (double)n->momentum);
        if (n->op == OP_BN_APPLY && n->attr != ACT_LINEAR)
            fprintf(out, " %s", act_info[n->attr].name);
        if (n->op == OP_BN_GRAD && n->attr != ACT_LINEAR)
            fprintf(out, " %s'", act_info[n->attr].name);
        for (int k = 0; n->op == OP_BN_GRAD && k < 2; k++)
            if (n->side[k])
                fprintf(out, " +%s", n->side[k]->name);
        break;
    case OP_RESHAPE:
    case OP_BIAS_ADD:
    case OP_BIAS_GRAD:
    case OP_SOFTMAX:
    case OP_SOFTMAX_GRAD:
    case OP_MUL:
    case OP_ADD:
    case OP_SUB:
    case OP_MAXIMUM:
    case OP_COUNT:
        break;
    }
}

void ir_print(FILE *out, const Graph *g)
{
    fprintf(out, "graph %s (%s)\n", g->mode, g->training ? "training" : "inference");
    for (int i = 0; i < g->nnodes; i++) {
        const Node *n = g->nodes[i];
        fprintf(out, "  %%%d %s = %s(", n->id, n->name, op_info[n->op].name);
        for (int s = 0; s < n->nsrc; s++)
            fprintf(out, "%s%%%d", s ? ", " : "", n->src[s]->id);
        fprintf(out, ") %s", node_shape_str(g->arena, n));
        print_attrs(out, n);
        fprintf(out, " @%s", storage_name[n->storage]);
        if (n->storage == ST_ARENA)
            fprintf(out, "+%zu", n->offset);
        fprintf(out, "\n");
    }
    fprintf(out, "  arena: %zu floats planned for %zu samples (unplanned sum %zu)\n", g->arena_floats, g->max_batch,
            g->naive_floats);
}
