//! Concurrency and async-invoke settings: `Put/Get/DeleteFunctionConcurrency`,
//! `Put/Get/DeleteProvisionedConcurrencyConfig`, and
//! `Put/Update/Get/DeleteFunctionEventInvokeConfig` (control-api.md §4).
//!
//! Async-invoke configs have no table of their own: they are kept as one JSON document per
//! function in the registry's settings, under `event-invoke-config/<function>`, mapping
//! qualifier (`$LATEST`, a version number or an alias) → config; [`event_invoke_config`]
//! reads one for the daemon's async queue. Deleting a function, version or alias through the
//! API forgets its configs (`forget_event_configs`).
//!
//! Does not: enforce concurrency or keep instances warm (the pool does). Provisioned
//! concurrency is answered `Status: READY` with `Available`/`Allocated` equal to the request
//! at once: only the request is stored so far; once the pool keeps provisioned instances
//! warm, these should report what it has actually started.
//!
//! Limits: a crash between deleting a function and forgetting its async configs leaves a
//! stale document, which applies again to a function later created under the same name.

use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use super::errors::ControlError;
use super::handlers::{
    registry_error, target, unqualified, ControlRequest, ControlResponse, Members,
};
use crate::registry::{ProvisionedConfig, Registry, LATEST};

/// `MaximumRetryAttempts` range.
pub const RETRY_ATTEMPTS: (u32, u32) = (0, 2);
/// `MaximumEventAgeInSeconds` range.
pub const EVENT_AGE_S: (u32, u32) = (60, 21_600);
/// Longest destination ARN (model `max`).
const MAX_DESTINATION: usize = 350;

/// `PUT /2017-10-31/functions/{f}/concurrency` → `{"ReservedConcurrentExecutions": n}`.
pub(super) fn put_reserved(
    req: &ControlRequest<'_>,
    reg: &mut Registry,
    raw: &str,
) -> Result<ControlResponse, ControlError> {
    let m = Members::parse(req.body)?;
    let name = unqualified(raw, reg)?;
    let n = m.req_u32("ReservedConcurrentExecutions")?;
    let n = reg
        .put_function_concurrency(&name, n)
        .map_err(registry_error)?;
    Ok(ControlResponse::json(
        200,
        &json!({ "ReservedConcurrentExecutions": n }),
    ))
}

/// `GET /2019-09-30/functions/{f}/concurrency` → the same, or `{}` when none is reserved.
pub(super) fn get_reserved(reg: &mut Registry, raw: &str) -> Result<ControlResponse, ControlError> {
    let name = unqualified(raw, reg)?;
    let body = match reg
        .get_function_concurrency(&name)
        .map_err(registry_error)?
    {
        Some(n) => json!({ "ReservedConcurrentExecutions": n }),
        None => json!({}),
    };
    Ok(ControlResponse::json(200, &body))
}

/// `DELETE /2017-10-31/functions/{f}/concurrency` → 204.
pub(super) fn delete_reserved(
    reg: &mut Registry,
    raw: &str,
) -> Result<ControlResponse, ControlError> {
    let name = unqualified(raw, reg)?;
    reg.delete_function_concurrency(&name)
        .map_err(registry_error)?;
    Ok(ControlResponse::no_content())
}

/// Function name and the required qualifier of a provisioned-concurrency call.
fn provisioned_target(
    req: &ControlRequest<'_>,
    reg: &Registry,
    raw: &str,
) -> Result<(String, String), ControlError> {
    let t = target(raw, &req.query, reg)?;
    match t.qualifier {
        Some(q) => Ok((t.name, q)),
        None => Err(ControlError::InvalidParameterValue(
            "1 validation error detected: Value null at 'qualifier' failed to satisfy \
             constraint: Member must not be null"
                .into(),
        )),
    }
}

fn provisioned_json(p: &ProvisionedConfig) -> Value {
    json!({
        "RequestedProvisionedConcurrentExecutions": p.requested,
        "AvailableProvisionedConcurrentExecutions": p.requested,
        "AllocatedProvisionedConcurrentExecutions": p.requested,
        "Status": "READY",
        "LastModified": p.last_modified,
    })
}

