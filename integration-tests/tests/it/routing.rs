//! Calls are spread over instances; an app that leaves is gone from discovery.

use std::time::Duration;

use serde_json::json;

use crate::harness::{Proc, TestDaemon, outcome};

fn greeted(app: &Proc) -> usize {
    app.lines_with(": Saying hi to ")
}

#[tokio::test]
async fn calls_spread_over_both_instances() {
    let daemon = TestDaemon::start();
    let one = daemon.app("greeting-1", "greeting", &["--config", "conf/greeting.yml"]);
    let two = daemon.app("greeting-2", "greeting", &["--config", "conf/greeting.yml"]);
    daemon.wait_for_instances("Greeting", 2).await;

    let calls = 100;
    for n in 0..calls {
        let reply = daemon
            .call(
                "Greeting",
                "greet",
                json!({ "name": format!("n{n}") }),
                5_000,
            )
            .await;
        assert_eq!(outcome(&reply).expect("reply"), json!(format!("Hi, n{n}!")));
    }
    crate::harness::wait_until("every greeting printed", Duration::from_secs(10), || {
        greeted(&one) + greeted(&two) == calls
    });
    let (a, b) = (greeted(&one), greeted(&two));
    // Round-robin with one caller alternates exactly.
    assert_eq!((a, b), (calls / 2, calls / 2), "spread was {a} / {b}");
}

#[tokio::test]
async fn a_stopped_app_disappears_at_once() {
    let daemon = TestDaemon::start();
    let mut app = daemon.app("greeting", "greeting", &["--config", "conf/greeting.yml"]);
    daemon.wait_for_instances("Greeting", 1).await;
    app.signal(nix::sys::signal::Signal::SIGTERM);
    let status = app.wait(Duration::from_secs(15));
    assert!(
        status.success(),
        "greeting exits cleanly on SIGTERM: {status:?}"
    );
    assert_eq!(daemon.count("Greeting").await, 0);
}
