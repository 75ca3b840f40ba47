/* test_golden.c — generated code against PyTorch, tensor by tensor.
 *
 * Built once per golden model (a tests/golden/ model file) with -DPREFIX=<model>:
 * loads the initial weights the PyTorch script wrote (w0.h5, Keras layout,
 * written by h5py), then compares with the script's float64 references:
 * outputs, loss and metrics, every gradient, the weights after one and two
 * optimizer steps, and the loss after them. Prints the max difference of
 * each tensor; fails above the tolerance. Finally P_save then P_load into a
 * fresh model must give bit-identical predictions.
 *
 * Two modes, as in Keras (they differ only with BatchNormalization): predict
 * and evaluate run in inference mode and are compared with out.npy,
 * eval_loss.npy and eval_metrics.npy (at w0, w1, w2); loss_grad and the train
 * steps run in training mode and are compared with loss.npy and metrics.npy
 * (at w0, w1). The weights after a step include the moving statistics, and
 * evaluate after each step reads them.
 * Built with -DTIMESTEPS=T, the model has a variable time axis (shape
 * [null, ...], a larger maximum) and every call runs at the golden's T.
 * Usage: test_golden_<model> GOLDEN_DIR TMP_DIR
 */
#include <math.h>
#include <stdbool.h>
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

/* A model compiled with a variable time axis runs at the golden's length. */
#ifdef TIMESTEPS
#define NT(n) (n), TIMESTEPS
#else
#define NT(n) (n)
#endif

static int failures;

static NnrtArray load(const char *dir, const char *name)
{
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/%s.npy", dir, name);
    NnrtArray a = {0};
    if (nnrt_npy_load(path, &a, err, sizeof err)) {
        fprintf(stderr, "cannot load %s: %s\n", path, err);
        exit(2);
    }
    return a;
}

/* max |a - b| / max(1, |b|max): relative to the reference's scale */
static void compare(const char *what, const float *got, const float *want, size_t n, double tol)
{
    double maxdiff = 0, scale = 1e-30;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - want[i]);
        if (d > maxdiff || d != d)
            maxdiff = d;
        if (fabs(want[i]) > scale)
            scale = fabs(want[i]);
    }
    double rel = maxdiff / (scale > 1 ? scale : 1);
    bool ok = rel <= tol;
    printf("%-34s max diff %.3e (relative %.3e, tolerance %.0e) %s\n", what, maxdiff, rel, tol, ok ? "ok" : "FAILED");
    failures += !ok;
}

/* A flat weight-block tensor (gradients, weights after a step): the sizes
 * must agree, then each weight tensor is compared on its own, in the model's
 * weight order, so that a failure names the tensor. */
static void compare_block(const char *what, const float *got, const NnrtArray *want)
{
    const NnrtModel *desc = API(model)();
    size_t n = nnrt_array_count(want), covered = 0;
    for (int i = 0; i < desc->num_weights; i++) {
        const NnrtWeightInfo *w = &desc->weights[i];
        size_t count = 1;
        for (int k = 0; k < w->rank; k++)
            count *= (size_t)w->shape[k];
        if (w->offset + count > n)
            break;
        char label[160];
        snprintf(label, sizeof label, "%s %s", what, w->name);
        compare(label, got + w->offset, (const float *)want->data + w->offset, count, 1e-5);
        covered += count;
    }
    if (n != desc->num_params || covered != n) {
        printf("%-34s model has %zu floats, reference %zu, tensors cover %zu FAILED\n", what, desc->num_params, n,
               covered);
        failures++;
    }
}

