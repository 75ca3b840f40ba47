/* test_runtime_rnn.c — rnn.c of libnncc_rt against independent references.
 *
 * The reference is a naive recurrence in double, one sample and one step
 * at a time, written from the Keras cell formulas (tf.keras 2.x
 * SimpleRNNCell, LSTMCell, GRUCell with reset_after true and false,
 * go_backwards reversing the input and returning the sequence in
 * processing order). Forward outputs (return_sequences true and false) are
 * compared with it; the tape's first block must be the hidden state of
 * every step. Backward (dx, dW, dU, db) is compared with central
 * differences, in double, of the reference loss L = sum(y * R) with random
 * R, for both return_sequences; then beta accumulation (beta 0.5 from
 * random gradients) and NULL outputs (dx alone, weights alone). Every case
 * runs twice: without recurrent dropout (rmask NULL) and with a random
 * rmask (B, units) of 0 and 1/(1-0.4), the reference then feeding
 * h_{t-1} * rmask to the recurrent products only (GRU's z h_{t-1} and LSTM's
 * c_{t-1} unmasked). An all-ones rmask must give the tape and gradients of
 * no rmask. With an initial state (random h0, and c0 for LSTM), each
 * output — every h, the last h, LSTM's last c — is compared with the
 * reference started from it, and dx, dW, dU, db, d h0, d c0 with central
 * differences. Tapes,
 * workspaces and outputs carry guard floats that must stay untouched, and
 * the workspace is filled with NaN before every call, so a read of scratch
 * the call did not write first shows up. Every check prints its max
 * difference and tolerance; the last line counts passes and failed, and
 * the exit status is 1 if any failed.
 *
 * `test_runtime_rnn --bench` instead times an LSTM forward and backward
 * with B = 32, T = 50, input 1, units 20.
 */
#define _POSIX_C_SOURCE 200809L  /* clock_gettime */
#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "nnrt.h"

/* ---- the reference, in double ------------------------------------------ */

typedef struct {
    const char *name;
    NnrtRnnKind kind;
    int B, T, in, u;
    NnrtRnnAct act, rec;
    int go_backwards, reset_after, use_bias;
    double scale;                /* weights drawn from U(-scale, scale) */
} Case;

static int gate_count(NnrtRnnKind k)
{
    return k == NNRT_SIMPLE_RNN ? 1 : k == NNRT_LSTM ? 4 : 3;
}

static size_t bias_count(const Case *c)
{
    int gu = gate_count(c->kind) * c->u;
    return c->kind == NNRT_GRU && c->reset_after ? 2 * (size_t)gu : (size_t)gu;
}

static double act_ref(NnrtRnnAct a, double v)
{
    switch (a) {
    case NNRT_RNN_TANH:         return tanh(v);
    case NNRT_RNN_SIGMOID:      return 1.0 / (1.0 + exp(-v));
    case NNRT_RNN_HARD_SIGMOID: return fmin(fmax(0.2 * v + 0.5, 0.0), 1.0);
    case NNRT_RNN_RELU:         return v > 0.0 ? v : 0.0;
    case NNRT_RNN_LINEAR:       return v;
    }
    return NAN;
}

enum { MAXU = 16 };

typedef struct {
    const Case *c;
    double *x, *W, *U, *b;       /* b NULL: use_bias false */
    double *rmask;               /* (B, u) recurrent dropout, NULL: none */
    double *R, *y;               /* loss weights and output scratch, shaped as the output */
    int return_sequences;        /* an NnrtRnnWhich: last h, every h, or LSTM's last c */
    double *h0, *c0;             /* (B, u) initial state, NULL: zeros */
} Ref;

/* sum_i v[i] M[i][col] over n rows of a matrix with `width` columns */
static double column_dot(const double *v, const double *M, int n, int width, int col)
{
    double s = 0.0;
    for (int i = 0; i < n; i++)
        s += v[i] * M[i * width + col];
    return s;
}

