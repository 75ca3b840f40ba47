/* lower.c — from a Model to a Program: the graphs the backend emits.
 *
 * Two graphs share one weight set: the inference graph (Dropout is the
 * identity; outputs, losses and metrics for predict/evaluate) and, unless
 * --inference-only, the training graph (the same forward pass in training
 * mode, losses, regularization penalties, metrics, then autodiff's backward
 * pass and the optimizer updates). Layers are lowered in file order; a
 * layer's inputs are the names it lists, or the item before it (model-
 * format.md §2), so Sequential and functional models take the same path.
 * A softmax (or sigmoid) output feeding a cross-entropy loss is computed
 * from its logits, as Keras does.
 * Sizes are bounded as the graph grows (limits.c): each weight and each
 * tensor (at the compiled batch) must fit the int the kernels count in, and
 * the weights together --max-weights, checked as each layer adds them.
 */
#include "backend.h"
#include "compiler.h"
#include "nnrt.h"

#include <assert.h>
#include <limits.h>
#include <math.h>
#include <string.h>

/* ---- helpers the layer table calls ------------------------------------------------ */

Node *lower_weight(Lower *lw, Layer *l, const char *name, const Shape *shape, const InitSpec *init, bool trainable)
{
    for (int i = 0; i < shape->rank; i++)
        if (shape->dim[i] <= 0) {
            error_at(l->loc, "%s '%s': weight '%s' would have a non-positive dimension", l->cls->name, l->name, name);
            return NULL;
        }
    InitSpec resolved;
    if (init->custom) {  /* a custom initializer: its arguments at this weight's fans (Keras's rules) */
        double fan_in, fan_out, receptive = 1;
        for (int i = 0; i + 2 < shape->rank; i++)
            receptive *= (double)shape->dim[i];
        if (shape->rank < 2)
            fan_in = fan_out = shape->rank ? (double)shape->dim[0] : 1;
        else {
            fan_in = (double)shape->dim[shape->rank - 2] * receptive;
            fan_out = (double)shape->dim[shape->rank - 1] * receptive;
        }
        const double fans[2] = {fan_in, fan_out};
        resolved = (InitSpec){.name = init->custom->name, .kind = init->custom->init_kind};
        resolved.a = expr_eval(init->custom->init_args[0], fans);
        resolved.b = init->custom->init_args[1] ? expr_eval(init->custom->init_args[1], fans) : 0;
        if (!isfinite(resolved.a) || !isfinite(resolved.b) ||
            ((resolved.kind == NNRT_INIT_RANDOM_NORMAL || resolved.kind == NNRT_INIT_TRUNCATED_NORMAL) &&
             resolved.b <= 0) ||
            (resolved.kind == NNRT_INIT_RANDOM_UNIFORM && resolved.b <= resolved.a)) {
            error_at(l->loc, "initializer %s gives %s(%g, %g) for %s's weight '%s' (fan_in %g, fan_out %g)",
                     init->custom->name, resolved.kind == NNRT_INIT_RANDOM_UNIFORM ? "uniform" : "normal", resolved.a,
                     resolved.b, l->name, name, fan_in, fan_out);
            return NULL;
        }
        init = &resolved;
    }
    /* a layer inside a block instance saves into the instance's group: "unit/conv2d/kernel" */
    const char *wname = l->local ? arena_printf(lw->arena, "%s/%s", l->local, name) : name;
    Weight *w = weight_find(lw->g->weights, l->group, wname);
    int64_t values, total;
    if (!w && (!shape_elements(shape, 1, &values) || !fits_c_int(values))) {
        error_at(l->loc, "%s '%s': weight '%s' %s has more values than the generated C's int holds (%d)",
                 l->cls->name, l->name, name, shape_str(lw->arena, shape, false), INT_MAX);
        return NULL;
    }
    if (!w && (total = (int64_t)lw->g->weights->total + values) > limits()->weights) {
        error_at(l->loc, "%s '%s' brings the model's weights to %lld values, more than %lld", l->cls->name, l->name,
                 (long long)total, (long long)limits()->weights);
        hint("raise the cap with --max-weights N if the model is meant to be this big");
        return NULL;
    }
    if (!w)
        w = weight_add(lw->arena, lw->g->weights, l->group, wname, shape, init, trainable, l->loc);
    Node *n = node_new(lw->g, OP_WEIGHT, 0, NULL);
    n->w = w;
    n->shape = w->shape;
    n->storage = ST_WEIGHT;
    n->requires_grad = lw->g->training && w->trainable;
    n->name = graph_unique_name(lw->g, arena_printf(lw->arena, "%s_%s", l->name, name));
    n->loc = l->loc;
    n->layer = l->name;
    return n;
}

