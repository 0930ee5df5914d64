#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Differential property test: random Sigma rules × random events. The compiled engine
//! (shared atoms, per-field Aho-Corasick automata, trigger prefilters, lazy atom cache) must
//! agree with `reference`, a direct interpreter of the parsed rule written straight from
//! the specification, with none of those optimisations.

use gatehouse_detect::condition::Condition;
use gatehouse_detect::engine::{Engine, Scratch};
use gatehouse_detect::rule::{LoadOptions, RuleSet, Selection, SigmaRule};
use gatehouse_detect::value::{CmpOp, FieldTest, Pattern, Tok, ValueMatcher, fold_case};
use proptest::prelude::*;
use serde_json::{Map, Value};

/// The reference interpreter. Deliberately naive: recursive glob matching over characters,
/// field lookup straight from the JSON object, every atom recomputed every time.
mod reference {
    use super::*;

    fn glob(toks: &[Tok], text: &[char]) -> bool {
        match toks.first() {
            None => text.is_empty(),
            Some(Tok::AnyMany) => (0..=text.len()).any(|i| glob(&toks[1..], &text[i..])),
            Some(Tok::AnyOne) => !text.is_empty() && glob(&toks[1..], &text[1..]),
            Some(Tok::Lit(l)) => {
                let l: Vec<char> = l.chars().collect();
                text.len() >= l.len()
                    && text[..l.len()] == l[..]
                    && glob(&toks[1..], &text[l.len()..])
            }
        }
    }

    fn text(v: &Value) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }

    fn number(v: &Value) -> Option<f64> {
        match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    fn values<'a>(event: &'a Map<String, Value>, field: &str) -> Option<Vec<&'a Value>> {
        match event.get(field)? {
            Value::Array(items) if !items.is_empty() => Some(items.iter().collect()),
            v => Some(vec![v]),
        }
    }

    fn one(m: &ValueMatcher, v: &Value) -> bool {
        match m {
            ValueMatcher::Pattern { pattern, cased } => text(v).is_some_and(|t| {
                let t = if *cased { t } else { fold_case(&t) };
                glob(&pattern.toks, &t.chars().collect::<Vec<_>>())
            }),
            ValueMatcher::Regex(r) => text(v).is_some_and(|t| r.is_match(&t)),
            ValueMatcher::Compare {
                op,
                value,
                time_part: None,
            } => number(v).is_some_and(|x| match op {
                CmpOp::Eq => x == *value,
                CmpOp::Lt => x < *value,
                CmpOp::Lte => x <= *value,
                CmpOp::Gt => x > *value,
                CmpOp::Gte => x >= *value,
            }),
            ValueMatcher::Cidr(c) => text(v)
                .and_then(|t| t.parse().ok())
                .is_some_and(|ip| c.contains(ip)),
            _ => false,
        }
    }

    fn matcher(m: &ValueMatcher, field: &str, event: &Map<String, Value>) -> bool {
        let vals = values(event, field);
        match m {
            ValueMatcher::Exists(want) => vals.is_some() == *want,
            ValueMatcher::Null => vals.is_none_or(|vs| vs.iter().any(|v| v.is_null())),
            ValueMatcher::FieldRef { field: other, .. } => {
                let (Some(a), Some(b)) = (vals, values(event, other)) else {
                    return false;
                };
                a.iter().any(|x| {
                    b.iter().any(|y| match (text(x), text(y)) {
                        (Some(p), Some(q)) => fold_case(&p) == fold_case(&q),
                        _ => false,
                    })
                })
            }
            _ => vals.is_some_and(|vs| vs.iter().any(|v| one(m, v))),
        }
    }

    fn leaves(v: &Value, out: &mut Vec<Value>) {
        match v {
            Value::Object(o) => o.values().for_each(|c| leaves(c, out)),
            Value::Array(a) => a.iter().for_each(|c| leaves(c, out)),
            Value::Null => {}
            other => out.push(other.clone()),
        }
    }

    fn test(t: &FieldTest, event: &Map<String, Value>) -> bool {
        let per_value = |alts: &Vec<ValueMatcher>| -> bool {
            alts.iter().any(|m| match &t.field {
                Some(f) => matcher(m, f, event),
                None => {
                    let mut ls = Vec::new();
                    leaves(&Value::Object(event.clone()), &mut ls);
                    ls.iter().any(|l| one(m, l))
                }
            })
        };
        let r = if t.all {
            t.alternatives.iter().all(per_value)
        } else {
            t.alternatives.iter().any(per_value)
        };
        r != t.negate
    }

    fn selection(s: &Selection, event: &Map<String, Value>) -> bool {
        match s {
            Selection::AllOf(tests) => tests.iter().all(|t| test(t, event)),
            Selection::AnyOf(items) => items.iter().any(|i| selection(i, event)),
        }
    }

    fn condition(c: &Condition, rule: &SigmaRule, event: &Map<String, Value>) -> bool {
        match c {
            Condition::Ident(i) => selection(&rule.identifiers[*i].selection, event),
            Condition::Not(x) => !condition(x, rule, event),
            Condition::And(xs) => xs.iter().all(|x| condition(x, rule, event)),
            Condition::Or(xs) => xs.iter().any(|x| condition(x, rule, event)),
            Condition::AtLeast { min, of } => {
                of.iter()
                    .filter(|i| selection(&rule.identifiers[**i].selection, event))
                    .count()
                    >= *min
            }
        }
    }

    pub fn matches(rule: &SigmaRule, event: &Map<String, Value>) -> bool {
        condition(&rule.condition, rule, event)
    }
}

