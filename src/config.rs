//! Hearth's one configuration schema (STYLE item 12): the [`Config`] the daemon runs with.
//!
//! Owns: every setting of `hearth serve` with its default and unit, the layering
//! defaults ← file (`--config FILE`, TOML) ← environment (`HEARTH_*`) ← flags
//! ([`ConfigOverrides`], filled by the CLI), validation, and the effective configuration as one
//! text block for the start-up log, with secrets redacted and the source of every value.
//!
//! Does not: parse the command line (the CLI does), create directories, look up
//! `socket_group` in the group database or check that `cgroup_parent` exists (the daemon does
//! both at start-up, where it can say what it tried), or reload at run time.
//!
//! Limits and rules:
//! * Unknown keys in the file, at any level, are an error naming the key and its line:
//!   a mistyped key silently ignored would leave a default the operator thinks they changed.
//! * Only the `HEARTH_*` variables listed in [`ENV_VARS`] are read. An empty value of an
//!   optional setting (`HEARTH_LISTEN=`, `HEARTH_SOCKET_GROUP=`, `HEARTH_CGROUP_PARENT=`)
//!   turns it off; an empty value of any other setting is an error.
//! * `HEARTH_ACCESS_KEY_ID` and `HEARTH_SECRET_ACCESS_KEY` come as a pair and add one access key
//!   (replacing a file key with the same id). Access keys cannot be given as flags: command
//!   lines are visible to every user of the host.
//! * `memory_budget_mb` defaults to 75% of `MemTotal` in `/proc/meminfo`, read only when no
//!   layer sets it. It is not reduced to a cgroup limit the daemon itself may run under.

use std::collections::BTreeMap;
use std::fmt;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

/// Default of [`Config::state_dir`].
pub const DEFAULT_STATE_DIR: &str = "/var/lib/hearth";
/// Default of [`Config::run_dir`].
pub const DEFAULT_RUN_DIR: &str = "/run/hearth";
/// Default of [`Config::region`].
pub const DEFAULT_REGION: &str = "us-east-1";
/// Default of [`Config::account_id`].
pub const DEFAULT_ACCOUNT_ID: &str = "000000000000";
/// Default of [`Config::account_concurrency`] (Lambda's default regional quota).
pub const DEFAULT_ACCOUNT_CONCURRENCY: u32 = 1000;
/// Default of [`Config::idle_timeout_s`], in seconds.
pub const DEFAULT_IDLE_TIMEOUT_S: u64 = 600;
/// Default of [`Config::blank_pool_size`].
pub const DEFAULT_BLANK_POOL_SIZE: u32 = 4;
/// Largest accepted [`Config::blank_pool_size`].
pub const MAX_BLANK_POOL_SIZE: u32 = 256;
/// Default of [`Config::init_timeout_s`] (Lambda's init limit).
pub const DEFAULT_INIT_TIMEOUT_S: u64 = 10;
/// Default of [`Config::freeze_delay_ms`].
pub const DEFAULT_FREEZE_DELAY_MS: u64 = 10;
/// Share of `MemTotal` that [`Config::memory_budget_mb`] defaults to, in percent.
pub const DEFAULT_MEMORY_BUDGET_PERCENT: u64 = 75;
/// Smallest accepted memory budget, in MB: one function at Lambda's minimum memory size.
pub const MIN_MEMORY_BUDGET_MB: u64 = 128;
/// Where the default memory budget is computed from.
pub const MEMINFO_PATH: &str = "/proc/meminfo";

/// Every environment variable the configuration reads.
pub const ENV_VARS: &[&str] = &[
    ENV_STATE_DIR,
    ENV_RUN_DIR,
    ENV_REGION,
    ENV_ACCOUNT_ID,
    ENV_MEMORY_BUDGET_MB,
    ENV_ACCOUNT_CONCURRENCY,
    ENV_SOCKET_GROUP,
    ENV_LISTEN,
    ENV_ACCESS_KEY_ID,
    ENV_SECRET_ACCESS_KEY,
    ENV_IDLE_TIMEOUT_S,
    ENV_BLANK_POOL_SIZE,
    ENV_FREEZE_DELAY_MS,
    ENV_INIT_TIMEOUT_S,
    ENV_CGROUP_PARENT,
];
const ENV_STATE_DIR: &str = "HEARTH_STATE_DIR";
const ENV_RUN_DIR: &str = "HEARTH_RUN_DIR";
const ENV_REGION: &str = "HEARTH_REGION";
const ENV_ACCOUNT_ID: &str = "HEARTH_ACCOUNT_ID";
const ENV_MEMORY_BUDGET_MB: &str = "HEARTH_MEMORY_BUDGET_MB";
const ENV_ACCOUNT_CONCURRENCY: &str = "HEARTH_ACCOUNT_CONCURRENCY";
const ENV_SOCKET_GROUP: &str = "HEARTH_SOCKET_GROUP";
const ENV_LISTEN: &str = "HEARTH_LISTEN";
const ENV_ACCESS_KEY_ID: &str = "HEARTH_ACCESS_KEY_ID";
const ENV_SECRET_ACCESS_KEY: &str = "HEARTH_SECRET_ACCESS_KEY";
const ENV_IDLE_TIMEOUT_S: &str = "HEARTH_IDLE_TIMEOUT_S";
const ENV_BLANK_POOL_SIZE: &str = "HEARTH_BLANK_POOL_SIZE";
const ENV_FREEZE_DELAY_MS: &str = "HEARTH_FREEZE_DELAY_MS";
const ENV_INIT_TIMEOUT_S: &str = "HEARTH_INIT_TIMEOUT_S";
const ENV_CGROUP_PARENT: &str = "HEARTH_CGROUP_PARENT";

const REDACTED: &str = "<redacted>";

