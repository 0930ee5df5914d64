//! Property: for any class and any recorded state, however inconsistent, `evaluate` returns
//! (never panics), reports all six categories, and its decision is the worst category's, so
//! it never passes while a category does not.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use gatehouse_core::gate::{
    Actor, Approval, ApprovalDecision, ApprovalTarget, Bypass, EmergencyRetrospective,
    EvidenceFacts, EvidenceItem, Exception, ExceptionScope, FindingScope, GateCategory,
    GateDecision, PrincipalKind, ReleaseGateState, RequirementRecord, RequirementStatus, Risk,
    RiskStatus, can_approve, evaluate, record_bypass, render,
};
use gatehouse_core::gate::{ApprovalRequest, metrics};
use gatehouse_core::identity::{AuthMethod, Principal};
use gatehouse_core::release::{ChangeContext, Digest, Release, ReleaseId};
use gatehouse_evidence::{
    CycloneDxFacts, DocumentFacts, EnvelopeFacts, EvidenceKind, Facts, InTotoFacts, JunitFacts,
    KeyAlgorithm, OpenVexFacts, SarifFacts, SignatureCheck, SubjectFact, VerifiedBy, VexStatement,
    VulnerabilityFact,
};
use gatehouse_pack::model::{
    ApproverStep, DelegatedRisk, EmergencyPolicy, EvidenceRequirement, FindingThresholds,
    ReleaseClass, RiskModel, ScaleLevel, ScoreBand, SecurityRequirement,
};
use gatehouse_pack::{Duration, Located};
use jiff::Timestamp;
use proptest::prelude::*;

const PEOPLE: &[&str] = &["alice", "bob", "carol", "ci"];
const ROLES: &[&str] = &["approver", "security-lead", "ciso", "nobody"];
const KINDS: &[&str] = &[
    "sast",
    "sbom",
    "test_results",
    "code_review",
    "pentest_report",
    "provenance",
    "vex",
];
const REQUIREMENTS: &[&str] = &["SR-1", "SR-2"];

fn at(hours: u32) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + i64::from(hours) * 3600).unwrap()
}

fn actor(index: usize) -> Actor {
    let id = PEOPLE[index % PEOPLE.len()];
    Actor {
        id: id.into(),
        display: id.into(),
        kind: if id == "ci" {
            PrincipalKind::Pipeline
        } else {
            PrincipalKind::Person
        },
    }
}

fn class_strategy() -> impl Strategy<Value = ReleaseClass> {
    (
        prop::collection::vec((0..KINDS.len(), prop::option::of(0u64..200)), 0..4),
        prop::collection::vec(0..REQUIREMENTS.len(), 0..3),
        prop::array::uniform4(prop::option::of(0u32..3)),
        prop::collection::vec((0..ROLES.len(), 0u32..3), 0..3),
        prop::option::of((0u32..30, 0..ROLES.len())),
        prop::option::of(0u64..100),
    )
        .prop_map(
            |(evidence, requirements, thresholds, path, delegated, emergency)| ReleaseClass {
                kind: Located::new("ReleaseClass".into()),
                id: Located::new("generated".into()),
                title: None,
                description: None,
                required_evidence: evidence
                    .into_iter()
                    .map(|(k, age)| EvidenceRequirement {
                        kind: Located::new(KINDS[k].into()),
                        max_age: age.map(|h| Located::new(Duration::from_hours(h))),
                        description: None,
                    })
                    .collect(),
                security_requirements: requirements
                    .into_iter()
                    .map(|r| SecurityRequirement {
                        id: Located::new(REQUIREMENTS[r].into()),
                        title: "generated".into(),
                        control: None,
                    })
                    .collect(),
                finding_thresholds: FindingThresholds {
                    critical: thresholds[0],
                    high: thresholds[1],
                    medium: thresholds[2],
                    low: thresholds[3],
                },
                approver_path: path
                    .into_iter()
                    .map(|(role, quorum)| ApproverStep {
                        role: Located::new(ROLES[role].into()),
                        quorum: Located::new(quorum),
                    })
                    .collect(),
                delegated_risk: delegated.map(|(max, role)| DelegatedRisk {
                    risk_model: Some(Located::new("risk-3x3".into())),
                    max_score: Located::new(max),
                    escalate_to: Located::new(ROLES[role].into()),
                }),
                emergency: emergency.map(|h| EmergencyPolicy {
                    retrospective_within: Located::new(Duration::from_hours(h)),
                    retrospective_role: Some(Located::new("ciso".into())),
                }),
                attestation: None,
                policies: Vec::new(),
                traces: Vec::new(),
                sabsa: None,
            },
        )
}

