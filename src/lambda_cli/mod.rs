//! The `aws lambda`-shaped client subcommands of `hearth` (`create-function`, `invoke`, …):
//! each turns its flags into one control-API request (or a few, for `list-functions`' pages)
//! to the daemon, prints the answer, and returns the exit code. `logs` reads log streams
//! from the state directory directly.
//!
//! Output: a short aligned `Key: value` block (a table for `list-functions`) by default,
//! the daemon's JSON as is with `--output json`. Errors: `hearth: <ErrorType>: <Message>`
//! and exit 1 for the daemon's refusals (and function errors of `invoke`), 2 for bad usage,
//! 125 when the daemon cannot be reached.
//!
//! Not done: the other control operations (list-versions, aliases other than create, …),
//! `--cli-input-json`, profiles, `fileb://` for anything but zips and payloads.

pub mod http;
pub mod logs;
pub mod sign;

use std::io::Write;
use std::path::PathBuf;

use base64::Engine as _;
use clap::{Args, Subcommand, ValueEnum};
use serde_json::{json, Map, Value};

use self::http::{encode, Endpoint, HttpError, Request, Response};
use crate::exit::ExitCode;

/// The role sent when `--role` is not given: Hearth has no IAM, but the API requires one.
pub const DEFAULT_ROLE: &str = "arn:aws:iam::000000000000:role/hearth";

/// Output format of the client subcommands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum OutputFormat {
    /// Aligned `Key: value` lines, or a table.
    #[default]
    Text,
    /// The daemon's JSON, as is.
    Json,
}

/// Options shared by every client subcommand.
#[derive(Debug, Clone, Default, Args)]
pub struct LambdaGlobal {
    /// The daemon: unix:PATH (default $HEARTH_ENDPOINT, else $HEARTH_RUN_DIR/hearth.sock,
    /// else /run/hearth/hearth.sock) or http://HOST:PORT (SigV4-signed with
    /// HEARTH_ACCESS_KEY_ID/HEARTH_SECRET_ACCESS_KEY or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY).
    #[arg(long, global = true, value_name = "unix:PATH|http://HOST:PORT")]
    pub endpoint: Option<String>,
    /// Output format of the client subcommands.
    #[arg(long, global = true, value_enum, default_value_t = OutputFormat::Text)]
    pub output: OutputFormat,
}

/// `--environment Variables={K=V,K2=V2}` (or the JSON `{"Variables": {...}}`).
fn parse_environment(s: &str) -> Result<Map<String, Value>, String> {
    let s = s.trim();
    if s.starts_with('{') {
        let v: Value = serde_json::from_str(s).map_err(|e| format!("not JSON: {e}"))?;
        return match v.get("Variables") {
            Some(Value::Object(m)) if m.values().all(Value::is_string) => Ok(m.clone()),
            _ => Err("JSON must be {\"Variables\": {\"K\": \"V\", ...}}".into()),
        };
    }
    let inner = s
        .strip_prefix("Variables=")
        .and_then(|r| r.strip_prefix('{'))
        .and_then(|r| r.strip_suffix('}'))
        .ok_or_else(|| format!("expected Variables={{K=V,K2=V2}}, got {s:?}"))?;
    let mut out = Map::new();
    for pair in inner.split(',').filter(|p| !p.trim().is_empty()) {
        match pair.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                out.insert(k.trim().to_string(), Value::String(v.to_string()));
            }
            _ => return Err(format!("expected K=V, got {pair:?}")),
        }
    }
    Ok(out)
}

/// `fileb://PATH` (or `file://PATH`) → the path.
fn parse_fileb(s: &str) -> Result<PathBuf, String> {
    s.strip_prefix("fileb://")
        .or_else(|| s.strip_prefix("file://"))
        .filter(|p| !p.is_empty())
        .map(PathBuf::from)
        .ok_or_else(|| format!("expected fileb://PATH, got {s:?}"))
}

fn parse_memory(s: &str) -> Result<u32, String> {
    crate::cli::parse_ranged(s, "memory size", 128, 10_240, "MB").map(|n| n as u32)
}

