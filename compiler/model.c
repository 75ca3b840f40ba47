/* model.c — the model file (model-format.md) as a Model.
 *
 * Walks the YAML tree section by section: name, inputs, layers (each a
 * one-key map `Class: {config}`, arguments checked against the class's
 * table, Keras default names counted per class), outputs, compile (losses,
 * loss weights, optimizer, metrics) and fit (data, validation, epochs...).
 * Everything a user can get wrong is reported at its line and column with
 * a hint; nothing here builds IR. Connections are resolved in lower.c.
 * Sizes are checked against the generated C as they are read: an integer
 * argument or a shape dimension must fit its int, an input's values per
 * sample too; the model file's size against --max-model-bytes (limits.c).
 */
#include "backend.h"
#include "compiler.h"
#include "nnrt.h"

#include <ctype.h>
#include <limits.h>
#include <stddef.h>
#include <errno.h>
#include <libgen.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define FASHION_DIR "/usr/share/datasets/fashion-mnist/"

/* ---- small helpers ----------------------------------------------------------- */

static int edit_distance(const char *a, const char *b)
{
    int la = (int)strlen(a), lb = (int)strlen(b);
    if (la > 63 || lb > 63)
        return 99;
    int d[64][64];
    for (int i = 0; i <= la; i++)
        d[i][0] = i;
    for (int j = 0; j <= lb; j++)
        d[0][j] = j;
    for (int i = 1; i <= la; i++)
        for (int j = 1; j <= lb; j++) {
            int c = d[i - 1][j - 1] + (tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]));
            int del = d[i - 1][j] + 1, ins = d[i][j - 1] + 1;
            d[i][j] = c < del ? (c < ins ? c : ins) : (del < ins ? del : ins);
        }
    return d[la][lb];
}

const char *closest_name(const char *given, const char *const *candidates, int n)
{
    const char *best = NULL;
    int best_d = 3;
    for (int i = 0; i < n; i++) {
        int d = edit_distance(given, candidates[i]);
        if (d < best_d || (d == best_d && best == NULL && d <= (int)strlen(given) / 3)) {
            best = candidates[i];
            best_d = d;
        }
    }
    return best;
}

/* Where key is written in map (a block mapping's own location is its first key). */
static Loc key_loc(const YNode *map, const char *key)
{
    for (int i = 0; i < map->n; i++)
        if (!strcmp(ymap_key(map, i)->text, key))
            return ymap_key(map, i)->loc;
    return map->loc;
}

/* v is of the kind the reader needs; a scalar that is null (null, ~, or an
 * empty value, as through an empty anchor) is refused too: every scalar
 * read through here is a name, a path or an expression, which null is not. */
static int expect_kind(const YNode *v, YKind kind, const char *what)
{
    if (v->kind != kind)
        return error_at(v->loc, "%s must be a %s, not a %s", what, ykind_name(kind), ykind_name(v->kind));
    if (kind == Y_SCALAR && yscalar_is_null(v))
        return error_at(v->loc, "%s is null; expected a value", what);
    return 0;
}

