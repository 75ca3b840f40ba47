/* emit.c — Program -> C.
 *
 * The generated P.c reads like hand-written llm.c: a Weights struct of named
 * pointers into one weight block (Keras order), the same for gradients;
 * one allocation for weights, gradients, optimizer state and the planned
 * arena; then the graphs as straight-line kernel calls, each preceded by
 * a comment naming the YAML line, the layer and the buffer shape, with
 * every dimension folded to a constant except the batch B. GEMMs go to
 * OpenBLAS through nnrt_gemm; elementwise work is small static functions
 * built from the activation table's C expressions (no per-element calls
 * in inner loops); batch-level losses and metrics are runtime kernels.
 *
 * The graph-to-code mapping is one emit_<op> per row of OP_TABLE (bound
 * by the X-macro; a missing emitter does not compile). Static helpers are
 * written only when used, so the output has no dead code.
 *
 * Chunk functions: train_chunk (forward in training mode, losses, metrics,
 * backward; gradients accumulate into m->g scaled by grad_scale = 1/n;
 * BatchNormalization moving statistics move only when update_stats),
 * apply_updates (one optimizer step), infer_chunk (inference forward; with
 * targets, losses and metrics). The public API splits any n into chunks of
 * at most MAX_BATCH samples.
 */
#include "backend.h"

#include <assert.h>
#include <math.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

/* ---- static helpers, written into P.c when used ------------------------------- */

#define HELPER_TABLE(X)                                                                              \
    X(BIAS_ADD,                                                                                      \
      "/* y[r,c] = x[r,c] + b[c] over (rows, cols) */\n"                                              \
      "static void bias_add(float *y, const float *x, const float *b, size_t rows, size_t cols)\n"   \
      "{\n"                                                                                          \
      "    for (size_t r = 0; r < rows; r++)\n"                                                      \
      "        for (size_t c = 0; c < cols; c++)\n"                                                  \
      "            y[r * cols + c] = x[r * cols + c] + b[c];\n"                                      \
      "}\n")                                                                                         \
    X(BIAS_GRAD,                                                                                     \
      "/* db[c] = beta * db[c] + sum_r dy[r,c] */\n"                                                  \
      "static void bias_grad(float *db, const float *dy, size_t rows, size_t cols, float beta)\n"    \
      "{\n"                                                                                          \
      "    for (size_t c = 0; c < cols; c++)\n"                                                      \
      "        db[c] *= beta;\n"                                                                     \
      "    for (size_t r = 0; r < rows; r++)\n"                                                      \
      "        for (size_t c = 0; c < cols; c++)\n"                                                  \
      "            db[c] += dy[r * cols + c];\n"                                                     \
      "}\n")                                                                                         \
    X(SOFTMAX_BACKWARD,                                                                              \
      "/* dx = y * (dy - sum_c(dy * y)), row by row */\n"                                             \
      "static void softmax_backward(float *dx, const float *dy, const float *y, size_t rows, size_t cols)\n" \
      "{\n"                                                                                          \
      "    for (size_t r = 0; r < rows; r++) {\n"                                                    \
      "        const float *dyr = dy + r * cols, *yr = y + r * cols;\n"                              \
      "        float dot = 0.0f;\n"                                                                  \
      "        for (size_t c = 0; c < cols; c++)\n"                                                  \
      "            dot += dyr[c] * yr[c];\n"                                                         \
      "        for (size_t c = 0; c < cols; c++)\n"                                                  \
      "            dx[r * cols + c] = yr[c] * (dyr[c] - dot);\n"                                     \
      "    }\n"                                                                                      \
      "}\n")                                                                                         \
    X(MUL,                                                                                           \
      "/* y = a * b elementwise */\n"                                                                 \
      "static void mul(float *y, const float *a, const float *b, size_t n)\n"                        \
      "{\n"                                                                                          \
      "    for (size_t i = 0; i < n; i++)\n"                                                         \
      "        y[i] = a[i] * b[i];\n"                                                                \
      "}\n")                                                                                         \
    X(ADD,                                                                                           \
      "/* y = a + b elementwise */\n"                                                                 \
      "static void add(float *y, const float *a, const float *b, size_t n)\n"                        \
      "{\n"                                                                                          \
      "    for (size_t i = 0; i < n; i++)\n"                                                         \
      "        y[i] = a[i] + b[i];\n"                                                                \
      "}\n")                                                                                         \
    X(SUB,                                                                                           \
      "/* y = a - b elementwise */\n"                                                                 \
      "static void sub(float *y, const float *a, const float *b, size_t n)\n"                        \
      "{\n"                                                                                          \
      "    for (size_t i = 0; i < n; i++)\n"                                                         \
      "        y[i] = a[i] - b[i];\n"                                                                \
      "}\n")                                                                                         \
    X(SCALE,                                                                                         \
      "/* y = alpha * x */\n"                                                                        \
      "static void scale(float *y, const float *x, float alpha, size_t n)\n"                        \
      "{\n"                                                                                          \
      "    for (size_t i = 0; i < n; i++)\n"                                                         \
      "        y[i] = alpha * x[i];\n"                                                               \
      "}\n")                                                                                         \
    X(MAXIMUM,                                                                                       \
      "/* y = max(a, b) elementwise (ties: a) */\n"                                                  \
      "static void maximum(float *y, const float *a, const float *b, size_t n)\n"                   \
      "{\n"                                                                                          \
      "    for (size_t i = 0; i < n; i++)\n"                                                         \
      "        y[i] = a[i] >= b[i] ? a[i] : b[i];\n"                                                 \
      "}\n")                                                                                         \
    X(MAXIMUM_GRAD,                                                                                  \
      "/* dx = dy where the source won the maximum (a on ties): which 0 is a, 1 is b */\n"           \
      "static void maximum_backward(float *dx, const float *dy, const float *a, const float *b, int which, size_t n)\n" \
      "{\n"                                                                                          \
      "    for (size_t i = 0; i < n; i++)\n"                                                         \
      "        dx[i] = ((a[i] >= b[i]) != which) ? dy[i] : 0.0f;\n"                                  \
      "}\n")                                                                                         \
    X(COPY_ROWS,                                                                                     \
      "/* dst[r, :len] = src[r, :len] for rows r, with row strides (concatenate, slice) */\n"       \
      "static void copy_rows(float *dst, size_t dst_stride, const float *src, size_t src_stride, size_t rows, size_t len)\n" \
      "{\n"                                                                                          \
      "    for (size_t r = 0; r < rows; r++)\n"                                                      \
      "        memcpy(dst + r * dst_stride, src + r * src_stride, len * sizeof(float));\n"          \
      "}\n")                                                                                         \
    X(PENALTY,                                                                                       \
      "/* l1 * sum|w| + l2 * sum w^2 */\n"                                                            \
      "static float penalty(const float *w, size_t n, float l1, float l2)\n"                         \
      "{\n"                                                                                          \
      "    double s1 = 0.0, s2 = 0.0;\n"                                                             \
      "    for (size_t i = 0; i < n; i++) {\n"                                                       \
      "        s1 += fabsf(w[i]);\n"                                                                 \
      "        s2 += (double)w[i] * w[i];\n"                                                         \
      "    }\n"                                                                                      \
      "    return (float)(l1 * s1 + l2 * s2);\n"                                                     \
      "}\n")                                                                                         \
    X(PENALTY_BACKWARD,                                                                              \
      "/* dw = beta * dw + scale * (l1 * sign(w) + 2 * l2 * w) */\n"                                  \
      "static void penalty_backward(float *dw, const float *w, size_t n, float l1, float l2, float scale, float beta)\n" \
      "{\n"                                                                                          \
      "    for (size_t i = 0; i < n; i++)\n"                                                         \
      "        dw[i] = beta * dw[i] + scale * (l1 * (float)((w[i] > 0.0f) - (w[i] < 0.0f)) + 2.0f * l2 * w[i]);\n" \
      "}\n")                                                                                         \
    X(SGD,                                                                                           \
      "/* SGD: w -= lr * g */\n"                                                                      \
      "static void sgd_update(float *w, const float *g, size_t n, float lr)\n"                       \
      "{\n"                                                                                          \
      "    for (size_t i = 0; i < n; i++)\n"                                                         \
      "        w[i] -= lr * g[i];\n"                                                                 \
      "}\n")                                                                                         \
    X(SGD_MOMENTUM,                                                                                  \
      "/* SGD with momentum (Keras): v = momentum * v - lr * g; w += v */\n"                          \
      "static void sgd_momentum_update(float *w, const float *g, float *v, size_t n, float lr, float momentum)\n" \
      "{\n"                                                                                          \
      "    for (size_t i = 0; i < n; i++) {\n"                                                       \
      "        v[i] = momentum * v[i] - lr * g[i];\n"                                                \
      "        w[i] += v[i];\n"                                                                      \
      "    }\n"                                                                                      \
      "}\n")                                                                                         \
    X(SGD_NESTEROV,                                                                                  \
      "/* Nesterov SGD (Keras): v = momentum * v - lr * g; w += momentum * v - lr * g */\n"           \
      "static void sgd_nesterov_update(float *w, const float *g, float *v, size_t n, float lr, float momentum)\n" \
      "{\n"                                                                                          \
      "    for (size_t i = 0; i < n; i++) {\n"                                                       \
      "        v[i] = momentum * v[i] - lr * g[i];\n"                                                \
      "        w[i] += momentum * v[i] - lr * g[i];\n"                                               \
      "    }\n"                                                                                      \
      "}\n")                                                                                         \
    X(ADAM,                                                                                          \
      "/* Adam (Keras): m1 = b1 m1 + (1-b1) g; m2 = b2 m2 + (1-b2) g^2; w -= lr_t m1 / (sqrt(m2) + eps);\n" \
      " * with amsgrad (vhat != NULL) the denominator uses vhat = max(vhat, m2) */\n"                \
      "static void adam_update(float *w, const float *g, float *m1, float *m2, float *vhat, size_t n, float lr_t,\n" \
      "                        float b1, float b2, float eps)\n"                                     \
      "{\n"                                                                                          \
      "    for (size_t i = 0; i < n; i++) {\n"                                                       \
      "        m1[i] = b1 * m1[i] + (1.0f - b1) * g[i];\n"                                           \
      "        m2[i] = b2 * m2[i] + (1.0f - b2) * g[i] * g[i];\n"                                    \
      "        float v = m2[i];\n"                                                                   \
      "        if (vhat)\n"                                                                          \
      "            v = vhat[i] = vhat[i] > v ? vhat[i] : v;\n"                                       \
      "        w[i] -= lr_t * m1[i] / (sqrtf(v) + eps);\n"                                           \
      "    }\n"                                                                                      \
      "}\n")                                                                                         \
    X(DECAY,                                                                                         \
      "/* AdamW's decoupled weight decay: w -= lr * weight_decay * w */\n"                            \
      "static void decay_weights(float *w, size_t n, float rate)\n"                                  \
      "{\n"                                                                                          \
      "    for (size_t i = 0; i < n; i++)\n"                                                         \
      "        w[i] -= rate * w[i];\n"                                                               \
      "}\n")                                                                                         \
    X(ADAGRAD,                                                                                       \
      "/* Adagrad (Keras): acc += g^2; w -= lr g / (sqrt(acc) + eps) */\n"                            \
      "static void adagrad_update(float *w, const float *g, float *acc, size_t n, float lr, float eps)\n" \
      "{\n"                                                                                          \
      "    for (size_t i = 0; i < n; i++) {\n"                                                       \
      "        acc[i] += g[i] * g[i];\n"                                                             \
      "        w[i] -= lr * g[i] / (sqrtf(acc[i]) + eps);\n"                                         \
      "    }\n"                                                                                      \
      "}\n")                                                                                         \
    X(RMSPROP,                                                                                       \
      "/* RMSprop (Keras): ms = rho ms + (1-rho) g^2; centered (mg): denominator ms - mg^2 with\n"   \
      " * mg = rho mg + (1-rho) g; without momentum w -= lr g / (sqrt(den) + eps), with it\n"        \
      " * mom = momentum mom + lr g / sqrt(den + eps); w -= mom */\n"                                \
      "static void rmsprop_update(float *w, const float *g, float *ms, float *mom, float *mg, size_t n, float lr,\n" \
      "                           float rho, float momentum, float eps)\n"                           \
      "{\n"                                                                                          \
      "    for (size_t i = 0; i < n; i++) {\n"                                                       \
      "        ms[i] = rho * ms[i] + (1.0f - rho) * g[i] * g[i];\n"                                  \
      "        float den = ms[i];\n"                                                                 \
      "        if (mg) {\n"                                                                          \
      "            mg[i] = rho * mg[i] + (1.0f - rho) * g[i];\n"                                     \
      "            den -= mg[i] * mg[i];\n"                                                          \
      "        }\n"                                                                                  \
      "        if (mom) {\n"                                                                         \
      "            mom[i] = momentum * mom[i] + lr * g[i] / sqrtf(den + eps);\n"                     \
      "            w[i] -= mom[i];\n"                                                                \
      "        } else {\n"                                                                           \
      "            w[i] -= lr * g[i] / (sqrtf(den) + eps);\n"                                        \
      "        }\n"                                                                                  \
      "    }\n"                                                                                      \
      "}\n")                                                                                         \
    X(NADAM,                                                                                         \
      "/* Nadam (tf.keras <= 2.10): the step's momentum schedule */\n"                                \
      "typedef struct {\n"                                                                           \
      "    double mu_t, mu_next, schedule, schedule_next, v_correction;\n"                          \
      "} NadamStep;\n\n"                                                                             \
      "/* m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; w -= lr ((1-mu_t) g / (1-schedule)\n"          \
      " * + mu_next m / (1-schedule_next)) / (sqrt(v / (1-b2^t)) + eps) */\n"                        \
      "static void nadam_update(float *w, const float *g, float *m1, float *m2, size_t n, float lr, float b1,\n" \
      "                         float b2, float eps, const NadamStep *s)\n"                          \
      "{\n"                                                                                          \
      "    const float gc = (float)((1.0 - s->mu_t) / (1.0 - s->schedule));\n"                      \
      "    const float mc = (float)(s->mu_next / (1.0 - s->schedule_next)), vc = (float)(1.0 / s->v_correction);\n" \
      "    for (size_t i = 0; i < n; i++) {\n"                                                       \
      "        m1[i] = b1 * m1[i] + (1.0f - b1) * g[i];\n"                                           \
      "        m2[i] = b2 * m2[i] + (1.0f - b2) * g[i] * g[i];\n"                                    \
      "        w[i] -= lr * (gc * g[i] + mc * m1[i]) / (sqrtf(m2[i] * vc) + eps);\n"                 \
      "    }\n"                                                                                      \
      "}\n")                                                                                         \
    X(ADAMAX,                                                                                        \
      "/* Adamax (Keras): m = b1 m + (1-b1) g; u = max(b2 u, |g|); w -= lr_t m / (u + eps) */\n"      \
      "static void adamax_update(float *w, const float *g, float *m1, float *u, size_t n, float lr_t, float b1,\n" \
      "                          float b2, float eps)\n"                                             \
      "{\n"                                                                                          \
      "    for (size_t i = 0; i < n; i++) {\n"                                                       \
      "        m1[i] = b1 * m1[i] + (1.0f - b1) * g[i];\n"                                           \
      "        const float a = fabsf(g[i]), d = b2 * u[i];\n"                                        \
      "        u[i] = d > a ? d : a;\n"                                                              \
      "        w[i] -= lr_t * m1[i] / (u[i] + eps);\n"                                               \
      "    }\n"                                                                                      \
      "}\n")                                                                                         \
    X(SUM_SQUARES,                                                                                   \
      "/* sum of g^2, in double */\n"                                                                 \
      "static double sum_squares(const float *g, size_t n)\n"                                        \
      "{\n"                                                                                          \
      "    double s = 0.0;\n"                                                                        \
      "    for (size_t i = 0; i < n; i++)\n"                                                         \
      "        s += (double)g[i] * g[i];\n"                                                          \
      "    return s;\n"                                                                              \
      "}\n")                                                                                         \
    X(CLIP_NORM,                                                                                     \
      "/* clipnorm: g *= c / max(|g|, c) for this tensor */\n"                                        \
      "static void clip_by_norm(float *g, size_t n, float c)\n"                                      \
      "{\n"                                                                                          \
      "    const double norm = sqrt(sum_squares(g, n));\n"                                           \
      "    if (norm > c)\n"                                                                          \
      "        for (size_t i = 0; i < n; i++)\n"                                                     \
      "            g[i] *= (float)(c / norm);\n"                                                     \
      "}\n")                                                                                         \
    X(CLIP_VALUE,                                                                                    \
      "/* clipvalue: each component into [-c, c] */\n"                                                \
      "static void clip_by_value(float *g, size_t n, float c)\n"                                     \
      "{\n"                                                                                          \
      "    for (size_t i = 0; i < n; i++)\n"                                                         \
      "        g[i] = g[i] > c ? c : g[i] < -c ? -c : g[i];\n"                                       \
      "}\n")                                                                                         \
    X(NON_NEG,                                                                                       \
      "/* non_neg constraint: w = max(w, 0) */\n"                                                     \
      "static void constrain_non_neg(float *w, size_t n)\n"                                          \
      "{\n"                                                                                          \
      "    for (size_t i = 0; i < n; i++)\n"                                                         \
      "        w[i] = w[i] > 0.0f ? w[i] : 0.0f;\n"                                                  \
      "}\n")                                                                                         \
    X(NORM_CONSTRAINT,                                                                               \
      "/* max_norm / unit_norm / min_max_norm (Keras): the L2 norm over the middle axis of\n"         \
      " * w viewed as (outer, len, inner) is moved to rate * clip(norm, lo, hi) + (1 - rate) * norm */\n" \
      "static void constrain_norm(float *w, size_t outer, size_t len, size_t inner, float lo, float hi, float rate)\n" \
      "{\n"                                                                                          \
      "    for (size_t o = 0; o < outer; o++)\n"                                                     \
      "        for (size_t j = 0; j < inner; j++) {\n"                                               \
      "            float *v = w + o * len * inner + j;\n"                                            \
      "            double s = 0.0;\n"                                                                \
      "            for (size_t k = 0; k < len; k++)\n"                                               \
      "                s += (double)v[k * inner] * v[k * inner];\n"                                  \
      "            float norm = sqrtf((float)s);\n"                                                  \
      "            float want = norm < lo ? lo : norm > hi ? hi : norm;\n"                           \
      "            float scale = (rate * want + (1.0f - rate) * norm) / (1e-7f + norm);\n"           \
      "            for (size_t k = 0; k < len; k++)\n"                                               \
      "                v[k * inner] *= scale;\n"                                                     \
      "        }\n"                                                                                  \
      "}\n")

typedef enum {
#define X(e, code) H_##e,
    HELPER_TABLE(X)
#undef X
    H_COUNT
} Helper;

static const char *const helper_code[H_COUNT] = {
#define X(e, code) [H_##e] = code,
    HELPER_TABLE(X)
#undef X
};

typedef struct {
    FILE *out;                   /* the body being written */
    FILE *pre;                   /* functions the body calls, written above it (conv epilogues) */
    const Program *p;
    const Graph *g;
    bool need[H_COUNT];
    bool act_forward[ACT_COUNT], act_backward[ACT_COUNT], act_bias_forward[ACT_COUNT], act_scale_shift[ACT_COUNT];
    bool act_add_forward[ACT_COUNT], act_bn_forward[ACT_COUNT], act_bn_backward[ACT_COUNT];
    bool *grad_written;          /* per weight: a gradient node already wrote it in this graph */
    const char **field;          /* per weight: its name in the Weights struct */
    const CustomFn *customs[64]; /* the custom functions the code calls, for their helpers */
    int ncustoms;
    int last_layer_line;         /* for section comments */
} Emitter;

