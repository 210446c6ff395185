#!/bin/sh
# Builds a libFuzzer harness (tests/fuzz/fuzz_NAME.c) with clang's libFuzzer,
# AddressSanitizer and UndefinedBehaviorSanitizer, without OpenMP and with BLAS
# stubbed, and runs it on its seed corpus (tests/fuzz/corpus-NAME/). Exits non-zero
# on a crash, a leak or a sanitizer report (libFuzzer stops at the first and writes
# the input to $OUT/).
#
#   tests/fuzz/run.sh                       the cell language, 20 seconds
#   tests/fuzz/run.sh NAME                  harness NAME, 20 seconds
#   tests/fuzz/run.sh NAME 120              120 seconds
#   tests/fuzz/run.sh NAME -runs=100000     a number of executions (any libFuzzer flags go through)
#   tests/fuzz/run.sh all 10                every harness in turn, 10 seconds each
#   MODE=check tests/fuzz/run.sh cell       parser + checker only (cells/lang_*.c but lang_step.c, -DLANG_CHECK_ONLY)
#
# Harnesses (each feeds its input to the real loader, through a temporary file):
#   cell      the cell language (cells/lang_*.c; MODE=full also unrolls what the checker accepts)
#   ckpt      checkpoints: train/ckpt.c's reader and tools/run_ckpt.c's readers and run_load
#   npy       NumPy files (cells/npy.c)
#   music     polyphonic music JSON (train/data_seq.c)
#   csv       CSV time series (train/data_seq.c)
#   classify  labelled text, classes and tags (train/data_seq.c)
#   corpus    text corpora, characters and words, and vocabulary files (train/data_text.c)
#   config    the recur command's config files (tools/config.c)
#   decode    error rates on arbitrary bytes (UTF-8, words) and the CTC decoders on
#             arbitrary small logits and transcripts (decode/; no file: the bytes go in directly)
#   pen       pen trajectories and their transcripts, NAME.pen + NAME.gt.txt (train/data_pen.c)
#   lines     line images for OCR: a PNG + .gt.txt folder (train/data_lines.c, base/pngio.c's
#             libpng reader, base/resample.c); built with libpng when pkg-config finds it
# Each prints libFuzzer's final statistics; a last line "fuzz NAME: N executions"
# gives stat::number_of_executed_units. Needs clang and libclang-rt-14-dev
# (apt-get install -y clang libclang-rt-14-dev libomp-14-dev). OUT (default build-fuzz/) holds the
# objects, the binaries, the growing corpora (corpus-NAME/) and crash inputs; the seed
# corpora are only read. Objects are rebuilt when their source or any header changed.
set -eu
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
OUT=${OUT:-$ROOT/build-fuzz}
MODE=${MODE:-full}
CC=${CC:-clang}
ALL="cell ckpt npy music csv classify corpus config decode pen lines"
command -v "$CC" >/dev/null 2>&1 || { echo "run.sh: $CC not found (apt-get install -y clang libclang-rt-14-dev libomp-14-dev)" >&2; exit 2; }
# the library's sources include omp.h; clang's own comes with libomp-14-dev (gcc's is not for clang)
echo '#include <omp.h>' | "$CC" -E -x c - >/dev/null 2>&1 ||
    { echo "run.sh: $CC finds no omp.h (apt-get install -y libomp-14-dev)" >&2; exit 2; }

NAME=cell
case "${1:-}" in
    all) NAME=all; shift ;;
    "" | -* | [0-9]*) ;;
    *) for n in $ALL; do [ "$1" = "$n" ] && NAME=$1; done
       [ "$NAME" = "$1" ] || { echo "run.sh: unknown harness '$1' (one of: $ALL, all)" >&2; exit 2; }
       shift ;;
esac
case "${1:-}" in
    "") ARGS="-max_total_time=20" ;;
    -*) ARGS="$*" ;;
    *) SECS=$1; shift; ARGS="-max_total_time=$SECS $*" ;;
esac

FLAGS="-g -O1 -std=c11 -D_POSIX_C_SOURCE=200809L -fno-omit-frame-pointer -fno-sanitize-recover=all \
-Wall -Wextra -Wno-unknown-pragmas -Wno-missing-field-initializers"
for d in include base ops graph autodiff cells decode train tools; do FLAGS="$FLAGS -I$ROOT/$d"; done
# cblas.h for ops/op_matmul.c and base/runtime.c (the functions themselves are stubbed)
for d in /usr/include/x86_64-linux-gnu/openblas-openmp /usr/include/x86_64-linux-gnu/openblas-pthread /usr/include/openblas; do
    [ -f "$d/cblas.h" ] && FLAGS="$FLAGS -I$d" && break
done
LIB_H="include/*.h base/*.h ops/*.h graph/*.h cells/*.h decode/*.h train/*.h tools/*.h"
# libpng as meson finds it (base/pngio.c reads PNGs only with RC_HAVE_PNG)
PNG_LIBS=""
if pkg-config --exists libpng 2>/dev/null; then
    FLAGS="$FLAGS -DRC_HAVE_PNG=1 $(pkg-config --cflags libpng)"
    PNG_LIBS=$(pkg-config --libs libpng)
