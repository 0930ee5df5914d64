//! gatehouse-store: see ARCHITECTURE.md.
