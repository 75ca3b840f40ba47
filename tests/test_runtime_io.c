/* test_runtime_io.c — the runtime's file I/O: Keras HDF5 weights (h5.c),
 * IDX and .npy arrays (data.c).
 *
 * Usage: test_runtime_io KERAS_H5_DIR OUT_H5 [FASHION_MNIST_DIR]
 *   KERAS_H5_DIR       shared/keras_h5 (real Keras files and damaged/)
 *   OUT_H5             where the round-trip file is saved and left, for
 *                      tests/check_h5_layout.py to compare with a Keras file
 *   FASHION_MNIST_DIR  default /usr/share/datasets/fashion-mnist
 *
 * Every check prints one line; the program ends with "N passed, N failed"
 * and exits 1 if any failed. Reference values from real files were read with
 * h5py / numpy and are written here by hand.
 */
#define _POSIX_C_SOURCE 200809L
#include "nnrt.h"

#include <dirent.h>
#include <hdf5.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

typedef struct {
    int passed, failed;
    const char *keras_dir;
    const char *out_h5;
    const char *mnist_dir;
    char tmp_dir[64];
} Ctx;

static void check(Ctx *t, int ok, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%s ", ok ? "ok  " : "FAIL");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    if (ok)
        t->passed++;
    else
        t->failed++;
}

static void join(char *buf, size_t len, const char *dir, const char *name)
{
    snprintf(buf, len, "%s/%s", dir, name);
}

/* ---- the round-trip model ------------------------------------------------ */

/* Layers with and without weights, an RNN cell path and non-trainable
 * statistics: what nncc's generated save() passes. */
static const char *const model_layers[] = {
    "input_1", "dense", "flatten", "lstm", "batch_normalization", "dense_1",
};
#define NUM_MODEL_LAYERS (sizeof model_layers / sizeof model_layers[0])

static const NnrtWeightInfo model_weights[] = {
    {"dense", "dense/kernel:0", 2, {4, 3}, 0, 1},
    {"dense", "dense/bias:0", 1, {3}, 12, 1},
    {"lstm", "lstm/lstm_cell/kernel:0", 2, {3, 8}, 15, 1},
    {"lstm", "lstm/lstm_cell/recurrent_kernel:0", 2, {2, 8}, 39, 1},
    {"lstm", "lstm/lstm_cell/bias:0", 1, {8}, 55, 1},
    {"batch_normalization", "batch_normalization/gamma:0", 1, {2}, 63, 1},
    {"batch_normalization", "batch_normalization/beta:0", 1, {2}, 65, 1},
    {"batch_normalization", "batch_normalization/moving_mean:0", 1, {2}, 67, 0},
    {"batch_normalization", "batch_normalization/moving_variance:0", 1, {2}, 69, 0},
    {"dense_1", "dense_1/kernel:0", 2, {2, 1}, 71, 1},
    {"dense_1", "dense_1/bias:0", 1, {1}, 73, 1},
};
#define NUM_MODEL_WEIGHTS (sizeof model_weights / sizeof model_weights[0])
#define MODEL_FLOATS 74

static const char model_config[] =
    "{\"class_name\": \"Sequential\", \"config\": {\"name\": \"roundtrip\", \"layers\": []}}";

static void fill_block(float *block, size_t n)
{
    for (size_t i = 0; i < n; i++)
        block[i] = (float)sin(0.37 * (double)i + 0.1) * (float)(i + 1);
}

static int file_bytes(const char *path, unsigned char **data, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    int rc = -1;
    long size;
    if (fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0 &&
        (*data = malloc((size_t)size + 1)) && fread(*data, 1, (size_t)size, f) == (size_t)size) {
        *len = (size_t)size;
        rc = 0;
    }
    fclose(f);
    return rc;
}

/* Files in dir whose name contains ".tmp". */
static int count_temp_files(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, ".tmp"))
            n++;
    closedir(d);
    return n;
}

