//! The AdmissionReview v1 request envelope, read in one pass over the body.
//!
//! The API server writes `request.kind` (and `subResource`) before `request.object`, so by
//! the time the parser reaches the object it knows whether a pod is in it and where; the
//! pod is then parsed in place rather than skipped once as raw JSON and read again.
//! Objects of other kinds, and any object that comes before its kind, are kept raw and
//! read when they are decided.
//!
//! A pod that fails to parse fails the whole pass, so [`parse`] then reads the body again
//! with every object raw: a broken object is reported as a denial about the object, and
//! only a broken envelope is an unreadable review.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::json::{self, Raw};
use crate::pod::Text;
use crate::workload::{self, PodKind, PodView};

/// An AdmissionReview as read: `apiVersion`, `kind` and the request.
#[derive(Debug, Default)]
pub(crate) struct Envelope<'a> {
    pub api_version: Option<Text<'a>>,
    pub kind: Option<Text<'a>>,
    pub request: Option<Request<'a>>,
}

/// `group`, `version` and `kind` of the object (the version matters only to configured
/// workload kinds, whose template pointers are per version).
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct GroupVersionKind<'a> {
    #[serde(default, borrow)]
    pub group: Text<'a>,
    #[serde(default, borrow)]
    pub version: Text<'a>,
    #[serde(default, borrow)]
    pub kind: Text<'a>,
}

/// Who sent the request.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct UserInfo<'a> {
    #[serde(default, borrow)]
    pub username: Text<'a>,
    /// `groups`; `None` when absent or `null`.
    #[serde(default, borrow)]
    pub groups: Option<Vec<Text<'a>>>,
}

impl UserInfo<'_> {
    /// The groups, empty when unset.
    pub fn groups(&self) -> &[Text<'_>] {
        self.groups.as_deref().unwrap_or_default()
    }
}

/// `object` or `oldObject` of a request.
#[derive(Debug)]
#[allow(
    clippy::large_enum_variant,
    reason = "at most two per request, on the stack; boxing the pod would cost an allocation per review"
)]
pub(crate) enum Object<'a> {
    /// Kept as JSON text: not a pod, or its kind was not known when it was reached.
    Raw(Raw<'a>),
    /// The pod, parsed in place.
    Pod(PodView<'a>),
}

impl<'a> Object<'a> {
    /// The pod of an object of `kind`: the one parsed in place, or parsed now from the
    /// raw text.
    pub fn pod(&self, kind: PodKind) -> Result<Cow<'_, PodView<'a>>, json::Error> {
        match self {
            Object::Pod(pod) => Ok(Cow::Borrowed(pod)),
            Object::Raw(raw) => workload::parse(kind, raw.get()).map(Cow::Owned),
        }
    }

    /// The JSON text of an object that was not parsed in place. Only pods are parsed in
    /// place, so objects of every other kind always have it.
    pub fn raw(&self) -> Option<&'a str> {
        match self {
            Object::Raw(raw) => Some(raw.get()),
            Object::Pod(_) => None,
        }
    }
}

/// `request` of an AdmissionReview.
#[derive(Debug, Default)]
pub(crate) struct Request<'a> {
    pub uid: Text<'a>,
    pub kind: GroupVersionKind<'a>,
    pub sub_resource: Option<Text<'a>>,
    pub name: Option<Text<'a>>,
    pub namespace: Option<Text<'a>>,
    pub operation: Text<'a>,
    pub user_info: UserInfo<'a>,
    pub object: Option<Object<'a>>,
    pub old_object: Option<Object<'a>>,
    pub dry_run: Option<bool>,
}

impl Request<'_> {
    /// The pod kind of an object to parse in place: a pod (or a workload's pod template),
    /// unless the request is already known to be an UPDATE, whose objects stay raw:
    /// whether the pod (or template) changed at all is decided from their text before
    /// either is read as a pod. (An UPDATE whose operation comes after its objects is read
    /// again with every object raw; see [`Request::needs_text`].)
    pub fn in_place_pod_kind(&self) -> Option<PodKind> {
        let kind = PodKind::from_group_kind(&self.kind.group, &self.kind.kind)?;
        let plain = self.sub_resource.as_deref().unwrap_or_default().is_empty();
        (plain && self.operation != "UPDATE").then_some(kind)
    }

    /// True when an object was parsed in place (so it has no text).
    pub fn has_in_place(&self) -> bool {
        [&self.object, &self.old_object]
            .iter()
            .any(|o| matches!(o, Some(Object::Pod(_))))
    }

    /// True when the request is an UPDATE of a pod (or template) whose objects were parsed
    /// in place, so their text, which an UPDATE is decided from, is missing.
    pub fn needs_text(&self) -> bool {
        let in_place = |o: &Option<Object<'_>>| matches!(o, Some(Object::Pod(_)));
        self.operation == "UPDATE"
            && self.sub_resource.as_deref().unwrap_or_default().is_empty()
            && (in_place(&self.object) || in_place(&self.old_object))
    }
}

