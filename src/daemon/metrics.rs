//! The daemon's Prometheus metrics, answered on `GET /metrics` of the control listeners.
//!
//! Owns the metric families and their series. The daemon calls in at each event
//! (invocation started and finished, init finished, throttle, eviction) and hands the
//! instance counts over at render time ([`Gauges`]), so nothing here polls the pool.
//! Encoding is `prometheus-client`'s: [`Metrics::render`] writes the Prometheus text
//! format 0.0.4 ([`Metrics::CONTENT_TYPE`]), which every scraper and parser reads with
//! the right types (Prometheus picks its parser by the response's `Content-Type`);
//! [`Metrics::render_openmetrics`] writes OpenMetrics 1.0 for a scraper that asks for it.
//!
//! Names follow OpenTelemetry's FaaS metric conventions where one exists, mapped to
//! Prometheus as OpenTelemetry's compatibility spec does: `.` → `_`, the unit as a suffix
//! (`s` → `_seconds`), `_total` on counters, `{invocation}`-style units dropped. As one
//! daemon runs many functions, the `faas.name`/`faas.version` resource attributes become
//! the labels `faas_name`/`faas_version` on each series.
//!
//! | series | type | labels | counts |
//! |---|---|---|---|
//! | `faas_invocations_total` | counter | name, version | successful invocations (OTel: successful only) |
//! | `faas_errors_total` | counter | name, version, `error_type` | `function` (error reported by the runtime) and `crash` (runtime exited, OOM); not timeouts |
//! | `faas_timeouts_total` | counter | name, version | invocations cut off at their deadline |
//! | `faas_coldstarts_total` | counter | name, version, `kind` | invocations that waited for an init: `blank`, `spawn` |
//! | `hearth_invocation_starts_total` | counter | name, version, `kind` | every invocation by how it got its instance: `warm`, `blank`, `spawn`, `provisioned` |
//! | `faas_invoke_duration_seconds` | histogram | name, version | invocation duration, whatever the result |
//! | `faas_init_duration_seconds` | histogram | name, version | init duration of each new instance |
//! | `hearth_throttles_total` | counter | name, `reason` | invocations refused: the AWS throttle reason or `MemoryBudgetExceeded` |
//! | `hearth_evictions_total` | counter | name | idle instances retired early to make room in the memory budget |
//! | `hearth_concurrent_executions` | gauge | — | busy instances (Lambda's `ConcurrentExecutions`; OTel has none) |
//! | `hearth_instances` | gauge | `state` | `busy`, `idle_frozen`, `idle`, `blank`, `initialising` |
//! | `hearth_memory_budget_used_bytes`, `hearth_memory_budget_bytes` | gauge | — | the host memory budget |
//!
//! Invocations started = `hearth_invocation_starts_total`; finished = invocations +
//! errors + timeouts (disjoint; Lambda's `Errors` is errors + timeouts). Cold starts are
//! a subset of starts: a provisioned instance was initialised before the invocation
//! came, so it is not a cold start, as in Lambda. The duration histograms share
//! [`DURATION_BUCKETS`]. OTel's `faas.mem_usage` (peak memory per invocation) is not
//! offered: a cgroup's peak covers the instance's whole life, not one invocation.
//!
//! Does not: serve HTTP, read cgroups, keep time (callers measure durations), or log.
//!
//! Limits: the series of a function or version live until [`Metrics::forget_function`]
//! or [`Metrics::forget_version`] (call them on delete, or label sets pile up: each
//! version costs about 60 lines, 6 KB, of output). Recording is four hash look-ups by
//! `&str` (no allocation once a version has been seen), atomic increments and, for a
//! duration, one uncontended lock: 0.2-0.4 µs for a started + finished pair. The
//! first event of a version creates all of its series at zero, so `rate()` sees the
//! first increment. A labelled family without any series is left out of the output (no
//! HELP/TYPE lines) until its first function appears, as in other Prometheus clients.

use std::collections::HashMap;
use std::fmt;
use std::time::Duration;

use prometheus_client::encoding::{prometheus_text, text, EncodeLabelSet};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::{Registry, Unit};

