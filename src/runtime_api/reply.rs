//! The bytes of every Runtime API answer.
//!
//! Owns: status lines, the `/next` header block of spec §2.1, the `202 {"status":"OK"}` answer
//! and the JSON error answers with RIE's error types and messages. Every answer carries
//! `Content-Type` and `Content-Length`, and `Connection: close` when the connection ends after it.
//! Does not: decide which answer a request gets (that is [`super::instance`] and the server).
//! Header values taken from an [`Invocation`] have control characters replaced by spaces, since a
//! CR or LF there would split the header block.

use std::borrow::Cow;

use super::Invocation;

/// Sent at once when a request carries `Expect: 100-continue`.
pub const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Largest `/response` body (6 MiB + 100 bytes, as RIE).
pub const MAX_RESPONSE_BODY: usize = 6_291_556;
/// Largest `/error` and `/init/error` body.
pub const MAX_ERROR_BODY: usize = 1024 * 1024;

const ACCEPTED_BODY: &[u8] = br#"{"status":"OK"}"#;

fn reason(status: u16) -> &'static str {
    // Reason phrases as Go's net/http writes them, since RIE is what runtimes are tested against.
    match status {
        200 => "OK",
        202 => "Accepted",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Request Entity Too Large",
        _ => "Internal Server Error",
    }
}

fn status_line(out: &mut Vec<u8>, status: u16) {
    out.extend_from_slice(format!("HTTP/1.1 {status} {}\r\n", reason(status)).as_bytes());
}

fn header(out: &mut Vec<u8>, name: &str, value: &str) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value.as_bytes());
    out.extend_from_slice(b"\r\n");
}

fn end_head(out: &mut Vec<u8>, content_length: usize, close: bool) {
    header(out, "Content-Length", &content_length.to_string());
    if close {
        header(out, "Connection", "close");
    }
    out.extend_from_slice(b"\r\n");
}

/// `202 Accepted` with `{"status":"OK"}`.
pub fn accepted(close: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(128);
    status_line(&mut out, 202);
    header(&mut out, "Content-Type", "application/json");
    end_head(&mut out, ACCEPTED_BODY.len(), close);
    out.extend_from_slice(ACCEPTED_BODY);
    out
}

/// Replaces control characters (other than tab) so a value cannot end its header line.
pub fn header_value(value: &str) -> Cow<'_, str> {
    if value.chars().any(|c| c.is_control() && c != '\t') {
        Cow::Owned(
            value
                .chars()
                .map(|c| if c.is_control() && c != '\t' { ' ' } else { c })
                .collect(),
        )
    } else {
        Cow::Borrowed(value)
    }
}

/// The head of the `200 OK` answer to `/next`; the payload follows it unmodified.
pub fn next_head(inv: &Invocation, close: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(512);
    status_line(&mut out, 200);
    // Exactly this value: awslambdaric decodes the event only on an exact match, and crashes
    // without any Content-Type at all.
    header(&mut out, "Content-Type", "application/json");
    header(
        &mut out,
        "Lambda-Runtime-Aws-Request-Id",
        &header_value(&inv.request_id),
    );
    header(
        &mut out,
        "Lambda-Runtime-Deadline-Ms",
        &inv.deadline_ms.to_string(),
    );
    let optional = [
        (
            "Lambda-Runtime-Invoked-Function-Arn",
            Some(inv.invoked_function_arn.as_str()),
        ),
        ("Lambda-Runtime-Trace-Id", inv.trace_id.as_deref()),
        (
            "Lambda-Runtime-Client-Context",
            inv.client_context.as_deref(),
        ),
        (
            "Lambda-Runtime-Cognito-Identity",
            inv.cognito_identity.as_deref(),
        ),
    ];
    for (name, value) in optional {
        match value.map(header_value) {
            Some(v) if !v.trim().is_empty() => header(&mut out, name, &v),
            _ => {}
        }
    }
    end_head(&mut out, inv.payload.len(), close);
    out
}

/// A JSON error answer, with RIE's error types.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub error_type: &'static str,
    pub message: String,
    /// `Allow` header value for 405.
    pub allow: Option<&'static str>,
}

