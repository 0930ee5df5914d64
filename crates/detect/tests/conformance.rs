#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Conformance: each modifier and condition form of the Sigma specification, mostly with the
//! specification's own examples, checked through the compiled engine.

use gatehouse_detect::engine::{Engine, Scratch};
use gatehouse_detect::rule::{LoadOptions, ProblemKind, RuleSet};
use serde_json::{Value, json};

fn engine(yaml: &str) -> Engine {
    let mut set = RuleSet::default();
    set.add_text("inline.yml", yaml, &LoadOptions::default());
    set.resolve();
    assert!(
        set.problems.is_empty(),
        "rule did not load: {:?}",
        set.problems
    );
    Engine::compile(&set)
}

fn rule(detection: &str) -> Engine {
    engine(&format!(
        "title: t\nid: r1\nlogsource:\n    product: test\ndetection:\n{detection}\nlevel: high\n"
    ))
}

fn hits(e: &Engine, event: &Value) -> bool {
    !e.match_event(event, &mut Scratch::default()).is_empty()
}

fn problem(yaml: &str) -> (u32, ProblemKind) {
    let mut set = RuleSet::default();
    set.add_text("inline.yml", yaml, &LoadOptions::default());
    set.resolve();
    assert_eq!(
        set.problems.len(),
        1,
        "expected exactly one problem, got {:?}",
        set.problems
    );
    (set.problems[0].line, set.problems[0].kind.clone())
}

#[test]
fn spec_example_whoami_matches_case_insensitively() {
    let e = rule(
        "    selection:\n        Image: 'C:\\Windows\\System32\\whoami.exe'\n    condition: selection",
    );
    assert!(hits(
        &e,
        &json!({"Image": "c:\\windows\\system32\\WHOAMI.exe"})
    ));
    assert!(!hits(
        &e,
        &json!({"Image": "C:\\Windows\\System32\\whoami.exe.bak"})
    ));
}

#[test]
fn maps_are_and_lists_are_or() {
    let e = rule(
        "    selection:\n        EventLog: Security\n        EventID:\n            - 517\n            - 1102\n    condition: selection",
    );
    assert!(hits(&e, &json!({"EventLog": "Security", "EventID": 1102})));
    assert!(hits(&e, &json!({"EventLog": "security", "EventID": "517"})));
    assert!(!hits(&e, &json!({"EventLog": "Security", "EventID": 4624})));
    assert!(!hits(&e, &json!({"EventID": 517})));
}

#[test]
fn list_of_maps_is_or() {
    let e = rule(
        "    selection:\n        - Image|endswith: '\\example.exe'\n        - Description|contains: 'Test executable'\n    condition: selection",
    );
    assert!(hits(&e, &json!({"Image": "C:\\x\\example.exe"})));
    assert!(hits(&e, &json!({"Description": "a Test Executable here"})));
    assert!(!hits(
        &e,
        &json!({"Image": "C:\\x\\other.exe", "Description": "nothing"})
    ));
}

#[test]
fn keywords_search_every_value_and_all_keywords_need_each() {
    let e = rule(
        "    keywords:\n        - 'event::clear'\n        - 'svchost.exe -n evil'\n    condition: keywords",
    );
    assert!(hits(&e, &json!({"msg": "mimikatz EVENT::CLEAR done"})));
    assert!(hits(
        &e,
        &json!({"nested": {"deep": ["x", "svchost.exe -n evil"]}})
    ));
    assert!(!hits(&e, &json!({"msg": "clean"})));
    let e = rule(
        "    keywords_cmdlet:\n        '|all':\n            - 'OabVirtualDirectory'\n            - ' -ExternalUrl '\n    condition: keywords_cmdlet",
    );
    assert!(hits(
        &e,
        &json!({"a": "Set-OabVirtualDirectory -ExternalUrl http://x"})
    ));
    assert!(!hits(&e, &json!({"a": "Set-OabVirtualDirectory"})));
}

#[test]
fn wildcards_and_escapes() {
    let e = rule("    selection:\n        Image: 'prog?.exe'\n    condition: selection");
    assert!(hits(&e, &json!({"Image": "progA.exe"})));
    assert!(!hits(&e, &json!({"Image": "prog.exe"})));
    let e = rule("    selection:\n        Image: 'antivirus_V*.exe'\n    condition: selection");
    assert!(hits(&e, &json!({"Image": "antivirus_V21.2.1.exe"})));
    let e = rule("    selection:\n        Name: 'a\\*b'\n    condition: selection");
    assert!(hits(&e, &json!({"Name": "a*b"})));
    assert!(!hits(&e, &json!({"Name": "axxb"})));
    let e = rule("    selection:\n        Name: 'a\\\\*'\n    condition: selection");
    assert!(hits(&e, &json!({"Name": "a\\anything"})));
    let e = rule("    selection:\n        Name: 'a\\\\\\*'\n    condition: selection");
    assert!(hits(&e, &json!({"Name": "a\\*"})));
    assert!(!hits(&e, &json!({"Name": "a\\x"})));
}

