/* standalone.c — Program -> standalone P.c / P.h (--standalone --weights W.h5):
 * inference on one sample, with the weights compiled in as constants, for a
 * target that has a C99 compiler and <math.h> and nothing else: no
 * allocation, no BLAS, no HDF5, no runtime library, no global state.
 *
 * Input: the inference graph pruned and given its kernels' scratch by
 * standalone_prepare, then planned for one sample (pass_plan_memory), and
 * the weight block read from W.h5 (Keras order, at each Weight.offset).
 * P_infer is the graph as straight-line kernel calls into the caller's
 * workspace at the planned offsets, each after a comment naming its YAML
 * line, layer, op and shape; every size is a literal. Weights become
 * `static const float` arrays, only those the code reads; BatchNormalization's
 * scale gamma / sqrt(var + eps) and shift beta are folded at compile time.
 *
 * Kernels are plain loops that compilers vectorize: the innermost loop runs
 * along contiguous channels, and every pointer a kernel takes is restrict.
 * That is sound because the memory plan never overlaps buffers alive at the
 * same node (ir_verify checks it); an elementwise op the plan runs in place
 * (Node.inplace) calls the kernel's in-place form, which takes that buffer
 * once. Matmul is a row of a times b, accumulated row of b by row of b;
 * convolution is direct, y(oy,ox,:) += x(iy,ix,c) k(ky,kx,c,:) over the
 * window's cells inside x (no im2col, so no scratch); pooling, softmax and
 * the recurrent layers port the arithmetic of runtime/conv.c, kernels.c and
 * rnn.c (the same float and double steps, Cephes tanh for recurrent tanh),
 * so P_infer agrees with P_predict to summation order. Recurrent layers
 * keep runtime/rnn.c's tape layout per sample, h (T,u) | gates (T,G*u) |
 * extra (T,u), in the tape buffer the plan gives them, and need nothing else.
 *
 * Ops without a kernel in the table (training ops, and any op added later
 * until someone writes its kernel) are refused by standalone_unsupported
 * before anything is emitted: never wrong code. Helpers are written only
 * when used; their names are reserved (standalone_reserved_name) so no
 * buffer takes them.
 */
#include "backend.h"

#include <assert.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "nnrt.h"  /* NNRT_LSTM, NNRT_RNN_TANH, ...: the recurrent kinds in Node.rnn (enums only) */

/* ---- fixed helpers, written into P.c when used ------------------------------------------------ */

