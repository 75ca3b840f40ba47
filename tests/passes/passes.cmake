# tests/passes/passes.cmake — the compiler's passes (included from tests/CMakeLists.txt).
#
# nncc_report_test(NAME MODEL PASS_REGEX [FAIL_REGEX]): nncc MODEL --report
# must print PASS_REGEX (and not FAIL_REGEX): what a pass says it did.
function(nncc_report_test name model pass)
  add_test(NAME ${name} COMMAND $<TARGET_FILE:nncc> ${model} -o ${CMAKE_CURRENT_BINARY_DIR}/${name}/${name}.c --report)
  file(MAKE_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/${name})
  set_tests_properties(${name} PROPERTIES PASS_REGULAR_EXPRESSION "${pass}")
  if(ARGC GREATER 3)
    set_tests_properties(${name} PROPERTIES FAIL_REGULAR_EXPRESSION "${ARGV3}")
  endif()
endfunction()

# pass_fold_bn: fold_bn_ir.sh reads --emit-ir and --report of fold_bn.yaml
# (every case the pass folds) and of fashion_mlp_bn.yaml (a BatchNormalization
# after Flatten, which it must keep), with and without --no-fold and
# --no-fuse. test_fold_bn.c runs folded builds against --no-fold builds on
# trained and redrawn statistics.
add_test(NAME fold_bn_ir
         COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/fold_bn_ir.sh $<TARGET_FILE:nncc> ${CMAKE_SOURCE_DIR}
                 ${CMAKE_CURRENT_BINARY_DIR}/fold_bn_ir)
set_tests_properties(fold_bn_ir PROPERTIES PASS_REGULAR_EXPRESSION "fold_bn_ir: ok")

# nncc_generate_pairs(VAR FLAG "prefix|model.yaml"...): each model compiled
# twice, as PREFIX (nncc's defaults) and PREFIX_ref (with FLAG); VAR gets the
# sources.
function(nncc_generate_pairs var flag)
  set(srcs)
  foreach(pair ${ARGN})
    string(REPLACE "|" ";" parts "${pair}")
    list(GET parts 0 prefix)
    list(GET parts 1 yaml)
    nncc_generate(src ${yaml} ${prefix})
    list(APPEND srcs ${src})
    nncc_generate(src ${yaml} ${prefix}_ref ${flag})
    list(APPEND srcs ${src})
  endforeach()
  set(${var} ${srcs} PARENT_SCOPE)
endfunction()

nncc_generate_pairs(fold_srcs --no-fold
  "fold_bn|${CMAKE_CURRENT_LIST_DIR}/fold_bn.yaml"
  "fold_mlp_bn|${CMAKE_SOURCE_DIR}/models/fashion_mlp_bn.yaml"
  "fold_resnet_small|${CMAKE_SOURCE_DIR}/models/resnet_small.yaml")
nncc_test_program(test_fold_bn ${CMAKE_CURRENT_LIST_DIR}/test_fold_bn.c ${fold_srcs})
add_test(NAME fold_bn_numerics COMMAND test_fold_bn)

# pass_fuse's epilogues: the bias and relu of fashion_cnn's convolutions and
# Dense layers run inside their GEMM's epilogue, and not with --no-fuse.
add_test(NAME fuse_epilogue
         COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/epilogue.sh $<TARGET_FILE:nncc> ${CMAKE_SOURCE_DIR}
                 ${CMAKE_CURRENT_BINARY_DIR}/epilogue)
set_tests_properties(fuse_epilogue PROPERTIES PASS_REGULAR_EXPRESSION "epilogue: ok")

# pass_cse: cse.yaml's repeated Flatten and tanh are computed once in both
# graphs (--report), and nncc check finds the merged build equal to the
# --no-fuse one and its gradients equal to finite differences.
file(MAKE_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/cse)
nncc_report_test(cse_report ${CMAKE_CURRENT_LIST_DIR}/cse.yaml
  "cse \\(infer graph\\): flat_b is flat_a.*act_b is act_a.*cse \\(train graph\\): flat_b is flat_a.*act_b is act_a")
add_test(NAME cse_check COMMAND $<TARGET_FILE:nncc> check ${CMAKE_CURRENT_LIST_DIR}/cse.yaml
         --out ${CMAKE_CURRENT_BINARY_DIR}/cse/check --quiet)
set_tests_properties(cse_check PROPERTIES PASS_REGULAR_EXPRESSION "fused vs unfused: .*: ok.*gradient check: .*: ok")

# pass_fuse in training: BN_GRAD (a BatchNormalization's backward through its
# activation, with its gamma and beta gradients, in one kernel), max pooling's
# gradient through relu, and the other training fusions give the --no-fuse build's loss, gradients and weights
# after training steps bit for bit (test_fuse_train.c); fuse_bn_grad_report
# checks which backward passes --report lists as fused.
nncc_generate_pairs(fuse_srcs --no-fuse
  "fuse_bn|${CMAKE_CURRENT_LIST_DIR}/fold_bn.yaml"
  "fuse_mlp_bn|${CMAKE_SOURCE_DIR}/models/fashion_mlp_bn.yaml"
  "fuse_acts|${CMAKE_CURRENT_LIST_DIR}/bn_acts.yaml"
  "fuse_resnet_small|${CMAKE_SOURCE_DIR}/models/resnet_small.yaml"
  "fuse_pool_relu|${CMAKE_CURRENT_LIST_DIR}/pool_relu.yaml"
  "fuse_sgd_momentum|${CMAKE_CURRENT_LIST_DIR}/sgd_momentum.yaml")
nncc_test_program(test_fuse_train ${CMAKE_CURRENT_LIST_DIR}/test_fuse_train.c ${fuse_srcs})
add_test(NAME fuse_train_bits COMMAND test_fuse_train)
set_tests_properties(fuse_train_bits PROPERTIES PASS_REGULAR_EXPRESSION "fused training matches unfused bit for bit")
nncc_report_test(fuse_bn_grad_report ${CMAKE_CURRENT_LIST_DIR}/bn_acts.yaml
  "d_bn_shared_gamma and d_bn_shared_beta, in two passes.*d_d5 = backward of bn5,.*relu\\(bn4\\), with d_bn4_beta,.*sigmoid\\(bn3\\), with d_bn3_gamma,.*leaky_relu\\(bn2\\).*selu\\(bn1\\)")
nncc_report_test(fuse_pool_relu_report ${CMAKE_CURRENT_LIST_DIR}/pool_relu.yaml
  "d_c2 = max pooling's gradient through relu\\(r2\\).*d_c1_z = max pooling's gradient through relu\\(c1\\)"
  "gradient through [a-z_]*\\(c3\\)")

# pass_fuse_sgd: with plain SGD each Dense kernel's step is taken in its
# gradient's GEMM (--report lists the three of fashion_mlp), with momentum
# its velocity (sgd_momentum.yaml, not for the regularized d2);
# test_fuse_train checks the numbers, a two-chunk step and a frozen kernel.
nncc_report_test(fuse_sgd_report ${CMAKE_SOURCE_DIR}/models/fashion_mlp.yaml
  "dense/kernel -= lr \\* x\\^T dy, in its gradient's GEMM.*dense_1/kernel -= lr.*dense_2/kernel -= lr")
nncc_report_test(fuse_sgd_momentum_report ${CMAKE_CURRENT_LIST_DIR}/sgd_momentum.yaml
  "d1/kernel's velocity v = momentum \\* v - lr \\* x\\^T dy, in its gradient's GEMM"
  "d2/kernel[^\n]*GEMM")