#[test]
fn contains_startswith_endswith_all() {
    let e = rule(
        "    selection:\n        CommandLine|contains|all:\n            - ' -enc '\n            - 'hidden'\n    condition: selection",
    );
    assert!(hits(
        &e,
        &json!({"CommandLine": "powershell -w HIDDEN -enc AAA"})
    ));
    assert!(!hits(&e, &json!({"CommandLine": "powershell -enc AAA"})));
    let e = rule(
        "    selection:\n        A|startswith: 'adm'\n        B|endswith: '.exe'\n    condition: selection",
    );
    assert!(hits(&e, &json!({"A": "ADMIN", "B": "x.EXE"})));
    assert!(!hits(&e, &json!({"A": "xadm", "B": "x.exe"})));
}

#[test]
fn cased_is_case_sensitive() {
    let e = rule("    selection:\n        A|cased: 'CamelCase'\n    condition: selection");
    assert!(hits(&e, &json!({"A": "CamelCase"})));
    assert!(!hits(&e, &json!({"A": "camelcase"})));
}

#[test]
fn regex_is_case_sensitive_and_flags_work() {
    let e = rule("    selection:\n        A|re: '^ab+c$'\n    condition: selection");
    assert!(hits(&e, &json!({"A": "abbbc"})));
    assert!(!hits(&e, &json!({"A": "ABBC"})));
    let e = rule("    selection:\n        A|re|i: '^ab+c$'\n    condition: selection");
    assert!(hits(&e, &json!({"A": "ABBC"})));
    let e = rule("    selection:\n        A|re|m: '^second$'\n    condition: selection");
    assert!(hits(&e, &json!({"A": "first\nsecond\nthird"})));
    let e = rule("    selection:\n        A|re|s: 'first.second'\n    condition: selection");
    assert!(hits(&e, &json!({"A": "first\nsecond"})));
    let e = rule("    selection:\n        A|re: 'first.second'\n    condition: selection");
    assert!(!hits(&e, &json!({"A": "first\nsecond"})));
}

