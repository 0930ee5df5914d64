#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Export and offline verification: an intact export verifies, and every kind of tampering
//! (modified, deleted, inserted, reordered entries; bad signatures; unsigned tails; garbage) is
//! detected and named by seq and line.

use gatehouse_ledger::export::{ExportError, KeyTrust, MAX_LINE_BYTES};
use gatehouse_ledger::merkle::leaf_hash;
use gatehouse_ledger::{
    AuditOutcome, AuditRecord, Ledger, LogSigningKey, Problem, SignedTreeHead, VerifyReport,
    export, verify,
};
use jiff::Timestamp;
use proptest::prelude::*;

/// The demo key `examples/audit_file.rs` signs the fixtures with.
fn demo_key() -> LogSigningKey {
    LogSigningKey::from_secret_bytes(&[7; 32])
}

fn fixture(name: &str) -> VerifyReport {
    let path = format!(
        "{}/tests/fixtures/export/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    let file = std::fs::File::open(&path).unwrap();
    verify(file, Some(&[demo_key().verifying_key()])).unwrap()
}

fn record(i: u64) -> AuditRecord {
    AuditRecord {
        at: Timestamp::from_second(1_800_000_000 + i as i64).unwrap(),
        actor: format!("user:u{}", i % 5),
        action: "release.approve".into(),
        target: format!("release:{i}"),
        outcome: if i.is_multiple_of(7) {
            AuditOutcome::Denied
        } else {
            AuditOutcome::Succeeded
        },
        detail: serde_json::json!({"n": i, "note": "line\nbreak is escaped"}),
    }
}

/// A log of `n` entries with a head every `every` entries and one at the end.
fn build(n: u64, every: u64) -> (Vec<Vec<u8>>, Vec<SignedTreeHead>, LogSigningKey, Ledger) {
    let key = LogSigningKey::from_secret_bytes(&[42; 32]);
    let mut ledger = Ledger::new();
    let mut entries = Vec::new();
    let mut heads = Vec::new();
    for i in 0..n {
        let appended = ledger.append(record(i));
        entries.push(appended.encoded);
        if appended.tree_size.is_multiple_of(every) || appended.tree_size == n {
            heads.push(ledger.sign_head(&key, appended.entry.record.at));
        }
    }
    (entries, heads, key, ledger)
}

fn export_lines(n: u64, every: u64) -> (Vec<String>, LogSigningKey, Ledger) {
    let (entries, heads, key, ledger) = build(n, every);
    let mut out = Vec::new();
    export(&entries, &heads, &[key.verifying_key()], &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    (text.lines().map(str::to_owned).collect(), key, ledger)
}

fn check(lines: &[String], key: &LogSigningKey) -> VerifyReport {
    let mut text = lines.join("\n");
    text.push('\n');
    verify(text.as_bytes(), Some(&[key.verifying_key()])).unwrap()
}

/// Index (0-based) of the line holding entry `seq`.
fn line_of(lines: &[String], seq: u64) -> usize {
    let prefix = format!("{{\"seq\":{seq},");
    lines.iter().position(|l| l.starts_with(&prefix)).unwrap()
}

fn first(report: &VerifyReport) -> (u64, Problem) {
    let f = report
        .findings
        .first()
        .unwrap_or_else(|| panic!("no findings:\n{report}"));
    (f.line, f.problem.clone())
}

/// `intact.jsonl` was written by an earlier build (`examples/audit_file sample … 10 4`). If it
/// stops verifying, the canonical entry bytes, the tree hashing or the signed head bytes changed,
/// and every log already written would stop verifying too.
#[test]
fn intact_fixture_verifies_against_the_trusted_key() {
    let report = fixture("intact.jsonl");
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.entries, 10);
    assert_eq!(report.heads_verified, 3);
    assert_eq!(report.key_trust, KeyTrust::TrustedKeys);
    assert_eq!(report.last_verified_head.unwrap().tree_size, 10);
}

#[test]
fn fixture_modified_entry_names_seq_5() {
    let report = fixture("modified_entry_seq5.jsonl");
    assert!(!report.is_intact());
    let (line, problem) = first(&report);
    assert_eq!(line, 8);
    assert!(
        matches!(
            problem,
            Problem::Modified {
                seq: Some(5),
                linked_by_seq: Some(6),
                linked_by_line: 9
            }
        ),
        "{report}"
    );
    assert!(
        report.to_string().contains("entry seq 5 was modified"),
        "{report}"
    );
}

#[test]
fn fixture_deleted_entry_names_seq_6() {
    let report = fixture("deleted_entry_seq6.jsonl");
    let (line, problem) = first(&report);
    assert_eq!(line, 9);
    assert_eq!(
        problem,
        Problem::Deleted {
            first_seq: 6,
            last_seq: 6
        },
        "{report}"
    );
}

#[test]
fn fixture_inserted_entry_names_the_forged_line() {
    // The forger even computed a correct `prev` for the inserted entry.
    let report = fixture("inserted_entry_after_seq6.jsonl");
    let (line, problem) = first(&report);
    assert_eq!(line, 10);
    assert!(
        matches!(problem, Problem::Inserted { seq: Some(7), .. }),
        "{report}"
    );
}

#[test]
fn fixture_reordered_entries_are_named() {
    let report = fixture("reordered_seq2_seq3.jsonl");
    let (line, problem) = first(&report);
    assert_eq!(line, 5);
    assert_eq!(
        problem,
        Problem::Reordered {
            seq: Some(2),
            belongs_before_seq: Some(3),
            belongs_before_line: 4
        },
        "{report}"
    );
}

#[test]
fn fixture_bad_signature_names_the_head() {
    let report = fixture("bad_signature_head8.jsonl");
    assert_eq!(report.findings.len(), 1, "{report}");
    let (line, problem) = first(&report);
    assert_eq!(line, 12);
    assert!(
        matches!(problem, Problem::HeadBadSignature { tree_size: 8, .. }),
        "{report}"
    );
}

#[test]
fn export_round_trip_reports_the_ledger_root() {
    let (lines, key, ledger) = export_lines(100, 16);
    let report = check(&lines, &key);
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.root, ledger.root());
    assert_eq!(report.entries, 100);
    assert_eq!(report.heads_verified, 7);
}

