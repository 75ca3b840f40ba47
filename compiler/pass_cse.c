/* pass_cse.c — common subexpressions: one node for each value computed twice.
 *
 * Requires: a verified graph (after autodiff for the training graph), before
 * pass_fuse. Two nodes compute the same value when they have the same op,
 * the same sources in the same order, the same shape and the same
 * attributes; the later one's readers then read the earlier one, and the
 * later one, unread, goes with pass_fuse's dead-code elimination. Only pure
 * ops are merged: views, elementwise arithmetic, activations, matmul,
 * convolution, pooling, concatenation and slices — never a source of
 * randomness (dropout masks), of side effects (gradient writers, updates,
 * moving statistics) or a model output (its buffer is copied out by name).
 * Nodes are compared through a hash of their defining fields, so the pass
 * is linear in the graph. Guarantees: the same values everywhere the graph
 * is read.
 *
 * Where it finds work: functional models that apply the same view or
 * activation to one tensor in two branches (two Flatten of one input, a
 * shared Activation spelled twice), and their backward passes, which then
 * share those nodes' gradients' sources.
 */
#include "compiler.h"

#include <stdint.h>
#include <string.h>

static bool pure(OpKind op)
{
    return op == OP_RESHAPE || op == OP_MATMUL || op == OP_BIAS_ADD || op == OP_ACTIVATION || op == OP_SOFTMAX ||
           op == OP_MUL || op == OP_ADD || op == OP_SUB || op == OP_SCALE || op == OP_MAXIMUM || op == OP_CONCAT ||
           op == OP_SLICE || op == OP_CONV || op == OP_POOL;
}

/* Whether b computes what a computes (a before b). */
static bool same(const Node *a, const Node *b)
{
    if (a->op != b->op || a->nsrc != b->nsrc || a->batched != b->batched || a->vtime != b->vtime ||
        !shape_equal(&a->shape, &b->shape) || a->attr != b->attr || a->alpha != b->alpha ||
        a->trans_a != b->trans_a || a->trans_b != b->trans_b || a->axis != b->axis || a->start != b->start ||
        a->custom != b->custom || memcmp(&a->conv, &b->conv, sizeof a->conv) != 0)
        return false;
    for (int i = 0; i < a->nsrc; i++)
        if (a->src[i] != b->src[i])
            return false;
    return true;
}

static uint64_t hash_node(const Node *n)
{
    uint64_t h = 1469598103934665603ull ^ (uint64_t)n->op;
    for (int i = 0; i < n->nsrc; i++)
        h = (h ^ (uint64_t)(uintptr_t)n->src[i]) * 1099511628211ull;
    return (h ^ (uint64_t)n->attr) * 1099511628211ull;
}

int pass_cse(Graph *g, bool report)
{
    size_t cap = 16;
    while (cap < 2 * (size_t)g->nnodes)
        cap *= 2;
    Node **table = arena_alloc(g->arena, cap * sizeof *table);
    Node **canon = arena_alloc(g->arena, (size_t)g->nnodes * sizeof *canon);
    int merged = 0;
    for (int i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        for (int s = 0; s < n->nsrc; s++)  /* read the earlier twin of a merged source */
            if (canon[n->src[s]->id])
                n->src[s] = canon[n->src[s]->id];
        if (!pure(n->op) || n->is_output || (n->storage != ST_ARENA && n->storage != ST_ALIAS))
            continue;
        size_t at = hash_node(n) & (cap - 1);
        while (table[at] && !same(table[at], n))
            at = (at + 1) & (cap - 1);
        if (!table[at]) {
            table[at] = n;
            continue;
        }
        canon[i] = table[at];
        merged++;
        if (report)
            printf("cse (%s graph): %s is %s (%s), computed once\n", g->mode, n->name, table[at]->name,
                   op_info[n->op].name);
    }
    return merged;
}
