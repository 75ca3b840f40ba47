/* ops.c — what each op means: its shape rule and its gradient rule.
 *
 * One function pair per row of OP_TABLE, bound by name through the
 * X-macro, so a row without its rules does not link. A shape rule reads
 * the sources' shapes and attributes and sets n->shape and n->batched; an
 * op whose shape comes from outside (inputs, weights, reshape targets)
 * keeps what its creator set. A gradient rule receives dy = dL/dn and adds
 * dL/dsrc for every source that requires a gradient, as ordinary nodes
 * (ggml's way: backward is more graph), and creates no node for a source
 * that needs none. Each rule's comment is its formula.
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
    if (!n->src[0]->requires_grad)
        return;
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
    int64_t bn = n->trans_b ? (b->shape.rank >= 2 ? b->shape.dim[b->shape.rank - 2] : 1) : node_cols(b);
    if (n->trans_a) {
        n->shape.rank = 2;
        n->shape.dim[0] = node_cols(a);
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
    ir_accumulate_grad(g, n->src[0], dy);  /* (returns at once when x needs no gradient) */
    if (n->src[1]->requires_grad)
        ir_accumulate_grad(g, n->src[1], node1(g, OP_BIAS_GRAD, dy));
}

/* db[c] = sum over rows r of dy[r, c] */
static void shape_bias_grad(Graph *g, Node *n)
{
    (void)g;
    n->shape.rank = 1;
    n->shape.dim[0] = node_cols(n->src[0]);
    n->batched = false;
}
#define grad_bias_grad NULL

/* ---- activation: y = f(x) ----------------------------------------------- */

#define shape_activation same_as_src0

/* dx = dy * f'(x, y) */
static void grad_activation(Graph *g, Node *n, Node *dy)
{
    if (!n->src[0]->requires_grad)
        return;
    Node *src[3] = {dy, n->src[0], n};
    Node *dx = node_new(g, OP_ACTIVATION_GRAD, 3, src);
    dx->attr = n->attr;
    dx->alpha = n->alpha;
    dx->custom = n->custom;
    ir_accumulate_grad(g, n->src[0], dx);
}

#define shape_activation_grad same_as_src0
#define shape_bias_activation same_as_src0
#define grad_bias_activation NULL  /* made after autodiff, by pass_fuse.c */
#define grad_activation_grad NULL

/* ---- softmax over the last axis ----------------------------------------- */

#define shape_softmax same_as_src0

