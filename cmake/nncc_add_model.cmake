# nncc_add_model(TARGET MODEL [PREFIX p] [MAX_BATCH n] [INFERENCE_ONLY]
#                [STANDALONE WEIGHTS w.h5])
#
# Runs nncc at build time, as protobuf_generate does: MODEL (relative to the
# current source folder) becomes <prefix>.c and <prefix>.h in the current
# binary folder, rebuilt whenever MODEL changes; TARGET gets the source, that
# include folder and a link to nncc::runtime. The prefix is PREFIX, else the
# model's `name:`, else the file's stem. With GCC or Clang the source gets
# the flags `nncc train` builds it with, which change no value and let the
# compiler vectorize its loops: -fno-trapping-math -fno-math-errno, and for
# GCC -fvect-cost-model=dynamic (at -O2 it otherwise vectorizes only loops
# of a known length).
function(nncc_add_model target model)
  cmake_parse_arguments(PARSE_ARGV 2 ARG "INFERENCE_ONLY;STANDALONE" "PREFIX;MAX_BATCH;WEIGHTS" "")
  if(ARG_UNPARSED_ARGUMENTS)
    message(FATAL_ERROR "nncc_add_model: unexpected arguments: ${ARG_UNPARSED_ARGUMENTS}")
  endif()
  if(NOT TARGET ${target})
    message(FATAL_ERROR "nncc_add_model: '${target}' is not a target (add_executable or add_library first)")
  endif()
  if(NOT IS_ABSOLUTE "${model}")
    set(model "${CMAKE_CURRENT_SOURCE_DIR}/${model}")
  endif()
  if(NOT EXISTS "${model}")
    message(FATAL_ERROR "nncc_add_model: no model file '${model}'")
  endif()
  set(prefix "${ARG_PREFIX}")
  if(NOT prefix)
    file(STRINGS "${model}" name_line REGEX "^name:[ \t]*[A-Za-z_][A-Za-z0-9_]*" LIMIT_COUNT 1)
    if(name_line)
      string(REGEX REPLACE "^name:[ \t]*([A-Za-z_][A-Za-z0-9_]*).*" "\\1" prefix "${name_line}")
    else()
      get_filename_component(prefix "${model}" NAME_WE)
    endif()
  endif()
  set(args "${model}" -o "${CMAKE_CURRENT_BINARY_DIR}/${prefix}.c" --prefix "${prefix}" --quiet)
  if(ARG_MAX_BATCH)
    list(APPEND args --max-batch "${ARG_MAX_BATCH}")
  endif()
  if(ARG_INFERENCE_ONLY)
    list(APPEND args --inference-only)
  endif()
  set(depends "${model}")
  if(ARG_STANDALONE)
    if(NOT ARG_WEIGHTS)
      message(FATAL_ERROR "nncc_add_model: STANDALONE needs WEIGHTS w.h5")
    endif()
    if(NOT IS_ABSOLUTE "${ARG_WEIGHTS}")
      set(ARG_WEIGHTS "${CMAKE_CURRENT_SOURCE_DIR}/${ARG_WEIGHTS}")
    endif()
    list(APPEND args --standalone --weights "${ARG_WEIGHTS}")
    list(APPEND depends "${ARG_WEIGHTS}")
  endif()
  add_custom_command(
    OUTPUT "${CMAKE_CURRENT_BINARY_DIR}/${prefix}.c" "${CMAKE_CURRENT_BINARY_DIR}/${prefix}.h"
    COMMAND nncc::nncc ${args}
    DEPENDS ${depends} nncc::nncc
    COMMENT "nncc: compiling ${model} to ${prefix}.c"
    VERBATIM)
  target_sources(${target} PRIVATE "${CMAKE_CURRENT_BINARY_DIR}/${prefix}.c" "${CMAKE_CURRENT_BINARY_DIR}/${prefix}.h")
  target_include_directories(${target} PRIVATE "${CMAKE_CURRENT_BINARY_DIR}")
  if(CMAKE_C_COMPILER_ID MATCHES "GNU|Clang")
    set(flags -fno-trapping-math -fno-math-errno)
    if(CMAKE_C_COMPILER_ID STREQUAL "GNU")
      list(APPEND flags -fvect-cost-model=dynamic)
    endif()
    set_source_files_properties("${CMAKE_CURRENT_BINARY_DIR}/${prefix}.c" PROPERTIES COMPILE_OPTIONS "${flags}")
  endif()
  if(NOT ARG_STANDALONE)
    target_link_libraries(${target} PRIVATE nncc::runtime)
  endif()
endfunction()
