//! The control API's endpoint handlers: JSON body in → [`Registry`] call → JSON body out, in
//! the shapes botocore's `rest-json` parser expects (control-api.md §2–§4). [`handle`] is the
//! one entry point; the operations live beside it by concern: functions in
//! [`super::functions`], listing and versions in [`super::versions`], aliases in
//! [`super::aliases`], reserved, provisioned and async-invoke settings in
//! [`super::concurrency`], `GetAccountSettings` in [`super::account`].
//!
//! Owns: reading request members with their types (a body that is not JSON is
//! `InvalidRequestContentException`; a member of the wrong type or a missing required one is
//! `InvalidParameterValueException`: botocore validates required members, types and `min`
//! client-side, but other clients do not), the checks the registry does not make (runtime,
//! architecture and package type Hearth supports, unsupported code sources, upper bounds of
//! async-invoke settings), and the one mapping [`registry_error`] from [`RegistryError`] to
//! [`ControlError`].
//!
//! Does not: route (see [`super::routes`]), verify signatures, add `x-amzn-RequestId` (the
//! daemon does, for every answer), invoke (`Invoke`, `InvokeAsync`,
//! `InvokeWithResponseStream` and `/metrics` are the daemon's own and answered here with a
//! `ServiceException`), or log.
//!
//! Limits: the whole body is in memory (the daemon bounds its size); unknown members are
//! ignored, as Lambda does; members Hearth accepts but does not implement (`Tags`,
//! `TracingConfig`, `VpcConfig`, `DeadLetterConfig`, `KMSKeyArn`, …) are ignored, while those
//! whose absence would change behaviour (`Layers`, S3 or image code, `PackageType: Image`,
//! `arm64`) are refused with `InvalidParameterValueException`.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::errors::ControlError;
use super::routes::{check_qualifier, function_ref, query_value, FunctionRef, Route};
use crate::function::code::CodeError;
use crate::registry::{Registry, RegistryError};

pub use super::functions::function_configuration_json;

/// One control-API request, already routed.
#[derive(Debug)]
pub struct ControlRequest<'a> {
    pub route: Route,
    /// Decoded query pairs ([`super::routes::parse_query`]).
    pub query: Vec<(String, String)>,
    /// Request headers (names as received).
    pub headers: &'a [(String, Vec<u8>)],
    pub body: &'a [u8],
}

/// A successful answer: status, headers (`Content-Type` when there is a body), body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl ControlResponse {
    /// `status` with a JSON body.
    pub fn json(status: u16, body: &Value) -> ControlResponse {
        ControlResponse {
            status,
            headers: vec![("Content-Type".to_owned(), "application/json".to_owned())],
            body: body.to_string().into_bytes(),
        }
    }

    /// `204 No Content`, no body.
    pub fn no_content() -> ControlResponse {
        ControlResponse {
            status: 204,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }
}

/// Answers one control-API operation against the registry.
pub fn handle(
    req: &ControlRequest<'_>,
    reg: &mut Registry,
) -> Result<ControlResponse, ControlError> {
    use super::{account, aliases, concurrency, functions, versions};
    match &req.route {
        Route::CreateFunction => functions::create(req, reg),
        Route::ListFunctions => versions::list(req, reg),
        Route::GetFunction(f) => functions::get(req, reg, f),
        Route::GetFunctionConfiguration(f) => functions::get_configuration(req, reg, f),
        Route::UpdateFunctionCode(f) => functions::update_code(req, reg, f),
        Route::UpdateFunctionConfiguration(f) => functions::update_configuration(req, reg, f),
        Route::DeleteFunction(f) => functions::delete(req, reg, f),
        Route::PublishVersion(f) => versions::publish_version(req, reg, f),
        Route::ListVersionsByFunction(f) => versions::list_versions(req, reg, f),
        Route::CreateAlias(f) => aliases::create(req, reg, f),
        Route::ListAliases(f) => aliases::list(req, reg, f),
        Route::GetAlias(f, a) => aliases::get(reg, f, a),
        Route::UpdateAlias(f, a) => aliases::update(req, reg, f, a),
        Route::DeleteAlias(f, a) => aliases::delete(reg, f, a),
        Route::PutFunctionConcurrency(f) => concurrency::put_reserved(req, reg, f),
        Route::GetFunctionConcurrency(f) => concurrency::get_reserved(reg, f),
        Route::DeleteFunctionConcurrency(f) => concurrency::delete_reserved(reg, f),
        Route::PutProvisionedConcurrencyConfig(f) => concurrency::put_provisioned(req, reg, f),
        Route::GetProvisionedConcurrencyConfig(f) => concurrency::get_provisioned(req, reg, f),
        Route::DeleteProvisionedConcurrencyConfig(f) => {
            concurrency::delete_provisioned(req, reg, f)
        }
        Route::PutFunctionEventInvokeConfig(f) => concurrency::put_event_config(req, reg, f, false),
        Route::UpdateFunctionEventInvokeConfig(f) => {
            concurrency::put_event_config(req, reg, f, true)
        }
        Route::GetFunctionEventInvokeConfig(f) => concurrency::get_event_config(req, reg, f),
        Route::DeleteFunctionEventInvokeConfig(f) => concurrency::delete_event_config(req, reg, f),
        Route::GetAccountSettings => account::get_settings(reg),
        Route::Invoke(_)
        | Route::InvokeAsync(_)
        | Route::InvokeWithResponseStream(_)
        | Route::Metrics => Err(ControlError::Service("not handled here".into())),
    }
}

