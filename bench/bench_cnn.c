/* bench_cnn.c — time nncc's generated fashion_cnn (models/fashion_cnn.yaml):
 * one training step of batch 32, inference of batch 256, and the runtime's
 * sgemm, on this machine. Built and run by bench/bench_cnn.sh, which compiles
 * the model twice into one folder and passes it with -I:
 *
 *   nncc models/fashion_cnn.yaml -o DIR/fashion_cnn.c --max-batch 32
 *   nncc models/fashion_cnn.yaml -o DIR/fashion_cnn_infer.c --max-batch 256 \
 *        --inference-only --prefix fashion_cnn_infer
 *   cc -O2 -I DIR -I runtime bench/bench_cnn.c DIR/fashion_cnn.c DIR/fashion_cnn_infer.c \
 *      -L build -lnncc_rt -Wl,-rpath,build -lm
 *
 * Usage: bench_cnn [--train-steps N] [--infer-batches N] [--warmup N]
 *                  [--gemm-reps N] [--seed S] [--phase all|train|infer]
 *
 * Timed (CLOCK_MONOTONIC, each call separately, after --warmup untimed calls;
 * the median is reported, with min and max):
 *   train  fashion_cnn_train_step on 32 random 28x28x1 images in [0,1) and
 *          random labels in [0,10): forward, loss, backward, and the update of the
 *          model's optimizer (Nadam in models/fashion_cnn.yaml).
 *   infer  fashion_cnn_infer_predict on 256 such images (Dropout off, softmax).
 *   sgemm  nnrt_gemm (the runtime's GEMM, OpenBLAS underneath) of the shape of
 *          conv2d_2's forward GEMM over the whole training batch,
 *          (32*14*14 x 1152) @ (1152 x 128); also 1024^3 as a peak reference.
 * The inputs cycle through a few pre-drawn batches, so no time goes to random
 * numbers inside the timed calls. --phase train or infer runs only that part
 * (no sgemm either): for profiling one of them with perf.
 *
 * FLOPs are counted from the architecture (table below, checked against the
 * generated header's weight count): forward = 2 * MACs of every Conv2D and
 * Dense layer (pooling, activations, softmax and the loss not counted);
 * training = 3 * forward (forward, input gradient, kernel gradient; this
 * overcounts conv2d's input gradient, which nncc does not compute: 0.9%).
 *
 * The thread count of OpenBLAS is whatever OPENBLAS_NUM_THREADS says (the
 * script runs it once per count); it is echoed in the last line:
 *
 *   nncc blas_threads=1 train_ms=... infer_ms=... sgemm_gflops=... ...
 */
#define _POSIX_C_SOURCE 200809L
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fashion_cnn.h"
#include "fashion_cnn_infer.h"
#include "nnrt.h"

#define TRAIN_BATCH 32
#define INFER_BATCH 256
#define POOL 4                    /* pre-drawn batches cycled through */

/* models/fashion_cnn.yaml, layer by layer: output height/width, input and
 * output channels (Dense: units), kernel side (Dense: 1). */
typedef struct {
    const char *name;
    int oh, ow, cin, cout, k;
} Layer;

static const Layer layers[] = {
    {"conv2d   7x7   1->64  @28x28", 28, 28, 1, 64, 7},
    {"conv2d_1 3x3  64->128 @14x14", 14, 14, 64, 128, 3},
    {"conv2d_2 3x3 128->128 @14x14", 14, 14, 128, 128, 3},
    {"conv2d_3 3x3 128->256 @7x7", 7, 7, 128, 256, 3},
    {"conv2d_4 3x3 256->256 @7x7", 7, 7, 256, 256, 3},
    {"dense    2304->128", 1, 1, 2304, 128, 1},
    {"dense_1  128->64", 1, 1, 128, 64, 1},
    {"dense_2  64->10", 1, 1, 64, 10, 1},
};
#define NUM_LAYERS (sizeof layers / sizeof layers[0])

static double layer_macs(const Layer *l)
{
    return (double)l->oh * l->ow * l->cout * l->k * l->k * l->cin;
}