/* Unknown keys of map (not in allowed[]) are errors with a did-you-mean. */
static int check_keys(const YNode *map, const char *where, const char *const *allowed)
{
    int n = 0;
    while (allowed[n])
        n++;
    for (int i = 0; i < map->n; i++) {
        const YNode *k = ymap_key(map, i);
        bool ok = false;
        for (int j = 0; j < n && !ok; j++)
            ok = strcmp(allowed[j], k->text) == 0;
        if (ok)
            continue;
        error_at(k->loc, "unknown key '%s' in %s", k->text, where);
        const char *near = closest_name(k->text, allowed, n);
        if (near)
            hint("did you mean '%s'?", near);
        else {
            char list[512] = "";
            for (int j = 0; j < n; j++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", j ? ", " : "", allowed[j]);
            hint("%s takes: %s", where, list);
        }
        return -1;
    }
    return 0;
}

static int get_long(const YNode *v, long *out, long min, const char *what)
{
    ArgSpec spec = {what, ARG_INT, NULL};
    ArgValue val = {0};
    if (parse_arg(NULL, &spec, v, &val))
        return -1;
    if (val.i < min)
        return error_at(v->loc, "%s must be at least %ld, not %ld", what, min, val.i);
    *out = val.i;
    return 0;
}

/* An integer the generated C or the runtime holds in an int (epochs, batch
 * size, patience, ...). */
static int get_c_int(const YNode *v, long *out, long min, const char *what)
{
    if (get_long(v, out, min, what))
        return -1;
    if (*out > INT_MAX)
        return error_at(v->loc, "%s must be at most %d, not %ld", what, INT_MAX, *out);
    return 0;
}

static int get_double(const YNode *v, double *out, const char *what)
{
    ArgSpec spec = {what, ARG_FLOAT, NULL};
    ArgValue val = {0};
    if (parse_arg(NULL, &spec, v, &val))
        return -1;
    *out = val.f;
    return 0;
}

static int get_bool(const YNode *v, bool *out, const char *what)
{
    ArgSpec spec = {what, ARG_BOOL, NULL};
    ArgValue val = {0};
    if (parse_arg(NULL, &spec, v, &val))
        return -1;
    *out = val.b;
    return 0;
}

/* Layer and input names: TensorFlow's name-scope characters (no '/'), so
 * that they are Keras-valid HDF5 names and safe in generated C comments and
 * strings. */
static int check_name(const YNode *v, const char *what)
{
    const char *s = v->text;
    bool ok = *s && (isalnum((unsigned char)*s) || *s == '_' || *s == '.');
    for (; *s && ok; s++)
        ok = isalnum((unsigned char)*s) || *s == '_' || *s == '.' || *s == '-';
    if (ok)
        return 0;
    error_at(v->loc, "%s '%s' may hold only letters, digits, '_', '.' and '-'", what, v->text);
    hint("the characters of Keras names (TensorFlow name scopes); '/' is kept for weight paths like "
         "dense/kernel:0");
    return -1;
}

/* ---- custom: functions ------------------------------------------------------------ */

/* {c_function: my_loss, c_gradient: my_loss_grad}: scalar C functions the
 * program links (nncc train --c-source FILE). Per role: activation float
 * f(float x), its gradient float g(float x) = f'(x); loss and metric
 * float f(float y_true, float y_pred), the gradient d/dy_pred; regularizer
 * float f(float w) summed over the weight, gradient f'(w); constraint
 * float f(float w). */
static int parse_c_hook(Arena *a, const YNode *key, const char *role, const YNode *body, CustomFn **out)
{
    static const char *const keys[] = {"c_function", "c_gradient", NULL};
    if (check_keys(body, "a C hook", keys))
        return -1;
    const YNode *fn = ymap_get(body, "c_function"), *grad = ymap_get(body, "c_gradient");
    bool needs_grad = strcmp(role, "metric") && strcmp(role, "constraint");
    if (!fn)
        return error_at(body->loc, "a C hook needs c_function");
    if (needs_grad && !grad) {
        error_at(body->loc, "a C %s needs c_gradient too (nncc cannot differentiate C)", role);
        hint("c_gradient names the function's derivative, e.g. {c_function: my_loss, c_gradient: my_loss_grad}");
        return -1;
    }
    /* the user's own C function, declared and called by that name: it cannot be derived, only refused */
    const YNode *names[2] = {fn, grad};
    for (int i = 0; i < 2; i++) {
        if (!names[i])
            continue;
        if (expect_kind(names[i], Y_SCALAR, "a C function name"))
            return -1;
        if (!c_identifier_ok(names[i]->text)) {
            error_at(names[i]->loc, "'%s' is not a C identifier", names[i]->text);
            hint("letters, digits and _, not starting with a digit, at most %d characters", C_NAME_MAX);
            return -1;
        }
        if (emit_reserved_hook(names[i]->text)) {
            error_at(names[i]->loc, "the C function name '%s' is taken by C, its library or the generated code",
                     names[i]->text);
            hint("rename the function in your C file, e.g. my_%s", names[i]->text);
            return -1;
        }
    }
    CustomFn *f = arena_alloc(a, sizeof *f);
    f->name = key->text;
    f->role = role;
    f->c_function = fn->text;
    f->c_function_loc = fn->loc;
    if (grad) {
        f->c_gradient = grad->text;
        f->c_gradient_loc = grad->loc;
    }
    bool two = !strcmp(role, "loss") || !strcmp(role, "metric");
    const char *args = !strcmp(role, "activation") ? "x" : two ? "t, p" : "w";
    f->forward = arena_printf(a, "%s(%s)", fn->text, args);
    f->derivative = grad ? arena_printf(a, "%s(%s)", grad->text, args) : NULL;
    *out = f;
    return 0;
}

/* initializer: "normal(MEAN, STDDEV)", "uniform(LOW, HIGH)",
 * "truncated_normal(MEAN, STDDEV)" or "constant(VALUE)", the arguments
 * expressions over fan_in and fan_out (Keras's fans of each weight), e.g.
 * the notes' my_glorot_initializer: "normal(0, sqrt(2 / (fan_in + fan_out)))". */
static int parse_custom_initializer(Arena *a, const YNode *key, const YNode *body, CustomFn **out)
{
    static const struct {
        const char *name;
        int kind, nargs;
    } dists[] = {{"normal", NNRT_INIT_RANDOM_NORMAL, 2},
                 {"uniform", NNRT_INIT_RANDOM_UNIFORM, 2},
                 {"truncated_normal", NNRT_INIT_TRUNCATED_NORMAL, 2},
                 {"constant", NNRT_INIT_CONSTANT, 1}};
    if (expect_kind(body, Y_SCALAR, "an initializer expression"))
        return -1;
    const char *t = body->text, *open = strchr(t, '(');
    size_t len = strlen(t);
    while (len && isspace((unsigned char)t[len - 1]))
        len--;
    int d = -1;
    for (int i = 0; open && i < 4; i++) {
        size_t n = strlen(dists[i].name);
        const char *p = t;
        while (isspace((unsigned char)*p))
            p++;
        if (!strncmp(p, dists[i].name, n) && p + n <= open && strspn(p + n, " \t") >= (size_t)(open - p - n))
            d = i;
    }
    if (d < 0 || !len || t[len - 1] != ')') {
        error_at(body->loc, "an initializer is normal(mean, stddev), uniform(low, high), truncated_normal(mean, "
                            "stddev) or constant(value)");
        hint("the arguments may use fan_in and fan_out, e.g. normal(0, sqrt(2 / (fan_in + fan_out)))");
        return -1;
    }
    /* split the arguments at the top-level commas */
    const char *starts[3];
    size_t lens[3];
    int nargs = 0, depth = 0;
    const char *arg = open + 1;
    for (const char *p = open + 1; p < t + len - 1; p++) {
        depth += *p == '(' ? 1 : *p == ')' ? -1 : 0;
        if (*p == ',' && depth == 0) {
            if (nargs < 3) {
                starts[nargs] = arg;
                lens[nargs++] = (size_t)(p - arg);
            }
            arg = p + 1;
        }
    }
    if (nargs < 3) {
        starts[nargs] = arg;
        lens[nargs++] = (size_t)(t + len - 1 - arg);
    }
    if (nargs != dists[d].nargs)
        return error_at(body->loc, "%s takes %d argument%s", dists[d].name, dists[d].nargs,
                        dists[d].nargs == 1 ? "" : "s");
    static const char *const fans[] = {"fan_in", "fan_out"};
    ExprEnv env = {.what = "initializer", .vars = fans, .nvars = 2, .top = EXPR_ELEMENTWISE};
    CustomFn *f = arena_alloc(a, sizeof *f);
    f->name = key->text;
    f->role = "initializer";
    f->init_kind = dists[d].kind;
    for (int i = 0; i < nargs; i++) {
        Loc at = body->loc;
        at.col += (int)(starts[i] - t) + (body->plain ? 0 : 1);
        const char *text = arena_printf(a, "%.*s", (int)lens[i], starts[i]);
        Expr *e = expr_parse(a, text, at, false, &env);
        if (!e)
            return -1;
        f->init_args[i] = e;
    }
    f->forward = body->text;
    *out = f;
    return 0;
}

/* One custom: entry: {role: "expression", where: {...}}; the expression is
 * parsed, differentiated and turned into C here (compiler/expr.c). */
static int parse_custom_entry(Arena *a, const YNode *key, const YNode *v, CustomFn **out)
{
    static const char *const roles[] = {"activation", "loss", "metric", "regularizer", "constraint", "initializer"};
    if (v->kind != Y_MAP) {
        error_at(v->loc, "a custom function is {role: \"expression\"}, e.g. {activation: \"log(exp(z) + 1)\"}");
        return -1;
    }
    const char *role = NULL;
    const YNode *body = NULL, *where = ymap_get(v, "where");
    for (int i = 0; i < v->n; i++) {
        const YNode *k = ymap_key(v, i);
        if (!strcmp(k->text, "where"))
            continue;
        bool known = false;
        for (size_t r = 0; r < sizeof roles / sizeof roles[0]; r++)
            known |= !strcmp(k->text, roles[r]);
        if (!known) {
            error_at(k->loc, "unknown key '%s' in a custom function", k->text);
            hint("a custom function has one of activation, loss, metric, regularizer, constraint, and maybe where");
            return -1;
        }
        if (role)
            return error_at(k->loc, "custom '%s' already is a %s: one role per name", key->text, role);
        role = k->text;
        body = ymap_value(v, i);
    }
    if (!role)
        return error_at(v->loc, "custom '%s' has no role (activation, loss, metric, regularizer, constraint)",
                        key->text);
    if (!strcmp(role, "initializer"))
        return parse_custom_initializer(a, key, body, out);
    if (body->kind == Y_MAP)
        return parse_c_hook(a, key, role, body, out);
    if (expect_kind(body, Y_SCALAR, "an expression"))
        return -1;
    if (where && where->kind != Y_MAP)
        return error_at(where->loc, "where maps names to expressions, like {e: \"y_true - y_pred\"}");
    static const char *const z[] = {"z"}, *const yy[] = {"y_true", "y_pred"}, *const w[] = {"w"};
    static const char *const x_c[] = {"x"}, *const tp_c[] = {"t", "p"}, *const w_c[] = {"w"};
    bool act = !strcmp(role, "activation"), loss = !strcmp(role, "loss"), metric = !strcmp(role, "metric"),
         reg = !strcmp(role, "regularizer");
    int step = INT_MIN;
    ExprEnv env = {.what = role, .vars = act ? z : (loss || metric) ? yy : w, .nvars = (loss || metric) ? 2 : 1,
                   .where = where, .top = reg ? EXPR_MUST_REDUCE : metric ? EXPR_MAY_REDUCE : EXPR_ELEMENTWISE,
                   .time_step = metric ? &step : NULL};
    const char *const *names = act ? x_c : (loss || metric) ? tp_c : w_c;
    Expr *e = expr_parse_node(a, body, &env);
    if (!e)
        return -1;
    CustomFn *f = arena_alloc(a, sizeof *f);
    f->name = key->text;
    f->role = role;
    f->time_indexed = step != INT_MIN;
    f->time_step = f->time_indexed ? step : 0;
    ExprKind red;
    Expr *elem = expr_reduction(e, &red);
    if (elem) {
        f->mean = red == EX_MEAN;
        e = elem;
    }
    f->forward = expr_to_c(a, e, names);
    if (act || loss || reg) {
        Expr *d = expr_diff(a, e, loss ? 1 : 0);  /* d/dz, d/dy_pred, d/dw */
        if (!d)
            return -1;
        f->derivative = expr_to_c(a, d, names);
    }
    *out = f;
    return 0;
}

static int parse_customs(Arena *a, Model *m, const YNode *v)
{
    if (expect_kind(v, Y_MAP, "custom"))
        return -1;
    if (v->n > 64)
        return error_at(v->loc, "at most 64 custom functions");
    for (int i = 0; i < v->n; i++) {
        const YNode *k = ymap_key(v, i);
        if (!c_identifier_ok(k->text)) {
            error_at(k->loc, "the custom function name '%s' is not a C identifier", k->text);
            return -1;
        }
        CustomFn *f = NULL;
        if (parse_custom_entry(a, k, ymap_value(v, i), &f))
            return -1;
        m->customs[m->ncustoms++] = f;
    }
    custom_functions_use(m->customs, m->ncustoms);
    return 0;
}

/* Integer arguments (units, filters, kernel_size, strides, axes...) become
 * ints in the generated C and its kernels' calls: a value beyond INT_MAX
 * would be cut there, so it is refused where written. node is the value as
 * YAML, to point at the dimension of a list. */
static int check_c_int_arg(const ArgValue *v, const YNode *node)
{
    const char *name = v->spec->name;
    if (v->spec->type == ARG_INT && (v->i > INT_MAX || v->i < -INT_MAX)) {
        error_at(v->loc, "%s %ld is out of range: the generated C holds it in an int (at most %d)", name, v->i,
                 INT_MAX);
        return -1;
    }
    if (v->spec->type != ARG_SHAPE)
        return 0;
    for (int i = 0; i < v->shape.rank; i++)
        if (v->shape.dim[i] > INT_MAX || v->shape.dim[i] < -INT_MAX) {
            Loc at = node && node->kind == Y_SEQ && i < node->n ? node->items[i]->loc : v->loc;
            error_at(at, "%s: dimension %lld is out of range: the generated C holds it in an int (at most %d)",
                     name, (long long)v->shape.dim[i], INT_MAX);
            return -1;
        }
    return 0;
}

/* One sample of an input must fit the int the kernels count in (the batch is
 * checked with each tensor when lowering). */
static int check_sample_size(const ModelInput *in, Loc loc)
{
    int64_t values;
    if (shape_elements(&in->shape, 1, &values) && fits_c_int(values))
        return 0;
    error_at(loc, "input '%s' has more values per sample than nncc handles (%d)", in->name, INT_MAX);
    hint("the generated C counts elements in int");
    return -1;
}

/* The YAML of an argument's Keras default, parsed once per model: a model of
 * thousands of layers reads the same few defaults thousands of times. */
static const YNode *default_value(Arena *a, Model *m, const char *text)
{
    if (!m->defaults)
        m->defaults = arena_alloc(a, sizeof *m->defaults);
    YNode *d = strmap_get(m->defaults, text);
    if (!d && (d = yaml_load_string(a, "<default>", text)))
        strmap_put(a, m->defaults, text, d);
    return d;
}

/* ---- inputs --------------------------------------------------------------------- */

/* The maximum of the variable time axis (model-format.md §1): max_timesteps
 * as given, else the fit data's sequence length, else 256. One length runs
 * through the model, so the inputs with a null axis share it. */
static int resolve_timesteps(Model *m)
{
    int64_t max = 0;
    const ModelInput *first = NULL;
    for (int i = 0; i < m->ninputs; i++) {
        const ModelInput *in = &m->inputs[i];
        if (!in->vtime || !in->max_timesteps)
            continue;
        if (first && in->max_timesteps != max) {
            error_at(in->loc, "inputs '%s' and '%s' give different max_timesteps (%lld and %lld)", first->name,
                     in->name, (long long)max, (long long)in->max_timesteps);
            hint("the time axis runs through the whole model: give one maximum");
            return -1;
        }
        first = in;
        max = in->max_timesteps;
    }
    if (!max)
        max = m->fit.train.format == NNRT_DATA_TIME_SERIES && m->fit.train.n_steps > 0 ? m->fit.train.n_steps : 256;
    for (int i = 0; i < m->ninputs; i++)
        if (m->inputs[i].vtime)
            m->inputs[i].shape.dim[0] = max;
    return 0;
}

static int parse_input(Arena *a, const YNode *v, ModelInput *in, int index)
{
    if (expect_kind(v, Y_MAP, "an input"))
        return -1;
    static const char *const keys[] = {"name", "shape", "dtype", "max_timesteps", NULL};
    if (check_keys(v, "an input", keys))
        return -1;
    in->loc = v->loc;
    const YNode *name = ymap_get(v, "name"), *shape = ymap_get(v, "shape"), *dtype = ymap_get(v, "dtype");
    in->name = index == 0 ? "input_1" : arena_printf(a, "input_%d", index + 1);
    if (name) {
        if (expect_kind(name, Y_SCALAR, "an input name"))
            return -1;
        if (check_name(name, "the input name"))
            return -1;
        in->name = name->text;
    }
    if (!shape) {
        error_at(v->loc, "input '%s' has no shape", in->name);
        hint("give the per-sample shape without the batch axis, e.g. {name: image, shape: [28, 28]}");
        return -1;
    }
    ArgSpec spec = {"shape", ARG_SHAPE, NULL};
    ArgValue val = {0};
    if (parse_arg(a, &spec, shape, &val) || check_c_int_arg(&val, shape))
        return -1;
    for (int i = 0; i < val.shape.rank; i++) {
        if (val.shape.dim[i] == -1 && (i > 0 || val.shape.rank < 2)) {
            error_at(shape->items[i]->loc, "only the time axis, the first of a sequence's shape, may be null");
            hint("a variable-length series is shape: [null, features], e.g. [null, 1]");
            return -1;
        }
        if (val.shape.dim[i] == -1) {
            in->vtime = true;
            in->null_loc = shape->items[i]->loc;
            val.shape.dim[i] = 1;  /* the maximum, resolved with the fit section (resolve_timesteps) */
            continue;
        }
        if (val.shape.dim[i] <= 0)
            return error_at(shape->kind == Y_SEQ ? shape->items[i]->loc : shape->loc,
                            "input dimensions must be positive, not %lld", (long long)val.shape.dim[i]);
    }
    in->shape = val.shape;
    if (check_sample_size(in, shape->loc))
        return -1;
    const YNode *max = ymap_get(v, "max_timesteps");
    if (max) {
        ArgSpec mspec = {"max_timesteps", ARG_INT, NULL};
        ArgValue mval = {0};
        if (parse_arg(a, &mspec, max, &mval))
            return -1;
        if (!in->vtime) {
            error_at(max->loc, "max_timesteps is for a variable time axis, and input '%s' has none", in->name);
            hint("make the time axis null: shape: [null, %lld]",
                 (long long)(in->shape.rank > 1 ? in->shape.dim[in->shape.rank - 1] : 1));
            return -1;
        }
        if (mval.i < 1 || mval.i > 1 << 20)
            return error_at(max->loc, "max_timesteps must be 1 to %d, not %lld", 1 << 20, (long long)mval.i);
        in->max_timesteps = mval.i;
    }
    if (dtype) {
        if (expect_kind(dtype, Y_SCALAR, "dtype"))
            return -1;
        if (!strcmp(dtype->text, "int32"))
            in->int32 = true;
        else if (strcmp(dtype->text, "float32") != 0)
            return error_at(dtype->loc, "dtype must be float32 or int32, not '%s'", dtype->text);
        if (in->int32)
            return error_at(dtype->loc, "int32 inputs (for Embedding) are not supported yet");
    }
    return 0;
}

/* ---- layers ----------------------------------------------------------------------- */

int parse_layer(Arena *a, Model *m, const YNode *item, Layer *l)
{
    if (item->kind != Y_MAP || item->n != 1) {
        error_at(item->loc, "each layer is a one-key mapping: the Keras class, then its arguments");
        if (item->kind == Y_SCALAR && layer_class_find(item->text))
            hint("write  - %s: {}  (a colon, then the arguments)", item->text);
        else if (item->kind == Y_MAP && item->n > 1 && layer_class_find(ymap_key(item, 0)->text))
            hint("indent the arguments deeper than '%s:', or write  - %s: {%s: ...}", ymap_key(item, 0)->text,
                 ymap_key(item, 0)->text, ymap_key(item, 1)->text);
        else
            hint("for example:  - Dense: {units: 10, activation: softmax}");
        return -1;
    }
    const YNode *key = ymap_key(item, 0), *cfg = ymap_value(item, 0);
    l->loc = key->loc;
    l->cls = layer_class_find(key->text);
    if (!l->cls) {
        int n;
        const LayerClass *const *all = layer_classes(&n);
        const char *names[64];
        for (int i = 0; i < n; i++)
            names[i] = all[i]->name;
        if (!strcmp(key->text, "blocks"))
            error_at(key->loc, "'blocks' is a top-level key of the model file, not a layer");
        else if (!strcmp(key->text, "Lambda"))
            error_at(key->loc, "a Lambda layer holds Python code, which nncc cannot compile");
        else
            error_at(key->loc, "unknown layer class '%s'", key->text);
        const char *near = closest_name(key->text, names, n);
        if (near)
            hint("did you mean '%s'?", near);
        else {
            char list[512] = "";
            for (int i = 0; i < n; i++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", names[i]);
            hint("supported layer classes: %s", list);
        }
        return -1;
    }
    if (yscalar_is_null(cfg))
        cfg = NULL;
    else if (cfg->kind != Y_MAP) {
        error_at(cfg->loc, "the arguments of %s must be a mapping, not a %s", l->cls->name, ykind_name(cfg->kind));
        hint("write  - %s: {}  when every argument keeps its default", l->cls->name);
        return -1;
    }
    int nargs = 0;
    while (l->cls->args[nargs].name)
        nargs++;
    l->args = arena_alloc(a, (size_t)(nargs + 1) * sizeof *l->args);
    l->trainable = true;
    for (int i = 0; cfg && i < cfg->n; i++) {
        const YNode *k = ymap_key(cfg, i), *v = ymap_value(cfg, i);
        if (!strcmp(k->text, "name")) {
            if (expect_kind(v, Y_SCALAR, "a layer name"))
                return -1;
            if (check_name(v, "the layer name"))
                return -1;
            l->name = v->text;
            continue;
        }
        if (!strcmp(k->text, "trainable")) {
            if (get_bool(v, &l->trainable, "trainable"))
                return -1;
            continue;
        }
        if (!strcmp(k->text, "initial_state")) {  /* Keras's call argument, as a layer key */
            const YNode *const *items = v->kind == Y_SEQ ? (const YNode *const *)v->items : (const YNode *const *)&v;
            int n = v->kind == Y_SEQ ? v->n : 1;
            if (n < 1 || n > 2)
                return error_at(v->loc, "initial_state is one or two states (LSTM: h and c)");
            l->state_names = arena_alloc(a, (size_t)n * sizeof *l->state_names);
            l->state_locs = arena_alloc(a, (size_t)n * sizeof *l->state_locs);
            for (int j = 0; j < n; j++) {
                if (items[j]->kind != Y_SCALAR || yscalar_is_null(items[j])) {
                    error_at(items[j]->loc, "initial_state names the layer outputs that start the recurrence");
                    hint("write a block list, or quote: initial_state: [\"encoder[1]\", \"encoder[2]\"]");
                    return -1;
                }
                l->state_names[j] = items[j]->text;
                l->state_locs[j] = items[j]->loc;
            }
            l->nstates = n;
            continue;
        }
        if (!strcmp(k->text, "inputs")) {
            if (v->kind == Y_SCALAR && !yscalar_is_null(v)) {
                l->ninputs = 1;
                l->input_names = arena_alloc(a, sizeof *l->input_names);
                l->input_locs = arena_alloc(a, sizeof *l->input_locs);
                l->input_names[0] = v->text;
                l->input_locs[0] = v->loc;
            } else if (v->kind == Y_SEQ && v->n > 0) {
                l->ninputs = v->n;
                l->input_names = arena_alloc(a, (size_t)v->n * sizeof *l->input_names);
                l->input_locs = arena_alloc(a, (size_t)v->n * sizeof *l->input_locs);
                for (int j = 0; j < v->n; j++) {
                    if (expect_kind(v->items[j], Y_SCALAR, "an input name"))
                        return -1;
                    l->input_names[j] = v->items[j]->text;
                    l->input_locs[j] = v->items[j]->loc;
                }
            } else {
                return error_at(v->loc, "inputs must be a layer or input name, or a list of them");
            }
            continue;
        }
        if (!strcmp(k->text, "input_shape") || !strcmp(k->text, "batch_input_shape") ||
            !strcmp(k->text, "input_dim")) {
            if (m->ninputs > 0 || m->nlayers > 0) {
                error_at(k->loc, "%s is only allowed on the first layer of a model without 'inputs'", k->text);
                hint("declare the model's inputs in the top-level 'inputs:' list");
                return -1;
            }
            ModelInput *in = &m->inputs[m->ninputs++];
            in->name = "input_1";
            in->loc = v->loc;
            ArgSpec spec = {k->text, ARG_SHAPE, NULL};
            ArgValue val = {0};
            if (parse_arg(a, &spec, v, &val) || check_c_int_arg(&val, v))
                return -1;
            in->shape = val.shape;
            if (!strcmp(k->text, "batch_input_shape")) {
                if (val.shape.rank < 2)
                    return error_at(v->loc, "batch_input_shape needs the batch axis and at least one more");
                in->shape.rank--;
                memmove(in->shape.dim, in->shape.dim + 1, (size_t)in->shape.rank * sizeof in->shape.dim[0]);
            }
            for (int d = 0; d < in->shape.rank; d++) {
                if (d == 0 && in->shape.rank >= 2 && in->shape.dim[d] == -1) {  /* Keras's [None, 1] */
                    in->vtime = true;
                    in->null_loc = v->loc;
                    in->shape.dim[d] = 1;  /* the maximum, resolved with the fit section */
                    continue;
                }
                if (in->shape.dim[d] == -1) {
                    error_at(v->loc, "only the time axis, the first of a sequence's shape, may be null");
                    hint("a variable-length series is %s: [null, features], e.g. [null, 1]", k->text);
                    return -1;
                }
                if (in->shape.dim[d] <= 0)
                    return error_at(v->loc, "input dimensions must be positive integers");
            }
            if (check_sample_size(in, v->loc))
                return -1;
            continue;
        }
        int j = 0;
        while (j < nargs && strcmp(l->cls->args[j].name, k->text) != 0)
            j++;
        if (j == nargs) {
            error_at(k->loc, "%s has no argument '%s'", l->cls->name, k->text);
            const char *names[40];
            for (int q = 0; q < nargs && q < 36; q++)
                names[q] = l->cls->args[q].name;
            int nn = nargs < 36 ? nargs : 36;
            names[nn++] = "name";
            names[nn++] = "inputs";
            names[nn++] = "trainable";
            const char *near = closest_name(k->text, names, nn);
            if (near)
                hint("did you mean '%s'?", near);
            else {
                char list[768] = "";
                for (int q = 0; q < nn; q++)
                    snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", q ? ", " : "", names[q]);
                hint("%s takes: %s", l->cls->name, list);
            }
            return -1;
        }
        if (l->args[j].given)
            return error_at(k->loc, "argument '%s' given twice", k->text);
        if (parse_arg(a, &l->cls->args[j], v, &l->args[j]) || check_c_int_arg(&l->args[j], v))
            return -1;
        l->args[j].given = true;
    }
    for (int j = 0; j < nargs; j++) {
        if (l->args[j].given)
            continue;
        const ArgSpec *spec = &l->cls->args[j];
        if (!spec->dflt) {
            error_at(l->loc, "%s needs the argument '%s'", l->cls->name, spec->name);
            if (!strcmp(spec->name, "units"))
                hint("for example:  - Dense: {units: 10}");
            return -1;
        }
        const YNode *d = default_value(a, m, spec->dflt);
        if (!d || parse_arg(a, spec, d, &l->args[j]))
            return -1;
        l->args[j].loc = l->loc;
    }
    return 0;
}

/* ---- compile ------------------------------------------------------------------------- */

static int output_index(const Model *m, const YNode *key)
{
    for (int i = 0; i < m->noutputs; i++)
        if (!strcmp(m->outputs[i], key->text))
            return i;
    error_at(key->loc, "'%s' is not an output of the model", key->text);
    char list[512] = "";
    for (int i = 0; i < m->noutputs; i++)
        snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", i ? ", " : "", m->outputs[i]);
    hint("the outputs are: %s", list);
    return -1;
}

static int parse_loss(const YNode *v, OutputLoss *out)
{
    static const struct {
        const char *name;
        LossKind kind;
    } names[] = {
        {"sparse_categorical_crossentropy", LOSS_SPARSE_CATEGORICAL_CROSSENTROPY},
        {"SparseCategoricalCrossentropy", LOSS_SPARSE_CATEGORICAL_CROSSENTROPY},
        {"categorical_crossentropy", LOSS_CATEGORICAL_CROSSENTROPY},
        {"CategoricalCrossentropy", LOSS_CATEGORICAL_CROSSENTROPY},
        {"binary_crossentropy", LOSS_BINARY_CROSSENTROPY},
        {"BinaryCrossentropy", LOSS_BINARY_CROSSENTROPY},
        {"mse", LOSS_MEAN_SQUARED_ERROR},
        {"mean_squared_error", LOSS_MEAN_SQUARED_ERROR},
        {"MeanSquaredError", LOSS_MEAN_SQUARED_ERROR},
        {"mae", LOSS_MEAN_ABSOLUTE_ERROR},
        {"mean_absolute_error", LOSS_MEAN_ABSOLUTE_ERROR},
        {"MeanAbsoluteError", LOSS_MEAN_ABSOLUTE_ERROR},
        {"huber", LOSS_HUBER},
        {"huber_loss", LOSS_HUBER},
        {"Huber", LOSS_HUBER},
    };
    const char *name;
    const YNode *args = NULL;
    if (v->kind == Y_SCALAR)
        name = v->text;
    else if (v->kind == Y_MAP && v->n == 1) {
        name = ymap_key(v, 0)->text;
        args = ymap_value(v, 0);
        if (yscalar_is_null(args))
            args = NULL;
        else if (expect_kind(args, Y_MAP, "loss arguments"))
            return -1;
    } else
        return error_at(v->loc, "expected a loss: a name like mse, or {LossClass: {arguments}}");
    out->given = true;
    out->loc = v->loc;
    if ((out->custom = custom_find(name, "loss"))) {
        out->kind = LOSS_CUSTOM;
        if (args)
            return error_at(args->loc, "custom loss '%s' takes no arguments", name);
        return 0;
    }
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(names[i].name, name) != 0)
            continue;
        out->kind = names[i].kind;
        out->delta = 1.0f;
        for (int j = 0; args && j < args->n; j++) {
            const YNode *k = ymap_key(args, j);
            if (!strcmp(k->text, "delta") && out->kind == LOSS_HUBER) {
                double d;
                if (get_double(ymap_value(args, j), &d, "delta"))
                    return -1;
                if (!(d > 0))
                    return error_at(ymap_value(args, j)->loc, "delta must be positive");
                out->delta = (float)d;
            } else if (!strcmp(k->text, "from_logits") && loss_info[out->kind].softmax_fusable | (out->kind == LOSS_BINARY_CROSSENTROPY)) {
                if (get_bool(ymap_value(args, j), &out->from_logits, "from_logits"))
                    return -1;
            } else {
                return error_at(k->loc, "loss '%s' takes no argument '%s'", name, k->text);
            }
        }
        return 0;
    }
    Loc at = v->kind == Y_MAP ? ymap_key(v, 0)->loc : v->loc;
    error_at(at, "unknown loss '%s'", name);
    const char *all[sizeof names / sizeof names[0]];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        all[i] = names[i].name;
    const char *near = closest_name(name, all, (int)(sizeof names / sizeof names[0]));
    if (near)
        hint("did you mean '%s'?", near);
    else
        hint("losses: sparse_categorical_crossentropy, categorical_crossentropy, binary_crossentropy, mse, mae");
    return -1;
}

