#!/usr/bin/env bash
# Runs a command file as root inside a Debian 12 guest (systemd as PID 1, AppArmor enabled,
# users' session buses (dbus-user-session), runc, containerd, busybox-static, gcc), booted with
# qemu under TCG, and exits with its status.
#
#   scripts/vm.sh [--cgroup v2|v1] [--timeout SECS] [--out DIR] [--mem MiB] CMDFILE
#   scripts/vm.sh --build          # only make (or find) the cached image
#
# Run it from any worktree: the repository it is run from (the git top level of the current
# directory) is shared into the guest read-only AT THE SAME PATH, and CMDFILE runs there
# (bash, cwd = that repository), so target/release/berth and the `cargo test --no-run`
# binaries (whose CARGO_BIN_EXE_* and CARGO_MANIFEST_DIR are absolute host paths) work
# unchanged. $VM_OUT (/mnt/out in the guest) is a writable share: CMDFILE's output and exit
# status land there, and anything it writes there is on the host afterwards (--out DIR keeps
# it; by default it is a temporary directory, removed). The guest has no network.
#   --cgroup v2   systemd.unified_cgroup_hierarchy=1: pure cgroup v2 (the default)
#   --cgroup v1   systemd.unified_cgroup_hierarchy=0: systemd on cgroup v1 (hybrid)
# In the guest, $VM_CGROUP is v2 or v1. Exit status: CMDFILE's; 124 when the timeout
# (default 1800 s, boot included) ran out; 125 when the guest never reported a status.
#
# The image is built once with mmdebstrap (~3 min) and cached under /var/cache/berth/vm
# (BERTH_CACHE_DIR), keyed on a hash of its recipe (the functions below marked "recipe"), so
# editing the recipe makes a new image and every worktree shares the same one. Each run boots
# a throw-away qcow2 overlay: the cached image is never written. Boot under TCG takes 1-3 min.
# /dev/kvm on these machines is kvm_pvm, which cannot boot a stock Debian kernel, so TCG it is.
# Needs qemu-system-x86 (from bookworm-backports) and mmdebstrap: `scripts/setup.sh --vm`.
set -euo pipefail

CACHE=${BERTH_CACHE_DIR:-/var/cache/berth}/vm
CGROUP=v2
TIMEOUT=1800
OUT=
MEM=${VM_MEM:-3072}
BUILD_ONLY=0
CMDFILE=

die() { echo "vm.sh: $*" >&2; exit 125; }

while [ $# -gt 0 ]; do
  case "$1" in
    --cgroup) CGROUP=${2:?}; shift 2 ;;
    --timeout) TIMEOUT=${2:?}; shift 2 ;;
    --out) OUT=${2:?}; shift 2 ;;
    --mem) MEM=${2:?}; shift 2 ;;
    --build) BUILD_ONLY=1; shift ;;
    -h|--help) sed -n '2,27p' "$0"; exit 0 ;;
    -*) die "unknown option $1" ;;
    *) [ -z "$CMDFILE" ] || die "one CMDFILE only"; CMDFILE=$1; shift ;;
  esac
done
case "$CGROUP" in
  v2) UNIFIED=1 ;;
  v1) UNIFIED=0 ;;
  *) die "--cgroup must be v2 or v1, not $CGROUP" ;;
esac
[ "$BUILD_ONLY" = 1 ] || [ -n "$CMDFILE" ] || die "usage: vm.sh [--cgroup v2|v1] [--timeout SECS] [--out DIR] CMDFILE"
[ "$BUILD_ONLY" = 1 ] || [ -f "$CMDFILE" ] || die "command file $CMDFILE: no such file"

# ---- recipe: what the guest image holds ------------------------------------------------
recipe_packages() {
  echo systemd systemd-sysv libpam-systemd dbus dbus-user-session udev kmod linux-image-amd64 \
    apparmor apparmor-utils runc containerd busybox-static iproute2 iptables \
    ca-certificates procps psmisc util-linux uidmap libcap2-bin gcc libc6-dev \
    golang-github-opencontainers-specs-dev containernetworking-plugins
}

# Before the kernel is installed: a small initramfs (only what finds the root disk) boots
# faster under TCG than Debian's MODULES=most.
recipe_essential_hook() {
  local root=$1
  mkdir -p "$root/etc/initramfs-tools/conf.d" "$root/usr/share/initramfs-tools/modules.d"
  echo MODULES=list >"$root/etc/initramfs-tools/conf.d/berth-vm"
  printf '%s\n' virtio_pci virtio_blk ext4 >"$root/usr/share/initramfs-tools/modules.d/berth-vm"
}

