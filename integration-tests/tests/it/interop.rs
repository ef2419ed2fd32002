//! Interop with real Python lymph 0.15 on Python 2.7 and 3.7, sharing one
//! ZooKeeper chroot with lymphd daemons: each side discovers, inspects and
//! calls the other, and the trace id survives every crossing.

use std::process::Output;

use crate::harness::{TestDaemon, ok, text};
use crate::lymph_peer::{Py, PythonPeer};

/// lymph 0.15 sends 20 ms after connecting to a new peer, so its first
/// message to a fresh endpoint can be lost (`docs/wire.md` §3.10). A caller
/// that sees exactly that timeout tries again, at most twice more.
fn with_lymph_retry(mut run: impl FnMut() -> Output) -> Output {
    let mut out = run();
    for _ in 0..2 {
        let stderr = text(&out.stderr);
        let lost_first = !out.status.success()
            && (stderr.contains("timed out") || stderr.contains("deadline exceeded"));
        if !lost_first {
            break;
        }
        out = run();
    }
    out
}

async fn lymphctl_reaches_python(py: Py) {
    let peer = PythonPeer::new();
    let daemon = TestDaemon::start_fleet(peer.zk_hosts(), "127.0.0.2", 0);
    let _greeting = peer.instance(py, "greeting", "127.0.0.3");
    let _echo = peer.instance(py, "echo", "127.0.0.4");
    daemon.wait_for_instances("Greeting", 1).await;
    daemon.wait_for_instances("Echo", 1).await;

    let out = with_lymph_retry(|| daemon.ctl(&["request", "Greeting.greet", r#"{"name": "Joe"}"#]));
    assert_eq!(
        ok(&out, "lymphctl request Greeting.greet"),
        "\"Hi, Joe!\"\n"
    );

    let trace = format!("trace-lymphctl-{}", py.venv());
    let out =
        with_lymph_retry(|| daemon.ctl(&["request", "--trace-id", &trace, "Echo.trace", "{}"]));
    assert_eq!(
        ok(&out, "lymphctl request Echo.trace"),
        format!("\"{trace}\"\n")
    );

    let out = daemon.ctl(&["inspect", "Greeting"]);
    let stdout = ok(&out, "lymphctl inspect Greeting");
    assert!(stdout.contains("rpc Greeting.greet(name)"), "{stdout}");
    assert!(stdout.contains("rpc lymph.ping(payload)"), "{stdout}");

    let out = daemon.ctl(&["discover"]);
    let stdout = ok(&out, "lymphctl discover");
    assert!(stdout.contains("Greeting [1]"), "{stdout}");
    // Two Python containers and the daemon.
    assert!(stdout.contains("lymph [3]"), "{stdout}");

    // A Python NACK (unknown method) reaches lymphctl as a clear failure.
    let out = with_lymph_retry(|| daemon.ctl(&["request", "Greeting.nope", "{}"]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
}

#[tokio::test]
async fn lymphctl_calls_python27_services() {
    lymphctl_reaches_python(Py::Py27).await;
}

#[tokio::test]
async fn lymphctl_calls_python37_services() {
    lymphctl_reaches_python(Py::Py37).await;
}

#[tokio::test]
async fn python_lymph_discovers_inspects_and_calls_lymphd_apps() {
    let peer = PythonPeer::new();
    let daemon = TestDaemon::start_fleet(peer.zk_hosts(), "127.0.0.2", 0);
    let _g1 = daemon.app("greeting-1", "greeting", &["--config", "conf/greeting.yml"]);
    let _g2 = daemon.app("greeting-2", "greeting", &["--config", "conf/greeting.yml"]);
    let _test = daemon.app("testapp", "testapp", &[]);
    daemon.wait_for_instances("Greeting", 2).await;
    daemon.wait_for_instances("Test", 1).await;

    for py in [Py::Py27, Py::Py37] {
        let stdout = peer.cli_ok(py, &["discover"]);
        assert!(stdout.contains("Greeting [2]"), "{py:?}: {stdout}");
        assert!(stdout.contains("Test [1]"), "{py:?}: {stdout}");
        assert!(stdout.contains("lymph [1]"), "{py:?}: {stdout}");

        let out =
            with_lymph_retry(|| peer.cli(py, &["request", "Greeting.greet", r#"{"name": "Joe"}"#]));
        let stdout = ok(&out, "lymph request Greeting.greet");
        assert!(stdout.contains("'Hi, Joe!'"), "{py:?}: {stdout}");

        let out = with_lymph_retry(|| peer.cli(py, &["inspect", "Greeting"]));
        let stdout = ok(&out, "lymph inspect Greeting");
        assert!(
            stdout.contains("rpc Greeting.greet(name)"),
            "{py:?}: {stdout}"
        );
        assert!(stdout.contains("rpc lymph.status()"), "{py:?}: {stdout}");

        let trace = format!("trace-python-{}", py.venv());
        let out = with_lymph_retry(|| {
            peer.cli(
                py,
                &[
                    "request",
                    &format!("--trace-id={trace}"),
                    "Test.trace",
                    "{}",
                ],
            )
        });
        let stdout = ok(&out, "lymph request Test.trace");
        assert!(stdout.contains(&trace), "{py:?}: {stdout}");

        // A typed error crosses as lymph's ERROR, with its type.
        let out = with_lymph_retry(|| {
            peer.cli(
                py,
                &["request", "Test.fail", r#"{"message": "no such user"}"#],
            )
        });
        assert!(!out.status.success());
        let stderr = text(&out.stderr);
        assert!(
            stderr.contains("TestError") && stderr.contains("no such user"),
            "{py:?}: {stderr}"
        );
    }
}
