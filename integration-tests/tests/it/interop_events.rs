//! Events between real Python lymph 0.15 (2.7 and 3.7) and lymphd through
//! RabbitMQ in lymph's topology: each side's emits reach the other's
//! handlers, with the trace id.

use std::time::Duration;

use crate::harness::{TestDaemon, text, wait_until};
use crate::lymph_peer::{Py, PythonPeer};

const WAIT: Duration = Duration::from_secs(30);

async fn events_cross_both_ways(py: Py) {
    let peer = PythonPeer::new();
    let daemon =
        TestDaemon::start_fleet_events(peer.zk_hosts(), "127.0.0.2", &peer.amqp_url(), "lymph");
    let board = daemon.app("testapp", "testapp", &[]);
    let listen = daemon.app("listen", "listen", &["--config", "conf/listen.yml"]);
    let tracer = peer.instance(py, "tracer", "127.0.0.3");
    daemon.wait_for_instances("Board", 1).await;
    daemon.wait_for_instances("Listen", 1).await;
    daemon.wait_for_instances("Tracer", 1).await;

    // Python emits, a lymphd-hosted handler hears it with the trace id.
    let trace = format!("trace-from-{}", py.venv());
    peer.cli_ok(
        py,
        &[
            "emit",
            &format!("--trace-id={trace}"),
            "traced",
            r#"{"n": 1}"#,
        ],
    );
    wait_until("the Rust handler hears Python's event", WAIT, || {
        board
            .stdout_text()
            .lines()
            .any(|l| l == format!("traced 1 {trace}"))
    });
    peer.cli_ok(py, &["emit", "greeted", r#"{"name": "Py"}"#]);
    wait_until("lymphd's Listen hears Python's greeted", WAIT, || {
        listen.lines_with("Somebody greeted Py") > 0
    });

    // lymphd emits, the Python handler hears it with the trace id.
    let trace = format!("trace-to-{}", py.venv());
    let out = daemon.ctl(&["emit", "--trace-id", &trace, "traced", r#"{"n": 2}"#]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    peer.wait_for_output(&tracer, &format!("traced 2 {trace}"));
}

#[tokio::test]
async fn events_cross_between_python27_and_lymphd() {
    events_cross_both_ways(Py::Py27).await;
}

#[tokio::test]
async fn events_cross_between_python37_and_lymphd() {
    events_cross_both_ways(Py::Py37).await;
}
