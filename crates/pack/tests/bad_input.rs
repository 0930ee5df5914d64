#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Hostile or broken pack folders (issue 2, "Bad input"): each is reported as a located
//! diagnostic, never a panic, with bounded time and memory, and the good files beside it still
//! load.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use gatehouse_pack::{Diagnostic, LoadedPack, MAX_FILE_BYTES, PackError, load, render};

const GOOD: &str = "kind: Role\nid: good\n";

/// A pack folder holding a valid `good.yaml` next to whatever the test adds.
fn pack_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("good.yaml"), GOOD).unwrap();
    dir
}

fn only_finding<'a>(loaded: &'a LoadedPack, code: &str) -> &'a Diagnostic {
    let found: Vec<&Diagnostic> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.code == code)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one {code}:\n{}",
        render::text(&loaded.diagnostics, &loaded.sources)
    );
    assert!(
        loaded.pack.role("good").is_some(),
        "the valid file beside the bad one still loads"
    );
    found[0]
}

fn assert_at(d: &Diagnostic, file: &Path, line: u32, column: u32) {
    let l = d.location.as_ref().unwrap();
    assert_eq!(
        (l.file.as_path(), l.line, l.column),
        (file, line, column),
        "{d:?}"
    );
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/bad")
        .join(name)
}

#[test]
fn malformed_yaml_is_a_located_syntax_error() {
    let dir = pack_dir();
    let file = dir.path().join("broken.yaml");
    std::fs::write(&file, "kind: Role\nid: broken\ntitle: \"unterminated\n").unwrap();
    let loaded = load(dir.path()).unwrap();
    let d = only_finding(&loaded, "yaml-syntax");
    assert_eq!(d.location.as_ref().unwrap().file, file);
    assert!(d.location.as_ref().unwrap().line >= 3, "{d:?}");
    assert!(loaded.has_errors());
}

/// Loads `text` as `name` beside a good file; returns the single finding it produced.
fn load_one(name: &str, text: &str) -> (tempfile::TempDir, PathBuf, LoadedPack) {
    let dir = pack_dir();
    let file = dir.path().join(name);
    std::fs::write(&file, text).unwrap();
    let started = Instant::now();
    let loaded = load(dir.path()).unwrap();
    assert!(started.elapsed() < Duration::from_secs(10), "bounded time");
    (dir, file, loaded)
}

#[test]
fn alias_bomb_is_stopped_by_the_alias_budget() {
    let text = std::fs::read_to_string(fixture("alias_bomb_general_path.yaml")).unwrap();
    let (_dir, file, loaded) = load_one("bomb.yaml", &text);
    let d = only_finding(&loaded, "yaml-limit");
    assert_eq!(d.location.as_ref().unwrap().file, file);
    assert!(d.location.as_ref().unwrap().line >= 5, "{d:?}");
    assert!(d.message.contains("alias"), "{}", d.message);
    assert!(loaded.pack.get("bomb").is_none());
}

#[test]
fn alias_bomb_in_a_typed_document_is_stopped_too() {
    let text = std::fs::read_to_string(fixture("alias_bomb.yaml")).unwrap();
    let (_dir, file, loaded) = load_one("bomb.yaml", &text);
    // `a:` is not a Role key, so the typed parse stops early; the untyped walk that then looks
    // for the root cause hits the alias budget, which is what gets reported.
    let d = only_finding(&loaded, "yaml-limit");
    assert_eq!(d.location.as_ref().unwrap().file, file);
    assert!(d.message.contains("alias"), "{}", d.message);
    assert!(loaded.pack.get("bomb").is_none());
}

fn deep_flow(depth: usize) -> String {
    format!("{}{}", "[".repeat(depth), "]".repeat(depth))
}

#[test]
fn ten_thousand_deep_flow_nesting_is_refused_without_stack_overflow() {
    let text = format!("\"kind\": Role\nid: deep\nnested: {}\n", deep_flow(10_000));
    let (_dir, file, loaded) = load_one("deep.yaml", &text);
    let d = only_finding(&loaded, "yaml-limit");
    let l = d.location.as_ref().unwrap();
    assert_eq!((l.file.as_path(), l.line), (file.as_path(), 3), "{d:?}");
}

#[test]
fn ten_thousand_deep_block_nesting_is_refused_without_stack_overflow() {
    // `- - - x` is a sequence in a sequence in a sequence; 10,000 of them on one line.
    let text = format!(
        "\"kind\": Role\nid: deep\nnested:\n{}x\n",
        "- ".repeat(10_000)
    );
    let (_dir, file, loaded) = load_one("deep.yaml", &text);
    let d = only_finding(&loaded, "yaml-limit");
    assert_eq!(d.location.as_ref().unwrap().file, file);
    assert_eq!(d.location.as_ref().unwrap().line, 4, "{d:?}");
    assert!(d.message.contains("64 levels"), "{}", d.message);
}

