/* compiler.h — nncc's front half and driver.
 *
 * Pipeline (main.c lists it as straight-line calls):
 *   yaml.c     read the model file into a tree of YNodes, each with its line and column
 *   layers.c   the Keras layer classes: arguments, defaults, lowering to IR
 *   model.c    walk the tree into a Model (inputs, layers, compile, fit), every
 *              user mistake reported at its location
 *   lower.c    Model -> Program: the inference graph and the training graph
 *              (forward, loss, autodiff, updates), names, shapes, weights
 *   pass_fold_bn.c  BatchNormalization folded into the Conv/Dense before it (inference graph)
 *   pass_cse.c   common subexpressions computed once
 *   pass_fuse.c  bias or scale-and-shift + activation in one pass; dead-code elimination
 *   pass_plan.c  memory planning of each graph into one arena
 *   (backends/c)  Program -> P.c / P.h / driver
 *   build.c    run the system C compiler and the driver for train/evaluate/...
 *   summary.c  Keras's model.summary() table
 *
 * User errors are values: a function that finds one reports it through
 * diag.c (FILE:LINE:COL: error: ..., the source line, a caret, a hint) and
 * returns -1; only main turns that into exit status 1. Internal bugs assert.
 */
#ifndef NNCC_COMPILER_H
#define NNCC_COMPILER_H

#include "ir.h"

/* ---- diag.c: located errors ---------------------------------------------- */

