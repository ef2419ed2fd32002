//! `lymphctl` against a daemon with two Greeting instances: what a user sees.

use crate::harness::{TestDaemon, text};

async fn daemon_with_two_greetings() -> (TestDaemon, Vec<crate::harness::Proc>) {
    let daemon = TestDaemon::start();
    let apps = vec![
        daemon.app("greeting-1", "greeting", &["--config", "conf/greeting.yml"]),
        daemon.app("greeting-2", "greeting", &["--config", "conf/greeting.yml"]),
    ];
    daemon.wait_for_instances("Greeting", 2).await;
    (daemon, apps)
}

#[tokio::test]
async fn discover_counts_instances_and_daemons() {
    let (daemon, _apps) = daemon_with_two_greetings().await;
    let out = daemon.ctl(&["discover"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "Greeting [2]\nlymph [1]\n");
}

#[tokio::test]
async fn inspect_shows_methods_params_and_help() {
    let (daemon, _apps) = daemon_with_two_greetings().await;
    let out = daemon.ctl(&["inspect", "Greeting"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(
        stdout.starts_with("RPC interface of Greeting\n\n"),
        "{stdout}"
    );
    let greet = stdout
        .find("rpc Greeting.greet(name)\n")
        .expect("greet listed");
    let help = &stdout[greet..];
    assert!(
        help.lines()
            .nth(1)
            .is_some_and(|l| l.starts_with("         ") && !l.trim().is_empty()),
        "help text under greet: {stdout}"
    );
    for builtin in [
        "rpc lymph.get_metrics()",
        "rpc lymph.inspect()",
        "rpc lymph.ping(payload)",
        "rpc lymph.status()",
    ] {
        assert!(stdout.contains(builtin), "{builtin} in {stdout}");
    }
}

#[tokio::test]
async fn request_prints_the_reply_as_json() {
    let (daemon, _apps) = daemon_with_two_greetings().await;
    let out = daemon.ctl(&["request", "Greeting.greet", r#"{"name": "Joe"}"#]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "\"Hi, Joe!\"\n");

    let out = daemon.ctl(&["request", "-D", "Greeting.greet", r#"{"name": "Ann"}"#]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("trace_id: "), "{stdout}");
    assert!(stdout.ends_with("\"Hi, Ann!\"\n"), "{stdout}");
}

#[tokio::test]
async fn request_errors_are_one_line_and_distinct() {
    let (daemon, _apps) = daemon_with_two_greetings().await;
    let cases = [
        (vec!["request", "Greeting.nope", "{}"], "unknown method"),
        (vec!["request", "Nobody.greet", "{}"], "unknown service"),
        (
            vec!["request", "Greeting.greet", r#"{"nom": "x"}"#],
            "bad request",
        ),
        (vec!["request", "Greeting.greet", "[1]"], "JSON object"),
        (vec!["request", "Greeting.greet", "{not json"], "JSON"),
    ];
    for (args, expected) in cases {
        let out = daemon.ctl(&args);
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    }
    // The daemon kept serving through all of that.
    let out = daemon.ctl(&["request", "Greeting.greet", r#"{"name": "Joe"}"#]);
    assert!(out.status.success(), "{}", text(&out.stderr));
}

#[tokio::test]
async fn load_generator_reports_rate_and_latency() {
    let (daemon, _apps) = daemon_with_two_greetings().await;
    let out = daemon.ctl(&["request", "-N", "200", "-C", "8", "lymph.ping", "{}"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("requests/s"), "{stdout}");
    assert!(stdout.contains("p99"), "{stdout}");
    assert!(stdout.contains("errors: 0"), "{stdout}");
}

#[tokio::test]
async fn status_and_list() {
    let (daemon, _apps) = daemon_with_two_greetings().await;
    let out = daemon.ctl(&["status"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("embedded"), "{stdout}");
    assert_eq!(stdout.matches("Greeting").count(), 2, "{stdout}");

    let out = daemon.ctl(&["list"]);
    assert!(out.status.success());
    let stdout = text(&out.stdout);
    for command in ["discover", "inspect", "request", "status", "help"] {
        assert!(
            stdout.lines().any(|l| l.starts_with(command)),
            "{command} in {stdout}"
        );
    }
}