fn parse_timeout(s: &str) -> Result<u32, String> {
    crate::cli::parse_ranged(s, "timeout", 1, 900, "seconds").map(|n| n as u32)
}

/// How an invocation runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InvocationType {
    #[value(name = "RequestResponse")]
    RequestResponse,
    #[value(name = "Event")]
    Event,
    #[value(name = "DryRun")]
    DryRun,
}

/// `--log-type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogType {
    #[value(name = "None")]
    None,
    #[value(name = "Tail")]
    Tail,
}

/// Options of `create-function`.
#[derive(Debug, Clone, Args)]
pub struct CreateFunctionArgs {
    #[arg(long = "function-name", value_name = "NAME")]
    pub function_name: String,
    /// python3.11, python3.12, nodejs20.x, provided, provided.al2, provided.al2023.
    #[arg(long, value_name = "RUNTIME")]
    pub runtime: String,
    #[arg(long, value_name = "HANDLER")]
    pub handler: String,
    /// The code: fileb://FILE.zip.
    #[arg(long = "zip-file", value_name = "fileb://FILE", value_parser = parse_fileb)]
    pub zip_file: PathBuf,
    #[arg(long = "memory-size", value_name = "MB", value_parser = parse_memory)]
    pub memory_size: Option<u32>,
    #[arg(long, value_name = "SECONDS", value_parser = parse_timeout)]
    pub timeout: Option<u32>,
    /// Variables={K=V,K2=V2}
    #[arg(long, value_name = "Variables={K=V,...}", value_parser = parse_environment)]
    pub environment: Option<Map<String, Value>>,
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
    /// Accepted and stored; Hearth has no IAM.
    #[arg(long, value_name = "ARN", default_value = DEFAULT_ROLE)]
    pub role: String,
    /// Also publish version 1.
    #[arg(long)]
    pub publish: bool,
}

/// Options of `update-function-configuration`.
#[derive(Debug, Clone, Args)]
pub struct UpdateConfigurationArgs {
    #[arg(long = "function-name", value_name = "NAME")]
    pub function_name: String,
    #[arg(long = "memory-size", value_name = "MB", value_parser = parse_memory)]
    pub memory_size: Option<u32>,
    #[arg(long, value_name = "SECONDS", value_parser = parse_timeout)]
    pub timeout: Option<u32>,
    #[arg(long, value_name = "HANDLER")]
    pub handler: Option<String>,
    #[arg(long, value_name = "RUNTIME")]
    pub runtime: Option<String>,
    /// Variables={K=V,K2=V2} (replaces all variables).
    #[arg(long, value_name = "Variables={K=V,...}", value_parser = parse_environment)]
    pub environment: Option<Map<String, Value>>,
    #[arg(long, value_name = "TEXT")]
    pub description: Option<String>,
}

/// Options of `invoke`.
#[derive(Debug, Clone, Args)]
pub struct InvokeArgs {
    #[arg(long = "function-name", value_name = "NAME")]
    pub function_name: String,
    /// A version or alias.
    #[arg(long, value_name = "QUALIFIER")]
    pub qualifier: Option<String>,
    /// The event: JSON text, or fileb://FILE. Default `{}`.
    #[arg(long, value_name = "JSON|fileb://FILE")]
    pub payload: Option<String>,
    #[arg(
        long = "invocation-type",
        value_enum,
        default_value = "RequestResponse"
    )]
    pub invocation_type: InvocationType,
    /// Tail: also print the last 4 KB of the invocation's log.
    #[arg(long = "log-type", value_enum)]
    pub log_type: Option<LogType>,
    /// Base64 of a JSON object, passed to the function as its client context.
    #[arg(long = "client-context", value_name = "BASE64")]
    pub client_context: Option<String>,
    /// Where the response body goes; `-` for stdout (the status then goes to stderr).
    #[arg(value_name = "OUTFILE")]
    pub outfile: String,
}

