//! Shared fixtures of the admission tests: a directory, request builders, patch helpers.

#![allow(dead_code)]

use base64::Engine as _;
use homestead_core::config::Config;
use homestead_core::directory::Directory;
use homestead_core::pod_index::PodUsers;
use homestead_core::review::{Admission, Reviewed, Webhook, review};
use serde_json::{Value, json};

/// Users ada (member), bob (member), carol (disabled member), dave (not a member), erin
/// (owner of home-erin); session cm37235-2 with a dataset claim.
pub const DIRECTORY: &str = r#"
apiVersion: homestead.dev/v1alpha1
kind: User
metadata: {name: ada}
spec: {username: ada, uid: 1001, gid: 1001, supplementalGroups: [2000, 2001]}
---
apiVersion: homestead.dev/v1alpha1
kind: User
metadata: {name: bob}
spec: {username: bob, uid: 1002, gid: 1002}
---
apiVersion: homestead.dev/v1alpha1
kind: User
metadata: {name: carol}
spec: {username: carol, uid: 1003, gid: 1003, disabled: true}
---
apiVersion: homestead.dev/v1alpha1
kind: User
metadata: {name: dave}
spec: {username: dave, uid: 1004, gid: 1004}
---
apiVersion: homestead.dev/v1alpha1
kind: Session
metadata: {name: cm37235-2}
spec:
  proposalCode: cm
  proposalNumber: 37235
  visit: 2
  instrument: i03
  dataDirectory: /dls/i03/data/2024/cm37235-2
  gid: 159620
  members: [ada, bob, carol]
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: imagenet-claim
  namespace: cm37235-2
  labels: {homestead.dev/dataset: imagenet}
"#;

/// The session namespace of the fixture.
pub const SESSION_NS: &str = "cm37235-2";
/// The fixture's user namespace of ada.
pub const ADA_NS: &str = "home-ada";

/// Config, directory and pod index of the fixture: ada's pod `analysis` and bob's pod
/// `bobs` in the session namespace, ada's `notebook` in her own namespace.
pub struct Fixture {
    pub config: Config,
    pub directory: Directory,
    pub pods: PodUsers,
}

impl Fixture {
    pub fn new() -> Self {
        Self::with_config(Config::default())
    }

    pub fn with_config(config: Config) -> Self {
        Self::with_directory(config, DIRECTORY)
    }

    /// The fixture with another directory text (e.g. [`DIRECTORY`] with a Session status).
    pub fn with_directory(config: Config, directory: &str) -> Self {
        let (directory, problems) = Directory::from_yaml(&config, directory).unwrap();
        assert!(problems.is_empty(), "{problems:?}");
        let pods = PodUsers::new([
            (SESSION_NS, "analysis", "ada"),
            (SESSION_NS, "bobs", "bob"),
            (ADA_NS, "notebook", "ada"),
        ]);
        Self {
            config,
            directory,
            pods,
        }
    }

    pub fn admission(&self) -> Admission<'_> {
        Admission {
            config: &self.config,
            directory: &self.directory,
            pods: &self.pods,
        }
    }

    pub fn review(&self, webhook: Webhook, request: &Value) -> Reviewed<'static> {
        let body = serde_json::to_vec(request).unwrap();
        review(webhook, &body, &self.admission())
            .unwrap()
            .into_owned()
    }

    /// Runs the mutating webhook and applies its patch; returns the object as mutated.
    pub fn mutated(&self, request: &Value) -> Value {
        let reviewed = self.review(Webhook::Mutate, request);
        let response = response(&reviewed);
        assert_eq!(response["allowed"], true, "mutation refused: {response}");
        let mut object = request["request"]["object"].clone();
        if let Some(patch) = patch_of(&reviewed) {
            json_patch::patch(&mut object, &patch).unwrap();
        }
        object
    }
}

