/* test_e2e_fashion.c — models/fashion_mlp.yaml compiled by nncc, linked into
 * a small C program through the generated API only, trained on 5000 real
 * Fashion-MNIST training images (shuffled batches of 32, the model's SGD
 * with learning rate 0.01), then evaluated on the next 5000: validation
 * accuracy must reach 0.75. One pass over 5000 images is 157 steps, which
 * gets Keras (and PyTorch, and nncc) only to about 0.62 at this learning
 * rate, so the slice is seen for 10 epochs (1570 steps, about one full epoch of the real run). Then
 * fashion_mlp_save and fashion_mlp_load into a fresh model must give
 * identical predictions.
 * Usage: test_e2e_fashion FASHION_MNIST_DIR TMP_DIR
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fashion_mlp.h"
#include "nnrt.h"

#define TRAIN 5000
#define VALID 5000
#define BATCH 32
#define EPOCHS 10

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

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s FASHION_MNIST_DIR TMP_DIR\n", argv[0]);
        return 2;
    }
    NnrtArray images = load_idx(argv[1], "train-images-idx3-ubyte.gz", 1.0f / 255.0f);
    NnrtArray labels = load_idx(argv[1], "train-labels-idx1-ubyte.gz", 1.0f);
    const float *x = images.data;
    const int32_t *y = labels.data;
    enum { PIXELS = fashion_mlp_INPUT0_SIZE };

    fashion_mlp *m = fashion_mlp_new(42);
    if (!m)
        return 2;
    size_t order[TRAIN];
    for (size_t i = 0; i < TRAIN; i++)
        order[i] = i;
    NnrtRng rng;
    nnrt_rng_seed(&rng, 1);
    nnrt_shuffle(order, TRAIN, &rng);
    static float bx[BATCH * PIXELS];
    int32_t by[BATCH];
    double loss_sum = 0;
    int steps = 0;
    for (int epoch = 0; epoch < EPOCHS; epoch++, nnrt_shuffle(order, TRAIN, &rng))
    for (size_t start = 0; start < TRAIN; start += BATCH) {
        size_t n = TRAIN - start < BATCH ? TRAIN - start : BATCH;
        for (size_t i = 0; i < n; i++) {
            memcpy(bx + i * PIXELS, x + order[start + i] * PIXELS, PIXELS * sizeof(float));
            by[i] = y[order[start + i]];
        }
        float loss;
        if (fashion_mlp_train_step(m, n, (const float *[]){bx}, (const void *[]){by}, &loss)) {
            fprintf(stderr, "train step: %s\n", fashion_mlp_last_error(m));
            return 1;
        }
        if (epoch == EPOCHS - 1) {
            loss_sum += loss;
            steps++;
        }
    }
    float val_loss, val_acc;
    const float *vx = x + (size_t)TRAIN * PIXELS;
    const int32_t *vy = y + TRAIN;
    if (fashion_mlp_evaluate(m, VALID, (const float *[]){vx}, (const void *[]){vy}, &val_loss, &val_acc)) {
        fprintf(stderr, "evaluate: %s\n", fashion_mlp_last_error(m));
        return 1;
    }
    printf("%d epochs on %d images: last epoch's loss %.4f, validation loss %.4f, accuracy %.4f (needs >= 0.75)\n",
           EPOCHS, TRAIN, loss_sum / steps, val_loss, val_acc);
    int failures = val_acc < 0.75f;

    char path[1024];
    snprintf(path, sizeof path, "%s/e2e_fashion_mlp.h5", argv[2]);
    fashion_mlp *fresh = fashion_mlp_new(7);
    if (fashion_mlp_save(m, path) || fashion_mlp_load(fresh, path)) {
        fprintf(stderr, "save/load: %s %s\n", fashion_mlp_last_error(m), fashion_mlp_last_error(fresh));
        return 1;
    }
    static float p1[VALID * 10], p2[VALID * 10];
    fashion_mlp_predict(m, VALID, (const float *[]){vx}, (float *[]){p1});
    fashion_mlp_predict(fresh, VALID, (const float *[]){vx}, (float *[]){p2});
    int same = memcmp(p1, p2, sizeof p1) == 0;
    printf("save then load into a fresh model: predictions %s\n", same ? "identical" : "DIFFERENT");
    failures += !same;
    fashion_mlp_free(m);
    fashion_mlp_free(fresh);
    nnrt_array_free(&images);
    nnrt_array_free(&labels);
    printf("%s\n", failures ? "FAILED" : "ok");
    return failures != 0;
}
