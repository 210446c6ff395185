#!/bin/sh
# ctc_compare.sh — recur's rc_ctc beside PyTorch's nn.CTCLoss on the CPU: runs
# bench/ctc_bench (recur) and then bench/ctc_torch.py (PyTorch) with the same options,
# on the same inputs (the same generator in both), and prints per shape, batch and
# thread count both medians, the ratio PyTorch / recur (above 1: recur faster),
# warp-ctc's published 40-thread figure, and both losses with their relative
# difference as a correctness check ("ok" within 1e-5, else "DIFFER", and the
# script's status is 1).
#
# usage: bench/ctc_compare.sh [options of ctc_bench / ctc_torch.py]
#   e.g. bench/ctc_compare.sh --threads 2 --B 128 --shapes a28 --reps 20
# Environment: BUILD (the build folder, default build), PYTHON (default
# /usr/bin/python3), TORCH_LD (LD_LIBRARY_PATH for PyTorch: the OpenMP OpenBLAS,
# default /usr/lib/x86_64-linux-gnu/openblas-openmp). Timing is only meaningful on a
# quiet machine.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
build=${BUILD:-$root/build}
python=${PYTHON:-/usr/bin/python3}
torch_ld=${TORCH_LD:-/usr/lib/x86_64-linux-gnu/openblas-openmp}
bench=$build/bench/ctc_bench
[ -x "$bench" ] || { echo "ctc_compare.sh: $bench not built (ninja -C $build bench/ctc_bench)" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM

"$bench" "$@" > "$tmp/recur.txt"
LD_LIBRARY_PATH=$torch_ld "$python" "$here/ctc_torch.py" "$@" > "$tmp/torch.txt"

# Rows: shape T L A B thr | median min max | loss | warp_ms
awk -v recur="$tmp/recur.txt" '
BEGIN {
    while ((getline line < recur) > 0) {
        if (line ~ /^#/ || line ~ /^shape/) continue
        n = split(line, f, " ")
        key = f[1] " " f[2] " " f[3] " " f[4] " " f[5] " " f[6]
        rm[key] = f[8]; rl[key] = f[12]; rw[key] = f[14]
        order[++nk] = key
    }
    printf "%-6s %4s %3s %5s %4s %3s | %10s %10s %8s | %8s | %16s %16s %9s\n", "shape", "T", "L", "A", "B", "thr",
           "recur_ms", "torch_ms", "torch/rc", "warp_ms", "recur_loss", "torch_loss", "rel_diff"
    bad = 0
}
/^#/ || /^shape/ { next }
{
    key = $1 " " $2 " " $3 " " $4 " " $5 " " $6
    if (!(key in rm)) next
    tm = $8; tl = $12
    d = rl[key] - tl; if (d < 0) d = -d
    s = tl < 0 ? -tl : tl; rel = s > 0 ? d / s : d
    ok = (rl[key] ~ /^-?[0-9]/ && tl ~ /^-?[0-9]/ && rel <= 1e-5) ? "ok" : "DIFFER"
    if (ok != "ok") bad = 1
    printf "%-6s %4s %3s %5s %4s %3s | %10.3f %10.3f %8.2f | %8s | %16s %16s %9.2e %s\n", $1, $2, $3, $4, $5, $6,
           rm[key], tm, tm / rm[key], rw[key], rl[key], tl, rel, ok
}
END { exit bad }
' "$tmp/torch.txt"
