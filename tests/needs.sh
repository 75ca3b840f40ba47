#!/bin/sh
# needs.sh PATH... -- COMMAND [ARG...]
#
# Runs COMMAND when every PATH exists; otherwise says which is absent and
# exits 77, which CTest reports as "Skipped" (the tests added through
# nncc_outside_test in tests/CMakeLists.txt have SKIP_RETURN_CODE 77). For
# tests that read files kept outside the repository (NNCC_SHARED_DIR): on a
# fresh clone they are skipped, never failed, never passed. COMMAND must not
# exit 77 itself; nncc's test programs and scripts exit 0, 1 or 2.
while [ $# -gt 0 ] && [ "$1" != -- ]; do
    if [ ! -e "$1" ]; then
        echo "skipped: $1 is absent (outside test files; configure with -DNNCC_SHARED_DIR=DIR to run this test)"
        exit 77
    fi
    shift
done
[ $# -gt 1 ] || { echo "usage: needs.sh PATH... -- COMMAND [ARG...]" >&2; exit 2; }
shift
exec "$@"
