/* test_runtime_csv.c — the csv data format of libnncc_rt: nnrt_csv_load
 * (data.c), its checks against a model and the fit config's three sets
 * (nnrt_dataset_load, nnrt_fit_data_load in fit.c), and the driver's train
 * and evaluate on a csv split (main.c).
 *
 * Data are small CSV files the test writes: a boston-like file (a count line
 * for skip_rows 1, a quoted header, CRLF and blank lines, 10 rows where
 * a = 1..10, b = 2a, c = 10 and t the row id), the same gzipped, a
 * space-delimited file, broken files, and a linear-regression file for an
 * end-to-end run through a hand-written NnrtModel (linear regression with two
 * inputs, a "wide & deep" column grouping, mse, SGD). Standardization is
 * checked against numbers worked out by hand (mean 5.5 and population std
 * sqrt(8.25) for 1..10) and, on a split, against the mean and std of the
 * training rows recomputed here from the row ids.
 *
 * sklearn's boston_house_prices.csv and diabetes_data_raw.csv.gz (Debian's
 * python3-sklearn) are loaded when present and compared with values numpy
 * computed (np.loadtxt, X.mean(0), X.std(0)); when they are missing the test
 * says "skipped", and fails if NNCC_REQUIRE_SKLEARN=1.
 *
 * Prints "N passed, N failed" last; exit status 1 on any failure.
 */
#define _XOPEN_SOURCE 700

#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "nnrt.h"

#define SKLEARN_DATA "/usr/lib/python3/dist-packages/sklearn/datasets/data"

static int passed, failed;

#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (cond) {                                                            \
            passed++;                                                          \
        } else {                                                               \
            failed++;                                                          \
            fprintf(stderr, "%s:%d: FAIL %s: ", __FILE__, __LINE__, #cond);    \
            fprintf(stderr, __VA_ARGS__);                                      \
            fputc('\n', stderr);                                               \
        }                                                                      \
    } while (0)

/* ---- files ------------------------------------------------------------------ */

static char dir[256];
static char *made_paths[256];     /* every at() result, freed at the end */
static int num_made_paths;

/* dir/name, valid until the end of the test */
static const char *at(const char *name)
{
    size_t len = strlen(dir) + strlen(name) + 2;
    char *p = malloc(len);
    if (!p || num_made_paths == 256)
        abort();
    snprintf(p, len, "%s/%s", dir, name);
    return made_paths[num_made_paths++] = p;
}

static const char *write_text(const char *name, const char *text)
{
    const char *path = at(name);
    FILE *f = fopen(path, "wb");
    if (!f || fputs(text, f) == EOF || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(2);
    }
    return path;
}

static const char *write_gz(const char *name, const char *text)
{
    const char *path = at(name);
    gzFile gz = gzopen(path, "wb");
    if (!gz || gzputs(gz, text) < 0 || gzclose(gz) != Z_OK) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(2);
    }
    return path;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* boston-like: a count line, a quoted header (blanks around one name), rows
 * i = 1..10 with a = i, b = 2i, c = 10, t = i - 1; CRLF and blank lines mixed in. */
static const char small_csv[] =
    "10,4,,\n"
    "\"a\",\"b\", \"c\" ,\"t\"\r\n"
    "1,2,10,0\n"
    "2,4,10,1\r\n"
    "3, 6 ,10,2\n"
    "\n"
    "4,8,10,3\n"
    "5,10,10,4\n"
    "  \t\n"
    "6,12,10,5\n"
    "7,14,10,6\n"
    "8,16,10,7\n"
    "9,18,1e1,8\n"
    "10,20,10.0,9";                       /* no final newline */

static NnrtDataSource small_source(const char *path, const char *x, const char *y)
{
    return (NnrtDataSource){.format = NNRT_DATA_CSV, .x = x, .y = y, .path = path, .header = 1,
                            .skip_rows = 1, .delimiter = ','};
}

static float at2(const NnrtArray *a, size_t row, size_t col)
{
    return ((const float *)a->data)[row * (size_t)a->shape[1] + col];
}

static void free_parts(NnrtDataset parts[3])
{
    for (int k = 0; k < 3; k++)
        nnrt_dataset_free(&parts[k]);
}

static int same_array(const NnrtArray *a, const NnrtArray *b)
{
    return a->dtype == b->dtype && a->rank == b->rank && !memcmp(a->shape, b->shape, sizeof a->shape) &&
           a->data && b->data && !memcmp(a->data, b->data, nnrt_array_count(a) * 4);
}

/* ---- models --------------------------------------------------------------------
 * Descriptions for the shape checks, and one trainable model: linear
 * regression over every input's values, mse, SGD lr 0.05. Its shape comes from
 * reg_desc (new_model has no other way to know it); it records evaluate calls. */

static NnrtModel reg_desc;
static size_t reg_last_eval_n;
static long reg_evals;

typedef struct {
    float w[64];                  /* per input its input_size weights, then the bias */
    float g[64];
    char error[64];
} Reg;

static size_t reg_num_params(void)
{
    size_t n = 1;
    for (int i = 0; i < reg_desc.num_inputs; i++)
        n += (size_t)reg_desc.input_size[i];
    return n;
}

static void *reg_new(uint64_t seed)
{
    (void)seed;
    return calloc(1, sizeof(Reg));
}

static void reg_free(void *m) { free(m); }

static void reg_forward(const Reg *m, size_t n, const float *const in[], float *out)
{
    size_t bias = reg_num_params() - 1;
    for (size_t s = 0; s < n; s++) {
        float p = m->w[bias];
        size_t w = 0;
        for (int i = 0; i < reg_desc.num_inputs; i++) {
            size_t k = (size_t)reg_desc.input_size[i];
            for (size_t c = 0; c < k; c++)
                p += in[i][s * k + c] * m->w[w + c];
            w += k;
        }
        out[s] = p;
    }
}

static int reg_loss(Reg *m, size_t n, const float *const in[], const void *const tg[], float *loss, int grad)
{
    float *p = malloc(n * sizeof *p);
    const float *t = tg[0];
    if (!p || n == 0) {
        free(p);
        return NNRT_EINVAL;
    }
    reg_forward(m, n, in, p);
    double l = 0;
    size_t bias = reg_num_params() - 1;
    if (grad)
        memset(m->g, 0, sizeof m->g);
    for (size_t s = 0; s < n; s++) {
        double d = (double)p[s] - (double)t[s];
        l += d * d;
        if (!grad)
            continue;
        float gd = (float)(2 * d / (double)n);
        size_t w = 0;
        for (int i = 0; i < reg_desc.num_inputs; i++) {
            size_t k = (size_t)reg_desc.input_size[i];
            for (size_t c = 0; c < k; c++)
                m->g[w + c] += gd * in[i][s * k + c];
            w += k;
        }
        m->g[bias] += gd;
    }
    free(p);
    *loss = (float)(l / (double)n);
    return 0;
}

