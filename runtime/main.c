/* main.c — the driver program nncc builds for each model: the commands
 * train, evaluate, predict and check over the generated P_* functions.
 *
 * nnrt_main parses `PROGRAM COMMAND [options]`, creates the model
 * (new_model(seed), then the weights), runs the command and turns every
 * outcome into the exit status: 0 success; 1 bad input (usage, a missing or
 * malformed file, shapes that do not fit, a failed gradient check); 2 an
 * internal failure (out of memory, a model call that fails on valid data).
 * Results go to stdout, "error: ..." and warnings to stderr, usage to stderr
 * on a usage error and to stdout for --help.
 *
 * check: the analytic gradient (loss_grad) of a seeded random batch is
 * compared with central differences f = (L(w+h) - L(w-h)) / 2h at up to 200
 * weights spaced evenly over the whole weight block (first and last
 * included), h = 1e-3 * max(1, |w|). The error is |a - f| / max(floor,
 * |a| + |f|); floor is 1e-3, raised to what the float loss can resolve
 * (4 ulps of L over 2h, divided by the tolerance), so gradients too small
 * for a float difference quotient are held to an absolute bound instead of
 * failing on rounding noise. A weight above the tolerance is retried with
 * h / 4 (a ReLU kink inside [w-h, w+h] spoils one step, not a wrong
 * gradient); the smaller error counts. With --reference, the loss,
 * gradients and predict outputs of the same batch, and the outputs after
 * one training step on it, are also compared with a --dump written by
 * another build of the model (nncc check builds one with --no-fuse): the
 * passes must not change the numbers beyond rounding.
 *
 * evaluate and predict refuse NaN and Inf in their input data (and
 * evaluate in float targets), naming the file, the sample and the element:
 * relu turns a NaN into 0, so a prediction from one looks plausible.
 * --allow-nonfinite lets them through.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "nnrt.h"

enum { STATUS_OK = 0, STATUS_INPUT = 1, STATUS_INTERNAL = 2 };

#define CHECK_WEIGHTS 200
#define CHECK_TOLERANCE 2e-2
#define CHECK_AGREEMENT 1e-4   /* fused against unfused code, relative */

typedef struct {
    const char *command;                 /* train, evaluate, predict, check */
    const char *weights;                 /* --weights */
    const char *out_dir;                 /* --out */
    long epochs;                         /* --epochs, -1 when not given */
    int has_seed;
    uint64_t seed;                       /* --seed */
    int num_data, num_targets, num_inputs, num_outputs;
    const char *data[NNRT_MAX_IO];       /* --data, per model input */
    const char *targets[NNRT_MAX_IO];    /* --targets, per model output */
    const char *inputs[NNRT_MAX_IO];     /* --input */
    const char *outputs[NNRT_MAX_IO];    /* --output */
    const char *dump;                    /* check --dump: write loss, gradients, outputs; no probes */
    const char *reference;               /* check --reference: compare them with a dump */
    int allow_nonfinite;                 /* --allow-nonfinite: load NaN/Inf weights, use NaN/Inf data */
} Options;

