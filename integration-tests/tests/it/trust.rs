//! Clients check whom they attach to: lymphctl and a Rust SDK app refuse a
//! socket whose directory, file or server belongs to another user, with an
//! error naming the path, the owners and the fix; they attach to their own
//! daemon, root's, and `LYMPH_DAEMON_USER`'s. Real uids (the tests run as
//! root and create two system users), real `lymphd`s.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Duration;

use crate::harness::{Proc, STARTUP, TestDaemon, bin, run_bounded, wait_until};

/// The other user, whose lymphd the victims must not attach to.
const MALLORY: &str = "lymphtest-mallory";
/// A non-root victim.
const ALICE: &str = "lymphtest-alice";

#[derive(Debug, Clone, Copy)]
struct User {
    name: &'static str,
    uid: u32,
    gid: u32,
}

/// The two test users, created once per test process (and kept: creating is
/// idempotent, and other runs may be using them).
fn users() -> (User, User) {
    static USERS: OnceLock<(User, User)> = OnceLock::new();
    *USERS.get_or_init(|| (system_user(MALLORY), system_user(ALICE)))
}

fn system_user(name: &'static str) -> User {
    let lookup = || nix::unistd::User::from_name(name).ok().flatten();
    // Another process may be adding users too: useradd then fails on the
    // lock or "already exists"; try again a bounded number of times.
    for _ in 0..50 {
        if let Some(user) = lookup() {
            return User {
                name,
                uid: user.uid.as_raw(),
                gid: user.gid.as_raw(),
            };
        }
        let _ = Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                name,
            ])
            .output();
        if lookup().is_none() {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    panic!("cannot create the test user {name} (are the tests running as root?)");
}

/// A temp dir every test user may enter, holding the users' socket dirs.
fn shared_base() -> tempfile::TempDir {
    let base = tempfile::tempdir().expect("tempdir");
    set_mode(base.path(), 0o755);
    base
}

/// `base/name`, owned by `user`, with `mode`.
fn dir_of(base: &Path, name: &str, user: User, mode: u32) -> PathBuf {
    let dir = base.join(name);
    std::fs::create_dir(&dir).expect("mkdir");
    std::os::unix::fs::chown(&dir, Some(user.uid), Some(user.gid)).expect("chown");
    set_mode(&dir, mode);
    dir
}

fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// A real lymphd running as `user` on `dir/lymphd.sock`, listening.
fn lymphd_as(user: User, dir: &Path, logs: &Path) -> (Proc, PathBuf) {
    let socket = dir.join("lymphd.sock");
    let mut cmd = Command::new(bin("lymphd"));
    cmd.env("LYMPHD_METRICS_LISTEN", "127.0.0.1:0");
    cmd.arg("--socket")
        .arg(&socket)
        .env("LYMPHD_LOG", "info")
        .current_dir(logs)
        .uid(user.uid)
        .gid(user.gid);
    let proc = Proc::spawn(&format!("lymphd-{}", user.name), cmd, logs);
    wait_until("lymphd to listen", STARTUP, || {
        std::os::unix::net::UnixStream::connect(&socket).is_ok()
    });
    (proc, socket)
}

/// `lymphctl --socket <socket> status`, as `user` (None: root), with `env`.
fn status(socket: &Path, user: Option<User>, env: &[(&str, String)]) -> Output {
    let mut cmd = Command::new(bin("lymphctl"));
    cmd.arg("--socket").arg(socket).arg("status");
    cmd.env_remove("LYMPH_DAEMON_USER");
    cmd.envs(env.iter().map(|(k, v)| (k, v)));
    if let Some(user) = user {
        cmd.uid(user.uid).gid(user.gid);
    }
    run_bounded(cmd, Duration::from_secs(30))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_refused(out: &Output, socket: &Path, parts: &[&str]) {
    let text = stderr(out);
    assert_eq!(out.status.code(), Some(1), "lymphctl must fail: {text}");
    let head = format!("refusing to attach to lymphd on {}:", socket.display());
    for part in std::iter::once(head.as_str()).chain(parts.iter().copied()) {
        assert!(text.contains(part), "{part:?} missing in: {text}");
    }
}

fn assert_attached(out: &Output) {
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "lymphctl status: {}", stderr(out));
    assert!(text.contains("identity:"), "{text}");
}

/// The testapp, as root, on `socket` with `env`.
fn testapp(name: &str, socket: &Path, env: &[(&str, String)], logs: &Path) -> Proc {
    let mut cmd = Command::new(bin("testapp"));
    cmd.env("LYMPH_SOCKET", socket)
        .env("RUST_LOG", "info")
        .env_remove("LYMPH_DAEMON_USER")
        .envs(env.iter().map(|(k, v)| (k, v)));
    Proc::spawn(name, cmd, logs)
}