static int reg_train_step(void *mv, size_t n, const float *const in[], const void *const tg[], float *loss,
                          float *metrics)
{
    Reg *m = mv;
    (void)metrics;
    int rc = reg_loss(m, n, in, tg, loss, 1);
    for (size_t i = 0; rc == 0 && i < reg_num_params(); i++)
        m->w[i] -= 0.05f * m->g[i];
    return rc;
}

static int reg_evaluate(void *mv, size_t n, const float *const in[], const void *const tg[], float *loss,
                        float *metrics)
{
    (void)metrics;
    reg_evals++;
    reg_last_eval_n = n;
    return reg_loss(mv, n, in, tg, loss, 0);
}

static int reg_loss_grad(void *mv, size_t n, const float *const in[], const void *const tg[], float *loss)
{
    return reg_loss(mv, n, in, tg, loss, 1);
}

static int reg_predict(void *mv, size_t n, const float *const in[], float *const out[])
{
    reg_forward(mv, n, in, out[0]);
    return 0;
}

static int reg_save(const void *mv, const char *path)
{
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(((const Reg *)mv)->w, sizeof(float), 64, f) == 64;
    if (f && fclose(f) != 0)
        ok = 0;
    return ok ? 0 : NNRT_EIO;
}

static int reg_load(void *mv, const char *path)
{
    FILE *f = fopen(path, "rb");
    int ok = f && fread(((Reg *)mv)->w, sizeof(float), 64, f) == 64;
    if (f)
        fclose(f);
    return ok ? 0 : NNRT_EIO;
}

static int reg_load_partial(void *mv, const char *path, FILE *report)
{
    (void)report;
    return reg_load(mv, path);
}

static float *reg_params(void *mv) { return ((Reg *)mv)->w; }
static float *reg_grads(void *mv) { return ((Reg *)mv)->g; }
static const char *reg_last_error(const void *mv) { return ((const Reg *)mv)->error; }

/* A model taking inputs of the given sizes (flat, rank 1) and outputs of one
 * float target each; trainable when it is the regression model's shape. */
static NnrtModel describe(int num_inputs, const int64_t *input_sizes, int num_outputs)
{
    NnrtModel M;
    memset(&M, 0, sizeof M);
    M.name = "csvmodel";
    M.source = "test_runtime_csv.c";
    M.max_batch = 32;
    M.num_inputs = num_inputs;
    M.num_outputs = num_outputs;
    for (int i = 0; i < num_inputs; i++) {
        M.input_size[i] = input_sizes[i];
        M.input_rank[i] = 1;
        M.input_shape[i][0] = input_sizes[i];
    }
    for (int j = 0; j < num_outputs; j++) {
        M.output_size[j] = 1;
        M.target_size[j] = 1;
        M.output_names[j] = j ? "aux" : "main";
    }
    M.new_model = reg_new;
    M.free_model = reg_free;
    M.load = reg_load;
    M.load_partial = reg_load_partial;
    M.save = reg_save;
    M.predict = reg_predict;
    M.train_step = reg_train_step;
    M.evaluate = reg_evaluate;
    M.loss_grad = reg_loss_grad;
    M.params = reg_params;
    M.grads = reg_grads;
    M.last_error = reg_last_error;
    return M;
}

/* ---- nnrt_csv_load ---------------------------------------------------------------- */

static void test_parse(const char *small, const char *small_gz)
{
    NnrtDataset p[3], q[3];
    char err[1024];
    int rc;

    NnrtDataSource src = small_source(small, "a,b,c", "t");
    rc = nnrt_csv_load(&src, NULL, p, NULL, err, sizeof err);
    CHECK(rc == 0, "small.csv: %s", err);
    CHECK(p[0].n == 10 && p[1].n == 0 && p[2].n == 0, "rows %zu %zu %zu", p[0].n, p[1].n, p[2].n);
    CHECK(p[0].x[0].dtype == NNRT_F32 && p[0].x[0].rank == 2 && p[0].x[0].shape[0] == 10 &&
              p[0].x[0].shape[1] == 3, "x shape (%lld, %lld)", (long long)p[0].x[0].shape[0],
          (long long)p[0].x[0].shape[1]);
    CHECK(p[0].y[0].rank == 2 && p[0].y[0].shape[0] == 10 && p[0].y[0].shape[1] == 1 && !p[0].y[1].data &&
              !p[0].x[1].data, "y shape, no other groups");
    int values_ok = p[0].n == 10;
    for (size_t r = 0; values_ok && r < 10; r++)
        values_ok = at2(&p[0].x[0], r, 0) == (float)(r + 1) && at2(&p[0].x[0], r, 1) == (float)(2 * r + 2) &&
                    at2(&p[0].x[0], r, 2) == 10.0f && at2(&p[0].y[0], r, 0) == (float)r;
    CHECK(values_ok, "values in file order (quoted header, CRLF, blank lines, 1e1, no final newline)");

    /* the same columns by index, by quoted name, mixed */
    const char *same[][2] = {{"0,1,2", "3"}, {"\"a\", b ,2", "'t'"}, {" a,1, c", "t "}};
    for (int k = 0; k < 3; k++) {
        src = small_source(small, same[k][0], same[k][1]);
        rc = nnrt_csv_load(&src, NULL, q, NULL, err, sizeof err);
        CHECK(rc == 0 && same_array(&p[0].x[0], &q[0].x[0]) && same_array(&p[0].y[0], &q[0].y[0]),
              "x '%s' y '%s': %s", same[k][0], same[k][1], err);
        free_parts(q);
    }

    /* gzipped: the same arrays */
    src = small_source(small_gz, "a,b,c", "t");
    rc = nnrt_csv_load(&src, NULL, q, NULL, err, sizeof err);
    CHECK(rc == 0 && q[0].n == 10 && same_array(&p[0].x[0], &q[0].x[0]) && same_array(&p[0].y[0], &q[0].y[0]),
          "small.csv.gz: %s", err);
    free_parts(q);
    free_parts(p);

    /* '|' groups: inputs (a, b) and (c); outputs t and a */
    src = small_source(small, "a,b|c", "t|a");
    rc = nnrt_csv_load(&src, NULL, p, NULL, err, sizeof err);
    CHECK(rc == 0 && p[0].x[0].shape[1] == 2 && p[0].x[1].shape[1] == 1 && !p[0].x[2].data &&
              p[0].y[0].shape[1] == 1 && p[0].y[1].shape[1] == 1, "groups: %s", err);
    CHECK(rc == 0 && at2(&p[0].x[0], 3, 1) == 8 && at2(&p[0].x[1], 3, 0) == 10 && at2(&p[0].y[1], 3, 0) == 4,
          "group values");
    free_parts(p);

    /* space-delimited: runs of blanks and tabs, no header */
    const char *spaced = write_text("spaced.txt", "  1 \t 2   3\n\n4\t5 6\r\n 7 8 9 \n");
    src = (NnrtDataSource){.format = NNRT_DATA_CSV, .path = spaced, .x = "0,2", .y = "1", .delimiter = ' '};
    rc = nnrt_csv_load(&src, NULL, p, NULL, err, sizeof err);
    CHECK(rc == 0 && p[0].n == 3 && at2(&p[0].x[0], 1, 0) == 4 && at2(&p[0].x[0], 1, 1) == 6 &&
              at2(&p[0].y[0], 2, 0) == 8, "spaced: %s", err);
    free_parts(p);
    src.delimiter = '\t';                  /* a tab is a blank too */
    rc = nnrt_csv_load(&src, NULL, p, NULL, err, sizeof err);
    CHECK(rc == 0 && p[0].n == 3, "tab delimiter: %s", err);
    free_parts(p);

    /* inputs only (y empty) */
    src = small_source(small, "c", NULL);
    rc = nnrt_csv_load(&src, NULL, p, NULL, err, sizeof err);
    CHECK(rc == 0 && p[0].n == 10 && !p[0].y[0].data, "no y: %s", err);
    free_parts(p);
}

