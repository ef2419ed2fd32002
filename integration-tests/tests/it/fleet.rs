//! Several "hosts" (daemons on 127.0.0.2, .3, .4) in one fleet: ZooKeeper
//! registry, ZeroMQ between daemons. Calls cross hosts and spread; a killed
//! daemon drops out and callers fail over; a restarted one is reached again.

use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use serde_json::json;

use crate::harness::{Proc, TestDaemon, outcome, text, zookeeper_chroot};

fn greeted(app: &Proc) -> usize {
    app.lines_with(": Saying hi to ")
}

fn free_port(ip: &str) -> u16 {
    let listener = std::net::TcpListener::bind((ip, 0)).expect("bind");
    listener.local_addr().expect("addr").port()
}

#[tokio::test]
async fn calls_cross_hosts_and_spread_over_every_instance() {
    let hosts = zookeeper_chroot();
    let a = TestDaemon::start_fleet(&hosts, "127.0.0.2", 0);
    let b = TestDaemon::start_fleet(&hosts, "127.0.0.3", 0);
    let c = TestDaemon::start_fleet(&hosts, "127.0.0.4", 0);
    let on_b = b.app("greeting-b", "greeting", &["--config", "conf/greeting.yml"]);
    let on_c = c.app("greeting-c", "greeting", &["--config", "conf/greeting.yml"]);
    a.wait_for_instances("Greeting", 2).await;
    a.wait_for_instances("lymph", 3).await;

    let out = a.ctl(&["discover"]);
    assert_eq!(text(&out.stdout), "Greeting [2]\nlymph [3]\n");

    let calls = 60;
    for n in 0..calls {
        let reply = a
            .call("Greeting", "greet", json!({"name": format!("x{n}")}), 5_000)
            .await;
        assert_eq!(outcome(&reply).expect("greet"), json!(format!("Hi, x{n}!")));
    }
    crate::harness::wait_until("every greeting printed", Duration::from_secs(10), || {
        greeted(&on_b) + greeted(&on_c) == calls
    });
    assert_eq!((greeted(&on_b), greeted(&on_c)), (calls / 2, calls / 2));

    // inspect and errors cross hosts too.
    let out = a.ctl(&["inspect", "Greeting"]);
    assert!(
        text(&out.stdout).contains("rpc Greeting.greet(name)"),
        "{}",
        text(&out.stdout)
    );
    let out = a.ctl(&["request", "Greeting.nope", "{}"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("unknown method"),
        "{}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn a_killed_daemon_drops_out_and_callers_fail_over() {
    let hosts = zookeeper_chroot();
    let a = TestDaemon::start_fleet(&hosts, "127.0.0.2", 0);
    let b = TestDaemon::start_fleet(&hosts, "127.0.0.3", 0);
    let mut c = TestDaemon::start_fleet(&hosts, "127.0.0.4", 0);
    let _on_b = b.app("greeting-b", "greeting", &["--config", "conf/greeting.yml"]);
    let _on_c = c.app("greeting-c", "greeting", &["--config", "conf/greeting.yml"]);
    a.wait_for_instances("Greeting", 2).await;
    // Warm both connections so C is a known peer when it dies.
    for n in 0..4 {
        let reply = a
            .call("Greeting", "greet", json!({"name": format!("w{n}")}), 5_000)
            .await;
        outcome(&reply).expect("greet");
    }

    c.proc.signal(Signal::SIGKILL);
    c.proc.wait(Duration::from_secs(10));
    let killed = Instant::now();
    // The session timeout is 4 s in these tests: C's instances vanish soon after.
    a.wait_for_instances("Greeting", 1).await;
    assert!(killed.elapsed() < Duration::from_secs(20));

    // Every call now succeeds: callers fail over to B.
    for n in 0..20 {
        let reply = a
            .call("Greeting", "greet", json!({"name": format!("f{n}")}), 5_000)
            .await;
        assert_eq!(
            outcome(&reply).expect("fail over"),
            json!(format!("Hi, f{n}!"))
        );
    }
}

#[tokio::test]
async fn a_peer_restarted_on_the_same_port_is_reached_again() {
    let hosts = zookeeper_chroot();
    let a = TestDaemon::start_fleet(&hosts, "127.0.0.2", 0);
    let port = free_port("127.0.0.3");
    let mut b = TestDaemon::start_fleet(&hosts, "127.0.0.3", port);
    let _on_b = b.app("greeting-b", "greeting", &["--config", "conf/greeting.yml"]);
    a.wait_for_instances("Greeting", 1).await;
    let reply = a
        .call("Greeting", "greet", json!({"name": "before"}), 5_000)
        .await;
    assert_eq!(outcome(&reply).expect("greet"), json!("Hi, before!"));

    b.proc.signal(Signal::SIGKILL);
    b.proc.wait(Duration::from_secs(10));
    a.wait_for_instances("Greeting", 0).await;
    b.restart();
    // The Greeting app reconnects to its restarted daemon by itself.
    a.wait_for_instances("Greeting", 1).await;

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let reply = a
            .call("Greeting", "greet", json!({"name": "after"}), 2_000)
            .await;
        match outcome(&reply) {
            Ok(body) => {
                assert_eq!(body, json!("Hi, after!"));
                break;
            }
            Err(e) => assert!(Instant::now() < deadline, "B never reached again: {e:?}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