/* X(ENUM, name, code) */
#define HELPER_TABLE(X)                                                                              \
    X(COPY, "copy",                                                                                  \
      "/* y = x */\n"                                                                                 \
      "static void copy(float *restrict y, const float *restrict x, int n)\n"                        \
      "{\n"                                                                                          \
      "    for (int i = 0; i < n; i++)\n"                                                            \
      "        y[i] = x[i];\n"                                                                       \
      "}\n")                                                                                         \
    X(COPY_ROWS, "copy_rows",                                                                        \
      "/* y[r, :len] = x[r, :len] for rows r, with row strides (concatenate, slice) */\n"            \
      "static void copy_rows(float *restrict y, int y_stride, const float *restrict x, int x_stride, int rows, int len)\n" \
      "{\n"                                                                                          \
      "    for (int r = 0; r < rows; r++)\n"                                                         \
      "        for (int i = 0; i < len; i++)\n"                                                      \
      "            y[r * y_stride + i] = x[r * x_stride + i];\n"                                     \
      "}\n")                                                                                         \
    X(VECMAT, "vecmat_add",                                                                          \
      "/* y (n) += x (k) w (k, n), w's rows ld floats apart: four rows of w per pass along y,\n"      \
      " * so y is loaded and stored once per four products */\n"                                     \
      "static void vecmat_add(float *restrict y, const float *restrict x, const float *restrict w, int k, int n, int ld)\n" \
      "{\n"                                                                                          \
      "    for (int q = k / 4; q > 0; q--, x += 4, w += 4 * ld) {\n"                               \
      "        const float x0 = x[0], x1 = x[1], x2 = x[2], x3 = x[3];\n"                          \
      "        const float *restrict w1 = w + ld, *restrict w2 = w1 + ld, *restrict w3 = w2 + ld;\n" \
      "        for (int j = 0; j < n; j++)\n"                                                       \
      "            y[j] += x0 * w[j] + x1 * w1[j] + x2 * w2[j] + x3 * w3[j];\n"                     \
      "    }\n"                                                                                     \
      "    for (int q = k % 4; q > 0; q--, x++, w += ld) {\n"                                       \
      "        const float x0 = x[0];\n"                                                            \
      "        for (int j = 0; j < n; j++)\n"                                                       \
      "            y[j] += x0 * w[j];\n"                                                            \
      "    }\n"                                                                                     \
      "}\n")                                                                                         \
    X(MATMUL, "matmul",                                                                              \
      "/* y (m, n) = a (m, k) b (k, n) */\n"                                                          \
      "static void matmul(float *restrict y, const float *restrict a, const float *restrict b, int m, int k, int n)\n" \
      "{\n"                                                                                          \
      "    for (int i = 0; i < m; i++) {\n"                                                          \
      "        for (int j = 0; j < n; j++)\n"                                                        \
      "            y[i * n + j] = 0.0f;\n"                                                           \
      "        vecmat_add(y + i * n, a + i * k, b, k, n, n);\n"                                      \
      "    }\n"                                                                                      \
      "}\n")                                                                                         \
    X(BIAS_ADD, "bias_add",                                                                          \
      "/* y[r,c] = x[r,c] + b[c] over (rows, cols) */\n"                                              \
      "static void bias_add(float *restrict y, const float *restrict x, const float *restrict b, int rows, int cols)\n" \
      "{\n"                                                                                          \
      "    for (int r = 0; r < rows; r++)\n"                                                         \
      "        for (int c = 0; c < cols; c++)\n"                                                     \
      "            y[r * cols + c] = x[r * cols + c] + b[c];\n"                                      \
      "}\n")                                                                                         \
    X(BIAS_ADD_INPLACE, "bias_add_inplace",                                                          \
      "/* y[r,c] += b[c] over (rows, cols) */\n"                                                      \
      "static void bias_add_inplace(float *restrict y, const float *restrict b, int rows, int cols)\n" \
      "{\n"                                                                                          \
      "    for (int r = 0; r < rows; r++)\n"                                                         \
      "        for (int c = 0; c < cols; c++)\n"                                                     \
      "            y[r * cols + c] += b[c];\n"                                                       \
      "}\n")                                                                                         \
    X(SCALE, "scale",                                                                                \
      "/* y = alpha * x */\n"                                                                        \
      "static void scale(float *restrict y, const float *restrict x, float alpha, int n)\n"          \
      "{\n"                                                                                          \
      "    for (int i = 0; i < n; i++)\n"                                                            \
      "        y[i] = alpha * x[i];\n"                                                               \
      "}\n")                                                                                         \
    X(SCALE_INPLACE, "scale_inplace",                                                                \
      "/* y *= alpha */\n"                                                                           \
      "static void scale_inplace(float *restrict y, float alpha, int n)\n"                           \
      "{\n"                                                                                          \
      "    for (int i = 0; i < n; i++)\n"                                                            \
      "        y[i] = alpha * y[i];\n"                                                               \
      "}\n")                                                                                         \
    X(SOFTMAX, "softmax",                                                                            \
      "/* y = exp(x - max) / sum exp(x - max), row by row over (rows, cols); the sum in double */\n" \
      "static void softmax(float *restrict y, const float *restrict x, int rows, int cols)\n"        \
      "{\n"                                                                                          \
      "    for (int r = 0; r < rows; r++, x += cols, y += cols) {\n"                                 \
      "        float m = x[0];\n"                                                                    \
      "        for (int c = 1; c < cols; c++)\n"                                                     \
      "            m = x[c] > m ? x[c] : m;\n"                                                       \
      "        double sum = 0.0;\n"                                                                  \
      "        for (int c = 0; c < cols; c++) {\n"                                                   \
      "            y[c] = expf(x[c] - m);\n"                                                         \
      "            sum += y[c];\n"                                                                   \
      "        }\n"                                                                                  \
      "        const double inv = 1.0 / sum;\n"                                                      \
      "        for (int c = 0; c < cols; c++)\n"                                                     \
      "            y[c] = (float)(y[c] * inv);\n"                                                    \
      "    }\n"                                                                                      \
      "}\n")                                                                                         \
    X(WINDOW, "window",                                                                              \
      "/* The window offsets [*lo, *hi) of output index o along one axis whose input cell\n"         \
      " * o * stride - pad + t * dil lies inside [0, in) */\n"                                       \
      "static void window(int o, int stride, int pad, int dil, int k, int in, int *lo, int *hi)\n"  \
      "{\n"                                                                                          \
      "    const int first = o * stride - pad;\n"                                                    \
      "    int l = first >= 0 ? 0 : (-first + dil - 1) / dil;\n"                                     \
      "    int h = first > in - 1 ? 0 : (in - 1 - first) / dil + 1;\n"                               \
      "    h = h > k ? k : h;\n"                                                                     \
      "    *lo = l > h ? h : l;\n"                                                                   \
      "    *hi = h;\n"                                                                               \
      "}\n")                                                                                         \
    X(CONV, "conv",                                                                                  \
      "/* y (oh, ow, f) = x (h, w, c) convolved with k (kh, kw, c, f), channels last: stride (sh, sw),\n" \
      " * dilation (dh, dw), padding (pt, pl) before; cells outside x count as zero */\n"             \
      "static void conv(float *restrict y, const float *restrict x, const float *restrict k, int h, int w, int c,\n" \
      "                 int kh, int kw, int f, int sh, int sw, int dh, int dw, int pt, int pl, int oh, int ow)\n" \
      "{\n"                                                                                          \
      "    for (int oy = 0; oy < oh; oy++) {\n"                                                      \
      "        int ky_lo, ky_hi;\n"                                                                  \
      "        window(oy, sh, pt, dh, kh, h, &ky_lo, &ky_hi);\n"                                     \
      "        for (int ox = 0; ox < ow; ox++) {\n"                                                  \
      "            int kx_lo, kx_hi;\n"                                                              \
      "            window(ox, sw, pl, dw, kw, w, &kx_lo, &kx_hi);\n"                                 \
      "            float *restrict yo = y + (oy * ow + ox) * f;\n"                                   \
      "            for (int j = 0; j < f; j++)\n"                                                    \
      "                yo[j] = 0.0f;\n"                                                              \
      "            for (int ky = ky_lo; ky < ky_hi; ky++) {\n"                                       \
      "                const float *xrow = x + (oy * sh - pt + ky * dh) * w * c, *krow = k + ky * kw * c * f;\n" \
      "                if (dw == 1)  /* the row's cells inside x: one run of (kx, c) in x and in k */\n" \
      "                    vecmat_add(yo, xrow + (ox * sw - pl + kx_lo) * c, krow + kx_lo * c * f,\n"   \
      "                               (kx_hi - kx_lo) * c, f, f);\n"                                \
      "                else\n"                                                                      \
      "                    for (int kx = kx_lo; kx < kx_hi; kx++)\n"                                 \
      "                        vecmat_add(yo, xrow + (ox * sw - pl + kx * dw) * c, krow + kx * c * f, c, f, f);\n" \
      "            }\n"                                                                             \
      "        }\n"                                                                                  \
      "    }\n"                                                                                      \
      "}\n")                                                                                         \
    X(DEPTHWISE, "depthwise",                                                                        \
      "/* y (oh, ow, c*dm) = x (h, w, c) convolved channel by channel with k (kh, kw, c, dm): output\n" \
      " * channel i*dm + m sees input channel i alone (Keras DepthwiseConv2D); windows as conv's */\n" \
      "static void depthwise(float *restrict y, const float *restrict x, const float *restrict k, int h, int w,\n" \
      "                      int c, int kh, int kw, int dm, int sh, int sw, int dh, int dw, int pt, int pl, int oh,\n" \
      "                      int ow)\n"                                                             \
      "{\n"                                                                                          \
      "    const int f = c * dm;\n"                                                                  \
      "    for (int oy = 0; oy < oh; oy++) {\n"                                                      \
      "        int ky_lo, ky_hi;\n"                                                                  \
      "        window(oy, sh, pt, dh, kh, h, &ky_lo, &ky_hi);\n"                                     \
      "        for (int ox = 0; ox < ow; ox++) {\n"                                                  \
      "            int kx_lo, kx_hi;\n"                                                              \
      "            window(ox, sw, pl, dw, kw, w, &kx_lo, &kx_hi);\n"                                 \
      "            float *restrict yo = y + (oy * ow + ox) * f;\n"                                   \
      "            for (int j = 0; j < f; j++)\n"                                                    \
      "                yo[j] = 0.0f;\n"                                                              \
      "            for (int ky = ky_lo; ky < ky_hi; ky++)\n"                                         \
      "                for (int kx = kx_lo; kx < kx_hi; kx++) {\n"                                   \
      "                    const float *xc = x + ((oy * sh - pt + ky * dh) * w + ox * sw - pl + kx * dw) * c;\n" \
      "                    const float *kc = k + (ky * kw + kx) * f;\n"                              \
      "                    for (int i = 0; i < c; i++)\n"                                            \
      "                        for (int m = 0; m < dm; m++)\n"                                       \
      "                            yo[i * dm + m] += xc[i] * kc[i * dm + m];\n"                      \
      "                }\n"                                                                          \
      "        }\n"                                                                                  \
      "    }\n"                                                                                      \
      "}\n")                                                                                         \
    X(MAX_POOL, "max_pool",                                                                          \
      "/* y (oh, ow, c) = the maximum of x (h, w, c) over each window's cells inside x */\n"          \
      "static void max_pool(float *restrict y, const float *restrict x, int h, int w, int c, int kh, int kw,\n" \
      "                     int sh, int sw, int dh, int dw, int pt, int pl, int oh, int ow)\n"       \
      "{\n"                                                                                          \
      "    for (int oy = 0; oy < oh; oy++) {\n"                                                      \
      "        int ky_lo, ky_hi;\n"                                                                  \
      "        window(oy, sh, pt, dh, kh, h, &ky_lo, &ky_hi);\n"                                     \
      "        for (int ox = 0; ox < ow; ox++, y += c) {\n"                                          \
      "            int kx_lo, kx_hi;\n"                                                              \
      "            window(ox, sw, pl, dw, kw, w, &kx_lo, &kx_hi);\n"                                 \
      "            const int iy0 = oy * sh - pt, ix0 = ox * sw - pl;\n"                              \
      "            const float *first = x + ((iy0 + ky_lo * dh) * w + ix0 + kx_lo * dw) * c;\n"      \
      "            for (int j = 0; j < c; j++)\n"                                                    \
      "                y[j] = first[j];\n"                                                           \
      "            for (int ky = ky_lo; ky < ky_hi; ky++)\n"                                         \
      "                for (int kx = kx_lo; kx < kx_hi; kx++) {\n"                                   \
      "                    const float *v = x + ((iy0 + ky * dh) * w + ix0 + kx * dw) * c;\n"        \
      "                    for (int j = 0; j < c; j++)\n"                                            \
      "                        y[j] = v[j] > y[j] ? v[j] : y[j];\n"                                  \
      "                }\n"                                                                          \
      "        }\n"                                                                                  \
      "    }\n"                                                                                      \
      "}\n")                                                                                         \
    X(AVERAGE_POOL, "average_pool",                                                                  \
      "/* y (oh, ow, c) = the mean of x (h, w, c) over each window's cells inside x */\n"             \
      "static void average_pool(float *restrict y, const float *restrict x, int h, int w, int c, int kh, int kw,\n" \
      "                         int sh, int sw, int dh, int dw, int pt, int pl, int oh, int ow)\n"   \
      "{\n"                                                                                          \
      "    for (int oy = 0; oy < oh; oy++) {\n"                                                      \
      "        int ky_lo, ky_hi;\n"                                                                  \
      "        window(oy, sh, pt, dh, kh, h, &ky_lo, &ky_hi);\n"                                     \
      "        for (int ox = 0; ox < ow; ox++, y += c) {\n"                                          \
      "            int kx_lo, kx_hi;\n"                                                              \
      "            window(ox, sw, pl, dw, kw, w, &kx_lo, &kx_hi);\n"                                 \
      "            const int iy0 = oy * sh - pt, ix0 = ox * sw - pl;\n"                              \
      "            for (int j = 0; j < c; j++)\n"                                                    \
      "                y[j] = 0.0f;\n"                                                               \
      "            for (int ky = ky_lo; ky < ky_hi; ky++)\n"                                         \
      "                for (int kx = kx_lo; kx < kx_hi; kx++) {\n"                                   \
      "                    const float *v = x + ((iy0 + ky * dh) * w + ix0 + kx * dw) * c;\n"        \
      "                    for (int j = 0; j < c; j++)\n"                                            \
      "                        y[j] += v[j];\n"                                                      \
      "                }\n"                                                                          \
      "            const float count = (float)((ky_hi - ky_lo) * (kx_hi - kx_lo));\n"                \
      "            for (int j = 0; j < c; j++)\n"                                                    \
      "                y[j] /= count;\n"                                                             \
      "        }\n"                                                                                  \
      "    }\n"                                                                                      \
      "}\n")                                                                                         \
    X(BATCH_NORM, "batch_norm",                                                                      \
      "/* BatchNormalization (inference): y[r,j] = (x[r,j] - mean[j]) scale[j] + shift[j] over (rows, c),\n" \
      " * scale = gamma / sqrt(moving_variance + eps) and shift = beta folded by nncc */\n"          \
      "static void batch_norm(float *restrict y, const float *restrict x, const float *restrict mean,\n" \
      "                       const float *restrict scale, const float *restrict shift, int rows, int c)\n" \
      "{\n"                                                                                          \
      "    for (int r = 0; r < rows; r++)\n"                                                         \
      "        for (int j = 0; j < c; j++)\n"                                                        \
      "            y[r * c + j] = (x[r * c + j] - mean[j]) * scale[j] + shift[j];\n"                 \
      "}\n")                                                                                         \
    X(TANH_FLOAT, "tanh_float",                                                                      \
      "/* tanh of recurrent layers, as nncc's runtime computes it (Cephes tanhf): an odd polynomial\n" \
      " * below |x| = 0.625, 1 - 2 / (e^{2|x|} + 1) above */\n"                                      \
      "static float tanh_float(float x)\n"                                                           \
      "{\n"                                                                                          \
      "    const float a = fabsf(x);\n"                                                              \
      "    if (a < 0.625f) {\n"                                                                      \
      "        const float s = x * x;\n"                                                             \
      "        return ((((-5.70498872745e-3f * s + 2.06390887954e-2f) * s - 5.37397155531e-2f) * s +\n" \
      "                 1.33314422036e-1f) * s - 3.33332819422e-1f) * s * x + x;\n"                  \
      "    }\n"                                                                                      \
      "    const float t = 1.0f - 2.0f / (expf(a + a) + 1.0f);\n"                                    \
      "    return x < 0.0f ? -t : t;\n"                                                              \
      "}\n")

