#!/bin/bash
# Guest script for scripts/vm.sh (issue 16: the systemd cgroup driver):
#   cargo build --release -p berth-runtime && scripts/vm.sh --cgroup v2 scripts/vm/checks/systemd_cgroup.sh
#   (and --cgroup v1: systemd on cgroup v1)
# Runs the same steps with `berth --systemd-cgroup` and `runc --systemd-cgroup` side by side:
# a container with memory/pids/cpu limits becomes a transient scope with them (systemctl
# show, and the cgroup files), update changes both, pause/resume freeze the scope, exec
# joins it, delete removes the unit and its cgroup; the default path and a nested slice land
# where runc puts them. Prints "ok"/"FAIL" lines; exits 1 if any berth case fails.
set -u
BERTH=$PWD/target/release/berth
CG=/sys/fs/cgroup
MODE=${VM_CGROUP:-v2}
fails=0
W=$(mktemp -d /tmp/sdcg.XXXX)
mkdir -p $W/rootfs/bin $W/rootfs/proc $W/rootfs/sys $W/rootfs/dev
cp /bin/busybox $W/rootfs/bin/ && chroot $W/rootfs /bin/busybox --install -s /bin

# config.json: sleep 300, no terminal, cgroupsPath $1 ("-" for none), the limits below.
config() {
  (cd $W && rm -f config.json && $BERTH spec)
  sed -i -e 's/"terminal": true/"terminal": false/' \
    -e 's/"sh"$/"sleep", "300"/' \
    -e 's/^    "resources": {/    "resources": {"memory": {"limit": 67108864}, "pids": {"limit": 64}, "cpu": {"shares": 512, "quota": 50000, "period": 100000},/' \
    $W/config.json
  [ "$1" = - ] || sed -i "s|^  \"linux\": {|  \"linux\": {\"cgroupsPath\": \"$1\",|" $W/config.json
}

check() { # name rt result(0 ok) detail
  if [ "$3" = 0 ]; then echo "ok   $2 $1"; else echo "FAIL $2 $1: $4"; [ $2 = berth ] && fails=$((fails+1)); fi
}

# The file $2 of the scope at slice path $1 (v1: in the controller's hierarchy).
cgfile() {
  if [ $MODE = v2 ]; then echo $CG$1/$2; return; fi
  case $2 in
    memory.*) echo $CG/memory$1/$2 ;;
    pids.*) echo $CG/pids$1/$2 ;;
    cpu.*) echo $CG/cpu,cpuacct$1/$2 ;;
    freezer.*) echo $CG/freezer$1/$2 ;;
  esac
}
MEMFILE=memory.max; MEMPROP=MemoryMax
[ $MODE = v1 ] && { MEMFILE=memory.limit_in_bytes; MEMPROP=MemoryLimit; }
prop() { systemctl show -p "$2" --value "$1"; }

