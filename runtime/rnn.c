/* rnn.c — SimpleRNN, LSTM and GRU over whole sequences: forward and
 * backpropagation through time, with tf.keras 2.x semantics.
 *
 * Shapes: x (B, T, in), W (in, G*u), U (u, G*u); step t = 0..T-1 is the
 * processing order and s(t) the input step it reads (s = t, or T-1-t with
 * go_backwards). With h_{-1} = c_{-1} = 0, act the activation and rec the
 * recurrent activation, and gates split along the last axis in Keras order:
 *   SimpleRNN (G=1)  h_t = act(x_s W + h_{t-1} U + b)
 *   LSTM (G=4)       [i f c~ o] = x_s W + h_{t-1} U + b, then i,f,o = rec(.),
 *                    c~ = act(.); c_t = f c_{t-1} + i c~; h_t = o act(c_t)
 *   GRU (G=3)        [xz xr xh] = x_s W + b_in
 *     reset_after    [rz rr rh] = h_{t-1} U + b_rec     (b is (2, 3u))
 *                    z = rec(xz + rz), r = rec(xr + rr), h~ = act(xh + r rh)
 *     reset before   [rz rr] = h_{t-1} U[:, :2u]         (b is (3u), all in b_in)
 *                    z, r as above, h~ = act(xh + (r h_{t-1}) U[:, 2u:])
 *                    h_t = z h_{t-1} + (1 - z) h~
 *
 * Forward: one GEMM projects every step of every sample, xw (B*T, G*u) =
 * x W + b_in, rows (b, s) as x's rows. Each step is then one GEMM over the
 * batch, h_{t-1} (B, u) U -> hu (B, G*u) (GRU without reset_after: two, the
 * second on r h_{t-1}), read straight from the tape with leading dimension
 * tape_floats, followed by one pass per sample that adds, applies the gate
 * nonlinearities and forms c and h.
 *
 * Tape, per sample, floats (T = steps, u = units), every block in
 * processing order t:
 *   h      (T, u)     at 0               the outputs, so nnrt_rnn_output is a copy
 *   gates  (T, G*u)   at T*u             activated gates: LSTM i f c~ o; GRU z r h~
 *   extra  (T, u)     at T*u + T*G*u     LSTM: c_t; GRU reset_after: rh = h_{t-1} U_h + b_rec_h;
 *                                        GRU reset before: r * h_{t-1}
 * SimpleRNN keeps only h (its one gate), T*u floats; LSTM 6*T*u; GRU 5*T*u.
 *
 * Backward walks t from T-1 to 0 with dh (B, u) = dy_t + the carry from
 * step t+1 (and dc for LSTM). Per sample it forms the pre-activation
 * gradients of step t into dz (B*T, G*u), rows (b, s) like x's; every
 * activation derivative is taken from the activation's output (tanh' =
 * 1 - y^2, sigmoid' = y (1 - y), hard_sigmoid' = 0.2 inside (0, 1), relu'
 * = [y > 0]), so the tape needs no pre-activations. The carry is one GEMM
 * over the batch, dz_t U^T (GRU: with the recurrent side's gradients,
 * which differ from dz in the candidate block). After the loop the weight
 * gradients are single GEMMs over all B*T rows: dW = x^T dz, dx = dz W^T,
 * dU = hprev^T dz_rec with hprev (B*T, u) holding h_{t-1} at row (b, s);
 * db are column sums of dz.
 *
 * Recurrent dropout (rmask, (B, u), NULL for none) replaces h_{t-1} by
 * hm = h_{t-1} * rmask wherever h_{t-1} meets U: the forward writes hm into
 * the tape's h rows of step t (free until h_t lands there, after the step's
 * GEMMs) and multiplies from there; GRU reset before stores r hm as its
 * extra. The gates' formulas above hold with hm in the recurrent products,
 * while c_{t-1} (LSTM) and the z h_{t-1} of GRU stay unmasked. Backward:
 * hprev holds hm, so dU = hm^T dz_rec; the carry through U is multiplied by
 * rmask before the direct part (GRU's dh z) is added: GRU reset_after parks
 * the GEMM's result in the hprev rows of step t, written only after; GRU
 * reset before gathers d hm = d(r hm) r + [dz_z dz_r] U_zr^T in its second
 * carry. So the workspace is the same with or without rmask.
 * Keras: SimpleRNNCell is exactly this. tf.keras 2.x LSTMCell and GRUCell
 * switch to implementation=1 when recurrent_dropout is set and draw one
 * independent mask per gate (4 and 3) over the same formulas; one shared
 * mask is the implementation=2 form of TF 1.x tf.keras and Keras 2.2, whose
 * GRU also mixed z with the masked h_{t-1} (not done here).
 *
 * Keras's initial_state and return_state (NnrtRnnState, NnrtRnnWhich):
 * h0 and c0 rows (B, u) replace h_{-1} = c_{-1} = 0 wherever step 0 reads
 * them (h0 then meets U at step 0, through rmask like any h_{t-1}); the
 * backward then also carries past step 0, and that carry is dh0 (dc0 the
 * LSTM's dc carry). An output of LSTM's last c reads the extra block at
 * step T-1, and its gradient enters the backward as the first dc carry.
 *
 * Invariants: no allocation; the workspace is scratch that need not survive
 * between calls (every call writes each workspace float before reading it);
 * the tape is written whole by the forward and only read by the backward.
 * Switches over activation kinds sit outside the loops over units.
 */
