#!/usr/bin/env bash
# Image builds: berth-build vs buildah side by side, each case one hyperfine run with both:
#  cold     the seed's Dockerfile (examples/helloworld), base present, no build cache
#           (berth-build --no-cache; buildah bud --no-cache --layers)
#  cached   the same build again with nothing changed (buildah bud --layers)
#  edit     rebuild after editing one copied file (--prepare appends a comment to app.py;
#           the RUN pip install after `ADD . /app` runs again for both)
#  1 GiB    `FROM localhost/python:3-slim` + `COPY . /data` of 1 GiB of random data, no
#           cache; --prepare touches the files (same mtime, new ctime) so berth-build's
#           context hash cache does not spare it the hashing. berth-build packs with
#           `--compression uncompressed` (what buildah keeps in containers-storage), gzip, zstd.
# plus each contender's peak RSS per case (GNU time, one more build each).
# Both use the host network for RUN and their own private storage under $work; buildah
# runs runc (named: it would pick crun, which refuses this hybrid cgroup host), berth-build
# runs berth.
# Usage (as root): bash bench/build.sh [RUNS]
#   BERTH_BUILD=PATH (default target/release/berth-build), BERTH_RUNTIME=PATH (default
#   target/release/berth; both are copied first so a concurrent rebuild cannot swap them).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
BB_SRC="${BERTH_BUILD:-$PWD/target/release/berth-build}"
RT_SRC="${BERTH_RUNTIME:-$PWD/target/release/berth}"
[ -x "$BB_SRC" ] || cargo build --release -p berth-builder
[ -x "$RT_SRC" ] || cargo build --release -p berth-runtime
for t in buildah skopeo hyperfine /usr/bin/time; do
  command -v "$t" >/dev/null || { echo "$t is missing (bash scripts/setup.sh)" >&2; exit 1; }