/// `PUT /2019-09-30/functions/{f}/provisioned-concurrency?Qualifier=` → 202.
pub(super) fn put_provisioned(
    req: &ControlRequest<'_>,
    reg: &mut Registry,
    raw: &str,
) -> Result<ControlResponse, ControlError> {
    let m = Members::parse(req.body)?;
    let (name, qualifier) = provisioned_target(req, reg, raw)?;
    let n = m.req_u32("ProvisionedConcurrentExecutions")?;
    let p = reg
        .put_provisioned(&name, &qualifier, n)
        .map_err(registry_error)?;
    Ok(ControlResponse::json(202, &provisioned_json(&p)))
}

/// `GET /2019-09-30/functions/{f}/provisioned-concurrency?Qualifier=`.
pub(super) fn get_provisioned(
    req: &ControlRequest<'_>,
    reg: &mut Registry,
    raw: &str,
) -> Result<ControlResponse, ControlError> {
    let (name, qualifier) = provisioned_target(req, reg, raw)?;
    let p = reg
        .get_provisioned(&name, &qualifier)
        .map_err(registry_error)?;
    Ok(ControlResponse::json(200, &provisioned_json(&p)))
}

/// `DELETE /2019-09-30/functions/{f}/provisioned-concurrency?Qualifier=` → 204.
pub(super) fn delete_provisioned(
    req: &ControlRequest<'_>,
    reg: &mut Registry,
    raw: &str,
) -> Result<ControlResponse, ControlError> {
    let (name, qualifier) = provisioned_target(req, reg, raw)?;
    reg.delete_provisioned(&name, &qualifier)
        .map_err(registry_error)?;
    Ok(ControlResponse::no_content())
}

/// A function's async-invoke settings for one qualifier, as the daemon's async queue uses
/// them. `None` members mean Lambda's defaults (2 retries, 6 hours, no destination).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventInvokeConfig {
    pub max_retry_attempts: Option<u32>,
    pub max_event_age_s: Option<u32>,
    /// `DestinationConfig.OnSuccess.Destination`.
    pub on_success: Option<String>,
    /// `DestinationConfig.OnFailure.Destination`.
    pub on_failure: Option<String>,
}

fn settings_key(function: &str) -> String {
    format!("event-invoke-config/{function}")
}

/// Every stored config of a function: qualifier → stored JSON.
fn load_configs(reg: &Registry, function: &str) -> Result<Map<String, Value>, ControlError> {
    let Some(text) = reg
        .get_setting(&settings_key(function))
        .map_err(registry_error)?
    else {
        return Ok(Map::new());
    };
    match serde_json::from_str(&text) {
        Ok(Value::Object(m)) => Ok(m),
        _ => Err(ControlError::Service(format!(
            "registry setting {} is not a JSON object",
            settings_key(function)
        ))),
    }
}

fn store_configs(
    reg: &mut Registry,
    function: &str,
    configs: &Map<String, Value>,
) -> Result<(), ControlError> {
    let key = settings_key(function);
    if configs.is_empty() {
        reg.delete_setting(&key)
    } else {
        reg.put_setting(&key, &Value::Object(configs.clone()).to_string())
    }
    .map_err(registry_error)
}

