#!/bin/sh
# fold_bn_ir.sh NNCC SOURCE_DIR DIR — pass_fold_bn as --emit-ir and --report show it.
#
# fold_bn.yaml has six BatchNormalizations, each right after a Conv or Dense
# (with and without bias, gamma, beta; one whose bias add has another
# reader): in the inference graph every one is folded (no bn_infer; one
# bn_fold and one scale_shift each, three of them with their activation
# merged), and the bias add the Add still reads stays; the training graph
# keeps its batch statistics (bn_stats, bn_apply, bn_moving for all six).
# --no-fold and --no-fuse keep all six bn_infer. fashion_mlp_bn.yaml's first
# BatchNormalization follows Flatten, not a Conv or Dense: it stays.
# Prints each failed expectation, then "fold_bn_ir: ok" or exits 1.
set -eu
nncc=$1 src=$2 dir=$3
mkdir -p "$dir"
fail=0

# count GRAPH OP FILE: nodes of op OP in graph GRAPH ("infer" or "train") of an --emit-ir dump
count() {
    awk -v g="$1" -v op="$2" '/^graph / { cur = $2 } cur == g && index($0, " = " op "(") { n++ } END { print n + 0 }' "$3"
}
expect() {  # expect WHAT GRAPH OP FILE N
    got=$(count "$2" "$3" "$4")
    if [ "$got" != "$5" ]; then
        echo "fold_bn_ir: $1: $got $3 node(s) in the $2 graph, expected $5"
        fail=1
    fi
}
has() {  # has WHAT FILE PATTERN: a line of FILE matches the extended regex PATTERN
    if ! grep -Eq -- "$3" "$2"; then
        echo "fold_bn_ir: $1: no line matches: $3"
        fail=1
    fi
}

yaml=$src/tests/passes/fold_bn.yaml
"$nncc" "$yaml" -o "$dir/fold_bn.c" --emit-ir --report > "$dir/folded.txt"
f=$dir/folded.txt
expect folded infer bn_infer "$f" 0
expect folded infer bn_fold "$f" 6
expect folded infer scale_shift "$f" 6
expect folded infer activation "$f" 0
expect "folded (c3's bias add read by add3)" infer bias_add "$f" 1
expect folded train bn_stats "$f" 6
expect folded train bn_apply "$f" 6
expect folded train bn_moving "$f" 6
expect folded train bn_fold "$f" 0
expect folded train scale_shift "$f" 0
has "bias folded" "$f" '^fold_bn \(infer graph\): bn1 into c1 \(kernel 3x3x2x4, bias 4\): bn1 = c1_conv \* scale \+ shift, 4 channels$'
has "no bias" "$f" '^fold_bn \(infer graph\): bn2 into c2 \(kernel 3x3x4x5, no bias\)'
has "Conv1D" "$f" '^fold_bn \(infer graph\): bn4 into s1 \(kernel 3x3x3, bias 3\)'
has "Dense, use_bias false" "$f" '^fold_bn \(infer graph\): bn5 into d1 \(kernel 69x6, no bias\)'
has "Dense with a bias" "$f" '^fold_bn \(infer graph\): bn6 into d2 \(kernel 6x4, bias 4\)'
has "relu merged" "$f" '^  %[0-9]+ relu1 = scale_shift\(%[0-9]+, %[0-9]+\) \(B,8,8,4\) relu @'
has "elu merged" "$f" '^  %[0-9]+ elu2 = scale_shift\(.*\) elu alpha=1 @'
has "the fold reads mean, var, gamma, beta, bias" "$f" '^  %[0-9]+ bn1_fold = bn_fold\(%[0-9]+, %[0-9]+, %[0-9]+, %[0-9]+, %[0-9]+\) \(2,4\) eps=0.001 bias @'
has "no gamma and no beta" "$f" '^  %[0-9]+ bn6_fold = bn_fold\(%[0-9]+, %[0-9]+, %[0-9]+\) \(2,4\) eps=0.001 bias @'

for flag in --no-fold --no-fuse; do
    "$nncc" "$yaml" -o "$dir/fold_bn_ref.c" --emit-ir --report $flag > "$dir/ref.txt"
    expect "$flag" infer bn_infer "$dir/ref.txt" 6
    expect "$flag" infer bn_fold "$dir/ref.txt" 0
    if grep -q '^fold_bn' "$dir/ref.txt"; then
        echo "fold_bn_ir: $flag: the pass still reported a fold"
        fail=1
    fi
done

"$nncc" "$src/models/fashion_mlp_bn.yaml" -o "$dir/fashion_mlp_bn.c" --emit-ir > "$dir/mlp.txt"
expect "fashion_mlp_bn (BN after Flatten)" infer bn_infer "$dir/mlp.txt" 1
expect "fashion_mlp_bn" infer bn_fold "$dir/mlp.txt" 2
has "fashion_mlp_bn keeps the input BatchNormalization" "$dir/mlp.txt" '^  %[0-9]+ batch_normalization = bn_infer\('

[ "$fail" = 0 ] || exit 1
echo "fold_bn_ir: ok"
