//! Function endpoints: `CreateFunction`, `GetFunction`, `GetFunctionConfiguration`,
//! `UpdateFunctionCode`, `UpdateFunctionConfiguration`, `DeleteFunction`, and the
//! `FunctionConfiguration` shape every function and version operation returns
//! (control-api.md §3.1). Listing and publishing are in [`super::versions`].
//!
//! Does not: store or validate limits (the registry does), or serve code downloads:
//! `GetFunction`'s `Code.Location` is a `file://` URL of the kept zip on the daemon's host,
//! since Hearth has no S3 to presign a URL in.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::{json, Map, Value};

use super::concurrency::forget_event_configs;
use super::errors::ControlError;
use super::handlers::{
    registry_error, target, unqualified, ControlRequest, ControlResponse, Members,
};
use crate::function::env::log_group_name;
use crate::function::runtime::Runtime;
use crate::registry::store::{CODE_DIR, ZIP_DIR};
use crate::registry::{Account, CodeUpdate, ConfigUpdate, CreateInput, FunctionConfig, Registry};

/// The architecture Hearth runs (its sandboxes execute natively on x86_64 hosts).
pub const SUPPORTED_ARCHITECTURE: &str = "x86_64";

/// `FunctionConfiguration` of one version, as Create/Get/Update/Publish return it:
/// `FunctionArn` unqualified for `$LATEST`, qualified for a published version.
pub fn function_configuration_json(cfg: &FunctionConfig, account: &Account) -> Value {
    let mut v = json!({
        "FunctionName": cfg.name,
        "FunctionArn": cfg.arn(account),
        "Runtime": cfg.runtime.name(),
        "Role": cfg.role,
        "Handler": cfg.handler,
        "CodeSize": cfg.code_size,
        "Description": cfg.description,
        "Timeout": cfg.timeout_s,
        "MemorySize": cfg.memory_mb,
        "LastModified": cfg.last_modified,
        "CodeSha256": cfg.code_sha256_base64(),
        "Version": cfg.version,
        "TracingConfig": {"Mode": "PassThrough"},
        "RevisionId": cfg.revision_id,
        "State": cfg.state,
        "LastUpdateStatus": cfg.last_update_status,
        "PackageType": "Zip",
        "Architectures": cfg.architectures,
        "EphemeralStorage": {"Size": cfg.ephemeral_storage_mb},
        "SnapStart": {"ApplyOn": "None", "OptimizationStatus": "Off"},
        "LoggingConfig": {"LogFormat": "Text", "LogGroup": log_group_name(&cfg.name)},
    });
    if !cfg.env.is_empty() {
        v["Environment"] = json!({ "Variables": cfg.env });
    }
    v
}

fn unsupported(what: &str) -> ControlError {
    ControlError::InvalidParameterValue(format!("{what} is not supported by Hearth"))
}

/// `Runtime`: one Hearth has; anything else lists the ones it has.
fn parse_runtime(name: &str) -> Result<Runtime, ControlError> {
    name.parse().map_err(|_| {
        let all: Vec<&str> = Runtime::ALL.iter().map(|r| r.name()).collect();
        ControlError::InvalidParameterValue(format!(
            "1 validation error detected: Value '{name}' at 'runtime' failed to satisfy \
             constraint: Member must satisfy enum value set: [{}]",
            all.join(", ")
        ))
    })
}

/// `Architectures`: exactly `["x86_64"]`.
fn check_architectures(a: &[String]) -> Result<(), ControlError> {
    if a.len() == 1 && a[0] == SUPPORTED_ARCHITECTURE {
        return Ok(());
    }
    Err(ControlError::InvalidParameterValue(format!(
        "1 validation error detected: Value '{a:?}' at 'architectures' failed to satisfy \
         constraint: Member must satisfy enum value set: [{SUPPORTED_ARCHITECTURE}] and have \
         length 1"
    )))
}

/// Refuses non-empty `Layers` (Hearth has no layers yet).
fn check_layers(m: &Members) -> Result<(), ControlError> {
    match m.str_list("Layers")? {
        Some(l) if !l.is_empty() => Err(unsupported("Layers")),
        _ => Ok(()),
    }
}

