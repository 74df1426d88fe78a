//! `GetAccountSettings` (control-api.md §4): Lambda's code-size quotas, the concurrency
//! quota the registry checks reservations against, and what the account uses.
//!
//! Does not: count running instances (unreserved concurrency is quota minus reservations,
//! as Lambda reports it).

use serde_json::json;

use super::errors::ControlError;
use super::handlers::{registry_error, ControlResponse};
use crate::function::code::{MAX_UNPACKED_BYTES, MAX_ZIPPED_BYTES};
use crate::registry::Registry;

/// Lambda's per-region code storage quota (75 GB).
pub const TOTAL_CODE_SIZE_LIMIT: u64 = 80_530_636_800;

/// `GET /2016-08-19/account-settings` → `{AccountLimit, AccountUsage}`.
pub(super) fn get_settings(reg: &mut Registry) -> Result<ControlResponse, ControlError> {
    let usage = reg.account_usage().map_err(registry_error)?;
    let limit = u64::from(reg.concurrency_limit());
    let body = json!({
        "AccountLimit": {
            "TotalCodeSize": TOTAL_CODE_SIZE_LIMIT,
            "CodeSizeUnzipped": MAX_UNPACKED_BYTES,
            "CodeSizeZipped": MAX_ZIPPED_BYTES,
            "ConcurrentExecutions": limit,
            "UnreservedConcurrentExecutions": limit.saturating_sub(usage.reserved_concurrency),
        },
        "AccountUsage": {
            "TotalCodeSize": usage.total_code_size,
            "FunctionCount": usage.function_count,
        },
    });
    Ok(ControlResponse::json(200, &body))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde_json::{json, Value};

    use super::super::handlers::test_util::{call, create, create_body, open_tmp, zip_b64};
    use super::super::handlers::{handle, ControlRequest};
    use super::super::routes::Route;
    use super::*;

    #[test]
    fn account_settings_show_limits_and_usage() {
        let (_t, mut reg) = open_tmp();
        let f = create(&mut reg, "f");
        reg.put_function_concurrency("f", 10).unwrap();
        let (s, v) = call(&mut reg, Route::GetAccountSettings, &[], &Value::Null).unwrap();
        assert_eq!(s, 200);
        assert_eq!(
            v["AccountLimit"],
            json!({"TotalCodeSize": 80_530_636_800u64, "CodeSizeUnzipped": 262_144_000,
                   "CodeSizeZipped": 52_428_800, "ConcurrentExecutions": 1000,
                   "UnreservedConcurrentExecutions": 990})
        );
        assert_eq!(
            v["AccountUsage"],
            json!({"TotalCodeSize": f["CodeSize"], "FunctionCount": 1})
        );
    }

    /// Writes one response of every operation (and some errors) as
    /// `<dir>/<nn>-<Operation>[-<note>].json` = `{"operation", "status", "headers", "body"}`,
    /// for parsing with botocore's own `RestJSONParser` against the Lambda service model
    /// (a Python check outside the crate; botocore is not a build dependency). Runs only
    /// when `HEARTH_BOTOCORE_DUMP` names a directory; a plain `cargo test` skips it.
    #[test]
    fn dump_responses_for_botocore() {
        let Some(dir) = std::env::var_os("HEARTH_BOTOCORE_DUMP") else {
            eprintln!("skipped: HEARTH_BOTOCORE_DUMP not set");
            return;
        };
        let dir = std::path::PathBuf::from(dir);
        std::fs::create_dir_all(&dir).unwrap();
        let (_t, mut reg) = open_tmp();
        let mut n = 0;
        let mut run =
            |reg: &mut Registry, op: &str, route: Route, q: &[(&str, &str)], body: Value| {
                let bytes = if body.is_null() {
                    Vec::new()
                } else {
                    body.to_string().into_bytes()
                };
                let req = ControlRequest {
                    route,
                    query: q.iter().map(|(k, v)| ((*k).into(), (*v).into())).collect(),
                    headers: &[],
                    body: &bytes,
                };
                let (status, headers, body): (u16, BTreeMap<String, String>, Vec<u8>) =
                    match handle(&req, reg) {
                        Ok(r) => (r.status, r.headers.into_iter().collect(), r.body),
                        Err(e) => {
                            let (s, h, b) = e.to_response();
                            (
                                s,
                                h.into_iter().map(|(k, v)| (k.to_owned(), v)).collect(),
                                b,
                            )
                        }
                    };
                n += 1;
                let out = json!({"operation": op.split('-').next().unwrap(), "status": status,
                             "headers": headers, "body": String::from_utf8(body).unwrap()});
                std::fs::write(dir.join(format!("{n:02}-{op}.json")), out.to_string()).unwrap();
            };
        let f = || "f".to_owned();
        let mut body = create_body("f");
        body["Environment"] = json!({"Variables": {"K1": "v"}});
        run(&mut reg, "CreateFunction", Route::CreateFunction, &[], body);
        run(
            &mut reg,
            "GetFunction",
            Route::GetFunction(f()),
            &[],
            Value::Null,
        );
        run(
            &mut reg,
            "GetFunctionConfiguration",
            Route::GetFunctionConfiguration(f()),
            &[],
            Value::Null,
        );
        run(
            &mut reg,
            "UpdateFunctionCode",
            Route::UpdateFunctionCode(f()),
            &[],
            json!({"ZipFile": zip_b64("v2")}),
        );
        run(
            &mut reg,
            "UpdateFunctionConfiguration",
            Route::UpdateFunctionConfiguration(f()),
            &[],
            json!({"Timeout": 10}),
        );
        run(
            &mut reg,
            "PublishVersion",
            Route::PublishVersion(f()),
            &[],
            json!({}),
        );
        create(&mut reg, "g");
        run(
            &mut reg,
            "ListFunctions",
            Route::ListFunctions,
            &[("MaxItems", "1")],
            Value::Null,
        );
        run(
            &mut reg,
            "ListFunctions-all",
            Route::ListFunctions,
            &[("FunctionVersion", "ALL")],
            Value::Null,
        );
        run(
            &mut reg,
            "ListVersionsByFunction",
            Route::ListVersionsByFunction(f()),
            &[],
            Value::Null,
        );
        run(
            &mut reg,
            "CreateAlias",
            Route::CreateAlias(f()),
            &[],
            json!({"Name": "live", "FunctionVersion": "1"}),
        );
        run(
            &mut reg,
            "GetAlias",
            Route::GetAlias(f(), "live".into()),
            &[],
            Value::Null,
        );
        run(
            &mut reg,
            "UpdateAlias",
            Route::UpdateAlias(f(), "live".into()),
            &[],
            json!({"Description": "d"}),
        );
        run(
            &mut reg,
            "ListAliases",
            Route::ListAliases(f()),
            &[],
            Value::Null,
        );
        run(
            &mut reg,
            "PutFunctionConcurrency",
            Route::PutFunctionConcurrency(f()),
            &[],
            json!({"ReservedConcurrentExecutions": 10}),
        );
        run(
            &mut reg,
            "GetFunctionConcurrency",
            Route::GetFunctionConcurrency(f()),
            &[],
            Value::Null,
        );
        run(
            &mut reg,
            "GetFunction-concurrency",
            Route::GetFunction(f()),
            &[],
            Value::Null,
        );
        run(
            &mut reg,
            "PutProvisionedConcurrencyConfig",
            Route::PutProvisionedConcurrencyConfig(f()),
            &[("Qualifier", "1")],
            json!({"ProvisionedConcurrentExecutions": 2}),
        );
        run(
            &mut reg,
            "GetProvisionedConcurrencyConfig",
            Route::GetProvisionedConcurrencyConfig(f()),
            &[("Qualifier", "1")],
            Value::Null,
        );
        run(
            &mut reg,
            "PutFunctionEventInvokeConfig",
            Route::PutFunctionEventInvokeConfig(f()),
            &[],
            json!({"MaximumRetryAttempts": 1, "DestinationConfig":
                   {"OnFailure": {"Destination": "arn:aws:sqs:us-east-1:123456789012:q"}}}),
        );
        run(
            &mut reg,
            "UpdateFunctionEventInvokeConfig",
            Route::UpdateFunctionEventInvokeConfig(f()),
            &[],
            json!({"MaximumEventAgeInSeconds": 300}),
        );
        run(
            &mut reg,
            "GetFunctionEventInvokeConfig",
            Route::GetFunctionEventInvokeConfig(f()),
            &[],
            Value::Null,
        );
        run(
            &mut reg,
            "GetAccountSettings",
            Route::GetAccountSettings,
            &[],
            Value::Null,
        );
        run(
            &mut reg,
            "DeleteFunctionEventInvokeConfig",
            Route::DeleteFunctionEventInvokeConfig(f()),
            &[],
            Value::Null,
        );
        run(
            &mut reg,
            "DeleteProvisionedConcurrencyConfig",
            Route::DeleteProvisionedConcurrencyConfig(f()),
            &[("Qualifier", "1")],
            Value::Null,
        );
        run(
            &mut reg,
            "DeleteFunctionConcurrency",
            Route::DeleteFunctionConcurrency(f()),
            &[],
            Value::Null,
        );
        run(
            &mut reg,
            "GetFunctionConcurrency-empty",
            Route::GetFunctionConcurrency(f()),
            &[],
            Value::Null,
        );
        run(
            &mut reg,
            "DeleteAlias",
            Route::DeleteAlias(f(), "live".into()),
            &[],
            Value::Null,
        );
        // Errors: botocore must raise the modeled exception class.
        run(
            &mut reg,
            "GetFunction-ResourceNotFoundException",
            Route::GetFunction("nope".into()),
            &[],
            Value::Null,
        );
        run(
            &mut reg,
            "CreateFunction-ResourceConflictException",
            Route::CreateFunction,
            &[],
            create_body("f"),
        );
        run(
            &mut reg,
            "UpdateFunctionConfiguration-PreconditionFailedException",
            Route::UpdateFunctionConfiguration(f()),
            &[],
            json!({"RevisionId": "x"}),
        );
        run(
            &mut reg,
            "UpdateFunctionConfiguration-InvalidParameterValueException",
            Route::UpdateFunctionConfiguration(f()),
            &[],
            json!({"MemorySize": 99999}),
        );
        run(
            &mut reg,
            "GetProvisionedConcurrencyConfig-ProvisionedConcurrencyConfigNotFoundException",
            Route::GetProvisionedConcurrencyConfig(f()),
            &[("Qualifier", "1")],
            Value::Null,
        );
        let req = ControlRequest {
            route: Route::CreateFunction,
            query: Vec::new(),
            headers: &[],
            body: b"{oops",
        };
        let (s, h, b) = handle(&req, &mut reg).unwrap_err().to_response();
        let h: BTreeMap<String, String> = h.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        let out = json!({"operation": "CreateFunction", "status": s, "headers": h,
                         "body": String::from_utf8(b).unwrap()});
        std::fs::write(
            dir.join("99-CreateFunction-InvalidRequestContentException.json"),
            out.to_string(),
        )
        .unwrap();
        run(
            &mut reg,
            "DeleteFunction",
            Route::DeleteFunction(f()),
            &[],
            Value::Null,
        );
    }
}
