//! Account-wide state: reserved and provisioned concurrency, usage, and daemon settings.
//!
//! Owns the rules between concurrency numbers: the reserved concurrency of all functions
//! together must leave at least [`MIN_UNRESERVED`] of the account's quota unreserved, and the
//! provisioned concurrency of a function's versions and aliases together may not exceed its
//! reserved concurrency when one is set. Provisioned concurrency is only a stored request here;
//! the pool reads it ([`Registry::all_provisioned`]) and keeps instances warm.
//!
//! Settings are a small key → value table for daemon state that must survive restarts; the
//! registry gives the values no meaning.
//!
//! Does not: count running instances or enforce concurrency at invoke time (the pool does).

use std::time::SystemTime;

use rusqlite::{params, OptionalExtension};

use super::sql::{begin, function_exists, load_version, not_found};
use super::store::Registry;
use super::{validate, AccountUsage, ProvisionedConfig, RegistryError, LATEST};

/// Concurrency that must stay unreserved in the account (Lambda's rule).
pub const MIN_UNRESERVED: u32 = 100;

impl Registry {
    /// The account's concurrency quota that reservations are checked against.
    pub fn concurrency_limit(&self) -> u32 {
        self.concurrency_limit
    }

    /// Sets the account's concurrency quota (default
    /// [`DEFAULT_CONCURRENCY_LIMIT`](super::store::DEFAULT_CONCURRENCY_LIMIT)); existing
    /// reservations are not re-checked.
    pub fn set_concurrency_limit(&mut self, limit: u32) {
        self.concurrency_limit = limit;
    }

    /// `PutFunctionConcurrency`: reserves `reserved` (0 = throttle every invoke).
    pub fn put_function_concurrency(
        &mut self,
        name: &str,
        reserved: u32,
    ) -> Result<u32, RegistryError> {
        let tx = begin(&mut self.conn)?;
        if !function_exists(&tx, name)? {
            return Err(not_found(&self.account, name, None));
        }
        let others: i64 = tx
            .query_row(
                "SELECT coalesce(sum(reserved_concurrency), 0) FROM functions WHERE name != ?1",
                [name],
                |r| r.get(0),
            )
            .map_err(RegistryError::sql("sum reserved"))?;
        let max = i64::from(self.concurrency_limit) - i64::from(MIN_UNRESERVED);
        if others + i64::from(reserved) > max {
            return Err(RegistryError::InvalidParameter(format!(
                "Specified ReservedConcurrentExecutions for function decreases account's \
                 UnreservedConcurrentExecution below its minimum value of [{MIN_UNRESERVED}]."
            )));
        }
        if provisioned_total(&tx, name, None)? > i64::from(reserved) {
            return Err(RegistryError::InvalidParameter(
                "ReservedConcurrentExecutions must be greater than or equal to the sum of the \
                 function's provisioned concurrency"
                    .into(),
            ));
        }
        tx.execute(
            "UPDATE functions SET reserved_concurrency = ?2 WHERE name = ?1",
            params![name, reserved],
        )
        .map_err(RegistryError::sql("put concurrency"))?;
        tx.commit()
            .map_err(RegistryError::sql("commit concurrency"))?;
        Ok(reserved)
    }

    /// `GetFunctionConcurrency`: the reservation, if any.
    pub fn get_function_concurrency(&self, name: &str) -> Result<Option<u32>, RegistryError> {
        self.conn
            .query_row(
                "SELECT reserved_concurrency FROM functions WHERE name = ?1",
                [name],
                |r| r.get(0),
            )
            .optional()
            .map_err(RegistryError::sql("read concurrency"))?
            .ok_or_else(|| not_found(&self.account, name, None))
    }

    /// `DeleteFunctionConcurrency`: removes the reservation (no error if there was none).
    pub fn delete_function_concurrency(&mut self, name: &str) -> Result<(), RegistryError> {
        let n = self
            .conn
            .execute(
                "UPDATE functions SET reserved_concurrency = NULL WHERE name = ?1",
                [name],
            )
            .map_err(RegistryError::sql("delete concurrency"))?;
        if n == 0 {
            return Err(not_found(&self.account, name, None));
        }
        Ok(())
    }