/* Keras optimizers: the arguments each takes and its defaults. A field is
 * a double unless listed in the bool set; clipping applies to all. */
typedef struct {
    const char *key;
    size_t offset;
    bool is_bool;
} OptField;

#define F(k, f) {k, offsetof(OptimizerSpec, f), false}
#define FB(k, f) {k, offsetof(OptimizerSpec, f), true}
static const OptField opt_fields[] = {
    F("learning_rate", learning_rate), F("lr", learning_rate), F("momentum", momentum), FB("nesterov", nesterov),
    F("beta_1", beta_1), F("beta_2", beta_2), F("epsilon", epsilon), F("rho", rho), FB("centered", centered),
    FB("amsgrad", amsgrad), F("weight_decay", weight_decay), F("initial_accumulator_value", initial_accumulator_value),
    F("clipvalue", clipvalue), F("clipnorm", clipnorm), F("global_clipnorm", global_clipnorm),
};
#undef F
#undef FB

static const struct {
    const char *name, *keys;     /* keys: the fields it takes besides learning_rate and clipping */
    OptimizerSpec defaults;
} optimizer_classes[] = {
    {"SGD", "momentum nesterov", {.kind = OPT_SGD, .learning_rate = 0.01}},
    {"Adagrad", "initial_accumulator_value epsilon",
     {.kind = OPT_ADAGRAD, .learning_rate = 0.001, .initial_accumulator_value = 0.1, .epsilon = 1e-7}},
    {"RMSprop", "rho momentum epsilon centered", {.kind = OPT_RMSPROP, .learning_rate = 0.001, .rho = 0.9, .epsilon = 1e-7}},
    {"Adam", "beta_1 beta_2 epsilon amsgrad",
     {.kind = OPT_ADAM, .learning_rate = 0.001, .beta_1 = 0.9, .beta_2 = 0.999, .epsilon = 1e-7}},
    {"Nadam", "beta_1 beta_2 epsilon", {.kind = OPT_NADAM, .learning_rate = 0.001, .beta_1 = 0.9, .beta_2 = 0.999, .epsilon = 1e-7}},
    {"Adamax", "beta_1 beta_2 epsilon", {.kind = OPT_ADAMAX, .learning_rate = 0.001, .beta_1 = 0.9, .beta_2 = 0.999, .epsilon = 1e-7}},
    {"AdamW", "weight_decay beta_1 beta_2 epsilon amsgrad",
     {.kind = OPT_ADAMW, .learning_rate = 0.001, .weight_decay = 0.004, .beta_1 = 0.9, .beta_2 = 0.999, .epsilon = 1e-7}},
};

