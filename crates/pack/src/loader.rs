//! Reading a pack folder into typed documents, turning every problem into a diagnostic.
//!
//! The loader is the only part of the crate that touches the file system. It is defensive
//! because pack folders are user input: files are size-capped before they are read, symlink
//! loops are detected, unreadable and non-UTF-8 files are reported and skipped, and YAML is
//! parsed with a budget (nesting depth, alias expansion, node count) so an alias bomb or a
//! 10,000-deep document yields a finding instead of exhausting memory or the stack.
//!
//! Each `---` document is parsed on its own: a broken document is reported and skipped while
//! the others in the same file still load. Dispatch on `kind` is done here rather than with a
//! serde tagged enum, because tagged enums buffer the input and lose source positions: a
//! top-level `kind: Name` line selects the struct directly (one parse per document); other
//! documents have their `kind`/`id` header read first. When the typed parse fails, `recover`
//! looks for the real cause (a syntax error further down) and for further unknown keys.
//! Files parse in parallel on a few threads; results are merged in path order, which is where
//! duplicate ids are found.

use std::fs;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::diagnostic::{Diagnostic, Location, Sources};
use crate::located::{LineOffsetGuard, Located};
use crate::model::{Document, Kind};
use crate::pack::{Entry, Pack};

/// Largest pack file read. Larger files are refused unread: a policy pack is hand-written
/// text, and the cap bounds memory whatever is dropped into the folder.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;
/// Most bytes read from all files of one pack together.
pub const MAX_PACK_BYTES: u64 = 256 * 1024 * 1024;
/// Deepest directory nesting followed below the pack root.
pub const MAX_DIR_DEPTH: usize = 32;
/// Most YAML files read from one pack.
pub const MAX_FILES: usize = 20_000;
/// Most findings collected from one document whose keys are wrong (see `recover`).
pub const MAX_FINDINGS_PER_DOCUMENT: usize = 50;
/// Most threads used to parse files.
pub const MAX_PARSE_THREADS: usize = 4;
/// Deepest YAML nesting (mappings and sequences) accepted in a document.
pub const MAX_YAML_DEPTH: usize = 64;
/// Most YAML events replayed through aliases in one document (alias-bomb guard).
pub const MAX_ALIAS_REPLAY_EVENTS: usize = 100_000;

/// Why loading could not even start. Everything else is a [`Diagnostic`].
#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error("pack folder {} does not exist", .0.display())]
    NotFound(PathBuf),
    #[error("{} is not a folder (a pack is a folder of YAML files)", .0.display())]
    NotADirectory(PathBuf),
    #[error("cannot read pack folder {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// A loaded pack with everything found wrong with it.
#[derive(Debug, Clone)]
pub struct LoadedPack {
    /// The documents that parsed, minus duplicates.
    pub pack: Pack,
    /// Loader and lint findings, sorted by file, line and column.
    pub diagnostics: Vec<Diagnostic>,
    /// Text of every file read, for rendering snippets.
    pub sources: Sources,
}

impl LoadedPack {
    pub fn has_errors(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity == crate::Severity::Error)
    }

    pub fn error_count(&self) -> usize {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == crate::Severity::Error)
            .count()
    }

    pub fn warning_count(&self) -> usize {
        self.diagnostics.len() - self.error_count()
    }
}

/// Loads every `*.yaml` / `*.yml` file under `dir` (recursively, in sorted path order) and
/// lints the result. Loader findings and lint findings come back together in
/// [`LoadedPack::diagnostics`]; a pack is usable when [`LoadedPack::has_errors`] is false.
pub fn load(dir: &Path) -> Result<LoadedPack, PackError> {
    let mut loaded = load_unlinted(dir)?;
    let lint = crate::lint::lint(&loaded.pack);
    loaded.diagnostics.extend(lint);
    let telemetry = crate::detection::lint(Some(dir), &loaded.pack, &loaded.sources);
    loaded.diagnostics.extend(telemetry);
    sort_diagnostics(&mut loaded.diagnostics);
    Ok(loaded)
}

/// Parses a pack from in-memory files (relative path, content) without touching the disk.
/// Used for the example pack and tests; runs the same parsing and lint as [`load`].
pub fn load_files<'a>(files: impl IntoIterator<Item = (&'a str, &'a str)>) -> LoadedPack {
    let mut files: Vec<(PathBuf, &str)> = files
        .into_iter()
        .map(|(p, t)| (PathBuf::from(p), t))
        .collect();
    files.sort_by(|a, b| a.0.cmp(&b.0));
    // Rego policy files are not YAML documents; release classes name them.
    let (rego, files): (Vec<_>, Vec<_>) = files
        .into_iter()
        .partition(|(p, _)| crate::rego::is_rego_file(p));
    let mut builder = Builder::default();
    for (path, text) in files {
        let parsed = parse_file(&path, text);
        builder.add_parsed(&path, path.as_os_str().as_encoded_bytes(), text, parsed);
    }
    let mut loaded = builder.finish();
    crate::detection::exclude_rule_files(Path::new(""), &mut loaded);
    crate::rego::attach_sources(None, &rego, &mut loaded);
    let lint = crate::lint::lint(&loaded.pack);
    loaded.diagnostics.extend(lint);
    let telemetry = crate::detection::lint(None, &loaded.pack, &loaded.sources);
    loaded.diagnostics.extend(telemetry);
    sort_diagnostics(&mut loaded.diagnostics);
    loaded
}

