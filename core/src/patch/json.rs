//! JSON text written without serde, for patch values and the admission response.
//!
//! Every value writes exactly the bytes `serde_json::to_vec` writes for it (compact form,
//! serde_json's string escaping), so the patch and the response do not change; the tests
//! hold each writer to serde_json. Writing cannot fail: there is no writer error, no
//! unsupported key type, and nothing to unwrap.
//!
//! Strings are scanned for bytes that need escaping eight at a time and their clean runs
//! copied whole.

/// A value that writes itself as compact JSON text.
pub trait WriteJson {
    /// Appends the value's JSON text to `out`.
    fn write_json(&self, out: &mut Vec<u8>);
}

impl<T: WriteJson + ?Sized> WriteJson for &T {
    fn write_json(&self, out: &mut Vec<u8>) {
        (**self).write_json(out);
    }
}

impl WriteJson for str {
    fn write_json(&self, out: &mut Vec<u8>) {
        write_str(out, self);
    }
}

impl WriteJson for String {
    fn write_json(&self, out: &mut Vec<u8>) {
        write_str(out, self);
    }
}

impl WriteJson for bool {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(if *self { b"true" } else { b"false" });
    }
}

macro_rules! integers {
    ($($t:ty)*) => {$(
        impl WriteJson for $t {
            fn write_json(&self, out: &mut Vec<u8>) {
                out.extend_from_slice(itoa::Buffer::new().format(*self).as_bytes());
            }
        }
    )*};
}
integers!(i8 i16 i32 i64 u8 u16 u32 u64 usize isize);

impl<T: WriteJson> WriteJson for [T] {
    fn write_json(&self, out: &mut Vec<u8>) {
        write_array(out, self.iter());
    }
}

impl<T: WriteJson> WriteJson for Vec<T> {
    fn write_json(&self, out: &mut Vec<u8>) {
        self.as_slice().write_json(out);
    }
}

/// Writes the items of `items` as a JSON array.
pub fn write_array<T: WriteJson>(out: &mut Vec<u8>, items: impl IntoIterator<Item = T>) {
    out.push(b'[');
    for (i, item) in items.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        item.write_json(out);
    }
    out.push(b']');
}

/// An object of one member: `{"key":value}`.
#[derive(Debug, Clone, Copy)]
pub struct Member<'k, V>(pub &'k str, pub V);

impl<V: WriteJson> WriteJson for Member<'_, V> {
    fn write_json(&self, out: &mut Vec<u8>) {
        write_object(out, |o| o.member(self.0, &self.1));
    }
}

/// The members of an object being written (see [`write_object`]).
pub struct Object<'o> {
    out: &'o mut Vec<u8>,
    empty: bool,
}

impl Object<'_> {
    /// Writes member `key` with `value`.
    pub fn member(&mut self, key: &str, value: &(impl WriteJson + ?Sized)) {
        if !self.empty {
            self.out.push(b',');
        }
        self.empty = false;
        write_str(self.out, key);
        self.out.push(b':');
        value.write_json(self.out);
    }
}

/// Writes a JSON object whose members `members` writes, in the order it writes them.
pub fn write_object(out: &mut Vec<u8>, members: impl FnOnce(&mut Object<'_>)) {
    out.push(b'{');
    let mut object = Object { out, empty: true };
    members(&mut object);
    object.out.push(b'}');
}

/// A string known at compile time to need no JSON escape (no control character, `"` or
/// `\\`), written between quotes as it is, without a scan. Made with
/// [`plain!`](crate::plain), which checks the text at compile time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plain(&'static str);

impl Plain {
    /// `text`, when no byte of it needs escaping.
    pub const fn checked(text: &'static str) -> Option<Self> {
        let bytes = text.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if needs_escape(bytes[i]) {
                return None;
            }
            i += 1;
        }
        Some(Plain(text))
    }

    /// The text.
    pub const fn as_str(self) -> &'static str {
        self.0
    }
}

impl WriteJson for Plain {
    fn write_json(&self, out: &mut Vec<u8>) {
        out.reserve(self.0.len() + 2);
        out.push(b'"');
        out.extend_from_slice(self.0.as_bytes());
        out.push(b'"');
    }
}

