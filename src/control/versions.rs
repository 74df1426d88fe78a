//! Version and listing endpoints: `ListFunctions` (with `FunctionVersion=ALL`),
//! `PublishVersion` and `ListVersionsByFunction`. Lists that show every version qualify
//! `$LATEST`'s ARN (`…:$LATEST`), as AWS is believed to (control-api.md §3.1, unverified).
//!
//! Does not: number, snapshot or page (the registry does).

use serde_json::Value;

use super::errors::ControlError;
use super::functions::function_configuration_json;
use super::handlers::{
    page_json, page_query, registry_error, unqualified, ControlRequest, ControlResponse, Members,
};
use crate::registry::{Account, FunctionConfig, Registry, LATEST};

/// The same, with `$LATEST` qualified (`…:$LATEST`), as list operations that show every
/// version return it.
fn version_json(cfg: &FunctionConfig, account: &Account) -> Value {
    let mut v = function_configuration_json(cfg, account);
    if cfg.version == LATEST {
        v["FunctionArn"] = Value::String(account.function_arn(&cfg.name, Some(LATEST)));
    }
    v
}

/// `GET /2015-03-31/functions` → `{Functions, NextMarker?}`; `FunctionVersion=ALL` lists
/// every version of every function.
pub(super) fn list(
    req: &ControlRequest<'_>,
    reg: &mut Registry,
) -> Result<ControlResponse, ControlError> {
    let (marker, max) = page_query(&req.query)?;
    let all = match super::routes::query_value(&req.query, "FunctionVersion") {
        None | Some("") => false,
        Some("ALL") => true,
        Some(other) => {
            return Err(ControlError::InvalidParameterValue(format!(
                "1 validation error detected: Value '{other}' at 'functionVersion' failed to \
                 satisfy constraint: Member must satisfy enum value set: [ALL]"
            )))
        }
    };
    let (items, next) = if all {
        reg.list_all_versions(marker.as_deref(), max)
    } else {
        reg.list_functions(marker.as_deref(), max)
    }
    .map_err(registry_error)?;
    let account = reg.account();
    let items = items
        .iter()
        .map(|c| {
            if all {
                version_json(c, account)
            } else {
                function_configuration_json(c, account)
            }
        })
        .collect();
    Ok(ControlResponse::json(
        200,
        &page_json("Functions", items, next),
    ))
}

/// `POST /2015-03-31/functions/{f}/versions` → 201 `FunctionConfiguration` of the version.
pub(super) fn publish_version(
    req: &ControlRequest<'_>,
    reg: &mut Registry,
    raw: &str,
) -> Result<ControlResponse, ControlError> {
    let m = Members::parse(req.body)?;
    let name = unqualified(raw, reg)?;
    let sha = m.str("CodeSha256")?;
    let description = m.str("Description")?;
    let revision_id = m.str("RevisionId")?;
    let cfg = reg
        .publish_version(
            &name,
            sha.as_deref(),
            description.as_deref(),
            revision_id.as_deref(),
        )
        .map_err(registry_error)?;
    Ok(ControlResponse::json(
        201,
        &function_configuration_json(&cfg, reg.account()),
    ))
}

