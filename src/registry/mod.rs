//! The durable function registry: functions, published versions, aliases, concurrency settings
//! and daemon settings, kept in SQLite beside the content-addressed code.
//!
//! Owns: `<state>/registry.sqlite3` (settings, schema and migrations in [`schema`]), the records
//! it holds ([`types`]), the checks on AWS's documented limits ([`validate`]), the kept
//! deployment zips `<state>/code-zips/<sha256>.zip` and the `fsync` of unpacked trees
//! ([`blobs`]), and which code hashes are still referenced (so [`Registry::sweep_code`] may
//! delete the rest). The unpacked trees live in the
//! [`CodeStore`](crate::function::code::CodeStore) at `<state>/code`. Operations are split by
//! concern: functions in [`store`], published versions in [`versions`], aliases in [`aliases`],
//! concurrency, usage and settings in [`account`]; the SQL they share is in `sql`.
//!
//! Crash safety (the whole point of this module): every operation is one SQLite transaction in
//! WAL mode with `synchronous=FULL`. Code is imported, its tree and zip `fsync`ed, *before* the
//! row naming it is committed, so a committed row never points at missing or partial code; a
//! crash between the two leaves an unreferenced tree that [`Registry::open`] sweeps. An
//! operation that returned `Ok` survives SIGKILL (tested by killing a child at random points)
//! and, by that `fsync` order, power loss (argued, not tested); one that did not return either
//! happened entirely or not at all.
//!
//! Does not: speak HTTP or pick HTTP status codes (control maps [`RegistryError`] variants to
//! AWS error types), parse JSON request bodies, decode base64, run or pool code, or choose a
//! version by alias routing weights at invoke time (dispatch does, from [`AliasConfig`]).
//!
//! Limits: one `Registry` per state directory, enforced by an exclusive `flock` on
//! `<state>/registry.lock` (open sweeps code, so a second daemon would delete the first one's).
//! Calls are blocking SQLite and file I/O, made from the daemon's single control thread; an
//! import of a 50 MB zip takes as long as unpacking it. `Registry` is `Send`, not `Sync`.
//! Error messages copy AWS's wording (capitalised, some with a trailing period) because clients
//! show them verbatim; that is the one deliberate exception to the house message style.

pub mod account;
pub mod aliases;
pub mod blobs;
#[cfg(test)]
mod crash;
pub mod schema;
mod sql;
pub mod store;
pub mod types;
pub mod validate;
pub mod versions;

use std::io;
use std::path::PathBuf;

use crate::function::code::CodeError;

pub use store::Registry;
pub use types::{
    AccountUsage, AliasConfig, AliasInput, AliasUpdate, CodeUpdate, ConfigUpdate, CreateInput,
    FunctionConfig, ProvisionedConfig,
};

/// The unpublished version's name.
pub const LATEST: &str = "$LATEST";

/// Region and account id that ARNs are built from; fixed for the life of the daemon.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// E.g. `us-east-1`.
    pub region: String,
    /// Twelve digits, e.g. `123456789012`.
    pub account_id: String,
}

impl Account {
    /// `arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>]`.
    pub fn function_arn(&self, name: &str, qualifier: Option<&str>) -> String {
        let base = format!(
            "arn:aws:lambda:{}:{}:function:{name}",
            self.region, self.account_id
        );
        match qualifier {
            Some(q) => format!("{base}:{q}"),
            None => base,
        }
    }
}

