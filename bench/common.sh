# common.sh — what the bench scripts share; sourced after they set $root.
#
# Defaults from the environment: NNCC (build/nncc), CC (cc), CFLAGS (the
# flags `nncc train` builds generated code with, compiler/build.c: -O2
# -fvect-cost-model=dynamic -fno-trapping-math -fno-math-errno).
NNCC=${NNCC:-$root/build/nncc}
CC=${CC:-cc}
CFLAGS=${CFLAGS:--O2 -fvect-cost-model=dynamic -fno-trapping-math -fno-math-errno}

# key=value from the last line of a run's log: field KEY FILE
field() { sed -n "s/.*[[:space:]]$1=\([^[:space:]]*\).*/\1/p" "$2" | tail -n 1; }

# % of the machine idle over the second before a run (/proc/stat): ~100 when
# nothing else runs; lower means another process shares the 2 vCPUs.
idle_pct() {
  local a b
  a=$(awk '/^cpu / { print $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat 2>/dev/null) || { echo -; return; }
  sleep 1
  b=$(awk '/^cpu / { print $5 + $6, $2 + $3 + $4 + $5 + $6 + $7 + $8 + $9 }' /proc/stat)
  echo "$a $b" | awk '{ d = $4 - $2; printf "%.0f%%", (d > 0 ? 100 * ($3 - $1) / d : 0) }'
}
