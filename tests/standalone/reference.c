/* reference.c — the reference side of the standalone tests: the model's
 * ordinary build (ref.c, prefix ref, linked with libnncc_rt) makes the
 * weights and the expected outputs that the --standalone build must match.
 *
 *   reference DIR [SEED]
 *
 * writes DIR/weights.h5: the initializers of ref_new(SEED), every weight
 * then moved by a pseudo-random step in [-0.1, 0.1) (moving variances set
 * to 0.5 + [0, 1), BatchNormalization's gammas to 0.3 + [0, 0.2), which
 * keeps deep residual stacks from saturating their softmax), so zero biases
 * and BatchNormalization's initial statistics become general values; and DIR/cases.bin: SAMPLES inputs drawn
 * from [-1, 1) and what ref_predict computes for them (at the model's
 * compiled maximum length for a variable time axis):
 *   "NNCCSA01", int32 inputs, outputs, samples, int64 size per input and
 *   output (floats per sample), then every input's floats, then every output's.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nnrt.h"
#include "ref.h"

enum { SAMPLES = 3 };

static uint64_t state = 0x9E3779B97F4A7C15ull;

static double uniform(void)  /* [0, 1), xorshift64* */
{
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    return (double)((state * 0x2545F4914F6CDD1Dull) >> 11) / 9007199254740992.0;
}

static int put(FILE *f, const void *p, size_t size, size_t n)
{
    return fwrite(p, size, n, f) == n ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: reference DIR [SEED]\n");
        return 2;
    }
    uint64_t seed = argc > 2 ? strtoull(argv[2], NULL, 10) : 1;
    state ^= seed * 0xD1B54A32D192ED03ull;
    const NnrtModel *model = ref_model();
    void *m = model->new_model(seed);
    if (!m) {
        fprintf(stderr, "reference: out of memory\n");
        return 2;
    }
    float *w = model->params(m);
    for (int i = 0; i < model->num_weights; i++) {
        const NnrtWeightInfo *t = &model->weights[i];
        size_t n = 1;
        for (int d = 0; d < t->rank; d++)
            n *= (size_t)t->shape[d];
        bool variance = strstr(t->name, "moving_variance") != NULL, gamma = strstr(t->name, "gamma") != NULL;
        for (size_t k = 0; k < n; k++)
            w[t->offset + k] = variance ? (float)(0.5 + uniform())
                               : gamma  ? (float)(0.3 + 0.2 * uniform())
                                        : w[t->offset + k] + (float)(0.2 * uniform() - 0.1);
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/weights.h5", argv[1]);
    if (model->save(m, path)) {
        fprintf(stderr, "reference: %s\n", model->last_error(m));
        return 1;
    }

    float *in[NNRT_MAX_IO], *out[NNRT_MAX_IO];
    for (int i = 0; i < model->num_inputs; i++) {
        size_t n = SAMPLES * (size_t)model->input_size[i];
        if (!(in[i] = malloc(n * sizeof *in[i])))
            return 2;
        for (size_t k = 0; k < n; k++)
            in[i][k] = (float)(2.0 * uniform() - 1.0);
    }
    for (int i = 0; i < model->num_outputs; i++)
        if (!(out[i] = malloc(SAMPLES * (size_t)model->output_size[i] * sizeof *out[i])))
            return 2;
    if (model->predict(m, SAMPLES, (const float *const *)in, out)) {
        fprintf(stderr, "reference: %s\n", model->last_error(m));
        return 1;
    }

    snprintf(path, sizeof path, "%s/cases.bin", argv[1]);
    FILE *f = fopen(path, "wb");
    int32_t counts[3] = {model->num_inputs, model->num_outputs, SAMPLES};
    int rc = !f || put(f, "NNCCSA01", 1, 8) || put(f, counts, sizeof counts[0], 3) ||
             put(f, model->input_size, sizeof(int64_t), (size_t)model->num_inputs) ||
             put(f, model->output_size, sizeof(int64_t), (size_t)model->num_outputs);
    for (int i = 0; !rc && i < model->num_inputs; i++)
        rc = put(f, in[i], sizeof(float), SAMPLES * (size_t)model->input_size[i]);
    for (int i = 0; !rc && i < model->num_outputs; i++)
        rc = put(f, out[i], sizeof(float), SAMPLES * (size_t)model->output_size[i]);
    if (f && fclose(f))
        rc = -1;
    if (rc) {
        fprintf(stderr, "reference: cannot write %s\n", path);
        return 1;
    }
    for (int i = 0; i < model->num_inputs; i++)
        free(in[i]);
    for (int i = 0; i < model->num_outputs; i++)
        free(out[i]);
    model->free_model(m);
    return 0;
}
