#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! The example pack written by `gatehouse init` must stay lint-clean and complete.

use gatehouse_pack::{example, load, load_files, render};

#[test]
fn example_pack_loads_with_zero_diagnostics() {
    let loaded = load_files(example::files());
    assert!(
        loaded.diagnostics.is_empty(),
        "{}",
        render::text(&loaded.diagnostics, &loaded.sources)
    );
    assert!(loaded.pack.document_count() > 10);
}

#[test]
fn example_pack_written_to_disk_loads_the_same() {
    let dir = tempfile::tempdir().unwrap();
    for (path, content) in example::files() {
        let target = dir.path().join(path);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::write(target, content).unwrap();
    }
    let loaded = load(dir.path()).unwrap();
    assert!(
        loaded.diagnostics.is_empty(),
        "{}",
        render::text(&loaded.diagnostics, &loaded.sources)
    );
    let in_memory = load_files(example::files());
    assert_eq!(loaded.pack.digest(), in_memory.pack.digest());
    assert_eq!(loaded.pack.digest().len(), 64);
}