#[test]
fn ten_thousand_deep_nesting_in_a_typed_field_is_refused_by_the_scanner() {
    let text = format!(
        "kind: Role\nid: deep\nresponsibilities: {}\n",
        deep_flow(10_000)
    );
    let (_dir, file, loaded) = load_one("deep.yaml", &text);
    // The scanner's own flow-nesting guard fires before the value reaches the struct.
    let d = only_finding(&loaded, "yaml-limit");
    let l = d.location.as_ref().unwrap();
    assert_eq!((l.file.as_path(), l.line), (file.as_path(), 3), "{d:?}");
    assert!(d.message.contains("nested too deeply"), "{}", d.message);
}

#[test]
fn fifty_megabyte_file_is_refused_naming_the_limit() {
    let dir = pack_dir();
    let file = dir.path().join("huge.yaml");
    let line = "# padding padding padding padding padding padding padding padding\n";
    let mut text = String::from("kind: Role\nid: huge\n");
    while text.len() < 50 * 1024 * 1024 {
        text.push_str(line);
    }
    std::fs::write(&file, text).unwrap();
    let loaded = load(dir.path()).unwrap();
    let d = only_finding(&loaded, "file-too-large");
    assert_eq!(d.location.as_ref().unwrap().file, file);
    assert!(d.message.contains("16 MiB"), "{}", d.message);
    assert_eq!(MAX_FILE_BYTES, 16 * 1024 * 1024);
    assert!(loaded.pack.get("huge").is_none());
    assert!(
        loaded.sources.get(&file).is_none(),
        "the file was not kept in memory"
    );
}

#[test]
fn non_utf8_bytes_are_reported_at_their_position() {
    let dir = pack_dir();
    let file = dir.path().join("latin1.yaml");
    std::fs::write(&file, b"kind: Role\nid: caf\xe9\n").unwrap();
    let loaded = load(dir.path()).unwrap();
    let d = only_finding(&loaded, "not-utf8");
    assert_at(d, &file, 2, 8);
    assert!(d.message.contains("0xe9"), "{}", d.message);
}

#[test]
fn symlink_loop_in_the_pack_folder_is_reported_and_not_followed() {
    let dir = pack_dir();
    let sub = dir.path().join("nested");
    std::fs::create_dir(&sub).unwrap();
    std::fs::write(sub.join("inner.yaml"), "kind: Role\nid: inner\n").unwrap();
    let link = sub.join("back-to-root");
    std::os::unix::fs::symlink(dir.path(), &link).unwrap();
    let loaded = load(dir.path()).unwrap();
    let d = only_finding(&loaded, "symlink-loop");
    assert_eq!(d.location.as_ref().unwrap().file, link);
    // Each file was read once: no duplicate ids from walking the loop.
    assert!(loaded.pack.role("inner").is_some());
    assert!(!loaded.diagnostics.iter().any(|d| d.code == "duplicate-id"));
}

#[test]
fn self_referencing_symlink_is_a_loop_finding() {
    let dir = pack_dir();
    let link = dir.path().join("self.yaml");
    std::os::unix::fs::symlink(&link, &link).unwrap();
    let loaded = load(dir.path()).unwrap();
    let d = only_finding(&loaded, "symlink-loop");
    assert_eq!(d.location.as_ref().unwrap().file, link);
}

/// Whether this process bypasses file permissions (root, CAP_DAC_OVERRIDE): then `chmod 000`
/// does not make a file unreadable, and the test proves the same code path another way.
fn permissions_are_bypassed(dir: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let probe = dir.join("probe");
    std::fs::write(&probe, "x").unwrap();
    std::fs::set_permissions(&probe, std::fs::Permissions::from_mode(0o000)).unwrap();
    let readable = std::fs::read(&probe).is_ok();
    std::fs::remove_file(&probe).unwrap();
    readable
}

