//! Sandbox creation off the event loop: cold starts by spawning (4–5 ms of clone, mounts
//! and cgroup work each) run on a few worker threads, so that a burst of cold starts
//! neither stalls the loop's warm invocations nor counts the loop's own queue in the
//! first instances' Init Duration — and uses both cores.
//!
//! A job is `(slot, SpawnJob)`; its result comes back through a channel and the loop is
//! woken through a [`mio::Waker`]. Limits: the workers must live as long as the sandboxes
//! they created (the kernel's parent-death signal follows the creating thread), so they
//! are joined only at shutdown, after every instance is gone.

use std::sync::{mpsc, Arc, Mutex};

use crate::instance::pooled::{SpawnDone, SpawnJob};
use crate::sandbox::SandboxHost;

/// Worker threads (each blocks in the kernel most of a creation; more than the cores
/// only adds contention).
fn workers() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .clamp(1, 4)
}

/// The workers, their job queue and their results.
#[derive(Debug)]
pub struct Spawner {
    jobs: Option<mpsc::Sender<(usize, Box<SpawnJob>)>>,
    done: mpsc::Receiver<(usize, SpawnDone)>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Spawner {
    /// Starts the workers; `waker` wakes the loop when a result is ready.
    pub fn start(host: Arc<SandboxHost>, waker: Arc<mio::Waker>) -> Spawner {
        let (jobs_tx, jobs_rx) = mpsc::channel::<(usize, Box<SpawnJob>)>();
        let (done_tx, done_rx) = mpsc::channel();
        let jobs_rx = Arc::new(Mutex::new(jobs_rx));
        let mut threads = Vec::new();
        for _ in 0..workers() {
            let (host, jobs, done, waker) = (
                host.clone(),
                jobs_rx.clone(),
                done_tx.clone(),
                waker.clone(),
            );
            let spawned = std::thread::Builder::new()
                // A sandbox init cloned from this thread inherits its name (comm).
                .name("hearth".into())
                .spawn(move || loop {
                    let job = jobs.lock().map(|rx| rx.recv());
                    let Ok(Ok((slot, job))) = job else { return };
                    let result = job.run(&host);
                    if done.send((slot, result)).is_err() {
                        return;
                    }
                    let _ = waker.wake();
                });
            match spawned {
                Ok(t) => threads.push(t),
                Err(e) => eprintln!("hearth serve: starting a spawner thread: {e}"),
            }
        }
        Spawner {
            jobs: (!threads.is_empty()).then_some(jobs_tx),
            done: done_rx,
            threads,
        }
    }

    /// Queues a creation. `Err` gives the job back when no worker runs: the caller
    /// creates it in place.
    pub fn submit(&self, slot: usize, job: Box<SpawnJob>) -> Result<(), Box<SpawnJob>> {
        match &self.jobs {
            Some(tx) => tx.send((slot, job)).map_err(|e| e.0 .1),
            None => Err(job),
        }
    }

    /// The results ready now.
    pub fn results(&self) -> Vec<(usize, SpawnDone)> {
        self.done.try_iter().collect()
    }

    /// Stops the workers after their queued jobs, and destroys whatever they created
    /// that nobody took.
    pub fn finish(&mut self, host: &SandboxHost) {
        self.jobs = None;
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        for (_, done) in self.done.try_iter() {
            done.discard(host);
        }
    }
}