done
# A lowercase path: the oci: transport of containers/image wants one.
work=/tmp/berth-build-bench-$$
cleanup() {
  grep -o " $work[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/bin" bench/results
cp "$BB_SRC" "$work/bin/berth-build"
cp "$RT_SRC" "$work/bin/berth"
STORE=$work/store
BB="$work/bin/berth-build --store $STORE"
BR="--runtime $work/bin/berth"
BH="buildah --root $work/buildah/root --runroot $work/buildah/run --storage-driver overlay"
BUD="$BH bud --layers --network host --pull=never --runtime /usr/sbin/runc"
BASE=localhost/python:3-slim

# The same base in both stores: made in berth-build's (an OCI layout), copied to buildah's.
BERTH_STORE=$STORE bash scripts/python-base.sh "$work/bin/berth-build" "$BASE"
skopeo copy -q "oci:$STORE:$BASE" \
  "containers-storage:[overlay@$work/buildah/root+$work/buildah/run]$BASE"

ctx=$work/ctx
cp -r examples/helloworld "$ctx"
big=$work/big
mkdir -p "$big/data"
printf 'FROM %s\nCOPY . /data\n' "$BASE" > "$big/Dockerfile"
for i in $(seq 8); do head -c 128M /dev/urandom > "$big/data/r$i"; done
touch -d @1700000000 "$big/data"/*
BIG_BYTES=$(du -sb --apparent-size "$big/data" | cut -f1)

out=$work/out.txt
exec > >(tee "$out") 2>&1
echo "== $(date -u '+%F %H:%M UTC'), $(nproc) cores, load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== berth-build $BB_SRC, runtime $RT_SRC; $(buildah --version); $(runc --version | head -1)"

# Each case: one hyperfine run with both contenders, JSON kept for the summary.
hf() { # NAME WARMUP RUNS [hyperfine args...]
  local name=$1 warm=$2 runs=$3
  shift 3
  echo "== $name"
  hyperfine --warmup "$warm" --runs "$runs" --export-json "$work/$name.json" "$@"
}
# Peak RSS (KiB) of one more build: GNU time's %M is the largest of the command and every
# descendant it waited for, so RUN steps (pip) count for both contenders.
rss() { # NAME PREPARE CMD
  sh -c "$2"
  /usr/bin/time -o "$work/rss" -f %M sh -c "exec $3" >/dev/null 2>&1
  echo "$1 $(tail -1 "$work/rss")" >> "$work/rss.txt"
}

hf cold 1 "$RUNS" \
  -n berth-build "$BB build --no-cache $BR -t hello:cold $ctx" \
  -n buildah "$BUD --no-cache -t hello:cold $ctx"
rss cold-berth-build true "$BB build --no-cache $BR -t hello:cold $ctx"
rss cold-buildah true "$BUD --no-cache -t hello:cold $ctx"

hf cached 2 $((RUNS * 4)) \
  -n berth-build "$BB build $BR -t hello:cached $ctx" \
  -n buildah "$BUD -t hello:cached $ctx"
rss cached-berth-build true "$BB build $BR -t hello:cached $ctx"
rss cached-buildah true "$BUD -t hello:cached $ctx"

EDIT="echo \"# \$(date +%s%N)\" >> $ctx/app.py"
hf edit 1 "$RUNS" --prepare "$EDIT" \
  -n berth-build "$BB build $BR -t hello:edit $ctx" \
  -n buildah "$BUD -t hello:edit $ctx"
rss edit-berth-build "$EDIT" "$BB build $BR -t hello:edit $ctx"
rss edit-buildah "$EDIT" "$BUD -t hello:edit $ctx"

TOUCH="touch -d @1700000000 $big/data/*"
hf copy1g 1 "$RUNS" --prepare "$TOUCH" \
  -n berth-build-uncompressed "$BB build --no-cache --compression uncompressed -t big:u $big" \
  -n berth-build-gzip "$BB build --no-cache --compression gzip -t big:g $big" \
  -n berth-build-zstd "$BB build --no-cache --compression zstd -t big:z $big" \
  -n buildah "$BUD --no-cache -t big $big"
# The packing pass alone (tar + sha256 + write): the context hash cache is warm (no touch),
# so berth-build does not hash the files again for the cache key; berth-build only.
hf copy1g-pack 1 "$RUNS" \
  -n berth-build-uncompressed "$BB build --no-cache --compression uncompressed -t big:u $big"
rss copy1g-berth-build-uncompressed "$TOUCH" "$BB build --no-cache --compression uncompressed -t big:u $big"
rss copy1g-berth-build-gzip "$TOUCH" "$BB build --no-cache --compression gzip -t big:g $big"
rss copy1g-berth-build-zstd "$TOUCH" "$BB build --no-cache --compression zstd -t big:z $big"
rss copy1g-buildah "$TOUCH" "$BUD --no-cache -t big $big"

echo "== load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$work" "$BIG_BYTES" <<'PY'
import json, sys
work, big = sys.argv[1], int(sys.argv[2])
rss = dict(l.split() for l in open(work + "/rss.txt"))
target = {"cold": "≤ 0.7×", "cached": "≤ 0.2×", "edit": "", "copy1g": "≥ 0.5 GB/s per core",
          "copy1g-pack": "≥ 0.5 GB/s per core"}
print("\n| case | contender | median (s) | mean ± σ (s) | CPU user+sys (s) | vs buildah | peak RSS (MB) | target |")
print("|---|---|---|---|---|---|---|---|")
for case in ("cold", "cached", "edit", "copy1g", "copy1g-pack"):
    res = json.load(open(f"{work}/{case}.json"))["results"]
    base = next((r for r in res if r["command"] == "buildah"), {}).get("median")
    for r in res:
        name, med = r["command"], r["median"]
        cpu = r["user"] + r["system"]
        extra = ""
        if case.startswith("copy1g"):
            extra = f"; {big / med / 1e9:.2f} GB/s, {big / cpu / 1e9:.2f} GB/s per CPU-second"
        ratio = f"{med / base:.2f}×" if base and name != "buildah" else ("1.00×" if base else "")
        print(f"| {case} | {name} | {med:.3f} | {r['mean']:.3f} ± {r['stddev']:.3f} | {cpu:.2f} | "
              f"{ratio}{extra} | {int(rss.get(case + '-' + name, rss.get('copy1g-' + name, 0))) / 1024:.0f} | {target[case] if name != 'buildah' else ''} |")
PY
cp "$out" "bench/results/build-$(date +%Y%m%d-%H%M).txt"
