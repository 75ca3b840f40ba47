/* test_runtime_conv.c — conv.c and norm.c of libnncc_rt against independent
 * references.
 *
 * Convolution and pooling forwards are compared with naive direct loops in
 * double (one loop per index, bounds checked cell by cell) on a table of
 * shapes whose padding and output sizes are computed as Keras computes them
 * ("valid" and "same"); every convolution runs with workspaces of one
 * sample, two samples and the whole batch, so grouped GEMMs and the last
 * short group are exercised. Backward functions are checked against central
 * differences, in double, of the reference loss L = sum(y * r) with random
 * r (so dL/dy = r is what the backward receives). Max pooling uses distinct
 * input values and a step below their smallest gap, so the differences see
 * the true argmax. Batch norm's backward is checked against differences of
 * L = sum(bn(x; stats(x)) * r): the statistics move with x. Outputs and
 * workspaces carry guard floats behind them that must stay untouched.
 * Every check prints its max difference and tolerance; the last line counts
 * passes and failed, and the exit status is 1 if any failed.
 *
 * `test_runtime_conv --bench` instead times the Fashion CNN's 128->128 3x3
 * "same" convolution on 14x14 with B = 32 against a plain GEMM of the same
 * FLOPs.
 */
#define _POSIX_C_SOURCE 200809L  /* clock_gettime */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"
#include "nnrt.h"

/* ---- shapes as Keras computes them --------------------------------------- */

/* Output size and padding before of one axis. */
static int keras_axis(int in, int k, int stride, int dil, int same, int *pad_before)
{
    if (!same) {
        *pad_before = 0;
        return (in - (k - 1) * dil - 1) / stride + 1;
    }
    int out = (in + stride - 1) / stride;
    int total = (out - 1) * stride + (k - 1) * dil + 1 - in;
    if (total < 0)
        total = 0;
    *pad_before = total / 2;
    return out;
}

static NnrtConv make_conv(int h, int w, int c, int kh, int kw, int f, int sh, int sw, int dh, int dw, int same)
{
    NnrtConv d = {.h = h, .w = w, .c = c, .kh = kh, .kw = kw, .f = f, .sh = sh, .sw = sw, .dh = dh, .dw = dw};
    d.oh = keras_axis(h, kh, sh, dh, same, &d.pt);
    d.ow = keras_axis(w, kw, sw, dw, same, &d.pl);
    return d;
}

static size_t in_count(const NnrtConv *d, int B) { return (size_t)B * d->h * d->w * d->c; }
static size_t out_count(const NnrtConv *d, int B) { return (size_t)B * d->oh * d->ow * d->f; }
static size_t kernel_count(const NnrtConv *d) { return (size_t)d->kh * d->kw * d->c * d->f; }

/* ---- references, in double ------------------------------------------------ */

static void ref_conv(double *y, const double *x, const double *k, const NnrtConv *d, int B)
{
    for (int b = 0; b < B; b++)
        for (int oy = 0; oy < d->oh; oy++)
            for (int ox = 0; ox < d->ow; ox++)
                for (int f = 0; f < d->f; f++) {
                    double sum = 0.0;
                    for (int ky = 0; ky < d->kh; ky++)
                        for (int kx = 0; kx < d->kw; kx++)
                            for (int ch = 0; ch < d->c; ch++) {
                                int iy = oy * d->sh + ky * d->dh - d->pt;
                                int ix = ox * d->sw + kx * d->dw - d->pl;
                                if (iy < 0 || iy >= d->h || ix < 0 || ix >= d->w)
                                    continue;
                                sum += x[((size_t)(b * d->h + iy) * d->w + ix) * d->c + ch] *
                                       k[((size_t)(ky * d->kw + kx) * d->c + ch) * d->f + f];
                            }
                    y[((size_t)(b * d->oh + oy) * d->ow + ox) * d->f + f] = sum;
                }
}

