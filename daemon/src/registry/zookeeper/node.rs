//! The JSON of an instance znode in lymph's layout (`docs/wire.md` §2.4): what we
//! write (every key lymph writes, plus `app_name`) and what we accept (any key
//! order, extra keys, missing optional keys). Pure; knows nothing of sessions.

use serde::{Deserialize, Serialize};

use crate::registry::Instance;

/// What lymphd writes. Field order follows py3 lymph's key order.
#[derive(Serialize)]
struct WrittenNode<'a> {
    id: &'a str,
    identity: &'a str,
    version: Option<&'a str>,
    endpoint: &'a str,
    log_endpoint: Option<&'a str>,
    monitoring_endpoint: Option<&'a str>,
    backdoor_endpoint: Option<&'a str>,
    fqdn: Option<&'a str>,
    hostname: Option<&'a str>,
    ip: Option<&'a str>,
    /// lymph's worker flag, despite the name; a daemon's instances are not workers.
    #[serde(rename = "type")]
    worker: bool,
    app_name: Option<&'a str>,
}

/// What we read: only `endpoint` and `identity` are required; unknown keys
/// (`fqdn`, `type`, `http_port`, ...) are ignored.
#[derive(Deserialize)]
struct ReadNode {
    endpoint: String,
    identity: String,
    #[serde(default)]
    version: Option<String>,
    #[serde(default)]
    ip: Option<String>,
    #[serde(default)]
    hostname: Option<String>,
    #[serde(default)]
    log_endpoint: Option<String>,
    #[serde(default)]
    app_name: Option<String>,
}

/// The znode data for `instance`: UTF-8 JSON with lymph's keys.
pub(crate) fn encode(instance: &Instance) -> Vec<u8> {
    let hostname = instance.hostname.as_deref();
    let node = WrittenNode {
        id: &instance.id,
        identity: &instance.identity,
        version: instance.version.as_deref(),
        endpoint: &instance.endpoint,
        log_endpoint: instance.log_endpoint.as_deref(),
        monitoring_endpoint: None,
        backdoor_endpoint: None,
        // The daemon knows one name for its host; lymph only displays fqdn.
        fqdn: hostname,
        hostname,
        ip: instance.ip.as_deref(),
        worker: false,
        app_name: instance.app_name.as_deref(),
    };
    // Serializing plain strings, options and a bool into a Vec cannot fail.
    serde_json::to_vec(&node).unwrap_or_default()
}

/// What lymph writes under `/lymph/http/<service>/<id>`.
#[derive(Serialize)]
struct HttpNode<'a> {
    version: Option<&'a str>,
    ip: Option<&'a str>,
    hostname: Option<&'a str>,
    id: &'a str,
    identity: &'a str,
    http_port: u16,
}

/// The znode data of a web service instance.
pub(crate) fn encode_http(instance: &crate::registry::HttpInstance) -> Vec<u8> {
    let node = HttpNode {
        version: None,
        ip: instance.ip.as_deref(),
        hostname: instance.hostname.as_deref(),
        id: &instance.id,
        identity: &instance.identity,
        http_port: instance.http_port,
    };
    // Plain strings, options and a number: cannot fail.
    serde_json::to_vec(&node).unwrap_or_default()
}

/// The most data read from one instance node. lymph writes ~400 bytes; the
/// server allows ~1 MB (jute.maxbuffer): a node past this is skipped from its
/// stat, unread and unparsed.
pub(crate) const MAX_NODE_BYTES: usize = 64 * 1024;

/// Longest identity accepted (lymph's are 32 hex digits).
const MAX_IDENTITY_BYTES: usize = 256;

/// Why an instance node is skipped.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NodeError {
    #[error("not an instance's JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{size} bytes of data, the limit is {MAX_NODE_BYTES}")]
    TooLarge { size: usize },
    #[error("endpoint {0:?} is not tcp://HOST:PORT")]
    BadEndpoint(String),
    #[error("identity must be 1 to {MAX_IDENTITY_BYTES} printable characters")]
    BadIdentity,
}

