//! The typed documents of a policy pack.
//!
//! Each YAML document has a `kind:` naming one of the structs below and an `id:` unique across
//! the pack. Every struct denies unknown keys, so a misspelt key is a finding rather than a
//! silently ignored setting. Fields that lint rules check carry their source position
//! ([`Located`]). References to other documents are plain ids (`Located<String>`); the lint pass
//! resolves them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::duration::Duration;
use crate::located::Located;

/// An id of another document in the pack, with the position where it is written.
pub type Reference = Located<String>;

/// Defines a document struct with the fields every kind shares (`kind`, `id`, `title`,
/// `description`, `traces`, `sabsa`) plus its own. Written out per kind (rather than with
/// `#[serde(flatten)]`) because flatten would disable both `deny_unknown_fields` and source
/// positions.
macro_rules! document {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $( $(#[$fmeta:meta])* pub $field:ident : $ty:ty, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            /// The document kind; always the name of this type.
            pub kind: Located<String>,
            /// Unique id across the pack; other documents and traces refer to it.
            pub id: Located<String>,
            /// Short human-readable name.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub title: Option<String>,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub description: Option<String>,
            $( $(#[$fmeta])* pub $field: $ty, )*
            /// Links from this document to others (or to external policy components).
            #[serde(default, skip_serializing_if = "Vec::is_empty")]
            pub traces: Vec<Trace>,
            /// Where this document sits in the SABSA matrix.
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub sabsa: Option<Sabsa>,
        }
    };
}

// ---------------------------------------------------------------------------------------------
// Shared pieces

/// A typed link between documents: `{to: ID, rel: derives_from, why: "…"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Trace {
    /// A document id in this pack, or an external policy component such as
    /// `POL-2026-001.component.5-1` (see [`crate::trace::is_external_id`]).
    pub to: Reference,
    pub rel: TraceRel,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

/// How the tracing document relates to its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TraceRel {
    DerivesFrom,
    Validates,
    Refines,
    Implements,
}

impl TraceRel {
    pub fn as_str(self) -> &'static str {
        match self {
            TraceRel::DerivesFrom => "derives_from",
            TraceRel::Validates => "validates",
            TraceRel::Refines => "refines",
            TraceRel::Implements => "implements",
        }
    }
}

/// Position of a document in the SABSA architecture matrix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Sabsa {
    pub column: SabsaColumn,
    pub layer: SabsaLayer,
}

/// SABSA matrix column (the interrogative the document answers).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum SabsaColumn {
    What,
    Why,
    How,
    Who,
    Where,
    When,
}

/// SABSA matrix layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum SabsaLayer {
    Contextual,
    Conceptual,
    Logical,
    Physical,
    Component,
    Operational,
}

/// Severity scale shared by alerts, playbook classification and release finding thresholds.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
pub enum SeverityLevel {
    Critical,
    High,
    Medium,
    Low,
}

impl SeverityLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            SeverityLevel::Critical => "Critical",
            SeverityLevel::High => "High",
            SeverityLevel::Medium => "Medium",
            SeverityLevel::Low => "Low",
        }
    }
}

/// One step of a procedure (runbook, playbook phase, maintenance).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A shell command the operator runs for this step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
}

/// When a recurring task runs: exactly one of `cron` (5 fields, or 6 with seconds) or `rrule`
/// (RFC 5545, e.g. `FREQ=MONTHLY;BYDAY=2TU`), optionally with a `time_zone`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Recurrence {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cron: Option<Located<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rrule: Option<Located<String>>,
    /// IANA time zone the expression is evaluated in (default UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<Located<String>>,
}

/// "When X happens, escalate to Y."
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EscalationRule {
    pub when: String,
    /// Person, team, role or schedule ids.
    pub to: Vec<Reference>,
}

/// Kind of contact channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContactKind {
    Email,
    Phone,
    Sms,
    Slack,
    Pagerduty,
    Webhook,
}

/// How to reach a person.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactMethod {
    #[serde(rename = "type")]
    pub kind: ContactKind,
    pub address: String,
}

// ---------------------------------------------------------------------------------------------
// Identity

document! {
    /// A named set of permissions that people hold (viewer, approver, ciso, …).
    pub struct Role {
        /// What holders of the role may do, in words; the server maps role ids to permissions.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub responsibilities: Vec<String>,
        /// Permissions the role grants (names from [`PERMISSIONS`]). When absent, a default role
        /// id (viewer, submitter, …) keeps its default permissions and any other role has none.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub permissions: Option<Vec<Located<String>>>,
    }
}