#include <assert.h>
#include <limits.h>
#include <math.h>
#include <string.h>

#include "nnrt.h"

typedef struct {
    int T, in, u;                /* steps, input features, units */
    int G, Gu;                   /* gates; G*u, the width of W, U and a gate row */
    int tape;                    /* floats per sample of the tape */
    size_t gates, extra;         /* offsets of the gate and extra blocks in a sample's tape */
    int reset_after;             /* GRU's variant (0 for the others) */
} Dims;

static Dims dims_of(const NnrtRnn *r)
{
    assert(r && r->steps > 0 && r->input > 0 && r->units > 0);
    Dims d = {.T = r->steps, .in = r->input, .u = r->units};
    switch (r->kind) {
    case NNRT_SIMPLE_RNN: d.G = 1; break;
    case NNRT_LSTM:       d.G = 4; break;
    case NNRT_GRU:        d.G = 3; d.reset_after = r->reset_after != 0; break;
    }
    assert(d.G > 0 && "unknown NnrtRnnKind");
    d.Gu = d.G * d.u;
    size_t Tu = (size_t)d.T * d.u;
    d.gates = Tu;
    d.extra = Tu + (size_t)d.T * d.Gu;
    size_t tape = r->kind == NNRT_SIMPLE_RNN ? Tu : d.extra + Tu;
    assert(tape <= INT_MAX && (size_t)d.T * d.Gu <= INT_MAX && "sequence too long for BLAS strides");
    d.tape = (int)tape;
    return d;
}

size_t nnrt_rnn_tape_floats(const NnrtRnn *r)
{
    return (size_t)dims_of(r).tape;
}

/* Workspace layouts (floats), carved by forward_ws / backward_ws, which also
 * size them when ws is NULL:
 * forward   zeros (u) | xw (B*T, G*u) | hu (B, G*u)
 * backward  zeros (u) | dz (B*T, G*u) | dz_rec (B*T, G*u), GRU reset_after
 *           | hprev (B*T, u) | rhprev (B*T, u), GRU reset before
 *           | dh (B, u) | dc (LSTM) or d(r h_{t-1}) (GRU reset before) (B, u)
 *           | act(c_t), act'(c_t) (2u), LSTM
 * zeros stands for h_{-1} = c_{-1} = 0. */
typedef struct {
    float *zeros;                /* (u) */
    float *xw;                   /* (B*T, G*u) x W + b_in, rows (b, s) */
    float *hu;                   /* (B, G*u) h_{t-1} U (+ b_rec) of the current step */
} ForwardWs;

typedef struct {
    float *zeros;                /* (u) */
    float *dz;                   /* (B*T, G*u) d loss / d pre-activation, input side, rows (b, s) */
    float *dz_rec;               /* (B*T, G*u) the same, recurrent side (== dz but for GRU reset_after) */
    float *hprev;                /* (B*T, u) h_{t-1} (hm with rmask) at row (b, s); GRU reset_after
                                    with rmask parks step t's dz_rec U^T in its rows first */
    float *rhprev;               /* (B*T, u) r h_{t-1} at row (b, s), GRU reset before */
    float *dh;                   /* (B, u) d loss / d h_t, then the carry to t-1 */
    float *carry2;               /* (B, u) LSTM: dc; GRU reset before: d(r h_{t-1}) */
    float *scratch;              /* (2u) LSTM: act(c_t), act'(c_t) of one sample */
    const float *h0, *c0;        /* (B, u) the initial state, NULL for zeros (not workspace) */
} BackwardWs;

/* h_{t-1} of sample b, ts its tape: h0's row (or zeros) at t = 0 */
static const float *prev_h(const BackwardWs *w, const float *ts, const Dims *d, int b, int t)
{
    return t > 0 ? ts + (size_t)(t - 1) * d->u : w->h0 ? w->h0 + (size_t)b * d->u : w->zeros;
}

/* The next `count` floats of ws (NULL when only sizing or count is 0). */
static float *carve(float *ws, size_t *used, size_t count)
{
    float *p = ws && count ? ws + *used : NULL;
    *used += count;
    return p;
}

static size_t forward_ws(ForwardWs *w, float *ws, const Dims *d, size_t B)
{
    size_t used = 0;
    w->zeros = carve(ws, &used, (size_t)d->u);
    w->xw = carve(ws, &used, B * d->T * d->Gu);
    w->hu = carve(ws, &used, B * d->Gu);
    return used;
}

static size_t backward_ws(BackwardWs *w, float *ws, const NnrtRnn *r, const Dims *d, size_t B)
{
    const size_t rows = B * d->T;
    const int lstm = r->kind == NNRT_LSTM, gru_after = r->kind == NNRT_GRU && d->reset_after;
    const int gru_before = r->kind == NNRT_GRU && !d->reset_after;
    size_t used = 0;
    w->zeros = carve(ws, &used, (size_t)d->u);
    w->dz = carve(ws, &used, rows * d->Gu);
    w->dz_rec = gru_after ? carve(ws, &used, rows * d->Gu) : w->dz;
    w->hprev = carve(ws, &used, rows * d->u);
    w->rhprev = gru_before ? carve(ws, &used, rows * d->u) : NULL;
    w->dh = carve(ws, &used, B * d->u);
    w->carry2 = lstm || gru_before ? carve(ws, &used, B * d->u) : NULL;
    w->scratch = lstm ? carve(ws, &used, 2 * (size_t)d->u) : NULL;
    return used;
}

