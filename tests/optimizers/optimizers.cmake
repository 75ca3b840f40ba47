# Optimizers: every configuration in tests/optimizers/configs (the same
# 4 -> Dense 3 -> Dense 2 mse model, one optimizer setting each) compiled by
# nncc and trained 10 steps from w0.h5 on one fixed batch; after every step
# each weight tensor must match make_refs.py's float64 reference of the Keras
# formulas to 1e-6 relative, and a model saved after step 5 and loaded into a
# fresh model must continue bit-identically (test_optimizer.c). The file
# saved after step 5 must hold the optimizer state as tf.keras <= 2.10 names
# and computes it (check_state.py). Included from tests/CMakeLists.txt.
set(NNCC_OPTIMIZER_CONFIGS
    sgd sgd_momentum sgd_nesterov
    sgd_clipvalue sgd_clipnorm sgd_global_clipnorm
    sgd_clipvalue_clipnorm sgd_clipvalue_global_clipnorm
    sgd_exponential_decay sgd_momentum_piecewise
    adagrad adagrad_args
    rmsprop rmsprop_args rmsprop_momentum rmsprop_centered rmsprop_centered_momentum
    adam adam_args adam_amsgrad
    adam_clipvalue adam_clipnorm adam_global_clipnorm
    adam_exponential_decay_staircase adam_piecewise
    nadam nadam_args
    adamax adamax_args
    adamw adamw_args adamw_exponential_decay)

set(opt_dir ${CMAKE_CURRENT_LIST_DIR})
set(opt_tmp ${CMAKE_CURRENT_BINARY_DIR}/optimizers)
file(MAKE_DIRECTORY ${opt_tmp})
foreach(cfg IN LISTS NNCC_OPTIMIZER_CONFIGS)
  set(prefix opt_${cfg})
  nncc_generate(src ${opt_dir}/configs/${cfg}.yaml ${prefix})
  nncc_test_program(test_${prefix} ${opt_dir}/test_optimizer.c ${src})
  target_compile_definitions(test_${prefix} PRIVATE PREFIX=${prefix} HEADER=${prefix}.h)
  add_test(NAME ${prefix} COMMAND test_${prefix} ${opt_dir}/refs/${cfg} ${opt_dir} ${opt_tmp})
  add_test(NAME ${prefix}_saved_state
           COMMAND ${NNCC_TEST_PYTHON} ${opt_dir}/check_state.py ${opt_tmp}/${prefix}_step5.h5 ${opt_dir}/refs/${cfg})
  set_tests_properties(${prefix}_saved_state PROPERTIES DEPENDS ${prefix})  # reads the file it saves
endforeach()

# The comparison can fail: Adam's program against AdamW's reference, which
# differs only by the decoupled decay lr * 0.004 * w per step (about 2e-6 of
# a weight per step), must be reported as failing.
add_test(NAME opt_detects_wrong_reference
         COMMAND test_opt_adam ${opt_dir}/refs/adamw ${opt_dir} ${opt_tmp}/wrong_reference)
file(MAKE_DIRECTORY ${opt_tmp}/wrong_reference)
set_tests_properties(opt_detects_wrong_reference PROPERTIES PASS_REGULAR_EXPRESSION "step 10 .* FAILED")
