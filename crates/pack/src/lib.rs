//! gatehouse-pack: the policy pack every gatehouse feature reads.
//!
//! A pack is a folder of YAML files, several `---` documents per file, each with `kind:` and
//! `id:`. This crate parses it into typed documents ([`model`]), reports everything wrong with
//! it as located [`Diagnostic`]s (loader findings and [`mod@lint`] rules in one list), renders those
//! findings as text, JSON or SARIF ([`render`]), publishes a JSON Schema of the format
//! ([`json_schema`]), builds the traceability graph ([`trace`]) and ships the example pack that
//! `gatehouse init` writes ([`example`]).
//!
//! The crate is pure: no async runtime, no database, no clock. The only I/O is reading the
//! pack folder in [`load`].
//!
//! ```no_run
//! let loaded = gatehouse_pack::load(std::path::Path::new("gatehouse")).unwrap();
//! if loaded.has_errors() {
//!     eprint!("{}", gatehouse_pack::render::text(&loaded.diagnostics, &loaded.sources));
//! }
//! for class in loaded.pack.release_classes() {
//!     println!("{}", class.id.as_str());
//! }
//! ```

pub mod detection;
pub mod diagnostic;
pub mod duration;
pub mod example;
pub mod lint;
pub mod located;
pub mod model;
pub mod rego;
pub mod render;
pub mod schema;
pub mod trace;

mod loader;
mod pack;

pub use diagnostic::{Diagnostic, Location, Severity, Sources};
pub use duration::{Duration, DurationError};
pub use lint::lint;
pub use loader::{
    LoadedPack, MAX_ALIAS_REPLAY_EVENTS, MAX_DIR_DEPTH, MAX_FILE_BYTES, MAX_FILES, MAX_PACK_BYTES,
    MAX_YAML_DEPTH, PackError, load, load_files, load_unlinted,
};
pub use located::Located;
pub use model::{Document, Kind};
pub use pack::{Entry, Pack};
pub use schema::json_schema;