Node *lower_node(Lower *lw, Layer *l, OpKind op, int nsrc, Node *const *src, const char *suffix)
{
    Node *n = node_new(lw->g, op, nsrc, src);
    n->loc = l->loc;
    n->layer = l->name;
    n->name = suffix ? graph_unique_name(lw->g, arena_printf(lw->arena, "%s_%s", l->name, suffix)) : NULL;
    return n;
}

Node *lower_activation(Lower *lw, Layer *l, Node *x, Activation act, const char *name)
{
    if (act.kind == ACT_LINEAR)
        return x;
    Node *y = lower_node(lw, l, act.kind == ACT_SOFTMAX ? OP_SOFTMAX : OP_ACTIVATION, 1, &x, name);
    y->attr = act.kind;
    y->alpha = act.alpha;
    y->custom = act.custom;
    return y;
}

/* ---- one graph -------------------------------------------------------------------- */

/* The nodes a layer made (from first on) must fit the generated C: each
 * buffer's elements at the compiled batch in an int, its scratch within
 * --max-arena-bytes (so that planning sums stay far from overflow). */
static int check_layer_sizes(Graph *g, const Layer *l, int first)
{
    for (int i = first; i < g->nnodes; i++) {
        const Node *n = g->nodes[i];
        int64_t values;
        if (!shape_elements(&n->shape, n->batched ? (int64_t)g->max_batch : 1, &values) || !fits_c_int(values)) {
            error_at(l->loc, "%s '%s' makes a tensor %s of more values than the generated C's int holds (%d) at "
                     "batch %zu", l->cls->name, l->name, shape_str(g->arena, &n->shape, n->batched), INT_MAX,
                     g->max_batch);
            hint("a smaller layer, input or --max-batch fits");
            return -1;
        }
        if (n->workspace > (uint64_t)limits()->arena_bytes / sizeof(float)) {
            error_at(l->loc, "%s '%s' needs %zu bytes of scratch, more than the arena may hold (--max-arena-bytes "
                     "%lld)", l->cls->name, l->name, n->workspace * sizeof(float), (long long)limits()->arena_bytes);
            return -1;
        }
    }
    return 0;
}

typedef struct {
    const char *name;
    Node *node;
} Binding;

/* name -> the node a later layer reads; the list keeps the order for hints */
typedef struct {
    Binding *items;
    int n;
    StrMap map;
} Bindings;

static void bind_name(Arena *a, Bindings *b, const char *name, Node *node)
{
    b->items[b->n++] = (Binding){name, node};
    strmap_put(a, &b->map, name, node);
}

static Node *lookup(const Bindings *b, const char *name)
{
    return strmap_get(&b->map, name);
}

/* Metric names resolved against the output's loss, Keras style ("accuracy"
 * means sparse_categorical_accuracy under a sparse loss, and so on). */
/* Metric names resolved as tf.keras 2.x compile does: "accuracy" is binary
 * for a single-unit output, sparse categorical under integer labels, else
 * categorical. */
