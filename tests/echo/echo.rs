//! `hearth-echo`: the smallest useful custom-runtime `bootstrap` — a Lambda Runtime API
//! client in plain `std` that answers every event with the event itself. Built statically,
//! it is the `provided` workload of the benchmarks (what a cold start costs when the
//! function's own start-up is nearly free) and a fixture of the tests.
//!
//! The loop is `hearth bench`'s built-in echo (`src/bench/echo_runtime.rs`, compiled in
//! here as a module, so that the two cannot drift apart) on one keep-alive TCP connection
//! to `AWS_LAMBDA_RUNTIME_API`: always TCP, the transport of the AWS runtime clients, even
//! where the platform also offers `HEARTH_RUNTIME_API_SOCKET`. An event containing
//! `"sleep_ms": N` is answered after N ms. On any protocol surprise it prints why and
//! exits 1, as a runtime should.

use std::process::ExitCode;

// The bootstrap detection of `hearth`'s copy and the Unix-socket connector are not used
// by this binary.
#[allow(dead_code)]
#[path = "../../src/bench/echo_runtime.rs"]
mod echo_runtime;

fn main() -> ExitCode {
    let Ok(api) = std::env::var("AWS_LAMBDA_RUNTIME_API") else {
        eprintln!("hearth-echo: AWS_LAMBDA_RUNTIME_API is not set");
        return ExitCode::from(1);
    };
    match echo_runtime::serve(&api) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hearth-echo: {e}");
            ExitCode::from(1)
        }
    }
}
