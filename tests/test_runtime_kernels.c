/* test_runtime_kernels.c — rng.c, init.c and kernels.c of libnncc_rt against
 * independent references.
 *
 * Forward kernels are compared with naive double-precision formulas written
 * differently from the runtime (no max shift, sigmoid instead of the
 * softplus form, explicit division). Every *_grad is checked twice: against
 * central differences of the double reference (h = 1e-6, tight tolerance),
 * and against central differences of the runtime's own float forward (coarse
 * tolerance), so a gradient that disagrees with either the maths or the
 * shipped forward fails. Initializers are checked statistically on large
 * draws (4-sigma bounds), orthogonal by W^T W = gain^2 I and by rebuilding R
 * from the same seed. Every check prints its max difference and tolerance
 * (or ok/FAIL for exact properties); the exit status is 1 if any failed.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "nnrt.h"

/* ---- references, in double --------------------------------------------- */

/* Keras clips in float32: these are the float bounds, widened to double. */
#define REF_LO ((double)1e-7f)
#define REF_HI ((double)(1.0f - 1e-7f))

static double ref_clip(double p)
{
    return fmin(fmax(p, REF_LO), REF_HI);
}

static double ref_xent_logits(const double *z, const double *t, size_t rows, size_t cols)
{
    double total = 0.0;
    for (size_t r = 0; r < rows; r++) {
        double denom = 0.0;
        for (size_t j = 0; j < cols; j++)
            denom += exp(z[r * cols + j]);
        for (size_t j = 0; j < cols; j++)
            total -= t[r * cols + j] * log(exp(z[r * cols + j]) / denom);
    }
    return total / rows;
}

static double ref_xent_probs(const double *p, const double *t, size_t rows, size_t cols)
{
    double total = 0.0;
    for (size_t r = 0; r < rows; r++) {
        double s = 0.0;
        for (size_t j = 0; j < cols; j++)
            s += p[r * cols + j];
        for (size_t j = 0; j < cols; j++)
            total -= t[r * cols + j] * log(ref_clip(p[r * cols + j] / s));
    }
    return total / rows;
}

static double ref_bxent_probs(const double *p, const double *t, size_t rows, size_t cols)
{
    double total = 0.0;
    for (size_t i = 0; i < rows * cols; i++) {
        double c = ref_clip(p[i]);
        total -= t[i] * log(c + REF_LO) + (1.0 - t[i]) * log(1.0 - c + REF_LO);
    }
    return total / cols / rows;
}

static double ref_bxent_logits(const double *z, const double *t, size_t rows, size_t cols)
{
    double total = 0.0;
    for (size_t i = 0; i < rows * cols; i++) {
        double s = 1.0 / (1.0 + exp(-z[i]));
        total -= t[i] * log(s) + (1.0 - t[i]) * log(1.0 - s);
    }
    return total / cols / rows;
}

static double ref_mse(const double *p, const double *t, size_t rows, size_t cols)
{
    double total = 0.0;
    for (size_t r = 0; r < rows; r++) {
        double row = 0.0;
        for (size_t j = 0; j < cols; j++)
            row += pow(p[r * cols + j] - t[r * cols + j], 2);
        total += row / cols;
    }
    return total / rows;
}

static double ref_mae(const double *p, const double *t, size_t rows, size_t cols)
{
    double total = 0.0;
    for (size_t r = 0; r < rows; r++) {
        double row = 0.0;
        for (size_t j = 0; j < cols; j++)
            row += fabs(p[r * cols + j] - t[r * cols + j]);
        total += row / cols;
    }
    return total / rows;
}

/* Sparse references take the labels as doubles in t (one per row). */
static double ref_sparse_xent_logits(const double *z, const double *t, size_t rows, size_t cols)
{
    double total = 0.0;
    for (size_t r = 0; r < rows; r++) {
        double denom = 0.0;
        for (size_t j = 0; j < cols; j++)
            denom += exp(z[r * cols + j]);
        total -= log(exp(z[r * cols + (size_t)t[r]]) / denom);
    }
    return total / rows;
}

/* Keras: log(clip(p)) fed to sparse softmax cross-entropy as logits. */
static double ref_sparse_xent_probs(const double *p, const double *t, size_t rows, size_t cols)
{
    double total = 0.0;
    for (size_t r = 0; r < rows; r++) {
        double denom = 0.0;
        for (size_t j = 0; j < cols; j++)
            denom += exp(log(ref_clip(p[r * cols + j])));
        total -= log(ref_clip(p[r * cols + (size_t)t[r]]) / denom);
    }
    return total / rows;
}

/* ---- loss tests --------------------------------------------------------- */

typedef double (*RefLoss)(const double *, const double *, size_t, size_t);

typedef struct {
    const char *name;
    float (*forward)(const float *, const float *, size_t, size_t);
    void (*grad)(float *, const float *, const float *, size_t, size_t, float);
    RefLoss ref;
    double lo, hi;               /* prediction range drawn */
    int target;                  /* 0: uniform [0,1), 1: rows summing to 1 */
    double hf;                   /* step for differences of the float forward */
} DenseLoss;