/// The client subcommands, named and flagged like `aws lambda`'s.
#[derive(Debug, Clone, Subcommand)]
pub enum LambdaCommand {
    /// Create a function from a zip (the daemon must be running: `hearth serve`).
    CreateFunction(CreateFunctionArgs),
    /// Replace a function's code.
    UpdateFunctionCode {
        #[arg(long = "function-name", value_name = "NAME")]
        function_name: String,
        #[arg(long = "zip-file", value_name = "fileb://FILE", value_parser = parse_fileb)]
        zip_file: PathBuf,
        /// Also publish a version.
        #[arg(long)]
        publish: bool,
    },
    /// Change a function's settings.
    UpdateFunctionConfiguration(UpdateConfigurationArgs),
    /// Show a function (or one version or alias of it).
    GetFunction {
        #[arg(long = "function-name", value_name = "NAME")]
        function_name: String,
        #[arg(long, value_name = "QUALIFIER")]
        qualifier: Option<String>,
    },
    /// List functions ($LATEST of each).
    ListFunctions {
        /// Stop after N functions.
        #[arg(long = "max-items", value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        max_items: Option<u32>,
    },
    /// Delete a function, or one version of it.
    DeleteFunction {
        #[arg(long = "function-name", value_name = "NAME")]
        function_name: String,
        #[arg(long, value_name = "VERSION")]
        qualifier: Option<String>,
    },
    /// Invoke a function through the daemon (reached as `hearth invoke` without
    /// `--local`, which shares the subcommand name with the local runner).
    #[command(name = "daemon-invoke", hide = true)]
    Invoke(InvokeArgs),
    /// Publish $LATEST as a new version.
    PublishVersion {
        #[arg(long = "function-name", value_name = "NAME")]
        function_name: String,
        #[arg(long, value_name = "TEXT")]
        description: Option<String>,
    },
    /// Create an alias for a version.
    CreateAlias {
        #[arg(long = "function-name", value_name = "NAME")]
        function_name: String,
        #[arg(long, value_name = "ALIAS")]
        name: String,
        #[arg(long = "function-version", value_name = "VERSION")]
        function_version: String,
        #[arg(long, value_name = "TEXT")]
        description: Option<String>,
    },
    /// Reserve concurrency for a function (0 stops its invocations).
    PutFunctionConcurrency {
        #[arg(long = "function-name", value_name = "NAME")]
        function_name: String,
        #[arg(long = "reserved-concurrent-executions", value_name = "N")]
        reserved_concurrent_executions: u32,
    },
    /// Print a function's log streams from the state directory (no daemon needed).
    Logs(logs::LogsArgs),
}

/// A failure of one subcommand, already worded; `code` is the exit code.
#[derive(Debug)]
struct Failed {
    code: u8,
    message: String,
}

impl Failed {
    fn usage(message: impl Into<String>) -> Failed {
        Failed {
            code: ExitCode::Usage as u8,
            message: message.into(),
        }
    }

    fn hearth(message: impl Into<String>) -> Failed {
        Failed {
            code: ExitCode::HearthFailed as u8,
            message: message.into(),
        }
    }
}

impl From<HttpError> for Failed {
    fn from(e: HttpError) -> Failed {
        match e {
            HttpError::BadEndpoint(_) | HttpError::NoCredentials { .. } => {
                Failed::usage(e.to_string())
            }
            HttpError::Connect {
                endpoint: Endpoint::Unix(ref p),
                ref source,
            } => Failed::hearth(format!(
                "cannot reach the daemon on {}: {source}; `hearth serve` must be running \
                 (or pass --endpoint)",
                p.display()
            )),
            _ => Failed::hearth(e.to_string()),
        }
    }
}

/// Runs one client subcommand; returns the exit code.
pub fn run(cmd: LambdaCommand, global: &LambdaGlobal) -> u8 {
    let result = match cmd {
        LambdaCommand::Logs(args) => logs::run(&args).map_err(|m| Failed {
            code: m.0,
            message: m.1,
        }),
        other => Endpoint::resolve(global.endpoint.as_deref())
            .map_err(Failed::from)
            .and_then(|ep| Client { ep, global }.run(other)),
    };
    match result {
        Ok(code) => code,
        Err(f) => {
            eprintln!("hearth: {}", f.message);
            f.code
        }
    }
}

