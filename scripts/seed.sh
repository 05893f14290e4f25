#!/usr/bin/env bash
# The main job: the seed tutorial (docker-container-basics) end to end, with Berth doing every
# step docker does there. Each step prints the command a user would type and its output, and
# checks its result (this same script is the end-to-end test in scripts/test.sh):
#   1 build the helloworld Flask image (and again: fully cached)   2 images / inspect layers
#   3 bundle with --publish 4000:80, berth run -d, list, overlay    4 curl port and container IP
#   5 namespaces of its pid, berth exec touch test.txt               6 commit v2, tag v1 and v2
#   7 push both to a local registry                                  8 run v2 with containerd
#   9 clean up, total time
# Re-running is idempotent: the base image and the build are cached in the store.
# Env: BERTH_STORE (default /var/lib/berth), SEED_SKIP_SETUP=1 (set-up already done),
#      SEED_EXPECT_CACHED=1 (a re-run: check the first build is all cached too),
#      SEED_REGISTRY_PORT (5000), SEED_PORT (4000), SEED_CTR_RUNTIME (io.containerd.berth.v2;
#      io.containerd.runc.v2 with SEED_CTR_ARGS="--runc-binary PATH/berth" is runc's shim on berth).
set -euo pipefail
cd "$(dirname "$0")/.."
T0=$(date +%s%N)
[ -n "${SEED_SKIP_SETUP:-}" ] || bash scripts/setup.sh
ROOT=$PWD
BIN=$ROOT/target/release
export PATH="$BIN:$PATH" # berth, berth-build and containerd-shim-berth-v2, as if installed
export BERTH_STORE=${BERTH_STORE:-/var/lib/berth}
PORT=${SEED_PORT:-4000}
REG_PORT=${SEED_REGISTRY_PORT:-5000}
REGISTRY=localhost:$REG_PORT
ID=helloworld
CTR_RUNTIME=${SEED_CTR_RUNTIME:-io.containerd.berth.v2}
NS=berth-seed
WORK=$(mktemp -d /tmp/berth-seed.XXXXXX)
BUNDLE=$WORK/helloworld
CTRD=$WORK/containerd

step() { echo; echo "=== $*"; }
# Print the command as a user would type it (arguments with spaces quoted), then run it.
show() {
  local a line="$"
  for a in "$@"; do case $a in *[[:space:]]*) line+=" '$a'";; *) line+=" $a";; esac; done
  echo "$line"; "$@"
}
fail() { echo "seed: FAILED: $*" >&2; exit 1; }
check() { if eval "$1"; then echo "  ok: $2"; else fail "$2"; fi; }
CTR=(ctr --address "$CTRD/c.sock" --namespace "$NS")
port_free() { ! ss -Hltn "sport = :$1" | grep -q .; }

# Undo everything the scenario started. Quiet from the EXIT trap (a failure's message stays
# last); at step 9 it prints each command as a user would type it.
cleanup() {
  set +e
  local say=${1:-}
  run_() { if [ -n "$say" ]; then show "$@" 2>&1 | sed 's/^/  /'; else "$@" >/dev/null 2>&1; fi; }
  if [ -S "$CTRD/c.sock" ]; then
    run_ ctr --address "$CTRD/c.sock" --namespace "$NS" task kill -s KILL hw-ctr && sleep 0.3
    run_ ctr --address "$CTRD/c.sock" --namespace "$NS" task delete hw-ctr
    run_ ctr --address "$CTRD/c.sock" --namespace "$NS" container delete hw-ctr
    run_ ctr --address "$CTRD/c.sock" --namespace "$NS" image rm "$REGISTRY/helloworld:v2"
  fi
  if [ -n "${CTRD_PID:-}" ]; then
    [ -n "$say" ] && echo "\$ kill $CTRD_PID   # containerd"
    kill "$CTRD_PID" 2>/dev/null && wait "$CTRD_PID" 2>/dev/null
  fi
  berth state "$ID" >/dev/null 2>&1 && run_ berth delete --force "$ID"
  [ -d "$BUNDLE" ] && run_ berth-build bundle --rm "$BUNDLE"
  # berth0 and portmap's chains go once no container uses them.
  run_ berth-build network-hook prune /
  if [ -n "${REG_PID:-}" ]; then
    [ -n "$say" ] && echo "\$ kill $REG_PID   # docker-registry"
    kill "$REG_PID" 2>/dev/null && wait "$REG_PID" 2>/dev/null
  fi
  grep -o " $WORK[^ ]*" /proc/mounts | sort -r | xargs -r -n1 umount -l 2>/dev/null
  [ -n "$say" ] && echo "\$ rm -rf $WORK"
  rm -rf "$WORK"
}
trap cleanup EXIT

for p in "$PORT" "$REG_PORT" 80; do port_free "$p" || fail "port $p on the host is in use"; done
berth delete --force "$ID" >/dev/null 2>&1 || true
BRIDGE_BEFORE=$(ip -o link show berth0 2>/dev/null || true)

