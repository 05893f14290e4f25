#!/usr/bin/env bash
# Stress and leaks: N sequential create/start/delete cycles of a busybox /bin/true bundle,
# then M containers at once (created in parallel, started, listed, deleted in parallel),
# then a leak report: leftover cgroup directories, mounts, state entries, processes, and
# descriptors open in the containers' init processes. Per-cycle time of the first and the
# last 10% of the cycles shows whether it grows with the count. Exits 1 on any leak.
# Usage (as root): bash bench/stress.sh [CYCLES=1000] [CONCURRENT=50]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000}
M=${2:-50}
B="${BERTH:-$PWD/target/release/berth}"
[ -x "$B" ] || cargo build --release -p berth-runtime
work=$(mktemp -d /tmp/berth-stress.XXXXXX)
ROOT="$work/state"
PFX="stress$$"
SLEEP=$((3000 + $$ % 1000)) # a sleep length of our own, to count our processes
trap 'for i in $("$B" --root "$ROOT" list -q 2>/dev/null); do "$B" --root "$ROOT" delete --force "$i"; done; rm -rf "$work"' EXIT
mkdir -p "$work/bundle/rootfs/bin"
cp /bin/busybox "$work/bundle/rootfs/bin/"
chroot "$work/bundle/rootfs" /bin/busybox --install -s /bin
"$B" spec --bundle "$work/bundle"
jq '.process.terminal=false | .process.args=["/bin/true"]' "$work/bundle/config.json" >"$work/c" && mv "$work/c" "$work/bundle/config.json"
mkdir -p "$work/sleep"
ln -s "$work/bundle/rootfs" "$work/sleep/rootfs"
jq --arg s "$SLEEP" '.process.args=["sleep",$s]' "$work/bundle/config.json" >"$work/sleep/config.json"

echo "== $N sequential create/start/delete cycles"
times=()
t_all=$(date +%s%N)
for i in $(seq "$N"); do
  t=$(date +%s%N)
  "$B" --root "$ROOT" create --bundle "$work/bundle" "$PFX-$i" </dev/null >/dev/null 2>&1
  "$B" --root "$ROOT" start "$PFX-$i"
  "$B" --root "$ROOT" delete --force "$PFX-$i"
  times+=($(( ($(date +%s%N) - t) / 1000 )))
done
k=$(( N / 10 > 0 ? N / 10 : 1 ))
avg() { local s=0 n=0 v; for v in "$@"; do s=$((s + v)); n=$((n + 1)); done; echo $((s / n / 1000)); }
first=$(avg "${times[@]:0:$k}")
last=$(avg "${times[@]: -$k}")
echo "total $(( ($(date +%s%N) - t_all) / 1000000 )) ms; mean per cycle: first $k cycles $first ms, last $k cycles $last ms"

echo "== $M containers at once"
t=$(date +%s%N)
seq "$M" | xargs -P "$M" -I{} sh -c "'$B' --root '$ROOT' create --bundle '$work/sleep' $PFX-c{} </dev/null >/dev/null 2>&1"
seq "$M" | xargs -P "$M" -I{} "$B" --root "$ROOT" start "$PFX-c{}"
running=$("$B" --root "$ROOT" list -f json | jq '[.[] | select(.status == "running")] | length')
fds=$("$B" --root "$ROOT" list -f json | jq -r '.[].pid' | while read -r p; do ls "/proc/$p/fd" | wc -l; done | sort -u | tr '\n' ' ')
seq "$M" | xargs -P "$M" -I{} "$B" --root "$ROOT" delete --force "$PFX-c{}"
echo "$running of $M running at once; descriptors open in their init processes: $fds(stdio only is 3); took $(( ($(date +%s%N) - t) / 1000000 )) ms"

echo "== leak report"
cg=$(find /sys/fs/cgroup -maxdepth 6 -type d -name "$PFX-*" 2>/dev/null | wc -l)
mnt=$(grep -c "$work" /proc/self/mountinfo || true)
st=$(find "$ROOT" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
procs=$(pgrep -f "^sleep $SLEEP\$" -c || true)
echo "leftover cgroup dirs: $cg"
echo "leftover mounts:      $mnt"
echo "leftover state dirs:  $st"
echo "leftover processes:   $procs"
echo "init descriptors:     $fds"
if [ "$running" -ne "$M" ] || [ "$cg" -ne 0 ] || [ "$mnt" -ne 0 ] || [ "$st" -ne 0 ] || [ "$procs" -ne 0 ] || [ "$fds" != "3 " ]; then
  echo "LEAK OR FAILURE"
  exit 1
fi
echo "no leaks"
