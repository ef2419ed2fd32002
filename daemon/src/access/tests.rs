//! Tests of the access rules and of reading a peer's groups, without IO.

use super::cred::groups_from_status;
use super::*;

fn peer(uid: u32, gid: u32, groups: &[u32]) -> PeerCred {
    PeerCred {
        uid,
        gid,
        pid: Some(4242),
        groups: groups.into(),
    }
}

fn apps(uids: &[u32], gids: &[u32]) -> AppsConfig {
    AppsConfig {
        allowed_uids: uids.to_vec(),
        allowed_gids: gids.to_vec(),
        ..AppsConfig::default()
    }
}

#[test]
fn empty_lists_admit_anyone_even_unknown() {
    assert_eq!(
        allowed(&apps(&[], &[]), Some(&peer(1002, 1002, &[]))),
        Ok(())
    );
    assert_eq!(allowed(&apps(&[], &[]), None), Ok(()));
}

#[test]
fn a_listed_uid_or_group_passes_and_nobody_else_not_even_root() {
    let rules = apps(&[1001], &[2000]);
    assert_eq!(allowed(&rules, Some(&peer(1001, 1001, &[]))), Ok(()));
    assert_eq!(
        allowed(&rules, Some(&peer(1003, 2000, &[]))),
        Ok(()),
        "primary group"
    );
    assert_eq!(
        allowed(&rules, Some(&peer(1003, 1003, &[27, 2000]))),
        Ok(()),
        "supplementary group"
    );
    let err = allowed(&rules, Some(&peer(0, 0, &[]))).expect_err("root is not implicit");
    assert_eq!(
        err.to_string(),
        "permission denied: uid 0 (gid 0, pid 4242) may not use this lymphd: \
         apps.allowed_uids is [1001] and apps.allowed_gids is [2000]"
    );
    assert!(matches!(allowed(&rules, None), Err(Denied::Unknown { .. })));
}

#[test]
fn a_named_service_is_served_only_by_its_uids_and_groups() {
    let services = BTreeMap::from([(
        "Echo".to_owned(),
        ServiceAccess {
            uids: vec![1001],
            gids: vec![3000],
        },
    )]);
    let owner = peer(1001, 1001, &[]);
    let member = peer(1005, 1005, &[3000]);
    let rogue = peer(1002, 1002, &[]);
    assert_eq!(
        may_serve(&services, Some(&owner), ["Echo", "Other"]),
        Ok(())
    );
    assert_eq!(may_serve(&services, Some(&member), ["Echo"]), Ok(()));
    assert_eq!(
        may_serve(&services, Some(&rogue), ["Other"]),
        Ok(()),
        "a name not under services: is anyone's"
    );
    let err = may_serve(&services, Some(&rogue), ["Other", "Echo"]).expect_err("rogue");
    assert_eq!(
        err.to_string(),
        "permission denied: uid 1002 (gid 1002, pid 4242) may not serve Echo: \
         services.Echo allows uids [1001] and gids [3000]"
    );
    assert!(matches!(
        may_serve(&services, None, ["Echo"]),
        Err(Denied::Unknown { .. })
    ));
}

#[test]
fn an_app_must_pass_both_rules() {
    let mut config = crate::Config::default();
    config.apps.allowed_uids = vec![1001, 1002];
    config.services.insert(
        "Echo".to_owned(),
        ServiceAccess {
            uids: vec![1001],
            gids: vec![],
        },
    );
    assert_eq!(
        admit_app(&config, Some(&peer(1001, 1, &[])), ["Echo"]),
        Ok(())
    );
    assert!(matches!(
        admit_app(&config, Some(&peer(1002, 1, &[])), ["Echo"]),
        Err(Denied::MayNotServe { .. })
    ));
    assert!(matches!(
        admit_app(&config, Some(&peer(1003, 1, &[])), []),
        Err(Denied::NotAllowed { .. })
    ));
}

const STATUS: &str = "Name:\tpython3\nUmask:\t0022\nState:\tS (sleeping)\nPid:\t4242\n\
    Uid:\t1002\t1001\t1001\t1001\nGid:\t1002\t1003\t1003\t1003\nFDSize:\t64\n\
    Groups:\t27 3000 \nNStgid:\t4242\n";

#[test]
fn groups_are_read_while_the_pid_is_still_the_peer() {
    assert_eq!(groups_from_status(STATUS, 1001, 1003), Some(vec![27, 3000]));
    assert_eq!(
        groups_from_status(STATUS, 1002, 1003),
        None,
        "the effective uid is compared: another process holds the pid now"
    );
    assert_eq!(groups_from_status(STATUS, 1001, 1002), None, "nor the gid");
    let no_groups = STATUS.replace("Groups:\t27 3000 \n", "Groups:\t\n");
    assert_eq!(groups_from_status(&no_groups, 1001, 1003), Some(vec![]));
    assert_eq!(groups_from_status("garbage", 1001, 1003), None);
    let bad = STATUS.replace("27 3000", "27 x");
    assert_eq!(groups_from_status(&bad, 1001, 1003), None);
}
