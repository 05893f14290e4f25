#!/usr/bin/env bash
# The main job: set-up, then a container's whole life with berth, printed as a user would
# type it: make a bundle from busybox, run it, create/start/state/exec/kill/delete.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
B="$PWD/target/release/berth"
work=$(mktemp -d /tmp/berth-demo.XXXXXX)
ID=demo-$$
cleanup() { "$B" delete --force "$ID" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
show() { echo; echo "\$ $*"; "$@"; }

mkdir -p "$work/rootfs/bin"
cp /bin/busybox "$work/rootfs/bin/"
chroot "$work/rootfs" /bin/busybox --install -s /bin
cd "$work"
show "$B" spec
jq '.process.terminal=false | .process.args=["sh","-c","echo Hello from a berth container; hostname; id"]' config.json > c && mv c config.json
start=$(date +%s%N)
show "$B" run "$ID"
echo "(run took $(( ($(date +%s%N) - start) / 1000000 )) ms)"

jq '.process.args=["sleep","300"]' config.json > c && mv c config.json
show "$B" create --bundle "$work" "$ID"
show "$B" state "$ID"
show "$B" start "$ID"
show "$B" list
show "$B" exec "$ID" sh -c 'echo "exec joined pid namespace: $(readlink /proc/self/ns/pid)"; ps'
show "$B" ps "$ID"
show "$B" kill "$ID" KILL
sleep 0.2
show "$B" state "$ID"
show "$B" delete "$ID"
echo; echo "demo finished"