#[test]
fn embedded_keys_are_used_when_no_trusted_keys_are_given_and_the_report_says_so() {
    let (lines, _, _) = export_lines(5, 2);
    let text = lines.join("\n");
    let report = verify(text.as_bytes(), None).unwrap();
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.key_trust, KeyTrust::EmbeddedKeys);
    assert!(report.to_string().contains("keys embedded in the file"));
}

#[test]
fn a_file_re_signed_with_another_key_fails_against_the_trusted_key() {
    // An attacker who rewrites the log and signs it with their own key, embedding that key.
    let (lines, _, _) = export_lines(6, 3);
    let trusted = LogSigningKey::from_secret_bytes(&[1; 32]);
    let report = check(&lines, &trusted);
    assert!(!report.is_intact());
    assert!(
        report
            .findings
            .iter()
            .any(|f| matches!(f.problem, Problem::HeadUntrustedKey { tree_size: 3, .. })),
        "{report}"
    );
}

#[test]
fn modified_middle_entry_is_named() {
    let (mut lines, key, _) = export_lines(50, 10);
    let i = line_of(&lines, 23);
    lines[i] = lines[i].replace("\"release:22\"", "\"release:999\"");
    let report = check(&lines, &key);
    let (line, problem) = first(&report);
    assert_eq!(line, i as u64 + 1);
    assert!(
        matches!(problem, Problem::Modified { seq: Some(23), .. }),
        "{report}"
    );
    assert!(report.findings.iter().any(|f| matches!(
        f.problem,
        Problem::HeadRootMismatch {
            tree_size: 30,
            first_suspect_seq: 21,
            ..
        }
    )));
}