struct Client<'a> {
    ep: Endpoint,
    global: &'a LambdaGlobal,
}

fn fn_path(prefix: &str, name: &str, rest: &str) -> String {
    format!("/{prefix}/functions/{}{rest}", encode(name))
}

fn read_file(p: &std::path::Path, what: &str) -> Result<Vec<u8>, Failed> {
    std::fs::read(p).map_err(|e| Failed::usage(format!("{what} {}: {e}", p.display())))
}

fn qualifier_query(q: Option<String>) -> Vec<(String, String)> {
    q.map(|q| vec![("Qualifier".to_string(), q)])
        .unwrap_or_default()
}

impl Client<'_> {
    fn call(&self, req: Request) -> Result<Response, Failed> {
        let resp = http::send(&self.ep, &req)?;
        if resp.status >= 300 {
            let body: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
            let kind = resp
                .header("x-amzn-ErrorType")
                .map(|t| t.split(':').next().unwrap_or(t).to_string())
                .or_else(|| body["Type"].as_str().map(str::to_string))
                .unwrap_or_else(|| format!("HTTP {}", resp.status));
            let message = body["Message"]
                .as_str()
                .or_else(|| body["message"].as_str())
                .map(str::to_string)
                .unwrap_or_else(|| String::from_utf8_lossy(&resp.body).trim().to_string());
            return Err(Failed {
                code: ExitCode::FunctionError as u8,
                message: format!("{kind}: {message}"),
            });
        }
        Ok(resp)
    }

    fn json(
        &self,
        method: &'static str,
        path: String,
        query: Vec<(String, String)>,
        body: Option<Value>,
    ) -> Result<Value, Failed> {
        let mut headers = Vec::new();
        let body = match body {
            Some(b) => {
                headers.push(("Content-Type".to_string(), "application/json".to_string()));
                b.to_string().into_bytes()
            }
            None => Vec::new(),
        };
        let resp = self.call(Request {
            method,
            path,
            query,
            headers,
            body,
        })?;
        if resp.body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&resp.body).map_err(|e| {
            Failed::hearth(format!(
                "the daemon at {} answered with invalid JSON: {e}",
                self.ep
            ))
        })
    }

    /// Prints `v` as JSON or with `text`; exit 0.
    fn show(&self, v: &Value, text: impl FnOnce(&Value) -> String) -> u8 {
        let out = match self.global.output {
            OutputFormat::Json => serde_json::to_string_pretty(v).unwrap_or_default() + "\n",
            OutputFormat::Text => text(v),
        };
        print!("{out}");
        let _ = std::io::stdout().flush();
        0
    }

    fn run(&self, cmd: LambdaCommand) -> Result<u8, Failed> {
        use LambdaCommand as C;
        match cmd {
            C::CreateFunction(a) => {
                let zip = read_file(&a.zip_file, "--zip-file")?;
                let mut body = json!({
                    "FunctionName": a.function_name,
                    "Runtime": a.runtime,
                    "Handler": a.handler,
                    "Role": a.role,
                    "Code": {"ZipFile": base64::engine::general_purpose::STANDARD.encode(zip)},
                    "Publish": a.publish,
                });
                set_opt(&mut body, "MemorySize", a.memory_size.map(Value::from));
                set_opt(&mut body, "Timeout", a.timeout.map(Value::from));
                set_opt(&mut body, "Description", a.description.map(Value::from));
                set_opt(
                    &mut body,
                    "Environment",
                    a.environment.map(|m| json!({"Variables": m})),
                );
                let v = self.json("POST", "/2015-03-31/functions".into(), vec![], Some(body))?;
                Ok(self.show(&v, configuration_text))
            }
            C::UpdateFunctionCode {
                function_name,
                zip_file,
                publish,
            } => {
                let zip = read_file(&zip_file, "--zip-file")?;
                let body = json!({
                    "ZipFile": base64::engine::general_purpose::STANDARD.encode(zip),
                    "Publish": publish,
                });
                let path = fn_path("2015-03-31", &function_name, "/code");
                let v = self.json("PUT", path, vec![], Some(body))?;
                Ok(self.show(&v, configuration_text))
            }
            C::UpdateFunctionConfiguration(a) => {
                let mut body = json!({});
                set_opt(&mut body, "MemorySize", a.memory_size.map(Value::from));
                set_opt(&mut body, "Timeout", a.timeout.map(Value::from));
                set_opt(&mut body, "Handler", a.handler.map(Value::from));
                set_opt(&mut body, "Runtime", a.runtime.map(Value::from));
                set_opt(&mut body, "Description", a.description.map(Value::from));
                set_opt(
                    &mut body,
                    "Environment",
                    a.environment.map(|m| json!({"Variables": m})),
                );
                let path = fn_path("2015-03-31", &a.function_name, "/configuration");
                let v = self.json("PUT", path, vec![], Some(body))?;
                Ok(self.show(&v, configuration_text))
            }
            C::GetFunction {
                function_name,
                qualifier,
            } => {
                let path = fn_path("2015-03-31", &function_name, "");
                let v = self.json("GET", path, qualifier_query(qualifier), None)?;
                Ok(self.show(&v, |v| {
                    let mut rows = configuration_rows(&v["Configuration"]);
                    if let Some(l) = v["Code"]["Location"].as_str() {
                        rows.push(("CodeLocation".into(), l.to_string()));
                    }
                    if let Some(n) = v["Concurrency"]["ReservedConcurrentExecutions"].as_u64() {
                        rows.push(("ReservedConcurrency".into(), n.to_string()));
                    }
                    aligned(&rows)
                }))
            }
            C::ListFunctions { max_items } => self.list_functions(max_items),
            C::DeleteFunction {
                function_name,
                qualifier,
            } => {
                let path = fn_path("2015-03-31", &function_name, "");
                self.json("DELETE", path, qualifier_query(qualifier), None)?;
                Ok(0)
            }
            C::Invoke(a) => self.invoke(a),
            C::PublishVersion {
                function_name,
                description,
            } => {
                let mut body = json!({});
                set_opt(&mut body, "Description", description.map(Value::from));
                let path = fn_path("2015-03-31", &function_name, "/versions");
                let v = self.json("POST", path, vec![], Some(body))?;
                Ok(self.show(&v, configuration_text))
            }
            C::CreateAlias {
                function_name,
                name,
                function_version,
                description,
            } => {
                let mut body = json!({"Name": name, "FunctionVersion": function_version});
                set_opt(&mut body, "Description", description.map(Value::from));
                let path = fn_path("2015-03-31", &function_name, "/aliases");
                let v = self.json("POST", path, vec![], Some(body))?;
                Ok(self.show(&v, |v| {
                    scalar_rows_text(
                        v,
                        &[
                            "Name",
                            "AliasArn",
                            "FunctionVersion",
                            "Description",
                            "RevisionId",
                        ],
                    )
                }))
            }
            C::PutFunctionConcurrency {
                function_name,
                reserved_concurrent_executions,
            } => {
                let body = json!({"ReservedConcurrentExecutions": reserved_concurrent_executions});
                let path = fn_path("2017-10-31", &function_name, "/concurrency");
                let v = self.json("PUT", path, vec![], Some(body))?;
                Ok(self.show(&v, |v| {
                    scalar_rows_text(v, &["ReservedConcurrentExecutions"])
                }))
            }
            C::Logs(_) => unreachable!("logs needs no daemon; run() handles it"),
        }
    }

    /// Follows `NextMarker` until the end or `max_items` functions.
    fn list_functions(&self, max_items: Option<u32>) -> Result<u8, Failed> {
        let mut all: Vec<Value> = Vec::new();
        let mut marker: Option<String> = None;
        let mut next_token = None;
        loop {
            let mut query = Vec::new();
            let want = max_items.map(|m| m as usize - all.len());
            if let Some(w) = want {
                query.push(("MaxItems".to_string(), w.min(50).to_string()));
            }
            if let Some(m) = &marker {
                query.push(("Marker".to_string(), m.clone()));
            }
            let v = self.json("GET", "/2015-03-31/functions/".into(), query, None)?;
            if let Some(f) = v["Functions"].as_array() {
                all.extend(f.iter().cloned());
            }
            marker = v["NextMarker"].as_str().map(str::to_string);
            if marker.is_none() {
                break;
            }
            if max_items.is_some_and(|m| all.len() >= m as usize) {
                next_token = marker;
                break;
            }
        }
        let mut v = json!({ "Functions": all });
        if let Some(t) = next_token {
            v["NextToken"] = Value::String(t);
        }
        Ok(self.show(&v, |v| {
            let header = ["NAME", "RUNTIME", "MEMORY", "TIMEOUT", "LAST MODIFIED"];
            let mut rows: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
            for f in v["Functions"].as_array().into_iter().flatten() {
                rows.push(vec![
                    text_of(&f["FunctionName"]),
                    text_of(&f["Runtime"]),
                    text_of(&f["MemorySize"]),
                    text_of(&f["Timeout"]),
                    text_of(&f["LastModified"]),
                ]);
            }
            table(&rows)
        }))
    }

    fn invoke(&self, a: InvokeArgs) -> Result<u8, Failed> {
        let body = match a.payload.as_deref() {
            None => Vec::new(),
            Some(p) => match p
                .strip_prefix("fileb://")
                .or_else(|| p.strip_prefix("file://"))
            {
                Some(f) => read_file(std::path::Path::new(f), "--payload")?,
                None => p.as_bytes().to_vec(),
            },
        };
        let kind = match a.invocation_type {
            InvocationType::RequestResponse => "RequestResponse",
            InvocationType::Event => "Event",
            InvocationType::DryRun => "DryRun",
        };
        let mut headers = vec![
            ("Content-Type".to_string(), "application/json".to_string()),
            ("X-Amz-Invocation-Type".to_string(), kind.to_string()),
        ];
        let tail = a.log_type == Some(LogType::Tail);
        if tail {
            headers.push(("X-Amz-Log-Type".into(), "Tail".into()));
        }
        if let Some(cc) = a.client_context {
            headers.push(("X-Amz-Client-Context".into(), cc));
        }
        let path = fn_path("2015-03-31", &a.function_name, "/invocations");
        let resp = self.call(Request {
            method: "POST",
            path,
            query: qualifier_query(a.qualifier),
            headers,
            body,
        })?;
        if a.outfile == "-" {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(&resp.body);
            if !resp.body.is_empty() && !resp.body.ends_with(b"\n") {
                let _ = out.write_all(b"\n");
            }
            let _ = out.flush();
        } else {
            std::fs::write(&a.outfile, &resp.body)
                .map_err(|e| Failed::usage(format!("writing {}: {e}", a.outfile)))?;
        }
        let mut meta = json!({ "StatusCode": resp.status });
        let function_error = resp.header("X-Amz-Function-Error").map(str::to_string);
        set_opt(
            &mut meta,
            "FunctionError",
            function_error.clone().map(Value::from),
        );
        set_opt(
            &mut meta,
            "LogResult",
            resp.header("X-Amz-Log-Result").map(Value::from),
        );
        set_opt(
            &mut meta,
            "ExecutedVersion",
            resp.header("X-Amz-Executed-Version").map(Value::from),
        );
        let text = match self.global.output {
            OutputFormat::Json => serde_json::to_string_pretty(&meta).unwrap_or_default() + "\n",
            OutputFormat::Text => {
                let mut s =
                    scalar_rows_text(&meta, &["StatusCode", "FunctionError", "ExecutedVersion"]);
                if let Some(b64) = meta["LogResult"].as_str() {
                    let log = base64::engine::general_purpose::STANDARD
                        .decode(b64)
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .unwrap_or_else(|_| format!("(undecodable log result {b64})"));
                    s.push_str("LogResult:\n");
                    s.push_str(&log);
                    if !log.ends_with('\n') {
                        s.push('\n');
                    }
                }
                s
            }
        };
        // With the body on stdout, the status goes to stderr so stdout stays the body.
        if a.outfile == "-" {
            eprint!("{text}");
        } else {
            print!("{text}");
            let _ = std::io::stdout().flush();
        }
        if let Some(e) = function_error {
            let body: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
            let kind = body["errorType"].as_str().unwrap_or(&e);
            let msg = body["errorMessage"]
                .as_str()
                .unwrap_or("the function returned an error");
            eprintln!("hearth: {kind}: {msg}");
            return Ok(ExitCode::FunctionError as u8);
        }
        Ok(0)
    }
}

