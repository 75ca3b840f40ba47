/* bench_fold_bn.c — inference time per batch with BatchNormalization folded
 * into the Conv/Dense before it (nncc's default) against --no-fold, for
 * models/fashion_mlp_bn.yaml and models/resnet_small.yaml. Built and run by
 * bench/bench_fold_bn.sh, which compiles each model twice into one folder:
 *
 *   nncc MODEL -o DIR/P.c --prefix P --inference-only --max-batch B
 *   nncc MODEL -o DIR/P_nofold.c --prefix P_nofold --inference-only --max-batch B --no-fold
 *
 * for P = bnf_mlp and bnf_resnet, and passes -I DIR.
 *
 * Usage: bench_fold_bn [--batches N] [--warmup N] [--seed S]
 *
 * Per model: both builds start from the same weights, with every
 * BatchNormalization tensor redrawn as after training (gamma and the moving
 * variance in [0.5, 1.5], beta and the moving mean in [-0.5, 0.5]; the speed
 * does not depend on it, but the outputs are compared, so the two builds
 * must agree: max relative difference printed). Then P_predict on one batch
 * of MAX_BATCH random samples, timed (CLOCK_MONOTONIC) call by call after
 * --warmup untimed calls, folded and unfolded alternating so that a change
 * in the machine's load hits both alike. Prints medians (min, max) and the
 * last line per model
 *
 *   fold model=NAME batch=B folded_ms=... unfolded_ms=... speedup=unfolded/folded max_rel_diff=...
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bnf_mlp.h"
#include "bnf_mlp_nofold.h"
#include "bnf_resnet.h"
#include "bnf_resnet_nofold.h"
#include "nnrt.h"

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int by_value(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, by_value);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void *must(void *p)
{
    if (!p) {
        fprintf(stderr, "bench_fold_bn: out of memory\n");
        exit(2);
    }
    return p;
}

static int ends_with(const char *s, const char *tail)
{
    size_t a = strlen(s), b = strlen(tail);
    return a >= b && !strcmp(s + a - b, tail);
}

/* the BatchNormalization tensors of w, redrawn as after training */
static void redraw_statistics(const NnrtModel *d, float *w, NnrtRng *rng)
{
    for (int t = 0; t < d->num_weights; t++) {
        const NnrtWeightInfo *wi = &d->weights[t];
        int unit = ends_with(wi->name, "/gamma:0") || ends_with(wi->name, "/moving_variance:0");
        if (!unit && !ends_with(wi->name, "/beta:0") && !ends_with(wi->name, "/moving_mean:0"))
            continue;
        size_t size = 1;
        for (int k = 0; k < wi->rank; k++)
            size *= (size_t)wi->shape[k];
        for (size_t k = 0; k < size; k++)
            w[wi->offset + k] = (float)(unit ? 0.5 + nnrt_rng_uniform(rng) : nnrt_rng_uniform(rng) - 0.5);
    }
}

static int run(const NnrtModel *fd, const NnrtModel *ud, int batches, int warmup, uint64_t seed)
{
    size_t n = fd->max_batch, outputs = 0;
    NnrtRng rng;
    nnrt_rng_seed(&rng, seed);
    void *folded = must(fd->new_model(seed)), *unfolded = must(ud->new_model(seed));
    redraw_statistics(fd, fd->params(folded), &rng);
    memcpy(ud->params(unfolded), fd->params(folded), fd->num_params * sizeof(float));
    float *x[NNRT_MAX_IO], *of[NNRT_MAX_IO], *ou[NNRT_MAX_IO];
    for (int i = 0; i < fd->num_inputs; i++) {
        x[i] = must(malloc(n * (size_t)fd->input_size[i] * sizeof(float)));
        for (size_t k = 0; k < n * (size_t)fd->input_size[i]; k++)
            x[i][k] = (float)nnrt_rng_uniform(&rng);
    }
    for (int j = 0; j < fd->num_outputs; j++) {
        of[j] = must(malloc(n * (size_t)fd->output_size[j] * sizeof(float)));
        ou[j] = must(malloc(n * (size_t)fd->output_size[j] * sizeof(float)));
        outputs += n * (size_t)fd->output_size[j];
    }
    double *tf = must(malloc((size_t)batches * sizeof *tf)), *tu = must(malloc((size_t)batches * sizeof *tu));
    int rc = 0;
    for (int i = -warmup; i < batches && rc == 0; i++) {
        double t0 = now_ms();
        rc |= fd->predict(folded, n, (const float *const *)x, of);
        double t1 = now_ms();
        rc |= ud->predict(unfolded, n, (const float *const *)x, ou);
        double t2 = now_ms();
        if (i >= 0) {
            tf[i] = t1 - t0;
            tu[i] = t2 - t1;
        }
    }
    if (rc) {
        fprintf(stderr, "bench_fold_bn: %s: predict failed\n", fd->name);
        return 1;
    }
    double scale = 0, worst = 0;
    for (int j = 0; j < fd->num_outputs; j++)
        for (size_t k = 0; k < n * (size_t)fd->output_size[j]; k++)
            scale = fmax(scale, fabs((double)ou[j][k]));
    for (int j = 0; j < fd->num_outputs; j++)
        for (size_t k = 0; k < n * (size_t)fd->output_size[j]; k++) {
            double a = of[j][k], b = ou[j][k];
            worst = fmax(worst, fabs(a - b) / fmax(fmax(fabs(a), fabs(b)), 1e-6 * scale + 1e-30));
        }
    double f = median(tf, batches), u = median(tu, batches);
    printf("%s: %zu outputs per batch of %zu\n", fd->name, outputs, n);
    printf("  folded    median %8.3f ms  (min %8.3f, max %8.3f) over %d batches\n", f, tf[0], tf[batches - 1], batches);
    printf("  --no-fold median %8.3f ms  (min %8.3f, max %8.3f)\n", u, tu[0], tu[batches - 1]);
    printf("fold model=%s batch=%zu folded_ms=%.4f unfolded_ms=%.4f speedup=%.3f max_rel_diff=%.3g\n", fd->name, n, f,
           u, u / f, worst);
    for (int i = 0; i < fd->num_inputs; i++)
        free(x[i]);
    for (int j = 0; j < fd->num_outputs; j++) {
        free(of[j]);
        free(ou[j]);
    }
    free(tf);
    free(tu);
    fd->free_model(folded);
    ud->free_model(unfolded);
    return 0;
}

int main(int argc, char **argv)
{
    int batches = 50, warmup = 5;
    uint64_t seed = 42;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && !strcmp(argv[i], "--batches"))
            batches = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--warmup"))
            warmup = atoi(argv[++i]);
        else if (i + 1 < argc && !strcmp(argv[i], "--seed"))
            seed = strtoull(argv[++i], NULL, 10);
        else {
            fprintf(stderr, "usage: bench_fold_bn [--batches N] [--warmup N] [--seed S]\n");
            return 2;
        }
    }
    if (batches < 1 || warmup < 0) {
        fprintf(stderr, "bench_fold_bn: --batches must be at least 1, --warmup at least 0\n");
        return 2;
    }
    int rc = run(bnf_mlp_model(), bnf_mlp_nofold_model(), batches, warmup, seed);
    rc |= run(bnf_resnet_model(), bnf_resnet_nofold_model(), batches, warmup, seed);
    return rc;
}
