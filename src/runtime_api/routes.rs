//! The Runtime API route table: (method, path) → [`RuntimeAction`].
//!
//! Owns: the one `match` that names every endpoint under `/2018-06-01/runtime`. The query string
//! is ignored. Does not: check ids or state (that is [`super::instance`]) or build answers.
//! Unsupported on purpose: the SnapStart `restore` endpoints and the Extensions, Logs and
//! Telemetry APIs, which all route to [`RuntimeAction::NotFound`].

/// What a request asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RuntimeAction {
    /// `GET /2018-06-01/runtime/invocation/next`
    Next,
    /// `POST /2018-06-01/runtime/invocation/{id}/response`
    Response { request_id: String },
    /// `POST /2018-06-01/runtime/invocation/{id}/error`
    InvokeError { request_id: String },
    /// `POST /2018-06-01/runtime/init/error`
    InitError,
    /// A known path with the wrong method.
    MethodNotAllowed { allow: &'static str },
    /// Anything else.
    NotFound,
}

const PREFIX: &str = "/2018-06-01/runtime/";

/// Maps a request line to its action.
pub fn route(method: &str, target: &str) -> RuntimeAction {
    let path = target.split_once('?').map_or(target, |(p, _)| p);
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return RuntimeAction::NotFound;
    };
    let segments: Vec<&str> = rest.split('/').collect();
    match (method, segments.as_slice()) {
        ("GET", ["invocation", "next"]) => RuntimeAction::Next,
        ("POST", ["invocation", id, "response"]) => RuntimeAction::Response {
            request_id: (*id).to_string(),
        },
        ("POST", ["invocation", id, "error"]) => RuntimeAction::InvokeError {
            request_id: (*id).to_string(),
        },
        ("POST", ["init", "error"]) => RuntimeAction::InitError,
        (_, ["invocation", "next"]) => RuntimeAction::MethodNotAllowed { allow: "GET" },
        (_, ["invocation", _, "response" | "error"] | ["init", "error"]) => {
            RuntimeAction::MethodNotAllowed { allow: "POST" }
        }
        _ => RuntimeAction::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_endpoint_routes() {
        assert_eq!(
            route("GET", "/2018-06-01/runtime/invocation/next"),
            RuntimeAction::Next
        );
        assert_eq!(
            route("GET", "/2018-06-01/runtime/invocation/next?x=1"),
            RuntimeAction::Next
        );
        assert_eq!(
            route("POST", "/2018-06-01/runtime/invocation/abc-1/response"),
            RuntimeAction::Response {
                request_id: "abc-1".into()
            }
        );
        assert_eq!(
            route("POST", "/2018-06-01/runtime/invocation//response"),
            RuntimeAction::Response {
                request_id: String::new()
            }
        );
        assert_eq!(
            route("POST", "/2018-06-01/runtime/invocation/abc/error"),
            RuntimeAction::InvokeError {
                request_id: "abc".into()
            }
        );
        assert_eq!(
            route("POST", "/2018-06-01/runtime/init/error"),
            RuntimeAction::InitError
        );
    }

    #[test]
    fn wrong_method_and_unknown_paths() {
        assert_eq!(
            route("POST", "/2018-06-01/runtime/invocation/next"),
            RuntimeAction::MethodNotAllowed { allow: "GET" }
        );
        assert_eq!(
            route("GET", "/2018-06-01/runtime/init/error"),
            RuntimeAction::MethodNotAllowed { allow: "POST" }
        );
        for p in [
            "/",
            "/2018-06-01/runtime/invocation/next/",
            "/2018-06-01/runtime/restore/next",
            "/2020-01-01/extension/register",
            "/2018-06-01/runtime/invocation/a/b/response",
            "/2018-06-01/runtimeinvocation/next",
        ] {
            assert_eq!(route("GET", p), RuntimeAction::NotFound, "{p}");
        }
    }
}