/// Loads without running the lint rules: syntax, types, unknown keys and duplicate ids only.
pub fn load_unlinted(dir: &Path) -> Result<LoadedPack, PackError> {
    let meta = match fs::metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(PackError::NotFound(dir.to_path_buf()));
        }
        Err(source) => {
            return Err(PackError::Io {
                path: dir.to_path_buf(),
                source,
            });
        }
    };
    if !meta.is_dir() {
        return Err(PackError::NotADirectory(dir.to_path_buf()));
    }
    let mut builder = Builder::default();
    let mut files = Vec::new();
    let mut ancestors = Vec::new();
    match fs::canonicalize(dir) {
        Ok(real) => ancestors.push(real),
        Err(source) => {
            return Err(PackError::Io {
                path: dir.to_path_buf(),
                source,
            });
        }
    }
    collect_files(dir, 0, &mut ancestors, &mut files, &mut builder.diagnostics);
    files.sort();
    if files.is_empty() {
        // Not an error (a new pack starts empty), but a wrong --pack path should not look clean.
        builder.diagnostics.push(
            Diagnostic::warning(
                "empty-pack",
                format!("no *.yaml or *.yml files under {}", dir.display()),
            )
            .at(Location::file(dir))
            .with_hint("check the folder, or run `gatehouse init` to write the example pack"),
        );
    }
    if files.len() > MAX_FILES {
        builder.diagnostics.push(
            Diagnostic::error(
                "too-many-files",
                format!(
                    "the pack has {} YAML files; only the first {MAX_FILES} were read",
                    files.len()
                ),
            )
            .at(Location::file(dir))
            .with_hint("split the folder into several packs or remove generated files"),
        );
        files.truncate(MAX_FILES);
    }
    let mut texts: Vec<(PathBuf, String)> = Vec::with_capacity(files.len());
    let mut total: u64 = 0;
    for path in files {
        // Each file is capped, but thousands of capped files could still exhaust memory.
        let size = fs::metadata(&path).map_or(0, |m| m.len());
        if size <= MAX_FILE_BYTES && total + size > MAX_PACK_BYTES {
            builder.diagnostics.push(
                Diagnostic::error(
                    "pack-too-large",
                    format!(
                        "{} not read: the pack's files together exceed the {} MiB limit",
                        path.display(),
                        MAX_PACK_BYTES / (1024 * 1024)
                    ),
                )
                .at(Location::file(&path))
                .with_hint("a policy pack is hand-written text; remove generated or data files"),
            );
            continue;
        }
        if let Some(text) = read_text(&path, &mut builder.diagnostics, &mut builder.sources) {
            total += text.len() as u64;
            texts.push((path, text));
        }
    }
    let parsed = parse_all(&texts);
    for ((path, text), parsed) in texts.iter().zip(parsed) {
        let relative = path.strip_prefix(dir).unwrap_or(path);
        builder.add_parsed(path, relative.as_os_str().as_encoded_bytes(), text, parsed);
    }
    let mut loaded = builder.finish();
    // Sigma rules in the pack's rule folders are not pack documents.
    crate::detection::exclude_rule_files(dir, &mut loaded);
    crate::rego::attach_sources(Some(dir), &[], &mut loaded);
    sort_diagnostics(&mut loaded.diagnostics);
    Ok(loaded)
}

/// Parses files on up to [`MAX_PARSE_THREADS`] threads, returning results in input order.
fn parse_all(texts: &[(PathBuf, String)]) -> Vec<FileParse> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, MAX_PARSE_THREADS)
        .min(texts.len().max(1));
    if threads == 1 {
        return texts.iter().map(|(p, t)| parse_file(p, t)).collect();
    }
    // Workers take the next unparsed file from a shared counter, so one large file does not
    // leave the other threads idle.
    let next = std::sync::atomic::AtomicUsize::new(0);
    let mut results: Vec<(usize, FileParse)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some((path, text)) = texts.get(i) else {
                            break;
                        };
                        done.push((i, parse_file(path, text)));
                    }
                    done
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    });
    results.sort_by_key(|(i, _)| *i);
    // A worker that panicked (a parser bug) lost its files; report them rather than vanish.
    let mut out = Vec::with_capacity(texts.len());
    let mut results = results.into_iter().peekable();
    for (i, (path, _)) in texts.iter().enumerate() {
        match results.next_if(|(j, _)| *j == i) {
            Some((_, parsed)) => out.push(parsed),
            None => out.push(FileParse {
                documents: Vec::new(),
                diagnostics: vec![
                    Diagnostic::error("io-error", "internal error while parsing this file")
                        .at(Location::file(path))
                        .with_hint("please report this as a gatehouse bug"),
                ],
            }),
        }
    }
    out
}

