/* conv.c — convolution and pooling over channels-last tensors.
 *
 * Convolution is im2col + GEMM. For a group of n samples, im2col writes the
 * matrix cols (n*oh*ow, kh*kw*c) whose row (s, oy, ox) holds the window of
 * output cell (oy, ox) in the order (ky, kx, channel); that is the order of
 * the Keras kernel (kh, kw, c, f), which is therefore already the
 * (kh*kw*c, f) matrix and
 *   forward          y  (n*oh*ow, f)     = cols @ k
 *   backward input   dx = col2im(dy @ k^T), a scatter-add into zeroed dx
 *   backward kernel  dk = beta*dk + sum over groups of cols^T @ dy
 * Input cell of (oy, ky) is iy = oy*sh - pt + ky*dh (likewise x); cells
 * outside [0,h)x[0,w) are zero in cols and receive nothing in col2im. The
 * valid range of ky (and kx) is computed once per output row (column), so
 * the inner loops only copy or add runs of contiguous floats: one run of
 * kw*c floats per kernel row when dw == 1, else c per cell.
 *
 * The workspace holds cols for as many whole samples as fit in ws_floats
 * (at least one: asserted); more samples per group means fewer, larger
 * GEMMs. A pointwise convolution (1x1 kernel, stride 1, no padding) needs no
 * im2col: x viewed as (B*h*w, c) is already cols, and its workspace is 0.
 *
 * Pooling walks the same windows with the same valid ranges, channels
 * innermost: max pooling ignores cells outside x, average pooling divides by
 * the number of cells inside x (Keras "same"); a window with no cell inside
 * x cannot arise from Keras shapes and is asserted against. Max pooling's
 * backward gives dy to the first cell (in window order) equal to y, which is
 * the first maximum the forward found.
 *
 * Depthwise convolution (Keras DepthwiseConv2D, kernel (kh, kw, c, dm))
 * has too little work per output for im2col + GEMM to pay: direct loops
 * over the same valid window ranges, the c * dm output channels innermost
 * and contiguous, so each window cell is one vectorizable run
 * y[ci*dm + m] += x[ci] k[ky, kx, ci, m]. Its backward runs the same walk:
 * dx[ci] += dy[ci*dm + m] k[..] and dk[..] += x[ci] dy[ci*dm + m].
 *
 * Invariants: no allocation, no global state; every output is written
 * whole (dx zeroed before scatter-adds); shapes in the descriptor are
 * trusted to be consistent (oh, ow as Keras computes them).
 */
#include <assert.h>
#include <string.h>

#include "nnrt.h"

/* Valid window offsets [*lo, *hi) of output index o along one axis: those t
 * in [0, k) with 0 <= o*stride - pad + t*dil < in. Empty ranges give lo == hi. */
static void window_range(int o, int stride, int pad, int dil, int k, int in, int *lo, int *hi)
{
    int first = o * stride - pad;        /* input index of t = 0 */
    int l = first >= 0 ? 0 : (-first + dil - 1) / dil;
    int h = first > in - 1 ? 0 : (in - 1 - first) / dil + 1;
    if (h > k)
        h = k;
    if (l > h)
        l = h;
    *lo = l;
    *hi = h;
}

static void check_descriptor(const NnrtConv *c)
{
    assert(c && c->h > 0 && c->w > 0 && c->c > 0 && c->f > 0);
    assert(c->kh > 0 && c->kw > 0 && c->sh > 0 && c->sw > 0 && c->dh > 0 && c->dw > 0);
    assert(c->pt >= 0 && c->pl >= 0 && c->oh > 0 && c->ow > 0);
    (void)c;
}

static int is_pointwise(const NnrtConv *c)
{
    return c->kh == 1 && c->kw == 1 && c->sh == 1 && c->sw == 1 && c->pt == 0 && c->pl == 0 &&
           c->oh == c->h && c->ow == c->w;
}

/* floats of cols per sample: (oh*ow, kh*kw*c) */
static size_t cols_per_sample(const NnrtConv *c)
{
    return (size_t)c->oh * c->ow * c->kh * c->kw * c->c;
}