/// How objects are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Objects {
    /// Pods parsed in place when their kind is already known.
    InPlace,
    /// Every object kept raw.
    Raw,
}

/// Reads an AdmissionReview body in one pass (two if a pod in it does not parse). The
/// body is text already checked to be UTF-8, once, so strings are not checked again one
/// by one; it is read by homestead's own reader ([`crate::json`]).
pub(crate) fn parse(body: &str) -> Result<Envelope<'_>, json::Error> {
    match read(body, Objects::InPlace) {
        Ok(envelope) if !envelope.request.as_ref().is_some_and(Request::needs_text) => Ok(envelope),
        _ => read(body, Objects::Raw),
    }
}

/// Reads an AdmissionReview body with every object kept raw: for a request whose object
/// must be read as text although it is a pod (a trusted submitter's, whose identity label
/// is read from the text).
pub(crate) fn parse_raw(body: &str) -> Result<Envelope<'_>, json::Error> {
    read(body, Objects::Raw)
}

fn read(body: &str, objects: Objects) -> Result<Envelope<'_>, json::Error> {
    let mut deserializer = json::Deserializer::new(body);
    let envelope = EnvelopeSeed(objects).deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(envelope)
}

/// Sets a field once; a second occurrence of the same key is an error, as with derived
/// structs (two `kind`s or two `object`s must not be read one way here and another way
/// elsewhere).
fn once<T, E: de::Error>(slot: &mut Option<T>, value: T, field: &'static str) -> Result<(), E> {
    if slot.is_some() {
        return Err(E::duplicate_field(field));
    }
    *slot = Some(value);
    Ok(())
}

struct EnvelopeSeed(Objects);

impl<'de> DeserializeSeed<'de> for EnvelopeSeed {
    type Value = Envelope<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for EnvelopeSeed {
    type Value = Envelope<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an AdmissionReview object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut api_version, mut kind, mut request) = (None, None, None);
        while let Some(key) = map.next_key::<Text<'de>>()? {
            match key.as_ref() {
                "apiVersion" => once(&mut api_version, map.next_value()?, "apiVersion")?,
                "kind" => once(&mut kind, map.next_value()?, "kind")?,
                "request" => once(
                    &mut request,
                    map.next_value_seed(OptionSeed(RequestSeed(self.0)))?,
                    "request",
                )?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Envelope {
            api_version: api_version.flatten(),
            kind: kind.flatten(),
            request: request.flatten(),
        })
    }
}

/// `null` or the seed's value.
struct OptionSeed<S>(S);

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for OptionSeed<S> {
    type Value = Option<S::Value>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de, S: DeserializeSeed<'de>> Visitor<'de> for OptionSeed<S> {
    type Value = Option<S::Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("null or a value")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        self.0.deserialize(deserializer).map(Some)
    }
}

struct RequestSeed(Objects);

impl<'de> DeserializeSeed<'de> for RequestSeed {
    type Value = Request<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RequestSeed {
    type Value = Request<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an AdmissionReview request")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        fn text<'de, A: MapAccess<'de>>(map: &mut A) -> Result<Option<Text<'de>>, A::Error> {
            map.next_value::<Option<Text<'de>>>()
        }
        let mut request = Request::default();
        let mut seen = Seen::default();
        while let Some(key) = map.next_key::<Text<'de>>()? {
            let field = match key.as_ref() {
                "uid" => {
                    request.uid = text(&mut map)?.unwrap_or_default();
                    "uid"
                }
                "kind" => {
                    request.kind = map.next_value::<Option<_>>()?.unwrap_or_default();
                    "kind"
                }
                "subResource" => {
                    request.sub_resource = text(&mut map)?;
                    "subResource"
                }
                "name" => {
                    request.name = text(&mut map)?;
                    "name"
                }
                "namespace" => {
                    request.namespace = text(&mut map)?;
                    "namespace"
                }
                "operation" => {
                    request.operation = text(&mut map)?.unwrap_or_default();
                    "operation"
                }
                "userInfo" => {
                    request.user_info = map.next_value::<Option<_>>()?.unwrap_or_default();
                    "userInfo"
                }
                "object" => {
                    request.object = map.next_value_seed(self.object_seed(&request))?;
                    "object"
                }
                "oldObject" => {
                    request.old_object = map.next_value_seed(self.object_seed(&request))?;
                    "oldObject"
                }
                "dryRun" => {
                    request.dry_run = map.next_value()?;
                    "dryRun"
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            seen.mark::<A::Error>(field)?;
        }
        Ok(request)
    }
}