static void out(Emitter *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out(Emitter *e, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(e->out, fmt, ap);
    va_end(ap);
}

/* ---- expressions for buffers and sizes ------------------------------------------- */

static char *fmt_str(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char scratch[64][4096];  /* a ring: a call may hold many at once; a call of many C_NAME_MAX names fits */
static int scratch_next;
static char *fmt_str(const char *fmt, ...)
{
    char *s = scratch[scratch_next++ % 64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(s, sizeof scratch[0], fmt, ap);
    va_end(ap);
    assert(n >= 0 && (size_t)n < sizeof scratch[0]);  /* identifiers are at most C_NAME_MAX; text goes elsewhere */
    return s;
}

static const Node *base_of(const Node *n)
{
    while (n->storage == ST_ALIAS)
        n = n->src[0];
    return n;
}

/* The C expression for a node's buffer. */
static const char *ref(const Emitter *e, const Node *n)
{
    switch (n->storage) {
    case ST_WEIGHT:
        return fmt_str("m->w.%s", e->field[n->w->index]);
    case ST_GRAD:
        return fmt_str("m->g.%s", e->field[n->w->index]);
    case ST_ARENA:
    case ST_ALIAS:
    case ST_INPUT:
    case ST_TARGET:
    case ST_SCALAR:
    case ST_NONE:
        break;
    }
    return n->name;
}

/* B times r, a count per sample of n that includes n's leading axis when
 * r spans it (span): with the variable time axis that axis is T at run
 * time, so r scales by T / its maximum. Unbatched: the number. */
static const char *per_batch(const Node *n, int64_t r, bool span, const char *b)
{
    if (!n->batched)
        return fmt_str("%lld", (long long)r);
    if (n->vtime && span) {
        int64_t k = r / n->shape.dim[0];
        if (!strcmp(b, "1"))
            return k == 1 ? "T" : fmt_str("T * %lld", (long long)k);
        return k == 1 ? fmt_str("%s * T", b) : fmt_str("%s * T * %lld", b, (long long)k);
    }
    return r == 1 ? b : fmt_str("%s * %lld", b, (long long)r);
}

/* rows of n viewed as a matrix (rows, last axis) */
static const char *rows(const Node *n)
{
    return per_batch(n, node_rows(n), n->shape.rank >= 2, "B");
}

/* element count of n */
static const char *count(const Node *n)
{
    return per_batch(n, shape_size(&n->shape), true, "(size_t)B");
}

/* n's time steps per sample as C: "T" on the variable axis */
static const char *steps(const Node *n)
{
    if (n->vtime)
        return "T";
    return fmt_str("%lld", (long long)(n->shape.rank >= 2 ? n->shape.dim[0] : 1));
}

static const char *flt(double v)
{
    char *s = fmt_str("%s", "");
    c_float_to(s, v);
    return s;
}

static const char *dbl(double v)
{
    char *s = fmt_str("%s", "");
    c_double_to(s, v);
    return s;
}

/* Input text (paths, names) for a comment or a string literal of the
 * generated C: always through cquote.c, from the program's arena. */
static const char *comment_text(const Program *p, const char *s)
{
    return c_comment_text(p->infer->arena, s);
}

static const char *literal(const Program *p, const char *s)
{
    return c_literal(p->infer->arena, s);
}

/* beta of a kernel writing a gradient: the first writer of a weight's
 * gradient in this graph overwrites on the first chunk (acc = 0). */
static const char *grad_beta(Emitter *e, const Node *n)
{
    assert(n->storage == ST_GRAD);
    if (e->grad_written[n->w->index])
        return "1.0f";
    e->grad_written[n->w->index] = true;
    return "acc";
}

static void comment(Emitter *e, const Node *n)
{
    const char *what = op_info[n->op].name;
    if (n->loc.file)
        out(e, "\n    /* %s:%d %s: %s%s %s */\n", comment_text(e->p, n->loc.file), n->loc.line,
            comment_text(e->p, n->layer ? n->layer : n->name),
            n->backward ? "backward " : "", what, node_shape_str(e->g->arena, n));
    else
        out(e, "\n    /* %s %s */\n", what, node_shape_str(e->g->arena, n));
}

/* Declare n's arena buffer before the kernel that writes it. */
static void define(Emitter *e, const Node *n)
{
    if (n->storage == ST_ARENA)
        out(e, "    float *const %s = arena + %zu;  /* %s */\n", n->name, n->offset,
            node_shape_str(e->g->arena, n));
}

/* Note a custom function the code calls; its helpers are written once. */
static const char *use_custom(Emitter *e, const CustomFn *f)
{
    bool seen = false;
    for (int i = 0; i < e->ncustoms; i++)
        seen |= e->customs[i] == f;
    if (!seen && e->ncustoms < 64)
        e->customs[e->ncustoms++] = f;
    return fmt_str("custom_%s", f->name);
}

/* ---- one emitter per op ------------------------------------------------------------ */

static const char *act_name(Emitter *e, const Node *n);
static const char *epilogue_call(Emitter *e, const Node *a, const char *y, const char *z, const char *b,
                                 const char *rows);

static void emit_input(Emitter *e, const Node *n) { (void)e, (void)n; }
static void emit_target(Emitter *e, const Node *n) { (void)e, (void)n; }
static void emit_weight(Emitter *e, const Node *n) { (void)e, (void)n; }
static void emit_update(Emitter *e, const Node *n) { (void)e, (void)n; }  /* see emit_apply_updates */

static void emit_reshape(Emitter *e, const Node *n)
{
    bool input = base_of(n)->storage == ST_INPUT;
    out(e, "    %sfloat *const %s = %s;  /* %s view */\n", input ? "const " : "", n->name, ref(e, n->src[0]),
        node_shape_str(e->g->arena, n));
}

static void emit_matmul(Emitter *e, const Node *n)
{
    const Node *a = n->src[0], *b = n->src[1];
    const char *m_ = n->trans_a ? fmt_str("%lld", (long long)node_cols(a)) : rows(a);
    const char *k_ = n->trans_a ? rows(a) : fmt_str("%lld", (long long)node_cols(a));
    const char *n_ = n->trans_b ? rows(b) : fmt_str("%lld", (long long)node_cols(b));
    char mm[64], kk[64], nn[64];
    snprintf(mm, sizeof mm, "%s", m_);
    snprintf(kk, sizeof kk, "%s", k_);
    snprintf(nn, sizeof nn, "%s", n_);
    const char *beta = n->storage == ST_GRAD ? grad_beta(e, n) : "0.0f";
    comment(e, n);
    define(e, n);
    if (n->epilogue) {  /* row blocks: each gets the bias (and activation) right after its GEMM */
        const Node *ep = n->epilogue;
        int64_t block = node_cols(n) < 256 ? 131072 / node_cols(n) : 512;  /* NNRT_EPILOGUE_ROWS */
        define(e, ep);
        if (node_rows(n) * (int64_t)e->p->max_batch <= block) {  /* the whole output is one block */
            out(e, "    /* %s = %s(%s + bias), right after its GEMM: at most %lld rows, one cache-sized block */\n",
                ep->name, ep->op == OP_BIAS_ADD ? "linear" : act_name(e, ep), n->name,
                (long long)(node_rows(n) * (int64_t)e->p->max_batch));
            out(e, "    nnrt_gemm(0, 0, %s, %s, %s, 1.0f, %s, %lld, %s, %lld, 0.0f, %s, %s);\n", mm, nn, kk, ref(e, a),
                (long long)node_cols(a), ref(e, b), (long long)node_cols(b), ref(e, n), nn);
            out(e, "    %s;\n", epilogue_call(e, ep, ref(e, ep), ref(e, n), NULL, mm));
            return;
        }
        out(e, "    /* %s = %s(%s + bias) in the GEMM's epilogue, %lld rows at a time */\n", ep->name,
            ep->op == OP_BIAS_ADD ? "linear" : act_name(e, ep), n->name, (long long)block);
        out(e, "    for (int blk = 0; blk < %s; blk += %lld) {\n", mm, (long long)block);
        out(e, "        const int blk_rows = %s - blk < %lld ? %s - blk : %lld;\n", mm, (long long)block, mm,
            (long long)block);
        out(e, "        nnrt_gemm(0, 0, blk_rows, %s, %s, 1.0f, %s + (size_t)blk * %lld, %lld, %s, %lld, 0.0f, "
               "%s + (size_t)blk * %s, %s);\n",
            nn, kk, ref(e, a), (long long)node_cols(a), (long long)node_cols(a), ref(e, b), (long long)node_cols(b), ref(e, n), nn, nn);
        out(e, "        %s;\n    }\n",
            epilogue_call(e, ep, fmt_str("%s + (size_t)blk * %s", ref(e, ep), nn),
                          fmt_str("%s + (size_t)blk * %s", ref(e, n), nn), NULL, "blk_rows"));
        return;
    }
    if (n->sgd_step) {  /* pass_fuse_sgd */
        double mom = e->p->optimizer.momentum;
        if (mom != 0.0)
            out(e, "    if (m->step_in_gemm) {  /* SGD's velocity in this GEMM: v = momentum * v - lr * x^T dy */\n");
        else
            out(e, "    if (m->step_in_gemm) {  /* plain SGD's step in this GEMM: %s -= lr * x^T dy */\n", n->w->name);
        out(e, "        if (!m->frozen[%d])\n", n->w->index);
        out(e, "            nnrt_gemm(1, 0, %s, %s, %s, -m->step_lr, %s, %lld, %s, %lld, %s, %s, %s);\n", mm, nn, kk,
            ref(e, a), (long long)node_cols(a), ref(e, b), (long long)node_cols(b), mom != 0.0 ? flt(mom) : "1.0f",
            mom != 0.0 ? fmt_str("m->slot[0] + %zu", n->w->opt_offset) : fmt_str("m->w.%s", e->field[n->w->index]), nn);
        out(e, "    } else {\n    ");
    }
    out(e, "    nnrt_gemm(%d, %d, %s, %s, %s, 1.0f, %s, %lld, %s, %lld, %s, %s, %s);\n", n->trans_a, n->trans_b, mm, nn,
        kk, ref(e, a), (long long)node_cols(a), ref(e, b), (long long)node_cols(b), beta, ref(e, n), nn);
    if (n->sgd_step)
        out(e, "    }\n");
}

static void emit_bias_add(Emitter *e, const Node *n)
{
    if (n->in_epilogue)
        return;  /* written with the GEMM that produces its input */
    e->need[H_BIAS_ADD] = true;
    comment(e, n);
    define(e, n);
    out(e, "    bias_add(%s, %s, %s, %s, %lld);\n", ref(e, n), ref(e, n->src[0]), ref(e, n->src[1]), rows(n),
        (long long)node_cols(n));
}

static void emit_bias_grad(Emitter *e, const Node *n)
{
    if (n->in_epilogue)
        return;  /* written by the BN_GRAD naming it */
    e->need[H_BIAS_GRAD] = true;
    const Node *dy = n->src[0];
    const char *beta = grad_beta(e, n);
    comment(e, n);
    out(e, "    bias_grad(%s, %s, %s, %lld, %s);\n", ref(e, n), ref(e, dy), rows(dy), (long long)node_cols(dy), beta);
}

static const char *act_name(Emitter *e, const Node *n)
{
    return n->attr == ACT_CUSTOM ? use_custom(e, n->custom) : act_info[n->attr].name;
}

static void emit_activation(Emitter *e, const Node *n)
{
    e->act_forward[n->attr] = true;
    comment(e, n);
    define(e, n);
    out(e, "    %s_forward(%s, %s, %s", act_name(e, n), ref(e, n), ref(e, n->src[0]), count(n));
    if (act_has_alpha((ActKind)n->attr))
        out(e, ", %s", flt(n->alpha));
    out(e, ");\n");
}

/* The call that applies epilogue node a (bias add, or bias and activation)
 * to `rows` rows: y and z are C expressions of the rows' first floats. */
static const char *epilogue_call(Emitter *e, const Node *a, const char *y, const char *z, const char *b,
                                 const char *rows)
{
    if (!b)
        b = ref(e, a->src[1]);
    if (a->op == OP_BIAS_ADD) {
        e->need[H_BIAS_ADD] = true;
        return fmt_str("bias_add(%s, %s, %s, %s, %lld)", y, z, b, rows, (long long)node_cols(a));
    }
    e->act_bias_forward[a->attr] = true;
    return fmt_str("%s_bias_forward(%s, %s, %s, %s, %lld%s)", act_name(e, a), y, z, b, rows, (long long)node_cols(a),
                   act_has_alpha((ActKind)a->attr) ? fmt_str(", %s", flt(a->alpha)) : "");
}

static void emit_add_activation(Emitter *e, const Node *n)
{
    e->act_add_forward[n->attr] = true;
    comment(e, n);
    define(e, n);
    out(e, "    %s_add_forward(%s, %s, %s, %s", act_name(e, n), ref(e, n), ref(e, n->src[0]), ref(e, n->src[1]), count(n));
    if (act_has_alpha((ActKind)n->attr))
        out(e, ", %s", flt(n->alpha));
    out(e, ");\n");
}

static void emit_bias_activation(Emitter *e, const Node *n)
{
    if (n->in_epilogue)
        return;  /* written with the GEMM that produces its input */
    e->act_bias_forward[n->attr] = true;
    comment(e, n);
    define(e, n);
    out(e, "    %s_bias_forward(%s, %s, %s, %s, %lld", act_name(e, n), ref(e, n), ref(e, n->src[0]), ref(e, n->src[1]),
        rows(n), (long long)node_cols(n));
    if (act_has_alpha((ActKind)n->attr))
        out(e, ", %s", flt(n->alpha));
    out(e, ");\n");
}

static void emit_activation_grad(Emitter *e, const Node *n)
{
    e->act_backward[n->attr] = true;
    comment(e, n);
    define(e, n);
    out(e, "    %s_backward(%s, %s, %s, %s, %s", act_name(e, n), ref(e, n), ref(e, n->src[0]),
        ref(e, n->src[1]), ref(e, n->src[2]), count(n));
    if (act_has_alpha((ActKind)n->attr))
        out(e, ", %s", flt(n->alpha));
    out(e, ");\n");
}

static void emit_softmax(Emitter *e, const Node *n)
{
    comment(e, n);
    define(e, n);
    out(e, "    nnrt_softmax(%s, %s, %s, %lld);\n", ref(e, n), ref(e, n->src[0]), rows(n), (long long)node_cols(n));
}

static void emit_softmax_grad(Emitter *e, const Node *n)
{
    e->need[H_SOFTMAX_BACKWARD] = true;
    comment(e, n);
    define(e, n);
    out(e, "    softmax_backward(%s, %s, %s, %s, %lld);\n", ref(e, n), ref(e, n->src[0]), ref(e, n->src[1]), rows(n),
        (long long)node_cols(n));
}

static void emit_dropout_mask(Emitter *e, const Node *n)
{
    comment(e, n);
    define(e, n);
    if (n->steps > 0) {  /* one mask per sample, repeated over the time steps (Keras RNN dropout) */
        out(e, "    nnrt_dropout_mask_steps(%s, B, %s, %lld, %s, rng);\n", ref(e, n), steps(n),
            (long long)(shape_size(&n->shape) / n->steps), flt(n->alpha));
        return;
    }
    out(e, "    nnrt_dropout_mask(%s, %s, %s, rng);\n", ref(e, n), count(n), flt(n->alpha));
}

static void emit_mul(Emitter *e, const Node *n)
{
    e->need[H_MUL] = true;
    comment(e, n);
    define(e, n);
    out(e, "    mul(%s, %s, %s, %s);\n", ref(e, n), ref(e, n->src[0]), ref(e, n->src[1]), count(n));
}

static void emit_add(Emitter *e, const Node *n)
{
    e->need[H_ADD] = true;
    comment(e, n);
    define(e, n);
    out(e, "    add(%s, %s, %s, %s);\n", ref(e, n), ref(e, n->src[0]), ref(e, n->src[1]), count(n));
}

static void emit_sub(Emitter *e, const Node *n)
{
    e->need[H_SUB] = true;
    comment(e, n);
    define(e, n);
    out(e, "    sub(%s, %s, %s, %s);\n", ref(e, n), ref(e, n->src[0]), ref(e, n->src[1]), count(n));
}

static void emit_scale(Emitter *e, const Node *n)
{
    e->need[H_SCALE] = true;
    comment(e, n);
    define(e, n);
    out(e, "    scale(%s, %s, %s, %s);\n", ref(e, n), ref(e, n->src[0]), flt(n->alpha), count(n));
}

static void emit_maximum(Emitter *e, const Node *n)
{
    e->need[H_MAXIMUM] = true;
    comment(e, n);
    define(e, n);
    out(e, "    maximum(%s, %s, %s, %s);\n", ref(e, n), ref(e, n->src[0]), ref(e, n->src[1]), count(n));
}

static void emit_maximum_grad(Emitter *e, const Node *n)
{
    e->need[H_MAXIMUM_GRAD] = true;
    comment(e, n);
    define(e, n);
    out(e, "    maximum_backward(%s, %s, %s, %s, %d, %s);\n", ref(e, n), ref(e, n->src[0]), ref(e, n->src[1]),
        ref(e, n->src[2]), n->attr, count(n));
}

/* n viewed as (outer, dim(axis) * inner): rows before the axis, floats per row from it on */
static const char *outer_rows(const Node *n, int axis)
{
    int64_t r = 1;
    for (int i = 0; i < axis; i++)
        r *= n->shape.dim[i];
    return per_batch(n, r, axis > 0, "B");
}

static void emit_concat(Emitter *e, const Node *n)
{
    e->need[H_COPY_ROWS] = true;
    comment(e, n);
    define(e, n);
    int64_t at = 0, stride = node_span(n, n->axis);
    for (int i = 0; i < n->nsrc; i++) {
        int64_t len = node_span(n->src[i], n->axis);
        out(e, "    copy_rows(%s + %lld, %lld, %s, %lld, %s, %lld);\n", ref(e, n), (long long)at, (long long)stride,
            ref(e, n->src[i]), (long long)len, outer_rows(n, n->axis), (long long)len);
        at += len;
    }
}

static void emit_slice(Emitter *e, const Node *n)
{
    e->need[H_COPY_ROWS] = true;
    const Node *x = n->src[0];
    int64_t inner = node_span(n, n->axis) / (n->shape.dim[n->axis] ? n->shape.dim[n->axis] : 1);
    comment(e, n);
    define(e, n);
    out(e, "    copy_rows(%s, %lld, %s + %lld, %lld, %s, %lld);\n", ref(e, n), (long long)node_span(n, n->axis),
        ref(e, x), (long long)(n->start * inner), (long long)node_span(x, n->axis), outer_rows(n, n->axis),
        (long long)node_span(n, n->axis));
}

/* The NnrtConv of a window op, from the input x, filters f and the output y. */
static const char *conv_desc(Emitter *e, const Node *n, const Node *x, int64_t f)
{
    const Shape *s = &x->shape;
    int64_t h = s->rank == 3 ? s->dim[0] : 1, w = s->dim[s->rank - 2], c = s->dim[s->rank - 1];
    const char *name = fmt_str("%s_window", n->name);
    out(e, "    static const NnrtConv %s = {%lld, %lld, %lld, %d, %d, %lld, %d, %d, %d, %d, %d, %d, %d, %d};\n", name,
        (long long)h, (long long)w, (long long)c, n->conv.kh, n->conv.kw, (long long)f, n->conv.sh, n->conv.sw,
        n->conv.dh, n->conv.dw, n->conv.pt, n->conv.pl, n->conv.oh, n->conv.ow);
    return name;
}

static const char *workspace(const Node *n)
{
    return fmt_str("arena + %zu, %zu", n->workspace_offset, n->workspace);
}

/* attr > 0 is a depthwise convolution (runtime/conv.c's direct loops, no im2col) */
static void emit_conv(Emitter *e, const Node *n)
{
    const Node *x = n->src[0], *k = n->src[1];
    comment(e, n);
    define(e, n);
    const char *d = conv_desc(e, n, x, node_cols(n));
    if (n->epilogue) {  /* the runtime calls it on each block of rows its GEMM finished */
        const Node *ep = n->epilogue;
        const char *fn = fmt_str("%s_%s_epilogue", e->g->mode, n->name);
        fprintf(e->pre, "/* %s:%d %s: %s(conv + bias) on rows [row, row + rows) of the (B*%lld, %lld) output */\n",
                comment_text(e->p, n->loc.file ? n->loc.file : ""), n->loc.line, ep->name,
                ep->op == OP_BIAS_ADD ? "linear" : act_info[ep->attr].name,
                (long long)(shape_size(&n->shape) / node_cols(n)), (long long)node_cols(n));
        fprintf(e->pre, "static void %s(const NnrtEpilogue *e, size_t row, size_t rows)\n{\n    %s;\n}\n\n", fn,
                epilogue_call(e, ep, fmt_str("e->y + row * %lld", (long long)node_cols(n)),
                              fmt_str("e->z + row * %lld", (long long)node_cols(n)), "e->b", "rows"));
        define(e, ep);
        out(e, "    nnrt_conv_forward_epilogue(%s, %s, %s, &%s, B, %s, &(NnrtEpilogue){%s, %s, %s, %s});\n", ref(e, n),
            ref(e, x), ref(e, k), d, workspace(n), ref(e, n), ref(e, ep), ref(e, ep->src[1]), fn);
    } else if (n->attr)
        out(e, "    nnrt_depthwise_forward(%s, %s, %s, &%s, %d, B);\n", ref(e, n), ref(e, x), ref(e, k), d, n->attr);
    else
        out(e, "    nnrt_conv_forward(%s, %s, %s, &%s, B, %s);\n", ref(e, n), ref(e, x), ref(e, k), d, workspace(n));
}

static void emit_conv_grad_input(Emitter *e, const Node *n)
{
    const Node *dy = n->src[0], *k = n->src[1];
    comment(e, n);
    define(e, n);
    const char *d = conv_desc(e, n, n, node_cols(dy));
    if (n->attr)
        out(e, "    nnrt_depthwise_backward_input(%s, %s, %s, &%s, %d, B);\n", ref(e, n), ref(e, dy), ref(e, k), d,
            n->attr);
    else
        out(e, "    nnrt_conv_backward_input(%s, %s, %s, &%s, B, %s);\n", ref(e, n), ref(e, dy), ref(e, k), d,
            workspace(n));
}

static void emit_conv_grad_kernel(Emitter *e, const Node *n)
{
    const Node *x = n->src[0], *dy = n->src[1];
    const char *beta = grad_beta(e, n);
    comment(e, n);
    const char *d = conv_desc(e, n, x, node_cols(dy));
    if (n->attr)
        out(e, "    nnrt_depthwise_backward_kernel(%s, %s, %s, &%s, %d, B, %s);\n", ref(e, n), ref(e, x), ref(e, dy), d,
            n->attr, beta);
    else
        out(e, "    nnrt_conv_backward_kernel(%s, %s, %s, &%s, B, %s, %s);\n", ref(e, n), ref(e, x), ref(e, dy), d,
            beta, workspace(n));
}

static void emit_pool(Emitter *e, const Node *n)
{
    const Node *x = n->src[0];
    comment(e, n);
    define(e, n);
    const char *d = conv_desc(e, n, x, node_cols(x));
    out(e, "    nnrt_%s_forward(%s, %s, &%s, B);\n", n->attr ? "avgpool" : "maxpool", ref(e, n), ref(e, x), d);
}

static void emit_pool_grad(Emitter *e, const Node *n)
{
    const Node *dy = n->src[0], *x = n->src[1], *y = n->src[2];
    comment(e, n);
    define(e, n);
    const char *d = conv_desc(e, n, x, node_cols(x));
    if (n->attr)
        out(e, "    nnrt_avgpool_backward(%s, %s, &%s, B);\n", ref(e, n), ref(e, dy), d);
    else
        out(e, "    nnrt_maxpool%s_backward(%s, %s, %s, %s, &%s, B);\n", n->relu_grad ? "_relu" : "", ref(e, n), ref(e, dy),
            ref(e, x), ref(e, y), d);
}

static void emit_bn_stats(Emitter *e, const Node *n)
{
    const Node *x = n->src[0];
    comment(e, n);
    define(e, n);
    out(e, "    nnrt_bn_stats(%s, %s, %s, %lld, %s);\n", ref(e, n), ref(e, x), rows(x), (long long)node_cols(x), flt(n->eps));
}

static const char *opt_src(const Emitter *e, const Node *n, bool has, int i)
{
    return has ? ref(e, n->src[i]) : "NULL";
}

static void emit_bn_apply(Emitter *e, const Node *n)
{
    const Node *x = n->src[0];
    comment(e, n);
    define(e, n);
    if (n->attr != ACT_LINEAR) {  /* with its activation (pass_fuse) */
        e->act_bn_forward[n->attr] = true;
        out(e, "    %s_bn_forward(%s, %s, %s, %s, %s, %s, %lld", act_info[n->attr].name, ref(e, n), ref(e, x),
            ref(e, n->src[1]), opt_src(e, n, n->has_gamma, 2), opt_src(e, n, n->has_beta, n->has_gamma ? 3 : 2),
            rows(x), (long long)node_cols(x));
        if (act_has_alpha((ActKind)n->attr))
            out(e, ", %s", flt(n->alpha));
        out(e, ");\n");
        return;
    }
    out(e, "    nnrt_bn_forward(%s, %s, %s, %s, %s, %s, %lld);\n", ref(e, n), ref(e, x), ref(e, n->src[1]),
        opt_src(e, n, n->has_gamma, 2), opt_src(e, n, n->has_beta, n->has_gamma ? 3 : 2), rows(x), (long long)node_cols(x));
}

static void emit_bn_grad_input(Emitter *e, const Node *n)
{
    const Node *x = n->src[1];
    comment(e, n);
    define(e, n);
    out(e, "    nnrt_bn_backward_input(%s, %s, %s, %s, %s, %s, %lld);\n", ref(e, n), ref(e, n->src[0]), ref(e, x),
        ref(e, n->src[2]), opt_src(e, n, n->has_gamma, 3), rows(x), (long long)node_cols(x));
}

static void emit_bn_grad_gamma(Emitter *e, const Node *n)
{
    if (n->in_epilogue)
        return;  /* written by the BN_GRAD naming it */
    const Node *x = n->src[1];
    const char *beta = grad_beta(e, n);
    comment(e, n);
    out(e, "    nnrt_bn_backward_gamma(%s, %s, %s, %s, %s, %lld, %s);\n", ref(e, n), ref(e, n->src[0]), ref(e, x),
        ref(e, n->src[2]), rows(x), (long long)node_cols(x), beta);
}

static void emit_bn_grad(Emitter *e, const Node *n)
{
    const Node *x = n->src[1], *dg = n->side[0], *db = n->side[1];
    bool has_dx = n->storage != ST_GRAD;
    int i = 3;
    const char *ys = n->attr != ACT_LINEAR ? ref(e, n->src[i++]) : "NULL";
    const char *gamma = n->has_gamma ? ref(e, n->src[i]) : "NULL";
    e->act_bn_backward[n->attr] = true;
    comment(e, n);
    if (has_dx)
        define(e, n);
    if (dg || db)
        out(e, "    /* and %s%s%s, in the same two passes%s */\n", dg ? dg->name : "", dg && db ? " and " : "",
            db ? db->name : "", n->attr != ACT_LINEAR ? fmt_str("; dz = dy * %s' is never stored", act_info[n->attr].name) : "");
    const char *dgamma = has_dx ? (dg ? ref(e, dg) : "NULL") : ref(e, n);
    const char *acc_gamma = has_dx ? (dg ? grad_beta(e, dg) : "0.0f") : grad_beta(e, n);
    out(e, "    %s_bn_backward(%s, %s, %s, %s, %s, %s, %s, %s, %s, %lld, %s, %s", act_info[n->attr].name,
        has_dx ? ref(e, n) : "NULL", dgamma, db ? ref(e, db) : "NULL", ref(e, n->src[0]), ys, ref(e, x),
        ref(e, n->src[2]), gamma, rows(x), (long long)node_cols(x), acc_gamma, db ? grad_beta(e, db) : "0.0f");
    if (act_has_alpha((ActKind)n->attr))
        out(e, ", %s", flt(n->alpha));
    out(e, ");\n");
}

static void emit_bn_moving(Emitter *e, const Node *n)
{
    comment(e, n);
    out(e, "    if (update_stats)\n        nnrt_bn_moving_update(%s, %s, %s, %lld, %s, %s);\n", ref(e, n->src[1]),
        ref(e, n->src[2]), ref(e, n->src[0]), (long long)shape_size(&n->src[1]->shape), flt(n->momentum), flt(n->eps));
}

static void emit_bn_infer(Emitter *e, const Node *n)
{
    const Node *x = n->src[0];
    comment(e, n);
    define(e, n);
    out(e, "    nnrt_bn_inference(%s, %s, %s, %s, %s, %s, %s, %lld, %s);\n", ref(e, n), ref(e, x),
        opt_src(e, n, n->has_gamma, 3), opt_src(e, n, n->has_beta, n->has_gamma ? 4 : 3), ref(e, n->src[1]),
        ref(e, n->src[2]), rows(x), (long long)node_cols(x), flt(n->eps));
}

static void emit_bn_infer_grad(Emitter *e, const Node *n)
{
    const Node *dy = n->src[0];
    comment(e, n);
    define(e, n);
    out(e, "    nnrt_bn_inference(%s, %s, %s, NULL, NULL, %s, %s, %lld, %s);\n", ref(e, n), ref(e, dy),
        opt_src(e, n, n->has_gamma, 2), ref(e, n->src[1]), rows(dy), (long long)node_cols(dy), flt(n->eps));
}

static void emit_bn_fold(Emitter *e, const Node *n)
{
    int i = 2;
    const char *gamma = opt_src(e, n, n->has_gamma, i);
    i += n->has_gamma;
    const char *beta = opt_src(e, n, n->has_beta, i);
    i += n->has_beta;
    comment(e, n);
    define(e, n);
    out(e, "    nnrt_bn_fold(%s, %s, %s, %s, %s, %s, %lld, %s);\n", ref(e, n), gamma, beta, ref(e, n->src[0]),
        ref(e, n->src[1]), opt_src(e, n, n->has_bias, i), (long long)node_cols(n), flt(n->eps));
}

static void emit_scale_shift(Emitter *e, const Node *n)
{
    assert(n->attr != ACT_CUSTOM);  /* pass_fuse merges no activation that has no ACT_TABLE row */
    e->act_scale_shift[n->attr] = true;
    comment(e, n);
    define(e, n);
    out(e, "    %s_scale_shift_forward(%s, %s, %s, %s, %lld", act_info[n->attr].name, ref(e, n), ref(e, n->src[0]),
        ref(e, n->src[1]), rows(n), (long long)node_cols(n));
    if (act_has_alpha((ActKind)n->attr))
        out(e, ", %s", flt(n->alpha));
    out(e, ");\n");
}

/* The NnrtRnn of a recurrent op; x is the layer's input (B, T, input). */
static const char *rnn_desc(Emitter *e, const Node *n, const Node *x)
{
    static const char *kinds[] = {"NNRT_SIMPLE_RNN", "NNRT_LSTM", "NNRT_GRU"};
    static const char *acts[] = {"NNRT_RNN_TANH", "NNRT_RNN_SIGMOID", "NNRT_RNN_HARD_SIGMOID", "NNRT_RNN_RELU",
                                 "NNRT_RNN_LINEAR"};
    const char *name = fmt_str("%s_cell", n->name);
    out(e, "    %sconst NnrtRnn %s = {%s, %s, %lld, %d, %s, %s, %d, %d};\n", x->vtime ? "" : "static ", name,
        kinds[n->rnn.kind], steps(x), (long long)x->shape.dim[1], n->rnn.units, acts[n->rnn.activation],
        acts[n->rnn.recurrent_activation], n->rnn.go_backwards, n->rnn.reset_after);
    return name;
}

/* Where a recurrent op's optional sources sit: x (or dy, x, tape) then
 * W, U from `weights`; then [b], [h0[, c0]], [rmask], [dh0[, dc0]]. */
typedef struct {
    const Node *b, *h0, *c0, *rmask, *dh0, *dc0;
} RnnSources;

static RnnSources rnn_sources(const Node *n, int weights)
{
    RnnSources s = {0};
    int i = weights + 2, nstates = n->rnn.kind == 1 /* LSTM */ ? 2 : 1;
    if (n->rnn.has_bias)
        s.b = n->src[i++];
    if (n->rnn.has_state) {
        s.h0 = n->src[i++];
        s.c0 = nstates == 2 ? n->src[i++] : NULL;
    }
    if (n->rnn.has_rmask)
        s.rmask = n->src[i++];
    if (n->rnn.state_grad) {
        s.dh0 = n->src[i++];
        s.dc0 = nstates == 2 ? n->src[i++] : NULL;
    }
    assert(i == n->nsrc);
    return s;
}

/* The NnrtRnnState argument: NULL, or the initial state and its gradients. */
static const char *rnn_state(Emitter *e, const RnnSources *s)
{
    if (!s->h0 && !s->dh0)
        return "NULL";
    return fmt_str("&(NnrtRnnState){%s, %s, %s, %s}", s->h0 ? ref(e, s->h0) : "NULL", s->c0 ? ref(e, s->c0) : "NULL",
                   s->dh0 ? ref(e, s->dh0) : "NULL", s->dc0 ? ref(e, s->dc0) : "NULL");
}

static void emit_rnn(Emitter *e, const Node *n)
{
    const Node *x = n->src[0];
    const RnnSources s = rnn_sources(n, 1);
    comment(e, n);
    define(e, n);
    const char *d = rnn_desc(e, n, x);
    out(e, "    nnrt_rnn_forward(%s, %s, %s, %s, %s, %s, %s, &%s, B, arena + %zu);\n", ref(e, n), ref(e, x),
        ref(e, n->src[1]), ref(e, n->src[2]), s.b ? ref(e, s.b) : "NULL", s.rmask ? ref(e, s.rmask) : "NULL",
        rnn_state(e, &s), d, n->workspace_offset);
}

/* Declared before the RNN_GRAD that writes it. */
static void emit_rnn_state_grad(Emitter *e, const Node *n)
{
    comment(e, n);
    define(e, n);
}

static void emit_rnn_output(Emitter *e, const Node *n)
{
    const Node *tape = n->src[0];
    comment(e, n);
    define(e, n);
    const char *d = rnn_desc(e, n, tape->src[0]);
    static const char *which[] = {"NNRT_RNN_LAST", "NNRT_RNN_SEQUENCE", "NNRT_RNN_CELL"};
    out(e, "    nnrt_rnn_output(%s, %s, &%s, B, %s);\n", ref(e, n), ref(e, tape), d, which[n->rnn.which]);
}

static void emit_rnn_grad(Emitter *e, const Node *n)
{
    const Node *dy = n->src[0], *x = n->src[1], *tape = n->src[2];
    /* the weights' gradients (NULL when frozen) share one beta: "acc" when this
     * kernel writes them first; when another writer (a regularizer) came
     * before, the others are cleared on the first chunk and all accumulate */
    const char *grads[3] = {"NULL", "NULL", "NULL"}, *beta = "acc";
    bool any_written = false;
    int nweights = 2 + n->rnn.has_bias;  /* W, U[, b]; a recurrent-dropout mask may follow */
    for (int i = 3; i < 3 + nweights; i++)
        any_written |= n->src[i]->requires_grad && e->grad_written[n->src[i]->w->index];
    comment(e, n);
    define(e, n);
    for (int i = 3; i < 3 + nweights; i++) {
        const Node *w = n->src[i];
        if (!w->requires_grad)
            continue;
        grads[i - 3] = fmt_str("m->g.%s", e->field[w->w->index]);
        if (any_written && !e->grad_written[w->w->index])
            out(e, "    if (acc == 0.0f)\n        memset(%s, 0, %lld * sizeof(float));\n", grads[i - 3],
                (long long)shape_size(&w->w->shape));
        e->grad_written[w->w->index] = true;
    }
    if (any_written)
        beta = "1.0f";
    const char *d = rnn_desc(e, n, x);
    static const char *which[] = {"NNRT_RNN_LAST", "NNRT_RNN_SEQUENCE", "NNRT_RNN_CELL"};
    const RnnSources s = rnn_sources(n, 3);
    out(e, "    nnrt_rnn_backward(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, &%s, B, %s, arena + %zu);\n",
        n->storage == ST_NONE ? "NULL" : ref(e, n), grads[0], grads[1], grads[2], ref(e, dy), which[n->rnn.which],
        ref(e, x), ref(e, tape), ref(e, n->src[3]), ref(e, n->src[4]), s.b ? ref(e, s.b) : "NULL",
        s.rmask ? ref(e, s.rmask) : "NULL", rnn_state(e, &s), d, beta, n->workspace_offset);
}

static const char *loss_kernel(Emitter *e, const Node *n)
{
    const LossInfo *li = &loss_info[n->attr];
    if (n->attr == LOSS_CUSTOM)
        return fmt_str("%s_loss", use_custom(e, n->custom));
    if (n->attr == LOSS_MEAN_SQUARED_ERROR || n->attr == LOSS_MEAN_ABSOLUTE_ERROR || n->attr == LOSS_HUBER)
        return fmt_str("nnrt_%s", li->kernel);
    return fmt_str("nnrt_%s_%s", li->kernel, n->from_logits ? "logits" : "probs");
}

static void emit_loss(Emitter *e, const Node *n)
{
    const Node *pred = n->src[0];
    const char *w = n->weight == 1.0f ? "" : fmt_str("%s * ", flt(n->weight));
    comment(e, n);
    const char *param = n->attr == LOSS_HUBER ? fmt_str(", %s", flt(n->alpha)) : "";
    if (n->slot < 0) {
        out(e, "    res[0] += %s%s(%s, %s, %s, %lld%s);\n", w, loss_kernel(e, n), ref(e, pred), ref(e, n->src[1]),
            rows(pred), (long long)node_cols(pred), param);
        return;
    }
    out(e, "    res[%d] = %s(%s, %s, %s, %lld%s);  /* reported as %s */\n", 1 + n->slot, loss_kernel(e, n), ref(e, pred),
        ref(e, n->src[1]), rows(pred), (long long)node_cols(pred), param, comment_text(e->p, e->p->metric_names[n->slot]));
    out(e, "    res[0] += %sres[%d];\n", w, 1 + n->slot);
}

static void emit_loss_grad(Emitter *e, const Node *n)
{
    const Node *pred = n->src[0];
    comment(e, n);
    define(e, n);
    char scale[96];
    int64_t pre = node_rows(pred);  /* the loss is a mean over the rows of each sample too */
    const char *per = pred->vtime ? fmt_str(" / (float)(%s)", per_batch(pred, pre, true, "1"))
                      : pre == 1  ? ""
                                  : fmt_str(" / %s", flt((double)pre));
    snprintf(scale, sizeof scale, "%sgrad_scale%s", n->weight == 1.0f ? "" : fmt_str("%s * ", flt(n->weight)), per);
    out(e, "    %s_grad(%s, %s, %s, %s, %lld, %s%s);\n", loss_kernel(e, n), ref(e, n), ref(e, pred), ref(e, n->src[1]),
        rows(pred), (long long)node_cols(pred), scale, n->attr == LOSS_HUBER ? fmt_str(", %s", flt(n->alpha)) : "");
}

static void emit_penalty(Emitter *e, const Node *n)
{
    const Weight *w = n->src[0]->w;
    if (n->custom) {
        comment(e, n);
        out(e, "    res[0] += %s_penalty(%s, %lld);\n", use_custom(e, n->custom), ref(e, n->src[0]),
            (long long)shape_size(&w->shape));
        return;
    }
    e->need[H_PENALTY] = true;
    comment(e, n);
    out(e, "    res[0] += penalty(%s, %lld, %s, %s);\n", ref(e, n->src[0]), (long long)shape_size(&w->shape),
        flt(w->l1), flt(w->l2));
}

static void emit_penalty_grad(Emitter *e, const Node *n)
{
    const Weight *w = n->src[0]->w;
    const char *beta = grad_beta(e, n);
    if (n->custom) {
        comment(e, n);
        out(e, "    %s_penalty_backward(%s, %s, %lld, (float)B * grad_scale, %s);\n", use_custom(e, n->custom),
            ref(e, n), ref(e, n->src[0]), (long long)shape_size(&w->shape), beta);
        return;
    }
    e->need[H_PENALTY_BACKWARD] = true;
    comment(e, n);
    /* the penalty enters once per step: each chunk adds its share B/n */
    out(e, "    penalty_backward(%s, %s, %lld, %s, %s, (float)B * grad_scale, %s);\n", ref(e, n), ref(e, n->src[0]),
        (long long)shape_size(&w->shape), flt(w->l1), flt(w->l2), beta);
}

static void emit_metric(Emitter *e, const Node *n)
{
    const Node *y = n->src[0];
    comment(e, n);
    if (n->custom && n->custom->time_indexed) {
        out(e, "    res[%d] = %s_metric(%s, %s, B, %s, %lld);\n", 1 + n->slot, use_custom(e, n->custom), ref(e, y),
            ref(e, n->src[1]), steps(y), (long long)node_cols(y));
        return;
    }
    if (n->custom) {
        out(e, "    res[%d] = %s_metric(%s, %s, %s, %lld);\n", 1 + n->slot, use_custom(e, n->custom), ref(e, y),
            ref(e, n->src[1]), rows(y), (long long)node_cols(y));
        return;
    }
    if (metric_info[n->attr].sequence) {
        out(e, "    res[%d] = nnrt_%s(%s, %s, B, %s, %lld);\n", 1 + n->slot, metric_info[n->attr].kernel, ref(e, y),
            ref(e, n->src[1]), steps(y), (long long)node_cols(y));
        return;
    }
    out(e, "    res[%d] = nnrt_%s(%s, %s, %s, %lld%s);\n", 1 + n->slot, metric_info[n->attr].kernel, ref(e, y),
        ref(e, n->src[1]), rows(y), (long long)node_cols(y), n->attr == METRIC_BINARY_ACCURACY ? ", 0.5f" : "");
}

typedef void (*EmitFn)(Emitter *e, const Node *n);
static const EmitFn emitters[] = {
#define X(e, n, a) [OP_##e] = emit_##n,
    OP_TABLE(X)
#undef X
};
_Static_assert(sizeof emitters / sizeof emitters[0] == OP_COUNT, "one emitter per op");

/* ---- graph functions --------------------------------------------------------------- */

static bool is_tail(const Node *n)  /* losses and metrics: need targets */
{
    return n->op == OP_TARGET || n->op == OP_LOSS || n->op == OP_METRIC || n->op == OP_PENALTY;
}

static void declare_io(Emitter *e, const Node *n)
{
    if (n->op == OP_INPUT)
        out(e, "    const float *const %s = in[%d];  /* %s */\n", n->name, n->slot,
            node_shape_str(e->g->arena, n));
    else if (n->op == OP_TARGET)
        out(e, "    const %s *const %s = tg[%d];  /* %s%s */\n", n->int32 ? "int32_t" : "float", n->name, n->slot,
            node_shape_str(e->g->arena, n), n->int32 ? " class labels" : "");
}

/* Whether pass_fuse_sgd moved a weight's SGD step into its gradient's GEMM. */
static bool sgd_in_gemm(const Graph *g)
{
    for (int i = 0; g && i < g->nnodes; i++)
        if (g->nodes[i]->sgd_step)
            return true;
    return false;
}

static bool graph_has(const Graph *g, OpKind op)
{
    for (int i = 0; i < g->nnodes; i++)
        if (g->nodes[i]->op == op)
            return true;
    return false;
}

static void emit_train_chunk(Emitter *e)
{
    const Graph *g = e->g;
    bool dropout = graph_has(g, OP_DROPOUT_MASK);
    out(e, "/* Training mode on B <= %zu samples: forward, loss and metrics into res[0..%d], then\n"
           " * backward, adding d(loss)/d(weights) into m->g (acc = 0 overwrites: the first chunk). */\n",
        e->p->max_batch, e->p->nmetrics);
    out(e, "static void train_chunk(%s *m, int B, const float *const in[], const void *const tg[], float grad_scale,\n"
           "                        float acc, NnrtRng *rng, int update_stats, float *res)\n{\n",
        e->p->name);
    out(e, "    float *const arena = m->arena;\n");
    if (e->p->max_timesteps)
        out(e, "    const int T = m->timesteps;  /* this call's sequence length */\n");
    if (!dropout)
        out(e, "    (void)rng;\n");
    if (!graph_has(g, OP_BN_MOVING))
        out(e, "    (void)update_stats;\n");
    for (int i = 0; i < g->nnodes; i++)
        declare_io(e, g->nodes[i]);
    out(e, "    res[0] = 0.0f;\n");
    for (int i = 0; i < g->nnodes; i++) {
        const Node *n = g->nodes[i];
        if (n->op != OP_TARGET && n->op != OP_INPUT)
            emitters[n->op](e, n);
    }
    out(e, "}\n\n");
}

static void emit_infer_chunk(Emitter *e)
{
    const Graph *g = e->g;
    bool tail = graph_has(g, OP_LOSS);
    out(e, "/* Inference mode on B <= %zu samples: outputs into out[] when given; with targets,\n"
           " * the loss and metrics into res[0..%d]. */\n",
        e->p->max_batch, e->p->nmetrics);
    out(e, "static void infer_chunk(%s *m, int B, const float *const in[], float *const out[], const void *const tg[],\n"
           "                        float *res)\n{\n",
        e->p->name);
    out(e, "    float *const arena = m->arena;\n");
    if (e->p->max_timesteps)
        out(e, "    const int T = m->timesteps;  /* this call's sequence length */\n");
    if (!tail)
        out(e, "    (void)tg, (void)res;\n");
    bool uses_weights = graph_has(g, OP_WEIGHT);
    if (!uses_weights)
        out(e, "    (void)m;\n");
    for (int i = 0; i < g->nnodes; i++)
        if (g->nodes[i]->op == OP_INPUT)
            declare_io(e, g->nodes[i]);
    for (int i = 0; i < g->nnodes; i++) {
        const Node *n = g->nodes[i];
        if (!is_tail(n) && n->op != OP_INPUT)
            emitters[n->op](e, n);
    }
    out(e, "\n    if (out) {\n");
    for (int i = 0; i < e->p->noutputs; i++) {
        const Node *o = NULL;
        for (int j = 0; j < g->nnodes; j++)
            if (!strcmp(g->nodes[j]->name, e->p->outputs[i].buffer))
                o = g->nodes[j];
        assert(o);
        out(e, "        memcpy(out[%d], %s, %s * sizeof(float));\n", i, ref(e, o), count(o));
    }
    out(e, "    }\n");
    if (tail) {
        out(e, "    if (!tg)\n        return;\n");
        for (int i = 0; i < g->nnodes; i++)
            if (g->nodes[i]->op == OP_TARGET)
                declare_io(e, g->nodes[i]);
        out(e, "    res[0] = 0.0f;\n");
        for (int i = 0; i < g->nnodes; i++) {
            const Node *n = g->nodes[i];
            if (is_tail(n) && n->op != OP_TARGET)
                emitters[n->op](e, n);
        }
    }
    out(e, "}\n\n");
}

/* The optimizer's C call for one weight f of size n (slot pointers s0..s2). */
static void emit_optimizer_call(Emitter *e, const OptimizerSpec *o, const char *f, long long n, const char *const *slot)
{
    switch (o->kind) {
    case OPT_SGD:
        if (o->momentum == 0.0) {
            e->need[H_SGD] = true;
            out(e, "    sgd_update(m->w.%s, m->g.%s, %lld, lr);\n", f, f, n);
        } else {
            e->need[o->nesterov ? H_SGD_NESTEROV : H_SGD_MOMENTUM] = true;
            out(e, "    sgd_%s_update(m->w.%s, m->g.%s, %s, %lld, lr, %s);\n", o->nesterov ? "nesterov" : "momentum", f, f,
                slot[0], n, flt(o->momentum));
        }
        return;
    case OPT_ADAGRAD:
        e->need[H_ADAGRAD] = true;
        out(e, "    adagrad_update(m->w.%s, m->g.%s, %s, %lld, lr, %s);\n", f, f, slot[0], n, flt(o->epsilon));
        return;
    case OPT_RMSPROP:
        e->need[H_RMSPROP] = true;
        out(e, "    rmsprop_update(m->w.%s, m->g.%s, %s, %s, %s, %lld, lr, %s, %s, %s);\n", f, f, slot[0],
            o->momentum != 0 ? slot[1] : "NULL", o->centered ? slot[o->momentum != 0 ? 2 : 1] : "NULL", n, flt(o->rho),
            flt(o->momentum), flt(o->epsilon));
        return;
    case OPT_ADAMW:
        e->need[H_DECAY] = true;
        out(e, "    decay_weights(m->w.%s, %lld, lr * %s);\n", f, n, flt(o->weight_decay));
        /* then the Adam step */
        /* fall through */
    case OPT_ADAM:
        e->need[H_ADAM] = true;
        out(e, "    adam_update(m->w.%s, m->g.%s, %s, %s, %s, %lld, lr_t, %s, %s, %s);\n", f, f, slot[0], slot[1],
            o->amsgrad ? slot[2] : "NULL", n, flt(o->beta_1), flt(o->beta_2), flt(o->epsilon));
        return;
    case OPT_NADAM:
        e->need[H_NADAM] = true;
        out(e, "    nadam_update(m->w.%s, m->g.%s, %s, %s, %lld, lr, %s, %s, %s, &nadam);\n", f, f, slot[0], slot[1], n,
            flt(o->beta_1), flt(o->beta_2), flt(o->epsilon));
        return;
    case OPT_ADAMAX:
        e->need[H_ADAMAX] = true;
        out(e, "    adamax_update(m->w.%s, m->g.%s, %s, %s, %lld, lr_t, %s, %s, %s);\n", f, f, slot[0], slot[1], n,
            flt(o->beta_1), flt(o->beta_2), flt(o->epsilon));
        return;
    case OPT_COUNT:
        break;
    }
    assert(0);
}

/* learning_rate(m): the schedule at the current step, times m->lr_scale
 * (which ReduceLROnPlateau moves through P_model()->set_learning_rate). */
static void emit_learning_rate(Emitter *e)
{
    const OptimizerSpec *o = &e->p->optimizer;
    out(e, "/* The learning rate at step m->iterations");
    if (o->schedule.kind == SCHEDULE_EXPONENTIAL)
        out(e, ": ExponentialDecay(%g, decay_steps=%g, decay_rate=%g%s)", o->learning_rate, o->schedule.decay_steps,
            o->schedule.decay_rate, o->schedule.staircase ? ", staircase" : "");
    else if (o->schedule.kind == SCHEDULE_PIECEWISE)
        out(e, ": PiecewiseConstantDecay");
    out(e, ", times the scale ReduceLROnPlateau sets */\nstatic double learning_rate(const %s *m)\n{\n", e->p->name);
    switch (o->schedule.kind) {
    case SCHEDULE_CONSTANT:
        out(e, "    return m->lr_scale * %s;\n", dbl(o->learning_rate));
        break;
    case SCHEDULE_EXPONENTIAL:
        out(e, "    const double p = (double)m->iterations / %s;\n", dbl(o->schedule.decay_steps));
        out(e, "    return m->lr_scale * %s * pow(%s, %s);\n", dbl(o->learning_rate), dbl(o->schedule.decay_rate),
            o->schedule.staircase ? "floor(p)" : "p");
        break;
    case SCHEDULE_PIECEWISE:
        out(e, "    const double step = (double)m->iterations;\n");
        for (int i = 0; i < o->schedule.nboundaries; i++)
            out(e, "    if (step <= %s)\n        return m->lr_scale * %s;\n", dbl(o->schedule.boundaries[i]),
                dbl(o->schedule.values[i]));
        out(e, "    return m->lr_scale * %s;\n", dbl(o->schedule.values[o->schedule.nboundaries]));
        break;
    }
    out(e, "}\n\n");
}

static void emit_apply_updates(Emitter *e)
{
    const OptimizerSpec *o = &e->p->optimizer;
    const Graph *g = e->g;
    emit_learning_rate(e);
    out(e, "/* One optimizer step: %s(beta_1=%g, beta_2=%g, epsilon=%g, momentum=%g, rho=%g%s%s%s)", optimizer_info[o->kind].name,
        o->beta_1, o->beta_2, o->epsilon, o->momentum, o->rho, o->nesterov ? ", nesterov" : "",
        o->centered ? ", centered" : "", o->amsgrad ? ", amsgrad" : "");
    if (o->clipnorm || o->global_clipnorm || o->clipvalue)
        out(e, " after clipping (clipnorm=%g, global_clipnorm=%g, clipvalue=%g)", o->clipnorm, o->global_clipnorm,
            o->clipvalue);
    out(e, " */\nstatic void apply_updates(%s *m)\n{\n", e->p->name);
    bool any = graph_has(g, OP_UPDATE);
    if (!any) {
        out(e, "    (void)m;\n}\n\n");
        return;
    }
    out(e, "    const float lr = (float)learning_rate(m);\n");
    bool adam_like = o->kind == OPT_ADAM || o->kind == OPT_ADAMW || o->kind == OPT_ADAMAX;
    if (adam_like || o->kind == OPT_NADAM)
        out(e, "    const double t = (double)(m->iterations + 1);\n");
    if (o->kind == OPT_ADAM || o->kind == OPT_ADAMW)
        out(e, "    const float lr_t = (float)(lr * sqrt(1.0 - pow((double)%s, t)) / (1.0 - pow((double)%s, t)));\n",
            flt(o->beta_2), flt(o->beta_1));
    if (o->kind == OPT_ADAMAX)
        out(e, "    const float lr_t = (float)(lr / (1.0 - pow((double)%s, t)));\n", flt(o->beta_1));
    if (o->kind == OPT_NADAM) {
        /* tf.keras <= 2.10 Nadam: the momentum schedule mu_t and its running product */
        out(e, "    NadamStep nadam;\n");
        out(e, "    nadam.mu_t = (double)%s * (1.0 - 0.5 * pow(0.96, 0.004 * t));\n", flt(o->beta_1));
        out(e, "    nadam.mu_next = (double)%s * (1.0 - 0.5 * pow(0.96, 0.004 * (t + 1)));\n", flt(o->beta_1));
        out(e, "    nadam.schedule = m->m_schedule * nadam.mu_t;\n");
        out(e, "    nadam.schedule_next = nadam.schedule * nadam.mu_next;\n");
        out(e, "    nadam.v_correction = 1.0 - pow((double)%s, t);\n", flt(o->beta_2));
        out(e, "    m->m_schedule = nadam.schedule;\n");
    }
    if (o->clipvalue) {  /* tf.keras <= 2.10 clips by value first, then by norm, then by global norm */
        e->need[H_CLIP_VALUE] = true;
        for (int i = 0; i < g->nnodes; i++)
            if (g->nodes[i]->op == OP_UPDATE)
                out(e, "    clip_by_value(m->g.%s, %lld, %s);\n", e->field[g->nodes[i]->w->index],
                    (long long)shape_size(&g->nodes[i]->w->shape), flt(o->clipvalue));
    }
    if (o->global_clipnorm) {
        e->need[H_SUM_SQUARES] = true;
        e->need[H_SCALE] = true;
        out(e, "    double norm2 = 0.0;  /* global_clipnorm: the norm over the trainable gradients */\n");
        for (int i = 0; i < g->nnodes; i++)
            if (g->nodes[i]->op == OP_UPDATE)
                out(e, "    if (!m->frozen[%d])\n        norm2 += sum_squares(m->g.%s, %lld);\n", g->nodes[i]->w->index,
                    e->field[g->nodes[i]->w->index], (long long)shape_size(&g->nodes[i]->w->shape));
        out(e, "    const float global_scale = (float)(%s / fmax(sqrt(norm2), %s));\n", dbl(o->global_clipnorm),
            dbl(o->global_clipnorm));
    }
    for (int i = 0; i < g->nnodes; i++) {
        const Node *n = g->nodes[i];
        if (n->op != OP_UPDATE)
            continue;
        const Weight *w = n->w;
        const char *f = e->field[w->index];
        long long size = (long long)shape_size(&w->shape);
        out(e, "    /* %s/%s:0 %s */\n", comment_text(e->p, w->layer), comment_text(e->p, w->name),
            shape_str(g->arena, &w->shape, false));
        /* the weight's step, indented under its P_set_trainable switch */
        FILE *saved_out = e->out;
        char *block = NULL;
        size_t block_len = 0;
        e->out = open_memstream(&block, &block_len);
        assert(e->out);
        if (o->clipnorm) {
            e->need[H_CLIP_NORM] = true;
            e->need[H_SUM_SQUARES] = true;
            out(e, "    clip_by_norm(m->g.%s, %lld, %s);\n", f, size, flt(o->clipnorm));
        }
        if (o->global_clipnorm)
            out(e, "    scale(m->g.%s, m->g.%s, global_scale, %lld);\n", f, f, size);
        char slots[3][64];
        const char *slot[3];
        for (int k = 0; k < 3; k++) {
            snprintf(slots[k], sizeof slots[k], "m->slot[%d] + %zu", k, w->opt_offset);
            slot[k] = slots[k];
        }
        emit_optimizer_call(e, o, f, size, slot);
        if (w->custom_con) {
            out(e, "    %s_constrain(m->w.%s, %lld);\n", use_custom(e, w->custom_con), f, size);
        } else if (!strcmp(w->constraint ? w->constraint : "", "non_neg")) {
            e->need[H_NON_NEG] = true;
            out(e, "    constrain_non_neg(m->w.%s, %lld);\n", f, size);
        } else if (w->constraint && w->constraint[0]) {
            e->need[H_NORM_CONSTRAINT] = true;
            int axis = w->con_axis < 0 ? w->con_axis + w->shape.rank : w->con_axis;
            long long outer = 1, inner = 1;
            for (int d = 0; d < axis; d++)
                outer *= w->shape.dim[d];
            for (int d = axis + 1; d < w->shape.rank; d++)
                inner *= w->shape.dim[d];
            double lo = 0, hi = 0, rate = 1;
            if (!strcmp(w->constraint, "max_norm"))
                lo = 0, hi = w->con_max, rate = 1;
            else if (!strcmp(w->constraint, "unit_norm"))
                lo = 1, hi = 1, rate = 1;
            else
                lo = w->con_min, hi = w->con_max, rate = w->con_rate;
            out(e, "    constrain_norm(m->w.%s, %lld, %lld, %lld, %s, %s, %s);  /* %s */\n", f, outer,
                (long long)w->shape.dim[axis], inner, flt(lo), flt(hi), flt(rate), comment_text(e->p, w->constraint));
        }
        fclose(e->out);
        e->out = saved_out;
        if (n->src[1]->sgd_step && o->momentum != 0.0) {  /* the velocity came from the gradient's GEMM */
            e->need[H_ADD] = true;
            out(e, "    if (!m->frozen[%d] && m->step_in_gemm)\n        add(m->w.%s, m->w.%s, %s, %lld);  /* w += v */\n",
                w->index, f, f, slot[0], size);
            out(e, "    else if (!m->frozen[%d]) {\n", w->index);
        } else if (n->src[1]->sgd_step) {  /* taken in the gradient's GEMM when the step was one chunk */
            out(e, "    if (!m->frozen[%d] && !m->step_in_gemm) {\n", w->index);
        } else {
            out(e, "    if (!m->frozen[%d]) {\n", w->index);
        }
        for (char *line = block; line && *line;) {
            char *end = strchr(line, '\n');
            out(e, "    %.*s\n", (int)(end ? end - line : (long)strlen(line)), line);
            line = end ? end + 1 : NULL;
        }
        out(e, "    }\n");
        free(block);
    }
    out(e, "}\n\n");
}

/* ---- the whole file ---------------------------------------------------------------------- */

/* The loop of the fused activation helpers: y[i] = f(x) with x = `expr` (its
 * '@' the element's index) for i < n, in blocks of 8 that load before they
 * store, so y may alias the operands and the loop still vectorizes. */
static void put_blocked(FILE *f, const char *indent, const char *i, const char *n, const char *expr,
                        const char *forward)
{
    char block[256], tail[256];
    size_t b = 0, t = 0;
    for (const char *p = expr; *p && b < sizeof block - 16 && t < sizeof tail - 16; p++) {
        if (*p == '@') {
            b += (size_t)snprintf(block + b, sizeof block - b, "%s + k", i);
            t += (size_t)snprintf(tail + t, sizeof tail - t, "%s", i);
        } else {
            block[b++] = *p;
            tail[t++] = *p;
        }
    }
    block[b] = tail[t] = 0;
    fprintf(f, "%ssize_t %s = 0;\n", indent, i);
    fprintf(f, "%sfor (; %s + 8 <= %s; %s += 8) {\n", indent, i, n, i);
    fprintf(f, "%s    float t[8];\n%s    for (int k = 0; k < 8; k++)\n%s        t[k] = %s;\n", indent, indent, indent, block);
    fprintf(f, "%s    for (int k = 0; k < 8; k++) {\n%s        const float x = t[k];\n", indent, indent);
    fprintf(f, "%s        y[%s + k] = %s;\n%s    }\n%s}\n", indent, i, forward, indent, indent);
    fprintf(f, "%sfor (; %s < %s; %s++) {\n%s    const float x = %s;\n%s    y[%s] = %s;\n%s}\n", indent, i, n, i, indent,
            tail, indent, i, forward, indent);
}

/* Whether C expression expr reads variable v (a one-letter name). */
static bool reads_var(const char *expr, char v)
{
    for (const char *p = expr; *p; p++)
        if (*p == v && (p == expr || (!isalnum((unsigned char)p[-1]) && p[-1] != '_')) &&
            !isalnum((unsigned char)p[1]) && p[1] != '_')
            return true;
    return false;
}

/* A loop over c < nc in blocks of 8 (`for k < 8`, which vectorizes at -O2)
 * and the tail: body's lines with '@' the element's offset (c + k, or c). */
static void put_chunks(FILE *f, const char *indent, const char *body)
{
    for (int pass = 0; pass < 2; pass++) {
        const char *at = pass == 0 ? "c + k" : "c";
        fprintf(f, pass == 0 ? "%ssize_t c = 0;\n%sfor (; c + 8 <= nc; c += 8)\n%s    for (int k = 0; k < 8; k++) {\n"
                             : "%sfor (; c < nc; c++) {\n",
                indent, indent, indent);
        const char *in = pass == 0 ? "        " : "    ";
        for (const char *p = body; *p;) {
            const char *eol = strchr(p, '\n');
            size_t len = eol ? (size_t)(eol - p) : strlen(p);
            fprintf(f, "%s%s", indent, in);
            for (size_t i = 0; i < len; i++)
                if (p[i] == '@')
                    fputs(at, f);
                else
                    fputc(p[i], f);
            fputc('\n', f);
            p += len + (eol != NULL);
        }
        fprintf(f, "%s%s}\n", indent, pass == 0 ? "    " : "");
    }
}

/* The backward of f(BatchNormalization(in)) in training (BN_GRAD), for
 * activation a (linear: the BatchNormalization alone). */
static void put_bn_backward(FILE *f, const ActInfo *a, bool linear)
{
    const char *alpha = act_has_alpha((ActKind)(a - act_info)) ? ", float alpha" : "";
    bool y = reads_var(a->derivative, 'y');
    if (linear)
        fprintf(f, "/* The backward of a BatchNormalization in training, in two passes over (rows, cols):\n");
    else
        fprintf(f, "/* The backward of %s(BatchNormalization(in)) in training, in two passes over (rows, cols):\n"
                   " * dz = dy * %s, computed where it is used and never stored.\n", a->name, a->derivative);
    fprintf(f, " * With xhat = (in - mean) * inv (stats is (2, cols): the batch mean, then\n"
               " * 1 / sqrt(var + eps)), the first pass sums %s and %s * xhat per channel and gives\n"
               " * dgamma = acc_gamma * dgamma + sum(%s * xhat), dbeta = acc_beta * dbeta + sum(%s); the second\n"
               " * dx = gamma * inv * (%s - mean(%s) - xhat * mean(%s * xhat)). These are the operations\n"
               " * of the separate kernels (%snnrt_bn_backward_input, nnrt_bn_backward_gamma, bias_grad),\n"
               " * in their order, so the values are theirs bit for bit. dx, dgamma and dbeta may be\n"
               " * NULL, dx may be dy. Channels go in blocks of 64 (the per-channel sums), elements\n"
               " * in blocks of 8 that read before they write, so the loops vectorize. */\n",
            linear ? "dy" : "dz", linear ? "dy" : "dz", linear ? "dy" : "dz", linear ? "dy" : "dz",
            linear ? "dy" : "dz", linear ? "dy" : "dz", linear ? "dy" : "dz",
            linear ? "" : fmt_str("%s_backward, ", a->name));
    int pad = (int)strlen(a->name) + 25;  /* under the first parameter */
    fprintf(f, "static void %s_bn_backward(float *dx, float *dgamma, float *dbeta, const float *dy, const float *ys,\n"
               "%*sconst float *in, const float *stats, const float *gamma, size_t rows,\n"
               "%*ssize_t cols, float acc_gamma, float acc_beta%s)\n{\n",
            a->name, pad, "", pad, "", alpha);
    if (!y)
        fprintf(f, "    (void)ys;\n");
    fprintf(f, "    const float *mean = stats, *inv = stats + cols;\n"
               "    for (size_t c0 = 0; c0 < cols; c0 += 64) {\n"
               "        const size_t nc = cols - c0 < 64 ? cols - c0 : 64;\n"
               "        double s[64] = {0}, sx[64] = {0};\n"
               "        float m[64], iv[64], sb[64];\n"
               "        for (size_t c = 0; c < nc; c++) {\n"
               "            m[c] = mean[c0 + c];\n"
               "            iv[c] = inv[c0 + c];\n"
               "            sb[c] = dbeta ? dbeta[c0 + c] * acc_beta : 0.0f;\n"
               "        }\n"
               "        for (size_t r = 0; r < rows; r++) {\n"
               "            const float *dyr = dy + r * cols + c0, *inr = in + r * cols + c0;\n");
    if (y)
        fprintf(f, "            const float *yr = ys + r * cols + c0;\n");
    put_chunks(f, "            ",
               fmt_str("%sconst float dz = dyr[@] * %s;\n"
                       "const double xhat = ((double)inr[@] - m[@]) * iv[@];\n"
                       "s[@] += dz;\nsx[@] += dz * xhat;\nsb[@] += dz;",
                       y ? "const float y = yr[@];\n" : "", a->derivative));
    fprintf(f, "        }\n"
               "        for (size_t c = 0; c < nc; c++) {\n"
               "            if (dgamma)\n"
               "                dgamma[c0 + c] = (acc_gamma == 0.0f ? 0.0f : acc_gamma * dgamma[c0 + c]) + (float)sx[c];\n"
               "            if (dbeta)\n"
               "                dbeta[c0 + c] = sb[c];\n"
               "        }\n"
               "        if (!dx)\n"
               "            continue;\n"
               "        float scale[64], mean_dz[64], mean_dz_xhat[64];\n"
               "        for (size_t c = 0; c < nc; c++) {\n"
               "            scale[c] = gamma ? gamma[c0 + c] * iv[c] : iv[c];\n"
               "            mean_dz[c] = (float)(s[c] / (double)rows);\n"
               "            mean_dz_xhat[c] = (float)(sx[c] / (double)rows);\n"
               "        }\n"
               "        for (size_t r = 0; r < rows; r++) {\n"
               "            const float *dyr = dy + r * cols + c0, *inr = in + r * cols + c0;\n");
    if (y)
        fprintf(f, "            const float *yr = ys + r * cols + c0;\n");
    fprintf(f, "            float *dxr = dx + r * cols + c0;\n"
               "            size_t c = 0;\n"
               "            for (; c + 8 <= nc; c += 8) {\n"
               "                float t[8];\n"
               "                for (int k = 0; k < 8; k++) {\n");
    if (y)
        fprintf(f, "                    const float y = yr[c + k];\n");
    fprintf(f, "                    const float dz = dyr[c + k] * %s;\n"
               "                    const float xhat = (inr[c + k] - m[c + k]) * iv[c + k];\n"
               "                    t[k] = scale[c + k] * (dz - mean_dz[c + k] - xhat * mean_dz_xhat[c + k]);\n"
               "                }\n"
               "                for (int k = 0; k < 8; k++)\n"
               "                    dxr[c + k] = t[k];\n"
               "            }\n"
               "            for (; c < nc; c++) {\n",
            a->derivative);
    if (y)
        fprintf(f, "                const float y = yr[c];\n");
    fprintf(f, "                const float dz = dyr[c] * %s;\n"
               "                const float xhat = (inr[c] - m[c]) * iv[c];\n"
               "                dxr[c] = scale[c] * (dz - mean_dz[c] - xhat * mean_dz_xhat[c]);\n"
               "            }\n"
               "        }\n"
               "    }\n}\n\n",
            a->derivative);
}

static void emit_act_helpers(FILE *f, const Emitter *e)
{
    static const char *vars[] = {"x", "y"};
    for (int k = 0; k < ACT_COUNT; k++) {
        const ActInfo *a = &act_info[k];
        if (k == ACT_CUSTOM)
            continue;  /* emit_custom_helpers */
        const char *alpha = act_has_alpha((ActKind)k) ? ", float alpha" : "";
        if (e->act_forward[k]) {
            fprintf(f, "/* %s: y = %s */\n", a->name, a->forward);
            fprintf(f, "static void %s_forward(float *y, const float *in, size_t n%s)\n{\n", a->name, alpha);
            fprintf(f, "    for (size_t i = 0; i < n; i++) {\n        const float x = in[i];\n");
            fprintf(f, "        y[i] = %s;\n    }\n}\n\n", a->forward);
        }
        if (e->act_bias_forward[k]) {
            /* Blocks of 8 load before they store: the loop may run in place
             * (y == in) and still vectorizes at -O2, which a plain loop over
             * possibly aliasing pointers does not with GCC 12. */
            fprintf(f, "/* %s of x + bias, in one pass: y = %s. Each block of 8 is read\n"
                       " * before it is written, so y may be in (in place) and the loop vectorizes. */\n",
                    a->name, a->forward);
            fprintf(f, "static void %s_bias_forward(float *y, const float *in, const float *b, size_t rows, size_t cols%s)\n{\n",
                    a->name, alpha);
            fprintf(f, "    for (size_t r = 0; r < rows; r++, y += cols, in += cols) {\n");
            put_blocked(f, "        ", "c", "cols", "in[@] + b[@]", a->forward);
            fprintf(f, "    }\n}\n\n");
        }
        if (e->act_bn_forward[k]) {  /* runtime/norm.c's nnrt_bn_forward, operation for operation, then f */
            fprintf(f, "/* %s of a BatchNormalization in training, in one pass: x = (in - mean) * scale + shift\n"
                       " * with scale = gamma / sqrt(var + eps) and shift = beta per channel (stats is (2, cols):\n"
                       " * the batch mean, then 1 / sqrt(var + eps)), as nnrt_bn_forward computes it; y = %s.\n"
                       " * Each block of 8 is normalized before f is applied to it, so the affine part vectorizes\n"
                       " * whatever f calls. */\n"
                       "static void %s_bn_forward(float *out, const float *in, const float *stats, const float *gamma,\n"
                       "%*sconst float *beta, size_t rows, size_t cols%s)\n{\n"
                       "    const float *mean = stats, *inv = stats + cols;\n"
                       "    for (size_t c0 = 0; c0 < cols; c0 += 64) {\n"
                       "        const size_t nc = cols - c0 < 64 ? cols - c0 : 64;\n"
                       "        float m[64], scale[64], shift[64];\n"
                       "        for (size_t c = 0; c < nc; c++) {\n"
                       "            m[c] = mean[c0 + c];\n"
                       "            scale[c] = gamma ? gamma[c0 + c] * inv[c0 + c] : inv[c0 + c];\n"
                       "            shift[c] = beta ? beta[c0 + c] : 0.0f;\n"
                       "        }\n"
                       "        for (size_t r = 0; r < rows; r++) {\n"
                       "            const float *xr = in + r * cols + c0;\n"
                       "            float *y = out + r * cols + c0;\n",
                    a->name, a->forward, a->name, (int)strlen(a->name) + 24, "", alpha);
            put_blocked(f, "            ", "c", "nc", "(xr[@] - m[@]) * scale[@] + shift[@]", a->forward);
            fprintf(f, "        }\n    }\n}\n\n");
        }
        if (e->act_bn_backward[k])
            put_bn_backward(f, a, k == ACT_LINEAR);
        if (e->act_add_forward[k]) {  /* the bias loop, with a second tensor instead of a bias row */
            fprintf(f, "/* %s of a + b elementwise, in one pass (a residual Add and its activation):\n"
                       " * y = %s. Each block of 8 is read before it is written, so y may be a. */\n"
                       "static void %s_add_forward(float *y, const float *a, const float *b, size_t n%s)\n{\n",
                    a->name, a->forward, a->name, alpha);
            put_blocked(f, "    ", "i", "n", "a[@] + b[@]", a->forward);
            fprintf(f, "}\n\n");
        }
        if (e->act_scale_shift[k]) {  /* the bias loop above, with x * scale + shift */
            fprintf(f, "/* %s of x = in * scale + shift per channel, in one pass: y = %s. ss is (2, cols),\n"
                       " * the scales then the shifts (a BatchNormalization folded into the layer before\n"
                       " * it). Each block of 8 is read before it is written, so y may be in (in place). */\n"
                       "static void %s_scale_shift_forward(float *y, const float *in, const float *ss, size_t rows, size_t cols%s)\n"
                       "{\n"
                       "    const float *scale = ss, *shift = ss + cols;\n"
                       "    for (size_t r = 0; r < rows; r++, y += cols, in += cols) {\n",
                    a->name, a->forward, a->name, alpha);
            put_blocked(f, "        ", "c", "cols", "in[@] * scale[@] + shift[@]", a->forward);
            fprintf(f, "    }\n}\n\n");
        }
        if (e->act_backward[k]) {
            /* declare only the operands the derivative reads */
            bool uses[2] = {false, false};
            for (const char *p = a->derivative; *p; p++)
                for (int v = 0; v < 2; v++)
                    if (*p == vars[v][0] && (p == a->derivative || !isalnum((unsigned char)p[-1])) &&
                        !isalnum((unsigned char)p[1]) && p[1] != '_')
                        uses[v] = true;
            fprintf(f, "/* %s: dx = dy * %s */\n", a->name, a->derivative);
            fprintf(f, "static void %s_backward(float *dx, const float *dy, const float *xs, const float *ys, size_t n%s)\n{\n",
                    a->name, alpha);
            if (!uses[0])
                fprintf(f, "    (void)xs;\n");
            if (!uses[1])
                fprintf(f, "    (void)ys;\n");
            fprintf(f, "    for (size_t i = 0; i < n; i++) {\n");
            if (uses[0])
                fprintf(f, "        const float x = xs[i];\n");
            if (uses[1])
                fprintf(f, "        const float y = ys[i];\n");
            fprintf(f, "        dx[i] = dy[i] * %s;\n    }\n}\n\n", a->derivative);
        }
    }
}

/* The helpers of the custom functions (model-format.md §2): their math, and
 * the derivative nncc worked out, as elementwise loops. */
static void emit_custom_helpers(FILE *f, const Emitter *e)
{
    for (int i = 0; i < e->ncustoms; i++) {  /* the C hooks the program links */
        const CustomFn *c = e->customs[i];
        bool two = !strcmp(c->role, "loss") || !strcmp(c->role, "metric");
        const char *params = two ? "float y_true, float y_pred" : !strcmp(c->role, "activation") ? "float x" : "float w";
        if (c->c_function)
            fprintf(f, "float %s(%s);  /* custom %s %s, linked in */\n", c->c_function, params, c->role,
                    comment_text(e->p, c->name));
        if (c->c_gradient)
            fprintf(f, "float %s(%s);  /* its derivative, linked in */\n", c->c_gradient, params);
        if (c->c_function && i == e->ncustoms - 1)
            fprintf(f, "\n");
    }
    for (int i = 0; i < e->ncustoms; i++) {
        const CustomFn *c = e->customs[i];
        const char *n = c->name;
        if (!strcmp(c->role, "activation")) {
            fprintf(f, "/* custom activation %s: y = %s */\n", n, c->forward);
            fprintf(f, "static void custom_%s_forward(float *y, const float *in, size_t n)\n{\n", n);
            fprintf(f, "    for (size_t i = 0; i < n; i++) {\n        const float x = in[i];\n        y[i] = %s;\n    }\n}\n\n",
                    c->forward);
            fprintf(f, "/* its derivative (nncc): dx = dy * (%s) */\n", c->derivative);
            fprintf(f, "static void custom_%s_backward(float *dx, const float *dy, const float *xs, const float *ys, size_t n)\n{\n"
                       "    (void)ys;\n    for (size_t i = 0; i < n; i++) {\n        const float x = xs[i];\n"
                       "        (void)x;\n        dx[i] = dy[i] * (%s);\n    }\n}\n\n", n, c->derivative);
        } else if (!strcmp(c->role, "loss")) {
            fprintf(f, "/* custom loss %s: the mean over every element of %s (t = y_true, p = y_pred) */\n", n, c->forward);
            fprintf(f, "static float custom_%s_loss(const float *pv, const float *tv, size_t rows, size_t cols)\n{\n"
                       "    double sum = 0.0;\n    for (size_t i = 0; i < rows * cols; i++) {\n"
                       "        const float t = tv[i], p = pv[i];\n        (void)t, (void)p;\n        sum += %s;\n    }\n"
                       "    return (float)(sum / (double)(rows * cols));\n}\n\n", n, c->forward);
            fprintf(f, "/* its derivative in p (nncc): %s */\n", c->derivative);
            fprintf(f, "static void custom_%s_loss_grad(float *dp, const float *pv, const float *tv, size_t rows, size_t cols, float scale)\n{\n"
                       "    for (size_t i = 0; i < rows * cols; i++) {\n        const float t = tv[i], p = pv[i];\n"
                       "        (void)t, (void)p;\n        dp[i] = scale / (float)cols * (%s);\n    }\n}\n\n", n, c->derivative);
        } else if (!strcmp(c->role, "metric") && c->time_indexed) {
            fprintf(f, "/* custom metric %s: the %s of %s at time step %d of (batch, steps, cols) values */\n", n,
                    c->mean ? "mean" : "sum", c->forward, c->time_step);
            fprintf(f, "static float custom_%s_metric(const float *pv, const float *tv, size_t batch, size_t steps, size_t cols)\n{\n"
                       "    const size_t k = %s;\n    double sum = 0.0;\n"
                       "    for (size_t b = 0; b < batch; b++)\n        for (size_t c = 0; c < cols; c++) {\n"
                       "            const size_t i = (b * steps + k) * cols + c;\n"
                       "            const float t = tv[i], p = pv[i];\n            (void)t, (void)p;\n            sum += %s;\n        }\n"
                       "    return (float)(sum / (double)(%s));\n}\n\n",
                    n, c->time_step < 0 ? fmt_str("steps - %d", -c->time_step) : fmt_str("%d", c->time_step), c->forward,
                    c->mean ? "batch * cols" : "batch");
        } else if (!strcmp(c->role, "metric")) {
            fprintf(f, "/* custom metric %s: the %s of %s per sample */\n", n, c->mean ? "mean" : "sum", c->forward);
            fprintf(f, "static float custom_%s_metric(const float *pv, const float *tv, size_t rows, size_t cols)\n{\n"
                       "    double sum = 0.0;\n    for (size_t i = 0; i < rows * cols; i++) {\n"
                       "        const float t = tv[i], p = pv[i];\n        (void)t, (void)p;\n        sum += %s;\n    }\n"
                       "    return (float)(sum / (double)(%s));\n}\n\n", n, c->forward, c->mean ? "rows * cols" : "rows");
        } else if (!strcmp(c->role, "regularizer")) {
            fprintf(f, "/* custom regularizer %s: the %s of %s over the weight */\n", n, c->mean ? "mean" : "sum", c->forward);
            fprintf(f, "static float custom_%s_penalty(const float *wv, size_t n)\n{\n    double sum = 0.0;\n"
                       "    for (size_t i = 0; i < n; i++) {\n        const float w = wv[i];\n        sum += %s;\n    }\n"
                       "    return (float)(sum%s);\n}\n\n", n, c->forward, c->mean ? " / (double)n" : "");
            fprintf(f, "/* dw = beta dw + scale d/dw (nncc: %s) */\n", c->derivative);
            fprintf(f, "static void custom_%s_penalty_backward(float *dw, const float *wv, size_t n, float scale, float beta)\n{\n"
                       "    for (size_t i = 0; i < n; i++) {\n        const float w = wv[i];\n"
                       "        dw[i] = beta * dw[i] + scale * (%s)%s;\n    }\n}\n\n", n, c->derivative,
                    c->mean ? " / (float)n" : "");
        } else if (!strcmp(c->role, "constraint")) {
            fprintf(f, "/* custom constraint %s: w = %s after each update */\n", n, c->forward);
            fprintf(f, "static void custom_%s_constrain(float *wv, size_t n)\n{\n    for (size_t i = 0; i < n; i++) {\n"
                       "        const float w = wv[i];\n        wv[i] = %s;\n    }\n}\n\n", n, c->forward);
        }
    }
}

static bool field_taken(const char *name, const void *fields)
{
    return strmap_get(fields, name) != NULL;
}

/* Weights struct field names: layer_weight, derived and made unique (cquote.c). */
static const char **weight_fields(const Program *p, Arena *a)
{
    const WeightSet *ws = p->weights;
    const char **f = arena_alloc(a, (size_t)(ws->n + 1) * sizeof *f);
    StrMap taken = {0};
    for (int i = 0; i < ws->n; i++) {
        f[i] = c_name_unique(a, arena_printf(a, "%s_%s", ws->items[i]->layer, ws->items[i]->name), field_taken,
                             &taken);
        strmap_put(a, &taken, f[i], (void *)f[i]);
    }
    return f;
}

static size_t arena_floats(const Program *p)
{
    size_t a = p->infer->arena_floats;
    if (p->train && p->train->arena_floats > a)
        a = p->train->arena_floats;
    return a;
}

/* Floats per sample of an input, output or target as C: on the variable
 * time axis, T (the chunk's argument) steps of the per-step size. */
static const char *io_floats(const Shape *s, bool vtime)
{
    int64_t size = shape_size(s);
    if (!vtime)
        return fmt_str("%lld", (long long)size);
    int64_t k = size / s->dim[0];
    return k == 1 ? "T" : fmt_str("T * %lld", (long long)k);
}

/* The timesteps parameter of a model with a variable time axis, after n. */
static const char *timesteps_param(const Program *p)
{
    return p->max_timesteps ? " size_t timesteps," : "";
}

void emit_header(FILE *f, const Program *p)
{
    const char *P = p->name, *TS = timesteps_param(p);
    char *guard = arena_printf(p->infer->arena, "%s_H", P);
    for (char *c = guard; *c; c++)
        *c = (char)toupper((unsigned char)*c);
    fprintf(f, "/* %s.h — generated by nncc %s from %s. Do not edit.\n", P, NNCC_VERSION, comment_text(p, p->source));
    fprintf(f, " * The API of nncc's spec/interfaces.md; link %s.c with libnncc_rt. */\n", P);
    fprintf(f, "#ifndef %s\n#define %s\n\n#include <stddef.h>\n#include <stdint.h>\n\n", guard, guard);
    fprintf(f, "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n");
    fprintf(f, "#define %s_MAX_BATCH   %zu  /* compiled batch capacity; larger n runs in chunks */\n", P, p->max_batch);
    fprintf(f, "#define %s_NUM_INPUTS  %d\n#define %s_NUM_OUTPUTS %d\n", P, p->ninputs, P, p->noutputs);
    fprintf(f, "#define %s_NUM_METRICS %d  /* values P_evaluate writes to metrics[] */\n", P, p->nmetrics);
    if (p->max_timesteps)
        fprintf(f, "#define %s_MAX_TIMESTEPS %lld  /* the time axis's length is the timesteps argument, up to this */\n",
                P, (long long)p->max_timesteps);
    for (int i = 0; i < p->ninputs; i++)
        fprintf(f, "#define %s_INPUT%d_SIZE  %lld  /* %s %s%s */\n", P, i, (long long)shape_size(&p->inputs[i].shape),
                comment_text(p, p->inputs[i].name), shape_str(p->infer->arena, &p->inputs[i].shape, true),
                p->inputs[i].vtime ? " at MAX_TIMESTEPS; timesteps / MAX_TIMESTEPS of it per call" : "");
    for (int i = 0; i < p->noutputs; i++)
        fprintf(f, "#define %s_OUTPUT%d_SIZE %lld  /* %s %s%s */\n", P, i, (long long)shape_size(&p->outputs[i].shape),
                comment_text(p, p->outputs[i].name), shape_str(p->infer->arena, &p->outputs[i].shape, true),
                p->outputs[i].vtime ? " at MAX_TIMESTEPS; timesteps / MAX_TIMESTEPS of it per call" : "");
    if (graph_has(p->infer, OP_LOSS))
        for (int i = 0; i < p->noutputs; i++)
            fprintf(f, "#define %s_TARGET%d_SIZE %lld  /* per sample: %s */\n", P, i, (long long)p->target_size[i],
                    p->target_sparse[i] ? "one int32 class label" : "floats");
    fprintf(f, "#define %s_NUM_WEIGHTS %zu  /* floats in the weight block, Keras order */\n", P, p->weights->total);
    fprintf(f, "#define %s_ARENA_BYTES %zu  /* planned activation memory */\n\n", P, arena_floats(p) * sizeof(float));
    fprintf(f, "typedef struct %s %s;  /* weights, optimizer state and arena */\n\n", P, P);
    fprintf(f, "%s *%s_new(uint64_t seed);  /* weights from the model's initializers; NULL if out of memory */\n", P, P);
    fprintf(f, "void %s_free(%s *m);\n", P, P);
    fprintf(f, "int  %s_load(%s *m, const char *h5_path);        /* Keras-layout weights */\n", P, P);
    fprintf(f, "int  %s_save(const %s *m, const char *h5_path);  /* atomic: temp file + rename */\n", P, P);
    fprintf(f, "int  %s_predict(%s *m, size_t n,%s const float *const inputs[], float *const outputs[]);\n", P, P, TS);
    if (!p->inference_only) {
        fprintf(f, "int  %s_train_step(%s *m, size_t n,%s const float *const inputs[], const void *const targets[],\n"
                   "                   float *loss);  /* one optimizer step over all n samples */\n", P, P, TS);
        fprintf(f, "/* nncc extensions: the step's metrics (running in training mode), gradients without an update */\n");
        fprintf(f, "int  %s_train_step_metrics(%s *m, size_t n,%s const float *const inputs[],\n"
                   "                           const void *const targets[], float *loss, float *metrics);\n", P, P, TS);
        fprintf(f, "int  %s_loss_grad(%s *m, size_t n,%s const float *const inputs[], const void *const targets[],\n"
                   "                  float *loss);\n", P, P, TS);
        fprintf(f, "float *%s_grads(%s *m);  /* %s_NUM_WEIGHTS floats, the layout of %s_weights */\n", P, P, P, P);
        fprintf(f, "/* freeze (trainable 0) or unfreeze a layer's weights between steps; a new optimizer state */\n");
        fprintf(f, "int  %s_set_trainable(%s *m, const char *layer, int trainable);\n", P, P);
        fprintf(f, "void %s_reset_optimizer(%s *m);\n", P, P);
    }
    fprintf(f, "int  %s_evaluate(%s *m, size_t n,%s const float *const inputs[], const void *const targets[],\n"
               "                 float *loss, float *metrics);\n", P, P, TS);
    fprintf(f, "const char *%s_last_error(const %s *m);\n", P, P);
    fprintf(f, "float *%s_weights(%s *m);  /* the weight block, Keras order */\n", P, P);
    fprintf(f, "const struct NnrtModel *%s_model(void);  /* for the nncc driver (nnrt.h) */\n", P);
    fprintf(f, "\n#ifdef __cplusplus\n}\n#endif\n\n#endif /* %s */\n", guard);
}

static void emit_tables(FILE *f, const Program *p, const char **field)
{
    const WeightSet *ws = p->weights;
    Arena *a = p->infer->arena;
    fprintf(f, "/* The weights, Keras order: HDF5 name, shape, offset in the weight block. */\n");
    fprintf(f, "static const NnrtWeightInfo weight_info[%d] = {\n", ws->n ? ws->n : 1);
    for (int i = 0; i < ws->n; i++) {
        const Weight *w = ws->items[i];
        fprintf(f, "    {%s, %s, %d, {", literal(p, w->layer), literal(p, arena_printf(a, "%s/%s:0", w->layer, w->name)),
                w->shape.rank);
        for (int d = 0; d < w->shape.rank; d++)
            fprintf(f, "%s%lld", d ? ", " : "", (long long)w->shape.dim[d]);
        fprintf(f, "}, %zu, %d},\n", w->offset, w->trainable);
    }
    fprintf(f, "};\n\n");
    fprintf(f, "/* Keras initializers of the weights above */\n");
    fprintf(f, "static const NnrtInit weight_init[%d] = {\n", ws->n ? ws->n : 1);
    static const char *kinds[] = {"NNRT_INIT_CONSTANT", "NNRT_INIT_RANDOM_NORMAL", "NNRT_INIT_RANDOM_UNIFORM",
                                  "NNRT_INIT_TRUNCATED_NORMAL", "NNRT_INIT_VARIANCE_SCALING", "NNRT_INIT_ORTHOGONAL"};
    static const char *modes[] = {"NNRT_FAN_IN", "NNRT_FAN_OUT", "NNRT_FAN_AVG"};
    static const char *dists[] = {"NNRT_DIST_TRUNCATED_NORMAL", "NNRT_DIST_UNTRUNCATED_NORMAL", "NNRT_DIST_UNIFORM"};
    for (int i = 0; i < ws->n; i++) {
        const InitSpec *s = &ws->items[i]->init;
        fprintf(f, "    {%s, %s, %s, %s, %s},  /* %s: %s */\n", kinds[s->kind], dbl(s->a), dbl(s->b), modes[s->mode],
                dists[s->distribution], field[i], comment_text(p, s->name));
    }
    fprintf(f, "};\n\n");
    fprintf(f, "static const char *const layer_names[%d] = {", p->nlayers);
    for (int i = 0; i < p->nlayers; i++) {
        fprintf(f, "%s", i ? ", " : "");
        fputs(literal(p, p->layer_names[i]), f);
    }
    fprintf(f, "};\n\n");
}

void emit_source(FILE *f, const Program *p, const char *header_name)
{
    const char *P = p->name;
    const WeightSet *ws = p->weights;
    Arena *a = p->infer->arena;
    bool train = !p->inference_only;
    Emitter e = {.p = p};
    e.field = weight_fields(p, a);
    e.grad_written = arena_alloc(a, (size_t)(ws->n + 1) * sizeof *e.grad_written);

    /* bodies first, into memory, so the helpers they use can be written above them */
    char *body = NULL, *pre = NULL;
    size_t body_len = 0, pre_len = 0;
    e.out = open_memstream(&body, &body_len);
    e.pre = open_memstream(&pre, &pre_len);
    assert(e.out && e.pre);
    e.g = p->infer;
    emit_infer_chunk(&e);
    if (train) {
        e.g = p->train;
        emit_train_chunk(&e);
        emit_apply_updates(&e);
    }
    fclose(e.out);
    fclose(e.pre);

    const char *slot_names[3] = {NULL, NULL, NULL};
    size_t slots = train ? (size_t)optimizer_slots(&p->optimizer, slot_names) : 0;
    size_t floats_w = ws->total, floats_g = train ? ws->total : 0, floats_s = slots * ws->trainable_total,
           floats_a = arena_floats(p);

    fprintf(f, "/* %s.c — generated by nncc %s from %s. Do not edit.\n *\n", P, NNCC_VERSION,
            comment_text(p, p->source));
    fprintf(f, " * %d input(s), %d output(s), %zu weights (%zu trainable) in %d tensors.\n", p->ninputs, p->noutputs,
            ws->total, ws->trainable_total, ws->n);
    fprintf(f, " * Memory, one allocation: weights %zu + gradients %zu + optimizer state %zu + arena %zu floats\n",
            floats_w, floats_g, floats_s, floats_a);
    fprintf(f, " * (arena planned for %zu samples: inference %zu floats", p->max_batch, p->infer->arena_floats);
    if (train)
        fprintf(f, ", training %zu floats, unplanned sum %zu", p->train->arena_floats, p->train->naive_floats);
    fprintf(f, ").\n */\n");
    assert(c_header_name_ok(header_name));  /* the caller checked it (--header, -o) */
    fprintf(f, "#include \"%s\"\n\n#include <math.h>\n#include <stdio.h>\n#include <stdlib.h>\n#include <string.h>\n\n",
            header_name);
    fprintf(f, "#include \"nnrt.h\"\n\n");
    /* A helper's scalar tail after its blocks of 8 never runs when the width
     * is a multiple of 8; GCC, vectorizing it anyway, warns that such a tail
     * would overflow (a false positive of -Waggressive-loop-optimizations). */
    fprintf(f, "#if defined(__GNUC__) && !defined(__clang__)  /* GCC warns of tails that never run (widths of 8k) */\n"
               "#pragma GCC diagnostic ignored \"-Waggressive-loop-optimizations\"\n#endif\n\n");
    fprintf(f, "/* Named pointers into a block of %zu floats, Keras order. */\ntypedef struct {\n", ws->total);
    for (int i = 0; i < ws->n; i++)
        fprintf(f, "    float *%s;  /* %s/%s:0 %s */\n", e.field[i], comment_text(p, ws->items[i]->layer),
                comment_text(p, ws->items[i]->name),
                shape_str(a, &ws->items[i]->shape, false));
    if (ws->n == 0)
        fprintf(f, "    float *none;  /* the model has no weights */\n");
    fprintf(f, "} Weights;\n\n");
    fprintf(f, "#define WEIGHT_FLOATS %zu\n#define GRAD_FLOATS %zu\n#define SLOT_FLOATS %zu  /* per slot */\n"
               "#define NUM_SLOTS %zu\n#define STATE_EXTRA %d  /* Nadam's momentum_cache */\n"
               "#define ARENA_FLOATS %zu\n#define NUM_TENSORS %d\n\n",
            floats_w, floats_g, ws->trainable_total, slots, train && p->optimizer.kind == OPT_NADAM, floats_a, ws->n);
    fprintf(f, "struct %s {\n", P);
    fprintf(f, "    float *block;       /* the one allocation below, 64-byte aligned */\n");
    fprintf(f, "    Weights w;          /* weights */\n");
    if (train) {
        fprintf(f, "    Weights g;          /* d(loss)/d(weights), same layout */\n");
        fprintf(f, "    float *slot[3];     /* optimizer state per trainable float: %zu slot(s)%s%s%s%s%s%s */\n", slots,
                slots ? " (" : "", slots > 0 ? slot_names[0] : "", slots > 1 ? ", " : "", slots > 1 ? slot_names[1] : "",
                slots > 2 ? ", vhat/mg" : "", slots ? ")" : "");
        fprintf(f, "    int64_t iterations; /* optimizer steps taken (Keras `iterations`) */\n");
        fprintf(f, "    double lr_scale;    /* the learning rate's factor (ReduceLROnPlateau) */\n");
        fprintf(f, "    double m_schedule;  /* Nadam's running momentum-schedule product */\n");
        if (sgd_in_gemm(p->train))
            fprintf(f, "    int step_in_gemm;   /* this train step takes SGD's steps (or velocities) in the gradient GEMMs */\n"
                       "    float step_lr;      /* at that learning rate */\n");
    }
    fprintf(f, "    float *arena;       /* %zu floats: every activation and gradient buffer, planned */\n", floats_a);
    if (p->max_timesteps)
        fprintf(f, "    int timesteps;      /* the sequence length of the current call, 1..%lld */\n",
                (long long)p->max_timesteps);
    fprintf(f, "    uint64_t seed;\n");
    if (train)
        fprintf(f, "    unsigned char frozen[NUM_TENSORS + 1];  /* P_set_trainable: 1 skips the weight's update */\n");
    fprintf(f, "    char error[512];    /* P_last_error */\n};\n\n");
    emit_tables(f, p, e.field);
    for (int h = 0; h < H_COUNT; h++)
        if (e.need[h])
            fprintf(f, "%s\n", helper_code[h]);
    emit_act_helpers(f, &e);
    emit_custom_helpers(f, &e);
    fwrite(pre, 1, pre_len, f);
    free(pre);
    fwrite(body, 1, body_len, f);
    free(body);

    /* ---- the API ---- */
    fprintf(f, "/* ---- the API of %s.h ---- */\n\n", P);
    fprintf(f, "static void point(Weights *v, float *base)\n{\n");
    if (ws->n == 0)
        fprintf(f, "    v->none = base;\n");
    for (int i = 0; i < ws->n; i++)
        fprintf(f, "    v->%s = base + %zu;\n", e.field[i], ws->items[i]->offset);
    fprintf(f, "}\n\n");
    fprintf(f, "%s *%s_new(uint64_t seed)\n{\n", P, P);
    fprintf(f, "    struct %s *m = calloc(1, sizeof *m);\n", P);
    fprintf(f, "    size_t floats = WEIGHT_FLOATS + GRAD_FLOATS + NUM_SLOTS * SLOT_FLOATS + STATE_EXTRA + ARENA_FLOATS;\n");
    fprintf(f, "    size_t bytes = (floats * sizeof(float) + 63) / 64 * 64;\n");
    fprintf(f, "    if (!m || !(m->block = aligned_alloc(64, bytes ? bytes : 64)))\n        goto fail;\n");
    fprintf(f, "    memset(m->block, 0, bytes);\n    point(&m->w, m->block);\n");
    if (train) {
        fprintf(f, "    point(&m->g, m->block + WEIGHT_FLOATS);\n");
        fprintf(f, "    m->slot[0] = m->block + WEIGHT_FLOATS + GRAD_FLOATS;\n");
        fprintf(f, "    m->slot[1] = m->slot[0] + SLOT_FLOATS;\n");
        fprintf(f, "    m->slot[2] = m->slot[1] + SLOT_FLOATS;\n");
        fprintf(f, "    m->lr_scale = 1.0;\n    m->m_schedule = 1.0;\n");
        if (p->optimizer.kind == OPT_ADAGRAD)
            fprintf(f, "    for (size_t i = 0; i < SLOT_FLOATS; i++)  /* Adagrad's initial accumulator */\n"
                       "        m->slot[0][i] = %s;\n", flt(p->optimizer.initial_accumulator_value));
    }
    fprintf(f, "    m->arena = m->block + WEIGHT_FLOATS + GRAD_FLOATS + NUM_SLOTS * SLOT_FLOATS + STATE_EXTRA;\n");
    fprintf(f, "    m->seed = seed;\n");
    if (p->max_timesteps)
        fprintf(f, "    m->timesteps = %lld;\n", (long long)p->max_timesteps);
    fprintf(f, "    NnrtRng rng;\n    nnrt_rng_seed(&rng, seed);\n");
    fprintf(f, "    for (int i = 0; i < NUM_TENSORS; i++)\n");
    fprintf(f, "        if (nnrt_init_fill(m->block + weight_info[i].offset, weight_info[i].rank, weight_info[i].shape,\n"
               "                           &weight_init[i], &rng))\n            goto fail;\n");
    /* the compiler sized each recurrent tape and scratch by runtime/rnn.c's layout: check it agrees */
    for (int i = 0; i < p->infer->nnodes; i++) {
        const Node *n = p->infer->nodes[i];
        if (n->op != OP_RNN)
            continue;
        static const char *kinds[] = {"NNRT_SIMPLE_RNN", "NNRT_LSTM", "NNRT_GRU"};
        fprintf(f, "    if (nnrt_rnn_tape_floats(&(NnrtRnn){%s, %lld, %lld, %d, 0, 0, 0, %d}) != %lld ||\n"
                   "        nnrt_rnn_workspace_floats(&(NnrtRnn){%s, %lld, %lld, %d, 0, 0, 0, %d}, %zu) > %zu) {\n"
                   "        fprintf(stderr, \"%%s: internal error: recurrent layer %%s does not match libnncc_rt\\n\", \"%s\", %s);\n"
                   "        goto fail;\n    }\n",
                kinds[n->rnn.kind], (long long)n->src[0]->shape.dim[0], (long long)n->src[0]->shape.dim[1],
                n->rnn.units, n->rnn.reset_after, (long long)shape_size(&n->shape), kinds[n->rnn.kind],
                (long long)n->src[0]->shape.dim[0], (long long)n->src[0]->shape.dim[1], n->rnn.units,
                n->rnn.reset_after, p->max_batch, n->workspace, P, literal(p, n->layer));
    }
    for (int i = 0; i < ws->n; i++)
        if (ws->items[i]->forget_bias_units)
            fprintf(f, "    for (size_t j = %d; j < %d; j++)  /* LSTM unit_forget_bias */\n        m->w.%s[j] = 1.0f;\n",
                    ws->items[i]->forget_bias_units, 2 * ws->items[i]->forget_bias_units, e.field[i]);
    fprintf(f, "    return m;\nfail:\n    %s_free(m);\n    return NULL;\n}\n\n", P);
    fprintf(f, "void %s_free(%s *m)\n{\n    if (m) {\n        free(m->block);\n        free(m);\n    }\n}\n\n", P, P);
    fprintf(f, "const char *%s_last_error(const %s *m)\n{\n    return m ? m->error : \"the model is NULL\";\n}\n\n", P, P);
    fprintf(f, "float *%s_weights(%s *m)\n{\n    return m ? m->block : NULL;\n}\n\n", P, P);
    if (train)
        fprintf(f, "float *%s_grads(%s *m)\n{\n    return m ? m->block + WEIGHT_FLOATS : NULL;\n}\n\n", P, P);
    if (train) {
        /* the optimizer state as tf.keras saves it: "Adam/dense/kernel/m:0" per slot and weight */
        int nslot_tensors = 0;
        fprintf(f, "/* The optimizer state, tf.keras names: offsets into the state block m->slot[0]. */\n");
        fprintf(f, "static const NnrtWeightInfo opt_info[%d] = {\n", (int)(slots * (size_t)ws->n) + 2);
        if (p->optimizer.kind == OPT_NADAM) {  /* tf.keras <= 2.10 keeps the schedule product first */
            fprintf(f, "    {\"\", \"Nadam/momentum_cache:0\", 0, {0}, NUM_SLOTS * SLOT_FLOATS, 1},\n");
            nslot_tensors++;
        }
        for (size_t k = 0; k < slots; k++)
            for (int i = 0; i < ws->n; i++) {
                const Weight *w = ws->items[i];
                if (!w->trainable)
                    continue;
                fprintf(f, "    {%s, %s, %d, {", literal(p, w->layer),
                        literal(p, arena_printf(a, "%s/%s/%s/%s:0", optimizer_info[p->optimizer.kind].name, w->layer,
                                                w->name, slot_names[k])),
                        w->shape.rank);
                for (int d = 0; d < w->shape.rank; d++)
                    fprintf(f, "%s%lld", d ? ", " : "", (long long)w->shape.dim[d]);
                fprintf(f, "}, %zu, 1},\n", k * ws->trainable_total + w->opt_offset);
                nslot_tensors++;
            }
        fprintf(f, "    {\"\", \"\", 0, {0}, 0, 0},  /* (keeps the array non-empty) */\n};\n#define NUM_OPT_TENSORS %d\n\n",
                nslot_tensors);
    }
    fprintf(f, "int %s_load(%s *m, const char *h5_path)\n{\n", P, P);
    fprintf(f, "    if (!m || !h5_path)\n        return NNRT_EINVAL;\n");
    fprintf(f, "    int rc = nnrt_h5_load(h5_path, weight_info, NUM_TENSORS, m->block, 1, NULL, m->error, sizeof m->error);\n");
    if (train) {
        fprintf(f, "    if (rc)\n        return rc;\n");
        fprintf(f, "    /* the optimizer state saved with the weights, when it is ours: a resumed run continues exactly */\n");
        fprintf(f, "    char why[256];\n");
        fprintf(f, "    NnrtOptimizerState opt = {\"%s\", 0, opt_info, NUM_OPT_TENSORS, m->slot[0]};\n",
                optimizer_info[p->optimizer.kind].name);
        fprintf(f, "    if (nnrt_h5_load_optimizer(h5_path, &opt, why, sizeof why) == 1) {\n");
        fprintf(f, "        m->iterations = opt.iterations;\n");
        if (p->optimizer.kind == OPT_NADAM)
            fprintf(f, "        m->m_schedule = 1.0;\n        for (int64_t t = 1; t <= m->iterations; t++)\n"
                       "            m->m_schedule *= (double)%s * (1.0 - 0.5 * pow(0.96, 0.004 * (double)t));\n",
                    flt(p->optimizer.beta_1));
        fprintf(f, "    }\n");
    }
    fprintf(f, "    return rc;\n}\n\n");
    if (p->model_config) {  /* the architecture, as tf.keras's model.save writes it */
        fprintf(f, "/* The model as Keras's model_config JSON (compiler/keras_json.c). */\nstatic const char model_config[] =\n");
        char piece[97];
        for (const char *s = p->model_config; *s;) {  /* pieces of 96 characters, one per line */
            size_t n = strnlen(s, 96);  /* not strlen: the JSON of a big model is megabytes */
            memcpy(piece, s, n);
            piece[n] = 0;
            fputs("    ", f);
            fputs(literal(p, piece), f);
            fputc('\n', f);
            s += n;
        }
        fprintf(f, "    ;\n\n");
    }
    fprintf(f, "int %s_save(const %s *m, const char *h5_path)\n{\n", P, P);
    fprintf(f, "    if (!m || !h5_path)\n        return NNRT_EINVAL;\n");
    if (train && p->optimizer.kind == OPT_NADAM)
        fprintf(f, "    m->slot[0][NUM_SLOTS * SLOT_FLOATS] = (float)m->m_schedule;  /* Nadam/momentum_cache:0 */\n");
    if (train)
        fprintf(f, "    NnrtOptimizerState opt = {\"%s\", m->iterations, opt_info, NUM_OPT_TENSORS, m->slot[0]};\n",
                optimizer_info[p->optimizer.kind].name);
    fprintf(f, "    return nnrt_h5_save(h5_path, layer_names, %d, weight_info, NUM_TENSORS, m->block, %s, %s,\n"
               "                        ((struct %s *)m)->error, sizeof m->error);\n}\n\n", p->nlayers,
            p->model_config ? "model_config" : "NULL", train ? "&opt" : "NULL", P);

    /* argument checks and chunk slicing */
    const char *TS = timesteps_param(p), *TA = p->max_timesteps ? " timesteps," : "";
    fprintf(f, "/* Reject what the API contract rejects, before anything changes%s. */\n",
            p->max_timesteps ? "; then take this call's timesteps" : "");
    fprintf(f, "static int check_args(%s *m, const char *fn, size_t n,%s const float *const in[], const void *const tg[],\n"
               "                      float *const out[], int need_tg, int need_out)\n{\n", P, TS);
    fprintf(f, "    if (!m)\n        return NNRT_EINVAL;\n");
    fprintf(f, "    if (n == 0) {\n        snprintf(m->error, sizeof m->error, \"%%s: n must be at least 1\", fn);\n"
               "        return NNRT_EINVAL;\n    }\n");
    if (p->max_timesteps)
        fprintf(f, "    if (timesteps < 1 || timesteps > %lld) {\n"
                   "        snprintf(m->error, sizeof m->error, \"%%s: timesteps must be 1 to %lld (%s_MAX_TIMESTEPS), not %%zu\",\n"
                   "                 fn, timesteps);\n        return NNRT_EINVAL;\n    }\n",
                (long long)p->max_timesteps, (long long)p->max_timesteps, P);
    fprintf(f, "    if (!in%s) {\n", "");
    fprintf(f, "        snprintf(m->error, sizeof m->error, \"%%s: inputs is NULL\", fn);\n        return NNRT_EINVAL;\n    }\n");
    fprintf(f, "    for (int i = 0; i < %d; i++)\n        if (!in[i]) {\n"
               "            snprintf(m->error, sizeof m->error, \"%%s: inputs[%%d] is NULL\", fn, i);\n"
               "            return NNRT_EINVAL;\n        }\n", p->ninputs);
    fprintf(f, "    if (need_tg && !tg) {\n        snprintf(m->error, sizeof m->error, \"%%s: targets is NULL\", fn);\n"
               "        return NNRT_EINVAL;\n    }\n");
    fprintf(f, "    for (int i = 0; need_tg && i < %d; i++)\n        if (!tg[i]) {\n"
               "            snprintf(m->error, sizeof m->error, \"%%s: targets[%%d] is NULL\", fn, i);\n"
               "            return NNRT_EINVAL;\n        }\n", p->noutputs);
    fprintf(f, "    if (need_out && !out) {\n        snprintf(m->error, sizeof m->error, \"%%s: outputs is NULL\", fn);\n"
               "        return NNRT_EINVAL;\n    }\n");
    fprintf(f, "    for (int i = 0; need_out && i < %d; i++)\n        if (!out[i]) {\n"
               "            snprintf(m->error, sizeof m->error, \"%%s: outputs[%%d] is NULL\", fn, i);\n"
               "            return NNRT_EINVAL;\n        }\n", p->noutputs);
    if (p->max_timesteps)
        fprintf(f, "    m->timesteps = (int)timesteps;\n");
    fprintf(f, "    m->error[0] = 0;\n    return 0;\n}\n\n");

    const char *TP = p->max_timesteps ? ", size_t T" : "", *TM = p->max_timesteps ? ", (size_t)m->timesteps" : "";
    fprintf(f, "/* Samples [start, start + B) of the caller's arrays%s. */\n", p->max_timesteps ? ", T steps each" : "");
    fprintf(f, "static void slice_inputs(const float *dst[], const float *const in[], size_t start%s)\n{\n", TP);
    for (int i = 0; i < p->ninputs; i++)
        fprintf(f, "    dst[%d] = in[%d] + start * %s;\n", i, i, io_floats(&p->inputs[i].shape, p->inputs[i].vtime));
    fprintf(f, "}\n\n");
    bool has_loss = graph_has(p->infer, OP_LOSS);
    if (has_loss) {
        fprintf(f, "static void slice_targets(const void *dst[], const void *const tg[], size_t start%s)\n{\n", TP);
        bool timed_target = false;
        for (int i = 0; i < p->noutputs; i++)
            timed_target |= p->outputs[i].vtime;
        if (p->max_timesteps && !timed_target)
            fprintf(f, "    (void)T;  /* every target has a fixed length */\n");
        for (int i = 0; i < p->noutputs; i++) {
            Shape t = {1, {p->target_size[i]}};
            if (p->outputs[i].vtime)
                t = (Shape){2, {p->max_timesteps, p->target_size[i] / p->max_timesteps}};
            fprintf(f, "    dst[%d] = (const %s *)tg[%d] + start * %s;\n", i, p->target_sparse[i] ? "int32_t" : "float",
                    i, io_floats(&t, p->outputs[i].vtime));
        }
        fprintf(f, "}\n\n");
    }
    fprintf(f, "int %s_predict(%s *m, size_t n,%s const float *const inputs[], float *const outputs[])\n{\n", P, P, TS);
    fprintf(f, "    int rc = check_args(m, \"%s_predict\", n,%s inputs, NULL, outputs, 0, 1);\n", P, TA);
    fprintf(f, "    if (rc)\n        return rc;\n");
    bool timed_output = false;
    for (int i = 0; i < p->noutputs; i++)
        timed_output |= p->outputs[i].vtime;
    if (timed_output)
        fprintf(f, "    const size_t T = timesteps;\n");
    fprintf(f, "    for (size_t start = 0; start < n; start += %zu) {\n", p->max_batch);
    fprintf(f, "        int B = (int)(n - start < %zu ? n - start : %zu);\n", p->max_batch, p->max_batch);
    fprintf(f, "        const float *in[%d];\n        float *out[%d];\n", p->ninputs, p->noutputs);
    fprintf(f, "        slice_inputs(in, inputs, start%s);\n", TM);
    for (int i = 0; i < p->noutputs; i++)
        fprintf(f, "        out[%d] = outputs[%d] + start * %s;\n", i, i,
                io_floats(&p->outputs[i].shape, p->outputs[i].vtime));
    fprintf(f, "        infer_chunk(m, B, in, out, NULL, NULL);\n    }\n    return 0;\n}\n\n");

    fprintf(f, "int %s_evaluate(%s *m, size_t n,%s const float *const inputs[], const void *const targets[],\n"
               "                float *loss, float *metrics)\n{\n", P, P, TS);
    if (!has_loss) {
        fprintf(f, "    (void)n,%s (void)inputs, (void)targets, (void)loss, (void)metrics;\n",
                p->max_timesteps ? " (void)timesteps," : "");
        fprintf(f, "    if (!m)\n        return NNRT_EINVAL;\n");
        fprintf(f, "    snprintf(m->error, sizeof m->error, \"%s_evaluate: the model has no loss (no compile section)\");\n", P);
        fprintf(f, "    return NNRT_EINVAL;\n}\n\n");
    } else {
        fprintf(f, "    int rc = check_args(m, \"%s_evaluate\", n,%s inputs, targets, NULL, 1, 0);\n", P, TA);
        fprintf(f, "    if (rc)\n        return rc;\n");
        fprintf(f, "    double total[1 + %d] = {0};\n", p->nmetrics);
        fprintf(f, "    for (size_t start = 0; start < n; start += %zu) {\n", p->max_batch);
        fprintf(f, "        int B = (int)(n - start < %zu ? n - start : %zu);\n", p->max_batch, p->max_batch);
        fprintf(f, "        const float *in[%d];\n        const void *tg[%d];\n        float res[1 + %d];\n", p->ninputs,
                p->noutputs, p->nmetrics);
        fprintf(f, "        slice_inputs(in, inputs, start%s);\n        slice_targets(tg, targets, start%s);\n", TM, TM);
        fprintf(f, "        infer_chunk(m, B, in, NULL, tg, res);\n");
        fprintf(f, "        for (int i = 0; i < 1 + %d; i++)\n            total[i] += (double)res[i] * B / (double)n;\n    }\n",
                p->nmetrics);
        fprintf(f, "    if (loss)\n        *loss = (float)total[0];\n");
        fprintf(f, "    for (int i = 0; metrics && i < %d; i++)\n        metrics[i] = (float)total[1 + i];\n", p->nmetrics);
        fprintf(f, "    return 0;\n}\n\n");
    }
    if (train) {
        fprintf(f, "/* Forward and backward over all n samples in chunks; gradients of the mean loss in m->g. */\n");
        fprintf(f, "static void loss_and_grads(%s *m, size_t n, const float *const inputs[], const void *const targets[],\n"
                   "                           int update_stats, double *total)\n{\n", P);
        fprintf(f, "    NnrtRng rng;  /* dropout masks: a function of the seed and the step */\n");
        fprintf(f, "    nnrt_rng_seed(&rng, m->seed ^ (0x9E3779B97F4A7C15ull * (uint64_t)(m->iterations + 1)));\n");
        fprintf(f, "    for (int i = 0; i < 1 + %d; i++)\n        total[i] = 0.0;\n", p->nmetrics);
        fprintf(f, "    for (size_t start = 0; start < n; start += %zu) {\n", p->max_batch);
        fprintf(f, "        int B = (int)(n - start < %zu ? n - start : %zu);\n", p->max_batch, p->max_batch);
        fprintf(f, "        const float *in[%d];\n        const void *tg[%d];\n        float res[1 + %d];\n", p->ninputs,
                p->noutputs, p->nmetrics);
        fprintf(f, "        slice_inputs(in, inputs, start%s);\n        slice_targets(tg, targets, start%s);\n", TM, TM);
        fprintf(f, "        train_chunk(m, B, in, tg, 1.0f / (float)n, start ? 1.0f : 0.0f, &rng, update_stats, res);\n");
        fprintf(f, "        for (int i = 0; i < 1 + %d; i++)\n            total[i] += (double)res[i] * B / (double)n;\n    }\n}\n\n",
                p->nmetrics);
        fprintf(f, "int %s_train_step_metrics(%s *m, size_t n,%s const float *const inputs[],\n"
                   "                          const void *const targets[], float *loss, float *metrics)\n{\n", P, P, TS);
        fprintf(f, "    int rc = check_args(m, \"%s_train_step\", n,%s inputs, targets, NULL, 1, 0);\n", P, TA);
        fprintf(f, "    if (rc)\n        return rc;\n");
        fprintf(f, "    double total[1 + %d];\n", p->nmetrics);
        if (sgd_in_gemm(p->train))
            fprintf(f, "    /* one chunk: the gradient GEMMs of the Dense kernels take SGD's step (or velocity) themselves */\n"
                       "    m->step_in_gemm = n <= %zu;\n    m->step_lr = (float)learning_rate(m);\n", p->max_batch);
        fprintf(f, "    loss_and_grads(m, n, inputs, targets, 1, total);\n");
        fprintf(f, "    apply_updates(m);\n    m->iterations++;\n");
        if (sgd_in_gemm(p->train))
            fprintf(f, "    m->step_in_gemm = 0;\n");
        fprintf(f, "    if (loss)\n        *loss = (float)total[0];\n");
        fprintf(f, "    for (int i = 0; metrics && i < %d; i++)\n        metrics[i] = (float)total[1 + i];\n", p->nmetrics);
        fprintf(f, "    return 0;\n}\n\n");
        fprintf(f, "int %s_train_step(%s *m, size_t n,%s const float *const inputs[], const void *const targets[],\n"
                   "                 float *loss)\n{\n"
                   "    return %s_train_step_metrics(m, n,%s inputs, targets, loss, NULL);\n}\n\n", P, P, TS, P, TA);
        fprintf(f, "int %s_set_trainable(%s *m, const char *layer, int trainable)\n{\n", P, P);
        fprintf(f, "    if (!m || !layer)\n        return NNRT_EINVAL;\n    int found = 0;\n");
        fprintf(f, "    for (int i = 0; i < NUM_TENSORS; i++)\n        if (!strcmp(weight_info[i].layer, layer)) {\n"
                   "            m->frozen[i] = !trainable;\n            found = 1;\n        }\n");
        fprintf(f, "    if (!found) {\n        snprintf(m->error, sizeof m->error, \"%s_set_trainable: no layer '%%s' with weights\", layer);\n"
                   "        return NNRT_EINVAL;\n    }\n    return 0;\n}\n\n", P);
        fprintf(f, "void %s_reset_optimizer(%s *m)\n{\n    if (!m)\n        return;\n", P, P);
        fprintf(f, "    memset(m->slot[0], 0, NUM_SLOTS * SLOT_FLOATS * sizeof(float));\n");
        if (p->optimizer.kind == OPT_ADAGRAD)
            fprintf(f, "    for (size_t i = 0; i < SLOT_FLOATS; i++)\n        m->slot[0][i] = %s;\n",
                    flt(p->optimizer.initial_accumulator_value));
        fprintf(f, "    m->iterations = 0;\n    m->lr_scale = 1.0;\n    m->m_schedule = 1.0;\n}\n\n");
        fprintf(f, "int %s_loss_grad(%s *m, size_t n,%s const float *const inputs[], const void *const targets[],\n"
                   "                float *loss)\n{\n", P, P, TS);
        fprintf(f, "    int rc = check_args(m, \"%s_loss_grad\", n,%s inputs, targets, NULL, 1, 0);\n", P, TA);
        fprintf(f, "    if (rc)\n        return rc;\n");
        fprintf(f, "    double total[1 + %d];\n    loss_and_grads(m, n, inputs, targets, 0, total);\n", p->nmetrics);
        fprintf(f, "    if (loss)\n        *loss = (float)total[0];\n    return 0;\n}\n\n");
    }

    /* the NnrtModel table for the driver */
    fprintf(f, "/* ---- the description nnrt_main reads (nnrt.h) ---- */\n\n");
    fprintf(f, "static void *glue_new(uint64_t seed) { return %s_new(seed); }\n", P);
    fprintf(f, "static void glue_free(void *m) { %s_free(m); }\n", P);
    fprintf(f, "static int glue_load(void *m, const char *path) { return %s_load(m, path); }\n", P);
    fprintf(f, "static int glue_save(const void *m, const char *path) { return %s_save(m, path); }\n", P);
    fprintf(f, "static const char *glue_last_error(const void *m) { return %s_last_error(m); }\n", P);
    fprintf(f, "static float *glue_weights(void *m) { return %s_weights(m); }\n", P);
    /* the driver picks a model's timesteps once, from its data (set_timesteps) */
    const char *GT = p->max_timesteps ? fmt_str(" (size_t)((struct %s *)m)->timesteps,", P) : "";
    fprintf(f, "static int glue_predict(void *m, size_t n, const float *const in[], float *const out[])\n{\n"
               "    return %s_predict(m, n,%s in, out);\n}\n", P, GT);
    fprintf(f, "static int glue_evaluate(void *m, size_t n, const float *const in[], const void *const tg[], float *loss,\n"
               "                          float *metrics)\n{\n    return %s_evaluate(m, n,%s in, tg, loss, metrics);\n}\n",
            P, GT);
    if (p->max_timesteps)
        fprintf(f, "static int glue_set_timesteps(void *m, size_t timesteps)\n{\n"
                   "    if (timesteps < 1 || timesteps > %lld)\n        return NNRT_EINVAL;\n"
                   "    ((struct %s *)m)->timesteps = (int)timesteps;\n    return 0;\n}\n",
                (long long)p->max_timesteps, P);
    fprintf(f, "static int glue_load_partial(void *mp, const char *path, FILE *report)\n{\n");
    fprintf(f, "    struct %s *m = mp;\n    unsigned char loaded[NUM_TENSORS + 1];\n", P);
    fprintf(f, "    int rc = nnrt_h5_load(path, weight_info, NUM_TENSORS, m->block, 0, loaded, m->error, sizeof m->error);\n");
    fprintf(f, "    if (rc)\n        return rc;\n");
    fprintf(f, "    for (int i = 0; report && i < NUM_TENSORS; i++)\n");
    fprintf(f, "        fprintf(report, \"  %%-40s %%s\\n\", weight_info[i].name, loaded[i] ? \"loaded\" : \"kept its initializer\");\n");
    fprintf(f, "    return 0;\n}\n");
    if (train) {
        fprintf(f, "static int glue_train_step(void *m, size_t n, const float *const in[], const void *const tg[], float *loss,\n"
                   "                            float *metrics)\n{\n    return %s_train_step_metrics(m, n,%s in, tg, loss, metrics);\n}\n",
                P, GT);
        fprintf(f, "static int glue_loss_grad(void *m, size_t n, const float *const in[], const void *const tg[], float *loss)\n{\n"
                   "    return %s_loss_grad(m, n,%s in, tg, loss);\n}\n", P, GT);
        fprintf(f, "static float *glue_grads(void *m) { return %s_grads(m); }\n", P);
        fprintf(f, "static float glue_get_learning_rate(const void *m) { return (float)learning_rate(m); }\n");
        fprintf(f, "static int glue_set_trainable(void *m, const char *layer, int trainable)\n{\n"
                   "    return %s_set_trainable(m, layer, trainable);\n}\n", P);
        fprintf(f, "static void glue_reset_optimizer(void *m) { %s_reset_optimizer(m); }\n", P);
        fprintf(f, "static void glue_set_learning_rate(void *mp, float lr)\n{\n    struct %s *m = mp;\n"
                   "    const double now = learning_rate(m);\n    if (now > 0)\n        m->lr_scale *= lr / now;\n}\n", P);
    }
    fprintf(f, "\nconst struct NnrtModel *%s_model(void)\n{\n", P);
    fprintf(f, "    static const NnrtModel model = {\n");
    fprintf(f, "        .name = \"%s\",\n        .source = ", P);
    fputs(literal(p, p->source), f);
    fprintf(f, ",\n        .max_batch = %zu,\n", p->max_batch);
    if (p->max_timesteps) {
        fprintf(f, "        .max_timesteps = %lld,\n        .set_timesteps = glue_set_timesteps,\n",
                (long long)p->max_timesteps);
        fprintf(f, "        .input_vtime = {");
        for (int i = 0; i < p->ninputs; i++)
            fprintf(f, "%s%d", i ? ", " : "", p->inputs[i].vtime);
        fprintf(f, "},\n        .output_vtime = {");
        for (int i = 0; i < p->noutputs; i++)
            fprintf(f, "%s%d", i ? ", " : "", p->outputs[i].vtime);
        fprintf(f, "},\n");
    }
    fprintf(f, "        .num_inputs = %d,\n        .num_outputs = %d,\n        .num_metrics = %d,\n", p->ninputs, p->noutputs,
            p->nmetrics);
    fprintf(f, "        .input_size = {");
    for (int i = 0; i < p->ninputs; i++)
        fprintf(f, "%s%lld", i ? ", " : "", (long long)shape_size(&p->inputs[i].shape));
    fprintf(f, "},\n        .input_rank = {");
    for (int i = 0; i < p->ninputs; i++)
        fprintf(f, "%s%d", i ? ", " : "", p->inputs[i].shape.rank);
    fprintf(f, "},\n        .input_shape = {");
    for (int i = 0; i < p->ninputs; i++) {
        fprintf(f, "%s{", i ? ", " : "");
        for (int d = 0; d < p->inputs[i].shape.rank; d++)
            fprintf(f, "%s%lld", d ? ", " : "", (long long)p->inputs[i].shape.dim[d]);
        fprintf(f, "}");
    }
    fprintf(f, "},\n        .output_size = {");
    for (int i = 0; i < p->noutputs; i++)
        fprintf(f, "%s%lld", i ? ", " : "", (long long)shape_size(&p->outputs[i].shape));
    fprintf(f, "},\n        .output_rank = {");
    for (int i = 0; i < p->noutputs; i++)
        fprintf(f, "%s%d", i ? ", " : "", p->outputs[i].shape.rank);
    fprintf(f, "},\n        .output_shape = {");
    for (int i = 0; i < p->noutputs; i++) {
        fprintf(f, "%s{", i ? ", " : "");
        for (int d = 0; d < p->outputs[i].shape.rank; d++)
            fprintf(f, "%s%lld", d ? ", " : "", (long long)p->outputs[i].shape.dim[d]);
        fprintf(f, "}");
    }
    fprintf(f, "},\n        .target_size = {");
    for (int i = 0; i < p->noutputs; i++)
        fprintf(f, "%s%lld", i ? ", " : "", (long long)p->target_size[i]);
    fprintf(f, "},\n        .target_sparse = {");
    for (int i = 0; i < p->noutputs; i++)
        fprintf(f, "%s%d", i ? ", " : "", p->target_sparse[i]);
    fprintf(f, "},\n        .output_names = {");
    for (int i = 0; i < p->noutputs; i++) {
        fprintf(f, "%s", i ? ", " : "");
        fputs(literal(p, p->outputs[i].name), f);
    }
    fprintf(f, "},\n        .metric_names = {");
    for (int i = 0; i < p->nmetrics; i++) {
        fprintf(f, "%s", i ? ", " : "");
        fputs(literal(p, p->metric_names[i]), f);
    }
    fprintf(f, "},\n        .num_params = WEIGHT_FLOATS,\n");
    fprintf(f, "        .weights = weight_info,\n        .num_weights = NUM_TENSORS,\n");
    fprintf(f, "        .new_model = glue_new,\n        .free_model = glue_free,\n        .load = glue_load,\n");
    fprintf(f, "        .load_partial = glue_load_partial,\n        .save = glue_save,\n        .predict = glue_predict,\n");
    fprintf(f, "        .train_step = %s,\n        .evaluate = glue_evaluate,\n", train ? "glue_train_step" : "NULL");
    fprintf(f, "        .loss_grad = %s,\n        .params = glue_weights,\n        .grads = %s,\n",
            train ? "glue_loss_grad" : "NULL", train ? "glue_grads" : "NULL");
    fprintf(f, "        .last_error = glue_last_error,\n");
    if (train)
        fprintf(f, "        .get_learning_rate = glue_get_learning_rate,\n        .set_learning_rate = glue_set_learning_rate,\n"
                   "        .set_trainable = glue_set_trainable,\n        .reset_optimizer = glue_reset_optimizer,\n");
    fprintf(f, "    };\n    return &model;\n}\n");
}

void emit_driver(FILE *f, const Program *p, const char *header_name)
{
    static const char *formats[] = {"NNRT_DATA_NONE", "NNRT_DATA_IDX", "NNRT_DATA_NPY", "NNRT_DATA_CSV",
                                    "NNRT_DATA_TIME_SERIES", "NNRT_DATA_HDF5"};
    Arena *a = p->infer->arena;
    assert(c_header_name_ok(header_name));  /* the driver's caller checked it (--header, -o) */
    fprintf(f, "/* %s_main.c — generated by nncc %s from %s. Do not edit.\n", p->name, NNCC_VERSION,
            comment_text(p, p->source));
    fprintf(f, " * The program behind `nncc train|evaluate|predict|check`: the model's fit section\n"
               " * as an NnrtFitConfig, handed with the model to the runtime's driver. */\n");
    fprintf(f, "#include <math.h>\n\n#include \"%s\"\n#include \"nnrt.h\"\n\n", header_name);
    fprintf(f, "static const NnrtFitConfig fit = {\n");
    fprintf(f, "        .model_file = ");
    fputs(literal(p, p->source), f);
    fprintf(f, ",\n");
    const FitSpec *fs = &p->fit;
    const DataSpec *srcs[] = {&fs->train, &fs->test, &fs->validation};
    const char *names[] = {"train", "test", "validation"};
    for (int i = 0; i < 3; i++) {
        const DataSpec *d = srcs[i];
        if (!d->format)
            continue;
        fprintf(f, "        .%s = {.format = %s, .x = ", names[i], formats[d->format]);
        fputs(literal(p, d->x ? d->x : ""), f);
        fprintf(f, ", .y = ");
        fputs(literal(p, d->y ? d->y : ""), f);
        fprintf(f, ", .scale = %s", dbl(d->scale));
        if (d->num_classes) {
            fprintf(f, ",\n               .classes = (const int[]){");
            for (int k = 0; k < d->num_classes; k++)
                fprintf(f, "%s%d", k ? ", " : "", d->classes[k]);
            fprintf(f, "}, .num_classes = %d", d->num_classes);
        }
        if (d->binary)
            fprintf(f, ", .binary = 1, .binary_class = %d", d->binary_class);
        if (d->format == 4)  /* NNRT_DATA_TIME_SERIES */
            fprintf(f, ",\n               .n_steps = %d, .ahead = %d, .count = %d, .seq2seq = %d, .target_start = %d, "
                       ".target_stride = %d,\n               .split = {%s, %s, %s}, .seed = %lluu",
                    d->n_steps, d->ahead, d->count, d->seq2seq, d->target_start, d->target_stride, dbl(d->split[0]),
                    dbl(d->split[1]), dbl(d->split[2]), (unsigned long long)d->seed);
        if (d->path && d->format == 5) {  /* NNRT_DATA_HDF5 */
            fprintf(f, ",\n               .path = ");
            fputs(literal(p, d->path), f);
        } else if (d->path) {
            fprintf(f, ",\n               .path = ");
            fputs(literal(p, d->path), f);
            fprintf(f, ", .header = %d, .skip_rows = %d, .delimiter = %s, .standardize = %d,\n", d->header,
                    d->skip_rows, c_char_literal(a, d->delimiter == ' ' ? ' ' : ','), d->standardize);
            fprintf(f, "               .split = {%s, %s, %s}, .seed = %lluu", dbl(d->split[0]), dbl(d->split[1]),
                    dbl(d->split[2]), (unsigned long long)d->seed);
        }
        fprintf(f, "},\n");
    }
    fprintf(f, "        .split_first = %ld,\n        .split_last = %s,\n", fs->split_first, dbl(fs->split_last));
    fprintf(f, "        .epochs = %d,\n        .batch_size = %ld,\n        .shuffle = %d,\n        .seed = %lluu,\n",
            fs->present ? fs->epochs : 1, fs->present ? fs->batch_size : 32, fs->shuffle,
            (unsigned long long)fs->seed);
    if (fs->train_limit)
        fprintf(f, "        .train_limit = %ld,\n", fs->train_limit);
    if (fs->weights_from) {
        fprintf(f, "        .init_weights = ");
        fputs(literal(p, fs->weights_from), f);
        fprintf(f, ",\n");
    }
    if (fs->num_phases) {
        fprintf(f, "        .phases = (const NnrtPhase[]){\n");
        for (int i = 0; i < fs->num_phases; i++) {
            const PhaseSpec *ph = &fs->phases[i];
            fprintf(f, "            {.epochs = %d, .learning_rate = %s", ph->epochs, dbl(ph->learning_rate));
            if (ph->num_freeze) {
                fprintf(f, ",\n             .freeze = (const char *const[]){");
                for (int k = 0; k < ph->num_freeze; k++) {
                    fprintf(f, "%s", k ? ", " : "");
                    fputs(literal(p, ph->freeze[k]), f);
                }
                fprintf(f, "}, .num_freeze = %d", ph->num_freeze);
            }
            fprintf(f, "},\n");
        }
        fprintf(f, "        },\n        .num_phases = %d,\n", fs->num_phases);
    }
    const CallbackSpec *cb = &fs->callbacks;
    static const char *const modes[] = {"0 /* auto */", "1 /* min */", "2 /* max */"};
    fprintf(f, "        .callbacks = {\n");
    if (cb->checkpoint.enabled) {
        fprintf(f, "            .checkpoint = {.enabled = 1, .filepath = ");
        fputs(literal(p, cb->checkpoint.filepath), f);
        fprintf(f, ", .monitor = ");
        fputs(literal(p, cb->checkpoint.monitor), f);
        fprintf(f, ",\n                           .save_best_only = %d, .save_weights_only = %d, .mode = %s},\n",
                cb->checkpoint.save_best_only, cb->checkpoint.save_weights_only, modes[cb->checkpoint.mode]);
    }
    if (cb->early_stopping.enabled) {
        fprintf(f, "            .early_stopping = {.enabled = 1, .monitor = ");
        fputs(literal(p, cb->early_stopping.monitor), f);
        fprintf(f, ", .patience = %d, .restore_best_weights = %d,\n                               .mode = %s, "
                   ".start_from_epoch = %d, .min_delta = %s, .baseline = %s},\n",
                cb->early_stopping.patience, cb->early_stopping.restore_best_weights, modes[cb->early_stopping.mode],
                cb->early_stopping.start_from_epoch, dbl(cb->early_stopping.min_delta),
                dbl(cb->early_stopping.baseline));  /* NAN: none */
    }
    if (cb->reduce_lr.enabled) {
        fprintf(f, "            .reduce_lr = {.enabled = 1, .monitor = ");
        fputs(literal(p, cb->reduce_lr.monitor), f);
        fprintf(f, ", .factor = %s, .min_delta = %s, .min_lr = %s,\n                          .patience = %d, "
                   ".cooldown = %d, .mode = %s},\n",
                dbl(cb->reduce_lr.factor), dbl(cb->reduce_lr.min_delta), dbl(cb->reduce_lr.min_lr), cb->reduce_lr.patience,
                cb->reduce_lr.cooldown, modes[cb->reduce_lr.mode]);
    }
    if (cb->csv_logger.enabled) {
        fprintf(f, "            .csv_logger = {.enabled = 1, .filename = ");
        fputs(literal(p, cb->csv_logger.filename), f);
        fprintf(f, ", .append = %d, .separator = %s},\n", cb->csv_logger.append,
                c_char_literal(a, cb->csv_logger.separator));
    }
    fprintf(f, "            .terminate_on_nan = %d,\n        },\n", cb->terminate_on_nan);
    fprintf(f, "};\n\nint main(int argc, char **argv)\n{\n    return nnrt_main(argc, argv, %s_model(), &fit);\n}\n",
            p->name);
}

/* ---- names the generated C keeps for itself ------------------------------------- */

static const char *const reserved[] = {
    /* C keywords and the identifiers of the headers P.c includes */
    "auto", "break", "case", "char", "const", "continue", "default", "do", "double", "else", "enum", "extern",
    "float", "for", "goto", "if", "inline", "int", "long", "register", "restrict", "return", "short", "signed",
    "sizeof", "static", "struct", "switch", "typedef", "union", "unsigned", "void", "volatile", "while", "bool",
    "true", "false", "alignas", "alignof", "static_assert", "thread_local", "nullptr", "typeof", "constexpr",
    "NULL", "size_t", "ptrdiff_t", "wchar_t", "max_align_t", "errno", "FILE", "fpos_t", "div_t", "ldiv_t",
    "int8_t", "int16_t", "int32_t", "int64_t", "uint8_t", "uint16_t", "uint32_t", "uint64_t", "intptr_t",
    "uintptr_t", "intmax_t", "uintmax_t", "stdin", "stdout", "stderr", "printf", "fprintf", "sprintf",
    "snprintf", "puts", "fputs", "fopen", "fclose", "fread", "fwrite", "fflush", "remove", "rename", "malloc",
    "calloc", "realloc", "free", "abort", "exit", "atexit", "getenv", "system", "abs", "labs", "div", "rand",
    "srand", "qsort", "bsearch", "atoi", "atof", "strtol", "strtod", "memcpy", "memmove", "memset", "memcmp",
    "strlen", "strcmp", "strcpy", "strncpy", "strcat", "strchr", "strstr", "strdup", "strerror", "exp", "exp2",
    "expm1", "log", "log2", "log10", "log1p", "pow", "sqrt", "cbrt", "sin", "cos", "tan", "asin", "acos", "atan",
    "atan2", "sinh", "cosh", "tanh", "asinh", "acosh", "atanh", "erf", "erfc", "fabs", "floor", "ceil", "round",
    "trunc", "fmod", "fmin", "fmax", "fma", "hypot", "isnan", "isinf", "isfinite", "nan", "main", "aligned_alloc",
    "expf", "logf", "sqrtf", "tanhf", "fabsf", "fminf", "fmaxf", "erff", "expm1f", "log1pf", "powf",
    /* file-scope names of P.c */
    "Weights", "point", "check_args", "slice_inputs", "slice_targets", "infer_chunk", "train_chunk",
    "apply_updates", "loss_and_grads", "weight_info", "weight_init", "layer_names", "WEIGHT_FLOATS",
    "GRAD_FLOATS", "SLOT_FLOATS", "NUM_SLOTS", "ARENA_FLOATS", "NUM_TENSORS", "STATE_EXTRA", "NUM_OPT_TENSORS",
    "opt_info", "model_config", "learning_rate", "NadamStep",
    /* ... of P_main.c (the driver) and test_P.c (--emit-test) */
    "fit", "argc", "argv", "grad_index", "grad_value", "expected",
    /* macros of math.h, stdint.h, stdio.h, assert.h, stddef.h, and those GNU C predefines */
    "NAN", "INFINITY", "HUGE_VAL", "HUGE_VALF", "EOF", "BUFSIZ", "SIZE_MAX", "INT32_MAX", "INT64_MAX",
    "UINT64_MAX", "INT_MAX", "assert", "offsetof", "isnormal", "signbit", "fpclassify", "unix", "linux",
};

/* the parameters and locals of the custom functions' helpers, which call a C hook */
static const char *const custom_locals[] = {
    "x", "y", "in", "dx", "dy", "xs", "ys", "t", "p", "pv", "tv", "w", "wv", "dw", "sum", "rows", "cols", "scale",
    "beta", "y_true", "y_pred",
};

/* the parameters and locals of its functions: a buffer may not take them (a
 * typedef of the same name is fine: the local shadows it) */
static const char *const reserved_locals[] = {
    "m", "B", "model", "in", "out", "tg", "res", "arena", "rng", "acc", "grad_scale", "update_stats", "n", "start",
    "total", "rc", "t", "lr_t", "inputs", "outputs", "targets", "loss", "metrics", "seed", "bytes", "floats",
    "fn", "need_tg", "need_out", "dst", "src", "path", "report", "loaded", "mp", "h5_path", "i",
    "T", "timesteps", "blk", "blk_rows", "blk_scale",
};

/* The file-scope names nncc derives from node names: the convolutions'
 * epilogues MODE_NODE_epilogue. (The custom functions' custom_NAME_...
 * depend on the model: lower.c checks them.) */
static bool derived_global(const char *name)
{
    size_t len = strlen(name), tail = strlen("_epilogue");
    return (!strncmp(name, "train_", 6) || !strncmp(name, "infer_", 6)) && len > tail &&
           !strcmp(name + len - tail, "_epilogue");
}

static bool reserved_global(const char *name)
{
    static const char *const prefixes[] = {"nnrt", "NNRT", "Nnrt", "__", "glue_"};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
        if (!strncmp(name, prefixes[i], strlen(prefixes[i])))
            return true;
    for (size_t i = 0; i < sizeof reserved / sizeof reserved[0]; i++)
        if (!strcmp(name, reserved[i]))
            return true;
    if (derived_global(name))
        return true;
    for (int h = 0; h < H_COUNT; h++) {  /* the static helpers: "static void bias_add(" */
        const char *p = strstr(helper_code[h], "static ");
        p = p ? strchr(p + 7, ' ') : NULL;
        if (p) {
            p++;
            if (*p == '*')
                p++;
            size_t len = strcspn(p, "(");
            if (strlen(name) == len && !strncmp(p, name, len))
                return true;
        }
    }
    for (int k = 0; k < ACT_COUNT; k++) {
        size_t len = strlen(act_info[k].name);
        if (!strncmp(name, act_info[k].name, len) &&
            (!strcmp(name + len, "_forward") || !strcmp(name + len, "_backward") ||
             !strcmp(name + len, "_bias_forward") || !strcmp(name + len, "_scale_shift_forward")))
            return true;
    }
    return standalone_reserved_name(name);
}

bool emit_reserved_name(const char *name)
{
    for (size_t i = 0; i < sizeof reserved_locals / sizeof reserved_locals[0]; i++)
        if (!strcmp(name, reserved_locals[i]))
            return true;
    return reserved_global(name);
}

/* P's API beside P itself: functions (spec/interfaces.md, --standalone's P_infer) */
static const char *const api[] = {"new", "free", "load", "save", "predict", "train_step", "train_step_metrics",
                                  "loss_grad", "grads", "evaluate", "last_error", "weights", "model",
                                  "set_trainable", "reset_optimizer", "infer"};

bool emit_reserved_prefix(const char *prefix)
{
    if (reserved_global(prefix))
        return true;
    char buf[C_NAME_MAX + 64];
    for (size_t i = 0; i < sizeof api / sizeof api[0]; i++) {
        snprintf(buf, sizeof buf, "%s_%s", prefix, api[i]);
        if (reserved_global(buf))
            return true;
    }
    return false;
}

bool emit_api_name(const char *prefix, const char *name)
{
    size_t len = strlen(prefix);
    if (strncmp(name, prefix, len) != 0)
        return false;
    if (name[len] == 0)
        return true;
    for (size_t i = 0; i < sizeof api / sizeof api[0]; i++)
        if (name[len] == '_' && !strcmp(name + len + 1, api[i]))
            return true;
    return false;
}

void emit_reserve_program_names(Graph *g, const char *prefix)
{
    strmap_put(g->arena, &g->names, prefix, (void *)prefix);
    for (size_t i = 0; i < sizeof api / sizeof api[0]; i++) {
        const char *name = arena_printf(g->arena, "%s_%s", prefix, api[i]);
        strmap_put(g->arena, &g->names, name, (void *)name);
    }
}

bool emit_reserved_hook(const char *name)
{
    if (emit_reserved_name(name))
        return true;
    for (size_t i = 0; i < sizeof custom_locals / sizeof custom_locals[0]; i++)
        if (!strcmp(name, custom_locals[i]))
            return true;
    return false;
}
