#!/usr/bin/env bash
# tests/errors/run.sh NNCC REPO_ROOT — the frontend's error messages, as a user sees them.
#
# Runs every case of tests/errors/expected.txt (its header says the format)
# twice, as `nncc summary FILE` and as `nncc FILE -o DIR/out.c`, from the
# repository root, and checks each run: exit status 1 (not 0, not 2, not a
# signal, not a hang), the first line of stderr exactly, the quoted source
# line and the caret under the column, the hint, and that nothing was
# written (stdout empty, DIR empty). Fuzz inputs named "@/NAME" are made
# here, deterministically, in a temporary folder. Every tests/errors/*.yaml
# must have a case, so a file cannot be added and forgotten.
# Prints one line per case and `N passed, N failed`; exits 1 on any failure.
set -u
export LC_ALL=C NO_COLOR=1

if [ $# -ne 2 ]; then
    echo "usage: $0 PATH/TO/nncc REPO_ROOT" >&2
    exit 2
fi
nncc=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
cd "$2" || exit 2
table=tests/errors/expected.txt
limit=20 # seconds per run: more is a hang

tmp=$(mktemp -d "${TMPDIR:-/tmp}/nncc-errors.XXXXXX") || exit 2
trap 'rm -rf "$tmp"' EXIT
gen=$tmp/gen
mkdir -p "$gen"

# ---- fuzz inputs ---------------------------------------------------------------
printf "$(printf '\\%03o' $(seq 0 255))" >"$gen/binary.yaml"      # every byte, NUL included
printf "$(printf '\\%03o' $(seq 128 255))" >"$gen/garbage.yaml"   # no NUL, not UTF-8
printf 'name: m\001\n' >"$gen/control_char.yaml"
{ head -c 1000000 /dev/zero | tr '\0' '['; head -c 1000000 /dev/zero | tr '\0' ']'; } >"$gen/deep_2mb.yaml"
{
    printf 'name: m\ninputs: [{name: x, shape: [4]}]\nlayers:\n'
    yes '  - [[1, 2], [3, [4, [5, [6]]]], [[7]]]' | head -n 52000
} >"$gen/wide_2mb.yaml"
{
    printf 'name: m\ninputs:\n  - {name: x, shape: [4]}\nlayers:\n'
    yes '  - Dense: {units: 2}' | head -n 9990  # under --max-layers' default of 10000
    printf '  - Dense: {units: 0}\n'
} >"$gen/many_layers.yaml"

# ---- one run --------------------------------------------------------------------
# check_run LABEL FILE LOC MESSAGE HINT OUTDIR CMD...: appends problems to $why.
check_run() {
    local label=$1 file=$2 loc=$3 msg=$4 hint=$5 outdir=$6
    shift 6
    local out=$tmp/stdout err=$tmp/stderr status
    timeout "$limit" "$@" >"$out" 2>"$err"
    status=$?
    case $status in
    1) ;;
    0) why+=" [$label: accepted the input (exit 0)]"; return ;;
    2) why+=" [$label: internal error (exit 2): $(head -c 200 "$err" | head -n 1)]"; return ;;
    124) why+=" [$label: hangs (no answer in ${limit}s)]"; return ;;
    *) why+=" [$label: crashed (exit $status)]"; return ;;
    esac
    local want first
    if [ "$loc" = - ]; then
        want="nncc: error: $msg"
    else
        want="$file:$loc: error: $msg"
    fi
    first=$(head -n 1 "$err")
    [ "$first" = "$want" ] || why+=" [$label: first line is '$(printf %.300s "$first")', want '$want']"
    if [ "$loc" != - ]; then
        local line=${loc%%:*} col=${loc##*:} text quote caret prefix n
        # diag.c quotes the line if the file is text and the line exists
        if tr -d '\000' <"$file" | cmp -s - "$file" && awk -v l="$line" 'NR == l { f = 1 } END { exit !f }' "$file"; then
            text=$(sed -n "${line}p" "$file")
            quote=$(sed -n 2p "$err")
            caret=$(sed -n 3p "$err")
            local before="" after="" from=0 to
            if [ "${#text}" -gt 160 ]; then  # diag.c quotes 160 characters around the column (ASCII here)
                [ $((col - 1)) -gt 80 ] && from=$((col - 1 - 80))
                to=$((from + 160))
                [ "$to" -lt "${#text}" ] && after=... || to=${#text}
                [ "$from" -gt 0 ] && before=...
                text=${text:from:to-from}
                col=$((col - from))
            fi
            [ "$quote" = "$(printf '%5d | %s%s%s' "$line" "$before" "$text" "$after")" ] ||
                why+=" [$label: does not quote line $line: '$(printf %.120s "$quote")']"
            n=$((col - 1))
            [ "$n" -le "${#text}" ] || n=${#text}
            prefix=${text:0:n}
            prefix=${prefix//[!$'\t']/ }
            [ -n "$before" ] && prefix="   $prefix"
            [ "$caret" = "      | $prefix^" ] ||
                why+=" [$label: caret not under column $col: '$(printf %.120s "$caret")']"
        elif grep -q '^ *[0-9]* | ' "$err"; then
            why+=" [$label: quotes a line that is not in the file]"
        fi
    fi
    if [ -n "$hint" ] && ! grep '^hint: ' "$err" | grep -qF -- "$hint"; then
        why+=" [$label: no hint containing '$hint'; got '$(grep -m1 '^hint: ' "$err")']"
    fi
    [ -s "$out" ] && why+=" [$label: printed to stdout: '$(head -c 80 "$out" | head -n 1)']"
    if [ -n "$outdir" ] && [ -n "$(ls -A "$outdir")" ]; then
        why+=" [$label: wrote $(ls -A "$outdir" | tr '\n' ' ')]"
    fi
}

# ---- the table --------------------------------------------------------------------
pass=0 fail=0 n=0
declare -A listed
while IFS='|' read -r file loc msg hint; do
    case $file in '' | '#'*) continue ;; esac
    n=$((n + 1))
    listed[$file]=1
    case $file in @/*) path=$gen/${file#@/} ;; *) path=$file ;; esac
    why=""
    check_run summary "$path" "$loc" "$msg" "$hint" "" "$nncc" summary "$path"
    outdir=$tmp/out$n
    mkdir -p "$outdir"
    check_run compile "$path" "$loc" "$msg" "$hint" "$outdir" "$nncc" "$path" -o "$outdir/out.c"
    if [ -z "$why" ]; then
        pass=$((pass + 1))
        echo "ok    $file"
    else
        fail=$((fail + 1))
        echo "FAIL  $file:$why"
    fi
done <"$table"

for f in tests/errors/*.yaml; do
    if [ -z "${listed[$f]:-}" ]; then
        fail=$((fail + 1))
        echo "FAIL  $f: no case in $table"
    fi
done

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
