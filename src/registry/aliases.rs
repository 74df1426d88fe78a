//! Aliases: `CreateAlias`, `GetAlias`, `UpdateAlias`, `DeleteAlias`, `ListAliases`.
//!
//! An alias names one version (`$LATEST` or a number) and may send a share of traffic to one
//! other published version (`RoutingConfig.AdditionalVersionWeights`). Every version an alias
//! names must exist when the alias is written; deleting a version an alias uses is refused in
//! `delete_function`. Each change gives the alias a new `RevisionId`.
//!
//! Does not: pick a version at invoke time (dispatch draws from the weights), or resolve an
//! alias qualifier for `GetFunction` (`store::resolve` does).
//!
//! Limits: at most one additional version (Lambda's rule); lists are capped at
//! [`super::store::MAX_PAGE`] per page, ordered by alias name.

use std::collections::BTreeMap;
use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension, Row};

use crate::function::env::uuid_v4;

use super::sql::{
    begin, check_revision, function_exists, load_version, not_found, page_size, paginate,
};
use super::store::Registry;
use super::{validate, Account, AliasConfig, AliasInput, AliasUpdate, RegistryError, LATEST};

const ALIAS_SELECT: &str =
    "SELECT function, name, function_version, description, routing, revision_id FROM aliases";

impl Registry {
    /// Creates an alias of an existing version. An existing alias name is a `Conflict`.
    pub fn create_alias(
        &mut self,
        function: &str,
        input: AliasInput,
    ) -> Result<AliasConfig, RegistryError> {
        validate::alias_name(&input.name)?;
        validate::description(&input.description)?;
        check_version_name(&input.function_version)?;
        validate::routing(&input.function_version, &input.routing)?;
        let tx = begin(&mut self.conn)?;
        if !function_exists(&tx, function)? {
            return Err(not_found(&self.account, function, None));
        }
        if load_alias(&tx, function, &input.name)?.is_some() {
            return Err(RegistryError::Conflict(format!(
                "Alias already exists: {}",
                self.account.function_arn(function, Some(&input.name))
            )));
        }
        let alias = AliasConfig {
            function: function.to_owned(),
            name: input.name,
            function_version: input.function_version,
            description: input.description,
            routing: input.routing,
            revision_id: uuid_v4(),
        };
        check_targets(&tx, self.code.root(), &self.account, &alias)?;
        tx.execute(
            "INSERT INTO aliases (function, name, function_version, description, routing, \
             revision_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![
                alias.function,
                alias.name,
                alias.function_version,
                alias.description,
                routing_json(&alias.routing),
                alias.revision_id
            ],
        )
        .map_err(RegistryError::sql("insert alias"))?;
        tx.commit().map_err(RegistryError::sql("commit alias"))?;
        Ok(alias)
    }

    /// One alias.
    pub fn get_alias(&self, function: &str, name: &str) -> Result<AliasConfig, RegistryError> {
        if !function_exists(&self.conn, function)? {
            return Err(not_found(&self.account, function, None));
        }
        load_alias(&self.conn, function, name)?
            .ok_or_else(|| alias_not_found(&self.account, function, name))
    }

    /// Changes the given fields of an alias; `routing` replaces the whole map.
    pub fn update_alias(
        &mut self,
        function: &str,
        name: &str,
        update: AliasUpdate,
        revision_id: Option<&str>,
    ) -> Result<AliasConfig, RegistryError> {
        if let Some(v) = &update.function_version {
            check_version_name(v)?;
        }
        if let Some(d) = &update.description {
            validate::description(d)?;
        }
        let tx = begin(&mut self.conn)?;
        if !function_exists(&tx, function)? {
            return Err(not_found(&self.account, function, None));
        }
        let mut alias =
            load_alias(&tx, function, name)?.ok_or_else(|| RegistryError::AliasNotFound {
                arn: self.account.function_arn(function, Some(name)),
            })?;
        check_revision(revision_id, &alias.revision_id)?;
        alias.function_version = update.function_version.unwrap_or(alias.function_version);
        alias.description = update.description.unwrap_or(alias.description);
        alias.routing = update.routing.unwrap_or(alias.routing);
        validate::routing(&alias.function_version, &alias.routing)?;
        check_targets(&tx, self.code.root(), &self.account, &alias)?;
        alias.revision_id = uuid_v4();
        tx.execute(
            "UPDATE aliases SET function_version = ?3, description = ?4, routing = ?5, \
             revision_id = ?6 WHERE function = ?1 AND name = ?2",
            params![
                alias.function,
                alias.name,
                alias.function_version,
                alias.description,
                routing_json(&alias.routing),
                alias.revision_id
            ],
        )
        .map_err(RegistryError::sql("update alias"))?;
        tx.commit().map_err(RegistryError::sql("commit alias"))?;
        Ok(alias)
    }

    /// Deletes an alias and any provisioned concurrency configured on it.
    pub fn delete_alias(&mut self, function: &str, name: &str) -> Result<(), RegistryError> {
        let tx = begin(&mut self.conn)?;
        if !function_exists(&tx, function)? {
            return Err(not_found(&self.account, function, None));
        }
        let n = tx
            .execute(
                "DELETE FROM aliases WHERE function = ?1 AND name = ?2",
                [function, name],
            )
            .map_err(RegistryError::sql("delete alias"))?;
        if n == 0 {
            return Err(alias_not_found(&self.account, function, name));
        }
        tx.execute(
            "DELETE FROM provisioned WHERE function = ?1 AND qualifier = ?2",
            [function, name],
        )
        .map_err(RegistryError::sql("delete alias"))?;
        tx.commit().map_err(RegistryError::sql("commit alias"))
    }

    /// One page of a function's aliases by name, optionally only those whose main version is
    /// `function_version`.
    pub fn list_aliases(
        &self,
        function: &str,
        function_version: Option<&str>,
        marker: Option<&str>,
        max_items: Option<u32>,
    ) -> Result<(Vec<AliasConfig>, Option<String>), RegistryError> {
        let limit = page_size(max_items)?;
        if !function_exists(&self.conn, function)? {
            return Err(not_found(&self.account, function, None));
        }
        let sql = format!(
            "{ALIAS_SELECT} WHERE function = ?1 AND name > ?2 \
             AND (?3 IS NULL OR function_version = ?3) ORDER BY name LIMIT ?4"
        );
        let mut stmt = self
            .conn
            .prepare(&sql)
            .map_err(RegistryError::sql("list aliases"))?;
        let rows: Vec<AliasConfig> = stmt
            .query_map(
                params![function, marker.unwrap_or(""), function_version, limit + 1],
                alias_from_row,
            )
            .and_then(|rows| rows.collect())
            .map_err(RegistryError::sql("list aliases"))?;
        Ok(paginate(rows, limit, |a| a.name.clone()))
    }
}

