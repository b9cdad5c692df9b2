//! The reader on its own (a table of inputs), and against `serde_json` (the reader it
//! replaces): on every text, both read the same value or both refuse it.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde::de::IgnoredAny;
use serde_json::Value;
use serde_json::value::RawValue;

use super::*;
use crate::pod::{Metadata, PodSpec, Text};
use crate::workload::{self, PodKind};

/// What our reader and serde_json make of `text` as a `T`: equal values, or both refuse.
fn agree<'a, T>(text: &'a str) -> std::result::Result<Option<T>, String>
where
    T: Deserialize<'a> + Close + fmt::Debug,
{
    let ours = from_str::<T>(text);
    let theirs = serde_json::from_str::<T>(text);
    match (ours, theirs) {
        (Ok(a), Ok(b)) if a.close(&b) => Ok(Some(a)),
        (Err(_), Err(_)) => Ok(None),
        (a, b) => Err(format!("{text:?}: ours {a:?}, serde_json {b:?}")),
    }
}

/// Equality, but for floats: ours are correctly rounded (`str::parse`), serde_json's (without
/// its `float_roundtrip` feature) may be one unit in the last place off for a long
/// significand, so floats agree within two units in the last place.
trait Close {
    fn close(&self, other: &Self) -> bool;
}

fn close_f64(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 2.0 * f64::EPSILON * a.abs().max(b.abs())
}

impl Close for Value {
    fn close(&self, other: &Self) -> bool {
        match (self, other) {
            (Value::Number(a), Value::Number(b)) if a.is_f64() && b.is_f64() => {
                close_f64(a.as_f64().unwrap_or(0.0), b.as_f64().unwrap_or(1.0))
            }
            (Value::Array(a), Value::Array(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(a, b)| a.close(b))
            }
            (Value::Object(a), Value::Object(b)) => {
                a.len() == b.len()
                    && a.iter()
                        .zip(b)
                        .all(|((ka, a), (kb, b))| ka == kb && a.close(b))
            }
            (a, b) => a == b,
        }
    }
}

impl Close for f64 {
    fn close(&self, other: &Self) -> bool {
        close_f64(*self, *other)
    }
}

impl<T: Close> Close for Option<T> {
    fn close(&self, other: &Self) -> bool {
        match (self, other) {
            (Some(a), Some(b)) => a.close(b),
            (a, b) => a.is_none() && b.is_none(),
        }
    }
}

impl<K: PartialEq, V: Close> Close for BTreeMap<K, V> {
    fn close(&self, other: &Self) -> bool {
        self.len() == other.len()
            && self
                .iter()
                .zip(other)
                .all(|((ka, a), (kb, b))| ka == kb && a.close(b))
    }
}

/// Types without floats: plain equality.
macro_rules! exact {
    ($($t:ty),* $(,)?) => {
        $(impl Close for $t {
            fn close(&self, other: &Self) -> bool {
                self == other
            }
        })*
    };
}

exact!(
    IgnoredAny,
    i64,
    u64,
    i32,
    u8,
    bool,
    String,
    Vec<Text<'_>>,
    Text<'_>,
    PodSpec<'_>,
    Metadata<'_>
);

