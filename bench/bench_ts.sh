#!/usr/bin/env bash
# Benchmark: one training epoch of the time-series models ts_lstm,
# ts_conv1d_gru and ts_wavenet, PyTorch vs nncc (same data sizes, batch 32, thread counts).
#
#   bench/bench_ts.sh [--epochs N] [--perf] [--skip-torch] [--skip-nncc]
#
# Environment: NNCC (default build/nncc), MODELS (default "ts_lstm
# ts_conv1d_gru ts_wavenet": models/NAME.yaml), PYTHON (default /usr/bin/python3, which
# has torch), BLAS_THREADS (default "1 2": OPENBLAS_NUM_THREADS of the nncc
# runs), TORCH_THREADS (default "1 2"; the torch script sets OMP_WAIT_POLICY=PASSIVE).
#
# nncc: `nncc train models/NAME.yaml --epochs N --out TMP` (default 3 epochs),
# once per model and BLAS thread count, output not a terminal, so one line
# per epoch: "Epoch k/N", then after the epoch "219/219 - 1s 4ms/step - ...".
# Those Keras-style times are whole units (1s, 4ms: ±12% here), too coarse,
# so every output line is stamped with bash's $EPOCHREALTIME as it arrives
# (the program flushes both lines): epoch time = stamp of the "219/219" line
# - stamp of its "Epoch k/N" line, i.e. shuffle + training loop + validation,
# what the line's own "1s" measures, to well under a millisecond. The median
# over the epochs is used; the Keras line's reading is shown as a check.
# torch: bench/torch_ts.py --epochs N --threads T, once per T; it times the
# same span (training loop + validation) and prints per model
#   torch model=ts_lstm epoch_s=... ms_step=... train_s=... val_s=... threads=T
# with medians over the epochs.
# ratio = torch s/epoch / nncc s/epoch (> 1: nncc is faster), against torch at
# the same thread count (else the first torch run). load1 (the 1-minute load
# average before each run) is shown: this machine has 2 vCPUs, and anything
# else running shows up directly in the times.
# --perf: also `perf record` the trained ts_lstm program of the first BLAS
# thread count (`DIR/ts_lstm train --epochs 1 --out DIR`: data generation,
# one epoch, saving, test evaluation) and print its top symbols by self time.
set -u -o pipefail
export LC_ALL=C   # '.' in $EPOCHREALTIME and in awk's numbers

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
PYTHON=${PYTHON:-/usr/bin/python3}
NNCC=${NNCC:-$root/build/nncc}
MODELS=${MODELS:-ts_lstm ts_conv1d_gru ts_wavenet}
BLAS_THREADS=${BLAS_THREADS:-1 2}
TORCH_THREADS=${TORCH_THREADS:-1 2}
epochs=3
run_torch=1 run_nncc=1 run_perf=0

usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case $1 in
    --epochs) [ $# -ge 2 ] || { usage >&2; exit 2; }; epochs=$2; shift 2 ;;
    --epochs=*) epochs=${1#--epochs=}; shift ;;
    --perf) run_perf=1; shift ;;
    --skip-torch) run_torch=0; shift ;;
    --skip-nncc) run_nncc=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
case $epochs in ''|*[!0-9]*|0) echo "bench: --epochs needs a positive integer" >&2; exit 2 ;; esac
if [ -z "${EPOCHREALTIME:-}" ]; then
  echo "bench: this bash has no \$EPOCHREALTIME (bash >= 5 needed)" >&2; exit 2
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/nncc-bench-ts.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT

# Each line of stdin as "<epoch seconds, microsecond resolution> <line>",
# stamped when it is read (the writer flushes each epoch's lines).
stamp() { local l; while IFS= read -r l || [ -n "$l" ]; do printf '%s %s\n' "$EPOCHREALTIME" "$l"; done; }

# From a stamped nncc log: "median_s epochs min_s max_s" of (stamp of an
# epoch's "S/S - ..." line - stamp of the "Epoch k/N" line before it),
# or "- 0 - -".
cat >"$tmp/stamps.awk" <<'AWK'
{
  line = substr($0, index($0, " ") + 1)
  if (line ~ /^Epoch [0-9]+\/[0-9]+[ \t]*$/) { start = $1; next }
  if (start != "" && line ~ /^[0-9]+\/[0-9]+[^0-9\/]/) { d[n++] = $1 - start; start = "" }
}
END {
  if (!n) { print "- 0 - -"; exit }
  for (i = 1; i < n; i++) for (j = i; j > 0 && d[j - 1] > d[j]; j--) { t = d[j]; d[j] = d[j - 1]; d[j - 1] = t }
  med = n % 2 ? d[(n - 1) / 2] : (d[n / 2 - 1] + d[n / 2]) / 2
  printf "%.4f %d %.4f %.4f\n", med, n, d[0], d[n - 1]
}
AWK

