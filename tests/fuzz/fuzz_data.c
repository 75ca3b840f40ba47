/* fuzz_data.c — libFuzzer harness: a data file through every loader of
 * runtime/data.c that reads bytes a user passes (--input, --data,
 * --targets, fit: data:): nnrt_npy_load, nnrt_idx_load (plain or gzipped:
 * zlib reads both) and nnrt_csv_load (plain or gzipped) in two
 * configurations, by index without a header and by name with a skipped
 * line and a header, split and standardized. Every input goes through
 * every loader, so a file of one format is a hostile file for the others.
 */
#include "fuzz_file.h"
#include "nnrt.h"

static void csv(const char *path, NnrtDataSource src)
{
    char err[1024];
    NnrtDataset parts[3] = {0};
    NnrtScaler scaler = {0};
    src.format = NNRT_DATA_CSV;
    src.path = path;
    if (nnrt_csv_load(&src, NULL, parts, &scaler, err, sizeof err) == 0)
        for (int k = 0; k < 3; k++)
            nnrt_dataset_free(&parts[k]);
    nnrt_scaler_free(&scaler);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file(data, size, ".dat");
    if (!path)
        return 0;
    char err[1024];
    NnrtArray a = {0};
    if (nnrt_npy_load(path, &a, err, sizeof err) == 0)
        nnrt_array_free(&a);
    if (nnrt_idx_load(path, 1.0f / 255, &a, err, sizeof err) == 0)
        nnrt_array_free(&a);
    csv(path, (NnrtDataSource){.x = "0,2", .y = "1", .delimiter = ','});
    csv(path, (NnrtDataSource){.x = "a,b|c", .y = "t", .header = 1, .skip_rows = 1, .delimiter = ' ',
                               .standardize = 1, .split = {0.5, 0.25, 0.25}, .seed = 7});
    return 0;
}
