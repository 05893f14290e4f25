//! Device access on cgroup v2: v2 has no devices.allow/deny files; the rules become an eBPF
//! program (BPF_PROG_TYPE_CGROUP_DEVICE) attached to the container's cgroup, as runc and crun do.
//! The v1 rule list is first reduced by v1's own semantics (a wildcard resets the default, later
//! rules add or take away exceptions), so a config behaves the same on v1 and v2. Written here
//! rather than with a BPF crate: the program is a few straight-line compares, and pulling in
//! libbpf (C) or aya (large) for that is not worth it.

use crate::error::{Error, Result};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

const ACC_MKNOD: u8 = 1;
const ACC_READ: u8 = 2;
const ACC_WRITE: u8 = 4;

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    pub allow: bool,
    /// 'a' (all), 'b' or 'c'.
    pub typ: char,
    pub major: Option<u32>,
    pub minor: Option<u32>,
    pub access: u8,
}

/// Parses a v1 rule ("c 1:3 rwm", "a", "b *:* m").
pub fn parse(allow: bool, s: &str) -> Result<Rule> {
    let bad = || {
        Error::Other(format!(
            "device rule {s:?}: expected 'TYPE MAJOR:MINOR ACCESS'"
        ))
    };
    let mut f = s.split_whitespace();
    let typ = f.next().and_then(|t| t.chars().next()).ok_or_else(bad)?;
    if typ == 'a' {
        let access = f.nth(1).map(access_bits).unwrap_or(7);
        return Ok(Rule {
            allow,
            typ,
            major: None,
            minor: None,
            access,
        });
    }
    let (ma, mi) = f.next().and_then(|n| n.split_once(':')).ok_or_else(bad)?;
    let num = |x: &str| -> Result<Option<u32>> {
        match x {
            "*" => Ok(None),
            _ => x.parse().map(Some).map_err(|_| bad()),
        }
    };
    let access = access_bits(f.next().unwrap_or("rwm"));
    if !matches!(typ, 'b' | 'c') {
        return Err(bad());
    }
    Ok(Rule {
        allow,
        typ,
        major: num(ma)?,
        minor: num(mi)?,
        access,
    })
}

fn access_bits(s: &str) -> u8 {
    s.chars().fold(0, |a, c| {
        a | match c {
            'r' => ACC_READ,
            'w' => ACC_WRITE,
            'm' => ACC_MKNOD,
            _ => 0,
        }
    })
}

/// v1 semantics: returns the default verdict and the exceptions to it.
pub fn emulate(rules: &[Rule]) -> (bool, Vec<Rule>) {
    let (mut default_allow, mut ex): (bool, Vec<Rule>) = (false, vec![]);
    for r in rules {
        if r.typ == 'a' && r.major.is_none() && r.minor.is_none() && r.access == 7 {
            default_allow = r.allow;
            ex.clear();
            continue;
        }
        let same = |e: &Rule| e.typ == r.typ && e.major == r.major && e.minor == r.minor;
        if r.allow != default_allow {
            match ex.iter_mut().find(|e| same(e)) {
                Some(e) => e.access |= r.access,
                None => ex.push(r.clone()),
            }
        } else {
            for e in ex.iter_mut().filter(|e| same(e)) {
                e.access &= !r.access;
            }
            ex.retain(|e| e.access != 0);
        }
    }
    (default_allow, ex)
}

/// One eBPF instruction: opcode, dst and src registers, offset, immediate.
fn insn(code: u8, dst: u8, src: u8, off: i16, imm: i32) -> u64 {
    let mut b = [0u8; 8];
    b[0] = code;
    b[1] = (src << 4) | dst;
    b[2..4].copy_from_slice(&off.to_le_bytes());
    b[4..8].copy_from_slice(&imm.to_le_bytes());
    u64::from_le_bytes(b)
}

const LDX_W: u8 = 0x61; // r_dst = *(u32 *)(r_src + off)
const AND32_K: u8 = 0x54;
const RSH32_K: u8 = 0x74;
const MOV64_X: u8 = 0xbf;
const MOV64_K: u8 = 0xb7;
const JNE_K: u8 = 0x55;
const JNE_X: u8 = 0x5d;
const EXIT: u8 = 0x95;

