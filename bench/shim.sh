#!/usr/bin/env bash
# containerd shims side by side: containerd-shim-berth-v2 (driving berth) vs containerd's own
# containerd-shim-runc-v2 (driving runc), under one private containerd started here.
#  1. `ctr run --rm IMAGE id /bin/true`, both runtimes in one hyperfine run (medians, ratio);
#  2. memory of 1 and of 20 shims each supervising a sleeping container: Pss (and Rss) from
#     /proc/PID/smaps_rollup.
# Usage (as root): bash bench/shim.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-30}
T="${TARGET:-$PWD/target/release}"
for b in containerd-shim-berth-v2 berth berth-build; do
  [ -x "$T/$b" ] || cargo build --release --workspace --bins
done
command -v containerd >/dev/null || { echo "containerd is not installed (apt-get install containerd)" >&2; exit 1; }
work=$(mktemp -d /tmp/berth-shim-bench.XXXXXX)
sock="$work/containerd.sock"
C=(ctr --address "$sock" -n berth-bench)
cleanup() {
  for id in $("${C[@]}" task ls -q 2>/dev/null); do "${C[@]}" task kill -s KILL "$id" >/dev/null 2>&1 || true; done
  sleep 0.5
  for id in $("${C[@]}" task ls -q 2>/dev/null); do "${C[@]}" task rm -f "$id" >/dev/null 2>&1 || true; done
  for id in $("${C[@]}" c ls -q 2>/dev/null); do "${C[@]}" c rm "$id" >/dev/null 2>&1 || true; done
  [ -f "$work/containerd.pid" ] && kill "$(cat "$work/containerd.pid")" 2>/dev/null && sleep 1
  grep -o " $work[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# a private containerd with the berth shim on its PATH
mkdir -p "$work/bin" "$work/rootfs/bin"
ln -s "$T/containerd-shim-berth-v2" "$work/bin/"
cat > "$work/config.toml" <<EOF
version = 2
root = "$work/root"
state = "$work/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$sock"
EOF
PATH="$work/bin:$PATH" BERTH_RUNTIME="$T/berth" containerd --config "$work/config.toml" >"$work/containerd.log" 2>&1 &
echo $! > "$work/containerd.pid"
for _ in $(seq 100); do "${C[@]}" version >/dev/null 2>&1 && break; sleep 0.1; done

# the image: busybox, made and saved by berth-build, imported by ctr
cp /bin/busybox "$work/rootfs/bin/"
chroot "$work/rootfs" /bin/busybox --install -s /bin
IMAGE=berth-bench/busybox:latest
"$T/berth-build" --store "$work/store" import "$work/rootfs" "$IMAGE" -c 'CMD ["sh"]' >/dev/null
"$T/berth-build" --store "$work/store" save -o "$work/image.tar" "$IMAGE"
"${C[@]}" image import "$work/image.tar" >/dev/null

cat > "$work/run.sh" <<EOS
#!/bin/sh
# one ctr run --rm of /bin/true with runtime \$1
exec ctr --address $sock -n berth-bench run --rm --runtime \$1 $IMAGE b\$\$ /bin/true
EOS
chmod +x "$work/run.sh"
out="$work/out.txt"
{
  echo "== ctr run --rm $IMAGE id /bin/true ($RUNS runs each)"
  hyperfine -N --warmup 3 --runs "$RUNS" --export-json "$work/h.json" \
    -n runc-shim "$work/run.sh io.containerd.runc.v2" -n berth-shim "$work/run.sh io.containerd.berth.v2"
  python3 - "$work/h.json" <<'PY'
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
med = {k: v["median"] * 1000 for k, v in r.items()}
print("median ms: " + ", ".join(f"{k} {v:.1f}" for k, v in med.items()))
print(f"berth-shim/runc-shim = {med['berth-shim'] / med['runc-shim']:.2f}x")
PY
} | tee "$out"

# Pss/Rss (KiB) summed over the shims of one runtime
shim_mem() {
  local name=$1 pss=0 rss=0 n=0
  for p in $(pgrep -f "^[^ ]*$name -namespace berth-bench .*-address $sock( |$)"); do
    read -r r s < <(awk '/^Rss:/{r=$2} /^Pss:/{s=$2} END{print r, s}' "/proc/$p/smaps_rollup")
    rss=$((rss + r)); pss=$((pss + s)); n=$((n + 1))
  done
  echo "$n $pss $rss"
}
declare -A PSS1 PSS20
for rt in runc berth; do
  "${C[@]}" run -d --runtime "io.containerd.$rt.v2" "$IMAGE" "m-$rt-1" sleep 100000 >/dev/null
  sleep 2
  read -r n pss rss < <(shim_mem "containerd-shim-$rt-v2")
  PSS1[$rt]=$pss
  echo "1 $rt shim: Pss $pss KiB, Rss $rss KiB" | tee -a "$out"
  for i in $(seq 2 20); do
    "${C[@]}" run -d --runtime "io.containerd.$rt.v2" "$IMAGE" "m-$rt-$i" sleep 100000 >/dev/null
  done
  sleep 2
  read -r n pss rss < <(shim_mem "containerd-shim-$rt-v2")
  PSS20[$rt]=$pss
  echo "$n $rt shims: Pss total $pss KiB ($((pss / n)) each), Rss total $rss KiB" | tee -a "$out"
  for i in $(seq 1 20); do "${C[@]}" task kill -s KILL "m-$rt-$i" >/dev/null 2>&1 || true; done
  sleep 1
  for i in $(seq 1 20); do "${C[@]}" task rm -f "m-$rt-$i" >/dev/null 2>&1 || true; "${C[@]}" c rm "m-$rt-$i" >/dev/null 2>&1 || true; done
done
python3 - "${PSS1[berth]}" "${PSS1[runc]}" "${PSS20[berth]}" "${PSS20[runc]}" <<'PY' | tee -a "$out"
import sys
b1, r1, b20, r20 = map(int, sys.argv[1:])
print(f"Pss ratio berth/runc: 1 shim {b1 / r1:.2f}x (target <= 0.25x), 20 shims {b20 / r20:.2f}x (target <= 0.5x)")
PY
mkdir -p bench/results
cp "$out" "bench/results/shim-$(date +%Y%m%d-%H%M).txt"
