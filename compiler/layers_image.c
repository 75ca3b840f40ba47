/* layers_image.c — Keras layers for images, sequences and graphs:
 * Conv1D/Conv2D, pooling, BatchNormalization and the merge layers.
 *
 * Each lower_* function checks its input shape against Keras's rules
 * (reporting at the layer's YAML location), creates the layer's weights in
 * Keras order and shape, and emits IR ops. Window geometry follows
 * keras-numerics.md: "valid" gives ceil((in - (k-1)d) / s), "same" gives
 * ceil(in / s) with the odd padding cell after, Conv1D's "causal" pads
 * (k-1)d cells before and none after. 1-D layers use the 2-D ops
 * with a height of 1. The class rows are in layers.c's table.
 */
#include "compiler.h"

#include <limits.h>
#include <string.h>

/* ---- shared window geometry ----------------------------------------------- */

/* The n-element size/stride/dilation argument (an int means all n). */
static int window_arg(const Layer *l, const char *name, int n, int out[2])
{
    const ArgValue *v = layer_arg(l, name);
    if (v->shape.rank != 1 && v->shape.rank != n)
        return error_at(v->loc, "%s takes %d integer%s, or one for all", name, n, n > 1 ? "s" : "");
    for (int i = 0; i < n; i++) {
        int64_t d = v->shape.dim[v->shape.rank == 1 ? 0 : i];
        if (d <= 0)
            return error_at(v->loc, "%s must be positive", name);
        out[i] = (int)d;
    }
    return 0;
}

typedef enum { PAD_VALID, PAD_SAME, PAD_CAUSAL } Padding;

/* padding "valid", "same" or, where Keras allows it (Conv1D), "causal";
 * case-insensitive. */
static int padding_arg(const Layer *l, bool causal_ok, Padding *pad)
{
    const ArgValue *v = layer_arg(l, "padding");
    if (!strcasecmp(v->s, "valid"))
        *pad = PAD_VALID;
    else if (!strcasecmp(v->s, "same"))
        *pad = PAD_SAME;
    else if (causal_ok && !strcasecmp(v->s, "causal"))
        *pad = PAD_CAUSAL;
    else {
        error_at(v->loc, "padding must be %s, not '%s'", causal_ok ? "valid, same or causal" : "valid or same", v->s);
        if (!strcasecmp(v->s, "causal"))
            hint("causal padding is for Conv1D over sequences, as in Keras");
        return -1;
    }
    return 0;
}

/* One axis: output size and padding before, or an error when nothing fits.
 * Causal pads (k - 1) * d zeros before the input and none after, so output
 * step t sees input steps t, t - d, ... only. */
static int axis_geometry(const Layer *l, int in, int k, int s, int d, Padding pad, int *out, int *before)
{
    /* k, d and in fit int (model.c, lower.c), so this fits int64; the kernels index the padded input
       (in + span) and step by the dilation in int, so that much must fit an int too */
    int64_t span64 = (int64_t)(k - 1) * d + 1;
    if ((int64_t)in + span64 + d > INT_MAX)
        return error_at(l->loc, "%s '%s': the window (%d with dilation %d) over an input of %d spans more than the "
                        "generated C's int holds", l->cls->name, l->name, k, d, in);
    int span = (int)span64;
    if (pad == PAD_CAUSAL) {
        *out = (in - 1) / s + 1;
        *before = span - 1;
    } else if (pad == PAD_SAME) {
        *out = (int)(((int64_t)in + s - 1) / s);
        int64_t total = (int64_t)(*out - 1) * s + span - in;
        *before = total > 0 ? (int)(total / 2) : 0;
    } else {
        if (in < span)
            return error_at(l->loc, "%s '%s': the window (%d with dilation %d) is larger than the input (%d); "
                            "use padding: same or a smaller window", l->cls->name, l->name, k, d, in);
        *out = (in - span) / s + 1;
        *before = 0;
    }
    return 0;
}

static int check_rank(const Layer *l, const Node *x, int rank, const char *what, Arena *a)
{
    if (x->shape.rank != rank) {
        error_at(l->loc, "%s '%s' needs %s input of rank %d besides the batch, got %s", l->cls->name, l->name, what,
                 rank, shape_str(a, &x->shape, true));
        if (rank == 3 && x->shape.rank == 2)
            hint("a grayscale image needs its channel axis: shape [28, 28, 1], or a Reshape to [28, 28, 1]");
        return -1;
    }
    return 0;
}