#[test]
fn unreadable_file_is_an_io_finding() {
    use std::os::unix::fs::PermissionsExt;
    let dir = pack_dir();
    let file = dir.path().join("secret.yaml");
    std::fs::write(&file, "kind: Role\nid: secret\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o000)).unwrap();
    let bypassed = permissions_are_bypassed(dir.path());
    let loaded = load(dir.path()).unwrap();
    if bypassed {
        // Running as root: the file is readable after all and must load normally.
        assert!(loaded.pack.role("secret").is_some());
        assert!(loaded.diagnostics.is_empty(), "{:?}", loaded.diagnostics);
    } else {
        let d = only_finding(&loaded, "io-error");
        assert_eq!(d.location.as_ref().unwrap().file, file);
        assert!(d.hint.as_deref().unwrap().contains("readable"));
    }
}

#[test]
fn file_that_cannot_be_opened_is_an_io_finding_even_as_root() {
    // A dangling link fails at open() for every user, including root, through the same path
    // as a permission error.
    let dir = pack_dir();
    let link = dir.path().join("gone.yaml");
    std::os::unix::fs::symlink(dir.path().join("missing.yaml"), &link).unwrap();
    let loaded = load(dir.path()).unwrap();
    let d = only_finding(&loaded, "io-error");
    assert_eq!(d.location.as_ref().unwrap().file, link);
    assert!(d.message.contains("cannot read"), "{}", d.message);
}

#[test]
fn named_pipe_is_reported_instead_of_blocking() {
    let dir = pack_dir();
    let fifo = dir.path().join("pipe.yaml");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("mkfifo unavailable; skipping");
        return;
    }
    let loaded = load(dir.path()).unwrap();
    let d = only_finding(&loaded, "io-error");
    assert_eq!(d.location.as_ref().unwrap().file, fifo);
}

#[test]
fn missing_folder_and_file_are_pack_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nope");
    assert!(matches!(load(&missing), Err(PackError::NotFound(p)) if p == missing));
    let file = dir.path().join("file.yaml");
    std::fs::write(&file, GOOD).unwrap();
    assert!(matches!(load(&file), Err(PackError::NotADirectory(_))));
}

#[test]
fn one_bad_document_does_not_hide_the_rest_of_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mixed.yaml");
    std::fs::write(
        &file,
        "kind: Role\nid: a\nbogus: 1\n---\nkind: Role\nid: b\n---\nkind: Role\nid: c\nalso_bogus: 2\n",
    )
    .unwrap();
    let loaded = load(dir.path()).unwrap();
    let positions: Vec<(u32, u32)> = loaded
        .diagnostics
        .iter()
        .map(|d| {
            assert_eq!(d.code, "unknown-key");
            let l = d.location.as_ref().unwrap();
            (l.line, l.column)
        })
        .collect();
    assert_eq!(positions, vec![(3, 1), (10, 1)]);
    assert!(loaded.pack.role("b").is_some());
}

#[test]
fn empty_folder_is_a_warning_not_a_clean_pass() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "not a pack file").unwrap();
    let loaded = load(dir.path()).unwrap();
    assert_eq!(loaded.diagnostics.len(), 1);
    assert_eq!(loaded.diagnostics[0].code, "empty-pack");
    assert_eq!(
        loaded.diagnostics[0].severity,
        gatehouse_pack::Severity::Warning
    );
    assert!(!loaded.has_errors());
}

#[test]
fn crlf_line_endings_keep_exact_positions() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("windows.yaml");
    std::fs::write(
        &file,
        "kind: Role\r\nid: a\r\n---\r\nkind: Role\r\nid: b\r\n  bad: 1\r\nsevrity: x\r\n",
    )
    .unwrap();
    let loaded = load(dir.path()).unwrap();
    let d = loaded.diagnostics.first().unwrap();
    assert_eq!(d.code, "yaml-syntax", "{:?}", loaded.diagnostics);
    assert_eq!(d.location.as_ref().unwrap().line, 6);
    assert!(loaded.pack.role("a").is_some());
    let snippet = d.snippet(loaded.sources.get(&file).unwrap()).unwrap();
    assert!(!snippet.contains('\r'), "{snippet:?}");
}

#[test]
fn byte_order_mark_does_not_shift_columns() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bom.yaml");
    std::fs::write(&file, "\u{feff}kind: Role\nid: a\nbogus: 1\n").unwrap();
    let loaded = load(dir.path()).unwrap();
    assert_eq!(loaded.diagnostics.len(), 1, "{:?}", loaded.diagnostics);
    assert_at(&loaded.diagnostics[0], &file, 3, 1);
}

#[test]
fn folders_nested_too_deep_are_reported_not_walked() {
    let dir = pack_dir();
    let mut deep = dir.path().to_path_buf();
    for i in 0..=gatehouse_pack::MAX_DIR_DEPTH {
        deep.push(format!("d{i}"));
    }
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::write(deep.join("lost.yaml"), "kind: Role\nid: lost\n").unwrap();
    let loaded = load(dir.path()).unwrap();
    let d = only_finding(&loaded, "too-deep");
    assert!(
        d.message
            .contains(&gatehouse_pack::MAX_DIR_DEPTH.to_string()),
        "{}",
        d.message
    );
    assert!(loaded.pack.get("lost").is_none());
}
