/* test_optimizer.c — one optimizer configuration against make_refs.py.
 *
 * Built once per tests/optimizers/configs/<name>.yaml with -DPREFIX=opt_<name>
 * (see optimizers.cmake). From the initial weights w0.h5 it runs 10
 * P_train_step calls on the fixed batch x.npy / y.npy and compares, after
 * every step, each weight tensor with make_refs.py's float64 reference
 * (refs/<name>/w.npy), and the loss the step reports with loss.npy. The
 * measure is relative to the tensor's scale: max |got - want| / max |want|
 * over the tensor, and |got - want| / |want| for the loss; it must stay
 * within the tolerance (1e-6; argument 4 overrides it).
 *
 * Resuming: after step 5 the model is saved (P_save, with the optimizer
 * state in optimizer_weights, kept as TMP_DIR/<prefix>_step5.h5 for
 * check_state.py), loaded into a fresh model (P_load) which runs steps
 * 6..10; its weights and losses must be bit-identical to the uninterrupted
 * run's.
 *
 * The references are float64 .npy files, read here as float64 (the
 * runtime's npy loader gives float32), so the differences printed are
 * nncc's own.
 * Usage: test_opt_<name> REF_DIR DATA_DIR TMP_DIR [TOLERANCE]
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnrt.h"

#define STR2(x) #x
#define STR(x) STR2(x)
#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define API(name) CAT(PREFIX, CAT(_, name))
#include STR(HEADER)

#define STEPS 10
#define SAVE_AT 5

static int failures;

static void die(const char *what, const char *why)
{
    fprintf(stderr, "%s: %s\n", what, why);
    exit(2);
}

/* A little-endian float64 C-order .npy (versions 1-3) of rank 1 or 2:
 * the data and its shape (rows, cols; cols 1 for rank 1). */
static double *load_f64(const char *dir, const char *name, size_t *rows, size_t *cols)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s.npy", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f)
        die(path, "cannot open");
    unsigned char pre[12];
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6))
        die(path, "not a .npy file");
    size_t hlen = pre[8] | (size_t)pre[9] << 8;
    if (pre[6] >= 2) {
        if (fread(pre + 10, 1, 2, f) != 2)
            die(path, "truncated header");
        hlen |= (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
    }
    char *h = calloc(hlen + 1, 1);
    if (!h || fread(h, 1, hlen, f) != hlen)
        die(path, "truncated header");
    if (!strstr(h, "'descr': '<f8'") || !strstr(h, "'fortran_order': False"))
        die(path, "expected a little-endian float64 C-order array");
    const char *s = strstr(h, "'shape': (");
    if (!s)
        die(path, "no shape");
    s += strlen("'shape': (");
    char *end;
    *rows = strtoul(s, &end, 10);
    *cols = 1;
    if (end[0] == ',' && end[1] == ' ' && end[2] != ')')
        *cols = strtoul(end + 2, &end, 10);
    free(h);
    size_t n = *rows * *cols;
    double *a = malloc(n * sizeof *a);
    if (!a || fread(a, sizeof *a, n, f) != n)
        die(path, "truncated data");
    fclose(f);
    return a;
}

static NnrtArray load_f32(const char *dir, const char *name)
{
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/%s.npy", dir, name);
    NnrtArray a = {0};
    if (nnrt_npy_load(path, &a, err, sizeof err))
        die(path, err);
    return a;
}

static void check(int rc, const char *what, PREFIX *m)
{
    if (rc) {
        printf("%s failed: %d %s\n", what, rc, API(last_error)(m));
        exit(1);
    }
}

/* Each weight tensor against the reference row: the largest relative
 * difference, and the tensor it is in. */
static double compare_weights(const float *got, const double *want, const char **worst)
{
    const NnrtModel *desc = API(model)();
    double max_rel = 0;
    for (int i = 0; i < desc->num_weights; i++) {
        const NnrtWeightInfo *w = &desc->weights[i];
        size_t count = 1;
        for (int k = 0; k < w->rank; k++)
            count *= (size_t)w->shape[k];
        double diff = 0, scale = 0;
        for (size_t j = 0; j < count; j++) {
            double d = fabs((double)got[w->offset + j] - want[w->offset + j]);
            if (d > diff || d != d)
                diff = d;
            scale = fmax(scale, fabs(want[w->offset + j]));
        }
        double rel = diff / scale;
        if (rel > max_rel || rel != rel) {
            max_rel = rel;
            *worst = w->name;
        }
    }
    return max_rel;
}

