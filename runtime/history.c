/* history.c — the training history as Keras's CSVLogger writes it and as
 * the Keras notes plot it.
 *
 * CSV: "epoch" (from 0) then the history's names in order; numbers printed
 * the way Python prints a float (the shortest string that reads back as the
 * same double). SVG: the figure of
 *     pd.DataFrame(history.history).plot(figsize=(8, 5))
 *     plt.grid(True); plt.gca().set_ylim(0, 1)
 * at matplotlib's 100 dpi: 800x500 pixels, axes at matplotlib's default
 * subplot box, one polyline per column in the tab10 color cycle, x from the
 * first to the last epoch, y from 0 (or below, for negative values) to
 * max(1, largest value), ticks chosen like MaxNLocator (at most 9 intervals
 * of 1, 2, 2.5 or 5 times a power of ten), grid at the ticks, and a legend
 * placed where it covers the fewest curve points (matplotlib's loc="best").
 * Non-finite values are left out of the curves.
 *
 * Invariants: every file is written whole to a temporary file beside the
 * target and renamed over it, so a reader never sees a partial file; the
 * history owns its names (heap copies) and values.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "nnrt.h"

static void set_error(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

void nnrt_history_free(NnrtHistory *h)
{
    if (!h)
        return;
    for (size_t i = 0; i < sizeof h->names / sizeof h->names[0]; i++)
        free((char *)h->names[i]);
    free(h->values);
    memset(h, 0, sizeof *h);
}

/* ---- text buffer and atomic write ---------------------------------------- */

typedef struct {
    char *data;
    size_t len, cap;
    int failed;                   /* an allocation failed: the text is incomplete */
} Text;

static void text_add(Text *t, const char *fmt, ...)
{
    if (t->failed)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int k = vsnprintf(t->data ? t->data + t->len : NULL, t->data ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (k < 0) {
            t->failed = 1;
            return;
        }
        if (t->data && t->len + (size_t)k < t->cap) {
            t->len += (size_t)k;
            return;
        }
        size_t cap = t->cap ? t->cap : 4096;
        while (cap <= t->len + (size_t)k)
            cap *= 2;
        char *grown = realloc(t->data, cap);
        if (!grown) {
            t->failed = 1;
            return;
        }
        t->data = grown;
        t->cap = cap;
    }
}

/* Text with &, <, >, " escaped for XML. */
static void text_add_escaped(Text *t, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&': text_add(t, "&amp;"); break;
        case '<': text_add(t, "&lt;"); break;
        case '>': text_add(t, "&gt;"); break;
        case '"': text_add(t, "&quot;"); break;
        default: text_add(t, "%c", *s); break;
        }
    }
}

static int write_atomic(const char *path, const Text *t, char *err, size_t errlen)
{
    size_t len = strlen(path) + sizeof ".tmp-XXXXXX";
    char *tmp = NULL;
    int fd = -1, created = 0;

    if (t->failed || !(tmp = malloc(len))) {
        set_error(err, errlen, "%s: out of memory", path);
        free(tmp);
        return NNRT_ENOMEM;
    }
    snprintf(tmp, len, "%s.tmp-XXXXXX", path);
    if ((fd = mkstemp(tmp)) < 0)
        goto fail;
    created = 1;
    /* mkstemp makes 0600; give the file the permissions a plain fopen would.
     * Reading the umask means setting it, so it is put straight back. */
    mode_t mask = umask(0);
    umask(mask);
    if (fchmod(fd, 0666 & ~mask) != 0)
        goto fail;
    for (size_t done = 0; done < t->len;) {
        ssize_t k = write(fd, t->data + done, t->len - done);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            goto fail;
        done += (size_t)k;
    }
    int closed = close(fd);
    fd = -1;
    if (closed != 0 || rename(tmp, path) != 0)
        goto fail;
    free(tmp);
    return 0;

fail:
    set_error(err, errlen, "%s: cannot write: %s", path, strerror(errno));
    if (fd >= 0)
        close(fd);
    if (created)
        remove(tmp);
    free(tmp);
    return NNRT_EIO;
}

/* ---- CSV --------------------------------------------------------------------- */

/* Python's repr of a float: the shortest %.Ng that reads back exactly, with
 * ".0" on integral values. */