/* Set node n's window from the spatial dims of x: n-D = 1 (width only) or 2. */
static int set_window(const Layer *l, Node *n, const Node *x, int nd, const int k[2], const int s[2],
                      const int d[2], Padding pad)
{
    int h = nd == 2 ? (int)x->shape.dim[0] : 1, w = (int)x->shape.dim[nd == 2 ? 1 : 0];
    int oh = 1, ow, pt = 0, pl;
    if (nd == 2 && axis_geometry(l, h, k[0], s[0], d[0], pad, &oh, &pt))
        return -1;
    if (axis_geometry(l, w, k[nd - 1], s[nd - 1], d[nd - 1], pad, &ow, &pl))
        return -1;
    n->conv.kh = nd == 2 ? k[0] : 1;
    n->conv.kw = k[nd - 1];
    n->conv.sh = nd == 2 ? s[0] : 1;
    n->conv.sw = s[nd - 1];
    n->conv.dh = nd == 2 ? d[0] : 1;
    n->conv.dw = d[nd - 1];
    n->conv.pt = pt;
    n->conv.pl = pl;
    n->conv.oh = oh;
    n->conv.ow = ow;
    return 0;
}

/* ---- Conv1D / Conv2D -------------------------------------------------------------- */

/* y = act(conv(x, kernel) + bias), kernel (kh, kw, c, filters) as Keras stores it */
static int lower_conv_nd(Lower *lw, Layer *l, Node *x, int nd, Node **out)
{
    if (check_rank(l, x, nd + 1, nd == 2 ? "an image (height, width, channels)" : "a sequence (steps, channels)",
                   lw->arena))
        return -1;
    const ArgValue *filters = layer_arg(l, "filters"), *groups = layer_arg(l, "groups");
    if (filters->i <= 0)
        return error_at(filters->loc, "filters must be positive");
    if (groups->i != 1)
        return error_at(groups->loc, "grouped convolution (groups > 1) is not supported yet");
    const ArgValue *df = layer_arg(l, "data_format"), *ar = layer_arg(l, "activity_regularizer");
    if (df->s && strcmp(df->s, "channels_last") != 0)
        return error_at(df->loc, "only data_format channels_last is supported");
    if (ar->reg.l1 || ar->reg.l2 || ar->reg.custom)
        return error_at(ar->loc, "activity_regularizer is not supported yet");
    int k[2], s[2], d[2];
    Padding pad;
    if (window_arg(l, "kernel_size", nd, k) || window_arg(l, "strides", nd, s) ||
        window_arg(l, "dilation_rate", nd, d) || padding_arg(l, nd == 1, &pad))
        return -1;
    for (int i = 0; i < nd; i++)
        if (s[i] > 1 && d[i] > 1)
            return error_at(layer_arg(l, "dilation_rate")->loc, "strides > 1 with dilation_rate > 1 is not allowed "
                            "(as in Keras)");
    int64_t c = x->shape.dim[nd];
    Shape ks = nd == 2 ? (Shape){4, {k[0], k[1], c, filters->i}} : (Shape){3, {k[0], c, filters->i}};
    Node *w = lower_weight(lw, l, "kernel", &ks, &layer_arg(l, "kernel_initializer")->init, l->trainable);
    if (!w)
        return -1;
    layer_weight_options(w, l, "kernel_regularizer", "kernel_constraint");
    Node *y = lower_node(lw, l, OP_CONV, 2, (Node *[]){x, w}, "conv");
    if (set_window(l, y, x, nd, k, s, d, pad))
        return -1;
    node_infer_shape(lw->g, y);
    y->workspace = conv_workspace(y, x, lw->g->max_batch);
    return lower_bias_activation(lw, l, y, filters->i, out);
}

/* DepthwiseConv2D: CONV with attr = depth_multiplier; channel c's filters
 * see channel c only, output channel c * depth_multiplier + m (Keras order). */
