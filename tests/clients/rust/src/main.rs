//! Echo function on the real `lambda_runtime` client: answers `{"echo": <event>}`, or fails
//! (the client then POSTs `/error`) when the event has `"fail": true`.

use lambda_runtime::{service_fn, Diagnostic, LambdaEvent};
use serde_json::{json, Value};

/// A named error type, so the test can check the client's `errorType` exactly instead of a
/// compiler-generated type name.
#[derive(Debug)]
struct EchoFailure;

impl From<EchoFailure> for Diagnostic {
    fn from(_: EchoFailure) -> Diagnostic {
        Diagnostic {
            error_type: "EchoFailure".into(),
            error_message: "requested failure".into(),
        }
    }
}

async fn handler(event: LambdaEvent<Value>) -> Result<Value, EchoFailure> {
    let (payload, _ctx) = event.into_parts();
    if payload.get("fail") == Some(&Value::Bool(true)) {
        // Also goes to the log stream, between START and END.
        eprintln!("failing on request");
        return Err(EchoFailure);
    }
    Ok(json!({ "echo": payload }))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(service_fn(handler)).await
}