step "0. The base image: a local stand-in for python:2.7-slim (made once, then cached)"
show bash scripts/python-base.sh "$BIN/berth-build" localhost/python:3-slim
show berth-build images localhost/python

step "1. Build the image from the seed's Dockerfile"
cd examples/helloworld
show ls
show berth-build build -t helloworld . 2>&1 | tee "$WORK/build1.log"
check "grep -q 'naming to helloworld:latest' '$WORK/build1.log'" "image built and tagged helloworld:latest"
[ -z "${SEED_EXPECT_CACHED:-}" ] ||
  check "[ \$(grep -c CACHED '$WORK/build1.log') -eq 3 ]" "a re-run's first build is cached too (idempotent)"
echo "\$ berth-build build -t helloworld .   # again: every step comes from the cache"
t=$(date +%s%N)
berth-build build -t helloworld . >"$WORK/build2.log" 2>&1
ms=$(( ($(date +%s%N) - t) / 1000000 ))
grep -E 'CACHED|writing image' "$WORK/build2.log"
echo "(second build: $ms ms)"
check "[ \$(grep -c CACHED '$WORK/build2.log') -eq 3 ] && [ $ms -lt 1000 ]" "second build fully cached (3 layer steps CACHED) in $ms ms < 1 s"
cd "$ROOT"

step "2. The image and its layers"
show berth-build images helloworld
layers() { berth-build inspect "$1" | jq -r '.[0].RootFS.Layers[]'; }
echo "\$ berth-build inspect localhost/python:3-slim | jq .[0].RootFS"
berth-build inspect localhost/python:3-slim | jq '.[0].RootFS'
echo "\$ berth-build inspect helloworld | jq .[0].RootFS"
berth-build inspect helloworld | jq '.[0].RootFS'
BASE=$(layers localhost/python:3-slim); V1=$(layers helloworld)
nb=$(echo "$BASE" | wc -l); n1=$(echo "$V1" | wc -l)
check "[ \"\$(echo \"\$V1\" | head -n $nb)\" = \"\$BASE\" ] && [ $n1 -eq $((nb + 3)) ]" \
  "helloworld's $n1 layers begin with the base's $nb, plus WORKDIR, ADD and RUN"

step "3. Run it, publishing port $PORT to the container's port 80"
show berth-build bundle --publish "$PORT:80" helloworld "$BUNDLE"
echo "\$ berth run -d --bundle $BUNDLE $ID > $WORK/app.log 2>&1"
berth run -d --bundle "$BUNDLE" "$ID" >"$WORK/app.log" 2>&1
show berth list
check "berth list --format json | jq -e '.[] | select(.id == \"$ID\" and .status == \"running\")' >/dev/null" "berth list shows $ID running"
echo "\$ grep $BUNDLE/rootfs /proc/mounts"
grep " $BUNDLE/rootfs " /proc/mounts
show berth-build mounts "$BUNDLE"
opts=$(grep " $BUNDLE/rootfs " /proc/mounts | awk '{print $4}')
nlow=$(echo "$opts" | tr ',' '\n' | grep '^lowerdir=' | tr ':' '\n' | wc -l)
# The lowerdirs must be the image's own layer snapshots, as `berth-build mounts` names them.
lows=$(echo "$opts" | tr ',' '\n' | sed -n 's/^lowerdir=//p' | tr ':' '\n' | sort)
named=$(berth-build mounts "$BUNDLE" | grep -o '/[^ ]*' | grep -Fx -f <(echo "$lows") | sort -u)
check "[ $nlow -eq $n1 ] && [ \"\$named\" = \"\$lows\" ] && [ \$(echo '$opts' | tr ',' '\n' | grep -c '^upperdir=') -eq 1 ]" \
  "rootfs is an overlay: $nlow lowerdirs (the image's $n1 layer snapshots) and one upper dir"

step "4. Reach the app"
HOST=$(jq -r .hostname "$BUNDLE/config.json")
IP=$(jq -r '.annotations["io.berth.network.ip"]' "$BUNDLE/config.json")
for _ in $(seq 100); do curl -fs "http://127.0.0.1:$PORT" >/dev/null 2>&1 && break; sleep 0.2; done
WANT="<h3>Hello World!</h3><b>Hostname:</b> $HOST<br/>"
show curl -s "http://127.0.0.1:$PORT"; echo
check "[ \"\$(curl -s http://127.0.0.1:$PORT)\" = \"\$WANT\" ]" "port $PORT answers with the container's hostname $HOST"
show curl -s "http://$IP:80"; echo
check "[ \"\$(curl -s http://$IP:80)\" = \"\$WANT\" ]" "the container's own address $IP answers on port 80"

step "5. Exec: join the container's namespaces"
echo "\$ berth state $ID | jq .pid"
PID=$(berth state "$ID" | jq .pid); echo "$PID"
printf '%-8s %-24s %s\n' NS "HOST (this shell)" "CONTAINER (pid $PID)"
diff=0
for n in cgroup ipc mnt net pid user uts; do
  h=$(readlink /proc/$$/ns/$n); c=$(readlink /proc/$PID/ns/$n)
  printf '%-8s %-24s %s\n' "$n" "$h" "$c"
  case $n in ipc|mnt|net|pid|uts) [ "$h" != "$c" ] && diff=$((diff + 1));; esac
