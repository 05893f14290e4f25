#!/bin/bash
# Guest script for scripts/vm.sh (issue 16, cgroupfs v2 placement; issue 15.8; issue 22.1):
#   cargo build --release -p berth-runtime && scripts/vm.sh --cgroup v2 scripts/vm/checks/cgroup_v2.sh
# The container's stdio goes to a file: a detached init holding a $(...) pipe would make the
# substitution wait for it to exit. Runs each case against berth and runc side by side on a systemd + pure cgroup v2 guest and
# prints "ok"/"FAIL" lines; exits 1 if any berth case fails. Runs as the runner service, whose
# cgroup (/system.slice/…service) holds processes: the case the issue found failing.
set -u
# Every case here is about the pure cgroup v2 tree: on systemd-on-v1 there is none to check.
if [ "${VM_CGROUP:-v2}" != v2 ]; then
  echo "skip: a cgroup v2 check, and this guest runs cgroup v1 ($VM_CGROUP)"
  exit 0
fi
BERTH=$PWD/target/release/berth
CG=/sys/fs/cgroup
fails=0
W=$(mktemp -d /tmp/cgv2.XXXX)
mkdir -p $W/rootfs/bin $W/rootfs/proc $W/rootfs/sys $W/rootfs/dev
cp /bin/busybox $W/rootfs/bin/ && chroot $W/rootfs /bin/busybox --install -s /bin

# config.json with args sleep 60, no terminal, and the given cgroupsPath ("-" for none)
# and memory limit.
config() {
  (cd $W && rm -f config.json && $BERTH spec)
  sed -i -e 's/"terminal": true/"terminal": false/' \
    -e 's/"sh"$/"sleep", "60"/' \
    -e 's/^    "resources": {/    "resources": {"memory": {"limit": 67108864}, "pids": {"limit": 64},/' \
    $W/config.json
  [ "$1" = - ] || sed -i "s|^  \"linux\": {|  \"linux\": {\"cgroupsPath\": \"$1\",|" $W/config.json
}

check() { # name rt result(0 ok) detail
  if [ "$3" = 0 ]; then echo "ok   $2 $1"; else echo "FAIL $2 $1: $4"; [ $2 = berth ] && fails=$((fails+1)); fi
}

echo "runner cgroup: $(cat /proc/self/cgroup)"
for rt in berth runc; do
  RT=$BERTH; [ $rt = runc ] && RT=runc
  R="$RT --root $W/state-$rt"
  id=v2-$rt
  # 1. No cgroupsPath: below the parent of the caller's cgroup, limits applied.
  config -
  out=$(cd $W && $R run -d --pid-file $W/pid $id >$W/log 2>&1 </dev/null; cat $W/log)
  cg=$(grep '^0::' /proc/$(cat $W/pid 2>/dev/null || echo 0)/cgroup 2>/dev/null | cut -d: -f3)
  own=$(grep '^0::' /proc/self/cgroup | cut -d: -f3)
  want="$(dirname $own)/$id"
  mem=$(cat $CG$cg/memory.max 2>/dev/null)
  check "no cgroupsPath -> $want (memory.max $mem)" $rt "$([ "$cg" = "$want" ] && [ "$mem" = 67108864 ]; echo $?)" "$out cg=$cg"
  $R delete -f $id >/dev/null 2>&1
  check "delete removed $want" $rt "$([ ! -d $CG$want ]; echo $?)" "left"
  # 2. Nested absolute path: controllers enabled down the tree.
  config /cgv2-$rt/a/ctr
  out=$(cd $W && $R run -d --pid-file $W/pid $id >$W/log 2>&1 </dev/null; cat $W/log)
  mem=$(cat $CG/cgv2-$rt/a/ctr/memory.max 2>/dev/null)
  check "nested /cgv2-$rt/a/ctr (memory.max $mem)" $rt "$([ "$mem" = 67108864 ]; echo $?)" "$out"
  $R delete -f $id >/dev/null 2>&1
  rmdir $CG/cgv2-$rt/a/ctr $CG/cgv2-$rt/a $CG/cgv2-$rt 2>/dev/null
  # 3. A frozen parent: refused, nothing left.
  mkdir -p $CG/frz-$rt && echo 1 >$CG/frz-$rt/cgroup.freeze
  config /frz-$rt/ctr
  out=$(cd $W && timeout 30 $R create $id >$W/log 2>&1 </dev/null; rc=$?; cat $W/log; exit $rc); rc=$?
  check "frozen parent refused (rc $rc)" $rt "$([ $rc != 0 ] && [ $rc != 124 ] && ! $R state $id >/dev/null 2>&1; echo $?)" "$out"
  echo 0 >$CG/frz-$rt/cgroup.freeze; $R delete -f $id >/dev/null 2>&1
  rmdir $CG/frz-$rt/ctr $CG/frz-$rt 2>/dev/null
  # 4. A populated cgroup: refused, its process survives delete -f.
  mkdir -p $CG/pop-$rt; sleep 60 & s=$!; echo $s >$CG/pop-$rt/cgroup.procs
  config /pop-$rt
  out=$(cd $W && $R create $id >$W/log 2>&1 </dev/null; rc=$?; cat $W/log; exit $rc); rc=$?
  $R delete -f $id >/dev/null 2>&1
  check "populated cgroup refused (rc $rc)" $rt "$([ $rc != 0 ] && kill -0 $s; echo $?)" "$out"
  kill $s; wait $s 2>/dev/null; rmdir $CG/pop-$rt
  # 5. Empty cgroupsPath: not the caller's cgroup.
  config ""
  out=$(cd $W && $R run -d --pid-file $W/pid $id >$W/log 2>&1 </dev/null; cat $W/log)
  cg=$(grep '^0::' /proc/$(cat $W/pid 2>/dev/null || echo 0)/cgroup 2>/dev/null | cut -d: -f3)
  check "empty cgroupsPath -> $cg" $rt "$([ -n "$cg" ] && [ "$cg" != "$own" ]; echo $?)" "$out"
  if [ -n "$cg" ] && [ "$cg" != "$own" ]; then $R delete -f $id >/dev/null 2>&1; else kill -9 $(cat $W/pid) 2>/dev/null; rm -rf $W/state-$rt/$id; fi
  rm -f $W/pid
done
echo "berth failures: $fails"
[ $fails = 0 ]