/// Reads a znode written by lymph or lymphd. `service` and `id` come from the
/// path (the node's parent and name), as lymph's readers take them. Refuses
/// what could only fail later: an endpoint nobody can connect to, an empty or
/// outsized identity.
pub(crate) fn decode(service: &str, id: &str, data: &[u8]) -> Result<Instance, NodeError> {
    if data.len() > MAX_NODE_BYTES {
        return Err(NodeError::TooLarge { size: data.len() });
    }
    let node: ReadNode = serde_json::from_slice(data)?;
    if !is_tcp_endpoint(&node.endpoint) {
        return Err(NodeError::BadEndpoint(
            node.endpoint.chars().take(80).collect(),
        ));
    }
    if node.identity.is_empty()
        || node.identity.len() > MAX_IDENTITY_BYTES
        || node.identity.chars().any(char::is_control)
    {
        return Err(NodeError::BadIdentity);
    }
    Ok(Instance {
        service: service.to_owned(),
        id: id.to_owned(),
        identity: node.identity,
        endpoint: node.endpoint,
        version: node.version,
        ip: node.ip,
        hostname: node.hostname,
        log_endpoint: node.log_endpoint,
        app_name: node.app_name,
    })
}

/// `tcp://HOST:PORT` with a non-zero port and a host without spaces, slashes
/// or control characters (an IPv6 host in brackets): what the transport can
/// connect to.
fn is_tcp_endpoint(endpoint: &str) -> bool {
    let Some(address) = endpoint.strip_prefix("tcp://") else {
        return false;
    };
    let Some((host, port)) = address.rsplit_once(':') else {
        return false;
    };
    let host_ok = !host.is_empty()
        && host.len() <= 255
        && !host
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '/');
    let bracketed = host.starts_with('[') == host.ends_with(']');
    let unbracketed_v6 = !host.starts_with('[') && host.contains(':');
    host_ok && bracketed && !unbracketed_v6 && port.parse::<u16>().is_ok_and(|p| p != 0)
}

