//! What admission reads of a pod, and nothing else, borrowed from the request body.
//!
//! Admission decides from a few dozen fields of a pod: its security contexts, host
//! namespaces, volumes, and each container's mounts and environment. Everything else
//! (images, probes, resources, most of the metadata) is skipped by the parser without
//! being built, and strings are borrowed from the body unless they hold JSON escapes
//! ([`Text`]). What is left to allocate is a few lists (containers, their mounts and env).
//!
//! The shapes follow `core/v1` exactly (field names, nesting, `null` meaning unset for an
//! optional field), so every field read here means what it means to the API server. The API server decodes
//! objects into its own types before calling webhooks, so the fields not modelled here
//! are well-formed by the time admission sees them.

use std::borrow::Cow;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::names;

/// A string of the body: borrowed when it has no escapes, owned when it had to be
/// unescaped. (A newtype rather than `Cow<str>` because serde only borrows a `Cow` field
/// it can see syntactically, not one inside an `Option` or a `Vec`.)
#[derive(Clone, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Text<'a>(pub Cow<'a, str>);

impl Text<'_> {
    /// True when the text points into the request body.
    pub fn is_borrowed(&self) -> bool {
        matches!(self.0, Cow::Borrowed(_))
    }

    /// The text as an owned `String`.
    pub fn into_owned(self) -> String {
        self.0.into_owned()
    }
}

impl std::ops::Deref for Text<'_> {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Text<'_> {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for Text<'_> {
    fn eq(&self, other: &str) -> bool {
        *self.0 == *other
    }
}

impl PartialEq<&str> for Text<'_> {
    fn eq(&self, other: &&str) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<String> for Text<'_> {
    fn eq(&self, other: &String) -> bool {
        *self.0 == *other.as_str()
    }
}

impl<'a> From<&'a str> for Text<'a> {
    fn from(text: &'a str) -> Self {
        Text(Cow::Borrowed(text))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TextVisitor;
        impl<'de> Visitor<'de> for TextVisitor {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(v)))
            }
        }
        deserializer.deserialize_str(TextVisitor)
    }
}

/// `metadata` of a pod or pod template: the one annotation and the labels admission
/// reads, and the controller of the object.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Metadata<'a> {
    /// `annotations`; `None` when absent or `null`.
    #[serde(default, borrow)]
    pub annotations: Option<Annotations<'a>>,
    /// `labels`; `None` when absent or `null`.
    #[serde(default, borrow)]
    pub labels: Option<Labels<'a>>,
    /// The `ownerReferences` entry with `controller: true`, if any.
    #[serde(
        default,
        borrow,
        rename = "ownerReferences",
        deserialize_with = "controller_reference"
    )]
    pub controller: Option<ControllerRef<'a>>,
}

/// `metadata.annotations`, of which admission reads `homestead.dev/run-as`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Annotations<'a> {
    /// The `homestead.dev/run-as` value, if the annotation is present.
    pub run_as: Option<Text<'a>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Annotations<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct AnnotationsVisitor;
        impl<'de> Visitor<'de> for AnnotationsVisitor {
            type Value = Annotations<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of annotations")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut run_as = None;
                while let Some(key) = map.next_key::<Text<'de>>()? {
                    if key == names::ANNOTATION_RUN_AS {
                        run_as = Some(map.next_value::<Text<'de>>()?);
                    } else {
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(Annotations { run_as })
            }
        }
        deserializer.deserialize_map(AnnotationsVisitor)
    }
}

