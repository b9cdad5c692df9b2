//! RFC 6902 JSON Patch operations written straight to their JSON, with RFC 6901 pointers
//! built on the stack (`~0`/`~1` escaping happens as a pointer is written, so keys such as
//! `homestead.dev/run-as` are safe).
//!
//! Mutation never builds a `serde_json::Value` or a list of operation objects: each
//! operation is written into one buffer as it is decided, and the buffer is the patch.
//! Values are written by [`json::WriteJson`] (no serde, cannot fail; `add_json`,
//! `replace_json`, `op_at`, `item_op`); `add` and `replace` take any `Serialize` value
//! through serde_json. Mutation writes its pointers as a prefix written once
//! ([`PointerText`]) and [`Literal`] text, and copies the operations of an array item
//! for the next items that need the same ([`Item`], [`Patch::repeat_item`]).

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

    /// Extends the pointer by `literal`.
    pub fn push_literal(&mut self, literal: Literal) {
        self.text.extend_from_slice(literal.0.as_bytes());
    }

    /// The escaped text, as it goes inside a JSON string.
    pub fn as_bytes(&self) -> &[u8] {
        &self.text
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

/// Pointer text known when homestead is compiled, such as `/volumeMounts/-`: already
/// escaped for RFC 6901 (`~0`, `~1`) and needing no JSON escape, so it is copied as it
/// is. Made with [`literal!`](crate::literal), which checks the text at compile time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Literal(&'static str);

impl Literal {
    /// No more text.
    pub const EMPTY: Literal = Literal("");

    /// `text` as a literal; `None` unless it is empty or starts with `/`, needs no JSON
    /// escape and has every `~` escaped (followed by `0` or `1`).
    pub const fn checked(text: &'static str) -> Option<Self> {
        let bytes = text.as_bytes();
        if !bytes.is_empty() && bytes[0] != b'/' {
            return None;
        }
        let mut i = 0;
        while i < bytes.len() {
            let b = bytes[i];
            if b < 0x20 || b == b'"' || b == b'\\' {
                return None;
            }
            if b == b'~' && (i + 1 >= bytes.len() || (bytes[i + 1] != b'0' && bytes[i + 1] != b'1'))
            {
                return None;
            }
            i += 1;
        }
        Some(Literal(text))
    }

    /// The text.
    pub const fn as_str(self) -> &'static str {
        self.0
    }
}

/// A [`Literal`] checked at compile time: `literal!("/securityContext")`.
#[macro_export]
macro_rules! literal {
    ($text:expr) => {{
        const LITERAL: $crate::patch::Literal = match $crate::patch::Literal::checked($text) {
            Some(literal) => literal,
            None => panic!("not escaped pointer text"),
        };
        LITERAL
    }};
}

/// The rest of a pointer after an item's index: a literal, and optionally an array
/// index and another literal (`/volumeMounts` `3` `/readOnly`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rest {
    /// Text right after the item's index.
    pub first: Literal,
    /// An index after `first` (its slash written before it), then `last`.
    pub index: Option<(usize, Literal)>,
}

impl Rest {
    /// Just `first`.
    pub const fn literal(first: Literal) -> Self {
        Rest { first, index: None }
    }

    /// `first`, `/index`, `last`.
    pub const fn indexed(first: Literal, index: usize, last: Literal) -> Self {
        Rest {
            first,
            index: Some((index, last)),
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.first.0.as_bytes());
        if let Some((index, last)) = self.index {
            out.push(b'/');
            out.extend_from_slice(itoa::Buffer::new().format(index).as_bytes());
            out.extend_from_slice(last.0.as_bytes());
        }
    }
}

/// The kind of an operation written with a value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `add`.
    Add,
    /// `replace`.
    Replace,
}

impl Op {
    const fn head(self) -> &'static [u8] {
        match self {
            Op::Add => ADD_HEAD,
            Op::Replace => REPLACE_HEAD,
        }
    }
}

/// The operations written for one item of an array (a container), kept so that the
/// next item that needs the same operations gets a copy with its own index
/// ([`Patch::repeat_item`]) instead of having each written again.
#[derive(Debug, Default)]
pub struct Item {
    /// The item's index as text.
    index: [u8; 20],
    index_len: usize,
    /// Where the item's operations start in the patch (the first one's `{`) and end.
    start: usize,
    end: usize,
    /// How many operations it wrote.
    operations: usize,
    /// Where the index is in the item's operations, from `start` (the first
    /// [`Item::MAX_OPERATIONS`]; an item with more is not kept).
    at: [usize; Item::MAX_OPERATIONS],
    /// True when the operations were written whole and may be copied.
    kept: bool,
}

