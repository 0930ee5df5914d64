//! A JSON reader that remembers where every value came from.
//!
//! `serde_json::Value` forgets positions and silently keeps the last of two duplicate keys, so
//! a validator built on it can neither point at `line:column` of a semantic finding nor notice
//! a section id written twice. Syntax is still judged by `serde_json` (its messages and
//! positions are the ones users know); this module then builds a tree with byte spans and the
//! keys of every object in source order, duplicates included.

use std::fmt;

/// Documents larger than this are refused before parsing, so a hostile or runaway file cannot
/// exhaust memory. The export of a 10,000-document pack is a few MiB.
pub const MAX_DOCUMENT_BYTES: u64 = 10 * 1024 * 1024;

/// Nesting deeper than this is refused (serde_json uses the same limit), so recursion is bounded.
const MAX_DEPTH: usize = 128;

/// Byte range `[start, end)` of a value in the source text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

/// A JSON value with the span it was read from.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub value: Value,
    pub span: Span,
}

/// One `"key": value` pair of an object, kept in source order.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub key: String,
    pub key_span: Span,
    pub value: Node,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// The number as written; the validator never needs its numeric value.
    Number(String),
    String(String),
    Array(Vec<Node>),
    /// Members in source order; duplicate keys are kept so they can be reported.
    Object(Vec<Member>),
}

impl Value {
    /// The JSON type name used in messages ("expected a string, found a number").
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        }
    }
}

impl Node {
    /// The first member named `key`, if this is an object.
    pub fn get(&self, key: &str) -> Option<&Member> {
        match &self.value {
            Value::Object(members) => members.iter().find(|m| m.key == key),
            _ => None,
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
}

/// Why a document could not be read as JSON, with its 1-based position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: {}", self.line, self.column, self.message)
    }
}

/// Maps byte offsets to 1-based `line:column`; columns count Unicode scalar values.
#[derive(Debug, Clone)]
pub struct LineIndex {
    line_starts: Vec<usize>,
}

impl LineIndex {
    pub fn new(src: &str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(
            src.bytes()
                .enumerate()
                .filter(|&(_, b)| b == b'\n')
                .map(|(i, _)| i + 1),
        );
        LineIndex { line_starts }
    }

    pub fn locate(&self, src: &str, offset: usize) -> (usize, usize) {
        let offset = offset.min(src.len());
        let line = match self.line_starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        };
        let start = self.line_starts.get(line).copied().unwrap_or(0);
        let column = src
            .get(start..offset)
            .map_or(offset - start, |prefix| prefix.chars().count())
            + 1;
        (line + 1, column)
    }
}

/// Decodes `bytes` as UTF-8 JSON into a located tree.
pub fn parse_bytes(bytes: &[u8]) -> Result<(String, Node), SyntaxError> {
    let src = match std::str::from_utf8(bytes) {
        Ok(s) => s,
        Err(err) => {
            let valid = bytes.get(..err.valid_up_to()).unwrap_or_default();
            // The valid prefix is UTF-8 by construction, so positions can be counted in it.
            let prefix = String::from_utf8_lossy(valid);
            let (line, column) = LineIndex::new(&prefix).locate(&prefix, prefix.len());
            return Err(SyntaxError {
                line,
                column,
                message: format!(
                    "invalid UTF-8 at byte offset {} (JSON text must be UTF-8)",
                    err.valid_up_to()
                ),
            });
        }
    };
    let node = parse(src)?;
    Ok((src.to_owned(), node))
}

/// Parses `src` into a located tree. Syntax errors carry serde_json's message and position.
pub fn parse(src: &str) -> Result<Node, SyntaxError> {
    if let Err(err) = serde_json::from_str::<serde::de::IgnoredAny>(src) {
        let message = err.to_string();
        // serde_json appends " at line L column C"; the position is reported separately.
        let message = match message.rfind(" at line ") {
            Some(i) => message[..i].to_owned(),
            None => message,
        };
        return Err(SyntaxError {
            line: err.line().max(1),
            column: err.column().max(1),
            message,
        });
    }
    let mut parser = Parser {
        src,
        bytes: src.as_bytes(),
        pos: 0,
        depth: 0,
    };
    parser.skip_ws();
    let node = parser.value()?;
    Ok(node)
}

struct Parser<'a> {
    src: &'a str,
    bytes: &'a [u8],
    pos: usize,
    depth: usize,
}