typedef enum {
#define X(e, name, code) H_##e,
    HELPER_TABLE(X)
#undef X
    H_COUNT
} Helper;

static const char *const helper_name[H_COUNT] = {
#define X(e, name, code) [H_##e] = name,
    HELPER_TABLE(X)
#undef X
};

static const char *const helper_code[H_COUNT] = {
#define X(e, name, code) [H_##e] = code,
    HELPER_TABLE(X)
#undef X
};

/* Elementwise binary ops as expressions over a and b: X(ENUM, name, y = f(a, b)). Each has three
 * forms: name(y, a, b, n); name_inplace(y, b, n), y = f(y, b); name_self(y, n), y = f(y, y). */
#define BINARY_TABLE(X)                    \
    X(ADD, "add", "a + b")                 \
    X(SUB, "sub", "a - b")                 \
    X(MUL, "mul", "a * b")                 \
    X(MAXIMUM, "maximum", "a >= b ? a : b")

typedef enum {
#define X(e, name, f) B_##e,
    BINARY_TABLE(X)
#undef X
    B_COUNT
} Binary;

static const char *const binary_name[B_COUNT] = {
#define X(e, name, f) [B_##e] = name,
    BINARY_TABLE(X)
#undef X
};

static const char *const binary_expr[B_COUNT] = {
#define X(e, name, f) [B_##e] = f,
    BINARY_TABLE(X)
#undef X
};

enum { FORM_OUT, FORM_INPLACE, FORM_SELF, FORMS };  /* y = f(x); f(y) in place; binary: f(y, y) */
static const char *const form_suffix[FORMS] = {"", "_inplace", "_self"};

/* The recurrent activations (NnrtRnnAct) as expressions over v. */
static const char *const rnn_act_name[] = {"tanh", "sigmoid", "hard_sigmoid", "relu", "linear"};
static const char *const rnn_act_expr[] = {"tanh_float(v)", "1.0f / (1.0f + expf(-v))",
                                           "fminf(fmaxf(0.2f * v + 0.5f, 0.0f), 1.0f)", "(v > 0.0f ? v : 0.0f)",
                                           "v"};
static const char *const rnn_kind_name[] = {"simple_rnn", "lstm", "gru"};
enum { RNN_KINDS = 3, RNN_ACTS = 5 };

/* A constant array nncc computes (BatchNormalization's folded scale and shift). */
typedef struct Folded {
    const char *name, *comment;
    float *values;
    int count;
    struct Folded *next;
} Folded;

typedef struct {
    FILE *out;                   /* P_infer's body */
    const Program *p;
    const Graph *g;
    const float *weights;        /* the weight block of W.h5 */
    bool need[H_COUNT];
    bool binary[B_COUNT][FORMS];
    bool act[ACT_COUNT][FORMS], act_bias[ACT_COUNT][FORMS - 1];
    bool rnn[RNN_KINDS][2][RNN_ACTS][RNN_ACTS];  /* kind, GRU reset_after, activation, recurrent activation */
    const char **weight_array;   /* per weight: its array's name once the code reads it, else NULL */
    const CustomFn *customs[64]; /* custom activations the code calls */
    bool custom_form[64][FORMS - 1], custom_bias[64][FORMS - 1];
    int ncustoms;
    Folded *folded, **folded_tail;
    StrMap names;                /* names this file adds beside the graph's */
} Emitter;

