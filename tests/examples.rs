//! The example manifests say what homestead does; these tests hold them to it: the User
//! and Session are the ones in the example directory, and the Pod and Deployment, created
//! as their comments say, come out of the real admission core as described.

use std::path::PathBuf;

use base64::Engine;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

use homestead::embedded::{example_config, example_directory};
use homestead_core::pod_index::PodUsers;
use homestead_core::resources::{Session, User};
use homestead_core::review::{Admission, Verdict, Webhook, review};

fn example(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("manifests/examples")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn yaml<T: serde::de::DeserializeOwned>(name: &str) -> T {
    serde_saphyr::from_str(&example(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn directory_doc(kind: &str, name: &str) -> Value {
    let docs: Vec<Value> =
        serde_saphyr::from_multiple(&example("directory.yaml")).expect("directory.yaml");
    docs.into_iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("{kind} {name} in directory.yaml"))
}

#[test]
fn user_and_session_are_the_example_directory_ones() {
    let user: User = yaml("user.yaml");
    let session: Session = yaml("session.yaml");
    let in_dir: User = serde_json::from_value(directory_doc("User", "ada")).expect("User");
    let s_dir: Session =
        serde_json::from_value(directory_doc("Session", "cm37235-2")).expect("Session");
    assert_eq!(user.spec, in_dir.spec);
    assert_eq!(session.spec, s_dir.spec);
}

/// Sends `object` through the mutating webhook (CREATE by `username`) and returns the
/// verdict and the object with the patch applied.
fn mutate(
    object: &Value,
    namespace: &str,
    username: &str,
    kind: (&str, &str, &str),
) -> (Verdict, Value) {
    let (group, version, k) = kind;
    let resource = format!("{}s", k.to_lowercase());
    let body = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "example",
            "kind": {"group": group, "version": version, "kind": k},
            "resource": {"group": group, "version": version, "resource": resource},
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": {"username": username, "groups": ["system:authenticated"]},
            "object": object,
        }
    });
    let config = example_config().expect("example config");
    let (directory, _) = example_directory(&config).expect("example directory");
    let pods = PodUsers::default();
    let admission = Admission {
        config: &config,
        directory: &directory,
        pods: &pods,
    };
    let request = serde_json::to_vec(&body).expect("json");
    let reviewed = review(Webhook::Mutate, &request, &admission).expect("review");
    let response: Value = serde_json::from_slice(&reviewed.body).expect("response");
    let mut out = object.clone();
    if let Some(patch) = response["response"]["patch"].as_str() {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(patch)
            .expect("base64");
        let patch: json_patch::Patch = serde_json::from_slice(&bytes).expect("patch");
        json_patch::patch(&mut out, &patch).expect("patch applies");
    }
    (reviewed.summary.verdict, out)
}

#[test]
fn the_plain_pod_runs_as_ada_with_her_storage() {
    let pod: Value = serde_json::to_value(yaml::<Pod>("pod.yaml")).expect("pod");
    let (verdict, mutated) = mutate(&pod, "home-ada", "ada", ("", "v1", "Pod"));
    assert!(matches!(verdict, Verdict::Patched { .. }), "{verdict:?}");
    let pod: Pod = serde_json::from_value(mutated).expect("mutated pod");
    let spec = pod.spec.expect("spec");
    let sc = spec.security_context.clone().expect("securityContext");
    assert_eq!(sc.run_as_user, Some(1001));
    assert_eq!(sc.run_as_group, Some(1001));
    assert_eq!(sc.fs_group, Some(1001));
    assert_eq!(sc.run_as_non_root, Some(true));
    assert!(sc.supplemental_groups.unwrap_or_default().contains(&2000));
    let mounts: Vec<String> = spec.containers[0]
        .volume_mounts
        .iter()
        .flatten()
        .map(|m| m.mount_path.clone())
        .collect();
    assert!(mounts.contains(&"/private".to_owned()), "{mounts:?}");
    let env: Vec<(String, String)> = spec.containers[0]
        .env
        .iter()
        .flatten()
        .map(|e| (e.name.clone(), e.value.clone().unwrap_or_default()))
        .collect();
    assert!(
        env.contains(&("HOMESTEAD_USER".into(), "ada".into())),
        "{env:?}"
    );
    assert!(env.contains(&("HOMESTEAD_NAMESPACE".into(), "home-ada".into())));
    // Admitting the mutated pod again changes nothing (reinvocation).
    let (again, _) = mutate(
        &serde_json::to_value(Pod {
            metadata: pod.metadata,
            spec: Some(spec),
            status: None,
        })
        .expect("pod"),
        "home-ada",
        "ada",
        ("", "v1", "Pod"),
    );
    assert!(matches!(again, Verdict::Allowed), "{again:?}");
}

#[test]
fn the_deployment_by_a_member_is_stamped_with_run_as_and_a_non_member_is_refused() {
    let deployment: Value =
        serde_json::to_value(yaml::<Deployment>("deployment.yaml")).expect("deployment");
    let kind = ("apps", "v1", "Deployment");
    let (verdict, mutated) = mutate(&deployment, "cm37235-2", "ada", kind);
    assert!(matches!(verdict, Verdict::Patched { .. }), "{verdict:?}");
    let d: Deployment = serde_json::from_value(mutated).expect("mutated");
    let template = d.spec.expect("spec").template;
    let annotations = template
        .metadata
        .and_then(|m| m.annotations)
        .unwrap_or_default();
    assert_eq!(
        annotations.get("homestead.dev/run-as").map(String::as_str),
        Some("ada")
    );
    let sc = template
        .spec
        .and_then(|s| s.security_context)
        .expect("securityContext");
    assert_eq!(sc.run_as_user, Some(1001));
    assert_eq!(sc.run_as_group, Some(159620), "the session's group");
    let (verdict, _) = mutate(&deployment, "cm37235-2", "dave", kind);
    assert!(matches!(verdict, Verdict::Denied { .. }), "{verdict:?}");
}
