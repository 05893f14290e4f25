#!/usr/bin/env bash
# One-time set-up for a fresh Debian 12 machine, as root: the packages Berth's tests and
# demo use, then one release build of the whole workspace (shared by every suite).
set -euo pipefail
cd "$(dirname "$0")/.."

PKGS=(runc crun busybox-static hyperfine jq iproute2 iptables procps strace
      skopeo umoci buildah zstd libcap2-bin python3-jsonschema
      golang-github-opencontainers-specs-dev golang-github-opencontainers-image-spec-dev
      containernetworking-plugins docker-registry apache2-utils curl ca-certificates containerd
      mmdebstrap time gcc libc6-dev openssl uidmap)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "== apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
  if [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
  else
    echo "== no Rust toolchain: installing Debian's rustc/cargo" >&2
    apt-get install -y -qq cargo >/dev/null
  fi
fi

echo "== cargo build --release --workspace"
cargo build --release --workspace --bins --quiet
