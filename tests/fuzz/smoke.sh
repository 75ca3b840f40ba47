#!/bin/sh
# smoke.sh — the CTest smoke run of one fuzz harness.
#
#   smoke.sh HARNESS WORKDIR SECONDS SEED... -- REGRESSION...
#
# First every regression input (files, or folders of files) runs once: a
# crash, a UBSan report, a leak, a run over 10 s or an allocation over
# 2 GB fails the test with libFuzzer's report. Then, either way, SECONDS of new inputs
# mutated from the seeds (files or folders, copied into WORKDIR/corpus,
# which also collects what the run finds): any finding fails the test and
# its input is left in WORKDIR as crash-*, timeout-*, leak-* or oom-*.
# Paths that do not exist are skipped (../shared may be absent).
set -u
harness=$1 work=$2 seconds=$3
shift 3
rm -rf "$work"
mkdir -p "$work/corpus" || exit 2
limits="-timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048"
seeds=0
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
    for f in "$1" "$1"/*; do
        [ -f "$f" ] && cp "$f" "$work/corpus/$seeds-$(basename "$f")" && seeds=$((seeds + 1))
    done
    shift
done
[ $# -gt 0 ] && shift
: > "$work/regressions.txt"
for p in "$@"; do
    for f in "$p" "$p"/*; do
        [ -f "$f" ] && printf '%s\n' "$f" >> "$work/regressions.txt"
    done
done
count=$(wc -l < "$work/regressions.txt")
echo "smoke: $(basename "$harness"): $count regression inputs, $seeds seeds, $seconds s of new inputs"
failed=0
if [ "$count" -gt 0 ]; then
    # one process per input, so a crash names its input and the rest still run
    while IFS= read -r f; do
        if ! "$harness" $limits -artifact_prefix="$work/" "$f" > "$work/last.log" 2>&1; then
            echo "FAIL: $f"
            grep -E "ERROR|SUMMARY|^    #[0-9] " "$work/last.log" | head -12
            failed=1
        fi
    done < "$work/regressions.txt"
fi
"$harness" $limits -max_total_time="$seconds" -artifact_prefix="$work/" -print_final_stats=1 \
    "$work/corpus" > "$work/fuzz.log" 2>&1
rc=$?
grep -E "^stat::|^Done|ERROR|SUMMARY" "$work/fuzz.log" | head -20
if [ $rc != 0 ]; then
    echo "FAIL: new input found a defect; log: $work/fuzz.log, input:" "$work"/crash-* "$work"/timeout-* \
         "$work"/leak-* "$work"/oom-* 2>/dev/null
    exit 1
fi
[ $failed = 0 ] || exit 1
echo "smoke: $(basename "$harness") passed"
