#!/bin/sh
# man_matches_help.sh NNCC MANPAGE: every option `nncc --help` lists is
# documented in the man page (roff writes '-' as '\-'), so the two cannot drift.
set -eu
missing=0
for opt in $("$1" --help | grep -o -- '--[a-z][a-z-]*' | sort -u); do
    roff=$(printf '%s' "$opt" | sed 's/-/\\\\-/g')
    if ! grep -q -- "$roff" "$2"; then
        echo "man page $2 lacks $opt (listed by nncc --help)"
        missing=1
    fi
done
[ "$missing" = 0 ] && echo "man page documents every option of nncc --help"
