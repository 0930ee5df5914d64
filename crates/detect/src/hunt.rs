//! Offline hunting: run the compiled rules over JSON and JSON-lines files.
//!
//! Input shapes: JSON lines (one event per line), one JSON document (pretty-printed or not,
//! possibly several concatenated), a JSON array of events, or plain text lines (each line an
//! event `{"message": …}` for keyword rules, e.g. network device logs). The shape is detected
//! from the content, not the file name.
//!
//! Bad input loses nothing and costs bounded memory: a malformed line is reported with its
//! line number and the rest of the file is processed; a line longer than
//! [`HuntOptions::max_line_bytes`] is skipped *while reading* (never buffered whole) and
//! reported; a document file larger than [`HuntOptions::max_document_bytes`] is refused; a
//! file that stops mid-line reports the truncated last line. JSON nesting deeper than
//! serde_json's limit (128) is a reported bad record, not a stack overflow.
//!
//! Large JSON-lines inputs are split into chunks of lines that worker threads match in
//! parallel; results are re-ordered so output follows the input.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use serde_json::Value;

use crate::engine::{Engine, MatchedField, Scratch};
use crate::event::event_timestamp;

/// Where an event was in its file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Location {
    /// 1-based line of a JSON-lines file.
    Line(u64),
    /// 0-based index of an element of a JSON array (or of a document in a document file).
    Index(u64),
}

/// A rule that matched an event.
#[derive(Debug, Clone)]
pub struct Detection {
    pub rule: usize,
    pub file: String,
    pub location: Location,
    pub timestamp: Option<String>,
    pub fields: Vec<MatchedField>,
    pub captures: Vec<(String, Option<String>)>,
}

/// An input record that could not be read as an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRecord {
    pub file: String,
    pub location: Location,
    pub reason: String,
}

/// Limits and parallelism.
#[derive(Debug, Clone)]
pub struct HuntOptions {
    pub threads: usize,
    pub max_line_bytes: usize,
    pub max_document_bytes: u64,
    /// Lines per work unit handed to a worker thread.
    pub chunk_lines: usize,
}

impl Default for HuntOptions {
    fn default() -> Self {
        HuntOptions {
            threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
            max_line_bytes: 16 * 1024 * 1024,
            max_document_bytes: 512 * 1024 * 1024,
            chunk_lines: 512,
        }
    }
}

/// Receives results in input order.
pub trait HuntSink {
    fn detection(&mut self, detection: Detection);
    fn bad_record(&mut self, bad: BadRecord);
    /// Bytes of input consumed so far in the current file (for progress display).
    fn progress(&mut self, _bytes: u64) {}
}

/// Counts for one file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FileStats {
    pub events: u64,
    pub bad_records: u64,
    pub bytes: u64,
    pub detections: u64,
}

#[derive(Default)]
struct ChunkResult {
    detections: Vec<Detection>,
    bad: Vec<BadRecord>,
    events: u64,
    bytes: u64,
}

enum LineItem {
    Text {
        line: u64,
        start: usize,
        end: usize,
        unterminated: bool,
    },
    TooLong {
        line: u64,
        length: u64,
    },
}

struct Chunk {
    data: Vec<u8>,
    items: Vec<LineItem>,
}

enum LineRead {
    Eof,
    Line { unterminated: bool },
    TooLong { length: u64 },
}

/// Reads one line into `buf` (without the newline), never holding more than `max` bytes.
fn read_bounded_line(
    reader: &mut impl BufRead,
    buf: &mut Vec<u8>,
    max: usize,
) -> io::Result<LineRead> {
    let start = buf.len();
    let mut length: u64 = 0;
    let mut too_long = false;
    loop {
        let available = match reader.fill_buf() {
            Ok(a) => a,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if available.is_empty() {
            if length == 0 {
                return Ok(LineRead::Eof);
            }
            return Ok(if too_long {
                LineRead::TooLong { length }
            } else {
                LineRead::Line { unterminated: true }
            });
        }
        let (take, done) = match memchr::memchr(b'\n', available) {
            Some(i) => (i, true),
            None => (available.len(), false),
        };
        length += take as u64;
        if !too_long {
            if (buf.len() - start) + take > max {
                too_long = true;
                buf.truncate(start);
            } else {
                buf.extend_from_slice(&available[..take]);
            }
        }
        let consumed = if done { take + 1 } else { take };
        reader.consume(consumed);
        if done {
            if too_long {
                return Ok(LineRead::TooLong { length });
            }
            if buf.last() == Some(&b'\r') {
                buf.pop();
            }
            return Ok(LineRead::Line {
                unterminated: false,
            });
        }
    }
}

/// Where an event came from, for reports, and the raw JSON text it was parsed from when there
/// is one (lets the engine prefilter keyword rules on the text).
struct Origin<'a> {
    file: &'a str,
    location: Location,
    raw: Option<&'a [u8]>,
}

