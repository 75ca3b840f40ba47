/* pass_fuse.c — fusion of bias and activation, and dead-code elimination.
 *
 * Requires: a verified graph (after autodiff for the training graph; after
 * pass_fold_bn for the inference graph). A BIAS_ADD whose only reader is an
 * elementwise ACTIVATION becomes one BIAS_ACTIVATION: y = f(x + b) in one
 * pass over memory instead of two, and no buffer for x + b. Likewise a
 * folded BatchNormalization's SCALE_SHIFT takes the activation over:
 * y = f(x scale + shift). When the activation's derivative reads x (the
 * pre-activation: gelu, swish, softplus, ...) the backward pass needs that
 * value, so those are left alone. An elementwise ADD whose only reader is
 * the activation (a residual block's Add + relu) becomes ADD_ACTIVATION,
 * y = f(a + b) in one loop, the same way. In training, a BatchNormalization
 * (BN_APPLY over its batch statistics) read only by the activation takes it
 * over too: y = f((x - mean) gamma inv + beta) in one pass, computed in the
 * order nnrt_bn_forward uses, so the values are those of the two passes bit
 * for bit (the backward reads x and the statistics, not the normalized
 * values). The backward ACTIVATION_GRAD that named the bias node as its
 * (unread) x is pointed at the fused node. A BatchNormalization's backward
 * becomes one BN_GRAD node (bn_backward, below). Then every node no output,
 * loss, metric, update or moving-statistics update reads is removed. Last,
 * a bias add (with or without its activation) that is the
 * only reader of a Dense's GEMM or a convolution moves into that GEMM's
 * epilogue: the emitter runs the GEMM in blocks of rows (512 KiB of
 * output, NNRT_EPILOGUE_ROWS) and applies the
 * bias and activation to each block right after it, while it is in cache
 * (one pass over memory less). Only when nothing that owns memory sits
 * between the two nodes, so computing the second early cannot overwrite a
 * buffer still in use. Guarantees: the same values everywhere the graph
 * is read.
 */
#include "compiler.h"

#include <string.h>

/* Nodes with effects beyond their value: kept even with no reader. */
static bool has_effect(const Node *n)
{
    return n->is_output || n->storage == ST_SCALAR || n->storage == ST_GRAD || n->op == OP_UPDATE ||
           n->op == OP_BN_MOVING || n->op == OP_INPUT || n->op == OP_TARGET || n->op == OP_WEIGHT ||
           n->op == OP_RNN_GRAD;
}

static int dead_code(Graph *g)
{
    bool *live = arena_alloc(g->arena, (size_t)g->nnodes * sizeof *live);
    for (int i = g->nnodes - 1; i >= 0; i--) {
        Node *n = g->nodes[i];
        live[i] |= has_effect(n);
        if (live[i])
            for (int s = 0; s < n->nsrc; s++)
                live[n->src[s]->id] = true;
    }
    int k = 0, removed = 0;
    for (int i = 0; i < g->nnodes; i++) {
        if (!live[i]) {
            removed++;
            continue;
        }
        g->nodes[i]->id = k;
        g->nodes[k++] = g->nodes[i];
    }
    g->nnodes = k;
    return removed;
}

static void epilogues(Graph *g, bool report)
{
    int *readers = arena_alloc(g->arena, (size_t)g->nnodes * sizeof *readers);
    for (int i = 0; i < g->nnodes; i++)
        for (int s = 0; s < g->nodes[i]->nsrc; s++)
            readers[g->nodes[i]->src[s]->id]++;
    for (int i = 0; i < g->nnodes; i++) {
        Node *a = g->nodes[i];
        if (a->op != OP_BIAS_ACTIVATION && a->op != OP_BIAS_ADD)
            continue;
        Node *p = a->src[0];
        bool gemm = p->op == OP_MATMUL && !p->trans_a && !p->trans_b && p->batched && !p->vtime;
        bool conv = p->op == OP_CONV && p->attr == 0;
        if ((!gemm && !conv) || readers[p->id] != 1 || p->storage != ST_ARENA || p->is_output || a->vtime)
            continue;
        bool clear = true;  /* nothing between them owns memory */
        for (int j = p->id + 1; j < a->id; j++)
            clear &= g->nodes[j]->storage != ST_ARENA && !g->nodes[j]->workspace;
        if (!clear)
            continue;
        p->epilogue = a;
        a->in_epilogue = true;
        if (report)
            printf("epilogue (%s graph): %s = %s(%s + %s) inside %s's GEMM, block by block\n", g->mode, a->name,
                   a->op == OP_BIAS_ADD ? "linear" : act_info[a->attr].name, p->name, a->src[1]->name, p->name);
    }
}

