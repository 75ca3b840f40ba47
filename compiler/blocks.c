/* blocks.c — the `layers:` list as a flat list of named, connected layers.
 *
 * Expands the three forms model-format.md §2 adds to plain layers: `repeat`
 * (the same items N times), `if` (a `cond` expression picks `then` or
 * `else`), and uses of user-defined blocks (a Keras custom Layer): the
 * block's items with `$param` replaced by the use's arguments and `$in` by
 * its inputs, names local to each use. A layer inside an instance is named
 * "instance/local" (unique in the model) and keeps the instance as its HDF5
 * group, so its weights save as "instance/local/kernel:0" as Keras writes
 * a custom layer's weights. Default names count per class within each
 * scope, Keras style (dense, dense_1, ...). The instance's last layer also
 * answers to the instance's name.
 *
 * Expansion is where a few lines of YAML become many layers (a repeat of
 * 100000, blocks using blocks twice, 32 deep), so it is bounded as it goes
 * (limits.c): the layer count at each layer added, and the items visited
 * (layers, repeat rounds, ifs, block uses) at 64 per allowed layer, so that
 * nested repeats of nothing stop early too. cond arithmetic is checked for
 * overflow.
 */
#include "compiler.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    Arena *a;
    Model *m;
    const YNode *blocks;         /* name -> {params, layers}, or NULL */
    StrMap counts;               /* "scope\nstem" -> next default-name number + 1 */
    StrMap names;                /* full names in use -> their Layer */
    const char *last;            /* full name of the last layer added */
    int depth;                   /* instance nesting, against a block using itself */
    int cap;
    int64_t steps;               /* items visited, against limits()->layers * 64 */
} Expand;

typedef struct {
    const char *prefix;          /* "" at the top, "residual_unit_3/" inside an instance */
    const char *group;           /* the top-level instance, or NULL */
    const char *block_class;
    const YNode *params;         /* param -> value, or NULL */
    const char **in;             /* $in: the instance's inputs, full names */
    Loc *in_locs;
    int nin;
    bool first_pending;          /* the instance's first layer without inputs takes $in */
    bool trainable;
} Scope;

/* ---- cond expressions ------------------------------------------------------------ */

typedef struct {
    const char *p;
    const YNode *params;
    Loc loc;
    int failed;
} Cond;

static long cond_fail(Cond *c, const char *what)
{
    if (!c->failed)
        error_at(c->loc, "in cond: %s", what);
    c->failed = 1;
    return 0;
}

static void skip_blank(Cond *c)
{
    while (isspace((unsigned char)*c->p))
        c->p++;
}

static bool accept(Cond *c, const char *tok)
{
    skip_blank(c);
    size_t n = strlen(tok);
    if (strncmp(c->p, tok, n) != 0)
        return false;
    if (isalpha((unsigned char)tok[0]) && (isalnum((unsigned char)c->p[n]) || c->p[n] == '_'))
        return false;  /* "and" is not the start of "android" */
    c->p += n;
    return true;
}

static long cond_or(Cond *c);

static long cond_atom(Cond *c)
{
    skip_blank(c);
    if (accept(c, "(")) {
        long v = cond_or(c);
        if (!accept(c, ")"))
            return cond_fail(c, "a ')' is missing");
        return v;
    }
    if (accept(c, "true"))
        return 1;
    if (accept(c, "false"))
        return 0;
    if (*c->p == '$') {
        const char *s = ++c->p;
        while (isalnum((unsigned char)*c->p) || *c->p == '_')
            c->p++;
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)(c->p - s), s);
        const YNode *v = c->params ? ymap_get(c->params, name) : NULL;
        if (!v) {
            char msg[128];
            snprintf(msg, sizeof msg, "'$%s' is not a parameter of this block", name);
            return cond_fail(c, msg);
        }
        if (v->kind == Y_SCALAR && (!strcmp(v->text, "true") || !strcmp(v->text, "false")))
            return !strcmp(v->text, "true");
        char *end;
        long x = v->kind == Y_SCALAR ? strtol(v->text, &end, 10) : 0;
        if (v->kind != Y_SCALAR || !*v->text || *end) {
            char msg[160];
            snprintf(msg, sizeof msg, "'$%s' is '%s', not an integer", name, v->kind == Y_SCALAR ? v->text : "a list");
            return cond_fail(c, msg);
        }
        return x;
    }
    if (isdigit((unsigned char)*c->p)) {
        errno = 0;
        long x = strtol(c->p, (char **)&c->p, 10);
        if (errno)
            return cond_fail(c, "integer out of range");
        return x;
    }
    return cond_fail(c, *c->p ? "expected an integer, a $parameter or '('" : "the expression ends too early");
}

