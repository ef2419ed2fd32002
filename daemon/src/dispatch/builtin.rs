//! The built-in `lymph` interface (version 0.15.0, as lymph registers it),
//! answered by the daemon itself: `lymph.ping`, `lymph.status`,
//! `lymph.inspect`, `lymph.get_metrics`, `lymph.change_loglevel`. Bodies are
//! MessagePack, shaped as lymph shapes them.

use bytes::Bytes;
use rmpv::Value;

use super::Me;
use crate::error::{CallError, ErrorKind};
use crate::metrics::Metrics;
use crate::spec::AppSpec;

/// The version lymph 0.15 gives its built-in interface.
pub const BUILTIN_VERSION: &str = "0.15.0";

/// One method as `inspect` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodDesc {
    /// `Interface.method`
    pub name: String,
    pub version: Option<String>,
    pub params: Vec<String>,
    pub help: String,
    /// The handler's own concurrency limit; 0: none.
    pub concurrency: u32,
    /// The typed errors the handler declares (`raises`); empty: none declared.
    pub raises: Vec<String>,
}

fn builtin(name: &str, params: &[&str], help: &str) -> MethodDesc {
    MethodDesc {
        name: format!("lymph.{name}"),
        version: Some(BUILTIN_VERSION.to_owned()),
        params: params.iter().map(|p| (*p).to_owned()).collect(),
        help: help.to_owned(),
        concurrency: 0,
        raises: Vec::new(),
    }
}

/// Every method of an app (or of the daemon alone), `lymph.*` included, sorted by name.
pub fn describe(spec: Option<&AppSpec>) -> Vec<MethodDesc> {
    describe_all(spec.into_iter())
}