static int resolve_metric(const Model *m, int k, int output, int64_t units, MetricKind *out)
{
    const char *name = m->metric_names[k];
    LossKind loss = m->losses[output].kind;
    if (m->metric_custom[k]) {
        *out = METRIC_CUSTOM;
        return 0;
    }
    if (!strcmp(name, "accuracy") || !strcmp(name, "acc")) {
        if (units == 1)
            *out = METRIC_BINARY_ACCURACY;
        else if (loss_info[loss].sparse)
            *out = METRIC_SPARSE_CATEGORICAL_ACCURACY;
        else
            *out = METRIC_CATEGORICAL_ACCURACY;
        return 0;
    }
    static const struct {
        const char *name;
        MetricKind kind;
    } names[] = {
        {"sparse_categorical_accuracy", METRIC_SPARSE_CATEGORICAL_ACCURACY},
        {"categorical_accuracy", METRIC_CATEGORICAL_ACCURACY},
        {"binary_accuracy", METRIC_BINARY_ACCURACY},
        {"mse", METRIC_MSE},
        {"mean_squared_error", METRIC_MSE},
        {"mae", METRIC_MAE},
        {"mean_absolute_error", METRIC_MAE},
        {"last_time_step_mse", METRIC_LAST_TIME_STEP_MSE},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(names[i].name, name)) {
            *out = names[i].kind;
            if ((metric_info[*out].sparse != 0) != (loss_info[loss].sparse != 0)) {
                error_at(m->metric_locs[k], "metric '%s' does not fit the loss %s of output '%s'", name,
                         loss_info[loss].name, m->outputs[output]);
                hint(loss_info[loss].sparse ? "integer class labels go with sparse_categorical_accuracy (or 'accuracy')"
                                            : "sparse_categorical_accuracy needs integer labels and a sparse loss");
                return -1;
            }
            return 0;
        }
    error_at(m->metric_locs[k], "unknown metric '%s'", name);
    hint("metrics: accuracy, sparse_categorical_accuracy, categorical_accuracy, binary_accuracy, mse, mae, "
         "last_time_step_mse");
    return -1;
}

/* The node a layer refers to by name (an input, a layer, or output k of a
 * layer with several, `name[k]`), or a located error. li: the referring layer. */
static Node *resolve(const Bindings *bind, const Model *m, int li, const char *name, Loc loc)
{
    Node *n = lookup(bind, name);
    if (n)
        return n;
    const Layer *l = m->layers[li];
    bool later = false;
    for (int j = li; j < m->nlayers; j++)
        later |= !strcmp(m->layers[j]->name, name);
    size_t base = strcspn(name, "[");
    char stem[256];
    snprintf(stem, sizeof stem, "%.*s", (int)(base < 255 ? base : 255), name);
    if (later) {
        error_at(loc, "'%s' is defined after the layer that uses it", name);
        hint("layers are listed in order: move '%s' before '%s'", name, l->name);
    } else if (name[base] == '[' && lookup(bind, stem)) {
        error_at(loc, "layer '%s' has no output %s", stem, name + base);
        hint("a recurrent layer with return_state: true has outputs [0] (its output), [1] (the last h) "
             "and, for LSTM, [2] (the last c)");
    } else {
        error_at(loc, "no layer or input is named '%s'", name);
        const char *names[512];
        int nn = bind->n < 512 ? bind->n : 512;
        for (int j = 0; j < nn; j++)
            names[j] = bind->items[bind->n - nn + j].name;
        const char *near = closest_name(name, names, nn);
        if (near)
            hint("did you mean '%s'?", near);
    }
    return NULL;
}

