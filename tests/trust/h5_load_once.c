/* h5_load_once.c — loads one .h5 file as tiny_mlp's weights and optimizer
 * state (tests/cli/tiny_mlp.yaml: Dense 4->8, Dense 8->3, Adam), for
 * tests/trust/h5_mutate.py, which runs it on mutated copies of a saved
 * file and counts the runs that end in a signal or a hang.
 *
 * usage: h5_load_once FILE [isolate]   exit 0 loaded, 1 refused with a
 * message; anything else (a signal, a timeout) is what the guard must
 * prevent. With "isolate" libhdf5 reads in a child process, as in the
 * programs nncc builds. Built against any runtime with nnrt_h5_load, so the
 * same source measures an older runtime too (-DNO_POLICY). */
#include "nnrt.h"

#include <stdio.h>
#include <string.h>

static const NnrtWeightInfo weights[] = {
    {"dense", "dense/kernel:0", 2, {4, 8}, 0, 1},
    {"dense", "dense/bias:0", 1, {8}, 32, 1},
    {"dense_1", "dense_1/kernel:0", 2, {8, 3}, 40, 1},
    {"dense_1", "dense_1/bias:0", 1, {3}, 64, 1},
};

static const NnrtWeightInfo slots[] = {
    {"dense", "Adam/dense/kernel/m:0", 2, {4, 8}, 0, 1},
    {"dense", "Adam/dense/bias/m:0", 1, {8}, 32, 1},
    {"dense_1", "Adam/dense_1/kernel/m:0", 2, {8, 3}, 40, 1},
    {"dense_1", "Adam/dense_1/bias/m:0", 1, {3}, 64, 1},
    {"dense", "Adam/dense/kernel/v:0", 2, {4, 8}, 67, 1},
    {"dense", "Adam/dense/bias/v:0", 1, {8}, 99, 1},
    {"dense_1", "Adam/dense_1/kernel/v:0", 2, {8, 3}, 107, 1},
    {"dense_1", "Adam/dense_1/bias/v:0", 1, {3}, 131, 1},
};

int main(int argc, char **argv)
{
    if (argc < 2)
        return 2;
#ifndef NO_POLICY
    nnrt_h5_set_policy(&(NnrtH5Policy){.isolate = argc > 2 && !strcmp(argv[2], "isolate")});
#endif
    float block[67], state[134];
    char err[1024];
    int rc = nnrt_h5_load(argv[1], weights, 4, block, 1, NULL, err, sizeof err);
    if (rc < 0) {
        fprintf(stderr, "error: %s\n", err);
        return 1;
    }
    NnrtOptimizerState opt = {"Adam", 0, slots, 8, state};
    if (nnrt_h5_load_optimizer(argv[1], &opt, err, sizeof err) < 0) {
        fprintf(stderr, "error: %s\n", err);
        return 1;
    }
    return 0;
}