static void test_h5_roundtrip(Ctx *t)
{
    char err[512];
    float saved[MODEL_FLOATS], back[MODEL_FLOATS];
    unsigned char loaded[NUM_MODEL_WEIGHTS];
    fill_block(saved, MODEL_FLOATS);

    int rc = nnrt_h5_save(t->out_h5, model_layers, NUM_MODEL_LAYERS, model_weights, NUM_MODEL_WEIGHTS,
                          saved, model_config, err, sizeof err);
    check(t, rc == 0, "h5 save %s (rc %d %s)", t->out_h5, rc, err);

    memset(back, 0, sizeof back);
    rc = nnrt_h5_load(t->out_h5, model_weights, NUM_MODEL_WEIGHTS, back, 1, loaded, err, sizeof err);
    int all = 1;
    for (size_t i = 0; i < NUM_MODEL_WEIGHTS; i++)
        all = all && loaded[i];
    check(t, rc == 0 && all && !memcmp(saved, back, sizeof saved),
          "h5 strict load of the saved file gives back every float bit for bit (rc %d %s)", rc, err);

    /* The table in another order: matching is by name, not position. */
    NnrtWeightInfo reversed[NUM_MODEL_WEIGHTS];
    for (size_t i = 0; i < NUM_MODEL_WEIGHTS; i++)
        reversed[i] = model_weights[NUM_MODEL_WEIGHTS - 1 - i];
    memset(back, 0, sizeof back);
    rc = nnrt_h5_load(t->out_h5, reversed, NUM_MODEL_WEIGHTS, back, 1, NULL, err, sizeof err);
    check(t, rc == 0 && !memcmp(saved, back, sizeof saved), "h5 load with the table reversed (rc %d %s)", rc, err);

    /* Saving twice gives the same bytes (no time stamps), and overwrites. */
    char again[600];
    snprintf(again, sizeof again, "%s/again.h5", t->tmp_dir);
    unsigned char *a = NULL, *b = NULL;
    size_t la = 0, lb = 0;
    rc = nnrt_h5_save(again, model_layers, NUM_MODEL_LAYERS, model_weights, NUM_MODEL_WEIGHTS, saved,
                      model_config, err, sizeof err);
    rc |= nnrt_h5_save(again, model_layers, NUM_MODEL_LAYERS, model_weights, NUM_MODEL_WEIGHTS, saved,
                       model_config, err, sizeof err);
    int same = rc == 0 && file_bytes(t->out_h5, &a, &la) == 0 && file_bytes(again, &b, &lb) == 0 &&
               la == lb && !memcmp(a, b, la);
    check(t, same, "h5 save is deterministic and overwrites (%zu bytes)", la);
    free(a);
    free(b);
    check(t, count_temp_files(t->tmp_dir) == 0, "h5 save leaves no temporary file");

    /* Failures: a missing folder, a weight in no listed layer. */
    char bad[600];
    snprintf(bad, sizeof bad, "%s/no/such/dir/w.h5", t->tmp_dir);
    rc = nnrt_h5_save(bad, model_layers, NUM_MODEL_LAYERS, model_weights, NUM_MODEL_WEIGHTS, saved, NULL,
                      err, sizeof err);
    check(t, rc == NNRT_EIO && strstr(err, bad), "h5 save into a missing folder: %s", err);
    rc = nnrt_h5_save(again, model_layers, 1, model_weights, NUM_MODEL_WEIGHTS, saved, NULL, err, sizeof err);
    check(t, rc == NNRT_EINVAL && strstr(err, "not in the layer list"), "h5 save, weight of an unlisted layer: %s",
          err);
    same = file_bytes(again, &a, &la) == 0 && la == lb;
    free(a);
    check(t, same, "h5 failed save left the previous file intact");
    remove(again);
}