/* dx = y * (dy - sum_c(dy * y)) */
static void grad_softmax(Graph *g, Node *n, Node *dy)
{
    if (!n->src[0]->requires_grad)
        return;
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

#define shape_sub same_as_src0

/* da = dy, db = -dy */
static void grad_sub(Graph *g, Node *n, Node *dy)
{
    ir_accumulate_grad(g, n->src[0], dy);
    if (n->src[1]->requires_grad) {
        Node *neg = node1(g, OP_SCALE, dy);
        neg->alpha = -1.0f;
        ir_accumulate_grad(g, n->src[1], neg);
    }
}

#define shape_scale same_as_src0

/* dx = alpha * dy */
static void grad_scale(Graph *g, Node *n, Node *dy)
{
    if (!n->src[0]->requires_grad)
        return;
    Node *dx = node1(g, OP_SCALE, dy);
    dx->alpha = n->alpha;
    ir_accumulate_grad(g, n->src[0], dx);
}

#define shape_maximum same_as_src0

/* da = dy where a >= b, db = dy where a < b */
static void grad_maximum(Graph *g, Node *n, Node *dy)
{
    for (int i = 0; i < 2; i++)
        if (n->src[i]->requires_grad) {
            Node *src[3] = {dy, n->src[0], n->src[1]};
            Node *d = node_new(g, OP_MAXIMUM_GRAD, 3, src);
            d->attr = i;
            ir_accumulate_grad(g, n->src[i], d);
        }
}

#define shape_maximum_grad same_as_src0
#define grad_maximum_grad NULL

/* ---- concatenation and slices ------------------------------------------- */

static void shape_concat(Graph *g, Node *n)
{
    (void)g;
    n->shape = n->src[0]->shape;
    n->batched = n->src[0]->batched;
    n->shape.dim[n->axis] = 0;
    for (int i = 0; i < n->nsrc; i++)
        n->shape.dim[n->axis] += n->src[i]->shape.dim[n->axis];
}

/* dsrc_i = dy[..., offset_i : offset_i + dim_i, ...] */
static void grad_concat(Graph *g, Node *n, Node *dy)
{
    int64_t start = 0;
    for (int i = 0; i < n->nsrc; i++) {
        Node *x = n->src[i];
        if (x->requires_grad) {
            Node *d = node1(g, OP_SLICE, dy);
            d->axis = n->axis;
            d->start = start;
            d->shape = x->shape;
            ir_accumulate_grad(g, x, d);
        }
        start += x->shape.dim[n->axis];
    }
}

static void shape_slice(Graph *g, Node *n)  /* the creator sets the shape */
{
    (void)g;
    n->batched = n->src[0]->batched;
}
#define grad_slice NULL

/* ---- convolution and pooling --------------------------------------------- *
 * x is (h, w, c) or, 1-D, (w, c); the window attributes fix (oh, ow). */

static void shape_conv(Graph *g, Node *n)
{
    (void)g;
    Node *x = n->src[0], *k = n->src[1];
    n->batched = x->batched;
    n->shape = x->shape;
    int r = x->shape.rank;
    /* attr > 0: depthwise, channels times the depth multiplier */
    n->shape.dim[r - 1] = n->attr ? x->shape.dim[r - 1] * n->attr : k->shape.dim[k->shape.rank - 1];
    n->shape.dim[r - 2] = n->conv.ow;
    if (r == 3)
        n->shape.dim[0] = n->conv.oh;
}

/* dx = conv^T(dy, k), dk = im2col(x)^T dy */
static void grad_conv(Graph *g, Node *n, Node *dy)
{
    Node *x = n->src[0], *k = n->src[1];
    if (x->requires_grad) {
        Node *dx = node2(g, OP_CONV_GRAD_INPUT, dy, k);
        dx->conv = n->conv;
        dx->attr = n->attr;
        dx->workspace = n->workspace;  /* the same im2col matrix, as dcols */
        dx->shape = x->shape;
        dx->batched = x->batched;
        ir_accumulate_grad(g, x, dx);
    }
    if (k->requires_grad) {
        Node *dk = node2(g, OP_CONV_GRAD_KERNEL, x, dy);
        dk->conv = n->conv;
        dk->attr = n->attr;
        dk->workspace = n->workspace;
        dk->shape = k->shape;
        dk->batched = false;
        ir_accumulate_grad(g, k, dk);
    }
}

#define shape_conv_grad_input keep
#define grad_conv_grad_input NULL
#define shape_conv_grad_kernel keep
#define grad_conv_grad_kernel NULL

static void shape_pool(Graph *g, Node *n)
{
    (void)g;
    Node *x = n->src[0];
    n->batched = x->batched;
    n->shape = x->shape;
    int r = x->shape.rank;
    n->shape.dim[r - 2] = n->conv.ow;
    if (r == 3)
        n->shape.dim[0] = n->conv.oh;
}

/* max: dy to the window's first maximum; average: dy / (real cells) to each */
static void grad_pool(Graph *g, Node *n, Node *dy)
{
    if (!n->src[0]->requires_grad)
        return;
    Node *src[3] = {dy, n->src[0], n};
    Node *dx = node_new(g, OP_POOL_GRAD, 3, src);
    dx->attr = n->attr;
    dx->conv = n->conv;
    dx->shape = n->src[0]->shape;
    ir_accumulate_grad(g, n->src[0], dx);
}

static void shape_pool_grad(Graph *g, Node *n)
{
    (void)g;
    n->shape = n->src[1]->shape;
    n->batched = n->src[1]->batched;
}
#define grad_pool_grad NULL

/* ---- batch normalization --------------------------------------------------- */

static void shape_bn_stats(Graph *g, Node *n)
{
    (void)g;
    n->shape = (Shape){2, {2, node_cols(n->src[0])}};
    n->batched = false;
}
#define grad_bn_stats NULL  /* BN_APPLY's rule differentiates through the statistics */

#define shape_bn_apply same_as_src0

static Node *bn_src(const Node *n, int which)  /* which: 0 gamma, 1 beta */
{
    int i = 2;
    if (which == 1 && n->has_gamma)
        i++;
    return (which == 0 ? n->has_gamma : n->has_beta) ? n->src[i] : NULL;
}

/* xhat = (x - mean) inv; dx = gamma inv / N (N dy - sum dy - xhat sum(dy xhat)),
 * dgamma = sum dy xhat, dbeta = sum dy */
static void grad_bn_apply(Graph *g, Node *n, Node *dy)
{
    Node *x = n->src[0], *stats = n->src[1], *gamma = bn_src(n, 0), *beta = bn_src(n, 1);
    if (x->requires_grad) {
        Node *src[4] = {dy, x, stats, gamma};
        Node *dx = node_new(g, OP_BN_GRAD_INPUT, gamma ? 4 : 3, src);
        dx->has_gamma = gamma != NULL;
        ir_accumulate_grad(g, x, dx);
    }
    if (gamma && gamma->requires_grad) {
        Node *src[3] = {dy, x, stats};
        ir_accumulate_grad(g, gamma, node_new(g, OP_BN_GRAD_GAMMA, 3, src));
    }
    if (beta && beta->requires_grad)
        ir_accumulate_grad(g, beta, node1(g, OP_BIAS_GRAD, dy));
}

#define shape_bn_grad_input same_as_src0
#define grad_bn_grad_input NULL

static void shape_bn_grad_gamma(Graph *g, Node *n)
{
    (void)g;
    n->shape = (Shape){1, {node_cols(n->src[0])}};
    n->batched = false;
}
#define grad_bn_grad_gamma NULL

static void shape_bn_grad(Graph *g, Node *n)  /* dx, or dgamma when it is gamma's gradient */
{
    if (n->storage == ST_GRAD)
        shape_bn_grad_gamma(g, n);
    else
        same_as_src0(g, n);
}
#define grad_bn_grad NULL
#define shape_bn_moving scalar
#define grad_bn_moving NULL
#define shape_bn_infer same_as_src0

/* frozen statistics: dx = dy gamma / sqrt(var + eps) */
static void grad_bn_infer(Graph *g, Node *n, Node *dy)
{
    Node *x = n->src[0], *var = n->src[2], *gamma = n->has_gamma ? n->src[3] : NULL;
    if (!x->requires_grad)
        return;
    Node *src[3] = {dy, var, gamma};
    Node *dx = node_new(g, OP_BN_INFER_GRAD, gamma ? 3 : 2, src);
    dx->has_gamma = gamma != NULL;
    dx->eps = n->eps;
    ir_accumulate_grad(g, x, dx);
}

#define shape_bn_infer_grad same_as_src0
#define grad_bn_infer_grad NULL

/* BatchNormalization folded into the layer before it (inference only, made by
 * pass_fold_bn.c): ss = (scale, shift) per channel, from the weights, and
 * y = f(x scale + shift). No gradient rules: the training graph keeps BN. */
static void shape_bn_fold(Graph *g, Node *n)
{
    (void)g;
    n->shape = (Shape){2, {2, node_cols(n->src[0])}};
    n->batched = false;
}
#define grad_bn_fold NULL
#define shape_add_activation same_as_src0
#define grad_add_activation NULL  /* made after autodiff */
#define shape_scale_shift same_as_src0
#define grad_scale_shift NULL

/* ---- recurrent layers ------------------------------------------------------ *
 * RNN's shape (the tape size per sample) is set by its creator; the tape is
 * not differentiated itself: RNN_OUTPUT's rule runs backpropagation through
 * time for the whole layer. */

#define shape_rnn keep
#define grad_rnn NULL

static void shape_rnn_output(Graph *g, Node *n)
{
    (void)g;
    Node *x = n->src[0]->src[0];
    n->batched = true;
    n->shape = n->rnn.which == 1 ? (Shape){2, {x->shape.dim[0], n->rnn.units}} : (Shape){1, {n->rnn.units}};
}

/* dx, dW, dU, db (and dh0, dc0 of an initial state) = BPTT(dy) in one
 * kernel. Each output of the layer (its sequence or last h, the h and c
 * of return_state) runs its own: BPTT is linear in dy, so their gradients
 * add up as the outputs' would. */
static void grad_rnn_output(Graph *g, Node *n, Node *dy)
{
    Node *tape = n->src[0], *x = tape->src[0];
    bool any = x->requires_grad;
    for (int i = 1; i < tape->nsrc; i++)
        any |= tape->src[i]->requires_grad;
    if (!any)
        return;
    Node *src[MAX_SRC] = {dy, x, tape};
    for (int i = 1; i < tape->nsrc; i++)  /* W, U[, b][, h0[, c0]][, recurrent-dropout mask] */
        src[2 + i] = tape->src[i];
    int nsrc = tape->nsrc + 2, nstates = tape->rnn.has_state ? (tape->rnn.kind == 1 /* LSTM: h and c */ ? 2 : 1) : 0;
    Node *states[2] = {NULL, NULL}, *dstates[2] = {NULL, NULL};
    bool state_grad = false;
    for (int k = 0; k < nstates; k++) {
        states[k] = tape->src[3 + tape->rnn.has_bias + k];
        state_grad |= states[k]->requires_grad;
    }
    for (int k = 0; state_grad && k < nstates; k++) {  /* made first, so they are live when d writes them */
        dstates[k] = node_new(g, OP_RNN_STATE_GRAD, 0, NULL);
        dstates[k]->attr = k;
        dstates[k]->shape = states[k]->shape;
        dstates[k]->batched = true;
        dstates[k]->name = graph_unique_name(g, arena_printf(g->arena, "d_%s_%s", tape->name, k ? "c0" : "h0"));
        src[nsrc++] = dstates[k];
    }
    Node *d = node_new(g, OP_RNN_GRAD, nsrc, src);
    d->rnn = n->rnn;
    d->rnn.has_state = tape->rnn.has_state;
    d->rnn.state_grad = state_grad;
    d->workspace = tape->workspace;
    d->shape = x->shape;
    d->batched = x->batched;
    for (int k = 0; k < nstates; k++)
        if (dstates[k] && states[k]->requires_grad)
            ir_accumulate_grad(g, states[k], dstates[k]);
    if (!x->requires_grad)
        d->storage = ST_NONE;
    else
        ir_accumulate_grad(g, x, d);
    if (!d->name)
        d->name = graph_unique_name(g, arena_printf(g->arena, "d_%s", tape->name));
    for (int i = 1; i < tape->nsrc; i++)
        if (tape->src[i]->op == OP_WEIGHT)
            ir_weight_grad_by(g, tape->src[i], d);
}

#define shape_rnn_grad keep
#define grad_rnn_grad NULL
#define shape_rnn_state_grad keep
#define grad_rnn_state_grad NULL

/* ---- losses and metrics ------------------------------------------------- */

#define shape_loss scalar

/* dpred = weight * dloss/dpred / (samples * rows per sample); the loss is
 * a root: dy is the implicit 1. */
static void grad_loss(Graph *g, Node *n, Node *dy)
{
    (void)dy;
    if (!n->src[0]->requires_grad)  /* nothing trainable feeds this output */
        return;
    Node *d = node2(g, OP_LOSS_GRAD, n->src[0], n->src[1]);
    d->attr = n->attr;
    d->from_logits = n->from_logits;
    d->weight = n->weight;
    d->alpha = n->alpha;
    d->custom = n->custom;
    ir_accumulate_grad(g, n->src[0], d);
}

#define shape_penalty scalar

/* dw = l1 * sign(w) + 2 * l2 * w; a root like the loss */
static void grad_penalty(Graph *g, Node *n, Node *dy)
{
    (void)dy;
    if (!n->src[0]->requires_grad)  /* a frozen weight: the penalty is a constant */
        return;
    Node *d = node1(g, OP_PENALTY_GRAD, n->src[0]);
    d->custom = n->custom;
    ir_accumulate_grad(g, n->src[0], d);
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
    [ACT_CUSTOM] = {"custom", NULL, NULL, 1, 0.0f},
};

const LossInfo loss_info[LOSS_COUNT] = {
#define X(e, n, k, s, f) [LOSS_##e] = {n, k, s, f},
    LOSS_TABLE(X)
#undef X
};

const MetricInfo metric_info[METRIC_COUNT] = {
#define X(e, n, k, s, q) [METRIC_##e] = {n, k, s, q},
    METRIC_TABLE(X)
#undef X
};

const OptimizerInfo optimizer_info[OPT_COUNT] = {
#define X(e, n, s) [OPT_##e] = {n, s},
    OPTIMIZER_TABLE(X)
#undef X
};

int optimizer_slots(const OptimizerSpec *o, const char *names[3])
{
    int n = 0;
    switch (o->kind) {
    case OPT_SGD:
        if (o->momentum != 0)
            names[n++] = "momentum";
        break;
    case OPT_ADAGRAD:
        names[n++] = "accumulator";
        break;
    case OPT_RMSPROP:
        names[n++] = "rms";
        if (o->momentum != 0)
            names[n++] = "momentum";
        if (o->centered)
            names[n++] = "mg";
        break;
    case OPT_ADAM:
    case OPT_ADAMW:
        names[n++] = "m";
        names[n++] = "v";
        if (o->amsgrad)
            names[n++] = "vhat";
        break;
    case OPT_NADAM:
    case OPT_ADAMAX:
        names[n++] = "m";
        names[n++] = "v";
        break;
    case OPT_COUNT:
        break;
    }
    return n;
}
