//! Incremental HTTP/1.1 request parser (sans-IO), for Runtime API and control API connections.
//!
//! Owns: the input buffer of one connection and the framing of the requests in it — the head
//! (parsed by `httparse`), `Content-Length` and `chunked` bodies (chunk extensions ignored,
//! trailers kept), keep-alive, `Expect: 100-continue` detection, pipelined requests left in the
//! buffer for the next [`RequestParser::step`].
//!
//! Does not: route, answer, or touch sockets; the caller feeds bytes ([`RequestParser::read_from`])
//! and decides, after each head, whether the body is kept (with a limit) or discarded.
//!
//! Limits: head ≤ [`MAX_HEAD`] bytes and ≤ [`MAX_HEADERS`] fields, chunk-size line ≤
//! [`MAX_CHUNK_LINE`], trailers ≤ [`MAX_HEAD`] and ≤ [`MAX_HEADERS`], at most [`MAX_BUFFERED`]
//! unparsed input bytes, at most [`MAX_DISCARD`] discarded body bytes per request. A kept body
//! never grows past its limit: past it the parser reports [`Step::BodyTooLarge`] once and discards
//! the rest. Unsupported: transfer codings other than a single `chunked`, a request carrying both
//! `Content-Length` and `Transfer-Encoding` (rejected, as request-smuggling defence), bodies
//! framed by connection close.

use std::io::{self, Read};

/// Request line plus header fields, in bytes.
pub const MAX_HEAD: usize = 16 * 1024;
/// Header fields per request (and trailer fields per chunked body).
pub const MAX_HEADERS: usize = 64;
/// A chunk-size line including extensions.
pub const MAX_CHUNK_LINE: usize = 4 * 1024;
/// Unparsed input kept per connection; reading stops while this much waits.
pub const MAX_BUFFERED: usize = 80 * 1024;
/// Body bytes thrown away per request (rejected requests, the rest of an oversize body).
pub const MAX_DISCARD: u64 = 16 * 1024 * 1024;
/// Size of one read.
const READ_CHUNK: usize = 64 * 1024;
/// An empty buffer larger than this is freed rather than kept for the next request.
const RETAINED_CAPACITY: usize = 4 * 1024;

thread_local! {
    /// Where every read of this thread lands first (zeroed once, then only overwritten).
    static READ_SCRATCH: std::cell::RefCell<Box<[u8]>> =
        std::cell::RefCell::new(vec![0u8; READ_CHUNK].into_boxed_slice());
}

/// Why a request could not be framed; every one ends the connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    #[error("malformed request head: {0}")]
    BadHead(String),
    #[error("request head larger than {MAX_HEAD} bytes")]
    HeadTooLarge,
    #[error("more than {MAX_HEADERS} header fields")]
    TooManyHeaders,
    #[error("invalid content-length {0:?}")]
    BadContentLength(String),
    #[error("unsupported transfer-encoding {0:?}")]
    BadTransferEncoding(String),
    #[error("both content-length and transfer-encoding present")]
    AmbiguousLength,
    #[error("invalid chunk size line")]
    BadChunkSize,
    #[error("chunk data not followed by crlf")]
    BadChunkEnd,
    #[error("malformed trailer section: {0}")]
    BadTrailers(String),
    #[error("more than {MAX_DISCARD} body bytes to discard")]
    DiscardLimit,
}

/// A parsed request line and header section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    pub method: String,
    /// The request target as sent (path and optional query).
    pub target: String,
    /// HTTP/1.x minor version.
    pub minor_version: u8,
    /// Header fields in order, names as sent.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The connection stays open after this request's answer.
    pub keep_alive: bool,
    /// The client waits for `100 Continue` before sending the body.
    pub expect_continue: bool,
    /// `Some(n)` for `Content-Length: n`, `None` for chunked.
    pub content_length: Option<u64>,
}

