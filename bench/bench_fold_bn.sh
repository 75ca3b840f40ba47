#!/usr/bin/env bash
# Benchmark: inference per batch with BatchNormalization folded (nncc's
# default, compiler/pass_fold_bn.c) against --no-fold, for
# models/fashion_mlp_bn.yaml and models/resnet_small.yaml.
#
#   bench/bench_fold_bn.sh [--batches N] [--warmup N]
#
# Environment: NNCC (default build/nncc), CC (default cc), CFLAGS (default
# the flags nncc train builds with), BATCH (default 32: the compiled --max-batch, and the samples per
# timed predict call), BLAS_THREADS (default 1: OPENBLAS_NUM_THREADS).
#
# Each model is compiled twice with --inference-only --max-batch BATCH (once
# with --no-fold), linked into bench/bench_fold_bn.c and run; it alternates
# folded and unfolded predict calls and prints medians, then per model
#   fold model=NAME batch=B folded_ms=... unfolded_ms=... speedup=... max_rel_diff=...
# (speedup = unfolded ms / folded ms: > 1 means folding is faster). The
# script ends with a table of those lines and how idle the machine was in
# the second before the run (this machine has 2 vCPUs; anything else running
# shows in the times). Exits 0 when both models produced a line, 1 if not,
# 2 on bad arguments.
set -u -o pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
. "$here/common.sh"
BATCH=${BATCH:-32}
BLAS_THREADS=${BLAS_THREADS:-1}
batches=50 warmup=5

usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; }
posint() { case $2 in ''|*[!0-9]*|0) echo "bench: $1 needs a positive integer" >&2; exit 2 ;; esac; }
while [ $# -gt 0 ]; do
  case $1 in
    --batches|--warmup)
      [ $# -ge 2 ] || { usage >&2; exit 2; }; posint "$1" "$2"
      case $1 in --batches) batches=$2 ;; *) warmup=$2 ;; esac
      shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
posint BATCH "$BATCH"
read -r -a cflags <<<"$CFLAGS"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/nncc-bench-fold.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT


echo "== build: fashion_mlp_bn and resnet_small, folded and --no-fold, --max-batch $BATCH -> $CC $CFLAGS"
for pair in "bnf_mlp|$root/models/fashion_mlp_bn.yaml" "bnf_resnet|$root/models/resnet_small.yaml"; do
  prefix=${pair%%|*} model=${pair#*|}
  for variant in "" _nofold; do
    flag=; [ -n "$variant" ] && flag=--no-fold
    if ! "$NNCC" "$model" -o "$tmp/$prefix$variant.c" --prefix "$prefix$variant" --inference-only \
         --max-batch "$BATCH" --quiet $flag; then
      echo "bench: nncc failed on $model" >&2; exit 1
    fi
  done
done
if ! "$CC" "${cflags[@]}" -std=c11 -Wall -Wextra -I "$tmp" -I "$root/runtime" "$here/bench_fold_bn.c" \
     "$tmp"/bnf_*.c -o "$tmp/bench_fold_bn" -L "$root/build" -lnncc_rt -Wl,-rpath,"$root/build" -lm; then
  echo "bench: building bench_fold_bn failed (see above)" >&2; exit 1
fi

idle=$(idle_pct)
echo "== run: OPENBLAS_NUM_THREADS=$BLAS_THREADS, $batches batches after $warmup warm-up calls (idle $idle)"
OPENBLAS_NUM_THREADS=$BLAS_THREADS "$tmp/bench_fold_bn" --batches "$batches" --warmup "$warmup" | tee "$tmp/log"
echo
printf '%-16s %6s %12s %14s %8s %13s %6s\n' model batch folded_ms no_fold_ms speedup max_rel_diff idle
n=0
while read -r line; do
  f() { printf '%s\n' "$line" | sed -n "s/.* $1=\([^ ]*\).*/\1/p"; }
  printf '%-16s %6s %12s %14s %7sx %13s %6s\n' "$(f model)" "$(f batch)" "$(f folded_ms)" "$(f unfolded_ms)" \
    "$(f speedup)" "$(f max_rel_diff)" "$idle"
  n=$((n + 1))
done < <(grep '^fold ' "$tmp/log")
[ "$n" = 2 ] && exit 0
exit 1
