/* kernels.c — batch-level kernels: GEMM, softmax, Keras losses and metrics,
 * dropout masks.
 *
 * GEMM is cblas_sgemm in row-major order. Everything else walks a (rows,
 * cols) batch row by row. Losses reproduce tf.keras 2.x (keras/backend.py
 * and keras/losses.py) and return the batch mean of a per-row loss L_r:
 *   xent from logits     L_r = sum_j t_j (lse(z) - z_j), lse stable (max-shifted)
 *   sparse xent, probs   c = clip(p); L_r = log(sum_j c_j) - log c_label
 *                        (Keras takes log(c) as logits, so it renormalizes
 *                        after clipping)
 *   xent, probs          c = clip(p / sum_j p_j); L_r = -sum_j t_j log c_j
 *   bxent, probs         c = clip(p); L_r = mean_j -(t log(c+eps) + (1-t) log(1-c+eps))
 *   bxent, logits        L_r = mean_j max(z,0) - z t + log1p(exp(-|z|))
 *   mse / mae            L_r = mean_j (p-t)^2 / |p-t|
 * with clip to [eps, 1-eps], eps = 1e-7 (Keras' backend.epsilon()). Each
 * *_grad writes scale * dL_r/dpred, the exact derivative of the L_r above:
 * clipped entries get 0 as tf.clip_by_value's gradient does (entries at a
 * bound pass), and |x| has derivative sign(x) with sign(0) = 0. The caller's
 * scale (loss_weight / batch rows) turns the per-row derivatives into those
 * of the weighted batch mean. Sums over a row or the batch accumulate in
 * double; elements are computed in float, as Keras does.
 *
 * Sparse labels outside [0, cols) make the loss NaN, count as wrong in
 * accuracy, and contribute no one-hot term to the gradient; loaders are
 * expected to reject them with a message before training starts.
 */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "nnrt.h"

static const float EPS = 1e-7f;          /* backend.epsilon() */

static float clip_prob(float p)
{
    const float hi = 1.0f - EPS;
    return p < EPS ? EPS : p > hi ? hi : p;
}

/* 1 where tf.clip_by_value passes the gradient: p inside [eps, 1-eps]. */
static float clip_pass(float p)
{
    return p >= EPS && p <= 1.0f - EPS ? 1.0f : 0.0f;
}

static int label_ok(int32_t label, size_t cols)
{
    return label >= 0 && (size_t)label < cols;
}

/* Index of the first maximum of x[0..n), n >= 1. */
static size_t argmax(const float *x, size_t n)
{
    size_t best = 0;
    for (size_t j = 1; j < n; j++)
        if (x[j] > x[best])
            best = j;
    return best;
}

static float row_max(const float *x, size_t n)
{
    float m = x[0];
    for (size_t j = 1; j < n; j++)
        if (x[j] > m)
            m = x[j];
    return m;
}

/* log(sum_j exp(z_j)) of one row, shifted by its max so no exp overflows. */
static double row_logsumexp(const float *z, size_t cols)
{
    float m = row_max(z, cols);
    double sum = 0.0;
    for (size_t j = 0; j < cols; j++)
        sum += expf(z[j] - m);
    return (double)m + log(sum);
}

/* y = softmax(z) of one row, y may alias z. */
static void row_softmax(float *y, const float *z, size_t cols)
{
    float m = row_max(z, cols);
    double sum = 0.0;
    for (size_t j = 0; j < cols; j++) {
        float e = expf(z[j] - m);
        y[j] = e;
        sum += e;
    }
    double inv = 1.0 / sum;
    for (size_t j = 0; j < cols; j++)
        y[j] = (float)(y[j] * inv);
}

void nnrt_gemm(int trans_a, int trans_b, int m, int n, int k, float alpha,
               const float *a, int lda, const float *b, int ldb,
               float beta, float *c, int ldc)
{
    if (m <= 0 || n <= 0)
        return;
    if (k <= 0) {                /* empty product: C = beta C (BLAS: beta 0 overwrites) */
        for (int i = 0; i < m; i++) {
            float *row = c + (ptrdiff_t)i * ldc;
            for (int j = 0; j < n; j++)
                row[j] = beta == 0.0f ? 0.0f : beta * row[j];
        }
        return;
    }
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b, ldb,
                beta, c, ldc);
}

void nnrt_softmax(float *y, const float *x, size_t rows, size_t cols)
{
    if (cols == 0)
        return;
    for (size_t r = 0; r < rows; r++)
        row_softmax(y + r * cols, x + r * cols, cols);
}

