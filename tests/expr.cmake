# The expression engine of custom functions (compiler/expr.c): values
# against C references, derivatives against finite differences, the exact C
# of some, and malformed expressions with their message and column
# (test_expr.c). Then the emitted C of every case, with the variables
# renamed through the caller's name map, compiled with -Werror and compared
# in float with the double values (expr_emitted). Included from
# tests/CMakeLists.txt.
add_executable(test_expr ${CMAKE_CURRENT_LIST_DIR}/test_expr.c ${CMAKE_CURRENT_LIST_DIR}/../compiler/expr.c
               ${CMAKE_CURRENT_LIST_DIR}/../compiler/diag.c ${CMAKE_CURRENT_LIST_DIR}/../ir/arena.c
               ${CMAKE_CURRENT_LIST_DIR}/../ir/cquote.c)
target_include_directories(test_expr PRIVATE ${CMAKE_CURRENT_LIST_DIR}/../compiler ${CMAKE_CURRENT_LIST_DIR}/../ir)
target_link_libraries(test_expr PRIVATE m)
add_test(NAME expr COMMAND test_expr)

set(expr_emitted ${CMAKE_CURRENT_BINARY_DIR}/gen/expr_emitted.c)
add_custom_command(OUTPUT ${expr_emitted}
  COMMAND ${CMAKE_COMMAND} -E make_directory ${CMAKE_CURRENT_BINARY_DIR}/gen
  COMMAND test_expr --emit ${expr_emitted}
  DEPENDS test_expr VERBATIM)
set_source_files_properties(${expr_emitted} PROPERTIES COMPILE_OPTIONS "-Werror;-Wall;-Wextra")
add_executable(test_expr_emitted ${expr_emitted})
target_link_libraries(test_expr_emitted PRIVATE m)
add_test(NAME expr_emitted COMMAND test_expr_emitted)
