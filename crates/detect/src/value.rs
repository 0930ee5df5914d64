//! Sigma values and value modifiers, turned into [`ValueMatcher`]s.
//!
//! This module is the one place where the modifier appendix of the specification is
//! implemented: wildcard and escape parsing, the transformation modifiers (`contains`,
//! `startswith`, `endswith`, `windash`, `base64`, `base64offset`, `utf16*`/`wide`, `expand`)
//! and the type modifiers (`re` with `i`/`m`/`s`, `cidr`, `exists`, `fieldref`, `cased`,
//! `gt`/`gte`/`lt`/`lte`, `neq`, the time modifiers). Both the compiled plan and the
//! reference interpreter used in tests consume its output, so they cannot disagree about
//! what a value *means*, only about how fast they evaluate it.

use std::collections::HashMap;
use std::net::IpAddr;

use base64::Engine as _;
use regex::Regex;

use crate::yaml::{Node, Yaml};

/// Regexes larger than this (compiled program size; SigmaHQ's largest, `\w{1,64}` with
/// Unicode classes, needs a few MiB) are rejected rather than built: it bounds
/// memory, not time — matching time is linear in the input regardless (see docs/detect.md).
const REGEX_SIZE_LIMIT: usize = 16 * 1024 * 1024;
/// `windash` expands every dash into five alternatives; past this many variants a value is
/// refused instead of exploding the automaton.
const MAX_WINDASH_VARIANTS: usize = 3125;

/// One value modifier of the Sigma modifier appendix (v2.1.0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Modifier {
    Contains,
    StartsWith,
    EndsWith,
    All,
    Exists,
    Cased,
    Neq,
    Windash,
    Re,
    ReIgnoreCase,
    ReMultiLine,
    ReDotAll,
    Base64,
    Base64Offset,
    Utf16Le,
    Utf16Be,
    Utf16,
    Wide,
    Lt,
    Lte,
    Gt,
    Gte,
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Year,
    Cidr,
    Expand,
    FieldRef,
}

impl Modifier {
    pub fn parse(name: &str) -> Option<Modifier> {
        Some(match name {
            "contains" => Modifier::Contains,
            "startswith" => Modifier::StartsWith,
            "endswith" => Modifier::EndsWith,
            "all" => Modifier::All,
            "exists" => Modifier::Exists,
            "cased" => Modifier::Cased,
            "neq" => Modifier::Neq,
            "windash" => Modifier::Windash,
            "re" => Modifier::Re,
            "i" | "ignorecase" => Modifier::ReIgnoreCase,
            "m" | "multiline" => Modifier::ReMultiLine,
            "s" | "dotall" => Modifier::ReDotAll,
            "base64" => Modifier::Base64,
            "base64offset" => Modifier::Base64Offset,
            "utf16le" => Modifier::Utf16Le,
            "utf16be" => Modifier::Utf16Be,
            "utf16" => Modifier::Utf16,
            "wide" => Modifier::Wide,
            "lt" => Modifier::Lt,
            "lte" => Modifier::Lte,
            "gt" => Modifier::Gt,
            "gte" => Modifier::Gte,
            "minute" => Modifier::Minute,
            "hour" => Modifier::Hour,
            "day" => Modifier::Day,
            "week" => Modifier::Week,
            "month" => Modifier::Month,
            "year" => Modifier::Year,
            "cidr" => Modifier::Cidr,
            "expand" => Modifier::Expand,
            "fieldref" => Modifier::FieldRef,
            _ => return None,
        })
    }
}

/// One element of a Sigma string value after wildcard and escape processing.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Tok {
    Lit(String),
    /// `?`: exactly one character.
    AnyOne,
    /// `*`: any run of characters, possibly empty.
    AnyMany,
}

/// A Sigma string value: literal runs and wildcards.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pattern {
    pub toks: Vec<Tok>,
}

impl Pattern {
    pub fn literal(text: &str) -> Pattern {
        let mut p = Pattern { toks: Vec::new() };
        p.push_lit(text);
        p
    }

