#!/usr/bin/env bash
# Fetches the kernel the VM suite boots: Debian's own (the linux-image-amd64
# package's current image), from the package registries, extracted into
# .vm/kernel/ without installing it (installing would pull initramfs-tools
# and udev onto this machine). Idempotent; prints the kernel's directory.
set -euo pipefail
cd "$(dirname "$0")/../.."
dest=.vm/kernel
current() { apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}'; }
pkg="$(current)"
[ -n "$pkg" ] || { apt-get update -qq; pkg="$(current)"; }
[ -n "$pkg" ] || { echo "get-kernel: no linux-image-amd64 in the package lists" >&2; exit 1; }
if [ -f "$dest/$pkg/boot/vmlinuz-${pkg#linux-image-}" ]; then echo "$dest/$pkg"; exit 0; fi
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp" # apt's download user must be able to write here
(cd "$tmp" && apt-get download -qq "$pkg" 2>/dev/null || apt-get download -qq "$pkg")
mkdir -p "$dest/$pkg.tmp"
dpkg-deb -x "$tmp"/"$pkg"_*.deb "$dest/$pkg.tmp"
rm -rf "${dest:?}/$pkg"
mv "$dest/$pkg.tmp" "$dest/$pkg"
echo "$dest/$pkg"