size_t nnrt_rnn_workspace_floats(const NnrtRnn *r, size_t batch)
{
    const Dims d = dims_of(r);
    ForwardWs fw;
    BackwardWs bw;
    size_t f = forward_ws(&fw, NULL, &d, batch), b = backward_ws(&bw, NULL, r, &d, batch);
    return f > b ? f : b;
}

/* ---- activations ---------------------------------------------------------- */

/* tanh for floats, the algorithm of Cephes' tanhf (S. Moshier): an odd
 * polynomial below |x| = 0.625, 1 - 2 / (e^{2|x|} + 1) above. Measured
 * against double tanh over every positive float: at most 1.3 ulp (glibc's
 * tanhf: 2.2 ulp) at a third of the time; glibc goes through expm1f, which
 * dominated the LSTM step. Exact at 0, odd, +-1 at +-inf, NaN stays NaN. */
static inline float tanh_float(float x)
{
    float a = fabsf(x);
    if (a < 0.625f) {
        float s = x * x;
        return ((((-5.70498872745e-3f * s + 2.06390887954e-2f) * s - 5.37397155531e-2f) * s + 1.33314422036e-1f) * s -
                3.33332819422e-1f) * s * x + x;
    }
    float t = 1.0f - 2.0f / (expf(a + a) + 1.0f);
    return x < 0.0f ? -t : t;
}

/* y[j] = act(x[j]) for j < n; y may alias x. */
static void activate(NnrtRnnAct a, float *y, const float *x, int n)
{
    switch (a) {
    case NNRT_RNN_TANH:
        for (int j = 0; j < n; j++)
            y[j] = tanh_float(x[j]);
        break;
    case NNRT_RNN_SIGMOID:
        for (int j = 0; j < n; j++)
            y[j] = 1.0f / (1.0f + expf(-x[j]));
        break;
    case NNRT_RNN_HARD_SIGMOID:  /* Keras 2: clip(0.2 x + 0.5, 0, 1) */
        for (int j = 0; j < n; j++) {
            float v = 0.2f * x[j] + 0.5f;
            y[j] = v < 0.0f ? 0.0f : v > 1.0f ? 1.0f : v;
        }
        break;
    case NNRT_RNN_RELU:
        for (int j = 0; j < n; j++)
            y[j] = x[j] > 0.0f ? x[j] : 0.0f;
        break;
    case NNRT_RNN_LINEAR:
        if (y != x)
            memcpy(y, x, (size_t)n * sizeof *y);
        break;
    }
}

/* g[j] = act'(x_j) given y[j] = act(x_j). At a kink (relu at 0, hard_sigmoid
 * at its clip points) the one-sided derivative that is 0 is taken. */
static void act_grad(NnrtRnnAct a, float *g, const float *y, int n)
{
    switch (a) {
    case NNRT_RNN_TANH:
        for (int j = 0; j < n; j++)
            g[j] = 1.0f - y[j] * y[j];
        break;
    case NNRT_RNN_SIGMOID:
        for (int j = 0; j < n; j++)
            g[j] = y[j] * (1.0f - y[j]);
        break;
    case NNRT_RNN_HARD_SIGMOID:
        for (int j = 0; j < n; j++)
            g[j] = y[j] > 0.0f && y[j] < 1.0f ? 0.2f : 0.0f;
        break;
    case NNRT_RNN_RELU:
        for (int j = 0; j < n; j++)
            g[j] = y[j] > 0.0f ? 1.0f : 0.0f;
        break;
    case NNRT_RNN_LINEAR:
        for (int j = 0; j < n; j++)
            g[j] = 1.0f;
        break;
    }
}

/* ---- forward ---------------------------------------------------------------- */

/* hu[:, col : col+n] (B rows of G*u) = a U[:, col : col+n] + bias[col : col+n].
 * a is the tape block holding the left operand of sample 0 (rows of later
 * samples follow at tape_floats), or NULL for h_{-1} = 0; bias may be NULL. */
static void recurrent_matmul(float *hu, const float *a, int lda, const float *U, int col, int n, const float *bias,
                             const Dims *d, int B)
{
    for (int b = 0; b < B; b++) {
        float *row = hu + (size_t)b * d->Gu + col;
        if (bias)
            memcpy(row, bias + col, (size_t)n * sizeof *row);
        else if (!a)
            memset(row, 0, (size_t)n * sizeof *row);
    }
    if (a)
        nnrt_gemm(0, 0, B, n, d->u, 1.0f, a, lda, U + col, d->Gu, bias ? 1.0f : 0.0f, hu + col, d->Gu);
}

/* h_t = act(xw + hu) */
static void simple_step(float *tape, const float *xw_t, const float *hu, const Dims *d, const NnrtRnn *r,
                        int B, int t)
{
    const int u = d->u;
    for (int b = 0; b < B; b++) {
        float *h = tape + (size_t)b * d->tape + (size_t)t * u;
        const float *xr = xw_t + (size_t)b * d->T * d->Gu, *hr = hu + (size_t)b * d->Gu;
        for (int j = 0; j < u; j++)
            h[j] = xr[j] + hr[j];
        activate(r->activation, h, h, u);
    }
}

