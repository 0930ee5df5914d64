//! The pack's security telemetry: `EventSource` and `DetectionRules` documents, turned into
//! what the detection engine runs with, and checked against the rule folders on disk.
//!
//! Sigma rules are not pack documents (they are SigmaHQ YAML, shared as is), but a pack names
//! the folders that hold them (`DetectionRules`) and its `Alert` documents name rules by id
//! (`trigger.sigma_rule`). This module is where the two meet, so the server, `gatehouse hunt`
//! and `gatehouse lint` read rules and field mappings from a pack the same way:
//!
//! * files under a rule folder inside the pack folder are not pack documents: the loader
//!   leaves them out ([`exclude_rule_files`]) while its digest still covers them, so editing a
//!   rule changes the pack digest and a reload recompiles the rules;
//! * [`load_rules`] reads the rule folders (with their include/exclude globs);
//! * [`source_configs`] / [`source_map`] turn `EventSource` documents into the detect crate's
//!   field mappings, [`retention_by_source`] into retention per source;
//! * [`lint`] reports missing rule folders, `Alert`s naming a rule id no folder holds, rules
//!   that do not load (warnings, with the rule's file and line), invalid source names and
//!   mappings to empty names.
//!
//! | code | what |
//! | --- | --- |
//! | `missing-rule-folder` | a `DetectionRules` path that does not exist |
//! | `unknown-sigma-rule` | an `Alert` names a Sigma rule id that no rule folder of the pack holds |
//! | `sigma-rule-not-loaded` (warning) | a rule file in a rule folder that the engine cannot load, with the reason |
//! | `empty-field-name` | an `EventSource` field mapping with an empty path or name |
//! | `invalid-source-name` | an `EventSource` id that is not a valid ingestion source name |

use std::collections::{BTreeMap, HashSet};
use std::path::{Component, Path, PathBuf};

use gatehouse_detect::mapping::{FieldMapping, MappingError, Recognition, SourceConfig, SourceMap};
use gatehouse_detect::rule::{LoadOptions, LogSource, RuleSet};

use crate::diagnostic::{Diagnostic, Location, Sources};
use crate::loader::LoadedPack;
use crate::model::{DetectionRules, EventSource};
use crate::pack::Pack;

/// Default retention of a source's events.
pub const DEFAULT_RETENTION_DAYS: i64 = 30;

/// Why the pack's rules could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RulesError {
    #[error("rule folder {path} (DetectionRules `{document}`): {source}")]
    Folder {
        document: String,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Lexically normalised join (`./rules/` and `rules` name the same folder).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other),
        }
    }
    out
}

/// The folders (or files) a `DetectionRules` document names, resolved against `pack_dir`.
pub fn rule_paths(pack_dir: &Path, doc: &DetectionRules) -> Vec<PathBuf> {
    doc.paths
        .iter()
        .map(|p| normalize(&pack_dir.join(p.as_str())))
        .collect()
}

/// Removes files under the pack's rule folders from the pack documents (and their loader
/// findings): they are Sigma rules, read by [`load_rules`]. `pack_dir` is the folder the
/// loader was given (empty for in-memory packs).
pub(crate) fn exclude_rule_files(pack_dir: &Path, loaded: &mut LoadedPack) {
    let folders: Vec<PathBuf> = loaded
        .pack
        .detection_rules()
        .flat_map(|d| rule_paths(pack_dir, d))
        .collect();
    if folders.is_empty() {
        return;
    }
    let inside = |file: &Path| {
        let file = normalize(file);
        folders.iter().any(|f| file.starts_with(f))
    };
    loaded
        .diagnostics
        .retain(|d| d.location.as_ref().is_none_or(|l| !inside(&l.file)));
    if loaded.pack.entries().iter().any(|e| inside(&e.file)) {
        let entries = loaded
            .pack
            .entries()
            .iter()
            .filter(|e| !inside(&e.file))
            .cloned()
            .collect();
        loaded.pack = Pack::new(entries, loaded.pack.digest());
    }
}