#[test]
fn modified_last_entry_is_caught_by_the_final_head_and_its_range_named() {
    let (mut lines, key, _) = export_lines(20, 8);
    let i = line_of(&lines, 20);
    lines[i] = lines[i].replace("\"user:u4\"", "\"user:root\"");
    let report = check(&lines, &key);
    assert!(!report.is_intact());
    let (_, problem) = first(&report);
    assert!(
        matches!(
            problem,
            Problem::HeadRootMismatch {
                tree_size: 20,
                first_suspect_seq: 17,
                ..
            }
        ),
        "{report}"
    );
}

#[test]
fn altered_seq_number_is_named_by_line() {
    let (mut lines, key, _) = export_lines(12, 4);
    let i = line_of(&lines, 6);
    lines[i] = lines[i].replacen("{\"seq\":6,", "{\"seq\":60,", 1);
    let report = check(&lines, &key);
    let (line, problem) = first(&report);
    assert_eq!(line, i as u64 + 1);
    assert!(
        matches!(
            problem,
            Problem::Modified {
                seq: Some(60),
                linked_by_seq: Some(7),
                ..
            }
        ),
        "{report}"
    );
}

#[test]
fn deleting_the_first_entries_is_named() {
    let (mut lines, key, _) = export_lines(12, 4);
    let i = line_of(&lines, 1);
    lines.remove(i);
    lines.remove(i);
    let report = check(&lines, &key);
    let (_, problem) = first(&report);
    assert_eq!(
        problem,
        Problem::Deleted {
            first_seq: 1,
            last_seq: 2
        },
        "{report}"
    );
}

#[test]
fn deleting_the_last_entry_is_named_by_the_head_that_follows() {
    let (mut lines, key, _) = export_lines(12, 5);
    let i = line_of(&lines, 12);
    lines.remove(i);
    let report = check(&lines, &key);
    assert!(
        report.findings.iter().any(|f| matches!(
            f.problem,
            Problem::HeadMisplaced {
                tree_size: 12,
                entries_before: 11,
                max_seq: Some(11)
            }
        )),
        "{report}"
    );
    assert!(
        report
            .to_string()
            .contains("entries seq 12..=12 are missing"),
        "{report}"
    );
}

#[test]
fn duplicated_entry_line_is_named_as_inserted() {
    let (mut lines, key, _) = export_lines(12, 4);
    let i = line_of(&lines, 6);
    let copy = lines[i].clone();
    lines.insert(i + 1, copy);
    let report = check(&lines, &key);
    let (line, problem) = first(&report);
    assert_eq!(line, i as u64 + 2);
    assert_eq!(
        problem,
        Problem::Inserted {
            seq: Some(6),
            same_seq_at_line: Some(i as u64 + 1)
        },
        "{report}"
    );
}

#[test]
fn entry_moved_far_back_is_named_as_reordered() {
    let (mut lines, key, _) = export_lines(40, 100);
    let i = line_of(&lines, 3);
    let moved = lines.remove(i);
    let j = line_of(&lines, 30);
    lines.insert(j + 1, moved);
    let report = check(&lines, &key);
    let (_, problem) = first(&report);
    assert!(
        matches!(
            problem,
            Problem::Reordered {
                seq: Some(3),
                belongs_before_seq: Some(4),
                ..
            }
        ),
        "{report}"
    );
}

#[test]
fn entries_appended_after_the_last_head_are_unsigned() {
    let (entries, heads, key, mut ledger) = build(10, 5);
    let extra = ledger.append(record(10));
    let mut all = entries.clone();
    all.push(extra.encoded);
    let mut out = Vec::new();
    export(&all, &heads, &[key.verifying_key()], &mut out).unwrap();
    let report = verify(out.as_slice(), Some(&[key.verifying_key()])).unwrap();
    assert!(!report.is_intact());
    assert_eq!(report.findings.len(), 1, "{report}");
    assert_eq!(
        report.findings[0].problem,
        Problem::Unsigned {
            first_seq: Some(11),
            last_seq: Some(11)
        }
    );
}

