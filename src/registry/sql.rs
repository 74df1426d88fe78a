//! SQL shared by the registry's operations: transactions, reading and writing version rows,
//! lookups, qualifier resolution, pagination, and the AWS error values several files build.
//!
//! Does not: decide what an operation does (`store`, `versions`, `aliases`, `account` do);
//! every function here works inside whatever transaction the caller holds.

use std::path::Path;
use std::time::SystemTime;

use rusqlite::types::Type;
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction, TransactionBehavior};

use crate::function::env::uuid_v4;

use super::store::MAX_PAGE;
use super::types::{STATE_ACTIVE, UPDATE_SUCCESSFUL};
use super::{validate, Account, FunctionConfig, RegistryError, LATEST};

/// Columns of a version joined with its function, in the order [`config_from_row`] reads them.
pub(super) const VERSION_SELECT: &str = "SELECT v.function, v.version, v.runtime, v.handler, \
     v.role, v.description, v.timeout_s, v.memory_mb, v.env, v.ephemeral_mb, v.architectures, \
     v.code_sha256, v.code_size, v.revision_id, v.last_modified, f.reserved_concurrency \
     FROM versions v JOIN functions f ON f.name = v.function";

/// Begins a write transaction, taking the write lock at once.
pub(super) fn begin(conn: &mut Connection) -> Result<Transaction<'_>, RegistryError> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(RegistryError::sql("begin"))
}

/// `LastModified` for a change made now.
pub(super) fn now() -> String {
    validate::last_modified(SystemTime::now())
}

pub(super) fn already_exists(name: &str) -> RegistryError {
    RegistryError::Conflict(format!("Function already exist: {name}"))
}

pub(super) fn bad_marker(m: &str) -> RegistryError {
    RegistryError::InvalidParameter(format!("Invalid marker: {m}"))
}

/// `FunctionNotFound` with the ARN qualified as asked (unqualified for none or `$LATEST`).
pub(super) fn not_found(account: &Account, name: &str, qualifier: Option<&str>) -> RegistryError {
    RegistryError::FunctionNotFound {
        arn: account.function_arn(name, qualifier.filter(|q| *q != LATEST)),
    }
}

/// Checks a caller's `RevisionId` against the stored one.
pub(super) fn check_revision(given: Option<&str>, current: &str) -> Result<(), RegistryError> {
    match given {
        Some(g) if g != current => Err(RegistryError::PreconditionFailed(
            "The Revision Id provided does not match the latest Revision Id. Call the \
             GetFunction/GetAlias API to retrieve the latest Revision Id"
                .into(),
        )),
        _ => Ok(()),
    }
}

/// `MaxItems`: absent → [`MAX_PAGE`]; 0 refused; larger values capped.
pub(super) fn page_size(max_items: Option<u32>) -> Result<u32, RegistryError> {
    match max_items {
        None => Ok(MAX_PAGE),
        Some(0) => Err(RegistryError::InvalidParameter(
            "1 validation error detected: Value '0' at 'maxItems' failed to satisfy constraint: \
             Member must have value greater than or equal to 1"
                .into(),
        )),
        Some(n) => Ok(n.min(MAX_PAGE)),
    }
}

/// Splits `limit + 1` fetched rows into a page and the next marker (the last item's key).
pub(super) fn paginate<T>(
    mut rows: Vec<T>,
    limit: u32,
    key: impl Fn(&T) -> String,
) -> (Vec<T>, Option<String>) {
    if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        let next = rows.last().map(key);
        (rows, next)
    } else {
        (rows, None)
    }
}

pub(super) fn seq_of(version: &str) -> i64 {
    version.parse().unwrap_or(0)
}

pub(super) fn touch(config: &mut FunctionConfig) {
    config.revision_id = uuid_v4();
    config.last_modified = now();
}

pub(super) fn function_exists(conn: &Connection, name: &str) -> Result<bool, RegistryError> {
    conn.prepare_cached("SELECT 1 FROM functions WHERE name = ?1")
        .and_then(|mut stmt| stmt.query_row([name], |_| Ok(())))
        .optional()
        .map(|r| r.is_some())
        .map_err(RegistryError::sql("read function"))
}

/// The version a qualifier names: `$LATEST`, the number itself, or an alias's target. Fails
/// with `FunctionNotFound` if the function or the alias does not exist.
pub(super) fn resolve(
    conn: &Connection,
    account: &Account,
    name: &str,
    qualifier: Option<&str>,
) -> Result<String, RegistryError> {
    if !function_exists(conn, name)? {
        return Err(not_found(account, name, None));
    }
    match qualifier {
        None | Some(LATEST) => Ok(LATEST.to_owned()),
        Some(q) if validate::is_version_number(q) => Ok(q.to_owned()),
        Some(alias) => conn
            .query_row(
                "SELECT function_version FROM aliases WHERE function = ?1 AND name = ?2",
                [name, alias],
                |r| r.get(0),
            )
            .optional()
            .map_err(RegistryError::sql("read alias"))?
            .ok_or_else(|| not_found(account, name, Some(alias))),
    }
}

pub(super) fn load_latest(
    conn: &Connection,
    code_root: &Path,
    account: &Account,
    name: &str,
) -> Result<FunctionConfig, RegistryError> {
    load_version(conn, code_root, name, LATEST)?.ok_or_else(|| not_found(account, name, None))
}

pub(super) fn load_version(
    conn: &Connection,
    code_root: &Path,
    name: &str,
    version: &str,
) -> Result<Option<FunctionConfig>, RegistryError> {
    let sql = format!("{VERSION_SELECT} WHERE v.function = ?1 AND v.version = ?2");
    Ok(query_configs(conn, code_root, &sql, params![name, version])?.pop())
}