static void out(Emitter *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out(Emitter *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(e->out, fmt, ap);
    va_end(ap);
}

static const Node *base_of(const Node *n)
{
    while (n->storage == ST_ALIAS)
        n = n->src[0];
    return n;
}

static long long count(const Node *n)
{
    return (long long)shape_size(&n->shape);
}

static const char *flt(Arena *a, double v)
{
    return c_float(a, v);
}

static bool name_taken(const char *name, const void *ctx)
{
    const Emitter *e = ctx;
    return strmap_get(&e->g->names, name) || strmap_get(&e->names, name) || emit_reserved_name(name);
}

/* A file-scope name no node, helper or earlier constant has (cquote.c). */
static const char *fresh_name(Emitter *e, const char *base)
{
    Arena *a = e->g->arena;
    const char *name = c_name_unique(a, base, name_taken, e);
    strmap_put(a, &e->names, name, (void *)name);
    return name;
}

/* Input text for a comment (cquote.c). */
static const char *comment_text(const Emitter *e, const char *s)
{
    return c_comment_text(e->g->arena, s);
}

/* The C expression for a node's buffer; a weight's array is emitted because it is read here. */
static const char *ref(Emitter *e, const Node *n)
{
    if (n->storage == ST_WEIGHT) {
        if (!e->weight_array[n->w->index])
            e->weight_array[n->w->index] = n->name;
        return e->weight_array[n->w->index];
    }
    return n->name;
}

static void comment(Emitter *e, const Node *n)
{
    const char *shape = shape_str(e->g->arena, &n->shape, false);
    if (n->loc.file)
        out(e, "\n    /* %s:%d %s: %s %s */\n", comment_text(e, n->loc.file), n->loc.line,
            comment_text(e, n->layer ? n->layer : n->name),
            op_info[n->op].name, shape);
    else
        out(e, "\n    /* %s %s */\n", op_info[n->op].name, shape);
}

/* Declare n's buffer in the workspace before the kernel that writes it. */
static void define(Emitter *e, const Node *n)
{
    assert(n->storage == ST_ARENA);
    out(e, "    float *const %s = arena + %zu;\n", n->name, n->offset);
}

/* ---- one kernel per op; NULL in the table: not supported standalone ------------------------ */

static void k_none(Emitter *e, const Node *n) { (void)e, (void)n; }  /* inputs and weights: declared elsewhere */

static void k_reshape(Emitter *e, const Node *n)
{
    bool readonly = base_of(n)->storage == ST_INPUT || base_of(n)->storage == ST_WEIGHT;
    comment(e, n);
    out(e, "    %sfloat *const %s = %s;  /* a view */\n", readonly ? "const " : "", n->name, ref(e, n->src[0]));
}

static void k_matmul(Emitter *e, const Node *n)
{
    const Node *a = n->src[0], *b = n->src[1];
    e->need[H_MATMUL] = e->need[H_VECMAT] = true;
    comment(e, n);
    define(e, n);
    out(e, "    matmul(%s, %s, %s, %lld, %lld, %lld);\n", n->name, ref(e, a), ref(e, b), (long long)node_rows(a),
        (long long)node_cols(a), (long long)node_cols(b));
}

static void k_bias_add(Emitter *e, const Node *n)
{
    comment(e, n);
    define(e, n);
    if (n->inplace) {
        e->need[H_BIAS_ADD_INPLACE] = true;
        out(e, "    bias_add_inplace(%s, %s, %lld, %lld);\n", n->name, ref(e, n->src[1]), (long long)node_rows(n),
            (long long)node_cols(n));
    } else {
        e->need[H_BIAS_ADD] = true;
        out(e, "    bias_add(%s, %s, %s, %lld, %lld);\n", n->name, ref(e, n->src[0]), ref(e, n->src[1]),
            (long long)node_rows(n), (long long)node_cols(n));
    }
}

/* The helper stem of an activation node: "relu", or "custom_name" (noted for its helpers). */
static const char *act_stem(Emitter *e, const Node *n, int form, bool bias)
{
    if (n->attr != ACT_CUSTOM) {
        if (bias)
            e->act_bias[n->attr][form] = true;
        else
            e->act[n->attr][form] = true;
        return act_info[n->attr].name;
    }
    int i = 0;
    while (i < e->ncustoms && e->customs[i] != n->custom)
        i++;
    assert(i < 64);
    if (i == e->ncustoms)
        e->customs[e->ncustoms++] = n->custom;
    if (bias)
        e->custom_bias[i][form] = true;
    else
        e->custom_form[i][form] = true;
    return arena_printf(e->g->arena, "custom_%s", n->custom->name);
}

static const char *alpha_arg(Emitter *e, const Node *n)
{
    return act_has_alpha(n->attr) ? arena_printf(e->g->arena, ", %s", flt(e->g->arena, n->alpha)) : "";
}

static void k_activation(Emitter *e, const Node *n)
{
    comment(e, n);
    define(e, n);
    if (n->inplace)
        out(e, "    %s_inplace(%s, %lld%s);\n", act_stem(e, n, FORM_INPLACE, false), n->name, count(n), alpha_arg(e, n));
    else
        out(e, "    %s_forward(%s, %s, %lld%s);\n", act_stem(e, n, FORM_OUT, false), n->name, ref(e, n->src[0]),
            count(n), alpha_arg(e, n));
}

static void k_bias_activation(Emitter *e, const Node *n)
{
    comment(e, n);
    define(e, n);
    if (n->inplace)
        out(e, "    %s_bias_inplace(%s, %s, %lld, %lld%s);\n", act_stem(e, n, FORM_INPLACE, true), n->name,
            ref(e, n->src[1]), (long long)node_rows(n), (long long)node_cols(n), alpha_arg(e, n));
    else
        out(e, "    %s_bias_forward(%s, %s, %s, %lld, %lld%s);\n", act_stem(e, n, FORM_OUT, true), n->name,
            ref(e, n->src[0]), ref(e, n->src[1]), (long long)node_rows(n), (long long)node_cols(n), alpha_arg(e, n));
}

static void k_softmax(Emitter *e, const Node *n)
{
    e->need[H_SOFTMAX] = true;
    comment(e, n);
    define(e, n);
    out(e, "    softmax(%s, %s, %lld, %lld);\n", n->name, ref(e, n->src[0]), (long long)node_rows(n), (long long)node_cols(n));
}

static void binary(Emitter *e, const Node *n, Binary op)
{
    comment(e, n);
    define(e, n);
    const char *name = binary_name[op];
    if (!n->inplace) {
        e->binary[op][FORM_OUT] = true;
        out(e, "    %s(%s, %s, %s, %lld);\n", name, n->name, ref(e, n->src[0]), ref(e, n->src[1]), count(n));
    } else if (base_of(n->src[1]) == base_of(n->src[0])) {  /* f(x, x), over x's buffer */
        e->binary[op][FORM_SELF] = true;
        out(e, "    %s_self(%s, %lld);\n", name, n->name, count(n));
    } else {
        e->binary[op][FORM_INPLACE] = true;
        out(e, "    %s_inplace(%s, %s, %lld);\n", name, n->name, ref(e, n->src[1]), count(n));
    }
}

static void k_add(Emitter *e, const Node *n) { binary(e, n, B_ADD); }
static void k_sub(Emitter *e, const Node *n) { binary(e, n, B_SUB); }

/* a residual Add and its activation (pass_fuse): the sum, then the activation over it in place */
static void k_add_activation(Emitter *e, const Node *n)
{
    binary(e, n, B_ADD);
    out(e, "    %s_inplace(%s, %lld%s);\n", act_stem(e, n, FORM_INPLACE, false), n->name, count(n), alpha_arg(e, n));
}
static void k_mul(Emitter *e, const Node *n) { binary(e, n, B_MUL); }
static void k_maximum(Emitter *e, const Node *n) { binary(e, n, B_MAXIMUM); }

static void k_scale(Emitter *e, const Node *n)
{
    comment(e, n);
    define(e, n);
    const char *alpha = flt(e->g->arena, n->alpha);
    if (n->inplace) {
        e->need[H_SCALE_INPLACE] = true;
        out(e, "    scale_inplace(%s, %s, %lld);\n", n->name, alpha, count(n));
    } else {
        e->need[H_SCALE] = true;
        out(e, "    scale(%s, %s, %s, %lld);\n", n->name, ref(e, n->src[0]), alpha, count(n));
    }
}

static int64_t outer_rows(const Node *n, int axis)
{
    int64_t r = 1;
    for (int i = 0; i < axis; i++)
        r *= n->shape.dim[i];
    return r;
}

static void k_concat(Emitter *e, const Node *n)
{
    e->need[H_COPY_ROWS] = true;
    comment(e, n);
    define(e, n);
    int64_t at = 0, stride = node_span(n, n->axis);
    for (int i = 0; i < n->nsrc; i++) {
        int64_t len = node_span(n->src[i], n->axis);
        out(e, "    copy_rows(%s + %lld, %lld, %s, %lld, %lld, %lld);\n", n->name, (long long)at, (long long)stride,
            ref(e, n->src[i]), (long long)len, (long long)outer_rows(n, n->axis), (long long)len);
        at += len;
    }
}

static void k_slice(Emitter *e, const Node *n)
{
    const Node *x = n->src[0];
    int64_t len = node_span(n, n->axis), inner = n->shape.dim[n->axis] ? len / n->shape.dim[n->axis] : 1;
    e->need[H_COPY_ROWS] = true;
    comment(e, n);
    define(e, n);
    out(e, "    copy_rows(%s, %lld, %s + %lld, %lld, %lld, %lld);\n", n->name, (long long)len, ref(e, x),
        (long long)(n->start * inner), (long long)node_span(x, n->axis), (long long)outer_rows(n, n->axis),
        (long long)len);
}

/* "h, w, c, kh, kw" of a window op's input x (1-D ops: h = kh = 1) */
static const char *window_args(Emitter *e, const Node *n, const Node *x)
{
    const Shape *s = &x->shape;
    int64_t h = s->rank == 3 ? s->dim[0] : 1, w = s->dim[s->rank - 2], c = s->dim[s->rank - 1];
    return arena_printf(e->g->arena, "%lld, %lld, %lld, %d, %d", (long long)h, (long long)w, (long long)c,
                        n->conv.kh, n->conv.kw);
}

/* "sh, sw, dh, dw, pt, pl, oh, ow" */
static const char *stride_args(Emitter *e, const Node *n)
{
    return arena_printf(e->g->arena, "%d, %d, %d, %d, %d, %d, %d, %d", n->conv.sh, n->conv.sw, n->conv.dh,
                        n->conv.dw, n->conv.pt, n->conv.pl, n->conv.oh, n->conv.ow);
}

static void k_conv(Emitter *e, const Node *n)
{
    const Node *x = n->src[0], *k = n->src[1];
    if (n->attr) {  /* depthwise, depth multiplier attr */
        e->need[H_DEPTHWISE] = e->need[H_WINDOW] = true;
        comment(e, n);
        define(e, n);
        out(e, "    depthwise(%s, %s, %s, %s, %d,\n              %s);\n", n->name, ref(e, x), ref(e, k),
            window_args(e, n, x), n->attr, stride_args(e, n));
        return;
    }
    e->need[H_CONV] = e->need[H_WINDOW] = e->need[H_VECMAT] = true;
    comment(e, n);
    define(e, n);
    out(e, "    conv(%s, %s, %s, %s, %lld,\n         %s);\n", n->name, ref(e, x), ref(e, k), window_args(e, n, x),
        (long long)node_cols(k), stride_args(e, n));
}

static void k_pool(Emitter *e, const Node *n)
{
    const Node *x = n->src[0];
    const char *fn = n->attr ? "average_pool" : "max_pool";
    e->need[n->attr ? H_AVERAGE_POOL : H_MAX_POOL] = e->need[H_WINDOW] = true;
    comment(e, n);
    define(e, n);
    out(e, "    %s(%s, %s, %s,\n    %*s%s);\n", fn, n->name, ref(e, x), window_args(e, n, x), (int)strlen(fn) + 1, "",
        stride_args(e, n));
}

/* A constant array of count floats, written after the weights. */
static const char *fold(Emitter *e, const char *base, const char *what, float *values, int count)
{
    Folded *f = arena_alloc(e->g->arena, sizeof *f);
    *f = (Folded){fresh_name(e, base), what, values, count, NULL};
    *e->folded_tail = f;
    e->folded_tail = &f->next;
    return f->name;
}

static void k_bn_infer(Emitter *e, const Node *n)
{
    const Node *x = n->src[0];
    const Weight *var = n->src[2]->w, *gamma = n->has_gamma ? n->src[3]->w : NULL;
    const Weight *beta = n->has_beta ? n->src[n->has_gamma ? 4 : 3]->w : NULL;
    int c = (int)node_cols(x);
    Arena *a = e->g->arena;
    float *scale = arena_alloc(a, (size_t)c * sizeof *scale), *shift = arena_alloc(a, (size_t)c * sizeof *shift);
    for (int j = 0; j < c; j++) {  /* runtime/norm.c's nnrt_bn_inference, once */
        float inv = (float)(1.0 / sqrt((double)e->weights[var->offset + j] + (double)n->eps));
        scale[j] = gamma ? e->weights[gamma->offset + j] * inv : inv;
        shift[j] = beta ? e->weights[beta->offset + j] : 0.0f;
    }
    const char *layer = comment_text(e, n->layer ? n->layer : n->name);
    const char *s = fold(e, arena_printf(a, "%s_scale", n->name),
                         arena_printf(a, "%s: scale = %s1 / sqrt(moving_variance + %g)", layer,
                                      gamma ? "gamma * " : "", (double)n->eps), scale, c);
    const char *t = fold(e, arena_printf(a, "%s_shift", n->name),
                         arena_printf(a, "%s: shift = %s", layer, beta ? "beta" : "0 (center: false)"), shift, c);
    e->need[H_BATCH_NORM] = true;
    comment(e, n);
    define(e, n);
    out(e, "    batch_norm(%s, %s, %s, %s, %s, %lld, %d);\n", n->name, ref(e, x), ref(e, n->src[1]), s, t,
        (long long)node_rows(x), c);
}

/* "lstm_forward_tanh_sigmoid": the recurrent helper of a kind, GRU variant and activations */
static const char *rnn_helper(Arena *a, int kind, int reset_after, int act, int rec)
{
    return arena_printf(a, "%s_forward_%s%s%s%s", rnn_kind_name[kind], rnn_act_name[act],
                        kind == NNRT_SIMPLE_RNN ? "" : "_", kind == NNRT_SIMPLE_RNN ? "" : rnn_act_name[rec],
                        kind == NNRT_GRU && reset_after ? "_reset_after" : "");
}

static void k_rnn(Emitter *e, const Node *n)
{
    const Node *x = n->src[0];
    e->rnn[n->rnn.kind][n->rnn.reset_after][n->rnn.activation][n->rnn.recurrent_activation] = true;
    e->need[H_VECMAT] = true;
    if (n->rnn.activation == NNRT_RNN_TANH ||
        (n->rnn.kind != NNRT_SIMPLE_RNN && n->rnn.recurrent_activation == NNRT_RNN_TANH))
        e->need[H_TANH_FLOAT] = true;
    const char *fn = rnn_helper(e->g->arena, n->rnn.kind, n->rnn.reset_after, n->rnn.activation,
                                n->rnn.recurrent_activation);
    comment(e, n);
    define(e, n);
    out(e, "    %s(%s, %s, %s, %s, %s, %lld, %lld, %d, %d);\n", fn, n->name, ref(e, x), ref(e, n->src[1]),
        ref(e, n->src[2]), n->rnn.has_bias ? ref(e, n->src[3]) : "0", (long long)x->shape.dim[0],
        (long long)x->shape.dim[1], n->rnn.units, n->rnn.go_backwards);
}

static void k_rnn_output(Emitter *e, const Node *n)
{
    const Node *tape = n->src[0];
    int64_t T = tape->src[0]->shape.dim[0], u = n->rnn.units;
    e->need[H_COPY] = true;
    comment(e, n);
    define(e, n);
    if (n->rnn.which == NNRT_RNN_SEQUENCE)  /* h (T, u) leads the tape, in processing order as Keras returns it */
        out(e, "    copy(%s, %s, %lld);\n", n->name, ref(e, tape), (long long)(T * u));
    else
        out(e, "    copy(%s, %s + %lld, %lld);  /* h of the last step */\n", n->name, ref(e, tape),
            (long long)((T - 1) * u), (long long)u);
}

typedef void (*KernelFn)(Emitter *e, const Node *n);
static const KernelFn kernels[OP_COUNT] = {
    [OP_INPUT] = k_none,
    [OP_WEIGHT] = k_none,
    [OP_RESHAPE] = k_reshape,
    [OP_MATMUL] = k_matmul,
    [OP_BIAS_ADD] = k_bias_add,
    [OP_ACTIVATION] = k_activation,
    [OP_BIAS_ACTIVATION] = k_bias_activation,
    [OP_ADD_ACTIVATION] = k_add_activation,
    [OP_SOFTMAX] = k_softmax,
    [OP_MUL] = k_mul,
    [OP_ADD] = k_add,
    [OP_SUB] = k_sub,
    [OP_SCALE] = k_scale,
    [OP_MAXIMUM] = k_maximum,
    [OP_CONCAT] = k_concat,
    [OP_SLICE] = k_slice,
    [OP_CONV] = k_conv,
    [OP_POOL] = k_pool,
    [OP_BN_INFER] = k_bn_infer,
    [OP_RNN] = k_rnn,
    [OP_RNN_OUTPUT] = k_rnn_output,
};

/* ---- what the driver calls before planning, and the check --------------------------------- */

/* The weight a node reads, as floats of the block. */
static float *values(float *block, const Node *w)
{
    return block + w->w->offset;
}

/* BatchNormalization folded into the kernel and bias before it, with the
 * weights known: BN(x W + b) = x (W scale) + ((b - mean) scale + beta),
 * scale = gamma / sqrt(var + eps) per output channel (W's last axis). The
 * BN node becomes a view of the bias add, or, without a bias (use_bias:
 * false), the bias add itself, its bias written over the moving mean's
 * values. The kernel, bias and mean must have no other reader. */
static void fold_bn(Graph *g, float *block, bool report)
{
    int *readers = arena_alloc(g->arena, (size_t)g->nnodes * sizeof *readers);
    for (int i = 0; i < g->nnodes; i++)
        for (int s = 0; s < g->nodes[i]->nsrc; s++)
            readers[g->nodes[i]->src[s]->id]++;
    for (int i = 0; i < g->nnodes; i++) {
        Node *n = g->nodes[i];
        if (n->op != OP_BN_INFER || n->is_output)
            continue;
        Node *p = n->src[0], *bias_add = NULL, *mean = n->src[1], *var = n->src[2];
        if (p->op == OP_BIAS_ADD && readers[p->id] == 1 && p->src[1]->storage == ST_WEIGHT) {
            bias_add = p;
            p = p->src[0];
        }
        bool linear = (p->op == OP_CONV && p->attr == 0) || (p->op == OP_MATMUL && !p->trans_a && !p->trans_b);
        Node *kernel = linear ? p->src[1] : NULL;
        if (!linear || readers[p->id] != 1 || kernel->storage != ST_WEIGHT || readers[kernel->id] != 1 ||
            mean->storage != ST_WEIGHT || var->storage != ST_WEIGHT || readers[mean->id] != 1 ||
            (bias_add && readers[bias_add->src[1]->id] != 1))
            continue;
        const float *gamma = n->has_gamma ? values(block, n->src[3]) : NULL;
        const float *beta = n->has_beta ? values(block, n->src[n->has_gamma ? 4 : 3]) : NULL;
        int64_t c = kernel->shape.dim[kernel->shape.rank - 1], rows = shape_size(&kernel->shape) / c;
        float *k = values(block, kernel), *mu = values(block, mean), *b = bias_add ? values(block, bias_add->src[1]) : NULL;
        const float *v = values(block, var);
        for (int64_t j = 0; j < c; j++) {
            double scale = (gamma ? gamma[j] : 1.0) / sqrt((double)v[j] + (double)n->eps);
            for (int64_t r = 0; r < rows; r++)
                k[r * c + j] = (float)(k[r * c + j] * scale);
            double shift = ((b ? b[j] : 0.0) - mu[j]) * scale + (beta ? beta[j] : 0.0);
            (b ? b : mu)[j] = (float)shift;  /* without a bias, the mean's values hold it */
        }
        if (bias_add) {  /* the BN is now the bias add's value */
            n->op = OP_RESHAPE;
            n->nsrc = 1;
            n->src[0] = bias_add;
        } else {
            n->op = OP_BIAS_ADD;
            n->nsrc = 2;
            n->src[0] = p;
            n->src[1] = mean;
        }
        if (report)
            printf("fold_bn (standalone): %s into %s's kernel%s\n", n->name, p->name,
                   bias_add ? " and bias" : " and a bias (use_bias: false)");
    }
}

void standalone_prepare(Graph *g, float *weights, bool report)
{
    fold_bn(g, weights, report);
    bool *keep = arena_alloc(g->arena, (size_t)(g->nnodes + 1) * sizeof *keep);
    for (int i = g->nnodes - 1; i >= 0; i--) {
        Node *n = g->nodes[i];
        keep[i] |= n->is_output || n->op == OP_INPUT;
        if (keep[i])
            for (int s = 0; s < n->nsrc; s++)
                keep[n->src[s]->id] = true;
    }
    int k = 0;
    for (int i = 0; i < g->nnodes; i++) {
        if (!keep[i])
            continue;
        g->nodes[i]->id = k;
        g->nodes[i]->workspace = 0;
        g->nodes[k++] = g->nodes[i];
    }
    g->nnodes = k;
}

const Node *standalone_unsupported(const Graph *g, const char **why)
{
    for (int i = 0; i < g->nnodes; i++) {
        const Node *n = g->nodes[i];
        *why = NULL;
        if (!kernels[n->op])
            *why = "it has no standalone kernel";
        else if (n->op == OP_MATMUL && (n->trans_a || n->trans_b))
            *why = "a transposed matmul has no standalone kernel";
        else if (n->op == OP_RNN && n->rnn.has_rmask)
            *why = "recurrent dropout runs in training only";
        else if (n->op == OP_RNN && n->rnn.has_state)
            *why = "an initial_state has no standalone kernel yet";
        else if (n->op == OP_RNN_OUTPUT && n->rnn.which == NNRT_RNN_CELL)
            *why = "LSTM's last cell state (return_state) has no standalone kernel yet";
        else if ((n->op == OP_BN_INFER && (n->src[1]->storage != ST_WEIGHT || n->src[2]->storage != ST_WEIGHT ||
                                           (n->nsrc > 3 && n->src[3]->storage != ST_WEIGHT) ||
                                           (n->nsrc > 4 && n->src[4]->storage != ST_WEIGHT))))
            *why = "its statistics are not weights";
        else if (n->int32)
            *why = "integer tensors have no standalone kernel";
        else if (shape_size(&n->shape) > INT_MAX / 8 || (n->storage == ST_ARENA && n->offset > (size_t)INT_MAX / 8))
            *why = "the tensor is too large for int indices";
        if (*why)
            return n;
    }
    return NULL;
}

/* ---- names the generated C keeps for itself ------------------------------------------------ */

bool standalone_reserved_name(const char *name)
{
    static const char *const locals[] = {"inputs", "outputs", "workspace", "arena"};  /* of P_infer */
    for (size_t i = 0; i < sizeof locals / sizeof locals[0]; i++)
        if (!strcmp(name, locals[i]))
            return true;
    for (int h = 0; h < H_COUNT; h++)
        if (!strcmp(name, helper_name[h]))
            return true;
    for (int b = 0; b < B_COUNT; b++) {
        size_t len = strlen(binary_name[b]);
        if (!strncmp(name, binary_name[b], len))
            for (int f = 0; f < FORMS; f++)
                if (!strcmp(name + len, form_suffix[f]))
                    return true;
    }
    static const char *const act_suffixes[] = {"_forward", "_inplace", "_bias_forward", "_bias_inplace"};
    for (int k = 0; k < ACT_COUNT; k++) {
        size_t len = strlen(act_info[k].name);
        if (!strncmp(name, act_info[k].name, len))
            for (size_t s = 0; s < sizeof act_suffixes / sizeof act_suffixes[0]; s++)
                if (!strcmp(name + len, act_suffixes[s]))
                    return true;
    }
    /* the recurrent helpers, each by its exact name: a family reserved by a
     * prefix would leave c_name_unique no free candidate (cquote.c) */
    for (int k = 0; k < RNN_KINDS; k++)
        for (int r = 0; r < 2; r++)
            for (int act = 0; act < RNN_ACTS; act++)
                for (int rec = 0; rec < RNN_ACTS; rec++) {
                    char helper[96];
                    snprintf(helper, sizeof helper, "%s_forward_%s%s%s%s", rnn_kind_name[k], rnn_act_name[act],
                             k == NNRT_SIMPLE_RNN ? "" : "_", k == NNRT_SIMPLE_RNN ? "" : rnn_act_name[rec],
                             k == NNRT_GRU && r ? "_reset_after" : "");
                    if (!strcmp(name, helper))
                        return true;
                }
    return false;
}

/* ---- the helpers' text ------------------------------------------------------------------------ */

/* An elementwise helper over y = EXPR of x (activations): the forms asked for, with the bias forms. */
static void write_elementwise(FILE *f, const char *stem, const char *expr, const char *alpha, const bool *form,
                              const bool *bias)
{
    if (form[FORM_OUT])
        fprintf(f, "/* %s: y = %s */\n"
                   "static void %s_forward(float *restrict y, const float *restrict in, int n%s)\n{\n"
                   "    for (int i = 0; i < n; i++) {\n        const float x = in[i];\n        y[i] = %s;\n    }\n}\n\n",
                stem, expr, stem, alpha, expr);
    if (form[FORM_INPLACE])
        fprintf(f, "/* %s in place: y = %s of y */\n"
                   "static void %s_inplace(float *restrict y, int n%s)\n{\n"
                   "    for (int i = 0; i < n; i++) {\n        const float x = y[i];\n        y[i] = %s;\n    }\n}\n\n",
                stem, expr, stem, alpha, expr);
    if (bias[FORM_OUT])
        fprintf(f, "/* %s of x + b, in one pass over (rows, cols): y = %s */\n"
                   "static void %s_bias_forward(float *restrict y, const float *restrict in, const float *restrict b, "
                   "int rows, int cols%s)\n{\n"
                   "    for (int r = 0; r < rows; r++)\n        for (int c = 0; c < cols; c++) {\n"
                   "            const float x = in[r * cols + c] + b[c];\n            y[r * cols + c] = %s;\n        }\n}\n\n",
                stem, expr, stem, alpha, expr);
    if (bias[FORM_INPLACE])
        fprintf(f, "/* %s of y + b in place, over (rows, cols): y = %s */\n"
                   "static void %s_bias_inplace(float *restrict y, const float *restrict b, int rows, int cols%s)\n{\n"
                   "    for (int r = 0; r < rows; r++)\n        for (int c = 0; c < cols; c++) {\n"
                   "            const float x = y[r * cols + c] + b[c];\n            y[r * cols + c] = %s;\n        }\n}\n\n",
                stem, expr, stem, alpha, expr);
}

static void write_binary(FILE *f, Binary op, const bool *form)
{
    const char *name = binary_name[op], *expr = binary_expr[op];
    if (form[FORM_OUT])
        fprintf(f, "/* y = %s elementwise */\n"
                   "static void %s(float *restrict y, const float *restrict as, const float *restrict bs, int n)\n{\n"
                   "    for (int i = 0; i < n; i++) {\n        const float a = as[i], b = bs[i];\n        y[i] = %s;\n"
                   "    }\n}\n\n", expr, name, expr);
    if (form[FORM_INPLACE])
        fprintf(f, "/* y = %s elementwise with a = y, in place */\n"
                   "static void %s_inplace(float *restrict y, const float *restrict bs, int n)\n{\n"
                   "    for (int i = 0; i < n; i++) {\n        const float a = y[i], b = bs[i];\n        y[i] = %s;\n"
                   "    }\n}\n\n", expr, name, expr);
    if (form[FORM_SELF])
        fprintf(f, "/* y = %s elementwise with a = b = y, in place */\n"
                   "static void %s_self(float *restrict y, int n)\n{\n"
                   "    for (int i = 0; i < n; i++) {\n        const float a = y[i], b = y[i];\n        y[i] = %s;\n"
                   "    }\n}\n\n", expr, name, expr);
}

/* y[from, to) = act(y[from, to)) inside a recurrent helper */
static void write_rnn_act(FILE *f, const char *from, const char *to, const char *array, int act)
{
    if (act == NNRT_RNN_LINEAR)
        return;
    fprintf(f, "        for (int j = %s; j < %s; j++) {\n            const float v = %s[j];\n"
               "            %s[j] = %s;\n        }\n", from, to, array, array, rnn_act_expr[act]);
}

/* The recurrent layer over T steps of x (T, in), Keras semantics, into the tape (runtime/rnn.c's layout). */
static void write_rnn(FILE *f, Arena *a, int kind, int reset_after, int act, int rec)
{
    const char *fn = rnn_helper(a, kind, reset_after, act, rec);
    const char *A = rnn_act_name[act], *R = rnn_act_name[rec];
    static const char *const params =
        "(float *restrict tape, const float *restrict x, const float *restrict W,\n"
        "        const float *restrict U, const float *restrict b, int T, int in, int u, int backwards)\n{\n";
    switch (kind) {
    case NNRT_SIMPLE_RNN:
        fprintf(f, "/* SimpleRNN (activation %s) over T steps of x (T, in), read from the end when backwards:\n"
                   " * h_t = %s(x_s W + h_{t-1} U + b), h_{-1} = 0. tape: h (T, u), in processing order */\n",
                A, A);
        fprintf(f, "static void %s%s", fn, params);
        fprintf(f, "    for (int t = 0; t < T; t++) {\n"
                   "        const float *xs = x + (backwards ? T - 1 - t : t) * in;\n"
                   "        float *h = tape + t * u;\n"
                   "        for (int j = 0; j < u; j++)\n            h[j] = b ? b[j] : 0.0f;\n"
                   "        vecmat_add(h, xs, W, in, u, u);\n"
                   "        if (t > 0)\n            vecmat_add(h, h - u, U, u, u, u);\n");
        write_rnn_act(f, "0", "u", "h", act);
        fprintf(f, "    }\n}\n\n");
        break;
    case NNRT_LSTM:
        fprintf(f, "/* LSTM (activation %s, recurrent_activation %s) over T steps of x (T, in), read from the\n"
                   " * end when backwards: [i f c~ o] = x_s W + h_{t-1} U + b; i, f, o = %s(.), c~ = %s(.);\n"
                   " * c_t = f c_{t-1} + i c~; h_t = o %s(c_t), h_{-1} = c_{-1} = 0.\n"
                   " * tape: h (T, u) | gates (T, 4u) | c (T, u), in processing order */\n",
                A, R, R, A, A);
        fprintf(f, "static void %s%s", fn, params);
        fprintf(f, "    const int G = 4 * u;\n"
                   "    for (int t = 0; t < T; t++) {\n"
                   "        const float *xs = x + (backwards ? T - 1 - t : t) * in;\n"
                   "        float *h = tape + t * u, *g = tape + T * u + t * G, *c = tape + T * u + T * G + t * u;\n"
                   "        for (int j = 0; j < G; j++)\n            g[j] = b ? b[j] : 0.0f;\n"
                   "        vecmat_add(g, xs, W, in, G, G);\n"
                   "        if (t > 0)\n            vecmat_add(g, h - u, U, u, G, G);\n");
        write_rnn_act(f, "0", "2 * u", "g", rec);
        write_rnn_act(f, "2 * u", "3 * u", "g", act);
        write_rnn_act(f, "3 * u", "G", "g", rec);
        fprintf(f, "        for (int j = 0; j < u; j++) {\n"
                   "            c[j] = g[u + j] * (t > 0 ? c[j - u] : 0.0f) + g[j] * g[2 * u + j];\n"
                   "            const float v = c[j];\n"
                   "            h[j] = (%s) * g[3 * u + j];\n        }\n    }\n}\n\n",
                act == NNRT_RNN_LINEAR ? "v" : rnn_act_expr[act]);
        break;
    case NNRT_GRU:
        if (reset_after) {
            fprintf(f, "/* GRU, reset_after (activation %s, recurrent_activation %s) over T steps of x (T, in),\n"
                       " * read from the end when backwards; b is (2, 3u): input and recurrent biases.\n"
                       " * [xz xr xh] = x_s W + b_in, [rz rr rh] = h_{t-1} U + b_rec; z = %s(xz + rz),\n"
                       " * r = %s(xr + rr), h~ = %s(xh + r rh); h_t = z h_{t-1} + (1 - z) h~, h_{-1} = 0.\n"
                       " * tape: h (T, u) | gates z r h~ (T, 3u) | rh (T, u), in processing order */\n",
                    A, R, R, R, A);
            fprintf(f, "static void %s%s", fn, params);
            fprintf(f, "    const int G = 3 * u;\n"
                       "    for (int t = 0; t < T; t++) {\n"
                       "        const float *xs = x + (backwards ? T - 1 - t : t) * in;\n"
                       "        float *h = tape + t * u, *g = tape + T * u + t * G, *rh = tape + T * u + T * G + t * u;\n"
                       "        for (int j = 0; j < G; j++)\n            g[j] = b ? b[j] : 0.0f;\n"
                       "        vecmat_add(g, xs, W, in, G, G);\n"
                       "        for (int j = 0; j < 2 * u; j++)\n            g[j] += b ? b[G + j] : 0.0f;\n"
                       "        for (int j = 0; j < u; j++)\n            rh[j] = b ? b[G + 2 * u + j] : 0.0f;\n"
                       "        if (t > 0) {\n"
                       "            vecmat_add(g, h - u, U, u, 2 * u, G);\n"
                       "            vecmat_add(rh, h - u, U + 2 * u, u, u, G);\n"
                       "        }\n");
            write_rnn_act(f, "0", "2 * u", "g", rec);
            fprintf(f, "        for (int j = 0; j < u; j++) {\n"
                       "            const float v = g[2 * u + j] + g[u + j] * rh[j];\n"
                       "            g[2 * u + j] = %s;\n"
                       "        }\n", rnn_act_expr[act]);
        } else {
            fprintf(f, "/* GRU, reset before (activation %s, recurrent_activation %s) over T steps of x (T, in),\n"
                       " * read from the end when backwards: [xz xr xh] = x_s W + b; z = %s(xz + h_{t-1} U_z),\n"
                       " * r = %s(xr + h_{t-1} U_r), h~ = %s(xh + (r h_{t-1}) U_h); h_t = z h_{t-1} + (1 - z) h~,\n"
                       " * h_{-1} = 0. tape: h (T, u) | gates z r h~ (T, 3u) | r h_{t-1} (T, u), in processing order */\n",
                    A, R, R, R, A);
            fprintf(f, "static void %s%s", fn, params);
            fprintf(f, "    const int G = 3 * u;\n"
                       "    for (int t = 0; t < T; t++) {\n"
                       "        const float *xs = x + (backwards ? T - 1 - t : t) * in;\n"
                       "        float *h = tape + t * u, *g = tape + T * u + t * G, *rhp = tape + T * u + T * G + t * u;\n"
                       "        for (int j = 0; j < G; j++)\n            g[j] = b ? b[j] : 0.0f;\n"
                       "        vecmat_add(g, xs, W, in, G, G);\n"
                       "        if (t > 0)\n            vecmat_add(g, h - u, U, u, 2 * u, G);\n");
            write_rnn_act(f, "0", "2 * u", "g", rec);
            fprintf(f, "        for (int j = 0; j < u; j++)\n"
                       "            rhp[j] = t > 0 ? g[u + j] * h[j - u] : 0.0f;\n"
                       "        if (t > 0)\n            vecmat_add(g + 2 * u, rhp, U + 2 * u, u, u, G);\n");
            write_rnn_act(f, "2 * u", "G", "g", act);
        }
        fprintf(f, "        for (int j = 0; j < u; j++)\n"
                   "            h[j] = g[j] * (t > 0 ? h[j - u] : 0.0f) + (1.0f - g[j]) * g[2 * u + j];\n"
                   "    }\n}\n\n");
        break;
    }
}

/* ---- the files ----------------------------------------------------------------------------- */

/* floats as C: the shortest text that reads back as the same float, 8 per line */
static void write_floats(FILE *f, const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        char buf[32];
        if (isnan(v[i]))
            snprintf(buf, sizeof buf, "NAN");
        else if (isinf(v[i]))
            snprintf(buf, sizeof buf, "%sINFINITY", v[i] < 0 ? "-" : "");
        else {
            for (int digits = 6; digits <= 9; digits++) {
                snprintf(buf, sizeof buf, "%.*g", digits, (double)v[i]);
                if (strtof(buf, NULL) == v[i])
                    break;
            }
            if (!strpbrk(buf, ".e"))
                strcat(buf, ".0");
            strcat(buf, "f");
        }
        fprintf(f, "%s%s", i == 0 ? "    " : i % 8 ? ", " : ",\n    ", buf);
    }
    fprintf(f, "\n");
}

