//! The Lambda Runtime API (`/2018-06-01/runtime/...`) that the code inside each sandbox talks to.
//!
//! Owns: one set of listeners per instance (the loopback TCP listener the caller bound to
//! `127.0.0.1:9001` inside the sandbox's network namespace, optionally a Unix listener for custom
//! bootstraps), every connection accepted on them, the HTTP/1.1 framing of those connections and
//! the per-instance protocol state (init → ready ⇄ invoking). It reports what the runtime did as
//! [`RuntimeEvent`]s and takes work through [`RuntimeApiServer::invoke`].
//!
//! Shape: a sans-IO core ([`http`] request parser, [`routes`] table, [`instance`] state machine,
//! [`reply`] response bytes) driven by a thin mio adapter ([`server`]). The owner runs the one
//! mio loop and passes every event whose token [`RuntimeApiServer::owns`] to
//! [`RuntimeApiServer::handle_event`].
//!
//! Does not: run timers (init timeout, function timeout and idle reaping belong to dispatch and
//! the pool: they call [`RuntimeApiServer::remove_instance`]), freeze or kill sandboxes, create
//! the listening sockets, log (it reports; the owner logs, rate-limited), or serve the
//! Extensions, Logs and Telemetry APIs (`/2020-01-01`, `/2020-08-15`, `/2022-07-01` answer 404)
//! or the SnapStart restore endpoints (404).
//!
//! Wire behaviour (see `shared/spec/runtime-api.md`):
//! * `GET .../invocation/next` answers exactly `200 OK` with the payload, `Content-Type:
//!   application/json` and the `Lambda-Runtime-*` headers of spec §2.1 (empty ones omitted,
//!   CR/LF/NUL and other control characters in values replaced by spaces so that no value can
//!   split the header block). Posts answer exactly `202 Accepted` with `{"status":"OK"}`. Errors
//!   are JSON `{"errorMessage":...,"errorType":...}` with `Content-Type: application/json`.
//! * A `/response` or `/error` whose id is not the invocation in flight (or just finished) gets
//!   400 `InvalidRequestID`; this is checked before the state. A second result for the same
//!   invocation, or one that races a result still being received, gets 403
//!   `InvalidStateTransition`; so does `/init/error` once the first `/next` has arrived.
//! * **`/next` during a running invocation is parked, as RIE does**: it is not reported, and it
//!   does not end or abandon the invocation (only a posted result, a broken result upload or
//!   [`RuntimeApiServer::remove_instance`] do). It is the `/next` that receives the following
//!   invocation, and it counts as the runtime's `/next` as soon as the result is posted.
//! * **Only one `/next` is parked per instance**: a second concurrent `/next` (another
//!   connection) is refused with 403 `InvalidStateTransition`; the first one keeps its place. A
//!   parked `/next` whose connection is closed by the peer is forgotten (a later `/next` takes its
//!   place without a second [`RuntimeEvent::Ready`]).
//! * Streaming mode (`Lambda-Runtime-Function-Response-Mode: streaming`, chunked) is accepted as
//!   a buffered response under the same 6,291,556-byte limit. Error trailers
//!   `Lambda-Runtime-Function-Error-Type` / `Lambda-Runtime-Function-Error-Body` (base64) turn the
//!   result into [`RuntimeEvent::InvokeError`]; the Rust client's habit of writing those two lines
//!   into the body instead is tolerated (they stay part of the response body). Any other mode
//!   value gets 400 `InvalidFunctionResponseMode` and fails the invocation with
//!   `Runtime.InvalidResponseModeHeader`.
//! * A result body cut short (peer closes or resets mid-body, or sends a malformed chunk) fails
//!   the invocation with `Runtime.TruncatedResponse` (`InitError` for `/init/error`).
//!
//! Limits (nothing a runtime sends may crash, block or bloat the daemon):
//! * request head (request line + headers) ≤ 16 KiB, ≤ 64 headers; chunk-size line ≤ 4 KiB;
//!   trailer section ≤ 16 KiB and ≤ 64 fields; malformed or over-limit framing → 400 and close;
//! * body ≤ 6,291,556 bytes for `/response`; over it → 413 `RequestEntityTooLarge` and
//!   [`RuntimeEvent::ResponseTooLarge`] as soon as the excess is seen; the rest is read and
//!   discarded, never buffered; ≤ 1 MiB for `/error` and `/init/error` bodies (over it → 413 and
//!   the invocation or init fails with `Function.ResponseSizeTooLarge`); the body of any other
//!   request is read and discarded. At most 16 MiB of any one body is discarded; past that the
//!   decided answer is sent with `Connection: close` and the connection is closed;
//! * 16 connections per instance: more are accepted and closed at once;
//! * write buffers hold only what we put there: at most one `/next` payload plus small replies;
//!   while more than 64 KiB of answers are unsent, no further pipelined request is parsed and at
//!   most 80 KiB of input is buffered;
//! * each readiness event reads at most 1 MiB per connection; a connection with more input gets
//!   another event by re-registration, so one busy runtime cannot starve the loop;
//! * no timeouts: `/next` is a long poll and a frozen sandbox may hold a connection idle for as
//!   long as it lives.
//!
//! Unsupported: HTTP/2, transfer codings other than `chunked`, request bodies without framing
//! (treated as empty), `Upgrade`.