fn set_opt(obj: &mut Value, key: &str, v: Option<Value>) {
    if let Some(v) = v {
        obj[key] = v;
    }
}

/// A scalar as text (strings without quotes); `-` for absent.
fn text_of(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `Key: value` lines, values aligned.
fn aligned(rows: &[(String, String)]) -> String {
    let w = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0) + 1;
    rows.iter()
        .map(|(k, v)| format!("{:<w$} {v}\n", format!("{k}:")))
        .collect()
}

/// The present members `keys` of `v`, aligned.
fn scalar_rows_text(v: &Value, keys: &[&str]) -> String {
    let rows: Vec<(String, String)> = keys
        .iter()
        .filter(|k| !v[**k].is_null())
        .map(|k| (k.to_string(), text_of(&v[*k])))
        .collect();
    aligned(&rows)
}

/// The interesting members of a `FunctionConfiguration`.
fn configuration_rows(c: &Value) -> Vec<(String, String)> {
    let keys = [
        "FunctionName",
        "FunctionArn",
        "Runtime",
        "Handler",
        "Role",
        "MemorySize",
        "Timeout",
        "CodeSize",
        "CodeSha256",
        "Version",
        "Description",
        "State",
        "LastUpdateStatus",
        "LastModified",
        "RevisionId",
    ];
    let mut rows: Vec<(String, String)> = keys
        .iter()
        .filter(|k| !c[**k].is_null() && c[**k] != "")
        .map(|k| (k.to_string(), text_of(&c[*k])))
        .collect();
    if let Some(vars) = c["Environment"]["Variables"].as_object() {
        let list: Vec<String> = vars
            .iter()
            .map(|(k, v)| format!("{k}={}", text_of(v)))
            .collect();
        rows.push(("Environment".into(), list.join(",")));
    }
    rows
}

