/* norm.c — batch normalization over all axes but the last.
 *
 * x is viewed as (rows, c), row-major. Training normalizes with the batch
 * statistics, kept as stats (2, c): the mean, then inv = 1/sqrt(var + eps)
 * with the biased variance (sum of squared deviations / rows, two passes,
 * sums in double). With xhat = (x - mean) * inv:
 *   forward          y      = gamma * xhat + beta
 *   backward input   dx     = gamma * inv / rows * (rows*dy - sum(dy) - xhat * sum(dy*xhat))
 *   backward gamma   dgamma = beta * dgamma + sum(dy * xhat)
 * (sums over rows, per channel; dx is the full derivative, through the
 * batch statistics). The moving update recovers the batch variance as
 * 1/inv^2 - eps, clamped at 0 (rounding can push a zero variance below), and
 * applies Keras' assign_moving_average: moving -= (moving - batch) *
 * (1 - momentum). Inference normalizes with the moving statistics, or,
 * folded into the Conv/Dense before it, turns them (and that layer's bias)
 * into one scale and shift per channel that the generated code applies.
 * gamma and beta may be NULL (Keras scale/center false): 1 and 0.
 *
 * Per-channel sums need one accumulator per channel; with no workspace in
 * the interface, channels are processed in blocks of NORM_BLOCK with the
 * accumulators on the stack, each block a pass over the rows that reads
 * NORM_BLOCK contiguous floats per row. No allocation, no global state.
 */
#include <math.h>
#include <string.h>

#include "nnrt.h"

enum { NORM_BLOCK = 128 };       /* channels per pass: stack accumulators */

void nnrt_bn_stats(float *stats, const float *x, size_t rows, size_t c, float eps)
{
    float *mean_out = stats, *inv_out = stats + c;
    for (size_t j0 = 0; j0 < c; j0 += NORM_BLOCK) {
        size_t nb = c - j0 < NORM_BLOCK ? c - j0 : NORM_BLOCK;
        double sum[NORM_BLOCK] = {0}, sq[NORM_BLOCK] = {0}, mean[NORM_BLOCK];
        for (size_t r = 0; r < rows; r++) {
            const float *row = x + r * c + j0;
            for (size_t j = 0; j < nb; j++)
                sum[j] += row[j];
        }
        for (size_t j = 0; j < nb; j++)
            mean[j] = rows ? sum[j] / (double)rows : 0.0;
        for (size_t r = 0; r < rows; r++) {
            const float *row = x + r * c + j0;
            for (size_t j = 0; j < nb; j++) {
                double d = row[j] - mean[j];
                sq[j] += d * d;
            }
        }
        for (size_t j = 0; j < nb; j++) {
            double var = rows ? sq[j] / (double)rows : 0.0;
            mean_out[j0 + j] = (float)mean[j];
            inv_out[j0 + j] = (float)(1.0 / sqrt(var + (double)eps));
        }
    }
}

/* y = (x - mean) * scale + shift per channel; the common loop of forward and inference. */
static void affine(float *y, const float *x, const float *mean, const float *scale, const float *shift,
                   size_t rows, size_t c, size_t j0, size_t nb)
{
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * c + j0;
        float *yr = y + r * c + j0;
        for (size_t j = 0; j < nb; j++)
            yr[j] = (xr[j] - mean[j]) * scale[j] + shift[j];
    }
}

void nnrt_bn_forward(float *y, const float *x, const float *stats, const float *gamma, const float *beta,
                     size_t rows, size_t c)
{
    const float *mean = stats, *inv = stats + c;
    for (size_t j0 = 0; j0 < c; j0 += NORM_BLOCK) {
        size_t nb = c - j0 < NORM_BLOCK ? c - j0 : NORM_BLOCK;
        float scale[NORM_BLOCK], shift[NORM_BLOCK];
        for (size_t j = 0; j < nb; j++) {
            scale[j] = gamma ? gamma[j0 + j] * inv[j0 + j] : inv[j0 + j];
            shift[j] = beta ? beta[j0 + j] : 0.0f;
        }
        affine(y, x, mean + j0, scale, shift, rows, c, j0, nb);
    }
}

void nnrt_bn_moving_update(float *moving_mean, float *moving_var, const float *stats, size_t c,
                           float momentum, float eps)
{
    const float *mean = stats, *inv = stats + c;
    const float decay = 1.0f - momentum;
    for (size_t j = 0; j < c; j++) {
        double var = 1.0 / ((double)inv[j] * inv[j]) - (double)eps;
        float batch_var = var > 0.0 ? (float)var : 0.0f;
        moving_mean[j] -= (moving_mean[j] - mean[j]) * decay;
        moving_var[j] -= (moving_var[j] - batch_var) * decay;
    }
}

