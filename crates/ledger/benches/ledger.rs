//! Ledger throughput, each beside its baseline in the same run:
//! - `audit_verify`: offline verification of an export (MB/s) beside plain SHA-256 of the same
//!   bytes (the goal: verify ≥ 70 % of `sha256sum`; `scripts/bench-ledger` adds the
//!   `sha256sum` binary itself);
//! - `merkle_append`: compact-range appends and full ledger appends (encode + hash) per second;
//! - `envelope`: seal and open throughput for small and large objects.

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use gatehouse_ledger::envelope::{Kek, KekId, Keyring};
use gatehouse_ledger::merkle::{CompactRange, leaf_hash};
use gatehouse_ledger::{
    AuditOutcome, AuditRecord, Ledger, LogSigningKey, export, open, seal, verify,
};
use jiff::Timestamp;
use sha2::{Digest, Sha256};

fn record(i: u64) -> AuditRecord {
    AuditRecord {
        at: Timestamp::from_second(1_800_000_000 + i as i64).unwrap_or(Timestamp::UNIX_EPOCH),
        actor: format!("user:engineer-{}", i % 17),
        action: "release.approve".to_owned(),
        target: format!("release:0192f3a4-7b1c-7d2e-9f00-{:012x}", i / 3),
        outcome: AuditOutcome::Succeeded,
        detail: serde_json::json!({
            "service": "payments",
            "version": format!("1.{}.{}", i / 100, i % 100),
            "reason": "gate verdict recorded by the release pipeline",
            "request_id": format!("{:032x}", i.wrapping_mul(0x9e37_79b9_7f4a_7c15)),
        }),
    }
}

/// An export of `n` entries with a signed head every 1000 entries and at the end.
fn export_bytes(n: u64) -> (Vec<u8>, LogSigningKey) {
    let key = LogSigningKey::from_secret_bytes(&[7; 32]);
    let mut ledger = Ledger::new();
    let mut entries = Vec::new();
    let mut heads = Vec::new();
    for i in 0..n {
        let appended = ledger.append(record(i));
        entries.push(appended.encoded);
        if appended.tree_size.is_multiple_of(1000) || appended.tree_size == n {
            heads.push(ledger.sign_head(&key, appended.entry.record.at));
        }
    }
    let mut out = Vec::new();
    if let Err(e) = export(&entries, &heads, &[key.verifying_key()], &mut out) {
        eprintln!("export failed: {e}");
    }
    (out, key)
}

fn audit_verify(c: &mut Criterion) {
    let (bytes, key) = export_bytes(50_000);
    let trusted = [key.verifying_key()];
    let mut group = c.benchmark_group("audit_verify");
    group.throughput(Throughput::Bytes(bytes.len() as u64));
    group.bench_function("sha256_same_bytes", |b| {
        b.iter(|| black_box(Sha256::digest(black_box(&bytes))));
    });
    group.bench_function("verify_export", |b| {
        b.iter(|| {
            let report = verify(black_box(bytes.as_slice()), Some(&trusted));
            black_box(report.map(|r| r.is_intact()))
        });
    });
    group.finish();
}

fn merkle_append(c: &mut Criterion) {
    const N: u64 = 100_000;
    let leaves: Vec<_> = (0..N).map(|i| leaf_hash(&i.to_be_bytes())).collect();
    let records: Vec<AuditRecord> = (0..10_000).map(record).collect();
    let mut group = c.benchmark_group("merkle_append");
    group.throughput(Throughput::Elements(N));
    group.bench_function("compact_range_append_leaf_hash", |b| {
        b.iter(|| {
            let mut range = CompactRange::new();
            for leaf in &leaves {
                range.append(*leaf);
            }
            black_box(range.root())
        });
    });
    group.throughput(Throughput::Elements(records.len() as u64));
    group.bench_function("ledger_append_record", |b| {
        b.iter_batched(
            || records.clone(),
            |records| {
                let mut ledger = Ledger::new();
                for r in records {
                    black_box(ledger.append(r).leaf_hash);
                }
                black_box(ledger.root())
            },
            criterion::BatchSize::LargeInput,
        );
    });
    group.finish();
}

fn envelope(c: &mut Criterion) {
    let Ok(id) = KekId::new("kek-bench") else {
        return;
    };
    let kek = Kek::from_bytes(id, Timestamp::UNIX_EPOCH, &[3; 32]);
    let mut ring = Keyring::new();
    if ring
        .insert(Kek::from_bytes(
            kek.id().clone(),
            Timestamp::UNIX_EPOCH,
            &[3; 32],
        ))
        .is_err()
    {
        return;
    }
    let mut group = c.benchmark_group("envelope");
    for size in [4 << 10, 1 << 20] {
        let plaintext = vec![0x5a_u8; size];
        group.throughput(Throughput::Bytes(size as u64));
        group.bench_with_input(BenchmarkId::new("seal", size), &plaintext, |b, p| {
            b.iter(|| black_box(seal(b"evidence:1", p, &kek).map(|s| s.ciphertext.len())));
        });
        let Ok(sealed) = seal(b"evidence:1", &plaintext, &kek) else {
            return;
        };
        group.bench_with_input(BenchmarkId::new("open", size), &sealed, |b, s| {
            b.iter(|| black_box(open(b"evidence:1", s, &ring).map(|p| p.len())));
        });
    }
    group.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
}

criterion_group! {
    name = benches;
    config = config();
    targets = audit_verify, merkle_append, envelope
}
criterion_main!(benches);
