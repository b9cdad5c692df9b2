//! Issue 10's controller rows against a real API server (`HOMESTEAD_TEST_KUBECONFIG`,
//! cluster-admin): a deleted claim is healed onto its volume (row 9), and a namespace
//! carrying homestead's labels that homestead did not make is never adopted (row 11).
//!
//! `HOMESTEAD_TEST_KUBECONFIG=... cargo test --test controller_cluster -- --ignored`

mod support;

use k8s_openapi::api::core::v1::{ConfigMap, Namespace, PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::rbac::v1::RoleBinding;
use kube::api::{Api, DeleteParams, PostParams};
use serde_json::json;

use homestead_core::resources::{Phase, User};
use support::cluster::{Cluster, ServeOptions, WAIT, eventually, wait_phase};

/// Row 9: an admin deletes a User's private claim; homestead makes it again and frees
/// the Retain volume, which binds to the new claim with its source unchanged, and the
/// User says so in `StorageBound`.
#[tokio::test]
#[ignore = "needs a cluster"]
async fn a_deleted_private_claim_binds_again_to_its_volume() {
    let cluster = Cluster::exclusive().await;
    let admin = cluster.admin.clone();
    let _serve = cluster.serve(ServeOptions::default()).await;
    let ines = cluster.user("heal-ines", &[]).await;
    let claims = Api::<PersistentVolumeClaim>::namespaced(admin.clone(), &ines.namespace);
    let volumes = Api::<PersistentVolume>::all(admin.clone());
    let users = Api::<User>::all(admin.clone());

    let bound = |claim: &PersistentVolumeClaim| {
        claim.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound")
    };
    let first = eventually("the private claim Bound", WAIT, || async {
        let claim = claims.get_opt("homestead-private").await.ok()??;
        bound(&claim).then_some(claim)
    })
    .await;
    let volume_name = first
        .spec
        .as_ref()
        .and_then(|s| s.volume_name.clone())
        .expect("the claim names its volume");
    let volume = volumes.get(&volume_name).await.expect("the volume");
    let path =
        |v: &PersistentVolume| serde_json::to_value(v.spec.as_ref()).unwrap()["hostPath"].clone();
    let source = path(&volume);
    assert!(source.is_object(), "a hostPath volume: {source}");
    let old_uid = first.metadata.uid.clone().expect("uid");

    claims
        .delete("homestead-private", &DeleteParams::default())
        .await
        .expect("the admin deletes the claim");

    let again = eventually(
        "a new private claim Bound to the same volume",
        WAIT,
        || async {
            let claim = claims.get_opt("homestead-private").await.ok()??;
            let new = claim.metadata.uid.as_deref() != Some(old_uid.as_str());
            let same_volume =
                claim.spec.as_ref().and_then(|s| s.volume_name.as_deref()) == Some(&volume_name);
            (new && same_volume && bound(&claim)).then_some(claim)
        },
    )
    .await;
    let volume = volumes.get(&volume_name).await.expect("the volume");
    assert_eq!(
        volume.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Bound")
    );
    let claim_ref = volume
        .spec
        .as_ref()
        .and_then(|s| s.claim_ref.clone())
        .expect("claimRef");
    assert_eq!(claim_ref.uid, again.metadata.uid, "bound to the new claim");
    assert_eq!(path(&volume), source, "the data path is unchanged");

    // The User ends Deployed with every claim Bound.
    eventually("StorageBound True on the User", WAIT, || async {
        let user = users.get(&ines.username).await.ok()?;
        let status = user.status?;
        let condition = status
            .conditions
            .iter()
            .find(|c| c.type_ == "StorageBound")?;
        (status.phase == Some(Phase::Deployed) && condition.status == "True").then_some(())
    })
    .await;
}

/// Row 11: `home-<future user>` made with homestead's labels (as homestead's own identity,
/// the only one admission lets write them) and a backdoor RoleBinding; the User is then
/// created. The controller refuses to adopt it and touches nothing inside.
#[tokio::test]
#[ignore = "needs a cluster"]
async fn a_labelled_namespace_made_before_its_user_is_never_adopted() {
    let cluster = Cluster::exclusive().await;
    let admin = cluster.admin.clone();
    let _serve = cluster.serve(ServeOptions::default()).await;
    let username = cluster.name("forged");
    let namespace = format!("home-{username}");
    cluster.delete_on_drop::<Namespace>(None, &namespace);
    let forged: Namespace = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": namespace, "labels": {
            "homestead.dev/managed": "true",
            "app.kubernetes.io/managed-by": "homestead",
            "homestead.dev/user": username,
        }}
    }))
    .expect("namespace");
    Api::<Namespace>::all(admin.clone())
        .create(&PostParams::default(), &forged)
        .await
        .expect("create the labelled namespace");
    let backdoor: RoleBinding = serde_json::from_value(json!({
        "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "backdoor", "namespace": namespace},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "mallory"}]
    }))
    .expect("rolebinding");
    let bindings = Api::<RoleBinding>::namespaced(admin.clone(), &namespace);
    let before = bindings
        .create(&PostParams::default(), &backdoor)
        .await
        .expect("create the backdoor");

    let uid = cluster.uid();
    let user: User = serde_json::from_value(json!({
        "apiVersion": "homestead.dev/v1alpha1", "kind": "User",
        "metadata": {"name": username},
        "spec": {"username": username, "uid": uid, "gid": uid}
    }))
    .expect("user");
    cluster.apply_user(&user).await;
    let failed = wait_phase(&Api::<User>::all(admin.clone()), &username, Phase::Failed).await;
    let status = failed.status.expect("status");
    let reason = status.reason.unwrap_or_default();
    for words in [
        namespace.as_str(),
        "no ownerReference names this User",
        "never adopted",
    ] {
        assert!(reason.contains(words), "{words:?} in {reason:?}");
    }
    let owned = status
        .conditions
        .iter()
        .find(|c| c.type_ == "NamespaceOwned")
        .expect("NamespaceOwned");
    assert_eq!(
        (owned.status.as_str(), owned.reason.as_str()),
        ("False", "NamespaceNotOwned")
    );

    // Nothing inside was touched: the backdoor is as it was, and homestead made nothing.
    let after = bindings
        .get("backdoor")
        .await
        .expect("the backdoor is left");
    assert_eq!(
        after.metadata.resource_version, before.metadata.resource_version,
        "untouched"
    );
    assert!(after.metadata.owner_references.is_none());
    let ns = Api::<Namespace>::all(admin.clone())
        .get(&namespace)
        .await
        .expect("namespace");
    assert!(ns.metadata.owner_references.is_none(), "not adopted");
    assert!(
        Api::<ConfigMap>::namespaced(admin.clone(), &namespace)
            .get_opt("homestead")
            .await
            .expect("get")
            .is_none(),
        "homestead made nothing in it"
    );
    assert!(
        bindings
            .get_opt("homestead-owner")
            .await
            .expect("get")
            .is_none(),
        "no owner RoleBinding either"
    );
}
