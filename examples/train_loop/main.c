/* train_loop — train the Fashion-MNIST MLP with your own loop around the
 * generated P_train_step, as an app that owns its data would.
 *
 *   train_loop OUT.h5 [TRAIN_IMAGES [EPOCHS]]
 *
 * Takes the first TRAIN_IMAGES (default 10000) training images, runs EPOCHS
 * (default 2) shuffled passes of batch 32, prints the mean loss of each and
 * the accuracy on the 10000 test images (fashion_evaluate), then saves the
 * weights in Keras layout (atomic), ready for fashion_classify or Keras. */
#include <stdio.h>
#include <stdlib.h>

#include "fashion.h"
#include "nnrt.h"

#define DATA "/usr/share/datasets/fashion-mnist/"
#define BATCH 32

static int load(const char *images, const char *labels, NnrtArray *x, NnrtArray *y)
{
    char err[512];
    if (nnrt_idx_load(images, 1.0f / 255, x, err, sizeof err) < 0 || nnrt_idx_load(labels, 1.0f, y, err, sizeof err) < 0) {
        fprintf(stderr, "%s (install dataset-fashion-mnist)\n", err);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: %s OUT.h5 [TRAIN_IMAGES [EPOCHS]]\n", argv[0]);
        return 1;
    }
    NnrtArray x = {0}, y = {0}, tx = {0}, ty = {0};
    if (load(DATA "train-images-idx3-ubyte.gz", DATA "train-labels-idx1-ubyte.gz", &x, &y) < 0 ||
        load(DATA "t10k-images-idx3-ubyte.gz", DATA "t10k-labels-idx1-ubyte.gz", &tx, &ty) < 0)
        return 1;
    size_t n = argc > 2 ? (size_t)atol(argv[2]) : 10000;
    int epochs = argc > 3 ? atoi(argv[3]) : 2;
    if (n == 0 || n > (size_t)x.shape[0] || epochs <= 0) {
        fprintf(stderr, "TRAIN_IMAGES must be 1..%lld and EPOCHS positive\n", (long long)x.shape[0]);
        return 1;
    }
    fashion *m = fashion_new(42);
    float *bx = malloc(BATCH * fashion_INPUT0_SIZE * sizeof *bx);
    int32_t *by = malloc(BATCH * sizeof *by);
    size_t *order = malloc(n * sizeof *order);
    if (!m || !bx || !by || !order) {
        fprintf(stderr, "out of memory\n");
        return 2;
    }
    NnrtRng rng;
    nnrt_rng_seed(&rng, 42);
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    for (int e = 1; e <= epochs; e++) {
        nnrt_shuffle(order, n, &rng);
        double sum = 0;
        for (size_t start = 0; start < n; start += BATCH) {
            size_t b = n - start < BATCH ? n - start : BATCH;
            for (size_t i = 0; i < b; i++) {  /* gather the shuffled batch */
                size_t s = order[start + i];
                for (size_t k = 0; k < fashion_INPUT0_SIZE; k++)
                    bx[i * fashion_INPUT0_SIZE + k] = ((const float *)x.data)[s * fashion_INPUT0_SIZE + k];
                by[i] = ((const int32_t *)y.data)[s];
            }
            const float *in[] = {bx};
            const void *tg[] = {by};
            float loss;
            if (fashion_train_step(m, b, in, tg, &loss) != 0) {
                fprintf(stderr, "%s\n", fashion_last_error(m));
                return 1;
            }
            sum += (double)loss * b;
        }
        printf("epoch %d/%d: loss %.4f\n", e, epochs, sum / n);
    }
    float loss, metrics[fashion_NUM_METRICS > 0 ? fashion_NUM_METRICS : 1];
    const float *in[] = {tx.data};
    const void *tg[] = {ty.data};
    if (fashion_evaluate(m, (size_t)tx.shape[0], in, tg, &loss, metrics) != 0 || fashion_save(m, argv[1]) != 0) {
        fprintf(stderr, "%s\n", fashion_last_error(m));
        return 1;
    }
    printf("test loss %.4f, accuracy %.4f; saved %s\n", loss, metrics[0], argv[1]);
    free(bx);
    free(by);
    free(order);
    fashion_free(m);
    nnrt_array_free(&x);
    nnrt_array_free(&y);
    nnrt_array_free(&tx);
    nnrt_array_free(&ty);
    return 0;
}
