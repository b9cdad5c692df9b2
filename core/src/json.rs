//! homestead's JSON reader: a `serde::Deserializer` over a request body that is already
//! `&str` (checked to be UTF-8 once), so every derived and hand-written `Deserialize` impl
//! of the admission model reads through it unchanged.
//!
//! It reads exactly the grammar of RFC 8259, as strictly as `serde_json` (the reader it
//! replaces, and the one the differential tests hold it to): the same literals, numbers,
//! escapes (`\uXXXX` with surrogate pairs; a lone surrogate in a string that is read is an
//! error), no raw control characters in strings, no trailing commas, nothing after the
//! value. What makes it cheaper than `serde_json` on admission's bodies:
//!
//! - strings are borrowed from the body unless they hold an escape, and their end is found
//!   sixteen bytes at a time with SSE2 on x86-64, eight (a word-at-a-time scan) on other
//!   targets and for the last bytes of the body: a scan for `"`, `\` and control characters;
//!   a string with escapes is unescaped once, into the `String` handed to the visitor;
//! - values nobody reads ([`serde::de::IgnoredAny`], and [`Raw`] captures) are skipped by
//!   a loop that checks the grammar but builds and visits nothing;
//! - [`Raw`] keeps an object as the exact slice of the body it was, for objects decided
//!   later (read again with this reader, never with another one, so a body is read one
//!   way only).
//!
//! One difference from `serde_json`, on purpose: nesting is limited to [`MAX_DEPTH`]
//! levels everywhere, also inside skipped values and [`Raw`] captures (`serde_json` limits
//! only the values it visits). The API server decodes objects into its own types before
//! calling webhooks, and none of them nests anywhere near that deep; a body that does is
//! refused as unreadable, never read another way.

use std::fmt;

use serde::de::{self, DeserializeSeed, Expected, Unexpected, Visitor};
use serde::{Deserialize, forward_to_deserialize_any};

/// The deepest nesting of arrays and objects read (as `serde_json`'s recursion limit: a
/// 128th level is refused).
pub const MAX_DEPTH: usize = 128;

/// What is wrong with a JSON text (the wording of `serde_json`'s errors where it has one).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Problem {
    /// The text ends inside a list.
    #[error("EOF while parsing a list")]
    EofList,
    /// The text ends inside an object.
    #[error("EOF while parsing an object")]
    EofObject,
    /// The text ends inside a string.
    #[error("EOF while parsing a string")]
    EofString,
    /// The text ends where a value was expected.
    #[error("EOF while parsing a value")]
    EofValue,
    /// No `:` after an object's key.
    #[error("expected `:`")]
    ExpectedColon,
    /// Neither `,` nor `]` after a list entry.
    #[error("expected `,` or `]`")]
    ExpectedListCommaOrEnd,
    /// Neither `,` nor `}` after an object member.
    #[error("expected `,` or `}}`")]
    ExpectedObjectCommaOrEnd,
    /// A misspelt `true`, `false` or `null`.
    #[error("expected ident")]
    ExpectedIdent,
    /// No value where one was expected.
    #[error("expected value")]
    ExpectedValue,
    /// A backslash followed by something that is no JSON escape.
    #[error("invalid escape")]
    InvalidEscape,
    /// A number that does not follow JSON's grammar.
    #[error("invalid number")]
    InvalidNumber,
    /// A number too large for a 64-bit float.
    #[error("number out of range")]
    NumberOutOfRange,
    /// A raw control character inside a string.
    #[error("control character (\\u0000-\\u001F) found while parsing a string")]
    ControlCharacter,
    /// An object key that is not a string.
    #[error("key must be a string")]
    KeyMustBeAString,
    /// A `\uXXXX` surrogate without its other half.
    #[error("lone leading surrogate in hex escape")]
    LoneSurrogate,
    /// A leading surrogate followed by no `\u` escape.
    #[error("unexpected end of hex escape")]
    UnexpectedEndOfHexEscape,
    /// A comma before the end of a list or object.
    #[error("trailing comma")]
    TrailingComma,
    /// Text after the value.
    #[error("trailing characters")]
    TrailingCharacters,
    /// Arrays and objects nested [`MAX_DEPTH`] deep.
    #[error("recursion limit exceeded (more than 127 nested arrays and objects)")]
    TooDeep,
    /// What a `Deserialize` impl refused (a wrong type, a field given twice, ...).
    #[error("{0}")]
    Invalid(String),
}

/// A JSON text that could not be read: what is wrong, and where (line and column, 1-based,
/// as `serde_json` counts them; 0 when not known).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(Box<ErrorAt>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct ErrorAt {
    problem: Problem,
    line: usize,
    column: usize,
}

impl Error {
    /// What is wrong.
    pub fn problem(&self) -> &Problem {
        &self.0.problem
    }

    /// The line of the problem (1-based; 0 when not known).
    pub fn line(&self) -> usize {
        self.0.line
    }

    /// The column of the problem (1-based; 0 when not known).
    pub fn column(&self) -> usize {
        self.0.column
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.line == 0 {
            fmt::Display::fmt(&self.0.problem, f)
        } else {
            write!(
                f,
                "{} at line {} column {}",
                self.0.problem, self.0.line, self.0.column
            )
        }
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    #[cold]
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error(Box::new(ErrorAt {
            problem: Problem::Invalid(msg.to_string()),
            line: 0,
            column: 0,
        }))
    }

    /// As serde_json words it: `null` rather than serde's "unit value".
    #[cold]
    fn invalid_type(unexp: Unexpected<'_>, exp: &dyn Expected) -> Self {
        if let Unexpected::Unit = unexp {
            return Self::custom(format_args!("invalid type: null, expected {exp}"));
        }
        Self::custom(format_args!("invalid type: {unexp}, expected {exp}"))
    }
}

type Result<T> = std::result::Result<T, Error>;

/// Reads a `T` from the whole of `text` (nothing but whitespace may follow the value).
pub fn from_str<'a, T: Deserialize<'a>>(text: &'a str) -> Result<T> {
    let mut deserializer = Deserializer::new(text);
    let value = T::deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

/// A JSON value kept as the exact text it was in the body (no surrounding whitespace),
/// for an object read later. Only [`Deserializer`] can produce one.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Raw<'a>(&'a str);

impl<'a> Raw<'a> {
    /// The JSON text.
    pub fn get(self) -> &'a str {
        self.0
    }
}