/* a op b, or a located error when it overflows a long */
static long cond_checked(Cond *c, char op, long a, long b)
{
    long v = 0;
    bool overflow = op == '+' ? __builtin_add_overflow(a, b, &v)
                    : op == '-' ? __builtin_sub_overflow(a, b, &v)
                                : __builtin_mul_overflow(a, b, &v);
    return overflow ? cond_fail(c, "integer out of range") : v;
}

static long cond_unary(Cond *c)
{
    if (accept(c, "-"))
        return cond_checked(c, '-', 0, cond_unary(c));
    if (accept(c, "!") || accept(c, "not"))
        return !cond_unary(c);
    return cond_atom(c);
}

static long cond_product(Cond *c)
{
    long v = cond_unary(c);
    for (;;) {
        if (accept(c, "*"))
            v = cond_checked(c, '*', v, cond_unary(c));
        else if (accept(c, "/") || accept(c, "%")) {
            char op = c->p[-1];
            long d = cond_unary(c);
            if (d == 0)
                return cond_fail(c, "division by zero");
            if (d == -1)  /* LONG_MIN / -1 overflows */
                d = 1, v = cond_checked(c, '-', 0, v);
            v = op == '/' ? v / d : v % d;
        } else
            return v;
    }
}

static long cond_sum(Cond *c)
{
    long v = cond_product(c);
    for (;;) {
        if (accept(c, "+"))
            v = cond_checked(c, '+', v, cond_product(c));
        else if (accept(c, "-"))
            v = cond_checked(c, '-', v, cond_product(c));
        else
            return v;
    }
}

static long cond_compare(Cond *c)
{
    long v = cond_sum(c);
    if (accept(c, "=="))
        return v == cond_sum(c);
    if (accept(c, "!="))
        return v != cond_sum(c);
    if (accept(c, "<="))
        return v <= cond_sum(c);
    if (accept(c, ">="))
        return v >= cond_sum(c);
    if (accept(c, "<"))
        return v < cond_sum(c);
    if (accept(c, ">"))
        return v > cond_sum(c);
    return v;
}

static long cond_and(Cond *c)
{
    long v = cond_compare(c);
    while (accept(c, "&&") || accept(c, "and")) {
        long w = cond_compare(c);
        v = v && w;
    }
    return v;
}

static long cond_or(Cond *c)
{
    long v = cond_and(c);
    while (accept(c, "||") || accept(c, "or")) {
        long w = cond_and(c);
        v = v || w;
    }
    return v;
}

int eval_cond(const YNode *cond, const YNode *params, long *out)
{
    if (cond->kind != Y_SCALAR)
        return error_at(cond->loc, "cond must be an expression like \"$strides > 1\"");
    Cond c = {cond->text, params, cond->loc, 0};
    *out = cond_or(&c);
    skip_blank(&c);
    if (!c.failed && *c.p)
        cond_fail(&c, "unexpected text after the expression");
    return c.failed ? -1 : 0;
}

/* ---- $param substitution ----------------------------------------------------------- */

/* A copy of v with every scalar "$name" replaced by the parameter's value;
 * "$in" stays for the connection step. NULL after a located error. */