typedef struct {
    const char *name;
    float (*forward)(const float *, const int32_t *, size_t, size_t);
    void (*grad)(float *, const float *, const int32_t *, size_t, size_t, float);
    RefLoss ref;
    double lo, hi;
    double hf;
} SparseLoss;

/* Both gradient checks. scale = weight / rows, so the kernel's output must
 * equal weight * d(batch mean)/dpred. The float check allows 0.3% of the
 * largest gradient plus the rounding noise of a float loss over 2 hf. */
static void check_grad(const char *name, const float *pred, const float *grad, size_t rows,
                       size_t cols, double weight, RefLoss ref, const double *tref,
                       double (*fwd_float)(const float *, const void *, size_t, size_t, const void *),
                       const void *ctx_target, const void *ctx_fn, double hf)
{
    size_t n = rows * cols;
    double *pd = xmalloc(n * sizeof *pd);
    float *pf = xmalloc(n * sizeof *pf);
    for (size_t i = 0; i < n; i++)
        pd[i] = pred[i];
    memcpy(pf, pred, n * sizeof *pf);

    double max_ref = 0.0, diff_ref = 0.0, max_g = 0.0, diff_f = 0.0;
    double noise = weight * 8 * FLT_EPSILON * fmax(1.0, fabs(fwd_float(pf, ctx_target, rows, cols, ctx_fn))) / (2 * hf);
    const double h = 1e-6;
    for (size_t i = 0; i < n; i++) {
        double keep = pd[i];
        pd[i] = keep + h;
        double up = ref(pd, tref, rows, cols);
        pd[i] = keep - h;
        double down = ref(pd, tref, rows, cols);
        pd[i] = keep;
        double fd = weight * (up - down) / (2 * h);
        max_ref = fmax(max_ref, fabs(fd));
        diff_ref = fmax(diff_ref, fabs(fd - grad[i]));

        float kf = pf[i], fu = (float)(kf + hf), fdn = (float)(kf - hf);
        pf[i] = fu;
        double upf = fwd_float(pf, ctx_target, rows, cols, ctx_fn);
        pf[i] = fdn;
        double downf = fwd_float(pf, ctx_target, rows, cols, ctx_fn);
        pf[i] = kf;
        double fdf = weight * (upf - downf) / ((double)fu - (double)fdn);
        max_g = fmax(max_g, fabs((double)grad[i]));
        diff_f = fmax(diff_f, fabs(fdf - grad[i]));
    }
    char label[128];
    snprintf(label, sizeof label, "%s grad vs FD of double ref", name);
    report(label, diff_ref, 2e-5 * fmax(max_ref, 1e-3));
    snprintf(label, sizeof label, "%s grad vs FD of float forward", name);
    report(label, diff_f, 3e-3 * max_g + noise);
    free(pd);
    free(pf);
}

static double dense_fwd(const float *p, const void *t, size_t rows, size_t cols, const void *fn)
{
    const DenseLoss *l = fn;
    return l->forward(p, t, rows, cols);
}

static double sparse_fwd(const float *p, const void *t, size_t rows, size_t cols, const void *fn)
{
    const SparseLoss *l = fn;
    return l->forward(p, t, rows, cols);
}

static void test_dense_loss(const DenseLoss *l, NnrtRng *rng)
{
    const size_t rows = 5, cols = 7;
    const double weight = 0.7;
    size_t n = rows * cols;
    float *p = xmalloc(n * sizeof *p), *t = xmalloc(n * sizeof *t), *g = xmalloc(n * sizeof *g);
    double *pd = xmalloc(n * sizeof *pd), *td = xmalloc(n * sizeof *td);
    fill_uniform(p, n, l->lo, l->hi, rng);
    fill_uniform(t, n, 0.0, 1.0, rng);
    if (l->target) {             /* one-hot in even rows, soft in odd ones */
        for (size_t r = 0; r < rows; r++) {
            double s = 0.0;
            for (size_t j = 0; j < cols; j++)
                s += t[r * cols + j];
            for (size_t j = 0; j < cols; j++)
                t[r * cols + j] = r % 2 ? (float)(t[r * cols + j] / s) : (float)(j == r % cols);
        }
    }
    for (size_t i = 0; i < n; i++) {
        pd[i] = p[i];
        td[i] = t[i];
    }
    char label[128];
    double want = l->ref(pd, td, rows, cols), got = l->forward(p, t, rows, cols);
    snprintf(label, sizeof label, "%s forward vs double ref", l->name);
    report(label, fabs(got - want), 2e-6 * fmax(1.0, fabs(want)));

    l->grad(g, p, t, rows, cols, (float)(weight / rows));
    check_grad(l->name, p, g, rows, cols, weight, l->ref, td, dense_fwd, t, l, l->hf);
    free(p); free(t); free(g); free(pd); free(td);
}

