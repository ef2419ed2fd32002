//! `lymphctl list` and `lymphctl help [COMMAND]`: the command table, laid out
//! as lymph lays it out. Needs no daemon.

use std::process::ExitCode;

use clap::CommandFactory;

use crate::{Cli, print_out};

/// Every command and its one-line description, names padded to one column.
pub fn list_text(cli: &clap::Command) -> String {
    let rows: Vec<(&str, String)> = cli
        .get_subcommands()
        .map(|c| {
            (
                c.get_name(),
                c.get_about().map(|a| a.to_string()).unwrap_or_default(),
            )
        })
        .collect();
    let width = rows.iter().map(|(name, _)| name.len()).max().unwrap_or(0) + 2;
    rows.iter()
        .map(|(name, about)| format!("{name:<width$}{about}\n"))
        .collect()
}

pub fn list() -> ExitCode {
    finish(print_out(&list_text(&Cli::command())))
}

/// Prints the usage of one command, or of lymphctl itself.
pub fn help(command: Option<&str>) -> ExitCode {
    let mut cli = Cli::command();
    // Building sets every subcommand's bin name, so usage reads `lymphctl request ...`.
    cli.build();
    let text = match command {
        None => cli.render_long_help(),
        Some(name) => match cli.find_subcommand_mut(name) {
            Some(sub) => sub.render_long_help(),
            None => {
                eprintln!("lymphctl: unknown command {name:?} (see `lymphctl list`)");
                return ExitCode::from(2);
            }
        },
    };
    finish(print_out(&text.to_string()))
}

fn finish(printed: anyhow::Result<()>) -> ExitCode {
    match printed {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("lymphctl: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn list_aligns_descriptions_like_lymph() {
        let text = list_text(&Cli::command());
        assert!(
            text.contains("discover   Show available services.\n"),
            "{text}"
        );
        assert!(
            text.contains("subscribe  Prints events to stdout.\n"),
            "{text}"
        );
        assert!(
            text.contains("node       Run the services of .lymph.yml"),
            "{text}"
        );
        for name in [
            "discover",
            "emit",
            "help",
            "inspect",
            "list",
            "node",
            "request",
            "status",
            "subscribe",
            "tail",
        ] {
            assert!(
                text.lines().any(|l| l.starts_with(&format!("{name} "))),
                "{name}"
            );
        }
    }

    #[test]
    fn cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