static YNode *subst(Arena *a, const YNode *v, const YNode *params)
{
    if (!params)
        return (YNode *)v;
    if (v->kind == Y_SCALAR) {
        if (v->text[0] != '$' || !strcmp(v->text, "$in"))
            return (YNode *)v;
        const YNode *val = ymap_get(params, v->text + 1);
        if (!val) {
            error_at(v->loc, "'%s' is not a parameter of this block", v->text);
            char list[256] = "";
            for (int i = 0; i < params->n; i++)
                snprintf(list + strlen(list), sizeof list - strlen(list), "%s$%s", i ? ", " : "",
                         ymap_key(params, i)->text);
            hint("its parameters are: %s", params->n ? list : "none");
            return NULL;
        }
        YNode *copy = arena_alloc(a, sizeof *copy);
        *copy = *val;
        copy->loc = v->loc;  /* errors point at the use inside the block */
        return copy;
    }
    YNode *copy = arena_alloc(a, sizeof *copy);
    *copy = *v;
    int count = v->kind == Y_MAP ? 2 * v->n : v->n;
    copy->items = arena_alloc(a, (size_t)(count + 1) * sizeof *copy->items);
    for (int i = 0; i < count; i++)
        if (!(copy->items[i] = (v->kind == Y_MAP && i % 2 == 0) ? v->items[i] : subst(a, v->items[i], params)))
            return NULL;
    return copy;
}

/* ---- names ---------------------------------------------------------------------------- */

/* Keras's default stem of a class name: ResidualUnit -> residual_unit */
static const char *snake(Arena *a, const char *name)
{
    char buf[128];
    size_t n = 0;
    for (const char *p = name; *p && n < sizeof buf - 2; p++) {
        if (isupper((unsigned char)*p) && p != name && (islower((unsigned char)p[-1]) ||
                                                         (p[1] && islower((unsigned char)p[1]))))
            buf[n++] = '_';
        buf[n++] = (char)tolower((unsigned char)*p);
    }
    buf[n] = 0;
    return arena_strdup(a, buf);
}

/* The next default name of stem in this scope: stem, stem_1, stem_2 ... */
static const char *default_name(Expand *x, const Scope *sc, const char *stem)
{
    const char *key = arena_printf(x->a, "%s\n%s", sc->prefix, stem);
    intptr_t k = (intptr_t)strmap_get(&x->counts, key);
    strmap_put(x->a, &x->counts, key, (void *)(k + 1));
    return k == 0 ? stem : arena_printf(x->a, "%s_%ld", stem, (long)k);
}

/* Full names of a layer's `inputs`: "$in" is the instance's inputs, other
 * names are local to the scope. */
static int resolve_inputs(Expand *x, const Scope *sc, Layer *l)
{
    int n = 0;
    for (int i = 0; i < l->ninputs; i++)
        n += !strcmp(l->input_names[i], "$in") ? sc->nin : 1;
    const char **names = arena_alloc(x->a, (size_t)(n + 1) * sizeof *names);
    Loc *locs = arena_alloc(x->a, (size_t)(n + 1) * sizeof *locs);
    int k = 0;
    for (int i = 0; i < l->ninputs; i++) {
        if (!strcmp(l->input_names[i], "$in")) {
            if (!sc->in)
                return error_at(l->input_locs[i], "'$in' is only meaningful inside a block");
            for (int j = 0; j < sc->nin; j++) {
                names[k] = sc->in[j];
                locs[k++] = l->input_locs[i];
            }
        } else {
            names[k] = arena_printf(x->a, "%s%s", sc->prefix, l->input_names[i]);
            locs[k++] = l->input_locs[i];
        }
    }
    l->input_names = names;
    l->input_locs = locs;
    l->ninputs = k;
    return 0;
}

static int add_layer(Expand *x, Layer *l)
{
    Layer *first = strmap_get(&x->names, l->name);
    if (first) {
        error_at(l->loc, "a second layer named '%s'", l->name);
        hint("the first is at line %d; layer names must be unique", first->loc.line);
        return -1;
    }
    for (int j = 0; j < x->m->ninputs; j++)
        if (!strcmp(l->name, x->m->inputs[j].name))
            return error_at(l->loc, "layer name '%s' is already an input's name", l->name);
    if (x->m->nlayers >= limits()->layers) {
        error_at(l->loc, "the model expands to more than %lld layers", (long long)limits()->layers);
        hint("repeat, if and blocks multiply the layers they hold; if the model is meant to be this big, "
             "raise the cap with --max-layers N");
        return -1;
    }
    strmap_put(x->a, &x->names, l->name, l);
    if (x->m->nlayers == x->cap) {
        x->cap = x->cap ? 2 * x->cap : 64;
        Layer **bigger = arena_alloc(x->a, (size_t)x->cap * sizeof *bigger);
        if (x->m->nlayers)
            memcpy(bigger, x->m->layers, (size_t)x->m->nlayers * sizeof *bigger);
        x->m->layers = bigger;
    }
    x->m->layers[x->m->nlayers++] = l;
    x->last = l->name;
    return 0;
}

