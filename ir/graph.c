/* graph.c — building graphs: nodes, shapes, names and the weight set.
 *
 * Nodes are appended, so the node list is always in topological order.
 * node_new fills the shape from the op's rule (ops.c) and whether the node
 * needs a gradient (any source does; a trainable weight does in a training
 * graph). Names are C identifiers, unique per graph, because the emitter
 * uses them as buffer names.
 */
#include "ir.h"

#include <assert.h>
#include <ctype.h>
#include <string.h>

Graph *graph_new(Arena *a, const char *mode, bool training, WeightSet *ws, size_t max_batch)
{
    Graph *g = arena_alloc(a, sizeof *g);
    g->arena = a;
    g->max_batch = max_batch;
    g->mode = mode;
    g->training = training;
    g->weights = ws;
    return g;
}

size_t node_floats(const Graph *g, const Node *n)
{
    return (size_t)shape_size(&n->shape) * (n->batched ? g->max_batch : 1);
}

int64_t node_rows(const Node *n)
{
    int64_t r = 1;
    for (int i = 0; i + 1 < n->shape.rank; i++)
        r *= n->shape.dim[i];
    return r;
}

int64_t node_cols(const Node *n)
{
    return n->shape.rank ? n->shape.dim[n->shape.rank - 1] : 1;
}

int64_t node_span(const Node *n, int axis)
{
    int64_t len = 1;
    for (int i = axis; i < n->shape.rank; i++)
        len *= n->shape.dim[i];
    return len;
}

bool act_has_alpha(int kind)
{
    return kind != ACT_CUSTOM && act_info[kind].alpha != 0.0f;
}

int64_t shape_size(const Shape *s)
{
    int64_t n = 1;
    for (int i = 0; i < s->rank; i++)
        n *= s->dim[i];
    return n;
}

bool shape_equal(const Shape *a, const Shape *b)
{
    if (a->rank != b->rank)
        return false;
    for (int i = 0; i < a->rank; i++)
        if (a->dim[i] != b->dim[i])
            return false;
    return true;
}

static const char *shape_format(Arena *a, const Shape *s, bool batched, bool vtime)
{
    char buf[256];
    size_t len = 0;
    buf[len++] = '(';
    if (batched)
        len += (size_t)snprintf(buf + len, sizeof buf - len, "B%s", s->rank ? "," : "");
    for (int i = 0; i < s->rank; i++)
        len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%lld%s", i == 0 && vtime ? "T<=" : "",
                                (long long)s->dim[i], i + 1 < s->rank ? "," : "");
    snprintf(buf + len, sizeof buf - len, ")");
    return arena_strdup(a, buf);
}

const char *shape_str(Arena *a, const Shape *s, bool batched)
{
    return shape_format(a, s, batched, false);
}

const char *node_shape_str(Arena *a, const Node *n)
{
    return shape_format(a, &n->shape, n->batched, n->vtime);
}

static bool graph_name_taken(const char *name, const void *ctx)
{
    const Graph *g = ctx;
    return strmap_get(&g->names, name) || (g->reserved && g->reserved(name));
}

/* A C identifier derived from base (cquote.c), unique in g and clear of
 * the backend's own names. */
const char *graph_unique_name(Graph *g, const char *base)
{
    const char *name = c_name_unique(g->arena, base, graph_name_taken, g);
    strmap_put(g->arena, &g->names, name, (void *)name);
    return name;
}

Node *node_new(Graph *g, OpKind op, int nsrc, Node *const *src)
{
    assert(nsrc <= MAX_SRC);
    assert(op_info[op].arity < 0 || op_info[op].arity == nsrc);
    if (g->nnodes == g->cap) {
        int cap = g->cap ? g->cap * 2 : 64;
        Node **nodes = arena_alloc(g->arena, (size_t)cap * sizeof *nodes);
        if (g->nnodes)
            memcpy(nodes, g->nodes, (size_t)g->nnodes * sizeof *nodes);
        g->nodes = nodes;
        g->cap = cap;
    }
    Node *n = arena_alloc(g->arena, sizeof *n);
    n->op = op;
    n->nsrc = nsrc;
    n->id = g->nnodes;
    n->storage = ST_ARENA;
    for (int i = 0; i < nsrc; i++) {
        assert(src[i] && src[i]->id < g->nnodes && g->nodes[src[i]->id] == src[i]);
        n->src[i] = src[i];
        n->requires_grad |= src[i]->requires_grad;
        if (!n->loc.file) {
            n->loc = src[i]->loc;
            n->layer = src[i]->layer;
        }
    }
    g->nodes[g->nnodes++] = n;
    node_infer_shape(g, n);
    return n;
}

Node *node1(Graph *g, OpKind op, Node *a)
{
    return node_new(g, op, 1, &a);
}

Node *node2(Graph *g, OpKind op, Node *a, Node *b)
{
    Node *src[2] = {a, b};
    return node_new(g, op, 2, src);
}

/* A batched result keeps the variable time axis of a source when its own
 * leading axis is that axis (a recurrent tape scales with it whole). Which
 * ops may meet such a source at all the compiler checks (lower.c). */
bool node_keeps_time(const Graph *g, const Node *n)
{
    bool from_time = false;
    for (int i = 0; i < n->nsrc; i++)
        from_time |= n->src[i]->vtime;
    if (!from_time || !n->batched)
        return false;
    if (n->op == OP_RNN)
        return n->src[0]->vtime;
    return n->shape.rank >= 2 && n->shape.dim[0] == g->max_timesteps;
}

void node_infer_shape(Graph *g, Node *n)
{
    if (op_info[n->op].shape)
        op_info[n->op].shape(g, n);
    if (n->nsrc > 0)
        n->vtime = node_keeps_time(g, n);
}

static const char *weight_key(Arena *a, const char *layer, const char *name)
{
    return arena_printf(a, "%s\n%s", layer, name);
}

Weight *weight_find(const WeightSet *ws, const char *layer, const char *name)
{
    char key[512];
    snprintf(key, sizeof key, "%s\n%s", layer, name);
    return strmap_get(&ws->by_name, key);
}

Weight *weight_add(Arena *a, WeightSet *ws, const char *layer, const char *name,
                   const Shape *shape, const InitSpec *init, bool trainable, Loc loc)
{
    assert(!weight_find(ws, layer, name));
    if (ws->n == ws->cap) {
        int cap = ws->cap ? ws->cap * 2 : 16;
        Weight **items = arena_alloc(a, (size_t)cap * sizeof *items);
        if (ws->n)
            memcpy(items, ws->items, (size_t)ws->n * sizeof *items);
        ws->items = items;
        ws->cap = cap;
    }
    Weight *w = arena_alloc(a, sizeof *w);
    w->layer = layer;
    w->name = name;
    w->shape = *shape;
    w->init = *init;
    w->trainable = trainable;
    w->offset = ws->total;
    w->index = ws->n;
    w->loc = loc;
    ws->total += (size_t)shape_size(shape);
    if (trainable) {
        w->opt_offset = ws->trainable_total;
        ws->trainable_total += (size_t)shape_size(shape);
    }
    ws->items[ws->n++] = w;
    strmap_put(a, &ws->by_name, weight_key(a, layer, name), w);
    return w;
}