/* y: (B, T, u) in processing order, or (B, u) the last state */
static void ref_forward(const Ref *m)
{
    const Case *c = m->c;
    const int T = c->T, u = c->u, gu = gate_count(c->kind) * u;
    const int gru_after = c->kind == NNRT_GRU && c->reset_after;
    assert(u <= MAXU);
    for (int b = 0; b < c->B; b++) {
        double h[MAXU] = {0}, cell[MAXU] = {0}, hn[MAXU], hm[MAXU];
        for (int j = 0; j < u; j++) {
            h[j] = m->h0 ? m->h0[(size_t)b * u + j] : 0.0;
            cell[j] = m->c0 ? m->c0[(size_t)b * u + j] : 0.0;
        }
        for (int t = 0; t < T; t++) {
            const int s = c->go_backwards ? T - 1 - t : t;
            const double *xs = m->x + ((size_t)b * T + s) * c->in;
            /* hm = h * rmask, what the recurrent products see */
            for (int j = 0; j < u; j++)
                hm[j] = m->rmask ? h[j] * m->rmask[(size_t)b * u + j] : h[j];
            /* xp = x_s W + b (input bias), hp = hm U (+ recurrent bias) */
            double xp[4 * MAXU], hp[4 * MAXU];
            for (int k = 0; k < gu; k++) {
                xp[k] = column_dot(xs, m->W, c->in, gu, k) + (m->b ? m->b[k] : 0.0);
                hp[k] = column_dot(hm, m->U, u, gu, k) + (gru_after && m->b ? m->b[gu + k] : 0.0);
            }
            switch (c->kind) {
            case NNRT_SIMPLE_RNN:
                for (int j = 0; j < u; j++)
                    hn[j] = act_ref(c->act, xp[j] + hp[j]);
                break;
            case NNRT_LSTM:
                for (int j = 0; j < u; j++) {
                    double i = act_ref(c->rec, xp[j] + hp[j]);
                    double f = act_ref(c->rec, xp[u + j] + hp[u + j]);
                    double g = act_ref(c->act, xp[2 * u + j] + hp[2 * u + j]);
                    double o = act_ref(c->rec, xp[3 * u + j] + hp[3 * u + j]);
                    cell[j] = f * cell[j] + i * g;
                    hn[j] = o * act_ref(c->act, cell[j]);
                }
                break;
            case NNRT_GRU: {
                double z[MAXU], r[MAXU], rh[MAXU];
                for (int j = 0; j < u; j++) {
                    z[j] = act_ref(c->rec, xp[j] + hp[j]);
                    r[j] = act_ref(c->rec, xp[u + j] + hp[u + j]);
                    rh[j] = r[j] * hm[j];
                }
                for (int j = 0; j < u; j++) {
                    /* reset after: r (hm U_h + b_rh); before: (r hm) U_h; the mix uses h unmasked */
                    double rec = gru_after ? r[j] * hp[2 * u + j] : column_dot(rh, m->U, u, gu, 2 * u + j);
                    double hh = act_ref(c->act, xp[2 * u + j] + rec);
                    hn[j] = z[j] * h[j] + (1.0 - z[j]) * hh;
                }
                break;
            }
            }
            memcpy(h, hn, sizeof h);
            if (m->return_sequences == NNRT_RNN_SEQUENCE)
                memcpy(m->y + ((size_t)b * T + t) * u, h, (size_t)u * sizeof *h);
        }
        if (m->return_sequences != NNRT_RNN_SEQUENCE)
            memcpy(m->y + (size_t)b * u, m->return_sequences == NNRT_RNN_CELL ? cell : h, (size_t)u * sizeof *h);
    }
}

static size_t out_count(const Case *c, int return_sequences)
{
    return (size_t)c->B * (return_sequences == NNRT_RNN_SEQUENCE ? (size_t)c->T * c->u : (size_t)c->u);
}

static double ref_loss(const Ref *m)
{
    ref_forward(m);
    double s = 0.0;
    size_t n = out_count(m->c, m->return_sequences);
    for (size_t i = 0; i < n; i++)
        s += m->y[i] * m->R[i];
    return s;
}

/* g[i] = (L(p + h e_i) - L(p - h e_i)) / 2h for i < n. */
static void central_diff(double *g, double *p, size_t n, const Ref *m)
{
    const double h = 1e-5;
    for (size_t i = 0; i < n; i++) {
        double v = p[i];
        p[i] = v + h;
        double lp = ref_loss(m);
        p[i] = v - h;
        double lm = ref_loss(m);
        p[i] = v;
        g[i] = (lp - lm) / (2.0 * h);
    }
}

/* ---- the cases ----------------------------------------------------------- */

#define T_ NNRT_RNN_TANH
#define S_ NNRT_RNN_SIGMOID
#define HS NNRT_RNN_HARD_SIGMOID
#define RE NNRT_RNN_RELU
#define LI NNRT_RNN_LINEAR

