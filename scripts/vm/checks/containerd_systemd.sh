#!/bin/bash
# Guest check for scripts/vm.sh (issue 16): containerd with `SystemdCgroup = true` runs berth
# containers through both shims:
#   runc.v2+berth  the guest's containerd-shim-runc-v2 with BinaryName = berth
#   berth-shim     containerd-shim-berth-v2 with the same runc options (ctr sends runc options
#                  only to the runtime named io.containerd.runc.v2, so a second containerd
#                  finds berth's shim as containerd-shim-runc-v2 first on its PATH)
#   runc.v2+runc   the reference: the same steps with runc itself (its failures do not count)
# Each runs a container with a memory limit and cgroupsPath `slice:prefix:name` (the form
# containerd's CRI plugin passes with SystemdCgroup), under system.slice and under a pod slice
# kubepods-besteffort-pod<uid>.slice (kubelet's cgroup parent for a BestEffort pod), and
# checks: the init is in the transient .scope under the slice (/proc/PID/cgroup), the unit
# is active, the scope's memory limit is applied; kill and delete remove unit and cgroup.
#   cargo build --release --workspace --bins && scripts/vm.sh scripts/vm/checks/containerd_systemd.sh
# Prints "ok"/"FAIL" lines; exits 1 if a berth case fails.
set -u
REL=$PWD/target/release
BERTH=$REL/berth
CG=/sys/fs/cgroup
MODE=${VM_CGROUP:-v2}
IMAGE=berth-vm/busybox:latest
LIMIT=67108864
W=$(mktemp -d /var/tmp/ctrsd.XXXX)
fails=0
PIDS=()
trap 'for p in "${PIDS[@]}"; do kill $p 2>/dev/null; done' EXIT

check() { # name variant result(0 ok) detail
  if [ "$3" = 0 ]; then echo "ok   $2 $1"; else
    echo "FAIL $2 $1: $4"
    case $2 in *berth*) fails=$((fails + 1)) ;; esac
  fi
}

# The busybox image, made by berth-build as the shim tests make it.
mkdir -p $W/img/bin
cp /bin/busybox $W/img/bin/
for a in $(/bin/busybox --list); do [ $a = busybox ] || ln -s busybox $W/img/bin/$a; done
$REL/berth-build --store $W/store import $W/img $IMAGE -c 'CMD ["sh"]' >/dev/null &&
  $REL/berth-build --store $W/store save -o $W/busybox.tar $IMAGE || { echo "FAIL image"; exit 1; }

# A containerd of our own in $W/$1 (CRI off), $W/$1/bin first on its PATH.
start_containerd() {
  local d=$W/$1
  mkdir -p $d/bin
  printf 'version = 2\nroot = "%s/root"\nstate = "%s/state"\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n[grpc]\n  address = "%s/sock"\n' \
    $d $d $d >$d/config.toml
  PATH=$d/bin:$PATH containerd --config $d/config.toml >$d/log 2>&1 &
  PIDS+=($!)
  for _ in $(seq 100); do ctr -a $d/sock version >/dev/null 2>&1 && break; sleep 0.3; done
  ctr -a $d/sock -n vm image import $W/busybox.tar >/dev/null || { echo "FAIL containerd $1: $(tail -5 $d/log)"; exit 1; }
}
start_containerd runc
start_containerd berth
ln -s $REL/containerd-shim-berth-v2 $W/berth/bin/containerd-shim-runc-v2

# The memory limit file of the cgroup at $1.
memfile() { if [ $MODE = v2 ]; then echo $CG$1/memory.max; else echo $CG/memory$1/memory.limit_in_bytes; fi; }

# variant containerd binary slice id: one container's life under `slice`.
run_one() {
  local v=$1 sock=$W/$2/sock rt=$3 slice=$4 id=$5 c pid cgl want mem st
  c="ctr -a $sock -n vm"
  local out
  out=$(timeout 120 $c run -d --runtime io.containerd.runc.v2 --runc-binary $rt --runc-systemd-cgroup \
    --cgroup "$slice:cri-containerd:$id" --memory-limit $LIMIT $IMAGE $id sleep 300 2>&1)
  check "run under $slice" $v $? "$out"
  pid=$($c task ls | awk -v i=$id '$1 == i { print $2 }')
  # Who serves it: the init's parent is the shim; the runtime's state knows the container.
  local shim root
  shim=$(readlink /proc/$(awk '{ print $4 }' /proc/${pid:-0}/stat 2>/dev/null)/exe 2>/dev/null)
  root=/run/containerd/runc/vm
  [ "$(basename "$shim")" = containerd-shim-berth-v2 ] && root=/run/containerd/berth/vm
  $rt --root $root state $id 2>&1 | grep -q '"status": "running"'
  check "$(basename $rt) state of $id (shim $shim)" $v $? "$($rt --root $root state $id 2>&1 | head -3)"
  [ $v != berth-shim ] || [ "$shim" = $REL/containerd-shim-berth-v2 ]
  check "served by $shim" $v $? "not berth's shim"
  unit=cri-containerd-$id.scope
  # The slice path systemd gives `a-b-c.slice`: /a.slice/a-b.slice/a-b-c.slice.
  want=
  local s=${slice%.slice} acc=
  for part in ${s//-/ }; do acc=${acc:+$acc-}$part; want=$want/$acc.slice; done
  want=$want/$unit
  cgl=$(cat /proc/${pid:-0}/cgroup 2>/dev/null)
  if [ $MODE = v2 ]; then echo "$cgl" | grep -qx "0::$want"; else echo "$cgl" | grep -q ":memory:$want\$"; fi
  check "init $pid in $want" $v $? "$cgl"
  st=$(systemctl show -p ActiveState --value $unit)
  [ "$st" = active ]
  check "unit $unit active" $v $? "$st; $(systemctl status $unit 2>&1 | head -5)"
  mem=$(cat $(memfile $want) 2>&1)
  [ "$mem" = $LIMIT ]
  check "memory limit $LIMIT in $(memfile $want)" $v $? "$mem"
  $c task kill -s 9 $id >/dev/null 2>&1
  for _ in $(seq 50); do [ "$($c task ls | awk -v i=$id '$1 == i { print $3 }')" = STOPPED ] && break; sleep 0.2; done
  out=$($c task rm $id 2>&1 && $c container rm $id 2>&1)
  check "task and container removed" $v $? "$out"
  for _ in $(seq 50); do systemctl is-active -q $unit || break; sleep 0.2; done
  st=$(systemctl show -p ActiveState --value $unit)
  [ "$st" != active ] && [ ! -d $CG$want ] && [ ! -d $CG/memory$want ]
  check "unit and cgroup gone after delete" $v $? "unit $st"
}

echo "mode $MODE; $(containerd --version); systemd $(systemctl --version | head -1)"
pod=kubepods-besteffort-pod0f1e2d3c_4b5a_6978_8091_a2b3c4d5e6f7.slice
for v in runc.v2+runc runc.v2+berth berth-shim; do
  case $v in
    runc.v2+runc) d=runc rt=/usr/sbin/runc ;;
    runc.v2+berth) d=runc rt=$BERTH ;;
    berth-shim) d=berth rt=$BERTH ;;
  esac
  n=${v//[.+]/-}
  run_one $v $d $rt system.slice vm-$n
  run_one $v $d $rt $pod vm-pod-$n
done
echo "berth failures: $fails"
[ $fails = 0 ]