impl fmt::Debug for Raw<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0)
    }
}

/// The newtype-struct name by which [`Raw`] asks [`Deserializer`] for a value's text.
const RAW: &str = "$homestead::json::Raw";

impl<'de: 'a, 'a> Deserialize<'de> for Raw<'a> {
    fn deserialize<D: de::Deserializer<'de>>(
        deserializer: D,
    ) -> std::result::Result<Self, D::Error> {
        struct RawVisitor;
        impl<'de> Visitor<'de> for RawVisitor {
            type Value = Raw<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value kept as text (read by homestead's JSON reader)")
            }
            fn visit_borrowed_str<E: de::Error>(
                self,
                v: &'de str,
            ) -> std::result::Result<Self::Value, E> {
                Ok(Raw(v))
            }
        }
        deserializer.deserialize_newtype_struct(RAW, RawVisitor)
    }
}

/// A string read from the body: borrowed when it had no escape.
enum Str<'de> {
    Borrowed(&'de str),
    Owned(String),
}

/// A number as read: non-negative and negative integers that fit 64 bits, anything else
/// as a float (as `serde_json` reads them).
#[derive(Clone, Copy)]
enum Number {
    Unsigned(u64),
    Signed(i64),
    Float(f64),
}

impl Number {
    fn visit<'de, V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self {
            Number::Unsigned(n) => visitor.visit_u64(n),
            Number::Signed(n) => visitor.visit_i64(n),
            Number::Float(n) => visitor.visit_f64(n),
        }
    }

    fn unexpected(self) -> Unexpected<'static> {
        match self {
            Number::Unsigned(n) => Unexpected::Unsigned(n),
            Number::Signed(n) => Unexpected::Signed(n),
            Number::Float(n) => Unexpected::Float(n),
        }
    }
}

/// Finds the first `"`, `\` or control character (below 0x20) at or after `i`; the
/// length of `bytes` when there is none. On x86-64, sixteen bytes at a time with SSE2
/// (part of the x86-64 baseline, so no detection); the last fewer than sixteen bytes, and
/// every byte on other targets, by [`scan_words`].
#[inline(always)]
fn scan(bytes: &[u8], i: usize) -> usize {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    let i = match x86::scan_blocks(bytes, i) {
        Ok(found) => return found,
        Err(rest) => rest,
    };
    scan_words(bytes, i)
}

/// [`scan`] eight bytes at a time: for each byte, a zero byte of `w ^ '"'`, of
/// `w ^ '\'`, or a byte of `w` below 0x20 sets its high bit in the mask; a borrow can only
/// set high bits above the first true match, so the lowest set bit is exact. The last
/// fewer than eight bytes one at a time.
#[inline(always)]
fn scan_words(bytes: &[u8], mut i: usize) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    const QUOTE: u64 = ONES * b'"' as u64;
    const BACKSLASH: u64 = ONES * b'\\' as u64;
    const CONTROL: u64 = ONES * 0x20;
    while let Some(word) = bytes.get(i..).and_then(<[u8]>::first_chunk::<8>) {
        let w = u64::from_le_bytes(*word);
        let q = w ^ QUOTE;
        let b = w ^ BACKSLASH;
        let mask = ((q.wrapping_sub(ONES) & !q)
            | (b.wrapping_sub(ONES) & !b)
            | (w.wrapping_sub(CONTROL) & !w))
            & HIGH;
        if mask != 0 {
            return i + (mask.trailing_zeros() / 8) as usize;
        }
        i += 8;
    }
    while let Some(&b) = bytes.get(i) {
        if b == b'"' || b == b'\\' || b < 0x20 {
            return i;
        }
        i += 1;
    }
    i
}

/// The SSE2 scan (SSE2 is part of the x86-64 baseline: every x86-64 target enables it).
#[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
mod x86 {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_loadu_si128, _mm_max_epu8, _mm_movemask_epi8, _mm_or_si128,
        _mm_set1_epi8,
    };

    /// [`super::scan`] sixteen bytes at a time while sixteen are left from `i`:
    /// `Ok(index)` of the first `"`, `\` or control character found, or `Err(index)` of
    /// the first byte not looked at (fewer than sixteen left). Each block is compared with
    /// `"` and `\`, and a byte is below 0x20 exactly when its unsigned maximum with 0x1f
    /// is 0x1f; the lowest bit of the mask of matches is the first match.
    #[inline(always)]
    pub(super) fn scan_blocks(bytes: &[u8], mut i: usize) -> Result<usize, usize> {
        // The last index a whole block starts at (none in fewer than sixteen bytes).
        let Some(last) = bytes.len().checked_sub(16) else {
            return Err(i);
        };
        while i <= last {
            // SAFETY: `i <= len - 16`, so the load reads the 16 bytes `bytes[i..i + 16]`,
            // inside the slice (unaligned loads are allowed); the intrinsics need SSE2,
            // which this module is compiled only with (`target_feature = "sse2"`, part of
            // every x86-64 target).
            let mask = unsafe {
                let v = _mm_loadu_si128(bytes.as_ptr().add(i).cast());
                let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
                let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
                let limit = _mm_set1_epi8(0x1f);
                let control = _mm_cmpeq_epi8(_mm_max_epu8(v, limit), limit);
                _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), control))
            };
            if mask != 0 {
                return Ok(i + mask.trailing_zeros() as usize);
            }
            i += 16;
        }
        Err(i)
    }
}

/// The index of the first byte at or after `i` that is no JSON whitespace (the length of
/// `bytes` when there is none): [`Deserializer::ws`] out of line, a function of the bytes
/// alone so that the reader's state stays in registers around it.
#[cold]
#[inline(never)]
fn skip_ws(bytes: &[u8], mut i: usize) -> usize {
    while let Some(b' ' | b'\n' | b'\r' | b'\t') = bytes.get(i) {
        i += 1;
    }
    i
}

