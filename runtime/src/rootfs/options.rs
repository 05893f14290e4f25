//! Mount options of config.json mapped to mount(2) flags, propagation flags,
//! mount_setattr(2) recursive attributes, and the leftover filesystem data string.

use nix::mount::MsFlags;

pub const ATTR_RDONLY: u64 = 0x1;
pub const ATTR_NOSUID: u64 = 0x2;
pub const ATTR_NODEV: u64 = 0x4;
pub const ATTR_NOEXEC: u64 = 0x8;
pub const ATTR_ATIME: u64 = 0x70;
pub const ATTR_RELATIME: u64 = 0x0;
pub const ATTR_NOATIME: u64 = 0x10;
pub const ATTR_STRICTATIME: u64 = 0x20;
pub const ATTR_NODIRATIME: u64 = 0x80;
pub const ATTR_IDMAP: u64 = 0x0010_0000;
pub const ATTR_NOSYMFOLLOW: u64 = 0x0020_0000;

#[derive(Debug, Clone)]
pub struct Options {
    pub flags: MsFlags,
    pub propagation: Vec<MsFlags>,
    pub data: Vec<String>,
    /// Recursive attributes for mount_setattr (rro, rnosuid, …).
    pub attr_set: u64,
    pub attr_clr: u64,
    pub idmap: bool,
    pub recursive_idmap: bool,
}

impl Options {
    pub fn bind(&self) -> bool {
        self.flags.contains(MsFlags::MS_BIND)
    }
    pub fn data_str(&self) -> Option<String> {
        (!self.data.is_empty()).then(|| self.data.join(","))
    }
    /// Flags that a bind mount needs a second, remounting mount(2) call for.
    pub fn remount_flags(&self) -> MsFlags {
        self.flags & !(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_REMOUNT)
    }
}

impl Default for Options {
    fn default() -> Self {
        Options {
            flags: MsFlags::empty(),
            propagation: vec![],
            data: vec![],
            attr_set: 0,
            attr_clr: 0,
            idmap: false,
            recursive_idmap: false,
        }
    }
}

pub fn parse(opts: &[String]) -> Options {
    let mut o = Options::default();
    for opt in opts {
        let s = opt.as_str();
        if let Some((set, clear)) = flag(s) {
            if clear {
                o.flags.remove(set);
            } else {
                o.flags.insert(set);
            }
        } else if let Some(p) = propagation(s) {
            o.propagation.push(p);
        } else if let Some(r) = recursive_attr(s) {
            o.add_recursive(r);
        } else if s == "idmap" {
            o.idmap = true;
        } else if s == "ridmap" {
            o.idmap = true;
            o.recursive_idmap = true;
        } else if s == "tmpcopyup" || s.is_empty() {
            // tmpcopyup is a runc extension we do not implement; ignoring it is what crun does.
        } else {
            o.data.push(opt.clone());
        }
    }
    o
}

/// (flag, clears?) for the classic mount(2) options.
fn flag(s: &str) -> Option<(MsFlags, bool)> {
    use MsFlags as F;
    Some(match s {
        "defaults" => (F::empty(), false),
        "ro" => (F::MS_RDONLY, false),
        "rw" => (F::MS_RDONLY, true),
        "suid" => (F::MS_NOSUID, true),
        "nosuid" => (F::MS_NOSUID, false),
        "dev" => (F::MS_NODEV, true),
        "nodev" => (F::MS_NODEV, false),
        "exec" => (F::MS_NOEXEC, true),
        "noexec" => (F::MS_NOEXEC, false),
        "sync" => (F::MS_SYNCHRONOUS, false),
        "async" => (F::MS_SYNCHRONOUS, true),
        "dirsync" => (F::MS_DIRSYNC, false),
        "remount" => (F::MS_REMOUNT, false),
        "mand" => (F::MS_MANDLOCK, false),
        "nomand" => (F::MS_MANDLOCK, true),
        "atime" => (F::MS_NOATIME, true),
        "noatime" => (F::MS_NOATIME, false),
        "diratime" => (F::MS_NODIRATIME, true),
        "nodiratime" => (F::MS_NODIRATIME, false),
        "bind" => (F::MS_BIND, false),
        "rbind" => (F::MS_BIND | F::MS_REC, false),
        "relatime" => (F::MS_RELATIME, false),
        "norelatime" => (F::MS_RELATIME, true),
        "strictatime" => (F::MS_STRICTATIME, false),
        "nostrictatime" => (F::MS_STRICTATIME, true),
        "lazytime" => (F::MS_LAZYTIME, false),
        "nolazytime" => (F::MS_LAZYTIME, true),
        "silent" => (F::MS_SILENT, false),
        "loud" => (F::MS_SILENT, true),
        "iversion" => (F::MS_I_VERSION, false),
        "noiversion" => (F::MS_I_VERSION, true),
        _ => return None,
    })
}

