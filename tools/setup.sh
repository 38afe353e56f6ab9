#!/usr/bin/env bash
# Installs everything boxd needs on Debian 12: the system packages the runtime
# and its tests use, then the npm workspace, built (so `npx boxd` runs).
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  runc crun conmon criu
  containerd            # upstream 1.6: ctr, containerd-shim-runc-v2 (interop peer)
  golang-github-containerd-containerd-dev golang-github-containerd-cgroups-dev  # upstream .proto files to check ours against
  golang-go golang-github-containerd-ttrpc-dev  # the Go ttrpc peer in e2e/
  skopeo umoci busybox-static docker-registry
  containernetworking-plugins zstd tmux
  libisal2              # ISA-L: the diff plugin inflates gzip layers with it (zlib if missing)
)

if [ "$(id -u)" = 0 ]; then SUDO=""; else SUDO="sudo"; fi
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  $SUDO apt-get update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

npm ci --no-audit --no-fund
npm run build
