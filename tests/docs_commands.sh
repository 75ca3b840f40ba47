#!/usr/bin/env bash
# docs_commands.sh SOURCE_DIR BUILD_DIR WORK_DIR
#
# Runs the commands README.md and docs/*.md give a reader to run, so the
# pages cannot go stale. The convention (docs/README.md, for contributors):
#
#   - A fenced block tagged ```sh holds commands a reader runs from the
#     repository root after building. This test runs it.
#   - Every other fence names what it shows: ```text for synopses and
#     output, ```c, ```yaml, ```cmake. A fence without a tag, or tagged
#     bash, shell or console, is an error: no command slips past untested.
#   - A ```sh block that is not run says why on a comment line directly
#     above its fence, `<!-- docs-test skip: REASON -->`, optionally
#     followed by `<!-- docs-test instead: COMMAND -->`, a shortened
#     equivalent that runs in its place (later pages may use what it makes).
#     The summary lists every skipped block with its reason.
#   - A ```text block after a ```sh block, with only blank lines between,
#     is its output: each line but `...` must be a line the commands print,
#     numbers (timings, accuracies) and spacing aside.
#   - Commands inline in prose and tables (`./build/nncc train models/X.yaml`)
#     and in skipped blocks are not run, but checked: the repository paths
#     they name exist, and their nncc options are ones `nncc --help` lists.
#
# The sandbox, WORK_DIR/repo, is a fresh copy of the source tree (git's
# tracked and unignored files) with `build` a link to BUILD_DIR, and PATH
# is BUILD_DIR then Debian's own folders, so `nncc` and `python3` are what
# the pages assume. The pages run in reading order, one sandbox for all, as a
# reader leaves files for the next page: README.md, docs/getting-started.md
# (which starts where the README stops), then the other docs/*.md by name.
# Each block runs in its own `bash` under `set -e -o pipefail`; its first
# failing command is reported as FILE:LINE with the command and the end of
# the block's output. (Bash's rule: a failure before the last `&&` of a list
# stops nothing, so write such commands on lines of their own, or last.)
set -euo pipefail
src=$(cd "$1" && pwd) build=$(cd "$2" && pwd) work=$3
nncc=$build/nncc
sandbox=$work/repo blocks=$work/blocks
rm -rf "$work"
mkdir -p "$sandbox" "$blocks"
work=$(cd "$work" && pwd)

