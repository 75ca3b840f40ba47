/* test_e2e_images.c — image models compiled by nncc, trained on real
 * Fashion-MNIST through their generated APIs.
 *   1. A CNN (tests/models/fashion_cnn_small.yaml) beats the seed MLP
 *      (models/fashion_mlp.yaml, the same SGD 0.01) after the same 300
 *      steps of batch 32 on the same shuffled images: validation accuracy
 *      on 2000 held-out images.
 *   2. models/resnet_small.yaml (ResidualUnit blocks, BatchNormalization,
 *      Add) trains: its training loss over the last 50 of 150 steps is well
 *      below the first 50. (Its inference-mode accuracy needs more steps:
 *      the moving statistics, momentum 0.99, lag the weights for hundreds
 *      of steps, in Keras too.)
 * Usage: test_e2e_images FASHION_MNIST_DIR
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fashion_cnn_small.h"
#include "fashion_mlp.h"
#include "nnrt.h"
#include "resnet_small.h"

#define PIXELS 784
#define BATCH 32
#define VALID 2000

typedef struct {
    const char *name;
    void *m;
    int (*train_step)(void *m, size_t n, const float *const in[], const void *const tg[], float *loss);
    int (*evaluate)(void *m, size_t n, const float *const in[], const void *const tg[], float *loss, float *metrics);
    const char *(*last_error)(const void *m);
} Trainee;

/* adapters: the generated functions take their own model types */
#define ADAPT(P)                                                                                           \
    static int P##_step(void *m, size_t n, const float *const in[], const void *const tg[], float *loss)    \
    {                                                                                                      \
        return P##_train_step(m, n, in, tg, loss);                                                         \
    }                                                                                                      \
    static int P##_eval(void *m, size_t n, const float *const in[], const void *const tg[], float *loss,    \
                        float *metrics)                                                                    \
    {                                                                                                      \
        return P##_evaluate(m, n, in, tg, loss, metrics);                                                  \
    }                                                                                                      \
    static const char *P##_error(const void *m) { return P##_last_error(m); }
ADAPT(fashion_mlp)
ADAPT(fashion_cnn_small)
ADAPT(resnet_small)

static NnrtArray load_idx(const char *dir, const char *file, float scale)
{
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    NnrtArray a = {0};
    if (nnrt_idx_load(path, scale, &a, err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        exit(2);
    }
    return a;
}

/* steps of batch 32 over a seeded shuffle of images [VALID, VALID + pool);
 * mean loss of the first and last `window` steps; validation accuracy. */
static int train(Trainee *t, const float *x, const int32_t *y, size_t pool, int steps, int window, float *first,
                 float *last, float *accuracy)
{
    size_t *order = malloc(pool * sizeof *order);
    float *bx = malloc(BATCH * PIXELS * sizeof *bx);
    int32_t by[BATCH];
    for (size_t i = 0; i < pool; i++)
        order[i] = VALID + i;
    NnrtRng rng;
    nnrt_rng_seed(&rng, 3);
    nnrt_shuffle(order, pool, &rng);
    double sum_first = 0, sum_last = 0;
    for (int s = 0; s < steps; s++) {
        for (int i = 0; i < BATCH; i++) {
            size_t k = order[((size_t)s * BATCH + (size_t)i) % pool];
            memcpy(bx + (size_t)i * PIXELS, x + k * PIXELS, PIXELS * sizeof(float));
            by[i] = y[k];
        }
        float loss;
        if (t->train_step(t->m, BATCH, (const float *[]){bx}, (const void *[]){by}, &loss)) {
            fprintf(stderr, "%s: %s\n", t->name, t->last_error(t->m));
            return -1;
        }
        if (s < window)
            sum_first += loss;
        if (s >= steps - window)
            sum_last += loss;
    }
    *first = (float)(sum_first / window);
    *last = (float)(sum_last / window);
    float val_loss;
    int rc = t->evaluate(t->m, VALID, (const float *[]){x}, (const void *[]){y}, &val_loss, accuracy);
    free(order);
    free(bx);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s FASHION_MNIST_DIR\n", argv[0]);
        return 2;
    }
    NnrtArray images = load_idx(argv[1], "train-images-idx3-ubyte.gz", 1.0f / 255.0f);
    NnrtArray labels = load_idx(argv[1], "train-labels-idx1-ubyte.gz", 1.0f);
    const float *x = images.data;
    const int32_t *y = labels.data;
    size_t pool = 20000;
    int failures = 0;

    Trainee mlp = {"fashion_mlp", fashion_mlp_new(42), fashion_mlp_step, fashion_mlp_eval, fashion_mlp_error};
    Trainee cnn = {"fashion_cnn_small", fashion_cnn_small_new(42), fashion_cnn_small_step, fashion_cnn_small_eval,
                   fashion_cnn_small_error};
    float f, l, acc_mlp, acc_cnn;
    if (train(&mlp, x, y, pool, 300, 50, &f, &l, &acc_mlp) || train(&cnn, x, y, pool, 300, 50, &f, &l, &acc_cnn))
        return 1;
    printf("after 300 steps of 32: validation accuracy MLP %.4f, CNN %.4f: %s\n", acc_mlp, acc_cnn,
           acc_cnn > acc_mlp ? "the CNN is ahead, ok" : "FAILED");
    failures += !(acc_cnn > acc_mlp);

    Trainee res = {"resnet_small", resnet_small_new(42), resnet_small_step, resnet_small_eval, resnet_small_error};
    float acc_res;
    if (train(&res, x, y, pool, 150, 50, &f, &l, &acc_res))
        return 1;
    bool ok = l < 0.7f * f;
    printf("resnet_small: training loss %.4f over the first 50 steps, %.4f over the last 50: %s\n", f, l,
           ok ? "ok" : "FAILED");
    failures += !ok;

    fashion_mlp_free(mlp.m);
    fashion_cnn_small_free(cnn.m);
    resnet_small_free(res.m);
    nnrt_array_free(&images);
    nnrt_array_free(&labels);
    return failures != 0;
}
