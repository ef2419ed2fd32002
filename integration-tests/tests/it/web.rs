//! The HTTP gateway: apps declare routes and `http_port`, lymphd listens there
//! and forwards each request to one ready instance. Plain HTTP/1.1 over a
//! `TcpStream` to 127.0.0.1, every read bounded.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

use nix::sys::signal::Signal;

use crate::harness::{TestDaemon, wait_until};

pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

pub(crate) fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

/// A config file for an app: its `http_port` (and no interface sections).
pub(crate) fn app_config(daemon: &TestDaemon, port: u16) -> PathBuf {
    let path = daemon.dir.path().join(format!("web-{port}.yml"));
    std::fs::write(&path, format!("http_port: {port}\n")).expect("write config");
    path
}

/// Sends `method path` with extra header lines; `Connection: close`, read to the end.
pub fn http(port: u16, method: &str, path: &str, extra: &str) -> std::io::Result<Reply> {
    let addr = ("127.0.0.1", port);
    let mut stream = TcpStream::connect_timeout(
        &std::net::ToSocketAddrs::to_socket_addrs(&addr)?
            .next()
            .expect("an address"),
        Duration::from_secs(5),
    )?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{extra}\r\n"
    )?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("a full response");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    Ok(Reply {
        status,
        headers,
        body: body.to_owned(),
    })
}

pub fn get(port: u16, path: &str) -> Reply {
    http(port, "GET", path, "").expect("http request")
}

#[tokio::test]
async fn web_requests_reach_every_instance_with_trace_ids() {
    let daemon = TestDaemon::start();
    let port = free_port();
    let config = app_config(&daemon, port);
    let config = config.to_str().expect("utf-8");
    let _greeting = daemon.app("greeting", "greeting", &["--config", "conf/greeting.yml"]);
    let web1 = daemon.app("web1", "web", &["--config", config]);
    let web2 = daemon.app("web2", "web", &["--config", config]);
    daemon.wait_for_instances("Greeting", 1).await;
    daemon.wait_for_instances("Web", 2).await;

    let reply = get(port, "/greet?name=Joe");
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body, "Hi, Joe!");
    assert_eq!(
        reply.header("content-type"),
        Some("text/plain; charset=utf-8")
    );
    let trace = reply.header("x-trace-id").expect("a trace id");
    assert_eq!(trace.len(), 32, "{trace}");

    for _ in 0..6 {
        assert_eq!(get(port, "/greet?name=Joe").status, 200);
    }
    wait_until(
        "both web instances to greet",
        Duration::from_secs(5),
        || web1.lines_with("About to greet Joe") > 0 && web2.lines_with("About to greet Joe") > 0,
    );

    let traced = http(port, "GET", "/greet?name=Ann", "X-Trace-Id: my-trace-1\r\n").expect("http");
    assert_eq!(traced.header("x-trace-id"), Some("my-trace-1"));
    assert_eq!(traced.body, "Hi, Ann!");

    let missing = get(port, "/greet");
    assert_eq!(missing.status, 400, "{}", missing.body);
    assert!(missing.header("x-trace-id").is_some());
    assert_eq!(get(port, "/nope").status, 404);
    assert_eq!(
        http(port, "POST", "/greet", "Content-Length: 0\r\n")
            .expect("http")
            .status,
        405
    );
    let oversize = http(
        port,
        "GET",
        "/greet?name=Joe",
        "Content-Length: 5000000\r\n",
    )
    .expect("http");
    assert_eq!(oversize.status, 413, "{}", oversize.body);
    let health = get(port, "/_health/");
    assert_eq!((health.status, health.body.as_str()), (200, ""));

    drop(web1);
    drop(web2);
    daemon.wait_for_instances("Web", 0).await;
    wait_until("the web port to close", Duration::from_secs(5), || {
        http(port, "GET", "/_health/", "").is_err()
    });
}

