//! Real Python lymph 0.15 as an interop peer (set up by `scripts/lymph-peer`):
//! `PythonPeer` runs its services and its CLI against ZooKeeper and RabbitMQ,
//! isolated per test (own ZooKeeper chroot, own RabbitMQ virtual host).
//!
//! ```ignore
//! let peer = PythonPeer::new(); // panics naming what is missing
//! let _greeting = peer.instance(Py::Py27, "greeting", "127.0.0.2");
//! peer.wait_for_instances("Greeting", 1);
//! let out = peer.cli(Py::Py37, &["request", "Greeting.greet", r#"{"name": "Joe"}"#]);
//! // a lymphd daemon joins the same fleet with `peer.zk_hosts()` (and, for
//! // events, `peer.amqp_url()`).
//! ```
//!
//! Drop order matters: declare the peer first so its instances are killed
//! before it removes its chroot and virtual host.

use std::collections::HashSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use integration_tests::names::unique;
use integration_tests::proc::run_quietly;
use integration_tests::rabbitmq::Vhost;
use integration_tests::services::{RABBITMQ, ZOOKEEPER};
use nix::sys::signal::Signal;

use crate::harness::{Proc, run_bounded, text};

/// A Python instance is registered 2-5 s after start; CI machines are slow.
pub const PEER_STARTUP: Duration = Duration::from_secs(40);
/// One `lymph` CLI call takes ~1 s (ZooKeeper and AMQP connects).
pub const CLI_TIMEOUT: Duration = Duration::from_secs(30);

/// Which of the peer's Python installations to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Py {
    /// Python 2.7.18: the runtime lymph was built for; sends strings as msgpack bin.
    Py27,
    /// Python 3.7.16: sends msgpack str; does not understand py2's bin keys.
    Py37,
}

impl Py {
    /// The virtualenv's directory name inside the peer dir.
    pub fn venv(self) -> &'static str {
        match self {
            Py::Py27 => "py27",
            Py::Py37 => "py37",
        }
    }
}

/// The services `scripts/lymph-peer` installs: config file stem, interface.
const SERVICES: [(&str, &str); 4] = [
    ("greeting", "greeting:Greeting"),
    ("listen", "listen:Listen"),
    ("echo", "echo:Echo"),
    ("tracer", "tracer:Tracer"),
];

/// The peer install dir: `$LYMPH_PEER_DIR`, default `/tmp/lymph-peer`.
/// Panics naming `scripts/lymph-peer` when it is missing or incomplete.
pub fn peer_dir() -> PathBuf {
    let dir = PathBuf::from(
        std::env::var_os("LYMPH_PEER_DIR").unwrap_or_else(|| "/tmp/lymph-peer".into()),
    );
    let mut needed: Vec<PathBuf> = vec![
        dir.join("py27/bin/lymph"),
        dir.join("py37/bin/lymph"),
        dir.join("py27/lib/python2.7/site-packages/lymph_zk_compat.py"),
        dir.join("py37/lib/python3.7/site-packages/lymph_zk_compat.py"),
    ];
    needed.extend(
        SERVICES
            .iter()
            .map(|(stem, _)| dir.join(format!("{stem}.py"))),
    );
    let missing: Vec<String> = needed
        .iter()
        .filter(|p| !p.exists())
        .map(|p| p.display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "the Python lymph 0.15 peer is not set up in {} (missing: {}): run `scripts/lymph-peer {}` \
         (or set LYMPH_PEER_DIR to where it ran)",
        dir.display(),
        missing.join(", "),
        dir.display()
    );
    dir
}

/// Panics with the fix when ZooKeeper does not answer `srvr` on 127.0.0.1:2181.
pub fn require_zookeeper_answers() {
    let answer = four_letter_word(ZOOKEEPER, "srvr");
    assert!(
        answer
            .as_deref()
            .is_ok_and(|a| a.contains("Zookeeper version")),
        "ZooKeeper is not answering on {ZOOKEEPER} ({}): run scripts/services first",
        match answer {
            Ok(a) => format!("`srvr` answered {a:?}"),
            Err(e) => e,
        }
    );
}

