//! Verification of AWS Signature Version 4 on control API requests (control-api.md §7).
//!
//! Owns: parsing the `Authorization` header, rebuilding the canonical request from the request
//! *as received* (method, raw path, raw query, the headers named in `SignedHeaders`, payload
//! hash), the credential-scope checks (service `lambda`, terminator `aws4_request`, scope date
//! equal to `X-Amz-Date`'s date), the ±5-minute clock-skew window, and the constant-time
//! signature comparison. Errors carry the AWS error type and message a client would get from
//! Lambda; every one of them is answered with HTTP 403.
//!
//! Does not: sign requests, pick the key store (the caller passes the configured keys), check
//! that the scope's region is the daemon's region (the region is returned; the caller decides),
//! validate `X-Amz-Security-Token` (Hearth has no STS; a token is signed like any header and
//! otherwise ignored), or authorise anything (a verified key may call every operation).
//!
//! Limits and deliberate choices:
//! * Header authentication only. Presigned URLs (`X-Amz-Signature` in the query), the `Date`
//!   header instead of `X-Amz-Date`, SigV4a, chunked `STREAMING-*` payloads and
//!   `UNSIGNED-PAYLOAD` are refused: boto3 and the aws CLI use none of them for Lambda, and an
//!   unsigned payload would leave the body unauthenticated.
//! * If `X-Amz-Content-SHA256` is sent its value is the payload hash in the canonical request
//!   (as botocore computes it), but it must also equal the SHA-256 of the body actually received,
//!   so the header cannot vouch for a body it does not describe.
//! * The canonical URI follows botocore for non-S3 services: remove `.`/`..` segments and empty
//!   segments (`//`) from the raw path, then percent-encode it *again* (`%3A` → `%253A`).
//! * The canonical query decodes each raw key and value and re-encodes them (RFC 3986
//!   unreserved characters kept, upper-case hex), then sorts by key, then value. For queries
//!   encoded by botocore this is exactly what botocore signs; for other encodings it is what the
//!   SigV4 specification asks.
//! * `SignedHeaders` is the only list of headers used; names are lower-cased and sorted and must
//!   include `host`. Repeated headers are joined with `,` in the order received; values are
//!   trimmed and inner whitespace runs collapsed (as botocore's `' '.join(value.split())`).
//!
//! Why not the `aws-sigv4` crate: it signs and cannot verify. Re-signing a received request with
//! it would mean reproducing, through its API, the exact canonical form the *client* used: it
//! chooses the signed headers itself (always excluding some, e.g. `user-agent`), normalises the
//! path and query its own way and takes the date from the clock; any difference makes a valid
//! request fail. It also brings the smithy runtime crates with it. The cryptography here comes
//! from the RustCrypto crates `hmac` (whose `verify_slice` compares in constant time) and
//! `sha2`; only the canonicalisation of the received request is ours, because no crate does it.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// The signing name of the Lambda API; the only service accepted in a credential scope.
pub const SERVICE: &str = "lambda";
/// The only signing algorithm accepted.
pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// How far `X-Amz-Date` may be from the server clock, either way.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

/// Hex SHA-256 of the empty string: the payload hash of a request without a body.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
const TERMINATOR: &str = "aws4_request";

type HmacSha256 = Hmac<Sha256>;

/// One configured access key. `Debug` never shows the secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The public key id a client puts in `Credential=`.
    pub access_key_id: String,
    /// The shared secret; never logged.
    pub secret_access_key: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .finish()
    }
}

/// A received request, exactly as it came off the wire.
#[derive(Clone, Copy)]
pub struct SignedRequest<'a> {
    /// The request method (`GET`, `POST`, ...), as sent.
    pub method: &'a str,
    /// The raw path, still percent-encoded, without the query.
    pub path: &'a str,
    /// The raw query without the leading `?`; empty when there is none.
    pub query: &'a str,
    /// Every header in the order received, names in any case, repeats kept.
    pub headers: &'a [(String, String)],
    /// The complete body.
    pub body: &'a [u8],
}

impl fmt::Debug for SignedRequest<'_> {
    // Header values include the signature and possibly a session token, and the body can be
    // large: show only what identifies the request.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("SignedRequest")
            .field("method", &self.method)
            .field("path", &self.path)
            .field("query", &self.query)
            .field("header_names", &names)
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// Who signed a request that passed verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The access key the request was signed with.
    pub access_key_id: String,
    /// The region of the credential scope (whatever the client was configured with).
    pub region: String,
}

/// Why a request was refused. All are answered with HTTP 403; `aws_error_type` and
/// `aws_message` give what Lambda would put in `x-amzn-ErrorType` and `Message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    /// No `Authorization` header at all.
    #[error("request carries no authorization header")]
    MissingAuthorization,
    /// The header, the credential scope, `SignedHeaders` or `X-Amz-Date` cannot be used;
    /// `detail` is AWS's wording.
    #[error("malformed sigv4 authorization: {detail}")]
    Malformed { detail: String },
    /// The scope names another service than `lambda`.
    #[error("credential scope is for service {service:?}, not lambda")]
    WrongService { service: String },
    /// The scope's date is not the date of `X-Amz-Date`.
    #[error("credential scope date {scope_date} does not match x-amz-date {amz_date}")]
    ScopeDateMismatch {
        scope_date: String,
        amz_date: String,
    },
    /// `X-Amz-Date` is more than five minutes before the server clock.
    #[error("signature expired: x-amz-date {amz_date} is more than 5 minutes before {now}")]
    Expired { amz_date: String, now: String },
    /// `X-Amz-Date` is more than five minutes after the server clock.
    #[error("signature not yet current: x-amz-date {amz_date} is more than 5 minutes after {now}")]
    NotYetCurrent { amz_date: String, now: String },
    /// No configured key has this id.
    #[error("unknown access key id {access_key_id:?}")]
    UnknownAccessKey { access_key_id: String },
    /// `X-Amz-Content-SHA256` is not the SHA-256 of the body received.
    #[error("x-amz-content-sha256 {sent:?} is not the sha-256 of the body ({computed})")]
    PayloadHashMismatch { sent: String, computed: String },
    /// The signature is not the one the key and the received request give.
    #[error("signature mismatch for access key id {access_key_id:?}")]
    SignatureMismatch { access_key_id: String },
}

