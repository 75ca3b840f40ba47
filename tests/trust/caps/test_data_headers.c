/* test_data_headers.c — the data loaders (runtime/data.c) against headers
 * that declare more than their file holds (issue 13, D14).
 *
 * Writes small .npy and IDX files by hand into a temporary folder: headers
 * declaring gigabytes or terabytes over a few bytes of data, a header length
 * past the end of the file, data a few bytes short or long, a shape whose
 * product overflows; an HDF5 file whose contiguous dataset's shape is patched
 * to run far past the end of the file. Each load must fail with NNRT_EFORMAT and the message
 * that names both sizes, run under an address-space limit of 512 MiB so
 * that a loader allocating what the header asks fails the test instead of
 * succeeding on a big machine (not under AddressSanitizer, whose shadow
 * memory needs the address space). A well-formed file of each kind still
 * loads.
 *
 * Prints "N passed, N failed" last; exit status 1 on any failure.
 */
#define _XOPEN_SOURCE 700

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <hdf5.h>

#include "../../check.h"

static char dir[] = "/tmp/nncc-headers.XXXXXX";

static const char *path_of(const char *name)
{
    static char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return path;
}

static void write_bytes(const char *name, const void *bytes, size_t n)
{
    FILE *f = fopen(path_of(name), "wb");
    if (!f || fwrite(bytes, 1, n, f) != n || fclose(f) != 0) {
        fprintf(stderr, "cannot write %s\n", path_of(name));
        exit(2);
    }
}

/* A version 1.0 .npy: header dict padded to 64 bytes, then data_bytes zeros. */
static void write_npy(const char *name, const char *shape, size_t data_bytes, long header_len_override)
{
    unsigned char buf[4096] = "\x93NUMPY\x01\x00";
    char dict[256];
    int n = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': %s, }", shape);
    size_t header_len = ((10 + (size_t)n + 1 + 63) / 64) * 64 - 10;
    memset(buf + 10, ' ', header_len);
    memcpy(buf + 10, dict, (size_t)n);
    buf[10 + header_len - 1] = '\n';
    size_t declared = header_len_override >= 0 ? (size_t)header_len_override : header_len;
    buf[8] = (unsigned char)(declared & 0xff);
    buf[9] = (unsigned char)(declared >> 8);
    memset(buf + 10 + header_len, 0, data_bytes);
    write_bytes(name, buf, 10 + header_len + data_bytes);
}

/* An IDX file of unsigned bytes: rank dims, then data_bytes zeros. */
static void write_idx(const char *name, int rank, const uint32_t *dims, size_t data_bytes)
{
    unsigned char buf[4096] = {0, 0, 0x08, (unsigned char)rank};
    for (int i = 0; i < rank; i++)
        for (int b = 0; b < 4; b++)
            buf[4 + 4 * i + b] = (unsigned char)(dims[i] >> (24 - 8 * b));
    write_bytes(name, buf, 4 + 4 * (size_t)rank + data_bytes);
}

/* load must fail with NNRT_EFORMAT and a message holding want */
static void refused(const char *what, int rc, const char *err, const char *want)
{
    int ok = rc == NNRT_EFORMAT && strstr(err, want);
    expect(what, ok);
    if (!ok)
        printf("    rc %d, message '%s', want '%s'\n", rc, err, want);
}

int main(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 2;
    }
    /* an address-space limit catches a loader that allocates what a header
     * claims; not under ASan, which reserves terabytes of shadow memory */
    int asan = 0;
#if defined(__SANITIZE_ADDRESS__)
    asan = 1;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
    asan = 1;
