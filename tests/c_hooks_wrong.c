/* c_hooks_wrong.c — models/examples/c_hooks.c with one hook of the wrong
 * signature (double where the activation hook needs float): nncc must report
 * it at the hook's line in the model file (tests/CMakeLists.txt). */
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

double softplus_c_grad(double x)
{
    return 1.0f / (1.0f + expf(-x));
}