static void test_standardize(const char *small)
{
    NnrtDataset p[3];
    NnrtScaler s;
    char err[1024];

    /* by hand: a = 1..10 has mean 5.5 and population variance (10^2 - 1) / 12
     * = 8.25; b = 2a standardizes to the same values; c is constant: scale 1. */
    const double mean = 5.5, std = 2.8722813232690143;   /* sqrt(8.25) */
    const float a1 = -1.5666989036012806f;               /* (1 - 5.5) / sqrt(8.25) */
    NnrtDataSource src = small_source(small, "a,b|c", "t");
    src.standardize = 1;
    int rc = nnrt_csv_load(&src, NULL, p, &s, err, sizeof err);
    CHECK(rc == 0, "standardize: %s", err);
    if (rc == 0) {
        CHECK(s.columns == 3 && s.mean[0] == mean && fabs(s.scale[0] - std) < 1e-15 && s.mean[1] == 11 &&
                  fabs(s.scale[1] - 2 * std) < 1e-14 && s.mean[2] == 10 && s.scale[2] == 1,
              "scaler: %zu columns, mean %.17g scale %.17g, c: %g %g", s.columns, s.mean[0], s.scale[0],
              s.mean[2], s.scale[2]);
        CHECK(at2(&p[0].x[0], 0, 0) == a1 && at2(&p[0].x[0], 9, 0) == -a1 && at2(&p[0].x[0], 0, 1) == a1,
              "standardized a[0] %.9g a[9] %.9g b[0] %.9g, expected %.9g", at2(&p[0].x[0], 0, 0),
              at2(&p[0].x[0], 9, 0), at2(&p[0].x[0], 0, 1), a1);
        CHECK(fabsf(at2(&p[0].x[0], 4, 0) - (float)(-0.5 / std)) < 1e-7, "a[4] %.9g", at2(&p[0].x[0], 4, 0));
        CHECK(at2(&p[0].x[1], 3, 0) == 0, "constant column: %g", at2(&p[0].x[1], 3, 0));
        CHECK(at2(&p[0].y[0], 9, 0) == 9, "targets are not standardized");
    }
    free_parts(p);
    nnrt_scaler_free(&s);
    CHECK(s.mean == NULL && s.columns == 0, "scaler_free");

    /* given statistics are applied as they are */
    double m3[3] = {1, 0, 0}, s3[3] = {2, 1, 4};
    NnrtScaler given = {3, m3, s3};
    rc = nnrt_csv_load(&src, &given, p, &s, err, sizeof err);
    CHECK(rc == 0 && at2(&p[0].x[0], 2, 0) == 1.0f && at2(&p[0].x[0], 2, 1) == 6 && at2(&p[0].x[1], 0, 0) == 2.5f &&
              s.columns == 0, "fitted scaler applied: %s", err);
    free_parts(p);
    NnrtScaler two = {2, m3, s3};
    rc = nnrt_csv_load(&src, &two, p, NULL, err, sizeof err);
    CHECK(rc == NNRT_EMISMATCH && strstr(err, "3 x columns") && strstr(err, "cover 2"), "scaler width: %s", err);
}

/* Row ids (the t column) of a part. */
static void ids_of(const NnrtDataset *d, int *ids)
{
    for (size_t r = 0; r < d->n; r++)
        ids[r] = (int)at2(&d->y[0], r, 0);
}