/// The part of [`scan`] the hot string paths inline: on x86-64 the SSE2 blocks, `Some`
/// index of what they found, `None` when they reached the last fewer than sixteen bytes
/// (left to [`scan`], out of line); on other targets the whole scan.
#[inline(always)]
fn scan_hot(bytes: &[u8], i: usize) -> Option<usize> {
    #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
    return match x86::scan_blocks(bytes, i) {
        Ok(found) => {
            // SAFETY: the blocks find only inside a whole block, which ends at or before
            // the end of `bytes`; telling the compiler spares the caller a bounds check.
            unsafe { std::hint::assert_unchecked(found < bytes.len()) };
            Some(found)
        }
        Err(_) => None,
    };
    #[cfg(not(all(target_arch = "x86_64", target_feature = "sse2")))]
    Some(scan_words(bytes, i))
}

fn hex(b: u8) -> Option<u16> {
    match b {
        b'0'..=b'9' => Some(u16::from(b - b'0')),
        b'a'..=b'f' => Some(u16::from(b - b'a' + 10)),
        b'A'..=b'F' => Some(u16::from(b - b'A' + 10)),
        _ => None,
    }
}

/// Reads JSON from a `&str`, borrowing strings from it.
pub struct Deserializer<'de> {
    text: &'de str,
    pos: usize,
    depth: usize,
}

impl<'de> Deserializer<'de> {
    /// A reader at the start of `text`.
    pub fn new(text: &'de str) -> Self {
        Deserializer {
            text,
            pos: 0,
            depth: 0,
        }
    }

    /// Checks that nothing but whitespace follows the value read.
    pub fn end(&mut self) -> Result<()> {
        match self.ws() {
            None => Ok(()),
            Some(_) => Err(self.peek_error(Problem::TrailingCharacters)),
        }
    }

