//! RFC 6902 JSON Patch operations written straight to their JSON, with RFC 6901 pointers
//! built on the stack (`~0`/`~1` escaping happens as a pointer is written, so keys such as
//! `homestead.dev/run-as` are safe).
//!
//! Mutation never builds a `serde_json::Value` or a list of operation objects: each
//! operation is written into one buffer as it is decided, and the buffer is the patch.
//! Values are written by [`json::WriteJson`] (no serde, cannot fail; `add_json`,
//! `replace_json`); `add` and `replace` take any `Serialize` value through serde_json.

pub mod json;

use serde::Serialize;

use self::json::{Escape, WriteJson};

/// An RFC 6901 JSON Pointer: a parent pointer and more tokens, or a root given as an
/// already-escaped pointer string (`""`, `"/spec/template"`).
#[derive(Debug, Clone, Copy)]
pub struct Pointer<'a> {
    parent: Option<&'a Pointer<'a>>,
    token: Token<'a>,
}

#[derive(Debug, Clone, Copy)]
enum Token<'a> {
    /// An escaped pointer the chain starts from.
    Root(&'a str),
    /// A pointer already written as the escaped text of a JSON string ([`PointerText`]).
    Text(&'a [u8]),
    /// Object members, outermost first (unescaped).
    Keys(&'a [&'a str]),
    /// An array index.
    Index(usize),
    /// `-`: one past the end of an array.
    End,
}

impl<'a> Pointer<'a> {
    /// A pointer from an already-escaped RFC 6901 string (`""` is the whole document).
    pub const fn root(escaped: &'a str) -> Self {
        Pointer {
            parent: None,
            token: Token::Root(escaped),
        }
    }

    /// This pointer extended by object members `keys`, outermost first.
    pub fn keys(&'a self, keys: &'a [&'a str]) -> Pointer<'a> {
        self.child(Token::Keys(keys))
    }

    /// This pointer extended by array index `index`.
    pub fn index(&'a self, index: usize) -> Pointer<'a> {
        self.child(Token::Index(index))
    }

    /// This pointer extended by `-` (append to an array).
    pub fn end(&'a self) -> Pointer<'a> {
        self.child(Token::End)
    }

    fn child(&'a self, token: Token<'a>) -> Pointer<'a> {
        Pointer {
            parent: Some(self),
            token,
        }
    }

    /// Appends the pointer to `out` as a JSON string, quotes included: RFC 6901
    /// escaping (`~0`, `~1`) of each key, then JSON escaping of the text.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'"');
        self.write_unquoted(out);
        out.push(b'"');
    }

    /// Appends the pointer as the inside of a JSON string: RFC 6901 escaping (`~0`, `~1`)
    /// of each key, then JSON escaping of the text.
    fn write_unquoted(&self, out: &mut Vec<u8>) {
        if let Some(parent) = self.parent {
            parent.write_unquoted(out);
        }
        match self.token {
            Token::Root(escaped) => push_json_text(out, escaped),
            Token::Text(text) => out.extend_from_slice(text),
            Token::Keys(keys) => {
                for key in keys {
                    out.push(b'/');
                    push_key(out, key);
                }
            }
            Token::Index(index) => {
                out.push(b'/');
                out.extend_from_slice(itoa::Buffer::new().format(index).as_bytes());
            }
            Token::End => out.extend_from_slice(b"/-"),
        }
    }
}

/// A pointer written once as the escaped text of a JSON string: pointers made from it
/// ([`PointerText::pointer`]) copy that text instead of walking and escaping the chain
/// again, which pays for itself from the second operation under it. It can be extended by
/// an index and cut back, to write the pointers of a list's items from the list's.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PointerText {
    text: Vec<u8>,
}

impl PointerText {
    /// Room for a typical pointer (`/spec/template/spec/initContainers/12/volumeMounts/-`),
    /// so that writing one does not grow the buffer several times.
    const CAPACITY: usize = 96;