/// Whether `text` matches the glob `pattern` (`*` any run of characters, `?` one).
fn glob_match(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

fn selected(doc: &DetectionRules, relative: &str) -> bool {
    (doc.include.is_empty() || doc.include.iter().any(|g| glob_match(g, relative)))
        && !doc.exclude.iter().any(|g| glob_match(g, relative))
}

fn collect_yaml(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if dir.is_file() {
        out.push(dir.to_path_buf());
        return Ok(());
    }
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect_yaml(&path, out)?;
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yml" | "yaml")
        ) {
            out.push(path);
        }
    }
    Ok(())
}

/// Reads every rule of the pack's `DetectionRules` folders into `set` (call
/// [`RuleSet::resolve`] once everything is added). A folder that cannot be read is an error;
/// a rule that does not load is in `set.problems` with its file and line.
pub fn load_rules(
    pack_dir: &Path,
    pack: &Pack,
    options: &LoadOptions,
    set: &mut RuleSet,
) -> Result<(), RulesError> {
    for doc in pack.detection_rules() {
        for folder in rule_paths(pack_dir, doc) {
            let err = |source| RulesError::Folder {
                document: doc.id.value.clone(),
                path: folder.clone(),
                source,
            };
            if doc.include.is_empty() && doc.exclude.is_empty() {
                // The detect crate parses a folder's files on all cores.
                set.add_path(&folder, options).map_err(err)?;
                continue;
            }
            let mut files = Vec::new();
            collect_yaml(&folder, &mut files).map_err(err)?;
            for file in files {
                let relative = file
                    .strip_prefix(&folder)
                    .unwrap_or(&file)
                    .to_string_lossy()
                    .replace('\\', "/");
                if !selected(doc, &relative) {
                    continue;
                }
                let text = std::fs::read_to_string(&file).map_err(err)?;
                set.add_text(&file.display().to_string(), &text, options);
            }
        }
    }
    Ok(())
}

fn text(v: &Option<crate::Located<String>>) -> Option<String> {
    v.as_ref().map(|l| l.value.clone())
}

/// The detect crate's configuration of one `EventSource`.
pub fn source_config(doc: &EventSource) -> SourceConfig {
    SourceConfig {
        id: doc.id.value.clone(),
        logsource: LogSource {
            product: text(&doc.logsource.product),
            category: text(&doc.logsource.category),
            service: text(&doc.logsource.service),
        },
        recognize: doc.recognize.as_ref().map(|r| Recognition {
            field: r.field.value.clone(),
            equals: r.equals.clone(),
        }),
        fields: doc
            .fields
            .iter()
            .map(|(from, to)| FieldMapping {
                from: from.clone(),
                to: to.value.clone(),
            })
            .collect(),
    }
}

/// Every `EventSource` of the pack as detect-crate configuration.
pub fn source_configs(pack: &Pack) -> Vec<SourceConfig> {
    pack.event_sources().map(source_config).collect()
}

/// The pack's event sources compiled for matching (the built-in `windows` source included).
pub fn source_map(pack: &Pack) -> Result<SourceMap, MappingError> {
    SourceMap::new(source_configs(pack))
}

/// Retention of each declared source that sets one.
pub fn retention_by_source(pack: &Pack) -> BTreeMap<String, jiff::SignedDuration> {
    pack.event_sources()
        .filter_map(|s| {
            s.retention
                .as_ref()
                .map(|r| (s.id.value.clone(), r.value.to_signed()))
        })
        .collect()
}