    #[inline(always)]
    fn bytes(&self) -> &'de [u8] {
        self.text.as_bytes()
    }

    #[inline(always)]
    fn peek(&self) -> Option<u8> {
        self.bytes().get(self.pos).copied()
    }

    /// Skips whitespace and returns the next byte (not consumed). The API server sends
    /// compact JSON, so the next byte is almost always no whitespace: one comparison
    /// decides that, and whitespace is skipped out of line.
    #[inline(always)]
    fn ws(&mut self) -> Option<u8> {
        match self.peek() {
            Some(b) if b > b' ' => Some(b),
            _ => {
                self.pos = skip_ws(self.bytes(), self.pos);
                self.peek()
            }
        }
    }

    /// Line and column of byte `index`, as serde_json counts them.
    #[cold]
    fn position(&self, index: usize) -> (usize, usize) {
        let before = self.bytes().get(..index).unwrap_or(self.bytes());
        let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
        let column = match before.iter().rposition(|&b| b == b'\n') {
            Some(newline) => index - newline - 1,
            None => index,
        };
        (line, column)
    }

    /// An error at the byte just read.
    #[cold]
    fn error(&self, problem: Problem) -> Error {
        let (line, column) = self.position(self.pos.min(self.text.len()));
        Error(Box::new(ErrorAt {
            problem,
            line,
            column,
        }))
    }

    /// An error at the next byte.
    #[cold]
    fn peek_error(&self, problem: Problem) -> Error {
        let (line, column) = self.position((self.pos + 1).min(self.text.len()));
        Error(Box::new(ErrorAt {
            problem,
            line,
            column,
        }))
    }

    /// Gives an error from a visitor the position it was found at.
    #[cold]
    fn fix(&self, mut error: Error) -> Error {
        if error.0.line == 0 {
            let (line, column) = self.position(self.pos.min(self.text.len()));
            error.0.line = line;
            error.0.column = column;
        }
        error
    }

    /// Enters an array or object.
    #[inline(always)]
    fn enter(&mut self) -> Result<()> {
        self.depth += 1;
        if self.depth >= MAX_DEPTH {
            return Err(self.peek_error(Problem::TooDeep));
        }
        Ok(())
    }

    /// Reads the rest of a literal whose first byte is consumed.
    #[inline]
    fn ident(&mut self, rest: &[u8]) -> Result<()> {
        for &expected in rest {
            match self.peek() {
                Some(b) if b == expected => self.pos += 1,
                Some(_) => {
                    self.pos += 1;
                    return Err(self.error(Problem::ExpectedIdent));
                }
                None => return Err(self.error(Problem::EofValue)),
            }
        }
        Ok(())
    }

    /// Reads a string whose opening quote is consumed (the byte before `self.pos` is that
    /// `"`: every caller steps over it just before).
    #[inline(always)]
    fn read_str(&mut self) -> Result<Str<'de>> {
        let start = self.pos;
        debug_assert_eq!(self.bytes().get(start.wrapping_sub(1)), Some(&b'"'));
        if let Some(end) = scan_hot(self.bytes(), start)
            && self.bytes().get(end) == Some(&b'"')
        {
            return Ok(Str::Borrowed(self.borrow_str(start, end)));
        }
        self.read_str_rest(start)
    }

    /// The string from `start` (just after its opening quote) to `end` (its closing quote),
    /// consumed.
    #[inline(always)]
    fn borrow_str(&mut self, start: usize, end: usize) -> &'de str {
        debug_assert!(start <= end && self.bytes().get(end) == Some(&b'"'));
        self.pos = end + 1;
        // SAFETY: `start <= end` (a scan finds an index at or after where it starts) and
        // `end < len` (there is a byte at `end`), and both are char boundaries of the
        // `str`: the byte at `end` is a `"`, and the byte before `start` is the opening
        // `"` ([`Self::read_str`]'s contract); in UTF-8 an ASCII byte is a whole
        // character, so a character starts at it and after it.
        unsafe { self.text.get_unchecked(start..end) }
    }

    /// [`Self::read_str`] out of line when the SSE2 blocks did not find the closing quote:
    /// a string in the last bytes of the body, or with an escape, or an error.
    #[cold]
    #[inline(never)]
    fn read_str_rest(&mut self, start: usize) -> Result<Str<'de>> {
        let end = scan(self.bytes(), start);
        if self.bytes().get(end) == Some(&b'"') {
            return Ok(Str::Borrowed(self.borrow_str(start, end)));
        }
        self.read_escaped(start, end).map(Str::Owned)
    }

    /// The rest of a string from `at`, the first `\`, control character or end of text
    /// after its start.
    #[cold]
    #[inline(never)]
    fn read_escaped(&mut self, start: usize, mut at: usize) -> Result<String> {
        let mut out = String::with_capacity(at - start + 16);
        let mut run = start;
        loop {
            let Some(plain) = self.text.get(run..at) else {
                return Err(self.error(Problem::InvalidEscape));
            };
            out.push_str(plain);
            match self.bytes().get(at) {
                Some(b'"') => {
                    self.pos = at + 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos = at + 1;
                    self.unescape(&mut out)?;
                    run = self.pos;
                    at = scan(self.bytes(), run);
                }
                Some(_) => {
                    self.pos = at + 1;
                    return Err(self.error(Problem::ControlCharacter));
                }
                None => {
                    self.pos = at;
                    return Err(self.error(Problem::EofString));
                }
            }
        }
    }

    /// Reads one escape after its `\` into `out`.
    fn unescape(&mut self, out: &mut String) -> Result<()> {
        let Some(b) = self.peek() else {
            return Err(self.error(Problem::EofString));
        };
        self.pos += 1;
        let c = match b {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let first = self.hex4()?;
                let code = match first {
                    0xDC00..=0xDFFF => return Err(self.error(Problem::LoneSurrogate)),
                    0xD800..=0xDBFF => {
                        if self.peek() != Some(b'\\') {
                            self.pos += 1;
                            return Err(self.error(Problem::UnexpectedEndOfHexEscape));
                        }
                        self.pos += 1;
                        if self.peek() != Some(b'u') {
                            self.pos += 1;
                            return Err(self.error(Problem::UnexpectedEndOfHexEscape));
                        }
                        self.pos += 1;
                        let second = self.hex4()?;
                        if !(0xDC00..=0xDFFF).contains(&second) {
                            return Err(self.error(Problem::LoneSurrogate));
                        }
                        ((u32::from(first - 0xD800) << 10) | u32::from(second - 0xDC00)) + 0x1_0000
                    }
                    n => u32::from(n),
                };
                match char::from_u32(code) {
                    Some(c) => c,
                    None => return Err(self.error(Problem::LoneSurrogate)),
                }
            }
            _ => return Err(self.error(Problem::InvalidEscape)),
        };
        out.push(c);
        Ok(())
    }

    /// Four hex digits of a `\u` escape.
    fn hex4(&mut self) -> Result<u16> {
        let mut n = 0u16;
        for _ in 0..4 {
            let Some(b) = self.peek() else {
                return Err(self.error(Problem::EofString));
            };
            self.pos += 1;
            match hex(b) {
                Some(digit) => n = (n << 4) | digit,
                None => return Err(self.error(Problem::InvalidEscape)),
            }
        }
        Ok(n)
    }

    /// Skips the rest of a string whose opening quote is consumed, checking its escapes'
    /// syntax (as serde_json, not whether `\u` surrogates pair up: nobody reads it).
    #[inline(always)]
    fn skip_str(&mut self) -> Result<()> {
        if let Some(at) = scan_hot(self.bytes(), self.pos)
            && self.bytes().get(at) == Some(&b'"')
        {
            self.pos = at + 1;
            return Ok(());
        }
        self.skip_str_rest()
    }

    /// [`Self::skip_str`] out of line when the SSE2 blocks did not find the closing quote.
    #[cold]
    #[inline(never)]
    fn skip_str_rest(&mut self) -> Result<()> {
        loop {
            let at = scan(self.bytes(), self.pos);
            match self.bytes().get(at) {
                Some(b'"') => {
                    self.pos = at + 1;
                    return Ok(());
                }
                Some(b'\\') => {
                    self.pos = at + 1;
                    let Some(b) = self.peek() else {
                        return Err(self.error(Problem::EofString));
                    };
                    self.pos += 1;
                    match b {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => {}
                        b'u' => {
                            self.hex4()?;
                        }
                        _ => return Err(self.error(Problem::InvalidEscape)),
                    }
                }
                Some(_) => {
                    self.pos = at + 1;
                    return Err(self.error(Problem::ControlCharacter));
                }
                None => {
                    self.pos = at;
                    return Err(self.error(Problem::EofString));
                }
            }
        }
    }

    /// Consumes digits; returns how many.
    #[inline(always)]
    fn digits(&mut self) -> usize {
        let start = self.pos;
        while let Some(b'0'..=b'9') = self.peek() {
            self.pos += 1;
        }
        self.pos - start
    }

    /// Checks and consumes a number's fraction and exponent, if any; true when there was
    /// either.
    #[inline]
    fn fraction_exponent(&mut self) -> Result<bool> {
        let mut float = false;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if self.digits() == 0 {
                return Err(self.number_error());
            }
            float = true;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.pos += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.pos += 1;
            }
            if self.digits() == 0 {
                return Err(self.number_error());
            }
            float = true;
        }
        Ok(float)
    }

    #[cold]
    fn number_error(&mut self) -> Error {
        match self.peek() {
            Some(_) => {
                self.pos += 1;
                self.error(Problem::InvalidNumber)
            }
            None => self.error(Problem::EofValue),
        }
    }

    /// Reads a number starting at the next byte (a `-` or a digit).
    #[inline]
    fn read_number(&mut self) -> Result<Number> {
        let start = self.pos;
        let negative = self.peek() == Some(b'-');
        if negative {
            self.pos += 1;
        }
        let mut value: u64 = 0;
        let mut overflow = false;
        match self.peek() {
            Some(b'0') => {
                self.pos += 1;
                if let Some(b'0'..=b'9') = self.peek() {
                    return Err(self.number_error());
                }
            }
            Some(b @ b'1'..=b'9') => {
                self.pos += 1;
                value = u64::from(b - b'0');
                while let Some(b @ b'0'..=b'9') = self.peek() {
                    self.pos += 1;
                    match value
                        .checked_mul(10)
                        .and_then(|v| v.checked_add(u64::from(b - b'0')))
                    {
                        Some(v) => value = v,
                        None => overflow = true,
                    }
                }
            }
            _ => return Err(self.number_error()),
        }
        if self.fraction_exponent()? || overflow {
            return self.float(start);
        }
        Ok(if !negative {
            Number::Unsigned(value)
        } else if value == 0 || value > 1 << 63 {
            // `-0` is a float, as serde_json reads it; so is anything below i64::MIN.
            Number::Float(-(value as f64))
        } else {
            Number::Signed((value as i64).wrapping_neg())
        })
    }

    /// The float of the number text from `start` to here.
    #[cold]
    fn float(&self, start: usize) -> Result<Number> {
        match self.text.get(start..self.pos).map(str::parse::<f64>) {
            Some(Ok(value)) if value.is_finite() => Ok(Number::Float(value)),
            _ => Err(self.error(Problem::NumberOutOfRange)),
        }
    }

    /// Skips a number, checking its grammar only (as serde_json does for values nobody
    /// reads).
    #[inline]
    fn skip_number(&mut self) -> Result<()> {
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => {
                self.pos += 1;
                if let Some(b'0'..=b'9') = self.peek() {
                    return Err(self.number_error());
                }
            }
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.number_error()),
        }
        self.fraction_exponent().map(|_| ())
    }

    /// Skips the `:` after an object key.
    #[inline(always)]
    fn colon(&mut self) -> Result<()> {
        if self.peek() == Some(b':') {
            self.pos += 1;
            return Ok(());
        }
        self.colon_rest()
    }

    /// [`Self::colon`] after whitespace, or at an error.
    #[cold]
    #[inline(never)]
    fn colon_rest(&mut self) -> Result<()> {
        match self.ws() {
            Some(b':') => {
                self.pos += 1;
                Ok(())
            }
            Some(_) => Err(self.peek_error(Problem::ExpectedColon)),
            None => Err(self.peek_error(Problem::EofObject)),
        }
    }

    /// Skips one value, checking its grammar, building and visiting nothing. Nested
    /// arrays and objects are followed with one bit each (1 for an object) rather than by
    /// recursion; [`MAX_DEPTH`] bounds them. The position is kept in a local (so in a
    /// register) and written back at the end, at an error, and around the out-of-line
    /// helpers (numbers, literals, strings the SSE2 blocks do not finish).
    fn skip_value(&mut self) -> Result<()> {
        let bytes = self.bytes();
        let base = self.depth;
        let mut pos = self.pos;
        let mut stack: u128 = 0;
        let mut level = 0usize;
        let ws = |pos: &mut usize| match bytes.get(*pos) {
            Some(&b) if b > b' ' => Some(b),
            _ => {
                *pos = skip_ws(bytes, *pos);
                bytes.get(*pos).copied()
            }
        };
        // The reader's state written back, for an error or a helper.
        macro_rules! sync {
            () => {
                self.pos = pos;
                self.depth = base + level;
            };
        }
        // An error at the next byte.
        macro_rules! fail {
            ($problem:expr) => {{
                sync!();
                return Err(self.peek_error($problem));
            }};
        }
        // A helper that reads from `self.pos`.
        macro_rules! with_self {
            ($call:expr) => {{
                sync!();
                let result = $call;
                pos = self.pos;
                result?;
            }};
        }
        // The rest of a string whose opening quote is consumed.
        macro_rules! string {
            () => {
                if let Some(at) = scan_hot(bytes, pos)
                    && bytes.get(at) == Some(&b'"')
                {
                    pos = at + 1;
                } else {
                    with_self!(self.skip_str_rest());
                }
            };
        }
        // The `:` after an object key.
        macro_rules! colon {
            () => {
                match ws(&mut pos) {
                    Some(b':') => pos += 1,
                    Some(_) => fail!(Problem::ExpectedColon),
                    None => fail!(Problem::EofObject),
                }
            };
        }
        // An array or object opening at `pos`.
        macro_rules! enter {
            () => {
                if base + level + 1 >= MAX_DEPTH {
                    self.pos = pos;
                    self.depth = base + level + 1;
                    return Err(self.peek_error(Problem::TooDeep));
                }
                pos += 1;
                level += 1;
            };
        }
        loop {
            // A value.
            match ws(&mut pos) {
                None => fail!(Problem::EofValue),
                Some(b'"') => {
                    pos += 1;
                    string!();
                }
                Some(b'{') => {
                    enter!();
                    stack = (stack << 1) | 1;
                    match ws(&mut pos) {
                        Some(b'}') => {}
                        Some(b'"') => {
                            pos += 1;
                            string!();
                            colon!();
                            continue;
                        }
                        Some(_) => fail!(Problem::KeyMustBeAString),
                        None => fail!(Problem::EofObject),
                    }
                }
                Some(b'[') => {
                    enter!();
                    stack <<= 1;
                    if ws(&mut pos) != Some(b']') {
                        continue;
                    }
                }
                Some(b'-' | b'0'..=b'9') => with_self!(self.skip_number()),
                Some(b't') => {
                    pos += 1;
                    with_self!(self.ident(b"rue"));
                }
                Some(b'f') => {
                    pos += 1;
                    with_self!(self.ident(b"alse"));
                }
                Some(b'n') => {
                    pos += 1;
                    with_self!(self.ident(b"ull"));
                }
                Some(_) => fail!(Problem::ExpectedValue),
            }
            // After a value (or at an empty container's closing bracket): close what
            // ends here, then find the next value.
            loop {
                if level == 0 {
                    self.pos = pos;
                    return Ok(());
                }
                let object = stack & 1 == 1;
                match ws(&mut pos) {
                    Some(b',') => {
                        pos += 1;
                        if object {
                            match ws(&mut pos) {
                                Some(b'"') => {
                                    pos += 1;
                                    string!();
                                    colon!();
                                }
                                Some(_) => fail!(Problem::KeyMustBeAString),
                                None => fail!(Problem::EofObject),
                            }
                        }
                        break;
                    }
                    Some(b'}') if object => {}
                    Some(b']') if !object => {}
                    Some(_) => fail!(if object {
                        Problem::ExpectedObjectCommaOrEnd
                    } else {
                        Problem::ExpectedListCommaOrEnd
                    }),
                    None => fail!(if object {
                        Problem::EofObject
                    } else {
                        Problem::EofList
                    }),
                }
                pos += 1;
                level -= 1;
                stack >>= 1;
            }
        }
    }

    /// The error for a value of the wrong type: the value is read to name it, as
    /// serde_json does (`invalid type: string "x", expected ...`).
    #[cold]
    fn invalid_type(&mut self, expected: &dyn Expected) -> Error {
        let error = match self.ws() {
            Some(b'n') => {
                self.pos += 1;
                match self.ident(b"ull") {
                    Ok(()) => de::Error::invalid_type(Unexpected::Unit, expected),
                    Err(e) => return e,
                }
            }
            Some(b't') => {
                self.pos += 1;
                match self.ident(b"rue") {
                    Ok(()) => de::Error::invalid_type(Unexpected::Bool(true), expected),
                    Err(e) => return e,
                }
            }
            Some(b'f') => {
                self.pos += 1;
                match self.ident(b"alse") {
                    Ok(()) => de::Error::invalid_type(Unexpected::Bool(false), expected),
                    Err(e) => return e,
                }
            }
            Some(b'-' | b'0'..=b'9') => match self.read_number() {
                Ok(n) => de::Error::invalid_type(n.unexpected(), expected),
                Err(e) => return e,
            },
            Some(b'"') => {
                self.pos += 1;
                match self.read_str() {
                    Ok(Str::Borrowed(s)) => de::Error::invalid_type(Unexpected::Str(s), expected),
                    Ok(Str::Owned(s)) => de::Error::invalid_type(Unexpected::Str(&s), expected),
                    Err(e) => return e,
                }
            }
            Some(b'[') => de::Error::invalid_type(Unexpected::Seq, expected),
            Some(b'{') => de::Error::invalid_type(Unexpected::Map, expected),
            Some(_) => return self.peek_error(Problem::ExpectedValue),
            None => return self.peek_error(Problem::EofValue),
        };
        self.fix(error)
    }

    /// Visits an array whose `[` is next.
    #[inline]
    fn seq<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value> {
        self.enter()?;
        self.pos += 1;
        let value = visitor.visit_seq(Seq {
            de: self,
            first: true,
        });
        self.depth -= 1;
        // The end is read even after an error, as serde_json does (so errors are placed
        // where serde_json places them).
        let end = self.end_seq();
        match (value, end) {
            (Ok(value), Ok(())) => Ok(value),
            (Err(e), _) | (_, Err(e)) => Err(e),
        }
    }

    /// The end of an array whose entries were read: the closing bracket right here
    /// inline, anything else out of line.
    #[inline(always)]
    fn end_seq(&mut self) -> Result<()> {
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(());
        }
        self.end_rest(b']', Problem::EofList)
    }

    /// The end of an array or object (`close`, `]` or `}`) after whitespace, or at an
    /// error (`eof` when the text ends): [`Self::end_seq`] and [`Self::end_map`] out of
    /// line.
    #[cold]
    #[inline(never)]
    fn end_rest(&mut self, close: u8, eof: Problem) -> Result<()> {
        match self.ws() {
            Some(b) if b == close => {
                self.pos += 1;
                Ok(())
            }
            Some(b',') => {
                self.pos += 1;
                let problem = if self.ws() == Some(close) {
                    Problem::TrailingComma
                } else {
                    Problem::TrailingCharacters
                };
                Err(self.peek_error(problem))
            }
            Some(_) => Err(self.peek_error(Problem::TrailingCharacters)),
            None => Err(self.peek_error(eof)),
        }
    }

    /// Visits an object whose `{` is next.
    #[inline]
    fn map<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value> {
        self.enter()?;
        self.pos += 1;
        let value = visitor.visit_map(Map {
            de: self,
            first: true,
        });
        self.depth -= 1;
        // The end is read even after an error, as serde_json does (so errors are placed
        // where serde_json places them).
        let end = self.end_map();
        match (value, end) {
            (Ok(value), Ok(())) => Ok(value),
            (Err(e), _) | (_, Err(e)) => Err(e),
        }
    }

    /// The end of an object whose entries were read: the closing brace right here
    /// inline, anything else out of line.
    #[inline(always)]
    fn end_map(&mut self) -> Result<()> {
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(());
        }
        self.end_rest(b'}', Problem::EofObject)
    }

    /// Visits a string whose opening quote is consumed (as [`Self::read_str`]), giving an
    /// error of the visitor its position. A string the SSE2 blocks end is visited inline;
    /// any other is left to [`Self::visit_str_rest`], called last so that it can be a
    /// tail call and the inline path needs no saved registers.
    #[inline(always)]
    fn visit_str<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value> {
        let start = self.pos;
        debug_assert_eq!(self.bytes().get(start.wrapping_sub(1)), Some(&b'"'));
        if let Some(end) = scan_hot(self.bytes(), start)
            && self.bytes().get(end) == Some(&b'"')
        {
            let s = self.borrow_str(start, end);
            return visitor.visit_borrowed_str(s).map_err(|e| self.fix(e));
        }
        self.visit_str_rest(start, visitor)
    }

    /// [`Self::visit_str`] out of line: a string in the last bytes of the body, or with
    /// an escape, or an error.
    #[cold]
    #[inline(never)]
    fn visit_str_rest<V: Visitor<'de>>(&mut self, start: usize, visitor: V) -> Result<V::Value> {
        let value = match self.read_str_rest(start)? {
            Str::Borrowed(s) => visitor.visit_borrowed_str(s),
            Str::Owned(s) => visitor.visit_string(s),
        };
        value.map_err(|e| self.fix(e))
    }

    /// [`de::Deserializer::deserialize_str`] out of line: after whitespace, or at anything
    /// but a string.
    #[cold]
    #[inline(never)]
    fn str_rest<V: Visitor<'de>>(&mut self, visitor: V) -> Result<V::Value> {
        let value = match self.ws() {
            Some(b'"') => {
                self.pos += 1;
                self.visit_str(visitor)
            }
            None => return Err(self.peek_error(Problem::EofValue)),
            Some(_) => return Err(self.invalid_type(&visitor)),
        };
        value.map_err(|e| self.fix(e))
    }
}