#[test]
fn truncated_signature_and_garbage_lines_are_named_without_panicking() {
    let (mut lines, key, _) = export_lines(8, 4);
    let head = lines
        .iter()
        .position(|l| l.starts_with("{\"head\":"))
        .unwrap();
    lines[head] = lines[head].replace("\"signature\":\"", "\"signature\":\"AAAA");
    lines.insert(4, "not json at all".to_owned());
    lines.insert(5, String::new());
    let report = check(&lines, &key);
    let lines_named: Vec<u64> = report.findings.iter().map(|f| f.line).collect();
    assert!(
        lines_named.contains(&5) && lines_named.contains(&6),
        "{report}"
    );
    assert!(
        report.findings.iter().any(
            |f| matches!(&f.problem, Problem::Malformed { reason } if reason.contains("signature"))
        ),
        "{report}"
    );
}

#[test]
fn missing_header_empty_file_and_overlong_line() {
    let (lines, key, _) = export_lines(3, 3);
    let report = check(&lines[1..], &key);
    assert_eq!(first(&report), (1, Problem::MissingHeader));

    let empty = verify(&b""[..], None).unwrap();
    assert!(!empty.is_intact());
    assert!(
        empty
            .findings
            .iter()
            .any(|f| f.problem == Problem::NoVerifiedHead)
    );

    let mut long = lines.clone();
    long.insert(2, "x".repeat(MAX_LINE_BYTES + 10));
    let report = check(&long, &key);
    assert_eq!(first(&report), (3, Problem::LineTooLong), "{report}");
    assert_eq!(
        report.heads_verified, 1,
        "records after the long line are still read"
    );
}

#[test]
fn empty_log_with_a_head_at_size_zero_verifies() {
    let key = LogSigningKey::from_secret_bytes(&[5; 32]);
    let head = Ledger::new().sign_head(&key, Timestamp::UNIX_EPOCH);
    let mut out = Vec::new();
    export(
        Vec::<Vec<u8>>::new(),
        &[head],
        &[key.verifying_key()],
        &mut out,
    )
    .unwrap();
    let report = verify(out.as_slice(), Some(&[key.verifying_key()])).unwrap();
    assert!(report.is_intact(), "{report}");
}

#[test]
fn export_refuses_inconsistent_input() {
    let (entries, heads, key, _) = build(4, 2);
    let err = export(&entries[..3], &heads, &[key.verifying_key()], Vec::new()).unwrap_err();
    assert!(
        matches!(
            err,
            ExportError::HeadBeyondEntries {
                tree_size: 4,
                entries: 3
            }
        ),
        "{err}"
    );
    let err = export(&entries, &heads, &[], Vec::new()).unwrap_err();
    assert!(err.to_string().contains(key.key_id().as_str()), "{err}");
    let mut broken = entries.clone();
    broken[1].push(b'\n');
    let err = export(&broken, &heads, &[key.verifying_key()], Vec::new()).unwrap_err();
    assert!(
        matches!(err, ExportError::EntryHasLineBreak { index: 1 }),
        "{err}"
    );
}