#[test]
fn another_users_lymphd_is_refused_unless_named_as_the_daemon_user() {
    let (mallory, alice) = users();
    let base = shared_base();
    let evil = dir_of(base.path(), "evil", mallory, 0o755);
    let (_lymphd, socket) = lymphd_as(mallory, &evil, base.path());
    let owner = format!(
        "its directory {} (owner uid {} ({MALLORY}), mode 0755) belongs to another user",
        evil.display(),
        mallory.uid
    );
    let fix = format!("set LYMPH_DAEMON_USER={MALLORY}");

    // lymphctl, as a non-root victim and as root.
    let as_alice = status(&socket, Some(alice), &[]);
    let alice_is = format!("uid {} ({ALICE})", alice.uid);
    assert_refused(&as_alice, &socket, &[&owner, &alice_is, &fix]);
    assert_refused(&status(&socket, None, &[]), &socket, &[&owner, &fix]);

    // A Rust SDK app keeps refusing, at error level on every attempt.
    let app = testapp("testapp-refused", &socket, &[], base.path());
    wait_until("the app to refuse twice", Duration::from_secs(15), || {
        app.output_lines()
            .iter()
            .filter(|l| l.contains("ERROR") && l.contains(&owner) && l.contains(&fix))
            .count()
            >= 2
    });
    assert_eq!(app.lines_with("attached to lymphd"), 0);
    drop(app);

    // Named as the daemon user (by name or uid), the same daemon is trusted.
    let by_name = [("LYMPH_DAEMON_USER", MALLORY.to_owned())];
    // (As root: alice is not in the daemon's group, so the 0660 socket is closed to her.)
    assert_attached(&status(&socket, None, &by_name));
    assert_attached(&status(
        &socket,
        None,
        &[("LYMPH_DAEMON_USER", mallory.uid.to_string())],
    ));
    let app = testapp("testapp-trusting", &socket, &by_name, base.path());
    wait_until("the app to attach", STARTUP, || {
        app.lines_with("attached to lymphd") >= 1
    });
    // A name that resolves to no user trusts nobody, and says so.
    let typo = [("LYMPH_DAEMON_USER", "lymphtest-nobody".to_owned())];
    assert_refused(
        &status(&socket, None, &typo),
        &socket,
        &["LYMPH_DAEMON_USER=lymphtest-nobody names no user"],
    );
}

#[test]
fn a_non_root_user_attaches_to_their_own_lymphd() {
    let (_, alice) = users();
    let base = shared_base();
    let own = dir_of(base.path(), "alice", alice, 0o700);
    let (_lymphd, socket) = lymphd_as(alice, &own, base.path());
    assert_attached(&status(&socket, Some(alice), &[]));
}

#[test]
fn a_socket_served_by_another_uid_is_refused_by_its_peer_credentials() {
    let (mallory, _) = users();
    // An app attached to root's lymphd in root's private directory.
    let mut daemon = TestDaemon::start();
    let app = daemon.app("testapp", "testapp", &[]);
    wait_until("the app to attach", STARTUP, || {
        app.lines_with("attached to lymphd") >= 1
    });
    // The daemon dies; its socket is replaced by a hard link to mallory's
    // lymphd's, owned by root: directory and file pass, the server does not.
    let base = shared_base();
    let evil = dir_of(base.path(), "evil", mallory, 0o755);
    let (lymphd, evil_socket) = lymphd_as(mallory, &evil, base.path());
    daemon.proc.signal(nix::sys::signal::Signal::SIGKILL);
    daemon.proc.wait(Duration::from_secs(10));
    std::fs::remove_file(&daemon.socket).expect("remove the stale socket");
    std::fs::hard_link(&evil_socket, &daemon.socket).expect("link the socket");
    std::os::unix::fs::chown(&daemon.socket, Some(0), Some(0)).expect("chown the socket");
    let served_by = format!(
        "the process serving it (pid {}) runs as uid {} ({MALLORY}), but the socket belongs to uid 0 (root)",
        lymphd.pid(),
        mallory.uid
    );
    assert_refused(
        &status(&daemon.socket, None, &[]),
        &daemon.socket,
        &[&served_by],
    );
    // The app's reconnects are checked too.
    wait_until(
        "the app to refuse the new server",
        Duration::from_secs(15),
        || {
            app.output_lines()
                .iter()
                .any(|l| l.contains("ERROR") && l.contains(&served_by))
        },
    );
    assert_eq!(
        app.lines_with("attached to lymphd"),
        1,
        "attached once, to root's lymphd"
    );
}

#[test]
fn a_writable_root_directory_is_refused_until_it_is_fixed() {
    let daemon = TestDaemon::start();
    let dir = daemon.socket.parent().expect("socket dir").to_path_buf();
    assert_attached(&status(&daemon.socket, None, &[]));
    for mode in [0o777, 0o775] {
        set_mode(&dir, mode);
        let found =
            format!("(owner uid 0 (root), mode {mode:04o}) is writable by its group or others");
        let fix = format!("chmod go-w {}", dir.display());
        assert_refused(
            &status(&daemon.socket, None, &[]),
            &daemon.socket,
            &[&found, &fix],
        );
    }
    set_mode(&dir, 0o750);
    assert_attached(&status(&daemon.socket, None, &[]));
}
