//! The registry's SQLite file: connection settings, schema and migrations.
//!
//! Owns `<state>/registry.sqlite3` and its `-wal`/`-shm` companions (mode 0600; SQLite gives the
//! companions the database file's mode). Settings, and why:
//! - `journal_mode=WAL`: a commit appends to the log instead of rewriting pages, and a crash at
//!   any byte leaves either the old or the new transaction (the log is checksummed).
//! - `synchronous=FULL`: the log is `fsync`ed at every commit. With WAL, `NORMAL` would already
//!   survive SIGKILL (the OS keeps written pages), but a power cut could roll back transactions
//!   committed since the last checkpoint — changes the client was told had succeeded. Control
//!   plane writes are rare (one per deploy or config change), so one `fsync` each is cheap.
//! - `foreign_keys=ON`: a version row cannot name a missing function, nor an alias a missing
//!   version, even if a code path forgets a check.
//! - `busy_timeout`: someone inspecting the file with the `sqlite3` shell should delay, not fail,
//!   a daemon write.
//!
//! Schema versions: table `schema_version` holds one row. [`MIGRATIONS`]`[i]` takes version `i`
//! to `i + 1`; all pending ones run in one transaction, so a crash mid-migration leaves the old
//! schema. A database from a newer build is refused rather than guessed at.
//!
//! Does not: hold queries of the operations (see `store`, `aliases`, `concurrency`).

use std::fs::{self, DirBuilder, Permissions};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

use super::RegistryError;

/// File name of the database inside the state directory.
pub const DB_FILE: &str = "registry.sqlite3";

/// Schema version this build writes.
pub const SCHEMA_VERSION: i64 = 1;

/// `MIGRATIONS[i]` migrates schema version `i` to `i + 1`.
pub const MIGRATIONS: &[&str] = &[
    // 0 → 1: the initial schema. `STRICT` makes SQLite refuse values of the wrong type.
    "CREATE TABLE functions (
        name TEXT PRIMARY KEY NOT NULL,
        -- Version numbers are never reused, even after a version is deleted (as in Lambda).
        next_version INTEGER NOT NULL,
        reserved_concurrency INTEGER CHECK (reserved_concurrency >= 0),
        -- $LATEST's revision when it was last published, and the version it became: publishing
        -- an unchanged $LATEST returns that version instead of a new one (as in Lambda).
        last_published_revision TEXT,
        last_published_version TEXT
    ) STRICT;
    CREATE TABLE versions (
        function TEXT NOT NULL REFERENCES functions(name),
        version TEXT NOT NULL,
        -- 0 for $LATEST, N for version N: the listing order.
        seq INTEGER NOT NULL,
        runtime TEXT NOT NULL,
        handler TEXT NOT NULL,
        role TEXT NOT NULL,
        description TEXT NOT NULL,
        timeout_s INTEGER NOT NULL,
        memory_mb INTEGER NOT NULL,
        env TEXT NOT NULL,
        ephemeral_mb INTEGER NOT NULL,
        architectures TEXT NOT NULL,
        code_sha256 TEXT NOT NULL,
        code_size INTEGER NOT NULL,
        revision_id TEXT NOT NULL,
        last_modified TEXT NOT NULL,
        PRIMARY KEY (function, version),
        UNIQUE (function, seq)
    ) STRICT;
    CREATE TABLE aliases (
        function TEXT NOT NULL,
        name TEXT NOT NULL,
        function_version TEXT NOT NULL,
        description TEXT NOT NULL,
        routing TEXT NOT NULL,
        revision_id TEXT NOT NULL,
        PRIMARY KEY (function, name),
        FOREIGN KEY (function, function_version) REFERENCES versions(function, version)
    ) STRICT;
    CREATE TABLE provisioned (
        function TEXT NOT NULL REFERENCES functions(name),
        qualifier TEXT NOT NULL,
        requested INTEGER NOT NULL CHECK (requested >= 1),
        last_modified TEXT NOT NULL,
        PRIMARY KEY (function, qualifier)
    ) STRICT;
    CREATE TABLE settings (
        key TEXT PRIMARY KEY NOT NULL,
        value TEXT NOT NULL
    ) STRICT;",
];

/// Opens (creating if needed) the database in `state_dir` (created 0o700 if missing), applies
/// the connection settings and runs pending migrations.
pub fn open(state_dir: &Path) -> Result<Connection, RegistryError> {
    if !state_dir.is_dir() {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(state_dir)
            .map_err(|e| RegistryError::io("cannot create state directory", state_dir, e))?;
    }
    let path = state_dir.join(DB_FILE);
    let mut conn = Connection::open(&path).map_err(RegistryError::sql("open"))?;
    // Function environments may hold secrets.
    fs::set_permissions(&path, Permissions::from_mode(0o600))
        .map_err(|e| RegistryError::io("cannot set mode of", &path, e))?;
    let mode: String = conn
        .query_row("PRAGMA journal_mode=WAL", [], |r| r.get(0))
        .map_err(RegistryError::sql("set journal_mode"))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(RegistryError::Corrupt {
            what: "journal mode (WAL refused)",
            value: mode,
        });
    }
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(RegistryError::sql("set synchronous"))?;
    conn.pragma_update(None, "foreign_keys", "ON")
        .map_err(RegistryError::sql("set foreign_keys"))?;
    conn.busy_timeout(Duration::from_secs(5))
        .map_err(RegistryError::sql("set busy_timeout"))?;
    migrate(&mut conn)?;
    Ok(conn)
}

