/* autodiff.c — reverse-mode differentiation as graph rewriting.
 *
 * Requires: a forward graph whose LOSS and PENALTY nodes are the roots of the training
 * objective. Walks the forward nodes from last to first; each node that has
 * a gradient (or is a LOSS) hands it to its op's gradient rule, which
 * appends backward nodes and accumulates into its sources' gradients (an
 * ADD when a tensor feeds several consumers). A trainable weight's
 * gradient nodes write straight into the gradient block (ST_GRAD, adding to
 * what the earlier chunk or consumer left). Finally one UPDATE node per
 * trainable weight applies the optimizer. Guarantees: every trainable
 * weight that reaches a loss has exactly one UPDATE, after all gradients.
 */
#include "ir.h"

#include <assert.h>

void ir_accumulate_grad(Graph *g, Node *x, Node *dx)
{
    if (!x->requires_grad)
        return;
    if (x->op == OP_WEIGHT) {
        /* dx is a fresh node computed for this weight alone */
        assert(dx->storage == ST_ARENA && dx->op != OP_WEIGHT);
        dx->storage = ST_GRAD;
        dx->w = x->w;
        dx->name = graph_unique_name(g, arena_printf(g->arena, "d_%s_%s", x->w->layer, x->w->name));
        x->grad = dx;
        return;
    }
    if (!dx->name)
        dx->name = graph_unique_name(g, arena_printf(g->arena, "d_%s", x->name));
    if (x->grad) {
        Node *sum = node2(g, OP_ADD, x->grad, dx);
        sum->name = graph_unique_name(g, arena_printf(g->arena, "d_%s", x->name));
        x->grad = sum;
    } else {
        x->grad = dx;
    }
}

void ir_weight_grad_by(Graph *g, Node *w, Node *producer)
{
    (void)g;
    assert(w->op == OP_WEIGHT);
    /* other writers (a regularizer's penalty) add into the same gradient
     * block; the emitter orders their betas; the update follows them all */
    if (w->requires_grad)
        w->grad = producer;
}

void ir_autodiff(Graph *g, int optimizer)
{
    int nforward = g->nnodes;
    for (int i = nforward - 1; i >= 0; i--) {
        Node *n = g->nodes[i];
        if (n->op == OP_LOSS || n->op == OP_PENALTY || (n->grad && op_info[n->op].grad)) {
            int first = g->nnodes;
            op_info[n->op].grad(g, n, n->grad);
            for (int j = first; j < g->nnodes; j++) {  /* backward code belongs to n's layer */
                g->nodes[j]->loc = n->loc;
                g->nodes[j]->layer = n->layer;
                g->nodes[j]->backward = true;
            }
        }
    }
    for (int i = 0; i < nforward; i++) {
        Node *n = g->nodes[i];
        if (n->op != OP_WEIGHT || !n->grad)
            continue;
        Node *u = node2(g, OP_UPDATE, n, n->grad);
        u->attr = optimizer;
        u->storage = ST_NONE;
        u->w = n->w;
        u->name = graph_unique_name(g, arena_printf(g->arena, "update_%s_%s", n->w->layer, n->w->name));
    }
}