/* [i f c~ o] = [rec rec act rec](xw + hu); c_t = f c_{t-1} + i c~; h_t = o act(c_t) */
static void lstm_step(float *tape, const float *xw_t, const float *hu, const float *zeros, const float *c0,
                      const Dims *d, const NnrtRnn *r, int B, int t)
{
    const int u = d->u;
    for (int b = 0; b < B; b++) {
        float *ts = tape + (size_t)b * d->tape;
        float *g = ts + d->gates + (size_t)t * d->Gu, *c = ts + d->extra + (size_t)t * u, *h = ts + (size_t)t * u;
        const float *cp = t > 0 ? c - u : c0 ? c0 + (size_t)b * u : zeros;
        const float *xr = xw_t + (size_t)b * d->T * d->Gu, *hr = hu + (size_t)b * d->Gu;
        for (int j = 0; j < d->Gu; j++)
            g[j] = xr[j] + hr[j];
        activate(r->recurrent_activation, g, g, 2 * u);
        activate(r->activation, g + 2 * u, g + 2 * u, u);
        activate(r->recurrent_activation, g + 3 * u, g + 3 * u, u);
        for (int j = 0; j < u; j++)
            c[j] = g[u + j] * cp[j] + g[j] * g[2 * u + j];
        activate(r->activation, h, c, u);
        for (int j = 0; j < u; j++)
            h[j] *= g[3 * u + j];
    }
}

/* reset_after: z, r = rec(xw + hu); rh = hu_h (h_{t-1} U_h + b_rec_h);
 * h~ = act(xw_h + r rh); h_t = z h_{t-1} + (1 - z) h~ */
static void gru_after_step(float *tape, const float *xw_t, const float *hu, const float *zeros, const float *h0,
                           const Dims *d, const NnrtRnn *r, int B, int t)
{
    const int u = d->u;
    for (int b = 0; b < B; b++) {
        float *ts = tape + (size_t)b * d->tape;
        float *g = ts + d->gates + (size_t)t * d->Gu, *rh = ts + d->extra + (size_t)t * u, *h = ts + (size_t)t * u;
        const float *hp = t > 0 ? h - u : h0 ? h0 + (size_t)b * u : zeros;
        const float *xr = xw_t + (size_t)b * d->T * d->Gu, *hr = hu + (size_t)b * d->Gu;
        for (int j = 0; j < 2 * u; j++)
            g[j] = xr[j] + hr[j];
        activate(r->recurrent_activation, g, g, 2 * u);
        for (int j = 0; j < u; j++) {
            rh[j] = hr[2 * u + j];
            g[2 * u + j] = xr[2 * u + j] + g[u + j] * rh[j];
        }
        activate(r->activation, g + 2 * u, g + 2 * u, u);
        for (int j = 0; j < u; j++)
            h[j] = g[j] * hp[j] + (1.0f - g[j]) * g[2 * u + j];
    }
}

/* reset before, first half: z, r = rec(xw + hu); r h_{t-1} (r hm with rmask) into the tape */
static void gru_before_gates(float *tape, const float *xw_t, const float *hu, const float *rmask,
                             const float *zeros, const float *h0, const Dims *d, const NnrtRnn *r, int B, int t)
{
    const int u = d->u;
    for (int b = 0; b < B; b++) {
        float *ts = tape + (size_t)b * d->tape;
        float *g = ts + d->gates + (size_t)t * d->Gu, *rhp = ts + d->extra + (size_t)t * u;
        const float *hp = t > 0 ? ts + (size_t)(t - 1) * u : h0 ? h0 + (size_t)b * u : zeros;
        const float *xr = xw_t + (size_t)b * d->T * d->Gu, *hr = hu + (size_t)b * d->Gu;
        for (int j = 0; j < 2 * u; j++)
            g[j] = xr[j] + hr[j];
        activate(r->recurrent_activation, g, g, 2 * u);
        if (rmask) {
            const float *m = rmask + (size_t)b * u;
            for (int j = 0; j < u; j++)
                rhp[j] = g[u + j] * (hp[j] * m[j]);
        } else {
            for (int j = 0; j < u; j++)
                rhp[j] = g[u + j] * hp[j];
        }
    }
}

/* reset before, second half: h~ = act(xw_h + hu_h), hu_h = (r h_{t-1}) U_h;
 * h_t = z h_{t-1} + (1 - z) h~ */
static void gru_before_state(float *tape, const float *xw_t, const float *hu, const float *zeros, const float *h0,
                             const Dims *d, const NnrtRnn *r, int B, int t)
{
    const int u = d->u;
    for (int b = 0; b < B; b++) {
        float *ts = tape + (size_t)b * d->tape;
        float *g = ts + d->gates + (size_t)t * d->Gu, *h = ts + (size_t)t * u;
        const float *hp = t > 0 ? h - u : h0 ? h0 + (size_t)b * u : zeros;
        const float *xr = xw_t + (size_t)b * d->T * d->Gu, *hr = hu + (size_t)b * d->Gu;
        for (int j = 2 * u; j < 3 * u; j++)
            g[j] = xr[j] + hr[j];
        activate(r->activation, g + 2 * u, g + 2 * u, u);
        for (int j = 0; j < u; j++)
            h[j] = g[j] * hp[j] + (1.0f - g[j]) * g[2 * u + j];
    }
}

