#!/bin/bash
# run_all.sh - recur's rnn_bench against its peers (oneDNN, PyTorch, the OpenBLAS sgemm
# floor), one program at a time, interleaved per config: for each config, ROUNDS rounds
# of [recur, oneDNN, PyTorch, sgemm floor] (the order rotates each round), then a
# side-by-side table of the medians over the rounds.
#
# usage: bench/run_all.sh [outdir]        (default /tmp/recur-bench-<date>)
# env:   CONFIGS  "s128 s512 l256 ptb tiny"   configs to run
#        THREADS  "2"            thread counts (e.g. "1 2")
#        ROUNDS   5              interleaved rounds per config (each program runs once per round)
#        MINT     2              seconds of timed steps per peer run (oneDNN, PyTorch)
#        BUDGET   2              seconds of timed steps per recur row (rnn_bench --budget)
#        PASSES   all            rnn_bench --passes: all | none | each
#        RECUR_ARGS ""           more rnn_bench options
#        BUILD    <repo>/build   recur's meson build folder
#        BIN      /tmp/peers-build  where ../shared/bench/build.sh puts the C/C++ peers
#        SKIP_PEERS=1            recur only
# Needs (Debian 12, as root):
#   apt-get install -y libopenblas0-openmp libopenblas-openmp-dev libdnnl-dev python3-torch python3-numpy
# Nothing else may run meanwhile (2 cores: any load collapses OpenMP spin-waiting). With
# the defaults it takes roughly 15-25 minutes per thread count (CONFIGS="ptb tiny": about 5).
set -u
D=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$D/.." && pwd)
SHARED=$(cd "$ROOT/../shared/bench" 2>/dev/null && pwd || echo "$ROOT/../shared/bench")
OUT=${1:-/tmp/recur-bench-$(date +%Y%m%d-%H%M%S)}
BUILD=${BUILD:-$ROOT/build}
BIN=${BIN:-/tmp/peers-build}
CONFIGS=${CONFIGS:-"s128 s512 l256 ptb tiny"}
THREADS=${THREADS:-2}
ROUNDS=${ROUNDS:-5}
MINT=${MINT:-2}
BUDGET=${BUDGET:-2}
PASSES=${PASSES:-all}
RECUR_ARGS=${RECUR_ARGS:-}
SKIP_PEERS=${SKIP_PEERS:-0}
OMPBLAS=/usr/lib/x86_64-linux-gnu/openblas-openmp
PY=/usr/bin/python3
declare -A CFG=( [s128]="50 32 128 128" [s512]="50 32 512 512" [l256]="100 64 256 256" [ptb]="35 20 200 200" [tiny]="50 1 32 32" )

die() { echo "run_all: $*" >&2; exit 1; }
for c in $CONFIGS; do [ -n "${CFG[$c]:-}" ] || die "unknown config '$c' (s128 s512 l256 ptb tiny)"; done

# ---- build recur's bench ----
if [ ! -f "$BUILD/build.ninja" ]; then
  meson setup "$BUILD" "$ROOT" || die "meson setup $BUILD failed"
fi
ninja -C "$BUILD" bench/rnn_bench || die "build failed (ninja -C $BUILD bench/rnn_bench)"
RB="$BUILD/bench/rnn_bench"

# ---- build the peers ----
HAVE_DNNL=0 HAVE_SGEMM=0 HAVE_TORCH=0
if [ "$SKIP_PEERS" != 1 ]; then
  if [ ! -x "$BIN/sgemm_bench" ] || [ ! -x "$BIN/dnnl_rnn_bench" ]; then
    BIN="$BIN" "$SHARED/build.sh" || echo "run_all: $SHARED/build.sh failed; building what can be built" >&2
    mkdir -p "$BIN"
    if [ ! -x "$BIN/sgemm_bench" ]; then  # build.sh wants the pthread OpenBLAS headers; the OpenMP ones do as well
      gcc -O2 -march=native -fopenmp -o "$BIN/sgemm_bench" "$SHARED/sgemm_bench.c" \
        -I/usr/include/x86_64-linux-gnu/openblas-openmp "$OMPBLAS/libopenblas.so.0" \
        -Wl,-rpath,"$OMPBLAS" -Wl,--enable-new-dtags ||
        echo "run_all: no sgemm_bench: apt-get install -y libopenblas0-openmp libopenblas-openmp-dev" >&2
    fi
    [ -x "$BIN/dnnl_rnn_bench" ] ||
      echo "run_all: no dnnl_rnn_bench: apt-get install -y libdnnl-dev, then rerun" >&2
  fi
  [ -x "$BIN/sgemm_bench" ] && HAVE_SGEMM=1
  [ -x "$BIN/dnnl_rnn_bench" ] && HAVE_DNNL=1
  if LD_LIBRARY_PATH=$OMPBLAS $PY -c "import torch" 2>/dev/null; then HAVE_TORCH=1
  else echo "run_all: no PyTorch for $PY: apt-get install -y python3-torch python3-numpy" >&2; fi
fi

