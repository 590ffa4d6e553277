//! Okta's `search` and `filter` expression language for groups: comparisons such as
//! `profile.name eq "k8s-admins"` joined with `and`/`or` and grouped with parentheses.
//! Parsing is pure; which attributes and operators a parameter allows is a [`Dialect`].

use std::cmp::Ordering;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    Eq,
    Sw,
    Co,
    Gt,
    Ge,
    Lt,
    Le,
    Pr,
}

impl Op {
    fn parse(word: &str) -> Option<Self> {
        Some(match word.to_ascii_lowercase().as_str() {
            "eq" => Op::Eq,
            "sw" => Op::Sw,
            "co" => Op::Co,
            "gt" => Op::Gt,
            "ge" => Op::Ge,
            "lt" => Op::Lt,
            "le" => Op::Le,
            "pr" => Op::Pr,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Compare {
        attribute: String,
        op: Op,
        value: String,
    },
}

/// Which attributes and operators one query parameter accepts.
pub struct Dialect {
    pub attributes: &'static [&'static str],
    pub operators: &'static [Op],
}

/// Attributes compared as points in time rather than as text.
const TIME_ATTRIBUTES: &[&str] = &["created", "lastUpdated", "lastMembershipUpdated"];

pub const GROUP_SEARCH: Dialect = Dialect {
    attributes: &[
        "profile.name",
        "profile.description",
        "type",
        "id",
        "created",
        "lastUpdated",
        "lastMembershipUpdated",
        "source.id",
    ],
    operators: &[
        Op::Eq,
        Op::Sw,
        Op::Co,
        Op::Gt,
        Op::Ge,
        Op::Lt,
        Op::Le,
        Op::Pr,
    ],
};

pub const GROUP_FILTER: Dialect = Dialect {
    attributes: &["type", "id", "lastUpdated", "lastMembershipUpdated"],
    operators: &[Op::Eq, Op::Gt, Op::Ge, Op::Lt, Op::Le],
};

/// Why an expression is not understood; Okta answers all of these with E0000031.
#[derive(Debug, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct QueryError(pub String);

#[derive(Debug, PartialEq)]
enum Token {
    Open,
    Close,
    Word(String),
    Text(String),
}

fn tokenize(input: &str) -> Result<Vec<Token>, QueryError> {
    let mut tokens = Vec::new();
    let mut chars = input.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' => {
                chars.next();
                tokens.push(Token::Open);
            }
            ')' => {
                chars.next();
                tokens.push(Token::Close);
            }
            '"' => {
                chars.next();
                let mut text = String::new();
                loop {
                    match chars.next() {
                        Some('\\') => match chars.next() {
                            Some(escaped) => text.push(escaped),
                            None => return Err(QueryError("unterminated string".into())),
                        },
                        Some('"') => break,
                        Some(other) => text.push(other),
                        None => return Err(QueryError("unterminated string".into())),
                    }
                }
                tokens.push(Token::Text(text));
            }
            _ => {
                let mut word = String::new();
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() || c == '(' || c == ')' || c == '"' {
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
    position: usize,
    dialect: &'a Dialect,
}

impl Parser<'_> {
    fn peek_keyword(&self, keyword: &str) -> bool {
        matches!(self.tokens.get(self.position), Some(Token::Word(w)) if w.eq_ignore_ascii_case(keyword))
    }

    fn next(&mut self) -> Option<&Token> {
        let token = self.tokens.get(self.position);
        self.position += 1;
        token
    }

    fn or(&mut self) -> Result<Expr, QueryError> {
        let mut left = self.and()?;
        while self.peek_keyword("or") {
            self.position += 1;
            left = Expr::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Expr, QueryError> {
        let mut left = self.primary()?;
        while self.peek_keyword("and") {
            self.position += 1;
            left = Expr::And(Box::new(left), Box::new(self.primary()?));
        }
        Ok(left)
    }

    fn primary(&mut self) -> Result<Expr, QueryError> {
        let attribute = match self.next() {
            Some(Token::Open) => {
                let inner = self.or()?;
                return match self.next() {
                    Some(Token::Close) => Ok(inner),
                    _ => Err(QueryError("missing closing parenthesis".into())),
                };
            }
            Some(Token::Word(word)) => word.clone(),
            Some(other) => {
                return Err(QueryError(format!(
                    "expected an attribute, found {other:?}"
                )));
            }
            None => return Err(QueryError("expected an attribute, found the end".into())),
        };
        if !self.dialect.attributes.contains(&attribute.as_str()) {
            return Err(QueryError(format!("unsupported attribute {attribute}")));
        }
        let op = match self.next() {
            Some(Token::Word(word)) => {
                Op::parse(word).ok_or_else(|| QueryError(format!("unknown operator {word}")))?
            }
            _ => {
                return Err(QueryError(format!(
                    "expected an operator after {attribute}"
                )));
            }
        };
        if !self.dialect.operators.contains(&op) {
            return Err(QueryError(format!("operator {op:?} is not supported here")));
        }
        if op == Op::Co && !attribute.starts_with("profile.") {
            return Err(QueryError(format!(
                "co is only supported on profile attributes, not {attribute}"
            )));
        }
        if op == Op::Pr {
            return Ok(Expr::Compare {
                attribute,
                op,
                value: String::new(),
            });
        }
        let value = match self.next() {
            Some(Token::Text(text)) => text.clone(),
            // Okta accepts bare literals such as numbers and true/false.
            Some(Token::Word(word)) if !word.is_empty() => word.clone(),
            _ => {
                return Err(QueryError(format!(
                    "expected a value after {attribute} {op:?}"
                )));
            }
        };
        if TIME_ATTRIBUTES.contains(&attribute.as_str()) && parse_time(&value).is_none() {
            return Err(QueryError(format!("{value} is not a date-time")));
        }
        Ok(Expr::Compare {
            attribute,
            op,
            value,
        })
    }
}

/// Parses an expression in a dialect. An empty expression is an error.
pub fn parse(input: &str, dialect: &Dialect) -> Result<Expr, QueryError> {
    let tokens = tokenize(input)?;
    if tokens.is_empty() {
        return Err(QueryError("empty expression".into()));
    }
    let mut parser = Parser {
        tokens,
        position: 0,
        dialect,
    };
    let expr = parser.or()?;
    match parser.tokens.get(parser.position) {
        None => Ok(expr),
        Some(extra) => Err(QueryError(format!("unexpected {extra:?}"))),
    }
}

fn parse_time(value: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(value, &time::format_description::well_known::Rfc3339).ok()
}

impl Expr {
    /// Whether an object matches; `lookup` gives an attribute's value (None: absent/null).
    pub fn matches(&self, lookup: &dyn Fn(&str) -> Option<String>) -> bool {
        match self {
            Expr::And(a, b) => a.matches(lookup) && b.matches(lookup),
            Expr::Or(a, b) => a.matches(lookup) || b.matches(lookup),
            Expr::Compare {
                attribute,
                op,
                value,
            } => {
                let Some(actual) = lookup(attribute) else {
                    return false;
                };
                if *op == Op::Pr {
                    return true;
                }
                // Okta's search index compares text without regard to case; ids are exact.
                let ordering = if TIME_ATTRIBUTES.contains(&attribute.as_str()) {
                    match (parse_time(&actual), parse_time(value)) {
                        (Some(a), Some(b)) => a.cmp(&b),
                        _ => return false,
                    }
                } else if attribute == "id" {
                    actual.as_str().cmp(value.as_str())
                } else {
                    actual.to_lowercase().cmp(&value.to_lowercase())
                };
                match op {
                    Op::Eq => ordering == Ordering::Equal,
                    Op::Gt => ordering == Ordering::Greater,
                    Op::Ge => ordering != Ordering::Less,
                    Op::Lt => ordering == Ordering::Less,
                    Op::Le => ordering != Ordering::Greater,
                    Op::Sw => actual.to_lowercase().starts_with(&value.to_lowercase()),
                    Op::Co => actual.to_lowercase().contains(&value.to_lowercase()),
                    Op::Pr => true,
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(name: &str, kind: &str) -> impl Fn(&str) -> Option<String> {
        let name = name.to_string();
        let kind = kind.to_string();
        move |attribute: &str| match attribute {
            "profile.name" => Some(name.clone()),
            "type" => Some(kind.clone()),
            "lastUpdated" => Some("2026-01-02T03:04:05.000Z".into()),
            _ => None,
        }
    }

    fn matches(expression: &str, name: &str, kind: &str) -> bool {
        parse(expression, &GROUP_SEARCH)
            .expect("valid")
            .matches(&group(name, kind))
    }

    #[test]
    fn eq_sw_co_compare_text_without_case() {
        assert!(matches(
            r#"profile.name eq "k8s-admins""#,
            "K8S-Admins",
            "OKTA_GROUP"
        ));
        assert!(!matches(
            r#"profile.name eq "k8s-admin""#,
            "k8s-admins",
            "OKTA_GROUP"
        ));
        assert!(matches(
            r#"profile.name sw "K8S-""#,
            "k8s-admins",
            "OKTA_GROUP"
        ));
        assert!(matches(
            r#"profile.name co "ADMIN""#,
            "k8s-admins",
            "OKTA_GROUP"
        ));
    }

    #[test]
    fn and_binds_tighter_than_or_and_parentheses_group() {
        let e = r#"profile.name eq "a" or profile.name eq "b" and type eq "APP_GROUP""#;
        assert!(matches(e, "a", "OKTA_GROUP"));
        assert!(!matches(e, "b", "OKTA_GROUP"));
        let e = r#"(profile.name eq "a" or profile.name eq "b") and type eq "APP_GROUP""#;
        assert!(!matches(e, "a", "OKTA_GROUP"));
        assert!(matches(e, "b", "APP_GROUP"));
    }

    #[test]
    fn escaped_quotes_and_times_are_understood() {
        assert!(matches(
            r#"profile.name eq "say \"hi\"""#,
            "say \"hi\"",
            "OKTA_GROUP"
        ));
        assert!(matches(
            r#"lastUpdated gt "2026-01-01T00:00:00Z""#,
            "x",
            "OKTA_GROUP"
        ));
        assert!(!matches(
            r#"lastUpdated lt "2026-01-01T00:00:00.000Z""#,
            "x",
            "OKTA_GROUP"
        ));
    }

    #[test]
    fn malformed_expressions_are_errors() {
        for bad in [
            "",
            "profile.name",
            r#"profile.name eq"#,
            r#"profile.name equals "a""#,
            r#"profile.name eq "a"#,
            r#"(profile.name eq "a""#,
            r#"profile.name eq "a" and"#,
            r#"profile.name eq "a" "b""#,
            r#"profile.secret eq "a""#,
            r#"type co "OKTA""#,
            r#"lastUpdated gt "yesterday""#,
        ] {
            assert!(
                parse(bad, &GROUP_SEARCH).is_err(),
                "{bad:?} should be rejected"
            );
        }
        assert!(
            parse(r#"profile.name sw "a""#, &GROUP_FILTER).is_err(),
            "filter has no sw on names"
        );
    }
}
