//! Build progress on stderr, as BuildKit shows it.
//!
//! plain: one line per event: `#3 [2/5] RUN …`, `#3 0.412 output`, `#3 DONE 1.2s`, `#3 CACHED`.
//! tty:   finished steps stay as `=> [2/5] RUN …  1.2s` lines; below them a live area (the
//!        running steps with their last output lines) is redrawn in place with ANSI codes
//!        (cursor up, clear to end of screen); at the end `[+] Building 3.4s (5/5) FINISHED`.

use std::collections::{BTreeMap, VecDeque};
use std::io::Write;
use std::sync::Mutex;
use std::time::Instant;

/// Output lines of a running step shown in the live area.
const TAIL: usize = 6;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Plain,
    Tty,
    Quiet,
}

impl Mode {
    /// `auto` is tty when stderr is a terminal.
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "plain" => Some(Mode::Plain),
            "tty" => Some(Mode::Tty),
            "quiet" => Some(Mode::Quiet),
            // SAFETY: isatty only looks at the descriptor.
            "auto" if unsafe { libc::isatty(2) } == 1 => Some(Mode::Tty),
            "auto" => Some(Mode::Plain),
            _ => None,
        }
    }
}

/// Shared by concurrently built stages: step numbers are handed out atomically.
#[derive(Debug)]
pub struct Progress {
    next: std::sync::atomic::AtomicUsize,
    pub quiet: bool,
    live: Option<Mutex<Live>>,
}

#[derive(Debug)]
struct Live {
    begun: Instant,
    running: BTreeMap<usize, Running>,
    /// Lines of the live area now on screen (to move up over).
    drawn: usize,
    finished: usize,
    width: usize,
}

/// A step in the live area.
#[derive(Debug)]
struct Running {
    label: String,
    start: Instant,
    /// Its last output lines.
    tail: VecDeque<String>,
    /// `=> =>` lines printed under it when it is done (exporting's "naming to …").
    notes: Vec<String>,
}

#[derive(Debug)]
pub struct Step {
    pub id: usize,
    start: Option<Instant>,
}

impl Progress {
    pub fn new(quiet: bool) -> Self {
        Self::with_mode(if quiet { Mode::Quiet } else { Mode::Plain })
    }

    pub fn with_mode(mode: Mode) -> Self {
        let live = (mode == Mode::Tty).then(|| {
            Mutex::new(Live {
                begun: Instant::now(),
                running: BTreeMap::new(),
                drawn: 0,
                finished: 0,
                width: term_width(),
            })
        });
        Progress {
            next: Default::default(),
            quiet: mode == Mode::Quiet,
            live,
        }
    }

    fn out(&self, s: &str) {
        if !self.quiet {
            let mut e = std::io::stderr().lock();
            let _ = writeln!(e, "{s}");
        }
    }

    /// tty: change the state, print `lines` above the live area and redraw it.
    fn tty(&self, lines: &[String], f: impl FnOnce(&mut Live)) -> bool {
        let Some(live) = &self.live else {
            return false;
        };
        let mut l = live.lock().expect("progress lock");
        f(&mut l);
        l.redraw(lines);
        true
    }

    pub fn start(&self, label: &str) -> Step {
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
        let now = Instant::now();
        if !self.tty(&[], |l| {
            let r = Running {
                label: label.to_string(),
                start: now,
                tail: VecDeque::new(),
                notes: vec![],
            };
            l.running.insert(id, r);
        }) {
            self.out(&format!("#{id} {label}"));
        }
        Step {
            id,
            start: Some(now),
        }
    }

    pub fn line(&self, step: &Step, text: &str) {
        let shown = clean(text);
        if !self.tty(&[], |l| {
            if let Some(r) = l.running.get_mut(&step.id) {
                r.tail.push_back(shown);
                if r.tail.len() > TAIL {
                    r.tail.pop_front();
                }
            }
        }) {
            let t = step.start.map(|s| s.elapsed().as_secs_f64()).unwrap_or(0.0);
            self.out(&format!("#{} {t:.3} {text}", step.id));
        }
    }

    pub fn note(&self, step: &Step, text: &str) {
        if !self.tty(&[], |l| {
            if let Some(r) = l.running.get_mut(&step.id) {
                r.notes.push(format!("=> => {text}"));
            }
        }) {
            self.out(&format!("#{} {text}", step.id));
        }
    }