/// Every method of several apps (each interface and version once), `lymph.*` included.
pub fn describe_all<'a>(specs: impl Iterator<Item = &'a AppSpec>) -> Vec<MethodDesc> {
    let mut out = vec![
        builtin(
            "change_loglevel",
            &["qualname", "loglevel", "period"],
            "Sets the daemon's log level for a module (qualname; \"\" or root for all) \
             for period seconds (default 60), then restores it",
        ),
        builtin(
            "get_metrics",
            &[],
            "Returns the daemon's metrics as [name, value, tags] triples",
        ),
        builtin(
            "inspect",
            &[],
            "Returns a description of all available rpc methods of this service",
        ),
        builtin("ping", &["payload"], "Returns the payload"),
        builtin(
            "status",
            &[],
            "Returns the endpoint and identity of this instance",
        ),
    ];
    for iface in specs.flat_map(|s| s.interfaces.iter()) {
        for m in &iface.methods {
            out.push(MethodDesc {
                name: format!("{}.{}", iface.name, m.name),
                version: iface.version.clone(),
                params: m.params.clone(),
                help: m.help.clone(),
                concurrency: m.concurrency,
                raises: m.raises.clone(),
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.version.cmp(&b.version)));
    out.dedup_by(|a, b| a.name == b.name && a.version == b.version);
    out
}

/// Answers `lymph.<method>` addressed to the daemon's own instance.
pub fn answer_for_daemon(
    interface: &str,
    method: &str,
    body: &[u8],
    me: &Me,
    metrics: &Metrics,
) -> Result<Bytes, CallError> {
    if interface != "lymph" {
        return Err(CallError::new(
            ErrorKind::UnknownMethod,
            format!("the daemon's lymph instance has no interface {interface:?}"),
        ));
    }
    answer(method, body, &me.identity, me, None, metrics)
}

/// Answers `lymph.<method>` sent to this daemon's endpoint by another host:
/// the daemon speaks for all its apps, as one lymph container, unless the
/// caller (a lymphd) named one instance's `identity` (the `lymphd_identity`
/// header): then for that app, or the daemon, alone.
pub fn answer_for_container(
    method: &str,
    body: &[u8],
    me: &Me,
    apps: &[std::sync::Arc<dyn crate::apps::LocalApp>],
    identity: Option<&str>,
    metrics: &Metrics,
) -> Result<Bytes, CallError> {
    if let Some(identity) = identity.filter(|i| *i != me.identity) {
        let Some(app) = apps.iter().find(|a| a.identity() == identity) else {
            return Err(CallError::new(
                ErrorKind::UnknownService,
                format!("no app with identity {identity:?} is attached to this daemon"),
            ));
        };
        return answer_for_app(method, body, identity, me, app.spec(), metrics);
    }
    if identity.is_some() {
        return answer(method, body, &me.identity, me, None, metrics);
    }
    if method == "inspect" {
        decode_args(method, body)?;
        let methods = describe_all(apps.iter().map(|a| a.spec()));
        return encode(&map(vec![(
            "methods",
            Value::Array(methods.into_iter().map(method_value).collect()),
        )]));
    }
    answer(method, body, &me.identity, me, None, metrics)
}

/// Answers `lymph.<method>` addressed to an app's instance, on its behalf.
pub fn answer_for_app(
    method: &str,
    body: &[u8],
    identity: &str,
    me: &Me,
    spec: &AppSpec,
    metrics: &Metrics,
) -> Result<Bytes, CallError> {
    answer(method, body, identity, me, Some(spec), metrics)
}

fn answer(
    method: &str,
    body: &[u8],
    identity: &str,
    me: &Me,
    spec: Option<&AppSpec>,
    metrics: &Metrics,
) -> Result<Bytes, CallError> {
    let args = decode_args(method, body)?;
    let reply = match method {
        "ping" => arg(&args, "payload").cloned().unwrap_or(Value::Nil),
        "status" => map(vec![
            ("endpoint", Value::from(me.endpoint.as_str())),
            ("identity", Value::from(identity)),
        ]),
        "inspect" => map(vec![(
            "methods",
            Value::Array(describe(spec).into_iter().map(method_value).collect()),
        )]),
        "change_loglevel" => change_loglevel(&args)?,
        "get_metrics" => Value::Array(
            metrics
                .samples()
                .into_iter()
                .map(|s| {
                    let mut tags = vec![("identity", Value::from(identity))];
                    tags.extend(s.tags.into_iter().map(|(k, v)| (k, Value::from(v))));
                    Value::Array(vec![Value::from(s.name), number(s.value), map(tags)])
                })
                .collect(),
        ),
        other => {
            return Err(CallError::new(
                ErrorKind::UnknownMethod,
                format!(
                    "lymph has no method {other:?} (it has: change_loglevel, get_metrics, \
                     inspect, ping, status)"
                ),
            ));
        }
    };
    encode(&reply)
}

/// lymph's `change_loglevel(qualname, loglevel, period=60)`, on the
/// daemon's log filter; nil on success, as lymph's.
fn change_loglevel(args: &[(Value, Value)]) -> Result<Value, CallError> {
    use crate::logs::level;
    let bad = |why: String| {
        CallError::new(
            ErrorKind::BadRequest,
            format!("lymph.change_loglevel: {why}"),
        )
    };
    let text = |key: &str| -> Result<String, CallError> {
        match arg(args, key) {
            Some(value) => as_text(value).ok_or_else(|| bad(format!("{key} must be a string"))),
            None => Err(bad(format!("{key} is required"))),
        }
    };
    let qualname = text("qualname")?;
    let loglevel = match arg(args, "loglevel") {
        Some(Value::Integer(n)) => n.to_string(),
        _ => text("loglevel")?,
    };
    let period = match arg(args, "period") {
        None | Some(Value::Nil) => level::DEFAULT_PERIOD,
        Some(value) => {
            let seconds = value
                .as_f64()
                .or_else(|| value.as_i64().map(|n| n as f64))
                .or_else(|| value.as_u64().map(|n| n as f64))
                .ok_or_else(|| bad("period must be a number of seconds".to_owned()))?;
            level::period_of(seconds).map_err(|e| bad(e.to_string()))?
        }
    };
    match level::change(&qualname, &loglevel, period) {
        Ok(_) => Ok(Value::Nil),
        Err(e @ (level::LevelError::NotInstalled | level::LevelError::Rejected { .. })) => {
            Err(CallError::new(ErrorKind::Internal, e.to_string()))
        }
        Err(e) => Err(bad(e.to_string())),
    }
}

fn method_value(m: MethodDesc) -> Value {
    let mut fields = vec![
        ("name", Value::from(m.name)),
        // lymph sends str(version), which is the text "None" when unversioned.
        (
            "version",
            Value::from(m.version.unwrap_or_else(|| "None".to_owned())),
        ),
        (
            "params",
            Value::Array(m.params.into_iter().map(Value::from).collect()),
        ),
        ("help", Value::from(m.help)),
    ];
    // lymphd-only, and only when set: lymph's readers ignore unknown keys.
    if m.concurrency > 0 {
        fields.push(("concurrency", Value::from(m.concurrency)));
    }
    if !m.raises.is_empty() {
        fields.push((
            "raises",
            Value::Array(m.raises.into_iter().map(Value::from).collect()),
        ));
    }
    map(fields)
}

/// Counts go out as integers, as lymph sends them; the rest as floats.
fn number(value: f64) -> Value {
    if value.fract() == 0.0 && (0.0..9.0e15).contains(&value) {
        Value::from(value as u64)
    } else {
        Value::from(value)
    }
}

fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(
        entries
            .into_iter()
            .map(|(k, v)| (Value::from(k), v))
            .collect(),
    )
}

/// The arguments map; an empty body counts as no arguments.
fn decode_args(method: &str, body: &[u8]) -> Result<Vec<(Value, Value)>, CallError> {
    if body.is_empty() {
        return Ok(Vec::new());
    }
    let bad = |why: String| CallError::new(ErrorKind::BadRequest, format!("lymph.{method}: {why}"));
    let mut reader = body;
    match rmpv::decode::read_value(&mut reader) {
        Ok(Value::Map(entries)) => Ok(entries),
        Ok(Value::Nil) => Ok(Vec::new()),
        Ok(other) => Err(bad(format!("arguments must be a map, got {other}"))),
        Err(e) => Err(bad(format!("body is not MessagePack: {e}"))),
    }
}

/// A map value by key; keys may be msgpack str or bin (Python 2 peers send bin).
fn arg<'a>(args: &'a [(Value, Value)], key: &str) -> Option<&'a Value> {
    args.iter().find_map(|(k, v)| {
        let matches = match k {
            Value::String(s) => s.as_str() == Some(key),
            Value::Binary(b) => b.as_slice() == key.as_bytes(),
            _ => false,
        };
        matches.then_some(v)
    })
}

