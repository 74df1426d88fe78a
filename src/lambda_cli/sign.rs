//! SigV4 signing of the client's TCP requests, the counterpart of
//! [`crate::control::sigv4::verify`] (whose canonicalisation is private to the verifier).
//!
//! Signs `host`, `x-amz-date`, `x-amz-content-sha256` and `content-type` when present, for
//! the service `lambda`, the way botocore does for non-S3 services: the canonical URI is the
//! already-encoded path encoded once more, the canonical query is each pair encoded and
//! sorted.
//!
//! Not done: session tokens, presigning, profiles or `~/.aws/credentials` (keys come from
//! the environment only).

use std::time::SystemTime;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::http::encode;
use crate::control::sigv4::{Credentials, ALGORITHM, SERVICE};

type HmacSha256 = Hmac<Sha256>;

/// What is signed of a request.
#[derive(Debug, Clone, Copy)]
pub struct ToSign<'a> {
    pub method: &'a str,
    /// Percent-encoded path.
    pub path: &'a str,
    /// Query pairs, not encoded.
    pub query: &'a [(String, String)],
    pub body: &'a [u8],
    pub region: &'a str,
}

/// `HEARTH_ACCESS_KEY_ID`/`HEARTH_SECRET_ACCESS_KEY`, else the `AWS_*` pair.
pub fn credentials_from_env() -> Option<Credentials> {
    let pair = |id: &str, secret: &str| -> Option<Credentials> {
        let id = std::env::var(id).ok().filter(|s| !s.is_empty())?;
        let secret = std::env::var(secret).ok().filter(|s| !s.is_empty())?;
        Some(Credentials {
            access_key_id: id,
            secret_access_key: secret,
        })
    };
    pair("HEARTH_ACCESS_KEY_ID", "HEARTH_SECRET_ACCESS_KEY")
        .or_else(|| pair("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"))
}

/// `HEARTH_REGION`, `AWS_REGION`, `AWS_DEFAULT_REGION`, else the daemon's default. The
/// daemon accepts any region in the scope; this only makes the scope look like the ARNs.
pub fn region_from_env() -> String {
    ["HEARTH_REGION", "AWS_REGION", "AWS_DEFAULT_REGION"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| crate::config::DEFAULT_REGION.to_string())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hmac(key: &[u8], msg: &str) -> Vec<u8> {
    // HMAC takes keys of any length.
    let mut mac = HmacSha256::new_from_slice(key).expect("hmac accepts keys of any length");
    mac.update(msg.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// `YYYYMMDDTHHMMSSZ` of `now`.
fn amz_date(now: SystemTime) -> String {
    // `2024-01-28T12:34:56.789Z` → `20240128T123456Z`.
    let iso = crate::function::env::iso8601_utc(now);
    let mut out: String = iso[..19]
        .chars()
        .filter(|c| *c != '-' && *c != ':')
        .collect();
    out.push('Z');
    out
}

/// Adds `X-Amz-Date`, `X-Amz-Content-SHA256` and `Authorization` to `headers` (which must
/// hold `Host`).
pub fn sign(
    headers: &mut Vec<(String, String)>,
    req: &ToSign<'_>,
    creds: &Credentials,
    now: SystemTime,
) {
    let date_time = amz_date(now);
    let date = &date_time[..8];
    let payload_hash = hex(&Sha256::digest(req.body));
    headers.push(("X-Amz-Date".into(), date_time.clone()));
    headers.push(("X-Amz-Content-SHA256".into(), payload_hash.clone()));

    let wanted = ["content-type", "host", "x-amz-content-sha256", "x-amz-date"];
    let mut signed: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| {
            (
                k.to_ascii_lowercase(),
                v.split_whitespace().collect::<Vec<_>>().join(" "),
            )
        })
        .filter(|(k, _)| wanted.contains(&k.as_str()))
        .collect();
    signed.sort();
    let names: Vec<&str> = signed.iter().map(|(k, _)| k.as_str()).collect();
    let names = names.join(";");

    let uri: String = req
        .path
        .bytes()
        .map(|b| {
            if b == b'/' {
                "/".to_string()
            } else {
                encode(&(b as char).to_string())
            }
        })
        .collect();
    let mut query: Vec<(String, String)> = req
        .query
        .iter()
        .map(|(k, v)| (encode(k), encode(v)))
        .collect();
    query.sort();
    let query = query
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let mut canonical = format!("{}\n{uri}\n{query}\n", req.method);
    for (k, v) in &signed {
        canonical.push_str(&format!("{k}:{v}\n"));
    }
    canonical.push_str(&format!("\n{names}\n{payload_hash}"));

    let scope = format!("{date}/{}/{SERVICE}/aws4_request", req.region);
    let string_to_sign = format!(
        "{ALGORITHM}\n{date_time}\n{scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let k_date = hmac(format!("AWS4{}", creds.secret_access_key).as_bytes(), date);
    let k_region = hmac(&k_date, req.region);
    let k_service = hmac(&k_region, SERVICE);
    let k_signing = hmac(&k_service, "aws4_request");
    let signature = hex(&hmac(&k_signing, &string_to_sign));
    headers.push((
        "Authorization".into(),
        format!(
            "{ALGORITHM} Credential={}/{scope}, SignedHeaders={names}, Signature={signature}",
            creds.access_key_id
        ),
    ));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::sigv4::{verify, SigV4Error, SignedRequest};

    fn creds() -> Credentials {
        Credentials {
            access_key_id: "AKIDTEST".into(),
            secret_access_key: "secret".into(),
        }
    }

    /// Signs a request the way [`super::super::http::send`] writes it and verifies it.
    fn sign_and_verify(
        method: &str,
        path: &str,
        query: &[(String, String)],
        body: &[u8],
        key: &Credentials,
    ) -> Result<(), SigV4Error> {
        let now = SystemTime::now();
        let mut headers = vec![
            ("Host".to_string(), "127.0.0.1:9001".to_string()),
            ("Content-Type".to_string(), "application/json".to_string()),
        ];
        sign(
            &mut headers,
            &ToSign {
                method,
                path,
                query,
                body,
                region: "eu-west-1",
            },
            &creds(),
            now,
        );
        let raw_query = query
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let req = SignedRequest {
            method,
            path,
            query: &raw_query,
            headers: &headers,
            body,
        };
        let v = verify(&req, std::slice::from_ref(key), now)?;
        assert_eq!(v.region, "eu-west-1");
        Ok(())
    }

    #[test]
    fn the_verifier_accepts_our_signatures() {
        sign_and_verify(
            "POST",
            "/2015-03-31/functions",
            &[],
            br#"{"FunctionName":"f"}"#,
            &creds(),
        )
        .unwrap();
        sign_and_verify(
            "GET",
            "/2015-03-31/functions/f%3Alive",
            &[
                ("Qualifier".into(), "$LATEST".into()),
                ("MaxItems".into(), "5".into()),
            ],
            b"",
            &creds(),
        )
        .unwrap();
        let wrong = Credentials {
            secret_access_key: "other".into(),
            ..creds()
        };
        assert!(matches!(
            sign_and_verify("GET", "/2015-03-31/functions", &[], b"", &wrong),
            Err(SigV4Error::SignatureMismatch { .. })
        ));
    }

    #[test]
    fn amz_dates_are_basic_iso8601() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_706_445_296);
        assert_eq!(amz_date(t), "20240128T123456Z");
    }
}