/// `metadata.labels`, of which admission reads `homestead.dev/no-datasets` and
/// `homestead.dev/user`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Labels<'a> {
    /// True when `homestead.dev/no-datasets` is present (with any value).
    pub no_datasets: bool,
    /// The `homestead.dev/user` value (the `User` the pod runs as), if present.
    pub user: Option<Text<'a>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for Labels<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LabelsVisitor;
        impl<'de> Visitor<'de> for LabelsVisitor {
            type Value = Labels<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of labels")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut labels = Labels::default();
                while let Some(key) = map.next_key::<Text<'de>>()? {
                    if key == names::LABEL_USER {
                        labels.user = Some(map.next_value::<Text<'de>>()?);
                    } else {
                        labels.no_datasets |= key == names::LABEL_NO_DATASETS;
                        map.next_value::<IgnoredAny>()?;
                    }
                }
                Ok(labels)
            }
        }
        deserializer.deserialize_map(LabelsVisitor)
    }
}

/// The controller of an object: the `ownerReferences` entry with `controller: true`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ControllerRef<'a> {
    /// `apiVersion`, e.g. `apps/v1`.
    pub api_version: Text<'a>,
    /// `kind`, e.g. `ReplicaSet`.
    pub kind: Text<'a>,
}

impl ControllerRef<'_> {
    /// The API group of `apiVersion` (`""` for the core group).
    pub fn group(&self) -> &str {
        self.api_version
            .split_once('/')
            .map_or("", |(group, _)| group)
    }
}

/// Reads `ownerReferences`, keeping only the controller's group-version and kind.
pub(crate) fn controller_reference<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<ControllerRef<'de>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Reference<'a> {
        #[serde(default, borrow)]
        api_version: Text<'a>,
        #[serde(default, borrow)]
        kind: Text<'a>,
        #[serde(default)]
        controller: Option<bool>,
    }
    struct ReferencesVisitor;
    impl<'de> Visitor<'de> for ReferencesVisitor {
        type Value = Option<ControllerRef<'de>>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a list of owner references")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut found = None;
            while let Some(reference) = seq.next_element::<Reference<'de>>()? {
                if reference.controller == Some(true) && found.is_none() {
                    found = Some(ControllerRef {
                        api_version: reference.api_version,
                        kind: reference.kind,
                    });
                }
            }
            Ok(found)
        }
    }
    deserializer.deserialize_any(ReferencesVisitor)
}

/// `spec` of a pod.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSpec<'a> {
    /// `securityContext`.
    #[serde(default, borrow)]
    pub security_context: Option<PodSecurityContext<'a>>,
    /// `hostNetwork`.
    #[serde(default)]
    pub host_network: Option<bool>,
    /// `hostPID`.
    #[serde(default, rename = "hostPID")]
    pub host_pid: Option<bool>,
    /// `hostIPC`.
    #[serde(default, rename = "hostIPC")]
    pub host_ipc: Option<bool>,
    /// `volumes`.
    #[serde(default, borrow, deserialize_with = "bounded")]
    pub volumes: Option<Vec<Volume<'a>>>,
    /// `containers`.
    #[serde(default, borrow, deserialize_with = "bounded")]
    pub containers: Option<Vec<Container<'a>>>,
    /// `initContainers`.
    #[serde(default, borrow, deserialize_with = "bounded")]
    pub init_containers: Option<Vec<Container<'a>>>,
    /// `ephemeralContainers`.
    #[serde(default, borrow, deserialize_with = "bounded")]
    pub ephemeral_containers: Option<Vec<Container<'a>>>,
}

/// The most entries read of a pod's list of containers (of one kind) or volumes: a pod
/// with more is refused unread, so no body can make admission build a large pod. (The
/// configured `security.maxContainers` and `security.maxVolumes` are at most this.)
pub const MAX_ENTRIES: usize = 1000;

/// A list of at most [`MAX_ENTRIES`] entries (`null` is unset).
fn bounded<'de, D, T>(deserializer: D) -> Result<Option<Vec<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    struct Bounded<T>(std::marker::PhantomData<T>);
    impl<'de, T: Deserialize<'de>> Visitor<'de> for Bounded<T> {
        type Value = Option<Vec<T>>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "a list of at most {MAX_ENTRIES} entries")
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(16));
            while let Some(entry) = seq.next_element()? {
                if out.len() == MAX_ENTRIES {
                    return Err(de::Error::custom(format_args!(
                        "more than {MAX_ENTRIES} entries in one list; homestead reads at most {MAX_ENTRIES}"
                    )));
                }
                out.push(entry);
            }
            Ok(Some(out))
        }
    }
    deserializer.deserialize_any(Bounded(std::marker::PhantomData))
}

