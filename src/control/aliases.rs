//! Alias endpoints: `CreateAlias`, `GetAlias`, `UpdateAlias`, `DeleteAlias`, `ListAliases`,
//! and the `AliasConfiguration` shape (control-api.md §4).
//!
//! Does not: check versions, names or weights (the registry does), or pick a version by
//! weight at invoke time (dispatch does).

use serde_json::{json, Value};

use super::concurrency::forget_event_configs;
use super::errors::ControlError;
use super::handlers::{
    page_json, page_query, registry_error, unqualified, ControlRequest, ControlResponse, Members,
};
use super::routes::query_value;
use crate::registry::{Account, AliasConfig, AliasInput, AliasUpdate, Registry};

/// `AliasConfiguration`; `RoutingConfig` only when the alias splits traffic.
pub fn alias_json(alias: &AliasConfig, account: &Account) -> Value {
    let mut v = json!({
        "AliasArn": alias.arn(account),
        "Name": alias.name,
        "FunctionVersion": alias.function_version,
        "Description": alias.description,
        "RevisionId": alias.revision_id,
    });
    if !alias.routing.is_empty() {
        v["RoutingConfig"] = json!({ "AdditionalVersionWeights": alias.routing });
    }
    v
}

/// `RoutingConfig.AdditionalVersionWeights` (a `RoutingConfig` without weights means none).
fn routing(m: &Members) -> Result<Option<std::collections::BTreeMap<String, f64>>, ControlError> {
    match m.object("RoutingConfig")? {
        None => Ok(None),
        Some(r) => Ok(Some(
            r.f64_map("AdditionalVersionWeights")?.unwrap_or_default(),
        )),
    }
}

/// `POST /2015-03-31/functions/{f}/aliases` → 201 `AliasConfiguration`.
pub(super) fn create(
    req: &ControlRequest<'_>,
    reg: &mut Registry,
    raw: &str,
) -> Result<ControlResponse, ControlError> {
    let m = Members::parse(req.body)?;
    let function = unqualified(raw, reg)?;
    let input = AliasInput {
        name: m.req_str("Name")?,
        function_version: m.req_str("FunctionVersion")?,
        description: m.str("Description")?.unwrap_or_default(),
        routing: routing(&m)?.unwrap_or_default(),
    };
    let alias = reg.create_alias(&function, input).map_err(registry_error)?;
    Ok(ControlResponse::json(
        201,
        &alias_json(&alias, reg.account()),
    ))
}

/// `GET /2015-03-31/functions/{f}/aliases/{name}` → `AliasConfiguration`.
pub(super) fn get(
    reg: &mut Registry,
    raw: &str,
    name: &str,
) -> Result<ControlResponse, ControlError> {
    let function = unqualified(raw, reg)?;
    let alias = reg.get_alias(&function, name).map_err(registry_error)?;
    Ok(ControlResponse::json(
        200,
        &alias_json(&alias, reg.account()),
    ))
}

/// `PUT /2015-03-31/functions/{f}/aliases/{name}` → `AliasConfiguration`.
pub(super) fn update(
    req: &ControlRequest<'_>,
    reg: &mut Registry,
    raw: &str,
    name: &str,
) -> Result<ControlResponse, ControlError> {
    let m = Members::parse(req.body)?;
    let function = unqualified(raw, reg)?;
    let update = AliasUpdate {
        function_version: m.str("FunctionVersion")?,
        description: m.str("Description")?,
        routing: routing(&m)?,
    };
    let revision_id = m.str("RevisionId")?;
    let alias = reg
        .update_alias(&function, name, update, revision_id.as_deref())
        .map_err(registry_error)?;
    Ok(ControlResponse::json(
        200,
        &alias_json(&alias, reg.account()),
    ))
}

/// `DELETE /2015-03-31/functions/{f}/aliases/{name}` → 204; forgets the alias's async-invoke
/// config too.
pub(super) fn delete(
    reg: &mut Registry,
    raw: &str,
    name: &str,
) -> Result<ControlResponse, ControlError> {
    let function = unqualified(raw, reg)?;
    reg.delete_alias(&function, name).map_err(registry_error)?;
    forget_event_configs(reg, &function, Some(name))?;
    Ok(ControlResponse::no_content())
}