impl<'de> de::Deserializer<'de> for &mut Deserializer<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let value = match self.ws() {
            None => return Err(self.peek_error(Problem::EofValue)),
            Some(b'"') => {
                self.pos += 1;
                self.visit_str(visitor)
            }
            Some(b'{') => self.map(visitor),
            Some(b'[') => self.seq(visitor),
            Some(b'-' | b'0'..=b'9') => self.read_number()?.visit(visitor),
            Some(b't') => {
                self.pos += 1;
                self.ident(b"rue")?;
                visitor.visit_bool(true)
            }
            Some(b'f') => {
                self.pos += 1;
                self.ident(b"alse")?;
                visitor.visit_bool(false)
            }
            Some(b'n') => {
                self.pos += 1;
                self.ident(b"ull")?;
                visitor.visit_unit()
            }
            Some(_) => return Err(self.peek_error(Problem::ExpectedValue)),
        };
        value.map_err(|e| self.fix(e))
    }

    #[inline]
    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let value = match self.ws() {
            Some(b't') => {
                self.pos += 1;
                self.ident(b"rue")?;
                visitor.visit_bool(true)
            }
            Some(b'f') => {
                self.pos += 1;
                self.ident(b"alse")?;
                visitor.visit_bool(false)
            }
            None => return Err(self.peek_error(Problem::EofValue)),
            Some(_) => return Err(self.invalid_type(&visitor)),
        };
        value.map_err(|e| self.fix(e))
    }

    #[inline]
    fn deserialize_i64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let value = match self.ws() {
            Some(b'-' | b'0'..=b'9') => self.read_number()?.visit(visitor),
            None => return Err(self.peek_error(Problem::EofValue)),
            Some(_) => return Err(self.invalid_type(&visitor)),
        };
        value.map_err(|e| self.fix(e))
    }

    fn deserialize_i8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_i64(visitor)
    }
    fn deserialize_i16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_i64(visitor)
    }
    fn deserialize_i32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_i64(visitor)
    }
    fn deserialize_i128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_i64(visitor)
    }
    fn deserialize_u8<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_i64(visitor)
    }
    fn deserialize_u16<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_i64(visitor)
    }
    fn deserialize_u32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_i64(visitor)
    }
    fn deserialize_u64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_i64(visitor)
    }
    fn deserialize_u128<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_i64(visitor)
    }
    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_i64(visitor)
    }
    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_i64(visitor)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_str(visitor)
    }

    #[inline]
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        if self.peek() == Some(b'"') {
            self.pos += 1;
            return self.visit_str(visitor);
        }
        self.str_rest(visitor)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let value = match self.ws() {
            Some(b'"') => {
                self.pos += 1;
                match self.read_str()? {
                    Str::Borrowed(s) => visitor.visit_borrowed_bytes(s.as_bytes()),
                    Str::Owned(s) => visitor.visit_byte_buf(s.into_bytes()),
                }
            }
            Some(b'[') => self.seq(visitor),
            None => return Err(self.peek_error(Problem::EofValue)),
            Some(_) => return Err(self.invalid_type(&visitor)),
        };
        value.map_err(|e| self.fix(e))
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_bytes(visitor)
    }

    #[inline]
    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        match self.ws() {
            Some(b'n') => {
                self.pos += 1;
                self.ident(b"ull")?;
                visitor.visit_none()
            }
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let value = match self.ws() {
            Some(b'n') => {
                self.pos += 1;
                self.ident(b"ull")?;
                visitor.visit_unit()
            }
            None => return Err(self.peek_error(Problem::EofValue)),
            Some(_) => return Err(self.invalid_type(&visitor)),
        };
        value.map_err(|e| self.fix(e))
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        if name == RAW {
            if self.ws().is_none() {
                return Err(self.peek_error(Problem::EofValue));
            }
            let start = self.pos;
            self.skip_value()?;
            let Some(text) = self.text.get(start..self.pos) else {
                return Err(self.error(Problem::ExpectedValue));
            };
            return visitor.visit_borrowed_str(text);
        }
        visitor.visit_newtype_struct(self)
    }

    #[inline]
    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let value = match self.ws() {
            Some(b'[') => self.seq(visitor),
            None => return Err(self.peek_error(Problem::EofValue)),
            Some(_) => return Err(self.invalid_type(&visitor)),
        };
        value.map_err(|e| self.fix(e))
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value> {
        self.deserialize_seq(visitor)
    }

    #[inline]
    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        let value = match self.ws() {
            Some(b'{') => self.map(visitor),
            None => return Err(self.peek_error(Problem::EofValue)),
            Some(_) => return Err(self.invalid_type(&visitor)),
        };
        value.map_err(|e| self.fix(e))
    }

    /// An object, or (as serde_json reads structs) an array of the fields in order.
    #[inline]
    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        let value = match self.ws() {
            Some(b'{') => self.map(visitor),
            Some(b'[') => self.seq(visitor),
            None => return Err(self.peek_error(Problem::EofValue)),
            Some(_) => return Err(self.invalid_type(&visitor)),
        };
        value.map_err(|e| self.fix(e))
    }

    /// `"Variant"` or `{"Variant": value}`, as serde_json reads enums.
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        match self.ws() {
            Some(b'{') => {
                self.enter()?;
                self.pos += 1;
                let value = visitor.visit_enum(VariantAccess { de: self });
                self.depth -= 1;
                let value = value.map_err(|e| self.fix(e))?;
                match self.ws() {
                    Some(b'}') => {
                        self.pos += 1;
                        Ok(value)
                    }
                    Some(_) => Err(self.error(Problem::ExpectedValue)),
                    None => Err(self.error(Problem::EofObject)),
                }
            }
            Some(b'"') => visitor
                .visit_enum(UnitVariantAccess { de: self })
                .map_err(|e| self.fix(e)),
            Some(_) => Err(self.peek_error(Problem::ExpectedValue)),
            None => Err(self.peek_error(Problem::EofValue)),
        }
    }

    #[inline]
    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_str(visitor)
    }

    /// A string the SSE2 blocks end is skipped inline (most values nobody reads are short
    /// strings); anything else by [`Deserializer::skip_value`].
    #[inline]
    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        if self.peek() == Some(b'"')
            && let Some(at) = scan_hot(self.bytes(), self.pos + 1)
            && self.bytes().get(at) == Some(&b'"')
        {
            self.pos = at + 1;
            return visitor.visit_unit();
        }
        self.skip_value()?;
        visitor.visit_unit()
    }
}

