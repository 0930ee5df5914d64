//! gatehouse-evidence: see ARCHITECTURE.md.
