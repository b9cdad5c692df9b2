//! Arbitrary bytes as an AdmissionReview: every input gets a response or a `ReviewError`,
//! never a panic, and every response is an AdmissionReview echoing a uid.

#![no_main]

use std::sync::LazyLock;

use homestead_core::config::Config;
use homestead_core::directory::Directory;
use homestead_core::pod_index::PodUsers;
use homestead_core::review::{Admission, Webhook, review};
use libfuzzer_sys::fuzz_target;

static STATE: LazyLock<(Config, Directory)> = LazyLock::new(|| {
    let config = Config::default();
    let (directory, _) = Directory::from_yaml(&config, include_str!("directory.yaml"))
        .expect("fuzz directory");
    (config, directory)
});

fuzz_target!(|data: &[u8]| {
    let (config, directory) = &*STATE;
    let pods = PodUsers::default();
    let admission = Admission {
        config,
        directory,
        pods: &pods,
    };
    for webhook in [Webhook::Mutate, Webhook::Validate] {
        if let Ok(reviewed) = review(webhook, data, &admission) {
            let out: serde_json::Value =
                serde_json::from_slice(&reviewed.body).expect("responses are JSON");
            assert_eq!(out["kind"], "AdmissionReview");
            assert_eq!(out["response"]["uid"].as_str(), Some(&*reviewed.summary.uid));
        }
    }
});