/* The BatchNormalization whose gradient node n is (BN_GRAD_INPUT or
 * BN_GRAD_GAMMA): the BN_APPLY over the same input and statistics. */
static Node *bn_of(const Graph *g, const Node *n)
{
    for (int j = n->src[2]->id + 1; j < n->id; j++)
        if (g->nodes[j]->op == OP_BN_APPLY && g->nodes[j]->src[0] == n->src[1] && g->nodes[j]->src[1] == n->src[2])
            return g->nodes[j];
    return NULL;
}

/* A BatchNormalization's backward in one BN_GRAD node. Autodiff gives it
 * as up to four kernels over (rows, channels): the activation's gradient
 * dz = dy f'(y), dx (two passes: the sums of dz and dz xhat, then dx),
 * dgamma (the same sums again) and dbeta (the sum of dz). BN_GRAD makes
 * two passes of them all: the sums (dz computed on the fly, never stored),
 * then dx. The first of dx's and dgamma's nodes becomes it; the gradients
 * it writes besides its own value are its `side` nodes, which the emitter
 * then skips. The activation is taken in when all dz's readers are these
 * nodes and its derivative reads y only (no libm call on the way back). */
static int bn_backward(Graph *g, const int *readers, bool report)
{
    int fused = 0;
    for (int i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        if ((n->op != OP_BN_GRAD_INPUT && n->op != OP_BN_GRAD_GAMMA) || n->in_epilogue)
            continue;
        Node *bn = bn_of(g, n), *dz = n->src[0];
        if (!bn)
            continue;
        int k = 2;
        const Weight *wg = bn->has_gamma ? bn->src[k++]->w : NULL, *wb = bn->has_beta ? bn->src[k]->w : NULL;
        Node *dx = NULL, *dg = NULL, *db = NULL;
        for (int j = i; j < g->nnodes; j++) {
            Node *m = g->nodes[j];
            bool same = m->nsrc >= 3 && m->src[0] == dz && m->src[1] == n->src[1] && m->src[2] == n->src[2];
            if (m->op == OP_BN_GRAD_INPUT && same && !dx)
                dx = m;
            else if (m->op == OP_BN_GRAD_GAMMA && same && m->storage == ST_GRAD && wg && m->w == wg && !dg)
                dg = m;
            else if (m->op == OP_BIAS_GRAD && m->src[0] == dz && m->storage == ST_GRAD && wb && m->w == wb && !db)
                db = m;
        }
        Node *host = n;  /* the first of them: the others come after it */
        if ((host == dg && dx) || (db && db->id < host->id))
            continue;
        int parts = (dx != NULL) + (dg != NULL) + (db != NULL);
        Node *act = dz->op == OP_ACTIVATION_GRAD && dz->attr != ACT_CUSTOM && !act_info[dz->attr].needs_x &&
                            readers[dz->id] == parts && dz->storage == ST_ARENA && !dz->is_output ? dz : NULL;
        if (!act && parts < 2)
            continue;
        Node *gamma = dx && dx->has_gamma ? dx->src[3] : NULL;
        host->op = OP_BN_GRAD;
        host->attr = act ? act->attr : ACT_LINEAR;
        host->alpha = act ? act->alpha : 0.0f;
        host->src[0] = act ? act->src[0] : dz;
        host->nsrc = 3;
        if (act)
            host->src[host->nsrc++] = act->src[2];
        if (gamma)
            host->src[host->nsrc++] = gamma;
        host->has_gamma = gamma != NULL;
        host->side[0] = host == dg ? NULL : dg;
        host->side[1] = db;
        for (int s = 0; s < 2; s++)
            if (host->side[s]) {  /* written by host: read nothing else, so dz may go */
                host->side[s]->in_epilogue = true;
                host->side[s]->src[0] = host;
            }
        if (report) {
            printf("fuse (%s graph): %s = backward of %s%s%s%s", g->mode, host->name, act ? act_info[act->attr].name : "",
                   act ? "(" : "", bn->name, act ? ")" : "");
            if (host->side[0] || host->side[1])
                printf(", with %s%s%s", host->side[0] ? host->side[0]->name : "",
                       host->side[0] && host->side[1] ? " and " : "", host->side[1] ? host->side[1]->name : "");
            printf(", in %s\n", host == dx ? "two passes" : "one pass");
        }
        fused++;
    }
    return fused;
}

/* A max pooling's gradient followed by the gradient of the relu its input
 * came from (Conv2D relu, then MaxPooling2D) becomes one POOL_GRAD with
 * relu_grad: dy lands only on window maxima that are positive, in the pass
 * that scatters it (nnrt_maxpool_relu_backward), instead of a scatter and
 * then a pass of relu's derivative over the whole input gradient. relu's
 * derivative is 0 or 1, so the values are the two passes' bit for bit. The
 * ACTIVATION_GRAD node becomes the fused one (its readers keep it). */
