#!/bin/sh
# How recur's speed holds up when other processes are busy on the same cores (a shared
# workstation or CI runner), for each OpenMP wait setting and thread count, in one run.
#
#   bench/contention.sh [OUT.tsv]
#
# For BUSY = 0, 1, 2 competing busy processes (each a shell loop that never sleeps),
# every SETTING times every WORKLOAD; rounds rotate the order of the settings so drift
# over minutes does not favour one. Printed: the median over rounds of each cell, and
# its ratio to "recur" with no busy process (the idle machine's default). A ratio
# below 1 is faster than the idle default.
#
# Workloads (ms per training step; median of rnn_bench's timed steps, or wall time per
# update of recur train):
#   s128   rnn_bench LSTM T=50 B=32 I=128 H=128 (the benchmark table's s128)
#   ptb    rnn_bench LSTM T=35 B=20 I=200 H=200 (the benchmark table's ptb)
#   demo   recur train, the demo's model (2-layer LSTM, H=128, B=50, T=50) on a
#          generated corpus, training seconds per update over STEPS updates (metrics.csv)
# Settings: NAME:THREADS:ENV (THREADS "auto" = recur's own choice; ENV "-" = none):
#   recur      what a user of recur train gets with nothing set: the cores free at
#              start (rnn_bench --threads auto makes the same choice)
#   all        all (2) cores with libgomp's defaults: spin 300000 times (about 3 ms)
#              before sleeping (recur's default before it looked at the machine)
#   active     2 threads, OMP_WAIT_POLICY=active (spin without end)
#   passive    2 threads, OMP_WAIT_POLICY=passive (sleep at once)
#   spin10k    2 threads, GOMP_SPINCOUNT=10000
#   t1         1 thread
# Environment: ROUNDS (5), BUSY ("0 1 2"), WORKLOADS ("s128 ptb demo"), STEPS (60),
# SETTINGS (the list above), BUILD (build). Never run it beside another benchmark.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
BUILD=${BUILD:-build}
ROUNDS=${ROUNDS:-5}
BUSY=${BUSY:-"0 1 2"}
WORKLOADS=${WORKLOADS:-"s128 ptb demo"}
STEPS=${STEPS:-60}
SETTINGS=${SETTINGS:-"recur:auto:- all:2:- active:2:OMP_WAIT_POLICY=active passive:2:OMP_WAIT_POLICY=passive spin10k:2:GOMP_SPINCOUNT=10000 t1:1:-"}
out=${1:-$BUILD/contention.tsv}
bench=$BUILD/bench/rnn_bench
recur=$BUILD/tools/recur
[ -x "$bench" ] && [ -x "$recur" ] || { echo "contention.sh: build first (ninja -C $BUILD)" >&2; exit 1; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/recur-contention.XXXXXX")
busy_pids=""
stop_busy() { for p in $busy_pids; do kill "$p" 2>/dev/null || true; done; busy_pids=""; }
trap 'stop_busy; rm -rf "$tmp"' EXIT INT TERM
start_busy() {   # start_busy N
    i=0
    while [ "$i" -lt "$1" ]; do
        sh -c 'while :; do :; done' &
        busy_pids="$busy_pids $!"
        i=$((i + 1))
    done
}

# A corpus for the demo workload: words drawn by a fixed LCG (no package needed).
awk 'BEGIN { s = 12345; split("the of and to in is that it was for on are with as his they be at one have this from or had by word but what some we can out other were all there when up use your how said an each she which do their time if will way about many then them write would like so these her long make thing see him two has look more day could go come did number sound no most people my over know water than call first who may down side been now find", w, " ");
             for (l = 0; l < 20000; l++) { line = ""; for (k = 0; k < 9; k++) { s = (s * 1103515245 + 12345) % 2147483648; line = line (k ? " " : "") w[1 + int(s / 2147483648 * 100)] } print line } }' >"$tmp/corpus.txt"

