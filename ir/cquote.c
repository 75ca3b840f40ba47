/* cquote.c — the one way text from the input is written into generated C.
 *
 * nncc's input (a model file and its path, layer and input names, data
 * paths, callback file names, numbers, the command line's --prefix and
 * --header) comes from whoever wrote the file. Every piece of it that
 * reaches a generated .c or .h goes through one of these functions, so that
 * no input can end a comment, end a string literal or become code:
 *
 *   c_literal      a string literal: `\` `"` `?` (trigraphs: `??/` is a
 *                  backslash under -std=c11), control characters and every
 *                  byte past ASCII as escapes; the octal ones always take
 *                  three digits, so a following digit is never absorbed.
 *   c_comment_text text for inside a comment: a star and a slash never meet
 *                  to end or open one (written `*\/`, `/\*`), a backslash, a control
 *                  character (newline, \r) and every byte past ASCII are
 *                  octal escapes (nothing can splice a line, end a `//`
 *                  comment, or be a bidirectional control), no `??`.
 *   c_char_literal a character constant.
 *   c_double, c_float  a number: finite ones round-trip (%.17g, %.9g with
 *                  `f`), NaN and the infinities the math.h macros.
 *   c_name_unique  an identifier derived from a name (never the name
 *                  copied): [A-Za-z0-9_] only, not starting with a digit,
 *                  `_`, nor a prefix the generated code and its runtime keep
 *                  (nnrt, glue_), at most C_NAME_MAX characters, and unique.
 *   c_identifier_ok  whether a user's name may be used as it is (the model
 *                  name, --prefix, a C hook's function name).
 *   c_header_name_ok whether a file name can stand in `#include "..."`,
 *                  which has no escapes at all.
 *
 * The results come from the caller's arena.
 */
#include "ir.h"

#include <assert.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A growing string in the arena's style: written once, copied out. */
typedef struct {
    char *s;
    size_t len, cap;
} Buf;

static void put(Buf *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *s2 = realloc(b->s, cap);
        if (!s2)
            abort();  /* as arena_alloc: out of memory is not a user error here */
        b->s = s2;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
}

static void putc_(Buf *b, char c)
{
    put(b, &c, 1);
}

static void put_octal(Buf *b, unsigned char c)
{
    char o[5] = {'\\', (char)('0' + (c >> 6)), (char)('0' + ((c >> 3) & 7)), (char)('0' + (c & 7)), 0};
    put(b, o, 4);
}

static const char *done(Arena *a, Buf *b)
{
    const char *s = arena_strdup(a, b->s ? b->s : "");
    free(b->s);
    return s;
}

const char *c_literal(Arena *a, const char *s)
{
    Buf b = {0};
    putc_(&b, '"');
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '"' || *p == '\\' || *p == '?') {
            putc_(&b, '\\');
            putc_(&b, (char)*p);
        } else if (*p < 0x20 || *p >= 0x7f) {
            put_octal(&b, *p);
        } else {
            putc_(&b, (char)*p);
        }
    }
    putc_(&b, '"');
    return done(a, &b);
}

const char *c_comment_text(Arena *a, const char *s)
{
    Buf b = {0};
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        char last = b.len ? b.s[b.len - 1] : 0;
        if (*p == '\\' || *p < 0x20 || *p >= 0x7f)
            put_octal(&b, *p);
        else if ((*p == '/' && last == '*') || (*p == '*' && last == '/') || (*p == '?' && last == '?')) {
            putc_(&b, '\\');  /* "*\/", "/\*", "?\?": the pair never forms */
            putc_(&b, (char)*p);
        } else
            putc_(&b, (char)*p);
    }
    /* the text may be followed by anything: it ends in neither '*' nor '/' nor '?' */
    if (b.len && strchr("*/?", b.s[b.len - 1]))
        putc_(&b, ' ');
    /* ... and does not start with '*', in case the comment's own text before it ends with '/' */
    if (b.len && b.s[0] == '*') {
        Buf c = {0};
        putc_(&c, ' ');
        put(&c, b.s, b.len);
        free(b.s);
        b = c;
    }
    return done(a, &b);
}

