/* test_resnet34.c — models/resnet34.yaml (the notes' ResNet-34 from the
 * ResidualUnit block) compiled by nncc with --max-batch 2: it has Keras's
 * 21,306,826 weights, and a training step on a random batch of two 224x224x3
 * images gives a finite loss near ln(10), changes the weights, and lowers
 * the loss of that batch when repeated.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnrt.h"
#include "resnet34.h"

int main(void)
{
    enum { N = 2, SIZE = resnet34_INPUT0_SIZE };
    int failures = 0;
    printf("weights: %d (Keras: 21306826)\n", resnet34_NUM_WEIGHTS);
    failures += resnet34_NUM_WEIGHTS != 21306826;
    resnet34 *m = resnet34_new(1);
    float *x = malloc(N * SIZE * sizeof *x);
    if (!m || !x)
        return 2;
    NnrtRng rng;
    nnrt_rng_seed(&rng, 5);
    for (size_t i = 0; i < (size_t)N * SIZE; i++)
        x[i] = (float)nnrt_rng_uniform(&rng);
    int32_t y[N] = {3, 7};
    float *before = malloc(resnet34_NUM_WEIGHTS * sizeof *before);
    memcpy(before, resnet34_weights(m), resnet34_NUM_WEIGHTS * sizeof *before);
    float loss[4];
    for (int s = 0; s < 4; s++)
        if (resnet34_train_step(m, N, (const float *[]){x}, (const void *[]){y}, &loss[s])) {
            printf("train step: %s\n", resnet34_last_error(m));
            return 1;
        }
    size_t changed = 0;
    for (size_t i = 0; i < resnet34_NUM_WEIGHTS; i++)
        changed += resnet34_weights(m)[i] != before[i];
    printf("training steps on one random batch: loss %.4f %.4f %.4f %.4f; %zu weights changed\n", loss[0], loss[1],
           loss[2], loss[3], changed);
    failures += !(isfinite(loss[0]) && loss[0] > 0.5f && loss[0] < 10.0f);
    failures += !(loss[3] < loss[0]);
    failures += changed < resnet34_NUM_WEIGHTS / 2;
    float probs[N * 10];
    resnet34_predict(m, N, (const float *[]){x}, (float *[]){probs});
    float sum = 0;
    for (int i = 0; i < 10; i++)
        sum += probs[i];
    printf("predict: softmax row sums to %.6f\n", sum);
    failures += fabsf(sum - 1.0f) > 1e-4f;
    resnet34_free(m);
    free(x);
    free(before);
    printf("%s\n", failures ? "FAILED" : "ok");
    return failures != 0;
}