impl RequestHead {
    /// The first value of a header as text (names compare case-insensitively); `None` if absent
    /// or not UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        header_in(&self.headers, name)
    }

    /// Whether a body follows the head.
    pub fn has_body(&self) -> bool {
        self.content_length != Some(0)
    }
}

/// The first value of `name` in a field list, as trimmed text.
pub fn header_in<'a>(fields: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
        .map(str::trim)
}

/// What one call of [`RequestParser::step`] produced.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// More input is needed.
    NeedMore,
    /// A request head; its body is discarded unless [`RequestParser::keep_body`] is called now.
    Head(RequestHead),
    /// The kept body passed its limit; the rest of it is being discarded. Reported once.
    BodyTooLarge,
    /// The body ended; the kept body is in [`RequestParser::take_body`].
    Done { trailers: Vec<(String, Vec<u8>)> },
    /// The input cannot be framed; answer 400 and close.
    Error(HttpError),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Head,
    /// `Content-Length` body with this many bytes left.
    Fixed(u64),
    ChunkSize,
    ChunkData(u64),
    ChunkEnd,
    Trailers,
    /// Framing broke; nothing more is parsed.
    Failed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sink {
    Keep { limit: usize },
    Discard,
}

/// The parser of one connection.
#[derive(Debug)]
pub struct RequestParser {
    buf: Vec<u8>,
    pos: usize,
    state: State,
    sink: Sink,
    body: Vec<u8>,
    discarded: u64,
    too_large_pending: bool,
}

impl Default for RequestParser {
    fn default() -> Self {
        Self::new()
    }
}

impl RequestParser {
    pub fn new() -> Self {
        Self {
            buf: Vec::new(),
            pos: 0,
            state: State::Head,
            sink: Sink::Discard,
            body: Vec::new(),
            discarded: 0,
            too_large_pending: false,
        }
    }