/// The decoded zip of a code source (`Code` of Create, the body of UpdateFunctionCode):
/// only `ZipFile`; S3 and image sources are refused.
fn zip_file(code: &Members) -> Result<Vec<u8>, ControlError> {
    for other in ["S3Bucket", "S3Key", "S3ObjectVersion"] {
        if code.has(other) {
            return Err(unsupported(
                "Code from S3 (S3Bucket, S3Key, S3ObjectVersion)",
            ));
        }
    }
    if code.has("ImageUri") {
        return Err(unsupported("Code from a container image (ImageUri)"));
    }
    let b64 = code.req_str("ZipFile")?;
    base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|e| {
            ControlError::InvalidParameterValue(format!("ZipFile is not valid base64: {e}"))
        })
}

/// `Environment.Variables` (an `Environment` without `Variables` means none).
fn environment(m: &Members) -> Result<Option<BTreeMap<String, String>>, ControlError> {
    match m.object("Environment")? {
        None => Ok(None),
        Some(env) => Ok(Some(env.str_map("Variables")?.unwrap_or_default())),
    }
}

fn ephemeral(m: &Members) -> Result<Option<u32>, ControlError> {
    match m.object("EphemeralStorage")? {
        None => Ok(None),
        Some(e) => e.req_u32("Size").map(Some),
    }
}

/// `POST /2015-03-31/functions` → 201 `FunctionConfiguration`.
pub(super) fn create(
    req: &ControlRequest<'_>,
    reg: &mut Registry,
) -> Result<ControlResponse, ControlError> {
    let m = Members::parse(req.body)?;
    let name = unqualified(&m.req_str("FunctionName")?, reg)?;
    let role = m.req_str("Role")?;
    let code = m.object("Code")?.ok_or_else(|| m.missing("Code"))?;
    match m.str("PackageType")?.as_deref() {
        None | Some("Zip") => {}
        Some("Image") => return Err(unsupported("PackageType Image")),
        Some(other) => {
            return Err(ControlError::InvalidParameterValue(format!(
                "1 validation error detected: Value '{other}' at 'packageType' failed to \
                 satisfy constraint: Member must satisfy enum value set: [Zip]"
            )))
        }
    }
    check_layers(&m)?;
    let (Some(runtime), Some(handler)) = (m.str("Runtime")?, m.str("Handler")?) else {
        return Err(ControlError::InvalidParameterValue(
            "Runtime and Handler are mandatory parameters for functions created with \
             deployment packages."
                .into(),
        ));
    };
    let runtime = parse_runtime(&runtime)?;
    let architectures = m
        .str_list("Architectures")?
        .unwrap_or_else(|| vec![SUPPORTED_ARCHITECTURE.to_owned()]);
    check_architectures(&architectures)?;
    let zip = zip_file(&code)?;
    let mut input = CreateInput::new(&name, runtime, &handler, &zip);
    input.role = role;
    input.architectures = architectures;
    if let Some(d) = m.str("Description")? {
        input.description = d;
    }
    if let Some(t) = m.u32("Timeout")? {
        input.timeout_s = t;
    }
    if let Some(mem) = m.u32("MemorySize")? {
        input.memory_mb = mem;
    }
    if let Some(env) = environment(&m)? {
        input.env = env;
    }
    if let Some(size) = ephemeral(&m)? {
        input.ephemeral_storage_mb = size;
    }
    input.publish = m.bool("Publish")?.unwrap_or(false);
    let cfg = reg.create_function(input).map_err(registry_error)?;
    Ok(ControlResponse::json(
        201,
        &function_configuration_json(&cfg, reg.account()),
    ))
}

