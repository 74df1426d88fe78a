//! The protocol state of one instance's runtime (sans-IO).
//!
//! Owns: the phase (`Initializing` → first `/next` → `Ready` ⇄ `Invoking` → result posted →
//! `ResultPosted` → `/next` → `Ready` …, or `InitFailed`), the invocation in flight, the one
//! parked `/next`, the one queued invocation, and which connection is uploading a result. Every
//! transition returns the [`RuntimeEvent`]s it causes and the [`ApiError`] a refused call gets.
//!
//! Does not: parse, write or know sockets — connections are opaque [`ConnRef`] numbers — nor keep
//! time. Rules (RIE's): an id that is not the latest delivered invocation → 400 before any state
//! check; a result outside `Invoking`, or racing another result upload → 403; `/init/error` after
//! the first `/next` → 403; `/next` while `Invoking` is parked silently; a second concurrent
//! `/next` → 403 while the first keeps its place.

use super::reply::{error_json, ApiError};
use super::{InstanceId, Invocation, RuntimeApiError, RuntimeEvent};

/// A connection, as numbered by the server.
pub type ConnRef = usize;

/// Where the runtime is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Started; no `/next` yet.
    Initializing,
    /// Called `/next`; nothing in flight.
    Ready,
    /// An invocation was delivered; no result posted yet.
    Invoking,
    /// The result is posted; waiting for the next `/next`.
    ResultPosted,
    /// `/init/error` was posted; the instance takes nothing more.
    InitFailed,
}

impl Phase {
    /// RIE's names, used in 403 messages.
    fn name(self) -> &'static str {
        match self {
            Phase::Initializing => "Started",
            Phase::Ready => "Ready",
            Phase::Invoking => "Running",
            Phase::ResultPosted => "ResponseSent",
            Phase::InitFailed => "InitError",
        }
    }
}

/// What a result upload is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upload {
    Response,
    InvokeError,
    InitError,
}

impl Upload {
    fn target(self) -> &'static str {
        match self {
            Upload::Response => "InvocationResponse",
            Upload::InvokeError => "InvocationErrorResponse",
            Upload::InitError => "InitError",
        }
    }
}

/// How a result upload ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Response {
        body: Vec<u8>,
        content_type: Option<String>,
    },
    TooLarge,
    Error {
        error_type: Option<String>,
        body: Vec<u8>,
    },
}

/// The answer to a `/next`.
#[derive(Debug, PartialEq, Eq)]
pub enum NextOutcome {
    /// Answer now with this invocation.
    Deliver(Invocation),
    /// Keep the request open until [`Instance::invoke`] hands over work.
    Parked,
    Rejected(ApiError),
}

/// One instance's protocol state.
#[derive(Debug)]
pub struct Instance {
    id: InstanceId,
    phase: Phase,
    /// Request id of the latest delivered invocation; kept after its result so that a second
    /// result for it gets 403, not 400.
    current: Option<String>,
    uploading: Option<(ConnRef, Upload)>,
    parked: Option<ConnRef>,
    queued: Option<Invocation>,
}

impl Instance {
    pub fn new(id: InstanceId) -> Self {
        Self {
            id,
            phase: Phase::Initializing,
            current: None,
            uploading: None,
            parked: None,
            queued: None,
        }
    }