    /// Parses wildcards and escapes as the specification's "Escape Character" section says:
    /// `\*` and `\?` are plain wildcard characters, `\\` is one backslash, and a backslash
    /// followed by anything else is itself.
    pub fn parse(text: &str) -> Pattern {
        let mut p = Pattern { toks: Vec::new() };
        let mut chars = text.chars().peekable();
        let mut buf = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.peek() {
                    Some(&n @ ('*' | '?' | '\\')) => {
                        buf.push(n);
                        chars.next();
                    }
                    _ => buf.push('\\'),
                },
                '*' | '?' => {
                    if !buf.is_empty() {
                        p.push_lit(&buf);
                        buf.clear();
                    }
                    p.toks
                        .push(if c == '*' { Tok::AnyMany } else { Tok::AnyOne });
                }
                _ => buf.push(c),
            }
        }
        if !buf.is_empty() {
            p.push_lit(&buf);
        }
        p
    }

    fn push_lit(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        if let Some(Tok::Lit(last)) = self.toks.last_mut() {
            last.push_str(text);
        } else {
            self.toks.push(Tok::Lit(text.to_owned()));
        }
    }

    pub fn is_plain(&self) -> bool {
        self.toks.iter().all(|t| matches!(t, Tok::Lit(_)))
    }

    pub fn plain_text(&self) -> String {
        let mut s = String::new();
        for t in &self.toks {
            if let Tok::Lit(l) = t {
                s.push_str(l);
            }
        }
        s
    }

    fn with_leading_star(mut self) -> Pattern {
        if self.toks.first() != Some(&Tok::AnyMany) {
            self.toks.insert(0, Tok::AnyMany);
        }
        self
    }

    fn with_trailing_star(mut self) -> Pattern {
        if self.toks.last() != Some(&Tok::AnyMany) {
            self.toks.push(Tok::AnyMany);
        }
        self
    }

    /// The same pattern with every literal case-folded (for case-insensitive matching).
    pub fn folded(&self) -> Pattern {
        Pattern {
            toks: self
                .toks
                .iter()
                .map(|t| match t {
                    Tok::Lit(l) => Tok::Lit(fold_case(l)),
                    other => other.clone(),
                })
                .collect(),
        }
    }

    /// The pattern's shape, so the compiled plan can hand simple ones to Aho-Corasick.
    pub fn shape(&self) -> Shape<'_> {
        let toks = &self.toks;
        let lead = toks.iter().take_while(|t| **t == Tok::AnyMany).count();
        let trail = toks[lead..]
            .iter()
            .rev()
            .take_while(|t| **t == Tok::AnyMany)
            .count();
        let middle = &toks[lead..toks.len() - trail];
        match middle {
            [] if lead + trail > 0 => Shape::Anything,
            [] => Shape::Exact(""),
            [Tok::Lit(l)] => match (lead > 0, trail > 0) {
                (false, false) => Shape::Exact(l),
                (false, true) => Shape::Prefix(l),
                (true, false) => Shape::Suffix(l),
                (true, true) => Shape::Contains(l),
            },
            _ => {
                let longest = middle
                    .iter()
                    .filter_map(|t| match t {
                        Tok::Lit(l) => Some(l.as_str()),
                        _ => None,
                    })
                    .max_by_key(|l| l.len());
                Shape::Glob { required: longest }
            }
        }
    }

    /// Does `text` (already folded if the pattern is) match this pattern as a whole?
    ///
    /// Greedy matching with one backtrack point (the last `*`): O(len(text) × len(pattern))
    /// in the worst case, never exponential, no recursion.
    pub fn matches(&self, text: &str) -> bool {
        let toks = &self.toks;
        let (mut ti, mut pos) = (0usize, 0usize);
        let mut star: Option<(usize, usize)> = None;
        loop {
            if ti == toks.len() {
                if pos == text.len() {
                    return true;
                }
            } else {
                match &toks[ti] {
                    Tok::AnyMany => {
                        star = Some((ti, pos));
                        ti += 1;
                        continue;
                    }
                    Tok::AnyOne => {
                        if let Some(c) = text[pos..].chars().next() {
                            pos += c.len_utf8();
                            ti += 1;
                            continue;
                        }
                    }
                    Tok::Lit(l) => {
                        if text[pos..].starts_with(l.as_str()) {
                            pos += l.len();
                            ti += 1;
                            continue;
                        }
                    }
                }
            }
            // Mismatch: let the last `*` swallow one more character, or fail.
            match star {
                Some((sti, spos)) => match text[spos..].chars().next() {
                    Some(c) => {
                        let mut next = spos + c.len_utf8();
                        // A literal after the `*` fails at every position before its next
                        // occurrence: go there directly (same result, no per-character retry).
                        if let Some(Tok::Lit(l)) = toks.get(sti + 1) {
                            match text[next..].find(l.as_str()) {
                                Some(skip) => next += skip,
                                None => return false,
                            }
                        }
                        star = Some((sti, next));
                        ti = sti + 1;
                        pos = next;
                    }
                    None => return false,
                },
                None => return false,
            }
        }
    }
}

