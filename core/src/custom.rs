//! Configured workload kinds (`workloadKinds`): custom resources whose controllers make
//! pods from pod templates inside them, such as Kubeflow's `PyTorchJob`
//! (`/spec/pytorchReplicaSpecs/*/template`) or a Spark operator's `SparkApplication`
//! (`/spec/driver/template`, `/spec/executor/template`).
//!
//! A *pod template* here means what `core/v1` `PodTemplateSpec` is: an object with an
//! optional `metadata` (annotations, labels) and an optional `spec` (a `PodSpec`), from
//! which the kind's controller copies the metadata and spec of each pod it makes. Each is
//! stamped and validated exactly like a Deployment's `spec.template`. A pointer is RFC 6901
//! with one addition: a token `*` stands for every item of a list or every value of a map
//! (so a member literally named `*` cannot be addressed). A pointer that resolves to
//! nothing (an optional replica type left out) names no template; one that resolves to
//! `null` neither.
//!
//! These objects are not on the Pod path: they are kept raw by the envelope and read here
//! into a `serde_json::Value`, as Argo's are.

use std::fmt;

use serde_json::Value;

use crate::names::ANNOTATION_RUN_AS;

/// One token of a template pointer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Token {
    /// An object member (unescaped).
    Key(String),
    /// `*`: every list item or map value.
    Any,
}

/// Why a template pointer cannot name a pod template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointerError(pub String);

impl fmt::Display for PointerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Members of a pod, a pod spec, a container or object metadata, below which no pod
/// template is ever found: a pointer through one of them points into a pod (or its
/// metadata), not at a template.
const NOT_TEMPLATES: &[&str] = &[
    "metadata",
    "annotations",
    "labels",
    "ownerReferences",
    "containers",
    "initContainers",
    "ephemeralContainers",
    "volumes",
    "volumeMounts",
    "env",
    "envFrom",
    "securityContext",
    "affinity",
    "tolerations",
];

/// Members at the top of an object that are never a template's way.
const TOP_LEVEL: &[&str] = &["apiVersion", "kind", "metadata", "status"];

/// Parses and checks a pod-template pointer: `/`-separated, `~0`/`~1` escapes, `*` for
/// every item or value. Refused: the empty pointer (the object itself is not a pod
/// template: its metadata is the object's), empty tokens, bad escapes, a pointer ending in
/// `*` (a template is a named member, e.g. `/*/template`), one through the object's
/// `metadata`/`status`, and one through a pod's or template's own parts (`metadata`,
/// `containers`, `volumes`, ...) or ending at a template's `spec`.
pub fn parse_pointer(pointer: &str) -> Result<Vec<Token>, PointerError> {
    let fail = |why: &str| Err(PointerError(format!("{pointer:?} {why}")));
    if pointer.is_empty() {
        return fail(
            "is empty: the object itself is not a pod template (give the member that holds one, e.g. /spec/template)",
        );
    }
    let Some(rest) = pointer.strip_prefix('/') else {
        return fail("must start with '/' (an RFC 6901 JSON pointer)");
    };
    let mut tokens = Vec::new();
    for raw in rest.split('/') {
        if raw.is_empty() {
            return fail("has an empty token");
        }
        if raw == "*" {
            tokens.push(Token::Any);
            continue;
        }
        let mut key = String::with_capacity(raw.len());
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if c == '~' {
                match chars.next() {
                    Some('0') => key.push('~'),
                    Some('1') => key.push('/'),
                    _ => return fail("has '~' not followed by 0 or 1"),
                }
            } else if c == '*' {
                return fail("has '*' inside a token; '*' must be a whole token");
            } else {
                key.push(c);
            }
        }
        tokens.push(Token::Key(key));
    }
    if let Some(Token::Key(first)) = tokens.first()
        && TOP_LEVEL.contains(&first.as_str())
    {
        return fail(&format!(
            "points into the object's {first}, where no pod template is"
        ));
    }
    if tokens.last() == Some(&Token::Any) {
        return fail(
            "ends in '*': a pod template is a named member (e.g. /spec/replicaSpecs/*/template)",
        );
    }
    if let Some(Token::Key(inside)) = tokens
        .iter()
        .find(|t| matches!(t, Token::Key(k) if NOT_TEMPLATES.contains(&k.as_str())))
    {
        return fail(&format!(
            "goes through {inside:?}, a part of a pod or its metadata, not to a pod template"
        ));
    }
    if let [.., Token::Key(parent), Token::Key(last)] = tokens.as_slice()
        && parent == "template"
        && last == "spec"
    {
        return fail("points at a template's pod spec; give the template itself (without /spec)");
    }
    Ok(tokens)
}