#[test]
fn catastrophic_regex_runs_in_linear_time() {
    // (a+)+$ backtracks exponentially in backtracking engines; here it is a finite automaton.
    let e = rule("    selection:\n        A|re: '^(a+)+$'\n    condition: selection");
    let input = format!("{}!", "a".repeat(50_000));
    let start = std::time::Instant::now();
    assert!(!hits(&e, &json!({ "A": input })));
    assert!(start.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn base64_and_base64offset() {
    let e = rule("    selection:\n        A|base64: 'cmd'\n    condition: selection");
    assert!(hits(&e, &json!({"A": "Y21k"})));
    let e = rule(
        "    selection:\n        A|base64offset|contains: '/bin/bash'\n    condition: selection",
    );
    // "/bin/bash" at three different offsets inside a base64 blob.
    for prefix in ["", "x", "xy"] {
        use base64::Engine as _;
        let blob =
            base64::engine::general_purpose::STANDARD.encode(format!("{prefix}/bin/bash -c id"));
        assert!(hits(&e, &json!({ "A": blob })), "offset {}", prefix.len());
    }
    assert!(!hits(&e, &json!({"A": "aGVsbG8gd29ybGQ="})));
}

#[test]
fn wide_then_base64offset_finds_utf16_powershell() {
    use base64::Engine as _;
    let e = rule(
        "    selection:\n        CommandLine|wide|base64offset|contains: 'IEX'\n    condition: selection",
    );
    let utf16: Vec<u8> = "IEX (New-Object)"
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    let blob = base64::engine::general_purpose::STANDARD.encode(utf16);
    assert!(hits(
        &e,
        &json!({ "CommandLine": format!("powershell -enc {blob}") })
    ));
}

#[test]
fn windash_matches_every_dash_variant() {
    let e = rule(
        "    selection:\n        CommandLine|windash|contains: ' -exec bypass'\n    condition: selection",
    );
    for dash in ["-", "/", "\u{2013}", "\u{2014}", "\u{2015}"] {
        assert!(
            hits(
                &e,
                &json!({ "CommandLine": format!("ps {dash}exec bypass") })
            ),
            "{dash}"
        );
    }
    assert!(!hits(&e, &json!({"CommandLine": "ps +exec bypass"})));
}

#[test]
fn cidr_ipv4_and_ipv6() {
    let e = rule(
        "    selection:\n        DestinationIp|cidr:\n            - '10.0.0.0/8'\n            - 'fe80::/10'\n    condition: selection",
    );
    assert!(hits(&e, &json!({"DestinationIp": "10.20.30.40"})));
    assert!(hits(&e, &json!({"DestinationIp": "fe80::1"})));
    assert!(!hits(&e, &json!({"DestinationIp": "11.0.0.1"})));
    assert!(!hits(&e, &json!({"DestinationIp": "not an ip"})));
}

#[test]
fn exists_checks_presence_only() {
    let e = rule(
        "    selection:\n        EventID: 4738\n        PasswordLastSet|exists: true\n    condition: selection",
    );
    assert!(hits(&e, &json!({"EventID": 4738, "PasswordLastSet": null})));
    assert!(hits(&e, &json!({"EventID": 4738, "PasswordLastSet": ""})));
    assert!(!hits(&e, &json!({"EventID": 4738})));
    let e = rule("    selection:\n        A|exists: false\n    condition: selection");
    assert!(hits(&e, &json!({"B": 1})));
    assert!(!hits(&e, &json!({"A": 1})));
}

#[test]
fn null_and_empty_values() {
    let e = rule(
        "    selection:\n        EventID: 4738\n    filter:\n        PasswordLastSet: null\n    condition: selection and not filter",
    );
    assert!(hits(&e, &json!({"EventID": 4738, "PasswordLastSet": "x"})));
    assert!(!hits(
        &e,
        &json!({"EventID": 4738, "PasswordLastSet": null})
    ));
    assert!(!hits(&e, &json!({"EventID": 4738})));
    let e = rule(
        "    selection_main:\n        FieldA: 'something'\n    selection_empty1:\n        FieldB: ''\n    selection_empty2:\n        FieldB: null\n    condition: selection_main and 1 of selection_empty*",
    );
    assert!(hits(&e, &json!({"FieldA": "something", "FieldB": ""})));
    assert!(hits(&e, &json!({"FieldA": "something"})));
    assert!(!hits(&e, &json!({"FieldA": "something", "FieldB": "x"})));
}

#[test]
fn numeric_comparisons() {
    let e = rule(
        "    selection:\n        Size|gt: 100\n        Size|lte: 200\n    condition: selection",
    );
    assert!(hits(&e, &json!({"Size": 150})));
    assert!(hits(&e, &json!({"Size": "200"})));
    assert!(!hits(&e, &json!({"Size": 100})));
    assert!(!hits(&e, &json!({"Size": "big"})));
    let e = rule("    selection:\n        A|gte: 5\n        B|lt: 0.5\n    condition: selection");
    assert!(hits(&e, &json!({"A": 5, "B": 0.25})));
}

#[test]
fn neq_excludes_values() {
    let e = rule(
        "    selection:\n        User|neq:\n            - admin\n            - root\n    condition: selection",
    );
    assert!(hits(&e, &json!({"User": "bob"})));
    assert!(!hits(&e, &json!({"User": "ADMIN"})));
}

#[test]
fn fieldref_compares_two_fields() {
    let e =
        rule("    selection:\n        SourceUser|fieldref: TargetUser\n    condition: selection");
    assert!(hits(
        &e,
        &json!({"SourceUser": "Alice", "TargetUser": "alice"})
    ));
    assert!(!hits(
        &e,
        &json!({"SourceUser": "Alice", "TargetUser": "bob"})
    ));
    assert!(!hits(&e, &json!({"SourceUser": "Alice"})));
}

#[test]
fn time_modifiers_extract_parts() {
    let e = rule("    selection:\n        Time|hour|gte: 22\n    condition: selection");
    assert!(hits(&e, &json!({"Time": "2024-01-01T23:15:00Z"})));
    assert!(!hits(&e, &json!({"Time": "2024-01-01T08:15:00Z"})));
    let e = rule("    selection:\n        Time|month: 2\n    condition: selection");
    assert!(hits(&e, &json!({"Time": "2024-02-10 10:00:00"})));
}

#[test]
fn expand_needs_a_placeholder_value() {
    let yaml = "title: t\nlogsource:\n    product: x\ndetection:\n    selection:\n        User|expand: '%Administrators%'\n    condition: selection\n";
    let (line, kind) = problem(yaml);
    assert_eq!(line, 6);
    assert!(
        matches!(kind, ProblemKind::Unsupported { ref feature } if feature.contains("%Administrators%")),
        "{kind:?}"
    );
    let mut opts = LoadOptions::default();
    opts.placeholders
        .insert("Administrators".into(), vec!["adm_*".into(), "root".into()]);
    let mut set = RuleSet::default();
    set.add_text("x.yml", yaml, &opts);
    let e = Engine::compile(&set);
    assert!(hits(&e, &json!({"User": "adm_bob"})));
    assert!(!hits(&e, &json!({"User": "bob"})));
}

#[test]
fn condition_forms() {
    let det = "    selection_a:\n        A: 1\n    selection_b:\n        B: 1\n    filter:\n        C: 1\n    _helper:\n        D: 1\n";
    let cases: [(&str, Value, bool); 10] = [
        ("1 of selection_*", json!({"B": 1}), true),
        ("all of selection_*", json!({"A": 1}), false),
        ("all of selection_*", json!({"A": 1, "B": 1}), true),
        ("1 of them", json!({"C": 1}), true),
        ("1 of them", json!({"D": 1}), false),
        ("all of them", json!({"A": 1, "B": 1, "C": 1}), true),
        (
            "1 of selection_* and not filter",
            json!({"A": 1, "C": 1}),
            false,
        ),
        (
            "selection_a or selection_b and filter",
            json!({"A": 1}),
            true,
        ),
        (
            "(selection_a or selection_b) and filter",
            json!({"A": 1}),
            false,
        ),
        ("not (selection_a or _helper)", json!({"D": 1}), false),
    ];
    for (cond, event, expected) in cases {
        let e = rule(&format!("{det}    condition: {cond}"));
        assert_eq!(hits(&e, &event), expected, "{cond} on {event}");
    }
    // A list of conditions is or-ed.
    let e = rule(&format!(
        "{det}    condition:\n        - selection_a\n        - filter"
    ));
    assert!(hits(&e, &json!({"C": 1})));
}

#[test]
fn windows_event_shapes_match_through_default_mappings() {
    let yaml = std::fs::read_to_string("tests/fixtures/rules/proc_creation_whoami.yml").unwrap();
    let e = engine(&yaml);
    for fixture in [
        "tests/fixtures/events/sysmon1_attributes_siblings.json",
        "tests/fixtures/events/sysmon1_attributes_nested.json",
    ] {
        let event: Value =
            serde_json::from_str(&std::fs::read_to_string(fixture).unwrap()).unwrap();
        let m = e.match_event(&event, &mut Scratch::default());
        assert_eq!(m.len(), 1, "{fixture}");
        assert!(
            m[0].fields
                .iter()
                .any(|f| f.field == "Image" && f.value.to_lowercase().ends_with("whoami.exe"))
        );
    }
}

#[test]
fn logsource_excludes_other_channels() {
    let yaml = std::fs::read_to_string("tests/fixtures/rules/proc_creation_whoami.yml").unwrap();
    let e = engine(&yaml);
    // Same fields but a Security-channel event: process_creation means Sysmon event 1.
    let event = json!({"Event": {"System": {"Channel": "Security", "EventID": 4688}, "EventData": {"Image": "C:\\Windows\\System32\\whoami.exe"}}});
    assert!(!hits(&e, &event));
}

#[test]
fn meta_filter_suppresses_named_rule() {
    let yaml = "title: base\nid: 6f3e2987-db24-4c78-a860-b4f4095a7095\nlogsource:\n    category: process_creation\n    product: windows\ndetection:\n    selection:\n        Image|endswith: '\\rar.exe'\n    condition: selection\n---\ntitle: Filter Administrator account\nlogsource:\n    category: process_creation\n    product: windows\nfilter:\n    rules:\n        - 6f3e2987-db24-4c78-a860-b4f4095a7095\n    selection:\n        User|startswith: 'adm_'\n    condition: selection\n";
    let e = engine(yaml);
    assert!(hits(&e, &json!({"Image": "C:\\rar.exe", "User": "bob"})));
    assert!(!hits(
        &e,
        &json!({"Image": "C:\\rar.exe", "User": "adm_bob"})
    ));
}

#[test]
fn placeholder_arguments_parse() {
    let mut opts = LoadOptions::default();
    opts.add_placeholder_arg("%Administrators%=adm_*, root")
        .unwrap();
    assert_eq!(
        opts.placeholders["Administrators"],
        vec!["adm_*".to_owned(), "root".to_owned()]
    );
    assert!(opts.add_placeholder_arg("novalue").is_err());
    assert!(opts.add_placeholder_arg("=x").is_err());
    assert!(opts.add_placeholder_arg("Empty=").is_err());
}