size_t nnrt_conv_workspace(const NnrtConv *c, size_t samples)
{
    check_descriptor(c);
    return is_pointwise(c) ? 0 : samples * cols_per_sample(c);
}

/* Samples per GEMM group: as many as the workspace holds, at most B. */
static int group_size(const NnrtConv *c, int B, size_t ws_floats)
{
    size_t fit = ws_floats / cols_per_sample(c);
    assert(fit >= 1 && "conv workspace smaller than nnrt_conv_workspace(c, 1)");
    return fit < (size_t)B ? (int)fit : B;
}

/* cols (n*oh*ow, kh*kw*c) from x (n, h, w, c). */
static void im2col(float *cols, const float *x, const NnrtConv *c, int n)
{
    const size_t ch = (size_t)c->c, krow = (size_t)c->kw * ch;
    for (int s = 0; s < n; s++) {
        const float *xs = x + (size_t)s * c->h * c->w * ch;
        for (int oy = 0; oy < c->oh; oy++) {
            int ky_lo, ky_hi;
            window_range(oy, c->sh, c->pt, c->dh, c->kh, c->h, &ky_lo, &ky_hi);
            for (int ox = 0; ox < c->ow; ox++) {
                int kx_lo, kx_hi;
                window_range(ox, c->sw, c->pl, c->dw, c->kw, c->w, &kx_lo, &kx_hi);
                int ix0 = ox * c->sw - c->pl;
                for (int ky = 0; ky < c->kh; ky++, cols += krow) {
                    if (ky < ky_lo || ky >= ky_hi) {
                        memset(cols, 0, krow * sizeof *cols);
                        continue;
                    }
                    const float *xrow = xs + (size_t)(oy * c->sh - c->pt + ky * c->dh) * c->w * ch;
                    memset(cols, 0, (size_t)kx_lo * ch * sizeof *cols);
                    if (c->dw == 1) {
                        memcpy(cols + kx_lo * ch, xrow + (size_t)(ix0 + kx_lo) * ch,
                               (size_t)(kx_hi - kx_lo) * ch * sizeof *cols);
                    } else {
                        for (int kx = kx_lo; kx < kx_hi; kx++)
                            memcpy(cols + kx * ch, xrow + (size_t)(ix0 + kx * c->dw) * ch,
                                   ch * sizeof *cols);
                    }
                    memset(cols + kx_hi * ch, 0, (size_t)(c->kw - kx_hi) * ch * sizeof *cols);
                }
            }
        }
    }
}

/* d[0..n) += v[0..n). Unrolled by 8 so that -O2 (GCC's very-cheap
 * vectorizer skips loops of unknown trip count) still emits SIMD adds. */
static inline void add_run(float *restrict d, const float *restrict v, size_t n)
{
    size_t j = 0;
    for (; j + 8 <= n; j += 8) {
        d[j + 0] += v[j + 0], d[j + 1] += v[j + 1], d[j + 2] += v[j + 2], d[j + 3] += v[j + 3];
        d[j + 4] += v[j + 4], d[j + 5] += v[j + 5], d[j + 6] += v[j + 6], d[j + 7] += v[j + 7];
    }
    for (; j < n; j++)
        d[j] += v[j];
}

/* dx (n, h, w, c) += col2im(cols): every window entry added back to its cell. */
static void col2im_add(float *dx, const float *cols, const NnrtConv *c, int n)
{
    const size_t ch = (size_t)c->c, krow = (size_t)c->kw * ch;
    for (int s = 0; s < n; s++) {
        float *dxs = dx + (size_t)s * c->h * c->w * ch;
        for (int oy = 0; oy < c->oh; oy++) {
            int ky_lo, ky_hi;
            window_range(oy, c->sh, c->pt, c->dh, c->kh, c->h, &ky_lo, &ky_hi);
            for (int ox = 0; ox < c->ow; ox++) {
                int kx_lo, kx_hi;
                window_range(ox, c->sw, c->pl, c->dw, c->kw, c->w, &kx_lo, &kx_hi);
                int ix0 = ox * c->sw - c->pl;
                for (int ky = 0; ky < c->kh; ky++, cols += krow) {
                    if (ky < ky_lo || ky >= ky_hi)
                        continue;
                    float *dxrow = dxs + (size_t)(oy * c->sh - c->pt + ky * c->dh) * c->w * ch;
                    if (c->dw == 1) {
                        add_run(dxrow + (size_t)(ix0 + kx_lo) * ch, cols + kx_lo * ch,
                                (size_t)(kx_hi - kx_lo) * ch);
                    } else {
                        for (int kx = kx_lo; kx < kx_hi; kx++)
                            add_run(dxrow + (size_t)(ix0 + kx * c->dw) * ch, cols + kx * ch, ch);
                    }
                }
            }
        }
    }
}

