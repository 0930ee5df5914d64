//! gatehouse-pack: see ARCHITECTURE.md.