/* ---- cross-entropy from logits ---------------------------------------- */

float nnrt_sparse_xent_logits(const float *logits, const int32_t *labels, size_t rows, size_t cols)
{
    if (rows == 0 || cols == 0)
        return 0.0f;
    double total = 0.0;
    for (size_t r = 0; r < rows; r++) {
        const float *z = logits + r * cols;
        if (!label_ok(labels[r], cols))
            return NAN;
        total += row_logsumexp(z, cols) - z[labels[r]];
    }
    return (float)(total / (double)rows);
}

/* dL_r/dz_j = softmax(z)_j - [j == label] */
void nnrt_sparse_xent_logits_grad(float *dlogits, const float *logits, const int32_t *labels,
                                  size_t rows, size_t cols, float scale)
{
    if (cols == 0)
        return;
    for (size_t r = 0; r < rows; r++) {
        float *d = dlogits + r * cols;
        row_softmax(d, logits + r * cols, cols);
        for (size_t j = 0; j < cols; j++)
            d[j] *= scale;
        if (label_ok(labels[r], cols))
            d[labels[r]] -= scale;
    }
}

float nnrt_xent_logits(const float *logits, const float *onehot, size_t rows, size_t cols)
{
    if (rows == 0 || cols == 0)
        return 0.0f;
    double total = 0.0;
    for (size_t r = 0; r < rows; r++) {
        const float *z = logits + r * cols, *t = onehot + r * cols;
        double lse = row_logsumexp(z, cols);
        for (size_t j = 0; j < cols; j++)
            total += (double)t[j] * (lse - z[j]);
    }
    return (float)(total / (double)rows);
}

/* dL_r/dz_j = softmax(z)_j sum(t) - t_j, i.e. softmax - t for targets that
 * sum to one (one-hot or smoothed), which is what TensorFlow computes. */
void nnrt_xent_logits_grad(float *dlogits, const float *logits, const float *onehot,
                           size_t rows, size_t cols, float scale)
{
    if (cols == 0)
        return;
    for (size_t r = 0; r < rows; r++) {
        float *d = dlogits + r * cols;
        const float *t = onehot + r * cols;
        double sum_t = 0.0;
        for (size_t j = 0; j < cols; j++)
            sum_t += t[j];
        row_softmax(d, logits + r * cols, cols);
        float st = (float)sum_t;
        for (size_t j = 0; j < cols; j++)
            d[j] = scale * (d[j] * st - t[j]);
    }
}

/* ---- cross-entropy from probabilities --------------------------------- */

float nnrt_sparse_xent_probs(const float *p, const int32_t *labels, size_t rows, size_t cols)
{
    if (rows == 0 || cols == 0)
        return 0.0f;
    double total = 0.0;
    for (size_t r = 0; r < rows; r++) {
        const float *pr = p + r * cols;
        if (!label_ok(labels[r], cols))
            return NAN;
        double sum = 0.0;
        for (size_t j = 0; j < cols; j++)
            sum += clip_prob(pr[j]);
        total += log(sum) - logf(clip_prob(pr[labels[r]]));
    }
    return (float)(total / (double)rows);
}

/* With c = clip(p), S = sum c: dL_r/dp_j = pass_j (1/S - [j == label] / c_label). */
void nnrt_sparse_xent_probs_grad(float *dp, const float *p, const int32_t *labels,
                                 size_t rows, size_t cols, float scale)
{
    for (size_t r = 0; r < rows; r++) {
        const float *pr = p + r * cols;
        float *d = dp + r * cols;
        double sum = 0.0;
        for (size_t j = 0; j < cols; j++)
            sum += clip_prob(pr[j]);
        float g = (float)(scale / sum);
        for (size_t j = 0; j < cols; j++)
            d[j] = g * clip_pass(pr[j]);
        int32_t l = labels[r];
        if (label_ok(l, cols))
            d[l] -= clip_pass(pr[l]) * scale / clip_prob(pr[l]);
    }
}

float nnrt_xent_probs(const float *p, const float *t, size_t rows, size_t cols)
{
    if (rows == 0 || cols == 0)
        return 0.0f;
    double total = 0.0;
    for (size_t r = 0; r < rows; r++) {
        const float *pr = p + r * cols, *tr = t + r * cols;
        double s = 0.0;
        for (size_t j = 0; j < cols; j++)
            s += pr[j];
        float inv = (float)(1.0 / s);
        for (size_t j = 0; j < cols; j++)
            if (tr[j] != 0.0f)
                total -= (double)tr[j] * logf(clip_prob(pr[j] * inv));
    }
    return (float)(total / (double)rows);
}