/// The entries of an array.
struct Seq<'a, 'de> {
    de: &'a mut Deserializer<'de>,
    first: bool,
}

impl<'de> de::SeqAccess<'de> for Seq<'_, 'de> {
    type Error = Error;

    #[inline]
    fn next_element_seed<T: DeserializeSeed<'de>>(&mut self, seed: T) -> Result<Option<T::Value>> {
        let de = &mut *self.de;
        match de.ws() {
            Some(b']') => return Ok(None),
            Some(b',') if !self.first => {
                de.pos += 1;
                if de.ws() == Some(b']') {
                    return Err(de.peek_error(Problem::TrailingComma));
                }
            }
            Some(_) if self.first => {}
            Some(_) => return Err(de.peek_error(Problem::ExpectedListCommaOrEnd)),
            None => return Err(de.peek_error(Problem::EofList)),
        }
        self.first = false;
        seed.deserialize(&mut *self.de).map(Some)
    }
}

/// The members of an object.
struct Map<'a, 'de> {
    de: &'a mut Deserializer<'de>,
    first: bool,
}

impl<'de> de::MapAccess<'de> for Map<'_, 'de> {
    type Error = Error;

    #[inline]
    fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>> {
        let de = &mut *self.de;
        let next = match de.ws() {
            Some(b'}') => return Ok(None),
            Some(b',') if !self.first => {
                de.pos += 1;
                match de.ws() {
                    Some(b'}') => return Err(de.peek_error(Problem::TrailingComma)),
                    None => return Err(de.peek_error(Problem::EofValue)),
                    next => next,
                }
            }
            Some(_) if !self.first => return Err(de.peek_error(Problem::ExpectedObjectCommaOrEnd)),
            None => return Err(de.peek_error(Problem::EofObject)),
            next => next,
        };
        if next != Some(b'"') {
            return Err(de.peek_error(Problem::KeyMustBeAString));
        }
        de.pos += 1;
        self.first = false;
        seed.deserialize(Key { de }).map(Some)
    }

