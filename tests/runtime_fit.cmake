# fit.c, history.c and main.c of libnncc_rt: the fit loop, history files and
# the driver commands, through a hand-written NnrtModel (a linear softmax
# classifier) on synthetic .npy data. Included from tests/CMakeLists.txt.
add_executable(test_runtime_fit ${CMAKE_CURRENT_LIST_DIR}/test_runtime_fit.c)
target_link_libraries(test_runtime_fit PRIVATE nncc_rt_static
                      ${HDF5_C_LIBRARIES} ${OPENBLAS_LIB} ZLIB::ZLIB m)
add_test(NAME runtime_fit COMMAND test_runtime_fit)
