/* test_expr.c — the expression engine of custom functions (compiler/expr.c).
 *
 * Every case is parsed as the model file would give it (a quoted scalar,
 * `where:` definitions on the next line), then:
 *   - its value (expr_eval) is compared with a hand-written C reference at
 *     each point, to 1e-9;
 *   - its derivative with respect to each variable (expr_diff, then
 *     expr_eval) is compared with central finite differences of the
 *     reference, to 1e-5 relative: the points stay away from kinks;
 *   - where given, the emitted C of the value and of d/d(first variable)
 *     must be exactly the expected text (readability is part of the contract).
 * Malformed expressions must fail with the given message at the given
 * line and column (stderr is captured). A line per case, then a count.
 *
 * `test_expr --emit FILE` writes instead a C program that evaluates every
 * case's emitted value and derivatives in float, with the variables renamed
 * to v[0], v[1] (the caller's name map), and compares them with the double
 * values computed here; tests/expr.cmake compiles it with -Werror and runs it.
 */
#define _POSIX_C_SOURCE 200809L  /* fileno, setenv */
#include "compiler.h"

#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_VARS 3

typedef struct {
    const char *text;
    const char *vars;            /* space separated */
    const char *where;           /* "name=text;name=text", or NULL */
    ExprTop top;
    double (*ref)(const double *v);  /* the value (of a reduction's body: one element) */
    const char *points;          /* "x;x" or "x,y;x,y": points, coordinates */
    const char *c;               /* expected C of the value (body), or NULL */
    const char *dc;              /* expected C of d/d(first variable), or NULL */
} Case;

/* ---- references: the formulas written directly in C ---------------------------- */

#define Z (v[0])
static double r_id(const double *v) { return Z; }
static double r_affine(const double *v) { return 2 * Z + 1; }
static double r_cube(const double *v) { return Z * Z * Z; }
static double r_two_to_z(const double *v) { return pow(2, Z); }
static double r_z_to_z(const double *v) { return pow(Z, Z); }
static double r_neg_square(const double *v) { return -(Z * Z); }
static double r_half_z(const double *v) { return 0.5 * Z; }
static double r_softplus(const double *v) { return log(exp(Z) + 1); }
static double r_swish(const double *v) { return Z / (1 + exp(-Z)); }
static double r_tanh(const double *v) { return tanh(Z); }
static double r_hypot1(const double *v) { return sqrt(Z * Z + 1); }
static double r_gauss(const double *v) { return exp(-Z * Z / 2); }
static double r_abs(const double *v) { return fabs(Z); }
static double r_relu(const double *v) { return Z > 0 ? Z : 0; }
static double r_min1(const double *v) { return Z < 1 ? Z : 1; }
static double r_clip(const double *v) { return Z < -1 ? -1 : Z > 1 ? 1 : Z; }
static double r_leaky(const double *v) { return Z > 0 ? Z : 0.1 * Z; }
static double r_elu(const double *v) { return Z > 0 ? Z : exp(Z) - 1; }
static double r_sin_cos(const double *v) { return sin(Z) * cos(2 * Z); }
static double r_pow25(const double *v) { return pow(Z, 2.5); }
static double r_square_m1(const double *v) { return (Z - 1) * (Z - 1); }
static double r_softsign(const double *v) { return Z / (1 + fabs(Z)); }
static double r_recip(const double *v) { return 1 / Z; }
static double r_quotient(const double *v) { return (Z + 1) / (Z * Z + 2); }
static double r_log_sigmoid(const double *v) { return log(1 / (1 + exp(-Z))); }
static double r_gate(const double *v) { return Z >= 0.5 ? Z : 0; }
static double r_eq(const double *v) { return Z == 1 ? 0 : Z; }
static double r_log(const double *v) { return log(Z); }
static double r_misc(const double *v) { return exp(Z) * Z - Z / 3 + 7; }
static double r_round_const(const double *v) { return 2 * Z; }
static double r_cube_root(const double *v) { return cbrt(Z); }
static double r_chain(const double *v) { return tanh(log(1 + Z * Z)); }
#undef Z
#define W (v[0])
static double r_l1(const double *v) { return fabs(0.01 * W); }
static double r_l1_l2(const double *v) { return 0.01 * W * W + fabs(W); }
static double r_neg_half(const double *v) { return -W / 2; }
static double r_nonneg(const double *v) { return W > 0 ? W : 0; }
static double r_unit(const double *v) { return W < 0 ? 0 : W > 1 ? 1 : W; }
#undef W
#define YT (v[0])
#define YP (v[1])
static double r_huber(const double *v)
{
    double e = YT - YP;
    return fabs(e) < 1 ? 0.5 * e * e : fabs(e) - 0.5;
}
static double r_nested(const double *v) { return (YT - YP + YP) * (YT - YP); }
static double r_sq_err(const double *v) { return (YT - YP) * (YT - YP); }
static double r_select(const double *v) { return (YP > 0.5 ? YT : 1 - YT) * YP; }
static double r_bxent(const double *v) { return -(YT * log(YP) + (1 - YT) * log(1 - YP)); }
#undef YT
#undef YP

