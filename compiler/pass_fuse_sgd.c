/* pass_fuse_sgd.c — SGD's step (or velocity) inside the weight-gradient GEMMs.
 *
 * With SGD (no clipping or weight decay) the update of a weight w is
 * w -= lr g, and a Dense kernel's gradient g is one GEMM, x^T dy. When
 * that GEMM is the only writer of g and nothing after it reads w, it can
 * take the step itself: nnrt_gemm with alpha -lr and beta 1 onto w. With
 * Keras's momentum (not Nesterov), v = momentum v - lr g is the same GEMM
 * onto v with beta momentum, and w += v follows in the update. That saves
 * the gradient's store (and OpenBLAS's zeroing of it for beta 0) and the
 * update's reads of it. The emitter does so when a train step is one chunk
 * (at most max_batch samples; a longer one sums its chunks' gradients
 * first) and leaves the gradient block alone; loss_grad still fills it.
 * The result differs from the separate update only in rounding: OpenBLAS
 * may compute beta c + alpha (x^T dy) with one fused multiply-add. Weights
 * with a regularizer or a constraint keep the separate update.
 *
 * Requires: the training graph after pass_fuse. Marks MATMUL nodes
 * (sgd_step). Guarantees: a marked GEMM is the only writer of its weight's
 * gradient, and nothing after it reads the weight but its UPDATE.
 */
#include "compiler.h"

int pass_fuse_sgd(Graph *g, const OptimizerSpec *o, bool report)
{
    static const char fmt_plain[] = " -= lr * x^T dy", fmt_momentum[] = "'s velocity v = momentum * v - lr * x^T dy";
    if (!g->training || o->kind != OPT_SGD || o->nesterov || o->clipnorm || o->global_clipnorm || o->clipvalue ||
        o->weight_decay)
        return 0;
    int fused = 0;
    for (int i = 0; i < g->nnodes; i++) {
        Node *u = g->nodes[i];
        if (u->op != OP_UPDATE)
            continue;
        Node *w = u->src[0], *gw = u->src[1];
        const Weight *wt = w->w;
        if (gw->op != OP_MATMUL || !gw->trans_a || gw->trans_b || gw->storage != ST_GRAD || gw->epilogue ||
            wt->l1 != 0 || wt->l2 != 0 || wt->custom_reg || wt->custom_con || (wt->constraint && wt->constraint[0]))
            continue;
        bool alone = true;  /* the only writer of the gradient, and w is not read after it */
        for (int j = 0; j < g->nnodes && alone; j++) {
            const Node *n = g->nodes[j];
            if (n != gw && n->storage == ST_GRAD && n->w == wt)
                alone = false;
            for (int s = 0; s < n->nsrc && j > gw->id && n != u; s++)
                if (n->src[s] == w)
                    alone = false;
        }
        if (!alone)
            continue;
        gw->sgd_step = true;
        if (report)
            printf("fuse (%s graph): %s/%s%s, in its gradient's GEMM (SGD, one-chunk steps)\n", g->mode, wt->layer,
                   wt->name, o->momentum != 0.0 ? fmt_momentum : fmt_plain);
        fused++;
    }
    return fused;
}