/// Every version the alias names must exist (`FunctionNotFound` with its ARN otherwise).
fn check_targets(
    conn: &Connection,
    code_root: &Path,
    account: &Account,
    alias: &AliasConfig,
) -> Result<(), RegistryError> {
    let targets = std::iter::once(&alias.function_version).chain(alias.routing.keys());
    for v in targets {
        if load_version(conn, code_root, &alias.function, v)?.is_none() {
            return Err(not_found(account, &alias.function, Some(v)));
        }
    }
    Ok(())
}

fn alias_not_found(account: &Account, function: &str, name: &str) -> RegistryError {
    RegistryError::AliasNotFound {
        arn: account.function_arn(function, Some(name)),
    }
}

/// `FunctionVersion` of an alias: `$LATEST` or a version number.
fn check_version_name(v: &str) -> Result<(), RegistryError> {
    if v == LATEST || validate::is_version_number(v) {
        Ok(())
    } else {
        Err(RegistryError::InvalidParameter(format!(
            "1 validation error detected: Value '{v}' at 'functionVersion' failed to satisfy \
             constraint: Member must satisfy regular expression pattern: (\\$LATEST|[0-9]+)"
        )))
    }
}

fn routing_json(routing: &BTreeMap<String, f64>) -> String {
    // Finite floats (checked by validate::routing) always serialise.
    serde_json::to_string(routing).unwrap_or_default()
}

fn alias_from_row(r: &Row<'_>) -> rusqlite::Result<AliasConfig> {
    let routing: String = r.get(4)?;
    Ok(AliasConfig {
        function: r.get(0)?,
        name: r.get(1)?,
        function_version: r.get(2)?,
        description: r.get(3)?,
        routing: serde_json::from_str(&routing).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(4, rusqlite::types::Type::Text, Box::new(e))
        })?,
        revision_id: r.get(5)?,
    })
}

fn load_alias(
    conn: &Connection,
    function: &str,
    name: &str,
) -> Result<Option<AliasConfig>, RegistryError> {
    conn.query_row(
        &format!("{ALIAS_SELECT} WHERE function = ?1 AND name = ?2"),
        [function, name],
        alias_from_row,
    )
    .optional()
    .map_err(RegistryError::sql("read alias"))
}

/// Every alias of a function, by name.
pub(super) fn load_aliases(
    conn: &Connection,
    function: &str,
) -> Result<Vec<AliasConfig>, RegistryError> {
    let mut stmt = conn
        .prepare(&format!("{ALIAS_SELECT} WHERE function = ?1 ORDER BY name"))
        .map_err(RegistryError::sql("read aliases"))?;
    let rows = stmt
        .query_map([function], alias_from_row)
        .and_then(|rows| rows.collect())
        .map_err(RegistryError::sql("read aliases"));
    rows
}

#[cfg(test)]
mod tests {
    use super::super::tests::{open_tmp, zip_with};
    use super::*;
    use crate::function::runtime::Runtime;
    use crate::registry::{ConfigUpdate, CreateInput};