static void test_split(const char *small)
{
    NnrtDataset p[3], q[3];
    char err[1024];
    int ids[3][10], again[3][10], seen[10] = {0};

    NnrtDataSource src = small_source(small, "a,b,c", "t");
    src.split[0] = 0.6, src.split[1] = 0.2, src.split[2] = 0.2;
    src.seed = 42;
    src.standardize = 1;
    int rc = nnrt_csv_load(&src, NULL, p, NULL, err, sizeof err);
    CHECK(rc == 0 && p[0].n == 6 && p[1].n == 2 && p[2].n == 2, "split 10 rows: %zu %zu %zu %s", p[0].n,
          p[1].n, p[2].n, err);
    if (rc != 0)
        return;
    int all = 1, shuffled = 0;
    for (int k = 0; k < 3; k++) {
        ids_of(&p[k], ids[k]);
        for (size_t r = 0; r < p[k].n; r++) {
            all = all && ids[k][r] >= 0 && ids[k][r] < 10 && !seen[ids[k][r]]++;
            shuffled |= k == 0 && ids[k][r] != (int)r;
        }
    }
    CHECK(all, "every row once across the parts");
    CHECK(shuffled, "the training part is not shuffled");

    /* StandardScaler fitted on the training rows only: recompute it from their
     * ids (a = id + 1), then every part is (a - mean) / std. */
    double sum = 0, sq = 0;
    for (int r = 0; r < 6; r++)
        sum += ids[0][r] + 1;
    double mean = sum / 6;
    for (int r = 0; r < 6; r++)
        sq += (ids[0][r] + 1 - mean) * (ids[0][r] + 1 - mean);
    double std = sqrt(sq / 6);
    double worst = 0;
    for (int k = 0; k < 3; k++)
        for (size_t r = 0; r < p[k].n; r++) {
            worst = fmax(worst, fabs(at2(&p[k].x[0], r, 0) - (ids[k][r] + 1 - mean) / std));
            worst = fmax(worst, fabs(at2(&p[k].x[0], r, 1) - (ids[k][r] + 1 - mean) / std));
            worst = fmax(worst, fabs(at2(&p[k].x[0], r, 2)));
        }
    CHECK(worst < 1e-6, "split standardization max difference %g", worst);

    /* the same seed, the same split; another seed, another */
    rc = nnrt_csv_load(&src, NULL, q, NULL, err, sizeof err);
    for (int k = 0; k < 3 && rc == 0; k++)
        ids_of(&q[k], again[k]);
    CHECK(rc == 0 && !memcmp(ids[0], again[0], 6 * sizeof(int)) && !memcmp(ids[1], again[1], 2 * sizeof(int)) &&
              !memcmp(ids[2], again[2], 2 * sizeof(int)) && same_array(&p[0].x[0], &q[0].x[0]),
          "seed 42 twice");
    free_parts(q);
    src.seed = 43;
    rc = nnrt_csv_load(&src, NULL, q, NULL, err, sizeof err);
    if (rc == 0)
        ids_of(&q[0], again[0]);
    CHECK(rc == 0 && memcmp(ids[0], again[0], 6 * sizeof(int)), "seed 43 gives the same order as 42");
    free_parts(q);
    free_parts(p);

    /* sizes: round(7 * 0.5) = 4 (half away from zero), round(1.75) = 2, the rest 1 */
    const char *seven = write_text("seven.txt", "0\n1\n2\n3\n4\n5\n6\n");
    src = (NnrtDataSource){.format = NNRT_DATA_CSV, .path = seven, .x = "0", .y = "0", .delimiter = ' ',
                           .split = {0.5, 0.25, 0.25}, .seed = 1};
    rc = nnrt_csv_load(&src, NULL, p, NULL, err, sizeof err);
    CHECK(rc == 0 && p[0].n == 4 && p[1].n == 2 && p[2].n == 1, "7 rows: %zu %zu %zu %s", p[0].n, p[1].n,
          p[2].n, err);
    free_parts(p);
    src.split[0] = 0.8, src.split[1] = 0.2, src.split[2] = 0;   /* round(5.6) = 6, 1, no test part */
    rc = nnrt_csv_load(&src, NULL, p, NULL, err, sizeof err);
    CHECK(rc == 0 && p[0].n == 6 && p[1].n == 1 && p[2].n == 0 && !p[2].x[0].data, "no test part: %zu %zu %zu",
          p[0].n, p[1].n, p[2].n);
    free_parts(p);
    src.split[0] = 0.95, src.split[1] = 0.05 - 1e-7, src.split[2] = 1e-7;   /* sums to 1 within 1e-6 */
    rc = nnrt_csv_load(&src, NULL, p, NULL, err, sizeof err);
    CHECK(rc == NNRT_EMISMATCH && strstr(err, "validation part empty"), "empty part: %d %s", rc, err);
    src.split[0] = 0.5, src.split[1] = 0.3, src.split[2] = 0.3;
    rc = nnrt_csv_load(&src, NULL, p, NULL, err, sizeof err);
    CHECK(rc == NNRT_EINVAL && strstr(err, "seven.txt") && strstr(err, "sum to 1"), "split sum: %s", err);
    src.split[0] = 1.2, src.split[1] = -0.2, src.split[2] = 0;
    rc = nnrt_csv_load(&src, NULL, p, NULL, err, sizeof err);
    CHECK(rc == NNRT_EINVAL, "negative fraction");
}

static void test_errors(const char *small)
{
    NnrtDataset p[3];
    char err[1024];
    int rc;

    const char *bad = write_text("bad.csv", "a,b,c\n1,2,3\n\n4,abc,6\n");
    NnrtDataSource src = {.format = NNRT_DATA_CSV, .path = bad, .x = "a,b", .y = "c", .header = 1};
    rc = nnrt_csv_load(&src, NULL, p, NULL, err, sizeof err);
    CHECK(rc == NNRT_EFORMAT && strstr(err, "bad.csv:4: column 1 (b): 'abc' is not a number"), "bad number: %s",
          err);
    CHECK(p[0].n == 0 && !p[0].x[0].data, "parts untouched after an error");

    bad = write_text("unused.csv", "1,2,x\n");                 /* every field must be a number */
    src = (NnrtDataSource){.format = NNRT_DATA_CSV, .path = bad, .x = "0", .y = "1"};
    rc = nnrt_csv_load(&src, NULL, p, NULL, err, sizeof err);
    CHECK(rc == NNRT_EFORMAT && strstr(err, "unused.csv:1: column 2: 'x'"), "unused column: %s", err);

    bad = write_text("empty_field.csv", "1,,3\n");
    src.path = bad;
    rc = nnrt_csv_load(&src, NULL, p, NULL, err, sizeof err);
    CHECK(rc == NNRT_EFORMAT && strstr(err, "empty_field.csv:1: column 1: '' is empty"), "empty field: %s", err);

    bad = write_text("nan.csv", "1,nan,3\n");
    src.path = bad;
    rc = nnrt_csv_load(&src, NULL, p, NULL, err, sizeof err);
    CHECK(rc == NNRT_EFORMAT && strstr(err, "not a finite number"), "nan: %s", err);

    bad = write_text("ragged.csv", "skip me\n\"a\",\"b\",\"c\"\n1,2,3\n4,5\n");
    src = (NnrtDataSource){.format = NNRT_DATA_CSV, .path = bad, .x = "a", .y = "c", .header = 1, .skip_rows = 1};
    rc = nnrt_csv_load(&src, NULL, p, NULL, err, sizeof err);
    CHECK(rc == NNRT_EFORMAT && strstr(err, "ragged.csv:4: 2 fields, but the header on line 2 has 3"),
          "ragged: %s", err);
    src.header = 0;
    src.x = "0";
    src.y = "2";
    src.skip_rows = 2;
    rc = nnrt_csv_load(&src, NULL, p, NULL, err, sizeof err);
    CHECK(rc == NNRT_EFORMAT && strstr(err, "ragged.csv:4: 2 fields, but line 3 has 3"), "ragged: %s", err);

    src = small_source(small, "a,CRIM", "t");
    rc = nnrt_csv_load(&src, NULL, p, NULL, err, sizeof err);
    CHECK(rc == NNRT_EMISMATCH && strstr(err, "no x column 'CRIM' in the header; the columns are a, b, c, t"),
          "unknown column: %s", err);
    src = small_source(small, "a", "MEDV");
    rc = nnrt_csv_load(&src, NULL, p, NULL, err, sizeof err);
    CHECK(rc == NNRT_EMISMATCH && strstr(err, "no y column 'MEDV'"), "unknown y column: %s", err);
    src = small_source(small, "0,4", "t");
    rc = nnrt_csv_load(&src, NULL, p, NULL, err, sizeof err);
    CHECK(rc == NNRT_EMISMATCH && strstr(err, "x column 4 is out of range: the file has 4 columns (0 to 3)"),
          "index range: %s", err);
    src = small_source(small, "a", "t");
    src.header = 0;
    src.skip_rows = 2;
    rc = nnrt_csv_load(&src, NULL, p, NULL, err, sizeof err);
    CHECK(rc == NNRT_EMISMATCH && strstr(err, "'a' is not a 0-based index") && strstr(err, "header: false"),
          "name without a header: %s", err);
    src = small_source(small, "a,,b", "t");
    rc = nnrt_csv_load(&src, NULL, p, NULL, err, sizeof err);
    CHECK(rc == NNRT_EINVAL && strstr(err, "empty column name"), "empty name: %s", err);
    src = small_source(small, "a|", "t");
    rc = nnrt_csv_load(&src, NULL, p, NULL, err, sizeof err);
    CHECK(rc == NNRT_EINVAL, "empty group");

    bad = write_text("quote.csv", "\"a,\"b\"\n1,2\n");
    src = (NnrtDataSource){.format = NNRT_DATA_CSV, .path = bad, .x = "0", .y = "1", .header = 1};
    rc = nnrt_csv_load(&src, NULL, p, NULL, err, sizeof err);
    CHECK(rc == NNRT_EFORMAT && strstr(err, "quote.csv:1: text after a closing quote"), "quote: %s", err);
    bad = write_text("quote2.csv", "\"a\",\"b\n1,2\n");
    src.path = bad;
    rc = nnrt_csv_load(&src, NULL, p, NULL, err, sizeof err);
    CHECK(rc == NNRT_EFORMAT && strstr(err, "quote2.csv:1: unterminated quoted field"), "quote2: %s", err);
    bad = write_text("escaped.csv", "\"say \"\"hi\"\"\",b\n1,2\n");
    src.path = bad;
    src.x = "say \"hi\"";
    src.y = "b";
    rc = nnrt_csv_load(&src, NULL, p, NULL, err, sizeof err);
    CHECK(rc == 0 && p[0].n == 1, "\"\" in a quoted name: %s", err);
    free_parts(p);

    bad = write_text("header_only.csv", "count\na,b\n\n");
    src = (NnrtDataSource){.format = NNRT_DATA_CSV, .path = bad, .x = "a", .y = "b", .header = 1, .skip_rows = 1};
    rc = nnrt_csv_load(&src, NULL, p, NULL, err, sizeof err);
    CHECK(rc == NNRT_EFORMAT && strstr(err, "header_only.csv: no data rows"), "no rows: %s", err);
    src.skip_rows = 5;                     /* more than the file has */
    rc = nnrt_csv_load(&src, NULL, p, NULL, err, sizeof err);
    CHECK(rc == NNRT_EFORMAT && strstr(err, "no data rows"), "skip past the end: %s", err);

    src.path = at("missing.csv");
    rc = nnrt_csv_load(&src, NULL, p, NULL, err, sizeof err);
    CHECK(rc == NNRT_EIO && strstr(err, "missing.csv"), "missing: %d %s", rc, err);

    /* a gzip stream cut short */
    const char *gz = at("small.csv.gz");
    FILE *f = fopen(gz, "rb");
    unsigned char buf[4096];
    size_t got = f ? fread(buf, 1, sizeof buf, f) : 0;
    if (f)
        fclose(f);
    const char *cut = at("cut.csv.gz");
    f = fopen(cut, "wb");
    if (f) {
        fwrite(buf, 1, got / 2, f);
        fclose(f);
    }
    src = small_source(cut, "a", "t");
    rc = nnrt_csv_load(&src, NULL, p, NULL, err, sizeof err);
    CHECK(rc < 0 && strstr(err, "cut.csv.gz"), "truncated gzip: %d %s", rc, err);
    free_parts(p);
}

