# tests/standalone/standalone.cmake — nncc --standalone (included from tests/CMakeLists.txt).
#
# standalone_<model>: every model in models/, the examples with custom
# functions, and the two zoos here that use every standalone kernel with the
# options the shipped models leave at their defaults, compiled with --standalone from weights the ordinary build
# wrote, built with -std=c99 -Wall -Wextra -Werror -pedantic (gcc, and clang
# when found) without the runtime library, and compared with the ordinary
# build's P_predict (run.sh; the max difference is printed). resnet34's 21M
# weights make a 300 MB P.c that takes gcc about two minutes and 4 GB, so
# standalone_resnet34 generates and scans it only (generate.sh); its
# kernels are resnet_small's. Models with a variable time axis compile at
# its maximum length, which the reference runs too.
find_program(NNCC_CLANG clang)
set(standalone_clang -)
if(NNCC_CLANG)
  set(standalone_clang ${NNCC_CLANG})
endif()
set(standalone_run sh ${CMAKE_CURRENT_LIST_DIR}/run.sh $<TARGET_FILE:nncc>)
set(standalone_tools ${CMAKE_C_COMPILER} ${CMAKE_SOURCE_DIR}/runtime $<TARGET_FILE_DIR:nncc_rt>)
file(GLOB standalone_models ${CMAKE_SOURCE_DIR}/models/*.yaml)
list(APPEND standalone_models ${CMAKE_CURRENT_LIST_DIR}/zoo_image.yaml ${CMAKE_CURRENT_LIST_DIR}/zoo_seq.yaml
     ${CMAKE_SOURCE_DIR}/models/examples/custom_functions.yaml ${CMAKE_SOURCE_DIR}/models/examples/last_time_step_mse.yaml)
foreach(model_file IN LISTS standalone_models)
  get_filename_component(model_name ${model_file} NAME_WE)
  set(dir ${CMAKE_CURRENT_BINARY_DIR}/standalone/${model_name})
  if(model_name STREQUAL "resnet34")
    add_test(NAME standalone_resnet34
             COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/generate.sh $<TARGET_FILE:nncc> ${model_file} ${dir} ${standalone_tools})
    set_tests_properties(standalone_resnet34 PROPERTIES TIMEOUT 600)
  else()
    add_test(NAME standalone_${model_name}
             COMMAND ${standalone_run} ${model_file} ${dir} ${standalone_tools} ${standalone_clang})
  endif()
endforeach()
# A custom activation written in C: P.c declares it, the user's file defines it.
add_test(NAME standalone_c_hooks
         COMMAND ${CMAKE_COMMAND} -E env STANDALONE_LINK=${CMAKE_SOURCE_DIR}/models/examples/c_hooks.c
                 ${standalone_run} ${CMAKE_SOURCE_DIR}/models/examples/c_hooks.yaml
                 ${CMAKE_CURRENT_BINARY_DIR}/standalone/c_hooks ${standalone_tools} ${standalone_clang})

# ... and the comparison can fail: compiled with another seed's weights, it must.
add_test(NAME standalone_detects_other_weights
         COMMAND ${standalone_run} ${CMAKE_SOURCE_DIR}/models/fashion_mlp.yaml
                 ${CMAKE_CURRENT_BINARY_DIR}/standalone/tampered ${standalone_tools} - --tamper)
# ... and so can the scan: reference.c mallocs and includes nnrt.h.
add_test(NAME standalone_scan_detects_runtime_names
         COMMAND sh ${CMAKE_CURRENT_LIST_DIR}/scan.sh ${CMAKE_CURRENT_LIST_DIR}/reference.c)
set_tests_properties(standalone_scan_detects_runtime_names PROPERTIES WILL_FAIL TRUE)

# The command line, as a user types it: what --standalone needs, and weights that do not fit.
set(standalone_mlp ${CMAKE_SOURCE_DIR}/models/fashion_mlp.yaml)
set(standalone_out ${CMAKE_CURRENT_BINARY_DIR}/standalone/cli.c)
add_test(NAME standalone_cli_needs_weights
         COMMAND $<TARGET_FILE:nncc> ${standalone_mlp} --standalone -o ${standalone_out})
add_test(NAME standalone_cli_needs_output
         COMMAND $<TARGET_FILE:nncc> ${standalone_mlp} --standalone --weights w.h5)
add_test(NAME standalone_cli_compiles_only
         COMMAND $<TARGET_FILE:nncc> train ${standalone_mlp} --standalone --weights w.h5)
add_test(NAME standalone_cli_other_model_weights
         COMMAND $<TARGET_FILE:nncc> ${standalone_mlp} --standalone --weights ${CMAKE_CURRENT_LIST_DIR}/../golden/sgd/w0.h5
                 -o ${standalone_out})
add_test(NAME standalone_cli_weights_alone
         COMMAND $<TARGET_FILE:nncc> ${standalone_mlp} --weights w.h5 -o ${standalone_out})
set_tests_properties(standalone_cli_needs_weights PROPERTIES
  PASS_REGULAR_EXPRESSION "^nncc: error: --standalone needs --weights W.h5: the weights it compiles in as constants\n$")
set_tests_properties(standalone_cli_needs_output PROPERTIES
  PASS_REGULAR_EXPRESSION "^nncc: error: --standalone writes -o OUT.c and OUT.h")
set_tests_properties(standalone_cli_compiles_only PROPERTIES
  PASS_REGULAR_EXPRESSION "^nncc: error: --standalone goes with compiling: nncc MODEL --standalone --weights W.h5 -o OUT.c")
set_tests_properties(standalone_cli_other_model_weights PROPERTIES
  PASS_REGULAR_EXPRESSION "w0.h5: 6 of 6 weights do not match the model; first: weight 'dense/kernel:0' of layer 'dense': model expects shape \\[784, 300\\], file has \\[6, 5\\]\nhint: --weights takes what P_save")
set_tests_properties(standalone_cli_weights_alone PROPERTIES
  PASS_REGULAR_EXPRESSION "^nncc: error: --weights goes with --standalone when compiling")

# With the weights known, every BatchNormalization after a Conv2D is folded
# into its kernel and bias (resnet_small: nine, all use_bias false): the
# report says so and no batch_norm call is left in P.c. standalone_resnet_small
# (which compares those outputs with the ordinary build's) writes both files.
set_tests_properties(standalone_resnet_small PROPERTIES FIXTURES_SETUP standalone_resnet_small_files)
add_test(NAME standalone_folds_bn_into_kernels
         COMMAND sh -c "grep -c 'into .*kernel and a bias' report.txt | grep -qx 9 && ! grep -q 'batch_norm(' sa.c"
         WORKING_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/standalone/resnet_small)
set_tests_properties(standalone_folds_bn_into_kernels PROPERTIES FIXTURES_REQUIRED standalone_resnet_small_files)