impl SigV4Error {
    /// The AWS error type (`x-amzn-ErrorType`). The HTTP status is 403 for every variant.
    pub fn aws_error_type(&self) -> &'static str {
        match self {
            // Observed from Lambda for unsigned requests (e.g. brefphp/bref#1250).
            SigV4Error::MissingAuthorization => "MissingAuthenticationTokenException",
            SigV4Error::UnknownAccessKey { .. } => "UnrecognizedClientException",
            SigV4Error::Malformed { .. }
            | SigV4Error::WrongService { .. }
            | SigV4Error::ScopeDateMismatch { .. }
            | SigV4Error::Expired { .. }
            | SigV4Error::NotYetCurrent { .. }
            | SigV4Error::PayloadHashMismatch { .. }
            | SigV4Error::SignatureMismatch { .. } => "InvalidSignatureException",
        }
    }

    /// The message AWS sends with this error, word for word where known.
    pub fn aws_message(&self) -> String {
        match self {
            SigV4Error::MissingAuthorization => "Missing Authentication Token".to_string(),
            SigV4Error::Malformed { detail } => detail.clone(),
            SigV4Error::WrongService { .. } => {
                format!("Credential should be scoped to correct service: '{SERVICE}'.")
            }
            SigV4Error::ScopeDateMismatch {
                scope_date,
                amz_date,
            } => format!(
                "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date \
                 from HTTP: '{scope_date}' != '{}', from '{amz_date}'.",
                amz_date.get(..8).unwrap_or(amz_date)
            ),
            SigV4Error::Expired { amz_date, now } => format!(
                "Signature expired: {amz_date} is now earlier than {} ({now} - 5 min.)",
                shift_amz_date(now, -1)
            ),
            SigV4Error::NotYetCurrent { amz_date, now } => format!(
                "Signature not yet current: {amz_date} is still later than {} ({now} + 5 min.)",
                shift_amz_date(now, 1)
            ),
            SigV4Error::UnknownAccessKey { .. } => {
                "The security token included in the request is invalid.".to_string()
            }
            SigV4Error::PayloadHashMismatch { .. } => {
                "The provided 'x-amz-content-sha256' header does not match what was computed."
                    .to_string()
            }
            SigV4Error::SignatureMismatch { .. } => {
                "The request signature we calculated does not match the signature you provided. \
                 Check your AWS Secret Access Key and signing method. Consult the service \
                 documentation for details."
                    .to_string()
            }
        }
    }
}

fn malformed(detail: impl Into<String>) -> SigV4Error {
    SigV4Error::Malformed {
        detail: detail.into(),
    }
}

/// Verifies `req`'s SigV4 signature against `keys` at time `now`.
///
/// Cheap checks come first (header syntax, scope, clock), then the key lookup, the payload hash
/// and the signature. Returns the key id and the scope's region on success.
pub fn verify(
    req: &SignedRequest<'_>,
    keys: &[Credentials],
    now: SystemTime,
) -> Result<Verified, SigV4Error> {
    verify_for_service(req, keys, now, SERVICE)
}

