//! Logs across hosts and languages: `lymphctl tail` on one host follows a
//! service's records published by the daemon of another host and by a
//! Python lymph container; Python's `lymph tail` follows a lymphd app.

use crate::harness::{STARTUP, TestDaemon, wait_until};
use crate::logs::tail;
use crate::lymph_peer::{Py, PythonPeer};

#[tokio::test]
async fn tail_follows_services_on_every_host_and_python_tail_follows_lymphd_apps() {
    let peer = PythonPeer::new();
    let a = TestDaemon::start_fleet(peer.zk_hosts(), "127.0.0.2", 0);
    let b = TestDaemon::start_fleet(peer.zk_hosts(), "127.0.0.3", 0);
    let _greeting = b.app("greeting-b", "greeting", &["--config", "conf/greeting.yml"]);
    let _echo = peer.instance(Py::Py27, "echo", "127.0.0.4");
    a.wait_for_instances("Greeting", 1).await;
    a.wait_for_instances("Echo", 1).await;

    let ours = tail(&a, "tail", &["Greeting", "Echo"]);
    // lymph 0.15's tail needs Python 2: on 3 it looks up the level by bytes.
    let theirs = peer.spawn_cli(Py::Py27, "lymph-tail", &["tail", "Greeting"]);

    // Subscriptions join asynchronously: call again until a call's lines arrive.
    let mut n = 0;
    wait_until(
        "tails on host A to show host B's Greeting line",
        STARTUP,
        || {
            n += 1;
            let trace = format!("tail-greet-{n}");
            let out = a.ctl(&[
                "request",
                "--trace-id",
                &trace,
                "Greeting.greet",
                r#"{"name": "Joe"}"#,
            ]);
            assert!(
                out.status.success(),
                "{}",
                crate::harness::text(&out.stderr)
            );
            std::thread::sleep(std::time::Duration::from_millis(500));
            let marker = format!("greeting: Saying hi to Joe - trace_id=\"{trace}\"");
            let in_ours = ours.stdout_text().lines().any(|l| {
                l.starts_with("[Greeting][") && l.contains("[INFO]") && l.ends_with(&marker)
            });
            // lymph's tail: `[<endpoint>][<identity>] [INFO] <line>` on stderr.
            let in_theirs = theirs
                .stderr_text()
                .lines()
                .any(|l| l.contains("[INFO]") && l.ends_with(&marker));
            in_ours && in_theirs
        },
    );

    // A Python container's own records (lymph logs each request it serves).
    let mut n = 0;
    wait_until(
        "lymphctl tail to show the Python Echo's request line",
        STARTUP,
        || {
            n += 1;
            let trace = format!("tail-echo-{n}");
            let out = a.ctl(&[
                "request",
                "--trace-id",
                &trace,
                "Echo.echo",
                r#"{"text": "hi"}"#,
            ]);
            if !out.status.success() {
                // lymph's own first-message race (see interop.rs); the next round asks again.
                return false;
            }
            std::thread::sleep(std::time::Duration::from_millis(500));
            ours.stdout_text().lines().any(|l| {
                l.starts_with("[Echo][")
                    && l.contains("Echo.echo")
                    && l.contains(&format!("trace_id=\"{trace}\""))
            })
        },
    );
}
