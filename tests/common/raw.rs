//! Raw HTTP/1.1 over a socket, for requests an HTTP client refuses to send
//! (NUL bytes, invalid percent-encodings, bodies longer or shorter than
//! their `Content-Length`, `..` left as is), for TLS connections, and for
//! chunked bodies whose parts the test sends when it chooses
//! ([`StreamedRequest`]).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

/// A response as read off the wire.
#[derive(Debug, Clone)]
pub struct RawResponse {
    /// The status code.
    pub status: u16,
    /// The headers, names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl RawResponse {
    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The `code` of the first error of an OCI error body, if it is one.
    pub fn error_code(&self) -> Option<String> {
        let json: serde_json::Value = serde_json::from_slice(&self.body).ok()?;
        Some(json["errors"][0]["code"].as_str()?.to_owned())
    }
}

/// Read one response (for a request that was not `HEAD`). `Ok(None)` if
/// the connection was closed before a status line.
pub fn read_response(r: &mut impl BufRead) -> io::Result<Option<RawResponse>> {
    let mut line = String::new();
    if r.read_line(&mut line)? == 0 {
        return Ok(None);
    }
    let status: u16 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other(format!("bad status line {line:?}")))?;
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        r.read_line(&mut h)?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':').unwrap_or((h, ""));
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
    }
    let mut resp = RawResponse {
        status,
        headers,
        body: Vec::new(),
    };
    if resp.header("transfer-encoding") == Some("chunked") {
        loop {
            let mut size = String::new();
            r.read_line(&mut size)?;
            let n = usize::from_str_radix(size.trim(), 16).map_err(io::Error::other)?;
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk)?;
            if n == 0 {
                break;
            }
            resp.body.extend_from_slice(&chunk[..n]);
        }
    } else if let Some(n) = resp.header("content-length") {
        let n: usize = n.parse().map_err(io::Error::other)?;
        resp.body = vec![0; n];
        r.read_exact(&mut resp.body)?;
    }
    Ok(Some(resp))
}

/// A plain TCP connection with a 20 s read timeout.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.set_nodelay(true).unwrap();
    s
}

/// Send `request` as is on a new connection, optionally half-close it, and
/// read one response (`None`: closed without one). Errors such as a reset
/// are `None` too.
///
/// The request is written from another thread while the response is read,
/// so that an answer sent before the whole request was read (a 413 for a
/// declared length over a limit, say) is seen.
pub fn exchange(addr: SocketAddr, request: &[u8], half_close: bool) -> Option<RawResponse> {
    let s = connect(addr);
    let mut w = s.try_clone().unwrap();
    let request = request.to_vec();
    let writer = std::thread::spawn(move || {
        if w.write_all(&request).is_ok() && half_close {
            let _ = w.shutdown(Shutdown::Write);
        }
    });
    let response = read_response(&mut BufReader::new(s)).ok().flatten();
    writer.join().unwrap();
    response
}

/// `METHOD TARGET HTTP/1.1` with `Host`, the headers, `Content-Length` of
/// `body` unless a `Content-Length` or `Transfer-Encoding` is among the
/// headers, and the body.
pub fn request(method: &str, target: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
    let mut out = format!("{method} {target} HTTP/1.1\r\nHost: localhost\r\n").into_bytes();
    let mut has_length = false;
    for (k, v) in headers {
        has_length |=
            k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("transfer-encoding");
        out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
    }
    if !has_length && (!body.is_empty() || matches!(method, "POST" | "PUT" | "PATCH")) {
        out.extend_from_slice(format!("Content-Length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(body);
    out
}

/// A request whose body is sent in chunks, by hand (chunked transfer
/// encoding), so that the test controls when each part goes out.
pub struct StreamedRequest(TcpStream);

impl StreamedRequest {
    /// Send the request line and headers of a chunked request to `location`
    /// (an absolute URL on `addr`, or a path).
    pub fn start(addr: SocketAddr, method: &str, location: &str) -> StreamedRequest {
        let path = location
            .strip_prefix(&format!("http://{addr}"))
            .unwrap_or(location);
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(60)))
            .unwrap();
        write!(
            stream,
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        )
        .unwrap();
        StreamedRequest(stream)
    }

    /// Send one chunk of the body.
    pub fn send(&mut self, bytes: &[u8]) {
        write!(self.0, "{:x}\r\n", bytes.len()).unwrap();
        self.0.write_all(bytes).unwrap();
        self.0.write_all(b"\r\n").unwrap();
        self.0.flush().unwrap();
    }

    /// End the body and read the response's status code.
    pub fn finish(mut self) -> u16 {
        self.0.write_all(b"0\r\n\r\n").unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") && self.0.read(&mut byte).unwrap() == 1 {
            head.push(byte[0]);
        }
        let head = String::from_utf8_lossy(&head);
        head.split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no status line: {head:?}"))
    }
}
