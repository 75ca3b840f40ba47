/* check.c — the standalone side: sa.c (nncc --standalone, prefix sa) built
 * with nothing but a C99 compiler and -lm, run on the inputs of
 * reference.c's cases.bin, one sample per sa_infer call, each with a
 * workspace filled with NaN first (it is scratch: nothing may read it
 * before writing). Every output must agree with the reference build's:
 * |standalone - reference| / max(1, |reference|) <= TOLERANCE. Also
 * sa_infer's NULL checks. Prints the largest difference.
 *
 *   check CASES.BIN NAME      exit 0: agree, 1: differ or fail
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sa.h"

#define TOLERANCE 1e-5

/* the header's sizes, for the counts in the file */
static const int64_t input_size[] = {
    sa_INPUT0_SIZE,
#if sa_NUM_INPUTS > 1
    sa_INPUT1_SIZE,
#endif
#if sa_NUM_INPUTS > 2
    sa_INPUT2_SIZE,
#endif
#if sa_NUM_INPUTS > 3
#error "check.c handles up to 3 inputs"
#endif
};
static const int64_t output_size[] = {
    sa_OUTPUT0_SIZE,
#if sa_NUM_OUTPUTS > 1
    sa_OUTPUT1_SIZE,
#endif
#if sa_NUM_OUTPUTS > 2
    sa_OUTPUT2_SIZE,
#endif
#if sa_NUM_OUTPUTS > 3
#error "check.c handles up to 3 outputs"
#endif
};

static float workspace[sa_WORKSPACE_BYTES / sizeof(float)];

static int get(FILE *f, void *p, size_t size, size_t n)
{
    return fread(p, size, n, f) == n ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: check CASES.BIN NAME\n");
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    char magic[8];
    int32_t counts[3];
    int64_t isize[3], osize[3];
    if (!f || get(f, magic, 1, 8) || memcmp(magic, "NNCCSA01", 8) || get(f, counts, sizeof counts[0], 3) ||
        counts[0] != sa_NUM_INPUTS || counts[1] != sa_NUM_OUTPUTS || counts[2] < 1 ||
        get(f, isize, sizeof isize[0], sa_NUM_INPUTS) || get(f, osize, sizeof osize[0], sa_NUM_OUTPUTS)) {
        fprintf(stderr, "check: %s is not cases of this model\n", argv[1]);
        return 1;
    }
    const int n = counts[2];
    float *in[sa_NUM_INPUTS], *expected[sa_NUM_OUTPUTS], *got[sa_NUM_OUTPUTS];
    for (int i = 0; i < sa_NUM_INPUTS; i++)
        if (isize[i] != input_size[i] || !(in[i] = malloc((size_t)(n * isize[i]) * sizeof(float))) ||
            get(f, in[i], sizeof(float), (size_t)(n * isize[i]))) {
            fprintf(stderr, "check: input %d: %lld floats per sample in %s, %lld in sa.h\n", i, (long long)isize[i],
                    argv[1], (long long)input_size[i]);
            return 1;
        }
    for (int i = 0; i < sa_NUM_OUTPUTS; i++)
        if (osize[i] != output_size[i] || !(expected[i] = malloc((size_t)(n * osize[i]) * sizeof(float))) ||
            !(got[i] = malloc((size_t)osize[i] * sizeof(float))) ||
            get(f, expected[i], sizeof(float), (size_t)(n * osize[i]))) {
            fprintf(stderr, "check: output %d: %lld floats per sample in %s, %lld in sa.h\n", i, (long long)osize[i],
                    argv[1], (long long)output_size[i]);
            return 1;
        }
    fclose(f);

    double worst = 0.0;
    long values = 0;
    for (int s = 0; s < n; s++) {
        const float *x[sa_NUM_INPUTS];
        for (int i = 0; i < sa_NUM_INPUTS; i++)
            x[i] = in[i] + s * isize[i];
        for (size_t k = 0; k < sizeof workspace / sizeof workspace[0]; k++)
            workspace[k] = NAN;
        if (sa_infer(x, got, workspace) != 0) {
            fprintf(stderr, "check: sa_infer failed\n");
            return 1;
        }
        for (int i = 0; i < sa_NUM_OUTPUTS; i++)
            for (int64_t k = 0; k < osize[i]; k++) {
                double want = expected[i][s * osize[i] + k], have = got[i][k];
                double diff = fabs(have - want) / (fabs(want) > 1.0 ? fabs(want) : 1.0);
                if (!(diff <= worst))  /* NaN counts as the worst */
                    worst = diff;
                values++;
            }
    }
    const float *x0[sa_NUM_INPUTS] = {0};
    int nulls = sa_infer(NULL, got, workspace) == -1 && sa_infer((const float *const *)in, NULL, workspace) == -1 &&
                sa_infer((const float *const *)in, got, NULL) == -1 && sa_infer(x0, got, workspace) == -1;
    printf("standalone %s: %d sample(s), %ld values, max abs/rel difference %.3g (tolerance %g); workspace %d bytes%s\n",
           argv[2], n, values, worst, TOLERANCE, (int)sa_WORKSPACE_BYTES, nulls ? "" : "; NULL arguments NOT refused");
    /* freed, so that LeakSanitizer (.ci/run's sanitized suite) finds nothing */
    for (int i = 0; i < sa_NUM_INPUTS; i++)
        free(in[i]);
    for (int i = 0; i < sa_NUM_OUTPUTS; i++) {
        free(expected[i]);
        free(got[i]);
    }
    return worst <= TOLERANCE && nulls ? 0 : 1;
}
