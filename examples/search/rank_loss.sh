#!/bin/bash
# A rank lost mid-search: the same search twice on two ranks, once uninterrupted and once
# with rank 1 killed (SIGKILL) once 10 rows are written (a batch at a time) under Open MPI's orte_enable_recovery, then
# the rows compared by id (every field but the timings). Prints both wall times.
# usage: examples/search/rank_loss.sh [OUT_DIR]   (from the checkout, once ./do.sh test has built
# build/ with MPI; it installs Open MPI)
set -u
R=${RECUR:-$(pwd)/build/tools/recur}
OUT=${1:-/tmp/recur-rank-loss}
ROOT=; [ "$(id -u)" = 0 ] && ROOT=--allow-run-as-root
P="--tasks arith --params 20000 --seed-cells lstm,gru,mut1,mut2,mut3 --budget 30 --steps 150 --lrs 1e-2,3e-2
   --promote-steps 600 --promote-seeds 3 --test 256 --population 20 --batch-candidates 8 --seed 1 --threads 1
   --progress 0"
rm -rf "$OUT" && mkdir -p "$OUT"
t0=$(date +%s.%N)
mpirun $ROOT -np 2 "$R" search --out "$OUT/a" $P >"$OUT/a.out" 2>&1 || { cat "$OUT/a.out"; exit 1; }
t1=$(date +%s.%N)
mpirun $ROOT --mca orte_enable_recovery 1 -np 2 "$R" search --out "$OUT/b" $P --rank-timeout 30 \
    >"$OUT/b.out" 2>"$OUT/b.err" &
mp=$!
while [ "$(cat "$OUT/b/candidates.jsonl" 2>/dev/null | wc -l)" -lt 10 ]; do sleep 0.2; done
for p in $(pgrep -P $mp); do
    if tr '\0' '\n' <"/proc/$p/environ" | grep -qx "OMPI_COMM_WORLD_RANK=1"; then
        kill -9 "$p" && echo "killed rank 1 after $(wc -l <"$OUT/b/candidates.jsonl") rows"
    fi
done
wait $mp
t2=$(date +%s.%N)
grep "recur search" "$OUT/b.err"
grep ": done" "$OUT/b.out" || { echo "the search with a lost rank did not finish"; exit 1; }
printf 'uninterrupted %.1f s; rank 1 killed %.1f s (--rank-timeout 30)\n' "$(echo "$t1 - $t0" | bc)" \
    "$(echo "$t2 - $t1" | bc)"
python3 - "$OUT" <<'PY'
import json, sys
def rows(d):
    rs = sorted((json.loads(l) for l in open(d + '/candidates.jsonl')), key=lambda r: r['id'])
    return [{k: v for k, v in r.items() if k not in ('wall_s', 'finished')} for r in rs]
a, b = rows(sys.argv[1] + '/a'), rows(sys.argv[1] + '/b')
print('rows: %d and %d, %s' % (len(a), len(b), 'equal but for timings' if a == b else 'DIFFERENT'))
sys.exit(a != b)
PY
