//! The registry's records and the inputs of its operations.
//!
//! Owns plain data only: what a function version, alias and provisioned-concurrency config look
//! like once stored, and what create/update calls take. Defaults are Lambda's.
//!
//! Does not: validate (see [`super::validate`]), persist, or serialise to AWS JSON (control
//! builds `FunctionConfiguration` from these fields).

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::function::code::CodeRef;
use crate::function::runtime::Runtime;

use super::{Account, LATEST};

/// Lambda's default `Timeout`, in seconds.
pub const DEFAULT_TIMEOUT_S: u32 = 3;
/// Lambda's default `MemorySize`, in MB.
pub const DEFAULT_MEMORY_MB: u32 = 128;
/// Lambda's default `EphemeralStorage.Size`, in MB.
pub const DEFAULT_EPHEMERAL_MB: u32 = 512;
/// Lambda's default architecture.
pub const DEFAULT_ARCHITECTURE: &str = "x86_64";
/// `State` of every stored version: code is unpacked before the call returns.
pub const STATE_ACTIVE: &str = "Active";
/// `LastUpdateStatus` of every stored version, for the same reason.
pub const UPDATE_SUCCESSFUL: &str = "Successful";

/// One version of a function (`$LATEST` or a published number), as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct FunctionConfig {
    /// Function name (not the ARN).
    pub name: String,
    pub runtime: Runtime,
    pub handler: String,
    /// IAM role ARN as given; stored, never used.
    pub role: String,
    pub description: String,
    pub timeout_s: u32,
    pub memory_mb: u32,
    /// User environment variables (`Environment.Variables`).
    pub env: BTreeMap<String, String>,
    /// Size of `/tmp`, in MB.
    pub ephemeral_storage_mb: u32,
    /// Exactly one of `x86_64`, `arm64`.
    pub architectures: Vec<String>,
    /// SHA-256 of the zip, lower-case hex; see [`FunctionConfig::code_sha256_base64`].
    pub code_sha256: String,
    /// Size of the zip in bytes (Lambda's `CodeSize`).
    pub code_size: u64,
    /// The unpacked, read-only tree to mount at `/var/task`.
    pub code_dir: PathBuf,
    /// `$LATEST` or `"1"`, `"2"`, ….
    pub version: String,
    /// UUID v4, new on every change of this version (published versions never change).
    pub revision_id: String,
    /// `YYYY-MM-DDThh:mm:ss.sss+0000`, UTC.
    pub last_modified: String,
    /// Always [`STATE_ACTIVE`].
    pub state: String,
    /// Always [`UPDATE_SUCCESSFUL`].
    pub last_update_status: String,
    /// Function-wide reserved concurrency (the same on every version), if set.
    pub reserved_concurrency: Option<u32>,
}

impl FunctionConfig {
    /// `CodeSha256` as Lambda shows it: base64 of the raw 32 bytes (44 characters).
    pub fn code_sha256_base64(&self) -> String {
        hex_sha256_to_base64(&self.code_sha256)
    }

    /// `FunctionArn`: unqualified for `$LATEST` (as Get/Create/Update return it), qualified
    /// with the number for a published version.
    pub fn arn(&self, account: &Account) -> String {
        if self.version == LATEST {
            account.function_arn(&self.name, None)
        } else {
            account.function_arn(&self.name, Some(&self.version))
        }
    }
}

/// Base64 of the bytes a 64-digit hex string encodes, via the code store's own encoder so the
/// two can never disagree on `CodeSha256`.
pub(crate) fn hex_sha256_to_base64(hex: &str) -> String {
    CodeRef {
        sha256: hex.to_owned(),
        dir: PathBuf::new(),
        unpacked_bytes: 0,
        zipped_bytes: 0,
        newly_unpacked: false,
    }
    .sha256_base64()
}

/// An alias: a named pointer to a version, optionally splitting traffic with a second one.
#[derive(Debug, Clone, PartialEq)]
pub struct AliasConfig {
    /// Function name.
    pub function: String,
    /// Alias name.
    pub name: String,
    /// `$LATEST` or a version number.
    pub function_version: String,
    pub description: String,
    /// `RoutingConfig.AdditionalVersionWeights`: version → share of traffic in 0.0–1.0.
    pub routing: BTreeMap<String, f64>,
    /// UUID v4, new on every change of the alias.
    pub revision_id: String,
}