/* Max or mean over the window's cells inside x. */
static void ref_pool(double *y, const double *x, const NnrtConv *d, int B, int is_max)
{
    for (int b = 0; b < B; b++)
        for (int oy = 0; oy < d->oh; oy++)
            for (int ox = 0; ox < d->ow; ox++)
                for (int ch = 0; ch < d->c; ch++) {
                    double acc = is_max ? -INFINITY : 0.0;
                    int count = 0;
                    for (int ky = 0; ky < d->kh; ky++)
                        for (int kx = 0; kx < d->kw; kx++) {
                            int iy = oy * d->sh + ky * d->dh - d->pt;
                            int ix = ox * d->sw + kx * d->dw - d->pl;
                            if (iy < 0 || iy >= d->h || ix < 0 || ix >= d->w)
                                continue;
                            double v = x[((size_t)(b * d->h + iy) * d->w + ix) * d->c + ch];
                            acc = is_max ? fmax(acc, v) : acc + v;
                            count++;
                        }
                    y[((size_t)(b * d->oh + oy) * d->ow + ox) * d->c + ch] = is_max ? acc : acc / count;
                }
}

static double dot(const double *a, const double *b, size_t n)
{
    double s = 0.0;
    for (size_t i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

/* A scalar loss of the perturbable array p, for central differences. */
typedef double (*LossFn)(void *ctx);

/* g[i] = (L(p + h e_i) - L(p - h e_i)) / 2h for i < n. */
static void central_diff(double *g, double *p, size_t n, double h, LossFn loss, void *ctx)
{
    for (size_t i = 0; i < n; i++) {
        double v = p[i];
        p[i] = v + h;
        double lp = loss(ctx);
        p[i] = v - h;
        double lm = loss(ctx);
        p[i] = v;
        g[i] = (lp - lm) / (2.0 * h);
    }
}

typedef struct {
    const NnrtConv *d;
    int B;
    double *x, *k, *r, *y;       /* y: scratch (B, oh, ow, f) */
    int pool;                    /* 0 conv, 1 max, 2 avg */
} ConvLoss;

static double conv_loss(void *ctx)
{
    ConvLoss *l = ctx;
    if (l->pool)
        ref_pool(l->y, l->x, l->d, l->B, l->pool == 1);
    else
        ref_conv(l->y, l->x, l->k, l->d, l->B);
    return dot(l->y, l->r, out_count(l->d, l->B));
}

/* ---- convolution ------------------------------------------------------ */

typedef struct {
    const char *name;
    int h, w, c, kh, kw, f, sh, sw, dh, dw, same;
} ConvCase;

static const ConvCase conv_cases[] = {
    {"1x1 s1 valid (pointwise)",      5, 6, 3, 1, 1, 4, 1, 1, 1, 1, 0},
    {"1x1 s1 same (pointwise)",       4, 7, 5, 1, 1, 2, 1, 1, 1, 1, 1},
    {"1x1 s2 valid",                  7, 7, 3, 1, 1, 4, 2, 2, 1, 1, 0},
    {"1x1 s2 same 7x6",               7, 6, 2, 1, 1, 3, 2, 2, 1, 1, 1},
    {"3x3 s1 same 8x8",               8, 8, 3, 3, 3, 5, 1, 1, 1, 1, 1},
    {"3x3 s1 valid 9x7",              9, 7, 2, 3, 3, 4, 1, 1, 1, 1, 0},
    {"3x3 s2 same 9x9 (pad 1+1)",     9, 9, 3, 3, 3, 4, 2, 2, 1, 1, 1},
    {"3x3 s2 same 8x8 (pad 0+1)",     8, 8, 2, 3, 3, 3, 2, 2, 1, 1, 1},
    {"3x3 s2 valid 9x8",              9, 8, 3, 3, 3, 2, 2, 2, 1, 1, 0},
    {"7x7 s1 same 10x9",             10, 9, 2, 7, 7, 3, 1, 1, 1, 1, 1},
    {"7x7 s2 same 11x11",            11, 11, 2, 7, 7, 3, 2, 2, 1, 1, 1},
    {"7x7 s2 valid 13x12",           13, 12, 2, 7, 7, 2, 2, 2, 1, 1, 0},
    {"3x3 d2 same 9x10",              9, 10, 2, 3, 3, 3, 1, 1, 2, 2, 1},
    {"3x3 d2 valid 9x10",             9, 10, 3, 3, 3, 2, 1, 1, 2, 2, 0},
    {"2x3 s(1,2) d(2,1) same 7x9",    7, 9, 3, 2, 3, 4, 1, 2, 2, 1, 1},
    {"3x2 s(2,1) d(1,3) valid 8x9",   8, 9, 2, 3, 2, 3, 2, 1, 1, 3, 0},
    {"5x5 same on 3x3 (pad 1+2)",     3, 3, 2, 5, 5, 3, 1, 1, 1, 1, 1},
    {"2x2 s3 valid 8x7",              8, 7, 3, 2, 2, 2, 3, 3, 1, 1, 0},
    {"1-D k5 s1 same w20",            1, 20, 3, 1, 5, 4, 1, 1, 1, 1, 1},
    {"1-D k4 s2 valid w50",           1, 50, 2, 1, 4, 3, 1, 2, 1, 1, 0},
    {"1-D k3 d3 s2 same w17",         1, 17, 2, 1, 3, 2, 1, 2, 1, 3, 1},
};

static void test_conv_case(const ConvCase *cc, NnrtRng *rng)
{
    const int B = 3;
    NnrtConv d = make_conv(cc->h, cc->w, cc->c, cc->kh, cc->kw, cc->f, cc->sh, cc->sw, cc->dh, cc->dw, cc->same);
    size_t nx = in_count(&d, B), ny = out_count(&d, B), nk = kernel_count(&d);
    size_t per_sample = nnrt_conv_workspace(&d, 1);
    char name[160];

    float *x = guarded(nx), *k = guarded(nk), *r = guarded(ny);
    fill_uniform(x, nx, -1, 1, rng);
    fill_uniform(k, nk, -1, 1, rng);
    fill_uniform(r, ny, -1, 1, rng);
    double *xd = to_double(x, nx), *kd = to_double(k, nk), *rd = to_double(r, ny);
    double *yref = xmalloc(ny * sizeof *yref), *dxref = xmalloc(nx * sizeof *dxref);
    double *dkref = xmalloc(nk * sizeof *dkref);
    ref_conv(yref, xd, kd, &d, B);
    ConvLoss loss = {&d, B, xd, kd, rd, xmalloc(ny * sizeof(double)), 0};
    central_diff(dxref, xd, nx, 1e-3, conv_loss, &loss);
    central_diff(dkref, kd, nk, 1e-3, conv_loss, &loss);

    /* Workspaces of 1, 2 and B samples (plus a spare float that must not matter). */
    double fwd = 0, bin = 0, bk = 0, bk_acc = 0;
    int guards = 1;
    float *y = guarded(ny), *dx = guarded(nx), *dk = guarded(nk), *dk0 = xmalloc(nk * sizeof *dk0);
    fill_uniform(dk0, nk, -1, 1, rng);
    double *dk_expect = xmalloc(nk * sizeof *dk_expect);
    for (size_t i = 0; i < nk; i++)
        dk_expect[i] = 0.5 * dk0[i] + dkref[i];
    const int samples[] = {1, 2, B};
    for (int v = 0; v < 3; v++) {
        size_t wsn = per_sample ? nnrt_conv_workspace(&d, (size_t)samples[v]) + (v == 1) : 0;
        float *ws = per_sample ? guarded(wsn) : NULL;
        fill_float(y, ny, NAN);
        nnrt_conv_forward(y, x, k, &d, B, ws, wsn);
        double e = max_rel_diff(y, yref, ny);
        fwd = e > fwd || isnan(e) ? e : fwd;

        fill_float(dx, nx, NAN);                 /* must be overwritten */
        nnrt_conv_backward_input(dx, r, k, &d, B, ws, wsn);
        e = max_rel_diff(dx, dxref, nx);
        bin = e > bin || isnan(e) ? e : bin;

        fill_float(dk, nk, NAN);                 /* beta 0 overwrites garbage */
        nnrt_conv_backward_kernel(dk, x, r, &d, B, 0.0f, ws, wsn);
        e = max_rel_diff(dk, dkref, nk);
        bk = e > bk || isnan(e) ? e : bk;

        memcpy(dk, dk0, nk * sizeof *dk);
        nnrt_conv_backward_kernel(dk, x, r, &d, B, 0.5f, ws, wsn);
        e = max_rel_diff(dk, dk_expect, nk);
        bk_acc = e > bk_acc || isnan(e) ? e : bk_acc;

        guards &= guard_intact(y, ny) && guard_intact(dx, nx) && guard_intact(dk, nk);
        if (ws)
            guards &= guard_intact(ws, wsn);
        free(ws);
    }
    const double tol = 1e-5;
    snprintf(name, sizeof name, "conv %s forward", cc->name);
    report(name, fwd, tol);
    snprintf(name, sizeof name, "conv %s backward input", cc->name);
    report(name, bin, tol);
    snprintf(name, sizeof name, "conv %s backward kernel", cc->name);
    report(name, bk, tol);
    snprintf(name, sizeof name, "conv %s backward kernel, beta 0.5", cc->name);
    report(name, bk_acc, tol);
    snprintf(name, sizeof name, "conv %s guards intact", cc->name);
    expect(name, guards);

    free(x), free(k), free(r), free(xd), free(kd), free(rd), free(yref), free(dxref), free(dkref);
    free(loss.y), free(y), free(dx), free(dk), free(dk0), free(dk_expect);
}

static void test_conv(NnrtRng *rng)
{
    NnrtConv d = make_conv(1, 50, 1, 1, 4, 1, 1, 2, 1, 1, 0);
    expect("Keras shapes: Conv1D k4 s2 valid on 50 gives 24", d.oh == 1 && d.ow == 24);
    d = make_conv(9, 8, 1, 3, 3, 1, 2, 2, 1, 1, 1);
    expect("Keras shapes: 3x3 s2 same, 9 -> 5 pad 1, 8 -> 4 pad 0",
           d.oh == 5 && d.pt == 1 && d.ow == 4 && d.pl == 0);
    d = make_conv(5, 5, 4, 1, 1, 6, 1, 1, 1, 1, 1);
    expect("pointwise convolution needs no workspace", nnrt_conv_workspace(&d, 3) == 0);
    d = make_conv(5, 5, 4, 3, 3, 6, 1, 1, 1, 1, 1);
    expect("workspace is samples * oh*ow * kh*kw*c", nnrt_conv_workspace(&d, 3) == 3 * 25 * 36);
    for (size_t i = 0; i < sizeof conv_cases / sizeof conv_cases[0]; i++)
        test_conv_case(&conv_cases[i], rng);
}

/* ---- pooling ------------------------------------------------------------- */

typedef struct {
    const char *name;
    int h, w, c, kh, kw, sh, sw, same;
} PoolCase;

static const PoolCase pool_cases[] = {
    {"2x2 s2 valid 8x8",             8, 8, 3, 2, 2, 2, 2, 0},
    {"2x2 s2 valid 7x9 (odd)",       7, 9, 2, 2, 2, 2, 2, 0},
    {"2x2 s2 same 7x7 (pad 0+1)",    7, 7, 3, 2, 2, 2, 2, 1},
    {"3x3 s2 same 7x7 (pad 1+1)",    7, 7, 2, 3, 3, 2, 2, 1},
    {"3x3 s1 same 5x6",              5, 6, 3, 3, 3, 1, 1, 1},
    {"2x2 s1 valid 5x5",             5, 5, 2, 2, 2, 1, 1, 0},
    {"3x2 s(2,1) same 7x5",          7, 5, 2, 3, 2, 2, 1, 1},
    {"2x2 s3 valid 8x8 (gaps)",      8, 8, 2, 2, 2, 3, 3, 0},
    {"3x3 s2 same 4x4 (pad 0+1)",    4, 4, 3, 3, 3, 2, 2, 1},
    {"1-D 3 s2 same w11",            1, 11, 3, 1, 3, 1, 2, 1},
    {"1-D 4 s3 valid w14",           1, 14, 2, 1, 4, 1, 3, 0},
};

/* Distinct values in [-1, 1): a random permutation of a grid with step 2/n. */
static void fill_distinct(float *x, size_t n, NnrtRng *rng)
{
    size_t *idx = xmalloc(n * sizeof *idx);
    for (size_t i = 0; i < n; i++)
        idx[i] = i;
    nnrt_shuffle(idx, n, rng);
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(-1.0 + 2.0 * (double)idx[i] / (double)n);
    free(idx);
}

static void test_pool_case(const PoolCase *pc, int is_max, NnrtRng *rng)
{
    const int B = 3;
    NnrtConv d = make_conv(pc->h, pc->w, pc->c, pc->kh, pc->kw, pc->c, pc->sh, pc->sw, 1, 1, pc->same);
    size_t nx = in_count(&d, B), ny = out_count(&d, B);
    const char *kind = is_max ? "maxpool" : "avgpool";
    char name[160];

    float *x = guarded(nx), *r = guarded(ny), *y = guarded(ny), *dx = guarded(nx);
    fill_distinct(x, nx, rng);
    fill_uniform(r, ny, -1, 1, rng);
    double *xd = to_double(x, nx), *rd = to_double(r, ny);
    double *yref = xmalloc(ny * sizeof *yref), *dxref = xmalloc(nx * sizeof *dxref);
    ref_pool(yref, xd, &d, B, is_max);
    ConvLoss loss = {&d, B, xd, NULL, rd, xmalloc(ny * sizeof(double)), is_max ? 1 : 2};
    central_diff(dxref, xd, nx, 0.25 * 2.0 / (double)nx, conv_loss, &loss);

    fill_float(y, ny, NAN);
    if (is_max)
        nnrt_maxpool_forward(y, x, &d, B);
    else
        nnrt_avgpool_forward(y, x, &d, B);
    snprintf(name, sizeof name, "%s %s forward", kind, pc->name);
    report(name, max_rel_diff(y, yref, ny), 1e-6);

    fill_float(dx, nx, NAN);
    if (is_max)
        nnrt_maxpool_backward(dx, r, x, y, &d, B);
    else
        nnrt_avgpool_backward(dx, r, &d, B);
    snprintf(name, sizeof name, "%s %s backward", kind, pc->name);
    report(name, max_rel_diff(dx, dxref, nx), 1e-5);
    snprintf(name, sizeof name, "%s %s guards intact", kind, pc->name);
    expect(name, guard_intact(y, ny) && guard_intact(dx, nx));

    if (is_max) {  /* through a relu before it (x in [-1, 1): about half the maxima negative) */
        float *dz = guarded(nx);
        double *dzref = xmalloc(nx * sizeof *dzref);
        for (size_t i = 0; i < nx; i++)
            dzref[i] = x[i] > 0.0f ? dxref[i] : 0.0;
        fill_float(dz, nx, NAN);
        nnrt_maxpool_relu_backward(dz, r, x, y, &d, B);
        snprintf(name, sizeof name, "maxpool %s backward through relu", pc->name);
        report(name, max_rel_diff(dz, dzref, nx), 1e-5);
        free(dz), free(dzref);
    }

    free(x), free(r), free(y), free(dx), free(xd), free(rd), free(yref), free(dxref), free(loss.y);
}

/* Ties: with a constant input every window's maximum is its first cell. */
static void test_maxpool_ties(void)
{
    NnrtConv d = make_conv(5, 5, 2, 3, 3, 2, 2, 2, 1, 1, 1);   /* pad 1: first cell may be padding */
    float x[50], y[18], dy[18], dx[50];
    fill_float(x, 50, 0.5f);
    for (int i = 0; i < 18; i++)
        dy[i] = (float)(i + 1);
    nnrt_maxpool_forward(y, x, &d, 1);
    nnrt_maxpool_backward(dx, dy, x, y, &d, 1);
    double expect_dx[50] = {0};
    for (int oy = 0; oy < d.oh; oy++)
        for (int ox = 0; ox < d.ow; ox++) {
            int iy = oy * 2 - d.pt, ix = ox * 2 - d.pl;
            iy = iy < 0 ? 0 : iy;
            ix = ix < 0 ? 0 : ix;
            for (int ch = 0; ch < 2; ch++)
                expect_dx[(iy * 5 + ix) * 2 + ch] += dy[(oy * d.ow + ox) * 2 + ch];
        }
    report("maxpool ties: dy to the first real cell of each window", max_rel_diff(dx, expect_dx, 50), 0.0);
}

static void test_pool(NnrtRng *rng)
{
    for (size_t i = 0; i < sizeof pool_cases / sizeof pool_cases[0]; i++) {
        test_pool_case(&pool_cases[i], 1, rng);
        test_pool_case(&pool_cases[i], 0, rng);
    }
    test_maxpool_ties();
}

/* ---- batch normalization -------------------------------------------------- */

/* Training-mode batch norm in double: y = gamma (x - mean) / sqrt(var + eps) + beta. */
static void ref_bn(double *y, double *mean, double *var, const double *x, const double *gamma,
                   const double *beta, size_t rows, size_t c, double eps)
{
    for (size_t j = 0; j < c; j++) {
        double s = 0.0, q = 0.0;
        for (size_t r = 0; r < rows; r++)
            s += x[r * c + j];
        double m = s / rows;
        for (size_t r = 0; r < rows; r++)
            q += (x[r * c + j] - m) * (x[r * c + j] - m);
        double v = q / rows;
        if (mean)
            mean[j] = m, var[j] = v;
        for (size_t r = 0; r < rows; r++)
            y[r * c + j] = (gamma ? gamma[j] : 1.0) * (x[r * c + j] - m) / sqrt(v + eps) + (beta ? beta[j] : 0.0);
    }
}

typedef struct {
    size_t rows, c;
    double *x, *gamma, *beta, *r, *y;
    double eps;
} BnLoss;

static double bn_loss(void *ctx)
{
    BnLoss *l = ctx;
    ref_bn(l->y, NULL, NULL, l->x, l->gamma, l->beta, l->rows, l->c, l->eps);
    return dot(l->y, l->r, l->rows * l->c);
}

static void test_bn_case(size_t rows, size_t c, double offset, int affine, NnrtRng *rng)
{
    const float eps = 1e-3f, momentum = 0.99f;
    size_t n = rows * c;
    char name[160], tag[64];
    snprintf(tag, sizeof tag, "(%zu, %zu)%s%s", rows, c, offset != 0 ? " offset" : "",
             affine ? "" : " no gamma/beta");

    float *x = guarded(n), *r = guarded(n), *y = guarded(n), *dx = guarded(n), *stats = guarded(2 * c);
    float *gamma = guarded(c), *beta = guarded(c), *dgamma = guarded(c);
    fill_uniform(x, n, offset - 1.5, offset + 1.5, rng);
    for (size_t j = 0; j < c; j++)                    /* channels of different spreads */
        for (size_t i = 0; i < rows; i++)
            x[i * c + j] = (float)offset + (x[i * c + j] - (float)offset) * (float)(0.2 + j % 7);
    fill_uniform(r, n, -1, 1, rng);
    fill_uniform(gamma, c, 0.5, 1.5, rng);
    fill_uniform(beta, c, -0.5, 0.5, rng);
    const float *g = affine ? gamma : NULL, *b = affine ? beta : NULL;
    double *xd = to_double(x, n), *rd = to_double(r, n);
    double *gd = affine ? to_double(gamma, c) : NULL, *bd = affine ? to_double(beta, c) : NULL;
    double *yref = xmalloc(n * sizeof *yref), *mref = xmalloc(c * sizeof *mref), *vref = xmalloc(c * sizeof *vref);
    ref_bn(yref, mref, vref, xd, gd, bd, rows, c, eps);

    nnrt_bn_stats(stats, x, rows, c, eps);
    double *sref = xmalloc(2 * c * sizeof *sref);
    for (size_t j = 0; j < c; j++)
        sref[j] = mref[j], sref[c + j] = 1.0 / sqrt(vref[j] + eps);
    snprintf(name, sizeof name, "bn %s stats", tag);
    report(name, max_rel_diff(stats, sref, 2 * c), 1e-6);

    fill_float(y, n, NAN);
    nnrt_bn_forward(y, x, stats, g, b, rows, c);
    snprintf(name, sizeof name, "bn %s forward", tag);
    report(name, max_rel_diff(y, yref, n), 1e-5);

    /* moving update from running statistics of the test's own making */
    float *mm = guarded(c), *mv = guarded(c);
    fill_uniform(mm, c, -1, 1, rng);
    fill_uniform(mv, c, 0.5, 2, rng);
    double *mm_expect = xmalloc(c * sizeof *mm_expect), *mv_expect = xmalloc(c * sizeof *mv_expect);
    for (size_t j = 0; j < c; j++) {
        mm_expect[j] = mm[j] * (double)momentum + mref[j] * (1.0 - momentum);
        mv_expect[j] = mv[j] * (double)momentum + vref[j] * (1.0 - momentum);
    }
    nnrt_bn_moving_update(mm, mv, stats, c, momentum, eps);
    snprintf(name, sizeof name, "bn %s moving mean", tag);
    report(name, max_rel_diff(mm, mm_expect, c), 1e-6);
    snprintf(name, sizeof name, "bn %s moving variance", tag);
    report(name, max_rel_diff(mv, mv_expect, c), 1e-6);

    /* inference with the updated moving statistics */
    double *iref = xmalloc(n * sizeof *iref);
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < c; j++)
            iref[i * c + j] = (affine ? gd[j] : 1.0) * (xd[i * c + j] - mm[j]) / sqrt((double)mv[j] + eps) +
                              (affine ? bd[j] : 0.0);
    fill_float(y, n, NAN);
    nnrt_bn_inference(y, x, g, b, mm, mv, rows, c, eps);
    snprintf(name, sizeof name, "bn %s inference", tag);
    report(name, max_rel_diff(y, iref, n), 1e-5);

    /* gradients of L = sum(bn(x; stats(x)) * r) */
    double *ones = NULL;
    if (!affine) {
        ones = xmalloc(c * sizeof *ones);
        for (size_t j = 0; j < c; j++)
            ones[j] = 1.0;
    }
    BnLoss loss = {rows, c, xd, affine ? gd : ones, bd, rd, xmalloc(n * sizeof(double)), eps};
    double *dxref = xmalloc(n * sizeof *dxref), *dgref = xmalloc(c * sizeof *dgref);
    central_diff(dxref, xd, n, 1e-4, bn_loss, &loss);
    central_diff(dgref, loss.gamma, c, 1e-4, bn_loss, &loss);
    fill_float(dx, n, NAN);
    nnrt_bn_backward_input(dx, r, x, stats, g, rows, c);
    snprintf(name, sizeof name, "bn %s backward input", tag);
    report(name, max_rel_diff(dx, dxref, n), 1e-4);

    fill_float(dgamma, c, NAN);
    nnrt_bn_backward_gamma(dgamma, r, x, stats, rows, c, 0.0f);
    snprintf(name, sizeof name, "bn %s backward gamma", tag);
    report(name, max_rel_diff(dgamma, dgref, c), 1e-5);
    for (size_t j = 0; j < c; j++)
        dgref[j] += 3.0 * dgamma[j];        /* 3 * previous + sum(dy * xhat) */
    nnrt_bn_backward_gamma(dgamma, r, x, stats, rows, c, 3.0f);
    snprintf(name, sizeof name, "bn %s backward gamma, beta 3", tag);
    report(name, max_rel_diff(dgamma, dgref, c), 1e-5);

    snprintf(name, sizeof name, "bn %s guards intact", tag);
    expect(name, guard_intact(y, n) && guard_intact(dx, n) && guard_intact(stats, 2 * c) &&
                 guard_intact(dgamma, c) && guard_intact(mm, c) && guard_intact(mv, c));

    free(x), free(r), free(y), free(dx), free(stats), free(gamma), free(beta), free(dgamma);
    free(xd), free(rd), free(gd), free(bd), free(yref), free(mref), free(vref), free(sref);
    free(mm), free(mv), free(mm_expect), free(mv_expect), free(iref), free(ones), free(loss.y);
    free(dxref), free(dgref);
}

static void test_bn(NnrtRng *rng)
{
    test_bn_case(12, 5, 0.0, 1, rng);
    test_bn_case(7, 300, 0.0, 1, rng);         /* more channels than one block, and a remainder */
    test_bn_case(40, 3, 3.0, 1, rng);          /* mean far from 0 */
    test_bn_case(9, 4, 0.0, 0, rng);           /* scale and center false */

    /* a constant channel: variance 0 must stay 0 through the moving update */
    float x[8] = {2, 2, 2, 2, 2, 2, 2, 2}, stats[2], mm = 0.0f, mv = 0.0f;
    nnrt_bn_stats(stats, x, 8, 1, 1e-3f);
    nnrt_bn_moving_update(&mm, &mv, stats, 1, 0.5f, 1e-3f);
    expect("bn constant channel: moving variance stays >= 0, mean moves",
           mv >= 0.0f && mv < 1e-9f && fabsf(mm - 1.0f) < 1e-6f);
}

/* ---- timing ------------------------------------------------------------ */

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static int compare_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

enum { REPS = 21 };

typedef struct {
    const NnrtConv *d;
    int B;
    float *x, *k, *y, *dx, *dk, *ws, *a, *b, *c;
    size_t wsn;
    int m, n, kk;
} Bench;

static void bench_op(Bench *bn, int which)
{
    switch (which) {
    case 0: nnrt_conv_forward(bn->y, bn->x, bn->k, bn->d, bn->B, bn->ws, bn->wsn); break;
    case 1: nnrt_conv_backward_input(bn->dx, bn->y, bn->k, bn->d, bn->B, bn->ws, bn->wsn); break;
    case 2: nnrt_conv_backward_kernel(bn->dk, bn->x, bn->y, bn->d, bn->B, 0.0f, bn->ws, bn->wsn); break;
    case 3: nnrt_gemm(0, 0, bn->m, bn->n, bn->kk, 1.0f, bn->a, bn->kk, bn->b, bn->n, 0.0f, bn->c, bn->n); break;
    }
}

/* Median and best milliseconds of REPS runs of op `which` after two warm-ups. */
static double bench_ms(Bench *bn, int which, double *best)
{
    double t[REPS];
    bench_op(bn, which);
    bench_op(bn, which);
    for (int i = 0; i < REPS; i++) {
        double t0 = now();
        bench_op(bn, which);
        t[i] = (now() - t0) * 1e3;
    }
    qsort(t, REPS, sizeof t[0], compare_double);
    *best = t[0];
    return t[REPS / 2];
}

static int bench(void)
{
    const int B = 32;
    NnrtConv d = make_conv(14, 14, 128, 3, 3, 128, 1, 1, 1, 1, 1);
    NnrtRng rng;
    nnrt_rng_seed(&rng, 7);
    Bench bn = {.d = &d, .B = B};
    size_t nx = in_count(&d, B), ny = out_count(&d, B), nk = kernel_count(&d);
    bn.m = B * d.oh * d.ow, bn.n = d.f, bn.kk = d.kh * d.kw * d.c;
    bn.x = xmalloc(nx * sizeof(float)), bn.dx = xmalloc(nx * sizeof(float));
    bn.y = xmalloc(ny * sizeof(float)), bn.k = xmalloc(nk * sizeof(float)), bn.dk = xmalloc(nk * sizeof(float));
    bn.a = xmalloc((size_t)bn.m * bn.kk * sizeof(float)), bn.b = xmalloc(nk * sizeof(float));
    bn.c = xmalloc(ny * sizeof(float));
    fill_uniform(bn.x, nx, -1, 1, &rng), fill_uniform(bn.k, nk, -1, 1, &rng), fill_uniform(bn.y, ny, -1, 1, &rng);
    fill_uniform(bn.a, (size_t)bn.m * bn.kk, -1, 1, &rng), fill_uniform(bn.b, nk, -1, 1, &rng);
    double gflop = 2.0 * bn.m * bn.n * bn.kk * 1e-9;
    printf("conv 128->128 3x3 same on 14x14, B = %d: GEMM (%d x %d) @ (%d x %d), %.3f GFLOP per op\n",
           B, bn.m, bn.kk, bn.kk, bn.n, gflop);
    double best, ms = bench_ms(&bn, 3, &best);
    printf("  %-44s median %7.2f ms (best %7.2f) %6.1f GFLOP/s\n", "plain sgemm, same shape", ms, best,
           gflop / ms * 1e3);
    const int groups[] = {1, 8, B};
    const char *ops[] = {"forward", "backward input", "backward kernel"};
    for (int gi = 0; gi < 3; gi++) {
        bn.wsn = nnrt_conv_workspace(&d, (size_t)groups[gi]);
        bn.ws = xmalloc(bn.wsn * sizeof(float));
        for (int op = 0; op < 3; op++) {
            char label[64];
            snprintf(label, sizeof label, "%s, ws %2d samples (%4.1f MB)", ops[op], groups[gi],
                     bn.wsn * 4.0 / 1e6);
            ms = bench_ms(&bn, op, &best);
            printf("  %-44s median %7.2f ms (best %7.2f) %6.1f GFLOP/s\n", label, ms, best, gflop / ms * 1e3);
        }
        free(bn.ws);
    }
    free(bn.x), free(bn.dx), free(bn.y), free(bn.k), free(bn.dk), free(bn.a), free(bn.b), free(bn.c);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--bench") == 0)
        return bench();
    NnrtRng rng;
    nnrt_rng_seed(&rng, 2024);
    test_conv(&rng);
    test_pool(&rng);
    test_bn(&rng);
    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
