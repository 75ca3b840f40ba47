#!/bin/sh
# emit_test.sh NNCC MODEL.yaml DIR CC INCLUDE_DIR LIB_DIR [--tamper]
#
# What a user does with `nncc MODEL --emit-test`: generate P.c, build it
# warning-free (-std=c11 -Wall -Wextra -Werror), write test_P.c from nncc's
# unfused reference build, build and run it. With --tamper, the expected loss
# in test_P.c is changed by 1% first: the test must then fail (exit 1), so
# this script exits 0 only when it does. $CFLAGS and $LDFLAGS are added as
# nncc adds them (the sanitized build sets them: tests/CMakeLists.txt).
set -eu
nncc=$1 model=$2 dir=$3 cc=$4 inc=$5 lib=$6 tamper=${7:-}
name=$(basename "$model" .yaml)
mkdir -p "$dir"
"$nncc" "$model" -o "$dir/$name.c" --quiet
"$nncc" "$model" --emit-test -o "$dir/test_$name.c" --out "$dir/out" --quiet
if [ "$tamper" = --tamper ]; then
    sed -i 's/^\(        \.loss = \)\([^f]*\)f,/\1(\2f * 1.01f),/' "$dir/test_$name.c"
    grep -q '\.loss = (' "$dir/test_$name.c"
fi
# shellcheck disable=SC2086
"$cc" -std=c11 -O2 -Wall -Wextra -Werror ${CFLAGS:-} -I"$inc" "$dir/test_$name.c" "$dir/$name.c" ${LDFLAGS:-} \
    -L"$lib" -Wl,-rpath,"$lib" -lnncc_rt -lm -o "$dir/test_$name"
if [ "$tamper" = --tamper ]; then
    if "$dir/test_$name"; then
        echo "emit_test.sh: the tampered test passed" >&2
        exit 1
    fi
    exit 0
fi
exec "$dir/test_$name"
