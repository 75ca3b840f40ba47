# rnn.c of libnncc_rt: SimpleRNN, LSTM and GRU forward against a naive
# per-sample, per-step reference in double, backpropagation through time
# against finite differences. Included from tests/CMakeLists.txt.
# `test_runtime_rnn --bench` times an LSTM (B 32, T 50, input 1, units 20).
add_executable(test_runtime_rnn ${CMAKE_CURRENT_LIST_DIR}/test_runtime_rnn.c)
target_link_libraries(test_runtime_rnn PRIVATE nncc_rt_static
                      ${OPENBLAS_LIB} ${HDF5_C_LIBRARIES} ZLIB::ZLIB m)
add_test(NAME runtime_rnn COMMAND test_runtime_rnn)
