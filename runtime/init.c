/* init.c — Keras (tf.keras 2.x) weight initializers.
 *
 * nnrt_init_fill draws prod(shape) floats in row-major order, computing in
 * double and rounding once to float. Fans follow Keras' _compute_fans:
 * rank 0 gives (1, 1), rank 1 (shape[0], shape[0]), rank 2 (shape[0],
 * shape[1]), rank > 2 multiplies (shape[-2], shape[-1]) by the receptive
 * field prod(shape[:-2]). variance_scaling divides scale by
 * n = max(1, fan) for the chosen mode and draws from
 *   truncated_normal: stddev sqrt(scale/n)/0.87962566103423978 (the stddev
 *                     of a unit normal truncated at ±2), truncated at ±2 stddev;
 *   untruncated_normal: stddev sqrt(scale/n);
 *   uniform: U(-limit, limit), limit = sqrt(3 scale/n).
 * Truncation redraws a sample until it falls inside (as
 * tf.random.truncated_normal does), so the bounds hold exactly.
 * orthogonal flattens the shape to (rows = prod(shape[:-1]), cols =
 * shape[-1]), draws a normal (max, min) matrix, takes its thin QR by
 * Householder reflections in double, multiplies column j of Q by
 * sign(R[j][j]) (making the factorization unique, so the result does not
 * depend on the Householder sign convention), transposes when rows < cols
 * and scales by the gain. The outcome has orthonormal columns (rows >= cols)
 * or rows (rows < cols). The stream of draws differs from TensorFlow's;
 * only the distributions match.
 */
#include <math.h>
#include <stdlib.h>

#include "nnrt.h"

/* The stddev of a unit normal truncated to [-2, 2], the constant Keras uses. */
#define TRUNCATION_STDDEV 0.87962566103423978

static void compute_fans(int rank, const int64_t *shape, double *fan_in, double *fan_out)
{
    if (rank < 1) {
        *fan_in = *fan_out = 1.0;
    } else if (rank == 1) {
        *fan_in = *fan_out = (double)shape[0];
    } else {
        double receptive = 1.0;
        for (int i = 0; i < rank - 2; i++)
            receptive *= (double)shape[i];
        *fan_in = (double)shape[rank - 2] * receptive;
        *fan_out = (double)shape[rank - 1] * receptive;
    }
}

/* A unit normal redrawn until it lies in [-2, 2]. */
static double truncated_normal(NnrtRng *r)
{
    double z;
    do
        z = nnrt_rng_normal(r);
    while (fabs(z) > 2.0);
    return z;
}

/* Keras Orthogonal on a (rows, cols) flattening of w; see the file comment.
 * Householder vector k (unit norm, length m-k) is kept in a[k.., k]. */
static int fill_orthogonal(float *w, size_t rows, size_t cols, double gain, NnrtRng *r)
{
    size_t m = rows > cols ? rows : cols;
    size_t n = rows > cols ? cols : rows;
    double *a = malloc((2 * m * n + 2 * n) * sizeof *a);
    if (!a)
        return NNRT_ENOMEM;
    double *q = a + m * n;       /* (m, n) thin Q */
    double *rdiag = q + m * n;   /* (n) diagonal of R */
    double *work = rdiag + n;    /* (n) v^T times the trailing columns */

    for (size_t i = 0; i < m * n; i++)
        a[i] = nnrt_rng_normal(r);

    for (size_t k = 0; k < n; k++) {
        double norm2 = 0.0;
        for (size_t i = k; i < m; i++)
            norm2 += a[i * n + k] * a[i * n + k];
        double norm = sqrt(norm2);
        if (norm == 0.0) {       /* zero column: H_k = I, R[k][k] = 0 */
            rdiag[k] = 0.0;
            continue;
        }
        /* alpha has the opposite sign of x0 so v0 = x0 - alpha cannot cancel. */
        double x0 = a[k * n + k];
        double alpha = x0 >= 0.0 ? -norm : norm;
        rdiag[k] = alpha;
        a[k * n + k] = x0 - alpha;
        double vnorm = sqrt(2.0 * norm * (norm + fabs(x0)));  /* |x - alpha e1| */
        for (size_t i = k; i < m; i++)
            a[i * n + k] /= vnorm;
        /* A[k.., k+1..] -= 2 v (v^T A[k.., k+1..]) */
        for (size_t j = k + 1; j < n; j++)
            work[j] = 0.0;
        for (size_t i = k; i < m; i++) {
            double vi = a[i * n + k];
            for (size_t j = k + 1; j < n; j++)
                work[j] += vi * a[i * n + j];
        }
        for (size_t i = k; i < m; i++) {
            double vi2 = 2.0 * a[i * n + k];
            for (size_t j = k + 1; j < n; j++)
                a[i * n + j] -= vi2 * work[j];
        }
    }

    /* Q = H_0 H_1 ... H_{n-1} I[:, :n], applied right to left. Columns j < k
     * are still e_j there, untouched by H_k, so only j >= k are updated. */
    for (size_t i = 0; i < m * n; i++)
        q[i] = 0.0;
    for (size_t j = 0; j < n; j++)
        q[j * n + j] = 1.0;
    for (size_t k = n; k-- > 0;) {
        if (rdiag[k] == 0.0)
            continue;
        for (size_t j = k; j < n; j++)
            work[j] = 0.0;
        for (size_t i = k; i < m; i++) {
            double vi = a[i * n + k];
            for (size_t j = k; j < n; j++)
                work[j] += vi * q[i * n + j];
        }
        for (size_t i = k; i < m; i++) {
            double vi2 = 2.0 * a[i * n + k];
            for (size_t j = k; j < n; j++)
                q[i * n + j] -= vi2 * work[j];
        }
    }

    /* q *= sign(diag(r)) (tf.sign(0) = 0), times the gain. */
    for (size_t j = 0; j < n; j++)
        work[j] = rdiag[j] > 0.0 ? gain : rdiag[j] < 0.0 ? -gain : 0.0;
    if (rows >= cols) {
        for (size_t i = 0; i < rows; i++)
            for (size_t j = 0; j < cols; j++)
                w[i * cols + j] = (float)(q[i * n + j] * work[j]);
    } else {
        for (size_t i = 0; i < rows; i++)
            for (size_t j = 0; j < cols; j++)
                w[i * cols + j] = (float)(q[j * n + i] * work[i]);
    }
    free(a);
    return NNRT_OK;
}

