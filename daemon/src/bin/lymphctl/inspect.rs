//! `lymphctl inspect`: the `Inspect` RPC, laid out as lymph's `inspect`
//! prints it. Help text is wrapped like Python's `textwrap.wrap(help, 70)`
//! and indented by 9 spaces; a method's own concurrency limit follows its
//! signature as `  [concurrency N]`, the typed errors it declares as
//! `  raises A, B`.

use lymph_proto::v1::{InspectReply, InspectRequest};

use crate::{Client, print_out, rpc_error};

const HELP_INDENT: &str = "         ";
const HELP_WIDTH: usize = 70;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The service to describe.
    name: String,
    /// A semver requirement on the instance's version, e.g. 1.2.
    #[arg(long, value_name = "V")]
    version: Option<String>,
}

pub async fn run(mut client: Client, args: Args) -> anyhow::Result<()> {
    let request = InspectRequest {
        service: args.name.clone(),
        version: args.version.unwrap_or_default(),
    };
    let reply = client
        .inspect(request)
        .await
        .map_err(rpc_error)?
        .into_inner();
    print_out(&render(&args.name, &reply))
}

/// `RPC interface of NAME`, a blank line, then per method sorted by name its
/// signature (with its concurrency limit and the errors it raises, if it
/// declares them), its wrapped help (if any) and a blank line.
pub fn render(name: &str, reply: &InspectReply) -> String {
    let mut methods: Vec<_> = reply.methods.iter().collect();
    methods.sort_by(|a, b| a.name.cmp(&b.name));
    let mut out = format!("RPC interface of {name}\n\n");
    for method in methods {
        out.push_str(&format!(
            "rpc {}({})",
            method.name,
            method.params.join(", ")
        ));
        if method.concurrency > 0 {
            out.push_str(&format!("  [concurrency {}]", method.concurrency));
        }
        if !method.raises.is_empty() {
            out.push_str(&format!("  raises {}", method.raises.join(", ")));
        }
        out.push('\n');
        for line in wrap(&method.help, HELP_WIDTH) {
            out.push_str(HELP_INDENT);
            out.push_str(&line);
            out.push('\n');
        }
        out.push('\n');
    }
    out
}

/// Greedy word wrap: whitespace collapses, words longer than `width` stand alone.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use lymph_proto::v1::MethodInfo;

    use super::*;

    fn method(name: &str, params: &[&str], help: &str) -> MethodInfo {
        MethodInfo {
            name: name.to_owned(),
            version: String::new(),
            params: params.iter().map(|p| (*p).to_owned()).collect(),
            help: help.to_owned(),
            concurrency: 0,
            raises: vec![],
        }
    }

    #[test]
    fn renders_like_lymph_inspect() {
        let reply = InspectReply {
            identity: "abc".to_owned(),
            methods: vec![
                method("lymph.ping", &["payload"], ""),
                method(
                    "lymph.inspect",
                    &[],
                    "Returns a description of all available rpc methods of this service",
                ),
                method("Greeting.greet", &["name"], ""),
                method("Greeting.add", &["a", "b"], ""),
            ],
        };
        let expected = "RPC interface of Greeting\n\n\
            rpc Greeting.add(a, b)\n\n\
            rpc Greeting.greet(name)\n\n\
            rpc lymph.inspect()\n         Returns a description of all available rpc methods of this service\n\n\
            rpc lymph.ping(payload)\n\n";
        assert_eq!(render("Greeting", &reply), expected);
    }

    #[test]
    fn a_method_with_a_limit_of_its_own_shows_it_after_its_signature() {
        let slow = MethodInfo {
            concurrency: 1,
            ..method("Echo.slow", &["text"], "Echoes, one at a time.")
        };
        let reply = InspectReply {
            identity: "abc".to_owned(),
            methods: vec![slow, method("Echo.echo", &["text"], "")],
        };
        let expected = "RPC interface of Echo\n\n\
            rpc Echo.echo(text)\n\n\
            rpc Echo.slow(text)  [concurrency 1]\n         Echoes, one at a time.\n\n";
        assert_eq!(render("Echo", &reply), expected);
    }

    #[test]
    fn declared_errors_follow_the_signature() {
        let get = MethodInfo {
            raises: vec!["NotFound".to_owned(), "Forbidden".to_owned()],
            ..method("Users.get", &["id"], "Looks a user up.")
        };
        let both = MethodInfo {
            concurrency: 2,
            raises: vec!["Busy".to_owned()],
            ..method("Users.put", &["user"], "")
        };
        let reply = InspectReply {
            identity: "abc".to_owned(),
            methods: vec![both, get],
        };
        let expected = "RPC interface of Users\n\n\
            rpc Users.get(id)  raises NotFound, Forbidden\n         Looks a user up.\n\n\
            rpc Users.put(user)  [concurrency 2]  raises Busy\n\n";
        assert_eq!(render("Users", &reply), expected);
    }

    #[test]
    fn long_help_wraps_at_seventy_columns() {
        let help = "word ".repeat(30);
        let lines = wrap(&help, HELP_WIDTH);
        assert_eq!(lines.len(), 3);
        assert!(lines.iter().all(|l| l.len() <= HELP_WIDTH));
        assert_eq!(wrap("  a\n  b  ", 70), vec!["a b".to_owned()]);
        assert!(wrap("", 70).is_empty());
    }
}