mkdir -p "$OUT/raw" || die "cannot make $OUT"
{
  echo "# date: $(date -Is)"; echo "# host: $(lscpu | grep 'Model name' | sed 's/  */ /g'), nproc=$(nproc)"
  echo "# recur: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo '+dirty')"
  echo "# CONFIGS=$CONFIGS THREADS=$THREADS ROUNDS=$ROUNDS MINT=$MINT BUDGET=$BUDGET PASSES=$PASSES RECUR_ARGS=$RECUR_ARGS"
  echo "# env OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE-(unset)} OMP_NUM_THREADS=${OMP_NUM_THREADS-(unset)} RC_NUM_THREADS=${RC_NUM_THREADS-(unset)}"
  echo "# peers: sgemm=$HAVE_SGEMM dnnl=$HAVE_DNNL torch=$HAVE_TORCH"
  dpkg-query -W -f='# ${Package} ${Version}\n' libopenblas0-openmp libdnnl2 python3-torch gcc-12 2>/dev/null
} > "$OUT/env.txt"
cat "$OUT/env.txt"

# Collected rows (each prefixed with round, config, threads):
#   recur.tsv  rnn_bench --tsv rows     dnnl.tsv  dnnl_rnn_bench lines
#   torch.tsv  torch_rnn_bench lines    floor.tsv sgemm_bench floor lines (plus the cell)
: > "$OUT/recur.tsv"; : > "$OUT/dnnl.tsv"; : > "$OUT/torch.tsv"; : > "$OUT/floor.tsv"

prefix() { sed "s/^/$1\t$2\t$3\t/"; }

job_recur() {  # round cfg threads
  local f="$OUT/raw/recur.$2.t$3.r$1.tsv"
  "$RB" --threads "$3" --configs "$2" --cells lstm,gru,custom,mut1 --passes "$PASSES" --budget "$BUDGET" \
    --tsv "$f" $RECUR_ARGS > "$OUT/raw/recur.$2.t$3.r$1.txt" 2>&1 || echo "run_all: rnn_bench failed, see $OUT/raw/recur.$2.t$3.r$1.txt" >&2
  [ -f "$f" ] && grep -v '^#' "$f" | grep -v '^mode' | prefix "$1" "$2" "$3" >> "$OUT/recur.tsv"
  [ -f "$f" ] && grep '^#peak' "$f" | prefix "$1" "$2" "$3" >> "$OUT/peak.tsv"
}
job_dnnl() {
  [ $HAVE_DNNL = 1 ] || return 0
  set -- "$1" "$2" "$3" ${CFG[$2]}
  for cell in lstm gru; do
    "$BIN/dnnl_rnn_bench" "$3" $cell "$4" "$5" "$6" "$7" "$MINT" 2>/dev/null | prefix "$1" "$2" "$3" >> "$OUT/dnnl.tsv"
  done
}
job_torch() {
  [ $HAVE_TORCH = 1 ] || return 0
  if [ "$3" = 1 ]; then
    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 LD_LIBRARY_PATH=$OMPBLAS $PY "$SHARED/torch_rnn_bench.py" --threads 1 \
      --configs "$2" --min-time "$MINT" --tag ompBLAS
  else
    LD_LIBRARY_PATH=$OMPBLAS $PY "$SHARED/torch_rnn_bench.py" --threads "$3" --configs "$2" --min-time "$MINT" --tag ompBLAS
  fi 2>/dev/null | grep -v '^#' | prefix "$1" "$2" "$3" >> "$OUT/torch.tsv"
}
job_floor() {
  [ $HAVE_SGEMM = 1 ] || return 0
  set -- "$1" "$2" "$3" ${CFG[$2]}
  local H=$7
  for cg in lstm:$((4 * H)) gru:$((3 * H)) mut1:$((2 * H)); do
    "$BIN/sgemm_bench" "$3" floor "$4" "$5" "$6" "$7" "${cg#*:}" | grep ^floor |
      prefix "$1" "$2" "$3" | sed "s/^/${cg%%:*}\t/" >> "$OUT/floor.tsv"
  done
}