// The service is a parameter only so that tests can replay AWS's published test-suite
// vectors, which are signed for the service `service`.
fn verify_for_service(
    req: &SignedRequest<'_>,
    keys: &[Credentials],
    now: SystemTime,
    service: &str,
) -> Result<Verified, SigV4Error> {
    let auth_value = match single_header(req.headers, "authorization")? {
        Some(v) => v,
        None if has_presigned_query(req.query) => {
            return Err(malformed(
                "Query-string (presigned) authentication is not supported; sign the \
                 Authorization header.",
            ))
        }
        None => return Err(SigV4Error::MissingAuthorization),
    };
    let auth = parse_authorization(auth_value)?;

    if auth.terminator != TERMINATOR {
        return Err(malformed(format!(
            "Credential should be scoped with a valid terminator: '{TERMINATOR}', not '{}'.",
            auth.terminator
        )));
    }
    if auth.service != service {
        return Err(SigV4Error::WrongService {
            service: auth.service.to_string(),
        });
    }
    if !is_valid_region(auth.region) {
        return Err(malformed(format!(
            "Credential should be scoped to a valid region, not '{}'.",
            auth.region
        )));
    }

    let amz_date = single_header(req.headers, "x-amz-date")?.ok_or_else(|| {
        malformed(
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' \
             header.",
        )
    })?;
    let amz_date = amz_date.trim();
    let signed_at = parse_amz_date(amz_date).ok_or_else(|| {
        malformed(format!(
            "Date must be in ISO-8601 'basic format'. Got '{amz_date}'. See \
             http://en.wikipedia.org/wiki/ISO_8601"
        ))
    })?;
    if auth.date != &amz_date[..8] {
        return Err(SigV4Error::ScopeDateMismatch {
            scope_date: auth.date.to_string(),
            amz_date: amz_date.to_string(),
        });
    }
    let now_secs = now
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let skew = MAX_CLOCK_SKEW.as_secs();
    if signed_at.saturating_add(skew) < now_secs {
        return Err(SigV4Error::Expired {
            amz_date: amz_date.to_string(),
            now: format_amz_date(now_secs),
        });
    }
    if signed_at > now_secs.saturating_add(skew) {
        return Err(SigV4Error::NotYetCurrent {
            amz_date: amz_date.to_string(),
            now: format_amz_date(now_secs),
        });
    }

    let key = keys
        .iter()
        .find(|k| k.access_key_id == auth.access_key_id)
        .ok_or_else(|| SigV4Error::UnknownAccessKey {
            access_key_id: auth.access_key_id.to_string(),
        })?;

    let payload_hash = payload_hash(req)?;
    let canonical = canonical_request(req, &auth.signed_headers, &payload_hash);
    let scope = format!(
        "{}/{}/{}/{TERMINATOR}",
        auth.date, auth.region, auth.service
    );
    let string_to_sign = format!(
        "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let signing_key = signing_key(&key.secret_access_key, auth.date, auth.region, auth.service);
    let mut mac = hmac_sha256(&signing_key);
    mac.update(string_to_sign.as_bytes());
    let mismatch = || SigV4Error::SignatureMismatch {
        access_key_id: auth.access_key_id.to_string(),
    };
    // A signature that is not 64 lower-case hex digits can never be ours; say so the same
    // way as a wrong one.
    let provided = unhex32(auth.signature).ok_or_else(mismatch)?;
    // `verify_slice` compares in constant time, so the response time reveals nothing about
    // how much of a forged signature was right.
    mac.verify_slice(&provided).map_err(|_| mismatch())?;

    Ok(Verified {
        access_key_id: key.access_key_id.clone(),
        region: auth.region.to_string(),
    })
}

/// The parts of an `Authorization: AWS4-HMAC-SHA256 ...` header.
struct Authorization<'a> {
    access_key_id: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    terminator: &'a str,
    /// Lower-cased, sorted, without duplicates.
    signed_headers: Vec<String>,
    signature: &'a str,
}

fn parse_authorization(value: &str) -> Result<Authorization<'_>, SigV4Error> {
    let value = value.trim();
    let (algorithm, rest) = value.split_once([' ', '\t']).unwrap_or((value, ""));
    if algorithm != ALGORITHM {
        return Err(malformed(format!(
            "Unsupported authorization algorithm '{algorithm}'; only {ALGORITHM} is accepted."
        )));
    }
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if part.is_empty() {
            continue;
        }
        let Some((name, val)) = part.split_once('=') else {
            return Err(malformed(format!(
                "Invalid key=value pair (missing equal-sign) in Authorization header: '{part}'."
            )));
        };
        let slot = match name.trim() {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            other => {
                return Err(malformed(format!(
                    "Unknown parameter '{other}' in Authorization header."
                )))
            }
        };
        if slot.replace(val.trim()).is_some() {
            return Err(malformed(format!(
                "Parameter '{}' appears twice in Authorization header.",
                name.trim()
            )));
        }
    }
    let missing: Vec<String> = [
        ("Credential", credential.is_none()),
        ("Signature", signature.is_none()),
        ("SignedHeaders", signed_headers.is_none()),
    ]
    .iter()
    .filter(|(_, absent)| *absent)
    .map(|(name, _)| format!("Authorization header requires '{name}' parameter."))
    .collect();
    let (Some(credential), Some(signed_headers), Some(signature)) =
        (credential, signed_headers, signature)
    else {
        return Err(malformed(missing.join(" ")));
    };

    let parts: Vec<&str> = credential.split('/').collect();
    let [access_key_id, date, region, service, terminator] = parts[..] else {
        return Err(malformed(format!(
            "Credential should be of the form <key id>/<YYYYMMDD>/<region>/<service>/\
             aws4_request, not '{credential}'."
        )));
    };
    if access_key_id.is_empty() {
        return Err(malformed("Credential has an empty access key id."));
    }
    if date.len() != 8 || !date.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed(format!(
            "Credential scope date must be YYYYMMDD, not '{date}'."
        )));
    }

    let mut names: Vec<String> = Vec::new();
    for name in signed_headers.split(';') {
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err(malformed(format!(
                "SignedHeaders is not a ';'-separated list of header names: '{signed_headers}'."
            )));
        }
        names.push(name.to_ascii_lowercase());
    }
    names.sort();
    names.dedup();
    if !names.iter().any(|n| n == "host") {
        return Err(malformed(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.",
        ));
    }

    Ok(Authorization {
        access_key_id,
        date,
        region,
        service,
        terminator,
        signed_headers: names,
        signature,
    })
}

/// RFC 9110 `tchar`: what a header name may contain.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// botocore's region check (`validate_region_name`): a DNS label.
fn is_valid_region(region: &str) -> bool {
    let b = region.as_bytes();
    !b.is_empty()
        && b.len() <= 63
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && b[0] != b'-'
        && b[b.len() - 1] != b'-'
}

fn has_presigned_query(query: &str) -> bool {
    query.split('&').any(|p| {
        let key = p.split('=').next().unwrap_or("");
        key.eq_ignore_ascii_case("X-Amz-Signature") || key.eq_ignore_ascii_case("X-Amz-Credential")
    })
}

