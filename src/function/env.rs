//! The environment variables a function's bootstrap starts with (runtime-api.md §4).
//!
//! Owns the reserved variables Lambda sets (names, values, formats), the unreserved defaults a
//! user may override, the checks on a user's `Environment.Variables` (names, reserved keys, the
//! 4 KB limit, with AWS's messages), and the log group and log stream names.
//!
//! Does not: pass the environment to a process (the sandbox plan does), set `_X_AMZN_TRACE_ID`
//! (per invoke; managed runtimes take it from the `Lambda-Runtime-Trace-Id` header), or set the
//! variables that would switch real runtime clients into modes Hearth does not implement
//! (`_LAMBDA_TELEMETRY_LOG_FD`, `_LAMBDA_TELEMETRY_LOG_FD_PROVIDER_SOCKET`,
//! `AWS_LAMBDA_MAX_CONCURRENCY`); users may not set those either.
//!
//! Deliberate difference from the spec table: `TZ` is set to `:UTC` but, as in Lambda's current
//! documentation, users may override it (it is not refused as reserved).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

use super::runtime::Runtime;

/// `AWS_LAMBDA_RUNTIME_API` inside every sandbox (its own network namespace).
pub const DEFAULT_RUNTIME_API: &str = "127.0.0.1:9001";
/// Hearth's extra variable: path of the Runtime API's Unix socket, for custom bootstraps.
pub const HEARTH_RUNTIME_API_SOCKET: &str = "HEARTH_RUNTIME_API_SOCKET";
/// Largest user environment, measured as the compact JSON of the map, in bytes.
pub const MAX_USER_ENV_BYTES: usize = 4096;

/// Keys a user may not set: Lambda's reserved variables, Hearth's own, and the ones that would
/// switch runtime clients into modes Hearth does not implement.
pub const RESERVED_KEYS: &[&str] = &[
    "_HANDLER",
    "_X_AMZN_TRACE_ID",
    "AWS_DEFAULT_REGION",
    "AWS_REGION",
    "AWS_EXECUTION_ENV",
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_INITIALIZATION_TYPE",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_ACCESS_KEY",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_LAMBDA_RUNTIME_API",
    "LAMBDA_TASK_ROOT",
    "LAMBDA_RUNTIME_DIR",
    HEARTH_RUNTIME_API_SOCKET,
    "_LAMBDA_TELEMETRY_LOG_FD",
    "_LAMBDA_TELEMETRY_LOG_FD_PROVIDER_SOCKET",
    "AWS_LAMBDA_MAX_CONCURRENCY",
];

/// `PATH` default (Lambda's value).
const DEFAULT_PATH: &str = "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin";
/// `LD_LIBRARY_PATH` default (Lambda's value).
const DEFAULT_LD_LIBRARY_PATH: &str = "/var/lang/lib:/lib64:/usr/lib64:/var/runtime:\
/var/runtime/lib:/var/task:/var/task/lib:/opt/lib";
/// `NODE_PATH` default of the Node.js 20 runtime (Lambda's value).
const DEFAULT_NODE_PATH: &str = "/opt/nodejs/node20/node_modules:/opt/nodejs/node_modules:\
/var/runtime/node_modules:/var/runtime:/var/task";

/// Errors of environment checks. `Reserved` and `TooLarge` carry Lambda's exact messages, which
/// the control API returns as `InvalidParameterValueException`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    /// A key does not match `[a-zA-Z]([a-zA-Z0-9_])+`.
    #[error("environment variable name {key:?} is invalid: it must match [a-zA-Z]([a-zA-Z0-9_])+")]
    InvalidName { key: String },
    /// Keys that only the platform may set (sorted, comma-separated in the message).
    #[error(
        "Lambda was unable to configure your environment variables because the environment \
         variables you have provided contains reserved keys that are currently not supported \
         for modification. Reserved keys used in this request: {}",
        keys.join(",")
    )]
    Reserved { keys: Vec<String> },
    /// The compact JSON of the map is over 4 KB.
    #[error(
        "Lambda was unable to configure your environment variables because the environment \
         variables you have provided exceeded the 4KB limit. String measured: {measured}"
    )]
    TooLarge { size: usize, measured: String },
    /// A value contains a NUL byte, which no process environment can hold.
    #[error("environment variable {key:?} has a nul byte in its value")]
    NulInValue { key: String },
}

