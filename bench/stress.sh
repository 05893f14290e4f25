#!/usr/bin/env bash
# Stress and leaks: N sequential create/start/delete cycles of a busybox /bin/true bundle,
# then M containers at once (created in parallel, started, listed, deleted in parallel),
# then a leak report: leftover cgroup directories, mounts, state entries, container
# processes, stray berth processes, descriptors open in the containers' inits and in berth
# itself (a foreground `berth run` before and after the cycles). Fails on any leak, and when
# the per-cycle time grows: mean of the last 10% of cycles > GROWTH (default 1.25) × mean
# of the first 10%. The output is also saved in bench/results/stress-DATE.txt.
# Usage (as root): bash bench/stress.sh [CYCLES=1000] [CONCURRENT=50]
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-1000}
M=${2:-50}
GROWTH=${GROWTH:-1.25}
B="${BERTH:-$PWD/target/release/berth}"
[ -x "$B" ] || cargo build --release -p berth-runtime
mkdir -p bench/results
out="bench/results/stress-$(date -u +%Y%m%d-%H%M%S).txt"
exec > >(tee "$out") 2>&1
echo "bench/stress.sh $N $M: $(date -u '+%F %T UTC'), $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg), $("$B" --version 2>/dev/null | head -1)"
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

# Descriptors a foreground `berth run` holds while its container runs (berth's own, not the
# container's): the same before and after the cycles, or berth keeps something per container.
berth_fds() {
  local id="$PFX-fds$1" pid n=0
  "$B" --root "$ROOT" run --bundle "$work/sleep" "$id" </dev/null >/dev/null 2>&1 &
  pid=$!
  until [ "$("$B" --root "$ROOT" state "$id" 2>/dev/null | jq -r .status 2>/dev/null)" = running ] || [ $n -ge 500 ]; do
    sleep 0.01
    n=$((n + 1))
  done
  ls "/proc/$pid/fd" | wc -l
  "$B" --root "$ROOT" kill "$id" KILL 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  "$B" --root "$ROOT" delete --force "$id" 2>/dev/null || true
}
fds_before=$(berth_fds 0)

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
avg() { local s=0 n=0 v; for v in "$@"; do s=$((s + v)); n=$((n + 1)); done; echo $((s / n)); }
first=$(avg "${times[@]:0:$k}")
last=$(avg "${times[@]: -$k}")
growth=$(awk -v a="$first" -v b="$last" 'BEGIN { printf "%.2f", b / a }')
grew=$(awk -v g="$growth" -v max="$GROWTH" 'BEGIN { print (g > max) ? 1 : 0 }')
echo "total $(( ($(date +%s%N) - t_all) / 1000000 )) ms; mean per cycle: first $k cycles $((first / 1000)) ms, last $k cycles $((last / 1000)) ms (x$growth, limit x$GROWTH)"

echo "== $M containers at once"
t=$(date +%s%N)
seq "$M" | xargs -P "$M" -I{} sh -c "'$B' --root '$ROOT' create --bundle '$work/sleep' $PFX-c{} </dev/null >/dev/null 2>&1"
seq "$M" | xargs -P "$M" -I{} "$B" --root "$ROOT" start "$PFX-c{}"
running=$("$B" --root "$ROOT" list -f json | jq '[.[] | select(.status == "running")] | length')
fds=$("$B" --root "$ROOT" list -f json | jq -r '.[].pid' | while read -r p; do ls "/proc/$p/fd" | wc -l; done | sort -u | tr '\n' ' ')
seq "$M" | xargs -P "$M" -I{} "$B" --root "$ROOT" delete --force "$PFX-c{}"
echo "$running of $M running at once; descriptors open in their init processes: $fds(stdio only is 3); took $(( ($(date +%s%N) - t) / 1000000 )) ms"
fds_after=$(berth_fds 1)

echo "== leak report"
cg=$(find /sys/fs/cgroup -maxdepth 6 -type d -name "$PFX-*" 2>/dev/null | wc -l)
mnt=$(grep -c "$work" /proc/self/mountinfo || true)
st=$(find "$ROOT" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)
procs=$(pgrep -f "^sleep $SLEEP\$" -c || true)
# Any berth process (whatever stage name it set) still working on this run's state root.
strays=$(pgrep -c -f -- "--root $ROOT" || true)
echo "leftover cgroup dirs:  $cg"
echo "leftover mounts:       $mnt"
echo "leftover state dirs:   $st"
echo "leftover processes:    $procs"
echo "stray berth processes: $strays"
echo "init descriptors:      $fds"
echo "berth run descriptors: $fds_before before the cycles, $fds_after after"
fail=0
if [ "$running" -ne "$M" ] || [ "$cg" -ne 0 ] || [ "$mnt" -ne 0 ] || [ "$st" -ne 0 ] || [ "$procs" -ne 0 ] || [ "$strays" -ne 0 ] || [ "$fds" != "3 " ] || [ "$fds_before" != "$fds_after" ]; then
  echo "LEAK OR FAILURE"
  fail=1
fi
if [ "$grew" -eq 1 ]; then
  echo "PER-CYCLE TIME GREW: x$growth from the first to the last $k cycles (limit x$GROWTH)"
  fail=1
fi
[ $fail -eq 0 ] && echo "no leaks, no growth"
echo "saved in $out"
exit $fail
