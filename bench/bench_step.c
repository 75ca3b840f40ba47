/* bench_step.c — time one training step of any nncc-generated model.
 *
 * Built by bench/bench_fuse.sh, once per variant of the same model, with
 * -DMODEL_FN=P_model (the description the generated code exports, nnrt.h):
 *
 *   nncc MODEL -o DIR/P.c [--no-fuse]
 *   cc -O2 -D_POSIX_C_SOURCE=200809L -DMODEL_FN=P_model -include DIR/P.h bench/bench_step.c DIR/P.c \
 *      -I runtime -L build -lnncc_rt -lm
 *
 * Usage: bench_step [--steps N] [--warmup N] [--seed S]
 *
 * Each timed call is P_train_step on a full batch (the model's max_batch):
 * forward, loss, backward and the optimizer's update. Inputs are uniform in
 * [0,1), sparse targets uniform class labels, dense targets uniform in
 * [0,1); a few batches are drawn before timing and cycled through. Each
 * call is timed separately (CLOCK_MONOTONIC) after the warmup calls; the
 * last line reports the median, min and max in microseconds:
 *
 *   step name=P batch=32 median_us=... min_us=... max_us=... steps=N
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L  /* clock_gettime; also given with -D when -include comes first */
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "nnrt.h"

#ifndef MODEL_FN
#error "build with -DMODEL_FN=P_model and -include P.h"
#endif

enum { POOL = 4 };

static double now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static long arg_long(const char *opt, const char *s)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == '\0' || *end != '\0' || v < 0) {
        fprintf(stderr, "bench_step: %s needs a non-negative integer, not '%s'\n", opt, s);
        exit(2);
    }
    return v;
}

int main(int argc, char **argv)
{
    long steps = 200, warmup = 20, seed = 42;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--steps") == 0)
            steps = arg_long(argv[i], argv[i + 1]), i++;
        else if (i + 1 < argc && strcmp(argv[i], "--warmup") == 0)
            warmup = arg_long(argv[i], argv[i + 1]), i++;
        else if (i + 1 < argc && strcmp(argv[i], "--seed") == 0)
            seed = arg_long(argv[i], argv[i + 1]), i++;
        else {
            fprintf(stderr, "usage: bench_step [--steps N] [--warmup N] [--seed S]\n");
            return 2;
        }
    }
    if (steps < 1)
        steps = 1;

    const NnrtModel *d = MODEL_FN();
    size_t B = d->max_batch;
    void *m = nnrt_model_new(d, (uint64_t)seed);
    if (!m) {
        fprintf(stderr, "bench_step: cannot create %s\n", d->name);
        return 1;
    }
    srand((unsigned)seed);
    float *in[POOL][NNRT_MAX_IO];
    void *tg[POOL][NNRT_MAX_IO];
    for (int p = 0; p < POOL; p++) {
        for (int i = 0; i < d->num_inputs; i++) {
            size_t k = B * (size_t)d->input_size[i];
            in[p][i] = malloc(k * sizeof(float));
            for (size_t j = 0; j < k; j++)
                in[p][i][j] = rand() / (RAND_MAX + 1.0f);
        }
        for (int i = 0; i < d->num_outputs; i++) {
            size_t k = B * (size_t)d->target_size[i];
            if (d->target_sparse[i]) {
                int32_t *t = malloc(k * sizeof *t);
                for (size_t j = 0; j < k; j++)
                    t[j] = rand() % (int)d->output_size[i];
                tg[p][i] = t;
            } else {
                float *t = malloc(k * sizeof *t);
                for (size_t j = 0; j < k; j++)
                    t[j] = rand() / (RAND_MAX + 1.0f);
                tg[p][i] = t;
            }
        }
    }

    double *us = malloc((size_t)steps * sizeof *us);
    for (long s = -warmup; s < steps; s++) {
        int p = (int)((s + warmup) % POOL);
        float loss;
        double t0 = now_us();
        if (d->train_step(m, B, (const float *const *)in[p], (const void *const *)tg[p], &loss, NULL) != 0) {
            fprintf(stderr, "bench_step: train_step failed: %s\n", d->last_error(m));
            return 1;
        }
        if (s >= 0)
            us[s] = now_us() - t0;
    }
    qsort(us, (size_t)steps, sizeof *us, cmp_double);
    printf("step name=%s batch=%zu median_us=%.1f min_us=%.1f max_us=%.1f steps=%ld\n", d->name, B,
           us[steps / 2], us[0], us[steps - 1], steps);
    d->free_model(m);
    return 0;
}