#[cfg(test)]
impl serde::Serialize for Plain {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0)
    }
}

/// A [`Plain`] string checked at compile time: `plain!(names::ENV_USER)`.
#[macro_export]
macro_rules! plain {
    ($text:expr) => {{
        const PLAIN: $crate::patch::json::Plain = match $crate::patch::json::Plain::checked($text) {
            Some(plain) => plain,
            None => panic!("a string that needs JSON escapes"),
        };
        PLAIN
    }};
}

/// Writes `text` as a JSON string, quotes included, escaped as serde_json escapes it:
/// `\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`, and `\u00XX` (lowercase hex) for the other
/// control characters; everything else (`/`, DEL, non-ASCII, U+2028) as it is.
pub fn write_str(out: &mut Vec<u8>, text: &str) {
    let bytes = text.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    // Most strings need no escape: one scan and one copy.
    match first_to_escape(bytes) {
        None => out.extend_from_slice(bytes),
        Some(at) => escape_from(out, bytes, at, Escape::Serde),
    }
    out.push(b'"');
}

/// How control characters are escaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Escape {
    /// serde_json's way: the short forms `\b \t \n \f \r` where there is one.
    Serde,
    /// `\u00XX` for every control character (how patch pointers always were written).
    Unicode,
}

/// Appends `bytes` escaped for the inside of a JSON string: each clean run is copied in
/// one piece, and only the bytes that need it are escaped.
pub(crate) fn write_escaped(out: &mut Vec<u8>, bytes: &[u8], escape: Escape) {
    match first_to_escape(bytes) {
        None => out.extend_from_slice(bytes),
        Some(at) => escape_from(out, bytes, at, escape),
    }
}

/// [`write_escaped`] of `bytes` whose first byte to escape is at `at`.
fn escape_from(out: &mut Vec<u8>, bytes: &[u8], at: usize, escape: Escape) {
    let mut rest = bytes;
    let mut next = Some(at);
    while let Some(at) = next {
        let (clean, tail) = rest.split_at_checked(at).unwrap_or((rest, &[]));
        out.extend_from_slice(clean);
        let Some((&byte, tail)) = tail.split_first() else {
            return;
        };
        push_escape(out, byte, escape);
        rest = tail;
        next = first_to_escape(rest);
    }
    out.extend_from_slice(rest);
}

fn push_escape(out: &mut Vec<u8>, byte: u8, escape: Escape) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let short = match (byte, escape) {
        (b'"', _) => b'"',
        (b'\\', _) => b'\\',
        (0x08, Escape::Serde) => b'b',
        (0x09, Escape::Serde) => b't',
        (0x0a, Escape::Serde) => b'n',
        (0x0c, Escape::Serde) => b'f',
        (0x0d, Escape::Serde) => b'r',
        _ => {
            out.extend_from_slice(&[
                b'\\',
                b'u',
                b'0',
                b'0',
                HEX[usize::from(byte >> 4)],
                HEX[usize::from(byte & 0xf)],
            ]);
            return;
        }
    };
    out.extend_from_slice(&[b'\\', short]);
}

/// True when `byte` must be escaped inside a JSON string.
const fn needs_escape(byte: u8) -> bool {
    byte < 0x20 || byte == b'"' || byte == b'\\'
}

/// The index of the first byte of `bytes` that needs escaping in a JSON string (a control
/// character, `"` or `\`).
pub(crate) fn first_to_escape(bytes: &[u8]) -> Option<usize> {
    first_flagged::<false>(bytes)
}

/// The index of the first byte of pointer token `bytes` that needs more than a copy: what
/// [`first_to_escape`] finds, `~` and `/`.
pub(crate) fn first_to_escape_in_key(bytes: &[u8]) -> Option<usize> {
    first_flagged::<true>(bytes)
}

