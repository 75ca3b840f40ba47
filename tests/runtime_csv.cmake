# The csv data format of libnncc_rt: data.c's CSV reader (split,
# standardize, gzip), its checks against a model in fit.c, and the driver's
# train/evaluate on a csv split, through a hand-written NnrtModel. Also reads
# sklearn's boston and diabetes files when python3-sklearn is installed;
# NNCC_REQUIRE_SKLEARN=1 in the environment makes their absence a failure.
# Included from tests/CMakeLists.txt.
add_executable(test_runtime_csv ${CMAKE_CURRENT_LIST_DIR}/test_runtime_csv.c)
target_link_libraries(test_runtime_csv PRIVATE nncc_rt_static
                      ${HDF5_C_LIBRARIES} ${OPENBLAS_LIB} ZLIB::ZLIB m)
add_test(NAME runtime_csv COMMAND test_runtime_csv)