static long layer_params(const Layer *l)
{
    return (long)l->k * l->k * l->cin * l->cout + l->cout;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct {
    double median, min, max;
} Stats;

/* sorts t */
static Stats stats(double *t, int n)
{
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    Stats s = {n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]), t[0], t[n - 1]};
    return s;
}

static void *xmalloc(size_t bytes)
{
    void *p = malloc(bytes);
    if (!p) {
        fprintf(stderr, "bench_cnn: out of memory (%zu bytes)\n", bytes);
        exit(2);
    }
    return p;
}

static void fill_uniform(float *x, size_t n, NnrtRng *r)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)nnrt_rng_uniform(r);
}

/* median seconds of one nnrt_gemm(m, n, k), after one untimed call */
static Stats time_gemm(int m, int n, int k, int reps, NnrtRng *r)
{
    float *a = xmalloc(sizeof(float) * (size_t)m * k);
    float *b = xmalloc(sizeof(float) * (size_t)k * n);
    float *c = xmalloc(sizeof(float) * (size_t)m * n);
    fill_uniform(a, (size_t)m * k, r);
    fill_uniform(b, (size_t)k * n, r);
    double *t = xmalloc(sizeof(double) * (size_t)reps);
    nnrt_gemm(0, 0, m, n, k, 1.0f, a, k, b, n, 0.0f, c, n);
    for (int i = 0; i < reps; i++) {
        double t0 = now_s();
        nnrt_gemm(0, 0, m, n, k, 1.0f, a, k, b, n, 0.0f, c, n);
        t[i] = now_s() - t0;
    }
    Stats s = stats(t, reps);
    free(t), free(a), free(b), free(c);
    return s;
}

static int positive_arg(const char *opt, const char *v)
{
    char *end;
    long x = strtol(v, &end, 10);
    if (*v == '\0' || *end != '\0' || x < 1 || x > 1000000) {
        fprintf(stderr, "bench_cnn: %s needs a positive integer, not '%s'\n", opt, v);
        exit(2);
    }
    return (int)x;
}

