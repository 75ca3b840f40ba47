#!/usr/bin/env bash
# Benchmark: one training epoch of the Fashion-MNIST seed MLP, PyTorch vs nncc.
#
#   bench/bench_fashion_mlp.sh [--epochs N] [--skip-torch] [--skip-nncc]
#
# Environment: NNCC (the nncc binary; default build/nncc), MODEL (default
# models/fashion_mlp.yaml), PYTHON (default /usr/bin/python3, Debian's, which
# has torch), TORCH_THREADS (default "2 1": torch runs once per count;
# the torch script sets OMP_WAIT_POLICY=PASSIVE unless it is set, see README).
#
# torch: bench/torch_fashion_mlp.py, whose last line is
#   torch epoch_s=... ms_step=... val_acc=... peak_rss_mib=...
# nncc: `nncc train MODEL --epochs N --out TMP` under /usr/bin/time -v, output
# not a terminal, so one Keras-style line per epoch:
#   1719/1719 - 2s 1ms/step - loss: ... - val_accuracy: 0.8123
# The epoch time comes from that line: the epoch's seconds or steps x the
# per-step time, whichever is printed with the finer resolution (Keras rounds
# both to whole units). If no such line parses, the whole command's wall time
# is used instead (it then includes compiling and data loading: an upper
# bound, flagged in the output). Peak RSS is /usr/bin/time's maximum resident
# set size, i.e. of the largest process nncc ran (nncc itself, the C compiler
# or the trained program).
# Speedup = torch epoch seconds / nncc epoch seconds (> 1: nncc is faster).
set -u -o pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/.." && pwd)
. "$here/common.sh"
PYTHON=${PYTHON:-/usr/bin/python3}
MODEL=${MODEL:-$root/models/fashion_mlp.yaml}
TORCH_THREADS=${TORCH_THREADS:-2 1}
epochs=1
run_torch=1
run_nncc=1

usage() { sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
  case $1 in
    --epochs) [ $# -ge 2 ] || { usage >&2; exit 2; }; epochs=$2; shift 2 ;;
    --epochs=*) epochs=${1#--epochs=}; shift ;;
    --skip-torch) run_torch=0; shift ;;
    --skip-nncc) run_nncc=0; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "bench: unknown argument '$1'" >&2; usage >&2; exit 2 ;;
  esac
done
case $epochs in ''|*[!0-9]*|0) echo "bench: --epochs needs a positive integer" >&2; exit 2 ;; esac

