//! Plain HTTP/1.1 requests to a web service's port on the daemon's gateway
//! (one connection per request, `Connection: close`), and a free port to give
//! a web service. Just enough client for tests; no dependency.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use serde::de::DeserializeOwned;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use super::{TestingError, WAIT};

/// A port free on 127.0.0.1 right now, for a web service's `http_port`
/// (Python's `lymph.testing.free_port`). Another process may take it before
/// it is used; [`TestDaemon::serve_web`](super::TestDaemon::serve_web) picks
/// one for you.
///
/// ```
/// let port = lymph::testing::free_port()?;
/// assert_ne!(port, 0);
/// # Ok::<(), lymph::testing::TestingError>(())
/// ```
pub fn free_port() -> Result<u16, TestingError> {
    let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .map_err(|e| TestingError::Http(format!("cannot find a free port: {e}")))?;
    let port = listener
        .local_addr()
        .map_err(|e| TestingError::Http(format!("cannot find a free port: {e}")))?
        .port();
    Ok(port)
}

/// Requests to one HTTP port.
///
/// ```no_run
/// # async fn demo() -> Result<(), lymph::testing::TestingError> {
/// let http = lymph::testing::HttpClient::new(([127, 0, 0, 1], 8080).into());
/// let response = http.get("/greet?name=Joe").await?;
/// assert_eq!((response.status, response.text().as_str()), (200, "Hi, Joe!"));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct HttpClient {
    address: SocketAddr,
}

/// An HTTP answer; error statuses are answers too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpResponse {
    pub status: u16,
    /// Names are lower case.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body decoded from JSON.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, TestingError> {
        serde_json::from_slice(&self.body).map_err(|e| TestingError::Decode {
            what: "the HTTP body as JSON".to_owned(),
            message: e.to_string(),
        })
    }
}

impl HttpClient {
    /// A client for `address`.
    pub fn new(address: SocketAddr) -> HttpClient {
        HttpClient { address }
    }

    /// A client for `port` on the gateway address `ip` (the daemon's
    /// `web.ip`; an unspecified one means 127.0.0.1).
    pub(crate) fn on(ip: &str, port: u16) -> HttpClient {
        let ip = match ip.parse::<IpAddr>() {
            Ok(ip) if !ip.is_unspecified() => ip,
            _ => IpAddr::V4(Ipv4Addr::LOCALHOST),
        };
        HttpClient::new(SocketAddr::new(ip, port))
    }

    /// The address requested.
    pub fn address(&self) -> SocketAddr {
        self.address
    }

    /// `GET path` (with its query string).
    pub async fn get(&self, path: &str) -> Result<HttpResponse, TestingError> {
        self.request("GET", path, &[], b"").await
    }

    /// `POST path` with `body` of type `content_type`.
    pub async fn post(
        &self,
        path: &str,
        content_type: &str,
        body: impl AsRef<[u8]>,
    ) -> Result<HttpResponse, TestingError> {
        self.request(
            "POST",
            path,
            &[("content-type", content_type)],
            body.as_ref(),
        )
        .await
    }

    /// Any request; `Host`, `Content-Length` and `Connection` are added.
    /// Fails after [`WAIT`] without a whole answer.
    pub async fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<HttpResponse, TestingError> {
        let exchange = self.exchange(method, path, headers, body);
        match tokio::time::timeout(WAIT, exchange).await {
            Ok(result) => result,
            Err(_) => Err(TestingError::Timeout(format!(
                "no HTTP answer to {method} {path} from {} within {WAIT:?}",
                self.address
            ))),
        }
    }

    async fn exchange(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<HttpResponse, TestingError> {
        let failed = |e: std::io::Error| {
            TestingError::Http(format!("{method} {path} on {}: {e}", self.address))
        };
        let mut stream = TcpStream::connect(self.address).await.map_err(failed)?;
        let mut head = format!(
            "{method} {path} HTTP/1.1\r\nhost: {}\r\nconnection: close\r\ncontent-length: {}\r\n",
            self.address,
            body.len()
        );
        for (name, value) in headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        stream.write_all(head.as_bytes()).await.map_err(failed)?;
        stream.write_all(body).await.map_err(failed)?;
        stream.flush().await.map_err(failed)?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await.map_err(failed)?;
        parse_response(&raw)
    }
}

/// Parses a whole HTTP/1.1 answer (the server closed the connection after it).
fn parse_response(raw: &[u8]) -> Result<HttpResponse, TestingError> {
    let bad = |why: &str| TestingError::Http(format!("bad HTTP answer ({why})"));
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of headers"))?;
    let (head, rest) = raw.split_at(split);
    let rest = rest.get(4..).unwrap_or_default();
    let head = std::str::from_utf8(head).map_err(|_| bad("headers are not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| bad("no status"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let chunked = header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        dechunk(rest).ok_or_else(|| bad("bad chunked body"))?
    } else if let Some(length) = header("content-length") {
        let length: usize = length.parse().map_err(|_| bad("bad content-length"))?;
        rest.get(..length)
            .ok_or_else(|| bad("body shorter than its content-length"))?
            .to_vec()
    } else {
        rest.to_vec()
    };
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

/// The body of a `Transfer-Encoding: chunked` answer (trailers ignored).
fn dechunk(mut rest: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let end = rest.windows(2).position(|w| w == b"\r\n")?;
        let size_line = std::str::from_utf8(rest.get(..end)?).ok()?;
        let size_text = size_line.split(';').next()?.trim();
        let size = usize::from_str_radix(size_text, 16).ok()?;
        rest = rest.get(end + 2..)?;
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(rest.get(..size)?);
        rest = rest.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sized_answer_parses() {
        let raw = b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\ncontent-length: 5\r\n\r\nnope!extra";
        let response = parse_response(raw).expect("parses");
        assert_eq!(response.status, 404);
        assert_eq!(response.header("CONTENT-TYPE"), Some("text/plain"));
        assert_eq!(response.text(), "nope!");
    }

    #[test]
    fn a_chunked_answer_is_joined() {
        let raw = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n4\r\n{\"a\"\r\n3;x=y\r\n: 1\r\n1\r\n}\r\n0\r\n\r\n";
        let response = parse_response(raw).expect("parses");
        assert_eq!(
            response.json::<serde_json::Value>().expect("json"),
            serde_json::json!({"a": 1})
        );
    }

    #[test]
    fn broken_answers_are_errors() {
        assert!(parse_response(b"HTTP/1.1 200 OK\r\n").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nshort").is_err());
        assert!(
            parse_response(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n").is_err()
        );
        assert!(parse_response(b"garbage\r\n\r\n").is_err());
    }

    #[test]
    fn free_ports_can_be_bound() {
        let port = free_port().expect("port");
        std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, port)).expect("still free");
    }
}