fn value(text: &str) -> Option<Value> {
    match agree::<Value>(text) {
        Ok(v) => v,
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn reads_every_kind_of_value_as_serde_json_does() {
    for text in [
        "null",
        "true",
        "false",
        " \t\r\n true \n",
        "0",
        "-0",
        "1",
        "-1",
        "123456789",
        "18446744073709551615",
        "18446744073709551616",
        "-9223372036854775808",
        "-9223372036854775809",
        "99999999999999999999999999",
        "1.5",
        "-1.5e3",
        "1E+2",
        "1e-2",
        "0.000001",
        "2.5E-300",
        r#""""#,
        r#""plain""#,
        r#""a\"b\\c\/d\be\ff\ng\rh\ti""#,
        r#""\u0041\u00e9\u4e2d\ud83d\ude00""#,
        r#""\u0000""#,
        r#""é中😀""#,
        "[]",
        "[1,2,[3,[4,{}]]]",
        " [ 1 , 2 ] ",
        "{}",
        r#"{"a":1,"b":[true,null],"c":{"d":"e"}}"#,
        r#"{"a":1,"a":2}"#,
        r#"{ "k" : "v" , "\u006b" : 3 }"#,
    ] {
        assert!(value(text).is_some(), "{text}");
    }
}

#[test]
fn refuses_what_serde_json_refuses() {
    for text in [
        "",
        " ",
        "nul",
        "nulll",
        "tru",
        "True",
        "NaN",
        "Infinity",
        "-",
        "+1",
        "01",
        "-01",
        "1.",
        ".5",
        "1e",
        "1e+",
        "1.e5",
        "0x10",
        "1e400",
        "-1e400",
        "\"",
        "\"abc",
        "\"a\\",
        "\"\\x\"",
        "\"\\u12\"",
        "\"\\u12g4\"",
        "\"\\ud800\"",
        "\"\\ud800x\"",
        "\"\\ud800\\n\"",
        "\"\\ud800\\u0041\"",
        "\"\\udc00\"",
        "\"\\udc00\\ud800\"",
        "\"tab\there\"",
        "\"new\nline\"",
        "\"\u{1}\"",
        "[",
        "[1",
        "[1,",
        "[1,]",
        "[,1]",
        "[1 2]",
        "]",
        "{",
        "{\"a\"",
        "{\"a\":",
        "{\"a\":1",
        "{\"a\":1,}",
        "{\"a\" 1}",
        "{a:1}",
        "{1:1}",
        "{\"a\":1 \"b\":2}",
        "{\"a\":1]",
        "[1}",
        "1 2",
        "{} x",
        "[]]",
        "\"a\" \"b\"",
    ] {
        assert!(value(text).is_none(), "{text:?} was read");
        assert!(agree::<IgnoredAny>(text).is_ok(), "{text:?}");
        // A number out of range and lone surrogates are refused only when read.
        if !text.ends_with("e400") && !text.contains("\\ud") {
            assert!(
                from_str::<IgnoredAny>(text).is_err(),
                "{text:?} was skipped"
            );
        }
    }
}

#[test]
fn skipped_values_are_checked_as_serde_json_checks_them() {
    // Nobody reads them, but they must be JSON: serde_json's grammar, with the escapes'
    // syntax checked but not whether surrogates pair up.
    for text in [
        r#"{"x":[1,{"y":"\ud800"}],"a":1}"#,
        r#"{"x":1e999,"a":1}"#,
        r#"{"x":"\u00zz","a":1}"#,
        r#"{"x":[1,],"a":1}"#,
        r#"{"x":{"y" 1},"a":1}"#,
        r#"{"x":{,},"a":1}"#,
        r#"{"x":{"y":1,},"a":1}"#,
        r#"{"x":-,"a":1}"#,
        r#"{"x":[[[]]],"a":1}"#,
        "{\"x\":\"\t\",\"a\":1}",
        r#"{"x":tru,"a":1}"#,
        r#"{"x":[1 2],"a":1}"#,
    ] {
        #[derive(Debug, PartialEq, Deserialize)]
        struct A {
            a: i64,
        }
        impl Close for A {
            fn close(&self, other: &Self) -> bool {
                self == other
            }
        }
        assert!(agree::<A>(text).is_ok(), "{text}");
        assert!(
            agree::<BTreeMap<String, IgnoredAny>>(text).is_ok(),
            "{text}"
        );
        assert!(agree::<Value>(text).is_ok(), "{text}");
    }
}

#[test]
fn strings_are_borrowed_unless_escaped() {
    let texts: Vec<Text<'_>> = from_str(r#"["plain", "esc\naped", "", "\u00e9", "é"]"#).unwrap();
    assert_eq!(texts, ["plain", "esc\naped", "", "é", "é"]);
    let borrowed: Vec<bool> = texts.iter().map(Text::is_borrowed).collect();
    assert_eq!(borrowed, [true, false, true, false, true]);
    // Keys too: a borrowed-only visitor reads plain keys and refuses escaped ones.
    let map: BTreeMap<&str, &str> = from_str(r#"{"a":"b","cd":"ef"}"#).unwrap();
    assert_eq!(map.get("cd"), Some(&"ef"));
    assert!(from_str::<BTreeMap<&str, &str>>(r#"{"\u0061":"b"}"#).is_err());
}

#[test]
fn the_scan_finds_the_first_quote_backslash_or_control_character() {
    let naive =
        |b: &[u8], i: usize| (i..b.len()).find(|&j| matches!(b[j], b'"' | b'\\' | 0..=0x1f));
    for len in 0..40 {
        for at in 0..=len {
            for special in [b'"', b'\\', 0, 0x1f, b'\n'] {
                for filler in [b'a', 0x20, 0x7f, 0x80, 0xff, b'!', b'#', b'[', b']'] {
                    let mut bytes = vec![filler; len];
                    if at < len {
                        bytes[at] = special;
                    }
                    for start in 0..=len {
                        let expected = naive(&bytes, start).unwrap_or(len);
                        assert_eq!(scan(&bytes, start), expected, "{bytes:?} from {start}");
                    }
                }
            }
        }
    }
}

#[test]
fn numbers_are_read_as_serde_json_reads_them() {
    assert_eq!(from_str::<i64>("-9223372036854775808").unwrap(), i64::MIN);
    assert_eq!(from_str::<u64>("18446744073709551615").unwrap(), u64::MAX);
    assert_eq!(from_str::<i64>("1001").unwrap(), 1001);
    assert_eq!(from_str::<f64>("1.5e3").unwrap(), 1500.0);
    assert_eq!(from_str::<f64>("7").unwrap(), 7.0);
    assert_eq!(from_str::<f64>("0.1").unwrap(), 0.1);
    assert_eq!(from_str::<i32>("-7").unwrap(), -7);
    for (text, ours) in [
        (
            "1.0",
            "invalid type: floating point `1.0`, expected i64 at line 1 column 3",
        ),
        (
            "-0",
            "invalid type: floating point `-0.0`, expected i64 at line 1 column 2",
        ),
        (
            "1e2",
            "invalid type: floating point `100.0`, expected i64 at line 1 column 3",
        ),
        (
            "9223372036854775808",
            "invalid value: integer `9223372036854775808`, expected i64 at line 1 column 19",
        ),
        (
            "\"1\"",
            "invalid type: string \"1\", expected i64 at line 1 column 3",
        ),
        (
            "null",
            "invalid type: null, expected i64 at line 1 column 4",
        ),
    ] {
        let err = from_str::<i64>(text).unwrap_err().to_string();
        let theirs = serde_json::from_str::<i64>(text).unwrap_err().to_string();
        assert_eq!((err.as_str(), theirs.as_str()), (ours, ours), "{text}");
    }
    assert!(from_str::<u8>("256").is_err());
    assert!(from_str::<u64>("-1").is_err());
}

#[test]
fn errors_say_what_and_where_as_serde_json_does() {
    for text in [
        "",
        "[1,]",
        "{\"a\":1,}",
        "[1 2]",
        "{\"a\" 1}",
        "{1:1}",
        "\"\\x\"",
        "\"a\nb\"",
        "[1]x",
        "\n\n  tru",
        "01",
        "1e400",
        "\"\\ud800\"",
        "{\"a\":[\n1,\n\"x\"}",
    ] {
        let ours = from_str::<Value>(text).unwrap_err().to_string();
        let theirs = serde_json::from_str::<Value>(text).unwrap_err().to_string();
        assert_eq!(ours, theirs, "{text:?}");
    }
    #[derive(Debug, Deserialize)]
    #[allow(dead_code, reason = "read for its errors")]
    struct Doc {
        list: Vec<String>,
        #[serde(default)]
        n: Option<u8>,
    }
    for text in [
        r#"{"list":"x"}"#,
        r#"{"list":[],"list":[]}"#,
        r#"{"list":[1]}"#,
        r#"{"n":1}"#,
        r#"{"list":[],"n":300}"#,
        r#"{"list":[],"n":{}}"#,
        r#"[["a"], "x"]"#,
    ] {
        let ours = from_str::<Doc>(text).unwrap_err().to_string();
        let theirs = serde_json::from_str::<Doc>(text).unwrap_err().to_string();
        assert_eq!(ours, theirs, "{text:?}");
    }
    let err = from_str::<Doc>(r#"{"list":"x"}"#).unwrap_err();
    assert_eq!((err.line(), err.column()), (1, 11));
    assert!(matches!(err.problem(), Problem::Invalid(_)));
}

/// Every byte up to `!` (whitespace, the control characters, space itself, and the first
/// byte the fast path of [`Deserializer::ws`] takes for a token) put into every gap of a
/// compact text, alone and as runs: read, skipped and refused with serde_json's errors,
/// positions included.
#[test]
fn bytes_around_space_between_tokens_read_as_with_serde_json() {
    #[derive(Debug, Deserialize)]
    #[allow(dead_code, reason = "read for its errors")]
    struct Doc {
        a: Vec<Value>,
        c: Option<bool>,
        d: BTreeMap<String, i64>,
    }
    let compact = r#"{"a":[1,"x",{"b":null},[],{}],"c":true,"d":{"e":-2}}"#;
    for b in 0..=b'!' {
        let gap = char::from(b);
        for run in [gap.to_string(), format!("{gap}{gap}"), format!(" {gap}\n")] {
            for at in 0..=compact.len() {
                let text = format!("{}{run}{}", &compact[..at], &compact[at..]);
                let value = (
                    from_str::<Value>(&text),
                    serde_json::from_str::<Value>(&text),
                );
                match value {
                    (Ok(ours), Ok(theirs)) => assert_eq!(ours, theirs, "{text:?}"),
                    (Err(ours), Err(theirs)) => {
                        assert_eq!(ours.to_string(), theirs.to_string(), "{text:?}");
                    }
                    (ours, theirs) => panic!("{text:?}: ours {ours:?}, serde_json {theirs:?}"),
                }
                let doc = (from_str::<Doc>(&text), serde_json::from_str::<Doc>(&text));
                match doc {
                    (Ok(_), Ok(_)) => {}
                    (Err(ours), Err(theirs)) => {
                        assert_eq!(ours.to_string(), theirs.to_string(), "{text:?}");
                    }
                    (ours, theirs) => panic!("{text:?}: ours {ours:?}, serde_json {theirs:?}"),
                }
                assert_eq!(
                    from_str::<IgnoredAny>(&text).is_ok(),
                    serde_json::from_str::<IgnoredAny>(&text).is_ok(),
                    "{text:?}"
                );
            }
        }
    }
}

#[test]
fn nesting_is_limited() {
    let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    assert!(from_str::<Value>(&nested(127)).is_ok());
    assert!(serde_json::from_str::<Value>(&nested(127)).is_ok());
    for n in [128, 129, 100_000] {
        let err = from_str::<Value>(&nested(n)).unwrap_err();
        assert_eq!(err.problem(), &Problem::TooDeep, "{n}");
        assert!(
            err.to_string().starts_with("recursion limit exceeded"),
            "{err}"
        );
        assert!(serde_json::from_str::<Value>(&nested(n)).is_err());
        // Skipped values too (serde_json skips any depth: the one difference on purpose).
        let err = from_str::<IgnoredAny>(&nested(n)).unwrap_err();
        assert_eq!(err.problem(), &Problem::TooDeep, "{n}");
        let objects = format!("{}1{}", r#"{"a":"#.repeat(n), "}".repeat(n));
        assert!(from_str::<IgnoredAny>(&objects).is_err());
    }
    assert!(from_str::<IgnoredAny>(&nested(127)).is_ok());
    // The limit counts from the top: a raw capture inside an object has less room.
    #[derive(Deserialize)]
    struct Holder<'a> {
        #[serde(borrow)]
        #[allow(dead_code, reason = "read for its errors")]
        x: Raw<'a>,
    }
    assert!(from_str::<Holder<'_>>(&format!(r#"{{"x":{}}}"#, nested(126))).is_ok());
    assert!(from_str::<Holder<'_>>(&format!(r#"{{"x":{}}}"#, nested(127))).is_err());
}

#[test]
fn raw_values_are_the_exact_text() {
    let text = r#"{ "a" : {"b": [1, "x\"y"] } , "c": null, "d" : 12.5e1 ,"e":"s"}"#;
    let ours: BTreeMap<&str, Option<Raw<'_>>> = from_str(text).unwrap();
    let theirs: BTreeMap<&str, Option<&RawValue>> = serde_json::from_str(text).unwrap();
    assert_eq!(ours.len(), theirs.len());
    for (key, raw) in &ours {
        assert_eq!(raw.map(Raw::get), theirs[key].map(RawValue::get), "{key}");
    }
    assert_eq!(ours["a"].unwrap().get(), r#"{"b": [1, "x\"y"] }"#);
    assert_eq!(ours["c"], None);
    let raw: Raw<'_> = from_str(" [1,2] ").unwrap();
    assert_eq!(raw.get(), "[1,2]");
    assert_eq!(format!("{raw:?}"), "[1,2]");
    for bad in ["[1,2", "{\"a\":}", "", "[1] 2"] {
        assert!(from_str::<Raw<'_>>(bad).is_err(), "{bad}");
    }
    // Only this reader makes one.
    assert!(serde_json::from_str::<Raw<'_>>("1").is_err());
}

#[test]
fn options_structs_and_enums_read_as_with_serde_json() {
    #[derive(Debug, PartialEq, Deserialize)]
    enum E {
        Unit,
        New(i64),
        Tuple(i64, bool),
        Struct { a: String },
    }
    #[derive(Debug, PartialEq, Deserialize)]
    #[serde(rename_all = "camelCase", deny_unknown_fields)]
    struct S {
        #[serde(default)]
        opt: Option<String>,
        #[serde(default)]
        list: Vec<E>,
        #[serde(default)]
        keys: BTreeMap<i64, bool>,
        #[serde(default)]
        flags: BTreeMap<bool, u8>,
        #[serde(default)]
        unit: (),
        #[serde(default)]
        pair: Option<(u8, char)>,
    }
    impl Close for S {
        fn close(&self, other: &Self) -> bool {
            self == other
        }
    }
    for text in [
        r#"{}"#,
        r#"{"opt":null}"#,
        r#"{"opt":"x"}"#,
        r#"{"opt":1}"#,
        r#"{"list":["Unit",{"New":3},{"Tuple":[1,true]},{"Struct":{"a":"b"}}]}"#,
        r#"{"list":[{"Unit":null}]}"#,
        r#"{"list":["New"]}"#,
        r#"{"list":["Nope"]}"#,
        r#"{"list":[{"New":1,"Unit":null}]}"#,
        r#"{"list":[{}]}"#,
        r#"{"list":[7]}"#,
        r#"{"keys":{"1":true,"-2":false}}"#,
        r#"{"keys":{"x":true}}"#,
        r#"{"flags":{"true":1}}"#,
        r#"{"unit":null}"#,
        r#"{"unit":0}"#,
        r#"{"pair":[1,"c"]}"#,
        r#"{"pair":[1,"cd"]}"#,
        r#"{"pair":[1]}"#,
        r#"{"pair":[1,"c",2]}"#,
        r#"{"other":1}"#,
        r#"{"opt":"a","opt":"b"}"#,
        r#"["x"]"#,
        r#"["x",[]]"#,
        r#"["x",[],{},{},null,null,1]"#,
    ] {
        if let Err(e) = agree::<S>(text) {
            panic!("{e}");
        }
    }
}

#[test]
fn the_pod_model_reads_as_with_serde_json() {
    let pod = r#"{
        "metadata": {"name": "p", "annotations": {"a": "b", "homestead.dev/run-as": "ada"},
                     "labels": {"homestead.dev/no-datasets": "", "homestead.dev/user": "a\u0064a"},
                     "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "controller": true}]},
        "spec": {"hostPID": true, "securityContext": {"runAsUser": 1001, "supplementalGroups": [1, 2]},
                 "volumes": [{"name": "h", "hostPath": {"path": "/x"}}, {"name": "n", "nfs": {}}],
                 "containers": [{"name": "main", "env": [{"name": "A", "value": "1"}],
                                 "volumeMounts": [{"name": "h", "mountPath": "/y", "subPath": "a\/b"}]}]}
    }"#;
    let ours = workload::parse(PodKind::Pod, pod).unwrap();
    let mut de = serde_json::Deserializer::from_str(pod);
    let theirs = workload::deserialize(PodKind::Pod, &mut de).unwrap();
    assert_eq!(ours, theirs);
    assert_eq!(ours.user_label(), Some("ada"));
}

// ---- the differential property tests ----

/// A tiny generator of formatting choices (whitespace, escapes), seeded by proptest.
struct Choices(u64);

impl Choices {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        self.0 >> 33
    }

    fn one_in(&mut self, n: u64) -> bool {
        self.next().is_multiple_of(n)
    }

    fn ws(&mut self, out: &mut String) {
        if self.one_in(4) {
            for _ in 0..=self.next() % 3 {
                out.push([' ', '\n', '\t', '\r'][(self.next() % 4) as usize]);
            }
        }
    }
}

/// Writes `value` as JSON, with random whitespace and random (valid) escapes.
fn write(value: &Value, choices: &mut Choices, out: &mut String) {
    choices.ws(out);
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_str(s, choices, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(item, choices, out);
            }
            choices.ws(out);
            out.push(']');
        }
        Value::Object(members) => {
            out.push('{');
            for (i, (key, item)) in members.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                choices.ws(out);
                write_str(key, choices, out);
                choices.ws(out);
                out.push(':');
                write(item, choices, out);
            }
            choices.ws(out);
            out.push('}');
        }
    }
    choices.ws(out);
}

fn write_str(s: &str, choices: &mut Choices, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || choices.one_in(6) => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    if choices.one_in(2) {
                        out.push_str(&format!("\\u{unit:04x}"));
                    } else {
                        out.push_str(&format!("\\u{unit:04X}"));
                    }
                }
            }
            '/' if choices.one_in(2) => out.push_str("\\/"),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn text_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "[a-z]{1,12}",
        "[ -~]{0,20}",
        "\\PC{0,8}",
        prop::collection::vec(any::<char>(), 0..6).prop_map(|c| c.into_iter().collect()),
        Just("homestead.dev/run-as".to_owned()),
        Just("homestead.dev/user".to_owned()),
        Just("a\"b\\c/d\n\u{0}\u{1f}é😀".to_owned()),
    ]
}

fn number_strategy() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1000i64..1000).prop_map(Value::from),
        // Floats whose decimal text serde_json reads exactly (a small significand).
        (any::<i32>(), 1u32..4)
            .prop_map(|(m, d)| Value::from(f64::from(m) / f64::from(10u32.pow(d)))),
    ]
}

fn any_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number_strategy(),
        text_strategy().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((text_strategy(), inner), 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A value of the right type for a field most of the time, anything now and then.
fn field<S: Strategy<Value = Value> + 'static>(typed: S) -> BoxedStrategy<Value> {
    prop_oneof![8 => typed, 1 => Just(Value::Null), 1 => any_value()].boxed()
}

/// An object with some of `fields` (each with its strategy) and random other members.
fn object(fields: Vec<(&'static str, BoxedStrategy<Value>)>) -> BoxedStrategy<Value> {
    let members: Vec<BoxedStrategy<Option<(String, Value)>>> = fields
        .into_iter()
        .map(|(name, strategy)| {
            prop::option::weighted(0.7, strategy.prop_map(move |v| (name.to_owned(), v))).boxed()
        })
        .collect();
    (
        members,
        prop::collection::vec((text_strategy(), any_value()), 0..3),
    )
        .prop_map(|(known, extra)| {
            let mut map = serde_json::Map::new();
            for (k, v) in extra.into_iter().chain(known.into_iter().flatten()) {
                map.insert(k, v);
            }
            Value::Object(map)
        })
        .boxed()
}

fn string() -> BoxedStrategy<Value> {
    field(text_strategy().prop_map(Value::String))
}

fn boolean() -> BoxedStrategy<Value> {
    field(any::<bool>().prop_map(Value::Bool))
}

fn integer() -> BoxedStrategy<Value> {
    field(number_strategy())
}

fn list(entry: BoxedStrategy<Value>) -> BoxedStrategy<Value> {
    field(prop::collection::vec(entry, 0..4).prop_map(Value::Array))
}

fn string_map() -> BoxedStrategy<Value> {
    let key = prop_oneof![
        3 => text_strategy(),
        1 => Just("homestead.dev/run-as".to_owned()),
        1 => Just("homestead.dev/user".to_owned()),
        1 => Just("homestead.dev/no-datasets".to_owned()),
    ];
    field(
        prop::collection::vec((key, string()), 0..4)
            .prop_map(|m| Value::Object(m.into_iter().collect())),
    )
}

fn security_context() -> BoxedStrategy<Value> {
    field(object(vec![
        ("runAsUser", integer()),
        ("runAsGroup", integer()),
        ("runAsNonRoot", boolean()),
        ("privileged", boolean()),
        ("allowPrivilegeEscalation", boolean()),
        ("procMount", string()),
        ("fsGroup", integer()),
        ("supplementalGroups", list(integer())),
        (
            "windowsOptions",
            field(object(vec![("hostProcess", boolean())])),
        ),
        ("capabilities", field(object(vec![("add", list(string()))]))),
    ]))
}

fn container() -> BoxedStrategy<Value> {
    object(vec![
        ("name", string()),
        ("securityContext", security_context()),
        (
            "volumeMounts",
            list(object(vec![
                ("name", string()),
                ("mountPath", string()),
                ("subPath", string()),
                ("readOnly", boolean()),
            ])),
        ),
        (
            "env",
            list(object(vec![
                ("name", string()),
                ("value", string()),
                ("valueFrom", any_value().boxed()),
            ])),
        ),
    ])
}

fn volume() -> BoxedStrategy<Value> {
    object(vec![
        ("name", string()),
        ("hostPath", field(object(vec![("path", string())]))),
        (
            "persistentVolumeClaim",
            field(object(vec![
                ("claimName", string()),
                ("readOnly", boolean()),
            ])),
        ),
        ("csi", field(object(vec![("driver", string())]))),
        ("emptyDir", any_value().boxed()),
        ("nfs", any_value().boxed()),
        (
            "ephemeral",
            field(object(vec![(
                "volumeClaimTemplate",
                field(object(vec![(
                    "spec",
                    field(object(vec![
                        ("volumeName", string()),
                        ("dataSource", any_value().boxed()),
                    ])),
                )])),
            )])),
        ),
    ])
}

fn pod() -> BoxedStrategy<Value> {
    object(vec![
        (
            "metadata",
            field(object(vec![
                ("name", string()),
                ("annotations", string_map()),
                ("labels", string_map()),
                (
                    "ownerReferences",
                    list(object(vec![
                        ("apiVersion", string()),
                        ("kind", string()),
                        ("controller", boolean()),
                    ])),
                ),
            ])),
        ),
        (
            "spec",
            field(object(vec![
                ("securityContext", security_context()),
                ("hostNetwork", boolean()),
                ("hostPID", boolean()),
                ("volumes", list(volume())),
                ("containers", list(container())),
                ("initContainers", list(container())),
            ])),
        ),
    ])
}

/// A workload (Deployment) around a pod template.
fn deployment() -> BoxedStrategy<Value> {
    object(vec![
        ("metadata", any_value().boxed()),
        ("spec", field(object(vec![("template", field(pod()))]))),
    ])
}

/// The first `"`, `\` or control character from `start`, one byte at a time.
fn naive_scan(bytes: &[u8], start: usize) -> usize {
    (start..bytes.len())
        .find(|&j| matches!(bytes[j], b'"' | b'\\' | 0..=0x1f))
        .unwrap_or(bytes.len())
}

/// Every byte value.
const ALL_BYTES: [u8; 256] = {
    let mut all = [0; 256];
    let mut i = 0;
    while i < 256 {
        all[i] = i as u8;
        i += 1;
    }
    all
};

/// The scan, and each of its paths on its own (the SIMD blocks, the words), against the
/// naive scan: every byte value as the one to find and as the filler around it, at every
/// position of texts up to 80 bytes, the scan started at every offset.
#[test]
fn every_path_of_the_scan_finds_what_the_naive_scan_finds() {
    let check = |bytes: &[u8], start: usize| {
        let expected = naive_scan(bytes, start);
        assert_eq!(scan(bytes, start), expected, "{bytes:?} from {start}");
        assert_eq!(
            scan_words(bytes, start),
            expected,
            "words: {bytes:?} from {start}"
        );
        #[cfg(all(target_arch = "x86_64", target_feature = "sse2"))]
        match x86::scan_blocks(bytes, start) {
            Ok(found) => assert_eq!(found, expected, "blocks: {bytes:?} from {start}"),
            Err(rest) => {
                assert!(
                    bytes.len() - rest < 16 && rest >= start,
                    "{bytes:?} from {start}"
                );
                assert!(
                    expected >= rest,
                    "blocks passed a match: {bytes:?} from {start}"
                );
            }
        }
    };
    // Every byte value on a plain filler, at every position and start (up to 40 bytes:
    // two blocks and a tail); the bytes to find at every position of texts up to 80.
    for len in 0..=80 {
        for at in 0..len {
            let specials: &[u8] = if len <= 40 {
                &ALL_BYTES
            } else {
                b"\"\\\x00\x1f\n"
            };
            for &special in specials {
                let mut bytes = vec![b'a'; len];
                bytes[at] = special;
                for start in 0..=at + 1 {
                    check(&bytes, start);
                }
            }
        }
    }
    // Every byte value as the filler, with and without a quote after it.
    for filler in 0..=255u8 {
        for len in 0..=40 {
            let mut bytes = vec![filler; len];
            for start in 0..=len {
                check(&bytes, start);
            }
            bytes.push(b'"');
            for start in 0..=len {
                check(&bytes, start);
            }
        }
    }
    // Two matches in one block or word: the first is found, wherever the second is.
    for first in 0..40 {
        for second in first + 1..48 {
            let mut bytes = vec![b'x'; 48];
            bytes[first] = b'\\';
            bytes[second] = 0;
            for start in 0..=first {
                check(&bytes, start);
            }
        }
    }
}

/// Strings read through every alignment of the body and every length that crosses the
/// SIMD blocks: borrowed, unescaped or refused as serde_json reads them.
#[test]
fn strings_read_at_every_alignment_and_length() {
    for pad in 0..=16 {
        for len in 0..=70 {
            let content: String = (0..len)
                .map(|i| char::from(b'a' + (i % 26) as u8))
                .collect();
            let plain = format!("{}\"{content}\"", " ".repeat(pad));
            let read: Text<'_> = from_str(&plain).unwrap();
            assert!(read.is_borrowed() && read == content.as_str(), "{plain:?}");
            // The closing quote found by the SSE2 blocks or (in the last fewer than
            // sixteen bytes) out of line: as a value, a key, skipped, with an escape first.
            for after in 0..=17 {
                let spaces = " ".repeat(after);
                let value = format!("{plain}{spaces}");
                let read: Text<'_> = from_str(&value).unwrap();
                assert!(read.is_borrowed() && read == content.as_str(), "{value:?}");
                from_str::<IgnoredAny>(&value).unwrap();
                let key = format!("{{\"{content}\":[{plain}]}}{spaces}");
                let map: BTreeMap<&str, Vec<&str>> = from_str(&key).unwrap();
                assert_eq!(map.get(content.as_str()), Some(&vec![&*content]), "{key:?}");
                from_str::<IgnoredAny>(&key).unwrap();
                let escaped = format!("\"\\t{content}\"{spaces}");
                let read: Text<'_> = from_str(&escaped).unwrap();
                assert_eq!(read, format!("\t{content}").as_str(), "{escaped:?}");
                from_str::<IgnoredAny>(&escaped).unwrap();
            }
            for at in 0..len {
                let escaped = format!(
                    "{}\"{}\\n{}\"",
                    " ".repeat(pad),
                    &content[..at],
                    &content[at..]
                );
                assert!(
                    agree::<Text<'_>>(&escaped).is_ok_and(|t| t.is_some()),
                    "{escaped:?}"
                );
                let control = format!(
                    "{}\"{}\t{}\"",
                    " ".repeat(pad),
                    &content[..at],
                    &content[at..]
                );
                assert!(
                    agree::<Text<'_>>(&control).is_ok_and(|t| t.is_none()),
                    "{control:?}"
                );
                assert!(
                    agree::<IgnoredAny>(&control).is_ok_and(|t| t.is_none()),
                    "{control:?}"
                );
                let unterminated = format!("{}\"{}", " ".repeat(pad), &content[..at]);
                assert!(
                    agree::<Text<'_>>(&unterminated).is_ok_and(|t| t.is_none()),
                    "{unterminated:?}"
                );
                assert!(
                    agree::<IgnoredAny>(&unterminated).is_ok_and(|t| t.is_none()),
                    "{unterminated:?}"
                );
            }
        }
    }
}

/// Breaks a text now and then: a byte removed, one inserted, or the end cut off (at
/// ASCII bytes only, so the text stays UTF-8).
fn mutate(text: &str, choices: &mut Choices) -> String {
    let mut bytes = text.as_bytes().to_vec();
    let ascii: Vec<usize> = (0..bytes.len()).filter(|&i| bytes[i].is_ascii()).collect();
    if ascii.is_empty() {
        return text.to_owned();
    }
    let at = ascii[(choices.next() as usize) % ascii.len()];
    match choices.next() % 3 {
        0 => {
            bytes.remove(at);
        }
        1 => {
            let inserts = b"{}[]\":,\\ nu01-.eE\t/x";
            let insert = inserts[(choices.next() as usize) % inserts.len()];
            bytes.insert(at, insert);
        }
        _ => bytes.truncate(at),
    }
    String::from_utf8(bytes).unwrap_or_else(|_| text.to_owned())
}

/// Both readers on a pod (or template) of `kind`: equal pods, or both refuse.
fn same_pod(kind: PodKind, text: &str) -> std::result::Result<(), TestCaseError> {
    let ours = workload::parse(kind, text);
    let mut de = serde_json::Deserializer::from_str(text);
    let theirs = workload::deserialize(kind, &mut de).and_then(|pod| de.end().map(|()| pod));
    match (ours, theirs) {
        (Ok(a), Ok(b)) => prop_assert_eq!(a, b, "{}", text),
        (Err(_), Err(_)) => {}
        (a, b) => prop_assert!(false, "{text}: ours {a:?}, serde_json {b:?}"),
    }
    Ok(())
}

fn same<'a, T>(text: &'a str) -> std::result::Result<(), TestCaseError>
where
    T: Deserialize<'a> + Close + fmt::Debug,
{
    agree::<T>(text).map(|_| ()).map_err(TestCaseError::fail)
}

/// Raw captures of every member against serde_json's `RawValue`.
fn same_raw(text: &str) -> std::result::Result<(), TestCaseError> {
    let ours = from_str::<BTreeMap<String, Option<Raw<'_>>>>(text);
    let theirs = serde_json::from_str::<BTreeMap<String, Option<&RawValue>>>(text);
    match (ours, theirs) {
        (Ok(a), Ok(b)) => {
            let a: Vec<_> = a.iter().map(|(k, v)| (k, v.map(Raw::get))).collect();
            let b: Vec<_> = b.iter().map(|(k, v)| (k, v.map(RawValue::get))).collect();
            prop_assert_eq!(a, b, "{}", text);
        }
        (Err(_), Err(_)) => {}
        (a, b) => prop_assert!(false, "{text}: ours {a:?}, serde_json {b:?}"),
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_json_reads_as_with_serde_json(value in any_value(), seed in any::<u64>(), broken in any::<bool>()) {
        let mut choices = Choices(seed);
        let mut text = String::new();
        write(&value, &mut choices, &mut text);
        if broken {
            text = mutate(&text, &mut choices);
        } else {
            prop_assert_eq!(from_str::<Value>(&text).ok(), Some(value.clone()), "{}", text);
        }
        same::<Value>(&text)?;
        same::<IgnoredAny>(&text)?;
        same::<Option<Vec<Text<'_>>>>(&text)?;
        same::<Option<BTreeMap<Text<'_>, Value>>>(&text)?;
        same::<Option<i64>>(&text)?;
        same::<Option<f64>>(&text)?;
        same_raw(&text)?;
    }

    #[test]
    fn pods_read_as_with_serde_json(value in pod(), seed in any::<u64>(), broken in prop::bool::weighted(0.3)) {
        let mut choices = Choices(seed);
        let mut text = String::new();
        write(&value, &mut choices, &mut text);
        if broken {
            text = mutate(&text, &mut choices);
        }
        same_pod(PodKind::Pod, &text)?;
        same::<Option<Metadata<'_>>>(&text)?;
        same_raw(&text)?;
        let spec = value.get("spec").map(ToString::to_string).unwrap_or_default();
        same::<PodSpec<'_>>(&spec)?;
    }

    #[test]
    fn workloads_read_as_with_serde_json(value in deployment(), seed in any::<u64>(), broken in prop::bool::weighted(0.3)) {
        let mut choices = Choices(seed);
        let mut text = String::new();
        write(&value, &mut choices, &mut text);
        if broken {
            text = mutate(&text, &mut choices);
        }
        same_pod(PodKind::Deployment, &text)?;
        let ours = workload::guarded_text(PodKind::Deployment, &text).map(|raw| raw.map(|r| r.get().to_owned()));
        let theirs = {
            #[derive(Deserialize)]
            struct Holder<'a> {
                #[serde(default, borrow)]
                template: Option<&'a RawValue>,
            }
            #[derive(Deserialize)]
            struct Workload<'a> {
                #[serde(default, borrow)]
                spec: Option<Holder<'a>>,
            }
            serde_json::from_str::<Workload<'_>>(&text)
                .map(|w| w.spec.and_then(|h| h.template).map(|r| r.get().to_owned()))
        };
        prop_assert_eq!(ours.ok(), theirs.ok(), "{}", text);
    }
}
