//! The `hearth` binary. `hearth run` runs one command in a sandbox; `hearth gc` removes
//! Hearth's leftovers. The daemon (`hearth serve`) and the client commands come with their
//! issues.

use clap::Parser;

fn main() -> std::process::ExitCode {
    // Started as a function's `bootstrap`: the built-in echo of `hearth bench`.
    if let Some(code) = hearth::bench::echo_runtime::run_if_bootstrap() {
        return std::process::ExitCode::from(code);
    }
    let cli = match hearth::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return hearth::cli::usage_error(e),
    };
    std::process::ExitCode::from(hearth::cli::main(cli))
}
