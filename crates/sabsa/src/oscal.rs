//! OSCAL exports for assessors and GRC tools: the improvement backlog as a Plan of Action and
//! Milestones (POA&M) and the KPI targets as an Assessment Plan.
//!
//! The types are the minimal subset of the NIST OSCAL JSON models these two documents need,
//! written here because the existing Rust OSCAL crates mis-model them. UUIDs are name-based
//! (v5) from the policy and item ids, so the same pack exports the same document; the only
//! input that varies is `last-modified`, which the caller passes in (this crate never reads the
//! clock).

use gatehouse_pack::Pack;
use gatehouse_pack::model::{Cadence, KpiDirection};
pub use jiff::Timestamp;
use serde::Serialize;
use uuid::Uuid;

use crate::backlog::prioritise;

/// The OSCAL model version the documents are written against.
pub const OSCAL_VERSION: &str = "1.1.2";

/// Namespace of the gatehouse-specific properties (OSCAL requires `ns` on non-core names).
pub const PROPS_NS: &str = "https://example.invalid/gatehouse/ns/oscal";

/// Namespace of the name-based UUIDs (a fixed v4 UUID chosen for gatehouse).
const UUID_NAMESPACE: Uuid = Uuid::from_u128(0x6b1e_2c8a_4f3d_4a7e_9c51_0d2e_7f4a_3b19);

fn name_uuid(parts: &[&str]) -> String {
    Uuid::new_v5(&UUID_NAMESPACE, parts.join("\u{1f}").as_bytes()).to_string()
}