/// The one value of header `name`; two of them is ambiguous and refused.
fn single_header<'a>(
    headers: &'a [(String, String)],
    name: &str,
) -> Result<Option<&'a str>, SigV4Error> {
    let mut found = headers
        .iter()
        .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name));
    let first = found.next().map(|(_, v)| v.as_str());
    if found.next().is_some() {
        return Err(malformed(format!(
            "The request has more than one '{name}' header."
        )));
    }
    Ok(first)
}

/// The payload hash of the canonical request: `X-Amz-Content-SHA256` if sent (botocore uses
/// its value verbatim), which must then describe the body received; else the body's SHA-256.
fn payload_hash(req: &SignedRequest<'_>) -> Result<String, SigV4Error> {
    let computed = if req.body.is_empty() {
        EMPTY_SHA256.to_string()
    } else {
        hex(&Sha256::digest(req.body))
    };
    match single_header(req.headers, "x-amz-content-sha256")? {
        None => Ok(computed),
        Some(sent) if sent.trim().eq_ignore_ascii_case(&computed) => Ok(sent.trim().to_string()),
        Some(sent) => Err(SigV4Error::PayloadHashMismatch {
            sent: sent.to_string(),
            computed,
        }),
    }
}

fn canonical_request(req: &SignedRequest<'_>, signed: &[String], payload_hash: &str) -> String {
    let mut out = String::with_capacity(256 + req.path.len() + req.query.len());
    out.push_str(req.method);
    out.push('\n');
    out.push_str(&canonical_uri(req.path));
    out.push('\n');
    out.push_str(&canonical_query(req.query));
    out.push('\n');
    for name in signed {
        out.push_str(name);
        out.push(':');
        let mut first = true;
        for (_, value) in req
            .headers
            .iter()
            .filter(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        {
            if !first {
                out.push(',');
            }
            first = false;
            push_trimmed(&mut out, value);
        }
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&signed.join(";"));
    out.push('\n');
    out.push_str(payload_hash);
    out
}

/// Appends `value` trimmed, with runs of whitespace collapsed to one space. The separators
/// are Python's `str.split()` ones (Unicode whitespace plus U+001C..U+001F), because that is
/// what botocore uses.
fn push_trimmed(out: &mut String, value: &str) {
    let is_sep = |c: char| c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c);
    let mut first = true;
    for word in value.split(is_sep).filter(|w| !w.is_empty()) {
        if !first {
            out.push(' ');
        }
        first = false;
        out.push_str(word);
    }
}

/// botocore's non-S3 canonical URI: dot segments and empty segments removed from the raw
/// path, then the raw path percent-encoded a second time (`/` kept).
fn canonical_uri(raw_path: &str) -> String {
    if raw_path.is_empty() {
        return "/".to_string();
    }
    let mut segments: Vec<&str> = Vec::new();
    for seg in raw_path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut normalised = String::with_capacity(raw_path.len());
    if raw_path.starts_with('/') {
        normalised.push('/');
    }
    normalised.push_str(&segments.join("/"));
    if raw_path.ends_with('/') && !segments.is_empty() {
        normalised.push('/');
    }
    let mut out = String::with_capacity(normalised.len() + 16);
    for &b in normalised.as_bytes() {
        if b == b'/' {
            out.push('/');
        } else {
            push_encoded(&mut out, b);
        }
    }
    out
}

/// Each raw `key=value` pair decoded and re-encoded, sorted by key then value, joined by `&`.
fn canonical_query(raw_query: &str) -> String {
    let mut pairs: Vec<(String, String)> = raw_query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (reencode(k), reencode(v))
        })
        .collect();
    pairs.sort();
    let mut out = String::with_capacity(raw_query.len() + 16);
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

/// Percent-decodes `s` (an invalid escape stays literal) and encodes the bytes again.
fn reencode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex_val(b[i + 1]), hex_val(b[i + 2])) {
                push_encoded(&mut out, (h << 4) | l);
                i += 3;
                continue;
            }
        }
        push_encoded(&mut out, b[i]);
        i += 1;
    }
    out
}

/// RFC 3986 encoding of one byte: unreserved characters as they are, the rest as `%XX`.
fn push_encoded(out: &mut String, b: u8) {
    if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
        out.push(b as char);
    } else {
        const UPPER: &[u8; 16] = b"0123456789ABCDEF";
        out.push('%');
        out.push(UPPER[usize::from(b >> 4)] as char);
        out.push(UPPER[usize::from(b & 0xf)] as char);
    }
}

fn hmac_sha256(key: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    HmacSha256::new_from_slice(key).expect("hmac accepts keys of any length")
}

fn hmac_bytes(key: &[u8], msg: &str) -> [u8; 32] {
    let mut mac = hmac_sha256(key);
    mac.update(msg.as_bytes());
    mac.finalize().into_bytes().into()
}

/// `kSigning` of the SigV4 key derivation.
fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> [u8; 32] {
    let k_date = hmac_bytes(format!("AWS4{secret}").as_bytes(), date);
    let k_region = hmac_bytes(&k_date, region);
    let k_service = hmac_bytes(&k_region, service);
    hmac_bytes(&k_service, TERMINATOR)
}

