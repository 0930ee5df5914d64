//! Rego policy files named by release classes (`policies: [{file, query}]`).
//!
//! Teams that already keep OPA policies can have the gate evaluate them. The gate evaluation
//! in `gatehouse-core` is pure (no I/O), so the policy text is read here, when the pack is
//! loaded, and carried in [`RegoPolicy::source`]. Reading it here also means a broken policy
//! is a pack error (`gatehouse pack lint`) with the file, line and column regorus reports,
//! rather than a surprise at the first gate check.
//!
//! The parse made for the lint is kept ([`RegoPolicy::prepared`], a [`PreparedPolicy`]): the gate
//! clones that engine for each verdict and only sets its input, instead of parsing every policy
//! of the class again at every verdict (docs/benchmarks.md, "Release gate").
//!
//! | code | when |
//! | --- | --- |
//! | `rego-policy-unreadable` | the file is missing, outside the pack folder, too large or not UTF-8 |
//! | `rego-policy-syntax` | regorus cannot parse the file (located where regorus says) |
//! | `rego-policy-query` | the query is not a `data.` rule path |

use std::fs;
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use crate::diagnostic::{Diagnostic, Location};
use crate::loader::{LoadedPack, MAX_FILE_BYTES};
use crate::model::RegoPolicy;

/// Whether `path` is a Rego file (kept out of the YAML documents by [`crate::load_files`]).
pub(crate) fn is_rego_file(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "rego")
}

/// Fills in the source of every class's policies and reports the broken ones.
///
/// `pack_dir` is the folder for [`crate::load`]; `memory` holds the `.rego` files given to
/// [`crate::load_files`] (relative path, text) when there is no folder.
pub(crate) fn attach_sources(
    pack_dir: Option<&Path>,
    memory: &[(PathBuf, &str)],
    loaded: &mut LoadedPack,
) {
    let mut diagnostics = Vec::new();
    let mut sources = Vec::new();
    // Named as the classes name them (relative to the pack folder), so the digest does not
    // depend on where the pack is checked out.
    let mut digested = Vec::new();
    for (class_file, policy) in loaded.pack.rego_policies_mut() {
        let declared = Location::new(class_file, policy.file.line, policy.file.column);
        let read = match pack_dir {
            Some(dir) => read_from_dir(dir, policy.file.as_str()),
            None => read_from_memory(memory, policy.file.as_str()),
        };
        let (path, text) = match read {
            Ok(found) => found,
            Err(problem) => {
                diagnostics.push(
                    Diagnostic::error(
                        "rego-policy-unreadable",
                        format!("Rego policy `{}`: {problem}", policy.file.as_str()),
                    )
                    .at(declared)
                    .with_hint("`file` is relative to the pack folder and must stay inside it"),
                );
                continue;
            }
        };
        if let Some(d) = check_query(policy, &declared) {
            diagnostics.push(d);
        }
        // Named as the class names it, as the gate evaluates it; the diagnostic is located in
        // the file as read.
        match PreparedPolicy::prepare(policy.file.as_str(), &text) {
            Ok(prepared) => policy.prepared = Some(prepared),
            Err(error) => diagnostics.push(syntax_error(&path, &error)),
        }
        digested.push((PathBuf::from(policy.file.as_str()), text.clone()));
        sources.push((path, text.clone()));
        policy.source = Some(text);
    }
    loaded.pack.fold_into_digest(&digested);
    for (path, text) in sources {
        loaded.sources.insert(path, text);
    }
    loaded.diagnostics.extend(diagnostics);
}

fn check_query(policy: &RegoPolicy, declared: &Location) -> Option<Diagnostic> {
    let query = policy.query.as_str();
    let valid = query.strip_prefix("data.").is_some_and(|rest| {
        !rest.is_empty()
            && rest.split('.').all(|part| {
                !part.is_empty() && part.chars().all(|c| c.is_alphanumeric() || c == '_')
            })
    });
    (!valid).then(|| {
        Diagnostic::error(
            "rego-policy-query",
            format!("Rego query `{query}` is not a rule path such as `data.gatehouse.deny`"),
        )
        .at(Location::new(
            declared.file.clone(),
            policy.query.line,
            policy.query.column,
        ))
    })
}

/// Parses `text` as regorus would at gate time; the error is located where regorus says.
pub fn parse(path: &Path, text: &str) -> Result<(), Box<Diagnostic>> {
    PreparedPolicy::prepare(&path.display().to_string(), text)
        .map(|_| ())
        .map_err(|error| Box::new(syntax_error(path, &error)))
}

fn syntax_error(path: &Path, error: &str) -> Diagnostic {
    let (line, column, message) = locate_error(error);
    Diagnostic::error("rego-policy-syntax", format!("Rego: {message}"))
        .at(Location::new(path, line, column))
}

