/* test_transfer.c — the notes' transfer-learning recipe through the
 * generated APIs: model A's weights (models/fashion_transfer_a.yaml, saved
 * by fashion_transfer_a_save) load into model B (fashion_transfer_b.yaml)
 * by layer name and shape (the five hidden layers; B's new output keeps
 * its initializer). Phase 1 freezes the hidden layers: after training
 * steps they are unchanged and the output layer moved. Phase 2 unfreezes
 * them with a fresh optimizer state: now they change too.
 * Usage: test_transfer TMP_DIR
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fashion_transfer_a.h"
#include "fashion_transfer_b.h"
#include "nnrt.h"

enum { N = 32, PIXELS = 784 };

static size_t offset_of(const NnrtModel *model, const char *name)
{
    for (int i = 0; i < model->num_weights; i++)
        if (!strcmp(model->weights[i].name, name))
            return model->weights[i].offset;
    fprintf(stderr, "no weight %s\n", name);
    exit(2);
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    char path[1024];
    snprintf(path, sizeof path, "%s/transfer_a.h5", argv[1]);
    fashion_transfer_a *a = fashion_transfer_a_new(1);
    if (!a || fashion_transfer_a_save(a, path))
        return 2;
    fashion_transfer_b *b = fashion_transfer_b_new(2);
    const NnrtModel *mb = fashion_transfer_b_model();
    if (!b || mb->load_partial(b, path, NULL)) {
        fprintf(stderr, "load A into B: %s\n", fashion_transfer_b_last_error(b));
        return 1;
    }
    int failures = 0;
    const float *wa = fashion_transfer_a_weights(a), *wb = fashion_transfer_b_weights(b);
    const NnrtModel *ma = fashion_transfer_a_model();
    size_t hidden_a = offset_of(ma, "dense_4/kernel:0"), hidden_b = offset_of(mb, "dense_4/kernel:0");
    bool same = !memcmp(wa + hidden_a, wb + hidden_b, 50 * 50 * sizeof(float));
    printf("B's dense_4 equals A's after loading: %s\n", same ? "ok" : "FAILED");
    failures += !same;

    static float x[N * PIXELS], y[N], snap[fashion_transfer_b_NUM_WEIGHTS];
    NnrtRng rng;
    nnrt_rng_seed(&rng, 9);
    for (size_t i = 0; i < N * PIXELS; i++)
        x[i] = (float)nnrt_rng_uniform(&rng);
    for (int i = 0; i < N; i++)
        y[i] = (float)(i % 2);
    static const char *const hidden[] = {"dense", "dense_1", "dense_2", "dense_3", "dense_4"};
    for (int i = 0; i < 5; i++)
        failures += fashion_transfer_b_set_trainable(b, hidden[i], 0) != 0;
    failures += fashion_transfer_b_set_trainable(b, "no_such_layer", 0) == 0;  /* rejected */
    memcpy(snap, wb, sizeof snap);
    float loss;
    for (int s = 0; s < 5; s++)
        failures += fashion_transfer_b_train_step(b, N, (const float *[]){x}, (const void *[]){y}, &loss) != 0;
    size_t out = offset_of(mb, "shirt_or_sandal/kernel:0");
    bool frozen_kept = !memcmp(snap, wb, out * sizeof(float));
    bool output_moved = memcmp(snap + out, wb + out, 50 * sizeof(float)) != 0;
    printf("phase 1 (hidden layers frozen): hidden weights unchanged %s, output layer changed %s\n",
           frozen_kept ? "ok" : "FAILED", output_moved ? "ok" : "FAILED");
    failures += !frozen_kept + !output_moved;

    for (int i = 0; i < 5; i++)
        failures += fashion_transfer_b_set_trainable(b, hidden[i], 1) != 0;
    fashion_transfer_b_reset_optimizer(b);
    memcpy(snap, wb, sizeof snap);
    for (int s = 0; s < 5; s++)
        failures += fashion_transfer_b_train_step(b, N, (const float *[]){x}, (const void *[]){y}, &loss) != 0;
    bool hidden_moved = memcmp(snap + hidden_b, wb + hidden_b, 50 * 50 * sizeof(float)) != 0;
    printf("phase 2 (unfrozen): hidden weights changed %s\n", hidden_moved ? "ok" : "FAILED");
    failures += !hidden_moved;
    fashion_transfer_a_free(a);
    fashion_transfer_b_free(b);
    printf("%d passed, %d failed\n", 4 - (failures > 4 ? 4 : failures), failures);
    return failures != 0;
}