fn propagation(s: &str) -> Option<MsFlags> {
    use MsFlags as F;
    Some(match s {
        "private" => F::MS_PRIVATE,
        "rprivate" => F::MS_PRIVATE | F::MS_REC,
        "shared" => F::MS_SHARED,
        "rshared" => F::MS_SHARED | F::MS_REC,
        "slave" => F::MS_SLAVE,
        "rslave" => F::MS_SLAVE | F::MS_REC,
        "unbindable" => F::MS_UNBINDABLE,
        "runbindable" => F::MS_UNBINDABLE | F::MS_REC,
        _ => return None,
    })
}

/// What one recursive option does to the mount_setattr(2) attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Recursive {
    Set(u64),
    Clear(u64),
    /// One of the atime modes (RELATIME, NOATIME, STRICTATIME). They share one field,
    /// MOUNT_ATTR__ATIME, which the kernel only takes cleared as a whole (a partial clear
    /// is EINVAL), so every atime option clears it all and sets exactly one mode.
    Atime(u64),
}

impl Options {
    /// Adds one recursive option; a later option overrides an earlier one on the same bit.
    fn add_recursive(&mut self, r: Recursive) {
        match r {
            Recursive::Set(a) => {
                self.attr_set |= a;
                self.attr_clr &= !a;
            }
            Recursive::Clear(a) => {
                self.attr_clr |= a;
                self.attr_set &= !a;
            }
            Recursive::Atime(mode) => {
                self.attr_clr |= ATTR_ATIME;
                self.attr_set = (self.attr_set & !ATTR_ATIME) | mode;
            }
        }
    }
}

/// The recursive options that mount_setattr(2) applies.
///
/// The atime ones follow mount(8)'s meaning of their non-recursive forms: `atime` and
/// `nostrictatime` fall back to the kernel default (relatime). `rnorelatime` is runc's: it
/// clears MOUNT_ATTR_RELATIME, which is 0, so it changes nothing and relatime stays (runc
/// and crun; an earlier berth made it strictatime). (runc's ratime and rnostrictatime clear
/// only part of the atime field, which the kernel refuses; berth makes them relatime.)
fn recursive_attr(s: &str) -> Option<Recursive> {
    use Recursive::{Atime, Clear, Set};
    Some(match s {
        "rro" => Set(ATTR_RDONLY),
        "rrw" => Clear(ATTR_RDONLY),
        "rnosuid" => Set(ATTR_NOSUID),
        "rsuid" => Clear(ATTR_NOSUID),
        "rnodev" => Set(ATTR_NODEV),
        "rdev" => Clear(ATTR_NODEV),
        "rnoexec" => Set(ATTR_NOEXEC),
        "rexec" => Clear(ATTR_NOEXEC),
        "rnodiratime" => Set(ATTR_NODIRATIME),
        "rdiratime" => Clear(ATTR_NODIRATIME),
        "rrelatime" | "ratime" | "rnostrictatime" => Atime(ATTR_RELATIME),
        "rnoatime" => Atime(ATTR_NOATIME),
        "rstrictatime" => Atime(ATTR_STRICTATIME),
        "rnorelatime" => Clear(ATTR_RELATIME),
        "rnosymfollow" => Set(ATTR_NOSYMFOLLOW),
        "rsymfollow" => Clear(ATTR_NOSYMFOLLOW),
        _ => return None,
    })
}