fn sort_diagnostics(diagnostics: &mut [Diagnostic]) {
    diagnostics.sort_by(|a, b| {
        a.location
            .cmp(&b.location)
            .then_with(|| a.severity.cmp(&b.severity))
            .then_with(|| a.code.cmp(b.code))
    });
}

fn is_pack_file(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml")
    )
}

fn is_symlink_loop(error: &io::Error) -> bool {
    // ELOOP: "Too many levels of symbolic links".
    error.raw_os_error() == Some(40)
}

fn io_diagnostic(path: &Path, error: &io::Error, what: &str) -> Diagnostic {
    if is_symlink_loop(error) {
        return Diagnostic::error(
            "symlink-loop",
            format!("{what} {} is a symbolic link loop", path.display()),
        )
        .at(Location::file(path))
        .with_hint("remove the link or point it at a real file");
    }
    let hint = match error.kind() {
        io::ErrorKind::PermissionDenied => "make the file readable by the gatehouse user",
        io::ErrorKind::NotFound => "the path is probably a dangling symbolic link",
        _ => "check the file system",
    };
    Diagnostic::error(
        "io-error",
        format!("cannot read {what} {}: {error}", path.display()),
    )
    .at(Location::file(path))
    .with_hint(hint)
}

/// Walks `dir`, appending YAML file paths. `ancestors` holds the canonical paths of the
/// directories on the current path, so a symlink back into one of them is a loop.
fn collect_files(
    dir: &Path,
    depth: usize,
    ancestors: &mut Vec<PathBuf>,
    files: &mut Vec<PathBuf>,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            diagnostics.push(io_diagnostic(dir, &e, "folder"));
            return;
        }
    };
    let mut paths: Vec<PathBuf> = Vec::new();
    for entry in entries {
        match entry {
            Ok(entry) => paths.push(entry.path()),
            Err(e) => diagnostics.push(io_diagnostic(dir, &e, "folder")),
        }
    }
    paths.sort();
    for path in paths {
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        // `metadata` follows symlinks, so a link to a folder is walked like the folder.
        let meta = match fs::metadata(&path) {
            Ok(meta) => meta,
            Err(e) => {
                if is_pack_file(&path) || is_symlink_loop(&e) {
                    diagnostics.push(io_diagnostic(&path, &e, "file"));
                }
                continue;
            }
        };
        if meta.is_dir() {
            if depth + 1 > MAX_DIR_DEPTH {
                diagnostics.push(
                    Diagnostic::error(
                        "too-deep",
                        format!(
                            "folder {} is nested more than {MAX_DIR_DEPTH} levels below the pack root; not read",
                            path.display()
                        ),
                    )
                    .at(Location::file(&path))
                    .with_hint("flatten the folder structure"),
                );
                continue;
            }
            let real = match fs::canonicalize(&path) {
                Ok(real) => real,
                Err(e) => {
                    diagnostics.push(io_diagnostic(&path, &e, "folder"));
                    continue;
                }
            };
            if ancestors.contains(&real) {
                diagnostics.push(
                    Diagnostic::error(
                        "symlink-loop",
                        format!(
                            "folder {} links back to {}, which contains it",
                            path.display(),
                            real.display()
                        ),
                    )
                    .at(Location::file(&path))
                    .with_hint("remove the symbolic link; it was not followed"),
                );
                continue;
            }
            ancestors.push(real);
            collect_files(&path, depth + 1, ancestors, files, diagnostics);
            ancestors.pop();
        } else if is_pack_file(&path) {
            if meta.is_file() {
                files.push(path);
            } else {
                diagnostics.push(
                    Diagnostic::error(
                        "io-error",
                        format!("{} is not a regular file; not read", path.display()),
                    )
                    .at(Location::file(&path))
                    .with_hint("pack files must be regular files (not pipes or devices)"),
                );
            }
        }
    }
}