/* With s = sum p, q = p/s, c = clip(q), g_j = -t_j pass_j / c_j:
 * dL_r/dp_j = (g_j - sum_i g_i q_i) / s. */
void nnrt_xent_probs_grad(float *dp, const float *p, const float *t, size_t rows, size_t cols, float scale)
{
    for (size_t r = 0; r < rows; r++) {
        const float *pr = p + r * cols, *tr = t + r * cols;
        float *d = dp + r * cols;
        double s = 0.0;
        for (size_t j = 0; j < cols; j++)
            s += pr[j];
        float inv = (float)(1.0 / s);
        double dot = 0.0;
        for (size_t j = 0; j < cols; j++) {
            float q = pr[j] * inv;
            float g = -tr[j] * clip_pass(q) / clip_prob(q);
            d[j] = g;
            dot += (double)g * q;
        }
        float k = (float)(scale / s), kdot = (float)(scale * dot / s);
        for (size_t j = 0; j < cols; j++)
            d[j] = k * d[j] - kdot;
    }
}

/* ---- binary cross-entropy --------------------------------------------- */

float nnrt_bxent_probs(const float *p, const float *t, size_t rows, size_t cols)
{
    if (rows == 0 || cols == 0)
        return 0.0f;
    double total = 0.0;
    for (size_t i = 0; i < rows * cols; i++) {
        float c = clip_prob(p[i]);
        total -= (double)t[i] * logf(c + EPS) + (1.0 - t[i]) * logf(1.0f - c + EPS);
    }
    return (float)(total / ((double)rows * (double)cols));
}

/* dL_r/dp = pass (-(t/(c+eps)) + (1-t)/(1-c+eps)) / cols */
void nnrt_bxent_probs_grad(float *dp, const float *p, const float *t, size_t rows, size_t cols, float scale)
{
    if (cols == 0)
        return;
    float k = scale / (float)cols;
    for (size_t i = 0; i < rows * cols; i++) {
        float c = clip_prob(p[i]);
        dp[i] = k * clip_pass(p[i]) * ((1.0f - t[i]) / (1.0f - c + EPS) - t[i] / (c + EPS));
    }
}

float nnrt_bxent_logits(const float *z, const float *t, size_t rows, size_t cols)
{
    if (rows == 0 || cols == 0)
        return 0.0f;
    double total = 0.0;
    for (size_t i = 0; i < rows * cols; i++) {
        float x = z[i];
        total += (x > 0.0f ? x : 0.0f) - x * t[i] + log1pf(expf(-fabsf(x)));
    }
    return (float)(total / ((double)rows * (double)cols));
}

/* dL_r/dz = (sigmoid(z) - t) / cols, sigmoid from exp(-|z|) so it never overflows. */
void nnrt_bxent_logits_grad(float *dz, const float *z, const float *t, size_t rows, size_t cols, float scale)
{
    if (cols == 0)
        return;
    float k = scale / (float)cols;
    for (size_t i = 0; i < rows * cols; i++) {
        float e = expf(-fabsf(z[i]));
        float sig = z[i] >= 0.0f ? 1.0f / (1.0f + e) : e / (1.0f + e);
        dz[i] = k * (sig - t[i]);
    }
}

/* ---- regression ------------------------------------------------------- */

float nnrt_mse(const float *p, const float *t, size_t rows, size_t cols)
{
    if (rows == 0 || cols == 0)
        return 0.0f;
    double total = 0.0;
    for (size_t i = 0; i < rows * cols; i++) {
        float e = p[i] - t[i];
        total += (double)e * e;
    }
    return (float)(total / ((double)rows * (double)cols));
}

/* dL_r/dp = 2 (p - t) / cols */
void nnrt_mse_grad(float *dp, const float *p, const float *t, size_t rows, size_t cols, float scale)
{
    if (cols == 0)
        return;
    float k = 2.0f * scale / (float)cols;
    for (size_t i = 0; i < rows * cols; i++)
        dp[i] = k * (p[i] - t[i]);
}

