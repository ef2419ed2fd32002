//! The route matcher: werkzeug-style rules (`/greet`, `/users/<id>`,
//! `/files/<path:rest>`, `/n/<int:n>`) compiled once, matched per request.
//! Pure: no IO, knows nothing of apps or sockets.

use std::collections::HashMap;

use crate::spec::AppSpec;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid route {path:?}: {reason}")]
pub struct RouteError {
    pub path: String,
    pub reason: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Converter {
    /// werkzeug's default: one path segment.
    Segment,
    Int,
    /// The rest of the path, slashes included.
    Path,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Static(String),
    Arg(String, Converter),
}

/// One compiled route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Upper-case method; empty matches any.
    pub method: String,
    pub endpoint: String,
    pub interface: String,
    /// The path as declared, e.g. `/hello/<name>`: the route's metrics label.
    pub pattern: String,
    parts: Vec<Part>,
}

/// What a request path and method lead to.
#[derive(Debug, PartialEq, Eq)]
pub enum Match<'a> {
    Found(&'a Route, HashMap<String, String>),
    /// The path is known, not for this method: the methods it takes, sorted
    /// (HEAD wherever GET is), for the 405's `Allow` header.
    MethodNotAllowed(Vec<String>),
    NotFound,
}

/// Every route of an app, in declaration order (first match wins).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RouteTable {
    routes: Vec<Route>,
}

fn parse(path: &str) -> Result<Vec<Part>, RouteError> {
    let bad = |reason: &str| RouteError {
        path: path.to_owned(),
        reason: reason.to_owned(),
    };
    let Some(rest) = path.strip_prefix('/') else {
        return Err(bad("a route starts with '/'"));
    };
    let mut parts = Vec::new();
    let segments: Vec<&str> = rest.split('/').collect();
    for (i, segment) in segments.iter().enumerate() {
        let Some(inner) = segment.strip_prefix('<').and_then(|s| s.strip_suffix('>')) else {
            if segment.contains(['<', '>']) {
                return Err(bad("a <variable> must fill a whole path segment"));
            }
            parts.push(Part::Static((*segment).to_owned()));
            continue;
        };
        let (converter, name) = match inner.split_once(':') {
            None => (Converter::Segment, inner),
            Some(("string", name)) => (Converter::Segment, name),
            Some(("int", name)) => (Converter::Int, name),
            Some(("path", name)) if i + 1 == segments.len() => (Converter::Path, name),
            Some(("path", _)) => return Err(bad("<path:..> must be the last segment")),
            Some((other, _)) => return Err(bad(&format!("unknown converter {other:?}"))),
        };
        let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(bad("a variable name is letters, digits and '_'"));
        }
        parts.push(Part::Arg(name.to_owned(), converter));
    }
    Ok(parts)
}

impl Route {
    fn matches(&self, path: &str) -> Option<HashMap<String, String>> {
        let mut args = HashMap::new();
        let mut rest = path.strip_prefix('/')?;
        for (i, part) in self.parts.iter().enumerate() {
            let last = i + 1 == self.parts.len();
            if let Part::Arg(name, Converter::Path) = part {
                if rest.is_empty() {
                    return None;
                }
                args.insert(name.clone(), rest.to_owned());
                return Some(args);
            }
            let (segment, after) = match rest.split_once('/') {
                Some((segment, after)) if !last => (segment, after),
                Some(_) => return None,
                None if last => (rest, ""),
                None => return None,
            };
            match part {
                Part::Static(s) if s == segment => {}
                Part::Arg(name, Converter::Segment) if !segment.is_empty() => {
                    args.insert(name.clone(), segment.to_owned());
                }
                Part::Arg(name, Converter::Int)
                    if !segment.is_empty() && segment.chars().all(|c| c.is_ascii_digit()) =>
                {
                    args.insert(name.clone(), segment.to_owned());
                }
                _ => return None,
            }
            rest = after;
        }
        Some(args)
    }
}