static void error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("error: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* Exit status for a runtime return code: the file or data was wrong, or we were. */
static int status_of(int rc)
{
    return rc == NNRT_EIO || rc == NNRT_EFORMAT || rc == NNRT_EMISMATCH ? STATUS_INPUT
                                                                         : STATUS_INTERNAL;
}

static void usage(FILE *f, const char *program)
{
    fprintf(f,
            "usage: %s COMMAND [options]\n"
            "\n"
            "commands:\n"
            "  train [--epochs N] [--out DIR] [--weights INIT.h5] [--seed S]\n"
            "      train as the model's fit: says; write DIR/NAME.h5, DIR/history.csv and\n"
            "      DIR/learning_curves.svg, then evaluate the test split\n"
            "  evaluate [--weights W.h5] [--data X.npy --targets Y.npy]\n"
            "      print the loss and metrics (default data: the fit config's test split)\n"
            "  predict [--weights W.h5] --input X.npy [--input X2.npy ...] [--output Y.npy ...]\n"
            "      write the outputs as .npy, or without --output as CSV rows on stdout\n"
            "  check [--seed S] [--reference FILE | --dump FILE]\n"
            "      compare the gradients with central finite differences; --reference also\n"
            "      compares loss, gradients and outputs (before and after a training step)\n"
            "      with a --dump of another build of the model (nncc check: the unfused one)\n"
            "\n"
            "--data/--input take one file per model input, --targets/--output one per output.\n"
            "--allow-nonfinite (train, evaluate, predict) loads weights holding NaN or Inf,\n"
            "which are refused by default, and uses NaN and Inf in the data, which evaluate\n"
            "and predict refuse by default.\n",
            program);
}

/* Keras's number format: 4 decimals, e-notation at or below 1e-3. */
static void print_value(FILE *f, const char *prefix, const char *name, double v)
{
    fprintf(f, fabs(v) > 1e-3 ? "%s%s: %.4f" : "%s%s: %.4e", prefix, name, v);
}

static int parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    if (!s || !*s || *s == '-' || *s == '+')
        return -1;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

/* ---- command line -------------------------------------------------------- */

enum { OPT_EPOCHS = 1, OPT_OUT = 2, OPT_WEIGHTS = 4, OPT_SEED = 8, OPT_DATA = 16,
       OPT_TARGETS = 32, OPT_INPUT = 64, OPT_OUTPUT = 128, OPT_DUMP = 256, OPT_REFERENCE = 512,
       OPT_ALLOW_NONFINITE = 1024 /* takes no value */ };

static const struct {
    const char *name;
    int allowed;                         /* OPT_* flags the command takes */
} commands[] = {
    {"train", OPT_EPOCHS | OPT_OUT | OPT_WEIGHTS | OPT_SEED | OPT_ALLOW_NONFINITE},
    {"evaluate", OPT_WEIGHTS | OPT_DATA | OPT_TARGETS | OPT_ALLOW_NONFINITE},
    {"predict", OPT_WEIGHTS | OPT_INPUT | OPT_OUTPUT | OPT_ALLOW_NONFINITE},
    {"check", OPT_SEED | OPT_DUMP | OPT_REFERENCE},
};

static const struct {
    const char *name;
    int flag;
} options[] = {
    {"--epochs", OPT_EPOCHS}, {"--out", OPT_OUT}, {"--weights", OPT_WEIGHTS},
    {"--seed", OPT_SEED}, {"--data", OPT_DATA}, {"--targets", OPT_TARGETS},
    {"--input", OPT_INPUT}, {"--output", OPT_OUTPUT}, {"--dump", OPT_DUMP},
    {"--reference", OPT_REFERENCE}, {"--allow-nonfinite", OPT_ALLOW_NONFINITE},
};

static int is_help(const char *arg)
{
    return !strcmp(arg, "--help") || !strcmp(arg, "-h") || !strcmp(arg, "help");
}

/* Returns 0, 1 after printing a usage error, or -1 when help was asked for. */
static int parse_options(int argc, char **argv, Options *o)
{
    int allowed = -1;
    memset(o, 0, sizeof *o);
    o->epochs = -1;
    if (argc < 2) {
        error("no command given");
        return 1;
    }
    if (is_help(argv[1]))
        return -1;
    o->command = argv[1];
    for (size_t c = 0; c < sizeof commands / sizeof commands[0]; c++)
        if (!strcmp(argv[1], commands[c].name))
            allowed = commands[c].allowed;
    if (allowed < 0) {
        error("unknown command '%s'", argv[1]);
        return 1;
    }
    for (int i = 2; i < argc; i++) {
        const char *arg = argv[i];
        int flag = 0;
        if (is_help(arg))
            return -1;
        for (size_t k = 0; k < sizeof options / sizeof options[0]; k++)
            if (!strcmp(arg, options[k].name))
                flag = options[k].flag;
        if (!(flag & allowed)) {
            error("%s does not take '%s'", o->command, arg);
            return 1;
        }
        if (flag == OPT_ALLOW_NONFINITE) {   /* the one option without a value */
            o->allow_nonfinite = 1;
            continue;
        }
        if (i + 1 >= argc) {
            error("%s needs a value", arg);
            return 1;
        }
        const char *value = argv[++i];
        uint64_t number;
        const char **list = NULL;
        int *count = NULL;
        switch (flag) {
        case OPT_EPOCHS:
            if (parse_u64(value, &number) < 0 || number > 1000000000) {
                error("--epochs takes a number of epochs, not '%s'", value);
                return 1;
            }
            o->epochs = (long)number;
            break;
        case OPT_SEED:
            if (parse_u64(value, &o->seed) < 0) {
                error("--seed takes a non-negative integer, not '%s'", value);
                return 1;
            }
            o->has_seed = 1;
            break;
        case OPT_OUT: o->out_dir = value; break;
        case OPT_WEIGHTS: o->weights = value; break;
        case OPT_DUMP: o->dump = value; break;
        case OPT_REFERENCE: o->reference = value; break;
        case OPT_DATA: list = o->data; count = &o->num_data; break;
        case OPT_TARGETS: list = o->targets; count = &o->num_targets; break;
        case OPT_INPUT: list = o->inputs; count = &o->num_inputs; break;
        case OPT_OUTPUT: list = o->outputs; count = &o->num_outputs; break;
        }
        if (list) {
            if (*count == NNRT_MAX_IO) {
                error("too many %s options (at most %d)", arg, NNRT_MAX_IO);
                return 1;
            }
            if (strchr(value, ';')) {
                error("%s: file names with ';' are not supported", value);
                return 1;
            }
            list[(*count)++] = value;
        }
    }
    return 0;
}

/* ---- helpers ------------------------------------------------------------- */

/* paths joined with ';' as NnrtDataSource lists them; NULL when n == 0. */
static char *join_paths(const char *const *paths, int n)
{
    size_t len = 1;
    for (int i = 0; i < n; i++)
        len += strlen(paths[i]) + 1;
    char *s = n ? malloc(len) : NULL;
    if (!s)
        return NULL;
    s[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (i)
            strcat(s, ";");
        strcat(s, paths[i]);
    }
    return s;
}

static int make_dirs(const char *path)
{
    char *p = strdup(path);
    struct stat st;
    int rc = -1;
    if (!p || !*p)
        goto fail;
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == '\0') {
            char c = *s;
            *s = '\0';
            if (mkdir(p, 0777) != 0 && errno != EEXIST)
                goto fail;
            *s = c;
            if (!c)
                break;
        }
    }
    if (stat(path, &st) != 0)
        goto fail;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        goto fail;
    }
    rc = 0;
fail:
    free(p);
    return rc;
}

/* A new model with seed, then strict weights from `weights` when given. */
static int open_model(const NnrtModel *model, uint64_t seed, const char *weights, void **out)
{
    void *m = nnrt_model_new(model, seed);
    *out = NULL;
    if (!m) {
        error("cannot create the model %s (out of memory)", model->name);
        return STATUS_INTERNAL;
    }
    if (weights) {
        int rc = model->load(m, weights);
        if (rc < 0) {
            error("%s", model->last_error(m));  /* the runtime's message names the file */
            model->free_model(m);
            return status_of(rc);
        }
    } else {
        fprintf(stderr, "warning: no --weights given: %s uses its initial weights (seed %llu)\n",
                model->name, (unsigned long long)seed);
    }
    *out = m;
    return STATUS_OK;
}

/* Pointers to every input and target array of d. */
static void dataset_pointers(const NnrtModel *model, const NnrtDataset *d, const float **in,
                             const void **tg)
{
    for (int i = 0; i < model->num_inputs; i++)
        in[i] = d->x[i].data;
    for (int j = 0; j < model->num_outputs; j++)
        tg[j] = d->y[j].data;
}

static uint64_t default_seed(const Options *o, const NnrtFitConfig *fit)
{
    return o->has_seed ? o->seed : fit ? fit->seed : 42;
}

/* ---- data checks ------------------------------------------------------------ */

/* The first NaN or Inf of array a (n samples) as an error naming file,
 * sample and element; STATUS_OK when every value is finite. role: "input 1
 * of 2", "target 1"... */
