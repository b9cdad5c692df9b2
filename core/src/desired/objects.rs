//! The kinds of object the controller writes, as one enum so a plan is a plain list.

use k8s_openapi::api::core::v1::{
    ConfigMap, LimitRange, Namespace, PersistentVolume, PersistentVolumeClaim, ResourceQuota,
    Secret, ServiceAccount,
};
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::core::ApiResource;
use kube::{Resource, ResourceExt};

/// Every kind the controller applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `v1 Namespace`.
    Namespace,
    /// `v1 ServiceAccount`.
    ServiceAccount,
    /// `rbac.authorization.k8s.io/v1 RoleBinding`.
    RoleBinding,
    /// `v1 ConfigMap`.
    ConfigMap,
    /// `v1 Secret`.
    Secret,
    /// `v1 ResourceQuota`.
    ResourceQuota,
    /// `v1 LimitRange`.
    LimitRange,
    /// `v1 PersistentVolume` (cluster-scoped).
    PersistentVolume,
    /// `v1 PersistentVolumeClaim`.
    PersistentVolumeClaim,
}

impl Kind {
    /// The API resource (group, version, plural) of this kind.
    pub fn api_resource(self) -> ApiResource {
        match self {
            Kind::Namespace => ApiResource::erase::<Namespace>(&()),
            Kind::ServiceAccount => ApiResource::erase::<ServiceAccount>(&()),
            Kind::RoleBinding => ApiResource::erase::<RoleBinding>(&()),
            Kind::ConfigMap => ApiResource::erase::<ConfigMap>(&()),
            Kind::Secret => ApiResource::erase::<Secret>(&()),
            Kind::ResourceQuota => ApiResource::erase::<ResourceQuota>(&()),
            Kind::LimitRange => ApiResource::erase::<LimitRange>(&()),
            Kind::PersistentVolume => ApiResource::erase::<PersistentVolume>(&()),
            Kind::PersistentVolumeClaim => ApiResource::erase::<PersistentVolumeClaim>(&()),
        }
    }

    /// The kind as Kubernetes writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Namespace => "Namespace",
            Kind::ServiceAccount => "ServiceAccount",
            Kind::RoleBinding => "RoleBinding",
            Kind::ConfigMap => "ConfigMap",
            Kind::Secret => "Secret",
            Kind::ResourceQuota => "ResourceQuota",
            Kind::LimitRange => "LimitRange",
            Kind::PersistentVolume => "PersistentVolume",
            Kind::PersistentVolumeClaim => "PersistentVolumeClaim",
        }
    }
}

/// Kind, namespace and name of one object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    /// Its kind.
    pub kind: Kind,
    /// Its namespace (`None` for cluster-scoped kinds).
    pub namespace: Option<String>,
    /// Its name.
    pub name: String,
}

impl std::fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{} {ns}/{}", self.kind.as_str(), self.name),
            None => write!(f, "{} {}", self.kind.as_str(), self.name),
        }
    }
}

/// One object to apply.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)]
pub enum Object {
    /// A Namespace.
    Namespace(Namespace),
    /// A ServiceAccount.
    ServiceAccount(ServiceAccount),
    /// A RoleBinding.
    RoleBinding(RoleBinding),
    /// A ConfigMap.
    ConfigMap(ConfigMap),
    /// A Secret.
    Secret(Secret),
    /// A ResourceQuota.
    ResourceQuota(ResourceQuota),
    /// A LimitRange.
    LimitRange(LimitRange),
    /// A PersistentVolume.
    PersistentVolume(PersistentVolume),
    /// A PersistentVolumeClaim.
    PersistentVolumeClaim(PersistentVolumeClaim),
}

macro_rules! each {
    ($self:ident, $o:ident => $e:expr) => {
        match $self {
            Object::Namespace($o) => $e,
            Object::ServiceAccount($o) => $e,
            Object::RoleBinding($o) => $e,
            Object::ConfigMap($o) => $e,
            Object::Secret($o) => $e,
            Object::ResourceQuota($o) => $e,
            Object::LimitRange($o) => $e,
            Object::PersistentVolume($o) => $e,
            Object::PersistentVolumeClaim($o) => $e,
        }
    };
}

impl Object {
    /// Its kind.
    pub fn kind(&self) -> Kind {
        match self {
            Object::Namespace(_) => Kind::Namespace,
            Object::ServiceAccount(_) => Kind::ServiceAccount,
            Object::RoleBinding(_) => Kind::RoleBinding,
            Object::ConfigMap(_) => Kind::ConfigMap,
            Object::Secret(_) => Kind::Secret,
            Object::ResourceQuota(_) => Kind::ResourceQuota,
            Object::LimitRange(_) => Kind::LimitRange,
            Object::PersistentVolume(_) => Kind::PersistentVolume,
            Object::PersistentVolumeClaim(_) => Kind::PersistentVolumeClaim,
        }
    }

    /// Its key.
    pub fn key(&self) -> ObjectKey {
        ObjectKey {
            kind: self.kind(),
            namespace: each!(self, o => o.namespace()),
            name: each!(self, o => o.name_any()),
        }
    }

    /// Its metadata.
    pub fn meta(&self) -> &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
        each!(self, o => o.meta())
    }

    /// The body of its server-side apply (with `apiVersion` and `kind`).
    pub fn to_value(&self) -> Result<serde_json::Value, serde_json::Error> {
        each!(self, o => serde_json::to_value(o))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn apply_bodies_carry_type_information() {
        let ns = Object::Namespace(Namespace {
            metadata: kube::core::ObjectMeta {
                name: Some("home-ada".into()),
                ..Default::default()
            },
            ..Default::default()
        });
        let value = ns.to_value().unwrap();
        assert_eq!(value["apiVersion"], "v1");
        assert_eq!(value["kind"], "Namespace");
        assert_eq!(ns.key().to_string(), "Namespace home-ada");
        assert_eq!(
            Kind::RoleBinding.api_resource().group,
            "rbac.authorization.k8s.io"
        );
        assert_eq!(
            Kind::PersistentVolume.api_resource().plural,
            "persistentvolumes"
        );
    }
}
