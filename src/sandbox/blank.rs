//! [`BlankPool`]: blank sandboxes ([`SandboxHost::create_blank`]) kept ready ahead of
//! demand, so that a cold start skips the namespaces, cgroup, `/tmp` and mounts and only
//! pays for [`SandboxHost::assign_blank`] (ARCHITECTURE §4, layer 2).
//!
//! A background thread creates them: one costs a few milliseconds, which the daemon's
//! single event loop must not spend. The loop calls [`BlankPool::take`], which never
//! blocks on a creation (the lock is held only to move a handle); each take wakes the
//! thread, so the pool refills at the rate blanks are consumed, one at a time, never
//! beyond the target. A blank whose init died while waiting is destroyed, never handed
//! out. Repeated creation failures back off (100 ms doubling to 30 s) and are logged once
//! per kind of failure until a creation succeeds again.
//!
//! **Thread lifetime.** The kernel's parent-death signal, which ties a sandbox to the
//! `hearth` that made it, fires when the *thread* that cloned the sandbox's init exits
//! (prctl(2), `PR_SET_PDEATHSIG`). Every sandbox taken from the pool — and the instance
//! built on it — therefore dies when the pool's thread ends: call
//! [`BlankPool::shutdown`] (or drop the pool) only after every sandbox taken from it is
//! destroyed, as the daemon does on its way out.
//!
//! Not here: deciding which function gets a blank (the caller checks
//! [`BlankPool::fits`]), warm instances (the daemon's pool), per-size pools of `/tmp`.

use std::collections::{HashSet, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::assign::{BlankShape, Mismatch};
use super::plan::SandboxSpec;
use super::{reclaim, Failure, Sandbox, SandboxHost};

/// How often the thread looks for blanks that died while waiting, when nothing else
/// wakes it.
const CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// First and longest pause after a failed creation.
const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(30);
/// The thread's stack: a blank's init runs on a copy of it and keeps its 128 KiB exec
/// buffer there (`spawn.rs`), far below this.
const STACK_SIZE: usize = 4 * 1024 * 1024;

/// Blank sandboxes kept ready by a background thread (see the module doc).
#[derive(Debug)]
pub struct BlankPool {
    shared: Arc<Shared>,
    shape: BlankShape,
    template: SandboxSpec,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
}

#[derive(Debug, Default)]
struct State {
    ready: VecDeque<Sandbox>,
    /// Blanks to destroy (died while waiting, or beyond a lowered target).
    discard: Vec<Sandbox>,
    target: usize,
    stop: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic elsewhere while holding the lock leaves consistent data (handles only).
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl BlankPool {
    /// Starts the thread that keeps `target` blanks of `template` ready (see
    /// [`SandboxHost::create_blank`] for what of the template counts). Sandbox names are
    /// `<name_prefix>-<pid>-<starttime>-<n>` ([`reclaim::sandbox_name`]; `name_prefix` is
    /// lower-case ASCII letters, so a start-up sweep recognises leftovers).
    pub fn start(
        host: Arc<SandboxHost>,
        template: SandboxSpec,
        target: usize,
        name_prefix: &str,
    ) -> BlankPool {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                target,
                ..State::default()
            }),
            wake: Condvar::new(),
        });
        let worker = Worker {
            host,
            shared: Arc::clone(&shared),
            template: template.clone(),
            prefix: name_prefix.to_string(),
        };
        let thread = std::thread::Builder::new()
            // A sandbox init cloned from this thread inherits its name (comm): "hearth",
            // as one cloned from the main thread.
            .name("hearth".into())
            .stack_size(STACK_SIZE)
            .spawn(move || worker.run());
        let thread = match thread {
            Ok(t) => Some(t),
            Err(e) => {
                // Without its thread the pool stays empty: every cold start takes the
                // spawn path, which is slower but correct.
                eprintln!("hearth: blank pool: starting its thread failed: {e}");
                None
            }
        };
        BlankPool {
            shared,
            shape: BlankShape::of(&template),
            template,
            thread,
        }
    }

    /// A ready blank, if there is one; never blocks on a creation. Wakes the thread to
    /// make a replacement.
    pub fn take(&self) -> Option<Sandbox> {
        let mut st = self.shared.lock();
        let mut found = None;
        while let Some(mut sb) = st.ready.pop_front() {
            if sb.poll_reports() {
                st.discard.push(sb);
                continue;
            }
            found = Some(sb);
            break;
        }
        drop(st);
        self.shared.wake.notify_one();
        found
    }

    /// Blanks ready now.
    pub fn ready(&self) -> usize {
        self.shared.lock().ready.len()
    }

    /// How many blanks the pool keeps ready.
    pub fn target(&self) -> usize {
        self.shared.lock().target
    }

    /// Changes the target; blanks beyond a lowered one are destroyed by the thread.
    pub fn set_target(&self, target: usize) {
        let mut st = self.shared.lock();
        st.target = target;
        while st.ready.len() > target {
            if let Some(sb) = st.ready.pop_back() {
                st.discard.push(sb);
            }
        }
        drop(st);
        self.shared.wake.notify_one();
    }

    /// Whether a sandbox of `spec` can start from one of this pool's blanks.
    pub fn fits(&self, spec: &SandboxSpec) -> Result<(), Mismatch> {
        self.shape.check(spec)
    }

    /// The template the blanks are built from.
    pub fn template(&self) -> &SandboxSpec {
        &self.template
    }

    /// Stops the thread, which destroys every blank not taken, and waits for it. See
    /// the module doc: sandboxes taken from the pool die with its thread.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.wake.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for BlankPool {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The pool's thread.