static void test_sparse_loss(const SparseLoss *l, NnrtRng *rng)
{
    const size_t rows = 6, cols = 5;
    const double weight = 1.3;
    size_t n = rows * cols;
    float *p = xmalloc(n * sizeof *p), *g = xmalloc(n * sizeof *g);
    double *pd = xmalloc(n * sizeof *pd), *td = xmalloc(rows * sizeof *td);
    int32_t labels[6];
    fill_uniform(p, n, l->lo, l->hi, rng);
    for (size_t r = 0; r < rows; r++) {
        labels[r] = (int32_t)(nnrt_rng_next(rng) % cols);
        td[r] = labels[r];
    }
    for (size_t i = 0; i < n; i++)
        pd[i] = p[i];
    char label[128];
    double want = l->ref(pd, td, rows, cols), got = l->forward(p, labels, rows, cols);
    snprintf(label, sizeof label, "%s forward vs double ref", l->name);
    report(label, fabs(got - want), 2e-6 * fmax(1.0, fabs(want)));

    l->grad(g, p, labels, rows, cols, (float)(weight / rows));
    check_grad(l->name, p, g, rows, cols, weight, l->ref, td, sparse_fwd, labels, l, l->hf);

    int32_t bad[6];
    memcpy(bad, labels, sizeof bad);
    bad[2] = (int32_t)cols;
    snprintf(label, sizeof label, "%s out-of-range label gives NaN", l->name);
    expect(label, isnan(l->forward(p, bad, rows, cols)));
    free(p); free(g); free(pd); free(td);
}

static void test_losses(NnrtRng *rng)
{
    const DenseLoss dense[] = {
        /* probabilities stay 0.1 from the clip bounds and from 0, where
         * log's third derivative would swamp a step of 1e-3 */
        {"xent_logits", nnrt_xent_logits, nnrt_xent_logits_grad, ref_xent_logits, -3, 3, 1, 1e-2},
        {"xent_probs", nnrt_xent_probs, nnrt_xent_probs_grad, ref_xent_probs, 0.1, 0.9, 1, 1e-3},
        {"bxent_probs", nnrt_bxent_probs, nnrt_bxent_probs_grad, ref_bxent_probs, 0.1, 0.9, 0, 1e-3},
        {"bxent_logits", nnrt_bxent_logits, nnrt_bxent_logits_grad, ref_bxent_logits, -4, 4, 0, 1e-2},
        {"mse", nnrt_mse, nnrt_mse_grad, ref_mse, -2, 2, 0, 1e-2},
        {"mae", nnrt_mae, nnrt_mae_grad, ref_mae, 1.02, 2, 0, 1e-2},  /* |p - t| > hf */
    };
    const SparseLoss sparse[] = {
        {"sparse_xent_logits", nnrt_sparse_xent_logits, nnrt_sparse_xent_logits_grad,
         ref_sparse_xent_logits, -3, 3, 1e-2},
        {"sparse_xent_probs", nnrt_sparse_xent_probs, nnrt_sparse_xent_probs_grad,
         ref_sparse_xent_probs, 0.1, 0.9, 1e-3},
    };
    for (size_t i = 0; i < sizeof dense / sizeof dense[0]; i++)
        test_dense_loss(&dense[i], rng);
    for (size_t i = 0; i < sizeof sparse / sizeof sparse[0]; i++)
        test_sparse_loss(&sparse[i], rng);

    /* Clipping: probabilities at 0 and 1 hit the [1e-7, 1-1e-7] bounds. */
    {
        const float p[6] = {0.0f, 1.0f, 0.5f, 1.0f, 0.0f, 0.25f};
        const float t[6] = {1.0f, 0.0f, 0.5f, 1.0f, 0.0f, 1.0f};
        double pd[6], td[6];
        for (int i = 0; i < 6; i++) {
            pd[i] = p[i];
            td[i] = t[i];
        }
        double want = ref_bxent_probs(pd, td, 2, 3);
        report("bxent_probs clipped forward (p = 0, 1)", fabs(nnrt_bxent_probs(p, t, 2, 3) - want),
               2e-6 * want);
        float g[6];
        nnrt_bxent_probs_grad(g, p, t, 2, 3, 1.0f);
        expect("bxent_probs grad 0 where clipped",
               g[0] == 0 && g[1] == 0 && g[3] == 0 && g[4] == 0 && g[2] == 0 && g[5] != 0);

        const float q[6] = {0.0f, 0.3f, 0.7f, 1.0f, 0.0f, 0.0f};
        const float oh[6] = {1.0f, 0.0f, 0.0f, 0.0f, 1.0f, 0.0f};
        for (int i = 0; i < 6; i++) {
            pd[i] = q[i];
            td[i] = oh[i];
        }
        want = ref_xent_probs(pd, td, 2, 3);
        report("xent_probs clipped forward (p = 0, 1)", fabs(nnrt_xent_probs(q, oh, 2, 3) - want),
               2e-6 * want);
        const int32_t lab[2] = {0, 1};
        double ld[2] = {0, 1};
        want = ref_sparse_xent_probs(pd, ld, 2, 3);
        report("sparse_xent_probs clipped forward (p = 0, 1)",
               fabs(nnrt_sparse_xent_probs(q, lab, 2, 3) - want), 2e-6 * want);
    }

    /* Stability: logits far beyond exp's range. */
    {
        const float z[3] = {1000.0f, 0.0f, -1000.0f};
        const int32_t l0 = 0, l1 = 1;
        const float t1[3] = {0, 1, 0};
        report("sparse_xent_logits stable at z = 1000 (label 0)",
               fabs(nnrt_sparse_xent_logits(z, &l0, 1, 3) - 0.0), 1e-6);
        report("sparse_xent_logits stable at z = 1000 (label 1)",
               fabs(nnrt_sparse_xent_logits(z, &l1, 1, 3) - 1000.0), 1e-3);
        report("xent_logits stable at z = 1000", fabs(nnrt_xent_logits(z, t1, 1, 3) - 1000.0), 1e-3);
        float g[3];
        nnrt_sparse_xent_logits_grad(g, z, &l1, 1, 3, 1.0f);
        report("sparse_xent_logits grad at z = 1000",
               fmax(fabs(g[0] - 1.0), fmax(fabs(g[1] + 1.0), fabs(g[2]))), 1e-7);
        const float zb[2] = {200.0f, -200.0f}, tb[2] = {0.0f, 1.0f};
        report("bxent_logits stable at z = +-200", fabs(nnrt_bxent_logits(zb, tb, 1, 2) - 200.0),
               1e-4);
        nnrt_bxent_logits_grad(g, zb, tb, 1, 2, 1.0f);
        report("bxent_logits grad at z = +-200", fmax(fabs(g[0] - 0.5), fabs(g[1] + 0.5)), 1e-7);
    }
}