const FIELDS: [&str; 3] = ["A", "B", "C"];

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

fn field_test() -> impl Strategy<Value = (String, Vec<String>)> {
    let strings = prop::sample::select(vec![
        "a", "b", "ab", "ba", "abc", "A", "aB*", "*b", "a?c", "x-y", "-y", "10.0.0.1", "", "a*c",
        "\\*", "é",
    ]);
    let field = prop::sample::select(FIELDS.to_vec());
    let plain = prop_oneof![
        Just(""),
        Just("|contains"),
        Just("|startswith"),
        Just("|endswith"),
        Just("|contains|all"),
        Just("|cased"),
        Just("|contains|cased"),
        Just("|neq"),
        Just("|windash|contains"),
        Just("|endswith|all"),
    ];
    let encoded = (
        field.clone(),
        prop::sample::select(vec![
            "|base64",
            "|base64|contains",
            "|base64offset|contains",
        ]),
        prop::collection::vec(prop::sample::select(vec!["a", "ab", "abc", "x-y"]), 1..3),
    )
        .prop_map(|(f, m, vs)| {
            (
                format!("{f}{m}"),
                vs.iter().map(|v| quote(v)).collect::<Vec<_>>(),
            )
        });
    let string_test =
        (field.clone(), plain, prop::collection::vec(strings, 1..4)).prop_map(|(f, m, vs)| {
            (
                format!("{f}{m}"),
                vs.iter().map(|v| quote(v)).collect::<Vec<_>>(),
            )
        });
    let regexes = prop::sample::select(vec![
        "^a",
        "b+$",
        "a.c",
        "(ab)+",
        "^$",
        "[0-9]",
        "abab",
        "(?i)baba",
        r"\bAbab\b",
    ]);
    let re_test = (
        field.clone(),
        prop::sample::select(vec!["|re", "|re|i"]),
        prop::collection::vec(regexes, 1..3),
    )
        .prop_map(|(f, m, vs)| (format!("{f}{m}"), vs.iter().map(|v| quote(v)).collect()));
    let num_test = (
        field.clone(),
        prop::sample::select(vec!["|gt", "|gte", "|lt", "|lte"]),
        0i64..12,
    )
        .prop_map(|(f, m, n)| (format!("{f}{m}"), vec![n.to_string()]));
    let exists_test = (field.clone(), any::<bool>())
        .prop_map(|(f, b)| (format!("{f}|exists"), vec![b.to_string()]));
    let null_test = field
        .clone()
        .prop_map(|f| (f.to_owned(), vec!["null".to_owned()]));
    let cidr_test = (
        field.clone(),
        prop::sample::select(vec!["10.0.0.0/8", "10.0.0.1/32", "::1/128"]),
    )
        .prop_map(|(f, c)| (format!("{f}|cidr"), vec![quote(c)]));
    let ref_test = (field.clone(), prop::sample::select(FIELDS.to_vec()))
        .prop_map(|(f, o)| (format!("{f}|fieldref"), vec![o.to_owned()]));
    let int_test = (field, 0i64..4).prop_map(|(f, n)| (f.to_owned(), vec![n.to_string()]));
    prop_oneof![6 => string_test, 1 => encoded, 2 => re_test, 2 => num_test, 1 => exists_test, 1 => null_test, 1 => cidr_test, 1 => ref_test, 1 => int_test]
}

