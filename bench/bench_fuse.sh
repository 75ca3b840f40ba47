#!/usr/bin/env bash
# Benchmark: a training step with nncc's fusion passes against --no-fuse.
#
#   bench/bench_fuse.sh [--rounds N] [--steps N] [MODEL.yaml ...]
#
# Default models: models/fashion_mlp.yaml (SGD's step in the GEMMs),
# models/fashion_mlp_bn.yaml (BatchNormalization + elu, SGD),
# models/resnet_small.yaml (Conv + BatchNormalization + relu, residual Add +
# relu) and models/fashion_cnn.yaml (bias + relu in the GEMM's epilogue).
# Each model is compiled twice (as nncc compiles it, and with --no-fuse),
# each linked with bench/bench_step.c, which times train_step on full
# batches of random data (median of --steps calls after a warmup). The two
# programs run alternately, --rounds times each (default 5), with one BLAS
# thread (OPENBLAS_NUM_THREADS=1, so the two cores' sharing does not decide).
# Printed per model: the median of the rounds' medians, fused and unfused, and
# the ratio unfused / fused (> 1: fusion is faster).
#
# Environment: NNCC (default build/nncc), CC (default cc), CFLAGS (default
# the flags `nncc train` builds with: -O2 -fvect-cost-model=dynamic
# -fno-trapping-math -fno-math-errno).
set -u -o pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
. "$here/common.sh"
rounds=5 steps=
models=()
while [ $# -gt 0 ]; do
  case $1 in
    --rounds|--steps)
      case ${2:-} in ''|*[!0-9]*|0) echo "bench_fuse: $1 needs a positive integer" >&2; exit 2 ;; esac
      [ "$1" = --rounds ] && rounds=$2 || steps=$2
      shift 2 ;;
    -h|--help) sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    -*) echo "bench_fuse: unknown option '$1'" >&2; exit 2 ;;
    *) models+=("$1"); shift ;;
  esac
done
[ ${#models[@]} -gt 0 ] || models=("$root/models/fashion_mlp.yaml" "$root/models/fashion_mlp_bn.yaml" "$root/models/resnet_small.yaml"
                                   "$root/models/fashion_cnn.yaml")
[ -x "$NNCC" ] || { echo "bench_fuse: no nncc binary at $NNCC (build it, or set NNCC=...)" >&2; exit 1; }
read -r -a cflags <<<"$CFLAGS"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/nncc-bench-fuse.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT

median() { sort -g | awk '{ v[NR] = $1 } END { print NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

status=0
results=()
for model in "${models[@]}"; do
  name=$(basename "$model" .yaml)
  built=1
  for variant in fused unfused; do
    dir=$tmp/$name/$variant
    mkdir -p "$dir"
    flag=()
    [ $variant = unfused ] && flag=(--no-fuse)
    if ! "$NNCC" "$model" -o "$dir/$name.c" "${flag[@]}" ||
       ! "$CC" "${cflags[@]}" -std=c11 -D_POSIX_C_SOURCE=200809L -DMODEL_FN="${name}_model" -include "$dir/$name.h" -I "$root/runtime" \
           "$here/bench_step.c" "$dir/$name.c" -o "$dir/step" -L "$root/build" -lnncc_rt \
           -Wl,-rpath,"$root/build" -lm; then
      echo "bench_fuse: building $name ($variant) failed (see above)" >&2
      built=0 status=1
    fi
  done
  [ $built = 1 ] || continue
  # about 3 s per run: a first call says how long a step takes
  n=$steps
  if [ -z "$n" ]; then
    us=$(OPENBLAS_NUM_THREADS=1 "$tmp/$name/fused/step" --steps 3 --warmup 1 | sed -n 's/.*median_us=\([0-9.]*\).*/\1/p')
    n=$(awk -v us="${us:-1000}" 'BEGIN { n = int(3e6 / us); print n < 10 ? 10 : n }')
  fi
  echo "== $name: $rounds rounds of $n steps each, fused and --no-fuse alternating"
  : > "$tmp/$name/fused.txt"
  : > "$tmp/$name/unfused.txt"
  for r in $(seq "$rounds"); do
    for variant in fused unfused; do
      line=$(OPENBLAS_NUM_THREADS=1 "$tmp/$name/$variant/step" --steps "$n" --warmup $(( n / 10 + 1 ))) || status=1
      echo "   $variant: $line"
      echo "$line" | sed -n 's/.*median_us=\([0-9.]*\).*/\1/p' >> "$tmp/$name/$variant.txt"
    done
  done
  f=$(median < "$tmp/$name/fused.txt") u=$(median < "$tmp/$name/unfused.txt")
  results+=("$name $f $u")
done

echo
echo "== result (median over rounds of the median step time; 1 BLAS thread)"
printf '%-16s %14s %14s %8s\n' model fused_ms unfused_ms ratio
for r in "${results[@]}"; do
  read -r name f u <<<"$r"
  awk -v n="$name" -v f="$f" -v u="$u" 'BEGIN { printf "%-16s %14.3f %14.3f %7.2fx\n", n, f / 1000, u / 1000, u / f }'
done
exit $status