/// Whether an option is applied with mount_setattr(2) (kernel 5.12+).
pub fn needs_setattr(s: &str) -> bool {
    recursive_attr(s).is_some() || s == "idmap" || s == "ridmap"
}

/// Every option we apply, for `berth features` (not tmpcopyup, which is accepted and ignored).
pub fn known() -> Vec<&'static str> {
    vec![
        "async",
        "atime",
        "bind",
        "defaults",
        "dev",
        "diratime",
        "dirsync",
        "exec",
        "idmap",
        "iversion",
        "lazytime",
        "loud",
        "mand",
        "noatime",
        "nodev",
        "nodiratime",
        "noexec",
        "noiversion",
        "nolazytime",
        "nomand",
        "norelatime",
        "nostrictatime",
        "nosuid",
        "private",
        "ratime",
        "rbind",
        "rdev",
        "rdiratime",
        "relatime",
        "remount",
        "rexec",
        "ridmap",
        "rnoatime",
        "rnodev",
        "rnodiratime",
        "rnoexec",
        "rnorelatime",
        "rnostrictatime",
        "rnosuid",
        "rnosymfollow",
        "ro",
        "rprivate",
        "rrelatime",
        "rro",
        "rrw",
        "rshared",
        "rslave",
        "rstrictatime",
        "rsuid",
        "rsymfollow",
        "runbindable",
        "rw",
        "shared",
        "silent",
        "slave",
        "strictatime",
        "suid",
        "sync",
        "unbindable",
    ]
}

#[cfg(test)]
#[allow(clippy::disallowed_methods)]
mod tests {
    use super::*;

    #[test]
    fn parses_flags_propagation_and_data() {
        let o = parse(&[
            "rbind".into(),
            "ro".into(),
            "rslave".into(),
            "mode=755".into(),
            "rnosuid".into(),
        ]);
        assert!(o
            .flags
            .contains(MsFlags::MS_BIND | MsFlags::MS_REC | MsFlags::MS_RDONLY));
        assert_eq!(o.propagation, vec![MsFlags::MS_SLAVE | MsFlags::MS_REC]);
        assert_eq!(o.data_str().as_deref(), Some("mode=755"));
        assert_eq!(o.attr_set, ATTR_NOSUID);
        let o = parse(&["ro".into(), "rw".into()]);
        assert!(!o.flags.contains(MsFlags::MS_RDONLY));
    }

    fn attrs(opts: &[&str]) -> (u64, u64) {
        let o = parse(&opts.iter().map(|s| s.to_string()).collect::<Vec<_>>());
        (o.attr_set, o.attr_clr)
    }

    #[test]
    fn atime_options_clear_the_whole_field_and_set_one_mode() {
        for (opt, mode) in [
            ("rrelatime", ATTR_RELATIME),
            ("ratime", ATTR_RELATIME),
            ("rnostrictatime", ATTR_RELATIME),
            ("rnoatime", ATTR_NOATIME),
            ("rstrictatime", ATTR_STRICTATIME),
        ] {
            assert_eq!(attrs(&[opt]), (mode, ATTR_ATIME), "{opt}");
        }
        // The last atime option wins, and other attributes are kept.
        assert_eq!(
            attrs(&["rnoatime", "rro", "rstrictatime"]),
            (ATTR_RDONLY | ATTR_STRICTATIME, ATTR_ATIME)
        );
        assert_eq!(attrs(&["rro", "rrw"]), (0, ATTR_RDONLY));
        // rnorelatime clears RELATIME (0), as runc: nothing changes.
        assert_eq!(attrs(&["rnorelatime"]), (0, 0));
    }
}
