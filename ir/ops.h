/* ops.h — the tables every layer of nncc indexes: operations, activations,
 * losses, metrics and optimizers. One row each; the compiler turns a row
 * into an enum constant and binds the functions named after it, so adding
 * an op is one row here plus its rule in ops.c and its emitter in
 * backends/c/emit.c. Switches over these enums have no `default:`.
 */
#ifndef NNCC_OPS_H
#define NNCC_OPS_H

/* X(ENUM, lower-case name, arity)
 * Shapes: batched tensors are (B, ...); "rows" means B * prod(dims[:-1]). */
#define OP_TABLE(X)                                                                 \
    X(INPUT, input, 0)             /* model input `slot`; storage ST_INPUT */        \
    X(TARGET, target, 0)           /* training target of output `slot` */            \
    X(WEIGHT, weight, 0)           /* a weight tensor w */                           \
    X(RESHAPE, reshape, 1)         /* same values, new per-sample shape (a view) */  \
    X(MATMUL, matmul, 2)           /* y = op(a) op(b), a and b as (rows, last) */    \
    X(BIAS_ADD, bias_add, 2)       /* y[r,c] = x[r,c] + b[c] */                      \
    X(BIAS_GRAD, bias_grad, 1)     /* db[c] = sum_r dy[r,c] */                       \
    X(ACTIVATION, activation, 1)   /* y = f(x), f = ACT_TABLE row `attr` */          \
    X(BIAS_ACTIVATION, bias_activation, 2) /* y = f(x + b): BIAS_ADD and ACTIVATION fused (pass_fuse.c) */ \
    X(ACTIVATION_GRAD, activation_grad, 3) /* dx = dy * f'(x, y); src dy, x, y */   \
    X(SOFTMAX, softmax, 1)         /* y = exp(x - max) / sum, over the last axis */  \
    X(SOFTMAX_GRAD, softmax_grad, 2) /* dx = y * (dy - sum(dy * y)); src dy, y */    \
    X(DROPOUT_MASK, dropout_mask, 0) /* mask in {0, 1/(1-rate)}, rate `alpha`, fresh per step; `steps` > 0: the same over that many time steps */ \
    X(MUL, mul, 2)                 /* y = a * b elementwise */                       \
    X(ADD, add, 2)                 /* y = a + b (also gradient fan-in) */            \
    X(ADD_ACTIVATION, add_activation, 2) /* y = f(a + b): ADD and ACTIVATION fused (pass_fuse.c), residual blocks */ \
    X(SUB, sub, 2)                 /* y = a - b */                                   \
    X(SCALE, scale, 1)             /* y = alpha * x */                               \
    X(MAXIMUM, maximum, 2)         /* y = max(a, b), ties to a */                    \
    X(MAXIMUM_GRAD, maximum_grad, 3) /* src dy, a, b: dy where a wins (attr 0) or b wins (1) */ \
    X(CONCAT, concat, -1)          /* y = the sources joined along `axis` */         \
    X(SLICE, slice, 1)             /* y = x[..., offset : offset + dim(axis), ...] */ \
    X(CONV, conv, 2)               /* y = conv(x, kernel), window `conv`, channels last; attr > 0: depthwise, that depth multiplier */ \
    X(CONV_GRAD_INPUT, conv_grad_input, 2)   /* dx = conv^T(dy, kernel); src dy, kernel */ \
    X(CONV_GRAD_KERNEL, conv_grad_kernel, 2) /* dk = im2col(x)^T dy; src x, dy */ \
    X(POOL, pool, 1)               /* max (attr 0) or average (1) pooling, window `conv` */ \
    X(POOL_GRAD, pool_grad, 3)     /* src dy, x, y; max pooling with relu_grad: through the relu x came from */ \
    X(BN_STATS, bn_stats, 1)       /* (2, c): batch mean, 1/sqrt(var + eps) over all but the last axis */ \
    X(BN_APPLY, bn_apply, -1)      /* y = f(gamma (x - mean) inv + beta), f = ACT_TABLE row `attr` (linear, or merged by pass_fuse.c); src x, stats[, gamma][, beta] */ \
    X(BN_GRAD_INPUT, bn_grad_input, -1) /* dx through the batch statistics; src dy, x, stats[, gamma] */ \
    X(BN_GRAD_GAMMA, bn_grad_gamma, 3)  /* dgamma = sum dy * xhat; src dy, x, stats */ \
    X(BN_GRAD, bn_grad, -1)        /* the three above and beta's BIAS_GRAD in one kernel, through the activation's derivative (attr; linear: none): dz = dy f'(y); its value dx, or dgamma when it is gamma's gradient; `side` the other gradients it writes; src dy, x, stats[, y][, gamma] (pass_fuse.c) */ \
    X(BN_MOVING, bn_moving, 3)     /* moving mean/var += (1-momentum)(batch - moving); src stats, mean, var */ \
    X(BN_INFER, bn_infer, -1)      /* y = gamma (x - mean) / sqrt(var + eps) + beta; src x, mean, var[, gamma][, beta] */ \
    X(BN_INFER_GRAD, bn_infer_grad, -1) /* dx = dy gamma / sqrt(var + eps); src dy, var[, gamma] */ \
    X(BN_FOLD, bn_fold, -1)        /* (2, c): scale = gamma / sqrt(var + eps), shift = beta + (bias - mean) scale; src mean, var[, gamma][, beta][, bias] (pass_fold_bn.c) */ \
    X(SCALE_SHIFT, scale_shift, 2) /* y[r,c] = f(x[r,c] ss[0,c] + ss[1,c]), f = ACT_TABLE row `attr` (linear, or merged by pass_fuse.c); src x, ss */ \
    X(LOSS, loss, 2)               /* scalar batch mean of LOSS_TABLE `attr`(pred, target) */ \
    X(LOSS_GRAD, loss_grad, 2)     /* d(weight * loss)/d pred, scaled per sample */  \
    X(RNN, rnn, -1)                /* tape (B, tape floats) of a recurrent layer over x; src x, W, U[, b][, h0[, c0]][, rmask] */ \
    X(RNN_OUTPUT, rnn_output, 1)   /* y = from the tape, rnn.which: all steps' h (B,T,u), the last h or LSTM's last c (B,u) */ \
    X(RNN_GRAD, rnn_grad, -1)      /* BPTT: dx, and dW dU db into the gradient block; src dy, x, tape, W, U[, b][, h0[, c0]][, rmask][, dh0[, dc0]] */ \
    X(RNN_STATE_GRAD, rnn_state_grad, 0) /* d loss/d h0 (attr 0) or c0 (attr 1): written by the RNN_GRAD listing it last */ \
    X(PENALTY, penalty, 1)         /* scalar l1*sum|w| + l2*sum w^2 of weight src[0] */ \
    X(PENALTY_GRAD, penalty_grad, 1) /* dw = l1*sign(w) + 2*l2*w, once per step */   \
    X(METRIC, metric, 2)           /* scalar batch mean of METRIC_TABLE `attr` */    \
    X(UPDATE, update, 2)           /* optimizer step of weight src[0] with grad src[1] */