/* {ExponentialDecay: {initial_learning_rate, decay_steps, decay_rate, staircase}}
 * or {PiecewiseConstantDecay: {boundaries: [...], values: [...]}} */
static int parse_schedule(const YNode *v, OptimizerSpec *o)
{
    if (v->kind != Y_MAP || v->n != 1) {
        error_at(v->loc, "a learning-rate schedule is {ExponentialDecay: {...}} or {PiecewiseConstantDecay: {...}}");
        return -1;
    }
    const YNode *k = ymap_key(v, 0), *args = ymap_value(v, 0);
    if (expect_kind(args, Y_MAP, "schedule arguments"))
        return -1;
    if (!strcmp(k->text, "ExponentialDecay")) {
        static const char *const keys[] = {"initial_learning_rate", "decay_steps", "decay_rate", "staircase", NULL};
        if (check_keys(args, "ExponentialDecay", keys))
            return -1;
        const YNode *a = ymap_get(args, "initial_learning_rate"), *s = ymap_get(args, "decay_steps"),
                    *r = ymap_get(args, "decay_rate"), *st = ymap_get(args, "staircase");
        if (!a || !s || !r)
            return error_at(args->loc, "ExponentialDecay needs initial_learning_rate, decay_steps and decay_rate");
        o->schedule.kind = SCHEDULE_EXPONENTIAL;
        if (get_double(a, &o->learning_rate, "initial_learning_rate") ||
            get_double(s, &o->schedule.decay_steps, "decay_steps") || get_double(r, &o->schedule.decay_rate, "decay_rate") ||
            (st && get_bool(st, &o->schedule.staircase, "staircase")))
            return -1;
        if (o->schedule.decay_steps <= 0)
            return error_at(s->loc, "decay_steps must be positive");
        return 0;
    }
    if (!strcmp(k->text, "PiecewiseConstantDecay")) {
        static const char *const keys[] = {"boundaries", "values", NULL};
        if (check_keys(args, "PiecewiseConstantDecay", keys))
            return -1;
        const YNode *b = ymap_get(args, "boundaries"), *vals = ymap_get(args, "values");
        if (!b || !vals || b->kind != Y_SEQ || vals->kind != Y_SEQ || b->n > 16 || vals->n != b->n + 1) {
            error_at(args->loc, "PiecewiseConstantDecay takes boundaries (up to 16) and one more value than boundaries");
            hint("for example: {boundaries: [1000, 2000], values: [0.01, 0.005, 0.001]}");
            return -1;
        }
        o->schedule.kind = SCHEDULE_PIECEWISE;
        o->schedule.nboundaries = b->n;
        for (int i = 0; i < b->n; i++)
            if (get_double(b->items[i], &o->schedule.boundaries[i], "a boundary"))
                return -1;
        for (int i = 0; i < vals->n; i++)
            if (get_double(vals->items[i], &o->schedule.values[i], "a value"))
                return -1;
        o->learning_rate = o->schedule.values[0];
        return 0;
    }
    error_at(k->loc, "unknown learning-rate schedule '%s'", k->text);
    hint("schedules: ExponentialDecay, PiecewiseConstantDecay");
    return -1;
}

static int parse_optimizer(const YNode *v, OptimizerSpec *o)
{
    const char *name;
    const YNode *args = NULL;
    if (v->kind == Y_SCALAR)
        name = v->text;
    else if (v->kind == Y_MAP && v->n == 1) {
        name = ymap_key(v, 0)->text;
        args = ymap_value(v, 0);
        if (yscalar_is_null(args))
            args = NULL;
        else if (expect_kind(args, Y_MAP, "optimizer arguments"))
            return -1;
    } else
        return error_at(v->loc, "expected an optimizer: a name like sgd, or {SGD: {learning_rate: 0.01}}");
    Loc at = v->kind == Y_MAP ? ymap_key(v, 0)->loc : v->loc;
    int c = -1, n = (int)(sizeof optimizer_classes / sizeof optimizer_classes[0]);
    for (int i = 0; i < n; i++)
        if (!strcasecmp(name, optimizer_classes[i].name))
            c = i;
    if (c < 0) {
        error_at(at, "unknown optimizer '%s'", name);
        const char *names[8];
        for (int i = 0; i < n; i++)
            names[i] = optimizer_classes[i].name;
        const char *near = closest_name(name, names, n);
        if (near)
            hint("did you mean '%s'?", near);
        else
            hint("optimizers: SGD, Adagrad, RMSprop, Adam, Nadam, Adamax, AdamW");
        return -1;
    }
    *o = optimizer_classes[c].defaults;
    for (int i = 0; args && i < args->n; i++) {
        const YNode *k = ymap_key(args, i), *val = ymap_value(args, i);
        bool common = !strcmp(k->text, "learning_rate") || !strcmp(k->text, "lr") || strstr(k->text, "clip");
        const char *keys = optimizer_classes[c].keys, *hit = strstr(keys, k->text);
        size_t len = strlen(k->text);
        bool own = hit && (hit == keys || hit[-1] == ' ') && (hit[len] == 0 || hit[len] == ' ');
        const OptField *f = NULL;
        for (size_t j = 0; j < sizeof opt_fields / sizeof opt_fields[0]; j++)
            if (!strcmp(opt_fields[j].key, k->text))
                f = &opt_fields[j];
        if (!f || !(common || own)) {
            error_at(k->loc, "%s has no argument '%s'", optimizer_classes[c].name, k->text);
            char buf[256];
            const char *names[16] = {NULL};
            int nn = 0;
            snprintf(buf, sizeof buf, "learning_rate clipvalue clipnorm global_clipnorm %s", keys);
            for (char *tok = strtok(buf, " "); tok && nn < 16; tok = strtok(NULL, " "))
                names[nn++] = tok;
            const char *near = closest_name(k->text, names, nn);
            if (near)
                hint("did you mean '%s'?", near);
            else {
                char list[256] = "";
                for (int q = 0; q < nn; q++)
                    snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", q ? ", " : "", names[q]);
                hint("%s takes: %s", optimizer_classes[c].name, list);
            }
            return -1;
        }
        if (!strcmp(f->key, "learning_rate") || !strcmp(f->key, "lr")) {
            if (val->kind == Y_MAP) {
                if (parse_schedule(val, o))
                    return -1;
                continue;
            }
        }
        void *field = (char *)o + f->offset;
        if (f->is_bool ? get_bool(val, field, k->text) : get_double(val, field, k->text))
            return -1;
        double x = f->is_bool ? 0 : *(double *)field;
        if ((!strcmp(f->key, "learning_rate") || !strcmp(f->key, "lr")) && x <= 0)
            return error_at(val->loc, "learning_rate must be positive, not %g", x);
        if ((!strcmp(f->key, "momentum") || !strncmp(f->key, "beta", 4) || !strcmp(f->key, "rho")) && (x < 0 || x > 1))
            return error_at(val->loc, "%s must be in [0, 1], not %g", f->key, x);
        if ((strstr(f->key, "clip") || !strcmp(f->key, "epsilon") || !strcmp(f->key, "weight_decay") ||
             !strcmp(f->key, "initial_accumulator_value")) && x < 0)
            return error_at(val->loc, "%s must not be negative", f->key);
    }
    if ((o->clipnorm != 0) + (o->global_clipnorm != 0) > 1)
        return error_at(v->loc, "clipnorm and global_clipnorm cannot both be set (as in Keras)");
    return 0;
}

