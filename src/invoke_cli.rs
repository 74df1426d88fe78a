//! `hearth invoke`: through the daemon like `aws lambda invoke` (see `lambda_cli`), or with
//! `--local` one invocation of a function in a fresh sandbox, without a daemon — the response body on stdout, the invocation's log lines (the function's output
//! between `START` and `REPORT`) on stderr, exit 0 on success and
//! [`ExitCode::FunctionError`] with the `errorType` on a function error.
//!
//! Code comes from a directory (mounted as is) or a zip (unpacked once into the code
//! store under the state directory). Inputs are checked before anything is created: the
//! runtime name, the environment (reserved names refused), the payload (must be JSON, as
//! the Invoke API requires).

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;

use crate::exit::ExitCode;
use crate::function::code::CodeStore;
use crate::function::env;
use crate::function::managed;
use crate::function::runtime::Runtime;
use crate::instance::{
    InstanceConfig, InstanceError, InvokeRequest, InvokeResult, LocalInstance, Outcome,
};
use crate::sandbox::reclaim::{self, Keeper};
use crate::sandbox::{HostPaths, RootSource, SandboxHost};

/// Options of `hearth invoke`.
#[derive(Debug, Args)]
pub struct InvokeArgs {
    /// Run the function in a fresh sandbox of this process instead of through the daemon
    /// (the daemon arrives with `hearth serve`).
    #[arg(long)]
    pub local: bool,
    /// (--local) The function's code: a directory, or a .zip file (≤ 50 MB, ≤ 250 MB
    /// unpacked).
    #[arg(long, value_name = "DIR|ZIP")]
    pub code: Option<PathBuf>,
    /// (--local) provided, provided.al2, provided.al2023, python3.11, python3.12 or
    /// nodejs20.x.
    #[arg(long, value_name = "RUNTIME")]
    pub runtime: Option<String>,
    /// The handler (`module.function` for Python, `file.export` for Node); default
    /// `lambda_function.lambda_handler`, `index.handler`, or `bootstrap` for provided*.
    #[arg(long, value_name = "HANDLER")]
    pub handler: Option<String>,
    /// The function: through the daemon, the one to invoke (name, name:qualifier or ARN);
    /// with --local, the name it runs under (its log group, ARN, environment; default
    /// `local`).
    #[arg(long = "function-name", value_name = "NAME")]
    pub function_name: Option<String>,
    /// (daemon) A version or alias.
    #[arg(long, value_name = "QUALIFIER")]
    pub qualifier: Option<String>,
    /// (daemon) RequestResponse (default), Event or DryRun.
    #[arg(long = "invocation-type", value_name = "TYPE")]
    pub invocation_type: Option<crate::lambda_cli::InvocationType>,
    /// (daemon) Tail: also print the last 4 KB of the invocation's log.
    #[arg(long = "log-type", value_name = "TYPE")]
    pub log_type: Option<crate::lambda_cli::LogType>,
    /// (daemon) Where the response body goes; `-` for stdout.
    #[arg(value_name = "OUTFILE")]
    pub outfile: Option<String>,
    /// Memory in MB (128..=10240).
    #[arg(long, value_name = "MB", default_value_t = 128, value_parser = crate::cli::parse_memory)]
    pub memory: u64,
    /// Timeout in seconds (1..=900).
    #[arg(long, value_name = "SECONDS", default_value_t = 3, value_parser = parse_function_timeout)]
    pub timeout: u64,
    /// How long the function's init phase may take, in seconds (Lambda: 10). Raise it only
    /// on a slow host (an emulated test machine, say).
    #[arg(long = "init-timeout", value_name = "SECONDS", default_value_t = 10, value_parser = parse_init_timeout)]
    pub init_timeout: u64,
    /// Size of /tmp in MB (512..=10240).
    #[arg(long = "tmp-size", value_name = "MB", default_value_t = 512, value_parser = crate::cli::parse_tmp)]
    pub tmp_size: u64,
    /// Environment variable of the function (repeatable).
    #[arg(long = "env", value_name = "K=V", value_parser = parse_user_env)]
    pub env: Vec<(String, String)>,
    /// Client context as the Invoke API takes it: base64 of a JSON object (≤ 3,583
    /// bytes); the function sees it decoded (`context.client_context`).
    #[arg(long = "client-context", value_name = "BASE64")]
    pub client_context: Option<String>,
    /// The event: JSON text, or @FILE / fileb://FILE to read it from a file. Default `{}`.
    #[arg(long, value_name = "JSON|@FILE")]
    pub payload: Option<String>,
    /// A complete root directory (see rootfs/build.sh) instead of the host's binds.
    #[arg(long, value_name = "DIR")]
    pub rootfs: Option<PathBuf>,
    /// Invoke N times in a row on the same instance (the first is cold, the rest warm,
    /// unless --cold); prints only the last response. For measurements.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub repeat: u64,
    /// With --repeat: a fresh instance for every invocation (every one is a cold start).
    #[arg(long)]
    pub cold: bool,
    /// Append one JSON line per invocation (kind, microseconds of the round trip, init
    /// and handler duration) to FILE.
    #[arg(long = "timings-file", value_name = "FILE")]
    pub timings_file: Option<PathBuf>,
    /// Do not copy the log lines to stderr (they stay in the log stream file).
    #[arg(long)]
    pub quiet: bool,
    /// (--local) Start each instance the way the daemon's pre-warmed cold starts do: from
    /// a blank sandbox (made just before), assigned the function. A function whose /tmp
    /// size is not the default takes the ordinary path.
    #[arg(long)]
    pub blank: bool,
}