/// `GET /2015-03-31/functions/{f}` → `{Configuration, Code, Concurrency?}`.
pub(super) fn get(
    req: &ControlRequest<'_>,
    reg: &mut Registry,
    raw: &str,
) -> Result<ControlResponse, ControlError> {
    let t = target(raw, &req.query, reg)?;
    let cfg = reg
        .get_function(&t.name, t.qualifier.as_deref())
        .map_err(registry_error)?;
    let mut out = Map::new();
    out.insert(
        "Configuration".into(),
        function_configuration_json(&cfg, reg.account()),
    );
    out.insert(
        "Code".into(),
        json!({"RepositoryType": "S3", "Location": code_location(&cfg)}),
    );
    if let Some(n) = cfg.reserved_concurrency {
        out.insert(
            "Concurrency".into(),
            json!({ "ReservedConcurrentExecutions": n }),
        );
    }
    Ok(ControlResponse::json(200, &Value::Object(out)))
}

/// `file://` URL of the kept zip: `<state>/code-zips/<sha256>.zip`, beside the code store
/// `<state>/code/<sha256>` that `code_dir` is in.
fn code_location(cfg: &FunctionConfig) -> String {
    let state = cfg
        .code_dir
        .parent()
        .filter(|p| p.ends_with(CODE_DIR))
        .and_then(|p| p.parent());
    match state {
        Some(s) => format!(
            "file://{}",
            s.join(ZIP_DIR)
                .join(format!("{}.zip", cfg.code_sha256))
                .display()
        ),
        None => format!("file://{}", cfg.code_dir.display()),
    }
}

/// `GET /2015-03-31/functions/{f}/configuration` → `FunctionConfiguration`.
pub(super) fn get_configuration(
    req: &ControlRequest<'_>,
    reg: &mut Registry,
    raw: &str,
) -> Result<ControlResponse, ControlError> {
    let t = target(raw, &req.query, reg)?;
    let cfg = reg
        .get_function(&t.name, t.qualifier.as_deref())
        .map_err(registry_error)?;
    Ok(ControlResponse::json(
        200,
        &function_configuration_json(&cfg, reg.account()),
    ))
}

/// `PUT /2015-03-31/functions/{f}/code` → `FunctionConfiguration` (of the new version when
/// `Publish`). `DryRun` checks the request and changes nothing.
pub(super) fn update_code(
    req: &ControlRequest<'_>,
    reg: &mut Registry,
    raw: &str,
) -> Result<ControlResponse, ControlError> {
    let m = Members::parse(req.body)?;
    let name = unqualified(raw, reg)?;
    if let Some(a) = m.str_list("Architectures")? {
        check_architectures(&a)?;
    }
    let zip = zip_file(&m)?;
    let revision_id = m.str("RevisionId")?;
    let publish = m.bool("Publish")?.unwrap_or(false);
    let cfg = if m.bool("DryRun")?.unwrap_or(false) {
        reg.get_function(&name, None)
    } else {
        reg.update_function_code(
            &name,
            CodeUpdate {
                zip: &zip,
                revision_id: revision_id.as_deref(),
                publish,
            },
        )
    }
    .map_err(registry_error)?;
    Ok(ControlResponse::json(
        200,
        &function_configuration_json(&cfg, reg.account()),
    ))
}

/// `PUT /2015-03-31/functions/{f}/configuration` → `FunctionConfiguration`.
pub(super) fn update_configuration(
    req: &ControlRequest<'_>,
    reg: &mut Registry,
    raw: &str,
) -> Result<ControlResponse, ControlError> {
    let m = Members::parse(req.body)?;
    let name = unqualified(raw, reg)?;
    check_layers(&m)?;
    let update = ConfigUpdate {
        runtime: m
            .str("Runtime")?
            .as_deref()
            .map(parse_runtime)
            .transpose()?,
        handler: m.str("Handler")?,
        role: m.str("Role")?,
        description: m.str("Description")?,
        timeout_s: m.u32("Timeout")?,
        memory_mb: m.u32("MemorySize")?,
        env: environment(&m)?,
        ephemeral_storage_mb: ephemeral(&m)?,
    };
    let revision_id = m.str("RevisionId")?;
    let cfg = reg
        .update_function_configuration(&name, update, revision_id.as_deref())
        .map_err(registry_error)?;
    Ok(ControlResponse::json(
        200,
        &function_configuration_json(&cfg, reg.account()),
    ))
}

