# tests/hostile/hostile.cmake — input that tries to become code (issue 13:
# D1, D2, D6, D12, D20; included from tests/CMakeLists.txt).
# hostile_strings: hostile strings in every field that reaches generated C,
# which must be refused or compile under -std=c11 -Wall -Wextra -Werror
# -Wtrigraphs with no injected code (hostile.py says how it checks).
# injection_reproducers: the audit's path and trigraph injections, built
# and run, leave no PWNED file. Python's standard library only.
add_test(NAME hostile_strings
         COMMAND ${NNCC_TEST_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/hostile.py $<TARGET_FILE:nncc> ${CMAKE_C_COMPILER}
                 ${CMAKE_SOURCE_DIR}/runtime ${CMAKE_CURRENT_BINARY_DIR}/hostile)
set_tests_properties(hostile_strings PROPERTIES TIMEOUT 900)
add_test(NAME injection_reproducers
         COMMAND ${NNCC_TEST_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/injection.py $<TARGET_FILE:nncc>
                 ${CMAKE_CURRENT_BINARY_DIR}/injection)
set_tests_properties(injection_reproducers PROPERTIES TIMEOUT 900)
