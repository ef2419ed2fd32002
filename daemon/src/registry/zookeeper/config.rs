//! The ZooKeeper registry's settings and the pure parts derived from them: the
//! connect string split into servers and lymph's chroot, and the znode paths.
//! No IO here.

use std::time::Duration;

use serde::Deserialize;

use super::ZookeeperError;

/// The chroot lymph uses when the connect string names none (`docs/wire.md` §2.1).
pub(crate) const DEFAULT_CHROOT: &str = "/lymph";

/// Where the fleet's ZooKeeper is and how long to wait for it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZookeeperConfig {
    /// `host:port[,host:port...][/chroot]`; without a chroot, lymph's `/lymph`.
    pub hosts: String,
    /// Negotiated with the server: how long a crashed daemon's nodes linger.
    #[serde(default = "default_session_timeout", with = "humantime_serde")]
    pub session_timeout: Duration,
    /// How long establishing one session may take before it counts as unreachable.
    #[serde(default = "default_connect_timeout", with = "humantime_serde")]
    pub connect_timeout: Duration,
}

fn default_session_timeout() -> Duration {
    // kazoo's default, so lymphd's crashed instances linger as long as lymph's.
    Duration::from_secs(10)
}

fn default_connect_timeout() -> Duration {
    Duration::from_secs(5)
}

impl ZookeeperConfig {
    /// A config for `hosts` with the default timeouts (10 s session, 5 s connect).
    #[cfg(any(test, feature = "conformance"))]
    pub fn new(hosts: impl Into<String>) -> Self {
        ZookeeperConfig {
            hosts: hosts.into(),
            session_timeout: default_session_timeout(),
            connect_timeout: default_connect_timeout(),
        }
    }
}

/// A connect string split the way kazoo reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    /// `host:port,host:port`, handed to the client unchanged.
    pub servers: String,
    /// Absolute, no trailing slash: `/lymph` or the connect string's chroot.
    pub root: String,
}

impl Target {
    pub fn parse(hosts: &str) -> Result<Target, ZookeeperError> {
        let hosts = hosts.trim();
        let (servers, chroot) = match chroot_start(hosts) {
            Some(at) => (&hosts[..at], &hosts[at..]),
            None => (hosts, ""),
        };
        let invalid = |reason: &str| ZookeeperError::InvalidHosts {
            hosts: hosts.to_owned(),
            reason: reason.to_owned(),
        };
        if servers.is_empty() || servers.split(',').any(|s| s.trim().is_empty()) {
            return Err(invalid("expected host:port[,host:port...][/chroot]"));
        }
        let root = chroot.trim_end_matches('/');
        let root = if root.is_empty() {
            DEFAULT_CHROOT
        } else {
            root
        };
        if root.contains("//") || root.split('/').any(|part| part == "." || part == "..") {
            return Err(invalid("the chroot is not a valid znode path"));
        }
        Ok(Target {
            servers: servers.to_owned(),
            root: root.to_owned(),
        })
    }

    /// `<root>/services`: one child per service name.
    pub fn services_path(&self) -> String {
        format!("{}/services", self.root)
    }

    /// `<root>/services/<service>`: one ephemeral child per instance.
    pub fn service_path(&self, service: &str) -> String {
        format!("{}/services/{service}", self.root)
    }

    /// `<root>/http/<service>/<id>`: lymph's web service instances.
    pub fn http_path(&self, service: &str, id: &str) -> String {
        format!("{}/http/{service}/{id}", self.root)
    }

    /// `<root>/services/<service>/<id>`.
    pub fn instance_path(&self, service: &str, id: &str) -> String {
        format!("{}/services/{service}/{id}", self.root)
    }
}

/// Where the chroot begins: the first `/` that is not part of a `scheme://`.
fn chroot_start(hosts: &str) -> Option<usize> {
    let bytes = hosts.as_bytes();
    (0..bytes.len()).find(|&i| {
        bytes[i] == b'/'
            && !(i >= 1 && bytes[i - 1] == b':' && bytes.get(i + 1) == Some(&b'/'))
            && !(i >= 2 && bytes[i - 1] == b'/' && bytes[i - 2] == b':')
    })
}

/// A service name or id usable as one znode path segment.
pub(crate) fn valid_segment(name: &str) -> bool {
    !name.is_empty() && name != "." && name != ".." && !name.contains('/')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(hosts: &str) -> Target {
        Target::parse(hosts).expect("valid connect string")
    }

    #[test]
    fn no_chroot_means_lymphs_root() {
        let t = parse("127.0.0.1:2181");
        assert_eq!(t.servers, "127.0.0.1:2181");
        assert_eq!(t.root, "/lymph");
        assert_eq!(
            t.instance_path("Greeting", "ab"),
            "/lymph/services/Greeting/ab"
        );
        assert_eq!(t.services_path(), "/lymph/services");
    }

    #[test]
    fn chroot_after_the_last_host() {
        let t = parse("127.0.0.1:2181,127.0.0.2:2181/chroot");
        assert_eq!(t.servers, "127.0.0.1:2181,127.0.0.2:2181");
        assert_eq!(t.root, "/chroot");
        assert_eq!(parse("zk:2181/a/b/").root, "/a/b");
        assert_eq!(parse("zk:2181/").root, "/lymph");
    }

    #[test]
    fn scheme_prefixes_are_not_a_chroot() {
        let t = parse("tcp://zk1:2181,tcp://zk2:2181/x");
        assert_eq!(t.servers, "tcp://zk1:2181,tcp://zk2:2181");
        assert_eq!(t.root, "/x");
        assert_eq!(parse("tcp://zk1:2181").root, "/lymph");
    }

    #[test]
    fn bad_connect_strings_are_refused() {
        for bad in ["", "/chroot", "a:1,,b:2", "zk:2181/a//b", "zk:2181/a/../b"] {
            let err = Target::parse(bad).expect_err(bad);
            assert!(err.to_string().contains("invalid zookeeper hosts"), "{err}");
        }
    }

    #[test]
    fn segments() {
        assert!(valid_segment("Greeting"));
        assert!(!valid_segment("a/b"));
        assert!(!valid_segment(""));
        assert!(!valid_segment(".."));
    }

    #[test]
    fn config_defaults_and_yaml() {
        let c = ZookeeperConfig::new("zk:2181");
        assert_eq!(c.session_timeout, Duration::from_secs(10));
        let c: ZookeeperConfig =
            serde_json::from_str(r#"{"hosts": "zk:2181", "session_timeout": "4s"}"#).expect("json");
        assert_eq!(c.session_timeout, Duration::from_secs(4));
        assert_eq!(c.connect_timeout, Duration::from_secs(5));
    }
}