# The Keras line's own reading (as bench_fashion_mlp.sh takes it: the epoch's
# seconds or steps x the per-step time, whichever is printed finer), mean
# over the epoch lines (those right after an "Epoch k/N" line) of an
# unstamped log: "mean_s lines", or "- 0".
cat >"$tmp/epoch.awk" <<'AWK'
function secs(v, u) { return u == "ms" ? v / 1e3 : u == "us" ? v / 1e6 : u == "min" ? v * 60 : u == "h" ? v * 3600 : v }
function ulp(v, u,   d) { d = index(v, "."); return secs(d ? 10 ^ -(length(v) - d) : 1, u) }
function split_unit(tok) { match(tok, /^[0-9.]+/); num = substr(tok, 1, RLENGTH); unit = substr(tok, RLENGTH + 1) }
{
  n = split($0, parts, "\r"); line = parts[n]
  if (line ~ /^Epoch [0-9]+\/[0-9]+[ \t]*$/) { epoch = 1; next }
  if (!epoch) next                                     # not the test evaluation's "32/32 - 0s - ..."
  epoch = 0
  if (!match(line, /^[0-9]+\/[0-9]+[^0-9\/]+[0-9.]+(us|ms|s|min|h)([ \t]|$)/)) next
  seg = substr(line, RSTART, RLENGTH); after = substr(line, RSTART + RLENGTH)
  match(seg, /[0-9]+\/[0-9]+/); split(substr(seg, RSTART, RLENGTH), st, "/"); steps = st[2]
  rest = substr(seg, RSTART + RLENGTH)
  match(rest, /[0-9.]+(us|ms|s|min|h)/); split_unit(substr(rest, RSTART, RLENGTH))
  t = secs(num, unit); r = t > 0 ? ulp(num, unit) / t : 1e9    # "0s": no reading
  if (match(after, /^[ \t]*(-[ \t]*)?[0-9.]+(us|ms|s)\/step/)) {
    tok = substr(after, RSTART, RLENGTH); sub(/^[ \t]*(-[ \t]*)?/, "", tok); sub(/\/step$/, "", tok)
    split_unit(tok); t2 = steps * secs(num, unit)
    if (t2 > 0 && steps * ulp(num, unit) / t2 < r) t = t2
  }
  total += t; count++
}
END { if (count) printf "%.3f %d\n", total / count, count; else print "- 0" }
AWK

# key=value from a torch log's "torch model=NAME ..." line
tfield() { grep "^torch model=$2 " "$3" | sed -n "s/.*[[:space:]]$1=\([^[:space:]]*\).*/\1/p" | tail -n 1; }
load1() { cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo -; }

declare -A nncc_s=() nncc_keras=() nncc_load=() nncc_steps=() torch_s=() torch_train=() torch_load=()
fail=0

if [ "$run_nncc" = 1 ]; then
  if [ ! -x "$NNCC" ]; then
    echo "bench: no nncc binary at $NNCC (build it, or set NNCC=...)" >&2; fail=1
  else
    for m in $MODELS; do
      yaml=$root/models/$m.yaml
      [ -f "$yaml" ] || { echo "bench: no model file $yaml" >&2; fail=1; continue; }
      for t in $BLAS_THREADS; do
        echo "== nncc train models/$m.yaml --epochs $epochs, OPENBLAS_NUM_THREADS=$t"
        out=$tmp/${m}_$t log=$tmp/nncc_${m}_$t.log ld=$(load1)
        mkdir -p "$out"
        OPENBLAS_NUM_THREADS=$t "$NNCC" train "$yaml" --epochs "$epochs" --out "$out" </dev/null 2>&1 | stamp >"$log"
        status=${PIPESTATUS[0]}
        cut -d' ' -f2- "$log"
        if [ "$status" != 0 ]; then
          echo "bench: nncc train exited with status $status" >&2; fail=1; continue
        fi
        read -r med cnt lo hi < <(awk -f "$tmp/stamps.awk" "$log")
        if [ "$cnt" = 0 ]; then
          echo "bench: no epoch lines in the nncc output" >&2; fail=1; continue
        fi
        read -r keras _ < <(cut -d' ' -f2- "$log" | awk -f "$tmp/epoch.awk")
        steps=$(cut -d' ' -f2- "$log" | sed -n 's#^\([0-9]*\)/\1[^0-9/].*#\1#p' | head -n 1)
        echo "   epoch (stamped): median ${med}s of $cnt, min ${lo}s, max ${hi}s; Keras line: ${keras}s"
        nncc_s[$m,$t]=$med nncc_keras[$m,$t]=$keras nncc_load[$m,$t]=$ld nncc_steps[$m]=$steps
      done
    done
  fi
fi