#endif
#endif
    if (!asan) {
        struct rlimit as = {512u << 20, 512u << 20};
        setrlimit(RLIMIT_AS, &as);
    }
    char err[512];
    NnrtArray a = {0};

    /* .npy */
    write_npy("huge.npy", "(1000000000, 28, 28)", 64, -1);
    refused(".npy declaring 3 TB over 64 bytes: truncated, nothing allocated",
            nnrt_npy_load(path_of("huge.npy"), &a, err, sizeof err), err,
            "truncated .npy file: the header declares 3136000000000 bytes of data, the file has 64");
    write_npy("short.npy", "(10, 4)", 150, -1);
    refused(".npy 10 bytes short", nnrt_npy_load(path_of("short.npy"), &a, err, sizeof err), err,
            "the header declares 160 bytes of data, the file has 150");
    write_npy("long.npy", "(10, 4)", 170, -1);
    refused(".npy 10 bytes long", nnrt_npy_load(path_of("long.npy"), &a, err, sizeof err), err,
            "longer than its header declares (160 bytes of data, the file has 170)");
    write_npy("header_len.npy", "(2,)", 8, 60000);
    refused(".npy whose header length runs past the file", nnrt_npy_load(path_of("header_len.npy"), &a, err, sizeof err),
            err, "the header declares 60000 bytes of header, the file has");
    write_npy("overflow.npy", "(4294967296, 4294967296, 4294967296)", 8, -1);
    refused(".npy whose shape product overflows", nnrt_npy_load(path_of("overflow.npy"), &a, err, sizeof err), err,
            ".npy shape too large");
    write_npy("good.npy", "(10, 4)", 160, -1);
    int rc = nnrt_npy_load(path_of("good.npy"), &a, err, sizeof err);
    expect("a well-formed .npy (10, 4) loads", rc == 0 && a.rank == 2 && a.shape[0] == 10 && a.shape[1] == 4);
    nnrt_array_free(&a);

    /* IDX */
    write_idx("huge.idx", 3, (const uint32_t[]){4000000000u, 28, 28}, 100);
    refused("IDX declaring 3 TB over 100 bytes: truncated, nothing allocated",
            nnrt_idx_load(path_of("huge.idx"), 1.0f, &a, err, sizeof err), err,
            "truncated IDX file: the header declares 3136000000000 elements (3136000000000 bytes of data), the file "
            "has 100");
    write_idx("short.idx", 2, (const uint32_t[]){10, 4}, 30);
    refused("IDX 10 bytes short", nnrt_idx_load(path_of("short.idx"), 1.0f, &a, err, sizeof err), err,
            "the file has 30");
    write_idx("good.idx", 2, (const uint32_t[]){10, 4}, 40);
    rc = nnrt_idx_load(path_of("good.idx"), 1.0f, &a, err, sizeof err);
    expect("a well-formed IDX (10, 4) loads", rc == 0 && a.rank == 2 && a.shape[0] == 10 && a.shape[1] == 4);
    nnrt_array_free(&a);

    /* HDF5: a contiguous (291, 4) float dataset, then 291 patched to 0x0123456789 (the
       dimension and its maximum) in the file's bytes */
    hid_t file = H5Fcreate(path_of("d.h5"), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t dims[2] = {291, 4};
    hid_t space = H5Screate_simple(2, dims, NULL);
    hid_t ds = H5Dcreate2(file, "x", H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    static float values[291 * 4];
    H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, values);
    H5Dclose(ds);
    H5Sclose(space);
    H5Fclose(file);
    rc = nnrt_hdf5_load(path_of("d.h5"), "x", &a, err, sizeof err);
    expect("a well-formed HDF5 dataset (291, 4) loads", rc == 0 && a.shape[0] == 291 && a.shape[1] == 4);
    nnrt_array_free(&a);
    FILE *f = fopen(path_of("d.h5"), "rb");
    unsigned char bytes[65536];
    size_t n = f ? fread(bytes, 1, sizeof bytes, f) : 0, patched = 0;
    if (f)
        fclose(f);
    const unsigned char from[8] = {0x23, 0x01}, to[8] = {0x89, 0x67, 0x45, 0x23, 0x01};
    for (size_t i = 0; i + 8 <= n; i++)
        if (!memcmp(bytes + i, from, 8)) {
            memcpy(bytes + i, to, 8);
            patched++;
        }
    write_bytes("d_bad.h5", bytes, n);
    expect("the HDF5 file has the dimension to patch", patched >= 1);
    refused("HDF5 dataset whose extent runs past the file: truncated, nothing allocated",
            nnrt_hdf5_load(path_of("d_bad.h5"), "x", &a, err, sizeof err), err,
            "truncated dataset 'x': its shape declares 78187493520 bytes of data at offset");

    const char *names[] = {"d.h5", "d_bad.h5", "huge.npy", "short.npy", "long.npy", "header_len.npy", "overflow.npy", "good.npy",
                           "huge.idx", "short.idx", "good.idx"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        unlink(path_of(names[i]));
    rmdir(dir);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