#[derive(Debug, Clone)]
enum Tamper {
    Modify,
    Delete,
    InsertForged,
    Duplicate,
    SwapWithNext,
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Any single tampering anywhere is detected, and some finding names the tampered entry:
    /// by seq, by line, or (for the last entries, which no later entry links to) by a signed
    /// head whose suspect range holds it.
    #[test]
    fn any_single_tampering_is_detected_and_named(
        n in 2u64..60,
        every in 1u64..12,
        pick in any::<prop::sample::Index>(),
        tamper in prop_oneof![
            Just(Tamper::Modify), Just(Tamper::Delete), Just(Tamper::InsertForged),
            Just(Tamper::Duplicate), Just(Tamper::SwapWithNext)
        ],
    ) {
        let (mut lines, key, _) = export_lines(n, every);
        let seq = pick.index(n as usize) as u64 + 1;
        let i = line_of(&lines, seq);
        let named_line = (i + 1) as u64;
        match tamper {
            Tamper::Modify => lines[i] = lines[i].replace("\"release.approve\"", "\"release.reject\""),
            Tamper::Delete => { lines.remove(i); }
            Tamper::InsertForged => {
                let prev = leaf_hash(lines[i].as_bytes());
                let forged = format!(
                    "{{\"seq\":{},\"prev\":\"{prev}\",\"at\":\"2027-01-01T00:00:00Z\",\"actor\":\"user:mallory\",\"action\":\"release.approve\",\"target\":\"release:x\",\"outcome\":\"succeeded\",\"detail\":{{}}}}",
                    seq + 1
                );
                lines.insert(i + 1, forged);
            }
            Tamper::Duplicate => { let copy = lines[i].clone(); lines.insert(i + 1, copy); }
            Tamper::SwapWithNext => {
                if seq == n { return Ok(()); }
                let j = line_of(&lines, seq + 1);
                lines.swap(i, j);
            }
        }
        let report = check(&lines, &key);
        prop_assert!(!report.is_intact(), "{:?} of seq {} went unnoticed", tamper, seq);
        let named = report.findings.iter().any(|f| match &f.problem {
            Problem::Modified { seq: Some(s), .. } => *s == seq,
            Problem::Deleted { first_seq, last_seq } => (*first_seq..=*last_seq).contains(&seq),
            Problem::Inserted { .. } => f.line == named_line + 1,
            Problem::Reordered { seq: Some(s), belongs_before_seq: Some(b), .. } => *s == seq || *b == seq,
            Problem::HeadRootMismatch { tree_size, first_suspect_seq, .. } =>
                (*first_suspect_seq..=*tree_size).contains(&seq),
            Problem::HeadMisplaced { .. } => seq == n,
            Problem::Unsigned { .. } => f.line == named_line + 1,
            _ => false,
        });
        prop_assert!(named, "{:?} of seq {} not named:\n{}", tamper, seq, report);
    }
}

#[test]
fn report_serialises_to_json_with_kind_and_message() {
    let report = fixture("modified_entry_seq5.jsonl");
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["key_trust"], "trusted_keys");
    let first = &json["findings"][0];
    assert_eq!(first["line"], 8);
    assert_eq!(first["kind"], "modified");
    assert_eq!(first["seq"], 5);
    assert!(
        first["message"]
            .as_str()
            .unwrap()
            .contains("entry seq 5 was modified")
    );
}

#[test]
fn crlf_converted_file_is_diagnosed_once() {
    let (lines, key, _) = export_lines(6, 3);
    let text = lines.join("\r\n") + "\r\n";
    let report = verify(text.as_bytes(), Some(&[key.verifying_key()])).unwrap();
    assert!(!report.is_intact());
    let crlf: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.problem == Problem::CrlfLineEndings)
        .collect();
    assert_eq!(crlf.len(), 1, "{report}");
    assert_eq!(crlf[0].line, 1);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    /// Random bit flips anywhere never make the verifier panic; a flip inside an entry line is
    /// always detected. (A flip elsewhere may be harmless, e.g. the case of a hex digit in a
    /// head's root, which parses to the same hash.)
    #[test]
    fn bit_flips_never_panic_and_entry_flips_are_detected(
        flips in prop::collection::vec((any::<prop::sample::Index>(), 0u8..8), 1..4),
    ) {
        let (lines, key, _) = export_lines(20, 6);
        let mut bytes = (lines.join("\n") + "\n").into_bytes();
        let mut entry_touched = false;
        for (at, bit) in &flips {
            let pos = at.index(bytes.len());
            let line_start = bytes[..pos].iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
            entry_touched |= bytes[line_start..].starts_with(b"{\"seq\":");
            bytes[pos] ^= 1 << bit;
        }
        let report = verify(bytes.as_slice(), Some(&[key.verifying_key()])).unwrap();
        if entry_touched {
            prop_assert!(!report.is_intact(), "flips {:?} went unnoticed", flips);
        }
    }
}

