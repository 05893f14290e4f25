#!/usr/bin/env bash
# Makes the local Python base image the seed's Dockerfile starts FROM (no public registry is
# reachable here): a Debian 12 minbase rootfs with python3, pip and `python` on PATH, built
# once with mmdebstrap, cached as a tarball, and imported with `berth-build import`.
#
#   scripts/python-base.sh BERTH_BUILD [NAME]      (NAME defaults to localhost/python:3-slim)
#
# Trust: outgoing HTTPS here passes an intercepting proxy that the host trusts, so pip in a
# RUN step must trust it too. We copy the host's extra CAs (/usr/local/share/ca-certificates)
# into the base and run update-ca-certificates there, the way a company bakes its CA into
# its base images: every build on this machine then works unchanged (no Dockerfile edits,
# no per-RUN mounts), and on a machine without such CAs nothing is added.
# pip: Debian marks its python "externally managed" (PEP 668), which makes the seed's plain
# `pip install` fail; the official python images carry no such marker, so the base drops it.
set -euo pipefail
BB=${1:?usage: python-base.sh BERTH_BUILD [NAME]}
NAME=${2:-localhost/python:3-slim}
CACHE=${BERTH_CACHE_DIR:-/var/cache/berth}
TAR="$CACHE/python-3-slim-bookworm.tar"

if "$BB" images -q "$NAME" 2>/dev/null | grep -q .; then
  exit 0
fi
mkdir -p "$CACHE"
if [ ! -s "$TAR" ]; then
  echo "== making the Python base rootfs with mmdebstrap (once; cached in $TAR)"
  t0=$(date +%s)
  rm -rf "$TAR.tmp" # what an interrupted run left
  command -v mmdebstrap >/dev/null || apt-get install -y -qq mmdebstrap >/dev/null
  mmdebstrap --quiet --variant=minbase --format=tar \
    --include=python3,python3-pip,python-is-python3,ca-certificates \
    --aptopt='Acquire::Retries "3"' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --customize-hook='for c in /usr/local/share/ca-certificates/*.crt; do [ -e "$c" ] && cp "$c" "$1/usr/local/share/ca-certificates/"; done; chroot "$1" update-ca-certificates >/dev/null 2>&1' \
    --customize-hook='rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED; rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*' \
    bookworm "$TAR.tmp" http://deb.debian.org/debian
  mv "$TAR.tmp" "$TAR"
  echo "== base rootfs made in $(($(date +%s) - t0)) s"
fi
echo "== berth-build import $TAR $NAME"
"$BB" import "$TAR" "$NAME" -c 'ENV LANG=C.UTF-8' -c 'CMD ["python3"]' >/dev/null