    /// `PutProvisionedConcurrencyConfig` for a version number or alias (never `$LATEST`).
    pub fn put_provisioned(
        &mut self,
        name: &str,
        qualifier: &str,
        requested: u32,
    ) -> Result<ProvisionedConfig, RegistryError> {
        validate::qualifier(qualifier)?;
        if qualifier == LATEST {
            return Err(RegistryError::InvalidParameter(
                "Provisioned Concurrency Configs cannot be applied to unpublished function \
                 versions."
                    .into(),
            ));
        }
        if requested == 0 {
            return Err(RegistryError::InvalidParameter(
                "1 validation error detected: Value '0' at 'provisionedConcurrentExecutions' \
                 failed to satisfy constraint: Member must have value greater than or equal to 1"
                    .into(),
            ));
        }
        let tx = begin(&mut self.conn)?;
        if !function_exists(&tx, name)? {
            return Err(not_found(&self.account, name, None));
        }
        let exists = if validate::is_version_number(qualifier) {
            load_version(&tx, self.code.root(), name, qualifier)?.is_some()
        } else {
            tx.query_row(
                "SELECT 1 FROM aliases WHERE function = ?1 AND name = ?2",
                [name, qualifier],
                |_| Ok(()),
            )
            .optional()
            .map_err(RegistryError::sql("read alias"))?
            .is_some()
        };
        if !exists {
            return Err(not_found(&self.account, name, Some(qualifier)));
        }
        let reserved: Option<u32> = tx
            .query_row(
                "SELECT reserved_concurrency FROM functions WHERE name = ?1",
                [name],
                |r| r.get(0),
            )
            .map_err(RegistryError::sql("read concurrency"))?;
        if let Some(reserved) = reserved {
            let total = provisioned_total(&tx, name, Some(qualifier))? + i64::from(requested);
            if total > i64::from(reserved) {
                return Err(RegistryError::InvalidParameter(
                    "Requested Provisioned Concurrency should not be greater than the \
                     reservedConcurrentExecution for function"
                        .into(),
                ));
            }
        }
        let config = ProvisionedConfig {
            qualifier: qualifier.to_owned(),
            requested,
            last_modified: validate::last_modified_seconds(SystemTime::now()),
        };
        tx.execute(
            "INSERT INTO provisioned (function, qualifier, requested, last_modified) \
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (function, qualifier) \
             DO UPDATE SET requested = excluded.requested, last_modified = excluded.last_modified",
            params![
                name,
                config.qualifier,
                config.requested,
                config.last_modified
            ],
        )
        .map_err(RegistryError::sql("put provisioned"))?;
        tx.commit()
            .map_err(RegistryError::sql("commit provisioned"))?;
        Ok(config)
    }

    /// `GetProvisionedConcurrencyConfig`.
    pub fn get_provisioned(
        &self,
        name: &str,
        qualifier: &str,
    ) -> Result<ProvisionedConfig, RegistryError> {
        if !function_exists(&self.conn, name)? {
            return Err(not_found(&self.account, name, None));
        }
        self.conn
            .query_row(
                "SELECT qualifier, requested, last_modified FROM provisioned \
                 WHERE function = ?1 AND qualifier = ?2",
                [name, qualifier],
                |r| {
                    Ok(ProvisionedConfig {
                        qualifier: r.get(0)?,
                        requested: r.get(1)?,
                        last_modified: r.get(2)?,
                    })
                },
            )
            .optional()
            .map_err(RegistryError::sql("read provisioned"))?
            .ok_or_else(|| RegistryError::ProvisionedNotFound {
                arn: self.account.function_arn(name, Some(qualifier)),
            })
    }

    /// `DeleteProvisionedConcurrencyConfig`.
    pub fn delete_provisioned(&mut self, name: &str, qualifier: &str) -> Result<(), RegistryError> {
        self.get_provisioned(name, qualifier)?;
        self.conn
            .execute(
                "DELETE FROM provisioned WHERE function = ?1 AND qualifier = ?2",
                [name, qualifier],
            )
            .map_err(RegistryError::sql("delete provisioned"))?;
        Ok(())
    }

