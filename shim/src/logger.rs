//! The shim's log, written to the `log` FIFO containerd reads in the bundle.
//!
//! Opened read-write and non-blocking: containerd stops reading when the container the shim
//! was started for is deleted (a pod's shim lives on), and a write-only FIFO would then raise
//! SIGPIPE on every line — which containerd-shim's signal thread logs, raising the next
//! SIGPIPE, forever. Here a full or unread FIFO just drops lines.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use log::{LevelFilter, Log, Metadata, Record};

struct FifoLogger {
    file: Mutex<File>,
}

impl Log for FifoLogger {
    fn enabled(&self, m: &Metadata) -> bool {
        m.level() <= log::max_level()
    }

    fn log(&self, r: &Record) {
        if !self.enabled(r.metadata()) {
            return;
        }
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let msg = r.args().to_string().replace('"', "\\\"");
        let line = format!(
            "time=\"{}.{:09}\" level={} msg=\"{msg}\"\n",
            t.as_secs(),
            t.subsec_nanos(),
            r.level().as_str().to_lowercase()
        );
        let _ = self.file.lock().unwrap().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

/// Logs to `./log` (the bundle's FIFO); without one, logging stays off.
pub fn init(debug: bool) {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open("log");
    if let Ok(file) = file {
        let logger = FifoLogger {
            file: Mutex::new(file),
        };
        if log::set_boxed_logger(Box::new(logger)).is_ok() {
            log::set_max_level(if debug {
                LevelFilter::Debug
            } else {
                LevelFilter::Info
            });
        }
    }
}