/// `windowsOptions` of a security context.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WindowsOptions {
    /// `hostProcess`.
    #[serde(default)]
    pub host_process: Option<bool>,
}

/// `spec.securityContext`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodSecurityContext<'a> {
    /// `runAsUser`.
    #[serde(default)]
    pub run_as_user: Option<i64>,
    /// `runAsGroup`.
    #[serde(default)]
    pub run_as_group: Option<i64>,
    /// `runAsNonRoot`.
    #[serde(default)]
    pub run_as_non_root: Option<bool>,
    /// `fsGroup`.
    #[serde(default)]
    pub fs_group: Option<i64>,
    /// `fsGroupChangePolicy`.
    #[serde(default, borrow)]
    pub fs_group_change_policy: Option<Text<'a>>,
    /// `supplementalGroups`.
    #[serde(default)]
    pub supplemental_groups: Option<Vec<i64>>,
    /// `supplementalGroupsPolicy`.
    #[serde(default, borrow)]
    pub supplemental_groups_policy: Option<Text<'a>>,
    /// `windowsOptions`.
    #[serde(default)]
    pub windows_options: Option<WindowsOptions>,
}

/// A container, init container or ephemeral container.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Container<'a> {
    /// `securityContext`.
    #[serde(default, borrow)]
    pub security_context: Option<SecurityContext<'a>>,
    /// `volumeMounts`.
    #[serde(default, borrow)]
    pub volume_mounts: Option<Vec<VolumeMount<'a>>>,
    /// `env`: only homestead's own variables are kept.
    #[serde(default, borrow)]
    pub env: Option<Env<'a>>,
}

/// A container's `env` list as admission needs it: the entries homestead writes (names
/// starting with [`names::ENV_PREFIX`]) with their index in the list. Every entry is read
/// (its grammar and types are checked as before), and the container's own variables are
/// not kept: a pod with hundreds of them costs no memory.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Env<'a> {
    /// `(index, entry)` of each entry whose name starts with [`names::ENV_PREFIX`].
    pub homestead: Vec<(usize, EnvVar<'a>)>,
}

impl<'a> Env<'a> {
    /// The entries of `list` homestead writes, as reading that list keeps them.
    pub fn of(list: impl IntoIterator<Item = EnvVar<'a>>) -> Self {
        Self {
            homestead: list
                .into_iter()
                .enumerate()
                .filter(|(_, var)| var.name.starts_with(names::ENV_PREFIX))
                .collect(),
        }
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Env<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EnvVisitor;
        impl<'de> Visitor<'de> for EnvVisitor {
            type Value = Env<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of environment variables")
            }
            fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut env = Env::default();
                let mut index = 0usize;
                while let Some(var) = seq.next_element::<EnvVar<'de>>()? {
                    if var.name.starts_with(names::ENV_PREFIX) {
                        env.homestead.push((index, var));
                    }
                    index += 1;
                }
                Ok(env)
            }
        }
        deserializer.deserialize_seq(EnvVisitor)
    }
}

/// A container's `securityContext`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityContext<'a> {
    /// `runAsUser`.
    #[serde(default)]
    pub run_as_user: Option<i64>,
    /// `runAsGroup`.
    #[serde(default)]
    pub run_as_group: Option<i64>,
    /// `runAsNonRoot`.
    #[serde(default)]
    pub run_as_non_root: Option<bool>,
    /// `privileged`.
    #[serde(default)]
    pub privileged: Option<bool>,
    /// `allowPrivilegeEscalation`.
    #[serde(default)]
    pub allow_privilege_escalation: Option<bool>,
    /// `procMount`.
    #[serde(default, borrow)]
    pub proc_mount: Option<Text<'a>>,
    /// `windowsOptions`.
    #[serde(default)]
    pub windows_options: Option<WindowsOptions>,
    /// `capabilities`.
    #[serde(default, borrow)]
    pub capabilities: Option<Capabilities<'a>>,
}