/// Why an OSCAL document could not be produced.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OscalError {
    #[error("the pack has no Improvement documents; an OSCAL POA&M needs at least one item")]
    NoImprovements,
    #[error("the pack has no Kpi documents; the assessment plan would have no activity")]
    NoKpis,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Metadata {
    pub title: String,
    #[serde(rename = "last-modified")]
    pub last_modified: String,
    pub version: String,
    #[serde(rename = "oscal-version")]
    pub oscal_version: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub props: Vec<Property>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Property {
    pub name: String,
    pub value: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ns: Option<String>,
}

fn prop(name: &str, value: impl Into<String>) -> Property {
    Property {
        name: name.to_owned(),
        value: value.into(),
        ns: Some(PROPS_NS.to_owned()),
    }
}

/// `{"plan-of-action-and-milestones": {...}}`
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PoamDocument {
    #[serde(rename = "plan-of-action-and-milestones")]
    pub poam: Poam,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Poam {
    pub uuid: String,
    pub metadata: Metadata,
    #[serde(rename = "system-id")]
    pub system_id: SystemId,
    #[serde(rename = "poam-items")]
    pub poam_items: Vec<PoamItem>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SystemId {
    #[serde(rename = "identifier-type")]
    pub identifier_type: String,
    pub id: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PoamItem {
    pub uuid: String,
    pub title: String,
    pub description: String,
    pub props: Vec<Property>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remarks: Option<String>,
}

/// The improvement backlog as a POA&M, items by priority score.
pub fn poam(
    pack: &Pack,
    policy: &str,
    last_modified: Timestamp,
) -> Result<PoamDocument, OscalError> {
    let items = prioritise(pack);
    if items.is_empty() {
        return Err(OscalError::NoImprovements);
    }
    let poam_items = items
        .iter()
        .map(|item| {
            let mut props = vec![
                prop("improvement-id", &item.id),
                prop("risk-reduction", item.risk_reduction.to_string()),
                prop("effort-score", item.effort.to_string()),
                prop("priority-score", item.score.to_string()),
                prop("approval-decision", item.decision.label()),
                prop("lifecycle-status", item.status.label()),
            ];
            if let Some(category) = &item.category {
                props.push(prop("category", category));
            }
            if let Some(owner) = &item.owner {
                props.push(prop("owner", owner));
            }
            if let Some(due) = &item.due {
                props.push(prop("due-date", due));
            }
            let description = match pack
                .improvement(&item.id)
                .and_then(|i| i.description.as_deref())
            {
                Some(text) if !text.trim().is_empty() => text.trim().to_owned(),
                _ => format!(
                    "Improvement {} ({}): priority score {} = risk reduction {} x effort score {}.",
                    item.id, item.title, item.score, item.risk_reduction, item.effort
                ),
            };
            PoamItem {
                uuid: name_uuid(&[policy, "poam-item", &item.id]),
                title: item.title.clone(),
                description,
                props,
                remarks: item.conflict.clone(),
            }
        })
        .collect();
    Ok(PoamDocument {
        poam: Poam {
            uuid: name_uuid(&[policy, "poam"]),
            metadata: Metadata {
                title: format!("{policy} improvement backlog (plan of action and milestones)"),
                last_modified: rfc3339(last_modified),
                version: pack_version(pack),
                oscal_version: OSCAL_VERSION.to_owned(),
                props: vec![prop("policy", policy)],
            },
            system_id: SystemId {
                identifier_type: "https://ietf.org/rfc/rfc4122".to_owned(),
                id: name_uuid(&[policy, "system"]),
            },
            poam_items,
        },
    })
}

/// `{"assessment-plan": {...}}`
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AssessmentPlanDocument {
    #[serde(rename = "assessment-plan")]
    pub plan: AssessmentPlan,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AssessmentPlan {
    pub uuid: String,
    pub metadata: Metadata,
    #[serde(rename = "import-ssp")]
    pub import_ssp: ImportSsp,
    #[serde(rename = "local-definitions")]
    pub local_definitions: LocalDefinitions,
    #[serde(rename = "reviewed-controls")]
    pub reviewed_controls: ReviewedControls,
    pub tasks: Vec<Task>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ImportSsp {
    pub href: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remarks: Option<String>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LocalDefinitions {
    pub activities: Vec<Activity>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Activity {
    pub uuid: String,
    pub title: String,
    pub description: String,
    pub props: Vec<Property>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReviewedControls {
    #[serde(rename = "control-selections")]
    pub control_selections: Vec<ControlSelection>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ControlSelection {
    pub description: String,
    #[serde(rename = "include-all")]
    pub include_all: Empty,
}

/// `{}`: OSCAL's marker object (e.g. `include-all`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq, Default)]
pub struct Empty {}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Task {
    pub uuid: String,
    #[serde(rename = "type")]
    pub task_type: String,
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timing: Option<Timing>,
    #[serde(rename = "associated-activities")]
    pub associated_activities: Vec<AssociatedActivity>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Timing {
    #[serde(rename = "at-frequency")]
    pub at_frequency: Frequency,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Frequency {
    pub period: u32,
    pub unit: String,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct AssociatedActivity {
    #[serde(rename = "activity-uuid")]
    pub activity_uuid: String,
    pub subjects: Vec<Subject>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Subject {
    #[serde(rename = "type")]
    pub subject_type: String,
    #[serde(rename = "include-all")]
    pub include_all: Empty,
}

/// How often a KPI is assessed, as OSCAL `at-frequency`; real-time has no period.
fn frequency(cadence: Cadence) -> Option<Frequency> {
    let (period, unit) = match cadence {
        Cadence::Realtime => return None,
        Cadence::Hourly => (1, "hours"),
        Cadence::Daily => (1, "days"),
        Cadence::Weekly => (7, "days"),
        Cadence::Monthly => (1, "months"),
        Cadence::Quarterly => (3, "months"),
        Cadence::Annually => (1, "years"),
    };
    Some(Frequency {
        period,
        unit: unit.to_owned(),
    })
}

/// The KPI targets as an assessment plan: one activity per KPI (target, thresholds, source,
/// calculation as properties) and one recurring task per KPI at its reporting frequency.
pub fn assessment_plan(
    pack: &Pack,
    policy: &str,
    ssp_href: &str,
    last_modified: Timestamp,
) -> Result<AssessmentPlanDocument, OscalError> {
    let mut kpis: Vec<_> = pack.kpis().collect();
    if kpis.is_empty() {
        return Err(OscalError::NoKpis);
    }
    kpis.sort_by(|a, b| a.id.value.cmp(&b.id.value));
    let mut activities = Vec::new();
    let mut tasks = Vec::new();
    for kpi in kpis {
        let id = kpi.id.value.as_str();
        let title = kpi.title.clone().unwrap_or_else(|| id.to_owned());
        let activity_uuid = name_uuid(&[policy, "kpi-activity", id]);
        let direction = match kpi.direction {
            KpiDirection::HigherIsBetter => "higher-is-better",
            KpiDirection::LowerIsBetter => "lower-is-better",
        };
        let mut props = vec![
            prop("kpi-id", id),
            prop("target", kpi.target.value.to_string()),
            prop("direction", direction),
            prop("threshold-green", kpi.thresholds.green.value.to_string()),
            prop("threshold-yellow", kpi.thresholds.yellow.value.to_string()),
            prop("data-source", kpi.data_source.trim()),
            prop(
                "reporting-frequency",
                format!("{:?}", kpi.frequency).to_lowercase(),
            ),
        ];
        if let Some(unit) = &kpi.unit {
            props.push(prop("unit", unit));
        }
        let what = kpi.description.as_deref().unwrap_or(&title).trim();
        activities.push(Activity {
            uuid: activity_uuid.clone(),
            title: format!("Measure KPI {title}"),
            description: format!("{what} Calculation: {}", kpi.calculation.trim()),
            props,
        });
        tasks.push(Task {
            uuid: name_uuid(&[policy, "kpi-task", id]),
            task_type: "action".to_owned(),
            title: format!("Report KPI {title} against its target"),
            timing: frequency(kpi.frequency).map(|at_frequency| Timing { at_frequency }),
            associated_activities: vec![AssociatedActivity {
                activity_uuid,
                subjects: vec![Subject {
                    subject_type: "component".to_owned(),
                    include_all: Empty {},
                }],
            }],
        });
    }
    Ok(AssessmentPlanDocument {
        plan: AssessmentPlan {
            uuid: name_uuid(&[policy, "assessment-plan"]),
            metadata: Metadata {
                title: format!("{policy} KPI assessment plan"),
                last_modified: rfc3339(last_modified),
                version: pack_version(pack),
                oscal_version: OSCAL_VERSION.to_owned(),
                props: vec![prop("policy", policy)],
            },
            import_ssp: ImportSsp {
                href: ssp_href.to_owned(),
                remarks: (ssp_href == "#").then(|| {
                    "No system security plan is imported; the plan covers the KPIs of the \
                     gatehouse policy pack."
                        .to_owned()
                }),
            },
            local_definitions: LocalDefinitions { activities },
            reviewed_controls: ReviewedControls {
                control_selections: vec![ControlSelection {
                    description: "All controls of the policy pack.".to_owned(),
                    include_all: Empty {},
                }],
            },
            tasks,
        },
    })
}

/// The pack digest identifies exactly which pack the document was made from.
fn pack_version(pack: &Pack) -> String {
    let digest = pack.digest();
    format!("pack-sha256:{}", digest.get(..16).unwrap_or(&digest))
}

/// RFC 3339 with seconds and `Z`, as OSCAL's date-time-with-timezone requires.
fn rfc3339(at: Timestamp) -> String {
    at.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}
