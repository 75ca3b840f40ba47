/* fuzz_keras_h5.c — libFuzzer harness: a Keras .h5 model file through the
 * importer (keras_h5_to_yaml: HDF5 attributes, the model_config JSON, its
 * conversion to YAML) and then the whole compile path like a YAML model
 * (fuzz_compile.h). The file's extension makes model_parse take the Keras
 * path, as the command line does for `nncc summary model.h5`.
 */
#include "fuzz_compile.h"
#include "fuzz_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size, ".h5");
    if (path)
        fuzz_compile(path);
    return 0;
}
