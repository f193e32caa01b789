//! Killing the operator at random moments: a seeded random source (so a failing run can be
//! repeated with its seed) and an operator that is SIGKILLed and started again with the
//! same flags, its log appended to. Starts and kills processes; no other I/O.

use std::path::PathBuf;
use std::time::Duration;

use crate::bench::Bench;
use crate::processes::Operator;

/// The environment variable that fixes the seed of a chaos run (else the clock picks one).
pub const SEED_ENV: &str = "QLIKOPS_CHAOS_SEED";

/// The seed: [`SEED_ENV`] when set, else the clock's nanoseconds.
pub fn seed() -> Result<u64, String> {
    match std::env::var(SEED_ENV) {
        Ok(text) => text
            .parse()
            .map_err(|e| format!("{SEED_ENV}={text} is not a number: {e}")),
        // The low bits of the time in nanoseconds: a different seed each run.
        Err(_) => Ok(jiff::Timestamp::now().as_nanosecond() as u64),
    }
}

/// SplitMix64: tiny and good enough to pick moments; a dependency would buy nothing here.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A duration in `[low, high)`, to the millisecond.
    pub fn between(&mut self, low: Duration, high: Duration) -> Duration {
        let span = high.saturating_sub(low).as_millis().max(1) as u64;
        low + Duration::from_millis(self.next() % span)
    }
}

/// How to start one operator again and again: its flags, environment and log.
pub struct Restartable<'a> {
    bench: &'a Bench,
    args: Vec<String>,
    env: Vec<(String, String)>,
    log: PathBuf,
    /// How many times it was started.
    pub starts: u64,
}

impl<'a> Restartable<'a> {
    /// The release operator on `namespace` with `extra` flags, logging to `log` in the
    /// work directory.
    pub fn new(bench: &'a Bench, namespace: &str, extra: &[&str], log: &str) -> Restartable<'a> {
        let mut args: Vec<String> = ["--log-format", "json", "--namespace", namespace]
            .iter()
            .map(|s| (*s).to_owned())
            .collect();
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        Restartable {
            bench,
            args,
            env: Vec::new(),
            log: bench.work.join(log),
            starts: 0,
        }
    }

    /// Adds an environment variable to every start.
    pub fn with_env(mut self, name: &str, value: &str) -> Restartable<'a> {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Starts it, with `env` on top of its own environment (a fail point).
    pub fn start_with(&mut self, env: &[(&str, &str)]) -> Result<Operator, String> {
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let mut all: Vec<(&str, &str)> = self
            .env
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        all.extend_from_slice(env);
        self.starts += 1;
        Operator::start_with_env(
            &self.bench.bins,
            &self.bench.kubeconfig,
            &args,
            &all,
            self.log.clone(),
        )
    }

    pub fn start(&mut self) -> Result<Operator, String> {
        self.start_with(&[])
    }

    /// SIGKILLs `running` and starts it again at once, as a Deployment would.
    pub fn kill_and_restart(&mut self, running: Operator) -> Result<Operator, String> {
        running.kill()?;
        self.start()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_the_same_moments_within_bounds() {
        let (low, high) = (Duration::from_secs(2), Duration::from_secs(14));
        let mut a = Rng::new(42);
        let mut b = Rng::new(42);
        for _ in 0..100 {
            let moment = a.between(low, high);
            assert_eq!(moment, b.between(low, high));
            assert!(moment >= low && moment < high, "{moment:?}");
        }
        assert_ne!(
            Rng::new(42).between(low, high),
            Rng::new(43).between(low, high)
        );
    }
}
