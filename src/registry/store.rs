//! SQLite persistence of functions and their versions: the [`Registry`] handle, opening and
//! sweeping the state directory, and function CRUD, publishing and listing.
//!
//! Every write follows one order: validate the input; import the zip into the code store,
//! `fsync` its tree and keep the zip ([`super::blobs`]); then one `BEGIN IMMEDIATE` transaction
//! re-checks existence and revisions and writes the rows; commit (`fsync` of the WAL). Only
//! then does the call return `Ok`. A crash before the commit leaves, at worst, a tree and zip no
//! row names; [`Registry::open`] deletes those, so an unreferenced tree from a crashed run (whose
//! data might not have reached the disk before a power cut) is never reused.
//!
//! Does not: aliases ([`super::aliases`]), concurrency and settings ([`super::account`]).
//!
//! Limits: lists return at most [`MAX_PAGE`] items per call, in a stable order (functions by
//! name, versions by number); the marker is opaque to clients (a name, or `name:seq`, or a
//! number). Publishing an unchanged `$LATEST` returns the version already published from it,
//! as Lambda does.

use std::collections::HashSet;
use std::fs::{DirBuilder, File, OpenOptions, TryLockError};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use rusqlite::{params, Connection};

use crate::function::code::{CodeRef, CodeStore};
use crate::function::env::uuid_v4;

use super::blobs::{sync_tree, ZipKeep};
use super::sql::{
    already_exists, begin, check_revision, function_exists, insert_version, load_latest,
    load_version, not_found, now, page_size, paginate, query_configs, resolve, touch,
    update_latest, VERSION_SELECT,
};
use super::types::{STATE_ACTIVE, UPDATE_SUCCESSFUL};
use super::{
    schema, validate, Account, CodeUpdate, ConfigUpdate, CreateInput, FunctionConfig,
    RegistryError, LATEST,
};

/// Largest page any list returns, whatever the caller asks (Lambda's cap for functions).
pub const MAX_PAGE: u32 = 50;
/// Directory of the code store inside the state directory.
pub const CODE_DIR: &str = "code";
/// Directory of kept zips inside the state directory.
pub const ZIP_DIR: &str = "code-zips";
/// The account's concurrency quota unless [`Registry::set_concurrency_limit`] says otherwise.
pub const DEFAULT_CONCURRENCY_LIMIT: u32 = 1000;

/// File whose `flock` marks the state directory as in use.
pub const LOCK_FILE: &str = "registry.lock";

/// Creates the state directory (0o700) if needed and takes the exclusive lock without waiting.
/// The kernel drops the lock when the process dies, however it dies.
fn lock_state_dir(state_dir: &Path) -> Result<File, RegistryError> {
    if !state_dir.is_dir() {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(state_dir)
            .map_err(|e| RegistryError::io("cannot create state directory", state_dir, e))?;
    }
    let path = state_dir.join(LOCK_FILE);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(|e| RegistryError::io("cannot open", &path, e))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(RegistryError::Locked { path }),
        Err(TryLockError::Error(e)) => Err(RegistryError::io("cannot lock", &path, e)),
    }
}

/// The function registry of one state directory. See the module docs of [`super`].
#[derive(Debug)]
pub struct Registry {
    pub(super) conn: Connection,
    pub(super) code: CodeStore,
    pub(super) zips: ZipKeep,
    pub(super) account: Account,
    pub(super) concurrency_limit: u32,
    unrepaired: Vec<String>,
    /// Held open for the registry's life: the exclusive lock on the state directory.
    _lock: File,
}

impl Registry {
    /// Opens the registry in `state_dir` (database, code store, kept zips), migrating the schema,
    /// deleting code no row references, and re-unpacking from its kept zip any referenced tree
    /// that has gone missing (see [`Registry::unrepaired_code`] for those that could not be).
    pub fn open(state_dir: &Path, account: Account) -> Result<Registry, RegistryError> {
        let lock = lock_state_dir(state_dir)?;
        let conn = schema::open(state_dir)?;
        let code = CodeStore::open(&state_dir.join(CODE_DIR))?;
        let zips = ZipKeep::open(&state_dir.join(ZIP_DIR))?;
        let mut reg = Registry {
            conn,
            code,
            zips,
            account,
            concurrency_limit: DEFAULT_CONCURRENCY_LIMIT,
            unrepaired: Vec::new(),
            _lock: lock,
        };
        reg.sweep_code()?;
        reg.unrepaired = reg.repair_code()?;
        Ok(reg)
    }