/* Recurrent dropout: hm = h_{t-1} * rmask into the h rows of step t, which
 * h_t overwrites after the step's GEMMs; returns that block of sample 0
 * (rows d->tape apart). At t = 0, h_{-1} is h0's row. */
static const float *masked_hprev(float *tape, const float *rmask, const float *h0, const Dims *d, int B, int t)
{
    const int u = d->u;
    for (int b = 0; b < B; b++) {
        float *hm = tape + (size_t)b * d->tape + (size_t)t * u;
        const float *hp = t > 0 ? hm - u : h0 + (size_t)b * u, *m = rmask + (size_t)b * u;
        for (int j = 0; j < u; j++)
            hm[j] = hp[j] * m[j];
    }
    return tape + (size_t)t * u;
}

void nnrt_rnn_forward(float *tape, const float *x, const float *W, const float *U, const float *b,
                      const float *rmask, const NnrtRnnState *state, const NnrtRnn *r, int B, float *ws)
{
    const float *h0 = state ? state->h0 : NULL, *c0 = state ? state->c0 : NULL;
    const Dims d = dims_of(r);
    if (B <= 0)
        return;
    ForwardWs w;
    forward_ws(&w, ws, &d, (size_t)B);
    memset(w.zeros, 0, (size_t)d.u * sizeof *w.zeros);

    /* xw (B*T, G*u) = x W + b_in, the input projection of every step at once */
    const size_t rows = (size_t)B * d.T;
    if (b)
        for (size_t i = 0; i < rows; i++)
            memcpy(w.xw + i * d.Gu, b, (size_t)d.Gu * sizeof *w.xw);
    nnrt_gemm(0, 0, (int)rows, d.Gu, d.in, 1.0f, x, d.in, W, d.Gu, b ? 1.0f : 0.0f, w.xw, d.Gu);

    const float *b_rec = r->kind == NNRT_GRU && d.reset_after && b ? b + d.Gu : NULL;
    for (int t = 0; t < d.T; t++) {
        const int s = r->go_backwards ? d.T - 1 - t : t;
        const float *xw_t = w.xw + (size_t)s * d.Gu;       /* sample b's row at b*T*G*u */
        /* the recurrent operand: row t-1 of the h block, or hm (in row t) with rmask; at
         * t = 0 h0 (rows u apart), or none for zeros */
        const float *hprev = t == 0 && !h0 ? NULL
                           : rmask         ? masked_hprev(tape, rmask, h0, &d, B, t)
                           : t == 0        ? h0
                                           : tape + (size_t)(t - 1) * d.u;
        const int lda = t == 0 && h0 && !rmask ? d.u : d.tape;
        switch (r->kind) {
        case NNRT_SIMPLE_RNN:
            recurrent_matmul(w.hu, hprev, lda, U, 0, d.Gu, NULL, &d, B);
            simple_step(tape, xw_t, w.hu, &d, r, B, t);
            break;
        case NNRT_LSTM:
            recurrent_matmul(w.hu, hprev, lda, U, 0, d.Gu, NULL, &d, B);
            lstm_step(tape, xw_t, w.hu, w.zeros, c0, &d, r, B, t);
            break;
        case NNRT_GRU:
            if (d.reset_after) {
                recurrent_matmul(w.hu, hprev, lda, U, 0, d.Gu, b_rec, &d, B);
                gru_after_step(tape, xw_t, w.hu, w.zeros, h0, &d, r, B, t);
            } else {
                recurrent_matmul(w.hu, hprev, lda, U, 0, 2 * d.u, NULL, &d, B);
                gru_before_gates(tape, xw_t, w.hu, rmask, w.zeros, h0, &d, r, B, t);
                /* r h_{t-1} or r hm; zero at t = 0 without h0 */
                const float *rhp = t > 0 || h0 ? tape + d.extra + (size_t)t * d.u : NULL;
                recurrent_matmul(w.hu, rhp, d.tape, U, 2 * d.u, d.u, NULL, &d, B);
                gru_before_state(tape, xw_t, w.hu, w.zeros, h0, &d, r, B, t);
            }
            break;
        }
    }
}

void nnrt_rnn_output(float *y, const float *tape, const NnrtRnn *r, int B, int which)
{
    const Dims d = dims_of(r);
    assert(which != NNRT_RNN_CELL || r->kind == NNRT_LSTM);
    const size_t n = which == NNRT_RNN_SEQUENCE ? (size_t)d.T * d.u : (size_t)d.u;
    const size_t at = which == NNRT_RNN_SEQUENCE ? 0
                    : which == NNRT_RNN_CELL     ? d.extra + (size_t)(d.T - 1) * d.u
                                                 : (size_t)(d.T - 1) * d.u;
    for (int b = 0; b < B; b++)
        memcpy(y + (size_t)b * n, tape + (size_t)b * d.tape + at, n * sizeof *y);
}

/* ---- backward ------------------------------------------------------------- */

/* dz_t = dh * act'(h_t) */
static void simple_step_back(BackwardWs *w, const float *tape, const Dims *d, const NnrtRnn *r, int B, int t,
                             int s)
{
    const int u = d->u;
    for (int b = 0; b < B; b++) {
        const float *h = tape + (size_t)b * d->tape + (size_t)t * u;
        float *dz = w->dz + ((size_t)b * d->T + s) * d->Gu;
        const float *dh = w->dh + (size_t)b * u;
        act_grad(r->activation, dz, h, u);
        for (int j = 0; j < u; j++)
            dz[j] *= dh[j];
    }
}