typedef enum {
#define X(e, n, a) OP_##e,
    OP_TABLE(X)
#undef X
    OP_COUNT
} OpKind;

/* X(ENUM, Keras name, y = f(x), f'(x, y) as a factor of dy, needs x, default alpha)
 * Expressions are C over float `x`, `y` and `alpha`; `needs_x` says the
 * gradient reads the input, otherwise the output suffices (in place). */
#define ACT_TABLE(X)                                                                             \
    X(LINEAR, "linear", "x", "1.0f", 0, 0.0f)                                                    \
    X(RELU, "relu", "x > 0.0f ? x : 0.0f", "(y > 0.0f ? 1.0f : 0.0f)", 0, 0.0f)                   \
    X(ELU, "elu", "x > 0.0f ? x : alpha * expm1f(x)", "(y > 0.0f ? 1.0f : y + alpha)", 0, 1.0f)     \
    X(SELU, "selu", "1.0507009873554805f * (x > 0.0f ? x : 1.6732632423543772f * expm1f(x))",   \
      "(y > 0.0f ? 1.0507009873554805f : y + 1.7580993408473766f)", 0, 0.0f)                   \
    X(SIGMOID, "sigmoid", "1.0f / (1.0f + expf(-x))", "y * (1.0f - y)", 0, 0.0f)                  \
    X(HARD_SIGMOID, "hard_sigmoid", "fminf(fmaxf(0.2f * x + 0.5f, 0.0f), 1.0f)",                 \
      "(x > -2.5f && x < 2.5f ? 0.2f : 0.0f)", 1, 0.0f)                                         \
    X(TANH, "tanh", "tanhf(x)", "(1.0f - y * y)", 0, 0.0f)                                        \
    X(SOFTPLUS, "softplus", "fmaxf(x, 0.0f) + log1pf(expf(-fabsf(x)))",                          \
      "1.0f / (1.0f + expf(-x))", 1, 0.0f)                                                       \
    X(SOFTSIGN, "softsign", "x / (1.0f + fabsf(x))",                                            \
      "1.0f / ((1.0f + fabsf(x)) * (1.0f + fabsf(x)))", 1, 0.0f)                                 \
    X(SWISH, "swish", "x / (1.0f + expf(-x))",                                                  \
      "(1.0f / (1.0f + expf(-x))) * (1.0f + x * (1.0f - 1.0f / (1.0f + expf(-x))))", 1, 0.0f)    \
    X(GELU, "gelu", "0.5f * x * (1.0f + erff(x * 0.70710678118654752f))",                        \
      "(0.5f * (1.0f + erff(x * 0.70710678118654752f)) + x * 0.39894228040143268f * expf(-0.5f * x * x))", 1, 0.0f) \
    X(EXPONENTIAL, "exponential", "expf(x)", "y", 0, 0.0f)                                       \
    X(LEAKY_RELU, "leaky_relu", "x > 0.0f ? x : alpha * x", "(y > 0.0f ? 1.0f : alpha)", 0, 0.3f)

