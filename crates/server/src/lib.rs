//! gatehouse-server: see ARCHITECTURE.md.
