//! What an app declares in its `Hello` (interfaces, methods, subscriptions), validated once into plain types. Pure data: no IO.

use std::collections::HashSet;

use crate::names;

/// Everything an app serves.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AppSpec {
    pub app_name: String,
    pub interfaces: Vec<InterfaceDef>,
    /// 0 = the daemon's default.
    pub max_concurrency: u32,
    pub http_port: u16,
    pub sdk: String,
    pub pid: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InterfaceDef {
    pub name: String,
    pub version: Option<String>,
    pub methods: Vec<MethodDef>,
    pub subscriptions: Vec<SubscriptionDef>,
    pub routes: Vec<RouteDef>,
}

/// One HTTP route: werkzeug's rule syntax, checked by `web::routes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteDef {
    /// Upper-case HTTP method; empty for any method.
    pub method: String,
    pub path: String,
    pub endpoint: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MethodDef {
    pub name: String,
    pub params: Vec<String>,
    pub help: String,
    /// The typed errors the handler declares it may raise (`raises`), for inspect.
    pub raises: Vec<String>,
    /// Requests the handler takes at once; 0: no limit of its own.
    pub concurrency: u32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubscriptionDef {
    pub event_type: String,
    pub broadcast: bool,
    pub retry: u32,
    /// The handler's name; the queue is `<Interface>-<handler>` (lymph's naming).
    pub handler: String,
    /// Deliveries the handler holds at once; 0: no limit of its own.
    pub concurrency: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SpecError(pub String);

/// A name lymph can route: letters, digits, `_` and `-`, no dots (the subject
/// is split at its last dot).
fn check_name(what: &str, name: &str) -> Result<(), SpecError> {
    let ok = !name.is_empty()
        && name.len() <= names::MAX_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(SpecError(format!(
            "invalid {what} {}: use 1 to 128 letters, digits, '_' or '-'",
            names::shown(name)
        )))
    }
}

/// lymph parses versions with strict semver: `X.Y.Z[-pre][+build]`, the
/// pre-release and build parts dot-separated letters, digits and `-`.
pub fn check_version(version: &str) -> Result<(), SpecError> {
    let core = version.split(['-', '+']).next().unwrap_or_default();
    let parts: Vec<&str> = core.split('.').collect();
    let numeric = |p: &&str| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit());
    let tail_ok = version
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+'));
    if parts.len() == 3 && parts.iter().all(numeric) && tail_ok && version.len() <= names::MAX_NAME
    {
        Ok(())
    } else {
        Err(SpecError(format!(
            "invalid version {}: lymph needs strict semver like 1.2.0",
            names::shown(version)
        )))
    }
}

impl From<names::NameError> for SpecError {
    fn from(e: names::NameError) -> SpecError {
        SpecError(e.to_string())
    }
}

/// Error types one method may declare in `raises`.
const MAX_RAISES: usize = 64;

/// The length of an instance id (32 hex), part of a broadcast queue's name.
const INSTANCE_ID_LEN: usize = 32;