/// The configuration `hearth serve` runs with. Build it with [`Config::load`] (or
/// [`Config::resolve`] in tests), then call [`Config::validate`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Persistent state: function registry and code. Absolute path.
    /// Default `/var/lib/hearth`; file `state_dir`, env `HEARTH_STATE_DIR`.
    pub state_dir: PathBuf,
    /// Runtime state removed at shutdown: `hearth.sock`, per-sandbox sockets and scratch.
    /// Absolute path. Default `/run/hearth`; file `run_dir`, env `HEARTH_RUN_DIR`.
    pub run_dir: PathBuf,
    /// The region in ARNs and in `AWS_REGION` inside functions, e.g. `eu-west-1`.
    /// Default `us-east-1`; file `region`, env `HEARTH_REGION`.
    pub region: String,
    /// The account id in ARNs: exactly 12 digits.
    /// Default `000000000000`; file `account_id`, env `HEARTH_ACCOUNT_ID`.
    pub account_id: String,
    /// Host memory all sandboxes together may use, in MB (MiB); at least 128.
    /// Default 75% of `MemTotal` from `/proc/meminfo`, computed at load;
    /// file `memory_budget_mb`, env `HEARTH_MEMORY_BUDGET_MB`.
    pub memory_budget_mb: u64,
    /// Concurrent executions across all functions (Lambda's account quota), at least 1.
    /// Default 1000; file `account_concurrency`, env `HEARTH_ACCOUNT_CONCURRENCY`.
    pub account_concurrency: u32,
    /// Group owning `<run_dir>/hearth.sock` (mode 0660); `None`: root only (mode 0600).
    /// Default none; file `socket_group`, env `HEARTH_SOCKET_GROUP`.
    pub socket_group: Option<String>,
    /// TCP address of the SigV4-authenticated control API, e.g. `127.0.0.1:9001`; `None`: no
    /// TCP listener, the Unix socket only. Requires at least one access key.
    /// Default none; file `listen`, env `HEARTH_LISTEN`.
    pub listen: Option<SocketAddr>,
    /// Keys accepted on the TCP listener. Default none; file `[[access_keys]]` tables,
    /// env `HEARTH_ACCESS_KEY_ID` + `HEARTH_SECRET_ACCESS_KEY` add one.
    pub access_keys: Vec<AccessKey>,
    /// How long an idle warm sandbox is kept before it is reaped, in seconds; at least 1.
    /// Default 600; file `idle_timeout_s`, env `HEARTH_IDLE_TIMEOUT_S`.
    pub idle_timeout_s: u64,
    /// Pre-warmed blank sandboxes kept ready for cold starts (0: every cold start
    /// spawns). Default 4; file `blank_pool_size`, env `HEARTH_BLANK_POOL_SIZE`.
    pub blank_pool_size: u32,
    /// How long an idle instance stays thawed before it is frozen, in ms: back-to-back
    /// invocations skip the freeze and thaw. Default 10; file `freeze_delay_ms`, env
    /// `HEARTH_FREEZE_DELAY_MS`.
    pub freeze_delay_ms: u64,
    /// How long a function's init may take before the instance is killed, in seconds
    /// (Lambda's 10; raise it only on a slow or emulated host). Default 10; file
    /// `init_timeout_s`, env `HEARTH_INIT_TIMEOUT_S`.
    pub init_timeout_s: u64,
    /// Cgroup under which sandbox cgroups are created, relative to the cgroup root of each
    /// hierarchy, e.g. `hearth` or `system.slice/hearth.service`; `None`: the daemon's own
    /// cgroup. Default none; file `cgroup_parent`, env `HEARTH_CGROUP_PARENT`.
    pub cgroup_parent: Option<String>,
    /// Where each value came from, for [`Config::effective_summary`]; not a setting.
    pub origins: Origins,
}

/// One access key for SigV4 (control-api.md §7). `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessKey {
    /// The key id clients put in `Credential=`: 1–128 of `A-Z a-z 0-9 _ - .`.
    pub access_key_id: String,
    /// The shared secret; never logged.
    pub secret_access_key: String,
}

impl fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccessKey")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &REDACTED)
            .finish()
    }
}

/// Which layer set a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The built-in default.
    Default,
    /// The configuration file.
    File,
    /// An environment variable (its name).
    Env(&'static str),
    /// A command-line flag.
    Flag,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("default"),
            Origin::File => f.write_str("file"),
            Origin::Env(var) => write!(f, "env {var}"),
            Origin::Flag => f.write_str("flag"),
        }
    }
}

/// The origin of every field (by file key name) and of every access key (by key id).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origins {
    fields: BTreeMap<&'static str, Origin>,
    access_keys: BTreeMap<String, Origin>,
}

impl Origins {
    /// The origin of field `name` (its file key); `Default` when nothing set it.
    pub fn field(&self, name: &str) -> Origin {
        self.fields.get(name).copied().unwrap_or(Origin::Default)
    }

    /// The origin of access key `access_key_id`.
    pub fn access_key(&self, access_key_id: &str) -> Origin {
        self.access_keys
            .get(access_key_id)
            .copied()
            .unwrap_or(Origin::Default)
    }
}

/// Settings given as command-line flags; each `Some` wins over file and environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigOverrides {
    /// `--state-dir`.
    pub state_dir: Option<PathBuf>,
    /// `--run-dir`.
    pub run_dir: Option<PathBuf>,
    /// `--region`.
    pub region: Option<String>,
    /// `--account-id`.
    pub account_id: Option<String>,
    /// `--memory-budget-mb`.
    pub memory_budget_mb: Option<u64>,
    /// `--account-concurrency`.
    pub account_concurrency: Option<u32>,
    /// `--socket-group`.
    pub socket_group: Option<String>,
    /// `--listen`.
    pub listen: Option<SocketAddr>,
    /// `--idle-timeout-s`.
    pub idle_timeout_s: Option<u64>,
    /// `--cgroup-parent`.
    pub cgroup_parent: Option<String>,
}

