/* test_timesteps.c — a model with a variable time axis against the same
 * model compiled at a fixed length.
 *
 * seq_vt (tests/timesteps/seq_vt.yaml, shape [null, 2], at most 12 steps)
 * and seq_f7 / seq_f12 (the same file with shape [7, 2] and [12, 2]) start
 * from the same weights; at T = 7 and T = 12, on one seq_vt instance,
 * predictions, evaluate's loss and metrics, every gradient and the weights
 * after two training steps (dropout included: the masks draw the same
 * numbers) must agree to float rounding. The fixed-length path is checked
 * against PyTorch by the golden tests, so this carries that check to any
 * length. Then the timesteps argument's bounds.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "seq_f12.h"
#include "seq_f7.h"
#include "seq_vt.h"

#define N 5                      /* samples: one chunk of the default batch */

static int failures;

static void compare(const char *what, int T, const float *got, const float *want, size_t n)
{
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]) / (1 + fabs(want[i]));
        if (d > worst || d != d)
            worst = d;
    }
    int ok = worst <= 1e-6;
    printf("T=%-2d %-24s max rel diff %.3g %s\n", T, what, worst, ok ? "ok" : "FAIL");
    failures += !ok;
}

static void expect(int rc, const char *what, const char *error)
{
    if (rc < 0) {
        fprintf(stderr, "%s failed: %s\n", what, error);
        exit(1);
    }
}

/* Fixed-length model ops behind one signature, so both lengths share the test. */
typedef struct {
    void *m;
    float *(*weights)(void *m);
    float *(*grads)(void *m);
    int (*predict)(void *m, size_t n, const float *const in[], float *const out[]);
    int (*evaluate)(void *m, size_t n, const float *const in[], const void *const tg[], float *loss, float *met);
    int (*loss_grad)(void *m, size_t n, const float *const in[], const void *const tg[], float *loss);
    int (*train)(void *m, size_t n, const float *const in[], const void *const tg[], float *loss, float *met);
} Fixed;

#define FIXED(P)                                                                                             \
    static float *P##_w(void *m) { return P##_weights(m); }                                                  \
    static float *P##_g(void *m) { return P##_grads(m); }                                                    \
    static int P##_p(void *m, size_t n, const float *const in[], float *const out[])                       \
    {                                                                                                        \
        return P##_predict(m, n, in, out);                                                                   \
    }                                                                                                        \
    static int P##_e(void *m, size_t n, const float *const in[], const void *const tg[], float *l, float *mt) \
    {                                                                                                        \
        return P##_evaluate(m, n, in, tg, l, mt);                                                            \
    }                                                                                                        \
    static int P##_l(void *m, size_t n, const float *const in[], const void *const tg[], float *l)         \
    {                                                                                                        \
        return P##_loss_grad(m, n, in, tg, l);                                                               \
    }                                                                                                        \
    static int P##_t(void *m, size_t n, const float *const in[], const void *const tg[], float *l, float *mt) \
    {                                                                                                        \
        return P##_train_step_metrics(m, n, in, tg, l, mt);                                                  \
    }
FIXED(seq_f7)
FIXED(seq_f12)

static void run(seq_vt *vt, const Fixed *f, int T)
{
    static float x[N * 12 * 2], y[N * 12 * 3], out_v[N * 12 * 3], out_f[N * 12 * 3];
    for (int i = 0; i < N * T * 2; i++)
        x[i] = (float)sin(0.37 * i + T);
    for (int i = 0; i < N * T * 3; i++)
        y[i] = (float)cos(0.21 * i - T) * 0.5f;
    const float *in[] = {x};
    const void *tg[] = {y};
    memcpy(f->weights(f->m), seq_vt_weights(vt), seq_vt_NUM_WEIGHTS * sizeof(float));

    expect(seq_vt_predict(vt, N, (size_t)T, in, (float *[]){out_v}), "seq_vt_predict", seq_vt_last_error(vt));
    expect(f->predict(f->m, N, in, (float *[]){out_f}), "predict", "fixed model");
    compare("predict", T, out_v, out_f, (size_t)N * T * 3);

    float lv, lf, mv[seq_vt_NUM_METRICS], mf[seq_vt_NUM_METRICS];
    expect(seq_vt_evaluate(vt, N, (size_t)T, in, tg, &lv, mv), "seq_vt_evaluate", seq_vt_last_error(vt));
    expect(f->evaluate(f->m, N, in, tg, &lf, mf), "evaluate", "fixed model");
    compare("evaluate loss", T, &lv, &lf, 1);
    compare("evaluate metrics", T, mv, mf, seq_vt_NUM_METRICS);

    expect(seq_vt_loss_grad(vt, N, (size_t)T, in, tg, &lv), "seq_vt_loss_grad", seq_vt_last_error(vt));
    expect(f->loss_grad(f->m, N, in, tg, &lf), "loss_grad", "fixed model");
    compare("training loss", T, &lv, &lf, 1);
    compare("gradients", T, seq_vt_grads(vt), f->grads(f->m), seq_vt_NUM_WEIGHTS);

    for (int step = 0; step < 2; step++) {
        expect(seq_vt_train_step_metrics(vt, N, (size_t)T, in, tg, &lv, mv), "seq_vt_train_step",
               seq_vt_last_error(vt));
        expect(f->train(f->m, N, in, tg, &lf, mf), "train_step", "fixed model");
    }
    compare("weights after 2 steps", T, seq_vt_weights(vt), f->weights(f->m), seq_vt_NUM_WEIGHTS);
}

int main(void)
{
    seq_vt *vt = seq_vt_new(3);
    seq_f7 *f7 = seq_f7_new(3);
    seq_f12 *f12 = seq_f12_new(3);
    if (!vt || !f7 || !f12)
        return 2;
    /* the fixed models' optimizer steps must line up with seq_vt's: both start at step 0 */
    Fixed a = {f12, seq_f12_w, seq_f12_g, seq_f12_p, seq_f12_e, seq_f12_l, seq_f12_t};
    run(vt, &a, 12);
    seq_vt_reset_optimizer(vt);
    Fixed b = {f7, seq_f7_w, seq_f7_g, seq_f7_p, seq_f7_e, seq_f7_l, seq_f7_t};
    run(vt, &b, 7);

    /* timesteps outside 1..MAX_TIMESTEPS is refused, with a message */
    float x[N * 13 * 2] = {0}, out[N * 13 * 3];
    const float *in[] = {x};
    int bad = seq_vt_predict(vt, N, seq_vt_MAX_TIMESTEPS + 1, in, (float *[]){out}) >= 0;
    bad += !strstr(seq_vt_last_error(vt), "timesteps must be 1 to 12");
    bad += seq_vt_predict(vt, N, 0, in, (float *[]){out}) >= 0;
    printf("timesteps bounds %s\n", bad ? "FAIL" : "ok");
    failures += bad;

    seq_vt_free(vt);
    seq_f7_free(f7);
    seq_f12_free(f12);
    return failures ? 1 : 0;
}