/// `GET /2015-03-31/functions/{f}/versions` → `{Versions, NextMarker?}`, `$LATEST` first.
pub(super) fn list_versions(
    req: &ControlRequest<'_>,
    reg: &mut Registry,
    raw: &str,
) -> Result<ControlResponse, ControlError> {
    let (marker, max) = page_query(&req.query)?;
    let name = unqualified(raw, reg)?;
    let (items, next) = reg
        .list_versions(&name, marker.as_deref(), max)
        .map_err(registry_error)?;
    let items = items
        .iter()
        .map(|c| version_json(c, reg.account()))
        .collect();
    Ok(ControlResponse::json(
        200,
        &page_json("Versions", items, next),
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::functions::tests::{check_configuration, ARN};
    use super::super::handlers::test_util::{call, create, open_tmp};
    use super::super::routes::Route;
    use super::*;

    fn err(r: Result<(u16, Value), ControlError>) -> ControlError {
        r.expect_err("expected an error")
    }

    #[test]
    fn list_pages_over_sixty_functions() {
        let (_t, mut reg) = open_tmp();
        for i in 0..60 {
            create(&mut reg, &format!("fn-{i:02}"));
        }
        let (_, p1) = call(&mut reg, Route::ListFunctions, &[], &Value::Null).unwrap();
        let fns = p1["Functions"].as_array().unwrap();
        assert_eq!(fns.len(), 50);
        assert_eq!(fns[0]["FunctionName"], "fn-00");
        check_configuration(&fns[0], "fn-00");
        let marker = p1["NextMarker"].as_str().unwrap().to_owned();
        let q = [("Marker", marker.as_str())];
        let (_, p2) = call(&mut reg, Route::ListFunctions, &q, &Value::Null).unwrap();
        let fns = p2["Functions"].as_array().unwrap();
        assert_eq!(fns.len(), 10);
        assert_eq!(fns[0]["FunctionName"], "fn-50");
        assert!(p2.get("NextMarker").is_none());
        // MaxItems above 50 still gives 50; small MaxItems is honoured.
        let (_, p) = call(
            &mut reg,
            Route::ListFunctions,
            &[("MaxItems", "1000")],
            &Value::Null,
        )
        .unwrap();
        assert_eq!(p["Functions"].as_array().unwrap().len(), 50);
        let (_, p) = call(
            &mut reg,
            Route::ListFunctions,
            &[("MaxItems", "7")],
            &Value::Null,
        )
        .unwrap();
        assert_eq!(p["Functions"].as_array().unwrap().len(), 7);
        for bad in ["0", "x", "10001"] {
            let e = err(call(
                &mut reg,
                Route::ListFunctions,
                &[("MaxItems", bad)],
                &Value::Null,
            ));
            assert!(matches!(e, ControlError::InvalidParameterValue(_)), "{bad}");
        }
    }

    #[test]
    fn list_with_all_versions_and_list_versions() {
        let (_t, mut reg) = open_tmp();
        create(&mut reg, "a");
        create(&mut reg, "b");
        let (s, v) = call(&mut reg, Route::PublishVersion("a".into()), &[], &json!({})).unwrap();
        assert_eq!((s, &v["Version"]), (201, &json!("1")));
        assert_eq!(v["FunctionArn"], format!("{ARN}:a:1"));
        let q = [("FunctionVersion", "ALL")];
        let (_, p) = call(&mut reg, Route::ListFunctions, &q, &Value::Null).unwrap();
        let got: Vec<(String, String)> = p["Functions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["FunctionArn"].as_str().unwrap().to_owned(),
                    f["Version"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (format!("{ARN}:a:$LATEST"), "$LATEST".to_owned()),
                (format!("{ARN}:a:1"), "1".to_owned()),
                (format!("{ARN}:b:$LATEST"), "$LATEST".to_owned()),
            ]
        );
        let e = err(call(
            &mut reg,
            Route::ListFunctions,
            &[("FunctionVersion", "X")],
            &Value::Null,
        ));
        assert!(e.to_string().contains("functionVersion"), "{e}");
        let (_, p) = call(
            &mut reg,
            Route::ListVersionsByFunction("a".into()),
            &[],
            &Value::Null,
        )
        .unwrap();
        let versions = p["Versions"].as_array().unwrap();
        assert_eq!(versions.len(), 2);
        assert_eq!(versions[0]["Version"], "$LATEST");
        assert_eq!(versions[1]["Version"], "1");
        let q = [("MaxItems", "1")];
        let (_, p) = call(
            &mut reg,
            Route::ListVersionsByFunction("a".into()),
            &q,
            &Value::Null,
        )
        .unwrap();
        assert_eq!(p["Versions"].as_array().unwrap().len(), 1);
        let m = p["NextMarker"].as_str().unwrap().to_owned();
        let (_, p) = call(
            &mut reg,
            Route::ListVersionsByFunction("a".into()),
            &[("Marker", &m)],
            &Value::Null,
        )
        .unwrap();
        assert_eq!(p["Versions"][0]["Version"], "1");
        assert!(p.get("NextMarker").is_none());
    }

    #[test]
    fn publish_checks_sha_and_revision() {
        let (_t, mut reg) = open_tmp();
        let f = create(&mut reg, "f");
        let route = || Route::PublishVersion("f".into());
        let e = err(call(&mut reg, route(), &[], &json!({"RevisionId": "nope"})));
        assert_eq!(e.status(), 412);
        let e = err(call(&mut reg, route(), &[], &json!({"CodeSha256": "AAAA"})));
        assert_eq!(e.status(), 412, "{e:?}");
        let body = json!({"CodeSha256": f["CodeSha256"], "RevisionId": f["RevisionId"],
                          "Description": "first"});
        let (s, v) = call(&mut reg, route(), &[], &body).unwrap();
        assert_eq!(
            (s, &v["Version"], &v["Description"]),
            (201, &json!("1"), &json!("first"))
        );
    }
}