/// Reads one file as UTF-8 text, refusing it when larger than [`MAX_FILE_BYTES`].
fn read_text(
    path: &Path,
    diagnostics: &mut Vec<Diagnostic>,
    sources: &mut Sources,
) -> Option<String> {
    let too_large = |size: String| {
        Diagnostic::error(
            "file-too-large",
            format!(
                "{} is {size}, over the {} MiB limit for a pack file; not read",
                path.display(),
                MAX_FILE_BYTES / (1024 * 1024)
            ),
        )
        .at(Location::file(path))
        .with_hint("split the file; pack files are hand-written policy and should be small")
    };
    let file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) => {
            diagnostics.push(io_diagnostic(path, &e, "file"));
            return None;
        }
    };
    if let Ok(meta) = file.metadata()
        && meta.len() > MAX_FILE_BYTES
    {
        diagnostics.push(too_large(format!("{} bytes", meta.len())));
        return None;
    }
    // The size check above can race with a writer; `take` keeps the bound regardless.
    let mut bytes = Vec::new();
    if let Err(e) = file.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes) {
        diagnostics.push(io_diagnostic(path, &e, "file"));
        return None;
    }
    if bytes.len() as u64 > MAX_FILE_BYTES {
        diagnostics.push(too_large("larger".to_owned()));
        return None;
    }
    match String::from_utf8(bytes) {
        Ok(text) => Some(text),
        Err(e) => {
            let bytes = e.as_bytes();
            let valid = e.utf8_error().valid_up_to();
            let prefix = String::from_utf8_lossy(&bytes[..valid]);
            let line = prefix.matches('\n').count() + 1;
            let column = prefix.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            let byte = bytes.get(valid).copied().unwrap_or(0);
            // Kept (lossily) only so the finding can show the line with a caret.
            sources.insert(path, String::from_utf8_lossy(bytes).into_owned());
            diagnostics.push(
                Diagnostic::error(
                    "not-utf8",
                    format!(
                        "invalid UTF-8 byte 0x{byte:02x} at byte offset {valid}; file not read"
                    ),
                )
                .at(Location::new(
                    path,
                    u32::try_from(line).unwrap_or(u32::MAX),
                    u32::try_from(column).unwrap_or(u32::MAX),
                ))
                .with_hint("save the file as UTF-8"),
            );
            None
        }
    }
}

/// A `---`-separated document of a file.
#[derive(Debug, PartialEq)]
pub(crate) struct Chunk<'a> {
    /// 1-based file line of the chunk's first line.
    pub first_line: u32,
    pub text: &'a str,
}

/// Splits a YAML stream at document-start markers (`---` at column 0 followed by whitespace,
/// a comment or the end of the line). A marker can only appear at column 0 in YAML, even
/// inside block scalars, so this matches the parser's own document boundaries. Each chunk keeps
/// its `---` line, so columns stay as written. Chunks with nothing but comments, directives and
/// markers are dropped.
pub(crate) fn split_documents(text: &str) -> Vec<Chunk<'_>> {
    let mut chunks = Vec::new();
    let mut start_byte = 0usize;
    let mut start_line = 1u32;
    let mut line_no = 1u32;
    let mut offset = 0usize;
    for line in text.split_inclusive('\n') {
        if line_no != start_line && is_document_start(line) {
            chunks.push(Chunk {
                first_line: start_line,
                text: &text[start_byte..offset],
            });
            start_byte = offset;
            start_line = line_no;
        }
        offset += line.len();
        line_no = line_no.saturating_add(1);
    }
    chunks.push(Chunk {
        first_line: start_line,
        text: &text[start_byte..],
    });
    chunks.retain(|c| has_content(c.text));
    chunks
}

fn is_document_start(line: &str) -> bool {
    let Some(rest) = line.strip_prefix("---") else {
        return false;
    };
    rest.is_empty() || rest.starts_with([' ', '\t', '\r', '\n', '#'])
}

fn has_content(text: &str) -> bool {
    text.lines().any(|line| {
        let t = line.trim();
        !(t.is_empty()
            || t.starts_with('#')
            || t.starts_with('%')
            || t == "..."
            || (t.starts_with("---") && t[3..].trim_start().starts_with('#'))
            || t == "---")
    })
}

/// The keys read before the concrete kind is known. Other keys are ignored here and checked
/// by the concrete struct.
#[derive(Deserialize)]
struct Header {
    kind: Option<Located<String>>,
    id: Option<Located<String>>,
}

fn parse_options() -> serde_saphyr::Options {
    let mut options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_depth: MAX_YAML_DEPTH,
            max_documents: 2,
            max_aliases: 10_000,
            max_nodes: 250_000,
            max_total_scalar_bytes: 16 * 1024 * 1024,
        },
        with_snippet: false,
    };
    options.alias_limits.max_total_replayed_events = MAX_ALIAS_REPLAY_EVENTS;
    options.alias_limits.max_replay_stack_depth = MAX_YAML_DEPTH;
    options
}

/// Accumulates documents, sources and diagnostics across files.
#[derive(Default)]
struct Builder {
    entries: Vec<Entry>,
    diagnostics: Vec<Diagnostic>,
    sources: Sources,
    hasher: Sha256,
    seen_ids: std::collections::HashMap<String, Location>,
}

impl Builder {
    fn add_parsed(&mut self, path: &Path, digest_name: &[u8], text: &str, parsed: FileParse) {
        // Path, length and bytes: renaming or moving a file changes the digest, and no two
        // different packs can produce the same byte stream.
        self.hasher.update((digest_name.len() as u64).to_le_bytes());
        self.hasher.update(digest_name);
        self.hasher.update((text.len() as u64).to_le_bytes());
        self.hasher.update(text.as_bytes());
        self.diagnostics.extend(parsed.diagnostics);
        for document in parsed.documents {
            self.accept(path, document);
        }
        self.sources.insert(path, text);
    }