/// Every permission name a `Role` may grant; `gatehouse_core::authz::Permission` is the typed
/// form (a core test keeps the two lists equal), and lint refuses any other name.
pub const PERMISSIONS: &[&str] = &[
    "pack.read",
    "pack.reload",
    "release.read",
    "release.create",
    "evidence.attach",
    "gate.record",
    "gate.approve",
    "gate.bypass",
    "audit.read",
    "events.ingest",
    "signal.read",
    "token.create",
    "token.read",
    "token.revoke",
    "user.manage",
];

document! {
    /// A human who signs in, approves, or is paged.
    pub struct Person {
        pub name: String,
        pub email: Located<String>,
        /// The `sub` claim of the person's OIDC identity.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub oidc_subject: Option<String>,
        /// Role ids the person holds.
        #[serde(default)]
        pub roles: Vec<Reference>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub contact: Vec<ContactMethod>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub time_zone: Option<Located<String>>,
    }
}

document! {
    /// A group of people that owns things and is notified together.
    pub struct Team {
        /// Person ids.
        pub members: Vec<Reference>,
        /// Person id of the team lead.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub lead: Option<Reference>,
        /// On-call schedule id for this team.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub schedule: Option<Reference>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub escalation_policy: Option<Reference>,
    }
}

/// A signing algorithm gatehouse accepts on OIDC tokens. Only asymmetric algorithms exist here:
/// `none` and the HMAC family (`HS256`, …) cannot even be written in a pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum JwtAlgorithm {
    RS256,
    ES256,
    EdDSA,
}

impl JwtAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            JwtAlgorithm::RS256 => "RS256",
            JwtAlgorithm::ES256 => "ES256",
            JwtAlgorithm::EdDSA => "EdDSA",
        }
    }
}

fn default_jwt_algorithms() -> Vec<JwtAlgorithm> {
    vec![
        JwtAlgorithm::RS256,
        JwtAlgorithm::ES256,
        JwtAlgorithm::EdDSA,
    ]
}

fn default_clock_skew() -> Located<Duration> {
    Located::new(Duration::from_secs(60))
}

/// Who an identity provider's tokens identify.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OidcPrincipal {
    /// Machines, e.g. CI pipelines: the principal is `oidc:<issuer>#<sub>`.
    Workload,
    /// People: the subject claim names a `Person` (its `oidc_subject`).
    Person,
}

/// "Tokens whose claims match `match` get `roles`, confined to `services`."
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimRule {
    /// Claim name → pattern; every entry must match. A pattern matches a string claim exactly,
    /// or as a glob where `*` stands for any run of characters (`refs/heads/release/*`).
    #[serde(rename = "match")]
    pub matches: std::collections::BTreeMap<String, Located<String>>,
    /// Role ids granted.
    #[serde(default)]
    pub roles: Vec<Reference>,
    /// Services the principal may act on; absent means any service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services: Option<Vec<Located<String>>>,
}

document! {
    /// An OpenID Connect issuer whose tokens gatehouse accepts (CI workload tokens, or people
    /// signing in), and the rules that map token claims to roles.
    pub struct IdentityProvider {
        /// The `iss` claim, exactly; discovery is read from `<issuer>/.well-known/openid-configuration`.
        pub issuer: Located<String>,
        /// Accepted `aud` values; a token must carry at least one of them.
        pub audiences: Vec<Located<String>>,
        #[serde(default = "default_jwt_algorithms")]
        pub algorithms: Vec<JwtAlgorithm>,
        /// Tolerance on `exp`, `nbf` and `iat` for clocks that disagree (at most 5m).
        #[serde(default = "default_clock_skew")]
        pub max_clock_skew: Located<Duration>,
        /// Where the signing keys are, when not the discovery document's `jwks_uri`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub jwks_uri: Option<Located<String>>,
        pub principal: OidcPrincipal,
        /// For people: the claim matched against `Person.oidc_subject` (default `sub`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub subject_claim: Option<String>,
        /// For people signing in: the OAuth client id registered at the issuer.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub client_id: Option<Located<String>>,
        /// For people signing in: the environment variable holding the client secret, if the
        /// client is confidential. The secret itself never goes into the pack.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub client_secret_env: Option<String>,
        /// For people signing in: gatehouse's callback URL as registered at the issuer
        /// (`https://…/api/v1/auth/oidc/<id>/callback`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub redirect_uri: Option<Located<String>>,
        /// Claim rules, first match wins.
        #[serde(default)]
        pub rules: Vec<ClaimRule>,
    }
}

