//! `lymphctl` against a daemon with two Greeting instances: what a user sees.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::harness::{TestDaemon, bin, run_bounded, text};

async fn daemon_with_two_greetings() -> (TestDaemon, Vec<crate::harness::Proc>) {
    let daemon = TestDaemon::start();
    let apps = vec![
        daemon.app("greeting-1", "greeting", &["--config", "conf/greeting.yml"]),
        daemon.app("greeting-2", "greeting", &["--config", "conf/greeting.yml"]),
    ];
    daemon.wait_for_instances("Greeting", 2).await;
    (daemon, apps)
}

#[tokio::test]
async fn discover_counts_instances_and_daemons() {
    let (daemon, _apps) = daemon_with_two_greetings().await;
    let out = daemon.ctl(&["discover"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "Greeting [2]\nlymph [1]\n");
}

#[tokio::test]
async fn inspect_shows_methods_params_and_help() {
    let (daemon, _apps) = daemon_with_two_greetings().await;
    let out = daemon.ctl(&["inspect", "Greeting"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("RPC interface of Greeting\n\n"),
        "{stdout}"
    );
    let greet = stdout
        .find("rpc Greeting.greet(name)\n")
        .expect("greet listed");
    let help = &stdout[greet..];
    assert!(
        help.lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("         ") && !l.trim().is_empty()),
        "help text under greet: {stdout}"
    );
    for builtin in [
        "rpc lymph.change_loglevel(qualname, loglevel, period)",
        "rpc lymph.get_metrics()",
        "rpc lymph.inspect()",
        "rpc lymph.ping(payload)",
        "rpc lymph.status()",
    ] {
        assert!(stdout.contains(builtin), "{builtin} in {stdout}");
    }
}

#[tokio::test]
async fn request_prints_the_reply_as_json() {
    let (daemon, _apps) = daemon_with_two_greetings().await;
    let out = daemon.ctl(&["request", "Greeting.greet", r#"{"name": "Joe"}"#]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "\"Hi, Joe!\"\n");

    let out = daemon.ctl(&["request", "-D", "Greeting.greet", r#"{"name": "Ann"}"#]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("trace_id: "), "{stdout}");
    assert!(stdout.ends_with("\"Hi, Ann!\"\n"), "{stdout}");

    // A call that failed at an instance names that instance too.
    let out = daemon.ctl(&["request", "-D", "Greeting.greet", r#"{"nom": "x"}"#]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let identity = stdout
        .lines()
        .find_map(|l| l.strip_prefix("identity: "))
        .expect("an identity line");
    assert_eq!(identity.len(), 32, "{stdout}");
    assert!(identity.chars().all(|c| c.is_ascii_hexdigit()), "{stdout}");
}

#[tokio::test]
async fn request_errors_are_one_line_and_distinct() {
    let (daemon, _apps) = daemon_with_two_greetings().await;
    let cases = [
        (vec!["request", "Greeting.nope", "{}"], "unknown method"),
        (vec!["request", "Nobody.greet", "{}"], "unknown service"),
        (
            vec!["request", "Greeting.greet", r#"{"nom": "x"}"#],
            "bad request",
        ),
        (vec!["request", "Greeting.greet", "[1]"], "JSON object"),
        (vec!["request", "Greeting.greet", "{not json"], "JSON"),
    ];
    for (args, expected) in cases {
        let out = daemon.ctl(&args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    }
    // The daemon kept serving through all of that.
    let out = daemon.ctl(&["request", "Greeting.greet", r#"{"name": "Joe"}"#]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[tokio::test]
async fn load_generator_reports_rate_and_latency() {
    let (daemon, _apps) = daemon_with_two_greetings().await;
    let out = daemon.ctl(&["request", "-N", "200", "-C", "8", "lymph.ping", "{}"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("requests/s"), "{stdout}");
    assert!(stdout.contains("p99"), "{stdout}");
    assert!(stdout.contains("errors: 0"), "{stdout}");
}

#[tokio::test]
async fn status_and_list() {
    let (daemon, _apps) = daemon_with_two_greetings().await;
    let out = daemon.ctl(&["status"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("embedded"), "{stdout}");
    assert_eq!(stdout.matches("Greeting").count(), 2, "{stdout}");

    let out = daemon.ctl(&["list"]);
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    for command in ["discover", "inspect", "request", "status", "help"] {
        assert!(
            stdout.lines().any(|l| l.starts_with(command)),
            "{command} in {stdout}"
        );
    }
}

/// A socket whose server accepts connections and never reads or answers
/// them; it stops accepting after a minute.
fn silent_server(dir: &Path) -> PathBuf {
    let path = dir.join("silent.sock");
    let listener = std::os::unix::net::UnixListener::bind(&path).expect("bind");
    listener.set_nonblocking(true).expect("nonblocking");
    std::thread::spawn(move || {
        let mut held = Vec::new();
        let until = Instant::now() + Duration::from_secs(60);
        while Instant::now() < until {
            match listener.accept() {
                Ok((stream, _)) => held.push(stream),
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
    });
    path
}

/// Runs `lymphctl --socket <socket> args...`; its output and how long it took.
fn ctl_timed(socket: &Path, args: &[&str]) -> (std::process::Output, Duration) {
    let mut cmd = Command::new(bin("lymphctl"));
    cmd.arg("--socket").arg(socket).args(args);
    let started = Instant::now();
    let out = run_bounded(cmd, Duration::from_secs(30));
    (out, started.elapsed())
}

#[test]
fn connect_timeout_bounds_commands_on_a_silent_socket() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = silent_server(dir.path());
    let shown = socket.display().to_string();
    // Wide margins: the bound is what matters, not how fast lymphctl is.
    let margin = Duration::from_secs(3);
    for command in ["discover", "status"] {
        let (out, took) = ctl_timed(&socket, &["--connect-timeout", "1", command]);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{command}: {stderr}");
        assert!(
            took < Duration::from_secs(1) + margin,
            "{command} took {took:?}"
        );
        assert!(stderr.contains(&shown), "names the socket: {stderr}");
        assert!(
            stderr.contains(&format!("timed out: lymphd on {shown} did not answer {command} within 1s (--connect-timeout)")),
            "{stderr}"
        );
    }
    let args = [
        "request",
        "--timeout",
        "1",
        "--connect-timeout",
        "1",
        "Greeting.greet",
        "{}",
    ];
    let (out, took) = ctl_timed(&socket, &args);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        took < Duration::from_secs(2) + margin,
        "request took {took:?}"
    );
    assert!(
        stderr.contains("within 2s (--timeout 1s + --connect-timeout 1s)")
            && stderr.contains(&shown),
        "{stderr}"
    );
}
