//! The trust rules on made-up facts, without IO.

use super::*;

const ALICE: u32 = 1000;
const MALLORY: u32 = 1001;
const LYMPH: u32 = 999;

fn name_of(uid: u32) -> Option<String> {
    match uid {
        0 => Some("root".into()),
        ALICE => Some("alice".into()),
        MALLORY => Some("mallory".into()),
        LYMPH => Some("lymph".into()),
        _ => None,
    }
}

fn alice(daemon_user: Option<(&str, Option<u32>)>) -> Trusted {
    Trusted {
        own: ALICE,
        daemon_user: daemon_user.map(|(name, uid)| (name.to_owned(), uid)),
    }
}

fn dir(owner: u32, mode: u32, trusted: &Trusted) -> Result<(), Untrusted> {
    let socket = Path::new("/tmp/lymph-1000/lymphd.sock");
    let dir = Path::new("/tmp/lymph-1000");
    check_dir(socket, dir, (owner, 0o40000 | mode), trusted, &name_of)
}

#[test]
fn own_root_and_daemon_user_directories_are_trusted() {
    assert_eq!(dir(ALICE, 0o700, &alice(None)), Ok(()));
    assert_eq!(dir(0, 0o755, &alice(None)), Ok(()));
    // The systemd unit's /run/lymph: lymph:lymph 0750, group-readable only.
    let daemon_user = alice(Some(("lymph", Some(LYMPH))));
    assert_eq!(dir(LYMPH, 0o750, &daemon_user), Ok(()));
}

#[test]
fn another_users_directory_is_refused_naming_owners_and_the_fix() {
    let refused = dir(MALLORY, 0o755, &alice(None)).expect_err("mallory's");
    let text = refused.to_string();
    assert!(
        text.starts_with("refusing to attach to lymphd on /tmp/lymph-1000/lymphd.sock:"),
        "{text}"
    );
    for part in [
        "its directory /tmp/lymph-1000 (owner uid 1001 (mallory), mode 0755)",
        "this process's uid 1000 (alice)",
        "LYMPH_DAEMON_USER is not set",
        "set LYMPH_DAEMON_USER=mallory",
        "remove /tmp/lymph-1000",
    ] {
        assert!(text.contains(part), "{part:?} in {text}");
    }
    // The daemon user admits only its own uid, and a name that resolves to none admits nobody.
    let lymph = alice(Some(("lymph", Some(LYMPH))));
    assert!(dir(MALLORY, 0o700, &lymph).is_err());
    let unknown = dir(LYMPH, 0o700, &alice(Some(("lymhp", None)))).expect_err("unknown name");
    assert!(
        unknown
            .to_string()
            .contains("LYMPH_DAEMON_USER=lymhp names no user"),
        "{unknown}"
    );
}

#[test]
fn group_or_other_writable_directories_are_refused_even_roots() {
    for mode in [0o777, 0o1777, 0o770, 0o702] {
        let refused = dir(0, mode, &alice(None)).expect_err("writable");
        let text = refused.to_string();
        assert!(text.contains("writable by its group or others"), "{text}");
        assert!(text.contains("chmod go-w /tmp/lymph-1000"), "{text}");
        assert!(text.contains(&format!("mode {mode:04o}")), "{text}");
    }
}

#[test]
fn the_socket_belongs_to_its_directorys_owner_or_root() {
    let socket = Path::new("/run/lymph/lymphd.sock");
    assert_eq!(check_socket(socket, LYMPH, LYMPH, &name_of), Ok(()));
    assert_eq!(check_socket(socket, ALICE, 0, &name_of), Ok(()));
    let refused = check_socket(socket, ALICE, MALLORY, &name_of).expect_err("mallory's");
    let text = refused.to_string();
    assert!(
        text.contains("the socket belongs to uid 1001 (mallory)"),
        "{text}"
    );
    assert!(text.contains("its directory to uid 1000 (alice)"), "{text}");
    assert!(text.contains("remove /run/lymph/lymphd.sock"), "{text}");
}

#[test]
fn the_server_runs_as_the_sockets_owner_or_root() {
    let socket = Path::new("/run/lymph/lymphd.sock");
    assert_eq!(
        check_peer(socket, LYMPH, (LYMPH, Some(7)), &name_of),
        Ok(())
    );
    assert_eq!(check_peer(socket, LYMPH, (0, Some(7)), &name_of), Ok(()));
    let refused = check_peer(socket, ALICE, (4242, Some(77)), &name_of).expect_err("not alice");
    let text = refused.to_string();
    assert!(
        text.contains("the process serving it (pid 77) runs as uid 4242,"),
        "{text}"
    );
    assert!(
        text.contains("the socket belongs to uid 1000 (alice)"),
        "{text}"
    );
    assert!(text.contains("stop pid 77"), "{text}");
}

#[test]
fn numeric_daemon_users_are_uids() {
    assert_eq!(resolve_user("4321"), Some(4321));
}
