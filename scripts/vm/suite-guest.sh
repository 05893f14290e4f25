#!/usr/bin/env bash
# Runs inside the Debian 12 guest (scripts/vm.sh; cwd = the shared repository, read-only):
# the runtime's integration test binaries listed in $VM_OUT/tests.list against berth, and
# every test that fails under berth once more against the guest's runc (differential: a
# failure runc shares is a host fact, one runc passes is berth's); then the conformance
# suite (berth; runc only on the cases berth does not pass). Results go to $VM_OUT:
#   results.txt    one line per failing test: "<binary>::<test> berth=FAIL runc=PASS|FAIL"
#   conformance.md the conformance report; conformance.txt its output
#   summary.txt    counts per test binary
set -uo pipefail
out=${VM_OUT:?}
: >"$out/results.txt"
: >"$out/summary.txt"
export TMPDIR=/var/tmp
# The tests' busybox rootfs and fixtures come from the shared repository; their own
# state dirs and bundles go to TMPDIR. Two threads: the guest has two vCPUs.
while read -r name bin; do
  [ -x "$bin" ] || { echo "$name: $bin missing" >>"$out/summary.txt"; continue; }
  t0=$(date +%s)
  log="$out/test-$name.log"
  # A hung test must not eat the VM's whole time: each binary gets 600 s (a rerun 300 s).
  timeout -k 10 "600" "$bin" --test-threads=2 >"$log" 2>&1
  rc=$?
  [ "$rc" != 124 ] || echo "$name::<timed out after 600s> berth=FAIL runc=?" >>"$out/results.txt"
  fails=$(sed -n 's/^test \(.*\) \.\.\. FAILED$/\1/p' "$log")
  nfail=0
  for t in $fails; do
    nfail=$((nfail + 1))
    if RUNTIME=/usr/sbin/runc timeout -k 10 300 "$bin" --exact "$t" --test-threads=1 >>"$out/runc-$name.log" 2>&1; then
      r=PASS
    else
      r=FAIL
    fi
    echo "$name::$t berth=FAIL runc=$r" >>"$out/results.txt"
  done
  pass=$(grep -c '^test .* \.\.\. ok$' "$log")
  echo "$name: rc=$rc passed=$pass failed=$nfail in $(($(date +%s) - t0))s" >>"$out/summary.txt"
  # A binary that died before printing its failures is one failure of its own.
  if [ "$rc" != 0 ] && [ "$rc" != 124 ] && [ "$nfail" = 0 ]; then
    echo "$name::<binary exited $rc> berth=FAIL runc=?" >>"$out/results.txt"
  fi
done <"$out/tests.list"
if [ -e "$out/no-conformance" ]; then
  echo "conformance: skipped (VM_CONFORMANCE_<MODE>=0)" >>"$out/summary.txt"
else
  t0=$(date +%s)
  target/release/berth-conformance --runtime "$PWD/target/release/berth" \
    --reference /usr/sbin/runc --reference-on-failure --report "$out/conformance.md" \
    --work /var/tmp/berth-conformance >"$out/conformance.txt" 2>&1
  echo "conformance: rc=$? $(tail -n 1 "$out/conformance.txt") in $(($(date +%s) - t0))s" >>"$out/summary.txt"
fi
# Guest checks: what only a systemd / cgroup v2 / AppArmor host can show, one script each.
for c in scripts/vm/checks/*.sh; do
  [ -e "$c" ] || continue
  name=$(basename "$c" .sh)
  t0=$(date +%s)
  if bash "$c" >"$out/check-$name.log" 2>&1; then r=PASS; else r=FAIL; fi
  [ $r = PASS ] || echo "check::$name berth=FAIL runc=?" >>"$out/results.txt"
  echo "check $name: $r in $(($(date +%s) - t0))s" >>"$out/summary.txt"
done
echo "suite: done" >>"$out/summary.txt"
cat "$out/summary.txt"
