#!/usr/bin/env bash
# Puts a built bpm into a BOSH release directory as the blob the bpm package
# installs, the way `bosh add-blob` would:
#   - the file mode 0600, as `bosh add-blob` and `bosh sync-blobs` leave a blob:
#     the mode is part of the package's fingerprint, so an author's build and a
#     teammate's sync-then-build must agree on it (packaging sets 0755);
#   - its entry in config/blobs.yml (path, size, sha256; no object_id until
#     `bosh upload-blobs`) added or replaced, every other entry kept as it is.
#     An entry that already records these bytes is left alone, object_id and all.
#
#   make-blob.sh [RELEASE_DIR [EXECUTABLE]]
#
# RELEASE_DIR: default, the release/ directory this script is in; EXECUTABLE:
# default, dist/bpm of the checkout this script is in. Runs from any directory.
set -euo pipefail
die() { echo "make-blob.sh: $*" >&2; exit 1; }

here="$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")"
release="${1:-$here}"
exe="${2:-$here/../dist/bpm}"
blob="bpm/bpm-linux-amd64"   # the path packages/bpm/spec lists under files
[ -d "$release" ] || die "$release: no such directory"
release="$(cd "$release" && pwd)"
[ -f "$exe" ] && [ -x "$exe" ] || die "$exe: no executable there (run 'npm run build' first, or name one)"
spec="$release/packages/bpm/spec"
[ -f "$spec" ] || die "$release is not a bpm release directory (no packages/bpm/spec)"
grep -qxF -- "- $blob" "$spec" || die "$spec does not list $blob under files"
index="$release/config/blobs.yml"
[ ! -e "$index" ] || [ -f "$index" ] || die "$index is not a file"
version="$("$exe" --version)" || die "$exe --version failed"

# blobs.yml as bosh writes it: '--- {}' when empty, else one unindented
# 'path:' line per blob with its fields indented below, sorted by path.
# Read twice: first to find this blob's entry, then to print every other entry
# as it is, and this one (the old if it records the same bytes, else the new)
# in its sorted place.
merge='
function keyof(line,  k) {
  k = line; sub(/:[ \t]*$/, "", k)
  if (k ~ /^".*"$/ || k ~ /^\047.*\047$/) k = substr(k, 2, length(k) - 2)
  return k
}
function emit() {
  if (placed) return
  placed = 1
  if (index(old, "\n  size: " size "\n") && index(old, "\n  sha: " sha "\n")) printf "%s", old
  else printf "%s:\n  size: %s\n  sha: %s\n", name, size, sha
}
FNR == 1 { pass++; inkey = 0; mine = 0 }
/^---[ \t]*(\{\}[ \t]*)?$/ || /^\{\}[ \t]*$/ { next }
/^[^ \t#][^:]*:[ \t]*$/ {
  inkey = 1; mine = (keyof($0) == name)
  if (pass == 1 && mine) old = old $0 "\n"
  if (pass == 2 && !mine) { if ((keyof($0) "") > (name "")) emit(); print }
  next
}
/^[ \t]*(#.*)?$/ || (inkey && /^[ \t]/) {
  if (pass == 1 && mine) old = old $0 "\n"
  if (pass == 2 && !mine) print
  next
}
{ printf "%s:%d: not a blobs.yml entry as bosh writes one: %s\n", FILENAME, FNR, $0 > "/dev/stderr"; failed = 1; exit 1 }
END { if (failed) exit 1; emit() }'

mkdir -p "$release/blobs/bpm" "$release/config"
new_blob="$(mktemp "$release/blobs/bpm/.bpm-linux-amd64.XXXXXX")"
new_index="$(mktemp "$release/config/.blobs.yml.XXXXXX")"
trap 'rm -f "$new_blob" "$new_index"' EXIT
cp "$exe" "$new_blob"
chmod 0600 "$new_blob"
size="$(stat -c %s "$new_blob")"
sha="$(sha256sum "$new_blob" | cut -d' ' -f1)"
from="$index"; [ -e "$index" ] || from=/dev/null
LC_ALL=C awk -v name="$blob" -v size="$size" -v sha="sha256:$sha" "$merge" "$from" "$from" > "$new_index" ||
  die "$index: left as it was, and no blob added"
chmod 0644 "$new_index"

mv "$new_blob" "$release/blobs/$blob"
if [ -e "$index" ] && cmp -s "$new_index" "$index"; then
  recorded="already recorded in $index"
else
  mv "$new_index" "$index"
  recorded="recorded in $index"
fi
echo "bpm $version: $release/blobs/$blob ($size bytes, sha256 $sha), $recorded"
echo "next, in $release: a dev release (see README.md, Versions):"
echo "  bosh create-release --force --version '$version+dev.$(date +%s)' --tarball /tmp/bpm-dev.tgz"
