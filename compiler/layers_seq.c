/* layers_seq.c — Keras layers for sequences: SimpleRNN, LSTM, GRU and
 * TimeDistributed.
 *
 * A recurrent layer lowers to RNN (a tape holding every hidden state and
 * what backpropagation through time needs, computed by runtime/rnn.c) and
 * RNN_OUTPUT (the sequence or the last state). Weights follow tf.keras 2.x:
 * kernel (input, G*units), recurrent_kernel (units, G*units), bias (G*units)
 * or, for GRU with reset_after, (2, 3*units); saved through the cell as
 * "lstm/lstm_cell/kernel:0" (the cell numbered like the layer). The tape
 * and workspace sizes mirror runtime/rnn.c's layout; the generated code
 * asserts they agree. TimeDistributed lowers the wrapped layer on the
 * (B, T, ...) input, which every layer mapping the last axis already
 * handles step by step.
 */
#include "compiler.h"
#include "nnrt.h"

#include <string.h>

static int rnn_activation(const Layer *l, const char *arg, int *out)
{
    const ArgValue *v = layer_arg(l, arg);
    switch (v->act.kind) {
    case ACT_TANH:
        *out = NNRT_RNN_TANH;
        return 0;
    case ACT_SIGMOID:
        *out = NNRT_RNN_SIGMOID;
        return 0;
    case ACT_HARD_SIGMOID:
        *out = NNRT_RNN_HARD_SIGMOID;
        return 0;
    case ACT_RELU:
        *out = NNRT_RNN_RELU;
        return 0;
    case ACT_LINEAR:
        *out = NNRT_RNN_LINEAR;
        return 0;
    case ACT_ELU:
    case ACT_SELU:
    case ACT_SOFTPLUS:
    case ACT_SOFTSIGN:
    case ACT_SWISH:
    case ACT_GELU:
    case ACT_EXPONENTIAL:
    case ACT_LEAKY_RELU:
    case ACT_SOFTMAX:
    case ACT_CUSTOM:
    case ACT_COUNT:
        break;
    }
    error_at(v->loc, "%s of a recurrent layer must be tanh, sigmoid, hard_sigmoid, relu or linear, not %s", arg,
             act_info[v->act.kind].name);
    return -1;
}

/* Floats per sample of the tape and of the workspace for a batch: runtime/rnn.c's layout. */
static int64_t tape_floats(int kind, int64_t steps, int64_t units)
{
    int64_t tu = steps * units;
    return kind == NNRT_SIMPLE_RNN ? tu : kind == NNRT_LSTM ? 6 * tu : 5 * tu;
}

static size_t workspace_floats(int kind, int reset_after, int64_t steps, int64_t input, int64_t units, size_t batch)
{
    int64_t G = kind == NNRT_SIMPLE_RNN ? 1 : kind == NNRT_LSTM ? 4 : 3, B = (int64_t)batch, u = units, T = steps;
    (void)input;
    int64_t fwd = u + B * T * G * u + B * G * u;
    int64_t bwd = u + B * T * G * u + B * T * u + B * u;
    if (kind == NNRT_LSTM) bwd += B * u + 2 * u;
    if (kind == NNRT_GRU && reset_after) bwd += B * T * G * u;
    if (kind == NNRT_GRU && !reset_after) bwd += B * T * u + B * u;
    return (size_t)(fwd > bwd ? fwd : bwd);
}

