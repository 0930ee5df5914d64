//! A JSON scanner specialised for matching: one pass over a line into a flat, reused *tape*
//! whose strings borrow from the line.
//!
//! Why: parsing every line into a `serde_json::Value` allocates a string per key and value and
//! a B-tree per object, then frees them all; for detection that cost alone was about as high as
//! matching. The tape is a vector of fixed-size nodes kept between events, strings without
//! escapes are slices of the input line and only escaped strings are copied (into one buffer,
//! also kept), so a warmed-up scan allocates nothing.
//!
//! The scanner is deliberately conservative: it *declines* (returns `false`) every input it
//! does not handle exactly as `serde_json::from_slice::<Value>` would — invalid JSON, but also
//! valid JSON it leaves to serde_json: numbers with exponents or out of `f64` range, escaped
//! object keys, duplicate keys in one object (serde_json keeps the last), unpaired surrogate
//! escapes and nesting deeper than [`MAX_DEPTH`]. Callers then parse with serde_json, which gives
//! the same result (or the same error message) as before. What it accepts, serde_json accepts
//! with the same values (`tests` below check this as a property over random JSON).

use std::borrow::Cow;

/// Nesting depth beyond which the scanner declines (serde_json's own limit is 128).
pub const MAX_DEPTH: usize = 120;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Null,
    True,
    False,
    /// A number; `a..a+b` is its text in the line.
    Num,
    /// A string without escapes: `a..a+b` in the line.
    Str,
    /// A string with escapes, unescaped: `a..a+b` in the tape's buffer.
    StrBuf,
    /// An object: `a` members, `b` the index of the node after its last member. Each member
    /// is a key node (`Str`) followed by the value's nodes.
    Obj,
    /// An array: `a` items, `b` the index of the node after its last item.
    Arr,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct Node {
    pub(crate) kind: Kind,
    pub(crate) a: u32,
    pub(crate) b: u32,
}

struct Frame {
    node: usize,
    count: u32,
    is_obj: bool,
    /// Object keys: a 64-bit filter of key hashes, and where this object's keys start in
    /// `Tape::keys` (exact duplicate check only when the filter says "maybe").
    seen: u64,
    keys_from: usize,
}

/// A parsed line: nodes in document order, escaped strings unescaped into `buf`.
#[derive(Default)]
pub struct Tape {
    pub(crate) nodes: Vec<Node>,
    pub(crate) buf: String,
    stack: Vec<Frame>,
    keys: Vec<(u32, u32)>,
    /// Whether a string of the line has a `\u` or `\/` escape: only those can hide text from
    /// a search of the raw line (the engine's keyword prefilter asks, instead of searching the
    /// line for them again).
    pub(crate) hiding_escapes: bool,
}

impl std::fmt::Debug for Tape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tape")
            .field("nodes", &self.nodes.len())
            .finish()
    }
}