// ---------------------------------------------------------------------------------------------
// Release gate

/// A kind of evidence a release must carry, and how old it may be.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EvidenceRequirement {
    /// Evidence kind, e.g. `sast`, `sbom`, `code_review`, `test_results`, `threat_model`.
    pub kind: Located<String>,
    /// Evidence older than this (relative to the gate decision) does not count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<Located<Duration>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A security requirement that must be complete, deferred with approval, or excepted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecurityRequirement {
    pub id: Located<String>,
    pub title: String,
    /// Control id this requirement demonstrates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control: Option<Reference>,
}

/// The most open findings of each severity a release may carry (absent = unlimited).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FindingThresholds {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub critical: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub high: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub medium: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub low: Option<u32>,
}

impl FindingThresholds {
    pub fn max_for(&self, severity: SeverityLevel) -> Option<u32> {
        match severity {
            SeverityLevel::Critical => self.critical,
            SeverityLevel::High => self.high,
            SeverityLevel::Medium => self.medium,
            SeverityLevel::Low => self.low,
        }
    }
}

fn one() -> Located<u32> {
    Located::new(1)
}

/// One step of an approver path: `quorum` distinct holders of `role` must approve.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproverStep {
    pub role: Reference,
    #[serde(default = "one")]
    pub quorum: Located<u32>,
}

/// Risks scored above `max_score` cannot be accepted on the normal path; they go to
/// `escalate_to`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DelegatedRisk {
    /// Risk model id the score is computed with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk_model: Option<Reference>,
    pub max_score: Located<u32>,
    /// Role id that must accept risks above `max_score`.
    pub escalate_to: Reference,
}

/// Present on emergency release classes: the shortened path still owes a retrospective review.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmergencyPolicy {
    /// The retrospective review must be completed within this time after release.
    pub retrospective_within: Located<Duration>,
    /// Role id that performs the retrospective review.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retrospective_role: Option<Reference>,
}

/// Which in-toto attestations the release gate trusts for a class: DSSE envelopes must be
/// signed by one of `keys`; SLSA provenance (v0.2 and v1) must name one of `builder_ids` and
/// one of `source_repositories` (each list checked only when non-empty). Without this block an
/// attestation never counts as evidence (fail closed).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AttestationPolicy {
    #[serde(default)]
    pub keys: Vec<AttestationKey>,
    /// Expected SLSA `builder.id` (v0.2) / `runDetails.builder.id` (v1), compared exactly.
    #[serde(default)]
    pub builder_ids: Vec<Located<String>>,
    /// Expected source repositories, e.g. `https://github.com/acme/payments` (compared without
    /// a `git+` prefix, `.git` suffix, `@ref` or trailing slash, case-insensitively).
    #[serde(default)]
    pub source_repositories: Vec<Located<String>>,
}

/// A public key attestation signatures are checked against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AttestationKey {
    /// Names the key in verdicts (e.g. `ci-release-2026`).
    pub id: Located<String>,
    /// A PEM `PUBLIC KEY` (SubjectPublicKeyInfo: Ed25519, ECDSA P-256 or RSA), or base64 of a
    /// raw 32-byte Ed25519 key or of a DER SubjectPublicKeyInfo.
    pub public_key: Located<String>,
}

document! {
    /// What a release of this class must show before it may go to production.
    pub struct ReleaseClass {
        #[serde(default)]
        pub required_evidence: Vec<EvidenceRequirement>,
        #[serde(default)]
        pub security_requirements: Vec<SecurityRequirement>,
        #[serde(default)]
        pub finding_thresholds: FindingThresholds,
        /// Ordered approval steps.
        pub approver_path: Vec<ApproverStep>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub delegated_risk: Option<DelegatedRisk>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub emergency: Option<EmergencyPolicy>,
        /// Trusted attestation keys and SLSA expectations (see [`AttestationPolicy`]).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub attestation: Option<AttestationPolicy>,
        /// Rego policies evaluated over the release and its evidence facts (see [`RegoPolicy`]).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub policies: Vec<RegoPolicy>,
    }
}