fn encode(value: &Value) -> Result<Bytes, CallError> {
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, value)
        .map_err(|e| CallError::new(ErrorKind::Internal, format!("encoding reply: {e}")))?;
    Ok(Bytes::from(out))
}

/// Asks the container of a remote `instance` for its methods: a lymphd
/// answers for the app the `lymphd_identity` header names, Python lymph for
/// its whole container (one process per identity there).
pub async fn inspect_remote(
    remote: &dyn crate::rpc::Remote,
    instance: &crate::registry::Instance,
    timeout: std::time::Duration,
) -> Result<Vec<MethodDesc>, CallError> {
    let request = crate::rpc::OutgoingRequest {
        subject: "lymph.inspect".to_owned(),
        body: Bytes::from_static(&[0x80]),
        trace_id: crate::trace::new_trace_id(),
        // The `lymph` interface's version, not the looked-up instance's.
        version: None,
        identity: super::remote::identity_header("lymph.inspect", instance),
        deadline: crate::deadline::Deadline::after(timeout),
        traceparent: None,
    };
    let reply = remote
        .request(&instance.endpoint, request)
        .await
        .map_err(super::remote::transport_error)?;
    parse_inspect(&super::remote::reply_outcome(reply)?)
}

/// Reads another container's `lymph.inspect` reply (Python lymph or lymphd;
/// strings may arrive as msgpack bin from Python 2).
pub fn parse_inspect(body: &[u8]) -> Result<Vec<MethodDesc>, CallError> {
    let bad = |why: &str| {
        CallError::new(
            ErrorKind::Internal,
            format!("unreadable lymph.inspect reply: {why}"),
        )
    };
    let mut reader = body;
    let Ok(Value::Map(top)) = rmpv::decode::read_value(&mut reader) else {
        return Err(bad("not a map"));
    };
    let Some(Value::Array(methods)) = arg(&top, "methods") else {
        return Err(bad("no methods list"));
    };
    let mut out = Vec::new();
    for entry in methods {
        let Value::Map(fields) = entry else {
            return Err(bad("a method is not a map"));
        };
        let text = |key: &str| arg(fields, key).and_then(as_text).unwrap_or_default();
        let version = Some(text("version")).filter(|v| !v.is_empty() && v != "None");
        let params = match arg(fields, "params") {
            Some(Value::Array(items)) => items.iter().filter_map(as_text).collect(),
            _ => Vec::new(),
        };
        let concurrency = arg(fields, "concurrency")
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok())
            .unwrap_or(0);
        let raises = match arg(fields, "raises") {
            Some(Value::Array(items)) => items.iter().filter_map(as_text).collect(),
            _ => Vec::new(),
        };
        out.push(MethodDesc {
            name: text("name"),
            version,
            params,
            help: text("help"),
            concurrency,
            raises,
        });
    }
    out.sort_by(|a, b| a.name.cmp(&b.name).then_with(|| a.version.cmp(&b.version)));
    Ok(out)
}

