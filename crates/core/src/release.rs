//! Release records: what is asking to go to production, and who asked.
//!
//! A [`Release`] is created once from a [`NewRelease`] (the caller's input), after validation
//! that reports every problem at once so an API client can fix its request in one round trip.
//! Later issues attach evidence, requirements, risks and approvals to the release by its
//! [`ReleaseId`].

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::random::{self, RandomnessError};

/// Longest accepted service, version, class, owner or environment name, in bytes.
pub const MAX_NAME_LEN: usize = 200;
/// Longest accepted change summary, ticket or pull-request reference, in bytes.
pub const MAX_TEXT_LEN: usize = 4096;
/// Most artifact digests one release may carry.
pub const MAX_ARTIFACT_DIGESTS: usize = 1000;

/// Identifier of a release: a UUIDv7, so identifiers sort by creation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ReleaseId(Uuid);

impl ReleaseId {
    /// A new identifier whose time part is `at` (from the caller's clock) and whose remaining 74
    /// bits are random.
    pub fn generate(at: Timestamp) -> Result<Self, RandomnessError> {
        let mut random_bits = [0u8; 10];
        random::fill(&mut random_bits)?;
        // UUIDv7 holds milliseconds since the Unix epoch in 48 bits; instants before the epoch
        // are clamped to it (a release cannot predate 1970 in any real clock).
        let millis = u64::try_from(at.as_millisecond()).unwrap_or(0);
        Ok(Self(
            uuid::Builder::from_unix_timestamp_millis(millis, &random_bits).into_uuid(),
        ))
    }

    /// Wraps an existing UUID (e.g. read back from storage).
    pub fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }

    /// The underlying UUID.
    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for ReleaseId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// A string that is not a release identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{input}` is not a release id (expected a UUID such as 01890a5d-ac96-774b-bcce-b302099a8057)"
)]
pub struct InvalidReleaseId {
    /// The rejected input, truncated to a readable length.
    pub input: String,
}

impl FromStr for ReleaseId {
    type Err = InvalidReleaseId;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::try_parse(s).map(Self).map_err(|_| InvalidReleaseId {
            input: truncate_for_message(s),
        })
    }
}

/// A SHA-256 artifact digest in OCI form: `sha256:` followed by 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Digest(String);

/// Why a string is not a [`Digest`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidDigest {
    /// Only SHA-256 is accepted, written with its algorithm prefix.
    #[error("`{input}` does not start with `sha256:` (only SHA-256 digests are accepted)")]
    MissingAlgorithm { input: String },
    /// The hex part has the wrong length.
    #[error("`{input}` has {found} hex digits after `sha256:`; a SHA-256 digest has 64")]
    WrongLength { input: String, found: usize },
    /// The hex part contains a character other than `0-9a-f`.
    #[error("`{input}` contains `{found}`; a digest uses lowercase hex digits 0-9a-f only")]
    NotLowercaseHex { input: String, found: char },
}

impl Digest {
    const PREFIX: &'static str = "sha256:";

    /// Parses `sha256:<64 lowercase hex>`. Uppercase hex is refused rather than normalised, so
    /// one artifact has exactly one spelling (OCI's digest grammar requires lowercase too).
    pub fn parse(input: &str) -> Result<Self, InvalidDigest> {
        let shown = || truncate_for_message(input);
        let Some(hex) = input.strip_prefix(Self::PREFIX) else {
            return Err(InvalidDigest::MissingAlgorithm { input: shown() });
        };
        if let Some(found) = hex.chars().find(|c| !matches!(c, '0'..='9' | 'a'..='f')) {
            return Err(InvalidDigest::NotLowercaseHex {
                input: shown(),
                found,
            });
        }
        if hex.len() != 64 {
            return Err(InvalidDigest::WrongLength {
                input: shown(),
                found: hex.len(),
            });
        }
        Ok(Self(input.to_owned()))
    }

    /// The digest of `bytes`.
    pub fn of_bytes(bytes: &[u8]) -> Self {
        use sha2::Digest as _;
        Self(format!(
            "{}{}",
            Self::PREFIX,
            hex::encode(sha2::Sha256::digest(bytes))
        ))
    }

