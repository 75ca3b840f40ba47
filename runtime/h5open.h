/* h5open.h — runtime-internal: opening an HDF5 file for reading with the
 * runtime's error messages, shared by the weights (h5.c) and data (data.c)
 * readers. Not installed; needs <hdf5.h>. */
#ifndef NNCC_RUNTIME_H5OPEN_H
#define NNCC_RUNTIME_H5OPEN_H

#include <hdf5.h>
#include <stddef.h>

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

hid_t nnrt_h5_open_read(const char *path, const char *expected, int *rc, char *err, size_t errlen);

#endif
