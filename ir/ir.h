/* ir.h — nncc's intermediate representation.
 *
 * A Graph is a list of Nodes in topological order (a node only refers to
 * nodes created before it). Each Node is one tensor and the operation that
 * produces it (ggml style): `op`, up to four sources, a per-sample shape and
 * whether a batch axis leads it. The forward model, the loss, the backward
 * pass (built by autodiff as ordinary nodes) and the optimizer updates all
 * live in one graph, so every pass sees the whole training step.
 *
 * Everything an op is — name, arity, shape rule, gradient rule, emitter —
 * hangs off one row of OP_TABLE (ops.h): `X(MATMUL, matmul, 2)` makes
 * OP_MATMUL and binds shape_matmul/grad_matmul (ops.c) and emit_matmul
 * (backends/c/emit.c). Activations, losses, metrics and optimizers are rows
 * of their own tables in the same header.
 *
 * Memory: every IR object comes from one Arena per compilation, freed whole.
 *
 * Sections follow the files that implement them.
 */
#ifndef NNCC_IR_H
#define NNCC_IR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ops.h"

#define MAX_RANK 8
#define MAX_SRC 16

/* A position in a source file, kept by every node for diagnostics and for
 * the "model.yaml:12 dense (B,300)" comments of the generated C. */
typedef struct {
    const char *file;
    int line, col;               /* 1-based; 0 when unknown */
} Loc;

/* ---- arena.c: one bump allocator per compilation ----------------------- */

typedef struct ArenaBlock ArenaBlock;
typedef struct {
    ArenaBlock *head;
} Arena;