    fn accept(&mut self, path: &Path, document: Document) {
        let id = document.id();
        let here = Location::new(path, id.line, id.column);
        if let Some(first) = self.seen_ids.get(&id.value) {
            self.diagnostics.push(
                Diagnostic::error(
                    "duplicate-id",
                    format!("id `{}` is already used by another document", id.value),
                )
                .at(here)
                .with_hint(format!(
                    "first defined at {first}; ids are unique across the pack"
                )),
            );
            return;
        }
        self.seen_ids.insert(id.value.clone(), here);
        self.entries.push(Entry {
            file: path.to_path_buf(),
            document,
        });
    }
}

/// The documents and findings of one file. Files parse independently (and in parallel);
/// cross-file checks such as duplicate ids happen when the results are merged in path order.
#[derive(Default)]
struct FileParse {
    documents: Vec<Document>,
    diagnostics: Vec<Diagnostic>,
}

fn parse_file(path: &Path, text: &str) -> FileParse {
    let mut parsed = FileParse::default();
    let body = text.strip_prefix('\u{feff}').unwrap_or(text);
    for chunk in split_documents(body) {
        if let Some(document) = parsed.parse_document(path, &chunk) {
            parsed.documents.push(document);
        }
    }
    parsed
}

impl FileParse {
    fn parse_document(&mut self, path: &Path, chunk: &Chunk<'_>) -> Option<Document> {
        let offset = chunk.first_line - 1;
        let _guard = LineOffsetGuard::new(offset);
        // Fast path: a block document states its kind on a top-level `kind: Name` line, so it
        // can be deserialized straight into its struct (one parse instead of two, which halves
        // load time). The struct's own `kind` field confirms the guess; anything unusual
        // (flow-style document, quoted kind, mismatch) takes the general path below.
        if let Some(kind) = quick_kind(chunk.text) {
            match parse_kind(kind, chunk) {
                Ok(document) if document.kind_field().value == kind.as_str() => {
                    return self.check_id(path, document);
                }
                Ok(_) => {}
                Err(e) => {
                    let document = self.recover(path, offset, chunk, kind, e)?;
                    return self.check_id(path, document);
                }
            }
        }
        let header: Header = match serde_saphyr::from_str_with_options(chunk.text, parse_options())
        {
            Ok(h) => h,
            Err(e) => {
                let mut d = yaml_diagnostic(path, offset, chunk, &e);
                if d.code == "wrong-type" && d.location == Some(first_content_location(path, chunk))
                {
                    d.message = "a pack document must be a mapping with `kind:` and `id:`".into();
                    d.hint =
                        Some("start the document with `kind: <Kind>` and `id: <id>` lines".into());
                }
                self.diagnostics.push(d);
                return None;
            }
        };
        let Some(kind_text) = header.kind else {
            self.diagnostics.push(
                Diagnostic::error("missing-kind", "document has no `kind:`")
                    .at(first_content_location(path, chunk))
                    .with_hint(format!("add `kind:` with one of: {}", kind_list())),
            );
            return None;
        };
        let Some(kind) = Kind::parse(&kind_text.value) else {
            self.diagnostics.push(
                Diagnostic::error(
                    "unknown-kind",
                    format!("unknown kind `{}`", kind_text.value),
                )
                .at(Location::new(path, kind_text.line, kind_text.column))
                .with_hint(format!("kind must be one of: {}", kind_list())),
            );
            return None;
        };
        if header.id.is_none() {
            self.diagnostics.push(missing_id(path, chunk, kind));
            return None;
        }
        match parse_kind(kind, chunk) {
            Ok(document) => self.check_id(path, document),
            Err(e) => {
                let document = self.recover(path, offset, chunk, kind, e)?;
                self.check_id(path, document)
            }
        }
    }

    fn check_id(&mut self, path: &Path, document: Document) -> Option<Document> {
        let id = document.id();
        if is_valid_id(&id.value) {
            return Some(document);
        }
        self.diagnostics.push(
            Diagnostic::error("invalid-id", format!("`{}` is not a valid id", id.value))
                .at(Location::new(path, id.line, id.column))
                .with_hint(
                    "ids start with a letter or digit and use letters, digits, `.`, `_`, `-` or `:`",
                ),
        );
        None
    }