impl SecurityContext<'_> {
    /// `capabilities.add`, empty when unset.
    pub fn added_capabilities(&self) -> &[Text<'_>] {
        self.capabilities
            .as_ref()
            .and_then(|c| c.add.as_deref())
            .unwrap_or_default()
    }
}

/// `securityContext.capabilities`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Capabilities<'a> {
    /// `add`.
    #[serde(default, borrow)]
    pub add: Option<Vec<Text<'a>>>,
}

/// A container's `volumeMounts[]` entry.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumeMount<'a> {
    /// `name`.
    #[serde(default, borrow)]
    pub name: Text<'a>,
    /// `mountPath`.
    #[serde(default, borrow)]
    pub mount_path: Text<'a>,
    /// `subPath`.
    #[serde(default, borrow)]
    pub sub_path: Option<Text<'a>>,
    /// `subPathExpr`.
    #[serde(default, borrow)]
    pub sub_path_expr: Option<Text<'a>>,
    /// `readOnly`.
    #[serde(default)]
    pub read_only: Option<bool>,
}

/// A container's `env[]` entry.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EnvVar<'a> {
    /// `name`.
    #[serde(default, borrow)]
    pub name: Text<'a>,
    /// `value`.
    #[serde(default, borrow)]
    pub value: Option<Text<'a>>,
    /// `valueFrom`, only whether it is set.
    #[serde(default)]
    pub value_from: Option<IgnoredAny>,
}

/// `persistentVolumeClaim` of a volume.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimSource<'a> {
    /// `claimName`.
    #[serde(default, borrow)]
    pub claim_name: Text<'a>,
    /// `readOnly`.
    #[serde(default)]
    pub read_only: Option<bool>,
}

/// `hostPath` of a volume.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct HostPath<'a> {
    /// `path`.
    #[serde(default, borrow)]
    pub path: Text<'a>,
}

/// Volume sources that stay inside the pod or its namespace and carry no identity of
/// their own: always allowed.
pub const SAFE_SOURCES: [&str; 5] = [
    "configMap",
    "secret",
    "downwardAPI",
    "projected",
    "emptyDir",
];

/// `csi` of a volume: an inline CSI volume.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct CsiSource<'a> {
    /// `driver`.
    #[serde(default, borrow)]
    pub driver: Text<'a>,
}

/// `ephemeral` of a volume: a claim made for the pod from `volumeClaimTemplate`. Only
/// what could reach storage that is not new is read: whether the template names a volume
/// or a data source.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EphemeralSource {
    /// `volumeClaimTemplate.spec.volumeName` is set.
    pub volume_name: bool,
    /// `volumeClaimTemplate.spec.dataSource` is set.
    pub data_source: bool,
    /// `volumeClaimTemplate.spec.dataSourceRef` is set.
    pub data_source_ref: bool,
}

impl<'de> Deserialize<'de> for EphemeralSource {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct ClaimSpec<'a> {
            #[serde(default, borrow)]
            volume_name: Option<Text<'a>>,
            #[serde(default)]
            data_source: Option<IgnoredAny>,
            #[serde(default)]
            data_source_ref: Option<IgnoredAny>,
        }
        #[derive(Deserialize)]
        struct Template<'a> {
            #[serde(default, borrow)]
            spec: Option<ClaimSpec<'a>>,
        }
        #[derive(Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Ephemeral<'a> {
            #[serde(default, borrow)]
            volume_claim_template: Option<Template<'a>>,
        }
        let spec = Ephemeral::deserialize(deserializer)?
            .volume_claim_template
            .and_then(|t| t.spec);
        Ok(
            spec.map_or_else(EphemeralSource::default, |s| EphemeralSource {
                volume_name: s.volume_name.is_some_and(|n| !n.is_empty()),
                data_source: s.data_source.is_some(),
                data_source_ref: s.data_source_ref.is_some(),
            }),
        )
    }
}