/// The AWS error for a registry failure. Messages of caller errors are passed through (the
/// registry words them as AWS does); a zip that cannot be read gets AWS's message.
pub fn registry_error(e: RegistryError) -> ControlError {
    match e {
        RegistryError::FunctionNotFound { .. } | RegistryError::AliasNotFound { .. } => {
            ControlError::ResourceNotFound(e.to_string())
        }
        RegistryError::ProvisionedNotFound { .. } => {
            ControlError::ProvisionedConcurrencyConfigNotFound(e.to_string())
        }
        RegistryError::Conflict(m) => ControlError::ResourceConflict(m),
        RegistryError::PreconditionFailed(m) => ControlError::PreconditionFailed(m),
        RegistryError::InvalidParameter(m) => ControlError::InvalidParameterValue(m),
        RegistryError::Code(c) => code_error(c),
        RegistryError::Sqlite { .. }
        | RegistryError::Io { .. }
        | RegistryError::Corrupt { .. }
        | RegistryError::Locked { .. }
        | RegistryError::SchemaTooNew { .. } => ControlError::Service(e.to_string()),
    }
}

/// AWS's answer to an upload that does not unzip (`InvalidParameterValueException`).
pub const UNZIP_FAILED: &str =
    "Could not unzip uploaded file. Please check your file, then try to upload again.";

fn code_error(c: CodeError) -> ControlError {
    match c {
        CodeError::Io { .. } => ControlError::Service(c.to_string()),
        CodeError::ZipTooLarge { limit, .. } => {
            ControlError::RequestTooLarge(format!("Zipped size must be smaller than {limit} bytes"))
        }
        CodeError::DeclaredTooLarge { limit, .. } | CodeError::UnpackedTooLarge { limit, .. } => {
            ControlError::InvalidParameterValue(format!(
                "Unzipped size must be smaller than {limit} bytes"
            ))
        }
        CodeError::Corrupt { .. }
        | CodeError::CorruptEntry { .. }
        | CodeError::Encrypted { .. }
        | CodeError::UnsupportedCompression { .. } => {
            ControlError::InvalidParameterValue(UNZIP_FAILED.to_owned())
        }
        // Hearth's own path-safety rules: AWS has no wording for these, so say what is wrong.
        other => ControlError::InvalidParameterValue(format!("{UNZIP_FAILED} ({other})")),
    }
}

/// Resolves `{FunctionName}` (any of its four forms) plus an optional `?Qualifier=`; the two
/// must agree when both name a qualifier.
pub(super) fn target(
    raw: &str,
    query: &[(String, String)],
    reg: &Registry,
) -> Result<FunctionRef, ControlError> {
    let account = reg.account();
    let mut r = function_ref(raw, &account.region, &account.account_id)?;
    if let Some(q) = query_value(query, "Qualifier").filter(|q| !q.is_empty()) {
        check_qualifier(q).map_err(|why| {
            ControlError::InvalidParameterValue(format!(
                "1 validation error detected: Value '{q}' at 'qualifier' failed to satisfy \
                 constraint: {why}"
            ))
        })?;
        match &r.qualifier {
            Some(derived) if derived != q => {
                return Err(ControlError::InvalidParameterValue(
                    "The derived qualifier from the function name does not match the specified \
                     qualifier."
                        .into(),
                ))
            }
            _ => r.qualifier = Some(q.to_owned()),
        }
    }
    Ok(r)
}