/* ---- against a model: nnrt_dataset_load, nnrt_fit_data_load ------------------------ */

static void test_model_checks(const char *small)
{
    NnrtDataset d;
    char err[1024];
    int rc;
    int64_t wide_deep[2] = {2, 1}, three[1] = {3};

    NnrtModel M = describe(2, wide_deep, 1);
    NnrtDataSource src = small_source(small, "a,b|c", "t");
    rc = nnrt_dataset_load(&M, &src, &d, err, sizeof err);
    CHECK(rc == 0 && d.n == 10 && d.x[0].shape[1] == 2 && d.x[1].shape[1] == 1 && d.y[0].dtype == NNRT_F32,
          "wide & deep groups: %s", err);
    nnrt_dataset_free(&d);

    src.x = "a,b,c";
    rc = nnrt_dataset_load(&M, &src, &d, err, sizeof err);
    CHECK(rc == NNRT_EMISMATCH && strstr(err, "takes 2 input(s)") && strstr(err, "1 group(s)") &&
              strstr(err, "'|'"), "group count: %s", err);
    src.x = "a|b,c";
    rc = nnrt_dataset_load(&M, &src, &d, err, sizeof err);
    CHECK(rc == NNRT_EMISMATCH && strstr(err, "small.csv x columns 'a'") && strstr(err, "input 0 of csvmodel takes 2"),
          "group width: %s", err);

    /* one y group for both outputs, one per output, or a wrong count */
    M = describe(1, three, 2);
    src = small_source(small, "a,b,c", "t");
    rc = nnrt_dataset_load(&M, &src, &d, err, sizeof err);
    CHECK(rc == 0 && same_array(&d.y[0], &d.y[1]) && d.y[1].data != d.y[0].data, "one y for two outputs: %s", err);
    nnrt_dataset_free(&d);
    src.y = "t|a";
    rc = nnrt_dataset_load(&M, &src, &d, err, sizeof err);
    CHECK(rc == 0 && at2(&d.y[1], 2, 0) == 3, "y per output: %s", err);
    nnrt_dataset_free(&d);
    src.y = "t|a|b";
    rc = nnrt_dataset_load(&M, &src, &d, err, sizeof err);
    CHECK(rc == NNRT_EMISMATCH && strstr(err, "2 output(s)") && strstr(err, "3 groups"), "y groups: %s", err);
    src.y = "t|a,b";
    rc = nnrt_dataset_load(&M, &src, &d, err, sizeof err);
    CHECK(rc == NNRT_EMISMATCH && strstr(err, "small.csv y columns 'a,b'") && strstr(err, "takes 1 target"),
          "y width: %s", err);

    /* sparse labels from a float column */
    M = describe(1, three, 1);
    M.target_sparse[0] = 1;
    M.output_size[0] = 10;
    src = small_source(small, "a,b,c", "t");
    rc = nnrt_dataset_load(&M, &src, &d, err, sizeof err);
    CHECK(rc == 0 && d.y[0].dtype == NNRT_I32 && ((int32_t *)d.y[0].data)[7] == 7, "sparse labels: %s", err);
    nnrt_dataset_free(&d);
    M.output_size[0] = 5;
    rc = nnrt_dataset_load(&M, &src, &d, err, sizeof err);
    CHECK(rc == NNRT_EMISMATCH && strstr(err, "small.csv y columns 't'") && strstr(err, "[0, 5)"),
          "label range: %s", err);

    /* with a split, nnrt_dataset_load gives the training part */
    M = describe(1, three, 1);
    src.split[0] = 0.6, src.split[1] = 0.2, src.split[2] = 0.2;
    rc = nnrt_dataset_load(&M, &src, &d, err, sizeof err);
    CHECK(rc == 0 && d.n == 6, "split source: %zu rows %s", d.n, err);
    nnrt_dataset_free(&d);
    src = (NnrtDataSource){.format = NNRT_DATA_CSV, .x = "a"};
    rc = nnrt_dataset_load(&M, &src, &d, err, sizeof err);
    CHECK(rc == NNRT_EINVAL && strstr(err, "path"), "csv without a path: %s", err);
}