/// `DELETE /2015-03-31/functions/{f}[?Qualifier=N]` → 204. Also forgets the async-invoke
/// configs of what was deleted.
pub(super) fn delete(
    req: &ControlRequest<'_>,
    reg: &mut Registry,
    raw: &str,
) -> Result<ControlResponse, ControlError> {
    let t = target(raw, &req.query, reg)?;
    reg.delete_function(&t.name, t.qualifier.as_deref())
        .map_err(registry_error)?;
    forget_event_configs(reg, &t.name, t.qualifier.as_deref())?;
    Ok(ControlResponse::no_content())
}

#[cfg(test)]
pub(super) mod tests {
    use serde_json::json;

    use super::super::handlers::test_util::{
        call, call_raw, create, create_body, open_tmp, zip_b64,
    };
    use super::super::handlers::UNZIP_FAILED;
    use super::super::routes::Route;
    use super::*;

    pub(crate) const ARN: &str = "arn:aws:lambda:us-east-1:123456789012:function";

    fn err(r: Result<(u16, Value), ControlError>) -> ControlError {
        r.expect_err("expected an error")
    }

    /// Every field of §3.1 for a `$LATEST` created with defaults.
    pub(crate) fn check_configuration(v: &Value, name: &str) {
        assert_eq!(v["FunctionName"], name);
        assert_eq!(v["FunctionArn"], format!("{ARN}:{name}"));
        assert_eq!(v["Runtime"], "python3.12");
        assert_eq!(v["Role"], "arn:aws:iam::123456789012:role/r");
        assert_eq!(v["Handler"], "app.handler");
        assert_eq!(v["Description"], "");
        assert_eq!(v["Timeout"], 3);
        assert_eq!(v["MemorySize"], 128);
        assert!(v["CodeSize"].as_u64().unwrap() > 0);
        let sha = v["CodeSha256"].as_str().unwrap();
        assert_eq!(sha.len(), 44, "{sha}");
        assert!(sha.ends_with('='));
        let lm = v["LastModified"].as_str().unwrap();
        // YYYY-MM-DDThh:mm:ss.sss+0000
        assert_eq!(lm.len(), 28, "{lm}");
        assert_eq!((&lm[4..5], &lm[10..11], &lm[19..20]), ("-", "T", "."));
        assert!(lm.ends_with("+0000"));
        assert_eq!(v["Version"], "$LATEST");
        assert_eq!(v["RevisionId"].as_str().unwrap().len(), 36);
        assert_eq!(v["State"], "Active");
        assert_eq!(v["LastUpdateStatus"], "Successful");
        assert_eq!(v["PackageType"], "Zip");
        assert_eq!(v["Architectures"], json!(["x86_64"]));
        assert_eq!(v["EphemeralStorage"], json!({"Size": 512}));
        assert_eq!(v["TracingConfig"], json!({"Mode": "PassThrough"}));
        assert_eq!(
            v["LoggingConfig"],
            json!({"LogFormat": "Text", "LogGroup": format!("/aws/lambda/{name}")})
        );
        assert!(v.get("Environment").is_none(), "empty env is omitted");
    }

    #[test]
    fn create_returns_a_full_function_configuration() {
        let (_t, mut reg) = open_tmp();
        let v = create(&mut reg, "f");
        check_configuration(&v, "f");
        let mut body = create_body("g");
        body["Environment"] = json!({"Variables": {"K1": "v"}});
        body["MemorySize"] = json!(256);
        body["Timeout"] = json!(30);
        body["Description"] = json!("d");
        body["EphemeralStorage"] = json!({"Size": 1024});
        body["Publish"] = json!(true);
        body["Tags"] = json!({"t": "x"});
        let (s, v) = call(&mut reg, Route::CreateFunction, &[], &body).unwrap();
        assert_eq!(s, 201);
        assert_eq!(v["Version"], "1");
        assert_eq!(v["FunctionArn"], format!("{ARN}:g:1"));
        assert_eq!(v["Environment"], json!({"Variables": {"K1": "v"}}));
        assert_eq!((&v["MemorySize"], &v["Timeout"]), (&json!(256), &json!(30)));
        assert_eq!(v["Description"], "d");
        assert_eq!(v["EphemeralStorage"], json!({"Size": 1024}));
    }