    /// The full `sha256:<hex>` form.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 64 hex digits without the algorithm prefix.
    pub fn hex(&self) -> &str {
        self.0.get(Self::PREFIX.len()..).unwrap_or_default()
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Digest {
    type Err = InvalidDigest;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for Digest {
    type Error = InvalidDigest;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<Digest> for String {
    fn from(value: Digest) -> Self {
        value.0
    }
}

/// Why the change is being made, with links a reviewer follows.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ChangeContext {
    /// One or a few sentences: what changes and why.
    pub summary: String,
    /// Ticket reference or URL (e.g. `CHG-1042` or an issue tracker link).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ticket: Option<String>,
    /// Pull-request reference or URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pull_request: Option<String>,
}

/// A release as recorded: immutable identity and context of one deployment request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    pub id: ReleaseId,
    /// The service being released (e.g. `payments`).
    pub service: String,
    /// The version being released (e.g. `2.14.0` or a commit id).
    pub version: String,
    /// Id of the pack's `ReleaseClass` that governs this release (e.g. `normal`, `emergency`).
    pub release_class: String,
    /// Digests of the artifacts that will be deployed; evidence subjects must match them.
    pub artifact_digests: Vec<Digest>,
    /// Accountable owner: a pack `Team` or `Person` id.
    pub owner: String,
    pub change: ChangeContext,
    /// Where the release is going (e.g. `production`).
    pub target_environment: String,
    /// Principal id of whoever submitted the release (separation of duties reads this).
    pub submitter: String,
    pub created_at: Timestamp,
}

/// A release request as received from a client, before validation.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NewRelease {
    pub service: String,
    pub version: String,
    pub release_class: String,
    /// Digests as the client wrote them; validated into [`Digest`]s.
    #[serde(default)]
    pub artifact_digests: Vec<String>,
    pub owner: String,
    #[serde(default)]
    pub change: ChangeContext,
    pub target_environment: String,
}

/// One thing wrong with a [`NewRelease`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldProblem {
    /// The field, as named in the JSON request (e.g. `artifact_digests[2]`).
    pub field: String,
    pub problem: String,
}

/// A [`NewRelease`] that cannot become a [`Release`]; lists every problem found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid release: {}", describe(.problems))]
pub struct InvalidRelease {
    pub problems: Vec<FieldProblem>,
}

fn describe(problems: &[FieldProblem]) -> String {
    problems
        .iter()
        .map(|p| format!("{}: {}", p.field, p.problem))
        .collect::<Vec<_>>()
        .join("; ")
}

impl NewRelease {
    /// Validates the request and turns it into a release submitted by `submitter` at
    /// `created_at`. Every problem is reported, not only the first.
    pub fn into_release(
        self,
        id: ReleaseId,
        submitter: &str,
        created_at: Timestamp,
    ) -> Result<Release, InvalidRelease> {
        let mut problems = Vec::new();
        check_name(&mut problems, "service", &self.service);
        check_name(&mut problems, "version", &self.version);
        check_name(&mut problems, "release_class", &self.release_class);
        check_name(&mut problems, "owner", &self.owner);
        check_name(
            &mut problems,
            "target_environment",
            &self.target_environment,
        );
        check_text(&mut problems, "change.summary", &self.change.summary, false);
        if let Some(ticket) = &self.change.ticket {
            check_text(&mut problems, "change.ticket", ticket, true);
        }
        if let Some(pr) = &self.change.pull_request {
            check_text(&mut problems, "change.pull_request", pr, true);
        }
        if submitter.trim().is_empty() {
            problems.push(FieldProblem {
                field: "submitter".into(),
                problem: "must not be empty".into(),
            });
        }

        let mut digests: Vec<Digest> = Vec::with_capacity(self.artifact_digests.len());
        if self.artifact_digests.len() > MAX_ARTIFACT_DIGESTS {
            problems.push(FieldProblem {
                field: "artifact_digests".into(),
                problem: format!(
                    "{} digests given; at most {MAX_ARTIFACT_DIGESTS} are accepted",
                    self.artifact_digests.len()
                ),
            });
        } else {
            for (index, raw) in self.artifact_digests.iter().enumerate() {
                match Digest::parse(raw) {
                    Ok(digest) if digests.contains(&digest) => problems.push(FieldProblem {
                        field: format!("artifact_digests[{index}]"),
                        problem: format!("`{digest}` is listed more than once"),
                    }),
                    Ok(digest) => digests.push(digest),
                    Err(e) => problems.push(FieldProblem {
                        field: format!("artifact_digests[{index}]"),
                        problem: e.to_string(),
                    }),
                }
            }
        }

        if !problems.is_empty() {
            return Err(InvalidRelease { problems });
        }
        Ok(Release {
            id,
            service: self.service,
            version: self.version,
            release_class: self.release_class,
            artifact_digests: digests,
            owner: self.owner,
            change: self.change,
            target_environment: self.target_environment,
            submitter: submitter.to_owned(),
            created_at,
        })
    }
}