static void test_h5_partial(Ctx *t)
{
    char err[512];
    float block[64];
    unsigned char loaded[4];
    /* dense kernel matches, dense bias has the wrong shape, a layer the file
     * lacks, and an LSTM weight under another cell name. */
    const NnrtWeightInfo table[] = {
        {"dense", "dense/kernel:0", 2, {4, 3}, 0, 1},
        {"dense", "dense/bias:0", 1, {5}, 12, 1},
        {"head", "head/kernel:0", 2, {3, 2}, 17, 1},
        {"lstm", "lstm/lstm_cell_7/kernel:0", 2, {3, 8}, 23, 1},
    };
    float saved[MODEL_FLOATS];
    fill_block(saved, MODEL_FLOATS);
    for (size_t i = 0; i < 64; i++)
        block[i] = -7.0f;
    int rc = nnrt_h5_load(t->out_h5, table, 4, block, 0, loaded, err, sizeof err);
    int untouched = 1;
    for (size_t i = 12; i < 23; i++)
        untouched = untouched && block[i] == -7.0f;
    check(t, rc == 0 && loaded[0] && !loaded[1] && !loaded[2] && loaded[3],
          "h5 non-strict load sets loaded[] = 1 0 0 1 (got %d %d %d %d): %s", loaded[0], loaded[1], loaded[2],
          loaded[3], err);
    check(t, !memcmp(block, saved, 12 * sizeof(float)) && !memcmp(block + 23, saved + 15, 24 * sizeof(float)) &&
          untouched, "h5 non-strict load copies matched weights only");
    check(t, strstr(err, "loaded 2 of 4") != NULL, "h5 non-strict load reports what it skipped");

    for (size_t i = 0; i < 64; i++)
        block[i] = -7.0f;
    rc = nnrt_h5_load(t->out_h5, table, 2, block, 1, loaded, err, sizeof err);
    untouched = 1;
    for (size_t i = 0; i < 64; i++)
        untouched = untouched && block[i] == -7.0f;
    check(t, rc == NNRT_EMISMATCH && strstr(err, "[5]") && strstr(err, "[3]") && strstr(err, "dense/bias:0"),
          "h5 strict shape mismatch names both shapes: %s", err);
    check(t, untouched && !loaded[0], "h5 strict failure leaves the block and loaded[] untouched");
}

/* Name lists over 64512 bytes are split into layer_names0, layer_names1, ...
 * as Keras does; and names are matched by their longest shared tail, a tie
 * being an error rather than a guess. */
static void test_h5_names(Ctx *t)
{
    enum { N = 3000 };
    char err[512], path[600];
    static char names[N][40];
    static const char *layers[N];
    for (int i = 0; i < N; i++) {
        snprintf(names[i], sizeof names[i], "a_rather_long_layer_name_%04d", i);
        layers[i] = names[i];
    }
    NnrtWeightInfo w[3] = {
        {names[N - 1], "x/forward/kernel:0", 1, {2}, 0, 1},
        {names[N - 1], "x/backward/kernel:0", 1, {2}, 2, 1},
        {names[0], "a_rather_long_layer_name_0000/bias:0", 1, {1}, 4, 1},
    };
    float block[5] = {1, 2, 3, 4, 5}, back[5] = {0};
    snprintf(path, sizeof path, "%s/many.h5", t->tmp_dir);
    int rc = nnrt_h5_save(path, layers, N, w, 3, block, NULL, err, sizeof err);
    hid_t f = rc == 0 ? H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT) : -1;
    hid_t mw = f >= 0 ? H5Gopen2(f, "model_weights", H5P_DEFAULT) : -1;
    int chunked = mw >= 0 && H5Aexists(mw, "layer_names0") > 0 && H5Aexists(mw, "layer_names1") > 0 &&
                  H5Aexists(mw, "layer_names") == 0;
    if (mw >= 0)
        H5Gclose(mw);
    if (f >= 0)
        H5Fclose(f);
    check(t, chunked, "h5 save of %d layers splits layer_names into chunks (rc %d %s)", N, rc, err);
    NnrtWeightInfo other[3];
    memcpy(other, w, sizeof other);
    other[0].name = "renamed/forward/kernel";
    other[1].name = "renamed_too/x/backward/kernel";
    other[2].name = "bias";
    rc = nnrt_h5_load(path, other, 3, back, 1, NULL, err, sizeof err);
    check(t, rc == 0 && !memcmp(back, block, sizeof block), "h5 load by longest shared name tail (rc %d %s)", rc,
          err);
    other[0].name = "kernel:0";
    rc = nnrt_h5_load(path, other, 1, back, 1, NULL, err, sizeof err);
    check(t, rc == NNRT_EMISMATCH && strstr(err, "more than one candidate"), "h5 ambiguous name is an error: %s",
          err);
    remove(path);
}

/* A save_weights-layout file as another writer might make it: layer group
 * at the root, vlen weight_names, Keras 3 RNN names without ":0", float64
 * data, and a weightless layer whose weight_names is an empty S1 array. */
