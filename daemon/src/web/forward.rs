//! One HTTP request: health check, route match, the body (within its size
//! limit and `web.body_timeout`, see `body`), hand-off to one ready instance,
//! and the answer (or a short text error) with `X-Trace-Id`. Every path ends in
//! a response: no client is left hanging; 408 and 413 also close the connection.

use std::collections::HashMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{
    ALLOW, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, HeaderName, HeaderValue, RETRY_AFTER,
};
use hyper::{Request, Response, StatusCode};
use lymph_proto::v1 as pb;
use tracing::debug;

use super::Port;
use super::body::{self, BodyError};
use super::routes::Match;
use crate::apps::Deadline;
use crate::error::ErrorKind;
use crate::warn_limit::WarnLimit;
use crate::warn_limited;

const TRACE_HEADER: &str = "x-trace-id";
const TRACEPARENT: &str = "traceparent";
const HEALTH_PATH: &str = "/_health/";

static SLOW_BODY: WarnLimit = WarnLimit::new(Duration::from_secs(10));

/// The request's trace id when it looks sane (1 to 128 visible ASCII
/// characters), else a new one.
pub fn trace_id_for(given: Option<&[u8]>) -> String {
    match given {
        Some(id)
            if !id.is_empty()
                && id.len() <= 128
                && id.iter().all(|b| (0x21..=0x7e).contains(b)) =>
        {
            String::from_utf8_lossy(id).into_owned()
        }
        _ => crate::trace::new_trace_id(),
    }
}

pub(super) async fn handle(
    port: Arc<Port>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    use crate::spans::traceparent;
    let headers = request.headers();
    let parent = headers
        .get(TRACEPARENT)
        .and_then(|v| traceparent::parse(v.as_bytes()));
    let given = headers.get(TRACE_HEADER).map(HeaderValue::as_bytes);
    // lymph's trace id: X-Trace-Id, else the W3C trace's, else a new one.
    let trace_id = match (given, &parent) {
        (None, Some(parent)) => traceparent::hex(&parent.trace_id),
        (given, _) => trace_id_for(given),
    };
    // The W3C trace wins for the OpenTelemetry span: its child.
    let span = port.spans.open(&trace_id, parent);
    // The app's handler runs under this span; the caller hears of it too.
    let passed_on = crate::spans::passed_on(span.as_ref(), parent).map(traceparent::format);
    let started = std::time::Instant::now();
    let method = request.method().as_str().to_owned();
    let mut route = None;
    let context = Forwarded {
        trace_id: &trace_id,
        traceparent: passed_on.as_deref().unwrap_or_default(),
    };
    let mut response = respond(&port, request, context, &mut route).await;
    let route = route.as_deref().unwrap_or(crate::metrics::OTHER);
    let status = response.status().as_u16();
    port.metrics
        .http_done(&method, route, status, started.elapsed());
    if let Ok(value) = HeaderValue::from_str(&trace_id) {
        response.headers_mut().insert(TRACE_HEADER, value);
    }
    let answer = passed_on;
    if let Some(value) = answer.and_then(|a| HeaderValue::from_str(&a).ok()) {
        response.headers_mut().insert(TRACEPARENT, value);
    }
    if let Some(open) = span {
        let attributes = vec![
            ("http.request.method", method.clone().into()),
            ("http.route", route.to_owned().into()),
            ("http.response.status_code", status.to_string().into()),
            ("url.scheme", "http".into()),
        ];
        let error = (status >= 500).then(|| server_error(status));
        let name = format!("{method} {route}");
        let record = open.end(name, crate::spans::Kind::Server, attributes, error);
        port.spans.record(record);
    }
    Ok(response)
}

/// An HTTP span's `error.type` for a 5xx status: the code, as the semantic
/// conventions ask.
fn server_error(status: u16) -> &'static str {
    match status {
        500 => "500",
        501 => "501",
        502 => "502",
        503 => "503",
        504 => "504",
        _ => "5xx",
    }
}

fn text(status: StatusCode, body: impl Into<String>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.into())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// `response` with `Connection: close`: the request's body was not read to
/// its end, so the connection cannot carry another request.
fn closing(mut response: Response<Full<Bytes>>) -> Response<Full<Bytes>> {
    response
        .headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

/// The trace a request is forwarded in: lymph's trace id, and the W3C
/// context its handler runs under (empty when there is none).
struct Forwarded<'a> {
    trace_id: &'a str,
    traceparent: &'a str,
}

