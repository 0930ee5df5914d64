//! A bounded, DTD-free walk over an XML document, shared by the CycloneDX-XML and JUnit
//! parsers.
//!
//! quick-xml never expands entities itself; this walker resolves only the five predefined
//! entities and character references, and refuses documents that declare entities, so an XXE
//! payload can neither be resolved nor smuggled through as text. Nesting depth is bounded by
//! [`crate::Limits::max_xml_depth`]. Errors carry the element path and byte offset.

use std::io::BufRead;

use quick_xml::Reader;
use quick_xml::events::{BytesStart, Event};

use crate::Limits;
use crate::error::{EvidenceError, Location};
use crate::kind::EvidenceKind;

/// The open elements (local names, namespace prefixes dropped) from the root down.
pub(crate) struct Path {
    names: Vec<String>,
    depth: usize,
}

impl Path {
    pub(crate) fn depth(&self) -> usize {
        self.depth
    }

    /// Local name `levels_up` above the current element (0 = current).
    pub(crate) fn ancestor(&self, levels_up: usize) -> Option<&str> {
        self.depth
            .checked_sub(levels_up + 1)
            .map(|i| self.names[i].as_str())
    }

    pub(crate) fn iter(&self) -> impl Iterator<Item = &str> {
        self.names[..self.depth].iter().map(String::as_str)
    }

    fn push(&mut self, name: &str) {
        if self.depth < self.names.len() {
            // Reuse the allocation of an earlier element at this depth.
            self.names[self.depth].clear();
            self.names[self.depth].push_str(name);
        } else {
            self.names.push(name.to_string());
        }
        self.depth += 1;
    }

    fn pop(&mut self) {
        self.depth = self.depth.saturating_sub(1);
    }

    pub(crate) fn render(&self) -> String {
        if self.depth == 0 {
            return "/".to_string();
        }
        let mut out = String::new();
        for name in self.iter() {
            out.push('/');
            out.push_str(name);
        }
        out
    }
}