    #[inline]
    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value> {
        self.de.colon()?;
        seed.deserialize(&mut *self.de)
    }
}

/// An object key, its opening quote consumed.
struct Key<'a, 'de> {
    de: &'a mut Deserializer<'de>,
}

impl Key<'_, '_> {
    /// A key read as a number or boolean (a map with integer keys), as serde_json reads
    /// them: the text inside the quotes.
    fn parse<T: std::str::FromStr>(&mut self) -> Result<T> {
        let parsed = match self.de.read_str()? {
            Str::Borrowed(s) => s.parse(),
            Str::Owned(s) => s.parse(),
        };
        parsed.map_err(|_| self.de.error(Problem::InvalidNumber))
    }
}

macro_rules! parsed_key {
    ($($method:ident $ty:ty => $visit:ident,)*) => {
        $(
            fn $method<V: Visitor<'de>>(mut self, visitor: V) -> Result<V::Value> {
                let value = self.parse::<$ty>()?;
                visitor.$visit(value).map_err(|e| self.de.fix(e))
            }
        )*
    };
}

impl<'de> de::Deserializer<'de> for Key<'_, 'de> {
    type Error = Error;

    #[inline]
    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.de.visit_str(visitor).map_err(|e| self.de.fix(e))
    }

    #[inline]
    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_any(visitor)
    }

    #[inline]
    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.deserialize_any(visitor)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        self.de.skip_str()?;
        visitor.visit_unit()
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        // The opening quote is consumed: step back so the variant is read as a string.
        self.de.pos -= 1;
        visitor
            .visit_enum(UnitVariantAccess { de: self.de })
            .map_err(|e| self.de.fix(e))
    }

    parsed_key! {
        deserialize_bool bool => visit_bool,
        deserialize_i8 i8 => visit_i8,
        deserialize_i16 i16 => visit_i16,
        deserialize_i32 i32 => visit_i32,
        deserialize_i64 i64 => visit_i64,
        deserialize_i128 i128 => visit_i128,
        deserialize_u8 u8 => visit_u8,
        deserialize_u16 u16 => visit_u16,
        deserialize_u32 u32 => visit_u32,
        deserialize_u64 u64 => visit_u64,
        deserialize_u128 u128 => visit_u128,
        deserialize_f32 f32 => visit_f32,
        deserialize_f64 f64 => visit_f64,
    }

    forward_to_deserialize_any! {
        char string bytes byte_buf unit unit_struct seq tuple tuple_struct map struct
    }
}