#[inline]
fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while let Some(c) = b.get(i) {
        if !matches!(c, b' ' | b'\n' | b'\t' | b'\r') {
            break;
        }
        i += 1;
    }
    i
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// Index of the first `"`, `\` or control character at or after `i` (or `b.len()`), eight
/// bytes at a time.
#[inline]
fn find_special(b: &[u8], mut i: usize) -> usize {
    while i + 8 <= b.len() {
        let mut w = [0u8; 8];
        w.copy_from_slice(&b[i..i + 8]);
        let v = u64::from_le_bytes(w);
        let q = v ^ (ONES * u64::from(b'"'));
        let s = v ^ (ONES * u64::from(b'\\'));
        let m = (q.wrapping_sub(ONES) & !q)
            | (s.wrapping_sub(ONES) & !s)
            | (v.wrapping_sub(ONES * 0x20) & !v);
        let m = m & HIGH;
        if m != 0 {
            return i + (m.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&c) = b.get(i) {
        if c == b'"' || c == b'\\' || c < 0x20 {
            return i;
        }
        i += 1;
    }
    i
}

fn hex4(b: &[u8], i: usize) -> Option<u32> {
    let mut v = 0u32;
    for k in 0..4 {
        let d = char::from(*b.get(i + k)?).to_digit(16)?;
        v = v * 16 + d;
    }
    Some(v)
}

fn key_hash(k: &[u8]) -> u64 {
    let first = k.first().copied().unwrap_or(0);
    let last = k.last().copied().unwrap_or(0);
    let x = (k.len() as u64) ^ (u64::from(first) << 8) ^ (u64::from(last) << 16);
    x.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58
}

impl Tape {
    /// Scans `line`; `false` when the scanner declines it (see the module docs): the tape is
    /// then unusable and the caller parses with serde_json instead.
    pub fn parse(&mut self, line: &str) -> bool {
        self.nodes.clear();
        self.buf.clear();
        self.stack.clear();
        self.keys.clear();
        self.hiding_escapes = false;
        if u32::try_from(line.len()).is_err() {
            return false;
        }
        self.scan(line).is_some()
    }

    fn push(&mut self, kind: Kind, a: usize, b: usize) {
        // Positions fit: the line length was checked against u32.
        self.nodes.push(Node {
            kind,
            a: a as u32,
            b: b as u32,
        });
    }

    fn scan(&mut self, line: &str) -> Option<()> {
        let b = line.as_bytes();
        let mut i = 0;
        loop {
            // A value is expected at `i`.
            i = skip_ws(b, i);
            match *b.get(i)? {
                c @ (b'{' | b'[') => {
                    if self.stack.len() >= MAX_DEPTH {
                        return None;
                    }
                    let is_obj = c == b'{';
                    let node = self.nodes.len();
                    self.push(if is_obj { Kind::Obj } else { Kind::Arr }, 0, 0);
                    self.stack.push(Frame {
                        node,
                        count: 0,
                        is_obj,
                        seen: 0,
                        keys_from: self.keys.len(),
                    });
                    i = skip_ws(b, i + 1);
                    let close = if is_obj { b'}' } else { b']' };
                    if b.get(i) == Some(&close) {
                        i += 1;
                        self.close();
                    } else {
                        if is_obj {
                            i = self.key(b, i)?;
                        }
                        continue;
                    }
                }
                b'"' => i = self.string(line, i + 1)?,
                b't' => i = self.literal(b, i, b"true", Kind::True)?,
                b'f' => i = self.literal(b, i, b"false", Kind::False)?,
                b'n' => i = self.literal(b, i, b"null", Kind::Null)?,
                b'-' | b'0'..=b'9' => i = self.number(b, i)?,
                _ => return None,
            }
            // After a value: continue the enclosing container or finish.
            loop {
                let Some(frame) = self.stack.last_mut() else {
                    return (skip_ws(b, i) == b.len()).then_some(());
                };
                frame.count += 1;
                i = skip_ws(b, i);
                let is_obj = frame.is_obj;
                match (*b.get(i)?, is_obj) {
                    (b',', true) => {
                        i = self.key(b, skip_ws(b, i + 1))?;
                        break;
                    }
                    (b',', false) => {
                        i += 1;
                        break;
                    }
                    (b'}', true) | (b']', false) => {
                        i += 1;
                        // `close` counts the container as a value of its parent on the next turn.
                        let f = self.stack.pop()?;
                        let end = self.nodes.len();
                        self.keys.truncate(f.keys_from);
                        let n = &mut self.nodes[f.node];
                        n.a = f.count;
                        n.b = end as u32;
                    }
                    _ => return None,
                }
            }
        }
    }

    /// Closes an empty container just opened (its parent counts it on the next turn).
    fn close(&mut self) {
        if let Some(f) = self.stack.pop() {
            let end = self.nodes.len();
            self.keys.truncate(f.keys_from);
            let n = &mut self.nodes[f.node];
            n.a = 0;
            n.b = end as u32;
        }
        // The caller falls through to the "after a value" loop, which increments the parent's
        // count for this container.
    }

    /// An object key at `i` (escaped keys and duplicates decline), then `:`; returns the
    /// position of the value.
    fn key(&mut self, b: &[u8], i: usize) -> Option<usize> {
        if b.get(i) != Some(&b'"') {
            return None;
        }
        let start = i + 1;
        let end = find_special(b, start);
        if b.get(end) != Some(&b'"') {
            return None;
        }
        let key = &b[start..end];
        let frame = self.stack.last_mut()?;
        let bit = 1u64 << key_hash(key);
        if frame.seen & bit != 0
            && self.keys[frame.keys_from..]
                .iter()
                .any(|&(s, l)| &b[s as usize..(s + l) as usize] == key)
        {
            return None;
        }
        frame.seen |= bit;
        self.keys.push((start as u32, (end - start) as u32));
        self.push(Kind::Str, start, end - start);
        let i = skip_ws(b, end + 1);
        if b.get(i) != Some(&b':') {
            return None;
        }
        Some(i + 1)
    }

    fn literal(&mut self, b: &[u8], i: usize, word: &[u8], kind: Kind) -> Option<usize> {
        if b.get(i..i + word.len())? != word {
            return None;
        }
        self.push(kind, 0, 0);
        Some(i + word.len())
    }

    fn number(&mut self, b: &[u8], start: usize) -> Option<usize> {
        let mut i = start;
        if b.get(i) == Some(&b'-') {
            i += 1;
        }
        let int_start = i;
        match b.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => {
                while matches!(b.get(i), Some(b'0'..=b'9')) {
                    i += 1;
                }
            }
            _ => return None,
        }
        let int_digits = i - int_start;
        let mut fraction = false;
        if b.get(i) == Some(&b'.') {
            i += 1;
            let f = i;
            while matches!(b.get(i), Some(b'0'..=b'9')) {
                i += 1;
            }
            if i == f {
                return None;
            }
            fraction = true;
        }
        if matches!(b.get(i), Some(b'e' | b'E')) {
            // Exponents can overflow f64, which serde_json reports as an error: leave to it.
            return None;
        }
        if fraction || int_digits > 18 {
            let text = std::str::from_utf8(&b[start..i]).ok()?;
            if !text.parse::<f64>().ok()?.is_finite() {
                return None;
            }
        }
        self.push(Kind::Num, start, i - start);
        Some(i)
    }

    /// A string whose opening quote is before `start`; returns the position after the closing
    /// quote. Unescaped runs are copied as slices of `line` (they start and end next to ASCII
    /// bytes, so on character boundaries): no UTF-8 check per run.
    fn string(&mut self, line: &str, start: usize) -> Option<usize> {
        let b = line.as_bytes();
        let mut i = find_special(b, start);
        match *b.get(i)? {
            b'"' => {
                self.push(Kind::Str, start, i - start);
                return Some(i + 1);
            }
            b'\\' => {}
            _ => return None,
        }
        let from = self.buf.len();
        // The bytes so far end before an ASCII `\`.
        self.buf.push_str(line.get(start..i)?);
        loop {
            match *b.get(i)? {
                b'"' => break,
                b'\\' => {
                    let esc = *b.get(i + 1)?;
                    i += 2;
                    let c = match esc {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => {
                            self.hiding_escapes = true;
                            '/'
                        }
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            self.hiding_escapes = true;
                            let hi = hex4(b, i)?;
                            i += 4;
                            let code = if (0xD800..0xDC00).contains(&hi) {
                                if b.get(i..i + 2)? != b"\\u" {
                                    return None;
                                }
                                let lo = hex4(b, i + 2)?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return None;
                                }
                                i += 6;
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else {
                                hi
                            };
                            // Lone low surrogates are not chars: decline.
                            char::from_u32(code)?
                        }
                        _ => return None,
                    };
                    self.buf.push(c);
                }
                c if c < 0x20 => return None,
                _ => {
                    let end = find_special(b, i);
                    self.buf.push_str(line.get(i..end)?);
                    i = end;
                }
            }
        }
        let len = self.buf.len() - from;
        self.push(Kind::StrBuf, from, len);
        Some(i + 1)
    }

    /// The root node of the last successfully scanned line.
    pub fn root<'a>(&'a self, line: &'a str) -> JsonRef<'a> {
        JsonRef {
            tape: self,
            line,
            idx: 0,
        }
    }
}

