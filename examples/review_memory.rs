//! Peak memory of one admission review of a ~3 MB pod (the largest body the server
//! accepts), for the shapes that used to cost the most: 3 MB of tiny containers (refused
//! by `security.maxContainers` before any work) and 3 MB of environment in 64 containers
//! (within every limit, patched). Each shape runs in a child process of its own, which
//! prints its whole peak resident set (VmHWM): the body, building it, and both reviews.
//!
//! `cargo run --release --example review_memory`

use std::process::Command;

use homestead_core::config::Config;
use homestead_core::directory::Directory;
use homestead_core::pod_index::PodUsers;
use homestead_core::review::{Admission, Webhook, review};

const BODY: usize = 3 * 1024 * 1024;

fn vm(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        .unwrap_or(0)
}

/// The review of `pod` (JSON text), written as text so that building it costs no more
/// than the body itself.
fn body(pod: &str) -> Vec<u8> {
    format!(
        r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"uid":"memory","kind":{{"group":"","version":"v1","kind":"Pod"}},"namespace":"home-ada","operation":"CREATE","userInfo":{{"username":"ada"}},"object":{pod}}}}}"#
    )
    .into_bytes()
}

/// About `BODY` bytes of containers `{"name":"cN","image":"x"}`.
fn tiny_containers() -> Vec<u8> {
    let mut containers = String::with_capacity(BODY + 64);
    let mut i = 0;
    while containers.len() < BODY {
        if i > 0 {
            containers.push(',');
        }
        containers.push_str(&format!(r#"{{"name":"c{i}","image":"x"}}"#));
        i += 1;
    }
    body(&format!(
        r#"{{"metadata":{{"name":"wide"}},"spec":{{"containers":[{containers}]}}}}"#
    ))
}

/// About `BODY` bytes of environment spread over 64 containers.
fn big_environment() -> Vec<u8> {
    let per = BODY / 64 / 40;
    let env: Vec<String> = (0..per)
        .map(|i| format!(r#"{{"name":"V{i}","value":"0123456789abcdef"}}"#))
        .collect();
    let env = env.join(",");
    let containers: Vec<String> = (0..64)
        .map(|c| format!(r#"{{"name":"c{c}","image":"x","env":[{env}]}}"#))
        .collect();
    body(&format!(
        r#"{{"metadata":{{"name":"env"}},"spec":{{"containers":[{}]}}}}"#,
        containers.join(",")
    ))
}

fn measure(shape: &str) {
    let text = "apiVersion: homestead.dev/v1alpha1\nkind: User\nmetadata: {name: ada}\nspec: {username: ada, uid: 1001, gid: 1001}\n";
    let config = Config::default();
    let (directory, _) = Directory::from_yaml(&config, text).expect("directory");
    let pods = PodUsers::default();
    let admission = Admission {
        config: &config,
        directory: &directory,
        pods: &pods,
    };
    let body = match shape {
        "tiny-containers" => tiny_containers(),
        _ => big_environment(),
    };
    let before = vm("VmHWM:");
    let rss = vm("VmRSS:");
    for webhook in [Webhook::Mutate, Webhook::Validate] {
        let reviewed = review(webhook, &body, &admission).expect("a response");
        println!(
            "{shape}: body {} KB, {webhook}: {} (response {} KB)",
            body.len() / 1024,
            reviewed.summary.verdict.as_str(),
            reviewed.body.len() / 1024
        );
    }
    println!(
        "{shape}: process peak (VmHWM) {} KB; {} KB before the reviews (body built), {} KB above that",
        vm("VmHWM:"),
        before.max(rss),
        vm("VmHWM:").saturating_sub(before.max(rss)),
    );
}

fn main() {
    match std::env::args().nth(1) {
        Some(shape) => measure(&shape),
        None => {
            for shape in ["tiny-containers", "big-environment"] {
                let status = Command::new(std::env::current_exe().expect("own path"))
                    .arg(shape)
                    .status()
                    .expect("child");
                assert!(status.success());
            }
        }
    }
}