static int lower_rnn(Lower *lw, Layer *l, Node *const *in, int nin, int kind, Node **out)
{
    Node *x = in[0];
    static const char *const stems[] = {"simple_rnn", "lstm", "gru"};
    if (x->shape.rank != 2) {
        error_at(l->loc, "%s '%s' needs a sequence input (steps, features), got %s", l->cls->name, l->name,
                 shape_str(lw->arena, &x->shape, true));
        if (x->shape.rank == 1)
            hint("a univariate series needs its feature axis: shape [50, 1]");
        return -1;
    }
    const ArgValue *units = layer_arg(l, "units");
    if (units->i <= 0)
        return error_at(units->loc, "units must be positive");
    if (layer_arg(l, "stateful")->b)
        return error_at(layer_arg(l, "stateful")->loc, "stateful is not supported yet");
    /* initial_state: h0 (LSTM: h0 and c0), each (B, units), after the input */
    int nstates = kind == NNRT_LSTM ? 2 : 1;
    if (nin > 1 && nin - 1 != nstates) {
        error_at(l->state_locs[0], "%s takes %d initial state%s, not %d", l->cls->name, nstates,
                 nstates == 1 ? " (h)" : "s (h and c)", nin - 1);
        hint(kind == NNRT_LSTM ? "give both: initial_state: [\"encoder[1]\", \"encoder[2]\"]"
                               : "give the state h: initial_state: \"encoder[1]\"");
        return -1;
    }
    for (int i = 1; i < nin; i++)
        if (in[i]->shape.rank != 1 || in[i]->shape.dim[0] != units->i || !in[i]->batched) {
            error_at(l->state_locs[i - 1], "initial state '%s' has shape %s; %s '%s' with %ld units needs (B,%ld)",
                     l->state_names[i - 1], shape_str(lw->arena, &in[i]->shape, in[i]->batched), l->cls->name,
                     l->name, units->i, units->i);
            hint("a state is one vector of units per sample: the last h (or c) of a recurrent layer with as many "
                 "units, or a Dense of that size");
            return -1;
        }
    const ArgValue *drop = layer_arg(l, "dropout"), *rdrop = layer_arg(l, "recurrent_dropout");
    const ArgValue *rates[2] = {drop, rdrop};
    for (int i = 0; i < 2; i++)
        if (!(rates[i]->f >= 0 && rates[i]->f < 1))
            return error_at(rates[i]->loc, "%s must be in [0, 1), not %g", rates[i]->spec->name, rates[i]->f);
    /* Keras's dropout: one input mask per sample, the same at every step */
    if (drop->f > 0 && lw->g->training) {
        Node *mask = lower_node(lw, l, OP_DROPOUT_MASK, 0, NULL, "input_mask");
        mask->shape = x->shape;
        mask->batched = true;
        mask->vtime = x->vtime;
        mask->alpha = (float)drop->f;
        mask->steps = (int)x->shape.dim[0];
        x = lower_node(lw, l, OP_MUL, 2, (Node *[]){x, mask}, "dropped");
    }
    if (layer_arg(l, "activity_regularizer")->reg.l1 || layer_arg(l, "activity_regularizer")->reg.l2 ||
        layer_arg(l, "activity_regularizer")->reg.custom)
        return error_at(layer_arg(l, "activity_regularizer")->loc, "activity_regularizer is not supported yet");
    Node tmp = {0};
    tmp.rnn.kind = kind;
    tmp.rnn.units = (int)units->i;
    if (rnn_activation(l, "activation", &tmp.rnn.activation))
        return -1;
    tmp.rnn.recurrent_activation = NNRT_RNN_SIGMOID;
    if (kind != NNRT_SIMPLE_RNN && rnn_activation(l, "recurrent_activation", &tmp.rnn.recurrent_activation))
        return -1;
    tmp.rnn.go_backwards = layer_arg(l, "go_backwards")->b;
    tmp.rnn.reset_after = kind == NNRT_GRU && layer_arg(l, "reset_after")->b;
    tmp.rnn.which = layer_arg(l, "return_sequences")->b ? NNRT_RNN_SEQUENCE : NNRT_RNN_LAST;
    tmp.rnn.has_bias = layer_arg(l, "use_bias")->b;
    tmp.rnn.has_state = nin > 1;

    /* the cell is numbered like the layer among its class: lstm_cell, lstm_cell_1 ... */
    int index = 0;
    for (int i = 0; i < lw->model->nlayers && lw->model->layers[i] != l; i++)
        index += lw->model->layers[i]->cls == l->cls;
    const char *cell = index ? arena_printf(lw->arena, "%s_cell_%d", stems[kind], index)
                             : arena_printf(lw->arena, "%s_cell", stems[kind]);
    int64_t g = kind == NNRT_SIMPLE_RNN ? 1 : kind == NNRT_LSTM ? 4 : 3, u = units->i;
    Shape ks = {2, {x->shape.dim[1], g * u}}, rs = {2, {u, g * u}};
    Shape bs = tmp.rnn.reset_after ? (Shape){2, {2, g * u}} : (Shape){1, {g * u}};
    Node *w = lower_weight(lw, l, arena_printf(lw->arena, "%s/kernel", cell), &ks,
                           &layer_arg(l, "kernel_initializer")->init, l->trainable);
    Node *r = lower_weight(lw, l, arena_printf(lw->arena, "%s/recurrent_kernel", cell), &rs,
                           &layer_arg(l, "recurrent_initializer")->init, l->trainable);
    if (!w || !r)
        return -1;
    layer_weight_options(w, l, "kernel_regularizer", "kernel_constraint");
    layer_weight_options(r, l, "recurrent_regularizer", "recurrent_constraint");
    Node *src[8] = {x, w, r};
    int nsrc = 3;
    if (tmp.rnn.has_bias) {
        Node *b = lower_weight(lw, l, arena_printf(lw->arena, "%s/bias", cell), &bs,
                               &layer_arg(l, "bias_initializer")->init, l->trainable);
        if (!b)
            return -1;
        layer_weight_options(b, l, "bias_regularizer", "bias_constraint");
        if (kind == NNRT_LSTM && layer_arg(l, "unit_forget_bias")->b)
            b->w->forget_bias_units = (int)u;  /* Keras: the forget gate's bias starts at 1 */
        src[nsrc++] = b;
    }
    for (int i = 1; i < nin; i++)
        src[nsrc++] = in[i];
    if (rdrop->f > 0 && lw->g->training) {  /* recurrent_dropout: one mask on h_{t-1} per sample */
        Node *rmask = lower_node(lw, l, OP_DROPOUT_MASK, 0, NULL, "recurrent_mask");
        rmask->shape = (Shape){1, {u}};
        rmask->batched = true;
        rmask->alpha = (float)rdrop->f;
        src[nsrc++] = rmask;
        tmp.rnn.has_rmask = true;
    }
    Node *tape = lower_node(lw, l, OP_RNN, nsrc, src, "tape");
    tape->rnn = tmp.rnn;
    tape->shape = (Shape){2, {x->shape.dim[0], tape_floats(kind, 1, u)}};  /* per step: T scales it */
    tape->batched = true;
    tape->workspace = workspace_floats(kind, tmp.rnn.reset_after, x->shape.dim[0], x->shape.dim[1], u, lw->g->max_batch);
    Node *y = lower_node(lw, l, OP_RNN_OUTPUT, 1, &tape, NULL);
    y->rnn = tmp.rnn;
    node_infer_shape(lw->g, y);
    *out = y;
    if (layer_arg(l, "return_state")->b) {  /* Keras's [output, h_T(, c_T)]: name[1], name[2] */
        static const char *const names[] = {"state_h", "", "state_c"};
        for (int which = NNRT_RNN_LAST; which <= (kind == NNRT_LSTM ? NNRT_RNN_CELL : NNRT_RNN_LAST); which += 2) {
            Node *s = lower_node(lw, l, OP_RNN_OUTPUT, 1, &tape, names[which]);
            s->rnn = tmp.rnn;
            s->rnn.which = which;
            node_infer_shape(lw->g, s);
            lw->more[lw->nmore++] = s;
        }
    }
    return 0;
}