int main(int argc, char **argv)
{
    if (argc != 4 && argc != 5) {
        fprintf(stderr, "usage: %s REF_DIR DATA_DIR TMP_DIR [TOLERANCE]\n", argv[0]);
        return 2;
    }
    const char *ref_dir = argv[1], *data_dir = argv[2], *tmp_dir = argv[3];
    const double tol = argc == 5 ? atof(argv[4]) : 1e-6;
    char w0[1024], saved[1024];
    snprintf(w0, sizeof w0, "%s/w0.h5", data_dir);
    snprintf(saved, sizeof saved, "%s/%s_step5.h5", tmp_dir, STR(PREFIX));

    NnrtArray x = load_f32(data_dir, "x"), y = load_f32(data_dir, "y");
    size_t rows, cols, lrows, lcols;
    double *ref = load_f64(ref_dir, "w", &rows, &cols), *ref_loss = load_f64(ref_dir, "loss", &lrows, &lcols);
    const NnrtModel *desc = API(model)();
    const size_t P = desc->num_params;
    if (rows != STEPS || cols != P || lrows != STEPS || lcols != 1) {
        printf("reference shapes w (%zu, %zu), loss (%zu, %zu); the model has %zu weights FAILED\n", rows, cols,
               lrows, lcols, P);
        return 1;
    }
    size_t n = (size_t)x.shape[0];
    const float *in[] = {x.data};
    const void *tg[] = {y.data};

    /* the uninterrupted run */
    float *hist = malloc(STEPS * P * sizeof *hist), losses[STEPS];
    PREFIX *m = API(new)(1);
    check(!m, "new", m);
    check(API(load)(m, w0), "load w0.h5", m);
    double worst_w = 0, worst_l = 0;
    printf("%s: %zu weights, %d steps, tolerance %.0e (relative to each tensor's largest value)\n", STR(PREFIX), P,
           STEPS, tol);
    for (int s = 1; s <= STEPS; s++) {
        check(API(train_step)(m, n, in, tg, &losses[s - 1]), "train step", m);
        memcpy(hist + (size_t)(s - 1) * P, API(weights)(m), P * sizeof *hist);
        const char *where = "";
        double rel_w = compare_weights(API(weights)(m), ref + (size_t)(s - 1) * P, &where);
        double rel_l = fabs(losses[s - 1] - ref_loss[s - 1]) / fabs(ref_loss[s - 1]);
        bool ok = rel_w <= tol && rel_l <= tol;
        printf("step %2d  loss %.7f (relative diff %.1e)  weights: max relative diff %.2e (%s) %s\n", s,
               losses[s - 1], rel_l, rel_w, where, ok ? "ok" : "FAILED");
        failures += !ok;
        worst_w = fmax(worst_w, rel_w);
        worst_l = fmax(worst_l, rel_l);
        if (s == SAVE_AT)
            check(API(save)(m, saved), "save after step 5", m);
    }

    /* resumed from the file saved after step 5: bit-identical */
    PREFIX *fresh = API(new)(2);
    check(!fresh, "new", fresh);
    check(API(load)(fresh, saved), "load the step-5 file", fresh);
    bool same = memcmp(API(weights)(fresh), hist + (size_t)(SAVE_AT - 1) * P, P * sizeof *hist) == 0;
    for (int s = SAVE_AT + 1; s <= STEPS; s++) {
        float l;
        check(API(train_step)(fresh, n, in, tg, &l), "resumed train step", fresh);
        bool step_same = memcmp(API(weights)(fresh), hist + (size_t)(s - 1) * P, P * sizeof *hist) == 0 &&
                         memcmp(&l, &losses[s - 1], sizeof l) == 0;
        if (!step_same) {
            const char *where = "";
            double rel = 0;
            double *want = malloc(P * sizeof *want);
            for (size_t j = 0; j < P; j++)
                want[j] = hist[(size_t)(s - 1) * P + j];
            rel = compare_weights(API(weights)(fresh), want, &where);
            free(want);
            printf("resumed step %2d differs from the uninterrupted run: max relative diff %.2e (%s), loss %.9g vs %.9g\n",
                   s, rel, where, l, losses[s - 1]);
        }
        same &= step_same;
    }
    printf("%-58s %s\n", "save after step 5, load into a fresh model, steps 6..10:",
           same ? "bit-identical ok" : "DIFFERENT FAILED");
    failures += !same;

    printf("%s max relative difference over %d steps: weights %.2e, loss %.2e (tolerance %.0e)\n", STR(PREFIX), STEPS,
           worst_w, worst_l, tol);
    API(free)(m);
    API(free)(fresh);
    free(hist), free(ref), free(ref_loss);
    nnrt_array_free(&x);
    nnrt_array_free(&y);
    printf("%d checks failed\n", failures);
    return failures != 0;
}
