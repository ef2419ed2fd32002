//! Who may attach: the daemon knows each app's uid, gid and pid from the
//! kernel (shown by `lymphctl status`), `apps.allowed_uids`/`allowed_gids`
//! refuse other users at `Attach` and on every call, and `services:` keeps a
//! rogue process from serving another team's service. Real users (created
//! here, as root), real processes run as them, one real daemon per test.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Output};
use std::time::Duration;

use lymph_proto::v1 as pb;
use nix::unistd::User;
use tonic::codegen::tokio_stream::wrappers::ReceiverStream;

use crate::harness::{Proc, TestDaemon, bin, outcome, run_bounded, text, workspace_root};

/// A supplementary group no test user has as its primary one; it needs no
/// entry in /etc/group to be held by a process.
const EXTRA_GROUP: u32 = 64_123;

/// A system user for these tests: (uid, gid). Idempotent, and safe while
/// other tests create the same users (`useradd` refuses a duplicate, or
/// cannot lock /etc/passwd for a moment: both are retried, boundedly).
fn test_user(name: &str) -> (u32, u32) {
    for _ in 0..50 {
        if let Ok(Some(user)) = User::from_name(name) {
            return (user.uid.as_raw(), user.gid.as_raw());
        }
        let _ = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
            ])
            .arg(name)
            .output();
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("cannot create the test user {name}");
}

/// A daemon with `yaml` as its config whose socket any local user can open
/// (a root-owned 0755 directory, the socket 0666; a deployment grants a group
/// instead): here only the daemon's own rules decide who gets in.
fn open_daemon(yaml: &str) -> (TestDaemon, tempfile::TempDir) {
    let config_dir = tempfile::tempdir().expect("tempdir");
    let config = config_dir.path().join("lymphd.yml");
    std::fs::write(&config, yaml).expect("write config");
    let daemon = TestDaemon::start_with(&["--config", config.to_str().expect("utf-8 path")]);
    let mode = |m| std::fs::Permissions::from_mode(m);
    std::fs::set_permissions(daemon.dir.path(), mode(0o755)).expect("chmod dir");
    std::fs::set_permissions(&daemon.socket, mode(0o666)).expect("chmod socket");
    (daemon, config_dir)
}

/// The test app (interfaces `Test` and `Board`) run as `uid`:`gid`.
fn app_as(daemon: &TestDaemon, name: &str, (uid, gid): (u32, u32)) -> Proc {
    let mut cmd = Command::new(bin("testapp"));
    cmd.current_dir(workspace_root())
        .env("LYMPH_SOCKET", &daemon.socket)
        .env("RUST_LOG", "info")
        .uid(uid)
        .gid(gid);
    Proc::spawn(name, cmd, daemon.dir.path())
}

/// `lymphctl --socket <daemon> args...` run as `uid`:`gid`, with `groups`
/// as its supplementary groups (through `setpriv`).
fn ctl_as(daemon: &TestDaemon, (uid, gid): (u32, u32), groups: &[u32], args: &[&str]) -> Output {
    let groups: Vec<String> = groups.iter().map(u32::to_string).collect();
    let mut cmd = Command::new("setpriv");
    cmd.arg(format!("--reuid={uid}"))
        .arg(format!("--regid={gid}"));
    if groups.is_empty() {
        cmd.arg("--clear-groups");
    } else {
        cmd.arg(format!("--groups={}", groups.join(",")));
    }
    cmd.arg(bin("lymphctl"))
        .arg("--socket")
        .arg(&daemon.socket)
        .args(args);
    run_bounded(cmd, Duration::from_secs(30))
}