fi
# shellcheck disable=SC2086,SC2012
NEWEST_LIB_H=$(cd "$ROOT" && ls -t $LIB_H | head -n 1)
# shellcheck disable=SC2086,SC2012
NEWEST_H=$(cd "$ROOT" && ls -t $LIB_H tests/fuzz/*.h | head -n 1)

# compile SRC (relative to ROOT) into DIR unless its object is newer than it and every
# header (the library's; a harness's also tests/fuzz/*.h)
compile() {   # compile DIR SRC [extra flags]
    o="$1/$(echo "$2" | tr / _).o"
    hdr=$NEWEST_LIB_H
    case "$2" in tests/fuzz/*) hdr=$NEWEST_H ;; esac
    if [ ! -f "$o" ] || [ -n "$(find "$ROOT/$2" "$ROOT/$hdr" -newer "$o")" ]; then
        # shellcheck disable=SC2086
        $CC $FLAGS ${3:-} -fsanitize=fuzzer-no-link,address,undefined -c "$ROOT/$2" -o "$o"
    fi
    echo "$o"
}

# the library as one archive: a harness links only the objects it needs
LIB="$OUT/librecur-fuzz.a"
build_lib() {
    mkdir -p "$OUT/obj"
    objs=""
    for s in $(cd "$ROOT" && ls base/*.c ops/*.c graph/*.c autodiff/*.c cells/*.c decode/*.c train/*.c tools/kind*.c tools/transcribe.c) \
             tools/config.c tools/task.c tools/run_ckpt.c tests/fuzz/stubs.c; do
        objs="$objs $(compile "$OUT/obj" "$s")"
    done
    rm -f "$LIB"
    # shellcheck disable=SC2086
    ar rcs "$LIB" $objs
}

build() {   # build NAME: prints the binary's path
    if [ "$1" = cell ] && [ "$MODE" = check ]; then
        mkdir -p "$OUT/obj-check"
        # the cell language without its step function (the part that needs only the C library)
        objs=""
        for s in cells/lang_lex.c cells/lang_parse.c cells/lang_check.c cells/lang_prog.c tests/fuzz/fuzz_cell.c; do
            objs="$objs $(compile "$OUT/obj-check" "$s" -DLANG_CHECK_ONLY)"
        done
        # shellcheck disable=SC2086
        $CC -fsanitize=fuzzer,address,undefined $objs -lm -o "$OUT/fuzz_cell_check"
        echo "$OUT/fuzz_cell_check"
        return
    fi
    [ "$MODE" = full ] || { echo "run.sh: MODE must be full or check" >&2; exit 2; }
    h=$(compile "$OUT/obj" "tests/fuzz/fuzz_$1.c")
    # every harness links the BLAS/LAPACK/OpenMP stand-ins (tests/fuzz/stubs.c)
    stubs="$OUT/obj/tests_fuzz_stubs.c.o"
    # shellcheck disable=SC2086
    $CC -fsanitize=fuzzer,address,undefined "$h" $stubs "$LIB" -lm $PNG_LIBS -o "$OUT/fuzz_$1"
    echo "$OUT/fuzz_$1"
}

# a dictionary of the cell language's words helps the mutator past the lexer
cell_dict() {
    : >"$OUT/cell.dict"
    # (and every elementwise op's name, from ops/elementwise_ops.def)
    ew_names=$(sed -n 's/^EW([A-Z_0-9]*, *\([a-z_0-9]*\),.*/\1/p' "$ROOT/ops/elementwise_ops.def")
    # shellcheck disable=SC2086
    for w in cell hidden weight vector state init const zeros uniform glorot orthogonal default H I \
             $ew_names min max softmax log_softmax \
             row_mean row_var sum mean row_sum concat slice dropout matmul \
             embedding mse row_slice "->" "@" "h'" "c'" "(x)" " = " " : " "1e-5" "2*H" "I - 1" "#"; do
        printf '"%s"\n' "$w" >>"$OUT/cell.dict"
    done
    echo "$OUT/cell.dict"
}

run() {   # run NAME
    seeds=$ROOT/tests/fuzz/corpus-$1
    mkdir -p "$OUT/corpus-$1"
    bin=$(build "$1")
    dict=$ROOT/tests/fuzz/$1.dict
    [ "$1" = cell ] && dict=$(cell_dict)
    dflag=""
    [ -f "$dict" ] && dflag="-dict=$dict"
    echo "run.sh: fuzzing $1 ($MODE) with $ARGS"
    log="$OUT/$1.log"
    # new inputs go to $OUT/corpus-NAME; the seed corpus is read only
    set +e
    # shellcheck disable=SC2086
    "$bin" $ARGS $dflag -print_final_stats=1 -artifact_prefix="$OUT/$1-" "$OUT/corpus-$1" "$seeds" >"$log" 2>&1
    rc=$?
    set -e
    cat "$log"
    n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    if [ "$rc" = 0 ]; then echo "fuzz $1: ${n:-no} executions"
    else echo "fuzz $1: ${n:-no} executions, FAILED (exit $rc; the input is in $OUT/$1-*)"; fi
    return $rc
}

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
mkdir -p "$OUT"
build_lib
if [ "$NAME" = all ]; then
    failed=""
    for n in $ALL; do run "$n" || failed="$failed $n"; done
    [ -z "$failed" ] || { echo "run.sh: failed:$failed" >&2; exit 1; }
else
    run "$NAME"
fi
