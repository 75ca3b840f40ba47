/* expr.c — math expressions for Keras custom functions (model-format.md §2).
 *
 * Where Keras takes a Python function (custom activation, loss, regularizer,
 * constraint, metric), the model file gives a scalar expression over named
 * variables, "log(exp(z) + 1)". This file parses it, differentiates it
 * symbolically and prints it as one C float expression, which the emitter
 * pastes into its loops as it pastes ACT_TABLE rows.
 *
 * Parsing is recursive descent, one function per precedence level, lowest
 * first: c ? a : b, comparisons (not chained), + -, * /, unary -, then ^
 * (right-associative; -a^b is -(a^b), as in Python). Every node keeps the
 * Loc of its token, the scalar's Loc plus the characters before it, so an
 * error points at the column inside the YAML string. `where:` definitions
 * are parsed on first use and substituted as shared subtrees; a path of the
 * definitions being parsed reports cycles.
 *
 * Every tree is built through mk(), which simplifies as it builds: constants
 * fold, 0*x, 1*x, x+0, x^1, x/x, a*b/a, c ? a : a, -(-x) disappear, constant
 * factors move to the front of products and merge, log(exp(x) + 1) becomes
 * the stable softplus(x). Division by an operand that may be zero at run
 * time cancels (x/x is 1), as in every symbolic differentiator. So derivatives come out
 * readable without a separate pass. After parsing, reductions are lifted to
 * the root (c * sum(a) + sum(b) -> sum(c*a + b)); any other use of one is an
 * error, since the caller emits the reduction loop around the body.
 *
 * Invariants: a tree is never changed after mk() returns it; a reduction is
 * only ever the root; EX_VAR.var indexes ExprEnv.vars.
 */
#include "compiler.h"

#include <assert.h>
#include <ctype.h>
#include <limits.h>
#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const char *op;              /* operator spelling, NULL for functions */
    const char *fn;              /* callable name, NULL for operators */
    int arity;
} ExprInfo;

static const ExprInfo expr_info[EX_COUNT] = {
#define X(e, op, fn, n) [EX_##e] = {op, fn, n},
    EXPR_TABLE(X)
#undef X
};

static const char *kind_name(ExprKind k)
{
    return expr_info[k].fn ? expr_info[k].fn : expr_info[k].op;
}

static bool is_num(const Expr *e, double v) { return e->kind == EX_NUM && e->num == v; }
static bool is_reduction(ExprKind k) { return k == EX_SUM || k == EX_MEAN; }
static bool is_comparison(ExprKind k) { return k >= EX_LT && k <= EX_NE; }

/* ---- evaluation ------------------------------------------------------------------ */

/* The value of one node from its operands' values v (num: EX_NUM's value). */
static double apply(ExprKind k, double num, const double *v)
{
    switch (k) {
    case EX_NUM: return num;
    case EX_VAR: return num;
    case EX_NEG: return -v[0];
    case EX_ADD: return v[0] + v[1];
    case EX_SUB: return v[0] - v[1];
    case EX_MUL: return v[0] * v[1];
    case EX_DIV: return v[0] / v[1];
    case EX_POW: return pow(v[0], v[1]);
    case EX_LT: return v[0] < v[1];
    case EX_LE: return v[0] <= v[1];
    case EX_GT: return v[0] > v[1];
    case EX_GE: return v[0] >= v[1];
    case EX_EQ: return v[0] == v[1];
    case EX_NE: return v[0] != v[1];
    case EX_COND: return v[0] != 0 ? v[1] : v[2];
    case EX_EXP: return exp(v[0]);
    case EX_LOG: return log(v[0]);
    case EX_SQRT: return sqrt(v[0]);
    case EX_ABS: return fabs(v[0]);
    case EX_SIGN: return (v[0] > 0) - (v[0] < 0);
    case EX_SQUARE: return v[0] * v[0];
    case EX_TANH: return tanh(v[0]);
    case EX_SIGMOID: return 1 / (1 + exp(-v[0]));
    case EX_SOFTPLUS: return fmax(v[0], 0) + log1p(exp(-fabs(v[0])));
    case EX_RELU: return v[0] > 0 ? v[0] : 0;
    case EX_SIN: return sin(v[0]);
    case EX_COS: return cos(v[0]);
    case EX_MAX: return v[0] >= v[1] ? v[0] : v[1];
    case EX_MIN: return v[0] <= v[1] ? v[0] : v[1];
    case EX_CLIP: return fmin(fmax(v[0], v[1]), v[2]);
    case EX_FLOOR: return floor(v[0]);
    case EX_CEIL: return ceil(v[0]);
    case EX_ROUND: return nearbyint(v[0]);
    case EX_SUM: return v[0];
    case EX_MEAN: return v[0];
    case EX_COUNT: break;
    }
    assert(!"unknown expression kind");
    return 0;
}

double expr_eval(const Expr *e, const double *values)
{
    double v[3] = {0};
    for (int i = 0; i < expr_info[e->kind].arity; i++)
        v[i] = expr_eval(e->arg[i], values);
    return apply(e->kind, e->kind == EX_VAR ? values[e->var] : e->num, v);
}

/* ---- building, with simplification --------------------------------------------- */

static bool equal(const Expr *x, const Expr *y)
{
    if (x == y)
        return true;
    if (x->kind != y->kind || x->num != y->num || x->var != y->var)
        return false;
    for (int i = 0; i < expr_info[x->kind].arity; i++)
        if (!equal(x->arg[i], y->arg[i]))
            return false;
    return true;
}

static Expr *num(Arena *a, double v, Loc loc)
{
    Expr *e = arena_alloc(a, sizeof *e);
    e->kind = EX_NUM;
    e->num = v == 0 ? 0 : v;     /* no -0.0 in the output */
    e->loc = loc;
    return e;
}