/// The answer to one request; `matched` is set to the route's pattern once
/// the request matched one.
async fn respond(
    port: &Port,
    request: Request<Incoming>,
    context: Forwarded<'_>,
    matched: &mut Option<String>,
) -> Response<Full<Bytes>> {
    let method = request.method().as_str().to_owned();
    let path = request.uri().path().to_owned();
    let (route, path_args) = match port.routes.lookup(&method, &path) {
        Match::Found(route, args) => {
            *matched = Some(route.pattern.clone());
            (route.clone(), args)
        }
        Match::NotFound if path == HEALTH_PATH => {
            return if port.any_ready() {
                Response::new(Full::new(Bytes::new()))
            } else {
                text(StatusCode::SERVICE_UNAVAILABLE, "no ready instance\n")
            };
        }
        Match::NotFound => return text(StatusCode::NOT_FOUND, "not found\n"),
        Match::MethodNotAllowed(allowed) => {
            let allow = allowed.join(", ");
            let mut response = text(
                StatusCode::METHOD_NOT_ALLOWED,
                format!("method not allowed; this path takes {allow}\n"),
            );
            if let Ok(value) = HeaderValue::from_str(&allow) {
                response.headers_mut().insert(ALLOW, value);
            }
            return response;
        }
    };
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > port.max_body as u64) {
        return closing(text(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body over {} bytes\n", port.max_body),
        ));
    }
    let query = request.uri().query().unwrap_or_default().to_owned();
    let headers: Vec<pb::Header> = request
        .headers()
        .iter()
        .filter_map(|(name, value)| {
            Some(pb::Header {
                name: name.as_str().to_owned(),
                value: value.to_str().ok()?.to_owned(),
            })
        })
        .collect();
    let body = match body::read(
        request.into_body(),
        declared,
        port.max_body,
        port.limits.body_timeout,
    )
    .await
    {
        Ok(body) => body,
        Err(e @ BodyError::TooLarge { .. }) => {
            return closing(text(StatusCode::PAYLOAD_TOO_LARGE, format!("{e}\n")));
        }
        Err(e @ BodyError::TooSlow(_)) => {
            warn_limited!(
                SLOW_BODY,
                port = port.port,
                "web request body too slow: 408 and close"
            );
            return closing(text(StatusCode::REQUEST_TIMEOUT, format!("{e}\n")));
        }
        Err(e @ BodyError::Broken(_)) => {
            // Most often the client went away mid-body: nobody reads this.
            debug!(port = port.port, error = %e, "web request body cut");
            return closing(text(StatusCode::BAD_REQUEST, format!("{e}\n")));
        }
    };
    let Some(app) = port.pick() else {
        return text(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("no ready instance of {}\n", port.owner),
        );
    };
    let forwarded = pb::HttpRequest {
        id: 0,
        method,
        path,
        query,
        headers,
        body,
        trace_id: context.trace_id.to_owned(),
        traceparent: context.traceparent.to_owned(),
        endpoint: route.endpoint,
        path_args: path_args.into_iter().collect::<HashMap<_, _>>(),
        interface: route.interface,
    };
    match crate::apps::http(app.as_ref(), forwarded, Deadline::after(port.timeout)).await {
        Ok(answer) => from_app(answer, port.max_body),
        Err(e) => match e.kind {
            ErrorKind::Overloaded => {
                let mut response =
                    text(StatusCode::SERVICE_UNAVAILABLE, format!("{}\n", e.message));
                response
                    .headers_mut()
                    .insert(RETRY_AFTER, HeaderValue::from_static("1"));
                response
            }
            ErrorKind::DeadlineExceeded => {
                text(StatusCode::GATEWAY_TIMEOUT, format!("{}\n", e.message))
            }
            ErrorKind::ShuttingDown => {
                text(StatusCode::SERVICE_UNAVAILABLE, format!("{}\n", e.message))
            }
            _ => text(StatusCode::BAD_GATEWAY, format!("{}\n", e.message)),
        },
    }
}

/// The app's answer as an HTTP response; a malformed one is the app's fault: 502.
fn from_app(answer: pb::HttpResponse, max_body: usize) -> Response<Full<Bytes>> {
    let Some(status) = u16::try_from(answer.status)
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
    else {
        return text(
            StatusCode::BAD_GATEWAY,
            "the app answered an invalid status\n",
        );
    };
    if answer.body.len() > max_body {
        return text(
            StatusCode::BAD_GATEWAY,
            "the app's response body is too large\n",
        );
    }
    let mut response = Response::new(Full::new(answer.body));
    *response.status_mut() = status;
    for header in answer.headers {
        let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(header.name.as_bytes()),
            HeaderValue::from_str(&header.value),
        ) else {
            continue;
        };
        // hyper frames the body itself; the app's framing headers would lie.
        let framing = ["content-length", "transfer-encoding", "connection"];
        if !framing.contains(&name.as_str()) {
            response.headers_mut().append(name, value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sane_trace_ids_are_kept_others_replaced() {
        assert_eq!(trace_id_for(Some(b"abc-123")), "abc-123");
        let long = vec![b'a'; 128];
        assert_eq!(trace_id_for(Some(&long)).len(), 128);
        for bad in [
            &b""[..],
            b"has space",
            b"tab\there",
            "ü".as_bytes(),
            &[b'a'; 129][..],
        ] {
            let made = trace_id_for(Some(bad));
            assert_eq!(made.len(), 32, "{bad:?}");
            assert!(made.chars().all(|c| c.is_ascii_hexdigit()));
        }
        assert_eq!(trace_id_for(None).len(), 32);
    }

    #[test]
    fn app_answers_keep_headers_but_not_framing() {
        let answer = pb::HttpResponse {
            id: 1,
            status: 201,
            headers: vec![
                pb::Header {
                    name: "Content-Type".into(),
                    value: "text/plain".into(),
                },
                pb::Header {
                    name: "Content-Length".into(),
                    value: "999".into(),
                },
            ],
            body: Bytes::from_static(b"ok"),
        };
        let response = from_app(answer, 10);
        assert_eq!(response.status(), StatusCode::CREATED);
        assert_eq!(response.headers()[CONTENT_TYPE], "text/plain");
        assert!(response.headers().get(CONTENT_LENGTH).is_none());
        let bad = pb::HttpResponse {
            status: 1000,
            ..Default::default()
        };
        assert_eq!(from_app(bad, 10).status(), StatusCode::BAD_GATEWAY);
    }
}