static int lower_graph(Arena *a, Model *m, Program *p, Graph *g)
{
    Lower lw = {a, g, m, {NULL}, 0};
    g->reserved = emit_reserved_name;
    emit_reserve_program_names(g, p->name);  /* --standalone's arrays are file-scope beside them */
    /* inputs, layers, and the instance names the last layers of blocks answer to */
    Bindings bind = {arena_alloc(a, (size_t)(m->ninputs + 7 * m->nlayers) * sizeof(Binding)), 0, {0}};
    for (int i = 0; i < m->ninputs; i++) {
        Node *n = node_new(g, OP_INPUT, 0, NULL);
        n->shape = m->inputs[i].shape;
        n->batched = true;
        n->vtime = m->inputs[i].vtime;
        n->slot = i;
        n->storage = ST_INPUT;
        n->loc = m->inputs[i].loc;
        n->layer = m->inputs[i].name;
        n->name = graph_unique_name(g, m->inputs[i].name);
        bind_name(a, &bind, m->inputs[i].name, n);
    }
    Node *prev = bind.items[0].node;
    for (int li = 0; li < m->nlayers; li++) {
        Layer *l = m->layers[li];
        Node *in[16];
        int nin = l->ninputs;
        if (nin == 0) {
            if (li == 0 && m->ninputs > 1) {
                error_at(l->loc, "the first layer of a model with %d inputs must name its inputs", m->ninputs);
                hint("add  inputs: %s  (or a list) to this layer", m->inputs[0].name);
                return -1;
            }
            in[0] = prev;
            nin = 1;
        } else {
            if (nin > 16)
                return error_at(l->loc, "at most 16 inputs per layer");
            for (int i = 0; i < nin; i++)
                if (!(in[i] = resolve(&bind, m, li, l->input_names[i], l->input_locs[i])))
                    return -1;
        }
        if (nin < l->cls->min_inputs || nin > l->cls->max_inputs) {
            if (l->cls->max_inputs == 1)
                return error_at(l->loc, "%s takes one input, not %d", l->cls->name, nin);
            return error_at(l->loc, "%s takes %d to %d inputs, not %d", l->cls->name, l->cls->min_inputs,
                            l->cls->max_inputs, nin);
        }
        if (l->nstates) {  /* initial_state: after the input, for the recurrent layers only */
            if (strcmp(l->cls->name, "SimpleRNN") && strcmp(l->cls->name, "LSTM") && strcmp(l->cls->name, "GRU"))
                return error_at(l->state_locs[0], "initial_state is for SimpleRNN, LSTM and GRU, not %s",
                                l->cls->name);
            for (int i = 0; i < l->nstates; i++)
                if (!(in[nin++] = resolve(&bind, m, li, l->state_names[i], l->state_locs[i])))
                    return -1;
        }
        Node *out = NULL;
        int first = g->nnodes;
        lw.nmore = 0;
        if (l->cls->lower(&lw, l, in, nin, &out) || check_layer_sizes(g, l, first))
            return -1;
        assert(out);
        if (out->id >= first && (!out->name || strcmp(out->name, l->name) != 0))
            out->name = graph_unique_name(g, l->name);
        for (int i = first; i < g->nnodes; i++)  /* the layer may have set shapes after node_new */
            if (g->nodes[i]->nsrc)
                g->nodes[i]->vtime = node_keeps_time(g, g->nodes[i]);
        for (int i = first; i < g->nnodes; i++)
            if (!g->nodes[i]->name)
                g->nodes[i]->name = graph_unique_name(g, arena_printf(a, "%s_%s", l->name, op_info[g->nodes[i]->op].name));
        if (!g->training) {
            l->out_shape = out->shape;
            l->out_vtime = node_keeps_time(g, out) || out->vtime;
            l->inbound = arena_alloc(a, (size_t)nin * sizeof *l->inbound);
            for (int i = 0; i < nin; i++)
                l->inbound[i] = arena_printf(a, "%s[0][%d]", in[i]->layer ? in[i]->layer : in[i]->name,
                                             in[i]->op == OP_RNN_OUTPUT && in[i]->layer && strcmp(in[i]->name, in[i]->layer) != 0
                                                 ? 1 + (in[i]->rnn.which == 2) : 0);
            l->ninbound = nin;
        }
        bind_name(a, &bind, l->name, out);
        if (lw.nmore) {  /* several outputs: name[0], name[1], ... as Keras's output list */
            bind_name(a, &bind, arena_printf(a, "%s[0]", l->name), out);
            for (int k = 0; k < lw.nmore; k++)
                bind_name(a, &bind, arena_printf(a, "%s[%d]", l->name, k + 1), lw.more[k]);
        }
        if (l->binds_as)
            bind_name(a, &bind, l->binds_as, out);
        prev = out;
    }
    /* outputs */
    Node *outputs[16];
    for (int i = 0; i < m->noutputs; i++) {
        outputs[i] = lookup(&bind, m->outputs[i]);
        outputs[i]->is_output = true;
        p->outputs[i] = (IoSpec){m->outputs[i], outputs[i]->name, outputs[i]->shape, outputs[i]->vtime};
    }
    p->noutputs = m->noutputs;
    if (!m->has_compile)
        return 0;
    /* losses, penalties, metrics */
    for (int i = 0; i < m->noutputs; i++) {
        OutputLoss *ol = &m->losses[i];
        Node *y = outputs[i];
        bool sparse = loss_info[ol->kind].sparse;
        Node *t = node_new(g, OP_TARGET, 0, NULL);
        t->slot = i;
        t->storage = ST_TARGET;
        t->batched = true;
        t->int32 = sparse;
        t->vtime = y->vtime;
        t->loc = ol->loc;
        t->layer = m->outputs[i];
        t->name = graph_unique_name(g, arena_printf(a, "%s_target", m->outputs[i]));
        if (sparse) {
            t->shape = y->shape;
            t->shape.rank--;  /* one label per row */
            if (y->shape.rank < 1)
                return error_at(ol->loc, "sparse_categorical_crossentropy needs an output with a class axis");
        } else {
            t->shape = y->shape;
        }
        p->target_sparse[i] = sparse;
        p->target_size[i] = shape_size(&t->shape);
        Node *pred = y;
        bool logits = ol->from_logits;
        if (!logits && loss_info[ol->kind].softmax_fusable && y->op == OP_SOFTMAX) {
            pred = y->src[0];
            logits = true;
        } else if (!logits && ol->kind == LOSS_BINARY_CROSSENTROPY && y->op == OP_ACTIVATION && y->attr == ACT_SIGMOID) {
            pred = y->src[0];
            logits = true;
        }
        Node *loss = node2(g, OP_LOSS, pred, t);
        loss->attr = ol->kind;
        loss->from_logits = logits;
        loss->weight = ol->weight;
        loss->alpha = ol->delta;
        loss->custom = ol->custom;
        loss->slot = m->noutputs > 1 ? i : -1;  /* several outputs: each loss is also reported */
        g->nlosses++;
        loss->storage = ST_SCALAR;
        loss->loc = ol->loc;
        loss->layer = m->outputs[i];
        loss->name = graph_unique_name(g, arena_printf(a, "%s_loss", m->outputs[i]));
        if (y->shape.rank == 0 || (ol->kind == LOSS_SPARSE_CATEGORICAL_CROSSENTROPY && y->shape.dim[y->shape.rank - 1] < 2))
            return error_at(ol->loc, "%s needs an output with at least two classes; '%s' has shape %s",
                            loss_info[ol->kind].name, m->outputs[i], shape_str(a, &y->shape, true));
    }
    for (int wi = 0; wi < g->weights->n; wi++) {
        Weight *w = g->weights->items[wi];
        if (w->l1 == 0 && w->l2 == 0 && !w->custom_reg)
            continue;
        Node *wn = NULL;
        for (int i = 0; i < g->nnodes && !wn; i++)
            if (g->nodes[i]->op == OP_WEIGHT && g->nodes[i]->w == w)
                wn = g->nodes[i];
        Node *pen = node1(g, OP_PENALTY, wn);
        pen->custom = w->custom_reg;
        pen->slot = -1;
        pen->storage = ST_SCALAR;
        pen->name = graph_unique_name(g, arena_printf(a, "%s_%s_penalty", w->layer, w->name));
    }
    int nm = 0;
    if (m->noutputs > 1)  /* Keras reports each output's loss first: output_loss, aux_output_loss */
        for (int o = 0; o < m->noutputs; o++)
            p->metric_names[nm++] = arena_printf(a, "%s_loss", m->outputs[o]);
    for (int o = 0; o < m->noutputs; o++)
        for (int k = 0; k < m->nmetrics; k++) {
            if (m->metric_output[k] >= 0 && m->metric_output[k] != o)
                continue;
            MetricKind kind;
            if (resolve_metric(m, k, o, outputs[o]->shape.rank ? outputs[o]->shape.dim[outputs[o]->shape.rank - 1] : 1,
                               &kind))
                return -1;
            Node *t = NULL;
            for (int i = 0; i < g->nnodes; i++)
                if (g->nodes[i]->op == OP_TARGET && g->nodes[i]->slot == o)
                    t = g->nodes[i];
            Node *met = node2(g, OP_METRIC, outputs[o], t);
            met->attr = kind;
            met->custom = m->metric_custom[k];
            met->slot = nm;
            met->storage = ST_SCALAR;
            met->loc = m->metric_locs[k];
            met->name = graph_unique_name(g, arena_printf(a, "%s_%s", m->outputs[o], m->metric_names[k]));
            met->requires_grad = false;
            if (nm == 32)
                return error_at(m->metric_locs[k], "at most 32 metric values");
            p->metric_names[nm++] = m->noutputs > 1 ? arena_printf(a, "%s_%s", m->outputs[o], m->metric_names[k])
                                                     : m->metric_names[k];
        }
    p->nmetrics = nm;
    g->nmetrics = nm;
    return 0;
}