    /// Writes `pointer` into this text, replacing what it held (its buffer is reused).
    pub fn set(&mut self, pointer: &Pointer<'_>) {
        self.text.clear();
        self.text.reserve(Self::CAPACITY);
        pointer.write_unquoted(&mut self.text);
    }

    /// Extends the pointer by array index `index` (set the pointer first).
    pub fn push_index(&mut self, index: usize) {
        self.text.push(b'/');
        self.text
            .extend_from_slice(itoa::Buffer::new().format(index).as_bytes());
    }

    /// How long the text is: a length to [`PointerText::truncate`] back to.
    pub fn len(&self) -> usize {
        self.text.len()
    }

    /// True when the text is empty (the whole document, or nothing set).
    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    /// Cuts the pointer back to `len` bytes of text, taken from [`PointerText::len`]
    /// (so always at the end of a token).
    pub fn truncate(&mut self, len: usize) {
        self.text.truncate(len);
    }

    /// The pointer this text holds (the whole document `""` when none was set).
    pub fn pointer(&self) -> Pointer<'_> {
        Pointer {
            parent: None,
            token: Token::Text(&self.text),
        }
    }
}

/// The start of an `add` operation, `{"op":"add","path":"…","value":`, written once for
/// the operations that repeat it (a container's appends): each then costs two copies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddHead {
    text: Vec<u8>,
    written: bool,
}

impl AddHead {
    /// Forgets the head (keeping the buffer): the next [`AddHead::get_or_set`] writes it.
    pub fn clear(&mut self) {
        self.text.clear();
        self.written = false;
    }

    /// The head of `add` operations at `path`, written first if this holds none since it
    /// was made or cleared.
    pub fn get_or_set(&mut self, path: &Pointer<'_>) -> &AddHead {
        if !self.written {
            self.text.clear();
            self.text.reserve(PointerText::CAPACITY + 32);
            self.text.extend_from_slice(ADD_HEAD);
            path.write_unquoted(&mut self.text);
            self.text.extend_from_slice(VALUE_HEAD);
            self.written = true;
        }
        self
    }
}

/// An `add` operation's text up to its pointer.
const ADD_HEAD: &[u8] = br#"{"op":"add","path":""#;
/// A `replace` operation's text up to its pointer.
const REPLACE_HEAD: &[u8] = br#"{"op":"replace","path":""#;
/// An operation's text from its pointer to its value.
const VALUE_HEAD: &[u8] = br#"","value":"#;

/// Appends pointer token `key` (unescaped) escaped for RFC 6901 and then for JSON: most
/// keys need neither and are copied; one with `~` or `/` is escaped piece by piece,
/// without a copy.
fn push_key(out: &mut Vec<u8>, key: &str) {
    let mut rest = key.as_bytes();
    if json::first_to_escape_in_key(rest).is_none() {
        out.extend_from_slice(rest);
        return;
    }
    while let Some(at) = rest.iter().position(|&b| b == b'~' || b == b'/') {
        let (piece, tail) = rest.split_at_checked(at).unwrap_or((rest, &[]));
        json::write_escaped(out, piece, Escape::Unicode);
        let Some((&separator, tail)) = tail.split_first() else {
            return;
        };
        out.extend_from_slice(if separator == b'~' { b"~0" } else { b"~1" });
        rest = tail;
    }
    json::write_escaped(out, rest, Escape::Unicode);
}

/// Appends `text` to `out`, escaped for the inside of a JSON string (every control
/// character as `\u00XX`).
fn push_json_text(out: &mut Vec<u8>, text: &str) {
    json::write_escaped(out, text.as_bytes(), Escape::Unicode);
}

/// True when no byte of `text` needs escaping in a JSON string (no control character,
/// `"` or `\`).
#[cfg(test)]
fn is_plain(text: &[u8]) -> bool {
    json::first_to_escape(text).is_none()
}

/// A JSON Patch under construction: the serialised operations so far.
#[derive(Debug, Default)]
pub struct Patch {
    json: Vec<u8>,
    operations: usize,
    error: Option<serde_json::Error>,
}

