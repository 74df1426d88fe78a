//! `--compare OLD.json`: the ratios new/old of a run's p50, p90, p99 (and throughput for
//! `warm`, and each phase's p50 for `cold`) against an earlier `hearth-bench/1` file of
//! the same mode.
//!
//! The old file is read and checked before the benchmark runs, so a wrong file costs
//! nothing. A ratio is `null` (printed `n/a`) when either side lacks the figure or the old
//! one is 0.
//!
//! Does not: judge whether a difference is significant (the noise warnings and the
//! standard deviation are there for that), or compare different modes or schemas.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use super::report::{Report, SCHEMA};
use super::BenchError;

/// An earlier run, checked.
#[derive(Debug, Clone)]
pub struct Baseline {
    pub path: PathBuf,
    pub doc: Value,
}

impl Baseline {
    /// Reads `path` and checks that it is a `hearth-bench/1` document of `mode`.
    pub fn load(path: &Path, mode: &str) -> Result<Baseline, BenchError> {
        let err = |detail: String| BenchError::Compare {
            path: path.to_path_buf(),
            detail,
        };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let doc: Value = serde_json::from_str(&text).map_err(|e| err(format!("not JSON: {e}")))?;
        Self::check(path, doc, mode)
    }

    /// Checks an already parsed document.
    pub fn check(path: &Path, doc: Value, mode: &str) -> Result<Baseline, BenchError> {
        let err = |detail: String| BenchError::Compare {
            path: path.to_path_buf(),
            detail,
        };
        match doc.get("schema").and_then(Value::as_str) {
            Some(SCHEMA) => {}
            Some(other) => {
                return Err(err(format!(
                    "its schema is {other:?}, this hearth writes {SCHEMA:?}"
                )))
            }
            None => return Err(err(format!("it has no \"schema\" (not a {SCHEMA} file)"))),
        }
        match doc.get("mode").and_then(Value::as_str) {
            Some(m) if m == mode => {}
            Some(m) => {
                return Err(err(format!(
                    "it is a {m:?} run; this is a {mode:?} run (compare runs of the same mode)"
                )))
            }
            None => return Err(err("it has no \"mode\"".into())),
        }
        Ok(Baseline {
            path: path.to_path_buf(),
            doc,
        })
    }
}

/// JSON `compared_with`: new/old ratios (below 1: the new run is faster).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Comparison {
    pub file: String,
    pub old_started_at: Option<String>,
    pub p50: Option<f64>,
    pub p90: Option<f64>,
    pub p99: Option<f64>,
    /// `warm` only (above 1: the new run is faster).
    pub throughput: Option<f64>,
    /// `cold` only: (phase, ratio of its p50), in phase order.
    pub phases_p50: Vec<(String, Option<f64>)>,
}

fn ratio(new: Option<f64>, old: Option<f64>) -> Option<f64> {
    match (new, old) {
        (Some(n), Some(o)) if o > 0.0 && n.is_finite() => Some(n / o),
        _ => None,
    }
}

/// The ratios of `new` against `old`.
pub fn compare(new: &Report, old: &Baseline) -> Comparison {
    let doc = &old.doc;
    let old_lat = |k: &str| {
        doc.get("latency_ms")
            .and_then(|l| l.get(k))
            .and_then(Value::as_f64)
    };
    let new_lat = |k: &str| {
        new.latency_ms.as_ref().map(|l| match k {
            "p50" => l.p50,
            "p90" => l.p90,
            _ => l.p99,
        })
    };
    let old_phase = |name: &str| {
        doc.get("phases_ms")
            .and_then(|p| p.get("phases"))
            .and_then(Value::as_array)
            .and_then(|a| {
                a.iter()
                    .find(|p| p.get("name").and_then(Value::as_str) == Some(name))
            })
            .and_then(|p| p.get("p50"))
            .and_then(Value::as_f64)
    };
    Comparison {
        file: old.path.display().to_string(),
        old_started_at: doc
            .get("started_at")
            .and_then(Value::as_str)
            .map(str::to_string),
        p50: ratio(new_lat("p50"), old_lat("p50")),
        p90: ratio(new_lat("p90"), old_lat("p90")),
        p99: ratio(new_lat("p99"), old_lat("p99")),
        throughput: (new.mode == "warm").then_some(()).and_then(|()| {
            ratio(
                Some(new.throughput_per_s),
                doc.get("throughput_per_s").and_then(Value::as_f64),
            )
        }),
        phases_p50: new
            .phases_ms
            .as_ref()
            .map(|p| {
                p.phases
                    .iter()
                    .map(|s| (s.name.to_string(), ratio(Some(s.p50), old_phase(s.name))))
                    .collect()
            })
            .unwrap_or_default(),
    }
}