static const Case cases[] = {
    /* name                                 kind           B  T in  u  act rec back after bias scale */
    {"SimpleRNN tanh",                     NNRT_SIMPLE_RNN, 3, 5, 4, 3, T_, S_, 0, 0, 1, 0.6},
    {"SimpleRNN relu",                     NNRT_SIMPLE_RNN, 3, 5, 4, 3, RE, S_, 0, 0, 1, 0.6},
    {"SimpleRNN tanh go_backwards",        NNRT_SIMPLE_RNN, 3, 5, 4, 3, T_, S_, 1, 0, 1, 0.6},
    {"SimpleRNN tanh no bias",             NNRT_SIMPLE_RNN, 3, 5, 4, 3, T_, S_, 0, 0, 0, 0.6},
    {"SimpleRNN linear go_backwards",      NNRT_SIMPLE_RNN, 2, 4, 3, 5, LI, S_, 1, 0, 1, 0.4},
    {"SimpleRNN sigmoid T=1",              NNRT_SIMPLE_RNN, 3, 1, 4, 3, S_, S_, 0, 0, 1, 0.6},
    {"LSTM",                               NNRT_LSTM,       3, 5, 4, 3, T_, S_, 0, 0, 1, 0.6},
    {"LSTM go_backwards",                  NNRT_LSTM,       3, 5, 4, 3, T_, S_, 1, 0, 1, 0.6},
    {"LSTM no bias",                       NNRT_LSTM,       3, 5, 4, 3, T_, S_, 0, 0, 0, 0.6},
    {"LSTM hard_sigmoid",                  NNRT_LSTM,       3, 5, 4, 3, T_, HS, 0, 0, 1, 3.0},
    {"LSTM relu, hard_sigmoid, go_backwards", NNRT_LSTM,    3, 5, 4, 3, RE, HS, 1, 0, 1, 2.5},
    {"LSTM linear, tanh",                  NNRT_LSTM,       2, 4, 3, 4, LI, T_, 0, 0, 1, 0.5},
    {"LSTM T=1",                           NNRT_LSTM,       3, 1, 4, 3, T_, S_, 0, 0, 1, 0.6},
    {"LSTM larger",                        NNRT_LSTM,       4, 7, 5, 8, T_, S_, 1, 0, 1, 0.4},
    {"GRU reset_after",                    NNRT_GRU,        3, 5, 4, 3, T_, S_, 0, 1, 1, 0.6},
    {"GRU reset_after go_backwards",       NNRT_GRU,        3, 5, 4, 3, T_, S_, 1, 1, 1, 0.6},
    {"GRU reset_after no bias",            NNRT_GRU,        3, 5, 4, 3, T_, S_, 0, 1, 0, 0.6},
    {"GRU reset_after hard_sigmoid",       NNRT_GRU,        3, 5, 4, 3, T_, HS, 0, 1, 1, 3.0},
    {"GRU reset_after relu, linear",       NNRT_GRU,        3, 5, 4, 3, RE, LI, 0, 1, 1, 0.4},
    {"GRU reset_after T=1",                NNRT_GRU,        3, 1, 4, 3, T_, S_, 0, 1, 1, 0.6},
    {"GRU reset_before",                   NNRT_GRU,        3, 5, 4, 3, T_, S_, 0, 0, 1, 0.6},
    {"GRU reset_before go_backwards",      NNRT_GRU,        3, 5, 4, 3, T_, S_, 1, 0, 1, 0.6},
    {"GRU reset_before no bias",           NNRT_GRU,        3, 5, 4, 3, T_, S_, 0, 0, 0, 0.6},
    {"GRU reset_before hard_sigmoid",      NNRT_GRU,        3, 5, 4, 3, T_, HS, 0, 0, 1, 3.0},
    {"GRU reset_before sigmoid, tanh",     NNRT_GRU,        3, 5, 4, 3, S_, T_, 1, 0, 1, 0.6},
    {"GRU reset_before T=1",               NNRT_GRU,        3, 1, 4, 3, T_, S_, 0, 0, 1, 0.6},
    {"GRU larger",                         NNRT_GRU,        4, 7, 5, 8, T_, S_, 1, 1, 1, 0.4},
};

static NnrtRnn descriptor(const Case *c)
{
    NnrtRnn r = {.kind = c->kind, .steps = c->T, .input = c->in, .units = c->u, .activation = c->act,
                 .recurrent_activation = c->rec, .go_backwards = c->go_backwards, .reset_after = c->reset_after};
    return r;
}

/* Observed: forward <= 2e-7, backward <= 4e-7 (float against double). */
static const double TOL_FORWARD = 1e-6, TOL_BACKWARD = 1e-5;

/* Whether the case reaches the flat parts of its activations, so that their
 * zero derivatives are exercised: some recurrent gate at 0 or 1 for
 * hard_sigmoid (the gates follow h in the tape), some h_t at 0 for a relu
 * SimpleRNN. */
static int reaches_flat_parts(const Case *c, const float *tape, size_t tape_floats)
{
    const int u = c->u, gu = gate_count(c->kind) * u;
    int found = 0;
    for (int b = 0; b < c->B; b++) {
        const float *ts = tape + (size_t)b * tape_floats;
        for (int t = 0; t < c->T; t++) {
            if (c->kind == NNRT_SIMPLE_RNN) {
                for (int j = 0; j < u; j++)
                    found |= ts[(size_t)t * u + j] == 0.0f;
                continue;
            }
            const float *g = ts + (size_t)c->T * u + (size_t)t * gu;
            for (int j = 0; j < 2 * u; j++)         /* i f (LSTM), z r (GRU) */
                found |= g[j] == 0.0f || g[j] == 1.0f;
        }
    }
    return found;
}

