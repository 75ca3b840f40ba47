/* diag.c — user-facing diagnostics.
 *
 * `model.yaml:12:5: error: message`, then the source line and a caret under
 * the column (only the part around it when the line is long), then an
 * optional `hint:` line — the form of gcc and chibicc.
 * Sources are registered as they are read so any phase can quote a line
 * from a Loc alone. Colors only when stderr is a terminal and NO_COLOR is
 * unset. This is the compiler's only global state (nncc is one process per
 * compilation; a caller that compiles many, like the fuzz harnesses, forgets
 * the sources with diag_reset before freeing the arena that holds them).
 */
#include "compiler.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct {
    const char *file;
    const char *text;
} Source;

static Source sources[64];

enum { QUOTE_MAX = 160 };        /* longer lines are quoted around the column */
static int nsources;
static bool quiet;

void diag_set_quiet(bool q) { quiet = q; }
bool diag_quiet(void) { return quiet; }

void diag_add_source(const char *file, const char *text)
{
    if (nsources < (int)(sizeof sources / sizeof sources[0]))
        sources[nsources++] = (Source){file, text};
}

void diag_reset(void) { nsources = 0; }

static bool use_color(void)
{
    const char *nc = getenv("NO_COLOR");
    return isatty(2) && !(nc && *nc);
}

static void quote_line(Loc loc)
{
    const char *text = NULL;
    for (int i = 0; i < nsources; i++)
        if (loc.file && strcmp(sources[i].file, loc.file) == 0)
            text = sources[i].text;
    if (!text || loc.line <= 0)
        return;
    const char *p = text;
    for (int l = 1; l < loc.line && p; l++) {
        p = strchr(p, '\n');
        if (p)
            p++;
    }
    if (!p || !*p)
        return;
    int len = (int)strcspn(p, "\n");
    int col = loc.col;           /* within the part quoted */
    const char *before = "", *after = "";
    if (len > QUOTE_MAX) {       /* one-line JSON (a Keras model_config): the part around the column */
        int from = col - 1 > QUOTE_MAX / 2 ? col - 1 - QUOTE_MAX / 2 : 0;
        while (from > 0 && (p[from] & 0xC0) == 0x80)  /* not inside a UTF-8 character */
            from--;
        int to = from + QUOTE_MAX < len ? from + QUOTE_MAX : len;
        while (to < len && (p[to] & 0xC0) == 0x80)
            to++;
        before = from > 0 ? "..." : "";
        after = to < len ? "..." : "";
        p += from;
        len = to - from;
        col -= from;
    }
    fprintf(stderr, "%5d | %s%.*s%s\n      | %s", loc.line, before, len, p, after, *before ? "   " : "");
    for (int c = 1; c < col && c <= len; c++)
        fputc(p[c - 1] == '\t' ? '\t' : ' ', stderr);
    fprintf(stderr, "%s^%s\n", use_color() ? "\033[1;32m" : "", use_color() ? "\033[0m" : "");
}

static void vreport(const char *kind, const char *color, Loc loc, const char *fmt, va_list ap)
{
    bool c = use_color();
    if (loc.file) {
        fprintf(stderr, "%s%s", c ? "\033[1m" : "", loc.file);
        if (loc.line > 0)
            fprintf(stderr, ":%d:%d", loc.line, loc.col);
        fprintf(stderr, ":%s ", c ? "\033[0m" : "");
    } else {
        fprintf(stderr, "nncc: ");
    }
    fprintf(stderr, "%s%s:%s ", c ? color : "", kind, c ? "\033[0m" : "");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    quote_line(loc);
}

int error_at(Loc loc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport("error", "\033[1;31m", loc, fmt, ap);
    va_end(ap);
    return -1;
}

int error_plain(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vreport("error", "\033[1;31m", (Loc){0}, fmt, ap);
    va_end(ap);
    return -1;
}

void warning_at(Loc loc, const char *fmt, ...)
{
    if (quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    vreport("warning", "\033[1;35m", loc, fmt, ap);
    va_end(ap);
}

void hint(const char *fmt, ...)
{
    bool c = use_color();
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%shint:%s ", c ? "\033[1;36m" : "", c ? "\033[0m" : "");
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}
