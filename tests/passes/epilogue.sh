#!/bin/sh
# epilogue.sh NNCC SOURCE_DIR DIR — bias and activation in the GEMM's epilogue.
#
# fashion_cnn.yaml: every Conv2D's bias and relu, and every Dense's, move
# into the epilogue of the GEMM that produces their input (--report says
# so), so the generated C hands each convolution its epilogue function
# (nnrt_conv_forward_epilogue), and applies each Dense's right after its
# GEMM: at the default batch (32 rows, one cache-sized block) as the next
# call, and with --max-batch 2048 inside the GEMM's loop over row blocks. resnet_small.yaml: each residual unit's Add and its relu
# become one loop (relu_add_forward). --no-fuse keeps all of them apart.
# The numbers are checked by check_fused_matches_unfused and the model tests.
set -eu
nncc=$1 src=$2 dir=$3
mkdir -p "$dir"
fail=0
"$nncc" "$src/models/fashion_cnn.yaml" -o "$dir/fused.c" --report > "$dir/report.txt"
"$nncc" "$src/models/fashion_cnn.yaml" -o "$dir/unfused.c" --no-fuse
n=$(grep -c '^epilogue (infer graph): conv2d[_0-9]* = relu' "$dir/report.txt" || true)
[ "$n" = 5 ] || { echo "epilogue: $n convolutions of the inference graph report an epilogue, expected 5"; fail=1; }
n=$(grep -c 'nnrt_conv_forward_epilogue(' "$dir/fused.c" || true)
[ "$n" = 10 ] || { echo "epilogue: $n conv calls with an epilogue (inference and training), expected 10"; fail=1; }
# the Dense's relu follows its GEMM at once; with 2048 rows, inside the GEMM's row loop
if ! grep -A1 'nnrt_gemm(0, 0, B, 128, 2304' "$dir/fused.c" | grep -q 'relu_bias_forward(dense, dense_xw'; then
    echo "epilogue: dense's relu_bias_forward does not follow its GEMM"
    fail=1
fi
"$nncc" "$src/models/fashion_cnn.yaml" -o "$dir/big.c" --max-batch 2048
if ! grep -A1 'nnrt_gemm(0, 0, blk_rows, 128, 2304' "$dir/big.c" | grep -q 'relu_bias_forward(dense + (size_t)blk \* 128'; then
    echo "epilogue: with 2048 rows, dense's relu_bias_forward is not inside its GEMM's row loop"
    fail=1
fi
if grep -q 'nnrt_conv_forward_epilogue\|blk_rows' "$dir/unfused.c"; then
    echo "epilogue: --no-fuse code has an epilogue"
    fail=1
fi
"$nncc" "$src/models/resnet_small.yaml" -o "$dir/resnet.c" --report > "$dir/resnet_report.txt"
"$nncc" "$src/models/resnet_small.yaml" -o "$dir/resnet_unfused.c" --no-fuse
n=$(grep -c 'relu_add_forward(residual_unit[_0-9]*_activation_1, ' "$dir/resnet.c" || true)
[ "$n" -ge 4 ] || { echo "epilogue: $n residual Add + relu loops in resnet_small's code, expected at least 4"; fail=1; }
if grep -q 'relu_add_forward' "$dir/resnet_unfused.c"; then
    echo "epilogue: --no-fuse code fuses Add and relu"
    fail=1
fi
[ "$fail" = 0 ] && echo "epilogue: ok"
exit $fail