#[test]
fn every_entry_modified_names_each_one_even_past_the_window_index_threshold() {
    // Hundreds of broken links switch the verifier to its indexed lookups; the naming must
    // not change.
    let (lines, key, _) = export_lines(300, 50);
    let tampered: Vec<String> = lines
        .iter()
        .map(|l| l.replace("\"release.approve\"", "\"release.reject\""))
        .collect();
    let report = check(&tampered, &key);
    let modified: Vec<u64> = report
        .findings
        .iter()
        .filter_map(|f| match f.problem {
            Problem::Modified { seq: Some(s), .. } => Some(s),
            _ => None,
        })
        .collect();
    assert_eq!(modified, (1..300).collect::<Vec<u64>>(), "{report}");
}

#[test]
fn a_log_whose_signing_key_was_rotated_verifies_with_both_keys() {
    let (old, new) = (
        LogSigningKey::from_secret_bytes(&[10; 32]),
        LogSigningKey::from_secret_bytes(&[11; 32]),
    );
    let mut ledger = Ledger::new();
    let mut entries = Vec::new();
    let mut heads = Vec::new();
    for i in 0..10 {
        entries.push(ledger.append(record(i)).encoded);
        if ledger.tree_size() == 5 {
            heads.push(ledger.sign_head(&old, Timestamp::UNIX_EPOCH));
        }
    }
    heads.push(ledger.sign_head(&new, Timestamp::UNIX_EPOCH));
    let mut out = Vec::new();
    export(
        &entries,
        &heads,
        &[old.verifying_key(), new.verifying_key()],
        &mut out,
    )
    .unwrap();

    let both = [old.verifying_key(), new.verifying_key()];
    let report = verify(out.as_slice(), Some(&both)).unwrap();
    assert!(report.is_intact(), "{report}");
    assert_eq!(report.heads_verified, 2);

    // Trusting only the new key leaves the old head unverified, and says which key it was.
    let report = verify(out.as_slice(), Some(&[new.verifying_key()])).unwrap();
    assert!(!report.is_intact());
    assert!(
        report.findings.iter().any(|f| matches!(
            &f.problem,
            Problem::HeadUntrustedKey { tree_size: 5, key_id } if key_id == old.key_id()
        )),
        "{report}"
    );
}

/// `export_as_stored` is what `gatehouse audit export` writes from a store that may have been
/// tampered with: identical to `export` for an intact log, and it still writes a file (that
/// fails verification, naming what is missing) when rows were deleted.
#[test]
fn export_as_stored_matches_export_and_exports_deleted_rows() {
    let (entries, heads, key, _) = build(12, 4);
    let mut strict = Vec::new();
    export(&entries, &heads, &[key.verifying_key()], &mut strict).unwrap();
    let mut stored = Vec::new();
    gatehouse_ledger::export_as_stored(&entries, &heads, &[key.verifying_key()], &mut stored)
        .unwrap();
    assert_eq!(stored, strict);

    // Entry seq 6 deleted from the store.
    let mut missing_middle = entries.clone();
    missing_middle.remove(5);
    let mut out = Vec::new();
    gatehouse_ledger::export_as_stored(&missing_middle, &heads, &[key.verifying_key()], &mut out)
        .unwrap();
    let report = verify(out.as_slice(), Some(&[key.verifying_key()])).unwrap();
    assert!(!report.is_intact(), "{report}");
    assert!(
        report.findings.iter().any(|f| matches!(
            f.problem,
            Problem::Deleted {
                first_seq: 6,
                last_seq: 6
            }
        )),
        "{report}"
    );

    // The last two entries deleted: the head at 12 is written at the end and names the gap.
    let mut out = Vec::new();
    gatehouse_ledger::export_as_stored(&entries[..10], &heads, &[key.verifying_key()], &mut out)
        .unwrap();
    let report = verify(out.as_slice(), Some(&[key.verifying_key()])).unwrap();
    assert!(!report.is_intact(), "{report}");
    assert!(
        report.findings.iter().any(|f| matches!(
            f.problem,
            Problem::HeadMisplaced {
                tree_size: 12,
                entries_before: 10,
                ..
            }
        )),
        "{report}"
    );
}