/* ---- softmax, gemm ------------------------------------------------------ */

static void test_softmax(NnrtRng *rng)
{
    const size_t rows = 9, cols = 13;
    float x[9 * 13], y[9 * 13];
    fill_uniform(x, rows * cols, -8, 8, rng);
    nnrt_softmax(y, x, rows, cols);
    double diff = 0.0;
    for (size_t r = 0; r < rows; r++) {
        double denom = 0.0;
        for (size_t j = 0; j < cols; j++)
            denom += exp((double)x[r * cols + j]);
        for (size_t j = 0; j < cols; j++)
            diff = fmax(diff, fabs(y[r * cols + j] - exp((double)x[r * cols + j]) / denom));
    }
    report("softmax vs naive double", diff, 1e-7);

    float xa[9 * 13];
    memcpy(xa, x, sizeof xa);
    nnrt_softmax(xa, xa, rows, cols);
    diff = 0.0;
    for (size_t i = 0; i < rows * cols; i++)
        diff = fmax(diff, fabs(xa[i] - y[i]));
    report("softmax in place (y aliases x)", diff, 0.0);

    /* Large logits: shifted reference (x - 1000 is exact in float here). */
    float big[4] = {1000.0f, 999.0f, 998.0f, -1000.0f}, yb[4];
    nnrt_softmax(yb, big, 1, 4);
    double e0 = 1.0, e1 = exp(-1.0), e2 = exp(-2.0), s = e0 + e1 + e2;
    diff = fmax(fmax(fabs(yb[0] - e0 / s), fabs(yb[1] - e1 / s)), fmax(fabs(yb[2] - e2 / s), fabs(yb[3])));
    report("softmax stable at x = 1000", diff, 1e-7);
}

static void test_gemm(NnrtRng *rng)
{
    const int sizes[][3] = {{7, 5, 3}, {13, 17, 11}, {1, 9, 4}, {32, 3, 65}};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        int m = sizes[s][0], n = sizes[s][1], k = sizes[s][2];
        for (int ta = 0; ta < 2; ta++)
            for (int tb = 0; tb < 2; tb++) {
                /* stored shapes (row-major) with padded leading dimensions */
                int ar = ta ? k : m, ac = ta ? m : k, br = tb ? n : k, bc = tb ? k : n;
                int lda = ac + 2, ldb = bc + 1, ldc = n + 3;
                float *a = xmalloc((size_t)ar * lda * sizeof *a);
                float *b = xmalloc((size_t)br * ldb * sizeof *b);
                float *c = xmalloc((size_t)m * ldc * sizeof *c);
                fill_uniform(a, (size_t)ar * lda, -1, 1, rng);
                fill_uniform(b, (size_t)br * ldb, -1, 1, rng);
                fill_uniform(c, (size_t)m * ldc, -1, 1, rng);
                double *want = xmalloc((size_t)m * n * sizeof *want);
                const float alpha = 1.5f, beta = 0.5f;
                for (int i = 0; i < m; i++)
                    for (int j = 0; j < n; j++) {
                        double acc = 0.0;
                        for (int p = 0; p < k; p++) {
                            double av = ta ? a[p * lda + i] : a[i * lda + p];
                            double bv = tb ? b[j * ldb + p] : b[p * ldb + j];
                            acc += av * bv;
                        }
                        want[i * n + j] = alpha * acc + beta * c[i * ldc + j];
                    }
                float *before = xmalloc((size_t)m * ldc * sizeof *before);
                memcpy(before, c, (size_t)m * ldc * sizeof *c);
                nnrt_gemm(ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
                double diff = 0.0;
                int pad_kept = 1;
                for (int i = 0; i < m; i++) {
                    for (int j = 0; j < n; j++)
                        diff = fmax(diff, fabs(c[i * ldc + j] - want[i * n + j]));
                    for (int j = n; j < ldc; j++)
                        pad_kept &= c[i * ldc + j] == before[i * ldc + j];
                }
                char label[128];
                snprintf(label, sizeof label, "gemm %c%c m=%d n=%d k=%d", ta ? 'T' : 'N',
                         tb ? 'T' : 'N', m, n, k);
                report(label, diff, 1e-6 * k);
                if (!pad_kept)
                    expect("gemm leaves C's padding columns alone", 0);
                free(a); free(b); free(c); free(want); free(before);
            }
    }
    float c0[2] = {3.0f, 4.0f};
    nnrt_gemm(0, 0, 1, 2, 0, 1.0f, c0, 1, c0, 2, 0.5f, c0, 2);
    report("gemm k=0 gives beta*C", fmax(fabs(c0[0] - 1.5), fabs(c0[1] - 2.0)), 0.0);
}