float nnrt_mae(const float *p, const float *t, size_t rows, size_t cols)
{
    if (rows == 0 || cols == 0)
        return 0.0f;
    double total = 0.0;
    for (size_t i = 0; i < rows * cols; i++)
        total += fabsf(p[i] - t[i]);
    return (float)(total / ((double)rows * (double)cols));
}

/* dL_r/dp = sign(p - t) / cols, sign(0) = 0 */
void nnrt_mae_grad(float *dp, const float *p, const float *t, size_t rows, size_t cols, float scale)
{
    if (cols == 0)
        return;
    float k = scale / (float)cols;
    for (size_t i = 0; i < rows * cols; i++)
        dp[i] = p[i] > t[i] ? k : p[i] < t[i] ? -k : 0.0f;
}

/* ---- metrics ---------------------------------------------------------- */

/* argmax(p) == label, the first maximum winning ties (tf.argmax). */
float nnrt_sparse_accuracy(const float *p, const int32_t *labels, size_t rows, size_t cols)
{
    if (rows == 0 || cols == 0)
        return 0.0f;
    size_t hits = 0;
    for (size_t r = 0; r < rows; r++)
        hits += label_ok(labels[r], cols) && argmax(p + r * cols, cols) == (size_t)labels[r];
    return (float)((double)hits / (double)rows);
}

/* argmax(p) == argmax(t) */
float nnrt_categorical_accuracy(const float *p, const float *t, size_t rows, size_t cols)
{
    if (rows == 0 || cols == 0)
        return 0.0f;
    size_t hits = 0;
    for (size_t r = 0; r < rows; r++)
        hits += argmax(p + r * cols, cols) == argmax(t + r * cols, cols);
    return (float)((double)hits / (double)rows);
}

/* Keras: t == (p > threshold ? 1 : 0), exact equality, so a soft target
 * (0 < t < 1) never matches; mean over all elements. */
float nnrt_binary_accuracy(const float *p, const float *t, size_t rows, size_t cols, float threshold)
{
    if (rows == 0 || cols == 0)
        return 0.0f;
    size_t hits = 0;
    for (size_t i = 0; i < rows * cols; i++)
        hits += t[i] == (p[i] > threshold ? 1.0f : 0.0f);
    return (float)((double)hits / ((double)rows * (double)cols));
}

/* ---- dropout ---------------------------------------------------------- */

/* Keep where u >= rate (tf.nn.dropout). One uniform per element whatever the
 * rate, so the stream position depends only on n. */
void nnrt_dropout_mask(float *mask, size_t n, float rate, NnrtRng *r)
{
    float keep = rate < 1.0f ? (float)(1.0 / (1.0 - (double)rate)) : 0.0f;
    for (size_t i = 0; i < n; i++)
        mask[i] = nnrt_rng_uniform(r) >= (double)rate ? keep : 0.0f;
}

float nnrt_last_time_step_mse(const float *p, const float *t, size_t batch, size_t steps, size_t cols)
{
    double sum = 0;
    for (size_t b = 0; b < batch; b++) {
        const float *pl = p + (b * steps + steps - 1) * cols, *tl = t + (b * steps + steps - 1) * cols;
        for (size_t c = 0; c < cols; c++) {
            double d = (double)pl[c] - tl[c];
            sum += d * d;
        }
    }
    return batch && cols ? (float)(sum / (double)(batch * cols)) : 0.0f;
}

float nnrt_huber(const float *p, const float *t, size_t rows, size_t cols, float delta)
{
    double sum = 0;
    for (size_t i = 0; i < rows * cols; i++) {
        double e = fabs((double)p[i] - t[i]);
        sum += e <= delta ? 0.5 * e * e : delta * (e - 0.5 * delta);
    }
    return rows && cols ? (float)(sum / (double)cols / (double)rows) : 0.0f;
}

void nnrt_huber_grad(float *dp, const float *p, const float *t, size_t rows, size_t cols, float scale, float delta)
{
    const float s = scale / (float)cols;
    for (size_t i = 0; i < rows * cols; i++) {
        float e = p[i] - t[i];
        dp[i] = s * (e > delta ? delta : e < -delta ? -delta : e);
    }
}

void nnrt_dropout_mask_steps(float *mask, size_t batch, size_t steps, size_t features, float rate, NnrtRng *r)
{
    for (size_t b = 0; b < batch; b++) {
        float *first = mask + b * steps * features;
        nnrt_dropout_mask(first, features, rate, r);
        for (size_t t = 1; t < steps; t++)
            memcpy(first + t * features, first, features * sizeof(float));
    }
}