/* A recurrent dropout mask (B, u) of rate 0.4: 0 or 1/0.6, with both present. */
static float *random_rmask(const Case *c, NnrtRng *rng)
{
    const size_t n = (size_t)c->B * c->u;
    float *m = guarded(n);
    for (size_t i = 0; i < n; i++)
        m[i] = nnrt_rng_uniform(rng) < 0.4 ? 0.0f : 1.0f / 0.6f;
    m[0] = 0.0f, m[n - 1] = 1.0f / 0.6f;
    return m;
}

static void test_case(const Case *base, int masked, NnrtRng *rng)
{
    Case named = *base;
    char label[96];
    snprintf(label, sizeof label, "%s%s", base->name, masked ? " rmask" : "");
    named.name = label;
    const Case *c = &named;
    const NnrtRnn r = descriptor(c);
    const int B = c->B, gu = gate_count(c->kind) * c->u;
    const size_t nx = (size_t)B * c->T * c->in, nW = (size_t)c->in * gu, nU = (size_t)c->u * gu;
    const size_t nb = bias_count(c), ntape = (size_t)B * nnrt_rnn_tape_floats(&r);
    const size_t nws = nnrt_rnn_workspace_floats(&r, (size_t)B), nm = (size_t)B * c->u;
    char name[192];

    float *x = guarded(nx), *W = guarded(nW), *U = guarded(nU), *b = c->use_bias ? guarded(nb) : NULL;
    fill_uniform(x, nx, -1, 1, rng);
    fill_uniform(W, nW, -c->scale, c->scale, rng);
    fill_uniform(U, nU, -c->scale, c->scale, rng);
    if (b)
        fill_uniform(b, nb, -0.5, 0.5, rng);
    float *tape = guarded(ntape), *ws = guarded(nws);
    float *dx = guarded(nx), *dW = guarded(nW), *dU = guarded(nU), *db = guarded(nb);
    float *dW0 = xmalloc(nW * sizeof *dW0), *dU0 = xmalloc(nU * sizeof *dU0), *db0 = xmalloc(nb * sizeof *db0);

    float *rmask = masked ? random_rmask(c, rng) : NULL;
    Ref m = {c, to_double(x, nx), to_double(W, nW), to_double(U, nU), to_double(b, nb), to_double(rmask, nm),
             NULL, NULL, 0, NULL, NULL};
    double *gx = xmalloc(nx * sizeof *gx), *gW = xmalloc(nW * sizeof *gW), *gU = xmalloc(nU * sizeof *gU);
    double *gb = xmalloc(nb * sizeof *gb), *expect_acc = xmalloc((nW + nU + nb) * sizeof *expect_acc);

    fill_float(tape, ntape, NAN);
    fill_float(ws, nws, NAN);
    nnrt_rnn_forward(tape, x, W, U, b, rmask, NULL, &r, B, ws);
    if (c->rec == NNRT_RNN_HARD_SIGMOID || (c->kind == NNRT_SIMPLE_RNN && c->act == NNRT_RNN_RELU)) {
        snprintf(name, sizeof name, "%s reaches the flat parts of its activation", c->name);
        expect(name, reaches_flat_parts(c, tape, nnrt_rnn_tape_floats(&r)));
    }

    for (int rs = 1; rs >= 0; rs--) {
        const char *tag = rs ? "seq" : "last";
        size_t ny = out_count(c, rs);
        float *R = guarded(ny), *y = guarded(ny);
        fill_uniform(R, ny, -1, 1, rng);
        m.R = to_double(R, ny);
        m.y = xmalloc(ny * sizeof *m.y);
        m.return_sequences = rs;
        ref_forward(&m);
        double *yref = xmalloc(ny * sizeof *yref);
        memcpy(yref, m.y, ny * sizeof *yref);

        fill_float(y, ny, NAN);
        nnrt_rnn_output(y, tape, &r, B, rs);
        snprintf(name, sizeof name, "%s %s forward", c->name, tag);
        report(name, max_rel_diff(y, yref, ny), TOL_FORWARD);
        if (rs) {                /* the tape starts with h of every step */
            double worst = 0.0;
            for (int s = 0; s < B; s++) {
                double e = max_rel_diff(tape + (size_t)s * nnrt_rnn_tape_floats(&r), yref + (size_t)s * c->T * c->u,
                                        (size_t)c->T * c->u);
                worst = e > worst || isnan(e) ? e : worst;
            }
            snprintf(name, sizeof name, "%s tape block 0 is h (T, units)", c->name);
            report(name, worst, TOL_FORWARD);
        }

        central_diff(gx, m.x, nx, &m);
        central_diff(gW, m.W, nW, &m);
        central_diff(gU, m.U, nU, &m);
        if (m.b)
            central_diff(gb, m.b, nb, &m);

        /* beta 0 overwrites garbage; the bias gradient is asked for even without a bias */
        fill_float(dx, nx, NAN), fill_float(dW, nW, NAN), fill_float(dU, nU, NAN), fill_float(db, nb, NAN);
        fill_float(ws, nws, NAN);
        nnrt_rnn_backward(dx, dW, dU, m.b ? db : NULL, R, rs, x, tape, W, U, b, rmask, NULL, &r, B, 0.0f, ws);
        snprintf(name, sizeof name, "%s %s backward dx", c->name, tag);
        report(name, max_rel_diff(dx, gx, nx), TOL_BACKWARD);
        snprintf(name, sizeof name, "%s %s backward dW", c->name, tag);
        report(name, max_rel_diff(dW, gW, nW), TOL_BACKWARD);
        snprintf(name, sizeof name, "%s %s backward dU", c->name, tag);
        report(name, max_rel_diff(dU, gU, nU), TOL_BACKWARD);
        if (m.b) {
            snprintf(name, sizeof name, "%s %s backward db", c->name, tag);
            report(name, max_rel_diff(db, gb, nb), TOL_BACKWARD);
        }

        /* beta 0.5 onto random gradients, dx not asked for */
        fill_uniform(dW0, nW, -1, 1, rng), fill_uniform(dU0, nU, -1, 1, rng), fill_uniform(db0, nb, -1, 1, rng);
        memcpy(dW, dW0, nW * sizeof *dW), memcpy(dU, dU0, nU * sizeof *dU), memcpy(db, db0, nb * sizeof *db);
        for (size_t i = 0; i < nW; i++)
            expect_acc[i] = 0.5 * dW0[i] + gW[i];
        for (size_t i = 0; i < nU; i++)
            expect_acc[nW + i] = 0.5 * dU0[i] + gU[i];
        for (size_t i = 0; i < nb && m.b; i++)
            expect_acc[nW + nU + i] = 0.5 * db0[i] + gb[i];
        fill_float(ws, nws, NAN);
        nnrt_rnn_backward(NULL, dW, dU, m.b ? db : NULL, R, rs, x, tape, W, U, b, rmask, NULL, &r, B, 0.5f, ws);
        double acc = max_rel_diff(dW, expect_acc, nW), e = max_rel_diff(dU, expect_acc + nW, nU);
        acc = e > acc || isnan(e) ? e : acc;
        if (m.b) {
            e = max_rel_diff(db, expect_acc + nW + nU, nb);
            acc = e > acc || isnan(e) ? e : acc;
        }
        snprintf(name, sizeof name, "%s %s backward dW dU db, beta 0.5, dx NULL", c->name, tag);
        report(name, acc, TOL_BACKWARD);

        /* dx alone: frozen weights */
        fill_float(dx, nx, NAN);
        fill_float(ws, nws, NAN);
        nnrt_rnn_backward(dx, NULL, NULL, NULL, R, rs, x, tape, W, U, b, rmask, NULL, &r, B, 0.0f, ws);
        snprintf(name, sizeof name, "%s %s backward dx alone", c->name, tag);
        report(name, max_rel_diff(dx, gx, nx), TOL_BACKWARD);

        snprintf(name, sizeof name, "%s %s guards intact", c->name, tag);
        expect(name, guard_intact(tape, ntape) && guard_intact(ws, nws) && guard_intact(y, ny) &&
                         guard_intact(dx, nx) && guard_intact(dW, nW) && guard_intact(dU, nU) &&
                         guard_intact(db, nb) && guard_intact(rmask, nm));
        free(R), free(y), free(m.R), free(m.y), free(yref);
    }

    free(x), free(W), free(U), free(b), free(tape), free(ws), free(dx), free(dW), free(dU), free(db);
    free(dW0), free(dU0), free(db0), free(m.x), free(m.W), free(m.U), free(m.b), free(rmask), free(m.rmask);
    free(gx), free(gW), free(gU), free(gb), free(expect_acc);
}

