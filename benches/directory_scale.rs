//! Admission latency against a small and a large directory: 10 Users, and 10,000 Users
//! with 1,000 Sessions (the size the controller's caches must serve). The directory is a
//! hash map, so the two should be within noise of each other.
//!
//! `cargo bench --bench directory_scale`

use std::collections::HashSet;
use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use homestead_core::config::Config;
use homestead_core::directory::Directory;
use homestead_core::pod_index::PodUsers;
use homestead_core::resources::{Session, SessionSpec, User, UserSpec};
use homestead_core::review::{Admission, Webhook, review};

fn users(n: usize) -> Vec<User> {
    (0..n)
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
        .collect()
}

fn sessions(n: usize, users: usize) -> Vec<Session> {
    (0..n)
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
                        .map(|m| format!("user{:05}", (i * 5 + m) % users.max(1)))
                        .collect(),
                    ..Default::default()
                },
            )
        })
        .collect()
}

fn directory(config: &Config, n_users: usize, n_sessions: usize) -> Directory {
    let users = users(n_users);
    let sessions = sessions(n_sessions, n_users);
    let mut managed: HashSet<String> = (0..n_users).map(|i| format!("home-user{i:05}")).collect();
    managed.extend((0..n_sessions).map(|i| format!("cm{}-1", 30_000 + i)));
    let (directory, problems) = Directory::build(config, &users, &sessions, [], Some(&managed));
    assert!(problems.is_empty(), "{problems:?}");
    directory
}

fn pod_review(namespace: &str, username: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": {"username": username, "groups": ["system:authenticated"]},
            "object": {
                "apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": "analysis", "namespace": namespace},
                "spec": {"containers": [{"name": "main", "image": "python:3.12"}]}
            }
        }
    }))
    .unwrap()
}

fn bench(c: &mut Criterion) {
    let config = Config::default();
    let mut group = c.benchmark_group("review_by_directory_size");
    for (label, n_users, n_sessions) in [
        ("10_users", 10, 0),
        ("10k_users_1k_sessions", 10_000, 1_000),
    ] {
        let directory = directory(&config, n_users, n_sessions);
        let pods = PodUsers::default();
        let admission = Admission {
            config: &config,
            directory: &directory,
            pods: &pods,
        };
        // The same person in both: a user namespace, and (large only) a session namespace.
        let user_ns = pod_review("home-user00007", "user00007");
        let reviewed = review(Webhook::Mutate, &user_ns, &admission).unwrap();
        println!(
            "{label}: user namespace verdict {:?}",
            reviewed.summary.verdict
        );
        group.bench_with_input(
            BenchmarkId::new("mutate_user_ns", label),
            &user_ns,
            |b, body| b.iter(|| review(Webhook::Mutate, black_box(body), &admission).unwrap()),
        );
        group.bench_with_input(
            BenchmarkId::new("validate_user_ns", label),
            &user_ns,
            |b, body| b.iter(|| review(Webhook::Validate, black_box(body), &admission).unwrap()),
        );
    }
    group.finish();

    let mut build = c.benchmark_group("directory_build");
    build.sample_size(10);
    build.bench_function("10k_users_1k_sessions", |b| {
        let users = users(10_000);
        let sessions = sessions(1_000, 10_000);
        b.iter(|| Directory::build(&config, &users, &sessions, [], None))
    });
    build.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