/// A Rego policy file a release class evaluates at verdict time, conftest-style: each string
/// in `<query>` (a `deny` set) blocks, each string in the sibling `warn` set warns
/// (`docs/pack.md`, "Rego policies").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RegoPolicy {
    /// Path of the `.rego` file, relative to the pack folder.
    pub file: Located<String>,
    /// The rule holding the deny messages, e.g. `data.gatehouse.deny`.
    pub query: Located<String>,
    /// The file's text, filled in by the loader (the gate evaluation itself does no I/O);
    /// `None` when it could not be read, which the loader reports and the gate blocks on.
    #[serde(skip)]
    #[schemars(skip)]
    pub source: Option<String>,
    /// `source` parsed by the loader, so a verdict does not parse it again; `None` when it
    /// could not be read or parsed (the gate then parses it itself and blocks on the error).
    #[serde(skip)]
    #[schemars(skip)]
    pub prepared: Option<crate::rego::PreparedPolicy>,
}

impl ReleaseClass {
    /// Emergency classes carry an `emergency` block (shortened path, retrospective review).
    pub fn is_emergency(&self) -> bool {
        self.emergency.is_some()
    }
}

document! {
    /// A security control, mapped to external standards.
    pub struct Control {
        /// Standard references such as "NIST SP 800-53 SI-4" or "ISO 27001 A.12.4".
        #[serde(default)]
        pub standards: Vec<String>,
        /// Person, team or role id accountable for the control.
        pub owner: Reference,
    }
}

/// One level of a likelihood or impact scale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScaleLevel {
    pub value: Located<u32>,
    pub label: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A named range of risk scores (likelihood × impact), inclusive on both ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScoreBand {
    pub name: String,
    pub min: Located<u32>,
    pub max: Located<u32>,
}

document! {
    /// How risks are scored: score = likelihood × impact, named by band.
    pub struct RiskModel {
        pub likelihood: Vec<ScaleLevel>,
        pub impact: Vec<ScaleLevel>,
        pub bands: Vec<ScoreBand>,
    }
}

// ---------------------------------------------------------------------------------------------
// Monitoring and on-call

/// Comparison used by metric triggers and health checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Comparison {
    Gt,
    Ge,
    Lt,
    Le,
    Eq,
    Ne,
}

/// Fires when `metric` compared with `threshold` holds for at least `for`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MetricTrigger {
    /// Where the metric comes from (e.g. "AWS CloudWatch", "aws_kms_keys").
    pub source: String,
    /// Metric name or query as the source understands it.
    pub metric: String,
    pub comparison: Comparison,
    pub threshold: f64,
    #[serde(default, rename = "for", skip_serializing_if = "Option::is_none")]
    pub for_duration: Option<Duration>,
}

/// What raises the alert: exactly one of a Sigma rule id or a metric threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertTrigger {
    /// Id of a Sigma rule (loaded by the detection engine, not a pack document).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sigma_rule: Option<Located<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<MetricTrigger>,
}

/// Who is notified first, and how.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertRouting {
    /// Schedule, team, person or role ids notified immediately.
    pub notify: Vec<Reference>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub channels: Vec<ContactKind>,
}

/// Response targets, measured from when the alert fires.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlertSla {
    pub acknowledge: Located<Duration>,
    pub initial_response: Located<Duration>,
    pub resolution: Located<Duration>,
}

/// Whether gatehouse acts on its own when the alert fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RemediationMode {
    /// Requires manual investigation.
    None,
    /// The runbook is suggested to the responder.
    Suggest,
    /// The runbook runs automatically.
    Automatic,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AutoRemediation {
    pub mode: RemediationMode,
    /// Runbook id to suggest or run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runbook: Option<Reference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

document! {
    /// A condition that pages someone (e.g. `KMS-CRIT-001` Encryption Key Disabled).
    pub struct Alert {
        pub severity: Located<SeverityLevel>,
        pub trigger: AlertTrigger,
        pub routing: AlertRouting,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub escalation_policy: Option<Reference>,
        pub sla: AlertSla,
        pub auto_remediation: AutoRemediation,
        /// Control ids this alert monitors.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub controls: Vec<Reference>,
    }
}

// ---------------------------------------------------------------------------------------------
// Security telemetry (Sigma detection)

/// A Sigma log source: which rules apply to a source's events (`docs/events.md`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogSourceSpec {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<Located<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<Located<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service: Option<Located<String>>,
}

