//! The runtimes Hearth supports, by their Lambda `Runtime` names.
//!
//! Owns the list of supported names, what each implies for the sandbox (custom or managed,
//! `AWS_EXECUTION_ENV`, where the bootstrap is looked up) and the platform error text for a
//! missing bootstrap (runtime-api.md §5).
//!
//! Does not: install or locate language runtimes on the host, or check that a bootstrap is
//! executable (that happens in the sandbox, by exec).
//!
//! Limits: only the six names below; deprecated and other languages' runtimes are refused.

use std::fmt;
use std::str::FromStr;

/// Error type of a platform failure to start the bootstrap.
pub const INVALID_ENTRYPOINT: &str = "Runtime.InvalidEntrypoint";

/// Where `provided*` runtimes look for the bootstrap, in order (runtime-api.md §5).
const CUSTOM_BOOTSTRAPS: &[&str] = &["/var/task/bootstrap", "/opt/bootstrap"];
/// Hearth's managed runtimes keep their bootstrap in the read-only `/var/runtime` mount.
const MANAGED_BOOTSTRAPS: &[&str] = &["/var/runtime/bootstrap"];

/// Errors of runtime names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuntimeError {
    /// The name is not one of [`Runtime::ALL`].
    #[error(
        "unsupported runtime {name:?}; supported runtimes: {}",
        supported_list()
    )]
    Unsupported { name: String },
}

/// A supported Lambda runtime.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Runtime {
    /// `provided` (Amazon Linux 1 custom runtime).
    Provided,
    /// `provided.al2`.
    ProvidedAl2,
    /// `provided.al2023`.
    ProvidedAl2023,
    /// `python3.11`.
    Python311,
    /// `python3.12`.
    Python312,
    /// `nodejs20.x`.
    Nodejs20,
}

impl Runtime {
    /// Every supported runtime, in the order error messages list them.
    pub const ALL: [Runtime; 6] = [
        Runtime::Provided,
        Runtime::ProvidedAl2,
        Runtime::ProvidedAl2023,
        Runtime::Python311,
        Runtime::Python312,
        Runtime::Nodejs20,
    ];

    /// The Lambda name, e.g. `python3.12`.
    pub fn name(self) -> &'static str {
        match self {
            Runtime::Provided => "provided",
            Runtime::ProvidedAl2 => "provided.al2",
            Runtime::ProvidedAl2023 => "provided.al2023",
            Runtime::Python311 => "python3.11",
            Runtime::Python312 => "python3.12",
            Runtime::Nodejs20 => "nodejs20.x",
        }
    }

    /// True for `provided*`: the function brings its own bootstrap.
    pub fn is_custom(self) -> bool {
        matches!(
            self,
            Runtime::Provided | Runtime::ProvidedAl2 | Runtime::ProvidedAl2023
        )
    }

    /// Value of `AWS_EXECUTION_ENV`, e.g. `AWS_Lambda_python3.12`; `None` for custom runtimes,
    /// where Lambda does not set it.
    pub fn execution_env(self) -> Option<String> {
        (!self.is_custom()).then(|| format!("AWS_Lambda_{}", self.name()))
    }

    /// Paths tried in order for the executable to start: `/var/task/bootstrap` then
    /// `/opt/bootstrap` for custom runtimes; Hearth's `/var/runtime/bootstrap` for managed ones.
    pub fn bootstrap_candidates(self) -> &'static [&'static str] {
        if self.is_custom() {
            CUSTOM_BOOTSTRAPS
        } else {
            MANAGED_BOOTSTRAPS
        }
    }
}

impl FromStr for Runtime {
    type Err = RuntimeError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Runtime::ALL
            .into_iter()
            .find(|r| r.name() == name)
            .ok_or_else(|| RuntimeError::Unsupported {
                name: name.to_owned(),
            })
    }
}

impl fmt::Display for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl serde::Serialize for Runtime {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Runtime {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let name = String::deserialize(d)?;
        name.parse().map_err(serde::de::Error::custom)
    }
}

fn supported_list() -> String {
    Runtime::ALL.map(Runtime::name).join(", ")
}