    #[test]
    fn get_and_get_configuration() {
        let (_t, mut reg) = open_tmp();
        create(&mut reg, "f");
        let (s, v) = call(&mut reg, Route::GetFunction("f".into()), &[], &Value::Null).unwrap();
        assert_eq!(s, 200);
        check_configuration(&v["Configuration"], "f");
        assert_eq!(v["Code"]["RepositoryType"], "S3");
        let loc = v["Code"]["Location"].as_str().unwrap();
        assert!(loc.starts_with("file://") && loc.ends_with(".zip"), "{loc}");
        let path = loc.trim_start_matches("file://");
        assert!(std::path::Path::new(path).is_file(), "{path}");
        assert!(v.get("Concurrency").is_none());
        reg.put_function_concurrency("f", 5).unwrap();
        let (_, v) = call(&mut reg, Route::GetFunction("f".into()), &[], &Value::Null).unwrap();
        assert_eq!(v["Concurrency"], json!({"ReservedConcurrentExecutions": 5}));

        let route = || Route::GetFunctionConfiguration("f".into());
        let (s, v) = call(&mut reg, route(), &[], &Value::Null).unwrap();
        assert_eq!(s, 200);
        check_configuration(&v, "f");
        let (_, v) = call(&mut reg, route(), &[("Qualifier", "$LATEST")], &Value::Null).unwrap();
        assert_eq!(v["Version"], "$LATEST");
        // By ARN, and a qualifier that disagrees with the one in the name.
        let by_arn = Route::GetFunctionConfiguration(format!("{ARN}:f"));
        assert_eq!(
            call(&mut reg, by_arn, &[], &Value::Null).unwrap().1["FunctionName"],
            "f"
        );
        let e = err(call(
            &mut reg,
            Route::GetFunctionConfiguration("f:1".into()),
            &[("Qualifier", "2")],
            &Value::Null,
        ));
        assert!(matches!(e, ControlError::InvalidParameterValue(_)), "{e:?}");
    }

    #[test]
    fn missing_functions_are_404_with_the_arn() {
        let (_t, mut reg) = open_tmp();
        let e = err(call(
            &mut reg,
            Route::GetFunction("nope".into()),
            &[],
            &Value::Null,
        ));
        assert_eq!(e.status(), 404);
        assert_eq!(e.to_string(), format!("Function not found: {ARN}:nope"));
        create(&mut reg, "f");
        let e = err(call(
            &mut reg,
            Route::GetFunctionConfiguration("f".into()),
            &[("Qualifier", "7")],
            &Value::Null,
        ));
        assert_eq!(e.to_string(), format!("Function not found: {ARN}:f:7"));
        assert_eq!(e.error_type(), "ResourceNotFoundException");
    }

