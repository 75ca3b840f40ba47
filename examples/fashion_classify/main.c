/* fashion_classify — label Fashion-MNIST images with a generated classifier.
 *
 *   fashion_classify WEIGHTS.h5 [FIRST [COUNT]]
 *
 * Loads the weights (Keras layout: `nncc train` or train_loop writes them),
 * reads Debian's Fashion-MNIST test images, and prints the label and the
 * probability of images FIRST .. FIRST+COUNT-1 (default 0, 10), then the
 * accuracy over them. The model is compiled with nncc_add_model (prefix
 * fashion_infer, inference only): its header and nnrt.h are all it needs. */
#include <stdio.h>
#include <stdlib.h>

#include "fashion_infer.h"
#include "nnrt.h"

#define DATA "/usr/share/datasets/fashion-mnist/"

static const char *const class_names[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                             "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: %s WEIGHTS.h5 [FIRST [COUNT]]\n", argv[0]);
        return 1;
    }
    long first = argc > 2 ? atol(argv[2]) : 0, count = argc > 3 ? atol(argv[3]) : 10;
    char err[512];
    NnrtArray images = {0}, labels = {0};
    if (nnrt_idx_load(DATA "t10k-images-idx3-ubyte.gz", 1.0f / 255, &images, err, sizeof err) < 0 ||
        nnrt_idx_load(DATA "t10k-labels-idx1-ubyte.gz", 1.0f, &labels, err, sizeof err) < 0) {
        fprintf(stderr, "%s (install dataset-fashion-mnist)\n", err);
        return 1;
    }
    if (first < 0 || count <= 0 || first + count > images.shape[0]) {
        fprintf(stderr, "FIRST and COUNT must pick images among the %lld test images\n", (long long)images.shape[0]);
        return 1;
    }
    fashion_infer *m = fashion_infer_new(0);
    if (!m || fashion_infer_load(m, argv[1]) != 0) {
        fprintf(stderr, "%s\n", m ? fashion_infer_last_error(m) : "out of memory");
        return 1;
    }
    float *probs = malloc((size_t)count * fashion_infer_OUTPUT0_SIZE * sizeof *probs);
    const float *in[] = {(const float *)images.data + (size_t)first * fashion_infer_INPUT0_SIZE};
    float *out[] = {probs};
    if (!probs || fashion_infer_predict(m, (size_t)count, in, out) != 0) {
        fprintf(stderr, "%s\n", probs ? fashion_infer_last_error(m) : "out of memory");
        return 1;
    }
    long right = 0;
    for (long i = 0; i < count; i++) {
        const float *p = probs + i * fashion_infer_OUTPUT0_SIZE;
        int best = 0, truth = ((const int32_t *)labels.data)[first + i];
        for (int k = 1; k < fashion_infer_OUTPUT0_SIZE; k++)
            best = p[k] > p[best] ? k : best;
        right += best == truth;
        if (count <= 20)
            printf("image %ld: %-11s %.2f  (truth: %s)\n", first + i, class_names[best], p[best], class_names[truth]);
    }
    printf("accuracy on %ld images: %.4f\n", count, (double)right / count);
    free(probs);
    fashion_infer_free(m);
    nnrt_array_free(&images);
    nnrt_array_free(&labels);
    return 0;
}