/// Room reserved for a patch when its first operation is written: a pod's patch is
/// typically 1–4 KB.
const INITIAL_CAPACITY: usize = 4096;

/// A finished, non-empty JSON Patch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchJson {
    /// The patch document: a JSON array of operations.
    pub json: Vec<u8>,
    /// How many operations it holds.
    pub operations: usize,
}

impl Patch {
    /// `add` `value` at `path` (creates an object member or appends with `-`; replaces an
    /// existing member).
    pub fn add(&mut self, path: Pointer<'_>, value: &(impl Serialize + ?Sized)) {
        self.push("add", path, value);
    }

    /// `replace` the existing value at `path`.
    pub fn replace(&mut self, path: Pointer<'_>, value: &(impl Serialize + ?Sized)) {
        self.push("replace", path, value);
    }

    /// `add` `value`, written without serde, at `path`.
    pub fn add_json(&mut self, path: Pointer<'_>, value: &(impl WriteJson + ?Sized)) {
        self.push_json(ADD_HEAD, path, value);
    }

    /// `add` `value`, written without serde, with an operation head written before.
    pub fn add_with_head(&mut self, head: &AddHead, value: &(impl WriteJson + ?Sized)) {
        if self.error.is_some() {
            return;
        }
        self.open();
        self.json.extend_from_slice(&head.text);
        value.write_json(&mut self.json);
        self.json.push(b'}');
        self.operations += 1;
    }

    /// `replace` the existing value at `path` by `value`, written without serde.
    pub fn replace_json(&mut self, path: Pointer<'_>, value: &(impl WriteJson + ?Sized)) {
        self.push_json(REPLACE_HEAD, path, value);
    }

    /// Makes room for `additional` more bytes of operations, so that a patch whose size
    /// is known beforehand is written without growing its buffer.
    pub fn reserve(&mut self, additional: usize) {
        self.json.reserve(additional);
    }

