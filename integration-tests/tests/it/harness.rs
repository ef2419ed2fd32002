//! The test harness: starts real daemons and apps as child processes, each
//! daemon on its own socket in a temp dir, and kills them all on drop. Every
//! wait has a deadline. The process guard and bounded commands are the
//! crate's library (`integration_tests::proc`), shared with the benchmark.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use integration_tests::names::unique;
use integration_tests::services::ZOOKEEPER;
use lymph_proto::v1 as pb;
use lymph_proto::v1::lymph_client::LymphClient;
use nix::sys::signal::Signal;
use tonic::transport::Channel;

pub use integration_tests::proc::{Proc, run_bounded, text};

/// Generous: CI machines are slow and shared.
pub const STARTUP: Duration = Duration::from_secs(20);

/// A binary of the workspace, built by `cargo build --workspace --bins`.
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    // target/<profile>/deps/it-<hash> -> target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is not built: run scripts/test (it runs `cargo build --workspace --bins` first)",
        path.display()
    );
    path
}

/// Polls `cond` until it holds or `within` passes; panics naming `what`.
pub fn wait_until(what: &str, within: Duration, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if cond() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out after {within:?} waiting for {what}");
}

/// A real `lymphd` on its own socket.
pub struct TestDaemon {
    pub dir: tempfile::TempDir,
    pub socket: PathBuf,
    pub proc: Proc,
    /// Its arguments after `--socket`, for `restart`.
    args: Vec<String>,
    /// Environment variables set over the harness's own, for `restart`.
    env: Vec<(String, String)>,
}

impl TestDaemon {
    pub fn start() -> TestDaemon {
        Self::start_with(&[])
    }

    /// Starts with extra arguments (e.g. `--config FILE`).
    pub fn start_with(args: &[&str]) -> TestDaemon {
        Self::start_with_env(args, &[])
    }

    /// Starts with extra arguments and environment variables (over the
    /// harness's, e.g. `LYMPHD_METRICS_LISTEN`).
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> TestDaemon {
        let dir = tempfile::tempdir().expect("tempdir");
        let env = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Self::start_in(dir, args.iter().map(|a| (*a).to_owned()).collect(), env)
    }

    /// Starts `lymphd --socket <dir>/lymphd.sock args...` and waits until it listens.
    fn start_in(
        dir: tempfile::TempDir,
        args: Vec<String>,
        env: Vec<(String, String)>,
    ) -> TestDaemon {
        let socket = dir.path().join("lymphd.sock");
        let proc = spawn_lymphd("lymphd", &socket, &args, &env, dir.path());
        let daemon = TestDaemon {
            dir,
            socket,
            proc,
            args,
            env,
        };
        daemon.wait_listening();
        daemon
    }

    /// Starts a new daemon on the same socket with the same arguments (after
    /// the old one died).
    pub fn restart(&mut self) {
        self.proc = spawn_lymphd(
            "lymphd-restarted",
            &self.socket,
            &self.args,
            &self.env,
            self.dir.path(),
        );
        self.wait_listening();
    }

    fn wait_listening(&self) {
        wait_until("lymphd to listen", STARTUP, || {
            std::os::unix::net::UnixStream::connect(&self.socket).is_ok()
        });
    }

    /// Starts an app binary attached to this daemon.
    pub fn app(&self, name: &str, binary: &str, args: &[&str]) -> Proc {
        let mut cmd = Command::new(bin(binary));
        cmd.args(args)
            .current_dir(workspace_root())
            .env("LYMPH_SOCKET", &self.socket)
            .env("RUST_LOG", "info");
        Proc::spawn(name, cmd, self.dir.path())
    }