impl Item {
    /// The most operations of an item that is kept for copying (a container that needs
    /// more is written each time).
    const MAX_OPERATIONS: usize = 32;
}

impl Item {
    /// Forgets the kept operations (for another list).
    pub fn clear(&mut self) {
        self.kept = false;
    }

    fn set_index(&mut self, index: usize) {
        let mut buffer = itoa::Buffer::new();
        let text = buffer.format(index).as_bytes();
        self.index_len = text.len();
        if let Some(to) = self.index.get_mut(..text.len()) {
            to.copy_from_slice(text);
        }
    }

    fn index_text(&self) -> &[u8] {
        self.index.get(..self.index_len).unwrap_or_default()
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

    /// `op` with `value`, written without serde, at the pointer `prefix` then `rest`.
    pub fn op_at(
        &mut self,
        op: Op,
        prefix: &PointerText,
        rest: Rest,
        value: &(impl WriteJson + ?Sized),
    ) {
        if self.error.is_some() {
            return;
        }
        self.open();
        self.json.extend_from_slice(op.head());
        self.json.extend_from_slice(&prefix.text);
        self.end_op(rest, value);
    }

    /// The end of an operation whose head and pointer up to `rest` are written: `rest`,
    /// the value and the closing brace.
    #[inline]
    fn end_op(&mut self, rest: Rest, value: &(impl WriteJson + ?Sized)) {
        rest.write(&mut self.json);
        self.json.extend_from_slice(VALUE_HEAD);
        value.write_json(&mut self.json);
        self.json.push(b'}');
        self.operations += 1;
    }

    /// Starts the operations of item `index` of the list whose pointer is given to
    /// [`Patch::item_op`].
    pub fn begin_item(&mut self, item: &mut Item, index: usize) {
        item.set_index(index);
        item.kept = self.error.is_none();
        // The first operation's `{` comes after its `[` or `,`.
        item.start = self.json.len() + 1;
        item.end = item.start;
        item.operations = 0;
    }

    /// `op` with `value` at `list` (the array's pointer), `/`, the item's index, `rest`.
    pub fn item_op(
        &mut self,
        item: &mut Item,
        op: Op,
        list: &PointerText,
        rest: Rest,
        value: &(impl WriteJson + ?Sized),
    ) {
        if self.error.is_some() {
            return;
        }
        self.open();
        self.json.extend_from_slice(op.head());
        self.json.extend_from_slice(&list.text);
        self.json.push(b'/');
        match item.at.get_mut(item.operations) {
            Some(at) => *at = self.json.len() - item.start,
            None => item.kept = false,
        }
        // A digit or two: pushed, not copied by a call.
        for &digit in item.index_text() {
            self.json.push(digit);
        }
        self.end_op(rest, value);
        item.operations += 1;
    }

    /// Ends the operations of the item begun last.
    pub fn end_item(&mut self, item: &mut Item) {
        item.end = self.json.len();
        item.kept &= self.error.is_none() && item.operations > 0;
    }

    /// Writes the operations of the item ended last again, for item `index`: a copy
    /// with `index` in every pointer. False (and nothing written) when there are none
    /// to copy.
    pub fn repeat_item(&mut self, item: &Item, index: usize) -> bool {
        if !item.kept || self.error.is_some() {
            return false;
        }
        let Some(template) = self.json.get(item.start..item.end) else {
            return false;
        };
        let len = template.len();
        let mut buffer = itoa::Buffer::new();
        let digits = buffer.format(index).as_bytes();
        self.open();
        let start = self.json.len();
        if digits.len() == item.index_len {
            // The same length: one copy, then each index overwritten in place.
            self.json.extend_from_within(item.start..item.end);
            for &at in item.at.iter().take(item.operations) {
                if let Some(to) = self.json.get_mut(start + at..start + at + digits.len()) {
                    // A digit or two: stored, not copied by a call.
                    for (to, &digit) in to.iter_mut().zip(digits) {
                        *to = digit;
                    }
                }
            }
        } else {
            self.json.reserve(len + item.operations * digits.len());
            let mut from = item.start;
            for &at in item.at.iter().take(item.operations) {
                self.json.extend_from_within(from..item.start + at);
                self.json.extend_from_slice(digits);
                from = item.start + at + item.index_len;
            }
            self.json.extend_from_within(from..item.end);
        }
        self.operations += item.operations;
        true
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
        let mut prefix = PointerText::default();
        prefix.set(&root.keys(&["x~"]));
        for value in ["a", "b"] {
            serde.add(root.keys(&["x~"]).end(), value);
            written.op_at(
                Op::Add,
                &prefix,
                Rest::literal(crate::literal!("/-")),
                value,
            );
        }
        serde.replace(root.keys(&["x~", "y"]).index(4).keys(&["z"]), "c");
        written.op_at(
            Op::Replace,
            &prefix,
            Rest::indexed(crate::literal!("/y"), 4, crate::literal!("/z")),
            "c",
        );
        written.reserve(1 << 12);
        assert_eq!(written.finish().unwrap(), serde.finish().unwrap());
    }

    #[test]
    fn literals_are_escaped_pointer_text() {
        for good in ["", "/", "/a/b", "/homestead.dev~1run-as", "/~0~1/-", "/é"] {
            assert_eq!(Literal::checked(good).map(Literal::as_str), Some(good));
        }
        for bad in ["a", "/~", "/~2", "/a~", "/\"", "/\\", "/\n", "/\u{1f}"] {
            assert_eq!(Literal::checked(bad), None, "{bad:?}");
        }
    }

    proptest::proptest! {
        /// Items written once and repeated make the patch that writing each makes, for
        /// indexes of every length (the copy in place and the copy in pieces).
        #[test]
        fn repeated_items_are_the_items_written_again(
            indexes in proptest::collection::vec(0usize..2000, 1..6),
            ops in 1usize..4,
            before in proptest::prelude::any::<bool>(),
        ) {
            let mut list = PointerText::default();
            list.set(&Pointer::root("/spec/template").keys(&["spec", "containers"]));
            let rests = [
                Rest::literal(crate::literal!("/env/-")),
                Rest::indexed(crate::literal!("/volumeMounts"), 12, crate::literal!("/readOnly")),
                Rest::literal(crate::literal!("/securityContext")),
            ];
            let (mut each, mut repeated) = (Patch::default(), Patch::default());
            if before {
                each.add_json(Pointer::root("").keys(&["a"]), "x");
                repeated.add_json(Pointer::root("").keys(&["a"]), "x");
            }
            let mut item = Item::default();
            for (n, &index) in indexes.iter().enumerate() {
                let mut one = Item::default();
                each.begin_item(&mut one, index);
                for rest in &rests[..ops] {
                    each.item_op(&mut one, Op::Add, &list, *rest, "v\"");
                }
                each.end_item(&mut one);
                if n == 0 {
                    repeated.begin_item(&mut item, index);
                    for rest in &rests[..ops] {
                        repeated.item_op(&mut item, Op::Add, &list, *rest, "v\"");
                    }
                    repeated.end_item(&mut item);
                } else {
                    proptest::prop_assert!(repeated.repeat_item(&item, index));
                }
            }
            let (each, repeated) = (each.finish().unwrap().unwrap(), repeated.finish().unwrap().unwrap());
            proptest::prop_assert_eq!(&each, &repeated);
            let expected: Vec<Value> = indexes
                .iter()
                .flat_map(|index| {
                    ["/env/-", "/volumeMounts/12/readOnly", "/securityContext"][..ops]
                        .iter()
                        .map(move |rest| json!({
                            "op": "add",
                            "path": format!("/spec/template/spec/containers/{index}{rest}"),
                            "value": "v\"",
                        }))
                })
                .collect();
            let parsed: Vec<Value> = serde_json::from_slice(&repeated.json).unwrap();
            proptest::prop_assert_eq!(&parsed[usize::from(before)..], &expected[..]);
        }
    }

    #[test]
    fn an_item_without_operations_is_not_repeated() {
        let mut patch = Patch::default();
        let mut item = Item::default();
        patch.begin_item(&mut item, 0);
        patch.end_item(&mut item);
        assert!(!patch.repeat_item(&item, 1));
        assert!(patch.is_empty());
        item.clear();
        assert!(!patch.repeat_item(&item, 1));
        // More operations than the positions kept: written, never copied.
        let mut list = PointerText::default();
        list.set(&Pointer::root("").keys(&["containers"]));
        patch.begin_item(&mut item, 0);
        for _ in 0..=Item::MAX_OPERATIONS {
            patch.item_op(
                &mut item,
                Op::Add,
                &list,
                Rest::literal(crate::literal!("/env/-")),
                "v",
            );
        }
        patch.end_item(&mut item);
        assert!(!patch.repeat_item(&item, 1));
        assert_eq!(patch.len(), Item::MAX_OPERATIONS + 1);
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