static int parse_compile(Arena *a, Model *m, const YNode *c, Loc key)
{
    (void)a;
    if (expect_kind(c, Y_MAP, "compile"))
        return -1;
    static const char *const keys[] = {"loss", "loss_weights", "optimizer", "metrics", NULL};
    if (check_keys(c, "compile", keys))
        return -1;
    m->has_compile = true;
    m->compile_loc = c->loc;
    m->optimizer = optimizer_classes[2].defaults;  /* RMSprop: Keras's compile() default */
    const YNode *loss = ymap_get(c, "loss"), *lw = ymap_get(c, "loss_weights"), *opt = ymap_get(c, "optimizer"),
                *metrics = ymap_get(c, "metrics");
    for (int i = 0; i < m->noutputs; i++)
        m->losses[i].weight = 1.0f;
    if (!loss) {
        error_at(key, "compile has no loss");
        hint("for example:  loss: sparse_categorical_crossentropy");
        return -1;
    }
    bool per_output = loss->kind == Y_MAP && loss->n >= 1;
    if (per_output && loss->n == 1) {
        /* {SparseCategoricalCrossentropy: {...}} vs {output_name: loss} */
        const char *k = ymap_key(loss, 0)->text;
        per_output = false;
        for (int i = 0; i < m->noutputs; i++)
            per_output |= !strcmp(m->outputs[i], k);
    }
    if (per_output) {
        for (int i = 0; i < loss->n; i++) {
            int o = output_index(m, ymap_key(loss, i));
            if (o < 0 || parse_loss(ymap_value(loss, i), &m->losses[o]))
                return -1;
        }
        for (int i = 0; i < m->noutputs; i++)
            if (!m->losses[i].given) {
                error_at(loss->loc, "output '%s' has no loss", m->outputs[i]);
                hint("give every output a loss in this mapping");
                return -1;
            }
    } else {
        for (int i = 0; i < m->noutputs; i++)
            if (parse_loss(loss, &m->losses[i]))
                return -1;
    }
    for (int i = 0; i < m->noutputs; i++)
        m->losses[i].weight = 1.0f;
    if (lw) {
        if (lw->kind == Y_MAP) {
            for (int i = 0; i < lw->n; i++) {
                int o = output_index(m, ymap_key(lw, i));
                double w;
                if (o < 0 || get_double(ymap_value(lw, i), &w, "loss_weights"))
                    return -1;
                m->losses[o].weight = (float)w;
            }
        } else if (lw->kind == Y_SEQ) {
            if (lw->n != m->noutputs)
                return error_at(lw->loc, "loss_weights has %d entries for %d outputs", lw->n, m->noutputs);
            for (int i = 0; i < lw->n; i++) {
                double w;
                if (get_double(lw->items[i], &w, "loss_weights"))
                    return -1;
                m->losses[i].weight = (float)w;
            }
        } else
            return error_at(lw->loc, "loss_weights must map output names to numbers");
    }
    if (opt && parse_optimizer(opt, &m->optimizer))
        return -1;
    if (metrics) {
        const YNode *lists[16];
        int outs[16], nl = 0;
        if (metrics->kind == Y_SEQ) {
            lists[nl] = metrics;
            outs[nl++] = -1;
        } else if (metrics->kind == Y_MAP) {
            for (int i = 0; i < metrics->n && nl < 16; i++) {
                int o = output_index(m, ymap_key(metrics, i));
                if (o < 0)
                    return -1;
                lists[nl] = ymap_value(metrics, i);
                outs[nl++] = o;
            }
        } else
            return error_at(metrics->loc, "metrics must be a list like [accuracy]");
        for (int l = 0; l < nl; l++) {
            const YNode *seq = lists[l];
            if (seq->kind == Y_SCALAR) {
                /* {output: accuracy} */
                if (m->nmetrics == 16)
                    return error_at(seq->loc, "at most 16 metrics");
                m->metric_names[m->nmetrics] = seq->text;
                m->metric_custom[m->nmetrics] = custom_find(seq->text, "metric");
                m->metric_locs[m->nmetrics] = seq->loc;
                m->metric_output[m->nmetrics++] = outs[l];
                continue;
            }
            if (expect_kind(seq, Y_SEQ, "a metrics list"))
                return -1;
            for (int i = 0; i < seq->n; i++) {
                if (expect_kind(seq->items[i], Y_SCALAR, "a metric name"))
                    return -1;
                if (m->nmetrics == 16)
                    return error_at(seq->items[i]->loc, "at most 16 metrics");
                m->metric_names[m->nmetrics] = seq->items[i]->text;
                m->metric_custom[m->nmetrics] = custom_find(seq->items[i]->text, "metric");
                m->metric_locs[m->nmetrics] = seq->items[i]->loc;
                m->metric_output[m->nmetrics++] = outs[l];
            }
        }
    }
    return 0;
}

/* ---- fit -------------------------------------------------------------------------------- */

static const char *resolve_path(Arena *a, const Model *m, const YNode *v)
{
    if (v->text[0] == '/' || !m->dir[0] || !strcmp(m->dir, "."))
        return v->text;
    return arena_printf(a, "%s/%s", m->dir, v->text);
}

static int check_file(const char *path, const YNode *v, Loc loc)
{
    if (access(path, R_OK) == 0)
        return 0;
    error_at(loc, "cannot read data file '%s': %s", path, strerror(errno));
    if (v->text[0] != '/' && strcmp(path, v->text) != 0)
        hint("a relative data path is relative to the model file's folder");
    return -1;
}

/* One file, or one per model input/output: "a.npy;b.npy" for the runtime. */
static const char *path_list(Arena *a, const Model *m, const YNode *v, const char *what, int count, const char *per)
{
    const YNode *const *items = v->kind == Y_SEQ ? (const YNode *const *)v->items : (const YNode *const *)&v;
    int n = v->kind == Y_SEQ ? v->n : 1;
    if (n != 1 && n != count) {
        error_at(v->loc, "%s lists %d files for %d model %ss: give one per %s", what, n, count, per, per);
        return NULL;
    }
    const char *joined = "";
    for (int i = 0; i < n; i++) {
        if (expect_kind(items[i], Y_SCALAR, what))
            return NULL;
        const char *p = resolve_path(a, m, items[i]);
        if (strchr(p, ';')) {
            error_at(items[i]->loc, "file names with ';' are not supported");
            return NULL;
        }
        if (check_file(p, items[i], items[i]->loc))
            return NULL;
        joined = i ? arena_printf(a, "%s;%s", joined, p) : p;
    }
    return joined;
}

/* Column names (or 0-based indices without a header), one group per model
 * input (or output): a list for one group, a list of lists, or a map from
 * input/output name to its list. "CRIM,ZN|RM" for the runtime. */
static const char *column_group(Arena *a, const YNode *v, const char *what)
{
    if (v->kind != Y_SEQ || v->n == 0) {
        error_at(v->loc, "%s takes a non-empty list of column names, like [CRIM, ZN]", what);
        return NULL;
    }
    const char *joined = "";
    for (int i = 0; i < v->n; i++) {
        if (expect_kind(v->items[i], Y_SCALAR, "a column name"))
            return NULL;
        if (strpbrk(v->items[i]->text, ",|") || !*v->items[i]->text) {
            error_at(v->items[i]->loc, "column names with ',' or '|' are not supported");
            return NULL;
        }
        joined = i ? arena_printf(a, "%s,%s", joined, v->items[i]->text) : v->items[i]->text;
    }
    return joined;
}

static const char *column_groups(Arena *a, const YNode *v, const char *const *names, int count, const char *what,
                                 const char *per, bool shared_ok)
{
    const char *groups[16];
    int n = 0;
    if (v->kind == Y_MAP) {
        for (int i = 0; i < count; i++) {
            const YNode *g = ymap_get(v, names[i]);
            if (!g) {
                error_at(v->loc, "%s has no columns for %s '%s'", what, per, names[i]);
                return NULL;
            }
            if (!(groups[n++] = column_group(a, g, what)))
                return NULL;
        }
        for (int i = 0; i < v->n; i++) {
            bool known = false;
            for (int j = 0; j < count; j++)
                known |= !strcmp(ymap_key(v, i)->text, names[j]);
            if (!known) {
                error_at(ymap_key(v, i)->loc, "'%s' is not a model %s", ymap_key(v, i)->text, per);
                return NULL;
            }
        }
    } else if (v->kind == Y_SEQ && v->n > 0 && v->items[0]->kind == Y_SEQ) {
        if (v->n > 16 || (v->n != count && !(shared_ok && v->n == 1))) {
            error_at(v->loc, "%s has %d groups for %d model %ss", what, v->n, count, per);
            return NULL;
        }
        for (int i = 0; i < v->n; i++)
            if (!(groups[n++] = column_group(a, v->items[i], what)))
                return NULL;
    } else {
        if (count > 1 && !shared_ok) {
            error_at(v->loc, "the model has %d %ss: give %s one list per %s, e.g. {%s: [...], %s: [...]}", count, per,
                     what, per, names[0], names[1]);
            return NULL;
        }
        if (!(groups[n++] = column_group(a, v, what)))
            return NULL;
    }
    const char *joined = groups[0];
    for (int i = 1; i < n; i++)
        joined = arena_printf(a, "%s|%s", joined, groups[i]);
    return joined;
}

