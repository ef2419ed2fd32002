//! Parity with Python lymph 0.15 as lymph sees it: the `version` header of
//! every reply kind (read by a real lymph client, side by side with a real
//! lymph instance's replies), `lymphctl request -D` naming a Python
//! instance, `lymph.change_loglevel`, `lymph.inspect` per container and per
//! app, and an idle fleet daemon stopping at once on SIGTERM.

use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::harness::{TestDaemon, ok, run_bounded, text, wait_until};
use crate::lymph_peer::{CLI_TIMEOUT, Py, PythonPeer};

/// A lymph 0.15 client that sends each `[service, subject, body]` of argv[2]
/// (JSON) and prints each raw reply's type and headers as one JSON line;
/// a reply lost to lymph's 20 ms connect race is asked again (3 tries).
const RAW_CLIENT: &str = r#"
import lymph.monkey
lymph.monkey.patch()
import json, sys
import gevent.queue
from lymph.client import Client
from lymph.config import Configuration

def text(value):
    return value.decode('utf-8') if isinstance(value, bytes) else value

config = Configuration({'container': {}})
config.load_file(sys.argv[1])
container = Client.from_config(config).container
for service, subject, body in json.loads(sys.argv[2]):
    reply = None
    for _ in range(3):
        channel = container.send_request(service, subject, body)
        try:
            reply = channel.queue.get(timeout=5)
            break
        except gevent.queue.Empty:
            continue
    if reply is None:
        print(json.dumps({'subject': subject, 'type': None}))
        continue
    headers = dict((text(k), text(v)) for k, v in reply.headers.items()
                   if not isinstance(v, dict))
    print(json.dumps({'subject': subject, 'type': text(reply.type), 'headers': headers}))
sys.stdout.flush()
"#;