    /// `lymphctl status --json`'s entry for the attached app named `name`.
    pub fn app_status(&self, name: &str) -> Option<serde_json::Value> {
        let out = self.ctl(&["status", "--json"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let status: serde_json::Value =
            serde_json::from_str(&text(&out.stdout)).expect("json status");
        status["apps"]
            .as_array()?
            .iter()
            .find(|a| a["app_name"] == name)
            .cloned()
    }

    /// The `in_flight` of the attached app named `name` (`app_status`).
    pub fn in_flight(&self, name: &str) -> Option<u64> {
        self.app_status(name)?["in_flight"].as_u64()
    }

    /// Runs `lymphctl --socket <this daemon> args...` to completion.
    pub fn ctl(&self, args: &[&str]) -> Output {
        let mut cmd = Command::new(bin("lymphctl"));
        cmd.arg("--socket").arg(&self.socket).args(args);
        run_bounded(cmd, Duration::from_secs(60))
    }

    /// A gRPC client of the local API.
    pub async fn client(&self) -> LymphClient<Channel> {
        lymph_proto::connect(&self.socket).await.expect("connect")
    }

    /// How many instances of `service` are registered (0 when none).
    pub async fn count(&self, service: &str) -> usize {
        let reply = self
            .client()
            .await
            .discover(pb::DiscoverRequest {
                service: service.to_owned(),
            })
            .await
            .expect("discover")
            .into_inner();
        reply
            .services
            .iter()
            .find(|s| s.name == service)
            .map_or(0, |s| s.instances.len())
    }

    /// Waits until `service` has exactly `n` instances.
    pub async fn wait_for_instances(&self, service: &str, n: usize) {
        let deadline = Instant::now() + STARTUP;
        loop {
            let seen = self.count(service).await;
            if seen == n {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{service} has {seen} instances, expected {n}; daemon log:\n{}",
                self.proc.stderr_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Starts a call in the background (its own connection); await the handle for the reply.
    pub fn spawn_call(
        &self,
        service: &str,
        method: &str,
        args: serde_json::Value,
        timeout_ms: u32,
    ) -> tokio::task::JoinHandle<pb::CallReply> {
        let socket = self.socket.clone();
        let request = pb::CallRequest {
            service: service.to_owned(),
            method: method.to_owned(),
            body: rmp_serde::to_vec_named(&args).expect("msgpack").into(),
            timeout_ms,
            ..Default::default()
        };
        tokio::spawn(async move {
            let mut client = lymph_proto::connect(&socket).await.expect("connect");
            client.call(request).await.expect("call rpc").into_inner()
        })
    }

    /// Waits until some attached app has `n` requests in flight.
    pub async fn wait_in_flight(&self, n: u32) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let status = self
                .client()
                .await
                .status(pb::StatusRequest {})
                .await
                .expect("status")
                .into_inner();
            if status.apps.iter().any(|a| a.in_flight == n) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "no app reached {n} requests in flight"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// What the daemon answers a raw `Hello`: `Ok(())` when welcomed, else
    /// the rejection's message.
    pub async fn hello_answer(&self, hello: pb::Hello) -> Result<(), String> {
        let mut client = self.client().await;
        let (tx, rx) = tokio::sync::mpsc::channel(1);
        tx.send(pb::AppMessage {
            kind: Some(pb::app_message::Kind::Hello(hello)),
        })
        .await
        .expect("queue Hello");
        let answer = tokio::time::timeout(Duration::from_secs(10), async {
            let mut inbound = client
                .attach(tonic::codegen::tokio_stream::wrappers::ReceiverStream::new(
                    rx,
                ))
                .await
                .expect("attach")
                .into_inner();
            inbound.message().await.expect("an answer")
        })
        .await
        .expect("answered in time");
        match answer.and_then(|m| m.kind) {
            Some(pb::daemon_message::Kind::Welcome(_)) => Ok(()),
            Some(pb::daemon_message::Kind::Rejected(r)) => {
                Err(r.error.map(|e| e.message).unwrap_or_default())
            }
            other => panic!("Attach answered {other:?}"),
        }
    }

    /// A unary call with a JSON body, as a tool would make it.
    pub async fn call(
        &self,
        service: &str,
        method: &str,
        args: serde_json::Value,
        timeout_ms: u32,
    ) -> pb::CallReply {
        self.client()
            .await
            .call(pb::CallRequest {
                service: service.to_owned(),
                method: method.to_owned(),
                body: rmp_serde::to_vec_named(&args).expect("msgpack").into(),
                trace_id: String::new(),
                timeout_ms,
                version: String::new(),
            })
            .await
            .expect("call rpc")
            .into_inner()
    }
}

/// The reply's body decoded as JSON, or its error.
pub fn outcome(reply: &pb::CallReply) -> Result<serde_json::Value, pb::CallError> {
    match &reply.outcome {
        Some(pb::call_reply::Outcome::Body(body)) => {
            Ok(rmp_serde::from_slice(body).expect("reply is msgpack"))
        }
        Some(pb::call_reply::Outcome::Error(e)) => Err(e.clone()),
        None => panic!("reply without outcome"),
    }
}

pub fn kind(e: &pb::CallError) -> pb::ErrorKind {
    pb::ErrorKind::try_from(e.kind).expect("known kind")
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// Emits a `work` event that the test app holds for two minutes through
/// `emitter`, SIGKILLs whichever of `one` and `two` holds it, and expects the
/// other to get it within `wait`: a delivery held by a dead app is not lost.
pub fn held_event_moves_on_when_its_holder_dies(
    emitter: &TestDaemon,
    one: Proc,
    two: Proc,
    wait: Duration,
) {
    let out = emitter.ctl(&["emit", "work", r#"{"n": 1, "hold_ms": 120000}"#]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    wait_until("one instance holds work 1", wait, || {
        one.lines_with("handling 1 attempt") + two.lines_with("handling 1 attempt") == 1
    });
    let (holder, other) = if one.lines_with("handling 1") == 1 {
        (one, two)
    } else {
        (two, one)
    };
    holder.signal(Signal::SIGKILL);
    wait_until("the other instance gets work 1", wait, || {
        other.lines_with("handling 1 attempt") == 1
    });
}

/// A ZooKeeper chroot of its own for one test: `127.0.0.1:2181/lymphd-it-<hex>`.
pub fn zookeeper_chroot() -> String {
    format!("{ZOOKEEPER}/{}", unique("lymphd-it-"))
}

/// Panics with the fix when ZooKeeper is not up: these tests never skip.
pub fn require_zookeeper() {
    assert!(
        std::net::TcpStream::connect_timeout(
            &ZOOKEEPER.parse().expect("addr"),
            Duration::from_secs(2)
        )
        .is_ok(),
        "ZooKeeper is not answering on {ZOOKEEPER}: run scripts/services first"
    );
}

impl TestDaemon {
    /// A daemon in fleet mode: ZooKeeper registry at `hosts`, ZeroMQ endpoint
    /// on `ip` (a loopback address such as 127.0.0.2) and `port` (0: any).
    pub fn start_fleet(hosts: &str, ip: &str, port: u16) -> TestDaemon {
        Self::start_fleet_with(hosts, ip, port, "")
    }

    /// `start_fleet` with events on RabbitMQ at `amqp_url`, in `mode` (lymph or durable).
    pub fn start_fleet_events(hosts: &str, ip: &str, amqp_url: &str, mode: &str) -> TestDaemon {
        let events = format!("events:\n  backend: amqp\n  url: {amqp_url}\n  mode: {mode}\n");
        Self::start_fleet_with(hosts, ip, 0, &events)
    }

    /// `start_fleet` with more YAML appended to the config.
    pub fn start_fleet_with(hosts: &str, ip: &str, port: u16, extra_yaml: &str) -> TestDaemon {
        require_zookeeper();
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("lymphd.yml");
        let yaml = format!("{}{extra_yaml}", fleet_config(hosts, ip, port));
        std::fs::write(&config, yaml).expect("write config");
        let config = config.to_str().expect("utf-8 temp path").to_owned();
        Self::start_in(dir, vec!["--config".to_owned(), config], Vec::new())
    }
}

fn spawn_lymphd(
    name: &str,
    socket: &Path,
    args: &[String],
    env: &[(String, String)],
    dir: &Path,
) -> Proc {
    let mut cmd = Command::new(bin("lymphd"));
    cmd.arg("--socket")
        .arg(socket)
        .args(args)
        .env("LYMPHD_LOG", "info")
        // A port of its own (any free one; `Status` says which).
        .env("LYMPHD_METRICS_LISTEN", "127.0.0.1:0")
        .envs(env.iter().map(|(k, v)| (k, v)));
    Proc::spawn(name, cmd, dir)
}

pub fn fleet_config(hosts: &str, ip: &str, port: u16) -> String {
    format!(
        "registry:\n  backend: zookeeper\n  hosts: {hosts}\n  session_timeout: 4s\n\
         rpc:\n  ip: {ip}\n  port: {port}\n"
    )
}

/// A RabbitMQ node of one test's own (its own port, data dir and node name),
/// for tests that stop and start the broker without disturbing the others.
/// Stopped when dropped.
pub struct PrivateBroker {
    node: String,
    pub port: u16,
    _dir: tempfile::TempDir,
}

fn free_local_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

fn rabbitmqctl_node(node: &str, args: &[&str]) -> Output {
    let mut cmd = Command::new("rabbitmqctl");
    cmd.arg("-q").arg("-n").arg(node).args(args);
    run_bounded(cmd, Duration::from_secs(90))
}

impl PrivateBroker {
    pub fn start() -> PrivateBroker {
        let dir = tempfile::tempdir().expect("tempdir");
        // The broker runs as the rabbitmq user: let it write its data dir.
        if let Ok(Some(user)) = nix::unistd::User::from_name("rabbitmq") {
            std::os::unix::fs::chown(dir.path(), Some(user.uid.as_raw()), Some(user.gid.as_raw()))
                .expect("chown");
        }
        let port = free_local_port();
        let dist = free_local_port();
        let node = format!("lymphdit{port}@localhost");
        let base = dir.path().display().to_string();
        let mut cmd = Command::new("rabbitmq-server");
        cmd.arg("-detached")
            .env("RABBITMQ_NODENAME", &node)
            .env("RABBITMQ_NODE_PORT", port.to_string())
            .env("RABBITMQ_DIST_PORT", dist.to_string())
            .env("RABBITMQ_MNESIA_BASE", format!("{base}/mnesia"))
            .env("RABBITMQ_LOG_BASE", format!("{base}/log"))
            .env("RABBITMQ_ENABLED_PLUGINS_FILE", format!("{base}/plugins"))
            .env("RABBITMQ_PID_FILE", format!("{base}/pid"));
        let out = run_bounded(cmd, Duration::from_secs(60));
        assert!(
            out.status.success(),
            "cannot start a private RabbitMQ node (install RabbitMQ with scripts/services): {}",
            text(&out.stderr)
        );
        let broker = PrivateBroker {
            node,
            port,
            _dir: dir,
        };
        broker.wait_listening();
        broker
    }

    fn wait_listening(&self) {
        wait_until(
            "the private RabbitMQ node to listen",
            Duration::from_secs(90),
            || std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok(),
        );
    }

    pub fn url(&self) -> String {
        format!("amqp://guest:guest@127.0.0.1:{}/%2f", self.port)
    }

    /// Stops the broker application (connections drop, non-durable state is
    /// lost), waits `down_for`, starts it again and waits until it listens.
    pub fn restart(&self, down_for: Duration) {
        let out = rabbitmqctl_node(&self.node, &["stop_app"]);
        assert!(out.status.success(), "stop_app: {}", text(&out.stderr));
        std::thread::sleep(down_for);
        let out = rabbitmqctl_node(&self.node, &["start_app"]);
        assert!(out.status.success(), "start_app: {}", text(&out.stderr));
        self.wait_listening();
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        let _ = rabbitmqctl_node(&self.node, &["stop"]);
    }
}

/// A command's stdout once it succeeded; else fails the test with its status
/// and both outputs, naming `what` it was.
pub fn ok(out: &Output, what: &str) -> String {
    assert!(
        out.status.success(),
        "{what} failed: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}
