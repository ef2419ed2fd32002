//! The ZooKeeper registry against the real ZooKeeper on 127.0.0.1:2181 (start
//! it with `scripts/services`): the registry conformance suite, interop with
//! nodes in Python lymph's exact JSON, session expiry and re-registration,
//! empty parents, an unreachable server. Each test has a chroot of its own.
//! These tests fail (never skip) when ZooKeeper is down.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use integration_tests::names::unique;
use integration_tests::services::ZOOKEEPER as ZK;
use lymphd::conformance::registry::{
    Instance, Registry, RegistryError, ZookeeperConfig, ZookeeperRegistry, conformance,
};
use zookeeper_client as zk;

use crate::harness::require_zookeeper;

mod proxy;

use proxy::Proxy;

/// Every await in these tests is bounded by this.
const STEP: Duration = Duration::from_secs(20);

/// Captured from py2 lymph 0.15 (`docs/wire.md` §7.3), byte for byte.
const PY2_NODE: &str = r#"{"endpoint": "tcp://127.0.0.1:53326", "ip": "127.0.0.1", "hostname": "vm", "fqdn": "localhost", "backdoor_endpoint": null, "log_endpoint": "tcp://127.0.0.1:39011", "version": null, "monitoring_endpoint": "tcp://127.0.0.1:42699", "type": false, "id": "ae0117fda6928bd66de76968251eb8e3", "identity": "04def9148aa5a14b2cb198f82244f1c5"}"#;
const PY2_ID: &str = "ae0117fda6928bd66de76968251eb8e3";

async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(STEP, fut)
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish within {STEP:?}"))
}

/// A chroot of its own: `127.0.0.1:2181/lymphd-test-<hex>`.
fn test_root() -> String {
    unique("/lymphd-test-")
}

fn config(root: &str) -> ZookeeperConfig {
    ZookeeperConfig {
        hosts: format!("{ZK}{root}"),
        // The server's minimum (2 × tickTime): expiry tests stay short.
        session_timeout: Duration::from_secs(4),
        connect_timeout: Duration::from_secs(5),
    }
}

async fn open(root: &str) -> ZookeeperRegistry {
    require_zookeeper();
    within("connect", ZookeeperRegistry::connect(config(root)))
        .await
        .unwrap_or_else(|e| panic!("cannot connect to zookeeper ({e}): run scripts/services first"))
}

/// A plain client without chroot, standing in for Python lymph and for checks.
async fn raw() -> zk::Client {
    require_zookeeper();
    let connect = zk::Client::connector()
        .with_session_timeout(Duration::from_secs(4))
        .connect(ZK);
    within("raw connect", connect)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to zookeeper ({e}): run scripts/services first"))
}

/// Removes a test's chroot, depth first (best effort).
async fn remove_tree(client: &zk::Client, root: &str) {
    let mut stack = vec![root.to_owned()];
    let mut order = Vec::new();
    while let Some(path) = stack.pop() {
        if let Ok(Ok(children)) = tokio::time::timeout(STEP, client.list_children(&path)).await {
            stack.extend(children.iter().map(|c| format!("{path}/{c}")));
        }
        order.push(path);
    }
    for path in order.iter().rev() {
        let _ = tokio::time::timeout(STEP, client.delete(path, None)).await;
    }
}