/// The bytes of little-endian word `w` that need escaping (also `~` and `/` with `KEY`),
/// as the high bit of each. `(w - n·0x01…) & !w & 0x80…` flags the bytes below `n`
/// (`n ≤ 0x80`), and a byte equal to `c` is a byte of `w ^ c·0x01…` below 1. A borrow only
/// runs upwards from a flagged byte, so the lowest flag is exact: it marks the first byte
/// to escape (higher flags may be false).
const fn flags<const KEY: bool>(w: u64) -> u64 {
    const ONES: u64 = u64::from_le_bytes([1; 8]);
    const HIGH: u64 = u64::from_le_bytes([0x80; 8]);
    const fn below(w: u64, n: u8) -> u64 {
        w.wrapping_sub(ONES * n as u64) & !w & HIGH
    }
    const fn equal(w: u64, c: u8) -> u64 {
        below(w ^ (ONES * c as u64), 1)
    }
    let json = below(w, 0x20) | equal(w, b'"') | equal(w, b'\\');
    if KEY {
        json | equal(w, b'~') | equal(w, b'/')
    } else {
        json
    }
}

/// The first flagged byte of `bytes`, a word at a time: whole words, then the last eight
/// bytes (or two overlapping halves of a shorter rest) as one more word. Bytes checked
/// twice were clean the first time, so the lowest flag is still the first.
fn first_flagged<const KEY: bool>(bytes: &[u8]) -> Option<usize> {
    let at = |flags: u64| (flags.trailing_zeros() / 8) as usize;
    let (words, rest) = bytes.as_chunks::<8>();
    for (i, word) in words.iter().enumerate() {
        let f = flags::<KEY>(u64::from_le_bytes(*word));
        if f != 0 {
            return Some(i * 8 + at(f));
        }
    }
    if rest.is_empty() {
        return None;
    }
    let len = bytes.len();
    if let Some(last) = bytes.last_chunk::<8>() {
        // Overlaps the last whole word.
        let f = flags::<KEY>(u64::from_le_bytes(*last));
        return (f != 0).then(|| len - 8 + at(f));
    }
    if let (Some(low), Some(high)) = (bytes.first_chunk::<4>(), bytes.last_chunk::<4>()) {
        // 4 to 7 bytes: bytes 0..4 in the low half, len-4..len in the high half.
        let w = u64::from(u32::from_le_bytes(*low)) | u64::from(u32::from_le_bytes(*high)) << 32;
        let f = flags::<KEY>(w);
        return (f != 0).then(|| {
            let i = at(f);
            if i < 4 { i } else { len - 4 + (i - 4) }
        });
    }
    let flagged = |b: u8| needs_escape(b) || (KEY && (b == b'~' || b == b'/'));
    bytes.iter().position(|&b| flagged(b))
}