/// Like [`target`] for operations on the function as a whole, which take no qualifier.
pub(super) fn unqualified(raw: &str, reg: &Registry) -> Result<String, ControlError> {
    let r = target(raw, &[], reg)?;
    if r.qualifier.is_some() {
        return Err(ControlError::InvalidParameterValue(format!(
            "1 validation error detected: Value '{raw}' at 'functionName' failed to satisfy \
             constraint: this operation does not take a qualified function name"
        )));
    }
    Ok(r.name)
}

/// `Marker` and `MaxItems` of a list operation (`MaxItems` 1–10,000 per the model; the
/// registry caps pages at 50).
pub(super) fn page_query(
    query: &[(String, String)],
) -> Result<(Option<String>, Option<u32>), ControlError> {
    let marker = query_value(query, "Marker")
        .filter(|m| !m.is_empty())
        .map(str::to_owned);
    let max = match query_value(query, "MaxItems") {
        None => None,
        Some(s) => match s.parse::<u32>() {
            Ok(n) if (1..=10_000).contains(&n) => Some(n),
            _ => {
                return Err(ControlError::InvalidParameterValue(format!(
                    "1 validation error detected: Value '{s}' at 'maxItems' failed to satisfy \
                     constraint: Member must have value between 1 and 10000"
                )))
            }
        },
    };
    Ok((marker, max))
}

/// `{"<key>": [...], "NextMarker": …}` (the marker only when there is a next page).
pub(super) fn page_json(key: &str, items: Vec<Value>, next: Option<String>) -> Value {
    let mut out = Map::new();
    out.insert(key.to_owned(), Value::Array(items));
    if let Some(m) = next {
        out.insert("NextMarker".to_owned(), Value::String(m));
    }
    Value::Object(out)
}

/// The members of a JSON request body, read with their types. Field names in messages are
/// lower camel case, as AWS's validation messages write them.
#[derive(Debug)]
pub(super) struct Members {
    map: Map<String, Value>,
    /// Prefix of nested members in messages, e.g. `environment.`.
    path: String,
}

