/* classify_standalone: the consumer's --standalone target (prefix mlp_sa,
 * nncc_add_model ... STANDALONE WEIGHTS), built without the runtime
 * library: one sample through mlp_sa_infer, whose class scores (softmax)
 * must sum to 1, and a NULL argument refused. */
#include <stdio.h>

#include "mlp_sa.h"

static float workspace[mlp_sa_WORKSPACE_BYTES / sizeof(float)];

int main(void)
{
    static float image[mlp_sa_INPUT0_SIZE];
    float scores[mlp_sa_OUTPUT0_SIZE];
    for (int i = 0; i < mlp_sa_INPUT0_SIZE; i++)
        image[i] = (float)(i % 28) / 27.0f;
    const float *in[] = {image};
    float *out[] = {scores};
    if (mlp_sa_infer(in, out, workspace) != 0 || mlp_sa_infer(in, out, NULL) != -1)
        return 1;
    float sum = 0;
    int best = 0;
    for (int k = 0; k < mlp_sa_OUTPUT0_SIZE; k++) {
        sum += scores[k];
        best = scores[k] > scores[best] ? k : best;
    }
    printf("standalone: class %d, scores sum to %.4f\n", best, sum);
    return sum > 0.999f && sum < 1.001f ? 0 : 1;
}
