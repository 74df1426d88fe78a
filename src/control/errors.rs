//! The one table from control-API errors to what an AWS client needs to raise the right
//! exception (control-api.md §6): HTTP status, the `x-amzn-ErrorType` header, and the JSON
//! body `{"Type": "User"|"Service", "Message": …}` (plus `Reason` for throttles). botocore
//! takes the code from the header, so boto3 raises `ResourceNotFoundException`,
//! `TooManyRequestsException`, … exactly as against AWS.
//!
//! Not done here: deciding which error applies (each endpoint does), logging.

/// Why an invocation was throttled (the `Reason` member of `TooManyRequestsException`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleReason {
    /// The account's concurrency limit is reached.
    ConcurrentInvocationLimitExceeded,
    /// The function's reserved concurrency is reached (or is 0).
    ReservedFunctionConcurrentInvocationLimitExceeded,
}

impl ThrottleReason {
    pub fn as_str(self) -> &'static str {
        match self {
            ThrottleReason::ConcurrentInvocationLimitExceeded => {
                "ConcurrentInvocationLimitExceeded"
            }
            ThrottleReason::ReservedFunctionConcurrentInvocationLimitExceeded => {
                "ReservedFunctionConcurrentInvocationLimitExceeded"
            }
        }
    }
}

/// An error answered to a control-API client. The message is what the client shows.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ControlError {
    #[error("{0}")]
    ResourceNotFound(String),
    #[error("{0}")]
    ResourceConflict(String),
    #[error("{0}")]
    InvalidParameterValue(String),
    #[error("{0}")]
    InvalidRequestContent(String),
    #[error("{0}")]
    PreconditionFailed(String),
    #[error("{message}")]
    TooManyRequests {
        reason: ThrottleReason,
        message: String,
    },
    #[error("{0}")]
    RequestTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
    #[error("{0}")]
    ProvisionedConcurrencyConfigNotFound(String),
    #[error("{0}")]
    InvalidZipFile(String),
    #[error("{0}")]
    Service(String),
    /// An unknown access key id.
    #[error("The security token included in the request is invalid.")]
    UnrecognizedClient,
    /// A bad, malformed or expired signature.
    #[error("{0}")]
    InvalidSignature(String),
    /// No signature on a listener that requires one.
    #[error("{0}")]
    MissingAuthenticationToken(String),
    /// A path and method that is no Lambda operation Hearth knows.
    #[error("{0}")]
    UnknownOperation(String),
}

impl ControlError {
    /// The HTTP status.
    pub fn status(&self) -> u16 {
        match self {
            ControlError::ResourceNotFound(_)
            | ControlError::ProvisionedConcurrencyConfigNotFound(_)
            | ControlError::UnknownOperation(_) => 404,
            ControlError::ResourceConflict(_) => 409,
            ControlError::InvalidParameterValue(_) | ControlError::InvalidRequestContent(_) => 400,
            ControlError::PreconditionFailed(_) => 412,
            ControlError::TooManyRequests { .. } => 429,
            ControlError::RequestTooLarge(_) => 413,
            ControlError::UnsupportedMediaType(_) => 415,
            ControlError::InvalidZipFile(_) => 502,
            ControlError::Service(_) => 500,
            ControlError::UnrecognizedClient
            | ControlError::InvalidSignature(_)
            | ControlError::MissingAuthenticationToken(_) => 403,
        }
    }