fn camel(key: &str) -> String {
    let mut c = key.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

impl Members {
    /// Parses a body: empty means no members; anything but a JSON object is
    /// `InvalidRequestContentException`.
    pub(super) fn parse(body: &[u8]) -> Result<Members, ControlError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Members {
                map: Map::new(),
                path: String::new(),
            });
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => Ok(Members {
                map,
                path: String::new(),
            }),
            Ok(_) => Err(ControlError::InvalidRequestContent(
                "Could not parse request body into json: the body is not a JSON object".into(),
            )),
            Err(e) => Err(ControlError::InvalidRequestContent(format!(
                "Could not parse request body into json: {e}"
            ))),
        }
    }

    fn field(&self, key: &str) -> String {
        format!("{}{}", self.path, camel(key))
    }

    fn wrong_type(&self, key: &str, v: &Value, what: &str) -> ControlError {
        ControlError::InvalidParameterValue(format!(
            "1 validation error detected: Value '{}' at '{}' failed to satisfy constraint: \
             Member must be {what}",
            shown(v),
            self.field(key)
        ))
    }

    /// A member that must be present (botocore's wording for a missing one).
    pub(super) fn missing(&self, key: &str) -> ControlError {
        ControlError::InvalidParameterValue(format!(
            "1 validation error detected: Value null at '{}' failed to satisfy constraint: \
             Member must not be null",
            self.field(key)
        ))
    }

    fn get(&self, key: &str) -> Option<&Value> {
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// True if the member is present and not null.
    pub(super) fn has(&self, key: &str) -> bool {
        self.get(key).is_some()
    }

    pub(super) fn str(&self, key: &str) -> Result<Option<String>, ControlError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(v) => Err(self.wrong_type(key, v, "a string")),
        }
    }

    pub(super) fn req_str(&self, key: &str) -> Result<String, ControlError> {
        self.str(key)?.ok_or_else(|| self.missing(key))
    }

    pub(super) fn bool(&self, key: &str) -> Result<Option<bool>, ControlError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(self.wrong_type(key, v, "a boolean")),
        }
    }

    /// An integer member as `u32`; negative values fail with the `min` constraint.
    pub(super) fn u32(&self, key: &str) -> Result<Option<u32>, ControlError> {
        let Some(v) = self.get(key) else {
            return Ok(None);
        };
        if let Some(n) = v.as_u64() {
            return u32::try_from(n).map(Some).map_err(|_| {
                ControlError::InvalidParameterValue(format!(
                    "1 validation error detected: Value '{n}' at '{}' failed to satisfy \
                     constraint: Member must have value less than or equal to {}",
                    self.field(key),
                    u32::MAX
                ))
            });
        }
        if let Some(n) = v.as_i64() {
            return Err(ControlError::InvalidParameterValue(format!(
                "1 validation error detected: Value '{n}' at '{}' failed to satisfy constraint: \
                 Member must have value greater than or equal to 0",
                self.field(key)
            )));
        }
        Err(self.wrong_type(key, v, "an integer"))
    }

    pub(super) fn req_u32(&self, key: &str) -> Result<u32, ControlError> {
        self.u32(key)?.ok_or_else(|| self.missing(key))
    }

    /// A nested structure.
    pub(super) fn object(&self, key: &str) -> Result<Option<Members>, ControlError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Object(m)) => Ok(Some(Members {
                map: m.clone(),
                path: format!("{}.", self.field(key)),
            })),
            Some(v) => Err(self.wrong_type(key, v, "a structure")),
        }
    }

    /// A list of strings.
    pub(super) fn str_list(&self, key: &str) -> Result<Option<Vec<String>>, ControlError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(items)) => items
                .iter()
                .map(|i| match i {
                    Value::String(s) => Ok(s.clone()),
                    other => Err(self.wrong_type(key, other, "a list of strings")),
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(v) => Err(self.wrong_type(key, v, "a list")),
        }
    }

    /// A map of string to string.
    pub(super) fn str_map(
        &self,
        key: &str,
    ) -> Result<Option<BTreeMap<String, String>>, ControlError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    other => Err(self.wrong_type(key, other, "a map of strings")),
                })
                .collect::<Result<BTreeMap<_, _>, _>>()
                .map(Some),
            Some(v) => Err(self.wrong_type(key, v, "a map")),
        }
    }

    /// A map of string to number.
    pub(super) fn f64_map(&self, key: &str) -> Result<Option<BTreeMap<String, f64>>, ControlError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| match v.as_f64() {
                    Some(n) => Ok((k.clone(), n)),
                    None => Err(self.wrong_type(key, v, "a map of numbers")),
                })
                .collect::<Result<BTreeMap<_, _>, _>>()
                .map(Some),
            Some(v) => Err(self.wrong_type(key, v, "a map")),
        }
    }
}

/// Helpers for the endpoint tests of this module's siblings.
#[cfg(test)]
pub(crate) mod test_util {
    use super::*;
    pub(crate) use crate::registry::tests::{open_tmp, zip_with};

    /// Runs one operation; `body` `Null` sends no body. Returns status and parsed JSON
    /// (`Null` for an empty body), after checking the `Content-Type` rule.
    pub(crate) fn call(
        reg: &mut Registry,
        route: Route,
        query: &[(&str, &str)],
        body: &Value,
    ) -> Result<(u16, Value), ControlError> {
        let bytes = if body.is_null() {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        };
        call_raw(reg, route, query, &bytes)
    }

