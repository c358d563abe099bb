#!/usr/bin/env bash
# Builds the static charm binary and packs build/parse-server_amd64.charm; prints its path.
set -euo pipefail
cd "$(dirname "$0")/.."
target=x86_64-unknown-linux-musl
export CC_x86_64_unknown_linux_musl=musl-gcc
cargo build --quiet --release --locked --target "$target" --bin parse-server-charm
bin="target/$target/release/parse-server-charm"
file "$bin" 2>/dev/null | grep -q "statically linked\|static-pie" \
  || { echo "build-charm: $bin is not statically linked" >&2; exit 1; }

stage=build/stage
rm -rf "$stage" build/*.charm
mkdir -p "$stage"
install -m 0755 "$bin" "$stage/dispatch"
install -m 0644 metadata.yaml config.yaml actions.yaml "$stage/"
cp -r charm/. "$stage/"
find "$stage" -type d -exec chmod 0755 {} +
find "$stage" -type f ! -name dispatch -exec chmod 0644 {} +
out=build/parse-server_amd64.charm
(cd "$stage" && zip -q -X -r "../$(basename "$out")" .)
# The exec bit must survive inside the zip: Juju does not fix it for dispatch.
unzip -Z "$out" dispatch | grep -q '^-rwxr-xr-x' \
  || { echo "build-charm: dispatch lost its exec bit in $out" >&2; exit 1; }
realpath "$out"