static int check_finite_array(const NnrtArray *a, size_t n, const char *file, const char *role)
{
    if (a->dtype != NNRT_F32 || !a->data || n == 0)
        return STATUS_OK;  /* int32 labels are finite */
    const float *v = a->data;
    size_t count = nnrt_array_count(a), per = count / n;
    for (size_t i = 0; i < count; i++)
        if (!isfinite(v[i])) {
            error("%s: sample %zu, element %zu (%s) is %s; the results would be meaningless (--allow-nonfinite "
                  "uses them anyway)", file, i / per, i % per, role, isnan(v[i]) ? "NaN" : v[i] > 0 ? "Inf" : "-Inf");
            return STATUS_INPUT;
        }
    return STATUS_OK;
}

/* Every float input and target of d; xfiles/yfiles name each array's file
 * (NULL: d came from the fit section, named as `what`). */
static int check_finite(const NnrtModel *model, const NnrtDataset *d, const char *const *xfiles,
                        const char *const *yfiles, int num_yfiles, const char *what)
{
    char role[64];
    for (int j = 0; j < model->num_inputs; j++) {
        snprintf(role, sizeof role, "input %d of %d", j + 1, model->num_inputs);
        if (check_finite_array(&d->x[j], d->n, xfiles ? xfiles[j] : what, role) != STATUS_OK)
            return STATUS_INPUT;
    }
    for (int j = 0; j < model->num_outputs; j++) {
        snprintf(role, sizeof role, "the target of output '%s'", model->output_names[j]);
        const char *file = yfiles ? yfiles[num_yfiles == 1 ? 0 : j] : what;
        if (check_finite_array(&d->y[j], d->n, file, role) != STATUS_OK)
            return STATUS_INPUT;
    }
    return STATUS_OK;
}

/* ---- evaluate ------------------------------------------------------------ */

static int cmd_evaluate(const NnrtModel *model, const NnrtFitConfig *fit, const Options *o)
{
    NnrtFitData data = {0};
    char *xs = NULL, *ys = NULL, err[1024] = "";
    void *m = NULL;
    const float *in[NNRT_MAX_IO];
    const void *tg[NNRT_MAX_IO];
    float loss, metrics[32];
    int status = STATUS_INPUT, rc;

    if ((o->num_data > 0) != (o->num_targets > 0)) {
        error("--data and --targets go together");
        goto fail;
    }
    if (o->num_data > 0) {
        if (!(xs = join_paths(o->data, o->num_data)) || !(ys = join_paths(o->targets, o->num_targets))) {
            status = STATUS_INTERNAL;
            error("out of memory");
            goto fail;
        }
        NnrtDataSource src = {.format = NNRT_DATA_NPY, .x = xs, .y = ys, .scale = 1.0};
        rc = nnrt_dataset_load(model, &src, &data.test, err, sizeof err);
    } else if (fit) {
        rc = nnrt_fit_data_load(model, fit, NNRT_WANT_TEST, &data, err, sizeof err);
    } else {
        rc = 0;
    }
    if (rc < 0) {
        status = status_of(rc);
        error("%s", err);
        goto fail;
    }
    if (data.test.n == 0) {
        error("%s has no test data in its fit config; pass --data X.npy --targets Y.npy",
              model->name);
        goto fail;
    }
    if (!o->allow_nonfinite &&
        check_finite(model, &data.test, o->num_data ? o->data : NULL, o->num_data ? o->targets : NULL,
                     o->num_targets, "the fit section's test data") != STATUS_OK)
        goto fail;
    if ((status = open_model(model, default_seed(o, fit), o->weights, &m)) != STATUS_OK)
        goto fail;
    dataset_pointers(model, &data.test, in, tg);
    if (model->evaluate(m, data.test.n, in, tg, &loss, metrics) < 0) {
        status = STATUS_INTERNAL;
        error("evaluation failed: %s", model->last_error(m));
        goto fail;
    }
    print_value(stdout, "", "loss", loss);
    putchar('\n');
    for (int k = 0; k < model->num_metrics; k++) {
        print_value(stdout, "", model->metric_names[k], metrics[k]);
        putchar('\n');
    }
    status = STATUS_OK;
fail:
    if (m)
        model->free_model(m);
    nnrt_fit_data_free(&data);
    free(xs);
    free(ys);
    return status;
}

/* ---- predict ------------------------------------------------------------- */