/// Upper bounds, in seconds, of the duration histograms' buckets: 1, 2.5, 5 per decade
/// from 100 µs to 1000 s (factor ≈ 2.2 between neighbours), so a warm invocation of
/// 200 µs and a 900 s Lambda timeout both fall in a finite bucket. It contains
/// OpenTelemetry's suggested boundaries (5 ms … 10 s) except 75 ms, 750 ms and 7.5 s.
pub const DURATION_BUCKETS: [f64; 22] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0,
];

/// How an invocation got its instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartKind {
    /// An idle instance of the same version (thawed if frozen).
    Warm,
    /// A pre-spawned blank sandbox, initialised for this invocation.
    Blank,
    /// A sandbox spawned for this invocation.
    Spawn,
    /// An instance initialised ahead for provisioned concurrency.
    Provisioned,
}

impl StartKind {
    pub const ALL: [StartKind; 4] = [
        StartKind::Warm,
        StartKind::Blank,
        StartKind::Spawn,
        StartKind::Provisioned,
    ];

    /// The `kind` label value, also the value of the `X-Hearth-Start` answer header.
    pub fn label(self) -> &'static str {
        match self {
            StartKind::Warm => "warm",
            StartKind::Blank => "blank",
            StartKind::Spawn => "spawn",
            StartKind::Provisioned => "provisioned",
        }
    }

    /// Whether the invocation waited for an init (OpenTelemetry's cold start).
    pub fn is_cold(self) -> bool {
        matches!(self, StartKind::Blank | StartKind::Spawn)
    }
}

/// How an invocation ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvocationResult {
    Success,
    /// The runtime reported an error (`/invocation/{id}/error`).
    FunctionError,
    Timeout,
    /// The runtime exited or was killed (OOM) during the invocation.
    Crash,
}