    /// Reports a failed typed parse and looks for more findings in the same document.
    ///
    /// serde stops at the first problem, so on its own a document with three misspelt keys
    /// would need three lint runs. Unknown keys are therefore blanked out (lines kept, so
    /// positions stay right) and the document parsed again, up to [`MAX_FINDINGS_PER_DOCUMENT`]
    /// times. If what remains parses, the document is kept (its unknown keys have been
    /// reported as errors) so the lint rules check its references too.
    fn recover(
        &mut self,
        path: &Path,
        offset: u32,
        chunk: &Chunk<'_>,
        kind: Kind,
        first: serde_saphyr::Error,
    ) -> Option<Document> {
        // A type error can be an artifact of broken YAML later in the document (an unclosed
        // bracket reads as a sequence). Walking the whole document untyped finds syntax errors
        // and limit breaches, which are reported instead: they are the thing to fix first.
        if let Err(walk) = serde_saphyr::from_str_with_options::<serde::de::IgnoredAny>(
            chunk.text,
            parse_options(),
        ) {
            let d = yaml_diagnostic(path, offset, chunk, &walk);
            if matches!(d.code, "yaml-syntax" | "yaml-limit" | "duplicate-key") {
                self.diagnostics.push(d);
                return None;
            }
        }
        let mut error = first;
        let mut blanked: Option<String> = None;
        for _ in 0..MAX_FINDINGS_PER_DOCUMENT {
            self.report_typed_error(path, offset, chunk, kind, &error);
            let serde_saphyr::Error::SerdeUnknownField { .. } = &error else {
                return None;
            };
            let at = error.location()?;
            let text = blanked.as_deref().unwrap_or(chunk.text);
            let next = blank_block_key(
                text,
                usize::try_from(at.line()).ok()?,
                usize::try_from(at.column()).ok()?,
            )?;
            let retry = Chunk {
                first_line: chunk.first_line,
                text: &next,
            };
            match parse_kind(kind, &retry) {
                Ok(document) => return Some(document),
                Err(e) => error = e,
            }
            blanked = Some(next);
        }
        None
    }

    fn report_typed_error(
        &mut self,
        path: &Path,
        offset: u32,
        chunk: &Chunk<'_>,
        kind: Kind,
        error: &serde_saphyr::Error,
    ) {
        if let serde_saphyr::Error::SerdeMissingField { field: "id", .. } = error {
            self.diagnostics.push(missing_id(path, chunk, kind));
            return;
        }
        let mut d = yaml_diagnostic(path, offset, chunk, error);
        match error {
            serde_saphyr::Error::SerdeUnknownField {
                field, expected, ..
            } => {
                d.hint = Some(match closest(field, expected) {
                    Some(e) => format!("did you mean `{e}`?"),
                    None => {
                        format!("see `gatehouse schema` or docs/pack.md for the fields of {kind}")
                    }
                });
            }
            serde_saphyr::Error::SerdeUnknownVariant {
                variant, expected, ..
            } => {
                if let Some(e) = closest(variant, expected) {
                    d.hint = Some(format!("did you mean `{e}`?"));
                }
            }
            _ => {}
        }
        self.diagnostics.push(d);
    }
}

/// `text` with the block-style key at (`line`, `column`) and its value replaced by empty
/// lines, or `None` when the key is not a plain block key (e.g. inside a flow mapping or the
/// first key of a `- ` sequence item), where blanking could change the structure.
pub(crate) fn blank_block_key(text: &str, line: usize, column: usize) -> Option<String> {
    let lines: Vec<&str> = text.split_inclusive('\n').collect();
    let index = line.checked_sub(1)?;
    let key_line = lines.get(index)?;
    let indent = column.checked_sub(1)?;
    let (prefix, rest) = key_line.split_at(key_line.char_indices().nth(indent)?.0);
    if !prefix.chars().all(|c| c == ' ') || rest.starts_with(['{', '[', '-', '#']) {
        return None;
    }
    let mut end = index + 1;
    while let Some(next) = lines.get(end) {
        let content = next.trim_start_matches(' ');
        let next_indent = next.len() - content.len();
        let blank = content.trim().is_empty() || content.starts_with('#');
        // A block sequence may sit at the key's own indentation (`key:\n- a\n- b`).
        let same_level_item =
            next_indent == indent && (content.starts_with("- ") || content.trim_end() == "-");
        if blank || next_indent > indent || same_level_item {
            end += 1;
        } else {
            break;
        }
    }
    let mut out = String::with_capacity(text.len());
    for (i, l) in lines.iter().enumerate() {
        if (index..end).contains(&i) {
            if l.ends_with('\n') {
                out.push('\n');
            }
        } else {
            out.push_str(l);
        }
    }
    Some(out)
}

impl Builder {
    fn finish(self) -> LoadedPack {
        let digest = format!("{:x}", self.hasher.finalize());
        LoadedPack {
            pack: Pack::new(self.entries, digest),
            diagnostics: self.diagnostics,
            sources: self.sources,
        }
    }
}

/// The expected name closest to a misspelt one, if it is close enough to be a typo.
fn closest(written: &str, expected: &[&'static str]) -> Option<&'static str> {
    expected
        .iter()
        .map(|e| {
            (
                crate::lint::edit_distance(&written.to_lowercase(), &e.to_lowercase()),
                *e,
            )
        })
        .filter(|(distance, e)| *distance <= (e.len() / 3).max(2))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, e)| e)
}

fn missing_id(path: &Path, chunk: &Chunk<'_>, kind: Kind) -> Diagnostic {
    Diagnostic::error("missing-id", format!("{kind} document has no `id:`"))
        .at(first_content_location(path, chunk))
        .with_hint("add `id:`, unique across the pack; other documents refer to it")
}