/// Same rule as the server's ingestion `source` parameter: 1–64 of `[A-Za-z0-9._-]`.
fn valid_source_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// Lints the pack's telemetry documents. `pack_dir` is the pack folder on disk; `None` for an
/// in-memory pack, whose rule files are then read from `sources`.
pub fn lint(pack_dir: Option<&Path>, pack: &Pack, sources: &Sources) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    let base = pack_dir.unwrap_or(Path::new(""));
    for s in pack.event_sources() {
        let file = pack.file_of(&s.id.value).unwrap_or(Path::new(""));
        if !valid_source_name(&s.id.value) {
            out.push(
                Diagnostic::error(
                    "invalid-source-name",
                    format!(
                        "event source id `{}` is not a valid ingestion source name",
                        s.id.value
                    ),
                )
                .at(Location::new(file, s.id.line, s.id.column))
                .with_hint("use 1 to 64 letters, digits, '.', '_' or '-'"),
            );
        }
        for (from, to) in &s.fields {
            if from.trim().is_empty() || to.value.trim().is_empty() {
                out.push(
                    Diagnostic::error(
                        "empty-field-name",
                        format!("field mapping `{from}` → `{}` has an empty side", to.value),
                    )
                    .at(Location::new(file, to.line, to.column))
                    .with_hint("map a field path of the event to the field name rules use"),
                );
            }
        }
        if let Some(r) = &s.recognize
            && r.field.value.trim().is_empty()
        {
            out.push(
                Diagnostic::error("empty-field-name", "`recognize.field` is empty")
                    .at(Location::new(file, r.field.line, r.field.column)),
            );
        }
    }
    let docs: Vec<&DetectionRules> = pack.detection_rules().collect();
    if docs.is_empty() {
        // Rules then come from `serve --rules` / `hunt --rules`: Alerts cannot be checked here.
        return out;
    }
    let mut set = RuleSet::default();
    let options = LoadOptions::default();
    let mut complete = true;
    for doc in &docs {
        let file = pack.file_of(&doc.id.value).unwrap_or(Path::new(""));
        for (written, folder) in doc.paths.iter().zip(rule_paths(base, doc)) {
            let in_memory: Vec<&Path> = sources
                .paths()
                .filter(|p| normalize(p).starts_with(&folder))
                .collect();
            let exists = match pack_dir {
                Some(_) => folder.exists(),
                None => !in_memory.is_empty(),
            };
            if !exists {
                complete = false;
                out.push(
                    Diagnostic::error(
                        "missing-rule-folder",
                        format!("rule folder `{}` does not exist", written.value),
                    )
                    .at(Location::new(file, written.line, written.column))
                    .with_hint("paths are relative to the pack folder"),
                );
                continue;
            }
            if pack_dir.is_some() {
                continue;
            }
            for path in in_memory {
                let relative = normalize(path)
                    .strip_prefix(&folder)
                    .map(|r| r.to_string_lossy().replace('\\', "/"))
                    .unwrap_or_default();
                if let Some(text) = sources.get(path)
                    && selected(doc, &relative)
                {
                    set.add_text(&path.display().to_string(), text, &options);
                }
            }
        }
    }
    if let Some(dir) = pack_dir
        && complete
        && let Err(e) = load_rules(dir, pack, &options, &mut set)
    {
        complete = false;
        out.push(Diagnostic::error("missing-rule-folder", e.to_string()));
    }
    set.resolve();
    for problem in &set.problems {
        out.push(
            Diagnostic::warning("sigma-rule-not-loaded", problem.to_string())
                .at(Location::new(&problem.file, problem.line, 1))
                .with_hint("`gatehouse rules check --pack` lists every rule that does not load"),
        );
    }
    if !complete {
        // A missing folder already explains unknown rule ids.
        return out;
    }
    let mut known: HashSet<&str> = HashSet::new();
    for r in &set.rules {
        known.extend(r.id.as_deref());
        known.extend(r.name.as_deref());
    }
    for c in &set.correlations {
        known.extend(c.id.as_deref());
        known.extend(c.name.as_deref());
    }
    for alert in pack.alerts() {
        let Some(rule) = &alert.trigger.sigma_rule else {
            continue;
        };
        if !known.contains(rule.value.as_str()) {
            let file = pack.file_of(&alert.id.value).unwrap_or(Path::new(""));
            out.push(
                Diagnostic::error(
                    "unknown-sigma-rule",
                    format!(
                        "Sigma rule `{}` is not in the pack's rule folders (or does not load)",
                        rule.value
                    ),
                )
                .at(Location::new(file, rule.line, rule.column))
                .with_hint("name the `id` of a rule in a DetectionRules folder"),
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("*.yml", "a/b.yml"));
        assert!(glob_match("proc_*", "proc_creation_x.yml"));
        assert!(glob_match("a?c", "abc"));
        assert!(!glob_match("a?c", "ac"));
        assert!(!glob_match("*.yaml", "x.yml"));
    }

    #[test]
    fn paths_normalise() {
        assert_eq!(normalize(Path::new("p/./rules/../r")), PathBuf::from("p/r"));
    }
}
