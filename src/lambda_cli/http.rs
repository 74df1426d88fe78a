//! The client side of the control API: one blocking HTTP/1.1 request per connection over
//! the daemon's Unix socket or TCP, SigV4-signed on TCP (see [`super::sign`]).
//!
//! Owns: choosing the endpoint (`--endpoint`, `HEARTH_ENDPOINT`, else
//! `$HEARTH_RUN_DIR/hearth.sock` or `/run/hearth/hearth.sock`), writing the request, reading
//! the response head and its `Content-Length` body.
//!
//! Limits: responses must carry `Content-Length` (the daemon always sends it; a response
//! without one is read to EOF); no TLS, no chunked bodies, one request per connection; a
//! response head is at most 64 KB.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::time::Duration;

use super::sign;

/// Where the daemon is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// The daemon's control socket (no signature needed).
    Unix(PathBuf),
    /// `host:port` of a `--listen` TCP listener (requests are signed).
    Tcp(String),
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Unix(p) => write!(f, "unix:{}", p.display()),
            Endpoint::Tcp(a) => write!(f, "http://{a}"),
        }
    }
}

/// Longest response head read.
const MAX_HEAD: usize = 64 * 1024;
/// How long a reply may take: above Lambda's 900 s function timeout plus a cold start.
const READ_TIMEOUT: Duration = Duration::from_secs(960);

/// Why a request got no HTTP answer.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The endpoint string is not `unix:PATH` or `http://HOST:PORT`.
    #[error("--endpoint must be unix:PATH or http://HOST:PORT, got {0:?}")]
    BadEndpoint(String),
    /// Nobody listens there.
    #[error("cannot reach the daemon at {endpoint}: {source} (is `hearth serve` running?)")]
    Connect {
        endpoint: Endpoint,
        source: std::io::Error,
    },
    /// The connection failed mid-request.
    #[error("talking to the daemon at {endpoint}: {source}")]
    Io {
        endpoint: Endpoint,
        source: std::io::Error,
    },
    /// The answer is not HTTP/1.1 as the daemon writes it.
    #[error("malformed response from the daemon at {endpoint}: {detail}")]
    Malformed { endpoint: Endpoint, detail: String },
    /// TCP needs a key to sign with.
    #[error("signing for {endpoint} needs HEARTH_ACCESS_KEY_ID and HEARTH_SECRET_ACCESS_KEY (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)")]
    NoCredentials { endpoint: Endpoint },
}

impl Endpoint {
    /// `--endpoint`, else `$HEARTH_ENDPOINT`, else the default socket.
    pub fn resolve(flag: Option<&str>) -> Result<Endpoint, HttpError> {
        let env = std::env::var("HEARTH_ENDPOINT")
            .ok()
            .filter(|s| !s.is_empty());
        match flag.map(str::to_string).or(env) {
            Some(s) => Endpoint::parse(&s),
            None => {
                let run = std::env::var_os("HEARTH_RUN_DIR")
                    .filter(|s| !s.is_empty())
                    .map(PathBuf::from)
                    .unwrap_or_else(|| PathBuf::from(crate::config::DEFAULT_RUN_DIR));
                Ok(Endpoint::Unix(run.join("hearth.sock")))
            }
        }
    }

    /// `unix:PATH` or `http://HOST:PORT[/]`.
    pub fn parse(s: &str) -> Result<Endpoint, HttpError> {
        if let Some(p) = s.strip_prefix("unix:") {
            let p = p.strip_prefix("//").unwrap_or(p);
            if !p.is_empty() {
                return Ok(Endpoint::Unix(PathBuf::from(p)));
            }
        } else if let Some(a) = s.strip_prefix("http://") {
            let a = a.trim_end_matches('/');
            if !a.is_empty() && !a.contains('/') && a.rsplit_once(':').is_some() {
                return Ok(Endpoint::Tcp(a.to_string()));
            }
        }
        Err(HttpError::BadEndpoint(s.to_string()))
    }
}