    pub fn id(&self) -> InstanceId {
        self.id
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The connection holding the parked `/next`, if any.
    pub fn parked(&self) -> Option<ConnRef> {
        self.parked
    }

    /// A `/next` arrived on `conn`; `ready` is set when it ends init or follows a result.
    pub fn on_next(&mut self, conn: ConnRef, ready: &mut bool) -> NextOutcome {
        *ready = false;
        if self.phase == Phase::InitFailed {
            return NextOutcome::Rejected(ApiError::invalid_state(self.phase.name(), "Ready"));
        }
        if self.parked.is_some_and(|c| c != conn) {
            return NextOutcome::Rejected(ApiError::invalid_state(self.phase.name(), "Ready"));
        }
        if matches!(self.phase, Phase::Initializing | Phase::ResultPosted) {
            self.phase = Phase::Ready;
            *ready = true;
        }
        if self.phase == Phase::Ready {
            if let Some(inv) = self.queued.take() {
                self.phase = Phase::Invoking;
                self.current = Some(inv.request_id.clone());
                return NextOutcome::Deliver(inv);
            }
        }
        self.parked = Some(conn);
        NextOutcome::Parked
    }

    /// Hands over work: `Some((conn, inv))` when the parked `/next` on `conn` must be answered.
    pub fn invoke(
        &mut self,
        inv: Invocation,
    ) -> Result<Option<(ConnRef, Invocation)>, RuntimeApiError> {
        if inv.request_id.is_empty() {
            return Err(RuntimeApiError::EmptyRequestId(self.id));
        }
        match self.phase {
            Phase::InitFailed => return Err(RuntimeApiError::InitFailed(self.id)),
            Phase::Invoking => {
                return Err(RuntimeApiError::Busy {
                    instance: self.id,
                    request_id: self.current.clone().unwrap_or_default(),
                })
            }
            _ => {}
        }
        if let Some(q) = &self.queued {
            return Err(RuntimeApiError::AlreadyQueued {
                instance: self.id,
                request_id: q.request_id.clone(),
            });
        }
        if self.phase == Phase::Ready {
            if let Some(conn) = self.parked.take() {
                self.phase = Phase::Invoking;
                self.current = Some(inv.request_id.clone());
                return Ok(Some((conn, inv)));
            }
        }
        self.queued = Some(inv);
        Ok(None)
    }

    /// A `/response` or `/error` head for `request_id` arrived on `conn`; on success the upload is
    /// reserved for `conn` until [`Instance::end_upload`] or [`Instance::conn_closed`].
    pub fn begin_result(
        &mut self,
        conn: ConnRef,
        request_id: &str,
        kind: Upload,
    ) -> Result<(), ApiError> {
        if request_id.is_empty() || self.current.as_deref() != Some(request_id) {
            return Err(ApiError::invalid_request_id());
        }
        if self.phase != Phase::Invoking || self.uploading.is_some() {
            let from = match self.uploading {
                Some((_, up)) => up.target(),
                None => self.phase.name(),
            };
            return Err(ApiError::invalid_state(from, kind.target()));
        }
        self.uploading = Some((conn, kind));
        Ok(())
    }

    /// A `/init/error` head arrived on `conn`.
    pub fn begin_init_error(&mut self, conn: ConnRef) -> Result<(), ApiError> {
        if self.phase != Phase::Initializing || self.uploading.is_some() {
            return Err(ApiError::invalid_state(self.phase.name(), "InitError"));
        }
        self.uploading = Some((conn, Upload::InitError));
        Ok(())
    }

    /// The upload reserved by `conn` ended; returns the events to report.
    pub fn end_upload(&mut self, conn: ConnRef, outcome: Outcome) -> Vec<RuntimeEvent> {
        let Some((c, kind)) = self.uploading else {
            return Vec::new();
        };
        if c != conn {
            return Vec::new();
        }
        self.uploading = None;
        let instance = self.id;
        let mut events = Vec::with_capacity(2);
        if kind == Upload::InitError {
            self.phase = Phase::InitFailed;
            let (error_type, body) = match outcome {
                Outcome::Error { error_type, body } => (error_type, body),
                Outcome::Response { body, .. } => (None, body),
                Outcome::TooLarge => too_large_error(super::reply::MAX_ERROR_BODY),
            };
            events.push(RuntimeEvent::InitError {
                instance,
                error_type,
                body,
            });
            return events;
        }
        let request_id = self.current.clone().unwrap_or_default();
        events.push(match (kind, outcome) {
            (Upload::Response, Outcome::Response { body, content_type }) => {
                RuntimeEvent::Response {
                    instance,
                    request_id,
                    body,
                    content_type,
                }
            }
            (Upload::Response, Outcome::TooLarge) => RuntimeEvent::ResponseTooLarge {
                instance,
                request_id,
            },
            (_, Outcome::TooLarge) => {
                let (error_type, body) = too_large_error(super::reply::MAX_ERROR_BODY);
                RuntimeEvent::InvokeError {
                    instance,
                    request_id,
                    error_type,
                    body,
                }
            }
            (_, Outcome::Error { error_type, body }) => RuntimeEvent::InvokeError {
                instance,
                request_id,
                error_type,
                body,
            },
            (_, Outcome::Response { body, .. }) => RuntimeEvent::InvokeError {
                instance,
                request_id,
                error_type: None,
                body,
            },
        });
        self.phase = Phase::ResultPosted;
        // A /next parked during the invocation is the runtime's next /next.
        if self.parked.is_some() {
            self.phase = Phase::Ready;
            events.push(RuntimeEvent::Ready { instance });
        }
        events
    }

    /// `conn` is gone: a parked `/next` on it is forgotten, an upload on it fails as truncated.
    pub fn conn_closed(&mut self, conn: ConnRef) -> Vec<RuntimeEvent> {
        if self.parked == Some(conn) {
            self.parked = None;
        }
        match self.uploading {
            Some((c, _)) if c == conn => {
                let (error_type, body) = truncated_error(self.current.as_deref());
                self.end_upload(
                    conn,
                    Outcome::Error {
                        error_type: Some(error_type),
                        body,
                    },
                )
            }
            _ => Vec::new(),
        }
    }
}

/// `(errorType, body)` for a result whose body was cut short.
pub fn truncated_error(request_id: Option<&str>) -> (String, Vec<u8>) {
    let ty = "Runtime.TruncatedResponse";
    let msg = match request_id {
        Some(id) => format!("RequestId: {id} Error: runtime sent a truncated or malformed body"),
        None => "Error: runtime sent a truncated or malformed body".to_string(),
    };
    (ty.to_string(), error_json(&msg, ty))
}

/// `(errorType, body)` for an `/error` or `/init/error` body over its limit.
fn too_large_error(limit: usize) -> (Option<String>, Vec<u8>) {
    let ty = "Function.ResponseSizeTooLarge";
    let msg = format!("Error payload size exceeded maximum allowed payload size ({limit} bytes).");
    (Some(ty.to_string()), error_json(&msg, ty))
}

/// `(errorType, body)` for a `/response` with a bad `Lambda-Runtime-Function-Response-Mode`.
pub fn response_mode_error(mode: &str) -> (String, Vec<u8>) {
    let ty = "Runtime.InvalidResponseModeHeader";
    let msg = format!("Invalid Lambda-Runtime-Function-Response-Mode header value {mode:?}");
    (ty.to_string(), error_json(&msg, ty))
}

/// Whether a `Lambda-Runtime-Function-Response-Mode` value is acceptable (absent or `streaming`).
pub fn response_mode_ok(mode: Option<&str>) -> bool {
    match mode {
        None => true,
        Some(m) => m.eq_ignore_ascii_case("streaming"),
    }
}

/// A streamed response that ended in error trailers: `(errorType, error body)`. The body trailer
/// is base64 of the error JSON; if it does not decode, it is passed on as sent.
pub fn stream_error(trailers: &[(String, Vec<u8>)]) -> Option<(Option<String>, Vec<u8>)> {
    let ty = crate::http::parser::header_in(trailers, "Lambda-Runtime-Function-Error-Type");
    let body = crate::http::parser::header_in(trailers, "Lambda-Runtime-Function-Error-Body");
    if ty.is_none() && body.is_none() {
        return None;
    }
    let body = body.map_or_else(Vec::new, |b| {
        decode_base64(b).unwrap_or_else(|| b.as_bytes().to_vec())
    });
    Some((ty.map(str::to_string), body))
}

/// Standard base64 (padding optional); `None` if it is not base64.
fn decode_base64(text: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(text.trim_end_matches('='))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inv(id: &str) -> Invocation {
        Invocation {
            request_id: id.into(),
            deadline_ms: 1,
            invoked_function_arn: "arn".into(),
            trace_id: None,
            client_context: None,
            cognito_identity: None,
            payload: b"{}".to_vec(),
        }
    }

    fn ready_instance() -> Instance {
        let mut i = Instance::new(InstanceId(7));
        let mut ready = false;
        assert_eq!(i.on_next(1, &mut ready), NextOutcome::Parked);
        assert!(ready);
        i
    }

    #[test]
    fn first_next_ends_init_and_parks() {
        let i = ready_instance();
        assert_eq!(i.phase(), Phase::Ready);
        assert_eq!(i.parked(), Some(1));
    }

    #[test]
    fn invoke_answers_parked_next_then_result_then_ready() {
        let mut i = ready_instance();
        let (conn, got) = i.invoke(inv("a")).unwrap().unwrap();
        assert_eq!((conn, got.request_id.as_str()), (1, "a"));
        assert_eq!(i.phase(), Phase::Invoking);
        assert!(matches!(
            i.invoke(inv("b")),
            Err(RuntimeApiError::Busy { .. })
        ));
        i.begin_result(2, "a", Upload::Response).unwrap();
        let ev = i.end_upload(
            2,
            Outcome::Response {
                body: b"r".to_vec(),
                content_type: None,
            },
        );
        assert!(
            matches!(&ev[..], [RuntimeEvent::Response { request_id, .. }] if request_id == "a")
        );
        assert_eq!(i.phase(), Phase::ResultPosted);
        // A second result for the same invocation: 403; an unknown id: 400.
        assert_eq!(
            i.begin_result(2, "a", Upload::InvokeError)
                .unwrap_err()
                .status,
            403
        );
        assert_eq!(
            i.begin_result(2, "zz", Upload::Response)
                .unwrap_err()
                .status,
            400
        );
        // Work queued before the next /next is delivered by it.
        assert_eq!(i.invoke(inv("b")).unwrap(), None);
        assert!(matches!(
            i.invoke(inv("c")),
            Err(RuntimeApiError::AlreadyQueued { .. })
        ));
        let mut ready = false;
        assert!(matches!(i.on_next(1, &mut ready), NextOutcome::Deliver(v) if v.request_id == "b"));
        assert!(ready);
    }

    #[test]
    fn invoke_before_first_next_is_queued() {
        let mut i = Instance::new(InstanceId(1));
        assert_eq!(i.invoke(inv("a")).unwrap(), None);
        let mut ready = false;
        assert!(matches!(i.on_next(3, &mut ready), NextOutcome::Deliver(_)));
        assert!(ready);
        assert!(i.invoke(inv("")).is_err());
    }

    #[test]
    fn next_during_invoke_is_parked_and_counts_after_the_result() {
        let mut i = ready_instance();
        i.invoke(inv("a")).unwrap();
        let mut ready = true;
        assert_eq!(i.on_next(4, &mut ready), NextOutcome::Parked);
        assert!(!ready);
        assert_eq!(i.phase(), Phase::Invoking);
        i.begin_result(5, "a", Upload::InvokeError).unwrap();
        let ev = i.end_upload(
            5,
            Outcome::Error {
                error_type: None,
                body: b"{}".to_vec(),
            },
        );
        assert!(matches!(
            ev[..],
            [RuntimeEvent::InvokeError { .. }, RuntimeEvent::Ready { .. }]
        ));
        assert_eq!(i.phase(), Phase::Ready);
        assert!(i.invoke(inv("b")).unwrap().is_some());
    }

    #[test]
    fn second_concurrent_next_is_refused_until_the_first_is_gone() {
        let mut i = ready_instance();
        let mut ready = false;
        let NextOutcome::Rejected(e) = i.on_next(2, &mut ready) else {
            panic!("not rejected")
        };
        assert_eq!(e.status, 403);
        assert!(i.conn_closed(1).is_empty());
        assert_eq!(i.on_next(2, &mut ready), NextOutcome::Parked);
        assert!(!ready, "already ready: no second Ready");
    }

    #[test]
    fn concurrent_result_uploads_and_truncation() {
        let mut i = ready_instance();
        i.invoke(inv("a")).unwrap();
        i.begin_result(2, "a", Upload::Response).unwrap();
        assert_eq!(
            i.begin_result(3, "a", Upload::Response).unwrap_err().status,
            403
        );
        let ev = i.conn_closed(2);
        let [RuntimeEvent::InvokeError {
            error_type, body, ..
        }] = &ev[..]
        else {
            panic!("{ev:?}")
        };
        assert_eq!(error_type.as_deref(), Some("Runtime.TruncatedResponse"));
        assert!(String::from_utf8_lossy(body).contains("Runtime.TruncatedResponse"));
        assert_eq!(i.phase(), Phase::ResultPosted);
    }

    #[test]
    fn init_error_only_while_initializing() {
        let mut i = Instance::new(InstanceId(1));
        i.begin_init_error(1).unwrap();
        assert_eq!(i.begin_init_error(2).unwrap_err().status, 403);
        let ev = i.end_upload(
            1,
            Outcome::Error {
                error_type: Some("Runtime.ImportModuleError".into()),
                body: b"{}".to_vec(),
            },
        );
        assert!(
            matches!(&ev[..], [RuntimeEvent::InitError { error_type: Some(t), .. }] if t == "Runtime.ImportModuleError")
        );
        assert_eq!(i.phase(), Phase::InitFailed);
        assert!(matches!(
            i.invoke(inv("a")),
            Err(RuntimeApiError::InitFailed(_))
        ));
        let mut ready = false;
        assert!(matches!(i.on_next(1, &mut ready), NextOutcome::Rejected(_)));
        let mut j = ready_instance();
        assert_eq!(j.begin_init_error(2).unwrap_err().status, 403);
    }

    #[test]
    fn too_large_error_upload_fails_the_invocation() {
        let mut i = ready_instance();
        i.invoke(inv("a")).unwrap();
        i.begin_result(2, "a", Upload::InvokeError).unwrap();
        let ev = i.end_upload(2, Outcome::TooLarge);
        assert!(
            matches!(&ev[..], [RuntimeEvent::InvokeError { error_type: Some(t), .. }] if t == "Function.ResponseSizeTooLarge")
        );
    }

    #[test]
    fn stream_error_trailers_and_base64() {
        assert_eq!(decode_base64("e30=").unwrap(), b"{}");
        assert_eq!(decode_base64("aGVsbG8").unwrap(), b"hello");
        assert_eq!(decode_base64("").unwrap(), b"");
        assert!(decode_base64("a").is_none());
        assert!(decode_base64("!!!!").is_none());
        let t = vec![
            (
                "Lambda-Runtime-Function-Error-Type".to_string(),
                b"Runtime.StreamError".to_vec(),
            ),
            (
                "Lambda-Runtime-Function-Error-Body".to_string(),
                b"e30=".to_vec(),
            ),
        ];
        assert_eq!(
            stream_error(&t),
            Some((Some("Runtime.StreamError".into()), b"{}".to_vec()))
        );
        assert_eq!(stream_error(&[]), None);
        assert!(response_mode_ok(None));
        assert!(response_mode_ok(Some("streaming")));
        assert!(!response_mode_ok(Some("buffered")));
    }
}
