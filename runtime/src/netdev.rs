//! linux.netDevices: host network devices moved into the container's network namespace,
//! renamed when asked, with their permanent global addresses kept (the kernel drops
//! addresses when a link changes namespace) and set up, as the spec requires.
//!
//! Deliberate deviation: runtime-spec config-linux.md ("Namespace Lifecycle and Container
//! Termination") says the runtime "MUST NOT attempt to move the interface out of the
//! namespace before deletion" and leaves the device to the kernel (a physical one returns
//! to the initial namespace, a veth is destroyed). Berth's users asked for the device back
//! (issue 9), so the namespace is pinned by a bind mount in the container's state directory
//! and `delete` (or a failed create) moves every device back under its host name, with its
//! addresses and its host up state, before the namespace goes (README, "Using berth like
//! runc").

use crate::error::{Error, Result};
use crate::netlink::{Addr, Socket};
use nix::sched::{setns, CloneFlags};
use oci_spec::runtime::LinuxNetDevice;
use std::collections::HashMap;
use std::os::fd::OwnedFd;
use std::path::Path;

const RECORD: &str = "netdevs.json";
const PIN: &str = "netns";

/// One moved device, recorded before the move so a failure can still undo it.
#[derive(serde::Serialize, serde::Deserialize)]
struct Moved {
    host: String,
    name: String,
    /// The host's up state, given back on restore (inside, the device is always up).
    up: bool,
    addrs: Vec<Addr>,
}

/// The spec's rules on a netDevices entry, checked before create touches anything.
pub fn check(host: &str, dev: &LinuxNetDevice) -> std::result::Result<(), String> {
    let name = dev.name().as_deref().unwrap_or(host);
    let valid = |n: &str| {
        !n.is_empty()
            && n.len() < libc::IFNAMSIZ
            && n != "."
            && n != ".."
            && !n.contains(['/', ':'])
            && !n.chars().any(char::is_whitespace)
    };
    if !valid(host) || !valid(name) {
        return Err(format!("{name:?} is not a valid interface name"));
    }
    if !Path::new("/sys/class/net").join(host).exists() {
        return Err(format!("no network device {host:?} on the host"));
    }
    Ok(())
}

fn index(name: &str) -> Option<i32> {
    let c = std::ffi::CString::new(name).ok()?;
    // SAFETY: c is a valid C string.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (i != 0).then_some(i as i32)
}

fn open(p: impl AsRef<Path>) -> Result<OwnedFd> {
    let p = p.as_ref();
    std::fs::File::open(p)
        .map(OwnedFd::from)
        .map_err(|e| Error::io(p, e))
}

/// Runs `f` with this (single-threaded) process in network namespace `ns`, then returns
/// to `home` whatever `f` did.
fn inside<T>(ns: &OwnedFd, home: &OwnedFd, f: impl FnOnce() -> Result<T>) -> Result<T> {
    setns(ns, CloneFlags::CLONE_NEWNET).map_err(|e| Error::sys("setns network", e))?;
    let r = f();
    setns(home, CloneFlags::CLONE_NEWNET)
        .map_err(|e| Error::sys("setns back to host network", e))?;
    r
}

/// Gives a device its addresses and up state in the current namespace.
fn configure(name: &str, up: bool, addrs: &[Addr], field: &str) -> Result<()> {
    let idx = index(name).ok_or_else(|| Error::Other(format!("{field}: {name:?} vanished")))?;
    let mut s = Socket::open().map_err(|e| Error::Other(format!("{field}: netlink: {e}")))?;
    for a in addrs {
        s.add_address(idx, a)
            .map_err(|e| Error::Other(format!("{field}: add address: {e}")))?;
    }
    if up {
        s.set_up(idx)
            .map_err(|e| Error::Other(format!("{field}: set up: {e}")))?;
    }
    Ok(())
}