typedef enum {
#define X(e, n, f, d, nx, al) ACT_##e,
    ACT_TABLE(X)
#undef X
    ACT_SOFTMAX,                 /* not elementwise: lowered to OP_SOFTMAX */
    ACT_CUSTOM,                  /* a custom: expression (Node.custom) */
    ACT_COUNT
} ActKind;

typedef struct {
    const char *name, *forward, *derivative;
    int needs_x;
    float alpha;
} ActInfo;
extern const ActInfo act_info[ACT_COUNT];

/* X(ENUM, Keras name, runtime kernel stem, sparse int32 targets, softmax-fusable)
 * The runtime provides nnrt_<stem>_{logits,probs}[_grad] or nnrt_<stem>[_grad]. */
#define LOSS_TABLE(X)                                                                   \
    X(SPARSE_CATEGORICAL_CROSSENTROPY, "sparse_categorical_crossentropy", "sparse_xent", 1, 1) \
    X(CATEGORICAL_CROSSENTROPY, "categorical_crossentropy", "xent", 0, 1)              \
    X(BINARY_CROSSENTROPY, "binary_crossentropy", "bxent", 0, 0)                         \
    X(MEAN_SQUARED_ERROR, "mean_squared_error", "mse", 0, 0)                            \
    X(MEAN_ABSOLUTE_ERROR, "mean_absolute_error", "mae", 0, 0)                          \
    X(HUBER, "huber", "huber", 0, 0)  /* the node's alpha is delta */ \
    X(CUSTOM, "custom", "custom", 0, 0) /* a custom: expression (Node.custom) */

typedef enum {
#define X(e, n, k, s, f) LOSS_##e,
    LOSS_TABLE(X)
#undef X
    LOSS_COUNT
} LossKind;

typedef struct {
    const char *name, *kernel;
    int sparse, softmax_fusable;
} LossInfo;
extern const LossInfo loss_info[LOSS_COUNT];

/* X(ENUM, Keras name, runtime kernel, sparse int32 targets, per sequence)
 * A per-sequence kernel takes (pred, target, batch, steps, features) of a
 * (B, T, C) output; the others (pred, target, rows, cols). */
#define METRIC_TABLE(X)                                                             \
    X(SPARSE_CATEGORICAL_ACCURACY, "sparse_categorical_accuracy", "sparse_accuracy", 1, 0) \
    X(CATEGORICAL_ACCURACY, "categorical_accuracy", "categorical_accuracy", 0, 0)   \
    X(BINARY_ACCURACY, "binary_accuracy", "binary_accuracy", 0, 0)                  \
    X(MSE, "mse", "mse", 0, 0)                                                      \
    X(MAE, "mae", "mae", 0, 0)                                                      \
    X(LAST_TIME_STEP_MSE, "last_time_step_mse", "last_time_step_mse", 0, 1) \
    X(CUSTOM, "custom", "custom", 0, 0)  /* a custom: expression (Node.custom) */

typedef enum {
#define X(e, n, k, s, q) METRIC_##e,
    METRIC_TABLE(X)
#undef X
    METRIC_COUNT
} MetricKind;

typedef struct {
    const char *name, *kernel;
    int sparse, sequence;
} MetricInfo;
extern const MetricInfo metric_info[METRIC_COUNT];

/* X(ENUM, Keras class name, the most state slots per trainable float)
 * The slots an instance uses depend on its options (optimizer_slots()). */
#define OPTIMIZER_TABLE(X)     \
    X(SGD, "SGD", 1)           \
    X(ADAGRAD, "Adagrad", 1)   \
    X(RMSPROP, "RMSprop", 3)   \
    X(ADAM, "Adam", 3)         \
    X(NADAM, "Nadam", 2)       \
    X(ADAMAX, "Adamax", 2)     \
    X(ADAMW, "AdamW", 3)

typedef enum {
#define X(e, n, s) OPT_##e,
    OPTIMIZER_TABLE(X)
#undef X
    OPT_COUNT
} OptimizerKind;

typedef struct {
    const char *name;
    int slots;
} OptimizerInfo;
extern const OptimizerInfo optimizer_info[OPT_COUNT];

#endif /* NNCC_OPS_H */