/// Panics with the fix when RabbitMQ does not speak AMQP on 127.0.0.1:5672.
pub fn require_rabbitmq_answers() {
    let result = (|| -> Result<u8, String> {
        let mut stream = connect(RABBITMQ)?;
        stream
            .write_all(b"AMQP\x00\x00\x09\x01")
            .map_err(|e| e.to_string())?;
        let mut first = [0u8; 1];
        stream.read_exact(&mut first).map_err(|e| e.to_string())?;
        Ok(first[0])
    })();
    // Frame type 1 = method frame (connection.start).
    assert!(
        result == Ok(1),
        "RabbitMQ is not answering AMQP on {RABBITMQ} ({result:?}): run scripts/services first"
    );
}

fn connect(addr: &str) -> Result<TcpStream, String> {
    let addr: SocketAddr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(3))
        .map_err(|e| format!("connect {addr}: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(3)))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(Duration::from_secs(3)))
        .map_err(|e| e.to_string())?;
    Ok(stream)
}

fn four_letter_word(addr: &str, word: &str) -> Result<String, String> {
    let mut stream = connect(addr)?;
    stream
        .write_all(word.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut answer = String::new();
    stream
        .read_to_string(&mut answer)
        .map_err(|e| e.to_string())?;
    Ok(answer)
}

/// A name no other test (or earlier run) uses: `lymph-peer-it-<hex>`.
fn unique_name() -> String {
    unique("lymph-peer-it-")
}

/// One test's view of the Python peer: its own ZooKeeper chroot and RabbitMQ
/// virtual host, lymph configs pointing at both (in a temp dir that also
/// holds the logs), and helpers to run `lymph instance` and the `lymph` CLI.
/// Removes the chroot (if it made it) and the virtual host on drop.
pub struct PythonPeer {
    root: PathBuf,
    /// Configs, `.lymph.yml`, instance logs. Kept (and printed) if the test panics.
    dir: Option<tempfile::TempDir>,
    zk_hosts: String,
    owns_chroot: bool,
    /// Deleted when the peer is dropped.
    vhost: Vhost,
    spawned: Mutex<Vec<(String, PathBuf)>>,
    counter: AtomicU32,
}

impl PythonPeer {
    /// A fresh, isolated setup: new chroot `/lymph-peer-it-<hex>`, new vhost.
    pub fn new() -> PythonPeer {
        let name = unique_name();
        Self::build(format!("{ZOOKEEPER}/{name}"), true, name)
    }

    /// Shares a ZooKeeper `hosts` string (`host:port[/chroot]`) made elsewhere,
    /// e.g. by the lymphd side of a test; that chroot is then not removed here.
    pub fn with_zk_hosts(hosts: &str) -> PythonPeer {
        Self::build(hosts.to_owned(), false, unique_name())
    }

    fn build(zk_hosts: String, owns_chroot: bool, vhost: String) -> PythonPeer {
        let root = peer_dir();
        require_zookeeper_answers();
        require_rabbitmq_answers();
        let vhost = Vhost::create(vhost).unwrap_or_else(|e| {
            panic!(
                "{e}: the peer tests give each test its own RabbitMQ virtual host; \
                 install and start RabbitMQ with scripts/services"
            )
        });
        let dir = tempfile::Builder::new()
            .prefix("lymph-peer-")
            .tempdir()
            .expect("tempdir for the peer's configs");
        let peer = PythonPeer {
            root,
            dir: Some(dir),
            zk_hosts,
            owns_chroot,
            vhost,
            spawned: Mutex::new(Vec::new()),
            counter: AtomicU32::new(0),
        };
        let client = peer.container_yaml();
        std::fs::write(peer.dir().join("client.yml"), &client).expect("write client.yml");
        std::fs::write(peer.dir().join(".lymph.yml"), &client).expect("write .lymph.yml");
        for (stem, class) in SERVICES {
            let name = class.rsplit(':').next().expect("class has a name");
            peer.write_config(stem, &format!("    {name}:\n        class: {class}\n"));
        }
        peer
    }

    /// The peer install dir (`scripts/lymph-peer`'s DIR).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// This test's temp dir: configs and the instances' `.out`/`.err` logs.
    pub fn dir(&self) -> &Path {
        self.dir.as_ref().expect("temp dir lives until drop").path()
    }

    /// The ZooKeeper `hosts` string every config uses, e.g.
    /// `127.0.0.1:2181/lymph-peer-it-1a2b3c` — give it to lymphd's `registry.hosts`.
    pub fn zk_hosts(&self) -> &str {
        &self.zk_hosts
    }

    /// The chroot part of `zk_hosts` (`/lymph` when it has none, as in lymph).
    pub fn zk_chroot(&self) -> &str {
        self.zk_hosts
            .find('/')
            .map_or("/lymph", |i| &self.zk_hosts[i..])
    }

    /// This test's RabbitMQ virtual host (guest has full rights on it).
    pub fn amqp_vhost(&self) -> &str {
        &self.vhost.name
    }

    /// `amqp://guest:guest@127.0.0.1:5672/<vhost>`.
    pub fn amqp_url(&self) -> String {
        self.vhost.url()
    }

    /// The `container:` section (registry + events) of every config here.
    pub fn container_yaml(&self) -> String {
        format!(
            "container:\n\
             \x20   registry:\n\
             \x20       class: lymph.discovery.zookeeper:ZookeeperServiceRegistry\n\
             \x20       zkclient:\n\
             \x20           class: lymph_zk_compat:KazooClient\n\
             \x20           hosts: {hosts}\n\
             \x20   events:\n\
             \x20       class: lymph.events.kombu:KombuEventSystem\n\
             \x20       transport: amqp\n\
             \x20       hostname: {host}\n\
             \x20       port: {port}\n\
             \x20       virtual_host: {vhost}\n",
            hosts = self.zk_hosts,
            host = RABBITMQ.split(':').next().expect("host"),
            port = RABBITMQ.rsplit(':').next().expect("port"),
            vhost = self.vhost.name,
        )
    }

    /// Writes `<stem>.yml`: the container section plus `interfaces:` with the
    /// given (indented) body, e.g. `"    Greeting3:\n        class: greeting:Greeting\n"`.
    pub fn write_config(&self, stem: &str, interfaces: &str) -> PathBuf {
        let path = self.dir().join(format!("{stem}.yml"));
        let yaml = format!("{}\ninterfaces:\n{interfaces}", self.container_yaml());
        std::fs::write(&path, yaml).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    /// The config of one of the peer's services (`greeting`, `listen`, `echo`)
    /// or of one written with `write_config`.
    pub fn config(&self, stem: &str) -> PathBuf {
        let path = self.dir().join(format!("{stem}.yml"));
        assert!(
            path.exists(),
            "no lymph config {stem}.yml (the peer's services: greeting, listen, echo; \
             others come from write_config)"
        );
        path
    }

    fn command(&self, version: Py) -> Command {
        let venv_bin = self.root.join(version.venv()).join("bin");
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut paths = vec![venv_bin.clone()];
        paths.extend(std::env::split_paths(&path));
        let mut cmd = Command::new(venv_bin.join("lymph"));
        cmd.current_dir(self.dir())
            .env(
                "PATH",
                std::env::join_paths(paths).expect("PATH entries are joinable"),
            )
            .env("PYTHONPATH", &self.root)
            .env("PYTHONIOENCODING", "utf-8")
            .env("LC_ALL", "C.UTF-8")
            .env("PYTHONWARNINGS", "ignore")
            .env("PYTHONUNBUFFERED", "1")
            .env("LYMPH_CONFIG", self.dir().join("client.yml"))
            .env_remove("LYMPH_NODE_CONFIG")
            .env_remove("LYMPH_NODE")
            .env_remove("LYMPH_VARS")
            .env_remove("LYMPH_NODE_IP");
        cmd
    }

    /// Starts `lymph instance --config <service>.yml --ip <ip>` (an ip on
    /// loopback such as 127.0.0.2) on `version`; stdout/stderr go to
    /// `<dir>/<name>.out/.err` (INFO log on stderr). Killed when dropped — use
    /// [`PythonPeer::stop`] to have it unregister at once.
    pub fn instance(&self, version: Py, service: &str, ip: &str) -> Proc {
        let config = self.config(service);
        self.instance_with(version, service, &config, ip)
    }

    /// Like [`PythonPeer::instance`] with any config (see `write_config`).
    pub fn instance_with(&self, version: Py, label: &str, config: &Path, ip: &str) -> Proc {
        assert!(
            ip.starts_with("127."),
            "Python peer instances listen on loopback only, not {ip}"
        );
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let name = format!("{label}-{}-{ip}-{n}", version.venv());
        let mut cmd = self.command(version);
        cmd.arg("instance")
            .arg(format!("--config={}", config.display()))
            .arg(format!("--ip={ip}"))
            .arg("--loglevel=INFO");
        let proc = Proc::spawn(&name, cmd, self.dir());
        self.spawned
            .lock()
            .expect("spawned list")
            .push((name, proc.stderr.clone()));
        proc
    }

    /// Stops an instance with SIGTERM, so it removes its znodes at once
    /// (a killed one lingers for the ZooKeeper session timeout, 10 s).
    pub fn stop(mut proc: Proc) {
        proc.signal(Signal::SIGTERM);
        proc.wait(Duration::from_secs(15));
    }

    /// Starts a long-running `lymph` CLI command (e.g. `tail`) as a process
    /// of its own, output in `<dir>/<label>.out/.err`; killed when dropped.
    pub fn spawn_cli(&self, version: Py, label: &str, args: &[&str]) -> Proc {
        let mut cmd = self.command(version);
        cmd.args(args);
        Proc::spawn(label, cmd, self.dir())
    }

    /// Runs the `lymph` CLI of `version` with this test's client config
    /// (`$LYMPH_CONFIG`), e.g. `&["request", "Greeting.greet", r#"{"name": "Joe"}"#]`.
    /// Bounded by [`CLI_TIMEOUT`]; returns whatever it exited with.
    pub fn cli(&self, version: Py, args: &[&str]) -> Output {
        let mut cmd = self.command(version);
        cmd.args(args);
        run_bounded(cmd, CLI_TIMEOUT)
    }

    /// Like [`PythonPeer::cli`], but panics (with both outputs) unless it exits 0; returns stdout.
    pub fn cli_ok(&self, version: Py, args: &[&str]) -> String {
        let out = self.cli(version, args);
        assert!(
            out.status.success(),
            "`lymph {}` ({}) failed: {}\nstdout:\n{}\nstderr:\n{}",
            args.join(" "),
            version.venv(),
            out.status,
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    /// Distinct instances (identities) of `service` that `lymph discover --json`
    /// (py3.7 CLI) sees in this chroot; 0 when it is not registered.
    pub fn count(&self, service: &str) -> usize {
        let stdout = self.cli_ok(Py::Py37, &["discover", "--json"]);
        let all: serde_json::Value = serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("`lymph discover --json` printed non-JSON ({e}): {stdout}"));
        all.get(service)
            .and_then(serde_json::Value::as_array)
            .map_or(0, |instances| {
                instances
                    .iter()
                    .filter_map(|i| i.get("identity").and_then(serde_json::Value::as_str))
                    .collect::<HashSet<_>>()
                    .len()
            })
    }

    /// Waits (up to [`PEER_STARTUP`]) until `service` has exactly `n`
    /// instances; panics with the instances' logs otherwise.
    pub fn wait_for_instances(&self, service: &str, n: usize) {
        let deadline = Instant::now() + PEER_STARTUP;
        loop {
            let seen = self.count(service);
            if seen == n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{service} has {seen} instances in ZooKeeper {}, expected {n}; logs:\n{}",
                self.zk_hosts,
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits (up to [`PEER_STARTUP`]) until `proc`'s stdout or stderr contains `needle`.
    pub fn wait_for_output(&self, proc: &Proc, needle: &str) {
        let deadline = Instant::now() + PEER_STARTUP;
        while Instant::now() < deadline {
            if proc.stdout_text().contains(needle) || proc.stderr_text().contains(needle) {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!(
            "{} did not print {needle:?} within {PEER_STARTUP:?}; stdout:\n{}\nstderr:\n{}",
            proc.name,
            proc.stdout_text(),
            proc.stderr_text()
        );
    }

    /// The last lines of every instance's log, for failure messages.
    pub fn logs(&self) -> String {
        let spawned = self.spawned.lock().expect("spawned list");
        let mut all = String::new();
        for (name, stderr) in spawned.iter() {
            let log = std::fs::read_to_string(stderr).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(30)..].join("\n");
            all.push_str(&format!("--- {name} ({})\n{tail}\n", stderr.display()));
        }
        if all.is_empty() {
            all.push_str("(no instances started)\n");
        }
        all
    }
}

impl Drop for PythonPeer {
    // The virtual host is deleted after this, when the field is dropped.
    fn drop(&mut self) {
        if self.owns_chroot {
            let chroot = self.zk_chroot().to_owned();
            let mut zk = Command::new(self.root.join("py37/bin/python"));
            zk.env("PYTHONWARNINGS", "ignore").args([
                "-c",
                "import sys\n\
                 from kazoo.client import KazooClient\n\
                 zk = KazooClient(hosts=sys.argv[1])\n\
                 zk.start(timeout=5)\n\
                 zk.delete(sys.argv[2], recursive=True)\n\
                 zk.stop()\n",
                ZOOKEEPER,
                &chroot,
            ]);
            run_quietly(zk, Duration::from_secs(15));
        }
        if std::thread::panicking()
            && let Some(dir) = self.dir.take()
        {
            let kept = dir.keep();
            eprintln!(
                "lymph peer: kept configs and logs in {} (ZooKeeper {}, vhost {})",
                kept.display(),
                self.zk_hosts,
                self.vhost.name
            );
        }
    }
}

/// A `lymph request` to a Python peer may lose its first reply (lymph sends
/// 20 ms after connecting, `docs/wire.md` §3.10): retries once, only on a timeout.
fn request(peer: &PythonPeer, version: Py, args: &[&str]) -> Output {
    let out = peer.cli(version, args);
    if !out.status.success() && text(&out.stderr).contains("The request timed out") {
        return peer.cli(version, args);
    }
    out
}

#[test]
fn py27_greeting_answers_a_py37_request() {
    let peer = PythonPeer::new();
    let _greeting = peer.instance(Py::Py27, "greeting", "127.0.0.2");
    peer.wait_for_instances("Greeting", 1);

    let out = request(
        &peer,
        Py::Py37,
        &["request", "Greeting.greet", r#"{"name": "Joe"}"#],
    );
    assert!(
        out.status.success(),
        "lymph request failed: {}\n{}\nlogs:\n{}",
        text(&out.stdout),
        text(&out.stderr),
        peer.logs()
    );
    // py3's pprint of the reply text; py2's CLI would print u'Hi, Joe!'.
    assert_eq!(text(&out.stdout).trim(), "'Hi, Joe!'");
    assert!(text(&out.stdout).contains("Hi, Joe!"));
}

#[test]
fn lymph_discover_shows_one_greeting() {
    let peer = PythonPeer::new();
    let greeting = peer.instance(Py::Py37, "greeting", "127.0.0.3");
    peer.wait_for_instances("Greeting", 1);

    let listed = peer.cli_ok(Py::Py27, &["discover"]);
    let lines: Vec<&str> = listed.lines().collect();
    assert!(
        lines.contains(&"Greeting [1]") && lines.contains(&"lymph [1]"),
        "lymph discover printed:\n{listed}"
    );

    // Stopped cleanly, it leaves the registry at once (only the persistent parent stays).
    PythonPeer::stop(greeting);
    let listed = peer.cli_ok(Py::Py27, &["discover"]);
    assert_eq!(listed.trim(), "No registered services found");
}

#[test]
fn py27_listen_gets_an_event_emitted_by_the_py27_cli() {
    let peer = PythonPeer::new();
    let listen = peer.instance(Py::Py27, "listen", "127.0.0.4");
    peer.wait_for_instances("Listen", 1);
    // Its queue is consuming once kombu says so.
    peer.wait_for_output(&listen, "Connected to amqp://");

    peer.cli_ok(Py::Py27, &["emit", "greeted", r#"{"name": "Joe"}"#]);
    peer.wait_for_output(&listen, "Somebody greeted Joe");
}

#[test]
fn peers_share_a_chroot_only_when_told_to() {
    let peer = PythonPeer::new();
    assert!(peer.zk_hosts().starts_with("127.0.0.1:2181/lymph-peer-it-"));
    assert!(peer.zk_hosts().ends_with(peer.zk_chroot()));
    assert!(
        peer.amqp_url()
            .ends_with(&format!("/{}", peer.amqp_vhost()))
    );
    assert!(peer.root().join("greeting.py").exists());
    let _echo = peer.instance(Py::Py37, "echo", "127.0.0.5");
    peer.wait_for_instances("Echo", 1);

    // Same chroot (as a lymphd daemon would be given): sees the instance and calls it.
    let sharing = PythonPeer::with_zk_hosts(peer.zk_hosts());
    assert_eq!(sharing.count("Echo"), 1);
    let out = request(
        &sharing,
        Py::Py37,
        &["request", "--json", "Echo.echo", r#"{"text": "hé"}"#],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), r#""h\u00e9""#);
    let out = request(
        &sharing,
        Py::Py37,
        &["request", "--json", "--trace-id=tr-1", "Echo.trace", "{}"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), r#""tr-1""#);

    // A chroot of its own: sees nothing.
    let other = PythonPeer::new();
    assert_eq!(other.count("Echo"), 0);
}