    /// The AWS error code (`x-amzn-ErrorType`).
    pub fn error_type(&self) -> &'static str {
        match self {
            ControlError::ResourceNotFound(_) => "ResourceNotFoundException",
            ControlError::ResourceConflict(_) => "ResourceConflictException",
            ControlError::InvalidParameterValue(_) => "InvalidParameterValueException",
            ControlError::InvalidRequestContent(_) => "InvalidRequestContentException",
            ControlError::PreconditionFailed(_) => "PreconditionFailedException",
            ControlError::TooManyRequests { .. } => "TooManyRequestsException",
            ControlError::RequestTooLarge(_) => "RequestTooLargeException",
            ControlError::UnsupportedMediaType(_) => "UnsupportedMediaTypeException",
            ControlError::ProvisionedConcurrencyConfigNotFound(_) => {
                "ProvisionedConcurrencyConfigNotFoundException"
            }
            ControlError::InvalidZipFile(_) => "InvalidZipFileException",
            ControlError::Service(_) => "ServiceException",
            ControlError::UnrecognizedClient => "UnrecognizedClientException",
            ControlError::InvalidSignature(_) => "InvalidSignatureException",
            ControlError::MissingAuthenticationToken(_) => "MissingAuthenticationTokenException",
            ControlError::UnknownOperation(_) => "UnknownOperationException",
        }
    }

    /// `Service` for Hearth's own failures, `User` for everything the caller can fix.
    pub fn fault(&self) -> &'static str {
        match self {
            ControlError::Service(_) | ControlError::InvalidZipFile(_) => "Service",
            _ => "User",
        }
    }

    /// Status, headers and body of the answer.
    pub fn to_response(&self) -> (u16, Vec<(&'static str, String)>, Vec<u8>) {
        let mut body = serde_json::json!({
            "Type": self.fault(),
            "Message": self.to_string(),
        });
        if let ControlError::TooManyRequests { reason, .. } = self {
            body["Reason"] = serde_json::Value::from(reason.as_str());
        }
        let headers = vec![
            ("x-amzn-ErrorType", self.error_type().to_string()),
            ("Content-Type", "application/json".to_string()),
        ];
        (self.status(), headers, body.to_string().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_looks_like_lambdas() {
        let e = ControlError::ResourceNotFound(
            "Function not found: arn:aws:lambda:us-east-1:000000000000:function:f".into(),
        );
        let (status, headers, body) = e.to_response();
        assert_eq!(status, 404);
        assert!(headers.contains(&("x-amzn-ErrorType", "ResourceNotFoundException".into())));
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["Type"], "User");
        assert_eq!(
            v["Message"],
            "Function not found: arn:aws:lambda:us-east-1:000000000000:function:f"
        );
    }

    #[test]
    fn throttles_carry_their_reason() {
        let e = ControlError::TooManyRequests {
            reason: ThrottleReason::ReservedFunctionConcurrentInvocationLimitExceeded,
            message: "Rate Exceeded.".into(),
        };
        let (status, headers, body) = e.to_response();
        assert_eq!(status, 429);
        assert!(headers.contains(&("x-amzn-ErrorType", "TooManyRequestsException".into())));
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v["Reason"],
            "ReservedFunctionConcurrentInvocationLimitExceeded"
        );
    }

    #[test]
    fn every_error_has_a_status_and_a_code() {
        let all = [
            ControlError::ResourceConflict(String::new()),
            ControlError::InvalidParameterValue(String::new()),
            ControlError::InvalidRequestContent(String::new()),
            ControlError::PreconditionFailed(String::new()),
            ControlError::RequestTooLarge(String::new()),
            ControlError::UnsupportedMediaType(String::new()),
            ControlError::ProvisionedConcurrencyConfigNotFound(String::new()),
            ControlError::InvalidZipFile(String::new()),
            ControlError::Service(String::new()),
            ControlError::UnrecognizedClient,
            ControlError::InvalidSignature(String::new()),
            ControlError::MissingAuthenticationToken(String::new()),
            ControlError::UnknownOperation(String::new()),
        ];
        for e in all {
            assert!((400..600).contains(&e.status()), "{e:?}");
            assert!(e.error_type().ends_with("Exception"), "{e:?}");
        }
        assert_eq!(
            ControlError::UnrecognizedClient.to_string(),
            "The security token included in the request is invalid."
        );
    }
}