impl AliasConfig {
    /// `AliasArn`: `arn:…:function:<function>:<alias>`.
    pub fn arn(&self, account: &Account) -> String {
        account.function_arn(&self.function, Some(&self.name))
    }
}

/// Provisioned concurrency requested for one version or alias. Hearth's pool makes the
/// instances; the registry only remembers the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvisionedConfig {
    /// Version number or alias name (never `$LATEST`).
    pub qualifier: String,
    /// `RequestedProvisionedConcurrentExecutions`, ≥ 1.
    pub requested: u32,
    /// `YYYY-MM-DDThh:mm:ss+0000` (this API's format has no milliseconds).
    pub last_modified: String,
}

/// What the account uses, for `GetAccountSettings`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountUsage {
    /// Number of functions.
    pub function_count: u64,
    /// Sum of `CodeSize` over every version of every function, as Lambda counts it.
    pub total_code_size: u64,
    /// Sum of reserved concurrency over all functions.
    pub reserved_concurrency: u64,
}

/// Input of `CreateFunction`. [`CreateInput::new`] fills Lambda's defaults.
#[derive(Debug, Clone)]
pub struct CreateInput<'a> {
    pub name: String,
    pub runtime: Runtime,
    pub handler: String,
    pub role: String,
    pub description: String,
    pub timeout_s: u32,
    pub memory_mb: u32,
    pub env: BTreeMap<String, String>,
    pub ephemeral_storage_mb: u32,
    pub architectures: Vec<String>,
    /// The deployment zip (decoded `Code.ZipFile`).
    pub zip: &'a [u8],
    /// Also publish version 1, in the same transaction.
    pub publish: bool,
}

impl<'a> CreateInput<'a> {
    /// A function with Lambda's defaults for everything not given, and an empty role.
    pub fn new(name: &str, runtime: Runtime, handler: &str, zip: &'a [u8]) -> Self {
        CreateInput {
            name: name.to_owned(),
            runtime,
            handler: handler.to_owned(),
            role: String::new(),
            description: String::new(),
            timeout_s: DEFAULT_TIMEOUT_S,
            memory_mb: DEFAULT_MEMORY_MB,
            env: BTreeMap::new(),
            ephemeral_storage_mb: DEFAULT_EPHEMERAL_MB,
            architectures: vec![DEFAULT_ARCHITECTURE.to_owned()],
            zip,
            publish: false,
        }
    }
}

/// Input of `UpdateFunctionCode`.
#[derive(Debug, Clone, Copy)]
pub struct CodeUpdate<'a> {
    /// The new deployment zip.
    pub zip: &'a [u8],
    /// If given, must equal `$LATEST`'s current revision.
    pub revision_id: Option<&'a str>,
    /// Also publish a version, in the same transaction.
    pub publish: bool,
}

/// Input of `UpdateFunctionConfiguration`: `None` leaves a field as it is; `env` replaces the
/// whole map when given.
#[derive(Debug, Clone, Default)]
pub struct ConfigUpdate {
    pub runtime: Option<Runtime>,
    pub handler: Option<String>,
    pub role: Option<String>,
    pub description: Option<String>,
    pub timeout_s: Option<u32>,
    pub memory_mb: Option<u32>,
    pub env: Option<BTreeMap<String, String>>,
    pub ephemeral_storage_mb: Option<u32>,
}

/// Input of `CreateAlias`.
#[derive(Debug, Clone, Default)]
pub struct AliasInput {
    pub name: String,
    pub function_version: String,
    pub description: String,
    pub routing: BTreeMap<String, f64>,
}

/// Input of `UpdateAlias`: `None` leaves a field as it is; `routing` replaces the whole map.
#[derive(Debug, Clone, Default)]
pub struct AliasUpdate {
    pub function_version: Option<String>,
    pub description: Option<String>,
    pub routing: Option<BTreeMap<String, f64>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_of_known_sha256() {
        // sha256("") in hex and as Lambda prints it.
        let hex = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(
            hex_sha256_to_base64(hex),
            "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="
        );
    }

    #[test]
    fn create_input_has_lambda_defaults() {
        let i = CreateInput::new("f", Runtime::Python312, "app.handler", b"");
        assert_eq!(
            (i.timeout_s, i.memory_mb, i.ephemeral_storage_mb),
            (3, 128, 512)
        );
        assert_eq!(i.architectures, vec!["x86_64".to_owned()]);
        assert!(!i.publish);
    }
}
