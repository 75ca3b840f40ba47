/* layers.c — the Keras layer classes nncc understands.
 *
 * One table row per class: its Keras name, default-name stem, arguments
 * with Keras's defaults (written as YAML text and parsed by the same code
 * as user values, so a default cannot drift from its type), input arity,
 * and a lowering function that turns the layer into IR nodes. Activations
 * and initializers are parsed here too, against the tables in ir/ops.h and
 * the Keras initializer list below.
 *
 * Adding a layer: one args array, one lower_<layer> function, one row.
 */
#include "compiler.h"
#include "nnrt.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- scalar conversions ------------------------------------------------- */

static int want_scalar(const YNode *v, const char *what)
{
    if (v->kind != Y_SCALAR)
        return error_at(v->loc, "expected %s, found a %s", what, ykind_name(v->kind));
    return 0;
}

/* " for 'units'" when the value has a name, for messages */
static const char *for_name(const char *name)
{
    static char buf[96];
    if (!name)
        return "";
    snprintf(buf, sizeof buf, " for '%s'", name);
    return buf;
}

static int to_long_named(const YNode *v, long *out, const char *name)
{
    if (v->kind != Y_SCALAR)
        return error_at(v->loc, "expected an integer%s, found a %s", for_name(name), ykind_name(v->kind));
    char *end;
    errno = 0;
    long x = strtol(v->text, &end, 10);
    if (!*v->text || *end || errno) {
        error_at(v->loc, "expected an integer%s, found '%s'", for_name(name), v->text);
        return -1;
    }
    *out = x;
    return 0;
}


static int to_double_named(const YNode *v, double *out, const char *name)
{
    if (v->kind != Y_SCALAR)
        return error_at(v->loc, "expected a number%s, found a %s", for_name(name), ykind_name(v->kind));
    char *end;
    errno = 0;
    double x = strtod(v->text, &end);
    if (!*v->text || *end || errno || !isfinite(x)) {
        error_at(v->loc, "expected a number%s, found '%s'", for_name(name), v->text);
        return -1;
    }
    *out = x;
    return 0;
}


static int to_bool(const YNode *v, bool *out, const char *name)
{
    if (v->kind != Y_SCALAR)
        return error_at(v->loc, "expected true or false%s, found a %s", for_name(name), ykind_name(v->kind));
    const char *t = v->text;
    if (!strcmp(t, "true") || !strcmp(t, "True") || !strcmp(t, "TRUE") || !strcmp(t, "yes")) {
        *out = true;
        return 0;
    }
    if (!strcmp(t, "false") || !strcmp(t, "False") || !strcmp(t, "FALSE") || !strcmp(t, "no")) {
        *out = false;
        return 0;
    }
    return error_at(v->loc, "expected true or false%s, found '%s'", for_name(name), t);
}

/* A one-key map {name: {args}} or a bare name: returns the name and args map. */
static int named_form(const YNode *v, const char *what, const char **name, const YNode **args)
{
    *args = NULL;
    if (v->kind == Y_SCALAR) {
        *name = v->text;
        return 0;
    }
    if (v->kind == Y_MAP && v->n == 1) {
        *name = ymap_key(v, 0)->text;
        *args = ymap_value(v, 0);
        if ((*args)->kind != Y_MAP && !yscalar_is_null(*args))
            return error_at((*args)->loc, "the arguments of %s '%s' must be a mapping like {name: value}", what,
                            *name);
        if (yscalar_is_null(*args))
            *args = NULL;
        return 0;
    }
    return error_at(v->loc, "expected %s: a name, or a one-key mapping {name: {arguments}}", what);
}

/* Snake-case comparison so `GlorotUniform` matches `glorot_uniform`. */
static bool name_is(const char *given, const char *snake)
{
    char buf[64];
    size_t n = 0;
    for (const char *p = given; *p && n < sizeof buf - 2; p++) {
        if (*p >= 'A' && *p <= 'Z') {
            if (n > 0 && buf[n - 1] != '_')
                buf[n++] = '_';
            buf[n++] = (char)(*p - 'A' + 'a');
        } else {
            buf[n++] = *p;
        }
    }
    buf[n] = 0;
    return strcmp(buf, snake) == 0 || strcmp(given, snake) == 0;
}