impl ApiError {
    fn new(status: u16, error_type: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            error_type,
            message: message.into(),
            allow: None,
        }
    }

    pub fn invalid_request_id() -> Self {
        Self::new(400, "InvalidRequestID", "Invalid request ID")
    }

    pub fn invalid_response_mode() -> Self {
        Self::new(
            400,
            "InvalidFunctionResponseMode",
            "Invalid function response mode",
        )
    }

    pub fn truncated() -> Self {
        Self::new(
            400,
            "TruncatedHTTPRequest",
            "HTTP request detected as truncated",
        )
    }

    /// A request the parser could not frame.
    pub fn bad_request(detail: &str) -> Self {
        Self::new(
            400,
            "InvalidHTTPRequest",
            format!("Malformed request: {detail}"),
        )
    }

    pub fn invalid_state(from: &str, to: &str) -> Self {
        Self::new(
            403,
            "InvalidStateTransition",
            format!(
                "State transition from {from} to {to} failed for runtime. \
                 Error: State transition is not allowed"
            ),
        )
    }

    pub fn too_large(limit: usize) -> Self {
        Self::new(
            413,
            "RequestEntityTooLarge",
            format!("Exceeded maximum allowed payload size ({limit} bytes)."),
        )
    }

    pub fn not_found() -> Self {
        Self::new(404, "NotFound", "Not Found")
    }

    pub fn method_not_allowed(allow: &'static str) -> Self {
        Self {
            allow: Some(allow),
            ..Self::new(405, "MethodNotAllowed", "Method Not Allowed")
        }
    }

    /// The full answer.
    pub fn to_bytes(&self, close: bool) -> Vec<u8> {
        let body = error_json(&self.message, self.error_type);
        let mut out = Vec::with_capacity(256 + body.len());
        status_line(&mut out, self.status);
        header(&mut out, "Content-Type", "application/json");
        if let Some(allow) = self.allow {
            header(&mut out, "Allow", allow);
        }
        end_head(&mut out, body.len(), close);
        out.extend_from_slice(&body);
        out
    }
}

/// `{"errorMessage":...,"errorType":...}`, properly escaped.
pub fn error_json(message: &str, error_type: &str) -> Vec<u8> {
    serde_json::json!({ "errorMessage": message, "errorType": error_type })
        .to_string()
        .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(b: &[u8]) -> &str {
        std::str::from_utf8(b).unwrap()
    }

    #[test]
    fn accepted_is_exact() {
        assert_eq!(
            text(&accepted(false)),
            "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\n\
             Content-Length: 15\r\n\r\n{\"status\":\"OK\"}"
        );
        assert!(text(&accepted(true)).contains("\r\nConnection: close\r\n\r\n"));
    }

    #[test]
    fn next_head_has_spec_headers_and_omits_empty_ones() {
        let inv = Invocation {
            request_id: "id-1".into(),
            deadline_ms: 1_700_000_000_123,
            invoked_function_arn: "arn:aws:lambda:us-east-1:000000000000:function:f:1".into(),
            trace_id: Some(String::new()),
            client_context: Some("{\"a\":\r\n1}".into()),
            cognito_identity: None,
            payload: b"{}".to_vec(),
        };
        let h = String::from_utf8(next_head(&inv, false)).unwrap();
        assert_eq!(
            h,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
             Lambda-Runtime-Aws-Request-Id: id-1\r\n\
             Lambda-Runtime-Deadline-Ms: 1700000000123\r\n\
             Lambda-Runtime-Invoked-Function-Arn: arn:aws:lambda:us-east-1:000000000000:function:f:1\r\n\
             Lambda-Runtime-Client-Context: {\"a\":  1}\r\n\
             Content-Length: 2\r\n\r\n"
        );
    }

    #[test]
    fn error_answers_are_json() {
        let b = ApiError::invalid_request_id().to_bytes(false);
        assert_eq!(
            text(&b),
            "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: 68\r\n\r\n\
             {\"errorMessage\":\"Invalid request ID\",\"errorType\":\"InvalidRequestID\"}"
        );
        let b = ApiError::method_not_allowed("GET").to_bytes(true);
        assert!(text(&b).starts_with("HTTP/1.1 405 Method Not Allowed\r\n"));
        assert!(text(&b).contains("\r\nAllow: GET\r\n"));
        let b = ApiError::too_large(MAX_RESPONSE_BODY).to_bytes(false);
        assert!(text(&b).contains("Exceeded maximum allowed payload size (6291556 bytes)."));
    }
}