    /// The account ARNs are built with.
    pub fn account(&self) -> &Account {
        &self.account
    }

    /// Hashes referenced by some version whose tree was missing at open and had no kept zip to
    /// re-unpack from (only possible if someone deleted files under the state directory).
    pub fn unrepaired_code(&self) -> &[String] {
        &self.unrepaired
    }

    /// Deletes every unpacked tree and kept zip no version references; returns their hashes.
    /// Sandboxes already running keep their bind mounts of a deleted tree.
    pub fn sweep_code(&mut self) -> Result<Vec<String>, RegistryError> {
        let keep = self.referenced_code()?;
        let mut removed = self.code.remove_unused(&keep)?;
        for sha in self.zips.remove_unused(&keep)? {
            if !removed.contains(&sha) {
                removed.push(sha);
            }
        }
        Ok(removed)
    }

    /// `PRAGMA integrity_check` and `foreign_key_check` of the database: `"ok"` or the problems.
    pub fn integrity_check(&self) -> Result<String, RegistryError> {
        schema::integrity_check(&self.conn)
    }

    /// Creates a function (and version 1 when `publish`); returns `$LATEST`, or version 1 when
    /// published. An existing name is a [`RegistryError::Conflict`].
    pub fn create_function(
        &mut self,
        input: CreateInput<'_>,
    ) -> Result<FunctionConfig, RegistryError> {
        validate::function_name(&input.name)?;
        validate::handler(&input.handler)?;
        validate::description(&input.description)?;
        validate::timeout_s(input.timeout_s)?;
        validate::memory_mb(input.memory_mb)?;
        validate::ephemeral_mb(input.ephemeral_storage_mb)?;
        validate::env(&input.env)?;
        validate::architectures(&input.architectures)?;
        // Refuse a duplicate before the (possibly slow) unpack; re-checked in the transaction.
        if function_exists(&self.conn, &input.name)? {
            return Err(already_exists(&input.name));
        }
        let code = self.import(input.zip)?;
        let config = FunctionConfig {
            name: input.name,
            runtime: input.runtime,
            handler: input.handler,
            role: input.role,
            description: input.description,
            timeout_s: input.timeout_s,
            memory_mb: input.memory_mb,
            env: input.env,
            ephemeral_storage_mb: input.ephemeral_storage_mb,
            architectures: input.architectures,
            code_sha256: code.sha256,
            code_size: code.zipped_bytes,
            code_dir: code.dir,
            version: LATEST.to_owned(),
            revision_id: uuid_v4(),
            last_modified: now(),
            state: STATE_ACTIVE.to_owned(),
            last_update_status: UPDATE_SUCCESSFUL.to_owned(),
            reserved_concurrency: None,
        };
        let tx = begin(&mut self.conn)?;
        if function_exists(&tx, &config.name)? {
            return Err(already_exists(&config.name));
        }
        tx.execute(
            "INSERT INTO functions (name, next_version) VALUES (?1, 1)",
            [&config.name],
        )
        .map_err(RegistryError::sql("insert function"))?;
        insert_version(&tx, &config, 0)?;
        let result = if input.publish {
            super::versions::publish_in(
                &tx,
                self.code.root(),
                &self.account,
                &config.name,
                None,
                None,
                None,
            )?
        } else {
            config
        };
        tx.commit().map_err(RegistryError::sql("commit create"))?;
        Ok(result)
    }

