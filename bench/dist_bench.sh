#!/bin/bash
# dist_bench.sh - the data-parallel speed-up of `recur train` (issue 12 item 4): a fixed
# number of updates of one fixed configuration, run as
#   (a) one process with 2 threads:        recur train ... --threads 2
#   (b) 2 processes with 1 thread each:    mpirun -np 2 recur train ... --threads 1
# in alternating rounds (a b, b a, a b, ...), printing each run's training tokens/s
# (updates x batch x seq over the training time the run logs in metrics.csv: setup and
# data loading excluded) and the medians' ratio b / a. A benchmark, not a test.
#
# usage: bench/dist_bench.sh [outdir]           (default /tmp/recur-dist-bench-<date>)
# env:   ROUNDS 3        rounds (each runs a and b once)
#        STEPS  60       updates per run
#        DATA   /usr/share/games/fortunes   the corpus (Debian package fortunes)
#        ARGS   "--cell lstm --layers 2 --hidden 256 --batch 32 --seq 50"   the model and batch
#        BUILD  <repo>/build                  recur's meson build folder (built with MPI)
# Nothing else should run meanwhile: the machine has 2 cores and both variants use both.
set -u
D=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$D/.." && pwd)
OUT=${1:-/tmp/recur-dist-bench-$(date +%Y%m%d-%H%M%S)}
BUILD=${BUILD:-$ROOT/build}
ROUNDS=${ROUNDS:-3}
STEPS=${STEPS:-60}
DATA=${DATA:-/usr/share/games/fortunes}
ARGS=${ARGS:-"--cell lstm --layers 2 --hidden 256 --batch 32 --seq 50"}
RECUR=$BUILD/tools/recur
[ -x "$RECUR" ] || { echo "dist_bench: no $RECUR (ninja -C $BUILD)" >&2; exit 1; }
command -v mpirun >/dev/null || { echo "dist_bench: no mpirun (apt-get install openmpi-bin libopenmpi-dev)" >&2; exit 1; }
ROOTARG=""
[ "$(id -u)" = 0 ] && ROOTARG="--allow-run-as-root"
mkdir -p "$OUT"

B=$(echo "$ARGS" | sed -n 's/.*--batch \([0-9]*\).*/\1/p'); B=${B:-32}
T=$(echo "$ARGS" | sed -n 's/.*--seq \([0-9]*\).*/\1/p'); T=${T:-50}

# one run: tokens/s from the last training row's elapsed_s (the last column) in metrics.csv
run() {   # run a|b ROUND
    local v=$1 k=$2 dir="$OUT/$1-$2" log="$OUT/$1-$2.log"
    rm -rf "$dir"
    local common="train --data $DATA --out $dir $ARGS --steps $STEPS --progress 0 --sample 0 --save-every 0 --eval-every 0 --seed 1"
    if [ "$v" = a ]; then
        "$RECUR" $common --threads 2 >"$log" 2>&1
    else
        mpirun $ROOTARG -np 2 "$RECUR" $common --threads 1 >"$log" 2>&1
    fi || { echo "dist_bench: run $v-$k failed (see $log)" >&2; tail -5 "$log" >&2; exit 1; }
    local el
    el=$(grep '^train,' "$dir/metrics.csv" | tail -n 1 | awk -F, '{print $NF}')
    awk -v s="$STEPS" -v b="$B" -v t="$T" -v e="$el" 'BEGIN { printf "%.0f\n", s * b * t / e }'
}

median() { sort -g | awk '{ x[NR] = $1 } END { print (NR % 2) ? x[(NR + 1) / 2] : (x[NR / 2] + x[NR / 2 + 1]) / 2 }'; }

echo "dist_bench: $ARGS, $STEPS updates per run, $ROUNDS rounds, data $DATA, out $OUT"
echo "commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null), $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores"
: >"$OUT/a.tps"
: >"$OUT/b.tps"
for k in $(seq 1 "$ROUNDS"); do
    if [ $((k % 2)) = 1 ]; then order="a b"; else order="b a"; fi
    for v in $order; do
        tps=$(run "$v" "$k") || exit 1
        echo "$tps" >>"$OUT/$v.tps"
        if [ "$v" = a ]; then what="1 process x 2 threads"; else what="2 processes x 1 thread (mpirun)"; fi
        printf "round %d  %-34s %8s tokens/s\n" "$k" "$what" "$tps"
    done
done
ma=$(median <"$OUT/a.tps")
mb=$(median <"$OUT/b.tps")
printf "median: 1 process x 2 threads %.0f tokens/s, mpirun -np 2 x 1 thread %.0f tokens/s, ratio (mpirun / threads) %.3f\n" \
    "$ma" "$mb" "$(awk -v a="$ma" -v b="$mb" 'BEGIN { print b / a }')"
