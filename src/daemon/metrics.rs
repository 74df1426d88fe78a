//! Placeholder of the daemon's metrics (replaced by the prometheus-client version).

use std::time::Duration;

#[derive(Debug, Default)]
pub struct Metrics {
    invocations: u64,
}
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StartKind {
    Warm,
    Blank,
    Spawn,
    Provisioned,
}
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InvocationResult {
    Success,
    FunctionError,
    Timeout,
    Crash,
}
#[derive(Clone, Copy, Debug, Default)]
pub struct Gauges {
    pub busy: u64,
    pub idle_frozen: u64,
    pub idle_thawed: u64,
    pub blank: u64,
    pub initialising: u64,
    pub memory_budget_used_bytes: u64,
    pub memory_budget_bytes: u64,
}
impl Metrics {
    pub const CONTENT_TYPE: &'static str = "text/plain; version=0.0.4";
    pub fn new() -> Metrics {
        Metrics::default()
    }
    pub fn invocation_started(&mut self, _f: &str, _v: &str, _k: StartKind) {
        self.invocations += 1;
    }
    pub fn invocation_finished(&mut self, _f: &str, _v: &str, _r: InvocationResult, _d: Duration) {}
    pub fn init_finished(&mut self, _f: &str, _v: &str, _d: Duration) {}
    pub fn throttled(&mut self, _f: &str, _r: &str) {}
    pub fn evicted(&mut self, _f: &str) {}
    pub fn render(&self, g: &Gauges) -> String {
        format!(
            "hearth_instances{{state=\"busy\"}} {}\nhearth_instances{{state=\"idle_frozen\"}} {}\nhearth_instances{{state=\"idle\"}} {}\nhearth_instances{{state=\"blank\"}} {}\nhearth_instances{{state=\"initialising\"}} {}\n",
            g.busy, g.idle_frozen, g.idle_thawed, g.blank, g.initialising
        )
    }
}
