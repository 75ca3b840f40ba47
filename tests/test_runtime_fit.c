/* test_runtime_fit.c — fit.c, history.c and main.c of libnncc_rt, driven
 * through a hand-written NnrtModel.
 *
 * The model is a linear softmax classifier (4 features, 3 classes, sparse
 * labels, SGD lr 0.5) written out in C, with its own loss, gradients and a
 * raw "weights file"; it records every call it gets (batch sizes, validation
 * sizes, per-step losses) so the test can check what nnrt_fit fed it. Data
 * are three Gaussian blobs written as .npy files into a temporary folder.
 *
 * Checked: the loss falls; history shape, names and running means (sample
 * weighted); steps per epoch and the smaller last batch; split_first,
 * split_last and separate validation data; same seed, same history;
 * history.csv reads back; the SVG has one polyline per column; bad data
 * shapes and labels give messages naming the file; SIGINT stops after the
 * current step; nnrt_main's train, evaluate, predict and check commands,
 * including a check that must fail on a wrong gradient, and usage errors.
 *
 * Callbacks, on a scripted validation loss (evaluate reports given values):
 * EarlyStopping stops at the right epoch (patience, min_delta, baseline,
 * start_from_epoch, mode) and restores the best epoch's weights, which the
 * ModelCheckpoint(save_best_only) file holds too, also after Ctrl-C;
 * checkpoint filepath templates; ReduceLROnPlateau's cuts (patience,
 * cooldown, min_lr, min_delta) and the "lr" history column; CSVLogger's
 * file byte for byte (sorted columns, separator, "\r\n", append);
 * TerminateOnNaN; config errors before the first step. The hdf5 data
 * format gives the same fit as the same arrays in .npy files.
 */
#define _XOPEN_SOURCE 700

#include <ftw.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <fcntl.h>

#include "nnrt.h"

#define D 4                       /* features */
#define C 3                       /* classes */
#define NP (D * C + C)            /* kernel (D,C) then bias (C) */
#define MAX_LOG 4096

static int failures;

#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (!(cond)) {                                                         \
            failures++;                                                        \
            fprintf(stderr, "%s:%d: FAIL %s: ", __FILE__, __LINE__, #cond);    \
            fprintf(stderr, __VA_ARGS__);                                      \
            fputc('\n', stderr);                                               \
        }                                                                      \
    } while (0)

/* Test knobs the model reads (a test may have them; the runtime may not). */
static int grad_bug;              /* loss_grad returns 1.5x the gradient */
static long interrupt_at_step = -1; /* train_step raises SIGINT at this step */
static long nan_at_step = -1;     /* train_step reports a NaN loss at this step */
static const double *scripted_val_loss; /* evaluate call k reports this [k] as its loss */

/* ---- the hand-written model ---------------------------------------------- */

typedef struct {
    float w[NP];                  /* kernel (D,C) row-major, bias (C) */
    float g[NP];
    char error[128];
    long steps;                   /* train_step calls */
    size_t step_n[MAX_LOG];       /* batch size of each step */
    float step_loss[MAX_LOG];
    size_t max_n;
    long evals;
    size_t eval_n;                /* n of the last evaluate */
    float lr;                     /* SGD learning rate */
    float seen_w[64][NP];         /* the weights at each evaluate call (epoch ends) */
} Lin;

static void *lin_new(uint64_t seed)
{
    Lin *m = calloc(1, sizeof *m);
    NnrtRng r;
    if (!m)
        return NULL;
    nnrt_rng_seed(&r, seed);
    m->lr = 0.5f;
    for (int i = 0; i < D * C; i++)
        m->w[i] = (float)(0.2 * nnrt_rng_uniform(&r) - 0.1);
    return m;
}

static void lin_free(void *m) { free(m); }

/* probabilities (n,C) */
static void lin_forward(const Lin *m, size_t n, const float *x, float *p)
{
    for (size_t s = 0; s < n; s++) {
        float mx = -INFINITY, sum = 0;
        for (int c = 0; c < C; c++) {
            float z = m->w[D * C + c];
            for (int k = 0; k < D; k++)
                z += x[s * D + k] * m->w[k * C + c];
            p[s * C + c] = z;
            mx = fmaxf(mx, z);
        }
        for (int c = 0; c < C; c++)
            sum += (p[s * C + c] = expf(p[s * C + c] - mx));
        for (int c = 0; c < C; c++)
            p[s * C + c] /= sum;
    }
}

/* mean sparse crossentropy and accuracy; gradient into m->g when grad */
static int lin_loss(Lin *m, size_t n, const float *const in[], const void *const tg[], float *loss,
                    float *accuracy, int grad)
{
    if (!m || !in || !tg || !in[0] || !tg[0] || n == 0) {
        if (m)
            snprintf(m->error, sizeof m->error, "bad arguments");
        return NNRT_EINVAL;
    }
    const float *x = in[0];
    const int32_t *y = tg[0];
    float *p = malloc(n * C * sizeof *p);
    if (!p)
        return NNRT_ENOMEM;
    lin_forward(m, n, x, p);
    double l = 0, correct = 0;
    if (grad)
        memset(m->g, 0, sizeof m->g);
    for (size_t s = 0; s < n; s++) {
        int best = 0;
        for (int c = 1; c < C; c++)
            if (p[s * C + c] > p[s * C + best])
                best = c;
        correct += best == y[s];
        l -= log(fmax(p[s * C + y[s]], 1e-7));
        for (int c = 0; grad && c < C; c++) {
            float d = (p[s * C + c] - (c == y[s])) / (float)n;
            for (int k = 0; k < D; k++)
                m->g[k * C + c] += x[s * D + k] * d;
            m->g[D * C + c] += d;
        }
    }
    free(p);
    *loss = (float)(l / (double)n);
    if (accuracy)
        *accuracy = (float)(correct / (double)n);
    return 0;
}

static int lin_train_step(void *mv, size_t n, const float *const in[], const void *const tg[],
                          float *loss, float *metrics)
{
    Lin *m = mv;
    int rc = lin_loss(m, n, in, tg, loss, &metrics[0], 1);
    if (rc < 0)
        return rc;
    for (int i = 0; i < NP; i++)
        m->w[i] -= m->lr * m->g[i];
    if (m->steps == nan_at_step)
        *loss = NAN;
    if (m->steps < MAX_LOG) {
        m->step_n[m->steps] = n;
        m->step_loss[m->steps] = *loss;
    }
    if (n > m->max_n)
        m->max_n = n;
    if (m->steps++ == interrupt_at_step)
        raise(SIGINT);
    return 0;
}

static int lin_evaluate(void *mv, size_t n, const float *const in[], const void *const tg[],
                        float *loss, float *metrics)
{
    Lin *m = mv;
    if (m->evals < 64)
        memcpy(m->seen_w[m->evals], m->w, sizeof m->w);
    m->eval_n = n;
    int rc = lin_loss(m, n, in, tg, loss, &metrics[0], 0);
    if (rc == 0 && scripted_val_loss)
        *loss = (float)scripted_val_loss[m->evals];
    m->evals++;
    return rc;
}