    #[test]
    fn update_code_and_configuration() {
        let (_t, mut reg) = open_tmp();
        let f = create(&mut reg, "f");
        let code = || Route::UpdateFunctionCode("f".into());
        let body = json!({"ZipFile": zip_b64("new"), "RevisionId": f["RevisionId"]});
        let (s, v) = call(&mut reg, code(), &[], &body).unwrap();
        assert_eq!(s, 200);
        assert_ne!(v["CodeSha256"], f["CodeSha256"]);
        assert_ne!(v["RevisionId"], f["RevisionId"]);
        // The old RevisionId is now stale.
        let e = err(call(&mut reg, code(), &[], &body));
        assert_eq!(
            (e.status(), e.error_type()),
            (412, "PreconditionFailedException")
        );
        // DryRun changes nothing; Publish returns the new version.
        let dry = json!({"ZipFile": zip_b64("other"), "DryRun": true});
        let (_, d) = call(&mut reg, code(), &[], &dry).unwrap();
        assert_eq!(d["RevisionId"], v["RevisionId"]);
        let publish = json!({"ZipFile": zip_b64("other"), "Publish": true});
        let (_, p) = call(&mut reg, code(), &[], &publish).unwrap();
        assert_eq!(p["Version"], "1");

        let conf = || Route::UpdateFunctionConfiguration("f".into());
        let body = json!({"MemorySize": 512, "Timeout": 60, "Description": "x",
                          "Environment": {"Variables": {"A1": "b"}}, "Runtime": "nodejs20.x",
                          "Handler": "index.handler", "EphemeralStorage": {"Size": 600}});
        let (s, v) = call(&mut reg, conf(), &[], &body).unwrap();
        assert_eq!(s, 200);
        assert_eq!((&v["MemorySize"], &v["Timeout"]), (&json!(512), &json!(60)));
        assert_eq!(v["Environment"]["Variables"]["A1"], "b");
        assert_eq!(
            (&v["Runtime"], &v["Handler"]),
            (&json!("nodejs20.x"), &json!("index.handler"))
        );
        assert_eq!(v["EphemeralStorage"]["Size"], 600);
        let stale = json!({"Timeout": 5, "RevisionId": f["RevisionId"]});
        assert_eq!(err(call(&mut reg, conf(), &[], &stale)).status(), 412);
        // An empty Environment clears the variables.
        let (_, v) = call(&mut reg, conf(), &[], &json!({"Environment": {}})).unwrap();
        assert!(v.get("Environment").is_none());
    }

    #[test]
    fn parameter_errors() {
        let (_t, mut reg) = open_tmp();
        create(&mut reg, "f");
        let conf = || Route::UpdateFunctionConfiguration("f".into());
        let e = err(call(
            &mut reg,
            conf(),
            &[],
            &json!({"Environment": {"Variables": {"AWS_REGION": "x"}}}),
        ));
        assert_eq!(e.error_type(), "InvalidParameterValueException");
        assert_eq!(
            e.to_string(),
            "Lambda was unable to configure your environment variables because the environment \
             variables you have provided contains reserved keys that are currently not \
             supported for modification. Reserved keys used in this request: AWS_REGION"
        );
        let big = "v".repeat(4096);
        let e = err(call(
            &mut reg,
            conf(),
            &[],
            &json!({"Environment": {"Variables": {"K1": big}}}),
        ));
        assert_eq!(e.status(), 400);
        assert!(
            e.to_string()
                .contains("exceeded the 4KB limit. String measured: {\"K1\":\"vvv"),
            "{e}"
        );
        for (body, field) in [
            (json!({"MemorySize": 99999}), "memorySize"),
            (json!({"Timeout": 0}), "timeout"),
            (json!({"Timeout": 901}), "timeout"),
            (json!({"Timeout": "3"}), "timeout"),
            (json!({"MemorySize": -1}), "memorySize"),
            (json!({"Runtime": "java21"}), "runtime"),
            (
                json!({"EphemeralStorage": {"Size": 99999}}),
                "ephemeralStorage.size",
            ),
            (json!({"EphemeralStorage": {}}), "ephemeralStorage.size"),
            (
                json!({"Environment": {"Variables": {"K1": 5}}}),
                "environment.variables",
            ),
        ] {
            let e = err(call(&mut reg, conf(), &[], &body));
            assert_eq!(e.error_type(), "InvalidParameterValueException", "{body}");
            assert!(
                e.to_string().contains(&format!("at '{field}'")),
                "{body}: {e}"
            );
        }
        let e = err(call(&mut reg, conf(), &[], &json!({"Runtime": "java21"})));
        assert!(
            e.to_string()
                .contains("[provided, provided.al2, provided.al2023, python3.11"),
            "{e}"
        );
        let e = err(call(
            &mut reg,
            conf(),
            &[],
            &json!({"Layers": ["arn:aws:lambda:x"]}),
        ));
        assert_eq!(e.status(), 400);
        // A body that is not JSON.
        let e = err(call_raw(&mut reg, conf(), &[], b"{not json"));
        assert_eq!(
            (e.status(), e.error_type()),
            (400, "InvalidRequestContentException")
        );
    }