/// The `errorMessage` of a `Runtime.InvalidEntrypoint` error when no bootstrap was found, as
/// Lambda words it: `RequestId: <id> Error: Couldn't find valid bootstrap(s): [/var/task/bootstrap
/// /opt/bootstrap]` (the candidates as Go prints a string slice).
pub fn invalid_entrypoint_message(request_id: &str) -> String {
    format!(
        "RequestId: {request_id} Error: Couldn't find valid bootstrap(s): [{}]",
        CUSTOM_BOOTSTRAPS.join(" ")
    )
}

/// The whole invoke error payload for a missing bootstrap:
/// `{"errorType":"Runtime.InvalidEntrypoint","errorMessage":"RequestId: …"}`.
pub fn invalid_entrypoint_payload(request_id: &str) -> String {
    // Built by hand to keep Lambda's member order (serde_json's map would sort the keys).
    let message = serde_json::Value::from(invalid_entrypoint_message(request_id));
    format!("{{\"errorType\":\"{INVALID_ENTRYPOINT}\",\"errorMessage\":{message}}}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for r in Runtime::ALL {
            assert_eq!(r.name().parse::<Runtime>().unwrap(), r);
            assert_eq!(r.to_string(), r.name());
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(json, format!("\"{}\"", r.name()));
            assert_eq!(serde_json::from_str::<Runtime>(&json).unwrap(), r);
        }
        assert_eq!("nodejs20.x".parse::<Runtime>().unwrap(), Runtime::Nodejs20);
        assert_eq!("provided.al2023".parse(), Ok(Runtime::ProvidedAl2023));
    }

    #[test]
    fn unknown_name_lists_the_supported_ones() {
        let err = "python2.7".parse::<Runtime>().unwrap_err();
        assert_eq!(
            err.to_string(),
            "unsupported runtime \"python2.7\"; supported runtimes: provided, provided.al2, \
             provided.al2023, python3.11, python3.12, nodejs20.x"
        );
        assert!(
            "Python3.12".parse::<Runtime>().is_err(),
            "names are case-sensitive"
        );
        assert!("".parse::<Runtime>().is_err());
        assert!(serde_json::from_str::<Runtime>("\"java21\"").is_err());
    }

    #[test]
    fn custom_and_managed() {
        for r in [
            Runtime::Provided,
            Runtime::ProvidedAl2,
            Runtime::ProvidedAl2023,
        ] {
            assert!(r.is_custom());
            assert_eq!(r.execution_env(), None);
            assert_eq!(
                r.bootstrap_candidates(),
                ["/var/task/bootstrap", "/opt/bootstrap"]
            );
        }
        assert_eq!(
            Runtime::Python312.execution_env().as_deref(),
            Some("AWS_Lambda_python3.12")
        );
        assert_eq!(
            Runtime::Python311.execution_env().as_deref(),
            Some("AWS_Lambda_python3.11")
        );
        assert_eq!(
            Runtime::Nodejs20.execution_env().as_deref(),
            Some("AWS_Lambda_nodejs20.x")
        );
        assert!(!Runtime::Nodejs20.is_custom());
        assert_eq!(
            Runtime::Python311.bootstrap_candidates(),
            ["/var/runtime/bootstrap"]
        );
    }

    #[test]
    fn invalid_entrypoint_text() {
        let id = "8f1c1b6e-0f3a-4d6c-9d7e-2b1f8a5c3e11";
        assert_eq!(
            invalid_entrypoint_message(id),
            "RequestId: 8f1c1b6e-0f3a-4d6c-9d7e-2b1f8a5c3e11 Error: Couldn't find valid \
             bootstrap(s): [/var/task/bootstrap /opt/bootstrap]"
        );
        assert_eq!(
            invalid_entrypoint_payload("r1"),
            "{\"errorType\":\"Runtime.InvalidEntrypoint\",\"errorMessage\":\"RequestId: r1 Error: \
             Couldn't find valid bootstrap(s): [/var/task/bootstrap /opt/bootstrap]\"}"
        );
    }
}
