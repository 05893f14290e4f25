//! Filesystem facts: mountinfo, /dev contents, path access checks, file reads.

use serde_json::{json, Value};
use std::ffi::CString;
use std::os::unix::fs::{FileTypeExt, MetadataExt};

fn errno_of(e: &std::io::Error) -> i32 {
    e.raw_os_error().unwrap_or(-1)
}

/// Undo mountinfo's octal escapes (`\040` for space and friends).
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 4], 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One object per /proc/self/mountinfo line.
pub fn mounts() -> Value {
    let text = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let list: Vec<Value> = text.lines().filter_map(parse_mountinfo_line).collect();
    json!(list)
}

fn parse_mountinfo_line(line: &str) -> Option<Value> {
    let (left, right) = line.split_once(" - ")?;
    let l: Vec<&str> = left.split(' ').collect();
    let r: Vec<&str> = right.split(' ').collect();
    if l.len() < 6 || r.len() < 3 {
        return None;
    }
    let opts: Vec<&str> = l[5].split(',').collect();
    let optional: Vec<&str> = l[6..].to_vec();
    let superopts: Vec<&str> = r[2].split(',').collect();
    Some(json!({
        "id": l[0].parse::<u64>().unwrap_or(0),
        "parent": l[1].parse::<u64>().unwrap_or(0),
        "dev": l[2],
        "root": unescape(l[3]),
        "target": unescape(l[4]),
        "options": opts,
        "propagation": optional,
        "fstype": r[0],
        "source": unescape(r[1]),
        "superopts": superopts,
    }))
}

fn kind_of(ft: std::fs::FileType) -> &'static str {
    if ft.is_symlink() {
        "l"
    } else if ft.is_dir() {
        "d"
    } else if ft.is_char_device() {
        "c"
    } else if ft.is_block_device() {
        "b"
    } else if ft.is_fifo() {
        "p"
    } else if ft.is_socket() {
        "s"
    } else {
        "f"
    }
}

/// Every node under /dev (two levels deep), with type, numbers, mode and owner.
pub fn devices() -> Value {
    let mut list = Vec::new();
    walk_dev("/dev", 0, &mut list);
    json!(list)
}

fn walk_dev(dir: &str, depth: u32, list: &mut Vec<Value>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in rd.flatten() {
        let path = entry.path().display().to_string();
        let Ok(md) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        let kind = kind_of(md.file_type());
        let rdev = md.rdev();
        let link = std::fs::read_link(&path)
            .map(|p| p.display().to_string())
            .ok();
        list.push(json!({
            "path": path, "type": kind,
            "major": libc::major(rdev), "minor": libc::minor(rdev),
            "mode": md.mode() & 0o7777, "uid": md.uid(), "gid": md.gid(), "link": link,
        }));
        if kind == "d" && depth < 1 {
            walk_dev(&path, depth + 1, list);
        }
    }
}

/// For each path: does it exist, its kind, can we read it (and how much), can we open it
/// for writing, is its filesystem read-only.
pub fn paths(paths: &[String]) -> Value {
    let mut map = serde_json::Map::new();
    for p in paths {
        map.insert(p.clone(), probe_path(p));
    }
    Value::Object(map)
}

fn probe_path(p: &str) -> Value {
    let md = match std::fs::symlink_metadata(p) {
        Ok(md) => md,
        Err(e) => return json!({ "exists": false, "errno": errno_of(&e) }),
    };
    let kind = kind_of(md.file_type());
    let (read_ok, read_len, entries) = if md.is_dir() {
        match std::fs::read_dir(p) {
            Ok(rd) => (true, 0, rd.count() as i64),
            Err(_) => (false, 0, -1),
        }
    } else {
        read_some(p)
    };
    let write_errno = match std::fs::OpenOptions::new().write(true).open(p) {
        Ok(_) => 0,
        Err(e) => errno_of(&e),
    };
    json!({
        "exists": true, "type": kind, "read_ok": read_ok, "read_len": read_len,
        "entries": entries, "write_errno": write_errno, "fs_readonly": fs_readonly(p),
        "mode": md.mode() & 0o7777, "uid": md.uid(), "gid": md.gid(),
        "major": libc::major(md.rdev()), "minor": libc::minor(md.rdev()),
    })
}

fn read_some(p: &str) -> (bool, i64, i64) {
    use std::io::Read;
    let Ok(mut f) = std::fs::File::open(p) else {
        return (false, 0, -1);
    };
    let mut buf = vec![0u8; 4096];
    match f.read(&mut buf) {
        Ok(n) => (true, n as i64, -1),
        Err(_) => (true, -1, -1),
    }
}

fn fs_readonly(p: &str) -> bool {
    let Ok(c) = CString::new(p) else { return false };
    // SAFETY: statvfs writes into the struct we own; c is a valid C string.
    unsafe {
        let mut st: libc::statvfs = std::mem::zeroed();
        libc::statvfs(c.as_ptr(), &mut st) == 0 && st.f_flag & libc::ST_RDONLY != 0
    }
}

pub fn reads(files: &[String]) -> Value {
    let mut map = serde_json::Map::new();
    for f in files {
        let v = match std::fs::read(f) {
            Ok(b) => json!(String::from_utf8_lossy(&b[..b.len().min(65536)])),
            Err(e) => json!({ "error": errno_of(&e) }),
        };
        map.insert(f.clone(), v);
    }
    Value::Object(map)
}

/// Can we create a file at the root of the container's filesystem?
pub fn root_writable() -> Value {
    let p = "/.berth-probe-write-test";
    match std::fs::File::create(p) {
        Ok(_) => {
            let _ = std::fs::remove_file(p);
            json!(0)
        }
        Err(e) => json!(errno_of(&e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_mountinfo_with_optional_fields_and_escapes() {
        let line = "36 35 98:0 /mnt1 /mnt\\040x rw,noatime master:1 shared:2 - ext3 /dev/root rw,errors=continue";
        let m = parse_mountinfo_line(line).expect("parsed");
        assert_eq!(m["target"], "/mnt x");
        assert_eq!(m["propagation"], json!(["master:1", "shared:2"]));
        assert_eq!(m["fstype"], "ext3");
        assert_eq!(m["options"], json!(["rw", "noatime"]));
        assert_eq!(m["superopts"], json!(["rw", "errors=continue"]));
    }
}
