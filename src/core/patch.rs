//! RFC 6902 JSON Patch operations built directly, with RFC 6901 pointers (`~0`/`~1`
//! escaping is the pointer type's job, so keys such as `homestead.dev/run-as` are safe).

use json_patch::jsonptr::{PointerBuf, Token};
use json_patch::{AddOperation, PatchOperation, ReplaceOperation};
use serde_json::Value;

/// A list of patch operations under construction.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ops(pub Vec<PatchOperation>);

impl Ops {
    /// `add` `value` at `path` (creates an object member or appends with `-`; replaces an
    /// existing member).
    pub fn add(&mut self, path: PointerBuf, value: Value) {
        self.0
            .push(PatchOperation::Add(AddOperation { path, value }));
    }

    /// `replace` the existing value at `path`.
    pub fn replace(&mut self, path: PointerBuf, value: Value) {
        self.0
            .push(PatchOperation::Replace(ReplaceOperation { path, value }));
    }

    /// True when nothing was added.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The operations.
    pub fn into_inner(self) -> Vec<PatchOperation> {
        self.0
    }
}

/// `base` extended by `tokens` (unescaped; each is escaped as it is pushed).
pub fn at<'t>(base: &PointerBuf, tokens: impl IntoIterator<Item: Into<Token<'t>>>) -> PointerBuf {
    let mut pointer = base.clone();
    for token in tokens {
        pointer.push_back(token);
    }
    pointer
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_escaped() {
        let base = PointerBuf::from_tokens(["metadata"]);
        let path = at(&base, ["annotations", "homestead.dev/run-as", "a~b"]);
        assert_eq!(
            path.as_str(),
            "/metadata/annotations/homestead.dev~1run-as/a~0b"
        );
        let mut ops = Ops::default();
        ops.add(path, Value::from("ada"));
        let json = serde_json::to_string(&ops.0).unwrap();
        assert_eq!(
            json,
            r#"[{"op":"add","path":"/metadata/annotations/homestead.dev~1run-as/a~0b","value":"ada"}]"#
        );
    }
}