# --- The sandbox ---------------------------------------------------------
build_in_src=${build#"$src"/}    # a build folder that .gitignore may not name
if git -C "$src" rev-parse --is-inside-work-tree > /dev/null 2>&1; then
    (cd "$src" && git ls-files -z --cached --others --exclude-standard \
        | while IFS= read -r -d '' f; do
              [ -e "$f" ] && [ "${f#"$build_in_src"/}" = "$f" ] && printf '%s\0' "$f"
          done \
        | tar --null -T - -cf -) | tar -C "$sandbox" -xf -
else
    tar -C "$src" --exclude=./.git --exclude="./$build_in_src" --exclude=./nncc-out -cf - . | tar -C "$sandbox" -xf -
fi
ln -s "$build" "$sandbox/build"
cd "$sandbox"
pages=(README.md docs/getting-started.md)
for page in $(LC_ALL=C ls docs/*.md); do
    [ "$page" = docs/getting-started.md ] || pages+=("$page")
done

# --- Extraction ----------------------------------------------------------
# blocks/index: one line per ```sh block, fields split by \037: the block's file
# (blocks/NNN.sh), page, fence line, skip reason, instead command.
# blocks/inline: page, line and text of each inline code span.
# blocks/errors: broken fences and directives.
awk -v dir="$blocks" '
function err(msg) { print page ":" FNR ": " msg > (dir "/errors") }
function end_page() {
    flush_paragraph()
    if (in_fence) print page ":" fence_line ": this fence is never closed" > (dir "/errors")
    if (directive_line) print page ":" directive_line ": a docs-test comment must stand directly above a ```sh fence" > (dir "/errors")
}
function flush_paragraph(   rest, before, span, line) {
    rest = para
    while (match(rest, /`[^`]+`/)) {
        before = substr(rest, 1, RSTART - 1)
        span = substr(rest, RSTART + 1, RLENGTH - 2)
        line = para_line + gsub(/\n/, "", before)
        para_line = line + gsub(/\n/, " ", span)
        print page "\t" line "\t" span > (dir "/inline")
        rest = substr(rest, RSTART + RLENGTH)
    }
    para = ""
}
FNR == 1 { if (NR > 1) end_page(); page = FILENAME; in_fence = 0; output_of = ""; para = ""; skip = ""; instead = ""; directive_line = 0 }
!in_fence && /^ *```/ {
    flush_paragraph()
    in_fence = 1; fence_line = FNR
    lang = $0; sub(/^ *```/, "", lang); sub(/[ \t].*/, "", lang)
    indent = match($0, /`/) - 1
    if (lang == "")
        err("a fence without a tag: ```sh for commands this test runs, ```text for synopses and output")
    else if (lang ~ /^(bash|shell|console|shell-session|zsh)$/)
        err("```" lang ": tag commands ```sh, so that docs_commands runs them")
    if (directive_line && (directive_line != FNR - 1 || lang != "sh")) {
        err("a docs-test comment must stand directly above a ```sh fence")
        skip = ""; instead = ""
    }
    capture = ""
    if (lang == "text" && output_of != "")
        capture = output_of ".out"
    output_of = ""
    if (lang == "sh") {
        n++
        block = capture = sprintf("%s/%03d.sh", dir, n)
        printf "" > block
        if (instead != "" && skip == "")
            err("docs-test instead: needs a docs-test skip: line giving the reason")
        print block "\037" page "\037" FNR "\037" skip "\037" instead > (dir "/index")
    }
    skip = ""; instead = ""; directive_line = 0
    next
}
in_fence && /^ *```[ \t]*$/ {
    in_fence = 0
    if (capture != "") close(capture)
    output_of = lang == "sh" ? block : ""
    next
}
in_fence {
    if (capture != "")
        print substr($0, 1 + (substr($0, 1, indent) ~ /^ *$/ ? indent : 0)) > capture
    next
}
/^<!-- docs-test / {
    flush_paragraph()
    output_of = ""
    if (directive_line && directive_line != FNR - 1)
        err("a docs-test comment must stand directly above a ```sh fence")
    directive_line = FNR
    text = $0; sub(/^<!-- docs-test /, "", text)
    if (text !~ / -->$/) { err("a docs-test comment takes one line"); next }
    sub(/ -->$/, "", text)
    if (text ~ /^skip: ./) { sub(/^skip: /, "", text); skip = text }
    else if (text ~ /^instead: ./) { sub(/^instead: /, "", text); instead = text }
    else err("unknown docs-test comment (skip: REASON or instead: COMMAND)")
    next
}
/^[ \t]*$/ { flush_paragraph(); next }
{
    output_of = ""
    if (directive_line) { err("a docs-test comment must stand directly above a ```sh fence"); directive_line = 0 }
    if (para == "") { para = $0; para_line = FNR } else para = para "\n" $0
}
END { end_page() }
' "${pages[@]}"
touch "$blocks/index" "$blocks/inline" "$blocks/errors"

failures=0
fail() { echo "FAIL $*"; failures=$((failures + 1)); }
while IFS= read -r line; do fail "$line"; done < "$blocks/errors"

# --- Static checks: inline commands, skipped blocks ----------------------
mapfile -t nncc_options < <("$nncc" --help | grep -oE -- '(^|[^A-Za-z0-9-])--?[a-z][a-z-]*' | sed 's/^[^-]*//' | sort -u)
# check_command PAGE LINE TEXT: the repository paths TEXT names exist, and
# the options it gives nncc are nncc's. Words with a placeholder (NAME,
# DIR) or a glob are not paths.
check_command() {
    local page=$1 line=$2 in_nncc=0 word
    local -a words
    read -ra words <<< "$3"
    for word in "${words[@]}"; do
        word=${word//[\"\']/}
        case $word in
            '&&' | '||' | ';' | '|') in_nncc=0; continue ;;
            nncc | */nncc) in_nncc=1; continue ;;
        esac
        if [[ $word =~ ^(\./)?(models|scripts|bench|docs|tests|runtime|examples|compiler|ir|backends)/ ]] \
            && ! [[ $word =~ [A-Z]{2,}|[*?] ]] && [ ! -e "$sandbox/$word" ]; then
            fail "$page:$line: no file $word: $3"
        fi
        if [ $in_nncc = 1 ] && [[ $word =~ ^--?[a-z] ]]; then
            word=${word%%=*}
            [[ " ${nncc_options[*]} " == *" $word "* ]] || fail "$page:$line: nncc has no option $word: $3"
        fi
    done
}
checked=0
while IFS=$'\t' read -r page line span; do
    if [[ $span =~ (^|'&& '|'; ')([A-Z_]+=[^\ ]*\ )*(\./build/nncc|nncc|bash|sh|/usr/bin/python3|python3)(\ |$) ]]; then
        check_command "$page" "$line" "$span"
        checked=$((checked + 1))
    fi