void nnrt_conv_forward(float *y, const float *x, const float *k, const NnrtConv *c, int B,
                       float *ws, size_t ws_floats)
{
    nnrt_conv_forward_epilogue(y, x, k, c, B, ws, ws_floats, NULL);
}

/* y rows (the GEMM a (rows, K) @ k (K, f)) in blocks, each followed by its epilogue; row0: of y's first row */
static void gemm_blocks(float *y, const float *a, int lda, const float *k, const NnrtConv *c, int rows, int K,
                        size_t row0, const NnrtEpilogue *epi)
{
    const int block = epi ? NNRT_EPILOGUE_ROWS(c->f) : rows;
    for (int r = 0; r < rows; r += block) {
        int n = rows - r < block ? rows - r : block;
        nnrt_gemm(0, 0, n, c->f, K, 1.0f, a + (size_t)r * lda, lda, k, c->f, 0.0f, y + (size_t)r * c->f, c->f);
        if (epi)
            epi->apply(epi, row0 + (size_t)r, (size_t)n);
    }
}

void nnrt_conv_forward_epilogue(float *y, const float *x, const float *k, const NnrtConv *c, int B,
                                float *ws, size_t ws_floats, const NnrtEpilogue *epi)
{
    check_descriptor(c);
    if (B <= 0)
        return;
    const int K = c->kh * c->kw * c->c, pix = c->oh * c->ow;
    if (is_pointwise(c)) {
        gemm_blocks(y, x, c->c, k, c, B * pix, c->c, 0, epi);
        return;
    }
    const size_t in_size = (size_t)c->h * c->w * c->c, out_size = (size_t)pix * c->f;
    const int group = group_size(c, B, ws_floats);
    for (int s = 0; s < B; s += group) {
        int n = B - s < group ? B - s : group;
        im2col(ws, x + s * in_size, c, n);
        gemm_blocks(y + s * out_size, ws, K, k, c, n * pix, K, (size_t)s * pix, epi);
    }
}

void nnrt_conv_backward_input(float *dx, const float *dy, const float *k, const NnrtConv *c, int B,
                              float *ws, size_t ws_floats)
{
    check_descriptor(c);
    if (B <= 0)
        return;
    const int K = c->kh * c->kw * c->c, pix = c->oh * c->ow;
    if (is_pointwise(c)) {
        nnrt_gemm(0, 1, B * pix, c->c, c->f, 1.0f, dy, c->f, k, c->f, 0.0f, dx, c->c);
        return;
    }
    const size_t in_size = (size_t)c->h * c->w * c->c, out_size = (size_t)pix * c->f;
    const int group = group_size(c, B, ws_floats);
    memset(dx, 0, (size_t)B * in_size * sizeof *dx);
    for (int s = 0; s < B; s += group) {
        int n = B - s < group ? B - s : group;
        nnrt_gemm(0, 1, n * pix, K, c->f, 1.0f, dy + s * out_size, c->f, k, c->f, 0.0f, ws, K);
        col2im_add(dx + s * in_size, ws, c, n);
    }
}

