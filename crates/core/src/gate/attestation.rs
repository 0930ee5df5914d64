//! Trust in an in-toto attestation, decided against the release class's `attestation` block.
//!
//! The evidence parser keeps each DSSE envelope's payload and signature bytes; the gate checks
//! them here, at evaluation time, against the keys of the pack *in force*. So trust is a
//! function of (pack, evidence bytes): a key added or revoked by a pack reload takes effect on
//! the next verdict without re-uploading anything, and the parsed facts stay a pure function
//! of the bytes (cacheable). It fails closed: no keys, a key that does not load, a signature by
//! an unknown key, a signature that does not verify, SLSA provenance from another builder or
//! another source repository — each blocks, naming the pack field and the envelope.

use gatehouse_evidence::{EnvelopeFacts, EvidenceError, SignatureCheck, TrustedKey, verify_dsse};
use gatehouse_pack::model::{AttestationPolicy, ReleaseClass};

use super::verdict::ReasonLevel;

/// A problem found with one envelope: level, reason code, message.
pub(super) type Problem = (ReasonLevel, &'static str, String);

/// DER prefix of an Ed25519 SubjectPublicKeyInfo, in base64: 12 bytes (a multiple of 3), so it
/// concatenates with the base64 of the 32 raw key bytes into the base64 of the whole SPKI.
const ED25519_SPKI_PREFIX_B64: &str = "MCowBQYDK2VwAyEA";

/// Loads the class's keys: PEM, base64 of a raw Ed25519 key, or base64 of a DER SPKI. Keys that
/// do not load are returned by id with the reason, never skipped silently.
pub fn trusted_keys(policy: &AttestationPolicy) -> (Vec<TrustedKey>, Vec<(String, String)>) {
    let mut keys = Vec::new();
    let mut invalid = Vec::new();
    for key in &policy.keys {
        let id = key.id.value.as_str();
        let text = key.public_key.value.trim();
        let loaded = if text.starts_with("-----BEGIN") {
            TrustedKey::from_pem(id, text)
        } else {
            let body = if text.len() == 44 && text.ends_with('=') {
                format!("{ED25519_SPKI_PREFIX_B64}{text}")
            } else {
                text.to_owned()
            };
            TrustedKey::from_pem(
                id,
                &format!("-----BEGIN PUBLIC KEY-----\n{body}\n-----END PUBLIC KEY-----\n"),
            )
        };
        match loaded {
            Ok(k) => keys.push(k),
            Err(e) => invalid.push((id.to_owned(), e.to_string())),
        }
    }
    (keys, invalid)
}

/// Compares source repositories the way producers write them: without `git+`, an `@ref`
/// suffix, `.git` or a trailing slash, case-insensitively.
pub fn normalize_repository(uri: &str) -> String {
    let uri = uri.trim();
    let uri = uri.strip_prefix("git+").unwrap_or(uri);
    // `@` after the scheme's `//host/` part starts a ref (`…/repo@refs/heads/main`); an `@`
    // in the authority (`user@host`) does not.
    let path_start = uri.find("://").map_or(0, |i| i + 3);
    let path_start = uri[path_start..]
        .find('/')
        .map_or(uri.len(), |i| path_start + i);
    let uri = match uri[path_start..].find('@') {
        Some(at) => &uri[..path_start + at],
        None => uri,
    };
    let uri = uri.trim_end_matches('/');
    let uri = uri.strip_suffix(".git").unwrap_or(uri);
    uri.to_ascii_lowercase()
}

/// The problems of envelope `index` (1-based) of attestation `item`.
pub(super) fn envelope_problems(
    class: &ReleaseClass,
    item: &str,
    index: usize,
    envelope: &EnvelopeFacts,
) -> Vec<Problem> {
    let mut problems = Vec::new();
    let policy = class.attestation.as_ref();
    match (&envelope.signature_check, &envelope.dsse) {
        (SignatureCheck::Verified(_), _) => {}
        (SignatureCheck::Unsigned, _) => problems.push((
            ReasonLevel::Warning,
            "attestation_unsigned",
            format!(
                "attestation {item} statement {index} is unsigned; it does not count as evidence"
            ),
        )),
        (SignatureCheck::NotChecked, None) => problems.push((
            ReasonLevel::Block,
            "attestation_unverified",
            format!(
                "attestation {item} envelope {index} carries no DSSE signature the gate can \
                 check against the pack's trusted keys"
            ),
        )),
        (SignatureCheck::NotChecked, Some(dsse)) => {
            let Some(policy) = policy.filter(|p| !p.keys.is_empty()) else {
                problems.push((
                    ReasonLevel::Block,
                    "attestation_unverified",
                    format!(
                        "attestation {item} envelope {index} cannot be verified: release class \
                         `{}` declares no trusted keys (`attestation.keys`)",
                        class.id.value
                    ),
                ));
                return problems;
            };
            let (keys, invalid) = trusted_keys(policy);
            for (id, reason) in &invalid {
                problems.push((
                    ReasonLevel::Block,
                    "attestation_key_invalid",
                    format!(
                        "trusted key `{id}` of release class `{}` (`attestation.keys`) does \
                         not load: {reason}",
                        class.id.value
                    ),
                ));
            }
            match verify_dsse(dsse, &keys) {
                Ok(_) => {}
                Err(EvidenceError::Unsigned { .. }) => problems.push((
                    ReasonLevel::Block,
                    "attestation_unsigned",
                    format!("attestation {item} envelope {index} has no signature"),
                )),
                Err(_) => {
                    let key_ids: Vec<&str> = keys.iter().map(TrustedKey::id).collect();
                    let claimed: Vec<&str> = dsse
                        .signatures
                        .iter()
                        .filter_map(|s| s.keyid.as_deref())
                        .filter(|k| !k.is_empty())
                        .collect();
                    let trusted_claim = claimed.iter().find(|k| key_ids.contains(k));
                    let (code, why) = match trusted_claim {
                        Some(claimed) => (
                            "attestation_bad_signature",
                            format!(
                                "its signature names trusted key `{claimed}` but does not \
                                 verify: the payload was altered after signing or the \
                                 signature is corrupt"
                            ),
                        ),
                        None => (
                            "attestation_unknown_key",
                            format!(
                                "it is signed by a key the class does not trust{}",
                                if claimed.is_empty() {
                                    String::new()
                                } else {
                                    format!(" (key id {})", claimed.join(", "))
                                }
                            ),
                        ),
                    };
                    problems.push((
                        ReasonLevel::Block,
                        code,
                        format!(
                            "attestation {item} envelope {index}: {why}; trusted keys of class \
                             `{}`: {}",
                            class.id.value,
                            if key_ids.is_empty() {
                                "none that load".to_owned()
                            } else {
                                key_ids.join(", ")
                            }
                        ),
                    ));
                }
            }
        }
    }
    if let (Some(slsa), Some(policy)) = (&envelope.slsa, policy) {
        if !policy.builder_ids.is_empty() {
            let ok = slsa
                .builder_id
                .as_deref()
                .is_some_and(|b| policy.builder_ids.iter().any(|x| x.value == b));
            if !ok {
                problems.push((
                    ReasonLevel::Block,
                    "attestation_builder_unexpected",
                    format!(
                        "attestation {item} envelope {index}: SLSA provenance builder {} is not \
                         one of class `{}`'s `attestation.builder_ids` ({})",
                        slsa.builder_id
                            .as_deref()
                            .map_or_else(|| "(none)".to_owned(), |b| format!("`{b}`")),
                        class.id.value,
                        policy
                            .builder_ids
                            .iter()
                            .map(|b| b.value.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
        if !policy.source_repositories.is_empty() {
            let ok = slsa.source_repository.as_deref().is_some_and(|r| {
                let r = normalize_repository(r);
                policy
                    .source_repositories
                    .iter()
                    .any(|x| normalize_repository(&x.value) == r)
            });
            if !ok {
                problems.push((
                    ReasonLevel::Block,
                    "attestation_source_unexpected",
                    format!(
                        "attestation {item} envelope {index}: SLSA provenance source {} is not \
                         one of class `{}`'s `attestation.source_repositories` ({})",
                        slsa.source_repository
                            .as_deref()
                            .map_or_else(|| "(none)".to_owned(), |r| format!("`{r}`")),
                        class.id.value,
                        policy
                            .source_repositories
                            .iter()
                            .map(|r| r.value.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                ));
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repositories_compare_without_scheme_decorations() {
        let want = normalize_repository("https://github.com/acme/payments");
        for same in [
            "git+https://github.com/acme/payments@refs/heads/main",
            "https://github.com/Acme/Payments.git",
            "https://github.com/acme/payments/",
        ] {
            assert_eq!(normalize_repository(same), want, "{same}");
        }
        assert_ne!(
            normalize_repository("https://github.com/mallory/payments"),
            want
        );
        assert_eq!(
            normalize_repository("ssh://git@github.com/acme/payments.git"),
            "ssh://git@github.com/acme/payments"
        );
    }
}
