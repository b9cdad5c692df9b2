//! The `homestead` binary, driven as a user would: crds, config check, review, mutate.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use base64::Engine as _;
use serde_json::Value;

const PLAIN_POD: &str = "\
apiVersion: v1
kind: Pod
metadata:
  name: analysis
spec:
  containers:
    - name: python
      image: python:3.12-slim
      command: [python, -c, \"print('hi')\"]
";

const PRIVILEGED_POD: &str = "\
apiVersion: v1
kind: Pod
metadata:
  name: escape
spec:
  containers:
    - name: shell
      image: busybox
      securityContext:
        privileged: true
";

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// Runs the binary with `args`, feeding `stdin`.
fn homestead(args: &[&str], stdin: &[u8]) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_homestead"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("HOMESTEAD_CONFIG")
        .env_remove("HOMESTEAD_DIRECTORY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("homestead runs");
    let mut input = child.stdin.take().expect("stdin");
    // The command may exit before reading everything (bad arguments); that is fine.
    let _ = input.write_all(stdin);
    drop(input);
    child.wait_with_output().expect("homestead finishes")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_exit(output: &Output, code: i32) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "exit status\nstdout:\n{}\nstderr:\n{}",
        stdout(output),
        stderr(output)
    );
}

fn write(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, text).expect("write temp file");
    path.to_str().expect("UTF-8 path").to_owned()
}

/// The AdmissionReview response of `review`.
fn response(output: &Output) -> Value {
    let review: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("response is not JSON ({e}): {}", stdout(output)));
    assert_eq!(review["apiVersion"], "admission.k8s.io/v1");
    assert_eq!(review["kind"], "AdmissionReview");
    review["response"].clone()
}

#[test]
fn crds_prints_the_committed_crds() {
    let output = homestead(&["crds"], b"");
    assert_exit(&output, 0);
    let mut want = String::new();
    for file in [
        "users.homestead.dev.yaml",
        "sessions.homestead.dev.yaml",
        "projects.homestead.dev.yaml",
    ] {
        want.push_str(
            &std::fs::read_to_string(repo("manifests/crds").join(file)).expect("committed CRD"),
        );
    }
    assert_eq!(stdout(&output), want);
}

#[test]
fn config_check_accepts_the_example() {
    let output = homestead(&["config", "check", "manifests/examples/config.yaml"], b"");
    assert_exit(&output, 0);
    assert_eq!(stdout(&output).trim(), "ok");
}

