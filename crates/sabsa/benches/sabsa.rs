#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! SABSA export and validation of a generated 10,000-document pack (target: < 1 s each).
//!
//! Run: `cargo bench -p gatehouse-sabsa --bench sabsa`. The pack is the example pack's identity
//! and on-call files plus 10,000 generated operational documents (controls, alerts, runbooks,
//! playbooks, maintenance tasks, KPIs and improvements, each with traces), so every reference
//! resolves and the pack lints clean.

use std::fmt::Write as _;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use gatehouse_sabsa::export::{export, to_json, to_markdown};
use gatehouse_sabsa::{trace, validate};

const DOCUMENTS: usize = 10_000;
const KINDS: usize = 7;

fn generated_pack() -> String {
    let mut out = String::new();
    for i in 0..DOCUMENTS / KINDS + 1 {
        let _ = write!(
            out,
            r#"---
kind: Control
id: CTL-{i}
title: Generated control {i}
standards: [NIST SP 800-53 SI-4]
owner: security-operations
traces:
  - to: POL-2026-001.component.5-1
    rel: derives_from
sabsa: {{ column: What, layer: Physical }}
---
kind: Alert
id: ALERT-{i}
title: Generated alert {i}
severity: High
trigger:
  metric: {{ source: cloudwatch, metric: errors_{i}, comparison: gt, threshold: 5, for: 5m }}
routing: {{ notify: [security-on-call], channels: [pagerduty] }}
escalation_policy: security-escalation
sla: {{ acknowledge: 5m, initial_response: 15m, resolution: 1h }}
auto_remediation: {{ mode: none }}
controls: [CTL-{i}]
traces:
  - to: POL-2026-001.component.5-3
    rel: validates
sabsa: {{ column: How, layer: Operational }}
---
kind: Runbook
id: RB-{i}
title: Generated runbook {i}
frequency: {{ cron: "0 9 * * 1" }}
owner: security-operations
steps:
  - {{ title: Export the report, command: "aws iam get-credential-report --output json" }}
  - {{ title: Review each entry }}
expected_duration: 1h
completion_record: docs/runbooks/RB-{i}.md
traces:
  - to: POL-2026-001.component.5-4
    rel: refines
  - to: CTL-{i}
    rel: validates
---
kind: Playbook
id: PB-{i}
title: Generated key compromise playbook {i}
trigger_conditions: [Key material leaked]
alerts: [ALERT-{i}]
severity_classification:
  - {{ severity: Critical, when: Key exposed publicly }}
phases:
  - name: Immediate response
    starts_at: 0
    ends_at: 15m
    steps:
      - {{ title: Disable the key, command: "aws kms disable-key --key-id k{i}" }}
  - name: Post-incident
    starts_at: 1d
    ends_at: 7d
    steps:
      - {{ title: Lessons learned }}
traces:
  - to: POL-2026-001.component.4-5
    rel: implements
---
kind: Maintenance
id: MT-{i}
title: Generated maintenance {i}
schedule: {{ rrule: "FREQ=MONTHLY;BYDAY=2TU" }}
automation: semi_automated
owner: cloud-operations
procedure:
  - {{ title: Patch, command: "aws ssm send-command --document-name AWS-RunPatchBaseline" }}
validation: [Health checks pass]
rollback: Restore from snapshot.
downtime: 30m
traces:
  - to: POL-2026-001.component.5-4
    rel: derives_from
---
kind: Kpi
id: KPI-{i}
title: Generated KPI {i}
calculation: count(ok) / count(all) * 100
data_source: evidence facts
unit: percent
target: 100
direction: higher_is_better
thresholds: {{ green: 100, yellow: 95 }}
frequency: daily
audience: [security-operations]
traces:
  - to: CTL-{i}
    rel: validates
---
kind: Improvement
id: IMP-G-{i}
title: Generated improvement {i}
risk_reduction: {r}
effort: {e}
status: backlog
traces:
  - to: PB-{i}
    rel: derives_from
"#,
            r = i % 3 + 1,
            e = (i / 3) % 3 + 1,
        );
    }
    out
}

fn bench(c: &mut Criterion) {
    let generated = generated_pack();
    let mut files = gatehouse_pack::example::files();
    files.retain(|(path, _)| matches!(*path, "identity.yaml" | "on-call.yaml"));
    files.push(("generated.yaml", generated.as_str()));
    let loaded = gatehouse_pack::load_files(files);
    let errors: Vec<_> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.severity == gatehouse_pack::Severity::Error)
        .take(5)
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
    let pack = loaded.pack;
    assert!(pack.document_count() >= DOCUMENTS);

    let exported = export(&pack, None).unwrap();
    let json = to_json(&exported.document).unwrap();
    let report = validate(json.as_bytes());
    let rules: Vec<&str> = report.findings.iter().map(|f| f.check.id()).collect();
    println!(
        "pack: {} documents; export: {} bytes of JSON; validation findings: {rules:?}",
        pack.document_count(),
        json.len(),
    );

    let mut group = c.benchmark_group("sabsa_10k_documents");
    group.sample_size(10);
    // Baselines in the same run: serialising every pack document to JSON (the least any export
    // must do) and parsing the exported document with serde_json (the least any validator must
    // do).
    group.bench_function("baseline_serialize_pack_documents", |b| {
        b.iter(|| serde_json::to_vec(&black_box(&pack).documents().collect::<Vec<_>>()).unwrap())
    });
    group.bench_function("baseline_serde_json_parse", |b| {
        b.iter(|| serde_json::from_slice::<serde_json::Value>(black_box(json.as_bytes())).unwrap())
    });
    group.bench_function("load_lint_export_json", |b| {
        b.iter(|| {
            let mut files = gatehouse_pack::example::files();
            files.retain(|(path, _)| matches!(*path, "identity.yaml" | "on-call.yaml"));
            files.push(("generated.yaml", generated.as_str()));
            let loaded = gatehouse_pack::load_files(files);
            to_json(&export(&loaded.pack, None).unwrap().document).unwrap()
        })
    });
    group.bench_function("export_json", |b| {
        b.iter(|| to_json(&export(black_box(&pack), None).unwrap().document).unwrap())
    });
    group.bench_function("export_markdown", |b| {
        b.iter(|| to_markdown(&export(black_box(&pack), None).unwrap()))
    });
    group.bench_function("validate", |b| {
        b.iter(|| validate(black_box(json.as_bytes())))
    });
    group.bench_function("trace_matrix", |b| {
        b.iter(|| trace::matrix(black_box(&pack)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