/// The shape of a pattern, see [`Pattern::shape`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape<'a> {
    Exact(&'a str),
    Prefix(&'a str),
    Suffix(&'a str),
    Contains(&'a str),
    /// Only `*`s: matches any value, including the empty string.
    Anything,
    /// Interior wildcards or `?`; `required` is the longest literal run, which any match must
    /// contain (used as the Aho-Corasick prefilter).
    Glob {
        required: Option<&'a str>,
    },
}

/// Sigma's case-insensitive comparison: each character lower-cased on its own, so the folded
/// form of a concatenation is the concatenation of folded forms (which `str::to_lowercase`,
/// with its final-sigma rule, does not guarantee).
pub fn fold_case(text: &str) -> String {
    if text.is_ascii() {
        return text.to_ascii_lowercase();
    }
    let mut out = String::with_capacity(text.len());
    fold_case_into(text, &mut out);
    out
}

/// [`fold_case`] appended to `out` (a reused buffer): ASCII runs are copied and lowered in
/// bulk, only other characters go through `char::to_lowercase`.
pub(crate) fn fold_case_into(text: &str, out: &mut String) {
    if text.is_ascii() {
        let from = out.len();
        out.push_str(text);
        out[from..].make_ascii_lowercase();
        return;
    }
    let mut rest = text;
    while !rest.is_empty() {
        let ascii = rest
            .bytes()
            .position(|b| !b.is_ascii())
            .unwrap_or(rest.len());
        let (run, tail) = rest.split_at(ascii);
        let from = out.len();
        out.push_str(run);
        out[from..].make_ascii_lowercase();
        let mut chars = tail.chars();
        if let Some(c) = chars.next() {
            out.extend(c.to_lowercase());
        }
        rest = chars.as_str();
    }
}

/// Comparison operators of numeric and time modifiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    Eq,
    Lt,
    Lte,
    Gt,
    Gte,
}

impl CmpOp {
    pub fn holds(self, left: f64, right: f64) -> bool {
        match self {
            CmpOp::Eq => left == right,
            CmpOp::Lt => left < right,
            CmpOp::Lte => left <= right,
            CmpOp::Gt => left > right,
            CmpOp::Gte => left >= right,
        }
    }
}

/// Part of a timestamp extracted by a time modifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimePart {
    Minute,
    Hour,
    Day,
    Week,
    Month,
    Year,
}

/// How a `fieldref` compares the two fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefMode {
    Equals,
    Contains,
    StartsWith,
    EndsWith,
}

/// An IP network for the `cidr` modifier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    pub network: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    pub fn parse(text: &str) -> Option<Cidr> {
        let (addr, prefix) = match text.split_once('/') {
            Some((a, p)) => (a.trim(), Some(p.trim().parse::<u8>().ok()?)),
            None => (text.trim(), None),
        };
        let network: IpAddr = addr.parse().ok()?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = prefix.unwrap_or(max);
        (prefix <= max).then_some(Cidr { network, prefix })
    }

    pub fn contains(&self, addr: IpAddr) -> bool {
        match (self.network, addr) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// What one (transformed) rule value requires of one event value.
#[derive(Debug, Clone)]
pub enum ValueMatcher {
    /// A string pattern; when `cased` is false the literals are already folded.
    Pattern {
        pattern: Pattern,
        cased: bool,
    },
    Regex(Regex),
    /// Numeric comparison; with `time_part` the event value is a timestamp and the part is
    /// compared.
    Compare {
        op: CmpOp,
        value: f64,
        time_part: Option<TimePart>,
    },
    Cidr(Cidr),
    /// The field exists (`true`) or does not (`false`); its value does not matter.
    Exists(bool),
    /// `null`: the field is absent or null.
    Null,
    /// Compare with the value of another field of the same event.
    FieldRef {
        field: String,
        mode: RefMode,
        cased: bool,
    },
}

impl ValueMatcher {
    /// A stable text key, used to share identical matchers between rules.
    pub fn key(&self) -> String {
        match self {
            ValueMatcher::Pattern { pattern, cased } => {
                format!("p{}{:?}", u8::from(*cased), pattern.toks)
            }
            ValueMatcher::Regex(r) => format!("r{}", r.as_str()),
            ValueMatcher::Compare {
                op,
                value,
                time_part,
            } => format!("c{op:?}{value}{time_part:?}"),
            ValueMatcher::Cidr(c) => format!("n{}/{}", c.network, c.prefix),
            ValueMatcher::Exists(b) => format!("e{b}"),
            ValueMatcher::Null => "null".to_owned(),
            ValueMatcher::FieldRef { field, mode, cased } => format!("f{mode:?}{cased}{field}"),
        }
    }
}

/// A field test of a selection: `field|modifiers: values`.
///
/// `alternatives[i]` are the expansions of the i-th rule value (or-ed, e.g. the three
/// `base64offset` shifts or the `windash` permutations); the values are or-ed, or and-ed
/// with `all`; `negate` (the `neq` modifier) inverts the result.
#[derive(Debug, Clone)]
pub struct FieldTest {
    /// `None` for keyword (field-less) values.
    pub field: Option<String>,
    pub alternatives: Vec<Vec<ValueMatcher>>,
    pub all: bool,
    pub negate: bool,
    pub line: u32,
}

/// Why a value could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueError {
    /// Valid Sigma that this engine does not implement (the feature is named).
    Unsupported(String),
    Invalid(String),
}

