#!/bin/sh
# generate.sh NNCC MODEL.yaml DIR CC RUNTIME_INCLUDE RUNTIME_LIB
#
# For a model too big to compile in CI (resnet34: 21M weights make a 300 MB
# P.c that takes gcc about two minutes and 4 GB): the ordinary build writes
# weights (reference.c), `nncc MODEL --standalone --weights` compiles them
# in, sa.c and sa.h must name no malloc, cblas, H5 or nnrt, and sa.c with
# its weight arrays' values left out (declared, not initialized) must build
# with -std=c99 -Wall -Wextra -Werror -pedantic at -O2 and -O3: the code is the one the
# user gets, the constants are only data. Prints the file's size and the
# workspace. $CFLAGS and $LDFLAGS are added as nncc adds them.
set -eu
nncc=$1 model=$2 dir=$3 cc=$4 inc=$5 lib=$6
here=$(cd "$(dirname "$0")" && pwd)
name=$(basename "$model" .yaml)
rm -rf "$dir"
mkdir -p "$dir"
"$nncc" "$model" -o "$dir/ref.c" --prefix ref --inference-only --quiet
# shellcheck disable=SC2086
"$cc" -std=c11 -O2 ${CFLAGS:-} -I"$dir" -I"$inc" "$here/reference.c" "$dir/ref.c" ${LDFLAGS:-} -L"$lib" -Wl,-rpath,"$lib" -lnncc_rt -lm \
    -o "$dir/reference"
"$dir/reference" "$dir"
"$nncc" "$model" --standalone --weights "$dir/weights.h5" -o "$dir/sa.c" --prefix sa --quiet
sh "$here/scan.sh" "$dir/sa.c" "$dir/sa.h"
awk '/^static const float .*\] = \{$/ { sub(/ = \{$/, ";"); print; skip = 1; next }
     skip && /^\};$/ { skip = 0; next }
     !skip' "$dir/sa.c" > "$dir/sa_code.c"
for opt in -O2 -O3; do
    "$cc" -std=c99 $opt -Wall -Wextra -Werror -pedantic -c "$dir/sa_code.c" -o "$dir/sa_code.o"
done
arrays=$(grep -c '^static const float' "$dir/sa_code.c")
echo "standalone $name: sa.c $(($(wc -c < "$dir/sa.c") / 1000000)) MB, $arrays constant arrays; $(grep '^#define sa_WORKSPACE_BYTES' "$dir/sa.h" | sed 's/^#define //')"
