//! Shared by the command benchmarks: finding the release binary and timing a command with
//! hyperfine (or a plain loop when hyperfine is missing).

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The `homestead` binary: `HOMESTEAD_BIN`, or the one next to this example's `examples/`
/// directory.
pub fn homestead_binary() -> PathBuf {
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
    binary
}

/// Times the shell `command` `runs` times after one warm-up: `hyperfine` when installed,
/// else a loop printing min, mean and max.
pub fn time_command(command: &str, runs: usize) {
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
            .arg(command)
            .status()
            .expect("running hyperfine");
        assert!(status.success(), "hyperfine failed");
    } else {
        let mut times = Vec::with_capacity(runs);
        for _ in 0..runs {
            let start = Instant::now();
            let status = Command::new("sh")
                .args(["-c", command])
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