struct Worker {
    host: Arc<SandboxHost>,
    shared: Arc<Shared>,
    template: SandboxSpec,
    prefix: String,
}

/// Failure kinds already logged since the last success, and the back-off.
struct Trouble {
    logged: HashSet<String>,
    pause: Duration,
    retry_at: Option<Instant>,
}

impl Trouble {
    /// Logs `message` unless a failure of this kind was logged since the last success;
    /// returns whether it did.
    fn report(&mut self, kind: String, message: &str) -> bool {
        let first = self.logged.insert(kind);
        if first {
            eprintln!("hearth: blank pool: {message} (retrying with back-off; logged once)");
        }
        first
    }

    fn new() -> Trouble {
        Trouble {
            logged: HashSet::new(),
            pause: BACKOFF_MIN,
            retry_at: None,
        }
    }

    fn failed(&mut self) {
        self.retry_at = Some(Instant::now() + self.pause);
        self.pause = (self.pause * 2).min(BACKOFF_MAX);
    }

    fn succeeded(&mut self) {
        self.logged.clear();
        self.pause = BACKOFF_MIN;
        self.retry_at = None;
    }

    /// Time left before the next attempt (zero: now).
    fn wait_left(&self) -> Duration {
        self.retry_at
            .map(|t| t.saturating_duration_since(Instant::now()))
            .unwrap_or_default()
    }
}

