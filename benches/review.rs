//! The whole admission review — parse, identity, patch, serialise — for Pod reviews of
//! about 3, 8 and 19 KB, as the mutating and the validating webhook see them.
//!
//! `cargo bench --bench review`
//!
//! Two clocks: `review` is criterion's wall clock; `review-cpu` is the benchmark
//! thread's own CPU time (`CLOCK_THREAD_CPUTIME_ID`), which is what "one core" means on a
//! machine whose other cores (and share of this one) are busy with something else.

#[path = "../tests/support/admission.rs"]
mod common;
#[path = "../tests/support/reviews.rs"]
mod reviews;

use std::hint::black_box;
use std::time::Duration;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use homestead_core::review::{Webhook, review};
use reviews::{SIZES, mutated_review, pod, review_body};
use serde_json::Value;

/// CPU time consumed by the calling thread.
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec through a valid pointer.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID)");
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

/// Runs `f` `iters` times and returns the CPU time it took.
fn cpu_time(iters: u64, mut f: impl FnMut()) -> Duration {
    let start = thread_cpu();
    for _ in 0..iters {
        f();
    }
    thread_cpu() - start
}

fn bench(c: &mut Criterion) {
    // The admission tests' directory: ada and bob in session cm37235-2, which has a
    // dataset claim.
    let fixture = common::Fixture::new();
    let admission = fixture.admission();
    let mut bodies = Vec::new();
    let mut group = c.benchmark_group("review");
    for (label, containers, env, labels) in SIZES {
        let plain = review_body(pod(containers, env, labels));
        // The validating webhook sees the mutated pod.
        let (mutated, operations) = mutated_review(&admission, containers, env, labels);
        eprintln!(
            "review/{label}: plain review {} bytes, mutated review {} bytes, {operations} patch ops",
            plain.len(),
            mutated.len(),
        );
        group.throughput(Throughput::Bytes(plain.len() as u64));
        group.bench_with_input(BenchmarkId::new("mutate", label), &plain, |b, body| {
            b.iter(|| review(Webhook::Mutate, black_box(body), &admission).expect("review"))
        });
        group.bench_with_input(
            BenchmarkId::new("mutate-again", label),
            &mutated,
            |b, body| {
                b.iter(|| review(Webhook::Mutate, black_box(body), &admission).expect("review"))
            },
        );
        group.bench_with_input(BenchmarkId::new("validate", label), &mutated, |b, body| {
            b.iter(|| review(Webhook::Validate, black_box(body), &admission).expect("review"))
        });
        bodies.push((label, plain, mutated));
    }
    group.finish();

    let mut group = c.benchmark_group("review-cpu");
    for (label, plain, mutated) in &bodies {
        group.throughput(Throughput::Bytes(plain.len() as u64));
        group.bench_with_input(BenchmarkId::new("mutate", label), plain, |b, body| {
            b.iter_custom(|iters| {
                cpu_time(iters, || {
                    black_box(
                        review(Webhook::Mutate, black_box(body), &admission).expect("review"),
                    );
                })
            })
        });
        group.bench_with_input(BenchmarkId::new("validate", label), mutated, |b, body| {
            b.iter_custom(|iters| {
                cpu_time(iters, || {
                    black_box(
                        review(Webhook::Validate, black_box(body), &admission).expect("review"),
                    );
                })
            })
        });
        // The floor: parsing the same bytes into an untyped serde_json::Value.
        group.bench_with_input(BenchmarkId::new("parse-only", label), plain, |b, body| {
            b.iter_custom(|iters| {
                cpu_time(iters, || {
                    black_box(serde_json::from_slice::<Value>(black_box(body)).expect("json"));
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