/// Receives the elements of a document. `start` sees the element with its attributes after it
/// was pushed on the path; `end` sees the path before the element is popped. Errors are plain
/// messages; the walker adds the location.
pub(crate) trait XmlHandler {
    fn start(&mut self, path: &Path, element: &BytesStart<'_>) -> Result<(), String>;
    fn end(&mut self, path: &Path) -> Result<(), String>;
    /// Whether text directly inside the current element is needed.
    fn wants_text(&self, path: &Path) -> bool;
    fn text(&mut self, path: &Path, text: &str) -> Result<(), String>;
}

/// Walks the whole document. Returns the root element's local name.
pub(crate) fn walk<R: BufRead, H: XmlHandler>(
    kind: &EvidenceKind,
    reader: R,
    limits: &Limits,
    handler: &mut H,
) -> Result<String, EvidenceError> {
    let mut xml = Reader::from_reader(reader);
    let config = xml.config_mut();
    config.check_end_names = true;
    config.expand_empty_elements = false;
    config.trim_text(true);
    let mut buf = Vec::with_capacity(8 * 1024);
    let mut path = Path {
        names: Vec::new(),
        depth: 0,
    };
    let mut root: Option<String> = None;
    let at = |path: &Path, offset: u64| Location::Xml {
        path: path.render(),
        byte_offset: offset,
    };
    let invalid = |path: &Path, offset: u64, message: String| EvidenceError::Invalid {
        kind: kind.clone(),
        location: at(path, offset),
        message,
    };
    loop {
        let offset = xml.buffer_position();
        let event = match xml.read_event_into(&mut buf) {
            Ok(event) => event,
            Err(err) => {
                if let quick_xml::Error::Io(io) = &err {
                    return Err(EvidenceError::Io(std::io::Error::new(
                        io.kind(),
                        io.to_string(),
                    )));
                }
                return Err(EvidenceError::Syntax {
                    kind: kind.clone(),
                    location: at(&path, xml.error_position()),
                    message: err.to_string(),
                });
            }
        };
        match event {
            Event::Start(_) | Event::Empty(_) if root.is_some() && path.depth() == 0 => {
                return Err(EvidenceError::Syntax {
                    kind: kind.clone(),
                    location: at(&path, offset),
                    message: "a second root element".to_string(),
                });
            }
            Event::Start(element) => {
                open(&mut path, &mut root, &element, limits, kind, offset)?;
                handler
                    .start(&path, &element)
                    .map_err(|m| invalid(&path, offset, m))?;
            }
            Event::Empty(element) => {
                open(&mut path, &mut root, &element, limits, kind, offset)?;
                handler
                    .start(&path, &element)
                    .map_err(|m| invalid(&path, offset, m))?;
                handler.end(&path).map_err(|m| invalid(&path, offset, m))?;
                path.pop();
            }
            Event::End(_) => {
                handler.end(&path).map_err(|m| invalid(&path, offset, m))?;
                path.pop();
            }
            Event::Text(text) => {
                if path.depth() == 0 {
                    if !text.trim().is_empty() {
                        return Err(EvidenceError::Syntax {
                            kind: kind.clone(),
                            location: at(&path, offset),
                            message: "text outside the root element".to_string(),
                        });
                    }
                } else if handler.wants_text(&path) {
                    let content = text.xml_content(quick_xml::XmlVersion::Implicit1_0);
                    handler
                        .text(&path, &content)
                        .map_err(|m| invalid(&path, offset, m))?;
                }
            }
            Event::CData(data) => {
                if path.depth() > 0 && handler.wants_text(&path) {
                    handler
                        .text(&path, &data)
                        .map_err(|m| invalid(&path, offset, m))?;
                }
            }
            Event::GeneralRef(reference) => {
                let resolved = match reference.resolve_char_ref() {
                    Ok(Some(ch)) => ch.to_string(),
                    Ok(None) => match quick_xml::escape::resolve_predefined_entity(&reference) {
                        Some(text) => text.to_string(),
                        None => {
                            return Err(invalid(
                                &path,
                                offset,
                                format!(
                                    "undeclared entity &{}; (DTD entities are never expanded)",
                                    &*reference
                                ),
                            ));
                        }
                    },
                    Err(err) => return Err(invalid(&path, offset, err.to_string())),
                };
                if path.depth() > 0 && handler.wants_text(&path) {
                    handler
                        .text(&path, &resolved)
                        .map_err(|m| invalid(&path, offset, m))?;
                }
            }
            Event::DocType(doctype) => {
                if doctype.contains("ENTITY") {
                    return Err(invalid(
                        &path,
                        offset,
                        "the DOCTYPE declares entities; entity declarations are refused (XXE defence)".to_string(),
                    ));
                }
            }
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) => {}
            Event::Eof => break,
        }
        buf.clear();
    }
    if path.depth() > 0 {
        return Err(EvidenceError::Syntax {
            kind: kind.clone(),
            location: at(&path, xml.buffer_position()),
            message: format!(
                "unexpected end of input inside <{}>",
                path.ancestor(0).unwrap_or_default()
            ),
        });
    }
    root.ok_or_else(|| EvidenceError::Syntax {
        kind: kind.clone(),
        location: Location::ByteOffset(xml.buffer_position()),
        message: "no root element (empty document)".to_string(),
    })
}

fn open(
    path: &mut Path,
    root: &mut Option<String>,
    element: &BytesStart<'_>,
    limits: &Limits,
    kind: &EvidenceKind,
    offset: u64,
) -> Result<(), EvidenceError> {
    if path.depth() >= limits.max_xml_depth {
        return Err(EvidenceError::LimitExceeded {
            kind: kind.clone(),
            limit: format!("max_xml_depth = {}", limits.max_xml_depth),
            location: Location::Xml {
                path: path.render(),
                byte_offset: offset,
            },
        });
    }
    let name = element.local_name();
    path.push(name.as_ref());
    if root.is_none() {
        *root = Some(name.as_ref().to_string());
    }
    Ok(())
}

/// The unescaped value of the attribute whose local name is `name`.
pub(crate) fn attribute(element: &BytesStart<'_>, name: &str) -> Result<Option<String>, String> {
    for attribute in element.attributes() {
        let attribute = attribute.map_err(|err| err.to_string())?;
        if attribute.key.local_name().as_ref() == name {
            let value = attribute
                .normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .map_err(|err| format!("attribute {name}: {err}"))?;
            return Ok(Some(value.into_owned()));
        }
    }
    Ok(None)
}

/// The value of a namespace declaration (`xmlns` or `xmlns:prefix`) on `element`.
pub(crate) fn default_namespace(element: &BytesStart<'_>) -> Option<String> {
    element.attributes().flatten().find_map(|attribute| {
        (attribute.key.as_ref() == "xmlns").then(|| attribute.value.to_string())
    })
}
