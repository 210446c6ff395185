#!/bin/sh
# Writes help2man's include file for recur(1): a section per command with that
# command's own --help, so the manual page is made from what the program says and
# cannot go stale.   tools/man_include.sh RECUR OUT
set -eu
recur=$1
out=$2
roff() { sed -e 's/\\/\\e/g' -e "s/^\\([.']\\)/\\\\\\&\\1/"; }   # backslashes; a leading . or '
{
    echo "[DESCRIPTION]"
    echo "Trains, evaluates, samples, inspects, compares and searches recurrent neural networks"
    echo "whose cells are graphs of primitive ops (see /usr/share/doc/recur or the README)."
    echo "Each command below lists its options with their defaults."
    for cmd in train eval align sample plot inspect compare search "generate pen" "generate lines"; do
        echo ".SS \"recur $cmd\""
        echo ".nf"
        # shellcheck disable=SC2086
        "$recur" $cmd --help 2>&1 | roff
        echo ".fi"
    done
    echo "[ENVIRONMENT]"
    echo ".TP"
    echo ".B RC_NUM_THREADS"
    echo "Threads when --threads is not given (0: all cores); without it the commands take the cores free at start."
    echo ".TP"
    echo ".B RECUR_CELL_LIB"
    echo "The folder of the cell library (.cell files); by default the installed one."
    echo "[FILES]"
    echo "The cell library and where it is looked for:"
    echo ".nf"
    "$recur" info 2>&1 | roff
    echo ".fi"
} >"$out"