/// A `volumes[]` entry: its name, the sources admission reads, whether a safe source is
/// set, and the first source that is none of those. Every member other than `name` is a
/// source, so a source this model does not know (a new Kubernetes field, a typo the API
/// server would refuse anyway) is reported as `refused`, never skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Volume<'a> {
    /// `name`.
    pub name: Text<'a>,
    /// `hostPath`.
    pub host_path: Option<HostPath<'a>>,
    /// `persistentVolumeClaim`.
    pub persistent_volume_claim: Option<ClaimSource<'a>>,
    /// `csi`.
    pub csi: Option<CsiSource<'a>>,
    /// `ephemeral`.
    pub ephemeral: Option<EphemeralSource>,
    /// True when one of [`SAFE_SOURCES`] is set.
    pub safe_source: bool,
    /// The first other member that is set (`nfs`, `image`, `gitRepo`, an unknown one).
    pub refused: Option<Text<'a>>,
}

impl Volume<'_> {
    /// True when this volume is exactly the claim `claim` and nothing else.
    pub fn is_only_claim(&self, claim: &str) -> bool {
        self.host_path.is_none()
            && self.csi.is_none()
            && self.ephemeral.is_none()
            && !self.safe_source
            && self.refused.is_none()
            && self
                .persistent_volume_claim
                .as_ref()
                .is_some_and(|c| c.claim_name == claim && c.read_only.is_none())
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Volume<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct VolumeVisitor;
        impl<'de> Visitor<'de> for VolumeVisitor {
            type Value = Volume<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a volume")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut volume = Volume::default();
                while let Some(key) = map.next_key::<Text<'de>>()? {
                    match key.as_ref() {
                        "name" => volume.name = map.next_value::<Text<'de>>()?,
                        "hostPath" => volume.host_path = map.next_value()?,
                        "persistentVolumeClaim" => {
                            volume.persistent_volume_claim = map.next_value()?
                        }
                        "csi" => volume.csi = map.next_value()?,
                        "ephemeral" => volume.ephemeral = map.next_value()?,
                        other => {
                            let set = map.next_value::<Option<IgnoredAny>>()?.is_some();
                            if SAFE_SOURCES.contains(&other) {
                                volume.safe_source |= set;
                            } else if set && volume.refused.is_none() {
                                volume.refused = Some(key);
                            }
                        }
                    }
                }
                Ok(volume)
            }
        }
        deserializer.deserialize_map(VolumeVisitor)
    }
}