/* With a = act(c_t): dc_t = dc + dh o act'(c_t); dz_i = dc_t c~ rec'(i),
 * dz_f = dc_t c_{t-1} rec'(f), dz_c~ = dc_t i act'(c~), dz_o = dh a rec'(o);
 * the carry dc_{t-1} = dc_t f. */
static void lstm_step_back(BackwardWs *w, const float *tape, const Dims *d, const NnrtRnn *r, int B, int t,
                           int s)
{
    const int u = d->u;
    float *a = w->scratch, *da = w->scratch + u;
    for (int b = 0; b < B; b++) {
        const float *ts = tape + (size_t)b * d->tape;
        const float *g = ts + d->gates + (size_t)t * d->Gu, *c = ts + d->extra + (size_t)t * u;
        const float *cp = t > 0 ? c - u : w->c0 ? w->c0 + (size_t)b * u : w->zeros;
        float *dz = w->dz + ((size_t)b * d->T + s) * d->Gu;
        const float *dh = w->dh + (size_t)b * u;
        float *dc = w->carry2 + (size_t)b * u;
        act_grad(r->recurrent_activation, dz, g, 2 * u);
        act_grad(r->activation, dz + 2 * u, g + 2 * u, u);
        act_grad(r->recurrent_activation, dz + 3 * u, g + 3 * u, u);
        activate(r->activation, a, c, u);
        act_grad(r->activation, da, a, u);
        for (int j = 0; j < u; j++) {
            float dct = dc[j] + dh[j] * g[3 * u + j] * da[j];
            dz[j] *= dct * g[2 * u + j];
            dz[u + j] *= dct * cp[j];
            dz[2 * u + j] *= dct * g[j];
            dz[3 * u + j] *= dh[j] * a[j];
            dc[j] = dct * g[u + j];
        }
    }
}

/* reset_after: dz_h = dh (1 - z) act'(h~); dz_z = dh (h_{t-1} - h~) rec'(z);
 * dz_r = dz_h rh rec'(r). The recurrent side sees [dz_z dz_r r dz_h]. dh
 * keeps its direct part dh z; the GEMM adds dz_rec U^T. */
static void gru_after_step_back(BackwardWs *w, const float *tape, const Dims *d, const NnrtRnn *r, int B, int t,
                                int s)
{
    const int u = d->u;
    for (int b = 0; b < B; b++) {
        const float *ts = tape + (size_t)b * d->tape;
        const float *g = ts + d->gates + (size_t)t * d->Gu, *rh = ts + d->extra + (size_t)t * u;
        const float *hp = prev_h(w, ts, d, b, t);
        const size_t row = ((size_t)b * d->T + s) * d->Gu;
        float *dz = w->dz + row, *dzr = w->dz_rec + row, *dh = w->dh + (size_t)b * u;
        act_grad(r->recurrent_activation, dz, g, 2 * u);
        act_grad(r->activation, dz + 2 * u, g + 2 * u, u);
        for (int j = 0; j < u; j++) {
            float z = g[j], dht = dh[j];
            float dzh = dht * (1.0f - z) * dz[2 * u + j];
            dz[2 * u + j] = dzh;
            dz[j] *= dht * (hp[j] - g[2 * u + j]);
            dz[u + j] *= dzh * rh[j];
            dzr[j] = dz[j];
            dzr[u + j] = dz[u + j];
            dzr[2 * u + j] = dzh * g[u + j];
            dh[j] = dht * z;
        }
    }
}

/* reset before, first half: dz_h = dh (1 - z) act'(h~), dz_z = dh (h_{t-1} - h~) rec'(z);
 * dz_r's factor rec'(r) is written now and completed once d(r h_{t-1}) is known. */
static void gru_before_step_back(BackwardWs *w, const float *tape, const Dims *d, const NnrtRnn *r, int B, int t,
                                 int s)
{
    const int u = d->u;
    for (int b = 0; b < B; b++) {
        const float *ts = tape + (size_t)b * d->tape;
        const float *g = ts + d->gates + (size_t)t * d->Gu;
        const float *hp = prev_h(w, ts, d, b, t);
        float *dz = w->dz + ((size_t)b * d->T + s) * d->Gu;
        const float *dh = w->dh + (size_t)b * u;
        act_grad(r->recurrent_activation, dz, g, 2 * u);
        act_grad(r->activation, dz + 2 * u, g + 2 * u, u);
        for (int j = 0; j < u; j++) {
            dz[2 * u + j] *= dh[j] * (1.0f - g[j]);
            dz[j] *= dh[j] * (hp[j] - g[2 * u + j]);
        }
    }
}

/* reset before, second half, with drh = d(r h_{t-1}) = dz_h U_h^T:
 * dz_r = drh h_{t-1} rec'(r); dh keeps dh z + drh r, the GEMM adds [dz_z dz_r] U_zr^T.
 * With rmask (drh = d(r hm)): dz_r = drh hm rec'(r); dh keeps dh z and the carry
 * becomes drh r, onto which the GEMM adds [dz_z dz_r] U_zr^T: d hm, for add_masked. */