/// A request `op` of `object` (kind from the object) in `ns` by `username`.
pub fn request(op: &str, ns: &str, username: &str, object: Value) -> Value {
    let kind = object["kind"].as_str().unwrap_or("Pod").to_owned();
    let api_version = object["apiVersion"].as_str().unwrap_or("v1").to_owned();
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g.to_owned(), v.to_owned()),
        None => (String::new(), api_version.clone()),
    };
    let resource = format!("{}s", kind.to_lowercase());
    json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": group, "version": version, "kind": kind},
            "resource": {"group": group, "version": version, "resource": resource},
            "namespace": ns,
            "operation": op,
            "userInfo": {"username": username, "groups": ["system:authenticated"]},
            "object": object,
            "dryRun": false
        }
    })
}

/// As [`request`], UPDATE with an old object.
pub fn update(ns: &str, username: &str, object: Value, old: Value) -> Value {
    let mut r = request("UPDATE", ns, username, object);
    r["request"]["oldObject"] = old;
    r
}

/// The response part of a review.
pub fn response(reviewed: &Reviewed) -> Value {
    let out: Value = serde_json::from_slice(&reviewed.body).unwrap();
    out["response"].clone()
}

/// The decoded JSON Patch of a review, if any.
pub fn patch_of(reviewed: &Reviewed) -> Option<json_patch::Patch> {
    let response = response(reviewed);
    let encoded = response.get("patch")?.as_str()?;
    assert_eq!(response["patchType"], "JSONPatch");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .unwrap();
    Some(serde_json::from_slice(&bytes).unwrap())
}

/// A plain pod: what someone would `kubectl apply`.
pub fn plain_pod() -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "analysis", "labels": {"app": "analysis"}},
        "spec": {
            "containers": [{"name": "main", "image": "python:3.12", "command": ["python", "-m", "http.server"]}],
            "initContainers": [{"name": "fetch", "image": "busybox"}]
        }
    })
}

/// A Deployment wrapping the plain pod.
pub fn deployment() -> Value {
    let pod = plain_pod();
    json!({
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "web"},
        "spec": {
            "replicas": 2,
            "selector": {"matchLabels": {"app": "analysis"}},
            "template": {"metadata": pod["metadata"], "spec": pod["spec"]}
        }
    })
}

/// A CronJob wrapping the plain pod.
pub fn cronjob() -> Value {
    let pod = plain_pod();
    json!({
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {"name": "nightly"},
        "spec": {
            "schedule": "0 3 * * *",
            "jobTemplate": {"spec": {"template": {"metadata": pod["metadata"], "spec": pod["spec"]}}}
        }
    })
}

/// The workflow controller's ServiceAccount in Argo's default install (`workflowControllers`).
pub const WORKFLOW_CONTROLLER: &str = "system:serviceaccount:argo:argo-workflow-controller";

/// An Argo Workflow with a steps template and a DAG template, as a member would submit
/// it (the session's `argo-workflow` ServiceAccount, as the facility sets up).
pub fn workflow() -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": "reduce-"},
        "spec": {
            "entrypoint": "main",
            "serviceAccountName": "argo-workflow",
            "podMetadata": {"labels": {"app": "reduce"}},
            "templates": [
                {"name": "main", "steps": [[{"name": "fetch", "template": "fetch"}], [{"name": "fan", "template": "fan"}]]},
                {"name": "fan", "dag": {"tasks": [
                    {"name": "a", "template": "work"},
                    {"name": "b", "template": "work", "dependencies": ["a"]}
                ]}},
                {"name": "fetch", "metadata": {"labels": {"step": "fetch"}},
                    "container": {"image": "busybox", "command": ["true"]}},
                {"name": "work", "container": {"image": "python:3.12", "command": ["python", "-c", "print(1)"]}}
            ]
        }
    })
}

/// A Workflow run from the WorkflowTemplate `reduce` (`workflowTemplateRef`).
pub fn workflow_from_template() -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"generateName": "reduce-"},
        "spec": {"workflowTemplateRef": {"name": "reduce"}}
    })
}

/// The WorkflowTemplate `reduce`: the workflow's spec, kept for anyone to run.
pub fn workflow_template() -> Value {
    let mut template = workflow();
    template["kind"] = json!("WorkflowTemplate");
    template["metadata"] = json!({"name": "reduce"});
    template
}

/// A CronWorkflow running the workflow nightly.
pub fn cron_workflow() -> Value {
    json!({
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "CronWorkflow",
        "metadata": {"name": "nightly"},
        "spec": {"schedule": "0 3 * * *", "workflowSpec": workflow()["spec"]}
    })
}

