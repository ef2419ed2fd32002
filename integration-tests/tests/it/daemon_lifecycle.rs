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
    cmd.env("LYMPHD_METRICS_LISTEN", "127.0.0.1:0");
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
    cmd.env("LYMPHD_METRICS_LISTEN", "127.0.0.1:0");
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
    cmd.env("LYMPHD_METRICS_LISTEN", "127.0.0.1:0");
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

/// `lymphd --socket <dir>/lymphd.sock` to completion (it should refuse to start).
fn lymphd_in(dir: &std::path::Path) -> std::process::Output {
    let mut cmd = Command::new(bin("lymphd"));
    cmd.env("LYMPHD_METRICS_LISTEN", "127.0.0.1:0");
    cmd.arg("--socket").arg(dir.join("lymphd.sock"));
    run_bounded(cmd, Duration::from_secs(30))
}

#[test]
fn a_socket_directory_others_could_write_is_refused_with_exit_64() {
    use std::os::unix::fs::PermissionsExt;
    let root = tempfile::tempdir().expect("tempdir");

    // Writable by others: anyone could swap the socket.
    let open = root.path().join("open");
    std::fs::create_dir(&open).expect("mkdir");
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    let out = lymphd_in(&open);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    assert!(err.contains(&open.display().to_string()), "{err}");
    assert!(
        err.contains("mode 0777") && err.contains("chmod go-w"),
        "{err}"
    );
    assert!(!open.join("lymphd.sock").exists(), "no socket made there");

    // Another user's directory (nobody, uid 65534), even if private to them.
    let theirs = root.path().join("theirs");
    std::fs::create_dir(&theirs).expect("mkdir");
    std::fs::set_permissions(&theirs, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::os::unix::fs::chown(&theirs, Some(65534), None).expect("chown");
    let out = lymphd_in(&theirs);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    assert!(err.contains("owner uid 65534"), "{err}");

    // Inside a world-writable parent (as /tmp is), only the daemon's own will do.
    let shared = root.path().join("shared");
    std::fs::create_dir(&shared).expect("mkdir");
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
    let planted = shared.join("lymph-x");
    std::fs::create_dir(&planted).expect("mkdir");
    std::fs::set_permissions(&planted, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::os::unix::fs::chown(&planted, Some(65534), None).expect("chown");
    let out = lymphd_in(&planted);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(64), "{err}");
    assert!(err.contains("world-writable"), "{err}");

    // A directory the daemon makes itself in that parent is its own: it starts.
    let fresh = shared.join("lymph-mine");
    let mut cmd = Command::new(bin("lymphd"));
    cmd.env("LYMPHD_METRICS_LISTEN", "127.0.0.1:0");
    cmd.arg("--socket").arg(fresh.join("lymphd.sock"));
    let started = Proc::spawn("lymphd-fresh", cmd, root.path());
    crate::harness::wait_until(
        "lymphd in a fresh directory",
        Duration::from_secs(30),
        || std::os::unix::net::UnixStream::connect(fresh.join("lymphd.sock")).is_ok(),
    );
    drop(started);
}