/// Instance counts and the memory budget at render time (from the pool). The instance
/// states are disjoint.
#[derive(Clone, Copy, Debug, Default)]
pub struct Gauges {
    pub busy: u64,
    pub idle_frozen: u64,
    pub idle_thawed: u64,
    /// Pre-spawned blank sandboxes ready to be claimed.
    pub blank: u64,
    pub initialising: u64,
    pub memory_budget_used_bytes: u64,
    pub memory_budget_bytes: u64,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FunctionLabels {
    faas_name: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct VersionLabels {
    faas_name: String,
    faas_version: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct KindLabels {
    faas_name: String,
    faas_version: String,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    faas_name: String,
    faas_version: String,
    error_type: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ThrottleLabels {
    faas_name: String,
    reason: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: &'static str,
}

type HistogramFamily = Family<VersionLabels, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

/// Gauges hold i64; counts and byte sizes beyond that cannot happen, so saturate.
fn gauge_value(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The registered families. Each is a handle sharing its series with the registry.
#[derive(Debug)]
struct Families {
    invocations: Family<VersionLabels, Counter>,
    errors: Family<ErrorLabels, Counter>,
    timeouts: Family<VersionLabels, Counter>,
    coldstarts: Family<KindLabels, Counter>,
    starts: Family<KindLabels, Counter>,
    invoke_duration: HistogramFamily,
    init_duration: HistogramFamily,
    throttles: Family<ThrottleLabels, Counter>,
    evictions: Family<FunctionLabels, Counter>,
    concurrent: Gauge,
    instances: Family<StateLabels, Gauge>,
    budget_used: Gauge,
    budget: Gauge,
}

/// One version's series, kept so that recording needs no label set (no allocation).
#[derive(Debug)]
struct VersionSeries {
    /// Indexed like [`StartKind::ALL`].
    starts: [Counter; 4],
    /// Also indexed like [`StartKind::ALL`]; only the cold kinds are registered.
    coldstarts: [Counter; 4],
    successes: Counter,
    function_errors: Counter,
    crashes: Counter,
    timeouts: Counter,
    invoke_duration: Histogram,
    init_duration: Histogram,
}

#[derive(Debug)]
struct FunctionSeries {
    versions: HashMap<String, VersionSeries>,
    throttles: HashMap<String, Counter>,
    evictions: Counter,
}

const ERROR_FUNCTION: &str = "function";
const ERROR_CRASH: &str = "crash";

fn version_labels(function: &str, version: &str) -> VersionLabels {
    VersionLabels {
        faas_name: function.to_owned(),
        faas_version: version.to_owned(),
    }
}

fn kind_labels(function: &str, version: &str, kind: StartKind) -> KindLabels {
    KindLabels {
        faas_name: function.to_owned(),
        faas_version: version.to_owned(),
        kind: kind.label(),
    }
}

fn error_labels(function: &str, version: &str, error_type: &'static str) -> ErrorLabels {
    ErrorLabels {
        faas_name: function.to_owned(),
        faas_version: version.to_owned(),
        error_type,
    }
}

impl Families {
    fn register(registry: &mut Registry) -> Families {
        let f = Families {
            invocations: Family::default(),
            errors: Family::default(),
            timeouts: Family::default(),
            coldstarts: Family::default(),
            starts: Family::default(),
            invoke_duration: Family::new_with_constructor(duration_histogram),
            init_duration: Family::new_with_constructor(duration_histogram),
            throttles: Family::default(),
            evictions: Family::default(),
            concurrent: Gauge::default(),
            instances: Family::default(),
            budget_used: Gauge::default(),
            budget: Gauge::default(),
        };
        let r = registry;
        r.register(
            "faas_invocations",
            "Successful invocations",
            f.invocations.clone(),
        );
        r.register(
            "faas_errors",
            "Failed invocations other than timeouts, by error_type: function (error reported \
             by the runtime) or crash (runtime exited or was killed)",
            f.errors.clone(),
        );
        r.register(
            "faas_timeouts",
            "Invocations stopped at their deadline",
            f.timeouts.clone(),
        );
        r.register(
            "faas_coldstarts",
            "Invocations that waited for an instance to initialise, by kind (blank, spawn)",
            f.coldstarts.clone(),
        );
        r.register(
            "hearth_invocation_starts",
            "Invocations started, by how they got their instance (warm, blank, spawn, \
             provisioned)",
            f.starts.clone(),
        );
        r.register_with_unit(
            "faas_invoke_duration",
            "Duration of invocations, whatever their result",
            Unit::Seconds,
            f.invoke_duration.clone(),
        );
        r.register_with_unit(
            "faas_init_duration",
            "Duration of the init of new instances",
            Unit::Seconds,
            f.init_duration.clone(),
        );
        r.register(
            "hearth_throttles",
            "Invocations refused, by reason",
            f.throttles.clone(),
        );
        r.register(
            "hearth_evictions",
            "Idle instances retired early to make room in the memory budget",
            f.evictions.clone(),
        );
        r.register(
            "hearth_concurrent_executions",
            "Invocations running now (busy instances)",
            f.concurrent.clone(),
        );
        r.register(
            "hearth_instances",
            "Instances by state (busy, idle_frozen, idle, blank, initialising)",
            f.instances.clone(),
        );
        r.register_with_unit(
            "hearth_memory_budget_used",
            "Memory budget taken by instances and blank sandboxes",
            Unit::Bytes,
            f.budget_used.clone(),
        );
        r.register_with_unit(
            "hearth_memory_budget",
            "The host memory budget for instances",
            Unit::Bytes,
            f.budget.clone(),
        );
        f
    }

    fn version_series(&self, function: &str, version: &str) -> VersionSeries {
        let start = |k| {
            self.starts
                .get_or_create_owned(&kind_labels(function, version, k))
        };
        let cold = |k: StartKind| {
            if k.is_cold() {
                self.coldstarts
                    .get_or_create_owned(&kind_labels(function, version, k))
            } else {
                // Unregistered: never encoded, so warm and provisioned starts add no
                // zero series to faas_coldstarts_total.
                Counter::default()
            }
        };
        let labels = version_labels(function, version);
        VersionSeries {
            starts: StartKind::ALL.map(start),
            coldstarts: StartKind::ALL.map(cold),
            successes: self.invocations.get_or_create_owned(&labels),
            function_errors: self.errors.get_or_create_owned(&error_labels(
                function,
                version,
                ERROR_FUNCTION,
            )),
            crashes: self
                .errors
                .get_or_create_owned(&error_labels(function, version, ERROR_CRASH)),
            timeouts: self.timeouts.get_or_create_owned(&labels),
            invoke_duration: self.invoke_duration.get_or_create_owned(&labels),
            init_duration: self.init_duration.get_or_create_owned(&labels),
        }
    }

    fn remove_version(&self, function: &str, version: &str) {
        let labels = version_labels(function, version);
        for kind in StartKind::ALL {
            let k = kind_labels(function, version, kind);
            self.starts.remove(&k);
            self.coldstarts.remove(&k);
        }
        self.invocations.remove(&labels);
        self.errors
            .remove(&error_labels(function, version, ERROR_FUNCTION));
        self.errors
            .remove(&error_labels(function, version, ERROR_CRASH));
        self.timeouts.remove(&labels);
        self.invoke_duration.remove(&labels);
        self.init_duration.remove(&labels);
    }
}

/// The series of `function`, created on first sight. A free function so that callers
/// can still use the other fields of [`Metrics`] while they hold the result.
fn function_series<'a>(
    functions: &'a mut HashMap<String, FunctionSeries>,
    families: &Families,
    function: &str,
) -> &'a mut FunctionSeries {
    // contains_key, then insert: the entry API would allocate the key on every call.
    if !functions.contains_key(function) {
        let labels = FunctionLabels {
            faas_name: function.to_owned(),
        };
        let series = FunctionSeries {
            versions: HashMap::new(),
            throttles: HashMap::new(),
            evictions: families.evictions.get_or_create_owned(&labels),
        };
        functions.insert(function.to_owned(), series);
    }
    functions
        .get_mut(function)
        .expect("inserted just above if it was missing")
}

/// The daemon's metrics: the registry and a cache of each function's series.
pub struct Metrics {
    registry: Registry,
    families: Families,
    functions: HashMap<String, FunctionSeries>,
}

impl fmt::Debug for Metrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let versions: usize = self.functions.values().map(|s| s.versions.len()).sum();
        f.debug_struct("Metrics")
            .field("functions", &self.functions.len())
            .field("versions", &versions)
            .finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics::new()
    }
}

impl Metrics {
    /// The `Content-Type` of [`Metrics::render`]: Prometheus text format 0.0.4.
    pub const CONTENT_TYPE: &'static str = prometheus_text::CONTENT_TYPE;
    /// The `Content-Type` of [`Metrics::render_openmetrics`].
    pub const OPENMETRICS_CONTENT_TYPE: &'static str =
        "application/openmetrics-text; version=1.0.0; charset=utf-8";

