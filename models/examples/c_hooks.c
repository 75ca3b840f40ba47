/* c_hooks.c — the C side of models/examples/c_hooks.yaml: scalar functions
 * the generated model calls (custom functions written in C, with their
 * derivatives, since nncc cannot differentiate C). Build and train with
 *   ./build/nncc train models/examples/c_hooks.yaml --c-source models/examples/c_hooks.c
 */
#include <math.h>

/* The notes' Huber loss, element by element, and its derivative in y_pred. */
float huber_c(float y_true, float y_pred)
{
    float e = y_true - y_pred;
    return fabsf(e) < 1.0f ? 0.5f * e * e : fabsf(e) - 0.5f;
}

float huber_c_grad(float y_true, float y_pred)
{
    float e = y_true - y_pred;
    return fabsf(e) < 1.0f ? -e : (e > 0.0f ? -1.0f : 1.0f);
}

/* softplus and its derivative, the logistic function */
float softplus_c(float x)
{
    return fmaxf(x, 0.0f) + log1pf(expf(-fabsf(x)));
}

float softplus_c_grad(float x)
{
    return 1.0f / (1.0f + expf(-x));
}