/* A variable time axis runs through ops that treat each step as a row
 * (the generated code counts rows as B * T) and through the recurrent
 * kernels, which take T at run time; any other op meeting it is refused at
 * the layer that made it. */
static int check_time_axis(Graph *g)
{
    for (int i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        if (n->nsrc)  /* again for autodiff's nodes, some shaped after node_new */
            n->vtime = node_keeps_time(g, n);
        bool timed = false;
        for (int k = 0; k < n->nsrc; k++)
            timed |= n->src[k]->vtime;
        if (!timed)
            continue;
        bool rowwise = false;
        switch (n->op) {
        case OP_MATMUL: case OP_BIAS_ADD: case OP_BIAS_GRAD: case OP_ACTIVATION: case OP_BIAS_ACTIVATION:
        case OP_ADD_ACTIVATION:
        case OP_ACTIVATION_GRAD: case OP_SOFTMAX: case OP_SOFTMAX_GRAD: case OP_MUL: case OP_ADD: case OP_SUB:
        case OP_SCALE: case OP_MAXIMUM: case OP_MAXIMUM_GRAD: case OP_LOSS: case OP_LOSS_GRAD: case OP_METRIC:
        case OP_SCALE_SHIFT:
        case OP_RNN: case OP_RNN_OUTPUT: case OP_RNN_GRAD:
        case OP_UPDATE: case OP_PENALTY: case OP_PENALTY_GRAD:  /* over weights (a gradient another op wrote) */
            rowwise = true;
            break;
        case OP_CONCAT: case OP_SLICE:
            rowwise = n->axis > 0;
            break;
        case OP_RESHAPE:  /* an identity view (inference Dropout) */
            rowwise = shape_equal(&n->shape, &n->src[0]->shape);
            break;
        case OP_INPUT: case OP_TARGET: case OP_WEIGHT: case OP_DROPOUT_MASK: case OP_CONV:
        case OP_CONV_GRAD_INPUT: case OP_CONV_GRAD_KERNEL: case OP_POOL: case OP_POOL_GRAD: case OP_BN_STATS:
        case OP_BN_APPLY: case OP_BN_GRAD_INPUT: case OP_BN_GRAD_GAMMA: case OP_BN_GRAD: case OP_BN_MOVING: case OP_BN_INFER:
        case OP_BN_INFER_GRAD: case OP_RNN_STATE_GRAD: case OP_BN_FOLD: case OP_COUNT:
            break;
        }
        if (rowwise)
            continue;
        error_at(n->loc, "layer '%s' does not take a variable-length time axis yet", n->layer ? n->layer : n->name);
        hint("give the input a fixed length, e.g. shape: [%lld, %lld]; recurrent layers, Dense, "
             "TimeDistributed and activations take a null one", (long long)g->max_timesteps,
             (long long)(n->src[0]->shape.rank > 1 ? n->src[0]->shape.dim[n->src[0]->shape.rank - 1] : 1));
        return -1;
    }
    return 0;
}

