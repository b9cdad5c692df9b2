//! Instruction counts of one admission review against a small and a large directory
//! (issue 17, item 4): 10 Users and no pods, or 10,000 Users, 1,000 Sessions and 10,000
//! cached pods. The review is `benches/directory_scale.rs`'s Pod CREATE in a user
//! namespace, run N times; the cost of one review is the difference of two runs under
//! `valgrind --tool=callgrind` divided by the difference in N:
//!
//! ```text
//! cargo build --release -p homestead-core --example scale_profile
//! for size in small large; do for n in 10 110; do
//!   valgrind --tool=callgrind --callgrind-out-file=/dev/null target/release/examples/scale_profile $size $n
//! done; done
//! ```

use std::collections::HashSet;
use std::hint::black_box;

use homestead_core::config::Config;
use homestead_core::directory::Directory;
use homestead_core::pod_index::PodUsers;
use homestead_core::resources::{Session, SessionSpec, User, UserSpec};
use homestead_core::review::{Admission, Webhook, review};

fn directory(config: &Config, n_users: usize, n_sessions: usize) -> Directory {
    let users: Vec<User> = (0..n_users)
        .map(|i| {
            let name = format!("user{i:05}");
            User::new(
                &name,
                UserSpec {
                    username: name.clone(),
                    uid: 10_000 + i as i64,
                    gid: 10_000 + i as i64,
                    supplemental_groups: vec![500, 501],
                    ..Default::default()
                },
            )
        })
        .collect();
    let sessions: Vec<Session> = (0..n_sessions)
        .map(|i| {
            Session::new(
                &format!("cm{}-1", 30_000 + i),
                SessionSpec {
                    proposal_code: "cm".into(),
                    proposal_number: 30_000 + i as u64,
                    visit: 1,
                    instrument: "i03".into(),
                    data_directory: format!("/dls/i03/data/2024/cm{}-1/", 30_000 + i),
                    gid: 200_000 + i as i64,
                    members: (0..5)
                        .map(|m| format!("user{:05}", (i * 5 + m) % n_users.max(1)))
                        .collect(),
                    ..Default::default()
                },
            )
        })
        .collect();
    let mut managed: HashSet<String> = (0..n_users).map(|i| format!("home-user{i:05}")).collect();
    managed.extend((0..n_sessions).map(|i| format!("cm{}-1", 30_000 + i)));
    let (directory, problems) = Directory::build(config, &users, &sessions, [], Some(&managed));
    assert!(problems.is_empty(), "{problems:?}");
    directory
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(size), Some(n)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: scale_profile small|large N");
        std::process::exit(2);
    };
    let n: usize = n.parse().expect("N is a number");
    let (n_users, n_sessions, n_pods) = match size.as_str() {
        "small" => (10, 0, 0),
        "large" => (10_000, 1_000, 10_000),
        other => panic!("unknown size {other}"),
    };
    let config = Config::default();
    let directory = directory(&config, n_users, n_sessions);
    let pods: Vec<(String, String, String)> = (0..n_pods)
        .map(|i| {
            let user = format!("user{:05}", i % n_users);
            (format!("home-{user}"), format!("pod-{i}"), user)
        })
        .collect();
    let pods = PodUsers::new(
        pods.iter()
            .map(|(ns, pod, user)| (ns.as_str(), pod.as_str(), user.as_str())),
    );
    let admission = Admission {
        config: &config,
        directory: &directory,
        pods: &pods,
    };
    let body = serde_json::to_vec(&serde_json::json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "home-user00007",
            "operation": "CREATE",
            "userInfo": {"username": "user00007", "groups": ["system:authenticated"]},
            "object": {
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "analysis", "namespace": "home-user00007"},
                "spec": {"containers": [{"name": "main", "image": "python:3.12"}]}
            }
        }
    }))
    .expect("json");
    let mut bytes = 0;
    for _ in 0..n {
        bytes += review(Webhook::Mutate, black_box(&body), &admission)
            .expect("review")
            .body
            .len();
    }
    println!("{n} × mutate against the {size} directory: {bytes} response bytes");
}
