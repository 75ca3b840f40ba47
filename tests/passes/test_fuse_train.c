/* test_fuse_train.c — pass_fuse keeps the training step's numbers bit for bit.
 *
 * Each model is compiled twice (tests/passes/passes.cmake): as nncc
 * compiles by default, and with --no-fuse. The fused training graph runs
 * BN_GRAD (a BatchNormalization's backward with its activation's, its gamma's
 * and its beta's gradients in one kernel), a BatchNormalization with its
 * activation in one pass, bias and activation in the GEMM's epilogue,
 * Add + relu in one loop, and max pooling's gradient through relu; each does the unfused kernels' operations in
 * their order, so the numbers must be equal, not close. For each pair, from
 * the same initial weights (the seed) and on the same seeded random batches:
 *   1. loss_grad: the loss and every float of the gradient block;
 *   2. STEPS training steps (forward, backward, the optimizer's update and
 *      the moving statistics): every float of the weight block after each.
 * Both builds use this program's compiler flags (no -march: no FMA
 * contraction could tell them apart). One fusion rounds differently:
 * with SGD (fashion_mlp_bn; sgd_momentum.yaml with momentum) a one-chunk
 * step takes w -= lr x^T dy (or the velocity) in the gradient's GEMM
 * (pass_fuse_sgd), and OpenBLAS may compute that with a fused
 * multiply-add; there the weights after a step must agree to SGD_TOL
 * relative (the gradients from loss_grad are still bit-identical).
 * The comparison can fail: after one weight of the fused model is nudged by
 * one ulp, its gradients must differ. Prints the number of differing floats
 * of each comparison (and, where SGD_TOL applies, the largest difference).
 */
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuse_bn.h"
#include "fuse_bn_ref.h"
#include "fuse_mlp_bn.h"
#include "fuse_mlp_bn_ref.h"
#include "fuse_acts.h"
#include "fuse_acts_ref.h"
#include "fuse_pool_relu.h"
#include "fuse_pool_relu_ref.h"
#include "fuse_resnet_small.h"
#include "fuse_sgd_momentum.h"
#include "fuse_sgd_momentum_ref.h"
#include "fuse_resnet_small_ref.h"
#include "model_batch.h"
#include "nnrt.h"

#define STEPS 3
#define SEED 11
#define SGD_TOL 1e-6

static int failures;

/* floats of a and b that differ in any bit */
static size_t differing(const float *a, const float *b, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += memcmp(&a[i], &b[i], sizeof *a) != 0;
    return k;
}

static void report(const char *name, const char *what, size_t diff, size_t n, bool expect_equal)
{
    bool ok = expect_equal ? diff == 0 : diff > 0;
    printf("%-18s %-40s %zu of %zu floats differ: %s\n", name, what, diff, n, ok ? "ok" : "FAILED");
    failures += !ok;
}

/* |a - b| / max(|a|, |b|, 1e-3), the largest over n floats (NaN: infinity) */
static double max_rel(const float *a, const float *b, size_t n)
{
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - b[i]) / fmax(fmax(fabs((double)a[i]), fabs((double)b[i])), 1e-3);
        if (!(d <= worst))
            worst = isnan(d) ? INFINITY : d;
    }
    return worst;
}

static void loss_grad(const NnrtModel *d, void *m, const Batch *b, float *loss)
{
    if (d->loss_grad(m, b->n, (const float *const *)b->x, (const void *const *)b->y, loss)) {
        fprintf(stderr, "%s: loss_grad failed: %s\n", d->name, d->last_error(m));
        exit(2);
    }
}