/* The node k(x, y, z), simplified; operands past the arity are NULL. */
static Expr *mk(Arena *a, ExprKind k, Loc loc, Expr *x, Expr *y, Expr *z)
{
    int n = expr_info[k].arity;
    Expr *arg[3] = {x, y, z};
    bool constant = n > 0 && !is_reduction(k);
    double v[3] = {0};
    for (int i = 0; i < n; i++) {
        constant = constant && arg[i]->kind == EX_NUM;
        v[i] = arg[i]->num;
    }
    if (constant) {
        double r = apply(k, 0, v);
        if (isfinite(r))         /* log(0) stays written, to fail where it is used */
            return num(a, r, loc);
    }
    switch (k) {
    case EX_NUM: case EX_VAR:
        break;
    case EX_NEG:
        if (x->kind == EX_NEG)
            return x->arg[0];
        if (x->kind == EX_SUB)
            return mk(a, EX_SUB, loc, x->arg[1], x->arg[0], NULL);
        if (x->kind == EX_MUL && x->arg[0]->kind == EX_NUM)
            return mk(a, EX_MUL, loc, num(a, -x->arg[0]->num, loc), x->arg[1], NULL);
        break;
    case EX_ADD:
        if (is_num(x, 0))
            return y;
        if (is_num(y, 0))
            return x;
        if (y->kind == EX_NEG)
            return mk(a, EX_SUB, loc, x, y->arg[0], NULL);
        if (y->kind == EX_NUM && y->num < 0)
            return mk(a, EX_SUB, loc, x, num(a, -y->num, y->loc), NULL);
        if (x->kind == EX_NEG)
            return mk(a, EX_SUB, loc, y, x->arg[0], NULL);
        if (y->kind == EX_MUL && y->arg[0]->kind == EX_NUM && y->arg[0]->num < 0)   /* a + -2 b -> a - 2 b */
            return mk(a, EX_SUB, loc, x, mk(a, EX_MUL, loc, num(a, -y->arg[0]->num, loc), y->arg[1], NULL), NULL);
        if (equal(x, y))
            return mk(a, EX_MUL, loc, num(a, 2, loc), x, NULL);
        break;
    case EX_SUB:
        if (is_num(y, 0))
            return x;
        if (is_num(x, 0))
            return mk(a, EX_NEG, loc, y, NULL, NULL);
        if (y->kind == EX_NEG)
            return mk(a, EX_ADD, loc, x, y->arg[0], NULL);
        if (y->kind == EX_NUM && y->num < 0)
            return mk(a, EX_ADD, loc, x, num(a, -y->num, y->loc), NULL);
        if (y->kind == EX_MUL && y->arg[0]->kind == EX_NUM && y->arg[0]->num < 0)
            return mk(a, EX_ADD, loc, x, mk(a, EX_MUL, loc, num(a, -y->arg[0]->num, loc), y->arg[1], NULL), NULL);
        if (equal(x, y))
            return num(a, 0, loc);
        break;
    case EX_MUL:
        if (is_num(x, 0) || is_num(y, 0))
            return num(a, 0, loc);
        if (is_num(x, 1))
            return y;
        if (is_num(y, 1))
            return x;
        if (is_num(x, -1))
            return mk(a, EX_NEG, loc, y, NULL, NULL);
        if (is_num(y, -1))
            return mk(a, EX_NEG, loc, x, NULL, NULL);
        if (y->kind == EX_NUM)   /* constants first: 0.5 * e */
            return mk(a, EX_MUL, loc, y, x, NULL);
        if (x->kind == EX_NUM && y->kind == EX_MUL && y->arg[0]->kind == EX_NUM)
            return mk(a, EX_MUL, loc, num(a, x->num * y->arg[0]->num, loc), y->arg[1], NULL);
        if (x->kind != EX_NUM && y->kind == EX_MUL && y->arg[0]->kind == EX_NUM)   /* constants to the front */
            return mk(a, EX_MUL, loc, y->arg[0], mk(a, EX_MUL, loc, x, y->arg[1], NULL), NULL);
        if (x->kind == EX_MUL && x->arg[0]->kind == EX_NUM)
            return mk(a, EX_MUL, loc, x->arg[0], mk(a, EX_MUL, loc, x->arg[1], y, NULL), NULL);
        if (x->kind == EX_NEG)
            return mk(a, EX_NEG, loc, mk(a, EX_MUL, loc, x->arg[0], y, NULL), NULL, NULL);
        if (y->kind == EX_NEG)
            return mk(a, EX_NEG, loc, mk(a, EX_MUL, loc, x, y->arg[0], NULL), NULL, NULL);
        break;
    case EX_DIV:
        if (is_num(y, 1))
            return x;
        if (is_num(y, -1))
            return mk(a, EX_NEG, loc, x, NULL, NULL);
        if (is_num(x, 0))
            return x;
        if (x->kind == EX_NEG)
            return mk(a, EX_NEG, loc, mk(a, EX_DIV, loc, x->arg[0], y, NULL), NULL, NULL);
        if (y->kind == EX_NUM && y->num != 0 && x->kind == EX_MUL && x->arg[0]->kind == EX_NUM)
            return mk(a, EX_MUL, loc, num(a, x->arg[0]->num / y->num, loc), x->arg[1], NULL);
        if (x->kind == EX_MUL && y->kind == EX_MUL && x->arg[0]->kind == EX_NUM && y->arg[0]->kind == EX_NUM &&
            y->arg[0]->num != 0)     /* 2 a / (2 b) -> a / b */
            return mk(a, EX_MUL, loc, num(a, x->arg[0]->num / y->arg[0]->num, loc),
                      mk(a, EX_DIV, loc, x->arg[1], y->arg[1], NULL), NULL);
        if (equal(x, y))
            return num(a, 1, loc);
        if (x->kind == EX_MUL && equal(x->arg[0], y))   /* a b / a -> b */
            return x->arg[1];
        if (x->kind == EX_MUL && equal(x->arg[1], y))
            return x->arg[0];
        break;
    case EX_POW:
        if (is_num(y, 1))
            return x;
        if (is_num(y, 0) || is_num(x, 1))
            return num(a, 1, loc);
        if (is_num(y, 2))
            return mk(a, EX_SQUARE, loc, x, NULL, NULL);
        break;
    case EX_SQUARE: case EX_ABS:
        if (x->kind == EX_NEG)
            return mk(a, k, loc, x->arg[0], NULL, NULL);
        break;
    case EX_LOG:
        if (x->kind == EX_EXP)
            return x->arg[0];
        if (x->kind == EX_ADD && is_num(x->arg[1], 1) && x->arg[0]->kind == EX_EXP)
            return mk(a, EX_SOFTPLUS, loc, x->arg[0]->arg[0], NULL, NULL);
        if (x->kind == EX_ADD && is_num(x->arg[0], 1) && x->arg[1]->kind == EX_EXP)
            return mk(a, EX_SOFTPLUS, loc, x->arg[1]->arg[0], NULL, NULL);
        break;
    case EX_COND:
        if (x->kind == EX_NUM)
            return x->num != 0 ? y : z;
        if (equal(y, z))
            return y;
        break;
    case EX_MAX: case EX_MIN:
        if (equal(x, y))
            return x;
        break;
    case EX_LT: case EX_LE: case EX_GT: case EX_GE: case EX_EQ: case EX_NE:
    case EX_EXP: case EX_SQRT: case EX_SIGN: case EX_TANH: case EX_SIGMOID: case EX_SOFTPLUS:
    case EX_RELU: case EX_SIN: case EX_COS: case EX_CLIP: case EX_FLOOR: case EX_CEIL: case EX_ROUND:
    case EX_SUM: case EX_MEAN:
        break;
    case EX_COUNT:
        assert(!"unknown expression kind");
    }
    Expr *e = arena_alloc(a, sizeof *e);
    e->kind = k;
    e->loc = loc;
    for (int i = 0; i < n; i++)
        e->arg[i] = arg[i];
    return e;
}