/// Checks and decodes `X-Amz-Client-Context`: base64 (≤ 3,583 bytes) of a JSON object.
pub fn decode_client_context(b64: &str) -> Result<String, String> {
    use base64::Engine;
    if b64.len() > 3583 {
        return Err(format!(
            "{} bytes of base64 is over the 3583-byte limit",
            b64.len()
        ));
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|e| format!("not base64: {e}"))?;
    let text = String::from_utf8(bytes).map_err(|_| "not UTF-8 once decoded".to_string())?;
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(serde_json::Value::Object(_)) => Ok(text),
        _ => Err("not a JSON object once decoded".to_string()),
    }
}

fn parse_init_timeout(s: &str) -> Result<u64, String> {
    crate::cli::parse_ranged(s, "init timeout", 1, 900, "seconds")
}

fn parse_function_timeout(s: &str) -> Result<u64, String> {
    crate::cli::parse_ranged(s, "timeout", 1, 900, "seconds")
}

fn parse_user_env(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!(
            "environment must be K=V with a non-empty K, got {s:?}"
        )),
    }
}

/// Runs `--repeat` invocations; returns the last result.
fn run_invocations(
    host: &SandboxHost,
    name: &str,
    cfg: &InstanceConfig,
    request: &InvokeRequest,
    args: &InvokeArgs,
) -> Result<InvokeResult, InstanceError> {
    let mut local = LocalInstance::new(host, name, cfg, !args.quiet)?;
    local.use_blanks(args.blank);
    let mut timings = match &args.timings_file {
        Some(path) => Some(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| InstanceError::Setup(format!("{}: {e}", path.display())))?,
        ),
        None => None,
    };
    let mut last = None;
    for i in 0..args.repeat {
        if args.cold && i > 0 {
            local.retire()?;
        }
        let started = Instant::now();
        let result = match local.invoke(request) {
            Ok(r) => r,
            Err(e) => {
                let _ = local.finish();
                return Err(e);
            }
        };
        let round_trip = started.elapsed();
        if let Some(f) = &mut timings {
            let line = serde_json::json!({
                "kind": if result.init_duration.is_some() { "cold" } else { "warm" },
                "round_trip_us": round_trip.as_micros() as u64,
                "init_us": result.init_duration.map(|d| d.as_micros() as u64),
                "duration_us": result.duration.as_micros() as u64,
                "ok": matches!(result.outcome, Outcome::Success { .. }),
            });
            let _ = writeln!(f, "{line}");
        }
        last = Some(result);
    }
    local.finish()?;
    Ok(last.expect("repeat is at least 1"))
}

fn usage(msg: impl std::fmt::Display) -> u8 {
    eprintln!("hearth: {msg}");
    ExitCode::Usage as u8
}

fn fail(msg: impl std::fmt::Display) -> u8 {
    eprintln!("hearth: {msg}");
    ExitCode::HearthFailed as u8
}

/// `hearth invoke` without `--local`: `aws lambda invoke` through the daemon.
fn through_daemon(args: InvokeArgs, global: &crate::lambda_cli::LambdaGlobal) -> u8 {
    if args.code.is_some() || args.runtime.is_some() || args.blank {
        return usage("--code, --runtime and --blank are for --local (a deployed function is invoked by --function-name)");
    }
    let (Some(function_name), Some(outfile)) = (args.function_name, args.outfile) else {
        return usage("invoke needs --function-name NAME and an OUTFILE (or --local; see --help)");
    };
    let cmd = crate::lambda_cli::LambdaCommand::Invoke(crate::lambda_cli::InvokeArgs {
        function_name,
        qualifier: args.qualifier,
        payload: args.payload.map(|p| match p.strip_prefix('@') {
            Some(file) => format!("fileb://{file}"),
            None => p,
        }),
        invocation_type: args
            .invocation_type
            .unwrap_or(crate::lambda_cli::InvocationType::RequestResponse),
        log_type: args.log_type,
        client_context: args.client_context,
        outfile,
    });
    crate::lambda_cli::run(cmd, global)
}

