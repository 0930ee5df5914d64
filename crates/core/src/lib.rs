//! gatehouse-core: see ARCHITECTURE.md.