void nnrt_conv_backward_kernel(float *dk, const float *x, const float *dy, const NnrtConv *c, int B,
                               float beta, float *ws, size_t ws_floats)
{
    check_descriptor(c);
    const int K = c->kh * c->kw * c->c, pix = c->oh * c->ow;
    if (B <= 0) {                /* empty batch: dk = beta * dk (beta 0 overwrites, as BLAS) */
        size_t n = (size_t)K * c->f;
        for (size_t i = 0; i < n; i++)
            dk[i] = beta == 0.0f ? 0.0f : beta * dk[i];
        return;
    }
    if (is_pointwise(c)) {
        nnrt_gemm(1, 0, c->c, c->f, B * pix, 1.0f, x, c->c, dy, c->f, beta, dk, c->f);
        return;
    }
    const size_t in_size = (size_t)c->h * c->w * c->c, out_size = (size_t)pix * c->f;
    const int group = group_size(c, B, ws_floats);
    for (int s = 0; s < B; s += group) {
        int n = B - s < group ? B - s : group;
        im2col(ws, x + s * in_size, c, n);
        nnrt_gemm(1, 0, K, c->f, n * pix, 1.0f, ws, K, dy + s * out_size, c->f,
                  s == 0 ? beta : 1.0f, dk, c->f);
    }
}

/* ---- pooling ------------------------------------------------------------ */

static void check_pool(const NnrtConv *p)
{
    check_descriptor(p);
    assert(p->f == p->c && "pooling keeps the channels: f == c");
}

/* Max or average over each window's real (unpadded) cells; the window walk
 * is shared, the combining loop chosen per window, outside the channels. */
static void pool_forward(float *y, const float *x, const NnrtConv *p, int B, int average)
{
    check_pool(p);
    const size_t ch = (size_t)p->c;
    for (int s = 0; s < B; s++) {
        const float *xs = x + (size_t)s * p->h * p->w * ch;
        for (int oy = 0; oy < p->oh; oy++) {
            int ky_lo, ky_hi;
            window_range(oy, p->sh, p->pt, p->dh, p->kh, p->h, &ky_lo, &ky_hi);
            for (int ox = 0; ox < p->ow; ox++, y += ch) {
                int kx_lo, kx_hi;
                window_range(ox, p->sw, p->pl, p->dw, p->kw, p->w, &kx_lo, &kx_hi);
                assert(ky_lo < ky_hi && kx_lo < kx_hi && "pooling window outside the input");
                int iy0 = oy * p->sh - p->pt, ix0 = ox * p->sw - p->pl;
                if (average)
                    memset(y, 0, ch * sizeof *y);
                else  /* the first real cell */
                    memcpy(y, xs + ((size_t)(iy0 + ky_lo * p->dh) * p->w + ix0 + kx_lo * p->dw) * ch,
                           ch * sizeof *y);
                for (int ky = ky_lo; ky < ky_hi; ky++) {
                    for (int kx = kx_lo; kx < kx_hi; kx++) {
                        const float *v = xs + ((size_t)(iy0 + ky * p->dh) * p->w + ix0 + kx * p->dw) * ch;
                        if (average)
                            for (size_t j = 0; j < ch; j++)
                                y[j] += v[j];
                        else
                            for (size_t j = 0; j < ch; j++)
                                y[j] = v[j] > y[j] ? v[j] : y[j];
                    }
                }
                if (average) {
                    float count = (float)((ky_hi - ky_lo) * (kx_hi - kx_lo));
                    for (size_t j = 0; j < ch; j++)
                        y[j] /= count;
                }
            }
        }
    }
}

/* ---- depthwise ----------------------------------------------------------------- */

/* Calls cell(ctx, b, oy, ox, iy, ix, ky, kx) for every output cell and every
 * kernel cell of its window inside x. */
typedef void (*DepthwiseCell)(void *ctx, int b, int oy, int ox, int iy, int ix, int ky, int kx);

static void depthwise_walk(const NnrtConv *c, int B, DepthwiseCell cell, void *ctx)
{
    for (int b = 0; b < B; b++)
        for (int oy = 0; oy < c->oh; oy++) {
            int ky0, ky1;
            window_range(oy, c->sh, c->pt, c->dh, c->kh, c->h, &ky0, &ky1);
            for (int ox = 0; ox < c->ow; ox++) {
                int kx0, kx1;
                window_range(ox, c->sw, c->pl, c->dw, c->kw, c->w, &kx0, &kx1);
                for (int ky = ky0; ky < ky1; ky++)
                    for (int kx = kx0; kx < kx1; kx++)
                        cell(ctx, b, oy, ox, oy * c->sh - c->pt + ky * c->dh, ox * c->sw - c->pl + kx * c->dw, ky, kx);
            }
        }
}