static int lin_loss_grad(void *mv, size_t n, const float *const in[], const void *const tg[],
                         float *loss)
{
    Lin *m = mv;
    int rc = lin_loss(m, n, in, tg, loss, NULL, 1);
    for (int i = 0; rc == 0 && grad_bug && i < NP; i++)
        m->g[i] *= 1.5f;
    return rc;
}

static int lin_predict(void *mv, size_t n, const float *const in[], float *const out[])
{
    if (!mv || !in || !in[0] || !out || !out[0] || n == 0)
        return NNRT_EINVAL;
    lin_forward(mv, n, in[0], out[0]);
    return 0;
}

/* The test's "weights file": the raw block. */
static int lin_save(const void *mv, const char *path)
{
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(((const Lin *)mv)->w, sizeof(float), NP, f) == NP;
    if (f && fclose(f) != 0)
        ok = 0;
    return ok ? 0 : NNRT_EIO;
}

static int lin_load(void *mv, const char *path)
{
    Lin *m = mv;
    float w[NP + 1];
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(m->error, sizeof m->error, "cannot open");
        return NNRT_EIO;
    }
    size_t got = fread(w, sizeof(float), NP + 1, f);
    fclose(f);
    if (got != NP) {
        snprintf(m->error, sizeof m->error, "not a lin weights file");
        return NNRT_EMISMATCH;
    }
    memcpy(m->w, w, sizeof m->w);
    return 0;
}

static int lin_load_partial(void *mv, const char *path, FILE *report)
{
    int rc = lin_load(mv, path);
    if (rc == 0)
        fprintf(report, "loaded: dense\n");
    return rc;
}

static float *lin_params(void *mv) { return ((Lin *)mv)->w; }
static float *lin_grads(void *mv) { return ((Lin *)mv)->g; }
static const char *lin_last_error(const void *mv) { return ((const Lin *)mv)->error; }
static float lin_get_learning_rate(const void *mv) { return ((const Lin *)mv)->lr; }
static void lin_set_learning_rate(void *mv, float lr) { ((Lin *)mv)->lr = lr; }

static NnrtModel lin_model(void)
{
    NnrtModel M;
    memset(&M, 0, sizeof M);
    M.name = "lin";
    M.source = "test_runtime_fit.c";
    M.max_batch = 16;
    M.num_inputs = 1;
    M.num_outputs = 1;
    M.num_metrics = 1;
    M.input_size[0] = D;
    M.input_rank[0] = 1;
    M.input_shape[0][0] = D;
    M.output_size[0] = C;
    M.target_size[0] = 1;
    M.target_sparse[0] = 1;
    M.output_names[0] = "dense";
    M.metric_names[0] = "accuracy";
    M.num_params = NP;
    M.new_model = lin_new;
    M.free_model = lin_free;
    M.load = lin_load;
    M.load_partial = lin_load_partial;
    M.save = lin_save;
    M.predict = lin_predict;
    M.train_step = lin_train_step;
    M.evaluate = lin_evaluate;
    M.loss_grad = lin_loss_grad;
    M.params = lin_params;
    M.grads = lin_grads;
    M.last_error = lin_last_error;
    M.get_learning_rate = lin_get_learning_rate;
    M.set_learning_rate = lin_set_learning_rate;
    return M;
}

/* ---- data ------------------------------------------------------------------ */

static char dir[256];

static char *made_paths[512];     /* every at() result, freed at the end */
static int num_made_paths;

/* dir/name, valid until the end of the test */
static const char *at(const char *name)
{
    size_t len = strlen(dir) + strlen(name) + 2;
    char *p = malloc(len);
    if (!p || num_made_paths == 512)
        abort();
    snprintf(p, len, "%s/%s", dir, name);
    return made_paths[num_made_paths++] = p;
}

/* n samples of three blobs around 2 e_c, noise 0.7; features per sample = d */
static void write_blobs(const char *xname, const char *yname, size_t n, int d, uint64_t seed)
{
    float *x = malloc(n * (size_t)d * sizeof *x);
    int32_t *y = malloc(n * sizeof *y);
    NnrtRng r;
    char err[256];
    nnrt_rng_seed(&r, seed);
    for (size_t s = 0; s < n; s++) {
        y[s] = (int32_t)(s % C);
        for (int k = 0; k < d; k++)
            x[s * (size_t)d + (size_t)k] = (float)(0.7 * nnrt_rng_normal(&r) + (k == y[s] ? 2.0 : 0.0));
    }
    NnrtArray ax = {NNRT_F32, 2, {(int64_t)n, d}, x};
    NnrtArray ay = {NNRT_I32, 1, {(int64_t)n}, y};
    if (nnrt_npy_save(at(xname), &ax, err, sizeof err) < 0 || nnrt_npy_save(at(yname), &ay, err, sizeof err) < 0) {
        fprintf(stderr, "cannot write test data: %s\n", err);
        exit(2);
    }
    free(x);
    free(y);
}

static NnrtFitConfig base_config(void)
{
    NnrtFitConfig cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.model_file = "lin.yaml";
    cfg.train = (NnrtDataSource){.format = NNRT_DATA_NPY, .x = at("x.npy"), .y = at("y.npy")};
    cfg.test = (NnrtDataSource){.format = NNRT_DATA_NPY, .x = at("xt.npy"), .y = at("yt.npy")};
    cfg.split_first = 50;
    cfg.epochs = 5;
    cfg.batch_size = 16;
    cfg.shuffle = 1;
    cfg.seed = 7;
    return cfg;
}

/* Run fit on a fresh model; returns the model (caller frees). */
static Lin *run_fit(const NnrtModel *M, const NnrtFitConfig *cfg, NnrtHistory *h, int *rc,
                    char *err, size_t errlen)
{
    Lin *m = M->new_model(cfg->seed);
    err[0] = '\0';
    *rc = nnrt_fit(M, m, cfg, h, err, errlen);
    return m;
}

/* ---- capturing nnrt_main ---------------------------------------------------- */

static char captured_out[1 << 16], captured_err[1 << 16];

static void read_text(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "rb");
    size_t got = f ? fread(buf, 1, len - 1, f) : 0;
    buf[got] = '\0';
    if (f)
        fclose(f);
}

static int saved_out = -1, saved_err = -1;

