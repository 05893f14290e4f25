#!/usr/bin/env bash
# AppArmor in a guest that has it (issue 16): a loaded profile must confine a container's
# init (process.apparmorProfile) and its exec'd processes (inherited, and `exec --apparmor`),
# under berth and under runc side by side. Runs inside the Debian 12 guest of scripts/vm.sh:
#
#   cargo build --release -p berth-runtime -p berth-conformance
#   cargo test --release -p berth-runtime --test lsm --no-run
#   scripts/vm.sh [--cgroup v1] scripts/vm/checks/apparmor.sh
#
# Part 1 is shell-level (a profile that denies /lsm-secret; /proc/self/attr/current must read
# "PROFILE (enforce)" and the read must be refused); part 2 runs runtime/tests/lsm.rs, whose
# profile tests only run where AppArmor is enabled, for both runtimes; part 3 the conformance
# suite's apparmorProfile cases (berth against runc). Prints PASS/FAIL lines;
# exits non-zero if any check failed.
set -uo pipefail
REPO=$PWD
BERTH=$REPO/target/release/berth
fails=0
pass() { echo "PASS $*"; }
fail() { echo "FAIL $*"; fails=$((fails + 1)); }

[ "$(cat /sys/module/apparmor/parameters/enabled 2>/dev/null)" = Y ] || {
  echo "FAIL AppArmor is not enabled in this guest"
  exit 1
}
[ -x "$BERTH" ] || { echo "FAIL $BERTH missing: cargo build --release -p berth-runtime"; exit 1; }
echo "== guest: $(uname -r), apparmor $(cat /sys/module/apparmor/parameters/enabled), $(runc --version | head -1)"

WORK=$(mktemp -d /tmp/lsm-vm.XXXXXX)
PROFILE=berth-lsm-vm
cat >"$WORK/profile" <<PROF
profile $PROFILE flags=(attach_disconnected,mediate_deleted) {
  file,
  capability,
  network,
  signal,
  unix,
  ptrace,
  mount,
  umount,
  pivot_root,
  deny /lsm-secret rwklx,
}
PROF
apparmor_parser -r "$WORK/profile" || { echo "FAIL apparmor_parser could not load the profile"; exit 1; }
grep -q "^$PROFILE (enforce)" /sys/kernel/security/apparmor/profiles && pass "profile $PROFILE loaded (enforce)"

# A busybox bundle (with /probe.sh) running ARGS, with or without the profile.
PROBE='cat /proc/self/attr/current; echo; cat /lsm-secret && echo READ || echo DENIED'
make_bundle() { # DIR PROFILE-or-empty ARGS-JSON
  local dir=$1 prof=$2 args=$3
  mkdir -p "$dir/rootfs/bin" "$dir/rootfs/proc" "$dir/rootfs/sys" "$dir/rootfs/dev" "$dir/rootfs/tmp"
  cp /bin/busybox "$dir/rootfs/bin/busybox"
  chroot "$dir/rootfs" /bin/busybox --install -s /bin
  echo s3cret >"$dir/rootfs/lsm-secret"
  echo "$PROBE" >"$dir/rootfs/probe.sh"
  (cd "$dir" && runc spec)
  sed -i -e 's/"terminal": true/"terminal": false/' \
    -e "s|^\(\s*\)\"sh\"$|\1$args|" "$dir/config.json"
  if [ -n "$prof" ]; then
    sed -i "s/\"terminal\": false,/\"terminal\": false, \"apparmorProfile\": \"$prof\",/" "$dir/config.json"
  fi
}

check() { # NAME OUTPUT WANT-LABEL WANT-READ|DENIED
  local name=$1 out=$2 label=$3 want=$4
  if echo "$out" | grep -q "^$label" && echo "$out" | grep -q "^$want$"; then
    pass "$name: $(echo "$out" | tr '\n' ' ')"
  else
    fail "$name: want '$label' and $want, got: $(echo "$out" | tr '\n' ' ')"
  fi
}

