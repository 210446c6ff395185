#!/bin/sh
# Runs the README's two quick-start commands on bare Debian 12 systems, in both orders,
# from a clean clone of the current commit: what a new user's first minutes look like.
# Each order gets its own debootstrap'ed root (minbase: no compiler, no meson, nothing
# of recur's), entered with chroot; /proc, /sys and /dev come from the host.
#
#   tests/fresh_machine.sh [DIR]     (as root; DIR default /var/tmp/recur-fresh; about
#                                     40 minutes on 2 cores, most of it the two test runs)
#
# Prints, for each order, each command's exit status and wall time; the full output is in
# DIR/<order>.log. Needs debootstrap (apt-get install debootstrap) and Debian's mirror.
# Not part of ./do.sh test (too slow for CI); run it when do.sh or the packages change.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
base=${1:-/var/tmp/recur-fresh}
[ "$(id -u)" = 0 ] || { echo "fresh_machine.sh: run as root (debootstrap, chroot)" >&2; exit 2; }
command -v debootstrap >/dev/null || { echo "fresh_machine.sh: apt-get install debootstrap" >&2; exit 2; }
mkdir -p "$base"

mounted=""
cleanup() { for m in $mounted; do umount -l "$m" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM

# One bare Debian 12 for both orders, kept as a tar so each order starts from it.
pristine=$base/bookworm-minbase.tar
if [ ! -f "$pristine" ]; then
    echo "== debootstrap bookworm (minbase) into $base/pristine"
    rm -rf "$base/pristine"
    debootstrap --variant=minbase bookworm "$base/pristine" http://deb.debian.org/debian >"$base/debootstrap.log" 2>&1 ||
        { tail -n 20 "$base/debootstrap.log"; exit 1; }
    tar -C "$base/pristine" -cf "$pristine" . && rm -rf "$base/pristine"
fi

# one ORDER: "demo test" or "test demo"
one() {
    name=$(echo "$1" | tr ' ' '-')
    sys=$base/$name
    log=$base/$name.log
    echo "== $name: a bare system from $pristine"
    rm -rf "$sys" && mkdir -p "$sys" && tar -C "$sys" -xf "$pristine"
    cp /etc/resolv.conf "$sys/etc/resolv.conf"
    for d in proc sys dev dev/pts; do
        mkdir -p "$sys/$d"
        mount --bind "/$d" "$sys/$d"
        mounted="$sys/$d $mounted"
    done
    # a clean clone of the current commit, and the shared data beside it as in CI
    mkdir -p "$sys/work"
    git clone -q "$root" "$sys/work/main"
    if [ -d "$root/../shared" ]; then
        mkdir -p "$sys/work/shared"
        mount --bind "$root/../shared" "$sys/work/shared"
        mounted="$sys/work/shared $mounted"
    fi
    : >"$log"
    for cmd in $1; do
        t0=$(date +%s)
        set +e
        chroot "$sys" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb \
            /bin/sh -c "cd /work/main && ./do.sh $cmd" >>"$log" 2>&1
        rc=$?
        set -e
        echo "$name: ./do.sh $cmd: exit $rc in $(( $(date +%s) - t0 )) s" | tee -a "$log"
    done
    cleanup
    mounted=""
}

one "demo test"
one "test demo"