    /// A function with versions 1 and 2 published.
    fn two_versions(reg: &mut Registry) {
        let zip = zip_with("a");
        reg.create_function(CreateInput::new("f", Runtime::Provided, "h", &zip))
            .unwrap();
        reg.publish_version("f", None, None, None).unwrap();
        let update = ConfigUpdate {
            timeout_s: Some(10),
            ..ConfigUpdate::default()
        };
        reg.update_function_configuration("f", update, None)
            .unwrap();
        reg.publish_version("f", None, None, None).unwrap();
    }

    fn alias(name: &str, version: &str) -> AliasInput {
        AliasInput {
            name: name.into(),
            function_version: version.into(),
            ..AliasInput::default()
        }
    }

    #[test]
    fn create_get_and_resolve_through_alias() {
        let (_tmp, mut reg) = open_tmp();
        two_versions(&mut reg);
        let mut input = alias("live", "1");
        input.description = "prod".into();
        input.routing = BTreeMap::from([("2".to_owned(), 0.25)]);
        let created = reg.create_alias("f", input).unwrap();
        assert_eq!(
            created.arn(reg.account()),
            reg.account().function_arn("f", Some("live"))
        );
        assert_eq!(reg.get_alias("f", "live").unwrap(), created);
        assert_eq!(reg.get_function("f", Some("live")).unwrap().version, "1");
        match reg.create_alias("f", alias("live", "2")) {
            Err(RegistryError::Conflict(m)) => assert!(m.starts_with("Alias already exists: arn:")),
            other => panic!("expected Conflict, got {other:?}"),
        }
    }

    #[test]
    fn alias_targets_must_exist_and_be_valid() {
        let (_tmp, mut reg) = open_tmp();
        two_versions(&mut reg);
        assert!(matches!(
            reg.create_alias("f", alias("a", "9")),
            Err(RegistryError::FunctionNotFound { .. })
        ));
        let mut routed = alias("a", "1");
        routed.routing = BTreeMap::from([("9".to_owned(), 0.5)]);
        assert!(matches!(
            reg.create_alias("f", routed),
            Err(RegistryError::FunctionNotFound { .. })
        ));
        for bad in [alias("123", "1"), alias("a", "live"), alias("a b", "1")] {
            assert!(matches!(
                reg.create_alias("f", bad),
                Err(RegistryError::InvalidParameter(_))
            ));
        }
        assert!(matches!(
            reg.create_alias("nope", alias("a", "1")),
            Err(RegistryError::FunctionNotFound { .. })
        ));
        assert!(reg.create_alias("f", alias("latest", "$LATEST")).is_ok());
    }

    #[test]
    fn update_checks_revision_and_renews_it() {
        let (_tmp, mut reg) = open_tmp();
        two_versions(&mut reg);
        let created = reg.create_alias("f", alias("live", "1")).unwrap();
        let to_two = AliasUpdate {
            function_version: Some("2".into()),
            ..AliasUpdate::default()
        };
        assert!(matches!(
            reg.update_alias("f", "live", to_two.clone(), Some("stale")),
            Err(RegistryError::PreconditionFailed(_))
        ));
        let updated = reg
            .update_alias("f", "live", to_two, Some(&created.revision_id))
            .unwrap();
        assert_eq!(updated.function_version, "2");
        assert_ne!(updated.revision_id, created.revision_id);
        assert_eq!(reg.get_function("f", Some("live")).unwrap().version, "2");
        assert!(matches!(
            reg.update_alias("f", "nope", AliasUpdate::default(), None),
            Err(RegistryError::AliasNotFound { .. })
        ));
    }

    #[test]
    fn versions_in_use_by_aliases_cannot_be_deleted() {
        let (_tmp, mut reg) = open_tmp();
        two_versions(&mut reg);
        let mut input = alias("live", "1");
        input.routing = BTreeMap::from([("2".to_owned(), 0.1)]);
        reg.create_alias("f", input).unwrap();
        for v in ["1", "2"] {
            match reg.delete_function("f", Some(v)) {
                Err(RegistryError::Conflict(m)) => assert!(m.contains("[live]"), "{m}"),
                other => panic!("expected Conflict, got {other:?}"),
            }
        }
        reg.delete_alias("f", "live").unwrap();
        reg.delete_function("f", Some("2")).unwrap();
        assert!(matches!(
            reg.delete_alias("f", "live"),
            Err(RegistryError::AliasNotFound { .. })
        ));
    }

    #[test]
    fn list_filters_by_version_and_pages_by_name() {
        let (_tmp, mut reg) = open_tmp();
        two_versions(&mut reg);
        for (name, v) in [("c", "1"), ("a", "2"), ("b", "1")] {
            reg.create_alias("f", alias(name, v)).unwrap();
        }
        let (page, next) = reg.list_aliases("f", None, None, Some(2)).unwrap();
        let names: Vec<&str> = page.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["a", "b"]);
        let (rest, end) = reg.list_aliases("f", None, next.as_deref(), None).unwrap();
        assert_eq!((rest.len(), end), (1, None));
        let (ones, _) = reg.list_aliases("f", Some("1"), None, None).unwrap();
        let names: Vec<&str> = ones.iter().map(|a| a.name.as_str()).collect();
        assert_eq!(names, ["b", "c"]);
    }
}
