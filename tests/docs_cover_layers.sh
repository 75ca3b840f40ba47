#!/bin/sh
# docs_cover_layers.sh NNCC MODEL_FORMAT_MD: the layer reference cannot drift
# from the frontend. Every class `nncc --layers` lists (the compiler's own
# table) must be named in the doc as `Class`, and every argument of it as
# `argument`.
set -eu
doc=$2
missing=0
"$1" --layers > "${TMPDIR:-/tmp}/nncc-layers.$$"
while IFS= read -r line; do
    cls=${line%%:*}
    if ! grep -q "\`$cls\`\|### .*\b$cls\b" "$doc"; then
        echo "$doc does not document the layer class $cls"
        missing=1
    fi
    for arg in $(printf '%s\n' "${line#*:}" | tr ';' '\n' | sed 's/^ *//; s/ .*//' | grep .); do
        if ! grep -q "\`$arg\`" "$doc"; then
            echo "$doc does not document the argument $arg (of $cls)"
            missing=1
        fi
    done
done < "${TMPDIR:-/tmp}/nncc-layers.$$"
rm -f "${TMPDIR:-/tmp}/nncc-layers.$$"
[ "$missing" = 0 ] && echo "$doc documents every layer class and argument of nncc --layers"
