//! gatehouse-detect: see ARCHITECTURE.md.