/// `hearth invoke`.
pub fn invoke(args: InvokeArgs, global: &crate::lambda_cli::LambdaGlobal) -> u8 {
    if !args.local {
        return through_daemon(args, global);
    }
    for (given, flag) in [
        (args.qualifier.is_some(), "--qualifier"),
        (args.invocation_type.is_some(), "--invocation-type"),
        (args.log_type.is_some(), "--log-type"),
        (args.outfile.is_some(), "OUTFILE"),
    ] {
        if given {
            return usage(format!(
                "{flag} is for invoking through the daemon, not with --local"
            ));
        }
    }
    let (Some(code), Some(runtime_name)) = (args.code.clone(), args.runtime.clone()) else {
        return usage("invoke --local needs --code DIR|ZIP and --runtime RUNTIME");
    };
    let runtime: Runtime = match runtime_name.parse() {
        Ok(r) => r,
        Err(e) => return usage(e),
    };
    let user_env: BTreeMap<String, String> = args.env.iter().cloned().collect();
    if let Err(e) = env::validate_user_env(&user_env) {
        return usage(e);
    }
    let payload_arg = args.payload.clone().unwrap_or_else(|| "{}".to_string());
    let file = payload_arg
        .strip_prefix('@')
        .or_else(|| payload_arg.strip_prefix("fileb://"));
    let payload = match file {
        Some(file) => match std::fs::read(file) {
            Ok(bytes) => bytes,
            Err(e) => return usage(format!("--payload {payload_arg}: {e}")),
        },
        None => payload_arg.clone().into_bytes(),
    };
    if payload.len() > 6_291_456 {
        return usage(format!(
            "--payload: {} bytes is over the 6291456-byte limit of a synchronous invocation",
            payload.len()
        ));
    }
    if let Err(e) = serde_json::from_slice::<serde_json::Value>(&payload) {
        return usage(format!("--payload is not valid JSON: {e}"));
    }
    let client_context = match &args.client_context {
        None => None,
        Some(b64) => match decode_client_context(b64) {
            Ok(text) => Some(text),
            Err(e) => return usage(format!("--client-context: {e}")),
        },
    };
    if let Some(r) = &args.rootfs {
        if !r.is_dir() {
            return usage(format!("--rootfs {}: no such directory", r.display()));
        }
    }
    let meta = match std::fs::metadata(&code) {
        Ok(m) => m,
        Err(e) => return usage(format!("--code {}: {e}", code.display())),
    };
    if !nix::unistd::geteuid().is_root() {
        return fail(
            "`hearth invoke --local` must run as root (it creates namespaces, cgroups and mounts)",
        );
    }

    let paths = HostPaths::from_env();
    let code_dir = if meta.is_dir() {
        code.clone()
    } else {
        let store = match CodeStore::open(&paths.state_dir.join("local-code")) {
            Ok(s) => s,
            Err(e) => return fail(e),
        };
        match store.import_zip(&code) {
            Ok(c) => c.dir,
            Err(e) => return usage(format!("--code {}: {e}", code.display())),
        }
    };
    let runtimes_dir = match managed::install(&paths.state_dir.join("runtimes")) {
        Ok(d) => d,
        Err(e) => return fail(e),
    };
    let handler = args.handler.clone().unwrap_or_else(|| {
        match runtime {
            Runtime::Python311 | Runtime::Python312 => "lambda_function.lambda_handler",
            Runtime::Nodejs20 => "index.handler",
            _ => "bootstrap",
        }
        .to_string()
    });
    let cfg = InstanceConfig {
        function_name: args
            .function_name
            .clone()
            .unwrap_or_else(|| "local".to_string()),
        version: "$LATEST".to_string(),
        runtime,
        handler,
        memory_mb: args.memory,
        timeout: Duration::from_secs(args.timeout),
        init_limit: Duration::from_secs(args.init_timeout),
        tmp_mb: args.tmp_size,
        env: user_env,
        code_dir,
        root: match &args.rootfs {
            Some(r) => RootSource::Dir(r.clone()),
            None => RootSource::HostBinds,
        },
        region: std::env::var("AWS_REGION").unwrap_or_else(|_| "us-east-1".to_string()),
        account_id: "000000000000".to_string(),
        logs_dir: paths.state_dir.join("logs"),
        runtimes_dir,
        initialization_type: Default::default(),
    };

    let host = match SandboxHost::open(&paths) {
        Ok(h) => h,
        Err(e) => return fail(e),
    };
    host.sweep();
    let name = reclaim::sandbox_name("invoke", None);
    let keeper = match Keeper::start(&host, &name) {
        Ok(k) => k,
        Err(e) => return fail(format!("starting the cleanup keeper: {e}")),
    };
    let request = InvokeRequest {
        payload,
        client_context,
        ..InvokeRequest::default()
    };
    let result = run_invocations(&host, &name, &cfg, &request, &args);
    keeper.dismiss();
    let _ = host.cgroups.remove_parent_if_empty();
    let result = match result {
        Ok(r) => r,
        Err(e) => return fail(e),
    };
    let mut stdout = std::io::stdout().lock();
    match result.outcome {
        Outcome::Success { body, .. } => {
            let _ = stdout.write_all(&body);
            let _ = stdout.write_all(b"\n");
            0
        }
        Outcome::FunctionError {
            payload,
            error_type,
        } => {
            let _ = stdout.write_all(&payload);
            let _ = stdout.write_all(b"\n");
            eprintln!(
                "hearth: function error: {}",
                error_type.as_deref().unwrap_or("Unhandled")
            );
            ExitCode::FunctionError as u8
        }
    }
}