    /// Unparsed bytes held.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.pos
    }

    /// Whether another read fits under [`MAX_BUFFERED`].
    pub fn wants_input(&self) -> bool {
        self.buffered() + READ_CHUNK <= MAX_BUFFERED && self.state != State::Failed
    }

    /// Whether a request has started but not ended (a head or body is incomplete).
    pub fn mid_request(&self) -> bool {
        self.state != State::Head || self.buffered() > 0
    }

    /// Whether the parser is past a head and inside its body.
    pub fn in_body(&self) -> bool {
        !matches!(self.state, State::Head | State::Failed)
    }

    /// Appends input (tests and callers that read elsewhere).
    pub fn feed(&mut self, data: &[u8]) {
        self.compact();
        self.buf.extend_from_slice(data);
    }

    /// One `read` into the buffer; returns its result (0 = end of input).
    ///
    /// The read goes through one per-thread scratch chunk and only what arrived is
    /// appended: an idle connection (a thousand idle instances each hold one) keeps no
    /// 64 KiB buffer, and no read pays for zeroing one.
    pub fn read_from<R: Read>(&mut self, r: &mut R) -> io::Result<usize> {
        self.compact();
        READ_SCRATCH.with(|scratch| {
            let mut chunk = scratch.borrow_mut();
            let res = r.read(&mut chunk[..]);
            if let Ok(n) = res {
                self.buf.extend_from_slice(&chunk[..n]);
            }
            res
        })
    }

    fn compact(&mut self) {
        if self.pos == self.buf.len() {
            if self.buf.capacity() > RETAINED_CAPACITY {
                self.buf = Vec::new();
            } else {
                self.buf.clear();
            }
            self.pos = 0;
        } else if self.pos >= READ_CHUNK {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
    }

    /// Keeps the body of the request whose head was just returned, up to `limit` bytes.
    pub fn keep_body(&mut self, limit: usize, content_length: Option<u64>) {
        self.sink = Sink::Keep { limit };
        self.body = Vec::new();
        // A declared length over the limit is known to be too large before any byte arrives;
        // reserving up to the limit avoids regrowing the vector for the common large response.
        match content_length {
            Some(n) if n > limit as u64 => self.overflow(),
            Some(n) => self.body.reserve_exact(n as usize),
            None => {}
        }
    }

    /// The kept body of the request just finished.
    pub fn take_body(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.body)
    }

    fn overflow(&mut self) {
        self.sink = Sink::Discard;
        self.body = Vec::new();
        self.too_large_pending = true;
    }

    fn fail(&mut self, e: HttpError) -> Step {
        self.state = State::Failed;
        self.body = Vec::new();
        Step::Error(e)
    }

    /// Moves `n` available body bytes to the sink.
    fn consume_body(&mut self, n: usize) -> Result<(), HttpError> {
        let start = self.pos;
        self.pos += n;
        match self.sink {
            Sink::Keep { limit } => {
                if self.body.len() + n > limit {
                    self.discarded += (self.body.len() + n) as u64;
                    self.overflow();
                } else {
                    self.body.extend_from_slice(&self.buf[start..start + n]);
                }
            }
            Sink::Discard => self.discarded += n as u64,
        }
        if self.discarded > MAX_DISCARD {
            return Err(HttpError::DiscardLimit);
        }
        Ok(())
    }

    /// Parses as far as the buffered input allows and reports the next thing that happened.
    pub fn step(&mut self) -> Step {
        loop {
            if self.too_large_pending {
                self.too_large_pending = false;
                return Step::BodyTooLarge;
            }
            let avail = self.buf.len() - self.pos;
            match self.state {
                State::Failed => return Step::NeedMore,
                State::Head => return self.parse_head(),
                State::Fixed(0) => return self.finish(Vec::new()),
                State::Fixed(left) => {
                    if avail == 0 {
                        return Step::NeedMore;
                    }
                    let n = avail.min(usize::try_from(left).unwrap_or(usize::MAX));
                    if let Err(e) = self.consume_body(n) {
                        return self.fail(e);
                    }
                    self.state = State::Fixed(left - n as u64);
                }
                State::ChunkSize => {
                    let src = &self.buf[self.pos..];
                    // httparse takes an empty size as zero; a size needs at least one digit.
                    if src.first().is_some_and(|b| !b.is_ascii_hexdigit()) {
                        return self.fail(HttpError::BadChunkSize);
                    }
                    match httparse::parse_chunk_size(src) {
                        Ok(httparse::Status::Complete((used, size))) => {
                            self.pos += used;
                            self.state = if size == 0 {
                                State::Trailers
                            } else {
                                State::ChunkData(size)
                            };
                        }
                        Ok(httparse::Status::Partial) if avail > MAX_CHUNK_LINE => {
                            return self.fail(HttpError::BadChunkSize)
                        }
                        Ok(httparse::Status::Partial) => return Step::NeedMore,
                        Err(_) => return self.fail(HttpError::BadChunkSize),
                    }
                }
                State::ChunkData(left) => {
                    if avail == 0 {
                        return Step::NeedMore;
                    }
                    let n = avail.min(usize::try_from(left).unwrap_or(usize::MAX));
                    if let Err(e) = self.consume_body(n) {
                        return self.fail(e);
                    }
                    self.state = if left == n as u64 {
                        State::ChunkEnd
                    } else {
                        State::ChunkData(left - n as u64)
                    };
                }
                State::ChunkEnd => {
                    if avail < 2 {
                        return Step::NeedMore;
                    }
                    if &self.buf[self.pos..self.pos + 2] != b"\r\n" {
                        return self.fail(HttpError::BadChunkEnd);
                    }
                    self.pos += 2;
                    self.state = State::ChunkSize;
                }
                State::Trailers => {
                    let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
                    let src = &self.buf[self.pos..];
                    match httparse::parse_headers(src, &mut fields) {
                        Ok(httparse::Status::Complete((used, parsed))) => {
                            let trailers = owned_fields(parsed);
                            self.pos += used;
                            return self.finish(trailers);
                        }
                        Ok(httparse::Status::Partial) if avail > MAX_HEAD => {
                            return self.fail(HttpError::BadTrailers("too large".into()))
                        }
                        Ok(httparse::Status::Partial) => return Step::NeedMore,
                        Err(e) => return self.fail(HttpError::BadTrailers(e.to_string())),
                    }
                }
            }
        }
    }

    fn finish(&mut self, trailers: Vec<(String, Vec<u8>)>) -> Step {
        self.state = State::Head;
        self.sink = Sink::Discard;
        self.discarded = 0;
        Step::Done { trailers }
    }

    fn parse_head(&mut self) -> Step {
        let avail = self.buf.len() - self.pos;
        if avail == 0 {
            return Step::NeedMore;
        }
        let mut fields = [httparse::EMPTY_HEADER; MAX_HEADERS];
        let mut req = httparse::Request::new(&mut fields);
        let used = match req.parse(&self.buf[self.pos..]) {
            Ok(httparse::Status::Complete(used)) if used > MAX_HEAD => {
                return self.fail(HttpError::HeadTooLarge)
            }
            Ok(httparse::Status::Complete(used)) => used,
            Ok(httparse::Status::Partial) if avail >= MAX_HEAD => {
                return self.fail(HttpError::HeadTooLarge)
            }
            Ok(httparse::Status::Partial) => return Step::NeedMore,
            Err(httparse::Error::TooManyHeaders) => return self.fail(HttpError::TooManyHeaders),
            Err(e) => return self.fail(HttpError::BadHead(e.to_string())),
        };
        let (Some(method), Some(target), Some(minor_version)) = (req.method, req.path, req.version)
        else {
            return self.fail(HttpError::BadHead("incomplete request line".into()));
        };
        let head = match build_head(method, target, minor_version, req.headers) {
            Ok(h) => h,
            Err(e) => return self.fail(e),
        };
        self.pos += used;
        self.sink = Sink::Discard;
        self.body = Vec::new();
        self.discarded = 0;
        self.state = match head.content_length {
            Some(n) => State::Fixed(n),
            None => State::ChunkSize,
        };
        Step::Head(head)
    }
}