int nnrt_init_fill(float *w, int rank, const int64_t *shape, const NnrtInit *init, NnrtRng *r)
{
    if (!init || !r || rank < 0 || rank > NNRT_MAX_RANK || (rank > 0 && !shape))
        return NNRT_EINVAL;
    size_t count = 1;
    for (int i = 0; i < rank; i++) {
        if (shape[i] < 0)
            return NNRT_EINVAL;
        size_t d = (size_t)shape[i];
        if (d != 0 && count > SIZE_MAX / sizeof(double) / 2 / d)
            return NNRT_EINVAL;
        count *= d;
    }
    if (count == 0)
        return NNRT_OK;
    if (!w)
        return NNRT_EINVAL;

    switch (init->kind) {
    case NNRT_INIT_CONSTANT:
        for (size_t i = 0; i < count; i++)
            w[i] = (float)init->a;
        return NNRT_OK;
    case NNRT_INIT_RANDOM_NORMAL:
        for (size_t i = 0; i < count; i++)
            w[i] = (float)(init->a + init->b * nnrt_rng_normal(r));
        return NNRT_OK;
    case NNRT_INIT_RANDOM_UNIFORM:
        for (size_t i = 0; i < count; i++)
            w[i] = (float)(init->a + (init->b - init->a) * nnrt_rng_uniform(r));
        return NNRT_OK;
    case NNRT_INIT_TRUNCATED_NORMAL:
        for (size_t i = 0; i < count; i++)
            w[i] = (float)(init->a + init->b * truncated_normal(r));
        return NNRT_OK;
    case NNRT_INIT_VARIANCE_SCALING: {
        double fan_in, fan_out, n = 1.0;
        compute_fans(rank, shape, &fan_in, &fan_out);
        switch (init->mode) {
        case NNRT_FAN_IN: n = fan_in; break;
        case NNRT_FAN_OUT: n = fan_out; break;
        case NNRT_FAN_AVG: n = (fan_in + fan_out) / 2.0; break;
        }
        double scale = init->a / (n > 1.0 ? n : 1.0);
        switch (init->distribution) {
        case NNRT_DIST_TRUNCATED_NORMAL: {
            double stddev = sqrt(scale) / TRUNCATION_STDDEV;
            for (size_t i = 0; i < count; i++)
                w[i] = (float)(stddev * truncated_normal(r));
            return NNRT_OK;
        }
        case NNRT_DIST_UNTRUNCATED_NORMAL: {
            double stddev = sqrt(scale);
            for (size_t i = 0; i < count; i++)
                w[i] = (float)(stddev * nnrt_rng_normal(r));
            return NNRT_OK;
        }
        case NNRT_DIST_UNIFORM: {
            double limit = sqrt(3.0 * scale);
            for (size_t i = 0; i < count; i++)
                w[i] = (float)(limit * (2.0 * nnrt_rng_uniform(r) - 1.0));
            return NNRT_OK;
        }
        }
        return NNRT_EINVAL;
    }
    case NNRT_INIT_ORTHOGONAL: {
        if (rank < 2)            /* Keras: "only for shapes of rank at least 2" */
            return NNRT_EINVAL;
        size_t cols = (size_t)shape[rank - 1];
        return fill_orthogonal(w, count / cols, cols, init->a, r);
    }
    }
    return NNRT_EINVAL;
}
