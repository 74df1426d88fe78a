//! The mio adapter: listeners and connections of every instance on the daemon's one loop.
//!
//! Owns: the token range `first_token..first_token + 2^32` (one token per listener and per
//! connection, reused after close), accepting (TCP_NODELAY on TCP connections, at most
//! [`MAX_CONNS`] per instance, excess closed at once), reading (until `WouldBlock`, `Interrupted`
//! retried, at most [`READ_BUDGET`] bytes per event — more input is signalled again by
//! re-registering, which makes epoll report the still-ready socket, so one chatty runtime cannot
//! hold the loop), writing (queued answers, `WRITABLE` interest only while some are unsent) and
//! closing. Each complete request goes through [`super::routes`] and [`super::instance`].
//!
//! Does not: own the `Poll`, create or bind the listening sockets, remove a Unix socket's path,
//! time anything out, or log. Stale events for a closed token are ignored; an event for a token
//! reused by a newer connection is harmless because every handler treats readiness as a hint.
//! Writes rely on `SIGPIPE` being ignored, as the Rust runtime arranges for every binary.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Write};

use mio::event::Event;
use mio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use mio::{Interest, Registry, Token};

use super::instance::{
    response_mode_error, response_mode_ok, stream_error, ConnRef, Instance, NextOutcome, Outcome,
    Upload,
};
use super::reply::{self, ApiError, MAX_ERROR_BODY, MAX_RESPONSE_BODY};
use super::routes::{route, RuntimeAction};
use super::{InstanceId, Invocation, RuntimeApiError, RuntimeEvent};
use crate::http::parser::{HttpError, RequestHead, RequestParser, Step};

/// Tokens per server.
const TOKEN_SPAN: u64 = 1 << 32;
/// Open connections per instance.
pub const MAX_CONNS: usize = 16;
/// Unsent answer bytes past which no further pipelined request is parsed.
const OUT_HIGH: usize = 64 * 1024;
/// Bytes read from one connection per readiness event.
pub const READ_BUDGET: usize = 1024 * 1024;

#[derive(Debug)]
enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener),
}