static int parse_source(Arena *a, const Model *m, const YNode *v, DataSpec *d)
{
    if (expect_kind(v, Y_MAP, "a data source"))
        return -1;
    const YNode *fmt = ymap_get(v, "format");
    if (!fmt) {
        error_at(v->loc, "a data source needs a format");
        hint("for example: {format: idx, images: train-images-idx3-ubyte.gz, labels: train-labels-idx1-ubyte.gz}");
        return -1;
    }
    if (expect_kind(fmt, Y_SCALAR, "format"))
        return -1;
    if (!strcmp(fmt->text, "idx")) {
        static const char *const keys[] = {"format", "images", "labels", "scale", NULL};
        if (check_keys(v, "an idx data source", keys))
            return -1;
        const YNode *im = ymap_get(v, "images"), *lb = ymap_get(v, "labels"), *sc = ymap_get(v, "scale");
        if (!im || !lb)
            return error_at(v->loc, "an idx data source needs images and labels");
        if (expect_kind(im, Y_SCALAR, "images") || expect_kind(lb, Y_SCALAR, "labels"))
            return -1;
        *d = (DataSpec){.format = NNRT_DATA_IDX, .x = resolve_path(a, m, im), .y = resolve_path(a, m, lb), .scale = 1.0};
        if (sc && get_double(sc, &d->scale, "scale"))
            return -1;
        return check_file(d->x, im, im->loc) || check_file(d->y, lb, lb->loc) ? -1 : 0;
    }
    if (!strcmp(fmt->text, "npy")) {
        static const char *const keys[] = {"format", "x", "y", NULL};
        if (check_keys(v, "an npy data source", keys))
            return -1;
        const YNode *x = ymap_get(v, "x"), *y = ymap_get(v, "y");
        if (!x || !y)
            return error_at(v->loc, "an npy data source needs x and y");
        *d = (DataSpec){.format = NNRT_DATA_NPY, .scale = 1.0};
        if (!(d->x = path_list(a, m, x, "x", m->ninputs, "input")) ||
            !(d->y = path_list(a, m, y, "y", m->noutputs, "output")))
            return -1;
        return 0;
    }
    if (!strcmp(fmt->text, "csv")) {
        static const char *const keys[] = {"format", "path", "header", "skip_rows", "delimiter", "x_columns",
                                           "y_columns", "standardize", "split", "seed", NULL};
        if (check_keys(v, "a csv data source", keys))
            return -1;
        const YNode *path = ymap_get(v, "path"), *xc = ymap_get(v, "x_columns"), *yc = ymap_get(v, "y_columns"), *o;
        if (!path || !xc || !yc) {
            error_at(v->loc, "a csv data source needs path, x_columns and y_columns");
            hint("for example: {format: csv, path: data.csv, header: true, x_columns: [a, b], y_columns: [y]}");
            return -1;
        }
        if (expect_kind(path, Y_SCALAR, "path"))
            return -1;
        *d = (DataSpec){.format = NNRT_DATA_CSV, .scale = 1.0, .path = resolve_path(a, m, path), .header = 1,
                        .delimiter = ',', .seed = 42};
        if (check_file(d->path, path, path->loc))
            return -1;
        bool b;
        long n;
        if ((o = ymap_get(v, "header"))) {
            if (get_bool(o, &b, "header"))
                return -1;
            d->header = b;
        }
        if ((o = ymap_get(v, "standardize"))) {
            if (get_bool(o, &b, "standardize"))
                return -1;
            d->standardize = b;
        }
        if ((o = ymap_get(v, "skip_rows"))) {
            if (get_c_int(o, &n, 0, "skip_rows"))
                return -1;
            d->skip_rows = (int)n;
        }
        if ((o = ymap_get(v, "seed"))) {
            if (get_long(o, &n, 0, "seed"))
                return -1;
            d->seed = (uint64_t)n;
        }
        if ((o = ymap_get(v, "delimiter"))) {
            if (o->kind != Y_SCALAR || (strcmp(o->text, ",") && strcmp(o->text, " ") && strcmp(o->text, "\t")))
                return error_at(o->loc, "delimiter is \",\" or \" \" (any run of blanks)");
            d->delimiter = o->text[0] == ',' ? ',' : ' ';
        }
        if ((o = ymap_get(v, "split"))) {
            if (o->kind != Y_SEQ || o->n != 3) {
                error_at(o->loc, "split takes three fractions: [train, validation, test]");
                hint("for example: split: [0.6, 0.2, 0.2]");
                return -1;
            }
            double sum = 0;
            for (int i = 0; i < 3; i++) {
                if (get_double(o->items[i], &d->split[i], "a split fraction"))
                    return -1;
                if (d->split[i] < 0 || d->split[i] > 1)
                    return error_at(o->items[i]->loc, "split fractions are between 0 and 1");
                sum += d->split[i];
            }
            if (sum < 1 - 1e-6 || sum > 1 + 1e-6)
                return error_at(o->loc, "the split fractions add up to %g, not 1", sum);
        }
        const char *in_names[16], *out_names[16];
        for (int i = 0; i < m->ninputs; i++)
            in_names[i] = m->inputs[i].name;
        for (int i = 0; i < m->noutputs; i++)
            out_names[i] = m->outputs[i];
        if (!(d->x = column_groups(a, xc, in_names, m->ninputs, "x_columns", "input", false)) ||
            !(d->y = column_groups(a, yc, out_names, m->noutputs, "y_columns", "output", true)))
            return -1;
        return 0;
    }
    if (!strcmp(fmt->text, "hdf5")) {
        static const char *const keys[] = {"format", "path", "x", "y", NULL};
        if (check_keys(v, "an hdf5 data source", keys))
            return -1;
        const YNode *path = ymap_get(v, "path"), *x = ymap_get(v, "x"), *y = ymap_get(v, "y");
        if (!path || !x || !y) {
            error_at(v->loc, "an hdf5 data source needs path, x and y (dataset paths inside the file)");
            hint("for example: {format: hdf5, path: data.h5, x: x_train, y: y_train}");
            return -1;
        }
        if (expect_kind(path, Y_SCALAR, "path"))
            return -1;
        *d = (DataSpec){.format = NNRT_DATA_HDF5, .scale = 1.0, .path = resolve_path(a, m, path)};
        if (check_file(d->path, path, path->loc))
            return -1;
        const YNode *items[2] = {x, y};
        const char **fields[2] = {&d->x, &d->y};
        for (int k = 0; k < 2; k++) {
            const YNode *g = items[k];
            const YNode *const *list = g->kind == Y_SEQ ? (const YNode *const *)g->items : (const YNode *const *)&g;
            int n = g->kind == Y_SEQ ? g->n : 1;
            const char *joined = "";
            for (int i = 0; i < n; i++) {
                if (expect_kind(list[i], Y_SCALAR, "a dataset path"))
                    return -1;
                joined = i ? arena_printf(a, "%s;%s", joined, list[i]->text) : list[i]->text;
            }
            *fields[k] = joined;
        }
        return 0;
    }
    error_at(fmt->loc, "unknown data format '%s'", fmt->text);
    hint("formats: idx, npy, csv, hdf5");
    return -1;
}

/* The layers (HDF5 groups) that own weights, for freeze lists. */
static bool layer_has_weights(const Model *m, const char *name)
{
    for (int i = 0; i < m->nlayers; i++) {
        const Layer *l = m->layers[i];
        if (strcmp(l->group, name) != 0)
            continue;
        for (int j = 0; l->cls->args[j].name; j++)
            if (l->cls->args[j].type == ARG_INITIALIZER)
                return true;
    }
    return false;
}

/* phases: [{epochs: 4, freeze: [dense, dense_1]}, {epochs: 16, optimizer: {SGD: {learning_rate: 0.001}}}] */
static int parse_phases(Arena *a, Model *m, const YNode *v, FitSpec *fit)
{
    (void)a;
    if (expect_kind(v, Y_SEQ, "phases"))
        return -1;
    if (v->n < 1 || v->n > 8)
        return error_at(v->loc, "phases takes 1 to 8 phases");
    fit->num_phases = v->n;
    int total = 0;
    for (int i = 0; i < v->n; i++) {
        const YNode *p = v->items[i], *o;
        PhaseSpec *ph = &fit->phases[i];
        if (expect_kind(p, Y_MAP, "a phase"))
            return -1;
        static const char *const keys[] = {"epochs", "freeze", "optimizer", NULL};
        if (check_keys(p, "a phase", keys))
            return -1;
        long x;
        if (!(o = ymap_get(p, "epochs")))
            return error_at(p->loc, "each phase needs its epochs");
        if (get_c_int(o, &x, 1, "epochs"))
            return -1;
        ph->epochs = (int)x;
        total += ph->epochs;
        if ((o = ymap_get(p, "freeze"))) {
            if (expect_kind(o, Y_SEQ, "freeze") || o->n > 64)
                return o->kind == Y_SEQ ? error_at(o->loc, "at most 64 layers per freeze list") : -1;
            for (int j = 0; j < o->n; j++) {
                if (expect_kind(o->items[j], Y_SCALAR, "a layer name"))
                    return -1;
                if (!layer_has_weights(m, o->items[j]->text)) {
                    error_at(o->items[j]->loc, "no layer '%s' with weights to freeze", o->items[j]->text);
                    const char *names[256];
                    int nn = 0;
                    for (int q = 0; q < m->nlayers && nn < 256; q++)
                        names[nn++] = m->layers[q]->group;
                    const char *near = closest_name(o->items[j]->text, names, nn);
                    if (near && strcmp(near, o->items[j]->text) != 0)
                        hint("did you mean '%s'?", near);
                    else if (near)
                        hint("'%s' has no weights; freeze the layers that do", near);
                    return -1;
                }
                ph->freeze[ph->num_freeze++] = o->items[j]->text;
            }
        }
        if ((o = ymap_get(p, "optimizer"))) {
            OptimizerSpec spec;
            if (parse_optimizer(o, &spec))
                return -1;
            if (spec.kind != m->optimizer.kind || spec.schedule.kind != SCHEDULE_CONSTANT) {
                error_at(o->loc, "a phase may change the learning rate of the compiled %s, not the optimizer",
                         optimizer_info[m->optimizer.kind].name);
                hint("the generated code holds one optimizer; compile with the one the phases share");
                return -1;
            }
            ph->learning_rate = spec.learning_rate;
        }
    }
    fit->epochs = total;
    return 0;
}

/* mode: auto / min / max */
static int parse_mode(const YNode *v, int *out)
{
    if (expect_kind(v, Y_SCALAR, "mode"))
        return -1;
    if (!strcmp(v->text, "auto"))
        *out = 0;
    else if (!strcmp(v->text, "min"))
        *out = 1;
    else if (!strcmp(v->text, "max"))
        *out = 2;
    else
        return error_at(v->loc, "mode is auto, min or max, not '%s'", v->text);
    return 0;
}

static int get_string(const YNode *v, const char **out, const char *what)
{
    if (expect_kind(v, Y_SCALAR, what))
        return -1;
    if (!*v->text)
        return error_at(v->loc, "%s must not be empty", what);
    *out = v->text;
    return 0;
}

