//! Published versions: `PublishVersion`, `ListVersionsByFunction`, and `ListFunctions` with
//! `FunctionVersion=ALL`.
//!
//! A published version is an immutable snapshot of `$LATEST`'s row under the next number;
//! numbers are never reused after a delete (the function row keeps `next_version`). Publishing
//! an unchanged `$LATEST` (same revision as at the last publish) returns the version published
//! then instead of a new one, as Lambda does.
//!
//! Does not: create or delete versions otherwise (create/update with `Publish` call
//! `publish_in` inside their own transaction; deleting one version is `delete_function`).

use std::path::Path;

use rusqlite::{params, Connection};

use super::sql::{
    bad_marker, begin, check_revision, function_exists, insert_version, load_latest, load_version,
    not_found, page_size, paginate, query_configs, seq_of, touch, VERSION_SELECT,
};
use super::store::Registry;
use super::{validate, Account, FunctionConfig, RegistryError};

impl Registry {
    /// Publishes `$LATEST` as the next version number (an immutable snapshot). `code_sha256`
    /// (base64, as clients send it) and `revision_id`, when given, must match `$LATEST`;
    /// `description` overrides `$LATEST`'s for the new version.
    pub fn publish_version(
        &mut self,
        name: &str,
        code_sha256: Option<&str>,
        description: Option<&str>,
        revision_id: Option<&str>,
    ) -> Result<FunctionConfig, RegistryError> {
        if let Some(d) = description {
            validate::description(d)?;
        }
        let tx = begin(&mut self.conn)?;
        let config = publish_in(
            &tx,
            self.code.root(),
            &self.account,
            name,
            code_sha256,
            description,
            revision_id,
        )?;
        tx.commit().map_err(RegistryError::sql("commit publish"))?;
        Ok(config)
    }

    /// One page of a function's versions, `$LATEST` first then by number.
    pub fn list_versions(
        &self,
        name: &str,
        marker: Option<&str>,
        max_items: Option<u32>,
    ) -> Result<(Vec<FunctionConfig>, Option<String>), RegistryError> {
        let limit = page_size(max_items)?;
        if !function_exists(&self.conn, name)? {
            return Err(not_found(&self.account, name, None));
        }
        let after: i64 = match marker {
            None => -1,
            Some(m) => m.parse().map_err(|_| bad_marker(m))?,
        };
        let sql = format!(
            "{VERSION_SELECT} WHERE v.function = ?1 AND v.seq > ?2 ORDER BY v.seq LIMIT ?3"
        );
        let rows = query_configs(
            &self.conn,
            self.code.root(),
            &sql,
            params![name, after, limit + 1],
        )?;
        Ok(paginate(rows, limit, |c| seq_of(&c.version).to_string()))
    }

    /// One page of every version of every function (`ListFunctions` with
    /// `FunctionVersion=ALL`), ordered by name then version, `$LATEST` first.
    pub fn list_all_versions(
        &self,
        marker: Option<&str>,
        max_items: Option<u32>,
    ) -> Result<(Vec<FunctionConfig>, Option<String>), RegistryError> {
        let limit = page_size(max_items)?;
        let (after_name, after_seq) = match marker {
            None => (String::new(), -1),
            Some(m) => m
                .rsplit_once(':')
                .and_then(|(n, s)| Some((n.to_owned(), s.parse::<i64>().ok()?)))
                .ok_or_else(|| bad_marker(m))?,
        };
        let sql = format!(
            "{VERSION_SELECT} WHERE (v.function, v.seq) > (?1, ?2) \
             ORDER BY v.function, v.seq LIMIT ?3"
        );
        let rows = query_configs(
            &self.conn,
            self.code.root(),
            &sql,
            params![after_name, after_seq, limit + 1],
        )?;
        Ok(paginate(rows, limit, |c| {
            format!("{}:{}", c.name, seq_of(&c.version))
        }))
    }
}

