/* verify.c — the graph invariants every pass must keep.
 *
 * Runs between passes (QBE style). A violation is a compiler bug, never a
 * user error, so it prints the node and aborts. Checked: node ids and
 * order (sources precede users), arity, shapes equal to what the op's rule
 * re-infers, unique C names, storage consistent with the op, and memory
 * plans whose live buffers never overlap.
 */
#include "ir.h"

#include <stdlib.h>
#include <string.h>

static void fail(const Graph *g, const Node *n, const char *what)
{
    fprintf(stderr, "nncc: internal error: IR verifier (%s graph): node %d %s '%s': %s\n", g->mode,
            n->id, op_info[n->op].name, n->name ? n->name : "?", what);
    abort();
}

void ir_verify(const Graph *g)
{
    for (int i = 0; i < g->nnodes; i++) {
        const Node *n = g->nodes[i];
        if (n->id != i)
            fail(g, n, "id does not match its position");
        if (op_info[n->op].arity >= 0 && n->nsrc != op_info[n->op].arity)
            fail(g, n, "wrong number of sources");
        for (int s = 0; s < n->nsrc; s++)
            if (!n->src[s] || n->src[s]->id >= i || g->nodes[n->src[s]->id] != n->src[s])
                fail(g, n, "source is not an earlier node of this graph");
        if (!n->name)
            fail(g, n, "unnamed node");
        if (strmap_get(&g->names, n->name) != n->name)
            fail(g, n, "name not registered by graph_unique_name (duplicates possible)");
        if (op_info[n->op].shape && n->nsrc > 0 && n->op != OP_RESHAPE) {
            Node copy = *n;
            op_info[n->op].shape((Graph *)g, &copy);
            if (n->op == OP_MATMUL && n->trans_a)
                copy.shape = n->shape;  /* weight gradients keep the weight's rank */
            if (!shape_equal(&copy.shape, &n->shape) || copy.batched != n->batched)
                fail(g, n, "shape differs from its op's rule");
        }
        if (n->op == OP_RESHAPE && shape_size(&n->shape) != shape_size(&n->src[0]->shape))
            fail(g, n, "reshape changes the element count");
        if ((n->storage == ST_WEIGHT || n->storage == ST_GRAD) && !n->w)
            fail(g, n, "weight storage without a weight");
        if (n->op == OP_WEIGHT && n->storage != ST_WEIGHT)
            fail(g, n, "weight node not in the weight block");
    }
    /* memory plan (once planned): arena buffers alive at the same time must not overlap */
    for (int i = 0; g->arena_floats && i < g->nnodes; i++) {
        const Node *a = g->nodes[i];
        if (a->storage != ST_ARENA)
            continue;
        size_t a0 = a->offset, a1 = a0 + node_floats(g, a);
        if (a1 > g->arena_floats)
            fail(g, a, "buffer extends past the planned arena");
        for (int j = i + 1; j < g->nnodes && j <= a->last_use; j++) {
            const Node *b = g->nodes[j];
            if (b->storage != ST_ARENA)
                continue;
            size_t b0 = b->offset, b1 = b0 + node_floats(g, b);
            const Node *from = b->nsrc ? b->src[0] : NULL;
            while (from && from->storage == ST_ALIAS)
                from = from->src[0];
            bool handed_over = b->inplace && from == a && a->last_use == b->id;
            if (a0 < b1 && b0 < a1 && !handed_over)
                fail(g, b, "its buffer overlaps one that is still alive");
        }
    }
}