/// Runs a conformance function with a factory opening a new session per call.
async fn run_conformance<F, Fut>(suite: F)
where
    F: FnOnce(Box<dyn Fn() -> Arc<dyn Registry>>) -> Fut,
    Fut: Future<Output = ()>,
{
    require_zookeeper();
    let root = test_root();
    let factory_root = root.clone();
    let factory = Box::new(move || {
        let connect = ZookeeperRegistry::connect(config(&factory_root));
        // The suite's factory is synchronous; the multi-thread runtime lets it block.
        let registry = tokio::task::block_in_place(|| {
            tokio::runtime::Handle::current().block_on(tokio::time::timeout(STEP, connect))
        });
        match registry {
            Ok(Ok(registry)) => Arc::new(registry) as Arc<dyn Registry>,
            Ok(Err(e)) => panic!("cannot connect to zookeeper ({e}): run scripts/services first"),
            Err(_) => panic!("connecting to zookeeper took over {STEP:?}: run scripts/services"),
        }
    });
    tokio::time::timeout(Duration::from_secs(90), suite(factory))
        .await
        .expect("the conformance test finished in time");
    remove_tree(&raw().await, &root).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_register_lookup_unregister() {
    run_conformance(conformance::register_lookup_unregister).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_sessions_see_each_other() {
    run_conformance(conformance::sessions_see_each_other).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_closed_session_loses_its_instances() {
    run_conformance(conformance::closed_session_loses_its_instances).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_watch_follows_changes() {
    run_conformance(conformance::watch_follows_changes).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_reregister_replaces() {
    run_conformance(conformance::reregister_replaces).await;
}

const PERSISTENT: zk::CreateOptions<'static> =
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
const EPHEMERAL: zk::CreateOptions<'static> =
    zk::CreateMode::Ephemeral.with_acls(zk::Acls::anyone_all());

fn instance(service: &str, id: &str, version: Option<&str>) -> Instance {
    let mut instance = conformance::instance(service, id, &format!("identity-of-{id}"));
    instance.version = version.map(str::to_owned);
    instance.hostname = Some("testhost".to_owned());
    instance
}

/// Polls `check` every 50 ms until it returns true, or panics after `STEP`.
async fn eventually<F, Fut>(what: &str, check: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + STEP;
    while !within(what, check()).await {
        assert!(Instant::now() < deadline, "{what}: not within {STEP:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_nodes_written_by_python_lymph() {
    let root = test_root();
    let python = raw().await;
    let parent = format!("{root}/services/Greeting");
    within("mkdir", python.mkdir(&parent, &PERSISTENT))
        .await
        .expect("makepath");
    within(
        "create",
        python.create(
            &format!("{parent}/{PY2_ID}"),
            PY2_NODE.as_bytes(),
            &EPHEMERAL,
        ),
    )
    .await
    .expect("python's node");
    // A broken neighbour is skipped, never the whole list.
    within(
        "create",
        python.create(&format!("{parent}/broken"), b"{not json", &EPHEMERAL),
    )
    .await
    .expect("broken node");

    let registry = open(&root).await;
    let rx = within("watch", registry.watch("Greeting"))
        .await
        .expect("watch");
    let list = rx.borrow().clone();
    assert_eq!(list.len(), 1, "only the readable node: {list:?}");
    let got = &list[0];
    assert_eq!(got.service, "Greeting");
    assert_eq!(got.id, PY2_ID);
    assert_eq!(got.identity, "04def9148aa5a14b2cb198f82244f1c5");
    assert_eq!(got.endpoint, "tcp://127.0.0.1:53326");
    assert_eq!(got.version, None);
    assert_eq!(got.log_endpoint.as_deref(), Some("tcp://127.0.0.1:39011"));
    assert_eq!(got.hostname.as_deref(), Some("vm"));
    let services = within("services", registry.services())
        .await
        .expect("services");
    assert_eq!(services, ["Greeting"]);

    // Python's instance stops: its session ends and the cache follows.
    let mut rx = rx;
    drop(python);
    conformance::wait_for(&mut rx, "python's instance gone", |l| l.is_empty()).await;
    within("close", registry.close()).await;
    remove_tree(&raw().await, &root).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_what_python_lymph_reads() {
    let root = test_root();
    let registry = open(&root).await;
    let checker = raw().await;
    within(
        "register",
        registry.register(instance("Greeting", "v1", Some("1.2.0"))),
    )
    .await
    .expect("register versioned");
    within(
        "register",
        registry.register(instance("Greeting", "v0", None)),
    )
    .await
    .expect("register unversioned");

    for (id, version) in [
        ("v1", serde_json::json!("1.2.0")),
        ("v0", serde_json::Value::Null),
    ] {
        let path = format!("{root}/services/Greeting/{id}");
        let (data, stat) = within("get", checker.get_data(&path))
            .await
            .expect("our node");
        let json: serde_json::Value = serde_json::from_slice(&data).expect("utf-8 json");
        for key in [
            "endpoint",
            "identity",
            "id",
            "version",
            "ip",
            "hostname",
            "fqdn",
            "log_endpoint",
            "monitoring_endpoint",
            "backdoor_endpoint",
            "type",
            "app_name",
        ] {
            assert!(json.get(key).is_some(), "{id}: key {key} missing in {json}");
        }
        assert_eq!(json["id"], id);
        assert_eq!(json["version"], version);
        assert_eq!(json["type"], false);
        assert_eq!(json["endpoint"], "tcp://127.0.0.1:1");
        assert_ne!(stat.ephemeral_owner, 0, "instance nodes are ephemeral");
        let (acl, _) = within("acl", checker.get_acl(&path)).await.expect("acl");
        assert_eq!(acl.len(), 1);
        assert_eq!((acl[0].scheme(), acl[0].id()), ("world", "anyone"));
    }
    for parent in [
        root.clone(),
        format!("{root}/services"),
        format!("{root}/services/Greeting"),
    ] {
        let (data, stat) = within("get", checker.get_data(&parent))
            .await
            .expect("parent");
        assert!(data.is_empty(), "{parent} has empty data");
        assert_eq!(stat.ephemeral_owner, 0, "{parent} is persistent");
    }
    let refused = within(
        "register",
        registry.register(instance("Greeting", "bad", Some("1.0"))),
    )
    .await;
    let Err(RegistryError::Backend(reason)) = refused else {
        panic!("a non-semver version must be refused: {refused:?}");
    };
    assert!(reason.contains("semver"), "{reason}");
    within("close", registry.close()).await;
    remove_tree(&checker, &root).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn services_hides_empty_parents() {
    let root = test_root();
    let registry = open(&root).await;
    let checker = raw().await;
    within(
        "mkdir",
        checker.mkdir(&format!("{root}/services/Gone"), &PERSISTENT),
    )
    .await
    .expect("an empty parent, as lymph leaves them");
    within("register", registry.register(instance("Live", "l1", None)))
        .await
        .expect("register");
    let services = within("services", registry.services())
        .await
        .expect("services");
    assert_eq!(services, ["Live"]);
    within("unregister", registry.unregister("Live", "l1"))
        .await
        .expect("unregister");
    let services = within("services", registry.services())
        .await
        .expect("services");
    assert!(services.is_empty(), "{services:?}");
    within("close", registry.close()).await;
    remove_tree(&checker, &root).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn close_removes_nodes_at_once_and_refuses_calls() {
    let root = test_root();
    let registry = open(&root).await;
    let checker = raw().await;
    within("register", registry.register(instance("Bye", "b1", None)))
        .await
        .expect("register");
    let path = format!("{root}/services/Bye/b1");
    assert!(
        within("stat", checker.check_stat(&path))
            .await
            .expect("stat")
            .is_some()
    );
    let started = Instant::now();
    within("close", registry.close()).await;
    let gone = within("stat", checker.check_stat(&path))
        .await
        .expect("stat");
    assert!(
        gone.is_none(),
        "the node vanishes with the session, not after its timeout"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "close took {:?}",
        started.elapsed()
    );
    assert!(matches!(
        registry.register(instance("Bye", "b2", None)).await,
        Err(RegistryError::Closed)
    ));
    assert!(matches!(
        registry.watch("Bye").await,
        Err(RegistryError::Closed)
    ));
    assert!(matches!(
        registry.services().await,
        Err(RegistryError::Closed)
    ));

    // Dropping a registry without close ends its session too.
    let dropped = open(&root).await;
    within("register", dropped.register(instance("Bye", "b3", None)))
        .await
        .expect("register");
    drop(dropped);
    let path = format!("{root}/services/Bye/b3");
    eventually("the dropped registry's node to vanish", || async {
        checker
            .check_stat(&path)
            .await
            .map(|s| s.is_none())
            .unwrap_or(false)
    })
    .await;
    remove_tree(&checker, &root).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_expiry_reregisters_and_rearms_watches() {
    let root = test_root();
    // The registry reaches ZooKeeper through a proxy the test can cut, so its
    // client cannot win the session back while another connection closes it.
    let proxy = Proxy::start().await;
    let mut via_proxy = config(&root);
    via_proxy.hosts = format!("127.0.0.1:{}{root}", proxy.port);
    let registry = within("connect", ZookeeperRegistry::connect(via_proxy))
        .await
        .expect("connect through the proxy");
    let other = open(&root).await;
    let checker = raw().await;
    within(
        "register",
        registry.register(instance("Phoenix", "p1", None)),
    )
    .await
    .expect("register");
    let mut rx = within("watch", registry.watch("Phoenix"))
        .await
        .expect("watch");
    conformance::wait_for(&mut rx, "p1", |l| l.len() == 1).await;
    let old = registry.current_session().expect("a session");
    let path = format!("{root}/services/Phoenix/p1");

    // Expire it: cut the registry off, attach a second connection to the same
    // session (id and password) and close it; the server ends the session.
    proxy.cut();
    let thief = zk::Client::connector()
        .with_session(old.clone())
        .with_session_timeout(Duration::from_secs(4))
        .connect(ZK);
    let thief = within("attach to the session", thief)
        .await
        .expect("same session");
    assert_eq!(thief.session_id(), old.id());
    drop(thief);
    eventually("p1 gone with the expired session", || async {
        matches!(checker.check_stat(&path).await, Ok(None))
    })
    .await;
    proxy.restore();

    eventually("a new session", || async {
        registry
            .current_session()
            .is_some_and(|s| s.id() != old.id())
    })
    .await;
    let new_id = registry.current_session().expect("a session").id();
    eventually("p1 re-registered in the new session", || async {
        matches!(checker.get_data(&path).await, Ok((_, stat)) if stat.ephemeral_owner == new_id.0)
    })
    .await;
    // The keeper watches its nodes in the new session too: deleted by
    // someone else, p1 comes back.
    within("delete", checker.delete(&path, None))
        .await
        .expect("delete p1 from outside");
    eventually("p1 re-created after its deletion", || async {
        matches!(checker.get_data(&path).await, Ok((_, stat)) if stat.ephemeral_owner == new_id.0)
    })
    .await;
    // The cache's watches were re-armed on the new session.
    within("register", other.register(instance("Phoenix", "p2", None)))
        .await
        .expect("register");
    conformance::wait_for(&mut rx, "p1 and p2 after the expiry", |l| l.len() == 2).await;
    within("unregister", other.unregister("Phoenix", "p2"))
        .await
        .expect("unregister");
    conformance::wait_for(&mut rx, "p1 alone", |l| l.len() == 1 && l[0].id == "p1").await;

    within("close", registry.close()).await;
    within("close", other.close()).await;
    remove_tree(&checker, &root).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_zookeeper_fails_clearly_within_the_connect_timeout() {
    // A port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let config = ZookeeperConfig {
        hosts: format!("127.0.0.1:{port}"),
        session_timeout: Duration::from_secs(4),
        connect_timeout: Duration::from_secs(1),
    };
    let started = Instant::now();
    let result = within("connect", ZookeeperRegistry::connect(config)).await;
    let Err(RegistryError::Backend(reason)) = result else {
        panic!("connecting to a closed port must fail");
    };
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    assert!(
        reason.contains(&format!("127.0.0.1:{port}")),
        "names the hosts: {reason}"
    );
    assert!(reason.contains("cannot reach zookeeper"), "{reason}");

    let bad = ZookeeperConfig::new("/only-a-chroot");
    let result = within("connect", ZookeeperRegistry::connect_with_retry(bad)).await;
    assert!(
        result.is_err(),
        "a bad connect string fails at once, without retrying"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connect_with_retry_waits_for_zookeeper_to_come_up() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let root = test_root();
    let mut config = config(&root);
    config.hosts = format!("127.0.0.1:{port}{root}");
    config.connect_timeout = Duration::from_millis(500);
    let connecting = tokio::spawn(ZookeeperRegistry::connect_with_retry(config));
    // ZooKeeper "comes up" on that port a little later.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert!(
        !connecting.is_finished(),
        "nothing answers yet: still retrying"
    );
    let _proxy = Proxy::start_on(port).await;
    let registry = within("connect with retry", connecting)
        .await
        .expect("the task")
        .expect("connected once zookeeper answers");
    within("register", registry.register(instance("Late", "l1", None)))
        .await
        .expect("register");
    within("close", registry.close()).await;
    remove_tree(&raw().await, &root).await;
}