/// An enum written `{"Variant": value}`, its `{` consumed.
struct VariantAccess<'a, 'de> {
    de: &'a mut Deserializer<'de>,
}

impl<'de> de::EnumAccess<'de> for VariantAccess<'_, 'de> {
    type Error = Error;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self)> {
        let variant = seed.deserialize(&mut *self.de)?;
        self.de.colon()?;
        Ok((variant, self))
    }
}

impl<'de> de::VariantAccess<'de> for VariantAccess<'_, 'de> {
    type Error = Error;

    fn unit_variant(self) -> Result<()> {
        de::Deserialize::deserialize(self.de)
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value> {
        seed.deserialize(self.de)
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, visitor: V) -> Result<V::Value> {
        de::Deserializer::deserialize_seq(self.de, visitor)
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value> {
        de::Deserializer::deserialize_struct(self.de, "", fields, visitor)
    }
}

/// An enum written `"Variant"`.
struct UnitVariantAccess<'a, 'de> {
    de: &'a mut Deserializer<'de>,
}

impl<'de> de::EnumAccess<'de> for UnitVariantAccess<'_, 'de> {
    type Error = Error;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self)> {
        let variant = seed.deserialize(&mut *self.de)?;
        Ok((variant, self))
    }
}

impl<'de> de::VariantAccess<'de> for UnitVariantAccess<'_, 'de> {
    type Error = Error;

    fn unit_variant(self) -> Result<()> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, _seed: T) -> Result<T::Value> {
        Err(de::Error::invalid_type(
            Unexpected::UnitVariant,
            &"newtype variant",
        ))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, _visitor: V) -> Result<V::Value> {
        Err(de::Error::invalid_type(
            Unexpected::UnitVariant,
            &"tuple variant",
        ))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value> {
        Err(de::Error::invalid_type(
            Unexpected::UnitVariant,
            &"struct variant",
        ))
    }
}

#[cfg(test)]
mod tests;