/* ---- the forms ------------------------------------------------------------------------ */

static int expand_items(Expand *x, const YNode *seq, Scope *sc);

/* One more item visited; the budget is 64 per allowed layer. */
static int expansion_step(Expand *x, Loc loc)
{
    int64_t budget;
    if (!size_mul(limits()->layers, 64, &budget))
        budget = INT64_MAX;
    if (++x->steps <= budget)
        return 0;
    error_at(loc, "expanding the layers visits more than %lld items (repeats of nothing, or of ifs not taken?)",
             (long long)budget);
    hint("the budget is 64 items per layer of --max-layers (now %lld); raise it with --max-layers N if the "
         "model is meant to be this big", (long long)limits()->layers);
    return -1;
}

static int expand_repeat(Expand *x, const YNode *key, const YNode *v, Scope *sc)
{
    if (v->kind != Y_MAP)
        return error_at(v->loc, "repeat takes {times: N, layers: [...]}");
    for (int i = 0; i < v->n; i++)
        if (strcmp(ymap_key(v, i)->text, "times") && strcmp(ymap_key(v, i)->text, "layers"))
            return error_at(ymap_key(v, i)->loc, "repeat takes only times and layers, not '%s'", ymap_key(v, i)->text);
    const YNode *times = ymap_get(v, "times"), *layers = ymap_get(v, "layers");
    if (!times || !layers)
        return error_at(key->loc, "repeat needs times and layers");
    long n;
    if (eval_cond(times, sc->params, &n))
        return -1;
    if (n < 0 || n > 100000)
        return error_at(times->loc, "times must be between 0 and 100000, not %ld", n);
    for (long i = 0; i < n; i++)
        if (expansion_step(x, key->loc) || expand_items(x, layers, sc))
            return -1;
    return 0;
}

static int expand_if(Expand *x, const YNode *key, const YNode *v, Scope *sc)
{
    if (v->kind != Y_MAP)
        return error_at(v->loc, "if takes {cond: \"...\", then: [...], else: [...]}");
    for (int i = 0; i < v->n; i++) {
        const char *k = ymap_key(v, i)->text;
        if (strcmp(k, "cond") && strcmp(k, "then") && strcmp(k, "else"))
            return error_at(ymap_key(v, i)->loc, "if takes only cond, then and else, not '%s'", k);
    }
    const YNode *cond = ymap_get(v, "cond");
    if (!cond)
        return error_at(key->loc, "if needs a cond");
    long truth;
    if (eval_cond(cond, sc->params, &truth))
        return -1;
    const YNode *branch = ymap_get(v, truth ? "then" : "else");
    return branch && !yscalar_is_null(branch) ? expand_items(x, branch, sc) : 0;
}

