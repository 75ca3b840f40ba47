/* fit.c — the Keras fit loop: load and check the data, split off validation,
 * shuffle, batch, step, report progress, record history.
 *
 * Algorithm (tf.keras Model.fit, verbose=1): the training arrays are loaded
 * once and checked against the model. Validation is loaded from its own
 * source, or carved out of the training samples (split_first: the first N;
 * split_last: the last fraction, cut at floor(N * (1 - fraction)) as Keras's
 * validation_split), or is a csv split's validation part; the same function,
 * nnrt_fit_data_load, gives the driver its test set, so fit, train's final
 * evaluation and evaluate agree on every split. Every epoch shuffles a
 * permutation of the training samples (xoshiro seeded from cfg->seed),
 * gathers ceil(N / batch) batches (the last one smaller) into contiguous
 * buffers and takes one optimizer step per batch. Loss and metrics are
 * running means weighted by batch size, as Keras's Mean metrics are;
 * validation is evaluated once at the epoch's end in inference mode.
 * Progress is Keras's Progbar: a bar redrawn with '\r' at most 10 times a
 * second on a terminal, one line per epoch otherwise.
 *
 * Invariants: every set is its own contiguous arrays (a validation split is
 * moved out of the training arrays, which shrink, so memory stays near one
 * copy of the data); history holds complete epochs only. The one global,
 * fit_interrupted, is set by the SIGINT handler installed for the duration of
 * nnrt_fit; the loop reads it between steps, so an interrupted run finishes
 * its step, keeps consistent weights and returns 0. The handler is one-shot
 * (SA_RESETHAND): a second Ctrl-C kills the program as usual.
 *
 * Data: an idx/npy source's x lists one file per model input and y one per
 * output (or one for all outputs), separated by ';'; a csv source's x and y
 * are column groups separated by '|' (data.c parses, splits and
 * standardizes; this file checks the result against the model). nnrt_fit
 * reads neither cfg->init_weights nor cfg->out_dir: loading and saving are
 * the driver's (main.c). *history is always initialized and must be freed,
 * even after an error, when it holds the epochs completed before it.
 */
#define _POSIX_C_SOURCE 200809L

#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "nnrt.h"

#define DEFAULT_BATCH 32          /* Keras fit() default */
#define BAR_WIDTH 30              /* Keras Progbar width */
#define REDRAW_INTERVAL 0.1       /* seconds between terminal redraws */

/* Set asynchronously by on_sigint while nnrt_fit runs; the only global
 * state in the runtime. sig_atomic_t and volatile: the one type a handler
 * may write and the loop may read without a data race. */
static volatile sig_atomic_t fit_interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    fit_interrupted = 1;
}