impl RouteTable {
    /// Compiles every route the app's interfaces declare.
    pub fn from_spec(spec: &AppSpec) -> Result<RouteTable, RouteError> {
        let mut routes = Vec::new();
        for iface in &spec.interfaces {
            for route in &iface.routes {
                routes.push(Route {
                    method: route.method.to_ascii_uppercase(),
                    endpoint: route.endpoint.clone(),
                    interface: iface.name.clone(),
                    pattern: route.path.clone(),
                    parts: parse(&route.path)?,
                });
            }
        }
        Ok(RouteTable { routes })
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// The first route matching path and method; 405 (with the methods the
    /// path takes) when only the method differs.
    pub fn lookup(&self, method: &str, path: &str) -> Match<'_> {
        let mut allowed: Vec<String> = Vec::new();
        for route in &self.routes {
            let Some(args) = route.matches(path) else {
                continue;
            };
            let same = route.method.is_empty()
                || route.method == method
                || (method == "HEAD" && route.method == "GET");
            if same {
                return Match::Found(route, args);
            }
            allowed.push(route.method.clone());
            if route.method == "GET" {
                allowed.push("HEAD".to_owned());
            }
        }
        if allowed.is_empty() {
            return Match::NotFound;
        }
        allowed.sort();
        allowed.dedup();
        Match::MethodNotAllowed(allowed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::{InterfaceDef, RouteDef};

    fn table(routes: &[(&str, &str, &str)]) -> RouteTable {
        let spec = AppSpec {
            interfaces: vec![InterfaceDef {
                name: "Web".to_owned(),
                version: None,
                methods: vec![],
                subscriptions: vec![],
                routes: routes
                    .iter()
                    .map(|(method, path, endpoint)| RouteDef {
                        method: (*method).to_owned(),
                        path: (*path).to_owned(),
                        endpoint: (*endpoint).to_owned(),
                    })
                    .collect(),
            }],
            ..AppSpec::default()
        };
        RouteTable::from_spec(&spec).expect("valid routes")
    }

    fn found(
        table: &RouteTable,
        method: &str,
        path: &str,
    ) -> Option<(String, Vec<(String, String)>)> {
        match table.lookup(method, path) {
            Match::Found(route, args) => {
                let mut args: Vec<_> = args.into_iter().collect();
                args.sort();
                Some((route.endpoint.clone(), args))
            }
            _ => None,
        }
    }

    #[test]
    fn static_and_variable_segments_match() {
        let t = table(&[
            ("GET", "/greet", "greet"),
            ("GET", "/users/<id>", "user"),
            ("GET", "/n/<int:n>", "number"),
            ("", "/files/<path:rest>", "file"),
            ("GET", "/", "index"),
        ]);
        assert_eq!(found(&t, "GET", "/greet"), Some(("greet".into(), vec![])));
        assert_eq!(
            found(&t, "GET", "/users/42"),
            Some(("user".into(), vec![("id".into(), "42".into())]))
        );
        assert_eq!(found(&t, "GET", "/n/7").map(|f| f.0), Some("number".into()));
        assert_eq!(t.lookup("GET", "/n/x"), Match::NotFound);
        assert_eq!(
            found(&t, "DELETE", "/files/a/b.txt"),
            Some(("file".into(), vec![("rest".into(), "a/b.txt".into())]))
        );
        assert_eq!(found(&t, "GET", "/").map(|f| f.0), Some("index".into()));
        assert_eq!(
            found(&t, "HEAD", "/greet").map(|f| f.0),
            Some("greet".into())
        );
        for missing in [
            "/greet/",
            "/greets",
            "/users/",
            "/users/1/2",
            "/files/",
            "",
            "greet",
        ] {
            assert_eq!(t.lookup("GET", missing), Match::NotFound, "{missing}");
        }
    }

    #[test]
    fn a_known_path_with_another_method_is_405() {
        let t = table(&[
            ("GET", "/users/<id>", "get"),
            ("POST", "/users/<id>", "post"),
        ]);
        assert_eq!(
            found(&t, "POST", "/users/1").map(|f| f.0),
            Some("post".into())
        );
        assert_eq!(
            t.lookup("PUT", "/users/1"),
            Match::MethodNotAllowed(vec!["GET".into(), "HEAD".into(), "POST".into()])
        );
        // Only the routes of that path count; each method once.
        let t = table(&[
            ("POST", "/items", "create"),
            ("DELETE", "/items/<id>", "delete"),
            ("POST", "/items", "again"),
        ]);
        assert_eq!(
            t.lookup("GET", "/items"),
            Match::MethodNotAllowed(vec!["POST".into()])
        );
    }

    #[test]
    fn bad_rules_are_refused() {
        for bad in [
            "greet",
            "/a<b>",
            "/<>",
            "/<x:y>",
            "/<path:p>/more",
            "/<a-b>",
        ] {
            assert!(parse(bad).is_err(), "{bad} must be refused");
        }
    }
}