# measure WORKLOAD THREADS ENV -> prints "ms threads" (ms per step, or "nan"; the threads
# the run used, which for "auto" is recur's choice)
measure() {
    wl=$1 thr=$2 envs=$3
    set -- env -u RC_NUM_THREADS
    [ "$envs" != "-" ] && set -- env -u RC_NUM_THREADS "$envs"
    targ="--threads $thr"
    # recur train's own choice is its default: no option (and no RC_NUM_THREADS)
    [ "$thr" = auto ] && [ "$wl" = demo ] && targ=""
    case $wl in
        s128 | tiny | ptb | s512 | l256)
            # shellcheck disable=SC2086
            "$@" "$bench" $targ --cells lstm --configs "$wl" --no-peak --budget 2 --tsv "$tmp/r.tsv" >/dev/null 2>&1 || { echo nan -; return; }
            awk -F'\t' '$1 != "mode" && $1 !~ /^#/ && $10 == "ok" { print $12, $8; exit }' "$tmp/r.tsv" ;;
        demo)
            rm -rf "$tmp/run"
            # shellcheck disable=SC2086
            "$@" "$recur" train --data "$tmp/corpus.txt" --out "$tmp/run" --steps "$STEPS" --eval-every 100000 $targ \
                >"$tmp/train.log" 2>&1 || { echo nan -; return; }
            # the last training row of metrics.csv: updates so far and seconds of training
            thr=$(sed -n 's/.* \([0-9]*\) threads.*/\1/p' "$tmp/train.log" | head -n 1)
            awk -F, -v thr="${thr:--}" '$1 == "train" { s = $2; e = $NF } END { if (s > 0) printf "%.3f %s\n", 1000 * e / s, thr; else print "nan -" }' \
                "$tmp/run/metrics.csv" ;;
    esac
}

echo "# contention benchmark: $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, git $(git rev-parse --short HEAD 2>/dev/null || echo ?)" | tee "$out"
printf "busy\tsetting\tworkload\tround\tms\tthreads\n" >>"$out"
r=1
while [ "$r" -le "$ROUNDS" ]; do
    for b in $BUSY; do
        start_busy "$b"
        sleep 0.5
        # rotate the settings' order by the round
        n=$(echo $SETTINGS | wc -w)
        k=0
        while [ "$k" -lt "$n" ]; do
            idx=$(( (k + r - 1) % n + 1 ))
            s=$(echo $SETTINGS | cut -d' ' -f"$idx")
            name=${s%%:*}; rest=${s#*:}; thr=${rest%%:*}; envs=${rest#*:}
            for wl in $WORKLOADS; do
                res=$(measure "$wl" "$thr" "$envs")
                printf "%s\t%s\t%s\t%s\t%s\t%s\n" "$b" "$name" "$wl" "$r" "${res% *}" "${res#* }" >>"$out"
            done
            k=$((k + 1))
        done
        stop_busy
        wait 2>/dev/null || true
    done
    echo "round $r of $ROUNDS done" >&2
    r=$((r + 1))
done

# The table: median over rounds, and the ratio to the idle machine's recur default.
awk -F'\t' -v settings="$SETTINGS" -v workloads="$WORKLOADS" -v busy="$BUSY" '
    NR <= 2 { next }
    { k = $1 SUBSEP $2 SUBSEP $3; v[k, ++n[k]] = $5; th[k] = th[k] (th[k] == "" ? "" : ",") $6 }
    function median(k,    i, j, m, a, t) {
        m = 0
        for (i = 1; i <= n[k]; i++) if (v[k, i] != "nan" && v[k, i] != "") a[++m] = v[k, i] + 0
        if (m == 0) return -1
        for (i = 1; i <= m; i++) for (j = i + 1; j <= m; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
        return m % 2 ? a[(m + 1) / 2] : (a[m / 2] + a[m / 2 + 1]) / 2
    }
    END {
        ns = split(settings, S, " "); nw = split(workloads, W, " "); nb = split(busy, B, " ")
        printf "\n| busy | setting |"
        for (w = 1; w <= nw; w++) printf " %s ms | ratio |", W[w]
        printf " threads used (per round and workload) |\n|---|---|"
        for (w = 1; w <= nw; w++) printf "---|---|"
        printf "---|"
        printf "\n"
        for (b = 1; b <= nb; b++) for (s = 1; s <= ns; s++) {
            split(S[s], p, ":"); name = p[1]
            printf "| %s | %s |", B[b], name
            for (w = 1; w <= nw; w++) {
                m = median(B[b] SUBSEP name SUBSEP W[w]); base = median(B[1] SUBSEP "recur" SUBSEP W[w])
                if (m < 0) printf " – | – |"
                else if (base > 0) printf " %.2f | %.2f |", m, m / base
                else printf " %.2f | – |", m
            }
            t = ""
            for (w = 1; w <= nw; w++) t = t (w > 1 ? " " : "") th[B[b] SUBSEP name SUBSEP W[w]]
            printf " %s |\n", t
        }
    }' "$out"
