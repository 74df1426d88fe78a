//! Progress on stderr while a benchmark runs: on a terminal one line redrawn every
//! [`TICK`] and erased at the end; otherwise (a log, a pipe) a plain line every
//! [`PLAIN_TICK`], so a run shorter than that prints nothing.
//!
//! The client threads count answered invocations in [`COMPLETED`] (one relaxed load per
//! invocation when no ticker runs); a ticker thread writes the lines.
//!
//! Does not: draw bars or colours, or know about throttles and errors (the table does).

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How often the line is redrawn on a terminal.
pub const TICK: Duration = Duration::from_millis(200);
/// How often a plain line is written when stderr is not a terminal.
pub const PLAIN_TICK: Duration = Duration::from_secs(10);

/// Invocations answered since the progress line was started.
pub static COMPLETED: AtomicU64 = AtomicU64::new(0);
/// Whether anyone reads [`COMPLETED`].
static ON: AtomicBool = AtomicBool::new(false);

/// Counts one answered invocation (cheap when no progress line is shown).
#[inline]
pub fn tick() {
    if ON.load(Ordering::Relaxed) {
        COMPLETED.fetch_add(1, Ordering::Relaxed);
    }
}

/// The line for `done` of `total` (if known) after `elapsed`, within `duration` (if any).
pub fn line(
    mode: &str,
    done: u64,
    total: Option<u64>,
    duration: Option<f64>,
    elapsed: f64,
) -> String {
    let mut s = format!("hearth bench {mode}: {done}");
    if let Some(t) = total {
        s.push_str(&format!("/{t}"));
    }
    s.push_str(&format!(" invocations, {elapsed:.1} s"));
    if let Some(d) = duration {
        s.push_str(&format!(" of {d:.0} s"));
    }
    s
}

/// The running ticker; dropping it erases the line.
#[derive(Debug)]
pub struct Progress {
    stop: Option<Arc<AtomicBool>>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// Whether the line is redrawn in place (and erased at the end).
    terminal: bool,
}

impl Progress {
    /// Starts the ticker (a redrawn line on a terminal, plain lines otherwise).
    pub fn start(mode: &'static str, total: Option<u64>, duration: Option<f64>) -> Progress {
        let terminal = std::io::stderr().is_terminal();
        COMPLETED.store(0, Ordering::Relaxed);
        ON.store(true, Ordering::Relaxed);
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let started = Instant::now();
        let thread = std::thread::Builder::new()
            .name("bench-progress".into())
            .spawn(move || {
                let mut next_plain = PLAIN_TICK;
                while !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(TICK);
                    if flag.load(Ordering::Relaxed) {
                        break;
                    }
                    if !terminal && started.elapsed() < next_plain {
                        continue;
                    }
                    next_plain += PLAIN_TICK;
                    let l = line(
                        mode,
                        COMPLETED.load(Ordering::Relaxed),
                        total,
                        duration,
                        started.elapsed().as_secs_f64(),
                    );
                    let mut err = std::io::stderr().lock();
                    let _ = if terminal {
                        write!(err, "\r\x1b[K{l}")
                    } else {
                        writeln!(err, "{l}")
                    };
                    let _ = err.flush();
                }
            })
            .ok();
        Progress {
            stop: Some(stop),
            thread,
            terminal,
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            stop.store(true, Ordering::Relaxed);
            ON.store(false, Ordering::Relaxed);
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
            if self.terminal {
                let mut err = std::io::stderr().lock();
                let _ = write!(err, "\r\x1b[K");
                let _ = err.flush();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_read_plainly() {
        assert_eq!(
            line("cold", 3, Some(10), None, 1.25),
            "hearth bench cold: 3/10 invocations, 1.2 s"
        );
        assert_eq!(
            line("warm", 500, None, Some(10.0), 2.0),
            "hearth bench warm: 500 invocations, 2.0 s of 10 s"
        );
    }
}