fn match_doc(
    engine: &Engine,
    doc: &Value,
    origin: Origin<'_>,
    scratch: &mut Scratch,
    out: &mut Vec<Detection>,
) {
    let Origin {
        file,
        location,
        raw,
    } = origin;
    let matches = engine.match_event_raw(doc, raw, scratch);
    if matches.is_empty() {
        return;
    }
    let timestamp = event_timestamp(doc);
    for m in matches {
        out.push(Detection {
            rule: m.rule,
            file: file.to_owned(),
            location,
            timestamp: timestamp.clone(),
            fields: m.fields,
            captures: m.captures,
        });
    }
}

/// How lines of a line-oriented file are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineFormat {
    /// One JSON document per line.
    Json,
    /// Plain text (syslog, CLI audit logs): each line is an event `{"message": line}`, which
    /// keyword rules search.
    Text,
}

fn process_chunk(
    engine: &Engine,
    file: &str,
    chunk: &Chunk,
    format: LineFormat,
    scratch: &mut Scratch,
) -> ChunkResult {
    let mut result = ChunkResult::default();
    for item in &chunk.items {
        match item {
            LineItem::TooLong { line, length } => {
                result.bytes += length + 1;
                result.bad.push(BadRecord {
                    file: file.to_owned(),
                    location: Location::Line(*line),
                    reason: format!(
                        "line of {length} bytes exceeds the limit; skipped without buffering"
                    ),
                });
            }
            LineItem::Text {
                line,
                start,
                end,
                unterminated,
            } => {
                let bytes = &chunk.data[*start..*end];
                result.bytes += bytes.len() as u64 + 1;
                if bytes.iter().all(u8::is_ascii_whitespace) {
                    continue;
                }
                if format == LineFormat::Text {
                    let text = String::from_utf8_lossy(bytes).into_owned();
                    let mut event = serde_json::Map::new();
                    event.insert("message".to_owned(), Value::String(text));
                    result.events += 1;
                    let origin = Origin {
                        file,
                        location: Location::Line(*line),
                        raw: None,
                    };
                    match_doc(
                        engine,
                        &Value::Object(event),
                        origin,
                        scratch,
                        &mut result.detections,
                    );
                    continue;
                }
                // Scanned without building a DOM (serde_json decides what the scanner declines).
                match engine.match_json_line(bytes, scratch) {
                    Ok(found) => {
                        result.events += 1;
                        for m in found.matches {
                            result.detections.push(Detection {
                                rule: m.rule,
                                file: file.to_owned(),
                                location: Location::Line(*line),
                                timestamp: found.timestamp.clone(),
                                fields: m.fields,
                                captures: m.captures,
                            });
                        }
                    }
                    Err(e) => {
                        let tail = if *unterminated && e.is_eof() {
                            " (input ends mid-line)"
                        } else {
                            ""
                        };
                        result.bad.push(BadRecord {
                            file: file.to_owned(),
                            location: Location::Line(*line),
                            reason: format!("invalid JSON at column {}: {e}{tail}", e.column()),
                        });
                    }
                }
            }
        }
    }
    result
}

fn emit(result: ChunkResult, stats: &mut FileStats, sink: &mut dyn HuntSink) {
    stats.events += result.events;
    stats.bytes += result.bytes;
    stats.bad_records += result.bad.len() as u64;
    stats.detections += result.detections.len() as u64;
    for d in result.detections {
        sink.detection(d);
    }
    for b in result.bad {
        sink.bad_record(b);
    }
    sink.progress(stats.bytes);
}