static void format_python_float(char *buf, size_t len, double v)
{
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(buf, len, "%.*g", digits, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    if (isfinite(v) && !strpbrk(buf, ".e"))
        strncat(buf, ".0", len - strlen(buf) - 1);
}

int nnrt_history_write_csv(const NnrtHistory *h, const char *path, char *err, size_t errlen)
{
    Text t = {0};
    int rc;

    if (!h || !path || h->cols < 0 || h->epochs < 0 || (h->epochs > 0 && !h->values)) {
        set_error(err, errlen, "nnrt_history_write_csv: bad argument");
        return NNRT_EINVAL;
    }
    text_add(&t, "epoch");
    for (int c = 0; c < h->cols; c++)
        text_add(&t, ",%s", h->names[c] ? h->names[c] : "");
    text_add(&t, "\n");
    for (int e = 0; e < h->epochs; e++) {
        text_add(&t, "%d", e);
        for (int c = 0; c < h->cols; c++) {
            char num[64];
            format_python_float(num, sizeof num, h->values[(size_t)e * (size_t)h->cols + (size_t)c]);
            text_add(&t, ",%s", num);
        }
        text_add(&t, "\n");
    }
    rc = write_atomic(path, &t, err, errlen);
    free(t.data);
    return rc;
}

/* ---- SVG ------------------------------------------------------------------ */

/* matplotlib geometry at 100 dpi (1 pt = 100/72 px). */
#define PT (100.0 / 72.0)
#define FIG_W 800.0
#define FIG_H 500.0
#define AX_LEFT (0.125 * FIG_W)
#define AX_RIGHT (0.9 * FIG_W)
#define AX_TOP ((1 - 0.88) * FIG_H)
#define AX_BOTTOM ((1 - 0.11) * FIG_H)
#define FONT (10 * PT)             /* font.size 10 pt */
#define MAX_BINS 9                 /* MaxNLocator: at most 9 intervals */

static const char *const tab10[10] = {
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
    "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
};

typedef struct {
    double lo, hi, step;           /* axis limits and tick spacing */
    int decimals;                  /* digits after the point in tick labels */
} Axis;

/* The smallest step of {1, 2, 2.5, 5, 10} x 10^k giving at most MAX_BINS
 * intervals over span; integer axes skip fractional steps. */
static double nice_step(double span, int integer)
{
    static const double steps[] = {1, 2, 2.5, 5, 10};
    double raw = span / MAX_BINS;
    double scale = pow(10, floor(log10(raw)));
    double step = 10 * scale;
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        if (steps[i] * scale >= raw * (1 - 1e-9)) {
            step = steps[i] * scale;
            break;
        }
    }
    if (integer && (step < 1 || step == 2.5))
        step = step < 1 ? 1 : 5;
    return step;
}

static Axis make_axis(double lo, double hi, int integer, int extend)
{
    Axis a = {lo, hi, nice_step(hi - lo, integer), 0};
    if (extend) {                  /* limits on ticks, for data beyond [0, 1] */
        a.lo = floor(lo / a.step + 1e-9) * a.step;
        a.hi = ceil(hi / a.step - 1e-9) * a.step;
    }
    while (a.decimals < 6) {
        double scaled = a.step * pow(10, a.decimals);
        if (fabs(scaled - round(scaled)) < 1e-6)
            break;
        a.decimals++;
    }
    return a;
}

static double to_x(const Axis *a, double v)
{
    return AX_LEFT + (v - a->lo) / (a->hi - a->lo) * (AX_RIGHT - AX_LEFT);
}

static double to_y(const Axis *a, double v)
{
    return AX_BOTTOM - (v - a->lo) / (a->hi - a->lo) * (AX_BOTTOM - AX_TOP);
}

typedef struct {
    double x, y, w, h;
} Box;

/* How many points along the curves fall inside b (matplotlib's "best"
 * counts the same thing on the line vertices; segments are sampled so a
 * short history still counts the lines crossing the box). */
static long box_badness(const NnrtHistory *h, const Axis *ax, const Axis *ay, Box b)
{
    long count = 0;
    for (int c = 0; c < h->cols; c++) {
        for (int e = 0; e < h->epochs; e++) {
            int last = e + 1 == h->epochs;
            double v0 = h->values[(size_t)e * (size_t)h->cols + (size_t)c];
            double v1 = last ? v0 : h->values[(size_t)(e + 1) * (size_t)h->cols + (size_t)c];
            if (!isfinite(v0) || !isfinite(v1))
                continue;
            for (int s = 0; s < (last ? 1 : 16); s++) {
                double f = s / 16.0;
                double x = to_x(ax, e + f), y = to_y(ay, v0 + f * (v1 - v0));
                count += x >= b.x && x <= b.x + b.w && y >= b.y && y <= b.y + b.h;
            }
        }
    }
    return count;
}

