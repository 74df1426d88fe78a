//! The control API's route table: one `match` from (method, path) to a typed [`Route`]
//! (control-api.md §2, date prefixes verbatim), the decoding of `{FunctionName}` in its
//! four accepted forms, and query strings.
//!
//! Not done here: parsing bodies, validating members, running anything.

use super::errors::ControlError;

/// A control-API operation with the path parameters it carries (percent-decoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    CreateFunction,
    ListFunctions,
    GetFunction(String),
    GetFunctionConfiguration(String),
    UpdateFunctionCode(String),
    UpdateFunctionConfiguration(String),
    DeleteFunction(String),
    Invoke(String),
    InvokeAsync(String),
    InvokeWithResponseStream(String),
    PublishVersion(String),
    ListVersionsByFunction(String),
    CreateAlias(String),
    ListAliases(String),
    GetAlias(String, String),
    UpdateAlias(String, String),
    DeleteAlias(String, String),
    PutFunctionConcurrency(String),
    GetFunctionConcurrency(String),
    DeleteFunctionConcurrency(String),
    PutProvisionedConcurrencyConfig(String),
    GetProvisionedConcurrencyConfig(String),
    DeleteProvisionedConcurrencyConfig(String),
    PutFunctionEventInvokeConfig(String),
    UpdateFunctionEventInvokeConfig(String),
    GetFunctionEventInvokeConfig(String),
    DeleteFunctionEventInvokeConfig(String),
    GetAccountSettings,
    /// `GET /metrics` (Prometheus text), not an AWS operation.
    Metrics,
}

/// Maps a request to its operation. `path` is the request target without the query, as
/// sent (percent-encoded).
pub fn route(method: &str, path: &str) -> Result<Route, ControlError> {
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let decoded = |s: &str| percent_decode(s);
    let unknown =
        || ControlError::UnknownOperation(format!("no Lambda operation for {method} {path}"));
    let name = |s: &str| -> Result<String, ControlError> {
        let n = decoded(s)?;
        if n.is_empty() {
            return Err(ControlError::InvalidParameterValue(
                "FunctionName must not be empty".into(),
            ));
        }
        Ok(n)
    };
    use Route::*;
    Ok(match (method, segments.as_slice()) {
        ("POST", ["2015-03-31", "functions"] | ["2015-03-31", "functions", ""]) => CreateFunction,
        ("GET", ["2015-03-31", "functions"] | ["2015-03-31", "functions", ""]) => ListFunctions,
        ("GET", ["2015-03-31", "functions", f]) => GetFunction(name(f)?),
        ("DELETE", ["2015-03-31", "functions", f]) => DeleteFunction(name(f)?),
        ("GET", ["2015-03-31", "functions", f, "configuration"]) => {
            GetFunctionConfiguration(name(f)?)
        }
        ("PUT", ["2015-03-31", "functions", f, "configuration"]) => {
            UpdateFunctionConfiguration(name(f)?)
        }
        ("PUT", ["2015-03-31", "functions", f, "code"]) => UpdateFunctionCode(name(f)?),
        ("POST", ["2015-03-31", "functions", f, "invocations"]) => Invoke(name(f)?),
        (
            "POST",
            ["2014-11-13", "functions", f, "invoke-async"]
            | ["2014-11-13", "functions", f, "invoke-async", ""],
        ) => InvokeAsync(name(f)?),
        ("POST", ["2021-11-15", "functions", f, "response-streaming-invocations"]) => {
            InvokeWithResponseStream(name(f)?)
        }
        ("POST", ["2015-03-31", "functions", f, "versions"]) => PublishVersion(name(f)?),
        ("GET", ["2015-03-31", "functions", f, "versions"]) => ListVersionsByFunction(name(f)?),
        ("POST", ["2015-03-31", "functions", f, "aliases"]) => CreateAlias(name(f)?),
        ("GET", ["2015-03-31", "functions", f, "aliases"]) => ListAliases(name(f)?),
        ("GET", ["2015-03-31", "functions", f, "aliases", a]) => GetAlias(name(f)?, decoded(a)?),
        ("PUT", ["2015-03-31", "functions", f, "aliases", a]) => UpdateAlias(name(f)?, decoded(a)?),
        ("DELETE", ["2015-03-31", "functions", f, "aliases", a]) => {
            DeleteAlias(name(f)?, decoded(a)?)
        }
        ("PUT", ["2017-10-31", "functions", f, "concurrency"]) => PutFunctionConcurrency(name(f)?),
        ("GET", ["2019-09-30", "functions", f, "concurrency"]) => GetFunctionConcurrency(name(f)?),
        ("DELETE", ["2017-10-31", "functions", f, "concurrency"]) => {
            DeleteFunctionConcurrency(name(f)?)
        }
        ("PUT", ["2019-09-30", "functions", f, "provisioned-concurrency"]) => {
            PutProvisionedConcurrencyConfig(name(f)?)
        }
        ("GET", ["2019-09-30", "functions", f, "provisioned-concurrency"]) => {
            GetProvisionedConcurrencyConfig(name(f)?)
        }
        ("DELETE", ["2019-09-30", "functions", f, "provisioned-concurrency"]) => {
            DeleteProvisionedConcurrencyConfig(name(f)?)
        }
        ("PUT", ["2019-09-25", "functions", f, "event-invoke-config"]) => {
            PutFunctionEventInvokeConfig(name(f)?)
        }
        ("POST", ["2019-09-25", "functions", f, "event-invoke-config"]) => {
            UpdateFunctionEventInvokeConfig(name(f)?)
        }
        ("GET", ["2019-09-25", "functions", f, "event-invoke-config"]) => {
            GetFunctionEventInvokeConfig(name(f)?)
        }
        ("DELETE", ["2019-09-25", "functions", f, "event-invoke-config"]) => {
            DeleteFunctionEventInvokeConfig(name(f)?)
        }
        ("GET", ["2016-08-19", "account-settings"] | ["2016-08-19", "account-settings", ""]) => {
            GetAccountSettings
        }
        ("GET", ["metrics"]) => Metrics,
        _ => return Err(unknown()),
    })
}