/// Errors of the registry. Variants map one-to-one onto AWS error types: the `*NotFound` ones
/// to `ResourceNotFoundException` (provisioned: `ProvisionedConcurrencyConfigNotFoundException`),
/// `Conflict` to `ResourceConflictException`, `PreconditionFailed` to
/// `PreconditionFailedException`, `InvalidParameter` and `Code` (except its `Io` variant) to
/// `InvalidParameterValueException`, the rest to `ServiceException`.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// No such function, version, or qualifier (the ARN is qualified when one was asked for).
    #[error("Function not found: {arn}")]
    FunctionNotFound { arn: String },
    /// No such alias.
    #[error("Cannot find alias arn: {arn}")]
    AliasNotFound { arn: String },
    /// No provisioned concurrency config for this qualifier.
    #[error("No Provisioned Concurrency Config found for this function")]
    ProvisionedNotFound { arn: String },
    /// The resource exists already, or is in use (e.g. a version an alias points to).
    #[error("{0}")]
    Conflict(String),
    /// A `RevisionId` or `CodeSha256` given by the caller does not match the stored one.
    #[error("{0}")]
    PreconditionFailed(String),
    /// A parameter breaks a documented limit or pattern; the message is AWS-like.
    #[error("{0}")]
    InvalidParameter(String),
    /// The zip was refused, or the code store failed.
    #[error(transparent)]
    Code(#[from] CodeError),
    /// SQLite failed.
    #[error("registry database: {op}: {source}")]
    Sqlite {
        op: &'static str,
        #[source]
        source: rusqlite::Error,
    },
    /// A file system operation outside the code store failed.
    #[error("{op} {path}: {source}")]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// A stored row cannot be read back (hand-edited or from a newer schema).
    #[error("registry database: corrupt {what}: {value:?}")]
    Corrupt { what: &'static str, value: String },
    /// Another registry (another daemon) holds the state directory's lock.
    #[error("state directory is in use by another hearth daemon: {path} is locked")]
    Locked { path: PathBuf },
    /// The database was written by a newer Hearth.
    #[error("registry database schema version {found} is newer than this build's {supported}")]
    SchemaTooNew { found: i64, supported: i64 },
}

impl RegistryError {
    /// A closure mapping a SQLite error of operation `op`, for `map_err`.
    pub(crate) fn sql(op: &'static str) -> impl FnOnce(rusqlite::Error) -> RegistryError {
        move |source| RegistryError::Sqlite { op, source }
    }

    pub(crate) fn io(op: &'static str, path: &std::path::Path, source: io::Error) -> Self {
        RegistryError::Io {
            op,
            path: path.to_path_buf(),
            source,
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::{Cursor, Write};

    /// A test account.
    pub(crate) fn account() -> Account {
        Account {
            region: "us-east-1".into(),
            account_id: "123456789012".into(),
        }
    }

    /// A zip holding one file, `data.txt`, with `content`.
    pub(crate) fn zip_with(content: &str) -> Vec<u8> {
        let mut w = zip::ZipWriter::new(Cursor::new(Vec::new()));
        w.start_file("data.txt", zip::write::SimpleFileOptions::default())
            .unwrap();
        w.write_all(content.as_bytes()).unwrap();
        w.finish().unwrap().into_inner()
    }

    /// A registry on a fresh temporary state directory.
    pub(crate) fn open_tmp() -> (tempfile::TempDir, Registry) {
        let tmp = tempfile::tempdir().unwrap();
        let reg = Registry::open(tmp.path(), account()).unwrap();
        (tmp, reg)
    }

    #[test]
    fn arns_are_qualified_only_when_asked() {
        let a = Account {
            region: "us-east-1".into(),
            account_id: "123456789012".into(),
        };
        assert_eq!(
            a.function_arn("f", None),
            "arn:aws:lambda:us-east-1:123456789012:function:f"
        );
        assert_eq!(
            a.function_arn("f", Some("$LATEST")),
            "arn:aws:lambda:us-east-1:123456789012:function:f:$LATEST"
        );
    }

    #[test]
    fn not_found_message_is_aws_text() {
        let e = RegistryError::FunctionNotFound {
            arn: "arn:aws:lambda:r:1:function:f".into(),
        };
        assert_eq!(
            e.to_string(),
            "Function not found: arn:aws:lambda:r:1:function:f"
        );
    }

    #[test]
    fn registry_is_send() {
        fn send<T: Send>() {}
        send::<Registry>();
    }
}