static void test_fit_data(const char *small, const char *small_gz)
{
    NnrtFitData fd, fd2;
    NnrtDataset parts[3];
    char err[1024];
    int rc, ids[10], ref[3][10];
    int64_t three[1] = {3};
    NnrtModel M = describe(1, three, 1);
    NnrtFitConfig cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.train = small_source(small, "a,b,c", "t");
    cfg.train.split[0] = 0.6, cfg.train.split[1] = 0.2, cfg.train.split[2] = 0.2;
    cfg.train.seed = 7;
    cfg.train.standardize = 1;
    const int all = NNRT_WANT_TRAIN | NNRT_WANT_VALIDATION | NNRT_WANT_TEST;

    rc = nnrt_csv_load(&cfg.train, NULL, parts, NULL, err, sizeof err);
    for (int k = 0; k < 3 && rc == 0; k++)
        ids_of(&parts[k], ref[k]);
    free_parts(parts);
    CHECK(rc == 0, "reference split: %s", err);

    /* the csv split's three parts */
    rc = nnrt_fit_data_load(&M, &cfg, all, &fd, err, sizeof err);
    CHECK(rc == 0 && fd.train.n == 6 && fd.validation.n == 2 && fd.test.n == 2, "csv split: %zu %zu %zu %s",
          fd.train.n, fd.validation.n, fd.test.n, err);
    if (rc == 0) {
        ids_of(&fd.validation, ids);
        CHECK(!memcmp(ids, ref[1], 2 * sizeof(int)), "validation part");
        ids_of(&fd.test, ids);
        CHECK(!memcmp(ids, ref[2], 2 * sizeof(int)), "test part");
    }

    /* the test part alone, as evaluate asks: the same rows and values */
    rc = nnrt_fit_data_load(&M, &cfg, NNRT_WANT_TEST, &fd2, err, sizeof err);
    CHECK(rc == 0 && fd2.train.n == 0 && fd2.validation.n == 0 && fd2.test.n == 2 &&
              same_array(&fd.test.x[0], &fd2.test.x[0]), "test only: %s", err);
    nnrt_fit_data_free(&fd2);

    /* split_first overrides the csv validation part: the first 2 training samples */
    cfg.split_first = 2;
    rc = nnrt_fit_data_load(&M, &cfg, all, &fd2, err, sizeof err);
    CHECK(rc == 0 && fd2.train.n == 4 && fd2.validation.n == 2 && fd2.test.n == 2, "split_first: %s", err);
    if (rc == 0) {
        ids_of(&fd2.validation, ids);
        CHECK(!memcmp(ids, ref[0], 2 * sizeof(int)), "split_first takes the first training rows");
        ids_of(&fd2.train, ids);
        CHECK(!memcmp(ids, ref[0] + 2, 4 * sizeof(int)), "the rest train, in order");
    }
    nnrt_fit_data_free(&fd2);
    cfg.split_first = 0;
    cfg.split_last = 0.5;
    rc = nnrt_fit_data_load(&M, &cfg, NNRT_WANT_TRAIN | NNRT_WANT_VALIDATION, &fd2, err, sizeof err);
    CHECK(rc == 0 && fd2.train.n == 3 && fd2.validation.n == 3 && fd2.test.n == 0, "split_last: %s", err);
    if (rc == 0) {
        ids_of(&fd2.validation, ids);
        CHECK(!memcmp(ids, ref[0] + 3, 3 * sizeof(int)), "split_last takes the last training rows");
    }
    nnrt_fit_data_free(&fd2);
    cfg.split_last = 0;

    /* separate validation and test csv files are standardized with the
     * training part's statistics, as one StandardScaler fitted on it */
    NnrtScaler s;
    rc = nnrt_csv_load(&cfg.train, NULL, parts, &s, err, sizeof err);
    free_parts(parts);
    cfg.validation = small_source(small_gz, "a,b,c", "t");
    cfg.validation.standardize = 1;
    cfg.test = cfg.validation;
    rc = rc ? rc : nnrt_fit_data_load(&M, &cfg, all, &fd2, err, sizeof err);
    CHECK(rc == 0 && fd2.train.n == 6 && fd2.validation.n == 10 && fd2.test.n == 10, "separate files: %s", err);
    if (rc == 0) {
        float want = (float)((1 - s.mean[0]) / s.scale[0]);
        CHECK(at2(&fd2.validation.x[0], 0, 0) == want && at2(&fd2.test.x[0], 0, 0) == want,
              "validation a[0] %.9g, test %.9g, with the training statistics %.9g",
              at2(&fd2.validation.x[0], 0, 0), at2(&fd2.test.x[0], 0, 0), want);
    }
    nnrt_fit_data_free(&fd2);
    nnrt_scaler_free(&s);
    rc = nnrt_fit_data_load(&M, &cfg, NNRT_WANT_TEST, &fd2, err, sizeof err);
    CHECK(rc == 0 && fd2.test.n == 10 && fd2.train.n == 0, "test file alone: %s", err);
    nnrt_fit_data_free(&fd2);

    /* a validation source without targets; a split source's own part */
    cfg.test = (NnrtDataSource){0};
    cfg.validation.y = NULL;
    rc = nnrt_fit_data_load(&M, &cfg, all, &fd2, err, sizeof err);
    CHECK(rc == NNRT_EINVAL && strstr(err, "without targets"), "validation without y: %s", err);
    cfg.validation.y = "t";
    cfg.validation.split[0] = 0.8, cfg.validation.split[2] = 0.2;
    rc = nnrt_fit_data_load(&M, &cfg, all, &fd2, err, sizeof err);
    CHECK(rc == NNRT_EMISMATCH && strstr(err, "no validation part"), "validation split without a part: %s", err);
    cfg.validation.split[1] = 0.2, cfg.validation.split[2] = 0;
    rc = nnrt_fit_data_load(&M, &cfg, all, &fd2, err, sizeof err);
    CHECK(rc == 0 && fd2.validation.n == 2 && fd2.test.n == 2, "validation split part: %s", err);
    nnrt_fit_data_free(&fd2);
    nnrt_fit_data_free(&fd);

    /* errors name the file */
    cfg.validation = (NnrtDataSource){0};
    cfg.train.y = "bogus";
    rc = nnrt_fit_data_load(&M, &cfg, all, &fd2, err, sizeof err);
    CHECK(rc == NNRT_EMISMATCH && strstr(err, "small.csv") && strstr(err, "bogus"), "bad train: %s", err);
    CHECK(fd2.train.n == 0 && !fd2.train.x[0].data, "nothing kept after an error");
    cfg.train.y = NULL;
    rc = nnrt_fit_data_load(&M, &cfg, NNRT_WANT_TEST, &fd2, err, sizeof err);
    CHECK(rc == NNRT_EINVAL && strstr(err, "no training data"), "no y: %s", err);
}