tmp=$(mktemp -d "${TMPDIR:-/tmp}/nncc-bench.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT

# The nncc epoch lines: "S/S - <n><unit> [-] <n><unit>/step - ...", also with
# a Keras 3 bar in place of the first dash or without the per-step time.
# Prints "mean_epoch_seconds lines relative_rounding_step", or "- 0 0".
cat >"$tmp/epoch.awk" <<'AWK'
function secs(v, u) { return u == "ms" ? v / 1e3 : u == "us" ? v / 1e6 : u == "min" ? v * 60 : u == "h" ? v * 3600 : v }
function ulp(v, u,   d) { d = index(v, "."); return secs(d ? 10 ^ -(length(v) - d) : 1, u) }
function split_unit(tok) { match(tok, /^[0-9.]+/); num = substr(tok, 1, RLENGTH); unit = substr(tok, RLENGTH + 1) }
{
  n = split($0, parts, "\r"); line = parts[n]          # a progress bar redraws with \r
  if (line !~ /\/step/) next                            # the closing test evaluation has no per-step time
  if (!match(line, /[0-9]+\/[0-9]+[^0-9\/]+[0-9.]+(us|ms|s|min|h)([ \t]|$)/)) next
  seg = substr(line, RSTART, RLENGTH); after = substr(line, RSTART + RLENGTH)
  match(seg, /[0-9]+\/[0-9]+/); split(substr(seg, RSTART, RLENGTH), st, "/"); steps = st[2]
  rest = substr(seg, RSTART + RLENGTH)
  match(rest, /[0-9.]+(us|ms|s|min|h)/); split_unit(substr(rest, RSTART, RLENGTH))
  t = secs(num, unit); r = t > 0 ? ulp(num, unit) / t : 1
  if (match(after, /^[ \t]*(-[ \t]*)?[0-9.]+(us|ms|s)\/step/)) {
    tok = substr(after, RSTART, RLENGTH); sub(/^[ \t]*(-[ \t]*)?/, "", tok); sub(/\/step$/, "", tok)
    split_unit(tok); t2 = steps * secs(num, unit)
    if (t2 > 0 && steps * ulp(num, unit) / t2 < r) { t = t2; r = steps * ulp(num, unit) / t2 }
  }
  total += t; worst = worst > r ? worst : r; count++
}
END { if (count) printf "%.3f %d %.3f\n", total / count, count, worst; else print "- 0 0" }
AWK

# key=value from the last line of a torch run

declare -a torch_names=() torch_epoch=() torch_acc=() torch_rss=()
if [ "$run_torch" = 1 ]; then
  for t in $TORCH_THREADS; do
    echo "== torch, $t thread(s), $epochs epoch(s)"
    log=$tmp/torch_$t.log
    if "$PYTHON" "$here/torch_fashion_mlp.py" --epochs "$epochs" --threads "$t" 2>&1 | tee "$log"; then
      e=$(field epoch_s "$log")
      if [ -n "$e" ]; then
        torch_names+=("torch (${t} thr)"); torch_epoch+=("$e")
        torch_acc+=("$(field val_acc "$log")"); torch_rss+=("$(field peak_rss_mib "$log")")
      else
        echo "bench: torch printed no epoch_s= line" >&2
      fi
    else
      echo "bench: the torch run failed (see above)" >&2
    fi
  done
fi

nncc_epoch='' nncc_acc='' nncc_rss='' nncc_note=''
if [ "$run_nncc" = 1 ]; then
  echo "== nncc train $MODEL, $epochs epoch(s)"
  if [ ! -x "$NNCC" ]; then
    echo "bench: no nncc binary at $NNCC (build it, or set NNCC=...)" >&2
  elif [ ! -f "$MODEL" ]; then
    echo "bench: no model file $MODEL (set MODEL=...)" >&2
  else
    log=$tmp/nncc.log tlog=$tmp/time.log
    mkdir -p "$tmp/out"
    start=$(date +%s.%N)
    if [ -x /usr/bin/time ]; then
      /usr/bin/time -v -o "$tlog" "$NNCC" train "$MODEL" --epochs "$epochs" --out "$tmp/out" </dev/null >"$log" 2>&1
    else
      "$NNCC" train "$MODEL" --epochs "$epochs" --out "$tmp/out" </dev/null >"$log" 2>&1
    fi
    status=$?
    wall=$(echo "$start $(date +%s.%N)" | awk '{printf "%.3f", $2 - $1}')
    cat "$log"
    if [ "$status" != 0 ]; then
      echo "bench: nncc train exited with status $status" >&2
    else
      # Per epoch line "S/S - <n><unit> <n><unit>/step - ...": the finer of
      # the two readings, averaged over the epoch lines.
      read -r nncc_epoch parsed res <<EOF
$(awk -f "$tmp/epoch.awk" "$log")
EOF
      if [ "$parsed" = 0 ] || [ "$nncc_epoch" = - ]; then
        nncc_epoch=$(awk -v w="$wall" -v e="$epochs" 'BEGIN { printf "%.3f", w / e }')
        nncc_note="(no epoch line parsed: whole command wall time / epochs, includes compile and data loading)"
      else
        nncc_note="(from $parsed epoch line(s), printed to ±$(awk -v r="$res" 'BEGIN { printf "%.2g", r * 50 }')%; whole command ${wall}s)"
      fi
      nncc_acc=$(grep -o 'val_acc[a-z_]*: *[0-9.]*' "$log" | tail -n 1 | sed 's/.*: *//')
      if [ -f "$tlog" ]; then
        nncc_rss=$(awk -F': *' '/Maximum resident set size/ { printf "%.0f", $2 / 1024 }' "$tlog")
      fi
    fi
  fi
fi

echo
echo "== result ($epochs epoch(s); seconds per epoch, training loop)"
printf '%-16s %10s %9s %14s\n' system epoch_s val_acc peak_rss_mib
for i in "${!torch_names[@]}"; do
  printf '%-16s %10s %9s %14s\n' "${torch_names[$i]}" "${torch_epoch[$i]}" "${torch_acc[$i]:--}" "${torch_rss[$i]:--}"
done
[ -n "$nncc_epoch" ] && printf '%-16s %10s %9s %14s  %s\n' nncc "$nncc_epoch" "${nncc_acc:--}" "${nncc_rss:--}" "$nncc_note"
if [ -n "$nncc_epoch" ]; then
  for i in "${!torch_names[@]}"; do
    awk -v t="${torch_epoch[$i]}" -v n="$nncc_epoch" -v name="${torch_names[$i]}" \
      'BEGIN { if (n > 0) printf "speedup vs %s: %.2fx (torch %ss / nncc %ss)\n", name, t / n, t, n }'
  done
fi
[ ${#torch_names[@]} -gt 0 ] && [ -n "$nncc_epoch" ] && exit 0
[ "$run_torch" = 0 ] && [ -n "$nncc_epoch" ] && exit 0
[ "$run_nncc" = 0 ] && [ ${#torch_names[@]} -gt 0 ] && exit 0
exit 1