/// A function named in a path or body: its plain name and the qualifier, if the
/// reference carried one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionRef {
    pub name: String,
    pub qualifier: Option<String>,
}

/// Longest plain function name.
pub const MAX_FUNCTION_NAME: usize = 64;

/// Decodes `{FunctionName}`: `my-fn`, `my-fn:qualifier`, the full ARN
/// `arn:aws:lambda:<region>:<account>:function:my-fn[:qualifier]`, or the partial ARN
/// `<account>:function:my-fn[:qualifier]`. An ARN for another account or region is not
/// found here (`own_account`, `own_region`).
pub fn function_ref(
    raw: &str,
    own_region: &str,
    own_account: &str,
) -> Result<FunctionRef, ControlError> {
    let invalid = |why: &str| {
        ControlError::InvalidParameterValue(format!(
            "1 validation error detected: Value '{raw}' at 'functionName' failed to satisfy constraint: {why}"
        ))
    };
    let parts: Vec<&str> = raw.split(':').collect();
    let (name, qualifier) = match parts.as_slice() {
        [name] => (*name, None),
        [name, q] => (*name, Some(*q)),
        ["arn", "aws", "lambda", region, account, "function", name, rest @ ..]
            if rest.len() <= 1 =>
        {
            if *region != own_region || *account != own_account {
                return Err(ControlError::ResourceNotFound(format!(
                    "Function not found: {raw}"
                )));
            }
            (*name, rest.first().copied())
        }
        [account, "function", name, rest @ ..] if rest.len() <= 1 => {
            if *account != own_account {
                return Err(ControlError::ResourceNotFound(format!(
                    "Function not found: {raw}"
                )));
            }
            (*name, rest.first().copied())
        }
        _ => return Err(invalid("Member must satisfy regular expression pattern")),
    };
    if name.is_empty() || name.len() > MAX_FUNCTION_NAME {
        return Err(invalid("Member must have length less than or equal to 64"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(invalid(
            "Member must satisfy regular expression pattern: [a-zA-Z0-9-_]+",
        ));
    }
    if let Some(q) = qualifier {
        check_qualifier(q).map_err(|e| invalid(&e))?;
    }
    Ok(FunctionRef {
        name: name.to_string(),
        qualifier: qualifier.map(str::to_string),
    })
}

/// `$LATEST`, a version number, or an alias name (`[a-zA-Z0-9-_]+`, ≤ 128).
pub fn check_qualifier(q: &str) -> Result<(), String> {
    if q == "$LATEST" {
        return Ok(());
    }
    if q.is_empty() || q.len() > 128 {
        return Err("Qualifier must have length between 1 and 128".into());
    }
    if !q
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err("Qualifier must satisfy regular expression pattern: (|[a-zA-Z0-9$_-]+)".into());
    }
    Ok(())
}

/// Decodes `%XX` escapes (and nothing else: `+` stays `+` in a path).
pub fn percent_decode(s: &str) -> Result<String, ControlError> {
    let bad = || ControlError::InvalidParameterValue(format!("invalid percent-encoding in {s:?}"));
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3).ok_or_else(bad)?;
            let hex = std::str::from_utf8(hex).map_err(|_| bad())?;
            out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad())
}