static int write_foreign_h5(const char *path, const double *kernel, const double *bias)
{
    int rc = -1;
    hid_t f = -1, g = -1, sp = -1, st = -1, a = -1, d = -1, lcpl = -1;
    const char *layers[] = {"gru", "flatten"};
    const char *names[] = {"sequential/gru/gru_cell/bias", "sequential/gru/gru_cell/kernel"};
    hsize_t two = 2, zero = 0, kdims[2] = {3, 6}, bdims[2] = {2, 6};
    if ((f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT)) < 0 ||
        (st = H5Tcopy(H5T_C_S1)) < 0 || H5Tset_size(st, H5T_VARIABLE) < 0 ||
        (sp = H5Screate_simple(1, &two, NULL)) < 0 ||
        (a = H5Acreate2(f, "layer_names", st, sp, H5P_DEFAULT, H5P_DEFAULT)) < 0 ||
        H5Awrite(a, st, layers) < 0 || H5Aclose(a) < 0 ||
        (g = H5Gcreate2(f, "gru", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0 ||
        (a = H5Acreate2(g, "weight_names", st, sp, H5P_DEFAULT, H5P_DEFAULT)) < 0 ||
        H5Awrite(a, st, names) < 0 || H5Aclose(a) < 0 || H5Sclose(sp) < 0)
        goto fail;
    a = sp = -1;
    if ((lcpl = H5Pcreate(H5P_LINK_CREATE)) < 0 || H5Pset_create_intermediate_group(lcpl, 1) < 0 ||
        (sp = H5Screate_simple(2, kdims, NULL)) < 0 ||
        (d = H5Dcreate2(g, names[1], H5T_IEEE_F64BE, sp, lcpl, H5P_DEFAULT, H5P_DEFAULT)) < 0 ||
        H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, kernel) < 0 || H5Dclose(d) < 0 ||
        H5Sclose(sp) < 0)
        goto fail;
    d = sp = -1;
    if ((sp = H5Screate_simple(2, bdims, NULL)) < 0 ||
        (d = H5Dcreate2(g, names[0], H5T_IEEE_F64LE, sp, lcpl, H5P_DEFAULT, H5P_DEFAULT)) < 0 ||
        H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, bias) < 0 || H5Dclose(d) < 0 ||
        H5Sclose(sp) < 0 || H5Gclose(g) < 0)
        goto fail;
    d = sp = g = -1;
    hid_t s1 = H5Tcopy(H5T_C_S1);
    if (s1 < 0)
        goto fail;
    if ((g = H5Gcreate2(f, "flatten", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) < 0 ||
        (sp = H5Screate_simple(1, &zero, NULL)) < 0 ||
        (a = H5Acreate2(g, "weight_names", s1, sp, H5P_DEFAULT, H5P_DEFAULT)) < 0) {
        H5Tclose(s1);
        goto fail;
    }
    H5Tclose(s1);
    rc = 0;
fail:
    if (a >= 0) H5Aclose(a);
    if (d >= 0) H5Dclose(d);
    if (sp >= 0) H5Sclose(sp);
    if (st >= 0) H5Tclose(st);
    if (g >= 0) H5Gclose(g);
    if (lcpl >= 0) H5Pclose(lcpl);
    if (f >= 0 && H5Fclose(f) < 0)
        rc = -1;
    return rc;
}

static void test_h5_foreign(Ctx *t)
{
    char path[600], err[512];
    double kernel[18], bias[12];
    for (int i = 0; i < 18; i++)
        kernel[i] = 0.25 * i - 1.0;
    for (int i = 0; i < 12; i++)
        bias[i] = 1.0 / (i + 1);
    snprintf(path, sizeof path, "%s/foreign.h5", t->tmp_dir);
    check(t, write_foreign_h5(path, kernel, bias) == 0, "wrote a save_weights-layout float64 file");
    const NnrtWeightInfo table[] = {
        {"gru", "gru/gru_cell/kernel:0", 2, {3, 6}, 0, 1},
        {"gru", "gru/gru_cell/bias:0", 2, {2, 6}, 18, 1},
    };
    float block[30];
    int rc = nnrt_h5_load(path, table, 2, block, 1, NULL, err, sizeof err);
    int same = rc == 0;
    for (int i = 0; same && i < 18; i++)
        same = block[i] == (float)kernel[i];
    for (int i = 0; same && i < 12; i++)
        same = block[18 + i] == (float)bias[i];
    check(t, same, "h5 load: root layout, vlen names, Keras 3 GRU cell paths, float64 (big- and little-endian) "
          "converted (rc %d %s)", rc, err);
}

