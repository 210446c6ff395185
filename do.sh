#!/bin/sh
# recur's developer entry point: installs what is missing (Debian, as root),
# configures the build directories when absent, builds, and runs.
#   ./do.sh demo    the main job: build, train a 2-layer LSTM on the fortunes corpus for
#                   two minutes (the loss falls, samples improve), then write new fortunes
#   ./do.sh test    the whole test suite, then again under ASan+UBSan (fails on any report)
set -eu
cd "$(dirname "$0")"
EXTRA_PKGS=""

PKGS="build-essential git meson ninja-build pkg-config libopenblas-openmp-dev libcriterion-dev fortunes gnuplot-nox graphviz locales"
TEST_PKGS="clang libclang-rt-14-dev libopenmpi-dev openmpi-bin"   # the fuzzers (libFuzzer); MPI for tests/test_dist.c

need_pkgs() {
    missing=""
    for p in $PKGS $EXTRA_PKGS; do
        dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
    done
    if [ -n "$missing" ]; then
        echo "do.sh: installing:$missing"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends $missing >/dev/null
    fi
}

# The data loaders' locale tests need a comma-decimal locale: generate de_DE.UTF-8.
need_locale() {
    locale -a 2>/dev/null | grep -qix 'de_DE.utf-\{0,1\}8' && return 0
    echo "do.sh: generating the de_DE.UTF-8 locale"
    if grep -q '^# *de_DE.UTF-8 UTF-8' /etc/locale.gen; then
        sed -i 's/^# *de_DE.UTF-8 UTF-8/de_DE.UTF-8 UTF-8/' /etc/locale.gen
    elif ! grep -q '^de_DE.UTF-8 UTF-8' /etc/locale.gen; then
        echo 'de_DE.UTF-8 UTF-8' >>/etc/locale.gen
    fi
    locale-gen >/dev/null
}

# build/ is compiled for this machine's CPU (-march=native: the binaries run where they
# are built); build-asan/ is portable.
build() {   # build DIR [meson options...]
    dir=$1; shift
    [ -f "$dir/build.ninja" ] || meson setup "$dir" -Dwerror=true "$@" >/dev/null
    ninja -C "$dir" >/dev/null
}

# Criterion 2.4's runner process now and then leaks one of its own 48-byte blocks at exit
# (a stack of calloc and libcriterion frames only). That report alone, with every test
# passing, is not ours; any frame of recur's code or tests, or any other report, still fails.
runner_leak_only() {   # runner_leak_only LOG
    grep -E "Synthesis: .*Failing: 0 \| Crashing: 0" "$1" >/dev/null || return 1
    grep -E "ERROR: AddressSanitizer|runtime error:" "$1" >/dev/null && return 1
    grep "ERROR: LeakSanitizer" "$1" >/dev/null || return 1
    ! grep -E "^ +#[0-9]+ " "$1" | grep -v -E "libsanitizer|libcriterion" >/dev/null
}

run_tests() {
    build build -Dnative_arch=true
    echo "== tests (release build)"
    ./build/tests/recur-tests --jobs 2 2>&1 | tee build/tests.log
    summary=$(grep "Synthesis" build/tests.log | tail -n 1)
    passed=$(echo "$summary" | sed -n 's/.*Passing: \([0-9]*\).*/\1/p')
    failed=$(echo "$summary" | sed -n 's/.*Failing: \([0-9]*\) | Crashing: \([0-9]*\).*/\1 \2/p')
    [ -n "$passed" ] && [ "$failed" = "0 0" ] || { echo "tests failed"; exit 1; }
    echo "== tests under AddressSanitizer + UndefinedBehaviorSanitizer"
    build build-asan -Dbuildtype=debug -Db_sanitize=address,undefined -Db_lundef=false \
        -Dc_args=-fno-sanitize-recover=all
    log=build-asan/sanitizer.log
    # Criterion's workers can print a sanitizer report and still pass: read the log.
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        ./build-asan/tests/recur-tests --jobs 2 >"$log" 2>&1 || runner_leak_only "$log" || { cat "$log"; echo "sanitizer run failed"; exit 1; }
    tail -n 1 "$log"
    if grep -E "ERROR: AddressSanitizer|runtime error:" "$log" >/dev/null ||
       { grep "ERROR: LeakSanitizer" "$log" >/dev/null && ! runner_leak_only "$log"; }; then
        grep -E -A 20 "ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:" "$log" | head -n 80
        echo "sanitizer reported errors (see $log)"
        exit 1
    fi
    echo "sanitizers: clean"
    echo "== fuzzers: the cell language and every file loader (${FUZZ_SECONDS:-10} s each, seed corpora tests/fuzz/corpus-*)"
    tests/fuzz/run.sh all "${FUZZ_SECONDS:-10}" >build/fuzz.log 2>&1 || { grep "^fuzz " build/fuzz.log; tail -n 40 build/fuzz.log; echo "the fuzz run failed (a crash, a leak, or its build: see build/fuzz.log)"; exit 1; }
    grep "^fuzz " build/fuzz.log
    echo "== example smoke modes"
    SMOKE_SKIP_MISSING_DATA=1 examples/smoke.sh || { echo "an example's smoke mode failed"; exit 1; }
    echo "tests: $passed passed, 0 failed"
}

case "${1:-}" in
    demo)
        need_pkgs; build build -Dnative_arch=true
        ./build/tools/recur train --out runs/demo --time-limit 120 --eval-every 250 --sample 200
        echo "== new fortunes from runs/demo/best.ckpt"
        ./build/tools/recur sample --out runs/demo --length 600 --temperature 0.7
        ./build/tools/recur plot --out runs/demo ;;
    test) EXTRA_PKGS=$TEST_PKGS; need_pkgs; need_locale; run_tests ;;
    *) echo "usage: ./do.sh demo | test" >&2; exit 2 ;;
esac