    /// One version's configuration. `qualifier`: `None` or `$LATEST`, a version number, or an
    /// alias name (resolved to the version it points to; routing weights are not applied).
    pub fn get_function(
        &self,
        name: &str,
        qualifier: Option<&str>,
    ) -> Result<FunctionConfig, RegistryError> {
        let version = resolve(&self.conn, &self.account, name, qualifier)?;
        load_version(&self.conn, self.code.root(), name, &version)?
            .ok_or_else(|| not_found(&self.account, name, qualifier))
    }

    /// One page of functions (their `$LATEST`), ordered by name, and the marker of the next page.
    pub fn list_functions(
        &self,
        marker: Option<&str>,
        max_items: Option<u32>,
    ) -> Result<(Vec<FunctionConfig>, Option<String>), RegistryError> {
        let limit = page_size(max_items)?;
        let sql = format!(
            "{VERSION_SELECT} WHERE v.version = '$LATEST' AND v.function > ?1 \
             ORDER BY v.function LIMIT ?2"
        );
        let rows = query_configs(
            &self.conn,
            self.code.root(),
            &sql,
            params![marker.unwrap_or(""), limit + 1],
        )?;
        Ok(paginate(rows, limit, |c| c.name.clone()))
    }

    /// Replaces `$LATEST`'s code (and publishes a version when asked; the published one is
    /// returned then). A `revision_id` that is not `$LATEST`'s is `PreconditionFailed`.
    pub fn update_function_code(
        &mut self,
        name: &str,
        update: CodeUpdate<'_>,
    ) -> Result<FunctionConfig, RegistryError> {
        if !function_exists(&self.conn, name)? {
            return Err(not_found(&self.account, name, None));
        }
        let code = self.import(update.zip)?;
        let tx = begin(&mut self.conn)?;
        let mut config = load_latest(&tx, self.code.root(), &self.account, name)?;
        check_revision(update.revision_id, &config.revision_id)?;
        config.code_sha256 = code.sha256;
        config.code_size = code.zipped_bytes;
        config.code_dir = code.dir;
        touch(&mut config);
        update_latest(&tx, &config)?;
        if update.publish {
            config = super::versions::publish_in(
                &tx,
                self.code.root(),
                &self.account,
                name,
                None,
                None,
                None,
            )?;
        }
        tx.commit()
            .map_err(RegistryError::sql("commit code update"))?;
        Ok(config)
    }

    /// Changes the given fields of `$LATEST`; `env` replaces the whole map.
    pub fn update_function_configuration(
        &mut self,
        name: &str,
        update: ConfigUpdate,
        revision_id: Option<&str>,
    ) -> Result<FunctionConfig, RegistryError> {
        if let Some(h) = &update.handler {
            validate::handler(h)?;
        }
        if let Some(d) = &update.description {
            validate::description(d)?;
        }
        if let Some(t) = update.timeout_s {
            validate::timeout_s(t)?;
        }
        if let Some(m) = update.memory_mb {
            validate::memory_mb(m)?;
        }
        if let Some(e) = update.ephemeral_storage_mb {
            validate::ephemeral_mb(e)?;
        }
        if let Some(env) = &update.env {
            validate::env(env)?;
        }
        let tx = begin(&mut self.conn)?;
        let mut config = load_latest(&tx, self.code.root(), &self.account, name)?;
        check_revision(revision_id, &config.revision_id)?;
        let ConfigUpdate {
            runtime,
            handler,
            role,
            description,
            timeout_s,
            memory_mb,
            env,
            ephemeral_storage_mb,
        } = update;
        config.runtime = runtime.unwrap_or(config.runtime);
        config.handler = handler.unwrap_or(config.handler);
        config.role = role.unwrap_or(config.role);
        config.description = description.unwrap_or(config.description);
        config.timeout_s = timeout_s.unwrap_or(config.timeout_s);
        config.memory_mb = memory_mb.unwrap_or(config.memory_mb);
        config.env = env.unwrap_or(config.env);
        config.ephemeral_storage_mb = ephemeral_storage_mb.unwrap_or(config.ephemeral_storage_mb);
        touch(&mut config);
        update_latest(&tx, &config)?;
        tx.commit()
            .map_err(RegistryError::sql("commit config update"))?;
        Ok(config)
    }