/* ---- the cases -------------------------------------------------------------------- */

#define ELEM EXPR_ELEMENTWISE
static const Case cases[] = {
    {"z", "z", NULL, ELEM, r_id, "-1.5;0.7", "z", "1.0f"},
    {"2 * z + 1", "z", NULL, ELEM, r_affine, "-1.5;0.7", "2.0f * z + 1.0f", "2.0f"},
    {"z^3", "z", NULL, ELEM, r_cube, "-1.5;0.7;2", "powf(z, 3.0f)", "3.0f * (z * z)"},
    {"2 ** z", "z", NULL, ELEM, r_two_to_z, "-1.5;0.7;2", "powf(2.0f, z)", "0.693147181f * powf(2.0f, z)"},
    {"z ^ z", "z", NULL, ELEM, r_z_to_z, "0.4;1.3;2.2", "powf(z, z)", "powf(z, z) * (logf(z) + 1.0f)"},
    {"-z^2", "z", NULL, ELEM, r_neg_square, "-1.5;0.7", "-(z * z)", "-2.0f * z"},
    {"2^-1 * z", "z", NULL, ELEM, r_half_z, "-1.5;0.7", "0.5f * z", "0.5f"},
    {"log(exp(z) + 1)", "z", NULL, ELEM, r_softplus, "-3;-0.4;0.9;30",
     "fmaxf(z, 0.0f) + log1pf(expf(-fabsf(z)))", "1.0f / (1.0f + expf(-z))"},
    {"softplus(z)", "z", NULL, ELEM, r_softplus, "-3;0.9;12", NULL, NULL},
    {"z * sigmoid(z)", "z", NULL, ELEM, r_swish, "-3;-0.4;0.9;4", "z * (1.0f / (1.0f + expf(-z)))",
     "1.0f / (1.0f + expf(-z)) + z * (1.0f / (1.0f + expf(-z)) * (1.0f - 1.0f / (1.0f + expf(-z))))"},
    {"tanh(z)", "z", NULL, ELEM, r_tanh, "-1.2;0.3;2", "tanhf(z)", "1.0f - powf(tanhf(z), 2.0f)"},
    {"sqrt(z*z + 1)", "z", NULL, ELEM, r_hypot1, "-1.2;0.3;2", "sqrtf(z * z + 1.0f)",
     "z / sqrtf(z * z + 1.0f)"},
    {"exp(-z*z/2)", "z", NULL, ELEM, r_gauss, "-1.2;0.3;2", "expf(-(z * z / 2.0f))",
     "-(expf(-(z * z / 2.0f)) * z)"},
    {"abs(z)", "z", NULL, ELEM, r_abs, "-1.2;0.3;2", "fabsf(z)", "(float)((z > 0.0f) - (z < 0.0f))"},
    {"relu(z)", "z", NULL, ELEM, r_relu, "-1.2;0.3;2", "fmaxf(z, 0.0f)", "z > 0.0f ? 1.0f : 0.0f"},
    {"max(z, 0)", "z", NULL, ELEM, r_relu, "-1.2;0.3;2", "fmaxf(z, 0.0f)", "z >= 0.0f ? 1.0f : 0.0f"},
    {"min(z, 1)", "z", NULL, ELEM, r_min1, "-1.2;0.3;2", "fminf(z, 1.0f)", "z <= 1.0f ? 1.0f : 0.0f"},
    {"clip(z, -1, 1)", "z", NULL, ELEM, r_clip, "-1.5;-0.3;0.6;1.8", "fminf(fmaxf(z, -1.0f), 1.0f)",
     "z < -1.0f ? 0.0f : (z > 1.0f ? 0.0f : 1.0f)"},
    {"where(z > 0, z, 0.1 * z)", "z", NULL, ELEM, r_leaky, "-1.2;0.3;2", "z > 0.0f ? z : 0.1f * z",
     "z > 0.0f ? 1.0f : 0.1f"},
    {"z > 0 ? z : exp(z) - 1", "z", NULL, ELEM, r_elu, "-1.2;0.3;2", "z > 0.0f ? z : expf(z) - 1.0f",
     "z > 0.0f ? 1.0f : expf(z)"},
    {"sin(z) * cos(2 * z)", "z", NULL, ELEM, r_sin_cos, "-1.2;0.3;2", NULL,
     "cosf(z) * cosf(2.0f * z) - 2.0f * (sinf(z) * sinf(2.0f * z))"},
    {"pow(z, 2.5)", "z", NULL, ELEM, r_pow25, "0.3;1.1;2", "powf(z, 2.5f)", "2.5f * powf(z, 1.5f)"},
    {"square(z - 1)", "z", NULL, ELEM, r_square_m1, "-1.2;0.3;2", "powf(z - 1.0f, 2.0f)",
     "2.0f * (z - 1.0f)"},
    {"z / (1 + abs(z))", "z", NULL, ELEM, r_softsign, "-1.2;0.3;2", NULL, NULL},
    {"1 / z", "z", NULL, ELEM, r_recip, "-1.2;0.3;2", "1.0f / z", "-(1.0f / (z * z))"},
    {"(z + 1) / (z * z + 2)", "z", NULL, ELEM, r_quotient, "-1.2;0.3;2", NULL, NULL},
    {"log(sigmoid(z))", "z", NULL, ELEM, r_log_sigmoid, "-3;0.3;2", NULL, "1.0f - 1.0f / (1.0f + expf(-z))"},
    {"-(-z) + 0 * exp(z) + 1 * 0", "z", NULL, ELEM, r_id, "-1.2;0.3", "z", "1.0f"},
    {"z * (z >= 0.5)", "z", NULL, ELEM, r_gate, "-1.2;0.3;2", "z * (z >= 0.5f ? 1.0f : 0.0f)",
     "z >= 0.5f ? 1.0f : 0.0f"},
    {"z == 1 ? 0 : z", "z", NULL, ELEM, r_eq, "-1.2;0.3;2", "z == 1.0f ? 0.0f : z", "z == 1.0f ? 0.0f : 1.0f"},
    {"log(z)", "z", NULL, ELEM, r_log, "0.2;1.5;7", "logf(z)", "1.0f / z"},
    {"exp(z) * z - z / 3 + 7", "z", NULL, ELEM, r_misc, "-1.2;0.3;2", NULL, NULL},
    {"round(2.5) * z", "z", NULL, ELEM, r_round_const, "-1.2;0.3", "2.0f * z", "2.0f"},
    {"z ^ (1/3)", "z", NULL, ELEM, r_cube_root, "0.2;1.5;7", "powf(z, 0.333333333f)",
     "0.333333333f * powf(z, -0.666666667f)"},
    {"tanh(log(1 + z*z))", "z", NULL, ELEM, r_chain, "-1.2;0.3;2", NULL, NULL},
    /* losses: y_true, y_pred */
    {"abs(e) < 1 ? 0.5 * e * e : abs(e) - 0.5", "y_true y_pred", "e=y_true - y_pred", ELEM, r_huber,
     "1,0.3;0.2,2.5;-1,0.8;3,-0.5;0.1,0.4",
     "fabsf(y_true - y_pred) < 1.0f ? 0.5f * ((y_true - y_pred) * (y_true - y_pred)) : fabsf(y_true - y_pred) - 0.5f",
     "fabsf(y_true - y_pred) < 1.0f ? y_true - y_pred : (float)((y_true - y_pred > 0.0f) - (y_true - y_pred < 0.0f))"},
    {"a * b", "y_true y_pred", "a=b + y_pred;b=y_true - y_pred", ELEM, r_nested, "1,0.3;-0.7,2", NULL, NULL},
    {"square(y_true - y_pred)", "y_true y_pred", NULL, EXPR_MAY_REDUCE, r_sq_err, "1,0.3;-0.7,2", NULL, NULL},
    {"mean(square(e))", "y_true y_pred", "e=y_true - y_pred", EXPR_MAY_REDUCE, r_sq_err, "1,0.3;-0.7,2",
     "powf(y_true - y_pred, 2.0f)", "2.0f * (y_true - y_pred)"},
    {"where(y_pred > 0.5, y_true, 1 - y_true) * y_pred", "y_true y_pred", NULL, ELEM, r_select,
     "1,0.3;0.2,0.8;0.6,0.7", NULL, NULL},
    {"-(y_true * log(y_pred) + (1 - y_true) * log(1 - y_pred))", "y_true y_pred", NULL, ELEM, r_bxent,
     "1,0.3;0.2,0.8;0.6,0.7", NULL, NULL},
    /* regularizers and constraints: w */
    {"sum(abs(0.01 * w))", "w", NULL, EXPR_MUST_REDUCE, r_l1, "-1.2;0.3;2", "fabsf(0.01f * w)",
     "0.01f * (float)((0.01f * w > 0.0f) - (0.01f * w < 0.0f))"},
    {"0.01 * sum(square(w)) + sum(abs(w))", "w", NULL, EXPR_MUST_REDUCE, r_l1_l2, "-1.2;0.3;2",
     "0.01f * (w * w) + fabsf(w)", "0.02f * w + (float)((w > 0.0f) - (w < 0.0f))"},
    {"-mean(w) / 2", "w", NULL, EXPR_MUST_REDUCE, r_neg_half, "-1.2;0.3", "-(w / 2.0f)", "-0.5f"},
    {"max(w, 0)", "w", NULL, ELEM, r_nonneg, "-1.2;0.3;2", "fmaxf(w, 0.0f)", "w >= 0.0f ? 1.0f : 0.0f"},
    {"clip(w, 0, 1)", "w", NULL, ELEM, r_unit, "-1.2;0.3;2", NULL, NULL},
};

