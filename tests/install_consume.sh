#!/bin/sh
# install_consume.sh BUILD_DIR SOURCE_DIR WORK_DIR
#
# Installs nncc from BUILD_DIR into a temporary prefix, moves the prefix (the
# package must be relocatable), then builds tests/consumer as an outside
# project twice: with find_package(nncc CONFIG) + nncc_add_model, and with
# pkg-config (nncc-runtime.pc) by hand; both programs must run. Then builds
# examples/ the same way and runs them: train_loop trains on 2000 images for
# 2 epochs and saves weights (test accuracy must pass 0.6), fashion_classify
# labels 1000 test images with those weights, embedded_classify (those
# weights compiled in with STANDALONE, libm only) labels the same images one
# at a time with the same accuracy, and tests/consumer's classify_standalone
# does the same through nncc_add_model STANDALONE and links no runtime.
set -eu
build=$1 src=$(cd "$2" && pwd) work=$3
rm -rf "$work"
mkdir -p "$work"
cmake --install "$build" --prefix "$work/installed" >/dev/null
mv "$work/installed" "$work/prefix"
prefix=$work/prefix
model=$src/models/fashion_mlp.yaml

# CMake package
cmake -S "$src/tests/consumer" -B "$work/cmake" -DCMAKE_PREFIX_PATH="$prefix" -DNNCC_TEST_MODEL="$model" >/dev/null
cmake --build "$work/cmake" >/dev/null
"$work/cmake/classify"

# pkg-config
mkdir -p "$work/pc"
"$prefix/bin/nncc" "$model" -o "$work/pc/mlp.c" --prefix mlp --max-batch 8 --inference-only --quiet
export PKG_CONFIG_PATH="$(dirname "$(find "$prefix" -name nncc-runtime.pc)")"
# shellcheck disable=SC2046
cc -std=c11 -Wall -Wextra -Werror ${CFLAGS:-} -I"$work/pc" "$src/tests/consumer/main.c" "$work/pc/mlp.c" \
    $(pkg-config --cflags --libs nncc-runtime) -o "$work/pc/classify"
"$work/pc/classify"

# examples/
cmake -S "$src/examples" -B "$work/examples" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/examples" >/dev/null
"$work/examples/train_loop" "$work/examples/weights.h5" 2000 2 | tee "$work/examples/train.txt"
awk '/^test loss/ { acc = $5 + 0 } END { if (acc < 0.6) { print "train_loop: accuracy " acc " < 0.6"; exit 1 } }' \
    "$work/examples/train.txt"
"$work/examples/fashion_classify" "$work/examples/weights.h5" 0 3
"$work/examples/fashion_classify" "$work/examples/weights.h5" 0 1000 | tee "$work/examples/runtime.txt"

# examples/embedded_classify: those weights compiled in as --standalone C; the
# same 1000 images, one at a time, must score exactly what the runtime build scores
cmake -S "$src/examples" -B "$work/examples" -DNNCC_EXAMPLE_WEIGHTS="$work/examples/weights.h5" >/dev/null
cmake --build "$work/examples" --target embedded_classify >/dev/null
if ldd "$work/examples/embedded_classify" | grep -q 'nncc_rt\|openblas\|hdf5'; then
    echo "install_consume: embedded_classify links a library beyond libm" >&2
    exit 1
fi
gzip -dc /usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz > "$work/examples/labels.idx"
gzip -dc /usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz |
    "$work/examples/embedded_classify" "$work/examples/labels.idx" 1000 | tee "$work/examples/embedded.txt"
if [ "$(tail -n 1 "$work/examples/runtime.txt" | cut -d' ' -f1-5)" != \
     "$(tail -n 1 "$work/examples/embedded.txt" | cut -d' ' -f1-5)" ]; then
    echo "install_consume: embedded_classify's accuracy differs from fashion_classify's" >&2
    exit 1
fi

# nncc_add_model STANDALONE: those weights compiled in, and no runtime library linked
cmake -S "$src/tests/consumer" -B "$work/standalone" -DCMAKE_PREFIX_PATH="$prefix" -DNNCC_TEST_MODEL="$model" \
    -DNNCC_TEST_WEIGHTS="$work/examples/weights.h5" >/dev/null
cmake --build "$work/standalone" --target classify_standalone >/dev/null
if ldd "$work/standalone/classify_standalone" | grep -q nncc_rt; then
    echo "install_consume: classify_standalone links libnncc_rt" >&2
    exit 1
fi
"$work/standalone/classify_standalone"
echo "install_consume: the CMake package and pkg-config both work"
