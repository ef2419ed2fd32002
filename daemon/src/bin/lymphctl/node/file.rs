//! The node file (`.lymph.yml`): finding it, parsing it strictly and turning
//! it into the processes to run. Reads one file; knows nothing of processes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::Context;
use serde::Deserialize;

/// The default node file's name, looked up from the current directory upwards.
pub const FILE_NAME: &str = ".lymph.yml";

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNodeFile {
    #[serde(default)]
    instances: BTreeMap<String, RawInstance>,
    /// lymph's shared sockets; lymphd's HTTP gateway binds its ports itself.
    #[serde(default)]
    sockets: Vec<RawSocket>,
    #[serde(default)]
    lymphd: Option<RawLymphd>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawInstance {
    command: String,
    #[serde(default = "one")]
    numprocesses: u32,
    /// Extra environment of the processes, e.g. `PYTHONPATH: examples/python`.
    #[serde(default)]
    env: BTreeMap<String, String>,
}

fn one() -> u32 {
    1
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSocket {
    #[serde(default)]
    #[allow(
        dead_code,
        reason = "informational: parsed to be checked, then ignored"
    )]
    host: Option<String>,
    #[allow(
        dead_code,
        reason = "informational: parsed to be checked, then ignored"
    )]
    port: u16,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLymphd {
    command: String,
    #[serde(default)]
    args: Vec<String>,
}

/// One process to run: a program, its arguments, its name (`greeting.1`)
/// and the environment the node file adds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Process {
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub env: Vec<(String, String)>,
    /// Where the command is written (`instances.greeting.command`); empty
    /// when the node chose it (the default lymphd).
    pub command_key: String,
}

/// A validated node file.
#[derive(Debug)]
pub struct NodeFile {
    /// The file's directory: every process runs there.
    pub dir: PathBuf,
    pub processes: Vec<Process>,
    /// `sockets:` entries, accepted and ignored.
    pub ignored_sockets: usize,
    /// The `lymphd:` to start when none listens; `None`: the default binary.
    pub lymphd: Option<Process>,
}

/// `.lymph.yml` in `start` or the nearest directory above it.
pub fn find(start: &Path) -> anyhow::Result<PathBuf> {
    start
        .ancestors()
        .map(|dir| dir.join(FILE_NAME))
        .find(|candidate| candidate.is_file())
        .with_context(|| {
            format!(
                "no {FILE_NAME} in {} or above it (or pass --node-file FILE)",
                start.display()
            )
        })
}

/// Reads and validates the node file at `path`.
pub fn load(path: &Path) -> anyhow::Result<NodeFile> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the node file {}", path.display()))?;
    let dir = path
        .canonicalize()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."));
    parse(&text, &dir)
        .map_err(|reason| anyhow::anyhow!("bad node file {}: {reason}", path.display()))
}

/// Node file text to processes; `dir` anchors relative program paths. The
/// error is one line and starts with the key path it is about
/// (`instances.greeting.command: ...`), when it is about one.
pub fn parse(text: &str, dir: &Path) -> Result<NodeFile, String> {
    let mut key = None;
    let parsed = serde_saphyr::with_deserializer_from_str(text, |deserializer| {
        serde_path_to_error::deserialize(deserializer).map_err(|e| {
            key = Some(e.path().to_string()).filter(|p| p != ".");
            e.into_inner()
        })
    });
    let raw: RawNodeFile = parsed.map_err(|e| {
        // Without the source snippet the parser appends: it says it all again.
        let reason = e.without_snippet().to_string();
        let first = reason.lines().next().unwrap_or_default();
        let first = first.strip_prefix("error: ").unwrap_or(first);
        match &key {
            Some(key) => format!("{key}: {first}"),
            None => first.to_owned(),
        }
    })?;
    if raw.instances.is_empty() {
        return Err("it names no instances".to_owned());
    }
    let mut processes = Vec::new();
    for (name, instance) in &raw.instances {
        if name.is_empty() || name.contains(char::is_whitespace) {
            return Err(format!("instance name {name:?} is empty or has spaces"));
        }
        if instance.numprocesses == 0 {
            return Err(format!("instances.{name}.numprocesses must be at least 1"));
        }
        let (program, args) = split_command(&instance.command, dir)
            .map_err(|reason| format!("instances.{name}.command: {reason}"))?;
        if let Some(bad) = instance
            .env
            .keys()
            .find(|k| k.is_empty() || k.contains('=') || k.contains('\0'))
        {
            return Err(format!(
                "instances.{name}.env: {bad:?} is not a variable name"
            ));
        }
        let env: Vec<(String, String)> = instance
            .env
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for n in 1..=instance.numprocesses {
            processes.push(Process {
                name: format!("{name}.{n}"),
                program: program.clone(),
                args: args.clone(),
                env: env.clone(),
                command_key: format!("instances.{name}.command"),
            });
        }
    }
    let lymphd = raw.lymphd.map(|l| Process {
        name: "lymphd".to_owned(),
        program: anchored(&l.command, dir),
        args: l.args,
        env: Vec::new(),
        command_key: "lymphd.command".to_owned(),
    });
    Ok(NodeFile {
        dir: dir.to_path_buf(),
        processes,
        ignored_sockets: raw.sockets.len(),
        lymphd,
    })
}

/// Splits a command as a shell would (quotes, escapes; no expansion).
fn split_command(command: &str, dir: &Path) -> Result<(PathBuf, Vec<String>), String> {
    let words = shlex::split(command).ok_or_else(|| format!("cannot split {command:?}"))?;
    let Some((program, args)) = words.split_first() else {
        return Err("it is empty".to_owned());
    };
    Ok((anchored(program, dir), args.to_vec()))
}

/// A relative path with a `/` (`target/release/greeting`) is taken from the
/// node file's directory; a bare name (`redis-server`) is looked up on PATH.
fn anchored(program: &str, dir: &Path) -> PathBuf {
    let path = Path::new(program);
    if path.is_relative() && program.contains('/') {
        dir.join(path)
    } else {
        path.to_path_buf()
    }
}

#[cfg(test)]
#[path = "file_tests.rs"]
mod tests;
