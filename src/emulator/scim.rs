//! The SCIM filters (RFC 7644 §3.4.2.2) that Qlik's list endpoints take in `filter`, e.g.
//! `name eq "My Automation" and runMode eq "scheduled"`. Pure.
//!
//! Supported: `eq ne co sw ew gt ge lt le` against a string, number, `true`, `false` or
//! `null`; `pr`; `and` (binding tighter than `or`), `or`, `not (...)` and parentheses.
//! Attribute names and operators are case-insensitive. String comparisons are
//! case-insensitive too, as RFC 7644 says for attributes that are not `caseExact` (Qlik's
//! definitions say nothing either way): a client finding an object by name gets a superset
//! and must still compare names exactly. Attributes the API does not call filterable are
//! refused, so a misspelt filter fails loudly instead of matching nothing.

use serde_json::Value;

/// A parsed filter over the attributes of one API.
#[derive(Clone, Debug, PartialEq)]
pub enum Filter {
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
    /// `attribute pr`.
    Present(&'static str),
    Compare {
        attribute: &'static str,
        op: Op,
        value: Value,
    },
}

/// A comparison operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Ne,
    Co,
    Sw,
    Ew,
    Gt,
    Ge,
    Lt,
    Le,
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Word(String),
    Text(String),
    Open,
    Close,
}

/// Parses `text`, accepting only the attributes in `filterable` (named as they are
/// spelled there, matched case-insensitively). The error says what is wrong.
pub fn parse(text: &str, filterable: &[&'static str]) -> Result<Filter, String> {
    let tokens = tokenize(text)?;
    let mut parser = Parser {
        tokens,
        at: 0,
        filterable,
    };
    let filter = parser.or()?;
    match parser.tokens.get(parser.at) {
        None => Ok(filter),
        Some(token) => Err(format!("unexpected {token:?} in the filter")),
    }
}

impl Filter {
    /// Whether an object matches; `attribute` gives an attribute's value (`None` or `Null`
    /// when it has none).
    pub fn matches(&self, attribute: &dyn Fn(&str) -> Option<Value>) -> bool {
        match self {
            Filter::And(a, b) => a.matches(attribute) && b.matches(attribute),
            Filter::Or(a, b) => a.matches(attribute) || b.matches(attribute),
            Filter::Not(f) => !f.matches(attribute),
            Filter::Present(name) => attribute(name).is_some_and(|v| !v.is_null()),
            Filter::Compare {
                attribute: name,
                op,
                value,
            } => compare(&attribute(name).unwrap_or(Value::Null), *op, value),
        }
    }
}

fn compare(actual: &Value, op: Op, expected: &Value) -> bool {
    use std::cmp::Ordering;
    let ordering = match (actual, expected) {
        (Value::String(a), Value::String(b)) => {
            let (a, b) = (a.to_lowercase(), b.to_lowercase());
            match op {
                Op::Co => return a.contains(&b),
                Op::Sw => return a.starts_with(&b),
                Op::Ew => return a.ends_with(&b),
                _ => a.cmp(&b),
            }
        }
        (Value::Number(a), Value::Number(b)) => {
            let (a, b) = (
                a.as_f64().unwrap_or(f64::NAN),
                b.as_f64().unwrap_or(f64::NAN),
            );
            match a.partial_cmp(&b) {
                Some(ordering) => ordering,
                None => return op == Op::Ne,
            }
        }
        (a, b) if a == b => Ordering::Equal,
        _ => return op == Op::Ne,
    };
    match op {
        Op::Eq => ordering.is_eq(),
        Op::Ne => ordering.is_ne(),
        Op::Gt => ordering.is_gt(),
        Op::Ge => ordering.is_ge(),
        Op::Lt => ordering.is_lt(),
        Op::Le => ordering.is_le(),
        Op::Co | Op::Sw | Op::Ew => false,
    }
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' | ')' => {
                chars.next();
                tokens.push(if c == '(' { Token::Open } else { Token::Close });
            }
            '"' => {
                chars.next();
                let mut text = String::new();
                loop {
                    match chars.next() {
                        None => return Err("a string in the filter is not closed".to_owned()),
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(escaped) => text.push(escaped),
                            None => return Err("the filter ends in an escape".to_owned()),
                        },
                        Some(other) => text.push(other),
                    }
                }
                tokens.push(Token::Text(text));
            }
            _ => {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || matches!(c, '(' | ')' | '"') {
                        break;
                    }
                    word.push(c);
                    chars.next();
                }
                tokens.push(Token::Word(word));
            }
        }
    }
    Ok(tokens)
}

struct Parser<'a> {
    tokens: Vec<Token>,
    at: usize,
    filterable: &'a [&'static str],
}

