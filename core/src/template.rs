//! Name and path templates such as `home-{username}` or `t{tenant:03}-u{uid:06}`.
//!
//! A template is parsed once, when the configuration is read, into literal text and
//! placeholders. Parsing never fails: a syntax error is kept and reported by
//! [`Template::check`], which the configuration check calls with the placeholders each
//! field allows, so a file with several bad templates gets every problem reported.

use std::fmt::Write as _;

use thiserror::Error;

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    parts: Result<Vec<Part>, TemplateError>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Literal(String),
    Placeholder { name: String, width: usize },
}

/// A problem with a template's text.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TemplateError {
    /// `{` without a matching `}`.
    #[error("unclosed '{{' at byte {0}")]
    Unclosed(usize),
    /// `}` without an opening `{`.
    #[error("unmatched '}}' at byte {0}")]
    Unmatched(usize),
    /// `{}`.
    #[error("empty placeholder at byte {0}")]
    Empty(usize),
    /// A placeholder name not allowed here.
    #[error("unknown placeholder {{{name}}}; allowed: {allowed}")]
    Unknown {
        /// The name found.
        name: String,
        /// The allowed names, comma separated.
        allowed: String,
    },
    /// A padding that is not `:0N`.
    #[error("bad padding in {{{0}}}: write it as {{name:0N}}, e.g. {{uid:06}}")]
    BadPadding(String),
}

/// A value a placeholder renders to.
#[derive(Debug, Clone, Copy)]
pub enum Value<'a> {
    /// Text, inserted as is (padding does not apply).
    Text(&'a str),
    /// A number, zero-padded to the placeholder's width.
    Number(i64),
}

impl Template {
    /// Parses `source`; a syntax error is kept for [`Template::check`].
    pub fn new(source: &str) -> Self {
        Self {
            source: source.to_owned(),
            parts: parse_parts(source),
        }
    }

    /// Parses `source` and checks its placeholders against `allowed`.
    pub fn parse(source: &str, allowed: &[&str]) -> Result<Self, TemplateError> {
        let template = Self::new(source);
        template.check(allowed)?;
        Ok(template)
    }

    /// Checks the syntax and that every placeholder is in `allowed`.
    pub fn check(&self, allowed: &[&str]) -> Result<(), TemplateError> {
        let parts = self.parts.as_ref().map_err(Clone::clone)?;
        for part in parts {
            if let Part::Placeholder { name, .. } = part
                && !allowed.contains(&name.as_str())
            {
                return Err(TemplateError::Unknown {
                    name: name.clone(),
                    allowed: allowed.join(", "),
                });
            }
        }
        Ok(())
    }

    /// The text the template was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The placeholder names the template uses, in order.
    pub fn placeholders(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().flatten().filter_map(|p| match p {
            Part::Placeholder { name, .. } => Some(name.as_str()),
            Part::Literal(_) => None,
        })
    }

    /// Renders the template. `lookup` returns `None` for a name it does not know; such a
    /// placeholder renders as empty text. A template with a syntax error renders as its
    /// source (configurations with problems are refused before anything renders).
    pub fn render<'a>(&self, lookup: impl Fn(&str) -> Option<Value<'a>>) -> String {
        let Ok(parts) = &self.parts else {
            return self.source.clone();
        };
        let mut out = String::with_capacity(self.source.len() + 16);
        for part in parts {
            match part {
                Part::Literal(text) => out.push_str(text),
                Part::Placeholder { name, width } => match lookup(name) {
                    Some(Value::Text(text)) => out.push_str(text),
                    Some(Value::Number(n)) => {
                        let _ = write!(out, "{n:0width$}", width = *width);
                    }
                    None => {}
                },
            }
        }
        out
    }
}

impl serde::Serialize for Template {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.source)
    }
}

impl<'de> serde::Deserialize<'de> for Template {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let source = String::deserialize(deserializer)?;
        Ok(Self::new(&source))
    }
}

fn parse_parts(source: &str) -> Result<Vec<Part>, TemplateError> {
    let mut parts = Vec::new();
    let mut literal = String::new();
    let mut chars = source.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        match c {
            '{' => {
                let mut inner = String::new();
                let mut closed = false;
                for (_, c) in chars.by_ref() {
                    if c == '}' {
                        closed = true;
                        break;
                    }
                    inner.push(c);
                }
                if !closed {
                    return Err(TemplateError::Unclosed(i));
                }
                if inner.is_empty() {
                    return Err(TemplateError::Empty(i));
                }
                let (name, width) = match inner.split_once(':') {
                    None => (inner.clone(), 0),
                    Some((name, pad)) => {
                        let width = pad
                            .strip_prefix('0')
                            .and_then(|w| w.parse::<usize>().ok())
                            .filter(|w| (1..=32).contains(w))
                            .ok_or_else(|| TemplateError::BadPadding(inner.clone()))?;
                        (name.to_owned(), width)
                    }
                };
                if !literal.is_empty() {
                    parts.push(Part::Literal(std::mem::take(&mut literal)));
                }
                parts.push(Part::Placeholder { name, width });
            }
            '}' => return Err(TemplateError::Unmatched(i)),
            c => literal.push(c),
        }
    }
    if !literal.is_empty() {
        parts.push(Part::Literal(literal));
    }
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(name: &str) -> Option<Value<'static>> {
        match name {
            "username" => Some(Value::Text("ada")),
            "uid" => Some(Value::Number(1001)),
            "tenant" => Some(Value::Number(7)),
            _ => None,
        }
    }

    #[test]
    fn renders_with_padding() {
        let allowed = ["username", "uid", "tenant"];
        let cases = [
            ("home-{username}", "home-ada"),
            ("t{tenant:03}-u{uid:06}", "t007-u001001"),
            ("{uid:02}", "1001"),
            ("/export/home/{username}/", "/export/home/ada/"),
            ("plain", "plain"),
        ];
        for (src, want) in cases {
            let t = Template::parse(src, &allowed).unwrap();
            assert_eq!(t.render(lookup), want, "{src}");
        }
    }

    #[test]
    fn rejects_bad_templates() {
        let allowed = ["username"];
        assert!(
            matches!(Template::parse("/home/{usr}", &allowed), Err(TemplateError::Unknown { name, .. }) if name == "usr")
        );
        assert_eq!(
            Template::parse("a{username", &allowed),
            Err(TemplateError::Unclosed(1))
        );
        assert_eq!(Template::new("a{username").render(|_| None), "a{username");
        assert_eq!(
            Template::parse("a}", &allowed),
            Err(TemplateError::Unmatched(1))
        );
        assert_eq!(
            Template::parse("{}", &allowed),
            Err(TemplateError::Empty(0))
        );
        assert!(matches!(
            Template::parse("{username:3}", &allowed),
            Err(TemplateError::BadPadding(_))
        ));
        assert_eq!(
            Template::parse("/home/{usr}", &allowed)
                .unwrap_err()
                .to_string(),
            "unknown placeholder {usr}; allowed: username"
        );
    }
}