/// How the instance was started (`AWS_LAMBDA_INITIALIZATION_TYPE`). `snap-start` is
/// deliberately absent: it makes clients call restore endpoints Hearth does not serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum InitializationType {
    /// `on-demand`.
    #[default]
    OnDemand,
    /// `provisioned-concurrency`.
    ProvisionedConcurrency,
}

impl InitializationType {
    /// The variable's value.
    pub fn as_str(self) -> &'static str {
        match self {
            InitializationType::OnDemand => "on-demand",
            InitializationType::ProvisionedConcurrency => "provisioned-concurrency",
        }
    }
}

/// Everything the reserved variables are made of, for one instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvSpec {
    /// Function name (not the ARN).
    pub function_name: String,
    /// `$LATEST` or a version number (`"1"`, `"2"`, …).
    pub version: String,
    /// Configured memory, in MB.
    pub memory_mb: u32,
    /// The function's `Handler`.
    pub handler: String,
    pub runtime: Runtime,
    /// Region name, e.g. `us-east-1`.
    pub region: String,
    pub initialization_type: InitializationType,
    /// See [`log_stream_name`].
    pub log_stream_name: String,
    /// Execution-role credentials: (access key id, secret access key, session token).
    pub credentials: Option<(String, String, String)>,
    /// `host:port` of the Runtime API; [`DEFAULT_RUNTIME_API`] normally.
    pub runtime_api: String,
    /// Path of the Runtime API's Unix socket inside the sandbox, if offered.
    pub runtime_api_socket: Option<String>,
}

impl EnvSpec {
    /// A spec with the usual defaults: on-demand, a fresh log stream name for now, no
    /// credentials, the Runtime API at [`DEFAULT_RUNTIME_API`], no Unix socket.
    pub fn new(
        function_name: &str,
        version: &str,
        memory_mb: u32,
        handler: &str,
        runtime: Runtime,
        region: &str,
    ) -> EnvSpec {
        EnvSpec {
            function_name: function_name.to_owned(),
            version: version.to_owned(),
            memory_mb,
            handler: handler.to_owned(),
            runtime,
            region: region.to_owned(),
            initialization_type: InitializationType::OnDemand,
            log_stream_name: log_stream_name(version, SystemTime::now()),
            credentials: None,
            runtime_api: DEFAULT_RUNTIME_API.to_owned(),
            runtime_api_socket: None,
        }
    }
}

/// The bootstrap's whole environment: reserved variables, then the unreserved defaults the user
/// did not override, then the user's variables (in key order). Each key appears once.
pub fn build(
    spec: &EnvSpec,
    user: &BTreeMap<String, String>,
) -> Result<Vec<(String, String)>, EnvError> {
    // Checked again here, not only at configuration time: fail closed on stored data.
    validate_user_env(user)?;
    let mut env: Vec<(String, String)> = Vec::with_capacity(32 + user.len());
    let mut set = |k: &str, v: &str| env.push((k.to_owned(), v.to_owned()));
    set("_HANDLER", &spec.handler);
    set("AWS_LAMBDA_RUNTIME_API", &spec.runtime_api);
    set("AWS_LAMBDA_FUNCTION_NAME", &spec.function_name);
    set("AWS_LAMBDA_FUNCTION_VERSION", &spec.version);
    set(
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        &spec.memory_mb.to_string(),
    );
    set(
        "AWS_LAMBDA_LOG_GROUP_NAME",
        &log_group_name(&spec.function_name),
    );
    set("AWS_LAMBDA_LOG_STREAM_NAME", &spec.log_stream_name);
    set("AWS_REGION", &spec.region);
    set("AWS_DEFAULT_REGION", &spec.region);
    if let Some(exec_env) = spec.runtime.execution_env() {
        set("AWS_EXECUTION_ENV", &exec_env);
    }
    set(
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        spec.initialization_type.as_str(),
    );
    set("LAMBDA_TASK_ROOT", "/var/task");
    set("LAMBDA_RUNTIME_DIR", "/var/runtime");
    if let Some((key, secret, token)) = &spec.credentials {
        set("AWS_ACCESS_KEY", key);
        set("AWS_ACCESS_KEY_ID", key);
        set("AWS_SECRET_ACCESS_KEY", secret);
        set("AWS_SESSION_TOKEN", token);
    }
    if let Some(socket) = &spec.runtime_api_socket {
        set(HEARTH_RUNTIME_API_SOCKET, socket);
    }

    let mut defaults = vec![
        ("LANG", "en_US.UTF-8"),
        ("PATH", DEFAULT_PATH),
        ("LD_LIBRARY_PATH", DEFAULT_LD_LIBRARY_PATH),
        // Real environments show `:UTC` (the docs say `UTC`); glibc reads both as UTC.
        ("TZ", ":UTC"),
    ];
    match spec.runtime {
        Runtime::Python311 | Runtime::Python312 => defaults.push(("PYTHONPATH", "/var/runtime")),
        Runtime::Nodejs20 => defaults.push(("NODE_PATH", DEFAULT_NODE_PATH)),
        Runtime::Provided | Runtime::ProvidedAl2 | Runtime::ProvidedAl2023 => {}
    }
    for (k, v) in defaults {
        if !user.contains_key(k) {
            set(k, v);
        }
    }
    for (k, v) in user {
        set(k, v);
    }
    Ok(env)
}