fn hex(bytes: &[u8]) -> String {
    const LOWER: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(LOWER[usize::from(b >> 4)] as char);
        s.push(LOWER[usize::from(b & 0xf)] as char);
    }
    s
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Decodes exactly 64 lower-case hex digits (what every SigV4 signer sends).
fn unhex32(s: &str) -> Option<[u8; 32]> {
    let b = s.as_bytes();
    if b.len() != 64 || b.iter().any(|c| c.is_ascii_uppercase()) {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in b.chunks_exact(2).enumerate() {
        out[i] = (hex_val(pair[0])? << 4) | hex_val(pair[1])?;
    }
    Some(out)
}

/// Seconds since the epoch of `YYYYMMDDTHHMMSSZ`, or `None` if it is not a valid UTC time.
fn parse_amz_date(s: &str) -> Option<u64> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u64> {
        b[r].iter().try_fold(0u64, |acc, &c| {
            c.is_ascii_digit().then(|| acc * 10 + u64::from(c - b'0'))
        })
    };
    let (year, month, day) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hour, min, sec) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1970..=9999).contains(&year)
        || !(1..=12).contains(&month)
        || day < 1
        || day > days_in_month(year, month)
        || hour > 23
        || min > 59
        || sec > 59
    {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + hour * 3600 + min * 60 + sec)
}

