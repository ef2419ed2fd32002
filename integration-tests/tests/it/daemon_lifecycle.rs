//! The daemon as an operator meets it: start, refuse a second daemon, replace
//! a stale socket, clear errors, graceful stop.

use std::process::Command;
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::harness::{Proc, TestDaemon, bin, run_bounded, text};

#[test]
fn lymphctl_without_a_daemon_says_so() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut cmd = Command::new(bin("lymphctl"));
    cmd.arg("--socket")
        .arg(dir.path().join("none.sock"))
        .arg("discover");
    let out = run_bounded(cmd, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("no lymphd is listening"), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
}

#[test]
fn a_second_daemon_on_the_same_socket_is_refused() {
    let daemon = TestDaemon::start();
    let mut cmd = Command::new(bin("lymphd"));
    cmd.arg("--socket").arg(&daemon.socket);
    let out = run_bounded(cmd, Duration::from_secs(30));
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("already listening"),
        "{}",
        text(&out.stderr)
    );
    assert!(
        daemon.socket.exists(),
        "the live daemon's socket is untouched"
    );
}

#[test]
fn sigterm_stops_cleanly_and_removes_the_socket() {
    let mut daemon = TestDaemon::start();
    daemon.proc.signal(Signal::SIGTERM);
    let status = daemon.proc.wait(Duration::from_secs(20));
    assert!(
        status.success(),
        "{status:?}: {}",
        daemon.proc.stderr_text()
    );
    assert!(!daemon.socket.exists());
}

#[test]
fn a_stale_socket_is_replaced() {
    let mut first = TestDaemon::start();
    first.proc.signal(Signal::SIGKILL);
    first.proc.wait(Duration::from_secs(10));
    assert!(
        first.socket.exists(),
        "SIGKILL leaves the socket file behind"
    );
    let mut cmd = Command::new(bin("lymphd"));
    cmd.arg("--socket").arg(&first.socket);
    let _second = Proc::spawn("lymphd-2", cmd, first.dir.path());
    crate::harness::wait_until(
        "the second daemon to listen",
        Duration::from_secs(20),
        || std::os::unix::net::UnixStream::connect(&first.socket).is_ok(),
    );
}

#[test]
fn a_bad_config_exits_64_naming_the_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("bad.yml");
    std::fs::write(&config, "rpc:\n  default_timout: 3s\n").expect("write");
    let mut cmd = Command::new(bin("lymphd"));
    cmd.arg("--socket")
        .arg(dir.path().join("x.sock"))
        .arg("--config")
        .arg(&config);
    let out = run_bounded(cmd, Duration::from_secs(30));
    assert_eq!(out.status.code(), Some(64));
    assert!(
        text(&out.stderr).contains("default_timout"),
        "{}",
        text(&out.stderr)
    );
}