/* Keras initial_state and return_state: with a random h0 (and c0), for
 * each output (every h, the last h, LSTM's last c) the forward against the
 * reference, and the backward's dx, dW, dU, db, d h0, d c0 against central
 * differences of L = sum(y * R). Without dh0 asked, the weight gradients
 * must not change. */
static void test_state(const Case *base, int masked, NnrtRng *rng)
{
    Case named = *base;
    char label[160], name[224];
    snprintf(label, sizeof label, "%s initial state%s", base->name, masked ? " rmask" : "");
    named.name = label;
    const Case *c = &named;
    const NnrtRnn r = descriptor(c);
    const int B = c->B, gu = gate_count(c->kind) * c->u, lstm = c->kind == NNRT_LSTM;
    const size_t nx = (size_t)B * c->T * c->in, nW = (size_t)c->in * gu, nU = (size_t)c->u * gu;
    const size_t nb = bias_count(c), ntape = (size_t)B * nnrt_rnn_tape_floats(&r);
    const size_t nws = nnrt_rnn_workspace_floats(&r, (size_t)B), ns = (size_t)B * c->u;

    float *x = guarded(nx), *W = guarded(nW), *U = guarded(nU), *b = c->use_bias ? guarded(nb) : NULL;
    float *h0 = guarded(ns), *c0 = lstm ? guarded(ns) : NULL;
    fill_uniform(x, nx, -1, 1, rng);
    fill_uniform(W, nW, -c->scale, c->scale, rng);
    fill_uniform(U, nU, -c->scale, c->scale, rng);
    fill_uniform(h0, ns, -0.8, 0.8, rng);
    if (c0)
        fill_uniform(c0, ns, -1.5, 1.5, rng);
    if (b)
        fill_uniform(b, nb, -0.5, 0.5, rng);
    float *rmask = masked ? random_rmask(c, rng) : NULL;
    float *tape = guarded(ntape), *ws = guarded(nws);
    float *dx = guarded(nx), *dW = guarded(nW), *dU = guarded(nU), *db = guarded(nb);
    float *dh0 = guarded(ns), *dc0 = guarded(ns), *dW2 = guarded(nW);
    Ref m = {c, to_double(x, nx), to_double(W, nW), to_double(U, nU), to_double(b, nb), to_double(rmask, ns),
             NULL, NULL, 0, to_double(h0, ns), to_double(c0, ns)};
    double *gx = xmalloc(nx * sizeof *gx), *gW = xmalloc(nW * sizeof *gW), *gU = xmalloc(nU * sizeof *gU);
    double *gb = xmalloc(nb * sizeof *gb), *gh = xmalloc(ns * sizeof *gh), *gc = xmalloc(ns * sizeof *gc);

    NnrtRnnState st = {h0, c0, NULL, NULL};
    fill_float(tape, ntape, NAN), fill_float(ws, nws, NAN);
    nnrt_rnn_forward(tape, x, W, U, b, rmask, &st, &r, B, ws);
    static const char *const tags[] = {"last h", "every h", "last c"};
    for (int which = 0; which <= (lstm ? 2 : 1); which++) {
        size_t ny = out_count(c, which);
        float *R = guarded(ny), *y = guarded(ny);
        fill_uniform(R, ny, -1, 1, rng);
        m.R = to_double(R, ny);
        m.y = xmalloc(ny * sizeof *m.y);
        m.return_sequences = which;
        ref_forward(&m);
        fill_float(y, ny, NAN);
        nnrt_rnn_output(y, tape, &r, B, which);
        snprintf(name, sizeof name, "%s %s forward", c->name, tags[which]);
        report(name, max_rel_diff(y, m.y, ny), TOL_FORWARD);

        central_diff(gx, m.x, nx, &m), central_diff(gW, m.W, nW, &m), central_diff(gU, m.U, nU, &m);
        central_diff(gh, m.h0, ns, &m);
        if (m.c0)
            central_diff(gc, m.c0, ns, &m);
        if (m.b)
            central_diff(gb, m.b, nb, &m);
        NnrtRnnState bs = {h0, c0, dh0, dc0};
        fill_float(dx, nx, NAN), fill_float(dW, nW, NAN), fill_float(dU, nU, NAN), fill_float(db, nb, NAN);
        fill_float(dh0, ns, NAN), fill_float(dc0, ns, NAN), fill_float(ws, nws, NAN);
        nnrt_rnn_backward(dx, dW, dU, m.b ? db : NULL, R, which, x, tape, W, U, b, rmask, &bs, &r, B, 0.0f, ws);
        double worst = max_rel_diff(dx, gx, nx), e;
        const double parts[] = {max_rel_diff(dW, gW, nW), max_rel_diff(dU, gU, nU), m.b ? max_rel_diff(db, gb, nb) : 0};
        for (int k = 0; k < 3; k++)
            worst = parts[k] > worst || isnan(parts[k]) ? parts[k] : worst;
        snprintf(name, sizeof name, "%s %s backward dx dW dU db", c->name, tags[which]);
        report(name, worst, TOL_BACKWARD);
        snprintf(name, sizeof name, "%s %s backward d h0", c->name, tags[which]);
        report(name, max_rel_diff(dh0, gh, ns), TOL_BACKWARD);
        if (lstm) {
            snprintf(name, sizeof name, "%s %s backward d c0", c->name, tags[which]);
            report(name, max_rel_diff(dc0, gc, ns), TOL_BACKWARD);
        }
        /* the state's gradients are optional: the weights' do not depend on asking */
        NnrtRnnState ws_only = {h0, c0, NULL, NULL};
        fill_float(dW2, nW, NAN), fill_float(ws, nws, NAN);
        nnrt_rnn_backward(NULL, dW2, NULL, NULL, R, which, x, tape, W, U, b, rmask, &ws_only, &r, B, 0.0f, ws);
        e = max_rel_diff(dW2, gW, nW);
        snprintf(name, sizeof name, "%s %s backward dW without d h0", c->name, tags[which]);
        report(name, e, TOL_BACKWARD);
        snprintf(name, sizeof name, "%s %s guards intact", c->name, tags[which]);
        expect(name, guard_intact(tape, ntape) && guard_intact(ws, nws) && guard_intact(y, ny) &&
                         guard_intact(dh0, ns) && guard_intact(dc0, ns) && guard_intact(h0, ns) &&
                         guard_intact(dx, nx));
        free(R), free(y), free(m.R), free(m.y);
    }
    free(x), free(W), free(U), free(b), free(h0), free(c0), free(rmask), free(tape), free(ws);
    free(dx), free(dW), free(dU), free(db), free(dh0), free(dc0), free(dW2);
    free(m.x), free(m.W), free(m.U), free(m.b), free(m.rmask), free(m.h0), free(m.c0);
    free(gx), free(gW), free(gU), free(gb), free(gh), free(gc);
}

