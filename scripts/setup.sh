#!/usr/bin/env bash
# One-time set-up for a fresh Debian 12 machine, as root: the packages Berth's tests and
# demo use, then one release build of the whole workspace (shared by every suite).
#   scripts/setup.sh --vm   only what the VM suite needs (scripts/vm.sh): qemu-system-x86 from
#                           bookworm-backports (bookworm's own conflicts with the backports
#                           qemu-utils these machines have) and mmdebstrap.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "${1:-}" = --vm ]; then
  export DEBIAN_FRONTEND=noninteractive
  if ! command -v qemu-system-x86_64 >/dev/null || ! command -v mmdebstrap >/dev/null; then
    if ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
      printf '%s\n' 'Types: deb' 'URIs: http://deb.debian.org/debian' 'Suites: bookworm-backports' \
        'Components: main' 'Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg' \
        >/etc/apt/sources.list.d/bookworm-backports.sources
    fi
    echo "== apt-get install qemu-system-x86 (bookworm-backports) mmdebstrap"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends -t bookworm-backports qemu-system-x86 qemu-utils >/dev/null
    apt-get install -y -qq --no-install-recommends mmdebstrap >/dev/null
  fi
  exit 0
fi

PKGS=(runc crun busybox-static hyperfine jq iproute2 iptables procps strace
      skopeo umoci buildah zstd libcap2-bin python3-jsonschema
      golang-github-opencontainers-specs-dev golang-github-opencontainers-image-spec-dev
      containernetworking-plugins docker-registry apache2-utils curl ca-certificates containerd
      mmdebstrap time gcc libc6-dev openssl uidmap protobuf-compiler)
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