int lower_simple_rnn(Lower *lw, Layer *l, Node *const *in, int nin, Node **out)
{
    return lower_rnn(lw, l, in, nin, NNRT_SIMPLE_RNN, out);
}

int lower_lstm(Lower *lw, Layer *l, Node *const *in, int nin, Node **out)
{
    return lower_rnn(lw, l, in, nin, NNRT_LSTM, out);
}

int lower_gru(Lower *lw, Layer *l, Node *const *in, int nin, Node **out)
{
    return lower_rnn(lw, l, in, nin, NNRT_GRU, out);
}

/* TimeDistributed(layer): the wrapped layer, named and saved as the wrapper,
 * on the (B, T, ...) input; it must keep the time axis. */
int lower_time_distributed(Lower *lw, Layer *l, Node *const *in, int nin, Node **out)
{
    const ArgValue *v = layer_arg(l, "layer");
    Node *x = in[0];
    if (x->shape.rank < 2)
        return error_at(l->loc, "TimeDistributed needs an input with a time axis, got %s",
                        shape_str(lw->arena, &x->shape, true));
    Layer *inner = arena_alloc(lw->arena, sizeof *inner);
    if (parse_layer(lw->arena, lw->model, v->node, inner))
        return -1;
    if (inner->ninputs)
        return error_at(v->loc, "the layer TimeDistributed wraps takes its input from the wrapper");
    if (inner->cls->max_inputs != 1 || strcmp(inner->cls->name, "TimeDistributed") == 0)
        return error_at(v->loc, "TimeDistributed cannot wrap %s", inner->cls->name);
    inner->name = l->name;
    inner->group = l->group;
    inner->local = l->local;
    inner->block_class = l->block_class;
    inner->trainable = l->trainable && inner->trainable;
    if (inner->cls->lower(lw, inner, in, nin, out))
        return -1;
    if ((*out)->shape.rank < 1 || !(*out)->batched || (*out)->shape.rank != x->shape.rank ||
        (*out)->shape.dim[0] != x->shape.dim[0])
        return error_at(v->loc, "TimeDistributed(%s) must keep the time axis of %s; it gives %s", inner->cls->name,
                        shape_str(lw->arena, &x->shape, true), shape_str(lw->arena, &(*out)->shape, true));
    return 0;
}
