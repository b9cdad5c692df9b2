//! Benchmark of `homestead ldap-sync --once --output yaml` against a real slapd.
//!
//! ```text
//! cargo build --release --bin homestead
//! cargo run --release --example ldap_bench -- [USERS] [GROUPS] [RUNS]   # 10000 2000 10
//! ```
//!
//! Starts slapd on a loopback port with USERS posixAccounts and GROUPS posixGroups (each
//! person in three groups) loaded offline with slapadd, checks the command prints every
//! User, then times it with `hyperfine` when installed (else a simple loop). The binary is
//! taken from `HOMESTEAD_BIN`, or next to this example's `examples/` directory.

#[path = "../tests/support/slapd.rs"]
mod slapd;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use slapd::{Options, Slapd, generated};

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("arguments are numbers: USERS GROUPS RUNS"))
        .collect();
    let users = args.first().copied().unwrap_or(10_000);
    let groups = args.get(1).copied().unwrap_or(2_000);
    let runs = args.get(2).copied().unwrap_or(10);

    let binary = std::env::var_os("HOMESTEAD_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let exe = std::env::current_exe().expect("own path");
            exe.parent()
                .and_then(|examples| examples.parent())
                .expect("target directory")
                .join("homestead")
        });
    assert!(
        binary.exists(),
        "{} not found: run `cargo build --release --bin homestead` first or set HOMESTEAD_BIN",
        binary.display()
    );

    let started = Instant::now();
    let ldif = generated(users, groups);
    let server = Slapd::start(
        Options {
            unlimited_paging: true,
            ..Options::default()
        },
        &ldif,
    );
    println!(
        "slapd with {users} users and {groups} groups loaded in {:.2?}",
        started.elapsed()
    );
    let config = server.write_config_file(&server.config());

    // The output is complete before anything is timed.
    let out = Command::new(&binary)
        .args(["ldap-sync", "--once", "--output", "yaml", "--config"])
        .arg(&config)
        .output()
        .expect("running homestead");
    assert!(
        out.status.success(),
        "ldap-sync failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| *l == "kind: User")
        .count();
    assert_eq!(printed, users, "every person becomes a User");
    println!("output: {printed} Users, {} bytes", out.stdout.len());

    let command = format!(
        "{} ldap-sync --once --output yaml --config {} > /dev/null",
        binary.display(),
        config.display()
    );
    let hyperfine = Command::new("hyperfine")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if hyperfine {
        let status = Command::new("hyperfine")
            .args([
                "--warmup",
                "1",
                "--runs",
                &runs.to_string(),
                "--shell",
                "sh",
            ])
            .arg(&command)
            .status()
            .expect("running hyperfine");
        assert!(status.success(), "hyperfine failed");
    } else {
        let mut times = Vec::with_capacity(runs);
        for _ in 0..runs {
            let start = Instant::now();
            let status = Command::new("sh")
                .args(["-c", &command])
                .status()
                .expect("running homestead");
            assert!(status.success());
            times.push(start.elapsed());
        }
        times.sort();
        let mean = times.iter().sum::<Duration>() / runs.max(1) as u32;
        println!(
            "{runs} runs: min {:.3?}, mean {mean:.3?}, max {:.3?}",
            times.first().copied().unwrap_or_default(),
            times.last().copied().unwrap_or_default()
        );
    }
}