/// Publishes `$LATEST` inside `tx` (see [`Registry::publish_version`]).
pub(super) fn publish_in(
    tx: &Connection,
    code_root: &Path,
    account: &Account,
    name: &str,
    code_sha256: Option<&str>,
    description: Option<&str>,
    revision_id: Option<&str>,
) -> Result<FunctionConfig, RegistryError> {
    let latest = load_latest(tx, code_root, account, name)?;
    check_revision(revision_id, &latest.revision_id)?;
    if let Some(given) = code_sha256 {
        let current = latest.code_sha256_base64();
        if given != current && given != latest.code_sha256 {
            return Err(RegistryError::PreconditionFailed(format!(
                "CodeSHA256 ({given}) is different from current CodeSHA256 in $LATEST \
                 ({current}). Please try again from GetFunction."
            )));
        }
    }
    let (next, last_rev, last_version): (i64, Option<String>, Option<String>) = tx
        .query_row(
            "SELECT next_version, last_published_revision, last_published_version \
             FROM functions WHERE name = ?1",
            [name],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .map_err(RegistryError::sql("read function"))?;
    if let (Some(rev), Some(v)) = (last_rev, last_version) {
        if rev == latest.revision_id {
            if let Some(existing) = load_version(tx, code_root, name, &v)? {
                return Ok(existing);
            }
        }
    }
    let mut version = latest.clone();
    version.version = next.to_string();
    version.description = description.map_or(latest.description.clone(), str::to_owned);
    touch(&mut version);
    insert_version(tx, &version, next)?;
    tx.execute(
        "UPDATE functions SET next_version = ?2, last_published_revision = ?3, \
         last_published_version = ?4 WHERE name = ?1",
        params![name, next + 1, latest.revision_id, version.version],
    )
    .map_err(RegistryError::sql("update function"))?;
    Ok(version)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{open_tmp, zip_with};
    use super::*;
    use crate::function::runtime::Runtime;
    use crate::registry::{CodeUpdate, ConfigUpdate, CreateInput, LATEST};

    fn create(reg: &mut Registry, name: &str) -> FunctionConfig {
        let zip = zip_with(name);
        reg.create_function(CreateInput::new(name, Runtime::Provided, "h", &zip))
            .unwrap()
    }

    fn set_memory(reg: &mut Registry, name: &str, mb: u32) {
        let update = ConfigUpdate {
            memory_mb: Some(mb),
            ..ConfigUpdate::default()
        };
        reg.update_function_configuration(name, update, None)
            .unwrap();
    }

    #[test]
    fn publish_snapshots_latest_under_increasing_numbers() {
        let (_tmp, mut reg) = open_tmp();
        let latest = create(&mut reg, "f");
        let v1 = reg.publish_version("f", None, Some("first"), None).unwrap();
        assert_eq!(v1.version, "1");
        assert_eq!(v1.description, "first");
        assert_eq!(v1.code_sha256, latest.code_sha256);
        assert_eq!(
            v1.arn(reg.account()),
            reg.account().function_arn("f", Some("1"))
        );
        set_memory(&mut reg, "f", 256);
        let v2 = reg.publish_version("f", None, None, None).unwrap();
        assert_eq!((v2.version.as_str(), v2.memory_mb), ("2", 256));
        // Version 1 is immutable: $LATEST's later change did not reach it.
        assert_eq!(reg.get_function("f", Some("1")).unwrap(), v1);
        assert_eq!(reg.get_function("f", Some("2")).unwrap(), v2);
    }

    #[test]
    fn publishing_unchanged_latest_returns_the_existing_version() {
        let (_tmp, mut reg) = open_tmp();
        create(&mut reg, "f");
        let v1 = reg.publish_version("f", None, None, None).unwrap();
        let again = reg.publish_version("f", None, None, None).unwrap();
        assert_eq!(again, v1);
        set_memory(&mut reg, "f", 256);
        assert_eq!(
            reg.publish_version("f", None, None, None).unwrap().version,
            "2"
        );
    }

    #[test]
    fn version_numbers_are_never_reused() {
        let (_tmp, mut reg) = open_tmp();
        create(&mut reg, "f");
        reg.publish_version("f", None, None, None).unwrap();
        set_memory(&mut reg, "f", 256);
        reg.publish_version("f", None, None, None).unwrap();
        reg.delete_function("f", Some("2")).unwrap();
        assert!(matches!(
            reg.get_function("f", Some("2")),
            Err(RegistryError::FunctionNotFound { .. })
        ));
        assert!(matches!(
            reg.delete_function("f", Some("2")),
            Err(RegistryError::FunctionNotFound { .. })
        ));
        set_memory(&mut reg, "f", 512);
        assert_eq!(
            reg.publish_version("f", None, None, None).unwrap().version,
            "3"
        );
    }

    #[test]
    fn publish_checks_code_sha256_and_revision() {
        let (_tmp, mut reg) = open_tmp();
        let latest = create(&mut reg, "f");
        let wrong = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=";
        assert!(matches!(
            reg.publish_version("f", Some(wrong), None, None),
            Err(RegistryError::PreconditionFailed(_))
        ));
        assert!(matches!(
            reg.publish_version("f", None, None, Some("stale")),
            Err(RegistryError::PreconditionFailed(_))
        ));
        let b64 = latest.code_sha256_base64();
        let v1 = reg
            .publish_version("f", Some(&b64), None, Some(&latest.revision_id))
            .unwrap();
        assert_eq!(v1.version, "1");
        assert!(matches!(
            reg.publish_version("nope", None, None, None),
            Err(RegistryError::FunctionNotFound { .. })
        ));
    }

    #[test]
    fn create_and_update_code_can_publish_in_the_same_transaction() {
        let (_tmp, mut reg) = open_tmp();
        let zip = zip_with("a");
        let mut input = CreateInput::new("f", Runtime::Provided, "h", &zip);
        input.publish = true;
        assert_eq!(reg.create_function(input).unwrap().version, "1");
        let zip2 = zip_with("b");
        let update = CodeUpdate {
            zip: &zip2,
            revision_id: None,
            publish: true,
        };
        let v2 = reg.update_function_code("f", update).unwrap();
        assert_eq!(v2.version, "2");
        assert_eq!(
            reg.get_function("f", None).unwrap().code_sha256,
            v2.code_sha256
        );
    }

    #[test]
    fn list_versions_pages_latest_first() {
        let (_tmp, mut reg) = open_tmp();
        create(&mut reg, "f");
        for mb in 129..=132 {
            set_memory(&mut reg, "f", mb);
            reg.publish_version("f", None, None, None).unwrap();
        }
        let (page, next) = reg.list_versions("f", None, Some(2)).unwrap();
        let names: Vec<&str> = page.iter().map(|c| c.version.as_str()).collect();
        assert_eq!(names, [LATEST, "1"]);
        let (rest, end) = reg.list_versions("f", next.as_deref(), None).unwrap();
        let names: Vec<&str> = rest.iter().map(|c| c.version.as_str()).collect();
        assert_eq!(names, ["2", "3", "4"]);
        assert_eq!(end, None);
        assert!(reg.list_versions("f", Some("x"), None).is_err());
        assert!(matches!(
            reg.list_versions("nope", None, None),
            Err(RegistryError::FunctionNotFound { .. })
        ));
    }

    #[test]
    fn list_all_versions_walks_every_function() {
        let (_tmp, mut reg) = open_tmp();
        for name in ["b", "a"] {
            create(&mut reg, name);
            reg.publish_version(name, None, None, None).unwrap();
        }
        let mut seen = Vec::new();
        let mut marker = None;
        loop {
            let (page, next) = reg.list_all_versions(marker.as_deref(), Some(1)).unwrap();
            seen.extend(
                page.into_iter()
                    .map(|c| format!("{}:{}", c.name, c.version)),
            );
            match next {
                Some(m) => marker = Some(m),
                None => break,
            }
        }
        assert_eq!(seen, ["a:$LATEST", "a:1", "b:$LATEST", "b:1"]);
    }
}
