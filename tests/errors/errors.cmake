# tests/errors/errors.cmake — the frontend's error messages (included from tests/CMakeLists.txt).
# frontend_errors: every malformed model in tests/errors/ run through
# `nncc summary` and `nncc -o`, its first stderr line, quoted line, caret and
# hint compared with tests/errors/expected.txt, plus generated fuzz inputs
# (binary, 2 MB of nested lists, ...). Runs from the repository root, so the
# paths in the messages are the table's.
add_test(NAME frontend_errors
         COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/run.sh $<TARGET_FILE:nncc> ${CMAKE_SOURCE_DIR}
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(frontend_errors PROPERTIES TIMEOUT 600)
