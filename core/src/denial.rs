//! A reason to refuse an admission request: a stable code for metrics, the offending field,
//! and words for the person who sent it. Identity resolution and validation both produce
//! them; the review turns them into the 403 response.

use std::fmt;

/// One reason to refuse a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// Short stable snake_case code, e.g. `privileged`.
    pub reason: &'static str,
    /// The offending field, e.g. `spec.containers[0].securityContext.privileged`.
    pub field: String,
    /// Why, in words.
    pub message: String,
}

impl Denial {
    /// A denial of `field` for `reason`.
    pub fn new(reason: &'static str, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            reason,
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.field, self.message)
        }
    }
}
