#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Every YAML example in docs/pack.md parses: right keys, right types, known kinds.
//! (Cross-document references are not checked: each example shows one kind on its own.)

use gatehouse_pack::{load_files, render};

#[test]
fn every_yaml_example_in_the_pack_docs_parses() {
    let doc = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/pack.md"))
        .unwrap();
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in doc.lines() {
        match (&mut current, line.trim_start()) {
            (None, "```yaml") => current = Some(String::new()),
            (Some(_), "```") => blocks.push(current.take().unwrap()),
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    let with_kind: Vec<&String> = blocks.iter().filter(|b| b.contains("kind:")).collect();
    assert!(with_kind.len() >= 17, "found {} examples", with_kind.len());
    for (i, block) in with_kind.iter().enumerate() {
        let name = format!("example-{i}.yaml");
        let loaded = load_files([(name.as_str(), block.as_str())]);
        let structural: Vec<_> = loaded
            .diagnostics
            .iter()
            // Rule folders are on disk, not in the example: their absence is not structural.
            .filter(|d| {
                !matches!(
                    d.code,
                    "dangling-reference" | "role-without-holder" | "missing-rule-folder"
                )
            })
            .cloned()
            .collect();
        assert!(
            structural.is_empty(),
            "docs example {i}:\n{block}\n{}",
            render::text(&structural, &loaded.sources)
        );
        assert!(
            loaded.pack.document_count() >= 1,
            "docs example {i} has a document"
        );
    }
}