int lower_depthwise_conv2d(Lower *lw, Layer *l, Node *const *in, int nin, Node **out)
{
    (void)nin;
    Node *x = in[0];
    if (check_rank(l, x, 3, "an image (height, width, channels)", lw->arena))
        return -1;
    const ArgValue *dm = layer_arg(l, "depth_multiplier"), *df = layer_arg(l, "data_format");
    const ArgValue *ar = layer_arg(l, "activity_regularizer");
    if (dm->i <= 0)
        return error_at(dm->loc, "depth_multiplier must be positive");
    if (df->s && strcmp(df->s, "channels_last") != 0)
        return error_at(df->loc, "only data_format channels_last is supported");
    if (ar->reg.l1 || ar->reg.l2 || ar->reg.custom)
        return error_at(ar->loc, "activity_regularizer is not supported yet");
    int k[2], s[2], d[2];
    Padding pad;
    if (window_arg(l, "kernel_size", 2, k) || window_arg(l, "strides", 2, s) || window_arg(l, "dilation_rate", 2, d) ||
        padding_arg(l, false, &pad))
        return -1;
    for (int i = 0; i < 2; i++)
        if (s[i] > 1 && d[i] > 1)
            return error_at(layer_arg(l, "dilation_rate")->loc, "strides > 1 with dilation_rate > 1 is not allowed "
                            "(as in Keras)");
    int64_t c = x->shape.dim[2];
    Shape ks = {4, {k[0], k[1], c, dm->i}};
    Node *w = lower_weight(lw, l, "depthwise_kernel", &ks, &layer_arg(l, "depthwise_initializer")->init, l->trainable);
    if (!w)
        return -1;
    layer_weight_options(w, l, "depthwise_regularizer", "depthwise_constraint");
    Node *y = lower_node(lw, l, OP_CONV, 2, (Node *[]){x, w}, "conv");
    y->attr = (int)dm->i;
    if (set_window(l, y, x, 2, k, s, d, pad))
        return -1;
    node_infer_shape(lw->g, y);
    return lower_bias_activation(lw, l, y, c * dm->i, out);
}

int lower_conv1d(Lower *lw, Layer *l, Node *const *in, int nin, Node **out)
{
    (void)nin;
    return lower_conv_nd(lw, l, in[0], 1, out);
}

int lower_conv2d(Lower *lw, Layer *l, Node *const *in, int nin, Node **out)
{
    (void)nin;
    return lower_conv_nd(lw, l, in[0], 2, out);
}

/* im2col scratch: up to 4M floats, at least one sample (runtime/conv.c splits the batch). */
size_t conv_workspace(const Node *conv, const Node *x, size_t max_batch)
{
    int64_t c = x->shape.dim[x->shape.rank - 1];
    size_t per = (size_t)conv->conv.oh * (size_t)conv->conv.ow * (size_t)conv->conv.kh * (size_t)conv->conv.kw *
                 (size_t)c;
    size_t samples = per ? ((size_t)4 << 20) / per : max_batch;
    if (samples < 1)
        samples = 1;
    if (samples > max_batch)
        samples = max_batch;
    return per * samples;
}

/* ---- pooling ------------------------------------------------------------------------ */

static int lower_pool_nd(Lower *lw, Layer *l, Node *x, int nd, bool average, Node **out)
{
    if (check_rank(l, x, nd + 1, nd == 2 ? "an image (height, width, channels)" : "a sequence (steps, channels)",
                   lw->arena))
        return -1;
    int k[2], s[2], d[2] = {1, 1};
    Padding pad;
    if (window_arg(l, "pool_size", nd, k) || padding_arg(l, false, &pad))
        return -1;
    const ArgValue *strides = layer_arg(l, "strides");
    if (strides->shape.rank == 0) {
        s[0] = k[0];
        s[1] = nd == 2 ? k[1] : k[0];
    } else if (window_arg(l, "strides", nd, s)) {
        return -1;
    }
    Node *y = lower_node(lw, l, OP_POOL, 1, &x, NULL);
    y->attr = average;
    if (set_window(l, y, x, nd, k, s, d, pad))
        return -1;
    node_infer_shape(lw->g, y);
    *out = y;
    return 0;
}

int lower_max_pool1d(Lower *lw, Layer *l, Node *const *in, int nin, Node **out)
{
    (void)nin;
    return lower_pool_nd(lw, l, in[0], 1, false, out);
}

int lower_max_pool2d(Lower *lw, Layer *l, Node *const *in, int nin, Node **out)
{
    (void)nin;
    return lower_pool_nd(lw, l, in[0], 2, false, out);
}

int lower_avg_pool1d(Lower *lw, Layer *l, Node *const *in, int nin, Node **out)
{
    (void)nin;
    return lower_pool_nd(lw, l, in[0], 1, true, out);
}

int lower_avg_pool2d(Lower *lw, Layer *l, Node *const *in, int nin, Node **out)
{
    (void)nin;
    return lower_pool_nd(lw, l, in[0], 2, true, out);
}