/// Checks a user's `Environment.Variables`: names, then reserved keys, then NUL bytes, then the
/// 4 KB limit on the compact JSON of the map (how Lambda measures it).
pub fn validate_user_env(user: &BTreeMap<String, String>) -> Result<(), EnvError> {
    if let Some(key) = user.keys().find(|k| !valid_name(k)) {
        return Err(EnvError::InvalidName { key: key.clone() });
    }
    let reserved: Vec<String> = user
        .keys()
        .filter(|k| RESERVED_KEYS.contains(&k.as_str()))
        .cloned()
        .collect();
    if !reserved.is_empty() {
        return Err(EnvError::Reserved { keys: reserved });
    }
    if let Some(key) = user.iter().find(|(_, v)| v.contains('\0')).map(|(k, _)| k) {
        return Err(EnvError::NulInValue { key: key.clone() });
    }
    // Serialising a map of strings cannot fail.
    let measured = serde_json::to_string(user).unwrap_or_default();
    if measured.len() > MAX_USER_ENV_BYTES {
        return Err(EnvError::TooLarge {
            size: measured.len(),
            measured,
        });
    }
    Ok(())
}

/// `[a-zA-Z]([a-zA-Z0-9_])+`: a letter, then at least one letter, digit or underscore.
fn valid_name(key: &str) -> bool {
    let b = key.as_bytes();
    b.len() >= 2
        && b[0].is_ascii_alphabetic()
        && b[1..]
            .iter()
            .all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// `/aws/lambda/<function name>`.
pub fn log_group_name(function_name: &str) -> String {
    format!("/aws/lambda/{function_name}")
}

/// `YYYY/MM/DD/[<version>]<32 lower-case hex>`, the date in UTC, e.g.
/// `2024/01/28/[$LATEST]9971b1b6a3c54e0c8b7d2a4f5e6c221b`.
pub fn log_stream_name(version: &str, now: SystemTime) -> String {
    let secs = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (y, m, d) = civil_from_days((secs / 86_400) as i64);
    format!("{y:04}/{m:02}/{d:02}/[{version}]{}", random_hex32())
}

/// `2024-01-28T12:34:56.789Z`: the UTC timestamp of Lambda's platform log lines.
pub fn iso8601_utc(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (y, m, day) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// A random (version 4) UUID in its canonical form, for request ids.
pub fn uuid_v4() -> String {
    let mut hex: Vec<u8> = random_hex32().into_bytes();
    hex[12] = b'4';
    hex[16] = b"89ab"[usize::from(hex[16] % 4)];
    let h = String::from_utf8(hex).unwrap_or_default();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Converts days since 1970-01-01 to a proleptic Gregorian (year, month, day), using
/// Howard Hinnant's `civil_from_days` (eras of 400 years, March-based years).
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, 0..=146096
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // 0..=399
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of (March-based) year, 0..=365
    let mp = (5 * doy + 2) / 153; // March = 0
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// 16 random bytes as 32 hex digits, from `/dev/urandom`. The name only needs to be unique, so
/// if the device is unavailable a hash of time, pid and a counter stands in.
pub fn random_hex32() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut bytes = [0u8; 16];
    let read = File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if read.is_err() {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let mut h = Sha256::new();
        h.update(nanos.to_le_bytes());
        h.update(std::process::id().to_le_bytes());
        h.update(COUNTER.fetch_add(1, Ordering::Relaxed).to_le_bytes());
        bytes.copy_from_slice(&h.finalize()[..16]);
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn spec(runtime: Runtime) -> EnvSpec {
        let mut s = EnvSpec::new("my-fn", "$LATEST", 256, "app.handler", runtime, "eu-west-1");
        s.log_stream_name = "2024/01/28/[$LATEST]0123456789abcdef0123456789abcdef".into();
        s
    }

    fn get<'a>(env: &'a [(String, String)], key: &str) -> Option<&'a str> {
        let mut found = env.iter().filter(|(k, _)| k == key);
        let first = found.next().map(|(_, v)| v.as_str());
        assert!(found.next().is_none(), "{key} appears twice");
        first
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn reserved_variables_for_a_managed_runtime() {
        let mut s = spec(Runtime::Python312);
        s.credentials = Some(("AKID".into(), "SECRET".into(), "TOKEN".into()));
        let env = build(&s, &BTreeMap::new()).unwrap();
        let expect = [
            ("_HANDLER", "app.handler"),
            ("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001"),
            ("AWS_LAMBDA_FUNCTION_NAME", "my-fn"),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
            ("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/my-fn"),
            (
                "AWS_LAMBDA_LOG_STREAM_NAME",
                "2024/01/28/[$LATEST]0123456789abcdef0123456789abcdef",
            ),
            ("AWS_REGION", "eu-west-1"),
            ("AWS_DEFAULT_REGION", "eu-west-1"),
            ("AWS_EXECUTION_ENV", "AWS_Lambda_python3.12"),
            ("AWS_LAMBDA_INITIALIZATION_TYPE", "on-demand"),
            ("LAMBDA_TASK_ROOT", "/var/task"),
            ("LAMBDA_RUNTIME_DIR", "/var/runtime"),
            ("AWS_ACCESS_KEY", "AKID"),
            ("AWS_ACCESS_KEY_ID", "AKID"),
            ("AWS_SECRET_ACCESS_KEY", "SECRET"),
            ("AWS_SESSION_TOKEN", "TOKEN"),
            ("LANG", "en_US.UTF-8"),
            (
                "PATH",
                "/var/lang/bin:/usr/local/bin:/usr/bin/:/bin:/opt/bin",
            ),
            (
                "LD_LIBRARY_PATH",
                "/var/lang/lib:/lib64:/usr/lib64:/var/runtime:/var/runtime/lib:/var/task:\
                 /var/task/lib:/opt/lib",
            ),
            ("TZ", ":UTC"),
            ("PYTHONPATH", "/var/runtime"),
        ];
        let got: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert_eq!(got, expect);
    }

    #[test]
    fn custom_runtime_has_no_execution_env_and_never_the_forbidden_ones() {
        let mut s = spec(Runtime::ProvidedAl2023);
        s.initialization_type = InitializationType::ProvisionedConcurrency;
        s.runtime_api_socket = Some("/run/hearth/runtime.sock".into());
        s.version = "7".into();
        let env = build(&s, &BTreeMap::new()).unwrap();
        assert_eq!(get(&env, "AWS_EXECUTION_ENV"), None);
        assert_eq!(get(&env, "PYTHONPATH"), None);
        assert_eq!(get(&env, "AWS_ACCESS_KEY_ID"), None);
        assert_eq!(get(&env, "AWS_LAMBDA_FUNCTION_VERSION"), Some("7"));
        assert_eq!(
            get(&env, "AWS_LAMBDA_INITIALIZATION_TYPE"),
            Some("provisioned-concurrency")
        );
        assert_eq!(
            get(&env, "HEARTH_RUNTIME_API_SOCKET"),
            Some("/run/hearth/runtime.sock")
        );
        for never in [
            "_X_AMZN_TRACE_ID",
            "_LAMBDA_TELEMETRY_LOG_FD",
            "_LAMBDA_TELEMETRY_LOG_FD_PROVIDER_SOCKET",
            "AWS_LAMBDA_MAX_CONCURRENCY",
        ] {
            assert_eq!(get(&env, never), None, "{never}");
        }
        let node = build(&spec(Runtime::Nodejs20), &BTreeMap::new()).unwrap();
        assert_eq!(
            get(&node, "AWS_EXECUTION_ENV"),
            Some("AWS_Lambda_nodejs20.x")
        );
        assert!(get(&node, "NODE_PATH")
            .unwrap()
            .starts_with("/opt/nodejs/node20/"));
    }

    #[test]
    fn user_variables_override_defaults_and_come_last() {
        let user = map(&[
            ("PATH", "/custom/bin"),
            ("TZ", "Asia/Tokyo"),
            ("MY_VAR", "x=1"),
        ]);
        let env = build(&spec(Runtime::Provided), &user).unwrap();
        assert_eq!(get(&env, "PATH"), Some("/custom/bin"));
        assert_eq!(get(&env, "TZ"), Some("Asia/Tokyo"));
        assert_eq!(get(&env, "LANG"), Some("en_US.UTF-8"));
        let tail: Vec<&str> = env[env.len() - 3..]
            .iter()
            .map(|(k, _)| k.as_str())
            .collect();
        assert_eq!(tail, ["MY_VAR", "PATH", "TZ"]);
    }

    #[test]
    fn reserved_keys_are_refused_with_lambdas_message() {
        let user = map(&[
            ("AWS_REGION", "x"),
            ("FOO", "1"),
            ("AWS_ACCESS_KEY_ID", "k"),
        ]);
        let err = validate_user_env(&user).unwrap_err();
        assert_eq!(
            err.to_string(),
            "Lambda was unable to configure your environment variables because the environment \
             variables you have provided contains reserved keys that are currently not supported \
             for modification. Reserved keys used in this request: AWS_ACCESS_KEY_ID,AWS_REGION"
        );
        for key in [
            "HEARTH_RUNTIME_API_SOCKET",
            "AWS_LAMBDA_MAX_CONCURRENCY",
            "LAMBDA_TASK_ROOT",
        ] {
            assert!(
                matches!(
                    validate_user_env(&map(&[(key, "v")])),
                    Err(EnvError::Reserved { .. })
                ),
                "{key}"
            );
        }
        assert!(build(&spec(Runtime::Provided), &user).is_err());
        // Unreserved ones are fine.
        let ok = map(&[
            ("LANG", "C"),
            ("LD_LIBRARY_PATH", "/x"),
            ("TZ", "UTC"),
            ("NODE_PATH", "/n"),
        ]);
        assert_eq!(validate_user_env(&ok), Ok(()));
    }

    #[test]
    fn names_must_match_the_pattern() {
        for bad in [
            "", "A", "1ABC", "_HANDLER", "MY-VAR", "MY VAR", "ÄBC", "A.B",
        ] {
            assert!(
                matches!(
                    validate_user_env(&map(&[(bad, "v")])),
                    Err(EnvError::InvalidName { .. })
                ),
                "{bad:?}"
            );
        }
        for good in ["ab", "A1", "a_", "Foo_Bar_9"] {
            assert_eq!(validate_user_env(&map(&[(good, "v")])), Ok(()), "{good}");
        }
        let err = validate_user_env(&map(&[("1X", "v")])).unwrap_err();
        assert!(err.to_string().contains("\"1X\""), "{err}");
    }

    #[test]
    fn nul_in_value_is_refused() {
        let err = validate_user_env(&map(&[("KEY", "a\0b")])).unwrap_err();
        assert_eq!(err, EnvError::NulInValue { key: "KEY".into() });
    }

    #[test]
    fn size_limit_is_on_the_compact_json() {
        // {"K":"<v>"} is 8 bytes plus the value.
        let fits = "v".repeat(MAX_USER_ENV_BYTES - 8);
        assert_eq!(validate_user_env(&map(&[("K1", &fits[1..])])), Ok(()));
        let over = map(&[("K1", &fits)]);
        let err = validate_user_env(&over).unwrap_err();
        let measured = format!("{{\"K1\":\"{fits}\"}}");
        assert_eq!(measured.len(), MAX_USER_ENV_BYTES + 1);
        assert_eq!(
            err,
            EnvError::TooLarge {
                size: MAX_USER_ENV_BYTES + 1,
                measured: measured.clone()
            }
        );
        assert_eq!(
            err.to_string(),
            format!(
                "Lambda was unable to configure your environment variables because the \
                 environment variables you have provided exceeded the 4KB limit. String \
                 measured: {measured}"
            )
        );
        // Escapes count: a quote is two bytes in JSON.
        let quotes = "\"".repeat((MAX_USER_ENV_BYTES - 8) / 2 + 1);
        assert!(matches!(
            validate_user_env(&map(&[("K1", &quotes)])),
            Err(EnvError::TooLarge { .. })
        ));
    }

    #[test]
    fn timestamps_and_request_ids() {
        let t = UNIX_EPOCH + std::time::Duration::from_millis(1_706_445_296_789);
        assert_eq!(iso8601_utc(t), "2024-01-28T12:34:56.789Z");
        let id = uuid_v4();
        assert_eq!(id.len(), 36);
        let parts: Vec<&str> = id.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('4'));
        assert!(matches!(parts[3].as_bytes()[0], b'8' | b'9' | b'a' | b'b'));
        assert_ne!(id, uuid_v4());
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(10_957), (2000, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29)); // divisible by 400: leap
        assert_eq!(civil_from_days(11_017), (2000, 3, 1));
        assert_eq!(civil_from_days(19_750), (2024, 1, 28));
        assert_eq!(civil_from_days(19_782), (2024, 2, 29));
        assert_eq!(civil_from_days(19_783), (2024, 3, 1));
        assert_eq!(civil_from_days(20_088), (2024, 12, 31));
        assert_eq!(civil_from_days(47_540), (2100, 2, 28)); // divisible by 100: not leap
        assert_eq!(civil_from_days(47_541), (2100, 3, 1));
        // Every day of 1970..2400 follows the previous one.
        let mut prev = civil_from_days(0);
        for day in 1..157_000 {
            let cur = civil_from_days(day);
            let next_day = (prev.0, prev.1, prev.2 + 1);
            let next_month = (prev.0, prev.1 + 1, 1);
            let next_year = (prev.0 + 1, 1, 1);
            assert!(
                cur == next_day || cur == next_month || cur == next_year,
                "{prev:?} {cur:?}"
            );
            if cur == next_month || cur == next_year {
                let leap = prev.0 % 4 == 0 && (prev.0 % 100 != 0 || prev.0 % 400 == 0);
                let len = [
                    31,
                    if leap { 29 } else { 28 },
                    31,
                    30,
                    31,
                    30,
                    31,
                    31,
                    30,
                    31,
                    30,
                    31,
                ];
                assert_eq!(prev.2, len[prev.1 as usize - 1], "{prev:?}");
            }
            prev = cur;
        }
    }

    #[test]
    fn log_stream_name_format() {
        // 2024-01-28T23:59:59Z
        let t = UNIX_EPOCH + Duration::from_secs(19_750 * 86_400 + 86_399);
        let name = log_stream_name("$LATEST", t);
        let (prefix, hex) = name.split_at("2024/01/28/[$LATEST]".len());
        assert_eq!(prefix, "2024/01/28/[$LATEST]");
        assert_eq!(hex.len(), 32);
        assert!(hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
        assert_ne!(log_stream_name("$LATEST", t), name, "random part repeats");
        assert!(log_stream_name("12", UNIX_EPOCH).starts_with("1970/01/01/[12]"));
        assert_eq!(log_group_name("fn"), "/aws/lambda/fn");
    }
}