/// The inputs of [`Config::resolve`], explicit so that tests need no process environment.
#[derive(Debug, Clone, Copy)]
pub struct Sources<'a> {
    /// The configuration file's path (for messages) and text, if one was given.
    pub file: Option<(&'a Path, &'a str)>,
    /// Environment variables; names outside [`ENV_VARS`] are ignored.
    pub env: &'a [(String, String)],
    /// Flags.
    pub overrides: &'a ConfigOverrides,
    /// Where to read `MemTotal` if no layer sets `memory_budget_mb` (`/proc/meminfo`).
    pub meminfo: &'a Path,
}

/// Errors of loading and validating the configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The configuration file cannot be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file is not valid TOML, has an unknown key or a value of the wrong type.
    #[error("{path}:{line}:{column}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// An environment variable's value cannot be used. Secrets are shown as `<redacted>`.
    #[error("environment variable {var}={value:?}: {reason}")]
    Env {
        var: String,
        value: String,
        reason: String,
    },
    /// The default memory budget cannot be computed.
    #[error("cannot compute the default memory budget from {path}: {reason}")]
    MemInfo { path: PathBuf, reason: String },
    /// A value breaks a rule of the schema. Secrets are shown as `<redacted>`.
    #[error("invalid {field} {value:?}: {reason}")]
    Invalid {
        field: &'static str,
        value: String,
        reason: &'static str,
    },
}

/// What one layer (file, environment or flags) sets: `None` leaves the value below alone.
/// For the optional settings, `Some(None)` turns the setting off (environment only: TOML has
/// no null). Deserialised from the file with unknown keys refused.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Layer {
    state_dir: Option<PathBuf>,
    run_dir: Option<PathBuf>,
    region: Option<String>,
    account_id: Option<String>,
    memory_budget_mb: Option<u64>,
    account_concurrency: Option<u32>,
    socket_group: Option<Option<String>>,
    listen: Option<Option<SocketAddr>>,
    access_keys: Option<Vec<AccessKey>>,
    idle_timeout_s: Option<u64>,
    blank_pool_size: Option<u32>,
    freeze_delay_ms: Option<u64>,
    init_timeout_s: Option<u64>,
    cgroup_parent: Option<Option<String>>,
}

