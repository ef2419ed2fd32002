//! The registry edge with real ZooKeeper and real daemons: a well-formed
//! instance node whose endpoint never answers takes no calls while a live
//! instance exists; a daemon's own node deleted or rewritten by someone else
//! comes back within 5 s with a warning; malformed nodes (bad JSON, missing
//! keys, a bad endpoint, data near ZooKeeper's 1 MB limit) are logged once
//! and never hide the live instance. Each test has a chroot of its own.

use std::time::{Duration, Instant};

use serde_json::json;
use zookeeper_client as zk;

use crate::harness::{STARTUP, TestDaemon, outcome, require_zookeeper, zookeeper_chroot};

/// Every ZooKeeper operation of the test is bounded by this.
const STEP: Duration = Duration::from_secs(20);
/// The brief's bound on re-creating a deleted own node, and a margin for a
/// shared CI machine.
const RECREATE_WITHIN: Duration = Duration::from_secs(5);
const MARGIN: Duration = Duration::from_secs(5);

const EPHEMERAL: zk::CreateOptions<'static> =
    zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());
const PERSISTENT: zk::CreateOptions<'static> =
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());

async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(STEP, fut)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {STEP:?}"))
}

/// A plain ZooKeeper client inside the test's chroot: the "someone else".
async fn zk_client(hosts: &str) -> zk::Client {
    require_zookeeper();
    let connect = zk::Client::connector()
        .with_session_timeout(Duration::from_secs(4))
        .connect(hosts);
    within("zookeeper connect", connect)
        .await
        .expect("connect to zookeeper")
}

/// Writes an ephemeral instance node under `/services/<service>` (the
/// parent made as lymph makes it); it vanishes with the test's session.
async fn write_node(client: &zk::Client, service: &str, id: &str, data: &[u8]) {
    let parent = format!("/services/{service}");
    within("mkdir", client.mkdir(&parent, &PERSISTENT))
        .await
        .or_else(|e| {
            if e == zk::Error::NodeExists {
                Ok(())
            } else {
                Err(e)
            }
        })
        .expect("service parent");
    within(
        "create",
        client.create(&format!("{parent}/{id}"), data, &EPHEMERAL),
    )
    .await
    .expect("instance node");
}

/// lymph's JSON for an instance at `endpoint`.
fn node_json(id: &str, endpoint: &str) -> Vec<u8> {
    json!({"id": id, "identity": format!("{id:0>32}"), "endpoint": endpoint,
        "version": null, "ip": "127.0.0.1", "hostname": "elsewhere", "type": false})
    .to_string()
    .into_bytes()
}

/// Calls `Greeting.greet` `n` times through `daemon`; returns how many succeeded.
async fn greet(daemon: &TestDaemon, n: usize, tag: &str) -> usize {
    let mut ok = 0;
    for k in 0..n {
        let name = format!("{tag}{k}");
        let reply = daemon
            .call("Greeting", "greet", json!({ "name": name }), 5_000)
            .await;
        if outcome(&reply).is_ok_and(|body| body == json!(format!("Hi, {name}!"))) {
            ok += 1;
        }
    }
    ok
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_whose_endpoint_never_answers_takes_no_calls_beside_a_live_one() {
    let hosts = zookeeper_chroot();
    let a = TestDaemon::start_fleet(&hosts, "127.0.0.2", 0);
    let b = TestDaemon::start_fleet(&hosts, "127.0.0.3", 0);
    let _app = b.app("greeting-b", "greeting", &["--config", "conf/greeting.yml"]);
    a.wait_for_instances("Greeting", 1).await;

    // Two dead instances: a refused port, and a port that accepts and never
    // speaks ZMTP (each connect waits the whole rpc.connect_timeout).
    let mute = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let mute_endpoint = format!("tcp://{}", mute.local_addr().expect("addr"));
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((stream, _)) = mute.accept().await {
            open.push(stream);
        }
    });
    let someone = zk_client(&hosts).await;
    // Ids sorting before B's (32 hex), so a cold round-robin meets them first.
    write_node(
        &someone,
        "Greeting",
        "0dead",
        &node_json("0dead", "tcp://127.0.0.1:1"),
    )
    .await;
    write_node(
        &someone,
        "Greeting",
        "0mute",
        &node_json("0mute", &mute_endpoint),
    )
    .await;
    a.wait_for_instances("Greeting", 3).await;

    // Cold: the first call finds no instance verified and may go to a dead
    // one; it starts the probes, and from then on only B is chosen.
    let cold = greet(&a, 20, "cold").await;
    assert!(
        cold >= 19,
        "only {cold}/20 calls succeeded beside dead nodes"
    );
    let warm = greet(&a, 20, "warm").await;
    eprintln!("beside two dead nodes: {cold}/20 cold, {warm}/20 warm");
    assert_eq!(warm, 20, "after the first probe every call succeeds");
    held.abort();
}

