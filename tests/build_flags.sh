#!/bin/sh
# build_flags.sh NNCC WORK_DIR [SANITIZE_FLAGS]
#
# The programs nncc builds honour $CFLAGS and $LDFLAGS (compiler/build.c):
# a header forced in through $CFLAGS stops the build, so $CFLAGS reaches the
# compiler; a link map asked for through $LDFLAGS is written, so $LDFLAGS
# reaches the linker; $CFLAGS comes after nncc's own flags (-O0 after -O2)
# in the command kept in NAME.cmd; the same command again does not rebuild
# and another one does. SANITIZE_FLAGS: those of a -DNNCC_SANITIZE build,
# which must be in the command when $CFLAGS names no -fsanitize=, and absent
# otherwise.
set -eu
nncc=$1 work=$2 sanitize=${3:-}
rm -rf "$work"
mkdir -p "$work"
fail() { echo "build_flags: $*" >&2; exit 1; }
cat > "$work/probe.yaml" <<'YAML'
name: flags_probe
inputs:
  - {name: x, shape: [4]}
layers:
  - Dense: {units: 3, activation: softmax}
compile:
  loss: sparse_categorical_crossentropy
  optimizer: SGD
YAML
echo '#error "CFLAGS reached the compiler"' > "$work/probe.h"
cmd=$work/out/flags_probe.cmd
check() {  # check LOG: nncc check of the probe model, stderr to LOG
    "$nncc" check "$work/probe.yaml" --out "$work/out" >/dev/null 2>"$1"
}

# nncc's own flags (and, sanitized, the sanitizer's), nothing else
env -u CFLAGS -u LDFLAGS "$nncc" check "$work/probe.yaml" --out "$work/out" >/dev/null 2>"$work/plain.err" ||
    fail "nncc check failed with no \$CFLAGS: $(cat "$work/plain.err")"
[ -s "$cmd" ] || fail "no $cmd"
if [ -n "$sanitize" ]; then
    grep -qF -- "$sanitize" "$cmd" || fail "a sanitized nncc built without '$sanitize': $(cat "$cmd")"
else
    ! grep -q -- -fsanitize "$cmd" || fail "an unsanitized nncc built with -fsanitize: $(cat "$cmd")"
fi
env -u CFLAGS -u LDFLAGS "$nncc" check "$work/probe.yaml" --out "$work/out" >/dev/null 2>"$work/again.err" ||
    fail "nncc check failed the second time"
! grep -q "nncc: building" "$work/again.err" || fail "the same command rebuilt the program"

# $CFLAGS reaches the compiler: the forced header stops the build (exit 2)
status=0
CFLAGS="-include $work/probe.h" check "$work/include.err" || status=$?
[ "$status" = 2 ] && grep -q "CFLAGS reached the compiler" "$work/include.err" ||
    fail "CFLAGS='-include probe.h' did not reach the compiler (exit $status): $(tail -n 3 "$work/include.err")"

# $CFLAGS after nncc's flags, $LDFLAGS at the link, and a new command rebuilds
CFLAGS=-O0 LDFLAGS="-Wl,-Map,$work/link.map" check "$work/flags.err" ||
    fail "nncc check failed with CFLAGS=-O0: $(cat "$work/flags.err")"
grep -q "nncc: building" "$work/flags.err" || fail "new flags did not rebuild the program"
[ -s "$work/link.map" ] || fail "LDFLAGS=-Wl,-Map,... did not reach the linker"
grep -q -- "-O2 .* -O0 .*flags_probe.c" "$cmd" || fail "CFLAGS is not after nncc's -O2 and before the sources: $(cat "$cmd")"
if [ -n "$sanitize" ]; then
    grep -qF -- "$sanitize" "$cmd" || fail "CFLAGS=-O0 dropped the sanitizer flags: $(cat "$cmd")"
fi
echo "build_flags: \$CFLAGS and \$LDFLAGS reach the compiler and the linker, after nncc's flags"
