#!/bin/sh
# scan.sh FILE...: standalone code may name no allocator, BLAS, HDF5 or nncc
# runtime: exit 1, naming each line, when a file contains malloc, cblas, H5
# or nnrt.
set -u
if grep -n -e malloc -e cblas -e H5 -e nnrt "$@"; then
    echo "scan.sh: the standalone code names malloc, cblas, H5 or nnrt (above)" >&2
    exit 1
fi
exit 0