static void check(int rc, const char *what, PREFIX *m)
{
    if (rc) {
        printf("%s failed: %d %s\n", what, rc, API(last_error)(m));
        exit(1);
    }
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s GOLDEN_DIR TMP_DIR\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    char w0[1024], saved[1024];
    snprintf(w0, sizeof w0, "%s/w0.h5", dir);
    snprintf(saved, sizeof saved, "%s/%s_saved.h5", argv[2], STR(PREFIX));
    NnrtArray x = load(dir, "x"), y = load(dir, "y"), out = load(dir, "out"), loss = load(dir, "loss"),
              grads = load(dir, "grads"), w1 = load(dir, "w1"), w2 = load(dir, "w2"), metrics = load(dir, "metrics"),
              eval_loss = load(dir, "eval_loss"), eval_metrics = load(dir, "eval_metrics");
    size_t n = (size_t)x.shape[0];
    const float *in[] = {x.data};
    const void *tg[] = {y.data};
    float *pred = malloc(nnrt_array_count(&out) * sizeof *pred);
    const float *ref_loss = loss.data, *ref_metric = metrics.data;          /* training mode */
    const float *ref_eval = eval_loss.data, *ref_eval_metric = eval_metrics.data; /* inference mode */

    PREFIX *m = API(new)(7);
    check(!m, "new", m);
    check(API(load)(m, w0), "load w0.h5", m);
    check(API(predict)(m, NT(n), in, (float *[]){pred}), "predict", m);
    compare("outputs", pred, out.data, nnrt_array_count(&out), 1e-5);
    float l, met[4];
    check(API(evaluate)(m, NT(n), in, tg, &l, met), "evaluate", m);
    compare("evaluate loss", &l, &ref_eval[0], 1, 1e-5);
    compare("evaluate metric", met, &ref_eval_metric[0], 1, 1e-5);
    check(API(loss_grad)(m, NT(n), in, tg, &l), "loss_grad", m);
    compare("loss", &l, &ref_loss[0], 1, 1e-5);
    compare_block("gradient", API(grads)(m), &grads);
    check(API(train_step_metrics)(m, NT(n), in, tg, &l, met), "train step 1", m);
    compare("step 1 loss", &l, &ref_loss[0], 1, 1e-5);
    compare("step 1 training metric", met, &ref_metric[0], 1, 1e-5);
    compare_block("after step 1", API(weights)(m), &w1);
    check(API(evaluate)(m, NT(n), in, tg, &l, met), "evaluate after step 1", m);
    compare("evaluate loss after step 1", &l, &ref_eval[1], 1, 1e-5);
    compare("evaluate metric after step 1", met, &ref_eval_metric[1], 1, 1e-5);
    check(API(train_step)(m, NT(n), in, tg, &l), "train step 2", m);
    compare("step 2 loss", &l, &ref_loss[1], 1, 1e-5);
    compare_block("after step 2", API(weights)(m), &w2);
    check(API(evaluate)(m, NT(n), in, tg, &l, met), "evaluate after", m);
    compare("evaluate loss after step 2", &l, &ref_eval[2], 1, 1e-5);
    compare("evaluate metric after step 2", met, &ref_eval_metric[2], 1, 1e-5);

    /* save, load into a fresh model: identical predictions */
    check(API(save)(m, saved), "save", m);
    PREFIX *fresh = API(new)(99);
    check(API(load)(fresh, saved), "load saved", fresh);
    float *p1 = malloc(nnrt_array_count(&out) * sizeof *p1), *p2 = malloc(nnrt_array_count(&out) * sizeof *p2);
    check(API(predict)(m, NT(n), in, (float *[]){p1}), "predict", m);
    check(API(predict)(fresh, NT(n), in, (float *[]){p2}), "predict", fresh);
    bool same = memcmp(p1, p2, nnrt_array_count(&out) * sizeof *p1) == 0;
    printf("%-34s %s\n", "save/load round trip", same ? "identical ok" : "DIFFERENT FAILED");
    failures += !same;

    /* API contract: bad arguments are rejected and leave the model unchanged */
    int bad = 0;
    bad += API(predict)(NULL, NT(n), in, (float *[]){p1}) >= 0;
    bad += API(predict)(m, NT(0), in, (float *[]){p1}) >= 0;
    bad += API(train_step)(m, NT(n), (const float *[]){NULL}, tg, &l) >= 0;
    bad += API(train_step)(m, NT(n), in, (const void *[]){NULL}, &l) >= 0;
    bad += API(load)(m, "/nonexistent/weights.h5") >= 0;
    bad += strlen(API(last_error)(m)) == 0;
    check(API(predict)(m, NT(n), in, (float *[]){p2}), "predict", m);
    bad += memcmp(p1, p2, nnrt_array_count(&out) * sizeof *p1) != 0;
    printf("%-34s %s\n", "bad arguments rejected", bad ? "FAILED" : "ok");
    failures += bad != 0;

    API(free)(m);
    API(free)(fresh);
    free(pred), free(p1), free(p2);
    NnrtArray *all[] = {&x, &y, &out, &loss, &grads, &w1, &w2, &metrics, &eval_loss, &eval_metrics};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        nnrt_array_free(all[i]);
    printf("%d checks failed\n", failures);
    return failures != 0;
}
