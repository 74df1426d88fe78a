//! Test harness for the wire tests: a real mio loop on a thread serving one instance on loopback
//! TCP (127.0.0.1:0) and a Unix socket, plus blocking-client helpers that read exact bytes.
//!
//! Owns nothing outside the test process: the Unix socket path is removed by the harness's `Drop`.
//! No timed assertions; socket read timeouts and event waits of 20 s only guard against hangs.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;
use std::time::Duration;

use mio::{Events, Poll, Token, Waker};

use super::{InstanceId, Invocation, RuntimeApiServer, RuntimeEvent};

pub(crate) const GUARD: Duration = Duration::from_secs(20);
pub(crate) const WAKE: Token = Token(0);
pub(crate) const NEXT: &str = "/2018-06-01/runtime/invocation/next";

pub(crate) enum Cmd {
    Invoke(Invocation, mpsc::Sender<Result<(), String>>),
    Remove(mpsc::Sender<()>),
    Sync(mpsc::Sender<()>),
    HasParked(mpsc::Sender<bool>),
    Stop,
}

pub(crate) struct Harness {
    pub(crate) addr: SocketAddr,
    pub(crate) unix_path: PathBuf,
    pub(crate) id: InstanceId,
    pub(crate) cmds: mpsc::Sender<Cmd>,
    pub(crate) waker: Arc<Waker>,
    pub(crate) events: mpsc::Receiver<RuntimeEvent>,
    pub(crate) thread: Option<JoinHandle<()>>,
}

impl Harness {
    pub(crate) fn start() -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let unix_path = std::env::temp_dir().join(format!(
            "hearth-rtapi-{}-{}.sock",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_file(&unix_path);
        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = tcp.local_addr().unwrap();
        let unix = std::os::unix::net::UnixListener::bind(&unix_path).unwrap();
        let mut poll = Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), WAKE).unwrap());
        // A first token far from zero, as the daemon's token ranges will be.
        let mut server = RuntimeApiServer::new(1 << 20);
        let id = server
            .add_instance(poll.registry(), tcp, Some(unix))
            .unwrap();
        let (cmds, cmd_rx) = mpsc::channel::<Cmd>();
        let (ev_tx, events) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let mut evs = Events::with_capacity(64);
            let mut out = Vec::new();
            loop {
                poll.poll(&mut evs, None).unwrap();
                for ev in evs.iter() {
                    if ev.token() == WAKE {
                        continue;
                    }
                    assert!(server.owns(ev.token()));
                    server.handle_event(poll.registry(), ev, &mut out);
                    for e in out.drain(..) {
                        let _ = ev_tx.send(e);
                    }
                }
                while let Ok(cmd) = cmd_rx.try_recv() {
                    match cmd {
                        Cmd::Invoke(inv, reply) => {
                            let r = server.invoke(poll.registry(), id, inv);
                            let _ = reply.send(r.map_err(|e| e.to_string()));
                        }
                        Cmd::Remove(reply) => {
                            server.remove_instance(poll.registry(), id);
                            let _ = reply.send(());
                        }
                        Cmd::Sync(reply) => {
                            let _ = reply.send(());
                        }
                        Cmd::HasParked(reply) => {
                            let _ = reply.send(server.has_parked_next(id));
                        }
                        Cmd::Stop => return,
                    }
                }
            }
        });
        Harness {
            addr,
            unix_path,
            id,
            cmds,
            waker,
            events,
            thread: Some(thread),
        }
    }

    pub(crate) fn command(&self, cmd: Cmd) {
        self.cmds.send(cmd).unwrap();
        self.waker.wake().unwrap();
    }

    pub(crate) fn invoke(&self, inv: Invocation) -> Result<(), String> {
        let (tx, rx) = mpsc::channel();
        self.command(Cmd::Invoke(inv, tx));
        rx.recv_timeout(GUARD).unwrap()
    }

    pub(crate) fn remove(&self) {
        let (tx, rx) = mpsc::channel();
        self.command(Cmd::Remove(tx));
        rx.recv_timeout(GUARD).unwrap();
    }

    /// Every event reported so far (the loop has finished all work before the sync).
    pub(crate) fn drain_events(&self) -> Vec<RuntimeEvent> {
        let (tx, rx) = mpsc::channel();
        self.command(Cmd::Sync(tx));
        rx.recv_timeout(GUARD).unwrap();
        self.events.try_iter().collect()
    }

    /// Waits (hang guard only) until the loop has or has not a parked `/next`.
    pub(crate) fn wait_parked(&self, want: bool) {
        for _ in 0..20_000 {
            let (tx, rx) = mpsc::channel();
            self.command(Cmd::HasParked(tx));
            if rx.recv_timeout(GUARD).unwrap() == want {
                return;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        panic!("parked /next never became {want}");
    }

    pub(crate) fn event(&self) -> RuntimeEvent {
        self.events.recv_timeout(GUARD).expect("an event")
    }

    pub(crate) fn connect(&self) -> TcpStream {
        let s = TcpStream::connect(self.addr).unwrap();
        s.set_read_timeout(Some(GUARD)).unwrap();
        s
    }

    pub(crate) fn ready(&self) {
        assert_eq!(self.event(), RuntimeEvent::Ready { instance: self.id });
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        let _ = self.cmds.send(Cmd::Stop);
        let _ = self.waker.wake();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.unix_path);
    }
}