/* ---- metrics, dropout --------------------------------------------------- */

static void test_metrics(void)
{
    /* rows: clear max at 2; tie between 0 and 3 (first wins: 0); max at 1 */
    const float p[12] = {0.1f, 0.2f, 0.6f, 0.1f,
                         0.4f, 0.1f, 0.1f, 0.4f,
                         0.0f, 0.9f, 0.05f, 0.05f};
    const int32_t l1[3] = {2, 0, 1}, l2[3] = {2, 3, 1}, l3[3] = {2, 0, 7};
    report("sparse_accuracy all right, tie -> first max", fabs(nnrt_sparse_accuracy(p, l1, 3, 4) - 1.0), 0);
    report("sparse_accuracy tie to later index is wrong",
           fabs(nnrt_sparse_accuracy(p, l2, 3, 4) - 2.0 / 3.0), 1e-7);
    report("sparse_accuracy out-of-range label is wrong",
           fabs(nnrt_sparse_accuracy(p, l3, 3, 4) - 2.0 / 3.0), 1e-7);

    const float t[12] = {0, 0, 1, 0,
                         0, 0, 0, 1,
                         0, 1, 0, 0};
    report("categorical_accuracy 2 of 3", fabs(nnrt_categorical_accuracy(p, t, 3, 4) - 2.0 / 3.0), 1e-7);

    const float bp[8] = {0.9f, 0.2f, 0.5f, 0.51f, 0.3f, 0.31f, 0.0f, 1.0f};
    const float bt[8] = {1, 0, 0, 1, 0, 1, 0, 1};
    /* threshold 0.5: p > 0.5 is {1,0,0,1,0,0,0,1}: 7 of 8 match (index 5 misses) */
    report("binary_accuracy threshold 0.5", fabs(nnrt_binary_accuracy(bp, bt, 2, 4, 0.5f) - 7.0 / 8.0), 1e-7);
    /* threshold 0.3: {1,0,1,1,0,1,0,1}: index 2 misses */
    report("binary_accuracy threshold 0.3", fabs(nnrt_binary_accuracy(bp, bt, 4, 2, 0.3f) - 7.0 / 8.0), 1e-7);
    const float soft[2] = {0.9f, 0.1f}, sp[2] = {0.9f, 0.1f};
    report("binary_accuracy soft target never matches (Keras)",
           fabs(nnrt_binary_accuracy(sp, soft, 1, 2, 0.5f)), 0);
}

static void test_dropout(void)
{
    const size_t n = 200000;
    const float rate = 0.3f;
    float *m = xmalloc(n * sizeof *m);
    NnrtRng r;
    nnrt_rng_seed(&r, 7);
    nnrt_dropout_mask(m, n, rate, &r);
    const float keep = (float)(1.0 / (1.0 - rate));
    size_t kept = 0, odd = 0;
    for (size_t i = 0; i < n; i++) {
        kept += m[i] == keep;
        odd += m[i] != keep && m[i] != 0.0f;
    }
    expect("dropout mask values in {0, 1/(1-rate)}", odd == 0);
    double sd = sqrt(rate * (1 - rate) / n);
    report("dropout kept fraction vs 1-rate (4 sigma)", fabs((double)kept / n - (1 - rate)), 4 * sd);
    nnrt_dropout_mask(m, 1000, 1.0f, &r);
    int zero = 1;
    for (size_t i = 0; i < 1000; i++)
        zero &= m[i] == 0.0f;
    expect("dropout rate 1 drops everything (no inf)", zero);
    free(m);
}

/* ---- rng ---------------------------------------------------------------- */