/// Placeholder values for the `expand` modifier (`%Administrators%` → list of values).
pub type Placeholders = HashMap<String, Vec<String>>;

/// A scalar from the rule, before modifiers.
#[derive(Debug, Clone, PartialEq)]
pub enum RawValue {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    Null,
}

impl RawValue {
    fn text(&self) -> String {
        match self {
            RawValue::Str(s) => s.clone(),
            RawValue::Int(i) => i.to_string(),
            RawValue::Float(f) => f.to_string(),
            RawValue::Bool(b) => b.to_string(),
            RawValue::Null => String::new(),
        }
    }
    fn number(&self) -> Option<f64> {
        match self {
            RawValue::Int(i) => Some(*i as f64),
            RawValue::Float(f) => Some(*f),
            RawValue::Str(s) => s.trim().parse().ok(),
            RawValue::Bool(_) | RawValue::Null => None,
        }
    }
}

/// Reads the scalar values under a field key: one scalar or a list of scalars.
pub fn raw_values(node: &Node) -> Result<Vec<(RawValue, u32)>, ValueError> {
    fn scalar(n: &Node) -> Result<RawValue, ValueError> {
        Ok(match &n.value {
            Yaml::Str(s) => RawValue::Str(s.clone()),
            Yaml::Int(i) => RawValue::Int(*i),
            Yaml::Float(f) => RawValue::Float(*f),
            Yaml::Bool(b) => RawValue::Bool(*b),
            Yaml::Null => RawValue::Null,
            Yaml::Seq(_) | Yaml::Map(_) => {
                return Err(ValueError::Invalid(format!(
                    "line {}: a field value must be a scalar or a list of scalars, found a nested {}",
                    n.line,
                    n.kind()
                )));
            }
        })
    }
    match &node.value {
        Yaml::Seq(items) => {
            if items.is_empty() {
                return Err(ValueError::Invalid(format!(
                    "line {}: empty value list",
                    node.line
                )));
            }
            items.iter().map(|i| Ok((scalar(i)?, i.line))).collect()
        }
        _ => Ok(vec![(scalar(node)?, node.line)]),
    }
}

/// An intermediate value while transformation modifiers are applied in order.
#[derive(Debug, Clone)]
enum Stage {
    Pattern(Pattern),
    Bytes(Vec<u8>),
}

impl Stage {
    fn into_pattern(self) -> Pattern {
        match self {
            Stage::Pattern(p) => p,
            // Encoded bytes that were never base64-ed: compared byte for byte, each byte as
            // the character with that code (what a Latin-1 rendering of the field would show).
            Stage::Bytes(b) => {
                Pattern::literal(&b.iter().map(|&x| char::from(x)).collect::<String>())
            }
        }
    }
}

fn utf16(text: &str, little: bool, bom: bool) -> Vec<u8> {
    let mut out = Vec::new();
    if bom {
        out.extend_from_slice(&[0xFF, 0xFE]);
    }
    for unit in text.encode_utf16() {
        let b = if little || bom {
            unit.to_le_bytes()
        } else {
            unit.to_be_bytes()
        };
        out.extend_from_slice(&b);
    }
    out
}

/// The three `base64offset` variants, as pySigma computes them: the value shifted by 0, 1 and
/// 2 bytes, encoded, and trimmed of the characters that depend on the unknown neighbours.
pub fn base64_offsets(bytes: &[u8]) -> Vec<String> {
    const START: [usize; 3] = [0, 2, 3];
    const END_TRIM: [usize; 3] = [0, 3, 2];
    let mut out = Vec::new();
    for shift in 0..3 {
        let mut data = vec![b' '; shift];
        data.extend_from_slice(bytes);
        let encoded = base64::engine::general_purpose::STANDARD.encode(&data);
        let end = encoded
            .len()
            .saturating_sub(END_TRIM[(bytes.len() + shift) % 3]);
        let start = START[shift].min(end);
        out.push(encoded[start..end].to_owned());
    }
    out
}