fn owned_fields(fields: &[httparse::Header<'_>]) -> Vec<(String, Vec<u8>)> {
    fields
        .iter()
        .map(|h| (h.name.to_string(), h.value.to_vec()))
        .collect()
}

/// Comma-separated tokens of a header value, trimmed and lower-cased.
fn tokens(value: &[u8]) -> impl Iterator<Item = String> + '_ {
    value
        .split(|b| *b == b',')
        .map(|t| String::from_utf8_lossy(t).trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
}

fn build_head(
    method: &str,
    target: &str,
    minor_version: u8,
    fields: &[httparse::Header<'_>],
) -> Result<RequestHead, HttpError> {
    let mut content_length: Option<u64> = None;
    let mut chunked = false;
    let mut close = minor_version == 0;
    let mut expect_continue = false;
    for h in fields {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            let text = String::from_utf8_lossy(h.value).trim().to_string();
            let n = if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
                text.parse::<u64>().ok()
            } else {
                None
            };
            match (n, content_length) {
                (None, _) => return Err(HttpError::BadContentLength(text)),
                (Some(n), Some(prev)) if n != prev => {
                    return Err(HttpError::BadContentLength(text))
                }
                (Some(n), _) => content_length = Some(n),
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            for t in tokens(h.value) {
                if t != "chunked" || chunked {
                    return Err(HttpError::BadTransferEncoding(t));
                }
                chunked = true;
            }
        } else if name.eq_ignore_ascii_case("connection") {
            for t in tokens(h.value) {
                match t.as_str() {
                    "close" => close = true,
                    "keep-alive" => close = false,
                    _ => {}
                }
            }
        } else if name.eq_ignore_ascii_case("expect") {
            expect_continue = tokens(h.value).any(|t| t == "100-continue");
        }
    }
    if chunked && content_length.is_some() {
        return Err(HttpError::AmbiguousLength);
    }
    Ok(RequestHead {
        method: method.to_string(),
        target: target.to_string(),
        minor_version,
        headers: owned_fields(fields),
        keep_alive: !close,
        // HTTP/1.0 clients do not know 100 Continue.
        expect_continue: expect_continue && minor_version >= 1,
        content_length: if chunked {
            None
        } else {
            Some(content_length.unwrap_or(0))
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(p: &mut RequestParser) -> RequestHead {
        match p.step() {
            Step::Head(h) => h,
            other => panic!("expected head, got {other:?}"),
        }
    }

    #[test]
    fn content_length_body_kept() {
        let mut p = RequestParser::new();
        p.feed(b"POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhel");
        let h = head(&mut p);
        assert_eq!(h.method, "POST");
        assert_eq!(h.target, "/x");
        assert!(h.keep_alive);
        p.keep_body(10, h.content_length);
        assert_eq!(p.step(), Step::NeedMore);
        assert!(p.mid_request());
        p.feed(b"loGET");
        assert_eq!(p.step(), Step::Done { trailers: vec![] });
        assert_eq!(p.take_body(), b"hello");
        // The pipelined bytes stay for the next request.
        assert_eq!(p.step(), Step::NeedMore);
        assert_eq!(p.buffered(), 3);
    }

    #[test]
    fn chunked_with_extensions_and_trailers() {
        let mut p = RequestParser::new();
        p.feed(
            b"POST /r HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
              5;name=val\r\nhello\r\n6\r\n world\r\n0\r\n\
              Lambda-Runtime-Function-Error-Type: Runtime.X\r\n\
              Lambda-Runtime-Function-Error-Body: e30=\r\n\r\n",
        );
        let h = head(&mut p);
        assert_eq!(h.content_length, None);
        p.keep_body(100, None);
        let Step::Done { trailers } = p.step() else {
            panic!("not done")
        };
        assert_eq!(p.take_body(), b"hello world");
        assert_eq!(
            header_in(&trailers, "lambda-runtime-function-error-type"),
            Some("Runtime.X")
        );
        assert_eq!(
            header_in(&trailers, "Lambda-Runtime-Function-Error-Body"),
            Some("e30=")
        );
        assert!(!p.mid_request());
    }

    #[test]
    fn chunked_byte_by_byte() {
        let msg = b"POST /r HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
        let mut p = RequestParser::new();
        let mut got_head = false;
        let mut done = false;
        for b in msg {
            p.feed(&[*b]);
            loop {
                match p.step() {
                    Step::NeedMore => break,
                    Step::Head(_) => {
                        got_head = true;
                        p.keep_body(10, None);
                    }
                    Step::Done { .. } => done = true,
                    other => panic!("{other:?}"),
                }
            }
        }
        assert!(got_head && done);
        assert_eq!(p.take_body(), b"abc");
    }

    #[test]
    fn kept_body_over_limit_reports_once_and_discards() {
        let mut p = RequestParser::new();
        p.feed(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n");
        let _ = head(&mut p);
        p.keep_body(6, None);
        assert_eq!(p.step(), Step::NeedMore);
        p.feed(b"4\r\nefgh\r\n4\r\nijkl\r\n0\r\n\r\n");
        assert_eq!(p.step(), Step::BodyTooLarge);
        assert_eq!(p.step(), Step::Done { trailers: vec![] });
        assert!(p.take_body().is_empty());
    }

    #[test]
    fn declared_length_over_limit_is_reported_before_the_body() {
        let mut p = RequestParser::new();
        p.feed(b"POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n");
        let h = head(&mut p);
        p.keep_body(10, h.content_length);
        assert_eq!(p.step(), Step::BodyTooLarge);
        assert_eq!(p.step(), Step::NeedMore);
        p.feed(b"01234567890");
        assert_eq!(p.step(), Step::Done { trailers: vec![] });
    }

    #[test]
    fn discard_limit_is_enforced() {
        let mut p = RequestParser::new();
        p.feed(
            format!(
                "POST / HTTP/1.1\r\nContent-Length: {}\r\n\r\n",
                MAX_DISCARD + 10
            )
            .as_bytes(),
        );
        let _ = head(&mut p);
        let chunk = vec![0u8; 60_000];
        let mut err = None;
        for _ in 0..400 {
            p.feed(&chunk);
            match p.step() {
                Step::NeedMore => {}
                Step::Error(e) => {
                    err = Some(e);
                    break;
                }
                other => panic!("{other:?}"),
            }
        }
        assert_eq!(err, Some(HttpError::DiscardLimit));
    }

    #[test]
    fn expect_and_connection_headers() {
        let mut p = RequestParser::new();
        p.feed(b"POST / HTTP/1.1\r\nExpect: 100-Continue\r\nConnection: close\r\nContent-Length: 1\r\n\r\n");
        let h = head(&mut p);
        assert!(h.expect_continue);
        assert!(!h.keep_alive);
        let mut p = RequestParser::new();
        p.feed(b"GET / HTTP/1.0\r\n\r\n");
        let h = head(&mut p);
        assert!(!h.keep_alive);
        assert!(!h.has_body());
        let mut p = RequestParser::new();
        p.feed(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
        assert!(head(&mut p).keep_alive);
    }

    fn error_of(input: &[u8]) -> HttpError {
        let mut p = RequestParser::new();
        p.feed(input);
        loop {
            match p.step() {
                Step::Head(_) => p.keep_body(1000, None),
                Step::Error(e) => return e,
                other => panic!("expected an error, got {other:?}"),
            }
        }
    }

    #[test]
    fn malformed_input_is_an_error() {
        assert!(matches!(
            error_of(b"\x00\x01garbage\r\n\r\n"),
            HttpError::BadHead(_)
        ));
        assert!(matches!(
            error_of(b"POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n"),
            HttpError::BadContentLength(_)
        ));
        assert!(matches!(
            error_of(b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n"),
            HttpError::BadContentLength(_)
        ));
        assert_eq!(
            error_of(b"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n"),
            HttpError::AmbiguousLength
        );
        assert!(matches!(
            error_of(b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"),
            HttpError::BadTransferEncoding(_)
        ));
        assert_eq!(
            error_of(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
            HttpError::BadChunkSize
        );
        assert_eq!(
            error_of(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n;x\r\n"),
            HttpError::BadChunkSize
        );
        assert_eq!(
            error_of(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nab\r\n"),
            HttpError::BadChunkEnd
        );
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..=MAX_HEADERS {
            many.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert_eq!(error_of(&many), HttpError::TooManyHeaders);
    }

    #[test]
    fn head_over_limit_is_an_error_without_its_end() {
        let mut p = RequestParser::new();
        p.feed(b"GET / HTTP/1.1\r\nX-Big: ");
        assert_eq!(p.step(), Step::NeedMore);
        p.feed(&vec![b'a'; MAX_HEAD]);
        assert_eq!(p.step(), Step::Error(HttpError::HeadTooLarge));
        assert!(!p.wants_input());
    }

    #[test]
    fn read_from_respects_eof() {
        let mut p = RequestParser::new();
        let mut src: &[u8] = b"GET / HTTP/1.1\r\n\r\n";
        assert_eq!(p.read_from(&mut src).unwrap(), 18);
        assert_eq!(p.read_from(&mut src).unwrap(), 0);
        assert_eq!(head(&mut p).method, "GET");
        assert_eq!(p.step(), Step::Done { trailers: vec![] });
    }
}