fn selection_yaml() -> impl Strategy<Value = String> {
    let map = || prop::collection::vec(field_test(), 1..3);
    let render_map = |tests: Vec<(String, Vec<String>)>, indent: &str| -> String {
        let mut seen = std::collections::HashSet::new();
        let mut out = String::new();
        for (k, vs) in tests {
            if !seen.insert(k.clone()) {
                continue;
            }
            if vs.len() == 1 {
                out.push_str(&format!("{indent}{k}: {}\n", vs[0]));
            } else {
                out.push_str(&format!("{indent}{k}:\n"));
                for v in vs {
                    out.push_str(&format!("{indent}    - {v}\n"));
                }
            }
        }
        out
    };
    let keywords = prop::collection::vec(
        prop::sample::select(vec!["ab", "b*c", "x-y", "A", "ke", "xi"]),
        1..3,
    )
    .prop_map(|ks| {
        ks.iter()
            .map(|k| format!("        - {}\n", quote(k)))
            .collect::<String>()
    });
    prop_oneof![
        4 => map().prop_map(move |m| render_map(m, "        ")),
        2 => prop::collection::vec(map(), 2..3).prop_map(move |ms| {
            ms.into_iter().map(|m| {
                let body = render_map(m, "          ");
                format!("        - {}", body.trim_start())
            }).collect::<String>()
        }),
        1 => keywords,
    ]
}

fn condition_text(n: usize) -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        (0..n).prop_map(|i| format!("sel{i}")),
        Just("1 of sel*".to_owned()),
        Just("all of sel*".to_owned()),
        Just("1 of them".to_owned()),
        Just("all of them".to_owned()),
    ];
    leaf.prop_recursive(3, 12, 2, |inner| {
        prop_oneof![
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} and {b}")),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| format!("{a} or {b}")),
            inner.clone().prop_map(|a| format!("not {a}")),
            inner.prop_map(|a| format!("({a})")),
        ]
    })
}

fn rule_yaml() -> impl Strategy<Value = String> {
    (1usize..4)
        .prop_flat_map(|n| {
            (
                prop::collection::vec(selection_yaml(), n),
                condition_text(n),
            )
        })
        .prop_map(|(sels, cond)| {
            let mut s = String::from("title: random\nlogsource:\n    product: test\ndetection:\n");
            for (i, body) in sels.iter().enumerate() {
                s.push_str(&format!("    sel{i}:\n{body}"));
            }
            s.push_str(&format!("    condition: {cond}\n"));
            s
        })
}