pub(super) fn query_configs(
    conn: &Connection,
    code_root: &Path,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<FunctionConfig>, RegistryError> {
    // Cached: Invoke reads a function version on every call, and parsing this statement
    // was a visible share of the warm path.
    let mut stmt = conn
        .prepare_cached(sql)
        .map_err(RegistryError::sql("read versions"))?;
    let rows = stmt
        .query_map(params, |r| config_from_row(r, code_root))
        .and_then(|rows| rows.collect())
        .map_err(RegistryError::sql("read versions"));
    rows
}

/// A stored value that does not parse, reported through SQLite's own conversion error.
fn conversion(idx: usize, e: impl std::error::Error + Send + Sync + 'static) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, Box::new(e))
}

/// Reads one row of [`VERSION_SELECT`].
fn config_from_row(r: &Row<'_>, code_root: &Path) -> rusqlite::Result<FunctionConfig> {
    let runtime: String = r.get(2)?;
    let env: String = r.get(8)?;
    let arch: String = r.get(10)?;
    let code_sha256: String = r.get(11)?;
    let code_size: i64 = r.get(12)?;
    Ok(FunctionConfig {
        name: r.get(0)?,
        version: r.get(1)?,
        runtime: runtime.parse().map_err(|e| conversion(2, e))?,
        handler: r.get(3)?,
        role: r.get(4)?,
        description: r.get(5)?,
        timeout_s: r.get(6)?,
        memory_mb: r.get(7)?,
        env: serde_json::from_str(&env).map_err(|e| conversion(8, e))?,
        ephemeral_storage_mb: r.get(9)?,
        architectures: serde_json::from_str(&arch).map_err(|e| conversion(10, e))?,
        code_dir: code_root.join(&code_sha256),
        code_sha256,
        code_size: u64::try_from(code_size).unwrap_or(0),
        revision_id: r.get(13)?,
        last_modified: r.get(14)?,
        state: STATE_ACTIVE.to_owned(),
        last_update_status: UPDATE_SUCCESSFUL.to_owned(),
        reserved_concurrency: r.get(15)?,
    })
}

fn json<T: serde::Serialize>(v: &T) -> String {
    // Maps of strings and lists of strings always serialise.
    serde_json::to_string(v).unwrap_or_default()
}

pub(super) fn insert_version(
    tx: &Connection,
    c: &FunctionConfig,
    seq: i64,
) -> Result<(), RegistryError> {
    tx.execute(
        "INSERT INTO versions (function, version, seq, runtime, handler, role, description, \
         timeout_s, memory_mb, env, ephemeral_mb, architectures, code_sha256, code_size, \
         revision_id, last_modified) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
        params![
            c.name,
            c.version,
            seq,
            c.runtime.name(),
            c.handler,
            c.role,
            c.description,
            c.timeout_s,
            c.memory_mb,
            json(&c.env),
            c.ephemeral_storage_mb,
            json(&c.architectures),
            c.code_sha256,
            c.code_size as i64,
            c.revision_id,
            c.last_modified,
        ],
    )
    .map_err(RegistryError::sql("insert version"))?;
    Ok(())
}

pub(super) fn update_latest(tx: &Connection, c: &FunctionConfig) -> Result<(), RegistryError> {
    tx.execute(
        "UPDATE versions SET runtime = ?3, handler = ?4, role = ?5, description = ?6, \
         timeout_s = ?7, memory_mb = ?8, env = ?9, ephemeral_mb = ?10, architectures = ?11, \
         code_sha256 = ?12, code_size = ?13, revision_id = ?14, last_modified = ?15 \
         WHERE function = ?1 AND version = ?2",
        params![
            c.name,
            LATEST,
            c.runtime.name(),
            c.handler,
            c.role,
            c.description,
            c.timeout_s,
            c.memory_mb,
            json(&c.env),
            c.ephemeral_storage_mb,
            json(&c.architectures),
            c.code_sha256,
            c.code_size as i64,
            c.revision_id,
            c.last_modified,
        ],
    )
    .map_err(RegistryError::sql("update $LATEST"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_size_defaults_caps_and_refuses_zero() {
        assert_eq!(page_size(None).unwrap(), MAX_PAGE);
        assert_eq!(page_size(Some(7)).unwrap(), 7);
        assert_eq!(page_size(Some(10_000)).unwrap(), MAX_PAGE);
        assert!(matches!(
            page_size(Some(0)),
            Err(RegistryError::InvalidParameter(_))
        ));
    }

    #[test]
    fn paginate_gives_a_marker_only_when_more_rows_exist() {
        let key = |n: &u32| n.to_string();
        assert_eq!(
            paginate(vec![1, 2, 3], 2, key),
            (vec![1, 2], Some("2".to_owned()))
        );
        assert_eq!(paginate(vec![1, 2], 2, key), (vec![1, 2], None));
    }

    #[test]
    fn revision_check_only_when_given() {
        check_revision(None, "a").unwrap();
        check_revision(Some("a"), "a").unwrap();
        assert!(matches!(
            check_revision(Some("b"), "a"),
            Err(RegistryError::PreconditionFailed(_))
        ));
    }

    #[test]
    fn not_found_arn_is_unqualified_for_latest() {
        let a = crate::registry::tests::account();
        let arn = |q| match not_found(&a, "f", q) {
            RegistryError::FunctionNotFound { arn } => arn,
            other => panic!("{other:?}"),
        };
        assert!(arn(None).ends_with(":function:f"));
        assert!(arn(Some(LATEST)).ends_with(":function:f"));
        assert!(arn(Some("2")).ends_with(":function:f:2"));
    }
}