impl AppSpec {
    /// Every name the app declares, checked as it arrives: the app's own,
    /// interfaces, versions, methods, subscriptions (and the queue names they
    /// make), routes; the SDK's name and parameter names bounded and printable.
    pub fn validate(&self) -> Result<(), SpecError> {
        if self.http_port == 0
            && let Some(iface) = self.interfaces.iter().find(|i| !i.routes.is_empty())
        {
            return Err(SpecError(format!(
                "interface {} declares HTTP routes but http_port is 0: name its port (1-65535)",
                iface.name
            )));
        }
        if !self.app_name.is_empty() {
            names::check_word("app name", &self.app_name)?;
        }
        names::check_version_text("sdk name", &self.sdk)?;
        let mut seen = HashSet::new();
        for iface in &self.interfaces {
            check_name("interface name", &iface.name)?;
            if iface.name == "lymph" {
                return Err(SpecError(
                    "the interface name \"lymph\" is reserved for the daemon".to_owned(),
                ));
            }
            if let Some(v) = &iface.version {
                check_version(v)?;
            }
            if !seen.insert((iface.name.as_str(), iface.version.as_deref())) {
                return Err(SpecError(format!(
                    "interface {} is declared twice",
                    iface.name
                )));
            }
            let mut methods = HashSet::new();
            for m in &iface.methods {
                check_name("method name", &m.name)?;
                for param in &m.params {
                    names::check_version_text("parameter name", param)?;
                }
                if m.raises.len() > MAX_RAISES {
                    return Err(SpecError(format!(
                        "method {}.{} declares {} error types in raises; at most {MAX_RAISES}",
                        iface.name,
                        m.name,
                        m.raises.len()
                    )));
                }
                for error_type in &m.raises {
                    if error_type.is_empty() {
                        return Err(SpecError(format!(
                            "method {}.{} declares an empty error type in raises",
                            iface.name, m.name
                        )));
                    }
                    names::check_version_text("error type", error_type)?;
                }
                if !methods.insert(m.name.as_str()) {
                    return Err(SpecError(format!(
                        "method {}.{} is declared twice",
                        iface.name, m.name
                    )));
                }
            }
            for s in &iface.subscriptions {
                if s.event_type.is_empty() {
                    return Err(SpecError(format!(
                        "interface {} subscribes to an empty event type",
                        iface.name
                    )));
                }
                names::check_pattern("event type", &s.event_type)?;
                if !s.handler.is_empty() {
                    names::check_word("handler name", &s.handler)?;
                }
                let handler = if s.handler.is_empty() {
                    &s.event_type
                } else {
                    &s.handler
                };
                // The longest queue the subscription can make: broadcast's
                // `<Interface>-<handler>-<instance>`.
                let longest = iface.name.len() + handler.len() + INSTANCE_ID_LEN + 2;
                if longest > names::MAX_QUEUE_NAME {
                    names::check_queue_name(&format!(
                        "{}-{handler}-{}",
                        iface.name,
                        "0".repeat(INSTANCE_ID_LEN)
                    ))?;
                }
            }
            for route in &iface.routes {
                names::check_route(&route.path)?;
                if !route.endpoint.is_empty() {
                    names::check_word("route endpoint", &route.endpoint)?;
                }
                let method_ok = route.method.len() <= 16
                    && route.method.chars().all(|c| c.is_ascii_alphabetic());
                if !method_ok {
                    return Err(SpecError(format!(
                        "invalid HTTP method {} of route {}: use up to 16 letters (or none for any)",
                        names::shown(&route.method),
                        names::shown(&route.path)
                    )));
                }
            }
        }
        Ok(())
    }

    /// The interface serving `name` (unversioned preferred, else the highest version).
    pub fn interface(&self, name: &str) -> Option<&InterfaceDef> {
        let mut candidates: Vec<&InterfaceDef> =
            self.interfaces.iter().filter(|i| i.name == name).collect();
        candidates.sort_by_key(|i| i.version.as_deref().map(version_key));
        if let Some(unversioned) = candidates.iter().find(|i| i.version.is_none()) {
            return Some(unversioned);
        }
        candidates.last().copied()
    }
}

/// Orders strict semver versions numerically (pre-release tags ignored).
pub fn version_key(version: &str) -> (u64, u64, u64) {
    let core = version.split(['-', '+']).next().unwrap_or_default();
    let mut it = core.split('.').map(|p| p.parse::<u64>().unwrap_or(0));
    (
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
        it.next().unwrap_or(0),
    )
}

impl InterfaceDef {
    pub fn method(&self, name: &str) -> Option<&MethodDef> {
        self.methods.iter().find(|m| m.name == name)
    }

    pub fn method_names(&self) -> String {
        let names: Vec<&str> = self.methods.iter().map(|m| m.name.as_str()).collect();
        names.join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn iface(name: &str, version: Option<&str>) -> InterfaceDef {
        InterfaceDef {
            name: name.to_owned(),
            version: version.map(str::to_owned),
            methods: vec![MethodDef {
                name: "greet".to_owned(),
                params: vec!["name".to_owned()],
                help: String::new(),
                raises: vec![],
                concurrency: 0,
            }],
            subscriptions: vec![],
            routes: vec![],
        }
    }

    #[test]
    fn accepts_a_plain_spec() {
        let spec = AppSpec {
            interfaces: vec![iface("Greeting", None), iface("Greeting", Some("1.2.0"))],
            ..AppSpec::default()
        };
        assert_eq!(spec.validate(), Ok(()));
    }

    #[test]
    fn refuses_bad_names_versions_and_duplicates() {
        for bad in [
            iface("Gree.ting", None),
            iface("", None),
            iface("lymph", None),
            iface("Greeting", Some("1.0")),
        ] {
            let spec = AppSpec {
                interfaces: vec![bad.clone()],
                ..AppSpec::default()
            };
            assert!(spec.validate().is_err(), "{bad:?} must be refused");
        }
        let twice = AppSpec {
            interfaces: vec![iface("A", None), iface("A", None)],
            ..AppSpec::default()
        };
        assert!(twice.validate().is_err());
    }

    #[test]
    fn picks_unversioned_else_highest() {
        let spec = AppSpec {
            interfaces: vec![iface("A", Some("1.10.0")), iface("A", Some("1.9.0"))],
            ..AppSpec::default()
        };
        assert_eq!(
            spec.interface("A").and_then(|i| i.version.as_deref()),
            Some("1.10.0")
        );
    }
}