impl Worker {
    fn run(self) {
        let mut seq = 0u64;
        let mut trouble = Trouble::new();
        let mut st = self.shared.lock();
        loop {
            if st.stop {
                break;
            }
            let mut discard = std::mem::take(&mut st.discard);
            let mut i = 0;
            while i < st.ready.len() {
                if st.ready[i].poll_reports() {
                    discard.extend(st.ready.remove(i));
                } else {
                    i += 1;
                }
            }
            let need = st.ready.len() < st.target;
            let due = need && trouble.wait_left().is_zero();
            if discard.is_empty() && !due {
                let pause = if need {
                    trouble.wait_left()
                } else {
                    CHECK_INTERVAL
                };
                st = self
                    .shared
                    .wake
                    .wait_timeout(st, pause)
                    .map(|(g, _)| g)
                    .unwrap_or_else(|e| e.into_inner().0);
                continue;
            }
            drop(st);
            for sb in discard {
                self.discard(sb, &mut trouble);
            }
            if due {
                seq += 1;
                let name = reclaim::sandbox_name(&self.prefix, Some(seq));
                match self.host.create_blank(&name, &self.template) {
                    Ok(sb) => {
                        trouble.succeeded();
                        let mut st = self.shared.lock();
                        if !st.stop && st.ready.len() < st.target {
                            st.ready.push_back(sb);
                        } else {
                            st.discard.push(sb);
                        }
                    }
                    Err(e) => {
                        trouble.report(e.kind().to_string(), &format!("creating a blank: {e}"));
                        trouble.failed();
                    }
                }
            }
            st = self.shared.lock();
        }
        let mut left: Vec<Sandbox> = st.ready.drain(..).collect();
        left.append(&mut st.discard);
        drop(st);
        for sb in left {
            let _ = self.host.destroy(sb);
        }
    }

