#!/usr/bin/env bash
# Benchmark: the Fashion-MNIST CNN (models/fashion_cnn.yaml), PyTorch vs nncc:
# one training step of batch 32 and inference of batch 256, plus sgemm.
#
#   bench/bench_cnn.sh [--train-steps N] [--infer-batches N] [--warmup N]
#                      [--perf] [--skip-torch] [--skip-nncc]
#
# Environment: NNCC (default build/nncc), NNCC_FLAGS (extra compile flags, e.g. --no-fuse),
# MODEL (default models/fashion_cnn.yaml),
# PYTHON (default /usr/bin/python3, which has torch), CC (default cc), CFLAGS
# (default: the flags nncc train builds with, -O2 -fvect-cost-model=dynamic
# -fno-trapping-math -fno-math-errno), BLAS_THREADS (default "1 2": OPENBLAS_NUM_THREADS of the nncc
# runs), TORCH_THREADS (default "2 1"; the torch script sets OMP_WAIT_POLICY=PASSIVE).
#
# nncc: the model compiled twice (--max-batch 32 for training; --max-batch 256
# --inference-only --prefix fashion_cnn_infer for inference), linked with
# bench/bench_cnn.c (cc $CFLAGS), run once per BLAS thread count. Its last line:
#   nncc blas_threads=1 train_ms=... infer_ms=... sgemm_gflops=... train_gflops=...
# torch: bench/torch_fashion_cnn.py --threads T, once per T. Its last line:
#   torch train_ms=... infer_ms=... train_gflops=... infer_gflops=... threads=2
# Both report medians over the timed calls. The table gives ms per training
# step and per inference batch, GFLOP/s (FLOPs counted analytically, see
# bench_cnn.c) and that as % of nncc's sgemm rate at the same thread count
# (a (6272x1152)@(1152x128) nnrt_gemm, conv2d_2's forward shape), then
# ratio = torch ms / nncc ms (> 1: nncc is faster). The torch optimizer is the
# model's (its `optimizer:` line: nadam or adam). Column idle: how idle the
# machine was in the second before each run; this machine has 2 vCPUs, and
# anything else running (a build, a test suite) shows up directly in the
# times, most in 2-thread runs.
# --perf: also `perf record` the nncc program (first BLAS_THREADS count), once
# timing only training and once only inference, and print the top 10 symbols
# of each by self time.
set -u -o pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
. "$here/common.sh"
PYTHON=${PYTHON:-/usr/bin/python3}
MODEL=${MODEL:-$root/models/fashion_cnn.yaml}
BLAS_THREADS=${BLAS_THREADS:-1 2}
NNCC_FLAGS=${NNCC_FLAGS:-}  # e.g. --no-fuse: the same runs without the fusion passes
TORCH_THREADS=${TORCH_THREADS:-2 1}
train_steps=20 infer_batches=10 warmup=3
run_torch=1 run_nncc=1 run_perf=0

usage() { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; }
posint() { case $2 in ''|*[!0-9]*|0) echo "bench: $1 needs a positive integer" >&2; exit 2 ;; esac; }
while [ $# -gt 0 ]; do
  case $1 in
    --train-steps|--infer-batches|--warmup)
      [ $# -ge 2 ] || { usage >&2; exit 2; }; posint "$1" "$2"
      case $1 in --train-steps) train_steps=$2 ;; --infer-batches) infer_batches=$2 ;; *) warmup=$2 ;; esac
      shift 2 ;;
    --perf) run_perf=1; shift ;;
    --skip-torch) run_torch=0; shift ;;
    --skip-nncc) run_nncc=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
counts=(--train-steps "$train_steps" --infer-batches "$infer_batches" --warmup "$warmup")
read -r -a cflags <<<"$CFLAGS"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/nncc-bench-cnn.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT

# The torch optimizer: the model's (nadam or adam), nadam when unclear.
case $(grep -io '^[[:space:]]*optimizer:.*' "$MODEL" 2>/dev/null | tr '[:upper:]' '[:lower:]') in
  *nadam*) torch_opt=nadam ;;
  *adam*) torch_opt=adam ;;
  *) torch_opt=nadam ;;
esac

# one row per run: name threads train_ms infer_ms train_gflops infer_gflops idle%
declare -a rows=()
declare -A sgemm=()            # BLAS thread count -> nncc's sgemm GFLOP/s

