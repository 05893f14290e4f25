#!/usr/bin/env bash
# Linker driver for the workspace (.cargo/config.toml): everything links as rustc asks,
# except the `berth` runtime binary, which is linked static and non-PIE. A runtime runs once
# per container operation, so its start-up is all cost: static non-PIE skips the dynamic
# loader, libc.so's mapping and ~13,000 relocations (peak RSS and timings in bench/README.md).
# The rewrite gives the link rustc itself emits for `-C target-feature=+crt-static
# -C relocation-model=static`, which cargo cannot set for one binary (RUSTFLAGS would also
# reach proc-macros, which cannot be static). If the static link fails (no libc.a), the
# normal dynamic link is used.
out=
for ((i = 1; i < $#; i++)); do
    [ "${!i}" = "-o" ] && { j=$((i + 1)); out=${!j}; }
done
case "$out" in
*/deps/berth-[0-9a-f]*) ;;
*) exec cc "$@" ;;
esac
args=()
for a in "$@"; do
    case "$a" in
    -Wl,-Bdynamic) ;;
    -lgcc_s) args+=(-lgcc_eh -lgcc) ;;
    -pie) args+=(-static -no-pie) ;;
    *) args+=("$a") ;;
    esac
done
cc "${args[@]}" && exit 0
echo "scripts/linker.sh: static link of $out failed; linking it dynamically" >&2
exec cc "$@"