/// The program: r2 = type, r3 = access, r4 = major, r5 = minor (from bpf_cgroup_dev_ctx), then
/// one block per exception returning its verdict, and the default verdict at the end.
pub fn compile(default_allow: bool, ex: &[Rule]) -> Vec<u64> {
    let mut p = vec![
        insn(LDX_W, 2, 1, 0, 0),
        insn(AND32_K, 2, 0, 0, 0xffff),
        insn(LDX_W, 3, 1, 0, 0),
        insn(RSH32_K, 3, 0, 0, 16),
        insn(LDX_W, 4, 1, 4, 0),
        insn(LDX_W, 5, 1, 8, 0),
    ];
    for r in ex {
        // Each test jumps past the block when it does not match; offsets are filled in below.
        let mut block: Vec<(u8, u8, u8, i32, bool)> = vec![];
        if r.typ != 'a' {
            block.push((JNE_K, 2, 0, if r.typ == 'b' { 1 } else { 2 }, true));
        }
        if r.access != 7 {
            block.push((MOV64_X, 1, 3, 0, false));
            block.push((AND32_K, 1, 0, r.access as i32, false));
            block.push((JNE_X, 1, 3, 0, true));
        }
        if let Some(m) = r.major {
            block.push((JNE_K, 4, 0, m as i32, true));
        }
        if let Some(m) = r.minor {
            block.push((JNE_K, 5, 0, m as i32, true));
        }
        block.push((MOV64_K, 0, 0, r.allow as i32, false));
        block.push((EXIT, 0, 0, 0, false));
        let n = block.len();
        for (i, (code, dst, src, imm, jump)) in block.into_iter().enumerate() {
            let off = if jump { (n - i - 1) as i16 } else { 0 };
            p.push(insn(code, dst, src, off, imm));
        }
    }
    p.push(insn(MOV64_K, 0, 0, 0, default_allow as i32));
    p.push(insn(EXIT, 0, 0, 0, 0));
    p
}

const BPF_PROG_LOAD: i64 = 5;
const BPF_PROG_ATTACH: i64 = 8;
const BPF_PROG_DETACH: i64 = 9;
const BPF_PROG_GET_FD_BY_ID: i64 = 13;
const BPF_PROG_QUERY: i64 = 16;
const BPF_PROG_TYPE_CGROUP_DEVICE: u32 = 15;
const BPF_CGROUP_DEVICE: u32 = 6;
const BPF_F_ALLOW_MULTI: u32 = 2;

/// union bpf_attr, as bytes: each command sets the fields it uses, the rest stays zero.
struct Attr([u8; 128]);

impl Attr {
    fn new() -> Attr {
        Attr([0; 128])
    }
    fn u32(mut self, at: usize, v: u32) -> Attr {
        self.0[at..at + 4].copy_from_slice(&v.to_ne_bytes());
        self
    }
    fn u64(mut self, at: usize, v: u64) -> Attr {
        self.0[at..at + 8].copy_from_slice(&v.to_ne_bytes());
        self
    }
    fn call(&mut self, cmd: i64) -> std::io::Result<i64> {
        // SAFETY: the attr buffer is valid for its whole size and outlives the call; pointers
        // inside it refer to buffers the caller keeps alive.
        let r = unsafe { libc::syscall(libc::SYS_bpf, cmd, self.0.as_mut_ptr(), self.0.len()) };
        if r < 0 {
            Err(std::io::Error::last_os_error())
        } else {
            Ok(r)
        }
    }
}

fn load(prog: &[u64]) -> Result<OwnedFd> {
    let license = b"Apache-2.0\0";
    let mut log = vec![0u8; 64 * 1024];
    let mut a = Attr::new()
        .u32(0, BPF_PROG_TYPE_CGROUP_DEVICE)
        .u32(4, prog.len() as u32)
        .u64(8, prog.as_ptr() as u64)
        .u64(16, license.as_ptr() as u64)
        .u32(24, 1)
        .u32(28, log.len() as u32)
        .u64(32, log.as_mut_ptr() as u64);
    match a.call(BPF_PROG_LOAD) {
        // SAFETY: the kernel returned a new descriptor that we now own.
        Ok(fd) => Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) }),
        Err(e) => {
            let end = log.iter().position(|b| *b == 0).unwrap_or(0);
            let why = String::from_utf8_lossy(&log[..end])
                .trim()
                .replace('\n', "; ");
            Err(Error::Other(format!(
                "linux.resources.devices: loading the cgroup v2 device program: {e} {why}"
            )))
        }
    }
}