    pub fn new() -> Metrics {
        let mut registry = Registry::default();
        let families = Families::register(&mut registry);
        Metrics {
            registry,
            families,
            functions: HashMap::new(),
        }
    }

    fn version(&mut self, function: &str, version: &str) -> &VersionSeries {
        let f = function_series(&mut self.functions, &self.families, function);
        if !f.versions.contains_key(version) {
            let series = self.families.version_series(function, version);
            f.versions.insert(version.to_owned(), series);
        }
        &f.versions[version]
    }

    /// An invocation was handed to an instance obtained by `kind`.
    pub fn invocation_started(&mut self, function: &str, version: &str, kind: StartKind) {
        let s = self.version(function, version);
        // Declaration order is the order of StartKind::ALL (a test checks it).
        let i = kind as usize;
        s.starts[i].inc();
        if kind.is_cold() {
            s.coldstarts[i].inc();
        }
    }

    /// An invocation ended after `duration` (from hand-over to the instance to its end).
    pub fn invocation_finished(
        &mut self,
        function: &str,
        version: &str,
        result: InvocationResult,
        duration: Duration,
    ) {
        let s = self.version(function, version);
        let counter = match result {
            InvocationResult::Success => &s.successes,
            InvocationResult::FunctionError => &s.function_errors,
            InvocationResult::Timeout => &s.timeouts,
            InvocationResult::Crash => &s.crashes,
        };
        counter.inc();
        s.invoke_duration.observe(duration.as_secs_f64());
    }

    /// A new instance finished its init after `init`.
    pub fn init_finished(&mut self, function: &str, version: &str, init: Duration) {
        let s = self.version(function, version);
        s.init_duration.observe(init.as_secs_f64());
    }