/* name is NAME or starts with NAME_: one of the names NAME gives in P.c */
static bool in_family(const char *name, const char *family)
{
    size_t len = strlen(family);
    return !strncmp(name, family, len) && (name[len] == 0 || name[len] == '_');
}

/* The API prefix P and the C hooks (the user's functions, declared in P.c
 * by their own names) against each other and the custom functions'
 * helpers custom_NAME_...: the type P, the functions P_..., a hook and a
 * helper must all differ. */
static int check_names_against_prefix(Arena *a, const Model *m, const char *P)
{
    for (int i = 0; i < m->ncustoms; i++) {
        const char *helpers = arena_printf(a, "custom_%s", m->customs[i]->name);
        if (in_family(P, helpers)) {
            error_at(m->name_loc.file ? m->name_loc : (Loc){m->file, 1, 1},
                     "the API prefix '%s' collides with the helpers of the custom function '%s' (%s_...)", P,
                     m->customs[i]->name, helpers);
            hint("rename the model (name:, or --prefix) or the custom function");
            return -1;
        }
    }
    for (int i = 0; i < m->ncustoms; i++) {
        const CustomFn *f = m->customs[i];
        const char *names[2] = {f->c_function, f->c_gradient};
        const Loc locs[2] = {f->c_function_loc, f->c_gradient_loc};
        for (int k = 0; k < 2; k++) {
            if (!names[k])
                continue;
            const char *clash = emit_api_name(P, names[k]) ? P : NULL;
            for (int j = 0; j < m->ncustoms && !clash; j++) {
                const char *helpers = arena_printf(a, "custom_%s", m->customs[j]->name);
                clash = in_family(names[k], helpers) ? helpers : NULL;
            }
            if (clash) {
                error_at(locs[k], "the C function name '%s' collides with %s or %s_... of the generated code",
                         names[k], clash, clash);
                hint("the API prefix (the model's name or --prefix) names the type %s and the functions %s_...; "
                     "custom_NAME_... are the custom functions' helpers: rename the C function", P, P);
                return -1;
            }
        }
    }
    return 0;
}

