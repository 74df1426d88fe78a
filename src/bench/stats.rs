//! Latency statistics of one benchmark: percentiles, mean, standard deviation, from
//! samples in nanoseconds.
//!
//! Definitions (stable: `hearth-bench/1` JSON files depend on them):
//! * **Percentile p** is the *nearest-rank* percentile: with the `n` samples sorted
//!   ascending, it is the sample at 1-based rank `ceil(p/100 × n)` (rank 1 when that is 0).
//!   It is always one of the samples, never interpolated; p100 is the maximum. The rank is
//!   computed in integers (p in thousandths of a percent), so p99.9 of 1,000 samples is
//!   exactly the 999th, with no floating-point rounding surprise.
//! * **Mean** is the arithmetic mean; **stddev** the sample standard deviation (divisor
//!   `n − 1`, as hyperfine reports it), 0 for fewer than two samples.
//!
//! Does not: decide which requests count (the modes do: only successful invocations are
//! timed), or judge noise.

use serde::Serialize;

/// The summary of a non-empty sample set, in nanoseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Summary {
    pub n: usize,
    pub min: u64,
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    pub mean: f64,
    pub stddev: f64,
}

/// The same summary in milliseconds, as written to JSON (`latency_ms`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct SummaryMs {
    pub n: usize,
    pub min: f64,
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
    pub stddev: f64,
}

/// Nearest-rank percentile of `sorted` (ascending, non-empty); `p_milli` is the percentile
/// in thousandths of a percent (50 000 = p50, 99 900 = p99.9, 100 000 = max).
pub fn percentile(sorted: &[u64], p_milli: u64) -> u64 {
    debug_assert!(!sorted.is_empty() && p_milli <= 100_000);
    let n = sorted.len() as u64;
    // ceil(p_milli × n / 100 000), in integers.
    let rank = (p_milli * n).div_ceil(100_000).clamp(1, n);
    sorted[(rank - 1) as usize]
}

impl Summary {
    /// Sorts `samples` in place and summarises them; `None` when there are none.
    pub fn of(samples: &mut [u64]) -> Option<Summary> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let n = samples.len();
        let sum: u128 = samples.iter().map(|&v| u128::from(v)).sum();
        let mean = sum as f64 / n as f64;
        let stddev = if n < 2 {
            0.0
        } else {
            let sq: f64 = samples
                .iter()
                .map(|&v| {
                    let d = v as f64 - mean;
                    d * d
                })
                .sum();
            (sq / (n - 1) as f64).sqrt()
        };
        Some(Summary {
            n,
            min: samples[0],
            p50: percentile(samples, 50_000),
            p90: percentile(samples, 90_000),
            p99: percentile(samples, 99_000),
            p999: percentile(samples, 99_900),
            max: samples[n - 1],
            mean,
            stddev,
        })
    }

    /// The summary in milliseconds.
    pub fn ms(&self) -> SummaryMs {
        let ms = |ns: u64| ns as f64 / 1e6;
        SummaryMs {
            n: self.n,
            min: ms(self.min),
            p50: ms(self.p50),
            p90: ms(self.p90),
            p99: ms(self.p99),
            p999: ms(self.p999),
            max: ms(self.max),
            mean: self.mean / 1e6,
            stddev: self.stddev / 1e6,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_to_a_hundred() {
        let mut v: Vec<u64> = (1..=100).rev().collect();
        let s = Summary::of(&mut v).unwrap();
        assert_eq!(s.n, 100);
        assert_eq!(
            (s.min, s.p50, s.p90, s.p99, s.p999, s.max),
            (1, 50, 90, 99, 100, 100)
        );
        assert_eq!(s.mean, 50.5);
        // Sample standard deviation of 1..=100: sqrt(100 × 101 / 12).
        assert!((s.stddev - (100.0_f64 * 101.0 / 12.0).sqrt()).abs() < 1e-9);
    }

    #[test]
    fn a_single_value_is_every_percentile() {
        let s = Summary::of(&mut [7_000]).unwrap();
        assert_eq!(
            (s.min, s.p50, s.p99, s.p999, s.max),
            (7_000, 7_000, 7_000, 7_000, 7_000)
        );
        assert_eq!((s.mean, s.stddev), (7_000.0, 0.0));
    }

    #[test]
    fn two_values() {
        let s = Summary::of(&mut [30, 10]).unwrap();
        // Rank ceil(0.5 × 2) = 1: the lower one is the median under nearest rank.
        assert_eq!((s.p50, s.p90, s.p99, s.max), (10, 30, 30, 30));
        assert_eq!(s.mean, 20.0);
        assert!((s.stddev - 200.0_f64.sqrt()).abs() < 1e-9);
    }

    #[test]
    fn p999_of_a_thousand_is_the_999th() {
        let mut v: Vec<u64> = (1..=1000).collect();
        let s = Summary::of(&mut v).unwrap();
        assert_eq!((s.p99, s.p999, s.max), (990, 999, 1000));
        assert_eq!(percentile(&v, 0), 1);
        assert_eq!(percentile(&v, 100_000), 1000);
    }

    #[test]
    fn empty_is_none_and_milliseconds_convert() {
        assert!(Summary::of(&mut []).is_none());
        let ms = Summary::of(&mut [1_500_000, 2_500_000]).unwrap().ms();
        assert_eq!((ms.p50, ms.max, ms.mean), (1.5, 2.5, 2.0));
    }
}