    /// Without a qualifier: deletes the function with all its versions, aliases and concurrency
    /// settings. With a version number: deletes that version only, refusing (`Conflict`) while
    /// an alias points to it. `$LATEST` and alias qualifiers are `InvalidParameter`.
    pub fn delete_function(
        &mut self,
        name: &str,
        qualifier: Option<&str>,
    ) -> Result<(), RegistryError> {
        let tx = begin(&mut self.conn)?;
        if !function_exists(&tx, name)? {
            return Err(not_found(&self.account, name, None));
        }
        match qualifier {
            None => {
                for sql in [
                    "DELETE FROM provisioned WHERE function = ?1",
                    "DELETE FROM aliases WHERE function = ?1",
                    "DELETE FROM versions WHERE function = ?1",
                    "DELETE FROM functions WHERE name = ?1",
                ] {
                    tx.execute(sql, [name])
                        .map_err(RegistryError::sql("delete function"))?;
                }
            }
            Some(LATEST) => {
                return Err(RegistryError::InvalidParameter(
                    "$LATEST version cannot be deleted without deleting the function.".into(),
                ))
            }
            Some(v) if validate::is_version_number(v) => {
                if load_version(&tx, self.code.root(), name, v)?.is_none() {
                    return Err(not_found(&self.account, name, Some(v)));
                }
                let users: Vec<String> = super::aliases::load_aliases(&tx, name)?
                    .into_iter()
                    .filter(|a| a.function_version == v || a.routing.contains_key(v))
                    .map(|a| a.name)
                    .collect();
                if !users.is_empty() {
                    return Err(RegistryError::Conflict(format!(
                        "Unable to delete version because the following aliases reference it: \
                         [{}]",
                        users.join(", ")
                    )));
                }
                tx.execute(
                    "DELETE FROM provisioned WHERE function = ?1 AND qualifier = ?2",
                    [name, v],
                )
                .map_err(RegistryError::sql("delete version"))?;
                tx.execute(
                    "DELETE FROM versions WHERE function = ?1 AND version = ?2",
                    [name, v],
                )
                .map_err(RegistryError::sql("delete version"))?;
            }
            Some(_) => {
                return Err(RegistryError::InvalidParameter(
                    "Deletion of aliases is not supported by DeleteFunction; use DeleteAlias"
                        .into(),
                ))
            }
        }
        tx.commit().map_err(RegistryError::sql("commit delete"))
    }

    /// Imports a zip and makes tree and zip durable: the step before any row may name the hash.
    ///
    /// Only a newly unpacked tree needs the `fsync`: a reused one was either unpacked (and
    /// synced) earlier in this run, or is referenced by a committed row (and was synced before
    /// that commit) — unreferenced trees of earlier runs are swept at open. If the `fsync`
    /// fails the tree is removed, so a later import cannot reuse it unsynced.
    fn import(&self, zip: &[u8]) -> Result<CodeRef, RegistryError> {
        let code = self.code.import_zip(zip)?;
        if code.newly_unpacked {
            if let Err(e) = sync_tree(&code.dir) {
                let _ = self.code.remove(&code.sha256);
                return Err(e);
            }
        }
        self.zips.save(&code.sha256, zip)?;
        Ok(code)
    }

    fn referenced_code(&self) -> Result<HashSet<String>, RegistryError> {
        let mut stmt = self
            .conn
            .prepare("SELECT DISTINCT code_sha256 FROM versions")
            .map_err(RegistryError::sql("list code"))?;
        let keep = stmt
            .query_map([], |r| r.get(0))
            .and_then(|rows| rows.collect())
            .map_err(RegistryError::sql("list code"))?;
        Ok(keep)
    }