typedef struct {
    const char *text;
    const char *vars;
    const char *where;
    ExprTop top;
    bool plain;                  /* written unquoted */
    bool diff;                   /* parses; the derivative fails */
    int line, col;               /* where the error must point */
    const char *message;         /* what it must say (a substring) */
} ErrorCase;

/* The expression is on line 1 at column 6 (`act: "...`), so its text starts
 * at column 7 quoted, 6 plain; `where:` definitions are on line 2. */
static const ErrorCase errors[] = {
    {"log(exp(z) + 1", "z", NULL, ELEM, false, false, 1, 21, "expected ')'"},
    {"foo(z)", "z", NULL, ELEM, false, false, 1, 7, "unknown function 'foo'"},
    {"q + 1", "z", NULL, ELEM, false, false, 1, 7, "unknown variable 'q': the variables here are z"},
    {"abs(e) < 1 ? q : e", "y_true y_pred", "e=y_true - y_pred", ELEM, false, false, 1, 20,
     "unknown variable 'q': the variables here are y_true, y_pred, e"},
    {"z + * 2", "z", NULL, ELEM, false, false, 1, 11, "expected a number, a variable or '(', not '*'"},
    {"exp(z, 1)", "z", NULL, ELEM, false, false, 1, 7, "'exp' takes 1 argument, not 2"},
    {"clip(z)", "z", NULL, ELEM, false, false, 1, 7, "'clip' takes 3 arguments, not 1"},
    {"z = 1", "z", NULL, ELEM, false, false, 1, 9, "'=' is not an operator"},
    {"0 < z < 1", "z", NULL, ELEM, false, false, 1, 13, "comparisons do not chain"},
    {"z > 0 ? z", "z", NULL, ELEM, false, false, 1, 16, "expected ':'"},
    {"", "z", NULL, ELEM, false, false, 1, 7, "the expression is empty"},
    {"exp(z))", "z", NULL, ELEM, false, false, 1, 13, "unexpected ')' after the expression"},
    {"2 * (z + ", "z", NULL, ELEM, false, false, 1, 16, "the expression ends too early"},
    {"square(y_true[:, -1])", "y_true y_pred", NULL, ELEM, false, false, 1, 20, "indexing is not supported"},
    {"2z", "z", NULL, ELEM, false, false, 1, 8, "a number cannot be followed by a name"},
    {"1e999 * z", "z", NULL, ELEM, false, false, 1, 7, "the number 1e999 is out of range"},
    {"z(1)", "z", NULL, ELEM, false, false, 1, 7, "'z' is a variable, not a function"},
    {"exp + 1", "z", NULL, ELEM, false, false, 1, 7, "'exp' is a function"},
    {"exp(z) + q", "z", NULL, ELEM, true, false, 1, 15, "unknown variable 'q'"},
    {"a + 1", "z", "a=b * 2;b=a - 1", ELEM, false, false, 2, 25, "'a' is defined in terms of itself: a -> b -> a"},
    {"e * z", "z", "e=e + 1", ELEM, false, false, 2, 13, "'e' is defined in terms of itself: e -> e"},
    {"abs(e)", "y_true y_pred", "e=y_true - y_prd", ELEM, false, false, 2, 22,
     "unknown variable 'y_prd': the variables here are y_true, y_pred, e"},
    {"z", "z", "f=z +", ELEM, false, false, 2, 16, "the expression ends too early"},
    {"z + 1", "z", "z=2", ELEM, false, false, 2, 9, "'z' is already a variable of this activation"},
    {"abs(w)", "w", NULL, EXPR_MUST_REDUCE, false, false, 1, 7, "this regularizer must reduce to one number"},
    {"sqrt(sum(square(w)))", "w", NULL, EXPR_MUST_REDUCE, false, false, 1, 12,
     "sum(...) must be the whole regularizer, scaled by a constant or added to another sum(...)"},
    {"sum(w) + 1", "w", NULL, EXPR_MUST_REDUCE, false, false, 1, 7, "sum(...) must be the whole regularizer"},
    {"sum(w) + mean(w)", "w", NULL, EXPR_MUST_REDUCE, false, false, 1, 16,
     "sum(...) and mean(...) cannot be combined"},
    {"sum(sum(w))", "w", NULL, EXPR_MUST_REDUCE, false, false, 1, 11, "sum(...) inside sum(...): reductions do not nest"},
    {"z - mean(z)", "z", NULL, ELEM, false, false, 1, 11, "mean(...) has no place in this activation"},
    {"round(z) * z", "z", NULL, ELEM, false, true, 1, 7, "'round' has no derivative: it is piecewise constant"},
    {"z + floor(s)", "z", "s=z / 2", ELEM, false, true, 1, 11, "'floor' has no derivative"},
};