/// The pairs of a query string, decoded (`+` is a space here, as in forms).
pub fn parse_query(query: &str) -> Result<Vec<(String, String)>, ControlError> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            Ok((
                percent_decode(&k.replace('+', " "))?,
                percent_decode(&v.replace('+', " "))?,
            ))
        })
        .collect()
}

/// The first value of `key` in decoded query pairs.
pub fn query_value<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_of_the_table_routes() {
        let cases = [
            ("POST", "/2015-03-31/functions", Route::CreateFunction),
            ("GET", "/2015-03-31/functions/", Route::ListFunctions),
            (
                "GET",
                "/2015-03-31/functions/f",
                Route::GetFunction("f".into()),
            ),
            (
                "GET",
                "/2015-03-31/functions/f/configuration",
                Route::GetFunctionConfiguration("f".into()),
            ),
            (
                "PUT",
                "/2015-03-31/functions/f/code",
                Route::UpdateFunctionCode("f".into()),
            ),
            (
                "POST",
                "/2015-03-31/functions/my-fn%3Aprod/invocations",
                Route::Invoke("my-fn:prod".into()),
            ),
            (
                "POST",
                "/2014-11-13/functions/f/invoke-async",
                Route::InvokeAsync("f".into()),
            ),
            (
                "POST",
                "/2014-11-13/functions/f/invoke-async/",
                Route::InvokeAsync("f".into()),
            ),
            (
                "DELETE",
                "/2015-03-31/functions/f/aliases/live",
                Route::DeleteAlias("f".into(), "live".into()),
            ),
            (
                "PUT",
                "/2017-10-31/functions/f/concurrency",
                Route::PutFunctionConcurrency("f".into()),
            ),
            (
                "GET",
                "/2019-09-30/functions/f/concurrency",
                Route::GetFunctionConcurrency("f".into()),
            ),
            (
                "POST",
                "/2019-09-25/functions/f/event-invoke-config",
                Route::UpdateFunctionEventInvokeConfig("f".into()),
            ),
            (
                "GET",
                "/2016-08-19/account-settings",
                Route::GetAccountSettings,
            ),
            ("GET", "/metrics", Route::Metrics),
        ];
        for (method, path, want) in cases {
            assert_eq!(route(method, path).unwrap(), want, "{method} {path}");
        }
    }

    #[test]
    fn unknown_routes_and_methods_are_unknown_operations() {
        for (m, p) in [
            ("GET", "/"),
            ("PATCH", "/2015-03-31/functions/f"),
            ("GET", "/2017-10-31/functions/f/concurrency"),
            ("GET", "/2015-03-31/functions/f/nope"),
        ] {
            let e = route(m, p).unwrap_err();
            assert_eq!(e.error_type(), "UnknownOperationException", "{m} {p}");
        }
        assert!(matches!(
            route("GET", "/2015-03-31/functions/%zz"),
            Err(ControlError::InvalidParameterValue(_))
        ));
    }

    #[test]
    fn function_names_in_all_four_forms() {
        let r = |s| function_ref(s, "us-east-1", "123456789012");
        let plain = FunctionRef {
            name: "my-fn".into(),
            qualifier: None,
        };
        let prod = FunctionRef {
            name: "my-fn".into(),
            qualifier: Some("prod".into()),
        };
        assert_eq!(r("my-fn").unwrap(), plain);
        assert_eq!(r("my-fn:prod").unwrap(), prod);
        assert_eq!(
            r("arn:aws:lambda:us-east-1:123456789012:function:my-fn").unwrap(),
            plain
        );
        assert_eq!(
            r("arn:aws:lambda:us-east-1:123456789012:function:my-fn:prod").unwrap(),
            prod
        );
        assert_eq!(r("123456789012:function:my-fn:prod").unwrap(), prod);
        assert_eq!(
            r("my-fn:$LATEST").unwrap().qualifier.as_deref(),
            Some("$LATEST")
        );
        // Another account or region: not found here.
        assert!(matches!(
            r("arn:aws:lambda:eu-west-1:123456789012:function:my-fn"),
            Err(ControlError::ResourceNotFound(_))
        ));
        for bad in ["", "has space", "a:b:c", &"x".repeat(65), "f:bad qualifier"] {
            assert!(
                matches!(r(bad), Err(ControlError::InvalidParameterValue(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn queries_decode() {
        let q = parse_query("Qualifier=%24LATEST&MaxItems=10&Marker=a+b").unwrap();
        assert_eq!(query_value(&q, "Qualifier"), Some("$LATEST"));
        assert_eq!(query_value(&q, "MaxItems"), Some("10"));
        assert_eq!(query_value(&q, "Marker"), Some("a b"));
        assert_eq!(query_value(&q, "Nope"), None);
        assert!(parse_query("").unwrap().is_empty());
    }
}