impl Parser<'_> {
    fn error(&self, message: &str) -> SyntaxError {
        let (line, column) = LineIndex::new(self.src).locate(self.src, self.pos);
        SyntaxError {
            line,
            column,
            message: message.to_owned(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn skip_ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), SyntaxError> {
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(&format!("expected `{}`", byte as char)))
        }
    }

    fn value(&mut self) -> Result<Node, SyntaxError> {
        let start = self.pos;
        let value = match self.peek() {
            Some(b'{') => self.object()?,
            Some(b'[') => self.array()?,
            Some(b'"') => Value::String(self.string()?),
            Some(b't') => self.literal("true", Value::Bool(true))?,
            Some(b'f') => self.literal("false", Value::Bool(false))?,
            Some(b'n') => self.literal("null", Value::Null)?,
            Some(b'-' | b'0'..=b'9') => self.number(),
            _ => return Err(self.error("expected a JSON value")),
        };
        Ok(Node {
            value,
            span: Span {
                start,
                end: self.pos,
            },
        })
    }

    fn literal(&mut self, word: &str, value: Value) -> Result<Value, SyntaxError> {
        if self.bytes[self.pos..].starts_with(word.as_bytes()) {
            self.pos += word.len();
            Ok(value)
        } else {
            Err(self.error("invalid literal"))
        }
    }

    fn number(&mut self) -> Value {
        let start = self.pos;
        while matches!(
            self.peek(),
            Some(b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
        ) {
            self.pos += 1;
        }
        Value::Number(self.src[start..self.pos].to_owned())
    }

    fn enter(&mut self) -> Result<(), SyntaxError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error("nesting deeper than 128 levels"));
        }
        Ok(())
    }

    fn object(&mut self) -> Result<Value, SyntaxError> {
        self.enter()?;
        self.expect(b'{')?;
        let mut members = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            self.depth -= 1;
            return Ok(Value::Object(members));
        }
        loop {
            self.skip_ws();
            let key_start = self.pos;
            let key = self.string()?;
            let key_span = Span {
                start: key_start,
                end: self.pos,
            };
            self.skip_ws();
            self.expect(b':')?;
            self.skip_ws();
            let value = self.value()?;
            members.push(Member {
                key,
                key_span,
                value,
            });
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    break;
                }
                _ => return Err(self.error("expected `,` or `}`")),
            }
        }
        self.depth -= 1;
        Ok(Value::Object(members))
    }

    fn array(&mut self) -> Result<Value, SyntaxError> {
        self.enter()?;
        self.expect(b'[')?;
        let mut items = Vec::new();
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            self.depth -= 1;
            return Ok(Value::Array(items));
        }
        loop {
            self.skip_ws();
            items.push(self.value()?);
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    break;
                }
                _ => return Err(self.error("expected `,` or `]`")),
            }
        }
        self.depth -= 1;
        Ok(Value::Array(items))
    }

    fn string(&mut self) -> Result<String, SyntaxError> {
        self.expect(b'"')?;
        let mut out = String::new();
        loop {
            let run_start = self.pos;
            while !matches!(self.peek(), Some(b'"' | b'\\') | None) {
                self.pos += 1;
            }
            out.push_str(&self.src[run_start..self.pos]);
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let escaped = self
                        .peek()
                        .ok_or_else(|| self.error("unterminated escape"))?;
                    self.pos += 1;
                    match escaped {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => out.push(self.unicode_escape()?),
                        _ => return Err(self.error("invalid escape")),
                    }
                }
                _ => return Err(self.error("unterminated string")),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, SyntaxError> {
        let digits = self
            .src
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| self.error("truncated \\u escape"))?;
        let code = u32::from_str_radix(digits, 16).map_err(|_| self.error("invalid \\u escape"))?;
        self.pos += 4;
        Ok(code)
    }

    fn unicode_escape(&mut self) -> Result<char, SyntaxError> {
        let first = self.hex4()?;
        if (0xD800..0xDC00).contains(&first) && self.bytes[self.pos..].starts_with(b"\\u") {
            self.pos += 2;
            let second = self.hex4()?;
            let combined =
                0x10000 + ((first - 0xD800) << 10) + (second.wrapping_sub(0xDC00) & 0x3FF);
            return char::from_u32(combined).ok_or_else(|| self.error("invalid surrogate pair"));
        }
        char::from_u32(first).ok_or_else(|| self.error("lone surrogate in \\u escape"))
    }
}

/// Escapes one reference token of a JSON Pointer (RFC 6901).
pub fn pointer_token(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to_serde(node: &Node) -> serde_json::Value {
        match &node.value {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Number(n) => serde_json::from_str(n).unwrap(),
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::Array(items) => serde_json::Value::Array(items.iter().map(to_serde).collect()),
            Value::Object(members) => serde_json::Value::Object(
                members
                    .iter()
                    .map(|m| (m.key.clone(), to_serde(&m.value)))
                    .collect(),
            ),
        }
    }

    #[test]
    fn tree_agrees_with_serde_json_on_escapes_and_unicode() {
        let src = r#" {"a": [1, -2.5e3, true, false, null], "b\n\"": "x\u00e9\ud83d\ude00\t\\/", "c": {}} "#;
        let node = parse(src).unwrap();
        let expected: serde_json::Value = serde_json::from_str(src).unwrap();
        assert_eq!(to_serde(&node), expected);
    }

    #[test]
    fn spans_point_at_values_and_keep_duplicate_keys() {
        let src = "{\n  \"k\": \"v\",\n  \"k\": 2\n}";
        let node = parse(src).unwrap();
        let Value::Object(members) = &node.value else {
            panic!("object expected")
        };
        assert_eq!(members.len(), 2);
        let index = LineIndex::new(src);
        assert_eq!(index.locate(src, members[1].key_span.start), (3, 3));
        assert_eq!(
            &src[members[0].value.span.start..members[0].value.span.end],
            "\"v\""
        );
    }

    #[test]
    fn columns_count_characters_not_bytes() {
        let src = "{\"é\": 1}";
        let index = LineIndex::new(src);
        let offset = src.find('1').unwrap();
        assert_eq!(index.locate(src, offset), (1, 7));
    }

    #[test]
    fn syntax_errors_are_located() {
        let err = parse("{\n  \"a\": \"bad \\q escape\"\n}").unwrap_err();
        assert_eq!(err.line, 2);
        assert!(err.message.contains("escape"), "{}", err.message);
    }

    #[test]
    fn invalid_utf8_is_located() {
        let err = parse_bytes(b"{\n\"a\": \"\xff\"}").unwrap_err();
        assert_eq!((err.line, err.column), (2, 7));
    }
}