static void test_h5_keras_files(Ctx *t)
{
    char path[600], err[512];
    /* Keras 3.10 Sequential: weights named sequential_1/dense_3/kernel. */
    const NnrtWeightInfo k3[] = {
        {"dense_3", "dense_3/kernel:0", 2, {784, 128}, 0, 1},
        {"dense_3", "dense_3/bias:0", 1, {128}, 100352, 1},
        {"dense_4", "dense_4/kernel:0", 2, {128, 64}, 100480, 1},
        {"dense_4", "dense_4/bias:0", 1, {64}, 108672, 1},
        {"dense_5", "dense_5/kernel:0", 2, {64, 10}, 108736, 1},
        {"dense_5", "dense_5/bias:0", 1, {10}, 109376, 1},
    };
    float *w = calloc(109930, sizeof *w);   /* the larger of the two models */
    if (!w) {
        check(t, 0, "out of memory");
        return;
    }
    join(path, sizeof path, t->keras_dir, "mlp_fashion_mnist_k3.10.0.h5");
    int rc = nnrt_h5_load(path, k3, 6, w, 1, NULL, err, sizeof err);
    check(t, rc == 0, "h5 load Keras 3.10 file mlp_fashion_mnist_k3.10.0.h5 (rc %d %s)", rc, err);
    /* h5py: dense_3 kernel flat[0], flat[1], flat[-1]; dense_4 bias[0]; dense_5 kernel[-1]; dense_5 bias[-1] */
    check(t, w[0] == -0.0615523f && w[1] == 0.27052656f && w[100351] == -0.029995522f &&
          w[108672] == 0.05733112f && w[109375] == -0.13938643f && w[109385] == -0.20868397f,
          "h5 Keras 3 values equal h5py's (%.8g %.8g %.8g %.8g)", w[0], w[1], w[100351], w[109385]);

    /* tf.keras 2.3.0-tf: weights named dense_15/kernel:0, fixed-length names. */
    const NnrtWeightInfo k2[] = {
        {"dense_15", "dense_15/kernel:0", 2, {784, 120}, 0, 1},
        {"dense_15", "dense_15/bias:0", 1, {120}, 94080, 1},
        {"dense_16", "dense_16/kernel:0", 2, {120, 120}, 94200, 1},
        {"dense_16", "dense_16/bias:0", 1, {120}, 108600, 1},
        {"dense_17", "dense_17/kernel:0", 2, {120, 10}, 108720, 1},
        {"dense_17", "dense_17/bias:0", 1, {10}, 109920, 1},
    };
    join(path, sizeof path, t->keras_dir, "mlp_mnist_k2.3.0-tf.h5");
    rc = nnrt_h5_load(path, k2, 6, w, 1, NULL, err, sizeof err);
    check(t, rc == 0, "h5 load tf.keras 2.3 file mlp_mnist_k2.3.0-tf.h5 (rc %d %s)", rc, err);
    check(t, w[0] == -0.018101431f && w[1] == -0.054393336f && w[94080] == 0.16963078f &&
          w[94200] == -0.3867804f && w[109919] == -0.04198469f && w[109929] == 0.31845006f,
          "h5 tf.keras 2.3 values equal h5py's (%.8g %.8g %.8g)", w[0], w[94080], w[109929]);

    /* A model whose names differ from the file's: a clear mismatch. */
    NnrtWeightInfo renamed[6];
    memcpy(renamed, k3, sizeof renamed);
    renamed[0].layer = "dense";
    renamed[0].name = "dense/kernel:0";
    join(path, sizeof path, t->keras_dir, "mlp_fashion_mnist_k3.10.0.h5");
    rc = nnrt_h5_load(path, renamed, 6, w, 1, NULL, err, sizeof err);
    check(t, rc == NNRT_EMISMATCH && strstr(err, "layer 'dense' is not in the file") && strstr(err, "dense_3"),
          "h5 unknown layer lists the file's layers: %s", err);

    /* damaged/: each is an error for this model, never a crash. */
    const char *damaged[] = {"truncated_func_2in2out_k2.4.0.h5", "lambda_layer_k2.4.0.h5",
                             "weights_only_k2.4.0.h5"};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/damaged/%s", t->keras_dir, damaged[i]);
        err[0] = '\0';
        rc = nnrt_h5_load(path, k3, 6, w, 1, NULL, err, sizeof err);
        check(t, rc < 0 && strstr(err, damaged[i]) && !strchr(err, '\n'), "h5 damaged/%s: rc %d: %s",
              damaged[i], rc, err);
    }
    snprintf(path, sizeof path, "%s/damaged/truncated_func_2in2out_k2.4.0.h5", t->keras_dir);
    rc = nnrt_h5_load(path, k3, 6, w, 0, NULL, err, sizeof err);
    check(t, rc == NNRT_EFORMAT && strstr(err, "truncated"), "h5 truncated file fails in non-strict mode too: %s",
          err);
    /* The weights-only file is a valid save_weights file for its own model. */
    const NnrtWeightInfo wo[] = {
        {"dense", "dense/kernel:0", 2, {784, 16}, 0, 1},
        {"dense", "dense/bias:0", 1, {16}, 12544, 1},
        {"dense_1", "dense_1/kernel:0", 2, {16, 10}, 12560, 1},
        {"dense_1", "dense_1/bias:0", 1, {10}, 12720, 1},
    };
    snprintf(path, sizeof path, "%s/damaged/weights_only_k2.4.0.h5", t->keras_dir);
    rc = nnrt_h5_load(path, wo, 4, w, 1, NULL, err, sizeof err);
    check(t, rc == 0 && w[0] == -0.024337832f && w[12543] == -0.09736541f,
          "h5 save_weights layout (weights_only_k2.4.0.h5) loads for its own model (rc %d %s)", rc, err);

    /* Not HDF5 at all, and no file. */
    snprintf(path, sizeof path, "%s/not_hdf5.h5", t->tmp_dir);
    FILE *f = fopen(path, "wb");
    int wrote = f && fputs("\xEF\xBF\xBDHDF\r\n\x1a\n this is text", f) >= 0;
    if (f)
        wrote = fclose(f) == 0 && wrote;
    rc = nnrt_h5_load(path, k3, 6, w, 1, NULL, err, sizeof err);
    check(t, wrote && rc == NNRT_EFORMAT && strstr(err, "not an HDF5 file"), "h5 non-HDF5 file: %s", err);
    snprintf(path, sizeof path, "%s/missing.h5", t->tmp_dir);
    rc = nnrt_h5_load(path, k3, 6, w, 1, NULL, err, sizeof err);
    check(t, rc == NNRT_EIO && strstr(err, "No such file"), "h5 missing file: %s", err);
    free(w);
}