static void gru_before_carry(BackwardWs *w, const float *tape, const float *rmask, const Dims *d, int B, int t,
                             int s)
{
    const int u = d->u;
    for (int b = 0; b < B; b++) {
        const float *ts = tape + (size_t)b * d->tape;
        const float *g = ts + d->gates + (size_t)t * d->Gu;
        const float *hp = prev_h(w, ts, d, b, t);
        float *dz = w->dz + ((size_t)b * d->T + s) * d->Gu, *dh = w->dh + (size_t)b * u;
        float *drh = w->carry2 + (size_t)b * u;
        if (rmask) {
            const float *m = rmask + (size_t)b * u;
            for (int j = 0; j < u; j++) {
                dz[u + j] *= drh[j] * (hp[j] * m[j]);
                dh[j] *= g[j];
                drh[j] *= g[u + j];
            }
        } else {
            for (int j = 0; j < u; j++) {
                dz[u + j] *= drh[j] * hp[j];
                dh[j] = dh[j] * g[j] + drh[j] * g[u + j];
            }
        }
    }
}

/* The rows of dU's left operand for step t: hprev row (b, s) = h_{t-1}
 * (times rmask), and for GRU reset before rhprev row (b, s) = its extra. */
static void save_hprev(BackwardWs *w, const float *tape, const float *rmask, const Dims *d, int B, int t, int s)
{
    const int u = d->u;
    for (int b = 0; b < B; b++) {
        const float *ts = tape + (size_t)b * d->tape;
        const float *hp = prev_h(w, ts, d, b, t);
        const size_t row = ((size_t)b * d->T + s) * u;
        if (rmask) {
            const float *m = rmask + (size_t)b * u;
            for (int j = 0; j < u; j++)
                w->hprev[row + j] = hp[j] * m[j];
        } else {
            memcpy(w->hprev + row, hp, (size_t)u * sizeof *w->hprev);
        }
        if (w->rhprev)
            memcpy(w->rhprev + row, ts + d->extra + (size_t)t * u, (size_t)u * sizeof *w->rhprev);
    }
}

/* SimpleRNN and LSTM, no direct path: dh_{t-1} = dz_t U^T (* rmask); dz_t's rows at ld */
static void carry_through_u(float *dh, const float *dz_t, int ld, const float *U, const float *rmask, const Dims *d,
                            int B)
{
    nnrt_gemm(0, 1, B, d->u, d->Gu, 1.0f, dz_t, ld, U, d->Gu, 0.0f, dh, d->u);
    for (size_t i = 0; rmask && i < (size_t)B * d->u; i++)
        dh[i] *= rmask[i];
}

/* dh (B, u) += rmask * a, a's rows at lda: the carry through U, masked */
static void add_masked(float *dh, const float *rmask, const float *a, int lda, int B, int u)
{
    for (int b = 0; b < B; b++) {
        float *o = dh + (size_t)b * u;
        const float *m = rmask + (size_t)b * u, *ar = a + (size_t)b * lda;
        for (int j = 0; j < u; j++)
            o[j] += m[j] * ar[j];
    }
}

/* p[0..n) *= beta (beta 0 overwrites, as BLAS) */
static void scale(float *p, size_t n, float beta)
{
    if (p)
        for (size_t i = 0; i < n; i++)
            p[i] = beta == 0.0f ? 0.0f : beta * p[i];
}

/* db = beta db + column sums of dz (rows, n), rows strided by ld */
static void bias_grad(float *db, const float *dz, size_t rows, int n, int ld, float beta)
{
    scale(db, (size_t)n, beta);
    for (size_t i = 0; i < rows; i++) {
        const float *row = dz + i * ld;
        for (int j = 0; j < n; j++)
            db[j] += row[j];
    }
}