fn windash_variants(pattern: &Pattern) -> Result<Vec<Pattern>, ValueError> {
    const DASHES: [char; 5] = ['-', '/', '\u{2013}', '\u{2014}', '\u{2015}'];
    let mut variants = vec![Pattern { toks: Vec::new() }];
    for tok in &pattern.toks {
        match tok {
            Tok::Lit(lit) => {
                for c in lit.chars() {
                    let options: Vec<char> = if DASHES.contains(&c) {
                        DASHES.to_vec()
                    } else {
                        vec![c]
                    };
                    if variants.len() * options.len() > MAX_WINDASH_VARIANTS {
                        return Err(ValueError::Unsupported(format!(
                            "windash on a value with more than {MAX_WINDASH_VARIANTS} permutations"
                        )));
                    }
                    let mut next = Vec::with_capacity(variants.len() * options.len());
                    for v in &variants {
                        for o in &options {
                            let mut nv = v.clone();
                            nv.push_lit(o.encode_utf8(&mut [0u8; 4]));
                            next.push(nv);
                        }
                    }
                    variants = next;
                }
            }
            other => {
                for v in &mut variants {
                    v.toks.push(other.clone());
                }
            }
        }
    }
    Ok(variants)
}

fn expand_placeholders(text: &str, placeholders: &Placeholders) -> Result<Vec<String>, ValueError> {
    // `\%` is a plain percent sign; `%name%` is a placeholder.
    let mut results = vec![String::new()];
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '\\' && chars.get(i + 1) == Some(&'%') {
            for r in &mut results {
                r.push('%');
            }
            i += 2;
        } else if chars[i] == '%' {
            let Some(end) = chars[i + 1..].iter().position(|&c| c == '%') else {
                return Err(ValueError::Invalid(format!(
                    "unterminated placeholder in '{text}'"
                )));
            };
            let name: String = chars[i + 1..i + 1 + end].iter().collect();
            let Some(values) = placeholders.get(&name) else {
                return Err(ValueError::Unsupported(format!(
                    "expand placeholder %{name}% (no value configured for it)"
                )));
            };
            let mut next = Vec::new();
            for r in &results {
                for v in values {
                    next.push(format!("{r}{v}"));
                }
            }
            results = next;
            i += end + 2;
        } else {
            for r in &mut results {
                r.push(chars[i]);
            }
            i += 1;
        }
    }
    Ok(results)
}