/// Recognises a source's events by content, whatever ingestion source name they came under.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SourceRecognition {
    /// Dotted path of a field in the event as received.
    pub field: Located<String>,
    /// The field's value, compared as text.
    pub equals: String,
}

document! {
    /// Where security events come from: the ingestion source name is the document `id`
    /// (`POST /api/v1/events?source=<id>`), the Sigma log source its events provide, the field
    /// mappings that bind rule fields to its events, and how long they are kept.
    pub struct EventSource {
        #[serde(default)]
        pub logsource: LogSourceSpec,
        /// Also claim events of any ingestion source name whose field has this value.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub recognize: Option<SourceRecognition>,
        /// Field path in the event as received → Sigma/ECS field name rules use.
        #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
        pub fields: std::collections::BTreeMap<String, Located<String>>,
        /// How long events are kept (default 30d).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub retention: Option<Located<Duration>>,
    }
}

document! {
    /// Folders of Sigma rules (SigmaHQ YAML), relative to the pack folder; `Alert` documents
    /// name their rules by id in `trigger.sigma_rule`.
    pub struct DetectionRules {
        pub paths: Vec<Located<String>>,
        /// Only rule files whose path (relative to their folder) matches one of these globs.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub include: Vec<Located<String>>,
        /// Rule files whose relative path matches one of these globs are skipped.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub exclude: Vec<Located<String>>,
    }
}

/// The repeating on-call rotation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rotation {
    /// Person ids, in rotation order.
    pub participants: Vec<Reference>,
    /// How long each participant is on call.
    pub length: Located<Duration>,
    /// Local wall-clock time of the handoff, `HH:MM`.
    pub handoff_time: Located<String>,
    /// Date (`YYYY-MM-DD`) the first participant's shift starts.
    pub start_date: Located<String>,
}

/// A temporary replacement in the rotation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScheduleOverride {
    /// Person id covering the period.
    pub person: Reference,
    /// Local date-time `YYYY-MM-DDTHH:MM`.
    pub start: Located<String>,
    pub end: Located<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

document! {
    /// An on-call schedule.
    pub struct Schedule {
        /// IANA time zone of handoff times and overrides.
        pub time_zone: Located<String>,
        pub rotation: Rotation,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub overrides: Vec<ScheduleOverride>,
    }
}

/// One escalation step: after `wait` without acknowledgement, notify `notify`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EscalationStep {
    pub wait: Located<Duration>,
    /// Schedule, team, person or role ids.
    pub notify: Vec<Reference>,
}

document! {
    /// What happens when nobody acknowledges.
    pub struct EscalationPolicy {
        pub steps: Vec<EscalationStep>,
        /// How many times the whole sequence repeats after the last step.
        #[serde(default)]
        pub repeat: u32,
    }
}

document! {
    /// A support level (L1–L3) with response and resolution targets.
    pub struct SupportTier {
        /// 1, 2 or 3.
        pub level: Located<u32>,
        /// Team id staffing the tier.
        pub team: Reference,
        pub response_time: Located<Duration>,
        pub resolution_time: Located<Duration>,
        /// Support tier id to escalate to when unresolved.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub next_tier: Option<Reference>,
        /// Kinds of issues handled at this tier.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub handles: Vec<String>,
    }
}

/// Service level objectives a health check enforces.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SloThresholds {
    /// Minimum availability, percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability_percent: Option<Located<f64>>,
    /// Maximum response time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_latency: Option<Located<Duration>>,
    /// Maximum error rate, percent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_rate_percent: Option<Located<f64>>,
}

document! {
    /// A periodic probe of a component.
    pub struct HealthCheck {
        /// URL or component name probed.
        pub target: String,
        pub interval: Located<Duration>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub timeout: Option<Located<Duration>>,
        #[serde(default)]
        pub slo: SloThresholds,
        /// Alert id raised when the check fails.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub alert: Option<Reference>,
        /// Person, team or role id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub owner: Option<Reference>,
    }
}

// ---------------------------------------------------------------------------------------------
// Procedures

document! {
    /// A recurring operational procedure (e.g. quarterly access review).
    pub struct Runbook {
        pub frequency: Recurrence,
        /// Person, team or role id that executes it.
        pub owner: Reference,
        #[serde(default)]
        pub prerequisites: Vec<String>,
        pub steps: Vec<Step>,
        pub expected_duration: Located<Duration>,
        /// Where completion is recorded (path or URL; may contain YYYY/QN placeholders).
        pub completion_record: String,
        #[serde(default)]
        pub escalation: Vec<EscalationRule>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub success_criteria: Vec<String>,
    }
}

