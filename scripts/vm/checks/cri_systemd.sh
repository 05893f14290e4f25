#!/bin/bash
# Guest check (issue 16): a Kubernetes pod through containerd's CRI plugin on a systemd host,
# its cgroup parent a kubelet-style systemd slice (kubepods-besteffort-pod<uid>.slice): the
# shim's tests/cri.rs (a real CRI client: sandbox, container with a memory limit, CRI log,
# ExecSync, stop, removal, nothing left) run in the guest. containerd 1.6 sends a runtime
# other than runc no SystemdCgroup option, so this also shows the shim choosing the systemd
# driver from CRI's `slice:cri-containerd:ID` cgroups path: the test asserts the container's
# scope under kubepods.slice/kubepods-besteffort.slice/… with its memory limit, and that the
# scope is gone after removal.
#   cargo test --release -p containerd-shim-berth-v2 --no-run && scripts/vm.sh scripts/vm/checks/cri_systemd.sh
set -u
bin=$(awk '$1 == "cri" { print $2 }' target/vm/shim-tests.all 2>/dev/null)
if [ -z "$bin" ]; then
  bin=$(ls -t target/release/deps/cri-* 2>/dev/null | grep -v '\.d$' | head -1)
fi
[ -x "$bin" ] || { echo "FAIL cri: no test binary (cargo test --release -p containerd-shim-berth-v2 --no-run)"; exit 1; }
slice=kubepods-besteffort-pod0b1c2d3e.slice
if CRI_CGROUP_PARENT=$slice TMPDIR=/var/tmp timeout -k 10 300 "$bin" --test-threads=1; then
  echo "ok   berth-shim cri pod under $slice"
else
  echo "FAIL berth-shim cri pod under $slice"
  exit 1
fi
# The slice systemd made for the pod is not the runtime's to remove (kubelet does it).
systemctl stop "$slice" 2>/dev/null || true