void *arena_alloc(Arena *a, size_t size);          /* zeroed; aborts when out of memory */
char *arena_strdup(Arena *a, const char *s);
char *arena_printf(Arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void  arena_free(Arena *a);

/* ---- arena.c: string maps, so no lookup is quadratic in the model size -- */

typedef struct {
    const char **keys;
    void **values;
    size_t cap, count;           /* cap is a power of two, kept at most half full */
} StrMap;

void  strmap_put(Arena *a, StrMap *m, const char *key, void *value);   /* replaces */
void *strmap_get(const StrMap *m, const char *key);                    /* NULL if absent */

/* ---- graph.c: graphs, nodes and weights -------------------------------- */

/* Per-sample shape; a batched tensor has an implicit leading axis B. */
typedef struct {
    int rank;
    int64_t dim[MAX_RANK];
} Shape;

/* Where a node's values live at run time. */
typedef enum {
    ST_ARENA,                    /* planned into the activation arena */
    ST_ALIAS,                    /* a view of src[0] (reshape, inference dropout) */
    ST_INPUT,                    /* the caller's input array */
    ST_TARGET,                   /* the caller's target array */
    ST_WEIGHT,                   /* the weight block, at weight->offset */
    ST_GRAD,                     /* accumulates into the gradient block of `weight` */
    ST_SCALAR,                   /* a float result slot (losses, metrics) */
    ST_NONE,                     /* no value (optimizer updates) */
} Storage;

typedef struct Weight Weight;
typedef struct Node Node;

/* A Keras custom function (model-format.md §2) compiled from its math:
 * C expressions over the role's variables, elementwise, with the
 * derivative nncc derived symbolically. Activations use x (input); losses
 * and metrics t and p (y_true, y_pred) at one element; regularizers and
 * constraints w. */
typedef struct {
    const char *name;            /* the name it has under custom: */
    const char *role;            /* "activation", "loss", "metric", "regularizer", "constraint" */
    const char *forward;         /* the value (the body of a regularizer's or metric's sum/mean) */
    const char *derivative;      /* d forward / d (x | p | w); NULL for metrics and constraints */
    bool mean;                   /* regularizer/metric: mean, not sum, of the body */
    bool time_indexed;           /* metric: over one time step of (batch, steps, features) values */
    int time_step;               /* that step; negative counts from the end */
    const char *c_function, *c_gradient;  /* C hooks resolved at link time (forward/derivative call them) */
    Loc c_function_loc, c_gradient_loc;
    int init_kind;               /* initializer: NNRT_INIT_RANDOM_NORMAL/_UNIFORM/_TRUNCATED_NORMAL/_CONSTANT */
    const void *init_args[2];    /* initializer: its arguments, compiler Exprs over fan_in and fan_out */
} CustomFn;

/* Initializer spec (mirrors NnrtInit of the runtime, which ir/ does not include). */
typedef struct {
    const char *name;            /* Keras name as written, for --emit-ir */
    const CustomFn *custom;      /* a custom: initializer, resolved per weight by lower_weight */
    int kind;                    /* NNRT_INIT_* */
    double a, b;
    int mode, distribution;
} InitSpec;

/* A Keras weight: one tensor of the weight block, saved to HDF5 by name. */
struct Weight {
    const char *layer;           /* "dense" */
    const char *name;            /* "kernel" → saved as "dense/kernel:0" */
    Shape shape;                 /* Keras shape, Dense kernel (in, out) */
    InitSpec init;
    bool trainable;
    size_t offset;               /* floats into the weight block */
    size_t opt_offset;           /* floats into each optimizer slot (trainable only) */
    int index;                   /* position in the WeightSet */
    Loc loc;
    double l1, l2;               /* regularizer: penalty l1*sum|w| + l2*sum w^2 in the loss */
    const char *constraint;      /* "" or non_neg, max_norm, unit_norm, min_max_norm */
    double con_min, con_max, con_rate;
    int con_axis;                /* axis the norm is taken over (Keras default 0) */
    int forget_bias_units;       /* LSTM unit_forget_bias: entries [u, 2u) start at 1 */
    const CustomFn *custom_reg;  /* a custom regularizer (with l1, l2 = 0) */
    const CustomFn *custom_con;  /* a custom constraint */
};

/* The weights of one model, shared by its training and inference graphs,
 * in Keras order (layer order, then each layer's own order). */
typedef struct {
    Weight **items;
    int n, cap;
    StrMap by_name;              /* "layer\nname" -> Weight */
    size_t total;                /* floats in the weight block */
    size_t trainable_total;      /* floats of trainable weights */
} WeightSet;

Weight *weight_add(Arena *a, WeightSet *ws, const char *layer, const char *name,
                   const Shape *shape, const InitSpec *init, bool trainable, Loc loc);
Weight *weight_find(const WeightSet *ws, const char *layer, const char *name);

struct Node {
    OpKind op;
    Node *src[MAX_SRC];
    int nsrc;
    Shape shape;                 /* per sample when batched */
    bool batched;
    bool vtime;                  /* dim[0] is the variable time axis: shape holds the compiled maximum,
                                    and at run time the buffer holds T / max of it, compact (B, T, ...) */
    bool int32;                  /* int32 values (sparse labels), else float */
    bool requires_grad;          /* depends on a trainable weight */
    const char *name;            /* C identifier of its buffer, unique in the graph */
    Loc loc;                     /* the YAML layer that made it */
    const char *layer;           /* that layer's name, for comments */
    int id;                      /* position in Graph.nodes */

    /* op attributes (meaning per op, see ops.h) */
    int attr;                    /* activation/loss/metric/optimizer kind, input index, ... */
    bool trans_a, trans_b;       /* MATMUL */
    bool from_logits;            /* LOSS, LOSS_GRAD */
    float alpha;                 /* ACTIVATION alpha, DROPOUT_MASK rate */
    float weight;                /* LOSS: loss weight */
    int slot;                    /* LOSS/METRIC: result index; INPUT/TARGET: io index */
    int axis;                    /* CONCAT/SLICE axis of the per-sample shape */
    int steps;                   /* DROPOUT_MASK: repeat one mask over this many time steps (0: none) */
    int64_t start;               /* SLICE: first index along axis */
    struct {
        int kh, kw, sh, sw, dh, dw, pt, pl;  /* window, strides, dilation, padding before */
        int oh, ow;                          /* output size (from Keras's padding rule) */
    } conv;                      /* CONV*, POOL*: 1-D ops use kh = sh = dh = 1, pt = 0 */
    struct {
        int kind;                /* NNRT_SIMPLE_RNN, NNRT_LSTM, NNRT_GRU */
        int units, activation, recurrent_activation;  /* NNRT_RNN_* activations */
        bool go_backwards, reset_after, has_bias, has_rmask;
        bool has_state;          /* RNN, RNN_GRAD: initial state sources h0 (and c0 for LSTM) */
        bool state_grad;         /* RNN_GRAD: RNN_STATE_GRAD outputs dh0 (and dc0) end its sources */
        int which;               /* RNN_OUTPUT, RNN_GRAD: 0 last h, 1 every h, 2 LSTM's last c (NnrtRnnWhich) */
    } rnn;                       /* RNN* */
    const CustomFn *custom;      /* ACTIVATION(_GRAD), LOSS(_GRAD), PENALTY(_GRAD), METRIC: a custom function */
    bool has_gamma, has_beta, has_bias;  /* BN_*: which optional sources are present (has_bias: BN_FOLD) */
    float eps, momentum;         /* BN_* */
    size_t workspace;            /* floats of scratch the kernel needs (im2col), planned */
    size_t workspace_offset;

    Storage storage;
    Weight *w;                   /* ST_WEIGHT / ST_GRAD: the weight */
    size_t offset;               /* ST_ARENA: floats into the arena (memory plan) */
    Node *grad;                  /* autodiff: the gradient of this node so far */
    int last_use;                /* memory plan: id of the last reader */
    bool is_output;              /* a model output (copied out by predict) */
    bool inplace;                /* memory plan: writes over src[0]'s buffer, which dies here */
    Node *epilogue;              /* MATMUL, CONV: the bias(+activation) node computed in its GEMM's epilogue */
    bool in_epilogue;            /* that node: emitted by its producer, block by block (or by the BN_GRAD naming it) */
    Node *side[2];               /* BN_GRAD: the gamma and beta gradient nodes it writes too (or NULL) */
    bool relu_grad;              /* POOL_GRAD (max): relu's gradient of its input taken in (pass_fuse) */
    bool sgd_step;               /* MATMUL, a weight's gradient: with plain SGD, a one-chunk train step takes
                                    the step in the GEMM, w -= lr x^T dy, and stores no gradient (pass_fuse_sgd) */
    bool backward;               /* made by autodiff */
};

typedef struct {
    Arena *arena;
    const char *mode;            /* "train" or "infer" */
    bool training;               /* dropout active, batch statistics */
    Node **nodes;
    int nnodes, cap;
    WeightSet *weights;          /* shared by the graphs of one model */
    size_t max_batch;            /* batched buffers hold this many samples */
    int64_t max_timesteps;       /* the variable time axis's compiled maximum (0: none) */
    int nlosses, nmetrics;       /* ST_SCALAR slots */
    StrMap names;                /* node names in use */
    bool (*reserved)(const char *name);  /* names the backend keeps for itself (may be NULL) */
    size_t arena_floats;         /* planned arena size for max_batch rows */
    size_t naive_floats;         /* sum of all arena buffers, for --report */
} Graph;

Graph *graph_new(Arena *a, const char *mode, bool training, WeightSet *ws, size_t max_batch);
size_t node_floats(const Graph *g, const Node *n);   /* buffer size at max_batch */
Node  *node_new(Graph *g, OpKind op, int nsrc, Node *const *src);  /* shape by the op's rule */
Node  *node1(Graph *g, OpKind op, Node *a);
Node  *node2(Graph *g, OpKind op, Node *a, Node *b);
void   node_infer_shape(Graph *g, Node *n);   /* and vtime, from the sources */
bool   node_keeps_time(const Graph *g, const Node *n);  /* n's vtime by its sources and shape */
int64_t shape_size(const Shape *s);
/* n per sample as a matrix: rows prod(dims[:-1]), cols the last axis (1 for a
 * scalar); span: prod(dims[axis:]), the floats of one row cut at axis */
int64_t node_rows(const Node *n);
int64_t node_cols(const Node *n);
int64_t node_span(const Node *n, int axis);
bool   act_has_alpha(int kind);               /* an activation with an alpha argument (elu, leaky_relu) */
bool   shape_equal(const Shape *a, const Shape *b);
const char *shape_str(Arena *a, const Shape *s, bool batched);   /* "(B,28,28)" */
const char *node_shape_str(Arena *a, const Node *n);             /* "(B,T<=50,1)" on the variable time axis */
const char *graph_unique_name(Graph *g, const char *base);

/* ---- cquote.c: input text written into generated C ---------------------- */

#define C_NAME_MAX 128           /* longest identifier nncc writes or accepts for the API prefix */

const char *c_literal(Arena *a, const char *s);        /* "..." with \ " ? controls non-ASCII escaped */
const char *c_comment_text(Arena *a, const char *s);   /* safe inside a comment: no end, no splice */
const char *c_char_literal(Arena *a, int c);           /* '...' */
const char *c_double(Arena *a, double v);              /* 0.10000000000000001, NAN, -INFINITY */
const char *c_float(Arena *a, double v);               /* 0.100000001f, NAN, INFINITY */
#define C_NUMBER_MAX 32
void c_double_to(char *buf, double v);                 /* the same into buf[C_NUMBER_MAX] */
void c_float_to(char *buf, double v);
bool c_identifier_ok(const char *s);                   /* [A-Za-z_][A-Za-z0-9_]*, at most C_NAME_MAX */
bool c_name_kept_prefix(const char *name);             /* under _, nnrt, NNRT, Nnrt, glue_, custom_ */
bool c_header_name_ok(const char *s);                  /* [A-Za-z0-9_.+-]+: fits #include "..." */
/* taken: the names already in use (the caller's set and the backend's reserved words) */
typedef bool (*CNameTaken)(const char *name, const void *ctx);
const char *c_name_unique(Arena *a, const char *base, CNameTaken taken, const void *ctx);

/* ---- The compilation unit the backend consumes ------------------------- */

typedef enum { SCHEDULE_CONSTANT, SCHEDULE_EXPONENTIAL, SCHEDULE_PIECEWISE } ScheduleKind;

/* A Keras optimizer: its class, arguments (Keras defaults filled in),
 * gradient clipping and learning-rate schedule. */
typedef struct {
    OptimizerKind kind;
    double learning_rate, momentum, beta_1, beta_2, epsilon, rho, weight_decay, initial_accumulator_value;
    bool nesterov, centered, amsgrad;
    double clipvalue, clipnorm, global_clipnorm;  /* 0: off */
    struct {
        ScheduleKind kind;
        double decay_steps, decay_rate;          /* exponential: lr * rate^(step / decay_steps) */
        bool staircase;
        double boundaries[16], values[17];       /* piecewise constant */
        int nboundaries;
    } schedule;
} OptimizerSpec;

/* The state slots an optimizer keeps per trainable float, with the names
 * tf.keras gives them ("m", "v", "momentum", ...); returns the count. */
int optimizer_slots(const OptimizerSpec *o, const char *names[3]);

/* Where `nncc train` reads data (mirrors NnrtDataSource). */
typedef struct {
    int format;                  /* NNRT_DATA_* */
    const char *x, *y;           /* idx/npy: paths, resolved; csv: column groups */
    double scale;
    const char *path;            /* csv: the file, resolved */
    int header, skip_rows, standardize;
    char delimiter;
    double split[3];
    uint64_t seed;
    int n_steps, ahead, count, seq2seq, target_start, target_stride;  /* time_series */
    int classes[64], num_classes, binary, binary_class;                /* label filters */
} DataSpec;

typedef struct {
    int epochs;
    const char *freeze[64];
    int num_freeze;
    double learning_rate;        /* 0: the compiled one */
} PhaseSpec;

/* Keras callbacks (mirrors NnrtCallbacks of the runtime). mode: 0 auto, 1 min, 2 max. */
typedef struct {
    struct {
        bool enabled, save_best_only, save_weights_only;
        const char *filepath, *monitor;
        int mode;
    } checkpoint;
    struct {
        bool enabled, restore_best_weights;
        const char *monitor;
        int patience, mode, start_from_epoch;
        double min_delta, baseline;  /* baseline NAN: none */
    } early_stopping;
    struct {
        bool enabled;
        const char *monitor;
        double factor, min_delta, min_lr;
        int patience, cooldown, mode;
    } reduce_lr;
    struct {
        bool enabled, append;
        const char *filename;
        char separator;
    } csv_logger;
    bool terminate_on_nan;
} CallbackSpec;

typedef struct {
    bool present;
    CallbackSpec callbacks;
    long train_limit;
    const char *weights_from;    /* resolved path, or NULL */
    PhaseSpec phases[8];
    int num_phases;
    DataSpec train, test, validation;
    long split_first;
    double split_last;
    int epochs;
    long batch_size;
    bool shuffle;
    uint64_t seed;
} FitSpec;

typedef struct {
    const char *name;            /* Keras name */
    const char *buffer;          /* node name in the graphs */
    Shape shape;                 /* per sample; dim[0] at its maximum when vtime */
    bool vtime;                  /* leads with the variable time axis */
} IoSpec;

typedef struct {
    const char *name;            /* C prefix of the API */
    const char *source;          /* model file */
    size_t max_batch;
    int64_t max_timesteps;       /* the variable time axis's maximum (0: every axis fixed) */
    bool inference_only;
    IoSpec inputs[16], outputs[16];
    int ninputs, noutputs;
    bool target_sparse[16];      /* per output */
    int64_t target_size[16];
    const char *metric_names[32];/* Keras progress names, in result order after the losses */
    int nmetrics;
    const char **layer_names;    /* every layer, Keras order, for HDF5 layer_names */
    int nlayers;
    WeightSet *weights;
    Graph *infer, *train;        /* train is NULL when inference_only */
    OptimizerSpec optimizer;
    FitSpec fit;
    const char *model_config;    /* Keras's JSON of the architecture that P_save writes, or NULL */
} Program;

/* ---- ops.c: per-op shape and gradient rules ----------------------------- */

typedef struct {
    const char *name;
    int arity;                   /* -1: variadic */
    void (*shape)(Graph *g, Node *n);
    void (*grad)(Graph *g, Node *n, Node *dy);   /* adds gradients of n's sources */
} OpInfo;

extern const OpInfo op_info[OP_COUNT];

/* Helpers the grad rules share with autodiff. */
void ir_accumulate_grad(Graph *g, Node *x, Node *dx);
/* A kernel that writes weight w's gradient as a side effect (RNN_GRAD). */
void ir_weight_grad_by(Graph *g, Node *w, Node *producer);

/* ---- autodiff.c: append the backward pass and the optimizer updates ---- */

/* Requires: forward nodes with LOSS roots. Appends gradient nodes (reverse
 * topological order) and one UPDATE node per trainable weight. */
void ir_autodiff(Graph *g, int optimizer);

/* ---- verify.c: structural invariants, run between passes --------------- */

/* Aborts (internal error) on a broken graph: sources before users, arity,
 * shapes re-inferred equal, unique names, storage consistent. */
void ir_verify(const Graph *g);

/* ---- print.c: --emit-ir ------------------------------------------------- */

void ir_print(FILE *out, const Graph *g);

#endif /* NNCC_IR_H */
