//! Unit tests of node file parsing: no IO.

use super::*;

const SEED: &str = "\
instances:
    web:
        command: target/release/web --config conf/web.yml
        numprocesses: 2
    greeting:
        command: target/release/greeting --config conf/greeting.yml
        numprocesses: 3
    listen:
        command: target/release/listen --config conf/listen.yml
        numprocesses: 4

sockets:
    - host: 127.0.0.1
      port: 4080
";

#[test]
fn seed_shape_gives_named_processes_anchored_at_the_file() {
    let node = parse(SEED, Path::new("/repo")).expect("seed parses");
    let names: Vec<&str> = node.processes.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "greeting.1",
            "greeting.2",
            "greeting.3",
            "listen.1",
            "listen.2",
            "listen.3",
            "listen.4",
            "web.1",
            "web.2"
        ]
    );
    assert_eq!(
        node.processes[0],
        Process {
            name: "greeting.1".to_owned(),
            program: PathBuf::from("/repo/target/release/greeting"),
            args: vec!["--config".to_owned(), "conf/greeting.yml".to_owned()],
            env: Vec::new(),
            command_key: "instances.greeting.command".to_owned(),
        }
    );
    assert_eq!(node.ignored_sockets, 1);
    assert!(node.lymphd.is_none());
}

#[test]
fn commands_split_like_a_shell_and_bare_names_use_path() {
    let text = "instances:\n  r:\n    command: redis-server --save '' \"a b\"\n\
                lymphd:\n  command: target/debug/lymphd\n  args: [--log, debug]\n";
    let node = parse(text, Path::new("/d")).expect("parses");
    assert_eq!(node.processes[0].program, PathBuf::from("redis-server"));
    assert_eq!(node.processes[0].args, ["--save", "", "a b"]);
    assert_eq!(node.processes[0].name, "r.1");
    let lymphd = node.lymphd.expect("lymphd given");
    assert_eq!(lymphd.program, PathBuf::from("/d/target/debug/lymphd"));
    assert_eq!(lymphd.args, ["--log", "debug"]);
}

#[test]
fn unknown_key_is_named() {
    let err = parse(
        "instances:\n  a:\n    command: x\n    numprocs: 2\n",
        Path::new("/"),
    )
    .expect_err("unknown key");
    assert!(err.contains("numprocs"), "{err}");
    let err = parse("instance:\n  a:\n    command: x\n", Path::new("/")).expect_err("typo");
    assert!(err.contains("instance"), "{err}");
}

#[test]
fn bad_yaml_is_one_line() {
    let err = parse("instances: [oops\n", Path::new("/")).expect_err("bad yaml");
    assert!(!err.is_empty() && !err.contains('\n'), "{err}");
}

#[test]
fn zero_processes_empty_commands_and_no_instances_are_refused() {
    let err = parse(
        "instances:\n  a:\n    command: x\n    numprocesses: 0\n",
        Path::new("/"),
    )
    .expect_err("zero");
    assert_eq!(err, "instances.a.numprocesses must be at least 1");
    let err = parse("instances:\n  a:\n    command: ''\n", Path::new("/")).expect_err("empty");
    assert!(err.contains("instances.a.command"), "{err}");
    let err = parse("sockets: []\n", Path::new("/")).expect_err("nothing to run");
    assert!(err.contains("no instances"), "{err}");
}

#[test]
fn find_walks_up_to_the_nearest_file() {
    let root = tempfile::tempdir().expect("tempdir");
    let deep = root.path().join("a/b");
    std::fs::create_dir_all(&deep).expect("mkdir");
    std::fs::write(root.path().join(FILE_NAME), "x").expect("write");
    assert_eq!(find(&deep).expect("found"), root.path().join(FILE_NAME));
}

#[test]
fn the_repository_node_file_parses() {
    let text = include_str!("../../../../../.lymph.yml");
    let node = parse(text, Path::new("/repo")).expect("the repo's .lymph.yml parses");
    assert_eq!(node.processes.len(), 9);
    assert_eq!(node.ignored_sockets, 1);
}

#[test]
fn the_mixed_node_file_parses_with_its_environment() {
    let text = include_str!("../../../../../lymph-mixed.yml");
    let node = parse(text, Path::new("/repo")).expect("lymph-mixed.yml parses");
    assert_eq!(node.processes.len(), 9);
    let web = &node
        .processes
        .iter()
        .find(|p| p.name == "web.1")
        .expect("web.1");
    assert_eq!(web.program, PathBuf::from("python3"));
    assert_eq!(
        web.env,
        vec![("PYTHONPATH".to_owned(), "examples/python".to_owned())]
    );
}

#[test]
fn env_names_must_be_variable_names() {
    let text = "instances:\n  a:\n    command: a\n    env:\n      \"X=Y\": z\n";
    let err = parse(text, Path::new("/repo")).expect_err("refused");
    assert!(err.contains("instances.a.env"), "{err}");
}

#[test]
fn a_parse_error_starts_with_its_key_path_and_says_it_once() {
    let err = parse(
        "instances:\n  greeting:\n    command: greeting\n    numprocesses: many\n",
        Path::new("/d"),
    )
    .expect_err("not a number");
    assert!(
        err.starts_with("instances.greeting.numprocesses: "),
        "{err}"
    );
    assert!(!err.contains('\n'), "{err}");
    assert!(err.contains("line 4"), "{err}");
}