/* max |a - b| over n floats, relative to 1 + max |b| */
static double max_rel_diff_float(const float *a, const float *b, size_t n)
{
    double *bd = to_double(b, n), e = max_rel_diff(a, bd, n);
    free(bd);
    return e;
}

/* rmask of ones is no rmask: the same tape, bit for bit, and the same
 * gradients up to summation order (GRU adds the carry after the GEMM). */
static void test_ones_mask(const Case *c, NnrtRng *rng)
{
    const NnrtRnn r = descriptor(c);
    const int B = c->B, gu = gate_count(c->kind) * c->u;
    const size_t nx = (size_t)B * c->T * c->in, nW = (size_t)c->in * gu, nU = (size_t)c->u * gu;
    const size_t nb = bias_count(c), tf = nnrt_rnn_tape_floats(&r), ntape = (size_t)B * tf;
    const size_t nws = nnrt_rnn_workspace_floats(&r, (size_t)B), nm = (size_t)B * c->u, ny = (size_t)B * c->T * c->u;
    const size_t ng = nx + nW + nU + nb;
    float *x = xmalloc(nx * sizeof *x), *W = xmalloc(nW * sizeof *W), *U = xmalloc(nU * sizeof *U);
    float *b = c->use_bias ? xmalloc(nb * sizeof *b) : NULL, *ones = xmalloc(nm * sizeof *ones);
    float *dy = xmalloc(ny * sizeof *dy), *ws = xmalloc(nws * sizeof *ws);
    float *tape[2], *g[2];
    fill_uniform(x, nx, -1, 1, rng), fill_uniform(W, nW, -c->scale, c->scale, rng);
    fill_uniform(U, nU, -c->scale, c->scale, rng), fill_uniform(dy, ny, -1, 1, rng);
    if (b)
        fill_uniform(b, nb, -0.5, 0.5, rng);
    fill_float(ones, nm, 1.0f);
    for (int k = 0; k < 2; k++) {
        const float *mask = k ? ones : NULL;
        tape[k] = xmalloc(ntape * sizeof *tape[k]), g[k] = xmalloc(ng * sizeof *g[k]);
        fill_float(g[k], ng, 0.0f);
        fill_float(ws, nws, NAN);
        nnrt_rnn_forward(tape[k], x, W, U, b, mask, NULL, &r, B, ws);
        fill_float(ws, nws, NAN);
        nnrt_rnn_backward(g[k], g[k] + nx, g[k] + nx + nW, b ? g[k] + nx + nW + nU : NULL, dy, 1, x, tape[k], W, U,
                          b, mask, NULL, &r, B, 0.0f, ws);
    }
    char name[192];
    snprintf(name, sizeof name, "%s rmask of ones: the tape of no rmask", c->name);
    expect(name, memcmp(tape[0], tape[1], ntape * sizeof *tape[0]) == 0);
    snprintf(name, sizeof name, "%s rmask of ones: the gradients of no rmask", c->name);
    report(name, max_rel_diff_float(g[1], g[0], ng), 1e-6);
    free(x), free(W), free(U), free(b), free(ones), free(dy), free(ws);
    free(tape[0]), free(tape[1]), free(g[0]), free(g[1]);
}

