/* model_batch.h — seeded random batches for any generated model, through
 * its NnrtModel description: what the passes' test programs (test_fold_bn.c,
 * test_fuse_train.c) share. Header-only: each test is one program. */
#ifndef NNCC_TESTS_MODEL_BATCH_H
#define NNCC_TESTS_MODEL_BATCH_H

#include <stdio.h>
#include <stdlib.h>

#include "nnrt.h"

typedef struct {
    size_t n;
    float *x[NNRT_MAX_IO];
    void *y[NNRT_MAX_IO];
} Batch;

static void *must_alloc(size_t bytes)
{
    void *p = calloc(1, bytes ? bytes : 1);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

/* n samples: inputs uniform in [lo, hi), labels uniform over the classes (or targets uniform in [0, 1)) */
static Batch batch_new(const NnrtModel *d, size_t n, NnrtRng *rng, double lo, double hi)
{
    Batch b = {.n = n};
    for (int i = 0; i < d->num_inputs; i++) {
        b.x[i] = must_alloc(n * (size_t)d->input_size[i] * sizeof(float));
        for (size_t k = 0; k < n * (size_t)d->input_size[i]; k++)
            b.x[i][k] = (float)(lo + (hi - lo) * nnrt_rng_uniform(rng));
    }
    for (int j = 0; j < d->num_outputs; j++) {
        size_t count = n * (size_t)d->target_size[j];
        b.y[j] = must_alloc(count * 4);
        for (size_t k = 0; k < count; k++) {
            if (d->target_sparse[j])
                ((int32_t *)b.y[j])[k] = (int32_t)(nnrt_rng_next(rng) % (uint64_t)d->output_size[j]);
            else
                ((float *)b.y[j])[k] = (float)nnrt_rng_uniform(rng);
        }
    }
    return b;
}

static void batch_free(Batch *b)
{
    for (int i = 0; i < NNRT_MAX_IO; i++) {
        free(b->x[i]);
        free(b->y[i]);
    }
}

#endif