void nnrt_rnn_backward(float *dx, float *dW, float *dU, float *db, const float *dy, int which,
                       const float *x, const float *tape, const float *W, const float *U, const float *b,
                       const float *rmask, const NnrtRnnState *state, const NnrtRnn *r, int B, float beta, float *ws)
{
    assert(which != NNRT_RNN_CELL || r->kind == NNRT_LSTM);
    float *dh0 = state ? state->dh0 : NULL, *dc0 = state ? state->dc0 : NULL;
    const Dims d = dims_of(r);
    (void)b;                     /* the tape holds everything the bias contributed */
    const int gru_after = r->kind == NNRT_GRU && d.reset_after;
    if (B <= 0) {                /* empty batch: only the beta scaling */
        scale(dW, (size_t)d.in * d.Gu, beta);
        scale(dU, (size_t)d.u * d.Gu, beta);
        scale(db, (size_t)d.Gu * (gru_after ? 2 : 1), beta);
        return;
    }
    BackwardWs w;
    backward_ws(&w, ws, r, &d, (size_t)B);
    w.h0 = state ? state->h0 : NULL;
    w.c0 = state ? state->c0 : NULL;
    const int u = d.u, ld_dz = d.T * d.Gu;   /* rows of one step, across samples */
    const size_t rows = (size_t)B * d.T;
    memset(w.zeros, 0, (size_t)u * sizeof *w.zeros);
    memset(w.dh, 0, (size_t)B * u * sizeof *w.dh);
    if (w.carry2 && which == NNRT_RNN_CELL)   /* dy is d loss / d c_T: the first dc carry */
        memcpy(w.carry2, dy, (size_t)B * u * sizeof *w.carry2);
    else if (w.carry2)
        memset(w.carry2, 0, (size_t)B * u * sizeof *w.carry2);
    /* the carry past step 0 is d h0 (and d c0): needed when asked for */
    const int carry0 = dh0 != NULL;

    for (int t = d.T - 1; t >= 0; t--) {
        const int s = r->go_backwards ? d.T - 1 - t : t;
        for (int bi = 0; bi < B; bi++) {
            float *dh = w.dh + (size_t)bi * u;
            const float *dyt = which == NNRT_RNN_SEQUENCE              ? dy + ((size_t)bi * d.T + t) * u
                             : which == NNRT_RNN_LAST && t == d.T - 1 ? dy + (size_t)bi * u
                                                                      : NULL;
            if (dyt)
                for (int j = 0; j < u; j++)
                    dh[j] += dyt[j];
        }
        float *dz_t = w.dz + (size_t)s * d.Gu, *dzr_t = w.dz_rec + (size_t)s * d.Gu;
        switch (r->kind) {
        case NNRT_SIMPLE_RNN:
            simple_step_back(&w, tape, &d, r, B, t, s);
            if (t > 0 || carry0)
                carry_through_u(w.dh, dz_t, ld_dz, U, rmask, &d, B);
            break;
        case NNRT_LSTM:
            lstm_step_back(&w, tape, &d, r, B, t, s);
            if (t > 0 || carry0)
                carry_through_u(w.dh, dz_t, ld_dz, U, rmask, &d, B);
            break;
        case NNRT_GRU:
            if (d.reset_after) {
                gru_after_step_back(&w, tape, &d, r, B, t, s);
                if ((t > 0 || carry0) && rmask) {   /* dz_rec U^T parked in this step's hprev rows, then masked */
                    float *park = w.hprev + (size_t)s * u;
                    nnrt_gemm(0, 1, B, u, d.Gu, 1.0f, dzr_t, ld_dz, U, d.Gu, 0.0f, park, d.T * u);
                    add_masked(w.dh, rmask, park, d.T * u, B, u);
                } else if (t > 0 || carry0) {
                    nnrt_gemm(0, 1, B, u, d.Gu, 1.0f, dzr_t, ld_dz, U, d.Gu, 1.0f, w.dh, u);
                }
            } else {
                gru_before_step_back(&w, tape, &d, r, B, t, s);
                if (t > 0 || w.h0)   /* drh = dz_h U_h^T; at t = 0, h_{-1} = 0 makes it irrelevant */
                    nnrt_gemm(0, 1, B, u, u, 1.0f, dz_t + 2 * u, ld_dz, U + 2 * u, d.Gu, 0.0f, w.carry2, u);
                else
                    memset(w.carry2, 0, (size_t)B * u * sizeof *w.carry2);
                gru_before_carry(&w, tape, rmask, &d, B, t, s);
                if ((t > 0 || carry0) && rmask) {   /* carry2 = d hm */
                    nnrt_gemm(0, 1, B, u, 2 * u, 1.0f, dz_t, ld_dz, U, d.Gu, 1.0f, w.carry2, u);
                    add_masked(w.dh, rmask, w.carry2, u, B, u);
                } else if (t > 0 || carry0) {
                    nnrt_gemm(0, 1, B, u, 2 * u, 1.0f, dz_t, ld_dz, U, d.Gu, 1.0f, w.dh, u);
                }
            }
            break;
        }
        if (dU)                  /* after the carry: GRU reset_after may have parked it in these rows */
            save_hprev(&w, tape, rmask, &d, B, t, s);
    }

    if (dh0)
        memcpy(dh0, w.dh, (size_t)B * u * sizeof *dh0);
    if (dc0) {
        if (r->kind == NNRT_LSTM)
            memcpy(dc0, w.carry2, (size_t)B * u * sizeof *dc0);
        else
            memset(dc0, 0, (size_t)B * u * sizeof *dc0);
    }

    /* Weight gradients and dx over all B*T rows at once. */
    if (dx)
        nnrt_gemm(0, 1, (int)rows, d.in, d.Gu, 1.0f, w.dz, d.Gu, W, d.Gu, 0.0f, dx, d.in);
    if (dW)
        nnrt_gemm(1, 0, d.in, d.Gu, (int)rows, 1.0f, x, d.in, w.dz, d.Gu, beta, dW, d.Gu);
    if (dU) {
        if (r->kind == NNRT_GRU && !d.reset_after) {
            nnrt_gemm(1, 0, u, 2 * u, (int)rows, 1.0f, w.hprev, u, w.dz, d.Gu, beta, dU, d.Gu);
            nnrt_gemm(1, 0, u, u, (int)rows, 1.0f, w.rhprev, u, w.dz + 2 * u, d.Gu, beta, dU + 2 * u, d.Gu);
        } else {
            nnrt_gemm(1, 0, u, d.Gu, (int)rows, 1.0f, w.hprev, u, w.dz_rec, d.Gu, beta, dU, d.Gu);
        }
    }
    if (db) {
        bias_grad(db, w.dz, rows, d.Gu, d.Gu, beta);
        if (gru_after)
            bias_grad(db + d.Gu, w.dz_rec, rows, d.Gu, d.Gu, beta);
    }
}