/// Strict semver `X.Y.Z[-pre][+build]`, as lymph's `semantic_version.Version`
/// demands: anything else in a znode makes every Python peer's lookup raise.
pub(crate) fn is_strict_semver(version: &str) -> bool {
    let (rest, build) = match version.split_once('+') {
        Some((rest, build)) => (rest, Some(build)),
        None => (version, None),
    };
    let (core, pre) = match rest.split_once('-') {
        Some((core, pre)) => (core, Some(pre)),
        None => (rest, None),
    };
    let numbers: Vec<&str> = core.split('.').collect();
    let numeric = |part: &str| {
        !part.is_empty()
            && part.bytes().all(|b| b.is_ascii_digit())
            && (part == "0" || !part.starts_with('0'))
    };
    let identifiers = |text: &str| {
        text.split('.').all(|part| {
            !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
    };
    numbers.len() == 3
        && numbers.iter().all(|part| numeric(part))
        && pre.is_none_or(identifiers)
        && build.is_none_or(identifiers)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Captured from py2 lymph 0.15 (`docs/wire.md` §7.3), byte for byte.
    const PY2_NODE: &str = r#"{"endpoint": "tcp://127.0.0.1:53326", "ip": "127.0.0.1", "hostname": "vm", "fqdn": "localhost", "backdoor_endpoint": null, "log_endpoint": "tcp://127.0.0.1:39011", "version": null, "monitoring_endpoint": "tcp://127.0.0.1:42699", "type": false, "id": "ae0117fda6928bd66de76968251eb8e3", "identity": "04def9148aa5a14b2cb198f82244f1c5"}"#;

    fn sample() -> Instance {
        Instance {
            service: "Greeting".to_owned(),
            id: "5026be6016aed185798b5d6ce1caeb6e".to_owned(),
            identity: "04def9148aa5a14b2cb198f82244f1c5".to_owned(),
            endpoint: "tcp://127.0.0.1:4000".to_owned(),
            version: Some("1.5.0".to_owned()),
            ip: Some("127.0.0.1".to_owned()),
            hostname: Some("vm".to_owned()),
            log_endpoint: None,
            app_name: Some("greeting".to_owned()),
        }
    }

    #[test]
    fn reads_python_lymphs_captured_node() {
        let got = decode(
            "Greeting",
            "ae0117fda6928bd66de76968251eb8e3",
            PY2_NODE.as_bytes(),
        )
        .expect("python's node parses");
        assert_eq!(got.service, "Greeting");
        assert_eq!(got.id, "ae0117fda6928bd66de76968251eb8e3");
        assert_eq!(got.identity, "04def9148aa5a14b2cb198f82244f1c5");
        assert_eq!(got.endpoint, "tcp://127.0.0.1:53326");
        assert_eq!(got.version, None);
        assert_eq!(got.ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(got.hostname.as_deref(), Some("vm"));
        assert_eq!(got.log_endpoint.as_deref(), Some("tcp://127.0.0.1:39011"));
        assert_eq!(got.app_name, None);
    }

    #[test]
    fn reads_minimal_and_extra_keys() {
        let minimal = br#"{"identity": "aa", "endpoint": "tcp://h:1", "http_port": 80, "x": [1]}"#;
        let got = decode("S", "n", minimal).expect("minimal node parses");
        assert_eq!(got.endpoint, "tcp://h:1");
        assert_eq!((got.version, got.ip, got.log_endpoint), (None, None, None));
    }

    #[test]
    fn refuses_what_is_not_an_instance() {
        for bad in [
            &b"not json"[..],
            b"",
            b"[]",
            br#"{"identity": "aa"}"#,
            br#"{"identity": "a", "endpoint": "e", "version": 1}"#,
            br#"{"identity": "a", "endpoint": "e"}"#,
            br#"{"identity": "a", "endpoint": "tcp://h"}"#,
            br#"{"identity": "a", "endpoint": "tcp://h:0"}"#,
            br#"{"identity": "a", "endpoint": "tcp://h:99999"}"#,
            br#"{"identity": "a", "endpoint": "tcp://:1"}"#,
            br#"{"identity": "a", "endpoint": "tcp://a b:1"}"#,
            br#"{"identity": "a", "endpoint": "tcp://::1:1"}"#,
            br#"{"identity": "a", "endpoint": "udp://h:1"}"#,
            br#"{"identity": "", "endpoint": "tcp://h:1"}"#,
        ] {
            assert!(
                decode("S", "n", bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn accepts_the_endpoints_lymph_writes_and_refuses_huge_data() {
        for good in [
            "tcp://127.0.0.1:1",
            "tcp://[::1]:5000",
            "tcp://host-a.example:65535",
        ] {
            let data = format!(r#"{{"identity": "aa", "endpoint": "{good}"}}"#);
            assert!(decode("S", "n", data.as_bytes()).is_ok(), "{good}");
        }
        let padding = "x".repeat(MAX_NODE_BYTES);
        let huge = format!(r#"{{"identity": "aa", "endpoint": "tcp://h:1", "p": "{padding}"}}"#);
        assert!(matches!(
            decode("S", "n", huge.as_bytes()),
            Err(NodeError::TooLarge { .. })
        ));
        let long = "a".repeat(MAX_IDENTITY_BYTES + 1);
        let data = format!(r#"{{"identity": "{long}", "endpoint": "tcp://h:1"}}"#);
        assert!(matches!(
            decode("S", "n", data.as_bytes()),
            Err(NodeError::BadIdentity)
        ));
    }

    #[test]
    fn writes_every_key_lymph_writes() {
        let data = encode(&sample());
        let json: serde_json::Value = serde_json::from_slice(&data).expect("valid json");
        let object = json.as_object().expect("an object");
        for key in [
            "endpoint",
            "identity",
            "id",
            "version",
            "ip",
            "hostname",
            "fqdn",
            "log_endpoint",
            "monitoring_endpoint",
            "backdoor_endpoint",
            "type",
            "app_name",
        ] {
            assert!(object.contains_key(key), "missing {key}");
        }
        assert_eq!(json["type"], serde_json::Value::Bool(false));
        assert_eq!(json["version"], "1.5.0");
        assert!(json["backdoor_endpoint"].is_null());
        assert!(
            !object.contains_key("service"),
            "the service is the parent's name"
        );
    }

    #[test]
    fn round_trip() {
        let mut instance = sample();
        instance.version = None;
        let back = decode(&instance.service, &instance.id, &encode(&instance)).expect("round trip");
        assert_eq!(back, instance);
    }

    #[test]
    fn strict_semver() {
        for good in [
            "0.15.0",
            "1.2.3",
            "10.0.1-alpha.1",
            "1.0.0-rc-1+build.5",
            "1.0.0+exp.sha",
        ] {
            assert!(is_strict_semver(good), "{good}");
        }
        for bad in [
            "1.0",
            "1",
            "",
            "1.0.0.0",
            "01.0.0",
            "1.0.0-",
            "1.0.0-a..b",
            "v1.0.0",
            "1.x.0",
            "1.0.0+",
        ] {
            assert!(!is_strict_semver(bad), "{bad}");
        }
    }
}