/* ---- the driver: train and evaluate on a csv split ---------------------------------- */

static char captured_out[1 << 16], captured_err[1 << 16];

static void read_text(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "rb");
    size_t got = f ? fread(buf, 1, len - 1, f) : 0;
    buf[got] = '\0';
    if (f)
        fclose(f);
}

static int run_main(const NnrtModel *M, const NnrtFitConfig *fit, int argc, char **argv)
{
    fflush(stdout);
    fflush(stderr);
    int saved_out = dup(1), saved_err = dup(2);
    int fo = open(at("stdout.txt"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int fe = open(at("stderr.txt"), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(fo, 1);
    dup2(fe, 2);
    int status = nnrt_main(argc, argv, M, fit);
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, 1);
    dup2(saved_err, 2);
    close(fo);
    close(fe);
    close(saved_out);
    close(saved_err);
    read_text(at("stdout.txt"), captured_out, sizeof captured_out);
    read_text(at("stderr.txt"), captured_err, sizeof captured_err);
    return status;
}

static void test_driver(void)
{
    /* y = x0 - 2 x1 + 0.5 x3 + 3 over 200 rows; a wide & deep grouping where
     * column 2 feeds both inputs */
    char *text = malloc(200 * 96 + 64);
    size_t at_ = (size_t)sprintf(text, "x0,x1,x2,x3,y\n");
    NnrtRng r;
    nnrt_rng_seed(&r, 5);
    for (int i = 0; i < 200; i++) {
        double v[4];
        for (int k = 0; k < 4; k++)
            v[k] = 10 * nnrt_rng_uniform(&r);
        at_ += (size_t)sprintf(text + at_, "%.6f,%.6f,%.6f,%.6f,%.6f\n", v[0], v[1], v[2], v[3],
                               v[0] - 2 * v[1] + 0.5 * v[3] + 3);
    }
    const char *path = write_text("linear.csv", text);
    free(text);

    int64_t sizes[2] = {3, 2};
    reg_desc = describe(2, sizes, 1);
    reg_desc.num_params = reg_num_params();
    NnrtFitConfig fit;
    memset(&fit, 0, sizeof fit);
    fit.model_file = "csvmodel.yaml";
    fit.train = (NnrtDataSource){.format = NNRT_DATA_CSV, .path = path, .header = 1, .x = "x0,x1,x2|x2,x3",
                                 .y = "y", .standardize = 1, .split = {0.6, 0.2, 0.2}, .seed = 42};
    fit.epochs = 20;
    fit.batch_size = 16;
    fit.shuffle = 1;
    fit.seed = 1;

    char out_dir[300], weights[400];
    snprintf(out_dir, sizeof out_dir, "%s", at("out"));
    snprintf(weights, sizeof weights, "%s/csvmodel.h5", out_dir);
    char *train_argv[] = {"csvmodel", "train", "--out", out_dir, NULL};
    reg_evals = 0;
    int status = run_main(&reg_desc, &fit, 4, train_argv);
    CHECK(status == 0, "train: %d %s", status, captured_err);
    CHECK(strstr(captured_out, "Epoch 20/20") && strstr(captured_out, "8/8 [") && strstr(captured_out, " - val_loss: "),
          "120 training rows in batches of 16, validation each epoch:\n%.400s", captured_out);
    CHECK(reg_evals == 21 && reg_last_eval_n == 40, "20 validations of 40 rows and a test of 40: %ld calls, last %zu",
          reg_evals, reg_last_eval_n);
    const char *test_line = strstr(captured_out, "\ntest loss: ");
    double test_loss = test_line ? atof(test_line + 12) : -1;
    CHECK(test_line && test_loss >= 0 && test_loss < 0.5, "test loss %g after training:\n%s", test_loss,
          captured_out);

    char *eval_argv[] = {"csvmodel", "evaluate", "--weights", weights, NULL};
    reg_evals = 0;
    status = run_main(&reg_desc, &fit, 4, eval_argv);
    double loss = strncmp(captured_out, "loss: ", 6) ? -1 : atof(captured_out + 6);
    CHECK(status == 0 && reg_evals == 1 && reg_last_eval_n == 40, "evaluate on the test part: %d, n %zu %s",
          status, reg_last_eval_n, captured_err);
    CHECK(fabs(loss - test_loss) < 1e-4 * fmax(1, test_loss), "evaluate %g, train's test %g", loss, test_loss);

    /* no test part and no test source: evaluate says so */
    fit.train.split[1] = 0.4, fit.train.split[2] = 0;
    status = run_main(&reg_desc, &fit, 4, eval_argv);
    CHECK(status == 1 && strstr(captured_err, "no test data"), "no test part: %d %s", status, captured_err);
    /* a broken column list is a user error */
    fit.train.split[1] = 0.2, fit.train.split[2] = 0.2;
    fit.train.x = "x0,x1,nope|x2,x3";
    status = run_main(&reg_desc, &fit, 4, eval_argv);
    CHECK(status == 1 && strstr(captured_err, "error: ") && strstr(captured_err, "'nope'") &&
              strstr(captured_err, "x0, x1, x2, x3, y"), "unknown column in evaluate: %s", captured_err);
    char *train_argv2[] = {"csvmodel", "train", "--out", out_dir, "--epochs", "1", NULL};
    status = run_main(&reg_desc, &fit, 6, train_argv2);
    CHECK(status == 1 && strstr(captured_err, "'nope'") && !strstr(captured_out, "Epoch 1/1"),
          "unknown column in train: %d %s", status, captured_err);
}

/* ---- sklearn's files ------------------------------------------------------------------ */

static int file_readable(const char *path)
{
    return access(path, R_OK) == 0;
}

static void test_sklearn(void)
{
    const char *boston = SKLEARN_DATA "/boston_house_prices.csv";
    const char *diabetes = SKLEARN_DATA "/diabetes_data_raw.csv.gz";
    const char *required = getenv("NNCC_REQUIRE_SKLEARN");
    NnrtDataset p[3], q[3];
    NnrtScaler s;
    char err[1024];
    int rc;

    if (!file_readable(boston) || !file_readable(diabetes)) {
        if (required && !strcmp(required, "1"))
            CHECK(0, "NNCC_REQUIRE_SKLEARN=1 but %s or %s is missing (apt-get install python3-sklearn)",
                  boston, diabetes);
        else
            printf("sklearn data: skipped (%s not found; install python3-sklearn)\n", SKLEARN_DATA);
        return;
    }

    /* boston: "506,13,,,..." then the quoted header; 13 features and MEDV */
    NnrtDataSource src = {.format = NNRT_DATA_CSV, .path = boston, .header = 1, .skip_rows = 1, .delimiter = ',',
                          .x = "CRIM,ZN,INDUS,CHAS,NOX,RM,AGE,DIS,RAD,TAX,PTRATIO,B,LSTAT", .y = "MEDV",
                          .standardize = 1};
    rc = nnrt_csv_load(&src, NULL, p, &s, err, sizeof err);
    CHECK(rc == 0 && p[0].n == 506 && p[0].x[0].shape[1] == 13 && p[0].y[0].shape[1] == 1, "boston: %s", err);
    if (rc == 0) {
        /* numpy: b = np.loadtxt(path, delimiter=',', skiprows=2); X = b[:, :13];
         * Z = (X - X.mean(0)) / X.std(0) */
        static const struct { size_t row, col; double z; } z[] = {
            {0, 0, -0.4197819386460084}, {0, 5, 0.4136718893017465}, {505, 12, -0.6690583327855452},
            {100, 3, -0.2725985670699254}, {250, 9, -0.46467259083545587},
        };
        double worst = 0;
        for (size_t k = 0; k < sizeof z / sizeof z[0]; k++)
            worst = fmax(worst, fabs(at2(&p[0].x[0], z[k].row, z[k].col) - z[k].z));
        CHECK(worst < 1e-6, "boston standardized values: max difference %g", worst);
        CHECK(fabs(s.mean[0] - 3.6135235573122535) < 1e-12 && fabs(s.scale[0] - 8.5930413512957688) < 1e-12 &&
                  fabs(s.mean[11] - 356.67403162055257) < 1e-10 && fabs(s.scale[11] - 91.204607452172723) < 1e-10,
              "boston mean/std CRIM %.17g %.17g, B %.17g %.17g", s.mean[0], s.scale[0], s.mean[11], s.scale[11]);
        CHECK(at2(&p[0].y[0], 0, 0) == 24.0f && at2(&p[0].y[0], 505, 0) == 11.9f, "MEDV %g %g",
              at2(&p[0].y[0], 0, 0), at2(&p[0].y[0], 505, 0));
        printf("boston_house_prices.csv: 506 rows, 13 features standardized, max difference from numpy %.2g\n",
               worst);
    }
    free_parts(p);
    nnrt_scaler_free(&s);

    /* the same by indices, split 60/20/20: round(303.6) = 304, round(101.2) = 101, 101 */
    src.x = "0,1,2,3,4,5,6,7,8,9,10,11,12";
    src.y = "13";
    src.split[0] = 0.6, src.split[1] = 0.2, src.split[2] = 0.2;
    src.seed = 42;
    rc = nnrt_csv_load(&src, NULL, p, &s, err, sizeof err);
    CHECK(rc == 0 && p[0].n == 304 && p[1].n == 101 && p[2].n == 101, "boston split: %zu %zu %zu %s", p[0].n,
          p[1].n, p[2].n, err);
    if (rc == 0) {
        /* the training part standardized: each column mean 0, population std 1 */
        double worst = 0;
        for (size_t c = 0; c < 13; c++) {
            double sum = 0, sq = 0;
            for (size_t r = 0; r < 304; r++)
                sum += at2(&p[0].x[0], r, c);
            for (size_t r = 0; r < 304; r++)
                sq += (at2(&p[0].x[0], r, c) - sum / 304) * (at2(&p[0].x[0], r, c) - sum / 304);
            worst = fmax(worst, fmax(fabs(sum / 304), fabs(sqrt(sq / 304) - 1)));
        }
        CHECK(worst < 1e-5, "boston training part: mean/std off by %g", worst);
        /* raw values of the same split, standardized here with those statistics */
        src.standardize = 0;
        rc = nnrt_csv_load(&src, NULL, q, NULL, err, sizeof err);
        worst = 0;
        for (int k = 0; rc == 0 && k < 3; k++)
            for (size_t r = 0; r < p[k].n; r++)
                for (size_t c = 0; c < 13; c++)
                    worst = fmax(worst, fabs(at2(&p[k].x[0], r, c) -
                                             (at2(&q[k].x[0], r, c) - s.mean[c]) / s.scale[c]) /
                                            fmax(1, fabs(at2(&p[k].x[0], r, c))));
        CHECK(rc == 0 && worst < 1e-5, "boston parts against the training statistics: %g %s", worst, err);
        free_parts(q);
        src.standardize = 1;
    }
    free_parts(p);
    nnrt_scaler_free(&s);

    /* diabetes: space-delimited, no header, 442 rows of 10 columns */
    src = (NnrtDataSource){.format = NNRT_DATA_CSV, .path = diabetes, .delimiter = ' ', .x = "0,1,2,3,4,5,6,7,8,9",
                           .standardize = 1};
    rc = nnrt_csv_load(&src, NULL, p, &s, err, sizeof err);
    CHECK(rc == 0 && p[0].n == 442 && p[0].x[0].shape[1] == 10, "diabetes: %zu rows %s", p[0].n, err);
    if (rc == 0) {
        /* numpy: d = np.loadtxt(path); Z = (d - d.mean(0)) / d.std(0) */
        static const struct { size_t row, col; double z; } z[] = {
            {0, 0, 0.8005000909564214}, {0, 9, -0.37098853628476647}, {441, 1, -0.9385366608874629},
            {200, 8, -0.5954604912824827},
        };
        double worst = 0;
        for (size_t k = 0; k < sizeof z / sizeof z[0]; k++)
            worst = fmax(worst, fabs(at2(&p[0].x[0], z[k].row, z[k].col) - z[k].z));
        CHECK(worst < 1e-6, "diabetes standardized values: max difference %g", worst);
        CHECK(fabs(s.mean[4] - 189.14027149321268) < 1e-10 && fabs(s.scale[4] - 34.568880126921385) < 1e-10,
              "diabetes column 4 mean %.17g std %.17g", s.mean[4], s.scale[4]);
        printf("diabetes_data_raw.csv.gz: 442 rows, 10 columns standardized, max difference from numpy %.2g\n",
               worst);
    }
    free_parts(p);
    nnrt_scaler_free(&s);
    src.x = "age";                          /* no header: names are an error */
    rc = nnrt_csv_load(&src, NULL, p, NULL, err, sizeof err);
    CHECK(rc == NNRT_EMISMATCH && strstr(err, "diabetes_data_raw.csv.gz") && strstr(err, "'age'"),
          "diabetes by name: %s", err);
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/nnrt_csv_XXXXXX");
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 2;
    }
    const char *small = write_text("small.csv", small_csv);
    const char *small_gz = write_gz("small.csv.gz", small_csv);

    test_parse(small, small_gz);
    test_standardize(small);
    test_split(small);
    test_errors(small);
    test_model_checks(small);
    test_fit_data(small, small_gz);
    test_driver();
    test_sklearn();

    nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    for (int i = 0; i < num_made_paths; i++)
        free(made_paths[i]);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