/// The async-invoke config of `function` for `qualifier` (`$LATEST`, a version number or an
/// alias name, exactly as configured), if one is set.
pub fn event_invoke_config(
    reg: &Registry,
    function: &str,
    qualifier: &str,
) -> Result<Option<EventInvokeConfig>, ControlError> {
    let configs = load_configs(reg, function)?;
    let Some(c) = configs.get(qualifier) else {
        return Ok(None);
    };
    let num = |k: &str| c.get(k).and_then(Value::as_u64).map(|n| n as u32);
    let dest = |k: &str| {
        c.pointer(&format!("/DestinationConfig/{k}/Destination"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
    };
    Ok(Some(EventInvokeConfig {
        max_retry_attempts: num("MaximumRetryAttempts"),
        max_event_age_s: num("MaximumEventAgeInSeconds"),
        on_success: dest("OnSuccess"),
        on_failure: dest("OnFailure"),
    }))
}

/// Forgets the async-invoke configs of a deleted function (`qualifier` `None`), version or
/// alias.
pub(super) fn forget_event_configs(
    reg: &mut Registry,
    function: &str,
    qualifier: Option<&str>,
) -> Result<(), ControlError> {
    match qualifier {
        None => reg
            .delete_setting(&settings_key(function))
            .map_err(registry_error),
        Some(q) => {
            let mut configs = load_configs(reg, function)?;
            if configs.remove(q).is_some() {
                store_configs(reg, function, &configs)?;
            }
            Ok(())
        }
    }
}

fn out_of_range(v: u32, field: &str, (lo, hi): (u32, u32)) -> Option<ControlError> {
    (!(lo..=hi).contains(&v)).then(|| {
        ControlError::InvalidParameterValue(format!(
            "1 validation error detected: Value '{v}' at '{field}' failed to satisfy \
             constraint: Member must have value between {lo} and {hi}"
        ))
    })
}

/// `DestinationConfig`: `OnSuccess` / `OnFailure`, each `{"Destination": "<arn>"}`.
fn destination_config(m: &Members) -> Result<Option<Map<String, Value>>, ControlError> {
    let Some(d) = m.object("DestinationConfig")? else {
        return Ok(None);
    };
    let mut out = Map::new();
    for side in ["OnSuccess", "OnFailure"] {
        let Some(s) = d.object(side)? else { continue };
        let mut entry = Map::new();
        if let Some(arn) = s.str("Destination")? {
            if arn.len() > MAX_DESTINATION || !(arn.is_empty() || arn.starts_with("arn:")) {
                return Err(ControlError::InvalidParameterValue(format!(
                    "1 validation error detected: Value '{arn}' at \
                     'destinationConfig.{}.destination' failed to satisfy constraint: Member \
                     must satisfy regular expression pattern: ^$|arn:(aws[a-zA-Z0-9-]*):\
                     ([a-zA-Z0-9\\-])+:([a-z]{{2}}(-gov)?-[a-z]+-\\d{{1}})?:(\\d{{12}})?:(.*)",
                    side.replace("On", "on")
                )));
            }
            entry.insert("Destination".into(), Value::String(arn));
        }
        out.insert(side.into(), Value::Object(entry));
    }
    Ok(Some(out))
}

fn event_config_json(stored: &Value, arn: String) -> Value {
    let mut v = stored.clone();
    v["FunctionArn"] = Value::String(arn);
    if v.get("DestinationConfig").is_none() {
        v["DestinationConfig"] = json!({});
    }
    v
}

/// `PUT` (replace) and `POST` (`merge`: update only the given members; the config must
/// exist) `/2019-09-25/functions/{f}/event-invoke-config` → `FunctionEventInvokeConfig`.
pub(super) fn put_event_config(
    req: &ControlRequest<'_>,
    reg: &mut Registry,
    raw: &str,
    merge: bool,
) -> Result<ControlResponse, ControlError> {
    let m = Members::parse(req.body)?;
    let t = target(raw, &req.query, reg)?;
    let qualifier = t.qualifier.unwrap_or_else(|| LATEST.to_owned());
    let retries = m.u32("MaximumRetryAttempts")?;
    if let Some(e) = retries.and_then(|v| out_of_range(v, "maximumRetryAttempts", RETRY_ATTEMPTS)) {
        return Err(e);
    }
    let age = m.u32("MaximumEventAgeInSeconds")?;
    if let Some(e) = age.and_then(|v| out_of_range(v, "maximumEventAgeInSeconds", EVENT_AGE_S)) {
        return Err(e);
    }
    let destinations = destination_config(&m)?;
    // The function and qualifier must exist (an alias resolves to its version).
    reg.get_function(&t.name, Some(&qualifier))
        .map_err(registry_error)?;
    let arn = reg.account().function_arn(&t.name, Some(&qualifier));
    let mut configs = load_configs(reg, &t.name)?;
    let mut entry = match (merge, configs.get(&qualifier)) {
        (false, _) => Map::new(),
        (true, Some(Value::Object(existing))) => existing.clone(),
        (true, _) => return Err(no_event_config(&arn)),
    };
    if let Some(r) = retries {
        entry.insert("MaximumRetryAttempts".into(), r.into());
    }
    if let Some(a) = age {
        entry.insert("MaximumEventAgeInSeconds".into(), a.into());
    }
    if let Some(d) = destinations {
        let mut merged = match entry.remove("DestinationConfig") {
            Some(Value::Object(old)) if merge => old,
            _ => Map::new(),
        };
        merged.extend(d);
        entry.insert("DestinationConfig".into(), Value::Object(merged));
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    // Whole milliseconds, so the stored number prints short and parses back exactly.
    entry.insert(
        "LastModified".into(),
        json!((now * 1000.0).round() / 1000.0),
    );
    let entry = Value::Object(entry);
    configs.insert(qualifier, entry.clone());
    store_configs(reg, &t.name, &configs)?;
    Ok(ControlResponse::json(200, &event_config_json(&entry, arn)))
}

fn no_event_config(arn: &str) -> ControlError {
    ControlError::ResourceNotFound(format!(
        "The function {arn} doesn't have an EventInvokeConfig"
    ))
}

/// Function, qualifier (default `$LATEST`), qualified ARN, and the stored configs, for
/// Get and Delete; the function must exist.
fn event_config_target(
    req: &ControlRequest<'_>,
    reg: &Registry,
    raw: &str,
) -> Result<(String, String, String, Map<String, Value>), ControlError> {
    let t = target(raw, &req.query, reg)?;
    let qualifier = t.qualifier.unwrap_or_else(|| LATEST.to_owned());
    reg.get_function(&t.name, None).map_err(registry_error)?;
    let arn = reg.account().function_arn(&t.name, Some(&qualifier));
    let configs = load_configs(reg, &t.name)?;
    Ok((t.name, qualifier, arn, configs))
}

/// `GET /2019-09-25/functions/{f}/event-invoke-config` → `FunctionEventInvokeConfig`.
pub(super) fn get_event_config(
    req: &ControlRequest<'_>,
    reg: &mut Registry,
    raw: &str,
) -> Result<ControlResponse, ControlError> {
    let (_, qualifier, arn, configs) = event_config_target(req, reg, raw)?;
    let stored = configs
        .get(&qualifier)
        .ok_or_else(|| no_event_config(&arn))?;
    Ok(ControlResponse::json(200, &event_config_json(stored, arn)))
}

/// `DELETE /2019-09-25/functions/{f}/event-invoke-config` → 204.
pub(super) fn delete_event_config(
    req: &ControlRequest<'_>,
    reg: &mut Registry,
    raw: &str,
) -> Result<ControlResponse, ControlError> {
    let (name, qualifier, arn, mut configs) = event_config_target(req, reg, raw)?;
    if configs.remove(&qualifier).is_none() {
        return Err(no_event_config(&arn));
    }
    store_configs(reg, &name, &configs)?;
    Ok(ControlResponse::no_content())
}

#[cfg(test)]
mod tests {
    use super::super::handlers::test_util::{call, create, open_tmp};
    use super::super::routes::Route;
    use super::*;

    const ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function";

    #[test]
    fn reserved_concurrency() {
        let (_t, mut reg) = open_tmp();
        create(&mut reg, "f");
        let get = || Route::GetFunctionConcurrency("f".into());
        assert_eq!(
            call(&mut reg, get(), &[], &Value::Null).unwrap(),
            (200, json!({}))
        );
        let put = || Route::PutFunctionConcurrency("f".into());
        let (s, v) = call(
            &mut reg,
            put(),
            &[],
            &json!({"ReservedConcurrentExecutions": 0}),
        )
        .unwrap();
        assert_eq!((s, v), (200, json!({"ReservedConcurrentExecutions": 0})));
        let (_, v) = call(&mut reg, get(), &[], &Value::Null).unwrap();
        assert_eq!(v, json!({"ReservedConcurrentExecutions": 0}));
        // Above the account's 1000 minus 100 unreserved.
        let e = call(
            &mut reg,
            put(),
            &[],
            &json!({"ReservedConcurrentExecutions": 901}),
        )
        .unwrap_err();
        assert_eq!(e.error_type(), "InvalidParameterValueException");
        let e = call(&mut reg, put(), &[], &json!({})).unwrap_err();
        assert_eq!(e.error_type(), "InvalidParameterValueException");
        let del = || Route::DeleteFunctionConcurrency("f".into());
        assert_eq!(call(&mut reg, del(), &[], &Value::Null).unwrap().0, 204);
        assert_eq!(
            call(&mut reg, get(), &[], &Value::Null).unwrap().1,
            json!({})
        );
        let e = call(
            &mut reg,
            Route::GetFunctionConcurrency("g".into()),
            &[],
            &Value::Null,
        )
        .unwrap_err();
        assert_eq!(e.status(), 404);
    }

    #[test]
    fn provisioned_concurrency() {
        let (_t, mut reg) = open_tmp();
        create(&mut reg, "f");
        call(&mut reg, Route::PublishVersion("f".into()), &[], &json!({})).unwrap();
        let r = || Route::PutProvisionedConcurrencyConfig("f".into());
        let body = json!({"ProvisionedConcurrentExecutions": 2});
        let e = call(&mut reg, r(), &[], &body).unwrap_err();
        assert!(e.to_string().contains("'qualifier'"), "{e}");
        let e = call(&mut reg, r(), &[("Qualifier", "$LATEST")], &body).unwrap_err();
        assert_eq!(e.status(), 400);
        let (s, v) = call(&mut reg, r(), &[("Qualifier", "1")], &body).unwrap();
        assert_eq!(s, 202);
        assert_eq!(v["RequestedProvisionedConcurrentExecutions"], 2);
        assert_eq!(v["AvailableProvisionedConcurrentExecutions"], 2);
        assert_eq!(v["AllocatedProvisionedConcurrentExecutions"], 2);
        assert_eq!(v["Status"], "READY");
        let lm = v["LastModified"].as_str().unwrap();
        assert_eq!(lm.len(), 24, "{lm}"); // 2019-11-21T19:32:12+0000
        let get = || Route::GetProvisionedConcurrencyConfig("f".into());
        let (s, g) = call(&mut reg, get(), &[("Qualifier", "1")], &Value::Null).unwrap();
        assert_eq!((s, &g), (200, &v));
        // The qualifier may come in the name too.
        let by_name = Route::GetProvisionedConcurrencyConfig("f:1".into());
        assert_eq!(call(&mut reg, by_name, &[], &Value::Null).unwrap().1, v);
        let del = || Route::DeleteProvisionedConcurrencyConfig("f".into());
        assert_eq!(
            call(&mut reg, del(), &[("Qualifier", "1")], &Value::Null)
                .unwrap()
                .0,
            204
        );
        let e = call(&mut reg, get(), &[("Qualifier", "1")], &Value::Null).unwrap_err();
        assert_eq!(
            (e.status(), e.error_type()),
            (404, "ProvisionedConcurrencyConfigNotFoundException")
        );
    }

    #[test]
    fn event_invoke_config_put_update_get_delete() {
        let (_t, mut reg) = open_tmp();
        create(&mut reg, "f");
        let get = || Route::GetFunctionEventInvokeConfig("f".into());
        let e = call(&mut reg, get(), &[], &Value::Null).unwrap_err();
        assert_eq!(e.status(), 404);
        assert_eq!(
            e.to_string(),
            format!("The function {ARN}:f:$LATEST doesn't have an EventInvokeConfig")
        );
        let e = call(
            &mut reg,
            Route::UpdateFunctionEventInvokeConfig("f".into()),
            &[],
            &json!({"MaximumRetryAttempts": 1}),
        )
        .unwrap_err();
        assert_eq!(e.status(), 404);
        let body = json!({"MaximumRetryAttempts": 1, "MaximumEventAgeInSeconds": 120,
            "DestinationConfig": {"OnFailure": {"Destination": "arn:aws:sqs:us-east-1:123456789012:dlq"}}});
        let (s, v) = call(
            &mut reg,
            Route::PutFunctionEventInvokeConfig("f".into()),
            &[],
            &body,
        )
        .unwrap();
        assert_eq!(s, 200);
        assert_eq!(v["FunctionArn"], format!("{ARN}:f:$LATEST"));
        assert_eq!(v["MaximumRetryAttempts"], 1);
        assert_eq!(v["MaximumEventAgeInSeconds"], 120);
        assert!(v["LastModified"].as_f64().unwrap() > 1.6e9);
        assert_eq!(
            v["DestinationConfig"]["OnFailure"]["Destination"],
            "arn:aws:sqs:us-east-1:123456789012:dlq"
        );
        // Update merges; Put replaces.
        let (_, u) = call(
            &mut reg,
            Route::UpdateFunctionEventInvokeConfig("f".into()),
            &[],
            &json!({"MaximumRetryAttempts": 0,
                    "DestinationConfig": {"OnSuccess": {"Destination": "arn:aws:sns:us-east-1:123456789012:t"}}}),
        )
        .unwrap();
        assert_eq!(u["MaximumRetryAttempts"], 0);
        assert_eq!(u["MaximumEventAgeInSeconds"], 120);
        assert!(u["DestinationConfig"]["OnFailure"]["Destination"].is_string());
        assert!(u["DestinationConfig"]["OnSuccess"]["Destination"].is_string());
        let (_, g) = call(&mut reg, get(), &[], &Value::Null).unwrap();
        assert_eq!(g, u);
        let want = EventInvokeConfig {
            max_retry_attempts: Some(0),
            max_event_age_s: Some(120),
            on_success: Some("arn:aws:sns:us-east-1:123456789012:t".into()),
            on_failure: Some("arn:aws:sqs:us-east-1:123456789012:dlq".into()),
        };
        assert_eq!(event_invoke_config(&reg, "f", LATEST).unwrap(), Some(want));
        let (_, p) = call(
            &mut reg,
            Route::PutFunctionEventInvokeConfig("f".into()),
            &[],
            &json!({"MaximumEventAgeInSeconds": 60}),
        )
        .unwrap();
        assert!(p.get("MaximumRetryAttempts").is_none());
        assert_eq!(p["DestinationConfig"], json!({}));
        for bad in [
            json!({"MaximumRetryAttempts": 3}),
            json!({"MaximumEventAgeInSeconds": 59}),
            json!({"MaximumEventAgeInSeconds": 21601}),
            json!({"DestinationConfig": {"OnSuccess": {"Destination": "not-an-arn"}}}),
        ] {
            let e = call(
                &mut reg,
                Route::PutFunctionEventInvokeConfig("f".into()),
                &[],
                &bad,
            )
            .unwrap_err();
            assert_eq!(e.error_type(), "InvalidParameterValueException", "{bad}");
        }
        // Another qualifier is a separate config; a missing version is 404.
        let e = call(
            &mut reg,
            Route::PutFunctionEventInvokeConfig("f".into()),
            &[("Qualifier", "3")],
            &json!({}),
        )
        .unwrap_err();
        assert_eq!(e.to_string(), format!("Function not found: {ARN}:f:3"));
        let del = || Route::DeleteFunctionEventInvokeConfig("f".into());
        assert_eq!(call(&mut reg, del(), &[], &Value::Null).unwrap().0, 204);
        assert_eq!(
            call(&mut reg, del(), &[], &Value::Null)
                .unwrap_err()
                .status(),
            404
        );
        assert_eq!(event_invoke_config(&reg, "f", LATEST).unwrap(), None);
    }

    #[test]
    fn deleting_the_function_forgets_its_event_configs() {
        let (_t, mut reg) = open_tmp();
        create(&mut reg, "f");
        call(
            &mut reg,
            Route::PutFunctionEventInvokeConfig("f".into()),
            &[],
            &json!({"MaximumRetryAttempts": 1}),
        )
        .unwrap();
        call(
            &mut reg,
            Route::DeleteFunction("f".into()),
            &[],
            &Value::Null,
        )
        .unwrap();
        create(&mut reg, "f");
        assert_eq!(event_invoke_config(&reg, "f", LATEST).unwrap(), None);
        assert_eq!(reg.get_setting("event-invoke-config/f").unwrap(), None);
    }
}