/// Runs `RAW_CLIENT` on the peer's Python 3.7 with this test's client config.
fn raw_replies(peer: &PythonPeer, requests: &serde_json::Value) -> Vec<serde_json::Value> {
    let script = peer.dir().join("raw_client.py");
    std::fs::write(&script, RAW_CLIENT).expect("write the raw client");
    let venv = peer.root().join(Py::Py37.venv()).join("bin");
    let mut cmd = Command::new(venv.join("python"));
    cmd.arg(&script)
        .arg(peer.dir().join("client.yml"))
        .arg(requests.to_string())
        .current_dir(peer.dir())
        .env("PYTHONPATH", peer.root())
        .env("PYTHONIOENCODING", "utf-8")
        .env("LC_ALL", "C.UTF-8")
        .env("PYTHONWARNINGS", "ignore");
    let out = run_bounded(cmd, CLI_TIMEOUT);
    assert!(
        out.status.success(),
        "raw lymph client failed: {}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect()
}

/// `Py.greet` on a Python lymph instance (the peer's Greeting class).
fn python_greeting(peer: &PythonPeer, py: Py) -> crate::harness::Proc {
    let config = peer.write_config("pygreeting", "    Py:\n        class: greeting:Greeting\n");
    peer.instance_with(py, "pygreeting", &config, "127.0.0.3")
}

#[tokio::test]
async fn replies_carry_the_version_header_as_lymphs_do() {
    let peer = PythonPeer::new();
    let daemon = TestDaemon::start_fleet(peer.zk_hosts(), "127.0.0.2", 0);
    let _test = daemon.app("testapp", "testapp", &[]);
    let _py = python_greeting(&peer, Py::Py37);
    daemon.wait_for_instances("Test", 1).await;
    peer.wait_for_instances("Py", 1);

    let requests = serde_json::json!([
        // Real lymph: REP, NACK for bad arguments, NACK for an unknown method.
        ["Py", "Py.greet", {"name": "Joe"}],
        ["Py", "Py.greet", {}],
        ["Py", "Py.nope", {}],
        // lymphd: the same, plus ERROR, a crashed handler, the lymph interface.
        ["Test", "Test.echo", {"text": "hi"}],
        ["Test", "Test.echo", {}],
        ["Test", "Test.nope", {}],
        ["Test", "Test.fail", {"message": "no"}],
        ["Test", "Test.crash", {}],
        ["Test", "lymph.status", {}],
        ["Test", "lymph.ping", {"payload": "x"}],
        ["Test", "lymph.nope", {}],
        // A refused change_loglevel, on lymph and on lymphd.
        ["Py", "lymph.change_loglevel", {"qualname": "x", "loglevel": "LOUD"}],
        ["Test", "lymph.change_loglevel", {"qualname": "x", "loglevel": "LOUD"}],
    ]);
    let replies = raw_replies(&peer, &requests);
    let reply = |i: usize| -> (&str, Option<&serde_json::Value>) {
        let r = &replies[i];
        (
            r["type"].as_str().unwrap_or("none"),
            r["headers"].as_object().and_then(|h| h.get("version")),
        )
    };
    let null = serde_json::Value::Null;
    let builtin = serde_json::Value::from("0.15.0");
    // lymph's own replies: what lymphd must match.
    assert_eq!(reply(0), ("REP", Some(&null)), "{replies:#?}");
    assert_eq!(reply(1), ("NACK", Some(&null)), "{replies:#?}");
    assert_eq!(reply(2), ("NACK", None), "{replies:#?}");
    // lymphd's, kind by kind.
    assert_eq!(reply(3), ("REP", Some(&null)), "{replies:#?}");
    assert_eq!(reply(4), ("NACK", Some(&null)), "{replies:#?}");
    assert_eq!(reply(5), ("NACK", None), "{replies:#?}");
    assert_eq!(reply(6), ("ERROR", Some(&null)), "{replies:#?}");
    assert_eq!(reply(7), ("NACK", Some(&null)), "{replies:#?}");
    assert_eq!(reply(8), ("REP", Some(&builtin)), "{replies:#?}");
    assert_eq!(reply(9), ("REP", Some(&builtin)), "{replies:#?}");
    assert_eq!(reply(10), ("NACK", None), "{replies:#?}");
    assert_eq!(reply(11), ("NACK", Some(&builtin)), "{replies:#?}");
    assert_eq!(reply(12), ("NACK", Some(&builtin)), "{replies:#?}");
    for r in &replies {
        assert!(r["headers"]["trace_id"].is_string(), "{r}");
    }
}

#[tokio::test]
async fn lymphctl_request_d_names_the_python27_instance() {
    request_d_names_the_python_instance(Py::Py27).await;
}

#[tokio::test]
async fn lymphctl_request_d_names_the_python37_instance() {
    request_d_names_the_python_instance(Py::Py37).await;
}

async fn request_d_names_the_python_instance(py: Py) {
    let peer = PythonPeer::new();
    let daemon = TestDaemon::start_fleet(peer.zk_hosts(), "127.0.0.2", 0);
    let _py = python_greeting(&peer, py);
    daemon.wait_for_instances("Py", 1).await;

    // The identity as Python lymph itself registered it.
    let discover = peer.cli_ok(Py::Py37, &["discover", "--json"]);
    let listed: serde_json::Value = serde_json::from_str(discover.trim()).expect("discover JSON");
    let identity = listed["Py"][0]["identity"]
        .as_str()
        .unwrap_or_else(|| panic!("no identity for Py in {listed}"))
        .to_owned();
    assert_eq!(identity.len(), 32, "{identity}");

    let mut out = daemon.ctl(&["request", "-D", "Py.greet", r#"{"name": "Joe"}"#]);
    for _ in 0..2 {
        if out.status.success() {
            break;
        }
        // lymph's 20 ms connect race can lose the first message.
        out = daemon.ctl(&["request", "-D", "Py.greet", r#"{"name": "Joe"}"#]);
    }
    let stdout = ok(&out, "lymphctl request -D Py.greet");
    assert!(
        stdout.contains(&format!("identity: {identity}\n")),
        "{stdout}"
    );
    assert!(stdout.contains("Hi, Joe!"), "{stdout}");
}

#[tokio::test]
async fn change_loglevel_shows_debug_lines_for_the_period_then_stops() {
    let daemon = TestDaemon::start_with(&["--log", "info"]);
    let _test = daemon.app("testapp", "testapp", &[]);
    daemon.wait_for_instances("Test", 1).await;

    let inspect = ok(&daemon.ctl(&["inspect", "lymph"]), "lymphctl inspect lymph");
    assert!(
        inspect.contains("lymph.change_loglevel(qualname, loglevel, period)"),
        "{inspect}"
    );

    // Refusals say what is wrong.
    for (params, says) in [
        (
            r#"{"qualname": "", "loglevel": "LOUD"}"#,
            "unknown loglevel",
        ),
        (
            r#"{"qualname": "a=b", "loglevel": "DEBUG"}"#,
            "invalid qualname",
        ),
        (
            r#"{"qualname": "", "loglevel": "DEBUG", "period": 0}"#,
            "period",
        ),
        (r#"{"loglevel": "DEBUG"}"#, "qualname is required"),
    ] {
        let out = daemon.ctl(&["request", "lymph.change_loglevel", params]);
        assert_eq!(
            out.status.code(),
            Some(1),
            "{params}: {}",
            text(&out.stdout)
        );
        assert!(
            text(&out.stderr).contains(says),
            "{params}: {}",
            text(&out.stderr)
        );
    }

    let debug_lines = || daemon.proc.lines_with(" DEBUG ");
    let call = || {
        ok(
            &daemon.ctl(&["request", "Test.echo", r#"{"text": "x"}"#]),
            "call",
        )
    };
    call();
    assert_eq!(debug_lines(), 0, "{}", daemon.proc.stderr_text());

    // The root logger: every module's debug lines (the API's HTTP/2 frames
    // on each call among them).
    let params = r#"{"qualname": "root", "loglevel": "DEBUG", "period": 2}"#;
    let out = daemon.ctl(&["request", "lymph.change_loglevel", params]);
    assert_eq!(ok(&out, "change_loglevel"), "null\n");
    let changed = Instant::now();
    call();
    wait_until("debug lines", Duration::from_secs(5), || debug_lines() > 0);
    wait_until("the filter restored", Duration::from_secs(10), || {
        daemon.proc.lines_with("log filter restored") == 1
    });
    assert!(changed.elapsed() >= Duration::from_millis(1900));
    let before = debug_lines();
    call();
    call();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(debug_lines(), before, "{}", daemon.proc.stderr_text());
}

#[test]
fn an_idle_fleet_daemon_stops_at_once_on_sigterm() {
    let peer = PythonPeer::new();
    let mut daemon =
        TestDaemon::start_fleet_events(peer.zk_hosts(), "127.0.0.2", &peer.amqp_url(), "lymph");
    // No API connection from this test (one left open would hold the API
    // server's graceful stop while this thread blocks): the log says ready.
    wait_until("lymphd ready", Duration::from_secs(10), || {
        daemon.proc.lines_with("lymphd ready") == 1
    });
    assert!(daemon.proc.lines_with("connected to rabbitmq") == 1);
    std::thread::sleep(Duration::from_millis(500));
    let asked = Instant::now();
    daemon.proc.signal(Signal::SIGTERM);
    let status = daemon.proc.wait(Duration::from_secs(5));
    let took = asked.elapsed();
    let log = daemon.proc.stderr_text();
    assert!(status.success(), "{status}\n{log}");
    assert!(took <= Duration::from_secs(1), "took {took:?}\n{log}");
    assert!(!log.contains("did not finish"), "{log}");
    eprintln!("idle fleet daemon stopped {took:?} after SIGTERM");
}

#[tokio::test]
async fn inspect_lists_the_container_for_lymph_and_one_app_for_lymphd() {
    let peer = PythonPeer::new();
    let host = TestDaemon::start_fleet(peer.zk_hosts(), "127.0.0.2", 0);
    let _greeting = host.app("greeting", "greeting", &["--config", "conf/greeting.yml"]);
    let _test = host.app("testapp", "testapp", &[]);
    host.wait_for_instances("Greeting", 1).await;
    host.wait_for_instances("Test", 1).await;
    let other = TestDaemon::start_fleet(peer.zk_hosts(), "127.0.0.4", 0);
    other.wait_for_instances("Greeting", 1).await;

    // Python lymph asks the shared endpoint: every app's interfaces.
    let mut out = peer.cli(Py::Py37, &["inspect", "Greeting"]);
    for _ in 0..2 {
        if out.status.success() {
            break;
        }
        out = peer.cli(Py::Py37, &["inspect", "Greeting"]);
    }
    let stdout = ok(&out, "lymph inspect Greeting");
    assert!(stdout.contains("rpc Greeting.greet("), "{stdout}");
    assert!(stdout.contains("rpc Test.echo(text)"), "{stdout}");
    assert!(stdout.contains("rpc lymph.change_loglevel("), "{stdout}");

    // lymphctl through another daemon names the instance: Greeting's app alone.
    let stdout = ok(
        &other.ctl(&["inspect", "Greeting"]),
        "lymphctl inspect Greeting (other daemon)",
    );
    assert!(stdout.contains("rpc Greeting.greet("), "{stdout}");
    assert!(stdout.contains("rpc lymph.ping(payload)"), "{stdout}");
    assert!(!stdout.contains("Test."), "{stdout}");
    let stdout = ok(
        &other.ctl(&["inspect", "Test"]),
        "lymphctl inspect Test (other daemon)",
    );
    assert!(stdout.contains("rpc Test.echo(text)"), "{stdout}");
    assert!(!stdout.contains("Greeting."), "{stdout}");
}
