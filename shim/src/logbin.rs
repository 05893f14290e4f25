//! containerd's `binary://` log URIs (`ctr run --log-uri`, nerdctl's logging): a logging binary
//! gets the process's stdout on fd 3 and stderr on fd 4, and closes (or writes to) fd 5 once it
//! is ready; its arguments are the URI's query pairs and its environment is just CONTAINER_ID
//! and CONTAINER_NAMESPACE, exactly as containerd's runc shim starts it. It ends on its own
//! when the process's output pipes close.

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};

use crate::error::{Error, Result};

/// How long the shim waits for a logging binary to say it is ready.
const READY_TIMEOUT_MS: i32 = 10_000;

/// The binary and its arguments: `binary:///path?k=v&flag` runs `/path k v flag ""`.
pub fn parse(uri: &str) -> Result<(PathBuf, Vec<String>)> {
    let bad = |why: &str| Error::InvalidArgument(format!("log URI {uri}: {why}"));
    let rest = uri
        .strip_prefix("binary://")
        .ok_or_else(|| bad("not binary://"))?;
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if !path.starts_with('/') {
        return Err(bad("the binary must be an absolute path (binary:///path)"));
    }
    let mut args = vec![];
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        args.push(unescape(k, true).ok_or_else(|| bad("bad %-escape"))?);
        args.push(unescape(v, true).ok_or_else(|| bad("bad %-escape"))?);
    }
    let path = unescape(path, false).ok_or_else(|| bad("bad %-escape"))?;
    Ok((PathBuf::from(path), args))
}

/// URL unescaping of a path or query component ('+' is a space in a query, as Go reads it).
fn unescape(s: &str, query: bool) -> Option<String> {
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' if query => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(nix::fcntl::OFlag::O_CLOEXEC)
        .map_err(|e| Error::io("creating a pipe for the logging binary")(e.into()))
}

/// A close-on-exec copy numbered 10 or above, so the child's dup2 onto 3–5 clobbers nothing.
fn high(fd: &OwnedFd) -> Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC on an open fd; the new fd is owned right away.
    let n = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 10) };
    if n < 0 {
        return Err(Error::io("duplicating a pipe")(
            std::io::Error::last_os_error(),
        ));
    }
    // SAFETY: n was just returned by fcntl.
    Ok(unsafe { OwnedFd::from_raw_fd(n) })
}

/// Starts the logging binary of `uri` for process `id`; returns the write ends the process's
/// stdout and stderr go to, once the binary is ready.
pub fn start(uri: &str, id: &str, namespace: &str) -> Result<(OwnedFd, OwnedFd)> {
    let (bin, args) = parse(uri)?;
    let what = format!("logging binary {}", bin.display());
    // Checked here: the shim's reaper may reap a child whose exec failed before std's spawn
    // could wait for it.
    nix::unistd::access(&bin, nix::unistd::AccessFlags::X_OK)
        .map_err(|e| Error::io(what.clone())(e.into()))?;
    let (out_r, out_w) = pipe()?;
    let (err_r, err_w) = pipe()?;
    let (ready_r, ready_w) = pipe()?;
    let fds: [RawFd; 3] = [high(&out_r)?, high(&err_r)?, high(&ready_w)?].map(|f| {
        let n = f.as_raw_fd();
        std::mem::forget(f); // closed below, after the spawn
        n
    });
    let mut cmd = Command::new(&bin);
    cmd.args(&args)
        .env_clear()
        .env("CONTAINER_ID", id)
        .env("CONTAINER_NAMESPACE", namespace)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: the closure only calls dup2, which is async-signal-safe.
    unsafe {
        cmd.pre_exec(move || {
            for (to, from) in (3..).zip(fds) {
                if libc::dup2(from, to) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
            }
            Ok(())
        })
    };
    let spawned = cmd.spawn();
    for fd in fds {
        // SAFETY: the three copies made above, no longer needed in the shim.
        drop(unsafe { OwnedFd::from_raw_fd(fd) });
    }
    drop((out_r, err_r, ready_w));
    spawned.map_err(Error::io(what.clone()))?;
    wait_ready(&ready_r, &what)?;
    Ok((out_w, err_w))
}

/// A byte or EOF on the ready pipe means ready (containerd reads one byte and ignores EOF).
fn wait_ready(ready: &OwnedFd, what: &str) -> Result<()> {
    let mut pfd = libc::pollfd {
        fd: ready.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    loop {
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, READY_TIMEOUT_MS) };
        if n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::Interrupted {
            continue;
        }
        if n == 0 {
            return Err(Error::io(what.to_string())(std::io::Error::other(format!(
                "not ready after {} s (it must close or write to fd 5)",
                READY_TIMEOUT_MS / 1000
            ))));
        }
        return Ok(());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_pairs_become_arguments() {
        let (bin, args) =
            parse("binary:///usr/local/bin/log+%20ger?dir=/var/log/x&flag&a=b+c").unwrap();
        assert_eq!(bin, PathBuf::from("/usr/local/bin/log+ ger"));
        assert_eq!(args, ["dir", "/var/log/x", "flag", "", "a", "b c"]);
        assert!(parse("binary://relative/bin").is_err());
        assert!(parse("binary:///bin?x=%zz").is_err());
    }
}