/// Strings rich in what JSON escapes: every control character, quotes, backslashes,
/// slashes, DEL, non-ASCII of every width, U+2028/U+2029, in runs of any length.
#[cfg(test)]
pub(crate) fn tricky() -> impl proptest::strategy::Strategy<Value = String> {
    use proptest::prelude::*;
    let piece = prop_oneof![
        "[\\x00-\\x1f\"\\\\/\\x7f]",
        "[a-zA-Z0-9 .:_-]{0,12}",
        "[é€\u{2028}\u{2029}\u{10ffff}\u{80}\u{7ff}\u{800}\u{ffff}]",
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..24).prop_map(|pieces| pieces.concat())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn written(value: &(impl WriteJson + ?Sized)) -> String {
        let mut out = Vec::new();
        value.write_json(&mut out);
        String::from_utf8(out).unwrap()
    }

    fn serde(value: &(impl serde::Serialize + ?Sized)) -> String {
        serde_json::to_string(value).unwrap()
    }

    proptest! {
        #[test]
        fn strings_are_escaped_as_serde_json_escapes_them(text in tricky()) {
            prop_assert_eq!(written(text.as_str()), serde(&text));
        }

        #[test]
        fn any_string_is_escaped_as_serde_json_escapes_it(text in any::<String>()) {
            prop_assert_eq!(written(&text), serde(&text));
        }

        #[test]
        fn the_first_byte_to_escape_is_found(bytes in prop::collection::vec(any::<u8>(), 0..40)) {
            prop_assert_eq!(
                first_to_escape(&bytes),
                bytes.iter().position(|&b| needs_escape(b))
            );
            prop_assert_eq!(
                first_to_escape_in_key(&bytes),
                bytes.iter().position(|&b| needs_escape(b) || b == b'~' || b == b'/')
            );
        }

        #[test]
        fn numbers_and_lists_are_written_as_serde_json_writes_them(
            signed in any::<i64>(),
            unsigned in any::<u64>(),
            small in any::<i32>(),
            flag in any::<bool>(),
            list in prop::collection::vec(any::<i64>(), 0..5),
            texts in prop::collection::vec(tricky(), 0..4),
        ) {
            prop_assert_eq!(written(&signed), serde(&signed));
            prop_assert_eq!(written(&unsigned), serde(&unsigned));
            prop_assert_eq!(written(&small), serde(&small));
            prop_assert_eq!(written(&flag), serde(&flag));
            prop_assert_eq!(written(list.as_slice()), serde(&list));
            prop_assert_eq!(written(&texts), serde(&texts));
        }

        #[test]
        fn members_are_written_as_serde_json_writes_a_map(key in tricky(), value in tricky()) {
            let map = serde_json::json!({ key.as_str(): { "inner": value.as_str() } });
            prop_assert_eq!(written(&Member(&key, Member("inner", value.as_str()))), serde(&map));
        }
    }

    #[test]
    fn the_first_byte_to_escape_is_found_at_every_length_and_position() {
        for len in 0..=24 {
            let clean = "aZ é.".repeat(5).into_bytes();
            let clean = &clean[..len];
            assert_eq!(first_to_escape(clean), None, "{clean:?}");
            assert_eq!(first_to_escape_in_key(clean), None, "{clean:?}");
            for at in 0..len {
                for (special, in_text) in [
                    (b'"', true),
                    (b'\\', true),
                    (0, true),
                    (0x1f, true),
                    (b'~', false),
                    (b'/', false),
                ] {
                    let mut bytes = clean.to_vec();
                    bytes[at] = special;
                    // A second one later never hides the first.
                    if at + 2 < len {
                        bytes[at + 2] = b'"';
                    }
                    let later = (at + 2 < len).then_some(at + 2);
                    assert_eq!(
                        first_to_escape(&bytes),
                        if in_text { Some(at) } else { later }
                    );
                    assert_eq!(first_to_escape_in_key(&bytes), Some(at), "{bytes:?}");
                }
            }
        }
    }

    #[test]
    fn plain_strings_are_those_without_escapes_and_written_as_serde_json_writes_them() {
        for text in ["", "HOMESTEAD_USER", "a/b é\u{7f}\u{2028}"] {
            let plain = Plain::checked(text).unwrap();
            assert_eq!(plain.as_str(), text);
            assert_eq!(written(&plain), serde(text));
        }
        for text in ["\"", "a\\b", "\n", "\u{0}", "x\u{1f}"] {
            assert_eq!(Plain::checked(text), None, "{text:?}");
        }
        assert_eq!(crate::plain!("HOMESTEAD_UID").as_str(), "HOMESTEAD_UID");
    }

    #[test]
    fn every_escape_is_serde_jsons() {
        for byte in 0..=0x7fu8 {
            let text = format!("a{}b", char::from(byte));
            assert_eq!(written(text.as_str()), serde(&text), "byte {byte:#x}");
        }
        // The pointer style writes every control character as \u00XX.
        let mut out = Vec::new();
        write_escaped(&mut out, b"\n\t\"\\\x1f/", Escape::Unicode);
        assert_eq!(out, br#"\u000a\u0009\"\\\u001f/"#);
    }

    #[test]
    fn objects_keep_the_order_members_are_written_in() {
        let mut out = Vec::new();
        write_object(&mut out, |o| {
            o.member("z", "last");
            o.member("a\"", &[1i64, -2][..]);
            o.member("m", &Member("n", true));
        });
        assert_eq!(out, br#"{"z":"last","a\"":[1,-2],"m":{"n":true}}"#);
        let mut empty = Vec::new();
        write_object(&mut empty, |_| {});
        assert_eq!(empty, b"{}");
    }
}