: > "$OUT/peak.tsv"
JOBS=(job_recur job_dnnl job_torch job_floor)
for c in $CONFIGS; do
  for th in $THREADS; do
    for ((r = 1; r <= ROUNDS; r++)); do
      echo "== $c threads=$th round $r/$ROUNDS $(date +%T)" >&2
      for ((j = 0; j < ${#JOBS[@]}; j++)); do   # rotate the order so no program always goes first
        ${JOBS[$(((j + r - 1) % ${#JOBS[@]}))]} "$r" "$c" "$th"
      done
    done
  done
done

# ---- side-by-side table ----
$PY - "$OUT" <<'EOF' | tee "$OUT/summary.txt"
import statistics, sys, os
out = sys.argv[1]
def rows(name):
    p = os.path.join(out, name)
    return [l.rstrip("\n").split("\t") for l in open(p) if l.strip() and not l.startswith("#")] if os.path.exists(p) else []
RCOLS = ("mode cell cfg T B I H threads passes status reps ms_med ms_min ms_max x_all gemm_gflop gemm_gflops op_gflop "
         "op_gflops peak_gflops peak_frac arena_mb hwm_mb maxrss_mb tape build_ms extra_name extra loss0 note").split()
# recur: round cfg threads + RCOLS
recur = {}
for r in rows("recur.tsv"):
    d = dict(zip(RCOLS, r[3:]))
    if d.get("status") != "ok" or d.get("mode") != "main": continue
    recur.setdefault((r[1], int(r[2]), d["cell"], d["passes"]), []).append((float(d["ms_med"]), float(d["gemm_gflop"])))
peak = {}   # peak.tsv: round cfg threads "#peak" thr med best
for l in (open(os.path.join(out, "peak.tsv")) if os.path.exists(os.path.join(out, "peak.tsv")) else []):
    f = l.rstrip("\n").split("\t")
    if len(f) >= 6: peak.setdefault(int(f[4]), []).append(float(f[5]))
# dnnl: round cfg threads cell T B I H threads ms_med ms_min ms_max n gflops
dnnl = {}
for r in rows("dnnl.tsv"):
    if len(r) >= 10: dnnl.setdefault((r[1], int(r[2]), r[3]), []).append(float(r[9]))
# torch: round cfg threads model cfg T B I H threads ms_med ...
torch = {}
for r in rows("torch.tsv"):
    if len(r) >= 11: torch.setdefault((r[1], int(r[2]), r[3]), []).append(float(r[10]))
# floor: cell round cfg threads floor_x T B I H G ms_med ...
floor = {}
for r in rows("floor.tsv"):
    if len(r) >= 11: floor.setdefault((r[2], int(r[3]), r[0], r[4]), []).append(float(r[10]))

def med(v): return statistics.median(v) if v else None
def cell_str(v):
    if not v: return "-"
    m = statistics.median(v)
    spread = (max(v) - min(v)) / m * 100 if m else 0
    return "%.3f ±%.0f%%" % (m, spread / 2)
def ratio(a, b): return "%.2f" % (a / b) if a and b else "-"

PEER = {  # recur cell -> (oneDNN cell, torch model, torch-jit model, floor cell)
    "lstm": ("lstm", "lstm", None, "lstm"),
    "gru": ("gru", "gru", None, "gru"),
    "custom": ("lstm", "custom_lstm", "custom_lstm_jit", "lstm"),
    "mut1": (None, None, None, "mut1"),
}
print()
for t in sorted(peak):
    print("# sgemm 2048^3 peak measured by rnn_bench at %d thread(s): %.1f GFLOP/s (median over runs)" % (t, med(peak[t])))
print("# ms per training step: median over rounds of each run's median, ± half the range over rounds.")
print("# oneDNN* = oneDNN's fused LSTM shown beside the custom cell (the ceiling it should approach).")
print("# floor = sgemm_bench floor, time-batched order (the GEMMs of the step alone, plain sgemm).")
print("# ratios: recur ms / peer ms (> 1: recur slower).")
hdr = ["cfg", "thr", "cell", "passes", "recur ms", "GF/s", "oneDNN ms", "torch ms", "torch-jit ms", "floor ms",
       "/oneDNN", "/torch", "/floor"]
table = []
cfg_order = {c: i for i, c in enumerate(["s128", "s512", "l256", "ptb", "tiny"])}
cell_order = {c: i for i, c in enumerate(["lstm", "gru", "custom", "mut1"])}
for (cfg, th, cell, passes) in sorted(recur, key=lambda k: (cfg_order.get(k[0], 9), k[1], cell_order.get(k[2], 9), k[3] != "all-on", k[3])):
    v = recur[(cfg, th, cell, passes)]
    ms = [x[0] for x in v]
    rm = med(ms)
    gf = v[0][1] / (rm * 1e-3) if rm else 0
    dc, tm, tj, fc = PEER.get(cell, (None, None, None, cell))
    dv = dnnl.get((cfg, th, dc)) if dc else None
    tv = torch.get((cfg, th, tm)) if tm else None
    jv = torch.get((cfg, th, tj)) if tj else None
    fv = floor.get((cfg, th, fc, "floor_batched"))
    table.append([cfg, str(th), cell, passes, cell_str(ms), "%.1f" % gf,
                  (cell_str(dv) + ("*" if cell == "custom" and dv else "")) if dv else "-",
                  cell_str(tv), cell_str(jv), cell_str(fv), ratio(rm, med(dv)), ratio(rm, med(tv)), ratio(rm, med(fv))])
w = [max(len(h), *(len(r[i]) for r in table)) if table else len(h) for i, h in enumerate(hdr)]
fmt = lambda r: "  ".join(s.ljust(w[i]) if i < 4 else s.rjust(w[i]) for i, s in enumerate(r))
print(fmt(hdr))
for r in table: print(fmt(r))
with open(os.path.join(out, "summary.tsv"), "w") as f:
    f.write("\t".join(hdr) + "\n")
    for r in table: f.write("\t".join(r) + "\n")
EOF
echo "results in $OUT (summary.txt, summary.tsv; raw rows in recur/dnnl/torch/floor.tsv)" >&2
