# nncc_sources.cmake — the source lists, relative to the repository root, in
# one place: the main build (libnncc_rt, nncc_core, nncc) and the fuzz
# harnesses' separate clang build (tests/fuzz/harnesses) both include it.

# libnncc_rt: what generated code links.
set(NNRT_SOURCES runtime/rng.c runtime/init.c runtime/kernels.c runtime/conv.c runtime/norm.c runtime/rnn.c runtime/h5.c
    runtime/data.c runtime/fit.c runtime/history.c runtime/main.c runtime/h5guard.c)

# nncc_core: the compiler without its command line (compiler/main.c).
set(NNCC_CORE_SOURCES
  compiler/diag.c compiler/yaml.c compiler/layers.c compiler/layers_image.c compiler/layers_seq.c
  compiler/blocks.c compiler/expr.c
  compiler/model.c compiler/keras_h5.c compiler/keras_json.c compiler/lower.c
  compiler/chooks.c compiler/pass_fold_bn.c compiler/pass_cse.c compiler/pass_fuse.c compiler/pass_fuse_sgd.c compiler/pass_plan.c
  compiler/build.c compiler/summary.c compiler/limits.c
  ir/arena.c ir/graph.c ir/ops.c ir/autodiff.c ir/verify.c ir/print.c ir/cquote.c
  backends/c/emit.c backends/c/standalone.c
  runtime/h5.c runtime/h5guard.c)  # --standalone reads --weights with the runtime's HDF5 reader
