#!/usr/bin/env bash
# Installs what hull's build, tests, demo and benchmarks need, if missing.
# Idempotent, and quick when everything is present.
set -euo pipefail

pkgs=(
  gcc libc6-dev pkg-config libsqlite3-dev libseccomp-dev   # cgo: metadata DB, seccomp, static hull-init
  docker-registry                               # the registry tests push to
  busybox-static                                # the root of every test image
  skopeo                                        # cross-tool archive and layout tests
  iproute2 util-linux                           # ip netns, nsenter, unshare
  gzip bzip2 xz-utils zstd                      # compressed archives for cp - tests
  jq curl                                       # test/kubelet.sh: kubelet's /pods JSON and endpoints
)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The registry package enables a system service; tests start their own.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet docker-registry 2>/dev/null; then
  systemctl stop docker-registry || true
fi

if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
  export PATH=/usr/local/go/bin:$PATH
fi
cd "$(dirname "$0")/.."
go mod download