    #[test]
    fn create_errors() {
        let (_t, mut reg) = open_tmp();
        create(&mut reg, "f");
        let e = err(call(
            &mut reg,
            Route::CreateFunction,
            &[],
            &create_body("f"),
        ));
        assert_eq!(
            (e.status(), e.error_type()),
            (409, "ResourceConflictException")
        );
        assert_eq!(e.to_string(), "Function already exist: f");
        let with = |k: &str, v: Value| {
            let mut b = create_body("g");
            if v.is_null() {
                b.as_object_mut().unwrap().remove(k);
            } else {
                b[k] = v;
            }
            b
        };
        let cases = [
            (with("Runtime", json!("python2.7")), "runtime"),
            (
                with("Runtime", Value::Null),
                "Runtime and Handler are mandatory",
            ),
            (
                with("Handler", Value::Null),
                "Runtime and Handler are mandatory",
            ),
            (with("Architectures", json!(["arm64"])), "architectures"),
            (
                with("Architectures", json!(["x86_64", "x86_64"])),
                "architectures",
            ),
            (with("PackageType", json!("Image")), "not supported"),
            (
                with("Code", json!({"S3Bucket": "b", "S3Key": "k"})),
                "not supported",
            ),
            (with("Code", json!({"ImageUri": "i"})), "not supported"),
            (with("Code", json!({})), "at 'code.zipFile'"),
            (with("Code", json!({"ZipFile": "!!!"})), "base64"),
            (
                with("Code", json!({"ZipFile": "bm90IGEgemlw"})),
                UNZIP_FAILED,
            ),
            (with("Role", Value::Null), "at 'role'"),
            (with("FunctionName", json!("bad name")), "functionName"),
            (with("FunctionName", json!("g:1")), "functionName"),
            (with("MemorySize", json!(99999)), "memorySize"),
            (with("Timeout", json!(0)), "timeout"),
            (with("Publish", json!("yes")), "publish"),
        ];
        for (body, want) in cases {
            let e = err(call(&mut reg, Route::CreateFunction, &[], &body));
            assert_eq!(e.error_type(), "InvalidParameterValueException", "{body}");
            assert!(e.to_string().contains(want), "{body}: {e}");
        }
        let e = err(call_raw(&mut reg, Route::CreateFunction, &[], b"[]"));
        assert_eq!(e.error_type(), "InvalidRequestContentException");
        assert!(!e.to_string().is_empty());
        // Nothing half-created.
        let e = err(call(
            &mut reg,
            Route::GetFunction("g".into()),
            &[],
            &Value::Null,
        ));
        assert_eq!(e.status(), 404);
    }

    #[test]
    fn delete_function_and_version() {
        let (_t, mut reg) = open_tmp();
        create(&mut reg, "f");
        call(
            &mut reg,
            Route::PublishVersion("f".into()),
            &[],
            &Value::Null,
        )
        .unwrap();
        let del = || Route::DeleteFunction("f".into());
        let e = err(call(
            &mut reg,
            del(),
            &[("Qualifier", "$LATEST")],
            &Value::Null,
        ));
        assert_eq!(e.status(), 400);
        let (s, v) = call(&mut reg, del(), &[("Qualifier", "1")], &Value::Null).unwrap();
        assert_eq!((s, v), (204, Value::Null));
        let e = err(call(&mut reg, del(), &[("Qualifier", "1")], &Value::Null));
        assert_eq!(e.to_string(), format!("Function not found: {ARN}:f:1"));
        let (s, _) = call(&mut reg, del(), &[], &Value::Null).unwrap();
        assert_eq!(s, 204);
        let e = err(call(&mut reg, del(), &[], &Value::Null));
        assert_eq!(e.to_string(), format!("Function not found: {ARN}:f"));
    }

    #[test]
    fn invoke_routes_are_not_handled_here() {
        let (_t, mut reg) = open_tmp();
        for r in [Route::Invoke("f".into()), Route::Metrics] {
            let e = err(call(&mut reg, r, &[], &Value::Null));
            assert_eq!(e, ControlError::Service("not handled here".into()));
        }
    }
}