    /// `remove` the existing value at `path`.
    pub fn remove(&mut self, path: Pointer<'_>) {
        if self.error.is_some() {
            return;
        }
        self.open();
        self.json.extend_from_slice(br#"{"op":"remove","path":"#);
        path.write_json(&mut self.json);
        self.json.push(b'}');
        self.operations += 1;
    }

    /// How many operations were added.
    pub fn len(&self) -> usize {
        self.operations
    }

    /// True when nothing was added.
    pub fn is_empty(&self) -> bool {
        self.operations == 0
    }

    fn push(&mut self, op: &str, path: Pointer<'_>, value: &(impl Serialize + ?Sized)) {
        if self.error.is_some() {
            return;
        }
        self.open();
        self.json.extend_from_slice(br#"{"op":""#);
        self.json.extend_from_slice(op.as_bytes());
        self.json.extend_from_slice(br#"","path":"#);
        path.write_json(&mut self.json);
        self.json.extend_from_slice(br#","value":"#);
        match serde_json::to_writer(&mut self.json, value) {
            Ok(()) => {
                self.json.push(b'}');
                self.operations += 1;
            }
            Err(e) => self.error = Some(e),
        }
    }

    /// Writes one operation: `head` is its text up to the pointer's opening quote.
    fn push_json(&mut self, head: &[u8], path: Pointer<'_>, value: &(impl WriteJson + ?Sized)) {
        if self.error.is_some() {
            return;
        }
        self.open();
        self.json.extend_from_slice(head);
        path.write_unquoted(&mut self.json);
        self.json.extend_from_slice(VALUE_HEAD);
        value.write_json(&mut self.json);
        self.json.push(b'}');
        self.operations += 1;
    }

    /// Starts the next operation: the array's `[` before the first, a `,` before others.
    fn open(&mut self) {
        if self.operations == 0 {
            self.json.reserve(INITIAL_CAPACITY);
            self.json.push(b'[');
        } else {
            self.json.push(b',');
        }
    }

    /// The patch document, `None` when it is empty; an error if a value could not be
    /// serialised.
    pub fn finish(mut self) -> Result<Option<PatchJson>, serde_json::Error> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.operations == 0 {
            return Ok(None);
        }
        self.json.push(b']');
        Ok(Some(PatchJson {
            json: self.json,
            operations: self.operations,
        }))
    }
}

/// Serialises the items of an iterator as a JSON array, without collecting them.
pub struct Array<I>(pub I);

impl<I> Serialize for Array<I>
where
    I: Iterator + Clone,
    I::Item: Serialize,
{
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(self.0.clone())
    }
}

impl<I> WriteJson for Array<I>
where
    I: Iterator + Clone,
    I::Item: WriteJson,
{
    fn write_json(&self, out: &mut Vec<u8>) {
        json::write_array(out, self.0.clone());
    }
}

/// The RFC 6901 pointer to `path` (member names and indexes, unescaped): each token is
/// escaped (`~0`, `~1`), so keys such as `homestead.dev/run-as` are safe. For pointers
/// that are kept or compared as text; operations written by mutation build theirs on the
/// stack instead.
pub fn pointer<T: AsRef<str>>(path: &[T]) -> String {
    let mut out = String::new();
    for token in path {
        out.push('/');
        out.push_str(&token.as_ref().replace('~', "~0").replace('/', "~1"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    #[test]
    fn plain_text_is_recognised_in_every_position() {
        for len in 0..24 {
            let plain = "a/é~".repeat(6).chars().take(len).collect::<String>();
            assert!(is_plain(plain.as_bytes()), "{plain:?}");
            for at in 0..plain.len() {
                for special in [b'"', b'\\', b'\n', 0x00, 0x1f] {
                    let mut bytes = plain.as_bytes().to_vec();
                    bytes[at] = special;
                    assert!(!is_plain(&bytes), "{bytes:?}");
                }
            }
        }
        assert!(is_plain(" !#[]\x7f\u{80}\u{10ffff}".as_bytes()));
    }

    proptest::proptest! {
        #[test]
        fn is_plain_agrees_with_a_byte_loop(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40)) {
            let expected = bytes.iter().all(|&b| b >= 0x20 && b != b'"' && b != b'\\');
            proptest::prop_assert_eq!(is_plain(&bytes), expected);
        }
    }

    impl Pointer<'_> {
        fn text(&self) -> String {
            let mut json = Vec::new();
            self.write_json(&mut json);
            serde_json::from_slice(&json).unwrap()
        }
    }

    #[test]
    fn pointers_escape_keys_and_chain() {
        let pod = Pointer::root("/spec/template");
        let spec = pod.keys(&["spec"]);
        let containers = spec.keys(&["containers"]);
        let first = containers.index(0);
        assert_eq!(
            first.keys(&["env"]).end().text(),
            "/spec/template/spec/containers/0/env/-"
        );
        assert_eq!(
            Pointer::root("")
                .keys(&["metadata", "annotations", "homestead.dev/run-as", "a~b"])
                .text(),
            "/metadata/annotations/homestead.dev~1run-as/a~0b"
        );
        // JSON escaping on top of pointer escaping, for keys that need it.
        let odd = "q\"b\\s\u{1}\u{1f}/~é";
        assert_eq!(
            Pointer::root("/a\"").keys(&[odd]).text(),
            "/a\"/q\"b\\s\u{1}\u{1f}~1~0é"
        );
    }

    proptest::proptest! {
        #[test]
        fn keys_are_escaped_for_the_pointer_and_then_for_json(key in crate::patch::json::tricky()) {
            let mut written = Vec::new();
            push_key(&mut written, &key);
            let mut expected = Vec::new();
            push_json_text(&mut expected, &key.replace('~', "~0").replace('/', "~1"));
            proptest::prop_assert_eq!(written, expected);
        }

        #[test]
        fn a_pointer_text_writes_the_pointer_it_was_set_from(
            keys in proptest::collection::vec(crate::patch::json::tricky(), 0..4),
            index in 0usize..100,
        ) {
            let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
            let root = Pointer::root("/spec/template");
            let pointer = root.keys(&keys);
            let item = pointer.index(index);
            let mut text = PointerText::default();
            text.set(&item);
            proptest::prop_assert_eq!(text.pointer().text(), item.text());
            let from_text = text.pointer();
            proptest::prop_assert_eq!(from_text.keys(&["env"]).end().text(), item.keys(&["env"]).end().text());
            // Extended by an index and cut back.
            let mut list = PointerText::default();
            list.set(&pointer);
            let len = list.len();
            list.push_index(index);
            proptest::prop_assert_eq!(list.pointer().text(), item.text());
            list.truncate(len);
            proptest::prop_assert_eq!(list.pointer().text(), pointer.text());
            proptest::prop_assert_eq!(list.is_empty(), pointer.text().is_empty());
        }
    }

    #[test]
    fn operations_are_written_as_a_json_patch() {
        assert_eq!(Patch::default().finish().unwrap(), None);
        let mut patch = Patch::default();
        let root = Pointer::root("");
        patch.add(root.keys(&["metadata", "annotations", "x/\"y\""]), "ada");
        patch.replace(
            root.keys(&["spec", "volumes"]).index(2),
            &json!({"name": "v"}),
        );
        patch.add(
            root.keys(&["list"]),
            &Array([1, 2, 3].iter().map(|n| n * 10)),
        );
        patch.remove(root.keys(&["spec", "a/b"]));
        assert_eq!(patch.len(), 4);
        let done = patch.finish().unwrap().unwrap();
        assert_eq!(done.operations, 4);
        let parsed: Value = serde_json::from_slice(&done.json).unwrap();
        assert_eq!(
            parsed,
            json!([
                {"op": "add", "path": "/metadata/annotations/x~1\"y\"", "value": "ada"},
                {"op": "replace", "path": "/spec/volumes/2", "value": {"name": "v"}},
                {"op": "add", "path": "/list", "value": [10, 20, 30]},
                {"op": "remove", "path": "/spec/a~1b"}
            ])
        );
        // And json-patch reads it as a patch.
        let _: json_patch::Patch = serde_json::from_slice(&done.json).unwrap();
    }

    #[test]
    fn values_written_without_serde_make_the_same_patch() {
        let root = Pointer::root("/spec/template");
        let (mut serde, mut written) = (Patch::default(), Patch::default());
        serde.add(root.keys(&["a/b", "c~d"]), "v\n\"é\u{2028}");
        written.add_json(root.keys(&["a/b", "c~d"]), "v\n\"é\u{2028}");
        serde.replace(root.keys(&["n"]).index(3), &[1i64, -2]);
        written.replace_json(root.keys(&["n"]).index(3), &[1i64, -2][..]);
        serde.add(root.keys(&["list"]).end(), &Array([true, false].iter()));
        written.add_json(root.keys(&["list"]).end(), &Array([true, false].iter()));
        serde.remove(root.keys(&["gone"]));
        written.remove(root.keys(&["gone"]));
        let mut head = AddHead::default();
        for value in ["a", "b"] {
            serde.add(root.keys(&["x~"]).end(), value);
            written.add_with_head(head.get_or_set(&root.keys(&["x~"]).end()), value);
        }
        head.clear();
        serde.add(root.keys(&["y"]), "c");
        written.add_with_head(head.get_or_set(&root.keys(&["y"])), "c");
        written.reserve(1 << 12);
        assert_eq!(written.finish().unwrap(), serde.finish().unwrap());
    }

    #[test]
    fn a_value_that_cannot_be_serialised_is_an_error() {
        let mut patch = Patch::default();
        let mut bad = std::collections::BTreeMap::new();
        bad.insert(vec![1u8], 1);
        patch.add(Pointer::root("").keys(&["a"]), &bad);
        patch.add(Pointer::root("").keys(&["b"]), &1);
        assert!(patch.finish().is_err());
    }
}