impl RequestSeed {
    fn object_seed(&self, request: &Request<'_>) -> OptionSeed<ObjectSeed> {
        OptionSeed(ObjectSeed(match self.0 {
            Objects::InPlace => request.in_place_pod_kind(),
            Objects::Raw => None,
        }))
    }
}

/// The request fields read so far, to refuse a field given twice.
#[derive(Default)]
struct Seen(u16);

impl Seen {
    const FIELDS: [&'static str; 10] = [
        "uid",
        "kind",
        "subResource",
        "name",
        "namespace",
        "operation",
        "userInfo",
        "object",
        "oldObject",
        "dryRun",
    ];

    fn mark<E: de::Error>(&mut self, field: &'static str) -> Result<(), E> {
        let bit = Self::FIELDS
            .iter()
            .position(|f| *f == field)
            .map_or(0, |i| 1 << i);
        if self.0 & bit != 0 {
            return Err(E::duplicate_field(field));
        }
        self.0 |= bit;
        Ok(())
    }
}

/// An object: the pod of `Some(kind)` parsed in place, or raw JSON.
struct ObjectSeed(Option<PodKind>);

impl<'de> DeserializeSeed<'de> for ObjectSeed {
    type Value = Object<'de>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        match self.0 {
            Some(kind) => workload::deserialize(kind, deserializer).map(Object::Pod),
            None => Raw::deserialize(deserializer).map(Object::Raw),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(request: &str) -> String {
        format!(
            r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{request}}}"#
        )
    }

    #[test]
    fn pods_after_their_kind_are_parsed_in_place() {
        let text = body(
            r#"{"uid":"u","kind":{"group":"","version":"v1","kind":"Pod"},"operation":"CREATE",
                "object":{"metadata":{"annotations":{"homestead.dev/run-as":"ada"}},"spec":{}},
                "oldObject":null,"dryRun":true}"#,
        );
        let envelope = parse(&text).unwrap();
        let request = envelope.request.unwrap();
        assert_eq!((request.uid.as_ref(), request.dry_run), ("u", Some(true)));
        let Some(Object::Pod(pod)) = &request.object else {
            panic!("not parsed in place: {:?}", request.object);
        };
        assert_eq!(pod.run_as(), Some("ada"));
        assert!(request.old_object.is_none());
    }

    #[test]
    fn other_objects_stay_raw() {
        for (request, why) in [
            (
                r#"{"object":{"spec":{}},"kind":{"kind":"Pod"}}"#,
                "the object comes before its kind",
            ),
            (
                r#"{"kind":{"kind":"Namespace"},"object":{"spec":{}}}"#,
                "not a pod",
            ),
            (
                r#"{"kind":{"kind":"Pod"},"operation":"CREATE","subResource":"status","object":{"spec":{}}}"#,
                "a subresource",
            ),
            (
                r#"{"kind":{"kind":"Pod"},"operation":"UPDATE","object":{"spec":{}}}"#,
                "an update",
            ),
            (
                r#"{"kind":{"kind":"Pod"},"object":{"spec":{}},"operation":"UPDATE"}"#,
                "an update whose operation comes after its object",
            ),
        ] {
            let text = body(request);
            let request = parse(&text).unwrap().request.unwrap();
            assert_eq!(
                request.object.as_ref().and_then(Object::raw),
                Some(r#"{"spec":{}}"#),
                "{why}"
            );
        }
    }

    #[test]
    fn a_pod_that_does_not_parse_is_kept_raw_for_its_denial() {
        let text = body(
            r#"{"kind":{"kind":"Pod"},"operation":"CREATE","object":{"spec":{"containers":"x"}}}"#,
        );
        let request = parse(&text).unwrap().request.unwrap();
        let object = request.object.unwrap();
        assert!(object.raw().is_some());
        assert!(object.pod(PodKind::Pod).is_err());
    }

    #[test]
    fn fields_given_twice_are_refused() {
        for request in [
            r#"{"kind":{"kind":"Pod"},"kind":{"kind":"Namespace"}}"#,
            r#"{"object":{},"object":{}}"#,
        ] {
            let text = body(request);
            let err = parse(&text).unwrap_err().to_string();
            assert!(err.contains("duplicate field"), "{request}: {err}");
        }
        let err = parse(r#"{"kind":"AdmissionReview","kind":"AdmissionReview"}"#).unwrap_err();
        assert!(err.to_string().contains("duplicate field `kind`"), "{err}");
        assert!(parse(r#"{"request":{}} trailing"#).is_err());
        assert!(parse("[]").is_err());
    }
}