/// The kind named on a top-level `kind: Name` line (column 0, plain scalar), if any.
fn quick_kind(text: &str) -> Option<Kind> {
    text.lines().find_map(|line| {
        let value = line.strip_prefix("kind:")?;
        let value = value.split(" #").next().unwrap_or(value).trim();
        Kind::parse(value)
    })
}

fn parse_kind(kind: Kind, chunk: &Chunk<'_>) -> Result<Document, serde_saphyr::Error> {
    Ok(match kind {
        Kind::Role => Document::Role(typed(chunk)?),
        Kind::Person => Document::Person(typed(chunk)?),
        Kind::Team => Document::Team(typed(chunk)?),
        Kind::ReleaseClass => Document::ReleaseClass(typed(chunk)?),
        Kind::Control => Document::Control(typed(chunk)?),
        Kind::RiskModel => Document::RiskModel(typed(chunk)?),
        Kind::Alert => Document::Alert(typed(chunk)?),
        Kind::Schedule => Document::Schedule(typed(chunk)?),
        Kind::EscalationPolicy => Document::EscalationPolicy(typed(chunk)?),
        Kind::SupportTier => Document::SupportTier(typed(chunk)?),
        Kind::HealthCheck => Document::HealthCheck(typed(chunk)?),
        Kind::Runbook => Document::Runbook(typed(chunk)?),
        Kind::Playbook => Document::Playbook(typed(chunk)?),
        Kind::Maintenance => Document::Maintenance(typed(chunk)?),
        Kind::Kpi => Document::Kpi(typed(chunk)?),
        Kind::Improvement => Document::Improvement(typed(chunk)?),
        Kind::IdentityProvider => Document::IdentityProvider(typed(chunk)?),
        Kind::EventSource => Document::EventSource(typed(chunk)?),
        Kind::DetectionRules => Document::DetectionRules(typed(chunk)?),
    })
}

fn typed<T: DeserializeOwned>(chunk: &Chunk<'_>) -> Result<T, serde_saphyr::Error> {
    serde_saphyr::from_str_with_options(chunk.text, parse_options())
}

fn kind_list() -> String {
    Kind::ALL
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Ids are used in URLs, traces and CLI arguments, so they avoid spaces and slashes.
pub(crate) fn is_valid_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | ':'))
        && id.len() <= 200
}

fn first_content_location(path: &Path, chunk: &Chunk<'_>) -> Location {
    for (i, line) in chunk.text.lines().enumerate() {
        let t = line.trim();
        if !t.is_empty() && !t.starts_with('#') && !t.starts_with("---") && !t.starts_with('%') {
            let column = line.chars().take_while(|c| c.is_whitespace()).count() + 1;
            let line_no = chunk.first_line + u32::try_from(i).unwrap_or(0);
            return Location::new(path, line_no, u32::try_from(column).unwrap_or(1));
        }
    }
    Location::new(path, chunk.first_line, 1)
}

/// Maps a parser error to a diagnostic with a stable code and a file position.
fn yaml_diagnostic(
    path: &Path,
    offset: u32,
    chunk: &Chunk<'_>,
    error: &serde_saphyr::Error,
) -> Diagnostic {
    use serde_saphyr::Error as E;
    let inner = match error {
        E::AliasError { error, .. } => error.as_ref(),
        other => other,
    };
    let (code, hint): (&'static str, Option<&str>) = match inner {
        E::SerdeUnknownField { .. } => ("unknown-key", None),
        E::SerdeMissingField { .. } => ("missing-key", Some("add the required key")),
        E::SerdeUnknownVariant { .. } => ("invalid-value", None),
        E::SerdeInvalidValue { .. } | E::Message { .. } => ("invalid-value", None),
        E::SerdeInvalidType { .. }
        | E::SerdeInvalidLength { .. }
        | E::InvalidScalar { .. }
        | E::NullIntoString { .. }
        | E::Unexpected { .. } => ("wrong-type", None),
        E::DuplicateMappingKey { .. } => (
            "duplicate-key",
            Some("remove one of the two entries; YAML keys are unique within a mapping"),
        ),
        E::Budget { .. }
        | E::AliasReplayLimitExceeded { .. }
        | E::AliasExpansionLimitExceeded { .. }
        | E::AliasReplayStackDepthExceeded { .. }
        | E::AliasReplayCounterOverflow { .. } => (
            "yaml-limit",
            Some(
                "pack documents are small; deep nesting and alias expansion are capped to keep loading safe",
            ),
        ),
        _ => ("yaml-syntax", None),
    };
    // The parser reports its own nesting guard as a plain message; it is a limit, not a typo.
    let rendered = error_message(inner);
    let (code, hint) = if code == "yaml-syntax" && rendered.contains("limit exceeded") {
        (
            "yaml-limit",
            Some(
                "pack documents are small; deep nesting and alias expansion are capped to keep loading safe",
            ),
        )
    } else {
        (code, hint)
    };
    let message = match inner {
        E::DuplicateMappingKey { key: Some(key), .. } => format!("duplicate key `{key}`"),
        E::DuplicateMappingKey { key: None, .. } => "duplicate key in a mapping".to_owned(),
        E::Budget {
            breach: serde_saphyr::budget::BudgetBreach::Depth { .. },
            ..
        } => format!("YAML nested deeper than the limit of {MAX_YAML_DEPTH} levels"),
        E::Budget { breach, .. } => format!("YAML safety limit exceeded: {breach:?}"),
        E::NullIntoString { .. } => "a value is required here, found nothing".to_owned(),
        E::Unexpected { expected, .. } => format!("expected {}", structure_description(expected)),
        E::InvalidScalar { ty, .. } => {
            format!("expected {}", scalar_description(ty))
        }
        _ if code == "yaml-limit" && rendered.contains("recursion limit") => {
            format!("YAML nested too deeply ({rendered})")
        }
        _ => rendered,
    };
    let hint = match (code, hint) {
        ("wrong-type", None) => Some("this key expects another type of value; see docs/pack.md"),
        ("yaml-syntax", None) => {
            Some("fix the YAML here; the other documents of the file were still checked")
        }
        ("invalid-value", None) => Some("see docs/pack.md for the values this key accepts"),
        (_, hint) => hint,
    };
    let location = match inner.location().or_else(|| error.location()) {
        Some(l) if l.line() > 0 => Location::new(
            path,
            u32::try_from(l.line())
                .unwrap_or(u32::MAX)
                .saturating_add(offset),
            u32::try_from(l.column()).unwrap_or(u32::MAX).max(1),
        ),
        _ => first_content_location(path, chunk),
    };
    let mut diagnostic = Diagnostic::error(code, message).at(location);
    if let Some(hint) = hint {
        diagnostic = diagnostic.with_hint(hint);
    }
    diagnostic
}

