# tests/trust/caps/caps.cmake — what an untrusted model or data file may make
# nncc build or allocate (issue 13: D11, D13, D14, D16). Included from
# tests/CMakeLists.txt.
# trust_caps: the --max-* caps (each refusing with the option's name, quickly
# and under ulimit -v, and a raised cap letting a small model through), sizes
# beyond the generated C's int, .npy headers through predict (file and pipe),
# NaN/Inf inputs to predict and evaluate and --allow-nonfinite. Needs
# /usr/bin/python3 with numpy; builds programs, so the runtime comes first.
add_test(NAME trust_caps
         COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/run.sh $<TARGET_FILE:nncc> ${CMAKE_SOURCE_DIR}
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(trust_caps PROPERTIES TIMEOUT 600)
# trust_data_headers: nnrt_npy_load and nnrt_idx_load on headers declaring more
# than the file holds, and nnrt_hdf5_load on a dataset patched to run past its
# file, under a 512 MiB address-space limit.
add_executable(test_data_headers ${CMAKE_CURRENT_LIST_DIR}/test_data_headers.c)
target_link_libraries(test_data_headers PRIVATE nncc_rt_static
                      ${HDF5_C_LIBRARIES} ${OPENBLAS_LIB} ZLIB::ZLIB m)
target_include_directories(test_data_headers PRIVATE ${HDF5_INCLUDE_DIRS})
add_test(NAME trust_data_headers COMMAND test_data_headers)
