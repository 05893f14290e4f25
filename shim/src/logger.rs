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
use std::time::{Duration, SystemTime, UNIX_EPOCH};

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
        let level = r.level().as_str().to_lowercase();
        let line = format!("time=\"{}\" level={level} msg=\"{msg}\"\n", rfc3339(t));
        let _ = self.file.lock().unwrap().write_all(line.as_bytes());
    }

    fn flush(&self) {}
}

/// UTC RFC 3339 time like containerd's own log lines (days → civil date: H. Hinnant's algorithm).
fn rfc3339(t: Duration) -> String {
    let (days, rem) = ((t.as_secs() / 86400) as i64, t.as_secs() % 86400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    let (h, mi, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    let ns = t.subsec_nanos();
    format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ns:09}Z")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_utc() {
        assert_eq!(
            rfc3339(Duration::new(0, 5)),
            "1970-01-01T00:00:00.000000005Z"
        );
        assert_eq!(
            rfc3339(Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00.000000000Z"
        );
        assert_eq!(
            rfc3339(Duration::from_secs(1_795_901_081)),
            "2026-11-28T21:24:41.000000000Z"
        );
    }
}
