/* test_runtime_io.c — the runtime's file I/O: Keras HDF5 weights and
 * optimizer state (h5.c), IDX, .npy and HDF5 data arrays (data.c).
 *
 * Usage: test_runtime_io KERAS_H5_DIR|- OUT_H5 [FASHION_MNIST_DIR]
 *   KERAS_H5_DIR       shared/keras_h5 (real Keras files and damaged/); with
 *                      -, the checks of those files are left out (they are
 *                      outside files: CTest runs them as runtime_io_keras)
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
    const char *keras_dir;       /* NULL: leave out the checks of real Keras files */
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
                          saved, model_config, NULL, err, sizeof err);
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
                      model_config, NULL, err, sizeof err);
    rc |= nnrt_h5_save(again, model_layers, NUM_MODEL_LAYERS, model_weights, NUM_MODEL_WEIGHTS, saved,
                       model_config, NULL, err, sizeof err);
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
                      NULL, err, sizeof err);
    check(t, rc == NNRT_EIO && strstr(err, bad), "h5 save into a missing folder: %s", err);
    rc = nnrt_h5_save(again, model_layers, 1, model_weights, NUM_MODEL_WEIGHTS, saved, NULL, NULL, err,
                      sizeof err);
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
    int rc = nnrt_h5_save(path, layers, N, w, 3, block, NULL, NULL, err, sizeof err);
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

/* ---- optimizer state ------------------------------------------------------ */

/* Adam's slots for the round-trip model's dense layers: m then v per weight. */
static const NnrtWeightInfo adam_slots[] = {
    {"dense", "Adam/dense/kernel/m:0", 2, {4, 3}, 0, 1},
    {"dense", "Adam/dense/bias/m:0", 1, {3}, 12, 1},
    {"dense_1", "Adam/dense_1/kernel/m:0", 2, {2, 1}, 15, 1},
    {"dense_1", "Adam/dense_1/bias/m:0", 1, {1}, 17, 1},
    {"dense", "Adam/dense/kernel/v:0", 2, {4, 3}, 18, 1},
    {"dense", "Adam/dense/bias/v:0", 1, {3}, 30, 1},
    {"dense_1", "Adam/dense_1/kernel/v:0", 2, {2, 1}, 33, 1},
    {"dense_1", "Adam/dense_1/bias/v:0", 1, {1}, 35, 1},
};
#define NUM_ADAM_SLOTS (sizeof adam_slots / sizeof adam_slots[0])
#define ADAM_FLOATS 36

/* weight_names of optimizer_weights as tf.keras writes it: fixed-length
 * NUL-padded ASCII; first entry the int64 scalar step counter. */
static int keras_optimizer_layout(const char *path, const char *first, size_t count)
{
    int ok = 0;
    hid_t f = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT), g = -1, a = -1, type = -1, space = -1, ds = -1,
          dtype = -1, dspace = -1;
    if (f < 0 || (g = H5Gopen2(f, "optimizer_weights", H5P_DEFAULT)) < 0 ||
        (a = H5Aopen(g, "weight_names", H5P_DEFAULT)) < 0 || (type = H5Aget_type(a)) < 0 ||
        (space = H5Aget_space(a)) < 0)
        goto done;
    size_t width = H5Tget_size(type);
    char buf[4096] = "";
    if (H5Tget_class(type) != H5T_STRING || H5Tis_variable_str(type) || H5Tget_strpad(type) != H5T_STR_NULLPAD ||
        H5Tget_cset(type) != H5T_CSET_ASCII || H5Sget_simple_extent_npoints(space) != (hssize_t)count ||
        width * count >= sizeof buf || H5Aread(a, type, buf) < 0 || strncmp(buf, first, width))
        goto done;
    if ((ds = H5Dopen2(g, first, H5P_DEFAULT)) < 0 || (dtype = H5Dget_type(ds)) < 0 ||
        (dspace = H5Dget_space(ds)) < 0)
        goto done;
    ok = H5Tequal(dtype, H5T_STD_I64LE) > 0 && H5Sget_simple_extent_type(dspace) == H5S_SCALAR;
done:
    if (dspace >= 0) H5Sclose(dspace);
    if (dtype >= 0) H5Tclose(dtype);
    if (ds >= 0) H5Dclose(ds);
    if (space >= 0) H5Sclose(space);
    if (type >= 0) H5Tclose(type);
    if (a >= 0) H5Aclose(a);
    if (g >= 0) H5Gclose(g);
    if (f >= 0) H5Fclose(f);
    return ok;
}