fn risk_model() -> RiskModel {
    let scale = |n: u32| {
        (1..=n)
            .map(|v| ScaleLevel {
                value: Located::new(v),
                label: format!("level {v}"),
                description: None,
            })
            .collect()
    };
    RiskModel {
        kind: Located::new("RiskModel".into()),
        id: Located::new("risk-3x3".into()),
        title: None,
        description: None,
        likelihood: scale(3),
        impact: scale(3),
        bands: vec![ScoreBand {
            name: "Low".into(),
            min: Located::new(1),
            max: Located::new(4),
        }],
        traces: Vec::new(),
        sabsa: None,
    }
}

fn facts_strategy() -> impl Strategy<Value = (EvidenceKind, EvidenceFacts)> {
    let counts = (0u64..4, 0u64..4, 0u64..4, 0u64..6);
    prop_oneof![
        counts.prop_map(|(error, warning, note, total)| {
            let mut f = SarifFacts {
                total_results: total,
                ..SarifFacts::default()
            };
            f.unsuppressed_by_level.error = error;
            f.unsuppressed_by_level.warning = warning;
            f.unsuppressed_by_level.note = note;
            f.rule_ids.insert("rule-a".into(), total / 2);
            (EvidenceKind::Sarif, EvidenceFacts::Parsed(Facts::Sarif(f)))
        }),
        (
            prop::collection::vec((0usize..3, 0usize..8, any::<bool>()), 0..4),
            0u64..3,
            any::<bool>()
        )
            .prop_map(|(vulns, extra_critical, truncated)| {
                let severities = [
                    "critical",
                    "high",
                    "medium",
                    "low",
                    "info",
                    "unknown",
                    "no_ratings",
                    "weird",
                ];
                let mut f = CycloneDxFacts {
                    vulnerability_list_truncated: truncated,
                    ..CycloneDxFacts::default()
                };
                f.by_severity.critical = extra_critical;
                for (id, sev, analysed) in vulns {
                    f.vulnerability_list.push(VulnerabilityFact {
                        id: Some(format!("CVE-{id}")),
                        severity: severities[sev].into(),
                        analysis_state: analysed.then(|| "not_affected".into()),
                        affects: vec!["pkg:npm/a@1".into()],
                    });
                }
                (
                    EvidenceKind::CycloneDx,
                    EvidenceFacts::Parsed(Facts::CycloneDx(f)),
                )
            }),
        (0usize..3, 0usize..4).prop_map(|(id, status)| {
            let statuses = ["not_affected", "affected", "fixed", "bogus"];
            let f = OpenVexFacts {
                statements: 1,
                statement_list: vec![VexStatement {
                    vulnerability: Some(format!("CVE-{id}")),
                    aliases: Vec::new(),
                    status: Some(statuses[status].into()),
                    justification: None,
                    products: if id == 0 {
                        Vec::new()
                    } else {
                        vec!["pkg:npm/a".into()]
                    },
                }],
                ..OpenVexFacts::default()
            };
            (
                EvidenceKind::OpenVex,
                EvidenceFacts::Parsed(Facts::OpenVex(f)),
            )
        }),
        (0u64..3, 0u64..3).prop_map(|(failures, errors)| {
            let f = JunitFacts {
                tests: 5,
                failures,
                errors,
                ..JunitFacts::default()
            };
            (EvidenceKind::Junit, EvidenceFacts::Parsed(Facts::Junit(f)))
        }),
        (0usize..3, any::<bool>()).prop_map(|(check, matching)| {
            let hex = if matching {
                Digest::of_bytes(b"artifact").hex().to_owned()
            } else {
                "ab".repeat(32)
            };
            let signature_check = match check {
                0 => SignatureCheck::NotChecked,
                1 => SignatureCheck::Unsigned,
                _ => SignatureCheck::Verified(VerifiedBy {
                    key_id: "k".into(),
                    algorithm: KeyAlgorithm::Ed25519,
                    signature_index: 0,
                }),
            };
            let subjects = vec![SubjectFact {
                name: Some("artifact".into()),
                sha256: Some(hex),
            }];
            let f = InTotoFacts {
                container: "dsse_envelope",
                json_documents: 1,
                payload_type: None,
                predicate_type: None,
                subjects: subjects.clone(),
                slsa: None,
                envelopes: vec![EnvelopeFacts {
                    payload_type: None,
                    signatures: 1,
                    statement_type: None,
                    predicate_type: None,
                    subjects,
                    slsa: None,
                    bundle_media_type: None,
                    signature_check,
                    dsse: None,
                }],
            };
            (
                EvidenceKind::InToto,
                EvidenceFacts::Parsed(Facts::InToto(f)),
            )
        }),
        Just((
            EvidenceKind::declared_document("code-review"),
            EvidenceFacts::Parsed(Facts::Document(DocumentFacts {
                document_kind: "code-review".into(),
                media_type: "text/markdown",
                link: None,
            }))
        )),
        Just((
            EvidenceKind::declared_document("pentest_report"),
            EvidenceFacts::Unreadable {
                reason: "corrupt".into()
            }
        )),
    ]
}