#[derive(Debug)]
enum Stream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.read(buf),
            Stream::Unix(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Tcp(s) => s.write(buf),
            Stream::Unix(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What the request being read on a connection gets once its body has ended.
#[derive(Debug)]
enum Pending {
    /// Between requests.
    Idle,
    Next,
    /// A `/next` waiting for work; nothing after it on this connection is parsed meanwhile.
    Parked,
    /// A result or init-error body reserved with the instance.
    Upload {
        kind: Upload,
        content_type: Option<String>,
        error_type: Option<String>,
    },
    /// Already decided (a refusal); the body is discarded.
    Reply(ApiError),
}

#[derive(Debug)]
struct Conn {
    instance: InstanceId,
    stream: Stream,
    parser: RequestParser,
    out: VecDeque<Vec<u8>>,
    /// Bytes of `out.front()` already written.
    out_front: usize,
    out_len: usize,
    pending: Pending,
    /// The current request lets the connection stay open.
    keep_alive: bool,
    /// Close once `out` is written.
    closing: bool,
    eof: bool,
    interest: Interest,
}

impl Conn {
    fn push(&mut self, bytes: Vec<u8>) {
        self.out_len += bytes.len();
        self.out.push_back(bytes);
    }

    /// Writes queued answers until done or `WouldBlock`.
    fn flush(&mut self) -> io::Result<()> {
        while let Some(front) = self.out.front() {
            match self.stream.write(&front[self.out_front..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.out_front += n;
                    self.out_len -= n;
                    if self.out_front == front.len() {
                        self.out.pop_front();
                        self.out_front = 0;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Whether anything remains that needs another turn without new input.
    fn has_work(&self) -> bool {
        self.out_len > 0 || self.closing || self.parser.buffered() > 0
    }
}

#[derive(Debug)]
enum Entry {
    Listener {
        instance: InstanceId,
        sock: Listener,
    },
    Conn(Box<Conn>),
}

#[derive(Debug)]
struct InstanceEntry {
    proto: Instance,
    listeners: Vec<usize>,
    conns: Vec<usize>,
}

/// What to do with a connection after driving it.
enum Fate {
    Keep { retrigger: bool },
    Close,
}

/// The Runtime API of every instance, driven by the owner's mio loop.
#[derive(Debug)]
pub struct RuntimeApiServer {
    first_token: usize,
    slots: Vec<Option<Entry>>,
    free: Vec<usize>,
    instances: HashMap<InstanceId, InstanceEntry>,
    next_id: u64,
}

impl RuntimeApiServer {
    /// Tokens `first_token..first_token + (1<<32)` belong to this server.
    pub fn new(first_token: usize) -> Self {
        Self {
            first_token,
            slots: Vec::new(),
            free: Vec::new(),
            instances: HashMap::new(),
            next_id: 1,
        }
    }

    pub fn owns(&self, token: mio::Token) -> bool {
        token
            .0
            .checked_sub(self.first_token)
            .is_some_and(|d| (d as u64) < TOKEN_SPAN)
    }

    fn token(&self, slot: usize) -> Token {
        Token(self.first_token + slot)
    }

    fn alloc(&mut self) -> io::Result<usize> {
        if let Some(s) = self.free.pop() {
            return Ok(s);
        }
        if self.slots.len() as u64 >= TOKEN_SPAN
            || self.first_token.checked_add(self.slots.len()).is_none()
        {
            return Err(io::Error::other("runtime api token range exhausted"));
        }
        self.slots.push(None);
        Ok(self.slots.len() - 1)
    }

    /// Registers an instance's listeners (already bound+listening, set non-blocking by the
    /// server): a TCP listener (bound to 127.0.0.1:9001 inside the sandbox's netns by the caller)
    /// and optionally a Unix listener; returns the id.
    pub fn add_instance(
        &mut self,
        registry: &Registry,
        tcp: std::net::TcpListener,
        unix: Option<std::os::unix::net::UnixListener>,
    ) -> io::Result<InstanceId> {
        tcp.set_nonblocking(true)?;
        let mut socks = vec![Listener::Tcp(TcpListener::from_std(tcp))];
        if let Some(u) = unix {
            u.set_nonblocking(true)?;
            socks.push(Listener::Unix(UnixListener::from_std(u)));
        }
        let id = InstanceId(self.next_id);
        self.next_id += 1;
        let mut listeners = Vec::new();
        for mut sock in socks {
            let registered = self.alloc().and_then(|slot| {
                let token = self.token(slot);
                let res = match &mut sock {
                    Listener::Tcp(l) => registry.register(l, token, Interest::READABLE),
                    Listener::Unix(l) => registry.register(l, token, Interest::READABLE),
                };
                match res {
                    Ok(()) => Ok(slot),
                    Err(e) => {
                        self.free.push(slot);
                        Err(e)
                    }
                }
            });
            match registered {
                Ok(slot) => {
                    self.slots[slot] = Some(Entry::Listener { instance: id, sock });
                    listeners.push(slot);
                }
                Err(e) => {
                    for slot in listeners {
                        self.close_slot(registry, slot);
                    }
                    return Err(e);
                }
            }
        }
        self.instances.insert(
            id,
            InstanceEntry {
                proto: Instance::new(id),
                listeners,
                conns: Vec::new(),
            },
        );
        Ok(id)
    }

    /// Deregisters and closes the listeners and every connection of the instance.
    pub fn remove_instance(&mut self, registry: &Registry, id: InstanceId) {
        let Some(entry) = self.instances.remove(&id) else {
            return;
        };
        for slot in entry.listeners.into_iter().chain(entry.conns) {
            self.close_slot(registry, slot);
        }
    }

    /// Deregisters and drops whatever is in `slot`, without any protocol consequence.
    fn close_slot(&mut self, registry: &Registry, slot: usize) {
        // Deregistration can only fail for a source that is not registered; dropping closes the
        // descriptor, which removes it from epoll anyway.
        match self.slots[slot].take() {
            Some(Entry::Listener { sock, .. }) => match sock {
                Listener::Tcp(mut l) => drop(registry.deregister(&mut l)),
                Listener::Unix(mut l) => drop(registry.deregister(&mut l)),
            },
            Some(Entry::Conn(mut c)) => match &mut c.stream {
                Stream::Tcp(s) => drop(registry.deregister(s)),
                Stream::Unix(s) => drop(registry.deregister(s)),
            },
            None => return,
        }
        self.free.push(slot);
    }

    /// Closes a connection and tells its instance, which may end an upload on it.
    fn close_conn(&mut self, registry: &Registry, slot: usize, out: &mut Vec<RuntimeEvent>) {
        let Some(Some(Entry::Conn(conn))) = self.slots.get(slot) else {
            return;
        };
        let id = conn.instance;
        self.close_slot(registry, slot);
        if let Some(inst) = self.instances.get_mut(&id) {
            inst.conns.retain(|c| *c != slot);
            out.extend(inst.proto.conn_closed(slot));
        }
    }

    /// Hands an invocation to the instance: answered at once if a /next is parked, else when it
    /// comes. Error if the instance is unknown, still busy with another invocation, or already
    /// has one queued.
    pub fn invoke(
        &mut self,
        registry: &Registry,
        id: InstanceId,
        inv: Invocation,
    ) -> Result<(), RuntimeApiError> {
        let inst = self
            .instances
            .get_mut(&id)
            .ok_or(RuntimeApiError::UnknownInstance(id))?;
        let Some((slot, inv)) = inst.proto.invoke(inv)? else {
            return Ok(());
        };
        let Some(Some(Entry::Conn(conn))) = self.slots.get_mut(slot) else {
            return Ok(());
        };
        conn.pending = Pending::Idle;
        let close = !conn.keep_alive;
        conn.push(reply::next_head(&inv, close));
        conn.push(inv.payload);
        if close {
            conn.closing = true;
        }
        // Write at once: this is the warm-invoke latency path. Pipelined requests behind the
        // /next, and the close, are left to the event that re-arming the socket produces.
        let mut dropped = Vec::new();
        let fate = if conn.flush().is_err() {
            Fate::Close
        } else {
            Fate::Keep {
                retrigger: conn.has_work(),
            }
        };
        self.settle(registry, slot, fate, &mut dropped);
        // A parked connection holds no upload, so closing it reports nothing.
        debug_assert!(dropped.is_empty());
        Ok(())
    }

    /// Whether the instance has a parked `/next` (tests wait on it instead of sleeping).
    #[cfg(test)]
    pub(crate) fn has_parked_next(&self, id: InstanceId) -> bool {
        self.instances
            .get(&id)
            .is_some_and(|i| i.proto.parked().is_some())
    }

    /// Handles one readiness event for one of our tokens; appends what happened to `out`.
    pub fn handle_event(
        &mut self,
        registry: &Registry,
        event: &Event,
        out: &mut Vec<RuntimeEvent>,
    ) {
        let Some(slot) = event.token().0.checked_sub(self.first_token) else {
            return;
        };
        match self.slots.get(slot) {
            Some(Some(Entry::Listener { .. })) => self.accept(registry, slot),
            Some(Some(Entry::Conn(_))) => self.drive(registry, slot, out),
            _ => {}
        }
    }

    fn accept(&mut self, registry: &Registry, slot: usize) {
        loop {
            let Some(Some(Entry::Listener { instance, sock })) = self.slots.get(slot) else {
                return;
            };
            let instance = *instance;
            let res = match sock {
                Listener::Tcp(l) => l.accept().map(|(s, _)| Stream::Tcp(s)),
                Listener::Unix(l) => l.accept().map(|(s, _)| Stream::Unix(s)),
            };
            match res {
                Ok(stream) => self.add_conn(registry, instance, stream),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                    ) => {}
                // Out of descriptors or memory: the pending connections wait in the backlog
                // until the next one arrives; retrying now would spin.
                Err(_) => return,
            }
        }
    }

    fn add_conn(&mut self, registry: &Registry, instance: InstanceId, mut stream: Stream) {
        let Some(inst) = self.instances.get(&instance) else {
            return;
        };
        if inst.conns.len() >= MAX_CONNS {
            return; // dropping closes it
        }
        if let Stream::Tcp(s) = &stream {
            // Without it Nagle and delayed ACKs add ~40 ms to every small exchange.
            let _ = s.set_nodelay(true);
        }
        let Ok(slot) = self.alloc() else {
            return;
        };
        let token = self.token(slot);
        let res = match &mut stream {
            Stream::Tcp(s) => registry.register(s, token, Interest::READABLE),
            Stream::Unix(s) => registry.register(s, token, Interest::READABLE),
        };
        if res.is_err() {
            self.free.push(slot);
            return;
        }
        self.slots[slot] = Some(Entry::Conn(Box::new(Conn {
            instance,
            stream,
            parser: RequestParser::new(),
            out: VecDeque::new(),
            out_front: 0,
            out_len: 0,
            pending: Pending::Idle,
            keep_alive: true,
            closing: false,
            eof: false,
            interest: Interest::READABLE,
        })));
        if let Some(inst) = self.instances.get_mut(&instance) {
            inst.conns.push(slot);
        }
    }

    fn drive(&mut self, registry: &Registry, slot: usize, out: &mut Vec<RuntimeEvent>) {
        let Some(Some(Entry::Conn(conn))) = self.slots.get_mut(slot) else {
            return;
        };
        let Some(inst) = self.instances.get_mut(&conn.instance) else {
            // Cannot happen: connections are closed with their instance.
            self.close_slot(registry, slot);
            return;
        };
        let fate = drive_conn(conn, &mut inst.proto, slot, out);
        self.settle(registry, slot, fate, out);
    }

    /// Closes the connection or sets its interest (re-registering to get another event).
    fn settle(
        &mut self,
        registry: &Registry,
        slot: usize,
        fate: Fate,
        out: &mut Vec<RuntimeEvent>,
    ) {
        let retrigger = match fate {
            Fate::Close => return self.close_conn(registry, slot, out),
            Fate::Keep { retrigger } => retrigger,
        };
        let token = self.token(slot);
        let Some(Some(Entry::Conn(conn))) = self.slots.get_mut(slot) else {
            return;
        };
        let want = if conn.out_len > 0 || retrigger {
            Interest::READABLE | Interest::WRITABLE
        } else {
            Interest::READABLE
        };
        if want == conn.interest && !retrigger {
            return;
        }
        let res = match &mut conn.stream {
            Stream::Tcp(s) => registry.reregister(s, token, want),
            Stream::Unix(s) => registry.reregister(s, token, want),
        };
        match res {
            Ok(()) => conn.interest = want,
            Err(_) => self.close_conn(registry, slot, out),
        }
    }
}

/// Writes, parses, answers and reads on one connection until it would block or must wait.
fn drive_conn(
    conn: &mut Conn,
    inst: &mut Instance,
    slot: ConnRef,
    events: &mut Vec<RuntimeEvent>,
) -> Fate {
    let mut budget = READ_BUDGET;
    loop {
        if conn.flush().is_err() {
            return Fate::Close;
        }
        if conn.closing && conn.out_len == 0 {
            return Fate::Close;
        }
        if process(conn, inst, slot, events) {
            continue;
        }
        if conn.eof || conn.closing || conn.out_len > OUT_HIGH || !conn.parser.wants_input() {
            // Waiting for WRITABLE, for work for a parked /next, or for the close.
            return Fate::Keep { retrigger: false };
        }
        if budget == 0 {
            return Fate::Keep { retrigger: true };
        }
        match conn.parser.read_from(&mut conn.stream) {
            Ok(0) => on_eof(conn, inst, slot, events),
            Ok(n) => budget = budget.saturating_sub(n),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                return Fate::Keep { retrigger: false }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return Fate::Close,
        }
    }
}

/// Handles the next buffered protocol step; false when nothing can be done without input.
fn process(
    conn: &mut Conn,
    inst: &mut Instance,
    slot: ConnRef,
    events: &mut Vec<RuntimeEvent>,
) -> bool {
    if conn.closing || conn.out_len > OUT_HIGH || matches!(conn.pending, Pending::Parked) {
        return false;
    }
    match conn.parser.step() {
        Step::NeedMore => return false,
        Step::Head(head) => on_head(conn, inst, slot, head, events),
        Step::BodyTooLarge => {
            if let Pending::Upload { kind, .. } = conn.pending {
                events.extend(inst.end_upload(slot, Outcome::TooLarge));
                let limit = match kind {
                    Upload::Response => MAX_RESPONSE_BODY,
                    Upload::InvokeError | Upload::InitError => MAX_ERROR_BODY,
                };
                conn.pending = Pending::Reply(ApiError::too_large(limit));
            }
        }
        Step::Done { trailers } => on_done(conn, inst, slot, trailers, events),
        Step::Error(e) => {
            let pending = std::mem::replace(&mut conn.pending, Pending::Idle);
            if matches!(pending, Pending::Upload { .. }) {
                events.extend(inst.conn_closed(slot));
            }
            let answer = match (&e, pending) {
                (HttpError::DiscardLimit, Pending::Reply(r)) => r,
                _ => ApiError::bad_request(&e.to_string()),
            };
            conn.push(answer.to_bytes(true));
            conn.closing = true;
        }
    }
    true
}

fn on_head(
    conn: &mut Conn,
    inst: &mut Instance,
    slot: ConnRef,
    head: RequestHead,
    events: &mut Vec<RuntimeEvent>,
) {
    conn.keep_alive = head.keep_alive;
    if head.expect_continue && head.has_body() {
        // curl waits about a second for this before sending a body on its own.
        conn.push(reply::CONTINUE.to_vec());
    }
    let text = |name: &str| {
        head.header(name)
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    };
    conn.pending = match route(&head.method, &head.target) {
        RuntimeAction::Next => Pending::Next,
        RuntimeAction::Response { request_id } => {
            match inst.begin_result(slot, &request_id, Upload::Response) {
                Err(e) => Pending::Reply(e),
                Ok(()) => {
                    let mode = head.header("Lambda-Runtime-Function-Response-Mode");
                    if response_mode_ok(mode) {
                        conn.parser
                            .keep_body(MAX_RESPONSE_BODY, head.content_length);
                        Pending::Upload {
                            kind: Upload::Response,
                            content_type: text("Content-Type"),
                            error_type: None,
                        }
                    } else {
                        let (ty, body) = response_mode_error(mode.unwrap_or_default());
                        let error_type = Some(ty);
                        events.extend(inst.end_upload(slot, Outcome::Error { error_type, body }));
                        Pending::Reply(ApiError::invalid_response_mode())
                    }
                }
            }
        }
        RuntimeAction::InvokeError { request_id } => {
            match inst.begin_result(slot, &request_id, Upload::InvokeError) {
                Err(e) => Pending::Reply(e),
                Ok(()) => {
                    conn.parser.keep_body(MAX_ERROR_BODY, head.content_length);
                    Pending::Upload {
                        kind: Upload::InvokeError,
                        content_type: None,
                        error_type: text("Lambda-Runtime-Function-Error-Type"),
                    }
                }
            }
        }
        RuntimeAction::InitError => match inst.begin_init_error(slot) {
            Err(e) => Pending::Reply(e),
            Ok(()) => {
                conn.parser.keep_body(MAX_ERROR_BODY, head.content_length);
                Pending::Upload {
                    kind: Upload::InitError,
                    content_type: None,
                    error_type: text("Lambda-Runtime-Function-Error-Type"),
                }
            }
        },
        RuntimeAction::MethodNotAllowed { allow } => {
            Pending::Reply(ApiError::method_not_allowed(allow))
        }
        RuntimeAction::NotFound => Pending::Reply(ApiError::not_found()),
    };
}

fn on_done(
    conn: &mut Conn,
    inst: &mut Instance,
    slot: ConnRef,
    trailers: Vec<(String, Vec<u8>)>,
    events: &mut Vec<RuntimeEvent>,
) {
    let body = conn.parser.take_body();
    let close = !conn.keep_alive;
    match std::mem::replace(&mut conn.pending, Pending::Idle) {
        Pending::Idle | Pending::Parked => {}
        Pending::Next => {
            let mut ready = false;
            let outcome = inst.on_next(slot, &mut ready);
            if ready {
                events.push(RuntimeEvent::Ready {
                    instance: inst.id(),
                });
            }
            match outcome {
                NextOutcome::Deliver(inv) => {
                    conn.push(reply::next_head(&inv, close));
                    conn.push(inv.payload);
                }
                NextOutcome::Parked => {
                    conn.pending = Pending::Parked;
                    return;
                }
                NextOutcome::Rejected(e) => conn.push(e.to_bytes(close)),
            }
        }
        Pending::Upload {
            kind,
            content_type,
            error_type,
        } => {
            let outcome = match (kind, stream_error(&trailers)) {
                (Upload::Response, Some((error_type, body))) => Outcome::Error { error_type, body },
                (Upload::Response, None) => Outcome::Response { body, content_type },
                _ => Outcome::Error { error_type, body },
            };
            events.extend(inst.end_upload(slot, outcome));
            conn.push(reply::accepted(close));
        }
        Pending::Reply(e) => conn.push(e.to_bytes(close)),
    }
    if close {
        conn.closing = true;
    }
}

/// The peer finished sending (or half-closed).
fn on_eof(conn: &mut Conn, inst: &mut Instance, slot: ConnRef, events: &mut Vec<RuntimeEvent>) {
    conn.eof = true;
    conn.closing = true;
    if conn.parser.in_body() {
        // A body shorter than declared: the upload (if any) fails, the request gets RIE's 400.
        if matches!(conn.pending, Pending::Upload { .. }) {
            events.extend(inst.conn_closed(slot));
        }
        conn.pending = Pending::Idle;
        conn.push(ApiError::truncated().to_bytes(true));
    }
    // A parked /next whose peer went away is forgotten when the connection closes; a partial
    // head is dropped silently.
}