fn status_json(out: &Output) -> serde_json::Value {
    assert!(out.status.success(), "status: {}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("status --json is JSON")
}

/// The status entry of the app whose connection process `pid` opened.
fn app_entry(status: &serde_json::Value, pid: u32) -> &serde_json::Value {
    status["apps"]
        .as_array()
        .expect("apps")
        .iter()
        .find(|a| a["peer"]["pid"] == pid)
        .unwrap_or_else(|| panic!("no app with peer pid {pid} in {status}"))
}

#[tokio::test]
async fn status_shows_the_uid_gid_and_pid_the_kernel_gave_not_the_hellos() {
    let alice = test_user("lymphtest1");
    let (daemon, _config) = open_daemon("");
    let app = app_as(&daemon, "app-alice", alice);
    daemon.wait_for_instances("Test", 1).await;
    let pid = u32::try_from(app.pid().as_raw()).expect("pid");

    // A Hello that lies about its pid: the kernel's word is what status shows.
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tx.send(pb::AppMessage {
        kind: Some(pb::app_message::Kind::Hello(pb::Hello {
            app_name: "liar".to_owned(),
            pid: 1,
            ..Default::default()
        })),
    })
    .await
    .expect("queue Hello");
    let mut client = daemon.client().await;
    let attach = client.attach(ReceiverStream::new(rx));
    let mut inbound = tokio::time::timeout(Duration::from_secs(10), attach)
        .await
        .expect("attach in time")
        .expect("attach")
        .into_inner();
    let welcome = tokio::time::timeout(Duration::from_secs(10), inbound.message()).await;
    assert!(
        matches!(&welcome, Ok(Ok(Some(m))) if matches!(m.kind, Some(pb::daemon_message::Kind::Welcome(_)))),
        "{welcome:?}"
    );

    let status = status_json(&daemon.ctl(&["status", "--json"]));
    let entry = app_entry(&status, pid);
    assert_eq!(entry["peer"]["uid"], alice.0, "{entry}");
    assert_eq!(entry["peer"]["gid"], alice.1, "{entry}");
    let liar = app_entry(&status, std::process::id());
    assert_eq!(liar["app_name"], "liar");
    assert_eq!(liar["pid"], 1, "the Hello's claim is kept apart");
    assert_eq!(liar["peer"]["uid"], 0);

    let text_status = text(&daemon.ctl(&["status"]).stdout);
    let line = format!("pid {pid}  uid {}  gid {}", alice.0, alice.1);
    assert!(text_status.contains(&line), "{line:?} in:\n{text_status}");
    drop(tx);
}

#[tokio::test]
async fn allowed_uids_and_gids_refuse_everyone_else_at_attach_and_on_every_call() {
    let alice = test_user("lymphtest1");
    let bob = test_user("lymphtest2");
    let yaml = format!(
        "apps:\n  allowed_uids: [{}, 0]\n  allowed_gids: [{EXTRA_GROUP}]\n",
        alice.0
    );
    let (daemon, _config) = open_daemon(&yaml);

    // Bob's app is refused at Hello with the reason, and stops (78: its setup).
    let mut rogue = app_as(&daemon, "app-bob", bob);
    let exit = rogue.wait(Duration::from_secs(20));
    let said = rogue.stderr_text();
    assert_eq!(exit.code(), Some(78), "{said}");
    let reason = format!("permission denied: uid {} (gid {}", bob.0, bob.1);
    assert!(said.contains(&reason), "{reason:?} in:\n{said}");
    assert!(said.contains("apps.allowed_uids"), "{said}");

    // Alice's app attaches; root is listed, so the harness's calls work.
    let _app = app_as(&daemon, "app-alice", alice);
    daemon.wait_for_instances("Test", 1).await;

    // Bob's tools are refused on every call, naming his uid and the setting.
    for args in [
        &["status"][..],
        &["request", "Test.echo", r#"{"text": "hi"}"#],
        &["discover"],
        &["emit", "work", r#"{"n": 1}"#],
    ] {
        let out = ctl_as(&daemon, bob, &[], args);
        let err = text(&out.stderr);
        assert!(!out.status.success(), "{args:?} must fail: {err}");
        assert!(err.contains(&reason), "{args:?}: {reason:?} in: {err}");
        assert!(err.contains("apps.allowed_uids"), "{args:?}: {err}");
    }

    // Alice's tools work; so do Bob's once he holds a listed group.
    let out = ctl_as(
        &daemon,
        alice,
        &[],
        &["request", "Test.echo", r#"{"text": "hi"}"#],
    );
    assert!(out.status.success(), "alice: {}", text(&out.stderr));
    assert!(text(&out.stdout).contains("hi"), "{}", text(&out.stdout));
    let out = ctl_as(&daemon, bob, &[EXTRA_GROUP], &["status"]);
    assert!(
        out.status.success(),
        "a supplementary group in allowed_gids: {}",
        text(&out.stderr)
    );
}

#[tokio::test]
async fn a_service_under_services_is_served_only_by_its_uids() {
    let alice = test_user("lymphtest1");
    let bob = test_user("lymphtest2");
    let yaml = format!("services:\n  Test: {{uids: [{}]}}\n", alice.0);
    let (daemon, _config) = open_daemon(&yaml);
    let owner = app_as(&daemon, "app-alice", alice);
    daemon.wait_for_instances("Test", 1).await;
    let owner_pid = u64::try_from(owner.pid().as_raw()).expect("pid");

    let mut rogue = app_as(&daemon, "app-bob", bob);
    let rogue_pid = rogue.pid();
    let exit = rogue.wait(Duration::from_secs(20));
    let said = rogue.stderr_text();
    assert_eq!(exit.code(), Some(78), "{said}");
    let reason = format!(
        "uid {} (gid {}, pid {rogue_pid}) may not serve Test: services.Test allows uids [{}]",
        bob.0, bob.1, alice.0
    );
    assert!(said.contains(&reason), "{reason:?} in:\n{said}");
    let logged = daemon.proc.lines_with("refused an app");
    assert_eq!(logged, 1, "{}", daemon.proc.stderr_text());
    // Bob may still call it: `services:` is about serving, not calling.
    let out = ctl_as(&daemon, bob, &[], &["request", "Test.whoami"]);
    assert!(out.status.success(), "bob calls: {}", text(&out.stderr));

    for n in 0..20 {
        let reply = daemon
            .call("Test", "whoami", serde_json::json!({}), 5_000)
            .await;
        let answered = outcome(&reply).unwrap_or_else(|e| panic!("call {n}: {e:?}"));
        assert_eq!(answered, owner_pid, "call {n} answered by alice's app");
    }
    assert_eq!(daemon.count("Test").await, 1);
}

#[tokio::test]
async fn nobody_is_implicit_and_refusals_are_logged_boundedly() {
    let alice = test_user("lymphtest1");
    let yaml = format!("apps:\n  allowed_uids: [{}]\n", alice.0);
    let (daemon, _config) = open_daemon(&yaml);

    // Root (this test) is not listed, so it is refused like anyone else: 50
    // calls in a row, each refused, cost a bounded number of log lines.
    let mut client = daemon.client().await;
    for n in 0..50 {
        let status = client
            .status(pb::StatusRequest {})
            .await
            .expect_err("root is not implicit");
        assert_eq!(status.code(), tonic::Code::PermissionDenied, "call {n}");
        assert!(
            status
                .message()
                .contains("permission denied: uid 0 (gid 0, pid "),
            "{}",
            status.message()
        );
    }
    let out = ctl_as(&daemon, alice, &[], &["status"]);
    assert!(out.status.success(), "alice: {}", text(&out.stderr));

    let logged = daemon.proc.lines_with("refused a local caller");
    assert!(
        (1..=2).contains(&logged),
        "{logged} refusal lines for 50 refusals:\n{}",
        daemon.proc.stderr_text()
    );
    let line = daemon
        .proc
        .output_lines()
        .into_iter()
        .find(|l| l.contains("refused a local caller"))
        .expect("a refusal line");
    let pid = format!("pid={}", std::process::id());
    assert!(
        line.contains("uid=0") && line.contains("gid=0") && line.contains(&pid),
        "{line}"
    );
}