static void test_rng(void)
{
    /* Known answers from an independent (Python) xoshiro256** + splitmix64. */
    const uint64_t want0[4] = {0x99ec5f36cb75f2b4u, 0xbf6e1f784956452au,
                               0x1a5f849d4933e6e0u, 0x6aa594f1262d2d2cu};
    const uint64_t want42[4] = {0x15780b2e0c2ec716u, 0x6104d9866d113a7eu,
                                0xae17533239e499a1u, 0xecb8ad4703b360a1u};
    NnrtRng a, b;
    int ok = 1;
    nnrt_rng_seed(&a, 0);
    nnrt_rng_seed(&b, 42);
    for (int i = 0; i < 4; i++) {
        ok &= nnrt_rng_next(&a) == want0[i];
        ok &= nnrt_rng_next(&b) == want42[i];
    }
    expect("rng known answers, seeds 0 and 42", ok);

    nnrt_rng_seed(&a, 1234);
    nnrt_rng_seed(&b, 1234);
    int same = 1;
    for (int i = 0; i < 1000; i++) {
        same &= nnrt_rng_next(&a) == nnrt_rng_next(&b);
        same &= nnrt_rng_normal(&a) == nnrt_rng_normal(&b);
    }
    expect("rng same seed, same sequence", same);
    nnrt_rng_seed(&a, 1234);
    nnrt_rng_seed(&b, 1235);
    int differ = 0;
    for (int i = 0; i < 1000; i++)
        differ += nnrt_rng_next(&a) != nnrt_rng_next(&b);
    expect("rng different seed, different sequence", differ == 1000);

    const int n = 1000000;
    double su = 0, suu = 0, sn = 0, snn = 0, lo = 1, hi = 0;
    nnrt_rng_seed(&a, 99);
    for (int i = 0; i < n; i++) {
        double u = nnrt_rng_uniform(&a), z = nnrt_rng_normal(&a);
        su += u; suu += u * u; sn += z; snn += z * z;
        lo = fmin(lo, u); hi = fmax(hi, u);
    }
    expect("uniform in [0, 1)", lo >= 0.0 && hi < 1.0);
    report("uniform mean vs 1/2 (4 sigma)", fabs(su / n - 0.5), 4 * sqrt(1.0 / 12 / n));
    report("uniform variance vs 1/12", fabs(suu / n - su * su / n / n - 1.0 / 12), 2e-3 / 12);
    report("normal mean vs 0 (4 sigma)", fabs(sn / n), 4 / sqrt((double)n));
    report("normal variance vs 1", fabs(snn / n - sn * sn / n / n - 1.0), 4 * sqrt(2.0 / n));
}

static void test_shuffle(void)
{
    enum { N = 1000 };
    size_t idx[N];
    int seen[N] = {0};
    for (size_t i = 0; i < N; i++)
        idx[i] = i;
    NnrtRng r;
    nnrt_rng_seed(&r, 5);
    nnrt_shuffle(idx, N, &r);
    int perm = 1, moved = 0;
    for (size_t i = 0; i < N; i++) {
        perm &= idx[i] < N && !seen[idx[i]];
        if (idx[i] < N)
            seen[idx[i]] = 1;
        moved += idx[i] != i;
    }
    expect("shuffle is a permutation of 0..999", perm);
    expect("shuffle moves most elements", moved > N / 2);
    nnrt_shuffle(idx, 0, &r);
    nnrt_shuffle(idx, 1, &r);

    /* All 6 orders of 3 elements equally likely (4 sigma each). */
    int count[6] = {0};
    const int trials = 60000;
    for (int t = 0; t < trials; t++) {
        size_t v[3] = {0, 1, 2};
        nnrt_shuffle(v, 3, &r);
        count[v[0] * 2 + (v[1] > v[2])]++;
    }
    double dev = 0;
    for (int i = 0; i < 6; i++)
        dev = fmax(dev, fabs(count[i] - trials / 6.0));
    report("shuffle of 3: all 6 orders equally likely", dev, 4 * sqrt(trials * (1.0 / 6) * (5.0 / 6)));
}

/* ---- initializers -------------------------------------------------------- */

static void stats(const float *w, size_t n, double *mean, double *sd, double *absmax)
{
    double s = 0, ss = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        s += w[i];
        m = fmax(m, fabs(w[i]));
    }
    *mean = s / n;
    for (size_t i = 0; i < n; i++)
        ss += (w[i] - *mean) * (w[i] - *mean);
    *sd = sqrt(ss / n);
    *absmax = m;
}

/* Checks mean and stddev of a draw: mean within 4 sigma of the sampling
 * error, stddev within 1.5%. */
static void check_moments(const char *name, const float *w, size_t n, double mean, double sd)
{
    double m, s, am;
    stats(w, n, &m, &s, &am);
    char label[128];
    snprintf(label, sizeof label, "%s mean", name);
    report(label, fabs(m - mean), 4 * sd / sqrt((double)n));
    snprintf(label, sizeof label, "%s stddev (relative)", name);
    report(label, fabs(s / sd - 1), 0.015);
}