static int pool_relu_backward(Graph *g, const int *readers, bool report)
{
    int fused = 0;
    for (int i = 0; i < g->nnodes; i++) {
        Node *a = g->nodes[i], *pg = a->src[0];
        if (a->op != OP_ACTIVATION_GRAD || a->attr != ACT_RELU || pg->op != OP_POOL_GRAD || pg->attr != 0 ||
            pg->relu_grad || readers[pg->id] != 1 || pg->storage != ST_ARENA || pg->is_output ||
            a->src[2] != pg->src[1])
            continue;
        a->op = OP_POOL_GRAD;
        a->attr = pg->attr;
        a->conv = pg->conv;
        a->nsrc = 3;
        for (int s = 0; s < 3; s++)
            a->src[s] = pg->src[s];
        a->relu_grad = true;
        if (report)
            printf("fuse (%s graph): %s = max pooling's gradient through relu(%s), in one pass\n", g->mode, a->name,
                   a->src[1]->name);
        fused++;
    }
    return fused;
}

int pass_fuse(Graph *g, bool report)
{
    int *readers = arena_alloc(g->arena, (size_t)g->nnodes * sizeof *readers);
    for (int i = 0; i < g->nnodes; i++)
        for (int s = 0; s < g->nodes[i]->nsrc; s++)
            readers[g->nodes[i]->src[s]->id]++;
    int fused = 0;
    for (int i = 0; i < g->nnodes; i++) {
        Node *a = g->nodes[i];
        if (a->op != OP_ACTIVATION || act_info[a->attr].needs_x)
            continue;
        Node *z = a->src[0];
        /* x + b read by the activation, and by the backward's unread x operand only */
        int other = 0;
        for (int j = 0; j < g->nnodes; j++)
            for (int s = 0; s < g->nodes[j]->nsrc; s++)
                if (g->nodes[j]->src[s] == z && g->nodes[j] != a &&
                    !(g->nodes[j]->op == OP_ACTIVATION_GRAD && s == 1 && g->nodes[j]->src[2] == a))
                    other++;
        bool scale_shift = z->op == OP_SCALE_SHIFT && z->attr == ACT_LINEAR, add = z->op == OP_ADD;
        bool bn = z->op == OP_BN_APPLY && a->attr != ACT_CUSTOM;
        if ((z->op != OP_BIAS_ADD && !scale_shift && !add && !bn) || other || z->is_output || z->storage != ST_ARENA)
            continue;
        if (add && (!shape_equal(&z->src[0]->shape, &z->src[1]->shape) || z->src[0]->batched != z->src[1]->batched))
            continue;
        for (int j = 0; j < g->nnodes; j++)
            if (g->nodes[j]->op == OP_ACTIVATION_GRAD && g->nodes[j]->src[1] == z)
                g->nodes[j]->src[1] = a;  /* the derivative reads y only */
        if (bn) {  /* a becomes the BatchNormalization, with its own activation */
            a->op = OP_BN_APPLY;
            a->nsrc = z->nsrc;
            for (int s = 0; s < z->nsrc; s++)
                a->src[s] = z->src[s];
            a->has_gamma = z->has_gamma;
            a->has_beta = z->has_beta;
            a->eps = z->eps;
            if (report)
                printf("fuse (%s graph): %s = %s(batch normalization of %s) in one pass\n", g->mode, a->name,
                       act_info[a->attr].name, a->src[0]->name);
            fused++;
            continue;
        }
        a->op = scale_shift ? OP_SCALE_SHIFT : add ? OP_ADD_ACTIVATION : OP_BIAS_ACTIVATION;
        a->nsrc = 2;
        a->src[0] = z->src[0];
        a->src[1] = z->src[1];
        if (report)
            printf("fuse (%s graph): %s = %s(%s %s %s) in one pass\n", g->mode, a->name, act_info[a->attr].name,
                   a->src[0]->name, scale_shift ? "* scale + shift of" : "+", a->src[1]->name);
        fused++;
    }
    for (int i = 0; i < g->nnodes; i++)  /* the forward fusions changed who reads what */
        readers[i] = 0;
    for (int i = 0; i < g->nnodes; i++)
        for (int s = 0; s < g->nodes[i]->nsrc; s++)
            readers[g->nodes[i]->src[s]->id]++;
    if (g->training) {
        fused += bn_backward(g, readers, report);
        fused += pool_relu_backward(g, readers, report);
    }
    int removed = dead_code(g);
    if (report && removed)
        printf("dead code (%s graph): %d node(s) removed\n", g->mode, removed);
    epilogues(g, report);
    return fused;
}