/* Global pooling: one window over all steps (and rows), then (B, c). */
static int lower_global_pool(Lower *lw, Layer *l, Node *x, int nd, bool average, Node **out)
{
    if (check_rank(l, x, nd + 1, nd == 2 ? "an image (height, width, channels)" : "a sequence (steps, channels)",
                   lw->arena))
        return -1;
    int k[2] = {(int)x->shape.dim[0], (int)x->shape.dim[nd - 1]}, d[2] = {1, 1};
    Node *p = lower_node(lw, l, OP_POOL, 1, &x, "pool");
    p->attr = average;
    if (set_window(l, p, x, nd, k, k, d, false))
        return -1;
    node_infer_shape(lw->g, p);
    if (layer_arg(l, "keepdims")->b) {
        *out = p;
        return 0;
    }
    Node *y = lower_node(lw, l, OP_RESHAPE, 1, &p, NULL);
    y->shape = (Shape){1, {x->shape.dim[nd]}};
    *out = y;
    return 0;
}

int lower_global_avg_pool1d(Lower *lw, Layer *l, Node *const *in, int nin, Node **out)
{
    (void)nin;
    return lower_global_pool(lw, l, in[0], 1, true, out);
}

int lower_global_avg_pool2d(Lower *lw, Layer *l, Node *const *in, int nin, Node **out)
{
    (void)nin;
    return lower_global_pool(lw, l, in[0], 2, true, out);
}

int lower_global_max_pool1d(Lower *lw, Layer *l, Node *const *in, int nin, Node **out)
{
    (void)nin;
    return lower_global_pool(lw, l, in[0], 1, false, out);
}

int lower_global_max_pool2d(Lower *lw, Layer *l, Node *const *in, int nin, Node **out)
{
    (void)nin;
    return lower_global_pool(lw, l, in[0], 2, false, out);
}

/* ---- BatchNormalization ---------------------------------------------------------------- *
 * Weights in Keras order: gamma (scale), beta (center), moving_mean,
 * moving_variance (non-trainable). Training graph: batch statistics, the
 * normalized output, and a moving-average update; a frozen layer
 * (trainable: false) runs on its moving statistics, as in TF2 Keras. */
int lower_batch_normalization(Lower *lw, Layer *l, Node *const *in, int nin, Node **out)
{
    (void)nin;
    Node *x = in[0];
    const ArgValue *axis = layer_arg(l, "axis");
    if (x->shape.rank < 1)
        return error_at(l->loc, "BatchNormalization needs an input with a feature axis");
    if (axis->i != -1 && axis->i != x->shape.rank)
        return error_at(axis->loc, "only axis -1 (channels last) is supported");
    float eps = (float)layer_arg(l, "epsilon")->f, momentum = (float)layer_arg(l, "momentum")->f;
    if (!(eps > 0))
        return error_at(layer_arg(l, "epsilon")->loc, "epsilon must be positive");
    if (!(momentum >= 0 && momentum <= 1))
        return error_at(layer_arg(l, "momentum")->loc, "momentum must be in [0, 1]");
    bool scale = layer_arg(l, "scale")->b, center = layer_arg(l, "center")->b;
    Shape cs = {1, {x->shape.dim[x->shape.rank - 1]}};
    Node *gamma = NULL, *beta = NULL;
    if (scale && !(gamma = lower_weight(lw, l, "gamma", &cs, &layer_arg(l, "gamma_initializer")->init, l->trainable)))
        return -1;
    if (gamma)
        layer_weight_options(gamma, l, "gamma_regularizer", "gamma_constraint");
    if (center && !(beta = lower_weight(lw, l, "beta", &cs, &layer_arg(l, "beta_initializer")->init, l->trainable)))
        return -1;
    if (beta)
        layer_weight_options(beta, l, "beta_regularizer", "beta_constraint");
    Node *mean = lower_weight(lw, l, "moving_mean", &cs, &layer_arg(l, "moving_mean_initializer")->init, false);
    Node *var = lower_weight(lw, l, "moving_variance", &cs, &layer_arg(l, "moving_variance_initializer")->init, false);
    Node *src[5];
    int n = 0;
    if (!lw->g->training || !l->trainable) {
        src[n++] = x;
        src[n++] = mean;
        src[n++] = var;
        if (gamma)
            src[n++] = gamma;
        if (beta)
            src[n++] = beta;
        Node *y = lower_node(lw, l, OP_BN_INFER, n, src, NULL);
        y->has_gamma = gamma != NULL;
        y->has_beta = beta != NULL;
        y->eps = eps;
        *out = y;
        return 0;
    }
    Node *stats = lower_node(lw, l, OP_BN_STATS, 1, &x, "stats");
    stats->eps = eps;
    Node *upd = lower_node(lw, l, OP_BN_MOVING, 3, (Node *[]){stats, mean, var}, "moving");
    upd->storage = ST_NONE;
    upd->eps = eps;
    upd->momentum = momentum;
    src[n++] = x;
    src[n++] = stats;
    if (gamma)
        src[n++] = gamma;
    if (beta)
        src[n++] = beta;
    Node *y = lower_node(lw, l, OP_BN_APPLY, n, src, NULL);
    y->has_gamma = gamma != NULL;
    y->has_beta = beta != NULL;
    y->eps = eps;
    *out = y;
    return 0;
}