impl Config {
    /// Loads the configuration the daemon runs with: `file` (if given), the process
    /// environment, `overrides` and `/proc/meminfo`; then validates it.
    pub fn load(file: Option<&Path>, overrides: &ConfigOverrides) -> Result<Config, ConfigError> {
        let read = |path: &Path| {
            std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.to_path_buf(),
                source,
            })
        };
        let text = file.map(read).transpose()?;
        let mut env = Vec::new();
        for &var in ENV_VARS {
            if let Some(value) = std::env::var_os(var) {
                let value = value.into_string().map_err(|v| ConfigError::Env {
                    var: var.to_string(),
                    value: redact_env(var, &v.to_string_lossy()),
                    reason: "not valid UTF-8".to_string(),
                })?;
                env.push((var.to_string(), value));
            }
        }
        let config = Config::resolve(&Sources {
            file: file.zip(text.as_deref()),
            env: &env,
            overrides,
            meminfo: Path::new(MEMINFO_PATH),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Layers defaults ← file ← environment ← flags. Does not validate.
    pub fn resolve(sources: &Sources<'_>) -> Result<Config, ConfigError> {
        let mut c = Config {
            state_dir: PathBuf::from(DEFAULT_STATE_DIR),
            run_dir: PathBuf::from(DEFAULT_RUN_DIR),
            region: DEFAULT_REGION.to_string(),
            account_id: DEFAULT_ACCOUNT_ID.to_string(),
            memory_budget_mb: 0, // set last: /proc/meminfo is read only if no layer sets it
            account_concurrency: DEFAULT_ACCOUNT_CONCURRENCY,
            socket_group: None,
            listen: None,
            access_keys: Vec::new(),
            idle_timeout_s: DEFAULT_IDLE_TIMEOUT_S,
            blank_pool_size: DEFAULT_BLANK_POOL_SIZE,
            freeze_delay_ms: DEFAULT_FREEZE_DELAY_MS,
            init_timeout_s: DEFAULT_INIT_TIMEOUT_S,
            cgroup_parent: None,
            origins: Origins::default(),
        };
        let mut memory_budget_mb = None;
        if let Some((path, text)) = sources.file {
            c.apply(
                file_layer(path, text)?,
                |_| Origin::File,
                &mut memory_budget_mb,
            );
        }
        c.apply(env_layer(sources.env)?, Origin::Env, &mut memory_budget_mb);
        c.apply(
            flag_layer(sources.overrides),
            |_| Origin::Flag,
            &mut memory_budget_mb,
        );
        c.memory_budget_mb = match memory_budget_mb {
            Some(mb) => mb,
            None => default_memory_budget_mb(sources.meminfo)?,
        };
        Ok(c)
    }

    /// Takes every value `layer` sets; `origin` maps a field to where it came from (the
    /// environment layer names the variable).
    fn apply(
        &mut self,
        layer: Layer,
        origin: impl Fn(&'static str) -> Origin,
        memory_budget_mb: &mut Option<u64>,
    ) {
        let fields = &mut self.origins.fields;
        macro_rules! take {
            ($($field:ident => $slot:expr),* $(,)?) => {$(
                if let Some(v) = layer.$field {
                    *$slot = v;
                    fields.insert(stringify!($field), origin(env_var(stringify!($field))));
                }
            )*};
        }
        take!(
            state_dir => &mut self.state_dir,
            run_dir => &mut self.run_dir,
            region => &mut self.region,
            account_id => &mut self.account_id,
            account_concurrency => &mut self.account_concurrency,
            socket_group => &mut self.socket_group,
            listen => &mut self.listen,
            idle_timeout_s => &mut self.idle_timeout_s,
            blank_pool_size => &mut self.blank_pool_size,
            freeze_delay_ms => &mut self.freeze_delay_ms,
            init_timeout_s => &mut self.init_timeout_s,
            cgroup_parent => &mut self.cgroup_parent,
        );
        if let Some(mb) = layer.memory_budget_mb {
            *memory_budget_mb = Some(mb);
            fields.insert("memory_budget_mb", origin(ENV_MEMORY_BUDGET_MB));
        }
        for key in layer.access_keys.into_iter().flatten() {
            let from = origin(ENV_ACCESS_KEY_ID);
            self.origins
                .access_keys
                .insert(key.access_key_id.clone(), from);
            // A later layer's key replaces an earlier one with the same id.
            match self
                .access_keys
                .iter_mut()
                .find(|k| k.access_key_id == key.access_key_id)
            {
                Some(existing) => *existing = key,
                None => self.access_keys.push(key),
            }
        }
    }

    /// Checks every rule of the schema; the first broken one is the error.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |field, value: &dyn fmt::Display, reason| {
            Err(ConfigError::Invalid {
                field,
                value: value.to_string(),
                reason,
            })
        };
        for (field, dir) in [("state_dir", &self.state_dir), ("run_dir", &self.run_dir)] {
            if !dir.is_absolute() {
                return invalid(field, &dir.display(), "must be an absolute path");
            }
            if dir.components().any(|c| c == Component::ParentDir) {
                return invalid(field, &dir.display(), "must not contain `..`");
            }
        }
        if !is_region(&self.region) {
            return invalid(
                "region",
                &self.region,
                "must look like an AWS region, e.g. us-east-1 (lower-case words and a number, \
                 joined by `-`)",
            );
        }
        if self.account_id.len() != 12 || !self.account_id.bytes().all(|b| b.is_ascii_digit()) {
            return invalid("account_id", &self.account_id, "must be exactly 12 digits");
        }
        if self.memory_budget_mb < MIN_MEMORY_BUDGET_MB {
            return invalid(
                "memory_budget_mb",
                &self.memory_budget_mb,
                "must be at least 128 (MB)",
            );
        }
        if self.account_concurrency == 0 {
            return invalid("account_concurrency", &0, "must be at least 1");
        }
        if self.idle_timeout_s == 0 {
            return invalid("idle_timeout_s", &0, "must be at least 1 (seconds)");
        }
        if self.blank_pool_size > MAX_BLANK_POOL_SIZE {
            return invalid(
                "blank_pool_size",
                &self.blank_pool_size,
                "must be at most 256",
            );
        }
        if !(1..=900).contains(&self.init_timeout_s) {
            return invalid(
                "init_timeout_s",
                &self.init_timeout_s,
                "must be between 1 and 900 (seconds)",
            );
        }
        if self.freeze_delay_ms > 60_000 {
            return invalid(
                "freeze_delay_ms",
                &self.freeze_delay_ms,
                "must be at most 60000 (ms)",
            );
        }
        if let Some(group) = &self.socket_group {
            if group.is_empty()
                || group.len() > 32
                || group
                    .chars()
                    .any(|c| c.is_whitespace() || c.is_control() || c == ':' || c == '/')
            {
                return invalid(
                    "socket_group",
                    group,
                    "must be a group name: 1-32 characters, no whitespace, `:` or `/`",
                );
            }
        }
        if let Some(parent) = &self.cgroup_parent {
            let relative = parent.trim_start_matches('/');
            if relative.is_empty()
                || parent.contains(['\0', '\n'])
                || relative
                    .split('/')
                    .any(|s| s.is_empty() || s == "." || s == "..")
            {
                return invalid(
                    "cgroup_parent",
                    parent,
                    "must be a cgroup path such as `hearth` or `system.slice/hearth.service`: \
                     no empty, `.` or `..` components",
                );
            }
        }
        let mut seen = std::collections::BTreeSet::new();
        for key in &self.access_keys {
            let id = &key.access_key_id;
            if id.is_empty()
                || id.len() > 128
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
            {
                return invalid(
                    "access_key_id",
                    id,
                    "must be 1-128 characters of A-Z, a-z, 0-9, `_`, `-`, `.`",
                );
            }
            if key.secret_access_key.is_empty() {
                return invalid("secret_access_key", &"", "must not be empty");
            }
            if !seen.insert(id) {
                return invalid("access_key_id", id, "is given twice");
            }
        }
        if let Some(addr) = self.listen {
            if self.access_keys.is_empty() {
                return invalid(
                    "listen",
                    &addr,
                    "needs at least one access key: the TCP listener accepts only \
                     SigV4-signed requests",
                );
            }
        }
        Ok(())
    }

    /// The effective configuration as one block for the start-up log: `key = value  [source]`
    /// per line, secrets shown as `<redacted>`.
    pub fn effective_summary(&self) -> String {
        let mut out = String::from("effective configuration:\n");
        let o = &self.origins;
        let mut line = |key: &str, value: &dyn fmt::Display, origin: &dyn fmt::Display| {
            // Writing to a String cannot fail.
            let _ = writeln!(out, "  {key:<20} = {value}  [{origin}]");
        };
        let none = |v: Option<String>, absent: &str| v.unwrap_or_else(|| absent.to_string());
        line(
            "state_dir",
            &self.state_dir.display(),
            &o.field("state_dir"),
        );
        line("run_dir", &self.run_dir.display(), &o.field("run_dir"));
        line("region", &self.region, &o.field("region"));
        line("account_id", &self.account_id, &o.field("account_id"));
        let memory_origin = match o.field("memory_budget_mb") {
            Origin::Default => format!("default: {DEFAULT_MEMORY_BUDGET_PERCENT}% of MemTotal"),
            other => other.to_string(),
        };
        line("memory_budget_mb", &self.memory_budget_mb, &memory_origin);
        line(
            "account_concurrency",
            &self.account_concurrency,
            &o.field("account_concurrency"),
        );
        line(
            "socket_group",
            &none(self.socket_group.clone(), "(none: root only, mode 0600)"),
            &o.field("socket_group"),
        );
        line(
            "listen",
            &none(self.listen.map(|a| a.to_string()), "(off)"),
            &o.field("listen"),
        );
        line(
            "idle_timeout_s",
            &self.idle_timeout_s,
            &o.field("idle_timeout_s"),
        );
        line(
            "blank_pool_size",
            &self.blank_pool_size,
            &o.field("blank_pool_size"),
        );
        line(
            "freeze_delay_ms",
            &self.freeze_delay_ms,
            &o.field("freeze_delay_ms"),
        );
        line(
            "init_timeout_s",
            &self.init_timeout_s,
            &o.field("init_timeout_s"),
        );
        line(
            "cgroup_parent",
            &none(self.cgroup_parent.clone(), "(none: the daemon's cgroup)"),
            &o.field("cgroup_parent"),
        );
        if self.access_keys.is_empty() {
            line("access_keys", &"(none)", &Origin::Default);
        }
        for key in &self.access_keys {
            line(
                "access_key",
                &format!("{} secret={REDACTED}", key.access_key_id),
                &o.access_key(&key.access_key_id),
            );
        }
        out
    }
}