# The guest's side: a unit started once boot is done (so the system is "running", not
# "starting") that mounts the shares, runs the command file, writes its
# output and status to the out share and powers off at once (the disk is a throw-away overlay).
recipe_runner() {
  cat <<'EOF'
#!/bin/bash
out=/mnt/out
mkdir -p "$out"
if ! mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288 out "$out"; then
  echo "berth-vm: cannot mount the out share" >/dev/console
  systemctl poweroff -ff
fi
repo=$(cat "$out/.repo")
mkdir -p "$repo"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=524288,ro,cache=loose repo "$repo" \
  || echo "berth-vm: cannot mount the repository share at $repo" >>"$out/output"
cd "$repo" || cd /
export VM_OUT=$out VM_CGROUP=$(cat "$out/.cgroup") HOME=/root
bash "$out/.cmd" >>"$out/output" 2>&1 </dev/null
echo $? >"$out/.status.tmp"
sync
mv "$out/.status.tmp" "$out/status"
sync
systemctl poweroff -ff
EOF
}

recipe_unit() {
  cat <<'EOF'
[Unit]
Description=Run the Berth VM command file
After=multi-user.target
Wants=dbus.service

[Service]
Type=exec
ExecStart=/usr/local/sbin/berth-vm-run
StandardOutput=journal+console
StandardError=journal+console
TimeoutStartSec=infinity
TasksMax=infinity
LimitNOFILE=1048576
LimitMEMLOCK=infinity

[Install]
WantedBy=multi-user.target
EOF
}

recipe_customize_hook() {
  local root=$1
  recipe_runner >"$root/usr/local/sbin/berth-vm-run"
  chmod 755 "$root/usr/local/sbin/berth-vm-run"
  recipe_unit >"$root/etc/systemd/system/berth-vm-run.service"
  mkdir -p "$root/etc/systemd/system/multi-user.target.wants"
  ln -sf /etc/systemd/system/berth-vm-run.service \
    "$root/etc/systemd/system/multi-user.target.wants/berth-vm-run.service"
  # Nothing the command does not start itself: fewer units, a faster boot.
  for u in containerd.service getty@tty1.service serial-getty@ttyS0.service \
    apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service \
    fstrim.timer logrotate.timer man-db.timer systemd-timesyncd.service \
    systemd-networkd-wait-online.service; do
    ln -sf /dev/null "$root/etc/systemd/system/$u"
  done
  echo berth-vm >"$root/etc/hostname"
  printf '127.0.0.1 localhost\n127.0.1.1 berth-vm\n' >"$root/etc/hosts"
  : >"$root/etc/fstab"
  passwd --root "$root" -d root >/dev/null
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin
}
# ---- end of recipe ---------------------------------------------------------------------

recipe_hash() {
  { recipe_packages; declare -f recipe_essential_hook recipe_runner recipe_unit recipe_customize_hook; } |
    sha256sum | cut -c1-16
}

IMG_DIR="$CACHE/debian12-$(recipe_hash)"

build_image() {
  command -v mmdebstrap >/dev/null || die "mmdebstrap missing: bash scripts/setup.sh --vm"
  local tmp="$IMG_DIR.tmp.$$" t0
  t0=$(date +%s)
  echo "== vm: building the guest image $IMG_DIR (once per recipe; ~3 min)" >&2
  rm -rf "$tmp"
  mkdir -p "$tmp"
  # mmdebstrap runs hooks with sh: hand the recipe functions to bash in a file.
  declare -f recipe_essential_hook recipe_runner recipe_unit recipe_customize_hook >"$tmp/hooks.sh"
  echo '"recipe_$1_hook" "$2"' >>"$tmp/hooks.sh"
  mmdebstrap --quiet --variant=minbase --include="$(recipe_packages | tr ' ' ,)" \
    --aptopt='Acquire::Retries "3"' \
    --dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --essential-hook="bash $tmp/hooks.sh essential \"\$1\"" \
    --customize-hook="bash $tmp/hooks.sh customize \"\$1\"" \
    bookworm "$tmp/root" \
    "deb http://deb.debian.org/debian bookworm main" \
    "deb http://deb.debian.org/debian bookworm-updates main" \
    "deb http://deb.debian.org/debian-security bookworm-security main" >&2
  local k i
  k=$(ls "$tmp"/root/boot/vmlinuz-* | sort -V | tail -1)
  i=$(ls "$tmp"/root/boot/initrd.img-* | sort -V | tail -1)
  cp "$k" "$tmp/vmlinuz"
  cp "$i" "$tmp/initrd.img"
  mkfs.ext4 -q -F -L berth-vm -d "$tmp/root" "$tmp/disk.img" 4G >&2
  rm -rf "$tmp/root"
  rm -rf "$IMG_DIR"
  mv "$tmp" "$IMG_DIR"
  echo "== vm: image built in $(($(date +%s) - t0)) s ($(du -sh "$IMG_DIR" | cut -f1) on disk)" >&2
  # Images of other recipes unused for a day go (another worktree may still use a recent one).
  find "$CACHE" -mindepth 1 -maxdepth 1 -name 'debian12-*' ! -path "$IMG_DIR" -mtime +1 \
    -exec rm -rf {} + 2>/dev/null || true
}