const char *c_char_literal(Arena *a, int c)
{
    unsigned char u = (unsigned char)c;
    if (u == '\'' || u == '\\' || u == '?')
        return arena_printf(a, "'\\%c'", u);
    if (u < 0x20 || u >= 0x7f)
        return arena_printf(a, "'\\%03o'", u);
    return arena_printf(a, "'%c'", u);
}

/* NaN and the infinities as math.h writes them; NULL for a finite v */
static const char *nonfinite(double v)
{
    if (isnan(v))
        return "NAN";
    if (isinf(v))
        return v > 0 ? "INFINITY" : "-INFINITY";
    return NULL;
}

void c_double_to(char *buf, double v)
{
    const char *nf = nonfinite(v);
    if (nf) {
        snprintf(buf, C_NUMBER_MAX, "%s", nf);
        return;
    }
    int n = snprintf(buf, C_NUMBER_MAX, "%.17g", v);
    assert(n > 0 && n + 2 < C_NUMBER_MAX);
    if (!strpbrk(buf, ".eE"))
        strcat(buf, ".0");  /* a double constant, not an int */
}

void c_float_to(char *buf, double v)
{
    const char *nf = nonfinite(v);
    if (nf) {
        snprintf(buf, C_NUMBER_MAX, "%s", nf);
        return;
    }
    int n = snprintf(buf, C_NUMBER_MAX, "%.9g", v);
    assert(n > 0 && n + 3 < C_NUMBER_MAX);
    strcat(buf, strpbrk(buf, ".eE") ? "f" : ".0f");
}

const char *c_double(Arena *a, double v)
{
    char buf[C_NUMBER_MAX];
    c_double_to(buf, v);
    return arena_strdup(a, buf);
}

const char *c_float(Arena *a, double v)
{
    char buf[C_NUMBER_MAX];
    c_float_to(buf, v);
    return arena_strdup(a, buf);
}

/* ---- identifiers ------------------------------------------------------------ */

/* Prefixes of names the generated code and libnncc_rt keep whole families
 * of: C's reserved `_`/`__` names, the runtime's nnrt_/NNRT_/Nnrt names,
 * the driver glue and the custom functions' helpers. A derived name never
 * starts with one, so only finitely many names are ever reserved for it
 * and c_name_unique always ends. */
static const char *const kept_prefixes[] = {"_", "nnrt", "NNRT", "Nnrt", "glue_", "custom_"};

bool c_name_kept_prefix(const char *name)
{
    for (size_t i = 0; i < sizeof kept_prefixes / sizeof kept_prefixes[0]; i++)
        if (!strncmp(name, kept_prefixes[i], strlen(kept_prefixes[i])))
            return true;
    return false;
}

bool c_identifier_ok(const char *s)
{
    if (!(isalpha((unsigned char)*s) || *s == '_'))
        return false;
    size_t n = 0;
    for (; *s; s++, n++)
        if (!(isalnum((unsigned char)*s) || *s == '_') || (unsigned char)*s >= 0x80)
            return false;
    return n <= C_NAME_MAX;
}

const char *c_name_unique(Arena *a, const char *base, CNameTaken taken, const void *ctx)
{
    /* room for "v_" in front and "_<number>" behind */
    enum { CUT = C_NAME_MAX - 16 };
    char id[C_NAME_MAX + 1];
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)base; *p && n < CUT; p++)
        id[n++] = (char)(isalnum(*p) && *p < 0x80 ? *p : '_');
    id[n] = 0;
    char under[C_NAME_MAX + 2];
    snprintf(under, sizeof under, "%s_", id);  /* what every candidate starts with */
    const char *stem = id;
    if (n == 0 || isdigit((unsigned char)id[0]) || c_name_kept_prefix(under))
        stem = arena_printf(a, "v_%s", id);
    assert(!c_name_kept_prefix(stem) && strlen(stem) + 12 <= C_NAME_MAX);
    /* The candidates are distinct and none is under a kept prefix, so the
     * finitely many taken names rule out finitely many of them. */
    for (unsigned long k = 1;; k++) {
        const char *cand = k == 1 ? arena_strdup(a, stem) : arena_printf(a, "%s_%lu", stem, k);
        if (!taken(cand, ctx))
            return cand;
    }
}

bool c_header_name_ok(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!(isalnum((unsigned char)*s) || strchr("_-.+", *s)) || (unsigned char)*s >= 0x80)
            return false;
    return true;
}