/* Replace optimizer_weights/<name> by a float64 scalar (older writers). */
static int make_float_counter(const char *path, const char *name, double value)
{
    int ok = 0;
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT), g = -1, sp = -1, d = -1;
    if (f >= 0 && (g = H5Gopen2(f, "optimizer_weights", H5P_DEFAULT)) >= 0 && H5Ldelete(g, name, H5P_DEFAULT) >= 0 &&
        (sp = H5Screate(H5S_SCALAR)) >= 0 &&
        (d = H5Dcreate2(g, name, H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT)) >= 0)
        ok = H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, &value) >= 0;
    if (d >= 0) H5Dclose(d);
    if (sp >= 0) H5Sclose(sp);
    if (g >= 0) H5Gclose(g);
    if (f >= 0 && H5Fclose(f) < 0)
        ok = 0;
    return ok;
}

static int all_equal(const float *a, float v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (a[i] != v)
            return 0;
    return 1;
}

static void test_h5_optimizer(Ctx *t)
{
    char path[600], err[512];
    float weights[MODEL_FLOATS], back_w[MODEL_FLOATS], state[ADAM_FLOATS], back[ADAM_FLOATS];
    fill_block(weights, MODEL_FLOATS);
    for (size_t i = 0; i < ADAM_FLOATS; i++)
        state[i] = (float)(i + 1) * 0.001f - 0.01f;
    NnrtOptimizerState opt = {"Adam", 1234, adam_slots, NUM_ADAM_SLOTS, state};
    snprintf(path, sizeof path, "%s/with_adam.h5", t->tmp_dir);

    int rc = nnrt_h5_save(path, model_layers, NUM_MODEL_LAYERS, model_weights, NUM_MODEL_WEIGHTS, weights,
                          model_config, &opt, err, sizeof err);
    check(t, rc == 0, "h5 save with an Adam state (rc %d %s)", rc, err);
    check(t, keras_optimizer_layout(path, "Adam/iter:0", NUM_ADAM_SLOTS + 1),
          "h5 optimizer_weights: weight_names as Keras's (fixed-length ASCII), Adam/iter:0 first, int64 scalar");
    rc = nnrt_h5_load(path, model_weights, NUM_MODEL_WEIGHTS, back_w, 1, NULL, err, sizeof err);
    check(t, rc == 0 && !memcmp(back_w, weights, sizeof weights), "h5 weights of a file with optimizer state load "
          "(rc %d %s)", rc, err);

    /* round trip, the table in another order: matched by name */
    NnrtWeightInfo reversed[NUM_ADAM_SLOTS];
    for (size_t i = 0; i < NUM_ADAM_SLOTS; i++)
        reversed[i] = adam_slots[NUM_ADAM_SLOTS - 1 - i];
    for (size_t i = 0; i < ADAM_FLOATS; i++)
        back[i] = -9.0f;
    NnrtOptimizerState in = {"Adam", 0, reversed, NUM_ADAM_SLOTS, back};
    rc = nnrt_h5_load_optimizer(path, &in, err, sizeof err);
    check(t, rc == 1 && in.iterations == 1234 && !memcmp(back, state, sizeof state),
          "h5 optimizer state round trip: 1, iterations %lld, every slot bit for bit (rc %d %s)",
          (long long)in.iterations, rc, err);

    /* absent, another optimizer, another shape, a missing slot: 0, state untouched */
    for (size_t i = 0; i < ADAM_FLOATS; i++)
        back[i] = -9.0f;
    in = (NnrtOptimizerState){"Adam", 77, adam_slots, NUM_ADAM_SLOTS, back};
    rc = nnrt_h5_load_optimizer(t->out_h5, &in, err, sizeof err);
    check(t, rc == 0 && in.iterations == 77 && all_equal(back, -9.0f, ADAM_FLOATS) && strstr(err, "no optimizer state"),
          "h5 file without optimizer_weights: 0, untouched (%s)", err);
    NnrtWeightInfo sgd_slots[NUM_ADAM_SLOTS];
    memcpy(sgd_slots, adam_slots, sizeof sgd_slots);
    in = (NnrtOptimizerState){"SGD", 77, sgd_slots, 4, back};
    rc = nnrt_h5_load_optimizer(path, &in, err, sizeof err);
    check(t, rc == 0 && in.iterations == 77 && all_equal(back, -9.0f, ADAM_FLOATS) && strstr(err, "Adam's") &&
          strstr(err, "SGD"), "h5 Adam state loaded for SGD: 0, untouched (%s)", err);
    NnrtWeightInfo changed[NUM_ADAM_SLOTS];
    memcpy(changed, adam_slots, sizeof changed);
    changed[4].shape[1] = 2;                      /* dense/kernel/v (4,2) */
    in = (NnrtOptimizerState){"Adam", 77, changed, NUM_ADAM_SLOTS, back};
    rc = nnrt_h5_load_optimizer(path, &in, err, sizeof err);
    check(t, rc == 0 && all_equal(back, -9.0f, ADAM_FLOATS) && strstr(err, "[4, 3]") && strstr(err, "[4, 2]"),
          "h5 optimizer slot of another shape: 0, untouched (%s)", err);
    memcpy(changed, adam_slots, sizeof changed);
    changed[7].name = "Adam/dense_2/bias/v:0";
    rc = nnrt_h5_load_optimizer(path, &in, err, sizeof err);
    check(t, rc == 0 && all_equal(back, -9.0f, ADAM_FLOATS) && strstr(err, "Adam/dense_2/bias/v:0"),
          "h5 optimizer slot missing from the file: 0, untouched (%s)", err);
    in.num_slots = NUM_ADAM_SLOTS - 1;            /* amsgrad-like: the file has more */
    memcpy(changed, adam_slots, sizeof changed);
    rc = nnrt_h5_load_optimizer(path, &in, err, sizeof err);
    check(t, rc == 0 && all_equal(back, -9.0f, ADAM_FLOATS) && strstr(err, "8 slot tensors"),
          "h5 optimizer state with extra slots: 0 (%s)", err);

    /* a float step counter (older Keras) loads */
    rc = make_float_counter(path, "Adam/iter:0", 42.0);
    in = (NnrtOptimizerState){"Adam", 0, adam_slots, NUM_ADAM_SLOTS, back};
    rc = rc ? nnrt_h5_load_optimizer(path, &in, err, sizeof err) : -100;
    check(t, rc == 1 && in.iterations == 42 && !memcmp(back, state, sizeof state),
          "h5 float64 step counter reads as 42 (rc %d %s)", rc, err);

    /* bad states are refused before anything is written */
    NnrtWeightInfo clash[1] = {{"dense", "Adam/iter:0", 1, {3}, 0, 1}};
    NnrtOptimizerState bad = {"Adam", 1, clash, 1, state};
    rc = nnrt_h5_save(path, model_layers, NUM_MODEL_LAYERS, model_weights, NUM_MODEL_WEIGHTS, weights, NULL, &bad,
                      err, sizeof err);
    check(t, rc == NNRT_EINVAL && strstr(err, "slot 0"), "h5 save refuses a slot named like the step counter: %s", err);
    bad = (NnrtOptimizerState){"Ad/am", 1, adam_slots, NUM_ADAM_SLOTS, state};
    rc = nnrt_h5_save(path, model_layers, NUM_MODEL_LAYERS, model_weights, NUM_MODEL_WEIGHTS, weights, NULL, &bad,
                      err, sizeof err);
    check(t, rc == NNRT_EINVAL && strstr(err, "optimizer"), "h5 save refuses an optimizer name with '/': %s", err);
    in = (NnrtOptimizerState){"Adam", 0, adam_slots, NUM_ADAM_SLOTS, back};
    check(t, nnrt_h5_load_optimizer(path, &in, err, sizeof err) == 1, "h5 refused saves left the file intact");
    remove(path);
    check(t, count_temp_files(t->tmp_dir) == 0, "h5 optimizer saves leave no temporary file");
    NnrtOptimizerState sgd = {"SGD", 0, NULL, 0, NULL};
    snprintf(path, sizeof path, "%s/missing.h5", t->tmp_dir);
    rc = nnrt_h5_load_optimizer(path, &sgd, err, sizeof err);
    check(t, rc == NNRT_EIO, "h5 missing file: optimizer load NNRT_EIO (%s)", err);
}

