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
use crate::web::get;

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

/// The repository's `.lymph.yml` as it is, except that its release binaries
/// are the ones this test run built and its relative paths are anchored at
/// the repository (the copy lives in a temporary directory).
fn repository_node_file(dir: &Path) -> PathBuf {
    let root = workspace_root();
    let text = std::fs::read_to_string(root.join(".lymph.yml")).expect("read .lymph.yml");
    let bins = bin("lymphctl");
    let bins = bins.parent().expect("the binaries' directory");
    assert!(
        text.contains("target/release/") && text.contains(" conf/"),
        ".lymph.yml changed shape; adapt this test:\n{text}"
    );
    let text = text
        .replace("target/release/", &format!("{}/", bins.display()))
        .replace(" conf/", &format!(" {}/conf/", root.display()));
    let path = dir.join("lymph.yml");
    std::fs::write(&path, text).expect("write node file");
    path
}

/// conf/web.yml's `http_port`, the port .lymph.yml's `sockets:` names.
const WEB_PORT: u16 = 4080;

#[test]
fn the_repository_node_file_runs_the_walkthrough() {
    let dir = tempfile::tempdir().expect("tempdir");
    let socket = dir.path().join("lymphd.sock");
    let node_file = repository_node_file(dir.path());
    let mut node = start_node(&socket, &node_file, dir.path());

    wait_until("the node's services to register", STARTUP, || {
        let seen = discover(&socket);
        seen.contains("Web [2]")
            && seen.contains("Greeting [3]")
            && seen.contains("Listen [4]")
            && seen.contains("lymph [1]")
    });
    assert!(
        node.stdout_text()
            .contains(&format!("node: started lymphd on {}", socket.display()))
    );

    // One request's trace id, in the lines `lymphctl tail` streams from all
    // three services. Subscriptions join asynchronously (and lines logged
    // before they joined are not replayed), so ask again until one request
    // is seen whole.
    let mut tail_cmd = Command::new(bin("lymphctl"));
    tail_cmd
        .arg("--socket")
        .arg(&socket)
        .args(["tail", "Web", "Greeting", "Listen", "--for", "90s"]);
    let tail = Proc::spawn("tail", tail_cmd, dir.path());
    let mut traced = String::new();
    wait_until(
        "one request's trace id in the tail of all three services",
        STARTUP,
        || {
            let reply = get(WEB_PORT, "/greet?name=Joe");
            assert_eq!(reply.status, 200, "{}", reply.body);
            assert_eq!(reply.body, "Hi, Joe!");
            let trace = reply
                .header("x-trace-id")
                .expect("an X-Trace-Id")
                .to_owned();
            assert_eq!(trace.len(), 32, "{trace}");
            std::thread::sleep(Duration::from_millis(500));
            let out = tail.stdout_text();
            let marker = format!("- trace_id=\"{trace}\"");
            let seen = |tag: &str, what: &str| {
                out.lines()
                    .any(|l| l.starts_with(tag) && l.contains(what) && l.ends_with(&marker))
            };
            traced = trace;
            seen("[Web][", "[INFO] web: About to greet Joe")
                && seen("[Greeting][", "[INFO] greeting: Saying hi to Joe")
                && seen("[Listen][", "[INFO] listen: Somebody greeted Joe")
        },
    );
    // The node shows the same lines, each under its instance's name; the
    // event of that request was handled by exactly one Listen.
    wait_until("the request's lines in the node's output", STARTUP, || {
        let out = node.stdout_text();
        let with_trace = |prefix: &str, what: &str| {
            out.lines()
                .filter(|l| l.starts_with(prefix) && l.contains(&traced) && l.ends_with(what))
                .count()
        };
        with_trace("web.", ": About to greet Joe") == 1
            && with_trace("greeting.", ": Saying hi to Joe") == 1
            && with_trace("listen.", ": Somebody greeted Joe") == 1
    });

    // The HTTP errors of the Web example.
    let missing = get(WEB_PORT, "/greet");
    assert_eq!(missing.status, 400, "{}", missing.body);
    assert!(missing.body.contains("name"), "{}", missing.body);
    assert!(missing.header("x-trace-id").is_some());
    assert_eq!(get(WEB_PORT, "/nowhere").status, 404);

    // A killed instance is restarted.
    let victim = Pid::from_raw(*app_pids(&socket, "Web").first().expect("a web pid"));
    kill(victim, Signal::SIGKILL).expect("kill a web process");
    wait_until("the node to restart the killed process", STARTUP, || {
        node.stdout_text().lines().any(|l| {
            l.starts_with("node: web.") && l.ends_with("exited with status 137; restarting in 1s")
        })
    });
    wait_until("two web processes again", STARTUP, || {
        let pids = app_pids(&socket, "Web");
        pids.len() == 2 && !pids.contains(&victim.as_raw()) && discover(&socket).contains("Web [2]")
    });
    assert_eq!(get(WEB_PORT, "/greet?name=Ann").body, "Hi, Ann!");

    let children = children_of(node.pid());
    assert_eq!(children.len(), 10, "lymphd and 9 apps: {children:?}");
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
