//! Where one side of a run gets the programs it starts (`lymphd`,
//! `bench-app`, the examples' `greeting`) and the environment its daemons get
//! on top of the harness's own: one run has one such side, an A/B run two.

use std::path::{Path, PathBuf};

/// The programs of one side and its daemons' extra environment.
#[derive(Debug, Clone)]
pub struct Binaries {
    pub dir: PathBuf,
    /// Set on every `lymphd` of this side (e.g. `LYMPHD_RPC_IDLE_TIMEOUT=1s`).
    pub daemon_env: Vec<(String, String)>,
}

impl Binaries {
    /// The directory the harness itself runs from: this checkout's build.
    pub fn beside(exe: &Path) -> Option<Binaries> {
        Some(Binaries {
            dir: exe.parent()?.to_path_buf(),
            daemon_env: Vec::new(),
        })
    }

    pub fn path(&self, program: &str) -> PathBuf {
        self.dir.join(program)
    }

    /// The programs of `wanted` that are not in the directory.
    pub fn missing<'a>(&self, wanted: &[&'a str]) -> Vec<&'a str> {
        wanted
            .iter()
            .copied()
            .filter(|p| !self.path(p).is_file())
            .collect()
    }
}

/// `VAR=VALUE`, as `--ab-env` takes it: a non-empty name without `=`.
pub fn parse_env(arg: &str) -> Result<(String, String), String> {
    match arg.split_once('=') {
        Some((var, value)) if !var.is_empty() => Ok((var.to_owned(), value.to_owned())),
        _ => Err(format!("{arg:?} is not VAR=VALUE")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_assignments_split_at_the_first_equals_sign() {
        assert_eq!(
            parse_env("LYMPHD_RPC_IDLE_TIMEOUT=1s"),
            Ok(("LYMPHD_RPC_IDLE_TIMEOUT".to_owned(), "1s".to_owned()))
        );
        assert_eq!(parse_env("A=b=c"), Ok(("A".to_owned(), "b=c".to_owned())));
        assert_eq!(parse_env("EMPTY="), Ok(("EMPTY".to_owned(), String::new())));
        assert!(parse_env("NOVALUE").is_err());
        assert!(parse_env("=x").is_err());
    }
}
