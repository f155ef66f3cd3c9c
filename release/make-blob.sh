#!/usr/bin/env bash
# Turns dist/bpm into the blob the bpm package installs, with its checksum:
#   release/make-blob.sh [BLOBS_DIR]   (default: release/blobs)
# then, in the BOSH release:  bosh add-blob BLOBS_DIR/bpm/bpm-linux-amd64 bpm/bpm-linux-amd64
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
exe="$here/../dist/bpm"
out="${1:-$here/blobs}/bpm"
[ -x "$exe" ] || { echo "no $exe: run 'npm run build' first" >&2; exit 1; }
version="$("$exe" --version)"
mkdir -p "$out"
install -m 0755 "$exe" "$out/bpm-linux-amd64"
(cd "$out" && sha256sum bpm-linux-amd64 > bpm-linux-amd64.sha256)
echo "bpm $version: $out/bpm-linux-amd64 ($(stat -c %s "$out/bpm-linux-amd64") bytes)"
cat "$out/bpm-linux-amd64.sha256"
echo "next: bosh add-blob $out/bpm-linux-amd64 bpm/bpm-linux-amd64"
