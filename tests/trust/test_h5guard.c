/* test_h5guard.c — runtime/h5guard.c on its own: the child process turns a
 * crash, a failure and a hang of the reader into NNRT_EFORMAT "the file is
 * damaged" (the hang within its time limit), passes a complete answer back
 * byte for byte, and nnrt_h5_precheck refuses superblocks that point past
 * the file. usage: test_h5guard FILE.h5 SCRATCH_DIR (FILE.h5: an HDF5 file
 * with a sound superblock, such as libhdf5_segv.h5, whose damage is deeper;
 * the damaged copies are written to SCRATCH_DIR). */
#define _POSIX_C_SOURCE 200809L
#include "nnrt.h"
#include "h5open.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static int failures;

#define CHECK(cond, ...)                                                    \
    do {                                                                    \
        if (!(cond)) {                                                      \
            failures++;                                                     \
            printf("FAIL  %s:%d: ", __FILE__, __LINE__);                    \
            printf(__VA_ARGS__);                                            \
            printf("\n");                                                   \
        }                                                                   \
    } while (0)

static int answer(void *ctx, FILE *out)
{
    return fputs(ctx, out) < 0 ? -1 : 0;
}

static int crash(void *ctx, FILE *out)
{
    (void)ctx;
    fputs("half an answer", out);
    fflush(out);
    raise(SIGSEGV);
    return 0;
}

static int refuse(void *ctx, FILE *out)
{
    (void)ctx;
    fputs("half an answer", out);
    return -1;
}

static int hang(void *ctx, FILE *out)
{
    (void)ctx;
    (void)out;
    for (;;)
        pause();
    return 0;
}

/* SAVED.h5 with `size` bytes, or with its end-of-file address raised. */
static const char *damaged_copy(const char *saved, const char *dir, const char *name, long size, int raise_eof)
{
    static char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *in = fopen(saved, "rb"), *out = fopen(path, "wb");
    if (!in || !out)
        exit(2);
    static unsigned char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf, in);
    if (raise_eof && buf[8] <= 3) {   /* v0/1: EOF address at 40 (8-byte offsets); v2/3: at 28 */
        size_t at = buf[8] <= 1 ? 40 : 28;
        buf[at + 4] = 0x7f;
    }
    fwrite(buf, 1, size >= 0 && (size_t)size < n ? (size_t)size : n, out);
    fclose(in);
    fclose(out);
    return path;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s SAVED.h5 SCRATCH_DIR\n", argv[0]);
        return 2;
    }
    const char *saved = argv[1];
    char err[512], *out = NULL;
    size_t len = 0;

    int rc = nnrt_h5_isolated(saved, answer, "the whole answer", 0, &out, &len, err, sizeof err);
    CHECK(rc == NNRT_OK && len == 16 && !memcmp(out, "the whole answer", 16), "answer: rc %d, %zu bytes", rc, len);
    free(out);

    rc = nnrt_h5_isolated(saved, crash, NULL, 0, &out, &len, err, sizeof err);
    CHECK(rc == NNRT_EFORMAT && !out && strstr(err, ": the file is damaged (the HDF5 library failed reading it)"),
          "crash: rc %d, '%s'", rc, err);

    rc = nnrt_h5_isolated(saved, refuse, NULL, 0, &out, &len, err, sizeof err);
    CHECK(rc == NNRT_EFORMAT && !out, "a failed read: rc %d", rc);

    nnrt_h5_set_policy(&(NnrtH5Policy){.isolate = 1, .time_limit = 1});
    time_t start = time(NULL);
    rc = nnrt_h5_isolated(saved, hang, NULL, 0, &out, &len, err, sizeof err);
    CHECK(rc == NNRT_EFORMAT && strstr(err, "did not finish reading it in 1 s") && time(NULL) - start <= 5,
          "hang: rc %d after %lds, '%s'", rc, (long)(time(NULL) - start), err);
    nnrt_h5_set_policy(&(NnrtH5Policy){0});

    rc = nnrt_h5_precheck(saved, NULL, err, sizeof err);
    CHECK(rc == NNRT_OK, "a valid file: %s", err);
    rc = nnrt_h5_precheck(damaged_copy(saved, argv[2], "short.h5", 4000, 0), NULL, err, sizeof err);
    CHECK(rc == NNRT_EFORMAT && strstr(err, "damaged or truncated: its HDF5 superblock says the file ends at byte"),
          "truncated: rc %d, '%s'", rc, err);
    rc = nnrt_h5_precheck(damaged_copy(saved, argv[2], "eof.h5", -1, 1), NULL, err, sizeof err);
    CHECK(rc == NNRT_EFORMAT && strstr(err, "damaged or truncated"), "end-of-file address raised: rc %d, '%s'", rc,
          err);
    rc = nnrt_h5_precheck(damaged_copy(saved, argv[2], "stub.h5", 20, 0), "a Keras .h5 weights file", err,
                          sizeof err);
    CHECK(rc == NNRT_EFORMAT && strstr(err, "superblock"), "a 20-byte stub: rc %d, '%s'", rc, err);
    rc = nnrt_h5_precheck(argv[0], "a Keras .h5 weights file", err, sizeof err);
    CHECK(rc == NNRT_EFORMAT && strstr(err, "no HDF5 signature); expected a Keras .h5 weights file"),
          "not HDF5: rc %d, '%s'", rc, err);
    rc = nnrt_h5_precheck(argv[2], NULL, err, sizeof err);
    CHECK(rc == NNRT_EFORMAT && strstr(err, "not a regular file"), "a folder: rc %d, '%s'", rc, err);

    printf("%s (%d failures)\n", failures ? "FAIL" : "ok", failures);
    return failures != 0;
}