/// A Rego policy parsed into a `regorus` engine, once per pack load.
///
/// Cloning it is cheap (one shared engine); [`PreparedPolicy::engine`] hands out a copy of the
/// engine whose parsed modules are shared, so each evaluation has its own input and state and
/// nothing one evaluation does is seen by another, or by another pack.
#[derive(Clone)]
pub struct PreparedPolicy(Arc<Prepared>);

struct Prepared {
    /// The text it was parsed from: a policy whose `source` was replaced since no longer
    /// matches ([`PreparedPolicy::is_for`]).
    source: String,
    engine: regorus::Engine,
    /// The package the policy declares, as `data.<package>`.
    package: String,
}

impl PreparedPolicy {
    /// Parses `source`, naming it `file` in errors (and in the engine); the error is regorus's
    /// text, location included (see [`locate_error`]).
    pub fn prepare(file: &str, source: &str) -> Result<Self, String> {
        let mut engine = regorus::Engine::new();
        let package = engine
            .add_policy(file.to_owned(), source.to_owned())
            .map_err(|e| e.to_string())?;
        // The first evaluation analyses the modules (rule schedules, functions, imports); a
        // trivial query does that now, once, and every clone keeps it. Should the analysis
        // fail, the engine stays unanalysed and each evaluation reports the error as before.
        let _ = engine.eval_query("true".to_owned(), false);
        Ok(Self(Arc::new(Prepared {
            source: source.to_owned(),
            engine,
            package,
        })))
    }

    /// Whether this was parsed from `source`.
    pub fn is_for(&self, source: &str) -> bool {
        self.0.source == source
    }

    /// A copy of the engine holding the parsed policy and no input, to evaluate once.
    pub fn engine(&self) -> regorus::Engine {
        self.0.engine.clone()
    }

    /// The package the policy declares, as `data.<package>`.
    pub fn package(&self) -> &str {
        &self.0.package
    }
}

impl std::fmt::Debug for PreparedPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedPolicy")
            .field("package", &self.0.package)
            .finish_non_exhaustive()
    }
}

/// Two policies prepared from the same text are the same policy.
impl PartialEq for PreparedPolicy {
    fn eq(&self, other: &Self) -> bool {
        self.0.source == other.0.source
    }
}

/// Splits a regorus error (`\n--> file:L:C\n  |\n…\nerror: message`) into line, column and
/// message; an error without a location keeps line and column 0 (unknown).
pub fn locate_error(text: &str) -> (u32, u32, String) {
    let located = text
        .lines()
        .find_map(|l| l.trim_start().strip_prefix("--> "));
    let position = located.and_then(|l| {
        let mut parts = l.rsplitn(3, ':');
        let column = parts.next()?.trim().parse::<u32>().ok()?;
        let line = parts.next()?.trim().parse::<u32>().ok()?;
        Some((line, column))
    });
    let message = text
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("error: "))
        .unwrap_or(text.trim())
        .to_owned();
    let (line, column) = position.unwrap_or((0, 0));
    (line, column, message)
}

fn read_from_memory(memory: &[(PathBuf, &str)], file: &str) -> Result<(PathBuf, String), String> {
    let wanted = Path::new(file);
    memory
        .iter()
        .find(|(p, _)| p == wanted)
        .map(|(p, t)| (p.clone(), (*t).to_owned()))
        .ok_or_else(|| "no such file in the pack".to_owned())
}

fn read_from_dir(dir: &Path, file: &str) -> Result<(PathBuf, String), String> {
    let relative = Path::new(file);
    if relative.is_absolute()
        || relative
            .components()
            .any(|c| !matches!(c, Component::Normal(_) | Component::CurDir))
    {
        return Err("the path must be relative to the pack folder, without `..`".to_owned());
    }
    if !is_rego_file(relative) {
        return Err("the file name must end in `.rego`".to_owned());
    }
    let path = dir.join(relative);
    // A symlink could still lead out of the pack: compare the real paths.
    let real_dir = fs::canonicalize(dir).map_err(|e| e.to_string())?;
    let real = fs::canonicalize(&path).map_err(|e| e.to_string())?;
    if !real.starts_with(&real_dir) {
        return Err("the file resolves to a path outside the pack folder".to_owned());
    }
    let file = fs::File::open(&real).map_err(|e| e.to_string())?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(format!(
            "larger than the {} MiB limit for a pack file",
            MAX_FILE_BYTES / (1024 * 1024)
        ));
    }
    let text = String::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_owned())?;
    Ok((path, text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locates_regorus_errors() {
        let (line, column, message) =
            locate_error("\n--> p/x.rego:3:7\n  |\n3 | deny x\n  |       ^\nerror: unexpected");
        assert_eq!((line, column, message.as_str()), (3, 7, "unexpected"));
        assert_eq!(locate_error("boom").0, 0);
    }
}