/* fit.callbacks: a list of {Callback: {arguments}} with Keras's defaults. */
static int parse_callbacks(const YNode *list, CallbackSpec *c)
{
    if (expect_kind(list, Y_SEQ, "callbacks"))
        return -1;
    for (int i = 0; i < list->n; i++) {
        const YNode *item = list->items[i], *args = NULL, *v;
        const char *name;
        if (item->kind == Y_SCALAR) {
            name = item->text;
        } else if (item->kind == Y_MAP && item->n == 1) {
            name = ymap_key(item, 0)->text;
            args = ymap_value(item, 0);
            if (yscalar_is_null(args))
                args = NULL;
            else if (expect_kind(args, Y_MAP, "callback arguments"))
                return -1;
        } else {
            return error_at(item->loc, "each callback is {Name: {arguments}}, e.g. - EarlyStopping: {patience: 10}");
        }
        static const YNode empty = {.kind = Y_MAP};
        if (!args)
            args = &empty;
        Loc at = item->kind == Y_MAP ? ymap_key(item, 0)->loc : item->loc;
        long x;
        bool b;
        if (!strcmp(name, "ModelCheckpoint")) {
            if (c->checkpoint.enabled)
                return error_at(at, "ModelCheckpoint is listed twice");
            static const char *const keys[] = {"filepath", "monitor", "save_best_only", "save_weights_only", "mode",
                                               "verbose", "save_freq", NULL};
            if (check_keys(args, "ModelCheckpoint", keys))
                return -1;
            c->checkpoint.enabled = true;
            c->checkpoint.monitor = "val_loss";
            if (!(v = ymap_get(args, "filepath")))
                return error_at(at, "ModelCheckpoint needs a filepath, like my_model.h5 or ckpt_{epoch:02d}.h5");
            if (get_string(v, &c->checkpoint.filepath, "filepath"))
                return -1;
            if ((v = ymap_get(args, "monitor")) && get_string(v, &c->checkpoint.monitor, "monitor"))
                return -1;
            if ((v = ymap_get(args, "save_best_only")) && get_bool(v, &c->checkpoint.save_best_only, "save_best_only"))
                return -1;
            if ((v = ymap_get(args, "save_weights_only")) &&
                get_bool(v, &c->checkpoint.save_weights_only, "save_weights_only"))
                return -1;
            if ((v = ymap_get(args, "mode")) && parse_mode(v, &c->checkpoint.mode))
                return -1;
            if ((v = ymap_get(args, "save_freq")) && (v->kind != Y_SCALAR || strcmp(v->text, "epoch")))
                return error_at(v->loc, "only save_freq: epoch is supported");
        } else if (!strcmp(name, "EarlyStopping")) {
            if (c->early_stopping.enabled)
                return error_at(at, "EarlyStopping is listed twice");
            static const char *const keys[] = {"monitor", "min_delta", "patience", "mode", "baseline",
                                               "restore_best_weights", "start_from_epoch", "verbose", NULL};
            if (check_keys(args, "EarlyStopping", keys))
                return -1;
            c->early_stopping.enabled = true;
            c->early_stopping.monitor = "val_loss";
            c->early_stopping.baseline = NAN;
            if ((v = ymap_get(args, "monitor")) && get_string(v, &c->early_stopping.monitor, "monitor"))
                return -1;
            if ((v = ymap_get(args, "min_delta")) && get_double(v, &c->early_stopping.min_delta, "min_delta"))
                return -1;
            if ((v = ymap_get(args, "baseline")) && !yscalar_is_null(v) &&
                get_double(v, &c->early_stopping.baseline, "baseline"))
                return -1;
            if ((v = ymap_get(args, "patience"))) {
                if (get_c_int(v, &x, 0, "patience"))
                    return -1;
                c->early_stopping.patience = (int)x;
            }
            if ((v = ymap_get(args, "start_from_epoch"))) {
                if (get_c_int(v, &x, 0, "start_from_epoch"))
                    return -1;
                c->early_stopping.start_from_epoch = (int)x;
            }
            if ((v = ymap_get(args, "mode")) && parse_mode(v, &c->early_stopping.mode))
                return -1;
            if ((v = ymap_get(args, "restore_best_weights")) &&
                get_bool(v, &c->early_stopping.restore_best_weights, "restore_best_weights"))
                return -1;
        } else if (!strcmp(name, "ReduceLROnPlateau")) {
            if (c->reduce_lr.enabled)
                return error_at(at, "ReduceLROnPlateau is listed twice");
            static const char *const keys[] = {"monitor", "factor", "patience", "mode", "min_delta", "cooldown",
                                               "min_lr", "verbose", NULL};
            if (check_keys(args, "ReduceLROnPlateau", keys))
                return -1;
            c->reduce_lr.enabled = true;
            c->reduce_lr.monitor = "val_loss";
            c->reduce_lr.factor = 0.1;
            c->reduce_lr.patience = 10;
            c->reduce_lr.min_delta = 1e-4;
            if ((v = ymap_get(args, "monitor")) && get_string(v, &c->reduce_lr.monitor, "monitor"))
                return -1;
            if ((v = ymap_get(args, "factor"))) {
                if (get_double(v, &c->reduce_lr.factor, "factor"))
                    return -1;
                if (!(c->reduce_lr.factor > 0 && c->reduce_lr.factor < 1))
                    return error_at(v->loc, "factor must be between 0 and 1 (Keras refuses >= 1)");
            }
            if ((v = ymap_get(args, "min_delta")) && get_double(v, &c->reduce_lr.min_delta, "min_delta"))
                return -1;
            if ((v = ymap_get(args, "min_lr")) && get_double(v, &c->reduce_lr.min_lr, "min_lr"))
                return -1;
            if ((v = ymap_get(args, "patience"))) {
                if (get_c_int(v, &x, 0, "patience"))
                    return -1;
                c->reduce_lr.patience = (int)x;
            }
            if ((v = ymap_get(args, "cooldown"))) {
                if (get_c_int(v, &x, 0, "cooldown"))
                    return -1;
                c->reduce_lr.cooldown = (int)x;
            }
            if ((v = ymap_get(args, "mode")) && parse_mode(v, &c->reduce_lr.mode))
                return -1;
        } else if (!strcmp(name, "CSVLogger")) {
            if (c->csv_logger.enabled)
                return error_at(at, "CSVLogger is listed twice");
            static const char *const keys[] = {"filename", "separator", "append", NULL};
            if (check_keys(args, "CSVLogger", keys))
                return -1;
            c->csv_logger.enabled = true;
            c->csv_logger.separator = ',';
            if (!(v = ymap_get(args, "filename")))
                return error_at(at, "CSVLogger needs a filename");
            if (get_string(v, &c->csv_logger.filename, "filename"))
                return -1;
            if ((v = ymap_get(args, "separator"))) {
                if (v->kind != Y_SCALAR || strlen(v->text) != 1)
                    return error_at(v->loc, "separator is one character");
                c->csv_logger.separator = v->text[0];
            }
            if ((v = ymap_get(args, "append"))) {
                if (get_bool(v, &b, "append"))
                    return -1;
                c->csv_logger.append = b;
            }
        } else if (!strcmp(name, "TerminateOnNaN")) {
            static const char *const keys[] = {NULL};
            if (check_keys(args, "TerminateOnNaN", keys))
                return -1;
            c->terminate_on_nan = true;
        } else {
            static const char *const known[] = {"ModelCheckpoint", "EarlyStopping", "ReduceLROnPlateau", "CSVLogger",
                                                "TerminateOnNaN"};
            error_at(at, "unknown callback '%s'", name);
            const char *near = closest_name(name, known, 5);
            hint(near ? "did you mean '%s'?" : "callbacks: ModelCheckpoint, EarlyStopping, ReduceLROnPlateau, "
                                               "CSVLogger, TerminateOnNaN%s",
                 near ? near : "");
            return -1;
        }
    }
    return 0;
}

/* classes: [0, 1, 2, 3, 4, 7, 8, 9] keeps those labels, numbered 0.. in
 * that order; binary_class: 6 makes the target 1.0 for label 6, else 0.0
 * (the notes' transfer-learning split of Fashion-MNIST). */
static int parse_label_filter(const YNode *data, DataSpec *d)
{
    const YNode *c = ymap_get(data, "classes"), *b = ymap_get(data, "binary_class");
    long x;
    if (c) {
        if (c->kind != Y_SEQ || c->n == 0 || c->n > 64)
            return error_at(c->loc, "classes is a list of 1 to 64 class labels, like [5, 6]");
        for (int i = 0; i < c->n; i++) {
            if (get_c_int(c->items[i], &x, 0, "a class label"))
                return -1;
            for (int j = 0; j < i; j++)
                if (d->classes[j] == x)
                    return error_at(c->items[i]->loc, "class %ld is listed twice", x);
            d->classes[d->num_classes++] = (int)x;
        }
    }
    if (b) {
        if (get_c_int(b, &x, 0, "binary_class"))
            return -1;
        d->binary = 1;
        d->binary_class = (int)x;
    }
    return 0;
}

/* {dataset: time_series, n_steps: 50, ahead: 1, count: 10000, seed: 42, seq2seq: false}
 * and, for models whose output sequence is shorter (a strided Conv1D front
 * end), target_start / target_stride: the seq2seq targets [start::stride]. */
static int parse_time_series(Model *m, const YNode *data, DataSpec *d)
{
    static const char *const keys[] = {"dataset", "n_steps", "ahead", "count", "seed", "seq2seq", "target_start",
                                       "target_stride", NULL};
    if (check_keys(data, "the time_series dataset", keys))
        return -1;
    *d = (DataSpec){.format = NNRT_DATA_TIME_SERIES, .x = "", .y = "", .scale = 1, .n_steps = 50, .ahead = 1,
                    .count = 10000, .seed = 42, .target_stride = 1, .split = {0.7, 0.2, 0.1}};
    const YNode *v;
    long x;
    struct {
        const char *key;
        int *field;
        long min;
    } ints[] = {{"n_steps", &d->n_steps, 1}, {"ahead", &d->ahead, 1}, {"count", &d->count, 10},
                {"target_start", &d->target_start, 0}, {"target_stride", &d->target_stride, 1}};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if ((v = ymap_get(data, ints[i].key))) {
            if (get_c_int(v, &x, ints[i].min, ints[i].key))
                return -1;
            if (x > 100000000)
                return error_at(v->loc, "%s is too large", ints[i].key);
            *ints[i].field = (int)x;
        }
    if ((v = ymap_get(data, "seed"))) {
        if (get_long(v, &x, 0, "seed"))
            return -1;
        d->seed = (uint64_t)x;
    }
    bool b;
    if ((v = ymap_get(data, "seq2seq"))) {
        if (get_bool(v, &b, "seq2seq"))
            return -1;
        d->seq2seq = b;
    }
    if (d->target_start >= d->n_steps)
        return error_at(ymap_get(data, "target_start")->loc, "target_start must be below n_steps (%d)", d->n_steps);
    if (m->ninputs != 1)
        return error_at(data->loc, "the time_series dataset feeds a model with one input");
    return 0;
}