static void test_init_stats(void)
{
    NnrtRng r;
    nnrt_rng_seed(&r, 2024);
    size_t cap = 1 << 18;
    float *w = xmalloc(cap * sizeof *w);
    double m, s, am;

    int64_t flat[1] = {200000};
    NnrtInit in = {.kind = NNRT_INIT_RANDOM_NORMAL, .a = 0.5, .b = 2.0};
    nnrt_init_fill(w, 1, flat, &in, &r);
    check_moments("random_normal(0.5, 2)", w, 200000, 0.5, 2.0);

    in = (NnrtInit){.kind = NNRT_INIT_RANDOM_UNIFORM, .a = -1.0, .b = 3.0};
    nnrt_init_fill(w, 1, flat, &in, &r);
    check_moments("random_uniform(-1, 3)", w, 200000, 1.0, 4.0 / sqrt(12.0));
    double lo = 1e9, hi = -1e9;
    for (size_t i = 0; i < 200000; i++) {
        lo = fmin(lo, w[i]);
        hi = fmax(hi, w[i]);
    }
    expect("random_uniform(-1, 3) within [-1, 3)", lo >= -1.0 && hi < 3.0 && lo < -0.99 && hi > 2.99);

    in = (NnrtInit){.kind = NNRT_INIT_TRUNCATED_NORMAL, .a = 1.0, .b = 0.5};
    nnrt_init_fill(w, 1, flat, &in, &r);
    check_moments("truncated_normal(1, 0.5)", w, 200000, 1.0, 0.5 * 0.87962566103423978);
    lo = 1e9; hi = -1e9;
    for (size_t i = 0; i < 200000; i++) {
        lo = fmin(lo, w[i]);
        hi = fmax(hi, w[i]);
    }
    expect("truncated_normal(1, 0.5) within [0, 2], reaching both ends",
           lo >= 0.0 && hi <= 2.0 && lo < 0.01 && hi > 1.99);

    /* he_normal = variance_scaling(2, fan_in, truncated_normal) on (256, 512):
     * the samples' stddev is sqrt(2/256) after truncation. */
    int64_t dense[2] = {256, 512};
    in = (NnrtInit){.kind = NNRT_INIT_VARIANCE_SCALING, .a = 2.0, .mode = NNRT_FAN_IN,
                    .distribution = NNRT_DIST_TRUNCATED_NORMAL};
    nnrt_init_fill(w, 2, dense, &in, &r);
    check_moments("he_normal (256,512)", w, 256 * 512, 0.0, sqrt(2.0 / 256));
    stats(w, 256 * 512, &m, &s, &am);
    double bound = 2 * sqrt(2.0 / 256) / 0.87962566103423978;
    expect("he_normal (256,512) |w| <= 2 stddev", am <= bound * (1 + 1e-6) && am > 0.99 * bound);

    /* glorot_uniform on a Conv2D kernel (3,3,64,128): fans 576 and 1152. */
    int64_t conv[4] = {3, 3, 64, 128};
    in = (NnrtInit){.kind = NNRT_INIT_VARIANCE_SCALING, .a = 1.0, .mode = NNRT_FAN_AVG,
                    .distribution = NNRT_DIST_UNIFORM};
    nnrt_init_fill(w, 4, conv, &in, &r);
    double limit = sqrt(6.0 / (576 + 1152));
    stats(w, 3 * 3 * 64 * 128, &m, &s, &am);
    report("glorot_uniform (3,3,64,128) max|w| vs limit", fabs(am - limit), 1e-3 * limit);
    expect("glorot_uniform (3,3,64,128) |w| <= limit", am <= limit);
    check_moments("glorot_uniform (3,3,64,128)", w, 3 * 3 * 64 * 128, 0.0, limit / sqrt(3.0));

    /* Rank 1 uses shape[0] for both fans. */
    int64_t vec[1] = {100000};
    nnrt_init_fill(w, 1, vec, &in, &r);
    stats(w, 100000, &m, &s, &am);
    limit = sqrt(6.0 / 200000);
    report("glorot_uniform rank 1 (100000) max|w| vs limit", fabs(am - limit), 1e-3 * limit);

    /* lecun-style untruncated normal, fan_out mode, on (100, 300). */
    int64_t d2[2] = {100, 300};
    in = (NnrtInit){.kind = NNRT_INIT_VARIANCE_SCALING, .a = 1.0, .mode = NNRT_FAN_OUT,
                    .distribution = NNRT_DIST_UNTRUNCATED_NORMAL};
    nnrt_init_fill(w, 2, d2, &in, &r);
    check_moments("variance_scaling(1, fan_out, normal) (100,300)", w, 30000, 0.0, sqrt(1.0 / 300));
    stats(w, 30000, &m, &s, &am);
    expect("untruncated normal exceeds 2 stddev somewhere", am > 2 * sqrt(1.0 / 300));

    in = (NnrtInit){.kind = NNRT_INIT_CONSTANT, .a = 0.25};
    nnrt_init_fill(w, 2, d2, &in, &r);
    stats(w, 30000, &m, &s, &am);
    report("constant 0.25", fmax(fabs(m - 0.25), s), 0.0);

    /* Unknown-size guards. */
    int64_t neg[2] = {3, -1};
    expect("negative dimension is NNRT_EINVAL", nnrt_init_fill(w, 2, neg, &in, &r) == NNRT_EINVAL);
    free(w);
}