/* ---- .npy ---------------------------------------------------------------- */

static int write_raw(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    int ok = fwrite(data, 1, len, f) == len;
    return fclose(f) == 0 && ok ? 0 : -1;
}

/* A .npy v1.0 file with the given header dict and data bytes. */
static int write_npy(const char *path, const char *dict, const void *data, size_t len)
{
    unsigned char buf[512];
    size_t hl = strlen(dict), total = (10 + hl + 1 + 63) / 64 * 64;
    memcpy(buf, "\x93NUMPY\x01\x00", 8);
    buf[8] = (unsigned char)((total - 10) & 0xff);
    buf[9] = (unsigned char)((total - 10) >> 8);
    memcpy(buf + 10, dict, hl);
    memset(buf + 10 + hl, ' ', total - 10 - hl);
    buf[total - 1] = '\n';
    memcpy(buf + total, data, len);
    return write_raw(path, buf, total + len);
}

static void test_npy(Ctx *t)
{
    char path[600], err[512];
    float xf[2 * 3 * 4];
    int32_t xi[5] = {0, -1, 2147483647, -2147483647 - 1, 42};
    for (int i = 0; i < 24; i++)
        xf[i] = (float)i * 0.5f - 3.0f;
    NnrtArray a = {NNRT_F32, 3, {2, 3, 4}, xf}, b = {0};

    snprintf(path, sizeof path, "%s/x.npy", t->tmp_dir);
    int rc = nnrt_npy_save(path, &a, err, sizeof err);
    unsigned char *bytes = NULL;
    size_t len = 0;
    int ok = rc == 0 && file_bytes(path, &bytes, &len) == 0 && len == 128 + sizeof xf &&
             !memcmp(bytes, "\x93NUMPY\x01\x00", 8) && bytes[127] == '\n' &&
             strstr((char *)bytes + 10, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 4), }") ==
                 (char *)bytes + 10;
    free(bytes);
    check(t, ok, "npy save f32 [2,3,4]: v1.0, header padded to 128 bytes (rc %d %s)", rc, err);
    rc = nnrt_npy_load(path, &b, err, sizeof err);
    check(t, rc == 0 && b.dtype == NNRT_F32 && b.rank == 3 && b.shape[0] == 2 && b.shape[2] == 4 &&
          nnrt_array_count(&b) == 24 && !memcmp(b.data, xf, sizeof xf), "npy f32 round trip (rc %d %s)", rc, err);
    nnrt_array_free(&b);
    check(t, b.data == NULL && count_temp_files(t->tmp_dir) == 0, "npy save leaves no temporary file");

    NnrtArray ai = {NNRT_I32, 1, {5}, xi};
    rc = nnrt_npy_save(path, &ai, err, sizeof err);
    rc |= nnrt_npy_load(path, &b, err, sizeof err);
    check(t, rc == 0 && b.dtype == NNRT_I32 && b.rank == 1 && b.shape[0] == 5 && !memcmp(b.data, xi, sizeof xi),
          "npy i32 round trip, with INT32_MIN and INT32_MAX (%s)", err);
    nnrt_array_free(&b);

    double xd[3] = {1.5, -2.25, 1e-3};
    snprintf(path, sizeof path, "%s/d.npy", t->tmp_dir);
    rc = write_npy(path, "{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }", xd, sizeof xd);
    rc |= nnrt_npy_load(path, &b, err, sizeof err);
    check(t, rc == 0 && b.dtype == NNRT_F32 && ((float *)b.data)[1] == -2.25f && ((float *)b.data)[2] == 1e-3f,
          "npy f8 loads as f32 (%s)", err);
    nnrt_array_free(&b);

    int64_t xl[2] = {7, -3};
    rc = write_npy(path, "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", xl, sizeof xl);
    rc |= nnrt_npy_load(path, &b, err, sizeof err);
    check(t, rc == 0 && b.dtype == NNRT_I32 && ((int32_t *)b.data)[1] == -3, "npy i8 loads as i32 (%s)", err);
    nnrt_array_free(&b);

    unsigned char u8[4] = {0, 1, 255, 9};
    rc = write_npy(path, "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2), }", u8, 4);
    rc |= nnrt_npy_load(path, &b, err, sizeof err);
    check(t, rc == 0 && b.dtype == NNRT_I32 && b.rank == 2 && ((int32_t *)b.data)[2] == 255,
          "npy u1 [2,2] loads as i32 (%s)", err);
    nnrt_array_free(&b);

    xl[1] = (int64_t)1 << 40;
    write_npy(path, "{'descr': '<i8', 'fortran_order': False, 'shape': (2,), }", xl, sizeof xl);
    rc = nnrt_npy_load(path, &b, err, sizeof err);
    check(t, rc == NNRT_EFORMAT && strstr(err, "int32"), "npy i8 out of int32 range: %s", err);
    write_npy(path, "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 2), }", xf, 16);
    rc = nnrt_npy_load(path, &b, err, sizeof err);
    check(t, rc == NNRT_EFORMAT && strstr(err, "fortran_order"), "npy fortran_order rejected: %s", err);
    write_npy(path, "{'descr': '>f4', 'fortran_order': False, 'shape': (2,), }", xf, 8);
    rc = nnrt_npy_load(path, &b, err, sizeof err);
    check(t, rc == NNRT_EFORMAT && strstr(err, ">f4"), "npy big-endian rejected: %s", err);
    write_npy(path, "{'descr': '<f4', 'fortran_order': False, 'shape': (10,), }", xf, 12);
    rc = nnrt_npy_load(path, &b, err, sizeof err);
    check(t, rc == NNRT_EFORMAT && strstr(err, "truncated") && strstr(err, "d.npy"), "npy truncated: %s", err);
    remove(path);
    snprintf(path, sizeof path, "%s/x.npy", t->tmp_dir);
    remove(path);
}