/// A msgpack str or bin as text.
fn as_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => s.as_str().map(str::to_owned),
        Value::Binary(b) => String::from_utf8(b.clone()).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inspect_replies_round_trip_and_accept_bin() {
        let me = Me {
            identity: "d".to_owned(),
            endpoint: "tcp://127.0.0.1:1".to_owned(),
        };
        let body = answer_for_daemon("lymph", "inspect", &[0x80], &me, &Metrics::default())
            .expect("inspect");
        let methods = parse_inspect(&body).expect("parse");
        assert_eq!(methods, describe(None));

        // A Python 2 reply: bin keys and values, version "None".
        let bin = |s: &str| Value::Binary(s.as_bytes().to_vec());
        let py2 = Value::Map(vec![(
            bin("methods"),
            Value::Array(vec![Value::Map(vec![
                (bin("name"), bin("Greeting.greet")),
                (bin("version"), bin("None")),
                (bin("params"), Value::Array(vec![bin("name")])),
                (bin("help"), bin("")),
            ])]),
        )]);
        let mut raw = Vec::new();
        rmpv::encode::write_value(&mut raw, &py2).expect("encode");
        let methods = parse_inspect(&raw).expect("parse");
        assert_eq!(
            methods,
            vec![MethodDesc {
                name: "Greeting.greet".to_owned(),
                version: None,
                params: vec!["name".to_owned()],
                help: String::new(),
                concurrency: 0,
                raises: vec![],
            }]
        );
    }

    /// `raises` travels as a lymphd-only key, present only when declared: a
    /// method without it has exactly lymph's four keys.
    #[test]
    fn raises_is_an_extra_key_only_when_declared() {
        let method = |raises: &[&str]| MethodDesc {
            name: "Users.get".to_owned(),
            version: None,
            params: vec!["id".to_owned()],
            help: String::new(),
            concurrency: 0,
            raises: raises.iter().map(|r| (*r).to_owned()).collect(),
        };
        let keys = |value: &Value| -> Vec<String> {
            value
                .as_map()
                .map(|m| {
                    m.iter()
                        .filter_map(|(k, _)| k.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        };
        assert_eq!(
            keys(&method_value(method(&[]))),
            ["name", "version", "params", "help"]
        );
        let declared = method_value(method(&["NotFound", "Forbidden"]));
        assert_eq!(
            keys(&declared),
            ["name", "version", "params", "help", "raises"]
        );
        let mut raw = Vec::new();
        let reply = map(vec![("methods", Value::Array(vec![declared]))]);
        rmpv::encode::write_value(&mut raw, &reply).expect("encode");
        let parsed = parse_inspect(&raw).expect("parse");
        assert_eq!(parsed, vec![method(&["NotFound", "Forbidden"])]);
    }
}