/* Read named numeric arguments {k: v} against names[] into vals[] (defaults kept). */
static int numeric_args(const YNode *args, const char *owner, const char *const *names, double *vals)
{
    if (!args)
        return 0;
    for (int i = 0; i < args->n; i++) {
        const YNode *k = ymap_key(args, i);
        int j = 0;
        while (names[j] && strcmp(names[j], k->text) != 0)
            j++;
        if (!names[j]) {
            error_at(k->loc, "'%s' takes no argument '%s'", owner, k->text);
            char list[256] = "";
            for (int q = 0; names[q]; q++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", q ? ", " : "", names[q]);
            hint("its arguments are: %s", names[0] ? list : "none");
            return -1;
        }
        if (to_double_named(ymap_value(args, i), &vals[j], k->text))
            return -1;
    }
    return 0;
}

/* ---- activations --------------------------------------------------------- */

bool activation_find(const char *name, ActKind *out)
{
    for (int k = 0; k < ACT_COUNT; k++)
        if (strcmp(act_info[k].name, name) == 0) {
            *out = (ActKind)k;
            return true;
        }
    if (!strcmp(name, "silu")) {
        *out = ACT_SWISH;
        return true;
    }
    if (!strcmp(name, "None") || !strcmp(name, "null")) {
        *out = ACT_LINEAR;
        return true;
    }
    return false;
}

/* The model's custom: functions (set by model_parse before the layers). */
static const CustomFn *const *customs;
static int ncustoms;

void custom_functions_use(const CustomFn *const *list, int n)
{
    customs = list;
    ncustoms = n;
}

const CustomFn *custom_find(const char *name, const char *role)
{
    for (int i = 0; i < ncustoms; i++)
        if (!strcmp(customs[i]->name, name) && (!role || !strcmp(customs[i]->role, role)))
            return customs[i];
    return NULL;
}

int parse_activation(const YNode *v, Activation *out)
{
    const char *name;
    const YNode *args;
    if (yscalar_is_null(v)) {
        *out = (Activation){ACT_LINEAR, 0.0f, NULL};
        return 0;
    }
    if (named_form(v, "an activation", &name, &args))
        return -1;
    const CustomFn *cf = custom_find(name, "activation");
    if (cf) {
        *out = (Activation){ACT_CUSTOM, 0.0f, cf};
        return 0;
    }
    if (!activation_find(name, &out->kind)) {
        error_at(v->kind == Y_MAP ? ymap_key(v, 0)->loc : v->loc, "unknown activation '%s'", name);
        const char *names[ACT_COUNT];
        for (int k = 0; k < ACT_COUNT; k++)
            names[k] = act_info[k].name;
        const char *near = closest_name(name, names, ACT_COUNT);
        if (near)
            hint("did you mean '%s'?", near);
        else
            hint("activations: linear, relu, elu, selu, sigmoid, hard_sigmoid, tanh, softmax, softplus, softsign, "
                 "swish, gelu, exponential, leaky_relu");
        return -1;
    }
    double alpha = act_info[out->kind].alpha;
    static const char *const alpha_names[] = {"alpha", NULL}, *const no_names[] = {NULL};
    bool has_alpha = out->kind == ACT_LEAKY_RELU || out->kind == ACT_ELU;
    if (numeric_args(args, name, has_alpha ? alpha_names : no_names, &alpha))
        return -1;
    out->alpha = (float)alpha;
    return 0;
}

/* ---- initializers ---------------------------------------------------------- */

typedef struct {
    const char *name;
    int kind;
    double scale;                /* variance scaling presets */
    int mode, distribution;
    const char *args[4];         /* the Keras arguments it takes */
    double dflt[4];
} InitClass;

static const InitClass init_classes[] = {
    {"zeros", NNRT_INIT_CONSTANT, 0, 0, 0, {NULL}, {0}},
    {"ones", NNRT_INIT_CONSTANT, 0, 0, 0, {NULL}, {1}},
    {"constant", NNRT_INIT_CONSTANT, 0, 0, 0, {"value"}, {0}},
    {"glorot_uniform", NNRT_INIT_VARIANCE_SCALING, 1, NNRT_FAN_AVG, NNRT_DIST_UNIFORM, {NULL}, {0}},
    {"glorot_normal", NNRT_INIT_VARIANCE_SCALING, 1, NNRT_FAN_AVG, NNRT_DIST_TRUNCATED_NORMAL, {NULL}, {0}},
    {"he_normal", NNRT_INIT_VARIANCE_SCALING, 2, NNRT_FAN_IN, NNRT_DIST_TRUNCATED_NORMAL, {NULL}, {0}},
    {"he_uniform", NNRT_INIT_VARIANCE_SCALING, 2, NNRT_FAN_IN, NNRT_DIST_UNIFORM, {NULL}, {0}},
    {"lecun_normal", NNRT_INIT_VARIANCE_SCALING, 1, NNRT_FAN_IN, NNRT_DIST_TRUNCATED_NORMAL, {NULL}, {0}},
    {"lecun_uniform", NNRT_INIT_VARIANCE_SCALING, 1, NNRT_FAN_IN, NNRT_DIST_UNIFORM, {NULL}, {0}},
    {"random_normal", NNRT_INIT_RANDOM_NORMAL, 0, 0, 0, {"mean", "stddev"}, {0, 0.05}},
    {"random_uniform", NNRT_INIT_RANDOM_UNIFORM, 0, 0, 0, {"minval", "maxval"}, {-0.05, 0.05}},
    {"truncated_normal", NNRT_INIT_TRUNCATED_NORMAL, 0, 0, 0, {"mean", "stddev"}, {0, 0.05}},
    {"orthogonal", NNRT_INIT_ORTHOGONAL, 0, 0, 0, {"gain"}, {1}},
    {"variance_scaling", NNRT_INIT_VARIANCE_SCALING, 1, NNRT_FAN_IN, NNRT_DIST_TRUNCATED_NORMAL, {"scale"}, {1}},
};

int parse_initializer(const YNode *v, InitSpec *out)
{
    const char *name;
    const YNode *args;
    if (named_form(v, "an initializer", &name, &args))
        return -1;
    const CustomFn *cf = custom_find(name, "initializer");
    if (cf && !args) {
        *out = (InitSpec){.name = cf->name, .custom = cf};
        return 0;
    }
    const InitClass *c = NULL;
    for (size_t i = 0; i < sizeof init_classes / sizeof init_classes[0]; i++)
        if (name_is(name, init_classes[i].name))
            c = &init_classes[i];
    if (!c) {
        error_at(v->kind == Y_MAP ? ymap_key(v, 0)->loc : v->loc, "unknown initializer '%s'", name);
        const char *names[sizeof init_classes / sizeof init_classes[0]];
        int n = (int)(sizeof init_classes / sizeof init_classes[0]);
        for (int i = 0; i < n; i++)
            names[i] = init_classes[i].name;
        const char *near = closest_name(name, names, n);
        if (near)
            hint("did you mean '%s'?", near);
        else
            hint("initializers: zeros, ones, constant, glorot_uniform, glorot_normal, he_normal, he_uniform, "
                 "lecun_normal, lecun_uniform, random_normal, random_uniform, truncated_normal, orthogonal, "
                 "variance_scaling");
        return -1;
    }
    *out = (InitSpec){.name = c->name, .kind = c->kind, .mode = c->mode, .distribution = c->distribution};
    double vals[4];
    memcpy(vals, c->dflt, sizeof vals);
    if (c->kind == NNRT_INIT_VARIANCE_SCALING && args && !strcmp(c->name, "variance_scaling")) {
        /* scale is numeric; mode and distribution are names */
        vals[0] = 1;
        for (int i = 0; i < args->n; i++) {
            const YNode *k = ymap_key(args, i), *val = ymap_value(args, i);
            if (!strcmp(k->text, "scale")) {
                if (to_double_named(val, &vals[0], "scale"))
                    return -1;
                if (vals[0] <= 0)
                    return error_at(val->loc, "variance_scaling scale must be positive");
            } else if (!strcmp(k->text, "mode")) {
                if (want_scalar(val, "fan_in, fan_out or fan_avg"))
                    return -1;
                if (!strcmp(val->text, "fan_in"))
                    out->mode = NNRT_FAN_IN;
                else if (!strcmp(val->text, "fan_out"))
                    out->mode = NNRT_FAN_OUT;
                else if (!strcmp(val->text, "fan_avg"))
                    out->mode = NNRT_FAN_AVG;
                else
                    return error_at(val->loc, "mode must be fan_in, fan_out or fan_avg, not '%s'", val->text);
            } else if (!strcmp(k->text, "distribution")) {
                if (want_scalar(val, "a distribution"))
                    return -1;
                if (!strcmp(val->text, "truncated_normal") || !strcmp(val->text, "normal"))
                    out->distribution = NNRT_DIST_TRUNCATED_NORMAL;
                else if (!strcmp(val->text, "untruncated_normal"))
                    out->distribution = NNRT_DIST_UNTRUNCATED_NORMAL;
                else if (!strcmp(val->text, "uniform"))
                    out->distribution = NNRT_DIST_UNIFORM;
                else
                    return error_at(val->loc,
                                    "distribution must be truncated_normal, untruncated_normal or uniform, not '%s'",
                                    val->text);
            } else {
                error_at(k->loc, "'variance_scaling' takes no argument '%s'", k->text);
                hint("its arguments are: scale, mode, distribution");
                return -1;
            }
        }
    } else if (numeric_args(args, name, c->args, vals)) {
        return -1;
    }
    if (c->kind == NNRT_INIT_VARIANCE_SCALING)
        out->a = c->args[0] ? vals[0] : c->scale;
    else {
        out->a = vals[0];
        out->b = vals[1];
    }
    if ((c->kind == NNRT_INIT_RANDOM_NORMAL || c->kind == NNRT_INIT_TRUNCATED_NORMAL) && out->b <= 0)
        return error_at(v->loc, "stddev must be positive");
    if (c->kind == NNRT_INIT_RANDOM_UNIFORM && out->b <= out->a)
        return error_at(v->loc, "random_uniform needs minval < maxval");
    return 0;
}

/* ---- regularizers and constraints ------------------------------------------ */

static int parse_regularizer(const YNode *v, Regularizer *out)
{
    *out = (Regularizer){0, 0, NULL};
    if (yscalar_is_null(v))
        return 0;
    if (v->kind == Y_SCALAR && custom_find(v->text, "regularizer")) {
        out->custom = custom_find(v->text, "regularizer");
        return 0;
    }
    if (v->kind == Y_SCALAR) {
        /* Keras accepts the bare names with a 0.01 factor */
        if (!strcmp(v->text, "l1"))
            out->l1 = 0.01;
        else if (!strcmp(v->text, "l2"))
            out->l2 = 0.01;
        else if (!strcmp(v->text, "l1_l2"))
            out->l1 = out->l2 = 0.01;
        else
            return error_at(v->loc, "unknown regularizer '%s' (l1, l2, l1_l2)", v->text);
        return 0;
    }
    if (v->kind != Y_MAP || v->n != 1)
        return error_at(v->loc, "expected a regularizer: {l1: 0.01}, {l2: 0.01} or {l1_l2: {l1: .., l2: ..}}");
    const YNode *k = ymap_key(v, 0), *val = ymap_value(v, 0);
    if (!strcmp(k->text, "l1") || !strcmp(k->text, "L1"))
        return val->kind == Y_MAP ? numeric_args(val, "l1", (const char *const[]){"l1", NULL}, &out->l1)
                                  : to_double_named(val, &out->l1, "l1");
    if (!strcmp(k->text, "l2") || !strcmp(k->text, "L2"))
        return val->kind == Y_MAP ? numeric_args(val, "l2", (const char *const[]){"l2", NULL}, &out->l2)
                                  : to_double_named(val, &out->l2, "l2");
    if (!strcmp(k->text, "l1_l2") || !strcmp(k->text, "L1L2")) {
        double vals[2] = {0, 0};
        if (val->kind != Y_MAP && !yscalar_is_null(val))
            return error_at(val->loc, "l1_l2 takes {l1: .., l2: ..}");
        if (numeric_args(yscalar_is_null(val) ? NULL : val, "l1_l2", (const char *const[]){"l1", "l2", NULL},
                         vals))
            return -1;
        out->l1 = vals[0];
        out->l2 = vals[1];
        return 0;
    }
    return error_at(k->loc, "unknown regularizer '%s' (l1, l2, l1_l2)", k->text);
}

static int parse_constraint(const YNode *v, Constraint *out)
{
    *out = (Constraint){.name = ""};
    if (yscalar_is_null(v))
        return 0;
    const char *name;
    const YNode *args;
    if (named_form(v, "a constraint", &name, &args))
        return -1;
    if (custom_find(name, "constraint") && !args) {
        *out = (Constraint){.name = "custom", .custom = custom_find(name, "constraint")};
        return 0;
    }
    static const char *const mm_names[] = {"max_value", "axis", NULL};
    static const char *const un_names[] = {"axis", NULL};
    static const char *const mmn_names[] = {"min_value", "max_value", "rate", "axis", NULL};
    double vals[4] = {0, 0, 0, 0};
    if (name_is(name, "non_neg")) {
        out->name = "non_neg";
        return numeric_args(args, name, (const char *const[]){NULL}, vals);
    }
    if (name_is(name, "max_norm")) {
        vals[0] = 2;
        if (numeric_args(args, name, mm_names, vals))
            return -1;
        *out = (Constraint){"max_norm", 0, vals[0], 0, (int)vals[1], NULL};
        return 0;
    }
    if (name_is(name, "unit_norm")) {
        if (numeric_args(args, name, un_names, vals))
            return -1;
        *out = (Constraint){"unit_norm", 0, 0, 0, (int)vals[0], NULL};
        return 0;
    }
    if (name_is(name, "min_max_norm")) {
        vals[1] = 1;
        vals[2] = 1;
        if (numeric_args(args, name, mmn_names, vals))
            return -1;
        *out = (Constraint){"min_max_norm", vals[0], vals[1], vals[2], (int)vals[3], NULL};
        return 0;
    }
    error_at(v->kind == Y_MAP ? ymap_key(v, 0)->loc : v->loc, "unknown constraint '%s'", name);
    hint("constraints: non_neg, max_norm, unit_norm, min_max_norm");
    return -1;
}

/* ---- argument values ---------------------------------------------------------- */

/* What an argument of spec's type is written as, for messages. */
static const char *arg_expected(const ArgSpec *spec)
{
    switch (spec->type) {
    case ARG_INT:
        return "an integer";
    case ARG_FLOAT:
        return "a number";
    case ARG_BOOL:
        return "true or false";
    case ARG_STRING:  /* Keras's two string arguments; the lowering checks the value */
        return !strcmp(spec->name, "padding")       ? "one of valid, same"
               : !strcmp(spec->name, "data_format") ? "channels_last"
                                                    : "a name";
    case ARG_SHAPE:
        return "a list of integers like [3, 3]";
    case ARG_ACTIVATION:
        return "an activation such as relu";
    case ARG_INITIALIZER:
        return "an initializer such as glorot_uniform";
    case ARG_REGULARIZER:
        return "a regularizer such as {l2: 0.01}";
    case ARG_CONSTRAINT:
        return "a constraint such as max_norm";
    case ARG_NODE:
        return "a layer like {Dense: {units: 10}}";
    }
    return "a value";
}

/* null (also ~ and an empty value, as through an empty anchor) means
 * "none" only where that is the argument's default — no regularizer, no
 * constraint, pooling strides of the pool size — and for activations,
 * where Keras reads None as linear. Everywhere else it is refused here,
 * once for every type, so that no reader below meets a null it did not
 * expect. */
static bool null_allowed(const ArgSpec *spec)
{
    return spec->type == ARG_ACTIVATION || (spec->dflt && !strcmp(spec->dflt, "null"));
}

int parse_arg(Arena *a, const ArgSpec *spec, const YNode *v, ArgValue *out)
{
    out->spec = spec;
    out->loc = v->loc;
    if (yscalar_is_null(v) && !null_allowed(spec))
        return error_at(v->loc, "%s is null; expected %s", spec->name, arg_expected(spec));
    switch (spec->type) {
    case ARG_INT:
        return to_long_named(v, &out->i, spec->name);
    case ARG_FLOAT:
        return to_double_named(v, &out->f, spec->name);
    case ARG_BOOL:
        return to_bool(v, &out->b, spec->name);
    case ARG_STRING:
        if (yscalar_is_null(v)) {  /* a null default */
            out->s = NULL;
            return 0;
        }
        if (want_scalar(v, arg_expected(spec)))
            return -1;
        out->s = arena_strdup(a, v->text);
        return 0;
    case ARG_SHAPE:
        if (yscalar_is_null(v)) {  /* null: not given (pooling strides default to the pool size) */
            out->shape.rank = 0;
            return 0;
        }
        if (v->kind == Y_SCALAR) {
            /* Keras accepts an int where a 1-tuple is meant (kernel_size: 3) */
            char *end;
            long d = strtol(v->text, &end, 10);
            if (!*v->text || *end)
                return error_at(v->loc, "expected a list of integers like [28, 28] for '%s', found '%s'", spec->name,
                                v->text);
            out->shape.rank = 1;
            out->shape.dim[0] = d;
            return 0;
        }
        if (v->kind != Y_SEQ)
            return error_at(v->loc, "expected a list of integers like [28, 28] for '%s', found a %s", spec->name,
                            ykind_name(v->kind));
        if (v->n > MAX_RANK)
            return error_at(v->loc, "at most %d dimensions are supported", MAX_RANK);
        out->shape.rank = v->n;
        for (int i = 0; i < v->n; i++) {
            long d;
            if (yscalar_is_null(v->items[i])) {
                out->shape.dim[i] = -1;  /* variable axis */
                continue;
            }
            if (to_long_named(v->items[i], &d, spec->name))
                return -1;
            out->shape.dim[i] = d;
        }
        return 0;
    case ARG_ACTIVATION:
        return parse_activation(v, &out->act);
    case ARG_INITIALIZER:
        return parse_initializer(v, &out->init);
    case ARG_REGULARIZER:
        return parse_regularizer(v, &out->reg);
    case ARG_CONSTRAINT:
        return parse_constraint(v, &out->con);
    case ARG_NODE:
        if (v->kind != Y_MAP || v->n != 1)
            return error_at(v->loc, "'%s' takes one layer, like {Dense: {units: 10}}", spec->name);
        out->node = v;
        return 0;
    }
    return -1;
}

const ArgValue *layer_arg(const Layer *l, const char *name)
{
    for (int i = 0; l->cls->args[i].name; i++)
        if (strcmp(l->cls->args[i].name, name) == 0)
            return &l->args[i];
    assert(!"layer_arg: no such argument in the class table");
    return NULL;
}

/* ---- lowering -------------------------------------------------------------------- */

static int need_rank(Lower *lw, const Layer *l, const Node *x, int min_rank)
{
    if (x->shape.rank < min_rank)
        return error_at(l->loc, "%s '%s' needs an input with at least %d axis besides the batch; '%s' gives %s",
                        l->cls->name, l->name, min_rank, x->layer ? x->layer : x->name,
                        shape_str(lw->arena, &x->shape, true));
    return 0;
}

/* Regularizer and constraint arguments of a weight. */
void layer_weight_options(Node *w, const Layer *l, const char *reg, const char *con)
{
    const ArgValue *r = layer_arg(l, reg), *c = layer_arg(l, con);
    w->w->l1 = r->reg.l1;
    w->w->l2 = r->reg.l2;
    w->w->custom_reg = r->reg.custom;
    w->w->custom_con = c->con.custom;
    w->w->constraint = c->con.name;
    w->w->con_min = c->con.a;
    w->w->con_max = c->con.b;
    w->w->con_rate = c->con.rate;
    w->w->con_axis = c->con.axis;
}

/* Dense: y = act(x @ kernel + bias), kernel (in, units), applied to the last axis. */
static const ArgSpec dense_args[] = {
    {"units", ARG_INT, NULL},
    {"activation", ARG_ACTIVATION, "linear"},
    {"use_bias", ARG_BOOL, "true"},
    {"kernel_initializer", ARG_INITIALIZER, "glorot_uniform"},
    {"bias_initializer", ARG_INITIALIZER, "zeros"},
    {"kernel_regularizer", ARG_REGULARIZER, "null"},
    {"bias_regularizer", ARG_REGULARIZER, "null"},
    {"activity_regularizer", ARG_REGULARIZER, "null"},
    {"kernel_constraint", ARG_CONSTRAINT, "null"},
    {"bias_constraint", ARG_CONSTRAINT, "null"},
    {NULL, 0, NULL},
};

static int lower_dense(Lower *lw, Layer *l, Node *const *in, int nin, Node **out)
{
    (void)nin;
    Node *x = in[0];
    if (need_rank(lw, l, x, 1))
        return -1;
    const ArgValue *units = layer_arg(l, "units");
    if (units->i <= 0)
        return error_at(units->loc, "units must be a positive integer, not %ld", units->i);
    const ArgValue *act_reg = layer_arg(l, "activity_regularizer");
    if (act_reg->reg.l1 != 0 || act_reg->reg.l2 != 0 || act_reg->reg.custom)
        return error_at(act_reg->loc, "activity_regularizer is not supported yet");
    Shape ks = {2, {x->shape.dim[x->shape.rank - 1], units->i}};
    if (units->i > INT32_MAX / ks.dim[0])
        return error_at(units->loc, "a %lld x %ld kernel has more weights than nncc handles (%d)",
                        (long long)ks.dim[0], units->i, INT32_MAX);
    Node *w = lower_weight(lw, l, "kernel", &ks, &layer_arg(l, "kernel_initializer")->init, l->trainable);
    if (!w)
        return -1;
    layer_weight_options(w, l, "kernel_regularizer", "kernel_constraint");
    Node *y = lower_node(lw, l, OP_MATMUL, 2, (Node *[]){x, w}, "xw");
    return lower_bias_activation(lw, l, y, units->i, out);
}

/* The tail of Dense and the convolutions: the bias (use_bias, `units`
 * values, with its initializer, regularizer and constraint), then the
 * layer's activation. */
int lower_bias_activation(Lower *lw, Layer *l, Node *y, int64_t units, Node **out)
{
    if (layer_arg(l, "use_bias")->b) {
        Shape bs = {1, {units}};
        Node *b = lower_weight(lw, l, "bias", &bs, &layer_arg(l, "bias_initializer")->init, l->trainable);
        if (!b)
            return -1;
        layer_weight_options(b, l, "bias_regularizer", "bias_constraint");
        y = lower_node(lw, l, OP_BIAS_ADD, 2, (Node *[]){y, b}, "z");
    }
    *out = lower_activation(lw, l, y, layer_arg(l, "activation")->act, NULL);
    return 0;
}

/* Flatten: (B, d1, ..., dk) -> (B, d1*...*dk), a view. */
static const ArgSpec flatten_args[] = {{"data_format", ARG_STRING, "channels_last"}, {NULL, 0, NULL}};

static int lower_flatten(Lower *lw, Layer *l, Node *const *in, int nin, Node **out)
{
    (void)nin;
    const ArgValue *df = layer_arg(l, "data_format");
    if (df->s && strcmp(df->s, "channels_last") != 0)
        return error_at(df->loc, "only data_format channels_last is supported");
    Node *y = lower_node(lw, l, OP_RESHAPE, 1, in, NULL);
    y->shape = (Shape){1, {shape_size(&in[0]->shape)}};
    *out = y;
    return 0;
}

/* Reshape: target_shape per sample, one axis may be -1. */
static const ArgSpec reshape_args[] = {{"target_shape", ARG_SHAPE, NULL}, {NULL, 0, NULL}};

static int lower_reshape(Lower *lw, Layer *l, Node *const *in, int nin, Node **out)
{
    (void)nin;
    const ArgValue *t = layer_arg(l, "target_shape");
    Shape s = t->shape;
    int64_t known = 1, total = shape_size(&in[0]->shape);
    int unknown = -1;
    for (int i = 0; i < s.rank; i++) {
        if (s.dim[i] == -1 && unknown < 0)
            unknown = i;
        else if (s.dim[i] <= 0)
            return error_at(t->loc, "target_shape entries must be positive (one may be -1)");
        else
            known *= s.dim[i];
    }
    if (unknown >= 0) {
        if (total % known)
            return error_at(t->loc, "cannot reshape %lld values per sample into %s",
                            (long long)total, shape_str(lw->arena, &s, true));
        s.dim[unknown] = total / known;
    } else if (known != total) {
        error_at(t->loc, "cannot reshape %s (%lld values per sample) into %s (%lld values)",
                 shape_str(lw->arena, &in[0]->shape, true), (long long)total, shape_str(lw->arena, &s, true),
                 (long long)known);
        hint("the target shape must hold as many values as the input; use -1 for one axis to infer it");
        return -1;
    }
    Node *y = lower_node(lw, l, OP_RESHAPE, 1, in, NULL);
    y->shape = s;
    *out = y;
    return 0;
}

/* Activation: y = f(x). */
static const ArgSpec activation_args[] = {{"activation", ARG_ACTIVATION, NULL}, {NULL, 0, NULL}};

static int lower_activation_layer(Lower *lw, Layer *l, Node *const *in, int nin, Node **out)
{
    (void)nin;
    Activation act = layer_arg(l, "activation")->act;
    *out = lower_activation(lw, l, in[0], act, NULL);
    if (*out == in[0]) { /* linear: still a node of its own, so the layer has an output */
        *out = lower_node(lw, l, OP_RESHAPE, 1, in, NULL);
        (*out)->shape = in[0]->shape;
    }
    return 0;
}

/* Dropout (inverted): training y = x * mask, mask in {0, 1/(1-rate)}; inference y = x. */
static const ArgSpec dropout_args[] = {{"rate", ARG_FLOAT, NULL}, {NULL, 0, NULL}};

static int lower_dropout(Lower *lw, Layer *l, Node *const *in, int nin, Node **out)
{
    (void)nin;
    const ArgValue *rate = layer_arg(l, "rate");
    if (rate->f < 0 || rate->f >= 1)
        return error_at(rate->loc, "rate must be in [0, 1), not %g", rate->f);
    if (!lw->g->training || rate->f == 0) {
        Node *y = lower_node(lw, l, OP_RESHAPE, 1, in, NULL);  /* identity view */
        y->shape = in[0]->shape;
        *out = y;
        return 0;
    }
    Node *mask = lower_node(lw, l, OP_DROPOUT_MASK, 0, NULL, "mask");
    mask->shape = in[0]->shape;
    mask->vtime = in[0]->vtime;
    mask->batched = in[0]->batched;
    mask->alpha = (float)rate->f;
    *out = lower_node(lw, l, OP_MUL, 2, (Node *[]){in[0], mask}, NULL);
    return 0;
}

/* Conv1D/Conv2D (layers_image.c): kernel (kh, kw, channels, filters) */
#define CONV_ARGS(one)                                                                      \
    {"filters", ARG_INT, NULL},                                                             \
    {"kernel_size", ARG_SHAPE, NULL},                                                       \
    {"strides", ARG_SHAPE, one},                                                            \
    {"padding", ARG_STRING, "valid"},                                                       \
    {"data_format", ARG_STRING, "channels_last"},                                           \
    {"dilation_rate", ARG_SHAPE, one},                                                      \
    {"groups", ARG_INT, "1"},                                                               \
    {"activation", ARG_ACTIVATION, "linear"},                                               \
    {"use_bias", ARG_BOOL, "true"},                                                         \
    {"kernel_initializer", ARG_INITIALIZER, "glorot_uniform"},                              \
    {"bias_initializer", ARG_INITIALIZER, "zeros"},                                         \
    {"kernel_regularizer", ARG_REGULARIZER, "null"},                                        \
    {"bias_regularizer", ARG_REGULARIZER, "null"},                                          \
    {"activity_regularizer", ARG_REGULARIZER, "null"},                                      \
    {"kernel_constraint", ARG_CONSTRAINT, "null"},                                          \
    {"bias_constraint", ARG_CONSTRAINT, "null"},                                            \
    {NULL, 0, NULL}
static const ArgSpec conv1d_args[] = {CONV_ARGS("1")};
/* DepthwiseConv2D: kernel (kh, kw, channels, depth_multiplier), one filter group per channel */
static const ArgSpec depthwise_conv2d_args[] = {
    {"kernel_size", ARG_SHAPE, NULL},
    {"strides", ARG_SHAPE, "[1, 1]"},
    {"padding", ARG_STRING, "valid"},
    {"depth_multiplier", ARG_INT, "1"},
    {"data_format", ARG_STRING, "channels_last"},
    {"dilation_rate", ARG_SHAPE, "[1, 1]"},
    {"activation", ARG_ACTIVATION, "linear"},
    {"use_bias", ARG_BOOL, "true"},
    {"depthwise_initializer", ARG_INITIALIZER, "glorot_uniform"},
    {"bias_initializer", ARG_INITIALIZER, "zeros"},
    {"depthwise_regularizer", ARG_REGULARIZER, "null"},
    {"bias_regularizer", ARG_REGULARIZER, "null"},
    {"activity_regularizer", ARG_REGULARIZER, "null"},
    {"depthwise_constraint", ARG_CONSTRAINT, "null"},
    {"bias_constraint", ARG_CONSTRAINT, "null"},
    {NULL, 0, NULL}};
static const ArgSpec conv2d_args[] = {CONV_ARGS("[1, 1]")};

/* pooling: strides null means the pool size */
static const ArgSpec pool1d_args[] = {{"pool_size", ARG_SHAPE, "2"}, {"strides", ARG_SHAPE, "null"},
                                      {"padding", ARG_STRING, "valid"}, {"data_format", ARG_STRING, "channels_last"},
                                      {NULL, 0, NULL}};
static const ArgSpec pool2d_args[] = {{"pool_size", ARG_SHAPE, "[2, 2]"}, {"strides", ARG_SHAPE, "null"},
                                      {"padding", ARG_STRING, "valid"}, {"data_format", ARG_STRING, "channels_last"},
                                      {NULL, 0, NULL}};
static const ArgSpec global_pool_args[] = {{"data_format", ARG_STRING, "channels_last"},
                                           {"keepdims", ARG_BOOL, "false"}, {NULL, 0, NULL}};

static const ArgSpec batch_normalization_args[] = {
    {"axis", ARG_INT, "-1"},
    {"momentum", ARG_FLOAT, "0.99"},
    {"epsilon", ARG_FLOAT, "0.001"},
    {"center", ARG_BOOL, "true"},
    {"scale", ARG_BOOL, "true"},
    {"beta_initializer", ARG_INITIALIZER, "zeros"},
    {"gamma_initializer", ARG_INITIALIZER, "ones"},
    {"moving_mean_initializer", ARG_INITIALIZER, "zeros"},
    {"moving_variance_initializer", ARG_INITIALIZER, "ones"},
    {"beta_regularizer", ARG_REGULARIZER, "null"},
    {"gamma_regularizer", ARG_REGULARIZER, "null"},
    {"beta_constraint", ARG_CONSTRAINT, "null"},
    {"gamma_constraint", ARG_CONSTRAINT, "null"},
    {NULL, 0, NULL},
};

static const ArgSpec no_args[] = {{NULL, 0, NULL}};
static const ArgSpec concatenate_args[] = {{"axis", ARG_INT, "-1"}, {NULL, 0, NULL}};

/* SimpleRNN, LSTM, GRU (layers_seq.c) */
#define RNN_ARGS(...)                                                                       \
    {"units", ARG_INT, NULL},                                                               \
    {"activation", ARG_ACTIVATION, "tanh"},                                                 \
    {"use_bias", ARG_BOOL, "true"},                                                         \
    {"kernel_initializer", ARG_INITIALIZER, "glorot_uniform"},                              \
    {"recurrent_initializer", ARG_INITIALIZER, "orthogonal"},                               \
    {"bias_initializer", ARG_INITIALIZER, "zeros"},                                         \
    {"kernel_regularizer", ARG_REGULARIZER, "null"},                                        \
    {"recurrent_regularizer", ARG_REGULARIZER, "null"},                                     \
    {"bias_regularizer", ARG_REGULARIZER, "null"},                                          \
    {"activity_regularizer", ARG_REGULARIZER, "null"},                                      \
    {"kernel_constraint", ARG_CONSTRAINT, "null"},                                          \
    {"recurrent_constraint", ARG_CONSTRAINT, "null"},                                       \
    {"bias_constraint", ARG_CONSTRAINT, "null"},                                            \
    {"dropout", ARG_FLOAT, "0"},                                                            \
    {"recurrent_dropout", ARG_FLOAT, "0"},                                                  \
    {"return_sequences", ARG_BOOL, "false"},                                                \
    {"return_state", ARG_BOOL, "false"},                                                    \
    {"go_backwards", ARG_BOOL, "false"},                                                    \
    {"stateful", ARG_BOOL, "false"},                                                        \
    {"unroll", ARG_BOOL, "false"},                                                          \
    __VA_ARGS__ {NULL, 0, NULL}
static const ArgSpec simple_rnn_args[] = {RNN_ARGS()};
static const ArgSpec lstm_args[] = {RNN_ARGS({"recurrent_activation", ARG_ACTIVATION, "sigmoid"},
                                             {"unit_forget_bias", ARG_BOOL, "true"},
                                             {"implementation", ARG_INT, "2"}, )};
static const ArgSpec gru_args[] = {RNN_ARGS({"recurrent_activation", ARG_ACTIVATION, "sigmoid"},
                                            {"reset_after", ARG_BOOL, "true"}, {"implementation", ARG_INT, "2"}, )};
static const ArgSpec time_distributed_args[] = {{"layer", ARG_NODE, NULL}, {NULL, 0, NULL}};

/* Keras class, default-name stem (Keras counts aliases with their class),
 * arguments, inputs min..max, lowering */
static const LayerClass classes[] = {
    {"Dense", "dense", dense_args, 1, 1, lower_dense},
    {"Flatten", "flatten", flatten_args, 1, 1, lower_flatten},
    {"Reshape", "reshape", reshape_args, 1, 1, lower_reshape},
    {"Activation", "activation", activation_args, 1, 1, lower_activation_layer},
    {"Dropout", "dropout", dropout_args, 1, 1, lower_dropout},
    {"Identity", "identity", no_args, 1, 1, lower_identity},
    {"Conv1D", "conv1d", conv1d_args, 1, 1, lower_conv1d},
    {"Conv2D", "conv2d", conv2d_args, 1, 1, lower_conv2d},
    {"DepthwiseConv2D", "depthwise_conv2d", depthwise_conv2d_args, 1, 1, lower_depthwise_conv2d},
    {"MaxPooling1D", "max_pooling1d", pool1d_args, 1, 1, lower_max_pool1d},
    {"MaxPool1D", "max_pooling1d", pool1d_args, 1, 1, lower_max_pool1d},
    {"MaxPooling2D", "max_pooling2d", pool2d_args, 1, 1, lower_max_pool2d},
    {"MaxPool2D", "max_pooling2d", pool2d_args, 1, 1, lower_max_pool2d},
    {"AveragePooling1D", "average_pooling1d", pool1d_args, 1, 1, lower_avg_pool1d},
    {"AvgPool1D", "average_pooling1d", pool1d_args, 1, 1, lower_avg_pool1d},
    {"AveragePooling2D", "average_pooling2d", pool2d_args, 1, 1, lower_avg_pool2d},
    {"AvgPool2D", "average_pooling2d", pool2d_args, 1, 1, lower_avg_pool2d},
    {"GlobalAveragePooling1D", "global_average_pooling1d", global_pool_args, 1, 1, lower_global_avg_pool1d},
    {"GlobalAvgPool1D", "global_average_pooling1d", global_pool_args, 1, 1, lower_global_avg_pool1d},
    {"GlobalAveragePooling2D", "global_average_pooling2d", global_pool_args, 1, 1, lower_global_avg_pool2d},
    {"GlobalAvgPool2D", "global_average_pooling2d", global_pool_args, 1, 1, lower_global_avg_pool2d},
    {"GlobalMaxPooling1D", "global_max_pooling1d", global_pool_args, 1, 1, lower_global_max_pool1d},
    {"GlobalMaxPool1D", "global_max_pooling1d", global_pool_args, 1, 1, lower_global_max_pool1d},
    {"GlobalMaxPooling2D", "global_max_pooling2d", global_pool_args, 1, 1, lower_global_max_pool2d},
    {"GlobalMaxPool2D", "global_max_pooling2d", global_pool_args, 1, 1, lower_global_max_pool2d},
    {"BatchNormalization", "batch_normalization", batch_normalization_args, 1, 1, lower_batch_normalization},
    {"Concatenate", "concatenate", concatenate_args, 2, MAX_SRC, lower_concatenate},
    {"Add", "add", no_args, 2, MAX_SRC, lower_add},
    {"Subtract", "subtract", no_args, 2, 2, lower_subtract},
    {"Multiply", "multiply", no_args, 2, MAX_SRC, lower_multiply},
    {"Average", "average", no_args, 2, MAX_SRC, lower_average},
    {"Maximum", "maximum", no_args, 2, MAX_SRC, lower_maximum},
    {"SimpleRNN", "simple_rnn", simple_rnn_args, 1, 1, lower_simple_rnn},
    {"LSTM", "lstm", lstm_args, 1, 1, lower_lstm},
    {"GRU", "gru", gru_args, 1, 1, lower_gru},
    {"TimeDistributed", "time_distributed", time_distributed_args, 1, 1, lower_time_distributed},
};

const LayerClass *layer_class_find(const char *name)
{
    for (size_t i = 0; i < sizeof classes / sizeof classes[0]; i++)
        if (strcmp(classes[i].name, name) == 0)
            return &classes[i];
    return NULL;
}

const LayerClass *const *layer_classes(int *count)
{
    static const LayerClass *list[sizeof classes / sizeof classes[0]];
    for (size_t i = 0; i < sizeof classes / sizeof classes[0]; i++)
        list[i] = &classes[i];
    *count = (int)(sizeof classes / sizeof classes[0]);
    return list;
}
