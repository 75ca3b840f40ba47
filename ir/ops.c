/* ops.c — what each op means: its shape rule and its gradient rule.
 *
 * One function pair per row of OP_TABLE, bound by name through the
 * X-macro, so a row without its rules does not link. A shape rule reads
 * the sources' shapes and attributes and sets n->shape and n->batched; an
 * op whose shape comes from outside (inputs, weights, reshape targets)
 * keeps what its creator set. A gradient rule receives dy = dL/dn and adds
 * dL/dsrc for every source that requires a gradient, as ordinary nodes
 * (ggml's way: backward is more graph). Each rule's comment is its formula.
 */
#include "ir.h"

#include <assert.h>

/* ---- shape helpers ------------------------------------------------------ */

static void same_as_src0(Graph *g, Node *n)
{
    (void)g;
    n->shape = n->src[0]->shape;
    n->batched = n->src[0]->batched;
}

static void scalar(Graph *g, Node *n)
{
    (void)g;
    n->shape.rank = 0;
    n->batched = false;
}

static void keep(Graph *g, Node *n)
{
    (void)g;
    (void)n;
}

static int64_t last_dim(const Node *n)
{
    return n->shape.rank ? n->shape.dim[n->shape.rank - 1] : 1;
}

/* ---- leaves: shapes set by their creator, no gradient rule -------------- */

#define shape_input keep
#define shape_target keep
#define shape_weight keep
#define shape_dropout_mask keep
#define grad_input NULL
#define grad_target NULL
#define grad_weight NULL
#define grad_dropout_mask NULL

/* ---- reshape: y = x viewed as the creator's shape ----------------------- */

/* the creator sets the shape; the batch axis stays */
static void shape_reshape(Graph *g, Node *n)
{
    (void)g;
    n->batched = n->src[0]->batched;
}

/* dx = reshape(dy, shape(x)) */
static void grad_reshape(Graph *g, Node *n, Node *dy)
{
    Node *dx = node1(g, OP_RESHAPE, dy);
    dx->shape = n->src[0]->shape;
    dx->batched = n->src[0]->batched;
    ir_accumulate_grad(g, n->src[0], dx);
}

/* ---- matmul: y = op(a) op(b) ------------------------------------------- *
 * a and b are matrices (rows, last): a batched tensor has B * prod(dims[:-1])
 * rows. Without transposes, y keeps a's leading axes with b's last: Dense on
 * (B, T, C) is one GEMM over B*T rows. With trans_a (a weight gradient), the
 * batch is summed away and y is (a.last, b.last), unbatched. */
static void shape_matmul(Graph *g, Node *n)
{
    (void)g;
    Node *a = n->src[0], *b = n->src[1];
    int64_t bn = n->trans_b ? (b->shape.rank >= 2 ? b->shape.dim[b->shape.rank - 2] : 1) : last_dim(b);
    if (n->trans_a) {
        n->shape.rank = 2;
        n->shape.dim[0] = last_dim(a);
        n->shape.dim[1] = bn;
        n->batched = false;
    } else {
        n->shape = a->shape;
        n->shape.dim[n->shape.rank - 1] = bn;
        n->batched = a->batched;
    }
}

/* da = dy b^T, db = a^T dy (forward without transposes only) */
static void grad_matmul(Graph *g, Node *n, Node *dy)
{
    assert(!n->trans_a && !n->trans_b);
    Node *a = n->src[0], *b = n->src[1];
    if (a->requires_grad) {
        Node *da = node2(g, OP_MATMUL, dy, b);
        da->trans_b = true;
        node_infer_shape(g, da);
        ir_accumulate_grad(g, a, da);
    }
    if (b->requires_grad) {
        Node *db = node2(g, OP_MATMUL, a, dy);
        db->trans_a = true;
        node_infer_shape(g, db);
        db->shape = b->shape;  /* (k, n) written in b's own rank */
        ir_accumulate_grad(g, b, db);
    }
}

/* ---- bias: y[r, c] = x[r, c] + b[c] ------------------------------------ */

#define shape_bias_add same_as_src0

/* dx = dy, db = bias_grad(dy) */
static void grad_bias_add(Graph *g, Node *n, Node *dy)
{
    ir_accumulate_grad(g, n->src[0], dy);
    if (n->src[1]->requires_grad)
        ir_accumulate_grad(g, n->src[1], node1(g, OP_BIAS_GRAD, dy));
}