    /// Every provisioned concurrency request, as (function, config), by function and qualifier:
    /// what the pool keeps warm after a restart.
    pub fn all_provisioned(&self) -> Result<Vec<(String, ProvisionedConfig)>, RegistryError> {
        let mut stmt = self
            .conn
            .prepare(
                "SELECT function, qualifier, requested, last_modified FROM provisioned \
                 ORDER BY function, qualifier",
            )
            .map_err(RegistryError::sql("list provisioned"))?;
        let rows = stmt
            .query_map([], |r| {
                Ok((
                    r.get(0)?,
                    ProvisionedConfig {
                        qualifier: r.get(1)?,
                        requested: r.get(2)?,
                        last_modified: r.get(3)?,
                    },
                ))
            })
            .and_then(|rows| rows.collect())
            .map_err(RegistryError::sql("list provisioned"));
        rows
    }

    /// `AccountUsage` of `GetAccountSettings`, plus the reserved total.
    pub fn account_usage(&self) -> Result<AccountUsage, RegistryError> {
        let (functions, reserved): (i64, i64) = self
            .conn
            .query_row(
                "SELECT count(*), coalesce(sum(reserved_concurrency), 0) FROM functions",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(RegistryError::sql("account usage"))?;
        let code: i64 = self
            .conn
            .query_row(
                "SELECT coalesce(sum(code_size), 0) FROM versions",
                [],
                |r| r.get(0),
            )
            .map_err(RegistryError::sql("account usage"))?;
        Ok(AccountUsage {
            function_count: functions.max(0) as u64,
            total_code_size: code.max(0) as u64,
            reserved_concurrency: reserved.max(0) as u64,
        })
    }

    /// A daemon setting, if set.
    pub fn get_setting(&self, key: &str) -> Result<Option<String>, RegistryError> {
        self.conn
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .optional()
            .map_err(RegistryError::sql("read setting"))
    }

    /// Sets a daemon setting (durably, like every write).
    pub fn put_setting(&mut self, key: &str, value: &str) -> Result<(), RegistryError> {
        self.conn
            .execute(
                "INSERT INTO settings (key, value) VALUES (?1, ?2) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [key, value],
            )
            .map_err(RegistryError::sql("put setting"))?;
        Ok(())
    }

    /// Removes a daemon setting (no error if unset).
    pub fn delete_setting(&mut self, key: &str) -> Result<(), RegistryError> {
        self.conn
            .execute("DELETE FROM settings WHERE key = ?1", [key])
            .map_err(RegistryError::sql("delete setting"))?;
        Ok(())
    }
}

/// Sum of a function's provisioned requests, leaving out `except` (the qualifier being set).
fn provisioned_total(
    conn: &rusqlite::Connection,
    name: &str,
    except: Option<&str>,
) -> Result<i64, RegistryError> {
    conn.query_row(
        "SELECT coalesce(sum(requested), 0) FROM provisioned \
         WHERE function = ?1 AND qualifier IS NOT ?2",
        params![name, except],
        |r| r.get(0),
    )
    .map_err(RegistryError::sql("sum provisioned"))
}

#[cfg(test)]
mod tests {
    use super::super::tests::{open_tmp, zip_with};
    use super::*;
    use crate::function::runtime::Runtime;
    use crate::registry::{AliasInput, CreateInput};

    fn create(reg: &mut Registry, name: &str) {
        let zip = zip_with(name);
        let mut input = CreateInput::new(name, Runtime::Provided, "h", &zip);
        input.publish = true;
        reg.create_function(input).unwrap();
    }

    fn invalid<T: std::fmt::Debug>(r: Result<T, RegistryError>) -> String {
        match r {
            Err(RegistryError::InvalidParameter(m)) => m,
            other => panic!("expected InvalidParameter, got {other:?}"),
        }
    }

