#!/bin/sh
# recur's developer entry point: installs what is missing (Debian, as root),
# configures the build directories when absent, builds, and runs.
#   ./do.sh demo    the main job: build, train a 2-layer LSTM on the fortunes corpus for
#                   two minutes (the loss falls, samples improve), then write new fortunes
#   ./do.sh test    the whole test suite, then again under ASan+UBSan (fails on any report)
set -eu
cd "$(dirname "$0")"
EXTRA_PKGS=""

# Both commands install every package the build can use, so build/ is always the full
# configuration whichever command runs first (MPI included: the recur command is built
# with it and tests/test_dist.c runs it under mpirun). The tests add only tools that
# never change how build/ is configured: clang for the fuzzers (libFuzzer).
PKGS="build-essential git meson ninja-build pkg-config libopenblas-openmp-dev libcriterion-dev libopenmpi-dev openmpi-bin help2man fortunes gnuplot-nox graphviz locales hershey-fonts-data libfreetype-dev libpng-dev fonts-dejavu-core fonts-liberation fonts-freefont-ttf fonts-urw-base35"
TEST_PKGS="clang libclang-rt-14-dev libomp-14-dev"

need_pkgs() {
    missing=""
    for p in $PKGS $EXTRA_PKGS; do
        dpkg -s "$p" >/dev/null 2>&1 || missing="$missing $p"
    done
    if [ -n "$missing" ]; then
        echo "do.sh: installing:$missing"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq || { echo "do.sh: apt-get update failed (see above)" >&2; exit 1; }
        apt-get install -y -qq --no-install-recommends $missing >/dev/null ||
            { echo "do.sh: apt-get install$missing failed (see above)" >&2; exit 1; }
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
# are built) with every optional feature required (-Dauto_features=enabled: a missing
# dependency fails the configure instead of building less); build-asan/ is portable;
# build-min/ has every optional feature disabled, so CI compiles that path too.
FULL="-Dwerror=true -Dauto_features=enabled"
MIN="-Dwerror=true -Dauto_features=disabled"

# The packages the build can see, with their versions, and the options: when either
# differs from what DIR was configured with (a dependency appeared since, or another
# do.sh command configured it), DIR is configured afresh instead of silently keeping
# the old configuration.
config_stamp() {   # config_stamp [meson options...]
    echo "options: $*"
    dpkg-query -W -f '${Package} ${Version}\n' $PKGS 2>/dev/null || true
}

# fail STEP LOG: says which step failed and shows the end of its output.
fail() {
    echo "do.sh: $1 failed; from its first error (all of it in $2):" >&2
    if grep -q "^FAILED: " "$2"; then sed -n '/^FAILED: /,$p' "$2" | head -n 80 >&2
    else tail -n 60 "$2" >&2; fi
    echo "do.sh: $1 failed (see above)" >&2
    exit 1
}

build() {   # build DIR [meson options...]
    dir=$1; shift
    stamp=$(config_stamp "$@")
    if [ ! -f "$dir/build.ninja" ] || [ "$(cat "$dir/do.stamp" 2>/dev/null)" != "$stamp" ]; then
        mkdir -p "$dir"
        if [ -f "$dir/build.ninja" ]; then
            echo "do.sh: $dir was configured with other options or packages: configuring it again"
            set -- --wipe "$@"
        fi
        meson setup "$dir" "$@" >"$dir/setup.log" 2>&1 || fail "meson setup $dir $*" "$dir/setup.log"
        echo "$stamp" >"$dir/do.stamp"
    fi
    ninja -C "$dir" >"$dir/ninja.log" 2>&1 || fail "building $dir (ninja -C $dir)" "$dir/ninja.log"
}

# The demo's commands, shared by the demo and a few seconds of it in the tests.
demo() {   # demo OUT SECONDS EVAL_EVERY SAMPLE_LENGTH
    ./build/tools/recur train --out "$1" --time-limit "$2" --eval-every "$3" --sample 200
    echo "== new fortunes from $1/best.ckpt"
    ./build/tools/recur sample --out "$1" --length "$4" --temperature 0.7
    ./build/tools/recur plot --out "$1"
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
    build build $FULL -Dnative_arch=true
    echo "== tests (release build)"
    ./build/tests/recur-tests --jobs 2 2>&1 | tee build/tests.log
    summary=$(grep "Synthesis" build/tests.log | tail -n 1)
    passed=$(echo "$summary" | sed -n 's/.*Passing: \([0-9]*\).*/\1/p')
    failed=$(echo "$summary" | sed -n 's/.*Failing: \([0-9]*\) | Crashing: \([0-9]*\).*/\1 \2/p')
    [ -n "$passed" ] && [ "$failed" = "0 0" ] || { echo "tests failed"; exit 1; }
    echo "== tests under AddressSanitizer + UndefinedBehaviorSanitizer"
    build build-asan $FULL -Dbuildtype=debug -Db_sanitize=address,undefined -Db_lundef=false \
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
    echo "== fuzzers: the cell language, every file loader and the decoders (${FUZZ_SECONDS:-10} s each, seed corpora tests/fuzz/corpus-*)"
    tests/fuzz/run.sh all "${FUZZ_SECONDS:-10}" >build/fuzz.log 2>&1 || { grep "^fuzz " build/fuzz.log || true; tail -n 40 build/fuzz.log; echo "the fuzz run failed (a crash, a leak, or its build: see build/fuzz.log)"; exit 1; }
    grep "^fuzz " build/fuzz.log
    echo "== every optional feature disabled (build-min: MPI ...): builds, tests pass or skip with a reason"
    build build-min $MIN
    ./build-min/tests/recur-tests --jobs 2 >build-min/tests.log 2>&1 || fail "the tests of build-min" build-min/tests.log
    grep "Synthesis" build-min/tests.log | tail -n 1
    echo "== installed, without the source tree (tests/install_test.sh)"
    build build-inst -Dwerror=true -Dauto_features=disabled -Dman=enabled -Dtests=false --prefix="$(pwd)/build-inst-prefix"
    tests/install_test.sh "$(pwd)/build-inst" >build-inst/install-test.log 2>&1 || fail "the install test" build-inst/install-test.log
    tail -n 1 build-inst/install-test.log
    echo "== the demo's commands, 3 s of training"
    rm -rf build/demo-smoke
    demo build/demo-smoke 3 20 100 >build/demo-smoke.log 2>&1 || fail "the demo's commands (./do.sh demo for 3 s)" build/demo-smoke.log
    echo "demo: ok"
    echo "== example smoke modes"
    SMOKE_SKIP_MISSING_DATA=1 examples/smoke.sh || { echo "an example's smoke mode failed"; exit 1; }
    echo "tests: $passed passed, 0 failed"
}

case "${1:-}" in
    demo)
        need_pkgs; build build $FULL -Dnative_arch=true
        demo runs/demo 120 250 600 ;;
    test) EXTRA_PKGS=$TEST_PKGS; need_pkgs; need_locale; run_tests ;;
    *) echo "usage: ./do.sh demo | test" >&2; exit 2 ;;
esac
