/* limits.c — how big a model nncc agrees to build, and the size arithmetic
 * that keeps untrusted numbers inside what the generated C can hold.
 *
 * A model file is untrusted input: a `repeat:` of 100000, blocks that fan
 * out 32 deep or a Conv2D with 1e11 filters are a few bytes of YAML that
 * would make nncc (or the program it builds) ask for gigabytes. Every such
 * quantity has a cap, checked where the quantity grows, before anything
 * proportional to it is allocated: the model file's bytes as it is read,
 * layers as repeat/if/blocks expand them (and the items expansion visits,
 * so that repeats of nothing stop too), weight values as each weight is
 * created, a graph's planned arena once it is planned, and each generated
 * C file while it is written. The message names the cap and the option
 * that raises it. The defaults hold every model in models/ with a wide
 * margin (resnet34: under 140 layers, 21.3 M weights, a 980 MB training
 * arena at batch 32, 0.3 MB of C) and big real Keras models (a few thousand
 * layers, ~10^8 weights); 10000 layers compile in about 5 s. docs/cli.md
 * lists them.
 *
 * Separately from the caps, which a user may raise, some sizes are bounded
 * by the generated C itself: the runtime's kernels take dimensions, batch
 * sizes and GEMM extents as `int`, so every size argument and every
 * tensor's element count (batch included) must stay within INT_MAX. Those
 * bounds are not options.
 *
 * The limits are process-wide, set once by main before compiling (like
 * diag.c's quiet flag); library users and the fuzz harnesses get the
 * defaults.
 */
#include "compiler.h"

#include <limits.h>

const Limits limits_default = {
    .model_bytes = 16 << 20,                 /* 16 MiB of YAML (a big Keras model_config is ~1 MB) */
    .layers = 10000,
    .weights = (int64_t)1 << 31,             /* 8 GiB of float32 */
    .arena_bytes = (int64_t)1 << 34,         /* 16 GiB */
    .code_bytes = 256 << 20,                 /* 256 MiB per generated file */
};

static Limits current;
static bool set;

void limits_set(const Limits *l)
{
    current = *l;
    set = true;
}

const Limits *limits(void)
{
    return set ? &current : &limits_default;
}

bool size_mul(int64_t a, int64_t b, int64_t *out)
{
    return a >= 0 && b >= 0 && !__builtin_mul_overflow(a, b, out);
}

bool shape_elements(const Shape *s, int64_t batch, int64_t *out)
{
    int64_t n = batch;
    for (int i = 0; i < s->rank; i++)
        if (!size_mul(n, s->dim[i], &n))
            return false;
    *out = n;
    return true;
}

bool fits_c_int(int64_t elements)
{
    return elements >= 0 && elements <= INT_MAX;
}