fn read_chunk(
    reader: &mut impl BufRead,
    next_line: &mut u64,
    options: &HuntOptions,
) -> io::Result<Option<Chunk>> {
    let mut chunk = Chunk {
        data: Vec::new(),
        items: Vec::new(),
    };
    while chunk.items.len() < options.chunk_lines.max(1) {
        let start = chunk.data.len();
        let line = *next_line;
        match read_bounded_line(reader, &mut chunk.data, options.max_line_bytes)? {
            LineRead::Eof => break,
            LineRead::Line { unterminated } => {
                chunk.items.push(LineItem::Text {
                    line,
                    start,
                    end: chunk.data.len(),
                    unterminated,
                });
            }
            LineRead::TooLong { length } => chunk.items.push(LineItem::TooLong { line, length }),
        }
        *next_line += 1;
        if chunk.data.len() > 8 * 1024 * 1024 {
            break;
        }
    }
    Ok(if chunk.items.is_empty() {
        None
    } else {
        Some(chunk)
    })
}

/// Matches a JSON-lines stream.
pub fn hunt_lines(
    engine: &Engine,
    reader: impl Read + Send,
    file: &str,
    options: &HuntOptions,
    sink: &mut dyn HuntSink,
) -> io::Result<FileStats> {
    hunt_lines_as(engine, reader, file, LineFormat::Json, options, sink)
}

