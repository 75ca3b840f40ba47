/* fuzz_weights.c — libFuzzer harness: an HDF5 weights file through the
 * runtime's readers (runtime/h5.c, runtime/data.c), the code a generated
 * program's P_load runs for --weights, a saved model or weights_from:
 * nnrt_h5_load strict (P_load) and not strict (transfer learning),
 * nnrt_h5_load_optimizer (a resumed run's Adam state) and nnrt_hdf5_load
 * (a fit: data: {hdf5: ...} dataset).
 *
 * The model is fixed: the 6-5-4-3 Dense MLP trained with Adam of
 * tests/golden/golden_mlp_adam.yaml, its weight and slot tables written as
 * the emitter writes them (backends/c/emit.c), so the seed files match it
 * and mutations reach the reading of every dataset.
 *
 * The program nncc builds has libhdf5 read weights files in a child process
 * (nnrt_h5_set_policy in nnrt_main), since libhdf5 1.10 itself crashes and
 * hangs on damaged files (docs/security.md); the harness does the same, so
 * what it finds is what escapes that defence. NNCC_FUZZ_IN_PROCESS=1 reads
 * in-process instead: coverage of the readers, and libhdf5's own crashes
 * behind nncc's checks of the bytes before it. (NNCC_FUZZ_H5_POLICY is
 * defined by harnesses/CMakeLists.txt when the runtime has that policy.)
 *
 * NNCC_FUZZ_WRITE_SEED=FILE.h5 makes the harness write, at start, that
 * model's weights and optimizer state with nnrt_h5_save (what `nncc train`
 * saves): the seed corpus's own-writer file.
 */
#include "fuzz_file.h"
#include "nnrt.h"

#define W(layer, name, rank, d0, d1, offset) {layer, layer "/" name ":0", rank, {d0, d1}, offset, 1}
static const NnrtWeightInfo weights[] = {
    W("dense", "kernel", 2, 6, 5, 0),    W("dense", "bias", 1, 5, 0, 30),
    W("dense_1", "kernel", 2, 5, 4, 35), W("dense_1", "bias", 1, 4, 0, 55),
    W("dense_2", "kernel", 2, 4, 3, 59), W("dense_2", "bias", 1, 3, 0, 71),
};
#define NUM_WEIGHTS (sizeof weights / sizeof weights[0])
#define WEIGHT_FLOATS 74

#define S(layer, name, slot, rank, d0, d1, offset) \
    {layer, "Adam/" layer "/" name "/" slot ":0", rank, {d0, d1}, offset, 1}
static const NnrtWeightInfo slots[] = {
    S("dense", "kernel", "m", 2, 6, 5, 0),        S("dense", "bias", "m", 1, 5, 0, 30),
    S("dense_1", "kernel", "m", 2, 5, 4, 35),     S("dense_1", "bias", "m", 1, 4, 0, 55),
    S("dense_2", "kernel", "m", 2, 4, 3, 59),     S("dense_2", "bias", "m", 1, 3, 0, 71),
    S("dense", "kernel", "v", 2, 6, 5, 74),       S("dense", "bias", "v", 1, 5, 0, 104),
    S("dense_1", "kernel", "v", 2, 5, 4, 109),    S("dense_1", "bias", "v", 1, 4, 0, 129),
    S("dense_2", "kernel", "v", 2, 4, 3, 133),    S("dense_2", "bias", "v", 1, 3, 0, 145),
};
#define NUM_SLOTS (sizeof slots / sizeof slots[0])
#define SLOT_FLOATS (2 * WEIGHT_FLOATS)

static void write_seed(const char *path)
{
    static const char *const layers[] = {"dense", "dense_1", "dense_2"};
    float block[WEIGHT_FLOATS], state[SLOT_FLOATS];
    for (int i = 0; i < WEIGHT_FLOATS; i++)
        block[i] = (float)(i % 7) * 0.125f - 0.375f;
    for (int i = 0; i < SLOT_FLOATS; i++)
        state[i] = (float)(i % 5) * 0.01f;
    NnrtOptimizerState opt = {"Adam", 12, slots, NUM_SLOTS, state};
    char err[1024];
    if (nnrt_h5_save(path, layers, 3, weights, NUM_WEIGHTS, block, NULL, &opt, err, sizeof err)) {
        fprintf(stderr, "fuzz_weights: %s\n", err);
        exit(1);
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
#ifdef NNCC_FUZZ_H5_POLICY
    const char *in_process = getenv("NNCC_FUZZ_IN_PROCESS");
    nnrt_h5_set_policy(&(NnrtH5Policy){.isolate = !(in_process && *in_process == '1')});
#endif
    const char *seed = getenv("NNCC_FUZZ_WRITE_SEED");
    if (seed && *seed)
        write_seed(seed);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size, ".h5");
    if (!path)
        return 0;
    char err[1024];
    float block[WEIGHT_FLOATS], state[SLOT_FLOATS];
    unsigned char loaded[NUM_WEIGHTS];
    if (nnrt_h5_load(path, weights, NUM_WEIGHTS, block, 1, NULL, err, sizeof err) == 0) {
        NnrtOptimizerState opt = {"Adam", 0, slots, NUM_SLOTS, state};
        nnrt_h5_load_optimizer(path, &opt, err, sizeof err);
    }
    nnrt_h5_load(path, weights, NUM_WEIGHTS, block, 0, loaded, err, sizeof err);
    NnrtArray a = {0};
    if (nnrt_hdf5_load(path, "model_weights/dense/dense/kernel:0", &a, err, sizeof err) == 0)
        nnrt_array_free(&a);
    return 0;
}
