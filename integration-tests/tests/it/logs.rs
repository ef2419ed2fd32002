//! `lymphctl tail` on one host: the daemon's own records (service `lymph`)
//! and an app's, the level filter, and a failed handler's warning carrying
//! the trace id of the request that failed.

use std::process::Command;
use std::time::Duration;

use crate::harness::{Proc, STARTUP, TestDaemon, bin, wait_until};

/// `lymphctl tail ARGS... --for 90s` against `daemon`, as a process named `name`.
pub fn tail(daemon: &TestDaemon, name: &str, args: &[&str]) -> Proc {
    let mut cmd = Command::new(bin("lymphctl"));
    cmd.arg("--socket")
        .arg(&daemon.socket)
        .arg("tail")
        .args(args)
        .args(["--for", "90s"]);
    Proc::spawn(name, cmd, daemon.dir.path())
}

#[tokio::test]
async fn tail_shows_the_daemon_and_its_apps_filtered_by_level() {
    let daemon = TestDaemon::start();
    let _app = daemon.app("testapp", "testapp", &[]);
    daemon.wait_for_instances("Test", 1).await;

    let all = tail(&daemon, "tail-all", &["Test", "lymph"]);
    let warnings = tail(&daemon, "tail-warn", &["Test", "-l", "warning"]);

    // Subscriptions join asynchronously: fail a call again until both see it.
    let mut n = 0;
    wait_until(
        "the failed handler's warning in both tails",
        STARTUP,
        || {
            n += 1;
            let trace = format!("crash-{n}");
            let out = daemon.ctl(&["request", "--trace-id", &trace, "Test.crash", "{}"]);
            assert!(!out.status.success(), "Test.crash must fail");
            std::thread::sleep(Duration::from_millis(300));
            let marker = format!("- trace_id=\"{trace}\"");
            let seen = |tail: &Proc| {
                tail.stdout_text().lines().any(|l| {
                    l.starts_with("[Test][")
                        && l.contains("[WARNING]")
                        && l.contains("handler failed")
                        && l.contains("crash requested by the caller")
                        && l.ends_with(&marker)
                })
            };
            seen(&all) && seen(&warnings)
        },
    );

    // The daemon's own lines: a second app attaching is logged at info.
    let _second = daemon.app("testapp-2", "testapp", &[]);
    wait_until("the daemon's 'app attached' line", STARTUP, || {
        all.stdout_text().lines().any(|l| {
            l.starts_with("[lymph][")
                && l.contains("[INFO] lymphd::attach::handshake: app attached")
        })
    });
    std::thread::sleep(Duration::from_millis(300));
    let shown = warnings.stdout_text();
    assert!(
        shown
            .lines()
            .all(|l| !l.contains("[INFO]") && !l.starts_with("[lymph]")),
        "-l warning shows only Test's warnings and above:\n{shown}"
    );
}

#[test]
fn tail_refuses_a_bad_level_and_needs_a_service() {
    let daemon = TestDaemon::start();
    let out = daemon.ctl(&["tail", "Test", "-l", "loud"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(crate::harness::text(&out.stderr).contains("not a level"));
    let out = daemon.ctl(&["tail"]);
    assert_eq!(out.status.code(), Some(2));
}