    /// Destroys a blank; one that died while waiting counts as a failure.
    fn discard(&self, sb: Sandbox, trouble: &mut Trouble) {
        if sb.reaped {
            let why = match &sb.failure {
                Some(Failure::Setup { step, errno }) => format!("{step}: {errno}"),
                _ => "killed or exited".to_string(),
            };
            trouble.report(
                format!("died: {why}"),
                &format!("blank {} died while waiting: {why}", sb.name),
            );
            // Blanks that keep dying must not be replaced in a tight loop either.
            trouble.failed();
        }
        if let Err(e) = self.host.destroy(sb) {
            trouble.report(e.kind().to_string(), &format!("removing a blank: {e}"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::{HostPaths, SandboxError};
    use std::ffi::OsString;
    use std::io::Read;
    use std::os::fd::AsRawFd;

    /// Root-only: a host on the real paths (as `hearth run` uses them).
    fn host() -> Option<Arc<SandboxHost>> {
        if !nix::unistd::geteuid().is_root() {
            println!("skipped: needs root (namespaces, cgroups, mounts)");
            return None;
        }
        Some(Arc::new(SandboxHost::open(&HostPaths::from_env()).unwrap()))
    }

    fn template() -> SandboxSpec {
        SandboxSpec::new(Vec::new())
    }

    fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
        let end = Instant::now() + Duration::from_secs(20);
        while !done() {
            assert!(Instant::now() < end, "timed out waiting until {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Assigns `sh -c script` to the blank, waits for it and returns its exit status and
    /// output (stdout and stderr).
    fn run(host: &SandboxHost, sb: &mut Sandbox, script: &str, memory_mb: u64) -> (i32, String) {
        let (r, w) = nix::unistd::pipe().unwrap();
        let null = std::fs::File::open("/dev/null").unwrap();
        let mut spec = SandboxSpec::new(vec!["/bin/sh".into(), "-c".into(), script.into()]);
        spec.env
            .push((OsString::from("GREETING"), OsString::from("hi there")));
        spec.memory_mb = memory_mb;
        spec.stdio = Some([null.as_raw_fd(), w.as_raw_fd(), w.as_raw_fd()]);
        host.assign_blank(sb, &spec).unwrap();
        drop(w);
        assert!(!sb.is_blank());
        let end = sb
            .wait(Some(Instant::now() + Duration::from_secs(20)), None)
            .unwrap();
        assert_eq!(end, super::super::WaitEnd::Exited);
        let mut out = String::new();
        std::fs::File::from(r).read_to_string(&mut out).unwrap();
        (sb.status.expect("an exit status"), out)
    }

    fn leftovers(host: &SandboxHost, prefix: &str) -> Vec<String> {
        let mine = format!("{prefix}-{}-", std::process::id());
        let mut names = host.cgroups.list().unwrap_or_default();
        names.extend(host.scratch.list());
        names.retain(|n| n.starts_with(&mine));
        names
    }

    #[test]
    fn failures_back_off_and_are_logged_once_per_kind() {
        let mut t = Trouble::new();
        assert!(t.wait_left().is_zero());
        assert!(t.report("cgroup".into(), "test failure (not a real one)"));
        assert!(!t.report("cgroup".into(), "test failure (not a real one)"));
        assert!(t.report("spawn".into(), "test failure (not a real one)"));
        let mut pauses = Vec::new();
        for _ in 0..12 {
            pauses.push(t.pause);
            t.failed();
        }
        assert_eq!(pauses[0], BACKOFF_MIN);
        assert_eq!(pauses[1], BACKOFF_MIN * 2);
        assert!(pauses.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(*pauses.last().unwrap(), BACKOFF_MAX);
        assert!(!t.wait_left().is_zero());
        t.succeeded();
        assert!(t.wait_left().is_zero());
        assert_eq!(t.pause, BACKOFF_MIN);
        assert!(t.report("cgroup".into(), "test failure (not a real one)"));
    }

    /// Root-only: the pool fills to its target, hands out working blanks, refills, empties
    /// on a lowered target and leaves nothing behind.
    #[test]
    fn pool_keeps_blanks_ready_and_refills() {
        let Some(host) = host() else { return };
        let pool = BlankPool::start(Arc::clone(&host), template(), 2, "pooltest");
        wait_until("2 blanks are ready", || pool.ready() == 2);
        let mut sb = pool.take().expect("a ready blank");
        assert!(sb.is_blank());
        let (status, out) = run(
            &host,
            &mut sb,
            "echo $GREETING; grep -E '^(Seccomp|CapEff):' /proc/self/status; id -u",
            256,
        );
        assert_eq!(status, 0, "{out}");
        assert!(out.contains("hi there"), "{out}");
        assert!(out.contains("Seccomp:\t2"), "{out}");
        assert!(out.contains("CapEff:\t0000000000000000"), "{out}");
        assert!(out.contains("993"), "{out}");
        let child = sb.timeline.child;
        assert_ne!(child[crate::sandbox::sync::stamp::ASSIGNED], 0);
        host.destroy(sb).unwrap();
        wait_until("the pool refilled", || pool.ready() == 2);
        pool.set_target(0);
        wait_until("the pool emptied", || pool.ready() == 0);
        pool.set_target(1);
        wait_until("1 blank is ready", || pool.ready() == 1);
        pool.shutdown();
        assert_eq!(leftovers(&host, "pooltest"), Vec::<String>::new());
        let _ = host.cgroups.remove_parent_if_empty();
    }

    /// Root-only: a blank whose init died while waiting is never handed out.
    #[test]
    fn dead_blanks_are_discarded() {
        let Some(host) = host() else { return };
        let pool = BlankPool::start(Arc::clone(&host), template(), 1, "pooldead");
        wait_until("1 blank is ready", || pool.ready() == 1);
        let killed = {
            let st = pool.shared.lock();
            let sb = st.ready.front().unwrap();
            sb.kill();
            sb.pid
        };
        // Until init is gone for good (or the thread already replaced it).
        wait_until("the killed init exited", || {
            let st = pool.shared.lock();
            st.ready.front().is_none_or(|sb| {
                sb.pid != killed || {
                    let pidfd = sb.pidfd();
                    let mut fds = [nix::poll::PollFd::new(pidfd, nix::poll::PollFlags::POLLIN)];
                    matches!(
                        nix::poll::poll(&mut fds, nix::poll::PollTimeout::ZERO),
                        Ok(1)
                    )
                }
            })
        });
        if let Some(sb) = pool.take() {
            assert_ne!(sb.pid, killed, "a dead blank was handed out");
            host.destroy(sb).unwrap();
        }
        wait_until("a live replacement is ready", || pool.ready() == 1);
        let mut sb = pool.take().unwrap();
        assert_ne!(sb.pid, killed);
        let (status, out) = run(&host, &mut sb, "echo $GREETING", 128);
        assert_eq!((status, out.trim()), (0, "hi there"));
        host.destroy(sb).unwrap();
        drop(pool);
        assert_eq!(leftovers(&host, "pooldead"), Vec::<String>::new());
        let _ = host.cgroups.remove_parent_if_empty();
    }

    /// Root-only: refusals leave the blank usable; a used or dead blank is refused.
    #[test]
    fn assign_refuses_what_does_not_fit() {
        let Some(host) = host() else { return };
        let name = reclaim::sandbox_name("blankunit", Some(1));
        let mut sb = host.create_blank(&name, &template()).unwrap();
        let mut bigger_tmp = SandboxSpec::new(vec!["/bin/true".into()]);
        bigger_tmp.tmp_mb = 1024;
        match host.assign_blank(&mut sb, &bigger_tmp) {
            Err(SandboxError::BlankMismatch { mismatch, .. }) => {
                assert_eq!(mismatch.field, "tmp size")
            }
            other => panic!("{other:?}"),
        }
        let missing_code = SandboxSpec {
            code: Some("/nonexistent/hearth-code".into()),
            ..SandboxSpec::new(vec!["/bin/true".into()])
        };
        assert!(matches!(
            host.assign_blank(&mut sb, &missing_code),
            Err(SandboxError::Plan(_))
        ));
        let mut huge = SandboxSpec::new(vec!["/bin/true".into()]);
        huge.env.push(("BIG".into(), "x".repeat(200_000).into()));
        assert!(matches!(
            host.assign_blank(&mut sb, &huge),
            Err(SandboxError::ExecPlan(_))
        ));
        // Still a working blank.
        let (status, out) = run(&host, &mut sb, "echo $GREETING; exit 3", 512);
        assert_eq!((libc::WEXITSTATUS(status), out.trim()), (3, "hi there"));
        assert!(matches!(
            host.assign_blank(&mut sb, &SandboxSpec::new(vec!["/bin/true".into()])),
            Err(SandboxError::NotBlank { .. })
        ));
        host.destroy(sb).unwrap();

        let name = reclaim::sandbox_name("blankunit", Some(2));
        let mut sb = host.create_blank(&name, &template()).unwrap();
        sb.kill();
        wait_until("the killed blank is gone", || sb.poll_reports());
        assert!(matches!(
            host.assign_blank(&mut sb, &SandboxSpec::new(vec!["/bin/true".into()])),
            Err(SandboxError::BlankGone { .. })
        ));
        host.destroy(sb).unwrap();
        assert_eq!(leftovers(&host, "blankunit"), Vec::<String>::new());
        let _ = host.cgroups.remove_parent_if_empty();
    }

    /// Root-only: a command that does not exist fails the same way on the blank path.
    #[test]
    fn exec_failures_are_reported_as_on_the_spawn_path() {
        let Some(host) = host() else { return };
        let name = reclaim::sandbox_name("blankexec", Some(1));
        let mut sb = host.create_blank(&name, &template()).unwrap();
        host.assign_blank(&mut sb, &SandboxSpec::new(vec!["no-such-command".into()]))
            .unwrap();
        sb.wait(Some(Instant::now() + Duration::from_secs(20)), None)
            .unwrap();
        assert!(!sb.started);
        assert!(
            matches!(
                sb.failure,
                Some(Failure::Exec {
                    errno: nix::errno::Errno::ENOENT,
                    ..
                })
            ),
            "{:?}",
            sb.failure
        );
        host.destroy(sb).unwrap();
        assert_eq!(leftovers(&host, "blankexec"), Vec::<String>::new());
        let _ = host.cgroups.remove_parent_if_empty();
    }
}