fn check_name(problems: &mut Vec<FieldProblem>, field: &str, value: &str) {
    let problem = if value.trim().is_empty() {
        Some("must not be empty".to_owned())
    } else if value.len() > MAX_NAME_LEN {
        Some(format!(
            "is {} bytes long; at most {MAX_NAME_LEN} are accepted",
            value.len()
        ))
    } else if value.trim() != value {
        Some("must not start or end with whitespace".to_owned())
    } else if value.chars().any(char::is_control) {
        Some("must not contain control characters".to_owned())
    } else {
        None
    };
    if let Some(problem) = problem {
        problems.push(FieldProblem {
            field: field.to_owned(),
            problem,
        });
    }
}

fn check_text(problems: &mut Vec<FieldProblem>, field: &str, value: &str, required: bool) {
    let problem = if value.len() > MAX_TEXT_LEN {
        Some(format!(
            "is {} bytes long; at most {MAX_TEXT_LEN} are accepted",
            value.len()
        ))
    } else if required && value.trim().is_empty() {
        Some("must not be empty when given".to_owned())
    } else if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        Some("must not contain control characters other than newline and tab".to_owned())
    } else {
        None
    };
    if let Some(problem) = problem {
        problems.push(FieldProblem {
            field: field.to_owned(),
            problem,
        });
    }
}

