//! The Sigma condition language: tokenizer and precedence parser.
//!
//! Grammar (Sigma rules specification, "Condition"), least to most binding:
//! `or`, `and`, `not`, `x of pattern`, `( expr )`. A condition may also be a YAML list of
//! expressions, which are or-ed. The obsolete aggregation syntax (`| count() by …`) and the
//! `near` operator are recognised only to be refused with a message that says what to use
//! instead (a correlation rule).

use std::fmt;

/// A parsed condition; search identifiers are resolved to indices of the rule's identifiers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    Ident(usize),
    Not(Box<Condition>),
    And(Vec<Condition>),
    Or(Vec<Condition>),
    /// `N of …` / `all of …`: at least `min` of `of` must hold (`all` is `min == of.len()`).
    AtLeast {
        min: usize,
        of: Vec<usize>,
    },
}

/// Why a condition could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConditionError {
    /// Syntax that the specification declared obsolete.
    Obsolete(String),
    Invalid(String),
}

impl fmt::Display for ConditionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConditionError::Obsolete(m) | ConditionError::Invalid(m) => f.write_str(m),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Word(String),
    Open,
    Close,
    Pipe,
}

fn tokenize(text: &str) -> Result<Vec<Token>, ConditionError> {
    let mut tokens = Vec::new();
    let mut chars = text.char_indices().peekable();
    while let Some(&(i, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '(' {
            tokens.push(Token::Open);
            chars.next();
        } else if c == ')' {
            tokens.push(Token::Close);
            chars.next();
        } else if c == '|' {
            tokens.push(Token::Pipe);
            chars.next();
        } else if c.is_alphanumeric() || matches!(c, '_' | '*' | '-' | '.') {
            let mut end = i;
            while let Some(&(j, d)) = chars.peek() {
                if d.is_alphanumeric() || matches!(d, '_' | '*' | '-' | '.') {
                    end = j + d.len_utf8();
                    chars.next();
                } else {
                    break;
                }
            }
            tokens.push(Token::Word(text[i..end].to_owned()));
        } else {
            return Err(ConditionError::Invalid(format!(
                "unexpected character '{c}' at position {} of condition '{text}'",
                i + 1
            )));
        }
    }
    Ok(tokens)
}

/// Matches a search-identifier pattern where `*` stands for any run of characters.
pub fn identifier_pattern_matches(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    // Iterative wildcard match with a single backtrack point: linear per star, no recursion.
    let (mut pi, mut ni) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if pi < p.len() && p[pi] == n[ni] {
            pi += 1;
            ni += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

struct Parser<'a> {
    tokens: Vec<Token>,
    pos: usize,
    identifiers: &'a [String],
    text: &'a str,
}

const MAX_DEPTH: usize = 200;

impl Parser<'_> {
    fn peek_word(&self) -> Option<&str> {
        match self.tokens.get(self.pos) {
            Some(Token::Word(w)) => Some(w.as_str()),
            _ => None,
        }
    }

    fn invalid(&self, message: impl Into<String>) -> ConditionError {
        ConditionError::Invalid(format!("{} in condition '{}'", message.into(), self.text))
    }

    fn parse_or(&mut self, depth: usize) -> Result<Condition, ConditionError> {
        let mut parts = vec![self.parse_and(depth)?];
        while self
            .peek_word()
            .is_some_and(|w| w.eq_ignore_ascii_case("or"))
        {
            self.pos += 1;
            parts.push(self.parse_and(depth)?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Condition::Or(parts)
        })
    }

    fn parse_and(&mut self, depth: usize) -> Result<Condition, ConditionError> {
        let mut parts = vec![self.parse_not(depth)?];
        while self
            .peek_word()
            .is_some_and(|w| w.eq_ignore_ascii_case("and"))
        {
            self.pos += 1;
            parts.push(self.parse_not(depth)?);
        }
        Ok(if parts.len() == 1 {
            parts.remove(0)
        } else {
            Condition::And(parts)
        })
    }

    fn parse_not(&mut self, depth: usize) -> Result<Condition, ConditionError> {
        if depth > MAX_DEPTH {
            return Err(self.invalid("condition nested too deeply"));
        }
        if self
            .peek_word()
            .is_some_and(|w| w.eq_ignore_ascii_case("not"))
        {
            self.pos += 1;
            return Ok(Condition::Not(Box::new(self.parse_not(depth + 1)?)));
        }
        self.parse_primary(depth)
    }

    fn parse_primary(&mut self, depth: usize) -> Result<Condition, ConditionError> {
        match self.tokens.get(self.pos).cloned() {
            None => Err(self.invalid("unexpected end")),
            Some(Token::Open) => {
                self.pos += 1;
                let inner = self.parse_or(depth + 1)?;
                match self.tokens.get(self.pos) {
                    Some(Token::Close) => {
                        self.pos += 1;
                        Ok(inner)
                    }
                    _ => Err(self.invalid("missing ')'")),
                }
            }
            Some(Token::Close) => Err(self.invalid("unexpected ')'")),
            Some(Token::Pipe) => Err(obsolete_pipe(self.text)),
            Some(Token::Word(word)) => {
                self.pos += 1;
                let lower = word.to_ascii_lowercase();
                if lower == "near" {
                    return Err(obsolete_near(self.text));
                }
                if matches!(lower.as_str(), "and" | "or" | "of" | "them") {
                    return Err(self.invalid(format!("unexpected '{word}'")));
                }
                let is_quantifier = lower == "all" || lower.parse::<usize>().is_ok();
                if is_quantifier
                    && self
                        .peek_word()
                        .is_some_and(|w| w.eq_ignore_ascii_case("of"))
                {
                    self.pos += 1;
                    let target = match self.tokens.get(self.pos) {
                        Some(Token::Word(w)) => w.clone(),
                        _ => {
                            return Err(
                                self.invalid(format!("'{word} of' needs a pattern or 'them'"))
                            );
                        }
                    };
                    self.pos += 1;
                    let of: Vec<usize> = if target.eq_ignore_ascii_case("them") {
                        (0..self.identifiers.len())
                            .filter(|&i| !self.identifiers[i].starts_with('_'))
                            .collect()
                    } else {
                        (0..self.identifiers.len())
                            .filter(|&i| identifier_pattern_matches(&target, &self.identifiers[i]))
                            .collect()
                    };
                    if of.is_empty() {
                        return Err(self.invalid(format!(
                            "'{word} of {target}' matches no search identifier"
                        )));
                    }
                    let min = if lower == "all" {
                        of.len()
                    } else {
                        lower.parse::<usize>().unwrap_or(1)
                    };
                    if min == 0 {
                        return Err(self.invalid("'0 of' is meaningless"));
                    }
                    return Ok(Condition::AtLeast { min, of });
                }
                match self.identifiers.iter().position(|i| *i == word) {
                    Some(index) => Ok(Condition::Ident(index)),
                    None => Err(self.invalid(format!("unknown search identifier '{word}'"))),
                }
            }
        }
    }
}

fn obsolete_pipe(text: &str) -> ConditionError {
    ConditionError::Obsolete(format!(
        "obsolete aggregation syntax ('| count() by …') in condition '{text}': \
         express it as a Sigma correlation rule (event_count, value_count, …)"
    ))
}

fn obsolete_near(text: &str) -> ConditionError {
    ConditionError::Obsolete(format!(
        "obsolete 'near' operator in condition '{text}': \
         express it as a temporal correlation rule"
    ))
}

/// Parses one condition expression against the rule's search identifiers (in file order).
pub fn parse_condition(text: &str, identifiers: &[String]) -> Result<Condition, ConditionError> {
    if text.contains('|') {
        return Err(obsolete_pipe(text));
    }
    let tokens = tokenize(text)?;
    if tokens.is_empty() {
        return Err(ConditionError::Invalid("empty condition".to_owned()));
    }
    let mut parser = Parser {
        tokens,
        pos: 0,
        identifiers,
        text,
    };
    let condition = parser.parse_or(0)?;
    if parser.pos != parser.tokens.len() {
        let rest = match &parser.tokens[parser.pos] {
            Token::Word(w) if w.eq_ignore_ascii_case("near") => return Err(obsolete_near(text)),
            Token::Word(w) => w.clone(),
            Token::Open => "(".to_owned(),
            Token::Close => ")".to_owned(),
            Token::Pipe => "|".to_owned(),
        };
        return Err(parser.invalid(format!("unexpected '{rest}' after a complete expression")));
    }
    Ok(condition)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn precedence_is_or_then_and_then_not() {
        let i = ids(&["a", "b", "c"]);
        let c = parse_condition("a or b and not c", &i).unwrap();
        assert_eq!(
            c,
            Condition::Or(vec![
                Condition::Ident(0),
                Condition::And(vec![
                    Condition::Ident(1),
                    Condition::Not(Box::new(Condition::Ident(2)))
                ])
            ])
        );
    }

    #[test]
    fn parentheses_override_precedence() {
        let i = ids(&["a", "b", "c"]);
        let c = parse_condition("(a or b) and c", &i).unwrap();
        assert_eq!(
            c,
            Condition::And(vec![
                Condition::Or(vec![Condition::Ident(0), Condition::Ident(1)]),
                Condition::Ident(2)
            ])
        );
    }

    #[test]
    fn of_them_skips_underscore_identifiers() {
        let i = ids(&["selection_a", "_helper", "filter"]);
        assert_eq!(
            parse_condition("all of them", &i).unwrap(),
            Condition::AtLeast {
                min: 2,
                of: vec![0, 2]
            }
        );
        assert_eq!(
            parse_condition("1 of selection_*", &i).unwrap(),
            Condition::AtLeast {
                min: 1,
                of: vec![0]
            }
        );
    }

    #[test]
    fn obsolete_syntax_is_named() {
        let i = ids(&["selection"]);
        let e = parse_condition("selection | count() by host > 5", &i).unwrap_err();
        assert!(
            matches!(e, ConditionError::Obsolete(ref m) if m.contains("correlation")),
            "{e}"
        );
        let e = parse_condition("selection near other", &i).unwrap_err();
        assert!(matches!(e, ConditionError::Obsolete(_)), "{e}");
    }

    #[test]
    fn broken_conditions_are_invalid() {
        let i = ids(&["a", "b"]);
        for text in [
            "a and",
            "(a or b",
            "a b",
            "1 of nothing*",
            "missing",
            "not",
            "a and )",
        ] {
            assert!(
                matches!(parse_condition(text, &i), Err(ConditionError::Invalid(_))),
                "{text}"
            );
        }
    }

    #[test]
    fn deep_parentheses_do_not_overflow() {
        let i = ids(&["a"]);
        let text = format!("{}a{}", "(".repeat(100_000), ")".repeat(100_000));
        assert!(parse_condition(&text, &i).is_err());
    }
}