    /// Take a step out of the live area; its one permanent line (plus `extra`).
    fn finish_step(&self, step: &Step, line: impl Fn(&str, f64) -> String, extra: &[String]) {
        if let Some(live) = &self.live {
            let mut l = live.lock().expect("progress lock");
            let mut lines = vec![];
            if let Some(r) = l.running.remove(&step.id) {
                lines.push(line(&r.label, r.start.elapsed().as_secs_f64()));
                lines.extend(r.notes);
                if !extra.is_empty() {
                    lines.extend(r.tail.iter().map(|t| format!("   > {t}")));
                    lines.extend(extra.iter().cloned());
                }
            }
            l.finished += 1;
            l.redraw(&lines);
        }
    }

    pub fn done(&self, step: &Step) {
        if self.live.is_some() {
            return self.finish_step(step, |label, t| format!("=> {label}  {t:.1}s"), &[]);
        }
        let t = step.start.map(|s| s.elapsed().as_secs_f64()).unwrap_or(0.0);
        self.out(&format!("#{} DONE {t:.1}s", step.id));
    }

    pub fn cached(&self, step: &Step) {
        if self.live.is_some() {
            return self.finish_step(step, |label, _| format!("=> CACHED {label}"), &[]);
        }
        self.out(&format!("#{} CACHED", step.id));
    }

    pub fn error(&self, step: &Step, msg: &str) {
        if self.live.is_some() {
            let extra = [format!("ERROR: {msg}")];
            return self.finish_step(
                step,
                |label, t| format!("=> ERROR {label}  {t:.1}s"),
                &extra,
            );
        }
        self.out(&format!("#{} ERROR: {msg}", step.id));
    }

    /// The end of a successful build (tty: the summary line; plain: nothing).
    pub fn finish(&self) {
        let Some(live) = &self.live else { return };
        let mut l = live.lock().expect("progress lock");
        let n = l.finished;
        let t = l.begun.elapsed().as_secs_f64();
        l.redraw(&[format!("[+] Building {t:.1}s ({n}/{n}) FINISHED")]);
    }
}

impl Live {
    fn redraw(&mut self, permanent: &[String]) {
        if self.drawn == 0 && permanent.is_empty() && self.running.is_empty() {
            return;
        }
        let w = self.width.saturating_sub(1).max(20);
        let cut = |s: &str| s.chars().take(w).collect::<String>();
        let mut out = String::new();
        if self.drawn > 0 {
            out.push_str(&format!("\x1b[{}F", self.drawn));
        }
        out.push_str("\x1b[J");
        for p in permanent {
            out.push_str(&cut(p));
            out.push('\n');
        }
        self.drawn = 0;
        for r in self.running.values() {
            let t = r.start.elapsed().as_secs_f64();
            out.push_str(&cut(&format!("=> {}  {t:.1}s", r.label)));
            out.push('\n');
            for line in &r.tail {
                out.push_str(&format!("\x1b[2m{}\x1b[0m\n", cut(&format!("   > {line}"))));
            }
            self.drawn += 1 + r.tail.len();
        }
        let mut e = std::io::stderr().lock();
        let _ = e.write_all(out.as_bytes());
        let _ = e.flush();
    }
}

/// What a terminal line can show of a line of output: the text after its last carriage
/// return, without escape sequences or other control characters.
fn clean(text: &str) -> String {
    let text = text.rsplit('\r').find(|s| !s.is_empty()).unwrap_or("");
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            // CSI: ESC [ params final-byte
            if chars.next() == Some('[') {
                for c in chars.by_ref() {
                    if ('\x40'..='\x7e').contains(&c) {
                        break;
                    }
                }
            }
        } else if c == '\t' {
            out.push(' ');
        } else if !c.is_control() {
            out.push(c);
        }
    }
    out
}

fn term_width() -> usize {
    let mut ws: libc::winsize = unsafe { std::mem::zeroed() };
    // SAFETY: TIOCGWINSZ fills a winsize; failure leaves it zeroed.
    let ok = unsafe { libc::ioctl(2, libc::TIOCGWINSZ, &mut ws) } == 0;
    if ok && ws.ws_col > 0 {
        ws.ws_col as usize
    } else {
        80
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn clean_keeps_what_a_line_shows() {
        assert_eq!(super::clean("a\tb"), "a b");
        assert_eq!(super::clean("10%\r50%\r100%"), "100%");
        assert_eq!(super::clean("\x1b[31mred\x1b[0m done\r"), "red done");
    }
}
