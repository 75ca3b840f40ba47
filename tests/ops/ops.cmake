# Per-op numerics: every model in tests/ops/models through nncc predict,
# evaluate, train (one SGD step), the initial weights of recurrent layers
# and check, against a float64 numpy
# reference of the Keras formulas and finite differences of it
# (run_ops.py). Included from tests/CMakeLists.txt.
add_test(NAME ops_numerics
         COMMAND ${NNCC_TEST_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/run_ops.py
                 $<TARGET_FILE:nncc> ${CMAKE_CURRENT_BINARY_DIR}/ops)
set_tests_properties(ops_numerics PROPERTIES TIMEOUT 900)  # ~120 builds; 300 s ran out on a loaded 2-core machine

# The comparison can fail: with the reference's gelu replaced by its tanh
# approximation (off by at most 5e-4), act_gelu must be reported as failing.
add_test(NAME ops_numerics_detects_wrong_reference
         COMMAND ${NNCC_TEST_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/run_ops.py
                 $<TARGET_FILE:nncc> ${CMAKE_CURRENT_BINARY_DIR}/ops_perturbed
                 --only "^act_gelu$" --perturb gelu)
set_tests_properties(ops_numerics_detects_wrong_reference PROPERTIES
                     PASS_REGULAR_EXPRESSION "FAIL  act_gelu +predict +max"
                     TIMEOUT 120)

# The same for the window geometry and for BatchNormalization's moving
# statistics: with the odd "same" padding cell put before instead of after,
# conv2d_same_s2_k3's predictions must fail; with the moving variance taken
# from the unbiased batch variance (n / (n - 1), only 1 + 6e-4 over the
# 40 x 7 x 6 values of a channel), bn_conv2d's moving statistics must fail.
add_test(NAME ops_numerics_detects_wrong_padding
         COMMAND ${NNCC_TEST_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/run_ops.py
                 $<TARGET_FILE:nncc> ${CMAKE_CURRENT_BINARY_DIR}/ops_perturbed
                 --only "^conv2d_same_s2_k3$" --perturb same_pad)
set_tests_properties(ops_numerics_detects_wrong_padding PROPERTIES
                     PASS_REGULAR_EXPRESSION "FAIL  conv2d_same_s2_k3 +predict +max"
                     TIMEOUT 120)
add_test(NAME ops_numerics_detects_wrong_moving_variance
         COMMAND ${NNCC_TEST_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/run_ops.py
                 $<TARGET_FILE:nncc> ${CMAKE_CURRENT_BINARY_DIR}/ops_perturbed
                 --only "^bn_conv2d$" --perturb bn_moving)
set_tests_properties(ops_numerics_detects_wrong_moving_variance PROPERTIES
                     PASS_REGULAR_EXPRESSION "FAIL  bn_conv2d +train moving stats"
                     TIMEOUT 120)

# Recurrent layers: each new check can fail. go_backwards: the reference's
# sequence flipped back to input order (Keras keeps the processing order);
# reset_after: the GRU with the other reset formula; hard_sigmoid: Keras 3's
# relu6(x + 3) / 6 for the recurrent activation; last_step:
# last_time_step_mse over every step; forget_bias: the init check expecting
# the opposite unit_forget_bias.
foreach(case
    "go_backwards|^rnn_simple_backwards_seq$|FAIL  rnn_simple_backwards_seq +predict +max"
    "reset_after|^gru_reset_before$|FAIL  gru_reset_before +train gradient"
    "hard_sigmoid|^lstm_hard_sigmoid$|FAIL  lstm_hard_sigmoid +predict +max"
    "last_step|^time_distributed_dense$|FAIL  time_distributed_dense +evaluate last_time_step_mse"
    "forget_bias|^lstm_no_forget_bias$|FAIL  lstm_no_forget_bias +init lstm")
  string(REPLACE "|" ";" parts "${case}")
  list(GET parts 0 perturb)
  list(GET parts 1 only)
  list(GET parts 2 expect)
  add_test(NAME ops_numerics_detects_wrong_${perturb}
           COMMAND ${NNCC_TEST_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/run_ops.py
                   $<TARGET_FILE:nncc> ${CMAKE_CURRENT_BINARY_DIR}/ops_perturbed
                   --only "${only}" --perturb ${perturb})
  set_tests_properties(ops_numerics_detects_wrong_${perturb} PROPERTIES
                       PASS_REGULAR_EXPRESSION "${expect}" TIMEOUT 120)
endforeach()
