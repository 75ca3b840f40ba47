# rng.c, init.c, kernels.c of libnncc_rt: forward kernels against naive
# double references, gradients against finite differences, initializer
# statistics, rng determinism. Included from tests/CMakeLists.txt.
add_executable(test_runtime_kernels ${CMAKE_CURRENT_LIST_DIR}/test_runtime_kernels.c)
target_link_libraries(test_runtime_kernels PRIVATE nncc_rt_static
                      ${OPENBLAS_LIB} ${HDF5_C_LIBRARIES} ZLIB::ZLIB m)
add_test(NAME runtime_kernels COMMAND test_runtime_kernels)