done
check "[ $diff -eq 5 ]" "ipc, mnt, net, pid and uts namespaces differ from the host's"
show berth exec "$ID" sh -c 'touch test.txt && pwd && ls'
check "[ -f '$BUNDLE/upper/app/test.txt' ]" "test.txt made through exec lands in the bundle's upper dir"

step "6. Commit the running container, then tag"
show berth-build commit "$BUNDLE" helloworld:v2 --pause "$ID"
show berth-build tag helloworld:latest "$REGISTRY/helloworld:v1"
show berth-build tag helloworld:v2 "$REGISTRY/helloworld:v2"
show berth-build images "$REGISTRY/helloworld"
V2=$(layers helloworld:v2); n2=$(echo "$V2" | wc -l)
top=$(berth-build inspect helloworld:v2 | jq -r '.[0].Manifest.layers[-1].digest' | cut -d: -f2)
check "[ $n2 -eq $((n1 + 1)) ] && [ \"\$(echo \"\$V2\" | head -n $n1)\" = \"\$V1\" ]" "v2 has v1's $n1 layers plus one"
check "tar -tzf '$BERTH_STORE/blobs/sha256/$top' | grep -qx 'app/test.txt'" "v2's new layer holds app/test.txt"

step "7. Push both tags to a registry (Debian's docker-registry on 127.0.0.1:$REG_PORT)"
mkdir -p "$WORK/registry"
printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: 127.0.0.1:%s\n' \
  "$WORK/registry/data" "$REG_PORT" >"$WORK/registry/config.yml"
echo "\$ docker-registry serve $WORK/registry/config.yml &"
docker-registry serve "$WORK/registry/config.yml" >"$WORK/registry/log" 2>&1 &
REG_PID=$!
for _ in $(seq 50); do curl -fs "http://127.0.0.1:$REG_PORT/v2/" >/dev/null && break; sleep 0.1; done
show berth-build push "$REGISTRY/helloworld:v1" | tee "$WORK/push1.log"
show berth-build push "$REGISTRY/helloworld:v2" | tee "$WORK/push2.log"
check "[ \$(grep -c 'Layer already exists' '$WORK/push2.log') -eq $n1 ] && [ \$(grep -c ': Pushed' '$WORK/push2.log') -eq 1 ]" \
  "v2's push uploads one layer; its $n1 shared layers already exist"

step "8. The same image through containerd, with the berth shim"
mkdir -p "$CTRD"
printf 'version = 2\nroot = "%s/root"\nstate = "%s/state"\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n[grpc]\n  address = "%s/c.sock"\n[ttrpc]\n  address = "%s/c.sock.ttrpc"\n' \
  "$CTRD" "$CTRD" "$CTRD" "$CTRD" >"$CTRD/config.toml"
echo "\$ containerd --config $CTRD/config.toml &"
containerd --config "$CTRD/config.toml" >"$CTRD/log" 2>&1 &
CTRD_PID=$!
for _ in $(seq 100); do [ -S "$CTRD/c.sock" ] && break; sleep 0.1; done
show berth-build save -o "$WORK/helloworld-v2.tar" --format oci-archive "$REGISTRY/helloworld:v2"
show "${CTR[@]}" image import "$WORK/helloworld-v2.tar"
# shellcheck disable=SC2086
show "${CTR[@]}" run -d --net-host --runtime "$CTR_RUNTIME" ${SEED_CTR_ARGS:-} "$REGISTRY/helloworld:v2" hw-ctr
show "${CTR[@]}" task ls
for _ in $(seq 100); do curl -fs http://127.0.0.1:80 >/dev/null 2>&1 && break; sleep 0.2; done
show curl -s http://127.0.0.1:80; echo
check "curl -s http://127.0.0.1:80 | grep -q '<h3>Hello World!</h3>'" "the containerd-run container answers on port 80 (host network)"
show "${CTR[@]}" task exec --exec-id ls1 hw-ctr ls /app | tee "$WORK/ls.log"
check "grep -qx test.txt '$WORK/ls.log'" "the committed test.txt is in the image containerd runs"

step "9. Clean up"
cleanup say
trap - EXIT
check "! berth state $ID >/dev/null 2>&1 && ! grep -q '$WORK' /proc/mounts && [ ! -e '$WORK' ]" "no container, mount, bundle or work dir left"
check "! kill -0 $REG_PID 2>/dev/null && ! kill -0 $CTRD_PID 2>/dev/null" "registry and containerd stopped"
check "port_free $PORT && port_free $REG_PORT && port_free 80" "ports $PORT, $REG_PORT and 80 free again"
[ -n "$BRIDGE_BEFORE" ] || check "! ip link show berth0 >/dev/null 2>&1" "the berth0 bridge is gone (no container uses it)"
echo
echo "seed scenario done in $(( ($(date +%s%N) - T0) / 1000000 )) ms"