/// Moves the devices into the network namespace of `pid` (the container's init).
pub fn move_in(devs: &HashMap<String, LinuxNetDevice>, pid: i32, dir: &Path) -> Result<()> {
    if devs.is_empty() {
        return Ok(());
    }
    let pin = dir.join(PIN);
    std::fs::write(&pin, b"").map_err(|e| Error::io(&pin, e))?;
    nix::mount::mount(
        Some(format!("/proc/{pid}/ns/net").as_str()),
        &pin,
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )
    .map_err(|e| Error::sys(format!("pin network namespace at {}", pin.display()), e))?;
    let (ns, home) = (open(&pin)?, open("/proc/self/ns/net")?);
    let mut host = Socket::open().map_err(|e| Error::Other(format!("netlink: {e}")))?;
    let mut names: Vec<_> = devs.iter().collect();
    names.sort_by_key(|(k, _)| k.as_str());
    let mut moved: Vec<Moved> = vec![];
    for (h, dev) in names {
        let field = format!("linux.netDevices.{h}");
        let err = |m: String| Error::Other(format!("{field}: {m}"));
        let idx = index(h).ok_or_else(|| err("no such network device on the host".into()))?;
        let flags =
            std::fs::read_to_string(format!("/sys/class/net/{h}/flags")).unwrap_or_default();
        let up =
            u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16).unwrap_or(0) & 1 != 0;
        let addrs = host
            .addresses(idx)
            .map_err(|e| err(format!("list addresses: {e}")))?;
        let name = dev.name().clone().unwrap_or_else(|| h.clone());
        moved.push(Moved {
            host: h.clone(),
            name: name.clone(),
            up,
            addrs,
        });
        save(dir, &moved)?;
        if let Err(e) = host.move_link(idx, &ns, &name) {
            // The kernel moves first and renames after: a name taken inside (EEXIST) leaves
            // the device in the container under its host name. Record what really happened,
            // so restore takes back this device and no other one of the asked-for name.
            if index(h).is_some() {
                moved.pop();
            } else if let Some(m) = moved.last_mut() {
                m.name = h.clone();
            }
            save(dir, &moved)?;
            return Err(err(format!("move into the container as {name:?}: {e}")));
        }
    }
    // The spec: "The runtime MUST set the network device state to 'up' after moving it".
    inside(&ns, &home, || {
        moved.iter().try_for_each(|m| {
            configure(
                &m.name,
                true,
                &m.addrs,
                &format!("linux.netDevices.{}", m.host),
            )
        })
    })
}

fn save(dir: &Path, moved: &[Moved]) -> Result<()> {
    let data = serde_json::to_vec(moved).expect("serialises");
    crate::utils::write_atomic(&dir.join(RECORD), &data)
}

/// Moves recorded devices back to the host under their host names, with their addresses,
/// and unpins the namespace. Best effort: what cannot be restored is reported, not fatal.
pub fn restore(dir: &Path) {
    let Ok(data) = std::fs::read(dir.join(RECORD)) else {
        return;
    };
    let moved: Vec<Moved> = serde_json::from_slice(&data).unwrap_or_default();
    let pin = dir.join(PIN);
    if let (Ok(ns), Ok(home)) = (open(&pin), open("/proc/self/ns/net")) {
        for m in &moved {
            let r = inside(&ns, &home, || {
                let idx =
                    index(&m.name).ok_or_else(|| Error::Other(format!("{:?} is gone", m.name)))?;
                Socket::open()
                    .and_then(|mut s| s.move_link(idx, &home, &m.host))
                    .map_err(|e| Error::Other(format!("move back: {e}")))
            })
            .and_then(|_| configure(&m.host, m.up, &m.addrs, "restore"));
            if let Err(e) = r {
                crate::logger::warn(&format!("linux.netDevices.{}: not restored: {e}", m.host));
            }
        }
    }
    let _ = nix::mount::umount2(&pin, nix::mount::MntFlags::MNT_DETACH);
    let _ = std::fs::remove_file(&pin);
    let _ = std::fs::remove_file(dir.join(RECORD));
}