/* The emitter sizes buffers from these alone: the layout in rnn.c's header. */
static void test_sizes(void)
{
    NnrtRnn r = {.kind = NNRT_SIMPLE_RNN, .steps = 7, .input = 2, .units = 5};
    expect("tape floats: SimpleRNN T*u", nnrt_rnn_tape_floats(&r) == 35);
    r.kind = NNRT_LSTM;
    expect("tape floats: LSTM h, 4 gates, c = 6*T*u", nnrt_rnn_tape_floats(&r) == 210);
    r.kind = NNRT_GRU, r.reset_after = 1;
    expect("tape floats: GRU h, 3 gates, rh = 5*T*u", nnrt_rnn_tape_floats(&r) == 175);
    r.reset_after = 0;
    expect("tape floats: GRU reset_before h, 3 gates, r*h = 5*T*u", nnrt_rnn_tape_floats(&r) == 175);
    r.kind = NNRT_LSTM;
    size_t w3 = nnrt_rnn_workspace_floats(&r, 3), w6 = nnrt_rnn_workspace_floats(&r, 6);
    expect("workspace grows with the batch", w6 > w3 && w3 > 0);
}

/* An empty batch leaves dW, dU, db scaled by beta. */
static void test_empty_batch(void)
{
    NnrtRnn r = {.kind = NNRT_GRU, .steps = 2, .input = 1, .units = 1, .reset_after = 1};
    float dW[3] = {1, 2, 3}, dU[3] = {4, 5, 6}, db[6] = {1, 1, 1, 1, 1, 1}, ws[64];
    nnrt_rnn_backward(NULL, dW, dU, db, NULL, 1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, &r, 0, 0.5f, ws);
    expect("empty batch: gradients scaled by beta",
           dW[2] == 1.5f && dU[0] == 2.0f && db[0] == 0.5f && db[5] == 0.5f);
}

