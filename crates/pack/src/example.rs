//! The example pack that `gatehouse init` writes: a complete pack modelled on the source
//! documents (release-gate standard, operational layer, handoff requirements). A test keeps it
//! lint-clean, so it doubles as the reference for every kind.

/// The example pack's files as (path relative to the pack folder, content).
pub fn files() -> Vec<(&'static str, &'static str)> {
    vec![
        ("identity.yaml", include_str!("../example/identity.yaml")),
        (
            "identity-providers.yaml",
            include_str!("../example/identity-providers.yaml"),
        ),
        (
            "release-classes.yaml",
            include_str!("../example/release-classes.yaml"),
        ),
        ("controls.yaml", include_str!("../example/controls.yaml")),
        ("on-call.yaml", include_str!("../example/on-call.yaml")),
        (
            "monitoring.yaml",
            include_str!("../example/monitoring.yaml"),
        ),
        (
            "procedures.yaml",
            include_str!("../example/procedures.yaml"),
        ),
        (
            "measurement.yaml",
            include_str!("../example/measurement.yaml"),
        ),
        ("telemetry.yaml", include_str!("../example/telemetry.yaml")),
        (
            "rules/proc_creation_lnx_whoami.yml",
            include_str!("../example/rules/proc_creation_lnx_whoami.yml"),
        ),
        (
            "rules/proc_creation_win_certutil_download.yml",
            include_str!("../example/rules/proc_creation_win_certutil_download.yml"),
        ),
    ]
}