static int expand_instance(Expand *x, const YNode *key, const YNode *args, const YNode *def, Scope *sc)
{
    if (def->kind != Y_MAP)
        return error_at(def->loc, "block '%s' must be a mapping with params and layers", key->text);
    const YNode *defaults = ymap_get(def, "params"), *layers = ymap_get(def, "layers");
    if (!layers)
        return error_at(def->loc, "block '%s' has no layers", key->text);
    if (defaults && defaults->kind != Y_MAP)
        return error_at(defaults->loc, "params must map each parameter to its default");
    if (yscalar_is_null(args))
        args = NULL;
    if (args && args->kind != Y_MAP)
        return error_at(args->loc, "the arguments of %s must be a mapping", key->text);
    if (args && !(args = subst(x->a, args, sc->params)))
        return -1;
    /* parameters: the defaults, overridden by the use's arguments */
    YNode *params = arena_alloc(x->a, sizeof *params);
    params->kind = Y_MAP;
    params->loc = def->loc;
    int np = defaults ? defaults->n : 0;
    params->items = arena_alloc(x->a, (size_t)(2 * np + 2) * sizeof *params->items);
    for (int i = 0; i < np; i++) {
        params->items[2 * i] = ymap_key(defaults, i);
        params->items[2 * i + 1] = ymap_value(defaults, i);
    }
    params->n = np;
    const char *name = NULL;
    Layer inputs = {0};
    bool trainable = sc->trainable;
    for (int i = 0; args && i < args->n; i++) {
        const YNode *k = ymap_key(args, i), *v = ymap_value(args, i);
        if (!strcmp(k->text, "name")) {
            if (v->kind != Y_SCALAR || yscalar_is_null(v))
                return error_at(v->loc, "a layer name must be a plain name, not %s",
                                v->kind == Y_SCALAR ? "null" : v->kind == Y_SEQ ? "a list" : "a mapping");
            name = v->text;
        } else if (!strcmp(k->text, "inputs")) {
            const YNode *const *items = v->kind == Y_SEQ ? (const YNode *const *)v->items : (const YNode *const *)&v;
            int n = v->kind == Y_SEQ ? v->n : 1;
            inputs.input_names = arena_alloc(x->a, (size_t)(n + 1) * sizeof *inputs.input_names);
            inputs.input_locs = arena_alloc(x->a, (size_t)(n + 1) * sizeof *inputs.input_locs);
            for (int j = 0; j < n; j++) {
                if (items[j]->kind != Y_SCALAR || yscalar_is_null(items[j]))
                    return error_at(items[j]->loc, "inputs must be layer or input names, not null or a collection");
                inputs.input_names[j] = items[j]->text;
                inputs.input_locs[j] = items[j]->loc;
            }
            inputs.ninputs = n;
        } else if (!strcmp(k->text, "trainable")) {
            if (v->kind != Y_SCALAR || (strcmp(v->text, "true") && strcmp(v->text, "false")))
                return error_at(v->loc, "trainable must be true or false");
            trainable = trainable && !strcmp(v->text, "true");
        } else {
            int j = 0;
            while (j < np && strcmp(ymap_key(params, j)->text, k->text))
                j++;
            if (j == np) {
                error_at(k->loc, "block %s has no parameter '%s'", key->text, k->text);
                char list[256] = "";
                for (int q = 0; q < np; q++)
                    snprintf(list + strlen(list), sizeof list - strlen(list), "%s%s", q ? ", " : "",
                             ymap_key(params, q)->text);
                hint("its parameters are: %s (and name, inputs, trainable)", np ? list : "none");
                return -1;
            }
            params->items[2 * j + 1] = (YNode *)v;
        }
    }
    const char *local = name ? name : default_name(x, sc, snake(x->a, key->text));
    const char *full = arena_printf(x->a, "%s%s", sc->prefix, local);
    if (strmap_get(&x->names, full))
        return error_at(key->loc, "a second layer named '%s'", full);
    /* the instance's inputs, as full names */
    if (inputs.ninputs) {
        if (resolve_inputs(x, sc, &inputs))
            return -1;
    } else if (sc->first_pending) {
        inputs.input_names = sc->in;
        inputs.input_locs = sc->in_locs;
        inputs.ninputs = sc->nin;
    } else {
        const char *prev = x->last ? x->last : x->m->ninputs ? x->m->inputs[0].name : NULL;
        if (!prev)
            return error_at(key->loc, "the block %s has no input: declare the model's inputs", key->text);
        inputs.input_names = arena_alloc(x->a, sizeof(char *));
        inputs.input_locs = arena_alloc(x->a, sizeof(Loc));
        inputs.input_names[0] = prev;
        inputs.input_locs[0] = key->loc;
        inputs.ninputs = 1;
    }
    if (++x->depth > 32)
        return error_at(key->loc, "blocks nest more than 32 deep (does %s use itself?)", key->text);
    Scope inner = {
        .prefix = arena_printf(x->a, "%s/", full),
        .group = sc->group ? sc->group : full,
        .block_class = sc->block_class ? sc->block_class : key->text,
        .params = params,
        .in = inputs.input_names,
        .in_locs = inputs.input_locs,
        .nin = inputs.ninputs,
        .first_pending = true,
        .trainable = trainable,
    };
    sc->first_pending = false;
    int before = x->m->nlayers;
    if (expand_items(x, layers, &inner))
        return -1;
    x->depth--;
    if (x->m->nlayers == before)
        return error_at(key->loc, "this use of %s expands to no layers", key->text);
    x->m->layers[x->m->nlayers - 1]->binds_as = full;
    strmap_put(x->a, &x->names, full, x->m->layers[x->m->nlayers - 1]);
    return 0;
}