/* ---- merge layers -------------------------------------------------------------------------- */

static int same_shapes(Lower *lw, const Layer *l, Node *const *in, int nin)
{
    for (int i = 1; i < nin; i++)
        if (!shape_equal(&in[i]->shape, &in[0]->shape)) {
            error_at(l->loc, "%s '%s' needs inputs of one shape: '%s' is %s, '%s' is %s", l->cls->name, l->name,
                     in[0]->layer ? in[0]->layer : in[0]->name, shape_str(lw->arena, &in[0]->shape, true),
                     in[i]->layer ? in[i]->layer : in[i]->name, shape_str(lw->arena, &in[i]->shape, true));
            return -1;
        }
    return 0;
}

/* Fold a binary op over the inputs: ((in0 op in1) op in2) ... */
static Node *fold(Lower *lw, Layer *l, OpKind op, Node *const *in, int nin)
{
    Node *y = in[0];
    for (int i = 1; i < nin; i++)
        y = lower_node(lw, l, op, 2, (Node *[]){y, in[i]}, i + 1 < nin ? "partial" : NULL);
    return y;
}

int lower_add(Lower *lw, Layer *l, Node *const *in, int nin, Node **out)
{
    if (same_shapes(lw, l, in, nin))
        return -1;
    *out = fold(lw, l, OP_ADD, in, nin);
    return 0;
}

int lower_subtract(Lower *lw, Layer *l, Node *const *in, int nin, Node **out)
{
    if (same_shapes(lw, l, in, nin))
        return -1;
    *out = lower_node(lw, l, OP_SUB, 2, in, NULL);
    return 0;
}

int lower_multiply(Lower *lw, Layer *l, Node *const *in, int nin, Node **out)
{
    if (same_shapes(lw, l, in, nin))
        return -1;
    *out = fold(lw, l, OP_MUL, in, nin);
    return 0;
}

int lower_average(Lower *lw, Layer *l, Node *const *in, int nin, Node **out)
{
    if (same_shapes(lw, l, in, nin))
        return -1;
    Node *sum = fold(lw, l, OP_ADD, in, nin);
    if (sum->name == NULL)
        sum->name = graph_unique_name(lw->g, arena_printf(lw->arena, "%s_sum", l->name));
    Node *y = lower_node(lw, l, OP_SCALE, 1, &sum, NULL);
    y->alpha = 1.0f / (float)nin;
    *out = y;
    return 0;
}

int lower_maximum(Lower *lw, Layer *l, Node *const *in, int nin, Node **out)
{
    if (same_shapes(lw, l, in, nin))
        return -1;
    *out = fold(lw, l, OP_MAXIMUM, in, nin);
    return 0;
}

int lower_concatenate(Lower *lw, Layer *l, Node *const *in, int nin, Node **out)
{
    const ArgValue *axis = layer_arg(l, "axis");
    int rank = in[0]->shape.rank;
    long ax = axis->i < 0 ? axis->i + rank : axis->i - 1;  /* Keras counts the batch axis */
    if (ax < 0 || ax >= rank)
        return error_at(axis->loc, "axis %ld is outside the inputs' %d axes (besides the batch)", axis->i, rank);
    for (int i = 1; i < nin; i++) {
        bool ok = in[i]->shape.rank == rank;
        for (int d = 0; ok && d < rank; d++)
            ok = d == ax || in[i]->shape.dim[d] == in[0]->shape.dim[d];
        if (!ok) {
            error_at(l->loc, "Concatenate '%s': inputs must match on every axis but %ld: '%s' is %s, '%s' is %s",
                     l->name, axis->i, in[0]->layer ? in[0]->layer : in[0]->name,
                     shape_str(lw->arena, &in[0]->shape, true), in[i]->layer ? in[i]->layer : in[i]->name,
                     shape_str(lw->arena, &in[i]->shape, true));
            return -1;
        }
    }
    Node *y = lower_node(lw, l, OP_CONCAT, nin, in, NULL);
    y->axis = (int)ax;
    node_infer_shape(lw->g, y);
    *out = y;
    return 0;
}

/* Identity: the input itself, as a view. */
int lower_identity(Lower *lw, Layer *l, Node *const *in, int nin, Node **out)
{
    (void)nin;
    Node *y = lower_node(lw, l, OP_RESHAPE, 1, in, NULL);
    y->shape = in[0]->shape;
    *out = y;
    return 0;
}