done < "$blocks/inline"

# --- Documented output ---------------------------------------------------
# A ```text block after a ```sh block, with only blank lines between, shows
# its output. Each of its lines but `...` must be a line of the block's
# output, numbers aside (timings and accuracies vary): "loss: 0.3756" matches
# "loss: 0.3901". Spacing is not compared.
normalize() { sed -E 's/[0-9]+(\.[0-9]+)?(e[-+]?[0-9]+)?/#/g; s/[[:space:]]+/ /g; s/^ //; s/ $//' "$@"; }
compare_output() {
    local page=$1 fence=$2 block=$3 expected shown
    normalize "$block.log" > "$block.log.normalized"
    while IFS=$'\037' read -r expected shown; do
        [ -n "$expected" ] && [ "$expected" != ... ] || continue
        grep -qxF -- "$expected" "$block.log.normalized" \
            || fail "$page:$fence: the output shown after the block has a line the commands did not print: $shown"
    done < <(paste -d $'\037' <(normalize "$block.out") "$block.out")
    compared=$((compared + 1))
}

# --- Running the blocks --------------------------------------------------
# Line 1 of each script; the block's own line k is the script's line k + 1.
prologue='trap '\''echo "$LINENO" > "$DOCS_TEST_FAILED_AT"'\'' ERR; set -e -o pipefail'
ran=0 shortened=0 compared=0 skipped=()
while IFS=$'\037' read -r block page fence reason instead; do
    if [ -n "$reason" ]; then
        skipped+=("$page:$fence: $reason${instead:+ (ran instead: $instead)}")
        n=0
        while IFS= read -r cmd; do n=$((n + 1)); check_command "$page" $((fence + n)) "$cmd"; done < "$block"
        [ -n "$instead" ] || continue
        printf '%s\n' "$instead" > "$block"
        shortened=$((shortened + 1))
    fi
    { printf '%s\n' "$prologue"; cat "$block"; } > "$block.run"
    rm -f "$block.failed"
    start=$SECONDS status=0
    env DOCS_TEST_FAILED_AT="$block.failed" PATH="$build:/usr/sbin:/usr/bin:/sbin:/bin" \
        timeout 600 bash "$block.run" < /dev/null > "$block.log" 2>&1 || status=$?
    ran=$((ran + 1))
    if [ $status = 0 ]; then
        echo "ok   $page:$fence ($((SECONDS - start)) s)"
        [ -z "$reason" ] && [ -f "$block.out" ] && compare_output "$page" "$fence" "$block"
        continue
    fi
    if [ -s "$block.failed" ]; then
        at=$(($(cat "$block.failed") - 1))
        fail "$page:$((fence + at)): exit status $status: $(sed -n "${at}p" "$block")"
    elif [ $status = 124 ]; then
        fail "$page:$fence: the block ran out of time (600 s)"
    else    # no ERR trap: a failure before the last && of the last line, or bad syntax
        last=$(grep -n '[^[:space:]]' "$block" | tail -n 1)
        fail "$page:$((fence + ${last%%:*})): exit status $status: ${last#*:}"
    fi
    echo "  the block's last lines of output ($block.log):"
    tail -n 20 "$block.log" | sed 's/^/  | /'
done < "$blocks/index"

echo "docs_commands: ran $ran blocks from ${#pages[@]} pages ($shortened as a shortened equivalent); skipped ${#skipped[@]}:"
for s in "${skipped[@]}"; do echo "  $s"; done
echo "docs_commands: compared the output of $compared blocks with the output the docs show"
echo "docs_commands: checked $checked inline commands (paths exist, nncc options known)"
if [ $failures != 0 ]; then
    echo "docs_commands: $failures failure(s)"
    exit 1
fi
echo "docs_commands: every runnable command in the docs works"
