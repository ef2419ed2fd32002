//! The one thing lymphctl reads from lymphd's config file: its `socket:`.
//! Every other key is the daemon's business and is ignored here.

use std::path::{Path, PathBuf};

use anyhow::Context;

/// The `socket:` of the config file at `file`, if it names one.
pub fn socket(file: &Path) -> anyhow::Result<Option<PathBuf>> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read the config file {}", file.display()))?;
    socket_from_yaml(&text).map_err(|reason| {
        anyhow::anyhow!("cannot parse the config file {}: {reason}", file.display())
    })
}

/// The `socket:` of config text; the error is one line.
pub fn socket_from_yaml(text: &str) -> Result<Option<PathBuf>, String> {
    #[derive(serde::Deserialize)]
    struct SocketOnly {
        #[serde(default)]
        socket: Option<PathBuf>,
    }
    // An empty file is a valid lymphd config (all defaults).
    if text.trim().is_empty() {
        return Ok(None);
    }
    match serde_saphyr::from_str::<SocketOnly>(text) {
        Ok(config) => Ok(config.socket),
        Err(e) => {
            // The parser's message carries a source snippet over several lines;
            // its first line says it all.
            let reason = e.to_string();
            let first = reason.lines().next().unwrap_or_default();
            Err(first.strip_prefix("error: ").unwrap_or(first).to_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_socket_and_ignores_other_keys() {
        let text = "socket: /run/l.sock\nrpc:\n  default_timeout: 3s\n";
        assert_eq!(
            socket_from_yaml(text),
            Ok(Some(PathBuf::from("/run/l.sock")))
        );
        assert_eq!(socket_from_yaml("log:\n  level: info\n"), Ok(None));
        assert_eq!(socket_from_yaml(""), Ok(None));
    }

    #[test]
    fn parse_errors_are_one_line() {
        let err = socket_from_yaml("socket: [oops\n").expect_err("bad yaml");
        assert!(!err.contains('\n') && !err.is_empty(), "{err}");
    }
}