int main(int argc, char **argv)
{
    int train_steps = 20, infer_batches = 10, warmup = 3, gemm_reps = 20;
    unsigned long long seed = 42;
    int do_train = 1, do_infer = 1, do_gemm = 1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 < argc && !strcmp(a, "--train-steps"))
            train_steps = positive_arg(a, argv[++i]);
        else if (i + 1 < argc && !strcmp(a, "--infer-batches"))
            infer_batches = positive_arg(a, argv[++i]);
        else if (i + 1 < argc && !strcmp(a, "--warmup"))
            warmup = positive_arg(a, argv[++i]);
        else if (i + 1 < argc && !strcmp(a, "--gemm-reps"))
            gemm_reps = positive_arg(a, argv[++i]);
        else if (i + 1 < argc && !strcmp(a, "--seed"))
            seed = strtoull(argv[++i], NULL, 10);
        else if (i + 1 < argc && !strcmp(a, "--phase") && !strcmp(argv[i + 1], "all"))
            i++;
        else if (i + 1 < argc && !strcmp(a, "--phase") && !strcmp(argv[i + 1], "train"))
            i++, do_infer = do_gemm = 0;
        else if (i + 1 < argc && !strcmp(a, "--phase") && !strcmp(argv[i + 1], "infer"))
            i++, do_train = do_gemm = 0;
        else {
            fprintf(stderr, "usage: bench_cnn [--train-steps N] [--infer-batches N] [--warmup N] "
                            "[--gemm-reps N] [--seed S] [--phase all|train|infer]\n");
            return 2;
        }
    }

    /* FLOPs from the layer table; its parameter count must be the model's. */
    double fwd_flop = 0.0;
    long params = 0;
    for (size_t i = 0; i < NUM_LAYERS; i++) {
        fwd_flop += 2.0 * layer_macs(&layers[i]);
        params += layer_params(&layers[i]);
    }
    if (params != fashion_cnn_NUM_WEIGHTS || fashion_cnn_INPUT0_SIZE != 28 * 28 * 1 ||
        fashion_cnn_OUTPUT0_SIZE != 10 || fashion_cnn_MAX_BATCH < TRAIN_BATCH ||
        fashion_cnn_infer_MAX_BATCH < INFER_BATCH) {
        fprintf(stderr,
                "bench_cnn: the layer table (%ld weights) no longer matches the generated fashion_cnn "
                "(%ld weights, max batch %d/%d): update bench_cnn.c's table from models/fashion_cnn.yaml\n",
                params, (long)fashion_cnn_NUM_WEIGHTS, (int)fashion_cnn_MAX_BATCH,
                (int)fashion_cnn_infer_MAX_BATCH);
        return 1;
    }
    const double train_flop = 3.0 * fwd_flop * TRAIN_BATCH;
    const double infer_flop = fwd_flop * INFER_BATCH;
    const char *blas_env = getenv("OPENBLAS_NUM_THREADS");

    printf("fashion_cnn: %ld weights, forward %.1f MFLOP/sample; train step (b%d, 3x fwd) %.2f GFLOP, "
           "inference (b%d) %.2f GFLOP\n",
           params, fwd_flop / 1e6, TRAIN_BATCH, train_flop / 1e9, INFER_BATCH, infer_flop / 1e9);
    for (size_t i = 0; i < NUM_LAYERS; i++)
        printf("  %-30s %7.2f MFLOP/sample fwd (%4.1f%%)\n", layers[i].name, 2.0 * layer_macs(&layers[i]) / 1e6,
               100.0 * 2.0 * layer_macs(&layers[i]) / fwd_flop);
    printf("OPENBLAS_NUM_THREADS=%s\n", blas_env ? blas_env : "(unset)");

    NnrtRng rng;
    nnrt_rng_seed(&rng, seed);

    /* sgemm: conv2d_2's forward GEMM shape over the whole batch, and 1024^3 */
    double sgemm_gflops = 0.0, square_gflops = 0.0;
    if (do_gemm) {
        const int gm = TRAIN_BATCH * 14 * 14, gn = 128, gk = 3 * 3 * 128;
        Stats g = time_gemm(gm, gn, gk, gemm_reps, &rng);
        sgemm_gflops = 2.0 * gm * gn * gk / g.median / 1e9;
        Stats gsq = time_gemm(1024, 1024, 1024, gemm_reps < 5 ? gemm_reps : 5, &rng);
        square_gflops = 2.0 * 1024.0 * 1024.0 * 1024.0 / gsq.median / 1e9;
        printf("sgemm %dx%dx%d (conv2d_2 fwd, b%d): %.3f ms median, %.1f GFLOP/s; 1024^3: %.1f GFLOP/s\n", gm, gn,
               gk, TRAIN_BATCH, 1e3 * g.median, sgemm_gflops, square_gflops);
    }

    fashion_cnn *m = fashion_cnn_new(seed);
    fashion_cnn_infer *mi = fashion_cnn_infer_new(seed);
    if (!m || !mi) {
        fprintf(stderr, "bench_cnn: could not create the models (out of memory)\n");
        return 2;
    }
    float *tx[POOL], *ix[POOL];
    int32_t *ty[POOL];
    for (int p = 0; p < POOL; p++) {
        tx[p] = xmalloc(sizeof(float) * TRAIN_BATCH * 784);
        ty[p] = xmalloc(sizeof(int32_t) * TRAIN_BATCH);
        ix[p] = xmalloc(sizeof(float) * INFER_BATCH * 784);
        fill_uniform(tx[p], (size_t)TRAIN_BATCH * 784, &rng);
        fill_uniform(ix[p], (size_t)INFER_BATCH * 784, &rng);
        for (int i = 0; i < TRAIN_BATCH; i++)
            ty[p][i] = (int32_t)(nnrt_rng_next(&rng) % 10);
    }
    float *out = xmalloc(sizeof(float) * INFER_BATCH * 10);
    double *t = xmalloc(sizeof(double) * (size_t)(warmup + (train_steps > infer_batches ? train_steps : infer_batches)));

    /* training */
    Stats tr = {0, 0, 0};
    double train_gflops = 0.0;
    if (do_train) {
        float loss = NAN;
        for (int i = 0; i < warmup + train_steps; i++) {
            const float *in[1] = {tx[i % POOL]};
            const void *tg[1] = {ty[i % POOL]};
            double t0 = now_s();
            int rc = fashion_cnn_train_step(m, TRAIN_BATCH, in, tg, &loss);
            t[i] = now_s() - t0;
            if (rc) {
                fprintf(stderr, "bench_cnn: train_step failed: %s\n", fashion_cnn_last_error(m));
                return 1;
            }
        }
        if (!isfinite(loss)) {
            fprintf(stderr, "bench_cnn: the training loss is not finite (%g)\n", (double)loss);
            return 1;
        }
        tr = stats(t + warmup, train_steps);
        train_gflops = train_flop / tr.median / 1e9;
        printf("train  b%d: %.2f ms/step median (min %.2f, max %.2f; %d steps after %d warm-up), "
               "%.1f GFLOP/s (%.0f%% of sgemm); last loss %.4f\n",
               TRAIN_BATCH, 1e3 * tr.median, 1e3 * tr.min, 1e3 * tr.max, train_steps, warmup, train_gflops,
               sgemm_gflops > 0 ? 100.0 * train_gflops / sgemm_gflops : 0.0, (double)loss);
    }

    /* inference */
    Stats pr = {0, 0, 0};
    double infer_gflops = 0.0;
    if (do_infer) {
        for (int i = 0; i < warmup + infer_batches; i++) {
            const float *in[1] = {ix[i % POOL]};
            float *outs[1] = {out};
            double t0 = now_s();
            int rc = fashion_cnn_infer_predict(mi, INFER_BATCH, in, outs);
            t[i] = now_s() - t0;
            if (rc) {
                fprintf(stderr, "bench_cnn: predict failed: %s\n", fashion_cnn_infer_last_error(mi));
                return 1;
            }
        }
        double psum = 0.0;             /* softmax rows sum to 1: a cheap check */
        for (int j = 0; j < 10; j++)
            psum += out[j];
        if (!(fabs(psum - 1.0) < 1e-3)) {
            fprintf(stderr, "bench_cnn: predict's first row sums to %g, not 1\n", psum);
            return 1;
        }
        pr = stats(t + warmup, infer_batches);
        infer_gflops = infer_flop / pr.median / 1e9;
        printf("infer  b%d: %.2f ms/batch median (min %.2f, max %.2f; %d batches after %d warm-up), "
               "%.1f GFLOP/s (%.0f%% of sgemm)\n",
               INFER_BATCH, 1e3 * pr.median, 1e3 * pr.min, 1e3 * pr.max, infer_batches, warmup, infer_gflops,
               sgemm_gflops > 0 ? 100.0 * infer_gflops / sgemm_gflops : 0.0);
    }

    if (do_train && do_infer && do_gemm)
        printf("nncc blas_threads=%s train_ms=%.3f infer_ms=%.3f sgemm_gflops=%.2f sgemm1024_gflops=%.2f "
               "train_gflops=%.2f infer_gflops=%.2f train_pct_sgemm=%.1f infer_pct_sgemm=%.1f "
               "train_gflop=%.4f infer_gflop=%.4f\n",
               blas_env ? blas_env : "default", 1e3 * tr.median, 1e3 * pr.median, sgemm_gflops, square_gflops,
               train_gflops, infer_gflops, 100.0 * train_gflops / sgemm_gflops,
               100.0 * infer_gflops / sgemm_gflops, train_flop / 1e9, infer_flop / 1e9);

    for (int p = 0; p < POOL; p++)
        free(tx[p]), free(ty[p]), free(ix[p]);
    free(out), free(t);
    fashion_cnn_free(m);
    fashion_cnn_infer_free(mi);
    return 0;
}