void diag_add_source(const char *file, const char *text);  /* so errors can quote lines */
void diag_reset(void);                                     /* forget them (their arena is freed) */
int  error_at(Loc loc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));  /* returns -1 */
void hint(const char *fmt, ...) __attribute__((format(printf, 1, 2)));  /* after an error */
int  error_plain(const char *fmt, ...) __attribute__((format(printf, 1, 2)));       /* returns -1 */
void warning_at(Loc loc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void diag_set_quiet(bool quiet);
bool diag_quiet(void);

/* ---- limits.c: caps on what a model may make nncc build ------------------ */

/* Each cap is checked where its quantity grows; exceeding one is a user
 * error naming the option that raises it. */
typedef struct {
    int64_t model_bytes;         /* --max-model-bytes: the model file's YAML (a Keras file's, converted) */
    int64_t layers;              /* --max-layers: layers after repeat/if/blocks expansion */
    int64_t weights;             /* --max-weights: weight values in all */
    int64_t arena_bytes;         /* --max-arena-bytes: one graph's planned activation arena */
    int64_t code_bytes;          /* --max-code-bytes: each generated C file */
} Limits;

extern const Limits limits_default;
void limits_set(const Limits *l);            /* main, before compiling */
const Limits *limits(void);                  /* the defaults unless set */
/* Overflow-checked size arithmetic: false when a factor is negative or the
 * product does not fit int64. */
bool size_mul(int64_t a, int64_t b, int64_t *out);
bool shape_elements(const Shape *s, int64_t batch, int64_t *out);   /* batch * prod(dims) */
/* The runtime's kernels take sizes as int: element counts, batch included, must fit. */
bool fits_c_int(int64_t elements);

/* ---- yaml.c: the YAML tree ------------------------------------------------ */

typedef enum { Y_SCALAR, Y_SEQ, Y_MAP } YKind;

typedef struct YNode YNode;
struct YNode {
    YKind kind;
    Loc loc;
    const char *text;            /* scalar value */
    bool plain;                  /* scalar was unquoted (so `null`, `true` are keywords) */
    YNode **items;               /* seq: values; map: key, value, key, value ... */
    int n;                       /* seq: items; map: pairs */
    size_t expanded;             /* nodes in it, each alias counted as a copy of its anchor; 0 while open */
    size_t expanded_bytes;       /* its scalars' text, counted the same way */
};

/* Parse path; on a syntax error report it located and return NULL. */
YNode *yaml_load(Arena *a, const char *path);
YNode *yaml_load_string(Arena *a, const char *name, const char *text);
YNode *ymap_get(const YNode *map, const char *key);        /* NULL if absent */
YNode *ymap_key(const YNode *map, int i);
YNode *ymap_value(const YNode *map, int i);
bool   yscalar_is_null(const YNode *n);
const char *ykind_name(YKind k);

/* ---- layers.c: Keras layer classes ---------------------------------------- */

typedef enum {
    ARG_INT,                     /* integer */
    ARG_FLOAT,                   /* number */
    ARG_BOOL,
    ARG_STRING,
    ARG_SHAPE,                   /* list of integers (null allowed: variable axis) */
    ARG_ACTIVATION,              /* name or {leaky_relu: {alpha: ..}} */
    ARG_INITIALIZER,
    ARG_REGULARIZER,             /* null, {l1: x}, {l2: x}, {l1_l2: {l1:, l2:}} */
    ARG_CONSTRAINT,
    ARG_NODE,                    /* kept as YAML (TimeDistributed's layer) */
} ArgType;

typedef struct {
    const char *name;
    ArgType type;
    const char *dflt;            /* Keras default, as YAML text; NULL: required */
} ArgSpec;

typedef struct {
    ActKind kind;
    float alpha;
    const CustomFn *custom;      /* ACT_CUSTOM */
} Activation;

typedef struct {
    double l1, l2;
    const CustomFn *custom;
} Regularizer;

typedef struct {
    const char *name;            /* "" for none */
    double a, b, rate;
    int axis;
    const CustomFn *custom;
} Constraint;

typedef struct {
    const ArgSpec *spec;
    Loc loc;                     /* where given, or the layer's location for defaults */
    bool given;
    long i;
    double f;
    bool b;
    const char *s;
    Shape shape;
    Activation act;
    InitSpec init;
    Regularizer reg;
    Constraint con;
    const YNode *node;
} ArgValue;

typedef struct Layer Layer;
typedef struct LayerClass LayerClass;
typedef struct Lower Lower;

struct LayerClass {
    const char *name;            /* Keras class name: "Dense" */
    const char *prefix;          /* default-name stem: "dense" */
    const ArgSpec *args;         /* NULL-terminated */
    int min_inputs, max_inputs;
    /* Build l's IR from its inputs; set *out. Report errors at l->loc. */
    int (*lower)(Lower *lw, Layer *l, Node *const *in, int nin, Node **out);
};

struct Layer {
    const LayerClass *cls;
    const char *name;            /* unique; inside a block instance "residual_unit_3/conv2d" */
    const char *group;           /* its HDF5 layer group: the top-level instance, or its own name */
    const char *local;           /* weight-name prefix within the group ("conv2d"), NULL when group == name */
    const char *block_class;     /* the top-level block it belongs to, for the summary (NULL: none) */
    const char *binds_as;        /* the last layer of an instance also answers to the instance's name */
    Loc loc;                     /* the class name key in the YAML */
    ArgValue *args;              /* parallel to cls->args */
    const char **input_names;    /* as written; NULL: the previous item */
    Loc *input_locs;
    int ninputs;
    const char **state_names;    /* initial_state of a recurrent layer: h0 (and c0) as written */
    Loc *state_locs;
    int nstates;
    bool trainable;
    /* filled by lowering of the inference graph, for summary and --report */
    Shape out_shape;
    bool out_vtime;              /* out_shape leads with the variable time axis (None) */
    int64_t params, trainable_params;
    const char **inbound;        /* resolved input names (functional summary) */
    int ninbound;
};

const LayerClass *layer_class_find(const char *name);
const LayerClass *const *layer_classes(int *count);
const ArgValue *layer_arg(const Layer *l, const char *name);   /* asserts the name exists */
int  parse_arg(Arena *a, const ArgSpec *spec, const YNode *v, ArgValue *out);
int  parse_activation(const YNode *v, Activation *out);
bool activation_find(const char *name, ActKind *out);
/* The model's custom: functions, which argument parsing resolves names against. */
void custom_functions_use(const CustomFn *const *list, int n);
const CustomFn *custom_find(const char *name, const char *role);
int  parse_initializer(const YNode *v, InitSpec *out);

/* ---- blocks.c: user-defined layers, repeat and if (model-format.md §2) ---------- */

typedef struct Model Model;

/* Expand the `layers:` list (blocks from the `blocks:` map, may be NULL)
 * into m->layers: every layer named, scoped and connected by full name. */
int expand_layers(Arena *a, Model *m, const YNode *layers, const YNode *blocks);
/* Evaluate a `cond` expression: integers, $params, + - * / %, comparisons, and/or/not. */
int eval_cond(const YNode *cond, const YNode *params, long *out);
/* Parse one `- Class: {...}` item into l (model.c); the name stays NULL unless given. */
int parse_layer(Arena *a, Model *m, const YNode *item, Layer *l);

/* ---- model.c: the model file as a Model ----------------------------------- */

typedef struct {
    const char *name;
    Shape shape;                 /* per sample; a variable time axis holds its maximum */
    bool int32;
    bool vtime;                  /* shape: [null, ...]: the time axis's length is chosen per call */
    int64_t max_timesteps;       /* its maximum as given (max_timesteps:), else 0 */
    Loc loc, null_loc;
} ModelInput;

typedef struct {
    bool given;
    LossKind kind;
    const CustomFn *custom;      /* LOSS_CUSTOM */
    bool from_logits;            /* the output is logits (Keras from_logits=True) */
    float delta;                 /* huber */
    float weight;
    Loc loc;
} OutputLoss;

struct Model {
    const char *file;            /* as given on the command line */
    const char *dir;             /* its folder, for relative data paths */
    const char *name;
    Loc name_loc;
    ModelInput inputs[16];
    int ninputs;
    Layer **layers;
    int nlayers;
    const char *outputs[16];
    Loc output_locs[16];
    int noutputs;                /* 0: the last layer */
    bool has_compile;
    Loc compile_loc;
    OutputLoss losses[16];       /* per output, in output order */
    const CustomFn *customs[64]; /* the custom: section */
    int ncustoms;
    const char *metric_names[16];/* compile.metrics as written ("accuracy") */
    const CustomFn *metric_custom[16];
    int metric_output[16];       /* the output it applies to, -1: every output */
    Loc metric_locs[16];
    int nmetrics;
    OptimizerSpec optimizer;
    FitSpec fit;
    Loc fit_loc;
    StrMap *defaults;            /* an argument's Keras default text -> its YAML, parsed once per model */
};

int model_parse(Arena *a, const char *path, Model *m);

/* ---- keras_h5.c: Keras .h5 models as YAML ------------------------------------ */

bool keras_model_file(const char *path);                 /* by its extension: .h5, .hdf5, .keras */
/* The model of a Keras full-model .h5 as nncc YAML text, or a message naming the file. */
int keras_h5_to_yaml(Arena *a, const char *path, char **yaml);

/* ---- keras_json.c: the model as Keras's model_config (for P_save) -------------- */

/* tf.keras 2.x's model_config JSON of a lowered model, or NULL when Keras's
 * JSON cannot hold it (blocks, custom functions, initial_state). */
const char *keras_model_config(Arena *a, const Model *m);
const char *closest_name(const char *given, const char *const *candidates, int n);  /* did you mean */

/* ---- lower.c: Model -> Program --------------------------------------------- */

typedef struct {
    const char *prefix;          /* --prefix, default the model name */
    size_t max_batch;            /* --max-batch, default fit.batch_size or 32 */
    bool inference_only;
} CompileOptions;

int lower_model(Arena *a, Model *m, const CompileOptions *opt, Program *p);

/* Layer lowering helpers (layers.c calls them) */
struct Lower {
    Arena *arena;
    Graph *g;
    Model *model;
    Node *more[4];               /* a layer's outputs after the first (return_state), as name[1], name[2] */
    int nmore;
};
Node *lower_weight(Lower *lw, Layer *l, const char *name, const Shape *shape, const InitSpec *init,
                   bool trainable);
Node *lower_node(Lower *lw, Layer *l, OpKind op, int nsrc, Node *const *src, const char *suffix);
Node *lower_activation(Lower *lw, Layer *l, Node *x, Activation act, const char *name);
void  layer_weight_options(Node *w, const Layer *l, const char *regularizer, const char *constraint);
/* Dense's and the convolutions' tail: bias (use_bias, `units` values), then the activation; sets *out. */
int   lower_bias_activation(Lower *lw, Layer *l, Node *y, int64_t units, Node **out);

/* ---- layers_image.c: convolution, pooling, normalization, merges ------------- */

int lower_conv1d(Lower *lw, Layer *l, Node *const *in, int nin, Node **out);
int lower_conv2d(Lower *lw, Layer *l, Node *const *in, int nin, Node **out);
int lower_depthwise_conv2d(Lower *lw, Layer *l, Node *const *in, int nin, Node **out);
int lower_max_pool1d(Lower *lw, Layer *l, Node *const *in, int nin, Node **out);
int lower_max_pool2d(Lower *lw, Layer *l, Node *const *in, int nin, Node **out);
int lower_avg_pool1d(Lower *lw, Layer *l, Node *const *in, int nin, Node **out);
int lower_avg_pool2d(Lower *lw, Layer *l, Node *const *in, int nin, Node **out);
int lower_global_avg_pool1d(Lower *lw, Layer *l, Node *const *in, int nin, Node **out);
int lower_global_avg_pool2d(Lower *lw, Layer *l, Node *const *in, int nin, Node **out);
int lower_global_max_pool1d(Lower *lw, Layer *l, Node *const *in, int nin, Node **out);
int lower_global_max_pool2d(Lower *lw, Layer *l, Node *const *in, int nin, Node **out);
int lower_batch_normalization(Lower *lw, Layer *l, Node *const *in, int nin, Node **out);
int lower_add(Lower *lw, Layer *l, Node *const *in, int nin, Node **out);
int lower_subtract(Lower *lw, Layer *l, Node *const *in, int nin, Node **out);
int lower_multiply(Lower *lw, Layer *l, Node *const *in, int nin, Node **out);
int lower_average(Lower *lw, Layer *l, Node *const *in, int nin, Node **out);
int lower_maximum(Lower *lw, Layer *l, Node *const *in, int nin, Node **out);
int lower_concatenate(Lower *lw, Layer *l, Node *const *in, int nin, Node **out);
int lower_identity(Lower *lw, Layer *l, Node *const *in, int nin, Node **out);

/* ---- layers_seq.c: recurrent layers and TimeDistributed ---------------------- */

int lower_simple_rnn(Lower *lw, Layer *l, Node *const *in, int nin, Node **out);
int lower_lstm(Lower *lw, Layer *l, Node *const *in, int nin, Node **out);
int lower_gru(Lower *lw, Layer *l, Node *const *in, int nin, Node **out);
int lower_time_distributed(Lower *lw, Layer *l, Node *const *in, int nin, Node **out);
size_t conv_workspace(const Node *conv, const Node *x, size_t max_batch);   /* im2col floats */

/* ---- chooks.c --------------------------------------------------------------- */

/* With libclang: every c_function/c_gradient of m's custom functions is
 * defined in file with the signature its role needs, else a located error. */
int check_c_hooks(const char *file, const Model *m);

/* ---- pass_fold_bn.c -------------------------------------------------------- */

/* Requires: a verified inference graph, before pass_fuse. Each BN_INFER on a
 * Conv or Dense output (through its BIAS_ADD or not) becomes BN_FOLD (the
 * per-channel scale and shift, bias included) + SCALE_SHIFT of the layer's
 * product. Returns the number of BatchNormalizations folded. */
int pass_fold_bn(Graph *g, bool report);

/* ---- pass_cse.c ------------------------------------------------------------ */

/* Requires: a verified graph, before pass_fuse (whose dead-code elimination
 * removes the merged nodes). Pure nodes with the same op, sources, shape
 * and attributes become one; returns how many were merged. */
int pass_cse(Graph *g, bool report);

/* ---- pass_fuse.c ----------------------------------------------------------- */

/* Requires: a verified graph. Fuses BIAS_ADD + elementwise ACTIVATION into
 * BIAS_ACTIVATION (and a linear SCALE_SHIFT + ACTIVATION into SCALE_SHIFT)
 * where the backward pass does not need x + b, then removes dead nodes.
 * Returns the number of fusions. */
int pass_fuse(Graph *g, bool report);
int pass_fuse_sgd(Graph *g, const OptimizerSpec *o, bool report);

/* ---- pass_plan.c ----------------------------------------------------------- */

/* Requires: a verified graph with storage decided. Assigns arena offsets so
 * that buffers alive at the same time never overlap (greedy first fit over
 * live ranges); sets g->arena_floats and g->naive_floats. */
void pass_plan_memory(Graph *g);

/* ---- summary.c -------------------------------------------------------------- */

void print_summary(FILE *out, const Model *m, const Program *p);

/* ---- build.c: the system C compiler and the driver ------------------------- */

typedef struct {
    const char *cc;              /* $CC or the compiler nncc was built with */
    const char *include_dir;     /* where nnrt.h is */
    const char *lib_dir;         /* where libnncc_rt is */
    const char *cflags;          /* $CFLAGS (NULL: unset), after nncc's own flags */
    const char *ldflags;         /* $LDFLAGS (NULL: unset), before the runtime */
    bool march_native;           /* --march-native */
} Toolchain;

int toolchain_find(Toolchain *tc, const char *argv0);
/* Compile srcs into the executable exe (quiet unless it fails); exe.cmd
 * records the command. */
int build_executable(const Toolchain *tc, const char *const *srcs, int nsrcs, const char *exe);
/* Whether exe was built by another command than build_executable would run
 * now (another $CC, $CFLAGS, $LDFLAGS or option), or by an unknown one. */
bool build_is_stale(const Toolchain *tc, const char *const *srcs, int nsrcs, const char *exe);
/* Run exe with args, inheriting stdio; returns its exit status (2 if it dies). */
int run_program(const char *exe, char *const args[]);
int make_dirs(const char *path);

/* ---- expr.c: math expressions for Keras custom functions (model-format.md §2) ---- */

/* X(ENUM, operator, function name, arity): the nodes of an expression tree.
 * Values are floats, elementwise over the variables; a comparison is 1 or 0;
 * SUM and MEAN reduce their body over all elements and are only ever the root. */
#define EXPR_TABLE(X)                                                           \
    X(NUM, NULL, NULL, 0)          /* a constant */                             \
    X(VAR, NULL, NULL, 0)          /* a variable: z, y_true, w, ... */          \
    X(NEG, "-", NULL, 1)           /* -a */                                     \
    X(ADD, "+", NULL, 2)           /* a + b */                                  \
    X(SUB, "-", NULL, 2)           /* a - b */                                  \
    X(MUL, "*", NULL, 2)           /* a * b */                                  \
    X(DIV, "/", NULL, 2)           /* a / b */                                  \
    X(POW, "^", "pow", 2)          /* a ^ b, a ** b, pow(a, b) */               \
    X(LT, "<", NULL, 2)            /* a < b ? 1 : 0, and so on */               \
    X(LE, "<=", NULL, 2)                                                        \
    X(GT, ">", NULL, 2)                                                         \
    X(GE, ">=", NULL, 2)                                                        \
    X(EQ, "==", NULL, 2)                                                        \
    X(NE, "!=", NULL, 2)                                                        \
    X(COND, "?", "where", 3)       /* a != 0 ? b : c, where(a, b, c) */         \
    X(EXP, NULL, "exp", 1)                                                      \
    X(LOG, NULL, "log", 1)                                                      \
    X(SQRT, NULL, "sqrt", 1)                                                    \
    X(ABS, NULL, "abs", 1)                                                      \
    X(SIGN, NULL, "sign", 1)       /* -1, 0 or 1: the derivative of abs */      \
    X(SQUARE, NULL, "square", 1)   /* a * a */                                  \
    X(TANH, NULL, "tanh", 1)                                                    \
    X(SIGMOID, NULL, "sigmoid", 1) /* 1 / (1 + exp(-a)) */                      \
    X(SOFTPLUS, NULL, "softplus", 1) /* log(1 + exp(a)), computed stably */     \
    X(RELU, NULL, "relu", 1)       /* max(a, 0) */                              \
    X(SIN, NULL, "sin", 1)                                                      \
    X(COS, NULL, "cos", 1)                                                      \
    X(MAX, NULL, "max", 2)         /* ties go to a, for the derivative */       \
    X(MIN, NULL, "min", 2)                                                      \
    X(CLIP, NULL, "clip", 3)       /* min(max(a, lo), hi) */                    \
    X(FLOOR, NULL, "floor", 1)     /* piecewise constant: no derivative */      \
    X(CEIL, NULL, "ceil", 1)                                                    \
    X(ROUND, NULL, "round", 1)     /* half to even, as tf.round */              \
    X(SUM, NULL, "sum", 1)         /* sum of a over all elements */             \
    X(MEAN, NULL, "mean", 1)       /* mean of a over all elements */

typedef enum {
#define X(e, op, fn, n) EX_##e,
    EXPR_TABLE(X)
#undef X
    EX_COUNT
} ExprKind;

/* Trees are immutable once built and may share subtrees (a `where:`
 * definition used twice is one subtree). */
typedef struct Expr Expr;
struct Expr {
    ExprKind kind;
    double num;                  /* EX_NUM: the value */
    int var;                     /* EX_VAR: index into ExprEnv.vars */
    const char *name;            /* EX_VAR: the name as written */
    Expr *arg[3];                /* the operands, EXPR_TABLE arity of them */
    Loc loc;                     /* its token in the YAML: operator, function name, number, name */
};

typedef enum {
    EXPR_ELEMENTWISE,            /* no sum/mean anywhere: activations, constraints */
    EXPR_MAY_REDUCE,             /* elementwise, or a sum/mean at the root: losses */
    EXPR_MUST_REDUCE,            /* a sum/mean at the root: regularizers, metrics */
} ExprTop;

typedef struct {
    const char *what;            /* "activation", "loss", ...: named in messages */
    const char *const *vars;     /* the variables, {"y_true", "y_pred"}; EX_VAR.var indexes this */
    int nvars;
    const YNode *where;          /* the `where:` map, name -> expression; NULL: none */
    ExprTop top;
    int *time_step;              /* non-NULL: variables may be indexed [:, k] (one time step of a
                                    (batch, steps, features) value); k is stored here (INT_MIN: none) */
} ExprEnv;

/* Parse text, written at loc (one column further when quoted; exact for
 * one-line scalars without escapes), substituting env->where definitions (a
 * cycle is an error). Simplified as it is built; scaled and added reductions
 * are lifted to the root (0.01 * sum(a) + sum(b) is sum(0.01 * a + b)).
 * NULL after a located error. */
Expr *expr_parse(Arena *a, const char *text, Loc loc, bool quoted, const ExprEnv *env);
Expr *expr_parse_node(Arena *a, const YNode *scalar, const ExprEnv *env);  /* text, loc, quoting of a scalar */
/* d e / d vars[var], simplified; e is elementwise (differentiate a reduction's
 * body). NULL after a located error (a piecewise-constant function of var). */
Expr *expr_diff(Arena *a, Expr *e, int var);
/* The body of a root sum/mean, setting *kind to EX_SUM or EX_MEAN; NULL when
 * e is elementwise. d mean(b)/dw = expr_diff(b, w) / (the element count). */
Expr *expr_reduction(const Expr *e, ExprKind *kind);
/* e as one C float expression; names[i] (a primary expression such as "x[i]")
 * stands for vars[i], NULL names: as written. e is elementwise. */
const char *expr_to_c(Arena *a, const Expr *e, const char *const *names);
/* e in double precision at values[i] for vars[i]; a reduction evaluates its
 * body (a reduction over one element). */
double expr_eval(const Expr *e, const double *values);

#endif /* NNCC_COMPILER_H */
