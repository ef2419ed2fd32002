//! HTTP requests and responses as `#[route(..)]` handlers see them: the
//! daemon's gateway receives the request, the handler answers. Plain data plus
//! werkzeug-like helpers (`arg` reads the query string like `request.args`).

use std::collections::HashMap;

use bytes::Bytes;
use lymph_proto::v1;

/// An HTTP request routed to this app.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// The raw query string, without `?`.
    pub query: String,
    /// Header names are lower case.
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    /// The values of the route's `<variables>`.
    pub path_args: HashMap<String, String>,
    /// The handler's name, as the route declared it.
    pub endpoint: String,
}

impl Request {
    /// The first value of query parameter `name`, decoded (`+` and `%XX`).
    pub fn arg(&self, name: &str) -> Option<String> {
        self.query
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| pair.split_once('=').unwrap_or((pair, "")))
            .find(|(key, _)| decode(key) == name)
            .map(|(_, value)| decode(value))
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The value of the route variable `name`.
    pub fn path_arg(&self, name: &str) -> Option<&str> {
        self.path_args.get(name).map(String::as_str)
    }

    pub(crate) fn from_proto(request: v1::HttpRequest) -> Request {
        Request {
            method: request.method,
            path: request.path,
            query: request.query,
            headers: request
                .headers
                .into_iter()
                .map(|h| (h.name, h.value))
                .collect(),
            body: request.body,
            path_args: request.path_args.into_iter().collect(),
            endpoint: request.endpoint,
        }
    }
}

/// Form decoding: `+` is a space, `%XX` a byte; invalid escapes stay as they are.
fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let hex = |at: usize| bytes.get(at).and_then(|c| (*c as char).to_digit(16));
        match (b, hex(i + 1), hex(i + 2)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An HTTP response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
}

impl Response {
    /// A response with this status and body and no headers.
    pub fn new(status: u16, body: impl Into<Bytes>) -> Response {
        Response {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// 200 with a `text/plain; charset=utf-8` body.
    pub fn text(body: impl Into<String>) -> Response {
        Response::new(200, body.into()).header("Content-Type", "text/plain; charset=utf-8")
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Response {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub(crate) fn into_proto(self, id: u64) -> v1::HttpResponse {
        v1::HttpResponse {
            id,
            status: u32::from(self.status),
            headers: self
                .headers
                .into_iter()
                .map(|(name, value)| v1::Header { name, value })
                .collect(),
            body: self.body,
        }
    }
}

/// The answer for a handler's error: 400 with the message for a bad request,
/// else lymph's 500 with an empty body.
pub(crate) fn error_response(error: &crate::Error) -> Response {
    if error.kind() == crate::ErrorKind::BadRequest {
        Response::new(400, format!("{}\n", error.message()))
            .header("Content-Type", "text/plain; charset=utf-8")
    } else {
        Response::new(500, Bytes::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn args_are_read_like_werkzeug() {
        let request = Request {
            query: "name=Joe+Doe&x=%C3%BC&flag&name=second&bad=%zz".into(),
            ..Request::default()
        };
        assert_eq!(request.arg("name").as_deref(), Some("Joe Doe"));
        assert_eq!(request.arg("x").as_deref(), Some("ü"));
        assert_eq!(request.arg("flag").as_deref(), Some(""));
        assert_eq!(request.arg("bad").as_deref(), Some("%zz"));
        assert_eq!(request.arg("missing"), None);
    }

    #[test]
    fn responses_build_tersely() {
        let response = Response::text("hi").header("X-A", "1");
        assert_eq!(response.status, 200);
        assert_eq!(response.headers.len(), 2);
        let proto = response.into_proto(7);
        assert_eq!((proto.id, proto.status), (7, 200));
        assert_eq!(
            error_response(&crate::Error::bad_request("no name")).status,
            400
        );
        assert_eq!(error_response(&crate::Error::internal("boom")).status, 500);
    }
}
