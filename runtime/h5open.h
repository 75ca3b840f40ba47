/* h5open.h — runtime-internal: opening an HDF5 file for reading with the
 * runtime's error messages, shared by the weights (h5.c) and data (data.c)
 * readers, and the guards around libhdf5 (h5guard.c), which the compiler's
 * Keras importer uses too. Not installed; needs <hdf5.h>. */
#ifndef NNCC_RUNTIME_H5OPEN_H
#define NNCC_RUNTIME_H5OPEN_H

#include <hdf5.h>
#include <stddef.h>
#include <stdio.h>

/* HDF5 prints its error stack to stderr by default; the runtime reports
 * errors itself. nnrt_h5_quiet turns the printing off (and clears the
 * stack); nnrt_h5_restore clears the stack and puts the caller's back. */
typedef struct {
    H5E_auto2_t func;
    void *data;
    int saved;
} NnrtH5Quiet;

void nnrt_h5_quiet(NnrtH5Quiet *q);
void nnrt_h5_restore(const NnrtH5Quiet *q);

/* nnrt_h5_precheck, then H5Fopen read-only. */
hid_t nnrt_h5_open_read(const char *path, const char *expected, int *rc, char *err, size_t errlen);

/* ---- h5guard.c ------------------------------------------------------------ */

/* Checks of the raw bytes before libhdf5 reads the file: a signature, a
 * superblock libhdf5 1.10 reads, its end-of-file address within the file
 * and the root group before it. NNRT_OK, NNRT_EIO or NNRT_EFORMAT (err
 * names the file, the fault and, when not HDF5 at all, what was `expected`,
 * "a Keras .h5 weights file"; NULL: an HDF5 file). */
int nnrt_h5_precheck(const char *path, const char *expected, char *err, size_t errlen);

/* Size in bytes of the file holding obj, 0 when unknown. */
hsize_t nnrt_h5_file_size(hid_t obj);

/* Whether libhdf5 may read npoints elements of the dataset: an element of
 * 1 to 8 bytes; contiguous data inside the file (damaged files put it
 * anywhere); chunked data no more than 1100 times what is stored (deflate
 * expands at most 1032:1) plus 64 MiB. 1 yes, 0 no, -1 HDF5 error. */
int nnrt_h5_storage_fits(hid_t ds, hid_t type, hssize_t npoints);

/* The read run in a child process: writes its whole result to out and
 * returns >= 0, or < 0 (nothing usable written). */
typedef int (*NnrtIsolatedRead)(void *ctx, FILE *out);

/* Runs reader in a fork()ed child under a time limit (NNCC_HDF5_TIME_LIMIT
 * seconds, else 20 s + 1 s per 20 MB of the file) and an address-space
 * limit (1 GiB + twice the file + twice result_bytes beyond the parent's).
 * NNRT_OK: *out (malloc'd) holds the child's complete output, *out_len
 * bytes. NNRT_EFORMAT: the child crashed, failed or hung, err says "PATH:
 * the file is damaged (the HDF5 library failed reading it)". NNRT_EIO or
 * NNRT_ENOMEM: no child could be run or heard. */
int nnrt_h5_isolated(const char *path, NnrtIsolatedRead reader, void *ctx, size_t result_bytes, char **out,
                     size_t *out_len, char *err, size_t errlen);

/* The parent's cursor over a child's output. */
typedef struct {
    const char *buf;
    size_t len, at;
} NnrtWire;

/* Next n bytes into dst; -1 (nothing taken) when fewer are left. */
int nnrt_wire_take(NnrtWire *w, void *dst, size_t n);

#endif
