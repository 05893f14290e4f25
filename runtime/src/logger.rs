//! `--log FILE --log-format text|json`: containerd's runc shim reads the last JSON line
//! `{"level":"error","msg":…,"time":…}` from this file and shows it to the user.

use std::io::Write;
use std::sync::OnceLock;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
}

struct Logger {
    path: Option<std::path::PathBuf>,
    format: Format,
    debug: bool,
}

static LOGGER: OnceLock<Logger> = OnceLock::new();

/// `path` is created at once (0644, as runc opens it), so a caller that reads it finds it
/// even when nothing was logged.
pub fn init(path: Option<std::path::PathBuf>, format: Format, debug: bool) {
    if let Some(p) = &path {
        let _ = open(p);
    }
    let _ = LOGGER.set(Logger {
        path,
        format,
        debug,
    });
}

/// True when --log names a file (the messages have a home other than stderr).
pub fn to_file() -> bool {
    LOGGER.get().is_some_and(|l| l.path.is_some())
}

pub fn debug_enabled() -> bool {
    LOGGER.get().is_some_and(|l| l.debug)
}

pub fn error(msg: &str) {
    write("error", msg);
}

pub fn warn(msg: &str) {
    write("warning", msg);
    if !to_file() {
        stderr_line(&format!("berth: warning: {msg}"));
    }
}

/// A warning both in --log and on stderr, for what a user must hear about even when a
/// manager keeps the log (the container does not run exactly as configured).
pub fn warn_loud(msg: &str) {
    write("warning", msg);
    stderr_line(&format!("berth: warning: {msg}"));
}

/// A warning for people at a terminal: always in --log, on stderr only when it is a tty (so
/// it does not fill the output of programs that run berth, such as a builder's RUN steps).
pub fn notice(msg: &str) {
    write("warning", msg);
    if !to_file() && nix::unistd::isatty(std::io::stderr()).unwrap_or(false) {
        stderr_line(&format!("berth: warning: {msg}"));
    }
}

pub fn debug(msg: &str) {
    if debug_enabled() {
        write("debug", msg);
    }
}

fn write(level: &str, msg: &str) {
    let Some(l) = LOGGER.get() else { return };
    let time = crate::utils::rfc3339(std::time::SystemTime::now());
    let line = match l.format {
        Format::Json => {
            serde_json::json!({"level": level, "msg": msg, "time": time}).to_string() + "\n"
        }
        Format::Text => format!("time=\"{time}\" level={level} msg={msg:?}\n"),
    };
    match &l.path {
        Some(p) => {
            if let Ok(mut f) = open(p) {
                let _ = f.write_all(line.as_bytes());
            }
        }
        None if level == "debug" => {
            let _ = std::io::stderr().write_all(line.as_bytes());
        }
        None => {}
    }
}

fn open(p: &std::path::Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o644)
        .open(p)
}

/// One line on stderr that never panics: eprintln! panics when stderr is a closed pipe
/// (EPIPE), and in a container's init, forked with panic=abort, that aborts the init.
pub fn stderr_line(line: &str) {
    let _ = writeln!(std::io::stderr(), "{line}");
}
