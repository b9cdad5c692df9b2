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
#[path = "support/timing.rs"]
mod timing;

use std::process::Command;
use std::time::Instant;

use slapd::{Options, Slapd, generated};
use timing::{homestead_binary, time_command};

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse().expect("arguments are numbers: USERS GROUPS RUNS"))
        .collect();
    let users = args.first().copied().unwrap_or(10_000);
    let groups = args.get(1).copied().unwrap_or(2_000);
    let runs = args.get(2).copied().unwrap_or(10);

    let binary = homestead_binary();

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
    time_command(&command, runs);
}