/// `GET /2015-03-31/functions/{f}/aliases[?FunctionVersion=]` → `{Aliases, NextMarker?}`.
pub(super) fn list(
    req: &ControlRequest<'_>,
    reg: &mut Registry,
    raw: &str,
) -> Result<ControlResponse, ControlError> {
    let (marker, max) = page_query(&req.query)?;
    let function = unqualified(raw, reg)?;
    let version = query_value(&req.query, "FunctionVersion").filter(|v| !v.is_empty());
    let (items, next) = reg
        .list_aliases(&function, version, marker.as_deref(), max)
        .map_err(registry_error)?;
    let items = items.iter().map(|a| alias_json(a, reg.account())).collect();
    Ok(ControlResponse::json(
        200,
        &page_json("Aliases", items, next),
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::handlers::test_util::{call, create, open_tmp};
    use super::super::routes::Route;
    use super::*;

    const ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function";

    #[test]
    fn alias_crud_and_list() {
        let (_t, mut reg) = open_tmp();
        create(&mut reg, "f");
        for _ in 0..2 {
            call(&mut reg, Route::PublishVersion("f".into()), &[], &json!({})).unwrap();
            // A change so the next publish makes a new version.
            call(
                &mut reg,
                Route::UpdateFunctionConfiguration("f".into()),
                &[],
                &json!({"Timeout": 4}),
            )
            .unwrap();
        }
        let body = json!({"Name": "live", "FunctionVersion": "1", "Description": "d",
                          "RoutingConfig": {"AdditionalVersionWeights": {"2": 0.25}}});
        let (s, a) = call(&mut reg, Route::CreateAlias("f".into()), &[], &body).unwrap();
        assert_eq!(s, 201);
        assert_eq!(a["AliasArn"], format!("{ARN}:f:live"));
        assert_eq!(a["Name"], "live");
        assert_eq!(a["FunctionVersion"], "1");
        assert_eq!(a["Description"], "d");
        assert_eq!(
            a["RoutingConfig"],
            json!({"AdditionalVersionWeights": {"2": 0.25}})
        );
        assert_eq!(a["RevisionId"].as_str().unwrap().len(), 36);
        let e = call(&mut reg, Route::CreateAlias("f".into()), &[], &body).unwrap_err();
        assert_eq!(e.status(), 409);

        let get = || Route::GetAlias("f".into(), "live".into());
        let (s, g) = call(&mut reg, get(), &[], &Value::Null).unwrap();
        assert_eq!((s, &g), (200, &a));
        // The alias resolves as a qualifier elsewhere.
        let (_, c) = call(
            &mut reg,
            Route::GetFunctionConfiguration("f:live".into()),
            &[],
            &Value::Null,
        )
        .unwrap();
        assert_eq!(c["Version"], "1");

        let upd = || Route::UpdateAlias("f".into(), "live".into());
        let stale = json!({"Description": "x", "RevisionId": "0"});
        assert_eq!(
            call(&mut reg, upd(), &[], &stale).unwrap_err().status(),
            412
        );
        let body = json!({"FunctionVersion": "2", "RoutingConfig": {},
                          "RevisionId": a["RevisionId"]});
        let (s, u) = call(&mut reg, upd(), &[], &body).unwrap();
        assert_eq!(s, 200);
        assert_eq!(u["FunctionVersion"], "2");
        assert_eq!(u["Description"], "d");
        assert!(u.get("RoutingConfig").is_none());
        assert_ne!(u["RevisionId"], a["RevisionId"]);

        call(
            &mut reg,
            Route::CreateAlias("f".into()),
            &[],
            &json!({"Name": "dev", "FunctionVersion": "$LATEST"}),
        )
        .unwrap();
        let list = || Route::ListAliases("f".into());
        let (_, l) = call(&mut reg, list(), &[], &Value::Null).unwrap();
        let names: Vec<&str> = l["Aliases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["Name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["dev", "live"]);
        let (_, l) = call(&mut reg, list(), &[("MaxItems", "1")], &Value::Null).unwrap();
        assert_eq!(l["Aliases"].as_array().unwrap().len(), 1);
        assert_eq!(l["NextMarker"], "dev");
        let (_, l) = call(&mut reg, list(), &[("FunctionVersion", "2")], &Value::Null).unwrap();
        assert_eq!(l["Aliases"][0]["Name"], "live");
        assert_eq!(l["Aliases"].as_array().unwrap().len(), 1);

        let del = || Route::DeleteAlias("f".into(), "live".into());
        assert_eq!(call(&mut reg, del(), &[], &Value::Null).unwrap().0, 204);
        let e = call(&mut reg, get(), &[], &Value::Null).unwrap_err();
        assert_eq!(e.status(), 404);
        assert_eq!(
            e.to_string(),
            format!("Cannot find alias arn: {ARN}:f:live")
        );
        assert_eq!(
            call(&mut reg, del(), &[], &Value::Null)
                .unwrap_err()
                .status(),
            404
        );
    }

    #[test]
    fn alias_parameter_errors() {
        let (_t, mut reg) = open_tmp();
        create(&mut reg, "f");
        let c = || Route::CreateAlias("f".into());
        for body in [
            json!({"Name": "a"}),
            json!({"FunctionVersion": "$LATEST"}),
            json!({"Name": "123", "FunctionVersion": "$LATEST"}),
            json!({"Name": "a", "FunctionVersion": "$LATEST",
                   "RoutingConfig": {"AdditionalVersionWeights": {"1": "x"}}}),
        ] {
            let e = call(&mut reg, c(), &[], &body).unwrap_err();
            assert_eq!(e.error_type(), "InvalidParameterValueException", "{body}");
        }
        let e = call(
            &mut reg,
            c(),
            &[],
            &json!({"Name": "a", "FunctionVersion": "9"}),
        )
        .unwrap_err();
        assert_eq!(e.to_string(), format!("Function not found: {ARN}:f:9"));
        let e = call(
            &mut reg,
            Route::CreateAlias("g".into()),
            &[],
            &json!({"Name": "a",
            "FunctionVersion": "$LATEST"}),
        )
        .unwrap_err();
        assert_eq!(e.status(), 404);
    }
}