static int cmd_predict(const NnrtModel *model, const NnrtFitConfig *fit, const Options *o)
{
    NnrtDataset d = {0};
    char *xs = NULL, err[1024] = "";
    void *m = NULL;
    float *out[NNRT_MAX_IO] = {0};
    const float *in[NNRT_MAX_IO];
    const void *tg[NNRT_MAX_IO];
    int status = STATUS_INPUT, rc;

    if (o->num_inputs != model->num_inputs) {
        error("%s takes %d input(s): give one --input per input (got %d)", model->name,
              model->num_inputs, o->num_inputs);
        goto fail;
    }
    if (o->num_outputs != 0 && o->num_outputs != model->num_outputs) {
        error("%s has %d output(s): give one --output per output, or none for CSV (got %d)",
              model->name, model->num_outputs, o->num_outputs);
        goto fail;
    }
    if (!(xs = join_paths(o->inputs, o->num_inputs))) {
        status = STATUS_INTERNAL;
        error("out of memory");
        goto fail;
    }
    NnrtDataSource src = {.format = NNRT_DATA_NPY, .x = xs, .scale = 1.0};
    if ((rc = nnrt_dataset_load(model, &src, &d, err, sizeof err)) < 0) {
        status = status_of(rc);
        error("%s", err);
        goto fail;
    }
    if (!o->allow_nonfinite && check_finite(model, &d, o->inputs, NULL, 0, NULL) != STATUS_OK)
        goto fail;
    if ((status = open_model(model, default_seed(o, fit), o->weights, &m)) != STATUS_OK)
        goto fail;
    status = STATUS_INTERNAL;
    for (int j = 0; j < model->num_outputs; j++) {
        if (!(out[j] = malloc(d.n * (size_t)model->output_size[j] * sizeof(float)))) {
            error("out of memory");
            goto fail;
        }
    }
    dataset_pointers(model, &d, in, tg);
    if (model->predict(m, d.n, in, out) < 0) {
        error("prediction failed: %s", model->last_error(m));
        goto fail;
    }
    if (o->num_outputs) {
        for (int j = 0; j < model->num_outputs; j++) {
            NnrtArray a = {NNRT_F32, 2, {(int64_t)d.n, model->output_size[j]}, out[j]};
            if (model->output_rank[j] > 0 && model->output_rank[j] < NNRT_MAX_RANK) {  /* Keras's (n, ...) */
                a.rank = 1 + model->output_rank[j];
                for (int k = 0; k < model->output_rank[j]; k++)
                    a.shape[1 + k] = model->output_shape[j][k];
            }
            if ((rc = nnrt_npy_save(o->outputs[j], &a, err, sizeof err)) < 0) {
                status = status_of(rc);
                error("%s", err);
                goto fail;
            }
        }
    } else {
        for (size_t s = 0; s < d.n; s++) {
            const char *sep = "";
            for (int j = 0; j < model->num_outputs; j++) {
                for (int64_t k = 0; k < model->output_size[j]; k++) {
                    printf("%s%.6g", sep, (double)out[j][s * (size_t)model->output_size[j] + (size_t)k]);
                    sep = ",";
                }
            }
            putchar('\n');
        }
    }
    status = STATUS_OK;
fail:
    for (int j = 0; j < NNRT_MAX_IO; j++)
        free(out[j]);
    if (m)
        model->free_model(m);
    nnrt_dataset_free(&d);
    free(xs);
    return status;
}

/* ---- train --------------------------------------------------------------- */

/* Whether the fit's CSVLogger wrote `path` (its filename is relative to the
 * output folder): then that file, the one the user asked for, stays. */
