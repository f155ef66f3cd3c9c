#!/usr/bin/env bash
# Puts dist/bpm into a BOSH release directory as the blob the bpm package
# installs, and records it in config/blobs.yml the way `bosh add-blob` does
# (path, size, sha256; no object_id until it is uploaded):
#   release/make-blob.sh [RELEASE_DIR]      (default: this release/ directory)
# then `bosh create-release` in RELEASE_DIR has everything it reads.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
exe="$here/../dist/bpm"
release="${1:-$here}"
blob="bpm/bpm-linux-amd64"   # the path packages/bpm/spec lists under files
[ -x "$exe" ] || { echo "no $exe: run 'npm run build' first" >&2; exit 1; }
[ -f "$release/packages/bpm/spec" ] || { echo "$release is not a bpm release directory (no packages/bpm/spec)" >&2; exit 1; }
grep -qxF -- "- $blob" "$release/packages/bpm/spec" || { echo "$release/packages/bpm/spec does not list $blob" >&2; exit 1; }
version="$("$exe" --version)"
mkdir -p "$release/blobs/bpm" "$release/config"
install -m 0755 "$exe" "$release/blobs/$blob"
size="$(stat -c %s "$release/blobs/$blob")"
sha="$(sha256sum "$release/blobs/$blob" | cut -d' ' -f1)"
printf -- '---\n%s:\n  size: %s\n  sha: sha256:%s\n' "$blob" "$size" "$sha" > "$release/config/blobs.yml"
echo "bpm $version: $release/blobs/$blob ($size bytes, sha256 $sha)"
echo "recorded in $release/config/blobs.yml; next: (cd $release && bosh create-release --force)"
