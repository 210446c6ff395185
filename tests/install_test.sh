#!/bin/sh
# An installed recur works without its source tree: meson install into a prefix outside
# the build folder, then, with the source tree's cells/lib hidden (a private mount
# namespace lays an empty folder over it), every cell of the installed library trains a
# few steps and seeds a tiny search, `recur info` names the installed library, the manual
# page is there, and a C program built with pkg-config against the installed library runs.
#
#   tests/install_test.sh [BUILD_DIR]     (as root, for unshare; ./do.sh test runs it)
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-$root/build-inst}
prefix=$build-prefix   # beside the build folder, not inside it: an installed librecur
fail() { echo "install_test: $*" >&2; exit 1; }
[ -f "$build/build.ninja" ] || fail "$build is not configured (./do.sh test configures it)"
rm -rf "$prefix"
meson install -C "$build" --quiet >"$build/install.log" 2>&1 || { tail -n 30 "$build/install.log"; fail "meson install failed"; }
recur=$prefix/bin/recur
[ -x "$recur" ] || fail "no $recur after meson install"
cells=$prefix/share/recur/cells
ls "$cells"/*.cell >/dev/null 2>&1 || fail "no cell library in $cells"
[ -f "$prefix/share/man/man1/recur.1" ] || fail "no manual page in $prefix/share/man/man1"
grep -q -- "--threads" "$prefix/share/man/man1/recur.1" || fail "the manual page lacks the commands' options"
[ -f "$prefix/share/doc/recur/CELLS.md" ] || fail "no CELLS.md in $prefix/share/doc/recur"
# the source's cells are hidden in a private mount namespace; where there is none (a
# chroot, no root), the folder is moved aside for the checks and put back after
if unshare -m true 2>/dev/null; then hide=ns; else hide=mv; fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/recur-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
awk 'BEGIN { s = 7; for (l = 0; l < 400; l++) { t = ""; for (k = 0; k < 8; k++) { s = (s * 1103515245 + 12345) % 2147483648;
     t = t (k ? " " : "") substr("the cat sat on a mat and ran off to see dogs", 1 + int(s / 2147483648 * 30), 5) } print t } }' >"$tmp/text.txt"

# the pkg-config program, built before the source is hidden (its headers come from the prefix)
pcdir=$(dirname "$(find "$prefix" -name recur.pc | head -n 1)")
[ -n "$pcdir" ] || fail "no recur.pc installed"
cat >"$tmp/prog.c" <<'PROG'
#include <stdio.h>
#include <recur.h>
int main(void)
{
    char err[4096];
    rc_cell *c = rc_cell_find("lstm-peephole", 8, NULL, err, sizeof err);
    if (!c) { fprintf(stderr, "%s\n", err); return 1; }
    printf("recur %s: %s from %s\n", rc_version(), rc_cell_name(c), rc_cell_lib_dir());
    rc_cell_free(c);
    return 0;
}
PROG
libdir=$(PKG_CONFIG_PATH=$pcdir pkg-config --variable=libdir recur)
# shellcheck disable=SC2046
cc -std=c11 "$tmp/prog.c" -o "$tmp/prog" $(PKG_CONFIG_PATH=$pcdir pkg-config --cflags --libs recur) \
    -Wl,-rpath,"$libdir" || fail "a program built with pkg-config --cflags --libs recur did not compile"

cat >"$tmp/checks.sh" <<CHECKS
set -eu
[ "$hide" = mv ] || mount -t tmpfs none "$root/cells/lib"   # the source tree's cells are out of reach from here on
[ -z "\$(ls "$root/cells/lib" 2>/dev/null)" ] || { echo "the source tree's cells/lib is still visible"; exit 1; }
unset RECUR_CELL_LIB
export RC_NUM_THREADS=1
"$recur" info | grep -q "library: $cells" || { "$recur" info; echo "recur info does not name $cells"; exit 1; }
"$tmp/prog" | grep -q "from $cells" || { "$tmp/prog"; echo "the pkg-config program did not find $cells"; exit 1; }
n=0
seeds=""
for f in "$cells"/*.cell; do
    name=\$(basename "\$f" .cell | tr _ -)
    "$recur" train --cell "\$name" --data "$tmp/text.txt" --out "$tmp/t-\$name" --hidden 8 --layers 1 --seq 8 \\
        --batch 4 --steps 2 --sample 0 >"$tmp/t-\$name.log" 2>&1 || { cat "$tmp/t-\$name.log"; echo "train --cell \$name failed"; exit 1; }
    n=\$((n + 1))
    seeds="\$seeds\${seeds:+,}\$name"
done
# a tiny search seeded by every library cell (some are built-ins' files)
"$recur" search --out "$tmp/s" --budget 0 --seed-cells "\$seeds" --params 1500 --steps 2 --lrs 0.01 \\
    --promote-steps 2 --promote-seeds 1 --test 16 --batch 8 --threads 1 >"$tmp/s.log" 2>&1 || { cat "$tmp/s.log"; echo "search failed"; exit 1; }
rows=\$(grep -c . "$tmp/s/candidates.jsonl" || true)
[ "\$rows" -ge "\$n" ] || { echo "the search scored \$rows candidates, not the \$n seeds"; cat "$tmp/s.log"; exit 1; }
echo "install_test: \$n library cells trained from $cells, a search seeded by them (\$seeds), recur info and a pkg-config program find the installed library"
CHECKS
if [ "$hide" = ns ]; then
    unshare -m sh "$tmp/checks.sh"
else
    aside=$root/cells/lib.hidden-by-install-test
    mv "$root/cells/lib" "$aside"
    trap 'mv "$aside" "$root/cells/lib"; rm -rf "$tmp"' EXIT INT TERM
    sh "$tmp/checks.sh"
fi
