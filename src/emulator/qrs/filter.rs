//! The `filter` query parameter of QRS lists (Qlik's "Filtering"): parsing, and matching
//! an entity against it. Pure.
//!
//! Supported: `property op value` clauses joined by `and` / `or` (`and` binds tighter);
//! properties are the entity's top-level string, number, boolean and id fields, named in
//! any case; operators `eq ne sw ew so` on strings (case-insensitive, as QRS compares
//! them), `eq ne gt ge lt le` on numbers, `eq ne` on booleans and ids; values are
//! `'single-quoted'` strings (`''` inside is a quote), unquoted ids (GUIDs), integers,
//! `true`/`false`. Anything else (parentheses, nested properties such as `owner.userId`,
//! an unknown property, a value of the wrong type) is refused: the site answers 400 with
//! the reason, so a test never passes on a filter the emulator silently ignored. A declared
//! property the entity does not carry matches only `ne`.

use serde_json::{Map, Value};

use super::super::random::is_uuid;

/// A parsed filter: a disjunction of conjunctions of clauses.
#[derive(Clone, Debug, PartialEq)]
pub struct Filter {
    any_of: Vec<Vec<Clause>>,
}

#[derive(Clone, Debug, PartialEq)]
struct Clause {
    property: String,
    op: Op,
    value: Literal,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    Sw,
    Ew,
    So,
}

#[derive(Clone, Debug, PartialEq)]
enum Literal {
    Text(String),
    /// An unquoted GUID.
    Guid(String),
    Integer(i64),
    Flag(bool),
}

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Word(String),
    Quoted(String),
}

fn tokenize(text: &str) -> Result<Vec<Token>, String> {
    let mut tokens = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
        } else if c == '\'' {
            chars.next();
            let mut value = String::new();
            loop {
                match chars.next() {
                    Some('\'') if chars.peek() == Some(&'\'') => {
                        chars.next();
                        value.push('\'');
                    }
                    Some('\'') => break,
                    Some(c) => value.push(c),
                    None => return Err("a quoted value is not closed".to_owned()),
                }
            }
            tokens.push(Token::Quoted(value));
        } else if c == '(' || c == ')' {
            return Err("parentheses are not supported by the emulator".to_owned());
        } else {
            let mut word = String::new();
            while let Some(&c) = chars.peek() {
                if c.is_whitespace() || c == '\'' || c == '(' || c == ')' {
                    break;
                }
                word.push(c);
                chars.next();
            }
            tokens.push(Token::Word(word));
        }
    }
    Ok(tokens)
}

fn operator(word: &str) -> Option<Op> {
    Some(match word.to_ascii_lowercase().as_str() {
        "eq" => Op::Eq,
        "ne" => Op::Ne,
        "gt" => Op::Gt,
        "ge" => Op::Ge,
        "lt" => Op::Lt,
        "le" => Op::Le,
        "sw" => Op::Sw,
        "ew" => Op::Ew,
        "so" => Op::So,
        _ => return None,
    })
}

fn literal(token: &Token) -> Result<Literal, String> {
    match token {
        Token::Quoted(text) => Ok(Literal::Text(text.clone())),
        Token::Word(w) if w.eq_ignore_ascii_case("true") => Ok(Literal::Flag(true)),
        Token::Word(w) if w.eq_ignore_ascii_case("false") => Ok(Literal::Flag(false)),
        Token::Word(w) if is_uuid(w) => Ok(Literal::Guid(w.clone())),
        Token::Word(w) => w
            .parse()
            .map(Literal::Integer)
            .map_err(|_| format!("{w:?} is not a quoted string, a GUID, an integer or a boolean")),
    }
}

impl Filter {
    /// Parses `text`; the error says what is not supported.
    pub fn parse(text: &str) -> Result<Filter, String> {
        let tokens = tokenize(text)?;
        let mut any_of = vec![Vec::new()];
        let mut rest = tokens.as_slice();
        loop {
            let [Token::Word(property), Token::Word(op), value, tail @ ..] = rest else {
                return Err("expected `property operator value`".to_owned());
            };
            if !property
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                return Err(format!(
                    "property {property:?} is not supported (only top-level properties)"
                ));
            }
            let op = operator(op).ok_or_else(|| format!("unknown operator {op:?}"))?;
            let clause = Clause {
                property: property.clone(),
                op,
                value: literal(value)?,
            };
            if let Some(all) = any_of.last_mut() {
                all.push(clause);
            }
            match tail {
                [] => return Ok(Filter { any_of }),
                [Token::Word(join), tail @ ..] if join.eq_ignore_ascii_case("and") => rest = tail,
                [Token::Word(join), tail @ ..] if join.eq_ignore_ascii_case("or") => {
                    any_of.push(Vec::new());
                    rest = tail;
                }
                _ => return Err("expected `and` or `or` between clauses".to_owned()),
            }
        }
    }

    /// Whether `entity` matches; an error when a clause names a property `entity` lacks or
    /// compares it with a value of another type.
    pub fn matches(
        &self,
        entity: &Map<String, Value>,
        filterable: &[&str],
    ) -> Result<bool, String> {
        let mut any = false;
        for all in &self.any_of {
            let mut every = true;
            for clause in all {
                every &= clause.matches(entity, filterable)?;
            }
            any |= every;
        }
        Ok(any)
    }
}