    /// An invocation was refused. `reason` should come from a small fixed set (each
    /// value is a series): the AWS throttle reason or `MemoryBudgetExceeded`.
    pub fn throttled(&mut self, function: &str, reason: &str) {
        let f = function_series(&mut self.functions, &self.families, function);
        if !f.throttles.contains_key(reason) {
            let labels = ThrottleLabels {
                faas_name: function.to_owned(),
                reason: reason.to_owned(),
            };
            let counter = self.families.throttles.get_or_create_owned(&labels);
            f.throttles.insert(reason.to_owned(), counter);
        }
        f.throttles[reason].inc();
    }

    /// An idle instance of `function` was retired early to make room.
    pub fn evicted(&mut self, function: &str) {
        function_series(&mut self.functions, &self.families, function)
            .evictions
            .inc();
    }

    /// Drops every series of `function` (deleted): it disappears from the output.
    pub fn forget_function(&mut self, function: &str) {
        let Some(f) = self.functions.remove(function) else {
            return;
        };
        for version in f.versions.keys() {
            self.families.remove_version(function, version);
        }
        for reason in f.throttles.keys() {
            self.families.throttles.remove(&ThrottleLabels {
                faas_name: function.to_owned(),
                reason: reason.clone(),
            });
        }
        self.families.evictions.remove(&FunctionLabels {
            faas_name: function.to_owned(),
        });
    }

    /// Drops the series of one version of `function` (deleted).
    pub fn forget_version(&mut self, function: &str, version: &str) {
        let removed = self
            .functions
            .get_mut(function)
            .and_then(|f| f.versions.remove(version));
        if removed.is_some() {
            self.families.remove_version(function, version);
        }
    }

    fn set_gauges(&self, g: &Gauges) {
        let f = &self.families;
        f.concurrent.set(gauge_value(g.busy));
        for (state, n) in [
            ("busy", g.busy),
            ("idle_frozen", g.idle_frozen),
            ("idle", g.idle_thawed),
            ("blank", g.blank),
            ("initialising", g.initialising),
        ] {
            f.instances
                .get_or_create(&StateLabels { state })
                .set(gauge_value(n));
        }
        f.budget_used.set(gauge_value(g.memory_budget_used_bytes));
        f.budget.set(gauge_value(g.memory_budget_bytes));
    }

    /// The Prometheus text format 0.0.4 ([`Metrics::CONTENT_TYPE`]).
    pub fn render(&self, gauges: &Gauges) -> String {
        self.set_gauges(gauges);
        let mut out = String::with_capacity(self.size_hint());
        // The encoder fails only when its writer does, and a String cannot.
        let _ = prometheus_text::encode(&mut out, &self.registry);
        out
    }

    /// OpenMetrics 1.0 text, ending in `# EOF` ([`Metrics::OPENMETRICS_CONTENT_TYPE`]).
    pub fn render_openmetrics(&self, gauges: &Gauges) -> String {
        self.set_gauges(gauges);
        let mut out = String::with_capacity(self.size_hint());
        // As in render: writing to a String cannot fail.
        let _ = text::encode(&mut out, &self.registry);
        out
    }