mkdir -p "$CACHE"
if [ ! -s "$IMG_DIR/disk.img" ]; then
  exec 9>"$CACHE/.lock"
  flock 9
  [ -s "$IMG_DIR/disk.img" ] || build_image
  flock -u 9
  exec 9>&-
fi
touch "$IMG_DIR"
if [ "$BUILD_ONLY" = 1 ]; then
  echo "$IMG_DIR"
  exit 0
fi

command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 missing: bash scripts/setup.sh --vm"
REPO=$(git rev-parse --show-toplevel 2>/dev/null || pwd)
RUN=$(mktemp -d /var/tmp/berth-vm.XXXXXX)
KEEP_OUT=1
if [ -z "$OUT" ]; then OUT="$RUN/out"; KEEP_OUT=0; fi
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
rm -f "$OUT/output" "$OUT/status"
cp "$CMDFILE" "$OUT/.cmd"
echo "$REPO" >"$OUT/.repo"
echo "$CGROUP" >"$OUT/.cgroup"
: >"$OUT/output"
TAIL=
QEMU=
cleanup() {
  [ -z "$TAIL" ] || kill "$TAIL" 2>/dev/null || true
  [ -z "$QEMU" ] || kill "$QEMU" 2>/dev/null || true
  rm -f "$OUT/.cmd" "$OUT/.repo" "$OUT/.cgroup" "$OUT/.status.tmp"
  if [ "$KEEP_OUT" = 1 ]; then cp "$RUN/console.log" "$OUT/console.log" 2>/dev/null || true; fi
  rm -rf "$RUN"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

qemu-img create -q -f qcow2 -b "$IMG_DIR/disk.img" -F raw "$RUN/disk.qcow2"
APPEND="root=/dev/vda rw console=ttyS0 quiet loglevel=3 mitigations=off \
systemd.unified_cgroup_hierarchy=$UNIFIED systemd.show_status=0 apparmor=1 security=apparmor"
echo "== vm: booting ($CGROUP, ${MEM} MiB, timeout ${TIMEOUT}s) to run $CMDFILE in $REPO" >&2
t0=$(date +%s)
tail -n +1 -F "$OUT/output" 2>/dev/null &
TAIL=$!
timeout -k 10 "$TIMEOUT" qemu-system-x86_64 -accel tcg,thread=multi -cpu max -smp 2 -m "$MEM" \
  -nodefaults -no-user-config -display none -no-reboot \
  -serial "file:$RUN/console.log" \
  -kernel "$IMG_DIR/vmlinuz" -initrd "$IMG_DIR/initrd.img" -append "$APPEND" \
  -drive "file=$RUN/disk.qcow2,if=virtio,format=qcow2,cache=unsafe" \
  -virtfs "local,path=$OUT,mount_tag=out,security_model=none,id=out" \
  -virtfs "local,path=$REPO,mount_tag=repo,security_model=none,readonly=on,id=repo" &
QEMU=$!
set +e
wait "$QEMU"
qrc=$?
set -e
QEMU=
sleep 1
kill "$TAIL" 2>/dev/null || true
wait "$TAIL" 2>/dev/null || true
TAIL=
el=$(($(date +%s) - t0))
if [ -s "$OUT/status" ]; then
  rc=$(cat "$OUT/status")
  echo "== vm: $CGROUP guest exited $rc after ${el}s" >&2
  exit "$rc"
fi
if [ "$qrc" = 124 ] || [ "$qrc" = 137 ]; then
  echo "== vm: TIMEOUT after ${el}s ($CGROUP); the console's last lines:" >&2
  tail -n 30 "$RUN/console.log" >&2 || true
  exit 124
fi
echo "== vm: the guest reported no status (qemu exit $qrc after ${el}s); the console's last lines:" >&2
tail -n 30 "$RUN/console.log" >&2 || true
exit 125