impl Clause {
    fn matches(&self, entity: &Map<String, Value>, filterable: &[&str]) -> Result<bool, String> {
        let name = filterable
            .iter()
            .find(|n| n.eq_ignore_ascii_case(&self.property))
            .ok_or_else(|| format!("property {:?} cannot be filtered on", self.property))?;
        let field = entity.get(*name).unwrap_or(&Value::Null);
        let mismatch = || {
            format!(
                "{name} cannot be compared with {:?} by {:?}",
                self.value, self.op
            )
        };
        match (field, &self.value) {
            // A property the entity does not carry (an unset `oidcClientId`) equals nothing.
            (Value::Null, _) => match self.op {
                Op::Ne => Ok(true),
                _ => Ok(false),
            },
            (Value::String(have), Literal::Text(want) | Literal::Guid(want)) => {
                let (have, want) = (have.to_lowercase(), want.to_lowercase());
                match self.op {
                    Op::Eq => Ok(have == want),
                    Op::Ne => Ok(have != want),
                    Op::Sw => Ok(have.starts_with(&want)),
                    Op::Ew => Ok(have.ends_with(&want)),
                    Op::So => Ok(have.contains(&want)),
                    _ => Err(mismatch()),
                }
            }
            (Value::Number(have), Literal::Integer(want)) => {
                let have = have.as_i64().ok_or_else(mismatch)?;
                match self.op {
                    Op::Eq => Ok(have == *want),
                    Op::Ne => Ok(have != *want),
                    Op::Gt => Ok(have > *want),
                    Op::Ge => Ok(have >= *want),
                    Op::Lt => Ok(have < *want),
                    Op::Le => Ok(have <= *want),
                    _ => Err(mismatch()),
                }
            }
            (Value::Bool(have), Literal::Flag(want)) => match self.op {
                Op::Eq => Ok(have == want),
                Op::Ne => Ok(have != want),
                _ => Err(mismatch()),
            },
            _ => Err(mismatch()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const FIELDS: &[&str] = &[
        "id",
        "prefix",
        "description",
        "sessionInactivityTimeout",
        "defaultVirtualProxy",
    ];

    fn entity() -> Map<String, Value> {
        let value = json!({
            "id": "0b6a1b4e-4b43-4c3a-9a1f-3b2f2c1d0e9f",
            "prefix": "Embed",
            "description": "It's the embedding proxy",
            "sessionInactivityTimeout": 30,
            "defaultVirtualProxy": false,
            "websocketCrossOriginWhiteList": ["a.example.com"],
        });
        value.as_object().unwrap().clone()
    }

    fn check(filter: &str) -> Result<bool, String> {
        Filter::parse(filter)?.matches(&entity(), FIELDS)
    }

    #[test]
    fn supported_filters_match_as_qrs_does() {
        assert_eq!(check("prefix eq 'embed'"), Ok(true), "strings ignore case");
        assert_eq!(check("Prefix EQ 'other'"), Ok(false));
        assert_eq!(
            check("id eq 0B6A1B4E-4b43-4c3a-9a1f-3b2f2c1d0e9f"),
            Ok(true)
        );
        assert_eq!(
            check("id eq '0b6a1b4e-4b43-4c3a-9a1f-3b2f2c1d0e9f'"),
            Ok(true)
        );
        assert_eq!(
            check("description eq 'It''s the embedding proxy'"),
            Ok(true)
        );
        assert_eq!(
            check("prefix sw 'em' and description so 'EMBEDDING'"),
            Ok(true)
        );
        assert_eq!(check("prefix ew 'x' and prefix eq 'embed'"), Ok(false));
        assert_eq!(
            check("prefix eq 'x' or prefix ne 'x' and sessionInactivityTimeout ge 30"),
            Ok(true)
        );
        assert_eq!(check("sessionInactivityTimeout gt 30"), Ok(false));
        assert_eq!(check("defaultVirtualProxy eq false"), Ok(true));
        let unset = Filter::parse("oidcClientId eq 'x'").unwrap();
        assert_eq!(unset.matches(&entity(), &["oidcClientId"]), Ok(false));
        let unset = Filter::parse("oidcClientId ne 'x'").unwrap();
        assert_eq!(unset.matches(&entity(), &["oidcClientId"]), Ok(true));
    }

    #[test]
    fn unsupported_filters_are_refused_with_a_reason() {
        for filter in [
            "",
            "prefix",
            "prefix eq",
            "prefix like 'x'",
            "(prefix eq 'x')",
            "owner.userId eq 'x'",
            "websocketCrossOriginWhiteList eq 'x'",
            "unknown eq 'x'",
            "prefix eq 'x' nor prefix eq 'y'",
            "prefix eq 'open",
            "prefix gt 'x'",
            "prefix eq 3",
            "sessionInactivityTimeout eq '30'",
            "prefix eq x",
        ] {
            assert!(check(filter).is_err(), "{filter:?} was accepted");
        }
    }
}