echo "mode $MODE; systemd $(systemctl --version | head -1); runner cgroup: $(cat /proc/self/cgroup | tail -1)"
for rt in berth runc; do
  RT=$BERTH; [ $rt = runc ] && RT=runc
  R="$RT --systemd-cgroup --root $W/state-$rt"
  id=sd-$rt
  unit=$rt-$id.scope
  cgp=/system.slice/$unit
  # 1. slice:prefix:name: the scope, with the limits as unit properties and in the files.
  config system.slice:$rt:$id
  out=$(cd $W && $R run -d --pid-file $W/pid $id >$W/log 2>&1 </dev/null; cat $W/log)
  pid=$(cat $W/pid 2>/dev/null || echo 0)
  st=$(prop $unit ActiveState); mem=$(prop $unit $MEMPROP); tasks=$(prop $unit TasksMax)
  quota=$(prop $unit CPUQuotaPerSecUSec); deleg=$(prop $unit Delegate)
  check "scope $unit: $st $MEMPROP=$mem TasksMax=$tasks CPUQuotaPerSecUSec=$quota Delegate=$deleg" $rt \
    "$([ "$st" = active ] && [ "$mem" = 67108864 ] && [ "$tasks" = 64 ] && [ "$quota" = 500ms ] && [ "$deleg" = yes ]; echo $?)" "$out"
  incg=$(grep -c ":$cgp\$" /proc/$pid/cgroup 2>/dev/null)
  check "init $pid in $cgp ($incg hierarchies: $(grep -v ":$cgp\$" /proc/$pid/cgroup 2>/dev/null | tr '\n' ' '))" $rt \
    "$([ "${incg:-0}" -ge 1 ] && [ -z "$(grep -v ":$cgp\$" /proc/$pid/cgroup | grep -v '^[0-9]*:\(rdma\|misc\):')" ]; echo $?)" "$(cat /proc/$pid/cgroup 2>&1)"
  f=$(cat $(cgfile $cgp $MEMFILE) 2>&1); p=$(cat $(cgfile $cgp pids.max) 2>&1)
  check "files $MEMFILE=$f pids.max=$p" $rt "$([ "$f" = 67108864 ] && [ "$p" = 64 ]; echo $?)" ""
  # 1b. A second container naming the same scope: refused, the first one untouched.
  # (runc 1.1.5 hangs here, waiting for the other container's unit: hence the timeout; and
  # its init may outlive it, so no $(...) pipe.)
  (cd $W && timeout -k 5 60 $R create ${id}-2 >$W/log2 2>&1 </dev/null); rc=$?; out=$(cat $W/log2)
  st=$(prop $unit ActiveState)
  check "same scope refused (rc $rc), first still $st: $out" $rt \
    "$([ $rc != 0 ] && [ $rc != 124 ] && [ "$st" = active ] && kill -0 $pid && ! $R state ${id}-2 >/dev/null 2>&1; echo $?)" ""
  $R delete -f ${id}-2 >/dev/null 2>&1
  # 2. update: the unit's properties and the files.
  out=$($R update --memory 134217728 --pids-limit 100 $id 2>&1)
  mem=$(prop $unit $MEMPROP); tasks=$(prop $unit TasksMax); f=$(cat $(cgfile $cgp $MEMFILE) 2>&1)
  check "update: $MEMPROP=$mem TasksMax=$tasks $MEMFILE=$f" $rt \
    "$([ "$mem" = 134217728 ] && [ "$tasks" = 100 ] && [ "$f" = 134217728 ]; echo $?)" "$out"
  # 2b. systemd re-applies the unit's settings (daemon-reload): the updated limit stays, the
  # device rules stay closed (v1: systemd's default policy would write "a *:* rwm").
  systemctl daemon-reload
  f=$(cat $(cgfile $cgp $MEMFILE) 2>&1)
  dev=$($R exec $id sh -c 'echo x >/dev/null && echo null-ok; head -c1 /dev/mem >/dev/null 2>&1 && echo mem-open' 2>&1 | tr '\n' ' ')
  dl=; [ $MODE = v1 ] && dl=$(head -3 $CG/devices$cgp/devices.list | tr '\n' ' ')
  check "after daemon-reload: $MEMFILE=$f devices: $dev ${dl:+list: $dl}" $rt \
    "$([ "$f" = 134217728 ] && [ "$dev" = "null-ok " ] && ! echo "$dl" | grep -q 'a \*:\* rwm'; echo $?)" ""
  # 3. pause / resume.
  out=$($R pause $id 2>&1); s=$($R state $id 2>/dev/null | grep -o '"status": *"[a-z]*"')
  pst=$(grep State /proc/$pid/status | awk '{print $2}')
  check "pause: $s (init state $pst)" $rt "$(echo "$s" | grep -q paused; echo $?)" "$out"
  out=$($R resume $id 2>&1); s=$($R state $id 2>/dev/null | grep -o '"status": *"[a-z]*"')
  check "resume: $s" $rt "$(echo "$s" | grep -q running; echo $?)" "$out"
  # 4. exec joins the scope.
  ecg=$($R exec $id cat /proc/self/cgroup 2>&1 | tail -1)
  check "exec cgroup: $ecg" $rt "$(echo "$ecg" | grep -q "$unit\|^0::/\$"; echo $?)" ""
  # 5. delete -f: the unit and its cgroup are gone.
  out=$($R delete -f $id 2>&1)
  ls=$(prop $unit LoadState); as=$(prop $unit ActiveState)
  left=$(find $CG -maxdepth 4 -name $unit 2>/dev/null | tr '\n' ' ')
  check "delete: unit $ls/$as, cgroup dirs left: ${left:-none}" $rt \
    "$([ "$as" = inactive ] && [ -z "$left" ] && ! $R state $id >/dev/null 2>&1; echo $?)" "$out"
  # 6. No cgroupsPath: system.slice:<rt>:<id>.
  config -
  out=$(cd $W && $R run -d --pid-file $W/pid $id >$W/log 2>&1 </dev/null; cat $W/log)
  c=$(tail -1 /proc/$(cat $W/pid 2>/dev/null || echo 0)/cgroup 2>/dev/null)
  check "no cgroupsPath -> $c" $rt "$(echo "$c" | grep -q ":/system.slice/$rt-$id.scope\$"; echo $?)" "$out"
  $R delete -f $id >/dev/null 2>&1
  # 7. A nested slice, made on demand: sdtest-a.slice under sdtest.slice.
  config sdtest-a.slice:$rt:n1
  out=$(cd $W && $R run -d --pid-file $W/pid $id >$W/log 2>&1 </dev/null; cat $W/log)
  c=$(tail -1 /proc/$(cat $W/pid 2>/dev/null || echo 0)/cgroup 2>/dev/null)
  check "nested slice -> $c" $rt "$(echo "$c" | grep -q ":/sdtest.slice/sdtest-a.slice/$rt-n1.scope\$"; echo $?)" "$out"
  $R delete -f $id >/dev/null 2>&1
  check "nested: unit gone after delete" $rt "$([ "$(prop $rt-n1.scope ActiveState)" = inactive ]; echo $?)" ""
  # 8. A plain path with --systemd-cgroup: refused (runc too), nothing left.
  config /sdplain-$rt
  out=$(cd $W && $R create $id 2>&1 </dev/null); rc=$?
  check "cgroupfs path refused (rc $rc): $out" $rt "$([ $rc != 0 ] && ! $R state $id >/dev/null 2>&1; echo $?)" ""
  $R delete -f $id >/dev/null 2>&1
  rm -f $W/pid
done
systemctl stop sdtest.slice 2>/dev/null
echo "berth failures: $fails"
[ $fails = 0 ]
