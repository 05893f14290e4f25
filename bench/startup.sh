#!/usr/bin/env bash
# Container start-up cost: create + start + delete of a busybox bundle running /bin/true,
# berth vs runc vs crun side by side in one hyperfine run, plus each runtime's peak RSS.
# All three run inside one private mount namespace with /sys/fs/cgroup/unified unmounted,
# because crun refuses this host's hybrid cgroup layout otherwise.
# Usage (as root): bash bench/startup.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-200}
B="${BERTH:-$PWD/target/release/berth}"
[ -x "$B" ] || cargo build --release -p berth-runtime
work=$(mktemp -d /tmp/berth-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/bundle/rootfs/bin"
cp /bin/busybox "$work/bundle/rootfs/bin/"
chroot "$work/bundle/rootfs" /bin/busybox --install -s /bin
"$B" spec --bundle "$work/bundle"
jq '.ociVersion="1.0.2-dev" | .process.terminal=false | .process.args=["/bin/true"]' "$work/bundle/config.json" > "$work/c" && mv "$work/c" "$work/bundle/config.json"
mkdir -p bench/results
cat > "$work/cycle.sh" <<EOS
#!/bin/sh
# one create+start+delete cycle with runtime \$1
rt=\$1; id=bench-\$\$
\$rt --root $work/state-\$(basename \$rt) create --bundle $work/bundle \$id >/dev/null &&
\$rt --root $work/state-\$(basename \$rt) start \$id &&
\$rt --root $work/state-\$(basename \$rt) delete --force \$id
EOS
chmod +x "$work/cycle.sh"
cat > "$work/inner.sh" <<EOS
set -e
umount /sys/fs/cgroup/unified 2>/dev/null || true
hyperfine -N --warmup 10 --runs $RUNS --export-json $work/h.json \
  -n crun "$work/cycle.sh /usr/bin/crun" -n runc "$work/cycle.sh /usr/sbin/runc" -n berth "$work/cycle.sh $B"
python3 - "$work" "$B" <<'PY'
import subprocess, sys
work, berth = sys.argv[1], sys.argv[2]
# Peak RSS through GNU time: a child's ru_maxrss includes what its parent held before
# exec, so the runtime must be forked by a small process (time), not by python.
# RSS counts the binary's and libraries' file pages each run maps, and how many the kernel
# maps per fault depends on the page cache's folios: a binary the linker has just written
# sits in large folios and maps more than one read back from disk. So the clean page cache
# is dropped first, and every runtime's files are read from disk alike.
def peak(rt):
    steps = []
    for step in (["create", "--bundle", work + "/bundle", "rss"], ["start", "rss"], ["delete", "--force", "rss"]):
        # -o: the container's init inherits stdio, so no pipe may wait for its EOF.
        subprocess.run(["/usr/bin/time", "-o", work + "/rss", "-f", "%M", rt, "--root", work + "/rss-state", *step],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        steps.append(int(open(work + "/rss").read().split()[-1]))
    return steps
subprocess.run(["sync"])
open("/proc/sys/vm/drop_caches", "w").write("1")
for rt in ("/usr/bin/crun", "/usr/sbin/runc", berth):
    peak(rt)  # warm
    runs = [peak(rt) for _ in range(3)]
    med = [sorted(r[i] for r in runs)[1] for i in range(3)]
    print(f"peak RSS {rt.rsplit('/', 1)[-1]:6s} {max(med):6d} KiB (create/start/delete {med[0]}/{med[1]}/{med[2]}, medians of 3)")
PY
EOS
unshare -m bash "$work/inner.sh" | tee "$work/out.txt"
python3 - "$work/h.json" <<'PY' | tee -a "$work/out.txt"
import json, sys
r = {x["command"]: x for x in json.load(open(sys.argv[1]))["results"]}
med = {k: v["median"] * 1000 for k, v in r.items()}
print("\nmedian ms: " + ", ".join(f"{k} {v:.2f}" for k, v in med.items()))
print(f"berth/crun = {med['berth'] / med['crun']:.2f}x, berth/runc = {med['berth'] / med['runc']:.2f}x")
PY
cp "$work/out.txt" "bench/results/startup-$(date +%Y%m%d-%H%M).txt"