static bool is_csv_logger_file(const NnrtFitConfig *cfg, const char *path)
{
    const NnrtCsvLogger *l = &cfg->callbacks.csv_logger;
    char logged[4096 + 256];
    struct stat a, b;
    if (!l->enabled || !l->filename || !l->filename[0])
        return false;
    if (l->filename[0] == '/')
        snprintf(logged, sizeof logged, "%s", l->filename);
    else
        snprintf(logged, sizeof logged, "%s/%s", cfg->out_dir, l->filename);
    return stat(logged, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

static int cmd_train(const NnrtModel *model, const NnrtFitConfig *fit, const Options *o)
{
    NnrtFitConfig cfg;
    NnrtHistory history = {0};
    NnrtFitData data = {0};
    char dir[4096], path[4096 + 64], err[1024] = "";
    void *m = NULL;
    int status = STATUS_INPUT, rc;

    if (!fit) {
        error("%s has no fit: section; there is nothing to train", model->name);
        goto fail;
    }
    cfg = *fit;
    if (o->epochs >= 0)
        cfg.epochs = (int)o->epochs;
    if (o->has_seed)
        cfg.seed = o->seed;
    if (o->weights)
        cfg.init_weights = o->weights;
    if (o->out_dir)
        snprintf(dir, sizeof dir, "%s", o->out_dir);
    else if (cfg.out_dir)
        snprintf(dir, sizeof dir, "%s", cfg.out_dir);
    else
        snprintf(dir, sizeof dir, "./nncc-out/%s", model->name);
    cfg.out_dir = dir;
    if (make_dirs(dir) != 0) {
        error("cannot create the output folder %s: %s", dir, strerror(errno));
        goto fail;
    }

    if (!(m = nnrt_model_new(model, cfg.seed))) {
        status = STATUS_INTERNAL;
        error("cannot create the model %s (out of memory)", model->name);
        goto fail;
    }
    if (cfg.init_weights) {
        fflush(stdout);
        if ((rc = model->load_partial(m, cfg.init_weights, stdout)) < 0) {
            status = status_of(rc);
            error("%s", model->last_error(m));
            goto fail;
        }
        fflush(stdout);
    }
    if ((rc = nnrt_fit(model, m, &cfg, &history, err, sizeof err)) < 0) {
        status = status_of(rc);
        error("%s", err);
        goto fail;
    }

    snprintf(path, sizeof path, "%s/%s.h5", dir, model->name);
    if ((rc = model->save(m, path)) < 0) {
        status = status_of(rc);
        error("%s", model->last_error(m));
        goto fail;
    }
    snprintf(path, sizeof path, "%s/history.csv", dir);
    if (!is_csv_logger_file(&cfg, path) && (rc = nnrt_history_write_csv(&history, path, err, sizeof err)) < 0) {
        status = status_of(rc);
        error("%s", err);
        goto fail;
    }
    snprintf(path, sizeof path, "%s/learning_curves.svg", dir);
    if ((rc = nnrt_history_write_svg(&history, model->name, path, err, sizeof err)) < 0) {
        status = status_of(rc);
        error("%s", err);
        goto fail;
    }
    printf("saved %s/%s.h5, %s/history.csv, %s/learning_curves.svg\n", dir, model->name, dir, dir);

    if ((rc = nnrt_fit_data_load(model, &cfg, NNRT_WANT_TEST, &data, err, sizeof err)) < 0) {
        status = status_of(rc);
        error("%s", err);
        goto fail;
    }
    const NnrtDataset *test = &data.test;
    if (test->n > 0) {
        const float *in[NNRT_MAX_IO];
        const void *tg[NNRT_MAX_IO];
        float loss, metrics[32];
        struct timespec t0, t1;
        dataset_pointers(model, test, in, tg);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        if (model->evaluate(m, test->n, in, tg, &loss, metrics) < 0) {
            status = STATUS_INTERNAL;
            error("evaluation on the test data failed: %s", model->last_error(m));
            goto fail;
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        size_t batch = cfg.batch_size ? cfg.batch_size : 32;
        double seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        size_t steps = (test->n + batch - 1) / batch;
        printf("%zu/%zu - %.0fs", steps, steps, seconds);
        print_value(stdout, " - ", "loss", loss);
        for (int k = 0; k < model->num_metrics; k++)
            print_value(stdout, " - ", model->metric_names[k], metrics[k]);
        putchar('\n');
        for (int k = 0; k < (model->num_metrics ? model->num_metrics : 1); k++) {
            if (model->num_metrics)
                print_value(stdout, "test ", model->metric_names[k], metrics[k]);
            else
                print_value(stdout, "test ", "loss", loss);
            putchar('\n');
        }
    }
    status = STATUS_OK;
fail:
    if (m)
        model->free_model(m);
    nnrt_history_free(&history);
    nnrt_fit_data_free(&data);
    return status;
}

/* ---- check --------------------------------------------------------------- */

/* Relative error of analytic a against the central difference at weight i. */
static int finite_difference(const NnrtModel *model, void *m, size_t n, const float **in,
                             const void **tg, float *w, size_t i, double a, double loss0,
                             double step_scale, double *f_out, double *rel_out)
{
    float w0 = w[i], lp, lm;
    double eps = step_scale * fmax(1.0, fabs((double)w0));
    float up = (float)(w0 + eps), down = (float)(w0 - eps);
    w[i] = up;
    int rc = model->loss_grad(m, n, in, tg, &lp);
    w[i] = down;
    if (rc == 0)
        rc = model->loss_grad(m, n, in, tg, &lm);
    w[i] = w0;
    if (rc < 0)
        return rc;
    double h = (double)up - (double)down;          /* the step floats actually took */
    double f = ((double)lp - (double)lm) / h;
    double resolution = 4 * FLT_EPSILON * fmax(1.0, fabs(loss0)) / h;
    double floor_ = fmax(1e-3, resolution / CHECK_TOLERANCE);
    *f_out = f;
    *rel_out = fabs(a - f) / fmax(floor_, fabs(a) + fabs(f));
    return 0;
}

/* A seeded random batch of n samples: inputs U[0,1); sparse labels uniform
 * over the classes; other targets one-hot when a metric is categorical,
 * else U[0,1) (valid for every loss nncc compiles). */
static int random_batch(const NnrtModel *model, size_t n, uint64_t seed, float **x, void **y)
{
    int categorical = 0;
    NnrtRng rng;
    for (int k = 0; k < model->num_metrics; k++)
        if (model->metric_names[k] && strstr(model->metric_names[k], "categorical") &&
            !strstr(model->metric_names[k], "sparse"))
            categorical = 1;
    nnrt_rng_seed(&rng, seed ^ 0x434845434bu);          /* "CHECK" */
    for (int i = 0; i < model->num_inputs; i++) {
        size_t count = n * (size_t)model->input_size[i];
        if (!(x[i] = malloc(count * sizeof(float))))
            return NNRT_ENOMEM;
        for (size_t k = 0; k < count; k++)
            x[i][k] = (float)nnrt_rng_uniform(&rng);
    }
    for (int j = 0; j < model->num_outputs; j++) {
        size_t per = (size_t)model->target_size[j];
        if (!(y[j] = calloc(n * per, 4)))
            return NNRT_ENOMEM;
        int32_t *labels = y[j];
        float *t = y[j];
        for (size_t s = 0; s < n; s++) {
            if (model->target_sparse[j])
                for (size_t k = 0; k < per; k++)  /* per labels of output_size / per classes each */
                    labels[s * per + k] =
                        (int32_t)(nnrt_rng_next(&rng) % (uint64_t)(model->output_size[j] / (int64_t)per));
            else if (categorical && per > 1)
                t[s * per + nnrt_rng_next(&rng) % per] = 1;
            else
                for (size_t k = 0; k < per; k++)
                    t[s * per + k] = (float)nnrt_rng_uniform(&rng);
        }
    }
    return 0;
}

/* The largest relative difference of got from want, |a - b| / (|a| + |b|),
 * with a floor on the denominator of `floor` times want's largest magnitude
 * (two builds may sum in another order); *at is where. NaN counts as infinite. */
static double max_rel_difference(const float *got, const float *want, size_t count, double floor, size_t *at)
{
    double scale = 0, worst = 0;
    *at = 0;
    for (size_t i = 0; i < count; i++)
        scale = fmax(scale, fabs((double)want[i]));
    for (size_t i = 0; i < count; i++) {
        double d = fabs((double)got[i] - (double)want[i]) /
                   fmax(fabs((double)got[i]) + fabs((double)want[i]), floor * scale + 1e-30);
        if (!(d <= worst)) {
            worst = isnan(d) ? INFINITY : d;
            *at = i;
        }
    }
    return worst;
}

/* What check compares between two builds of one model: the loss, every
 * gradient and every output of the seeded batch, in that order, then every
 * output again after one training step on that batch (a second model of the
 * same seed). The step moves what the initial weights hide: a
 * BatchNormalization starts as nearly the identity (mean 0, variance 1,
 * gamma 1, beta 0), so only after it do the passes' inference rewrites of
 * its statistics (pass_fold_bn) show in the outputs. */
static float *check_values(const NnrtModel *model, void *m, uint64_t seed, size_t n, const float **in,
                           const void **tg, float loss, const float *grads, size_t *count)
{
    size_t num = model->num_params, outputs = 0;
    for (int j = 0; j < model->num_outputs; j++)
        outputs += n * (size_t)model->output_size[j];
    size_t total = 1 + num + 2 * outputs;
    float *v = malloc(total * sizeof *v), *out[NNRT_MAX_IO], *after[NNRT_MAX_IO], step_loss;
    void *stepped = nnrt_model_new(model, seed);
    if (!v || !stepped)
        goto fail;
    v[0] = loss;
    memcpy(v + 1, grads, num * sizeof *v);
    size_t at = 1 + num;
    for (int j = 0; j < model->num_outputs; j++) {
        out[j] = v + at;
        after[j] = v + at + outputs;
        at += n * (size_t)model->output_size[j];
    }
    if (model->predict(m, n, in, out) < 0 || model->train_step(stepped, n, in, tg, &step_loss, NULL) < 0 ||
        model->predict(stepped, n, in, after) < 0)
        goto fail;
    model->free_model(stepped);
    *count = total;
    return v;
fail:
    if (stepped)
        model->free_model(stepped);
    free(v);
    return NULL;
}

#define DUMP_MAGIC "NNCCCHK1"

/* The values as DUMP_MAGIC, a uint64 count, then the floats: atomic, through a temporary file. */
static int write_dump(const char *path, const float *v, size_t count)
{
    size_t len = strlen(path) + 8;
    char *tmp = malloc(len);
    if (!tmp)
        return -1;
    snprintf(tmp, len, "%s.tmp", path);
    FILE *f = fopen(tmp, "wb");
    uint64_t c = count;
    int ok = f && fwrite(DUMP_MAGIC, 1, 8, f) == 8 && fwrite(&c, sizeof c, 1, f) == 1 &&
             fwrite(v, sizeof *v, count, f) == count;
    ok = (f && fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        error("cannot write %s: %s", path, strerror(errno));
        remove(tmp);
        free(tmp);
        return -1;
    }
    free(tmp);
    return 0;
}

/* Compares v with the dump at path: prints the largest relative difference;
 * returns 1 when within tolerance, 0 when not, -1 when the dump is unusable. */
static int compare_dump(const char *path, const float *v, size_t count)
{
    char magic[8];
    uint64_t c = 0;
    FILE *f = fopen(path, "rb");
    if (!f || fread(magic, 1, 8, f) != 8 || memcmp(magic, DUMP_MAGIC, 8) != 0 || fread(&c, sizeof c, 1, f) != 1 ||
        c != count) {
        error("%s: not a check dump of this model (%s)", path, f ? "wrong header or size" : strerror(errno));
        if (f)
            fclose(f);
        return -1;
    }
    float *r = malloc((count ? count : 1) * sizeof *r);
    if (!r || fread(r, sizeof *r, count, f) != count) {
        error("%s: truncated check dump", path);
        fclose(f);
        free(r);
        return -1;
    }
    fclose(f);
    size_t at;
    double worst = max_rel_difference(v, r, count, 1e-6, &at);
    int ok = worst <= CHECK_AGREEMENT;
    printf("fused vs unfused: max rel difference %.3g over %zu values (loss, gradients, outputs before and after a "
           "step): %s\n", worst, count, ok ? "ok" : "FAILED");
    if (!ok)
        fprintf(stderr, "worst: value %zu: %.9g here, %.9g in %s\n", at, (double)v[at], (double)r[at], path);
    free(r);
    return ok;
}

static int cmd_check(const NnrtModel *model, const NnrtFitConfig *fit, const Options *o)
{
    void *m = NULL;
    float *x[NNRT_MAX_IO] = {0};
    void *y[NNRT_MAX_IO] = {0};
    float *analytic = NULL, loss0;
    const float *in[NNRT_MAX_IO];
    const void *tg[NNRT_MAX_IO];
    int status = STATUS_INTERNAL, rc;
    uint64_t seed = default_seed(o, fit);
    size_t n = model->max_batch && model->max_batch < 4 ? model->max_batch : 4;
    size_t num = model->num_params;

    if (!model->loss_grad || !model->params || !model->grads || num == 0) {
        status = STATUS_INPUT;
        error("%s has no training code or no weights (compiled with --inference-only?); "
              "there is no gradient to check", model->name);
        goto fail;
    }
    if (!(m = nnrt_model_new(model, seed)) || random_batch(model, n, seed, x, y) < 0 ||
        !(analytic = malloc(num * sizeof *analytic))) {
        error("out of memory");
        goto fail;
    }
    for (int i = 0; i < model->num_inputs; i++)
        in[i] = x[i];
    for (int j = 0; j < model->num_outputs; j++)
        tg[j] = y[j];
    if ((rc = model->loss_grad(m, n, in, tg, &loss0)) == 0)
        memcpy(analytic, model->grads(m), num * sizeof *analytic);
    int agree = 1;
    if (rc == 0 && (o->dump || o->reference)) {
        size_t nvalues = 0;
        float *values = check_values(model, m, seed, n, in, tg, loss0, analytic, &nvalues);
        if (!values) {
            error("check: predict or the training step failed: %s", model->last_error(m));
            goto fail;
        }
        if (o->dump) {
            int written = write_dump(o->dump, values, nvalues);
            free(values);
            status = written < 0 ? STATUS_INPUT : STATUS_OK;
            goto fail;  /* a dump is all another build needs: no probes */
        }
        agree = compare_dump(o->reference, values, nvalues);
        free(values);
        if (agree < 0) {
            status = STATUS_INPUT;
            goto fail;
        }
    }

    /* The weights to probe: with the model's tensor table, an even spread
     * over every trainable tensor (frozen ones have no gradient); else over
     * the whole block. */
    float *w = model->params(m);
    size_t *probe = malloc(CHECK_WEIGHTS * 2 * sizeof *probe), count = 0, worst = 0;
    if (!probe) {
        error("out of memory");
        goto fail;
    }
    int trainable = 0;
    for (int t = 0; model->weights && t < model->num_weights; t++)
        trainable += model->weights[t].trainable != 0;
    if (trainable > 0) {
        size_t per = CHECK_WEIGHTS / (size_t)trainable ? CHECK_WEIGHTS / (size_t)trainable : 1;
        for (int t = 0; t < model->num_weights; t++) {
            const NnrtWeightInfo *wi = &model->weights[t];
            size_t size = 1;
            for (int d = 0; d < wi->rank; d++)
                size *= (size_t)wi->shape[d];
            if (!wi->trainable || size == 0)
                continue;
            size_t k_max = size < per ? size : per;
            for (size_t k = 0; k < k_max && count < CHECK_WEIGHTS * 2; k++)
                probe[count++] = wi->offset + (k_max == 1 ? 0 : k * (size - 1) / (k_max - 1));
        }
    } else {
        size_t c = num < CHECK_WEIGHTS ? num : CHECK_WEIGHTS;
        for (size_t k = 0; k < c; k++)
            probe[count++] = c == 1 ? 0 : k * (num - 1) / (c - 1);
    }
    double max_rel = 0, worst_f = 0;
    size_t failed = 0;
    for (size_t k = 0; rc == 0 && k < count; k++) {
        size_t i = probe[k];
        double f, rel, f2, rel2;
        rc = finite_difference(model, m, n, in, tg, w, i, analytic[i], loss0, 1e-3, &f, &rel);
        /* a kink (ReLU, SELU, max pooling) inside the step: retry with smaller ones */
        for (double step = 2.5e-4; rc == 0 && rel > CHECK_TOLERANCE && step > 1e-5; step /= 4) {
            rc = finite_difference(model, m, n, in, tg, w, i, analytic[i], loss0, step, &f2, &rel2);
            if (rc == 0 && rel2 < rel) {
                rel = rel2;
                f = f2;
            }
        }
        failed += rc == 0 && rel > CHECK_TOLERANCE;
        if (rc == 0 && (rel > max_rel || k == 0)) {
            max_rel = rel;
            worst = i;
            worst_f = f;
        }
    }
    free(probe);
    if (rc < 0) {
        error("gradient check: loss_grad failed: %s", model->last_error(m));
        goto fail;
    }
    if (!isfinite(loss0)) {
        status = STATUS_INPUT;
        error("gradient check: the loss of a random batch is %g", (double)loss0);
        goto fail;
    }
    /* A float32 forward pass limits finite differences: a deep ReLU/max-pool
     * model always has some unit whose kink falls inside a probe's step. A
     * wrong gradient fails a whole tensor; so at most 2% of the probes may
     * miss the tolerance, and none by more than 5 times. */
    int ok = failed * 50 <= count && max_rel <= 5 * CHECK_TOLERANCE;
    printf("gradient check: max rel error %.3g over %zu weights (%zu above %g): %s\n", max_rel, count, failed,
           CHECK_TOLERANCE, ok ? "ok" : "FAILED");
    fflush(stdout);
    if (failed) {
        const char *tensor = "";
        for (int t = 0; model->weights && t < model->num_weights; t++)
            if (model->weights[t].offset <= worst)
                tensor = model->weights[t].name;
        fprintf(stderr, "worst: weight %zu of %zu (%s): analytic %.6g, finite difference %.6g\n", worst, num,
                tensor, (double)analytic[worst], worst_f);
    }
    status = ok && agree ? STATUS_OK : STATUS_INPUT;
fail:
    for (int i = 0; i < NNRT_MAX_IO; i++) {
        free(x[i]);
        free(y[i]);
    }
    free(analytic);
    if (m)
        model->free_model(m);
    return status;
}

/* ---- regression tests (nncc --emit-test) ------------------------------------ */

/* One group of values against the expected ones (max_rel_difference, with
 * values below `floor` of the group's largest compared as if that large).
 * Prints a line; 1 if all agree. */
static int agree(const char *what, const float *got, const float *want, size_t count, double floor, double tol)
{
    size_t at;
    double worst = max_rel_difference(got, want, count, floor, &at);
    int ok = worst <= tol;
    printf("regression: %-22s %8zu value(s), max rel difference %.3g: %s\n", what, count, worst, ok ? "ok" : "FAILED");
    if (!ok)
        printf("  worst: value %zu is %.9g, expected %.9g\n", at, (double)got[at], (double)want[at]);
    return ok;
}

int nnrt_regression_test(const NnrtModel *model, const NnrtRegression *e)
{
    if (!model || !e || !model->new_model || !model->loss_grad || !model->grads || !model->predict || e->n == 0 ||
        e->n > 64)
        return NNRT_EINVAL;
    float *x[NNRT_MAX_IO] = {0}, *out[NNRT_MAX_IO] = {0}, *got = NULL, loss = 0;
    void *y[NNRT_MAX_IO] = {0};
    const float *in[NNRT_MAX_IO];
    const void *tg[NNRT_MAX_IO];
    size_t total = 0;
    int rc = NNRT_ENOMEM;
    void *m = nnrt_model_new(model, e->seed);
    for (int j = 0; j < model->num_outputs; j++)
        total += e->n * (size_t)model->output_size[j];
    if (total != e->num_outputs) {
        fprintf(stderr, "regression: %s has %zu output values for %zu samples, the test expects %zu; "
                "regenerate the test with nncc --emit-test\n", model->name, total, e->n, e->num_outputs);
        rc = NNRT_EMISMATCH;
        goto done;
    }
    if (!m || random_batch(model, e->n, e->seed, x, y) < 0 || !(got = malloc((total + e->num_grads + 1) * sizeof *got)))
        goto done;
    for (int i = 0; i < model->num_inputs; i++)
        in[i] = x[i];
    for (int j = 0; j < model->num_outputs; j++)
        tg[j] = y[j];
    for (int j = 0, at = 0; j < model->num_outputs; j++) {
        out[j] = got + at;
        at += (int)(e->n * (size_t)model->output_size[j]);
    }
    if ((rc = model->loss_grad(m, e->n, in, tg, &loss)) < 0 || (rc = model->predict(m, e->n, in, out)) < 0) {
        fprintf(stderr, "regression: %s: %s\n", model->name, model->last_error(m));
        goto done;
    }
    const float *g = model->grads(m);
    double sums[2] = {0, 0};
    for (size_t i = 0; i < model->num_params; i++) {
        sums[0] += fabs((double)g[i]);
        sums[1] += (double)g[i] * g[i];
    }
    float *picked = got + total;
    for (size_t k = 0; k < e->num_grads; k++) {
        if (e->grad_index[k] >= model->num_params) {
            fprintf(stderr, "regression: gradient index %zu is past the model's %zu weights\n", e->grad_index[k],
                    model->num_params);
            rc = NNRT_EMISMATCH;
            goto done;
        }
        picked[k] = g[e->grad_index[k]];
    }
    float got_sums[2] = {(float)sums[0], (float)sums[1]}, want_sums[2] = {(float)e->grad_abs_sum, (float)e->grad_sq_sum};
    /* A sampled weight's gradient is a sum over the batch (and, for a
     * convolution's kernel, over every position: 25,088 terms in
     * fashion_cnn's first layer) whose terms nearly cancel. It keeps only the
     * absolute rounding error of the large terms, which another summation
     * order changes: a multi-threaded GEMM's, or a memory plan's other
     * im2col group. Two OpenBLAS threads moved fashion_cnn's first kernel
     * gradients by up to 2e-4 (1e-7 on one thread). So gradients are compared
     * at ten times the tolerance, and one below a tenth of the largest
     * sampled gradient as if it were that tenth; the loss, the outputs and the
     * sums |g|, g^2 stay element-wise at the tolerance. */
    int ok = agree("loss", &loss, &e->loss, 1, 1e-6, e->tolerance);
    ok &= agree("outputs", got, e->outputs, total, 1e-6, e->tolerance);
    ok &= agree("gradients", picked, e->grad_value, e->num_grads, 0.1, 10 * e->tolerance);
    ok &= agree("gradient sums |g|, g^2", got_sums, want_sums, 2, 1e-6, e->tolerance);
    printf("regression: %s: %s\n", model->name, ok ? "ok" : "FAILED");
    rc = ok ? 0 : 1;
done:
    for (int i = 0; i < NNRT_MAX_IO; i++) {
        free(x[i]);
        free(y[i]);
    }
    free(got);
    if (m)
        model->free_model(m);
    return rc;
}

/* ---- entry ----------------------------------------------------------------- */

/* The steps of a sequence in src's input i: its n_steps, or axis 1 of the
 * array it names; 0 when it cannot tell (its loader reports the problem). */
static size_t source_steps(const NnrtDataSource *src, int i)
{
    if (src->format == NNRT_DATA_TIME_SERIES)
        return src->n_steps > 0 ? (size_t)src->n_steps : 0;
    if ((src->format != NNRT_DATA_NPY && src->format != NNRT_DATA_HDF5) || !src->x)
        return 0;
    char path[4096], err[256];
    const char *at = src->x;  /* comma-separated, one per input */
    for (int k = 0; k < i && at; k++)
        if ((at = strchr(at, ',')))
            at++;
    if (!at)
        return 0;
    size_t len = strcspn(at, ",");
    if (len >= sizeof path)
        return 0;
    memcpy(path, at, len);
    path[len] = 0;
    NnrtArray a = {0};
    int rc = src->format == NNRT_DATA_NPY ? nnrt_npy_load(path, &a, err, sizeof err)
                                          : nnrt_hdf5_load(src->path, path, &a, err, sizeof err);
    size_t steps = rc == 0 && a.rank >= 2 ? (size_t)a.shape[1] : 0;
    nnrt_array_free(&a);
    return steps;
}

/* A model with a variable time axis runs at the sequence length of the
 * command's data (the compiled maximum for check): *at is its description
 * at that length. */
static int at_data_length(const NnrtModel *model, const NnrtFitConfig *fit, const Options *o, NnrtModel *at)
{
    int input = 0;
    while (input < model->num_inputs && !model->input_vtime[input])
        input++;
    NnrtDataSource src = {.format = NNRT_DATA_NPY};
    const char *const *paths = !strcmp(o->command, "predict") ? o->inputs
                             : !strcmp(o->command, "evaluate") && o->num_data ? o->data : NULL;
    if (paths && input < model->num_inputs)
        src.x = paths[input];
    else if (fit && !strcmp(o->command, "evaluate") && fit->test.format)
        src = fit->test;
    else if (fit && strcmp(o->command, "check") != 0)
        src = fit->train;
    size_t steps = input < model->num_inputs ? source_steps(&src, paths ? 0 : input) : 0;
    if (!steps)
        steps = model->max_timesteps;
    if (steps > model->max_timesteps) {
        error("the data's sequences have %zu steps, but %s was compiled for at most %zu; "
              "recompile with  max_timesteps: %zu  on the input", steps, model->name, model->max_timesteps, steps);
        return STATUS_INPUT;
    }
    return nnrt_model_at_timesteps(model, steps, at) < 0 ? STATUS_INTERNAL : STATUS_OK;
}

int nnrt_main(int argc, char **argv, const NnrtModel *model, const NnrtFitConfig *fit)
{
    const char *program = argc > 0 && argv && argv[0] ? argv[0] : "model";
    Options o;

    if (!model || !argv || !model->new_model || !model->free_model || !model->last_error) {
        error("nnrt_main: no model");
        return STATUS_INTERNAL;
    }
    int parsed = parse_options(argc, argv, &o);
    if (parsed < 0) {
        usage(stdout, program);
        return STATUS_OK;
    }
    if (parsed > 0) {
        usage(stderr, program);
        return STATUS_INPUT;
    }
    /* weights files may come from anyone: libhdf5 reads them in a child process */
    nnrt_h5_set_policy(&(NnrtH5Policy){.isolate = 1, .allow_nonfinite = o.allow_nonfinite});
    int train = !strcmp(o.command, "train"), evaluate = !strcmp(o.command, "evaluate");
    int predict = !strcmp(o.command, "predict");
    if ((train && (!model->train_step || !model->evaluate || !model->save || !model->load_partial)) ||
        (evaluate && !model->evaluate) || (predict && !model->predict) ||
        (!train && o.weights && !model->load)) {
        error("%s was compiled without the code for %s (--inference-only?)", model->name, o.command);
        return STATUS_INPUT;
    }
    NnrtModel at;
    if (model->max_timesteps) {
        int rc = at_data_length(model, fit, &o, &at);
        if (rc != STATUS_OK)
            return rc;
        model = &at;
    }
    int status = train ? cmd_train(model, fit, &o)
               : evaluate ? cmd_evaluate(model, fit, &o)
               : predict ? cmd_predict(model, fit, &o)
               : cmd_check(model, fit, &o);
    /* Results are only delivered once stdout has taken them (a full disk, a closed pipe). */
    if (fflush(stdout) != 0 || ferror(stdout)) {
        error("cannot write to stdout: %s", strerror(errno));
        if (status == STATUS_OK)
            status = STATUS_INPUT;
    }
    return status;
}