/// A node of a scanned line.
#[derive(Clone, Copy)]
pub struct JsonRef<'a> {
    tape: &'a Tape,
    line: &'a str,
    idx: usize,
}

impl<'a> JsonRef<'a> {
    #[inline]
    fn node(&self) -> Node {
        self.tape.nodes.get(self.idx).copied().unwrap_or(Node {
            kind: Kind::Null,
            a: 0,
            b: 0,
        })
    }
    pub(crate) fn kind(&self) -> Kind {
        self.node().kind
    }
    fn at(&self, idx: usize) -> JsonRef<'a> {
        JsonRef { idx, ..*self }
    }
    /// Index of the node after this value.
    fn next(&self) -> usize {
        let n = self.node();
        match n.kind {
            Kind::Obj | Kind::Arr => n.b as usize,
            _ => self.idx + 1,
        }
    }
    fn span(&self) -> &'a str {
        self.span_of(self.node())
    }
    /// The text of node `n` of this tape (one node load for callers that already have it).
    #[inline]
    fn span_of(&self, n: Node) -> &'a str {
        let (a, b) = (n.a as usize, n.a as usize + n.b as usize);
        match n.kind {
            Kind::StrBuf => self.tape.buf.get(a..b).unwrap_or(""),
            Kind::Str | Kind::Num => self.line.get(a..b).unwrap_or(""),
            _ => "",
        }
    }
    /// The node and its text (empty for non-strings), from one load.
    #[inline]
    pub(crate) fn node_text(&self) -> (Kind, &'a str) {
        let n = self.node();
        (n.kind, self.span_of(n))
    }
    /// Members of an object (empty for anything else).
    pub(crate) fn members(self) -> impl Iterator<Item = (&'a str, JsonRef<'a>)> {
        let n = self.node();
        let (mut k, end) = if n.kind == Kind::Obj {
            (self.idx + 1, n.b as usize)
        } else {
            (0, 0)
        };
        std::iter::from_fn(move || {
            if k >= end {
                return None;
            }
            let key = self.at(k).span();
            let value = self.at(k + 1);
            k = value.next();
            Some((key, value))
        })
    }
    /// Items of an array (empty for anything else).
    pub(crate) fn items(self) -> impl Iterator<Item = JsonRef<'a>> {
        let n = self.node();
        let (mut k, end) = if n.kind == Kind::Arr {
            (self.idx + 1, n.b as usize)
        } else {
            (0, 0)
        };
        std::iter::from_fn(move || {
            if k >= end {
                return None;
            }
            let item = self.at(k);
            k = item.next();
            Some(item)
        })
    }
    pub(crate) fn is_empty_container(&self) -> bool {
        let n = self.node();
        matches!(n.kind, Kind::Obj | Kind::Arr) && n.a == 0
    }
    pub(crate) fn get(self, key: &str) -> Option<JsonRef<'a>> {
        self.members().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// The same value as a `serde_json::Value` (tests, and rare slow paths).
    pub fn to_value(self) -> serde_json::Value {
        use serde_json::Value;
        // Explicit stack: nesting is bounded by MAX_DEPTH, but recursion is avoided anyway.
        match self.kind() {
            Kind::Null => Value::Null,
            Kind::True => Value::Bool(true),
            Kind::False => Value::Bool(false),
            Kind::Num => serde_json::from_str(self.span()).unwrap_or(Value::Null),
            Kind::Str | Kind::StrBuf => Value::String(self.span().to_owned()),
            Kind::Arr => Value::Array(self.items().map(JsonRef::to_value).collect()),
            Kind::Obj => Value::Object(
                self.members()
                    .map(|(k, v)| (k.to_owned(), v.to_value()))
                    .collect(),
            ),
        }
    }
}