void nnrt_bn_inference(float *y, const float *x, const float *gamma, const float *beta, const float *mean,
                       const float *var, size_t rows, size_t c, float eps)
{
    for (size_t j0 = 0; j0 < c; j0 += NORM_BLOCK) {
        size_t nb = c - j0 < NORM_BLOCK ? c - j0 : NORM_BLOCK;
        float scale[NORM_BLOCK], shift[NORM_BLOCK], zero[NORM_BLOCK] = {0};
        for (size_t j = 0; j < nb; j++) {
            float inv = (float)(1.0 / sqrt((double)var[j0 + j] + (double)eps));
            scale[j] = gamma ? gamma[j0 + j] * inv : inv;
            shift[j] = beta ? beta[j0 + j] : 0.0f;
        }
        affine(y, x, mean ? mean + j0 : zero, scale, shift, rows, c, j0, nb);
    }
}

void nnrt_bn_fold(float *ss, const float *gamma, const float *beta, const float *mean, const float *var,
                  const float *bias, size_t c, float eps)
{
    for (size_t j = 0; j < c; j++) {
        double scale = 1.0 / sqrt((double)var[j] + (double)eps) * (gamma ? (double)gamma[j] : 1.0);
        double shift = ((bias ? (double)bias[j] : 0.0) - (double)mean[j]) * scale + (beta ? (double)beta[j] : 0.0);
        ss[j] = (float)scale;
        ss[c + j] = (float)shift;
    }
}

/* Per-channel sum(dy) and sum(dy * xhat) of channels [j0, j0+nb), in double. */
static void dy_sums(double *sum_dy, double *sum_dy_xhat, const float *dy, const float *x, const float *mean,
                    const float *inv, size_t rows, size_t c, size_t j0, size_t nb)
{
    memset(sum_dy, 0, nb * sizeof *sum_dy);
    memset(sum_dy_xhat, 0, nb * sizeof *sum_dy_xhat);
    for (size_t r = 0; r < rows; r++) {
        const float *dyr = dy + r * c + j0, *xr = x + r * c + j0;
        for (size_t j = 0; j < nb; j++) {
            double xhat = ((double)xr[j] - mean[j]) * inv[j];
            sum_dy[j] += dyr[j];
            sum_dy_xhat[j] += dyr[j] * xhat;
        }
    }
}

void nnrt_bn_backward_input(float *dx, const float *dy, const float *x, const float *stats, const float *gamma,
                            size_t rows, size_t c)
{
    const float *mean = stats, *inv = stats + c;
    for (size_t j0 = 0; j0 < c; j0 += NORM_BLOCK) {
        size_t nb = c - j0 < NORM_BLOCK ? c - j0 : NORM_BLOCK;
        double sum_dy[NORM_BLOCK], sum_dy_xhat[NORM_BLOCK];
        dy_sums(sum_dy, sum_dy_xhat, dy, x, mean + j0, inv + j0, rows, c, j0, nb);
        /* dx = scale * (dy - mean(dy) - xhat * mean(dy*xhat)), scale = gamma * inv */
        float scale[NORM_BLOCK], mean_dy[NORM_BLOCK], mean_dy_xhat[NORM_BLOCK];
        for (size_t j = 0; j < nb; j++) {
            scale[j] = gamma ? gamma[j0 + j] * inv[j0 + j] : inv[j0 + j];
            mean_dy[j] = (float)(sum_dy[j] / (double)rows);
            mean_dy_xhat[j] = (float)(sum_dy_xhat[j] / (double)rows);
        }
        const float *m = mean + j0, *iv = inv + j0;
        for (size_t r = 0; r < rows; r++) {
            const float *dyr = dy + r * c + j0, *xr = x + r * c + j0;
            float *dxr = dx + r * c + j0;
            for (size_t j = 0; j < nb; j++) {
                float xhat = (xr[j] - m[j]) * iv[j];
                dxr[j] = scale[j] * (dyr[j] - mean_dy[j] - xhat * mean_dy_xhat[j]);
            }
        }
    }
}

void nnrt_bn_backward_gamma(float *dgamma, const float *dy, const float *x, const float *stats, size_t rows,
                            size_t c, float beta)
{
    const float *mean = stats, *inv = stats + c;
    for (size_t j0 = 0; j0 < c; j0 += NORM_BLOCK) {
        size_t nb = c - j0 < NORM_BLOCK ? c - j0 : NORM_BLOCK;
        double sum_dy[NORM_BLOCK], sum_dy_xhat[NORM_BLOCK];
        dy_sums(sum_dy, sum_dy_xhat, dy, x, mean + j0, inv + j0, rows, c, j0, nb);
        for (size_t j = 0; j < nb; j++) {
            float prev = beta == 0.0f ? 0.0f : beta * dgamma[j0 + j];
            dgamma[j0 + j] = prev + (float)sum_dy_xhat[j];
        }
    }
}