/* ---- harness -------------------------------------------------------------------- */

static int passed, failed;
static Arena sources;            /* what diag.c quotes keeps living after each case's arena */

static void report(bool ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void report(bool ok, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%s ", ok ? "ok  " : "FAIL");
    vprintf(fmt, ap);
    putchar('\n');
    va_end(ap);
    if (ok)
        passed++;
    else
        failed++;
}

static int split_vars(Arena *a, const char *list, const char **vars)
{
    int n = 0;
    char *s = arena_strdup(a, list);
    for (char *t = strtok(s, " "); t && n < MAX_VARS; t = strtok(NULL, " "))
        vars[n++] = t;
    return n;
}

/* The source `act: "TEXT"` and, with where, `where: {name: "text", ...}` on
 * line 2, registered with diag.c (it quotes 64 files) when quote is set so
 * errors show it. *where_out gets the map. */
static Loc make_source(Arena *a, const char *file, const char *text, bool plain, const char *where,
                       bool quote, const YNode **where_out)
{
    const char *src = arena_printf(a, plain ? "act: %s\n" : "act: \"%s\"\n", text);
    *where_out = NULL;
    if (where) {
        YNode *map = arena_alloc(a, sizeof *map);
        map->kind = Y_MAP;
        map->loc = (Loc){file, 2, 8};
        map->items = arena_alloc(a, 2 * 8 * sizeof *map->items);
        const char *line = "where: {";
        char *defs = arena_strdup(a, where);
        for (char *d = strtok(defs, ";"); d && map->n < 8; d = strtok(NULL, ";")) {
            char *eq = strchr(d, '=');
            *eq = 0;
            if (map->n)
                line = arena_printf(a, "%s, ", line);
            YNode *key = arena_alloc(a, sizeof *key), *value = arena_alloc(a, sizeof *value);
            *key = (YNode){.kind = Y_SCALAR, .loc = {file, 2, (int)strlen(line) + 1}, .text = d, .plain = true};
            line = arena_printf(a, "%s%s: ", line, d);
            *value = (YNode){.kind = Y_SCALAR, .loc = {file, 2, (int)strlen(line) + 1}, .text = eq + 1};
            line = arena_printf(a, "%s\"%s\"", line, eq + 1);
            map->items[2 * map->n] = key;
            map->items[2 * map->n + 1] = value;
            map->n++;
        }
        src = arena_printf(a, "%s%s}\n", src, line);
        *where_out = map;
    }
    if (quote)
        diag_add_source(file, arena_strdup(&sources, src));
    return (Loc){file, 1, 6};
}

static const char *what_of(ExprTop top, const char *vars)
{
    if (top == EXPR_MUST_REDUCE)
        return "regularizer";
    if (top == EXPR_MAY_REDUCE || strstr(vars, "y_pred"))
        return "loss";
    return vars[0] == 'w' ? "constraint" : "activation";
}

static int parse_points(const char *spec, double pts[][MAX_VARS], int nvars)
{
    int n = 0;
    const char *p = spec;
    while (*p && n < 8) {
        for (int i = 0; i < nvars; i++) {
            char *end;
            pts[n][i] = strtod(p, &end);
            p = *end ? end + 1 : end;
        }
        n++;
    }
    return n;
}

/* One case: value and derivatives at each point; the expected C. With emit,
 * its C and the values it must give go to the emitted program instead. */
static void run_case(int index, const Case *c, FILE *emit)
{
    Arena a = {0};
    const char *vars[MAX_VARS];
    int nvars = split_vars(&a, c->vars, vars);
    const YNode *where;
    Loc loc = make_source(&a, arena_printf(&a, "case%02d.yaml", index), c->text, false, c->where, false, &where);
    ExprEnv env = {what_of(c->top, c->vars), vars, nvars, where, c->top, NULL};
    Expr *e = expr_parse(&a, c->text, loc, true, &env);
    if (!e) {
        report(false, "%-44s does not parse", c->text);
        goto done;
    }
    ExprKind kind;
    Expr *body = expr_reduction(e, &kind);
    bool reduces = body != NULL;
    if (!body)
        body = e;
    if (reduces != (c->top == EXPR_MUST_REDUCE || strncmp(c->text, "mean(", 5) == 0)) {
        report(false, "%-44s reduction %s", c->text, reduces ? "unexpected" : "missing");
        goto done;
    }
    Expr *d[MAX_VARS];
    for (int i = 0; i < nvars; i++)
        if (!(d[i] = expr_diff(&a, body, i))) {
            report(false, "%-44s d/d%s fails", c->text, vars[i]);
            goto done;
        }
    double pts[8][MAX_VARS];
    int npts = parse_points(c->points, pts, nvars);
    if (emit) {
        static const char *const names[MAX_VARS] = {"v[0]", "v[1]", "v[2]"};
        fprintf(emit, "    /* %s */\n", c->text);
        for (int p = 0; p < npts; p++) {
            double x[MAX_VARS];
            fprintf(emit, "    {\n        float v[%d] = {", nvars);
            for (int i = 0; i < nvars; i++) {
                x[i] = (float)pts[p][i];  /* the float the program holds */
                fprintf(emit, "%s%.9g", i ? ", " : "", x[i]);
            }
            fprintf(emit, "};\n        (void)v;\n");
            fprintf(emit, "        check(%d, \"value\", %s, %.17g);\n", index, expr_to_c(&a, body, names),
                    expr_eval(body, x));
            for (int i = 0; i < nvars; i++)
                fprintf(emit, "        check(%d, \"d/d%s\", %s, %.17g);\n", index, vars[i],
                        expr_to_c(&a, d[i], names), expr_eval(d[i], x));
            fprintf(emit, "    }\n");
        }
        goto done;
    }
    const char *why = NULL;
    double worst = 0;
    for (int p = 0; p < npts && !why; p++) {
        double *x = pts[p];
        double got = expr_eval(body, x), want = c->ref(x);
        if (!(fabs(got - want) <= 1e-9 * (1 + fabs(want))))
            why = arena_printf(&a, "value %.12g, reference %.12g at point %d", got, want, p);
        for (int i = 0; i < nvars && !why; i++) {
            double h = 1e-5 * fmax(1, fabs(x[i])), save = x[i];
            x[i] = save + h;
            double up = c->ref(x);
            x[i] = save - h;
            double down = c->ref(x);
            x[i] = save;
            double fd = (up - down) / (2 * h), dv = expr_eval(d[i], x);
            double err = fabs(dv - fd) / (1 + fabs(fd));
            worst = fmax(worst, err);
            if (!(err <= 1e-5))
                why = arena_printf(&a, "d/d%s %.12g, finite difference %.12g at point %d", vars[i], dv, fd, p);
        }
    }
    const char *cv = expr_to_c(&a, body, NULL), *cd = expr_to_c(&a, d[0], NULL);
    if (!why && c->c && strcmp(cv, c->c))
        why = arena_printf(&a, "C is\n         %s\n     expected\n         %s", cv, c->c);
    if (!why && c->dc && strcmp(cd, c->dc))
        why = arena_printf(&a, "C of d/d%s is\n         %s\n     expected\n         %s", vars[0], cd, c->dc);
    if (why)
        report(false, "%-44s %s", c->text, why);
    else
        report(true, "%-44s %d points, max rel. error of d %.1e; d/d%s = %s", c->text, npts, worst, vars[0], cd);
done:
    arena_free(&a);
}

/* One malformed expression: it must fail with its message at its column. */
static void run_error(int index, const ErrorCase *c)
{
    Arena a = {0};
    const char *vars[MAX_VARS];
    int nvars = split_vars(&a, c->vars, vars);
    const char *file = arena_printf(&sources, "error%02d.yaml", index);
    const YNode *where;
    Loc loc = make_source(&a, file, c->text, c->plain, c->where, true, &where);
    ExprEnv env = {what_of(c->top, c->vars), vars, nvars, where, c->top, NULL};

    fflush(stderr);
    FILE *tmp = tmpfile();
    int saved = dup(2);
    if (!tmp || saved < 0 || dup2(fileno(tmp), 2) < 0) {
        report(false, "cannot capture stderr");
        goto done;
    }
    Expr *e = expr_parse(&a, c->text, loc, !c->plain, &env);
    bool diff_failed = e && c->diff && !expr_diff(&a, e, 0);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    char out[2048] = "";
    rewind(tmp);
    size_t n = fread(out, 1, sizeof out - 1, tmp);
    out[n] = 0;
    fclose(tmp);

    const char *want = arena_printf(&a, "%s:%d:%d: error: %s", file, c->line, c->col, c->message);
    bool ok = (c->diff ? diff_failed : !e) && strstr(out, want);
    char *first = arena_strdup(&a, out);
    first[strcspn(first, "\n")] = 0;
    if (ok)
        report(true, "error %-30s -> %s", arena_printf(&a, "\"%s\"", c->text), first);
    else
        report(false, "error %-30s\n     wanted %s\n     got    %s", arena_printf(&a, "\"%s\"", c->text), want,
               *out ? out : (e ? "no error\n" : "nothing\n"));
done:
    arena_free(&a);
}

static int emit_program(const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        perror(path);
        return 1;
    }
    fprintf(f, "/* Generated by test_expr --emit: the C of every case of tests/test_expr.c, in float,\n"
               " * against the double values of expr_eval at the same points. */\n"
               "#include <math.h>\n#include <stdio.h>\n\n"
               "static int checks, failures;\n\n"
               "static void check(int index, const char *what, float got, double want)\n{\n"
               "    checks++;\n"
               "    if (!(fabs(got - want) <= 2e-5 * (1 + fabs(want)))) {\n"
               "        printf(\"FAIL case %%d %%s: %%.9g, expected %%.9g\\n\", index, what, got, want);\n"
               "        failures++;\n    }\n}\n\n"
               "int main(void)\n{\n");
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_case((int)i, &cases[i], f);
    fprintf(f, "    printf(\"%%d passed, %%d failed\\n\", checks - failures, failures);\n"
               "    return failures != 0;\n}\n");
    if (fclose(f) != 0) {
        perror(path);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--emit"))
        return emit_program(argv[2]);
    setenv("NO_COLOR", "1", 1);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_case((int)i, &cases[i], NULL);
    for (size_t i = 0; i < sizeof errors / sizeof errors[0]; i++)
        run_error((int)i, &errors[i]);
    printf("%d passed, %d failed\n", passed, failed);
    arena_free(&sources);
    return failed != 0;
}