static int expand_layer(Expand *x, const YNode *item, Scope *sc)
{
    const YNode *use = subst(x->a, item, sc->params);
    if (!use)
        return -1;
    Layer *l = arena_alloc(x->a, sizeof *l);
    if (parse_layer(x->a, x->m, use, l))
        return -1;
    const char *local = l->name ? l->name : default_name(x, sc, l->cls->prefix);  /* named ones do not count */
    l->name = arena_printf(x->a, "%s%s", sc->prefix, local);
    if (l->ninputs) {
        if (resolve_inputs(x, sc, l))
            return -1;
    } else if (sc->first_pending) {
        l->input_names = sc->in;
        l->input_locs = sc->in_locs;
        l->ninputs = sc->nin;
    }
    sc->first_pending = false;
    l->group = sc->group ? sc->group : l->name;
    l->local = sc->group ? l->name + strlen(sc->group) + 1 : NULL;
    l->block_class = sc->block_class;
    l->trainable = l->trainable && sc->trainable;
    return add_layer(x, l);
}

static int expand_items(Expand *x, const YNode *seq, Scope *sc)
{
    if (seq->kind != Y_SEQ)
        return error_at(seq->loc, "expected a list of layers (each item starting with '- ')");
    for (int i = 0; i < seq->n; i++) {
        const YNode *item = seq->items[i];
        if (expansion_step(x, item->loc))
            return -1;
        if (item->kind == Y_MAP && item->n == 1) {
            const YNode *key = ymap_key(item, 0), *v = ymap_value(item, 0);
            int rc = 0;
            const YNode *def = x->blocks ? ymap_get(x->blocks, key->text) : NULL;
            if (!strcmp(key->text, "repeat"))
                rc = expand_repeat(x, key, v, sc);
            else if (!strcmp(key->text, "if"))
                rc = expand_if(x, key, v, sc);
            else if (def)
                rc = expand_instance(x, key, v, def, sc);
            else
                rc = expand_layer(x, item, sc);
            if (rc)
                return -1;
            continue;
        }
        if (expand_layer(x, item, sc))
            return -1;
    }
    return 0;
}

int expand_layers(Arena *a, Model *m, const YNode *layers, const YNode *blocks)
{
    if (blocks) {
        if (blocks->kind != Y_MAP)
            return error_at(blocks->loc, "blocks must map block names to {params, layers}");
        for (int i = 0; i < blocks->n; i++) {
            const YNode *k = ymap_key(blocks, i);
            if (layer_class_find(k->text))
                return error_at(k->loc, "block name '%s' is already a Keras layer class", k->text);
            if (!strcmp(k->text, "repeat") || !strcmp(k->text, "if"))
                return error_at(k->loc, "'%s' cannot name a block", k->text);
            const YNode *def = ymap_value(blocks, i);
            for (int j = 0; def->kind == Y_MAP && j < def->n; j++)
                if (strcmp(ymap_key(def, j)->text, "params") && strcmp(ymap_key(def, j)->text, "layers"))
                    return error_at(ymap_key(def, j)->loc, "a block has params and layers, not '%s'",
                                    ymap_key(def, j)->text);
        }
    }
    if (layers->kind != Y_SEQ)
        return error_at(layers->loc, "layers must be a list");
    if (layers->n == 0)
        return error_at(layers->loc, "the model has no layers");
    Expand x = {.a = a, .m = m, .blocks = blocks};
    Scope top = {.prefix = "", .trainable = true};
    return expand_items(&x, layers, &top);
}