#[tokio::test]
async fn web_failures_answer_with_the_right_status() {
    let daemon_config = tempfile::NamedTempFile::new().expect("temp file");
    std::fs::write(daemon_config.path(), "web:\n  timeout: 3s\n").expect("write");
    let daemon =
        TestDaemon::start_with(&["--config", daemon_config.path().to_str().expect("utf-8")]);
    let port = free_port();
    let config = app_config(&daemon, port);
    let config = config.to_str().expect("utf-8").to_owned();
    let args = ["--max-concurrency", "1", "--config", config.as_str()];
    let app = daemon.app("testapp", "testapp", &args);
    daemon.wait_for_instances("Test", 1).await;

    let boom = get(port, "/boom");
    assert_eq!(boom.status, 500);
    assert!(boom.header("x-trace-id").is_some());
    let slow = get(port, "/slow?ms=10000");
    assert_eq!(slow.status, 504, "{}", slow.body);

    // Over the app's concurrency limit (1, shared with RPC): 503 and Retry-After.
    let busy = std::thread::spawn(move || get(port, "/slow?ms=2000"));
    daemon.wait_in_flight(1).await;
    let refused = get(port, "/slow?ms=1");
    assert_eq!(refused.status, 503, "{}", refused.body);
    assert_eq!(refused.header("retry-after"), Some("1"));
    let busy = busy.join().expect("no panic");
    assert_eq!(busy.body, "slept 2000", "status {}", busy.status);

    // A stopping app is no longer ready: 503 while it finishes its request.
    let finishing = std::thread::spawn(move || get(port, "/slow?ms=2500"));
    daemon.wait_in_flight(1).await;
    app.signal(Signal::SIGTERM);
    wait_until("no ready instance", Duration::from_secs(5), || {
        get(port, "/_health/").status == 503
    });
    let finished = finishing.join().expect("no panic");
    assert_eq!(
        finished.body,
        "slept 2500",
        "status {}; app log:\n{}\ndaemon log:\n{}",
        finished.status,
        app.stderr_text(),
        daemon.proc.stderr_text()
    );
    daemon.wait_for_instances("Test", 0).await;

    // An app killed mid-request: 502 at once, not a timeout.
    let mut app = daemon.app("testapp2", "testapp", &args);
    daemon.wait_for_instances("Test", 1).await;
    let cut = std::thread::spawn(move || get(port, "/slow?ms=10000"));
    daemon.wait_in_flight(1).await;
    app.signal(Signal::SIGKILL);
    app.wait(Duration::from_secs(5));
    let cut = cut.join().expect("no panic");
    assert_eq!(cut.status, 502, "{}", cut.body);
}

#[tokio::test]
async fn a_port_in_use_rejects_the_app() {
    let daemon = TestDaemon::start();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let config = app_config(&daemon, port);
    let mut app = daemon.app("web", "web", &["--config", config.to_str().expect("utf-8")]);
    let status = app.wait(Duration::from_secs(20));
    assert!(!status.success());
    let stderr = app.stderr_text();
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
}

/// The children and data of `<chroot>/http/Web`, read with a plain client.
async fn http_nodes(chroot: &str) -> Vec<serde_json::Value> {
    let client = tokio::time::timeout(
        Duration::from_secs(10),
        zookeeper_client::Client::connector()
            .with_session_timeout(Duration::from_secs(4))
            .connect("127.0.0.1:2181"),
    )
    .await
    .expect("zookeeper connects in time")
    .expect("zookeeper connects");
    let parent = format!("{chroot}/http/Web");
    let step = Duration::from_secs(5);
    let Ok(Ok(children)) = tokio::time::timeout(step, client.list_children(&parent)).await else {
        return Vec::new();
    };
    let mut nodes = Vec::new();
    for child in children {
        let path = format!("{parent}/{child}");
        if let Ok(Ok((data, _))) = tokio::time::timeout(step, client.get_data(&path)).await {
            nodes.push(serde_json::from_slice(&data).expect("json node"));
        }
    }
    nodes
}

#[tokio::test]
async fn fleet_mode_publishes_web_instances_as_lymph_does() {
    let hosts = crate::harness::zookeeper_chroot();
    let chroot = hosts.trim_start_matches("127.0.0.1:2181").to_owned();
    let daemon = TestDaemon::start_fleet(&hosts, "127.0.0.1", 0);
    let port = free_port();
    let config = app_config(&daemon, port);
    let web = daemon.app("web", "web", &["--config", config.to_str().expect("utf-8")]);
    daemon.wait_for_instances("Web", 1).await;

    let nodes = http_nodes(&chroot).await;
    assert_eq!(nodes.len(), 1, "{nodes:?}");
    let node = &nodes[0];
    assert_eq!(node["http_port"], port);
    assert_eq!(node["ip"], "127.0.0.1");
    assert_eq!(node["version"], serde_json::Value::Null);
    for key in ["id", "identity", "hostname"] {
        assert!(node.get(key).is_some(), "key {key} missing in {node}");
    }

    drop(web);
    daemon.wait_for_instances("Web", 0).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !http_nodes(&chroot).await.is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "the web node stays after the app left"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hello_whose_http_port_is_not_a_port_is_rejected_naming_it() {
    use lymph_proto::v1 as pb;
    let daemon = TestDaemon::start();
    let web = |http_port: u32| pb::Hello {
        app_name: "web".to_owned(),
        http_port,
        interfaces: vec![pb::InterfaceSpec {
            name: "Web".to_owned(),
            routes: vec![pb::HttpRoute {
                method: "GET".to_owned(),
                path: "/greet".to_owned(),
                endpoint: "greet".to_owned(),
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    let out_of_range = daemon.hello_answer(web(70_000)).await;
    assert!(
        matches!(&out_of_range, Err(m) if m.contains("http_port 70000")),
        "{out_of_range:?}"
    );
    let no_port = daemon.hello_answer(web(0)).await;
    assert!(
        matches!(&no_port, Err(m) if m.contains("http_port is 0")),
        "{no_port:?}"
    );
    let port = free_port();
    assert_eq!(daemon.hello_answer(web(u32::from(port))).await, Ok(()));
}
