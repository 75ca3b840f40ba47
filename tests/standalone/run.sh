#!/bin/sh
# run.sh NNCC MODEL.yaml DIR CC RUNTIME_INCLUDE RUNTIME_LIB CLANG|- [--tamper]
#
# One model through --standalone, as a user would: the ordinary build of the
# model (prefix ref, libnncc_rt) writes weights and expected outputs
# (reference.c); `nncc MODEL --standalone --weights` compiles those weights
# in (prefix sa); sa.c and sa.h must name no malloc, cblas, H5 or nnrt
# (scan.sh); sa.c must build with -std=c99 -O3 -Wall -Wextra -Werror -pedantic
# (and with CLANG unless it is -) and link with -lm alone; check.c then
# compares its outputs with the reference's and prints the largest
# difference. With --tamper the weights compiled in are another seed's: the
# comparison must then fail, so the script exits 0 only when it does.
# $STANDALONE_LINK: C files both builds link (a model's C hooks). $CFLAGS
# and $LDFLAGS are added as nncc adds them (the sanitized build sets them).
set -eu
link=${STANDALONE_LINK:-}
nncc=$1 model=$2 dir=$3 cc=$4 inc=$5 lib=$6 clang=$7 tamper=${8:-}
here=$(cd "$(dirname "$0")" && pwd)
name=$(basename "$model" .yaml)
strict="-std=c99 -O3 -Wall -Wextra -Werror -pedantic ${CFLAGS:-}"
rm -rf "$dir"
mkdir -p "$dir"
"$nncc" "$model" -o "$dir/ref.c" --prefix ref --inference-only --quiet
# shellcheck disable=SC2086
"$cc" -std=c11 -O2 ${CFLAGS:-} -I"$dir" -I"$inc" "$here/reference.c" "$dir/ref.c" $link ${LDFLAGS:-} -L"$lib" -Wl,-rpath,"$lib" -lnncc_rt -lm \
    -o "$dir/reference"
"$dir/reference" "$dir"
weights=$dir/weights.h5
if [ "$tamper" = --tamper ]; then
    mkdir -p "$dir/other"
    "$dir/reference" "$dir/other" 2
    weights=$dir/other/weights.h5
fi
"$nncc" "$model" --standalone --weights "$weights" -o "$dir/sa.c" --prefix sa --quiet --report > "$dir/report.txt"
sh "$here/scan.sh" "$dir/sa.c" "$dir/sa.h"
# shellcheck disable=SC2086
"$cc" $strict -c "$dir/sa.c" -o "$dir/sa.o"
if [ "$clang" != - ]; then
    # shellcheck disable=SC2086
    "$clang" $strict -fsyntax-only "$dir/sa.c"
fi
# shellcheck disable=SC2086
"$cc" $strict -I"$dir" "$here/check.c" "$dir/sa.o" $link ${LDFLAGS:-} -lm -o "$dir/check"
if [ "$tamper" = --tamper ]; then
    if "$dir/check" "$dir/cases.bin" "$name (another seed's weights)"; then
        echo "run.sh: another seed's weights passed the comparison" >&2
        exit 1
    fi
    exit 0
fi
exec "$dir/check" "$dir/cases.bin" "$name"