fn show(r: Option<f64>) -> String {
    r.map_or("n/a".to_string(), |r| format!("×{r:.3}"))
}

impl Comparison {
    /// The lines printed under the table.
    pub fn table(&self) -> String {
        let mut out = format!(
            "vs {}{}: p50 {}, p90 {}, p99 {}",
            self.file,
            self.old_started_at
                .as_deref()
                .map(|s| format!(" ({s})"))
                .unwrap_or_default(),
            show(self.p50),
            show(self.p90),
            show(self.p99)
        );
        if let Some(t) = self.throughput {
            out.push_str(&format!(", throughput ×{t:.3}"));
        }
        out.push_str(" (new/old)\n");
        if !self.phases_p50.is_empty() {
            let parts: Vec<String> = self
                .phases_p50
                .iter()
                .map(|(n, r)| format!("{n} {}", show(*r)))
                .collect();
            out.push_str(&format!("  phase p50s: {}\n", parts.join(", ")));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::report::{utc_now, Tally};
    use serde_json::json;

    fn report(mode: &'static str, lat_ms: &[u64]) -> Report {
        let t = Tally {
            latencies_ns: lat_ms.iter().map(|ms| ms * 1_000_000).collect(),
            ok: lat_ms.len() as u64,
            wall_ns: 1_000_000_000,
            ..Tally::default()
        };
        Report::new(mode, "echo", utc_now(), &t)
    }

    #[test]
    fn ratios_of_a_run_against_itself_and_a_slower_one() {
        let new = report("warm", &[1, 2, 3, 4]);
        let old_doc = serde_json::to_value(report("warm", &[2, 4, 6, 8])).unwrap();
        let old = Baseline::check(Path::new("old.json"), old_doc, "warm").unwrap();
        let c = compare(&new, &old);
        assert_eq!((c.p50, c.p90, c.p99), (Some(0.5), Some(0.5), Some(0.5)));
        assert_eq!(c.throughput, Some(1.0));
        assert!(c.phases_p50.is_empty());
        let line = c.table();
        assert!(
            line.contains("p50 ×0.500") && line.contains("throughput ×1.000"),
            "{line}"
        );

        let same = Baseline::check(
            Path::new("same.json"),
            serde_json::to_value(report("cold", &[5])).unwrap(),
            "cold",
        )
        .unwrap();
        let c = compare(&report("cold", &[5]), &same);
        assert_eq!((c.p50, c.throughput), (Some(1.0), None));
    }

    #[test]
    fn missing_or_zero_figures_are_not_ratios() {
        let old = Baseline::check(
            Path::new("o.json"),
            json!({"schema": SCHEMA, "mode": "burst", "latency_ms": {"p50": 0.0, "p90": null}}),
            "burst",
        )
        .unwrap();
        let c = compare(&report("burst", &[3]), &old);
        assert_eq!((c.p50, c.p90, c.p99), (None, None, None));
        assert!(c.table().contains("p50 n/a"));
        // A new run without successes: nothing to compare either.
        let full = Baseline::check(
            Path::new("o.json"),
            serde_json::to_value(report("burst", &[3])).unwrap(),
            "burst",
        )
        .unwrap();
        assert_eq!(compare(&report("burst", &[]), &full).p50, None);
    }

    #[test]
    fn other_schemas_and_modes_are_refused() {
        let p = Path::new("old.json");
        let e = Baseline::check(
            p,
            json!({"schema": "hearth-bench/2", "mode": "warm"}),
            "warm",
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("old.json") && e.contains("hearth-bench/2"),
            "{e}"
        );
        let e = Baseline::check(p, json!({"schema": SCHEMA, "mode": "cold"}), "warm")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("\"cold\" run") && e.contains("\"warm\" run"),
            "{e}"
        );
        let e = Baseline::check(p, json!([1, 2]), "warm")
            .unwrap_err()
            .to_string();
        assert!(e.contains("no \"schema\""), "{e}");

        let dir = tempfile::tempdir().unwrap();
        let bad = dir.path().join("bad.json");
        std::fs::write(&bad, "{not json").unwrap();
        let e = Baseline::load(&bad, "warm").unwrap_err().to_string();
        assert!(e.contains("not JSON"), "{e}");
        let e = Baseline::load(&dir.path().join("none.json"), "warm").unwrap_err();
        assert!(matches!(e, BenchError::Compare { .. }));
    }
}