/* stdout and stderr into files until capture_end, which reads them into captured_out/err */
static void capture_begin(void)
{
    fflush(stdout);
    fflush(stderr);
    saved_out = dup(1), saved_err = dup(2);
    int fo = open(at("stdout.txt"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int fe = open(at("stderr.txt"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fo, 1);
    dup2(fe, 2);
    close(fo);
    close(fe);
}

static void capture_end(void)
{
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, 1);
    dup2(saved_err, 2);
    close(saved_out);
    close(saved_err);
    read_text(at("stdout.txt"), captured_out, sizeof captured_out);
    read_text(at("stderr.txt"), captured_err, sizeof captured_err);
}

static int run_main(const NnrtModel *M, const NnrtFitConfig *fit, int argc, char **argv)
{
    capture_begin();
    int status = nnrt_main(argc, argv, M, fit);
    capture_end();
    return status;
}

/* nnrt_main(argc, {"lin", args..., NULL}) */
static int run_args(const NnrtModel *M, const NnrtFitConfig *fit, ...)
{
    char *argv[32] = {"lin"};
    int argc = 1;
    va_list ap;
    va_start(ap, fit);
    for (char *arg; argc < 31 && (arg = va_arg(ap, char *));)
        argv[argc++] = arg;
    va_end(ap);
    return run_main(M, fit, argc, argv);
}

#define MAIN(...) run_args(&M, &fit, __VA_ARGS__, (char *)NULL)

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && st.st_size > 0;
}

static int count_of(const char *text, const char *needle)
{
    int k = 0;
    for (const char *p = text; (p = strstr(p, needle)); p += strlen(needle))
        k++;
    return k;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* ---- tests ------------------------------------------------------------------ */

static void test_fit_split_first(const NnrtModel *M)
{
    NnrtFitConfig cfg = base_config();
    NnrtHistory h;
    char err[512];
    int rc;
    Lin *m = run_fit(M, &cfg, &h, &rc, err, sizeof err);
    CHECK(rc == 0, "fit: %s", err);
    CHECK(h.epochs == 5 && h.cols == 4, "epochs %d cols %d", h.epochs, h.cols);
    const char *names[4] = {"loss", "accuracy", "val_loss", "val_accuracy"};
    for (int c = 0; c < 4 && h.cols == 4; c++)
        CHECK(h.names[c] && !strcmp(h.names[c], names[c]), "name %d: %s", c, h.names[c]);
    if (h.epochs == 5) {
        CHECK(h.values[4 * 4] < 0.5 * h.values[0], "loss %g -> %g does not fall", h.values[0],
              h.values[16]);
        CHECK(h.values[4 * 4 + 3] > 0.9, "val accuracy %g", h.values[19]);
    }
    /* 150 training samples, batch 16: 10 steps, the last of 6 */
    CHECK(m->steps == 50, "steps %ld", m->steps);
    CHECK(m->max_n == 16, "max batch %zu", m->max_n);
    CHECK(m->step_n[9] == 6 && m->step_n[49] == 6, "last batch %zu", m->step_n[9]);
    size_t total = 0;
    for (int s = 0; s < 10; s++)
        total += m->step_n[s];
    CHECK(total == 150, "samples per epoch %zu", total);
    CHECK(m->evals == 5 && m->eval_n == 50, "validation: %ld calls, n %zu", m->evals, m->eval_n);
    /* loss is the batch-size-weighted mean of the epoch's step losses */
    for (int e = 0; e < h.epochs; e++) {
        double sum = 0;
        for (int s = 10 * e; s < 10 * e + 10; s++)
            sum += (double)m->step_loss[s] * (double)m->step_n[s];
        CHECK(fabs(sum / 150 - h.values[e * 4]) < 1e-9, "epoch %d loss %g vs %g", e, sum / 150,
              h.values[e * 4]);
    }

    /* history.csv and learning_curves.svg */
    CHECK(nnrt_history_write_csv(&h, at("history.csv"), err, sizeof err) == 0, "csv: %s", err);
    char text[1 << 15];
    read_text(at("history.csv"), text, sizeof text);
    CHECK(!strncmp(text, "epoch,loss,accuracy,val_loss,val_accuracy\n", 42), "csv header: %.60s", text);
    char *line = strchr(text, '\n');
    int rows = 0;
    while (line && line[1]) {
        char *p = line + 1, *end;
        long epoch = strtol(p, &end, 10);
        CHECK(epoch == rows, "csv epoch %ld on row %d", epoch, rows);
        for (int c = 0; c < 4 && rows < h.epochs; c++) {
            CHECK(*end == ',', "csv row %d", rows);
            double v = strtod(end + 1, &end);
            CHECK(v == h.values[rows * 4 + c], "csv value %d,%d: %.17g vs %.17g", rows, c, v,
                  h.values[rows * 4 + c]);
        }
        CHECK(*end == '\n', "csv row %d ends with %c", rows, *end);
        rows++;
        line = strchr(p, '\n');
    }
    CHECK(rows == 5, "csv rows %d", rows);

    CHECK(nnrt_history_write_svg(&h, "lin", at("curves.svg"), err, sizeof err) == 0, "svg: %s", err);
    read_text(at("curves.svg"), text, sizeof text);
    CHECK(!strncmp(text, "<svg", 4), "svg starts %.20s", text);
    CHECK(strstr(text, "</svg>\n") && strstr(text, "</svg>\n")[7] == '\0', "svg end");
    CHECK(count_of(text, "<polyline") == 4, "polylines %d", count_of(text, "<polyline"));
    CHECK(strstr(text, "#1f77b4") && strstr(text, "#d62728") && strstr(text, ">val_accuracy<"),
          "svg colors and legend");
    CHECK(strstr(text, ">0.0<") && strstr(text, ">1.0<"), "svg y ticks 0.0..1.0");
    CHECK(!file_exists(at("nonexistent/dir/h.csv")) &&
              nnrt_history_write_csv(&h, at("nonexistent/dir/h.csv"), err, sizeof err) == NNRT_EIO,
          "unwritable csv");

    /* the same seed gives the same history */
    NnrtHistory h2;
    Lin *m2 = run_fit(M, &cfg, &h2, &rc, err, sizeof err);
    CHECK(rc == 0 && h2.epochs == 5 && !memcmp(h.values, h2.values, 20 * sizeof(double)),
          "same seed, different history");
    nnrt_history_free(&h2);
    free(m2);
    cfg.seed = 8;
    m2 = run_fit(M, &cfg, &h2, &rc, err, sizeof err);
    CHECK(rc == 0 && memcmp(h.values, h2.values, 20 * sizeof(double)), "other seed, same history");
    nnrt_history_free(&h2);
    free(m2);

    nnrt_history_free(&h);
    CHECK(h.values == NULL && h.names[0] == NULL, "history_free");
    free(m);
}

static void test_fit_validation_forms(const NnrtModel *M)
{
    NnrtFitConfig cfg = base_config();
    NnrtHistory h;
    char err[512];
    int rc;

    cfg.split_first = 0;
    cfg.split_last = 0.1;
    cfg.epochs = 1;
    Lin *m = run_fit(M, &cfg, &h, &rc, err, sizeof err);
    size_t total = 0;
    for (long s = 0; s < m->steps; s++)
        total += m->step_n[s];
    CHECK(rc == 0 && total == 180 && m->steps == 12 && m->eval_n == 20,
          "split_last: rc %d, %zu samples in %ld steps, validation %zu (%s)", rc, total, m->steps,
          m->eval_n, err);
    nnrt_history_free(&h);
    free(m);

    cfg.split_last = 0;
    cfg.validation = (NnrtDataSource){.format = NNRT_DATA_NPY, .x = at("xt.npy"), .y = at("yt.npy")};
    m = run_fit(M, &cfg, &h, &rc, err, sizeof err);
    CHECK(rc == 0 && m->steps == 13 && m->eval_n == 60 && h.cols == 4,
          "validation data: rc %d, steps %ld, validation %zu", rc, m->steps, m->eval_n);
    nnrt_history_free(&h);
    free(m);

    cfg.validation.format = NNRT_DATA_NONE;
    cfg.epochs = 2;
    cfg.shuffle = 0;
    m = run_fit(M, &cfg, &h, &rc, err, sizeof err);
    CHECK(rc == 0 && h.cols == 2 && h.epochs == 2 && m->evals == 0 &&
              !strcmp(h.names[0], "loss") && !strcmp(h.names[1], "accuracy"),
          "no validation: rc %d cols %d evals %ld", rc, h.cols, m->evals);
    nnrt_history_free(&h);
    free(m);

    /* Ctrl-C during step 14 (epoch 2 of 13-step epochs): that step finishes, epoch 1 stays */
    interrupt_at_step = 13;
    m = run_fit(M, &cfg, &h, &rc, err, sizeof err);
    interrupt_at_step = -1;
    CHECK(rc == 0 && h.epochs == 1 && m->steps == 14, "interrupt: rc %d epochs %d steps %ld", rc,
          h.epochs, m->steps);
    struct sigaction now;
    sigaction(SIGINT, NULL, &now);
    CHECK(now.sa_handler == SIG_DFL, "SIGINT handler not restored");
    nnrt_history_free(&h);
    free(m);
}

static void test_bad_data(const NnrtModel *M)
{
    NnrtFitConfig cfg = base_config();
    NnrtHistory h;
    char err[512];
    int rc;
    Lin *m;

    /* 5 features where the model takes 4 */
    cfg.train.x = at("x5.npy");
    m = run_fit(M, &cfg, &h, &rc, err, sizeof err);
    CHECK(rc == NNRT_EMISMATCH && strstr(err, "x5.npy") && strstr(err, "takes 4"), "x5: %d %s", rc, err);
    CHECK(m->steps == 0 && h.epochs == 0, "trained on bad data");
    nnrt_history_free(&h);
    free(m);

    /* labels outside [0, 3) */
    cfg = base_config();
    cfg.train.y = at("ybad.npy");
    m = run_fit(M, &cfg, &h, &rc, err, sizeof err);
    CHECK(rc == NNRT_EMISMATCH && strstr(err, "ybad.npy") && strstr(err, "[0, 3)"), "ybad: %d %s", rc, err);
    nnrt_history_free(&h);
    free(m);

    /* fewer labels than samples */
    cfg.train.y = at("yt.npy");
    m = run_fit(M, &cfg, &h, &rc, err, sizeof err);
    CHECK(rc == NNRT_EMISMATCH && strstr(err, "x.npy has 200") && strstr(err, "yt.npy has 60"),
          "count: %d %s", rc, err);
    nnrt_history_free(&h);
    free(m);

    /* non-integer labels */
    cfg.train.y = at("yfloat.npy");
    m = run_fit(M, &cfg, &h, &rc, err, sizeof err);
    CHECK(rc < 0 && strstr(err, "yfloat.npy") && strstr(err, "integers"), "yfloat: %d %s", rc, err);
    nnrt_history_free(&h);
    free(m);

    /* a missing file */
    cfg.train.y = at("missing.npy");
    m = run_fit(M, &cfg, &h, &rc, err, sizeof err);
    CHECK(rc == NNRT_EIO && strstr(err, "missing.npy"), "missing: %d %s", rc, err);
    nnrt_history_free(&h);
    free(m);

    /* a validation split that leaves nothing to train on */
    cfg = base_config();
    cfg.split_first = 200;
    m = run_fit(M, &cfg, &h, &rc, err, sizeof err);
    CHECK(rc == NNRT_EMISMATCH && strstr(err, "split_first"), "split_first 200: %d %s", rc, err);
    nnrt_history_free(&h);
    free(m);
}

/* ---- callbacks -------------------------------------------------------------- */

/* nnrt_fit with stdout and stderr captured */
static Lin *capture_fit(const NnrtModel *M, const NnrtFitConfig *cfg, NnrtHistory *h, int *rc, char *err,
                        size_t errlen)
{
    capture_begin();
    Lin *m = run_fit(M, cfg, h, rc, err, errlen);
    capture_end();
    return m;
}

/* the raw weights file lin_save wrote equals w */
static int weights_file_equals(const char *path, const float *w)
{
    float back[NP + 1];
    FILE *f = fopen(path, "rb");
    size_t got = f ? fread(back, sizeof(float), NP + 1, f) : 0;
    if (f)
        fclose(f);
    return got == NP && !memcmp(back, w, sizeof back[0] * NP);
}

static NnrtFitConfig callback_config(void)
{
    NnrtFitConfig cfg = base_config();
    cfg.out_dir = dir;
    cfg.epochs = 10;
    return cfg;
}

/* val_loss falls for three epochs, then rises: EarlyStopping(patience=2,
 * restore_best_weights) stops after epoch 5 and puts back epoch 3's weights,
 * which ModelCheckpoint(save_best_only) wrote. */
static void test_early_stopping(const NnrtModel *M)
{
    static const double val[] = {0.9, 0.7, 0.5, 0.6, 0.65, 0.3, 0.2, 0.1, 0.1, 0.1, 0.1, 0.1};
    NnrtFitConfig cfg = callback_config();
    NnrtHistory h;
    char err[512];
    int rc;
    cfg.callbacks.early_stopping = (NnrtEarlyStopping){.enabled = 1, .monitor = "val_loss", .patience = 2,
                                                       .restore_best_weights = 1, .baseline = NAN};
    cfg.callbacks.checkpoint = (NnrtCheckpoint){.enabled = 1, .filepath = "ckpt/best.h5", .monitor = "val_loss",
                                                .save_best_only = 1};
    scripted_val_loss = val;
    Lin *m = capture_fit(M, &cfg, &h, &rc, err, sizeof err);
    CHECK(rc == 0 && h.epochs == 5 && m->steps == 50 && m->evals == 5, "early stopping: rc %d (%s), %d epochs, "
          "%ld steps", rc, err, h.epochs, m->steps);
    CHECK(h.epochs == 5 && h.values[2 * 4 + 2] == (double)(float)0.5 && h.values[4 * 4 + 2] == (double)(float)0.65,
          "scripted val_loss in the history");
    CHECK(!memcmp(m->w, m->seen_w[2], sizeof m->w) && memcmp(m->seen_w[4], m->seen_w[2], sizeof m->w),
          "restored weights are not epoch 3's");
    CHECK(weights_file_equals(at("ckpt/best.h5"), m->seen_w[2]), "checkpoint file is not epoch 3's weights");
    CHECK(strstr(captured_out, "Epoch 1: val_loss improved from inf to 0.90000, saving model to ") &&
              strstr(captured_out, "Epoch 3: val_loss improved from 0.70000 to 0.50000, saving model to ") &&
              strstr(captured_out, "ckpt/best.h5\n") &&
              strstr(captured_out, "Epoch 4: val_loss did not improve from 0.50000\n") &&
              strstr(captured_out, "Epoch 5: early stopping\n") &&
              strstr(captured_out, "Restoring model weights from the end of the best epoch: 3.\n") &&
              !strstr(captured_out, "Epoch 6/10"),
          "early stopping messages:\n%s", captured_out);
    nnrt_history_free(&h);
    free(m);

    /* the same run stopped by Ctrl-C in epoch 5: the checkpoint stays epoch 3's, the best weights come back */
    remove(at("ckpt/best.h5"));
    interrupt_at_step = 43;
    m = capture_fit(M, &cfg, &h, &rc, err, sizeof err);
    interrupt_at_step = -1;
    CHECK(rc == 0 && h.epochs == 4 && m->steps == 44, "interrupt: rc %d, %d epochs, %ld steps", rc, h.epochs,
          m->steps);
    CHECK(!memcmp(m->w, m->seen_w[2], sizeof m->w) && weights_file_equals(at("ckpt/best.h5"), m->seen_w[2]),
          "after Ctrl-C: weights and checkpoint not epoch 3's");
    nnrt_history_free(&h);
    free(m);

    /* without restore_best_weights the last weights stay; patience 0 stops at the first non-improvement */
    cfg.callbacks.checkpoint.enabled = 0;
    cfg.callbacks.early_stopping.restore_best_weights = 0;
    cfg.callbacks.early_stopping.patience = 0;
    m = capture_fit(M, &cfg, &h, &rc, err, sizeof err);
    CHECK(rc == 0 && h.epochs == 4 && !memcmp(m->w, m->seen_w[3], sizeof m->w) &&
              !strstr(captured_out, "Restoring"), "patience 0: %d epochs", h.epochs);
    nnrt_history_free(&h);
    free(m);

    /* min_delta 0.15: 0.7 -> 0.5 counts, 0.5 -> 0.45 -> 0.4 does not (without it, no stop) */
    static const double slow[] = {0.9, 0.7, 0.5, 0.45, 0.4, 0.2, 0.1, 0.1, 0.1, 0.1, 0.1};
    scripted_val_loss = slow;
    cfg.callbacks.early_stopping.patience = 2;
    cfg.callbacks.early_stopping.min_delta = -0.15;   /* Keras takes |min_delta| */
    m = capture_fit(M, &cfg, &h, &rc, err, sizeof err);
    CHECK(rc == 0 && h.epochs == 5, "min_delta 0.15: %d epochs (want 5)", h.epochs);
    nnrt_history_free(&h);
    free(m);
    cfg.callbacks.early_stopping.min_delta = 0;
    m = capture_fit(M, &cfg, &h, &rc, err, sizeof err);
    CHECK(rc == 0 && h.epochs == 9, "min_delta 0: %d epochs (want 9)", h.epochs);
    nnrt_history_free(&h);
    free(m);

    /* baseline: improvements that do not beat it never restart the wait; an improving epoch never stops */
    scripted_val_loss = val;
    cfg.callbacks.early_stopping.baseline = 0.4;
    m = capture_fit(M, &cfg, &h, &rc, err, sizeof err);
    CHECK(rc == 0 && h.epochs == 4 && strstr(captured_out, "Epoch 4: early stopping"), "baseline 0.4: %d epochs "
          "(want 4)", h.epochs);
    nnrt_history_free(&h);
    free(m);
    cfg.callbacks.early_stopping.baseline = NAN;

    /* start_from_epoch 3: epochs 1-3 are not watched, so 0.6 (epoch 4) is the first best */
    cfg.callbacks.early_stopping.start_from_epoch = 3;
    m = capture_fit(M, &cfg, &h, &rc, err, sizeof err);
    CHECK(rc == 0 && h.epochs == 10, "start_from_epoch 3: %d epochs (want 10)", h.epochs);
    nnrt_history_free(&h);
    free(m);
    cfg.callbacks.early_stopping.start_from_epoch = 0;

    /* mode max on val_loss: 0.9 is the best, epochs 2 and 3 are worse */
    cfg.callbacks.early_stopping.mode = 2;
    m = capture_fit(M, &cfg, &h, &rc, err, sizeof err);
    CHECK(rc == 0 && h.epochs == 3, "mode max: %d epochs (want 3)", h.epochs);
    nnrt_history_free(&h);
    free(m);
    scripted_val_loss = NULL;
}

/* filepath templates, every epoch saved */
static void test_checkpoint_paths(const NnrtModel *M)
{
    static const double val[] = {0.9, 0.7, 0.5};
    NnrtFitConfig cfg = callback_config();
    NnrtHistory h;
    char err[512];
    int rc;
    cfg.epochs = 3;
    cfg.callbacks.checkpoint = (NnrtCheckpoint){.enabled = 1,
                                                .filepath = "e{epoch}-{epoch:03d}-{val_loss:.2f}-{loss}{{x}}.h5"};
    scripted_val_loss = val;
    Lin *m = capture_fit(M, &cfg, &h, &rc, err, sizeof err);
    scripted_val_loss = NULL;
    char name[256], repr[64];
    snprintf(repr, sizeof repr, "%.17g", h.values[0]);   /* Python's repr: shortest that reads back */
    for (int digits = 15; digits <= 17; digits++) {
        snprintf(repr, sizeof repr, "%.*g", digits, h.values[0]);
        if (strtod(repr, NULL) == h.values[0])
            break;
    }
    snprintf(name, sizeof name, "e1-001-0.90-%s{x}.h5", repr);
    CHECK(rc == 0 && weights_file_equals(at(name), m->seen_w[0]), "checkpoint %s missing (%s)", name, err);
    CHECK(strstr(captured_out, "Epoch 1: saving model to ") && strstr(captured_out, name), "message:\n%s",
          captured_out);
    snprintf(name, sizeof name, "e3-003-0.50-");
    CHECK(strstr(captured_out, name), "epoch 3 checkpoint:\n%s", captured_out);
    nnrt_history_free(&h);
    free(m);

    /* bad templates and monitors fail before the first step */
    static const struct { const char *filepath, *monitor, *want; int rc; } bad[] = {
        {"w_{val_acc}.h5", "val_loss", "'{val_acc}' names no value", NNRT_EINVAL},
        {"w_{epoch:.2d}.h5", "val_loss", "not supported", NNRT_EINVAL},
        {"w_{val_loss:d}.h5", "val_loss", "not supported", NNRT_EINVAL},
        {"w_{epoch.h5", "val_loss", "without its '}'", NNRT_EINVAL},
        {"w_}.h5", "val_loss", "single '}'", NNRT_EINVAL},
        {"w.h5", "val_mse", "monitors 'val_mse'", NNRT_EMISMATCH},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cfg.callbacks.checkpoint = (NnrtCheckpoint){.enabled = 1, .filepath = bad[i].filepath,
                                                    .monitor = bad[i].monitor, .save_best_only = 1};
        m = run_fit(M, &cfg, &h, &rc, err, sizeof err);
        CHECK(rc == bad[i].rc && strstr(err, bad[i].want) && m->steps == 0, "%s: rc %d: %s", bad[i].filepath, rc,
              err);
        nnrt_history_free(&h);
        free(m);
    }
    /* val_ monitors without validation data */
    cfg.callbacks.checkpoint.enabled = 0;
    cfg.split_first = 0;
    cfg.callbacks.early_stopping = (NnrtEarlyStopping){.enabled = 1, .monitor = "val_loss", .baseline = NAN};
    m = run_fit(M, &cfg, &h, &rc, err, sizeof err);
    CHECK(rc == NNRT_EMISMATCH && strstr(err, "EarlyStopping monitors 'val_loss'") &&
              strstr(err, "records loss, accuracy") && strstr(err, "validation data"), "no validation: %s", err);
    nnrt_history_free(&h);
    free(m);
}

/* ReduceLROnPlateau(factor 0.5, patience 2, cooldown 1, min_lr 0.1) on a plateau from epoch 2 */
static void test_reduce_lr(const NnrtModel *model)
{
    static const double val[] = {1.0, 0.9, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95, 0.95};
    NnrtModel M = *model;
    NnrtFitConfig cfg = callback_config();
    NnrtHistory h;
    char err[512];
    int rc;
    cfg.callbacks.reduce_lr = (NnrtReduceLr){.enabled = 1, .monitor = "val_loss", .factor = 0.5, .min_delta = 1e-4,
                                             .min_lr = 0.1, .patience = 2, .cooldown = 1};
    scripted_val_loss = val;
    Lin *m = capture_fit(&M, &cfg, &h, &rc, err, sizeof err);
    CHECK(rc == 0 && h.epochs == 10 && h.cols == 5 && !strcmp(h.names[4], "lr"), "reduce lr: rc %d (%s), cols %d",
          rc, err, h.cols);
    /* the rate each epoch ran with: cut after epochs 4, 6 and 8 (to min_lr), not after 10 */
    static const float want[10] = {0.5f, 0.5f, 0.5f, 0.5f, 0.25f, 0.25f, 0.125f, 0.125f, 0.1f, 0.1f};
    for (int e = 0; e < h.epochs && h.cols == 5; e++)
        CHECK(h.values[e * 5 + 4] == (double)want[e], "lr of epoch %d: %g, want %g", e + 1, h.values[e * 5 + 4],
              (double)want[e]);
    CHECK(m->lr == 0.1f, "final lr %g", (double)m->lr);
    CHECK(strstr(captured_out, "Epoch 4: ReduceLROnPlateau reducing learning rate to 0.25.\n") &&
              strstr(captured_out, "Epoch 6: ReduceLROnPlateau reducing learning rate to 0.125.\n") &&
              strstr(captured_out, "Epoch 8: ReduceLROnPlateau reducing learning rate to 0.1.\n") &&
              count_of(captured_out, "ReduceLROnPlateau") == 3 && !strstr(captured_out, " - lr: "),
          "reduce lr messages:\n%s", captured_out);
    nnrt_history_free(&h);
    free(m);

    /* min_delta: 1.0 -> 0.9 is no improvement beyond 0.2, so the first cut comes after epoch 3 */
    cfg.callbacks.reduce_lr.min_delta = 0.2;
    cfg.callbacks.reduce_lr.min_lr = 0;
    cfg.epochs = 3;
    m = capture_fit(&M, &cfg, &h, &rc, err, sizeof err);
    CHECK(rc == 0 && m->lr == 0.25f && strstr(captured_out, "Epoch 3: ReduceLROnPlateau"), "min_delta 0.2: lr %g",
          (double)m->lr);
    nnrt_history_free(&h);
    free(m);
    scripted_val_loss = NULL;

    cfg.callbacks.reduce_lr.factor = 1.0;
    m = run_fit(&M, &cfg, &h, &rc, err, sizeof err);
    CHECK(rc == NNRT_EINVAL && strstr(err, "factor") && m->steps == 0, "factor 1: %s", err);
    nnrt_history_free(&h);
    free(m);
    cfg.callbacks.reduce_lr.factor = 0.5;
    M.set_learning_rate = NULL;
    m = run_fit(&M, &cfg, &h, &rc, err, sizeof err);
    CHECK(rc == NNRT_EINVAL && strstr(err, "learning rate") && m->steps == 0, "no set_learning_rate: %s", err);
    nnrt_history_free(&h);
    free(m);
}

/* CSVLogger: Keras's columns (epoch, then the names sorted), "\r\n", append */
static void test_csv_logger(const NnrtModel *M)
{
    NnrtFitConfig cfg = callback_config();
    NnrtHistory h;
    char err[512], text[1 << 14], want[1 << 14];
    int rc;
    cfg.epochs = 3;
    cfg.callbacks.csv_logger = (NnrtCsvLogger){.enabled = 1, .filename = "logs/train.csv", .separator = ';'};
    Lin *m = capture_fit(M, &cfg, &h, &rc, err, sizeof err);
    CHECK(rc == 0 && h.epochs == 3, "csv logger fit: %d %s", rc, err);
    /* history order: loss, accuracy, val_loss, val_accuracy; sorted: accuracy, loss, val_accuracy, val_loss */
    size_t at_ = (size_t)snprintf(want, sizeof want, "epoch;accuracy;loss;val_accuracy;val_loss\r\n");
    for (int e = 0; e < h.epochs; e++) {
        int order[4] = {1, 0, 3, 2};
        at_ += (size_t)snprintf(want + at_, sizeof want - at_, "%d", e);
        for (int c = 0; c < 4; c++) {
            char num[64];
            double v = h.values[e * 4 + order[c]];
            for (int digits = 15; digits <= 17; digits++) {
                snprintf(num, sizeof num, "%.*g", digits, v);
                if (strtod(num, NULL) == v)
                    break;
            }
            if (!strpbrk(num, ".e"))
                strcat(num, ".0");
            at_ += (size_t)snprintf(want + at_, sizeof want - at_, ";%s", num);
        }
        at_ += (size_t)snprintf(want + at_, sizeof want - at_, "\r\n");
    }
    read_text(at("logs/train.csv"), text, sizeof text);
    CHECK(!strcmp(text, want), "CSVLogger file:\n%s\nwant:\n%s", text, want);
    nnrt_history_free(&h);
    free(m);

    /* append: two more rows, no second header */
    cfg.epochs = 2;
    cfg.callbacks.csv_logger.append = 1;
    m = capture_fit(M, &cfg, &h, &rc, err, sizeof err);
    read_text(at("logs/train.csv"), text, sizeof text);
    CHECK(rc == 0 && count_of(text, "epoch;") == 1 && count_of(text, "\r\n") == 6 && strstr(text, "\r\n1;"),
          "appended CSVLogger file:\n%s", text);
    nnrt_history_free(&h);
    free(m);

    /* without append the file starts over; with ReduceLROnPlateau "lr" joins the sorted columns */
    cfg.callbacks.csv_logger = (NnrtCsvLogger){.enabled = 1, .filename = "logs/train.csv"};
    cfg.callbacks.reduce_lr = (NnrtReduceLr){.enabled = 1, .monitor = "loss", .factor = 0.1, .min_delta = 1e-4,
                                             .patience = 10};
    m = capture_fit(M, &cfg, &h, &rc, err, sizeof err);
    read_text(at("logs/train.csv"), text, sizeof text);
    CHECK(rc == 0 && !strncmp(text, "epoch,accuracy,loss,lr,val_accuracy,val_loss\r\n0,", 48) &&
              count_of(text, "\r\n") == 3 && count_of(text, ",0.5,") == 2, "CSVLogger with lr:\n%s", text);
    nnrt_history_free(&h);
    free(m);
}

/* TerminateOnNaN: a NaN loss in step 14 (epoch 2, batch 3) ends that epoch and the fit */
static void test_terminate_on_nan(const NnrtModel *M)
{
    NnrtFitConfig cfg = callback_config();
    NnrtHistory h;
    char err[512];
    int rc;
    cfg.epochs = 4;
    cfg.callbacks.terminate_on_nan = 1;
    nan_at_step = 13;
    Lin *m = capture_fit(M, &cfg, &h, &rc, err, sizeof err);
    CHECK(rc == 0 && h.epochs == 2 && m->steps == 14 && m->evals == 2 && isnan(h.values[4]) && !isnan(h.values[0]),
          "terminate on NaN: rc %d, %d epochs, %ld steps, %ld evaluations", rc, h.epochs, m->steps, m->evals);
    CHECK(strstr(captured_out, "Batch 3: Invalid loss, terminating training\n") &&
              strstr(captured_out, " 4/10 [") && !strstr(captured_out, "Epoch 3/4"),
          "terminate on NaN output:\n%s", captured_out);
    nnrt_history_free(&h);
    free(m);
    /* without the callback, training goes on */
    cfg.callbacks.terminate_on_nan = 0;
    m = capture_fit(M, &cfg, &h, &rc, err, sizeof err);
    CHECK(rc == 0 && h.epochs == 4 && isnan(h.values[4]), "no TerminateOnNaN: %d epochs", h.epochs);
    nnrt_history_free(&h);
    free(m);
    nan_at_step = -1;
}

/* The hdf5 data format: the same blobs as x.npy/y.npy, from datasets of one
 * .h5 file (written with nnrt_h5_save, labels as float), give the same fit. */
static void test_hdf5_data(const NnrtModel *M)
{
    NnrtArray x = {0}, y = {0};
    char err[512];
    int rc;
    if (nnrt_npy_load(at("x.npy"), &x, err, sizeof err) < 0 || nnrt_npy_load(at("y.npy"), &y, err, sizeof err) < 0) {
        CHECK(0, "reload: %s", err);
        return;
    }
    float *block = malloc(200 * (D + 1) * sizeof *block);
    memcpy(block, x.data, 200 * D * sizeof *block);
    for (int i = 0; i < 200; i++)
        block[200 * D + i] = (float)((int32_t *)y.data)[i];
    const char *layers[] = {"blobs"};
    NnrtWeightInfo arrays[] = {{"blobs", "train/x", 2, {200, D}, 0, 1}, {"blobs", "train/y", 1, {200}, 200 * D, 1}};
    rc = nnrt_h5_save(at("blobs.h5"), layers, 1, arrays, 2, block, NULL, NULL, err, sizeof err);
    CHECK(rc == 0, "write blobs.h5: %s", err);
    free(block);
    nnrt_array_free(&x);
    nnrt_array_free(&y);

    NnrtFitConfig cfg = base_config();
    NnrtHistory h, h2;
    Lin *m = run_fit(M, &cfg, &h, &rc, err, sizeof err);
    cfg.train = (NnrtDataSource){.format = NNRT_DATA_HDF5, .path = at("blobs.h5"),
                                 .x = "model_weights/blobs/train/x", .y = "/model_weights/blobs/train/y"};
    Lin *m2 = run_fit(M, &cfg, &h2, &rc, err, sizeof err);
    CHECK(rc == 0 && h2.epochs == 5 && h.epochs == 5 && !memcmp(h.values, h2.values, 20 * sizeof(double)) &&
              !memcmp(m->w, m2->w, sizeof m->w), "hdf5 data fit differs from npy's (rc %d %s)", rc, err);
    nnrt_history_free(&h);
    nnrt_history_free(&h2);
    free(m);
    free(m2);

    NnrtDataset d;
    NnrtDataSource src = cfg.train;
    src.y = "model_weights/blobs/train/z";
    rc = nnrt_dataset_load(M, &src, &d, err, sizeof err);
    CHECK(rc == NNRT_EMISMATCH && strstr(err, "blobs.h5") && strstr(err, "no dataset 'model_weights/blobs/train/z'"),
          "missing dataset: %d %s", rc, err);
    src.y = "model_weights/blobs/train/x";
    rc = nnrt_dataset_load(M, &src, &d, err, sizeof err);
    CHECK(rc == NNRT_EMISMATCH && strstr(err, "blobs.h5:model_weights/blobs/train/x"), "x as labels: %d %s", rc, err);
    src.x = "model_weights/blobs/train/x;model_weights/blobs/train/x";
    rc = nnrt_dataset_load(M, &src, &d, err, sizeof err);
    CHECK(rc == NNRT_EMISMATCH && strstr(err, "takes 1 input") && strstr(err, "blobs.h5"), "two inputs: %s", err);
    src = (NnrtDataSource){.format = NNRT_DATA_HDF5, .x = "x"};
    rc = nnrt_dataset_load(M, &src, &d, err, sizeof err);
    CHECK(rc == NNRT_EINVAL && strstr(err, "path"), "hdf5 without a path: %s", err);
    src = (NnrtDataSource){.format = NNRT_DATA_HDF5, .path = at("x.npy"), .x = "x"};
    rc = nnrt_dataset_load(M, &src, &d, err, sizeof err);
    CHECK(rc == NNRT_EFORMAT && strstr(err, "x.npy") && strstr(err, "not an HDF5 file"), "npy as hdf5: %s", err);
}

static void test_main(const NnrtModel *model)
{
    NnrtModel M = *model;
    NnrtFitConfig fit = base_config();
    char out_dir[512], weights[600], xt[512], yt[512], pred[512], x5[512];
    int status;
    snprintf(out_dir, sizeof out_dir, "%s", at("out/nested"));
    snprintf(weights, sizeof weights, "%s/lin.h5", out_dir);
    snprintf(xt, sizeof xt, "%s", at("xt.npy"));
    snprintf(yt, sizeof yt, "%s", at("yt.npy"));
    snprintf(pred, sizeof pred, "%s", at("pred.npy"));
    snprintf(x5, sizeof x5, "%s", at("x5.npy"));

    status = MAIN("train", "--epochs", "3", "--out", out_dir);
    CHECK(status == 0, "train: %d %s", status, captured_err);
    CHECK(strstr(captured_out, "Epoch 1/3\n") && strstr(captured_out, "Epoch 3/3\n") &&
              strstr(captured_out, "10/10 [==============================] - ") &&
              (strstr(captured_out, "ms/step") || strstr(captured_out, "us/step")),
          "train progress:\n%s", captured_out);
    CHECK(!strchr(captured_out, '\r'), "\\r in non-terminal output");
    CHECK(strstr(captured_out, " - val_accuracy: ") && strstr(captured_out, "4/4 - ") &&
              strstr(captured_out, "\ntest accuracy: "), "train output:\n%s", captured_out);
    char path[700];
    snprintf(path, sizeof path, "%s/history.csv", out_dir);
    CHECK(file_exists(weights) && file_exists(path), "train outputs missing");
    snprintf(path, sizeof path, "%s/learning_curves.svg", out_dir);
    CHECK(file_exists(path), "learning_curves.svg missing");

    status = MAIN("train", "--epochs", "1", "--out", out_dir, "--weights", weights, "--seed", "3");
    CHECK(status == 0 && strstr(captured_out, "loaded: dense"), "train --weights: %d %s", status,
          captured_out);

    /* callbacks through train: files in --out; a CSVLogger on history.csv is kept, not overwritten */
    NnrtFitConfig with_callbacks = fit;
    with_callbacks.callbacks.csv_logger = (NnrtCsvLogger){.enabled = 1, .filename = "history.csv"};
    with_callbacks.callbacks.checkpoint = (NnrtCheckpoint){.enabled = 1, .filepath = "ckpt_{epoch}.h5"};
    status = run_args(&M, &with_callbacks, "train", "--epochs", "2", "--out", out_dir, (char *)NULL);
    char text[4096];
    snprintf(path, sizeof path, "%s/history.csv", out_dir);
    read_text(path, text, sizeof text);
    CHECK(status == 0 && !strncmp(text, "epoch,accuracy,loss,val_accuracy,val_loss\r\n", 43) &&
              count_of(text, "\r\n") == 3, "train with CSVLogger on history.csv: %d\n%s", status, text);
    snprintf(path, sizeof path, "%s/ckpt_2.h5", out_dir);
    CHECK(file_exists(path) && strstr(captured_out, "Epoch 2: saving model to "), "train with ModelCheckpoint");

    /* evaluate agrees with the model's own evaluate on those weights */
    status = MAIN("evaluate", "--weights", weights, "--data", xt, "--targets", yt);
    CHECK(status == 0, "evaluate: %d %s", status, captured_err);
    double loss = -1, acc = -1;
    char *p = strstr(captured_out, "loss: "), *q = strstr(captured_out, "\naccuracy: ");
    if (p && q) {
        loss = atof(p + 6);
        acc = atof(q + 11);
    }
    Lin *m = M.new_model(0);
    NnrtDataset d;
    char err[512];
    float ref_loss = 0, ref_acc = 0;
    NnrtDataSource src = {.format = NNRT_DATA_NPY, .x = xt, .y = yt};
    CHECK(lin_load(m, weights) == 0 && nnrt_dataset_load(&M, &src, &d, err, sizeof err) == 0, "%s", err);
    const float *in[1] = {d.x[0].data};
    const void *tg[1] = {d.y[0].data};
    lin_evaluate(m, d.n, in, tg, &ref_loss, &ref_acc);
    CHECK(fabs(loss - ref_loss) < 1e-4 && fabs(acc - ref_acc) < 1e-4, "evaluate %g %g vs %g %g",
          loss, acc, ref_loss, ref_acc);
    status = MAIN("evaluate", "--weights", weights);
    CHECK(status == 0 && strstr(captured_out, "accuracy: "), "evaluate on the test split: %d", status);
    status = MAIN("evaluate");
    CHECK(status == 0 && strstr(captured_err, "warning: no --weights"), "evaluate without weights");

    /* predict to .npy matches the model's own forward pass */
    status = MAIN("predict", "--weights", weights, "--input", xt, "--output", pred);
    CHECK(status == 0, "predict: %d %s", status, captured_err);
    NnrtArray a = {0};
    CHECK(nnrt_npy_load(pred, &a, err, sizeof err) == 0 && a.dtype == NNRT_F32 && a.rank == 2 &&
              a.shape[0] == (int64_t)d.n && a.shape[1] == C, "predict output shape");
    float *ref = malloc(d.n * C * sizeof *ref);
    lin_forward(m, d.n, d.x[0].data, ref);
    double maxdiff = 0;
    for (size_t i = 0; a.data && i < d.n * C; i++)
        maxdiff = fmax(maxdiff, fabs(((float *)a.data)[i] - ref[i]));
    CHECK(a.data && maxdiff == 0, "predict max difference %g", maxdiff);
    status = MAIN("predict", "--weights", weights, "--input", xt);
    CHECK(status == 0 && count_of(captured_out, "\n") == (int)d.n && count_of(captured_out, ",") == 2 * (int)d.n,
          "predict CSV: %d rows", count_of(captured_out, "\n"));
    char first[64];
    snprintf(first, sizeof first, "%.6g,%.6g,%.6g\n", ref[0], ref[1], ref[2]);
    CHECK(!strncmp(captured_out, first, strlen(first)), "CSV row %s vs %.40s", first, captured_out);
    nnrt_array_free(&a);
    free(ref);
    nnrt_dataset_free(&d);
    free(m);

    /* gradient check: passes, and fails on a wrong gradient */
    status = MAIN("check");
    CHECK(status == 0 && strstr(captured_out, "gradient check: max rel error ") &&
              strstr(captured_out, "over 15 weights (") && strstr(captured_out, "): ok"), "check: %d %s %s", status, captured_out,
          captured_err);
    grad_bug = 1;
    status = MAIN("check");
    grad_bug = 0;
    CHECK(status == 1 && strstr(captured_out, "FAILED"), "check with a wrong gradient: %d %s", status,
          captured_out);

    /* usage and input errors */
    CHECK(MAIN("fly") == 1 && strstr(captured_err, "unknown command") && strstr(captured_err, "usage:"),
          "unknown command");
    CHECK(MAIN("train", "--epochs") == 1 && strstr(captured_err, "needs a value"), "missing value");
    CHECK(MAIN("train", "--epochs", "x") == 1, "bad number");
    CHECK(MAIN("predict", "--epochs", "1") == 1 && strstr(captured_err, "does not take"), "wrong option");
    CHECK(MAIN("evaluate", "--data", xt) == 1, "--data without --targets");
    CHECK(MAIN("predict", "--input", x5) == 1 && strstr(captured_err, "x5.npy"), "predict bad shape: %s",
          captured_err);
    CHECK(MAIN("predict", "--weights", at("missing.h5"), "--input", xt) == 1, "missing weights");
    CHECK(MAIN("predict") == 1, "predict without --input");
    CHECK(MAIN("--help") == 0 && strstr(captured_out, "usage:"), "--help");
    char *argv_[] = {"lin", NULL};
    CHECK(run_main(&M, &fit, 1, argv_) == 1, "no command");
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/nnrt_fit_XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 2;
    }
    write_blobs("x.npy", "y.npy", 200, D, 1);
    write_blobs("xt.npy", "yt.npy", 60, D, 2);
    write_blobs("x5.npy", "y5.npy", 200, 5, 3);
    {
        int32_t y[200];
        float yf[200];
        char err[256];
        for (int i = 0; i < 200; i++) {
            y[i] = i % 4;
            yf[i] = (float)(i % 3) + 0.5f;
        }
        NnrtArray ay = {NNRT_I32, 1, {200}, y}, af = {NNRT_F32, 1, {200}, yf};
        if (nnrt_npy_save(at("ybad.npy"), &ay, err, sizeof err) < 0 ||
            nnrt_npy_save(at("yfloat.npy"), &af, err, sizeof err) < 0) {
            fprintf(stderr, "%s\n", err);
            return 2;
        }
    }

    NnrtModel M = lin_model();
    test_fit_split_first(&M);
    test_fit_validation_forms(&M);
    test_bad_data(&M);
    test_early_stopping(&M);
    test_checkpoint_paths(&M);
    test_reduce_lr(&M);
    test_csv_logger(&M);
    test_terminate_on_nan(&M);
    test_hdf5_data(&M);
    test_main(&M);

    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    for (int i = 0; i < num_made_paths; i++)
        free(made_paths[i]);
    if (failures) {
        fprintf(stderr, "test_runtime_fit: %d failure(s)\n", failures);
        return 1;
    }
    printf("test_runtime_fit: all passed\n");
    return 0;
}
