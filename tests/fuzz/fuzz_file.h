/* fuzz_file.h — the harnesses' one helper: the fuzzer's bytes as a file.
 *
 * Every nncc input is read by path (YAML text, HDF5 through libhdf5, data
 * through stdio and zlib), so each harness writes its input to one
 * per-process file under $TMPDIR (default /tmp) with the extension the
 * reader dispatches on, and calls the reader on that path: the same entry
 * point the command line uses, not a copy of it. The file is rewritten in
 * place each run and removed at exit.
 */
#ifndef NNCC_FUZZ_FILE_H
#define NNCC_FUZZ_FILE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char fuzz_path[4096];

static void fuzz_file_remove(void) { unlink(fuzz_path); }

/* The path holding data, named nncc-fuzz-PID<ext>; NULL if it cannot be
 * written (the run is then skipped: a full disk is no finding). */
static const char *fuzz_file(const uint8_t *data, size_t size, const char *ext)
{
    if (!fuzz_path[0]) {
        const char *dir = getenv("TMPDIR");
        snprintf(fuzz_path, sizeof fuzz_path, "%s/nncc-fuzz-%ld%s", dir && *dir ? dir : "/tmp", (long)getpid(), ext);
        atexit(fuzz_file_remove);
    }
    FILE *f = fopen(fuzz_path, "wb");
    if (!f)
        return NULL;
    int ok = fwrite(data, 1, size, f) == size;
    ok &= fclose(f) == 0;
    return ok ? fuzz_path : NULL;
}

#endif
