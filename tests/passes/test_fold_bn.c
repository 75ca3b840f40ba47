/* test_fold_bn.c — pass_fold_bn keeps the numbers, on trained weights.
 *
 * Each model is compiled twice (tests/passes/passes.cmake): folded, as nncc
 * compiles by default, and with --no-fold, its BatchNormalizations running
 * as BN_INFER on their own. For each pair:
 *   1. a model of the folded build takes STEPS training steps on seeded
 *      random batches (training mode: the pass leaves the training graph
 *      alone, so both builds train alike), which moves gamma, beta and the
 *      moving statistics away from their initial 1, 0, 0 and 1;
 *   2. its weight block is copied into a model of the reference build, and
 *      both predict and evaluate N random samples (more than one chunk);
 *   3. every BatchNormalization tensor is redrawn far from its initial value
 *      (gamma and the moving variance in [0.5, 1.5], beta and the moving
 *      mean in [-0.5, 0.5]) in both, and they predict and evaluate again;
 *   4. the comparison can fail: with the first moving mean of the folded
 *      model off by 0.1, its outputs must differ by more than TOL.
 * The outputs must agree to a relative TOL: |a - b| / max(|a|, |b|), with
 * a floor of 1e-6 of the largest output so that values near zero compare
 * absolutely. Prints the max difference of each comparison.
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fold_bn.h"
#include "fold_bn_ref.h"
#include "fold_mlp_bn.h"
#include "fold_mlp_bn_ref.h"
#include "fold_resnet_small.h"
#include "fold_resnet_small_ref.h"
#include "model_batch.h"
#include "nnrt.h"

#define TOL 1e-5
#define STEPS 5
#define SEED 7

static int failures;

/* every output of every sample, in one array */
static float *predict_all(const NnrtModel *d, void *m, const Batch *b, size_t *count)
{
    size_t total = 0;
    for (int j = 0; j < d->num_outputs; j++)
        total += b->n * (size_t)d->output_size[j];
    float *v = must_alloc(total * sizeof *v), *out[NNRT_MAX_IO];
    size_t at = 0;
    for (int j = 0; j < d->num_outputs; j++) {
        out[j] = v + at;
        at += b->n * (size_t)d->output_size[j];
    }
    if (d->predict(m, b->n, (const float *const *)b->x, out)) {
        fprintf(stderr, "%s: predict failed: %s\n", d->name, d->last_error(m));
        exit(2);
    }
    *count = total;
    return v;
}

static double max_rel_difference(const float *a, const float *b, size_t n)
{
    double scale = 0, worst = 0;
    for (size_t i = 0; i < n; i++)
        scale = fmax(scale, fabs((double)b[i]));
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]) / fmax(fmax(fabs((double)a[i]), fabs((double)b[i])), 1e-6 * scale + 1e-30);
        if (!(d <= worst))
            worst = isnan(d) ? INFINITY : d;
    }
    return worst;
}

/* predict and evaluate with both models: equal to TOL, or (expect_equal false) the outputs not */
static void compare(const NnrtModel *fd, void *folded, const NnrtModel *rd, void *ref, const Batch *b,
                      const char *when, bool expect_equal)
{
    size_t n1, n2;
    float *o1 = predict_all(fd, folded, b, &n1), *o2 = predict_all(rd, ref, b, &n2);
    double out = n1 == n2 ? max_rel_difference(o1, o2, n1) : INFINITY;
    float l1 = 0, l2 = 0, m1[32] = {0}, m2[32] = {0};
    if (fd->evaluate(folded, b->n, (const float *const *)b->x, (const void *const *)b->y, &l1, m1) ||
        rd->evaluate(ref, b->n, (const float *const *)b->x, (const void *const *)b->y, &l2, m2)) {
        fprintf(stderr, "%s: evaluate failed\n", fd->name);
        exit(2);
    }
    double loss = max_rel_difference(&l1, &l2, 1);
    bool ok = expect_equal ? out <= TOL && loss <= TOL : out > TOL;
    printf("%-22s %-48s outputs %.3g, loss %.3g (%.6g vs %.6g): %s\n", fd->name, when, out, loss, (double)l1,
           (double)l2, ok ? "ok" : "FAILED");
    failures += !ok;
    free(o1);
    free(o2);
}

static bool ends_with(const char *s, const char *tail)
{
    size_t a = strlen(s), b = strlen(tail);
    return a >= b && !strcmp(s + a - b, tail);
}

static size_t tensor_size(const NnrtWeightInfo *w)
{
    size_t n = 1;
    for (int d = 0; d < w->rank; d++)
        n *= (size_t)w->shape[d];
    return n;
}

static void check_pair(const NnrtModel *fd, const NnrtModel *rd)
{
    if (fd->num_params != rd->num_params || fd->num_weights != rd->num_weights) {
        printf("%s: the two builds differ in their weights: FAILED\n", fd->name);
        failures++;
        return;
    }
    NnrtRng rng;
    nnrt_rng_seed(&rng, SEED);
    void *folded = nnrt_model_new(fd, SEED), *ref = nnrt_model_new(rd, SEED);
    if (!folded || !ref) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    for (int s = 0; s < STEPS; s++) {
        Batch t = batch_new(fd, fd->max_batch, &rng, 0, 1);
        float loss;
        if (fd->train_step(folded, t.n, (const float *const *)t.x, (const void *const *)t.y, &loss, NULL)) {
            fprintf(stderr, "%s: train_step failed: %s\n", fd->name, fd->last_error(folded));
            exit(2);
        }
        batch_free(&t);
    }
    float *wf = fd->params(folded), *wr = rd->params(ref);
    memcpy(wr, wf, fd->num_params * sizeof *wf);
    Batch b = batch_new(fd, 2 * fd->max_batch + 5, &rng, 0, 1);
    char when[64];
    snprintf(when, sizeof when, "after %d training steps", STEPS);
    compare(fd, folded, rd, ref, &b, when, true);

    const NnrtWeightInfo *first_mean = NULL;
    for (int t = 0; t < fd->num_weights; t++) {
        const NnrtWeightInfo *w = &fd->weights[t];
        bool unit = ends_with(w->name, "/gamma:0") || ends_with(w->name, "/moving_variance:0");
        if (!unit && !ends_with(w->name, "/beta:0") && !ends_with(w->name, "/moving_mean:0"))
            continue;
        if (!first_mean && ends_with(w->name, "/moving_mean:0"))
            first_mean = w;
        for (size_t k = 0; k < tensor_size(w); k++)
            wf[w->offset + k] = (float)(unit ? 0.5 + nnrt_rng_uniform(&rng) : nnrt_rng_uniform(&rng) - 0.5);
    }
    memcpy(wr, wf, fd->num_params * sizeof *wf);
    compare(fd, folded, rd, ref, &b, "with statistics redrawn", true);

    if (first_mean) {
        for (size_t k = 0; k < tensor_size(first_mean); k++)
            wf[first_mean->offset + k] += 0.1f;
        compare(fd, folded, rd, ref, &b, "with one moving mean off by 0.1 (must differ)", false);
    }
    batch_free(&b);
    fd->free_model(folded);
    rd->free_model(ref);
}

int main(void)
{
    check_pair(fold_bn_model(), fold_bn_ref_model());
    check_pair(fold_mlp_bn_model(), fold_mlp_bn_ref_model());
    check_pair(fold_resnet_small_model(), fold_resnet_small_ref_model());
    if (failures)
        printf("%d comparison(s) FAILED\n", failures);
    return failures ? 1 : 0;
}