static const char *guard_of(Arena *a, const char *P)
{
    char *g = arena_printf(a, "%s_H", P);
    for (char *c = g; *c; c++)
        *c = (char)(*c >= 'a' && *c <= 'z' ? *c - 'a' + 'A' : *c);
    return g;
}

static void write_header(FILE *f, const Program *p)
{
    const char *P = p->name;
    const Graph *g = p->infer;
    Arena *a = g->arena;
    fprintf(f, "/* %s.h — generated by nncc %s from %s (--standalone). Do not edit.\n", P, NNCC_VERSION,
            c_comment_text(a, p->source));
    fprintf(f, " * Inference on one sample with the weights compiled in: build %s.c with any C99\n"
               " * compiler and link the math library; nothing else. */\n", P);
    fprintf(f, "#ifndef %s\n#define %s\n\n", guard_of(a, P), guard_of(a, P));
    fprintf(f, "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n");
    fprintf(f, "#define %s_NUM_INPUTS  %d\n#define %s_NUM_OUTPUTS %d\n", P, p->ninputs, P, p->noutputs);
    for (int i = 0; i < p->ninputs; i++)
        fprintf(f, "#define %s_INPUT%d_SIZE  %lld  /* %s %s floats */\n", P, i, (long long)shape_size(&p->inputs[i].shape),
                c_comment_text(a, p->inputs[i].name), shape_str(a, &p->inputs[i].shape, false));
    for (int i = 0; i < p->noutputs; i++)
        fprintf(f, "#define %s_OUTPUT%d_SIZE %lld  /* %s %s floats */\n", P, i,
                (long long)shape_size(&p->outputs[i].shape), c_comment_text(a, p->outputs[i].name),
                shape_str(a, &p->outputs[i].shape, false));
    if (p->max_timesteps)
        fprintf(f, "#define %s_TIMESTEPS %lld  /* the variable time axis, compiled at its maximum: every sequence has\n"
                   "                              exactly this many steps */\n", P, (long long)p->max_timesteps);
    fprintf(f, "#define %s_WORKSPACE_BYTES %zu  /* the planned arena (unplanned sum: %zu bytes) */\n\n", P,
            g->arena_floats * sizeof(float), g->naive_floats * sizeof(float));
    fprintf(f, "/* Runs the model on one sample: inputs[i] holds %s_INPUTi_SIZE floats, outputs[i]\n"
               " * receives %s_OUTPUTi_SIZE floats. workspace is %s_WORKSPACE_BYTES bytes aligned for\n"
               " * float (e.g. static float ws[%s_WORKSPACE_BYTES / sizeof(float)]), scratch only:\n"
               " * the function keeps no state, so threads may call it at once with a workspace each.\n"
               " * Inputs, outputs and workspace must not overlap. Returns 0, or -1 when an argument\n"
               " * or one of the arrays' pointers is NULL. */\n", P, P, P, P);
    fprintf(f, "int %s_infer(const float *const inputs[], float *const outputs[], void *workspace);  /* one sample */\n",
            P);
    fprintf(f, "\n#ifdef __cplusplus\n}\n#endif\n\n#endif /* %s */\n", guard_of(a, P));
}