fn event() -> impl Strategy<Value = Map<String, Value>> {
    let scalar = prop_oneof![
        "[abAB\\-/ xyc]{0,5}".prop_map(Value::String),
        prop::sample::select(vec![
            "10.1.2.3",
            "10.0.0.1",
            "::1",
            "YWI=",
            "ab",
            "x-y",
            "x/y",
            "x\u{2013}y",
            "é",
            "É",
            "first\nab",
            // Non-ASCII characters whose lowercase is (or contains) ASCII: the raw keyword
            // prefilter must not miss them.
            "\u{212A}ey",
            "x\u{130}y",
            "a\u{212A}"
        ])
        .prop_map(|s| Value::String(s.to_owned())),
        (0i64..12).prop_map(Value::from),
        Just(Value::Null),
    ];
    let value = prop_oneof![4 => scalar.clone(), 1 => prop::collection::vec(scalar, 0..3).prop_map(Value::Array)];
    prop::collection::btree_map(prop::sample::select(FIELDS.to_vec()), value, 0..4)
        .prop_map(|m| m.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn compiled_engine_agrees_with_reference_interpreter(
        rules in prop::collection::vec(rule_yaml(), 1..5),
        events in prop::collection::vec(event(), 1..8),
    ) {
        let mut set = RuleSet::default();
        set.add_text("random.yml", &rules.join("---\n"), &LoadOptions::default());
        prop_assert!(set.problems.is_empty(), "generated rule did not load: {:?}\n{}", set.problems, rules.join("---\n"));
        let engine = Engine::compile(&set);
        let mut scratch = Scratch::default();
        for e in &events {
            let doc = Value::Object(e.clone());
            let mut got: Vec<usize> = engine.match_event(&doc, &mut scratch).iter().map(|m| m.rule).collect();
            got.sort_unstable();
            // The raw-text keyword prefilter must never change the answer.
            let raw = serde_json::to_vec(&doc).unwrap();
            let mut with_raw: Vec<usize> = engine.match_event_raw(&doc, Some(&raw), &mut scratch).iter().map(|m| m.rule).collect();
            with_raw.sort_unstable();
            prop_assert_eq!(&with_raw, &got, "raw prefilter changed the result for {}", doc);
            // The scanned-line path (no DOM) must give the same matches, compact or pretty.
            for text in [raw.clone(), serde_json::to_vec_pretty(&doc).unwrap()] {
                let mut scanned: Vec<usize> = engine.match_json_line(&text, &mut scratch).unwrap().matches.iter().map(|m| m.rule).collect();
                scanned.sort_unstable();
                prop_assert_eq!(&scanned, &got, "scanned line changed the result for {}", doc);
            }
            let want: Vec<usize> = set.rules.iter().enumerate().filter(|(_, r)| reference::matches(r, e)).map(|(i, _)| i).collect();
            prop_assert_eq!(&got, &want, "event {}\nrules:\n{}", doc, rules.join("---\n"));
        }
    }
}

#[test]
fn reference_glob_sanity() {
    // The oracle itself must be right on the specification's examples.
    let p = Pattern::parse("antivirus_V*.exe");
    let chars: Vec<char> = "antivirus_V21.2.1.exe".chars().collect();
    assert!(reference_glob(&p, &chars));
    assert!(!reference_glob(
        &Pattern::parse("prog?.exe"),
        &"prog.exe".chars().collect::<Vec<_>>()
    ));
}

fn reference_glob(p: &Pattern, text: &[char]) -> bool {
    let event: Map<String, Value> = [("A".to_owned(), Value::String(text.iter().collect()))]
        .into_iter()
        .collect();
    let rule_text = format!(
        "title: g\nlogsource:\n    product: test\ndetection:\n    s:\n        A|cased: {}\n    condition: s\n",
        quote(
            &p.toks
                .iter()
                .map(|t| match t {
                    Tok::Lit(l) => l
                        .replace('\\', "\\\\")
                        .replace('*', "\\*")
                        .replace('?', "\\?"),
                    Tok::AnyOne => "?".into(),
                    Tok::AnyMany => "*".into(),
                })
                .collect::<String>()
        )
    );
    let mut set = RuleSet::default();
    set.add_text("g.yml", &rule_text, &LoadOptions::default());
    reference::matches(&set.rules[0], &event)
}