    /// Re-unpacks referenced trees that are missing, from their kept zips; returns the hashes
    /// that could not be repaired.
    fn repair_code(&self) -> Result<Vec<String>, RegistryError> {
        let mut unrepaired = Vec::new();
        for sha in self.referenced_code()? {
            if self.code.root().join(&sha).is_dir() {
                continue;
            }
            let zip = self.zips.path(&sha);
            if !zip.is_file() {
                unrepaired.push(sha);
                continue;
            }
            let code = self.code.import_zip(&zip)?;
            if let Err(e) = sync_tree(&code.dir) {
                let _ = self.code.remove(&code.sha256);
                return Err(e);
            }
            if code.sha256 != sha {
                unrepaired.push(sha);
            }
        }
        unrepaired.sort();
        Ok(unrepaired)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{account, open_tmp, zip_with};
    use super::*;
    use crate::function::runtime::Runtime;
    use sha2::{Digest, Sha256};
    use std::collections::BTreeMap;
    use std::fs;

    fn create(reg: &mut Registry, name: &str, content: &str) -> FunctionConfig {
        let zip = zip_with(content);
        reg.create_function(CreateInput::new(
            name,
            Runtime::Python312,
            "app.handler",
            &zip,
        ))
        .unwrap()
    }

    fn invalid<T: std::fmt::Debug>(r: Result<T, RegistryError>) -> String {
        match r {
            Err(RegistryError::InvalidParameter(m)) => m,
            other => panic!("expected InvalidParameter, got {other:?}"),
        }
    }

    #[test]
    fn create_then_get_returns_lambda_fields() {
        let (_tmp, mut reg) = open_tmp();
        let zip = zip_with("hello");
        let mut input = CreateInput::new("f", Runtime::Python312, "app.handler", &zip);
        input.env = BTreeMap::from([("GREETING".to_owned(), "hi".to_owned())]);
        input.description = "d".into();
        let created = reg.create_function(input).unwrap();
        assert_eq!(created.version, "$LATEST");
        assert_eq!(created.state, "Active");
        assert_eq!(created.last_update_status, "Successful");
        assert_eq!(created.code_size, zip.len() as u64);
        let sha = Sha256::digest(&zip);
        assert_eq!(created.code_sha256, format!("{sha:x}"));
        assert_eq!(created.code_sha256_base64().len(), 44);
        assert_eq!(
            fs::read(created.code_dir.join("data.txt")).unwrap(),
            b"hello"
        );
        assert_eq!(created.revision_id.len(), 36);
        assert_eq!(created.last_modified.len(), 28);
        assert!(created.last_modified.ends_with("+0000"));
        assert_eq!(
            created.arn(reg.account()),
            account().function_arn("f", None)
        );
        assert_eq!(reg.get_function("f", None).unwrap(), created);
        assert_eq!(reg.get_function("f", Some("$LATEST")).unwrap(), created);
    }

    #[test]
    fn duplicate_name_is_a_conflict() {
        let (_tmp, mut reg) = open_tmp();
        create(&mut reg, "f", "a");
        let zip = zip_with("b");
        match reg.create_function(CreateInput::new("f", Runtime::Provided, "x", &zip)) {
            Err(RegistryError::Conflict(m)) => assert_eq!(m, "Function already exist: f"),
            other => panic!("expected Conflict, got {other:?}"),
        }
    }

    #[test]
    fn invalid_input_is_refused_before_any_code_is_stored() {
        let (tmp, mut reg) = open_tmp();
        let zip = zip_with("a");
        let mut input = CreateInput::new("f", Runtime::Python312, "app.handler", &zip);
        input.memory_mb = 99_999;
        assert!(invalid(reg.create_function(input)).contains("memorySize"));
        let bad_name = CreateInput::new("a.b", Runtime::Python312, "h", &zip);
        invalid(reg.create_function(bad_name));
        assert_eq!(fs::read_dir(tmp.path().join(CODE_DIR)).unwrap().count(), 0);
        match reg.create_function(CreateInput::new("f", Runtime::Python312, "h", b"not a zip")) {
            Err(RegistryError::Code(_)) => {}
            other => panic!("expected a code error, got {other:?}"),
        }
        assert!(reg.list_functions(None, None).unwrap().0.is_empty());
    }

    #[test]
    fn missing_function_and_qualifiers_are_not_found_with_arn() {
        let (_tmp, mut reg) = open_tmp();
        match reg.get_function("nope", None) {
            Err(e @ RegistryError::FunctionNotFound { .. }) => assert_eq!(
                e.to_string(),
                "Function not found: arn:aws:lambda:us-east-1:123456789012:function:nope"
            ),
            other => panic!("expected FunctionNotFound, got {other:?}"),
        }
        create(&mut reg, "f", "a");
        for q in ["3", "live"] {
            match reg.get_function("f", Some(q)) {
                Err(RegistryError::FunctionNotFound { arn }) => {
                    assert!(arn.ends_with(&format!(":f:{q}")))
                }
                other => panic!("expected FunctionNotFound, got {other:?}"),
            }
        }
    }

    #[test]
    fn update_code_checks_revision_and_changes_it() {
        let (_tmp, mut reg) = open_tmp();
        let before = create(&mut reg, "f", "one");
        let zip = zip_with("two");
        let stale = CodeUpdate {
            zip: &zip,
            revision_id: Some("00000000-0000-4000-8000-000000000000"),
            publish: false,
        };
        match reg.update_function_code("f", stale) {
            Err(RegistryError::PreconditionFailed(m)) => assert!(m.contains("Revision Id")),
            other => panic!("expected PreconditionFailed, got {other:?}"),
        }
        let update = CodeUpdate {
            zip: &zip,
            revision_id: Some(&before.revision_id),
            publish: false,
        };
        let after = reg.update_function_code("f", update).unwrap();
        assert_ne!(after.revision_id, before.revision_id);
        assert_ne!(after.code_sha256, before.code_sha256);
        assert_eq!(fs::read(after.code_dir.join("data.txt")).unwrap(), b"two");
        assert_eq!(reg.get_function("f", None).unwrap(), after);
        let missing = CodeUpdate {
            zip: &zip,
            revision_id: None,
            publish: false,
        };
        assert!(matches!(
            reg.update_function_code("nope", missing),
            Err(RegistryError::FunctionNotFound { .. })
        ));
    }

    #[test]
    fn update_configuration_changes_only_given_fields() {
        let (_tmp, mut reg) = open_tmp();
        let before = create(&mut reg, "f", "a");
        let update = ConfigUpdate {
            memory_mb: Some(512),
            env: Some(BTreeMap::from([("A1".to_owned(), "v".to_owned())])),
            ..ConfigUpdate::default()
        };
        let after = reg
            .update_function_configuration("f", update, Some(&before.revision_id))
            .unwrap();
        assert_eq!(after.memory_mb, 512);
        assert_eq!(after.env.get("A1").map(String::as_str), Some("v"));
        assert_eq!(after.timeout_s, before.timeout_s);
        assert_eq!(after.handler, before.handler);
        assert_eq!(after.code_sha256, before.code_sha256);
        assert_ne!(after.revision_id, before.revision_id);
        let bad = ConfigUpdate {
            timeout_s: Some(0),
            ..ConfigUpdate::default()
        };
        invalid(reg.update_function_configuration("f", bad, None));
        let stale = reg.update_function_configuration(
            "f",
            ConfigUpdate::default(),
            Some(&before.revision_id),
        );
        assert!(matches!(stale, Err(RegistryError::PreconditionFailed(_))));
        assert_eq!(reg.get_function("f", None).unwrap(), after);
    }

    #[test]
    fn delete_function_removes_everything_and_sweep_frees_code() {
        let (tmp, mut reg) = open_tmp();
        let f = create(&mut reg, "f", "a");
        reg.publish_version("f", None, None, None).unwrap();
        reg.create_alias(
            "f",
            crate::registry::AliasInput {
                name: "live".into(),
                function_version: "1".into(),
                ..Default::default()
            },
        )
        .unwrap();
        reg.put_provisioned("f", "live", 1).unwrap();
        invalid(reg.delete_function("f", Some("$LATEST")));
        invalid(reg.delete_function("f", Some("live")));
        reg.delete_function("f", None).unwrap();
        assert!(matches!(
            reg.get_function("f", None),
            Err(RegistryError::FunctionNotFound { .. })
        ));
        assert!(matches!(
            reg.delete_function("f", None),
            Err(RegistryError::FunctionNotFound { .. })
        ));
        assert_eq!(reg.integrity_check().unwrap(), "ok");
        assert!(f.code_dir.is_dir(), "code is only removed by a sweep");
        assert_eq!(reg.sweep_code().unwrap(), vec![f.code_sha256.clone()]);
        assert!(!f.code_dir.exists());
        assert!(!tmp
            .path()
            .join(ZIP_DIR)
            .join(format!("{}.zip", f.code_sha256))
            .exists());
        // The name is free again.
        create(&mut reg, "f", "a");
    }

    #[test]
    fn list_functions_pages_by_name() {
        let (_tmp, mut reg) = open_tmp();
        let mut names: Vec<String> = (0..57).map(|i| format!("fn-{i:03}")).collect();
        names.reverse();
        for n in &names {
            create(&mut reg, n, "same code");
        }
        names.reverse();
        let (page, next) = reg.list_functions(None, None).unwrap();
        assert_eq!(page.len(), 50, "capped at 50");
        let (rest, end) = reg.list_functions(next.as_deref(), Some(1000)).unwrap();
        assert_eq!(end, None);
        let got: Vec<String> = page.iter().chain(&rest).map(|c| c.name.clone()).collect();
        assert_eq!(got, names);
        let (small, next) = reg.list_functions(None, Some(2)).unwrap();
        assert_eq!(small.len(), 2);
        assert_eq!(next.as_deref(), Some("fn-001"));
        invalid(reg.list_functions(None, Some(0)));
    }

    #[test]
    fn a_second_registry_on_the_same_directory_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let first = Registry::open(tmp.path(), account()).unwrap();
        match Registry::open(tmp.path(), account()) {
            Err(RegistryError::Locked { path }) => assert!(path.ends_with(LOCK_FILE)),
            other => panic!("expected Locked, got {other:?}"),
        }
        drop(first);
        Registry::open(tmp.path(), account()).unwrap();
    }