static int parse_fit(Arena *a, Model *m, const YNode *f, Loc key)
{
    if (expect_kind(f, Y_MAP, "fit"))
        return -1;
    static const char *const keys[] = {"data", "validation", "epochs", "batch_size", "shuffle", "seed", "callbacks",
                                       "phases", "train_limit", "weights_from", NULL};
    if (check_keys(f, "fit", keys))
        return -1;
    FitSpec *fit = &m->fit;
    *fit = (FitSpec){.present = true, .epochs = 1, .batch_size = 32, .shuffle = true, .seed = 42};
    m->fit_loc = f->loc;
    const YNode *data = ymap_get(f, "data"), *val = ymap_get(f, "validation"), *v;
    if (!data) {
        error_at(key, "fit has no data");
        hint("for example:  data: {dataset: fashion_mnist}");
        return -1;
    }
    if (expect_kind(data, Y_MAP, "fit data"))
        return -1;
    const YNode *ds = ymap_get(data, "dataset");
    if (ds) {
        if (expect_kind(ds, Y_SCALAR, "dataset"))
            return -1;
        if (!strcmp(ds->text, "time_series")) {
            if (parse_time_series(m, data, &fit->train))
                return -1;
        } else if (strcmp(ds->text, "fashion_mnist") != 0) {
            error_at(ds->loc, "unknown dataset '%s'", ds->text);
            hint("built-in datasets: fashion_mnist, time_series");
            return -1;
        } else {
        static const char *const dkeys[] = {"dataset", "classes", "binary_class", NULL};
        if (check_keys(data, "the fashion_mnist dataset", dkeys))
            return -1;
        const double scale = 1.0 / 255.0;
        fit->train = (DataSpec){.format = NNRT_DATA_IDX, .x = FASHION_DIR "train-images-idx3-ubyte.gz",
                                .y = FASHION_DIR "train-labels-idx1-ubyte.gz", .scale = scale};
        fit->test = (DataSpec){.format = NNRT_DATA_IDX, .x = FASHION_DIR "t10k-images-idx3-ubyte.gz",
                               .y = FASHION_DIR "t10k-labels-idx1-ubyte.gz", .scale = scale};
        fit->split_first = 5000;
        if (parse_label_filter(data, &fit->train))
            return -1;
        memcpy(fit->test.classes, fit->train.classes, sizeof fit->test.classes);
        fit->test.num_classes = fit->train.num_classes;
        fit->test.binary = fit->train.binary;
        fit->test.binary_class = fit->train.binary_class;
        const char *files[] = {fit->train.x, fit->train.y, fit->test.x, fit->test.y};
        for (int i = 0; i < 4; i++)
            if (access(files[i], R_OK) != 0) {
                error_at(ds->loc, "the fashion_mnist dataset is not installed (%s: %s)", files[i], strerror(errno));
                hint("install it with:  apt-get install dataset-fashion-mnist");
                return -1;
            }
        }
    } else {
        static const char *const dkeys[] = {"train", "test", NULL};
        if (check_keys(data, "fit data", dkeys))
            return -1;
        const YNode *tr = ymap_get(data, "train"), *te = ymap_get(data, "test");
        if (!tr)
            return error_at(data->loc, "fit data needs a train source (or dataset: fashion_mnist)");
        if (parse_source(a, m, tr, &fit->train) || (te && parse_source(a, m, te, &fit->test)))
            return -1;
    }
    if (val) {
        if (expect_kind(val, Y_MAP, "validation"))
            return -1;
        static const char *const vkeys[] = {"split_first", "split_last", "data", NULL};
        if (check_keys(val, "validation", vkeys))
            return -1;
        if (val->n != 1)
            return error_at(val->loc, "validation takes one of split_first, split_last or data");
        fit->split_first = 0;
        if ((v = ymap_get(val, "split_first")) && get_long(v, &fit->split_first, 1, "split_first"))
            return -1;
        if ((v = ymap_get(val, "split_last"))) {
            if (get_double(v, &fit->split_last, "split_last"))
                return -1;
            if (!(fit->split_last > 0 && fit->split_last < 1))
                return error_at(v->loc, "split_last is a fraction in (0, 1), like 0.1");
        }
        if ((v = ymap_get(val, "data")) && parse_source(a, m, v, &fit->validation))
            return -1;
    }
    long lv;
    if ((v = ymap_get(f, "epochs"))) {
        if (get_c_int(v, &lv, 1, "epochs"))
            return -1;
        fit->epochs = (int)lv;
    }
    if ((v = ymap_get(f, "batch_size")) && get_c_int(v, &fit->batch_size, 1, "batch_size"))
        return -1;
    if ((v = ymap_get(f, "shuffle")) && get_bool(v, &fit->shuffle, "shuffle"))
        return -1;
    if ((v = ymap_get(f, "seed"))) {
        if (get_long(v, &lv, 0, "seed"))
            return -1;
        fit->seed = (uint64_t)lv;
    }
    if ((v = ymap_get(f, "callbacks")) && parse_callbacks(v, &fit->callbacks))
        return -1;
    if ((v = ymap_get(f, "train_limit")) && get_long(v, &fit->train_limit, 1, "train_limit"))
        return -1;
    if ((v = ymap_get(f, "weights_from"))) {
        if (expect_kind(v, Y_SCALAR, "weights_from"))
            return -1;
        fit->weights_from = resolve_path(a, m, v);
    }
    if ((v = ymap_get(f, "phases")) && parse_phases(a, m, v, fit))
        return -1;
    return 0;
}

/* ---- the file ---------------------------------------------------------------------------- */

int model_parse(Arena *a, const char *path, Model *m)
{
    memset(m, 0, sizeof *m);
    m->file = path;
    char *dir = arena_strdup(a, path);
    m->dir = arena_strdup(a, dirname(dir));
    YNode *root;
    if (keras_model_file(path)) {  /* a Keras model: its architecture as YAML, then as any model */
        char *text;
        if (keras_h5_to_yaml(a, path, &text))
            return -1;
        if ((int64_t)strlen(text) > limits()->model_bytes) {
            error_plain("%s: its model_config is %zu bytes as YAML, more than the %lld of --max-model-bytes", path,
                        strlen(text), (long long)limits()->model_bytes);
            hint("raise the cap with --max-model-bytes N if the model is meant to be this big");
            return -1;
        }
        root = yaml_load_string(a, arena_printf(a, "%s (as YAML)", path), text);
    } else {
        root = yaml_load(a, path);
    }
    if (!root)
        return -1;
    if (root->kind != Y_MAP) {
        error_at(root->loc, "a model file is a mapping with name, inputs, layers, ...; this is a %s",
                 ykind_name(root->kind));
        return -1;
    }
    static const char *const keys[] = {"name", "inputs", "layers", "outputs", "compile", "fit", "blocks", "custom",
                                       NULL};
    if (check_keys(root, "the model file", keys))
        return -1;
    const YNode *v;
    custom_functions_use(NULL, 0);
    if ((v = ymap_get(root, "custom")) && parse_customs(a, m, v))
        return -1;
    m->name = "model";
    if ((v = ymap_get(root, "name"))) {
        if (expect_kind(v, Y_SCALAR, "name"))
            return -1;
        if (!c_identifier_ok(v->text)) {
            error_at(v->loc, "the model name '%s' is not a C identifier", v->text);
            hint("it prefixes the generated API (NAME_new, NAME_predict...): use letters, digits and _, at most %d "
                 "characters", C_NAME_MAX);
            return -1;
        }
        if (emit_reserved_prefix(v->text)) {
            error_at(v->loc, "the model name '%s' is taken by C, its library or the generated code", v->text);
            hint("it becomes the C type %s of the generated API; pick another name, e.g. %s_model", v->text,
                 v->text);
            return -1;
        }
        m->name = v->text;
        m->name_loc = v->loc;
    }
    if ((v = ymap_get(root, "inputs"))) {
        if (v->kind == Y_MAP) {
            if (parse_input(a, v, &m->inputs[0], 0))
                return -1;
            m->ninputs = 1;
        } else {
            if (expect_kind(v, Y_SEQ, "inputs")) {
                hint("for example:  inputs: [{name: image, shape: [28, 28]}]");
                return -1;
            }
            if (v->n == 0 || v->n > 16)
                return error_at(v->loc, "a model has 1 to 16 inputs");
            for (int i = 0; i < v->n; i++) {
                if (parse_input(a, v->items[i], &m->inputs[i], i))
                    return -1;
                for (int j = 0; j < i; j++)
                    if (!strcmp(m->inputs[i].name, m->inputs[j].name)) {
                        error_at(v->items[i]->loc, "a second input named '%s'", m->inputs[i].name);
                        hint("the first is at line %d; input names must be unique", m->inputs[j].loc.line);
                        return -1;
                    }
            }
            m->ninputs = v->n;
        }
    }
    if (!(v = ymap_get(root, "layers"))) {
        error_at(root->loc, "the model has no 'layers' list");
        hint("add  layers: [{Dense: {units: 10}}]  or one '- Class: {arguments}' item per line");
        return -1;
    }
    if (expand_layers(a, m, v, ymap_get(root, "blocks")))
        return -1;
    if (m->ninputs == 0) {
        error_at(root->loc, "the model has no inputs");
        hint("add  inputs: [{name: x, shape: [28, 28]}]  (the per-sample shape, without the batch axis)");
        return -1;
    }
    if ((v = ymap_get(root, "outputs"))) {
        const YNode *const *items = v->kind == Y_SEQ ? (const YNode *const *)v->items : (const YNode *const *)&v;
        int n = v->kind == Y_SEQ ? v->n : 1;
        if (n == 0 || n > 16)
            return error_at(v->loc, "a model has 1 to 16 outputs");
        for (int i = 0; i < n; i++) {
            if (expect_kind(items[i], Y_SCALAR, "an output name"))
                return -1;
            bool found = false;
            for (int j = 0; j < m->nlayers; j++)
                found |= !strcmp(m->layers[j]->name, items[i]->text);
            if (!found) {
                error_at(items[i]->loc, "no layer is named '%s'", items[i]->text);
                const char *names[256];
                int nn = 0;
                for (int j = 0; j < m->nlayers && nn < 256; j++)
                    names[nn++] = m->layers[j]->name;
                const char *near = closest_name(items[i]->text, names, nn);
                if (near)
                    hint("did you mean '%s'?", near);
                return -1;
            }
            m->outputs[i] = items[i]->text;
            m->output_locs[i] = items[i]->loc;
        }
        m->noutputs = n;
    } else {
        m->outputs[0] = m->layers[m->nlayers - 1]->name;
        m->output_locs[0] = m->layers[m->nlayers - 1]->loc;
        m->noutputs = 1;
    }
    if ((v = ymap_get(root, "compile")) && parse_compile(a, m, v, key_loc(root, "compile")))
        return -1;
    if ((v = ymap_get(root, "fit"))) {
        if (!m->has_compile) {
            error_at(key_loc(root, "fit"), "fit needs a compile section (loss and optimizer)");
            hint("for example:  compile: {loss: sparse_categorical_crossentropy, optimizer: sgd}");
            return -1;
        }
        if (parse_fit(a, m, v, key_loc(root, "fit")))
            return -1;
    }
    return resolve_timesteps(m);
}
