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
 * standardizes; this file checks the result against the model); hdf5
 * sources name datasets of one file the same way. nnrt_fit does not read
 * cfg->init_weights and saves nothing but what the callbacks ask for:
 * loading and the final save are the driver's (main.c). *history is always
 * initialized and must be freed, even after an error, when it holds the
 * epochs completed before it.
 *
 * Callbacks (cfg->callbacks) follow Keras: each is checked before the first
 * step (a monitor the history lacks, a bad filepath template, a model
 * without weights or learning rate access are errors then, not warnings
 * after hours of training); at each epoch end, after validation and the
 * progress line, ModelCheckpoint, EarlyStopping, ReduceLROnPlateau and
 * CSVLogger run in that order (the YAML order is not kept); TerminateOnNaN
 * checks the running loss after every step and ends the epoch there, which
 * is then recorded and seen by the callbacks like any other. Keras's
 * stop_training flag is Callbacks.stop, read between epochs. At the end (by
 * epochs, EarlyStopping, TerminateOnNaN or Ctrl-C) EarlyStopping's best
 * weights are put back, as Keras 3 does. Files the callbacks write are
 * relative to cfg->out_dir; checkpoints go through model->save, which is
 * atomic, so a stop at any point leaves the last complete checkpoint. With
 * ReduceLROnPlateau the history gains the column "lr" (the rate each epoch
 * ran with), as Keras 2's does.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

/* One array of an idx, npy or hdf5 source: `name` is a file, or for hdf5 a
 * dataset in src->path. */
static int load_array(const NnrtDataSource *src, const char *name, NnrtArray *a, char *err, size_t errlen)
{
    int rc;
    if (src->format == NNRT_DATA_IDX)
        rc = nnrt_idx_load(name, src->scale != 0 ? (float)src->scale : 1.0f, a, err, errlen);
    else if (src->format == NNRT_DATA_HDF5)
        rc = nnrt_hdf5_load(src->path, name, a, err, errlen);
    else
        rc = nnrt_npy_load(name, a, err, errlen);
    if (rc < 0 && err && src->format != NNRT_DATA_HDF5 && !strstr(err, name)) {
        /* The loader's message may not name the file; make sure it does. */
        char inner[512];
        snprintf(inner, sizeof inner, "%s", err);
        set_error(err, errlen, "%s: %s", name, inner);
    }
    return rc;
}

