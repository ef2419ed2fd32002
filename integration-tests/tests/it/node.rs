//! `lymphctl node`, the development server: it runs a node file's processes
//! with a lymphd, restarts the ones that die, and stops everything on SIGTERM.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::harness::{
    Proc, STARTUP, TestDaemon, bin, run_bounded, text, wait_until, workspace_root,
};

/// A node file running the example apps built in debug.
fn write_node_file(dir: &Path, greetings: u32, listens: u32) -> PathBuf {
    let conf = workspace_root().join("conf");
    let yaml = format!(
        "instances:\n  greeting:\n    command: {} --config {}\n    numprocesses: {greetings}\n\
         \x20 listen:\n    command: {} --config {}\n    numprocesses: {listens}\n\
         sockets:\n  - {{host: 127.0.0.1, port: 4080}}\n",
        bin("greeting").display(),
        conf.join("greeting.yml").display(),
        bin("listen").display(),
        conf.join("listen.yml").display(),
    );
    let path = dir.join("node.yml");
    std::fs::write(&path, yaml).expect("write node file");
    path
}

fn start_node(socket: &Path, node_file: &Path, dir: &Path) -> Proc {
    let mut cmd = Command::new(bin("lymphctl"));
    cmd.arg("--socket")
        .arg(socket)
        .arg("node")
        .arg("--node-file")
        .arg(node_file)
        .env_remove("LYMPHD_CONFIG");
    Proc::spawn("node", cmd, dir)
}

fn ctl(socket: &Path, args: &[&str]) -> Output {
    let mut cmd = Command::new(bin("lymphctl"));
    cmd.arg("--socket").arg(socket).args(args);
    run_bounded(cmd, Duration::from_secs(30))
}

fn discover(socket: &Path) -> String {
    text(&ctl(socket, &["discover"]).stdout)
}

/// The pids of the apps offering `interface`, from `lymphctl status --json`.
fn app_pids(socket: &Path, interface: &str) -> Vec<i32> {
    let out = ctl(socket, &["status", "--json"]);
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status json");
    status["apps"]
        .as_array()
        .expect("apps")
        .iter()
        .filter(|a| {
            a["interfaces"]
                .as_array()
                .is_some_and(|i| i.iter().any(|n| n == interface))
        })
        .map(|a| i32::try_from(a["pid"].as_i64().expect("pid")).expect("pid fits"))
        .collect()
}

/// Direct children of `parent`, from /proc.
fn children_of(parent: Pid) -> Vec<Pid> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            // `pid (comm) state ppid ...`; comm may hold spaces, so split after ')'.
            stat.rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(1)?.parse::<i32>().ok())
                == Some(parent.as_raw())
        })
        .map(Pid::from_raw)
        .collect()
}

fn alive(pid: Pid) -> bool {
    kill(pid, None).is_ok()
}

#[test]
fn node_runs_restarts_and_stops_every_process() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("lymphd.sock");
    let node_file = write_node_file(dir.path(), 3, 4);
    let mut node = start_node(&socket, &node_file, dir.path());

    wait_until("the node's services to register", STARTUP, || {
        let seen = discover(&socket);
        seen.contains("Greeting [3]") && seen.contains("Listen [4]") && seen.contains("lymph [1]")
    });
    assert!(
        node.stdout_text()
            .contains(&format!("node: started lymphd on {}", socket.display()))
    );

    let reply = ctl(
        &socket,
        &["request", "Greeting.greet", r#"{"name": "Joe"}"#],
    );
    assert!(reply.status.success(), "{}", text(&reply.stderr));
    wait_until("the apps' prints in the node's output", STARTUP, || {
        let out = node.stdout_text();
        out.lines()
            .any(|l| l.starts_with("greeting.") && l.ends_with(" | Saying hi to Joe"))
            && out.contains(" | Somebody greeted Joe")
    });
    std::thread::sleep(Duration::from_millis(300));
    let listened: Vec<String> = node
        .stdout_text()
        .lines()
        .filter(|l| l.ends_with("Somebody greeted Joe"))
        .map(str::to_owned)
        .collect();
    assert_eq!(
        listened.len(),
        1,
        "one listener handles the event: {listened:?}"
    );
    assert!(listened[0].starts_with("listen."), "{listened:?}");

    let victim = Pid::from_raw(
        *app_pids(&socket, "Greeting")
            .first()
            .expect("a greeting pid"),
    );
    kill(victim, Signal::SIGKILL).expect("kill a greeting process");
    wait_until("the node to restart the killed process", STARTUP, || {
        node.stdout_text().lines().any(|l| {
            l.starts_with("node: greeting.")
                && l.ends_with("exited with status 137; restarting in 1s")
        })
    });
    wait_until("three greeting processes again", STARTUP, || {
        let pids = app_pids(&socket, "Greeting");
        pids.len() == 3
            && !pids.contains(&victim.as_raw())
            && discover(&socket).contains("Greeting [3]")
    });

    let children = children_of(node.pid());
    assert_eq!(children.len(), 8, "lymphd and 7 apps: {children:?}");
    stop_and_expect_no_child_left(&mut node, children);
    assert!(!socket.exists(), "the node's lymphd left its socket behind");
}

/// SIGTERM to the node: it exits 0 within 20 s and none of `children` is left.
fn stop_and_expect_no_child_left(node: &mut Proc, children: Vec<Pid>) {
    node.signal(Signal::SIGTERM);
    let status = node.wait(Duration::from_secs(20));
    assert!(
        status.success(),
        "node exit: {status:?}; stderr:\n{}",
        node.stderr_text()
    );
    for pid in children {
        assert!(!alive(pid), "{pid} outlived the node");
    }
}

#[test]
fn node_uses_a_running_lymphd_and_leaves_it_running() {
    let daemon = TestDaemon::start();
    let node_file = write_node_file(daemon.dir.path(), 2, 1);
    let mut node = start_node(&daemon.socket, &node_file, daemon.dir.path());
    wait_until("the node's services to register", STARTUP, || {
        let seen = discover(&daemon.socket);
        seen.contains("Greeting [2]") && seen.contains("Listen [1]")
    });
    let expected = format!(
        "node: using the lymphd already on {}",
        daemon.socket.display()
    );
    assert!(
        node.stdout_text().contains(&expected),
        "{}",
        node.stdout_text()
    );
    let children = children_of(node.pid());
    assert_eq!(children.len(), 3, "only the apps: {children:?}");

    stop_and_expect_no_child_left(&mut node, children);
    assert!(
        alive(daemon.proc.pid()),
        "the node stopped a lymphd it did not start"
    );
    wait_until("the apps to leave the registry", STARTUP, || {
        !discover(&daemon.socket).contains("Greeting")
    });
}
