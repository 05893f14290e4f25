//! BuildKit-style plain progress on stderr: `#3 [2/5] RUN …`, `#3 DONE 1.2s`, `#3 CACHED`.

use std::io::Write;
use std::time::Instant;

/// Shared by concurrently built stages: step numbers are handed out atomically.
#[derive(Debug, Default)]
pub struct Progress {
    next: std::sync::atomic::AtomicUsize,
    pub quiet: bool,
}

impl Progress {
    pub fn new(quiet: bool) -> Self {
        Progress {
            next: Default::default(),
            quiet,
        }
    }
}

#[derive(Debug)]
pub struct Step {
    pub id: usize,
    start: Option<Instant>,
}

impl Progress {
    fn out(&self, s: &str) {
        if !self.quiet {
            let mut e = std::io::stderr().lock();
            let _ = writeln!(e, "{s}");
        }
    }

    pub fn start(&self, label: &str) -> Step {
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        self.out(&format!("#{id} {label}"));
        Step {
            id,
            start: Some(Instant::now()),
        }
    }

    pub fn line(&self, step: &Step, text: &str) {
        let t = step.start.map(|s| s.elapsed().as_secs_f64()).unwrap_or(0.0);
        self.out(&format!("#{} {t:.3} {text}", step.id));
    }

    pub fn note(&self, step: &Step, text: &str) {
        self.out(&format!("#{} {text}", step.id));
    }

    pub fn done(&self, step: &Step) {
        let t = step.start.map(|s| s.elapsed().as_secs_f64()).unwrap_or(0.0);
        self.out(&format!("#{} DONE {t:.1}s", step.id));
    }

    pub fn cached(&self, step: &Step) {
        self.out(&format!("#{} CACHED", step.id));
    }

    pub fn error(&self, step: &Step, msg: &str) {
        self.out(&format!("#{} ERROR: {msg}", step.id));
    }
}