/// True when one pointer's templates may hold another's (`/spec/a` and
/// `/spec/a/b/template`, or `/spec/*/t` and `/spec/x/t`): homestead would stamp one pod
/// template inside another.
pub fn overlaps(a: &[Token], b: &[Token]) -> bool {
    a.iter().zip(b).all(|pair| match pair {
        (Token::Key(x), Token::Key(y)) => x == y,
        _ => true,
    })
}

/// A pod template found in an object.
#[derive(Debug, Clone, PartialEq)]
pub struct Found<'v> {
    /// Its escaped RFC 6901 pointer, e.g. `/spec/pytorchReplicaSpecs/Worker/template`.
    pub pointer: String,
    /// Its field path for messages, e.g. `spec.pytorchReplicaSpecs.Worker.template.`
    /// (with the trailing dot, as [`crate::workload::PodView::field`]).
    pub field: String,
    /// The template: an object, or something that is not one (refused).
    pub value: &'v Value,
}

/// Every pod template `pointers` name in `object`, in pointer order and then document
/// order. Missing members and `null`s name none.
pub fn find<'v>(object: &'v Value, pointers: &[Vec<Token>]) -> Vec<Found<'v>> {
    let mut out = Vec::new();
    for tokens in pointers {
        let mut path = Vec::new();
        collect(object, tokens, &mut path, &mut out);
    }
    out
}

