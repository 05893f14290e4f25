#!/bin/sh
# Fuzz one target of bench/fuzz (issue 15) on the stable toolchain.
#   bench/fuzz/run.sh TARGET [SECONDS]      (default 1800: the issue's 30 minutes)
# cargo-fuzz needs nightly -Z flags; stable rustc takes them under RUSTC_BOOTSTRAP=1, and
# stable rust-std ships the ASan runtime (librustc-stable_rt.asan.a), so targets run with
# AddressSanitizer. Seeds come from seeds.py (the repo's fixtures and tests) merged into the
# committed corpus/TARGET; crashes land in artifacts/TARGET. Runs under nice: CI and other
# builds share the machine. Needs root (unpack/archive make device nodes, set xattrs).
set -eu
target=${1:?usage: run.sh TARGET [SECONDS]}
secs=${2:-1800}
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
seeds=$(mktemp -d /tmp/fuzz-seeds-XXXXXX)
trap 'rm -rf "$seeds"' EXIT
[ -x "$repo/target/release/berth" ] || cargo build --release -p berth-runtime --manifest-path "$repo/Cargo.toml"
python3 "$here/seeds.py" "$repo" "$seeds"
mkdir -p "$here/corpus/$target"
cd "$repo"
# Tar-shaped inputs need room for a few 512-byte headers and their data.
case $target in unpack|archive) max_len=65536 ;; *) max_len=16384 ;; esac
RUSTC_BOOTSTRAP=1 nice -n 10 cargo fuzz run --fuzz-dir bench/fuzz -s address -O "$target" \
    "bench/fuzz/corpus/$target" "$seeds/$target" -- \
    -max_total_time="$secs" -max_len="$max_len" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1