void emit_standalone(FILE *c, FILE *h, const Program *p, const float *weights, const char *header_name)
{
    const char *P = p->name;
    const Graph *g = p->infer;
    const WeightSet *ws = p->weights;
    Arena *a = g->arena;
    Emitter e = {.p = p, .g = g, .weights = weights};
    e.folded_tail = &e.folded;
    e.weight_array = arena_alloc(a, (size_t)(ws->n + 1) * sizeof *e.weight_array);
    write_header(h, p);

    /* P_infer first, into memory: it decides which weights and helpers the file needs */
    char *body = NULL;
    size_t body_len = 0;
    e.out = open_memstream(&body, &body_len);
    assert(e.out);
    int *readers = arena_alloc(a, (size_t)(g->nnodes + 1) * sizeof *readers);
    for (int i = 0; i < g->nnodes; i++)
        for (int s = 0; s < g->nodes[i]->nsrc; s++)
            readers[g->nodes[i]->src[s]->id]++;
    for (int i = 0; i < p->noutputs; i++)
        for (int k = 0; k < g->nnodes; k++)
            if (!strcmp(g->nodes[k]->name, p->outputs[i].buffer))
                readers[k]++;
    out(&e, "int %s_infer(const float *const inputs[], float *const outputs[], void *workspace)\n{\n", P);
    out(&e, "    if (!inputs || !outputs || !workspace");
    for (int i = 0; i < p->ninputs; i++)
        out(&e, " || !inputs[%d]", i);
    for (int i = 0; i < p->noutputs; i++)
        out(&e, " || !outputs[%d]", i);
    out(&e, ")\n        return -1;\n");
    if (g->arena_floats)
        out(&e, "    float *const arena = workspace;  /* %zu floats, planned */\n", g->arena_floats);
    for (int i = 0; i < g->nnodes; i++) {
        const Node *n = g->nodes[i];
        if (n->op == OP_INPUT && readers[i])
            out(&e, "    const float *const %s = inputs[%d];  /* %s */\n", n->name, n->slot,
                shape_str(a, &n->shape, false));
    }
    for (int i = 0; i < g->nnodes; i++) {
        const Node *n = g->nodes[i];
        assert(kernels[n->op] && "standalone_unsupported first");
        kernels[n->op](&e, n);
    }
    out(&e, "\n");
    for (int i = 0; i < p->noutputs; i++) {
        const Node *o = NULL;
        for (int k = 0; k < g->nnodes; k++)
            if (!strcmp(g->nodes[k]->name, p->outputs[i].buffer))
                o = g->nodes[k];
        assert(o);
        e.need[H_COPY] = true;
        out(&e, "    copy(outputs[%d], %s, %lld);  /* %s */\n", i, ref(&e, o), count(o),
            comment_text(&e, p->outputs[i].name));
    }
    out(&e, "    return 0;\n}\n");
    fclose(e.out);

    size_t used_floats = 0;
    int used = 0;
    for (int i = 0; i < ws->n; i++)
        if (e.weight_array[i]) {
            used_floats += (size_t)shape_size(&ws->items[i]->shape);
            used++;
        }
    fprintf(c, "/* %s.c — generated by nncc %s from %s (--standalone). Do not edit.\n *\n", P, NNCC_VERSION,
            c_comment_text(g->arena, p->source));
    fprintf(c, " * Inference on one sample for C99 and <math.h> alone: %d input(s), %d output(s); %zu weight\n"
               " * floats in %d constant arrays; no allocation, no global state. Activations live in the\n"
               " * caller's workspace, planned: %zu bytes (their unplanned sum: %zu bytes).\n */\n",
            p->ninputs, p->noutputs, used_floats, used, g->arena_floats * sizeof(float),
            g->naive_floats * sizeof(float));
    assert(c_header_name_ok(header_name));  /* the caller checked it (--header, -o) */
    fprintf(c, "#include \"%s\"\n\n#include <math.h>\n\n", header_name);
    for (int i = 0; i < e.ncustoms; i++) {  /* C hooks: the user's file defines them */
        const CustomFn *cf = e.customs[i];
        if (cf->c_function)
            fprintf(c, "float %s(float x);  /* custom activation %s: link the file that defines it */\n\n",
                    cf->c_function, cf->name);
    }

    fprintf(c, "/* ---- weights (Keras order) ---- */\n\n");
    for (int i = 0; i < ws->n; i++) {
        const Weight *w = ws->items[i];
        if (!e.weight_array[i])
            continue;
        size_t n = (size_t)shape_size(&w->shape);
        assert(n > 0);
        fprintf(c, "/* %s/%s:0 %s */\nstatic const float %s[%zu] = {\n", comment_text(&e, w->layer),
                comment_text(&e, w->name),
                shape_str(a, &w->shape, false), e.weight_array[i], n);
        write_floats(c, weights + w->offset, n);
        fprintf(c, "};\n\n");
    }
    for (const Folded *f = e.folded; f; f = f->next) {
        fprintf(c, "/* %s */\nstatic const float %s[%d] = {\n", f->comment, f->name, f->count);
        write_floats(c, f->values, (size_t)f->count);
        fprintf(c, "};\n\n");
    }

    fprintf(c, "/* ---- kernels ---- */\n\n");
    for (int k = 0; k < H_COUNT; k++)
        if (e.need[k])
            fprintf(c, "%s\n", helper_code[k]);
    for (int b = 0; b < B_COUNT; b++)
        write_binary(c, (Binary)b, e.binary[b]);
    for (int k = 0; k < ACT_COUNT; k++)
        if (k != ACT_CUSTOM && k != ACT_SOFTMAX)
            write_elementwise(c, act_info[k].name, act_info[k].forward, act_has_alpha(k) ? ", float alpha" : "",
                              e.act[k], e.act_bias[k]);
    for (int i = 0; i < e.ncustoms; i++)
        write_elementwise(c, arena_printf(a, "custom_%s", e.customs[i]->name), e.customs[i]->forward, "",
                          e.custom_form[i], e.custom_bias[i]);
    for (int k = 0; k < RNN_KINDS; k++)
        for (int r = 0; r < 2; r++)
            for (int x = 0; x < RNN_ACTS; x++)
                for (int y = 0; y < RNN_ACTS; y++)
                    if (e.rnn[k][r][x][y])
                        write_rnn(c, a, k, r, x, y);
    fprintf(c, "/* ---- %s_infer: the model, layer by layer ---- */\n\n", P);
    fwrite(body, 1, body_len, c);
    free(body);
}