/* max |W^T W - gain^2 I| (rows >= cols) or |W W^T - gain^2 I| (rows < cols). */
static double orthogonality(const float *w, size_t rows, size_t cols, double gain)
{
    int tall = rows >= cols;
    size_t n = tall ? cols : rows, len = tall ? rows : cols;
    double diff = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            double dot = 0;
            for (size_t k = 0; k < len; k++)
                dot += tall ? (double)w[k * cols + i] * w[k * cols + j]
                            : (double)w[i * cols + k] * w[j * cols + k];
            diff = fmax(diff, fabs(dot - (i == j ? gain * gain : 0.0)));
        }
    return diff;
}

/* Keras' sign convention: with A the (max, min) normal matrix drawn from the
 * same seed and Q the (max, min) orthonormal factor (W or W^T, over gain),
 * R = Q^T A must be upper triangular with a positive diagonal. */
static void check_qr_of_draw(const char *name, const float *w, size_t rows, size_t cols,
                             double gain, uint64_t seed)
{
    size_t m = rows > cols ? rows : cols, n = rows > cols ? cols : rows;
    double *a = xmalloc(m * n * sizeof *a);
    NnrtRng r;
    nnrt_rng_seed(&r, seed);
    for (size_t i = 0; i < m * n; i++)
        a[i] = nnrt_rng_normal(&r);
    double lower = 0, mindiag = INFINITY;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            double rij = 0;
            for (size_t k = 0; k < m; k++) {
                double q = rows >= cols ? w[k * cols + i] : w[i * cols + k];
                rij += q / gain * a[k * n + j];
            }
            if (i > j)
                lower = fmax(lower, fabs(rij));
            if (i == j)
                mindiag = fmin(mindiag, rij);
        }
    char label[128];
    snprintf(label, sizeof label, "orthogonal %s: Q^T A lower part", name);
    report(label, lower, 1e-4);
    snprintf(label, sizeof label, "orthogonal %s: diag(R) > 0", name);
    expect(label, mindiag > 0);
    free(a);
}

static void test_orthogonal(void)
{
    struct { const char *name; int rank; int64_t shape[4]; size_t rows, cols; double gain; } cases[] = {
        {"(64,32)", 2, {64, 32}, 64, 32, 1.0},
        {"(32,64)", 2, {32, 64}, 32, 64, 1.0},
        {"(3,3,4,8)", 4, {3, 3, 4, 8}, 36, 8, 1.0},
        {"(16,16) gain 1.5", 2, {16, 16}, 16, 16, 1.5},
        {"(200,600)", 2, {200, 600}, 200, 600, 1.0},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        size_t count = cases[c].rows * cases[c].cols;
        float *w = xmalloc(count * sizeof *w);
        NnrtRng r;
        uint64_t seed = 100 + c;
        nnrt_rng_seed(&r, seed);
        NnrtInit in = {.kind = NNRT_INIT_ORTHOGONAL, .a = cases[c].gain};
        int rc = nnrt_init_fill(w, cases[c].rank, cases[c].shape, &in, &r);
        char label[128];
        snprintf(label, sizeof label, "orthogonal %s returns 0", cases[c].name);
        expect(label, rc == 0);
        snprintf(label, sizeof label, "orthogonal %s: W^T W = gain^2 I", cases[c].name);
        report(label, orthogonality(w, cases[c].rows, cases[c].cols, cases[c].gain),
               2e-6 * cases[c].gain * cases[c].gain * sqrt((double)(cases[c].rows + cases[c].cols)));
        check_qr_of_draw(cases[c].name, w, cases[c].rows, cases[c].cols, cases[c].gain, seed);
        free(w);
    }
    float w[4];
    int64_t v[1] = {4};
    NnrtRng r;
    nnrt_rng_seed(&r, 1);
    NnrtInit in = {.kind = NNRT_INIT_ORTHOGONAL, .a = 1.0};
    expect("orthogonal of rank 1 is NNRT_EINVAL", nnrt_init_fill(w, 1, v, &in, &r) == NNRT_EINVAL);
}

int main(void)
{
    NnrtRng rng;
    nnrt_rng_seed(&rng, 12345);
    test_rng();
    test_shuffle();
    test_gemm(&rng);
    test_softmax(&rng);
    test_losses(&rng);
    test_metrics();
    test_dropout();
    test_init_stats();
    test_orthogonal();
    if (failed)
        printf("%d check(s) FAILED\n", failed);
    else
        printf("all checks passed\n");
    return failed != 0;
}