/// Compiles `field|modifiers: value(s)` into a [`FieldTest`].
pub fn compile_field_test(
    key: &str,
    values_node: &Node,
    line: u32,
    placeholders: &Placeholders,
) -> Result<FieldTest, ValueError> {
    let mut parts = key.split('|');
    let field_name = parts.next().unwrap_or_default();
    let field = (!field_name.is_empty()).then(|| field_name.to_owned());
    let mut modifiers = Vec::new();
    for name in parts {
        match Modifier::parse(name) {
            Some(m) => modifiers.push(m),
            None => {
                return Err(ValueError::Invalid(format!(
                    "unknown value modifier '{name}' in '{key}'"
                )));
            }
        }
    }
    let has = |m: Modifier| modifiers.contains(&m);
    let all = has(Modifier::All);
    let negate = has(Modifier::Neq);
    let cased = has(Modifier::Cased);
    let values = raw_values(values_node)?;
    // `all` on a single value is discouraged by the specification but changes nothing, so it
    // is accepted rather than failing the whole rule.
    let string_transforms = [
        Modifier::Contains,
        Modifier::StartsWith,
        Modifier::EndsWith,
        Modifier::Windash,
        Modifier::Base64,
        Modifier::Base64Offset,
        Modifier::Utf16,
        Modifier::Utf16Le,
        Modifier::Utf16Be,
        Modifier::Wide,
        Modifier::Expand,
    ];
    let re_flags = [
        Modifier::ReIgnoreCase,
        Modifier::ReMultiLine,
        Modifier::ReDotAll,
    ];
    let compare = modifiers.iter().find_map(|m| match m {
        Modifier::Lt => Some(CmpOp::Lt),
        Modifier::Lte => Some(CmpOp::Lte),
        Modifier::Gt => Some(CmpOp::Gt),
        Modifier::Gte => Some(CmpOp::Gte),
        _ => None,
    });
    let time_part = modifiers.iter().find_map(|m| match m {
        Modifier::Minute => Some(TimePart::Minute),
        Modifier::Hour => Some(TimePart::Hour),
        Modifier::Day => Some(TimePart::Day),
        Modifier::Week => Some(TimePart::Week),
        Modifier::Month => Some(TimePart::Month),
        Modifier::Year => Some(TimePart::Year),
        _ => None,
    });
    if re_flags.iter().any(|m| has(*m)) && !has(Modifier::Re) {
        return Err(ValueError::Invalid(format!(
            "regex flag modifier without 're' in '{key}'"
        )));
    }
    let type_modifiers = [
        has(Modifier::Re),
        has(Modifier::Cidr),
        has(Modifier::Exists),
        has(Modifier::FieldRef),
        compare.is_some() || time_part.is_some(),
    ];
    if type_modifiers.iter().filter(|b| **b).count() > 1 {
        return Err(ValueError::Invalid(format!(
            "conflicting type modifiers in '{key}'"
        )));
    }
    if field.is_none()
        && (has(Modifier::Exists)
            || has(Modifier::FieldRef)
            || compare.is_some()
            || time_part.is_some()
            || has(Modifier::Cidr))
    {
        return Err(ValueError::Invalid(format!("'{key}' needs a field name")));
    }

    let mut alternatives = Vec::new();
    for (raw, vline) in &values {
        let here = |m: &str| format!("line {vline}: {m}");
        if has(Modifier::Exists) {
            let RawValue::Bool(b) = raw else {
                return Err(ValueError::Invalid(here("'exists' takes true or false")));
            };
            alternatives.push(vec![ValueMatcher::Exists(*b)]);
            continue;
        }
        if *raw == RawValue::Null {
            if !modifiers.is_empty() && !modifiers.iter().all(|m| *m == Modifier::Neq) {
                return Err(ValueError::Invalid(here(
                    "null cannot be combined with value modifiers",
                )));
            }
            if values.len() > 1 {
                return Err(ValueError::Invalid(here(
                    "null cannot be part of a list of values",
                )));
            }
            alternatives.push(vec![ValueMatcher::Null]);
            continue;
        }
        if let Some(op) = compare.or(time_part.map(|_| CmpOp::Eq)) {
            let Some(number) = raw.number() else {
                return Err(ValueError::Invalid(here(&format!(
                    "'{key}' needs a numeric value"
                ))));
            };
            if string_transforms.iter().any(|m| has(*m)) {
                return Err(ValueError::Invalid(here(
                    "numeric modifiers cannot be combined with string modifiers",
                )));
            }
            alternatives.push(vec![ValueMatcher::Compare {
                op,
                value: number,
                time_part,
            }]);
            continue;
        }
        let text = raw.text();
        if has(Modifier::Re) {
            if string_transforms.iter().any(|m| has(*m)) {
                return Err(ValueError::Invalid(here(
                    "'re' cannot be combined with string transformations",
                )));
            }
            // Flags go inline, so that the pattern text (the atom's identity in the plan)
            // tells `re` from `re|i`: built with builder flags, both had the same text and
            // shared one atom.
            let flags: String = [
                (Modifier::ReIgnoreCase, 'i'),
                (Modifier::ReMultiLine, 'm'),
                (Modifier::ReDotAll, 's'),
            ]
            .iter()
            .filter(|(m, _)| has(*m))
            .map(|(_, c)| *c)
            .collect();
            let pattern = if flags.is_empty() {
                text.to_string()
            } else {
                format!("(?{flags}){text}")
            };
            let mut builder = regex::RegexBuilder::new(&pattern);
            builder.size_limit(REGEX_SIZE_LIMIT);
            let regex = builder.build().map_err(|e| {
                let msg = e.to_string();
                if msg.contains("look-around") || msg.contains("backreference") {
                    ValueError::Unsupported(format!(
                        "regular expression with look-around or backreference: {}",
                        msg.lines().last().unwrap_or_default().trim()
                    ))
                } else {
                    ValueError::Invalid(here(&format!(
                        "invalid regular expression: {}",
                        msg.lines().last().unwrap_or_default().trim()
                    )))
                }
            })?;
            alternatives.push(vec![ValueMatcher::Regex(regex)]);
            continue;
        }
        if has(Modifier::Cidr) {
            let cidr = Cidr::parse(&text)
                .ok_or_else(|| ValueError::Invalid(here(&format!("invalid CIDR '{text}'"))))?;
            alternatives.push(vec![ValueMatcher::Cidr(cidr)]);
            continue;
        }
        if has(Modifier::FieldRef) {
            let mode = if has(Modifier::Contains) {
                RefMode::Contains
            } else if has(Modifier::StartsWith) {
                RefMode::StartsWith
            } else if has(Modifier::EndsWith) {
                RefMode::EndsWith
            } else {
                RefMode::Equals
            };
            alternatives.push(vec![ValueMatcher::FieldRef {
                field: text,
                mode,
                cased,
            }]);
            continue;
        }
        if matches!(raw, RawValue::Bool(_))
            && !modifiers.is_empty()
            && !modifiers
                .iter()
                .all(|m| matches!(m, Modifier::Neq | Modifier::Cased | Modifier::All))
        {
            return Err(ValueError::Invalid(here(
                "string modifiers cannot be applied to a boolean",
            )));
        }
        // Transformation modifiers, applied in the order written.
        let texts = if has(Modifier::Expand) {
            expand_placeholders(&text, placeholders)?
        } else {
            vec![text]
        };
        let mut stages: Vec<Stage> = texts
            .iter()
            .map(|t| Stage::Pattern(Pattern::parse(t)))
            .collect();
        for m in &modifiers {
            let mut next = Vec::new();
            for stage in stages {
                match (m, stage) {
                    (Modifier::Contains, s) => next.push(Stage::Pattern(
                        s.into_pattern().with_leading_star().with_trailing_star(),
                    )),
                    (Modifier::StartsWith, s) => {
                        next.push(Stage::Pattern(s.into_pattern().with_trailing_star()))
                    }
                    (Modifier::EndsWith, s) => {
                        next.push(Stage::Pattern(s.into_pattern().with_leading_star()))
                    }
                    (Modifier::Windash, s) => next.extend(
                        windash_variants(&s.into_pattern())?
                            .into_iter()
                            .map(Stage::Pattern),
                    ),
                    (
                        Modifier::Utf16Le | Modifier::Wide | Modifier::Utf16Be | Modifier::Utf16,
                        s,
                    ) => {
                        let p = s.into_pattern();
                        if !p.is_plain() {
                            return Err(ValueError::Invalid(here(
                                "encoding modifiers cannot encode wildcards",
                            )));
                        }
                        let little = !matches!(m, Modifier::Utf16Be);
                        next.push(Stage::Bytes(utf16(
                            &p.plain_text(),
                            little,
                            *m == Modifier::Utf16,
                        )));
                    }
                    (Modifier::Base64 | Modifier::Base64Offset, s) => {
                        let bytes = match s {
                            Stage::Bytes(b) => b,
                            Stage::Pattern(p) if p.is_plain() => p.plain_text().into_bytes(),
                            Stage::Pattern(_) => {
                                return Err(ValueError::Invalid(here(
                                    "base64 modifiers cannot encode wildcards",
                                )));
                            }
                        };
                        if *m == Modifier::Base64 {
                            next.push(Stage::Pattern(Pattern::literal(
                                &base64::engine::general_purpose::STANDARD.encode(&bytes),
                            )));
                        } else {
                            next.extend(
                                base64_offsets(&bytes)
                                    .iter()
                                    .map(|v| Stage::Pattern(Pattern::literal(v))),
                            );
                        }
                    }
                    (_, s) => next.push(s),
                }
            }
            stages = next;
        }
        let positional =
            has(Modifier::Contains) || has(Modifier::StartsWith) || has(Modifier::EndsWith);
        let matchers: Vec<ValueMatcher> = stages
            .into_iter()
            .map(|s| {
                let mut p = s.into_pattern();
                if field.is_none() && !positional {
                    // Keywords are found anywhere in a value, as for plain keyword lists.
                    p = p.with_leading_star().with_trailing_star();
                }
                let pattern = if cased { p } else { p.folded() };
                ValueMatcher::Pattern { pattern, cased }
            })
            .collect();
        alternatives.push(matchers);
    }
    Ok(FieldTest {
        field,
        alternatives,
        all,
        negate,
        line,
    })
}