/* db[c] = sum over rows r of dy[r, c] */
static void shape_bias_grad(Graph *g, Node *n)
{
    (void)g;
    n->shape.rank = 1;
    n->shape.dim[0] = last_dim(n->src[0]);
    n->batched = false;
}
#define grad_bias_grad NULL

/* ---- activation: y = f(x) ----------------------------------------------- */

#define shape_activation same_as_src0

/* dx = dy * f'(x, y) */
static void grad_activation(Graph *g, Node *n, Node *dy)
{
    Node *src[3] = {dy, n->src[0], n};
    Node *dx = node_new(g, OP_ACTIVATION_GRAD, 3, src);
    dx->attr = n->attr;
    dx->alpha = n->alpha;
    ir_accumulate_grad(g, n->src[0], dx);
}

#define shape_activation_grad same_as_src0
#define grad_activation_grad NULL

/* ---- softmax over the last axis ----------------------------------------- */

#define shape_softmax same_as_src0

/* dx = y * (dy - sum_c(dy * y)) */
static void grad_softmax(Graph *g, Node *n, Node *dy)
{
    ir_accumulate_grad(g, n->src[0], node2(g, OP_SOFTMAX_GRAD, dy, n));
}

#define shape_softmax_grad same_as_src0
#define grad_softmax_grad NULL

/* ---- elementwise mul and add -------------------------------------------- */

#define shape_mul same_as_src0

/* da = dy * b, db = dy * a */
static void grad_mul(Graph *g, Node *n, Node *dy)
{
    if (n->src[0]->requires_grad)
        ir_accumulate_grad(g, n->src[0], node2(g, OP_MUL, dy, n->src[1]));
    if (n->src[1]->requires_grad)
        ir_accumulate_grad(g, n->src[1], node2(g, OP_MUL, dy, n->src[0]));
}

#define shape_add same_as_src0

/* da = dy, db = dy */
static void grad_add(Graph *g, Node *n, Node *dy)
{
    ir_accumulate_grad(g, n->src[0], dy);
    ir_accumulate_grad(g, n->src[1], dy);
}

/* ---- losses and metrics ------------------------------------------------- */

#define shape_loss scalar

/* dpred = weight * dloss/dpred / (samples * rows per sample); the loss is
 * a root: dy is the implicit 1. */
static void grad_loss(Graph *g, Node *n, Node *dy)
{
    (void)dy;
    Node *d = node2(g, OP_LOSS_GRAD, n->src[0], n->src[1]);
    d->attr = n->attr;
    d->from_logits = n->from_logits;
    d->weight = n->weight;
    ir_accumulate_grad(g, n->src[0], d);
}

#define shape_penalty scalar

/* dw = l1 * sign(w) + 2 * l2 * w; a root like the loss */
static void grad_penalty(Graph *g, Node *n, Node *dy)
{
    (void)dy;
    ir_accumulate_grad(g, n->src[0], node1(g, OP_PENALTY_GRAD, n->src[0]));
}

#define shape_penalty_grad same_as_src0
#define grad_penalty_grad NULL
#define shape_loss_grad same_as_src0
#define grad_loss_grad NULL
#define shape_metric scalar
#define grad_metric NULL
#define shape_update scalar
#define grad_update NULL

const OpInfo op_info[OP_COUNT] = {
#define X(e, n, a) [OP_##e] = {#n, a, shape_##n, grad_##n},
    OP_TABLE(X)
#undef X
};

/* ---- the other tables --------------------------------------------------- */

const ActInfo act_info[ACT_COUNT] = {
#define X(e, n, f, d, nx, al) [ACT_##e] = {n, f, d, nx, al},
    ACT_TABLE(X)
#undef X
    [ACT_SOFTMAX] = {"softmax", NULL, NULL, 0, 0.0f},
};

const LossInfo loss_info[LOSS_COUNT] = {
#define X(e, n, k, s, f) [LOSS_##e] = {n, k, s, f},
    LOSS_TABLE(X)
#undef X
};

const MetricInfo metric_info[METRIC_COUNT] = {
#define X(e, n, k, s) [METRIC_##e] = {n, k, s},
    METRIC_TABLE(X)
#undef X
};

const OptimizerInfo optimizer_info[OPT_COUNT] = {
#define X(e, n, s) [OPT_##e] = {n, s},
    OPTIMIZER_TABLE(X)
#undef X
};
