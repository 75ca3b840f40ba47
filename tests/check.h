/* check.h — what the runtime's C test programs share: a pass/fail tally
 * with one line per check, allocation that exits on failure, buffers with
 * guard floats after them (to catch a kernel writing past its output), and
 * seeded uniform fills. Header-only: each test is one program. */
#ifndef NNCC_TESTS_CHECK_H
#define NNCC_TESTS_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "nnrt.h"

static int passed, failed;

/* A numeric check: the largest difference against its tolerance. */
static inline void report(const char *name, double diff, double tol)
{
    int ok = diff <= tol;        /* NaN fails */
    printf("%-72s max diff %-10.3g tol %-8.2g %s\n", name, diff, tol, ok ? "ok" : "FAIL");
    ok ? passed++ : failed++;
}

/* An exact property. */
static inline void expect(const char *name, int cond)
{
    printf("%-72s %s\n", name, cond ? "ok" : "FAIL");
    cond ? passed++ : failed++;
}

static inline void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    return p;
}

enum { GUARD = 16 };
#define GUARD_VALUE 1234.5f

/* n floats followed by GUARD guard floats. */
static inline float *guarded(size_t n)
{
    float *p = xmalloc((n + GUARD) * sizeof *p);
    for (size_t i = 0; i < GUARD; i++)
        p[n + i] = GUARD_VALUE;
    return p;
}

/* Whether the guards after n floats are untouched (a NULL buffer has none). */
static inline int guard_intact(const float *p, size_t n)
{
    if (!p)
        return 1;
    for (size_t i = 0; i < GUARD; i++)
        if (p[n + i] != GUARD_VALUE)
            return 0;
    return 1;
}

static inline void fill_uniform(float *x, size_t n, double lo, double hi, NnrtRng *r)
{
    for (size_t i = 0; i < n; i++)
        x[i] = (float)(lo + (hi - lo) * nnrt_rng_uniform(r));
}

static inline void fill_float(float *x, size_t n, float v)
{
    for (size_t i = 0; i < n; i++)
        x[i] = v;
}

/* A double copy of n floats (NULL stays NULL), for references in double. */
static inline double *to_double(const float *x, size_t n)
{
    if (!x)
        return NULL;
    double *d = xmalloc(n * sizeof *d);
    for (size_t i = 0; i < n; i++)
        d[i] = x[i];
    return d;
}

/* max |a - b| over n, relative to max(1, max |b|); NaN sticks. */
static inline double max_rel_diff(const float *a, const double *b, size_t n)
{
    double diff = 0.0, scale = 1.0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(a[i] - b[i]);
        if (!(d <= diff))
            diff = d;
        if (fabs(b[i]) > scale)
            scale = fabs(b[i]);
    }
    return diff / scale;
}

#endif
