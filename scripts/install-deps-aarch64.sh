#!/usr/bin/env bash
# Installs what the AArch64 cross build and its qemu test runs need (scripts/test-aarch64.sh):
# Debian 12's cross compiler, qemu-user, and the arm64 (multiarch) packages of nibble's
# dependencies. Idempotent and quiet; nothing is installed when everything is there.
#
# - libsentencepiece-dev / libsentencepiece0 are not Multi-Arch: same, so installing their arm64
#   packages would remove the host's (which the x86 build needs). Their arm64 .debs are unpacked
#   into .cache/aarch64-deps instead (no dpkg state touched); cmake/aarch64-linux-gnu.cmake looks
#   there first and the test binaries carry it in their RUNPATH.
# - libgomp1:arm64 is the OpenMP runtime the binaries load under qemu (the cross toolchain's copy
#   serves linking only: qemu 7.2 hangs at the first thread start with its sysroot as -L).
# - Not installed for arm64: libbenchmark-dev (exists; the ARM build has NIBBLE_BUILD_BENCH=OFF)
#   and libdnnl-dev (exists for arm64 too; nibble never requires oneDNN on ARM).
# - nlohmann-json3-dev is architecture-independent: the host's copy serves both builds.
set -euo pipefail
cd "$(dirname "$0")/.."
host_pkgs=(cmake ninja-build pkg-config g++-aarch64-linux-gnu qemu-user nlohmann-json3-dev)
arm_pkgs=(libhwy-dev libpcre2-dev libxxhash-dev libgtest-dev libgmock-dev libgomp1)
unpacked_pkgs=(libsentencepiece0 libsentencepiece-dev)
deps=.cache/aarch64-deps

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
missing=()
for p in "${host_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
for p in "${arm_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p:arm64" 2>/dev/null | grep -q "install ok installed" || missing+=("$p:arm64")
done
if [ ${#missing[@]} -ne 0 ] || [ ! -f "$deps/.complete" ]; then
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    $sudo dpkg --add-architecture arm64
    $sudo apt-get update -qq
  fi
fi
if [ ${#missing[@]} -ne 0 ]; then
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [ ! -f "$deps/.complete" ]; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  (cd "$tmp" && apt-get download -qq "${unpacked_pkgs[@]/%/:arm64}" 2>/dev/null) ||
    { $sudo apt-get update -qq && (cd "$tmp" && apt-get download -qq "${unpacked_pkgs[@]/%/:arm64}" 2>/dev/null); }
  rm -rf "$deps"
  mkdir -p "$deps"
  for deb in "$tmp"/*.deb; do dpkg-deb -x "$deb" "$deps"; done
  sed -i "s|^prefix=.*|prefix=$PWD/$deps/usr|" "$deps/usr/lib/aarch64-linux-gnu/pkgconfig/sentencepiece.pc"
  touch "$deps/.complete"
fi
