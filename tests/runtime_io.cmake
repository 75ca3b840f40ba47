# tests/runtime_io.cmake — the runtime's file I/O (runtime/h5.c, runtime/data.c).
# runtime_io: test_runtime_io saves a Keras-layout .h5 and loads it back,
# plus .npy and Fashion-MNIST IDX files. runtime_io_keras: the same, and
# loads real Keras files and damaged ones from the outside test files
# (${KERAS_H5_DIR}, tests/CMakeLists.txt); skipped when they are absent.
# h5_layout: the file runtime_io saved, compared by h5py with a real
# tf.keras 2.4 file from tests/data (attribute kinds, dataset paths); needs
# runtime_io first.

set(NNCC_FASHION_MNIST_DIR /usr/share/datasets/fashion-mnist CACHE PATH
    "Fashion-MNIST IDX files (Debian package dataset-fashion-mnist)")
find_program(NNCC_H5PY_PYTHON python3 PATHS /usr/bin NO_DEFAULT_PATH
             DOC "A python3 with h5py and numpy (Debian's)")

add_executable(test_runtime_io ${CMAKE_CURRENT_LIST_DIR}/test_runtime_io.c)
target_include_directories(test_runtime_io PRIVATE ${HDF5_INCLUDE_DIRS})
target_compile_definitions(test_runtime_io PRIVATE ${HDF5_DEFINITIONS})
target_link_libraries(test_runtime_io PRIVATE nncc_rt_static ${HDF5_C_LIBRARIES} ${OPENBLAS_LIB} ZLIB::ZLIB m)

set(NNCC_RUNTIME_IO_H5 ${CMAKE_CURRENT_BINARY_DIR}/runtime_io_roundtrip.h5)
add_test(NAME runtime_io
         COMMAND test_runtime_io - ${NNCC_RUNTIME_IO_H5} ${NNCC_FASHION_MNIST_DIR})
set_tests_properties(runtime_io PROPERTIES FIXTURES_SETUP runtime_io_h5)
nncc_outside_test(runtime_io_keras NEEDS ${KERAS_H5_DIR}
  COMMAND $<TARGET_FILE:test_runtime_io> ${KERAS_H5_DIR} ${CMAKE_CURRENT_BINARY_DIR}/runtime_io_keras.h5
          ${NNCC_FASHION_MNIST_DIR})

add_test(NAME h5_layout
         COMMAND ${NNCC_H5PY_PYTHON} ${CMAKE_CURRENT_LIST_DIR}/check_h5_layout.py
                 ${NNCC_RUNTIME_IO_H5} ${NNCC_TEST_DATA_DIR}/keras_h5/cnn_resnet8_cifar10_k2.4.0.h5)
set_tests_properties(h5_layout PROPERTIES FIXTURES_REQUIRED runtime_io_h5)