typedef struct {
    const NnrtConv *c;
    int dm;
    float *out;                  /* y, dx or dk */
    const float *a, *b;          /* forward: x, k; backward input: dy, k; kernel: x, dy */
} DepthwiseArgs;

static void forward_cell(void *ctx, int b, int oy, int ox, int iy, int ix, int ky, int kx)
{
    const DepthwiseArgs *d = ctx;
    const NnrtConv *c = d->c;
    float *restrict y = d->out + (((size_t)b * c->oh + oy) * c->ow + ox) * c->f;
    const float *restrict x = d->a + (((size_t)b * c->h + iy) * c->w + ix) * c->c;
    const float *restrict k = d->b + ((size_t)ky * c->kw + kx) * c->f;
    if (d->dm == 1) {
        for (int ci = 0; ci < c->c; ci++)
            y[ci] += x[ci] * k[ci];
        return;
    }
    for (int ci = 0; ci < c->c; ci++)
        for (int m = 0; m < d->dm; m++)
            y[ci * d->dm + m] += x[ci] * k[ci * d->dm + m];
}

void nnrt_depthwise_forward(float *y, const float *x, const float *k, const NnrtConv *c, int dm, int B)
{
    assert(c->f == c->c * dm);
    memset(y, 0, (size_t)B * c->oh * c->ow * c->f * sizeof *y);
    DepthwiseArgs d = {c, dm, y, x, k};
    depthwise_walk(c, B, forward_cell, &d);
}

static void input_cell(void *ctx, int b, int oy, int ox, int iy, int ix, int ky, int kx)
{
    const DepthwiseArgs *d = ctx;
    const NnrtConv *c = d->c;
    float *restrict dx = d->out + (((size_t)b * c->h + iy) * c->w + ix) * c->c;
    const float *restrict dy = d->a + (((size_t)b * c->oh + oy) * c->ow + ox) * c->f;
    const float *restrict k = d->b + ((size_t)ky * c->kw + kx) * c->f;
    for (int ci = 0; ci < c->c; ci++) {
        float s = 0.0f;
        for (int m = 0; m < d->dm; m++)
            s += dy[ci * d->dm + m] * k[ci * d->dm + m];
        dx[ci] += s;
    }
}

void nnrt_depthwise_backward_input(float *dx, const float *dy, const float *k, const NnrtConv *c, int dm, int B)
{
    assert(c->f == c->c * dm);
    memset(dx, 0, (size_t)B * c->h * c->w * c->c * sizeof *dx);
    DepthwiseArgs d = {c, dm, dx, dy, k};
    depthwise_walk(c, B, input_cell, &d);
}

static void kernel_cell(void *ctx, int b, int oy, int ox, int iy, int ix, int ky, int kx)
{
    const DepthwiseArgs *d = ctx;
    const NnrtConv *c = d->c;
    float *restrict dk = d->out + ((size_t)ky * c->kw + kx) * c->f;
    const float *restrict x = d->a + (((size_t)b * c->h + iy) * c->w + ix) * c->c;
    const float *restrict dy = d->b + (((size_t)b * c->oh + oy) * c->ow + ox) * c->f;
    for (int ci = 0; ci < c->c; ci++)
        for (int m = 0; m < d->dm; m++)
            dk[ci * d->dm + m] += x[ci] * dy[ci * d->dm + m];
}

void nnrt_depthwise_backward_kernel(float *dk, const float *x, const float *dy, const NnrtConv *c, int dm, int B,
                                    float beta)
{
    assert(c->f == c->c * dm);
    size_t n = (size_t)c->kh * c->kw * c->f;
    for (size_t i = 0; i < n; i++)
        dk[i] = beta == 0.0f ? 0.0f : beta * dk[i];
    DepthwiseArgs d = {c, dm, dk, x, dy};
    depthwise_walk(c, B, kernel_cell, &d);
}