/* How messages name an array: its file, or "file.h5:dataset". */
static const char *array_label(const NnrtDataSource *src, const char *name, char *buf, size_t len)
{
    if (src->format != NNRT_DATA_HDF5)
        return name;
    snprintf(buf, len, "%s:%s", src->path, name);
    return buf;
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

int nnrt_model_at_timesteps(const NnrtModel *model, size_t T, NnrtModel *out)
{
    if (!model || !out)
        return NNRT_EINVAL;
    *out = *model;
    if (!model->max_timesteps)
        return 0;
    if (T < 1 || T > model->max_timesteps)
        return NNRT_EINVAL;
    const int64_t max = (int64_t)model->max_timesteps, t = (int64_t)T;
    out->timesteps = T;
    for (int i = 0; i < model->num_inputs; i++)
        if (model->input_vtime[i]) {
            out->input_size[i] = model->input_size[i] / max * t;
            out->input_shape[i][0] = t;
        }
    for (int j = 0; j < model->num_outputs; j++)
        if (model->output_vtime[j]) {
            out->output_size[j] = model->output_size[j] / max * t;
            out->target_size[j] = model->target_size[j] / max * t;
            if (model->output_rank[j] > 0)
                out->output_shape[j][0] = t;
        }
    return 0;
}

void *nnrt_model_new(const NnrtModel *model, uint64_t seed)
{
    void *m = model->new_model(seed);
    if (m && model->max_timesteps && model->set_timesteps &&
        model->set_timesteps(m, model->timesteps ? model->timesteps : model->max_timesteps) < 0) {
        model->free_model(m);
        return NULL;
    }
    return m;
}

/* nnrt_dataset_free is in data.c, beside nnrt_array_free. */

/* idx, npy and hdf5: one file (dataset) per input and per output (or one
 * for all outputs). */
static const char *source_name(const NnrtDataSource *src);

/* The label filters of a source (the notes' transfer-learning split):
 * keep the samples whose label is in src->classes (numbered 0.. in that
 * order), and with src->binary make y a float: 1 for binary_class, else 0.
 * Applied to the inputs and the one labels array before any check. */
static int apply_label_filter(const NnrtDataSource *src, NnrtArray *x, int num_x, NnrtArray *y, char *err,
                              size_t errlen)
{
    if (!src->num_classes && !src->binary)
        return 0;
    if (y->rank != 1) {
        set_error(err, errlen, "%s: class filters need one integer label per sample", source_name(src));
        return NNRT_EMISMATCH;
    }
    size_t n = (size_t)y->shape[0], kept = 0;
    for (size_t s = 0; s < n; s++) {
        int label = y->dtype == NNRT_I32 ? ((int32_t *)y->data)[s] : (int)((float *)y->data)[s];
        int k = -1;
        for (int c = 0; c < src->num_classes && k < 0; c++)
            if (src->classes[c] == label)
                k = c;
        if (src->num_classes && k < 0)
            continue;
        for (int i = 0; i < num_x; i++) {
            size_t row = nnrt_array_count(&x[i]) / (n ? n : 1) * sizeof(float);
            memmove((char *)x[i].data + kept * row, (char *)x[i].data + s * row, row);
        }
        if (src->binary)
            ((float *)y->data)[kept] = label == src->binary_class ? 1.0f : 0.0f;  /* 4 bytes either way */
        else
            ((int32_t *)y->data)[kept] = src->num_classes ? k : label;
        kept++;
    }
    if (kept == 0) {
        set_error(err, errlen, "%s: no sample has one of the selected classes", source_name(src));
        return NNRT_EMISMATCH;
    }
    for (int i = 0; i < num_x; i++)
        x[i].shape[0] = (int64_t)kept;
    y->shape[0] = (int64_t)kept;
    if (src->binary) {
        y->dtype = NNRT_F32;
        y->rank = 2;
        y->shape[1] = 1;
    }
    return 0;
}

static int load_files(const NnrtModel *model, const NnrtDataSource *src, NnrtDataset *d,
                      char *err, size_t errlen)
{
    const char *xpath[NNRT_MAX_IO], *ypath[NNRT_MAX_IO];
    char first_label[1024] = "", label[1024];
    char *xlist = NULL, *ylist = NULL;
    size_t first_n = 0, n;
    int num_x, num_y = 0, rc;
    const char *what = src->format == NNRT_DATA_HDF5 ? "datasets" : "data files";

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
        set_error(err, errlen, "bad list of %s '%s' / '%s' (one per input or output, "
                  "separated by ';')", what, src->x, src->y ? src->y : "");
        goto fail;
    }
    if (num_x != model->num_inputs) {
        rc = NNRT_EMISMATCH;
        set_error(err, errlen, "%s takes %d input array(s), but the data gives '%s'%s%s",
                  model->name, model->num_inputs, src->x, src->format == NNRT_DATA_HDF5 ? " in " : "",
                  src->format == NNRT_DATA_HDF5 ? src->path : "");
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
        const char *at = array_label(src, xpath[i], label, sizeof label);
        if ((rc = load_array(src, xpath[i], &d->x[i], err, errlen)) < 0)
            goto fail;
        if ((rc = check_input(model, i, &d->x[i], at, &n, err, errlen)) < 0)
            goto fail;
        if (!first_label[0]) {
            snprintf(first_label, sizeof first_label, "%s", at);
            first_n = n;
        } else if (n != first_n) {
            rc = NNRT_EMISMATCH;
            set_error(err, errlen, "%s has %zu samples but %s has %zu", first_label, first_n, at, n);
            goto fail;
        }
    }
    if (num_y > 0) {
        if ((rc = load_array(src, ypath[0], &d->y[0], err, errlen)) < 0)
            goto fail;
        if ((rc = apply_label_filter(src, d->x, num_x, &d->y[0], err, errlen)) < 0)
            goto fail;
        if (src->num_classes)
            first_n = (size_t)d->x[0].shape[0];
        for (int j = 1; j < model->num_outputs; j++) {
            if (num_y == 1)
                rc = copy_array(&d->y[j], &d->y[0]);    /* one target array for every output */
            else
                rc = load_array(src, ypath[j], &d->y[j], err, errlen);
            if (rc == NNRT_ENOMEM)
                set_error(err, errlen, "out of memory");
            if (rc < 0)
                goto fail;
        }
        for (int j = 0; j < model->num_outputs; j++) {
            const char *at = array_label(src, ypath[num_y == 1 ? 0 : j], label, sizeof label);
            if ((rc = check_target(model, j, &d->y[j], at, &n, err, errlen)) < 0)
                goto fail;
            if (n != first_n) {
                rc = NNRT_EMISMATCH;
                set_error(err, errlen, "%s has %zu samples but %s has %zu", first_label, first_n, at, n);
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
           ((src->format != NNRT_DATA_CSV && src->format != NNRT_DATA_HDF5) || (src->path && *src->path));
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
    return src->format == NNRT_DATA_CSV || src->format == NNRT_DATA_HDF5 ? src->path : src->x;
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
        set_error(err, errlen, src->format == NNRT_DATA_CSV    ? "csv data needs a path and x columns"
                               : src->format == NNRT_DATA_HDF5 ? "hdf5 data needs a path and an x dataset"
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

/* Names: loss, metrics, then val_ forms when there is validation, then
 * "lr" when asked (Keras 2's ReduceLROnPlateau logs it) and there is room. */
static int history_init(NnrtHistory *h, const NnrtModel *model, int with_validation, int with_lr, int epochs)
{
    int per = 1 + model->num_metrics;
    h->cols = with_validation ? 2 * per : per;
    if (with_lr && h->cols < (int)(sizeof h->names / sizeof h->names[0])) {
        if (!(h->names[h->cols] = prefixed("", "lr")))
            return NNRT_ENOMEM;
        h->cols++;
    }
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

/* ---- callbacks (Keras semantics) ------------------------------------------- */

/* Python's repr of a float (as history.c writes history.csv): the shortest
 * %.Ng from 15 digits on that reads back exactly, ".0" on integral values. */
static void python_float(char *buf, size_t len, double v)
{
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(buf, len, "%.*g", digits, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    if (isfinite(v) && !strpbrk(buf, ".e"))
        strncat(buf, ".0", len - strlen(buf) - 1);
}

/* Keras's "auto" mode: max for accuracy-like names, min for the rest. */
static int monitor_is_max(const char *name, int mode)
{
    size_t n = strlen(name);
    if (mode != 0)
        return mode == 2;
    return strstr(name, "acc") || !strncmp(name, "fmeasure", 8) || (n >= 3 && !strcmp(name + n - 3, "auc"));
}

/* Column of `name` in the history, or -1. */
static int history_column(const NnrtHistory *h, const char *name)
{
    for (int c = 0; c < h->cols; c++)
        if (h->names[c] && !strcmp(h->names[c], name))
            return c;
    return -1;
}

/* "loss, accuracy, val_loss": the history's names, for messages. */
static void history_names(char *buf, size_t len, const NnrtHistory *h)
{
    size_t at = 0;
    buf[0] = '\0';
    for (int c = 0; c < h->cols && at < len; c++)
        at += (size_t)snprintf(buf + at, len - at, "%s%s", c ? ", " : "", h->names[c]);
}

/* One replacement field of a Python format string: value v (an int when
 * is_int) with format spec `spec` of spec_len bytes: [sign][0][width]
 * [.precision][type], type one of d f F e E g G or none (ints as %d, floats
 * as Python's str). Returns 0, or -1 for a spec Python would refuse or this
 * does not support. */
static int format_field(char *buf, size_t len, const char *spec, size_t spec_len, int is_int, double v)
{
    char fmt[32], flags[4] = "";
    size_t k = 0, nf = 0;
    int width = -1, precision = -1;
    char type = 0;
    if (k < spec_len && (spec[k] == '+' || spec[k] == ' '))
        flags[nf++] = spec[k++];
    else if (k < spec_len && spec[k] == '-')  /* Python's default: a sign for negatives only */
        k++;
    if (k < spec_len && spec[k] == '0')
        flags[nf++] = '0', k++;
    flags[nf] = '\0';
    if (k < spec_len && spec[k] >= '1' && spec[k] <= '9')
        for (width = 0; k < spec_len && spec[k] >= '0' && spec[k] <= '9' && width < 1000; k++)
            width = 10 * width + (spec[k] - '0');
    if (k < spec_len && spec[k] == '.') {
        k++;
        if (k == spec_len || spec[k] < '0' || spec[k] > '9')
            return -1;
        for (precision = 0; k < spec_len && spec[k] >= '0' && spec[k] <= '9' && precision < 100; k++)
            precision = 10 * precision + (spec[k] - '0');
    }
    if (k < spec_len && strchr("dfFeEgG", spec[k]))
        type = spec[k++];
    if (k != spec_len || (type == 'd' && (!is_int || precision >= 0)))
        return -1;
    if (!type && is_int && precision >= 0)   /* Python: "Precision not allowed in integer format specifier" */
        return -1;
    if (!type && !is_int && precision < 0) {
        char repr[64];
        python_float(repr, sizeof repr, v);
        snprintf(buf, len, "%*s", width > 0 ? width : 0, repr);
        return 0;
    }
    if (!type)
        type = is_int ? 'd' : 'g';
    int at = snprintf(fmt, sizeof fmt, "%%%s", flags);
    if (width > 0)
        at += snprintf(fmt + at, sizeof fmt - (size_t)at, "%d", width);
    if (precision >= 0)
        at += snprintf(fmt + at, sizeof fmt - (size_t)at, ".%d", precision);
    snprintf(fmt + at, sizeof fmt - (size_t)at, "%s%c", type == 'd' ? "ll" : "", type);
    if (type == 'd')
        snprintf(buf, len, fmt, (long long)v);
    else
        snprintf(buf, len, fmt, v);
    return 0;
}

/* ModelCheckpoint's filepath.format(epoch=epoch + 1, **logs): "{epoch:02d}",
 * "{val_loss:.2f}", any history name, "{{" and "}}" for braces. row NULL
 * only checks the template. Returns 0, or -1 with the reason in why. */
static int format_filepath(char *out, size_t len, const char *tmpl, int epoch1, const NnrtHistory *h,
                           const double *row, char *why, size_t whylen)
{
    size_t at = 0;
    for (const char *p = tmpl; *p; p++) {
        char piece[256];
        if ((*p == '{' && p[1] == '{') || (*p == '}' && p[1] == '}')) {
            snprintf(piece, sizeof piece, "%c", *p++);
        } else if (*p == '}') {
            snprintf(why, whylen, "a single '}' (write '}}' for a brace)");
            return -1;
        } else if (*p == '{') {
            const char *end = strchr(p, '}'), *colon = memchr(p, ':', end ? (size_t)(end - p) : 0);
            if (!end) {
                snprintf(why, whylen, "a '{' without its '}'");
                return -1;
            }
            const char *name_end = colon ? colon : end;
            char name[128];
            snprintf(name, sizeof name, "%.*s", (int)(name_end - p - 1), p + 1);
            int col = history_column(h, name), is_epoch = !strcmp(name, "epoch");
            if (!is_epoch && col < 0) {
                char names[512];
                history_names(names, sizeof names, h);
                if (snprintf(why, whylen, "'{%s}' names no value of this fit (it has epoch, %s)", name, names) < 0)
                    why[0] = '\0';  /* a long list is cut short: still the message */
                return -1;
            }
            double v = is_epoch ? epoch1 : row ? row[col] : 0;
            const char *spec = colon ? colon + 1 : end;
            if (format_field(piece, sizeof piece, spec, (size_t)(end - spec), is_epoch, v) < 0) {
                snprintf(why, whylen, "the format '%.*s' of {%s} is not supported (use forms like {epoch:02d} or "
                         "{val_loss:.2f})", (int)(end - p + 1), p, name);
                return -1;
            }
            p = end;
        } else {
            snprintf(piece, sizeof piece, "%c", *p);
        }
        size_t n = strlen(piece);
        if (at + n >= len) {
            snprintf(why, whylen, "the path is too long");
            return -1;
        }
        memcpy(out + at, piece, n + 1);
        at += n;
    }
    if (at == 0) {
        snprintf(why, whylen, "the path is empty");
        return -1;
    }
    out[at] = '\0';
    return 0;
}

/* file relative to the output folder (absolute paths stay as they are);
 * -1 when the path does not fit in len. */
static int output_path(char *buf, size_t len, const char *out_dir, const char *file)
{
    int n = file[0] == '/' || !out_dir || !out_dir[0] ? snprintf(buf, len, "%s", file)
                                                       : snprintf(buf, len, "%s/%s", out_dir, file);
    return n >= 0 && (size_t)n < len ? 0 : -1;
}

/* mkdir -p of the folder that holds path. */
static int make_parent_dirs(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir)
        return 0;
    *slash = '\0';
    for (char *p = dir + 1;; p++) {
        if (*p == '/' || *p == '\0') {
            char c = *p;
            *p = '\0';
            if (mkdir(dir, 0777) != 0 && errno != EEXIST)
                return -1;
            *p = c;
            if (!c)
                return 0;
        }
    }
}

/* Phases (the notes' freeze-then-unfreeze): at the first epoch of each,
 * every compiled-trainable layer trains except the phase's frozen ones,
 * and (after the first) the optimizer starts afresh, as a Keras recompile,
 * with the phase's learning rate when it gives one. */
static int begin_phase(const NnrtModel *model, void *m, const NnrtFitConfig *cfg, int epoch, char *err,
                       size_t errlen)
{
    int start = 0, p = 0;
    while (p < cfg->num_phases && start + cfg->phases[p].epochs <= epoch)
        start += cfg->phases[p++].epochs;
    if (!cfg->phases || p >= cfg->num_phases || start != epoch)
        return 0;
    const NnrtPhase *ph = &cfg->phases[p];
    if (!model->set_trainable || !model->reset_optimizer || !model->weights) {
        set_error(err, errlen, "fit phases need a model with set_trainable and reset_optimizer");
        return NNRT_EINVAL;
    }
    for (int t = 0; t < model->num_weights; t++)
        if (model->weights[t].trainable)
            model->set_trainable(m, model->weights[t].layer, 1);
    for (int k = 0; k < ph->num_freeze; k++)
        if (model->set_trainable(m, ph->freeze[k], 0) < 0) {
            set_error(err, errlen, "fit phase %d: %s", p + 1, model->last_error(m));
            return NNRT_EINVAL;
        }
    if (p > 0)
        model->reset_optimizer(m);
    if (ph->learning_rate > 0 && model->set_learning_rate)
        model->set_learning_rate(m, (float)ph->learning_rate);
    printf("Phase %d/%d: %d epoch%s", p + 1, cfg->num_phases, ph->epochs, ph->epochs == 1 ? "" : "s");
    if (ph->num_freeze)
        printf(", %d layer%s frozen", ph->num_freeze, ph->num_freeze == 1 ? "" : "s");
    if (p > 0)
        printf(", a new optimizer state");
    printf("\n");
    return 0;
}

/* What the callbacks remember between epochs (Keras's instance state). */
typedef struct {
    const NnrtCallbacks *cb;
    const char *out_dir;
    int lr_col;                  /* history column "lr" (ReduceLROnPlateau), -1: none */
    int stop;                    /* Keras's model.stop_training */
    /* ModelCheckpoint */
    int ckpt_col, ckpt_max;
    double ckpt_best;
    /* EarlyStopping */
    int es_col, es_max, es_wait, es_stopped_epoch, es_best_epoch;
    double es_best;
    float *es_weights;           /* num_params floats: the best epoch's weights */
    int es_has_weights;
    /* ReduceLROnPlateau */
    int lr_monitor_col, lr_max, lr_wait, lr_cooldown;
    double lr_best;
    /* CSVLogger */
    FILE *csv;
    char csv_path[4096];
    int csv_header;              /* write the header before the first row */
    int csv_order[66];           /* history columns sorted by name */
} Callbacks;

static void callbacks_free(Callbacks *s)
{
    if (s->csv)
        fclose(s->csv);
    s->csv = NULL;
    free(s->es_weights);
    s->es_weights = NULL;
}

/* Monitor column of a callback; an error names what the fit records. */
static int find_monitor(const NnrtHistory *h, const char *callback, const char *monitor, int mode, int *col,
                        int *is_max, char *err, size_t errlen)
{
    char names[512];
    if (mode < 0 || mode > 2) {
        set_error(err, errlen, "%s: mode %d is not auto (0), min (1) or max (2)", callback, mode);
        return NNRT_EINVAL;
    }
    if ((*col = history_column(h, monitor)) < 0) {
        history_names(names, sizeof names, h);
        set_error(err, errlen, "%s monitors '%s', which this fit does not record (it records %s)%s", callback,
                  monitor, names, !strncmp(monitor, "val_", 4) ? "; give it validation data" : "");
        return NNRT_EMISMATCH;
    }
    *is_max = monitor_is_max(monitor, mode);
    return 0;
}

/* on_train_begin: check every callback against the model and the history
 * (before any training), open the CSV log. */
static int callbacks_begin(Callbacks *s, const NnrtModel *model, const NnrtFitConfig *cfg, const NnrtHistory *h,
                           char *err, size_t errlen)
{
    const NnrtCallbacks *cb = &cfg->callbacks;
    char why[512], path[4096];
    int rc;
    memset(s, 0, sizeof *s);
    s->cb = cb;
    s->out_dir = cfg->out_dir;
    s->lr_col = cb->reduce_lr.enabled && h->cols > 0 && !strcmp(h->names[h->cols - 1], "lr") ? h->cols - 1 : -1;
    if (cb->checkpoint.enabled) {
        const NnrtCheckpoint *c = &cb->checkpoint;
        if (!c->filepath || format_filepath(path, sizeof path, c->filepath, 1, h, NULL, why, sizeof why) < 0) {
            set_error(err, errlen, "ModelCheckpoint filepath '%s': %s", c->filepath ? c->filepath : "",
                      c->filepath ? why : "missing");
            return NNRT_EINVAL;
        }
        if (c->save_best_only && (rc = find_monitor(h, "ModelCheckpoint", c->monitor ? c->monitor : "val_loss",
                                                    c->mode, &s->ckpt_col, &s->ckpt_max, err, errlen)) < 0)
            return rc;
        s->ckpt_best = s->ckpt_max ? -INFINITY : INFINITY;
    }
    if (cb->early_stopping.enabled) {
        const NnrtEarlyStopping *e = &cb->early_stopping;
        if ((rc = find_monitor(h, "EarlyStopping", e->monitor ? e->monitor : "val_loss", e->mode, &s->es_col,
                               &s->es_max, err, errlen)) < 0)
            return rc;
        if (e->patience < 0) {
            set_error(err, errlen, "EarlyStopping: patience %d is negative", e->patience);
            return NNRT_EINVAL;
        }
        s->es_best = s->es_max ? -INFINITY : INFINITY;
        if (e->restore_best_weights) {
            if (!model->params || model->num_params == 0) {
                set_error(err, errlen, "EarlyStopping restore_best_weights: %s does not expose its weights",
                          model->name);
                return NNRT_EINVAL;
            }
            if (!(s->es_weights = malloc(model->num_params * sizeof *s->es_weights))) {
                set_error(err, errlen, "out of memory");
                return NNRT_ENOMEM;
            }
        }
    }
    if (cb->reduce_lr.enabled) {
        const NnrtReduceLr *r = &cb->reduce_lr;
        if ((rc = find_monitor(h, "ReduceLROnPlateau", r->monitor ? r->monitor : "val_loss", r->mode,
                               &s->lr_monitor_col, &s->lr_max, err, errlen)) < 0)
            return rc;
        if (!(r->factor > 0 && r->factor < 1) || r->patience < 0 || r->cooldown < 0) {
            set_error(err, errlen, "ReduceLROnPlateau: factor %g must lie in (0, 1), patience %d and cooldown %d "
                      "not be negative", r->factor, r->patience, r->cooldown);
            return NNRT_EINVAL;
        }
        if (!model->get_learning_rate || !model->set_learning_rate) {
            set_error(err, errlen, "ReduceLROnPlateau: %s does not expose its learning rate", model->name);
            return NNRT_EINVAL;
        }
        s->lr_best = s->lr_max ? -INFINITY : INFINITY;
    }
    if (cb->csv_logger.enabled) {
        const NnrtCsvLogger *l = &cb->csv_logger;
        if (!l->filename || !l->filename[0]) {
            set_error(err, errlen, "CSVLogger: no filename");
            return NNRT_EINVAL;
        }
        if (output_path(s->csv_path, sizeof s->csv_path, cfg->out_dir, l->filename) < 0) {
            set_error(err, errlen, "CSVLogger: the path of '%s' is too long", l->filename);
            return NNRT_EINVAL;
        }
        /* Keras: append writes the header only into an empty or new file */
        s->csv_header = 1;
        FILE *old = l->append ? fopen(s->csv_path, "r") : NULL;
        if (old) {
            s->csv_header = fgetc(old) == EOF;
            fclose(old);
        }
        if (make_parent_dirs(s->csv_path) < 0 || !(s->csv = fopen(s->csv_path, l->append ? "a" : "w"))) {
            set_error(err, errlen, "CSVLogger: cannot open %s: %s", s->csv_path, strerror(errno));
            return NNRT_EIO;
        }
        for (int c = 0; c < h->cols; c++)   /* insertion sort: sorted(logs.keys()) */
            for (int k = c; k >= 0; k--) {
                if (k == 0 || strcmp(h->names[s->csv_order[k - 1]], h->names[c]) < 0) {
                    s->csv_order[k] = c;
                    break;
                }
                s->csv_order[k] = s->csv_order[k - 1];
            }
    }
    return 0;
}

/* One CSVLogger row (Keras: csv.DictWriter, excel dialect, so "\r\n"). */
static int csv_log(Callbacks *s, const NnrtHistory *h, int epoch, const double *row, char *err, size_t errlen)
{
    char sep = s->cb->csv_logger.separator ? s->cb->csv_logger.separator : ',', num[64];
    int bad = 0;
    if (s->csv_header) {
        bad |= fprintf(s->csv, "epoch") < 0;
        for (int c = 0; c < h->cols; c++)
            bad |= fprintf(s->csv, "%c%s", sep, h->names[s->csv_order[c]]) < 0;
        bad |= fprintf(s->csv, "\r\n") < 0;
        s->csv_header = 0;
    }
    bad |= fprintf(s->csv, "%d", epoch) < 0;
    for (int c = 0; c < h->cols; c++) {
        python_float(num, sizeof num, row[s->csv_order[c]]);
        bad |= fprintf(s->csv, "%c%s", sep, num) < 0;
    }
    bad |= fprintf(s->csv, "\r\n") < 0;
    if (bad || fflush(s->csv) != 0) {
        set_error(err, errlen, "CSVLogger: cannot write %s: %s", s->csv_path, strerror(errno));
        return NNRT_EIO;
    }
    return 0;
}

/* on_epoch_end of every callback, in a fixed order: ModelCheckpoint,
 * EarlyStopping, ReduceLROnPlateau, CSVLogger. epoch counts from 0. */
static int callbacks_epoch_end(Callbacks *s, const NnrtModel *model, void *m, const NnrtHistory *h, int epoch,
                               char *err, size_t errlen)
{
    const NnrtCallbacks *cb = s->cb;
    const double *row = h->values + (size_t)epoch * (size_t)h->cols;
    char why[512], file[4096], path[4096];
    int rc;

    if (cb->checkpoint.enabled) {
        const NnrtCheckpoint *c = &cb->checkpoint;
        const char *monitor = c->monitor ? c->monitor : "val_loss";
        int save = 1;
        if (format_filepath(file, sizeof file, c->filepath, epoch + 1, h, row, why, sizeof why) < 0) {
            set_error(err, errlen, "ModelCheckpoint filepath '%s': %s", c->filepath, why);
            return NNRT_EINVAL;
        }
        if (output_path(path, sizeof path, s->out_dir, file) < 0) {
            set_error(err, errlen, "ModelCheckpoint: the path of '%s' is too long", file);
            return NNRT_EINVAL;
        }
        if (c->save_best_only) {
            double current = row[s->ckpt_col];
            save = s->ckpt_max ? current > s->ckpt_best : current < s->ckpt_best;
            if (save)
                printf("Epoch %d: %s improved from %.5f to %.5f, saving model to %s\n", epoch + 1, monitor,
                       s->ckpt_best, current, path);
            else
                printf("Epoch %d: %s did not improve from %.5f\n", epoch + 1, monitor, s->ckpt_best);
            if (save)
                s->ckpt_best = current;
        } else {
            printf("Epoch %d: saving model to %s\n", epoch + 1, path);
        }
        fflush(stdout);
        if (save && make_parent_dirs(path) < 0) {
            set_error(err, errlen, "ModelCheckpoint: cannot create the folder of %s: %s", path, strerror(errno));
            return NNRT_EIO;
        }
        if (save && (rc = model->save(m, path)) < 0) {
            set_error(err, errlen, "ModelCheckpoint: cannot save %s: %s", path,
                      model->last_error ? model->last_error(m) : "(no message)");
            return rc;
        }
    }

    if (cb->early_stopping.enabled && epoch >= cb->early_stopping.start_from_epoch) {
        const NnrtEarlyStopping *e = &cb->early_stopping;
        double current = row[s->es_col], delta = fabs(e->min_delta);
        float *w = s->es_weights ? model->params(m) : NULL;
        if (w && !s->es_has_weights) {       /* the first epoch's weights, if nothing ever improves */
            memcpy(s->es_weights, w, model->num_params * sizeof *w);
            s->es_has_weights = 1;
            s->es_best_epoch = epoch;
        }
        s->es_wait++;
        int improved = s->es_max ? current - delta > s->es_best : current + delta < s->es_best;
        if (improved) {
            s->es_best = current;
            s->es_best_epoch = epoch;
            if (w)
                memcpy(s->es_weights, w, model->num_params * sizeof *w);
            /* only a value that also beats the baseline restarts the wait */
            if (isnan(e->baseline) || (s->es_max ? current - delta > e->baseline : current + delta < e->baseline))
                s->es_wait = 0;
        } else if (s->es_wait >= e->patience && epoch > 0) {
            s->es_stopped_epoch = epoch;
            s->stop = 1;
        }
    }

    if (cb->reduce_lr.enabled) {
        const NnrtReduceLr *r = &cb->reduce_lr;
        double current = row[s->lr_monitor_col], delta = r->min_delta;
        if (s->lr_cooldown > 0) {
            s->lr_cooldown--;
            s->lr_wait = 0;
        }
        if (s->lr_max ? current > s->lr_best + delta : current < s->lr_best - delta) {
            s->lr_best = current;
            s->lr_wait = 0;
        } else if (s->lr_cooldown == 0 && ++s->lr_wait >= r->patience) {
            float old_lr = model->get_learning_rate(m);
            if (old_lr > (float)r->min_lr) {
                double new_lr = fmax((double)old_lr * r->factor, r->min_lr);
                char num[64];
                model->set_learning_rate(m, (float)new_lr);
                python_float(num, sizeof num, new_lr);
                printf("Epoch %d: ReduceLROnPlateau reducing learning rate to %s.\n", epoch + 1, num);
                fflush(stdout);
                s->lr_cooldown = r->cooldown;
                s->lr_wait = 0;
            }
        }
    }

    if (s->csv && (rc = csv_log(s, h, epoch, row, err, errlen)) < 0)
        return rc;
    return 0;
}

/* on_train_end: EarlyStopping's message and its best weights (also after a
 * normal end or Ctrl-C, as Keras 3), the CSV log closed. */
static int callbacks_end(Callbacks *s, const NnrtModel *model, void *m, char *err, size_t errlen)
{
    int rc = 0;
    if (s->es_stopped_epoch > 0)
        printf("Epoch %d: early stopping\n", s->es_stopped_epoch + 1);
    if (s->es_weights && s->es_has_weights) {
        printf("Restoring model weights from the end of the best epoch: %d.\n", s->es_best_epoch + 1);
        memcpy(model->params(m), s->es_weights, model->num_params * sizeof *s->es_weights);
    }
    fflush(stdout);
    if (s->csv) {
        int closed = fclose(s->csv);
        s->csv = NULL;
        if (closed != 0) {
            set_error(err, errlen, "CSVLogger: cannot write %s: %s", s->csv_path, strerror(errno));
            rc = NNRT_EIO;
        }
    }
    callbacks_free(s);
    return rc;
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
    Callbacks callbacks = {0};
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
    if (cfg->train_limit > 0 && (size_t)cfg->train_limit < data.train.n) {  /* the first N samples only */
        data.train.n = (size_t)cfg->train_limit;
        for (int i = 0; i < NNRT_MAX_IO; i++) {
            if (data.train.x[i].data)
                data.train.x[i].shape[0] = cfg->train_limit;
            if (data.train.y[i].data)
                data.train.y[i].shape[0] = cfg->train_limit;
        }
    }
    const NnrtDataset *train = &data.train;
    const NnrtDataset *val = data.validation.n ? &data.validation : NULL;
    const size_t train_n = train->n;

    if (batch > train_n)
        batch = train_n;
    rc = history_init(history, model, val != NULL, cfg->callbacks.reduce_lr.enabled, cfg->epochs);
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
    if ((rc = callbacks_begin(&callbacks, model, cfg, history, err, errlen)) < 0)
        goto fail;
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

    for (int epoch = 0; epoch < cfg->epochs && !fit_interrupted && !callbacks.stop; epoch++) {
        double sums[33] = {0}, seen = 0, last_draw = -1;
        size_t prev_len = 0, step, steps_run = steps;
        Line line;
        if ((rc = begin_phase(model, m, cfg, epoch, err, errlen)) < 0)
            goto fail;
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
            /* TerminateOnNaN looks at the running loss, as Keras's logs["loss"]; the epoch
             * then ends early but completely (validation, history, callbacks) */
            if (cfg->callbacks.terminate_on_nan && !isfinite(sums[0] / seen)) {
                if (tty && prev_len)
                    printf("\n");
                printf("Batch %zu: Invalid loss, terminating training\n", step);
                fflush(stdout);
                callbacks.stop = 1;
                steps_run = step + 1;
                prev_len = 0;
                step = steps;
                break;
            }

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
        if (step < steps) {            /* Ctrl-C: the epoch is not recorded */
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
        if (callbacks.lr_col >= 0)
            row[callbacks.lr_col] = (double)model->get_learning_rate(m);
        history->epochs = epoch + 1;

        double elapsed = now_seconds() - start;
        line.len = 0;
        line_bar(&line, steps_run, steps);
        line_add(&line, " - %.0fs", elapsed);
        line_step_time(&line, elapsed / (double)steps_run);
        for (int k = 0; k < history->cols; k++)
            if (k != callbacks.lr_col)    /* Keras's progress bar prints before the callback adds it */
                line_value(&line, history->names[k], row[k]);
        if (tty)
            redraw(&line, &prev_len, 1);
        else
            printf("%s\n", line.text);
        fflush(stdout);
        if ((rc = callbacks_epoch_end(&callbacks, model, m, history, epoch, err, errlen)) < 0)
            goto fail;
        if (fit_interrupted)
            fprintf(stderr, "interrupted after epoch %d/%d; the weights are kept\n", epoch + 1,
                    cfg->epochs);
    }
    rc = callbacks_end(&callbacks, model, m, err, errlen);

fail:
    callbacks_free(&callbacks);
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