/// Canonical text of a JSON number as serde_json prints it (`1.50` → `1.5`, `-0` → `-0.0`):
/// short plain integers are their own text; anything else goes through serde_json.
pub(crate) fn number_text(raw: &str) -> Option<Cow<'_, str>> {
    let digits = raw.strip_prefix('-').unwrap_or(raw);
    let plain = !digits.is_empty()
        && digits.len() <= 18
        && digits.bytes().all(|c| c.is_ascii_digit())
        && (!digits.starts_with('0') || (digits == "0" && digits.len() == raw.len()));
    if plain {
        return Some(Cow::Borrowed(raw));
    }
    serde_json::from_str::<serde_json::Number>(raw)
        .ok()
        .map(|n| Cow::Owned(n.to_string()))
}

/// A JSON number's value as serde_json's `as_f64` gives it.
pub(crate) fn number_f64(raw: &str) -> Option<f64> {
    serde_json::from_str::<serde_json::Number>(raw)
        .ok()
        .and_then(|n| n.as_f64())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use proptest::prelude::*;
    use serde_json::Value;

    fn scan(text: &str) -> Option<Value> {
        let mut t = Tape::default();
        t.parse(text).then(|| t.root(text).to_value())
    }

    #[test]
    fn scans_windows_shapes() {
        let line = r##"{"Event":{"System":{"EventID":4688,"Channel":"Security","X":null,"T":true},"EventData":{"CommandLine":"C:\\Windows\\cmd.exe /c \"a\"","Data":[{"#attributes":{"Name":"N"},"#text":"v"}]}}}"##;
        assert_eq!(scan(line), serde_json::from_str(line).ok());
    }

    #[test]
    fn declines_what_serde_json_must_decide() {
        for bad in [
            "",
            "{",
            "[1,]",
            "{\"a\":1,}",
            "{\"a\" 1}",
            "01",
            "1.",
            "-",
            "1e5",
            "\"\\ud800\"",
            "\"\\udc00\"",
            "\"a\u{1}\"",
            "{\"a\":1,\"a\":2}",
            "{\"\\u0061\":1}",
            "[1] x",
            "tru",
            "nul",
            "\"\\x\"",
        ] {
            assert!(scan(bad).is_none(), "{bad:?}");
        }
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(scan(&deep).is_none());
    }

    #[test]
    fn accepts_and_agrees_on_edge_cases() {
        for good in [
            "0",
            "-0",
            "-0.0",
            "1.50",
            "123456789012345678901234567890",
            "\"\\ud83d\\ude00 \\u00e9 \\/ \\b\\f\\n\\r\\t\"",
            " [ ] ",
            "{ }",
            "[[],{},[{}]]",
            "\"\u{e9}\u{1F600}\"",
            "{\"ab\":1,\"ba\":2,\"a\":3}",
        ] {
            assert_eq!(scan(good), serde_json::from_str(good).ok(), "{good:?}");
        }
    }

    #[test]
    fn number_text_matches_serde_json() {
        for raw in [
            "0",
            "-0",
            "7",
            "-12",
            "1.50",
            "0.1",
            "123456789012345678901",
            "-0.0",
        ] {
            let v: Value = serde_json::from_str(raw).unwrap();
            let Value::Number(n) = v else { panic!() };
            assert_eq!(number_text(raw).unwrap(), n.to_string(), "{raw}");
            assert_eq!(number_f64(raw), n.as_f64(), "{raw}");
        }
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (-1e12f64..1e12).prop_map(Value::from),
            "\\PC{0,12}".prop_map(Value::String),
            "[a-z\"\\\\/\u{0}-\u{1f}\u{e9}\u{1F600}]{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(5, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::btree_map("[a-zA-Z_#]{0,6}", inner, 0..6)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Random JSON (compact and pretty): the scanner reads what serde_json reads.
        #[test]
        fn agrees_with_serde_json(v in json_value(), pretty in any::<bool>()) {
            let text = if pretty {
                serde_json::to_string_pretty(&v).unwrap()
            } else {
                serde_json::to_string(&v).unwrap()
            };
            let reference: Value = serde_json::from_str(&text).unwrap();
            // Declining is allowed (serde_json then decides); accepting must agree.
            if let Some(scanned) = scan(&text) {
                prop_assert_eq!(scanned, reference);
            } else {
                // The scanner declines valid JSON only for the documented reasons.
                prop_assert!(text.contains('e') || text.contains('E') || text.contains("\\u"),
                    "declined {}", text);
            }
        }

        /// Mutated JSON: whatever the scanner accepts, serde_json accepts with the same value.
        #[test]
        fn never_accepts_what_serde_json_rejects(
            v in json_value(),
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..3), 1..4),
        ) {
            let mut bytes = serde_json::to_vec(&v).unwrap();
            for (at, byte, op) in edits {
                if bytes.is_empty() {
                    bytes.push(byte);
                    continue;
                }
                let k = at.index(bytes.len());
                match op {
                    0 => bytes[k] = byte,
                    1 => { bytes.remove(k); }
                    _ => bytes.insert(k, byte),
                }
            }
            let Ok(text) = std::str::from_utf8(&bytes) else { return Ok(()); };
            if let Some(scanned) = scan(text) {
                let reference: Result<Value, _> = serde_json::from_str(text);
                prop_assert!(reference.is_ok(), "accepted {:?}", text);
                prop_assert_eq!(scanned, reference.unwrap());
            }
        }
    }
}
