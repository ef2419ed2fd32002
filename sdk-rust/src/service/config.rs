//! The program's config file (lymph's shape): `socket:`, `max_concurrency:`, `http_port:`
//! and `interfaces: { Name: { class: ..., <the interface's settings> } }`.
//! Parses YAML into plain values and hands each interface its section; knows
//! nothing about what an interface does with it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::ServiceError;

/// A parsed config file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FileConfig {
    pub path: PathBuf,
    pub socket: Option<PathBuf>,
    pub max_concurrency: Option<u32>,
    /// The port of the app's web service (its `#[route]`s).
    pub http_port: Option<u16>,
    /// Each interface's section, `class` removed.
    pub interfaces: BTreeMap<String, serde_json::Value>,
}

/// The raw shape; other top-level keys (lymph's `registry:`, `event_system:`,
/// ...) are the daemon's business and ignored here.
#[derive(Deserialize)]
struct RawConfig {
    #[serde(default)]
    socket: Option<PathBuf>,
    #[serde(default)]
    max_concurrency: Option<u32>,
    #[serde(default)]
    http_port: Option<u16>,
    #[serde(default)]
    interfaces: Option<BTreeMap<String, serde_json::Value>>,
}

impl FileConfig {
    pub fn read(path: &Path) -> Result<FileConfig, ServiceError> {
        let text = std::fs::read_to_string(path).map_err(|source| ServiceError::ReadConfig {
            path: path.to_path_buf(),
            source,
        })?;
        FileConfig::parse(path, &text)
    }

    pub fn parse(path: &Path, text: &str) -> Result<FileConfig, ServiceError> {
        let bad = |reason: String| ServiceError::BadConfig {
            path: path.to_path_buf(),
            reason,
        };
        let value: serde_json::Value = if text.trim().is_empty() {
            serde_json::Value::Object(serde_json::Map::new())
        } else {
            serde_saphyr::from_str(text).map_err(|e| bad(e.to_string()))?
        };
        if !value.is_object() {
            return Err(bad("the top level must be a map".into()));
        }
        let raw: RawConfig = serde_json::from_value(value).map_err(|e| bad(e.to_string()))?;
        let mut interfaces = BTreeMap::new();
        for (name, section) in raw.interfaces.unwrap_or_default() {
            let section = match section {
                serde_json::Value::Null => serde_json::Map::new(),
                serde_json::Value::Object(mut map) => {
                    map.remove("class");
                    map
                }
                _ => return Err(bad(format!("interfaces.{name} must be a map"))),
            };
            interfaces.insert(name, serde_json::Value::Object(section));
        }
        Ok(FileConfig {
            path: path.to_path_buf(),
            socket: raw.socket,
            max_concurrency: raw.max_concurrency,
            http_port: raw.http_port,
            interfaces,
        })
    }

    /// The section of interface `name`; an empty map when the file has none.
    pub fn section(&self, name: &str) -> serde_json::Value {
        self.interfaces
            .get(name)
            .cloned()
            .unwrap_or_else(|| serde_json::Value::Object(serde_json::Map::new()))
    }

    /// Every configured interface must be one the program provides.
    pub fn check_provided(&self, provided: &[String]) -> Result<(), ServiceError> {
        match self.interfaces.keys().find(|name| !provided.contains(name)) {
            None => Ok(()),
            Some(name) => Err(ServiceError::UnknownInterface {
                path: self.path.clone(),
                name: name.clone(),
                provided: if provided.is_empty() {
                    "none".into()
                } else {
                    provided.join(", ")
                },
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(text: &str) -> Result<FileConfig, ServiceError> {
        FileConfig::parse(Path::new("conf/x.yml"), text)
    }

    #[test]
    fn the_seeds_shape_gives_an_empty_section() {
        let config = parse("interfaces:\n    Greeting:\n        class: greeting:Greeting\n")
            .expect("parses");
        assert_eq!(config.section("Greeting"), json!({}));
        assert_eq!(config.section("Other"), json!({}));
        assert_eq!(config.socket, None);
    }

    #[test]
    fn sections_keep_settings_and_top_level_keys_are_read() {
        let text = "socket: /tmp/l.sock\nmax_concurrency: 8\nhttp_port: 4080\nregistry: {}\ninterfaces:\n  Greeting:\n    class: g:G\n    greeting: Hello\n";
        let config = parse(text).expect("parses");
        assert_eq!(config.section("Greeting"), json!({"greeting": "Hello"}));
        assert_eq!(config.socket, Some(PathBuf::from("/tmp/l.sock")));
        assert_eq!(config.max_concurrency, Some(8));
        assert_eq!(config.http_port, Some(4080));
    }

    #[test]
    fn empty_file_and_empty_section_are_fine() {
        assert_eq!(parse("").expect("parses").interfaces.len(), 0);
        let config = parse("interfaces:\n  Listen:\n").expect("parses");
        assert_eq!(config.section("Listen"), json!({}));
    }

    #[test]
    fn bad_yaml_names_the_file() {
        let error = parse("interfaces: [unclosed").expect_err("bad yaml");
        assert!(
            error
                .to_string()
                .starts_with("bad config file conf/x.yml: "),
            "{error}"
        );
        let error = parse("- a\n- b\n").expect_err("not a map");
        assert!(
            error.to_string().contains("the top level must be a map"),
            "{error}"
        );
        let error = parse("interfaces:\n  Greeting: 3\n").expect_err("not a map");
        assert!(
            error
                .to_string()
                .contains("interfaces.Greeting must be a map"),
            "{error}"
        );
    }

    #[test]
    fn unknown_interfaces_name_both_sides() {
        let config = parse("interfaces:\n  Greting: {}\n").expect("parses");
        let error = config
            .check_provided(&["Greeting".into()])
            .expect_err("typo");
        assert_eq!(
            error.to_string(),
            "config file conf/x.yml configures interface Greting, but this program provides Greeting"
        );
        assert!(config.check_provided(&["Greting".into()]).is_ok());
    }
}
