# Per-op numerics: every model in tests/ops/models through nncc predict,
# evaluate, train (one SGD step) and check, against a float64 numpy
# reference of the Keras formulas and finite differences of it
# (run_ops.py). Included from tests/CMakeLists.txt.
add_test(NAME ops_numerics
         COMMAND ${NNCC_TEST_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/run_ops.py
                 $<TARGET_FILE:nncc> ${CMAKE_CURRENT_BINARY_DIR}/ops)
set_tests_properties(ops_numerics PROPERTIES TIMEOUT 300)

# The comparison can fail: with the reference's gelu replaced by its tanh
# approximation (off by at most 5e-4), act_gelu must be reported as failing.
add_test(NAME ops_numerics_detects_wrong_reference
         COMMAND ${NNCC_TEST_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/run_ops.py
                 $<TARGET_FILE:nncc> ${CMAKE_CURRENT_BINARY_DIR}/ops_perturbed
                 --only "^act_gelu$" --perturb gelu)
set_tests_properties(ops_numerics_detects_wrong_reference PROPERTIES
                     PASS_REGULAR_EXPRESSION "FAIL  act_gelu +predict +max"
                     TIMEOUT 120)
