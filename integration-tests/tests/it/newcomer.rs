//! What a newcomer runs into first (issue 19), with real processes: a
//! `lymphctl request` whose daemon dies mid-call, its default and spelled
//! timeouts, the gateway's 405 and its `Allow`, `inspect` showing `raises`,
//! a config error naming the file and the key path once, and `lymphctl node`
//! giving up on a command that does not exist.

use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::harness::{Proc, TestDaemon, bin, run_bounded, text, wait_until};
use crate::web::{app_config, free_port, http};

#[tokio::test]
async fn a_request_whose_daemon_dies_mid_call_is_unavailable_naming_the_socket() {
    let daemon = TestDaemon::start();
    let _app = daemon.app("testapp", "testapp", &[]);
    daemon.wait_for_instances("Test", 1).await;
    let mut cmd = Command::new(bin("lymphctl"));
    cmd.arg("--socket").arg(&daemon.socket).args([
        "request",
        "Test.sleep",
        r#"{"ms": 20000}"#,
        "--timeout",
        "30s",
    ]);
    let mut request = Proc::spawn("request", cmd, daemon.dir.path());
    daemon.wait_in_flight(1).await;

    daemon.proc.signal(Signal::SIGKILL);
    let status = request.wait(Duration::from_secs(10));
    assert_eq!(status.code(), Some(1), "{}", request.stderr_text());
    let stderr = request.stderr_text();
    let expected = format!(
        "lymphctl: unavailable: lymphd on {} went away mid-call (",
        daemon.socket.display()
    );
    assert!(stderr.starts_with(&expected), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
}

#[tokio::test]
async fn a_request_without_timeout_gets_the_daemons_default_and_spelled_timeouts_work() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("lymphd.yml");
    std::fs::write(&config, "rpc:\n  default_timeout: 800ms\n").expect("write config");
    let daemon = TestDaemon::start_with(&["--config", config.to_str().expect("utf-8")]);
    let _app = daemon.app("testapp", "testapp", &[]);
    daemon.wait_for_instances("Test", 1).await;

    // No --timeout: the daemon's rpc.default_timeout (800ms), not a CLI default.
    let started = Instant::now();
    let out = daemon.ctl(&["request", "Test.sleep", r#"{"ms": 5000}"#]);
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        "lymphctl: deadline exceeded: no reply within 800ms\n"
    );
    assert!(took < Duration::from_secs(4), "took {took:?}");

    for (timeout, said) in [("300ms", "300ms"), ("0.4", "400ms"), ("1s", "1s")] {
        let out = daemon.ctl(&[
            "request",
            "Test.sleep",
            r#"{"ms": 5000}"#,
            "--timeout",
            timeout,
        ]);
        assert_eq!(
            text(&out.stderr),
            format!("lymphctl: deadline exceeded: no reply within {said}\n"),
            "--timeout {timeout}"
        );
    }
    // A --timeout above the daemon's default is the call's, not cut to it.
    let out = daemon.ctl(&[
        "request",
        "Test.sleep",
        r#"{"ms": 1200}"#,
        "--timeout",
        "1.5",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "1200\n");

    let out = daemon.ctl(&["request", "Test.sleep", "{}", "--timeout", "3x"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("write seconds (1.5) or 1s, 500ms"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn a_405_lists_the_routes_methods_in_allow() {
    let daemon = TestDaemon::start();
    let port = free_port();
    let config = app_config(&daemon, port);
    let _web = daemon.app("web", "web", &["--config", config.to_str().expect("utf-8")]);
    daemon.wait_for_instances("Web", 1).await;
    let reply = http(port, "POST", "/greet", "Content-Length: 0\r\n").expect("http");
    assert_eq!(reply.status, 405, "{}", reply.body);
    assert_eq!(reply.header("allow"), Some("GET, HEAD"));
    assert_eq!(
        reply.body,
        "method not allowed; this path takes GET, HEAD\n"
    );
}

#[tokio::test]
async fn inspect_shows_the_errors_a_method_raises() {
    let daemon = TestDaemon::start();
    let _app = daemon.app("testapp", "testapp", &[]);
    daemon.wait_for_instances("Test", 1).await;
    let out = daemon.ctl(&["inspect", "Test"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("\nrpc Test.fail(message)  raises TestError\n"),
        "{stdout}"
    );
    assert!(stdout.contains("\nrpc Test.echo(text)\n"), "{stdout}");
}

#[test]
fn a_bad_config_value_names_the_file_and_the_key_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("lymphd.yml");
    std::fs::write(&config, "rpc:\n  default_timeout: 3x\n").expect("write config");
    let mut cmd = Command::new(bin("lymphd"));
    cmd.arg("--config")
        .arg(&config)
        .arg("--socket")
        .arg(dir.path().join("l.sock"));
    let out = run_bounded(cmd, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(64), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.starts_with(&format!(
            "lymphd: invalid config file {}: rpc.default_timeout: ",
            config.display()
        )),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert_eq!(stderr.matches("\"3x\"").count(), 1, "{stderr}");

    // A value that parses but is refused names the file too.
    std::fs::write(&config, "rpc:\n  default_timeout: 10m\n").expect("write config");
    let mut cmd = Command::new(bin("lymphd"));
    cmd.arg("--config")
        .arg(&config)
        .arg("--socket")
        .arg(dir.path().join("l.sock"));
    let out = run_bounded(cmd, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(64), "{}", text(&out.stderr));
    assert_eq!(
        text(&out.stderr),
        format!(
            "lymphd: invalid config file {}: rpc.default_timeout must not exceed rpc.max_timeout\n",
            config.display()
        )
    );
}

#[test]
fn node_names_a_missing_command_and_gives_up_on_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("lymphd.sock");
    let node_file = dir.path().join("node.yml");
    std::fs::write(
        &node_file,
        "instances:\n  greeting:\n    command: target/debug/greting --config x.yml\n",
    )
    .expect("write node file");
    let mut cmd = Command::new(bin("lymphctl"));
    cmd.arg("--socket")
        .arg(&socket)
        .arg("node")
        .arg("--node-file")
        .arg(&node_file);
    let mut node = Proc::spawn("node", cmd, dir.path());
    let status = node.wait(Duration::from_secs(30));
    assert_eq!(status.code(), Some(1), "{}", node.stderr_text());
    let missing = dir.path().join("target/debug/greting");
    let problem = format!(
        "node: greeting.1 cannot start: {} does not exist (see instances.greeting.command)",
        missing.display()
    );
    let stdout = node.stdout_text();
    let tries: Vec<&str> = stdout.lines().filter(|l| l.starts_with(&problem)).collect();
    assert_eq!(
        tries,
        [
            format!("{problem}; retrying in 1s"),
            format!("{problem}; retrying in 2s"),
            format!("{problem}; gave up after 3 tries"),
        ],
        "{stdout}"
    );
    assert_eq!(
        node.stderr_text(),
        "lymphctl: nothing left to run: 1 process could not be started\n"
    );
    wait_until(
        "the node's lymphd to be gone",
        Duration::from_secs(5),
        || !socket.exists(),
    );
}