impl Parser<'_> {
    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        token
    }

    fn keyword(&mut self, word: &str) -> bool {
        let found = matches!(
            self.tokens.get(self.at),
            Some(Token::Word(w)) if w.eq_ignore_ascii_case(word)
        );
        if found {
            self.at += 1;
        }
        found
    }

    fn or(&mut self) -> Result<Filter, String> {
        let mut filter = self.and()?;
        while self.keyword("or") {
            filter = Filter::Or(Box::new(filter), Box::new(self.and()?));
        }
        Ok(filter)
    }

    fn and(&mut self) -> Result<Filter, String> {
        let mut filter = self.unary()?;
        while self.keyword("and") {
            filter = Filter::And(Box::new(filter), Box::new(self.unary()?));
        }
        Ok(filter)
    }

    fn unary(&mut self) -> Result<Filter, String> {
        if self.keyword("not") {
            return match self.next() {
                Some(Token::Open) => Ok(Filter::Not(Box::new(self.group()?))),
                _ => Err("not must be followed by a parenthesised filter".to_owned()),
            };
        }
        match self.next() {
            Some(Token::Open) => self.group(),
            Some(Token::Word(name)) => self.comparison(&name),
            Some(other) => Err(format!("expected an attribute, got {other:?}")),
            None => Err("the filter is incomplete".to_owned()),
        }
    }

    fn group(&mut self) -> Result<Filter, String> {
        let inner = self.or()?;
        match self.next() {
            Some(Token::Close) => Ok(inner),
            _ => Err("a parenthesis in the filter is not closed".to_owned()),
        }
    }

    fn comparison(&mut self, name: &str) -> Result<Filter, String> {
        let attribute = self
            .filterable
            .iter()
            .find(|a| a.eq_ignore_ascii_case(name))
            .copied()
            .ok_or_else(|| {
                format!(
                    "{name:?} cannot be filtered on; filterable: {}",
                    self.filterable.join(", ")
                )
            })?;
        let op = match self.next() {
            Some(Token::Word(op)) => op.to_ascii_lowercase(),
            _ => return Err(format!("expected an operator after {name}")),
        };
        let op = match op.as_str() {
            "pr" => return Ok(Filter::Present(attribute)),
            "eq" => Op::Eq,
            "ne" => Op::Ne,
            "co" => Op::Co,
            "sw" => Op::Sw,
            "ew" => Op::Ew,
            "gt" => Op::Gt,
            "ge" => Op::Ge,
            "lt" => Op::Lt,
            "le" => Op::Le,
            other => return Err(format!("unknown filter operator {other:?}")),
        };
        let value = match self.next() {
            Some(Token::Text(text)) => Value::String(text),
            Some(Token::Word(word)) => match word.to_ascii_lowercase().as_str() {
                "true" => Value::Bool(true),
                "false" => Value::Bool(false),
                "null" => Value::Null,
                _ => serde_json::from_str::<serde_json::Number>(&word)
                    .map(Value::Number)
                    .map_err(|_| format!("{word:?} is not a value; quote strings"))?,
            },
            _ => return Err(format!("expected a value after {name} {op:?}")),
        };
        Ok(Filter::Compare {
            attribute,
            op,
            value,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const FILTERABLE: &[&str] = &["name", "runMode", "count"];

    fn matches(filter: &str, object: Value) -> bool {
        let filter = parse(filter, FILTERABLE).unwrap();
        filter.matches(&|name| object.get(name).cloned())
    }

    #[test]
    fn comparisons_match_strings_case_insensitively_and_numbers_by_value() {
        let object = json!({"name": "Rotate [qlikops:abc]", "runMode": "manual", "count": 3});
        assert!(matches(r#"name eq "rotate [QLIKOPS:abc]""#, object.clone()));
        assert!(matches(r#"NAME co "[qlikops:""#, object.clone()));
        assert!(matches(
            r#"name sw "Rot" and name ew "abc]""#,
            object.clone()
        ));
        assert!(!matches(
            r#"name ne "Rotate [qlikops:abc]""#,
            object.clone()
        ));
        assert!(matches("count gt 2 and count le 3", object.clone()));
        assert!(matches("runMode pr and not (count eq 4)", object.clone()));
        assert!(!matches(r#"name eq "x\"y""#, object.clone()));
        assert!(matches(r#"name eq "x" or runMode eq "manual""#, object));
    }

    #[test]
    fn and_binds_tighter_than_or() {
        let object = json!({"name": "a", "runMode": "manual"});
        assert!(matches(
            r#"name eq "a" or name eq "b" and runMode eq "x""#,
            object.clone()
        ));
        assert!(!matches(
            r#"(name eq "a" or name eq "b") and runMode eq "x""#,
            object
        ));
    }

    #[test]
    fn malformed_filters_and_unknown_attributes_are_refused() {
        for bad in [
            r#"owner eq "x""#,
            r#"name eq"#,
            r#"name like "x""#,
            r#"name eq "x"#,
            r#"name eq x"#,
            r#"(name eq "x""#,
            r#"not name eq "x""#,
            r#"name eq "x" name eq "y""#,
            "",
        ] {
            assert!(parse(bad, FILTERABLE).is_err(), "{bad:?}");
        }
    }
}
