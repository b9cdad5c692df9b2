//! A driver for instruction counts of the admission core: runs one benchmark review
//! (`benches/review.rs`'s inputs) N times in a loop, nothing else. Under
//! `valgrind --tool=callgrind` the cost of one review is the difference between two
//! runs divided by the difference in N, which removes the set-up (building the inputs,
//! loading the directory) from the figure:
//!
//! ```text
//! cargo build --release -p homestead-core --example review_profile
//! for n in 10 110; do
//!   valgrind --tool=callgrind --callgrind-out-file=cg.$n target/release/examples/review_profile mutate 8KB $n
//! done
//! # Ir per review = (Ir of cg.110 - Ir of cg.10) / 100
//! ```
//!
//! Modes: `mutate` (the plain pod, patched), `validate` (the patched pod), `parse-only`
//! (the same bytes into a `serde_json::Value`).

#[path = "../../tests/support/admission.rs"]
mod common;
#[path = "../../tests/support/reviews.rs"]
mod reviews;

use std::hint::black_box;

use homestead_core::review::{Webhook, review};
use reviews::{SIZES, mutated_review, pod, review_body};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(mode), Some(size), Some(n)) = (args.get(1), args.get(2), args.get(3)) else {
        eprintln!("usage: review_profile mutate|validate|parse-only 3KB|8KB|19KB N");
        std::process::exit(2);
    };
    let n: usize = n.parse().expect("N is a number");
    let Some(&(_, containers, env, labels)) = SIZES.iter().find(|s| s.0 == size) else {
        panic!("unknown size {size}");
    };
    let fixture = common::Fixture::new();
    let admission = fixture.admission();
    let plain = review_body(pod(containers, env, labels));
    let (mutated, _) = mutated_review(&admission, containers, env, labels);
    let mut bytes = 0;
    for _ in 0..n {
        bytes += match mode.as_str() {
            "mutate" => review(Webhook::Mutate, black_box(&plain), &admission)
                .expect("review")
                .body
                .len(),
            "validate" => review(Webhook::Validate, black_box(&mutated), &admission)
                .expect("review")
                .body
                .len(),
            "parse-only" => black_box(serde_json::from_slice::<serde_json::Value>(black_box(
                &plain,
            )))
            .map_or(0, |_| 1),
            other => panic!("unknown mode {other}"),
        };
    }
    println!("{n} × {mode} {size}: {bytes} response bytes");
}