int lower_model(Arena *a, Model *m, const CompileOptions *opt, Program *p)
{
    memset(p, 0, sizeof *p);
    p->name = opt->prefix ? opt->prefix : m->name;
    if (check_names_against_prefix(a, m, p->name))
        return -1;
    p->source = m->file;
    p->max_batch = opt->max_batch;
    p->inference_only = opt->inference_only || !m->has_compile;
    p->optimizer = m->optimizer;
    p->fit = m->fit;
    p->weights = arena_alloc(a, sizeof *p->weights);
    p->ninputs = m->ninputs;
    for (int i = 0; i < m->ninputs; i++) {
        p->inputs[i] = (IoSpec){m->inputs[i].name, m->inputs[i].name, m->inputs[i].shape, m->inputs[i].vtime};
        if (m->inputs[i].vtime)
            p->max_timesteps = m->inputs[i].shape.dim[0];
    }
    /* HDF5 groups, as Keras's model.layers: the InputLayers (no weights), then
     * every layer, a block instance being one Keras layer */
    p->layer_names = arena_alloc(a, (size_t)(m->ninputs + m->nlayers) * sizeof *p->layer_names);
    for (int i = 0; i < m->ninputs; i++)
        p->layer_names[p->nlayers++] = m->inputs[i].name;
    for (int i = 0; i < m->nlayers; i++)
        if (!p->nlayers || strcmp(p->layer_names[p->nlayers - 1], m->layers[i]->group) != 0)
            p->layer_names[p->nlayers++] = m->layers[i]->group;

    p->infer = graph_new(a, "infer", false, p->weights, p->max_batch);
    p->infer->max_timesteps = p->max_timesteps;
    if (lower_graph(a, m, p, p->infer) || check_time_axis(p->infer))
        return -1;
    for (int i = 0; i < p->noutputs; i++)
        for (int k = 0; k < p->infer->nnodes; k++)
            if (!strcmp(p->infer->nodes[k]->name, p->outputs[i].buffer))
                p->outputs[i].vtime = p->infer->nodes[k]->vtime;
    ir_verify(p->infer);
    /* each layer's parameter count, from its group's weights (chained per group, so that a model of
       thousands of layers is not layers x weights string compares) */
    const WeightSet *ws = p->weights;
    int *next_in_group = arena_alloc(a, (size_t)(ws->n + 1) * sizeof *next_in_group);
    StrMap first_in_group = {0};
    for (int w = ws->n - 1; w >= 0; w--) {
        intptr_t first = (intptr_t)strmap_get(&first_in_group, ws->items[w]->layer);
        next_in_group[w] = (int)first - 1;
        strmap_put(a, &first_in_group, ws->items[w]->layer, (void *)(intptr_t)(w + 1));
    }
    for (int i = 0; i < m->nlayers; i++) {
        Layer *l = m->layers[i];
        l->params = l->trainable_params = 0;
        for (int w = (int)(intptr_t)strmap_get(&first_in_group, l->group) - 1; w >= 0; w = next_in_group[w])
            if (!strcmp(p->weights->items[w]->layer, l->group) &&
                (!l->local || !strncmp(p->weights->items[w]->name, l->local, strlen(l->local))) &&
                (!l->local || p->weights->items[w]->name[strlen(l->local)] == '/')) {
                l->params += shape_size(&p->weights->items[w]->shape);
                if (p->weights->items[w]->trainable)
                    l->trainable_params += shape_size(&p->weights->items[w]->shape);
            }
    }
    if (p->inference_only)
        return 0;
    p->train = graph_new(a, "train", true, p->weights, p->max_batch);
    p->train->max_timesteps = p->max_timesteps;
    if (lower_graph(a, m, p, p->train))
        return -1;
    ir_autodiff(p->train, p->optimizer.kind);
    if (check_time_axis(p->train))
        return -1;
    ir_verify(p->train);
    return 0;
}
