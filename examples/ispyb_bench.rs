//! Benchmark of `homestead session-sync --once --output yaml` against a real MariaDB holding
//! ISPyB's tables and a real slapd holding the visits' posixGroups.
//!
//! ```text
//! cargo build --release --bin homestead --example ispyb_bench
//! HOMESTEAD_BIN=target/release/homestead target/release/examples/ispyb_bench [VISITS] [PEOPLE] [RUNS]
//! #                                                                           10000    5        10
//! ```
//!
//! Starts mariadbd on a loopback port with a throwaway data directory and fills ISPyB's
//! tables with VISITS visits running now, each with PEOPLE people (VISITS × PEOPLE
//! Session_has_Person rows; every person is on five visits), and slapd with one posixGroup
//! per visit (the gid, `gidFrom: ldap`) and a staff group of ten per instrument (24
//! instruments). Checks the command prints every Session, then times it with `hyperfine`
//! when installed (else a simple loop).

#[path = "../tests/support/mariadb.rs"]
mod mariadb;
#[path = "../tests/support/slapd.rs"]
mod slapd;
#[path = "support/timing.rs"]
mod timing;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Instant;

use mariadb::{MariaDb, generate};
use slapd::{Options, Slapd, posix_group};
use timing::{homestead_binary, time_command};

#[tokio::main]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| {
            a.parse()
                .expect("arguments are numbers: VISITS PEOPLE RUNS")
        })
        .collect();
    let visits = args.first().copied().unwrap_or(10_000);
    let per_visit = args.get(1).copied().unwrap_or(5);
    let runs = args.get(2).copied().unwrap_or(10);
    let binary = homestead_binary();

    let started = Instant::now();
    let db = MariaDb::start().expect("mariadbd is needed: apt-get install mariadb-server");
    let mut conn = db.with_schema().await;
    generate(&mut conn, visits, per_visit).await;
    println!(
        "MariaDB with {visits} visits and {} Session_has_Person rows ready in {:.2?}",
        visits * per_visit,
        started.elapsed()
    );

    // The names `generate` gives its visits, a group each, and a staff group per instrument.
    let started = Instant::now();
    let mut ldif = String::with_capacity(visits * 120);
    for v in 0..visits {
        let name = format!("cm{}-{}", 20_000 + v / 5 + 1, v % 5 + 1);
        ldif.push_str(&posix_group(&name, 200_000 + v as u32, &[]));
    }
    let mut staff = BTreeMap::new();
    for i in 1..=24 {
        let group = format!("i{i:02}-staff");
        let members: Vec<String> = (1..=10).map(|m| format!("staff{i:02}{m:02}")).collect();
        let members: Vec<&str> = members.iter().map(String::as_str).collect();
        ldif.push_str(&posix_group(&group, 9_000 + i, &members));
        staff.insert(format!("i{i:02}"), vec![group]);
    }
    let directory = Slapd::start(
        Options {
            unlimited_paging: true,
            ..Options::default()
        },
        &ldif,
    );
    println!(
        "slapd with {} groups loaded in {:.2?}",
        visits + 24,
        started.elapsed()
    );

    let mut source = db.source();
    source.ispyb.staff = staff;
    let config = db.write_config(Some(&directory.config()), &source);

    // The output is complete before anything is timed.
    let out = Command::new(&binary)
        .args(["session-sync", "--once", "--output", "yaml", "--config"])
        .arg(&config)
        .output()
        .expect("running homestead");
    assert!(
        out.status.success(),
        "session-sync failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| *l == "kind: Session")
        .count();
    assert_eq!(printed, visits, "every visit becomes a Session");
    println!("output: {printed} Sessions, {} bytes", out.stdout.len());

    let command = format!(
        "{} session-sync --once --output yaml --config {} > /dev/null 2>&1",
        binary.display(),
        config.display()
    );
    time_command(&command, runs);
}