static void tick_label(char *buf, size_t len, const Axis *a, double v)
{
    if (fabs(v) < a->step * 1e-9)
        v = 0;                     /* no "-0.0" */
    snprintf(buf, len, "%.*f", a->decimals, v);
}

int nnrt_history_write_svg(const NnrtHistory *h, const char *title, const char *path, char *err,
                           size_t errlen)
{
    Text t = {0};
    int rc;

    if (!h || !path || h->cols < 0 || h->epochs < 0 || (h->epochs > 0 && !h->values)) {
        set_error(err, errlen, "nnrt_history_write_svg: bad argument");
        return NNRT_EINVAL;
    }

    double vmin = 0, vmax = 1;
    for (size_t i = 0; i < (size_t)h->epochs * (size_t)h->cols; i++) {
        if (isfinite(h->values[i])) {
            vmin = fmin(vmin, h->values[i]);
            vmax = fmax(vmax, h->values[i]);
        }
    }
    Axis ax = make_axis(0, h->epochs > 1 ? h->epochs - 1 : 1, 1, 0);
    Axis ay = make_axis(vmin, vmax, 0, vmin < 0 || vmax > 1);

    text_add(&t, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"800\" height=\"500\" "
             "viewBox=\"0 0 800 500\" font-family=\"DejaVu Sans, Bitstream Vera Sans, Arial, "
             "sans-serif\" font-size=\"%.2f\">\n", FONT);
    text_add(&t, "<title>");
    text_add_escaped(&t, title && *title ? title : "learning curves");
    text_add(&t, "</title>\n<rect width=\"800\" height=\"500\" fill=\"#ffffff\"/>\n");

    /* grid, then the ticks and their labels */
    text_add(&t, "<g stroke=\"#b0b0b0\" stroke-width=\"%.2f\">\n", 0.8 * PT);
    for (double v = ax.lo; v <= ax.hi + 1e-9 * ax.step; v += ax.step)
        text_add(&t, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n", to_x(&ax, v),
                 AX_TOP, to_x(&ax, v), AX_BOTTOM);
    for (int i = 0;; i++) {
        double v = ay.lo + i * ay.step;
        if (v > ay.hi + 1e-9 * ay.step)
            break;
        text_add(&t, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n", AX_LEFT,
                 to_y(&ay, v), AX_RIGHT, to_y(&ay, v));
    }
    text_add(&t, "</g>\n<g stroke=\"#000000\" stroke-width=\"%.2f\">\n", 0.8 * PT);
    for (double v = ax.lo; v <= ax.hi + 1e-9 * ax.step; v += ax.step)
        text_add(&t, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n", to_x(&ax, v),
                 AX_BOTTOM, to_x(&ax, v), AX_BOTTOM + 3.5 * PT);
    for (int i = 0;; i++) {
        double v = ay.lo + i * ay.step;
        if (v > ay.hi + 1e-9 * ay.step)
            break;
        text_add(&t, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\"/>\n",
                 AX_LEFT - 3.5 * PT, to_y(&ay, v), AX_LEFT, to_y(&ay, v));
    }
    text_add(&t, "</g>\n<g fill=\"#000000\">\n");
    for (double v = ax.lo; v <= ax.hi + 1e-9 * ax.step; v += ax.step) {
        char label[64];
        tick_label(label, sizeof label, &ax, v);
        text_add(&t, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\">%s</text>\n",
                 to_x(&ax, v), AX_BOTTOM + 7 * PT + 0.76 * FONT, label);
    }
    for (int i = 0;; i++) {
        double v = ay.lo + i * ay.step;
        char label[64];
        if (v > ay.hi + 1e-9 * ay.step)
            break;
        tick_label(label, sizeof label, &ay, v);
        text_add(&t, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"end\">%s</text>\n",
                 AX_LEFT - 7 * PT, to_y(&ay, v) + 0.36 * FONT, label);
    }
    text_add(&t, "</g>\n");
    if (title && *title) {
        text_add(&t, "<text x=\"%.2f\" y=\"%.2f\" text-anchor=\"middle\" font-size=\"%.2f\">",
                 (AX_LEFT + AX_RIGHT) / 2, AX_TOP - 6 * PT, 12 * PT);
        text_add_escaped(&t, title);
        text_add(&t, "</text>\n");
    }

    /* the curves, clipped to the axes like matplotlib's */
    text_add(&t, "<clipPath id=\"axes\"><rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\"/>"
             "</clipPath>\n<g clip-path=\"url(#axes)\" fill=\"none\" stroke-width=\"%.2f\" "
             "stroke-linejoin=\"round\" stroke-linecap=\"square\">\n", AX_LEFT, AX_TOP,
             AX_RIGHT - AX_LEFT, AX_BOTTOM - AX_TOP, 1.5 * PT);
    for (int c = 0; c < h->cols; c++) {
        text_add(&t, "<polyline stroke=\"%s\" points=\"", tab10[c % 10]);
        for (int e = 0; e < h->epochs; e++) {
            double v = h->values[(size_t)e * (size_t)h->cols + (size_t)c];
            if (isfinite(v))
                text_add(&t, "%s%.2f,%.2f", e ? " " : "", to_x(&ax, e), to_y(&ay, v));
        }
        text_add(&t, "\"/>\n");
        /* one epoch is one point, which a line does not show */
        if (h->epochs == 1 && isfinite(h->values[c]))
            text_add(&t, "<circle cx=\"%.2f\" cy=\"%.2f\" r=\"%.2f\" fill=\"%s\" stroke=\"none\"/>\n",
                     to_x(&ax, 0), to_y(&ay, h->values[c]), 2 * PT, tab10[c % 10]);
    }
    text_add(&t, "</g>\n<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" fill=\"none\" "
             "stroke=\"#000000\" stroke-width=\"%.2f\"/>\n", AX_LEFT, AX_TOP, AX_RIGHT - AX_LEFT,
             AX_BOTTOM - AX_TOP, 0.8 * PT);

    /* the legend: matplotlib's paddings in font-size units */
    if (h->cols > 0) {
        size_t longest = 0;
        for (int c = 0; c < h->cols; c++)
            if (h->names[c] && strlen(h->names[c]) > longest)
                longest = strlen(h->names[c]);
        double pad = 0.4 * FONT, handle = 2.0 * FONT, gap = 0.8 * FONT, row = 1.5 * FONT;
        double margin = 0.5 * FONT;
        Box b = {0, 0, 2 * pad + handle + gap + 0.6 * FONT * (double)longest,
                 2 * pad + row * h->cols - 0.5 * FONT};
        /* matplotlib's candidate order: upper right, upper left, lower left,
         * lower right, right, center left, center right, lower center,
         * upper center, center (fractions of the free space). */
        static const double where[10][2] = {
            {1, 0}, {0, 0}, {0, 1}, {1, 1}, {1, 0.5}, {0, 0.5}, {1, 0.5}, {0.5, 1}, {0.5, 0}, {0.5, 0.5},
        };
        long best = -1;
        Box chosen = b;
        for (int k = 0; k < 10; k++) {
            Box c = b;
            c.x = AX_LEFT + margin + where[k][0] * (AX_RIGHT - AX_LEFT - 2 * margin - b.w);
            c.y = AX_TOP + margin + where[k][1] * (AX_BOTTOM - AX_TOP - 2 * margin - b.h);
            long bad = box_badness(h, &ax, &ay, c);
            if (best < 0 || bad < best) {
                best = bad;
                chosen = c;
            }
        }
        text_add(&t, "<rect x=\"%.2f\" y=\"%.2f\" width=\"%.2f\" height=\"%.2f\" rx=\"%.2f\" "
                 "fill=\"#ffffff\" fill-opacity=\"0.8\" stroke=\"#cccccc\" stroke-width=\"%.2f\"/>\n",
                 chosen.x, chosen.y, chosen.w, chosen.h, 0.2 * FONT, 0.8 * PT);
        for (int c = 0; c < h->cols; c++) {
            double y = chosen.y + pad + row * c + 0.5 * FONT;
            text_add(&t, "<line x1=\"%.2f\" y1=\"%.2f\" x2=\"%.2f\" y2=\"%.2f\" stroke=\"%s\" "
                     "stroke-width=\"%.2f\" stroke-linecap=\"square\"/>\n", chosen.x + pad, y,
                     chosen.x + pad + handle, y, tab10[c % 10], 1.5 * PT);
            text_add(&t, "<text x=\"%.2f\" y=\"%.2f\">", chosen.x + pad + handle + gap,
                     y + 0.36 * FONT);
            text_add_escaped(&t, h->names[c] ? h->names[c] : "");
            text_add(&t, "</text>\n");
        }
    }
    text_add(&t, "</svg>\n");
    rc = write_atomic(path, &t, err, errlen);
    free(t.data);
    return rc;
}
