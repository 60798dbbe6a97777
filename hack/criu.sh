#!/usr/bin/env bash
# Builds CRIU for hull's checkpoints (CRI CheckpointContainer,
# CheckpointPod, RestorePod; hull container checkpoint / restore) when it
# is missing, and prints the binary's path.
#
# Why a build: Debian bookworm's criu package (3.17.1) cannot read the
# vDSO of a kernel >= 6.x (`criu check`: "vdso: Unexpected rt vDSO area
# bounds"; the vvar_vclock pages came after it). CRIU 4.1 reads it. The
# source is Debian trixie's own upstream tarball, fetched from the Debian
# archive (the package registry this machine and CI reach) and checked
# against the sha256 trixie's Sources index gives; the build needs only
# bookworm's packages and takes about 20 s.
#
#   hack/criu.sh                (CRIU_DIR=/var/tmp/hull-criu/4.1.1)
set -euo pipefail
version=4.1.1
sha256=f80a66cb3726bb2116266d4759ce3bcbfab7abdb6b6d430bf20dd41911717afe
url=${CRIU_URL:-http://deb.debian.org/debian/pool/main/c/criu/criu_$version.orig.tar.xz}
dir=${CRIU_DIR:-/var/tmp/hull-criu/$version}
bin=$dir/criu

if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -q "Version: $version"; then
  echo "$bin"
  exit 0
fi

pkgs=(
  gcc make pkg-config curl xz-utils
  libprotobuf-dev libprotobuf-c-dev protobuf-c-compiler protobuf-compiler python3-protobuf
  libnl-3-dev libnet1-dev libcap-dev libbsd-dev libnftables-dev libgnutls28-dev uuid-dev
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "criu: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

work=$(mktemp -d /var/tmp/hull-criu-build.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "criu: fetching $url" >&2
curl -fsSL --retry 3 -o "$work/src.tar.xz" "$url"
if ! echo "$sha256  $work/src.tar.xz" | sha256sum -c --quiet - >&2; then
  echo "criu: $url does not have the sha256 Debian trixie lists ($sha256); not building it" >&2
  exit 1
fi
tar -xJf "$work/src.tar.xz" -C "$work"
echo "criu: building $version" >&2
if ! make -C "$work/criu-$version" -j"$(nproc)" criu >"$work/build.log" 2>&1; then
  tail -30 "$work/build.log" >&2
  echo "criu: the build of $version failed (log above)" >&2
  exit 1
fi
mkdir -p "$dir"
install -m 0755 "$work/criu-$version/criu/criu" "$bin.tmp"
mv "$bin.tmp" "$bin"
if ! "$bin" check >&2; then
  echo "criu: $bin was built but \`criu check\` fails on this kernel ($(uname -r)): hull's checkpoints will say so" >&2
fi
echo "$bin"
