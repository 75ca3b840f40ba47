/* pass_fold_bn.c — BatchNormalization folded into the Conv or Dense before it,
 * for inference.
 *
 * Requires: a verified inference graph, before pass_fuse. With frozen
 * statistics a BatchNormalization is an affine map per channel, and so is
 * the bias add of the layer before it:
 *   BN(z + b) = gamma (z + b - mean) / sqrt(var + eps) + beta = z scale + shift,
 *   scale = gamma / sqrt(var + eps),  shift = beta + (b - mean) scale,
 * where z is the convolution or x @ kernel. That is the layer with kernel
 * W scale and bias shift. The weights are not known when compiling (they
 * are the model's weight block, which training moves and the C API lets the
 * caller write at any time), so the fold is computed by the generated code,
 * every chunk, and a cache of folded weights could go stale. The pass
 * therefore folds into the bias and the output, not into the kernel:
 *   BN_FOLD      ss (2, c) = (scale, shift) from gamma, beta, the moving mean
 *                and variance and the bias: O(c) per chunk
 *   SCALE_SHIFT  y = z scale + shift: the BN_INFER node, reading z directly
 * Scaling z is the same per-channel product as scaling the kernel, applied
 * in the one pass over z the bias add made anyway; scaling the kernel
 * would cost O(kernel) per call (a Dense 784x300 kernel has 235,200
 * floats, 24 times the whole BatchNormalization output of a batch of 32).
 * pass_fuse then merges an activation that reads y into the same pass.
 *
 * Matched: a BN_INFER (the last axis, the only one BatchNormalization
 * takes) whose input is a CONV or forward MATMUL of a weight kernel, or a
 * BIAS_ADD of a weight bias onto one. z itself is not changed, so it may
 * have other readers; a bypassed BIAS_ADD that nothing else reads is
 * removed. The training graph is never given to this pass: it normalizes
 * with batch statistics. Guarantees: the same values up to rounding.
 */
#include "compiler.h"

#include <assert.h>

/* The convolution or Dense product z (CONV, MATMUL x @ kernel with a weight kernel), else NULL. */
static Node *layer_product(Node *z)
{
    bool conv = z->op == OP_CONV, dense = z->op == OP_MATMUL && !z->trans_a && !z->trans_b;
    return (conv || dense) && z->src[1]->op == OP_WEIGHT ? z : NULL;
}

/* "3x3x1x32" */
static const char *dims(Arena *a, const Shape *s)
{
    const char *t = "";
    for (int i = 0; i < s->rank; i++)
        t = arena_printf(a, "%s%s%lld", t, i ? "x" : "", (long long)s->dim[i]);
    return t;
}

int pass_fold_bn(Graph *g, bool report)
{
    assert(!g->training);
    int n0 = g->nnodes;
    int *readers = arena_alloc(g->arena, (size_t)n0 * sizeof *readers);
    for (int i = 0; i < n0; i++)
        for (int s = 0; s < g->nodes[i]->nsrc; s++)
            readers[g->nodes[i]->src[s]->id]++;
    Node **fold_before = arena_alloc(g->arena, (size_t)n0 * sizeof *fold_before);  /* by BN id */
    bool *removed = arena_alloc(g->arena, (size_t)n0 * sizeof *removed);
    int folded = 0;
    for (int i = 0; i < n0; i++) {
        Node *bn = g->nodes[i], *x = bn->op == OP_BN_INFER ? bn->src[0] : NULL;
        if (!x)
            continue;
        Node *bias_add = x->op == OP_BIAS_ADD && x->src[1]->op == OP_WEIGHT ? x : NULL;
        Node *z = layer_product(bias_add ? bias_add->src[0] : x);
        if (!z)
            continue;
        /* mean, var[, gamma][, beta] as BN_INFER has them, then the bias */
        Node *src[MAX_SRC];
        int k = 0;
        for (int s = 1; s < bn->nsrc; s++)
            src[k++] = bn->src[s];
        if (bias_add)
            src[k++] = bias_add->src[1];
        Node *fold = node_new(g, OP_BN_FOLD, k, src);
        fold->has_gamma = bn->has_gamma;
        fold->has_beta = bn->has_beta;
        fold->has_bias = bias_add != NULL;
        fold->eps = bn->eps;
        fold->loc = bn->loc;
        fold->layer = bn->layer;
        fold->name = graph_unique_name(g, arena_printf(g->arena, "%s_fold", bn->name));
        fold_before[bn->id] = fold;
        if (bias_add && readers[bias_add->id] == 1 && !bias_add->is_output)
            removed[bias_add->id] = true;
        bn->op = OP_SCALE_SHIFT;
        bn->nsrc = 2;
        bn->src[0] = z;
        bn->src[1] = fold;
        bn->attr = ACT_LINEAR;
        bn->alpha = 0.0f;
        if (report) {
            Weight *kernel = z->src[1]->w;
            printf("fold_bn (%s graph): %s into %s (kernel %s, %s): %s = %s * scale + shift, %lld channels\n",
                   g->mode, bn->layer ? bn->layer : bn->name, z->layer ? z->layer : z->name,
                   dims(g->arena, &kernel->shape),
                   bias_add ? arena_printf(g->arena, "bias %lld", (long long)shape_size(&bias_add->src[1]->shape))
                            : "no bias",
                   bn->name, z->name, (long long)fold->shape.dim[1]);
        }
        folded++;
    }
    if (!folded)
        return 0;
    /* each BN_FOLD (appended by node_new) moves to just before its SCALE_SHIFT */
    Node **order = arena_alloc(g->arena, (size_t)g->cap * sizeof *order);
    int k = 0;
    for (int i = 0; i < n0; i++) {
        if (removed[i])
            continue;
        if (fold_before[i])
            order[k++] = fold_before[i];
        order[k++] = g->nodes[i];
    }
    for (int i = 0; i < k; i++)
        order[i]->id = i;
    g->nodes = order;
    g->nnodes = k;
    return folded;
}
