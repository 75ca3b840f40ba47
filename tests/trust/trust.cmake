# tests/trust/trust.cmake — files from elsewhere (issue 13, docs/security.md).
# h5guard: runtime/h5guard.c alone (the child process, its time limit, the
# superblock pre-checks) on the CLI test model's file. trust_h5: the weights
# path from the command line (tests/trust/h5.sh): damaged files, NaN weights,
# checksums, stale temporaries, weights of another model.
add_executable(test_h5guard ${CMAKE_CURRENT_LIST_DIR}/test_h5guard.c)
target_include_directories(test_h5guard PRIVATE ${HDF5_INCLUDE_DIRS})
target_compile_definitions(test_h5guard PRIVATE ${HDF5_DEFINITIONS})
target_link_libraries(test_h5guard PRIVATE nncc_rt_static ${HDF5_C_LIBRARIES} ${OPENBLAS_LIB} ZLIB::ZLIB m)
add_test(NAME h5guard
         COMMAND test_h5guard ${CMAKE_CURRENT_LIST_DIR}/libhdf5_segv.h5 ${CMAKE_CURRENT_BINARY_DIR})
add_test(NAME trust_h5
         COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/h5.sh $<TARGET_FILE:nncc> ${CMAKE_SOURCE_DIR})
set_tests_properties(trust_h5 PROPERTIES TIMEOUT 600)