/// The pod Argo's workflow controller makes for a step of a Workflow stamped `run_as`:
/// the workflow's `podMetadata` on it, the Workflow as its controller.
pub fn workflow_pod(run_as: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "reduce-x7k2p-work-1234",
            "labels": {"app": "reduce", "workflows.argoproj.io/workflow": "reduce-x7k2p"},
            "annotations": {"homestead.dev/run-as": run_as, "workflows.argoproj.io/node-name": "reduce-x7k2p[1].fan.a"},
            "ownerReferences": [{"apiVersion": "argoproj.io/v1alpha1", "kind": "Workflow",
                "name": "reduce-x7k2p", "uid": "6b1a0a0c-1111-4c1e-9a57-1d6f1f0d2b3c", "controller": true, "blockOwnerDeletion": true}]
        },
        "spec": {
            "serviceAccountName": "argo-workflow",
            "restartPolicy": "Never",
            "initContainers": [{"name": "init", "image": "quay.io/argoproj/argoexec:v3.6.2", "command": ["argoexec", "init"]}],
            "containers": [
                {"name": "wait", "image": "quay.io/argoproj/argoexec:v3.6.2", "command": ["argoexec", "wait"]},
                {"name": "main", "image": "python:3.12", "command": ["/var/run/argo/argoexec", "emissary", "--", "python", "-c", "print(1)"]}
            ]
        }
    })
}

/// The Kubeflow training operator's ServiceAccount (added to `trustedControllers` by
/// [`pytorch_config`]).
pub const TRAINING_OPERATOR: &str = "system:serviceaccount:kubeflow:training-operator";

/// The default configuration with Kubeflow's `PyTorchJob` (and a Spark operator's
/// `SparkApplication`) as configured workload kinds, the training operator trusted.
pub fn pytorch_config() -> Config {
    let mut config = Config::from_yaml(
        "workloadKinds:
  - group: kubeflow.org
    version: v1
    kind: PyTorchJob
    podTemplates: [/spec/pytorchReplicaSpecs/*/template]
  - group: sparkoperator.k8s.io
    version: v1beta2
    kind: SparkApplication
    podTemplates: [/spec/driver/template, /spec/executor/template]
",
    )
    .unwrap();
    config.trusted_controllers.push(TRAINING_OPERATOR.into());
    config
}

/// A PyTorchJob with a master and two workers, as a member would submit it.
pub fn pytorch_job() -> Value {
    let container = json!({"name": "pytorch", "image": "docker.io/kubeflowkatib/pytorch-mnist:v1beta1-45c5727",
        "command": ["python3", "/opt/pytorch-mnist/mnist.py", "--epochs=1"]});
    json!({
        "apiVersion": "kubeflow.org/v1",
        "kind": "PyTorchJob",
        "metadata": {"name": "mnist"},
        "spec": {
            "runPolicy": {"cleanPodPolicy": "None"},
            "pytorchReplicaSpecs": {
                "Master": {"replicas": 1, "restartPolicy": "OnFailure",
                    "template": {"spec": {"containers": [container]}}},
                "Worker": {"replicas": 2, "restartPolicy": "OnFailure",
                    "template": {"metadata": {"labels": {"role": "worker"}}, "spec": {"containers": [container]}}}
            }
        }
    })
}

/// A pod the training operator makes from a PyTorchJob's Worker template stamped `run_as`.
pub fn pytorch_pod(run_as: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": "mnist-worker-0",
            "labels": {"role": "worker", "training.kubeflow.org/job-name": "mnist"},
            "annotations": {"homestead.dev/run-as": run_as},
            "ownerReferences": [{"apiVersion": "kubeflow.org/v1", "kind": "PyTorchJob",
                "name": "mnist", "uid": "3c6f0d1e-5555-4c1e-9a57-1d6f1f0d2b3c", "controller": true, "blockOwnerDeletion": true}]
        },
        "spec": {
            "restartPolicy": "OnFailure",
            "containers": [{"name": "pytorch", "image": "docker.io/kubeflowkatib/pytorch-mnist:v1beta1-45c5727"}]
        }
    })
}
