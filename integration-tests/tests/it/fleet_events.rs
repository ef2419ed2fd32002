//! Events across hosts through RabbitMQ: daemons on 127.0.0.2 and .3, apps on
//! each. Once per service and broadcast counted by event, delays, redelivery
//! when an app dies holding an event, and — in durable mode — nothing lost
//! while the broker restarts.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{
    PrivateBroker, Proc, TestDaemon, outcome, text, wait_until, zookeeper_chroot,
};
use crate::lymph_peer::PythonPeer;

const WAIT: Duration = Duration::from_secs(30);

fn count_lines(apps: &[&Proc], prefix: &str) -> HashMap<String, usize> {
    let mut seen = HashMap::new();
    for app in apps {
        for line in app.output_lines() {
            // At the start of a printed line, or after a log line's header.
            let rest = line
                .strip_prefix(prefix)
                .or_else(|| line.split_once(&format!(": {prefix}")).map(|(_, r)| r));
            if let Some(rest) = rest {
                *seen.entry(rest.to_owned()).or_insert(0) += 1;
            }
        }
    }
    seen
}

#[tokio::test]
async fn events_cross_hosts_once_per_service_and_broadcast_to_every_instance() {
    // The peer gives this test its own ZooKeeper chroot and RabbitMQ vhost.
    let env = PythonPeer::new();
    let a = TestDaemon::start_fleet_events(env.zk_hosts(), "127.0.0.2", &env.amqp_url(), "lymph");
    let b = TestDaemon::start_fleet_events(env.zk_hosts(), "127.0.0.3", &env.amqp_url(), "lymph");
    let _greeting = a.app("greeting", "greeting", &["--config", "conf/greeting.yml"]);
    let listen_a = a.app("listen-a", "listen", &["--config", "conf/listen.yml"]);
    let listen_b = b.app("listen-b", "listen", &["--config", "conf/listen.yml"]);
    let board_a = a.app("testapp-a", "testapp", &[]);
    let board_b = b.app("testapp-b", "testapp", &[]);
    a.wait_for_instances("Greeting", 1).await;
    a.wait_for_instances("Listen", 2).await;
    a.wait_for_instances("Board", 2).await;

    let calls = 40;
    for n in 0..calls {
        let reply = a
            .call("Greeting", "greet", json!({"name": format!("g{n}")}), 5_000)
            .await;
        outcome(&reply).expect("greet");
    }
    wait_until("every greeted event handled", WAIT, || {
        count_lines(&[&listen_a, &listen_b], "Somebody greeted ").len() == calls
    });
    std::thread::sleep(Duration::from_millis(500));
    let heard = count_lines(&[&listen_a, &listen_b], "Somebody greeted ");
    assert!(
        heard.values().all(|n| *n == 1),
        "each heard once: {heard:?}"
    );
    let (on_a, on_b) = (
        listen_a.lines_with("Somebody"),
        listen_b.lines_with("Somebody"),
    );
    assert!(
        on_a > 0 && on_b > 0,
        "both hosts' Listen took a share: {on_a} / {on_b}"
    );

    let news = 10;
    for n in 0..news {
        let out = b.ctl(&["emit", "news", &format!(r#"{{"n": {n}}}"#)]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }
    for board in [&board_a, &board_b] {
        wait_until("every instance hears every news", WAIT, || {
            count_lines(&[board], "news ").len() == news
        });
    }
    std::thread::sleep(Duration::from_millis(500));
    for board in [&board_a, &board_b] {
        let seen = count_lines(&[board], "news ");
        assert!(
            seen.values().all(|n| *n == 1),
            "broadcast once per instance: {seen:?}"
        );
    }

    // A delayed event crosses hosts after its delay.
    let started = Instant::now();
    let out = a.ctl(&["emit", "greeted", r#"{"name": "Later"}"#, "--delay", "1.5"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    wait_until("the delayed event", WAIT, || {
        listen_a.lines_with("greeted Later") + listen_b.lines_with("greeted Later") == 1
    });
    assert!(started.elapsed() >= Duration::from_millis(1500));
}

#[tokio::test]
async fn a_held_event_goes_to_another_host_when_its_app_is_killed() {
    let env = PythonPeer::new();
    let a = TestDaemon::start_fleet_events(env.zk_hosts(), "127.0.0.2", &env.amqp_url(), "lymph");
    let b = TestDaemon::start_fleet_events(env.zk_hosts(), "127.0.0.3", &env.amqp_url(), "lymph");
    let one = a.app("testapp-a", "testapp", &[]);
    let two = b.app("testapp-b", "testapp", &[]);
    a.wait_for_instances("Test", 2).await;
    crate::harness::held_event_moves_on_when_its_holder_dies(&a, one, two, WAIT);
}

#[tokio::test]
async fn durable_events_survive_a_broker_restart_while_emitting() {
    let broker = PrivateBroker::start();
    let hosts = zookeeper_chroot();
    let a = TestDaemon::start_fleet_events(&hosts, "127.0.0.2", &broker.url(), "durable");
    let b = TestDaemon::start_fleet_events(&hosts, "127.0.0.3", &broker.url(), "durable");
    let handler = b.app("testapp", "testapp", &[]);
    a.wait_for_instances("Test", 1).await;

    // Emit a bounded stream from host A while the broker goes down and up.
    let total: u64 = 300;
    let socket = a.socket.clone();
    let emitter = std::thread::spawn(move || {
        let mut sent = Vec::new();
        let started = Instant::now();
        let deadline = started + Duration::from_secs(120);
        for n in 0..total {
            if Instant::now() > deadline {
                break;
            }
            let mut cmd = std::process::Command::new(crate::harness::bin("lymphctl"));
            cmd.arg("--socket")
                .arg(&socket)
                .args(["emit", "work", &format!(r#"{{"n": {n}}}"#)]);
            let out = crate::harness::run_bounded(cmd, Duration::from_secs(60));
            if out.status.success() {
                sent.push(n);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        (sent, started, Instant::now())
    });
    std::thread::sleep(Duration::from_secs(1));
    let outage = Instant::now();
    broker.restart(Duration::from_secs(3));
    let back = Instant::now();
    let (sent, first, last): (Vec<u64>, Instant, Instant) = emitter.join().expect("emitter");
    assert!(
        first < outage && last > back,
        "the broker restart must fall inside the emitting window"
    );

    let handled_ids = || -> HashMap<String, usize> { count_lines(&[&handler], "handled ") };
    let want: HashSet<String> = sent.iter().map(|n| n.to_string()).collect();
    wait_until("every sent event handled", Duration::from_secs(60), || {
        let handled = handled_ids();
        want.iter().all(|id| handled.contains_key(id))
    });
    let handled = handled_ids();
    let duplicated = handled.values().filter(|n| **n > 1).count();
    println!(
        "durable restart: sent {} / handled {} / duplicated {} (of {total} attempted)",
        sent.len(),
        handled.len(),
        duplicated
    );
    assert!(
        sent.len() as u64 > total / 2,
        "most emits succeed around a 3 s outage: {}",
        sent.len()
    );
    let lost: Vec<&String> = want
        .iter()
        .filter(|id| !handled.contains_key(*id))
        .collect();
    assert!(lost.is_empty(), "lost events: {lost:?}");
}