/// Matches a line-oriented stream in the given format.
pub fn hunt_lines_as(
    engine: &Engine,
    reader: impl Read + Send,
    file: &str,
    format: LineFormat,
    options: &HuntOptions,
    sink: &mut dyn HuntSink,
) -> io::Result<FileStats> {
    let mut reader = BufReader::with_capacity(1 << 20, reader);
    let mut stats = FileStats::default();
    let mut next_line: u64 = 1;
    if options.threads <= 1 {
        let mut scratch = Scratch::default();
        while let Some(chunk) = read_chunk(&mut reader, &mut next_line, options)? {
            emit(
                process_chunk(engine, file, &chunk, format, &mut scratch),
                &mut stats,
                sink,
            );
        }
        return Ok(stats);
    }
    std::thread::scope(|scope| -> io::Result<FileStats> {
        let (work_tx, work_rx) = mpsc::sync_channel::<(u64, Chunk)>(options.threads * 2);
        let work_rx = Arc::new(Mutex::new(work_rx));
        let (done_tx, done_rx) = mpsc::channel::<(u64, ChunkResult)>();
        for _ in 0..options.threads {
            let rx = Arc::clone(&work_rx);
            let tx = done_tx.clone();
            scope.spawn(move || {
                let mut scratch = Scratch::default();
                loop {
                    let job = match rx.lock() {
                        Ok(guard) => guard.recv(),
                        Err(_) => return,
                    };
                    let Ok((seq, chunk)) = job else { return };
                    if tx
                        .send((
                            seq,
                            process_chunk(engine, file, &chunk, format, &mut scratch),
                        ))
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
        drop(done_tx);
        let mut pending: BTreeMap<u64, ChunkResult> = BTreeMap::new();
        let mut next_emit: u64 = 0;
        let mut sent: u64 = 0;
        let drain = |pending: &mut BTreeMap<u64, ChunkResult>,
                     next_emit: &mut u64,
                     stats: &mut FileStats,
                     sink: &mut dyn HuntSink| {
            while let Some(r) = pending.remove(next_emit) {
                emit(r, stats, sink);
                *next_emit += 1;
            }
        };
        let read_result = (|| -> io::Result<()> {
            while let Some(chunk) = read_chunk(&mut reader, &mut next_line, options)? {
                if work_tx.send((sent, chunk)).is_err() {
                    break;
                }
                sent += 1;
                while let Ok((seq, r)) = done_rx.try_recv() {
                    pending.insert(seq, r);
                }
                drain(&mut pending, &mut next_emit, &mut stats, sink);
            }
            Ok(())
        })();
        drop(work_tx);
        for (seq, r) in done_rx.iter() {
            pending.insert(seq, r);
            drain(&mut pending, &mut next_emit, &mut stats, sink);
        }
        read_result?;
        Ok(stats)
    })
}

fn line_of_offset(data: &[u8], offset: usize) -> u64 {
    memchr::memchr_iter(b'\n', &data[..offset.min(data.len())]).count() as u64 + 1
}

/// Matches a file holding one JSON document, several concatenated documents, or an array.
pub fn hunt_documents(
    engine: &Engine,
    data: &[u8],
    file: &str,
    sink: &mut dyn HuntSink,
) -> FileStats {
    let mut stats = FileStats::default();
    let mut scratch = Scratch::default();
    let mut out = Vec::new();
    let first = data.iter().position(|b| !b.is_ascii_whitespace());
    let bad = |offset: usize, e: &serde_json::Error| BadRecord {
        file: file.to_owned(),
        location: Location::Line(line_of_offset(data, offset)),
        reason: format!(
            "invalid JSON at line {} column {}: {e}; rest of file skipped",
            e.line(),
            e.column()
        ),
    };
    if first.map(|i| data[i]) == Some(b'[') {
        match serde_json::from_slice::<Value>(data) {
            Ok(Value::Array(items)) => {
                for (i, item) in items.iter().enumerate() {
                    stats.events += 1;
                    let origin = Origin {
                        file,
                        location: Location::Index(i as u64),
                        raw: None,
                    };
                    match_doc(engine, item, origin, &mut scratch, &mut out);
                }
            }
            Ok(_) => {}
            Err(e) => {
                stats.bad_records += 1;
                sink.bad_record(bad(0, &e));
            }
        }
    } else {
        let mut stream = serde_json::Deserializer::from_slice(data).into_iter::<Value>();
        let mut index = 0u64;
        loop {
            let offset = stream.byte_offset();
            match stream.next() {
                None => break,
                Some(Ok(doc)) => {
                    stats.events += 1;
                    let origin = Origin {
                        file,
                        location: Location::Index(index),
                        raw: None,
                    };
                    match_doc(engine, &doc, origin, &mut scratch, &mut out);
                    index += 1;
                }
                Some(Err(e)) => {
                    stats.bad_records += 1;
                    sink.bad_record(bad(offset, &e));
                    break;
                }
            }
        }
    }
    stats.bytes = data.len() as u64;
    stats.detections = out.len() as u64;
    for d in out {
        sink.detection(d);
    }
    sink.progress(stats.bytes);
    stats
}

/// Matches one file, detecting its shape: a JSON array or a multi-line (pretty-printed)
/// document is read as documents; a file whose first character is not `{` or `[` as plain
/// text lines; anything else as JSON lines.
pub fn hunt_file(
    engine: &Engine,
    path: &Path,
    options: &HuntOptions,
    sink: &mut dyn HuntSink,
) -> io::Result<FileStats> {
    let label = path.display().to_string();
    let mut file = BufReader::new(File::open(path)?);
    let size = file.get_ref().metadata().map(|m| m.len()).unwrap_or(0);
    // Peek at the first line to decide the shape.
    let head = file.fill_buf()?.to_vec();
    let first = head
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .map(|i| head[i]);
    let first_line_complete = match memchr::memchr(b'\n', &head) {
        Some(nl) => serde_json::from_slice::<Value>(&head[..nl]).is_ok(),
        None => true,
    };
    let is_document = first == Some(b'[') || (first == Some(b'{') && !first_line_complete);
    if first.is_some() && first != Some(b'[') && first != Some(b'{') {
        return hunt_lines_as(engine, file, &label, LineFormat::Text, options, sink);
    }
    if !is_document {
        return hunt_lines(engine, file, &label, options, sink);
    }
    if size > options.max_document_bytes {
        sink.bad_record(BadRecord {
            file: label,
            location: Location::Index(0),
            reason: format!(
                "JSON document of {size} bytes exceeds the {} byte limit for whole-document input (use JSON lines)",
                options.max_document_bytes
            ),
        });
        return Ok(FileStats {
            bad_records: 1,
            ..FileStats::default()
        });
    }
    let mut data = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(options.max_document_bytes + 1)
        .read_to_end(&mut data)?;
    Ok(hunt_documents(engine, &data, &label, sink))
}
