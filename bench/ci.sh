#!/usr/bin/env bash
# CI runners (issue 23): a fresh runner (a store holding only the base image) rebuilds the
# seed image (examples/helloworld) with a warm cache in a registry, berth-build vs buildah,
# both in one hyperfine run per case, against the same local docker-registry:
#   unchanged  the context the cache was made from
#   edit       app.py changed (one line appended): ADD and the RUN pip install run again
# berth-build: --cache-to type=registry,ref=REG/cache/berth,mode=max once, then
#   --cache-from type=registry,ref=REG/cache/berth on each fresh runner.
# buildah: bud --layers --cache-to REG/cache/buildah once, then --layers --cache-from it.
# Bytes transferred: bytes the registry sent for GETs of each contender's repository (its
# access log), per build. The fresh store is remade before each run (--prepare, not timed).
# Usage (as root): bash bench/ci.sh [RUNS]
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${1:-5}
BB_SRC="${BERTH_BUILD:-$PWD/target/release/berth-build}"
RT_SRC="${BERTH_RUNTIME:-$PWD/target/release/berth}"
for t in buildah skopeo hyperfine docker-registry; do
  command -v "$t" >/dev/null || { echo "$t is missing (bash scripts/setup.sh)" >&2; exit 1; }
done
work=/tmp/berth-build-ci-$$
regpid=
cleanup() {
  [ -n "$regpid" ] && kill "$regpid" 2>/dev/null && wait "$regpid" 2>/dev/null || true
  grep -o " $work[^ ]*" /proc/self/mountinfo | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
mkdir -p "$work/bin" bench/results
cp "$BB_SRC" "$work/bin/berth-build"
cp "$RT_SRC" "$work/bin/berth"
BR="--runtime $work/bin/berth"
BASE=localhost/python:3-slim

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
REG=127.0.0.1:$port
printf 'version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n' \
  "$work/registry" "$REG" > "$work/registry.yml"
docker-registry serve "$work/registry.yml" > "$work/access.log" 2>&1 &
regpid=$!
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done

# Pristine stores holding only the base: berth-build's (an OCI layout), buildah's.
BERTH_STORE=$work/base bash scripts/python-base.sh "$work/bin/berth-build" "$BASE"
# The base unpacked in both, as skopeo leaves it in buildah's: one RUN on it in berth-build's.
mkdir -p "$work/unpack"
printf 'FROM %s\nRUN true\n' "$BASE" > "$work/unpack/Dockerfile"
"$work/bin/berth-build" --store "$work/base" build $BR -q --no-cache "$work/unpack" >/dev/null
bh_fresh() { # DIR: a buildah storage with only the base
  rm -rf "$1"
  skopeo copy -q "oci:$work/base:$BASE" "containers-storage:[overlay@$1/root+$1/run]$BASE"
}
bh_fresh "$work/bh-base"
BH="buildah --root $work/bh/root --runroot $work/bh/run --storage-driver overlay"
BUD="$BH bud --layers --network host --pull=never --runtime /usr/sbin/runc --tls-verify=false"
BB="$work/bin/berth-build --store $work/b"
FRESH_BB="rm -rf $work/b && cp -a $work/base $work/b"
FRESH_BH="rm -rf $work/bh && cp -a $work/bh-base $work/bh"

ctx=$work/ctx
cp -r examples/helloworld "$ctx"
# Runner A warms both caches.
eval "$FRESH_BB"; eval "$FRESH_BH"
$BB build $BR -q -t hello --cache-to "type=registry,ref=$REG/cache/berth:hello,mode=max" "$ctx"
$BUD -q -t hello --cache-to "$REG/cache/buildah" "$ctx" >/dev/null

out=$work/out.txt
exec > >(tee "$out") 2>&1
echo "== $(date -u '+%F %H:%M UTC'), $(nproc) cores, load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== berth-build $BB_SRC; $(buildah --version); registry $(docker-registry --version 2>&1 | head -1)"

# Each case: one hyperfine run with both; the access log's GET bytes per repository.
hf() { # NAME PREPARE_EXTRA
  local name=$1 extra=$2 from
  from=$(wc -l < "$work/access.log")
  echo "== $name"
  hyperfine --warmup 1 --runs "$RUNS" --export-json "$work/$name.json" \
    -n berth-build --prepare "$FRESH_BB; $extra" \
    "$BB build $BR -q -t hello --cache-from type=registry,ref=$REG/cache/berth:hello $ctx" \
    -n buildah --prepare "$FRESH_BH; $extra" \
    "$BUD -q -t hello --cache-from $REG/cache/buildah $ctx"
  tail -n +"$((from + 1))" "$work/access.log" > "$work/$name.log"
}
hf unchanged true
cp "$ctx/app.py" "$work/app.py.orig"
hf edit "cp $work/app.py.orig $ctx/app.py && echo '# edited' >> $ctx/app.py"

echo "== load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$work" "$RUNS" <<'PY'
import json, re, sys
work, runs = sys.argv[1], int(sys.argv[2])
builds = runs + 1  # hyperfine's warmup run fetches too
print("\n| case | contender | median (s) | mean ± σ (s) | vs buildah | MB fetched per build | blob GETs per build |")
print("|---|---|---|---|---|---|---|")
for case in ("unchanged", "edit"):
    res = json.load(open(f"{work}/{case}.json"))["results"]
    base = next(r["median"] for r in res if r["command"] == "buildah")
    log = open(f"{work}/{case}.log").read().splitlines()
    for r in res:
        repo = "cache/berth" if r["command"] == "berth-build" else "cache/buildah"
        got, gets = 0, 0
        for l in log:
            m = re.search(r'"GET /v2/([^ ]+) HTTP/[^"]*" (\d+) (\d+)', l)
            if m and m.group(1).startswith(repo + "/") and m.group(2) == "200":
                got += int(m.group(3))
                gets += "/blobs/" in m.group(1)
        ratio = f"{r['median'] / base:.2f}×"
        print(f"| {case} | {r['command']} | {r['median']:.3f} | {r['mean']:.3f} ± {r['stddev']:.3f} | "
              f"{ratio} | {got / builds / 1e6:.2f} | {gets / builds:.1f} |")
PY
cp "$out" "bench/results/ci-$(date +%Y%m%d-%H%M).txt"
