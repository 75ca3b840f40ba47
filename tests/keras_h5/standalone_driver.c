/* standalone_driver.c — runs a --standalone model (prefix sa) on raw float32
 * samples from stdin, one sample at a time, and writes the raw float32
 * outputs to stdout: the C side of standalone_h5.py. One input and one
 * output; built with -std=c99 and -lm only. */
#include <stdio.h>

#include "sa.h"

static float workspace[sa_WORKSPACE_BYTES / sizeof(float) + 1];

int main(void)
{
    static float in[sa_INPUT0_SIZE], out[sa_OUTPUT0_SIZE];
    while (fread(in, sizeof in, 1, stdin) == 1) {
        const float *inputs[] = {in};
        float *outputs[] = {out};
        if (sa_infer(inputs, outputs, workspace) != 0 || fwrite(out, sizeof out, 1, stdout) != 1)
            return 1;
    }
    return 0;
}
