#!/bin/bash
# Guest script for scripts/vm.sh (issue 16: rootless --systemd-cgroup):
#   cargo build --release -p berth-runtime && scripts/vm.sh --cgroup v2 scripts/vm/checks/systemd_rootless.sh
# A user with lingering enabled (so user@UID.service and its session bus run without a
# login) runs a rootless container (a user namespace bundle from `spec --rootless`) with
# `--systemd-cgroup` and cgroupsPath user.slice:RT:NAME, berth and runc side by side: the
# user's systemd makes the scope with Delegate=yes and the limits as properties, its cgroup
# below user@UID.service has memory.max/pids.max, update changes both, exec joins it, pause
# freezes it, delete removes the unit. (runc 1.1.5 leaves an exec'd process where its
# caller was: it ignores a failed rootless cgroup join.) berth alone: a limit on a controller the user manager
# was not delegated is refused in one line with nothing left; and berth run by uid 0 of a
# user namespace (unshare -r) authenticates to the bus as the host uid. On a cgroup v1
# guest rootless systemd is refused in one line (by runc too). Exits 1 if a berth case fails.
set -u
# (A detached run keeps the stdout it was given: its output goes to a file, never through
# $(...), which would wait for the container to exit.)
MODE=${VM_CGROUP:-v2}
U=berthsd
fails=0
id $U >/dev/null 2>&1 || useradd -m -s /bin/bash $U
UID_=$(id -u $U)
XDG=/run/user/$UID_
MGR=/sys/fs/cgroup/user.slice/user-$UID_.slice/user@$UID_.service
W=$(mktemp -d /tmp/sdu.XXXX)
chmod 755 $W
cp target/release/berth $W/berth
mkdir -p $W/b/rootfs/bin $W/b/rootfs/proc $W/b/rootfs/sys $W/b/rootfs/dev
cp /bin/busybox $W/b/rootfs/bin/ && chroot $W/b/rootfs /bin/busybox --install -s /bin
chown -R $U:$U $W

# ARGS as the user, in the bundle, with the user's runtime dir (its bus is $XDG/bus).
asu() { (cd $W/b && runuser -u $U -- env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/home/$U XDG_RUNTIME_DIR=$XDG "$@"); }
uprop() { asu systemctl --user show -p "$2" --value "$1" 2>/dev/null; }
check() { # name rt result(0 ok) detail
  if [ "$3" = 0 ]; then echo "ok   $2 $1"; else echo "FAIL $2 $1: $4"; [ $2 = berth ] && fails=$((fails+1)); fi
}

# config.json as the user: `spec --rootless` (run under $3, e.g. unshare), sleep 300,
# cgroupsPath $1, resources $2.
config() {
  rm -f $W/b/config.json
  asu ${3:-} $W/berth spec --rootless
  sed -i -e 's/"terminal": true/"terminal": false/' -e 's/"sh"$/"sleep", "300"/' \
    -e '/^    "resources": {.*},$/d' \
    -e "s|^  \"linux\": {|  \"linux\": {\"cgroupsPath\": \"$1\", \"resources\": $2,|" $W/b/config.json
}

echo "mode $MODE; systemd $(systemctl --version | head -1); runc $(runc --version | head -1)"
loginctl enable-linger $U
for _ in $(seq 240); do
  systemctl -q is-active user@$UID_.service && [ -S $XDG/bus ] && break
  sleep 0.5
done
echo "user@$UID_.service: $(systemctl is-active user@$UID_.service); bus: $(ls -l $XDG/bus 2>&1)"
echo "delegated to the user manager: $(cat $MGR/cgroup.controllers 2>&1)"

if [ "$MODE" = v1 ]; then
  # systemd delegates nothing to user managers on v1: refused, in one line, nothing left.
  config user.slice:berth:sdu '{"pids": {"limit": 64}}'
  for rt in berth runc; do
    RT=$W/berth; [ $rt = runc ] && RT=runc
    asu $RT --systemd-cgroup --root $XDG/st-$rt run -d sdu-$rt >$W/log 2>&1 </dev/null; rc=$?; out=$(cat $W/log)
    left=$(asu $RT --root $XDG/st-$rt list -q 2>/dev/null)
    check "rootless systemd on cgroup v1 refused (rc $rc): $out" $rt \
      "$([ $rc != 0 ] && [ "$(echo "$out" | wc -l)" = 1 ] && [ -z "$left" ]; echo $?)" ""
    asu $RT --root $XDG/st-$rt delete -f sdu-$rt >/dev/null 2>&1
  done
  loginctl disable-linger $U
  echo "berth failures: $fails"
  [ $fails = 0 ]
  exit