/// The file layer, with parse errors located by line and column.
fn file_layer(path: &Path, text: &str) -> Result<Layer, ConfigError> {
    toml::from_str(text).map_err(|e| {
        let (line, column) = e
            .span()
            .map(|s| line_column(text, s.start))
            .unwrap_or((0, 0));
        ConfigError::Parse {
            path: path.to_path_buf(),
            line,
            column,
            message: e.message().trim().to_string(),
        }
    })
}

/// The environment layer.
fn env_layer(vars: &[(String, String)]) -> Result<Layer, ConfigError> {
    let env = Env(vars);
    let access_keys = match (env.get(ENV_ACCESS_KEY_ID), env.get(ENV_SECRET_ACCESS_KEY)) {
        (None, None) => None,
        (Some(id), Some(secret)) => Some(vec![AccessKey {
            access_key_id: id.to_string(),
            secret_access_key: secret.to_string(),
        }]),
        (Some(id), None) => {
            let reason = format!("set without {ENV_SECRET_ACCESS_KEY}");
            return Err(env.error(ENV_ACCESS_KEY_ID, id, reason));
        }
        (None, Some(secret)) => {
            let reason = format!("set without {ENV_ACCESS_KEY_ID}");
            return Err(env.error(ENV_SECRET_ACCESS_KEY, secret, reason));
        }
    };
    Ok(Layer {
        state_dir: env.string(ENV_STATE_DIR)?.map(PathBuf::from),
        run_dir: env.string(ENV_RUN_DIR)?.map(PathBuf::from),
        region: env.string(ENV_REGION)?,
        account_id: env.string(ENV_ACCOUNT_ID)?,
        memory_budget_mb: env.number(ENV_MEMORY_BUDGET_MB)?,
        account_concurrency: env.number(ENV_ACCOUNT_CONCURRENCY)?,
        socket_group: env.optional(ENV_SOCKET_GROUP, |s| Ok(s.to_string()))?,
        listen: env.optional(ENV_LISTEN, |s| env.parse(ENV_LISTEN, s))?,
        access_keys,
        idle_timeout_s: env.number(ENV_IDLE_TIMEOUT_S)?,
        blank_pool_size: env.number(ENV_BLANK_POOL_SIZE)?,
        freeze_delay_ms: env.number(ENV_FREEZE_DELAY_MS)?,
        init_timeout_s: env.number(ENV_INIT_TIMEOUT_S)?,
        cgroup_parent: env.optional(ENV_CGROUP_PARENT, |s| Ok(s.to_string()))?,
    })
}

/// The flag layer.
fn flag_layer(o: &ConfigOverrides) -> Layer {
    let o = o.clone();
    Layer {
        state_dir: o.state_dir,
        run_dir: o.run_dir,
        region: o.region,
        account_id: o.account_id,
        memory_budget_mb: o.memory_budget_mb,
        account_concurrency: o.account_concurrency,
        socket_group: o.socket_group.map(Some),
        listen: o.listen.map(Some),
        access_keys: None,
        idle_timeout_s: o.idle_timeout_s,
        blank_pool_size: None,
        freeze_delay_ms: None,
        init_timeout_s: None,
        cgroup_parent: o.cgroup_parent.map(Some),
    }
}

/// The variable that sets `field` (its file key), for origins.
fn env_var(field: &str) -> &'static str {
    let wanted = format!("HEARTH_{}", field.to_ascii_uppercase());
    ENV_VARS
        .iter()
        .copied()
        .find(|v| *v == wanted)
        .unwrap_or("HEARTH_?")
}

/// The environment layer: lookups and parsing with errors naming the variable.
struct Env<'a>(&'a [(String, String)]);