torch_first=''
if [ "$run_torch" = 1 ]; then
  for t in $TORCH_THREADS; do
    echo "== torch, $t thread(s), $epochs epoch(s)"
    log=$tmp/torch_$t.log ld=$(load1)
    args=()
    [ "$(echo $MODELS | wc -w)" = 1 ] && args=(--model "$MODELS")
    if "$PYTHON" "$here/torch_ts.py" --epochs "$epochs" --threads "$t" "${args[@]}" 2>&1 | tee "$log"; then
      for m in $MODELS; do
        e=$(tfield epoch_s "$m" "$log")
        if [ -n "$e" ]; then
          torch_s[$m,$t]=$e torch_train[$m,$t]=$(tfield train_s "$m" "$log") torch_load[$m,$t]=$ld
          [ -n "$torch_first" ] || torch_first=$t
        else
          echo "bench: torch printed no 'torch model=$m' line" >&2; fail=1
        fi
      done
    else
      echo "bench: the torch run failed (see above)" >&2; fail=1
    fi
  done
fi

if [ "$run_perf" = 1 ]; then
  t=${BLAS_THREADS%% *} dir=$tmp/ts_lstm_$t
  if ! command -v perf >/dev/null; then
    echo "bench: no perf on PATH" >&2
  elif [ ! -x "$dir/ts_lstm" ]; then
    echo "bench: --perf needs the nncc ts_lstm run (no $dir/ts_lstm)" >&2
  else
    echo
    echo "== perf record: $dir/ts_lstm train --epochs 1, OPENBLAS_NUM_THREADS=$t (top 15 symbols by self time)"
    if OPENBLAS_NUM_THREADS=$t perf record -q -o "$tmp/perf.data" -- "$dir/ts_lstm" train --epochs 1 --out "$dir" \
         </dev/null >/dev/null 2>"$tmp/perf.err"; then
      perf report -i "$tmp/perf.data" --stdio --no-children --sort dso,symbol 2>/dev/null |
        awk '!/^#/ && NF >= 4 { printf "  %8s  %-26s %s\n", $1, $2, $4 }' | head -n 15
    else
      echo "bench: perf record failed:" >&2; cat "$tmp/perf.err" >&2
    fi
  fi
fi

echo
echo "== result (seconds per epoch = shuffle + training loop + validation; median of $epochs epoch(s))"
printf '%-14s %6s %8s %9s %8s %7s %9s %8s %7s %6s\n' \
  model steps nncc_thr nncc_s/ep ms/step keras_s torch_thr torch_s/ep ratio load1
any=0
for m in $MODELS; do
  for t in $BLAS_THREADS; do
    n=${nncc_s[$m,$t]:-}
    [ -n "$n" ] || continue
    u=$t
    [ -n "${torch_s[$m,$u]:-}" ] || u=$torch_first
    ts=${torch_s[$m,$u]:-}
    awk -v m="$m" -v st="${nncc_steps[$m]:-}" -v t="$t" -v n="$n" -v k="${nncc_keras[$m,$t]:--}" \
        -v u="${u:--}" -v ts="$ts" -v ld="${nncc_load[$m,$t]}/${torch_load[$m,$u]:--}" 'BEGIN {
      ms = st > 0 ? sprintf("%.2f", 1000 * n / st) : "-"
      r = ts != "" && n > 0 ? sprintf("%.1fx", ts / n) : "-"
      printf "%-14s %6s %8s %9.3f %8s %7s %9s %8s %7s %6s\n", m, st, t, n, ms, k, u, ts == "" ? "-" : sprintf("%.3f", ts), r, ld }'
    any=1
  done
done
if [ ${#torch_s[@]} -gt 0 ]; then
  echo "torch runs (s/epoch; in parentheses the training loop alone, without validation):"
  for m in $MODELS; do
    for t in $TORCH_THREADS; do
      [ -n "${torch_s[$m,$t]:-}" ] && printf '  %-14s %s thread(s): %s (%s)\n' \
        "$m" "$t" "${torch_s[$m,$t]}" "${torch_train[$m,$t]}"
    done
  done
fi
# fastest against fastest, whatever their thread counts
for m in $MODELS; do
  bn='' bt='' tn='' tt=''
  for t in $BLAS_THREADS; do
    v=${nncc_s[$m,$t]:-}; [ -n "$v" ] || continue
    if [ -z "$bn" ] || awk -v a="$v" -v b="$bn" 'BEGIN { exit !(a < b) }'; then bn=$v bt=$t; fi
  done
  for t in $TORCH_THREADS; do
    v=${torch_s[$m,$t]:-}; [ -n "$v" ] || continue
    if [ -z "$tn" ] || awk -v a="$v" -v b="$tn" 'BEGIN { exit !(a < b) }'; then tn=$v tt=$t; fi
  done
  [ -n "$bn" ] && [ -n "$tn" ] && awk -v m="$m" -v a="$tn" -v at="$tt" -v b="$bn" -v bt="$bt" \
    'BEGIN { printf "best vs best, %s: torch %.3fs (%s thr) / nncc %.3fs (%s thr) = %.1fx\n", m, a, at, b, bt, a / b }'
done
echo "ratio = torch s/epoch / nncc s/epoch (> 1: nncc is faster); load1 = 1-min load average before the nncc/torch run"
exit "$fail"