/// Programs already attached to the cgroup (to replace them: programs attached with
/// BPF_F_ALLOW_MULTI all have to allow an access).
fn attached(cg: &OwnedFd) -> Vec<u32> {
    let mut ids = [0u32; 64];
    let mut a = Attr::new()
        .u32(0, cg.as_raw_fd() as u32)
        .u32(4, BPF_CGROUP_DEVICE)
        .u64(16, ids.as_mut_ptr() as u64)
        .u32(24, ids.len() as u32);
    if a.call(BPF_PROG_QUERY).is_err() {
        return vec![];
    }
    let n = u32::from_ne_bytes(a.0[24..28].try_into().unwrap()) as usize;
    ids[..n.min(ids.len())].to_vec()
}

/// Replaces the device program of the cgroup directory `dir` with one for `rules` (in order).
pub fn apply(dir: &Path, rules: &[Rule]) -> Result<()> {
    let (default_allow, ex) = emulate(rules);
    let prog = load(&compile(default_allow, &ex))?;
    let cg = std::fs::File::open(dir).map_err(|e| Error::io(dir, e))?;
    let cg: OwnedFd = cg.into();
    let old = attached(&cg);
    let mut a = Attr::new()
        .u32(0, cg.as_raw_fd() as u32)
        .u32(4, prog.as_raw_fd() as u32)
        .u32(8, BPF_CGROUP_DEVICE)
        .u32(12, BPF_F_ALLOW_MULTI);
    a.call(BPF_PROG_ATTACH).map_err(|e| {
        Error::Other(format!(
            "linux.resources.devices: attach device program to {}: {e}",
            dir.display()
        ))
    })?;
    for id in old {
        let Ok(fd) = Attr::new().u32(0, id).call(BPF_PROG_GET_FD_BY_ID) else {
            continue;
        };
        // SAFETY: a new descriptor from the kernel, owned here.
        let fd = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        let _ = Attr::new()
            .u32(0, cg.as_raw_fd() as u32)
            .u32(4, fd.as_raw_fd() as u32)
            .u32(8, BPF_CGROUP_DEVICE)
            .call(BPF_PROG_DETACH);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(allow: bool, s: &str) -> Rule {
        parse(allow, s).unwrap()
    }

    #[test]
    fn emulates_v1_semantics() {
        let rules = [
            r(false, "a"),
            r(true, "c 1:3 rwm"),
            r(true, "c 1:5 rw"),
            r(false, "c 1:5 w"),
        ];
        let (def, ex) = emulate(&rules);
        assert!(!def);
        assert_eq!(ex.len(), 2);
        assert_eq!(ex[1].access, ACC_READ);
        // A later wildcard allow resets everything.
        let (def, ex) = emulate(&[rules.to_vec(), vec![r(true, "a")]].concat());
        assert!(def && ex.is_empty());
    }

    /// Attaches a program to a fresh directory of the host's cgroup2 tree (a hybrid host has
    /// one too: the device hook follows a task's v2 cgroup) and checks a shell in it.
    #[test]
    fn program_allows_and_denies_in_a_real_cgroup() {
        let Some(base) = ["/sys/fs/cgroup/unified", "/sys/fs/cgroup"]
            .iter()
            .map(Path::new)
            .find(|p| p.join("cgroup.procs").exists() && p.join("cgroup.subtree_control").exists())
        else {
            eprintln!("no cgroup2 tree: skipped");
            return;
        };
        let dir = base.join(format!("berth-devbpf-test-{}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        let rules = [r(false, "a"), r(true, "c 1:3 rwm"), r(true, "c 1:5 r")];
        apply(&dir, &rules).unwrap();
        let script = format!(
            "echo $$ > {}/cgroup.procs; echo x > /dev/null && echo null-ok; head -c1 /dev/zero >/dev/null && echo zero-read-ok; echo x > /dev/zero || echo zero-write-denied; head -c1 /dev/full >/dev/null || echo full-denied",
            dir.display()
        );
        let o = std::process::Command::new("sh")
            .args(["-c", &script])
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout);
        let _ = std::fs::remove_dir(&dir);
        assert_eq!(
            out,
            "null-ok\nzero-read-ok\nzero-write-denied\nfull-denied\n"
        );
    }
}