built=0
if [ "$run_nncc" = 1 ]; then
  echo "== build: nncc $MODEL (b32 train, b256 inference) -> $CC $CFLAGS"
  if [ ! -x "$NNCC" ]; then
    echo "bench: no nncc binary at $NNCC (build it, or set NNCC=...)" >&2
  elif [ ! -f "$MODEL" ]; then
    echo "bench: no model file $MODEL (set MODEL=...)" >&2
  elif "$NNCC" "$MODEL" -o "$tmp/fashion_cnn.c" --max-batch 32 $NNCC_FLAGS &&
       "$NNCC" "$MODEL" -o "$tmp/fashion_cnn_infer.c" --max-batch 256 --inference-only --prefix fashion_cnn_infer $NNCC_FLAGS &&
       "$CC" "${cflags[@]}" -std=c11 -Wall -Wextra -I "$tmp" -I "$root/runtime" "$here/bench_cnn.c" \
         "$tmp/fashion_cnn.c" "$tmp/fashion_cnn_infer.c" -o "$tmp/bench_cnn" \
         -L "$root/build" -lnncc_rt -Wl,-rpath,"$root/build" -lm; then
    built=1
  else
    echo "bench: building the nncc benchmark failed (see above)" >&2
  fi
  if [ "$built" = 1 ]; then
    for t in $BLAS_THREADS; do
      echo "== nncc, OPENBLAS_NUM_THREADS=$t"
      log=$tmp/nncc_$t.log ld=$(idle_pct)
      if OPENBLAS_NUM_THREADS=$t "$tmp/bench_cnn" "${counts[@]}" 2>&1 | tee "$log"; then
        tr=$(field train_ms "$log")
        if [ -n "$tr" ]; then
          rows+=("nncc blas=$t|$t|$tr|$(field infer_ms "$log")|$(field train_gflops "$log")|$(field infer_gflops "$log")|$ld")
          sgemm[$t]=$(field sgemm_gflops "$log")
        else
          echo "bench: the nncc run printed no train_ms= line" >&2
        fi
      else
        echo "bench: the nncc run failed (see above)" >&2
      fi
    done
  fi
fi

if [ "$run_torch" = 1 ]; then
  for t in $TORCH_THREADS; do
    echo "== torch, $t thread(s), $torch_opt"
    log=$tmp/torch_$t.log ld=$(idle_pct)
      if "$PYTHON" "$here/torch_fashion_cnn.py" "${counts[@]}" --threads "$t" --optimizer "$torch_opt" 2>&1 | tee "$log"; then
      tr=$(field train_ms "$log")
      if [ -n "$tr" ]; then
        rows+=("torch thr=$t|$t|$tr|$(field infer_ms "$log")|$(field train_gflops "$log")|$(field infer_gflops "$log")|$ld")
      else
        echo "bench: torch printed no train_ms= line" >&2
      fi
    else
      echo "bench: the torch run failed (see above)" >&2
    fi
  done
fi

if [ "$run_perf" = 1 ] && [ "$built" = 1 ]; then
  t=${BLAS_THREADS%% *}
  if ! command -v perf >/dev/null; then
    echo "bench: no perf on PATH" >&2
  else
    for phase in train infer; do
      echo "== perf record: nncc $phase only, OPENBLAS_NUM_THREADS=$t (top 10 symbols by self time)"
      if OPENBLAS_NUM_THREADS=$t perf record -q -o "$tmp/perf.data" -- "$tmp/bench_cnn" "${counts[@]}" \
           --phase "$phase" >/dev/null 2>"$tmp/perf.err"; then
        perf report -i "$tmp/perf.data" --stdio --no-children --sort dso,symbol 2>/dev/null |
          awk '!/^#/ && NF >= 4 { printf "  %8s  %-26s %s\n", $1, $2, $4 }' | head -n 10
      else
        echo "bench: perf record failed:" >&2; cat "$tmp/perf.err" >&2
      fi
    done
  fi
fi

echo
echo "== result (medians; train: one step of batch 32 incl. the $torch_opt update; infer: one batch of 256)"
printf '%-14s %13s %14s %11s %11s %9s %9s %6s\n' system train_ms/step infer_ms/batch train_GF/s infer_GF/s train_%sg infer_%sg idle
for r in "${rows[@]}"; do
  IFS='|' read -r name t tr inf tg ig ld <<<"$r"
  sg=${sgemm[$t]:-}
  awk -v n="$name" -v tr="$tr" -v inf="$inf" -v tg="$tg" -v ig="$ig" -v sg="$sg" -v ld="$ld" 'BEGIN {
    tp = sg > 0 ? sprintf("%.0f%%", 100 * tg / sg) : "-"; ip = sg > 0 ? sprintf("%.0f%%", 100 * ig / sg) : "-"
    printf "%-14s %13.2f %14.2f %11.1f %11.1f %9s %9s %6s\n", n, tr, inf, tg, ig, tp, ip, ld }'
done
for t in $BLAS_THREADS; do
  [ -n "${sgemm[$t]:-}" ] && echo "sgemm (nnrt_gemm 6272x128x1152), $t BLAS thread(s): ${sgemm[$t]} GFLOP/s"
done
any_nncc=0 any_torch=0
for r in "${rows[@]}"; do case $r in nncc*) any_nncc=1 ;; torch*) any_torch=1 ;; esac; done
if [ "$any_nncc" = 1 ] && [ "$any_torch" = 1 ]; then
  echo
  echo "ratio torch ms / nncc ms (> 1: nncc is faster)"
  printf '%-28s %7s %7s\n' pair train infer
  for a in "${rows[@]}"; do
    case $a in torch*) ;; *) continue ;; esac
    IFS='|' read -r an _ atr ainf _ <<<"$a"
    for b in "${rows[@]}"; do
      case $b in nncc*) ;; *) continue ;; esac
      IFS='|' read -r bn _ btr binf _ <<<"$b"
      awk -v p="$an / $bn" -v a="$atr" -v b="$btr" -v c="$ainf" -v d="$binf" \
        'BEGIN { printf "%-28s %6.2fx %6.2fx\n", p, a / b, c / d }'
    done
  done
fi
[ "$run_nncc" = 1 ] && [ "$any_nncc" = 0 ] && exit 1
[ "$run_torch" = 1 ] && [ "$any_torch" = 0 ] && exit 1
[ ${#rows[@]} -gt 0 ] && exit 0
exit 1