impl Env<'_> {
    fn get(&self, var: &str) -> Option<&str> {
        // The last assignment wins, as in a shell.
        self.0
            .iter()
            .rev()
            .find(|(n, _)| n == var)
            .map(|(_, v)| v.as_str())
    }

    fn error(&self, var: &str, value: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError::Env {
            var: var.to_string(),
            value: redact_env(var, value),
            reason: reason.into(),
        }
    }

    fn string(&self, var: &str) -> Result<Option<String>, ConfigError> {
        match self.get(var) {
            None => Ok(None),
            Some("") => Err(self.error(var, "", "must not be empty")),
            Some(v) => Ok(Some(v.to_string())),
        }
    }

    fn parse<T: std::str::FromStr>(&self, var: &str, value: &str) -> Result<T, ConfigError>
    where
        T::Err: fmt::Display,
    {
        value
            .trim()
            .parse()
            .map_err(|e: T::Err| self.error(var, value, e.to_string()))
    }

    fn number<T: std::str::FromStr>(&self, var: &str) -> Result<Option<T>, ConfigError>
    where
        T::Err: fmt::Display,
    {
        self.string(var)?.map(|v| self.parse(var, &v)).transpose()
    }

    /// An optional setting: `None` if unset, `Some(None)` if set empty (turned off).
    fn optional<T>(
        &self,
        var: &str,
        parse: impl Fn(&str) -> Result<T, ConfigError>,
    ) -> Result<Option<Option<T>>, ConfigError> {
        match self.get(var) {
            None => Ok(None),
            Some("") => Ok(Some(None)),
            Some(v) => Ok(Some(Some(parse(v)?))),
        }
    }
}

fn redact_env(var: &str, value: &str) -> String {
    if var == ENV_SECRET_ACCESS_KEY {
        REDACTED.to_string()
    } else {
        value.to_string()
    }
}

/// 1-based line and column (in characters) of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    // toml's spans fall on character boundaries; `get` keeps a bad one from panicking.
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
    (line, column)
}

/// `DEFAULT_MEMORY_BUDGET_PERCENT` of `MemTotal` (kB) in `meminfo`, in MB.
fn default_memory_budget_mb(meminfo: &Path) -> Result<u64, ConfigError> {
    let err = |reason: String| ConfigError::MemInfo {
        path: meminfo.to_path_buf(),
        reason,
    };
    let text = std::fs::read_to_string(meminfo).map_err(|e| err(e.to_string()))?;
    let kb = mem_total_kb(&text).ok_or_else(|| err("no `MemTotal: <n> kB` line".to_string()))?;
    Ok(kb / 1024 * DEFAULT_MEMORY_BUDGET_PERCENT / 100)
}

fn mem_total_kb(meminfo: &str) -> Option<u64> {
    let rest = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .trim();
    let number = rest.strip_suffix("kB")?.trim();
    number.parse().ok()
}