for rt in "$BERTH" runc; do
  n=$(basename "$rt")
  root=$WORK/state-$n
  sh_args='"sh", "/probe.sh"'
  # init confined by process.apparmorProfile
  make_bundle "$WORK/$n-init" "$PROFILE" "$sh_args"
  out=$(cd "$WORK/$n-init" && "$rt" --root "$root" run "lsm-$n-init" </dev/null 2>&1)
  check "$n init with process.apparmorProfile" "$out" "$PROFILE (enforce)" DENIED
  # the same bundle without the profile reads the file
  make_bundle "$WORK/$n-plain" "" "$sh_args"
  out=$(cd "$WORK/$n-plain" && "$rt" --root "$root" run "lsm-$n-plain" </dev/null 2>&1)
  check "$n init without a profile" "$out" "unconfined" READ
  # exec: inherits config.json's profile; exec --apparmor confines an unconfined container's process
  make_bundle "$WORK/$n-exec" "$PROFILE" '"sleep", "300"'
  (cd "$WORK/$n-exec" && "$rt" --root "$root" run -d "lsm-$n-exec" </dev/null >/dev/null 2>&1)
  out=$("$rt" --root "$root" exec "lsm-$n-exec" sh /probe.sh 2>&1)
  check "$n exec inherits the profile" "$out" "$PROFILE (enforce)" DENIED
  make_bundle "$WORK/$n-exec2" "" '"sleep", "300"'
  (cd "$WORK/$n-exec2" && "$rt" --root "$root" run -d "lsm-$n-exec2" </dev/null >/dev/null 2>&1)
  out=$("$rt" --root "$root" exec --apparmor "$PROFILE" "lsm-$n-exec2" sh /probe.sh 2>&1)
  check "$n exec --apparmor" "$out" "$PROFILE (enforce)" DENIED
  out=$("$rt" --root "$root" exec "lsm-$n-exec2" sh /probe.sh 2>&1)
  check "$n exec without --apparmor" "$out" "unconfined" READ
  # a profile that is not loaded fails
  make_bundle "$WORK/$n-absent" "berth-lsm-not-loaded" '"true"'
  if out=$(cd "$WORK/$n-absent" && "$rt" --root "$root" run "lsm-$n-absent" </dev/null 2>&1); then
    fail "$n run with an unloaded profile succeeded"
  else
    pass "$n run with an unloaded profile fails: $out"
  fi
  for c in init plain exec exec2 absent; do "$rt" --root "$root" delete -f "lsm-$n-$c" >/dev/null 2>&1; done
done

# runtime/tests/lsm.rs for both runtimes (its profile tests run here; the no-LSM ones skip).
bin=$(ls -t "$REPO"/target/release/deps/lsm-* 2>/dev/null | grep -v '\.d$' | head -1)
if [ -z "$bin" ]; then
  fail "no lsm test binary: cargo test --release -p berth-runtime --test lsm --no-run"
else
  for rt in "$BERTH" /usr/sbin/runc; do
    echo "== $(basename "$bin") with RUNTIME=$rt"
    if (cd /tmp && RUNTIME=$rt "$bin" --test-threads 2 --nocapture 2>&1 | tail -25 | tee "$WORK/t.log"; exit "${PIPESTATUS[0]}"); then
      pass "tests/lsm.rs with $(basename "$rt")"
    else
      fail "tests/lsm.rs with $(basename "$rt")"
    fi
  done
fi

# The conformance suite's LSM cases, berth differential against runc (if it was built).
if [ -x "$REPO/target/release/berth-conformance" ]; then
  if (cd /tmp && "$REPO/target/release/berth-conformance" --runtime "$BERTH" --work "$WORK/conf" \
    --filter apparmorProfile --fail-on any 2>&1 | tail -6); then
    pass "conformance apparmorProfile cases"
  else
    fail "conformance apparmorProfile cases"
  fi
fi

apparmor_parser -R "$WORK/profile" >/dev/null 2>&1
rm -rf "$WORK"
echo "== apparmor.sh: $fails failed"
[ "$fails" = 0 ]