pub mod instance;
pub mod reply;
pub mod routes;
pub mod server;

#[cfg(test)]
mod harness;
#[cfg(test)]
mod wire_tests;

pub use server::RuntimeApiServer;

/// One sandboxed runtime served by the [`RuntimeApiServer`], as numbered by it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct InstanceId(pub u64);

impl std::fmt::Display for InstanceId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "instance {}", self.0)
    }
}

/// The work handed to a waiting `GET /next`.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Invocation {
    /// Sent as `Lambda-Runtime-Aws-Request-Id`; must not be empty.
    pub request_id: String,
    /// Unix epoch milliseconds, sent as `Lambda-Runtime-Deadline-Ms`.
    pub deadline_ms: u64,
    /// Sent as `Lambda-Runtime-Invoked-Function-Arn` (with its qualifier, if invoked with one).
    pub invoked_function_arn: String,
    /// Sent as `Lambda-Runtime-Trace-Id` when present and not empty.
    pub trace_id: Option<String>,
    /// Already base64-decoded JSON text; sent as `Lambda-Runtime-Client-Context`.
    pub client_context: Option<String>,
    /// JSON text; sent as `Lambda-Runtime-Cognito-Identity`.
    pub cognito_identity: Option<String>,
    /// The event, sent unmodified with exactly `Content-Type: application/json`.
    pub payload: Vec<u8>,
}

/// What the runtime inside an instance did, as reported to the server's owner.
#[derive(Clone, PartialEq, Eq, Debug)]
pub enum RuntimeEvent {
    /// The runtime called /next: the first call ends the init phase; later ones follow a result.
    Ready { instance: InstanceId },
    /// The invocation's result, complete; `content_type` is the runtime's `Content-Type`.
    Response {
        instance: InstanceId,
        request_id: String,
        body: Vec<u8>,
        content_type: Option<String>,
    },
    /// The result passed 6,291,556 bytes; the invocation has failed
    /// (`Function.ResponseSizeTooLarge` for the caller).
    ResponseTooLarge {
        instance: InstanceId,
        request_id: String,
    },
    /// The invocation failed. `error_type` is the runtime's `Lambda-Runtime-Function-Error-Type`
    /// header (or error trailer) verbatim, or a `Runtime.*` type set by this server when it
    /// failed the invocation itself; the caller's payload is `body`, verbatim.
    InvokeError {
        instance: InstanceId,
        request_id: String,
        error_type: Option<String>,
        body: Vec<u8>,
    },
    /// The runtime reported that its initialisation failed; the instance is unusable.
    InitError {
        instance: InstanceId,
        error_type: Option<String>,
        body: Vec<u8>,
    },
}

/// Why [`RuntimeApiServer::invoke`] refused an invocation.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeApiError {
    #[error("unknown runtime api {0}")]
    UnknownInstance(InstanceId),
    #[error("{instance} is still running invocation {request_id}")]
    Busy {
        instance: InstanceId,
        request_id: String,
    },
    #[error("{instance} already has invocation {request_id} queued")]
    AlreadyQueued {
        instance: InstanceId,
        request_id: String,
    },
    #[error("{0} reported an init error and takes no invocations")]
    InitFailed(InstanceId),
    #[error("invocation for {0} has an empty request id")]
    EmptyRequestId(InstanceId),
}