fi

LIMITS='{"memory": {"limit": 67108864}, "pids": {"limit": 64}}'
for rt in berth runc; do
  RT=$W/berth; [ $rt = runc ] && RT=runc
  R="$RT --systemd-cgroup --root $XDG/st-$rt"
  id=sdu-$rt
  unit=$rt-$id.scope
  cgp=/user.slice/user-$UID_.slice/user@$UID_.service/user.slice/$unit
  # 1. The scope, made by the user's systemd, with the limits as properties and in files.
  config user.slice:$rt:$id "$LIMITS"
  rm -f $W/pid; asu $R run -d --pid-file $W/pid $id >$W/log 2>&1 </dev/null; out=$(cat $W/log)
  pid=$(cat $W/pid 2>/dev/null || echo 0)
  st=$(uprop $unit ActiveState); mem=$(uprop $unit MemoryMax); tasks=$(uprop $unit TasksMax)
  deleg=$(uprop $unit Delegate)
  check "user scope $unit: $st MemoryMax=$mem TasksMax=$tasks Delegate=$deleg" $rt \
    "$([ "$st" = active ] && [ "$mem" = 67108864 ] && [ "$tasks" = 64 ] && [ "$deleg" = yes ]; echo $?)" "$out"
  c=$(cat /proc/$pid/cgroup 2>&1)
  check "init $pid in $c" $rt "$([ "$c" = "0::$cgp" ]; echo $?)" ""
  f=$(cat /sys/fs/cgroup$cgp/memory.max 2>&1); p=$(cat /sys/fs/cgroup$cgp/pids.max 2>&1)
  check "files memory.max=$f pids.max=$p" $rt "$([ "$f" = 67108864 ] && [ "$p" = 64 ]; echo $?)" ""
  # 2. update: the unit's properties and the files.
  out=$(asu $R update --memory 134217728 --pids-limit 100 $id 2>&1)
  mem=$(uprop $unit MemoryMax); tasks=$(uprop $unit TasksMax)
  f=$(cat /sys/fs/cgroup$cgp/memory.max 2>&1); p=$(cat /sys/fs/cgroup$cgp/pids.max 2>&1)
  check "update: MemoryMax=$mem TasksMax=$tasks memory.max=$f pids.max=$p" $rt \
    "$([ "$mem" = 134217728 ] && [ "$tasks" = 100 ] && [ "$f" = 134217728 ] && [ "$p" = 100 ]; echo $?)" "$out"
  # 2b. update of a controller the user manager was not delegated: refused by name.
  if ! grep -qw cpuset $MGR/cgroup.controllers; then
    out=$(asu $R update --cpuset-cpus 0 $id 2>&1); rc=$?
    check "update of cpuset (not delegated) refused (rc $rc): $out" $rt \
      "$([ $rc != 0 ] && echo "$out" | grep -q 'controller cpuset'; echo $?)" ""
  fi
  # 3. exec joins the scope (a cgroup namespace shows it as the root): the caller is outside
  # the user manager's subtree, so the process cannot move itself there; berth asks systemd
  # (AttachProcessesToUnit). Seen from the host too: a second process in the scope.
  ecg=$(asu $R exec $id cat /proc/self/cgroup 2>&1 | tail -1)
  check "exec cgroup: $ecg" $rt "$(echo "$ecg" | grep -q "$unit\$\|^0::/\$"; echo $?)" ""
  asu $R exec -d $id sleep 30 >$W/log 2>&1 </dev/null
  n=$(wc -l </sys/fs/cgroup$cgp/cgroup.procs)
  check "exec -d: $n processes in the scope ($(cat $W/log))" $rt "$([ "$n" = 2 ]; echo $?)" ""
  # 4. pause / resume freeze the delegated scope.
  out=$(asu $R pause $id 2>&1); fz=$(cat /sys/fs/cgroup$cgp/cgroup.freeze 2>&1)
  s=$(asu $R state $id 2>/dev/null | grep -o '"status": *"[a-z]*"')
  check "pause: $s cgroup.freeze=$fz" $rt "$(echo "$s" | grep -q paused && [ "$fz" = 1 ]; echo $?)" "$out"
  out=$(asu $R resume $id 2>&1); s=$(asu $R state $id 2>/dev/null | grep -o '"status": *"[a-z]*"')
  check "resume: $s" $rt "$(echo "$s" | grep -q running; echo $?)" "$out"
  # 5. delete -f: the unit and its cgroup are gone.
  out=$(asu $R delete -f $id 2>&1)
  as=$(uprop $unit ActiveState)
  check "delete: unit ${as:-gone}, cgroup dir $([ -e /sys/fs/cgroup$cgp ] && echo left || echo gone)" $rt \
    "$([ "${as:-inactive}" = inactive ] && [ ! -e /sys/fs/cgroup$cgp ] && ! asu $R state $id >/dev/null 2>&1; echo $?)" "$out"
  # 6. No cgroupsPath: user.slice, as runc's rootless default.
  config "" "$LIMITS"
  sed -i 's/"cgroupsPath": "", //' $W/b/config.json
  asu $R run -d --pid-file $W/pid $id >$W/log 2>&1 </dev/null; out=$(cat $W/log)
  c=$(cat /proc/$(cat $W/pid 2>/dev/null || echo 0)/cgroup 2>/dev/null)
  check "no cgroupsPath -> $c" $rt \
    "$([ "$c" = "0::/user.slice/user-$UID_.slice/user@$UID_.service/user.slice/$rt-$id.scope" ]; echo $?)" "$out"
  asu $R delete -f $id >/dev/null 2>&1
  rm -f $W/pid