/// An AWS-style region: a lower-case word, one or more `-word`s, then `-<number>`
/// (`us-east-1`, `us-gov-west-1`, `eusc-de-east-1`).
fn is_region(region: &str) -> bool {
    let parts: Vec<&str> = region.split('-').collect();
    let Some((number, words)) = parts.split_last() else {
        return false;
    };
    region.len() <= 32
        && words.len() >= 2
        && words
            .iter()
            .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
        && !number.is_empty()
        && number.len() <= 2
        && number.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MEMINFO: &str = "MemTotal:        8039376 kB\nMemFree:         1234 kB\n";

    /// Resolves with a fake meminfo of 8039376 kB (75% = 5888 MB).
    fn resolve(
        file: Option<&str>,
        env: &[(&str, &str)],
        overrides: &ConfigOverrides,
    ) -> Result<Config, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        let meminfo = dir.path().join("meminfo");
        std::fs::write(&meminfo, MEMINFO).unwrap();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Config::resolve(&Sources {
            file: file.map(|t| (Path::new("hearth.toml"), t)),
            env: &env,
            overrides,
            meminfo: &meminfo,
        })
    }

    fn key(id: &str, secret: &str) -> AccessKey {
        AccessKey {
            access_key_id: id.into(),
            secret_access_key: secret.into(),
        }
    }

    #[test]
    fn defaults() {
        let c = resolve(None, &[], &ConfigOverrides::default()).unwrap();
        assert_eq!(c.state_dir, Path::new("/var/lib/hearth"));
        assert_eq!(c.run_dir, Path::new("/run/hearth"));
        assert_eq!(c.region, "us-east-1");
        assert_eq!(c.account_id, "000000000000");
        assert_eq!(c.memory_budget_mb, 8039376 / 1024 * 75 / 100);
        assert_eq!(c.account_concurrency, 1000);
        assert_eq!(c.socket_group, None);
        assert_eq!(c.listen, None);
        assert!(c.access_keys.is_empty());
        assert_eq!(c.idle_timeout_s, 600);
        assert_eq!(c.cgroup_parent, None);
        assert_eq!(c.origins.field("region"), Origin::Default);
        c.validate().unwrap();
    }

    #[test]
    fn the_real_meminfo_gives_a_budget() {
        // /proc/meminfo exists on every Linux host this runs on.
        let kb = mem_total_kb(&std::fs::read_to_string(MEMINFO_PATH).unwrap()).unwrap();
        let mb = default_memory_budget_mb(Path::new(MEMINFO_PATH)).unwrap();
        assert_eq!(mb, kb / 1024 * 3 / 4);
    }

    #[test]
    fn meminfo_is_not_read_when_the_budget_is_set() {
        let env = vec![];
        let overrides = ConfigOverrides {
            memory_budget_mb: Some(512),
            ..Default::default()
        };
        let c = Config::resolve(&Sources {
            file: None,
            env: &env,
            overrides: &overrides,
            meminfo: Path::new("/nonexistent/meminfo"),
        })
        .unwrap();
        assert_eq!(c.memory_budget_mb, 512);
        let err = Config::resolve(&Sources {
            file: None,
            env: &env,
            overrides: &ConfigOverrides::default(),
            meminfo: Path::new("/nonexistent/meminfo"),
        })
        .unwrap_err();
        assert!(matches!(err, ConfigError::MemInfo { .. }), "{err}");
        assert_eq!(mem_total_kb("MemFree: 1 kB\n"), None);
        assert_eq!(mem_total_kb("MemTotal: 2048 kB\n"), Some(2048));
    }

    #[test]
    fn precedence_is_default_file_env_flag() {
        let file = r#"
state_dir = "/srv/hearth"
run_dir = "/run/hearth-file"
region = "eu-west-1"
memory_budget_mb = 4096
idle_timeout_s = 60
blank_pool_size = 8
freeze_delay_ms = 50
listen = "127.0.0.1:9001"
socket_group = "hearth"

[[access_keys]]
access_key_id = "AKIDFILE"
secret_access_key = "file-secret"

[[access_keys]]
access_key_id = "AKIDBOTH"
secret_access_key = "file-secret-2"
"#;
        let env = [
            ("HEARTH_RUN_DIR", "/run/hearth-env"),
            ("HEARTH_REGION", "eu-central-1"),
            ("HEARTH_IDLE_TIMEOUT_S", "30"),
            ("HEARTH_FREEZE_DELAY_MS", "0"),
            ("HEARTH_SOCKET_GROUP", ""),
            ("HEARTH_ACCESS_KEY_ID", "AKIDBOTH"),
            ("HEARTH_SECRET_ACCESS_KEY", "env-secret"),
            ("HEARTH_UNRELATED", "ignored"),
            ("PATH", "/bin"),
        ];
        let flags = ConfigOverrides {
            region: Some("ap-southeast-2".into()),
            listen: Some("127.0.0.1:9100".parse().unwrap()),
            ..Default::default()
        };
        let c = resolve(Some(file), &env, &flags).unwrap();
        c.validate().unwrap();
        assert_eq!(c.state_dir, Path::new("/srv/hearth"));
        assert_eq!(c.origins.field("state_dir"), Origin::File);
        assert_eq!(c.run_dir, Path::new("/run/hearth-env"));
        assert_eq!(c.origins.field("run_dir"), Origin::Env("HEARTH_RUN_DIR"));
        assert_eq!(c.region, "ap-southeast-2");
        assert_eq!(c.origins.field("region"), Origin::Flag);
        assert_eq!(c.memory_budget_mb, 4096);
        assert_eq!(c.idle_timeout_s, 30);
        assert_eq!(c.blank_pool_size, 8);
        assert_eq!(c.origins.field("blank_pool_size"), Origin::File);
        assert_eq!(c.freeze_delay_ms, 0);
        assert_eq!(
            c.origins.field("freeze_delay_ms"),
            Origin::Env("HEARTH_FREEZE_DELAY_MS")
        );
        assert_eq!(c.socket_group, None, "empty env value turns it off");
        assert_eq!(c.listen, Some("127.0.0.1:9100".parse().unwrap()));
        assert_eq!(c.account_id, "000000000000");
        assert_eq!(c.origins.field("account_id"), Origin::Default);
        assert_eq!(
            c.access_keys,
            vec![
                key("AKIDFILE", "file-secret"),
                key("AKIDBOTH", "env-secret")
            ]
        );
        assert_eq!(c.origins.access_key("AKIDFILE"), Origin::File);
        assert_eq!(
            c.origins.access_key("AKIDBOTH"),
            Origin::Env("HEARTH_ACCESS_KEY_ID")
        );
    }

    #[test]
    fn unknown_keys_name_the_key_and_line() {
        let file = "region = \"us-east-1\"\n\nlisten_addr = \"127.0.0.1:1\"\n";
        let err = resolve(Some(file), &[], &ConfigOverrides::default()).unwrap_err();
        let ConfigError::Parse {
            line,
            column,
            message,
            ..
        } = &err
        else {
            panic!("{err:?}");
        };
        assert_eq!((*line, *column), (3, 1));
        assert!(message.contains("listen_addr"), "{message}");
        let text = err.to_string();
        assert!(text.starts_with("hearth.toml:3:1: "), "{text}");

        let nested =
            "[[access_keys]]\naccess_key_id = \"A\"\nsecret_access_key = \"s\"\nsecret = \"x\"\n";
        let err = resolve(Some(nested), &[], &ConfigOverrides::default()).unwrap_err();
        assert!(
            matches!(&err, ConfigError::Parse { line: 4, message, .. } if message.contains("secret")),
            "{err:?}"
        );
    }

    #[test]
    fn wrong_types_and_bad_env_values_are_errors() {
        let err = resolve(
            Some("account_concurrency = \"many\"\n"),
            &[],
            &ConfigOverrides::default(),
        )
        .unwrap_err();
        assert!(matches!(err, ConfigError::Parse { line: 1, .. }), "{err:?}");
        let err = resolve(
            Some("listen = \"localhost\"\n"),
            &[],
            &ConfigOverrides::default(),
        )
        .unwrap_err();
        assert!(matches!(err, ConfigError::Parse { line: 1, .. }), "{err:?}");

        for (var, value) in [
            ("HEARTH_IDLE_TIMEOUT_S", "ten"),
            ("HEARTH_ACCOUNT_CONCURRENCY", "-1"),
            ("HEARTH_LISTEN", "9001"),
            ("HEARTH_STATE_DIR", ""),
        ] {
            let err = resolve(None, &[(var, value)], &ConfigOverrides::default()).unwrap_err();
            assert!(
                matches!(&err, ConfigError::Env { var: v, .. } if v == var),
                "{var}: {err:?}"
            );
        }

        let err = resolve(
            None,
            &[("HEARTH_SECRET_ACCESS_KEY", "s3cr3t")],
            &Default::default(),
        )
        .unwrap_err();
        assert!(!err.to_string().contains("s3cr3t"), "{err}");
        let err = resolve(
            None,
            &[("HEARTH_ACCESS_KEY_ID", "AKID")],
            &Default::default(),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("HEARTH_SECRET_ACCESS_KEY"),
            "{err}"
        );
    }

    #[test]
    fn env_can_turn_optional_settings_off() {
        let file = "listen = \"127.0.0.1:9001\"\ncgroup_parent = \"hearth\"\n";
        let c = resolve(
            Some(file),
            &[("HEARTH_LISTEN", ""), ("HEARTH_CGROUP_PARENT", "")],
            &ConfigOverrides::default(),
        )
        .unwrap();
        assert_eq!(c.listen, None);
        assert_eq!(c.cgroup_parent, None);
        assert_eq!(c.origins.field("listen"), Origin::Env("HEARTH_LISTEN"));
        c.validate().unwrap();
    }

    #[test]
    fn validation_errors() {
        let good = resolve(None, &[], &ConfigOverrides::default()).unwrap();
        good.validate().unwrap();
        type Break = Box<dyn Fn(&mut Config)>;
        let cases: Vec<(&str, Break)> = vec![
            (
                "state_dir",
                Box::new(|c| c.state_dir = "var/lib/hearth".into()),
            ),
            ("run_dir", Box::new(|c| c.run_dir = "/run/../tmp".into())),
            ("region", Box::new(|c| c.region = "US-EAST-1".into())),
            ("region", Box::new(|c| c.region = "useast1".into())),
            ("region", Box::new(|c| c.region = "us-east-".into())),
            ("region", Box::new(|c| c.region = "east-1".into())),
            (
                "account_id",
                Box::new(|c| c.account_id = "12345678901".into()),
            ),
            (
                "account_id",
                Box::new(|c| c.account_id = "12345678901a".into()),
            ),
            ("memory_budget_mb", Box::new(|c| c.memory_budget_mb = 127)),
            (
                "account_concurrency",
                Box::new(|c| c.account_concurrency = 0),
            ),
            ("idle_timeout_s", Box::new(|c| c.idle_timeout_s = 0)),
            ("blank_pool_size", Box::new(|c| c.blank_pool_size = 257)),
            ("freeze_delay_ms", Box::new(|c| c.freeze_delay_ms = 60_001)),
            ("init_timeout_s", Box::new(|c| c.init_timeout_s = 0)),
            ("init_timeout_s", Box::new(|c| c.init_timeout_s = 901)),
            (
                "socket_group",
                Box::new(|c| c.socket_group = Some("a b".into())),
            ),
            (
                "cgroup_parent",
                Box::new(|c| c.cgroup_parent = Some("../escape".into())),
            ),
            (
                "cgroup_parent",
                Box::new(|c| c.cgroup_parent = Some("/".into())),
            ),
            (
                "listen",
                Box::new(|c| c.listen = Some("127.0.0.1:9001".parse().unwrap())),
            ),
            (
                "access_key_id",
                Box::new(|c| c.access_keys = vec![key("AK/ID", "s")]),
            ),
            (
                "access_key_id",
                Box::new(|c| c.access_keys = vec![key("", "s")]),
            ),
            (
                "secret_access_key",
                Box::new(|c| c.access_keys = vec![key("AKID", "")]),
            ),
            (
                "access_key_id",
                Box::new(|c| c.access_keys = vec![key("AKID", "a"), key("AKID", "b")]),
            ),
        ];
        for (field, break_it) in cases {
            let mut c = good.clone();
            break_it(&mut c);
            match c.validate() {
                Err(ConfigError::Invalid { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: expected invalid, got {other:?}"),
            }
        }
        for region in [
            "us-east-1",
            "us-gov-west-1",
            "eusc-de-east-1",
            "ap-southeast-2",
        ] {
            assert!(is_region(region), "{region}");
        }
        let mut c = good.clone();
        c.listen = Some("[::1]:9001".parse().unwrap());
        c.access_keys = vec![key("test", "test")];
        c.cgroup_parent = Some("system.slice/hearth.service".into());
        c.socket_group = Some("hearth".into());
        c.validate().unwrap();
    }

    #[test]
    fn summary_redacts_secrets_and_names_sources() {
        let file =
            "[[access_keys]]\naccess_key_id = \"AKIDFILE\"\nsecret_access_key = \"file-secret\"\n";
        let c = resolve(
            Some(file),
            &[
                ("HEARTH_LISTEN", "127.0.0.1:9001"),
                ("HEARTH_ACCESS_KEY_ID", "AKIDENV"),
                ("HEARTH_SECRET_ACCESS_KEY", "env-secret"),
            ],
            &ConfigOverrides {
                state_dir: Some("/tmp/h".into()),
                ..Default::default()
            },
        )
        .unwrap();
        let s = c.effective_summary();
        assert!(
            !s.contains("file-secret") && !s.contains("env-secret"),
            "{s}"
        );
        assert!(s.contains("AKIDFILE secret=<redacted>  [file]"), "{s}");
        assert!(
            s.contains("AKIDENV secret=<redacted>  [env HEARTH_ACCESS_KEY_ID]"),
            "{s}"
        );
        assert!(s.contains("state_dir            = /tmp/h  [flag]"), "{s}");
        assert!(
            s.contains("listen               = 127.0.0.1:9001  [env HEARTH_LISTEN]"),
            "{s}"
        );
        assert!(s.contains("[default: 75% of MemTotal]"), "{s}");
        assert_eq!(s.lines().count(), 1 + 13 + 2, "{s}");
        let debug = format!("{c:?}");
        assert!(
            !debug.contains("file-secret") && !debug.contains("env-secret"),
            "{debug}"
        );
    }

    #[test]
    fn load_reads_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hearth.toml");
        std::fs::write(
            &path,
            "account_id = \"123456789012\"\nmemory_budget_mb = 1024\n",
        )
        .unwrap();
        // The process environment may hold HEARTH_* variables of whoever runs the tests; the
        // file's values are only checked where flags do not decide.
        let c = Config::load(Some(&path), &ConfigOverrides::default());
        if std::env::vars().any(|(k, _)| k.starts_with("HEARTH_")) {
            println!("skipped: HEARTH_* set in the environment");
            return;
        }
        let c = c.unwrap();
        assert_eq!(c.account_id, "123456789012");
        assert_eq!(c.memory_budget_mb, 1024);
        let err =
            Config::load(Some(&dir.path().join("missing.toml")), &Default::default()).unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }), "{err}");
    }
}
