#!/usr/bin/env bash
# The VM suite: the runtime's integration tests and the conformance suite in a Debian 12
# guest with systemd as PID 1 (scripts/vm.sh), on pure cgroup v2 and on systemd with
# cgroup v1, berth first and runc on what berth fails (differential).
#   scripts/vm-suite.sh [v2] [v1]      default: both
#   VM_TESTS="lifecycle resources"     only these runtime test binaries (default: all of them)
#   VM_TESTS_V1="…", VM_TESTS_V2="…"   the same for one mode ("none": no test binaries)
#   VM_CONFORMANCE_V1=0, …_V2=0        skip the conformance suite in that mode
# After the tests and conformance, every guest check in scripts/vm/checks/*.sh runs (each a
# script that exits non-zero on failure; what only a systemd/LSM host can show).
# Uses the release build and the `cargo test --no-run` binaries of this checkout (built
# here once, shared with the host suites). Fails on any berth failure that is not in
# scripts/vm/known-failures with its reason. Results: target/vm/<cgroup>/.
set -uo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cargo/bin:$PATH"
bash scripts/setup.sh --vm || exit 1
modes=("$@")
[ ${#modes[@]} -gt 0 ] || modes=(v2 v1)
mkdir -p target/vm
cargo build --release --workspace --bins --quiet || exit 1
cargo test --release -p berth-runtime --no-run --message-format=json 2>/dev/null |
  jq -r 'select(.reason == "compiler-artifact" and .profile.test and .target.kind == ["test"])
         | "\(.target.name) \(.executable)"' | sort >target/vm/tests.all
# The shim's test binaries, for the guest checks that run them (cri_systemd.sh).
cargo test --release -p containerd-shim-berth-v2 --no-run --message-format=json 2>/dev/null |
  jq -r 'select(.reason == "compiler-artifact" and .profile.test and .target.kind == ["test"])
         | "\(.target.name) \(.executable)"' | sort >target/vm/shim-tests.all
# The test binaries a mode runs: VM_TESTS_<MODE> (e.g. VM_TESTS_V1), else VM_TESTS, else all,
# in that mode's own out dir (the guest's $VM_OUT), so `vm-suite.sh v2` and `vm-suite.sh v1`
# can run side by side from one checkout.
select_tests() {
  local want
  want=$(eval echo "\${VM_TESTS_${1^^}:-\${VM_TESTS:-}}")
  if [ "$want" = none ]; then
    : >"target/vm/$1/tests.list"
    return 0
  elif [ -n "$want" ]; then
    for t in $want; do grep "^$t " target/vm/tests.all || { echo "vm-suite: no test binary $t" >&2; return 1; }; done
  else
    cat target/vm/tests.all
  fi >"target/vm/$1/tests.list"
  [ -s "target/vm/$1/tests.list" ] || { echo "vm-suite: no test binaries" >&2; return 1; }
}
known=scripts/vm/known-failures
fail=0
for cg in "${modes[@]}"; do
  rm -rf "target/vm/$cg"
  mkdir -p "target/vm/$cg"
  select_tests "$cg" || exit 1
  [ "$(eval echo "\${VM_CONFORMANCE_${cg^^}:-1}")" != 0 ] || : >"target/vm/$cg/no-conformance"
  bash scripts/vm.sh --cgroup "$cg" --timeout "${VM_TIMEOUT:-1500}" --out "target/vm/$cg" \
    scripts/vm/suite-guest.sh >"target/vm/$cg.log" 2>&1
  rc=$?
  grep '^== vm:' "target/vm/$cg.log"
  if [ ! -s "target/vm/$cg/summary.txt" ] || ! grep -q '^suite: done' "target/vm/$cg/summary.txt"; then
    echo "!! vm-suite $cg: the guest did not finish (vm.sh exit $rc); last lines:"
    tail -n 20 "target/vm/$cg.log"
    fail=1
    continue
  fi
  sed "s/^/   [$cg] /" "target/vm/$cg/summary.txt"
  # Conformance: every case berth fails (strict, whatever runc does; runc's verdict is shown).
  regs=$(sed -n 's/^target failures: \[\(.*\)\]$/\1/p' \
    "target/vm/$cg/conformance.txt" 2>/dev/null | tr -d '" ' | tr ',' ' ')
  { cut -d' ' -f1,2 "target/vm/$cg/results.txt"; for c in $regs; do echo "conformance::$c berth=FAIL"; done; } |
    while read -r t verdict; do
      reason=$(awk -v c="$cg" -v t="$t" '$1 == c && $2 == t { $1 = ""; $2 = ""; sub(/^ +/, ""); print; exit }' "$known")
      case $t in
        conformance::*) runc="its row in target/vm/$cg/conformance.txt" ;;
        *) runc=$(grep -F "$t berth=FAIL" "target/vm/$cg/results.txt" | sed -n 's/.*runc=//p' | head -1) ;;
      esac
      if [ -n "$reason" ]; then
        echo "   [$cg] known: $t (runc: ${runc:-n/a}): $reason"
      else
        echo "!! [$cg] FAILED: $t (runc: ${runc:-passes})"
        echo x >>"target/vm/$cg/.unexcused"
      fi
    done
  [ ! -e "target/vm/$cg/.unexcused" ] || fail=1
done
[ $fail = 0 ] && echo "vm-suite: passed (${modes[*]})" || echo "vm-suite: FAILED"
exit $fail
