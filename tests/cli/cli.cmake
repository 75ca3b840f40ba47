# tests/cli/cli.cmake — nncc's command line (included from tests/CMakeLists.txt).
# cli: --version, --help, summary against fashion_mlp.summary.txt, compiling
# (gcc and clang -Werror, the header checked by api_check.c), --prefix,
# --max-batch, --emit-ir, --report, then train/predict/evaluate/check of
# tiny_mlp.yaml on NumPy data the script makes (Debian's python3 + numpy,
# h5py). The programs nncc builds link the runtime, so it is built first.
add_test(NAME cli
         COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/run.sh $<TARGET_FILE:nncc> ${CMAKE_SOURCE_DIR}
         WORKING_DIRECTORY ${CMAKE_SOURCE_DIR})
set_tests_properties(cli PROPERTIES TIMEOUT 900)