pub(crate) fn inv(id: &str, payload: &[u8]) -> Invocation {
    Invocation {
        request_id: id.into(),
        deadline_ms: 1_700_000_003_000,
        invoked_function_arn: "arn:aws:lambda:us-east-1:000000000000:function:f".into(),
        trace_id: Some(
            "Root=1-5bef4de7-ad49b0e87f6ef6c87fc2e700;Parent=9a9197af755a6419;Sampled=1".into(),
        ),
        client_context: None,
        cognito_identity: None,
        payload: payload.to_vec(),
    }
}

#[derive(Debug)]
pub(crate) struct Resp {
    pub(crate) status: u16,
    pub(crate) head: String,
    pub(crate) body: Vec<u8>,
}

impl Resp {
    pub(crate) fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap()
    }
    pub(crate) fn error_type(&self) -> String {
        self.json()["errorType"].as_str().unwrap().to_string()
    }
    pub(crate) fn closes(&self) -> bool {
        self.head.contains("\r\nConnection: close\r\n")
    }
}

/// Reads one response (a `100 Continue` counts as one).
pub(crate) fn read_resp<R: Read>(s: &mut R) -> Resp {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut b).unwrap(), 1, "eof inside head {head:?}");
        head.push(b[0]);
    }
    let head = String::from_utf8(head).unwrap();
    let status = head[9..12].parse().unwrap();
    let len = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .map_or(0, |v| v.trim().parse().unwrap());
    let mut body = vec![0; len];
    s.read_exact(&mut body).unwrap();
    Resp { status, head, body }
}

/// Reads until end of file; true if the peer closed (EOF or reset).
pub(crate) fn closed<R: Read>(s: &mut R) -> bool {
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(e) => panic!("read: {e}"),
        }
    }
}

pub(crate) fn get(path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:9001\r\n\r\n").into_bytes()
}

pub(crate) fn post(path: &str, headers: &str, body: &[u8]) -> Vec<u8> {
    let mut v = format!(
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:9001\r\n{headers}Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    v.extend_from_slice(body);
    v
}

pub(crate) fn response_path(id: &str) -> String {
    format!("/2018-06-01/runtime/invocation/{id}/response")
}

pub(crate) fn error_path(id: &str) -> String {
    format!("/2018-06-01/runtime/invocation/{id}/error")
}

pub(crate) const ACCEPTED: &str =
    "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n";

/// Connects, sends the first /next, waits for Ready, hands over `id` and reads the 200.
pub(crate) fn start_invocation(h: &Harness, id: &str) -> TcpStream {
    let mut s = h.connect();
    s.write_all(&get(NEXT)).unwrap();
    h.ready();
    h.invoke(inv(id, b"{}")).unwrap();
    assert_eq!(read_resp(&mut s).status, 200);
    s
}