/* ---- IDX ------------------------------------------------------------------ */

static void test_idx(Ctx *t)
{
    char path[600], err[512];
    NnrtArray a = {0};
    join(path, sizeof path, t->mnist_dir, "t10k-labels-idx1-ubyte.gz");
    int rc = nnrt_idx_load(path, 1.0f / 255, &a, err, sizeof err);
    int32_t *y = a.data;
    check(t, rc == 0 && a.dtype == NNRT_I32 && a.rank == 1 && a.shape[0] == 10000 && y[0] == 9 && y[1] == 2 &&
          y[2] == 1, "idx labels %s: 10000 int32, first 9 2 1 (rc %d %s)", path, rc, err);
    nnrt_array_free(&a);

    join(path, sizeof path, t->mnist_dir, "t10k-images-idx3-ubyte.gz");
    rc = nnrt_idx_load(path, 1.0f / 255, &a, err, sizeof err);
    float *x = a.data;
    double sum0 = 0;
    for (int i = 0; rc == 0 && i < 784; i++)
        sum0 += x[i];
    check(t, rc == 0 && a.dtype == NNRT_F32 && a.rank == 3 && a.shape[0] == 10000 && a.shape[1] == 28 &&
          a.shape[2] == 28 && fabs(x[14 * 28 + 14] - 110.0 / 255) < 1e-7 && fabs(sum0 - 33456.0 / 255) < 1e-3,
          "idx images: [10000,28,28] float32 scaled, image 0 pixel (14,14) = 110/255, sum 33456/255 (rc %d %s)",
          rc, err);
    nnrt_array_free(&a);

    /* Plain IDX written here; then the same cut short, plain and gzipped. */
    unsigned char idx[4 + 12 + 24];
    memcpy(idx, "\0\0\x08\x03\0\0\0\x02\0\0\0\x03\0\0\0\x04", 16);
    for (int i = 0; i < 24; i++)
        idx[16 + i] = (unsigned char)(i * 10);
    snprintf(path, sizeof path, "%s/plain-idx3-ubyte", t->tmp_dir);
    rc = write_raw(path, idx, sizeof idx);
    rc |= nnrt_idx_load(path, 0.5f, &a, err, sizeof err);
    check(t, rc == 0 && a.rank == 3 && a.shape[2] == 4 && ((float *)a.data)[23] == 115.0f,
          "idx plain (not gzipped) file, scale applied (%s)", err);
    nnrt_array_free(&a);
    rc = write_raw(path, idx, sizeof idx - 5);
    rc |= nnrt_idx_load(path, 1.0f, &a, err, sizeof err);
    check(t, rc == NNRT_EFORMAT && strstr(err, "truncated") && strstr(err, "plain-idx3-ubyte"),
          "idx truncated plain file: %s", err);
    rc = write_raw(path, idx, 10);
    rc |= nnrt_idx_load(path, 1.0f, &a, err, sizeof err);
    check(t, rc == NNRT_EFORMAT && strstr(err, "header"), "idx truncated header: %s", err);
    idx[2] = 0x07;
    rc = write_raw(path, idx, sizeof idx);
    rc |= nnrt_idx_load(path, 1.0f, &a, err, sizeof err);
    check(t, rc == NNRT_EFORMAT && strstr(err, "not an IDX file"), "idx unknown type code: %s", err);
    remove(path);

    unsigned char *gz = NULL;
    size_t len = 0;
    join(path, sizeof path, t->mnist_dir, "t10k-labels-idx1-ubyte.gz");
    int ok = file_bytes(path, &gz, &len) == 0;
    snprintf(path, sizeof path, "%s/cut-labels-idx1-ubyte.gz", t->tmp_dir);
    ok = ok && write_raw(path, gz, len / 2) == 0;
    free(gz);
    rc = nnrt_idx_load(path, 1.0f, &a, err, sizeof err);
    check(t, ok && rc < 0 && strstr(err, "cut-labels-idx1-ubyte.gz"), "idx truncated gzip file: %s", err);
    remove(path);
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s KERAS_H5_DIR OUT_H5 [FASHION_MNIST_DIR]\n", argv[0]);
        return 2;
    }
    Ctx t = {0, 0, argv[1], argv[2], argc > 3 ? argv[3] : "/usr/share/datasets/fashion-mnist", ""};
    snprintf(t.tmp_dir, sizeof t.tmp_dir, "/tmp/nnrt_io_XXXXXX");
    if (!mkdtemp(t.tmp_dir)) {
        perror("mkdtemp");
        return 2;
    }
    test_h5_roundtrip(&t);
    test_h5_partial(&t);
    test_h5_names(&t);
    test_h5_foreign(&t);
    test_h5_keras_files(&t);
    test_npy(&t);
    test_idx(&t);

    char path[600];
    snprintf(path, sizeof path, "%s/foreign.h5", t.tmp_dir);
    remove(path);
    snprintf(path, sizeof path, "%s/not_hdf5.h5", t.tmp_dir);
    remove(path);
    if (rmdir(t.tmp_dir) < 0)
        printf("note: %s not removed (left-over files)\n", t.tmp_dir);
    printf("%d passed, %d failed\n", t.passed, t.failed);
    return t.failed ? 1 : 0;
}