/// Shortens hostile or huge input before it is echoed in an error message.
pub(crate) fn truncate_for_message(input: &str) -> String {
    const LIMIT: usize = 80;
    if input.len() <= LIMIT {
        return input.to_owned();
    }
    let mut end = LIMIT;
    while !input.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &input[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "sha256:2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae";

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(second).unwrap()
    }

    fn valid_request() -> NewRelease {
        NewRelease {
            service: "payments".into(),
            version: "2.14.0".into(),
            release_class: "normal".into(),
            artifact_digests: vec![GOOD.into()],
            owner: "team-payments".into(),
            change: ChangeContext {
                summary: "Rotate card tokenisation keys".into(),
                ticket: Some("CHG-1042".into()),
                pull_request: None,
            },
            target_environment: "production".into(),
        }
    }

    #[test]
    fn digest_accepts_lowercase_sha256() {
        let digest = Digest::parse(GOOD).unwrap();
        assert_eq!(digest.as_str(), GOOD);
        assert_eq!(digest.hex().len(), 64);
    }

    #[test]
    fn digest_of_bytes_matches_known_sha256() {
        // sha256("foo")
        assert_eq!(Digest::of_bytes(b"foo").as_str(), GOOD);
    }

    #[test]
    fn digest_rejects_other_algorithms() {
        let err = Digest::parse("sha512:abcd").unwrap_err();
        assert!(
            matches!(err, InvalidDigest::MissingAlgorithm { .. }),
            "{err}"
        );
        assert!(matches!(
            Digest::parse(&GOOD[7..]).unwrap_err(),
            InvalidDigest::MissingAlgorithm { .. }
        ));
    }

    #[test]
    fn digest_rejects_wrong_length() {
        let short = &GOOD[..GOOD.len() - 1];
        assert_eq!(
            Digest::parse(short).unwrap_err(),
            InvalidDigest::WrongLength {
                input: short.into(),
                found: 63
            }
        );
        let long = format!("{GOOD}0");
        assert!(matches!(
            Digest::parse(&long).unwrap_err(),
            InvalidDigest::WrongLength { found: 65, .. }
        ));
    }

    #[test]
    fn digest_rejects_uppercase_and_non_hex() {
        let upper = GOOD.replace('c', "C");
        assert!(matches!(
            Digest::parse(&upper).unwrap_err(),
            InvalidDigest::NotLowercaseHex { found: 'C', .. }
        ));
        let non_hex = GOOD.replace('f', "g");
        assert!(matches!(
            Digest::parse(&non_hex).unwrap_err(),
            InvalidDigest::NotLowercaseHex { found: 'g', .. }
        ));
    }

    #[test]
    fn digest_error_truncates_huge_input() {
        let huge = format!("sha256:{}", "z".repeat(100_000));
        let message = Digest::parse(&huge).unwrap_err().to_string();
        assert!(message.len() < 300, "{}", message.len());
    }

    #[test]
    fn digest_deserialization_validates() {
        let ok: Digest = serde_json::from_str(&format!("\"{GOOD}\"")).unwrap();
        assert_eq!(ok.as_str(), GOOD);
        assert!(serde_json::from_str::<Digest>("\"sha256:00\"").is_err());
    }

    #[test]
    fn release_id_carries_the_clock_time_and_is_random() {
        let created = at(1_800_000_000);
        let a = ReleaseId::generate(created).unwrap();
        let b = ReleaseId::generate(created).unwrap();
        assert_ne!(a, b);
        assert_eq!(a.as_uuid().get_version_num(), 7);
        let (secs, _) = a.as_uuid().get_timestamp().unwrap().to_unix();
        assert_eq!(secs, 1_800_000_000);
        assert!(ReleaseId::generate(at(1_800_000_001)).unwrap() > a);
    }

    #[test]
    fn release_id_parses_its_display_form() {
        let id = ReleaseId::generate(at(1_800_000_000)).unwrap();
        assert_eq!(id.to_string().parse::<ReleaseId>().unwrap(), id);
        assert!("not-a-uuid".parse::<ReleaseId>().is_err());
    }

    #[test]
    fn valid_request_becomes_a_release() {
        let id = ReleaseId::generate(at(1_800_000_000)).unwrap();
        let release = valid_request()
            .into_release(id, "alice", at(1_800_000_000))
            .unwrap();
        assert_eq!(release.id, id);
        assert_eq!(release.submitter, "alice");
        assert_eq!(release.artifact_digests, vec![Digest::parse(GOOD).unwrap()]);
    }

    #[test]
    fn invalid_request_reports_every_problem() {
        let mut request = valid_request();
        request.service = "  ".into();
        request.version = String::new();
        request.artifact_digests = vec![GOOD.into(), "md5:abc".into(), GOOD.into()];
        let id = ReleaseId::generate(at(1_800_000_000)).unwrap();
        let err = request
            .into_release(id, "alice", at(1_800_000_000))
            .unwrap_err();
        let fields: Vec<&str> = err.problems.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "service",
                "version",
                "artifact_digests[1]",
                "artifact_digests[2]"
            ]
        );
        assert!(err.to_string().contains("listed more than once"));
    }

    #[test]
    fn names_with_control_characters_or_padding_are_refused() {
        let mut request = valid_request();
        request.service = "pay\u{0}ments".into();
        request.version = " 1.0".into();
        let id = ReleaseId::generate(at(1_800_000_000)).unwrap();
        let err = request
            .into_release(id, "alice", at(1_800_000_000))
            .unwrap_err();
        assert_eq!(err.problems.len(), 2, "{err}");
    }

    #[test]
    fn too_many_digests_are_refused_without_parsing_them() {
        let mut request = valid_request();
        request.artifact_digests = vec![GOOD.into(); MAX_ARTIFACT_DIGESTS + 1];
        let id = ReleaseId::generate(at(1_800_000_000)).unwrap();
        let err = request
            .into_release(id, "alice", at(1_800_000_000))
            .unwrap_err();
        assert_eq!(err.problems.len(), 1);
        assert_eq!(err.problems[0].field, "artifact_digests");
    }
}
