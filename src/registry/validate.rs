//! Checks on Lambda's documented limits and patterns, and the registry's time stamps.
//!
//! Owns: function name / ARN parsing, qualifier and alias-name patterns, the numeric ranges of
//! control-api.md §9 (timeout 1–900 s, memory 128–10,240 MB, `/tmp` 512–10,240 MB), handler and
//! description lengths, architectures, routing weights, and the `LastModified` formats. Every
//! failure is [`RegistryError::InvalidParameter`] with AWS's wording: model constraints use the
//! `1 validation error detected: …` form AWS sends, semantic ones its prose.
//!
//! Does not: check the role ARN (Hearth stores and ignores it), the zip (the code store does),
//! or anything needing the database (existence of versions is checked in the transaction).
//!
//! Limits: the newer 1,800 s timeout of the latest botocore model text is not accepted (the
//! documented quota is 900 s).

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::function::env::{civil_from_days, validate_user_env};

use super::{RegistryError, LATEST};

/// Longest function name (plain form).
pub const MAX_FUNCTION_NAME: usize = 64;
/// Longest alias name.
pub const MAX_ALIAS_NAME: usize = 128;
/// Longest handler.
pub const MAX_HANDLER: usize = 128;
/// Longest description.
pub const MAX_DESCRIPTION: usize = 256;
/// Timeout range, in seconds.
pub const TIMEOUT_S: (u32, u32) = (1, 900);
/// Memory range, in MB.
pub const MEMORY_MB: (u32, u32) = (128, 10_240);
/// `/tmp` range, in MB.
pub const EPHEMERAL_MB: (u32, u32) = (512, 10_240);
/// Accepted `Architectures` values.
pub const ARCHITECTURES: &[&str] = &["x86_64", "arm64"];

fn constraint(value: &str, field: &str, rule: &str) -> RegistryError {
    RegistryError::InvalidParameter(format!(
        "1 validation error detected: Value '{value}' at '{field}' failed to satisfy constraint: \
         {rule}"
    ))
}