/// Compiles a keyword (field-less) value: matched anywhere in any value of the event.
pub fn compile_keyword(raw: &RawValue, line: u32) -> Result<FieldTest, ValueError> {
    let text = raw.text();
    let p = Pattern::parse(&text)
        .with_leading_star()
        .with_trailing_star()
        .folded();
    Ok(FieldTest {
        field: None,
        alternatives: vec![vec![ValueMatcher::Pattern {
            pattern: p,
            cased: false,
        }]],
        all: false,
        negate: false,
        line,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_follow_the_specification_table() {
        assert_eq!(Pattern::parse(r"a\*b").toks, vec![Tok::Lit("a*b".into())]);
        assert_eq!(
            Pattern::parse(r"a\\*").toks,
            vec![Tok::Lit(r"a\".into()), Tok::AnyMany]
        );
        assert_eq!(Pattern::parse(r"a\\\*").toks, vec![Tok::Lit(r"a\*".into())]);
        assert_eq!(Pattern::parse(r"\\\\").toks, vec![Tok::Lit(r"\\".into())]);
        assert_eq!(Pattern::parse(r"\\\").toks, vec![Tok::Lit(r"\\".into())]);
        assert_eq!(
            Pattern::parse(r"C:\Windows\x").toks,
            vec![Tok::Lit(r"C:\Windows\x".into())]
        );
        assert_eq!(
            Pattern::parse("prog?.exe").toks,
            vec![
                Tok::Lit("prog".into()),
                Tok::AnyOne,
                Tok::Lit(".exe".into())
            ]
        );
    }

    #[test]
    fn glob_matching_is_whole_value() {
        let p = Pattern::parse("antivirus_V*.exe");
        assert!(p.matches("antivirus_V1.exe"));
        assert!(p.matches("antivirus_V21.2.1.exe"));
        assert!(!p.matches("antivirus_V1.exe.bak"));
        let q = Pattern::parse("prog?.exe");
        assert!(q.matches("progA.exe") && q.matches("progé.exe") && !q.matches("prog.exe"));
        assert!(Pattern::parse("*a*b*").matches("xxaxxbxx"));
        assert!(!Pattern::parse("*a*b").matches("xxaxxbxx"));
    }

    #[test]
    fn base64offset_matches_pysigma_reference_values() {
        // pySigma documents these three variants for "/bin/bash".
        assert_eq!(
            base64_offsets(b"/bin/bash"),
            vec!["L2Jpbi9iYXNo", "9iaW4vYmFza", "vYmluL2Jhc2"]
        );
    }

    #[test]
    fn utf16_encodings_match_the_appendix_examples() {
        assert_eq!(utf16("cmd", true, false), vec![0x63, 0, 0x6d, 0, 0x64, 0]);
        assert_eq!(utf16("cmd", false, false), vec![0, 0x63, 0, 0x6d, 0, 0x64]);
        assert_eq!(
            utf16("cmd", true, true),
            vec![0xFF, 0xFE, 0x63, 0, 0x6d, 0, 0x64, 0]
        );
    }

    #[test]
    fn cidr_contains() {
        let c = Cidr::parse("10.0.0.0/8").unwrap();
        assert!(c.contains("10.1.2.3".parse().unwrap()));
        assert!(!c.contains("11.0.0.1".parse().unwrap()));
        let v6 = Cidr::parse("fe80::/10").unwrap();
        assert!(v6.contains("fe80::1".parse().unwrap()));
        assert!(Cidr::parse("10.0.0.0/33").is_none());
    }

    #[test]
    fn windash_expands_every_dash() {
        let v = windash_variants(&Pattern::parse("-a")).unwrap();
        let texts: Vec<String> = v.iter().map(Pattern::plain_text).collect();
        assert_eq!(
            texts,
            vec!["-a", "/a", "\u{2013}a", "\u{2014}a", "\u{2015}a"]
        );
    }

    /// The greedy glob matcher agrees with a naive recursive one, and the buffered case fold
    /// with the per-character one.
    mod properties {
        #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
        use super::super::*;
        use proptest::prelude::*;

        fn naive(p: &[char], t: &[char]) -> bool {
            match p.split_first() {
                None => t.is_empty(),
                Some(('*', rest)) => (0..=t.len()).any(|k| naive(rest, &t[k..])),
                Some(('?', rest)) => !t.is_empty() && naive(rest, &t[1..]),
                Some((c, rest)) => t.first() == Some(c) && naive(rest, &t[1..]),
            }
        }

        proptest! {
            #[test]
            fn glob_agrees_with_naive(p in "[ab*?é]{0,8}", t in "[abé]{0,12}") {
                let pattern = Pattern::parse(&p);
                let pc: Vec<char> = p.chars().collect();
                let tc: Vec<char> = t.chars().collect();
                prop_assert_eq!(pattern.matches(&t), naive(&pc, &tc), "{} {}", p, t);
            }

            #[test]
            fn fold_case_agrees_per_character(t in "\\PC{0,16}") {
                let reference: String = t.chars().flat_map(char::to_lowercase).collect();
                prop_assert_eq!(fold_case(&t), reference);
            }
        }
    }
}