fn configuration_text(c: &Value) -> String {
    aligned(&configuration_rows(c))
}

/// Columns padded to their widest cell.
fn table(rows: &[Vec<String>]) -> String {
    let cols = rows.first().map(Vec::len).unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_shorthand_and_json() {
        let m = parse_environment("Variables={A=1,B=x=y}").unwrap();
        assert_eq!(m["A"], "1");
        assert_eq!(m["B"], "x=y");
        assert!(parse_environment("Variables={}").unwrap().is_empty());
        let j = parse_environment(r#"{"Variables": {"K": "v"}}"#).unwrap();
        assert_eq!(j["K"], "v");
        for bad in [
            "A=1",
            "Variables={=1}",
            "Variables={A}",
            r#"{"Variables": {"K": 1}}"#,
        ] {
            assert!(parse_environment(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn fileb_paths() {
        assert_eq!(
            parse_fileb("fileb://f.zip").unwrap(),
            PathBuf::from("f.zip")
        );
        assert!(parse_fileb("f.zip").is_err());
        assert!(parse_fileb("fileb://").is_err());
    }

    #[test]
    fn text_output_is_aligned() {
        let c = json!({"FunctionName": "f", "MemorySize": 128, "Environment": {"Variables": {"A": "1"}}});
        assert_eq!(
            configuration_text(&c),
            "FunctionName: f\nMemorySize:   128\nEnvironment:  A=1\n"
        );
        let t = table(&[
            vec!["NAME".into(), "RUNTIME".into()],
            vec!["longer-name".into(), "python3.12".into()],
        ]);
        assert_eq!(t, "NAME         RUNTIME\nlonger-name  python3.12\n");
    }
}