/// "Classify as `severity` when …".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SeverityRule {
    pub severity: SeverityLevel,
    pub when: String,
}

/// A time box of an incident response, measured from detection (T+0).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaybookPhase {
    pub name: Located<String>,
    /// Offset from T+0 when the phase starts.
    pub starts_at: Located<Duration>,
    /// Offset from T+0 by which the phase ends.
    pub ends_at: Located<Duration>,
    pub steps: Vec<Step>,
}

document! {
    /// Incident response for one threat scenario.
    pub struct Playbook {
        pub trigger_conditions: Vec<String>,
        /// Alert ids that open this playbook.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        pub alerts: Vec<Reference>,
        pub severity_classification: Vec<SeverityRule>,
        /// Person, team, role or schedule id leading the response.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub incident_commander: Option<Reference>,
        pub phases: Vec<PlaybookPhase>,
        #[serde(default)]
        pub escalation_triggers: Vec<EscalationRule>,
        #[serde(default)]
        pub success_criteria: Vec<String>,
    }
}

/// How much of a maintenance task runs without people.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AutomationStatus {
    Automated,
    SemiAutomated,
    Manual,
}

/// Before or after the maintenance window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NoticeTiming {
    Before,
    After,
}

/// A notification sent `offset` before or after the maintenance window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Notice {
    pub timing: NoticeTiming,
    pub offset: Duration,
    /// Person, team, role or schedule ids.
    pub notify: Vec<Reference>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

document! {
    /// A scheduled maintenance task (patching, key rotation, certificate renewal).
    pub struct Maintenance {
        pub schedule: Recurrence,
        pub automation: AutomationStatus,
        /// Person, team or role id.
        pub owner: Reference,
        pub procedure: Vec<Step>,
        pub validation: Vec<String>,
        pub rollback: String,
        /// Expected service impact; "0" for none.
        pub downtime: Duration,
        #[serde(default)]
        pub notification: Vec<Notice>,
    }
}

// ---------------------------------------------------------------------------------------------
// Measurement and improvement

/// Whether a higher or lower value is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum KpiDirection {
    HigherIsBetter,
    LowerIsBetter,
}

/// How often a KPI is computed and reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Cadence {
    Realtime,
    Hourly,
    Daily,
    Weekly,
    Monthly,
    Quarterly,
    Annually,
}

/// Band boundaries. For `higher_is_better`: green when value ≥ `green`, yellow when ≥ `yellow`,
/// red otherwise (so `green` > `yellow`). For `lower_is_better` the comparisons flip
/// (`green` < `yellow`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KpiThresholds {
    pub green: Located<f64>,
    pub yellow: Located<f64>,
}

/// Traffic-light status of a KPI value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum KpiStatus {
    Green,
    Yellow,
    Red,
}

document! {
    /// A key performance indicator computed over gatehouse data.
    pub struct Kpi {
        /// Formula over gatehouse data, e.g. `count(encrypted_datastores) / count(datastores_with_pii) * 100`.
        pub calculation: String,
        pub data_source: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub unit: Option<String>,
        pub target: Located<f64>,
        pub direction: KpiDirection,
        pub thresholds: KpiThresholds,
        pub frequency: Cadence,
        /// Person, team or role ids that receive the KPI.
        pub audience: Vec<Reference>,
    }
}

impl Kpi {
    /// The traffic-light status of `value` under this KPI's thresholds and direction.
    pub fn status(&self, value: f64) -> KpiStatus {
        let (green, yellow) = (self.thresholds.green.value, self.thresholds.yellow.value);
        match self.direction {
            KpiDirection::HigherIsBetter if value >= green => KpiStatus::Green,
            KpiDirection::HigherIsBetter if value >= yellow => KpiStatus::Yellow,
            KpiDirection::LowerIsBetter if value <= green => KpiStatus::Green,
            KpiDirection::LowerIsBetter if value <= yellow => KpiStatus::Yellow,
            _ => KpiStatus::Red,
        }
    }
}

/// Where an improvement is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ImprovementStatus {
    Backlog,
    Approved,
    InProgress,
    Completed,
    Closed,
}