void nnrt_maxpool_forward(float *y, const float *x, const NnrtConv *p, int B)
{
    pool_forward(y, x, p, B, 0);
}

void nnrt_avgpool_forward(float *y, const float *x, const NnrtConv *p, int B)
{
    pool_forward(y, x, p, B, 1);
}

/* relu: only where the window's max (the relu's output) is positive, which
 * is relu's derivative at that cell times dy, as relu's backward would give */
static void maxpool_backward(float *dx, const float *dy, const float *x, const float *y, const NnrtConv *p, int B,
                             int relu)
{
    check_pool(p);
    const size_t ch = (size_t)p->c;
    if (B <= 0)
        return;
    memset(dx, 0, (size_t)B * p->h * p->w * ch * sizeof *dx);
    for (int s = 0; s < B; s++) {
        const size_t in_off = (size_t)s * p->h * p->w * ch;
        const float *xs = x + in_off;
        float *dxs = dx + in_off;
        for (int oy = 0; oy < p->oh; oy++) {
            int ky_lo, ky_hi;
            window_range(oy, p->sh, p->pt, p->dh, p->kh, p->h, &ky_lo, &ky_hi);
            for (int ox = 0; ox < p->ow; ox++, y += ch, dy += ch) {
                int kx_lo, kx_hi;
                window_range(ox, p->sw, p->pl, p->dw, p->kw, p->w, &kx_lo, &kx_hi);
                int iy0 = oy * p->sh - p->pt, ix0 = ox * p->sw - p->pl;
                /* Per channel, scan the (small) window for the first cell equal to y. */
                for (size_t j = 0; j < ch; j++) {
                    for (int ky = ky_lo; ky < ky_hi; ky++) {
                        size_t row = (size_t)(iy0 + ky * p->dh) * p->w;
                        for (int kx = kx_lo; kx < kx_hi; kx++) {
                            size_t at = (row + ix0 + kx * p->dw) * ch + j;
                            if (xs[at] == y[j]) {
                                if (!relu || y[j] > 0.0f)
                                    dxs[at] += dy[j];
                                goto next_channel;
                            }
                        }
                    }
                next_channel:;
                }
            }
        }
    }
}

void nnrt_maxpool_backward(float *dx, const float *dy, const float *x, const float *y, const NnrtConv *p, int B)
{
    maxpool_backward(dx, dy, x, y, p, B, 0);
}

void nnrt_maxpool_relu_backward(float *dx, const float *dy, const float *x, const float *y, const NnrtConv *p, int B)
{
    maxpool_backward(dx, dy, x, y, p, B, 1);
}

void nnrt_avgpool_backward(float *dx, const float *dy, const NnrtConv *p, int B)
{
    check_pool(p);
    const size_t ch = (size_t)p->c;
    if (B <= 0)
        return;
    memset(dx, 0, (size_t)B * p->h * p->w * ch * sizeof *dx);
    for (int s = 0; s < B; s++) {
        float *dxs = dx + (size_t)s * p->h * p->w * ch;
        for (int oy = 0; oy < p->oh; oy++) {
            int ky_lo, ky_hi;
            window_range(oy, p->sh, p->pt, p->dh, p->kh, p->h, &ky_lo, &ky_hi);
            for (int ox = 0; ox < p->ow; ox++, dy += ch) {
                int kx_lo, kx_hi;
                window_range(ox, p->sw, p->pl, p->dw, p->kw, p->w, &kx_lo, &kx_hi);
                assert(ky_lo < ky_hi && kx_lo < kx_hi && "pooling window outside the input");
                int iy0 = oy * p->sh - p->pt, ix0 = ox * p->sw - p->pl;
                float count = (float)((ky_hi - ky_lo) * (kx_hi - kx_lo));
                for (int ky = ky_lo; ky < ky_hi; ky++) {
                    for (int kx = kx_lo; kx < kx_hi; kx++) {
                        float *d = dxs + ((size_t)(iy0 + ky * p->dh) * p->w + ix0 + kx * p->dw) * ch;
                        for (size_t j = 0; j < ch; j++)
                            d[j] += dy[j] / count;
                    }
                }
            }
        }
    }
}
