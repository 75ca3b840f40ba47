/* h5open.h — runtime-internal: opening an HDF5 file for reading with the
 * runtime's error messages, shared by the weights (h5.c) and data (data.c)
 * readers. Not installed; needs <hdf5.h>. */
#ifndef NNCC_RUNTIME_H5OPEN_H
#define NNCC_RUNTIME_H5OPEN_H

#include <hdf5.h>
#include <stddef.h>

hid_t nnrt_h5_open_read(const char *path, const char *expected, int *rc, char *err, size_t errlen);

#endif
