/* pass_plan.c — memory planning: every activation and gradient buffer of a
 * graph gets a static offset into one arena.
 *
 * Requires: a verified graph. Views (reshape) own no memory and resolve to
 * the buffer they view. A buffer lives from the node that writes it to its
 * last reader (model outputs of the inference graph live to the end, where
 * predict copies them out). Buffers are placed greedily in node order at
 * the lowest offset that does not overlap any buffer still alive (first
 * fit), rounded to 16 floats (64 bytes) so every buffer is cache-line
 * aligned. An elementwise op whose first source dies at it writes in place
 * over that source (one buffer, no copy). A kernel's workspace (im2col) is a buffer alive at its node
 * only. Guarantees: two buffers alive at the same node never overlap;
 * ir_verify checks it.
 */
#include "compiler.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

/* The node whose storage n reads or writes. */
static Node *base_of(Node *n)
{
    while (n->storage == ST_ALIAS)
        n = n->src[0];
    return n;
}

typedef struct {
    size_t offset, size;
    int end;
} Interval;

static int by_offset(const void *a, const void *b)
{
    const Interval *x = a, *y = b;
    return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* First fit: the lowest offset where size floats (rounded to 16) overlap no live interval. */
static size_t place(Interval *live, int *nlive, size_t floats, int end, size_t *peak)
{
    qsort(live, (size_t)*nlive, sizeof *live, by_offset);
    size_t size = (floats + 15) & ~(size_t)15, at = 0;
    for (int j = 0; j < *nlive; j++) {
        if (live[j].offset >= at + size)
            break;
        if (live[j].offset + live[j].size > at)
            at = live[j].offset + live[j].size;
    }
    live[(*nlive)++] = (Interval){at, size, end};
    if (at + size > *peak)
        *peak = at + size;
    return at;
}

/* Ops whose kernel reads element i (of every source) before it writes
 * element i, and no other element after: they may run in place over
 * src[0]. The gradients of activations read dy, x and y at i; softmax's
 * reads a row's dy whole (its dot) before writing that row; BN_GRAD's
 * second pass reads dy at i and writes dx at i, its first only reads. */
static bool elementwise(OpKind op)
{
    return op == OP_ACTIVATION || op == OP_BIAS_ACTIVATION || op == OP_BIAS_ADD || op == OP_SCALE || op == OP_MUL ||
           op == OP_ADD || op == OP_SUB || op == OP_ACTIVATION_GRAD || op == OP_MAXIMUM_GRAD ||
           op == OP_SOFTMAX_GRAD || op == OP_SCALE_SHIFT || op == OP_ADD_ACTIVATION || op == OP_BN_GRAD;
}

void pass_plan_memory(Graph *g)
{
    for (int i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        if (n->op == OP_RESHAPE)
            n->storage = ST_ALIAS;
        n->last_use = n->id;
    }
    for (int i = 0; i < g->nnodes; i++)
        for (int s = 0; s < g->nodes[i]->nsrc; s++) {
            Node *b = base_of(g->nodes[i]->src[s]);
            if (b->last_use < i)
                b->last_use = i;
        }
    /* model outputs are copied out after the last node */
    for (int i = 0; i < g->nnodes; i++)
        if (g->nodes[i]->is_output)
            base_of(g->nodes[i])->last_use = g->nnodes;
    Interval *live = calloc(2 * (size_t)g->nnodes + 1, sizeof *live);
    assert(live);
    int nlive = 0;
    size_t peak = 0, naive = 0;
    for (int i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        if (n->storage != ST_ARENA && !n->workspace)
            continue;
        int k = 0;
        for (int j = 0; j < nlive; j++)
            if (live[j].end >= i)
                live[k++] = live[j];
        nlive = k;
        Node *x = n->nsrc ? base_of(n->src[0]) : NULL;
        if (n->storage == ST_ARENA && elementwise(n->op) && x->storage == ST_ARENA && x->last_use == i &&
            node_floats(g, x) == node_floats(g, n) && !x->is_output) {
            /* in place: the source dies here, the same index is read before it is written */
            n->offset = x->offset;
            n->inplace = true;
            for (int j = 0; j < nlive; j++)
                if (live[j].offset == x->offset && live[j].end == i)
                    live[j].end = n->last_use;
            naive += node_floats(g, n);
        } else if (n->storage == ST_ARENA) {
            n->offset = place(live, &nlive, node_floats(g, n), n->last_use, &peak);
            naive += node_floats(g, n);
        }
        if (n->workspace) {  /* scratch alive during this node only */
            n->workspace_offset = place(live, &nlive, n->workspace, i, &peak);
            naive += n->workspace;
        }
    }
    free(live);
    g->arena_floats = peak;
    g->naive_floats = naive;
}
