//! Rego policy files named by a release class, read from a pack folder on disk.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs;

const CLASS: &str = "kind: ReleaseClass\nid: normal\napprover_path: [{role: security-lead}]\n\
                     policies:\n  - file: FILE\n    query: data.gatehouse.deny\n";
const POLICY: &str = "package gatehouse\n\nimport rego.v1\n\ndeny contains \"no\" if false\n";

fn load(file: &str, setup: impl FnOnce(&std::path::Path)) -> gatehouse_pack::LoadedPack {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("classes.yaml"), CLASS.replace("FILE", file)).unwrap();
    setup(dir.path());
    gatehouse_pack::load(dir.path()).unwrap()
}

fn rego_codes(loaded: &gatehouse_pack::LoadedPack) -> Vec<&'static str> {
    loaded
        .diagnostics
        .iter()
        .map(|d| d.code)
        .filter(|c| c.starts_with("rego-"))
        .collect()
}

#[test]
fn a_policy_in_the_pack_folder_is_read_with_the_pack() {
    let loaded = load("policies/deny.rego", |dir| {
        fs::create_dir(dir.join("policies")).unwrap();
        fs::write(dir.join("policies/deny.rego"), POLICY).unwrap();
    });
    assert!(rego_codes(&loaded).is_empty(), "{:?}", loaded.diagnostics);
    let class = loaded.pack.release_class("normal").unwrap();
    assert_eq!(class.policies[0].source.as_deref(), Some(POLICY));
}

#[test]
fn a_policy_outside_the_pack_folder_is_refused() {
    let outside = tempfile::tempdir().unwrap();
    fs::write(outside.path().join("x.rego"), POLICY).unwrap();
    let loaded = load("../x.rego", |_| {});
    assert_eq!(rego_codes(&loaded), ["rego-policy-unreadable"]);
    assert!(
        loaded.pack.release_class("normal").unwrap().policies[0]
            .source
            .is_none()
    );

    #[cfg(unix)]
    {
        let target = outside.path().join("x.rego");
        let loaded = load("link.rego", |dir| {
            std::os::unix::fs::symlink(&target, dir.join("link.rego")).unwrap();
        });
        assert_eq!(rego_codes(&loaded), ["rego-policy-unreadable"]);
        let d = loaded
            .diagnostics
            .iter()
            .find(|d| d.code == "rego-policy-unreadable")
            .unwrap();
        assert!(
            d.message.contains("outside the pack folder"),
            "{}",
            d.message
        );
    }
}

#[test]
fn a_syntax_error_is_located_in_the_rego_file() {
    let loaded = load("deny.rego", |dir| {
        fs::write(
            dir.join("deny.rego"),
            "package gatehouse\n\ndeny contains msg if {\n  msg :=\n}\n",
        )
        .unwrap();
    });
    assert_eq!(rego_codes(&loaded), ["rego-policy-syntax"]);
    let d = loaded
        .diagnostics
        .iter()
        .find(|d| d.code == "rego-policy-syntax")
        .unwrap();
    let at = d.location.as_ref().unwrap();
    assert!(at.file.ends_with("deny.rego"), "{at:?}");
    assert!(at.line >= 4, "{at:?}");
    assert!(loaded.has_errors());
    // The source is kept so that `pack lint` can show the line.
    assert!(loaded.sources.get(&at.file).is_some());
}

#[test]
fn editing_a_policy_changes_the_pack_digest() {
    let with = |policy: &'static str| {
        load("policies/deny.rego", move |dir| {
            fs::create_dir(dir.join("policies")).unwrap();
            fs::write(dir.join("policies/deny.rego"), policy).unwrap();
        })
        .pack
        .digest()
    };
    let edited = POLICY.replace("if false", "if true");
    let edited: &'static str = Box::leak(edited.into_boxed_str());
    // Same text in two different folders: same digest (it does not depend on the checkout path).
    assert_eq!(with(POLICY), with(POLICY));
    assert_ne!(with(POLICY), with(edited));
}
