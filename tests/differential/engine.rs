//! The property-testing loop: a fixed seed and a bounded number of cases,
//! so that a run is repeatable and its length known; on a difference,
//! proptest shrinks the sequence and the report shows the smallest one
//! that still differs.
//!
//! `DIFFERENTIAL_CASES` and `DIFFERENTIAL_SEED` override the defaults (to
//! explore more, or elsewhere, by hand).

use std::fmt::Debug;

use proptest::strategy::Strategy;
use proptest::test_runner::{Config, RngAlgorithm, TestCaseError, TestError, TestRng, TestRunner};

/// The seed of the test command's runs.
const DEFAULT_SEED: u64 = 20261201;

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|value| value.trim().parse().ok())
}

/// A difference, after shrinking.
pub struct Failure<T> {
    /// What differed on the smallest sequence.
    pub reason: String,
    /// The smallest sequence found that still differs.
    pub minimal: T,
}

/// How many cases, from which seed.
#[derive(Clone, Copy, Debug)]
pub struct Settings {
    pub cases: u32,
    pub seed: u64,
}

impl Settings {
    /// `cases` from the default seed, unless the environment says otherwise.
    pub fn from_env(cases: u32) -> Self {
        Settings {
            cases: env_number("DIFFERENTIAL_CASES").map_or(cases, |n| u32::try_from(n).unwrap_or(u32::MAX)),
            seed: env_number("DIFFERENTIAL_SEED").unwrap_or(DEFAULT_SEED),
        }
    }
}

/// Runs `check` on generated values.
pub fn run<S>(
    settings: Settings,
    strategy: S,
    check: impl Fn(&S::Value) -> Result<(), String>,
) -> Result<(), Failure<S::Value>>
where
    S: Strategy,
    S::Value: Debug,
{
    let Settings { cases, seed } = settings;
    let config = Config {
        cases,
        failure_persistence: None,
        rng_algorithm: RngAlgorithm::ChaCha,
        // Every shrinking step replays a sequence against the services.
        max_shrink_iters: 400,
        max_shrink_time: 120_000,
        ..Config::default()
    };
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes);
    let mut runner = TestRunner::new_with_rng(config, rng);
    match runner.run(&strategy, |value| check(&value).map_err(TestCaseError::fail)) {
        Ok(()) => Ok(()),
        Err(TestError::Fail(reason, minimal)) => Err(Failure {
            reason: reason.message().to_owned(),
            minimal,
        }),
        Err(TestError::Abort(reason)) => panic!("differential run aborted: {reason}"),
    }
}

/// Panics with the shrunk sequence, one step per line, and the difference.
pub fn report<T: Debug>(what: &str, failure: Failure<Vec<T>>) -> ! {
    let steps: Vec<String> = failure
        .minimal
        .iter()
        .enumerate()
        .map(|(i, step)| format!("  {}. {step:?}", i + 1))
        .collect();
    panic!(
        "{what} differ. Smallest differing sequence ({} steps):\n{}\n{}",
        steps.len(),
        steps.join("\n"),
        failure.reason
    )
}
