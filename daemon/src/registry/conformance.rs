//! The conformance suite of `trait Registry`, run against every backend. Each
//! test takes a factory that opens a new session on one shared registry
//! (a new ZooKeeper client, or a new session on one embedded store). Tests wait
//! for results with a deadline and never assume a watch fires at once.
//!
//! Service names carry a random suffix so runs against a shared ZooKeeper do
//! not see each other.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::{Instance, Instances, Registry};

/// How long a suite test waits for the registry to show a change.
pub const SETTLE: Duration = Duration::from_secs(15);

/// An instance for tests.
pub fn instance(service: &str, id: &str, identity: &str) -> Instance {
    Instance {
        service: service.to_owned(),
        id: id.to_owned(),
        identity: identity.to_owned(),
        endpoint: "tcp://127.0.0.1:1".to_owned(),
        version: None,
        ip: Some("127.0.0.1".to_owned()),
        hostname: None,
        log_endpoint: None,
        app_name: Some("conformance".to_owned()),
    }
}

fn unique(name: &str) -> String {
    format!("{name}{}", &uuid::Uuid::new_v4().simple().to_string()[..8])
}

/// Waits until the watched list satisfies `pred`, or panics after `SETTLE`.
pub async fn wait_for(
    rx: &mut watch::Receiver<Instances>,
    what: &str,
    pred: impl Fn(&[Instance]) -> bool,
) {
    let waited = tokio::time::timeout(SETTLE, rx.wait_for(|list| pred(list)))
        .await
        .map(|r| r.is_ok());
    match waited {
        Ok(true) => {}
        Ok(false) => panic!("registry watch closed while waiting for {what}"),
        Err(_) => panic!(
            "registry did not show {what} within {SETTLE:?}; last seen: {:?}",
            rx.borrow()
        ),
    }
}

fn ids(list: &[Instance]) -> Vec<&str> {
    let mut ids: Vec<&str> = list.iter().map(|i| i.id.as_str()).collect();
    ids.sort_unstable();
    ids
}

pub async fn register_lookup_unregister(new_session: impl Fn() -> Arc<dyn Registry>) {
    let reg = new_session();
    let svc = unique("Conf");
    let mut rx = reg.watch(&svc).await.expect("watch");
    assert!(rx.borrow().is_empty(), "a new service has no instances");

    reg.register(instance(&svc, "a1", "ident-a"))
        .await
        .expect("register");
    wait_for(&mut rx, "the registered instance", |l| ids(l) == ["a1"]).await;
    let seen = rx.borrow().first().cloned().expect("one instance");
    assert_eq!(seen.identity, "ident-a");
    assert_eq!(seen.service, svc);
    assert!(reg.services().await.expect("services").contains(&svc));

    reg.unregister(&svc, "a1").await.expect("unregister");
    wait_for(&mut rx, "no instances", |l| l.is_empty()).await;
    assert!(!reg.services().await.expect("services").contains(&svc));
    reg.unregister(&svc, "a1")
        .await
        .expect("unregistering twice is fine");
    reg.close().await;
}

pub async fn sessions_see_each_other(new_session: impl Fn() -> Arc<dyn Registry>) {
    let (one, two) = (new_session(), new_session());
    let svc = unique("Pair");
    one.register(instance(&svc, "p1", "ident-1"))
        .await
        .expect("register 1");
    two.register(instance(&svc, "p2", "ident-2"))
        .await
        .expect("register 2");
    let mut from_one = one.watch(&svc).await.expect("watch");
    let mut from_two = two.watch(&svc).await.expect("watch");
    wait_for(&mut from_one, "both instances", |l| ids(l) == ["p1", "p2"]).await;
    wait_for(&mut from_two, "both instances", |l| ids(l) == ["p1", "p2"]).await;
    one.close().await;
    two.close().await;
}

pub async fn closed_session_loses_its_instances(new_session: impl Fn() -> Arc<dyn Registry>) {
    let (observer, doomed) = (new_session(), new_session());
    let svc = unique("Gone");
    doomed
        .register(instance(&svc, "g1", "ident-g"))
        .await
        .expect("register");
    observer
        .register(instance(&svc, "o1", "ident-o"))
        .await
        .expect("register");
    let mut rx = observer.watch(&svc).await.expect("watch");
    wait_for(&mut rx, "both instances", |l| l.len() == 2).await;

    doomed.close().await;
    wait_for(&mut rx, "only the surviving session's instance", |l| {
        ids(l) == ["o1"]
    })
    .await;
    assert!(
        doomed
            .register(instance(&svc, "g2", "ident-g"))
            .await
            .is_err(),
        "a closed session refuses to register"
    );
    observer.close().await;
}

pub async fn watch_follows_changes(new_session: impl Fn() -> Arc<dyn Registry>) {
    let (watcher, writer) = (new_session(), new_session());
    let svc = unique("Watch");
    // Watch before the service exists: later registrations must still show up.
    let mut rx = watcher.watch(&svc).await.expect("watch");
    for n in 0..5 {
        writer
            .register(instance(&svc, &format!("w{n}"), &format!("ident-{n}")))
            .await
            .expect("register");
    }
    wait_for(&mut rx, "five instances", |l| l.len() == 5).await;
    writer.unregister(&svc, "w2").await.expect("unregister");
    wait_for(&mut rx, "four instances without w2", |l| {
        l.len() == 4 && !l.iter().any(|i| i.id == "w2")
    })
    .await;
    writer.close().await;
    wait_for(&mut rx, "no instances after the writer closed", |l| {
        l.is_empty()
    })
    .await;
    watcher.close().await;
}

pub async fn reregister_replaces(new_session: impl Fn() -> Arc<dyn Registry>) {
    let reg = new_session();
    let svc = unique("Again");
    let mut rx = reg.watch(&svc).await.expect("watch");
    reg.register(instance(&svc, "r1", "old"))
        .await
        .expect("register");
    let mut newer = instance(&svc, "r1", "new");
    newer.version = Some("1.2.0".to_owned());
    reg.register(newer).await.expect("register again");
    wait_for(&mut rx, "the replaced instance", |l| {
        l.len() == 1 && l[0].identity == "new" && l[0].version.as_deref() == Some("1.2.0")
    })
    .await;
    reg.close().await;
}