static Expr *mk1(Arena *a, ExprKind k, Loc loc, Expr *x) { return mk(a, k, loc, x, NULL, NULL); }
static Expr *mk2(Arena *a, ExprKind k, Loc loc, Expr *x, Expr *y) { return mk(a, k, loc, x, y, NULL); }

/* ---- parsing -------------------------------------------------------------------- */

typedef struct {
    const char *name;
    const YNode *value;          /* the scalar holding its expression */
    Expr *expr;                  /* parsed, once */
    bool busy;                   /* being parsed: using it now is a cycle */
} WhereDef;

typedef struct {
    Arena *a;
    const ExprEnv *env;
    WhereDef *defs;
    int ndefs;
    const char *path[64];        /* the definitions being parsed, outermost first */
    int npath;
} Ctx;

typedef struct {
    Ctx *cx;
    const char *text, *p;
    Loc loc;                     /* of text[0] */
    bool failed;
} Parser;

/* The location of s, a position in the text (columns count characters). */
static Loc loc_of(const Parser *ps, const char *s)
{
    Loc loc = ps->loc;
    for (const char *c = ps->text; c < s; c++)
        if ((*c & 0xC0) != 0x80)
            loc.col++;
    return loc;
}

static Expr *fail(Parser *ps, Loc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static Expr *fail(Parser *ps, Loc loc, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (!ps->failed)
        error_at(loc, "%s", msg);
    ps->failed = true;
    return NULL;
}

static void skip_blank(Parser *ps)
{
    while (isspace((unsigned char)*ps->p))
        ps->p++;
}

static bool accept(Parser *ps, const char *tok)
{
    skip_blank(ps);
    size_t n = strlen(tok);
    if (strncmp(ps->p, tok, n) != 0)
        return false;
    ps->p += n;
    return true;
}

/* What the character at p is, for messages: "')'", "the end". */
static const char *describe(Arena *a, const char *p)
{
    if (!*p)
        return "the end of the expression";
    if ((unsigned char)*p >= 0x80)
        return "a non-ASCII character";
    return arena_printf(a, "'%c'", *p);
}

static bool expect(Parser *ps, char c)
{
    skip_blank(ps);
    if (*ps->p == c) {
        ps->p++;
        return true;
    }
    fail(ps, loc_of(ps, ps->p), "expected '%c'", c);
    hint("found %s", describe(ps->cx->a, ps->p));
    return false;
}

static Expr *parse_cond(Parser *ps);
static Expr *parse_unary(Parser *ps);
static Expr *parse_text(Ctx *cx, const char *text, Loc loc, bool *failed);

static const char *variable_list(Ctx *cx)
{
    const char *s = "";
    for (int i = 0; i < cx->env->nvars; i++)
        s = arena_printf(cx->a, "%s%s%s", s, i ? ", " : "", cx->env->vars[i]);
    for (int i = 0; i < cx->ndefs; i++)
        s = arena_printf(cx->a, "%s%s%s", s, *s ? ", " : "", cx->defs[i].name);
    return *s ? s : "none";
}

static Expr *where_value(Parser *ps, WhereDef *d, Loc use)
{
    Ctx *cx = ps->cx;
    if (d->busy) {
        const char *cycle = "";
        int from = 0;
        while (strcmp(cx->path[from], d->name))
            from++;
        for (int i = from; i < cx->npath; i++)
            cycle = arena_printf(cx->a, "%s%s -> ", cycle, cx->path[i]);
        return fail(ps, use, "'%s' is defined in terms of itself: %s%s", d->name, cycle, d->name);
    }
    if (d->expr)
        return d->expr;
    if (d->value->kind != Y_SCALAR)
        return fail(ps, d->value->loc, "'%s' must be an expression, not a %s", d->name,
                    d->value->kind == Y_MAP ? "mapping" : "list");
    if (cx->npath == (int)(sizeof cx->path / sizeof cx->path[0]))
        return fail(ps, use, "`where:` definitions nest too deeply");
    d->busy = true;
    cx->path[cx->npath++] = d->name;
    bool failed = false;
    Loc loc = d->value->loc;
    loc.col += !d->value->plain;
    d->expr = parse_text(cx, d->value->text, loc, &failed);
    cx->npath--;
    d->busy = false;
    if (failed)
        ps->failed = true;       /* already reported */
    return d->expr;
}

static Expr *variable(Parser *ps, const char *name, Loc loc)
{
    Ctx *cx = ps->cx;
    for (int i = 0; i < cx->ndefs; i++)
        if (!strcmp(cx->defs[i].name, name))
            return where_value(ps, &cx->defs[i], loc);
    for (int i = 0; i < cx->env->nvars; i++)
        if (!strcmp(cx->env->vars[i], name)) {
            Expr *e = arena_alloc(cx->a, sizeof *e);
            e->kind = EX_VAR;
            e->var = i;
            e->name = cx->env->vars[i];
            e->loc = loc;
            return e;
        }
    for (int k = 0; k < EX_COUNT; k++)
        if (expr_info[k].fn && !strcmp(expr_info[k].fn, name)) {
            fail(ps, loc, "'%s' is a function: write %s(...)", name, name);
            return NULL;
        }
    return fail(ps, loc, "unknown variable '%s': the variables here are %s", name, variable_list(cx));
}

static Expr *call(Parser *ps, const char *name, Loc loc)
{
    Ctx *cx = ps->cx;
    int k = 0;
    while (k < EX_COUNT && !(expr_info[k].fn && !strcmp(expr_info[k].fn, name)))
        k++;
    if (k == EX_COUNT) {
        for (int i = 0; i < cx->env->nvars; i++)
            if (!strcmp(cx->env->vars[i], name))
                return fail(ps, loc, "'%s' is a variable, not a function", name);
        fail(ps, loc, "unknown function '%s'", name);
        const char *list = "";
        for (int i = 0; i < EX_COUNT; i++)
            if (expr_info[i].fn)
                list = arena_printf(cx->a, "%s%s%s", list, *list ? ", " : "", expr_info[i].fn);
        hint("the functions are %s", list);
        return NULL;
    }
    Expr *arg[3] = {NULL};
    int n = 0;
    ps->p++;                     /* '(' */
    if (!accept(ps, ")")) {
        do {
            Expr *e = parse_cond(ps);
            if (!e)
                return NULL;
            if (n < 3)
                arg[n] = e;
            n++;
        } while (accept(ps, ","));
        if (!expect(ps, ')'))
            return NULL;
    }
    int want = expr_info[k].arity;
    if (n != want)
        return fail(ps, loc, "'%s' takes %d argument%s, not %d", name, want, want == 1 ? "" : "s", n);
    return mk(cx->a, (ExprKind)k, loc, arg[0], arg[1], arg[2]);
}

static Expr *parse_primary(Parser *ps)
{
    skip_blank(ps);
    const char *s = ps->p;
    Loc loc = loc_of(ps, s);
    if (*s == '(') {
        ps->p++;
        Expr *e = parse_cond(ps);
        if (!e || !expect(ps, ')'))
            return NULL;
        return e;
    }
    if (isdigit((unsigned char)*s) || (*s == '.' && isdigit((unsigned char)s[1]))) {
        char *end;
        double v = strtod(s, &end);
        ps->p = end;
        if (!isfinite(v) || fabs(v) > FLT_MAX)
            return fail(ps, loc, "the number %.*s is out of range for a float", (int)(end - s), s);
        if (isalpha((unsigned char)*end) || *end == '_') {
            fail(ps, loc_of(ps, end), "a number cannot be followed by a name");
            hint("write %.*s * %c... for a product", (int)(end - s), s, *end);
            return NULL;
        }
        return num(ps->cx->a, v, loc);
    }
    if (isalpha((unsigned char)*s) || *s == '_') {
        while (isalnum((unsigned char)*ps->p) || *ps->p == '_')
            ps->p++;
        const char *name = arena_printf(ps->cx->a, "%.*s", (int)(ps->p - s), s);
        skip_blank(ps);
        if (*ps->p == '(')
            return call(ps, name, loc);
        if (*ps->p == '[') {
            /* [:, k]: one time step of a sequence (the notes' last_time_step_mse), where allowed */
            const char *at = ps->p;
            int *step = ps->cx->env->time_step;
            char *end;
            const char *q = ps->p + 1;
            while (isspace((unsigned char)*q))
                q++;
            long k = 0;
            bool ok = step && *q == ':';
            if (ok) {
                q++;
                while (isspace((unsigned char)*q))
                    q++;
                ok = *q == ',';
            }
            if (ok) {
                k = strtol(q + 1, &end, 10);
                ok = end != q + 1;
                q = end;
                while (ok && isspace((unsigned char)*q))
                    q++;
                ok = ok && *q == ']';
            }
            if (!ok) {
                fail(ps, loc_of(ps, at), step ? "an index is [:, k]: the time step k of every sample (k < 0 counts "
                                                "from the end)"
                                              : "indexing is not supported: an expression is computed elementwise");
                hint(step ? "the notes' last_time_step_mse: \"mean(square(y_true[:, -1] - y_pred[:, -1]))\""
                          : "write the expression over whole values, e.g. \"square(y_true - y_pred)\"");
                return NULL;
            }
            if (*step != INT_MIN && *step != (int)k) {
                fail(ps, loc_of(ps, at), "every index in one expression must name the same time step");
                return NULL;
            }
            *step = (int)k;
            ps->p = (char *)q + 1;
            return variable(ps, name, loc);
        }
        return variable(ps, name, loc);
    }
    if (!*s)
        return fail(ps, loc, "the expression ends too early: expected a number, a variable or '('");
    return fail(ps, loc, "expected a number, a variable or '(', not %s", describe(ps->cx->a, s));
}

/* power := primary ('^' | '**') unary — right-associative, binds tighter than unary minus on its left */
static Expr *parse_power(Parser *ps)
{
    Expr *x = parse_primary(ps);
    if (!x)
        return NULL;
    skip_blank(ps);
    Loc loc = loc_of(ps, ps->p);
    if (accept(ps, "^") || accept(ps, "**")) {
        Expr *y = parse_unary(ps);
        return y ? mk2(ps->cx->a, EX_POW, loc, x, y) : NULL;
    }
    return x;
}

static Expr *parse_unary(Parser *ps)
{
    skip_blank(ps);
    Loc loc = loc_of(ps, ps->p);
    if (accept(ps, "-")) {
        Expr *x = parse_unary(ps);
        return x ? mk1(ps->cx->a, EX_NEG, loc, x) : NULL;
    }
    if (accept(ps, "+"))
        return parse_unary(ps);
    return parse_power(ps);
}

static Expr *parse_product(Parser *ps)
{
    Expr *x = parse_unary(ps);
    while (x) {
        skip_blank(ps);
        Loc loc = loc_of(ps, ps->p);
        ExprKind k;
        if (accept(ps, "*"))
            k = EX_MUL;
        else if (accept(ps, "/"))
            k = EX_DIV;
        else
            break;
        Expr *y = parse_unary(ps);
        x = y ? mk2(ps->cx->a, k, loc, x, y) : NULL;
    }
    return x;
}

static Expr *parse_sum(Parser *ps)
{
    Expr *x = parse_product(ps);
    while (x) {
        skip_blank(ps);
        Loc loc = loc_of(ps, ps->p);
        ExprKind k;
        if (accept(ps, "+"))
            k = EX_ADD;
        else if (accept(ps, "-"))
            k = EX_SUB;
        else
            break;
        Expr *y = parse_product(ps);
        x = y ? mk2(ps->cx->a, k, loc, x, y) : NULL;
    }
    return x;
}

/* The comparison operator at p, longest first; EX_COUNT: none. */
static ExprKind comparison_at(Parser *ps)
{
    static const struct { const char *tok; ExprKind k; } ops[] = {
        {"<=", EX_LE}, {">=", EX_GE}, {"==", EX_EQ}, {"!=", EX_NE}, {"<", EX_LT}, {">", EX_GT},
    };
    for (size_t i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (accept(ps, ops[i].tok))
            return ops[i].k;
    return EX_COUNT;
}

static Expr *parse_compare(Parser *ps)
{
    Expr *x = parse_sum(ps);
    if (!x)
        return NULL;
    skip_blank(ps);
    Loc loc = loc_of(ps, ps->p);
    if (*ps->p == '=' && ps->p[1] != '=')
        return fail(ps, loc, "'=' is not an operator: write '==' to compare");
    ExprKind k = comparison_at(ps);
    if (k == EX_COUNT)
        return x;
    Expr *y = parse_sum(ps);
    if (!y)
        return NULL;
    skip_blank(ps);
    const char *at = ps->p;
    if (comparison_at(ps) != EX_COUNT)
        return fail(ps, loc_of(ps, at), "comparisons do not chain: a < b < c is not a range test");
    return mk2(ps->cx->a, k, loc, x, y);
}

static Expr *parse_cond(Parser *ps)
{
    Expr *c = parse_compare(ps);
    if (!c)
        return NULL;
    skip_blank(ps);
    Loc loc = loc_of(ps, ps->p);
    if (!accept(ps, "?"))
        return c;
    Expr *x = parse_cond(ps);
    if (!x || !expect(ps, ':'))
        return NULL;
    Expr *y = parse_cond(ps);
    return y ? mk(ps->cx->a, EX_COND, loc, c, x, y) : NULL;
}

/* One whole expression: the main one or a `where:` definition. */
static Expr *parse_text(Ctx *cx, const char *text, Loc loc, bool *failed)
{
    Parser ps = {cx, text, text, loc, false};
    skip_blank(&ps);
    if (!*ps.p) {
        *failed = true;
        return fail(&ps, loc, "the expression is empty");
    }
    Expr *e = parse_cond(&ps);
    skip_blank(&ps);
    if (e && *ps.p)
        e = fail(&ps, loc_of(&ps, ps.p), "unexpected %s after the expression", describe(cx->a, ps.p));
    *failed = ps.failed || !e;
    return ps.failed ? NULL : e;
}

/* ---- reductions ----------------------------------------------------------------- */

static const Expr *find_reduction(const Expr *e)
{
    if (is_reduction(e->kind))
        return e;
    for (int i = 0; i < expr_info[e->kind].arity; i++) {
        const Expr *r = find_reduction(e->arg[i]);
        if (r)
            return r;
    }
    return NULL;
}

/* e with its reductions lifted to the root: -sum(a) -> sum(-a),
 * c * sum(a) -> sum(c * a), sum(a) / c -> sum(a / c), sum(a) + sum(b) ->
 * sum(a + b). NULL after a located error: a reduction used any other way.
 * (mk() keeps constants on the left of *, so c * sum(a) is the only order.) */
static Expr *lift(Ctx *cx, Expr *e)
{
    const Expr *r = find_reduction(e);
    if (!r)
        return e;
    ExprKind k = e->kind;
    if (is_reduction(k)) {
        const Expr *inner = find_reduction(e->arg[0]);
        if (inner) {
            error_at(inner->loc, "%s(...) inside %s(...): reductions do not nest", kind_name(inner->kind),
                     kind_name(k));
            return NULL;
        }
        return e;
    }
    if (k == EX_NEG || (k == EX_MUL && e->arg[0]->kind == EX_NUM) || (k == EX_DIV && e->arg[1]->kind == EX_NUM)) {
        Expr *x = lift(cx, e->arg[k == EX_MUL]);   /* the operand holding the reduction */
        if (!x)
            return NULL;
        Expr *body = k == EX_NEG ? mk1(cx->a, EX_NEG, e->loc, x->arg[0])
                   : k == EX_MUL ? mk2(cx->a, EX_MUL, e->loc, e->arg[0], x->arg[0])
                                 : mk2(cx->a, EX_DIV, e->loc, x->arg[0], e->arg[1]);
        return mk1(cx->a, x->kind, x->loc, body);
    }
    if (k == EX_ADD || k == EX_SUB) {
        Expr *x = lift(cx, e->arg[0]), *y = x ? lift(cx, e->arg[1]) : NULL;
        if (!y)
            return NULL;
        if (is_reduction(x->kind) && x->kind == y->kind)
            return mk1(cx->a, x->kind, x->loc, mk2(cx->a, k, e->loc, x->arg[0], y->arg[0]));
        if (is_reduction(x->kind) && is_reduction(y->kind)) {
            error_at(y->loc, "%s(...) and %s(...) cannot be combined", kind_name(x->kind), kind_name(y->kind));
            hint("the terms of a sum of reductions must all be sum(...) or all mean(...)");
            return NULL;
        }
        r = is_reduction(x->kind) ? x : y;
    }
    error_at(r->loc, "%s(...) must be the whole %s, scaled by a constant or added to another %s(...)",
             kind_name(r->kind), cx->env->what, kind_name(r->kind));
    hint("nncc differentiates the body of a reduction and emits its loop, so it stands at the top");
    return NULL;
}

/* ---- API -------------------------------------------------------------------------- */

Expr *expr_parse(Arena *a, const char *text, Loc loc, bool quoted, const ExprEnv *env)
{
    Ctx cx = {.a = a, .env = env};
    loc.col += quoted;
    const YNode *where = env->where;
    if (where && where->kind != Y_MAP)
        return error_at(where->loc, "`where:` must be a mapping of names to expressions"), NULL;
    if (where) {
        cx.defs = arena_alloc(a, (size_t)where->n * sizeof *cx.defs);
        for (int i = 0; i < where->n; i++) {
            const YNode *key = where->items[2 * i];   /* yaml.c's layout; ymap_key would tie this to libyaml */
            const char *name = key->text;
            bool ok = (isalpha((unsigned char)name[0]) || name[0] == '_');
            for (const char *c = name; *c; c++)
                ok = ok && (isalnum((unsigned char)*c) || *c == '_');
            if (!ok)
                return error_at(key->loc, "'%s' is not a name: use letters, digits and '_'", name), NULL;
            for (int v = 0; v < env->nvars; v++)
                if (!strcmp(env->vars[v], name))
                    return error_at(key->loc, "'%s' is already a variable of this %s; choose another name", name,
                                    env->what), NULL;
            cx.defs[cx.ndefs++] = (WhereDef){name, where->items[2 * i + 1], NULL, false};
        }
    }
    bool failed = false;
    Expr *e = parse_text(&cx, text, loc, &failed);
    if (!e)
        return NULL;
    for (int i = 0; i < cx.ndefs; i++) {  /* report the errors of unused definitions too */
        Parser ps = {&cx, "", "", loc, false};
        if (!cx.defs[i].expr && !where_value(&ps, &cx.defs[i], loc))
            return NULL;
    }
    if (env->top == EXPR_ELEMENTWISE) {
        const Expr *r = find_reduction(e);
        if (r) {
            error_at(r->loc, "%s(...) has no place in this %s: it is computed elementwise", kind_name(r->kind),
                     env->what);
            return NULL;
        }
        return e;
    }
    if (!(e = lift(&cx, e)))
        return NULL;
    if (env->top == EXPR_MUST_REDUCE && !is_reduction(e->kind)) {
        const char *start = text;
        while (isspace((unsigned char)*start))
            start++;
        Parser ps = {&cx, text, text, loc, false};
        error_at(loc_of(&ps, start), "this %s must reduce to one number: write sum(...) or mean(...) around it",
                 env->what);
        hint("for instance \"sum(%s)\"", start);
        return NULL;
    }
    return e;
}

Expr *expr_parse_node(Arena *a, const YNode *scalar, const ExprEnv *env)
{
    if (scalar->kind != Y_SCALAR)
        return error_at(scalar->loc, "this %s must be an expression, not a %s", env->what,
                        scalar->kind == Y_MAP ? "mapping" : "list"), NULL;
    return expr_parse(a, scalar->text, scalar->loc, !scalar->plain, env);
}

Expr *expr_reduction(const Expr *e, ExprKind *kind)
{
    if (!is_reduction(e->kind))
        return NULL;
    *kind = e->kind;
    return e->arg[0];
}

/* ---- differentiation ------------------------------------------------------------ */

static bool uses(const Expr *e, int var)
{
    if (e->kind == EX_VAR)
        return e->var == var;
    for (int i = 0; i < expr_info[e->kind].arity; i++)
        if (uses(e->arg[i], var))
            return true;
    return false;
}

static const char *var_name(const Expr *e, int var)
{
    if (e->kind == EX_VAR && e->var == var)
        return e->name;
    for (int i = 0; i < expr_info[e->kind].arity; i++) {
        const char *n = var_name(e->arg[i], var);
        if (n)
            return n;
    }
    return NULL;
}

/* d e / d var; a, b, c are e's operands and da, db, dc their derivatives.
 * Piecewise functions differentiate piece by piece (the kinks get the
 * derivative of the piece that includes them); comparisons are constant. */
Expr *expr_diff(Arena *a, Expr *e, int var)
{
    if (!uses(e, var))
        return num(a, 0, e->loc);
    int n = expr_info[e->kind].arity;
    Expr *d[3] = {NULL};
    for (int i = 0; i < n; i++)
        if (!(d[i] = expr_diff(a, e->arg[i], var)))
            return NULL;
    Expr *x = e->arg[0], *y = e->arg[1], *z = e->arg[2];
    Expr *dx = d[0], *dy = d[1], *dz = d[2];
    Loc l = e->loc;
    switch (e->kind) {
    case EX_NUM:
        return num(a, 0, l);
    case EX_VAR:
        return num(a, 1, l);     /* uses(): it is var */
    case EX_NEG:                 /* -a' */
        return mk1(a, EX_NEG, l, dx);
    case EX_ADD:
    case EX_SUB:                 /* a' +- b' */
        return mk2(a, e->kind, l, dx, dy);
    case EX_MUL:                 /* a' b + a b' */
        return mk2(a, EX_ADD, l, mk2(a, EX_MUL, l, dx, y), mk2(a, EX_MUL, l, x, dy));
    case EX_DIV:                 /* a' / b - a b' / b^2 */
        return mk2(a, EX_SUB, l, mk2(a, EX_DIV, l, dx, y),
                   mk2(a, EX_DIV, l, mk2(a, EX_MUL, l, x, dy), mk1(a, EX_SQUARE, l, y)));
    case EX_POW:
        if (!uses(y, var))       /* b a^(b-1) a' */
            return mk2(a, EX_MUL, l, mk2(a, EX_MUL, l, y, mk2(a, EX_POW, l, x, mk2(a, EX_SUB, l, y, num(a, 1, l)))),
                       dx);
        /* a^b (b' log a + b a' / a) */
        return mk2(a, EX_MUL, l, e,
                   mk2(a, EX_ADD, l, mk2(a, EX_MUL, l, dy, mk1(a, EX_LOG, l, x)),
                       mk2(a, EX_DIV, l, mk2(a, EX_MUL, l, y, dx), x)));
    case EX_LT: case EX_LE: case EX_GT: case EX_GE: case EX_EQ: case EX_NE:
        return num(a, 0, l);     /* a step: zero wherever it has a derivative */
    case EX_COND:                /* c ? b' : c' */
        return mk(a, EX_COND, l, x, dy, dz);
    case EX_EXP:                 /* exp(a) a' */
        return mk2(a, EX_MUL, l, e, dx);
    case EX_LOG:                 /* a' / a */
        return mk2(a, EX_DIV, l, dx, x);
    case EX_SQRT:                /* a' / (2 sqrt(a)) */
        return mk2(a, EX_DIV, l, dx, mk2(a, EX_MUL, l, num(a, 2, l), e));
    case EX_ABS:                 /* sign(a) a' */
        return mk2(a, EX_MUL, l, mk1(a, EX_SIGN, l, x), dx);
    case EX_SIGN:
        return num(a, 0, l);     /* as tf.sign: zero, also at 0 */
    case EX_SQUARE:              /* 2 a a' */
        return mk2(a, EX_MUL, l, mk2(a, EX_MUL, l, num(a, 2, l), x), dx);
    case EX_TANH:                /* (1 - tanh(a)^2) a' */
        return mk2(a, EX_MUL, l, mk2(a, EX_SUB, l, num(a, 1, l), mk1(a, EX_SQUARE, l, e)), dx);
    case EX_SIGMOID:             /* s (1 - s) a' */
        return mk2(a, EX_MUL, l, mk2(a, EX_MUL, l, e, mk2(a, EX_SUB, l, num(a, 1, l), e)), dx);
    case EX_SOFTPLUS:            /* sigmoid(a) a' */
        return mk2(a, EX_MUL, l, mk1(a, EX_SIGMOID, l, x), dx);
    case EX_RELU:                /* a > 0 ? a' : 0 */
        return mk(a, EX_COND, l, mk2(a, EX_GT, l, x, num(a, 0, l)), dx, num(a, 0, l));
    case EX_SIN:                 /* cos(a) a' */
        return mk2(a, EX_MUL, l, mk1(a, EX_COS, l, x), dx);
    case EX_COS:                 /* -sin(a) a' */
        return mk1(a, EX_NEG, l, mk2(a, EX_MUL, l, mk1(a, EX_SIN, l, x), dx));
    case EX_MAX:                 /* a >= b ? a' : b' */
        return mk(a, EX_COND, l, mk2(a, EX_GE, l, x, y), dx, dy);
    case EX_MIN:                 /* a <= b ? a' : b' */
        return mk(a, EX_COND, l, mk2(a, EX_LE, l, x, y), dx, dy);
    case EX_CLIP:                /* a < lo ? lo' : (a > hi ? hi' : a') */
        return mk(a, EX_COND, l, mk2(a, EX_LT, l, x, y), dy, mk(a, EX_COND, l, mk2(a, EX_GT, l, x, z), dz, dx));
    case EX_FLOOR: case EX_CEIL: case EX_ROUND:
        error_at(l, "'%s' has no derivative: it is piecewise constant, so its gradient is zero wherever it exists "
                 "and nothing would train through it", kind_name(e->kind));
        hint("apply it only to values that do not depend on '%s', or use a smooth surrogate", var_name(e, var));
        return NULL;
    case EX_SUM: case EX_MEAN:
        assert(!"a reduction is differentiated through its body (expr_reduction)");
        return NULL;
    case EX_COUNT:
        break;
    }
    assert(!"unknown expression kind");
    return NULL;
}

/* ---- C output ------------------------------------------------------------------- */

/* C precedence levels, loosest first. */
enum { P_COND = 1, P_EQUALITY = 4, P_RELATION, P_ADD, P_MUL, P_UNARY, P_PRIMARY };

typedef struct {
    const char *s;
    int prec;                    /* of its outermost operator */
} Code;

typedef struct {
    Arena *a;
    const char *const *names;
} Emitter;

static Code emit(Emitter *em, const Expr *e);

/* e as an operand that must bind at least as tightly as prec. */
static const char *operand(Emitter *em, const Expr *e, int prec)
{
    Code c = emit(em, e);
    return c.prec < prec ? arena_printf(em->a, "(%s)", c.s) : c.s;
}

/* -x, without writing "--". */
static const char *negated(Emitter *em, const Expr *x)
{
    const char *s = operand(em, x, P_UNARY);
    return arena_printf(em->a, s[0] == '-' ? "-(%s)" : "-%s", s);
}

static const char *literal(Arena *a, double v)
{
    return c_float(a, v);  /* cquote.c: every number nncc writes into C */
}

static Code comparison(Emitter *em, const Expr *e)
{
    int prec = e->kind == EX_EQ || e->kind == EX_NE ? P_EQUALITY : P_RELATION;
    return (Code){arena_printf(em->a, "%s %s %s", operand(em, e->arg[0], P_ADD), expr_info[e->kind].op,
                               operand(em, e->arg[1], P_ADD)), prec};
}

static Code call1(Emitter *em, const char *fn, const Expr *x)
{
    return (Code){arena_printf(em->a, "%s(%s)", fn, operand(em, x, 0)), P_PRIMARY};
}

static Code call2(Emitter *em, const char *fn, const Expr *x, const Expr *y)
{
    return (Code){arena_printf(em->a, "%s(%s, %s)", fn, operand(em, x, 0), operand(em, y, 0)), P_PRIMARY};
}

static Code binary(Emitter *em, const Expr *e, int prec)
{
    return (Code){arena_printf(em->a, "%s %s %s", operand(em, e->arg[0], prec), expr_info[e->kind].op,
                               operand(em, e->arg[1], prec + 1)), prec};
}

static Code emit(Emitter *em, const Expr *e)
{
    Arena *a = em->a;
    const Expr *x = e->arg[0], *y = e->arg[1], *z = e->arg[2];
    switch (e->kind) {
    case EX_NUM:
        return (Code){literal(a, e->num), e->num < 0 ? P_UNARY : P_PRIMARY};
    case EX_VAR:
        return (Code){em->names && em->names[e->var] ? em->names[e->var] : e->name, P_PRIMARY};
    case EX_NEG:
        return (Code){negated(em, x), P_UNARY};
    case EX_ADD: case EX_SUB:
        return binary(em, e, P_ADD);
    case EX_MUL: case EX_DIV:
        return binary(em, e, P_MUL);
    case EX_POW:
        return call2(em, "powf", x, y);
    case EX_LT: case EX_LE: case EX_GT: case EX_GE: case EX_EQ: case EX_NE:
        return (Code){arena_printf(a, "%s ? 1.0f : 0.0f", comparison(em, e).s), P_COND};
    case EX_COND: {
        const char *c = is_comparison(x->kind) ? comparison(em, x).s
                                         : arena_printf(a, "%s != 0.0f", operand(em, x, P_ADD));
        return (Code){arena_printf(a, "%s ? %s : %s", c, operand(em, y, P_COND + 1), operand(em, z, P_COND + 1)),
                      P_COND};
    }
    case EX_EXP: return call1(em, "expf", x);
    case EX_LOG: return call1(em, "logf", x);
    case EX_SQRT: return call1(em, "sqrtf", x);
    case EX_ABS: return call1(em, "fabsf", x);
    case EX_SIGN: {
        const char *s = operand(em, x, P_ADD);
        return (Code){arena_printf(a, "(float)((%s > 0.0f) - (%s < 0.0f))", s, s), P_UNARY};
    }
    case EX_SQUARE:
        if (x->kind == EX_VAR) {
            const char *s = emit(em, x).s;
            return (Code){arena_printf(a, "%s * %s", s, s), P_MUL};
        }
        return (Code){arena_printf(a, "powf(%s, 2.0f)", operand(em, x, 0)), P_PRIMARY};
    case EX_TANH: return call1(em, "tanhf", x);
    case EX_SIGMOID: {           /* 1 / (1 + exp(-a)); sigmoid(-a) without the double minus */
        const char *s = x->kind == EX_NEG ? operand(em, x->arg[0], 0) : negated(em, x);
        return (Code){arena_printf(a, "1.0f / (1.0f + expf(%s))", s), P_MUL};
    }
    case EX_SOFTPLUS: {          /* max(a, 0) + log1p(exp(-|a|)): no overflow */
        const char *s = operand(em, x, 0);
        return (Code){arena_printf(a, "fmaxf(%s, 0.0f) + log1pf(expf(-fabsf(%s)))", s, s), P_ADD};
    }
    case EX_RELU:
        return (Code){arena_printf(a, "fmaxf(%s, 0.0f)", operand(em, x, 0)), P_PRIMARY};
    case EX_SIN: return call1(em, "sinf", x);
    case EX_COS: return call1(em, "cosf", x);
    case EX_MAX: return call2(em, "fmaxf", x, y);
    case EX_MIN: return call2(em, "fminf", x, y);
    case EX_CLIP:
        return (Code){arena_printf(a, "fminf(fmaxf(%s, %s), %s)", operand(em, x, 0), operand(em, y, 0),
                                   operand(em, z, 0)), P_PRIMARY};
    case EX_FLOOR: return call1(em, "floorf", x);
    case EX_CEIL: return call1(em, "ceilf", x);
    case EX_ROUND: return call1(em, "rintf", x);
    case EX_SUM: case EX_MEAN:
        assert(!"a reduction is emitted by its caller, around its body (expr_reduction)");
        return (Code){"", P_PRIMARY};
    case EX_COUNT:
        break;
    }
    assert(!"unknown expression kind");
    return (Code){"", P_PRIMARY};
}

const char *expr_to_c(Arena *a, const Expr *e, const char *const *names)
{
    Emitter em = {a, names};
    return emit(&em, e).s;
}
