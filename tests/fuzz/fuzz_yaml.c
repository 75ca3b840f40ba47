/* fuzz_yaml.c — libFuzzer harness: a YAML model file through the whole
 * compile path (parse, expand, lower, autodiff, passes, plan, emit; see
 * fuzz_compile.h). A run may end in an error message, never a crash, a
 * hang or an unbounded allocation. Dictionary: yaml.dict.
 */
#include "fuzz_compile.h"
#include "fuzz_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size, ".yaml");
    if (path)
        fuzz_compile(path);
    return 0;
}