static void check_pair(const NnrtModel *fd, const NnrtModel *rd, bool sgd_in_gemm)
{
    NnrtRng rng;
    nnrt_rng_seed(&rng, SEED);
    size_t n = fd->max_batch < 16 ? fd->max_batch : 16, np = fd->num_params;
    void *fused = fd->new_model(SEED), *ref = rd->new_model(SEED);
    if (!fused || !ref || rd->num_params != np) {
        fprintf(stderr, "%s: cannot create the two models\n", fd->name);
        exit(2);
    }
    report(fd->name, "initial weights", differing(fd->params(fused), rd->params(ref), np), np, true);

    Batch b = batch_new(fd, n, &rng, -1, 1);
    float l1, l2;
    loss_grad(fd, fused, &b, &l1);
    loss_grad(rd, ref, &b, &l2);
    report(fd->name, "loss", differing(&l1, &l2, 1), 1, true);
    report(fd->name, "gradients", differing(fd->grads(fused), rd->grads(ref), np), np, true);

    for (int s = 0; s < STEPS; s++) {
        Batch t = batch_new(fd, n, &rng, -1, 1);
        if (fd->train_step(fused, n, (const float *const *)t.x, (const void *const *)t.y, &l1, NULL) ||
            rd->train_step(ref, n, (const float *const *)t.x, (const void *const *)t.y, &l2, NULL)) {
            fprintf(stderr, "%s: train_step failed\n", fd->name);
            exit(2);
        }
        char what[64];
        snprintf(what, sizeof what, "weights after training step %d", s + 1);
        size_t diff = differing(fd->params(fused), rd->params(ref), np);
        if (sgd_in_gemm) {
            double rel = max_rel(fd->params(fused), rd->params(ref), np);
            bool ok = rel <= SGD_TOL;
            printf("%-18s %-40s %zu of %zu floats differ, by at most %.2g relative (SGD in the GEMM): %s\n",
                   fd->name, what, diff, np, rel, ok ? "ok" : "FAILED");
            failures += !ok;
        } else {
            report(fd->name, what, diff, np, true);
        }
        batch_free(&t);
    }

    if (sgd_in_gemm) {
        /* a step of more than max_batch samples sums its chunks' gradients and
         * updates after them, and a frozen layer's kernel stays as it is */
        memcpy(rd->params(ref), fd->params(fused), np * sizeof(float));
        fd->reset_optimizer(fused);  /* and the same (zero) velocities */
        rd->reset_optimizer(ref);
        Batch t = batch_new(fd, fd->max_batch + 5, &rng, -1, 1);
        if (fd->train_step(fused, t.n, (const float *const *)t.x, (const void *const *)t.y, &l1, NULL) ||
            rd->train_step(ref, t.n, (const float *const *)t.x, (const void *const *)t.y, &l2, NULL)) {
            fprintf(stderr, "%s: train_step failed\n", fd->name);
            exit(2);
        }
        report(fd->name, "weights after a two-chunk step", differing(fd->params(fused), rd->params(ref), np), np,
               true);
        const NnrtWeightInfo *k = &fd->weights[0];
        for (int j = 0; j < fd->num_weights; j++)
            if (strstr(fd->weights[j].name, "kernel")) {
                k = &fd->weights[j];
                break;
            }
        size_t kn = 1;
        for (int d = 0; d < k->rank; d++)
            kn *= (size_t)k->shape[d];
        float *before = must_alloc(kn * sizeof *before);
        memcpy(before, fd->params(fused) + k->offset, kn * sizeof *before);
        fd->set_trainable(fused, k->layer, 0);
        if (fd->train_step(fused, n, (const float *const *)b.x, (const void *const *)b.y, &l1, NULL)) {
            fprintf(stderr, "%s: train_step failed\n", fd->name);
            exit(2);
        }
        fd->set_trainable(fused, k->layer, 1);
        char what[96];
        snprintf(what, sizeof what, "%s frozen: unchanged by a step", k->name);
        report(fd->name, what, differing(fd->params(fused) + k->offset, before, kn), kn, true);
        free(before);
        batch_free(&t);
    }

    /* the comparison sees a one-ulp change of a weight */
    float *w = fd->params(fused);
    size_t i = 0;
    while (i + 1 < np && w[i] == 0.0f)
        i++;
    w[i] = nextafterf(w[i], 2 * w[i]);
    loss_grad(fd, fused, &b, &l1);
    loss_grad(rd, ref, &b, &l2);
    report(fd->name, "gradients, one weight one ulp off", differing(fd->grads(fused), rd->grads(ref), np), np, false);
    batch_free(&b);
    fd->free_model(fused);
    rd->free_model(ref);
}

int main(void)
{
    check_pair(fuse_bn_model(), fuse_bn_ref_model(), false);
    check_pair(fuse_mlp_bn_model(), fuse_mlp_bn_ref_model(), true);
    check_pair(fuse_acts_model(), fuse_acts_ref_model(), false);
    check_pair(fuse_resnet_small_model(), fuse_resnet_small_ref_model(), false);
    check_pair(fuse_pool_relu_model(), fuse_pool_relu_ref_model(), false);
    check_pair(fuse_sgd_momentum_model(), fuse_sgd_momentum_ref_model(), true);
    if (failures)
        printf("%d comparison(s) FAILED\n", failures);
    else
        printf("fused training matches unfused bit for bit (SGD in the GEMM: to %g)\n", SGD_TOL);
    return failures != 0;
}