done

# 7. A limit on a controller the user manager was not delegated: one line naming it,
# nothing left (runc's behaviour shown, not judged).
miss=
for c in cpuset io hugetlb; do
  grep -qw $c /sys/fs/cgroup/cgroup.controllers && ! grep -qw $c $MGR/cgroup.controllers && { miss=$c; break; }
done
case $miss in
  cpuset) res='{"cpu": {"cpus": "0"}}' ;;
  io) res='{"blockIO": {"weight": 100}}' ;;
  hugetlb) res='{"hugepageLimits": [{"pageSize": "2MB", "limit": 0}]}' ;;
esac
if [ -n "$miss" ]; then
  for rt in berth runc; do
    RT=$W/berth; [ $rt = runc ] && RT=runc
    config user.slice:$rt:nodeleg "$res"
    asu $RT --systemd-cgroup --root $XDG/st-$rt run -d nodeleg >$W/log 2>&1 </dev/null; rc=$?; out=$(cat $W/log)
    as=$(uprop $rt-nodeleg.scope ActiveState)
    check "$miss not delegated: refused (rc $rc), unit ${as:-gone}: $out" $rt \
      "$([ $rc != 0 ] && [ "$(echo "$out" | wc -l)" = 1 ] && echo "$out" | grep -q "controller $miss" && [ "${as:-inactive}" = inactive ] && ! asu $RT --root $XDG/st-$rt state nodeleg >/dev/null 2>&1; echo $?)" ""
    asu $RT --root $XDG/st-$rt delete -f nodeleg >/dev/null 2>&1
  done
else
  echo "skip: every controller is delegated to the user manager"
fi

# 8. berth as uid 0 of a user namespace (as under rootlesskit): EXTERNAL with the host uid.
config user.slice:berth:userns "$LIMITS" "unshare --user --map-root-user"
asu unshare --user --map-root-user $W/berth --systemd-cgroup --root $XDG/st-userns run -d userns >$W/log 2>&1 </dev/null; out=$(cat $W/log)
st=$(uprop berth-userns.scope ActiveState)
f=$(cat /sys/fs/cgroup/user.slice/user-$UID_.slice/user@$UID_.service/user.slice/berth-userns.scope/memory.max 2>&1)
check "in a user namespace: scope $st, memory.max=$f" berth "$([ "$st" = active ] && [ "$f" = 67108864 ]; echo $?)" "$out"
out=$(asu unshare --user --map-root-user $W/berth --root $XDG/st-userns delete -f userns 2>&1)
check "in a user namespace: delete, unit $(uprop berth-userns.scope ActiveState)" berth \
  "$([ "$(uprop berth-userns.scope ActiveState)" = inactive ]; echo $?)" "$out"

loginctl disable-linger $U
echo "berth failures: $fails"
[ $fails = 0 ]
