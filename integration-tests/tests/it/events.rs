//! Events across real processes: Greeting emits, Listen hears (once per
//! service), tools emit and subscribe, held events survive their handler's
//! death, and apps find their way back after the daemon restarts.

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::json;

use crate::harness::{Proc, TestDaemon, bin, outcome, text, wait_until};

const WAIT: Duration = Duration::from_secs(20);

/// `Somebody greeted <name>` lines logged by each app.
fn greeted_names(apps: &[&Proc]) -> HashMap<String, usize> {
    let mut names = HashMap::new();
    for app in apps {
        for line in app.output_lines() {
            if let Some((_, name)) = line.split_once("Somebody greeted ") {
                *names.entry(name.to_owned()).or_insert(0) += 1;
            }
        }
    }
    names
}

#[tokio::test]
async fn each_greeting_is_heard_by_exactly_one_listen() {
    let daemon = TestDaemon::start();
    let _g1 = daemon.app("greeting-1", "greeting", &["--config", "conf/greeting.yml"]);
    let _g2 = daemon.app("greeting-2", "greeting", &["--config", "conf/greeting.yml"]);
    let l1 = daemon.app("listen-1", "listen", &["--config", "conf/listen.yml"]);
    let l2 = daemon.app("listen-2", "listen", &["--config", "conf/listen.yml"]);
    daemon.wait_for_instances("Greeting", 2).await;
    daemon.wait_for_instances("Listen", 2).await;

    let out = daemon.ctl(&["request", "Greeting.greet", r#"{"name": "Joe"}"#]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let calls = 40;
    for n in 0..calls {
        let reply = daemon
            .call("Greeting", "greet", json!({"name": format!("n{n}")}), 5_000)
            .await;
        outcome(&reply).expect("greet");
    }
    wait_until("every greeted event handled", WAIT, || {
        greeted_names(&[&l1, &l2]).len() == calls + 1
    });
    std::thread::sleep(Duration::from_millis(500));
    let names = greeted_names(&[&l1, &l2]);
    assert_eq!(names.get("Joe"), Some(&1));
    for n in 0..calls {
        assert_eq!(
            names.get(&format!("n{n}")),
            Some(&1),
            "n{n} heard exactly once"
        );
    }
    let (a, b) = (
        l1.lines_with("Somebody greeted"),
        l2.lines_with("Somebody greeted"),
    );
    assert!(
        a > 0 && b > 0,
        "both Listen instances took a share: {a} / {b}"
    );
}

#[tokio::test]
async fn lymphctl_emit_subscribe_and_delay() {
    let daemon = TestDaemon::start();
    let listen = daemon.app("listen", "listen", &["--config", "conf/listen.yml"]);
    daemon.wait_for_instances("Listen", 1).await;
    let mut cmd = Command::new(bin("lymphctl"));
    cmd.arg("--socket")
        .arg(&daemon.socket)
        .args(["subscribe", "greeted"]);
    let subscriber = Proc::spawn("subscribe", cmd, daemon.dir.path());
    // The subscription exists once the daemon shows its stream; give it a moment.
    std::thread::sleep(Duration::from_millis(500));

    let out = daemon.ctl(&["emit", "greeted", r#"{"name": "Zed"}"#]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    wait_until("Listen prints Zed", WAIT, || {
        listen.lines_with("Somebody greeted Zed") == 1
    });
    wait_until("subscribe prints the event", WAIT, || {
        subscriber
            .stdout_text()
            .lines()
            .any(|l| l.starts_with("greeted: ") && l.contains("Zed"))
    });

    let started = Instant::now();
    let out = daemon.ctl(&["emit", "greeted", r#"{"name": "Later"}"#, "--delay", "1.5"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(listen.lines_with("Later"), 0, "not before its delay");
    wait_until("the delayed event", WAIT, || {
        listen.lines_with("Somebody greeted Later") == 1
    });
    assert!(started.elapsed() >= Duration::from_millis(1500));

    let out = daemon.ctl(&["emit", "greeted", "not json"]);
    assert_eq!(out.status.code(), Some(1), "bad JSON is refused");
}

#[tokio::test]
async fn a_held_event_goes_to_another_instance_when_its_handler_is_killed() {
    let daemon = TestDaemon::start();
    let one = daemon.app("testapp-1", "testapp", &[]);
    let two = daemon.app("testapp-2", "testapp", &[]);
    daemon.wait_for_instances("Test", 2).await;
    crate::harness::held_event_moves_on_when_its_holder_dies(&daemon, one, two, WAIT);
}

#[tokio::test]
async fn a_failed_event_is_retried_then_dropped() {
    let daemon = TestDaemon::start();
    let app = daemon.app("testapp", "testapp", &[]);
    daemon.wait_for_instances("Test", 1).await;
    // testapp subscribes to `work` with retry = 1: two attempts in all.
    let out = daemon.ctl(&["emit", "work", r#"{"n": 2, "fail": true}"#]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    wait_until("the retry", WAIT, || {
        app.lines_with("handling 2 attempt 2") == 1
    });
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        app.lines_with("handling 2 attempt"),
        2,
        "{}",
        app.stdout_text()
    );
    // The next event is handled normally.
    let out = daemon.ctl(&["emit", "work", r#"{"n": 3}"#]);
    assert!(out.status.success());
    wait_until("work 3", WAIT, || app.lines_with("handled 3") == 1);
}

#[tokio::test]
async fn a_full_queue_refuses_emits_with_a_clear_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("lymphd.yml");
    std::fs::write(&config, "events:\n  backend: embedded\n  queue_limit: 3\n").expect("write");
    let daemon = TestDaemon::start_with(&["--config", config.to_str().expect("utf-8")]);
    let _app = daemon.app("testapp", "testapp", &["--max-concurrency", "1"]);
    daemon.wait_for_instances("Test", 1).await;
    // One held by the app (prefetch 1), three queued: the fifth is refused.
    for n in 0..4 {
        let out = daemon.ctl(&[
            "emit",
            "work",
            &format!(r#"{{"n": {n}, "hold_ms": 60000}}"#),
        ]);
        assert!(out.status.success(), "emit {n}: {}", text(&out.stderr));
    }
    let out = daemon.ctl(&["emit", "work", r#"{"n": 9}"#]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("full"), "{}", text(&out.stderr));
}

#[tokio::test]
async fn apps_come_back_after_the_daemon_restarts() {
    let mut daemon = TestDaemon::start();
    let _greeting = daemon.app("greeting", "greeting", &["--config", "conf/greeting.yml"]);
    let listen = daemon.app("listen", "listen", &["--config", "conf/listen.yml"]);
    daemon.wait_for_instances("Greeting", 1).await;
    daemon.wait_for_instances("Listen", 1).await;

    daemon.proc.signal(Signal::SIGKILL);
    daemon.proc.wait(Duration::from_secs(10));
    daemon.restart();
    daemon.wait_for_instances("Greeting", 1).await;
    daemon.wait_for_instances("Listen", 1).await;

    let out = daemon.ctl(&["request", "Greeting.greet", r#"{"name": "Again"}"#]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "\"Hi, Again!\"\n");
    wait_until("Listen hears it", WAIT, || {
        listen.lines_with("Somebody greeted Again") == 1
    });
}