fn state_strategy() -> impl Strategy<Value = ReleaseGateState> {
    (
        prop::collection::vec((facts_strategy(), 0u32..400, 0u64..6, 0usize..4), 0..6),
        prop::collection::vec((0..REQUIREMENTS.len(), 0usize..3, 0u32..400, 0u64..6), 0..3),
        prop::collection::vec((0usize..5, 0usize..4, 0u32..400, 0u32..400, 0u64..6), 0..3),
        prop::collection::vec((0u32..5, 0u32..5, 0usize..3, 0u64..6), 0..3),
        prop::collection::vec(
            (0usize..4, 0usize..4, 0usize..4, any::<bool>(), 0u64..7),
            0..5,
        ),
        prop::option::of((0usize..4, 0u32..400)),
        prop::collection::vec((0usize..4, 0u64..7), 0..2),
        any::<bool>(),
    )
        .prop_map(
            |(evidence, requirements, exceptions, risks, approvals, retro, bypasses, digests)| {
                let release = Release {
                    id: ReleaseId::generate(at(0)).unwrap(),
                    service: "svc".into(),
                    version: "1".into(),
                    release_class: "generated".into(),
                    artifact_digests: if digests {
                        vec![Digest::of_bytes(b"artifact")]
                    } else {
                        Vec::new()
                    },
                    owner: "team".into(),
                    change: ChangeContext {
                        summary: "s".into(),
                        ticket: None,
                        pull_request: None,
                    },
                    target_environment: "production".into(),
                    submitter: "alice".into(),
                    created_at: at(0),
                };
                let mut state = ReleaseGateState::new(release);
                for (index, ((kind, facts), hours, revision, supersedes)) in
                    evidence.into_iter().enumerate()
                {
                    state.evidence.push(EvidenceItem {
                        id: format!("ev-{index}"),
                        kind,
                        // Some digests collide on purpose (duplicates).
                        sha256: format!("{:064x}", index % 4),
                        size: 10,
                        attached_at: at(hours),
                        attached_by: "alice".into(),
                        facts,
                        supersedes: (supersedes < index).then(|| format!("ev-{supersedes}")),
                        revision,
                    });
                }
                for (r, status, hours, revision) in requirements {
                    let status = match status {
                        0 => RequirementStatus::Complete {
                            evidence: vec!["ev-0".into(), "ev-9".into()],
                        },
                        1 => RequirementStatus::Deferred {
                            approved_by: actor(hours as usize),
                            role: ROLES[hours as usize % ROLES.len()].into(),
                            due: at(hours),
                        },
                        _ => RequirementStatus::Excepted {
                            exception: "x-0".into(),
                        },
                    };
                    state.requirements.push(RequirementRecord {
                        requirement: REQUIREMENTS[r].into(),
                        status,
                        recorded_by: "alice".into(),
                        at: at(hours),
                        revision,
                    });
                }
                for (index, (scope, who, approved, expires, revision)) in
                    exceptions.into_iter().enumerate()
                {
                    let scope = match scope {
                        0 => ExceptionScope::Requirement { id: "SR-1".into() },
                        1 => ExceptionScope::Evidence {
                            kind: "sbom".into(),
                        },
                        2 => ExceptionScope::Finding {
                            finding: FindingScope::Vulnerability { id: "CVE-1".into() },
                        },
                        3 => ExceptionScope::Finding {
                            finding: FindingScope::SarifRule {
                                rule_id: "rule-a".into(),
                            },
                        },
                        _ => ExceptionScope::Finding {
                            finding: FindingScope::EvidenceItem {
                                evidence: "ev-1".into(),
                            },
                        },
                    };
                    state.exceptions.push(Exception {
                        id: format!("x-{index}"),
                        scope,
                        justification: "j".into(),
                        compensating_controls: Vec::new(),
                        approver: actor(who),
                        approver_role: ROLES[who].into(),
                        approved_at: at(approved),
                        expires_at: at(expires),
                        withdrawn_at: None,
                        revision,
                    });
                }
                for (index, (likelihood, impact, status, revision)) in risks.into_iter().enumerate()
                {
                    state.risks.push(Risk {
                        id: format!("R-{index}"),
                        title: "r".into(),
                        likelihood,
                        impact,
                        status: [RiskStatus::Open, RiskStatus::Mitigated, RiskStatus::Closed]
                            [status],
                        owner: if index == 1 {
                            String::new()
                        } else {
                            "o".into()
                        },
                        revision,
                    });
                }
                for (index, (who, target, role, approve, revision)) in
                    approvals.into_iter().enumerate()
                {
                    state.approvals.push(Approval {
                        id: format!("ap-{index}"),
                        target: if target == 3 {
                            ApprovalTarget::RiskEscalation { risk: "R-0".into() }
                        } else {
                            ApprovalTarget::Step { index: target }
                        },
                        approver: actor(who),
                        role: ROLES[role].into(),
                        decision: if approve {
                            ApprovalDecision::Approve
                        } else {
                            ApprovalDecision::Reject
                        },
                        comment: "c".into(),
                        at: at(10),
                        revision,
                    });
                }
                state.retrospective = retro.map(|(who, hours)| EmergencyRetrospective {
                    reviewer: actor(who),
                    role: "ciso".into(),
                    completed_at: at(hours),
                    summary: "done".into(),
                });
                for (index, (who, revision)) in bypasses.into_iter().enumerate() {
                    state.bypasses.push(Bypass {
                        id: format!("bp-{index}"),
                        by: actor(who),
                        reason: "outage fix".into(),
                        at: at(20),
                        revision,
                        overridden: GateDecision::Blocked,
                    });
                }
                state
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn evaluate_is_total_and_never_passes_a_failing_category(
        class in class_strategy(),
        state in state_strategy(),
        with_model in any::<bool>(),
        now in 0u32..600,
    ) {
        let model = risk_model();
        let verdict = evaluate(&class, with_model.then_some(&model), &state, at(now));
        let categories: Vec<GateCategory> =
            verdict.categories.iter().map(|c| c.category).collect();
        prop_assert_eq!(categories, GateCategory::ALL.to_vec());
        let worst = verdict.categories.iter().map(|c| c.decision).max().unwrap();
        prop_assert_eq!(verdict.decision, worst);
        if verdict.categories.iter().any(|c| c.decision != GateDecision::Pass) {
            prop_assert_ne!(verdict.decision, GateDecision::Pass);
        }
        for category in &verdict.categories {
            let implied = category
                .reasons
                .iter()
                .map(|r| r.level.decision())
                .max()
                .unwrap_or(GateDecision::Pass);
            prop_assert_eq!(category.decision, implied);
        }
        // Rendering any verdict is total too.
        let _ = render::markdown_summary(&verdict);
        let _ = render::memo_html(&class, Some(&model), &state, &verdict);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1000))]

    /// The decision functions and metrics are total too, and never let the submitter or a
    /// pipeline approve, whatever the state.
    #[test]
    fn decisions_are_total_and_keep_separation_of_duties(
        class in class_strategy(),
        state in state_strategy(),
        who in 0usize..4,
        target in 0usize..4,
        approve in any::<bool>(),
        seen in 0u64..8,
        now in 0u32..600,
    ) {
        let model = risk_model();
        let id = PEOPLE[who];
        let principal = Principal {
            id: id.into(),
            display: id.into(),
            roles: ROLES.iter().map(|r| (*r).to_owned()).collect(),
            auth_method: if id == "ci" { AuthMethod::OidcWorkload } else { AuthMethod::Password },
            service_scope: None,
        };
        let kind = PrincipalKind::of(&principal, id != "ci");
        let request = ApprovalRequest {
            target: if target == 3 {
                ApprovalTarget::RiskEscalation { risk: "R-0".into() }
            } else {
                ApprovalTarget::Step { index: target }
            },
            decision: if approve { ApprovalDecision::Approve } else { ApprovalDecision::Reject },
            comment: "because".into(),
            seen_revision: seen,
        };
        let allowed = can_approve(&class, Some(&model), &state, &principal, kind, &request);
        if id == "alice" || id == "ci" {
            prop_assert!(allowed.is_err());
        }
        let verdict = evaluate(&class, Some(&model), &state, at(now));
        let _ = record_bypass(
            &state, &principal, kind, true, "production outage INC-1", &verdict, "bp".into(), at(now),
        );
        let records = [metrics::ReleaseRecord { state: &state, class: Some(&class) }];
        let period = metrics::Period { start: at(0), end: at(600) };
        let m = metrics::compute(&records, period, at(now));
        prop_assert!(m.evidence_present <= m.evidence_required);
    }
}
