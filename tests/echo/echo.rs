//! `hearth-echo`: the smallest useful custom-runtime `bootstrap` — a Lambda Runtime API
//! client in plain `std` that answers every event with the event itself. Built statically,
//! it is the `provided` workload of the benchmarks (what a cold start costs when the
//! function's own start-up is nearly free) and a fixture of the tests.
//!
//! One keep-alive TCP connection to `AWS_LAMBDA_RUNTIME_API`; `GET …/invocation/next`,
//! then `POST …/invocation/<id>/response` with the event as the body. Only
//! `Content-Length` bodies are read (the server never chunks `/next`). On any protocol
//! surprise it prints why and exits 1, as a runtime should.
//!
//! An event containing `"sleep_ms": N` is answered after sleeping N ms (a plain substring
//! match, no JSON parser): `hearth bench density` holds many instances busy at once that way.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::ExitCode;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hearth-echo: {e}");
            ExitCode::from(1)
        }
    }
}

fn run() -> Result<(), String> {
    let api = std::env::var("AWS_LAMBDA_RUNTIME_API")
        .map_err(|_| "AWS_LAMBDA_RUNTIME_API is not set".to_string())?;
    let stream = TcpStream::connect(&api).map_err(|e| format!("connecting to {api}: {e}"))?;
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut writer = stream.try_clone().map_err(|e| e.to_string())?;
    let mut reader = BufReader::new(stream);
    loop {
        write!(
            writer,
            "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: {api}\r\n\r\n"
        )
        .map_err(|e| format!("sending /next: {e}"))?;
        let (status, headers, body) = read_response(&mut reader)?;
        if status != 200 {
            return Err(format!("/next answered {status}"));
        }
        let id = header(&headers, "lambda-runtime-aws-request-id")
            .ok_or("no Lambda-Runtime-Aws-Request-Id")?
            .to_string();
        if let Some(ms) = sleep_ms(&body) {
            std::thread::sleep(std::time::Duration::from_millis(ms));
        }
        let mut request = format!(
            "POST /2018-06-01/runtime/invocation/{id}/response HTTP/1.1\r\nHost: {api}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .into_bytes();
        request.extend_from_slice(&body);
        writer
            .write_all(&request)
            .map_err(|e| format!("posting the response: {e}"))?;
        let (status, _, _) = read_response(&mut reader)?;
        if status != 202 {
            return Err(format!("/response answered {status}"));
        }
    }
}

type Headers = Vec<(String, String)>;

/// N of the first `"sleep_ms": N` in the event, if any.
fn sleep_ms(event: &[u8]) -> Option<u64> {
    let key = b"\"sleep_ms\"";
    let at = event.windows(key.len()).position(|w| w == key)? + key.len();
    let rest = &event[at..];
    let rest = &rest[rest.iter().position(|b| !b" \t\r\n:".contains(b))?..];
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()
}

fn header<'a>(headers: &'a Headers, name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// Reads one HTTP/1.1 response: status, headers, `Content-Length` body.
fn read_response(reader: &mut impl BufRead) -> Result<(u16, Headers, Vec<u8>), String> {
    let mut line = String::new();
    if reader.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
        return Err("the runtime API closed the connection".into());
    }
    let status: u16 = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {line:?}"))?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).map_err(|e| e.to_string())?;
        let l = line.trim_end();
        if l.is_empty() {
            break;
        }
        if let Some((k, v)) = l.split_once(':') {
            headers.push((k.trim().to_string(), v.trim().to_string()));
        }
    }
    let len: usize = header(&headers, "content-length")
        .map(|v| v.parse().map_err(|_| format!("bad Content-Length {v:?}")))
        .transpose()?
        .unwrap_or(0);
    let mut body = vec![0; len];
    reader
        .read_exact(&mut body)
        .map_err(|e| format!("reading a {len}-byte body: {e}"))?;
    Ok((status, headers, body))
}

#[cfg(test)]
mod tests {
    use super::sleep_ms;

    #[test]
    fn sleep_is_found_in_the_event() {
        assert_eq!(sleep_ms(br#"{"sleep_ms": 250}"#), Some(250));
        assert_eq!(sleep_ms(br#"{"a":1,"sleep_ms":7}"#), Some(7));
        assert_eq!(sleep_ms(br#"{"k": 1}"#), None);
        assert_eq!(sleep_ms(br#"{"sleep_ms": "x"}"#), None);
    }
}