/// The path of the one child of `/services/<service>` whose endpoint is on `ip`.
async fn node_of(client: &zk::Client, service: &str, ip: &str) -> String {
    let parent = format!("/services/{service}");
    let children = within("list", client.list_children(&parent))
        .await
        .expect("list instances");
    for id in children {
        let path = format!("{parent}/{id}");
        let (data, _) = within("get", client.get_data(&path)).await.expect("get");
        let node: serde_json::Value = serde_json::from_slice(&data).expect("json");
        if node["endpoint"]
            .as_str()
            .is_some_and(|e| e.starts_with(&format!("tcp://{ip}:")))
        {
            return path;
        }
    }
    panic!("no {service} instance on {ip}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_own_node_deleted_by_someone_else_comes_back_with_a_warning() {
    let hosts = zookeeper_chroot();
    let a = TestDaemon::start_fleet(&hosts, "127.0.0.2", 0);
    let b = TestDaemon::start_fleet(&hosts, "127.0.0.3", 0);
    let _app = b.app("greeting-b", "greeting", &["--config", "conf/greeting.yml"]);
    a.wait_for_instances("Greeting", 1).await;
    a.wait_for_instances("lymph", 2).await;
    let someone = zk_client(&hosts).await;
    // B's own `lymph` node and its app's Greeting node.
    let paths = [
        node_of(&someone, "lymph", "127.0.0.3").await,
        node_of(&someone, "Greeting", "127.0.0.3").await,
    ];
    for path in &paths {
        within("delete", someone.delete(path, None))
            .await
            .expect("delete B's node");
    }
    let deleted = Instant::now();
    let deadline = deleted + RECREATE_WITHIN + MARGIN;
    for path in &paths {
        loop {
            let stat = within("stat", someone.check_stat(path))
                .await
                .expect("stat");
            if stat.is_some() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{path} not re-created within {:?}; B's log:\n{}",
                RECREATE_WITHIN + MARGIN,
                b.proc.stderr_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let took = deleted.elapsed();
    eprintln!("own nodes re-created {took:?} after their deletion");
    for path in &paths {
        // The log names the path in a `path=` field: one warning per deletion.
        let warned = b
            .proc
            .output_lines()
            .iter()
            .filter(|l| {
                l.contains("WARN")
                    && l.contains("deleted by someone else")
                    && l.contains(path.as_str())
            })
            .count();
        assert_eq!(
            warned,
            1,
            "one warning naming {path}:\n{}",
            b.proc.stderr_text()
        );
    }
    // Rewritten by someone else (here: emptied), a node is restored too.
    let greeting = &paths[1];
    within("set", someone.set_data(greeting, b"{}", None))
        .await
        .expect("overwrite B's Greeting node");
    let deadline = Instant::now() + RECREATE_WITHIN + MARGIN;
    loop {
        // Restoring deletes and re-creates the node: a read may fall between.
        match within("get", someone.get_data(greeting)).await {
            Ok((data, _)) if data.starts_with(b"{\"id\"") => break,
            Ok(_) | Err(zk::Error::NoNode) => {}
            Err(e) => panic!("get {greeting}: {e}"),
        }
        assert!(Instant::now() < deadline, "{greeting} not restored");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let warned = b.proc.lines_with("rewritten by someone else");
    assert_eq!(warned, 1, "one warning:\n{}", b.proc.stderr_text());
    // Discovery and calls through either daemon work again.
    a.wait_for_instances("lymph", 2).await;
    a.wait_for_instances("Greeting", 1).await;
    assert_eq!(greet(&b, 3, "local").await, 3, "calls through B");
    assert_eq!(greet(&a, 3, "remote").await, 3, "calls through A");
}

/// Counts A's log lines about an unusable node with this id.
fn mentions(daemon: &TestDaemon, id: &str) -> usize {
    let field = format!("id={id} ");
    daemon
        .proc
        .output_lines()
        .iter()
        .filter(|l| l.contains("unusable instance znode") && l.contains(&field))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_nodes_are_logged_once_and_never_hide_the_live_instance() {
    let hosts = zookeeper_chroot();
    let a = TestDaemon::start_fleet(&hosts, "127.0.0.2", 0);
    let b = TestDaemon::start_fleet(&hosts, "127.0.0.3", 0);
    let _app = b.app("greeting-b", "greeting", &["--config", "conf/greeting.yml"]);
    a.wait_for_instances("Greeting", 1).await;
    let someone = zk_client(&hosts).await;
    // Near ZooKeeper's own 1 MB limit (jute.maxbuffer): never read whole.
    let huge = format!(
        r#"{{"identity": "{}", "endpoint": "tcp://127.0.0.1:1", "pad": "{}"}}"#,
        "a".repeat(32),
        "x".repeat(900 * 1024)
    );
    let malformed: [(&str, Vec<u8>); 5] = [
        ("bad-json", b"{\"identity\": ".to_vec()),
        ("no-endpoint", br#"{"identity": "abc"}"#.to_vec()),
        (
            "bad-endpoint",
            br#"{"identity": "abc", "endpoint": "tcp://nowhere"}"#.to_vec(),
        ),
        ("not-an-object", b"[1, 2, 3]".to_vec()),
        ("huge", huge.into_bytes()),
    ];
    for (id, data) in &malformed {
        write_node(&someone, "Greeting", id, data).await;
    }
    // Each one logged; the live instance stays the only one, and answers.
    let deadline = Instant::now() + STARTUP;
    while malformed.iter().any(|(id, _)| mentions(&a, id) == 0) {
        assert!(
            Instant::now() < deadline,
            "not every malformed node was logged; A's log:\n{}",
            a.proc.stderr_text()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(a.count("Greeting").await, 1);
    assert_eq!(greet(&a, 5, "m").await, 5, "calls beside malformed nodes");

    // More watch fires (nodes come and go): read once, never logged again.
    for round in 0..3 {
        let id = format!("scratch-{round}");
        write_node(&someone, "Greeting", &id, b"{}").await;
        let deadline = Instant::now() + STARTUP;
        while mentions(&a, &id) == 0 {
            assert!(Instant::now() < deadline, "{id} never read");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        within(
            "delete",
            someone.delete(&format!("/services/Greeting/{id}"), None),
        )
        .await
        .expect("delete scratch node");
    }
    for (id, _) in &malformed {
        assert_eq!(
            mentions(&a, id),
            1,
            "{id} logged once:\n{}",
            a.proc.stderr_text()
        );
    }
    assert_eq!(a.count("Greeting").await, 1);
    assert_eq!(greet(&a, 5, "n").await, 5, "calls after the watch fires");
}
