#!/usr/bin/env bash
# sdk_out_of_tree.sh BUILD_DIR SOURCE_DIR
#
# Install the build into a temporary prefix, build the example plugin out of
# tree with nothing but `pkg-config pgreviewer-plugin` against the installed
# SDK, and have the *installed* binary check it and run it.
set -euo pipefail
build=$1
src=$2
tmp=$(mktemp -d /tmp/pgr-sdk-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
cmake --install "$build" --prefix "$tmp/inst" >/dev/null
pc=$(find "$tmp/inst" -name pgreviewer-plugin.pc | head -1)
[ -n "$pc" ] || { echo "FAIL: pgreviewer-plugin.pc was not installed"; exit 1; }
export PKG_CONFIG_PATH=$(dirname "$pc")
# The .pc file carries the configured prefix; point it at our temporary one.
export PKG_CONFIG_SYSROOT_DIR=
sed -i "s|^prefix=.*|prefix=$tmp/inst|; s|^includedir=.*|includedir=$tmp/inst/include|" "$pc"
[ -f "$tmp/inst/include/pgreviewer/plugin.h" ] || { echo "FAIL: plugin.h not installed"; exit 1; }

mkdir -p "$tmp/author" "$tmp/plugins"
cp "$tmp"/inst/share/pgreviewer/plugin-sdk/example/{example.c,example.yaml,Makefile} "$tmp/author/"
# Rename it so it cannot be confused with the in-tree build.
sed -i 's/\.name = "example"/.name = "oot_example"/' "$tmp/author/example.c"
sed -i 's/^name: example/name: oot_example/' "$tmp/author/example.yaml"
make -s -C "$tmp/author" >/dev/null
cp "$tmp/author/example.so" "$tmp/plugins/oot_example.so"
cp "$tmp/author/example.yaml" "$tmp/plugins/oot_example.yaml"
chmod 755 "$tmp/plugins"

bin="$tmp/inst/bin/pgreviewer"
out=$("$bin" plugin check "$tmp/plugins/oot_example.so")
echo "$out" | grep -q "^ok: plugin oot_example 1.0.0 (ABI 1.0)" || { echo "FAIL: plugin check said: $out"; exit 1; }
out=$(PGREVIEWER_PLUGIN_DIR="$tmp/plugins" "$bin" plugin exec example --params '{"mode":"succeed","result":{"built":"out of tree"}}' 2>/dev/null)
echo "$out" | grep -q '"built": "out of tree"' || { echo "FAIL: plugin exec printed: $out"; exit 1; }
echo "out-of-tree plugin built with pkg-config pgreviewer-plugin, checked and run by the installed binary"