static void set_error(char *err, size_t errlen, const char *fmt, ...)
{
    if (!err || errlen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static double now_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- data ---------------------------------------------------------------- */

/* "(55000, 28, 28)" for a shape. */
static void format_shape(char *buf, size_t len, int rank, const int64_t *shape)
{
    size_t at = 0;
    at += (size_t)snprintf(buf, len, "(");
    for (int i = 0; i < rank && at < len; i++)
        at += (size_t)snprintf(buf + at, len - at, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (at < len)
        snprintf(buf + at, len - at, rank == 1 ? ",)" : ")");
}

/* Split a ';'-separated list in place (list is a private copy). Returns the
 * number of paths, or -1 if there are more than max or one is empty. */
static int split_paths(char *list, const char **paths, int max)
{
    int count = 0;
    for (char *p = list;;) {
        char *end = strchr(p, ';');
        if (end)
            *end = '\0';
        if (*p == '\0' || count == max)
            return -1;
        paths[count++] = p;
        if (!end)
            return count;
        p = end + 1;
    }
}

static int load_array(NnrtDataFormat format, const char *path, double scale, NnrtArray *a,
                      char *err, size_t errlen)
{
    int rc;
    if (format == NNRT_DATA_IDX)
        rc = nnrt_idx_load(path, scale != 0 ? (float)scale : 1.0f, a, err, errlen);
    else
        rc = nnrt_npy_load(path, a, err, errlen);
    if (rc < 0 && err && !strstr(err, path)) {
        /* The loader's message may not name the file; make sure it does. */
        char inner[512];
        snprintf(inner, sizeof inner, "%s", err);
        set_error(err, errlen, "%s: %s", path, inner);
    }
    return rc;
}

/* Samples (first axis) and values per sample of a loaded array. */
static int split_samples(const NnrtArray *a, const char *path, size_t *n, size_t *per,
                         char *err, size_t errlen)
{
    if (a->rank < 1 || a->shape[0] <= 0) {
        set_error(err, errlen, "%s: no samples (the first axis is the sample axis)", path);
        return NNRT_EFORMAT;
    }
    *n = (size_t)a->shape[0];
    *per = nnrt_array_count(a) / *n;
    return 0;
}

static void i32_to_f32(NnrtArray *a)
{
    size_t count = nnrt_array_count(a);
    int32_t *src = a->data;
    float *dst = a->data;          /* same 4-byte slots, converted in place */
    for (size_t i = 0; i < count; i++) {
        int32_t v;
        memcpy(&v, &src[i], sizeof v);
        dst[i] = (float)v;
    }
    a->dtype = NNRT_F32;
}

/* Integer-valued floats become int32 labels; anything else is an error. */
static int f32_to_labels(NnrtArray *a, const char *path, char *err, size_t errlen)
{
    size_t count = nnrt_array_count(a);
    float *src = a->data;
    for (size_t i = 0; i < count; i++) {
        if (!(src[i] == floorf(src[i]) && fabsf(src[i]) < 2147483647.0f)) {
            set_error(err, errlen, "%s: sparse class labels must be integers, but sample %zu is %g",
                      path, i, (double)src[i]);
            return NNRT_EFORMAT;
        }
    }
    int32_t *dst = a->data;
    for (size_t i = 0; i < count; i++) {
        int32_t v = (int32_t)src[i];
        memcpy(&dst[i], &v, sizeof v);
    }
    a->dtype = NNRT_I32;
    return 0;
}

static int copy_array(NnrtArray *dst, const NnrtArray *src)
{
    size_t bytes = nnrt_array_count(src) * 4;
    *dst = *src;
    dst->data = malloc(bytes ? bytes : 1);
    if (!dst->data)
        return NNRT_ENOMEM;
    memcpy(dst->data, src->data, bytes);
    return 0;
}

static int check_input(const NnrtModel *model, int i, NnrtArray *a, const char *path,
                       size_t *n, char *err, size_t errlen)
{
    size_t per;
    int rc = split_samples(a, path, n, &per, err, errlen);
    if (rc < 0)
        return rc;
    if (per != (size_t)model->input_size[i]) {
        char have[128], want[128];
        format_shape(have, sizeof have, a->rank - 1, a->shape + 1);
        format_shape(want, sizeof want, model->input_rank[i], model->input_shape[i]);
        set_error(err, errlen, "%s: samples of shape %s have %zu values, but input %d of %s "
                  "takes %lld (shape %s)", path, have, per, i, model->name,
                  (long long)model->input_size[i], want);
        return NNRT_EMISMATCH;
    }
    if (a->dtype == NNRT_I32)
        i32_to_f32(a);
    return 0;
}

static int check_target(const NnrtModel *model, int j, NnrtArray *a, const char *path,
                        size_t *n, char *err, size_t errlen)
{
    size_t per;
    int rc = split_samples(a, path, n, &per, err, errlen);
    if (rc < 0)
        return rc;
    const char *output = model->output_names[j] ? model->output_names[j] : "output";
    if (model->target_sparse[j]) {
        /* one label per output row: per sample, or per time step of a sequence output */
        size_t labels = (size_t)model->target_size[j];
        if (per != labels) {
            set_error(err, errlen, "%s: output %s takes %zu sparse class label%s per sample, "
                      "but samples have %zu values", path, output, labels, labels == 1 ? "" : "s", per);
            return NNRT_EMISMATCH;
        }
        if (a->dtype == NNRT_F32 && (rc = f32_to_labels(a, path, err, errlen)) < 0)
            return rc;
        const int32_t *label = a->data;
        int64_t classes = model->output_size[j] / (int64_t)labels;
        for (size_t s = 0; s < *n * labels; s++) {
            if (label[s] < 0 || label[s] >= classes) {
                set_error(err, errlen, "%s: label %d of sample %zu is outside [0, %lld), "
                          "the classes of output %s", path, (int)label[s], s / labels,
                          (long long)classes, output);
                return NNRT_EMISMATCH;
            }
        }
        return 0;
    }
    if (per != (size_t)model->target_size[j]) {
        set_error(err, errlen, "%s: output %s takes %lld target values per sample, "
                  "but samples have %zu", path, output, (long long)model->target_size[j], per);
        return NNRT_EMISMATCH;
    }
    if (a->dtype == NNRT_I32)
        i32_to_f32(a);
    return 0;
}

/* nnrt_dataset_free is in data.c, beside nnrt_array_free. */

/* idx and npy: one file per input and per output (or one for all outputs). */
static int load_files(const NnrtModel *model, const NnrtDataSource *src, NnrtDataset *d,
                      char *err, size_t errlen)
{
    const char *xpath[NNRT_MAX_IO], *ypath[NNRT_MAX_IO];
    const char *first_path = NULL;
    char *xlist = NULL, *ylist = NULL;
    size_t first_n = 0, n;
    int num_x, num_y = 0, rc;

    if (!(xlist = strdup(src->x)) || (src->y && !(ylist = strdup(src->y)))) {
        rc = NNRT_ENOMEM;
        set_error(err, errlen, "out of memory");
        goto fail;
    }
    num_x = split_paths(xlist, xpath, NNRT_MAX_IO);
    if (ylist && *ylist)
        num_y = split_paths(ylist, ypath, NNRT_MAX_IO);
    if (num_x < 0 || num_y < 0) {
        rc = NNRT_EINVAL;
        set_error(err, errlen, "bad list of data files '%s' / '%s' (one per input or output, "
                  "separated by ';')", src->x, src->y ? src->y : "");
        goto fail;
    }
    if (num_x != model->num_inputs) {
        rc = NNRT_EMISMATCH;
        set_error(err, errlen, "%s takes %d input array(s), but the data gives '%s'",
                  model->name, model->num_inputs, src->x);
        goto fail;
    }
    if (num_y != 0 && num_y != 1 && num_y != model->num_outputs) {
        rc = NNRT_EMISMATCH;
        set_error(err, errlen, "%s has %d output(s), but the targets are '%s'",
                  model->name, model->num_outputs, src->y);
        goto fail;
    }
    if (src->format == NNRT_DATA_IDX && (num_x != 1 || num_y > 1)) {
        rc = NNRT_EMISMATCH;
        set_error(err, errlen, "idx data is one images file and one labels file");
        goto fail;
    }

    for (int i = 0; i < num_x; i++) {
        if ((rc = load_array(src->format, xpath[i], src->scale, &d->x[i], err, errlen)) < 0)
            goto fail;
        if ((rc = check_input(model, i, &d->x[i], xpath[i], &n, err, errlen)) < 0)
            goto fail;
        if (!first_path) {
            first_path = xpath[i];
            first_n = n;
        } else if (n != first_n) {
            rc = NNRT_EMISMATCH;
            set_error(err, errlen, "%s has %zu samples but %s has %zu", first_path, first_n,
                      xpath[i], n);
            goto fail;
        }
    }
    if (num_y > 0) {
        if ((rc = load_array(src->format, ypath[0], src->scale, &d->y[0], err, errlen)) < 0)
            goto fail;
        for (int j = 1; j < model->num_outputs; j++) {
            if (num_y == 1)
                rc = copy_array(&d->y[j], &d->y[0]);    /* one target file for every output */
            else
                rc = load_array(src->format, ypath[j], src->scale, &d->y[j], err, errlen);
            if (rc == NNRT_ENOMEM)
                set_error(err, errlen, "out of memory");
            if (rc < 0)
                goto fail;
        }
        for (int j = 0; j < model->num_outputs; j++) {
            const char *path = ypath[num_y == 1 ? 0 : j];
            if ((rc = check_target(model, j, &d->y[j], path, &n, err, errlen)) < 0)
                goto fail;
            if (n != first_n) {
                rc = NNRT_EMISMATCH;
                set_error(err, errlen, "%s has %zu samples but %s has %zu", first_path, first_n,
                          path, n);
                goto fail;
            }
        }
    }
    d->n = first_n;
    rc = 0;
fail:
    free(xlist);
    free(ylist);
    return rc;
}

/* '|'-separated column groups in a csv x or y list (0 for none). */
static int count_groups(const char *spec)
{
    int groups = spec && *spec ? 1 : 0;
    for (const char *p = spec; groups && *p; p++)
        groups += *p == '|';
    return groups;
}

/* "boston.csv x columns 'CRIM,ZN'": group g of spec, for messages. */
static void group_label(char *buf, size_t len, const char *path, const char *what, const char *spec, int g)
{
    const char *p = spec;
    for (int k = 0; k < g; k++)
        p = strchr(p, '|') + 1;
    const char *end = strchr(p, '|');
    int width = end ? (int)(end - p) : (int)strlen(p);
    snprintf(buf, len, "%s %s columns '%.*s'", path, what, width, p);
}

/* csv: one x column group per input, one y group per output (or one for
 * all); the parts in `keep` (bit k: part k) checked against the model. */
static int load_csv(const NnrtModel *model, const NnrtDataSource *src, const NnrtScaler *fitted,
                    NnrtScaler *scaler, unsigned keep, NnrtDataset parts[3], char *err, size_t errlen)
{
    char label[512];
    size_t n;
    int rc, num_x = count_groups(src->x), num_y = count_groups(src->y);

    if (num_x != model->num_inputs) {
        set_error(err, errlen, "%s: %s takes %d input(s), but the x columns '%s' are %d group(s) "
                  "(one per input, separated by '|')", src->path, model->name, model->num_inputs,
                  src->x, num_x);
        return NNRT_EMISMATCH;
    }
    if (num_y > 1 && num_y != model->num_outputs) {
        set_error(err, errlen, "%s: %s has %d output(s), but the y columns '%s' are %d groups "
                  "(one per output separated by '|', or one for all)", src->path, model->name,
                  model->num_outputs, src->y, num_y);
        return NNRT_EMISMATCH;
    }
    if ((rc = nnrt_csv_load(src, fitted, parts, scaler, err, errlen)) < 0)
        return rc;
    for (int k = 0; k < 3; k++) {
        NnrtDataset *d = &parts[k];
        if (!(keep >> k & 1)) {
            nnrt_dataset_free(d);
            continue;
        }
        for (int i = 0; d->n && i < num_x; i++) {
            group_label(label, sizeof label, src->path, "x", src->x, i);
            if ((rc = check_input(model, i, &d->x[i], label, &n, err, errlen)) < 0)
                return rc;
        }
        for (int j = 1; d->n && num_y == 1 && j < model->num_outputs; j++) {
            if ((rc = copy_array(&d->y[j], &d->y[0])) < 0) {
                set_error(err, errlen, "out of memory");
                return rc;
            }
        }
        for (int j = 0; d->n && num_y && j < model->num_outputs; j++) {
            group_label(label, sizeof label, src->path, "y", src->y, num_y == 1 ? 0 : j);
            if ((rc = check_target(model, j, &d->y[j], label, &n, err, errlen)) < 0)
                return rc;
        }
    }
    return 0;
}

static int has_data(const NnrtDataSource *src)
{
    if (src->format == NNRT_DATA_TIME_SERIES)
        return src->count > 0;
    return src->format != NNRT_DATA_NONE && src->x && *src->x &&
           (src->format != NNRT_DATA_CSV || (src->path && *src->path));
}

static int has_targets(const NnrtDataSource *src)
{
    return has_data(src) && (src->format == NNRT_DATA_TIME_SERIES || (src->y && *src->y));
}

static int is_split(const NnrtDataSource *src)
{
    return (src->format == NNRT_DATA_CSV || src->format == NNRT_DATA_TIME_SERIES) &&
           (src->split[0] != 0 || src->split[1] != 0 || src->split[2] != 0);
}

/* The generated series, checked against the model like any other data. */
static int load_time_series(const NnrtModel *model, const NnrtDataSource *src, unsigned keep, NnrtDataset parts[3],
                            char *err, size_t errlen)
{
    size_t n;
    int rc;
    if (model->num_inputs != 1) {
        set_error(err, errlen, "the time_series dataset feeds one input; %s has %d", model->name, model->num_inputs);
        return NNRT_EMISMATCH;
    }
    if ((rc = nnrt_time_series(src, parts, err, errlen)) < 0)
        return rc;
    for (int k = 0; k < 3; k++) {
        NnrtDataset *d = &parts[k];
        if (!(keep >> k & 1)) {
            nnrt_dataset_free(d);
            continue;
        }
        if (!d->n)
            continue;
        if ((rc = check_input(model, 0, &d->x[0], "time_series x", &n, err, errlen)) < 0)
            return rc;
        for (int j = 1; j < model->num_outputs; j++)
            if ((rc = copy_array(&d->y[j], &d->y[0])) < 0) {
                set_error(err, errlen, "out of memory");
                return rc;
            }
        for (int j = 0; j < model->num_outputs; j++)
            if ((rc = check_target(model, j, &d->y[j], "time_series y", &n, err, errlen)) < 0)
                return rc;
    }
    return 0;
}

/* The file a source is named by in messages. */
static const char *source_name(const NnrtDataSource *src)
{
    if (src->format == NNRT_DATA_TIME_SERIES)
        return "the time_series dataset";
    return src->format == NNRT_DATA_CSV ? src->path : src->x;
}

/* Load src into parts[0..2], checked against the model: a csv split gives
 * train, validation and test (those in `keep`), anything else parts[0].
 * fitted and scaler as nnrt_csv_load's. parts are freed on failure. */
static int load_source(const NnrtModel *model, const NnrtDataSource *src, const NnrtScaler *fitted,
                       NnrtScaler *scaler, unsigned keep, NnrtDataset parts[3], char *err, size_t errlen)
{
    int rc;
    memset(parts, 0, 3 * sizeof *parts);
    if (scaler)
        memset(scaler, 0, sizeof *scaler);
    if (model->num_inputs < 1 || model->num_inputs > NNRT_MAX_IO || model->num_outputs < 0 ||
        model->num_outputs > NNRT_MAX_IO) {
        set_error(err, errlen, "bad model description (%d inputs, %d outputs)", model->num_inputs,
                  model->num_outputs);
        return NNRT_EINVAL;
    }
    if (!has_data(src)) {
        set_error(err, errlen, src->format == NNRT_DATA_CSV ? "csv data needs a path and x columns"
                                                             : "no data files given");
        return NNRT_EINVAL;
    }
    if (src->format == NNRT_DATA_CSV)
        rc = load_csv(model, src, fitted, scaler, keep, parts, err, errlen);
    else if (src->format == NNRT_DATA_TIME_SERIES)
        rc = load_time_series(model, src, keep, parts, err, errlen);
    else
        rc = load_files(model, src, &parts[0], err, errlen);
    if (rc < 0) {
        for (int k = 0; k < 3; k++)
            nnrt_dataset_free(&parts[k]);
        if (scaler)
            nnrt_scaler_free(scaler);
    }
    return rc;
}

int nnrt_dataset_load(const NnrtModel *model, const NnrtDataSource *src, NnrtDataset *d,
                      char *err, size_t errlen)
{
    NnrtDataset parts[3];
    if (d)
        memset(d, 0, sizeof *d);
    if (!model || !src || !d) {
        set_error(err, errlen, "nnrt_dataset_load: NULL argument");
        return NNRT_EINVAL;
    }
    int rc = load_source(model, src, NULL, NULL, 1, parts, err, errlen);
    if (rc == 0)
        *d = parts[0];
    return rc;
}

/* Move samples [first, first + n) of d into *out and close the gap in d;
 * 0 < n < d->n. */
static int carve(const NnrtModel *model, NnrtDataset *d, size_t first, size_t n, NnrtDataset *out)
{
    memset(out, 0, sizeof *out);
    for (int k = 0; k < model->num_inputs + model->num_outputs; k++) {
        NnrtArray *a = k < model->num_inputs ? &d->x[k] : &d->y[k - model->num_inputs];
        NnrtArray *b = k < model->num_inputs ? &out->x[k] : &out->y[k - model->num_inputs];
        if (!a->data)
            continue;
        size_t row = nnrt_array_count(a) / d->n * 4, rest = d->n - first - n;
        *b = *a;
        b->shape[0] = (int64_t)n;
        if (!(b->data = malloc(n * row))) {
            nnrt_dataset_free(out);
            return NNRT_ENOMEM;
        }
        memcpy(b->data, (char *)a->data + first * row, n * row);
        memmove((char *)a->data + first * row, (char *)a->data + (first + n) * row, rest * row);
        a->shape[0] -= (int64_t)n;
        void *smaller = realloc(a->data, (d->n - n) * row);   /* first + n < d->n: not 0 */
        if (smaller)
            a->data = smaller;
    }
    out->n = n;
    d->n -= n;
    return 0;
}

void nnrt_fit_data_free(NnrtFitData *data)
{
    if (!data)
        return;
    nnrt_dataset_free(&data->train);
    nnrt_dataset_free(&data->validation);
    nnrt_dataset_free(&data->test);
}

/* Where the validation or test set comes from. */
typedef enum { FROM_NONE, FROM_SOURCE, FROM_FIRST, FROM_LAST, FROM_SPLIT } SetOrigin;

/* A validation or test set from its own source: part `part` of a csv split,
 * else the whole source. */
static int load_own_set(const NnrtModel *model, const NnrtDataSource *src, const NnrtScaler *fitted,
                        int part, const char *what, NnrtDataset *out, char *err, size_t errlen)
{
    static const char *const fractions[3] = {"training", "validation", "test"};
    NnrtDataset parts[3];
    if (!is_split(src))
        part = 0;
    int rc = load_source(model, src, fitted, NULL, 1u << part, parts, err, errlen);
    if (rc < 0)
        return rc;
    *out = parts[part];
    if (out->n == 0) {
        set_error(err, errlen, "%s: the %s data's split [%g, %g, %g] has no %s part", source_name(src),
                  what, src->split[0], src->split[1], src->split[2], fractions[part]);
        return NNRT_EMISMATCH;
    }
    return 0;
}

int nnrt_fit_data_load(const NnrtModel *model, const NnrtFitConfig *cfg, int want, NnrtFitData *data,
                       char *err, size_t errlen)
{
    NnrtDataset parts[3], carved = {0};
    NnrtScaler scaler = {0};
    int rc;

    if (data)
        memset(data, 0, sizeof *data);
    if (!model || !cfg || !data) {
        set_error(err, errlen, "nnrt_fit_data_load: NULL argument");
        return NNRT_EINVAL;
    }
    if (cfg->split_first < 0 || !(cfg->split_last >= 0 && cfg->split_last < 1)) {
        set_error(err, errlen, "fit: bad split_first (%ld) or split_last (%g)", cfg->split_first,
                  cfg->split_last);
        return NNRT_EINVAL;
    }
    const NnrtDataSource *train = &cfg->train;
    int train_split = is_split(train);
    SetOrigin val_from = cfg->validation.format != NNRT_DATA_NONE ? FROM_SOURCE
                       : cfg->split_first > 0 ? FROM_FIRST
                       : cfg->split_last > 0 ? FROM_LAST
                       : train_split && train->split[1] > 0 ? FROM_SPLIT : FROM_NONE;
    SetOrigin test_from = has_targets(&cfg->test) ? FROM_SOURCE
                        : train_split && train->split[2] > 0 ? FROM_SPLIT : FROM_NONE;
    int want_val = want & NNRT_WANT_VALIDATION, want_test = want & NNRT_WANT_TEST;
    int shared_scaler = train->format == NNRT_DATA_CSV && train->standardize;
    int val_scaled = want_val && val_from == FROM_SOURCE && cfg->validation.format == NNRT_DATA_CSV &&
                     cfg->validation.standardize && shared_scaler;
    int test_scaled = want_test && test_from == FROM_SOURCE && cfg->test.format == NNRT_DATA_CSV &&
                      cfg->test.standardize && shared_scaler;
    int need_train = (want & NNRT_WANT_TRAIN) || (want_val && val_from != FROM_SOURCE && val_from != FROM_NONE) ||
                     (want_test && test_from == FROM_SPLIT) || val_scaled || test_scaled;

    if (need_train) {
        if (!has_targets(train)) {
            rc = NNRT_EINVAL;
            set_error(err, errlen, "fit: no training data (x and y) in the fit config");
            goto fail;
        }
        unsigned keep = 1u | (val_from == FROM_SPLIT ? 2u : 0u) | (test_from == FROM_SPLIT ? 4u : 0u);
        if ((rc = load_source(model, train, NULL, &scaler, keep, parts, err, errlen)) < 0)
            goto fail;
        data->train = parts[0];
        data->validation = parts[1];
        data->test = parts[2];
        size_t n = data->train.n;
        if (val_from == FROM_FIRST) {
            if ((size_t)cfg->split_first >= n) {
                rc = NNRT_EMISMATCH;
                set_error(err, errlen, "validation split_first: %ld leaves no training samples "
                          "(%s has %zu)", cfg->split_first, source_name(train), n);
                goto fail;
            }
            rc = carve(model, &data->train, 0, (size_t)cfg->split_first, &carved);
        } else if (val_from == FROM_LAST) {
            size_t split_at = (size_t)floor((double)n * (1.0 - cfg->split_last));
            if (split_at == 0 || split_at == n) {
                rc = NNRT_EMISMATCH;
                set_error(err, errlen, "validation split_last: %g of %zu samples leaves %s empty",
                          cfg->split_last, n, split_at ? "the validation set" : "no training samples");
                goto fail;
            }
            rc = carve(model, &data->train, split_at, n - split_at, &carved);
        }
        if (rc < 0) {
            set_error(err, errlen, "out of memory");
            goto fail;
        }
        if (carved.n)
            data->validation = carved;
    }
    if (want_val && val_from == FROM_SOURCE) {
        if (!has_targets(&cfg->validation)) {
            rc = NNRT_EINVAL;
            set_error(err, errlen, "fit: validation data without targets (y)");
            goto fail;
        }
        if ((rc = load_own_set(model, &cfg->validation, val_scaled ? &scaler : NULL, 1, "validation",
                               &data->validation, err, errlen)) < 0)
            goto fail;
    }
    if (want_test && test_from == FROM_SOURCE &&
        (rc = load_own_set(model, &cfg->test, test_scaled ? &scaler : NULL, 2, "test", &data->test,
                           err, errlen)) < 0)
        goto fail;
    if (!(want & NNRT_WANT_TRAIN))
        nnrt_dataset_free(&data->train);
    if (!want_val)
        nnrt_dataset_free(&data->validation);
    if (!want_test)
        nnrt_dataset_free(&data->test);
    nnrt_scaler_free(&scaler);
    return 0;

fail:
    nnrt_fit_data_free(data);
    nnrt_scaler_free(&scaler);
    return rc;
}

/* ---- history ------------------------------------------------------------- */

static char *prefixed(const char *prefix, const char *name)
{
    size_t len = strlen(prefix) + strlen(name) + 1;
    char *s = malloc(len);
    if (s)
        snprintf(s, len, "%s%s", prefix, name);
    return s;
}

/* Names: loss, metrics, then val_ forms when there is validation. */
static int history_init(NnrtHistory *h, const NnrtModel *model, int with_validation, int epochs)
{
    int per = 1 + model->num_metrics;
    h->cols = with_validation ? 2 * per : per;
    for (int pass = 0; pass < (with_validation ? 2 : 1); pass++) {
        const char *prefix = pass ? "val_" : "";
        for (int k = 0; k < per; k++) {
            char fallback[32];
            const char *name = k == 0 ? "loss" : model->metric_names[k - 1];
            if (!name) {
                snprintf(fallback, sizeof fallback, "metric_%d", k - 1);
                name = fallback;
            }
            if (!(h->names[pass * per + k] = prefixed(prefix, name)))
                return NNRT_ENOMEM;
        }
    }
    if (epochs > 0 && !(h->values = calloc((size_t)epochs * (size_t)h->cols, sizeof *h->values)))
        return NNRT_ENOMEM;
    return 0;
}

/* ---- progress (Keras Progbar) ----------------------------------------------- */

typedef struct {
    char text[8192];
    size_t len;
} Line;

static void line_add(Line *l, const char *fmt, ...)
{
    if (l->len >= sizeof l->text - 1)
        return;
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(l->text + l->len, sizeof l->text - l->len, fmt, ap);
    va_end(ap);
    if (k > 0)
        l->len += (size_t)k < sizeof l->text - l->len ? (size_t)k : sizeof l->text - 1 - l->len;
}

/* Keras prints 4 decimals, or 4 significant digits in e-notation at or below 1e-3. */
static void line_value(Line *l, const char *name, double v)
{
    line_add(l, fabs(v) > 1e-3 ? " - %s: %.4f" : " - %s: %.4e", name, v);
}

/* "  32/1719 [>.............................]" */
static void line_bar(Line *l, size_t current, size_t target)
{
    int digits = 1;
    for (size_t t = target; t >= 10; t /= 10)
        digits++;
    line_add(l, "%*zu/%zu [", digits, current, target);
    size_t filled = (size_t)((double)BAR_WIDTH * (double)current / (double)target);
    for (size_t i = 0; i + 1 < filled; i++)
        line_add(l, "=");
    if (filled > 0)
        line_add(l, current < target ? ">" : "=");
    for (size_t i = filled; i < BAR_WIDTH; i++)
        line_add(l, ".");
    line_add(l, "]");
}

static void line_step_time(Line *l, double per_step)
{
    if (per_step >= 1 || per_step == 0)
        line_add(l, " %.0fs/step", per_step);
    else if (per_step >= 1e-3)
        line_add(l, " %.0fms/step", per_step * 1e3);
    else
        line_add(l, " %.0fus/step", per_step * 1e6);
}

static void line_eta(Line *l, double eta)
{
    long s = (long)eta;
    if (eta > 3600)
        line_add(l, " - ETA: %ld:%02ld:%02ld", s / 3600, s % 3600 / 60, s % 60);
    else if (eta > 60)
        line_add(l, " - ETA: %ld:%02ld", s / 60, s % 60);
    else
        line_add(l, " - ETA: %lds", s);
}

/* Draw l on the terminal line, padding over a longer previous line. */
static void redraw(const Line *l, size_t *prev_len, int final)
{
    size_t pad = *prev_len > l->len ? *prev_len - l->len : 0;
    printf("\r%s%*s%s", l->text, (int)pad, "", final ? "\n" : "");
    fflush(stdout);
    *prev_len = final ? 0 : l->len;
}

/* ---- the loop ------------------------------------------------------------ */

/* Pointers to every input and target array of d. */
static void dataset_pointers(const NnrtModel *model, const NnrtDataset *d, const float **in,
                             const void **tg)
{
    for (int i = 0; i < model->num_inputs; i++)
        in[i] = d->x[i].data;
    for (int j = 0; j < model->num_outputs; j++)
        tg[j] = d->y[j].data;
}

int nnrt_fit(const NnrtModel *model, void *m, const NnrtFitConfig *cfg, NnrtHistory *history,
             char *err, size_t errlen)
{
    NnrtFitData data = {0};
    size_t *order = NULL;
    void *xbuf[NNRT_MAX_IO] = {0}, *ybuf[NNRT_MAX_IO] = {0};
    struct sigaction previous;
    int handler_installed = 0, rc = 0;

    if (history)
        memset(history, 0, sizeof *history);
    if (!model || !m || !cfg || !history || !model->train_step || !model->evaluate) {
        set_error(err, errlen, "nnrt_fit: NULL argument or a model without training code");
        return NNRT_EINVAL;
    }
    if (model->num_inputs < 1 || model->num_inputs > NNRT_MAX_IO || model->num_outputs < 1 ||
        model->num_outputs > NNRT_MAX_IO || model->num_metrics < 0 || model->num_metrics > 32) {
        set_error(err, errlen, "nnrt_fit: bad model description");
        return NNRT_EINVAL;
    }
    size_t batch = cfg->batch_size ? cfg->batch_size : DEFAULT_BATCH;
    if (cfg->epochs < 0 || cfg->split_first < 0 || !(cfg->split_last >= 0 && cfg->split_last < 1)) {
        set_error(err, errlen, "fit: bad epochs (%d), split_first (%ld) or split_last (%g)",
                  cfg->epochs, cfg->split_first, cfg->split_last);
        return NNRT_EINVAL;
    }
    if (!has_targets(&cfg->train)) {
        set_error(err, errlen, "fit: no training data (x and y) in the fit config");
        return NNRT_EINVAL;
    }

    if ((rc = nnrt_fit_data_load(model, cfg, NNRT_WANT_TRAIN | NNRT_WANT_VALIDATION, &data, err, errlen)) < 0)
        return rc;
    const NnrtDataset *train = &data.train;
    const NnrtDataset *val = data.validation.n ? &data.validation : NULL;
    const size_t train_n = train->n;

    if (batch > train_n)
        batch = train_n;
    rc = history_init(history, model, val != NULL, cfg->epochs);
    if (rc == 0 && !(order = malloc(train_n * sizeof *order)))
        rc = NNRT_ENOMEM;
    for (int i = 0; rc == 0 && i < model->num_inputs; i++)
        if (!(xbuf[i] = malloc(batch * 4 * (size_t)model->input_size[i])))
            rc = NNRT_ENOMEM;
    for (int j = 0; rc == 0 && j < model->num_outputs; j++)
        if (!(ybuf[j] = malloc(batch * 4 * (size_t)model->target_size[j])))
            rc = NNRT_ENOMEM;
    if (rc < 0) {
        set_error(err, errlen, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < train_n; i++)
        order[i] = i;

    fit_interrupted = 0;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_handler = on_sigint;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESETHAND;
    handler_installed = sigaction(SIGINT, &action, &previous) == 0;

    NnrtRng rng;
    nnrt_rng_seed(&rng, cfg->seed ^ 0x53485546464c45u);  /* "SHUFFLE": apart from the init stream */
    const int tty = isatty(fileno(stdout));
    const int per = 1 + model->num_metrics;
    const size_t steps = (train_n + batch - 1) / batch;
    const float *in[NNRT_MAX_IO];
    const void *tg[NNRT_MAX_IO];

    for (int epoch = 0; epoch < cfg->epochs && !fit_interrupted; epoch++) {
        double sums[33] = {0}, seen = 0, last_draw = -1;
        size_t prev_len = 0, step;
        Line line;
        printf("Epoch %d/%d\n", epoch + 1, cfg->epochs);
        fflush(stdout);
        if (cfg->shuffle)
            nnrt_shuffle(order, train_n, &rng);
        double start = now_seconds();

        for (step = 0; step < steps && !fit_interrupted; step++) {
            size_t first = step * batch, n = train_n - first < batch ? train_n - first : batch;
            for (int i = 0; i < model->num_inputs; i++) {
                size_t row = 4 * (size_t)model->input_size[i];
                for (size_t k = 0; k < n; k++)
                    memcpy((char *)xbuf[i] + k * row,
                           (const char *)train->x[i].data + order[first + k] * row, row);
                in[i] = xbuf[i];
            }
            for (int j = 0; j < model->num_outputs; j++) {
                size_t row = 4 * (size_t)model->target_size[j];
                for (size_t k = 0; k < n; k++)
                    memcpy((char *)ybuf[j] + k * row,
                           (const char *)train->y[j].data + order[first + k] * row, row);
                tg[j] = ybuf[j];
            }
            float loss = 0, metrics[32] = {0};
            if (model->train_step(m, n, in, tg, &loss, metrics) < 0) {
                if (tty && prev_len)
                    printf("\n");
                rc = NNRT_EINVAL;
                set_error(err, errlen, "training step %zu/%zu of epoch %d failed: %s", step + 1,
                          steps, epoch + 1, model->last_error ? model->last_error(m) : "(no message)");
                goto fail;
            }
            sums[0] += (double)loss * (double)n;
            for (int k = 1; k < per; k++)
                sums[k] += (double)metrics[k - 1] * (double)n;
            seen += (double)n;

            double now = now_seconds();
            if (tty && step + 1 < steps && (last_draw < 0 || now - last_draw >= REDRAW_INTERVAL)) {
                line.len = 0;
                line_bar(&line, step + 1, steps);
                line_eta(&line, (now - start) / (double)(step + 1) * (double)(steps - step - 1));
                for (int k = 0; k < per; k++)
                    line_value(&line, history->names[k], sums[k] / seen);
                redraw(&line, &prev_len, 0);
                last_draw = now;
            }
        }
        if (step < steps) {
            if (tty && prev_len)
                printf("\n");
            fflush(stdout);
            fprintf(stderr, "interrupted in epoch %d/%d after step %zu/%zu; the weights are kept\n",
                    epoch + 1, cfg->epochs, step, steps);
            break;
        }

        double *row = history->values + (size_t)epoch * (size_t)history->cols;
        for (int k = 0; k < per; k++)
            row[k] = sums[k] / seen;
        if (val) {
            float loss = 0, metrics[32] = {0};
            dataset_pointers(model, val, in, tg);
            if (model->evaluate(m, val->n, in, tg, &loss, metrics) < 0) {
                if (tty && prev_len)
                    printf("\n");
                rc = NNRT_EINVAL;
                set_error(err, errlen, "validation after epoch %d failed: %s", epoch + 1,
                          model->last_error ? model->last_error(m) : "(no message)");
                goto fail;
            }
            row[per] = loss;
            for (int k = 1; k < per; k++)
                row[per + k] = metrics[k - 1];
        }
        history->epochs = epoch + 1;

        double elapsed = now_seconds() - start;
        line.len = 0;
        line_bar(&line, steps, steps);
        line_add(&line, " - %.0fs", elapsed);
        line_step_time(&line, elapsed / (double)steps);
        for (int k = 0; k < history->cols; k++)
            line_value(&line, history->names[k], row[k]);
        if (tty)
            redraw(&line, &prev_len, 1);
        else
            printf("%s\n", line.text);
        fflush(stdout);
        if (fit_interrupted)
            fprintf(stderr, "interrupted after epoch %d/%d; the weights are kept\n", epoch + 1,
                    cfg->epochs);
    }
    rc = 0;

fail:
    if (handler_installed)
        sigaction(SIGINT, &previous, NULL);
    for (int i = 0; i < NNRT_MAX_IO; i++) {
        free(xbuf[i]);
        free(ybuf[i]);
    }
    free(order);
    nnrt_fit_data_free(&data);
    return rc;
}