fn days_in_month(year: u64, month: u64) -> u64 {
    match month {
        2 if (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400) => {
            29
        }
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date from 1970 on (H. Hinnant's algorithm).
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYYMMDDTHHMMSSZ` of seconds since the epoch.
fn format_amz_date(secs: u64) -> String {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Inverse of `days_from_civil`.
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// `amz_date` moved by five minutes in direction `sign`, for AWS's skew messages.
fn shift_amz_date(amz_date: &str, sign: i8) -> String {
    let Some(secs) = parse_amz_date(amz_date) else {
        return amz_date.to_string();
    };
    let skew = MAX_CLOCK_SKEW.as_secs();
    format_amz_date(if sign < 0 {
        secs.saturating_sub(skew)
    } else {
        secs + skew
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";

    #[derive(serde::Deserialize)]
    struct Fixtures {
        secret_access_key: String,
        now: String,
        vectors: Vec<Vector>,
    }

    #[derive(serde::Deserialize, Clone)]
    struct Vector {
        name: String,
        method: String,
        path: String,
        query: String,
        headers: Vec<(String, String)>,
        body_hex: String,
        region: String,
        access_key_id: String,
    }

    impl Vector {
        fn body(&self) -> Vec<u8> {
            let b = self.body_hex.as_bytes();
            b.chunks_exact(2)
                .map(|p| (hex_val(p[0]).unwrap() << 4) | hex_val(p[1]).unwrap())
                .collect()
        }

        fn verify_with(
            &self,
            keys: &[Credentials],
            now: SystemTime,
        ) -> Result<Verified, SigV4Error> {
            let body = self.body();
            let req = SignedRequest {
                method: &self.method,
                path: &self.path,
                query: &self.query,
                headers: &self.headers,
                body: &body,
            };
            verify(&req, keys, now)
        }

        fn verify(&self) -> Result<Verified, SigV4Error> {
            self.verify_with(&keys(), at("20240101T001000Z"))
        }

        fn header_mut(&mut self, name: &str) -> &mut String {
            &mut self
                .headers
                .iter_mut()
                .find(|(n, _)| n.eq_ignore_ascii_case(name))
                .unwrap_or_else(|| panic!("{}: no header {name}", self.name))
                .1
        }

        fn set_authorization(&mut self, f: impl FnOnce(&str) -> String) {
            let h = self.header_mut("authorization");
            *h = f(h);
        }
    }

    fn fixtures() -> Fixtures {
        serde_json::from_str(include_str!("sigv4_vectors.json")).unwrap()
    }

    fn vector(name: &str) -> Vector {
        fixtures()
            .vectors
            .into_iter()
            .find(|v| v.name == name)
            .unwrap_or_else(|| panic!("no vector {name}"))
    }

    fn keys() -> Vec<Credentials> {
        vec![
            Credentials {
                access_key_id: "AKIDOTHER".into(),
                secret_access_key: "other-secret".into(),
            },
            Credentials {
                access_key_id: "AKIDEXAMPLE".into(),
                secret_access_key: SECRET.into(),
            },
        ]
    }

    fn at(amz_date: &str) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(parse_amz_date(amz_date).unwrap())
    }

    fn assert_mismatch(v: &Vector, what: &str) {
        match v.verify() {
            Err(e @ SigV4Error::SignatureMismatch { .. }) => {
                assert_eq!(e.aws_error_type(), "InvalidSignatureException", "{what}");
            }
            other => panic!("{what}: expected a signature mismatch, got {other:?}"),
        }
    }

    fn assert_malformed(v: &Vector, what: &str) -> String {
        match v.verify() {
            Err(e @ SigV4Error::Malformed { .. }) => {
                assert_eq!(e.aws_error_type(), "InvalidSignatureException", "{what}");
                e.aws_message()
            }
            other => panic!("{what}: expected malformed, got {other:?}"),
        }
    }

    #[test]
    fn every_botocore_vector_verifies() {
        let f = fixtures();
        assert_eq!(f.secret_access_key, SECRET);
        assert!(f.vectors.len() >= 10);
        for v in &f.vectors {
            let got = v.verify_with(&keys(), at(&f.now));
            assert_eq!(
                got,
                Ok(Verified {
                    access_key_id: v.access_key_id.clone(),
                    region: v.region.clone(),
                }),
                "vector {}",
                v.name
            );
        }
    }

    #[test]
    fn vectors_cover_what_the_issue_names() {
        let f = fixtures();
        let has = |pred: &dyn Fn(&Vector) -> bool| f.vectors.iter().any(pred);
        assert!(has(
            &|v| v.path.contains("%3A") && v.query == "Qualifier=%24LATEST"
        ));
        assert!(has(
            &|v| v.path == "/2015-03-31/functions" && v.method == "POST"
        ));
        assert!(has(
            &|v| v.query.contains("MaxItems=") && v.query.contains("Marker=")
        ));
        assert!(has(&|v| v
            .headers
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("x-amz-security-token"))));
    }

    #[test]
    fn tampering_with_any_signed_part_fails() {
        let base = vector("invoke_arn_qualifier_latest");

        let mut v = base.clone();
        let mut body = v.body();
        body[0] ^= 1;
        v.body_hex = hex(&body);
        assert_mismatch(&v, "body byte");

        let mut v = base.clone();
        *v.header_mut("x-amz-invocation-type") = "Event".into();
        assert_mismatch(&v, "signed header value");

        let mut v = base.clone();
        *v.header_mut("host") = "127.0.0.1:9002".into();
        assert_mismatch(&v, "host");

        let mut v = base.clone();
        v.headers
            .retain(|(n, _)| !n.eq_ignore_ascii_case("x-amz-log-type"));
        assert_mismatch(&v, "signed header removed");

        let mut v = base.clone();
        v.query = "Qualifier=1".into();
        assert_mismatch(&v, "query value");

        let mut v = base.clone();
        v.query.clear();
        assert_mismatch(&v, "query removed");

        let mut v = base.clone();
        v.path = v.path.replace("my-fn", "my-fo");
        assert_mismatch(&v, "path");

        let mut v = base.clone();
        v.path = v.path.replace("%3A", ":");
        assert_mismatch(&v, "path encoding");

        let mut v = base.clone();
        v.method = "PUT".into();
        assert_mismatch(&v, "method");

        let mut v = base.clone();
        v.set_authorization(|a| {
            let last = a.chars().last().unwrap();
            let flipped = if last == '0' { '1' } else { '0' };
            format!("{}{flipped}", &a[..a.len() - 1])
        });
        assert_mismatch(&v, "signature digit");

        let mut v = base.clone();
        v.set_authorization(|a| {
            let i = a.find("Signature=").unwrap() + "Signature=".len();
            format!("{}{}", &a[..i], a[i..].to_ascii_uppercase())
        });
        assert_mismatch(&v, "upper-case signature hex");

        let mut v = base.clone();
        v.set_authorization(|a| a.replace("x-amz-log-type", "x-amz-log-type;user-agent"));
        assert_mismatch(&v, "extra signed header claimed");

        let wrong_secret = [Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "not-the-secret".into(),
        }];
        assert!(matches!(
            base.verify_with(&wrong_secret, at("20240101T001000Z")),
            Err(SigV4Error::SignatureMismatch { .. })
        ));
    }

    #[test]
    fn unsigned_headers_and_header_name_case_do_not_matter() {
        let mut v = vector("create_function");
        *v.header_mut("user-agent") = "something else".into();
        *v.header_mut("content-length") = "0".into();
        v.headers
            .push(("X-Amzn-Trace-Id".into(), "Root=1-abc".into()));
        for (name, _) in &mut v.headers {
            *name = name.to_ascii_uppercase();
        }
        assert!(v.verify().is_ok());
    }

    #[test]
    fn unknown_key_is_unrecognized_client() {
        let v = vector("create_function");
        let only_other = &keys()[..1];
        let e = v
            .verify_with(only_other, at("20240101T001000Z"))
            .unwrap_err();
        assert_eq!(
            e,
            SigV4Error::UnknownAccessKey {
                access_key_id: "AKIDEXAMPLE".into()
            }
        );
        assert_eq!(e.aws_error_type(), "UnrecognizedClientException");
        assert_eq!(
            e.aws_message(),
            "The security token included in the request is invalid."
        );
        assert!(v.verify_with(&[], at("20240101T001000Z")).is_err());
    }

    #[test]
    fn clock_skew_is_five_minutes_either_way() {
        let v = vector("list_functions_query");
        // Signed at 00:10:00.
        assert!(v.verify_with(&keys(), at("20240101T001500Z")).is_ok());
        assert!(v.verify_with(&keys(), at("20240101T000500Z")).is_ok());

        let e = v.verify_with(&keys(), at("20240101T001501Z")).unwrap_err();
        assert!(matches!(e, SigV4Error::Expired { .. }), "{e:?}");
        assert_eq!(e.aws_error_type(), "InvalidSignatureException");
        assert_eq!(
            e.aws_message(),
            "Signature expired: 20240101T001000Z is now earlier than 20240101T001001Z \
             (20240101T001501Z - 5 min.)"
        );

        let e = v.verify_with(&keys(), at("20240101T000459Z")).unwrap_err();
        assert!(matches!(e, SigV4Error::NotYetCurrent { .. }), "{e:?}");
        assert_eq!(
            e.aws_message(),
            "Signature not yet current: 20240101T001000Z is still later than 20240101T000959Z \
             (20240101T000459Z + 5 min.)"
        );
    }

    #[test]
    fn expired_message_matches_aws_wording() {
        let e = SigV4Error::Expired {
            amz_date: "20240101T000000Z".into(),
            now: "20240101T001000Z".into(),
        };
        assert_eq!(
            e.aws_message(),
            "Signature expired: 20240101T000000Z is now earlier than 20240101T000500Z \
             (20240101T001000Z - 5 min.)"
        );
    }

    #[test]
    fn scope_must_be_lambda_with_matching_date() {
        let base = vector("get_account_settings");

        let mut v = base.clone();
        v.set_authorization(|a| a.replace("/lambda/", "/s3/"));
        let e = v.verify().unwrap_err();
        assert_eq!(
            e,
            SigV4Error::WrongService {
                service: "s3".into()
            }
        );
        assert_eq!(e.aws_error_type(), "InvalidSignatureException");
        assert_eq!(
            e.aws_message(),
            "Credential should be scoped to correct service: 'lambda'."
        );

        let mut v = base.clone();
        v.set_authorization(|a| a.replace("/20240101/", "/20240102/"));
        let e = v.verify().unwrap_err();
        assert!(matches!(e, SigV4Error::ScopeDateMismatch { .. }), "{e:?}");
        assert_eq!(
            e.aws_message(),
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date \
             from HTTP: '20240102' != '20240101', from '20240101T001000Z'."
        );

        let mut v = base.clone();
        v.set_authorization(|a| a.replace("/aws4_request", "/aws5_request"));
        assert!(assert_malformed(&v, "terminator").contains("aws5_request"));

        let mut v = base.clone();
        v.set_authorization(|a| a.replace("/us-east-1/", "/us_east_1/"));
        assert_malformed(&v, "region");

        // The region is the client's choice; it is reported, not checked, and it is signed.
        let mut v = base.clone();
        v.set_authorization(|a| a.replace("/us-east-1/", "/eu-west-1/"));
        assert_mismatch(&v, "region changed after signing");
    }

    #[test]
    fn malformed_authorization_is_refused() {
        let base = vector("get_account_settings");
        type Edit = fn(&str) -> String;
        let cases: &[(&str, Edit)] = &[
            ("garbage", |_| "garbage".into()),
            ("sigv2", |_| "AWS AKIDEXAMPLE:c2lnbmF0dXJl".into()),
            ("sigv4a", |a| {
                a.replace("AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256")
            }),
            ("no signature", |a| {
                a[..a.find(", Signature=").unwrap()].to_string()
            }),
            ("no credential", |a| {
                let i = a.find("Credential=").unwrap();
                let j = a.find("SignedHeaders=").unwrap();
                format!("{}{}", &a[..i], &a[j..])
            }),
            ("missing equal sign", |a| {
                a.replace("Signature=", "Signature ")
            }),
            ("duplicate parameter", |a| format!("{a}, Signature=00")),
            ("unknown parameter", |a| format!("{a}, Foo=bar")),
            ("credential too short", |a| {
                a.replace("/lambda/aws4_request", "/lambda")
            }),
            ("credential with slash in key", |a| {
                a.replace("AKIDEXAMPLE/", "AKID/EXAMPLE/")
            }),
            ("host not signed", |a| {
                a.replace("SignedHeaders=host;", "SignedHeaders=")
            }),
            ("empty signed header", |a| a.replace("host;", "host;;")),
            ("bad scope date", |a| a.replace("/20240101/", "/2024011/")),
        ];
        for (what, f) in cases {
            let mut v = base.clone();
            v.set_authorization(f);
            assert_malformed(&v, what);
        }

        let mut v = base.clone();
        v.headers
            .retain(|(n, _)| !n.eq_ignore_ascii_case("x-amz-date"));
        assert!(assert_malformed(&v, "no x-amz-date").contains("'X-Amz-Date'"));

        let mut v = base.clone();
        *v.header_mut("x-amz-date") = "2024-01-01T00:10:00Z".into();
        assert!(assert_malformed(&v, "extended date").contains("ISO-8601"));

        let mut v = base.clone();
        *v.header_mut("x-amz-date") = "20240231T001000Z".into();
        assert_malformed(&v, "impossible date");

        let mut v = base.clone();
        let auth = v.header_mut("authorization").clone();
        v.headers.push(("Authorization".into(), auth));
        assert_malformed(&v, "two authorization headers");
    }

    #[test]
    fn missing_authorization_is_missing_authentication_token() {
        let mut v = vector("get_account_settings");
        v.headers
            .retain(|(n, _)| !n.eq_ignore_ascii_case("authorization"));
        let e = v.verify().unwrap_err();
        assert_eq!(e, SigV4Error::MissingAuthorization);
        assert_eq!(e.aws_error_type(), "MissingAuthenticationTokenException");
        assert_eq!(e.aws_message(), "Missing Authentication Token");

        v.query = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=00".into();
        assert!(assert_malformed(&v, "presigned").contains("presigned"));
    }

    #[test]
    fn content_sha256_header_must_describe_the_body() {
        let base = vector("raw_content_sha256_header");
        assert!(base.verify().is_ok());

        let mut v = base.clone();
        v.body_hex = hex(b"{} ");
        let e = v.verify().unwrap_err();
        assert!(matches!(e, SigV4Error::PayloadHashMismatch { .. }), "{e:?}");
        assert_eq!(e.aws_error_type(), "InvalidSignatureException");

        let mut v = base.clone();
        *v.header_mut("x-amz-content-sha256") = "UNSIGNED-PAYLOAD".into();
        assert!(matches!(
            v.verify(),
            Err(SigV4Error::PayloadHashMismatch { .. })
        ));

        // An X-Amz-Content-SHA256 added after signing, even a correct one (upper-case hex of
        // the empty body), is used verbatim in the canonical request, as botocore would: the
        // signature no longer matches.
        let mut v = vector("get_account_settings");
        v.headers.push((
            "X-Amz-Content-SHA256".into(),
            EMPTY_SHA256.to_ascii_uppercase(),
        ));
        assert_mismatch(&v, "content sha256 added after signing");
    }

    #[test]
    fn repeated_headers_and_whitespace_follow_botocore() {
        let base = vector("raw_repeated_header_whitespace");
        assert!(base.verify().is_ok());
        // Order of repeated values is significant.
        let mut v = base.clone();
        let (a, b) = {
            let idx: Vec<usize> = v
                .headers
                .iter()
                .enumerate()
                .filter(|(_, (n, _))| n.eq_ignore_ascii_case("x-amz-meta-test"))
                .map(|(i, _)| i)
                .collect();
            (idx[0], idx[1])
        };
        v.headers.swap(a, b);
        assert_mismatch(&v, "repeated header order");
        // Whitespace inside a value only matters as "some" or "none".
        let mut v = base.clone();
        v.headers[a].1 = "a b \t  c".into();
        assert!(v.verify().is_ok());
        v.headers[a].1 = "ab c".into();
        assert_mismatch(&v, "whitespace removed inside a value");
    }

    #[test]
    fn aws_test_suite_vectors() {
        // get-vanilla and get-vanilla-query-order-key-case from AWS's SigV4 test suite
        // (service "service", 2015-08-30T12:36:00Z); published signatures.
        let keys = [Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: SECRET.into(),
        }];
        for (query, sig) in [
            (
                "",
                "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
            ),
            (
                "Param2=value2&Param1=value1",
                "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
            ),
        ] {
            let headers = vec![
                ("Host".to_string(), "example.amazonaws.com".to_string()),
                ("X-Amz-Date".to_string(), "20150830T123600Z".to_string()),
                (
                    "Authorization".to_string(),
                    format!(
                        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/\
                         aws4_request, SignedHeaders=host;x-amz-date, Signature={sig}"
                    ),
                ),
            ];
            let req = SignedRequest {
                method: "GET",
                path: "/",
                query,
                headers: &headers,
                body: b"",
            };
            let now = at("20150830T123600Z");
            assert!(
                verify_for_service(&req, &keys, now, "service").is_ok(),
                "{query}"
            );
            assert_eq!(
                verify(&req, &keys, now),
                Err(SigV4Error::WrongService {
                    service: "service".into()
                })
            );
        }
    }

    #[test]
    fn canonical_uri_is_normalised_and_double_encoded() {
        assert_eq!(
            canonical_uri("/2015-03-31/functions/my-fn%3Aprod/invocations"),
            "/2015-03-31/functions/my-fn%253Aprod/invocations"
        );
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(canonical_uri("/"), "/");
        assert_eq!(canonical_uri("//a/./b/../c/"), "/a/c/");
        assert_eq!(canonical_uri("/a/.."), "/");
        assert_eq!(canonical_uri("/$LATEST ~x"), "/%24LATEST%20~x");
        assert_eq!(canonical_uri("/ሴ"), "/%E1%88%B4");
    }

    #[test]
    fn canonical_query_reencodes_and_sorts() {
        assert_eq!(canonical_query(""), "");
        assert_eq!(canonical_query("Qualifier=$LATEST"), "Qualifier=%24LATEST");
        assert_eq!(
            canonical_query("Qualifier=%24LATEST"),
            "Qualifier=%24LATEST"
        );
        assert_eq!(canonical_query("b=2&a=1&a=0"), "a=0&a=1&b=2");
        // Sorted by key first: "a" before "a-b" although "a-b=" < "a=" as strings.
        assert_eq!(canonical_query("a-b=1&a=2"), "a=2&a-b=1");
        assert_eq!(canonical_query("flag&x="), "flag=&x=");
        assert_eq!(canonical_query("m=a%2fb%2Bc+d%zz"), "m=a%2Fb%2Bc%2Bd%25zz");
        assert_eq!(canonical_query("&&a=1&"), "a=1");
    }

    #[test]
    fn header_values_are_trimmed_like_python_split() {
        let mut s = String::new();
        push_trimmed(&mut s, "  a \t b\r\n c\u{1f}d  ");
        assert_eq!(s, "a b c d");
    }

    #[test]
    fn amz_dates_round_trip() {
        for d in [
            "19700101T000000Z",
            "20000229T235959Z",
            "20240101T001000Z",
            "21000301T120000Z",
        ] {
            assert_eq!(format_amz_date(parse_amz_date(d).unwrap()), d);
        }
        assert_eq!(parse_amz_date("20240101T001000Z"), Some(1_704_067_800));
        for bad in [
            "2024010T001000Z",
            "20240101 001000Z",
            "20240101T001000",
            "20230229T000000Z",
            "20241301T000000Z",
            "20240101T240000Z",
            "2024010aT001000Z",
        ] {
            assert_eq!(parse_amz_date(bad), None, "{bad}");
        }
    }

    #[test]
    fn debug_output_hides_secrets() {
        let k = &keys()[1];
        let s = format!("{k:?}");
        assert!(s.contains("AKIDEXAMPLE") && !s.contains(SECRET), "{s}");
        let v = vector("get_function_session_token");
        let req = SignedRequest {
            method: &v.method,
            path: &v.path,
            query: &v.query,
            headers: &v.headers,
            body: b"",
        };
        let s = format!("{req:?}");
        assert!(
            !s.contains("Signature=") && !s.contains("EXAMPLETOKEN"),
            "{s}"
        );
    }
}
