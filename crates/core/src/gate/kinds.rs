//! Which evidence satisfies a release class's `required_evidence[].kind`.
//!
//! Packs name what they need (`sast`, `sbom`, `test_results`, `threat_model`); uploads say what
//! format a file is (`sarif`, `cyclonedx`, `junit`, `threat-model`). This table joins the two.
//! A required kind is one of:
//! - a purpose from [`PURPOSES`] (`sbom` is satisfied by CycloneDX or SPDX),
//! - an evidence format name (`sarif`, `cyclonedx`, …, `rollback-plan`), or
//! - a document kind the pack declares, satisfied only by a document uploaded under exactly
//!   that kind.
//!
//! Underscores and hyphens are interchangeable and case is ignored (`threat_model` ==
//! `threat-model`). A name that is none of these and that no attached document declares is an
//! unknown kind, and the gate blocks on it rather than guess what could satisfy it.

use gatehouse_evidence::EvidenceKind;

/// Purposes packs name, and the evidence formats that serve each.
pub const PURPOSES: &[(&str, &[&str])] = &[
    ("sast", &["sarif"]),
    ("static-analysis", &["sarif"]),
    ("code-scanning", &["sarif"]),
    ("dast", &["sarif"]),
    ("secret-scan", &["sarif"]),
    ("iac-scan", &["sarif"]),
    ("sbom", &["cyclonedx", "spdx"]),
    ("vulnerability-scan", &["cyclonedx", "sarif"]),
    ("vex", &["openvex"]),
    ("test-results", &["junit"]),
    ("tests", &["junit"]),
    ("provenance", &["in-toto"]),
    ("attestation", &["in-toto"]),
    ("slsa-provenance", &["in-toto"]),
];

/// What a required kind resolves to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequiredKind {
    /// Satisfied by evidence of any of these format names.
    Formats(Vec<&'static str>),
    /// A pack-declared document kind (normalized name).
    Declared(String),
}

/// Lower-case with `-` for `_`: the one spelling kinds are compared in.
pub fn normalize(name: &str) -> String {
    name.trim().to_ascii_lowercase().replace('_', "-")
}

/// Resolves a `required_evidence[].kind` name.
pub fn resolve(required: &str) -> RequiredKind {
    let name = normalize(required);
    if let Some((_, formats)) = PURPOSES.iter().find(|(purpose, _)| *purpose == name) {
        return RequiredKind::Formats(formats.to_vec());
    }
    match name.parse::<EvidenceKind>() {
        Ok(kind) => {
            // Aliases such as `vex` or `dsse` parse to a canonical format; compare by it.
            let canonical = EvidenceKind::NAMES
                .iter()
                .copied()
                .find(|n| *n == kind.as_str());
            match canonical {
                Some(format) => RequiredKind::Formats(vec![format]),
                None => RequiredKind::Declared(name),
            }
        }
        Err(_) => RequiredKind::Declared(name),
    }
}

/// Whether evidence of `kind` serves `required`.
pub fn satisfies(kind: &EvidenceKind, required: &RequiredKind) -> bool {
    match required {
        RequiredKind::Formats(formats) => formats.iter().any(|f| *f == kind.as_str()),
        RequiredKind::Declared(name) => {
            matches!(kind, EvidenceKind::Document(_)) && normalize(kind.as_str()) == *name
        }
    }
}

/// Names a pack may use, for error messages.
pub fn known_names() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = PURPOSES.iter().map(|(p, _)| *p).collect();
    names.extend(EvidenceKind::NAMES.iter().copied());
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_evidence::DocumentKind;

    #[test]
    fn purposes_map_to_formats() {
        assert_eq!(
            resolve("sbom"),
            RequiredKind::Formats(vec!["cyclonedx", "spdx"])
        );
        assert_eq!(
            resolve("test_results"),
            RequiredKind::Formats(vec!["junit"])
        );
        assert!(satisfies(&EvidenceKind::Spdx, &resolve("SBOM")));
        assert!(!satisfies(&EvidenceKind::Junit, &resolve("sast")));
    }

    #[test]
    fn document_kinds_accept_either_spelling() {
        let threat_model = EvidenceKind::Document(DocumentKind::ThreatModel);
        assert!(satisfies(&threat_model, &resolve("threat_model")));
        assert!(satisfies(&threat_model, &resolve("threat-model")));
        assert!(!satisfies(&threat_model, &resolve("rollback_plan")));
    }

    #[test]
    fn format_aliases_resolve_to_the_canonical_format() {
        assert_eq!(resolve("vex"), RequiredKind::Formats(vec!["openvex"]));
        assert_eq!(resolve("dsse"), RequiredKind::Formats(vec!["in-toto"]));
        assert_eq!(resolve("cdx"), RequiredKind::Formats(vec!["cyclonedx"]));
    }

    #[test]
    fn other_names_are_declared_documents_only() {
        let required = resolve("pentest_report");
        assert_eq!(required, RequiredKind::Declared("pentest-report".into()));
        assert!(satisfies(
            &EvidenceKind::declared_document("pentest-report"),
            &required
        ));
        assert!(!satisfies(&EvidenceKind::Sarif, &required));
    }
}