    pub(crate) fn call_raw(
        reg: &mut Registry,
        route: Route,
        query: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(u16, Value), ControlError> {
        let req = ControlRequest {
            route,
            query: query
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            headers: &[],
            body,
        };
        let resp = handle(&req, reg)?;
        if resp.status == 204 {
            assert!(resp.body.is_empty());
            return Ok((204, Value::Null));
        }
        assert!(resp
            .headers
            .contains(&("Content-Type".into(), "application/json".into())));
        Ok((resp.status, serde_json::from_slice(&resp.body).unwrap()))
    }

    /// Base64 of a one-file zip with `content`.
    pub(crate) fn zip_b64(content: &str) -> String {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(zip_with(content))
    }

    /// A `CreateFunction` body for `name`.
    pub(crate) fn create_body(name: &str) -> Value {
        serde_json::json!({
            "FunctionName": name,
            "Role": "arn:aws:iam::123456789012:role/r",
            "Runtime": "python3.12",
            "Handler": "app.handler",
            "Code": {"ZipFile": zip_b64("print(1)")},
        })
    }

    /// Creates `name` and returns its `FunctionConfiguration`.
    pub(crate) fn create(reg: &mut Registry, name: &str) -> Value {
        let (status, v) = call(reg, Route::CreateFunction, &[], &create_body(name)).unwrap();
        assert_eq!(status, 201);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_that_are_not_json_objects_are_request_content_errors() {
        for body in [&b"{"[..], b"[1]", b"nope", b"\"s\""] {
            assert!(
                matches!(
                    Members::parse(body),
                    Err(ControlError::InvalidRequestContent(_))
                ),
                "{body:?}"
            );
        }
        assert!(!Members::parse(b"").unwrap().has("X"));
        assert!(!Members::parse(b" \n").unwrap().has("X"));
    }

    #[test]
    fn members_are_read_with_their_types() {
        let m = Members::parse(
            br#"{"S":"a","N":5,"B":true,"Neg":-1,"F":1.5,"L":["x"],"M":{"K":"v"},"Z":null,
                 "O":{"Size":7}}"#,
        )
        .unwrap();
        assert_eq!(m.str("S").unwrap().as_deref(), Some("a"));
        assert_eq!(m.u32("N").unwrap(), Some(5));
        assert_eq!(m.bool("B").unwrap(), Some(true));
        assert_eq!(m.str("Z").unwrap(), None);
        assert_eq!(m.str_list("L").unwrap(), Some(vec!["x".to_owned()]));
        assert_eq!(m.str_map("M").unwrap().unwrap()["K"], "v");
        assert_eq!(
            m.object("O").unwrap().unwrap().u32("Size").unwrap(),
            Some(7)
        );
        for e in [
            m.str("N").unwrap_err(),
            m.u32("S").unwrap_err(),
            m.u32("Neg").unwrap_err(),
            m.u32("F").unwrap_err(),
            m.bool("S").unwrap_err(),
            m.str_list("S").unwrap_err(),
            m.req_str("Missing").unwrap_err(),
        ] {
            assert!(matches!(e, ControlError::InvalidParameterValue(_)), "{e:?}");
        }
        let e = m.object("O").unwrap().unwrap().str("Size").unwrap_err();
        assert!(e.to_string().contains("at 'o.size'"), "{e}");
    }

    #[test]
    fn registry_errors_map_to_aws_types() {
        let cases = [
            (
                RegistryError::FunctionNotFound { arn: "a".into() },
                "ResourceNotFoundException",
            ),
            (
                RegistryError::AliasNotFound { arn: "a".into() },
                "ResourceNotFoundException",
            ),
            (
                RegistryError::ProvisionedNotFound { arn: "a".into() },
                "ProvisionedConcurrencyConfigNotFoundException",
            ),
            (
                RegistryError::Conflict("c".into()),
                "ResourceConflictException",
            ),
            (
                RegistryError::PreconditionFailed("p".into()),
                "PreconditionFailedException",
            ),
            (
                RegistryError::InvalidParameter("i".into()),
                "InvalidParameterValueException",
            ),
            (
                RegistryError::Corrupt {
                    what: "w",
                    value: "v".into(),
                },
                "ServiceException",
            ),
            (
                RegistryError::Code(CodeError::ZipTooLarge { size: 2, limit: 1 }),
                "RequestTooLargeException",
            ),
            (
                RegistryError::Code(CodeError::Encrypted { entry: "e".into() }),
                "InvalidParameterValueException",
            ),
        ];
        for (e, want) in cases {
            assert_eq!(registry_error(e).error_type(), want);
        }
    }
}