#[test]
fn config_check_reports_every_problem_with_its_path() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = write(
        &dir,
        "bad.yaml",
        "storage:\n  private:\n    pathTemplate: /export/home/{usr}\n    backend: nfs\n\
         datasets:\n  mountRoot: datasets\n",
    );
    let output = homestead(&["config", "check", &bad], b"");
    assert_exit(&output, 1);
    let lines: Vec<String> = stdout(&output).lines().map(str::to_owned).collect();
    for want in [
        "storage.private.pathTemplate: unknown placeholder {usr}",
        "storage.private.server: backend nfs needs a server",
        "datasets.mountRoot: \"datasets\" must be an absolute path",
    ] {
        assert!(
            lines.iter().any(|l| l.starts_with(want)),
            "missing {want:?} in {lines:#?}"
        );
    }
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert!(
        stderr(&output).contains("3 problem(s)"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn config_check_checks_hooks_and_accepts_the_documented_example() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = write(
        &dir,
        "hooks.yaml",
        "hooks:\n  - {name: quota, url: 'https://q.example.org/', timeout: 2m}\n\
         \x20 - {name: quota, url: 'http://t.example.org/', credentialsSecret: {namespace: hs, name: t}}\n",
    );
    let output = homestead(&["config", "check", &bad], b"");
    assert_exit(&output, 1);
    let lines: Vec<String> = stdout(&output).lines().map(str::to_owned).collect();
    assert_eq!(
        lines,
        [
            "hooks[0].timeout: 2m must be more than 0 and at most 1m",
            "hooks[1].name: \"quota\" is the name of an earlier hook",
            "hooks[1].credentialsSecret: credentials are only sent over https:// (the URL is http://)",
        ]
    );

    // The example configuration's commented `hooks:` section, uncommented, is valid.
    let example = std::fs::read_to_string(repo("manifests/examples/config.yaml")).expect("example");
    let start = example
        .find("# hooks:")
        .expect("a hooks section in the example");
    let hooks: String = example[start..]
        .lines()
        .map(|l| format!("{}\n", l.strip_prefix("# ").unwrap_or(l)))
        .collect();
    assert!(hooks.contains("blocking: true"), "{hooks}");
    let good = write(&dir, "example-hooks.yaml", &hooks);
    let output = homestead(&["config", "check", &good], b"");
    assert_exit(&output, 0);
    assert_eq!(stdout(&output).trim(), "ok");
}

#[test]
fn config_check_reports_parse_errors_and_missing_files() {
    let dir = tempfile::tempdir().expect("tempdir");
    let unknown = write(&dir, "unknown.yaml", "namespace:\n  user: x\n");
    let output = homestead(&["config", "check", &unknown], b"");
    assert_exit(&output, 1);
    assert!(
        stdout(&output).contains("unknown field `namespace`"),
        "{}",
        stdout(&output)
    );

    let output = homestead(&["config", "check", "/nonexistent/homestead.yaml"], b"");
    assert_exit(&output, 1);
    assert!(
        stderr(&output).starts_with("homestead: cannot read /nonexistent/homestead.yaml"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn review_patches_the_example_pod() {
    let output = homestead(
        &[
            "review",
            "--webhook",
            "mutate",
            "-f",
            "manifests/examples/review-pod.json",
        ],
        b"",
    );
    assert_exit(&output, 0);
    let response = response(&output);
    assert_eq!(response["uid"], "705ab4f5-6393-11e8-b7cc-42010a800002");
    assert_eq!(response["allowed"], true);
    assert_eq!(response["patchType"], "JSONPatch");
    let patch = base64::engine::general_purpose::STANDARD
        .decode(response["patch"].as_str().expect("a patch"))
        .expect("base64");
    let patch: Value = serde_json::from_slice(&patch).expect("JSON patch");
    let text = patch.to_string();
    assert!(text.contains("\"runAsUser\":1001"), "{text}");
    assert!(text.contains("homestead-private"), "{text}");
}

#[test]
fn review_reads_standard_input_and_answers_denials_with_exit_0() {
    let example = std::fs::read_to_string(repo("manifests/examples/review-pod.json"))
        .expect("example review");
    let by_dave = example
        .replace("\"username\": \"ada\"", "\"username\": \"dave\"")
        .replace("home-ada", "cm37235-2");
    let output = homestead(
        &["review", "--webhook", "mutate", "-f", "-"],
        by_dave.as_bytes(),
    );
    assert_exit(&output, 0);
    let response = response(&output);
    assert_eq!(response["allowed"], false);
    assert_eq!(response["status"]["code"], 403);
    let message = response["status"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("not a member"), "{message}");
}

#[test]
fn review_validate_denies_a_root_pod() {
    let example = std::fs::read_to_string(repo("manifests/examples/review-pod.json"))
        .expect("example review");
    let mut review: Value = serde_json::from_str(&example).expect("JSON");
    review["request"]["object"]["spec"]["securityContext"] = serde_json::json!({"runAsUser": 0});
    let output = homestead(
        &["review", "--webhook", "validate"],
        review.to_string().as_bytes(),
    );
    assert_exit(&output, 0);
    let response = response(&output);
    assert_eq!(response["allowed"], false);
    let message = response["status"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("runAsUser"), "{message}");
}

#[test]
fn review_refuses_unusable_input_without_panicking() {
    for (input, want) in [
        (&b"this is not json"[..], "not a JSON AdmissionReview"),
        (
            &br#"{"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "request": {}}"#[..],
            "not an admission.k8s.io/v1 AdmissionReview",
        ),
        (
            &br#"{"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}"#[..],
            "no request",
        ),
        (&b""[..], "not a JSON AdmissionReview"),
    ] {
        let output = homestead(&["review", "--webhook", "validate"], input);
        assert_exit(&output, 1);
        let err = stderr(&output);
        assert!(err.starts_with("homestead: "), "{err}");
        assert!(err.contains(want), "missing {want:?} in {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert!(output.stdout.is_empty());
    }
    let output = homestead(&["review", "--webhook", "sideways"], b"{}");
    assert_exit(&output, 2);
    assert!(stderr(&output).contains("expected \"mutate\" or \"validate\""));
}

#[test]
fn review_uses_the_given_directory_and_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let directory = write(
        &dir,
        "directory.yaml",
        "apiVersion: homestead.dev/v1alpha1\nkind: User\nmetadata: {name: ada}\n\
         spec: {username: ada, uid: 4242, gid: 4243}\n",
    );
    let config = write(&dir, "config.yaml", "usernamePrefix: \"oidc:\"\n");
    let example = std::fs::read_to_string(repo("manifests/examples/review-pod.json"))
        .expect("example review");
    let prefixed = example.replace("\"username\": \"ada\"", "\"username\": \"oidc:ada\"");
    let output = homestead(
        &[
            "review",
            "--webhook",
            "mutate",
            "--directory",
            &directory,
            "--config",
            &config,
        ],
        prefixed.as_bytes(),
    );
    assert_exit(&output, 0);
    let response = response(&output);
    let patch = base64::engine::general_purpose::STANDARD
        .decode(response["patch"].as_str().expect("a patch"))
        .expect("base64");
    let text = String::from_utf8(patch).expect("UTF-8");
    assert!(text.contains("\"runAsUser\":4242"), "{text}");

    let broken = write(&dir, "broken.yaml", "storage: {private: {size: lots}}\n");
    let output = homestead(
        &["review", "--webhook", "mutate", "--config", &broken],
        example.as_bytes(),
    );
    assert_exit(&output, 1);
    assert!(
        stderr(&output).contains("storage.private.size"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn mutate_runs_a_plain_pod_as_ada_with_her_volumes_and_env() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pod = write(&dir, "pod.yaml", PLAIN_POD);
    let output = homestead(
        &[
            "mutate",
            "--namespace",
            "home-ada",
            "--as",
            "ada",
            "-f",
            &pod,
            "-o",
            "json",
        ],
        b"",
    );
    assert_exit(&output, 0);
    let pod: Value = serde_json::from_slice(&output.stdout).expect("JSON pod");
    let security = &pod["spec"]["securityContext"];
    assert_eq!(security["runAsUser"], 1001);
    assert_eq!(security["runAsGroup"], 1001);
    assert_eq!(security["fsGroup"], 1001);
    assert_eq!(security["runAsNonRoot"], true);
    assert_eq!(security["supplementalGroups"], serde_json::json!([2000]));
    let volumes: Vec<&str> = pod["spec"]["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .filter_map(|v| v["name"].as_str())
        .collect();
    for want in [
        "homestead-private",
        "homestead-shared",
        "dataset-reference-genomes",
    ] {
        assert!(volumes.contains(&want), "missing {want} in {volumes:?}");
    }
    let container = &pod["spec"]["containers"][0];
    let env: Vec<(String, String)> = container["env"]
        .as_array()
        .expect("env")
        .iter()
        .map(|e| {
            (
                e["name"].as_str().unwrap_or_default().to_owned(),
                e["value"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect();
    for (name, value) in [
        ("HOMESTEAD_USER", "ada"),
        ("HOMESTEAD_UID", "1001"),
        ("HOMESTEAD_NAMESPACE", "home-ada"),
        ("HOMESTEAD_PRIVATE_DIR", "/private"),
    ] {
        assert!(
            env.contains(&(name.to_owned(), value.to_owned())),
            "missing {name}={value} in {env:?}"
        );
    }
    let mounts: Vec<&str> = container["volumeMounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .filter_map(|m| m["mountPath"].as_str())
        .collect();
    assert!(
        mounts.contains(&"/private") && mounts.contains(&"/shared"),
        "{mounts:?}"
    );
}

#[test]
fn mutate_on_its_own_output_changes_nothing() {
    let first = homestead(
        &["mutate", "--namespace", "home-ada", "--as", "ada"],
        PLAIN_POD.as_bytes(),
    );
    assert_exit(&first, 0);
    let yaml = stdout(&first);
    assert!(yaml.contains("runAsUser: 1001"), "{yaml}");

    let patch = homestead(
        &[
            "mutate",
            "--namespace",
            "home-ada",
            "--as",
            "ada",
            "--output",
            "patch",
        ],
        yaml.as_bytes(),
    );
    assert_exit(&patch, 0);
    let operations: Value = serde_json::from_slice(&patch.stdout).expect("JSON patch");
    assert_eq!(operations, serde_json::json!([]), "{}", stdout(&patch));

    let again = homestead(
        &["mutate", "--namespace", "home-ada", "--as", "ada"],
        yaml.as_bytes(),
    );
    assert_exit(&again, 0);
    assert_eq!(stdout(&again), yaml);
}

#[test]
fn mutate_refuses_a_privileged_pod_naming_the_field() {
    let output = homestead(
        &["mutate", "--namespace", "home-ada", "--as", "ada"],
        PRIVILEGED_POD.as_bytes(),
    );
    assert_exit(&output, 1);
    assert!(output.stdout.is_empty(), "{}", stdout(&output));
    let err = stderr(&output);
    assert!(err.contains("securityContext.privileged"), "{err}");
}

#[test]
fn mutate_refuses_people_the_directory_refuses() {
    for (user, want) in [("dave", "not a member"), ("carol", "disabled")] {
        let output = homestead(
            &["mutate", "--namespace", "cm37235-2", "--as", user],
            PLAIN_POD.as_bytes(),
        );
        assert_exit(&output, 1);
        assert!(
            stderr(&output).contains(want),
            "{user}: {}",
            stderr(&output)
        );
    }
}

#[test]
fn mutate_leaves_unmanaged_namespaces_alone() {
    let output = homestead(
        &[
            "mutate",
            "--namespace",
            "default",
            "--as",
            "ada",
            "-o",
            "patch",
        ],
        PLAIN_POD.as_bytes(),
    );
    assert_exit(&output, 0);
    assert_eq!(stdout(&output).trim(), "[]");
}

#[test]
fn mutate_stamps_workload_templates_with_the_person() {
    let deployment = r#"{
      "apiVersion": "apps/v1", "kind": "Deployment",
      "metadata": {"name": "web"},
      "spec": {"selector": {"matchLabels": {"app": "web"}},
               "template": {"metadata": {"labels": {"app": "web"},
                                         "annotations": {"homestead.dev/run-as": "ada"}},
                            "spec": {"containers": [{"name": "web", "image": "nginx"}]}}}
    }"#;
    let output = homestead(
        &[
            "mutate",
            "--namespace",
            "cm37235-2",
            "--as",
            "bob",
            "-o",
            "json",
        ],
        deployment.as_bytes(),
    );
    assert_exit(&output, 0);
    let object: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let template = &object["spec"]["template"];
    assert_eq!(
        template["metadata"]["annotations"]["homestead.dev/run-as"],
        "bob"
    );
    assert_eq!(template["spec"]["securityContext"]["runAsUser"], 1002);
    assert_eq!(template["spec"]["securityContext"]["runAsGroup"], 159620);
}

#[test]
fn mutate_shows_what_a_members_workflow_becomes() {
    let workflow = r#"
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {generateName: reduce-}
spec:
  entrypoint: main
  templates:
    - name: main
      metadata: {annotations: {homestead.dev/run-as: ada}}
      container: {image: busybox, command: ["true"]}
"#;
    let output = homestead(
        &[
            "mutate",
            "--namespace",
            "cm37235-2",
            "--as",
            "bob",
            "-o",
            "json",
        ],
        workflow.as_bytes(),
    );
    assert_exit(&output, 0);
    let object: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(
        object["spec"]["podMetadata"]["annotations"]["homestead.dev/run-as"],
        "bob"
    );
    assert_eq!(
        object["spec"]["templates"][0]["metadata"]["annotations"],
        serde_json::json!({})
    );
    // dave is no member: refused, as the webhook would.
    let output = homestead(
        &["mutate", "--namespace", "cm37235-2", "--as", "dave"],
        workflow.as_bytes(),
    );
    assert_exit(&output, 1);
    assert!(stderr(&output).contains("dave"), "{}", stderr(&output));
}

#[test]
fn mutate_names_what_is_wrong_with_a_manifest() {
    for (input, want) in [
        (
            "kind: Service\nmetadata: {name: x}\n",
            "kind Service is not one of",
        ),
        ("kind: Pod\nmetadata: {namespace: other}\n", "\"other\""),
        ("{ not yaml: [", "not YAML or JSON"),
    ] {
        let output = homestead(
            &["mutate", "--namespace", "home-ada", "--as", "ada"],
            input.as_bytes(),
        );
        assert_exit(&output, 1);
        let err = stderr(&output);
        assert!(
            err.starts_with("homestead: ") && err.contains(want),
            "{want}: {err}"
        );
    }
}

#[test]
fn mutate_and_review_understand_project_namespaces_from_the_directory_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let directory = write(
        &dir,
        "directory.yaml",
        "apiVersion: homestead.dev/v1alpha1\nkind: User\nmetadata: {name: ada}\n\
         spec: {username: ada, uid: 4242, gid: 4243}\n---\n\
         apiVersion: homestead.dev/v1alpha1\nkind: User\nmetadata: {name: bob}\n\
         spec: {username: bob, uid: 4244, gid: 4245}\n---\n\
         apiVersion: homestead.dev/v1alpha1\nkind: User\nmetadata: {name: eve}\n\
         spec: {username: eve, uid: 4246, gid: 4247}\n---\n\
         apiVersion: homestead.dev/v1alpha1\nkind: Project\nmetadata: {name: optics}\n\
         spec: {owner: ada, members: [{username: bob, role: view}], gid: 7000, namespace: optics}\n",
    );
    let pod = write(&dir, "pod.yaml", PLAIN_POD);
    let run = |user: &str| {
        homestead(
            &[
                "mutate",
                "--directory",
                &directory,
                "--namespace",
                "optics",
                "--as",
                user,
                "-f",
                &pod,
                "-o",
                "json",
            ],
            b"",
        )
    };
    // The owner runs as herself with the project's group and her own claim there.
    let output = run("ada");
    assert_exit(&output, 0);
    let mutated: Value = serde_json::from_slice(&output.stdout).expect("JSON pod");
    let security = &mutated["spec"]["securityContext"];
    assert_eq!(security["runAsUser"], 4242, "{mutated}");
    assert_eq!(security["runAsGroup"], 7000, "{mutated}");
    assert_eq!(security["fsGroup"], 7000, "{mutated}");
    let groups = security["supplementalGroups"].as_array().expect("groups");
    assert!(groups.contains(&7000.into()), "{groups:?}");
    let claims: Vec<&str> = mutated["spec"]["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .filter_map(|v| v["persistentVolumeClaim"]["claimName"].as_str())
        .collect();
    assert!(claims.contains(&"homestead-private-ada"), "{claims:?}");

    // A viewer may not run pods there; someone not in the project may not either.
    for (user, want) in [("bob", "view"), ("eve", "not a member")] {
        let output = run(user);
        assert_exit(&output, 1);
        assert!(
            stderr(&output).contains(want),
            "{user}: {}",
            stderr(&output)
        );
    }

    // `review` reads the same directory: the owner's pod is patched to the project gid.
    let example = std::fs::read_to_string(repo("manifests/examples/review-pod.json"))
        .expect("example review");
    let review = example.replace("\"namespace\": \"home-ada\"", "\"namespace\": \"optics\"");
    assert_ne!(review, example, "the example review names home-ada");
    let output = homestead(
        &["review", "--webhook", "mutate", "--directory", &directory],
        review.as_bytes(),
    );
    assert_exit(&output, 0);
    let response = response(&output);
    assert_eq!(response["allowed"], true, "{response}");
    let patch = base64::engine::general_purpose::STANDARD
        .decode(response["patch"].as_str().expect("a patch"))
        .expect("base64");
    let text = String::from_utf8(patch).expect("UTF-8");
    assert!(
        text.contains("\"runAsUser\":4242") && text.contains("\"runAsGroup\":7000"),
        "{text}"
    );
}

const PYTORCH_CONFIG: &str = "\
workloadKinds:
  - group: kubeflow.org
    version: v1
    kind: PyTorchJob
    podTemplates: [/spec/pytorchReplicaSpecs/*/template]
";

const PYTORCH_JOB: &str = r#"
apiVersion: kubeflow.org/v1
kind: PyTorchJob
metadata: {name: mnist}
spec:
  pytorchReplicaSpecs:
    Master:
      replicas: 1
      template:
        metadata: {annotations: {homestead.dev/run-as: ada}}
        spec: {containers: [{name: pytorch, image: pytorch/pytorch}]}
    Worker:
      replicas: 2
      template:
        spec: {containers: [{name: pytorch, image: pytorch/pytorch}]}
"#;

#[test]
fn mutate_shows_what_a_configured_kind_becomes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write(&dir, "config.yaml", PYTORCH_CONFIG);
    let output = homestead(
        &[
            "mutate",
            "--config",
            &config,
            "-n",
            "cm37235-2",
            "--as",
            "bob",
            "-o",
            "json",
        ],
        PYTORCH_JOB.as_bytes(),
    );
    assert_exit(&output, 0);
    let job: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    for replica in ["Master", "Worker"] {
        let template = &job["spec"]["pytorchReplicaSpecs"][replica]["template"];
        assert_eq!(
            template["metadata"]["annotations"]["homestead.dev/run-as"], "bob",
            "{replica}: the forged stamp is overwritten"
        );
        assert_eq!(template["spec"]["securityContext"]["runAsGroup"], 159620);
    }
    // Without the configuration the kind is unknown to mutate.
    let output = homestead(
        &["mutate", "-n", "cm37235-2", "--as", "bob"],
        PYTORCH_JOB.as_bytes(),
    );
    assert_exit(&output, 1);
    assert!(
        stderr(&output).contains("nor a configured workloadKinds kind"),
        "{}",
        stderr(&output)
    );
    // Another version than the configured one.
    let output = homestead(
        &[
            "mutate",
            "--config",
            &config,
            "-n",
            "cm37235-2",
            "--as",
            "bob",
        ],
        PYTORCH_JOB
            .replace("kubeflow.org/v1", "kubeflow.org/v2")
            .as_bytes(),
    );
    assert_exit(&output, 1);
    assert!(
        stderr(&output).contains("(kubeflow.org/v1)"),
        "{}",
        stderr(&output)
    );
    // A non-member is refused, as the webhook would.
    let output = homestead(
        &[
            "mutate",
            "--config",
            &config,
            "-n",
            "cm37235-2",
            "--as",
            "dave",
        ],
        PYTORCH_JOB.as_bytes(),
    );
    assert_exit(&output, 1);
    assert!(
        stderr(&output).contains("not_member"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn mutate_checks_a_cluster_workflow_template() {
    let template = r#"
apiVersion: argoproj.io/v1alpha1
kind: ClusterWorkflowTemplate
metadata: {name: reduce}
spec:
  entrypoint: main
  templates:
    - name: main
      container: {image: busybox, command: ["true"]}
"#;
    let output = homestead(
        &["mutate", "--as", "ada", "-o", "json"],
        template.as_bytes(),
    );
    assert_exit(&output, 0);
    let object: Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let input: Value = serde_saphyr::from_str(template).expect("YAML");
    assert_eq!(
        object, input,
        "nothing is stamped in a ClusterWorkflowTemplate"
    );
    // Naming who its pods run as is for cluster admins only.
    let forged = template.replace(
        "    - name: main\n",
        "    - name: main\n      metadata: {annotations: {homestead.dev/run-as: ada}}\n",
    );
    let output = homestead(&["mutate", "--as", "ada"], forged.as_bytes());
    assert_exit(&output, 1);
    let err = stderr(&output);
    assert!(
        err.contains("spec.templates[0].metadata.annotations[\"homestead.dev/run-as\"]")
            && err.contains("only a cluster admin"),
        "{err}"
    );
    let output = homestead(
        &["mutate", "-n", "cm37235-2", "--as", "ada"],
        template.as_bytes(),
    );
    assert_exit(&output, 1);
    assert!(
        stderr(&output).contains("cluster-scoped"),
        "{}",
        stderr(&output)
    );
    let output = homestead(&["mutate", "--as", "ada"], PLAIN_POD.as_bytes());
    assert_exit(&output, 1);
    assert!(
        stderr(&output).contains("give its --namespace"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn config_check_refuses_a_pointer_that_cannot_be_a_pod_template() {
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = write(
        &dir,
        "bad.yaml",
        "workloadKinds:\n  - group: kubeflow.org\n    version: v1\n    kind: PyTorchJob\n    \
         podTemplates: [/spec/pytorchReplicaSpecs/*, /spec/template/spec]\n",
    );
    let output = homestead(&["config", "check", &bad], b"");
    assert_exit(&output, 1);
    let out = stdout(&output);
    for want in [
        "workloadKinds[0].podTemplates[0]: \"/spec/pytorchReplicaSpecs/*\" ends in '*'",
        "workloadKinds[0].podTemplates[1]: \"/spec/template/spec\" points at a template's pod spec",
    ] {
        assert!(out.contains(want), "{want:?} not in {out}");
    }
    let good = write(&dir, "good.yaml", PYTORCH_CONFIG);
    let output = homestead(&["config", "check", &good], b"");
    assert_exit(&output, 0);
}