fn structure_description(expected: &str) -> String {
    match expected {
        "sequence start" => "a list, e.g. `[a, b]` or `- a` lines".to_owned(),
        "mapping start" => "a mapping of `key: value` pairs".to_owned(),
        "string scalar" => "a single text value, not a list or mapping".to_owned(),
        other => other.to_owned(),
    }
}

fn scalar_description(ty: &str) -> String {
    match ty {
        "u8" | "u16" | "u32" | "u64" | "usize" => "a whole number (0 or more)".to_owned(),
        "i8" | "i16" | "i32" | "i64" | "isize" => "a whole number".to_owned(),
        "f32" | "f64" => "a number".to_owned(),
        "bool" => "true or false".to_owned(),
        other => format!("a value of type {other}"),
    }
}

/// The parser's message without its own "at line X, column Y" suffix (we print the position
/// in file coordinates ourselves).
fn error_message(error: &serde_saphyr::Error) -> String {
    let options = serde_saphyr::render_options! {
        snippets: serde_saphyr::SnippetMode::Off,
    };
    let text = error.render_with_options(options);
    let text = match text.rfind(" at line ") {
        Some(i) if text[i..].contains("column") => text[..i].to_owned(),
        _ => text,
    };
    text.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_at_column_zero_markers_only() {
        let text = "kind: Role\nid: a\n---\nkind: Role\nid: b\n  ---\n--- # c\nkind: Role\n";
        let chunks = split_documents(text);
        assert_eq!(chunks.len(), 3);
        assert_eq!(chunks[0].first_line, 1);
        assert_eq!(chunks[1].first_line, 3);
        assert_eq!(chunks[1].text, "---\nkind: Role\nid: b\n  ---\n");
        assert_eq!(chunks[2].first_line, 7);
    }

    #[test]
    fn drops_comment_only_documents() {
        let chunks = split_documents("# header\n---\n# nothing\n---\nkind: Role\n");
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].first_line, 4);
    }

    #[test]
    fn blanking_a_key_keeps_line_numbers_and_drops_its_block() {
        let text = "kind: Role\nbogus:\n  nested: 1\n- item\nid: a\n";
        assert_eq!(
            blank_block_key(text, 2, 1).unwrap(),
            "kind: Role\n\n\n\nid: a\n"
        );
        let nested = "sla:\n  acknowlege: 5m\n  resolution: 1h\n";
        assert_eq!(
            blank_block_key(nested, 2, 3).unwrap(),
            "sla:\n\n  resolution: 1h\n"
        );
        assert_eq!(blank_block_key("a: {bogus: 1}\n", 1, 5), None);
        assert_eq!(blank_block_key("steps:\n  - bogus: 1\n", 2, 5), None);
    }

    #[test]
    fn ids_reject_spaces_and_slashes() {
        assert!(is_valid_id("KMS-CRIT-001"));
        assert!(is_valid_id("POL-2026-001.component.5-1"));
        assert!(!is_valid_id("a b"));
        assert!(!is_valid_id("a/b"));
        assert!(!is_valid_id("-a"));
        assert!(!is_valid_id(""));
    }
}
