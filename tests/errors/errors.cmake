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

# frontend_aliases: anchors and aliases within the budget still work — a
# model written with them compiles to the same C as the model written out.
add_test(NAME frontend_aliases
         COMMAND sh -c "d=${CMAKE_CURRENT_BINARY_DIR}/frontend_aliases && rm -rf $d && mkdir -p $d/a $d/b && \
$0 tests/models/aliases.yaml -o $d/a/out.c && $0 tests/models/aliases_expanded.yaml -o $d/b/out.c && \
for f in out.c out.h; do sed s/aliases_expanded/aliases/g $d/b/$f | diff - $d/a/$f || exit 1; done" $<TARGET_FILE:nncc>
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