    fn size_hint(&self) -> usize {
        let versions: usize = self.functions.values().map(|s| s.versions.len()).sum();
        8192 + versions * 6144
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    /// The value of the sample `name{labels}` (labels exactly as rendered), if present.
    fn sample(out: &str, series: &str) -> Option<f64> {
        out.lines().find_map(|l| {
            let (s, v) = l.rsplit_once(' ')?;
            (s == series).then(|| v.parse().expect("numeric sample value"))
        })
    }

    fn busy_gauges() -> Gauges {
        Gauges {
            busy: 3,
            idle_frozen: 2,
            idle_thawed: 1,
            blank: 4,
            initialising: 5,
            memory_budget_used_bytes: 1 << 30,
            memory_budget_bytes: 8 << 30,
        }
    }

    const FAMILIES: [(&str, &str); 13] = [
        ("faas_invocations_total", "counter"),
        ("faas_errors_total", "counter"),
        ("faas_timeouts_total", "counter"),
        ("faas_coldstarts_total", "counter"),
        ("hearth_invocation_starts_total", "counter"),
        ("faas_invoke_duration_seconds", "histogram"),
        ("faas_init_duration_seconds", "histogram"),
        ("hearth_throttles_total", "counter"),
        ("hearth_evictions_total", "counter"),
        ("hearth_concurrent_executions", "gauge"),
        ("hearth_instances", "gauge"),
        ("hearth_memory_budget_used_bytes", "gauge"),
        ("hearth_memory_budget_bytes", "gauge"),
    ];

    #[test]
    fn every_family_has_help_and_type() {
        let mut m = Metrics::new();
        // A labelled family without series is left out of the output, as in other
        // Prometheus clients: one event of each sort makes them all appear.
        m.invocation_started("f", "1", StartKind::Warm);
        m.throttled("f", "ConcurrentInvocationLimitExceeded");
        for out in [
            m.render(&Gauges::default()),
            m.render_openmetrics(&Gauges::default()),
        ] {
            for (name, _) in FAMILIES {
                // Prometheus text names a counter family with _total, OpenMetrics without.
                let base = name.strip_suffix("_total").unwrap_or(name);
                let help = |n: &str| out.lines().any(|l| l.starts_with(&format!("# HELP {n} ")));
                assert!(help(name) || help(base), "no HELP for {name} in:\n{out}");
            }
        }
        let out = m.render(&Gauges::default());
        for (name, ty) in FAMILIES {
            assert!(
                out.lines().any(|l| l == format!("# TYPE {name} {ty}")),
                "no TYPE for {name} in:\n{out}"
            );
        }
        let fresh = Metrics::new().render(&Gauges::default());
        assert!(fresh.contains("# TYPE hearth_instances gauge"), "{fresh}");
        assert!(!fresh.contains("faas_"), "{fresh}");
    }

    #[test]
    fn counts_increase_as_recorded() {
        let mut m = Metrics::new();
        m.invocation_started("f", "1", StartKind::Spawn);
        m.init_finished("f", "1", 80 * MS);
        m.invocation_finished("f", "1", InvocationResult::Success, 3 * MS);
        for _ in 0..2 {
            m.invocation_started("f", "1", StartKind::Warm);
            m.invocation_finished("f", "1", InvocationResult::FunctionError, MS);
        }
        m.invocation_started("f", "2", StartKind::Provisioned);
        m.invocation_finished("f", "2", InvocationResult::Timeout, 3000 * MS);
        m.invocation_started("f", "2", StartKind::Blank);
        m.invocation_finished("f", "2", InvocationResult::Crash, 5 * MS);
        m.throttled("f", "ReservedFunctionConcurrentInvocationLimitExceeded");
        m.throttled("g", "MemoryBudgetExceeded");
        m.throttled("g", "MemoryBudgetExceeded");
        m.evicted("f");
        let out = m.render(&busy_gauges());

        let v1 = r#"faas_name="f",faas_version="1""#;
        let v2 = r#"faas_name="f",faas_version="2""#;
        let at = |s: String| sample(&out, &s);
        assert_eq!(at(format!("faas_invocations_total{{{v1}}}")), Some(1.0));
        assert_eq!(at(format!("faas_invocations_total{{{v2}}}")), Some(0.0));
        let fe = format!(r#"faas_errors_total{{{v1},error_type="function"}}"#);
        assert_eq!(at(fe), Some(2.0));
        let crash = format!(r#"faas_errors_total{{{v2},error_type="crash"}}"#);
        assert_eq!(at(crash), Some(1.0));
        assert_eq!(at(format!("faas_timeouts_total{{{v2}}}")), Some(1.0));
        let starts =
            |v: &str, k: &str| format!(r#"hearth_invocation_starts_total{{{v},kind="{k}"}}"#);
        assert_eq!(at(starts(v1, "warm")), Some(2.0));
        assert_eq!(at(starts(v1, "spawn")), Some(1.0));
        assert_eq!(at(starts(v1, "blank")), Some(0.0));
        assert_eq!(at(starts(v2, "provisioned")), Some(1.0));
        let cold = |v: &str, k: &str| format!(r#"faas_coldstarts_total{{{v},kind="{k}"}}"#);
        assert_eq!(at(cold(v1, "spawn")), Some(1.0));
        assert_eq!(at(cold(v2, "blank")), Some(1.0));
        // Warm and provisioned starts are not cold starts: no such series at all.
        assert!(!out.lines().any(|l| l.starts_with("faas_coldstarts_total")
            && (l.contains(r#"kind="warm""#) || l.contains(r#"kind="provisioned""#))));
        assert_eq!(
            at(format!("faas_invoke_duration_seconds_count{{{v1}}}")),
            Some(3.0)
        );
        assert_eq!(
            at(format!("faas_invoke_duration_seconds_sum{{{v1}}}")),
            Some(0.005)
        );
        assert_eq!(
            at(format!("faas_init_duration_seconds_count{{{v1}}}")),
            Some(1.0)
        );
        assert_eq!(
            at(format!("faas_init_duration_seconds_count{{{v2}}}")),
            Some(0.0)
        );
        let th = r#"hearth_throttles_total{faas_name="g",reason="MemoryBudgetExceeded"}"#;
        assert_eq!(at(th.into()), Some(2.0));
        let th = r#"hearth_throttles_total{faas_name="f",reason="ReservedFunctionConcurrentInvocationLimitExceeded"}"#;
        assert_eq!(at(th.into()), Some(1.0));
        assert_eq!(
            at(r#"hearth_evictions_total{faas_name="f"}"#.into()),
            Some(1.0)
        );
        assert_eq!(
            at(r#"hearth_evictions_total{faas_name="g"}"#.into()),
            Some(0.0)
        );

        assert_eq!(at("hearth_concurrent_executions".into()), Some(3.0));
        for (state, n) in [
            ("busy", 3.0),
            ("idle_frozen", 2.0),
            ("idle", 1.0),
            ("blank", 4.0),
            ("initialising", 5.0),
        ] {
            assert_eq!(
                at(format!(r#"hearth_instances{{state="{state}"}}"#)),
                Some(n),
                "{state}"
            );
        }
        assert_eq!(
            at("hearth_memory_budget_used_bytes".into()),
            Some(f64::from(1u32 << 30))
        );
        assert_eq!(
            at("hearth_memory_budget_bytes".into()),
            Some(8.0 * f64::from(1u32 << 30))
        );

        // Counting on after a render.
        m.invocation_started("f", "1", StartKind::Warm);
        let out = m.render(&Gauges::default());
        assert_eq!(sample(&out, &starts(v1, "warm")), Some(3.0));
        assert_eq!(sample(&out, "hearth_concurrent_executions"), Some(0.0));
    }

    #[test]
    fn histogram_buckets_are_cumulative() {
        let mut m = Metrics::new();
        // 50 µs, 200 µs, 1 ms, 20 ms, 20 s, 900 s, 2000 s.
        for us in [
            50,
            200,
            1_000,
            20_000,
            20_000_000,
            900_000_000,
            2_000_000_000,
        ] {
            m.invocation_finished(
                "f",
                "$LATEST",
                InvocationResult::Success,
                Duration::from_micros(us),
            );
        }
        let out = m.render(&Gauges::default());
        let buckets: Vec<(f64, f64)> = out
            .lines()
            .filter(|l| l.starts_with("faas_invoke_duration_seconds_bucket{"))
            .map(|l| {
                let le = l
                    .split("le=\"")
                    .nth(1)
                    .and_then(|s| s.split('"').next())
                    .unwrap();
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().unwrap()
                };
                (le, l.rsplit_once(' ').unwrap().1.parse().unwrap())
            })
            .collect();
        assert_eq!(buckets.len(), DURATION_BUCKETS.len() + 1);
        for (b, want) in buckets
            .iter()
            .zip(DURATION_BUCKETS.iter().chain([f64::INFINITY].iter()))
        {
            assert_eq!(b.0, *want);
        }
        for w in buckets.windows(2) {
            assert!(w[0].1 <= w[1].1, "not cumulative: {buckets:?}");
        }
        let count = |le: f64| buckets.iter().find(|b| b.0 == le).unwrap().1;
        assert_eq!(count(0.0001), 1.0);
        assert_eq!(count(0.00025), 2.0);
        assert_eq!(count(0.001), 3.0);
        assert_eq!(count(0.025), 4.0);
        assert_eq!(count(25.0), 5.0);
        assert_eq!(count(1000.0), 6.0);
        assert_eq!(count(f64::INFINITY), 7.0);
        let v = r#"{faas_name="f",faas_version="$LATEST"}"#;
        assert_eq!(
            sample(&out, &format!("faas_invoke_duration_seconds_count{v}")),
            Some(7.0)
        );
    }

    #[test]
    fn forgetting_removes_series() {
        let mut m = Metrics::new();
        for v in ["1", "2"] {
            m.invocation_started("f", v, StartKind::Spawn);
            m.invocation_finished("f", v, InvocationResult::Success, MS);
        }
        m.throttled("f", "ConcurrentInvocationLimitExceeded");
        m.evicted("f");
        m.invocation_started("g", "1", StartKind::Warm);

        m.forget_version("f", "1");
        let out = m.render(&Gauges::default());
        assert!(!out.contains(r#"faas_name="f",faas_version="1""#), "{out}");
        assert!(out.contains(r#"faas_name="f",faas_version="2""#));

        m.forget_function("f");
        let out = m.render(&Gauges::default());
        assert!(!out.contains(r#"faas_name="f""#), "{out}");
        assert!(out.contains(r#"faas_name="g""#));
        // Forgotten series start again from zero.
        m.invocation_started("f", "2", StartKind::Spawn);
        let out = m.render(&Gauges::default());
        let s = r#"hearth_invocation_starts_total{faas_name="f",faas_version="2",kind="spawn"}"#;
        assert_eq!(sample(&out, s), Some(1.0));
        m.forget_function("never-seen");
        m.forget_version("g", "never-seen");
    }

    #[test]
    fn label_values_are_escaped() {
        let mut m = Metrics::new();
        m.throttled("f", "a \"quoted\"\\reason\n");
        let out = m.render(&Gauges::default());
        assert!(
            out.contains(r#"reason="a \"quoted\"\\reason\n"} 1"#),
            "{out}"
        );
    }

    #[test]
    fn openmetrics_ends_with_eof() {
        let mut m = Metrics::new();
        m.invocation_started("f", "1", StartKind::Warm);
        let out = m.render_openmetrics(&Gauges::default());
        assert!(out.ends_with("# EOF\n"));
        assert!(out.contains("# UNIT faas_invoke_duration_seconds seconds\n"));
        assert!(!m.render(&Gauges::default()).contains("# EOF"));
    }

    /// A structural check of the Prometheus text format: each sample line belongs to the
    /// family of the TYPE line before it (with a histogram's suffixes), and every value
    /// parses. (Python's prometheus_client parser was also run on this output by hand.)
    #[test]
    fn samples_belong_to_their_family() {
        let mut m = Metrics::new();
        m.invocation_started("f", "1", StartKind::Spawn);
        m.init_finished("f", "1", MS);
        m.invocation_finished("f", "1", InvocationResult::Success, MS);
        m.throttled("f", "MemoryBudgetExceeded");
        let out = m.render(&busy_gauges());
        let mut family: Option<(String, String)> = None;
        let mut samples = 0;
        for line in out.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, ty) = rest.split_once(' ').unwrap();
                family = Some((name.to_owned(), ty.to_owned()));
                continue;
            }
            if line.starts_with('#') {
                continue;
            }
            let (name, ty) = family.as_ref().expect("a sample before any TYPE line");
            let series = line.split(['{', ' ']).next().unwrap();
            let ok = match ty.as_str() {
                "histogram" => ["_bucket", "_sum", "_count"]
                    .iter()
                    .any(|s| series == format!("{name}{s}")),
                _ => series == name,
            };
            assert!(ok, "{series} under TYPE {name} {ty}");
            let value = line.rsplit_once(' ').unwrap().1;
            assert!(value.parse::<f64>().is_ok(), "{line}");
            samples += 1;
        }
        assert!(samples > 40, "{out}");
    }

    #[test]
    fn start_kinds_index_all() {
        for (i, k) in StartKind::ALL.iter().enumerate() {
            assert_eq!(*k as usize, i);
        }
        assert!(format!("{:?}", Metrics::new()).starts_with("Metrics"));
    }
}
