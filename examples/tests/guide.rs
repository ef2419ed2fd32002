//! docs/writing-services.md shows the Inventory and Audit examples' code:
//! every Rust block of the guide that is longer than a snippet must appear,
//! verbatim, in one of those files, so the guide cannot drift from code
//! that compiles and is tested.

use std::path::Path;

/// Blocks of at most this many lines are illustrative snippets.
const SNIPPET_LINES: usize = 10;

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The ```rust blocks of a Markdown text.
fn rust_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<&str>> = None;
    for line in markdown.lines() {
        match &mut current {
            None if line.trim_start().starts_with("```rust") => current = Some(Vec::new()),
            Some(lines) if line.trim_start().starts_with("```") => {
                blocks.push(lines.join("\n"));
                current = None;
            }
            Some(lines) => lines.push(line),
            None => {}
        }
    }
    blocks
}

#[test]
fn the_guides_code_is_the_examples_code() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let guide = read(&root.join("../docs/writing-services.md"));
    let sources: Vec<String> = ["inventory.rs", "audit.rs"]
        .iter()
        .map(|f| read(&root.join("src/bin").join(f)))
        .collect();
    let blocks = rust_blocks(&guide);
    let long: Vec<&String> = blocks
        .iter()
        .filter(|b| b.lines().count() > SNIPPET_LINES)
        .collect();
    assert!(
        long.len() >= 3,
        "the guide shows Inventory, Audit and a test"
    );
    for block in long {
        assert!(
            sources.iter().any(|s| s.contains(block.as_str())),
            "a Rust block of docs/writing-services.md is not in examples/src/bin/inventory.rs \
             or audit.rs (update the guide from the code):\n{block}"
        );
    }
}