document! {
    /// An item of the continuous-improvement backlog.
    pub struct Improvement {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub category: Option<String>,
        /// Risk reduction potential: 3 high, 2 medium, 1 low.
        pub risk_reduction: Located<i64>,
        /// Implementation effort score: 3 low effort, 2 medium, 1 high effort.
        pub effort: Located<i64>,
        pub status: ImprovementStatus,
        /// Person, team or role id.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub owner: Option<Reference>,
        /// Due date `YYYY-MM-DD`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub due: Option<Located<String>>,
    }
}

impl Improvement {
    /// Priority score = risk reduction × effort score (9 is the best).
    pub fn priority_score(&self) -> i64 {
        self.risk_reduction.value.saturating_mul(self.effort.value)
    }
}

// ---------------------------------------------------------------------------------------------
// The sum of all kinds

/// Generates the `Kind` enum, the `Document` enum and their common accessors from one list,
/// so adding a kind is one line here.
macro_rules! kinds {
    ($( $kind:ident ),* $(,)?) => {
        /// The kind of a pack document (the value of its `kind:` key).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, JsonSchema)]
        pub enum Kind { $( $kind, )* }

        impl Kind {
            pub const ALL: &'static [Kind] = &[ $( Kind::$kind, )* ];

            pub fn as_str(self) -> &'static str {
                match self { $( Kind::$kind => stringify!($kind), )* }
            }

            pub fn parse(name: &str) -> Option<Kind> {
                match name { $( stringify!($kind) => Some(Kind::$kind), )* _ => None }
            }
        }

        /// Any pack document.
        #[derive(Debug, Clone, PartialEq, Serialize)]
        #[serde(untagged)]
        pub enum Document { $( $kind($kind), )* }

        impl Document {
            pub fn kind(&self) -> Kind {
                match self { $( Document::$kind(_) => Kind::$kind, )* }
            }
            /// The `kind:` value as written (always this document's kind name once loaded).
            pub fn kind_field(&self) -> &Located<String> {
                match self { $( Document::$kind(d) => &d.kind, )* }
            }
            pub fn id(&self) -> &Located<String> {
                match self { $( Document::$kind(d) => &d.id, )* }
            }
            pub fn title(&self) -> Option<&str> {
                match self { $( Document::$kind(d) => d.title.as_deref(), )* }
            }
            pub fn traces(&self) -> &[Trace] {
                match self { $( Document::$kind(d) => &d.traces, )* }
            }
            pub fn sabsa(&self) -> Option<&Sabsa> {
                match self { $( Document::$kind(d) => d.sabsa.as_ref(), )* }
            }
        }
    };
}

kinds!(
    Role,
    Person,
    Team,
    ReleaseClass,
    Control,
    RiskModel,
    Alert,
    Schedule,
    EscalationPolicy,
    SupportTier,
    HealthCheck,
    Runbook,
    Playbook,
    Maintenance,
    Kpi,
    Improvement,
    IdentityProvider,
    EventSource,
    DetectionRules,
);

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kpi(direction: KpiDirection, green: f64, yellow: f64) -> Kpi {
        Kpi {
            kind: Located::new("Kpi".into()),
            id: Located::new("k".into()),
            title: None,
            description: None,
            calculation: "x".into(),
            data_source: "y".into(),
            unit: None,
            target: Located::new(green),
            direction,
            thresholds: KpiThresholds {
                green: Located::new(green),
                yellow: Located::new(yellow),
            },
            frequency: Cadence::Daily,
            audience: vec![],
            traces: vec![],
            sabsa: None,
        }
    }

    #[test]
    fn kpi_status_follows_direction() {
        let coverage = kpi(KpiDirection::HigherIsBetter, 100.0, 95.0);
        assert_eq!(coverage.status(100.0), KpiStatus::Green);
        assert_eq!(coverage.status(97.0), KpiStatus::Yellow);
        assert_eq!(coverage.status(95.0), KpiStatus::Yellow);
        assert_eq!(coverage.status(94.9), KpiStatus::Red);
        let mttr = kpi(KpiDirection::LowerIsBetter, 2.0, 4.0);
        assert_eq!(mttr.status(1.5), KpiStatus::Green);
        assert_eq!(mttr.status(3.0), KpiStatus::Yellow);
        assert_eq!(mttr.status(4.5), KpiStatus::Red);
    }

    #[test]
    fn kind_names_round_trip() {
        for kind in Kind::ALL {
            assert_eq!(Kind::parse(kind.as_str()), Some(*kind));
        }
        assert_eq!(Kind::parse("role"), None, "kinds are case-sensitive");
    }
}