fn collect<'v>(
    value: &'v Value,
    tokens: &[Token],
    path: &mut Vec<String>,
    out: &mut Vec<Found<'v>>,
) {
    let Some((token, rest)) = tokens.split_first() else {
        if !value.is_null() {
            out.push(Found {
                pointer: crate::patch::pointer(path),
                field: field_of(path),
                value,
            });
        }
        return;
    };
    match (token, value) {
        (Token::Key(key), Value::Object(map)) => {
            if let Some(child) = map.get(key) {
                path.push(key.clone());
                collect(child, rest, path, out);
                path.pop();
            }
        }
        (Token::Any, Value::Object(map)) => {
            for (key, child) in map {
                path.push(key.clone());
                collect(child, rest, path, out);
                path.pop();
            }
        }
        (Token::Any, Value::Array(items)) => {
            for (i, child) in items.iter().enumerate() {
                path.push(i.to_string());
                collect(child, rest, path, out);
                path.pop();
            }
        }
        (Token::Key(key), Value::Array(items)) => {
            if let Some(child) = key.parse::<usize>().ok().and_then(|i| items.get(i)) {
                path.push(key.clone());
                collect(child, rest, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

fn field_of(path: &[String]) -> String {
    let mut out = String::new();
    for token in path {
        if !token.is_empty() && token.bytes().all(|b| b.is_ascii_digit()) {
            out.truncate(out.len().saturating_sub(1));
            out.push('[');
            out.push_str(token);
            out.push_str("].");
        } else if token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            out.push_str(token);
            out.push('.');
        } else {
            out.truncate(out.len().saturating_sub(1));
            out.push_str(&format!("[{token:?}]."));
        }
    }
    out
}

/// A `homestead.dev/run-as` in an object that is neither in a pod template's
/// `metadata.annotations` nor in the object's own metadata: the kind's controller might
/// copy it into a pod over the stamp (as Spark's `driver.annotations` would be).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stray {
    /// Escaped RFC 6901 pointer to the annotation.
    pub pointer: String,
    /// Its field path, for messages.
    pub field: String,
}

/// Every `homestead.dev/run-as` in `object` outside the templates' and the object's own
/// metadata.
pub fn strays(object: &Value, templates: &[Found<'_>]) -> Vec<Stray> {
    let allowed: Vec<String> = templates
        .iter()
        .map(|t| format!("{}/metadata/annotations", t.pointer))
        .collect();
    let mut out = Vec::new();
    let mut path = Vec::new();
    walk(object, &mut path, &allowed, &mut out);
    out
}

fn walk(value: &Value, path: &mut Vec<String>, allowed: &[String], out: &mut Vec<Stray>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                if path.is_empty() && key == "metadata" {
                    continue;
                }
                path.push(key.clone());
                if key == "annotations"
                    && child.get(ANNOTATION_RUN_AS).is_some()
                    && !allowed.contains(&crate::patch::pointer(path))
                {
                    let pointer = crate::patch::pointer(path);
                    out.push(Stray {
                        pointer: format!(
                            "{pointer}{}",
                            crate::patch::pointer(&[ANNOTATION_RUN_AS])
                        ),
                        field: format!(
                            "{}[\"{ANNOTATION_RUN_AS}\"]",
                            field_of(path).trim_end_matches('.')
                        ),
                    });
                }
                walk(child, path, allowed, out);
                path.pop();
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                path.push(i.to_string());
                walk(child, path, allowed, out);
                path.pop();
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn key(k: &str) -> Token {
        Token::Key(k.into())
    }

    #[test]
    fn pointers_parse_or_say_why_not() {
        assert_eq!(
            parse_pointer("/spec/pytorchReplicaSpecs/*/template").unwrap(),
            [
                key("spec"),
                key("pytorchReplicaSpecs"),
                Token::Any,
                key("template")
            ]
        );
        assert_eq!(
            parse_pointer("/spec/a~1b~0c").unwrap(),
            [key("spec"), key("a/b~c")]
        );
        for (bad, why) in [
            ("", "is empty"),
            ("spec/template", "must start with '/'"),
            ("/spec//template", "empty token"),
            ("/spec/a~2", "'~' not followed"),
            ("/spec/a*", "inside a token"),
            ("/spec/replicas/*", "ends in '*'"),
            ("/metadata/annotations", "object's metadata"),
            ("/status/template", "object's status"),
            ("/spec/template/metadata", "\"metadata\""),
            ("/spec/template/spec/containers/0", "\"containers\""),
            ("/spec/template/spec", "pod spec"),
            ("/spec/driver/env", "\"env\""),
        ] {
            let err = parse_pointer(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
            assert!(err.contains(&format!("{bad:?}")), "{bad}: {err}");
        }
        let p = |s: &str| parse_pointer(s).unwrap();
        assert!(overlaps(&p("/spec/a"), &p("/spec/a/b/template")));
        assert!(overlaps(&p("/spec/*/t"), &p("/spec/x/t")));
        assert!(!overlaps(
            &p("/spec/driver/template"),
            &p("/spec/executor/template")
        ));
    }

    #[test]
    fn finds_every_template_and_every_stray_stamp() {
        let job = json!({
            "metadata": {"annotations": {"homestead.dev/run-as": "own"}},
            "spec": {
                "runPolicy": {"annotations": {"homestead.dev/run-as": "bob"}},
                "pytorchReplicaSpecs": {
                    "Master": {"replicas": 1, "template": {"metadata": {"annotations": {"homestead.dev/run-as": "ada"}}, "spec": {}}},
                    "Worker": {"template": {"spec": {}}},
                    "Odd/Name": {"template": null}
                },
                "list": [{"template": {}}, {"other": 1}]
            }
        });
        let pointers = vec![
            parse_pointer("/spec/pytorchReplicaSpecs/*/template").unwrap(),
            parse_pointer("/spec/list/*/template").unwrap(),
            parse_pointer("/spec/absent/template").unwrap(),
        ];
        let found = find(&job, &pointers);
        let names: Vec<_> = found
            .iter()
            .map(|f| (f.pointer.as_str(), f.field.as_str()))
            .collect();
        assert_eq!(
            names,
            [
                (
                    "/spec/pytorchReplicaSpecs/Master/template",
                    "spec.pytorchReplicaSpecs.Master.template."
                ),
                (
                    "/spec/pytorchReplicaSpecs/Worker/template",
                    "spec.pytorchReplicaSpecs.Worker.template."
                ),
                ("/spec/list/0/template", "spec.list[0].template."),
            ]
        );
        let strays = strays(&job, &found);
        assert_eq!(
            strays,
            [Stray {
                pointer: "/spec/runPolicy/annotations/homestead.dev~1run-as".into(),
                field: "spec.runPolicy.annotations[\"homestead.dev/run-as\"]".into(),
            }]
        );
        assert_eq!(crate::patch::pointer(&["a/b", "c~"]), "/a~1b/c~0");
        assert_eq!(
            field_of(&["spec".into(), "Odd/Name".into()]),
            "spec[\"Odd/Name\"]."
        );
    }
}
