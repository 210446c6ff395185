#!/bin/sh
# Builds the cell-language fuzz harness (tests/fuzz/fuzz_cell.c) with clang's
# libFuzzer, AddressSanitizer and UndefinedBehaviorSanitizer, without OpenMP, and runs
# it on the seed corpus (tests/fuzz/corpus). Exits non-zero on a crash, a leak or a
# sanitizer report (libFuzzer stops at the first and writes the input to $OUT/).
#
#   tests/fuzz/run.sh                  20 seconds
#   tests/fuzz/run.sh 120              120 seconds
#   tests/fuzz/run.sh -runs=100000     a number of executions (any libFuzzer flags go through)
#   MODE=check tests/fuzz/run.sh       parser + checker only (cells/lang_*.c but lang_step.c, -DLANG_CHECK_ONLY)
#
# MODE=full (the default) also links the graph-building part of the library (graph/,
# ops/, cells/cell.c, cells/unroll.c; BLAS/LAPACK stubbed, no plan runs) and unrolls
# every cell the checker accepts. Needs clang and libclang-rt-14-dev
# (apt-get install -y clang libclang-rt-14-dev). OUT (default build-fuzz/) holds the
# binary, the growing corpus and crash inputs; the seed corpus is only read.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${OUT:-$ROOT/build-fuzz}
MODE=${MODE:-full}
CC=${CC:-clang}
command -v "$CC" >/dev/null 2>&1 || { echo "run.sh: $CC not found (apt-get install -y clang libclang-rt-14-dev)" >&2; exit 2; }

ARGS=""
case "${1:-}" in
    "") ARGS="-max_total_time=20" ;;
    -*) ARGS="$*" ;;
    *) SECS=$1; shift; ARGS="-max_total_time=$SECS $*" ;;
esac

mkdir -p "$OUT/obj-$MODE" "$OUT/corpus"
FLAGS="-g -O1 -std=c11 -D_POSIX_C_SOURCE=200809L -fno-omit-frame-pointer -fno-sanitize-recover=all \
-Wall -Wextra -Wno-unknown-pragmas -I$ROOT/include -I$ROOT/base -I$ROOT/ops -I$ROOT/graph -I$ROOT/cells"
# the cell language without its step function (the part that needs only the C library)
LANG_SRCS="cells/lang_lex.c cells/lang_parse.c cells/lang_check.c cells/lang_prog.c"
if [ "$MODE" = check ]; then
    FLAGS="$FLAGS -DLANG_CHECK_ONLY"
    SRCS="$LANG_SRCS tests/fuzz/fuzz_cell.c"
elif [ "$MODE" = full ]; then
    # cblas.h for ops/op_matmul.c (the harness stubs the functions themselves)
    for d in /usr/include/x86_64-linux-gnu/openblas-openmp /usr/include/x86_64-linux-gnu/openblas-pthread /usr/include/openblas; do
        [ -f "$d/cblas.h" ] && FLAGS="$FLAGS -I$d" && break
    done
    SRCS="$LANG_SRCS cells/lang_step.c cells/cell.c cells/unroll.c graph/graph.c graph/build.c graph/init.c $(cd "$ROOT" && ls ops/*.c) tests/fuzz/fuzz_cell.c"
else
    echo "run.sh: MODE must be full or check" >&2; exit 2
fi

OBJS=""
for s in $SRCS; do
    o="$OUT/obj-$MODE/$(echo "$s" | tr / _).o"
    $CC $FLAGS -fsanitize=fuzzer-no-link,address,undefined -c "$ROOT/$s" -o "$o"
    OBJS="$OBJS $o"
done
$CC -fsanitize=fuzzer,address,undefined $OBJS -lm -o "$OUT/fuzz_cell_$MODE"

# a dictionary of the language's words helps the mutator past the lexer
DICT="$OUT/cell.dict"
: >"$DICT"
# (and every elementwise op's name, from ops/elementwise_ops.def)
EW_NAMES=$(sed -n 's/^EW([A-Z_0-9]*, *\([a-z_0-9]*\),.*/\1/p' "$ROOT/ops/elementwise_ops.def")
for w in cell hidden weight vector state init const zeros uniform glorot orthogonal default H I \
         $EW_NAMES min max softmax log_softmax \
         row_mean row_var sum mean concat slice dropout matmul \
         embedding mse row_slice "->" "@" "h'" "c'" "(x)" " = " " : " "1e-5" "2*H" "I - 1" "#"; do
    printf '"%s"\n' "$w" >>"$DICT"
done

echo "run.sh: fuzzing ($MODE) with $ARGS"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# new inputs go to $OUT/corpus; the seed corpus is read only
# shellcheck disable=SC2086
"$OUT/fuzz_cell_$MODE" $ARGS -dict="$DICT" -print_final_stats=1 -artifact_prefix="$OUT/" "$OUT/corpus" "$ROOT/tests/fuzz/corpus"