/* Optimizer state in real Keras files. */
static void test_h5_keras_optimizer(Ctx *t)
{
    char path[600], err[512];
    int rc;
    /* tf.keras 2.3: mlp_mnist's Adam state against a hand-made table (v before m here) */
    static const struct { const char *layer; int64_t in, out; } dense[3] = {
        {"dense_15", 784, 120}, {"dense_16", 120, 120}, {"dense_17", 120, 10}};
    static char names[12][48];
    NnrtWeightInfo k2[12];
    size_t offset = 0, n = 0;
    for (int slot = 1; slot >= 0; slot--)
        for (int l = 0; l < 3; l++)
            for (int bias = 0; bias < 2; bias++) {
                snprintf(names[n], sizeof names[n], "Adam/%s/%s/%c:0", dense[l].layer, bias ? "bias" : "kernel",
                         slot ? 'v' : 'm');
                k2[n] = (NnrtWeightInfo){dense[l].layer, names[n], bias ? 1 : 2,
                                         {bias ? dense[l].out : dense[l].in, dense[l].out}, offset, 1};
                offset += (size_t)(bias ? dense[l].out : dense[l].in * dense[l].out);
                n++;
            }
    float *s = malloc(offset * sizeof *s);
    NnrtOptimizerState keras = {"Adam", 0, k2, 12, s};
    join(path, sizeof path, t->keras_dir, "mlp_mnist_k2.3.0-tf.h5");
    rc = s ? nnrt_h5_load_optimizer(path, &keras, err, sizeof err) : -100;
    check(t, rc == 1 && keras.iterations == 187500, "h5 Keras 2.3 Adam state loads: iterations %lld (rc %d %s)",
          (long long)keras.iterations, rc, err);
    /* h5py: dense_15/bias/m[0], dense_16/kernel/m[-1], dense_17/kernel/v[-1], dense_17/bias/v[-1] */
    const NnrtWeightInfo *b15m = &k2[7], *k16m = &k2[8], *k17v = &k2[4], *b17v = &k2[5];
    check(t, rc == 1 && !strcmp(b15m->name, "Adam/dense_15/bias/m:0") && s[b15m->offset] == -6.246385e-07f &&
          s[k16m->offset + 120 * 120 - 1] == 8.95852e-07f && s[k17v->offset + 1199] == 9.253238e-06f &&
          s[b17v->offset + 9] == 1.121561e-05f, "h5 Keras 2.3 Adam slot values equal h5py's");
    free(s);
    NnrtOptimizerState sgd = {"SGD", 0, NULL, 0, NULL};
    join(path, sizeof path, t->keras_dir, "func_2in2out_concat_k2.4.0.h5");
    rc = nnrt_h5_load_optimizer(path, &sgd, err, sizeof err);
    check(t, rc == 1 && sgd.iterations == 7260, "h5 Keras 2.4 SGD state (no slots): iterations %lld (rc %d %s)",
          (long long)sgd.iterations, rc, err);
    join(path, sizeof path, t->keras_dir, "dscnn_wakeword_k2.14.0.h5");
    rc = nnrt_h5_load_optimizer(path, &sgd, err, sizeof err);
    check(t, rc == 0 && strstr(err, "another layout") && strstr(err, "iteration:0"),
          "h5 Keras 2.14 optimizer layout: 0 (%s)", err);
    snprintf(path, sizeof path, "%s/damaged/truncated_func_2in2out_k2.4.0.h5", t->keras_dir);
    rc = nnrt_h5_load_optimizer(path, &sgd, err, sizeof err);
    check(t, rc < 0 && strstr(err, "truncated_func"), "h5 truncated file: optimizer load fails (rc %d %s)", rc, err);
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

/* ---- HDF5 datasets ---------------------------------------------------------- */

static int write_h5_dataset(hid_t file, const char *name, hid_t type, int rank, const hsize_t *dims,
                            hid_t mem_type, const void *data)
{
    hid_t lcpl = H5Pcreate(H5P_LINK_CREATE), sp = -1, d = -1;
    int ok = lcpl >= 0 && H5Pset_create_intermediate_group(lcpl, 1) >= 0 &&
             (sp = H5Screate_simple(rank, dims, NULL)) >= 0 &&
             (d = H5Dcreate2(file, name, type, sp, lcpl, H5P_DEFAULT, H5P_DEFAULT)) >= 0 &&
             H5Dwrite(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data) >= 0;
    if (d >= 0) H5Dclose(d);
    if (sp >= 0) H5Sclose(sp);
    if (lcpl >= 0) H5Pclose(lcpl);
    return ok ? 0 : -1;
}

static void test_hdf5_data(Ctx *t)
{
    char path[600], err[512];
    double xd[6] = {0.5, -1.25, 2, 3, 4, 1e-3};
    int64_t labels[4] = {0, 1, 2, -5}, big[2] = {1, (int64_t)1 << 40};
    unsigned char u8[4] = {0, 7, 255, 9};
    uint32_t ubig[1] = {4000000000u};
    const char *strings[1] = {"text"};
    hsize_t d32[2] = {3, 2}, d4[1] = {4}, d22[2] = {2, 2}, d2[1] = {2}, d1[1] = {1};
    snprintf(path, sizeof path, "%s/data.h5", t->tmp_dir);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), st = H5Tcopy(H5T_C_S1);
    int wrote = f >= 0 && st >= 0 && H5Tset_size(st, H5T_VARIABLE) >= 0 &&
                write_h5_dataset(f, "x", H5T_IEEE_F64BE, 2, d32, H5T_NATIVE_DOUBLE, xd) == 0 &&
                write_h5_dataset(f, "grp/labels", H5T_STD_I64LE, 1, d4, H5T_NATIVE_INT64, labels) == 0 &&
                write_h5_dataset(f, "u8", H5T_STD_U8LE, 2, d22, H5T_NATIVE_UCHAR, u8) == 0 &&
                write_h5_dataset(f, "big", H5T_STD_I64LE, 1, d2, H5T_NATIVE_INT64, big) == 0 &&
                write_h5_dataset(f, "ubig", H5T_STD_U32LE, 1, d1, H5T_NATIVE_UINT32, ubig) == 0 &&
                write_h5_dataset(f, "s", st, 1, d1, st, strings) == 0;
    if (st >= 0)
        H5Tclose(st);
    if (f >= 0 && H5Fclose(f) < 0)
        wrote = 0;
    check(t, wrote, "wrote an HDF5 data file");

    NnrtArray a = {0};
    int rc = nnrt_hdf5_load(path, "x", &a, err, sizeof err);
    float *x = a.data;
    check(t, rc == 0 && a.dtype == NNRT_F32 && a.rank == 2 && a.shape[0] == 3 && a.shape[1] == 2 && x[1] == -1.25f &&
          x[5] == 1e-3f, "hdf5 float64 big-endian dataset loads as f32 [3,2] (rc %d %s)", rc, err);
    nnrt_array_free(&a);
    rc = nnrt_hdf5_load(path, "/grp/labels", &a, err, sizeof err);
    int32_t *y = a.data;
    check(t, rc == 0 && a.dtype == NNRT_I32 && a.rank == 1 && a.shape[0] == 4 && y[2] == 2 && y[3] == -5,
          "hdf5 int64 dataset in a group loads as i32 (rc %d %s)", rc, err);
    nnrt_array_free(&a);
    rc = nnrt_hdf5_load(path, "u8", &a, err, sizeof err);
    y = a.data;
    check(t, rc == 0 && a.dtype == NNRT_I32 && a.rank == 2 && y[2] == 255, "hdf5 uint8 loads as i32 (rc %d %s)", rc,
          err);
    nnrt_array_free(&a);

    static const struct { const char *dataset, *want; int rc; } bad[] = {
        {"big", "1099511627776) does not fit int32", NNRT_EFORMAT},
        {"ubig", "4000000000) does not fit int32", NNRT_EFORMAT},
        {"s", "neither floats nor integers", NNRT_EFORMAT},
        {"grp", "no dataset 'grp'", NNRT_EMISMATCH},
        {"grp/missing/x", "no dataset 'grp/missing/x'", NNRT_EMISMATCH},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        rc = nnrt_hdf5_load(path, bad[i].dataset, &a, err, sizeof err);
        check(t, rc == bad[i].rc && strstr(err, bad[i].want) && strstr(err, "data.h5") && a.data == NULL,
              "hdf5 dataset '%s': %s", bad[i].dataset, err);
    }
    if (t->keras_dir) {
        snprintf(path, sizeof path, "%s/damaged/truncated_func_2in2out_k2.4.0.h5", t->keras_dir);
        rc = nnrt_hdf5_load(path, "x", &a, err, sizeof err);
        check(t, rc == NNRT_EFORMAT && strstr(err, "damaged or truncated"), "hdf5 truncated file: %s", err);
    }
    snprintf(path, sizeof path, "%s/data.h5", t->tmp_dir);
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
        fprintf(stderr, "usage: %s KERAS_H5_DIR|- OUT_H5 [FASHION_MNIST_DIR]\n", argv[0]);
        return 2;
    }
    const char *keras_dir = strcmp(argv[1], "-") ? argv[1] : NULL;
    Ctx t = {0, 0, keras_dir, argv[2], argc > 3 ? argv[3] : "/usr/share/datasets/fashion-mnist", ""};
    snprintf(t.tmp_dir, sizeof t.tmp_dir, "/tmp/nnrt_io_XXXXXX");
    if (!mkdtemp(t.tmp_dir)) {
        perror("mkdtemp");
        return 2;
    }
    test_h5_roundtrip(&t);
    test_h5_partial(&t);
    test_h5_names(&t);
    test_h5_optimizer(&t);
    test_h5_foreign(&t);
    if (t.keras_dir) {
        test_h5_keras_optimizer(&t);
        test_h5_keras_files(&t);
    } else {
        printf("left out: the checks of real Keras files (no KERAS_H5_DIR; CTest runs them as runtime_io_keras)\n");
    }
    test_npy(&t);
    test_hdf5_data(&t);
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
