# conv.c and norm.c of libnncc_rt: convolution and pooling against naive
# double loops on Keras shapes, backward passes and batch norm against
# finite differences. Included from tests/CMakeLists.txt.
# `test_runtime_conv --bench` times a Fashion-CNN-sized convolution.
add_executable(test_runtime_conv ${CMAKE_CURRENT_LIST_DIR}/test_runtime_conv.c)
target_link_libraries(test_runtime_conv PRIVATE nncc_rt_static
                      ${OPENBLAS_LIB} ${HDF5_C_LIBRARIES} ZLIB::ZLIB m)
add_test(NAME runtime_conv COMMAND test_runtime_conv)