/// The schema version stored in `conn` (0 for a new, empty database).
pub fn stored_version(conn: &Connection) -> Result<i64, RegistryError> {
    let has_table: bool = conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE type = 'table' AND name = 'schema_version'",
            [],
            |r| r.get::<_, i64>(0),
        )
        .map(|n| n > 0)
        .map_err(RegistryError::sql("read schema"))?;
    if !has_table {
        return Ok(0);
    }
    let v: Option<i64> = conn
        .query_row("SELECT version FROM schema_version", [], |r| r.get(0))
        .optional()
        .map_err(RegistryError::sql("read schema_version"))?;
    Ok(v.unwrap_or(0))
}

/// Runs every pending migration in one transaction.
fn migrate(conn: &mut Connection) -> Result<(), RegistryError> {
    // IMMEDIATE takes the write lock before reading the version, so two openers cannot both
    // migrate (only one registry should be open, but the file must not depend on it).
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(RegistryError::sql("begin migration"))?;
    let found = stored_version(&tx)?;
    if found > SCHEMA_VERSION {
        return Err(RegistryError::SchemaTooNew {
            found,
            supported: SCHEMA_VERSION,
        });
    }
    if found == SCHEMA_VERSION {
        return Ok(());
    }
    tx.execute_batch("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        .map_err(RegistryError::sql("create schema_version"))?;
    for sql in &MIGRATIONS[found as usize..] {
        tx.execute_batch(sql)
            .map_err(RegistryError::sql("migrate"))?;
    }
    tx.execute("DELETE FROM schema_version", [])
        .map_err(RegistryError::sql("write schema_version"))?;
    tx.execute(
        "INSERT INTO schema_version (version) VALUES (?1)",
        [SCHEMA_VERSION],
    )
    .map_err(RegistryError::sql("write schema_version"))?;
    tx.commit().map_err(RegistryError::sql("commit migration"))
}

/// `PRAGMA integrity_check` plus `foreign_key_check`: `"ok"` or the problems found.
pub fn integrity_check(conn: &Connection) -> Result<String, RegistryError> {
    let mut stmt = conn
        .prepare("PRAGMA integrity_check")
        .map_err(RegistryError::sql("integrity_check"))?;
    let rows: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .and_then(|rows| rows.collect())
        .map_err(RegistryError::sql("integrity_check"))?;
    let mut stmt = conn
        .prepare("PRAGMA foreign_key_check")
        .map_err(RegistryError::sql("foreign_key_check"))?;
    let fk: Vec<String> = stmt
        .query_map([], |r| {
            Ok(format!(
                "foreign key violation in {}",
                r.get::<_, String>(0)?
            ))
        })
        .and_then(|rows| rows.collect())
        .map_err(RegistryError::sql("foreign_key_check"))?;
    if rows == ["ok"] && fk.is_empty() {
        Ok("ok".to_owned())
    } else {
        Ok(rows.into_iter().chain(fk).collect::<Vec<_>>().join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn new_database_gets_current_schema_and_settings() {
        let tmp = tempfile::tempdir().unwrap();
        let state = tmp.path().join("state");
        let conn = open(&state).unwrap();
        assert_eq!(stored_version(&conn).unwrap(), SCHEMA_VERSION);
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(mode, "wal");
        let sync: i64 = conn
            .query_row("PRAGMA synchronous", [], |r| r.get(0))
            .unwrap();
        assert_eq!(sync, 2, "synchronous=FULL");
        let fk: i64 = conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .unwrap();
        assert_eq!(fk, 1);
        assert_eq!(integrity_check(&conn).unwrap(), "ok");
        assert_eq!(fs::metadata(&state).unwrap().mode() & 0o777, 0o700);
        assert_eq!(
            fs::metadata(state.join(DB_FILE)).unwrap().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn reopening_keeps_data_and_does_not_migrate_again() {
        let tmp = tempfile::tempdir().unwrap();
        {
            let conn = open(tmp.path()).unwrap();
            conn.execute("INSERT INTO settings VALUES ('k', 'v')", [])
                .unwrap();
        }
        let conn = open(tmp.path()).unwrap();
        let v: String = conn
            .query_row("SELECT value FROM settings WHERE key = 'k'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(v, "v");
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM schema_version", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 1);
    }

    #[test]
    fn newer_schema_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        {
            let conn = open(tmp.path()).unwrap();
            conn.execute("UPDATE schema_version SET version = 99", [])
                .unwrap();
        }
        match open(tmp.path()) {
            Err(RegistryError::SchemaTooNew { found: 99, .. }) => {}
            other => panic!("expected SchemaTooNew, got {other:?}"),
        }
    }

    #[test]
    fn foreign_keys_are_enforced() {
        let tmp = tempfile::tempdir().unwrap();
        let conn = open(tmp.path()).unwrap();
        let err = conn.execute(
            "INSERT INTO provisioned VALUES ('missing', '1', 1, 'now')",
            [],
        );
        assert!(err.is_err(), "row naming a missing function was accepted");
    }
}