/// A request: `path` is already percent-encoded, `query` pairs are not.
#[derive(Debug, Clone, Default)]
pub struct Request {
    pub method: &'static str,
    pub path: String,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// A response as received.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header named `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
pub fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Sends `req` and reads the whole answer.
pub fn send(endpoint: &Endpoint, req: &Request) -> Result<Response, HttpError> {
    let query = req
        .query
        .iter()
        .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let host = match endpoint {
        Endpoint::Unix(_) => "hearth".to_string(),
        Endpoint::Tcp(a) => a.clone(),
    };
    let mut headers = vec![("Host".to_string(), host.clone())];
    headers.extend(req.headers.iter().cloned());
    if let Endpoint::Tcp(_) = endpoint {
        let creds = sign::credentials_from_env().ok_or_else(|| HttpError::NoCredentials {
            endpoint: endpoint.clone(),
        })?;
        sign::sign(
            &mut headers,
            &sign::ToSign {
                method: req.method,
                path: &req.path,
                query: &req.query,
                body: &req.body,
                region: &sign::region_from_env(),
            },
            &creds,
            std::time::SystemTime::now(),
        );
    }
    let mut head = format!(
        "{} {}{}{} HTTP/1.1\r\n",
        req.method,
        req.path,
        if query.is_empty() { "" } else { "?" },
        query
    );
    for (k, v) in &headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    // No `Connection: close`: the answer is framed by its Content-Length and the
    // connection closed when this function returns (older daemons dropped a closing
    // connection while its invocation still ran).
    head.push_str(&format!("Content-Length: {}\r\n\r\n", req.body.len()));

    let connect = |source| HttpError::Connect {
        endpoint: endpoint.clone(),
        source,
    };
    let mut stream: Box<dyn ReadWrite> = match endpoint {
        Endpoint::Unix(p) => {
            let s = UnixStream::connect(p).map_err(connect)?;
            s.set_read_timeout(Some(READ_TIMEOUT)).map_err(connect)?;
            Box::new(s)
        }
        Endpoint::Tcp(a) => {
            let s = std::net::TcpStream::connect(a.as_str()).map_err(connect)?;
            s.set_read_timeout(Some(READ_TIMEOUT)).map_err(connect)?;
            Box::new(s)
        }
    };
    let io = |source| HttpError::Io {
        endpoint: endpoint.clone(),
        source,
    };
    stream.write_all(head.as_bytes()).map_err(io)?;
    stream.write_all(&req.body).map_err(io)?;
    stream.flush().map_err(io)?;
    read_response(&mut stream, endpoint)
}

/// Both halves of a stream, boxed.
trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// Reads one response: head, then `Content-Length` bytes (or to EOF without one).
fn read_response(r: &mut dyn Read, endpoint: &Endpoint) -> Result<Response, HttpError> {
    let malformed = |detail: String| HttpError::Malformed {
        endpoint: endpoint.clone(),
        detail,
    };
    let io = |source| HttpError::Io {
        endpoint: endpoint.clone(),
        source,
    };
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    loop {
        let mut hdrs = [httparse::EMPTY_HEADER; 64];
        let mut resp = httparse::Response::new(&mut hdrs);
        match resp.parse(&buf) {
            Ok(httparse::Status::Complete(n)) => {
                let status = resp.code.unwrap_or(0);
                let headers: Vec<(String, String)> = resp
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_string(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect();
                // `100 Continue` is never asked for; skip it should a proxy send one.
                if status == 100 {
                    buf.drain(..n);
                    continue;
                }
                let mut body = buf[n..].to_vec();
                let len = headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                    .map(|(_, v)| v.trim().parse::<usize>())
                    .transpose()
                    .map_err(|_| malformed("bad Content-Length".into()))?;
                match len {
                    Some(len) => {
                        while body.len() < len {
                            let got = r.read(&mut chunk).map_err(io)?;
                            if got == 0 {
                                return Err(malformed(format!(
                                    "connection closed after {} of {len} body bytes",
                                    body.len()
                                )));
                            }
                            body.extend_from_slice(&chunk[..got]);
                        }
                        body.truncate(len);
                    }
                    None => {
                        r.read_to_end(&mut body).map_err(io)?;
                    }
                }
                return Ok(Response {
                    status,
                    headers,
                    body,
                });
            }
            Ok(httparse::Status::Partial) => {}
            Err(e) => return Err(malformed(e.to_string())),
        }
        if buf.len() > MAX_HEAD {
            return Err(malformed("response head over 64 KB".into()));
        }
        let got = r.read(&mut chunk).map_err(io)?;
        if got == 0 {
            return Err(malformed(if buf.is_empty() {
                "connection closed without a response".into()
            } else {
                "connection closed inside the response head".into()
            }));
        }
        buf.extend_from_slice(&chunk[..got]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse() {
        assert_eq!(
            Endpoint::parse("unix:/run/h.sock").unwrap(),
            Endpoint::Unix("/run/h.sock".into())
        );
        assert_eq!(
            Endpoint::parse("http://127.0.0.1:9001/").unwrap(),
            Endpoint::Tcp("127.0.0.1:9001".into())
        );
        for bad in [
            "",
            "unix:",
            "http://",
            "https://x:1",
            "http://x/y",
            "/run/h.sock",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn responses_are_read_by_content_length() {
        let ep = Endpoint::Tcp("x:1".into());
        let raw = b"HTTP/1.1 404 Not Found\r\nx-amzn-ErrorType: ResourceNotFoundException\r\nContent-Length: 5\r\n\r\nhello trailing";
        let r = read_response(&mut &raw[..], &ep).unwrap();
        assert_eq!(r.status, 404);
        assert_eq!(
            r.header("X-AMZN-ERRORTYPE"),
            Some("ResourceNotFoundException")
        );
        assert_eq!(r.body, b"hello");
        let short = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc";
        assert!(read_response(&mut &short[..], &ep).is_err());
        assert!(read_response(&mut &b""[..], &ep).is_err());
    }

    #[test]
    fn names_are_percent_encoded() {
        assert_eq!(encode("my-fn_1.x~"), "my-fn_1.x~");
        assert_eq!(encode("f:live"), "f%3Alive");
        assert_eq!(encode("$LATEST"), "%24LATEST");
    }
}
