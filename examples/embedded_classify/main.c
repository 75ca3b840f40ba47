/* embedded_classify — the Fashion-MNIST classifier as a microcontroller runs it.
 *
 *   gzip -dc t10k-images-idx3-ubyte.gz | embedded_classify LABELS.idx [COUNT]
 *
 * Built from `nncc MODEL --standalone --weights W.h5` output (nncc_add_model
 * ... STANDALONE WEIGHTS): the trained weights are const arrays in flash,
 * the activations live in one static workspace of fashion_embedded's
 * WORKSPACE_BYTES, and the program links nothing but libm — no malloc, no
 * BLAS, no HDF5, no runtime library. It reads 28x28 byte images from stdin
 * (an uncompressed IDX images file, header included), one sample at a time
 * as a sensor would deliver them, and prints each label with the accuracy
 * against LABELS.idx (an uncompressed IDX labels file). */
#include <stdio.h>
#include <stdlib.h>

#include "fashion_embedded.h"

static float workspace[fashion_embedded_WORKSPACE_BYTES / sizeof(float) + 1];

static const char *const class_names[10] = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                             "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"};

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: gzip -dc IMAGES.idx.gz | %s LABELS.idx [COUNT]\n", argv[0]);
        return 1;
    }
    long count = argc > 2 ? atol(argv[2]) : 10000;
    FILE *labels = fopen(argv[1], "rb");
    unsigned char header[16];
    if (!labels || fread(header, 1, 8, labels) != 8 || fread(header, 1, 16, stdin) != 16) {
        fprintf(stderr, "cannot read the IDX headers of %s and stdin\n", argv[1]);
        return 1;
    }
    static unsigned char pixels[fashion_embedded_INPUT0_SIZE];
    static float image[fashion_embedded_INPUT0_SIZE];
    float scores[fashion_embedded_OUTPUT0_SIZE];
    long seen = 0, right = 0;
    int truth;
    while (seen < count && fread(pixels, 1, sizeof pixels, stdin) == sizeof pixels && (truth = fgetc(labels)) != EOF) {
        for (int i = 0; i < fashion_embedded_INPUT0_SIZE; i++)
            image[i] = pixels[i] / 255.0f;
        const float *in[] = {image};
        float *out[] = {scores};
        if (fashion_embedded_infer(in, out, workspace) != 0)
            return 2;
        int best = 0;
        for (int k = 1; k < fashion_embedded_OUTPUT0_SIZE; k++)
            best = scores[k] > scores[best] ? k : best;
        right += best == truth;
        if (seen < 10)
            printf("image %ld: %-11s %.2f  (truth: %s)\n", seen, class_names[best], scores[best], class_names[truth]);
        seen++;
    }
    fclose(labels);
    if (seen == 0) {
        fprintf(stderr, "no images on stdin\n");
        return 1;
    }
    printf("accuracy on %ld images: %.4f (workspace %d bytes, no heap)\n", seen, (double)right / seen,
           fashion_embedded_WORKSPACE_BYTES);
    return 0;
}