    #[test]
    fn reopen_keeps_functions() {
        let tmp = tempfile::tempdir().unwrap();
        let created = {
            let mut reg = Registry::open(tmp.path(), account()).unwrap();
            create(&mut reg, "f", "a")
        };
        let reg = Registry::open(tmp.path(), account()).unwrap();
        assert_eq!(reg.get_function("f", None).unwrap(), created);
        assert!(reg.unrepaired_code().is_empty());
    }

    #[test]
    fn open_sweeps_orphans_and_repairs_missing_trees_from_kept_zips() {
        let tmp = tempfile::tempdir().unwrap();
        let created = {
            let mut reg = Registry::open(tmp.path(), account()).unwrap();
            create(&mut reg, "f", "a")
        };
        // An import whose commit never happened (a crash), and a lost tree.
        let orphan = CodeStore::open(&tmp.path().join(CODE_DIR))
            .unwrap()
            .import_zip(&zip_with("orphan"))
            .unwrap();
        fs::set_permissions(
            &created.code_dir,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        fs::remove_dir_all(&created.code_dir).unwrap();
        let reg = Registry::open(tmp.path(), account()).unwrap();
        assert!(!orphan.dir.exists(), "unreferenced tree survived open");
        assert_eq!(fs::read(created.code_dir.join("data.txt")).unwrap(), b"a");
        assert!(reg.unrepaired_code().is_empty());
        // Without the kept zip the loss is reported, not hidden.
        fs::remove_dir_all(&created.code_dir).unwrap();
        fs::remove_file(
            tmp.path()
                .join(ZIP_DIR)
                .join(format!("{}.zip", created.code_sha256)),
        )
        .unwrap();
        drop(reg);
        let reg = Registry::open(tmp.path(), account()).unwrap();
        assert_eq!(
            reg.unrepaired_code(),
            std::slice::from_ref(&created.code_sha256)
        );
    }
}
