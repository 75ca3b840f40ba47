/* classify: the smallest app around a generated classifier (prefix mlp):
 * create it, predict three blank images, print each one's class scores'
 * sum (softmax: 1) and its most likely class. */
#include <stdio.h>

#include "mlp.h"

int main(void)
{
    static float images[3 * mlp_INPUT0_SIZE], scores[3 * mlp_OUTPUT0_SIZE];
    mlp *m = mlp_new(42);
    if (!m)
        return 2;
    const float *in[] = {images};
    float *out[] = {scores};
    if (mlp_predict(m, 3, in, out) != 0) {
        fprintf(stderr, "predict: %s\n", mlp_last_error(m));
        mlp_free(m);
        return 1;
    }
    for (int s = 0; s < 3; s++) {
        float sum = 0;
        int best = 0;
        for (int k = 0; k < mlp_OUTPUT0_SIZE; k++) {
            sum += scores[s * mlp_OUTPUT0_SIZE + k];
            if (scores[s * mlp_OUTPUT0_SIZE + k] > scores[s * mlp_OUTPUT0_SIZE + best])
                best = k;
        }
        printf("image %d: class %d, scores sum to %.4f\n", s, best, sum);
    }
    mlp_free(m);
    return 0;
}