/* ---- timing ---------------------------------------------------------------- */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int bench(void)
{
    const int B = 32, T = 50, in = 1, u = 20, reps = 200;
    NnrtRnn r = {.kind = NNRT_LSTM, .steps = T, .input = in, .units = u, .activation = NNRT_RNN_TANH,
                 .recurrent_activation = NNRT_RNN_SIGMOID};
    NnrtRng rng;
    nnrt_rng_seed(&rng, 7);
    size_t nx = (size_t)B * T * in, nW = (size_t)in * 4 * u, nU = (size_t)u * 4 * u;
    float *x = xmalloc(nx * sizeof *x), *W = xmalloc(nW * sizeof *W), *U = xmalloc(nU * sizeof *U);
    float *b = xmalloc(4 * u * sizeof *b), *dy = xmalloc((size_t)B * u * sizeof *dy);
    float *tape = xmalloc((size_t)B * nnrt_rnn_tape_floats(&r) * sizeof *tape);
    float *ws = xmalloc(nnrt_rnn_workspace_floats(&r, (size_t)B) * sizeof *ws);
    float *dx = xmalloc(nx * sizeof *dx), *dW = xmalloc(nW * sizeof *dW), *dU = xmalloc(nU * sizeof *dU);
    float *db = xmalloc(4 * u * sizeof *db);
    fill_uniform(x, nx, -1, 1, &rng), fill_uniform(W, nW, -0.5, 0.5, &rng), fill_uniform(U, nU, -0.3, 0.3, &rng);
    fill_uniform(b, 4 * u, -0.1, 0.1, &rng), fill_uniform(dy, (size_t)B * u, -1, 1, &rng);

    for (int i = 0; i < 10; i++) {            /* warm up */
        nnrt_rnn_forward(tape, x, W, U, b, NULL, NULL, &r, B, ws);
        nnrt_rnn_backward(dx, dW, dU, db, dy, 0, x, tape, W, U, b, NULL, NULL, &r, B, 0.0f, ws);
    }
    double t0 = now();
    for (int i = 0; i < reps; i++)
        nnrt_rnn_forward(tape, x, W, U, b, NULL, NULL, &r, B, ws);
    double t1 = now();
    for (int i = 0; i < reps; i++)
        nnrt_rnn_backward(dx, dW, dU, db, dy, 0, x, tape, W, U, b, NULL, NULL, &r, B, 0.0f, ws);
    double t2 = now();
    double fwd = (t1 - t0) / reps * 1e3, bwd = (t2 - t1) / reps * 1e3;
    printf("LSTM B=%d T=%d input=%d units=%d: forward %.3f ms, backward %.3f ms, forward+backward %.3f ms\n",
           B, T, in, u, fwd, bwd, fwd + bwd);
    printf("tape %zu floats/sample, workspace %zu floats\n", nnrt_rnn_tape_floats(&r),
           nnrt_rnn_workspace_floats(&r, (size_t)B));
    free(x), free(W), free(U), free(b), free(dy), free(tape), free(ws), free(dx), free(dW), free(dU), free(db);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--bench") == 0)
        return bench();
    NnrtRng rng;
    nnrt_rng_seed(&rng, 20240611);
    test_sizes();
    test_empty_batch();
    for (int masked = 0; masked <= 1; masked++)
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
            test_case(&cases[i], masked, &rng);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        test_ones_mask(&cases[i], &rng);
    for (int masked = 0; masked <= 1; masked++)
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
            test_state(&cases[i], masked, &rng);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