/// The value of the label `key` in the object's own `metadata.labels` (`None` when it is
/// absent or `null`), borrowed from `text`. Only that one label is read; the rest of the
/// object is skipped without being built. Used for a trusted submitter's identity label,
/// which is read only for its requests.
pub fn object_label<'a>(text: &'a str, key: &str) -> Result<Option<Text<'a>>, crate::json::Error> {
    /// A map of which only `key` is read, with `next` for its value.
    struct Member<'k, S> {
        key: &'k str,
        next: S,
    }
    impl<'de, S: de::DeserializeSeed<'de, Value = Option<Text<'de>>>> de::DeserializeSeed<'de>
        for Member<'_, S>
    {
        type Value = Option<Text<'de>>;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_option(self)
        }
    }
    impl<'de, S: de::DeserializeSeed<'de, Value = Option<Text<'de>>>> Visitor<'de> for Member<'_, S> {
        type Value = Option<Text<'de>>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an object or null")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_map(self)
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut found = None;
            let mut next = Some(self.next);
            while let Some(key) = map.next_key::<Text<'de>>()? {
                match next.take() {
                    Some(seed) if key == self.key => found = map.next_value_seed(seed)?,
                    other => {
                        next = other;
                        map.next_value::<IgnoredAny>()?;
                    }
                }
            }
            Ok(found)
        }
    }
    /// The label's value: a string or `null`.
    struct Value;
    impl<'de> de::DeserializeSeed<'de> for Value {
        type Value = Option<Text<'de>>;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            Option::<Text<'de>>::deserialize(d)
        }
    }
    let seed = Member {
        key: "metadata",
        next: Member {
            key: "labels",
            next: Member { key, next: Value },
        },
    };
    let mut deserializer = crate::json::Deserializer::new(text);
    let label = de::DeserializeSeed::deserialize(seed, &mut deserializer)?;
    deserializer.end()?;
    Ok(label)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_admission_needs_and_borrows_it() {
        let json = r#"{
            "metadata": {"name": "p", "annotations": {"a": "b", "homestead.dev/run-as": "ada"},
                         "labels": {"homestead.dev/no-datasets": ""},
                         "ownerReferences": [
                             {"apiVersion": "v1", "kind": "Node", "name": "n", "uid": "1"},
                             {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "r", "uid": "2", "controller": true}
                         ]},
            "spec": {
                "hostPID": true,
                "securityContext": {"runAsUser": 1001, "supplementalGroups": [1, 2]},
                "volumes": [
                    {"name": "h", "hostPath": {"path": "/scratch", "type": "Directory"}},
                    {"name": "c", "persistentVolumeClaim": {"claimName": "homestead-shared"}},
                    {"name": "n", "nfs": {"server": "s", "path": "/"}, "cephfs": {"monitors": []}},
                    {"name": "e", "emptyDir": {}, "nfs": null}
                ],
                "containers": [{
                    "name": "main", "image": "python:3",
                    "securityContext": {"capabilities": {"add": ["NET_BIND_SERVICE"]}},
                    "volumeMounts": [{"name": "c", "mountPath": "/x", "subPath": "a\/b"}],
                    "env": [{"name": "A", "value": "0"}, {"name": "HOMESTEAD_UID", "value": "1"},
                            {"name": "HOMESTEAD", "valueFrom": {}},
                            {"name": "HOMESTEAD_X", "valueFrom": {"fieldRef": {}}}]
                }]
            }
        }"#;
        #[derive(Deserialize)]
        struct Doc<'a> {
            #[serde(borrow)]
            metadata: Metadata<'a>,
            #[serde(borrow)]
            spec: PodSpec<'a>,
        }
        let doc: Doc = serde_json::from_str(json).unwrap();
        let run_as = doc.metadata.annotations.unwrap().run_as.unwrap();
        assert_eq!(run_as, "ada");
        assert!(run_as.is_borrowed());
        assert!(doc.metadata.labels.unwrap().no_datasets);
        let owner = doc.metadata.controller.unwrap();
        assert_eq!((owner.group(), owner.kind.as_ref()), ("apps", "ReplicaSet"));
        let spec = doc.spec;
        assert_eq!(spec.host_pid, Some(true));
        assert_eq!(spec.host_network, None);
        let sc = spec.security_context.unwrap();
        assert_eq!(
            (sc.run_as_user, sc.supplemental_groups),
            (Some(1001), Some(vec![1, 2]))
        );
        let volumes = spec.volumes.unwrap();
        assert_eq!(volumes[0].host_path.as_ref().unwrap().path, "/scratch");
        assert!(volumes[1].is_only_claim("homestead-shared"));
        assert!(!volumes[1].is_only_claim("homestead-data"));
        assert_eq!(volumes[2].refused.as_deref(), Some("nfs"));
        assert_eq!(
            (volumes[3].refused.as_deref(), volumes[3].safe_source),
            (None, true)
        );
        let container = &spec.containers.unwrap()[0];
        let mount = &container.volume_mounts.as_ref().unwrap()[0];
        // An escaped string is unescaped into an owned one.
        assert_eq!(mount.sub_path.as_deref(), Some("a/b"));
        assert!(!mount.sub_path.as_ref().unwrap().is_borrowed());
        // Plain strings are borrowed wherever they sit: in an Option, a Vec, a list entry.
        assert!(mount.name.is_borrowed() && mount.mount_path.is_borrowed());
        // Only homestead's variables are kept, with their index in the list.
        let env = &container.env.as_ref().unwrap().homestead;
        assert_eq!(env.len(), 2);
        assert_eq!((env[0].0, env[0].1.value.as_deref()), (1, Some("1")));
        assert_eq!(env[1].0, 3);
        assert!(env[1].1.value_from.is_some() && env[1].1.value.is_none());
        assert!(env[0].1.name.is_borrowed() && env[0].1.value.as_ref().unwrap().is_borrowed());
        let caps = container
            .security_context
            .as_ref()
            .unwrap()
            .added_capabilities();
        assert!(caps[0].is_borrowed());
        assert!(volumes[0].host_path.as_ref().unwrap().path.is_borrowed());
        assert_eq!(
            container
                .security_context
                .as_ref()
                .unwrap()
                .added_capabilities(),
            ["NET_BIND_SERVICE"]
        );
    }

    #[test]
    fn null_means_unset_and_wrong_types_are_errors() {
        let spec: PodSpec = serde_json::from_str(
            r#"{"securityContext": null, "volumes": null, "containers": [{"env": null, "securityContext": {"privileged": null}}]}"#,
        )
        .unwrap();
        assert!(spec.security_context.is_none() && spec.volumes.is_none());
        let c = &spec.containers.unwrap()[0];
        assert!(c.env.is_none());
        assert_eq!(c.security_context.as_ref().unwrap().privileged, None);
        for bad in [
            r#"{"containers": "x"}"#,
            r#"{"hostPID": "yes"}"#,
            r#"{"volumes": {}}"#,
            r#"{"securityContext": {"runAsUser": "0"}}"#,
            r#"{"volumes": [{"hostPath": {"path": 1}}]}"#,
            r#"{"containers": [{"securityContext": {"capabilities": {"add": [1]}}}]}"#,
        ] {
            assert!(serde_json::from_str::<PodSpec>(bad).is_err(), "{bad}");
        }
        // The run-as annotation must be a string, like every annotation.
        assert!(
            serde_json::from_str::<Metadata>(r#"{"annotations": {"homestead.dev/run-as": 5}}"#)
                .is_err()
        );
    }

    #[test]
    fn one_label_of_the_object_is_read() {
        let key = "hub.jupyter.org/username";
        let read = |json: &str| object_label(json, key).map(|l| l.map(Text::into_owned));
        let pod = r#"{"spec":{"labels":{"hub.jupyter.org/username":"no"}},"metadata":{"name":"p","labels":{"a":"1","hub.jupyter.org/username":"ada"}}}"#;
        assert_eq!(read(pod).unwrap().as_deref(), Some("ada"));
        assert!(object_label(pod, key).unwrap().unwrap().is_borrowed());
        assert_eq!(
            read(r#"{"metadata":{"labels":{"x":"ada"}}}"#).unwrap(),
            None
        );
        assert_eq!(read(r#"{"metadata":{"labels":null}}"#).unwrap(), None);
        assert_eq!(read(r#"{"metadata":null}"#).unwrap(), None);
        assert_eq!(read("{}").unwrap(), None);
        assert_eq!(
            read(r#"{"metadata":{"labels":{"hub.jupyter.org/username":"\u0061da"}}}"#)
                .unwrap()
                .as_deref(),
            Some("ada")
        );
        assert!(read(r#"{"metadata":{"labels":{"hub.jupyter.org/username":7}}}"#).is_err());
        assert!(read(r#"{"metadata":[]}"#).is_err());
    }
}