    #[test]
    fn reserved_concurrency_keeps_100_unreserved() {
        let (_tmp, mut reg) = open_tmp();
        create(&mut reg, "a");
        create(&mut reg, "b");
        assert_eq!(reg.get_function_concurrency("a").unwrap(), None);
        assert_eq!(reg.put_function_concurrency("a", 0).unwrap(), 0);
        assert_eq!(reg.get_function_concurrency("a").unwrap(), Some(0));
        reg.put_function_concurrency("a", 800).unwrap();
        assert!(invalid(reg.put_function_concurrency("b", 101)).contains("[100]"));
        reg.put_function_concurrency("b", 100).unwrap();
        // Re-setting a's own reservation does not count its old value.
        reg.put_function_concurrency("a", 800).unwrap();
        assert_eq!(
            reg.get_function("a", None).unwrap().reserved_concurrency,
            Some(800)
        );
        assert_eq!(reg.account_usage().unwrap().reserved_concurrency, 900);
        reg.delete_function_concurrency("a").unwrap();
        assert_eq!(reg.get_function_concurrency("a").unwrap(), None);
        reg.set_concurrency_limit(150);
        invalid(reg.put_function_concurrency("a", 1));
        assert!(matches!(
            reg.put_function_concurrency("nope", 1),
            Err(RegistryError::FunctionNotFound { .. })
        ));
    }

    #[test]
    fn provisioned_needs_a_version_or_alias_within_reserved() {
        let (_tmp, mut reg) = open_tmp();
        create(&mut reg, "f");
        reg.create_alias(
            "f",
            AliasInput {
                name: "live".into(),
                function_version: "1".into(),
                ..AliasInput::default()
            },
        )
        .unwrap();
        invalid(reg.put_provisioned("f", "$LATEST", 1));
        invalid(reg.put_provisioned("f", "1", 0));
        assert!(matches!(
            reg.put_provisioned("f", "7", 1),
            Err(RegistryError::FunctionNotFound { .. })
        ));
        assert!(matches!(
            reg.put_provisioned("f", "nope", 1),
            Err(RegistryError::FunctionNotFound { .. })
        ));
        let p = reg.put_provisioned("f", "1", 3).unwrap();
        assert_eq!((p.qualifier.as_str(), p.requested), ("1", 3));
        assert_eq!(p.last_modified.len(), 24);
        assert_eq!(reg.get_provisioned("f", "1").unwrap(), p);
        reg.put_function_concurrency("f", 5).unwrap();
        invalid(reg.put_provisioned("f", "live", 3));
        reg.put_provisioned("f", "live", 2).unwrap();
        // Lowering the reservation below what is provisioned is refused.
        invalid(reg.put_function_concurrency("f", 4));
        let all = reg.all_provisioned().unwrap();
        let got: Vec<(&str, &str, u32)> = all
            .iter()
            .map(|(f, p)| (f.as_str(), p.qualifier.as_str(), p.requested))
            .collect();
        assert_eq!(got, [("f", "1", 3), ("f", "live", 2)]);
        reg.delete_provisioned("f", "1").unwrap();
        assert!(matches!(
            reg.get_provisioned("f", "1"),
            Err(RegistryError::ProvisionedNotFound { .. })
        ));
        reg.delete_alias("f", "live").unwrap();
        assert!(reg.all_provisioned().unwrap().is_empty());
    }

    #[test]
    fn usage_counts_functions_and_every_versions_code() {
        let (_tmp, mut reg) = open_tmp();
        assert_eq!(
            reg.account_usage().unwrap(),
            AccountUsage {
                function_count: 0,
                total_code_size: 0,
                reserved_concurrency: 0
            }
        );
        create(&mut reg, "a");
        let a = reg.get_function("a", None).unwrap();
        let usage = reg.account_usage().unwrap();
        assert_eq!(usage.function_count, 1);
        // $LATEST and version 1 both count, as in Lambda.
        assert_eq!(usage.total_code_size, 2 * a.code_size);
    }

    #[test]
    fn settings_round_trip_and_survive_reopen() {
        let tmp = tempfile::tempdir().unwrap();
        {
            let mut reg = Registry::open(tmp.path(), super::super::tests::account()).unwrap();
            assert_eq!(reg.get_setting("k").unwrap(), None);
            reg.put_setting("k", "1").unwrap();
            reg.put_setting("k", "2").unwrap();
            reg.put_setting("gone", "x").unwrap();
            reg.delete_setting("gone").unwrap();
        }
        let reg = Registry::open(tmp.path(), super::super::tests::account()).unwrap();
        assert_eq!(reg.get_setting("k").unwrap().as_deref(), Some("2"));
        assert_eq!(reg.get_setting("gone").unwrap(), None);
    }
}