fn name_chars(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// A plain function name: 1–64 characters of `[a-zA-Z0-9-_]`.
pub fn function_name(name: &str) -> Result<(), RegistryError> {
    if name.len() > MAX_FUNCTION_NAME {
        return Err(constraint(
            name,
            "functionName",
            "Member must have length less than or equal to 64",
        ));
    }
    if !name_chars(name) {
        return Err(constraint(
            name,
            "functionName",
            "Member must satisfy regular expression pattern: [a-zA-Z0-9-_]+",
        ));
    }
    Ok(())
}

/// An alias name: `(?!^[0-9]+$)[a-zA-Z0-9-_]+`, at most 128 characters.
pub fn alias_name(name: &str) -> Result<(), RegistryError> {
    if name.len() > MAX_ALIAS_NAME {
        return Err(constraint(
            name,
            "name",
            "Member must have length less than or equal to 128",
        ));
    }
    if !name_chars(name) || name.bytes().all(|b| b.is_ascii_digit()) {
        return Err(constraint(
            name,
            "name",
            "Member must satisfy regular expression pattern: (?!^[0-9]+$)([a-zA-Z0-9-_]+)",
        ));
    }
    Ok(())
}

/// True for a published version number: decimal digits, no sign, no leading zero.
pub fn is_version_number(q: &str) -> bool {
    !q.is_empty()
        && q.bytes().all(|b| b.is_ascii_digit())
        && !q.starts_with('0')
        && q.parse::<u64>().is_ok()
}

/// A qualifier: `$LATEST`, a version number, or an alias name.
pub fn qualifier(q: &str) -> Result<(), RegistryError> {
    if q == LATEST || is_version_number(q) {
        return Ok(());
    }
    if q.len() > MAX_ALIAS_NAME || !name_chars(q) {
        return Err(constraint(
            q,
            "qualifier",
            "Member must satisfy regular expression pattern: (|[a-zA-Z0-9$_-]+)",
        ));
    }
    Ok(())
}

/// Splits the `FunctionName` forms Lambda accepts — `name`, `name:qualifier`, full ARN
/// `arn:aws:lambda:<region>:<account>:function:name[:qualifier]`, partial ARN
/// `<account>:function:name[:qualifier]` — into name and optional qualifier, checking both.
/// Region and account of an ARN are not compared with ours here (control decides).
pub fn parse_function_ref(input: &str) -> Result<(String, Option<String>), RegistryError> {
    let parts: Vec<&str> = input.split(':').collect();
    let (name, qual) = match parts.as_slice() {
        [name] => (*name, None),
        [name, q] => (*name, Some(*q)),
        ["arn", _partition, "lambda", _region, _account, "function", name] => (*name, None),
        ["arn", _partition, "lambda", _region, _account, "function", name, q] => (*name, Some(*q)),
        [_account, "function", name] => (*name, None),
        [_account, "function", name, q] => (*name, Some(*q)),
        _ => {
            return Err(constraint(
                input,
                "functionName",
                "Member must satisfy regular expression pattern: (arn:(aws[a-zA-Z-]*)?:lambda:)?\
                 ([a-z]{2}(-gov)?-[a-z]+-\\d{1}:)?(\\d{12}:)?(function:)?([a-zA-Z0-9-_\\.]+)\
                 (:(\\$LATEST|[a-zA-Z0-9-_]+))?",
            ))
        }
    };
    function_name(name)?;
    if let Some(q) = qual {
        qualifier(q)?;
    }
    Ok((name.to_owned(), qual.map(str::to_owned)))
}

/// A handler: 1–128 characters, no whitespace.
pub fn handler(h: &str) -> Result<(), RegistryError> {
    if h.is_empty() || h.len() > MAX_HANDLER {
        return Err(constraint(
            h,
            "handler",
            "Member must have length less than or equal to 128",
        ));
    }
    if h.chars().any(char::is_whitespace) {
        return Err(constraint(
            h,
            "handler",
            "Member must satisfy regular expression pattern: [^\\s]+",
        ));
    }
    Ok(())
}

/// A description: at most 256 characters.
pub fn description(d: &str) -> Result<(), RegistryError> {
    if d.chars().count() > MAX_DESCRIPTION {
        return Err(constraint(
            d,
            "description",
            "Member must have length less than or equal to 256",
        ));
    }
    Ok(())
}

fn range(v: u32, field: &str, (lo, hi): (u32, u32)) -> Result<(), RegistryError> {
    if v < lo {
        return Err(constraint(
            &v.to_string(),
            field,
            &format!("Member must have value greater than or equal to {lo}"),
        ));
    }
    if v > hi {
        return Err(constraint(
            &v.to_string(),
            field,
            &format!("Member must have value less than or equal to {hi}"),
        ));
    }
    Ok(())
}

/// `Timeout`: 1–900 s.
pub fn timeout_s(v: u32) -> Result<(), RegistryError> {
    range(v, "timeout", TIMEOUT_S)
}

/// `MemorySize`: 128–10,240 MB.
pub fn memory_mb(v: u32) -> Result<(), RegistryError> {
    range(v, "memorySize", MEMORY_MB)
}

/// `EphemeralStorage.Size`: 512–10,240 MB.
pub fn ephemeral_mb(v: u32) -> Result<(), RegistryError> {
    range(v, "ephemeralStorage.size", EPHEMERAL_MB)
}

/// `Environment.Variables`: names, reserved keys, 4 KB (the env module's checks and messages).
pub fn env(vars: &BTreeMap<String, String>) -> Result<(), RegistryError> {
    validate_user_env(vars).map_err(|e| RegistryError::InvalidParameter(e.to_string()))
}

/// `Architectures`: exactly one of `x86_64`, `arm64`.
pub fn architectures(a: &[String]) -> Result<(), RegistryError> {
    if a.len() != 1 {
        return Err(constraint(
            &format!("{a:?}"),
            "architectures",
            "Member must have length less than or equal to 1",
        ));
    }
    if !ARCHITECTURES.contains(&a[0].as_str()) {
        return Err(constraint(
            &format!("{a:?}"),
            "architectures",
            "Member must satisfy enum value set: [x86_64, arm64]",
        ));
    }
    Ok(())
}

/// `RoutingConfig.AdditionalVersionWeights` of an alias pointing at `main`: at most one other
/// published version, its weight in 0.0–1.0. Existence is checked by the caller.
pub fn routing(main: &str, weights: &BTreeMap<String, f64>) -> Result<(), RegistryError> {
    if weights.is_empty() {
        return Ok(());
    }
    if weights.len() > 1 {
        return Err(RegistryError::InvalidParameter(
            "Number of items in AdditionalVersionWeights cannot be greater than 1".into(),
        ));
    }
    if main == LATEST {
        return Err(RegistryError::InvalidParameter(
            "$LATEST is not supported for an alias pointing to more than 1 version".into(),
        ));
    }
    for (version, weight) in weights {
        if !is_version_number(version) {
            return Err(RegistryError::InvalidParameter(format!(
                "Invalid function version {version}. Function version {version} is not a \
                 published version"
            )));
        }
        if version == main {
            return Err(RegistryError::InvalidParameter(format!(
                "Invalid function version {version}. Function version {version} is already \
                 included in routing configuration"
            )));
        }
        if !(weight.is_finite() && (0.0..=1.0).contains(weight)) {
            return Err(constraint(
                &weight.to_string(),
                "routingConfig.additionalVersionWeights",
                "Map value must satisfy constraint: [Member must have value less than or equal \
                 to 1.0, Member must have value greater than or equal to 0.0]",
            ));
        }
    }
    Ok(())
}

fn parts(t: SystemTime) -> (String, u32) {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs();
    let (y, m, day) = civil_from_days((secs / 86_400) as i64);
    let rem = secs % 86_400;
    let s = format!(
        "{y:04}-{m:02}-{day:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
    (s, d.subsec_millis())
}

/// `LastModified` of a function: `YYYY-MM-DDThh:mm:ss.sss+0000`.
pub fn last_modified(t: SystemTime) -> String {
    let (s, ms) = parts(t);
    format!("{s}.{ms:03}+0000")
}

/// `LastModified` of a provisioned concurrency config: `YYYY-MM-DDThh:mm:ss+0000`.
pub fn last_modified_seconds(t: SystemTime) -> String {
    format!("{}+0000", parts(t).0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn invalid(r: Result<(), RegistryError>) -> String {
        match r {
            Err(RegistryError::InvalidParameter(m)) => m,
            other => panic!("expected InvalidParameter, got {other:?}"),
        }
    }

    #[test]
    fn function_names() {
        function_name("my-fn_1").unwrap();
        function_name(&"a".repeat(64)).unwrap();
        assert!(invalid(function_name(&"a".repeat(65))).contains("less than or equal to 64"));
        assert!(invalid(function_name("a.b")).contains("pattern"));
        invalid(function_name(""));
    }

    #[test]
    fn alias_names_refuse_pure_digits() {
        alias_name("live").unwrap();
        alias_name("v1").unwrap();
        invalid(alias_name("12"));
        invalid(alias_name("a b"));
        invalid(alias_name(&"a".repeat(129)));
    }

    #[test]
    fn qualifiers() {
        qualifier("$LATEST").unwrap();
        qualifier("7").unwrap();
        qualifier("live").unwrap();
        invalid(qualifier("$NOPE"));
        assert!(!is_version_number("07"));
        assert!(!is_version_number("0"));
        assert!(is_version_number("10"));
    }

    #[test]
    fn function_refs_in_all_forms() {
        let cases = [
            ("f", ("f", None)),
            ("f:live", ("f", Some("live"))),
            (
                "arn:aws:lambda:us-east-1:123456789012:function:f",
                ("f", None),
            ),
            (
                "arn:aws:lambda:us-east-1:123456789012:function:f:3",
                ("f", Some("3")),
            ),
            ("123456789012:function:f", ("f", None)),
            ("123456789012:function:f:$LATEST", ("f", Some("$LATEST"))),
        ];
        for (input, (name, q)) in cases {
            let (n, got) = parse_function_ref(input).unwrap();
            assert_eq!((n.as_str(), got.as_deref()), (name, q), "{input}");
        }
        assert!(parse_function_ref("a:b:c").is_err());
        assert!(parse_function_ref("f:bad qual").is_err());
    }

    #[test]
    fn numeric_ranges_use_aws_wording() {
        timeout_s(1).unwrap();
        timeout_s(900).unwrap();
        assert_eq!(
            invalid(timeout_s(901)),
            "1 validation error detected: Value '901' at 'timeout' failed to satisfy constraint: \
             Member must have value less than or equal to 900"
        );
        invalid(timeout_s(0));
        memory_mb(128).unwrap();
        memory_mb(10_240).unwrap();
        invalid(memory_mb(127));
        invalid(memory_mb(10_241));
        ephemeral_mb(512).unwrap();
        invalid(ephemeral_mb(511));
        invalid(ephemeral_mb(10_241));
    }

    #[test]
    fn handler_description_architectures_env() {
        handler("app.handler").unwrap();
        invalid(handler("a b"));
        invalid(handler(""));
        invalid(handler(&"h".repeat(129)));
        description(&"é".repeat(256)).unwrap();
        invalid(description(&"d".repeat(257)));
        architectures(&["arm64".into()]).unwrap();
        invalid(architectures(&[]));
        invalid(architectures(&["x86_64".into(), "arm64".into()]));
        invalid(architectures(&["mips".into()]));
        let mut vars = BTreeMap::new();
        vars.insert("AWS_REGION".to_owned(), "x".to_owned());
        assert!(invalid(env(&vars)).contains("reserved keys"));
    }

    #[test]
    fn routing_weights() {
        let w = |v: &str, x: f64| BTreeMap::from([(v.to_owned(), x)]);
        routing("1", &BTreeMap::new()).unwrap();
        routing("1", &w("2", 0.5)).unwrap();
        routing("1", &w("2", 1.0)).unwrap();
        invalid(routing("1", &w("2", 1.5)));
        invalid(routing("1", &w("2", f64::NAN)));
        invalid(routing("1", &w("1", 0.5)));
        invalid(routing("1", &w("$LATEST", 0.5)));
        invalid(routing("$LATEST", &w("2", 0.5)));
        let two = BTreeMap::from([("2".to_owned(), 0.1), ("3".to_owned(), 0.1)]);
        invalid(routing("1", &two));
    }

    #[test]
    fn time_formats() {
        // 2020-04-10T19:06:32.563Z, the spec's example.
        let t = UNIX_EPOCH + Duration::from_millis(1_586_545_592_563);
        assert_eq!(last_modified(t), "2020-04-10T19:06:32.563+0000");
        assert_eq!(last_modified_seconds(t), "2020-04-10T19:06:32+0000");
    }
}
