#!/usr/bin/env bash
# Puts nncc on the PATH, one of two ways (setup.sh runs the first):
#   scripts/install.sh                 a symlink to the built nncc, in /usr/local/bin as root, else ~/.local/bin;
#                                      nncc resolves the link and finds libNNDSL.so and runtime/ in this checkout
#   scripts/install.sh --prefix DIR    a copy that needs no checkout: DIR/bin/nncc, DIR/lib/nncc (libNNDSL.so and
#                                      its Swift modules), DIR/share/nncc/runtime (the C runtime's sources) and
#                                      DIR/share/nncc/commit (for nncc --version)
# --build-dir D installs another build folder (default .build/release, which `swift build -c release` makes).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
build="$repo/.build/release" prefix="" bindir=""
while [ $# -gt 0 ]; do
    case "$1" in
        --prefix) prefix=$2; shift 2 ;;
        --build-dir) build=$(cd "$2" && pwd); shift 2 ;;
        --bin-dir) bindir=$2; shift 2 ;;   # where the symlink goes (default: see above)
        -h|--help) sed -n '2,9p' "$0" | cut -c3-; exit 0 ;;
        *) echo "install.sh: error: unknown argument '$1' (see --help)" >&2; exit 2 ;;
    esac
done
for f in nncc libNNDSL.so Modules/NNDSL.swiftmodule; do
    [ -e "$build/$f" ] || { echo "install.sh: error: $build/$f is missing; build first (swift build -c release)" >&2; exit 1; }
done

if [ -z "$prefix" ]; then
    if [ -z "$bindir" ]; then
        if [ "$(id -u)" -eq 0 ]; then bindir=/usr/local/bin; else bindir="$HOME/.local/bin"; fi
    fi
    mkdir -p "$bindir"
    ln -sfn "$build/nncc" "$bindir/nncc"
    echo "linked $bindir/nncc -> $build/nncc"
    case ":$PATH:" in
        *":$bindir:"*) ;;
        *) echo "note: $bindir is not on your PATH; add it (export PATH=\"$bindir:\$PATH\") or run $bindir/nncc" ;;
    esac
    exit 0
fi

mkdir -p "$prefix/bin" "$prefix/lib/nncc/Modules" "$prefix/share/nncc"
prefix=$(cd "$prefix" && pwd)
cp "$build/libNNDSL.so" "$prefix/lib/nncc/"
# A model file imports NNDSL, whose interface uses NNIR's types: both modules (with their docs) go along.
for m in NNDSL NNIR; do
    for ext in swiftmodule swiftdoc; do
        [ -e "$build/Modules/$m.$ext" ] && cp -R "$build/Modules/$m.$ext" "$prefix/lib/nncc/Modules/"
    done
done
rm -rf "$prefix/share/nncc/runtime"
mkdir -p "$prefix/share/nncc/runtime"
cp "$repo"/runtime/*.c "$repo"/runtime/*.h "$repo"/runtime/*.inc "$prefix/share/nncc/runtime/"
mkdir -p "$prefix/share/nncc/runtime/library"  # nncc compile --emit=library copies these
cp "$repo"/runtime/library/*.c "$repo"/runtime/library/*.h "$prefix/share/nncc/runtime/library/"
git -C "$repo" rev-parse --short HEAD > "$prefix/share/nncc/commit" 2>/dev/null || rm -f "$prefix/share/nncc/commit"
# The executable last, through a temporary name, so that a half-done install never runs.
cp "$build/nncc" "$prefix/bin/.nncc.tmp" && mv -f "$prefix/bin/.nncc.tmp" "$prefix/bin/nncc"
echo "installed nncc into $prefix (bin/nncc, lib/nncc, share/nncc/runtime)"
